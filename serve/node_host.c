/*
 * node_host.c — serve hosting one node of the platform's replication core
 * (platform/node.h: every protocol written once, as a state machine). This
 * file decides nothing about a protocol; it only carries the node's events:
 *
 *   - every event (start, message, timer, commit, promote, fence, status)
 *     runs on the writer's thread through writer_call: the node's shop is
 *     the writer's, and a node is single-threaded;
 *   - env->send hands the message to the transport (wire_send: queued, sent
 *     by the link's thread, the link's fault points applied there), with the
 *     WAN delay the topology models on the node's link to its peer;
 *   - env->timer: a thread keeps the wakes the node asked for and delivers
 *     each once the monotonic clock reaches it;
 *   - POST /api/node delivers a message (node_net.c authenticated it);
 *   - the writer tells the node of each group it committed;
 *   - env->trace: the last HOSTED_TRACE_LINES lines are kept for the status
 *     (and printed to the log when the host asks: hosted_log_traces);
 *   - a client request is routed by the core's rule (node_route) on the
 *     node's view: hosted_route.
 *
 * After every event the node's view (node_view) is copied under a lock, so
 * request threads route with node_route without touching the node.
 */
#include <civetweb.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve/internal.h"

#define HOSTED_TIMERS_MAX  64   /* wakes waiting at once */
#define HOSTED_RETRY_US    5000 /* a wake the busy writer could not take goes again after this */
#define HOSTED_TRACE_LINES 16   /* the node's last trace lines, for the status */
#define HOSTED_WAIT_US     2000000  /* a held request (WAIT) waits for the node this long */
#define HOSTED_FORWARD_MS  10000    /* the writer's answer to a forwarded request */
#define HOSTED_SESSION_HEADER "X-Faultdrill-Session" /* the client's session position */

struct hosted {
    struct server *srv;
    struct node *node;
    struct platform_env env;
    char wan_to[FAULTS_NODE_MAX]; /* the peer the WAN delay applies to ("": none) */
    int64_t wan_us;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* below */
    pthread_cond_t cond;  /* CLOCK_MONOTONIC: a wake was asked for, or stop */
    pthread_cond_t moved; /* CLOCK_MONOTONIC: the view changed, or stop */
    bool has_shop;        /* the node owns the writer's shop (not a registry, a client) */
    bool stopping;
    struct {
        int timer;
        int64_t at_us;
    } timers[HOSTED_TIMERS_MAX];
    size_t timer_count;
    bool firing;      /* a wake was taken off the list and is being delivered */
    bool log_traces;  /* print the node's trace lines to stdout (the live log) */
    bool muted;       /* a hosted_with call runs: its trace lines are dropped */
    struct node_view view;
    char trace[HOSTED_TRACE_LINES][NODE_TRACE_MAX];
    size_t trace_next, trace_count;
};

/* ---- the environment the node acts through ----------------------------------- */

static void env_send(void *ctx, const char *from, const char *to, const void *msg, size_t len)
{
    struct hosted *h = ctx;
    (void)from;
    int64_t delay = strcmp(to, h->wan_to) == 0 ? h->wan_us : 0;
    (void)wire_send(h->srv->net, to, msg, len, delay); /* a refused send is a lost message */
}

static void env_timer(void *ctx, const char *node, int timer, int64_t at_us)
{
    struct hosted *h = ctx;
    (void)node;
    pthread_mutex_lock(&h->lock);
    bool known = false;
    for (size_t i = 0; i < h->timer_count && !known; i++)
        known = h->timers[i].timer == timer && h->timers[i].at_us == at_us;
    if (!known && h->timer_count == HOSTED_TIMERS_MAX) {
        /* full: the latest wake gives way (the node asks again when woken) */
        size_t latest = 0;
        for (size_t i = 1; i < h->timer_count; i++)
            if (h->timers[i].at_us > h->timers[latest].at_us)
                latest = i;
        if (h->timers[latest].at_us > at_us)
            h->timers[latest] = h->timers[--h->timer_count];
    }
    if (!known && h->timer_count < HOSTED_TIMERS_MAX) {
        h->timers[h->timer_count].timer = timer;
        h->timers[h->timer_count].at_us = at_us;
        h->timer_count++;
        pthread_cond_signal(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
}

static void env_trace(void *ctx, const char *node, const char *text)
{
    struct hosted *h = ctx;
    pthread_mutex_lock(&h->lock);
    if (h->muted) { /* a hosted_with call: the host's own doing, not the node's story */
        pthread_mutex_unlock(&h->lock);
        return;
    }
    snprintf(h->trace[h->trace_next], NODE_TRACE_MAX, "%s", text);
    h->trace_next = (h->trace_next + 1) % HOSTED_TRACE_LINES;
    if (h->trace_count < HOSTED_TRACE_LINES)
        h->trace_count++;
    bool print = h->log_traces;
    pthread_mutex_unlock(&h->lock);
    if (print) {
        printf("faultdrill serve: %s: %s\n", node, text);
        fflush(stdout);
    }
}

/* ---- events, on the writer's thread --------------------------------------------- */

/* After an event: the view request threads route with, and a wake for those
 * a WAIT holds. */
static void publish_view(struct hosted *h)
{
    pthread_mutex_lock(&h->lock);
    node_view(h->node, &h->view);
    pthread_cond_broadcast(&h->moved);
    pthread_mutex_unlock(&h->lock);
}

enum event_kind {
    EV_START,
    EV_MESSAGE,
    EV_TIMER,
    EV_PROMOTE,
    EV_ONLINE,
    EV_OFFLINE,
    EV_FENCE,
    EV_STATUS,
    EV_WITH,
    EV_PEER_UP,
    EV_STOP,
};

struct event {
    struct hosted *h;
    enum event_kind kind;
    const char *from;
    const void *msg;
    size_t len;
    int timer;
    struct node_status *status;
    int (*fn)(struct node *n, void *arg);
    void *arg;
};

/* The node's shop hit a crash point: this process dies as kill -9 would. */
static void die_crashed(struct hosted *h)
{
    fprintf(stderr, "faultdrill serve: %s hit a crash point: dying as kill -9 would\n",
            node_name(h->node));
    raise(SIGKILL);
}

static void on_commit(void *ctx, shop *s)
{
    struct hosted *h = ctx;
    if (node_on_commit(h->node, shop_last_seq(s)) == -ECANCELED)
        die_crashed(h);
    publish_view(h);
}

static int run_event(shop *s, void *arg)
{
    struct event *e = arg;
    struct hosted *h = e->h;
    int rc = 0;
    switch (e->kind) {
    case EV_START:
        if (h->has_shop)
            writer_set_on_commit(&h->srv->writer, on_commit, h);
        rc = node_start(h->node);
        break;
    case EV_MESSAGE:
        rc = node_on_message(h->node, e->from, e->msg, e->len);
        break;
    case EV_TIMER:
        rc = node_on_timer(h->node, e->timer);
        break;
    case EV_PROMOTE:
        rc = node_promote(h->node);
        break;
    case EV_ONLINE:
    case EV_OFFLINE:
        rc = node_set_online(h->node, e->kind == EV_ONLINE);
        break;
    case EV_FENCE:
        rc = node_fence(h->node);
        break;
    case EV_STATUS:
        rc = node_status(h->node, e->status);
        break;
    case EV_WITH:
        pthread_mutex_lock(&h->lock);
        h->muted = true;
        pthread_mutex_unlock(&h->lock);
        rc = e->fn(h->node, e->arg);
        pthread_mutex_lock(&h->lock);
        h->muted = false;
        pthread_mutex_unlock(&h->lock);
        break;
    case EV_PEER_UP:
        node_peer_up(h->node, e->from);
        break;
    case EV_STOP:
        if (h->has_shop)
            writer_set_on_commit(&h->srv->writer, NULL, NULL);
        break;
    }
    (void)s;
    if (rc == -ECANCELED)
        die_crashed(h);
    publish_view(h);
    return rc;
}

static int post_event(struct hosted *h, struct event *e)
{
    e->h = h;
    return writer_call(&h->srv->writer, run_event, e);
}

/* ---- timers ------------------------------------------------------------------------ */

static void *timer_main(void *arg)
{
    struct hosted *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->stopping) {
        size_t next = 0;
        for (size_t i = 1; i < h->timer_count; i++)
            if (h->timers[i].at_us < h->timers[next].at_us)
                next = i;
        int64_t now = host_mono_us();
        if (h->timer_count == 0) {
            pthread_cond_wait(&h->cond, &h->lock);
            continue;
        }
        if (h->timers[next].at_us > now) {
            struct timespec until = host_deadline_after_us(h->timers[next].at_us - now);
            pthread_cond_timedwait(&h->cond, &h->lock, &until);
            continue;
        }
        int timer = h->timers[next].timer;
        h->timers[next] = h->timers[--h->timer_count];
        h->firing = true;
        pthread_mutex_unlock(&h->lock);
        struct event e = {.kind = EV_TIMER, .timer = timer};
        int rc = post_event(h, &e);
        pthread_mutex_lock(&h->lock);
        h->firing = false;
        if (rc == -EAGAIN && h->timer_count < HOSTED_TIMERS_MAX) { /* the writer is full */
            h->timers[h->timer_count].timer = timer;
            h->timers[h->timer_count].at_us = host_mono_us() + HOSTED_RETRY_US;
            h->timer_count++;
        }
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* ---- messages ------------------------------------------------------------------------ */

int hosted_deliver(void *ctx, const char *from, const void *body, size_t len, struct buf *reply)
{
    struct hosted *h = ctx;
    struct event e = {.kind = EV_MESSAGE, .from = from, .msg = body, .len = len};
    int rc = post_event(h, &e);
    if (rc == 0)
        return 200;
    if (rc == -EPROTO) {
        json_error(reply, "malformed message", "the node could not decode it: dropped");
        return 400;
    }
    if (rc == -EAGAIN || rc == -ESHUTDOWN) {
        json_error(reply, rc == -EAGAIN ? "server busy" : "server stopping", NULL);
        return 503;
    }
    /* the node traced it and goes on: the message was taken */
    return 200;
}

/* ---- life ---------------------------------------------------------------------------- */

int hosted_start(struct server *srv, const struct node_config *cfg, const char *wan_to,
                 int64_t wan_us, bool switched_off, struct hosted **out)
{
    return hosted_start_node(srv, cfg, wan_to, wan_us, switched_off, true, out);
}

int hosted_start_node(struct server *srv, const struct node_config *cfg, const char *wan_to,
                      int64_t wan_us, bool switched_off, bool takes_messages,
                      struct hosted **out)
{
    struct hosted *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    h->srv = srv;
    h->has_shop = cfg->shop != NULL;
    snprintf(h->wan_to, sizeof(h->wan_to), "%s", wan_to != NULL ? wan_to : "");
    h->wan_us = wan_us;
    pthread_mutex_init(&h->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cond, &ca);
    pthread_cond_init(&h->moved, &ca);
    pthread_condattr_destroy(&ca);
    h->env = srv->env;
    h->env.ctx = h;
    h->env.parallel = NULL; /* the node's shop has its own env; the node never asks */
    h->env.before_commit = NULL;
    h->env.send = env_send;
    h->env.timer = env_timer;
    h->env.trace = env_trace;
    char msg[SHOP_ERRMSG_MAX] = "";
    int err = node_create(cfg, &h->env, &h->node, msg);
    if (err) {
        fprintf(stderr, "faultdrill serve: cannot create node %s: %s\n", cfg->name,
                msg[0] ? msg : strerror(-err));
        hosted_stop(h);
        return err;
    }
    /* no thread touches the node yet: set while it is down, as node.h allows */
    if (switched_off && (err = node_set_online(h->node, false)) != 0) {
        fprintf(stderr, "faultdrill serve: node %s cannot be switched off: %s\n", cfg->name,
                platform_strerror(err));
        hosted_stop(h);
        return err;
    }
    err = -pthread_create(&h->thread, NULL, timer_main, h);
    h->thread_started = err == 0;
    struct event e = {.kind = EV_START};
    if (!err && (err = post_event(h, &e)) != 0)
        fprintf(stderr, "faultdrill serve: node %s cannot start: %s\n", cfg->name,
                platform_strerror(err));
    if (err) {
        hosted_stop(h);
        return err;
    }
    if (takes_messages)
        wire_set_handler(srv->net, hosted_deliver, h);
    *out = h;
    return 0;
}

void hosted_stop(struct hosted *h)
{
    if (h == NULL)
        return;
    if (h->srv->net != NULL)
        wire_set_handler(h->srv->net, NULL, NULL);
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    pthread_cond_broadcast(&h->cond);
    pthread_cond_broadcast(&h->moved);
    pthread_mutex_unlock(&h->lock);
    if (h->thread_started)
        pthread_join(h->thread, NULL);
    if (h->node != NULL) {
        struct event e = {.kind = EV_STOP};
        (void)post_event(h, &e);
    }
    node_destroy(h->node);
    pthread_cond_destroy(&h->cond);
    pthread_cond_destroy(&h->moved);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* ---- what others ask ------------------------------------------------------------------- */

int hosted_status(struct hosted *h, struct node_status *out)
{
    memset(out, 0, sizeof(*out));
    struct event e = {.kind = EV_STATUS, .status = out};
    return post_event(h, &e);
}

void hosted_view(struct hosted *h, struct node_view *out)
{
    pthread_mutex_lock(&h->lock);
    *out = h->view;
    pthread_mutex_unlock(&h->lock);
}

int hosted_with(struct hosted *h, int (*fn)(struct node *n, void *arg), void *arg)
{
    struct event e = {.kind = EV_WITH, .fn = fn, .arg = arg};
    return post_event(h, &e);
}

bool hosted_wake_due(struct hosted *h)
{
    int64_t now = host_mono_us();
    pthread_mutex_lock(&h->lock);
    bool due = h->firing;
    for (size_t i = 0; i < h->timer_count && !due; i++)
        due = h->timers[i].at_us <= now;
    pthread_mutex_unlock(&h->lock);
    return due;
}

void hosted_log_traces(struct hosted *h, bool on)
{
    pthread_mutex_lock(&h->lock);
    h->log_traces = on;
    for (size_t i = 0; on && i < h->trace_count; i++) /* what it said at start */
        printf("faultdrill serve: %s: %s\n", node_name(h->node),
               h->trace[(h->trace_next + HOSTED_TRACE_LINES - h->trace_count + i) %
                        HOSTED_TRACE_LINES]);
    fflush(stdout);
    pthread_mutex_unlock(&h->lock);
}

int hosted_set_online(struct hosted *h, bool online)
{
    struct event e = {.kind = online ? EV_ONLINE : EV_OFFLINE};
    return post_event(h, &e);
}

int hosted_promote(struct hosted *h)
{
    struct event e = {.kind = EV_PROMOTE};
    return post_event(h, &e);
}

int hosted_fence(struct hosted *h)
{
    struct event e = {.kind = EV_FENCE};
    return post_event(h, &e);
}

size_t hosted_trace(struct hosted *h, char lines[][NODE_TRACE_MAX], size_t max)
{
    pthread_mutex_lock(&h->lock);
    size_t n = h->trace_count < max ? h->trace_count : max;
    for (size_t i = 0; i < n; i++) {
        size_t at = (h->trace_next + HOSTED_TRACE_LINES - n + i) % HOSTED_TRACE_LINES;
        memcpy(lines[i], h->trace[at], NODE_TRACE_MAX);
    }
    pthread_mutex_unlock(&h->lock);
    return n;
}

/* ---- client requests: the core's routing ------------------------------------------------ */

/* Status, admin and node routes answer whatever the node's state. */
static bool is_control(const char *uri)
{
    return strcmp(uri, "/api/node") == 0 || strcmp(uri, "/faults") == 0 ||
           strcmp(uri, "/heartbeat") == 0 || strncmp(uri, "/replication/", 13) == 0 ||
           strncmp(uri, "/sync/", 6) == 0 || strcmp(uri, "/getServer") == 0;
}

/* The client's session: the highest position a reply it got reflected
 * (X-Faultdrill-Session, what it read in X-Faultdrill-Position); 0: none. A
 * value that is not a decimal number is refused (false, replied). */
static bool read_session(struct request *rq, struct node_session *out)
{
    out->position = 0;
    const char *text = mg_get_header(rq->conn, HOSTED_SESSION_HEADER);
    if (text == NULL)
        return true;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 0) {
        snprintf(rq->detail, sizeof(rq->detail),
                 HOSTED_SESSION_HEADER " must be a position (a decimal number >= 0), not '%.60s'",
                 text);
        http_reply_error(rq, 400, "bad session", rq->detail);
        return false;
    }
    out->position = (int64_t)v;
    rq->session = out->position;
    return true;
}

/*
 * Routes req on the node's view and holds it while the core says WAIT
 * (re-routed after every event, at most HOSTED_WAIT_US); the last decision
 * in *r and the view it was made on in *v. False when the wait timed out.
 */
static bool route_waiting(struct hosted *h, const struct node_request *req, struct node_view *v,
                          struct node_route *r)
{
    struct timespec until = host_deadline_after_us(HOSTED_WAIT_US);
    bool timed_out = false;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        *v = h->view;
        node_route(v, req, r);
        if (r->kind != NODE_ROUTE_WAIT || h->stopping || timed_out)
            break;
        timed_out = pthread_cond_timedwait(&h->moved, &h->lock, &until) == ETIMEDOUT;
    }
    pthread_mutex_unlock(&h->lock);
    return r->kind != NODE_ROUTE_WAIT;
}

static void reply_behind(struct request *rq, const struct node_view *v, int64_t wait_for)
{
    snprintf(rq->detail, sizeof(rq->detail),
             "%s holds change %" PRId64 " and the client has seen %" PRId64
             ": it did not catch up within %.1f s (ask another node, or again)",
             v->name, v->position, wait_for, (double)HOSTED_WAIT_US / 1e6);
    http_reply_error(rq, 503, "behind your session", rq->detail);
}

/*
 * FORWARD: the request goes to the writer as it came, and its answer comes
 * back with the writer's position p (X-Faultdrill-Seq); the core's deferred
 * reply: answered once this node holds p itself (a read with session p:
 * WAIT, then HERE), so the client's next read here sees its write.
 */
static void forward(struct hosted *h, struct request *rq, const struct node_route *r,
                    const char *uri)
{
    struct server *srv = rq->srv;
    char target[2 * SERVE_PATH_MAX], url[WIRE_URL_MAX] = "";
    const char *query = rq->ri->query_string;
    const char *method = rq->ri->request_method;
    int n = snprintf(target, sizeof(target), "%s%s%s", uri, query != NULL ? "?" : "",
                     query != NULL ? query : "");
    if (n < 0 || (size_t)n >= sizeof(target)) {
        http_reply_error(rq, 400, "bad request", "the request target is too long");
        return;
    }
    if (wire_read_body(rq, SERVE_BODY_MAX) != 0)
        return; /* replied */
    if (!wire_peer_url(srv->net, r->to, url)) {
        snprintf(rq->detail, sizeof(rq->detail), "%s does not know where %s is (--peer %s=URL)",
                 srv->opt.node, r->to, r->to);
        http_reply_error(rq, 503, "leader unreachable", rq->detail);
        return;
    }
    struct wire_forwarded rep;
    int err = wire_forward(srv->net, r->to, method, target,
                           mg_get_header(rq->conn, "Content-Type"), rq->w->body.p,
                           rq->w->body.len, HOSTED_FORWARD_MS, &rq->w->out, &rep);
    if (err != 0) {
        snprintf(rq->detail, sizeof(rq->detail),
                 rep.maybe_sent ? "%s forwarded the request to %s at %s, which did not answer "
                                  "(%s): it may or may not have been applied"
                                : "%s cannot reach %s at %s: %s",
                 srv->opt.node, r->to, url, err == -ETIMEDOUT ? "timed out" : strerror(-err));
        http_reply_error(rq, rep.maybe_sent ? 500 : 503,
                         rep.maybe_sent ? "outcome unknown" : "leader unreachable", rq->detail);
        return;
    }
    /* the writer's answer: held until this node reflects it */
    bool held = true;
    struct node_view v;
    struct node_route after = {.kind = NODE_ROUTE_HERE};
    if (rep.status >= 200 && rep.status < 300 && rep.seq > 0) {
        struct node_request req = {.session = {.position = rep.seq}};
        held = route_waiting(h, &req, &v, &after);
    }
    char headers[200];
    int used = snprintf(headers, sizeof(headers), "X-Faultdrill-Via: %s", r->to);
    if (rep.seq > 0)
        used += snprintf(headers + used, sizeof(headers) - (size_t)used,
                         "\r\nX-Faultdrill-Seq: %" PRId64 "\r\nX-Faultdrill-Position: %" PRId64,
                         rep.seq, rep.seq);
    if (!held) /* the write was made: say so, and that this node lacks it yet */
        snprintf(headers + used, sizeof(headers) - (size_t)used, "\r\nX-Faultdrill-Stale: 1");
    const char *type =
        rep.status == 204 || rep.content_type[0] == '\0' ? NULL : rep.content_type;
    http_reply_bytes(rq, &rq->w->out, rep.status, type, headers);
}

bool hosted_route(struct hosted *h, struct request *rq)
{
    struct server *srv = rq->srv;
    const char *uri = rq->ri->local_uri_raw != NULL ? rq->ri->local_uri_raw : rq->ri->local_uri;
    if (h == NULL || is_control(uri))
        return false;
    const char *method = rq->ri->request_method;
    struct node_request req = {.is_write =
                                   strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0};
    if (!read_session(rq, &req.session))
        return true;
    struct node_view v;
    struct node_route r;
    bool settled = route_waiting(h, &req, &v, &r);
    if (!v.up)
        return false; /* not started yet: a plain shop */
    if (!settled) {
        reply_behind(rq, &v, r.wait_for);
        return true;
    }
    if (r.kind == NODE_ROUTE_HERE) {
        if (!req.is_write && v.role == NODE_CLUSTER_REPLICA) {
            /* a read says the leader's position this copy held before it ran */
            rq->has_position = rq->position_fixed = true;
            rq->position = v.position;
        }
        return false;
    }
    if (r.kind == NODE_ROUTE_FORWARD) {
        forward(h, rq, &r, uri);
        return true;
    }
    if (r.kind == NODE_ROUTE_REDIRECT) {
        char url[WIRE_URL_MAX], headers[WIRE_URL_MAX + SERVE_PATH_MAX + 32] = "";
        if (wire_peer_url(srv->net, r.to, url))
            snprintf(headers, sizeof(headers), "Location: %s%.4000s", url, uri);
        snprintf(rq->detail, sizeof(rq->detail), "%s: %s takes the writes%s%s", r.why, r.to,
                 url[0] ? " at " : "", url[0] ? url : "");
        buf_reset(&rq->w->out);
        json_error(&rq->w->out, "not the writer", rq->detail);
        http_reply_bytes(rq, &rq->w->out, 307, "application/json", headers[0] ? headers : NULL);
        return true;
    }
    /* REFUSE */
    snprintf(rq->detail, sizeof(rq->detail), "%s (%s)", r.why, v.name);
    http_reply_error(rq, 503,
                     v.fenced                 ? "fenced"
                     : v.writer[0] == '\0' && req.is_write ? "read-only node"
                                                           : "refused",
                     rq->detail);
    return true;
}

/* ---- a replica's read cache ------------------------------------------------------------ */

struct cache_call {
    const char *key;
    int64_t session;
    struct buf *out;
    int64_t position;
    const struct node_cache_dep *deps;
    size_t dep_count;
    const void *answer;
    size_t len;
};

static int cache_get_fn(struct node *n, void *arg)
{
    struct cache_call *c = arg;
    struct node_session session = {.position = c->session};
    struct node_cache_hit hit;
    int rc = node_cache_get(n, c->key, &session, &hit);
    if (rc == 0) {
        buf_reset(c->out);
        buf_put(c->out, (const char *)hit.answer, hit.len); /* valid until the next call on the node */
        c->position = hit.position;
    }
    return rc;
}

static int cache_put_fn(struct node *n, void *arg)
{
    const struct cache_call *c = arg;
    return node_cache_put(n, c->key, c->deps, c->dep_count, c->answer, c->len, c->position);
}

int hosted_peer_up(struct hosted *h, const char *peer)
{
    struct event e = {.kind = EV_PEER_UP, .from = peer};
    return post_event(h, &e);
}

void hosted_before_commit(struct hosted *h, int64_t seq, const void *change, size_t len)
{
    /* the writer's thread, inside the transaction: serialized with the node's events */
    if (node_on_before_commit(h->node, seq, change, len) == -ECANCELED)
        die_crashed(h);
}

int hosted_cache_get(struct hosted *h, const char *key, int64_t session, struct buf *out,
                     int64_t *position)
{
    struct cache_call c = {.key = key, .session = session, .out = out};
    int rc = hosted_with(h, cache_get_fn, &c);
    *position = c.position;
    return rc;
}

int hosted_cache_put(struct hosted *h, const char *key, const struct node_cache_dep *deps,
                     size_t dep_count, const void *answer, size_t len, int64_t position)
{
    struct cache_call c = {.key = key, .deps = deps, .dep_count = dep_count, .answer = answer,
                           .len = len, .position = position};
    return hosted_with(h, cache_put_fn, &c);
}

/* Every topology's requests pass here first (routes.c). */
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
    if (role == SERVE_CLUSTER || role == SERVE_REPLICA || role == SERVE_REGISTRY)
        return cluster_route(rq);
    if (role == SERVE_OFFLINE || role == SERVE_CENTRAL)
        return offline_route(rq);
    return false;
}

void follow_served(struct request *rq)
{
    if (rq->srv->opt.role == SERVE_REPLICA)
        cluster_served(rq);
}
