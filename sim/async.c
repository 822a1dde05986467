/*
 * async.c — the simulator's host of asynchronous replication (topology
 * `async`): two nodes of the platform's replication core (platform/node.h,
 * roles async-primary and async-secondary) whose messages travel the
 * simulated network — the drill's WAN delay= from primary to secondary, then
 * the link's latency, jitter, partitions and net/<from>/<to>/... faults — and
 * whose timers fire in virtual time. Every protocol decision (what to ship,
 * windows, acks, resends, backoff, pruning, fencing, outbox=off) is the
 * core's; this file only carries events, measures lag, and judges.
 * Checkers: replica-prefix, rpo-bounded, and the async part of converges.
 * Part of libsim; talks to the platform only through platform.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

#define ASYNC_LAG_SAMPLES_MAX (1u << 20)
#define ASYNC_LOST_LISTED_MAX 16
#define ASYNC_WIRE 1                      /* the world_msg type of a core message */

struct async_state {
    int primary, secondary;
    struct node *np, *ns;     /* the core's two nodes */
    struct platform_env env;  /* the sim's env plus transport, timers and trace */
    int64_t delay_us;
    size_t unreadable;        /* lost_writes: writes an injected fault kept it from reading */
    /* what the bench measures: lag samples, one per applied batch or copy */
    uint64_t applied_seen;
    size_t lag_count, lag_cap;
    int64_t *lag;
    /* the failover, as the run saw it */
    bool failed_over;
    int64_t failover_us;
    int64_t failover_position, failover_position_at_us;
    /* the same two instants in the clock of the acknowledged writes' served_us (the order
     * rows' own times): the simulator's clock; live, the serve processes' wall clock */
    int64_t failover_cmp_us, failover_position_at_cmp_us;
    int64_t failover_window_us;
    /* run --live (live.c): the nodes are serve processes; what they said in their
     * status replaces the core's (status_of) */
    bool live;
    struct node_async_status live_status[2]; /* [0] primary, [1] secondary */
};

static struct async_state *st(struct sim *s)
{
    return s->topo_state;
}

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

static struct node *node_of(struct async_state *a, int n)
{
    return n == a->primary ? a->np : n == a->secondary ? a->ns : NULL;
}

/* The core's status of node n (zeros when it has none). */
static struct node_async_status status_of(struct async_state *a, int n)
{
    struct node_status ns;
    memset(&ns, 0, sizeof(ns));
    if (a->live && (n == a->primary || n == a->secondary))
        return a->live_status[n == a->secondary];
    if (node_of(a, n) != NULL)
        node_status(node_of(a, n), &ns);
    return ns.async;
}

/* ---- the environment the core acts through ------------------------------- */

static void env_send(void *ctx, const char *from, const char *to, const void *msg, size_t len)
{
    struct sim *s = ctx;
    struct async_state *a = st(s);
    int f = world_node_index(s, from), t = world_node_index(s, to);
    if (f < 0 || t < 0)
        return;
    int64_t wan = f == a->primary && t == a->secondary ? a->delay_us : 0;
    world_send(s, f, t, ASYNC_WIRE, 0, 0, msg, len, s->now_us + wan);
}

static void env_timer(void *ctx, const char *node, int timer, int64_t at_us)
{
    struct sim *s = ctx;
    world_timer(s, at_us, timer, world_node_index(s, node));
}

static void env_trace(void *ctx, const char *node, const char *text)
{
    world_trace(ctx, node, "%s", text);
}

/* A crash point fired inside a node's shop during an event: kill it now. */
static void after_event(struct sim *s, int rc)
{
    if (rc == -ECANCELED || s->crash_pending)
        world_handle_crash_point(s);
}

/* ---- lag ------------------------------------------------------------------ */

static void lag_sample(struct async_state *a, int64_t lag_us)
{
    if (a->lag_count == a->lag_cap) {
        if (a->lag_cap == ASYNC_LAG_SAMPLES_MAX)
            return;
        size_t cap = a->lag_cap ? 2 * a->lag_cap : 256;
        int64_t *grown = realloc(a->lag, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        a->lag = grown;
        a->lag_cap = cap;
    }
    a->lag[a->lag_count++] = lag_us;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* The p-th percentile (0..100) of the lag samples, nearest rank. */
static int64_t lag_percentile(struct async_state *a, int p)
{
    if (a->lag_count == 0)
        return 0;
    qsort(a->lag, a->lag_count, sizeof(*a->lag), cmp_i64);
    size_t rank = (a->lag_count * (size_t)p + 99) / 100;
    return a->lag[rank > 0 ? rank - 1 : 0];
}

/* After a message reached the secondary: one sample per batch or copy applied. */
static void measure_lag(struct async_state *a)
{
    struct node_async_status sec = status_of(a, a->secondary);
    uint64_t applied = sec.batches_applied + sec.snapshots_applied;
    if (applied > a->applied_seen)
        lag_sample(a, sec.last_lag_us);
    a->applied_seen = applied;
}

/* ---- set-up --------------------------------------------------------------- */

static int async_configure(struct sim *s)
{
    struct async_state *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    s->topo_state = a;
    const struct drill_topology *t = &s->drill->topology;
    a->primary = world_node_index(s, "primary");
    a->secondary = world_node_index(s, "secondary");
    if (a->primary < 0 || a->secondary < 0) {
        snprintf(s->msg, sizeof(s->msg), "async needs nodes primary and secondary");
        return -EINVAL;
    }
    a->delay_us = t->async_delay_us;
    s->nodes[a->primary].cfg.outbox = !t->outbox_off;
    s->nodes[a->primary].seed = true;
    s->nodes[a->secondary].seed = false; /* it gets the catalog the way it gets everything */
    return 0;
}

static int make_node(struct sim *s, int n, enum node_role role, int peer, struct node **out)
{
    struct async_state *a = st(s);
    const struct drill_topology *t = &s->drill->topology;
    struct node_config cfg = {
        .name = s->nodes[n].name,
        .role = role,
        .shop = s->nodes[n].shop,
        .peer = s->nodes[peer].name,
        .link_delay_us = a->delay_us,
        .batch_changes = t->async_batch > 0 ? (uint32_t)t->async_batch : 0,
        .outbox_off = t->outbox_off,
    };
    char msg[SHOP_ERRMSG_MAX];
    int err = node_create(&cfg, &a->env, out, msg);
    if (err) {
        snprintf(s->msg, sizeof(s->msg), "%s", msg);
        return err;
    }
    if (s->nodes[n].shop != NULL)
        after_event(s, node_start(*out));
    return 0;
}

static int async_start(struct sim *s)
{
    struct async_state *a = st(s);
    a->env = s->env;
    a->env.ctx = s;
    a->env.send = env_send;
    a->env.timer = env_timer;
    a->env.trace = env_trace;
    world_trace(s, s->nodes[a->primary].name, "async: WAN delay %.3fs from primary to secondary",
                secs(a->delay_us));
    int err = make_node(s, a->primary, NODE_ASYNC_PRIMARY, a->secondary, &a->np);
    if (!err)
        err = make_node(s, a->secondary, NODE_ASYNC_SECONDARY, a->primary, &a->ns);
    return err;
}

static void async_release(struct sim *s)
{
    struct async_state *a = st(s);
    if (a == NULL)
        return;
    node_destroy(a->np);
    node_destroy(a->ns);
    free(a->lag);
    free(a);
    s->topo_state = NULL;
}

/* ---- events --------------------------------------------------------------- */

static void async_tick(struct sim *s, int timer, int64_t n)
{
    struct async_state *a = st(s);
    struct node *nd = node_of(a, (int)n);
    if (nd != NULL && s->nodes[n].up)
        after_event(s, node_on_timer(nd, timer));
}

static void async_deliver(struct sim *s, const struct world_msg *m)
{
    struct async_state *a = st(s);
    struct node *nd = node_of(a, m->to);
    if (m->type != ASYNC_WIRE || nd == NULL || m->from >= (int)s->node_count)
        return;
    after_event(s, node_on_message(nd, s->nodes[m->from].name, m->data, m->len));
    if (m->to == a->secondary)
        measure_lag(a);
}

/* Routing is the core's: a fenced old primary refuses every request. */
static bool async_serve(struct sim *s, int n, const struct world_msg *m)
{
    struct async_state *a = st(s);
    struct node *nd = node_of(a, n);
    if (nd == NULL)
        return false;
    struct node_view v;
    node_view(nd, &v);
    struct node_request req = {.is_write = s->ops[m->op - 1].is_write};
    struct node_route r;
    node_route(&v, &req, &r);
    if (r.kind == NODE_ROUTE_HERE || !v.up)
        return false; /* a node the core has not started yet serves like a plain shop */
    world_trace(s, s->nodes[n].name, "#%u refused: %s", m->op, r.why);
    return true;
}

static void async_served(struct sim *s, int n, struct sim_op *op)
{
    struct async_state *a = st(s);
    struct node *nd = node_of(a, n);
    if (nd != NULL && op->is_write && op->err == 0)
        after_event(s, node_on_commit(nd, op->seq));
}

/* Until the failover, positions are the primary's outbox sequence: a write's
 * change, a read's outbox head (the copy holds every change up to it). */
static bool async_position(struct sim *s, int n, const struct sim_op *op, int *lineage,
                           int64_t *pos)
{
    struct async_state *a = st(s);
    if (a->failed_over || s->drill->topology.outbox_off || n != a->primary)
        return false; /* the promoted copy, or no outbox: the node's own commits */
    *lineage = a->primary;
    if (op->is_write) {
        *pos = op->err == 0 && op->seq > 0 ? op->seq : -1;
        return true;
    }
    /* the core's head follows every commit (node_on_commit) and is read back
     * from the outbox at a restart */
    *pos = status_of(a, a->primary).head_seq;
    return true;
}

static void async_crashed(struct sim *s, int n)
{
    struct async_state *a = st(s);
    if (node_of(a, n) != NULL)
        node_crashed(node_of(a, n));
}

static void async_restarted(struct sim *s, int n)
{
    struct async_state *a = st(s);
    struct node *nd = node_of(a, n);
    if (nd == NULL || s->nodes[n].shop == NULL)
        return;
    after_event(s, node_restarted(nd, s->nodes[n].shop));
    struct node *other = nd == a->np ? a->ns : a->np;
    node_peer_up(other, s->nodes[n].name);
}

/* The acknowledged writes of the old primary that the promoted copy lacks. */
static size_t lost_writes(struct sim *s, struct async_state *a, uint32_t *ids, size_t max,
                          bool *outside_window, uint32_t *outside_id);

static void record_failover(struct sim *s, struct async_state *a,
                            const struct node_async_status *status, int64_t offset_us);
static void count_lost(struct sim *s, struct async_state *a, const char *lane);

static void async_action(struct sim *s, const struct drill_event *e)
{
    struct async_state *a = st(s);
    if (e->action != DRILL_FAILOVER || strcmp(e->name, "secondary") != 0 || a->failed_over) {
        world_trace(s, "-", "%s %s: nothing to do in async (failover secondary promotes it once)",
                    drill_action_name(e->action), e->name);
        return;
    }
    /* the operator: promote the secondary and fence the old primary (STONITH) */
    node_promote(a->ns);
    node_fence(a->np);
    struct node_async_status ss = status_of(a, a->secondary);
    record_failover(s, a, &ss, 0);
}

/* offset_us: the clock of served_us minus the run's (0 in the simulator) */
static void record_failover(struct sim *s, struct async_state *a,
                            const struct node_async_status *status, int64_t offset_us)
{
    struct node_async_status ss = *status;
    struct world_node *sec = &s->nodes[a->secondary];
    a->failed_over = true;
    a->failover_us = s->now_us;
    a->failover_position = ss.failover.position;
    a->failover_position_at_us = ss.failover.position_at_us - offset_us;
    a->failover_cmp_us = a->failover_us + offset_us;
    a->failover_position_at_cmp_us = ss.failover.position_at_us;
    a->failover_window_us = ss.failover.window_us;
    s->main_node = a->secondary;
    if (a->live) {
        /* the copies are in the processes: the loss is counted on the files at the end */
        world_trace(s, sec->name,
                    "failover: secondary promoted at change %lld (committed on the primary at "
                    "%.3fs); the primary is fenced; the acknowledged writes lost are counted on "
                    "the files at the end",
                    (long long)a->failover_position, secs(a->failover_position_at_us));
        world_mark(s, sec->name, REPORT_CHECKPOINT, "failover");
        return;
    }
    count_lost(s, a, sec->name);
    if (sec->shop == NULL)
        world_trace(s, sec->name, "the promoted secondary is down: clients wait for it");
}

/* The failover's loss: traced, marked and in the report's figures. */
static void count_lost(struct sim *s, struct async_state *a, const char *lane)
{
    uint32_t ids[ASYNC_LOST_LISTED_MAX];
    bool outside = false;
    uint32_t outside_id = 0;
    size_t lost = lost_writes(s, a, ids, ASYNC_LOST_LISTED_MAX, &outside, &outside_id);
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < lost && i < ASYNC_LOST_LISTED_MAX && used < sizeof(list) - 16; i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, " #%u", ids[i]);
    world_trace(s, lane,
                "failover: secondary promoted at change %lld (committed on the primary at "
                "%.3fs); the primary is fenced; %zu acknowledged write(s) lost:%s%s",
                (long long)a->failover_position, secs(a->failover_position_at_us), lost,
                lost ? list : " none", lost > ASYNC_LOST_LISTED_MAX ? " ..." : "");
    world_mark(s, lane, REPORT_CHECKPOINT, "failover: %zu acknowledged write(s) lost", lost);
    world_metric(s, "failover_lost_writes", (int64_t)lost, "writes");
    world_metric(s, "failover_lag_window_us", a->failover_window_us, "us");
    world_metric(s, "failover_lost_outside_window", outside, "writes");
}

static bool async_pending(struct sim *s, char *why, size_t len)
{
    struct async_state *a = st(s);
    if (a->failed_over)
        return false;
    struct node_async_status ps = status_of(a, a->primary), ss = status_of(a, a->secondary);
    if (s->drill->topology.outbox_off) {
        if (ss.snapshot_as_of_us > ps.last_commit_us)
            return false;
        snprintf(why, len, "secondary holds a copy from %.3fs, the last write was at %.3fs",
                 secs(ss.snapshot_as_of_us), secs(ps.last_commit_us));
        return true;
    }
    struct shop_outbox_info info;
    shop *p = s->nodes[a->primary].shop;
    if (p == NULL || shop_outbox_info(p, &info) != 0)
        return false; /* the runner reports a shop that is down */
    if (ps.acked >= info.head_seq)
        return false;
    snprintf(why, len, "secondary has confirmed change %lld of %lld (%s%s%s)", (long long)ps.acked,
             (long long)info.head_seq, node_async_state_name(ps.state), ps.stuck_why[0] ? ": " : "",
             ps.stuck_why);
    return true;
}

/* The report's lanes: the secondary's lag, who takes writes after a failover. */
static enum report_node_state async_node_state(struct sim *s, int n, int64_t *value, char *label,
                                               size_t len)
{
    struct async_state *a = st(s);
    shop *p = s->nodes[a->primary].shop;
    if (a->failed_over) {
        bool promoted = n == a->secondary;
        if (label != NULL)
            snprintf(label, len, promoted ? "promoted: takes the writes" : "fenced: replaced by "
                                                                            "the promoted secondary");
        return promoted ? REPORT_STATE_LEADING : REPORT_STATE_DEGRADED;
    }
    if (n != a->secondary || p == NULL || a->ns == NULL)
        return REPORT_STATE_COUNT;
    struct node_view v;
    node_view(a->ns, &v);
    *value = shop_last_seq(p) - v.position;
    if (*value <= 0) {
        *value = 0;
        if (label != NULL)
            snprintf(label, len, "caught up: holds every change of %s", s->nodes[a->primary].name);
        return REPORT_STATE_UP;
    }
    if (label != NULL)
        snprintf(label, len, "lags: %lld change(s) behind %s", (long long)*value,
                 s->nodes[a->primary].name);
    return REPORT_STATE_BEHIND;
}

const struct world_topo world_async_topo = {
    .node_state = async_node_state,
    .name = "async",
    .configure = async_configure,
    .start = async_start,
    .serve = async_serve,
    .served = async_served,
    .position = async_position,
    .deliver = async_deliver,
    .tick = async_tick,
    .crashed = async_crashed,
    .restarted = async_restarted,
    .action = async_action,
    .pending = async_pending,
    .release = async_release,
};

/* ---- checkers ------------------------------------------------------------- */

/* Is an acknowledged write of the old primary on the promoted secondary? */
static bool is_on_secondary(struct sim *s, struct async_state *a, const struct sim_op *op)
{
    shop *sec = s->nodes[a->secondary].shop;
    if (op->kind == DRILL_OP_CHECKOUT) {
        struct shop_order o;
        return shop_order_get(sec, op->order_id, &o) == 0 && o.user_id == op->user_id &&
               o.total_cents == op->total_cents && o.created_at_us == op->served_us;
    }
    if (op->kind == DRILL_OP_USER_CREATE) {
        struct shop_user u;
        return shop_user_get(sec, op->user_id, &u) == 0 && u.updated_at_us == op->served_us;
    }
    if (op->kind == DRILL_OP_ORDER_CANCEL) {
        struct shop_order o;
        return shop_order_get(sec, op->order_id, &o) == 0 && o.status == ORDER_CANCELLED;
    }
    return true; /* carts and renames leave no row of their own to look for */
}

/*
 * The lookup through the drill's own faults: 1 the write is there, 0 it is
 * missing, -1 unreadable. A lookup that missed while an injected fault fired
 * was answered by the fault, not by the secondary (a read error is not a lost
 * write): it is tried again, and after RPO_READ_TRIES such answers the write
 * is left unjudged.
 */
#define RPO_READ_TRIES 16

static int lookup_on_secondary(struct sim *s, struct async_state *a, const struct sim_op *op)
{
    for (int t = 0; t < RPO_READ_TRIES; t++) {
        uint64_t before = world_faults_fired(s);
        if (is_on_secondary(s, a, op))
            return 1;
        if (world_faults_fired(s) == before)
            return 0;
    }
    return -1;
}

/* The old primary's acknowledged writes missing on the secondary;
 * a->unreadable counts those an injected fault kept the lookup from reading
 * (neither lost nor found). */
static size_t lost_writes(struct sim *s, struct async_state *a, uint32_t *ids, size_t max,
                          bool *outside_window, uint32_t *outside_id)
{
    size_t lost = 0;
    a->unreadable = 0;
    if (s->nodes[a->secondary].shop == NULL)
        return 0;
    for (size_t i = 0; i < s->op_count; i++) {
        const struct sim_op *op = &s->ops[i];
        if (op->outcome != SIM_OK || !op->is_write || op->node != a->primary)
            continue;
        int found = lookup_on_secondary(s, a, op);
        a->unreadable += found < 0;
        if (found != 0)
            continue;
        if (lost < max)
            ids[lost] = op->id;
        lost++;
        /* the window: committed after the last change the secondary held, and
         * before the failover (the fenced old primary acknowledges nothing more) */
        bool in_window =
            op->served_us <= a->failover_cmp_us &&
            (s->drill->topology.outbox_off ? op->served_us >= a->failover_position_at_cmp_us
                                           : op->seq > a->failover_position);
        if (!in_window && !*outside_window) {
            *outside_window = true;
            *outside_id = op->id;
        }
    }
    return lost;
}

enum sim_check async_rpo_bounded(struct sim *s, const struct drill_expect *e, char *why,
                                 size_t len)
{
    struct async_state *a = s->topo == &world_async_topo ? st(s) : NULL;
    if (a == NULL || !a->failed_over || s->nodes[a->secondary].shop == NULL)
        return SIM_CHECK_SKIPPED; /* judged after a failover */
    uint32_t ids[ASYNC_LOST_LISTED_MAX];
    bool outside = false;
    uint32_t outside_id = 0;
    size_t lost = lost_writes(s, a, ids, ASYNC_LOST_LISTED_MAX, &outside, &outside_id);
    if (outside) {
        const struct sim_op *op = &s->ops[outside_id - 1];
        if (op->served_us > a->failover_cmp_us) {
            snprintf(why, len,
                     "op #%u (%s by client%d) was acknowledged by the old primary at %.3fs, after "
                     "the failover at %.3fs, and is on no copy that serves: the old primary was "
                     "not fenced",
                     op->id, drill_op_name(op->kind), op->client, secs(op->complete_us),
                     secs(a->failover_us));
            world_witness(s, 1); /* the failover was judged */
            return SIM_CHECK_VIOLATED;
        }
        snprintf(why, len,
                 "op #%u (%s by client%d, acknowledged at %.3fs, change %lld) is missing on the "
                 "promoted secondary although the secondary had applied up to change %lld: a "
                 "write outside the replication lag window was lost",
                 op->id, drill_op_name(op->kind), op->client, secs(op->complete_us),
                 (long long)op->seq, (long long)a->failover_position);
        world_witness(s, 1);
        return SIM_CHECK_VIOLATED;
    }
    if (e->max >= 0 && lost > (size_t)e->max) {
        snprintf(why, len,
                 "the failover at %.3fs lost %zu acknowledged writes (first: op #%u), more than "
                 "max=%lld: the secondary was %.3fs behind (it held changes committed up to "
                 "%.3fs)",
                 secs(a->failover_us), lost, ids[0], (long long)e->max,
                 secs(a->failover_us - a->failover_position_at_us),
                 secs(a->failover_position_at_us));
        world_witness(s, 1);
        return SIM_CHECK_VIOLATED;
    }
    if (a->unreadable > 0) {
        /* not judged now: a later evaluation (after a heal) may read them */
        snprintf(why, len,
                 "%zu acknowledged write(s) of the old primary could not be looked up on the "
                 "promoted secondary: an injected fault answered every read (%d tries each); "
                 "the failover was not judged",
                 a->unreadable, RPO_READ_TRIES);
        return SIM_CHECK_HOLDS;
    }
    world_witness(s, 1); /* the failover, with every acknowledged write looked up */
    return SIM_CHECK_HOLDS;
}

enum sim_check async_replica_prefix(struct sim *s, const struct drill_expect *e, char *why,
                                    size_t len)
{
    (void)e;
    struct async_state *a = s->topo == &world_async_topo ? st(s) : NULL;
    if (a == NULL)
        return SIM_CHECK_SKIPPED;
    struct node_async_status ss = status_of(a, a->secondary);
    if (ss.moved_back) {
        snprintf(why, len, "at %.3fs the secondary's position moved back from %lld to %lld",
                 secs(ss.moved_back_at_us), (long long)ss.moved_back_from,
                 (long long)ss.moved_back_to);
        return SIM_CHECK_VIOLATED;
    }
    shop *p = s->nodes[a->primary].shop, *sec = s->nodes[a->secondary].shop;
    struct shop_outbox_info info;
    bool outbox_off = s->drill->topology.outbox_off;
    /* every change applied had its position checked for moving back */
    world_witness(s, ss.position_max > 0 ? (uint64_t)ss.position_max : 0);
    if (outbox_off)
        snprintf(why, len, "outbox=off ships whole copies with no positions: there is no prefix "
                           "to judge");
    else if (ss.position_max == 0)
        snprintf(why, len, "the secondary applied no change%s",
                 a->failed_over ? " before the failover" : "");
    if (a->failed_over || outbox_off || p == NULL || sec == NULL ||
        shop_outbox_info(p, &info) != 0 || ss.position != info.head_seq)
        return SIM_CHECK_HOLDS; /* positions only moved forward; contents judged when caught up */
    char dp[65], ds[65];
    if (shop_digest(p, world_lead_copy(s, a->primary), dp) != 0 || shop_digest(sec, 0, ds) != 0)
        return SIM_CHECK_SKIPPED;
    if (strcmp(dp, ds) == 0)
        return SIM_CHECK_HOLDS;
    snprintf(why, len,
             "at %.3fs the secondary has applied every change up to %lld, the primary's last, "
             "yet their contents differ: the secondary is not a prefix of the primary",
             secs(s->now_us), (long long)ss.position);
    return SIM_CHECK_VIOLATED;
}

enum sim_check async_converges(struct sim *s, const struct drill_expect *e, char *why,
                               size_t len)
{
    (void)e;
    struct async_state *a = st(s);
    if (a->failed_over) {
        /* the old primary is fenced for good: there is no second copy to converge with */
        snprintf(why, len, "after the failover the old primary is fenced: no second copy was "
                           "left to converge with");
        return SIM_CHECK_HOLDS;
    }
    shop *p = s->nodes[a->primary].shop, *sec = s->nodes[a->secondary].shop;
    char dp[65], ds[65];
    if (p == NULL || sec == NULL || shop_digest(p, world_lead_copy(s, a->primary), dp) != 0 ||
        shop_digest(sec, 0, ds) != 0)
        return SIM_CHECK_SKIPPED;
    if (strcmp(dp, ds) == 0) {
        struct shop_outbox_info info;
        if (shop_outbox_info(p, &info) == 0 && info.head_seq > 0)
            world_witness(s, (uint64_t)info.head_seq); /* changes both copies hold */
        else if (s->drill->topology.outbox_off && status_of(a, a->primary).last_commit_us > 0)
            world_witness(s, 1); /* whole copies: the last one matched */
        return SIM_CHECK_HOLDS;
    }
    snprintf(why, len,
             "after the drain (%.3fs) primary and secondary hold different data: the secondary "
             "confirmed change %lld",
             secs(s->now_us), (long long)status_of(a, a->primary).acked);
    return SIM_CHECK_VIOLATED;
}

void async_report(struct sim *s)
{
    struct async_state *a = s->topo == &world_async_topo ? st(s) : NULL;
    if (a == NULL)
        return;
    if (a->live) {
        /* live: the core's figures are in the processes; the failover's loss is counted
         * now that the files are open */
        if (a->failed_over && s->nodes[a->secondary].shop != NULL)
            count_lost(s, a, s->nodes[a->secondary].name);
        return;
    }
    world_metric(s, "replication_lag_p50_us", lag_percentile(a, 50), "us");
    world_metric(s, "replication_lag_p99_us", lag_percentile(a, 99), "us");
    struct node_async_status ps = status_of(a, a->primary);
    uint64_t resends = ps.timeouts + ps.gap_resends;
    world_metric(s, "replication_batches_sent", (int64_t)ps.batches_sent, "batches");
    world_metric(s, "replication_resends", (int64_t)resends, "batches");
    world_trace(s, "-",
                "replication lag over %zu applied batches: p50 %.3fs, p99 %.3fs; %llu batches "
                "sent, %llu resends",
                a->lag_count, secs(lag_percentile(a, 50)), secs(lag_percentile(a, 99)),
                (unsigned long long)ps.batches_sent, (unsigned long long)resends);
}

/* ---- run --live ------------------------------------------------------------ */

void async_live_status(struct sim *s, bool secondary, const struct node_async_status *status)
{
    struct async_state *a = s->topo == &world_async_topo ? st(s) : NULL;
    if (a == NULL)
        return;
    a->live = true;
    a->live_status[secondary] = *status;
}

void async_live_failover(struct sim *s, int64_t offset_us,
                         const struct node_async_status *secondary)
{
    struct async_state *a = s->topo == &world_async_topo ? st(s) : NULL;
    if (a == NULL || a->failed_over)
        return;
    a->live = true;
    a->live_status[1] = *secondary;
    record_failover(s, a, secondary, offset_us);
}
