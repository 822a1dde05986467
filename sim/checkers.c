/*
 * checkers.c — the invariants the simulator judges for single and mirror
 * drills. State checkers read each copy through the platform (pinned reads,
 * audits, digests); history checkers read the run's operations. An operation
 * whose outcome is unknown may or may not have happened, so it is never
 * counted as acknowledged nor as lost. When an invariant breaks, the
 * explanation names the operations, rows, nodes and virtual times. Part of
 * libsim.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

static const char *copy_node(const struct sim *s, int copy)
{
    return copy == 0 ? world_cfg(s)->primary.node : world_cfg(s)->mirror.node;
}

static bool is_mirrored(const struct sim *s)
{
    return world_cfg(s)->topology == SHOP_MIRROR;
}

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

/* The copies that must hold every acknowledged write right now. */
static int sync_copies(struct sim *s, int copies[2])
{
    int n = 0;
    copies[n++] = 0;
    if (!is_mirrored(s))
        return n;
    struct mirror_status st;
    bool behind = shop_mirror_status(world_shop(s), &st) == 0 && st.changes_behind > 0;
    /* degrade lets the mirror fall behind on purpose; it must hold
     * everything again once resynced */
    if (world_cfg(s)->policy == MIRROR_STRICT || world_cfg(s)->ack == MIRROR_ACK_EARLY || !behind)
        copies[n++] = 1;
    return n;
}

/* Writes whose effect is a row a checker can look up. */
static bool leaves_row(enum drill_op kind)
{
    return kind == DRILL_OP_CHECKOUT || kind == DRILL_OP_ORDER_CANCEL ||
           kind == DRILL_OP_USER_CREATE;
}

/* Acknowledged writes so far (what two equal copies prove they both hold). */
static uint64_t acked_writes(const struct sim *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->op_count; i++)
        n += s->ops[i].outcome == SIM_OK && s->ops[i].is_write;
    return n;
}

/* Is the effect of one acknowledged write on the copy reads are pinned to? */
static enum sim_check ack_present(shop *sh, const char *where, const struct sim_op *op, char *why,
                                  size_t len)
{
    struct shop_order o;
    struct shop_user u;
    int err = 0;
    if (op->kind == DRILL_OP_CHECKOUT || op->kind == DRILL_OP_ORDER_CANCEL) {
        err = shop_order_get(sh, op->order_id, &o);
        /* the same id on another order (a promoted copy reuses ids it never saw) is a loss */
        if (!err && op->kind == DRILL_OP_CHECKOUT &&
            (o.user_id != op->user_id || o.created_at_us != op->served_us))
            err = -ENOENT;
        if (!err && op->kind == DRILL_OP_ORDER_CANCEL && o.status != ORDER_CANCELLED) {
            snprintf(why, len,
                     "client%d's cancellation of order %lld (op #%u) was acknowledged at %.3fs, "
                     "but on %s the order is %s",
                     op->client, (long long)op->order_id, op->id, secs(op->complete_us), where,
                     shop_order_status_name(o.status));
            return SIM_CHECK_VIOLATED;
        }
    } else if (op->kind == DRILL_OP_USER_CREATE) {
        err = shop_user_get(sh, op->user_id, &u);
    } else {
        return SIM_CHECK_HOLDS; /* carts and renames have no row to look for */
    }
    if (err == -ENOENT) {
        snprintf(why, len,
                 "%s %lld, acknowledged to client%d at %.3fs (op #%u %s), is missing on %s: an "
                 "acknowledged write was lost",
                 op->kind == DRILL_OP_USER_CREATE ? "user" : "order",
                 (long long)(op->kind == DRILL_OP_USER_CREATE ? op->user_id : op->order_id),
                 op->client, secs(op->complete_us), op->id, drill_op_name(op->kind), where);
        return SIM_CHECK_VIOLATED;
    }
    return err ? SIM_CHECK_SKIPPED : SIM_CHECK_HOLDS;
}

/* A topology whose writes are held by the node that acknowledged them
 * (offline: each local) says so through ack_node; look there. */
static enum sim_check lost_on_ack_node(struct sim *s, char *why, size_t len)
{
    enum sim_check result = SIM_CHECK_HOLDS;
    for (size_t i = 0; i < s->op_count && result != SIM_CHECK_VIOLATED; i++) {
        const struct sim_op *op = &s->ops[i];
        if (op->outcome != SIM_OK || !op->is_write)
            continue;
        int n = s->topo->ack_node(s, op);
        shop *sh = n >= 0 ? s->nodes[n].shop : NULL;
        enum sim_check r =
            sh != NULL ? ack_present(sh, s->nodes[n].name, op, why, len) : SIM_CHECK_SKIPPED;
        if (r != SIM_CHECK_SKIPPED && leaves_row(op->kind))
            world_witness(s, 1);
        if (r != SIM_CHECK_HOLDS)
            result = r;
    }
    return result;
}

static enum sim_check no_lost_acks(struct sim *s, const struct drill_expect *e, char *why,
                                   size_t len)
{
    (void)e;
    if (s->topo != NULL && s->topo->ack_node != NULL)
        return lost_on_ack_node(s, why, len);
    if (world_shop(s) == NULL)
        return SIM_CHECK_SKIPPED;
    int copies[2];
    int n = sync_copies(s, copies);
    enum sim_check result = SIM_CHECK_HOLDS;
    for (int c = 0; c < n && result != SIM_CHECK_VIOLATED; c++) {
        shop_pin_reads(world_shop(s), copies[c]);
        for (size_t i = 0; i < s->op_count && result != SIM_CHECK_VIOLATED; i++) {
            const struct sim_op *op = &s->ops[i];
            if (op->outcome != SIM_OK || !op->is_write)
                continue;
            enum sim_check r = ack_present(world_shop(s), copy_node(s, copies[c]), op, why, len);
            if (c == 0 && r != SIM_CHECK_SKIPPED && leaves_row(op->kind))
                world_witness(s, 1);
            if (r != SIM_CHECK_HOLDS)
                result = r;
        }
        shop_pin_reads(world_shop(s), -1);
    }
    return result;
}

static enum sim_check mirror_identical(struct sim *s, const struct drill_expect *e, char *why,
                                       size_t len)
{
    (void)e;
    if (world_shop(s) == NULL || !is_mirrored(s))
        return SIM_CHECK_SKIPPED;
    struct mirror_status st;
    shop_mirror_status(world_shop(s), &st);
    bool correct_degrade =
        world_cfg(s)->policy == MIRROR_DEGRADE && world_cfg(s)->ack == MIRROR_ACK_BOTH;
    if (correct_degrade && st.changes_behind > 0) {
        if (s->drained) {
            snprintf(why, len, "after the drain, %s is still %lld change(s) behind %s", st.behind,
                     (long long)st.changes_behind, st.lead);
            return SIM_CHECK_VIOLATED;
        }
        return SIM_CHECK_SKIPPED; /* degraded on purpose: judged once resynced */
    }
    char a[65], b[65];
    if (shop_digest(world_shop(s), 0, a) != 0 || shop_digest(world_shop(s), 1, b) != 0)
        return SIM_CHECK_SKIPPED; /* a copy cannot be read now */
    if (strcmp(a, b) == 0) {
        world_witness(s, acked_writes(s));
        return SIM_CHECK_HOLDS;
    }
    struct shop_audit *pa = calloc(2, sizeof(*pa));
    if (pa != NULL && shop_audit(world_shop(s), 0, &pa[0]) == 0 &&
        shop_audit(world_shop(s), 1, &pa[1]) == 0)
        snprintf(why, len,
                 "at %.3fs primary and mirror hold different data: primary has %lld orders and "
                 "%lld users, mirror %lld orders and %lld users (positions %lld and %lld)",
                 secs(s->now_us), (long long)pa[0].orders, (long long)pa[0].users,
                 (long long)pa[1].orders, (long long)pa[1].users, (long long)st.seq_primary,
                 (long long)st.seq_mirror);
    else
        snprintf(why, len, "at %.3fs primary and mirror hold different data", secs(s->now_us));
    free(pa);
    return SIM_CHECK_VIOLATED;
}

/* Runs fn on every copy that can be read now. */
static enum sim_check each_copy(struct sim *s, char *why, size_t len,
                                enum sim_check (*fn)(struct sim *, int, const struct shop_audit *,
                                                     char *, size_t))
{
    if (world_shop(s) == NULL)
        return SIM_CHECK_SKIPPED;
    struct shop_audit *a = malloc(sizeof(*a));
    if (a == NULL)
        return SIM_CHECK_SKIPPED;
    enum sim_check result = SIM_CHECK_SKIPPED;
    int copies = is_mirrored(s) ? 2 : 1;
    for (int c = 0; c < copies && result != SIM_CHECK_VIOLATED; c++) {
        if (shop_audit(world_shop(s), c, a) != 0)
            continue;
        result = fn(s, c, a, why, len);
    }
    free(a);
    return result;
}

static enum sim_check stock_on(struct sim *s, int copy, const struct shop_audit *a, char *why,
                               size_t len)
{
    int64_t initial = s->drill->product_stock;
    for (size_t i = 0; i < a->product_count && i < SHOP_AUDIT_PRODUCTS_MAX; i++) {
        int64_t stock = a->products[i].stock, ordered = a->products[i].ordered;
        if (stock < 0 || stock + ordered != initial) {
            snprintf(why, len,
                     "product %lld on %s started with %lld units; at %.3fs it has %lld in stock "
                     "and %lld in orders that are not cancelled (%lld + %lld != %lld)",
                     (long long)a->products[i].id, copy_node(s, copy), (long long)initial,
                     secs(s->now_us), (long long)stock, (long long)ordered, (long long)stock,
                     (long long)ordered, (long long)initial);
            return SIM_CHECK_VIOLATED;
        }
    }
    return SIM_CHECK_HOLDS;
}

static enum sim_check stock_conserved(struct sim *s, const struct drill_expect *e, char *why,
                                      size_t len)
{
    (void)e;
    enum sim_check r = each_copy(s, why, len, stock_on);
    if (r == SIM_CHECK_HOLDS) {
        /* what moved stock: checkouts and cancellations that happened or may have */
        uint64_t moves = 0;
        for (size_t i = 0; i < s->op_count; i++) {
            const struct sim_op *op = &s->ops[i];
            moves += (op->kind == DRILL_OP_CHECKOUT || op->kind == DRILL_OP_ORDER_CANCEL) &&
                     (op->outcome == SIM_OK || op->outcome == SIM_UNKNOWN);
        }
        world_witness(s, moves);
    }
    return r;
}

static enum sim_check totals_on(struct sim *s, int copy, const struct shop_audit *a, char *why,
                                size_t len)
{
    if (copy == 0)
        world_witness(s, (uint64_t)a->orders);
    if (a->bad_total_count == 0)
        return SIM_CHECK_HOLDS;
    snprintf(why, len, "order %lld on %s has a total of %lld cents but its lines add up to %lld",
             (long long)a->bad_totals[0].order_id, copy_node(s, copy),
             (long long)a->bad_totals[0].total_cents, (long long)a->bad_totals[0].lines_cents);
    return SIM_CHECK_VIOLATED;
}

static enum sim_check order_totals(struct sim *s, const struct drill_expect *e, char *why,
                                   size_t len)
{
    (void)e;
    return each_copy(s, why, len, totals_on);
}

static enum sim_check integrity(struct sim *s, const struct drill_expect *e, char *why, size_t len)
{
    (void)e;
    if (s->integrity_failed) {
        snprintf(why, len, "%s", s->integrity_why);
        return SIM_CHECK_VIOLATED;
    }
    if (world_shop(s) == NULL)
        return SIM_CHECK_SKIPPED;
    int copies = is_mirrored(s) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        int err = shop_integrity(world_shop(s), c);
        world_witness(s, err == 0 || err == -EBADMSG);
        if (err == -EBADMSG) {
            snprintf(why, len, "PRAGMA integrity_check failed on %s at %.3fs: %s", copy_node(s, c),
                     secs(s->now_us), shop_errmsg(world_shop(s)));
            return SIM_CHECK_VIOLATED;
        }
    }
    return SIM_CHECK_HOLDS;
}

static bool has_order(const struct sim_op *read, int64_t order_id)
{
    for (uint32_t i = 0; i < read->seen_count; i++)
        if (read->seen[i] == order_id)
            return true;
    return false;
}

static bool is_full_read(const struct sim_op *op)
{
    return op->kind == DRILL_OP_ORDER_STATUS && op->outcome == SIM_OK &&
           op->seen_count < SIM_SEEN_MAX;
}

static enum sim_check read_your_writes(struct sim *s, const struct drill_expect *e, char *why,
                                       size_t len)
{
    (void)e;
    for (size_t r = 0; r < s->op_count; r++) {
        const struct sim_op *read = &s->ops[r];
        if (!is_full_read(read))
            continue;
        bool judged = false;
        for (size_t w = 0; w < r; w++) {
            const struct sim_op *wr = &s->ops[w];
            if (wr->client != read->client || wr->kind != DRILL_OP_CHECKOUT ||
                wr->outcome != SIM_OK || wr->complete_us >= read->invoke_us)
                continue;
            world_witness(s, !judged);
            judged = true;
            if (has_order(read, wr->order_id))
                continue;
            snprintf(why, len,
                     "client%d checked out order %lld (op #%u, acknowledged at %.3fs), then read "
                     "its orders at %.3fs (op #%u) and order %lld was not there: the read was "
                     "served from a copy that had not seen the client's own write",
                     read->client, (long long)wr->order_id, wr->id, secs(wr->complete_us),
                     secs(read->invoke_us), read->id, (long long)wr->order_id);
            return SIM_CHECK_VIOLATED;
        }
    }
    return SIM_CHECK_HOLDS;
}

static enum sim_check monotonic_reads(struct sim *s, const struct drill_expect *e, char *why,
                                      size_t len)
{
    (void)e;
    for (size_t r = 0; r < s->op_count; r++) {
        const struct sim_op *later = &s->ops[r];
        if (!is_full_read(later))
            continue;
        for (size_t p = 0; p < r; p++) {
            const struct sim_op *prev = &s->ops[p];
            if (prev->client != later->client || !is_full_read(prev) ||
                prev->complete_us >= later->invoke_us)
                continue;
            world_witness(s, 1);
            for (uint32_t i = 0; i < prev->seen_count; i++) {
                if (has_order(later, prev->seen[i]))
                    continue;
                snprintf(why, len,
                         "client%d saw order %lld at %.3fs (op #%u) but a later read at %.3fs "
                         "(op #%u) no longer showed it: the second read went to an older copy",
                         later->client, (long long)prev->seen[i], secs(prev->complete_us), prev->id,
                         secs(later->invoke_us), later->id);
                return SIM_CHECK_VIOLATED;
            }
        }
    }
    return SIM_CHECK_HOLDS;
}

static enum sim_check converges(struct sim *s, const struct drill_expect *e, char *why, size_t len)
{
    if (!s->drained)
        return SIM_CHECK_SKIPPED; /* a liveness property: judged after a drain */
    if (s->drain_failed) {
        snprintf(why, len, "%s", s->drain_why);
        return SIM_CHECK_VIOLATED;
    }
    if (s->topo == &world_async_topo)
        return async_converges(s, e, why, len);
    if (s->topo == &world_offline_topo)
        return offline_converges(s, e, why, len);
    if (s->topo == &world_cluster_topo)
        return cluster_converges(s, e, why, len);
    if (!is_mirrored(s))
        return SIM_CHECK_HOLDS;
    return mirror_identical(s, e, why, len);
}

static const struct {
    const char *name;
    sim_checker fn;
} checkers[] = {
    {"no-lost-acks", no_lost_acks},
    {"mirror-identical", mirror_identical},
    {"stock-conserved", stock_conserved},
    {"order-totals", order_totals},
    {"integrity", integrity},
    {"read-your-writes", read_your_writes},
    {"monotonic-reads", monotonic_reads},
    {"converges", converges},
    {"rpo-bounded", async_rpo_bounded},
    {"replica-prefix", async_replica_prefix},
    {"stake-conserved", ledger_stake_conserved},
    {"outbox-accounted", offline_outbox_accounted},
    {"no-echo", cluster_no_echo},
    {"lb-balanced", cluster_lb_balanced},
};

sim_checker sim_checker_lookup(const char *invariant)
{
    for (size_t i = 0; i < sizeof(checkers) / sizeof(checkers[0]); i++)
        if (strcmp(checkers[i].name, invariant) == 0)
            return checkers[i].fn;
    return NULL;
}

void checkers_run(struct sim *s, const char *when)
{
    for (size_t i = 0; i < s->drill->expect_count; i++) {
        const struct drill_expect *e = &s->drill->expects[i];
        struct world_verdict *v = &s->verdicts[i];
        sim_checker fn = sim_checker_lookup(e->invariant);
        char why[REPORT_TEXT_MAX] = "";
        s->judged = 0;
        enum sim_check r = fn != NULL ? fn(s, e, why, sizeof(why)) : SIM_CHECK_SKIPPED;
        if (r == SIM_CHECK_SKIPPED)
            continue;
        v->checks++;
        /* the evaluations that judged the most: the state checkers re-judge
         * everything each time, so later ones see more */
        if (s->judged > v->witnesses)
            v->witnesses = s->judged;
        if (r == SIM_CHECK_HOLDS && s->judged == 0 && why[0] != '\0')
            snprintf(v->lacked, sizeof(v->lacked), "%.*s", (int)sizeof(v->lacked) - 1, why);
        if (r == SIM_CHECK_VIOLATED && !v->violated) {
            v->violated = true;
            v->first_us = s->now_us;
            snprintf(v->why, sizeof(v->why), "%s", why);
            world_trace(s, "-", "violated %s (%s): %s", e->invariant, when, why);
            world_mark(s, s->nodes[0].name, REPORT_VIOLATION, "%s: %s", e->invariant, why);
        }
    }
}
