/*
 * runner.c — runs one drill in virtual time: sets up the nodes, the shop
 * and the clients, then pops events in (time, sequence) order: client
 * requests and replies crossing the simulated network, the drill's
 * timeline (faults, partitions, crashes, restarts, checkpoints, drain), and
 * the end. Everything random is drawn from a named stream of the run's seed;
 * nothing reads the wall clock. Part of libsim.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <assert.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>
#include <sqlite3.h>

#include "sim/world.h"

/* ---- trace and marks ---------------------------------------------------- */

#define TRACE_MEMORY_DEFAULT (1u << 20) /* bytes of trace a run keeps in memory */

/* The in-memory part of the trace goes to the spill file (made on first
 * use) and into its digest; false when that failed (the trace stays in
 * memory, growing). */
static bool trace_spill(struct sim *s)
{
    if (s->trace_spill == NULL) {
        s->trace_hash = malloc(sizeof(struct sha256_ctx));
        s->trace_spill = s->trace_hash != NULL ? tmpfile() : NULL;
        if (s->trace_spill == NULL) {
            free(s->trace_hash);
            s->trace_hash = NULL;
            s->trace_memory = SIZE_MAX; /* never try again */
            return false;
        }
        sha256_init(s->trace_hash);
    }
    if (fwrite(s->trace, 1, s->trace_len, s->trace_spill) != s->trace_len) {
        s->trace_full = true; /* said in the report: the trace hash covers what was kept */
        return false;
    }
    sha256_update(s->trace_hash, s->trace_len, (const uint8_t *)s->trace);
    s->trace_spilled += s->trace_len;
    s->trace_len = 0;
    return true;
}

static void trace_append(struct sim *s, const char *text, size_t n)
{
    if (s->trace_full)
        return;
    if (s->trace_spilled + s->trace_len + n + 1 > SIM_TRACE_BYTES_MAX) {
        s->trace_full = true;
        return;
    }
    if (s->trace_len + n + 1 > s->trace_memory && s->trace_len > 0 && !trace_spill(s) &&
        s->trace_full)
        return;
    if (s->trace_len + n + 1 > s->trace_cap) {
        size_t cap = s->trace_cap ? s->trace_cap * 2 : 1u << 16;
        while (cap < s->trace_len + n + 1)
            cap *= 2;
        char *grown = realloc(s->trace, cap);
        if (grown == NULL) {
            s->trace_full = true;
            return;
        }
        s->trace = grown;
        s->trace_cap = cap;
    }
    memcpy(s->trace + s->trace_len, text, n);
    s->trace_len += n;
    s->trace[s->trace_len] = '\0';
}

void world_trace_to_report(struct sim *s, struct report_run *rep)
{
    if (s->trace_spill != NULL && trace_spill(s) && fflush(s->trace_spill) == 0) {
        uint8_t digest[SHA256_DIGEST_SIZE];
        sha256_digest(s->trace_hash, sizeof(digest), digest);
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < sizeof(digest); i++) {
            rep->trace_sha256[2 * i] = digits[digest[i] >> 4];
            rep->trace_sha256[2 * i + 1] = digits[digest[i] & 15];
        }
        rep->trace_sha256[64] = '\0';
        rep->trace = NULL;
        rep->trace_file = s->trace_spill;
        rep->trace_len = s->trace_spilled;
        s->trace_spill = NULL;
        return;
    }
    /* all of it in memory (or its file failed: what is in memory) */
    rep->trace = s->trace != NULL ? s->trace : "";
    rep->trace_len = s->trace_len;
    s->trace = NULL;
    platform_sha256_hex(rep->trace, rep->trace_len, rep->trace_sha256);
}

/* No host path in a trace (determinism): the run's scratch directory, whose
 * name is random, is written as "$WORK"; returns the new length. */
static size_t scrub_workdir(const struct sim *s, char *line, size_t len)
{
    size_t wl = strlen(s->workdir);
    char *p;
    while (wl > 0 && (p = strstr(line, s->workdir)) != NULL) {
        memcpy(p, "$WORK", 5);
        memmove(p + 5, p + wl, len - (size_t)(p - line) - wl + 1);
        len -= wl - 5;
    }
    return len;
}

/*
 * A trace line built without printf. Every operation traces four or five
 * lines and marks the timeline once; vsnprintf made those a tenth of the
 * simulator's time, so the lines of the hot path (and every line's
 * "SECONDS.MICROS lane" prefix) are put together here. Same bytes as
 * "%lld.%06lld %-10s " and the formats they replace.
 */
#define TLINE_BYTES 1024

struct tline {
    char buf[TLINE_BYTES];
    size_t len; /* <= TLINE_BYTES - 2: room for the newline and a NUL */
};

static void tl_mem(struct tline *l, const char *text, size_t n)
{
    size_t room = TLINE_BYTES - 2 - l->len;
    n = n < room ? n : room;
    memcpy(l->buf + l->len, text, n);
    l->len += n;
}

static void tl_str(struct tline *l, const char *text)
{
    tl_mem(l, text, strlen(text));
}

/* v in decimal, at least `width` digits (zero-padded). */
static void tl_u64(struct tline *l, uint64_t v, int width)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n < width && n < (int)sizeof(digits))
        digits[n++] = '0';
    char out[24];
    for (int i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    tl_mem(l, out, (size_t)n);
}

static void tl_i64(struct tline *l, int64_t v)
{
    if (v < 0) {
        tl_mem(l, "-", 1);
        tl_u64(l, 0 - (uint64_t)v, 0);
    } else {
        tl_u64(l, (uint64_t)v, 0);
    }
}

/* "%lld.%06lld %-10s " of the current time and the lane. */
static void tl_start(const struct sim *s, struct tline *l, const char *lane)
{
    l->len = 0;
    tl_i64(l, s->now_us / 1000000);
    tl_mem(l, ".", 1);
    tl_u64(l, (uint64_t)(s->now_us % 1000000), 6);
    tl_mem(l, " ", 1);
    size_t n = strlen(lane);
    tl_mem(l, lane, n);
    static const char spaces[] = "          ";
    if (n < 10)
        tl_mem(l, spaces, 10 - n);
    tl_mem(l, " ", 1);
}

static void tl_end(struct sim *s, struct tline *l)
{
    l->buf[l->len] = '\0';
    l->len = scrub_workdir(s, l->buf, l->len);
    l->buf[l->len++] = '\n';
    trace_append(s, l->buf, l->len);
}

/* "client<N>" into buf. */
static const char *client_lane(int client, char buf[32])
{
    struct tline l = {.len = 0};
    tl_str(&l, "client");
    tl_i64(&l, client);
    memcpy(buf, l.buf, l.len);
    buf[l.len] = '\0';
    return buf;
}

void world_trace(struct sim *s, const char *lane, const char *fmt, ...)
{
    struct tline l;
    tl_start(s, &l, lane);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(l.buf + l.len, TLINE_BYTES - l.len - 1, fmt, ap);
    va_end(ap);
    l.len += m < 0 ? 0 : (size_t)m;
    if (l.len > TLINE_BYTES - 2)
        l.len = TLINE_BYTES - 2;
    tl_end(s, &l);
}

#define MARK_TEXT_BLOCK (64u << 10) /* bytes of a block of marks' text */

void world_mark_text_free(struct mark_text *t)
{
    while (t != NULL) {
        struct mark_text *next = t->next;
        free(t);
        t = next;
    }
}

/* A copy of text[0..n) (cut to max - 1 bytes) among the marks' text; NULL
 * when out of memory. The newest block is first in the chain. */
static const char *mark_strndup(struct sim *s, const char *text, size_t n, size_t max)
{
    n = n < max - 1 ? n : max - 1;
    struct mark_text *t = s->mark_text;
    if (t == NULL || t->cap - t->used < n + 1) {
        size_t cap = MARK_TEXT_BLOCK > n + 1 ? MARK_TEXT_BLOCK : n + 1;
        struct mark_text *block = malloc(sizeof(*block) + cap);
        if (block == NULL)
            return NULL;
        *block = (struct mark_text){.next = t, .cap = cap};
        s->mark_text = t = block;
    }
    char *p = t->data + t->used;
    memcpy(p, text, n);
    p[n] = '\0';
    t->used += n + 1;
    return p;
}

/* The next timeline mark at the current time, labelled label[0..n); NULL
 * when out of room. */
static struct report_event *new_mark(struct sim *s, const char *lane, enum report_mark mark,
                                     const char *label, size_t n)
{
    if (s->mark_count == s->mark_cap) {
        size_t cap = s->mark_cap ? 2 * s->mark_cap : 256;
        struct report_event *grown = realloc(s->marks, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL; /* marks only draw the timeline: losing one is not fatal */
        s->marks = grown;
        s->mark_cap = cap;
    }
    /* a lane is the same as the last mark's more often than not */
    const char *last = s->mark_count > 0 ? s->marks[s->mark_count - 1].lane : NULL;
    const char *l = last != NULL && strcmp(last, lane) == 0
                        ? last
                        : mark_strndup(s, lane, strlen(lane), REPORT_LANE_MAX);
    const char *text = l != NULL ? mark_strndup(s, label, n, REPORT_LABEL_MAX) : NULL;
    if (text == NULL)
        return NULL;
    struct report_event *e = &s->marks[s->mark_count++];
    *e = (struct report_event){.at_us = s->now_us, .lane = l, .mark = mark, .label = text};
    return e;
}

void world_mark(struct sim *s, const char *lane, enum report_mark mark, const char *fmt, ...)
{
    char label[REPORT_LABEL_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(label, sizeof(label), fmt, ap);
    va_end(ap);
    n = n < 0 ? 0 : n;
    new_mark(s, lane, mark, label, (size_t)n < sizeof(label) ? (size_t)n : sizeof(label) - 1);
}

void world_metric(struct sim *s, const char *name, int64_t value, const char *unit)
{
    if (s->metric_count == REPORT_METRICS_MAX)
        return;
    struct report_metric *m = &s->metrics[s->metric_count++];
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->unit, sizeof(m->unit), "%s", unit);
    m->value = value;
}

int world_node_index(const struct sim *s, const char *name)
{
    for (size_t i = 0; i < s->node_count; i++)
        if (strcmp(s->nodes[i].name, name) == 0)
            return (int)i;
    return -1;
}

const char *world_endpoint_name(const struct sim *s, int endpoint, char buf[32])
{
    if (endpoint < (int)s->node_count)
        return s->nodes[endpoint].name;
    return client_lane(endpoint - (int)s->node_count + 1, buf);
}

int world_client_endpoint(const struct sim *s, int client)
{
    return (int)s->node_count + client - 1;
}

shop *world_shop(const struct sim *s)
{
    return s->nodes[s->main_node].shop;
}

const struct shop_config *world_cfg(const struct sim *s)
{
    return &s->nodes[s->main_node].cfg;
}

bool world_is_mirrored(const struct sim *s, int n)
{
    return n >= 0 && (size_t)n < s->node_count && s->nodes[n].holds_db &&
           s->nodes[n].cfg.topology == SHOP_MIRROR;
}

int world_lead_copy(const struct sim *s, int n)
{
    struct mirror_status st;
    const struct world_node *node = &s->nodes[n];
    if (!world_is_mirrored(s, n) || node->shop == NULL ||
        shop_mirror_status(node->shop, &st) != 0 || st.lead == NULL)
        return 0;
    return strcmp(st.lead, node->cfg.primary.node) == 0 ? 0 : 1;
}

int world_mirror_node(const struct sim *s)
{
    for (size_t i = 0; i < s->node_count; i++)
        if (world_is_mirrored(s, (int)i))
            return (int)i;
    return s->main_node;
}

/* ---- the platform's host ------------------------------------------------ */

static int64_t env_now(void *ctx)
{
    return ((struct sim *)ctx)->now_us;
}

static void env_crash(void *ctx, const char *node, const char *point)
{
    struct sim *s = ctx;
    s->crash_pending = true;
    snprintf(s->crash_node, sizeof(s->crash_node), "%s", node);
    snprintf(s->crash_point, sizeof(s->crash_point), "%s", point);
}

static void host_delay(void *ctx, const char *node, int64_t delay_us)
{
    struct sim *s = ctx;
    (void)node;
    s->delay_pending_us += delay_us;
}

/* Times the armed faults fired so far (the drill's and a partition's remote disk). */
uint64_t world_faults_fired(struct sim *s)
{
    uint64_t total = 0, fired = 0;
    for (size_t i = 0; i < s->fault_count; i++)
        if (s->faults[i].armed && faults_stats(s->faults[i].name, NULL, &fired) == 0)
            total += fired;
    for (size_t n = 0; s->partition.active && n < s->node_count; n++) {
        if (!world_is_mirrored(s, (int)n))
            continue;
        char name[FAULTS_NAME_MAX];
        for (size_t i = 0; i < 3; i++) {
            snprintf(name, sizeof(name), "disk/%s/%s", s->nodes[n].cfg.mirror.node,
                     i == 0 ? "read" : i == 1 ? "write" : "fsync");
            if (faults_stats(name, NULL, &fired) == 0)
                total += fired;
        }
    }
    return total;
}

/* PRAGMA integrity_check after an open; an injected fault that fired during
 * it makes the answer the fault's, not the database's: judged later. */
static void check_integrity(struct sim *s, int n, const char *when)
{
    struct world_node *node = &s->nodes[n];
    int copies = node->cfg.topology == SHOP_MIRROR ? 2 : 1;
    for (int c = 0; c < copies && node->shop != NULL; c++) {
        uint64_t before = world_faults_fired(s);
        int err = shop_integrity(node->shop, c);
        if (err != 0 && world_faults_fired(s) != before)
            continue;
        s->integrity_checks += err == 0 || err == -EBADMSG;
        if (err != 0 && !s->integrity_failed) {
            s->integrity_failed = true;
            snprintf(s->integrity_why, sizeof(s->integrity_why),
                     "PRAGMA integrity_check failed on %s %s at %.3fs: %s",
                     c == 0 ? node->cfg.primary.node : node->cfg.mirror.node, when,
                     (double)s->now_us / 1e6, shop_errmsg(node->shop));
        }
    }
}

/* Traces the mirror's state when it changes: students watch it degrade,
 * fall behind and catch up in trace.log. */
static void trace_mirror(struct sim *s, int n)
{
    struct mirror_status st;
    struct world_node *node = &s->nodes[n];
    if (!world_is_mirrored(s, n) || node->shop == NULL ||
        shop_mirror_status(node->shop, &st) != 0)
        return;
    if ((int)st.state == node->mirror_state && strcmp(st.lead, node->mirror_lead) == 0)
        return;
    node->mirror_state = (int)st.state;
    snprintf(node->mirror_lead, sizeof(node->mirror_lead), "%s", st.lead);
    if (st.changes_behind > 0)
        world_trace(s, st.lead, "mirror %s: %s leads, %s is %lld change(s) behind (%.160s)",
                    mirror_state_name(st.state), st.lead, st.behind,
                    (long long)st.changes_behind, st.last_error);
    else
        world_trace(s, st.lead, "mirror %s: %s leads", mirror_state_name(st.state), st.lead);
}

/* A mirror out of sync repairs itself when the platform says: the sim only
 * fires it (each mirrored node's pair on its own). */
static void mirror_wake(struct sim *s)
{
    for (size_t n = 0; n < s->node_count; n++) {
        struct world_node *node = &s->nodes[n];
        if (!world_is_mirrored(s, (int)n))
            continue;
        int64_t at = s->live || node->shop == NULL ? -1 : shop_mirror_next_wake(node->shop);
        if (at < 0 || at == node->mirror_wake_us)
            continue;
        node->mirror_wake_us = at;
        sim_queue_push(&s->queue, at > s->now_us ? at : s->now_us, SIM_EV_MIRROR, (int)n, 0);
    }
}

static void mirror_tick(struct sim *s, int n)
{
    shop *sh = world_is_mirrored(s, n) ? s->nodes[n].shop : NULL;
    if (sh == NULL)
        return;
    if (shop_mirror_tick(sh) == -ECANCELED)
        world_handle_crash_point(s);
    else
        trace_mirror(s, n);
}

/* Opens node n's shop (recovery included). */
int world_open_shop(struct sim *s, int n, const char *why)
{
    char msg[SHOP_ERRMSG_MAX];
    struct world_node *node = &s->nodes[n];
    assert(node->holds_db && node->shop == NULL);
    s->epoch++;
    int err = shop_open(&node->cfg, &s->env, &node->shop, msg);
    if (err) {
        node->shop = NULL;
        world_trace(s, node->name, "cannot open the shop (%s): %s", why, msg);
        if (err == -ECANCELED && s->crash_pending)
            world_handle_crash_point(s);
        return err;
    }
    world_trace(s, node->name, "shop open (%s)", why);
    if (world_is_mirrored(s, n)) {
        node->mirror_state = -1;
        trace_mirror(s, n);
    }
    check_integrity(s, n, why);
    return 0;
}

/* Node n's process dies: its connections go without writing. */
static void kill_shop_process(struct sim *s, int n, enum faults_crash_kind kind)
{
    struct world_node *node = &s->nodes[n];
    faults_vfs_crash(node->name, kind, &s->crash_rng, NULL);
    bool mirrored = node->cfg.topology == SHOP_MIRROR;
    if (mirrored) {
        /* its handles on the mirror's disk die too; that disk keeps its data */
        faults_vfs_crash(node->cfg.mirror.node, FAULTS_CRASH_PROCESS, NULL, NULL);
    }
    shop_abandon(node->shop);
    node->shop = NULL;
    if (mirrored) {
        int m = world_node_index(s, node->cfg.mirror.node);
        if (m >= 0 && s->nodes[m].up)
            faults_vfs_restart(node->cfg.mirror.node);
    }
}

/* The node whose process holds the disk of node n (the mirror's primary). */
static int disk_owner(const struct sim *s, int n)
{
    for (size_t i = 0; i < s->node_count; i++)
        if (s->nodes[i].holds_db && s->nodes[i].cfg.topology == SHOP_MIRROR &&
            strcmp(s->nodes[i].cfg.mirror.node, s->nodes[n].name) == 0)
            return (int)i;
    return -1;
}

static void crash_node(struct sim *s, int n, bool process, const char *cause)
{
    struct world_node *node = &s->nodes[n];
    if (!node->up)
        return;
    node->up = false;
    node->crashes++;
    s->epoch++;
    enum faults_crash_kind kind = process ? FAULTS_CRASH_PROCESS : FAULTS_CRASH_POWER;
    struct faults_crash_stats st = {0};
    if (node->holds_db) {
        if (node->shop != NULL)
            kill_shop_process(s, n, kind);
    } else {
        faults_vfs_crash(node->name, kind, &s->crash_rng, &st);
    }
    world_trace(s, node->name, "crash (%s, %s): %llu unsynced writes kept, %llu dropped, %llu torn",
                process ? "process" : "power cut", cause, (unsigned long long)st.writes_kept,
                (unsigned long long)st.writes_dropped, (unsigned long long)st.writes_torn);
    world_mark(s, node->name, REPORT_CRASH, "%s crashed (%s)", node->name, cause);
    if (s->topo != NULL && s->topo->crashed != NULL)
        s->topo->crashed(s, n);
    ledger_crashed(s, n);
}

static void restart_node(struct sim *s, int n, const char *why)
{
    struct world_node *node = &s->nodes[n];
    if (!node->up) {
        node->up = true;
        faults_vfs_restart(node->name);
        world_mark(s, node->name, REPORT_RESTART, "%s restarted", node->name);
        world_trace(s, node->name, "restart (%s)", why);
    } else if (strcmp(why, "restart") == 0) {
        /* a drill's `restart` of a live node: said, so a reader never wonders */
        world_trace(s, node->name, "restart: %s is already up; only a stopped shop reopens",
                    node->name);
    }
    ledger_restarted(s, n);
    int owner = node->holds_db ? n : disk_owner(s, n);
    if (owner < 0) {
        /* a node without a database (the registry): the module hears of it */
        if (s->topo != NULL && s->topo->restarted != NULL)
            s->topo->restarted(s, n);
        return;
    }
    if (!s->nodes[owner].up)
        return;
    struct world_node *o = &s->nodes[owner];
    if (o->shop != NULL && owner != n) {
        /* a disk of the shop came back: the shop reattaches and resyncs. A
         * node that also replicates (mirror async|cluster|offline) lets go of
         * the shop first and restarts its protocol on the reopened one below:
         * if the reopen fails, it must not keep the closed one (fuzz found
         * the async core pruning through it) */
        if (s->topo != NULL && s->topo->crashed != NULL)
            s->topo->crashed(s, owner);
        shop_close(o->shop);
        o->shop = NULL;
    }
    bool reopened = o->shop == NULL;
    if (reopened)
        world_open_shop(s, owner, why);
    /* Only a shop that reopened restarts its protocol: a running node told it restarted
     * would drop its pending timers (fuzz-found/restart-of-live-node-keeps-shipping). */
    if (reopened && s->topo != NULL && s->topo->restarted != NULL && o->shop != NULL)
        s->topo->restarted(s, owner);
}

/* A crash point fired inside a shop while serving a request. */
void world_handle_crash_point(struct sim *s)
{
    s->crash_pending = false;
    int n = world_node_index(s, s->crash_node);
    if (n < 0)
        n = s->main_node;
    char cause[96];
    snprintf(cause, sizeof(cause), "crash point %s", s->crash_point);
    crash_node(s, n, true, cause);
}

/* ---- network ------------------------------------------------------------ */

static bool is_cut(const struct sim *s, int from, int to)
{
    const struct world_partition *p = &s->partition;
    return p->active && ((p->side[0][from] && p->side[1][to]) || (p->side[1][from] && p->side[0][to]));
}

static int64_t link_latency(struct sim *s)
{
    const struct drill_topology *t = &s->drill->topology;
    int64_t jitter = t->jitter_us > 0 ? (int64_t)faults_rng_below(&s->net_rng, (uint64_t)t->jitter_us + 1) : 0;
    return t->latency_us + jitter;
}

/* A slot for a message: a delivered one's (so memory follows the messages
 * in flight, not the length of the run), or a new one. */
static int new_msg(struct sim *s, const struct world_msg *proto)
{
    if (s->msg_free_count > 0) {
        int index = s->msg_free[--s->msg_free_count];
        struct world_msg *m = &s->msgs[index];
        *m = *proto;
        m->data = NULL;
        if (proto->len > 0) {
            m->data = malloc(proto->len);
            if (m->data == NULL) {
                s->msg_free_count++;
                return -ENOMEM;
            }
            memcpy(m->data, proto->data, proto->len);
        }
        return index;
    }
    if (s->msg_count == SIM_MSGS_MAX)
        return -E2BIG;
    if (s->msg_count == s->msg_cap) {
        size_t cap = s->msg_cap ? 2 * s->msg_cap : 1024;
        struct world_msg *grown = realloc(s->msgs, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        s->msgs = grown;
        s->msg_cap = cap;
    }
    struct world_msg *m = &s->msgs[s->msg_count];
    *m = *proto;
    m->data = NULL;
    if (proto->len > 0) {
        m->data = malloc(proto->len);
        if (m->data == NULL)
            return -ENOMEM;
        memcpy(m->data, proto->data, proto->len);
    }
    return (int)s->msg_count++;
}

/* Sends a message over the directed link from -> to, through its faults. */
static int net_faults(struct sim *s, const char *fn, const char *tn, uint32_t op,
                      int64_t *delay, int *copies);

static void send_proto(struct sim *s, const struct world_msg *proto, int64_t at_us)
{
    char fb[32], tb[32];
    int from = proto->from, to = proto->to;
    uint32_t op = proto->op;
    const char *fn = world_endpoint_name(s, from, fb), *tn = world_endpoint_name(s, to, tb);
    if (is_cut(s, from, to)) {
        world_trace(s, fn, "-> %s #%u dropped (partition)", tn, op);
        return;
    }
    int64_t delay = link_latency(s);
    int copies = 1;
    if (s->net_armed > 0 && net_faults(s, fn, tn, op, &delay, &copies) != 0)
        return;
    for (int i = 0; i < copies; i++) {
        int m = new_msg(s, proto);
        if (m < 0 || sim_queue_push(&s->queue, at_us + delay + i, SIM_EV_DELIVER, m, 0) != 0) {
            world_trace(s, fn, "-> %s #%u lost: the simulator is out of room", tn, op);
            return;
        }
    }
}

static void send_msg(struct sim *s, int from, int to, enum world_msg_kind kind, uint32_t op,
                     int64_t at_us)
{
    struct world_msg proto = {.from = from, .to = to, .kind = kind, .op = op};
    send_proto(s, &proto, at_us);
}

void world_send(struct sim *s, int from, int to, int type, int64_t a, int64_t b,
                const void *data, size_t len, int64_t at_us)
{
    struct world_msg proto = {.from = from, .to = to, .kind = WORLD_NODE, .type = type,
                              .a = a, .b = b, .data = (void *)data, .len = len};
    send_proto(s, &proto, at_us < s->now_us ? s->now_us : at_us);
}

int world_timer(struct sim *s, int64_t at_us, int a, int64_t b)
{
    return sim_queue_push(&s->queue, at_us, SIM_EV_TOPO, a, b);
}

/* The link's fault points, consulted per message: -1 when it is dropped. */
static int net_faults(struct sim *s, const char *fn, const char *tn, uint32_t op,
                      int64_t *delay, int *copies)
{
    char point[FAULTS_NAME_MAX];
    snprintf(point, sizeof(point), "net/%s/%s/drop", fn, tn);
    if (faults_check(point) > 0) {
        world_trace(s, fn, "-> %s #%u dropped (%s)", tn, op, point);
        return -1;
    }
    snprintf(point, sizeof(point), "net/%s/%s/delay", fn, tn);
    int64_t extra = faults_check(point);
    *delay += extra > 0 ? extra : 0;
    snprintf(point, sizeof(point), "net/%s/%s/reorder", fn, tn);
    if (faults_check(point) > 0)
        *delay += (int64_t)faults_rng_below(&s->net_rng, 2 * (uint64_t)*delay + 1);
    snprintf(point, sizeof(point), "net/%s/%s/duplicate", fn, tn);
    *copies = faults_check(point) > 0 ? 2 : 1;
    return 0;
}

/* ---- clients ------------------------------------------------------------ */

void world_op_prepare(struct sim *s, struct sim_op *op, int64_t product, int64_t qty,
                      bool is_explicit)
{
    op->product_id = product;
    op->qty = qty;
    workload_prepare(s, op);
    session_issued(s, op);
    op->is_explicit = is_explicit;
    if (is_explicit)
        s->explicit_pending++;
    else
        s->clients[op->client].pending_op = op->id;
}

struct sim_op *world_new_op(struct sim *s, int client, enum drill_op kind)
{
    if (s->op_count == SIM_OPS_MAX)
        return NULL;
    if (s->op_count == s->op_cap) {
        size_t cap = s->op_cap ? 2 * s->op_cap : 1024;
        struct sim_op *grown = realloc(s->ops, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        s->ops = grown;
        s->op_cap = cap;
    }
    struct sim_op *op = &s->ops[s->op_count];
    memset(op, 0, sizeof(*op));
    op->id = (uint32_t)++s->op_count;
    op->client = client;
    op->kind = kind;
    op->invoke_us = s->now_us;
    op->complete_us = -1;
    op->node = -1;
    op->via = -1;
    op->served_us = -1;
    op->outcome = SIM_PENDING;
    return op;
}

/* Think time: uniform in [mean/2, 3*mean/2], integer arithmetic only. */
int64_t world_think_us(struct sim *s, int client)
{
    const struct drill_workload *w = s->clients[client].workload;
    double rate = w->rate_per_s > 0 ? w->rate_per_s : 1;
    int64_t mean = (int64_t)((double)w->clients * 1e6 / rate);
    if (mean < 1)
        mean = 1;
    return mean / 2 + (int64_t)faults_rng_below(&s->clients[client].rng, (uint64_t)mean + 1);
}

static void schedule_next(struct sim *s, int client)
{
    const struct drill_workload *w = s->clients[client].workload;
    if (w == NULL || s->workload_stopped || s->live)
        return; /* live: each client's thread schedules itself */
    int64_t at = s->now_us + world_think_us(s, client);
    if (at < w->until_us)
        sim_queue_push(&s->queue, at, SIM_EV_CLIENT_NEXT, client, 0);
}

/* A workload operation, or (explicit) one from an `op` line, which runs
 * beside the client's own loop and must not take its place. */
static void issue(struct sim *s, int client, enum drill_op kind, int64_t product, int64_t qty,
                  bool is_explicit)
{
    struct sim_op *op = world_new_op(s, client, kind);
    char lane[32];
    client_lane(client, lane);
    if (op == NULL) {
        world_trace(s, lane, "no room for another operation");
        return;
    }
    world_op_prepare(s, op, product, qty, is_explicit);
    int to = s->topo != NULL && s->topo->route != NULL ? s->topo->route(s, op) : s->main_node;
    if (to >= 0) {
        struct tline l; /* "%s #%u -> %s" */
        tl_start(s, &l, lane);
        tl_str(&l, drill_op_name(kind));
        tl_str(&l, " #");
        tl_u64(&l, op->id, 0);
        tl_str(&l, " -> ");
        tl_str(&l, s->nodes[to].name);
        tl_end(s, &l);
        send_msg(s, world_client_endpoint(s, client), to, WORLD_REQUEST, op->id, s->now_us);
    } else {
        world_trace(s, lane, "%s #%u: no node to send it to", drill_op_name(kind), op->id);
    }
    sim_queue_push(&s->queue, s->now_us + SIM_CLIENT_TIMEOUT_US, SIM_EV_TIMEOUT, client, op->id);
}

void world_complete(struct sim *s, struct sim_op *op, enum sim_outcome outcome)
{
    char lane[32];
    client_lane(op->client, lane);
    op->outcome = outcome;
    op->complete_us = s->now_us;
    static const char *const names[] = {"pending", "ok", "fail", "unknown", "rejected"};
    struct tline l;
    tl_start(s, &l, lane);
    tl_str(&l, "#");
    tl_u64(&l, op->id, 0);
    if (outcome == SIM_OK && op->kind == DRILL_OP_CHECKOUT) {
        tl_str(&l, " ok: order "); /* "#%u ok: order %lld, %lld cents" */
        tl_i64(&l, op->order_id);
        tl_str(&l, ", ");
        tl_i64(&l, op->total_cents);
        tl_str(&l, " cents");
    } else if (outcome == SIM_OK && op->kind == DRILL_OP_ORDER_STATUS) {
        tl_str(&l, " ok: "); /* "#%u ok: %u orders" */
        tl_u64(&l, op->seen_count, 0);
        tl_str(&l, " orders");
    } else {
        tl_str(&l, " "); /* "#%u %s%s%s" */
        tl_str(&l, names[outcome]);
        if (op->err) {
            tl_str(&l, ": ");
            tl_str(&l, platform_strerror(op->err));
        }
    }
    tl_end(s, &l);
    enum report_mark mark = outcome == SIM_OK         ? REPORT_OP_OK
                            : outcome == SIM_REJECTED ? REPORT_OP_REJECTED
                            : outcome == SIM_FAIL     ? REPORT_OP_FAIL
                                                      : REPORT_OP_UNKNOWN;
    l.len = 0; /* the label "#%u %s %s", built the same way */
    tl_str(&l, "#");
    tl_u64(&l, op->id, 0);
    tl_str(&l, " ");
    tl_str(&l, drill_op_name(op->kind));
    tl_str(&l, " ");
    tl_str(&l, names[outcome]);
    /* why it did not succeed, for the tooltip and the table of reasons */
    if (op->err) {
        tl_str(&l, ": ");
        tl_str(&l, platform_strerror(op->err));
    } else if (outcome == SIM_UNKNOWN) {
        tl_str(&l, ": no reply before the client's timeout");
    }
    new_mark(s, lane, mark, l.buf, l.len);
    if (outcome == SIM_OK)
        workload_record_ack(s, op);
    session_completed(s, op);
    if (s->topo != NULL && s->topo->replied != NULL)
        s->topo->replied(s, op);
    if (op->is_explicit) {
        s->explicit_pending--;
        return;
    }
    struct world_client *c = &s->clients[op->client];
    if (c->pending_op == op->id) {
        c->pending_op = 0;
        schedule_next(s, op->client);
    }
}

/* ---- serving ------------------------------------------------------------ */


bool world_serve_on(struct sim *s, int n, struct sim_op *op)
{
    struct world_node *node = &s->nodes[n];
    s->delay_pending_us = 0;
    op->node = n;
    op->served_us = s->now_us;
    workload_serve(s, node->shop, op);
    op->seq = op->is_write && op->err == 0 ? shop_last_seq(node->shop) : 0;
    s->served_op[op->client] = op->id;
    if (s->crash_pending) {
        world_trace(s, node->name, "#%u %s: crash point %s fired", op->id, drill_op_name(op->kind),
                    s->crash_point);
        world_handle_crash_point(s);
        return false;
    }
    struct tline l; /* "#%u %s from client%d: %s" */
    tl_start(s, &l, node->name);
    tl_str(&l, "#");
    tl_u64(&l, op->id, 0);
    tl_str(&l, " ");
    tl_str(&l, drill_op_name(op->kind));
    tl_str(&l, " from client");
    tl_i64(&l, op->client);
    tl_str(&l, ": ");
    tl_str(&l, op->err ? shop_errmsg(node->shop) : "done");
    tl_end(s, &l);
    trace_mirror(s, n);
    if (s->topo != NULL && s->topo->served != NULL)
        s->topo->served(s, n, op);
    session_served(s, n, op);
    return true;
}

void world_reply(struct sim *s, int n, struct sim_op *op, int64_t done_us)
{
    send_msg(s, n, world_client_endpoint(s, op->client), WORLD_REPLY, op->id, done_us);
}

static void serve(struct sim *s, const struct world_msg *m)
{
    struct world_node *node = &s->nodes[m->to];
    struct sim_op *op = &s->ops[m->op - 1];
    if (!node->up || (node->holds_db && node->shop == NULL)) {
        world_trace(s, node->name, "#%u not served: %s is down", op->id, node->name);
        return;
    }
    if (s->topo != NULL && s->topo->serve != NULL && s->topo->serve(s, m->to, m))
        return;
    if (!node->holds_db) {
        world_trace(s, node->name, "#%u not served: %s holds no shop", op->id, node->name);
        return;
    }
    int64_t start = s->now_us > node->busy_until_us ? s->now_us : node->busy_until_us;
    if (s->served_op[op->client] != op->id) {
        if (!world_serve_on(s, m->to, op))
            return;
    } else {
        world_trace(s, node->name, "#%u duplicate request: answered again", op->id);
    }
    int64_t done = start + SIM_SERVICE_US + s->delay_pending_us;
    node->busy_until_us = done;
    send_msg(s, m->to, m->from, WORLD_REPLY, op->id, done);
}

/* The slot of a delivered message is free again (when there is no room to
 * remember it, it is simply not reused). */
static void free_msg(struct sim *s, int index)
{
    free(s->msgs[index].data);
    s->msgs[index].data = NULL;
    if (s->msg_free_count == s->msg_free_cap) {
        size_t cap = s->msg_free_cap ? 2 * s->msg_free_cap : 1024;
        int *grown = realloc(s->msg_free, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        s->msg_free = grown;
        s->msg_free_cap = cap;
    }
    s->msg_free[s->msg_free_count++] = index;
}

static void deliver_msg(struct sim *s, const struct world_msg *m);

static void deliver(struct sim *s, int index)
{
    struct world_msg m = s->msgs[index]; /* a copy: handling it may send (and reuse slots) */
    deliver_msg(s, &m);
    free_msg(s, index);
}

static void deliver_msg(struct sim *s, const struct world_msg *msg)
{
    struct world_msg m = *msg;
    if (m.kind == WORLD_NODE) {
        /* a client endpoint is always up; a node must be */
        bool up = m.to >= (int)s->node_count || s->nodes[m.to].up;
        if (!ledger_deliver(s, &m) && up && s->topo != NULL && s->topo->deliver != NULL)
            s->topo->deliver(s, &m);
        return;
    }
    if (m.kind == WORLD_REQUEST) {
        serve(s, &m);
        return;
    }
    struct sim_op *op = &s->ops[m.op - 1];
    if (op->outcome != SIM_PENDING)
        return; /* a duplicate reply, or the client already gave up */
    world_complete(s, op, op->err == 0                   ? SIM_OK
                          : platform_is_unknown(op->err)  ? SIM_UNKNOWN
                          : platform_is_rejected(op->err) ? SIM_REJECTED
                                                          : SIM_FAIL);
}

static void timeout(struct sim *s, int client, uint32_t id)
{
    struct sim_op *op = &s->ops[id - 1];
    (void)client;
    if (op->outcome == SIM_PENDING)
        world_complete(s, op, SIM_UNKNOWN);
}

/* ---- faults and partitions ---------------------------------------------- */

/* The node a fault point strikes: its second path component. */
void world_fault_lane(const char *name, char lane[FAULTS_NODE_MAX])
{
    const char *p = strchr(name, '/');
    lane[0] = '\0';
    if (p == NULL)
        return;
    size_t n = strcspn(p + 1, "/*");
    if (n >= FAULTS_NODE_MAX)
        n = FAULTS_NODE_MAX - 1;
    memcpy(lane, p + 1, n);
    lane[n] = '\0';
}

struct world_fault *world_fault_slot(struct sim *s, const struct drill_event *e)
{
    if (s->fault_count == WORLD_FAULTS_MAX) {
        world_trace(s, "-", "fault %s not armed: too many faults in one run", e->name);
        return NULL;
    }
    struct world_fault *f = &s->faults[s->fault_count];
    memset(f, 0, sizeof(*f));
    f->event = (int)(e - s->drill->events);
    snprintf(f->name, sizeof(f->name), "%s", e->name);
    world_fault_lane(e->name, f->lane);
    return f;
}

void world_fault_armed(struct sim *s, struct world_fault *f)
{
    const struct drill_event *e = &s->drill->events[f->event];
    f->armed = true;
    f->armed_at_us = s->now_us;
    f->healed_at_us = -1;
    world_trace(s, f->lane[0] ? f->lane : "-", "fault %s armed (p=%g errno=%d count=%llu after=%llu)",
                e->name, e->spec.p, e->spec.err, (unsigned long long)e->spec.count,
                (unsigned long long)e->spec.after);
    s->fault_count++;
}

void world_fault_healed(struct sim *s, struct world_fault *f)
{
    f->armed = false;
    f->healed_at_us = s->now_us;
    world_trace(s, f->lane[0] ? f->lane : "-", "heal %s (fired %llu of %llu calls)", f->name,
                (unsigned long long)f->fired, (unsigned long long)f->reached);
    world_mark(s, f->lane[0] ? f->lane : "-", REPORT_HEAL, "heal %s", f->name);
}

static void heal_fault(struct sim *s, struct world_fault *f)
{
    if (!f->armed)
        return;
    faults_stats(f->name, &f->reached, &f->fired);
    faults_disarm(f->name);
    s->net_armed -= strncmp(f->name, "net/", 4) == 0 || f->name[0] == '*';
    world_fault_healed(s, f);
}

static void arm_fault(struct sim *s, const struct drill_event *e)
{
    for (size_t i = 0; i < s->fault_count; i++)
        if (s->faults[i].armed && strcmp(s->faults[i].name, e->name) == 0)
            heal_fault(s, &s->faults[i]); /* re-arming replaces */
    struct world_fault *f = world_fault_slot(s, e);
    if (f == NULL)
        return;
    int err = faults_arm(e->name, &e->spec);
    if (err) {
        world_trace(s, f->lane, "fault %s could not be armed: %s", e->name, faults_errmsg());
        return;
    }
    s->net_armed += strncmp(f->name, "net/", 4) == 0 || f->name[0] == '*';
    if (e->for_us > 0)
        sim_queue_push(&s->queue, s->now_us + e->for_us, SIM_EV_DISARM, (int)s->fault_count, 0);
    world_fault_armed(s, f);
}

/*
 * A partition cuts links; when it separates the shop's process from the
 * disk of its mirror, that disk is remote storage out of reach, so its I/O
 * fails with EIO until the heal (the same points a drill can arm by hand).
 */
static const char *const partition_points[] = {"read", "write", "fsync"};

static void set_remote_disk(struct sim *s, bool cut)
{
    for (size_t p = 0; p < s->node_count; p++) {
        struct world_node *node = &s->nodes[p];
        if (!world_is_mirrored(s, (int)p))
            continue;
        const struct shop_config *cfg = &node->cfg;
        int m = world_node_index(s, cfg->mirror.node);
        bool separated = cut && is_cut(s, (int)p, m);
        char name[FAULTS_NAME_MAX];
        for (size_t i = 0; i < 3; i++) {
            snprintf(name, sizeof(name), "disk/%s/%s", cfg->mirror.node, partition_points[i]);
            if (separated) {
                struct faults_arm_spec spec = {.p = 1, .err = EIO};
                faults_arm(name, &spec);
            } else {
                faults_disarm(name);
            }
        }
        if (node->remote_disk_cut && !separated)
            node->remote_disk_healed_us = s->now_us;
        node->remote_disk_cut = separated;
    }
}

/* Does fault `name` (a trailing '*' matches the rest) reach the disk of node? */
static bool hits_disk_of(const char *name, const char *node)
{
    char prefix[FAULTS_NAME_MAX];
    snprintf(prefix, sizeof(prefix), "disk/%s/", node);
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '*')
        return strncmp(name, prefix, n - 1 < strlen(prefix) ? n - 1 : strlen(prefix)) == 0;
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

bool world_pair_disk_faulted(const struct sim *s, int n, int64_t *healed_us)
{
    const struct shop_config *cfg = &s->nodes[n].cfg;
    bool armed = s->nodes[n].remote_disk_cut;
    int64_t healed = s->nodes[n].remote_disk_healed_us;
    for (size_t i = 0; i < s->fault_count; i++) {
        const struct world_fault *f = &s->faults[i];
        if (!hits_disk_of(f->name, cfg->primary.node) &&
            (cfg->topology != SHOP_MIRROR || !hits_disk_of(f->name, cfg->mirror.node)))
            continue;
        armed = armed || f->armed;
        if (!f->armed && f->healed_at_us > healed)
            healed = f->healed_at_us;
    }
    *healed_us = healed;
    return armed;
}

static void partition(struct sim *s, const struct drill_event *e)
{
    memset(&s->partition, 0, sizeof(s->partition));
    s->partition.active = true;
    for (int side = 0; side < 2; side++) {
        for (int i = 0; i < e->side_count[side]; i++) {
            int n = world_node_index(s, e->side[side][i]);
            if (n >= 0)
                s->partition.side[side][n] = true;
        }
    }
    set_remote_disk(s, true);
    world_trace(s, "-", "partition %s%s | %s%s", e->side[0][0], e->side_count[0] > 1 ? " ..." : "",
                e->side[1][0], e->side_count[1] > 1 ? " ..." : "");
    world_mark(s, e->side[0][0], REPORT_PARTITION, "partition %s | %s", e->side[0][0],
               e->side[1][0]);
}

static void heal_partition(struct sim *s)
{
    if (!s->partition.active)
        return;
    s->partition.active = false;
    set_remote_disk(s, false);
    world_trace(s, "-", "heal partition");
    world_mark(s, "-", REPORT_HEAL, "partition healed");
}

static void heal_everything(struct sim *s)
{
    for (size_t i = 0; i < s->fault_count; i++)
        heal_fault(s, &s->faults[i]);
    heal_partition(s);
}

/* Every node that is up but serves nothing (its restart could not open its
 * shop, e.g. strict mirroring with its mirror out of reach) opens it again. */
static void reopen_shops(struct sim *s, const char *why)
{
    for (size_t n = 0; n < s->node_count; n++) {
        struct world_node *node = &s->nodes[n];
        if (!node->up || !node->holds_db || node->shop != NULL)
            continue;
        if (world_open_shop(s, (int)n, why) == 0 && s->topo != NULL &&
            s->topo->restarted != NULL)
            s->topo->restarted(s, (int)n);
    }
}

/* ---- timeline ------------------------------------------------------------ */

static void start_drain(struct sim *s, int index, const struct drill_event *e)
{
    s->workload_stopped = true;
    heal_everything(s);
    for (size_t n = 0; n < s->node_count; n++)
        if (!s->nodes[n].up)
            restart_node(s, (int)n, "drain");
    reopen_shops(s, "drain");
    s->draining = true;
    s->drain_deadline_us = s->now_us + e->within_us;
    world_trace(s, "-", "drain: workload stopped, faults healed, nodes restarted; waiting up to "
                        "%lld ms for every queue to empty",
                (long long)(e->within_us / 1000));
    sim_queue_push(&s->queue, s->now_us, SIM_EV_DRAIN_POLL, index, 0);
}

/* What keeps the system from being quiet: pending operations, a copy behind. */
static bool drain_pending(struct sim *s, char *why, size_t len)
{
    size_t pending = (size_t)s->explicit_pending;
    for (int c = 1; c <= s->client_count; c++)
        pending += s->clients[c].pending_op != 0;
    if (pending > 0) {
        snprintf(why, len, "%zu client operation(s) still in flight", pending);
        return true;
    }
    reopen_shops(s, "drain");
    for (size_t n = 0; n < s->node_count; n++) {
        if (s->nodes[n].holds_db && s->nodes[n].shop == NULL) {
            snprintf(why, len, "the shop of %s is not running", s->nodes[n].name);
            return true;
        }
    }
    if (s->topo != NULL && s->topo->pending != NULL && s->topo->pending(s, why, len))
        return true;
    for (size_t n = 0; n < s->node_count; n++) {
        struct mirror_status st;
        shop *sh = s->nodes[n].shop;
        if (!world_is_mirrored(s, (int)n) || sh == NULL || shop_mirror_status(sh, &st) != 0 ||
            st.changes_behind == 0)
            continue;
        int err = shop_mirror_resync(sh);
        if (err == -ECANCELED) {
            world_handle_crash_point(s);
            snprintf(why, len, "the shop crashed during resync");
            return true;
        }
        shop_mirror_status(sh, &st);
        if (st.changes_behind > 0) {
            snprintf(why, len, "copy %s is still %lld change(s) behind: %.120s", st.behind,
                     (long long)st.changes_behind, st.last_error);
            return true;
        }
    }
    return false;
}

/* final: the run ends now, so the drain ends too (judged, well or not). */
static void drain_poll(struct sim *s, bool final)
{
    char why[256];
    bool busy = drain_pending(s, why, sizeof(why));
    if (busy && s->now_us < s->drain_deadline_us && !final) {
        sim_queue_push(&s->queue, s->now_us + SIM_DRAIN_POLL_US, SIM_EV_DRAIN_POLL, 0, 0);
        return;
    }
    s->draining = false;
    s->drained = true;
    if (busy) {
        s->drain_failed = true;
        snprintf(s->drain_why, sizeof(s->drain_why), "the drain did not finish by %.3fs: %.200s",
                 (double)s->now_us / 1e6, why);
        world_trace(s, "-", "drain failed: %s", why);
    } else {
        world_trace(s, "-", "drained: every queue is empty");
    }
    world_mark(s, s->nodes[0].name, REPORT_CHECKPOINT, "drain");
    checkers_run(s, "drain");
}

static void timeline(struct sim *s, int index)
{
    const struct drill_event *e = &s->drill->events[index];
    int n = world_node_index(s, e->name);
    switch (e->action) {
    case DRILL_FAULT:
        arm_fault(s, e);
        break;
    case DRILL_HEAL:
        if (e->heal == DRILL_HEAL_PARTITION) {
            heal_partition(s);
        } else if (e->heal == DRILL_HEAL_ALL) {
            heal_everything(s);
        } else {
            for (size_t i = 0; i < s->fault_count; i++)
                if (strcmp(s->faults[i].name, e->name) == 0)
                    heal_fault(s, &s->faults[i]);
        }
        break;
    case DRILL_PARTITION:
        partition(s, e);
        break;
    case DRILL_CRASH:
        if (n >= 0)
            crash_node(s, n, e->process, "crash");
        break;
    case DRILL_RESTART:
        if (n >= 0)
            restart_node(s, n, "restart");
        break;
    case DRILL_OP:
        issue(s, e->client, e->op, e->product, e->qty, true);
        break;
    case DRILL_CHECKPOINT:
        world_mark(s, s->nodes[0].name, REPORT_CHECKPOINT, "checkpoint");
        checkers_run(s, "checkpoint");
        break;
    case DRILL_DRAIN:
        start_drain(s, index, e);
        break;
    case DRILL_GO_OFFLINE:
    case DRILL_GO_ONLINE:
    case DRILL_FAILOVER:
        /* check_supported refused these unless the topology module takes them */
        s->epoch++;
        if (s->topo != NULL && s->topo->action != NULL)
            s->topo->action(s, e);
        break;
    }
}

static void dispatch(struct sim *s, const struct sim_event *ev)
{
    switch (ev->type) {
    case SIM_EV_CLIENT_NEXT:
        if (!s->workload_stopped && s->clients[ev->a].pending_op == 0)
            issue(s, ev->a, workload_pick(s, ev->a), 0, 0, false);
        break;
    case SIM_EV_DELIVER:
        deliver(s, ev->a);
        break;
    case SIM_EV_TIMEOUT:
        timeout(s, ev->a, (uint32_t)ev->b);
        break;
    case SIM_EV_TIMELINE:
        timeline(s, ev->a);
        break;
    case SIM_EV_DISARM:
        heal_fault(s, &s->faults[ev->a]);
        break;
    case SIM_EV_DRAIN_POLL:
        if (s->draining)
            drain_poll(s, false);
        break;
    case SIM_EV_TOPO:
        if (s->topo != NULL && s->topo->tick != NULL)
            s->topo->tick(s, ev->a, ev->b);
        break;
    case SIM_EV_LEDGER:
        ledger_tick(s);
        break;
    case SIM_EV_END:
        /* a drain still running (its bound ends now) keeps its verdict */
        if (s->draining)
            drain_poll(s, true);
        break;
    case SIM_EV_MIRROR:
        mirror_tick(s, ev->a);
        break;
    }
}

/* ---- set-up --------------------------------------------------------------- */

/* The module of the drill's replicated component, NULL for single/mirror. */
static const struct world_topo *topo_of(const struct drill *d)
{
    unsigned c = d->topology.components;
    if (c & DRILL_ASYNC)
        return &world_async_topo;
    if (c & DRILL_OFFLINE)
        return &world_offline_topo;
    if (c & DRILL_CLUSTER)
        return &world_cluster_topo;
    return NULL;
}

/* What this build can run: one component that replicates between nodes
 * (a mirror may go beside it), and the checkers built so far. */
static int check_supported(const struct drill *d, char *msg)
{
    unsigned c = d->topology.components & (DRILL_ASYNC | DRILL_OFFLINE | DRILL_CLUSTER);
    if (c & (c - 1)) {
        snprintf(msg, REPORT_ERR_MAX,
                 "%.300s: async, offline and cluster do not combine with each other: use one "
                 "of them",
                 d->file);
        return -ENOTSUP;
    }
    const struct world_topo *t = topo_of(d);
    for (size_t i = 0; i < d->event_count; i++) {
        enum drill_action a = d->events[i].action;
        if ((a == DRILL_GO_OFFLINE || a == DRILL_GO_ONLINE || a == DRILL_FAILOVER) &&
            (t == NULL || t->action == NULL)) {
            snprintf(msg, REPORT_ERR_MAX, "%.300s:%d: `%s` needs a topology that has it (%s)",
                     d->file, d->events[i].line, drill_action_name(a),
                     a == DRILL_FAILOVER ? "async" : "offline");
            return -ENOTSUP;
        }
    }
    for (size_t i = 0; i < d->expect_count; i++) {
        if (sim_checker_lookup(d->expects[i].invariant) == NULL) {
            snprintf(msg, REPORT_ERR_MAX, "%.300s:%d: invariant %s is not built yet", d->file,
                     d->expects[i].line, d->expects[i].invariant);
            return -ENOTSUP;
        }
    }
    return 0;
}

static int make_workdir(struct sim *s, const struct sim_options *opt)
{
    /* The databases of a run are scratch and durability is what the fault
     * VFS models, not what the host disk gives: by default they live in
     * memory (the fault VFS's store) under a name that is the same in every
     * run; on request (or in the workdir asked for) on tmpfs when there is
     * one. */
    if (!opt->on_disk && opt->workdir == NULL) {
        snprintf(s->workdir, sizeof(s->workdir), "/faultdrill-memory");
        return 0;
    }
    s->files_on_disk = true;
    const char *base = opt->workdir;
    if (base == NULL)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(s->workdir, sizeof(s->workdir), "%s/faultdrill-run-XXXXXX", base);
    if (mkdtemp(s->workdir) == NULL) {
        snprintf(s->msg, sizeof(s->msg), "cannot create a scratch directory in %s: %s", base,
                 strerror(errno));
        return -errno;
    }
    return 0;
}

static bool is_db_node(const char *name)
{
    static const char *const prefixes[] = {"primary", "secondary", "local", "central", "leader",
                                           "replica"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* Every node with a database gets a single-copy config; the primary of a
 * mirror gets both copies; the topology module adjusts the rest. */
static void setup_node_config(struct sim *s, struct world_node *n, bool mirror)
{
    bool primary = strcmp(n->name, "primary") == 0;
    /* the nodes whose disk is mirrored (DESIGN §2, "Combinations"): the
     * primary, the leader, or every local (localK's mirror is mirrorK) */
    unsigned comps = s->drill->topology.components;
    bool mirrored = false;
    snprintf(n->mirror_node, sizeof(n->mirror_node), "mirror");
    if (!mirror)
        mirrored = false;
    else if (comps & DRILL_CLUSTER)
        mirrored = strcmp(n->name, "leader") == 0;
    else if (comps & DRILL_OFFLINE)
        mirrored = strncmp(n->name, "local", 5) == 0;
    else
        mirrored = primary;
    if (mirrored && strncmp(n->name, "local", 5) == 0 && n->name[5] != '\0')
        snprintf(n->mirror_node, sizeof(n->mirror_node), "mirror%.8s", n->name + 5);
    if (primary)
        snprintf(n->paths[0], sizeof(n->paths[0]), "%s/db.sqlite", s->workdir);
    else
        snprintf(n->paths[0], sizeof(n->paths[0]), "%s/db_%s.sqlite", s->workdir, n->name);
    snprintf(n->paths[1], sizeof(n->paths[1]), "%s/db_%s.sqlite", s->workdir, n->mirror_node);
    if (s->live &&
        (s->drill->topology.components & (DRILL_ASYNC | DRILL_OFFLINE | DRILL_CLUSTER)) != 0) {
        /* run --live (live.c): each node is a serve process with a data directory of its
         * own, its file named as serve names it */
        const char *file = strcmp(n->name, "secondary") == 0 ? "db_async.sqlite"
                           : strcmp(n->name, "central") == 0 ? "db_central.sqlite"
                                                             : "db.sqlite";
        snprintf(n->paths[0], sizeof(n->paths[0]), "%.500s/%s", s->workdir, n->name);
        (void)mkdir(n->paths[0], 0700);
        snprintf(n->paths[0], sizeof(n->paths[0]), "%.500s/%s/%s", s->workdir, n->name, file);
        /* a combination's mirrored node: serve keeps the second copy beside the first */
        snprintf(n->paths[1], sizeof(n->paths[1]), "%.500s/%s/db_mirror.sqlite", s->workdir,
                 n->name);
    }
    n->cfg = (struct shop_config){
        .topology = mirrored ? SHOP_MIRROR : SHOP_SINGLE,
        .primary = {.node = n->name, .path = n->paths[0], .vfs = faults_vfs_name(n->name)},
        .mirror = {.node = n->mirror_node, .path = n->paths[1],
                   .vfs = mirrored ? faults_vfs_name(n->mirror_node) : NULL},
        .policy = s->drill->topology.policy,
        .ack = s->drill->topology.ack,
        .sync_full = !s->drill->topology.sync_normal,
    };
}

static int setup_nodes(struct sim *s)
{
    char names[DRILL_NODES_MAX][FAULTS_NODE_MAX];
    s->node_count = drill_nodes(s->drill, names);
    struct faults_host host = {
        .ctx = s, .delay = host_delay, .skip_real_sync = true, .memory = !s->files_on_disk};
    for (size_t i = 0; i < s->node_count; i++) {
        struct world_node *n = &s->nodes[i];
        snprintf(n->name, sizeof(n->name), "%s", names[i]);
        n->up = true;
        n->holds_db = is_db_node(n->name);
        n->mirror_state = -1;
        n->mirror_wake_us = -1;
        n->remote_disk_healed_us = -1;
        int err = faults_vfs_register(n->name, &host);
        if (err) {
            snprintf(s->msg, sizeof(s->msg), "cannot register the disk of %s: %s", n->name,
                     faults_errmsg());
            return err;
        }
    }
    bool mirror = (s->drill->topology.components & DRILL_MIRROR) != 0;
    for (size_t i = 0; i < s->node_count; i++)
        if (s->nodes[i].holds_db)
            setup_node_config(s, &s->nodes[i], mirror);
    s->env = (struct platform_env){.ctx = s, .now_us = env_now, .crash = env_crash};
    int p = world_node_index(s, "primary");
    s->main_node = p >= 0 ? p : 0;
    s->nodes[s->main_node].seed = true;
    s->topo = topo_of(s->drill);
    if (s->topo != NULL && s->topo->configure != NULL)
        return s->topo->configure(s);
    return 0;
}

/* Opens every node's shop; the nodes marked `seed` get the catalog. */
static int open_shops(struct sim *s)
{
    for (size_t i = 0; i < s->node_count; i++) {
        if (!s->nodes[i].holds_db)
            continue;
        int err = world_open_shop(s, (int)i, "start");
        if (err) {
            snprintf(s->msg, sizeof(s->msg), "cannot start the shop of %s (see trace)",
                     s->nodes[i].name);
            return -EIO;
        }
    }
    return 0;
}

static const char *const product_words[] = {"tea", "mug", "lamp", "desk", "sock", "book"};

static int seed_catalog(struct sim *s, shop *sh)
{
    const struct drill *d = s->drill;
    struct faults_rng rng;
    faults_rng_seed(&rng, s->seed, "catalog");
    for (int i = 1; i <= d->products; i++) {
        struct shop_product p = {.stock = d->product_stock};
        snprintf(p.name, sizeof(p.name), "Product %d %s", i, product_words[i % 6]);
        snprintf(p.category, sizeof(p.category), "cat%d", i % 4);
        int64_t span = d->price_max_cents - d->price_min_cents;
        p.price_cents = d->price_min_cents + (int64_t)faults_rng_below(&rng, (uint64_t)span + 1);
        if (shop_product_create(sh, &p) < 0)
            goto fail;
    }
    for (int i = 1; i <= d->users; i++) {
        char email[64];
        snprintf(email, sizeof(email), "user%d@drill.example", i);
        if (shop_user_create(sh, "Shopper", email) < 0)
            goto fail;
    }
    return 0;
fail:
    snprintf(s->msg, sizeof(s->msg), "seeding the catalog: %s", shop_errmsg(sh));
    return -EIO;
}

static int seed_nodes(struct sim *s)
{
    for (size_t i = 0; i < s->node_count; i++) {
        if (!s->nodes[i].seed)
            continue;
        int err = seed_catalog(s, s->nodes[i].shop);
        if (err)
            return err;
    }
    return 0;
}

static void setup_clients(struct sim *s)
{
    const struct drill *d = s->drill;
    s->client_count = d->clients < DRILL_CLIENTS_MAX ? d->clients : DRILL_CLIENTS_MAX;
    for (int c = 1; c <= s->client_count; c++) {
        struct world_client *wc = &s->clients[c];
        char stream[32];
        snprintf(stream, sizeof(stream), "client/%d", c);
        faults_rng_seed(&wc->rng, s->seed, stream);
        int user = d->users > 0 ? (c - 1) % d->users + 1 : 0;
        wc->user_id = user;
        snprintf(wc->email, sizeof(wc->email), "user%d@drill.example", user);
    }
    for (size_t w = 0; w < d->workload_count; w++) {
        const struct drill_workload *wl = &d->workloads[w];
        for (int i = 0; i < wl->clients; i++) {
            int c = wl->first_client + i;
            if (c >= 1 && c <= s->client_count)
                s->clients[c].workload = wl;
        }
    }
}

static int schedule_start(struct sim *s)
{
    const struct drill *d = s->drill;
    int err = sim_queue_push(&s->queue, d->duration_us, SIM_EV_END, 0, 0);
    for (size_t i = 0; !err && i < d->event_count; i++)
        err = sim_queue_push(&s->queue, d->events[i].at_us, SIM_EV_TIMELINE, (int)i, 0);
    for (int c = 1; !err && c <= s->client_count; c++) {
        if (s->clients[c].workload == NULL)
            continue;
        int64_t at = world_think_us(s, c);
        if (at < s->clients[c].workload->until_us)
            err = sim_queue_push(&s->queue, at, SIM_EV_CLIENT_NEXT, c, 0);
    }
    if (err)
        snprintf(s->msg, sizeof(s->msg), "the event queue is full: %s", strerror(-err));
    return err;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void world_teardown(struct sim *s)
{
    if (s->topo != NULL && s->topo->release != NULL)
        s->topo->release(s);
    ledger_release(s);
    for (size_t i = 0; i < s->node_count; i++) {
        shop_close(s->nodes[i].shop);
        s->nodes[i].shop = NULL;
    }
    faults_disarm_all();
    faults_set_closed(false);
    faults_vfs_unregister_all();
    if (s->files_on_disk && s->workdir[0] != '\0')
        nftw(s->workdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    session_release(s);
    checkers_release(s);
    free(s->ops);
    for (size_t i = 0; i < s->msg_count; i++)
        free(s->msgs[i].data);
    free(s->msgs);
    free(s->msg_free);
    free(s->marks);
    world_mark_text_free(s->mark_text);
    free(s->trace);
    if (s->trace_spill != NULL)
        fclose(s->trace_spill);
    free(s->trace_hash);
    sim_queue_release(&s->queue);
}

/* After the last event: every node back (recovery), then the final checks. */
static void finish(struct sim *s)
{
    for (size_t n = 0; n < s->node_count; n++)
        if (!s->nodes[n].up)
            restart_node(s, (int)n, "end of run: recovery before the final checks");
    for (size_t n = 0; n < s->node_count; n++)
        if (s->nodes[n].holds_db && s->nodes[n].up && s->nodes[n].shop == NULL)
            world_open_shop(s, (int)n, "end of run");
    async_report(s);
    cluster_report(s);
    world_trace(s, "-", "end");
    s->final_check = true;
    checkers_run(s, "end");
}

static int run_loop(struct sim *s)
{
    struct sim_event ev;
    while (sim_queue_pop(&s->queue, &ev)) {
        s->now_us = ev.at_us;
        dispatch(s, &ev);
        mirror_wake(s);
        story_observe(s);
        if (ev.type == SIM_EV_END)
            break;
    }
    finish(s);
    return 0;
}

int world_prepare(struct sim *s, const struct drill *d, const struct sim_options *opt)
{
    s->drill = d;
    s->seed = opt->seed_given ? opt->seed : d->seed;
    s->trace_memory = opt->trace_memory > 0 ? opt->trace_memory : TRACE_MEMORY_DEFAULT;
    faults_rng_seed(&s->net_rng, s->seed, "net");
    faults_rng_seed(&s->crash_rng, s->seed, "crash");
    int err = faults_init(s->seed);
    /* Every point of a run is armed by the runner: unarmed ones cost nothing. */
    faults_set_closed(true);
    if (!err)
        err = make_workdir(s, opt);
    if (!err)
        err = setup_nodes(s);
    if (!err)
        err = open_shops(s);
    if (!err)
        err = seed_nodes(s);
    if (!err)
        setup_clients(s);
    return err;
}

int sim_run(const struct drill *d, const struct sim_options *opt, struct report_run *rep,
            char msg[REPORT_ERR_MAX])
{
    memset(rep, 0, sizeof(*rep));
    int err = check_supported(d, msg);
    if (err)
        return err;
    struct sim *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(msg, REPORT_ERR_MAX, "out of memory");
        return -ENOMEM;
    }
    /* SQLite's memory statistics take a global mutex on every allocation;
     * nobody reads them. Only possible before SQLite's first use in the
     * process (later calls are refused, harmlessly). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sim_memory_install();
    err = world_prepare(s, d, opt);
    if (!err)
        err = ledger_start(s);
    if (!err && s->topo != NULL && s->topo->start != NULL)
        err = s->topo->start(s);
    if (!err)
        err = schedule_start(s);
    if (!err) {
        world_trace(s, "-", "start: drill %s, seed %llu", d->name, (unsigned long long)s->seed);
        err = run_loop(s);
    }
    if (!err)
        err = result_fill(s, rep, opt->replay);
    if (err)
        snprintf(msg, REPORT_ERR_MAX, "%s", s->msg);
    world_teardown(s);
    free(s);
    return err;
}
