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
    pthread_mutex_lock(&h->lock);
    node_view(h->node, &h->view);
    pthread_mutex_unlock(&h->lock);
}

static int run_event(shop *s, void *arg)
{
    struct event *e = arg;
    struct hosted *h = e->h;
    int rc = 0;
    switch (e->kind) {
    case EV_START:
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
    case EV_STOP:
        writer_set_on_commit(&h->srv->writer, NULL, NULL);
        break;
    }
    (void)s;
    if (rc == -ECANCELED)
        die_crashed(h);
    pthread_mutex_lock(&h->lock);
    node_view(h->node, &h->view);
    pthread_mutex_unlock(&h->lock);
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

static int on_message(void *ctx, const char *from, const void *body, size_t len, struct buf *reply)
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
    struct hosted *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    h->srv = srv;
    snprintf(h->wan_to, sizeof(h->wan_to), "%s", wan_to != NULL ? wan_to : "");
    h->wan_us = wan_us;
    pthread_mutex_init(&h->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cond, &ca);
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
    wire_set_handler(srv->net, on_message, h);
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
    pthread_mutex_unlock(&h->lock);
    if (h->thread_started)
        pthread_join(h->thread, NULL);
    if (h->node != NULL) {
        struct event e = {.kind = EV_STOP};
        (void)post_event(h, &e);
    }
    node_destroy(h->node);
    pthread_cond_destroy(&h->cond);
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
           strncmp(uri, "/sync/", 6) == 0;
}

bool hosted_route(struct hosted *h, struct request *rq)
{
    struct server *srv = rq->srv;
    const char *uri = rq->ri->local_uri_raw != NULL ? rq->ri->local_uri_raw : rq->ri->local_uri;
    if (h == NULL || is_control(uri))
        return false;
    struct node_view v;
    hosted_view(h, &v);
    const char *method = rq->ri->request_method;
    struct node_request req = {.is_write =
                                   strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0};
    struct node_route r;
    node_route(&v, &req, &r);
    if (r.kind == NODE_ROUTE_HERE || !v.up)
        return false; /* not started yet: a plain shop */
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
    /* REFUSE (FORWARD and WAIT are the cluster's, not hosted here yet) */
    snprintf(rq->detail, sizeof(rq->detail), "%s (%s)", r.why, v.name);
    http_reply_error(rq, 503,
                     v.fenced                 ? "fenced"
                     : v.writer[0] == '\0' && req.is_write ? "read-only node"
                                                           : "refused",
                     rq->detail);
    return true;
}
