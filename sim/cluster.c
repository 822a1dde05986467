/*
 * cluster.c — replicas with leader propagation in the simulator (topology
 * `cluster`): nodes `leader`, `replica1..N`, `registry`.
 *
 * The leader records every write's change in its outbox and, after the
 * commit, ships what each replica has not acknowledged (one batch in flight
 * per replica, resent with a doubling timeout); replicas apply batches
 * idempotently by sequence and acknowledge their position; the leader
 * prunes below the lowest position. A replica back from a crash asks to
 * catch up from its position; a leader back from one probes every replica.
 * Writes reaching a replica are forwarded to the leader and the result
 * relayed; reads are served by the replica, from its cache or its copy,
 * unless the client's session has seen a newer sequence than the replica
 * holds (then the read goes to the leader: read-your-writes across the
 * balancer). Clients balance round-robin over the replicas the registry
 * lists (heartbeats), skip one that timed out for a while, and keep the
 * registry's last good answer while it is silent.
 *
 * Naive modes: propagate=before-commit ships each change from the
 * platform's pre-commit hook, so a commit that then fails leaves replicas
 * with a change the leader never had; cache=naive answers from entries
 * that no write ever invalidates.
 *
 * Checkers: no-echo, lb-balanced and the cluster part of converges.
 * Part of libsim; talks to the platform only through platform.h.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cluster.h"
#include "sim/world.h"

#define CLUSTER_SHIP_CHANGES_MAX 256       /* changes in one shipped batch */
#define CLUSTER_SHIP_BYTES_MAX (1u << 20)  /* bytes of one shipped batch, about */
#define CLUSTER_RTO_MIN_US 50000           /* resend a batch nobody acked after this... */
#define CLUSTER_RTO_MAX_US 1000000         /* ...doubling up to this */
#define CLUSTER_PRUNE_STEP 64              /* prune the outbox in steps of this many changes */
#define CLUSTER_HEARTBEAT_US 200000        /* a replica tells the registry it lives */
#define CLUSTER_REFRESH_US 500000          /* a client asks the registry for the replicas */
#define CLUSTER_REGISTRY_WINDOW_US 600000  /* the registry lists replicas heard this recently */
#define CLUSTER_SKIP_US 1000000            /* a replica that timed out rests this long */
#define CLUSTER_CACHE_HIT_US 20            /* a replica's time to answer from its cache */
#define CLUSTER_SEQS_MAX (1u << 22)        /* sequences the no-echo record can follow */
#define CLUSTER_PHANTOMS_MAX 16            /* changes propagated before a failed commit, listed */
#define CLUSTER_LAG_SAMPLES_MAX (1u << 20) /* propagation lags kept for the percentiles */
#define CLUSTER_SOURCE "leader"            /* replicas' name for the leader's outbox */

enum cluster_msg {
    MSG_BATCH = 1,  /* leader -> replica: a, b: first and last seq; data: the batch */
    MSG_ACK,        /* replica -> leader: a: position; b: ACK_* flags */
    MSG_PROBE,      /* leader -> replica: where are you? (after the leader restarted) */
    MSG_FORWARD,    /* replica -> leader: a: op id; b: the replica's incarnation */
    MSG_RESULT,     /* leader -> replica: a: op id served; b: the incarnation echoed */
    MSG_HEARTBEAT,  /* replica -> registry: a: replica index */
    MSG_GET_SERVER, /* client -> registry: a: client */
};

enum { ACK_GAP = 1, ACK_HELLO = 2 };

enum cluster_tick {
    TICK_SHIP = 1,  /* b: gen * 32 + replica: no ack came in time */
    TICK_HEARTBEAT, /* b: incarnation * 32 + replica */
    TICK_REFRESH,   /* b: client */
    TICK_ANSWER,    /* b: mask << 16 | client: the registry's answer reaches the client */
};

/* The leader's view of one replica: what it acknowledged, what is in flight. */
struct link {
    int64_t acked;          /* -1: unknown (the leader restarted) */
    bool in_flight;
    int64_t sent_last;
    uint64_t gen;           /* stale TICK_SHIP timers carry an older one */
    int64_t rto_us;
    bool stuck;             /* the outbox no longer holds what it needs (traced once) */
};

struct replica {
    int node;
    struct link link;
    /* the replica's process */
    uint64_t incarnation;   /* bumped by a crash: forwards and heartbeats of the dead one die */
    int64_t position;       /* last change applied, -1 while down */
    int last_err;           /* last apply error, traced once */
    struct cache cache;
    /* no-echo: by sequence */
    struct applied *applied;
    size_t applied_cap;
    int64_t recorded_to;    /* every seq up to this is recorded */
    int64_t dup_seq, dup_first_us, dup_again_us; /* the first change applied twice */
    bool overflow;
};

/* What a change touches, for the caches: the operation that wrote it. */
struct tag {
    bool set;
    int kind;               /* enum drill_op, or TAG_ALL (the seeded catalog, unknown) */
    int64_t user;
};
#define TAG_ALL (-1)

/* no-echo: how often one sequence was applied on one replica. */
struct applied {
    uint32_t count;
    int64_t first_us;
};

/* A client's session and balancer. */
struct session {
    struct lb lb;
    int64_t seq;            /* the newest sequence it wrote or read */
    int64_t asked_us, answered_us;
    bool stale;             /* the registry missed an answer: on the last good one */
};

enum { OP_AT_REPLICA = 1, OP_FORWARDED = 2, OP_REPLIED = 4, OP_LEADER_DONE = 8, OP_POS = 16 };

struct op_state {
    uint8_t flags;
    uint64_t incarnation;   /* of the replica that forwarded it */
    int64_t read_pos;       /* a read: the position it was answered at */
};

struct phantom {
    int64_t seq;
    uint32_t op;
    int err;
    int64_t at_us;
};

struct cluster {
    int leader, registry;
    int replica_count;
    struct replica rep[DRILL_REPLICAS_MAX];
    enum drill_cache cache_mode;
    bool before_commit;
    /* the leader */
    int64_t head;           /* last change committed */
    int64_t seeded;         /* the head at the start: the seeded catalog's changes */
    int64_t pruned;         /* the outbox holds nothing at or below this */
    uint32_t serving_op;    /* the forwarded op being served, for the pre-commit hook */
    int64_t hook_seq;       /* the change the hook propagated for it (0: none) */
    size_t phantom_count;
    struct phantom phantoms[CLUSTER_PHANTOMS_MAX];
    uint64_t phantoms_total;
    struct tag *tags;       /* by sequence */
    size_t tag_cap;
    /* the registry */
    int64_t heard_us[DRILL_REPLICAS_MAX];
    bool registry_down;
    int64_t registry_up_us;
    bool registry_warming_traced;
    /* the clients */
    int client_count;
    struct session sessions[DRILL_CLIENTS_MAX + 1];
    struct op_state *ops;   /* by op id - 1 */
    size_t op_cap;
    /* figures for the report */
    int64_t *lag;           /* commit on the leader -> applied on a replica, per batch */
    size_t lag_count, lag_cap;
    uint64_t batches_sent, resends, writes_forwarded, reads_to_leader;
};

static struct cluster *state(struct sim *s)
{
    assert(s->topo == &world_cluster_topo && s->topo_state != NULL);
    return s->topo_state;
}

static const char *cl_node_name(const struct sim *s, int n)
{
    return s->nodes[n].name;
}

/* The replica at node n, NULL when n is not one. */
static struct replica *replica_of(struct cluster *cl, int n)
{
    for (int r = 0; r < cl->replica_count; r++)
        if (cl->rep[r].node == n)
            return &cl->rep[r];
    return NULL;
}

static int replica_index(const struct cluster *cl, const struct replica *rep)
{
    return (int)(rep - cl->rep);
}

static shop *running_shop(const struct sim *s, int n)
{
    return s->nodes[n].up ? s->nodes[n].shop : NULL;
}

/* After a platform call: a crash point that fired kills the node now. */
static bool crashed_now(struct sim *s)
{
    if (!s->crash_pending)
        return false;
    world_handle_crash_point(s);
    return true;
}

static void mask_text(const struct cluster *cl, const struct sim *s, uint32_t mask, char *buf,
                      size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "{");
    for (int r = 0; r < cl->replica_count && n < len; r++)
        if (mask >> r & 1)
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n > 1 ? "," : "",
                                  cl_node_name(s, cl->rep[r].node));
    if (n < len)
        snprintf(buf + n, len - n, "}");
}

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

/* ---- growable records ---------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t size, size_t limit)
{
    if (need <= *cap)
        return 0;
    if (need > limit)
        return -E2BIG;
    size_t want = *cap ? *cap : 1024;
    while (want < need)
        want *= 2;
    if (want > limit)
        want = limit;
    void *grown = realloc(*p, want * size);
    if (grown == NULL)
        return -ENOMEM;
    memset((char *)grown + *cap * size, 0, (want - *cap) * size);
    *p = grown;
    *cap = want;
    return 0;
}

static struct op_state *op_state(struct cluster *cl, uint32_t id)
{
    void *p = cl->ops;
    if (grow(&p, &cl->op_cap, id, sizeof(*cl->ops), SIM_OPS_MAX) != 0)
        return NULL;
    cl->ops = p;
    return &cl->ops[id - 1];
}

static void tag_record(struct cluster *cl, int64_t seq, const struct sim_op *op)
{
    void *p = cl->tags;
    if (seq <= 0 || grow(&p, &cl->tag_cap, (size_t)seq + 1, sizeof(*cl->tags), CLUSTER_SEQS_MAX))
        return;
    cl->tags = p;
    cl->tags[seq] = op != NULL ? (struct tag){.set = true, .kind = (int)op->kind,
                                              .user = op->user_id}
                               : (struct tag){.set = true, .kind = TAG_ALL};
}

/* What change seq touches; an unknown change touches everything. */
static struct tag tag_of(const struct cluster *cl, int64_t seq)
{
    if (seq > 0 && (size_t)seq < cl->tag_cap && cl->tags[seq].set)
        return cl->tags[seq];
    return (struct tag){.set = true, .kind = TAG_ALL};
}

/* no-echo: seqs (from, to] were applied once more on rep. */
static void record_applied(struct sim *s, struct replica *rep, int64_t from, int64_t to)
{
    if (to <= from || rep->overflow)
        return;
    void *p = rep->applied;
    if (grow(&p, &rep->applied_cap, (size_t)to + 1, sizeof(*rep->applied), CLUSTER_SEQS_MAX)) {
        rep->overflow = true;
        world_trace(s, cl_node_name(s, rep->node),
                    "no-echo record full at change %lld: not followed further", (long long)to);
        return;
    }
    rep->applied = p;
    for (int64_t q = from + 1; q <= to; q++) {
        struct applied *a = &rep->applied[q];
        if (a->count == 0) {
            a->first_us = s->now_us;
        } else if (rep->dup_seq == 0) {
            rep->dup_seq = q;
            rep->dup_first_us = a->first_us;
            rep->dup_again_us = s->now_us;
        }
        a->count++;
    }
    if (to > rep->recorded_to)
        rep->recorded_to = to;
}

/*
 * The replica's durable position is ahead of what was recorded: an apply
 * whose outcome was unknown (a failed sync) did commit. Those changes were
 * applied once, by that apply.
 */
static void note_position(struct sim *s, struct replica *rep, int64_t position)
{
    if (position > rep->recorded_to)
        record_applied(s, rep, rep->recorded_to, position);
}

static void lag_sample(struct cluster *cl, int64_t lag_us)
{
    void *p = cl->lag;
    if (grow(&p, &cl->lag_cap, cl->lag_count + 1, sizeof(*cl->lag), CLUSTER_LAG_SAMPLES_MAX))
        return; /* the figures then describe the first samples only */
    cl->lag = p;
    cl->lag[cl->lag_count++] = lag_us;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static int64_t lag_percentile(struct cluster *cl, int p)
{
    if (cl->lag_count == 0)
        return 0;
    qsort(cl->lag, cl->lag_count, sizeof(*cl->lag), cmp_i64);
    size_t rank = (cl->lag_count * (size_t)p + 99) / 100;
    return cl->lag[rank > 0 ? rank - 1 : 0];
}

/* ---- the leader: shipping the outbox ------------------------------------- */

static void link_reset(struct link *l, int64_t acked)
{
    l->acked = acked;
    l->in_flight = false;
    l->sent_last = -1;
    l->gen++;
    l->rto_us = CLUSTER_RTO_MIN_US;
    l->stuck = false;
}

/* Something is in flight to rep: if no ack comes within the timeout, resend. */
static void await_ack(struct sim *s, struct cluster *cl, struct replica *rep)
{
    struct link *l = &rep->link;
    l->in_flight = true;
    l->gen++;
    world_timer(s, s->now_us + l->rto_us, TICK_SHIP,
                (int64_t)(l->gen * 32 + (uint64_t)replica_index(cl, rep)));
}

static void probe(struct sim *s, struct cluster *cl, struct replica *rep)
{
    rep->link.sent_last = -1;
    world_send(s, cl->leader, rep->node, MSG_PROBE, 0, 0, NULL, 0, s->now_us);
    await_ack(s, cl, rep);
}

/* Sends rep the next batch it lacks, unless one is in flight. */
static void ship(struct sim *s, struct cluster *cl, struct replica *rep)
{
    struct link *l = &rep->link;
    shop *sh = running_shop(s, cl->leader);
    if (sh == NULL || l->in_flight || l->stuck)
        return;
    if (l->acked < 0) {
        probe(s, cl, rep);
        return;
    }
    if (l->acked >= cl->head)
        return;
    struct shop_batch b;
    int err = shop_outbox_read(sh, l->acked, CLUSTER_SHIP_CHANGES_MAX, CLUSTER_SHIP_BYTES_MAX, &b);
    if (crashed_now(s))
        return;
    if (err == -ERANGE) {
        l->stuck = true;
        world_trace(s, "leader", "%s cannot catch up: %s (a replica that far behind must be "
                                 "re-seeded, which the cluster does not do)",
                    cl_node_name(s, rep->node), shop_errmsg(sh));
        return;
    }
    if (err) {
        world_trace(s, "leader", "cannot read the outbox for %s: %s", cl_node_name(s, rep->node),
                    shop_errmsg(sh));
        await_ack(s, cl, rep); /* the timer tries again */
        return;
    }
    if (b.count > 0) {
        world_send(s, cl->leader, rep->node, MSG_BATCH, b.first_seq, b.last_seq, b.data, b.len,
                   s->now_us);
        l->sent_last = b.last_seq;
        cl->batches_sent++;
        await_ack(s, cl, rep);
    }
    shop_batch_release(&b);
}

static void ship_all(struct sim *s, struct cluster *cl)
{
    for (int r = 0; r < cl->replica_count; r++)
        ship(s, cl, &cl->rep[r]);
}

/* Forgets the changes every replica holds, in steps. */
static void prune(struct sim *s, struct cluster *cl)
{
    int64_t low = cl->head;
    for (int r = 0; r < cl->replica_count; r++) {
        if (cl->rep[r].link.acked < 0)
            return; /* unknown: keep everything */
        if (cl->rep[r].link.acked < low)
            low = cl->rep[r].link.acked;
    }
    shop *sh = running_shop(s, cl->leader);
    if (sh == NULL || low - cl->pruned < CLUSTER_PRUNE_STEP)
        return;
    int err = shop_outbox_prune(sh, low);
    if (crashed_now(s))
        return;
    if (err) {
        world_trace(s, "leader", "cannot prune the outbox: %s", shop_errmsg(sh));
        return;
    }
    cl->pruned = low;
}

static void on_ack(struct sim *s, struct cluster *cl, const struct world_msg *m)
{
    struct replica *rep = replica_of(cl, m->from);
    if (rep == NULL)
        return;
    struct link *l = &rep->link;
    bool hello = (m->b & ACK_HELLO) != 0, gap = (m->b & ACK_GAP) != 0;
    if (hello || m->a > l->acked)
        l->acked = m->a;
    if (hello || gap || (l->in_flight && m->a >= l->sent_last)) {
        l->in_flight = false;
        l->gen++; /* the pending timer is stale now */
        l->rto_us = CLUSTER_RTO_MIN_US;
    }
    if (hello)
        world_trace(s, "leader", "%s is at change %lld (leader at %lld)%s", cl_node_name(s, m->from),
                    (long long)m->a, (long long)cl->head,
                    m->a < cl->head ? ": catching it up" : "");
    if (gap)
        world_trace(s, "leader", "%s reports a gap after change %lld: resending from there",
                    cl_node_name(s, m->from), (long long)m->a);
    ship(s, cl, rep);
    prune(s, cl);
}

static void on_ship_timeout(struct sim *s, struct cluster *cl, int64_t b)
{
    int r = (int)(b % 32);
    uint64_t gen = (uint64_t)b / 32;
    if (r >= cl->replica_count)
        return;
    struct replica *rep = &cl->rep[r];
    struct link *l = &rep->link;
    if (gen != l->gen || !l->in_flight)
        return;
    l->in_flight = false;
    if (running_shop(s, cl->leader) == NULL)
        return;
    world_trace(s, "leader", "no answer from %s within %lld ms: %s again", cl_node_name(s, rep->node),
                (long long)(l->rto_us / 1000), l->acked < 0 ? "probing" : "shipping");
    l->rto_us = l->rto_us * 2 < CLUSTER_RTO_MAX_US ? l->rto_us * 2 : CLUSTER_RTO_MAX_US;
    cl->resends++;
    ship(s, cl, rep);
}

/*
 * propagate=before-commit, the naive mode: the platform hands over the
 * change while its transaction is still open, and it goes to the replicas
 * at once. If the commit then fails, they hold a change the leader does not,
 * and the leader's next change reuses its sequence, which they skip.
 */
static void before_commit(void *ctx, const char *node, int64_t seq, const void *change,
                          size_t len)
{
    struct sim *s = ctx;
    struct cluster *cl = state(s);
    (void)node;
    const struct sim_op *op = cl->serving_op ? &s->ops[cl->serving_op - 1] : NULL;
    tag_record(cl, seq, op);
    cl->hook_seq = seq;
    struct shop_batch b;
    if (shop_batch_single(seq, s->now_us, change, len, &b) != 0)
        return;
    for (int r = 0; r < cl->replica_count; r++)
        world_send(s, cl->leader, cl->rep[r].node, MSG_BATCH, seq, seq, b.data, b.len, s->now_us);
    shop_batch_release(&b);
}

/* The hook propagated a change whose commit then failed: remember it. */
static void note_phantom(struct sim *s, struct cluster *cl, const struct sim_op *op)
{
    cl->phantoms_total++;
    if (cl->phantom_count < CLUSTER_PHANTOMS_MAX)
        cl->phantoms[cl->phantom_count++] =
            (struct phantom){.seq = cl->hook_seq, .op = op->id, .err = op->err, .at_us = s->now_us};
    world_trace(s, "leader", "#%u: the commit of change %lld failed (%s) after it was "
                             "propagated: the replicas hold a change the leader does not",
                op->id, (long long)cl->hook_seq, platform_strerror(op->err));
}

/* A replica forwarded op: serve it here and send the result back. */
static void on_forward(struct sim *s, struct cluster *cl, const struct world_msg *m)
{
    if (m->a < 1 || (size_t)m->a > s->op_count || running_shop(s, cl->leader) == NULL)
        return;
    struct sim_op *op = &s->ops[m->a - 1];
    struct op_state *os = op_state(cl, op->id);
    if (os == NULL)
        return;
    struct world_node *leader = &s->nodes[cl->leader];
    int64_t done = s->now_us;
    if (!(os->flags & OP_LEADER_DONE)) {
        int64_t start = s->now_us > leader->busy_until_us ? s->now_us : leader->busy_until_us;
        cl->serving_op = op->id;
        cl->hook_seq = 0;
        bool alive = world_serve_on(s, cl->leader, op);
        cl->serving_op = 0;
        if (cl->hook_seq > 0 && op->err != 0)
            note_phantom(s, cl, op);
        if (!alive)
            return;
        os->flags |= OP_LEADER_DONE;
        done = start + SIM_SERVICE_US + s->delay_pending_us;
        leader->busy_until_us = done;
    }
    world_send(s, cl->leader, m->from, MSG_RESULT, op->id, m->b, NULL, 0, done);
}

/* ---- a replica: applying, its cache, serving ----------------------------- */

static bool is_cached_kind(enum drill_op kind)
{
    return kind == DRILL_OP_ORDER_STATUS || kind == DRILL_OP_BROWSE || kind == DRILL_OP_SEARCH;
}

/* The cache key of a read: order-status by user, browse and search by product. */
static int64_t cache_arg(const struct sim_op *op)
{
    return op->kind == DRILL_OP_ORDER_STATUS ? op->user_id : op->product_id;
}

/* cache=on: drop the entries that changes (from, to] touch; the rest are
 * valid at `to`. cache=naive never invalidates. */
static void invalidate(struct cluster *cl, struct replica *rep, int64_t from, int64_t to)
{
    if (cl->cache_mode != DRILL_CACHE_ON)
        return;
    for (int64_t q = from + 1; q <= to; q++) {
        struct tag t = tag_of(cl, q);
        bool orders = t.kind == DRILL_OP_CHECKOUT || t.kind == DRILL_OP_ORDER_CANCEL;
        if (t.kind == TAG_ALL || orders) {
            /* orders change stock too, which browse and search show */
            cache_invalidate(&rep->cache, DRILL_OP_BROWSE, 0, true);
            cache_invalidate(&rep->cache, DRILL_OP_SEARCH, 0, true);
        }
        if (t.kind == TAG_ALL)
            cache_invalidate(&rep->cache, DRILL_OP_ORDER_STATUS, 0, true);
        else if (orders)
            cache_invalidate(&rep->cache, DRILL_OP_ORDER_STATUS, t.user, false);
    }
    cache_advance(&rep->cache, to);
}

static void on_batch(struct sim *s, struct cluster *cl, const struct world_msg *m)
{
    struct replica *rep = replica_of(cl, m->to);
    shop *sh = running_shop(s, m->to);
    if (rep == NULL || sh == NULL || m->data == NULL)
        return;
    struct shop_apply_result res;
    int err = shop_replica_apply(sh, CLUSTER_SOURCE, m->data, m->len, &res);
    if (crashed_now(s))
        return;
    if (err) {
        if (err != rep->last_err)
            world_trace(s, cl_node_name(s, m->to), "cannot apply changes %lld..%lld: %s",
                        (long long)m->a, (long long)m->b, shop_errmsg(sh));
        rep->last_err = err;
        return; /* no ack: the leader resends */
    }
    if (res.applied > 0) {
        rep->last_err = 0;
        int64_t from = res.position - res.applied;
        note_position(s, rep, from);
        record_applied(s, rep, from, res.position);
        invalidate(cl, rep, from, res.position);
        lag_sample(cl, s->now_us - res.position_at_us);
        world_trace(s, cl_node_name(s, m->to), "applied changes %lld..%lld from the leader",
                    (long long)from + 1, (long long)res.position);
    }
    rep->position = res.position;
    world_send(s, m->to, cl->leader, MSG_ACK, res.position, res.gap ? ACK_GAP : 0, NULL, 0,
               s->now_us);
}

static void on_probe(struct sim *s, struct cluster *cl, const struct world_msg *m)
{
    struct replica *rep = replica_of(cl, m->to);
    if (rep != NULL && running_shop(s, m->to) != NULL && rep->position >= 0)
        world_send(s, m->to, cl->leader, MSG_ACK, rep->position, ACK_HELLO, NULL, 0, s->now_us);
}

static void forward(struct sim *s, struct cluster *cl, struct replica *rep, struct sim_op *op,
                    struct op_state *os, const char *why)
{
    os->flags |= OP_FORWARDED;
    os->incarnation = rep->incarnation;
    if (op->is_write)
        cl->writes_forwarded++;
    else
        cl->reads_to_leader++;
    world_send(s, rep->node, cl->leader, MSG_FORWARD, op->id, (int64_t)rep->incarnation, NULL, 0,
               s->now_us);
    world_trace(s, cl_node_name(s, rep->node), "#%u %s from client%d: to the leader (%s)", op->id,
                drill_op_name(op->kind), op->client, why);
}

/* Answers a read from the cache when the entry may answer it. */
static bool answer_from_cache(struct sim *s, struct cluster *cl, struct replica *rep,
                              struct sim_op *op, struct op_state *os)
{
    if (cl->cache_mode == DRILL_CACHE_OFF || !is_cached_kind(op->kind))
        return false;
    const struct cache_entry *e = cache_get(&rep->cache, (int)op->kind, cache_arg(op), s->now_us);
    /* the correct cache refuses an entry older than what the session has seen */
    if (e == NULL || (cl->cache_mode == DRILL_CACHE_ON && e->position < op->min_seq))
        return false;
    op->err = 0;
    op->node = rep->node;
    /* what the entry holds, at the position it claims (session.c judges both) */
    session_read_at(s, op, cl->leader, e->position, e->seen, e->seen_count,
                    e->seen_count >= SIM_SEEN_MAX);
    os->read_pos = e->position;
    os->flags |= OP_POS | OP_REPLIED;
    struct world_node *node = &s->nodes[rep->node];
    int64_t start = s->now_us > node->busy_until_us ? s->now_us : node->busy_until_us;
    node->busy_until_us = start + CLUSTER_CACHE_HIT_US;
    world_trace(s, node->name, "#%u %s from client%d: from the cache (as of change %lld, %.3fs old)",
                op->id, drill_op_name(op->kind), op->client, (long long)e->position,
                secs(s->now_us - e->created_us));
    world_reply(s, rep->node, op, node->busy_until_us);
    return true;
}

/* A client's request reached replica rep. */
static bool serve_at_replica(struct sim *s, struct cluster *cl, struct replica *rep,
                             const struct world_msg *m)
{
    struct sim_op *op = &s->ops[m->op - 1];
    struct op_state *os = op_state(cl, op->id);
    if (os == NULL)
        return false;
    if (os->flags & OP_AT_REPLICA) {
        world_trace(s, cl_node_name(s, rep->node), "#%u duplicate request%s", op->id,
                    (os->flags & OP_REPLIED) ? ": answered again" : ": already in progress");
        if (os->flags & OP_REPLIED)
            world_reply(s, rep->node, op, s->now_us);
        return true;
    }
    os->flags |= OP_AT_REPLICA;
    if (op->is_write) {
        forward(s, cl, rep, op, os, "a write");
        return true;
    }
    if (answer_from_cache(s, cl, rep, op, os))
        return true;
    if (rep->position < op->min_seq) {
        char why[96];
        snprintf(why, sizeof(why), "the client has seen change %lld, this replica is at %lld",
                 (long long)op->min_seq, (long long)rep->position);
        forward(s, cl, rep, op, os, why);
        return true;
    }
    os->flags |= OP_REPLIED; /* the runner serves it here and replies */
    return false;
}

static void on_result(struct sim *s, struct cluster *cl, const struct world_msg *m)
{
    struct replica *rep = replica_of(cl, m->to);
    if (rep == NULL || m->a < 1 || (size_t)m->a > s->op_count)
        return;
    struct sim_op *op = &s->ops[m->a - 1];
    struct op_state *os = op_state(cl, op->id);
    if (os == NULL || (uint64_t)m->b != rep->incarnation || (os->flags & OP_REPLIED))
        return; /* a result for a process that died since, or a duplicate */
    os->flags |= OP_REPLIED;
    world_reply(s, rep->node, op, s->now_us);
}

/* ---- the registry and the clients' view of it ---------------------------- */

/*
 * The runner tells a module when a node with a shop restarts, not when the
 * registry (no shop) does: notice it here, from any event. Its memory of
 * heartbeats is gone; it answers again once a whole window has passed.
 */
static void registry_poll(struct sim *s, struct cluster *cl)
{
    if (!cl->registry_down || !s->nodes[cl->registry].up)
        return;
    cl->registry_down = false;
    cl->registry_up_us = s->now_us;
    cl->registry_warming_traced = false;
    world_trace(s, "registry", "back: answers once it has heard heartbeats for %lld ms",
                (long long)(CLUSTER_REGISTRY_WINDOW_US / 1000));
}

static void heartbeat(struct sim *s, struct cluster *cl, int r)
{
    struct replica *rep = &cl->rep[r];
    world_send(s, rep->node, cl->registry, MSG_HEARTBEAT, r, 0, NULL, 0, s->now_us);
    world_timer(s, s->now_us + CLUSTER_HEARTBEAT_US, TICK_HEARTBEAT,
                (int64_t)(rep->incarnation * 32 + (uint64_t)r));
}

static void on_heartbeat_tick(struct sim *s, struct cluster *cl, int64_t b)
{
    int r = (int)(b % 32);
    if (r >= cl->replica_count || (uint64_t)b / 32 != cl->rep[r].incarnation ||
        running_shop(s, cl->rep[r].node) == NULL)
        return; /* a dead process's timer: the restart starts a new one */
    heartbeat(s, cl, r);
}

/*
 * The registry's answer to a client. Sent as a timer for one link latency,
 * not as a message: the runner delivers node-to-node messages only (see
 * deliver() in runner.c), so the registry -> client link has no faults.
 */
static void answer_client(struct sim *s, struct cluster *cl, int client)
{
    if (s->now_us - cl->registry_up_us < CLUSTER_REGISTRY_WINDOW_US) {
        if (!cl->registry_warming_traced)
            world_trace(s, "registry", "not answering yet: still hearing heartbeats");
        cl->registry_warming_traced = true;
        return;
    }
    uint32_t mask = 0;
    for (int r = 0; r < cl->replica_count; r++)
        if (cl->heard_us[r] >= 0 && s->now_us - cl->heard_us[r] <= CLUSTER_REGISTRY_WINDOW_US)
            mask |= UINT32_C(1) << r;
    world_timer(s, s->now_us + s->drill->topology.latency_us, TICK_ANSWER,
                (int64_t)mask << 16 | client);
}

static void on_refresh_tick(struct sim *s, struct cluster *cl, int client)
{
    struct session *ss = &cl->sessions[client];
    char lane[32], known[128];
    snprintf(lane, sizeof(lane), "client%d", client);
    if (ss->asked_us > ss->answered_us && !ss->stale) {
        ss->stale = true;
        mask_text(cl, s, ss->lb.known_mask, known, sizeof(known));
        if (ss->lb.known_at_us < 0)
            world_trace(s, lane, "the registry did not answer: keeping the configured list %s",
                        known);
        else
            world_trace(s, lane, "the registry did not answer: keeping its last good answer %s "
                                 "(from %.3fs)", known, secs(ss->lb.known_at_us));
    }
    ss->asked_us = s->now_us;
    world_send(s, world_client_endpoint(s, client), cl->registry, MSG_GET_SERVER, client, 0, NULL,
               0, s->now_us);
    world_timer(s, s->now_us + CLUSTER_REFRESH_US, TICK_REFRESH, client);
}

static void on_answer_tick(struct sim *s, struct cluster *cl, int64_t b)
{
    int client = (int)(b & 0xffff);
    uint32_t mask = (uint32_t)(b >> 16);
    if (client < 1 || client > cl->client_count)
        return;
    struct session *ss = &cl->sessions[client];
    char lane[32], known[128];
    snprintf(lane, sizeof(lane), "client%d", client);
    mask_text(cl, s, mask, known, sizeof(known));
    if (ss->stale)
        world_trace(s, lane, "the registry answers again: %s", known);
    else if (mask != ss->lb.known_mask)
        world_trace(s, lane, "the registry lists %s", known);
    ss->stale = false;
    ss->answered_us = s->now_us;
    lb_set_known(&ss->lb, mask, s->now_us);
}

static void on_registry_msg(struct sim *s, struct cluster *cl, const struct world_msg *m)
{
    if (m->type == MSG_HEARTBEAT && m->a >= 0 && m->a < cl->replica_count)
        cl->heard_us[m->a] = s->now_us;
    else if (m->type == MSG_GET_SERVER && m->a >= 1 && m->a <= cl->client_count)
        answer_client(s, cl, (int)m->a);
}

/* ---- the runner's hooks --------------------------------------------------- */

static int cluster_configure(struct sim *s)
{
    const struct drill_topology *t = &s->drill->topology;
    struct cluster *cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        snprintf(s->msg, sizeof(s->msg), "out of memory");
        return -ENOMEM;
    }
    s->topo_state = cl;
    cl->leader = world_node_index(s, "leader");
    cl->registry = world_node_index(s, "registry");
    cl->cache_mode = t->cache;
    cl->before_commit = t->propagate_before_commit;
    assert(cl->leader >= 0 && cl->registry >= 0);
    for (int r = 0; r < t->replicas && r < DRILL_REPLICAS_MAX; r++) {
        char name[FAULTS_NODE_MAX];
        snprintf(name, sizeof(name), "replica%d", r + 1);
        struct replica *rep = &cl->rep[cl->replica_count++];
        rep->node = world_node_index(s, name);
        assert(rep->node >= 0);
        s->nodes[rep->node].seed = false; /* the catalog reaches it by propagation */
        cache_init(&rep->cache, t->cache_ttl_us > 0 ? t->cache_ttl_us : 1, CACHE_ENTRIES_MAX);
        link_reset(&rep->link, 0);
    }
    struct world_node *leader = &s->nodes[cl->leader];
    leader->seed = true;
    leader->cfg.outbox = true;
    leader->cfg.propagate_before_commit = cl->before_commit;
    if (cl->before_commit)
        s->env.before_commit = before_commit; /* copied into each shop when it opens */
    s->main_node = cl->leader;
    cl->client_count = s->drill->clients < DRILL_CLIENTS_MAX ? s->drill->clients
                                                             : DRILL_CLIENTS_MAX;
    for (int c = 1; c <= cl->client_count; c++)
        lb_init(&cl->sessions[c].lb, cl->replica_count);
    return 0;
}

/* Reads the leader's head and what it pruned from its outbox. */
static int read_head(struct sim *s, struct cluster *cl)
{
    shop *sh = running_shop(s, cl->leader);
    struct shop_outbox_info info;
    int err = sh != NULL ? shop_outbox_info(sh, &info) : -ENOENT;
    if (crashed_now(s) || err)
        return err ? err : -ECANCELED;
    cl->head = info.head_seq;
    cl->pruned = info.oldest_seq > 0 ? info.oldest_seq - 1 : info.head_seq;
    return 0;
}

static int cluster_start(struct sim *s)
{
    struct cluster *cl = state(s);
    int err = read_head(s, cl);
    if (err) {
        snprintf(s->msg, sizeof(s->msg), "cannot read the leader's outbox at the start: %s",
                 platform_strerror(err));
        return err;
    }
    cl->seeded = cl->head;
    for (int64_t q = 1; q <= cl->head; q++)
        tag_record(cl, q, NULL); /* the seeded catalog: touches everything */
    for (int r = 0; r < cl->replica_count; r++) {
        cl->rep[r].position = 0;
        cl->heard_us[r] = 0; /* the registry ran before the drill began */
        heartbeat(s, cl, r);
    }
    cl->registry_up_us = -CLUSTER_REGISTRY_WINDOW_US;
    ship_all(s, cl);
    for (int c = 1; c <= cl->client_count; c++)
        world_timer(s, CLUSTER_REFRESH_US * (c % 8) / 8, TICK_REFRESH, c);
    world_trace(s, "leader", "cluster: %d replicas, propagate=%s, cache=%s, catalog of %lld "
                             "changes shipping",
                cl->replica_count, cl->before_commit ? "before-commit" : "after-commit",
                cl->cache_mode == DRILL_CACHE_ON      ? "on"
                : cl->cache_mode == DRILL_CACHE_NAIVE ? "naive"
                                                      : "off",
                (long long)cl->head);
    return 0;
}

static int cluster_route(struct sim *s, struct sim_op *op)
{
    struct cluster *cl = state(s);
    if (op->client < 1 || op->client > cl->client_count || op_state(cl, op->id) == NULL)
        return -1;
    struct session *ss = &cl->sessions[op->client];
    uint32_t mask;
    int r = lb_pick(&ss->lb, s->now_us, &mask);
    op->via = cl->rep[r].node;
    op->healthy_mask = mask;
    if (!op->is_write)
        op->min_seq = ss->seq;
    return op->via;
}

static bool cluster_serve(struct sim *s, int n, const struct world_msg *m)
{
    struct cluster *cl = state(s);
    registry_poll(s, cl);
    struct replica *rep = replica_of(cl, n);
    return rep != NULL && serve_at_replica(s, cl, rep, m);
}

static void cluster_served(struct sim *s, int n, struct sim_op *op)
{
    struct cluster *cl = state(s);
    struct op_state *os = op_state(cl, op->id);
    if (os == NULL)
        return;
    if (n == cl->leader) {
        if (!op->is_write) {
            os->read_pos = cl->head;
            os->flags |= OP_POS;
        } else if (op->err == 0 && op->seq > 0) {
            if (op->seq > cl->head)
                cl->head = op->seq;
            tag_record(cl, op->seq, op);
            ship_all(s, cl);
        }
        return;
    }
    struct replica *rep = replica_of(cl, n);
    if (rep == NULL || op->is_write)
        return;
    os->read_pos = rep->position;
    os->flags |= OP_POS;
    if (cl->cache_mode != DRILL_CACHE_OFF && op->err == 0 && is_cached_kind(op->kind) &&
        cache_put(&rep->cache, (int)op->kind, cache_arg(op), rep->position, s->now_us,
                  op->kind == DRILL_OP_ORDER_STATUS ? s->read_ids : NULL,
                  op->kind == DRILL_OP_ORDER_STATUS ? s->read_count : 0) != 0)
        world_trace(s, cl_node_name(s, n), "#%u not cached: out of memory", op->id);
}

/* Positions are the leader's sequence: a write's change, a read's copy or cache entry. */
static bool cluster_position(struct sim *s, int n, const struct sim_op *op, int *lineage,
                             int64_t *pos)
{
    struct cluster *cl = state(s);
    (void)n;
    *lineage = cl->leader;
    if (op->is_write) {
        *pos = op->err == 0 && op->seq > 0 ? op->seq : -1;
        return true;
    }
    const struct op_state *os = op_state(cl, op->id);
    *pos = os != NULL && (os->flags & OP_POS) ? os->read_pos : -1;
    return true;
}

static void cluster_replied(struct sim *s, struct sim_op *op)
{
    struct cluster *cl = state(s);
    struct replica *rep = replica_of(cl, op->via);
    if (rep == NULL || op->client < 1 || op->client > cl->client_count)
        return;
    struct session *ss = &cl->sessions[op->client];
    const struct op_state *os = op_state(cl, op->id);
    if (op->outcome == SIM_OK) {
        int64_t seen = op->is_write ? op->seq : os != NULL && (os->flags & OP_POS) ? os->read_pos : 0;
        if (seen > ss->seq)
            ss->seq = seen;
        return;
    }
    bool timed_out = op->complete_us - op->invoke_us >= SIM_CLIENT_TIMEOUT_US;
    if (op->outcome != SIM_UNKNOWN || !timed_out)
        return;
    char lane[32];
    snprintf(lane, sizeof(lane), "client%d", op->client);
    lb_skip(&ss->lb, replica_index(cl, rep), s->now_us + CLUSTER_SKIP_US);
    world_trace(s, lane, "%s did not answer #%u in time: skipped until %.3fs",
                cl_node_name(s, rep->node), op->id, secs(s->now_us + CLUSTER_SKIP_US));
}

static void cluster_deliver(struct sim *s, const struct world_msg *m)
{
    struct cluster *cl = state(s);
    registry_poll(s, cl);
    switch (m->type) {
    case MSG_BATCH:
        on_batch(s, cl, m);
        break;
    case MSG_ACK:
        on_ack(s, cl, m);
        break;
    case MSG_PROBE:
        on_probe(s, cl, m);
        break;
    case MSG_FORWARD:
        on_forward(s, cl, m);
        break;
    case MSG_RESULT:
        on_result(s, cl, m);
        break;
    case MSG_HEARTBEAT:
    case MSG_GET_SERVER:
        on_registry_msg(s, cl, m);
        break;
    default:
        world_trace(s, cl_node_name(s, m->to), "unknown cluster message %d ignored", m->type);
        break;
    }
}

static void cluster_tick(struct sim *s, int a, int64_t b)
{
    struct cluster *cl = state(s);
    registry_poll(s, cl);
    switch (a) {
    case TICK_SHIP:
        on_ship_timeout(s, cl, b);
        break;
    case TICK_HEARTBEAT:
        on_heartbeat_tick(s, cl, b);
        break;
    case TICK_REFRESH:
        if (b >= 1 && b <= cl->client_count)
            on_refresh_tick(s, cl, (int)b);
        break;
    case TICK_ANSWER:
        on_answer_tick(s, cl, b);
        break;
    default:
        break;
    }
}

static void cluster_crashed(struct sim *s, int n)
{
    struct cluster *cl = state(s);
    if (n == cl->leader) {
        /* its memory of the replicas dies with it */
        for (int r = 0; r < cl->replica_count; r++)
            link_reset(&cl->rep[r].link, -1);
        return;
    }
    if (n == cl->registry) {
        cl->registry_down = true;
        for (int r = 0; r < cl->replica_count; r++)
            cl->heard_us[r] = -1;
        return;
    }
    struct replica *rep = replica_of(cl, n);
    if (rep == NULL)
        return;
    rep->incarnation++;
    rep->position = -1;
    rep->last_err = 0;
    cache_release(&rep->cache);
}

static void cluster_restarted(struct sim *s, int n)
{
    struct cluster *cl = state(s);
    if (n == cl->leader) {
        if (read_head(s, cl) == 0)
            ship_all(s, cl); /* every link is unknown: probes */
        return;
    }
    struct replica *rep = replica_of(cl, n);
    shop *sh = running_shop(s, n);
    if (rep == NULL || sh == NULL)
        return;
    int64_t position = 0;
    int err = shop_replica_position(sh, CLUSTER_SOURCE, &position, NULL);
    if (crashed_now(s))
        return;
    if (err) {
        world_trace(s, cl_node_name(s, n), "cannot read its position: %s", shop_errmsg(sh));
        return;
    }
    note_position(s, rep, position);
    rep->position = position;
    world_trace(s, cl_node_name(s, n), "back at change %lld: asking the leader to catch up",
                (long long)position);
    world_send(s, n, cl->leader, MSG_ACK, position, ACK_HELLO, NULL, 0, s->now_us);
    heartbeat(s, cl, replica_index(cl, rep));
}

/* Why rep is not caught up yet, short enough for the drain's message. */
static void pending_why(struct sim *s, struct cluster *cl, struct replica *rep, char *why,
                        size_t len)
{
    const char *name = cl_node_name(s, rep->node);
    const struct phantom *p = &cl->phantoms[0];
    if (rep->last_err == -EBADMSG && cl->phantom_count > 0)
        snprintf(why, len, "%s is stuck at change %lld of %lld: the copies diverged after change "
                           "%lld was propagated before its commit failed (op #%u, %.3fs)",
                 name, (long long)rep->position, (long long)cl->head, (long long)p->seq, p->op,
                 secs(p->at_us));
    else if (rep->last_err != 0)
        snprintf(why, len, "%s is at change %lld of %lld: %s", name, (long long)rep->position,
                 (long long)cl->head, shop_errmsg(s->nodes[rep->node].shop));
    else
        snprintf(why, len, "%s is at change %lld, the leader at %lld%s", name,
                 (long long)rep->position, (long long)cl->head,
                 rep->link.stuck ? " (the leader's outbox no longer holds what it lacks)" : "");
}

static bool cluster_pending(struct sim *s, char *why, size_t len)
{
    struct cluster *cl = state(s);
    if (running_shop(s, cl->leader) == NULL || read_head(s, cl) != 0)
        return false; /* the runner reports a shop that is not running */
    for (int r = 0; r < cl->replica_count; r++) {
        struct replica *rep = &cl->rep[r];
        shop *sh = running_shop(s, rep->node);
        if (sh == NULL || rep->position >= cl->head)
            continue;
        pending_why(s, cl, rep, why, len);
        ship(s, cl, rep);
        return true;
    }
    return false;
}

static void cluster_release(struct sim *s)
{
    struct cluster *cl = s->topo_state;
    if (cl == NULL)
        return;
    for (int r = 0; r < cl->replica_count; r++) {
        cache_release(&cl->rep[r].cache);
        free(cl->rep[r].applied);
    }
    free(cl->tags);
    free(cl->ops);
    free(cl->lag);
    free(cl);
    s->topo_state = NULL;
}

/* The report's lanes: a replica's lag behind the leader's head. */
static enum report_node_state cluster_node_state(struct sim *s, int n, int64_t *value,
                                                 char *label, size_t len)
{
    struct cluster *cl = state(s);
    for (int r = 0; r < cl->replica_count; r++) {
        if (cl->rep[r].node != n || cl->rep[r].position < 0)
            continue;
        *value = cl->head - cl->rep[r].position;
        if (*value <= 0) {
            *value = 0;
            if (label != NULL)
                snprintf(label, len, "caught up: holds every change of %s", s->nodes[cl->leader].name);
            return REPORT_STATE_UP;
        }
        if (label != NULL)
            snprintf(label, len, "lags: %lld change(s) behind %s", (long long)*value,
                     s->nodes[cl->leader].name);
        return REPORT_STATE_BEHIND;
    }
    return REPORT_STATE_COUNT;
}

const struct world_topo world_cluster_topo = {
    .node_state = cluster_node_state,
    .name = "cluster",
    .configure = cluster_configure,
    .start = cluster_start,
    .route = cluster_route,
    .serve = cluster_serve,
    .served = cluster_served,
    .position = cluster_position,
    .replied = cluster_replied,
    .deliver = cluster_deliver,
    .tick = cluster_tick,
    .crashed = cluster_crashed,
    .restarted = cluster_restarted,
    .pending = cluster_pending,
    .release = cluster_release,
};

/* ---- checkers --------------------------------------------------------------- */

static bool is_cluster(const struct sim *s)
{
    return s->topo == &world_cluster_topo && s->topo_state != NULL;
}

enum sim_check cluster_no_echo(struct sim *s, const struct drill_expect *e, char *why, size_t len)
{
    (void)e;
    if (!is_cluster(s))
        return SIM_CHECK_SKIPPED;
    struct cluster *cl = state(s);
    for (int r = 0; r < cl->replica_count; r++) {
        const struct replica *rep = &cl->rep[r];
        if (rep->dup_seq == 0)
            continue;
        snprintf(why, len,
                 "%s applied change %lld of the leader twice: first at %.3fs, again at %.3fs "
                 "(a propagated change must be applied exactly once on each replica)",
                 cl_node_name(s, rep->node), (long long)rep->dup_seq, secs(rep->dup_first_us),
                 secs(rep->dup_again_us));
        return SIM_CHECK_VIOLATED;
    }
    shop *ls = running_shop(s, cl->leader);
    if (ls == NULL)
        return SIM_CHECK_SKIPPED;
    for (int r = 0; r < cl->replica_count; r++) {
        int64_t seq = 0;
        if (shop_replica_position(ls, cl_node_name(s, cl->rep[r].node), &seq, NULL) != 0) {
            crashed_now(s);
            return SIM_CHECK_SKIPPED;
        }
        if (seq > 0) {
            snprintf(why, len, "the leader applied %lld change(s) from %s: a change came back "
                               "to the node that ordered it (an echo)",
                     (long long)seq, cl_node_name(s, cl->rep[r].node));
            return SIM_CHECK_VIOLATED;
        }
    }
    /* each change of the workload each replica applied, counted once */
    for (int r = 0; r < cl->replica_count; r++)
        world_witness(s, cl->rep[r].position > cl->seeded
                             ? (uint64_t)(cl->rep[r].position - cl->seeded)
                             : 0);
    return SIM_CHECK_HOLDS;
}

/* The client's routed requests in issue order: picks (0-based replicas)
 * and healthy sets; returns how many, and their op indexes in idx. */
static size_t client_picks(struct sim *s, struct cluster *cl, int client, uint32_t *masks,
                           int *picks, size_t *idx)
{
    size_t n = 0;
    for (size_t i = 0; i < s->op_count; i++) {
        const struct sim_op *op = &s->ops[i];
        const struct replica *rep = op->client == client ? replica_of(cl, op->via) : NULL;
        if (rep == NULL)
            continue;
        masks[n] = op->healthy_mask;
        picks[n] = replica_index(cl, rep);
        idx[n++] = i;
    }
    return n;
}

static void explain_imbalance(struct sim *s, struct cluster *cl, int client, const size_t *idx,
                              const struct lb_imbalance *b, char *why, size_t len)
{
    const struct sim_op *first = &s->ops[idx[b->first]], *last = &s->ops[idx[b->last]];
    char set[128];
    mask_text(cl, s, b->mask, set, sizeof(set));
    if (b->outside) {
        snprintf(why, len, "client%d sent #%u at %.3fs to %s, which was not among its healthy "
                           "replicas %s",
                 client, last->id, secs(last->invoke_us), cl_node_name(s, last->via), set);
        return;
    }
    snprintf(why, len,
             "client%d's requests #%u..#%u (%.3fs to %.3fs) rotated over the healthy replicas %s "
             "unevenly: %s got %u and %s got %u (round-robin keeps them within one)",
             client, first->id, last->id, secs(first->invoke_us), secs(last->invoke_us), set,
             cl_node_name(s, cl->rep[b->most].node), b->most_count,
             cl_node_name(s, cl->rep[b->least].node), b->least_count);
}

enum sim_check cluster_lb_balanced(struct sim *s, const struct drill_expect *e, char *why,
                                   size_t len)
{
    (void)e;
    if (!is_cluster(s))
        return SIM_CHECK_SKIPPED;
    struct cluster *cl = state(s);
    size_t cap = s->op_count > 0 ? s->op_count : 1;
    uint32_t *masks = malloc(cap * sizeof(*masks));
    int *picks = malloc(cap * sizeof(*picks));
    size_t *idx = malloc(cap * sizeof(*idx));
    enum sim_check result = SIM_CHECK_SKIPPED;
    if (masks == NULL || picks == NULL || idx == NULL)
        goto out_free;
    result = SIM_CHECK_HOLDS;
    for (int c = 1; c <= cl->client_count && result == SIM_CHECK_HOLDS; c++) {
        size_t n = client_picks(s, cl, c, masks, picks, idx);
        for (size_t i = 0; i < n; i++)
            world_witness(s, __builtin_popcount(masks[i]) >= 2); /* a choice to balance */
        struct lb_imbalance b;
        if (!lb_balanced(masks, picks, n, &b)) {
            explain_imbalance(s, cl, c, idx, &b, why, len);
            result = SIM_CHECK_VIOLATED;
        }
    }
    if (result == SIM_CHECK_HOLDS && s->judged == 0)
        snprintf(why, len, "no request was balanced over two or more healthy replicas (%d "
                           "replica%s)",
                 cl->replica_count, cl->replica_count == 1 ? "" : "s");
out_free:
    free(masks);
    free(picks);
    free(idx);
    return result;
}

/* Why a replica differs from the leader, in rows and in the naive mode's words. */
static void explain_divergence(struct sim *s, struct cluster *cl, struct replica *rep, char *why,
                               size_t len)
{
    struct shop_audit *a = calloc(2, sizeof(*a));
    size_t n = (size_t)snprintf(why, len,
                                "after the drain (%.3fs) %s (at change %lld) and the leader (at "
                                "%lld) hold different data",
                                secs(s->now_us), cl_node_name(s, rep->node), (long long)rep->position,
                                (long long)cl->head);
    if (a != NULL && shop_audit(running_shop(s, cl->leader), 0, &a[0]) == 0 &&
        shop_audit(running_shop(s, rep->node), 0, &a[1]) == 0 && n < len)
        n += (size_t)snprintf(why + n, len - n, ": the leader has %lld orders and %lld users, "
                                                "%s %lld orders and %lld users",
                              (long long)a[0].orders, (long long)a[0].users,
                              cl_node_name(s, rep->node), (long long)a[1].orders,
                              (long long)a[1].users);
    free(a);
    if (cl->phantom_count > 0 && n < len) {
        const struct phantom *p = &cl->phantoms[0];
        snprintf(why + n, len - n,
                 ". propagate=before-commit sent %llu change(s) whose commit then failed; the "
                 "first, change %lld of op #%u at %.3fs (%s), reached the replicas but not the "
                 "leader, whose next change reused that sequence and was skipped as a duplicate",
                 (unsigned long long)cl->phantoms_total, (long long)p->seq, p->op, secs(p->at_us),
                 platform_strerror(p->err));
    }
}

enum sim_check cluster_converges(struct sim *s, const struct drill_expect *e, char *why,
                                 size_t len)
{
    (void)e;
    if (!is_cluster(s) || !s->drained)
        return SIM_CHECK_SKIPPED;
    struct cluster *cl = state(s);
    shop *ls = running_shop(s, cl->leader);
    char lead[65], copy[65];
    if (ls == NULL || shop_digest(ls, 0, lead) != 0) {
        crashed_now(s);
        snprintf(why, len, "after the drain the leader's data cannot be read");
        return SIM_CHECK_VIOLATED;
    }
    for (int r = 0; r < cl->replica_count; r++) {
        struct replica *rep = &cl->rep[r];
        shop *sh = running_shop(s, rep->node);
        if (sh == NULL || shop_digest(sh, 0, copy) != 0) {
            crashed_now(s);
            snprintf(why, len, "after the drain %s's data cannot be read",
                     cl_node_name(s, rep->node));
            return SIM_CHECK_VIOLATED;
        }
        if (strcmp(lead, copy) != 0) {
            explain_divergence(s, cl, rep, why, len);
            return SIM_CHECK_VIOLATED;
        }
    }
    /* the workload's changes every copy holds */
    world_witness(s, cl->head > cl->seeded ? (uint64_t)(cl->head - cl->seeded) : 0);
    return SIM_CHECK_HOLDS;
}

void cluster_report(struct sim *s)
{
    if (!is_cluster(s))
        return;
    struct cluster *cl = state(s);
    uint64_t hits = 0, misses = 0;
    for (int r = 0; r < cl->replica_count; r++) {
        hits += cl->rep[r].cache.hits;
        misses += cl->rep[r].cache.misses;
    }
    world_metric(s, "propagation_lag_p50_us", lag_percentile(cl, 50), "us");
    world_metric(s, "propagation_lag_p99_us", lag_percentile(cl, 99), "us");
    world_metric(s, "propagation_resends", (int64_t)cl->resends, "batches");
    world_metric(s, "reads_sent_to_leader", (int64_t)cl->reads_to_leader, "reads");
    if (cl->cache_mode != DRILL_CACHE_OFF)
        world_metric(s, "cache_hits", (int64_t)hits, "reads");
    world_trace(s, "-",
                "propagation lag over %zu applied batches: p50 %.3fs, p99 %.3fs; %llu batches "
                "sent, %llu resends; %llu writes forwarded, %llu reads sent to the leader for "
                "freshness; cache %llu hits, %llu misses",
                cl->lag_count, secs(lag_percentile(cl, 50)), secs(lag_percentile(cl, 99)),
                (unsigned long long)cl->batches_sent, (unsigned long long)cl->resends,
                (unsigned long long)cl->writes_forwarded, (unsigned long long)cl->reads_to_leader,
                (unsigned long long)hits, (unsigned long long)misses);
}
