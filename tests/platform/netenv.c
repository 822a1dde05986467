/*
 * netenv.c — the in-memory deterministic host of the replication core's
 * tests (netenv.h). Everything happens in netenv_run*: the earliest event
 * (ties in queueing order) is taken, the clock moves to it, the node gets it.
 */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netenv.h"

static int64_t env_now(void *ctx)
{
    return ((struct netenv *)ctx)->now_us;
}

static uint64_t next_random(struct netenv *t)
{
    uint64_t z = (t->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static bool chance(struct netenv *t, double p)
{
    return p > 0 && (double)(next_random(t) >> 11) / (double)(1ULL << 53) < p;
}

static int64_t below(struct netenv *t, int64_t n)
{
    return n > 0 ? (int64_t)(next_random(t) % (uint64_t)(n + 1)) : 0;
}

static void push(struct netenv *t, const struct netenv_event *e)
{
    ck_assert_msg(t->event_count < NETENV_EVENTS_MAX, "netenv: event queue full");
    t->events[t->event_count] = *e;
    t->events[t->event_count].order = t->order++;
    t->event_count++;
}

static void env_send(void *ctx, const char *from, const char *to, const void *msg, size_t len)
{
    struct netenv *t = ctx;
    int f = netenv_index(t, from), d = netenv_index(t, to);
    ck_assert_msg(f >= 0, "send from %s: unknown node", from);
    ck_assert_uint_gt(len, 0);
    t->sent++;
    if (d < 0) {
        t->dropped++; /* a peer not added yet: as if it were not up */
        return;
    }
    struct netenv_link *l = &t->links[f][d];
    if (l->cut || chance(t, l->drop)) {
        t->dropped++;
        return;
    }
    int copies = chance(t, l->duplicate) ? 2 : 1;
    t->duplicated += (uint64_t)(copies - 1);
    for (int i = 0; i < copies; i++) {
        int64_t delay = l->delay_us + below(t, l->jitter_us);
        if (chance(t, l->reorder))
            delay += below(t, 2 * delay + 1000);
        struct netenv_event e = {.at_us = t->now_us + delay + i, .to = d, .from = f,
                                 .data = malloc(len), .len = len};
        ck_assert_ptr_nonnull(e.data);
        memcpy(e.data, msg, len);
        push(t, &e);
    }
}

static void env_timer(void *ctx, const char *node, int timer, int64_t at_us)
{
    struct netenv *t = ctx;
    int n = netenv_index(t, node);
    ck_assert_int_ge(n, 0);
    ck_assert_msg(at_us >= t->now_us, "a timer in the past (%lld < %lld)", (long long)at_us,
                  (long long)t->now_us);
    struct netenv_event e = {.at_us = at_us, .is_timer = true, .to = n, .from = -1,
                             .timer = timer};
    push(t, &e);
}

static void env_trace(void *ctx, const char *node, const char *text)
{
    struct netenv *t = ctx;
    char line[512];
    int n = snprintf(line, sizeof(line), "%.6f %s %s\n", (double)t->now_us / 1e6, node, text);
    if (n <= 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (t->trace_len + len + 1 > sizeof(t->trace))
        t->trace_len = 0; /* keep the latest lines only */
    memcpy(t->trace + t->trace_len, line, len);
    t->trace_len += len;
    t->trace[t->trace_len] = '\0';
    if (getenv("NETENV_TRACE") != NULL)
        fputs(line, stderr);
}

void netenv_init(struct netenv *t, uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/fd-netenv-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    t->rng = seed;
    t->events = calloc(NETENV_EVENTS_MAX, sizeof(*t->events));
    ck_assert_ptr_nonnull(t->events);
    t->env = (struct platform_env){.ctx = t, .now_us = env_now, .send = env_send,
                                   .timer = env_timer, .trace = env_trace};
    t->check_invariants = true;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void netenv_release(struct netenv *t)
{
    for (size_t i = 0; i < t->node_count; i++) {
        node_destroy(t->nodes[i].node);
        shop_close(t->nodes[i].shop);
    }
    for (size_t i = 0; i < t->event_count; i++)
        free(t->events[i].data);
    free(t->events);
    nftw(t->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int netenv_index(const struct netenv *t, const char *name)
{
    for (size_t i = 0; i < t->node_count; i++)
        if (strcmp(t->nodes[i].name, name) == 0)
            return (int)i;
    return -1;
}

struct netenv_node *netenv_node(struct netenv *t, const char *name)
{
    int i = netenv_index(t, name);
    ck_assert_msg(i >= 0, "no node %s", name);
    return &t->nodes[i];
}

struct netenv_link *netenv_link(struct netenv *t, const char *from, const char *to)
{
    int f = netenv_index(t, from), d = netenv_index(t, to);
    ck_assert(f >= 0 && d >= 0);
    return &t->links[f][d];
}

void netenv_partition(struct netenv *t, const char *a, const char *b, bool cut)
{
    netenv_link(t, a, b)->cut = cut;
    netenv_link(t, b, a)->cut = cut;
}

static bool has_shop(const struct netenv_node *nn)
{
    return nn->ncfg.role != NODE_REGISTRY && nn->ncfg.role != NODE_CLIENT;
}

static int open_shop(struct netenv *t, struct netenv_node *nn)
{
    if (!has_shop(nn))
        return 0;
    char msg[SHOP_ERRMSG_MAX];
    int err = shop_open(&nn->cfg, &t->env, &nn->shop, msg);
    ck_assert_msg(err == 0, "shop_open %s: %s", nn->name, msg);
    return err;
}

int netenv_add(struct netenv *t, const char *name, enum node_role role, const char *peer,
               const struct node_config *ncfg)
{
    ck_assert_uint_lt(t->node_count, NETENV_NODES_MAX);
    struct netenv_node *nn = &t->nodes[t->node_count++];
    snprintf(nn->name, sizeof(nn->name), "%s", name);
    snprintf(nn->peer, sizeof(nn->peer), "%s", peer);
    char dir[sizeof(t->dir)];
    memcpy(dir, t->dir, sizeof(dir));
    snprintf(nn->path, sizeof(nn->path), "%s/%s.sqlite", dir, name);
    if (ncfg != NULL)
        nn->ncfg = *ncfg;
    nn->cfg = (struct shop_config){
        .topology = SHOP_SINGLE,
        .primary = {.node = nn->name, .path = nn->path,
                    .vfs = t->vfs != NULL ? t->vfs(nn->name) : NULL},
        .sync_full = false, /* a process crash loses nothing committed; no power cuts here */
        .outbox = (role == NODE_ASYNC_PRIMARY && !nn->ncfg.outbox_off) ||
                  role == NODE_CLUSTER_LEADER,
        .propagate_before_commit = role == NODE_CLUSTER_LEADER &&
                                   nn->ncfg.propagate_before_commit,
        .sync_queue = role != NODE_OFFLINE_LOCAL ? SHOP_QUEUE_NONE
                      : t->queue_separate        ? SHOP_QUEUE_SEPARATE
                                                 : SHOP_QUEUE_SAME,
    };
    nn->ncfg.role = role;
    open_shop(t, nn);
    nn->ncfg.name = nn->name;
    nn->ncfg.peer = nn->peer[0] != '\0' ? nn->peer : NULL; /* "": none (a central) */
    nn->ncfg.shop = nn->shop;
    char msg[SHOP_ERRMSG_MAX];
    int err = node_create(&nn->ncfg, &t->env, &nn->node, msg);
    ck_assert_msg(err == 0, "node_create %s: %s", name, msg);
    nn->up = true;
    return node_start(nn->node);
}

int netenv_write(struct netenv *t, const char *name)
{
    struct netenv_node *nn = netenv_node(t, name);
    if (!nn->up)
        return -EHOSTDOWN;
    struct node_view v;
    node_view(nn->node, &v);
    struct node_request req = {.is_write = true};
    struct node_route r;
    node_route(&v, &req, &r);
    if (r.kind != NODE_ROUTE_HERE)
        return -EPERM;
    char email[64];
    snprintf(email, sizeof(email), "u%llu-%s@example.com", (unsigned long long)nn->writes, name);
    int64_t id = shop_user_create(nn->shop, "a user", email);
    if (id < 0)
        return (int)id;
    nn->writes++;
    return node_on_commit(nn->node, shop_last_seq(nn->shop));
}

/* What must hold of every cluster node after every event. */
static void check_cluster_node(struct netenv *t, struct netenv_node *nn,
                               const struct node_status *st)
{
    const struct node_cluster_status *c = &st->cluster;
    if (st->role == NODE_CLUSTER_LEADER) {
        for (size_t i = 0; i < c->replica_count; i++) {
            const struct node_cluster_link *l = &c->links[i];
            if (!l->known)
                continue;
            ck_assert_msg((c->pruned_through <= l->acked || l->stuck) && l->acked <= l->sent &&
                              l->sent <= c->head_seq,
                          "%s -> %s at %lld: pruned %lld acked %lld sent %lld head %lld",
                          nn->name, l->name, (long long)t->now_us,
                          (long long)c->pruned_through, (long long)l->acked,
                          (long long)l->sent, (long long)c->head_seq);
            ck_assert_int_le(l->sent - l->acked,
                             (int64_t)NODE_CLUSTER_WINDOW_BATCHES * NODE_CLUSTER_BATCH_CHANGES);
        }
    }
    if (st->role == NODE_CLUSTER_REPLICA)
        ck_assert_msg(!c->applied_twice, "%s applied change %lld twice", nn->name,
                      (long long)c->twice_seq);
}

/* What must hold of every async node after every event. */
static void check_node(struct netenv *t, struct netenv_node *nn)
{
    struct node_status st;
    node_status(nn->node, &st);
    check_cluster_node(t, nn, &st);
    const struct node_async_status *a = &st.async;
    if (st.role == NODE_ASYNC_PRIMARY && !a->outbox_off && a->state != NODE_ASYNC_STUCK) {
        ck_assert_msg(a->pruned_through <= a->acked && a->acked <= a->sent &&
                          a->sent <= a->head_seq,
                      "%s at %lld: pruned %lld acked %lld sent %lld head %lld", nn->name,
                      (long long)t->now_us, (long long)a->pruned_through, (long long)a->acked,
                      (long long)a->sent, (long long)a->head_seq);
        ck_assert_int_le(a->sent - a->acked,
                         (int64_t)NODE_ASYNC_WINDOW_BATCHES * a->batch_changes);
    }
    if (st.role == NODE_ASYNC_SECONDARY)
        ck_assert_msg(!a->moved_back, "%s: position moved back from %lld to %lld", nn->name,
                      (long long)a->moved_back_from, (long long)a->moved_back_to);
    const struct node_offline_status *o = &st.offline;
    if (st.role == NODE_OFFLINE_LOCAL && o->queue_read) {
        ck_assert_msg(o->queue.synced_twice == 0, "%s: queue row #%lld marked SYNCED twice",
                      nn->name, (long long)o->queue.synced_twice_id);
        ck_assert_msg(o->queue.total[SHOP_SYNC_FAILED] == 0 ||
                          o->queue.failed_retries_min >= o->retries_budget,
                      "%s: row #%lld FAILED after %lld retries, budget %d", nn->name,
                      (long long)o->queue.failed_retries_min_id,
                      (long long)o->queue.failed_retries_min, o->retries_budget);
        ck_assert_uint_le(o->accepted + o->failed_pushes, o->pushes);
    }
}

static bool step(struct netenv *t, int64_t limit_us)
{
    size_t best = t->event_count;
    for (size_t i = 0; i < t->event_count; i++) {
        const struct netenv_event *e = &t->events[i], *b = &t->events[best];
        if (e->at_us <= limit_us &&
            (best == t->event_count || e->at_us < b->at_us ||
             (e->at_us == b->at_us && e->order < b->order)))
            best = i;
    }
    if (best == t->event_count)
        return false;
    struct netenv_event e = t->events[best];
    t->events[best] = t->events[--t->event_count];
    ck_assert_int_ge(e.at_us, t->now_us);
    t->now_us = e.at_us;
    struct netenv_node *nn = &t->nodes[e.to];
    int rc = 0;
    if (nn->up && e.is_timer) {
        t->timers++;
        rc = node_on_timer(nn->node, e.timer);
    } else if (nn->up) {
        t->delivered++;
        rc = node_on_message(nn->node, t->nodes[e.from].name, e.data, e.len);
    }
    free(e.data);
    if (rc == -ECANCELED && nn->up) {
        t->crash_points++;
        netenv_crash(t, nn->name);
        return true;
    }
    ck_assert_msg(rc == 0, "%s: event returned %d", nn->name, rc);
    if (t->check_invariants && nn->up)
        check_node(t, nn);
    return true;
}

void netenv_run_until(struct netenv *t, int64_t at_us)
{
    while (step(t, at_us))
        ;
    if (t->now_us < at_us)
        t->now_us = at_us;
}

void netenv_run(struct netenv *t, int64_t us)
{
    netenv_run_until(t, t->now_us + us);
}

/* Nothing left for a node that is up. */
static bool is_quiet(const struct netenv *t)
{
    for (size_t i = 0; i < t->event_count; i++)
        if (t->nodes[t->events[i].to].up)
            return false;
    return true;
}

bool netenv_run_quiet(struct netenv *t, int64_t limit_us)
{
    int64_t end = t->now_us + limit_us;
    while (!is_quiet(t) && step(t, end))
        ;
    return is_quiet(t);
}

void netenv_crash(struct netenv *t, const char *name)
{
    struct netenv_node *nn = netenv_node(t, name);
    ck_assert(nn->up);
    nn->up = false;
    node_crashed(nn->node);
    shop_abandon(nn->shop); /* NULL for a node without a shop */
    nn->shop = NULL;
}

void netenv_restart(struct netenv *t, const char *name)
{
    struct netenv_node *nn = netenv_node(t, name);
    ck_assert(!nn->up);
    open_shop(t, nn);
    nn->up = true;
    ck_assert_int_eq(node_restarted(nn->node, nn->shop), 0);
    for (size_t i = 0; i < t->node_count; i++)
        if (t->nodes[i].up && &t->nodes[i] != nn)
            node_peer_up(t->nodes[i].node, name);
}

struct node_status netenv_status(struct netenv *t, const char *name)
{
    struct node_status st;
    node_status(netenv_node(t, name)->node, &st);
    return st;
}

bool netenv_same_data(struct netenv *t, const char *a, const char *b)
{
    char da[65], db[65];
    ck_assert_int_eq(shop_digest(netenv_node(t, a)->shop, 0, da), 0);
    ck_assert_int_eq(shop_digest(netenv_node(t, b)->shop, 0, db), 0);
    return strcmp(da, db) == 0;
}
