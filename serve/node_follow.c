/*
 * node_follow.c — a cluster replica fed by its leader, in its own process,
 * until the replication core (platform/node.h) runs the cluster's protocol
 * (the async secondary and the offline central are the core's already:
 * async.c, offline.c). It receives node messages that
 * node_net.c has authenticated and applies them through the writer, the
 * only writable handle on its copy, in one transaction each (idempotent by
 * sequence).
 *
 *   replicaN: an empty message asks the position; a batch of the outbox
 *     ("FDB1", platform.h) is applied; the reply is JSON
 *     {"position","applied","skipped","gap"}. Only its leader may feed it.
 *
 * What to send, when to resend and what a gap means are the sender's
 * business; this file only applies and answers. A request that writes to a
 * replica is forwarded to its leader (cluster.c); the other topologies'
 * requests are routed by their hosts (the core's rule).
 */
#include <assert.h>
#include <civetweb.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/internal.h"
#include "serve/nodes.h"

struct follower {
    struct server *srv;
    const char *upstream; /* the only sender of batches */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC: the position moved */
    int64_t applied;     /* the position for upstream (under lock) */
};

static void applied_moved(struct follower *f, int64_t position)
{
    pthread_mutex_lock(&f->lock);
    if (position > f->applied) {
        f->applied = position;
        pthread_cond_broadcast(&f->cond);
    }
    pthread_mutex_unlock(&f->lock);
}

/* ---- a batch of the outbox ----------------------------------------------------------- */

struct apply_call {
    const char *source;
    const void *batch;
    size_t len;
    struct shop_apply_result res;
    int64_t position, position_at_us;
    char detail[SHOP_ERRMSG_MAX];
};

static int apply_on_writer(shop *s, void *arg)
{
    struct apply_call *a = arg;
    int rc = a->len == 0 ? shop_replica_position(s, a->source, &a->position, &a->position_at_us)
                         : shop_replica_apply(s, a->source, a->batch, a->len, &a->res);
    if (rc != 0)
        snprintf(a->detail, sizeof(a->detail), "%s", shop_errmsg(s));
    return rc;
}

static int batch_reply(struct buf *out, int64_t position, int64_t at_us, int64_t applied,
                       int64_t skipped, bool gap)
{
    buf_puts(out, "{\"position\":");
    buf_i64(out, position);
    buf_puts(out, ",\"positionAtUs\":");
    buf_i64(out, at_us);
    buf_puts(out, ",\"applied\":");
    buf_i64(out, applied);
    buf_puts(out, ",\"skipped\":");
    buf_i64(out, skipped);
    buf_puts(out, gap ? ",\"gap\":true}" : ",\"gap\":false}");
    return 200;
}

static int error_reply(struct buf *out, int rc, const char *detail)
{
    if (rc == -EPROTO) {
        json_error(out, "malformed message", detail);
        return 400;
    }
    if (rc == -EBADMSG) {
        json_error(out, "the copies diverged", detail);
        return 409;
    }
    /* disk errors, an unknown commit, a busy or stopping writer: later */
    json_error(out, platform_is_unknown(rc) ? "outcome unknown" : platform_strerror(rc),
               detail[0] ? detail : NULL);
    return 503;
}

static int on_batch(void *ctx, const char *from, const void *body, size_t len, struct buf *out)
{
    struct follower *f = ctx;
    if (strcmp(from, f->upstream) != 0) {
        char detail[128];
        snprintf(detail, sizeof(detail), "%s takes batches from %s only, not from %s",
                 f->srv->opt.node, f->upstream, from);
        json_error(out, "not my upstream", detail);
        return 403;
    }
    struct apply_call a = {.source = from, .batch = body, .len = len};
    int rc = writer_call(&f->srv->writer, apply_on_writer, &a);
    if (rc != 0)
        return error_reply(out, rc, a.detail);
    if (len == 0) {
        applied_moved(f, a.position);
        return batch_reply(out, a.position, a.position_at_us, 0, 0, false);
    }
    applied_moved(f, a.res.position);
    return batch_reply(out, a.res.position, a.res.position_at_us, a.res.applied, a.res.skipped,
                       a.res.gap);
}

/* ---- life ------------------------------------------------------------------------------- */

int follow_start(struct server *srv)
{
    struct follower *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->srv = srv;
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);
    assert(srv->opt.role == SERVE_REPLICA);
    f->upstream = "leader";
    {
        struct apply_call a = {.source = f->upstream};
        int rc = writer_call(&srv->writer, apply_on_writer, &a);
        if (rc != 0) {
            fprintf(stderr, "faultdrill serve: cannot read %s's position: %s\n", srv->opt.node,
                    a.detail[0] ? a.detail : strerror(-rc));
            pthread_cond_destroy(&f->cond);
            pthread_mutex_destroy(&f->lock);
            free(f);
            return rc;
        }
        f->applied = a.position;
    }
    srv->follow = f;
    wire_set_handler(srv->net, on_batch, f);
    return 0;
}

void follow_stop(struct server *srv)
{
    struct follower *f = srv->follow;
    if (f == NULL)
        return;
    wire_set_handler(srv->net, NULL, NULL);
    srv->follow = NULL;
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

bool follow_wait_applied(struct server *srv, int64_t seq, int64_t ms)
{
    struct follower *f = srv->follow;
    if (f == NULL)
        return false;
    struct timespec until = host_deadline_after_us(ms * 1000);
    pthread_mutex_lock(&f->lock);
    while (f->applied < seq)
        if (pthread_cond_timedwait(&f->cond, &f->lock, &until) == ETIMEDOUT)
            break;
    bool held = f->applied >= seq;
    pthread_mutex_unlock(&f->lock);
    return held;
}

bool follow_intercept(struct request *rq)
{
    struct server *srv = rq->srv;
    enum serve_role role = srv->opt.role;
    const char *uri = rq->ri->local_uri_raw != NULL ? rq->ri->local_uri_raw : rq->ri->local_uri;
    if (atomic_load(&srv->refusing) && strcmp(uri, "/api/node") != 0) {
        /* stopping: the nodes still talk while the last changes go out */
        mg_disable_connection_keep_alive(rq->conn);
        http_reply_error(rq, 503, "server stopping", "this node is shutting down");
        return true;
    }
    if (role == SERVE_ASYNC || role == SERVE_SECONDARY)
        return async_route(rq);
    if (role == SERVE_REPLICA)
        return cluster_forward(rq);
    if (role == SERVE_OFFLINE || role == SERVE_CENTRAL)
        return offline_route(rq);
    return false;
}
