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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/*
 * The highest position copy must hold acknowledged writes up to right now
 * (INT64_MAX: all of them). policy=degrade lets the copy that failed fall
 * behind on purpose, the primary as much as the mirror: it must hold the
 * writes committed up to its own position, and everything once resynced.
 */
static int64_t copy_bound(struct sim *s, int copy)
{
    struct mirror_status st;
    if (!is_mirrored(s) || world_cfg(s)->policy != MIRROR_DEGRADE ||
        world_cfg(s)->ack == MIRROR_ACK_EARLY || shop_mirror_status(world_shop(s), &st) != 0 ||
        st.changes_behind == 0 || st.behind == NULL || strcmp(st.behind, copy_node(s, copy)) != 0)
        return INT64_MAX;
    struct shop_outbox_info info;
    if (world_cfg(s)->outbox) {
        /* a mirrored leader (mirror cluster): writes are numbered by its
         * outbox, which each copy keeps; reads are pinned to this copy */
        return shop_outbox_info(world_shop(s), &info) == 0 ? info.head_seq : 0;
    }
    return copy == 0 ? st.seq_primary : st.seq_mirror;
}

/* Writes whose effect is a row a checker can look up. */
static bool leaves_row(enum drill_op kind)
{
    return kind == DRILL_OP_CHECKOUT || kind == DRILL_OP_ORDER_CANCEL ||
           kind == DRILL_OP_USER_CREATE;
}

/* Acknowledged writes so far (what two equal copies prove they both hold):
 * those node n served, or all of them when n < 0. */
static uint64_t acked_writes(const struct sim *s, int n)
{
    uint64_t count = 0;
    for (size_t i = 0; i < s->op_count; i++)
        count += s->ops[i].outcome == SIM_OK && s->ops[i].is_write &&
                 (n < 0 || s->ops[i].node == n);
    return count;
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
        /* a created user is never renamed: another time is another user on a reused id */
        if (!err && u.updated_at_us != op->served_us)
            err = -ENOENT;
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

/* ---- incremental state: what earlier evaluations settled ---------------- */

/* Acknowledged writes verified on one copy: ops[0..next) are settled (judged,
 * or nothing to judge), `judged` of them were looked up. Valid while nothing
 * could have changed the copy behind the workload's back (key). */
struct ack_memo {
    bool valid;
    uint64_t epoch;
    int64_t bound, resyncs;
    int main;
    size_t next;
    uint64_t judged;
};

struct checker_memo {
    struct ack_memo acks[2];
    bool integrity_valid;
    uint64_t integrity_epoch, integrity_judged;
    uint64_t audit_evaluation;
    int audit_err[2];
    struct shop_audit audit[2];
    uint64_t digest_evaluation[2];
    int digest_err[2];
    char digest[2][65];
    /* mirror-identical (strict): evaluations it could not judge, and why */
    uint64_t pair_faulted, pair_repairing, pair_evaluation;
    size_t refused_next; /* ops[0..refused_next) settled: refused writes looked for */
};

static struct checker_memo *memo(struct sim *s)
{
    if (s->memo == NULL)
        s->memo = calloc(1, sizeof(*s->memo));
    return s->memo;
}

void checkers_release(struct sim *s)
{
    free(s->memo);
    s->memo = NULL;
}

/* A copy of the main shop's digest, once per evaluation (mirror-identical
 * and converges share it); another shop's (a mirrored leader's or local's)
 * is computed each time. */
static int digest_of(struct sim *s, shop *sh, int copy, char hex[65])
{
    struct checker_memo *cm = memo(s);
    if (cm == NULL || sh != world_shop(s))
        return shop_digest(sh, copy, hex);
    if (cm->digest_evaluation[copy] != s->evaluation) {
        cm->digest_evaluation[copy] = s->evaluation;
        cm->digest_err[copy] = shop_digest(world_shop(s), copy, cm->digest[copy]);
    }
    memcpy(hex, cm->digest[copy], 65);
    return cm->digest_err[copy];
}

static int64_t resyncs_now(struct sim *s)
{
    struct mirror_status st;
    return is_mirrored(s) && world_shop(s) != NULL && shop_mirror_status(world_shop(s), &st) == 0
               ? st.resyncs
               : 0;
}

/*
 * Looks up the acknowledged writes a copy must hold (copy >= 0: pinned on the
 * main shop, up to `bound`; copy -1: each on the node that acknowledged it).
 * Writes once found stay found until a crash, an open, a failover or a resync
 * (the epoch) or a new bound: until then each evaluation starts where the
 * last one settled, so a run's evaluations cost O(writes) in all.
 */
static enum sim_check acks_on(struct sim *s, int copy, int64_t bound, uint64_t *witnesses,
                              char *why, size_t len)
{
    struct checker_memo *cm = memo(s);
    struct ack_memo scratch = {0};
    struct ack_memo *m = cm != NULL ? &cm->acks[copy < 0 ? 0 : copy] : &scratch;
    int64_t resyncs = resyncs_now(s);
    if (!m->valid || m->epoch != s->epoch || m->bound != bound || m->main != s->main_node ||
        m->resyncs != resyncs || s->final_check)
        *m = (struct ack_memo){.valid = true,
                               .epoch = s->epoch,
                               .bound = bound,
                               .main = s->main_node,
                               .resyncs = resyncs};
    size_t next = m->next;
    uint64_t settled = m->judged, unsettled = 0;
    bool advancing = true;
    enum sim_check result = SIM_CHECK_HOLDS;
    for (size_t i = m->next; i < s->op_count; i++) {
        const struct sim_op *op = &s->ops[i];
        if (op->outcome == SIM_PENDING)
            advancing = false; /* may still be acknowledged: looked at again */
        enum sim_check r = SIM_CHECK_HOLDS;
        bool counted = false;
        if (op->outcome == SIM_OK && op->is_write &&
            (bound == INT64_MAX || (op->lineage == s->main_node && op->pos <= bound))) {
            shop *sh = world_shop(s);
            const char *where = copy >= 0 ? copy_node(s, copy) : NULL;
            if (copy < 0) {
                int n = s->topo->ack_node(s, op);
                sh = n >= 0 ? s->nodes[n].shop : NULL;
                where = n >= 0 ? s->nodes[n].name : NULL;
            }
            r = sh != NULL ? ack_present(sh, where, op, why, len) : SIM_CHECK_SKIPPED;
            counted = r != SIM_CHECK_SKIPPED && leaves_row(op->kind);
        }
        if (r == SIM_CHECK_VIOLATED) {
            m->valid = false;
            /* a violation judged what came before it and the write found missing */
            *witnesses = settled + unsettled + 1;
            return r;
        }
        if (r == SIM_CHECK_SKIPPED) {
            advancing = false;
            result = SIM_CHECK_SKIPPED;
        }
        if (advancing) {
            next = i + 1;
            settled += counted;
        } else {
            unsettled += counted;
        }
    }
    m->next = next;
    m->judged = settled;
    *witnesses = settled + unsettled;
    return result;
}

static enum sim_check no_lost_acks(struct sim *s, const struct drill_expect *e, char *why,
                                   size_t len)
{
    (void)e;
    uint64_t judged[2] = {0, 0};
    enum sim_check result;
    if (s->topo != NULL && s->topo->ack_node != NULL) {
        result = acks_on(s, -1, INT64_MAX, &judged[0], why, len);
    } else {
        if (world_shop(s) == NULL)
            return SIM_CHECK_SKIPPED;
        result = SIM_CHECK_HOLDS;
        for (int c = 0; c < (is_mirrored(s) ? 2 : 1) && result != SIM_CHECK_VIOLATED; c++) {
            shop_pin_reads(world_shop(s), c);
            enum sim_check r = acks_on(s, c, copy_bound(s, c), &judged[c], why, len);
            shop_pin_reads(world_shop(s), -1);
            if (r != SIM_CHECK_HOLDS)
                result = r;
        }
    }
    world_witness(s, judged[0] > judged[1] ? judged[0] : judged[1]);
    return result;
}

/*
 * strict refuses a write whole: one the client was told failed (not
 * unknown) is on neither copy once the pair is in sync. A checkout leaves a
 * row to look for (its order, stamped with the time it was served).
 */
static enum sim_check refused_absent(struct sim *s, char *why, size_t len)
{
    struct checker_memo *cm = memo(s);
    size_t next = cm != NULL ? cm->refused_next : 0;
    bool advancing = true;
    int64_t ids[64];
    for (size_t i = next; i < s->op_count; i++) {
        const struct sim_op *op = &s->ops[i];
        advancing = advancing && op->outcome != SIM_PENDING;
        if (advancing)
            next = i + 1;
        if (op->outcome != SIM_FAIL || op->kind != DRILL_OP_CHECKOUT || op->served_us < 0)
            continue;
        int64_t before = 0;
        bool done = false;
        while (!done) {
            int n = shop_order_page(world_shop(s), op->user_id, before, ids, 64);
            if (n < 0)
                return SIM_CHECK_SKIPPED; /* a copy cannot be read now: looked at again */
            bool last_page = n < 64;
            for (int k = 0; k < n && !done; k++) {
                struct shop_order o;
                if (shop_order_get(world_shop(s), ids[k], &o) != 0)
                    return SIM_CHECK_SKIPPED;
                before = ids[k];
                done = o.created_at_us < op->served_us; /* newest first: older ones now */
                if (o.created_at_us == op->served_us) {
                    snprintf(why, len,
                             "client%d's checkout (op #%u) was refused at %.3fs (%s), but order "
                             "%lld of that checkout is on both copies: policy=strict left a "
                             "refused write in place",
                             op->client, op->id, secs(op->complete_us), platform_strerror(op->err),
                             (long long)o.id);
                    return SIM_CHECK_VIOLATED;
                }
            }
            done = done || last_page;
        }
    }
    if (cm != NULL)
        cm->refused_next = next;
    return SIM_CHECK_HOLDS;
}

/*
 * mirror-identical. A pair that reports in sync must hold identical copies,
 * always. Out of sync, strict is judged only where the platform had its
 * chance: no disk of the pair failing on purpose, and the last such fault
 * healed longer ago than the platform's promised repair interval
 * (SHOP_MIRROR_REPAIR_MAX_US); every evaluation skipped otherwise is counted
 * and said. degrade may keep a copy behind until the drain. The naive mode
 * (ack=early) is judged every time: its drift is its bug.
 */
static enum sim_check pair_identical(struct sim *s, int mn, char *why, size_t len)
{
    shop *sh = s->nodes[mn].shop;
    const struct shop_config *cfg = &s->nodes[mn].cfg;
    if (sh == NULL || cfg->topology != SHOP_MIRROR)
        return SIM_CHECK_SKIPPED;
    struct mirror_status st;
    shop_mirror_status(sh, &st);
    bool naive = cfg->ack == MIRROR_ACK_EARLY;
    bool correct_degrade = cfg->policy == MIRROR_DEGRADE && !naive;
    bool strict = cfg->policy == MIRROR_STRICT && !naive;
    if (correct_degrade && st.changes_behind > 0) {
        if (s->drained) {
            snprintf(why, len, "after the drain, %s is still %lld change(s) behind %s", st.behind,
                     (long long)st.changes_behind, st.lead);
            return SIM_CHECK_VIOLATED;
        }
        return SIM_CHECK_SKIPPED; /* degraded on purpose: judged once resynced */
    }
    struct checker_memo *cm = memo(s);
    bool in_sync = st.state == MIRROR_IN_SYNC && st.changes_behind == 0;
    if (strict && !in_sync && cm != NULL) {
        int64_t healed_us;
        bool faulted = world_pair_disk_faulted(s, mn, &healed_us);
        bool repairing = !faulted && healed_us >= 0 &&
                         s->now_us - healed_us <= SHOP_MIRROR_REPAIR_MAX_US;
        if (faulted || repairing) {
            if (cm->pair_evaluation != s->evaluation) { /* converges asks too */
                cm->pair_evaluation = s->evaluation;
                cm->pair_faulted += faulted;
                cm->pair_repairing += repairing;
            }
            snprintf(why, len,
                     "%llu evaluation(s) skipped while the pair reported %s with a disk fault "
                     "armed, %llu within %dms of a fault's heal (the platform's repair "
                     "interval)",
                     (unsigned long long)cm->pair_faulted, mirror_state_name(st.state),
                     (unsigned long long)cm->pair_repairing, SHOP_MIRROR_REPAIR_MAX_US / 1000);
            return SIM_CHECK_HOLDS; /* nothing judged: counted, never a silent pass */
        }
    }
    char note[256] = "";
    if (strict && cm != NULL && cm->pair_faulted + cm->pair_repairing > 0)
        snprintf(note, sizeof(note),
                 "%llu evaluation(s) skipped while a disk fault of the pair was armed, %llu "
                 "within %dms of a fault's heal",
                 (unsigned long long)cm->pair_faulted, (unsigned long long)cm->pair_repairing,
                 SHOP_MIRROR_REPAIR_MAX_US / 1000);
    char a[65], b[65];
    if (digest_of(s, sh, 0, a) != 0 || digest_of(s, sh, 1, b) != 0)
        return SIM_CHECK_SKIPPED; /* a copy cannot be read now */
    if (strcmp(a, b) == 0) {
        if (strict && in_sync && sh == world_shop(s)) {
            shop_pin_reads(sh, 0);
            enum sim_check r = refused_absent(s, why, len);
            shop_pin_reads(sh, -1);
            if (r == SIM_CHECK_VIOLATED)
                return r;
        }
        world_witness(s, acked_writes(s, s->topo != NULL ? mn : -1));
        snprintf(why, len, "%s", note);
        return SIM_CHECK_HOLDS;
    }
    struct shop_audit *pa = calloc(2, sizeof(*pa));
    if (pa != NULL && shop_audit(sh, 0, &pa[0]) == 0 && shop_audit(sh, 1, &pa[1]) == 0)
        snprintf(why, len,
                 "at %.3fs %s and mirror hold different data%s: %s has %lld orders "
                 "and %lld users, mirror %lld orders and %lld users (positions %lld and %lld)",
                 secs(s->now_us), cfg->primary.node, in_sync ? " while the pair reports in sync" : "",
                 cfg->primary.node,
                 (long long)pa[0].orders, (long long)pa[0].users, (long long)pa[1].orders,
                 (long long)pa[1].users, (long long)st.seq_primary, (long long)st.seq_mirror);
    else
        snprintf(why, len, "at %.3fs %s and mirror hold different data%s", secs(s->now_us),
                 cfg->primary.node, in_sync ? " while the pair reports in sync" : "");
    free(pa);
    world_witness(s, acked_writes(s, s->topo != NULL ? mn : -1)); /* the pair was compared */
    return SIM_CHECK_VIOLATED;
}

/* Every mirrored node's pair: the primary's, or (mirror cluster, mirror
 * offline) the leader's or each local's, also after a failover moved the
 * main node elsewhere. A pair not judged now (down, degraded on purpose) is
 * judged at a later evaluation; the check is skipped only when none was. */
static enum sim_check mirror_identical(struct sim *s, const struct drill_expect *e, char *why,
                                       size_t len)
{
    (void)e;
    enum sim_check result = SIM_CHECK_SKIPPED;
    for (size_t n = 0; n < s->node_count; n++) {
        if (!world_is_mirrored(s, (int)n))
            continue;
        enum sim_check r = pair_identical(s, (int)n, why, len);
        if (r == SIM_CHECK_VIOLATED)
            return r;
        if (r == SIM_CHECK_HOLDS)
            result = r;
    }
    return result;
}

/* Runs fn on every copy that can be read now. */
static enum sim_check each_copy(struct sim *s, char *why, size_t len,
                                enum sim_check (*fn)(struct sim *, int, const struct shop_audit *,
                                                     char *, size_t))
{
    struct checker_memo *cm = memo(s);
    if (world_shop(s) == NULL || cm == NULL)
        return SIM_CHECK_SKIPPED;
    enum sim_check result = SIM_CHECK_SKIPPED;
    int copies = is_mirrored(s) ? 2 : 1;
    bool fresh = cm->audit_evaluation != s->evaluation;
    cm->audit_evaluation = s->evaluation; /* one audit per copy serves every checker */
    for (int c = 0; c < copies && result != SIM_CHECK_VIOLATED; c++) {
        if (fresh)
            cm->audit_err[c] = shop_audit(world_shop(s), c, &cm->audit[c]);
        if (cm->audit_err[c] != 0)
            continue;
        result = fn(s, c, &cm->audit[c], why, len);
    }
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
    if (s->judged == 0) /* the orders of the first copy that could be audited */
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
    world_witness(s, s->integrity_checks); /* after every open */
    /* torn pages come from crashes: with no crash or open since the last
     * clean check, that check still answers */
    struct checker_memo *cm = memo(s);
    if (cm != NULL && cm->integrity_valid && cm->integrity_epoch == s->epoch) {
        world_witness(s, cm->integrity_judged);
        return SIM_CHECK_HOLDS;
    }
    uint64_t judged = 0;
    int copies = is_mirrored(s) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        /* an injected fault that fired during the check answered it, not the database */
        uint64_t before = world_faults_fired(s);
        int err = shop_integrity(world_shop(s), c);
        if (world_faults_fired(s) != before)
            continue;
        judged += err == 0 || err == -EBADMSG;
        if (err == -EBADMSG) {
            snprintf(why, len, "PRAGMA integrity_check failed on %s at %.3fs: %s", copy_node(s, c),
                     secs(s->now_us), shop_errmsg(world_shop(s)));
            return SIM_CHECK_VIOLATED;
        }
    }
    world_witness(s, judged);
    if (cm != NULL && judged == (uint64_t)copies) {
        cm->integrity_valid = true;
        cm->integrity_epoch = s->epoch;
        cm->integrity_judged = judged;
    }
    return SIM_CHECK_HOLDS;
}

/* ---- session guarantees: the reads session.c judged as they completed ---- */

static const char *served_by(const struct sim *s, const struct sim_op *op)
{
    return op->node >= 0 && (size_t)op->node < s->node_count ? s->nodes[op->node].name : "?";
}

/* The client's acknowledged checkout that placed order_id (for explanations). */
static const struct sim_op *placed(const struct sim *s, const struct sim_op *read)
{
    const struct world_client *c = &s->clients[read->client];
    for (size_t i = c->checkout_count; i-- > 0;) {
        const struct sim_op *w = &s->ops[c->checkouts[i] - 1];
        if (w->order_id == read->order_id && w->lineage == read->lineage)
            return w;
    }
    return NULL;
}

static void explain_stale(struct sim *s, const struct sim_op *r, char *why, size_t len)
{
    if ((r->session & SIM_SESSION_LIED) && r->kind != DRILL_OP_ORDER_STATUS) {
        snprintf(why, len,
                 "client%d's %s of product %lld at %.3fs (op #%u, served by %s from its cache) "
                 "claimed position %lld and showed %lld in stock, but at that position the "
                 "product had %lld: the read's position lied about what it held",
                 r->client, drill_op_name(r->kind), (long long)r->product_id,
                 secs(r->invoke_us), r->id, served_by(s, r), (long long)r->pos,
                 (long long)r->total_cents, (long long)r->order_id);
        return;
    }
    if (r->session & SIM_SESSION_LIED) {
        const struct sim_op *w = placed(s, r);
        snprintf(why, len,
                 "client%d's order list at %.3fs (op #%u, served by %s) claimed position %lld "
                 "but did not show order %lld, which the client placed at position %lld (op "
                 "#%u, acknowledged at %.3fs): the read's position lied about what it held",
                 r->client, secs(r->invoke_us), r->id, served_by(s, r), (long long)r->pos,
                 (long long)r->order_id, (long long)(w ? w->pos : -1), w ? w->id : 0,
                 secs(w ? w->complete_us : 0));
        return;
    }
    const struct sim_op *w = &s->ops[r->after_write - 1];
    snprintf(why, len,
             "client%d's %s at %.3fs (op #%u) was served by %s at position %lld, but the "
             "client's own %s (op #%u, acknowledged at %.3fs) committed at position %lld: the "
             "read did not reflect the client's own acknowledged write",
             r->client, drill_op_name(r->kind), secs(r->invoke_us), r->id, served_by(s, r),
             (long long)r->pos, drill_op_name(w->kind), w->id, secs(w->complete_us),
             (long long)w->pos);
}

/* Reads (completed, judged by session.c) with `judged` set; the first with `bad`. */
static uint64_t tally(struct sim *s, unsigned judged, unsigned other, unsigned bad,
                      const struct sim_op **first_bad, uint64_t *others)
{
    uint64_t n = 0;
    *first_bad = NULL;
    *others = 0;
    for (size_t i = 0; i < s->op_count; i++) {
        const struct sim_op *op = &s->ops[i];
        if (op->is_write || op->outcome != SIM_OK)
            continue;
        n += (op->session & judged) != 0;
        *others += (op->session & judged) == 0 && (op->session & other) != 0;
        if (*first_bad == NULL && (op->session & bad) != 0)
            *first_bad = op;
    }
    return n;
}

static void note_others(uint64_t others, const char *what, char *why, size_t len)
{
    if (others > 0)
        snprintf(why, len,
                 "%llu read(s) came after %s in another copy's history (a failover): positions "
                 "of different histories do not compare, so those were not judged",
                 (unsigned long long)others, what);
}

static enum sim_check read_your_writes(struct sim *s, const struct drill_expect *e, char *why,
                                       size_t len)
{
    (void)e;
    const struct sim_op *bad;
    uint64_t others;
    world_witness(s, tally(s, SIM_SESSION_W_JUDGED, SIM_SESSION_W_OTHER,
                           SIM_SESSION_STALE | SIM_SESSION_LIED, &bad, &others));
    if (bad != NULL) {
        explain_stale(s, bad, why, len);
        return SIM_CHECK_VIOLATED;
    }
    note_others(others, "the client's own write", why, len);
    return SIM_CHECK_HOLDS;
}

static enum sim_check monotonic_reads(struct sim *s, const struct drill_expect *e, char *why,
                                      size_t len)
{
    (void)e;
    const struct sim_op *bad;
    uint64_t others;
    world_witness(
        s, tally(s, SIM_SESSION_R_JUDGED, SIM_SESSION_R_OTHER, SIM_SESSION_BACK, &bad, &others));
    if (bad != NULL) {
        const struct sim_op *p = &s->ops[bad->after_read - 1];
        snprintf(why, len,
                 "client%d's %s at %.3fs (op #%u) was served by %s at position %lld, then its "
                 "%s at %.3fs (op #%u) by %s at position %lld: the second read went back to an "
                 "older state",
                 bad->client, drill_op_name(p->kind), secs(p->invoke_us), p->id, served_by(s, p),
                 (long long)p->pos, drill_op_name(bad->kind), secs(bad->invoke_us), bad->id,
                 served_by(s, bad), (long long)bad->pos);
        return SIM_CHECK_VIOLATED;
    }
    note_others(others, "an earlier read", why, len);
    return SIM_CHECK_HOLDS;
}

static enum sim_check converges_now(struct sim *s, const struct drill_expect *e, char *why,
                                    size_t len)
{
    enum sim_check r = SIM_CHECK_HOLDS;
    if (s->topo == &world_async_topo)
        r = async_converges(s, e, why, len);
    else if (s->topo == &world_offline_topo)
        r = offline_converges(s, e, why, len);
    else if (s->topo == &world_cluster_topo)
        r = cluster_converges(s, e, why, len);
    if (s->topo != NULL && (r != SIM_CHECK_HOLDS || !world_is_mirrored(s, world_mirror_node(s))))
        return r;
    if (s->topo == NULL && !is_mirrored(s))
        return SIM_CHECK_HOLDS;
    if (s->topo == NULL)
        return mirror_identical(s, e, why, len);
    /* a combination (mirror async|cluster|offline): the mirrored node's
     * pair converges too, on top of the nodes' replication */
    char between[REPORT_TEXT_MAX];
    snprintf(between, sizeof(between), "%s", why);
    r = mirror_identical(s, e, why, len);
    if (r == SIM_CHECK_HOLDS)
        snprintf(why, len, "%s", between);
    return r;
}

static enum sim_check converges(struct sim *s, const struct drill_expect *e, char *why, size_t len)
{
    if (!s->drained)
        return SIM_CHECK_SKIPPED; /* a liveness property: judged after a drain */
    if (s->drain_failed) {
        snprintf(why, len, "%s", s->drain_why);
        world_witness(s, acked_writes(s, -1)); /* the drain waited for them all, in vain */
        return SIM_CHECK_VIOLATED;
    }
    /* A fault armed after the drain that fires while the copies are read
     * (a digest that fails on an injected EIO) answered the check, not the
     * system: not judged now, as integrity (fuzz-found/converges-reads-
     * through-a-fault-armed-after-the-drain). */
    uint64_t fired = world_faults_fired(s);
    enum sim_check r = converges_now(s, e, why, len);
    return r == SIM_CHECK_VIOLATED && world_faults_fired(s) != fired ? SIM_CHECK_SKIPPED : r;
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

/* CPU time spent judging, for the benchmark (never in a trace or report). */
static uint64_t checker_ns[DRILL_EXPECTS_MAX];

static uint64_t cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t sim_checker_time_ns(const char *invariant)
{
    uint64_t total = 0;
    for (size_t i = 0; i < DRILL_EXPECTS_MAX; i++)
        total += invariant == NULL || (i < sizeof(checkers) / sizeof(checkers[0]) &&
                                       strcmp(checkers[i].name, invariant) == 0)
                     ? checker_ns[i]
                     : 0;
    return total;
}

/* The index of the invariant in checkers[] (for the time it takes). */
static size_t checker_index(const char *invariant)
{
    for (size_t i = 0; i < sizeof(checkers) / sizeof(checkers[0]); i++)
        if (strcmp(checkers[i].name, invariant) == 0)
            return i;
    return 0;
}

void checkers_run(struct sim *s, const char *when)
{
    s->evaluation++;
    for (size_t i = 0; i < s->drill->expect_count; i++) {
        const struct drill_expect *e = &s->drill->expects[i];
        struct world_verdict *v = &s->verdicts[i];
        sim_checker fn = sim_checker_lookup(e->invariant);
        char why[REPORT_TEXT_MAX] = "";
        s->judged = 0;
        uint64_t t0 = cpu_ns();
        enum sim_check r = fn != NULL ? fn(s, e, why, sizeof(why)) : SIM_CHECK_SKIPPED;
        checker_ns[checker_index(e->invariant)] += cpu_ns() - t0;
        if (r == SIM_CHECK_SKIPPED)
            continue;
        v->checks++;
        /* the evaluations that judged the most: the state checkers re-judge
         * everything each time, so later ones see more */
        if (s->judged > v->witnesses)
            v->witnesses = s->judged;
        if (r == SIM_CHECK_HOLDS) /* its note of this evaluation, if any */
            snprintf(v->lacked, sizeof(v->lacked), "%.*s", (int)sizeof(v->lacked) - 1, why);
        if (r == SIM_CHECK_VIOLATED && !v->violated) {
            v->violated = true;
            v->first_us = s->now_us;
            snprintf(v->why, sizeof(v->why), "%s", why);
            world_trace(s, "-", "violated %s (%s): %s", e->invariant, when, why);
            story_violation(s, i, why); /* marks it where it happened, tells how */
        }
    }
}
