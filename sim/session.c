/*
 * session.c — what each client's reads saw, by position (DESIGN.md §4,
 * "reads are judged by what they saw"). Every operation records the position
 * it reflects: a write the commit sequence it committed as, a read the
 * sequence of the copy (or the cache entry) that served it. Positions are
 * numbered per lineage (the mirror pair's sequence, an outbox and the copies
 * that apply it, one node's own commits); positions of different lineages do
 * not compare.
 *
 * When an operation is issued it notes the client's session so far: its
 * acknowledged write and its completed read with the highest positions. When
 * a read completes it is judged against them: read-your-writes (its position
 * is not below the client's own acknowledged write), monotonic-reads (not
 * below the client's earlier read), and, for an order list, its content (it
 * shows every order of the client's that its position claims: a read at
 * position 120 that misses an order committed at 110 lied about its
 * position). Each read is judged once, in O(1) (the order list in O(orders
 * listed)), so the checkers only count: the history costs O(n). Part of
 * libsim.
 */
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

/* ---- positions -------------------------------------------------------- */

/* The position op reflects, served on node n (just served). */
static void position_of(struct sim *s, int n, const struct sim_op *op, int *lineage, int64_t *pos)
{
    struct world_node *node = &s->nodes[n];
    if (s->topo != NULL && s->topo->position != NULL && s->topo->position(s, n, op, lineage, pos))
        return;
    if (node->shop != NULL && node->cfg.topology == SHOP_MIRROR) {
        /* the mirror pair's sequence: both copies number changes alike */
        int copy = 0;
        *lineage = n;
        if (op->is_write)
            *pos = op->err == 0 ? shop_last_seq(node->shop) : -1;
        else if (shop_read_position(node->shop, &copy, pos) != 0)
            *pos = -1;
        return;
    }
    /* one copy: its own commits, in order (the node applies its writes one by one) */
    *lineage = n;
    *pos = op->is_write ? (op->err == 0 ? (int64_t)node->commits : -1) : (int64_t)node->commits;
}

/* Sorted descending (as the shop lists them): is id among ids? */
static bool listed(const int64_t *ids, uint32_t count, int64_t id)
{
    uint32_t lo = 0, hi = count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ids[mid] == id)
            return true;
        if (ids[mid] > id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/*
 * The content of an order list read at lineage/pos: every order of the
 * client's acknowledged before the read was issued and committed at or below
 * pos must be listed. A list cut at the read's limit shows only the newest:
 * orders older than the last one listed are not judged.
 */
static void judge_orders(struct sim *s, struct sim_op *op, const int64_t *ids, uint32_t count,
                         bool truncated)
{
    struct world_client *c = &s->clients[op->client];
    op->order_id = 0;
    for (size_t i = c->checkout_count; i-- > 0;) {
        const struct sim_op *w = &s->ops[c->checkouts[i] - 1];
        if (w->lineage != op->lineage)
            break; /* older ones belong to another history */
        if (truncated && count > 0 && w->order_id < ids[count - 1])
            break;
        if (w->complete_us >= op->invoke_us || w->pos > op->pos)
            continue;
        if (!listed(ids, count, w->order_id)) {
            op->order_id = w->order_id; /* the newest one missing */
            op->session |= SIM_SESSION_LIED;
            return;
        }
    }
}

void session_read_at(struct sim *s, struct sim_op *op, int lineage, int64_t pos, const int64_t *ids,
                     uint32_t count, bool truncated)
{
    op->lineage = lineage;
    op->pos = pos;
    if (op->kind == DRILL_OP_ORDER_STATUS && op->err == 0) {
        op->seen_count = count;
        if (pos >= 0)
            judge_orders(s, op, ids, count, truncated);
    }
}

void session_served(struct sim *s, int n, struct sim_op *op)
{
    if (op->is_write && (op->err == 0 || platform_is_unknown(op->err)))
        s->nodes[n].commits++; /* it committed, or may have */
    int lineage = -1;
    int64_t pos = -1;
    position_of(s, n, op, &lineage, &pos);
    if (op->is_write) {
        op->lineage = lineage;
        op->pos = pos;
        return;
    }
    session_read_at(s, op, lineage, pos, s->read_ids, s->read_count, s->read_truncated);
}

/* ---- the session ------------------------------------------------------ */

void session_issued(struct sim *s, struct sim_op *op)
{
    const struct world_client *c = &s->clients[op->client];
    op->pos = -1;
    op->lineage = -1;
    op->after_write = c->best_write;
    op->after_read = c->best_read;
}

/* Is op (completed) ahead of the best one so far? A newer lineage replaces an older one. */
static bool ahead(const struct sim *s, uint32_t best, const struct sim_op *op)
{
    if (best == 0)
        return true;
    const struct sim_op *b = &s->ops[best - 1];
    return b->lineage != op->lineage || op->pos > b->pos;
}

static void judge_read(struct sim *s, struct sim_op *op)
{
    if (op->after_write != 0) {
        const struct sim_op *w = &s->ops[op->after_write - 1];
        if (w->lineage != op->lineage)
            op->session |= SIM_SESSION_W_OTHER;
        else
            op->session |= SIM_SESSION_W_JUDGED | (op->pos < w->pos ? SIM_SESSION_STALE : 0);
    }
    if ((op->session & SIM_SESSION_LIED) != 0)
        op->session |= SIM_SESSION_W_JUDGED;
    if (op->after_read != 0) {
        const struct sim_op *r = &s->ops[op->after_read - 1];
        if (r->lineage != op->lineage)
            op->session |= SIM_SESSION_R_OTHER;
        else
            op->session |= SIM_SESSION_R_JUDGED | (op->pos < r->pos ? SIM_SESSION_BACK : 0);
    }
}

void session_completed(struct sim *s, struct sim_op *op)
{
    if (op->outcome != SIM_OK || op->pos < 0)
        return;
    struct world_client *c = &s->clients[op->client];
    if (!op->is_write) {
        judge_read(s, op);
        if (ahead(s, c->best_read, op))
            c->best_read = op->id;
        return;
    }
    if (ahead(s, c->best_write, op))
        c->best_write = op->id;
    if (op->kind == DRILL_OP_CHECKOUT && op->order_id > 0) {
        if (c->checkout_count == c->checkout_cap) {
            size_t cap = c->checkout_cap ? 2 * c->checkout_cap : 16;
            uint32_t *grown = realloc(c->checkouts, cap * sizeof(*grown));
            if (grown == NULL)
                return; /* judge_orders then judges fewer orders; never wrongly */
            c->checkouts = grown;
            c->checkout_cap = cap;
        }
        c->checkouts[c->checkout_count++] = op->id;
    }
}

void session_release(struct sim *s)
{
    for (int c = 0; c <= DRILL_CLIENTS_MAX; c++) {
        free(s->clients[c].checkouts);
        s->clients[c].checkouts = NULL;
    }
}
