/*
 * live_watch.c — what `run --live` sees of its nodes between events: a
 * thread that reads each serve process's status route every
 * LIVE_WATCH_EVERY_US and
 *
 *   - marks the node's lane when its state changes, with the simulator's
 *     words (story.c and the topology modules): down from a crash to its
 *     restart, a mirror half in sync, leading or degraded, an async
 *     secondary behind by N changes or caught up, promoted or fenced after a
 *     failover, an offline local switched off; so a live report's timeline
 *     shows one lane per node as the simulator's does;
 *   - measures the replication lag from what the nodes say: an async
 *     secondary's lag per applied batch (its status' lastApplyLagSeconds:
 *     now minus the batch's newest commit, the simulator's measure), the
 *     changes a copy was behind at most, and an offline local's time to
 *     sync (from the poll that first saw rows waiting in its queue to the
 *     one that saw none).
 *
 * It only reads: GETs on status routes, which change nothing. A poll sees
 * one instant, so a lag is sampled, not traced: a secondary that applied
 * several batches between two polls gives one sample (the last batch's), and
 * a time to sync is known to within one period. The trace says so.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/live_more.h"
#include "sim/world.h"

#define LIVE_WATCH_EVERY_US 100000     /* a poll of every node */
#define LIVE_WATCH_TIMEOUT_MS 1000     /* a status route unanswered by then: no news */
#define LIVE_WATCH_BODY_MAX (1u << 20) /* a status larger than this is not read */
#define LIVE_WATCH_SAMPLES_MAX 100000  /* lag samples kept (one per poll at most) */
#define LIVE_WATCH_LAG_SHOWN_US 50000  /* story.c: a shorter lag is a write in flight */

struct watched {
    enum report_node_state state;      /* REPORT_STATE_COUNT: no mark yet */
    int64_t value;                     /* changes behind */
    int64_t marked_us;
    uint64_t applied_seen;             /* async secondary: batches and copies applied */
    int64_t pending_since_us;          /* offline local: rows waiting since (-1: none) */
};

struct live_watch {
    struct live_watch_io io;
    pthread_t thread;
    atomic_bool stop;
    CURL *h;
    struct live_body body;             /* the last reply */
    struct watched node[DRILL_NODES_MAX];
    int64_t lag_every_us;
    uint64_t polls;
    int64_t *samples;                  /* async: lag of an applied batch, us */
    size_t sample_count, sample_cap;
    int64_t behind_max;                /* changes a copy was behind at most (-1: not seen) */
    int64_t sync_max_us;               /* offline: the longest time to sync (-1: not seen) */
    int64_t pending_max;               /* offline: rows waiting at most */
};

/* ---- HTTP -------------------------------------------------------------- */

/* GET base+path: its JSON when it answered 200, else NULL (no news this poll). */
static cJSON *get_json(struct live_watch *w, const char *base, const char *path)
{
    char url[128];
    snprintf(url, sizeof(url), "%s%s", base, path);
    live_body_reset(&w->body);
    curl_easy_setopt(w->h, CURLOPT_URL, url);
    long status = 0;
    if (curl_easy_perform(w->h) != CURLE_OK || w->body.cut || w->body.data == NULL ||
        curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200)
        return NULL;
    return cJSON_Parse(w->body.data);
}

static double num(const cJSON *o, const char *key, double none)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : none;
}

static bool truth(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const char *text(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* ---- what a node's status says ------------------------------------------ */

struct seen {
    enum report_node_state state;      /* REPORT_STATE_COUNT: no news */
    int64_t value;
    char label[REPORT_LABEL_MAX];
};

static void say(struct seen *v, enum report_node_state st, int64_t value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void say(struct seen *v, enum report_node_state st, int64_t value, const char *fmt, ...)
{
    v->state = st;
    v->value = value;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->label, sizeof(v->label), fmt, ap);
    va_end(ap);
}

static void sample(struct live_watch *w, int64_t lag_us)
{
    if (w->sample_count == w->sample_cap) {
        if (w->sample_cap >= LIVE_WATCH_SAMPLES_MAX)
            return;
        size_t cap = w->sample_cap ? 2 * w->sample_cap : 256;
        int64_t *grown = realloc(w->samples, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        w->samples = grown;
        w->sample_cap = cap;
    }
    w->samples[w->sample_count++] = lag_us;
}

/* A mirror half, from primary's /mirror/status (story.c's mirror_half, in its words). */
static void mirror_half(const cJSON *m, const char *name, struct seen *v, struct live_watch *w)
{
    const char *state = text(m, "state"), *lead = text(m, "lead"), *behind = text(m, "behind");
    int64_t changes = (int64_t)llround(num(m, "changesBehind", 0));
    const char *error = text(m, "lastError");
    if (changes > w->behind_max)
        w->behind_max = changes;
    if (strcmp(state, "in-sync") == 0)
        say(v, REPORT_STATE_UP, changes, "in sync: both copies hold every write");
    else if (strcmp(state, "failed") == 0)
        say(v, REPORT_STATE_FAILED, changes, "the mirror refuses writes: %.120s", error);
    else if (strcmp(lead, name) == 0)
        say(v, REPORT_STATE_LEADING, changes, "leads alone: %s is %lld change(s) behind", behind,
            (long long)changes);
    else
        say(v, REPORT_STATE_DEGRADED, changes,
            "degraded: out of the mirror, %lld change(s) behind (%.100s)", (long long)changes,
            error);
}

/* An async node: the primary's status tells the secondary's lag, the secondary's its
 * applied batches and a failover. */
static void async_node(struct live_watch *w, int n, const char *name, const char *base,
                       const char *primary_base, struct seen *v)
{
    struct sim *s = w->io.s;
    bool secondary = strcmp(name, "secondary") == 0;
    cJSON *own = get_json(w, base, "/replication/status");
    if (own == NULL)
        return;
    if (!secondary) {
        if (truth(own, "fenced"))
            say(v, REPORT_STATE_DEGRADED, 0, "fenced: replaced by the promoted secondary");
        else
            say(v, REPORT_STATE_UP, 0, "up");
        cJSON_Delete(own);
        return;
    }
    uint64_t applied = (uint64_t)llround(num(own, "batchesApplied", 0) +
                                         num(own, "snapshotsApplied", 0));
    int64_t lag_us = (int64_t)llround(num(own, "lastApplyLagSeconds", -1) * 1e6);
    /* a batch whose newest change has no commit time (a failover's first) is no sample */
    if (applied > w->node[n].applied_seen && lag_us >= 0 && lag_us <= s->drill->duration_us)
        sample(w, lag_us);
    w->node[n].applied_seen = applied;
    bool promoted = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(own, "failover"));
    cJSON_Delete(own);
    if (promoted) {
        say(v, REPORT_STATE_LEADING, 0, "promoted: takes the writes");
        return;
    }
    cJSON *p = primary_base[0] ? get_json(w, primary_base, "/replication/status") : NULL;
    if (p == NULL) {
        say(v, REPORT_STATE_UP, 0, "up");
        return;
    }
    int64_t changes = (int64_t)llround(num(p, "lagChanges", 0));
    double seconds = num(p, "lagSeconds", 0);
    bool fenced = truth(p, "fenced");
    cJSON_Delete(p);
    if (changes > w->behind_max)
        w->behind_max = changes;
    const char *primary = s->nodes[s->main_node].name;
    if (!fenced && changes > 0 && seconds * 1e6 >= LIVE_WATCH_LAG_SHOWN_US)
        say(v, REPORT_STATE_BEHIND, changes, "lags: %lld change(s) behind %s (%.3fs)",
            (long long)changes, primary, seconds);
    else
        say(v, REPORT_STATE_UP, 0, "caught up: holds every change of %s", primary);
}

/*
 * A cluster replica: the leader's status tells its lag (replicas[].lagChanges and
 * lagSeconds), the replica's own its applied batches (lastLagSeconds: the
 * simulator's propagation lag of a batch). The leader's status is read once a poll.
 */
static void cluster_replica(struct live_watch *w, int n, const char *name, const char *base,
                            const cJSON *leader, const char *leader_name, struct seen *v)
{
    struct sim *s = w->io.s;
    cJSON *own = get_json(w, base, "/replication/status");
    if (own != NULL) {
        uint64_t applied = (uint64_t)llround(num(own, "batchesApplied", 0));
        int64_t lag_us = (int64_t)llround(num(own, "lastLagSeconds", -1) * 1e6);
        if (applied > w->node[n].applied_seen && lag_us >= 0 && lag_us <= s->drill->duration_us)
            sample(w, lag_us);
        w->node[n].applied_seen = applied;
        cJSON_Delete(own);
    }
    const cJSON *r, *mine = NULL;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(leader, "replicas"))
        if (strcmp(text(r, "node"), name) == 0)
            mine = r;
    if (mine == NULL || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(mine, "lagChanges"))) {
        if (own != NULL)
            say(v, REPORT_STATE_UP, 0, "up");
        return;
    }
    int64_t changes = (int64_t)llround(num(mine, "lagChanges", 0));
    double seconds = num(mine, "lagSeconds", 0);
    if (changes > w->behind_max)
        w->behind_max = changes;
    if (changes > 0 && seconds * 1e6 >= LIVE_WATCH_LAG_SHOWN_US)
        say(v, REPORT_STATE_BEHIND, changes, "lags: %lld change(s) behind %s (%.3fs)",
            (long long)changes, leader_name, seconds);
    else
        say(v, REPORT_STATE_UP, 0, "caught up: holds every change of %s", leader_name);
}

/* An offline local: switched off, or up; its queue measures the time to sync. */
static void offline_local(struct live_watch *w, int n, const char *base, int64_t now_us,
                          struct seen *v)
{
    cJSON *j = get_json(w, base, "/sync/status");
    if (j == NULL)
        return;
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "rows");
    int64_t waiting = (int64_t)llround(num(rows, "pending", 0) + num(rows, "failed", 0));
    bool on = truth(j, "switchedOn");
    cJSON_Delete(j);
    if (waiting > w->pending_max)
        w->pending_max = waiting;
    struct watched *o = &w->node[n];
    if (waiting > 0 && o->pending_since_us < 0) {
        o->pending_since_us = now_us;
    } else if (waiting == 0 && o->pending_since_us >= 0) {
        if (now_us - o->pending_since_us > w->sync_max_us)
            w->sync_max_us = now_us - o->pending_since_us;
        o->pending_since_us = -1;
    }
    if (!on)
        say(v, REPORT_STATE_OFFLINE, waiting, "offline: keeps taking orders locally, pushes "
                                              "nothing");
    else
        say(v, REPORT_STATE_UP, 0, "up");
}

/* ---- the poll ----------------------------------------------------------- */

static void mark(struct live_watch *w, int n, const struct seen *v)
{
    struct sim *s = w->io.s;
    struct watched *o = &w->node[n];
    bool changed = v->state != o->state;
    bool moved = !changed && v->value != o->value && s->now_us - o->marked_us >= w->lag_every_us;
    if (!changed && !moved)
        return;
    size_t before = s->mark_count;
    world_mark(s, s->nodes[n].name, REPORT_STATE, "%s", v->label);
    if (s->mark_count > before) {
        s->marks[before].state = v->state;
        if (o->state == REPORT_STATE_COUNT)
            s->marks[before].at_us = 0; /* the first state: from the start, as story.c's */
    }
    o->state = v->state;
    o->value = v->value;
    o->marked_us = s->now_us;
}

static void poll_nodes(struct live_watch *w)
{
    struct sim *s = w->io.s;
    unsigned c = s->drill->topology.components;
    char base[DRILL_NODES_MAX][64], primary_base[64] = "";
    int how[DRILL_NODES_MAX];
    pthread_mutex_lock(w->io.lock);
    w->io.tick(w->io.ctx);
    for (size_t n = 0; n < s->node_count; n++) {
        base[n][0] = '\0';
        how[n] = w->io.node(w->io.ctx, (int)n, base[n]);
    }
    if (how[s->main_node] == 1)
        snprintf(primary_base, sizeof(primary_base), "%s", base[s->main_node]);
    int64_t now_us = s->now_us;
    pthread_mutex_unlock(w->io.lock);
    struct seen seen[DRILL_NODES_MAX];
    cJSON *mirror = NULL, *leader = NULL;
    if ((c & DRILL_MIRROR) != 0 && primary_base[0])
        mirror = get_json(w, primary_base, "/mirror/status");
    if ((c & DRILL_CLUSTER) != 0 && primary_base[0])
        leader = get_json(w, primary_base, "/replication/status");
    for (size_t n = 0; n < s->node_count; n++) {
        struct seen *v = &seen[n];
        const char *name = s->nodes[n].name;
        v->state = REPORT_STATE_COUNT;
        if (how[n] < 0)
            continue;
        if (how[n] == 0)
            say(v, REPORT_STATE_DOWN, 0, "down: crashed, not restarted yet");
        else if (strcmp(name, "ledger") == 0)
            say(v, REPORT_STATE_UP, 0, "up: the stake ledger, in %s's process",
                s->nodes[s->main_node].name);
        else if ((c & DRILL_MIRROR) != 0 &&
                 ((int)n == s->main_node || strcmp(name, "mirror") == 0)) {
            if (mirror != NULL)
                mirror_half(mirror, name, v, w);
        } else if ((c & DRILL_ASYNC) != 0)
            async_node(w, (int)n, name, base[n], primary_base, v);
        else if ((c & DRILL_OFFLINE) != 0 && strncmp(name, "local", 5) == 0)
            offline_local(w, (int)n, base[n], now_us, v);
        else if ((c & DRILL_CLUSTER) != 0 && strncmp(name, "replica", 7) == 0)
            cluster_replica(w, (int)n, name, base[n], leader, s->nodes[s->main_node].name, v);
        else
            say(v, REPORT_STATE_UP, 0, "up");
    }
    cJSON_Delete(mirror);
    cJSON_Delete(leader);
    pthread_mutex_lock(w->io.lock);
    w->io.tick(w->io.ctx);
    for (size_t n = 0; n < s->node_count; n++)
        if (seen[n].state != REPORT_STATE_COUNT)
            mark(w, (int)n, &seen[n]);
    w->polls++;
    pthread_mutex_unlock(w->io.lock);
}

static int64_t mono_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void *watch_main(void *arg)
{
    struct live_watch *w = arg;
    int64_t next = mono_us();
    while (!atomic_load(&w->stop)) {
        if (mono_us() >= next) {
            poll_nodes(w);
            next += LIVE_WATCH_EVERY_US;
            if (next < mono_us())
                next = mono_us() + LIVE_WATCH_EVERY_US; /* a slow poll: no catching up */
        }
        struct timespec d = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    return NULL;
}

struct live_watch *live_watch_start(const struct live_watch_io *io)
{
    struct sim *s = io->s;
    struct live_watch *w = calloc(1, sizeof(*w));
    CURL *h = w != NULL ? curl_easy_init() : NULL;
    if (h == NULL) {
        free(w);
        world_trace(s, "-", "live: the nodes' lanes and lag are not watched (out of memory)");
        return NULL;
    }
    w->io = *io;
    w->h = h;
    w->behind_max = -1;
    w->sync_max_us = -1;
    w->pending_max = -1;
    int64_t every = s->drill->duration_us / 400;
    w->lag_every_us = every > LIVE_WATCH_EVERY_US ? every : LIVE_WATCH_EVERY_US;
    for (size_t n = 0; n < DRILL_NODES_MAX; n++) {
        w->node[n].state = REPORT_STATE_COUNT;
        w->node[n].pending_since_us = -1;
    }
    w->body.max = LIVE_WATCH_BODY_MAX;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, live_body_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &w->body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)LIVE_WATCH_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    /* no idle keep-alive connection left behind: a serve process stopping for a
     * judgement would wait for it */
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    int err = pthread_create(&w->thread, NULL, watch_main, w);
    if (err) {
        curl_easy_cleanup(h);
        free(w);
        world_trace(s, "-", "live: the nodes' lanes and lag are not watched: %s", strerror(err));
        return NULL;
    }
    return w;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* The p-th percentile (0..100), nearest rank, as sim/async.c counts it. */
static int64_t percentile(const int64_t *v, size_t n, int p)
{
    size_t rank = (n * (size_t)p + 99) / 100;
    return v[rank > 0 ? rank - 1 : 0];
}

void live_watch_stop(struct live_watch *w)
{
    if (w == NULL)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    struct sim *s = w->io.s;
    unsigned c = s->drill->topology.components;
    pthread_mutex_lock(w->io.lock);
    w->io.tick(w->io.ctx);
    for (size_t n = 0; n < s->node_count; n++) /* rows still waiting at the end */
        if (w->node[n].pending_since_us >= 0 &&
            s->now_us - w->node[n].pending_since_us > w->sync_max_us)
            w->sync_max_us = s->now_us - w->node[n].pending_since_us;
    if ((c & (DRILL_ASYNC | DRILL_CLUSTER)) != 0 && w->sample_count > 0) {
        /* the simulator's names: async's replication lag, a cluster's propagation lag */
        const char *what = (c & DRILL_ASYNC) != 0 ? "replication" : "propagation";
        char p50_name[48], p99_name[48];
        snprintf(p50_name, sizeof(p50_name), "%s_lag_p50_us", what);
        snprintf(p99_name, sizeof(p99_name), "%s_lag_p99_us", what);
        qsort(w->samples, w->sample_count, sizeof(*w->samples), cmp_i64);
        int64_t p50 = percentile(w->samples, w->sample_count, 50);
        int64_t p99 = percentile(w->samples, w->sample_count, 99);
        world_metric(s, p50_name, p50, "us");
        world_metric(s, p99_name, p99, "us");
        world_trace(s, "-",
                    "live: %s lag over %zu applied batch(es) sampled in %" PRIu64
                    " polls every %.1fs (batches applied between two polls count once, the "
                    "last): p50 %.3fs, p99 %.3fs",
                    what, w->sample_count, w->polls, (double)LIVE_WATCH_EVERY_US / 1e6,
                    (double)p50 / 1e6, (double)p99 / 1e6);
    }
    if ((c & (DRILL_ASYNC | DRILL_MIRROR | DRILL_CLUSTER)) != 0 && w->behind_max >= 0) {
        world_metric(s, "lag_changes_max", w->behind_max, "changes");
        world_trace(s, "-", "live: a copy was %" PRId64 " change(s) behind at most (polled)",
                    w->behind_max);
    }
    if ((c & DRILL_OFFLINE) != 0 && w->pending_max >= 0) {
        int64_t sync = w->sync_max_us > 0 ? w->sync_max_us : 0;
        world_metric(s, "sync_lag_max_us", sync, "us");
        world_metric(s, "sync_rows_waiting_max", w->pending_max, "rows");
        world_trace(s, "-",
                    "live: time to sync at most %.3fs (rows waiting in a local's queue, from "
                    "the poll that saw them to the one that saw none, every %.1fs), %" PRId64
                    " row(s) waiting at most",
                    (double)sync / 1e6, (double)LIVE_WATCH_EVERY_US / 1e6, w->pending_max);
    }
    pthread_mutex_unlock(w->io.lock);
    curl_easy_cleanup(w->h);
    free(w->body.data);
    free(w->samples);
    free(w);
}
