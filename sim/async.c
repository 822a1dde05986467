/*
 * async.c — asynchronous replication in the simulator (topology `async`):
 * the primary's outbox is shipped to the secondary in ordered batches after
 * the WAN delay, applied there idempotently by sequence, acknowledged back,
 * and resent from the last acknowledged change when no ack comes (go-back-N
 * with a doubling timeout), so drops, duplicates, reordering and partitions
 * lose nothing. `failover secondary` fences the primary, promotes the
 * secondary and names exactly the acknowledged writes it lacks: the RPO
 * window. The naive outbox=off copies the whole database on a timer.
 * Checkers: replica-prefix, rpo-bounded, and the async part of converges.
 * Part of libsim; talks to the platform only through platform.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

#define ASYNC_PUMP_US 10000               /* the shipper looks at the outbox this often */
#define ASYNC_WINDOW_BATCHES 4            /* batches in flight before an ack */
#define ASYNC_RTO_MIN_US 100000           /* resend when nothing was acked for this long... */
#define ASYNC_RTO_MAX_US 2000000          /* ...doubling up to this */
#define ASYNC_SNAPSHOT_EVERY_US 1000000   /* outbox=off: a whole copy this often */
#define ASYNC_BATCH_BYTES_MAX (1u << 20)
#define ASYNC_LAG_SAMPLES_MAX (1u << 20)
#define ASYNC_LOST_LISTED_MAX 16

enum async_msg {
    ASYNC_BATCH = 1,  /* primary -> secondary: a: first seq, b: last seq, data: the batch */
    ASYNC_ACK,        /* secondary -> primary: a: position, b: 1 when the batch left a gap */
    ASYNC_SNAPSHOT,   /* primary -> secondary (outbox=off): a: taken at (virtual us) */
};

enum async_timer {
    ASYNC_TICK_PUMP,
    ASYNC_TICK_SNAPSHOT,
};

struct async_state {
    int primary, secondary;
    bool outbox_off;
    int64_t delay_us;
    int batch;
    /* the shipper, on the primary */
    int64_t acked;          /* highest position the secondary confirmed */
    int64_t sent;           /* highest sequence sent since the last go-back */
    int64_t progress_us;    /* when acked last moved (or the first send after it) */
    int64_t rto_us;
    uint64_t batches_sent, resends;
    int64_t head;           /* the outbox's last change (reads' position); -1: read it */
    /* the secondary */
    int64_t position, position_at_us; /* what it applied, and when that change committed */
    int64_t position_max;   /* never moves back (replica-prefix) */
    bool moved_back;
    char moved_back_why[256];
    int64_t snapshot_as_of_us;        /* outbox=off: the copy it holds was taken then */
    int64_t last_write_us;            /* outbox=off: the primary's last acknowledged write */
    /* lag samples, in virtual microseconds, one per applied batch */
    size_t lag_count, lag_cap;
    int64_t *lag;
    /* failover */
    bool failed_over;
    int64_t failover_us;
    int64_t failover_position, failover_position_at_us;
};

static struct async_state *st(struct sim *s)
{
    return s->topo_state;
}

static double secs(int64_t us)
{
    return (double)us / 1e6;
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
    a->outbox_off = t->outbox_off;
    a->delay_us = t->async_delay_us;
    a->batch = t->async_batch > 0 ? t->async_batch : 50;
    a->rto_us = ASYNC_RTO_MIN_US + 2 * a->delay_us;
    a->head = -1;
    s->nodes[a->primary].cfg.outbox = !a->outbox_off;
    s->nodes[a->primary].seed = true;
    s->nodes[a->secondary].seed = false; /* it gets the catalog the way it gets everything */
    return 0;
}

static int async_start(struct sim *s)
{
    struct async_state *a = st(s);
    world_trace(s, s->nodes[a->primary].name,
                a->outbox_off ? "async (naive outbox=off): the whole database is copied to "
                                "secondary every %.3fs, WAN delay %.3fs"
                              : "async: outbox shipped to secondary in batches of %.0f, WAN "
                                "delay %.3fs",
                a->outbox_off ? secs(ASYNC_SNAPSHOT_EVERY_US) : (double)a->batch,
                secs(a->delay_us));
    if (a->outbox_off)
        return world_timer(s, s->now_us + ASYNC_SNAPSHOT_EVERY_US, ASYNC_TICK_SNAPSHOT, 0);
    return world_timer(s, s->now_us + ASYNC_PUMP_US, ASYNC_TICK_PUMP, 0);
}

static void async_release(struct sim *s)
{
    struct async_state *a = st(s);
    if (a == NULL)
        return;
    free(a->lag);
    free(a);
    s->topo_state = NULL;
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

/* ---- the shipper (primary) ------------------------------------------------ */

static void ship_batch(struct sim *s, struct async_state *a)
{
    shop *p = s->nodes[a->primary].shop;
    struct shop_batch b;
    int err = shop_outbox_read(p, a->sent, (size_t)a->batch, ASYNC_BATCH_BYTES_MAX, &b);
    if (err) {
        world_trace(s, s->nodes[a->primary].name, "cannot read the outbox: %s", shop_errmsg(p));
        return;
    }
    if (b.count > 0) {
        world_send(s, a->primary, a->secondary, ASYNC_BATCH, b.first_seq, b.last_seq, b.data,
                   b.len, s->now_us + a->delay_us);
        world_trace(s, s->nodes[a->primary].name, "ships changes %lld..%lld (%u) to secondary",
                    (long long)b.first_seq, (long long)b.last_seq, b.count);
        if (a->sent == a->acked)
            a->progress_us = s->now_us;
        a->sent = b.last_seq;
        a->batches_sent++;
    }
    shop_batch_release(&b);
}

static void pump(struct sim *s, struct async_state *a)
{
    shop *p = s->nodes[a->primary].shop;
    struct shop_outbox_info info;
    if (a->failed_over || !s->nodes[a->primary].up || p == NULL || shop_outbox_info(p, &info))
        return;
    if (a->sent > a->acked && s->now_us - a->progress_us >= a->rto_us) {
        world_trace(s, s->nodes[a->primary].name,
                    "no ack from secondary for %.3fs: resending from change %lld",
                    secs(s->now_us - a->progress_us), (long long)(a->acked + 1));
        a->sent = a->acked;
        a->resends++;
        a->rto_us = a->rto_us * 2 > ASYNC_RTO_MAX_US ? ASYNC_RTO_MAX_US : a->rto_us * 2;
    }
    int64_t window = (int64_t)ASYNC_WINDOW_BATCHES * a->batch;
    for (int i = 0; i < ASYNC_WINDOW_BATCHES && a->sent < info.head_seq &&
                    a->sent - a->acked < window; i++) {
        int64_t before = a->sent;
        ship_batch(s, a);
        if (a->sent == before)
            break;
    }
}

static void on_ack(struct sim *s, struct async_state *a, int64_t position, bool gap)
{
    if (position > a->acked) {
        a->acked = position;
        a->progress_us = s->now_us;
        a->rto_us = ASYNC_RTO_MIN_US + 2 * a->delay_us;
        shop *p = s->nodes[a->primary].shop;
        if (p != NULL)
            (void)shop_outbox_prune(p, a->acked);
    }
    if (a->sent < a->acked)
        a->sent = a->acked;
    if (gap && position < a->sent) {
        world_trace(s, s->nodes[a->primary].name,
                    "secondary is missing changes after %lld: resending from there",
                    (long long)position);
        a->sent = position; /* a reordered or dropped batch: go back now */
    }
}

/* ---- the secondary -------------------------------------------------------- */

static void on_batch(struct sim *s, struct async_state *a, const struct world_msg *m)
{
    struct world_node *sec = &s->nodes[a->secondary];
    if (a->failed_over) {
        world_trace(s, sec->name, "batch %lld..%lld from the old primary ignored: promoted",
                    (long long)m->a, (long long)m->b);
        return;
    }
    if (sec->shop == NULL)
        return;
    struct shop_apply_result r;
    int err = shop_replica_apply(sec->shop, "primary", m->data, m->len, &r);
    if (err) {
        world_trace(s, sec->name, "cannot apply changes %lld..%lld: %s", (long long)m->a,
                    (long long)m->b, shop_errmsg(sec->shop));
        if (err == -ECANCELED || s->crash_pending)
            world_handle_crash_point(s);
        return; /* no ack: the primary resends */
    }
    if (r.position < a->position_max) {
        a->moved_back = true;
        snprintf(a->moved_back_why, sizeof(a->moved_back_why),
                 "at %.3fs the secondary's position moved back from %lld to %lld",
                 secs(s->now_us), (long long)a->position_max, (long long)r.position);
    }
    if (r.position > a->position_max)
        a->position_max = r.position;
    a->position = r.position;
    a->position_at_us = r.position_at_us;
    if (r.applied > 0) {
        lag_sample(a, s->now_us - r.position_at_us);
        world_trace(s, sec->name, "applied %u change(s) up to %lld (%u duplicate); lag %.3fs",
                    r.applied, (long long)r.position, r.skipped, secs(s->now_us - r.position_at_us));
    } else {
        world_trace(s, sec->name, "batch %lld..%lld: %s (position %lld)", (long long)m->a,
                    (long long)m->b, r.gap ? "a gap, nothing applied" : "all duplicates",
                    (long long)r.position);
    }
    world_send(s, a->secondary, a->primary, ASYNC_ACK, r.position, r.gap, NULL, 0, s->now_us);
}

/* ---- outbox=off: whole copies --------------------------------------------- */

static void take_snapshot(struct sim *s, struct async_state *a)
{
    shop *p = s->nodes[a->primary].shop;
    if (a->failed_over || !s->nodes[a->primary].up || p == NULL)
        return;
    void *data = NULL;
    size_t len = 0;
    if (shop_snapshot(p, &data, &len) != 0) {
        world_trace(s, s->nodes[a->primary].name, "cannot copy the database: %s",
                    shop_errmsg(p));
        return;
    }
    world_send(s, a->primary, a->secondary, ASYNC_SNAPSHOT, s->now_us, 0, data, len,
               s->now_us + a->delay_us);
    world_trace(s, s->nodes[a->primary].name, "copies the whole database (%zu bytes) to "
                                              "secondary", len);
    free(data);
}

static void on_snapshot(struct sim *s, struct async_state *a, const struct world_msg *m)
{
    struct world_node *sec = &s->nodes[a->secondary];
    if (a->failed_over || sec->shop == NULL || m->a <= a->snapshot_as_of_us)
        return; /* promoted, down, or an older copy than the one it holds */
    if (shop_restore(sec->shop, m->data, m->len) != 0) {
        world_trace(s, sec->name, "cannot replace the database with the copy: %s",
                    shop_errmsg(sec->shop));
        return;
    }
    a->snapshot_as_of_us = m->a;
    a->position_at_us = m->a;
    lag_sample(a, s->now_us - m->a);
    world_trace(s, sec->name, "replaced its database with the copy taken at %.3fs", secs(m->a));
}

/* ---- hooks ---------------------------------------------------------------- */

static void async_tick(struct sim *s, int which, int64_t b)
{
    struct async_state *a = st(s);
    (void)b;
    if (which == ASYNC_TICK_SNAPSHOT) {
        take_snapshot(s, a);
        world_timer(s, s->now_us + ASYNC_SNAPSHOT_EVERY_US, ASYNC_TICK_SNAPSHOT, 0);
        return;
    }
    pump(s, a);
    world_timer(s, s->now_us + ASYNC_PUMP_US, ASYNC_TICK_PUMP, 0);
}

static void async_deliver(struct sim *s, const struct world_msg *m)
{
    struct async_state *a = st(s);
    if (m->type == ASYNC_BATCH)
        on_batch(s, a, m);
    else if (m->type == ASYNC_ACK && !a->failed_over)
        on_ack(s, a, m->a, m->b != 0);
    else if (m->type == ASYNC_SNAPSHOT)
        on_snapshot(s, a, m);
}

/* After a failover the old primary is fenced: it serves nothing more, so
 * it cannot acknowledge a write the promoted copy will never see. */
static bool async_serve(struct sim *s, int n, const struct world_msg *m)
{
    struct async_state *a = st(s);
    if (!a->failed_over || n != a->primary)
        return false;
    world_trace(s, s->nodes[n].name, "#%u refused: fenced since the failover", m->op);
    return true;
}

static void async_served(struct sim *s, int n, struct sim_op *op)
{
    struct async_state *a = st(s);
    if (n == a->primary && op->is_write && op->err == 0)
        a->last_write_us = s->now_us;
    if (n == a->primary && op->is_write && op->seq > a->head && a->head >= 0)
        a->head = op->seq;
}

/* Until the failover, positions are the primary's outbox sequence: a write's
 * change, a read's outbox head (the copy holds every change up to it). */
static bool async_position(struct sim *s, int n, const struct sim_op *op, int *lineage,
                           int64_t *pos)
{
    struct async_state *a = st(s);
    if (a->failed_over || a->outbox_off || n != a->primary)
        return false; /* the promoted copy, or no outbox: the node's own commits */
    *lineage = a->primary;
    if (op->is_write) {
        *pos = op->err == 0 && op->seq > 0 ? op->seq : -1;
        return true;
    }
    struct shop_outbox_info info;
    if (a->head < 0 && shop_outbox_info(s->nodes[n].shop, &info) == 0)
        a->head = info.head_seq;
    *pos = a->head;
    return true;
}

static void async_restarted(struct sim *s, int n)
{
    struct async_state *a = st(s);
    if (n == a->primary) {
        a->sent = a->acked; /* a new process: resend what was never confirmed */
        a->head = -1;       /* what survived: read from its outbox */
    }
}

/* The acknowledged writes of the old primary that the promoted copy lacks. */
static size_t lost_writes(struct sim *s, struct async_state *a, uint32_t *ids, size_t max,
                          bool *outside_window, uint32_t *outside_id);

static void async_action(struct sim *s, const struct drill_event *e)
{
    struct async_state *a = st(s);
    if (e->action != DRILL_FAILOVER || strcmp(e->name, "secondary") != 0 || a->failed_over) {
        world_trace(s, "-", "%s %s: nothing to do in async (failover secondary promotes it once)",
                    drill_action_name(e->action), e->name);
        return;
    }
    struct world_node *sec = &s->nodes[a->secondary];
    a->failed_over = true;
    a->failover_us = s->now_us;
    a->failover_position = a->position;
    a->failover_position_at_us = a->position_at_us;
    s->main_node = a->secondary;
    uint32_t ids[ASYNC_LOST_LISTED_MAX];
    bool outside = false;
    uint32_t outside_id = 0;
    size_t lost = lost_writes(s, a, ids, ASYNC_LOST_LISTED_MAX, &outside, &outside_id);
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < lost && i < ASYNC_LOST_LISTED_MAX && used < sizeof(list) - 16; i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, " #%u", ids[i]);
    world_trace(s, sec->name,
                "failover: secondary promoted at change %lld (committed on the primary at "
                "%.3fs); the primary is fenced; %zu acknowledged write(s) lost:%s%s",
                (long long)a->failover_position, secs(a->failover_position_at_us), lost,
                lost ? list : " none", lost > ASYNC_LOST_LISTED_MAX ? " ..." : "");
    world_mark(s, sec->name, REPORT_CHECKPOINT, "failover: %zu acknowledged write(s) lost", lost);
    world_metric(s, "failover_lost_writes", (int64_t)lost, "writes");
    world_metric(s, "failover_lag_window_us", s->now_us - a->failover_position_at_us, "us");
    world_metric(s, "failover_lost_outside_window", outside, "writes");
    if (sec->shop == NULL)
        world_trace(s, sec->name, "the promoted secondary is down: clients wait for it");
}

static bool async_pending(struct sim *s, char *why, size_t len)
{
    struct async_state *a = st(s);
    if (a->failed_over)
        return false;
    if (a->outbox_off) {
        if (a->snapshot_as_of_us > a->last_write_us)
            return false;
        snprintf(why, len, "secondary holds a copy from %.3fs, the last write was at %.3fs",
                 secs(a->snapshot_as_of_us), secs(a->last_write_us));
        return true;
    }
    struct shop_outbox_info info;
    shop *p = s->nodes[a->primary].shop;
    if (p == NULL || shop_outbox_info(p, &info) != 0)
        return false; /* the runner reports a shop that is down */
    if (a->acked >= info.head_seq)
        return false;
    snprintf(why, len, "secondary has confirmed change %lld of %lld", (long long)a->acked,
             (long long)info.head_seq);
    return true;
}

const struct world_topo world_async_topo = {
    .name = "async",
    .configure = async_configure,
    .start = async_start,
    .serve = async_serve,
    .served = async_served,
    .position = async_position,
    .deliver = async_deliver,
    .tick = async_tick,
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

static size_t lost_writes(struct sim *s, struct async_state *a, uint32_t *ids, size_t max,
                          bool *outside_window, uint32_t *outside_id)
{
    size_t lost = 0;
    if (s->nodes[a->secondary].shop == NULL)
        return 0;
    for (size_t i = 0; i < s->op_count; i++) {
        const struct sim_op *op = &s->ops[i];
        if (op->outcome != SIM_OK || !op->is_write || op->node != a->primary ||
            op->served_us > a->failover_us || is_on_secondary(s, a, op))
            continue;
        if (lost < max)
            ids[lost] = op->id;
        lost++;
        /* the window: committed after the last change the secondary held */
        bool in_window = a->outbox_off ? op->served_us >= a->failover_position_at_us
                                       : op->seq > a->failover_position;
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
        snprintf(why, len,
                 "op #%u (%s by client%d, acknowledged at %.3fs, change %lld) is missing on the "
                 "promoted secondary although the secondary had applied up to change %lld: a "
                 "write outside the replication lag window was lost",
                 op->id, drill_op_name(op->kind), op->client, secs(op->complete_us),
                 (long long)op->seq, (long long)a->failover_position);
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
        return SIM_CHECK_VIOLATED;
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
    if (a->moved_back) {
        snprintf(why, len, "%s", a->moved_back_why);
        return SIM_CHECK_VIOLATED;
    }
    shop *p = s->nodes[a->primary].shop, *sec = s->nodes[a->secondary].shop;
    struct shop_outbox_info info;
    /* every change applied had its position checked for moving back */
    world_witness(s, a->position_max > 0 ? (uint64_t)a->position_max : 0);
    if (a->outbox_off)
        snprintf(why, len, "outbox=off ships whole copies with no positions: there is no prefix "
                           "to judge");
    else if (a->position_max == 0)
        snprintf(why, len, "the secondary applied no change%s",
                 a->failed_over ? " before the failover" : "");
    if (a->failed_over || a->outbox_off || p == NULL || sec == NULL ||
        shop_outbox_info(p, &info) != 0 || a->position != info.head_seq)
        return SIM_CHECK_HOLDS; /* positions only moved forward; contents judged when caught up */
    char dp[65], ds[65];
    if (shop_digest(p, 0, dp) != 0 || shop_digest(sec, 0, ds) != 0)
        return SIM_CHECK_SKIPPED;
    if (strcmp(dp, ds) == 0)
        return SIM_CHECK_HOLDS;
    snprintf(why, len,
             "at %.3fs the secondary has applied every change up to %lld, the primary's last, "
             "yet their contents differ: the secondary is not a prefix of the primary",
             secs(s->now_us), (long long)a->position);
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
    if (p == NULL || sec == NULL || shop_digest(p, 0, dp) != 0 || shop_digest(sec, 0, ds) != 0)
        return SIM_CHECK_SKIPPED;
    if (strcmp(dp, ds) == 0) {
        struct shop_outbox_info info;
        if (shop_outbox_info(p, &info) == 0 && info.head_seq > 0)
            world_witness(s, (uint64_t)info.head_seq); /* changes both copies hold */
        else if (a->outbox_off && a->last_write_us > 0)
            world_witness(s, 1); /* whole copies: the last one matched */
        return SIM_CHECK_HOLDS;
    }
    snprintf(why, len,
             "after the drain (%.3fs) primary and secondary hold different data: the secondary "
             "confirmed change %lld",
             secs(s->now_us), (long long)a->acked);
    return SIM_CHECK_VIOLATED;
}

void async_report(struct sim *s)
{
    struct async_state *a = s->topo == &world_async_topo ? st(s) : NULL;
    if (a == NULL)
        return;
    world_metric(s, "replication_lag_p50_us", lag_percentile(a, 50), "us");
    world_metric(s, "replication_lag_p99_us", lag_percentile(a, 99), "us");
    world_metric(s, "replication_batches_sent", (int64_t)a->batches_sent, "batches");
    world_metric(s, "replication_resends", (int64_t)a->resends, "batches");
    world_trace(s, "-",
                "replication lag over %zu applied batches: p50 %.3fs, p99 %.3fs; %llu batches "
                "sent, %llu resends",
                a->lag_count, secs(lag_percentile(a, 50)), secs(lag_percentile(a, 99)),
                (unsigned long long)a->batches_sent, (unsigned long long)a->resends);
}
