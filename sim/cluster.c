/*
 * cluster.c — the simulator's host of replicas with leader propagation
 * (topology `cluster`): nodes `leader`, `replica1..N` and `registry`, and
 * one client node per simulated client, all the platform's replication core
 * (platform/node.h: roles cluster-leader, cluster-replica, registry,
 * client). Their messages travel the simulated network (latency, jitter,
 * partitions, the net/<from>/<to>/... points) and their timers fire in
 * virtual time. Every protocol decision — propagation, windows, acks,
 * resends, catch-up, pruning, heartbeats, the registry's answers, round
 * robin, the session rule, cache invalidation, the naive modes — is the
 * core's; this file carries events and requests, measures, and judges.
 *
 * A client request goes to the replica the client node picks. The replica's
 * node_route decides: a write is forwarded to the leader (a request carried
 * here as the host's own message, like serve's HTTP forward) and its answer
 * is relayed once the replica holds the write itself; a read behind the
 * client's session waits until the replica has caught up; any other read is
 * served from the replica's cache (node_cache_get) or its copy.
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

#define CLUSTER_CACHE_HIT_US 20            /* a replica's time to answer from its cache */
#define CLUSTER_LAG_SAMPLES_MAX (1u << 20) /* propagation lags kept for the percentiles */

enum cluster_msg {
    MSG_WIRE = 1,  /* a message of the core (opaque bytes) */
    MSG_FORWARD,   /* replica -> leader: a client's write; a: op id, b: the replica's life */
    MSG_RESULT,    /* leader -> replica: a: op id served, b: the life echoed */
};

/* A request a replica holds until its position reaches wait_for. */
struct waiter {
    uint32_t op;
    int64_t wait_for;
    bool reply;             /* a forwarded write's answer; else a read to serve */
};

struct replica {
    int node;
    struct node *nd;
    uint64_t life;          /* bumped by a crash: answers for a dead process die */
    uint64_t applied_seen;  /* batches applied, for the lag samples */
    int64_t registry_heard_us; /* the last message of it the registry got, -1: none */
    struct waiter *waiting;
    size_t wait_count, wait_cap;
};

enum { OP_AT_REPLICA = 1, OP_FORWARDED = 2, OP_REPLIED = 4, OP_LEADER_DONE = 8, OP_POS = 16 };

struct op_state {
    uint8_t flags;
    int64_t read_pos;       /* a read: the position it was answered at */
};

struct cluster {
    int leader, registry;
    int replica_count;
    struct replica rep[DRILL_REPLICAS_MAX];
    struct node *nl, *nr;   /* the leader's and the registry's core nodes */
    int client_count;
    struct node *clients[DRILL_CLIENTS_MAX + 1];
    struct platform_env env;
    enum drill_cache cache_mode;
    bool before_commit;
    int64_t seeded;         /* the head at the start: the seeded catalog's changes */
    /* propagate=before-commit: the op served when the hook fired, for the words */
    uint32_t serving_op;
    bool hook_fired;
    uint32_t phantom_op;
    int phantom_err;
    int64_t phantom_at_us;
    struct op_state *ops;   /* by op id - 1 */
    size_t op_cap;
    int64_t *lag;           /* commit on the leader -> applied on a replica, per batch */
    size_t lag_count, lag_cap;
    uint64_t writes_forwarded, reads_waited, cache_answers;
    /* the registry's answers judged against what it heard (lb-balanced) */
    uint64_t listings_judged;
    int stale_rep;          /* -1: no answer listed a replica it had not heard lately */
    int stale_client;
    int64_t stale_at_us, stale_heard_us;
    /* a client that did not take the registry's answer (0: none) */
    int ignored_client;
    int64_t ignored_at_us;
    uint32_t ignored_answer, ignored_kept;
    /* run --live (live.c): the nodes are serve processes; what their status routes said
     * stands in for the core's nodes in the checkers */
    bool live;
    struct node_cluster_status live_leader, live_rep[DRILL_REPLICAS_MAX];
    int64_t listing_slack_us; /* live: transits the runner cannot see, allowed on top */
    int ignored_count;        /* live: how many replicas the ignored answer listed */
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

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

/* The core node at an endpoint (a node of the topology or a client). */
static struct node *node_at(struct sim *s, struct cluster *cl, int endpoint)
{
    if (endpoint >= (int)s->node_count) {
        int c = endpoint - (int)s->node_count + 1;
        return c >= 1 && c <= cl->client_count ? cl->clients[c] : NULL;
    }
    if (endpoint == cl->leader)
        return cl->nl;
    if (endpoint == cl->registry)
        return cl->nr;
    struct replica *rep = replica_of(cl, endpoint);
    return rep != NULL ? rep->nd : NULL;
}

static int endpoint_of(const struct sim *s, const char *name)
{
    int n = world_node_index(s, name);
    if (n >= 0)
        return n;
    int c = 0;
    if (sscanf(name, "client%d", &c) == 1 && c >= 1 && c <= s->drill->clients)
        return world_client_endpoint(s, c);
    return -1;
}

static struct node_status status_of(struct node *nd)
{
    struct node_status st;
    node_status(nd, &st);
    return st;
}

/* The cluster status of replica r (r < 0: the leader): its core node's, or live, what its
 * process said last. */
static struct node_cluster_status cl_status(struct cluster *cl, int r)
{
    if (cl->live)
        return r < 0 ? cl->live_leader : cl->live_rep[r];
    return status_of(r < 0 ? cl->nl : cl->rep[r].nd).cluster;
}

/* A crash point fired inside a node's shop during an event: kill it now. */
static void after_event(struct sim *s, int rc)
{
    if (rc == -ECANCELED || s->crash_pending)
        world_handle_crash_point(s);
}

static struct op_state *op_state(struct cluster *cl, uint32_t id)
{
    if (id > cl->op_cap) {
        if (id > SIM_OPS_MAX)
            return NULL;
        size_t cap = cl->op_cap ? cl->op_cap : 1024;
        while (cap < id)
            cap *= 2;
        struct op_state *grown = realloc(cl->ops, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        memset(grown + cl->op_cap, 0, (cap - cl->op_cap) * sizeof(*grown));
        cl->ops = grown;
        cl->op_cap = cap;
    }
    return &cl->ops[id - 1];
}

static void lag_sample(struct cluster *cl, int64_t lag_us)
{
    if (cl->lag_count == cl->lag_cap) {
        if (cl->lag_cap == CLUSTER_LAG_SAMPLES_MAX)
            return; /* the figures then describe the first samples only */
        size_t cap = cl->lag_cap ? 2 * cl->lag_cap : 1024;
        int64_t *grown = realloc(cl->lag, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        cl->lag = grown;
        cl->lag_cap = cap;
    }
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

/* ---- the environment the core acts through ------------------------------- */

/*
 * The registry answers a client (its only message to one): it may list only
 * replicas it heard within NODE_CLUSTER_REGISTRY_WINDOW_US. The bench knows
 * when the registry last got a message from each (a heartbeat): a replica
 * listed longer than the window after that is one it no longer hears, and
 * clients would keep sending requests to it (lb-balanced reports it).
 */
static void judge_listing(struct sim *s, struct cluster *cl, int client, uint32_t listed)
{
    if (cl->stale_rep >= 0)
        return;
    cl->listings_judged++;
    for (int r = 0; r < cl->replica_count; r++) {
        int64_t heard = cl->rep[r].registry_heard_us;
        if ((listed >> r & 1) &&
            (heard < 0 ||
             s->now_us - heard > NODE_CLUSTER_REGISTRY_WINDOW_US + cl->listing_slack_us)) {
            cl->stale_rep = r;
            cl->stale_client = client;
            cl->stale_at_us = s->now_us;
            cl->stale_heard_us = heard;
            return;
        }
    }
}

static void env_send(void *ctx, const char *from, const char *to, const void *msg, size_t len)
{
    struct sim *s = ctx;
    int f = endpoint_of(s, from), t = endpoint_of(s, to);
    struct cluster *cl = state(s);
    int64_t answer = 0; /* a registry answer carries its list + 1, to judge the client */
    if (f >= 0 && f == cl->registry && t >= (int)s->node_count && cl->nr != NULL) {
        uint32_t listed = status_of(cl->nr).cluster.listed_mask;
        judge_listing(s, cl, t - (int)s->node_count + 1, listed);
        answer = (int64_t)listed + 1;
    }
    if (f >= 0 && t >= 0)
        world_send(s, f, t, MSG_WIRE, answer, 0, msg, len, s->now_us);
}

static void env_timer(void *ctx, const char *node, int timer, int64_t at_us)
{
    struct sim *s = ctx;
    int e = endpoint_of(s, node);
    if (e >= 0)
        world_timer(s, at_us, timer, e);
}

static void env_trace(void *ctx, const char *node, const char *text)
{
    world_trace(ctx, node, "%s", text);
}

/* propagate=before-commit: the leader's shop hands over a change still uncommitted. */
static void before_commit(void *ctx, const char *node, int64_t seq, const void *change,
                          size_t len)
{
    struct sim *s = ctx;
    struct cluster *cl = state(s);
    if (strcmp(node, cl_node_name(s, cl->leader)) != 0 || cl->nl == NULL)
        return;
    cl->hook_fired = true;
    node_on_before_commit(cl->nl, seq, change, len);
}

/* ---- requests at a replica -------------------------------------------------- */

static bool is_cached_kind(enum drill_op kind)
{
    return kind == DRILL_OP_ORDER_STATUS || kind == DRILL_OP_BROWSE || kind == DRILL_OP_SEARCH;
}

/* The cache key of a read: order-status by user, browse and search by product. */
static void cache_key(const struct sim_op *op, char key[48])
{
    snprintf(key, 48, "%s/%lld", drill_op_name(op->kind),
             (long long)(op->kind == DRILL_OP_ORDER_STATUS ? op->user_id : op->product_id));
}

static void forward(struct sim *s, struct cluster *cl, struct replica *rep, struct sim_op *op,
                    struct op_state *os)
{
    os->flags |= OP_FORWARDED;
    cl->writes_forwarded++;
    world_send(s, rep->node, cl->leader, MSG_FORWARD, op->id, (int64_t)rep->life, NULL, 0,
               s->now_us);
    world_trace(s, cl_node_name(s, rep->node), "#%u %s from client%d: to the leader", op->id,
                drill_op_name(op->kind), op->client);
}

static void hold(struct replica *rep, struct sim_op *op, int64_t wait_for, bool reply)
{
    if (rep->wait_count == rep->wait_cap) {
        size_t cap = rep->wait_cap ? 2 * rep->wait_cap : 16;
        struct waiter *grown = realloc(rep->waiting, cap * sizeof(*grown));
        if (grown == NULL)
            return; /* not answered: the client times out */
        rep->waiting = grown;
        rep->wait_cap = cap;
    }
    rep->waiting[rep->wait_count++] = (struct waiter){op->id, wait_for, reply};
}

/* A product read's content, to judge a cache's answer by: the product's stock on a copy. */
static bool product_stock(struct sim *s, int node, int64_t product, int64_t *stock)
{
    shop *sh = s->nodes[node].up ? s->nodes[node].shop : NULL;
    struct shop_product p;
    if (sh == NULL || product <= 0 || shop_product_get(sh, product, &p) != 0)
        return false;
    *stock = p.stock;
    return true;
}

/*
 * A cached product read claims the replica's position: when that is the
 * copy's position now, the copy holds the state the answer claims, so the
 * stock the entry shows must be the copy's (an entry a product change should
 * have dropped shows the stock of before: its position lied).
 */
static void judge_cached_product(struct sim *s, struct replica *rep, struct sim_op *op,
                                 const struct node_cache_hit *hit)
{
    struct node_view v;
    int64_t shown, held;
    if (op->kind == DRILL_OP_ORDER_STATUS || hit->len != sizeof(shown))
        return;
    node_view(rep->nd, &v);
    memcpy(&shown, hit->answer, sizeof(shown));
    if (hit->position != v.position || !product_stock(s, rep->node, op->product_id, &held) ||
        held == shown)
        return;
    op->session |= SIM_SESSION_LIED;
    op->total_cents = shown; /* what it showed, and what the state at its position held */
    op->order_id = held;
}

/* Answers a read from the replica's cache when the core has an entry for it. */
static bool answer_from_cache(struct sim *s, struct cluster *cl, struct replica *rep,
                              struct sim_op *op, struct op_state *os)
{
    if (cl->cache_mode == DRILL_CACHE_OFF || !is_cached_kind(op->kind))
        return false;
    char key[48];
    cache_key(op, key);
    struct node_session session = {.position = op->min_seq};
    struct node_cache_hit hit;
    if (node_cache_get(rep->nd, key, &session, &hit) != 0)
        return false;
    op->err = 0;
    op->node = rep->node;
    const int64_t *ids = hit.answer;
    uint32_t count = (uint32_t)(hit.len / sizeof(int64_t));
    /* what the entry holds, at the position it claims (session.c judges both) */
    session_read_at(s, op, cl->leader, hit.position, ids, count, count >= SIM_SEEN_MAX);
    judge_cached_product(s, rep, op, &hit);
    os->read_pos = hit.position;
    os->flags |= OP_POS | OP_REPLIED;
    cl->cache_answers++;
    struct world_node *node = &s->nodes[rep->node];
    int64_t start = s->now_us > node->busy_until_us ? s->now_us : node->busy_until_us;
    node->busy_until_us = start + CLUSTER_CACHE_HIT_US;
    world_trace(s, node->name, "#%u %s from client%d: from the cache (as of change %lld, %.3fs "
                               "old)",
                op->id, drill_op_name(op->kind), op->client, (long long)hit.position,
                secs(hit.age_us));
    world_reply(s, rep->node, op, node->busy_until_us);
    return true;
}

/* A read the replica may answer now: from its cache, or served on its copy here. */
static void serve_read(struct sim *s, struct cluster *cl, struct replica *rep, struct sim_op *op,
                       struct op_state *os)
{
    if (answer_from_cache(s, cl, rep, op, os))
        return;
    struct world_node *node = &s->nodes[rep->node];
    int64_t start = s->now_us > node->busy_until_us ? s->now_us : node->busy_until_us;
    os->flags |= OP_REPLIED;
    if (!world_serve_on(s, rep->node, op))
        return;
    int64_t done = start + SIM_SERVICE_US + s->delay_pending_us;
    node->busy_until_us = done;
    world_reply(s, rep->node, op, done);
}

/* Requests held at rep whose position it reached now go on. */
static void release_waiters(struct sim *s, struct cluster *cl, struct replica *rep)
{
    if (rep->wait_count == 0 || !s->nodes[rep->node].up)
        return;
    struct node_view v;
    node_view(rep->nd, &v);
    size_t kept = 0, due = 0;
    struct waiter ready[64];
    for (size_t i = 0; i < rep->wait_count; i++) {
        struct waiter w = rep->waiting[i];
        if (w.wait_for > v.position || due == 64)
            rep->waiting[kept++] = w;
        else
            ready[due++] = w;
    }
    rep->wait_count = kept;
    for (size_t i = 0; i < due && s->nodes[rep->node].up; i++) {
        struct sim_op *op = &s->ops[ready[i].op - 1];
        struct op_state *os = op_state(cl, op->id);
        if (os == NULL || op->outcome != SIM_PENDING || (os->flags & OP_REPLIED))
            continue;
        if (ready[i].reply) {
            os->flags |= OP_REPLIED;
            world_reply(s, rep->node, op, s->now_us);
        } else {
            serve_read(s, cl, rep, op, os);
        }
    }
}

/* A client's request reached replica rep: the core's route decides. */
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
    struct node_view v;
    node_view(rep->nd, &v);
    struct node_request req = {.is_write = op->is_write, .session = {.position = op->min_seq}};
    struct node_route r;
    node_route(&v, &req, &r);
    switch (r.kind) {
    case NODE_ROUTE_FORWARD:
        forward(s, cl, rep, op, os);
        return true;
    case NODE_ROUTE_WAIT:
        cl->reads_waited++;
        world_trace(s, cl_node_name(s, rep->node), "#%u %s from client%d waits: %s (at change "
                                                   "%lld, the client has seen %lld)",
                    op->id, drill_op_name(op->kind), op->client, r.why, (long long)v.position,
                    (long long)r.wait_for);
        hold(rep, op, r.wait_for, false);
        return true;
    case NODE_ROUTE_HERE:
        if (op->is_write)
            return false; /* never: a replica is not the writer */
        if (answer_from_cache(s, cl, rep, op, os))
            return true;
        os->flags |= OP_REPLIED; /* the runner serves it here and replies */
        return false;
    case NODE_ROUTE_REDIRECT:
    case NODE_ROUTE_REFUSE:
        break;
    }
    world_trace(s, cl_node_name(s, rep->node), "#%u refused: %s", op->id, r.why);
    return true;
}

/* A replica forwarded a write: the leader serves it and sends the result back. */
static void on_forward(struct sim *s, struct cluster *cl, const struct world_msg *m)
{
    if (m->a < 1 || (size_t)m->a > s->op_count || !s->nodes[cl->leader].up ||
        s->nodes[cl->leader].shop == NULL)
        return;
    struct sim_op *op = &s->ops[m->a - 1];
    struct op_state *os = op_state(cl, op->id);
    if (os == NULL)
        return;
    struct world_node *leader = &s->nodes[cl->leader];
    int64_t done = s->now_us;
    if (!(os->flags & OP_LEADER_DONE)) {
        struct node_view v;
        node_view(cl->nl, &v);
        struct node_request req = {.is_write = op->is_write};
        struct node_route r;
        node_route(&v, &req, &r);
        if (r.kind != NODE_ROUTE_HERE) {
            world_trace(s, leader->name, "#%u refused: %s", op->id, r.why);
            return;
        }
        int64_t start = s->now_us > leader->busy_until_us ? s->now_us : leader->busy_until_us;
        cl->serving_op = op->id;
        cl->hook_fired = false;
        bool alive = world_serve_on(s, cl->leader, op);
        cl->serving_op = 0;
        if (cl->hook_fired && op->err != 0 && cl->phantom_op == 0) {
            cl->phantom_op = op->id;
            cl->phantom_err = op->err;
            cl->phantom_at_us = s->now_us;
        }
        if (!alive)
            return;
        os->flags |= OP_LEADER_DONE;
        done = start + SIM_SERVICE_US + s->delay_pending_us;
        leader->busy_until_us = done;
    }
    world_send(s, cl->leader, m->from, MSG_RESULT, op->id, m->b, NULL, 0, done);
}

/* The leader's answer to a forwarded write: relayed once the replica holds it. */
static void on_result(struct sim *s, struct cluster *cl, const struct world_msg *m)
{
    struct replica *rep = replica_of(cl, m->to);
    if (rep == NULL || m->a < 1 || (size_t)m->a > s->op_count)
        return;
    struct sim_op *op = &s->ops[m->a - 1];
    struct op_state *os = op_state(cl, op->id);
    if (os == NULL || (uint64_t)m->b != rep->life || (os->flags & OP_REPLIED))
        return; /* a result for a process that died since, or a duplicate */
    if (op->err == 0 && op->seq > 0) {
        struct node_view v;
        node_view(rep->nd, &v);
        struct node_request req = {.session = {.position = op->seq}};
        struct node_route r;
        node_route(&v, &req, &r);
        if (r.kind == NODE_ROUTE_WAIT) {
            hold(rep, op, r.wait_for, true);
            return;
        }
    }
    os->flags |= OP_REPLIED;
    world_reply(s, rep->node, op, s->now_us);
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
    cl->stale_rep = -1;
    assert(cl->leader >= 0 && cl->registry >= 0);
    for (int r = 0; r < t->replicas && r < DRILL_REPLICAS_MAX; r++) {
        char name[FAULTS_NODE_MAX];
        snprintf(name, sizeof(name), "replica%d", r + 1);
        struct replica *rep = &cl->rep[cl->replica_count++];
        rep->node = world_node_index(s, name);
        rep->registry_heard_us = -1;
        assert(rep->node >= 0);
        s->nodes[rep->node].seed = false; /* the catalog reaches it by propagation */
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
    return 0;
}

static int make_node(struct sim *s, const char *name, enum node_role role, shop *sh,
                     const char *peer, const char *const *peers, size_t peer_count,
                     struct node **out)
{
    struct cluster *cl = state(s);
    const struct drill_topology *t = &s->drill->topology;
    enum node_cache_mode cache = t->cache == DRILL_CACHE_ON      ? NODE_CACHE_ON
                                 : t->cache == DRILL_CACHE_NAIVE ? NODE_CACHE_NAIVE
                                                                 : NODE_CACHE_OFF;
    struct node_config cfg = {
        .name = name,
        .role = role,
        .shop = sh,
        .peer = peer,
        .peers = peers,
        .peer_count = peer_count,
        .link_delay_us = t->latency_us,
        .registry = role == NODE_CLUSTER_REPLICA ? cl_node_name(s, cl->registry) : NULL,
        .propagate_before_commit = cl->before_commit,
        .cache = role == NODE_CLUSTER_REPLICA ? cache : NODE_CACHE_OFF,
        .cache_ttl_us = t->cache_ttl_us,
    };
    char msg[SHOP_ERRMSG_MAX];
    int err = node_create(&cfg, &cl->env, out, msg);
    if (err) {
        snprintf(s->msg, sizeof(s->msg), "%s", msg);
        return err;
    }
    if (sh != NULL || role == NODE_REGISTRY || role == NODE_CLIENT)
        after_event(s, node_start(*out));
    return 0;
}

static int cluster_start(struct sim *s)
{
    struct cluster *cl = state(s);
    cl->env = s->env;
    cl->env.ctx = s;
    cl->env.send = env_send;
    cl->env.timer = env_timer;
    cl->env.trace = env_trace;
    const char *names[DRILL_REPLICAS_MAX];
    for (int r = 0; r < cl->replica_count; r++)
        names[r] = cl_node_name(s, cl->rep[r].node);
    size_t count = (size_t)cl->replica_count;
    const char *leader = cl_node_name(s, cl->leader), *registry = cl_node_name(s, cl->registry);
    int err = make_node(s, leader, NODE_CLUSTER_LEADER, s->nodes[cl->leader].shop, NULL, names,
                        count, &cl->nl);
    for (int r = 0; !err && r < cl->replica_count; r++)
        err = make_node(s, names[r], NODE_CLUSTER_REPLICA, s->nodes[cl->rep[r].node].shop,
                        leader, NULL, 0, &cl->rep[r].nd);
    if (!err)
        err = make_node(s, registry, NODE_REGISTRY, NULL, NULL, names, count, &cl->nr);
    for (int c = 1; !err && c <= cl->client_count; c++) {
        char name[NODE_NAME_MAX];
        snprintf(name, sizeof(name), "client%d", c);
        err = make_node(s, name, NODE_CLIENT, NULL, registry, names, count, &cl->clients[c]);
    }
    if (err)
        return err;
    cl->seeded = status_of(cl->nl).cluster.head_seq;
    return 0;
}

static int cluster_route(struct sim *s, struct sim_op *op)
{
    struct cluster *cl = state(s);
    if (op->client < 1 || op->client > cl->client_count || op_state(cl, op->id) == NULL)
        return -1;
    struct node_pick pick;
    if (node_client_pick(cl->clients[op->client], &pick) != 0)
        return -1;
    op->via = cl->rep[pick.index].node;
    op->healthy_mask = pick.healthy_mask;
    op->min_seq = pick.session.position;
    return op->via;
}

static bool cluster_serve(struct sim *s, int n, const struct world_msg *m)
{
    struct cluster *cl = state(s);
    struct replica *rep = replica_of(cl, n);
    return rep != NULL && serve_at_replica(s, cl, rep, m);
}

static void cache_put(struct sim *s, struct replica *rep, struct sim_op *op, int64_t position)
{
    char key[48];
    cache_key(op, key);
    struct node_cache_dep dep = {.table = "products"}; /* any product: stock moves them */
    const void *answer = NULL;
    size_t len = 0;
    int64_t stock;
    if (op->kind == DRILL_OP_ORDER_STATUS) {
        dep = (struct node_cache_dep){.table = "orders", .column = "user_id",
                                      .value = op->user_id};
        answer = s->read_ids;
        len = s->read_count * sizeof(int64_t);
    } else if (product_stock(s, rep->node, op->product_id, &stock)) {
        answer = &stock; /* what a hit is judged by (judge_cached_product) */
        len = sizeof(stock);
    }
    int err = node_cache_put(rep->nd, key, &dep, 1, answer, len, position);
    if (err && err != -ESTALE)
        world_trace(s, cl_node_name(s, rep->node), "#%u not cached: %s", op->id,
                    platform_strerror(err));
}

static void cluster_served(struct sim *s, int n, struct sim_op *op)
{
    struct cluster *cl = state(s);
    struct op_state *os = op_state(cl, op->id);
    if (os == NULL)
        return;
    if (n == cl->leader) {
        if (!op->is_write) {
            os->read_pos = status_of(cl->nl).cluster.head_seq;
            os->flags |= OP_POS;
        } else if (op->err == 0 || platform_is_unknown(op->err)) {
            /* an unknown outcome: the leader reads its outbox to know */
            after_event(s, node_on_commit(cl->nl, op->err == 0 ? op->seq : 0));
        }
        return;
    }
    struct replica *rep = replica_of(cl, n);
    if (rep == NULL || op->is_write)
        return;
    struct node_view v;
    node_view(rep->nd, &v);
    os->read_pos = v.position;
    os->flags |= OP_POS;
    if (cl->cache_mode != DRILL_CACHE_OFF && op->err == 0 && is_cached_kind(op->kind))
        cache_put(s, rep, op, v.position);
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

/* The client node learns how its request ended: the session, or a replica to rest. */
static void cluster_replied(struct sim *s, struct sim_op *op)
{
    struct cluster *cl = state(s);
    struct replica *rep = replica_of(cl, op->via);
    if (cl->live || rep == NULL || op->client < 1 || op->client > cl->client_count)
        return; /* live: the runner's own client nodes hear it (live_cluster.c) */
    struct node *client = cl->clients[op->client];
    const struct op_state *os = op_state(cl, op->id);
    bool timed_out = op->complete_us - op->invoke_us >= SIM_CLIENT_TIMEOUT_US;
    if (op->outcome == SIM_UNKNOWN && timed_out) {
        world_trace(s, "-", "client%d: #%u had no answer from %s in time", op->client, op->id,
                    cl_node_name(s, rep->node));
        node_client_done(client, cl_node_name(s, rep->node), false, -1);
        return;
    }
    int64_t seen = -1;
    if (op->outcome == SIM_OK)
        seen = op->is_write ? op->seq : os != NULL && (os->flags & OP_POS) ? os->read_pos : -1;
    node_client_done(client, cl_node_name(s, rep->node), true, seen);
}

static void cluster_deliver(struct sim *s, const struct world_msg *m)
{
    struct cluster *cl = state(s);
    switch (m->type) {
    case MSG_WIRE: {
        struct node *nd = node_at(s, cl, m->to);
        char buf[32];
        if (nd == NULL || m->data == NULL)
            return;
        struct replica *rep = replica_of(cl, m->to), *sender = replica_of(cl, m->from);
        if (m->to == cl->registry && sender != NULL && s->nodes[m->to].up)
            sender->registry_heard_us = s->now_us;
        struct node_view before, after;
        if (rep != NULL)
            node_view(rep->nd, &before);
        after_event(s, node_on_message(nd, world_endpoint_name(s, m->from, buf), m->data,
                                       m->len));
        if (m->from == cl->registry && m->a > 0 && m->to >= (int)s->node_count &&
            cl->ignored_client == 0) {
            /* the client now holds the registry's answer as its list */
            uint32_t kept = status_of(nd).cluster.known_mask;
            if (kept != (uint32_t)(m->a - 1)) {
                cl->ignored_client = m->to - (int)s->node_count + 1;
                cl->ignored_at_us = s->now_us;
                cl->ignored_answer = (uint32_t)(m->a - 1);
                cl->ignored_kept = kept;
            }
        }
        if (rep != NULL && s->nodes[m->to].up) {
            node_view(rep->nd, &after);
            if (after.position != before.position) {
                /* a batch applied (the status is a large copy: only then) */
                struct node_status st = status_of(rep->nd);
                if (st.cluster.batches_applied > rep->applied_seen)
                    lag_sample(cl, st.cluster.last_lag_us);
                rep->applied_seen = st.cluster.batches_applied;
            }
            release_waiters(s, cl, rep);
        }
        break;
    }
    case MSG_FORWARD:
        on_forward(s, cl, m);
        break;
    case MSG_RESULT:
        on_result(s, cl, m);
        break;
    default:
        world_trace(s, cl_node_name(s, m->to), "unknown cluster message %d ignored", m->type);
        break;
    }
}

static void cluster_tick(struct sim *s, int timer, int64_t endpoint)
{
    struct cluster *cl = state(s);
    struct node *nd = node_at(s, cl, (int)endpoint);
    if (nd != NULL && (endpoint >= (int64_t)s->node_count || s->nodes[endpoint].up))
        after_event(s, node_on_timer(nd, timer));
}

static void cluster_crashed(struct sim *s, int n)
{
    struct cluster *cl = state(s);
    struct node *nd = node_at(s, cl, n);
    if (nd != NULL)
        node_crashed(nd);
    struct replica *rep = replica_of(cl, n);
    if (rep != NULL) {
        rep->life++;
        rep->wait_count = 0; /* what it held died with it: the clients time out */
    }
}

static void cluster_restarted(struct sim *s, int n)
{
    struct cluster *cl = state(s);
    struct node *nd = node_at(s, cl, n);
    shop *sh = s->nodes[n].shop;
    if (nd == NULL || (n != cl->registry && sh == NULL))
        return;
    after_event(s, node_restarted(nd, n == cl->registry ? NULL : sh));
    if (nd != cl->nl && cl->nl != NULL && s->nodes[cl->leader].up)
        node_peer_up(cl->nl, cl_node_name(s, n));
}

/* Why rep is not caught up yet, short enough for the drain's message. */
static void pending_why(struct sim *s, struct cluster *cl, struct replica *rep,
                        const struct node_status *ls, char *why, size_t len)
{
    const char *name = cl_node_name(s, rep->node);
    struct node_status st = status_of(rep->nd);
    const struct node_cluster_link *l = &ls->cluster.links[replica_index(cl, rep)];
    if (st.cluster.last_apply_err == -EBADMSG && ls->cluster.phantoms > 0)
        snprintf(why, len, "%s is stuck at change %lld of %lld: the copies diverged after change "
                           "%lld was propagated before its commit failed (op #%u, %.3fs)",
                 name, (long long)st.cluster.position, (long long)ls->cluster.head_seq,
                 (long long)ls->cluster.phantom_seq, cl->phantom_op, secs(cl->phantom_at_us));
    else if (st.cluster.last_apply_err != 0)
        snprintf(why, len, "%s is at change %lld of %lld: %s", name,
                 (long long)st.cluster.position, (long long)ls->cluster.head_seq,
                 st.cluster.last_apply_error);
    else
        snprintf(why, len, "%s is at change %lld, the leader at %lld%s", name,
                 (long long)st.cluster.position, (long long)ls->cluster.head_seq,
                 l->stuck ? " (the leader's outbox no longer holds what it lacks)" : "");
}

static bool cluster_pending(struct sim *s, char *why, size_t len)
{
    struct cluster *cl = state(s);
    if (!s->nodes[cl->leader].up || s->nodes[cl->leader].shop == NULL)
        return false; /* the runner reports a shop that is not running */
    struct node_status ls = status_of(cl->nl);
    for (int r = 0; r < cl->replica_count; r++) {
        struct replica *rep = &cl->rep[r];
        if (!s->nodes[rep->node].up || s->nodes[rep->node].shop == NULL)
            continue;
        struct node_view v;
        node_view(rep->nd, &v);
        if (v.position >= ls.cluster.head_seq)
            continue;
        pending_why(s, cl, rep, &ls, why, len);
        return true;
    }
    return false;
}

static void cluster_release(struct sim *s)
{
    struct cluster *cl = s->topo_state;
    if (cl == NULL)
        return;
    node_destroy(cl->nl);
    node_destroy(cl->nr);
    for (int r = 0; r < cl->replica_count; r++) {
        node_destroy(cl->rep[r].nd);
        free(cl->rep[r].waiting);
    }
    for (int c = 1; c <= cl->client_count; c++)
        node_destroy(cl->clients[c]);
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
    shop *leader = s->nodes[cl->leader].shop;
    for (int r = 0; r < cl->replica_count; r++) {
        if (cl->rep[r].node != n || leader == NULL || cl->rep[r].nd == NULL)
            continue;
        struct node_view v;
        node_view(cl->rep[r].nd, &v);
        *value = shop_last_seq(leader) - v.position;
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
        struct node_cluster_status st = cl_status(cl, r);
        if (!st.applied_twice)
            continue;
        snprintf(why, len,
                 "%s applied change %lld of the leader again at %.3fs, having applied up to "
                 "%lld before (a propagated change must be applied exactly once on each replica)",
                 cl_node_name(s, cl->rep[r].node), (long long)st.twice_seq,
                 secs(st.twice_at_us), (long long)st.twice_after);
        return SIM_CHECK_VIOLATED;
    }
    shop *ls = s->nodes[cl->leader].up ? s->nodes[cl->leader].shop : NULL;
    if (ls == NULL)
        return SIM_CHECK_SKIPPED;
    for (int r = 0; r < cl->replica_count; r++) {
        int64_t seq = 0;
        if (shop_replica_position(ls, cl_node_name(s, cl->rep[r].node), &seq, NULL) != 0) {
            after_event(s, 0);
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
    for (int r = 0; r < cl->replica_count; r++) {
        int64_t position = cl_status(cl, r).position_max;
        world_witness(s, position > cl->seeded ? (uint64_t)(position - cl->seeded) : 0);
    }
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
    if (cl->stale_rep >= 0) {
        char heard[96] = "never heard from it";
        if (cl->stale_heard_us >= 0)
            snprintf(heard, sizeof(heard),
                     cl->live ? "could have heard nothing from it since %.3fs (its process was "
                                "killed then)"
                              : "had heard nothing from it since %.3fs",
                     secs(cl->stale_heard_us));
        snprintf(why, len,
                 "at %.3fs the registry listed %s to client%d although it %s (it lists the "
                 "replicas heard within the last %.3fs): clients keep sending requests to a "
                 "replica that is gone",
                 secs(cl->stale_at_us), cl_node_name(s, cl->rep[cl->stale_rep].node),
                 cl->stale_client, heard, secs(NODE_CLUSTER_REGISTRY_WINDOW_US));
        return SIM_CHECK_VIOLATED;
    }
    if (cl->ignored_client > 0) {
        char answer[128], kept[128];
        mask_text(cl, s, cl->ignored_answer, answer, sizeof(answer));
        mask_text(cl, s, cl->ignored_kept, kept, sizeof(kept));
        if (cl->live) /* the host names a message, never decodes it: its size is what it knows */
            snprintf(answer, sizeof(answer), "listing %d replica%s", cl->ignored_count,
                     cl->ignored_count == 1 ? "" : "s");
        snprintf(why, len,
                 "at %.3fs client%d got the registry's answer %s but kept %s: a client that "
                 "does not take the registry's answers balances over replicas it no longer "
                 "lists (or never over new ones)",
                 secs(cl->ignored_at_us), cl->ignored_client, answer, kept);
        return SIM_CHECK_VIOLATED;
    }
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
    struct node_cluster_status ls = cl_status(cl, -1), rs = cl_status(cl, replica_index(cl, rep));
    struct shop_audit *a = calloc(2, sizeof(*a));
    size_t n = (size_t)snprintf(why, len,
                                "after the drain (%.3fs) %s (at change %lld) and the leader (at "
                                "%lld) hold different data",
                                secs(s->now_us), cl_node_name(s, rep->node),
                                (long long)rs.position, (long long)ls.head_seq);
    if (a != NULL &&
        shop_audit(s->nodes[cl->leader].shop, world_lead_copy(s, cl->leader), &a[0]) == 0 &&
        shop_audit(s->nodes[rep->node].shop, 0, &a[1]) == 0 && n < len)
        n += (size_t)snprintf(why + n, len - n, ": the leader has %lld orders and %lld users, "
                                                "%s %lld orders and %lld users",
                              (long long)a[0].orders, (long long)a[0].users,
                              cl_node_name(s, rep->node), (long long)a[1].orders,
                              (long long)a[1].users);
    free(a);
    if (ls.phantoms > 0 && n < len && cl->live) /* the op and its error are the process's */
        snprintf(why + n, len - n,
                 ". propagate=before-commit sent %llu change(s) whose commit then failed; the "
                 "first, change %lld, reached the replicas but not the leader, whose next change "
                 "reused that sequence and was skipped as a duplicate",
                 (unsigned long long)ls.phantoms, (long long)ls.phantom_seq);
    else if (ls.phantoms > 0 && n < len)
        snprintf(why + n, len - n,
                 ". propagate=before-commit sent %llu change(s) whose commit then failed; the "
                 "first, change %lld of op #%u at %.3fs (%s), reached the replicas but not the "
                 "leader, whose next change reused that sequence and was skipped as a duplicate",
                 (unsigned long long)ls.phantoms, (long long)ls.phantom_seq,
                 cl->phantom_op, secs(ls.phantom_at_us),
                 platform_strerror(cl->phantom_err));
}

enum sim_check cluster_converges(struct sim *s, const struct drill_expect *e, char *why,
                                 size_t len)
{
    (void)e;
    if (!is_cluster(s) || !s->drained)
        return SIM_CHECK_SKIPPED;
    struct cluster *cl = state(s);
    shop *ls = s->nodes[cl->leader].up ? s->nodes[cl->leader].shop : NULL;
    char lead[65], copy[65];
    if (ls == NULL || shop_digest(ls, world_lead_copy(s, cl->leader), lead) != 0) {
        after_event(s, 0);
        snprintf(why, len, "after the drain the leader's data cannot be read");
        return SIM_CHECK_VIOLATED;
    }
    for (int r = 0; r < cl->replica_count; r++) {
        struct replica *rep = &cl->rep[r];
        shop *sh = s->nodes[rep->node].up ? s->nodes[rep->node].shop : NULL;
        if (sh == NULL || shop_digest(sh, 0, copy) != 0) {
            after_event(s, 0);
            snprintf(why, len, "after the drain %s's data cannot be read",
                     cl_node_name(s, rep->node));
            return SIM_CHECK_VIOLATED;
        }
        if (strcmp(lead, copy) != 0) {
            explain_divergence(s, cl, rep, why, len);
            int64_t head = cl_status(cl, -1).head_seq; /* the changes the copies were judged on */
            world_witness(s, head > cl->seeded ? (uint64_t)(head - cl->seeded) : 0);
            return SIM_CHECK_VIOLATED;
        }
    }
    /* the workload's changes every copy holds */
    int64_t head = cl_status(cl, -1).head_seq;
    world_witness(s, head > cl->seeded ? (uint64_t)(head - cl->seeded) : 0);
    return SIM_CHECK_HOLDS;
}

void cluster_report(struct sim *s)
{
    if (!is_cluster(s))
        return;
    struct cluster *cl = state(s);
    uint64_t hits = 0, misses = 0, invalidated = 0, resends = 0, batches = 0;
    for (int r = 0; r < cl->replica_count; r++) {
        struct node_status st = status_of(cl->rep[r].nd);
        hits += st.cluster.cache.hits;
        misses += st.cluster.cache.misses;
        invalidated += st.cluster.cache.invalidated;
    }
    struct node_status ls = status_of(cl->nl);
    for (size_t r = 0; r < ls.cluster.replica_count; r++) {
        resends += ls.cluster.links[r].timeouts + ls.cluster.links[r].gap_resends;
        batches += ls.cluster.links[r].batches_sent;
    }
    world_metric(s, "propagation_lag_p50_us", lag_percentile(cl, 50), "us");
    world_metric(s, "propagation_lag_p99_us", lag_percentile(cl, 99), "us");
    world_metric(s, "propagation_resends", (int64_t)resends, "batches");
    world_metric(s, "reads_waited_for_freshness", (int64_t)cl->reads_waited, "reads");
    if (cl->cache_mode != DRILL_CACHE_OFF)
        world_metric(s, "cache_hits", (int64_t)hits, "reads");
    world_trace(s, "-",
                "propagation lag over %zu applied batches: p50 %.3fs, p99 %.3fs; %llu batches "
                "sent, %llu resends; %llu writes forwarded, %llu reads waited for freshness; "
                "cache %llu hits, %llu misses, %llu invalidated",
                cl->lag_count, secs(lag_percentile(cl, 50)), secs(lag_percentile(cl, 99)),
                (unsigned long long)batches, (unsigned long long)resends,
                (unsigned long long)cl->writes_forwarded, (unsigned long long)cl->reads_waited,
                (unsigned long long)hits, (unsigned long long)misses,
                (unsigned long long)invalidated);
}

/* ---- run --live ----------------------------------------------------------- */

void cluster_live_start(struct sim *s, int64_t seeded)
{
    struct cluster *cl = state(s);
    cl->live = true;
    cl->seeded = seeded;
}

void cluster_live_status(struct sim *s, int replica, const struct node_cluster_status *st)
{
    struct cluster *cl = state(s);
    if (replica < 0)
        cl->live_leader = *st;
    else if (replica < cl->replica_count)
        cl->live_rep[replica] = *st;
}

/*
 * Live: client `client`'s node took a registry answer listing `listed` (bit r:
 * replica r+1), now. The runner knows when it killed each replica's process
 * (killed_us[r], -1: running): the registry cannot have heard a dead one since
 * (its heartbeats stop with it), so a listing later than the window plus
 * slack_us (the transits of the last heartbeat and of the answer, which the
 * runner does not see) is judged as the simulator judges a registry's answer.
 */
void cluster_live_listing(struct sim *s, int client, uint32_t listed, const int64_t *killed_us,
                          int64_t slack_us)
{
    struct cluster *cl = state(s);
    cl->listing_slack_us = slack_us;
    for (int r = 0; r < cl->replica_count; r++)
        cl->rep[r].registry_heard_us = killed_us[r] >= 0 ? killed_us[r] : s->now_us;
    judge_listing(s, cl, client, listed);
}

/* Live: client `client`'s node got a registry answer listing `listed` replicas and kept
 * `kept` (bit r: replica r+1): a different count is an answer it did not take. */
void cluster_live_answer(struct sim *s, int client, int listed, uint32_t kept)
{
    struct cluster *cl = state(s);
    if (cl->ignored_client > 0 || __builtin_popcount(kept) == listed)
        return;
    cl->ignored_client = client;
    cl->ignored_at_us = s->now_us;
    cl->ignored_count = listed;
    cl->ignored_kept = kept;
}
