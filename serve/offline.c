/*
 * offline.c — offline-first sync in serve (--topology offline, DESIGN.md
 * §2): the shop is served from db.sqlite (node `local`), whose every write
 * records its fd_sync_queue rows in its own transaction; a sync job thread
 * pushes that queue to node `central` every --interval. Central is its own
 * process (DATA/central/db_central.sqlite, started here by node_proc.c
 * unless --peer central=URL names one elsewhere); a push travels as a node
 * message (node_net.c), whose link fault points act in the sender:
 * net/local/central/drop|delay|... here, net/central/local/drop (the reply
 * lost after central applied the push) in central's process.
 *
 * The job has its own read-only handle on the local copy. One run: read up
 * to a push of PENDING and FAILED rows (FAILED rows stay retriable), send it
 * to central, which applies it idempotently, then mark the queue on the
 * local through writer_call — the writer holds the only writable handle. A
 * full push that was accepted is followed at once by the next one, so a
 * backlog drains in one run; a failed push counts one retry for each row it
 * carried, and a row whose retries reach --retries is FAILED (and pushed
 * again by later runs until one is accepted).
 *
 * Request threads never touch the job's handles: GET /sync/status reads the
 * queue on the worker's own reader and the job's facts from the snapshot it
 * publishes under its lock. POST /sync/run asks for a run now and waits for
 * it. Knows the platform only through platform.h, the faults through
 * faults.h; the rest of serve through internal.h.
 */
#include <assert.h>
#include <civetweb.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "serve/internal.h"

#define OFFLINE_PUSH_ROWS          SHOP_SYNC_PUSH_ROWS_MAX /* queue rows in one push */
#define OFFLINE_PUSHES_PER_RUN_MAX 4096  /* full pushes one run chains: ~1M rows */
#define OFFLINE_CALL_MS            10000 /* central's answer to one push */
#define OFFLINE_RUN_WAIT_MS        30000 /* POST /sync/run waits this long for its run */
#define OFFLINE_ERROR_MAX          384   /* bytes of the last error kept */
#define OFFLINE_ACCEPT_RANGES_MAX  32    /* media ranges of an Accept header looked at */
/* The timer's runs compare central with the local at most this often: a
 * comparison reads every row of both (about 5 us a row), a push does not. */
#define OFFLINE_CHECK_EVERY_US 10000000LL

/* Central's content compared with the local's, after a run that synced. */
struct offline_check {
    bool done;
    int64_t at_wall_us, at_mono_us;
    int64_t took_us;
    int64_t keys, matching, missing, differs, undeleted, waiting, lost;
};

/* What the job publishes after every run (under job->lock). */
struct offline_snapshot {
    bool online;                        /* the last push was accepted by central */
    int64_t last_run_wall_us;           /* 0: no run yet */
    int64_t last_run_us;                /* how long it took */
    int64_t last_push_wall_us;          /* 0: nothing pushed yet */
    int64_t last_ok_wall_us;            /* the last accepted push; 0: none */
    char last_error[OFFLINE_ERROR_MAX]; /* "" while the last push was accepted */
    uint64_t runs, pushes, failed_pushes, rows_pushed, rows_synced, rows_retried, rows_failed;
    struct offline_check check;
};

struct offline_job {
    struct server *srv;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* to the job: stop, or a run was asked for */
    pthread_cond_t ran;  /* to POST /sync/run: a run finished */
    bool stopping;
    uint64_t asked;  /* runs asked for by POST /sync/run */
    uint64_t served; /* the highest `asked` a finished run started after */
    struct offline_snapshot snap;
    struct proc *child; /* central's process; NULL: --peer central=URL */
    /* The job thread's alone. */
    shop *central_reader; /* read-only, for centralCheck: only when central is our child */
    shop *local;          /* read-only: the queue and its rows */
    struct buf reply;     /* central's answer */
    struct shop_sync_compare cmp;
};

/* What one run did, published at its end. */
struct offline_run {
    uint64_t pushes, failed_pushes, rows_pushed, rows_synced, rows_retried, rows_failed;
    bool pushed, ok; /* a push was tried; the last one was accepted */
    char error[OFFLINE_ERROR_MAX];
};

/* ---- handles ---------------------------------------------------------------- */

static bool is_storage_error(int rc)
{
    return rc == -EIO || rc == -ENOSPC || rc == -EBUSY || rc == -ENOMEM || rc == -EBADMSG ||
           rc == -EINPROGRESS || rc == -EACCES;
}

/* centralCheck reads central's file beside ours: only when we run it. */
static int open_central_reader(struct offline_job *j)
{
    char path[SERVE_PATH_MAX], msg[SHOP_ERRMSG_MAX];
    snprintf(path, sizeof(path), "%.4000s/central/db_central.sqlite", j->srv->opt.data_dir);
    struct shop_copy copy = {.node = "central", .path = path, .vfs = NULL};
    return shop_open_reader(&copy, &j->srv->env, &j->central_reader, msg);
}

static int open_local(struct offline_job *j, char msg[SHOP_ERRMSG_MAX])
{
    return shop_open_reader(&j->srv->cfg.primary, &j->srv->env, &j->local, msg);
}

/* After a storage error a handle is closed and reopened by the next run:
 * nothing stale survives a healed disk. */
static void drop_handle(shop **s)
{
    shop_close(*s);
    *s = NULL;
}

/* ---- time ----------------------------------------------------------------- */

static struct timespec mono_timespec(int64_t mono_us)
{
    struct timespec t = {.tv_sec = (time_t)(mono_us / 1000000),
                         .tv_nsec = (long)(mono_us % 1000000) * 1000L};
    return t;
}

static bool is_stopping(struct offline_job *j)
{
    pthread_mutex_lock(&j->lock);
    bool stopping = j->stopping;
    pthread_mutex_unlock(&j->lock);
    return stopping;
}

/* ---- one push --------------------------------------------------------------- */

/*
 * Sends a push to central and reads its reply. 0: central accepted it (res
 * holds the accepted ids); -ESHUTDOWN: the job stopped (nothing to mark);
 * another -errno: the push failed, why says how.
 */
static int carry(struct offline_job *j, const struct shop_sync_push *p,
                 struct shop_sync_result *res, char *why, size_t len)
{
    struct wire_call_info info;
    int err = wire_call(j->srv->net, "central", p->data, p->len, OFFLINE_CALL_MS, &j->reply, &info);
    if (is_stopping(j))
        return -ESHUTDOWN;
    if (err == -ETIMEDOUT && info.lost) {
        snprintf(why, len, "%s: no reply, counted as a timeout%s", info.detail,
                 strstr(info.detail, "reply") != NULL
                     ? "; the rows go again and central keeps them unchanged"
                     : "");
        return err;
    }
    if (err) {
        snprintf(why, len, "central cannot be reached: %s", info.detail);
        return err;
    }
    if (info.status != 200) {
        cJSON *e = cJSON_ParseWithLength(buf_body(&j->reply), buf_body_len(&j->reply));
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "error");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "detail");
        snprintf(why, len, "central could not apply the push (%d): %s%s%s", info.status,
                 cJSON_IsString(m) ? m->valuestring : "no reason given",
                 cJSON_IsString(d) ? ": " : "", cJSON_IsString(d) ? d->valuestring : "");
        cJSON_Delete(e);
        return info.status == 400 ? -EPROTO : -EIO;
    }
    if (shop_sync_reply_decode(buf_body(&j->reply), buf_body_len(&j->reply), res) != 0) {
        snprintf(why, len, "central's reply is not a sync result");
        return -EPROTO;
    }
    return 0;
}

struct mark_call {
    const struct shop_sync_result *res;
    int err;
    int budget;
    struct shop_sync_marked marked;
    char msg[SHOP_ERRMSG_MAX];
};

/* On the writer's thread, on the only writable handle. */
static int mark_on_writer(shop *s, void *arg)
{
    struct mark_call *m = arg;
    int rc = shop_sync_mark(s, m->res, m->err, m->budget, &m->marked);
    if (rc)
        snprintf(m->msg, sizeof(m->msg), "%s", shop_errmsg(s));
    return rc;
}

static void run_error(struct offline_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void run_error(struct offline_run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
}

/* Marks what a push came to on the local; counts it into r. */
static int mark(struct offline_job *j, struct offline_run *r, const struct shop_sync_result *res,
                int err)
{
    struct mark_call m = {.res = res, .err = err, .budget = j->srv->opt.retries};
    int rc = writer_call(&j->srv->writer, mark_on_writer, &m);
    if (rc) {
        const char *why = m.msg[0] ? m.msg : platform_strerror(rc);
        if (err == 0)
            run_error(r,
                      "central accepted the push but the local cannot mark it: %s (the rows "
                      "stay PENDING and go again)",
                      why);
        else {
            char push_error[OFFLINE_ERROR_MAX];
            snprintf(push_error, sizeof(push_error), "%s", r->error);
            run_error(r, "%s; and the local cannot count the retries: %s", push_error, why);
        }
        return rc;
    }
    r->rows_synced += m.marked.synced;
    r->rows_retried += m.marked.retried;
    r->rows_failed += m.marked.failed;
    return 0;
}

/*
 * One push: read, carry, mark. Returns 1 when a full push was accepted
 * (more may be waiting), 0 when the queue is drained, < 0 when the push
 * (or reading the queue) failed: r->error says why.
 */
static int push_once(struct offline_job *j, struct offline_run *r)
{
    assert(j->local != NULL);
    struct shop_sync_push p;
    int err = shop_sync_pending(j->local, OFFLINE_PUSH_ROWS, true, &p);
    if (err) {
        run_error(r, "the local's queue cannot be read: %s", shop_errmsg(j->local));
        if (is_storage_error(err))
            drop_handle(&j->local);
        return err;
    }
    if (p.count == 0) {
        shop_sync_push_release(&p);
        return 0;
    }
    struct shop_sync_result res;
    r->error[0] = '\0';
    err = carry(j, &p, &res, r->error, sizeof(r->error));
    if (err == -ESHUTDOWN) {
        shop_sync_push_release(&p);
        return err;
    }
    r->pushed = true;
    r->pushes++;
    r->rows_pushed += p.count;
    r->ok = err == 0;
    if (err) {
        r->failed_pushes++;
        shop_sync_result_of_push(&p, &res);
    }
    assert(p.count <= OFFLINE_PUSH_ROWS && res.count <= p.count);
    bool full = p.count == OFFLINE_PUSH_ROWS;
    shop_sync_push_release(&p);
    int rc = mark(j, r, &res, err);
    if (err)
        return err;
    return rc < 0 ? rc : full ? 1 : 0;
}

/* ---- one run -------------------------------------------------------------- */

/* Whether central now holds what the local holds (the checkers' view). */
static void check_central(struct offline_job *j, struct offline_check *out)
{
    int64_t t0 = host_mono_us();
    if (j->child != NULL && j->central_reader == NULL)
        (void)open_central_reader(j);
    if (j->local == NULL || j->central_reader == NULL ||
        shop_sync_compare(j->local, j->central_reader, j->srv->opt.node, &j->cmp) != 0) {
        drop_handle(&j->central_reader); /* a fresh one next time */
        return;                          /* the previous check stands, with its time */
    }
    const struct shop_sync_compare *c = &j->cmp;
    *out = (struct offline_check){
        .done = true,
        .at_wall_us = host_wall_us(),
        .at_mono_us = t0,
        .took_us = host_mono_us() - t0,
        .keys = c->rows,
        .matching = c->matching,
        .missing = c->mismatched[SHOP_SYNC_MISSING],
        .differs = c->mismatched[SHOP_SYNC_DIFFERS],
        .undeleted = c->mismatched[SHOP_SYNC_UNDELETED],
        .waiting = c->waiting,
        .lost = c->lost,
    };
}

/* Says on stdout when the link goes down or comes back: the live log. */
static void log_transition(bool was_online, const struct offline_run *r)
{
    if (!r->pushed || was_online == r->ok)
        return;
    if (r->ok)
        printf("faultdrill serve: sync: central reachable again; %" PRIu64 " row(s) synced\n",
               r->rows_synced);
    else
        printf("faultdrill serve: sync: push to central failed: %s\n", r->error);
    fflush(stdout);
}

static void publish(struct offline_job *j, const struct offline_run *r, int64_t took_us,
                    const struct offline_check *check)
{
    int64_t now = host_wall_us();
    pthread_mutex_lock(&j->lock);
    struct offline_snapshot *s = &j->snap;
    bool was_online = s->online;
    s->runs++;
    s->last_run_wall_us = now;
    s->last_run_us = took_us;
    s->pushes += r->pushes;
    s->failed_pushes += r->failed_pushes;
    s->rows_pushed += r->rows_pushed;
    s->rows_synced += r->rows_synced;
    s->rows_retried += r->rows_retried;
    s->rows_failed += r->rows_failed;
    if (r->pushed) {
        s->online = r->ok;
        s->last_push_wall_us = now;
        if (r->ok)
            s->last_ok_wall_us = now;
    }
    if (r->pushed || r->error[0] != '\0')
        snprintf(s->last_error, sizeof(s->last_error), "%s", r->error);
    s->check = *check;
    pthread_mutex_unlock(&j->lock);
    log_transition(was_online, r);
}

/* asked: a POST /sync/run waits for this run, and its reply must be fresh. */
static void run_once(struct offline_job *j, bool asked)
{
    int64_t t0 = host_mono_us();
    struct offline_run r = {0};
    char msg[SHOP_ERRMSG_MAX];
    int err = j->local == NULL ? open_local(j, msg) : 0;
    if (err)
        run_error(&r, "the local copy cannot be opened for reading: %s", msg);
    for (int i = 0; !err && i < OFFLINE_PUSHES_PER_RUN_MAX && !is_stopping(j); i++) {
        err = push_once(j, &r);
        if (err != 1)
            break;
        err = 0;
    }
    pthread_mutex_lock(&j->lock);
    struct offline_check check = j->snap.check;
    pthread_mutex_unlock(&j->lock);
    bool due = !check.done || host_mono_us() - check.at_mono_us >= OFFLINE_CHECK_EVERY_US;
    if (asked || !check.done || (r.rows_synced > 0 && due))
        check_central(j, &check);
    publish(j, &r, host_mono_us() - t0, &check);
}

static void *job_main(void *arg)
{
    struct offline_job *j = arg;
    const int64_t interval_us = j->srv->opt.interval_ms * 1000;
    int64_t next_us = host_mono_us() + interval_us;
    pthread_mutex_lock(&j->lock);
    while (!j->stopping) {
        if (j->asked == j->served && host_mono_us() < next_us) {
            struct timespec until = mono_timespec(next_us);
            pthread_cond_timedwait(&j->wake, &j->lock, &until);
            continue;
        }
        uint64_t covering = j->asked;
        bool asked = covering != j->served;
        pthread_mutex_unlock(&j->lock);
        run_once(j, asked);
        next_us = host_mono_us() + interval_us;
        pthread_mutex_lock(&j->lock);
        j->served = covering;
        pthread_cond_broadcast(&j->ran);
    }
    pthread_cond_broadcast(&j->ran);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* ---- life ------------------------------------------------------------------ */

static void job_free(struct offline_job *j)
{
    proc_stop(j->child);
    shop_close(j->central_reader);
    shop_close(j->local);
    buf_release(&j->reply);
    pthread_cond_destroy(&j->wake);
    pthread_cond_destroy(&j->ran);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

static int job_sync_init(struct offline_job *j)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc == 0)
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&j->wake, &ca);
    if (rc == 0)
        rc = pthread_cond_init(&j->ran, &ca);
    pthread_condattr_destroy(&ca);
    if (rc == 0)
        rc = pthread_mutex_init(&j->lock, NULL);
    return -rc;
}

/* The link's points, in the HTTP fault panel too. */
static void name_points(struct offline_job *j, struct fault_panel *panel)
{
    static const char *const what[] = {"drop", "delay", "duplicate", "reorder"};
    /* civetweb already answers GET /faults: the panel's lock, not just its add */
    pthread_mutex_lock(&panel->lock);
    for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
        char point[FAULTS_NAME_MAX];
        snprintf(point, sizeof(point), "net/%s/central/%s", j->srv->opt.node, what[i]);
        (void)panel_add(panel, point);
    }
    pthread_mutex_unlock(&panel->lock);
}

int offline_start(struct server *srv)
{
    assert(srv->opt.role == SERVE_OFFLINE && srv->offline == NULL);
    assert(srv->opt.interval_ms > 0 && srv->opt.retries >= 1);
    struct offline_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        fprintf(stderr, "faultdrill serve: cannot start the sync job: out of memory\n");
        return -ENOMEM;
    }
    j->srv = srv;
    j->snap.online = true;
    char msg[SHOP_ERRMSG_MAX], url[WIRE_URL_MAX], dir[SERVE_PATH_MAX];
    int err = 0;
    if (!wire_peer_url(srv->net, "central", url)) { /* not --peer: ours to run */
        snprintf(dir, sizeof(dir), "%.4000s/central", srv->opt.data_dir);
        err = proc_start(srv, "central", dir, NULL, &j->child);
        if (!err)
            proc_settle(j->child);
    }
    if (!err && (err = open_local(j, msg)) != 0)
        fprintf(stderr, "faultdrill serve: the sync job cannot read %s: %s\n", srv->primary_path,
                msg);
    if (!err && (err = job_sync_init(j)) != 0)
        fprintf(stderr, "faultdrill serve: cannot start the sync job: %s\n", strerror(-err));
    if (err) {
        proc_stop(j->child);
        shop_close(j->local);
        free(j);
        return err;
    }
    name_points(j, &srv->panel);
    int rc = pthread_create(&j->thread, NULL, job_main, j);
    if (rc != 0) {
        fprintf(stderr, "faultdrill serve: cannot start the sync job: %s\n", strerror(rc));
        job_free(j);
        return -rc;
    }
    /* Request threads already run: they see the job only once it is whole. */
    __atomic_store_n(&srv->offline, j, __ATOMIC_RELEASE);
    return 0;
}

void offline_stop(struct server *srv)
{
    struct offline_job *j = __atomic_load_n(&srv->offline, __ATOMIC_ACQUIRE);
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->lock);
    j->stopping = true;
    pthread_cond_broadcast(&j->wake);
    pthread_mutex_unlock(&j->lock);
    pthread_join(j->thread, NULL);
    __atomic_store_n(&srv->offline, NULL, __ATOMIC_RELEASE);
    job_free(j);
}

/* ---- GET /sync/status ---------------------------------------------------- */

/* What a status reply shows: the local's queue now and the job's facts. */
struct offline_view {
    struct server *srv;
    struct proc *child;
    bool running;
    struct offline_snapshot snap;
    bool queue_ok;
    struct shop_sync_status q;
    char queue_error[SERVE_DETAIL_MAX];
};

static int read_queue(shop *s, void *arg)
{
    return shop_sync_status(s, arg);
}

static void view_take(struct request *rq, struct offline_view *v)
{
    memset(v, 0, sizeof(*v));
    v->srv = rq->srv;
    struct offline_job *j = __atomic_load_n(&rq->srv->offline, __ATOMIC_ACQUIRE);
    if (j != NULL) {
        pthread_mutex_lock(&j->lock);
        v->snap = j->snap;
        pthread_mutex_unlock(&j->lock);
        v->running = true;
        v->child = j->child;
    }
    v->queue_ok = worker_read(rq, read_queue, &v->q) == 0;
    if (!v->queue_ok)
        snprintf(v->queue_error, sizeof(v->queue_error), "%s", rq->detail);
}

static void put_time_or_null(struct buf *b, int64_t wall_us)
{
    if (wall_us > 0)
        json_time(b, wall_us);
    else
        buf_puts(b, "null");
}

static void put_fixed3(struct buf *b, double v)
{
    char tmp[48];
    snprintf(tmp, sizeof(tmp), "%.3f", v);
    buf_puts(b, tmp);
}

static void put_counts(struct buf *b, const int64_t n[3])
{
    buf_puts(b, "\"pending\":");
    buf_i64(b, n[SHOP_SYNC_PENDING]);
    buf_puts(b, ",\"synced\":");
    buf_i64(b, n[SHOP_SYNC_SYNCED]);
    buf_puts(b, ",\"failed\":");
    buf_i64(b, n[SHOP_SYNC_FAILED]);
}

static void put_check(struct buf *b, const struct offline_check *c)
{
    if (!c->done) {
        buf_puts(b, "null");
        return;
    }
    static const char *const names[] = {"keys",      "matching", "missing", "differs",
                                        "undeleted", "waiting",  "lost"};
    const int64_t vals[] = {c->keys,      c->matching, c->missing, c->differs,
                            c->undeleted, c->waiting,  c->lost};
    buf_puts(b, "{\"at\":");
    json_time(b, c->at_wall_us);
    buf_puts(b, ",\"tookMs\":");
    put_fixed3(b, (double)c->took_us / 1e3);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        buf_puts(b, ",\"");
        buf_puts(b, names[i]);
        buf_puts(b, "\":");
        buf_i64(b, vals[i]);
    }
    buf_puts(b, c->keys == c->matching ? ",\"inSync\":true}" : ",\"inSync\":false}");
}

static void put_u64(struct buf *b, const char *key, uint64_t v)
{
    buf_puts(b, key);
    buf_i64(b, (int64_t)v);
}

static void render_json(struct buf *b, const struct offline_view *v)
{
    const struct offline_snapshot *s = &v->snap;
    buf_puts(b, "{\"topology\":\"offline\",\"node\":");
    json_str(b, v->srv->opt.node);
    buf_puts(b, ",\"central\":\"central\",\"intervalMs\":");
    buf_i64(b, v->srv->opt.interval_ms);
    buf_puts(b, ",\"retryBudget\":");
    buf_i64(b, v->srv->opt.retries);
    buf_puts(b, v->running ? ",\"running\":true" : ",\"running\":false");
    buf_puts(b, s->online ? ",\"online\":true" : ",\"online\":false");
    buf_puts(b, ",\"lastRunAt\":");
    put_time_or_null(b, s->last_run_wall_us);
    buf_puts(b, ",\"lastRunMs\":");
    put_fixed3(b, (double)s->last_run_us / 1e3);
    buf_puts(b, ",\"lastPushAt\":");
    put_time_or_null(b, s->last_push_wall_us);
    buf_puts(b, ",\"lastSyncAt\":");
    put_time_or_null(b, s->last_ok_wall_us);
    buf_puts(b, ",\"lastError\":");
    json_str(b, s->last_error);
    put_u64(b, ",\"runs\":", s->runs);
    put_u64(b, ",\"pushes\":", s->pushes);
    put_u64(b, ",\"failedPushes\":", s->failed_pushes);
    put_u64(b, ",\"rowsPushed\":", s->rows_pushed);
    put_u64(b, ",\"rowsSynced\":", s->rows_synced);
    put_u64(b, ",\"rowsRetried\":", s->rows_retried);
    put_u64(b, ",\"rowsFailed\":", s->rows_failed);
    const struct shop_sync_status *q = &v->q;
    buf_puts(b, ",\"rows\":{");
    put_counts(b, q->total);
    buf_puts(b, "},\"tables\":[");
    for (int t = 0; t < SHOP_SYNC_TABLES_MAX && shop_table_name(t) != NULL; t++) {
        buf_puts(b, t ? ",{\"table\":" : "{\"table\":");
        json_str(b, shop_table_name(t));
        buf_puts(b, ",");
        put_counts(b, q->count[t]);
        buf_puts(b, "}");
    }
    buf_puts(b, "],\"oldestPendingSeconds\":");
    put_fixed3(b, (double)q->oldest_pending_age_us / 1e6);
    buf_puts(b, ",\"retriesMax\":");
    buf_i64(b, q->retries_max);
    buf_puts(b, ",\"syncedTwice\":");
    buf_i64(b, q->synced_twice);
    buf_puts(b, ",\"queueError\":");
    if (v->queue_ok)
        buf_puts(b, "null");
    else
        json_str(b, v->queue_error);
    buf_puts(b, ",\"centralCheck\":");
    put_check(b, &s->check);
    proc_json(b, "centralProcess", v->srv, "central", v->child);
    buf_puts(b, "}");
}

/* ---- the HTML page -------------------------------------------------------- */

static void html_text(struct buf *b, const char *s)
{
    for (const char *p = s; *p != '\0'; p++) {
        const char *run = p;
        while (*p != '\0' && *p != '<' && *p != '>' && *p != '&' && *p != '"')
            p++;
        buf_put(b, run, (size_t)(p - run));
        if (*p == '\0')
            break;
        buf_puts(b, *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '&' ? "&amp;" : "&quot;");
    }
}

static void html_row(struct buf *b, const char *name, const int64_t n[3], bool total)
{
    buf_puts(b, total ? "<tr class=total><th>" : "<tr><th>");
    html_text(b, name);
    buf_puts(b, "</th>");
    for (int st = 0; st < 3; st++) {
        buf_puts(b, n[st] > 0 && st != SHOP_SYNC_SYNCED ? "<td class=warn>" : "<td>");
        buf_i64(b, n[st]);
        buf_puts(b, "</td>");
    }
    buf_puts(b, "</tr>\n");
}

static void html_fact(struct buf *b, const char *name, const char *value)
{
    buf_puts(b, "<dt>");
    html_text(b, name);
    buf_puts(b, "</dt><dd>");
    html_text(b, value);
    buf_puts(b, "</dd>\n");
}

static void html_time(char *out, size_t len, int64_t wall_us)
{
    time_t secs = (time_t)(wall_us / 1000000);
    struct tm tm;
    if (wall_us <= 0 || gmtime_r(&secs, &tm) == NULL)
        snprintf(out, len, "never");
    else
        strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void html_facts(struct buf *b, const struct offline_view *v)
{
    const struct offline_snapshot *s = &v->snap;
    char text[OFFLINE_ERROR_MAX + 64];
    snprintf(text, sizeof(text),
             "%s, pushes to central every %" PRId64 " ms; a row is FAILED "
             "after %d failed pushes",
             v->srv->opt.node, v->srv->opt.interval_ms, v->srv->opt.retries);
    html_fact(b, "job", text);
    html_fact(b, "link",
              s->online ? "online: the last push reached central"
                        : "OFFLINE: the last push did not reach central");
    html_time(text, sizeof(text), s->last_run_wall_us);
    html_fact(b, "last run", text);
    html_time(text, sizeof(text), s->last_ok_wall_us);
    html_fact(b, "last accepted push", text);
    html_fact(b, "last error", s->last_error[0] ? s->last_error : "none");
    snprintf(text, sizeof(text),
             "%" PRIu64 " runs, %" PRIu64 " pushes (%" PRIu64 " failed), %" PRIu64 " rows synced",
             s->runs, s->pushes, s->failed_pushes, s->rows_synced);
    html_fact(b, "since start", text);
    snprintf(text, sizeof(text), "%.3f s; most retries of a waiting row: %" PRId64,
             (double)v->q.oldest_pending_age_us / 1e6, v->q.retries_max);
    html_fact(b, "oldest waiting row", text);
    snprintf(text, sizeof(text), "%" PRId64 " (must be 0)", v->q.synced_twice);
    html_fact(b, "rows synced twice", text);
    const struct offline_check *c = &s->check;
    if (c->done)
        snprintf(text, sizeof(text),
                 "%" PRId64 " of %" PRId64 " rows hold the local's values "
                 "(%" PRId64 " missing, %" PRId64 " differ, %" PRId64 " waiting, %" PRId64 " lost)",
                 c->matching, c->keys, c->missing, c->differs, c->waiting, c->lost);
    else
        snprintf(text, sizeof(text), "not compared yet");
    html_fact(b, "central", text);
    if (!v->queue_ok)
        html_fact(b, "queue", v->queue_error);
}

static void render_html(struct buf *b, const struct offline_view *v)
{
    buf_puts(b, "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
                "<meta http-equiv=refresh content=2>"
                "<title>offline sync - faultdrill</title><style>"
                "body{font:15px/1.4 system-ui,sans-serif;margin:2em;color:#222}"
                "table{border-collapse:collapse}th,td{padding:.3em .9em;border:1px solid #ccc}"
                "td{text-align:right}tr.total{font-weight:bold}td.warn{background:#fde8c8}"
                "dt{font-weight:bold;float:left;clear:left;width:11em}dd{margin-left:12em}"
                ".off{color:#b00}</style></head><body>\n<h1>Offline sync: ");
    html_text(b, v->srv->opt.node);
    buf_puts(b, v->snap.online ? " &rarr; central</h1>\n"
                               : " &rarr; central <span class=off>(offline)</span></h1>\n");
    buf_puts(b, "<table><thead><tr><th>table</th><th>pending</th><th>synced</th>"
                "<th>failed</th></tr></thead><tbody>\n");
    for (int t = 0; t < SHOP_SYNC_TABLES_MAX && shop_table_name(t) != NULL; t++)
        html_row(b, shop_table_name(t), v->q.count[t], false);
    html_row(b, "all", v->q.total, true);
    buf_puts(b, "</tbody></table>\n<dl>\n");
    html_facts(b, v);
    buf_puts(b, "</dl>\n<p><a href=\"/sync/status\">this page</a> as JSON: "
                "<code>curl /sync/status</code></p>\n</body></html>\n");
}

/*
 * Whether an Accept header prefers text/html to JSON: text/html must be
 * named, with a quality above JSON's (that of application/json, else of
 * "application/" any, else of any type), or equal and named first. No
 * header, or curl's any-type range, is JSON.
 */
static bool prefers_html(const char *accept)
{
    if (accept == NULL)
        return false;
    double q_html = -1, q_json = -1, q_app = -1, q_any = -1;
    int html_at = -1, json_at = -1;
    const char *p = accept;
    for (int i = 0; i < OFFLINE_ACCEPT_RANGES_MAX && *p != '\0'; i++) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",;");
        const char *params = p + len, *end = p + strcspn(p, ",");
        double q = 1;
        const char *qp = strstr(params, "q=");
        if (*params == ';' && qp != NULL && qp < end)
            q = strtod(qp + 2, NULL);
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len == 9 && strncasecmp(p, "text/html", 9) == 0) {
            q_html = q;
            html_at = i;
        } else if (len == 16 && strncasecmp(p, "application/json", 16) == 0) {
            q_json = q;
            json_at = i;
        } else if (len == 13 && strncasecmp(p, "application/*", 13) == 0) {
            q_app = q;
        } else if (len == 3 && strncmp(p, "*/*", 3) == 0) {
            q_any = q;
        }
        p = end;
    }
    double json = q_json >= 0 ? q_json : q_app >= 0 ? q_app : q_any;
    if (q_html <= 0)
        return false;
    return q_html > json || (q_html == json && (json_at < 0 || html_at < json_at));
}

void offline_status(struct request *rq)
{
    struct offline_view *v = malloc(sizeof(*v));
    if (v == NULL) {
        http_reply_error(rq, 500, "out of memory", NULL);
        return;
    }
    view_take(rq, v);
    struct buf *b = &rq->w->out;
    buf_reset(b);
    if (prefers_html(mg_get_header(rq->conn, "Accept"))) {
        render_html(b, v);
        http_reply_bytes(rq, b, 200, "text/html; charset=utf-8", "Vary: Accept");
    } else {
        render_json(b, v);
        http_reply_bytes(rq, b, 200, "application/json", "Vary: Accept");
    }
    free(v);
}

/* POST /sync/run: one run now; answers the status after it. */
void offline_run_now(struct request *rq)
{
    struct offline_job *j = __atomic_load_n(&rq->srv->offline, __ATOMIC_ACQUIRE);
    if (rq->srv->opt.role != SERVE_OFFLINE) {
        snprintf(rq->detail, sizeof(rq->detail), "topology %s has no offline sync",
                 serve_role_name(rq->srv->opt.role));
        http_reply_error(rq, 404, "not configured", rq->detail);
        return;
    }
    if (j == NULL) {
        http_reply_error(rq, 503, "sync job not running", "the server is starting or stopping");
        return;
    }
    struct timespec until = mono_timespec(host_mono_us() + (int64_t)OFFLINE_RUN_WAIT_MS * 1000);
    pthread_mutex_lock(&j->lock);
    uint64_t ticket = ++j->asked;
    pthread_cond_signal(&j->wake);
    int rc = 0;
    while (j->served < ticket && !j->stopping && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&j->ran, &j->lock, &until);
    bool done = j->served >= ticket;
    pthread_mutex_unlock(&j->lock);
    if (!done) {
        http_reply_error(rq, 503, "sync run not finished",
                         "the sync job is still busy (a slow link or disk?): GET /sync/status "
                         "shows it when it ends");
        return;
    }
    offline_status(rq);
}
