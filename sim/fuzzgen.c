/*
 * fuzzgen.c — the drill generator of `faultdrill fuzz` (see fuzz.h). Draws
 * every choice from one seeded stream per drill ("fuzz/<index>" of the fuzz
 * seed), learns the topology's node names from the parser itself
 * (drill_nodes on the header), and writes the drill as a person would: the
 * header, the set-up, the timeline in time order, the expectations.
 *
 * The fault model is the platform's: the stake ledger outvotes one liar
 * holding at most a fifth of the stake (sim/ledger.c), so a drill has at
 * least five predictors and one of them lies.
 *
 * What a drill expects follows what it does: a failover gives up
 * no-lost-acks, converges and the session guarantees (the lag window is lost
 * by design) and expects rpo-bounded instead; lb-balanced needs two
 * replicas. An expectation that its run cannot exercise comes out
 * `unexercised`, which fuzz counts apart from failures.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cli.h"
#include "sim/fuzz.h"
#include "sim/sim.h"

#define MS INT64_C(1000)
#define SECOND INT64_C(1000000)
#define GEN_EVENTS_MAX 24
#define GEN_LINE_MAX 256
#define GEN_ATTEMPTS_MAX 8 /* draws of a fault that check accepts */

struct gen_event {
    int64_t at_us;
    char text[GEN_LINE_MAX]; /* after `at T ` */
};

struct gen_workload {
    int clients, rate;
    int64_t until_us;
};

struct gen {
    struct faults_rng *rng;   /* the stream drawn from now: main, or shapes */
    struct faults_rng main, shapes;
    uint64_t drill_seed;
    int products, stock, price_max, users;
    int workload_count;
    struct gen_workload workloads[2];
    int64_t ops_max;  /* operations the run can make at most */
    int async_batch;
    unsigned set;
    char nodes[DRILL_NODES_MAX][FAULTS_NODE_MAX];
    size_t node_count;
    int clients;
    int replicas, locals;
    int64_t interval_us, async_delay_us;
    int retries;
    int64_t drain_at_us, within_us, duration_us;
    bool failover, crash;
    int jitter_ms;                /* the links' jitter, 0: none */
    /* the shapes (drawn from their own stream, see plan_shapes) */
    int wide_jitter_ms;           /* 0, or a jitter past the async shipper's pace */
    bool late_push;               /* an offline push held back past its reply timeout */
    struct drill *scratch;        /* for accepted_event */
    struct drill_errors *errs;
    const char *liar; /* the one predictor that lies, once chosen */
    size_t event_count;
    struct gen_event events[GEN_EVENTS_MAX];
    char *out;
    size_t len, cap;
    bool overflow;
};

/* ---- drawing ------------------------------------------------------------------ */

static uint64_t below(struct gen *g, uint64_t n)
{
    return n == 0 ? 0 : faults_rng_below(g->rng, n);
}

static bool chance(struct gen *g, unsigned pct)
{
    return below(g, 100) < pct;
}

static int64_t between(struct gen *g, int64_t lo, int64_t hi)
{
    assert(lo <= hi);
    return lo + (int64_t)below(g, (uint64_t)(hi - lo + 1));
}

/* A time on a 100ms grid in [lo, hi] (readable drills). */
static int64_t time_between(struct gen *g, int64_t lo_us, int64_t hi_us)
{
    int64_t lo = (lo_us + 100 * MS - 1) / (100 * MS), hi = hi_us / (100 * MS);
    return (hi < lo ? lo : between(g, lo, hi)) * 100 * MS;
}

static const char *dur(int64_t us, char buf[DRILL_DURATION_TEXT_MAX])
{
    return drill_duration_format(us, buf);
}

__attribute__((format(printf, 2, 3))) static void put(struct gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g->out + g->len, g->cap - g->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= g->cap - g->len) {
        g->overflow = true;
        return;
    }
    g->len += (size_t)n;
}

__attribute__((format(printf, 3, 4))) static void event(struct gen *g, int64_t at_us,
                                                        const char *fmt, ...)
{
    if (g->event_count == GEN_EVENTS_MAX)
        return;
    struct gen_event *e = &g->events[g->event_count++];
    e->at_us = at_us;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
}

/*
 * Whether `check` takes this timeline line in this drill (the header and
 * set-up written so far): the parser knows which links carry messages and
 * where each crash point exists, so the generator asks it rather than keep a
 * second copy of those rules. Then the event is added.
 */
__attribute__((format(printf, 3, 4))) static bool accepted_event(struct gen *g, int64_t at_us,
                                                                 const char *fmt, ...)
{
    char line[GEN_LINE_MAX], d[DRILL_DURATION_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    size_t cap = g->len + sizeof(line) + 64;
    char *text = malloc(cap);
    if (text == NULL)
        return false;
    int n = snprintf(text, cap, "%.*sat %s %s\n", (int)g->len, g->out, dur(at_us, d), line);
    memset(g->scratch, 0, sizeof(*g->scratch));
    bool ok = n > 0 && cli_drill_parse("fuzz.drill", text, (size_t)n, g->scratch, g->errs) == 0;
    free(text);
    if (ok)
        event(g, at_us, "%s", line);
    return ok;
}

/* ---- nodes ------------------------------------------------------------------------- */

static bool has(const struct gen *g, unsigned component)
{
    return (g->set & component) != 0;
}

static bool is_prefix(const char *name, const char *prefix)
{
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

/* Nodes with a disk of their own (the mirror's disk belongs to the primary's process). */
static bool has_disk(const char *n)
{
    return !is_prefix(n, "registry") && !is_prefix(n, "ledger") && !is_prefix(n, "predictor");
}

static bool is_crashable(const char *n)
{
    return !is_prefix(n, "ledger") && !is_prefix(n, "predictor");
}

/* A random node passing pred; NULL when none does. */
static const char *pick_node(struct gen *g, bool (*pred)(const char *))
{
    const char *ok[DRILL_NODES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < g->node_count; i++)
        if (pred(g->nodes[i]))
            ok[n++] = g->nodes[i];
    return n ? ok[below(g, n)] : NULL;
}

static bool any_node(const char *n)
{
    return is_crashable(n);
}

static bool is_local(const char *n)
{
    return is_prefix(n, "local");
}

static bool is_predictor(const char *n)
{
    return is_prefix(n, "predictor");
}

/* ---- the topology line ---------------------------------------------------------------- */

static void topology_line(struct gen *g, const struct fuzz_space *sp)
{
    char words[64], d[DRILL_DURATION_TEXT_MAX];
    fuzz_set_words(g->set, words, sizeof(words));
    put(g, "topology %s", words);
    if (has(g, DRILL_MIRROR))
        put(g, " policy=%s%s", chance(g, 50) ? "strict" : "degrade",
            sp->plant_early_ack ? " ack=early" : "");
    if (has(g, DRILL_ASYNC)) {
        g->async_delay_us = time_between(g, 0, 500 * MS);
        if (g->async_delay_us == 0)
            g->async_delay_us = 20 * MS;
        g->async_batch = (int)between(g, 1, 100);
        put(g, " delay=%s batch=%d", dur(g->async_delay_us, d), g->async_batch);
    }
    if (has(g, DRILL_OFFLINE)) {
        g->locals = chance(g, 40) ? 0 : (int)between(g, 1, 3);
        g->interval_us = time_between(g, 100 * MS, SECOND);
        g->retries = (int)between(g, 1, 6);
        if (g->locals > 0)
            put(g, " locals=%d", g->locals);
        put(g, " interval=%s retries=%d", dur(g->interval_us, d), g->retries);
    }
    if (has(g, DRILL_CLUSTER)) {
        g->replicas = (int)between(g, 1, 4);
        put(g, " replicas=%d", g->replicas);
        if (chance(g, 40))
            put(g, " cache=on ttl=%s", dur(time_between(g, 100 * MS, 5 * SECOND), d));
    }
    if (has(g, DRILL_STAKE)) /* the ledger's fault model: one liar with at most a fifth */
        put(g, " predictors=%d round=%s", (int)between(g, 5, 8),
            dur(time_between(g, 200 * MS, SECOND), d));
    if (chance(g, 30))
        put(g, " latency=%dms", (int)between(g, 0, 5));
    g->jitter_ms = chance(g, 30) ? (int)between(g, 1, 3) : 0;
    if (g->wide_jitter_ms > 0)
        g->jitter_ms = g->wide_jitter_ms;
    if (g->jitter_ms > 0)
        put(g, " jitter=%dms", g->jitter_ms);
    put(g, "\n");
}

/* The node names, from the parser: the header alone is a valid drill. */
static int learn_nodes(struct gen *g)
{
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    int rc = d && errs ? cli_drill_parse("fuzz.drill", g->out, g->len, d, errs) : -ENOMEM;
    if (rc == 0)
        g->node_count = drill_nodes(d, g->nodes);
    free(d);
    free(errs);
    return rc;
}

/* ---- set-up ------------------------------------------------------------------------------ */

static const char *const mix_kinds[] = {"browse", "search", "cart", "cart-remove", "checkout",
                                        "orders", "cancel", "user-create", "user"};

/* The set-up's numbers, drawn before the drain's bound that depends on them. */
static void plan_setup(struct gen *g)
{
    g->drill_seed = below(g, UINT64_C(1) << 31) + 1;
    g->products = (int)between(g, 1, 15);
    g->stock = (int)between(g, 3, 300);
    g->price_max = (int)between(g, 1, 120);
    g->users = (int)between(g, 1, 8);
    g->drain_at_us = time_between(g, 2 * SECOND, 10 * SECOND);
    g->workload_count = chance(g, 25) ? 2 : 1;
    for (int w = 0; w < g->workload_count; w++) {
        struct gen_workload *wl = &g->workloads[w];
        wl->clients = (int)between(g, 1, 6);
        wl->rate = (int)between(g, 10, 120);
        wl->until_us = time_between(g, g->drain_at_us / 2, g->drain_at_us);
        g->clients += wl->clients;
        g->ops_max += wl->rate * (wl->until_us / MS) / 1000 + 1;
    }
    g->ops_max += GEN_EVENTS_MAX; /* explicit operations */
}

static void workload_line(struct gen *g, int index, const struct gen_workload *wl)
{
    char d[DRILL_DURATION_TEXT_MAX];
    /* writes that leave rows (cart, checkout) and reads of both kinds, so most checkers
     * judge something */
    put(g, "workload w%d clients=%d rate=%d/s mix=cart:%d,checkout:%d,orders:%d,browse:%d", index,
        wl->clients, wl->rate, (int)between(g, 10, 40), (int)between(g, 10, 40),
        (int)between(g, 10, 40), (int)between(g, 1, 30));
    for (size_t k = 0; k < sizeof(mix_kinds) / sizeof(mix_kinds[0]); k++) {
        const char *kind = mix_kinds[k];
        bool listed = strcmp(kind, "cart") == 0 || strcmp(kind, "checkout") == 0 ||
                      strcmp(kind, "orders") == 0 || strcmp(kind, "browse") == 0;
        if (!listed && chance(g, 20))
            put(g, ",%s:%d", kind, (int)between(g, 1, 20));
    }
    put(g, " until=%s\n", dur(wl->until_us, d));
}

static void setup(struct gen *g)
{
    char d[DRILL_DURATION_TEXT_MAX];
    put(g, "seed %" PRIu64 "\n", g->drill_seed);
    put(g, "duration %s\n", dur(g->duration_us, d));
    put(g, "products %d stock=%d price=1..%d\n", g->products, g->stock, g->price_max);
    put(g, "users %d\n", g->users);
    for (int w = 0; w < g->workload_count; w++)
        workload_line(g, w + 1, &g->workloads[w]);
    put(g, "\n");
}

/* ---- the timeline ---------------------------------------------------------------------------- */

static void fault_options(struct gen *g, char *buf, size_t len, bool slow)
{
    size_t n = 0;
    buf[0] = '\0';
    if (chance(g, 60))
        n += (size_t)snprintf(buf + n, len - n, " p=%g", (double)between(g, 5, 100) / 100.0);
    if (chance(g, 15))
        n += (size_t)snprintf(buf + n, len - n, " count=%d", (int)between(g, 1, 50));
    if (chance(g, 10))
        n += (size_t)snprintf(buf + n, len - n, " after=%d", (int)between(g, 1, 30));
    if (slow)
        snprintf(buf + n, len - n, " delay=%dms", (int)between(g, 1, 300));
}

static void heal_later(struct gen *g, int64_t at_us, const char *name, bool timed)
{
    if (timed || !chance(g, 50))
        return; /* for= ends it, or the drain heals it */
    int64_t heal_at = time_between(g, at_us + 100 * MS, g->drain_at_us);
    if (heal_at > at_us && heal_at <= g->drain_at_us)
        event(g, heal_at, "heal %s", name);
}

static bool disk_fault(struct gen *g, int64_t at_us)
{
    static const char *const kinds[] = {"read", "write", "fsync", "full", "slow"};
    const char *node = pick_node(g, has_disk);
    const char *kind = kinds[below(g, 5)];
    char opts[96], name[FAULTS_NAME_MAX], d[DRILL_DURATION_TEXT_MAX];
    fault_options(g, opts, sizeof(opts), strcmp(kind, "slow") == 0);
    snprintf(name, sizeof(name), "disk/%s/%s", node, kind);
    bool timed = chance(g, 60);
    bool ok = timed ? accepted_event(g, at_us, "fault %s%s for=%s", name, opts,
                                     dur(time_between(g, 100 * MS, 4 * SECOND), d))
                    : accepted_event(g, at_us, "fault %s%s", name, opts);
    if (ok)
        heal_later(g, at_us, name, timed);
    return ok;
}

static bool net_fault(struct gen *g, int64_t at_us)
{
    static const char *const kinds[] = {"drop", "delay", "duplicate", "reorder"};
    char from[FAULTS_NODE_MAX], to[FAULTS_NODE_MAX];
    snprintf(from, sizeof(from), "%s", pick_node(g, any_node));
    if (chance(g, 25) && g->clients > 0)
        snprintf(to, sizeof(to), "client%d", (int)between(g, 1, g->clients));
    else
        snprintf(to, sizeof(to), "%s", pick_node(g, any_node));
    if (strcmp(from, to) == 0)
        return false;
    if (chance(g, 50)) { /* either direction */
        char t[FAULTS_NODE_MAX];
        memcpy(t, from, sizeof(t));
        memcpy(from, to, sizeof(t));
        memcpy(to, t, sizeof(t));
    }
    const char *kind = kinds[below(g, 4)];
    char opts[96], name[FAULTS_NAME_MAX], d[DRILL_DURATION_TEXT_MAX];
    fault_options(g, opts, sizeof(opts), strcmp(kind, "delay") == 0);
    snprintf(name, sizeof(name), "net/%s/%s/%s", from, to, kind);
    bool timed = chance(g, 60);
    bool ok = timed ? accepted_event(g, at_us, "fault %s%s for=%s", name, opts,
                                     dur(time_between(g, 100 * MS, 4 * SECOND), d))
                    : accepted_event(g, at_us, "fault %s%s", name, opts);
    if (ok)
        heal_later(g, at_us, name, timed);
    return ok;
}

/* A crash point of the topology, armed once, and the restart that follows. */
static bool crash_point(struct gen *g, int64_t at_us)
{
    const char *node = NULL, *point = NULL;
    unsigned pick = (unsigned)below(g, 3);
    if (pick == 0 && has(g, DRILL_MIRROR)) {
        static const char *const p[] = {"mirror-between-commits", "mirror-before-commit",
                                        "mirror-during-resync"};
        /* a mirror alone mirrors its primary; in a combination the parser knows which
         * nodes have a mirror (accepted_event) */
        node = (g->set & ~DRILL_STAKE) == DRILL_MIRROR ? "primary" : pick_node(g, has_disk);
        point = p[below(g, 3)];
    } else if (pick == 1 && has(g, DRILL_OFFLINE)) {
        static const char *const p[] = {"sync-after-push", "sync-between-row-and-queue"};
        node = pick_node(g, is_local);
        point = p[below(g, 2)];
    } else {
        node = pick_node(g, has_disk);
        point = "checkout-mid-transaction";
    }
    if (node == NULL || !accepted_event(g, at_us, "fault crash/%s/%s once", node, point))
        return false;
    int64_t back = time_between(g, at_us + 200 * MS, g->drain_at_us);
    if (back < g->drain_at_us && chance(g, 80))
        event(g, back, "restart %s", node);
    g->crash = true;
    return true;
}

static void crash_restart(struct gen *g, int64_t at_us)
{
    const char *node = pick_node(g, is_crashable);
    if (node == NULL)
        return;
    event(g, at_us, "crash %s%s", node, chance(g, 30) ? " process" : "");
    int64_t back = time_between(g, at_us + 100 * MS, g->drain_at_us);
    if (back < g->drain_at_us && chance(g, 80))
        event(g, back, "restart %s", node);
    g->crash = true;
}

static void partition(struct gen *g, int64_t at_us)
{
    const char *side[2][DRILL_SIDE_MAX];
    size_t count[2] = {0, 0};
    for (size_t i = 0; i < g->node_count; i++) {
        if (!is_crashable(g->nodes[i]))
            continue;
        int s = (int)below(g, 2);
        if (count[s] < DRILL_SIDE_MAX)
            side[s][count[s]++] = g->nodes[i];
    }
    if (count[0] == 0 || count[1] == 0)
        return;
    char text[GEN_LINE_MAX] = "partition";
    size_t n = strlen(text);
    for (int s = 0; s < 2; s++) {
        if (s == 1)
            n += (size_t)snprintf(text + n, sizeof(text) - n, " |");
        for (size_t i = 0; i < count[s]; i++)
            n += (size_t)snprintf(text + n, sizeof(text) - n, " %s", side[s][i]);
    }
    event(g, at_us, "%s", text);
    int64_t heal = time_between(g, at_us + 100 * MS, g->drain_at_us);
    if (heal < g->drain_at_us && chance(g, 70))
        event(g, heal, "heal partition");
}

static void offline_switch(struct gen *g, int64_t at_us)
{
    const char *node = pick_node(g, is_local);
    if (node == NULL)
        return;
    event(g, at_us, "offline %s", node);
    int64_t back = time_between(g, at_us + 100 * MS, g->drain_at_us);
    if (back < g->drain_at_us && chance(g, 80))
        event(g, back, "online %s", node);
}

static void one_event(struct gen *g)
{
    int64_t at = time_between(g, 200 * MS, g->drain_at_us - 100 * MS);
    unsigned roll = (unsigned)below(g, 100);
    /* a fault `check` refuses here (it could never fire) is drawn again, a few times */
    bool (*fault)(struct gen *, int64_t) = roll < 22 ? disk_fault : roll < 36 ? net_fault
                                           : roll < 46                    ? crash_point
                                                                          : NULL;
    if (fault != NULL) {
        for (int attempt = 0; attempt < GEN_ATTEMPTS_MAX && !fault(g, at); attempt++)
            ;
    } else if (roll < 60)
        crash_restart(g, at);
    else if (roll < 70)
        partition(g, at);
    else if (roll < 78 && has(g, DRILL_OFFLINE))
        offline_switch(g, at);
    else if (roll < 82 && has(g, DRILL_ASYNC) && !g->failover) {
        event(g, at, "failover secondary");
        g->failover = true;
    } else if (roll < 86 && has(g, DRILL_STAKE)) {
        /* one liar per drill: a consensus cannot outvote a colluding share */
        char d[DRILL_DURATION_TEXT_MAX];
        if (g->liar == NULL)
            g->liar = pick_node(g, is_predictor);
        event(g, at, "fault stake/%s/lie for=%s", g->liar,
              dur(time_between(g, 100 * MS, 3 * SECOND), d));
    } else if (roll < 93) {
        event(g, at, "checkpoint");
    } else if (g->clients > 0) {
        static const char *const ops[] = {"checkout", "cart-add", "order-status", "browse"};
        event(g, at, "op %s client=client%d", ops[below(g, 4)], (int)between(g, 1, g->clients));
    }
}

/* ---- shapes ------------------------------------------------------------------------------------ */

/*
 * Shapes: situations that take several choices lined up just so, which the
 * independent draws above all but never make. Each is drawn from a stream of
 * its own ("fuzz/<n>/shapes"), so a drill that draws none is, byte for byte,
 * the drill the generator wrote before the shapes existed (a fuzz seed and
 * drill number recorded then still name the same drill), and one that draws
 * a shape differs from it only by the shape's words and lines (and, for a
 * wide jitter, the drain's bound and the duration that follow from it).
 *
 * - wide jitter (async, cluster): a jitter of 12-30ms, past the shipper's
 *   pace (NODE_ASYNC_PUMP_US: a batch every 10ms). Batches overtake each
 *   other, the receiver sees a gap and asks for a resend. The 1-3ms drawn
 *   above never reorders two batches.
 * - late push (offline): a local's link to central holds some of its pushes
 *   back past the reply timeout (NODE_OFFLINE_REPLY_TIMEOUT_US) while its
 *   clients keep writing: the local pushes the same rows again, newer, and
 *   the old push lands after them. Central must keep the newer version. The
 *   delays drawn above (at most 300ms) never outlast the timeout.
 */
static void draw_shapes(struct gen *g, bool on)
{
    g->rng = on ? &g->shapes : &g->main;
}

static void plan_shapes(struct gen *g)
{
    draw_shapes(g, true);
    if ((has(g, DRILL_ASYNC) || has(g, DRILL_CLUSTER)) && chance(g, 20))
        g->wide_jitter_ms = (int)between(g, 12, 30);
    g->late_push = has(g, DRILL_OFFLINE) && chance(g, 35);
    draw_shapes(g, false);
}

static void late_push(struct gen *g)
{
    draw_shapes(g, true);
    int64_t writing_until = g->workloads[0].until_us;
    for (int w = 1; w < g->workload_count; w++)
        if (g->workloads[w].until_us < writing_until)
            writing_until = g->workloads[w].until_us;
    /* a local some client writes to (client c writes to local (c-1) % N + 1): one
     * without writes has nothing to push late */
    char local[FAULTS_NODE_MAX] = "local";
    int writers = g->locals < g->clients ? g->locals : g->clients;
    if (g->locals > 0)
        snprintf(local, sizeof(local), "local%d", (int)between(g, 1, writers));
    int64_t at = time_between(g, 200 * MS, writing_until - SECOND);
    int64_t hold = time_between(g, 600 * MS, 2 * SECOND), span = time_between(g, SECOND, 4 * SECOND);
    double p = (double)between(g, 30, 70) / 100.0;
    char h[DRILL_DURATION_TEXT_MAX], f[DRILL_DURATION_TEXT_MAX];
    accepted_event(g, at, "fault net/%s/central/delay delay=%s p=%g for=%s", local,
                   dur(hold, h), p, dur(span, f));
    draw_shapes(g, false);
}

static int by_time(const void *a, const void *b)
{
    const struct gen_event *x = a, *y = b;
    return x->at_us < y->at_us ? -1 : x->at_us > y->at_us;
}

static void timeline(struct gen *g)
{
    int n = (int)between(g, 0, 8);
    for (int i = 0; i < n; i++)
        one_event(g);
    if (g->late_push)
        late_push(g);
    char d[DRILL_DURATION_TEXT_MAX], w[DRILL_DURATION_TEXT_MAX];
    event(g, g->drain_at_us, "drain within=%s", dur(g->within_us, w));
    /* a stable sort keeps each restart after its crash when both share a time */
    for (size_t i = 1; i < g->event_count; i++)
        for (size_t j = i; j > 0 && by_time(&g->events[j - 1], &g->events[j]) > 0; j--) {
            struct gen_event t = g->events[j];
            g->events[j] = g->events[j - 1];
            g->events[j - 1] = t;
        }
    for (size_t i = 0; i < g->event_count; i++)
        put(g, "at %-6s %s\n", dur(g->events[i].at_us, d), g->events[i].text);
    put(g, "\n");
}

/* ---- expectations --------------------------------------------------------------------------- */

static void expect(struct gen *g, const char *invariant, const char *options)
{
    const struct invariant_info *info = invariant_lookup(invariant);
    if (info == NULL || sim_checker_lookup(invariant) == NULL)
        return; /* not built in this version */
    if (info->components != 0 && (info->components & g->set) == 0)
        return;
    put(g, "expect %s%s\n", invariant, options);
}

static void expectations(struct gen *g)
{
    expect(g, "stock-conserved", "");
    expect(g, "order-totals", "");
    expect(g, "integrity", "");
    if (g->failover) {
        /* the lag window is lost by design: judged by rpo-bounded instead */
        expect(g, "rpo-bounded", " max=1000000");
    } else {
        expect(g, "no-lost-acks", "");
        expect(g, "converges", "");
        expect(g, "read-your-writes", "");
        expect(g, "monotonic-reads", "");
    }
    if (has(g, DRILL_MIRROR))
        expect(g, "mirror-identical", "");
    if (has(g, DRILL_ASYNC))
        expect(g, "replica-prefix", "");
    if (has(g, DRILL_OFFLINE))
        expect(g, "outbox-accounted", "");
    if (has(g, DRILL_CLUSTER)) {
        expect(g, "no-echo", "");
        if (g->replicas >= 2)
            expect(g, "lb-balanced", "");
    }
    if (has(g, DRILL_STAKE))
        expect(g, "stake-conserved", "");
}

/* ---- the whole drill ---------------------------------------------------------------------- */

/*
 * The drain's bound: long enough for a correct protocol to empty its queues,
 * so that a drain that does not finish is a stall, not an impatient drill.
 * Async ships at most `batch` changes per WAN trip: the bound covers every
 * change the run could make (the catalog, every operation a write) at one
 * batch per delay.
 */
static void plan_times(struct gen *g)
{
    int64_t within = 2 * SECOND;
    if (has(g, DRILL_ASYNC)) {
        int64_t changes = g->products + g->users + g->ops_max + 16;
        int64_t trips = (changes + g->async_batch - 1) / g->async_batch;
        /* a wide jitter may cost a gap and its resend on every trip */
        within += trips * (g->async_delay_us + 4 * g->wide_jitter_ms * MS);
    }
    if (has(g, DRILL_OFFLINE))
        within += (g->retries + 3) * g->interval_us;
    if (has(g, DRILL_CLUSTER))
        within += g->wide_jitter_ms > 0 ? 3 * SECOND : SECOND;
    g->within_us = (within + 100 * MS - 1) / (100 * MS) * (100 * MS);
    g->duration_us = g->drain_at_us + g->within_us + 500 * MS;
}

int fuzz_generate(const struct fuzz_space *sp, uint64_t seed, uint64_t index, char *text,
                  size_t len)
{
    assert(sp->count > 0);
    struct gen *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    char stream[48];
    snprintf(stream, sizeof(stream), "fuzz/%" PRIu64, index);
    faults_rng_seed(&g->main, seed, stream);
    snprintf(stream, sizeof(stream), "fuzz/%" PRIu64 "/shapes", index);
    faults_rng_seed(&g->shapes, seed, stream);
    g->rng = &g->main;
    g->set = sp->sets[below(g, sp->count)];
    plan_shapes(g);
    g->out = text;
    g->cap = len;
    g->scratch = calloc(1, sizeof(*g->scratch));
    g->errs = calloc(1, sizeof(*g->errs));
    put(g, "drill \"Fuzz drill %" PRIu64 " of seed %" PRIu64 "\"\n", index, seed);
    put(g, "about \"Generated by faultdrill fuzz --seed %" PRIu64 ": drill %" PRIu64 ".\"\n\n",
        seed, index);
    topology_line(g, sp);
    int rc = g->scratch == NULL || g->errs == NULL ? -ENOMEM : g->overflow ? -E2BIG : learn_nodes(g);
    if (rc == 0) {
        plan_setup(g);
        plan_times(g);
        setup(g);
        timeline(g);
        expectations(g);
        rc = g->overflow ? -E2BIG : 0;
    }
    free(g->scratch);
    free(g->errs);
    free(g);
    return rc;
}

/* ---- the space of topologies -------------------------------------------------------------- */

void fuzz_set_words(unsigned set, char *buf, size_t len)
{
    static const unsigned order[] = {DRILL_SINGLE, DRILL_MIRROR, DRILL_ASYNC, DRILL_OFFLINE,
                                     DRILL_CLUSTER, DRILL_STAKE};
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (set & order[i])
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? " " : "",
                                  drill_component_name(order[i]));
}

bool fuzz_set_runnable(unsigned set, void *ctx)
{
    (void)ctx;
    char words[64], text[256];
    fuzz_set_words(set, words, sizeof(words));
    snprintf(text, sizeof(text), "drill \"probe\"\ntopology %s\nduration 10ms\n", words);
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    bool ok = false;
    if (d != NULL && errs != NULL && cli_drill_parse("probe.drill", text, strlen(text), d, errs) == 0) {
        struct report_run rep;
        char msg[REPORT_ERR_MAX];
        struct sim_options opt = {.seed = 1, .seed_given = true};
        ok = sim_run(d, &opt, &rep, msg) == 0;
        if (ok)
            sim_result_release(&rep);
    }
    free(d);
    free(errs);
    return ok;
}

static int parse_set(const char *words, unsigned *set)
{
    static const unsigned all[] = {DRILL_SINGLE, DRILL_MIRROR, DRILL_ASYNC, DRILL_OFFLINE,
                                   DRILL_CLUSTER, DRILL_STAKE};
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", words);
    *set = 0;
    char *save = NULL;
    for (char *w = strtok_r(buf, " ,+", &save); w != NULL; w = strtok_r(NULL, " ,+", &save)) {
        unsigned found = 0;
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            if (strcmp(w, drill_component_name(all[i])) == 0)
                found = all[i];
        if (found == 0)
            return -EINVAL;
        *set |= found;
    }
    return *set ? 0 : -EINVAL;
}

size_t fuzz_set_candidates(unsigned sets[FUZZ_SETS_MAX])
{
    static const unsigned base[] = {DRILL_SINGLE, DRILL_MIRROR, DRILL_ASYNC, DRILL_OFFLINE,
                                    DRILL_CLUSTER};
    size_t n = 0;
    for (size_t i = 0; i < 5; i++)
        sets[n++] = base[i];
    for (size_t i = 1; i < 5; i++) /* single joins nothing */
        for (size_t j = i + 1; j < 5; j++)
            sets[n++] = base[i] | base[j];
    for (size_t i = 0, m = n; i < m; i++)
        sets[n++] = sets[i] | DRILL_STAKE;
    assert(n <= FUZZ_SETS_MAX);
    return n;
}

int fuzz_space_build(struct fuzz_space *sp, const char *only, fuzz_runnable_fn *runnable,
                     void *ctx, char err[REPORT_ERR_MAX])
{
    unsigned cand[FUZZ_SETS_MAX];
    size_t n = fuzz_set_candidates(cand);
    unsigned want = 0;
    if (only != NULL && parse_set(only, &want) != 0) {
        snprintf(err, REPORT_ERR_MAX,
                 "--topology '%.100s': name components (single, mirror, async, offline, cluster, "
                 "stake)",
                 only);
        return -EINVAL;
    }
    if (want == DRILL_STAKE)
        want |= DRILL_SINGLE; /* stake named alone sits beside single */
    sp->count = 0;
    for (size_t i = 0; i < n; i++)
        if ((want == 0 || cand[i] == want) && runnable(cand[i], ctx))
            sp->sets[sp->count++] = cand[i];
    if (sp->count == 0) {
        snprintf(err, REPORT_ERR_MAX, "topology %.100s: `check` refuses it or `run` does not "
                 "build it yet", only ? only : "(any)");
        return -ENOTSUP;
    }
    return 0;
}

int fuzz_space_probe(struct fuzz_space *sp, const char *only, char err[REPORT_ERR_MAX])
{
    return fuzz_space_build(sp, only, fuzz_set_runnable, NULL, err);
}
