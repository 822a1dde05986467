/*
 * cluster.c — replicas with leader propagation, written once (DESIGN.md §2):
 * the leader orders every write and propagates its outbox to every replica;
 * a replica applies the leader's changes idempotently by sequence
 * (shop_replica_apply), acknowledges its position, serves reads (and its
 * read cache, cache.c) and leaves writes to the leader (node_route FORWARD).
 *
 * Per replica the leader keeps a link, pruned_through <= acked <= sent <=
 * head, with sent - acked at most NODE_CLUSTER_WINDOW_BATCHES batches: every
 * commit ships what fits at once; an ack moves acked and ships more; an ack
 * saying "gap" sends the link back to it at once (once per hole); no ack for
 * the retransmission timeout sends it back to acked, the timeout doubling. An
 * ack below acked was overtaken and says nothing. The outbox is pruned to the
 * lowest acked of all replicas (none while one is unknown).
 *
 * Each replica process has an incarnation (the wall clock of its start): its
 * hello (sent at every start, and in answer to the probes of a leader that
 * restarted and knows nothing) carries its durable position, and a leader
 * that hears a newer incarnation starts that link over from it; acks of an
 * older incarnation are a dead process's and are ignored. So a restart on
 * either side resumes from what the replica really holds: nothing is applied
 * twice (no echo: a replica never sends changes back, and applied_twice in
 * its status records a change applied again, which would be a bug).
 *
 * The naive propagate=before-commit sends each change from the shop's
 * before_commit hook while its transaction is still open; a commit that then
 * fails leaves the replicas with a change the leader never kept (a phantom,
 * counted), and the leader's next change reuses that sequence.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/internal.h"
#include "platform/node_impl.h"

enum { ACK_GAP = 1, ACK_HELLO = 2, ACK_FLAGS = 4 /* b = incarnation x ACK_FLAGS + flags */ };

struct link {
    bool known;              /* the replica's hello was heard since the leader's start */
    bool stuck;
    int64_t incarnation;     /* of the replica's process the link follows, -1: none yet */
    int64_t acked, sent;
    int64_t progress_us;     /* mono: when acked last moved, or the send/probe after idle */
    int64_t rto_us;
    int64_t gap_rewound;     /* the position a gap ack last sent us back to, -1: none */
    uint64_t batches_sent, timeouts, gap_resends, probes, acks, stale_acks;
};

struct cluster_state {
    /* the leader */
    int64_t window;          /* changes unacknowledged per link at most */
    int64_t head, head_at_us, pruned_through;
    struct link links[NODE_CLUSTER_REPLICAS_MAX];
    bool head_unsure;        /* an unknown commit's outbox could not be read: look again */
    bool read_failed;        /* the last shipping could not read the outbox: try again */
    int64_t hook_pending;    /* before-commit: the change the hook sent, not yet committed */
    uint64_t hook_sends, phantoms, replica_ahead;
    int64_t phantom_seq, phantom_at_us;
    bool ahead_traced;
    /* a replica */
    int64_t incarnation;
    int64_t position, position_at_us, position_max;
    uint64_t batches_applied, changes_applied, duplicates, gaps, apply_errors, heartbeats_sent;
    bool applied_twice;
    int64_t twice_seq, twice_at_us, twice_after;
    int last_apply_err;
    char last_apply_error[SHOP_ERRMSG_MAX];
    int64_t last_lag_us;
    struct node_cache *cache;
};

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

static int64_t rto_base(const struct node *n)
{
    return NODE_CLUSTER_RTO_MIN_US + 2 * n->cfg.link_delay_us;
}

static int peer_index(const struct node *n, const char *name)
{
    for (size_t i = 0; i < n->peer_count; i++)
        if (strcmp(n->peers[i], name) == 0)
            return (int)i;
    return -1;
}

/* The invariants of one link, checked after every step that moves them. */
static void check_link(const struct cluster_state *c, const struct link *l)
{
    if (!l->known)
        return;
    assert(l->acked <= l->sent);
    assert(l->sent <= c->head);
    assert(l->sent - l->acked <= c->window);
    assert(c->pruned_through <= l->acked || l->stuck);
}

int cluster_create(struct node *n, char *errmsg, size_t len)
{
    bool leader = n->role == NODE_CLUSTER_LEADER, replica = n->role == NODE_CLUSTER_REPLICA;
    if (!leader && !replica)
        return -ENOSYS;
    if (leader && (n->peer_count == 0 || n->peer_count > NODE_CLUSTER_REPLICAS_MAX)) {
        snprintf(errmsg, len, "node %s: a leader needs 1 to %d replicas (peers)", n->name,
                 NODE_CLUSTER_REPLICAS_MAX);
        return -EINVAL;
    }
    if (replica && n->peer[0] == '\0') {
        snprintf(errmsg, len, "node %s: a replica needs its leader (peer)", n->name);
        return -EINVAL;
    }
    if (n->cfg.cache < NODE_CACHE_OFF || n->cfg.cache > NODE_CACHE_NAIVE ||
        n->cfg.cache_ttl_us < 0) {
        snprintf(errmsg, len, "node %s: a bad cache mode or ttl", n->name);
        return -EINVAL;
    }
    struct cluster_state *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->window = (int64_t)NODE_CLUSTER_WINDOW_BATCHES * NODE_CLUSTER_BATCH_CHANGES;
    if (replica && n->cfg.cache != NODE_CACHE_OFF) {
        c->cache = cache_new(n->cfg.cache, n->cfg.cache_ttl_us, n->cfg.cache_entries);
        if (c->cache == NULL) {
            free(c);
            return -ENOMEM;
        }
    }
    n->cluster = c;
    n->ops = leader ? &node_cluster_leader_ops : &node_cluster_replica_ops;
    return 0;
}

static void cluster_release(struct node *n)
{
    if (n->cluster != NULL)
        cache_free(n->cluster->cache);
    free(n->cluster);
    n->cluster = NULL;
}

/* ---- the leader: propagating --------------------------------------------- */

static void link_forget(struct node *n, struct link *l)
{
    l->known = false;
    l->stuck = false;
    l->incarnation = -1;
    l->acked = l->sent = 0;
    l->gap_rewound = -1;
    l->rto_us = rto_base(n);
    l->progress_us = node_mono_us(n);
}

static void become_stuck(struct node *n, int i, const char *why)
{
    struct link *l = &n->cluster->links[i];
    if (!l->stuck)
        node_trace(n, "%s cannot be caught up: %s (a replica that far behind must be "
                      "re-seeded)",
                   n->peers[i], why);
    l->stuck = true;
}

static int probe(struct node *n, int i)
{
    struct link *l = &n->cluster->links[i];
    struct node_msg m = {.type = NODE_MSG_CLUSTER_PROBE};
    l->probes++;
    l->progress_us = node_mono_us(n);
    return node_send(n, n->peers[i], &m);
}

/* One batch read from the outbox, shared by the links that need the same. */
struct memo {
    bool held;
    int64_t after;
    size_t max;
    struct shop_batch b;
};

/* Ships link i what fits in its window; -ECANCELED when the shop crashed. */
static int ship(struct node *n, int i, struct memo *memo)
{
    struct cluster_state *c = n->cluster;
    struct link *l = &c->links[i];
    for (int k = 0; k < NODE_CLUSTER_WINDOW_BATCHES && l->known && !l->stuck && l->sent < c->head;
         k++) {
        int64_t room = l->acked + c->window - l->sent;
        if (room <= 0)
            break;
        size_t max = room < NODE_CLUSTER_BATCH_CHANGES ? (size_t)room : NODE_CLUSTER_BATCH_CHANGES;
        if (!memo->held || memo->after != l->sent || memo->max != max) {
            if (memo->held)
                shop_batch_release(&memo->b);
            memo->held = false;
            int err = shop_outbox_read(n->shop, l->sent, max, NODE_CLUSTER_BATCH_BYTES_MAX,
                                       &memo->b);
            if (err == -ERANGE) {
                become_stuck(n, i, shop_errmsg(n->shop));
                return 0;
            }
            if (err) {
                node_trace(n, "cannot read the outbox for %s: %s", n->peers[i],
                           shop_errmsg(n->shop));
                c->read_failed = true; /* arm() sets the timer that tries again */
                return err == -ECANCELED ? err : 0;
            }
            memo->held = true;
            memo->after = l->sent;
            memo->max = max;
        }
        const struct shop_batch *b = &memo->b;
        if (b->count == 0)
            break; /* the head moved past what the outbox holds: an unknown commit failed */
        if (b->last_seq > c->head)
            c->head = b->last_seq; /* an unknown outcome that did commit */
        assert(b->first_seq == l->sent + 1 && b->last_seq <= l->acked + c->window);
        struct node_msg m = {.type = NODE_MSG_CLUSTER_BATCH, .a = b->first_seq,
                             .b = b->last_seq, .data = b->data, .len = b->len};
        if (node_send(n, n->peers[i], &m) != 0)
            break;
        if (l->sent == l->acked)
            l->progress_us = node_mono_us(n);
        l->sent = b->last_seq;
        l->batches_sent++;
        check_link(c, l);
    }
    return 0;
}

/* The earliest resend or probe deadline over the links, armed. */
static void arm(struct node *n)
{
    struct cluster_state *c = n->cluster;
    int64_t due = 0;
    for (size_t i = 0; i < n->peer_count; i++) {
        const struct link *l = &c->links[i];
        if (l->stuck || (l->known && l->sent == l->acked))
            continue;
        int64_t at = l->progress_us + l->rto_us;
        if (due == 0 || at < due)
            due = at;
    }
    if (c->head_unsure || c->read_failed) {
        int64_t at = node_mono_us(n) + rto_base(n);
        if (due == 0 || at < due)
            due = at;
    }
    if (due != 0) {
        int64_t now = node_mono_us(n);
        node_arm(n, NODE_TIMER_PROPAGATE, due > now ? due : now);
    }
}

static int ship_all(struct node *n)
{
    struct memo memo = {0};
    int err = 0;
    n->cluster->read_failed = false;
    for (size_t i = 0; i < n->peer_count && !err; i++)
        err = ship(n, (int)i, &memo);
    if (memo.held)
        shop_batch_release(&memo.b);
    arm(n);
    return err;
}

/* Forgets the changes every replica confirmed, a step at a time. */
static int prune(struct node *n)
{
    struct cluster_state *c = n->cluster;
    int64_t low = c->head;
    for (size_t i = 0; i < n->peer_count; i++) {
        if (!c->links[i].known)
            return 0; /* where it is is unknown: keep everything */
        if (c->links[i].acked < low)
            low = c->links[i].acked;
    }
    if (low - c->pruned_through < NODE_CLUSTER_PRUNE_STEP)
        return 0;
    int err = shop_outbox_prune(n->shop, low);
    if (err) {
        node_trace(n, "cannot prune the outbox: %s", shop_errmsg(n->shop));
        return err == -ECANCELED ? err : 0;
    }
    c->pruned_through = low;
    return 0;
}

/* Reads the head (and what was pruned) back from the outbox. */
static int read_head(struct node *n)
{
    struct cluster_state *c = n->cluster;
    struct shop_outbox_info info;
    int err = shop_outbox_info(n->shop, &info);
    if (err) {
        node_trace(n, "cannot read the outbox: %s", shop_errmsg(n->shop));
        return err;
    }
    if (info.head_seq > c->head) {
        c->head = info.head_seq;
        c->head_at_us = info.head_at_us;
    }
    int64_t held = info.oldest_seq > 0 ? info.oldest_seq - 1 : info.head_seq;
    if (held > c->pruned_through)
        c->pruned_through = held;
    return 0;
}

static int leader_start(struct node *n)
{
    struct cluster_state *c = n->cluster;
    c->head = c->head_at_us = c->pruned_through = 0;
    c->hook_pending = 0;
    c->head_unsure = false;
    int err = read_head(n);
    if (err)
        return err == -ECANCELED ? err : 0;
    if (n->restarts == 0)
        node_trace(n, "cluster: propagates every change to %zu replica(s) %s, in batches of up "
                      "to %d, %d unacknowledged at most",
                   n->peer_count, n->cfg.propagate_before_commit
                                      ? "from the pre-commit hook (naive before-commit) and "
                                        "after the commit"
                                      : "after the commit",
                   NODE_CLUSTER_BATCH_CHANGES, NODE_CLUSTER_WINDOW_BATCHES);
    else
        node_trace(n, "back at change %lld: asking the replicas where they are",
                   (long long)c->head);
    for (size_t i = 0; i < n->peer_count; i++) {
        link_forget(n, &c->links[i]);
        probe(n, (int)i);
    }
    arm(n);
    return 0;
}

static void leader_crashed(struct node *n)
{
    struct cluster_state *c = n->cluster;
    for (size_t i = 0; i < n->peer_count; i++)
        link_forget(n, &c->links[i]); /* its memory of the replicas dies with it */
}

/* An ack beyond the head: the replica holds a change the leader does not. */
static int64_t clamp_to_head(struct node *n, int i, int64_t position)
{
    struct cluster_state *c = n->cluster;
    if (position <= c->head)
        return position;
    if (read_head(n) == 0 && position <= c->head)
        return position;
    c->replica_ahead++;
    if (!c->ahead_traced)
        node_trace(n, "%s holds change %lld, beyond the leader's last (%lld): it applied a "
                      "change the leader never committed",
                   n->peers[i], (long long)position, (long long)c->head);
    c->ahead_traced = true;
    return c->head;
}

static void on_ack(struct node *n, int i, int64_t position, int64_t b)
{
    struct cluster_state *c = n->cluster;
    struct link *l = &c->links[i];
    int64_t incarnation = b / ACK_FLAGS;
    bool gap = (b & ACK_GAP) != 0;
    l->acks++;
    if (incarnation < l->incarnation) {
        l->stale_acks++; /* from a process of the replica that died since */
        return;
    }
    position = clamp_to_head(n, i, position);
    if (!l->known || incarnation > l->incarnation) {
        bool restarted = l->known;
        l->known = true;
        l->stuck = false;
        l->incarnation = incarnation;
        l->acked = l->sent = position;
        l->rto_us = rto_base(n);
        l->progress_us = node_mono_us(n);
        l->gap_rewound = -1;
        node_trace(n, "%s %s at change %lld (leader at %lld)%s", n->peers[i],
                   restarted ? "restarted:" : "is", (long long)position, (long long)c->head,
                   position < c->head ? ": catching it up" : "");
        if (position < c->pruned_through) {
            char why[SHOP_ERRMSG_MAX];
            snprintf(why, sizeof(why), "it is at change %lld, the outbox starts after %lld",
                     (long long)position, (long long)c->pruned_through);
            become_stuck(n, i, why);
        }
        check_link(c, l);
        return;
    }
    if (position < l->acked) {
        l->stale_acks++; /* overtaken by a newer ack: it says nothing now */
        return;
    }
    if (position > l->acked) {
        l->acked = position;
        l->progress_us = node_mono_us(n);
        l->rto_us = rto_base(n);
        l->gap_rewound = -1;
        if (l->sent < l->acked)
            l->sent = l->acked;
    }
    if (gap && position < l->sent && position != l->gap_rewound) {
        node_trace(n, "%s is missing changes after %lld: resending from there", n->peers[i],
                   (long long)position);
        l->sent = position;
        l->gap_rewound = position;
        l->gap_resends++;
        l->progress_us = node_mono_us(n);
    }
    check_link(c, l);
}

static int leader_message(struct node *n, const char *from, const struct node_msg *m)
{
    int i = peer_index(n, from);
    if (i < 0 || m->type != NODE_MSG_CLUSTER_ACK) {
        node_trace(n, "%s from %s ignored: %s", node_msg_type_name(m->type), from,
                   i < 0 ? "not one of its replicas" : "not for a leader");
        return 0;
    }
    on_ack(n, i, m->a, m->b);
    struct memo memo = {0};
    int err = prune(n);
    if (!err)
        err = ship(n, i, &memo);
    if (memo.held)
        shop_batch_release(&memo.b);
    arm(n);
    return err;
}

/* A link whose ack or hello is overdue goes back to acked (or probes again). */
static void check_timeout(struct node *n, int i)
{
    struct link *l = &n->cluster->links[i];
    int64_t now = node_mono_us(n);
    if (l->stuck || (l->known && l->sent == l->acked) || now - l->progress_us < l->rto_us)
        return;
    l->timeouts++;
    l->rto_us = l->rto_us * 2 > NODE_CLUSTER_RTO_MAX_US ? NODE_CLUSTER_RTO_MAX_US : l->rto_us * 2;
    if (!l->known) {
        probe(n, i);
        return;
    }
    node_trace(n, "no ack from %s for %.3fs: resending from change %lld", n->peers[i],
               secs(now - l->progress_us), (long long)(l->acked + 1));
    l->sent = l->acked;
    l->gap_rewound = -1;
}

static int leader_timer(struct node *n, enum node_timer t)
{
    if (t != NODE_TIMER_PROPAGATE)
        return 0;
    if (n->cluster->head_unsure) {
        int err = read_head(n);
        if (err == -ECANCELED)
            return err;
        n->cluster->head_unsure = err != 0;
    }
    for (size_t i = 0; i < n->peer_count; i++)
        check_timeout(n, (int)i);
    return ship_all(n);
}

static void note_phantom(struct node *n)
{
    struct cluster_state *c = n->cluster;
    if (c->phantoms++ == 0) {
        c->phantom_seq = c->hook_pending;
        c->phantom_at_us = node_wall_us(n);
    }
    node_trace(n, "the commit of change %lld failed after it was propagated: the replicas "
                  "hold a change the leader does not",
               (long long)c->hook_pending);
    c->hook_pending = 0;
}

static int leader_commit(struct node *n, int64_t seq)
{
    struct cluster_state *c = n->cluster;
    if (c->hook_pending != 0 && c->hook_pending != seq)
        note_phantom(n);
    c->hook_pending = 0;
    if (seq > c->head) {
        c->head = seq;
        c->head_at_us = node_wall_us(n);
    } else if (seq <= 0) {
        int err = read_head(n); /* an unknown outcome: the outbox says */
        if (err == -ECANCELED)
            return err;
        c->head_unsure = err != 0;
    }
    return ship_all(n);
}

static int leader_before_commit(struct node *n, int64_t seq, const void *change, size_t len)
{
    struct cluster_state *c = n->cluster;
    if (!n->cfg.propagate_before_commit)
        return 0;
    if (c->hook_pending != 0)
        note_phantom(n); /* the last one never committed: its sequence comes again */
    c->hook_pending = seq;
    struct shop_batch b;
    int err = shop_batch_single(seq, node_wall_us(n), change, len, &b);
    if (err)
        return 0;
    struct node_msg m = {.type = NODE_MSG_CLUSTER_BATCH, .a = seq, .b = seq, .data = b.data,
                         .len = b.len};
    for (size_t i = 0; i < n->peer_count; i++)
        node_send(n, n->peers[i], &m);
    c->hook_sends++;
    shop_batch_release(&b);
    return 0;
}

static void leader_peer_up(struct node *n, const char *peer)
{
    int i = peer_index(n, peer);
    struct link *l = i >= 0 ? &n->cluster->links[i] : NULL;
    if (l == NULL || !l->known || l->sent == l->acked)
        return;
    l->sent = l->acked; /* what was in flight died with it; its hello says more */
    l->gap_rewound = -1;
}

static void leader_view(const struct node *n, struct node_view *out)
{
    out->writable = true;
    snprintf(out->writer, sizeof(out->writer), "%s", n->name);
    out->position = n->cluster->head;
}

static void leader_status(const struct node *n, struct node_status *out)
{
    const struct cluster_state *c = n->cluster;
    struct node_cluster_status *s = &out->cluster;
    s->before_commit = n->cfg.propagate_before_commit;
    s->head_seq = c->head;
    s->head_at_us = c->head_at_us;
    s->pruned_through = c->pruned_through;
    s->replica_count = n->peer_count;
    for (size_t i = 0; i < n->peer_count; i++) {
        const struct link *l = &c->links[i];
        struct node_cluster_link *o = &s->links[i];
        memcpy(o->name, n->peers[i], sizeof(o->name));
        o->known = l->known;
        o->stuck = l->stuck;
        o->acked = l->acked;
        o->sent = l->sent;
        o->rto_us = l->rto_us;
        o->batches_sent = l->batches_sent;
        o->timeouts = l->timeouts;
        o->gap_resends = l->gap_resends;
        o->probes = l->probes;
        o->acks = l->acks;
        o->stale_acks = l->stale_acks;
    }
    s->hook_sends = c->hook_sends;
    s->phantoms = c->phantoms;
    s->phantom_seq = c->phantom_seq;
    s->phantom_at_us = c->phantom_at_us;
    s->replica_ahead = c->replica_ahead;
}

const struct node_ops node_cluster_leader_ops = {
    .start = leader_start,
    .message = leader_message,
    .timer = leader_timer,
    .commit = leader_commit,
    .before_commit = leader_before_commit,
    .peer_up = leader_peer_up,
    .crashed = leader_crashed,
    .view = leader_view,
    .status = leader_status,
    .release = cluster_release,
};

/* ---- a replica: applying ---------------------------------------------------- */

static int hello(struct node *n)
{
    struct cluster_state *c = n->cluster;
    struct node_msg m = {.type = NODE_MSG_CLUSTER_ACK, .a = c->position,
                         .b = c->incarnation * ACK_FLAGS + ACK_HELLO};
    return node_send(n, n->peer, &m);
}

static void heartbeat(struct node *n)
{
    struct cluster_state *c = n->cluster;
    if (n->cfg.registry == NULL)
        return;
    struct node_msg m = {.type = NODE_MSG_HEARTBEAT, .a = c->position};
    if (node_send(n, n->cfg.registry, &m) == 0)
        c->heartbeats_sent++;
    node_arm(n, NODE_TIMER_HEARTBEAT, node_mono_us(n) + NODE_CLUSTER_HEARTBEAT_US);
}

static int replica_start(struct node *n)
{
    struct cluster_state *c = n->cluster;
    c->incarnation = node_wall_us(n);
    int64_t seq = 0, at = 0;
    int err = shop_replica_position(n->shop, n->peer, &seq, &at);
    if (err) {
        node_trace(n, "cannot read its position: %s", shop_errmsg(n->shop));
        return err == -ECANCELED ? err : 0;
    }
    c->position = seq;
    c->position_at_us = at;
    if (seq > c->position_max)
        c->position_max = seq; /* an apply whose outcome was unknown did commit */
    if (n->restarts == 0)
        node_trace(n, "replica of %s at change %lld%s%s", n->peer, (long long)seq,
                   n->cfg.cache == NODE_CACHE_ON      ? ", read cache on"
                   : n->cfg.cache == NODE_CACHE_NAIVE ? ", read cache naive (never invalidated)"
                                                      : "",
                   n->cfg.registry != NULL ? ", heartbeats to the registry" : "");
    else
        node_trace(n, "back at change %lld: asking %s to catch it up", (long long)seq, n->peer);
    hello(n);
    heartbeat(n);
    return 0;
}

static void replica_crashed(struct node *n)
{
    cache_clear(n->cluster->cache); /* the cache lived in the process */
}

struct invalidate {
    struct node_cache *cache;
    int64_t from, to;
};

static int invalidate_change(void *arg, int64_t seq, int64_t at_us, const void *change,
                             size_t len)
{
    struct invalidate *v = arg;
    (void)at_us;
    if (seq > v->from && seq <= v->to)
        cache_change(v->cache, change, len);
    return 0;
}

/* The cache learns what changes (from, to] of the batch touched. */
static void update_cache(struct node *n, const struct node_msg *m, int64_t from, int64_t to)
{
    struct cluster_state *c = n->cluster;
    if (c->cache == NULL || to <= from)
        return;
    if (from != c->position) {
        cache_clear(c->cache); /* changes it never saw were applied meanwhile */
    } else {
        struct invalidate v = {c->cache, from, to};
        replog_batch_for_each(m->data, m->len, invalidate_change, &v);
    }
    cache_advance(c->cache, to);
}

static int on_batch(struct node *n, const struct node_msg *m)
{
    struct cluster_state *c = n->cluster;
    struct shop_apply_result r;
    int err = shop_replica_apply(n->shop, n->peer, m->data, m->len, &r);
    if (err) {
        c->apply_errors++;
        if (err != c->last_apply_err)
            node_trace(n, "cannot apply changes %lld..%lld: %s", (long long)m->a,
                       (long long)m->b, shop_errmsg(n->shop));
        c->last_apply_err = err;
        snprintf(c->last_apply_error, sizeof(c->last_apply_error), "%s", shop_errmsg(n->shop));
        return err == -ECANCELED ? err : 0; /* no ack: the leader resends */
    }
    c->duplicates += r.skipped;
    if (r.applied > 0) {
        int64_t from = r.position - r.applied;
        if (from < c->position_max && !c->applied_twice) {
            c->applied_twice = true;
            c->twice_seq = from + 1;
            c->twice_at_us = node_wall_us(n);
            c->twice_after = c->position_max;
            node_trace(n, "applied change %lld again (it had applied up to %lld)",
                       (long long)from + 1, (long long)c->position_max);
        }
        update_cache(n, m, from, r.position);
        c->last_apply_err = 0;
        c->last_apply_error[0] = '\0';
        c->batches_applied++;
        c->changes_applied += r.applied;
        c->last_lag_us = node_wall_us(n) - r.position_at_us;
        node_trace(n, "applied changes %lld..%lld from %s", (long long)from + 1,
                   (long long)r.position, n->peer);
    } else if (r.gap) {
        c->gaps++;
    }
    if (r.position != c->position && r.applied == 0)
        cache_clear(c->cache); /* moved without this batch: an unknown apply committed */
    c->position = r.position;
    c->position_at_us = r.position_at_us;
    if (r.position > c->position_max)
        c->position_max = r.position;
    struct node_msg ack = {.type = NODE_MSG_CLUSTER_ACK, .a = r.position,
                           .b = c->incarnation * ACK_FLAGS + (r.gap ? ACK_GAP : 0)};
    node_send(n, n->peer, &ack);
    return 0;
}

static int replica_message(struct node *n, const char *from, const struct node_msg *m)
{
    if (strcmp(from, n->peer) != 0) {
        node_trace(n, "%s from %s ignored: not its leader", node_msg_type_name(m->type), from);
        return 0;
    }
    if (m->type == NODE_MSG_CLUSTER_PROBE)
        return hello(n);
    if (m->type == NODE_MSG_CLUSTER_BATCH)
        return on_batch(n, m);
    return 0;
}

static int replica_timer(struct node *n, enum node_timer t)
{
    if (t == NODE_TIMER_HEARTBEAT)
        heartbeat(n);
    return 0;
}

static void replica_view(const struct node *n, struct node_view *out)
{
    out->writable = false;
    snprintf(out->writer, sizeof(out->writer), "%s", n->peer);
    out->position = n->cluster->position;
}

static void replica_status(const struct node *n, struct node_status *out)
{
    const struct cluster_state *c = n->cluster;
    struct node_cluster_status *s = &out->cluster;
    s->position = c->position;
    s->position_at_us = c->position_at_us;
    s->position_max = c->position_max;
    s->batches_applied = c->batches_applied;
    s->changes_applied = c->changes_applied;
    s->duplicates = c->duplicates;
    s->gaps = c->gaps;
    s->apply_errors = c->apply_errors;
    s->applied_twice = c->applied_twice;
    s->twice_seq = c->twice_seq;
    s->twice_at_us = c->twice_at_us;
    s->twice_after = c->twice_after;
    s->last_apply_err = c->last_apply_err;
    memcpy(s->last_apply_error, c->last_apply_error, sizeof(s->last_apply_error));
    s->last_lag_us = c->last_lag_us;
    s->heartbeats_sent = c->heartbeats_sent;
    cache_status(c->cache, &s->cache);
}

const struct node_ops node_cluster_replica_ops = {
    .start = replica_start,
    .message = replica_message,
    .timer = replica_timer,
    .crashed = replica_crashed,
    .view = replica_view,
    .status = replica_status,
    .release = cluster_release,
};

/* ---- the cache, as hosts reach it ------------------------------------------- */

int node_cache_get(struct node *n, const char *key, const struct node_session *session,
                   struct node_cache_hit *out)
{
    memset(out, 0, sizeof(*out));
    if (n->role != NODE_CLUSTER_REPLICA || n->cluster->cache == NULL)
        return -ENOTSUP;
    if (!n->up)
        return -ENOENT;
    return cache_get(n->cluster->cache, key, node_mono_us(n),
                     session != NULL ? session->position : 0, out);
}

int node_cache_put(struct node *n, const char *key, const struct node_cache_dep *deps,
                   size_t dep_count, const void *answer, size_t len, int64_t position)
{
    if (n->role != NODE_CLUSTER_REPLICA || n->cluster->cache == NULL)
        return -ENOTSUP;
    if (!n->up || position != n->cluster->position)
        return -ESTALE;
    return cache_put(n->cluster->cache, key, deps, dep_count, answer, len, position,
                     node_mono_us(n));
}
