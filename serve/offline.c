/*
 * offline.c — offline-first sync in serve (--topology offline, DESIGN.md
 * §2), hosting the platform's offline nodes (platform/node.h: the roles
 * offline-local and offline-central; node_host.c carries their events).
 * Every protocol decision — the job's interval, one push in flight, the
 * reply timeout, retries and FAILED rows, what a late or lost answer means —
 * is the core's. This file starts the node, starts central's process, and
 * answers the routes:
 *
 *   - the local (node `local`, DATA/db.sqlite) starts central as its own
 *     process (DATA/central/db_central.sqlite) unless --peer central=URL
 *     names one elsewhere; its pushes and central's answers are node
 *     messages (POST /api/node), each way on its own link, whose fault points
 *     act in the sender: net/local/central/... here, net/central/local/...
 *     (the answer lost after central applied the push) in central's process;
 *   - central (`serve --role central`) takes pushes from the locals named by
 *     its --peer options (its parent passes itself), and no client writes;
 *   - GET /sync/status: the core's status, JSON or an HTML table;
 *   - POST /sync/offline, /sync/online: the core's switch of the sync job
 *     (node_set_online), kept across a restart in DATA/sync-offline, which
 *     the core leaves to its host;
 *   - POST /sync/run, the operator's "push now": the core's node_sync_now;
 *     the reply waits until the core says that run settled (its push and
 *     anything it chains answered or timed out), then compares central's copy with
 *     the local's (centralCheck: both files read-only, the checkers' view)
 *     when central is our child and its file is beside ours.
 *
 * The node's trace lines go to the log (stdout) as they come.
 */
#include <assert.h>
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "serve/internal.h"
#include "serve/nodes.h"

#define OFFLINE_RUN_WAIT_MS       30000 /* POST /sync/run waits this long for its run */
#define OFFLINE_RUN_POLL_US       20000 /* ...looking at the node this often */
#define OFFLINE_ACCEPT_RANGES_MAX 32    /* media ranges of an Accept header looked at */
#define OFFLINE_SWITCH_FILE "sync-offline" /* DATA/sync-offline: the job was switched off */

/* Central's content compared with the local's (POST /sync/run). */
struct offline_check {
    bool done;
    int64_t at_wall_us;
    int64_t took_us;
    int64_t keys, matching, missing, differs, undeleted, waiting, lost;
};

struct offline_host {
    struct hosted *node;
    struct proc *child; /* central's process; NULL: --peer central=URL, or we are central */
    bool central;       /* this process is central */
    char locals[WIRE_PEERS_MAX][FAULTS_NODE_MAX]; /* central: the locals it takes pushes from */
    const char *local_names[WIRE_PEERS_MAX];
    size_t local_count;
    pthread_mutex_t lock; /* check; run_lock: one POST /sync/run at a time */
    pthread_mutex_t run_lock;
    struct offline_check check;
    char switch_path[SERVE_PATH_MAX];
};

static struct offline_host *host_of(struct server *srv)
{
    return __atomic_load_n(&srv->offline, __ATOMIC_ACQUIRE);
}

/* ---- life ------------------------------------------------------------------ */

/* Central takes pushes from the nodes its --peer options name (the local
 * that started it passes itself); with none, from `local`. */
static void find_locals(struct offline_host *o, const struct serve_options *opt)
{
    for (int i = 0; i < opt->peer_count && o->local_count < WIRE_PEERS_MAX; i++) {
        const char *eq = strchr(opt->peers[i], '=');
        size_t len = eq != NULL ? (size_t)(eq - opt->peers[i]) : strlen(opt->peers[i]);
        if (len == 0 || len >= FAULTS_NODE_MAX)
            continue;
        memcpy(o->locals[o->local_count], opt->peers[i], len);
        o->locals[o->local_count][len] = '\0';
        o->local_count++;
    }
    if (o->local_count == 0)
        snprintf(o->locals[o->local_count++], FAULTS_NODE_MAX, "local");
    for (size_t i = 0; i < o->local_count; i++)
        o->local_names[i] = o->locals[i];
}

/* The links' points, in the HTTP fault panel too: a local's to central, central's to
 * each local it takes pushes from. */
static void name_points(struct server *srv, const struct offline_host *o)
{
    static const char *const what[] = {"drop", "delay", "duplicate", "reorder"};
    bool central = srv->opt.role == SERVE_CENTRAL;
    size_t peers = central ? o->local_count : 1;
    /* civetweb already answers GET /faults: the panel's lock, not just its add */
    pthread_mutex_lock(&srv->panel.lock);
    for (size_t k = 0; k < peers; k++)
        for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
            char point[FAULTS_NAME_MAX];
            snprintf(point, sizeof(point), "net/%s/%s/%s", srv->opt.node,
                     central ? o->locals[k] : "central", what[i]);
            (void)panel_add(&srv->panel, point);
        }
    pthread_mutex_unlock(&srv->panel.lock);
}

static void host_free(struct offline_host *o)
{
    hosted_stop(o->node);
    proc_stop(o->child);
    pthread_mutex_destroy(&o->run_lock);
    pthread_mutex_destroy(&o->lock);
    free(o);
}

int offline_start(struct server *srv)
{
    assert(srv->opt.role == SERVE_OFFLINE || srv->opt.role == SERVE_CENTRAL);
    assert(srv->offline == NULL);
    struct offline_host *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        fprintf(stderr, "faultdrill serve: cannot start offline sync: out of memory\n");
        return -ENOMEM;
    }
    pthread_mutex_init(&o->lock, NULL);
    pthread_mutex_init(&o->run_lock, NULL);
    o->central = srv->opt.role == SERVE_CENTRAL;
    char url[WIRE_URL_MAX], dir[SERVE_PATH_MAX];
    int err = 0;
    if (!o->central && !wire_peer_url(srv->net, "central", url)) { /* ours to run */
        snprintf(dir, sizeof(dir), "%.4000s/central", srv->opt.data_dir);
        err = proc_start(srv, "central", dir, NULL, &o->child);
        if (!err)
            proc_settle(o->child);
        /* a central that could not start still has its link: what is sent
         * there is lost, and the link's status says why */
        if (!err && !wire_peer_url(srv->net, "central", url))
            err = wire_set_peer(srv->net, "central", "");
    }
    struct node_config cfg = {
        .name = srv->opt.node,
        .role = o->central ? NODE_OFFLINE_CENTRAL : NODE_OFFLINE_LOCAL,
        .shop = srv->writer.shop, /* touched only on the writer's thread */
    };
    if (o->central) {
        find_locals(o, &srv->opt);
        cfg.peers = o->local_names;
        cfg.peer_count = o->local_count;
    } else {
        cfg.peer = "central";
        cfg.sync_interval_us = srv->opt.interval_ms * 1000;
        cfg.sync_retries = srv->opt.retries;
    }
    snprintf(o->switch_path, sizeof(o->switch_path), "%.4000s/%s", srv->opt.data_dir,
             OFFLINE_SWITCH_FILE);
    bool switched_off = !o->central && access(o->switch_path, F_OK) == 0;
    if (switched_off)
        printf("faultdrill serve: the sync job was switched off before (%s): it stays off "
               "until POST /sync/online\n",
               o->switch_path);
    if (!err)
        err = hosted_start(srv, &cfg, NULL, 0, switched_off, &o->node);
    if (err) {
        host_free(o);
        return err;
    }
    hosted_log_traces(o->node, true);
    name_points(srv, o);
    /* Request threads already run: they see the host only once it is whole. */
    __atomic_store_n(&srv->offline, o, __ATOMIC_RELEASE);
    return 0;
}

void offline_stop(struct server *srv)
{
    struct offline_host *o = host_of(srv);
    if (o == NULL)
        return;
    __atomic_store_n(&srv->offline, NULL, __ATOMIC_RELEASE);
    host_free(o);
}

bool offline_route(struct request *rq)
{
    struct offline_host *o = host_of(rq->srv);
    return o != NULL && hosted_route(o->node, rq);
}

/* ---- POST /sync/run -------------------------------------------------------- */

struct kick {
    uint64_t ask; /* node_sync_now's number for this run */
};

/* On the writer's thread: the core's "run now" (node_sync_now). */
static int kick_fn(struct node *n, void *arg)
{
    struct kick *k = arg;
    return node_sync_now(n, &k->ask);
}

/* Waits until the core says the run asked for has settled (what it pushed,
 * full pushes chained, answered or timed out); 0, or -ETIMEDOUT past the
 * deadline. */
static int wait_settled(struct offline_host *o, struct node_status *st, uint64_t ask,
                        int64_t deadline_us)
{
    for (;;) {
        int rc = hosted_status(o->node, st);
        if (rc != 0)
            return rc;
        if (st->offline.settled >= ask)
            return 0;
        if (host_mono_us() >= deadline_us)
            return -ETIMEDOUT;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = OFFLINE_RUN_POLL_US * 1000L};
        nanosleep(&ts, NULL);
    }
}

struct check_call {
    shop *central;
    const char *origin;
    struct shop_sync_compare cmp;
};

static int compare_fn(shop *local, void *arg)
{
    struct check_call *c = arg;
    return shop_sync_compare(local, c->central, c->origin, &c->cmp);
}

/* Whether central now holds what the local holds: only when central's file
 * is beside ours (our child); otherwise the previous check stands. */
static void check_central(struct request *rq, struct offline_host *o)
{
    if (o->child == NULL)
        return;
    int64_t t0 = host_mono_us();
    char path[SERVE_PATH_MAX], msg[SHOP_ERRMSG_MAX];
    snprintf(path, sizeof(path), "%.4000s/central/db_central.sqlite", rq->srv->opt.data_dir);
    struct shop_copy copy = {.node = "central", .path = path, .vfs = NULL};
    struct check_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->origin = rq->srv->opt.node;
    int rc = shop_open_reader(&copy, &rq->srv->env, &c->central, msg);
    if (rc == 0)
        rc = worker_read(rq, compare_fn, c);
    shop_close(c->central);
    if (rc == 0) {
        pthread_mutex_lock(&o->lock);
        o->check = (struct offline_check){
            .done = true,
            .at_wall_us = host_wall_us(),
            .took_us = host_mono_us() - t0,
            .keys = c->cmp.rows,
            .matching = c->cmp.matching,
            .missing = c->cmp.mismatched[SHOP_SYNC_MISSING],
            .differs = c->cmp.mismatched[SHOP_SYNC_DIFFERS],
            .undeleted = c->cmp.mismatched[SHOP_SYNC_UNDELETED],
            .waiting = c->cmp.waiting,
            .lost = c->cmp.lost,
        };
        pthread_mutex_unlock(&o->lock);
    }
    free(c);
}

void offline_run_now(struct request *rq)
{
    struct offline_host *o = host_of(rq->srv);
    if (rq->srv->opt.role != SERVE_OFFLINE) {
        if (rq->srv->opt.role == SERVE_CENTRAL)
            snprintf(rq->detail, sizeof(rq->detail), "central has no sync job: POST this to a local");
        else
            snprintf(rq->detail, sizeof(rq->detail), "topology %s has no offline sync",
                     serve_role_name(rq->srv->opt.role));
        http_reply_error(rq, 404, "not configured", rq->detail);
        return;
    }
    if (o == NULL) {
        http_reply_error(rq, 503, "sync job not running", "the server is starting or stopping");
        return;
    }
    int64_t deadline = host_mono_us() + (int64_t)OFFLINE_RUN_WAIT_MS * 1000;
    struct node_status *st = malloc(sizeof(*st));
    if (st == NULL) {
        http_reply_error(rq, 500, "out of memory", NULL);
        return;
    }
    pthread_mutex_lock(&o->run_lock);
    struct kick k = {0};
    int rc = hosted_with(o->node, kick_fn, &k);
    if (rc == 0)
        rc = wait_settled(o, st, k.ask, deadline);
    pthread_mutex_unlock(&o->run_lock);
    free(st);
    if (rc == -ETIMEDOUT) {
        http_reply_error(rq, 503, "sync run not finished",
                         "a push is still waiting for its answer (a slow link?): GET "
                         "/sync/status shows it when it ends");
        return;
    }
    if (rc != 0) {
        http_reply_platform(rq, rc, NULL);
        return;
    }
    check_central(rq, o);
    offline_status(rq);
}

/* ---- POST /sync/offline, /sync/online ---------------------------------------- */

/* The switch's mark: written (fsynced) when off, removed when on. */
static int mark_switch(const char *path, bool online)
{
    if (online)
        return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    static const char line[] = "the sync job is switched off (POST /sync/online)\n";
    bool ok = write(fd, line, sizeof(line) - 1) == (ssize_t)(sizeof(line) - 1) && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    return ok ? 0 : -(saved ? saved : EIO);
}

static void switch_to(struct request *rq, bool online)
{
    struct offline_host *o = host_of(rq->srv);
    if (rq->srv->opt.role != SERVE_OFFLINE || o == NULL) {
        snprintf(rq->detail, sizeof(rq->detail), "only an offline local has a sync job to switch");
        http_reply_error(rq, rq->srv->opt.role == SERVE_OFFLINE ? 503 : 404,
                         rq->srv->opt.role == SERVE_OFFLINE ? "sync job not running"
                                                            : "not configured",
                         rq->detail);
        return;
    }
    /* the mark first when going off: a crash right after still finds it */
    int rc = online ? 0 : mark_switch(o->switch_path, false);
    if (rc == 0)
        rc = hosted_set_online(o->node, online);
    if (rc == 0 && online)
        rc = mark_switch(o->switch_path, true);
    if (rc != 0) {
        snprintf(rq->detail, sizeof(rq->detail), "cannot switch the sync job %s: %s",
                 online ? "on" : "off", platform_strerror(rc));
        http_reply_error(rq, 500, "switch failed", rq->detail);
        return;
    }
    offline_status(rq);
}

void offline_switch_off(struct request *rq)
{
    switch_to(rq, false);
}

void offline_switch_on(struct request *rq)
{
    switch_to(rq, true);
}

/* ---- GET /sync/status ---------------------------------------------------- */

/* What a status reply shows. */
struct offline_view {
    struct server *srv;
    struct offline_host *o;
    struct node_status st;
    struct offline_check check;
    struct wire_link_stats link;
    char trace[8][NODE_TRACE_MAX];
    size_t trace_count;
};

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
    buf_puts(b, ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":");
    buf_i64(b, (int64_t)v);
}

static void put_trace(struct buf *b, const struct offline_view *v)
{
    buf_puts(b, ",\"trace\":[");
    for (size_t i = 0; i < v->trace_count; i++) {
        if (i > 0)
            buf_puts(b, ",");
        json_str(b, v->trace[i]);
    }
    buf_puts(b, "]");
}

static void render_central(struct buf *b, const struct offline_view *v)
{
    const struct node_offline_status *s = &v->st.offline;
    buf_puts(b, "{\"topology\":\"offline\",\"node\":");
    json_str(b, v->srv->opt.node);
    buf_puts(b, ",\"locals\":[");
    for (size_t i = 0; i < v->o->local_count; i++) {
        if (i > 0)
            buf_puts(b, ",");
        json_str(b, v->o->locals[i]);
    }
    buf_puts(b, "]");
    buf_puts(b, v->st.up ? ",\"running\":true" : ",\"running\":false");
    put_u64(b, "pushesApplied", s->pushes_applied);
    put_u64(b, "pushesRefused", s->pushes_refused);
    put_u64(b, "rowsApplied", s->rows_applied);
    put_u64(b, "rowsUnchanged", s->rows_unchanged);
    put_u64(b, "strays", s->strays);
    buf_puts(b, ",\"lastApplyAt\":");
    put_time_or_null(b, s->last_apply_us);
    put_trace(b, v);
    buf_puts(b, "}");
}

static void render_json(struct buf *b, const struct offline_view *v)
{
    const struct node_offline_status *s = &v->st.offline;
    buf_puts(b, "{\"topology\":\"offline\",\"node\":");
    json_str(b, v->srv->opt.node);
    buf_puts(b, ",\"central\":\"central\",\"intervalMs\":");
    buf_i64(b, s->interval_us / 1000);
    buf_puts(b, ",\"replyTimeoutMs\":");
    buf_i64(b, s->reply_timeout_us / 1000);
    buf_puts(b, ",\"retryBudget\":");
    buf_i64(b, s->retries_budget);
    buf_puts(b, v->srv->opt.queue_separate ? ",\"queue\":\"separate\"" : ",\"queue\":\"same\"");
    buf_puts(b, v->st.up ? ",\"running\":true" : ",\"running\":false");
    /* online: the last push answered was accepted; switchedOn: the job's switch */
    buf_puts(b, s->last_push_ok ? ",\"online\":true" : ",\"online\":false");
    buf_puts(b, s->online ? ",\"switchedOn\":true" : ",\"switchedOn\":false");
    buf_puts(b, s->pushing ? ",\"pushing\":true" : ",\"pushing\":false");
    buf_puts(b, ",\"lastPushAt\":");
    put_time_or_null(b, s->last_push_us);
    buf_puts(b, ",\"lastSyncAt\":");
    put_time_or_null(b, s->last_ok_us);
    buf_puts(b, ",\"lastError\":");
    json_str(b, s->last_error);
    buf_puts(b, ",\"linkError\":");
    json_str(b, v->link.last_error);
    put_u64(b, "runs", s->runs);
    put_u64(b, "pushes", s->pushes);
    put_u64(b, "accepted", s->accepted);
    put_u64(b, "failedPushes", s->failed_pushes);
    put_u64(b, "timeouts", s->timeouts);
    put_u64(b, "lateReplies", s->late_replies);
    put_u64(b, "rowsPushed", s->rows_pushed);
    put_u64(b, "rowsSynced", s->rows_synced);
    put_u64(b, "rowsRetried", s->rows_retried);
    put_u64(b, "rowsFailed", s->rows_failed);
    put_u64(b, "dropped", v->link.lost);
    const struct shop_sync_status *q = &s->queue;
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
    buf_puts(b, s->queue_read ? ",\"queueError\":null"
                              : ",\"queueError\":\"the local's queue cannot be read\"");
    buf_puts(b, ",\"centralCheck\":");
    put_check(b, &v->check);
    put_trace(b, v);
    proc_json(b, "centralProcess", v->srv, "central", v->o->child);
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
    const struct node_offline_status *s = &v->st.offline;
    const struct shop_sync_status *q = &s->queue;
    char text[SHOP_ERRMSG_MAX + 64];
    snprintf(text, sizeof(text),
             "%s, pushes to central every %" PRId64 " ms%s; a row is FAILED "
             "after %d failed pushes",
             v->srv->opt.node, s->interval_us / 1000, s->online ? "" : " (switched OFF)",
             s->retries_budget);
    html_fact(b, "job", text);
    html_fact(b, "link",
              s->last_push_ok ? "online: the last push reached central"
                              : "OFFLINE: the last push did not reach central");
    html_time(text, sizeof(text), s->last_push_us);
    html_fact(b, "last push", text);
    html_time(text, sizeof(text), s->last_ok_us);
    html_fact(b, "last accepted push", text);
    html_fact(b, "last error", s->last_error[0] ? s->last_error : "none");
    snprintf(text, sizeof(text),
             "%" PRIu64 " runs, %" PRIu64 " pushes (%" PRIu64 " failed), %" PRIu64 " rows synced",
             s->runs, s->pushes, s->failed_pushes, s->rows_synced);
    html_fact(b, "since start", text);
    snprintf(text, sizeof(text), "%.3f s; most retries of a waiting row: %" PRId64,
             (double)q->oldest_pending_age_us / 1e6, q->retries_max);
    html_fact(b, "oldest waiting row", text);
    snprintf(text, sizeof(text), "%" PRId64 " (must be 0)", q->synced_twice);
    html_fact(b, "rows synced twice", text);
    const struct offline_check *c = &v->check;
    if (c->done)
        snprintf(text, sizeof(text),
                 "%" PRId64 " of %" PRId64 " rows hold the local's values "
                 "(%" PRId64 " missing, %" PRId64 " differ, %" PRId64 " waiting, %" PRId64 " lost)",
                 c->matching, c->keys, c->missing, c->differs, c->waiting, c->lost);
    else
        snprintf(text, sizeof(text), "not compared yet");
    html_fact(b, "central", text);
    if (!s->queue_read)
        html_fact(b, "queue", "the local's queue cannot be read");
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
    buf_puts(b, v->st.offline.last_push_ok ? " &rarr; central</h1>\n"
                               : " &rarr; central <span class=off>(offline)</span></h1>\n");
    buf_puts(b, "<table><thead><tr><th>table</th><th>pending</th><th>synced</th>"
                "<th>failed</th></tr></thead><tbody>\n");
    for (int t = 0; t < SHOP_SYNC_TABLES_MAX && shop_table_name(t) != NULL; t++)
        html_row(b, shop_table_name(t), v->st.offline.queue.count[t], false);
    html_row(b, "all", v->st.offline.queue.total, true);
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
    struct offline_host *o = host_of(rq->srv);
    if (o == NULL) {
        if (rq->srv->opt.role == SERVE_OFFLINE || rq->srv->opt.role == SERVE_CENTRAL)
            http_reply_error(rq, 503, "sync job not running", "the server is starting or stopping");
        else
            status_not_configured(rq);
        return;
    }
    struct offline_view *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        http_reply_error(rq, 500, "out of memory", NULL);
        return;
    }
    v->srv = rq->srv;
    v->o = o;
    int rc = hosted_status(o->node, &v->st);
    if (rc != 0) {
        free(v);
        http_reply_platform(rq, rc, NULL);
        return;
    }
    pthread_mutex_lock(&o->lock);
    v->check = o->check;
    pthread_mutex_unlock(&o->lock);
    wire_link_stats(rq->srv->net, o->central ? "local" : "central", &v->link);
    v->trace_count = hosted_trace(o->node, v->trace, sizeof(v->trace) / sizeof(v->trace[0]));
    struct buf *b = &rq->w->out;
    buf_reset(b);
    if (o->central) {
        render_central(b, v);
        http_reply_bytes(rq, b, 200, "application/json", NULL);
    } else if (prefers_html(mg_get_header(rq->conn, "Accept"))) {
        render_html(b, v);
        http_reply_bytes(rq, b, 200, "text/html; charset=utf-8", "Vary: Accept");
    } else {
        render_json(b, v);
        http_reply_bytes(rq, b, 200, "application/json", "Vary: Accept");
    }
    free(v);
}
