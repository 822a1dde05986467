/*
 * cluster.c — replicas with leader propagation in `faultdrill serve`
 * (DESIGN.md §2, §7): a leader that serves the shop and starts its
 * replicas, each its own process (node_proc.c), propagating its outbox to
 * each as node messages (node_net.c: POST /api/node, authenticated); and a
 * replica forwarding the writes it is sent to its leader.
 *
 * Leader: one thread per replica ships to it. It asks the replica where it
 * is (an empty message), ships the outbox after that position in batches,
 * follows the replica's answer after a gap or a lost batch (backing off up
 * to 2 s), and starts over from the replica's own durable position when
 * the replica was restarted. Each thread reads the outbox through its own
 * read-only handle; pruning goes through the writer (the only writable
 * handle), up to the lowest position every replica acknowledged. A leader
 * whose replicas cannot start still serves: /replication/status says which
 * are down and why. The registry (GET /getServer) rotates over the leader
 * and the replicas that are up.
 *
 * Replica (node_follow.c applies the batches): every other request that
 * writes is forwarded to the leader, and the leader's reply relayed once
 * this replica holds that write (the leader's X-Faultdrill-Seq, waited for
 * at most 2 s): read-your-writes through a replica.
 *
 * Touches the platform only through platform.h and the server through
 * internal.h and node.h.
 */
#include <assert.h>
#include <civetweb.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve/internal.h"

#define CLUSTER_SEQ_HEADER       "X-Faultdrill-Seq" /* the leader's outbox after a write */
#define CLUSTER_SHIP_CHANGES_MAX 512                /* changes in one shipped batch */
#define CLUSTER_SHIP_BYTES_MAX   (1u << 20)         /* bytes of one shipped batch, about */
#define CLUSTER_IDLE_MS          2     /* an idle thread looks at the outbox this often */
#define CLUSTER_PROBE_MS         250   /* ...and asks its replica where it is this often */
#define CLUSTER_HEALTHY_MS       1500  /* a replica heard this recently is not down */
#define CLUSTER_BEHIND_MS        1000  /* lacking a change this old: catching-up */
#define CLUSTER_BACKOFF_MS_MIN   20    /* a failed send is retried after this... */
#define CLUSTER_BACKOFF_MS_MAX   2000  /* ...doubling up to this */
#define CLUSTER_DOWN_POLL_MS     20    /* a replica not running is looked at this often */
#define CLUSTER_SYNC_MS          5000  /* a batch's answer */
#define CLUSTER_FORWARD_MS       10000 /* the leader's answer to a forwarded write */
#define CLUSTER_REGISTRY_MS      2000  /* the leader's answer to a forwarded /getServer */
#define CLUSTER_RYW_MS           2000  /* a forwarded write waits to be held here */
#define CLUSTER_DRAIN_MS         2000  /* a stopping leader ships what is pending */
#define CLUSTER_PRUNE_STEP       256   /* prune the outbox in steps of this many changes */

/* ---- the state ------------------------------------------------------------ */

struct cluster;

struct replica {
    struct cluster *cl;
    int index; /* 1..N */
    char node[FAULTS_NODE_MAX];
    char dir[SERVE_PATH_MAX];
    pthread_t thread;
    bool thread_started;
    struct proc *child; /* NULL: --peer names it, it runs elsewhere */
    /* The thread's own. */
    shop *reader; /* read-only handle on the leader's copy */
    struct buf reply;
    int64_t backoff_ms;
    int64_t probe_at_us; /* monotonic */
    bool position_known; /* asked since it (re)started */
    pid_t pid_seen;      /* the child's pid when position_known was set */
    /* Shared: under cl->lock. */
    bool heard;   /* answered at least once in this leader's life (it may be pruned for) */
    bool drained; /* stopping: it holds everything, or cannot be reached */
    int64_t position;
    int64_t missing_at_us; /* commit time of the oldest change it lacks; 0: none known */
    int64_t contact_mono_us, contact_wall_us;
    char last_error[SERVE_DETAIL_MAX];
};

struct cluster {
    struct server *srv;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; broadcast on stop, drain */
    bool stopping, draining;
    int count;
    struct replica replicas[SERVE_REPLICAS_MAX];
    _Atomic int64_t head; /* the outbox's last sequence, as the threads last read it */
    _Atomic unsigned rotation;
    int64_t pruned; /* the outbox holds nothing at or below this */
    bool pruning;
};

static void cluster_wait_ms(struct cluster *cl, int64_t ms)
{
    struct timespec t = host_deadline_after_us(ms * 1000);
    pthread_mutex_lock(&cl->lock);
    if (!cl->stopping)
        pthread_cond_timedwait(&cl->cond, &cl->lock, &t);
    pthread_mutex_unlock(&cl->lock);
}

static bool cluster_stopping(struct cluster *cl)
{
    pthread_mutex_lock(&cl->lock);
    bool stopping = cl->stopping;
    pthread_mutex_unlock(&cl->lock);
    return stopping;
}

static int cluster_create(struct server *srv, struct cluster **out)
{
    struct cluster *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&cl->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc == 0 && (rc = pthread_mutex_init(&cl->lock, NULL)) != 0)
        pthread_cond_destroy(&cl->cond);
    if (rc != 0) {
        free(cl);
        return -rc;
    }
    cl->srv = srv;
    atomic_init(&cl->head, 0);
    atomic_init(&cl->rotation, 0);
    *out = cl;
    return 0;
}

static void cluster_free(struct cluster *cl)
{
    pthread_cond_destroy(&cl->cond);
    pthread_mutex_destroy(&cl->lock);
    free(cl);
}

/* ---- propagation ------------------------------------------------------------ */
static int64_t leader_head(struct cluster *cl)
{
    int64_t head = atomic_load(&cl->head);
    int64_t last = writer_last_seq(&cl->srv->writer);
    return last > head ? last : head;
}

static void head_seen(struct cluster *cl, int64_t seq)
{
    int64_t cur = atomic_load(&cl->head);
    while (seq > cur && !atomic_compare_exchange_weak(&cl->head, &cur, seq))
        ;
}

static void replica_error(struct replica *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void replica_error(struct replica *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&r->cl->lock);
    vsnprintf(r->last_error, sizeof(r->last_error), fmt, ap);
    pthread_mutex_unlock(&r->cl->lock);
    va_end(ap);
}

/* After a failure: wait, longer each time in a row. */
static void replica_backoff(struct replica *r)
{
    cluster_wait_ms(r->cl, r->backoff_ms);
    r->backoff_ms =
        r->backoff_ms * 2 < CLUSTER_BACKOFF_MS_MAX ? r->backoff_ms * 2 : CLUSTER_BACKOFF_MS_MAX;
}

static int reader_get(struct replica *r, shop **out)
{
    if (r->reader == NULL) {
        char msg[SHOP_ERRMSG_MAX];
        struct server *srv = r->cl->srv;
        int rc = shop_open_reader(&srv->cfg.primary, &srv->env, &r->reader, msg);
        if (rc != 0) {
            replica_error(r, "cannot read the leader's outbox: %s", msg);
            return rc;
        }
    }
    *out = r->reader;
    return 0;
}

static void reader_drop(struct replica *r)
{
    shop_close(r->reader); /* a fresh handle next time: nothing stale survives a healed disk */
    r->reader = NULL;
}

/* What a replica answered to a batch or a probe. */
struct sync_answer {
    int64_t position;
    int64_t applied, skipped;
    bool gap;
};

/* Sends a batch (or nothing: a probe) and reads the replica's answer. */
static int replica_post(struct replica *r, const void *batch, size_t len, struct sync_answer *a)
{
    struct wire_call_info info;
    int err = wire_call(r->cl->srv->net, r->node, batch, len, CLUSTER_SYNC_MS, &r->reply, &info);
    if (err != 0) {
        replica_error(r, "%s", info.detail);
        return err;
    }
    cJSON *j = cJSON_ParseWithLength(buf_body(&r->reply), buf_body_len(&r->reply));
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(j, "position");
    if (info.status != 200 || !cJSON_IsNumber(pos)) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "detail");
        replica_error(r, "%s answered %d: %s%s%s", r->node, info.status,
                      cJSON_IsString(e) ? e->valuestring : "not a sync answer",
                      cJSON_IsString(d) ? ": " : "", cJSON_IsString(d) ? d->valuestring : "");
        cJSON_Delete(j);
        return info.status == 409 ? -EBADMSG : -EIO;
    }
    a->position = (int64_t)pos->valuedouble;
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "applied");
    a->applied = cJSON_IsNumber(x) ? (int64_t)x->valuedouble : 0;
    x = cJSON_GetObjectItemCaseSensitive(j, "skipped");
    a->skipped = cJSON_IsNumber(x) ? (int64_t)x->valuedouble : 0;
    a->gap = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "gap"));
    cJSON_Delete(j);
    int64_t now_mono = host_mono_us(), now_wall = host_wall_us();
    pthread_mutex_lock(&r->cl->lock);
    r->position = a->position;
    r->heard = true;
    r->contact_mono_us = now_mono;
    r->contact_wall_us = now_wall;
    pthread_mutex_unlock(&r->cl->lock);
    r->position_known = true;
    return 0;
}

static int prune_fn(shop *s, void *arg)
{
    return shop_outbox_prune(s, *(const int64_t *)arg);
}

/* Forgets the changes every replica holds, now and then, through the writer. */
static void maybe_prune(struct cluster *cl)
{
    int64_t low = INT64_MAX;
    pthread_mutex_lock(&cl->lock);
    for (int i = 0; i < cl->count; i++) {
        const struct replica *r = &cl->replicas[i];
        if (!r->heard)
            low = -1; /* it may hold anything: keep everything */
        else if (low >= 0 && r->position < low)
            low = r->position;
    }
    bool go = !cl->pruning && !cl->stopping && low >= 0 && low - cl->pruned >= CLUSTER_PRUNE_STEP;
    if (go)
        cl->pruning = true;
    pthread_mutex_unlock(&cl->lock);
    if (!go)
        return;
    int rc = writer_call(&cl->srv->writer, prune_fn, &low);
    pthread_mutex_lock(&cl->lock);
    cl->pruning = false;
    if (rc == 0)
        cl->pruned = low;
    pthread_mutex_unlock(&cl->lock);
}

/* It holds every change there is. */
static void replica_caught_up(struct replica *r)
{
    struct cluster *cl = r->cl;
    r->backoff_ms = CLUSTER_BACKOFF_MS_MIN;
    pthread_mutex_lock(&cl->lock);
    r->missing_at_us = 0;
    if (cl->draining && !r->drained) {
        r->drained = true;
        pthread_cond_broadcast(&cl->cond);
    }
    pthread_mutex_unlock(&cl->lock);
}

/* Asks where the replica is, and reads the outbox's head. */
static int replica_probe(struct replica *r)
{
    struct sync_answer a;
    int err = replica_post(r, NULL, 0, &a);
    r->probe_at_us = host_mono_us() + (int64_t)CLUSTER_PROBE_MS * 1000;
    shop *s = NULL;
    struct shop_outbox_info info;
    bool head_read = false;
    if (err == 0 && reader_get(r, &s) == 0) {
        head_read = shop_outbox_info(s, &info) == 0;
        if (head_read)
            head_seen(r->cl, info.head_seq);
        else
            reader_drop(r);
    }
    if (err == 0 && head_read && a.position > leader_head(r->cl)) {
        /* a leader whose database was replaced would number its changes anew */
        replica_error(r,
                      "%s holds change %" PRId64 " but the leader's outbox ends at %" PRId64
                      ": the copies diverged",
                      r->node, a.position, leader_head(r->cl));
        return -EBADMSG;
    }
    return err;
}

/* The commit time of a batch's first change (the encoding of platform.h). */
static int64_t batch_first_at_us(const struct shop_batch *b)
{
    if (b->count == 0 || b->len < 24)
        return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b->data[16 + i]; /* "FDB1", u32 count, i64 seq, then i64 at_us */
    return (int64_t)v;
}

/* One round with a running replica: probe, or ship one batch, or idle. */
static void replica_ship_step(struct replica *r)
{
    struct cluster *cl = r->cl;
    if (!r->position_known || host_mono_us() >= r->probe_at_us) {
        if (replica_probe(r) != 0) {
            replica_backoff(r);
            return;
        }
    }
    if (r->position >= leader_head(cl)) {
        replica_caught_up(r);
        cluster_wait_ms(cl, CLUSTER_IDLE_MS);
        return;
    }
    shop *s = NULL;
    struct shop_batch b = {0};
    int rc = reader_get(r, &s);
    if (rc == 0 && (rc = shop_outbox_read(s, r->position, CLUSTER_SHIP_CHANGES_MAX,
                                          CLUSTER_SHIP_BYTES_MAX, &b)) != 0) {
        if (rc == -ERANGE)
            replica_error(r,
                          "%s is at change %" PRId64 " but the outbox was pruned past it: "
                          "give it a copy of the leader's database",
                          r->node, r->position);
        else
            replica_error(r, "cannot read the leader's outbox: %s", shop_errmsg(s));
        reader_drop(r);
    }
    if (rc != 0) {
        replica_backoff(r);
        return;
    }
    if (b.count == 0) {
        shop_batch_release(&b);
        replica_caught_up(r);
        cluster_wait_ms(cl, CLUSTER_IDLE_MS);
        return;
    }
    head_seen(cl, b.last_seq);
    pthread_mutex_lock(&cl->lock);
    r->missing_at_us = batch_first_at_us(&b);
    pthread_mutex_unlock(&cl->lock);
    struct sync_answer a;
    int err = replica_post(r, b.data, b.len, &a);
    shop_batch_release(&b);
    if (err != 0) {
        replica_backoff(r);
        return;
    }
    /* after a gap the answer's position is where to resend from: nothing else to do */
    r->backoff_ms = CLUSTER_BACKOFF_MS_MIN;
    maybe_prune(cl);
}

/* Whether the replica runs; a restarted one is asked its position again. */
static bool replica_running(struct replica *r)
{
    char url[WIRE_URL_MAX];
    bool up = wire_peer_url(r->cl->srv->net, r->node, url);
    if (r->child != NULL) {
        struct proc_view v;
        proc_view(r->child, &v);
        up = up && v.pid > 0;
        if (v.pid != r->pid_seen) {
            r->pid_seen = v.pid;
            r->position_known = false;
        }
    }
    if (!up) {
        pthread_mutex_lock(&r->cl->lock);
        r->contact_mono_us = 0;
        if (r->cl->draining && !r->drained) {
            r->drained = true; /* nothing to ship to */
            pthread_cond_broadcast(&r->cl->cond);
        }
        pthread_mutex_unlock(&r->cl->lock);
    }
    return up;
}

static void *replica_main(void *arg)
{
    struct replica *r = arg;
    while (!cluster_stopping(r->cl)) {
        if (replica_running(r))
            replica_ship_step(r);
        else
            cluster_wait_ms(r->cl, CLUSTER_DOWN_POLL_MS);
    }
    return NULL;
}

/* ---- the leader's life ------------------------------------------------------ */

static int leader_start(struct server *srv, struct cluster *cl)
{
    const struct serve_options *o = &srv->opt;
    cl->count = o->replicas;
    for (int i = 0; i < cl->count; i++) {
        struct replica *r = &cl->replicas[i];
        r->cl = cl;
        r->index = i + 1;
        r->backoff_ms = CLUSTER_BACKOFF_MS_MIN;
        snprintf(r->node, sizeof(r->node), "replica%d", i + 1);
        snprintf(r->dir, sizeof(r->dir), "%.3000s/replica%d", o->data_dir, i + 1);
        char url[WIRE_URL_MAX];
        if (wire_peer_url(srv->net, r->node, url))
            continue; /* --peer: it runs elsewhere */
        int err = proc_start(srv, r->node, r->dir, NULL, &r->child);
        if (err != 0)
            return err;
    }
    for (int i = 0; i < cl->count; i++) {
        struct replica *r = &cl->replicas[i];
        pthread_mutex_lock(&srv->panel.lock);
        for (int p = 0; p < 4; p++) {
            static const char *const what[] = {"drop", "delay", "duplicate", "reorder"};
            char point[FAULTS_NAME_MAX];
            snprintf(point, sizeof(point), "net/leader/%s/%s", r->node, what[p]);
            (void)panel_add(&srv->panel, point);
        }
        pthread_mutex_unlock(&srv->panel.lock);
        if (r->child != NULL)
            proc_settle(r->child);
    }
    for (int i = 0; i < cl->count; i++) {
        struct replica *r = &cl->replicas[i];
        int rc = pthread_create(&r->thread, NULL, replica_main, r);
        if (rc != 0) {
            fprintf(stderr, "faultdrill serve: cannot start a thread for %s: %s\n", r->node,
                    strerror(rc));
            return -rc;
        }
        r->thread_started = true;
    }
    return 0;
}

int cluster_start(struct server *srv)
{
    assert(srv->cluster == NULL && srv->opt.role == SERVE_CLUSTER);
    struct cluster *cl = NULL;
    int err = cluster_create(srv, &cl);
    if (err != 0) {
        fprintf(stderr, "faultdrill serve: cannot set up the cluster: %s\n", strerror(-err));
        return err;
    }
    srv->cluster = cl;
    return leader_start(srv, cl);
}

void cluster_stop(struct server *srv)
{
    struct cluster *cl = srv->cluster;
    if (cl == NULL)
        return;
    /* Ship what is pending first (civetweb has stopped: no more writes come). */
    pthread_mutex_lock(&cl->lock);
    cl->draining = true;
    pthread_cond_broadcast(&cl->cond);
    struct timespec until = host_deadline_after_us((int64_t)CLUSTER_DRAIN_MS * 1000);
    for (int i = 0; i < cl->count;) {
        const struct replica *r = &cl->replicas[i];
        if (r->drained || !r->thread_started) {
            i++;
            continue;
        }
        if (pthread_cond_timedwait(&cl->cond, &cl->lock, &until) == ETIMEDOUT)
            break;
    }
    cl->stopping = true;
    pthread_cond_broadcast(&cl->cond);
    pthread_mutex_unlock(&cl->lock);
    for (int i = 0; i < cl->count; i++) {
        struct replica *r = &cl->replicas[i];
        if (r->thread_started)
            pthread_join(r->thread, NULL);
        proc_stop(r->child);
        shop_close(r->reader);
        buf_release(&r->reply);
    }
    srv->cluster = NULL;
    cluster_free(cl);
}

/* ---- what the leader says --------------------------------------------------- */

/* A replica as the status and the registry see it. */
struct replica_view {
    char node[FAULTS_NODE_MAX];
    pid_t pid;
    int port;
    bool heard;
    int64_t position, missing_at_us, contact_mono_us, contact_wall_us;
    unsigned restarts;
    char last_error[SERVE_DETAIL_MAX];
    char log_path[SERVE_PATH_MAX];
};

static int views_get(struct cluster *cl, struct replica_view *v)
{
    for (int i = 0; i < cl->count; i++) {
        struct replica *r = &cl->replicas[i];
        struct proc_view c = {0};
        if (r->child != NULL)
            proc_view(r->child, &c);
        char url[WIRE_URL_MAX];
        const char *colon = NULL;
        if (r->child == NULL && wire_peer_url(cl->srv->net, r->node, url))
            colon = strrchr(url, ':');
        pthread_mutex_lock(&cl->lock);
        memcpy(v[i].node, r->node, sizeof(v[i].node));
        v[i].pid = c.pid;
        v[i].port = r->child != NULL ? c.port : colon != NULL ? atoi(colon + 1) : 0;
        v[i].heard = r->heard;
        v[i].position = r->position;
        v[i].missing_at_us = r->missing_at_us;
        v[i].contact_mono_us = r->contact_mono_us;
        v[i].contact_wall_us = r->contact_wall_us;
        v[i].restarts = c.restarts;
        /* a death says more than the last failed send to the dead */
        bool child_says = r->child != NULL && (c.pid <= 0 || r->last_error[0] == '\0');
        snprintf(v[i].last_error, sizeof(v[i].last_error), "%s",
                 child_says ? c.last_error : r->last_error);
        snprintf(v[i].log_path, sizeof(v[i].log_path), "%s", c.log_path);
        pthread_mutex_unlock(&cl->lock);
        if (r->child == NULL)
            v[i].pid = 0;
    }
    return cl->count;
}

/* down: not running or not heard lately; catching-up: lacks a change older
 * than CLUSTER_BEHIND_MS; up otherwise. */
static const char *view_state(const struct replica_view *v, int64_t now_mono, int64_t now_wall)
{
    if (v->port <= 0 || v->contact_mono_us == 0 ||
        now_mono - v->contact_mono_us > (int64_t)CLUSTER_HEALTHY_MS * 1000)
        return "down";
    if (v->missing_at_us > 0 && now_wall - v->missing_at_us > (int64_t)CLUSTER_BEHIND_MS * 1000)
        return "catching-up";
    return "up";
}

static void json_seconds(struct buf *b, int64_t us)
{
    char text[32];
    snprintf(text, sizeof(text), "%.3f", (double)(us > 0 ? us : 0) / 1e6);
    buf_puts(b, text);
}

void cluster_status(struct request *rq)
{
    struct cluster *cl = rq->srv->cluster;
    if (cl == NULL || rq->srv->opt.role != SERVE_CLUSTER) {
        status_not_configured(rq);
        return;
    }
    struct replica_view v[SERVE_REPLICAS_MAX];
    int n = views_get(cl, v);
    int64_t head = leader_head(cl), now_mono = host_mono_us(), now_wall = host_wall_us();
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"topology\":\"cluster\",\"leader\":{\"node\":");
    json_str(b, rq->srv->opt.node);
    buf_puts(b, ",\"port\":");
    buf_i64(b, rq->srv->opt.port);
    buf_puts(b, ",\"pid\":");
    buf_i64(b, (int64_t)getpid());
    buf_puts(b, ",\"seq\":");
    buf_i64(b, head);
    buf_puts(b, "},\"replicas\":[");
    for (int i = 0; i < n; i++) {
        buf_puts(b, i ? ",{\"node\":" : "{\"node\":");
        json_str(b, v[i].node);
        buf_puts(b, ",\"port\":");
        v[i].port > 0 ? buf_i64(b, v[i].port) : buf_puts(b, "null");
        buf_puts(b, ",\"pid\":");
        v[i].pid > 0 ? buf_i64(b, (int64_t)v[i].pid) : buf_puts(b, "null");
        buf_puts(b, ",\"state\":");
        json_str(b, view_state(&v[i], now_mono, now_wall));
        buf_puts(b, ",\"position\":");
        v[i].heard ? buf_i64(b, v[i].position) : buf_puts(b, "null");
        buf_puts(b, ",\"lagChanges\":");
        v[i].heard ? buf_i64(b, head > v[i].position ? head - v[i].position : 0)
                   : buf_puts(b, "null");
        buf_puts(b, ",\"lagSeconds\":");
        json_seconds(b, v[i].missing_at_us > 0 ? now_wall - v[i].missing_at_us : 0);
        buf_puts(b, ",\"lastError\":");
        json_str(b, v[i].last_error);
        buf_puts(b, ",\"lastContact\":");
        if (v[i].contact_wall_us > 0)
            json_time(b, v[i].contact_wall_us);
        else
            buf_puts(b, "null");
        buf_puts(b, ",\"restarts\":");
        buf_i64(b, v[i].restarts);
        buf_puts(b, ",\"log\":");
        if (v[i].log_path[0] != '\0')
            json_str(b, v[i].log_path);
        else
            buf_puts(b, "null");
        buf_puts(b, "}");
    }
    buf_puts(b, "]}");
    http_reply(rq, 200);
}

/* ---- a replica's side: writes go to the leader ---------------------------------- */

/* Relays the leader's reply (in rq->w->out) to the client. */
static void relay(struct request *rq, const struct wire_forwarded *rep, bool stale)
{
    char headers[160];
    int n = snprintf(headers, sizeof(headers), "X-Faultdrill-Via: leader");
    if (rep->seq > 0)
        n += snprintf(headers + n, sizeof(headers) - (size_t)n,
                      "\r\n" CLUSTER_SEQ_HEADER ": %" PRId64, rep->seq);
    if (stale)
        snprintf(headers + n, sizeof(headers) - (size_t)n, "\r\nX-Faultdrill-Stale: 1");
    const char *type =
        rep->status == 204 || rep->content_type[0] == '\0' ? NULL : rep->content_type;
    http_reply_bytes(rq, &rq->w->out, rep->status, type, headers);
}

/* Sends method+target to the leader and relays its answer. */
static void forward_to_leader(struct request *rq, const char *method, const char *target,
                              const void *body, size_t len, int timeout_ms, bool wait_for_seq)
{
    struct server *srv = rq->srv;
    char leader[WIRE_URL_MAX];
    if (srv->net == NULL || !wire_peer_url(srv->net, "leader", leader)) {
        snprintf(rq->detail, sizeof(rq->detail),
                 "%s does not know where its leader is (--peer leader=URL)", srv->opt.node);
        http_reply_error(rq, 503, "leader unreachable", rq->detail);
        return;
    }
    struct wire_forwarded rep;
    int err =
        wire_forward(srv->net, "leader", method, target, mg_get_header(rq->conn, "Content-Type"),
                     body, len, timeout_ms, &rq->w->out, &rep);
    if (err != 0 && !rep.maybe_sent) {
        snprintf(rq->detail, sizeof(rq->detail), "%s cannot reach its leader at %s: %s",
                 srv->opt.node, leader, strerror(-err));
        http_reply_error(rq, 503, "leader unreachable", rq->detail);
        return;
    }
    if (err != 0) {
        snprintf(rq->detail, sizeof(rq->detail),
                 "%s forwarded the request to its leader at %s, which did not answer (%s): "
                 "it may or may not have been applied",
                 srv->opt.node, leader, err == -ETIMEDOUT ? "timed out" : strerror(-err));
        http_reply_error(rq, strcmp(method, "GET") == 0 ? 503 : 500,
                         strcmp(method, "GET") == 0 ? "leader unreachable" : "outcome unknown",
                         rq->detail);
        return;
    }
    bool stale = false;
    if (wait_for_seq && rep.status >= 200 && rep.status < 300 && rep.seq > 0)
        stale = !follow_wait_applied(srv, rep.seq, CLUSTER_RYW_MS);
    relay(rq, &rep, stale);
}

bool cluster_forward(struct request *rq)
{
    if (rq->srv->opt.role != SERVE_REPLICA)
        return false;
    const char *method = rq->ri->request_method;
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return false;
    const char *uri = rq->ri->local_uri_raw != NULL ? rq->ri->local_uri_raw : rq->ri->local_uri;
    /* The leader's messages, and this node's own fault panel, stay here. */
    if (strcmp(uri, "/api/node") == 0 || strcmp(uri, "/faults") == 0)
        return false;
    char target[2 * SERVE_PATH_MAX];
    const char *query = rq->ri->query_string;
    int n = snprintf(target, sizeof(target), "%s%s%s", uri, query != NULL ? "?" : "",
                     query != NULL ? query : "");
    if (n < 0 || (size_t)n >= sizeof(target)) {
        http_reply_error(rq, 400, "bad request", "the request target is too long");
        return true;
    }
    if (wire_read_body(rq, SERVE_BODY_MAX) == 0)
        forward_to_leader(rq, method, target, rq->w->body.p, rq->w->body.len, CLUSTER_FORWARD_MS,
                          true);
    return true;
}

void cluster_get_server(struct request *rq)
{
    struct server *srv = rq->srv;
    if (srv->opt.role == SERVE_REPLICA) { /* the registry is the leader's */
        forward_to_leader(rq, "GET", "/getServer", NULL, 0, CLUSTER_REGISTRY_MS, false);
        return;
    }
    struct cluster *cl = srv->cluster;
    if (cl == NULL) {
        status_not_configured(rq);
        return;
    }
    struct replica_view v[SERVE_REPLICAS_MAX];
    int n = views_get(cl, v);
    int64_t now_mono = host_mono_us(), now_wall = host_wall_us();
    /* the leader (it is answering) and the replicas that are up, in order */
    const char *nodes[SERVE_REPLICAS_MAX + 1] = {srv->opt.node};
    char servers[SERVE_REPLICAS_MAX + 1][WIRE_URL_MAX];
    snprintf(servers[0], sizeof(servers[0]), "http://127.0.0.1:%d", srv->opt.port);
    int healthy = 1;
    for (int i = 0; i < n; i++) {
        if (strcmp(view_state(&v[i], now_mono, now_wall), "up") != 0 ||
            !wire_peer_url(srv->net, cl->replicas[i].node, servers[healthy]))
            continue;
        nodes[healthy] = cl->replicas[i].node;
        healthy++;
    }
    unsigned turn = atomic_fetch_add(&cl->rotation, 1) % (unsigned)healthy;
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"server\":");
    json_str(b, servers[turn]);
    buf_puts(b, ",\"node\":");
    json_str(b, nodes[turn]);
    buf_puts(b, ",\"healthy\":");
    buf_i64(b, healthy);
    buf_puts(b, "}");
    http_reply(rq, 200);
}
