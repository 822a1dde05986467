/*
 * async.c — asynchronous replication in serve (--topology async): a pump
 * thread ships the primary's outbox (fd_outbox, written in each write's own
 * transaction) to node `secondary` in ordered batches. The secondary is its
 * own process (DATA/secondary/db_async.sqlite, started here by node_proc.c
 * unless --peer secondary=URL names one elsewhere); a batch travels as a
 * node message (node_net.c), which the link's fault points may lose.
 *
 * A batch is read when it leaves and sent `--delay` milliseconds later, the
 * WAN's transit time; up to PUMP_WINDOW batches travel at once, so a long
 * delay does not cap the throughput. The secondary applies a batch and
 * records its position in ONE transaction (node_follow.c), idempotently by
 * sequence. Anything that goes wrong — the link loses a batch
 * (net/primary/secondary/drop), the secondary's disk fails or it is not
 * running, a batch lands past a gap — throws away what is in flight and
 * resends from the secondary's own position (asked again) after a backoff
 * (go-back-N), so nothing is lost and nothing is applied twice. The
 * primary's outbox is pruned, through the writer, up to what the secondary
 * holds.
 *
 * Stop: what is still in the outbox is shipped without the delay, within a
 * bound, so a clean stop leaves the secondary equal to the primary; then
 * the secondary is stopped.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/internal.h"

#define PUMP_TICK_US 5000              /* the pump looks at the outbox this often */
#define PUMP_WINDOW 4                  /* batches in transit at once */
#define PUMP_BATCH_BYTES (1u << 20)    /* about this much per batch */
#define PUMP_BACKOFF_MIN_US 100000     /* after a failure, wait this long... */
#define PUMP_BACKOFF_MAX_US 2000000    /* ...doubling up to this */
#define PUMP_CALL_MS 5000             /* the secondary's answer to one batch */
#define PUMP_PRUNE_EVERY_US 1000000    /* prune the primary's outbox this often */
#define PUMP_DRAIN_US 3000000          /* at stop: ship what is left within this */

enum pump_state {
    PUMP_STREAMING, /* the secondary holds everything, or what it lacks is in transit */
    PUMP_RETRYING,  /* the last attempt failed: waiting to resend */
    PUMP_STUCK,     /* the secondary cannot be fed from the outbox (pruned past it) */
};

static const char *const pump_state_names[] = {"streaming", "retrying", "stuck"};

struct transit {
    struct shop_batch batch;
    int64_t due_mono_us;   /* when it is sent */
    int64_t first_at_us;   /* commit time of its first change (wall) */
};

/* What /replication/status shows; written by the pump under the lock. */
struct pump_view {
    enum pump_state state;
    int64_t primary_seq, primary_at_us;
    int64_t secondary_seq, secondary_at_us;
    int64_t oldest_unapplied_at_us; /* 0: nothing missing */
    int64_t pruned_through;
    size_t in_transit;
    uint64_t batches_sent, batches_applied, changes_applied, duplicates, resends, dropped,
        failures;
    int64_t last_applied_wall_us;
    int64_t last_lag_us;            /* commit -> applied, of the last change applied */
    char last_error[SHOP_ERRMSG_MAX];
};

struct async_pump {
    struct server *srv;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    bool started;
    shop *reader;             /* read-only handle on the primary: its outbox */
    struct proc *child; /* the secondary's process; NULL: --peer */
    struct buf reply;         /* the secondary's answer */
    bool position_known;      /* asked since the last failure */
    /* the pump thread's own state */
    struct transit transit[PUMP_WINDOW];
    size_t head, count;         /* ring of batches in transit */
    int64_t sent;               /* last sequence read into a batch */
    int64_t position;           /* what the secondary holds */
    int64_t retry_at_mono_us;   /* after a failure: not before */
    int64_t backoff_us;
    int64_t pruned_through, pruned_at_mono_us;
    int64_t missing_pos, missing_at_us; /* oldest_missing_at's cache: -1 none */
    struct pump_view view;      /* under lock */
};

static const char *const link_points[] = {
    "net/primary/secondary/drop", "net/primary/secondary/delay",
    "net/primary/secondary/duplicate", "net/primary/secondary/reorder"};

/* ---- the pump ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static void set_error(struct async_pump *p,
                                                            enum pump_state st,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&p->lock);
    p->view.state = st;
    p->view.failures++;
    vsnprintf(p->view.last_error, sizeof(p->view.last_error), fmt, ap);
    pthread_mutex_unlock(&p->lock);
    va_end(ap);
}

/* Everything in transit is thrown away; the next batch starts after the
 * secondary's position, not before a backoff. */
static void go_back(struct async_pump *p)
{
    while (p->count > 0) {
        shop_batch_release(&p->transit[p->head].batch);
        p->head = (p->head + 1) % PUMP_WINDOW;
        p->count--;
    }
    p->sent = p->position;
    p->position_known = false;
    p->retry_at_mono_us = host_mono_us() + p->backoff_us;
    p->backoff_us = p->backoff_us * 2 > PUMP_BACKOFF_MAX_US ? PUMP_BACKOFF_MAX_US
                                                             : p->backoff_us * 2;
    pthread_mutex_lock(&p->lock);
    p->view.resends++;
    p->view.in_transit = 0;
    pthread_mutex_unlock(&p->lock);
}

/* The commit time of a batch's first change: bytes 16..23 ("FDB1", u32
 * count, i64 seq, i64 at_us, little endian; platform.h). */
static int64_t batch_first_at(const struct shop_batch *b)
{
    if (b->len < 24 || b->count == 0)
        return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b->data[16 + i];
    return (int64_t)v;
}

/* Reads the next batch into transit, if there is one and room. */
static void send_next(struct async_pump *p, int64_t head_seq, int64_t delay_us)
{
    if (p->count == PUMP_WINDOW || p->sent >= head_seq || host_mono_us() < p->retry_at_mono_us)
        return;
    struct transit *t = &p->transit[(p->head + p->count) % PUMP_WINDOW];
    memset(t, 0, sizeof(*t));
    int rc = shop_outbox_read(p->reader, p->sent, SHOP_BATCH_CHANGES_MAX, PUMP_BATCH_BYTES,
                              &t->batch);
    if (rc == -ERANGE) {
        set_error(p, PUMP_STUCK,
                  "the primary's outbox no longer holds the changes after %" PRId64
                  ": the secondary must be re-seeded (copy db.sqlite to secondary/db_async.sqlite "
                  "while stopped)",
                  p->position);
        p->retry_at_mono_us = host_mono_us() + PUMP_BACKOFF_MAX_US;
        return;
    }
    if (rc < 0 || t->batch.count == 0) {
        if (rc < 0)
            set_error(p, PUMP_RETRYING, "reading the primary's outbox: %s", shop_errmsg(p->reader));
        shop_batch_release(&t->batch);
        return;
    }
    t->due_mono_us = host_mono_us() + delay_us;
    t->first_at_us = batch_first_at(&t->batch);
    p->sent = t->batch.last_seq;
    p->count++;
    pthread_mutex_lock(&p->lock);
    p->view.batches_sent++;
    p->view.in_transit = p->count;
    pthread_mutex_unlock(&p->lock);
}

/* What the secondary answered to a batch or a probe. */
struct answer {
    int64_t position, position_at_us;
    int64_t applied, skipped;
    bool gap;
};

/*
 * Sends a batch (or nothing: where are you?) to the secondary; 0 with its
 * answer, or -errno after saying why in the view.
 */
static int secondary_call(struct async_pump *p, const void *batch, size_t len, struct answer *a)
{
    struct wire_call_info info;
    int rc = wire_call(p->srv->net, "secondary", batch, len, PUMP_CALL_MS, &p->reply, &info);
    if (info.lost) {
        pthread_mutex_lock(&p->lock);
        p->view.dropped++;
        pthread_mutex_unlock(&p->lock);
    }
    if (rc != 0) {
        set_error(p, PUMP_RETRYING, "%s: resending", info.detail);
        return rc;
    }
    cJSON *j = cJSON_ParseWithLength(buf_body(&p->reply), buf_body_len(&p->reply));
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(j, "position");
    if (info.status != 200 || !cJSON_IsNumber(pos)) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "detail");
        set_error(p, PUMP_RETRYING, "the secondary refused a batch (%d): %s%s%s", info.status,
                  cJSON_IsString(e) ? e->valuestring : "not an answer",
                  cJSON_IsString(d) ? ": " : "", cJSON_IsString(d) ? d->valuestring : "");
        cJSON_Delete(j);
        return -EIO;
    }
    a->position = (int64_t)pos->valuedouble;
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "positionAtUs");
    a->position_at_us = cJSON_IsNumber(x) ? (int64_t)x->valuedouble : 0;
    x = cJSON_GetObjectItemCaseSensitive(j, "applied");
    a->applied = cJSON_IsNumber(x) ? (int64_t)x->valuedouble : 0;
    x = cJSON_GetObjectItemCaseSensitive(j, "skipped");
    a->skipped = cJSON_IsNumber(x) ? (int64_t)x->valuedouble : 0;
    a->gap = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "gap"));
    cJSON_Delete(j);
    return 0;
}

/* Asks the secondary where it is; false (and a backoff) when it cannot say. */
static bool probe(struct async_pump *p)
{
    if (p->position_known)
        return true;
    if (host_mono_us() < p->retry_at_mono_us)
        return false;
    struct answer a;
    if (secondary_call(p, NULL, 0, &a) != 0) {
        go_back(p);
        return false;
    }
    p->position = a.position;
    p->sent = a.position;
    p->position_known = true;
    pthread_mutex_lock(&p->lock);
    p->view.secondary_seq = a.position;
    p->view.secondary_at_us = a.position_at_us;
    pthread_mutex_unlock(&p->lock);
    return true;
}

/* Applies the batches that have arrived; returns false after a go-back. */
static bool deliver(struct async_pump *p, bool ignore_delay)
{
    while (p->count > 0) {
        struct transit *t = &p->transit[p->head];
        int64_t now = host_mono_us();
        if (!ignore_delay && now < t->due_mono_us)
            return true;
        struct answer res;
        int rc = secondary_call(p, t->batch.data, t->batch.len, &res);
        if (rc == 0 && res.gap) {
            set_error(p, PUMP_RETRYING, "a batch landed past a gap at %" PRId64 ": resending",
                      res.position);
            rc = -EAGAIN;
        }
        if (rc < 0) {
            if (rc == -EAGAIN)
                p->position = res.position;
            go_back(p);
            return false;
        }
        int64_t wall = host_wall_us();
        p->position = res.position;
        p->backoff_us = PUMP_BACKOFF_MIN_US;
        pthread_mutex_lock(&p->lock);
        p->view.state = PUMP_STREAMING;
        p->view.batches_applied++;
        p->view.changes_applied += res.applied;
        p->view.duplicates += res.skipped;
        p->view.secondary_seq = res.position;
        p->view.secondary_at_us = res.position_at_us;
        p->view.last_applied_wall_us = wall;
        if (res.applied > 0)
            p->view.last_lag_us = wall - res.position_at_us;
        pthread_mutex_unlock(&p->lock);
        shop_batch_release(&t->batch);
        p->head = (p->head + 1) % PUMP_WINDOW;
        p->count--;
        pthread_mutex_lock(&p->lock);
        p->view.in_transit = p->count;
        pthread_mutex_unlock(&p->lock);
    }
    return true;
}

struct prune_arg {
    int64_t seq;
};

static int prune_fn(shop *s, void *arg)
{
    return shop_outbox_prune(s, ((struct prune_arg *)arg)->seq);
}

static void prune(struct async_pump *p)
{
    int64_t now = host_mono_us();
    if (p->position <= p->pruned_through || now - p->pruned_at_mono_us < PUMP_PRUNE_EVERY_US)
        return;
    p->pruned_at_mono_us = now;
    struct prune_arg a = {.seq = p->position};
    if (writer_call(&p->srv->writer, prune_fn, &a) == 0) {
        p->pruned_through = a.seq;
        pthread_mutex_lock(&p->lock);
        p->view.pruned_through = a.seq;
        pthread_mutex_unlock(&p->lock);
    }
}

/*
 * The commit time of the oldest change the secondary lacks (position + 1):
 * the first batch in transit starts there; with nothing in transit (a
 * backoff) it is read from the outbox, once per position.
 */
static int64_t oldest_missing_at(struct async_pump *p)
{
    if (p->count > 0)
        return p->transit[p->head].first_at_us;
    if (p->missing_pos != p->position) {
        struct shop_batch b = {0};
        if (shop_outbox_read(p->reader, p->position, 1, 1, &b) == 0 && b.count > 0) {
            p->missing_pos = p->position;
            p->missing_at_us = batch_first_at(&b);
        }
        shop_batch_release(&b);
    }
    return p->missing_pos == p->position ? p->missing_at_us : 0;
}

/* One look at the outbox: returns the primary's head sequence. */
static int64_t observe(struct async_pump *p)
{
    struct shop_outbox_info info;
    if (shop_outbox_info(p->reader, &info) != 0) {
        set_error(p, PUMP_RETRYING, "reading the primary's outbox: %s", shop_errmsg(p->reader));
        return p->sent;
    }
    int64_t oldest = info.head_seq > p->position ? oldest_missing_at(p) : 0;
    pthread_mutex_lock(&p->lock);
    p->view.primary_seq = info.head_seq;
    p->view.primary_at_us = info.head_at_us;
    p->view.oldest_unapplied_at_us = oldest;
    pthread_mutex_unlock(&p->lock);
    return info.head_seq;
}

static bool stopping(struct async_pump *p)
{
    pthread_mutex_lock(&p->lock);
    bool s = p->stopping;
    pthread_mutex_unlock(&p->lock);
    return s;
}

static void *pump_main(void *arg)
{
    struct async_pump *p = arg;
    const int64_t delay_us = p->srv->opt.delay_ms * 1000;
    while (!stopping(p)) {
        int64_t head = observe(p);
        if (probe(p) && deliver(p, false))
            send_next(p, head, delay_us);
        prune(p);
        pthread_mutex_lock(&p->lock);
        if (!p->stopping) {
            struct timespec until = host_deadline_after_us(PUMP_TICK_US);
            pthread_cond_timedwait(&p->wake, &p->lock, &until);
        }
        pthread_mutex_unlock(&p->lock);
    }
    /* Drain: no more requests come; ship the rest without the WAN delay. */
    int64_t deadline = host_mono_us() + PUMP_DRAIN_US;
    p->retry_at_mono_us = 0;
    p->backoff_us = PUMP_BACKOFF_MIN_US;
    while (host_mono_us() < deadline) {
        int64_t head = observe(p);
        if (p->position_known && p->position >= head && p->count == 0)
            break;
        if (!probe(p) || !deliver(p, true)) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000L};
            nanosleep(&ts, NULL);
            p->retry_at_mono_us = 0;
            continue;
        }
        send_next(p, head, 0);
    }
    go_back(p); /* releases anything left in transit */
    return NULL;
}

/* ---- life ----------------------------------------------------------------- */

static void pump_free(struct async_pump *p)
{
    shop_close(p->reader);
    proc_stop(p->child);
    buf_release(&p->reply);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int async_start(struct server *srv)
{
    struct async_pump *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        fprintf(stderr, "faultdrill serve: out of memory\n");
        return -ENOMEM;
    }
    p->srv = srv;
    p->backoff_us = PUMP_BACKOFF_MIN_US;
    p->missing_pos = -1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    char msg[SHOP_ERRMSG_MAX] = "";
    int err = shop_open_reader(&srv->cfg.primary, &srv->env, &p->reader, msg);
    if (err)
        fprintf(stderr, "faultdrill serve: cannot read the primary's outbox: %s\n", msg);
    char url[WIRE_URL_MAX], dir[SERVE_PATH_MAX];
    if (!err && !wire_peer_url(srv->net, "secondary", url)) { /* not --peer: ours to run */
        snprintf(dir, sizeof(dir), "%.4000s/secondary", srv->opt.data_dir);
        err = proc_start(srv, "secondary", dir, NULL, &p->child);
        if (!err)
            proc_settle(p->child);
    }
    if (!err) {
        pthread_mutex_lock(&srv->panel.lock);
        for (size_t i = 0; i < sizeof(link_points) / sizeof(link_points[0]); i++)
            (void)panel_add(&srv->panel, link_points[i]);
        pthread_mutex_unlock(&srv->panel.lock);
        err = -pthread_create(&p->thread, NULL, pump_main, p);
        if (err)
            fprintf(stderr, "faultdrill serve: cannot start the pump: %s\n", strerror(-err));
    }
    if (err) {
        pump_free(p);
        return err;
    }
    p->started = true;
    srv->async = p;
    return 0;
}

void async_stop(struct server *srv)
{
    struct async_pump *p = srv->async;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    srv->async = NULL;
    pump_free(p);
}

/* ---- GET /replication/status ----------------------------------------------- */

static void put_seconds(struct buf *b, int64_t us)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%.3f", (double)us / 1e6);
    buf_puts(b, tmp);
}

void async_status(struct request *rq)
{
    struct async_pump *p = rq->srv->async;
    if (p == NULL) {
        status_not_configured(rq);
        return;
    }
    struct pump_view v;
    pthread_mutex_lock(&p->lock);
    v = p->view;
    pthread_mutex_unlock(&p->lock);
    int64_t now = host_wall_us();
    int64_t lag_changes = v.primary_seq > v.secondary_seq ? v.primary_seq - v.secondary_seq : 0;
    int64_t lag_us = v.oldest_unapplied_at_us > 0 && now > v.oldest_unapplied_at_us
                         ? now - v.oldest_unapplied_at_us
                         : 0;
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"topology\":\"async\",\"primary\":\"primary\",\"secondary\":\"secondary\"");
    buf_puts(b, ",\"state\":");
    json_str(b, pump_state_names[v.state]);
    buf_puts(b, ",\"delayMs\":");
    buf_i64(b, rq->srv->opt.delay_ms);
    buf_puts(b, ",\"primarySeq\":");
    buf_i64(b, v.primary_seq);
    buf_puts(b, ",\"secondarySeq\":");
    buf_i64(b, v.secondary_seq);
    buf_puts(b, ",\"lagChanges\":");
    buf_i64(b, lag_changes);
    buf_puts(b, ",\"lagSeconds\":");
    put_seconds(b, lag_us);
    buf_puts(b, ",\"lastApplyLagSeconds\":");
    put_seconds(b, v.last_lag_us);
    buf_puts(b, ",\"inTransit\":");
    buf_i64(b, (int64_t)v.in_transit);
    buf_puts(b, ",\"batchesSent\":");
    buf_i64(b, (int64_t)v.batches_sent);
    buf_puts(b, ",\"batchesApplied\":");
    buf_i64(b, (int64_t)v.batches_applied);
    buf_puts(b, ",\"changesApplied\":");
    buf_i64(b, (int64_t)v.changes_applied);
    buf_puts(b, ",\"duplicatesSkipped\":");
    buf_i64(b, (int64_t)v.duplicates);
    buf_puts(b, ",\"dropped\":");
    buf_i64(b, (int64_t)v.dropped);
    buf_puts(b, ",\"resends\":");
    buf_i64(b, (int64_t)v.resends);
    buf_puts(b, ",\"failures\":");
    buf_i64(b, (int64_t)v.failures);
    buf_puts(b, ",\"prunedThrough\":");
    buf_i64(b, v.pruned_through);
    buf_puts(b, ",\"lastAppliedAt\":");
    if (v.last_applied_wall_us > 0)
        json_time(b, v.last_applied_wall_us);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"lastError\":");
    json_str(b, v.last_error);
    proc_json(b, "secondaryProcess", rq->srv, "secondary", p->child);
    buf_puts(b, "}");
    http_reply(rq, 200);
}
