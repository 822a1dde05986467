/*
 * async.c — asynchronous replication in serve (--topology async), hosting
 * the platform's async nodes (platform/node.h, node_host.c): every protocol
 * decision — what to ship, the window, acknowledgements, resends, backoff,
 * pruning, failover and fencing, outbox=off — is the core's. This file
 * starts the nodes, carries the topology's WAN delay (--delay, on the link
 * from primary to secondary), persists what the core asks a host to keep
 * across a restart (a fenced primary, a promoted secondary), routes client
 * requests by the core's rule, and shows the status.
 *
 * The primary (this process, DATA/db.sqlite) starts the secondary as its
 * own process (DATA/secondary/db_async.sqlite) unless --peer secondary=URL
 * names one elsewhere; the secondary runs `serve --role secondary`.
 *
 * Stop: the primary gives the secondary what it lacks, without the WAN
 * delay, for up to ASYNC_DRAIN_US, before civetweb stops taking messages.
 */
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "serve/internal.h"

#define ASYNC_DRAIN_US      3000000 /* at stop: ship what is left within this */
#define ASYNC_DRAIN_POLL_US 10000
#define ASYNC_PEEK_MS       500        /* the primary's status asks the secondary's this long */
#define ASYNC_FENCED_FILE   "fenced"   /* DATA/fenced: this primary was fenced, for good */
#define ASYNC_PROMOTED_FILE "promoted" /* DATA/promoted: this secondary was promoted */

struct async_host {
    struct hosted *node;
    struct proc *child; /* the secondary's process; NULL: --peer, or we are it */
    bool persisted;     /* the fenced / promoted file is written */
    char mark_path[SERVE_PATH_MAX];
};

/* Each node's own link, which its transport consults as it sends (the secondary's
 * acknowledgements travel net/secondary/primary/...): armable from its fifo. */
static const char *const link_points[2][4] = {
    {"net/primary/secondary/drop", "net/primary/secondary/delay",
     "net/primary/secondary/duplicate", "net/primary/secondary/reorder"},
    {"net/secondary/primary/drop", "net/secondary/primary/delay",
     "net/secondary/primary/duplicate", "net/secondary/primary/reorder"}};

static bool is_primary(const struct server *srv)
{
    return srv->opt.role == SERVE_ASYNC;
}

/* ---- what a host keeps across a restart ------------------------------------------- */

static bool mark_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void mark_write(struct async_host *a, const char *what)
{
    int fd = open(a->mark_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    if (ok) {
        char line[128];
        int n = snprintf(line, sizeof(line), "%s at %" PRId64 "\n", what, host_wall_us());
        ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
    }
    if (!ok)
        fprintf(stderr, "faultdrill serve: cannot record that this node was %s in %s: %s\n", what,
                a->mark_path, strerror(errno));
    a->persisted = ok;
}

/* After any request: a primary the core fenced (by message or by the
 * operator) stays fenced after a restart; so does a promotion. */
static void persist(struct server *srv)
{
    struct async_host *a = srv->async;
    if (a == NULL || a->persisted)
        return;
    struct node_view v;
    hosted_view(a->node, &v);
    if (is_primary(srv) && v.fenced)
        mark_write(a, "fenced");
    else if (!is_primary(srv) && v.writable)
        mark_write(a, "promoted");
}

/* ---- life ------------------------------------------------------------------------------ */

static int start_node(struct server *srv, struct async_host *a)
{
    bool primary = is_primary(srv);
    struct node_config cfg = {
        .name = primary ? "primary" : "secondary",
        .role = primary ? NODE_ASYNC_PRIMARY : NODE_ASYNC_SECONDARY,
        .shop = srv->writer.shop, /* touched only on the writer's thread */
        .peer = primary ? "secondary" : "primary",
        .link_delay_us = srv->opt.delay_ms * 1000,
        .outbox_off = srv->opt.outbox_off,
    };
    int err =
        hosted_start(srv, &cfg, primary ? "secondary" : NULL, srv->opt.delay_ms * 1000, false,
                     &a->node);
    if (err)
        return err;
    snprintf(a->mark_path, sizeof(a->mark_path), "%.4000s/%s", srv->opt.data_dir,
             primary ? ASYNC_FENCED_FILE : ASYNC_PROMOTED_FILE);
    if (mark_exists(a->mark_path)) {
        a->persisted = true;
        err = primary ? hosted_fence(a->node) : hosted_promote(a->node);
        printf("faultdrill serve: %s was %s before (%s): it stays so\n", cfg.name,
               primary ? "fenced" : "promoted", a->mark_path);
        if (err == -EALREADY)
            err = 0;
    }
    return err;
}

int async_start(struct server *srv)
{
    struct async_host *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        fprintf(stderr, "faultdrill serve: out of memory\n");
        return -ENOMEM;
    }
    char url[WIRE_URL_MAX], dir[SERVE_PATH_MAX];
    int err = 0;
    if (is_primary(srv) && !wire_peer_url(srv->net, "secondary", url)) {
        snprintf(dir, sizeof(dir), "%.4000s/secondary", srv->opt.data_dir);
        const char *extra[4] = {NULL};
        if (srv->opt.outbox_off) {
            extra[0] = "--outbox";
            extra[1] = "off";
        }
        err = proc_start(srv, "secondary", dir, extra, &a->child);
        if (!err)
            proc_settle(a->child);
    }
    if (!err)
        err = start_node(srv, a);
    if (err) {
        proc_stop(a->child);
        free(a);
        return err;
    }
    pthread_mutex_lock(&srv->panel.lock);
    for (size_t i = 0; i < sizeof(link_points[0]) / sizeof(link_points[0][0]); i++)
        (void)panel_add(&srv->panel, link_points[is_primary(srv) ? 0 : 1][i]);
    pthread_mutex_unlock(&srv->panel.lock);
    srv->async = a;
    return 0;
}

void async_drain(struct server *srv)
{
    struct async_host *a = srv->async;
    if (a == NULL || !is_primary(srv))
        return;
    int64_t deadline = host_mono_us() + ASYNC_DRAIN_US;
    struct node_status st;
    while (host_mono_us() < deadline && hosted_status(a->node, &st) == 0) {
        const struct node_async_status *s = &st.async;
        if (st.fenced || s->state == NODE_ASYNC_STUCK || s->outbox_off || s->acked >= s->head_seq)
            return;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = ASYNC_DRAIN_POLL_US * 1000L};
        nanosleep(&ts, NULL);
    }
}

void async_stop(struct server *srv)
{
    struct async_host *a = srv->async;
    if (a == NULL)
        return;
    persist(srv);
    hosted_stop(a->node);
    proc_stop(a->child);
    srv->async = NULL;
    free(a);
}

/* ---- client requests: the core's routing ----------------------------------------------- */

bool async_route(struct request *rq)
{
    struct async_host *a = rq->srv->async;
    if (a == NULL)
        return false;
    persist(rq->srv);
    return hosted_route(a->node, rq);
}

/* ---- operator actions: failover ------------------------------------------------------------ */

static void reply_action(struct request *rq, int rc, const char *done)
{
    if (rc == 0) {
        persist(rq->srv);
        async_status(rq);
        return;
    }
    if (rc == -EALREADY) {
        snprintf(rq->detail, sizeof(rq->detail), "%s already", done);
        http_reply_error(rq, 409, "already done", rq->detail);
        return;
    }
    http_reply_platform(rq, rc, NULL);
}

/* POST /replication/failover on the secondary: promote it. */
void async_failover(struct request *rq)
{
    struct async_host *a = rq->srv->async;
    if (a == NULL || is_primary(rq->srv)) {
        snprintf(rq->detail, sizeof(rq->detail),
                 "only an async secondary is promoted: POST this to the secondary");
        http_reply_error(rq, a == NULL ? 404 : 409, a == NULL ? "not configured" : "not here",
                         rq->detail);
        return;
    }
    reply_action(rq, hosted_promote(a->node), "promoted");
}

/* POST /replication/fence on the primary: the operator's STONITH. */
void async_fence(struct request *rq)
{
    struct async_host *a = rq->srv->async;
    if (a == NULL || !is_primary(rq->srv)) {
        snprintf(rq->detail, sizeof(rq->detail), "only an async primary is fenced");
        http_reply_error(rq, a == NULL ? 404 : 409, a == NULL ? "not configured" : "not here",
                         rq->detail);
        return;
    }
    int rc = hosted_fence(a->node);
    reply_action(rq, rc, "fenced");
}

/* `faultdrill serve failover URL` / `faultdrill serve fence URL`: the
 * operator's command line for the two routes above. */
int async_admin_main(int argc, char **argv)
{
    bool failover = argc == 2 && strcmp(argv[0], "failover") == 0;
    bool fence = argc == 2 && strcmp(argv[0], "fence") == 0;
    if ((!failover && !fence) || strncmp(argv[1], "http", 4) != 0) {
        fprintf(stderr, "usage: faultdrill serve failover SECONDARY_URL   promote an async "
                        "secondary (its primary is fenced)\n"
                        "       faultdrill serve fence PRIMARY_URL        fence an async "
                        "primary for good\n");
        return SERVE_EXIT_USAGE;
    }
    char url[WIRE_URL_MAX + 32];
    snprintf(url, sizeof(url), "%.256s/replication/%s", argv[1], failover ? "failover" : "fence");
    struct buf reply = {0};
    int status = 0;
    int err = wire_post_json(url, "{}", 10000, &reply, &status);
    if (err) {
        fprintf(stderr, "faultdrill serve %s: %s: %s\n", argv[0], url, strerror(-err));
        buf_release(&reply);
        return SERVE_EXIT_CANNOT_RUN;
    }
    fwrite(buf_body(&reply), 1, buf_body_len(&reply), stdout);
    printf("\n");
    buf_release(&reply);
    if (status != 200) {
        fprintf(stderr, "faultdrill serve %s: %s answered %d\n", argv[0], url, status);
        return 1;
    }
    return SERVE_EXIT_OK;
}

/* ---- GET /replication/status ----------------------------------------------------------------- */

static void put_seconds(struct buf *b, int64_t us)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%.3f", (double)(us > 0 ? us : 0) / 1e6);
    buf_puts(b, tmp);
}

static void put_u64(struct buf *b, const char *key, uint64_t v)
{
    buf_puts(b, ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":");
    buf_i64(b, (int64_t)v);
}

static void put_i64(struct buf *b, const char *key, int64_t v)
{
    buf_puts(b, ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":");
    buf_i64(b, v);
}

struct oldest_arg {
    int64_t after;
    int64_t at_us;
};

/* The commit time of change after+1 (the platform reads its own outbox). */
static int oldest_fn(shop *s, void *arg)
{
    struct oldest_arg *o = arg;
    return node_outbox_change_at(s, o->after, &o->at_us);
}

/* The secondary's own status, asked over HTTP (null when it does not say). */
static cJSON *peek_secondary(struct request *rq)
{
    struct buf reply = {0};
    struct wire_forwarded fw;
    cJSON *j = NULL;
    if (wire_forward(rq->srv->net, "secondary", "GET", "/replication/status", NULL, NULL, 0,
                     ASYNC_PEEK_MS, &reply, &fw) == 0 &&
        fw.status == 200)
        j = cJSON_ParseWithLength(buf_body(&reply), buf_body_len(&reply));
    buf_release(&reply);
    return j;
}

static void put_from(struct buf *b, const char *key, const cJSON *peer, const char *field)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(peer, field);
    buf_puts(b, ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":");
    if (cJSON_IsNumber(x)) {
        char tmp[48];
        /* as the peer wrote it: 0.381, not 0.38100000000000001 */
        snprintf(tmp, sizeof(tmp), "%.15g", x->valuedouble);
        buf_puts(b, tmp);
    } else {
        buf_puts(b, "null");
    }
}

static void put_trace(struct buf *b, struct hosted *h)
{
    char lines[8][NODE_TRACE_MAX];
    size_t n = hosted_trace(h, lines, 8);
    buf_puts(b, ",\"trace\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_puts(b, ",");
        json_str(b, lines[i]);
    }
    buf_puts(b, "]");
}

static void status_primary(struct request *rq, struct async_host *a, const struct node_status *st)
{
    const struct node_async_status *s = &st->async;
    struct oldest_arg old = {.after = s->acked};
    if (s->head_seq > s->acked)
        (void)worker_read(rq, oldest_fn, &old);
    int64_t now = host_wall_us();
    struct wire_link_stats link;
    wire_link_stats(rq->srv->net, "secondary", &link);
    cJSON *peer = peek_secondary(rq);
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"topology\":\"async\",\"node\":\"primary\",\"primary\":\"primary\","
                "\"secondary\":\"secondary\",\"state\":");
    json_str(b, node_async_state_name(s->state));
    put_i64(b, "delayMs", rq->srv->opt.delay_ms);
    buf_puts(b, s->outbox_off ? ",\"outbox\":\"off\"" : ",\"outbox\":\"on\"");
    buf_puts(b, st->fenced ? ",\"fenced\":true" : ",\"fenced\":false");
    put_i64(b, "primarySeq", s->head_seq);
    put_i64(b, "secondarySeq", s->acked);
    put_i64(b, "lagChanges", s->head_seq > s->acked ? s->head_seq - s->acked : 0);
    buf_puts(b, ",\"lagSeconds\":");
    put_seconds(b, s->head_seq > s->acked && old.at_us > 0 ? now - old.at_us : 0);
    put_i64(b, "sentThrough", s->sent);
    put_i64(b, "inTransit", s->sent > s->acked ? s->sent - s->acked : 0);
    put_i64(b, "prunedThrough", s->pruned_through);
    put_u64(b, "batchesSent", s->batches_sent);
    put_u64(b, "acks", s->acks);
    put_u64(b, "staleAcks", s->stale_acks);
    put_u64(b, "timeouts", s->timeouts);
    put_u64(b, "gapResends", s->gap_resends);
    put_u64(b, "resends", s->timeouts + s->gap_resends);
    put_u64(b, "snapshotsSent", s->snapshots_sent);
    put_i64(b, "rtoMs", s->rto_us / 1000);
    put_i64(b, "fencedHeadSeq", s->fenced_head_seq);
    buf_puts(b, ",\"stuck\":");
    json_str(b, s->stuck_why);
    /* the link, as the transport saw it */
    put_u64(b, "dropped", link.lost);
    put_u64(b, "failures", link.failed);
    put_u64(b, "linkOverflow", link.overflow);
    put_u64(b, "linkPending", link.pending);
    buf_puts(b, ",\"lastError\":");
    json_str(b, link.last_error);
    /* the secondary's side, as it says (null when it cannot be asked) */
    put_from(b, "lastApplyLagSeconds", peer, "lastApplyLagSeconds");
    put_from(b, "batchesApplied", peer, "batchesApplied");
    put_from(b, "changesApplied", peer, "changesApplied");
    put_from(b, "duplicatesSkipped", peer, "duplicatesSkipped");
    put_from(b, "applyErrors", peer, "applyErrors");
    /* a failover: what the promoted copy lacks of this old primary's writes */
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(peer, "failover");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(f, "position");
    buf_puts(b, ",\"lostChanges\":");
    if (st->fenced && cJSON_IsNumber(fp)) {
        int64_t from = (int64_t)fp->valuedouble + 1, to = s->fenced_head_seq;
        buf_puts(b, "{\"first\":");
        buf_i64(b, from);
        put_i64(b, "last", to);
        put_i64(b, "count", to >= from ? to - from + 1 : 0);
        buf_puts(b, "}");
    } else {
        buf_puts(b, "null");
    }
    cJSON_Delete(peer);
    put_trace(b, a->node);
    proc_json(b, "secondaryProcess", rq->srv, "secondary", a->child);
    buf_puts(b, "}");
    http_reply(rq, 200);
}

static void status_secondary(struct request *rq, struct async_host *a, const struct node_status *st)
{
    const struct node_async_status *s = &st->async;
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"topology\":\"async\",\"node\":\"secondary\",\"state\":");
    json_str(b, node_async_state_name(s->state));
    put_i64(b, "position", s->position);
    buf_puts(b, ",\"positionAt\":");
    s->position_at_us > 0 ? json_time(b, s->position_at_us) : buf_puts(b, "null");
    buf_puts(b, ",\"lastApplyLagSeconds\":");
    put_seconds(b, s->last_lag_us);
    put_u64(b, "batchesApplied", s->batches_applied);
    put_u64(b, "changesApplied", s->changes_applied);
    put_u64(b, "duplicatesSkipped", s->duplicates);
    put_u64(b, "gaps", s->gaps);
    put_u64(b, "snapshotsApplied", s->snapshots_applied);
    put_u64(b, "applyErrors", s->apply_errors);
    buf_puts(b, s->moved_back ? ",\"movedBack\":true" : ",\"movedBack\":false");
    const struct node_failover *f = &s->failover;
    buf_puts(b, ",\"failover\":");
    if (!f->done) {
        buf_puts(b, "null");
    } else {
        buf_puts(b, "{\"at\":");
        json_time(b, f->at_us);
        put_i64(b, "position", f->position);
        buf_puts(b, ",\"positionAt\":");
        f->position_at_us > 0 ? json_time(b, f->position_at_us) : buf_puts(b, "null");
        put_i64(b, "positionAtUs", f->position_at_us);
        buf_puts(b, ",\"windowSeconds\":");
        put_seconds(b, f->window_us);
        buf_puts(b, ",\"lost\":\"every change of the old primary after ");
        buf_i64(b, f->position);
        buf_puts(b, ": its status (fencedHeadSeq) says up to which\"}");
    }
    put_trace(b, a->node);
    buf_puts(b, "}");
    http_reply(rq, 200);
}

void async_status(struct request *rq)
{
    struct async_host *a = rq->srv->async;
    if (a == NULL) {
        status_not_configured(rq);
        return;
    }
    struct node_status st;
    int rc = hosted_status(a->node, &st);
    if (rc != 0) {
        http_reply_platform(rq, rc, NULL);
        return;
    }
    if (is_primary(rq->srv))
        status_primary(rq, a, &st);
    else
        status_secondary(rq, a, &st);
}
