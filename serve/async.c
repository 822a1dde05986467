/*
 * async.c — asynchronous replication in serve (--topology async): a pump
 * thread ships the primary's outbox (fd_outbox, written in each write's own
 * transaction) to db_async.sqlite, node `secondary`, in ordered batches.
 *
 * A batch is read when it leaves and is applied `--delay` milliseconds
 * later, the WAN's transit time; up to PUMP_WINDOW batches travel at once,
 * so a long delay does not cap the throughput. The secondary applies a
 * batch and records its position in ONE transaction (shop_replica_apply),
 * idempotently by sequence. Anything that goes wrong — the link drops a
 * batch (net/primary/secondary/drop), the secondary's disk fails, a batch
 * lands past a gap — throws away what is in flight and resends from the
 * secondary's own position after a backoff (go-back-N), so nothing is lost
 * and nothing is applied twice. The primary's outbox is pruned, through
 * the writer, up to what the secondary holds.
 *
 * Stop: what is still in the outbox is shipped without the delay, within a
 * bound, so a clean stop leaves the secondary equal to the primary.
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
#define PUMP_LOST_US 100000            /* a dropped batch is noticed after this + delay */
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
    int64_t due_mono_us;   /* when it arrives */
    int64_t first_at_us;   /* commit time of its first change (wall) */
    bool dropped;          /* the link lost it */
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
    shop *reader;    /* read-only handle on the primary: its outbox */
    shop *secondary; /* db_async.sqlite */
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

static const char drop_point[] = "net/primary/secondary/drop";
static const char delay_point[] = "net/primary/secondary/delay";

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
                  ": the secondary must be re-seeded (copy db.sqlite to db_async.sqlite "
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
    int64_t extra = faults_check(delay_point);
    t->dropped = faults_check(drop_point) != 0;
    t->due_mono_us = host_mono_us() + delay_us + extra;
    t->first_at_us = batch_first_at(&t->batch);
    p->sent = t->batch.last_seq;
    p->count++;
    pthread_mutex_lock(&p->lock);
    p->view.batches_sent++;
    p->view.dropped += t->dropped;
    p->view.in_transit = p->count;
    pthread_mutex_unlock(&p->lock);
}

/* Applies the batches that have arrived; returns false after a go-back. */
static bool deliver(struct async_pump *p, bool ignore_delay)
{
    while (p->count > 0) {
        struct transit *t = &p->transit[p->head];
        int64_t now = host_mono_us();
        if (!ignore_delay && now < t->due_mono_us)
            return true;
        if (t->dropped) {
            /* Nothing arrives; the sender notices when no answer came. */
            if (now < t->due_mono_us + PUMP_LOST_US)
                return true;
            set_error(p, PUMP_RETRYING, "a batch was lost on the link (%s): resending", drop_point);
            go_back(p);
            return false;
        }
        struct shop_apply_result res;
        int rc = shop_replica_apply(p->secondary, "primary", t->batch.data, t->batch.len, &res);
        if (rc == 0 && res.gap) {
            set_error(p, PUMP_RETRYING, "a batch landed past a gap at %" PRId64 ": resending",
                      res.position);
            rc = -EAGAIN;
        } else if (rc < 0) {
            set_error(p, PUMP_RETRYING, "the secondary refused a batch: %s",
                      shop_errmsg(p->secondary));
        }
        if (rc < 0) {
            int64_t seq = 0, at = 0;
            if (shop_replica_position(p->secondary, "primary", &seq, &at) == 0)
                p->position = seq;
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
        if (deliver(p, false))
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
        if (p->position >= head && p->count == 0)
            break;
        if (!deliver(p, true)) {
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
    shop_close(p->secondary);
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
    struct shop_config cfg = {
        .topology = SHOP_SINGLE,
        .primary = {.node = "secondary", .path = srv->second_path,
                    .vfs = faults_vfs_name("secondary")},
        .sync_full = true,
    };
    int err = shop_open(&cfg, &srv->env, &p->secondary, msg);
    if (err)
        fprintf(stderr, "faultdrill serve: cannot open the secondary %s: %s\n", srv->second_path,
                msg);
    if (!err && (err = shop_open_reader(&srv->cfg.primary, &srv->env, &p->reader, msg)) != 0)
        fprintf(stderr, "faultdrill serve: cannot read the primary's outbox: %s\n", msg);
    int64_t at = 0;
    if (!err && (err = shop_replica_position(p->secondary, "primary", &p->position, &at)) != 0)
        fprintf(stderr, "faultdrill serve: cannot read the secondary's position: %s\n",
                shop_errmsg(p->secondary));
    if (!err) {
        p->sent = p->position;
        p->pruned_through = 0;
        p->view.secondary_seq = p->position;
        p->view.secondary_at_us = at;
        (void)panel_add(&srv->panel, drop_point);
        (void)panel_add(&srv->panel, delay_point);
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
    buf_puts(b, "}");
    http_reply(rq, 200);
}
