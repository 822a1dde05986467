/*
 * offline.c — the simulator's host of offline-first sync (topology
 * `offline`): nodes `local` (or local1..localN with locals=N) and `central`
 * of the platform's replication core (platform/node.h, roles offline-local
 * and offline-central). Clients write to their local, whose every change
 * lands in its sync queue (in the change's transaction, or in a second one
 * with the naive queue=separate). The core's messages travel the simulated
 * network (latency, jitter, partitions, net/<from>/<to>/... faults); its
 * timers fire in virtual time; `offline NODE` / `online NODE` flip a local's
 * switch (node_set_online). Every protocol decision — the job's interval, one
 * push in flight, the reply timeout, retries, FAILED rows, what a late answer
 * means — is the core's; this file only carries events, and judges.
 *
 * Checkers: outbox-accounted, and the offline part of converges. Part of
 * libsim; talks to the platform only through platform.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

#define OFFLINE_WIRE 1 /* the world_msg type of a core message */

struct offline_local {
    int node;
    struct node *core;
    bool online;              /* the switch as the drill last set it */
};

struct offline_state {
    int central;
    struct node *core_central;
    int count;
    struct offline_local local[DRILL_LOCALS_MAX];
    struct platform_env env;  /* the sim's env plus transport, timers and trace */
    int retries;
    bool separate;
    bool reported;
};

static struct offline_state *st(struct sim *s)
{
    return s->topo == &world_offline_topo ? s->topo_state : NULL;
}

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

static const char *name_of(struct sim *s, int node)
{
    return s->nodes[node].name;
}

static int local_of_node(const struct offline_state *o, int node)
{
    for (int i = 0; i < o->count; i++)
        if (o->local[i].node == node)
            return i;
    return -1;
}

static struct node *core_of(struct offline_state *o, int node)
{
    if (node == o->central)
        return o->core_central;
    int i = local_of_node(o, node);
    return i >= 0 ? o->local[i].core : NULL;
}

/* The core's status of a local (zeros when it has none). */
static struct node_offline_status status_of(struct offline_state *o, int i)
{
    struct node_status ns;
    memset(&ns, 0, sizeof(ns));
    if (o->local[i].core != NULL)
        node_status(o->local[i].core, &ns);
    return ns.offline;
}

/* ---- the environment the core acts through ------------------------------- */

static void env_send(void *ctx, const char *from, const char *to, const void *msg, size_t len)
{
    struct sim *s = ctx;
    struct offline_state *o = st(s);
    int f = world_node_index(s, from), t = world_node_index(s, to);
    if (f < 0 || t < 0)
        return;
    /* central answers once it has served the push: its service time and its
     * disk's slowness while applying it */
    int64_t at = f == o->central ? s->now_us + SIM_SERVICE_US + s->delay_pending_us : s->now_us;
    world_send(s, f, t, OFFLINE_WIRE, 0, 0, msg, len, at);
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

/* ---- set-up --------------------------------------------------------------- */

static int offline_configure(struct sim *s)
{
    struct offline_state *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return -ENOMEM;
    s->topo_state = o;
    const struct drill_topology *t = &s->drill->topology;
    o->central = world_node_index(s, "central");
    for (size_t n = 0; n < s->node_count && o->count < DRILL_LOCALS_MAX; n++)
        if (strncmp(s->nodes[n].name, "local", 5) == 0)
            o->local[o->count++].node = (int)n;
    if (o->central < 0 || o->count == 0) {
        snprintf(s->msg, sizeof(s->msg), "offline needs nodes local (or local1..N) and central");
        return -EINVAL;
    }
    o->retries = t->retries > 0 ? t->retries : NODE_OFFLINE_RETRIES;
    o->separate = t->queue_separate;
    for (int i = 0; i < o->count; i++) {
        struct world_node *n = &s->nodes[o->local[i].node];
        n->cfg.sync_queue = o->separate ? SHOP_QUEUE_SEPARATE : SHOP_QUEUE_SAME;
        n->seed = true;
        o->local[i].online = true;
    }
    s->nodes[o->central].seed = false; /* an aggregate: it holds what the locals push */
    s->main_node = o->local[0].node;
    return 0;
}

static int make_node(struct sim *s, int n, const struct node_config *cfg, struct node **out)
{
    struct offline_state *o = st(s);
    char msg[SHOP_ERRMSG_MAX];
    int err = node_create(cfg, &o->env, out, msg);
    if (err) {
        snprintf(s->msg, sizeof(s->msg), "%s", msg);
        return err;
    }
    if (s->nodes[n].shop != NULL)
        after_event(s, node_start(*out));
    return 0;
}

static int offline_start(struct sim *s)
{
    struct offline_state *o = st(s);
    const struct drill_topology *t = &s->drill->topology;
    o->env = s->env;
    o->env.ctx = s;
    o->env.send = env_send;
    o->env.timer = env_timer;
    o->env.trace = env_trace;
    const char *names[DRILL_LOCALS_MAX];
    for (int i = 0; i < o->count; i++)
        names[i] = name_of(s, o->local[i].node);
    world_trace(s, name_of(s, o->central), "offline sync: %d local(s) push to central; queue=%s%s",
                o->count, o->separate ? "separate" : "same",
                o->separate ? " (naive: a row and its queue entry in two transactions)" : "");
    struct node_config c = {.name = name_of(s, o->central), .role = NODE_OFFLINE_CENTRAL,
                            .shop = s->nodes[o->central].shop, .peers = names,
                            .peer_count = (size_t)o->count};
    int err = make_node(s, o->central, &c, &o->core_central);
    for (int i = 0; !err && i < o->count; i++) {
        struct node_config l = {.name = names[i], .role = NODE_OFFLINE_LOCAL,
                                .shop = s->nodes[o->local[i].node].shop,
                                .peer = name_of(s, o->central),
                                .sync_interval_us = t->sync_interval_us,
                                .sync_retries = o->retries};
        err = make_node(s, o->local[i].node, &l, &o->local[i].core);
    }
    return err;
}

static void offline_release(struct sim *s)
{
    struct offline_state *o = st(s);
    if (o == NULL)
        return;
    node_destroy(o->core_central);
    for (int i = 0; i < o->count; i++)
        node_destroy(o->local[i].core);
    free(o);
    s->topo_state = NULL;
}

/* Clients are spread over the locals: client c writes to local (c-1) % N. */
static int offline_route(struct sim *s, struct sim_op *op)
{
    struct offline_state *o = st(s);
    return o->local[(op->client - 1) % o->count].node;
}

/* ---- events --------------------------------------------------------------- */

static void offline_tick(struct sim *s, int timer, int64_t n)
{
    struct node *nd = n >= 0 ? core_of(st(s), (int)n) : NULL;
    if (nd != NULL && s->nodes[n].up)
        after_event(s, node_on_timer(nd, timer));
}

static void offline_deliver(struct sim *s, const struct world_msg *m)
{
    struct offline_state *o = st(s);
    struct node *nd = core_of(o, m->to);
    if (m->type != OFFLINE_WIRE || nd == NULL || m->from >= (int)s->node_count)
        return;
    s->delay_pending_us = 0; /* what the node's disk adds while it handles this */
    after_event(s, node_on_message(nd, name_of(s, m->from), m->data, m->len));
}

static void offline_crashed(struct sim *s, int n)
{
    struct node *nd = core_of(st(s), n);
    if (nd != NULL)
        node_crashed(nd);
}

static void offline_restarted(struct sim *s, int n)
{
    struct node *nd = core_of(st(s), n);
    if (nd != NULL && s->nodes[n].shop != NULL)
        after_event(s, node_restarted(nd, s->nodes[n].shop));
}

/* The operator's switch: the host remembers only what it told the core. */
static void set_online(struct offline_state *o, int i, bool online)
{
    o->local[i].online = online;
    node_set_online(o->local[i].core, online);
}

static void offline_action(struct sim *s, const struct drill_event *e)
{
    struct offline_state *o = st(s);
    int n = world_node_index(s, e->name), i = n >= 0 ? local_of_node(o, n) : -1;
    if (i < 0 || (e->action != DRILL_GO_OFFLINE && e->action != DRILL_GO_ONLINE)) {
        world_trace(s, "-", "%s %s: nothing to do in offline (offline/online take a local)",
                    drill_action_name(e->action), e->name);
        return;
    }
    bool online = e->action == DRILL_GO_ONLINE;
    world_mark(s, e->name, online ? REPORT_HEAL : REPORT_PARTITION, "%s %s", e->name,
               online ? "online" : "offline");
    set_online(o, i, online);
}

static void trace_figures(struct sim *s, struct offline_state *o)
{
    for (int i = 0; i < o->count; i++) {
        struct node_offline_status l = status_of(o, i);
        world_trace(s, name_of(s, o->local[i].node),
                    "sync figures: %llu pushes (%llu accepted in time, %llu failed of which "
                    "%llu without an answer; %llu late or repeated answers), %llu rows pushed, "
                    "%llu marked SYNCED, %llu row retries, %llu rows FAILED",
                    (unsigned long long)l.pushes, (unsigned long long)l.accepted,
                    (unsigned long long)l.failed_pushes, (unsigned long long)l.timeouts,
                    (unsigned long long)l.late_replies, (unsigned long long)l.rows_pushed,
                    (unsigned long long)l.rows_synced, (unsigned long long)l.rows_retried,
                    (unsigned long long)l.rows_failed);
    }
}

/* The drain heals everything, so the locals' switches go back online too;
 * it waits until no local has a PENDING or FAILED row. */
static bool offline_pending(struct sim *s, char *why, size_t len)
{
    struct offline_state *o = st(s);
    for (int i = 0; s->draining && i < o->count; i++) {
        if (!o->local[i].online) {
            world_trace(s, name_of(s, o->local[i].node), "drain: back online");
            set_online(o, i, true);
        }
    }
    for (int i = 0; i < o->count; i++) {
        struct node_offline_status l = status_of(o, i);
        if (!l.queue_read)
            continue; /* the runner reports a shop that is not running */
        const struct shop_sync_status *q = &l.queue;
        int64_t left = q->total[SHOP_SYNC_PENDING] + q->total[SHOP_SYNC_FAILED];
        if (left > 0) {
            snprintf(why, len,
                     "%s still has %lld PENDING and %lld FAILED sync row(s), the "
                     "oldest from %.3fs",
                     name_of(s, o->local[i].node), (long long)q->total[SHOP_SYNC_PENDING],
                     (long long)q->total[SHOP_SYNC_FAILED], secs(q->oldest_pending_at_us));
            return true;
        }
    }
    if (s->draining && !o->reported) {
        o->reported = true;
        trace_figures(s, o);
    }
    return false;
}

/* Each local acknowledges its own clients' writes and must keep them. */
static int offline_ack_node(struct sim *s, const struct sim_op *op)
{
    (void)s;
    return op->node;
}

/* The report's lanes: a local offline on purpose. */
static enum report_node_state offline_node_state(struct sim *s, int n, int64_t *value,
                                                 char *label, size_t len)
{
    struct offline_state *o = st(s);
    int i = local_of_node(o, n);
    (void)value;
    if (i < 0 || o->local[i].online)
        return REPORT_STATE_COUNT;
    if (label != NULL)
        snprintf(label, len, "offline: keeps taking orders locally, pushes nothing");
    return REPORT_STATE_OFFLINE;
}

const struct world_topo world_offline_topo = {
    .node_state = offline_node_state,
    .ack_node = offline_ack_node,
    .name = "offline",
    .configure = offline_configure,
    .start = offline_start,
    .route = offline_route,
    .deliver = offline_deliver,
    .tick = offline_tick,
    .crashed = offline_crashed,
    .restarted = offline_restarted,
    .action = offline_action,
    .pending = offline_pending,
    .release = offline_release,
};

/* ---- checkers ------------------------------------------------------------- */

static const char *const problem_words[] = {
    [SHOP_SYNC_MATCH] = "matches",
    [SHOP_SYNC_MISSING] = "is missing on central",
    [SHOP_SYNC_DIFFERS] = "holds other values on central",
    [SHOP_SYNC_UNDELETED] = "was deleted locally but central still holds it",
};

/* One compared row in words: table, key, node, the queue's view, central's. */
static void describe_row(const struct shop_sync_row *r, const char *node, char *out, size_t len)
{
    char queue[200], held[96];
    if (!r->queued)
        snprintf(queue, sizeof(queue), "it has no sync-queue entry at all");
    else if (r->state == SHOP_SYNC_SYNCED)
        snprintf(queue, sizeof(queue),
                 "its newest queue entry #%lld (%s, queued at %.3fs) was marked SYNCED at %.3fs",
                 (long long)r->queue_id, r->op, secs(r->created_at_us), secs(r->synced_at_us));
    else
        snprintf(queue, sizeof(queue),
                 "its newest queue entry #%lld (%s, queued at %.3fs) is %s after %lld retries",
                 (long long)r->queue_id, r->op, secs(r->created_at_us),
                 shop_sync_state_name(r->state), (long long)r->retries);
    if (r->central_version > 0)
        snprintf(held, sizeof(held), "central last applied queue entry #%lld at %.3fs",
                 (long long)r->central_version, secs(r->central_synced_at_us));
    else
        snprintf(held, sizeof(held), "central never received it");
    snprintf(out, len, "row %s %s of %s %s: %s; %s", shop_table_name(r->table), r->row_key, node,
             problem_words[r->problem], queue, held);
}

static int compare_local(struct sim *s, struct offline_state *o, int i, struct shop_sync_compare *c)
{
    shop *local = s->nodes[o->local[i].node].shop, *central = s->nodes[o->central].shop;
    if (local == NULL || central == NULL)
        return -EAGAIN;
    return shop_sync_compare(local, central, name_of(s, o->local[i].node), c);
}

/* The writes clients made on a local (acknowledged or maybe applied): the
 * changes its sync must account for, beyond the seeded catalog. */
static uint64_t local_writes(const struct sim *s, int node)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->op_count; i++) {
        const struct sim_op *op = &s->ops[i];
        n += op->is_write && op->node == node &&
             (op->outcome == SIM_OK || op->outcome == SIM_UNKNOWN);
    }
    return n;
}

/* FAILED only at the budget, nothing SYNCED twice. */
static enum sim_check check_status(struct sim *s, struct offline_state *o, int i, char *why,
                                   size_t len)
{
    const char *node = name_of(s, o->local[i].node);
    shop *sh = s->nodes[o->local[i].node].shop;
    struct shop_sync_status q;
    if (shop_sync_status(sh, &q) != 0)
        return SIM_CHECK_SKIPPED;
    struct shop_sync_entry e;
    if (q.synced_twice > 0) {
        shop_sync_entry_get(sh, q.synced_twice_id, &e);
        snprintf(why, len,
                 "sync-queue entry #%lld on %s (row %s %s, %s) was marked SYNCED more than once "
                 "(%lld such entries; %lld SYNCED transitions for %lld SYNCED rows)",
                 (long long)q.synced_twice_id, node, shop_table_name(e.table), e.row_key, e.op,
                 (long long)q.synced_twice, (long long)q.synced_marks,
                 (long long)q.total[SHOP_SYNC_SYNCED]);
        return SIM_CHECK_VIOLATED;
    }
    if (q.total[SHOP_SYNC_FAILED] > 0 && q.failed_retries_min < o->retries) {
        shop_sync_entry_get(sh, q.failed_retries_min_id, &e);
        snprintf(why, len,
                 "sync-queue entry #%lld on %s (row %s %s, %s, queued at %.3fs) is FAILED after "
                 "%lld failed pushes, before its budget of retries=%d was spent",
                 (long long)q.failed_retries_min_id, node, shop_table_name(e.table), e.row_key,
                 e.op, secs(e.created_at_us), (long long)q.failed_retries_min, o->retries);
        return SIM_CHECK_VIOLATED;
    }
    world_witness(s, local_writes(s, o->local[i].node)); /* each accounted for */
    return SIM_CHECK_HOLDS;
}

enum sim_check offline_outbox_accounted(struct sim *s, const struct drill_expect *e, char *why,
                                        size_t len)
{
    (void)e;
    struct offline_state *o = st(s);
    if (o == NULL || s->nodes[o->central].shop == NULL)
        return SIM_CHECK_SKIPPED;
    enum sim_check result = SIM_CHECK_SKIPPED;
    struct shop_sync_compare *c = malloc(sizeof(*c));
    if (c == NULL)
        return SIM_CHECK_SKIPPED;
    for (int i = 0; i < o->count && result != SIM_CHECK_VIOLATED; i++) {
        if (compare_local(s, o, i, c) != 0)
            continue; /* a local that is down is judged when it is back */
        enum sim_check r = check_status(s, o, i, why, len);
        if (r == SIM_CHECK_VIOLATED || c->lost > 0) {
            result = SIM_CHECK_VIOLATED;
        } else if (r == SIM_CHECK_HOLDS) {
            result = SIM_CHECK_HOLDS;
        }
        if (r == SIM_CHECK_VIOLATED || c->lost == 0)
            continue;
        char row[600];
        describe_row(&c->examples[0], name_of(s, o->local[i].node), row, sizeof(row));
        snprintf(why, len,
                 "at %.3fs %lld change(s) on %s are neither SYNCED and present on central nor "
                 "PENDING/FAILED in its sync queue, so no sync will ever carry them; first: "
                 "%s%s",
                 secs(s->now_us), (long long)c->lost, name_of(s, o->local[i].node), row,
                 o->separate ? " (queue=separate writes a change and its queue entry in two "
                               "transactions: a crash between them leaves exactly this)"
                             : "");
    }
    free(c);
    return result;
}

enum sim_check offline_converges(struct sim *s, const struct drill_expect *e, char *why, size_t len)
{
    (void)e;
    struct offline_state *o = st(s);
    if (o == NULL)
        return SIM_CHECK_SKIPPED;
    struct shop_sync_compare *c = malloc(sizeof(*c));
    if (c == NULL)
        return SIM_CHECK_SKIPPED;
    enum sim_check result = SIM_CHECK_HOLDS;
    for (int i = 0; i < o->count && result == SIM_CHECK_HOLDS; i++) {
        if (compare_local(s, o, i, c) != 0) {
            result = SIM_CHECK_SKIPPED;
            break;
        }
        if (c->matching == c->rows) {
            world_witness(s, local_writes(s, o->local[i].node)); /* all on central */
            continue;
        }
        char row[600];
        describe_row(&c->examples[0], name_of(s, o->local[i].node), row, sizeof(row));
        snprintf(why, len,
                 "after the drain (%.3fs) central does not hold every change of %s: %lld of "
                 "%lld rows differ (%lld missing, %lld with other values, %lld not deleted); "
                 "first: %s",
                 secs(s->now_us), name_of(s, o->local[i].node), (long long)(c->rows - c->matching),
                 (long long)c->rows, (long long)c->mismatched[SHOP_SYNC_MISSING],
                 (long long)c->mismatched[SHOP_SYNC_DIFFERS],
                 (long long)c->mismatched[SHOP_SYNC_UNDELETED], row);
        world_witness(s, local_writes(s, o->local[i].node)); /* compared, and found apart */
        result = SIM_CHECK_VIOLATED;
    }
    free(c);
    return result;
}
