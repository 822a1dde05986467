/*
 * async.c — asynchronous replication, written once (DESIGN.md §2): the
 * primary's outbox is shipped to the secondary in ordered batches, applied
 * there idempotently by sequence (shop_replica_apply) and acknowledged back.
 *
 * The shipper keeps three positions, pruned_through <= acked <= sent <= head:
 * acked is the highest position the secondary confirmed (it only moves
 * forward), sent the highest change shipped since the last go-back. Up to
 * NODE_ASYNC_WINDOW_BATCHES batches travel unacknowledged (sent - acked is
 * at most that many batches). A loss is learned two ways: an ack saying
 * "gap" (a batch arrived past a hole: go back to the ack's position now, once
 * per hole) and no progress for the retransmission timeout (go back to acked,
 * doubling the timeout up to NODE_ASYNC_RTO_MAX_US). An ack below acked is
 * stale (reordered behind a newer one) and says nothing: going back below
 * acked would ask the outbox for changes it already pruned. The outbox is
 * pruned up to acked.
 *
 * Failover: node_promote on the secondary records the RPO accounting and
 * fences the old primary by message (repeated whenever the old primary
 * ships again); node_fence on the primary stops it for good.
 *
 * The naive outbox=off copies the whole database every
 * NODE_ASYNC_SNAPSHOT_EVERY_US; the secondary keeps the newest copy.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/mutants.h"
#include "platform/node_impl.h"

struct async_state {
    uint32_t batch;          /* changes per batch */
    int64_t window;          /* changes unacknowledged at most: batches x batch */
    /* the primary */
    int64_t head, head_at_us;
    int64_t acked, sent, pruned_through;
    int64_t progress_us;     /* mono: when acked last moved, or the first send after idle */
    int64_t rto_us;
    int64_t gap_rewound;     /* the position a gap report last sent us back to, -1: none */
    int64_t last_commit_us;  /* wall */
    int64_t fenced_head;
    bool stuck;
    char stuck_why[SHOP_ERRMSG_MAX];
    uint64_t batches_sent, timeouts, gap_resends, acks, stale_acks, snapshots_sent;
    /* the secondary */
    int64_t position, position_at_us, position_max;
    bool moved_back;
    int64_t moved_back_from, moved_back_to, moved_back_at_us;
    int64_t snapshot_as_of_us;
    int64_t last_lag_us;
    uint64_t batches_applied, changes_applied, duplicates, gaps, snapshots_applied, apply_errors;
    struct node_failover failover;
};

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

static int64_t rto_base(const struct node *n)
{
    return NODE_ASYNC_RTO_MIN_US + 2 * n->cfg.link_delay_us;
}

/* The invariants of the shipper, checked after every step that moves them. */
static void check_positions(const struct async_state *a)
{
    assert(a->pruned_through <= a->acked);
    assert(a->acked <= a->sent);
    assert(a->sent <= a->head || a->stuck);
    assert(a->sent - a->acked <= a->window);
}

int async_create(struct node *n)
{
    if (n->role != NODE_ASYNC_PRIMARY && n->role != NODE_ASYNC_SECONDARY)
        return -ENOSYS;
    if (n->peer[0] == '\0')
        return -EINVAL;
    struct async_state *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    uint32_t batch = n->cfg.batch_changes;
    a->batch = batch == 0 || batch > NODE_ASYNC_BATCH_CHANGES ? NODE_ASYNC_BATCH_CHANGES : batch;
    a->window = (int64_t)NODE_ASYNC_WINDOW_BATCHES * a->batch;
    a->gap_rewound = -1;
    n->async = a;
    n->ops = n->role == NODE_ASYNC_PRIMARY ? &node_async_primary_ops : &node_async_secondary_ops;
    return 0;
}

static void async_release(struct node *n)
{
    free(n->async);
    n->async = NULL;
}

/* ---- the primary: shipping ---------------------------------------------- */

static void become_stuck(struct node *n, const char *why)
{
    struct async_state *a = n->async;
    if (!a->stuck)
        node_trace(n, "replication to %s is stuck: %s", n->peer, why);
    a->stuck = true;
    snprintf(a->stuck_why, sizeof(a->stuck_why), "%s", why);
}

/* Ships one batch after `sent`, at most up to the window's end. */
static int ship_batch(struct node *n)
{
    struct async_state *a = n->async;
    int64_t room = a->acked + a->window - a->sent;
    size_t max = room < (int64_t)a->batch ? (size_t)room : a->batch;
    struct shop_batch b;
    int err = shop_outbox_read(n->shop, a->sent, max, NODE_ASYNC_BATCH_BYTES_MAX, &b);
    if (err == -ERANGE) {
        become_stuck(n, shop_errmsg(n->shop));
        return err;
    }
    if (err) {
        node_trace(n, "cannot read the outbox: %s", shop_errmsg(n->shop));
        return err;
    }
    if (b.count > 0) {
        assert(b.first_seq == a->sent + 1 && b.last_seq <= a->acked + a->window);
        struct node_msg m = {.type = NODE_MSG_ASYNC_BATCH, .a = b.first_seq, .b = b.last_seq,
                             .data = b.data, .len = b.len};
        err = node_send(n, n->peer, &m);
        if (!err) {
            node_trace(n, "ships changes %lld..%lld (%u) to %s", (long long)b.first_seq,
                       (long long)b.last_seq, b.count, n->peer);
            if (a->sent == a->acked)
                a->progress_us = node_mono_us(n);
            a->sent = b.last_seq;
            a->batches_sent++;
        }
    }
    shop_batch_release(&b);
    check_positions(a);
    return err ? err : (int)b.count;
}

/* No ack moved acked for a retransmission timeout: go back to it. */
static void check_timeout(struct node *n)
{
    struct async_state *a = n->async;
    int64_t now = node_mono_us(n);
    if (a->sent <= a->acked || now - a->progress_us < a->rto_us)
        return;
    node_trace(n, "no ack from %s for %.3fs: resending from change %lld", n->peer,
               secs(now - a->progress_us), (long long)(a->acked + 1));
    a->sent = a->acked;
    a->timeouts++;
    a->gap_rewound = -1;
    a->rto_us = a->rto_us * 2 > NODE_ASYNC_RTO_MAX_US ? NODE_ASYNC_RTO_MAX_US : a->rto_us * 2;
}

static void pump(struct node *n)
{
    struct async_state *a = n->async;
    if (n->fenced || a->stuck)
        return;
    struct shop_outbox_info info;
    if (shop_outbox_info(n->shop, &info) != 0) {
        node_trace(n, "cannot read the outbox: %s", shop_errmsg(n->shop));
        node_arm(n, NODE_TIMER_PUMP, node_next_tick_us(n, NODE_ASYNC_PUMP_US));
        return;
    }
    a->head = info.head_seq;
    a->head_at_us = info.head_at_us;
    check_timeout(n);
    for (int i = 0; i < NODE_ASYNC_WINDOW_BATCHES && a->sent < a->head &&
                    a->sent - a->acked < a->window;
         i++) {
        if (ship_batch(n) <= 0)
            break;
    }
    if (!a->stuck && (a->sent < a->head || a->sent > a->acked))
        node_arm(n, NODE_TIMER_PUMP, node_next_tick_us(n, NODE_ASYNC_PUMP_US));
}

static void take_snapshot(struct node *n)
{
    struct async_state *a = n->async;
    if (n->fenced)
        return;
    void *data = NULL;
    size_t len = 0;
    if (shop_snapshot(n->shop, &data, &len) != 0) {
        node_trace(n, "cannot copy the database: %s", shop_errmsg(n->shop));
    } else {
        struct node_msg m = {.type = NODE_MSG_ASYNC_SNAPSHOT, .a = node_wall_us(n),
                             .data = data, .len = len};
        if (node_send(n, n->peer, &m) == 0) {
            a->snapshots_sent++;
            node_trace(n, "copies the whole database (%zu bytes) to %s", len, n->peer);
        }
        free(data);
    }
    node_arm(n, NODE_TIMER_SNAPSHOT, node_next_tick_us(n, NODE_ASYNC_SNAPSHOT_EVERY_US));
}

/*
 * What the shipper knows after a (re)start comes from the shop: the outbox
 * holds nothing at or below what was acknowledged, so that is where it
 * resumes; the secondary's acks then move it up.
 */
static int primary_start(struct node *n)
{
    struct async_state *a = n->async;
    a->stuck = false;
    a->gap_rewound = -1;
    a->rto_us = rto_base(n);
    if (n->fenced)
        return 0; /* for good */
    if (n->cfg.outbox_off) {
        if (n->restarts == 0)
            node_trace(n, "async (naive outbox=off): the whole database is copied to %s every "
                          "%.3fs",
                       n->peer, secs(NODE_ASYNC_SNAPSHOT_EVERY_US));
        node_arm(n, NODE_TIMER_SNAPSHOT, node_next_tick_us(n, NODE_ASYNC_SNAPSHOT_EVERY_US));
        return 0;
    }
    struct shop_outbox_info info;
    int err = shop_outbox_info(n->shop, &info);
    if (err) {
        node_trace(n, "cannot read the outbox: %s", shop_errmsg(n->shop));
        return err;
    }
    a->head = info.head_seq;
    a->head_at_us = info.head_at_us;
    int64_t held = info.oldest_seq > 0 ? info.oldest_seq - 1 : info.head_seq;
    a->pruned_through = held;
    if (held > a->acked)
        a->acked = held;
    a->sent = a->acked;
    if (a->acked > a->head) {
        char why[SHOP_ERRMSG_MAX];
        snprintf(why, sizeof(why), "%s confirmed change %lld, beyond this outbox's last (%lld): "
                 "the primary lost changes it had shipped", n->peer, (long long)a->acked,
                 (long long)a->head);
        become_stuck(n, why);
        return 0;
    }
    if (n->restarts == 0)
        node_trace(n, "async: outbox shipped to %s in batches of up to %u, %d unacknowledged "
                      "at most",
                   n->peer, a->batch, NODE_ASYNC_WINDOW_BATCHES);
    else
        node_trace(n, "resumes shipping to %s after change %lld", n->peer, (long long)a->sent);
    check_positions(a);
    if (a->acked < a->head)
        node_arm(n, NODE_TIMER_PUMP, node_next_tick_us(n, NODE_ASYNC_PUMP_US));
    return 0;
}

static void on_ack(struct node *n, int64_t position, bool gap)
{
    struct async_state *a = n->async;
    a->acks++;
    if (position < a->acked) {
        a->stale_acks++; /* overtaken by a newer ack: it says nothing now */
        return;
    }
    if (position > a->head) {
        struct shop_outbox_info info;
        if (shop_outbox_info(n->shop, &info) == 0)
            a->head = info.head_seq;
        if (position > a->head) {
            char why[SHOP_ERRMSG_MAX];
            snprintf(why, sizeof(why), "%s holds change %lld, beyond this outbox's last (%lld)",
                     n->peer, (long long)position, (long long)a->head);
            become_stuck(n, why);
            return;
        }
    }
    if (position > a->acked) {
        a->acked = position;
        a->progress_us = node_mono_us(n);
        a->rto_us = rto_base(n);
        a->gap_rewound = -1;
        if (a->sent < a->acked)
            a->sent = a->acked;
        if (shop_outbox_prune(n->shop, a->acked) == 0)
            a->pruned_through = a->acked;
    }
    if (gap && position < a->sent && position != a->gap_rewound) {
        node_trace(n, "%s is missing changes after %lld: resending from there", n->peer,
                   (long long)position);
        a->sent = position; /* == acked: a reordered or dropped batch, go back now */
        a->gap_rewound = position;
        a->gap_resends++;
        a->progress_us = node_mono_us(n);
    }
    check_positions(a);
    if (a->sent < a->head)
        node_arm(n, NODE_TIMER_PUMP, node_next_tick_us(n, NODE_ASYNC_PUMP_US));
}

static int fence(struct node *n)
{
    struct async_state *a = n->async;
    if (n->fenced || mutant_is(MUTANT_ASYNC_FAILOVER_NO_FENCE))
        return 0;
    n->fenced = true;
    struct shop_outbox_info info;
    if (n->shop != NULL && !n->cfg.outbox_off && shop_outbox_info(n->shop, &info) == 0)
        a->head = info.head_seq;
    a->fenced_head = a->head;
    node_trace(n, "fenced: serves and ships nothing more (its last change: %lld; %s confirmed "
                  "%lld)",
               (long long)a->fenced_head, n->peer, (long long)a->acked);
    return 0;
}

static int primary_message(struct node *n, const char *from, const struct node_msg *m)
{
    if (strcmp(from, n->peer) != 0) {
        node_trace(n, "%s from %s ignored: not its secondary", node_msg_type_name(m->type), from);
        return 0;
    }
    if (m->type == NODE_MSG_ASYNC_FENCE)
        return fence(n);
    if (m->type != NODE_MSG_ASYNC_ACK || n->fenced || n->cfg.outbox_off)
        return 0;
    on_ack(n, m->a, m->b != 0);
    return 0;
}

static int primary_timer(struct node *n, enum node_timer t)
{
    if (t == NODE_TIMER_SNAPSHOT && n->cfg.outbox_off)
        take_snapshot(n);
    else if (t == NODE_TIMER_PUMP && !n->cfg.outbox_off)
        pump(n);
    return 0;
}

static int primary_commit(struct node *n, int64_t seq)
{
    struct async_state *a = n->async;
    a->last_commit_us = node_wall_us(n);
    if (n->cfg.outbox_off || n->fenced)
        return 0;
    if (seq > a->head)
        a->head = seq;
    node_arm(n, NODE_TIMER_PUMP, node_next_tick_us(n, NODE_ASYNC_PUMP_US));
    return 0;
}

static void primary_peer_up(struct node *n, const char *peer)
{
    struct async_state *a = n->async;
    if (strcmp(peer, n->peer) != 0 || n->cfg.outbox_off || n->fenced || a->sent == a->acked)
        return;
    node_trace(n, "%s is back: resending from change %lld", n->peer, (long long)(a->acked + 1));
    a->sent = a->acked; /* what was in flight died with it */
    a->gap_rewound = -1;
    node_arm(n, NODE_TIMER_PUMP, node_next_tick_us(n, NODE_ASYNC_PUMP_US));
}

static void primary_view(const struct node *n, struct node_view *out)
{
    out->writable = !n->fenced;
    snprintf(out->writer, sizeof(out->writer), "%s", n->fenced ? "" : n->name);
    out->position = n->async->head;
}

static enum node_async_state primary_state(const struct node *n)
{
    const struct async_state *a = n->async;
    if (n->fenced)
        return NODE_ASYNC_FENCED;
    if (a->stuck)
        return NODE_ASYNC_STUCK;
    if (a->timeouts + a->gap_resends > 0 && a->sent < a->head && a->sent == a->acked)
        return NODE_ASYNC_RETRYING;
    return a->acked >= a->head ? NODE_ASYNC_IDLE : NODE_ASYNC_STREAMING;
}

static void fill_status(const struct node *n, struct node_async_status *s)
{
    const struct async_state *a = n->async;
    s->outbox_off = n->cfg.outbox_off;
    s->batch_changes = a->batch;
    s->head_seq = a->head;
    s->head_at_us = a->head_at_us;
    s->acked = a->acked;
    s->sent = a->sent;
    s->pruned_through = a->pruned_through;
    s->rto_us = a->rto_us;
    s->last_commit_us = a->last_commit_us;
    s->fenced_head_seq = a->fenced_head;
    memcpy(s->stuck_why, a->stuck_why, sizeof(s->stuck_why));
    s->batches_sent = a->batches_sent;
    s->timeouts = a->timeouts;
    s->gap_resends = a->gap_resends;
    s->acks = a->acks;
    s->stale_acks = a->stale_acks;
    s->snapshots_sent = a->snapshots_sent;
    s->position = a->position;
    s->position_at_us = a->position_at_us;
    s->position_max = a->position_max;
    s->moved_back = a->moved_back;
    s->moved_back_from = a->moved_back_from;
    s->moved_back_to = a->moved_back_to;
    s->moved_back_at_us = a->moved_back_at_us;
    s->snapshot_as_of_us = a->snapshot_as_of_us;
    s->last_lag_us = a->last_lag_us;
    s->batches_applied = a->batches_applied;
    s->changes_applied = a->changes_applied;
    s->duplicates = a->duplicates;
    s->gaps = a->gaps;
    s->snapshots_applied = a->snapshots_applied;
    s->apply_errors = a->apply_errors;
    s->failover = a->failover;
}

static void primary_status(const struct node *n, struct node_status *out)
{
    fill_status(n, &out->async);
    out->async.state = primary_state(n);
}

const struct node_ops node_async_primary_ops = {
    .start = primary_start,
    .message = primary_message,
    .timer = primary_timer,
    .commit = primary_commit,
    .peer_up = primary_peer_up,
    .fence = fence,
    .view = primary_view,
    .status = primary_status,
    .release = async_release,
};

/* ---- the secondary: applying ----------------------------------------------- */

static void record_position(struct node *n, int64_t position, int64_t position_at_us)
{
    struct async_state *a = n->async;
    if (position < a->position_max && !a->moved_back) {
        a->moved_back = true;
        a->moved_back_from = a->position_max;
        a->moved_back_to = position;
        a->moved_back_at_us = node_wall_us(n);
        node_trace(n, "its position moved back from %lld to %lld", (long long)a->position_max,
                   (long long)position);
    }
    if (position > a->position_max)
        a->position_max = position;
    a->position = position;
    a->position_at_us = position_at_us;
}

static int secondary_start(struct node *n)
{
    struct async_state *a = n->async;
    if (a->failover.done || n->cfg.outbox_off)
        return 0;
    int64_t seq = 0, at = 0;
    int err = shop_replica_position(n->shop, n->peer, &seq, &at);
    if (err) {
        node_trace(n, "cannot read its position: %s", shop_errmsg(n->shop));
        return err;
    }
    record_position(n, seq, at);
    return 0;
}

static int on_batch(struct node *n, const char *from, const struct node_msg *m)
{
    struct async_state *a = n->async;
    struct shop_apply_result r;
    int err = shop_replica_apply(n->shop, from, m->data, m->len, &r);
    if (err) {
        a->apply_errors++;
        node_trace(n, "cannot apply changes %lld..%lld: %s", (long long)m->a, (long long)m->b,
                   shop_errmsg(n->shop));
        return err == -ECANCELED ? err : 0; /* no ack: the primary resends */
    }
    record_position(n, r.position, r.position_at_us);
    a->duplicates += r.skipped;
    if (r.applied > 0) {
        a->batches_applied++;
        a->changes_applied += r.applied;
        a->last_lag_us = node_wall_us(n) - r.position_at_us;
        node_trace(n, "applied %u change(s) up to %lld (%u duplicate); lag %.3fs", r.applied,
                   (long long)r.position, r.skipped, secs(a->last_lag_us));
    } else {
        if (r.gap)
            a->gaps++;
        node_trace(n, "batch %lld..%lld: %s (position %lld)", (long long)m->a, (long long)m->b,
                   r.gap ? "a gap, nothing applied" : "all duplicates", (long long)r.position);
    }
    struct node_msg ack = {.type = NODE_MSG_ASYNC_ACK, .a = r.position, .b = r.gap};
    node_send(n, from, &ack);
    return 0;
}

static int on_snapshot(struct node *n, const struct node_msg *m)
{
    struct async_state *a = n->async;
    if (m->a <= a->snapshot_as_of_us)
        return 0; /* an older copy than the one it holds */
    if (shop_restore(n->shop, m->data, m->len) != 0) {
        a->apply_errors++;
        node_trace(n, "cannot replace the database with the copy: %s", shop_errmsg(n->shop));
        return 0;
    }
    a->snapshot_as_of_us = m->a;
    a->position_at_us = m->a;
    a->snapshots_applied++;
    a->last_lag_us = node_wall_us(n) - m->a;
    node_trace(n, "replaced its database with the copy taken at %.3fs", secs(m->a));
    return 0;
}

static int secondary_message(struct node *n, const char *from, const struct node_msg *m)
{
    struct async_state *a = n->async;
    if (strcmp(from, n->peer) != 0) {
        node_trace(n, "%s from %s ignored: not its primary", node_msg_type_name(m->type), from);
        return 0;
    }
    if (a->failover.done) {
        if (m->type == NODE_MSG_ASYNC_BATCH)
            node_trace(n, "batch %lld..%lld from the old primary ignored: promoted",
                       (long long)m->a, (long long)m->b);
        if (m->type == NODE_MSG_ASYNC_BATCH || m->type == NODE_MSG_ASYNC_SNAPSHOT) {
            struct node_msg f = {.type = NODE_MSG_ASYNC_FENCE, .a = a->failover.position};
            node_send(n, from, &f);
        }
        return 0;
    }
    if (m->type == NODE_MSG_ASYNC_BATCH)
        return on_batch(n, from, m);
    if (m->type == NODE_MSG_ASYNC_SNAPSHOT)
        return on_snapshot(n, m);
    return 0;
}

static int promote(struct node *n)
{
    struct async_state *a = n->async;
    if (a->failover.done)
        return -EALREADY;
    a->failover.done = true;
    a->failover.at_us = node_wall_us(n);
    a->failover.position = a->position;
    a->failover.position_at_us = a->position_at_us;
    a->failover.window_us = a->failover.at_us - a->position_at_us;
    node_trace(n, "promoted: takes writes from now on, holding the old primary's changes up to "
                  "%lld (committed at %.3fs)",
               (long long)a->failover.position, secs(a->failover.position_at_us));
    struct node_msg f = {.type = NODE_MSG_ASYNC_FENCE, .a = a->failover.position};
    node_send(n, n->peer, &f);
    return 0;
}

static void secondary_view(const struct node *n, struct node_view *out)
{
    const struct async_state *a = n->async;
    out->writable = a->failover.done;
    snprintf(out->writer, sizeof(out->writer), "%s", a->failover.done ? n->name : n->peer);
    out->position = a->position;
}

static void secondary_status(const struct node *n, struct node_status *out)
{
    fill_status(n, &out->async);
    out->async.state = n->async->failover.done ? NODE_ASYNC_PROMOTED : NODE_ASYNC_APPLYING;
}

const struct node_ops node_async_secondary_ops = {
    .start = secondary_start,
    .message = secondary_message,
    .promote = promote,
    .view = secondary_view,
    .status = secondary_status,
    .release = async_release,
};

static const char *const async_state_names[] = {
    [NODE_ASYNC_IDLE] = "idle",           [NODE_ASYNC_STREAMING] = "streaming",
    [NODE_ASYNC_RETRYING] = "retrying",   [NODE_ASYNC_STUCK] = "stuck",
    [NODE_ASYNC_FENCED] = "fenced",       [NODE_ASYNC_APPLYING] = "applying",
    [NODE_ASYNC_PROMOTED] = "promoted",
};

const char *node_async_state_name(enum node_async_state st)
{
    return (int)st >= 0 && st <= NODE_ASYNC_PROMOTED ? async_state_names[st] : NULL;
}
