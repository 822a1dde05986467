/*
 * cluster.c — replicas with leader propagation in `faultdrill serve`
 * (--topology cluster), hosting the platform's cluster nodes
 * (platform/node.h, node_host.c): every protocol decision — what to
 * propagate, the window, acknowledgements, resends, pruning, the replicas'
 * hello and catch-up, heartbeats, the registry's window, the client's round
 * robin and last good answer, the session rule — is the core's. This file
 * starts the processes, wires the hosted nodes to each other, glues HTTP
 * routes to them, and shows their status. Each node is its own process:
 *
 *   leader    (this process, DATA/db.sqlite, NODE_CLUSTER_LEADER) starts the
 *             registry and replica1..N (unless --peer names them) and hosts
 *             the cluster's client (NODE_CLIENT, "client"): GET /getServer is
 *             its pick. Both nodes share this process's transport: a message
 *             from the registry is the client's, any other the leader's.
 *   replicaN  (DATA/replicaN/db.sqlite, NODE_CLUSTER_REPLICA) applies the
 *             leader's changes, heartbeats to the registry; a client request
 *             is routed by node_route (node_host.c: a write forwarded to the
 *             leader and answered once held here, a read held until the copy
 *             reached the client's X-Faultdrill-Session).
 *   registry  (DATA/registry, NODE_REGISTRY) lists the replicas it heard.
 *
 * A replica's read cache (--cache on|naive, --ttl) is the core's too
 * (node_cache_get/put): this file only says which answers are cached — GET
 * /products, /products/:id, /orders/:userId, keyed by their path and query —
 * and what each depends on (the rows of the tables it reads).
 *
 * Stop: the leader gives the replicas what they lack (the core ships; the
 * host waits, bounded, for their acks) before civetweb stops.
 */
#include <civetweb.h>
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve/internal.h"

#define CLUSTER_DRAIN_US      3000000 /* at stop: the replicas' acks within this */
#define CLUSTER_DRAIN_POLL_US 10000
#define CLUSTER_FORWARD_MS    2000    /* a replica's GET /getServer, answered by the leader */

struct cluster {
    struct hosted *node;   /* this process's node: leader, replica or registry */
    struct hosted *client; /* the leader's: the balancer behind GET /getServer */
    struct proc *registry; /* the leader's children; NULL: --peer, or not a leader */
    struct proc *replicas[SERVE_REPLICAS_MAX];
    int count;
    char names[SERVE_REPLICAS_MAX][FAULTS_NODE_MAX];
    const char *peers[SERVE_REPLICAS_MAX];
    char registry_arg[FAULTS_NODE_MAX + WIRE_URL_MAX + 2]; /* --peer registry=URL */
    char replicas_arg[16];                                 /* --replicas N */
    char ttl_arg[24];                                      /* --ttl MS */
};

static const char *const link_faults[] = {"drop", "delay", "duplicate", "reorder"};

static bool is_leader(const struct server *srv)
{
    return srv->opt.role == SERVE_CLUSTER;
}

/* The leader's process hosts two nodes: the registry's answers are the client's. */
static int leader_dispatch(void *ctx, const char *from, const void *body, size_t len,
                           struct buf *reply)
{
    struct cluster *cl = ctx;
    struct hosted *to = strcmp(from, "registry") == 0 ? cl->client : cl->node;
    return hosted_deliver(to, from, body, len, reply);
}

static void add_link_points(struct server *srv, const char *to)
{
    pthread_mutex_lock(&srv->panel.lock);
    for (size_t p = 0; p < sizeof(link_faults) / sizeof(link_faults[0]); p++) {
        char point[FAULTS_NAME_MAX];
        snprintf(point, sizeof(point), "net/%s/%s/%s", srv->opt.node, to, link_faults[p]);
        (void)panel_add(&srv->panel, point);
    }
    pthread_mutex_unlock(&srv->panel.lock);
}

/* ---- life ----------------------------------------------------------------------------- */

/* The registry, then the replicas (told where the registry listens). */
static int start_children(struct server *srv, struct cluster *cl)
{
    const struct serve_options *o = &srv->opt;
    char url[WIRE_URL_MAX], dir[SERVE_PATH_MAX];
    snprintf(cl->replicas_arg, sizeof(cl->replicas_arg), "%d", cl->count);
    if (!wire_peer_url(srv->net, "registry", url)) {
        snprintf(dir, sizeof(dir), "%.4000s/registry", o->data_dir);
        const char *extra[] = {"--replicas", cl->replicas_arg, NULL};
        int err = proc_start(srv, "registry", dir, extra, &cl->registry);
        if (err)
            return err;
        proc_settle(cl->registry);
    }
    const char *extra[7] = {NULL};
    size_t n = 0;
    if (wire_peer_url(srv->net, "registry", url)) {
        snprintf(cl->registry_arg, sizeof(cl->registry_arg), "registry=%s", url);
        extra[n++] = "--peer";
        extra[n++] = cl->registry_arg;
    }
    if (o->cache != NODE_CACHE_OFF) {
        extra[n++] = "--cache";
        extra[n++] = o->cache == NODE_CACHE_ON ? "on" : "naive";
    }
    if (o->cache_ttl_ms > 0) {
        snprintf(cl->ttl_arg, sizeof(cl->ttl_arg), "%" PRId64, o->cache_ttl_ms);
        extra[n++] = "--ttl";
        extra[n++] = cl->ttl_arg;
    }
    for (int i = 0; i < cl->count; i++) {
        add_link_points(srv, cl->names[i]);
        if (wire_peer_url(srv->net, cl->names[i], url))
            continue; /* --peer: it runs elsewhere */
        snprintf(dir, sizeof(dir), "%.4000s/%s", o->data_dir, cl->names[i]);
        int err = proc_start(srv, cl->names[i], dir, extra, &cl->replicas[i]);
        if (err)
            return err;
    }
    for (int i = 0; i < cl->count; i++)
        if (cl->replicas[i] != NULL)
            proc_settle(cl->replicas[i]);
    return 0;
}

/* A replica's process was started again: the leader's node hears of it
 * (what was in flight to it died with the old one), as the simulator's does. */
static void replica_restarted(void *ctx, const char *name)
{
    struct cluster *cl = ctx;
    (void)hosted_peer_up(cl->node, name);
}

static int start_nodes(struct server *srv, struct cluster *cl)
{
    const struct serve_options *o = &srv->opt;
    char url[WIRE_URL_MAX];
    if (is_leader(srv)) {
        struct node_config leader = {.name = o->node, .role = NODE_CLUSTER_LEADER,
                                     .shop = srv->writer.shop, /* the writer's thread's */
                                     .peers = cl->peers, .peer_count = (size_t)cl->count,
                                     .propagate_before_commit = o->propagate_before};
        struct node_config client = {.name = "client", .role = NODE_CLIENT,
                                     .peer = "registry", .peers = cl->peers,
                                     .peer_count = (size_t)cl->count};
        int err = hosted_start_node(srv, &leader, NULL, 0, false, false, &cl->node);
        if (!err)
            err = hosted_start_node(srv, &client, NULL, 0, false, false, &cl->client);
        if (!err)
            wire_set_handler(srv->net, leader_dispatch, cl);
        for (int i = 0; !err && i < cl->count; i++)
            if (cl->replicas[i] != NULL)
                proc_on_restart(cl->replicas[i], replica_restarted, cl);
        return err;
    }
    if (srv->opt.role == SERVE_REPLICA) {
        bool registry = wire_peer_url(srv->net, "registry", url);
        struct node_config replica = {.name = o->node, .role = NODE_CLUSTER_REPLICA,
                                      .shop = srv->writer.shop, .peer = "leader",
                                      .registry = registry ? "registry" : NULL,
                                      .cache = o->cache,
                                      .cache_ttl_us = o->cache_ttl_ms * 1000};
        if (!registry)
            printf("faultdrill serve: %s: no registry (--peer registry=URL): no heartbeats\n",
                   o->node);
        return hosted_start(srv, &replica, NULL, 0, false, &cl->node);
    }
    struct node_config registry = {.name = o->node, .role = NODE_REGISTRY, .peers = cl->peers,
                                   .peer_count = (size_t)cl->count};
    return hosted_start(srv, &registry, NULL, 0, false, &cl->node);
}

int cluster_start(struct server *srv)
{
    struct cluster *cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        fprintf(stderr, "faultdrill serve: out of memory\n");
        return -ENOMEM;
    }
    cl->count = srv->opt.replicas;
    for (int i = 0; i < cl->count; i++) {
        snprintf(cl->names[i], sizeof(cl->names[i]), "replica%d", i + 1);
        cl->peers[i] = cl->names[i];
    }
    srv->cluster = cl;
    int err = is_leader(srv) ? start_children(srv, cl) : 0;
    if (!err)
        err = start_nodes(srv, cl);
    if (!err && srv->opt.role != SERVE_REPLICA) /* a replica says a line per batch */
        hosted_log_traces(cl->node, true);
    return err; /* on failure stop_all calls cluster_stop */
}

void cluster_drain(struct server *srv)
{
    struct cluster *cl = srv->cluster;
    if (cl == NULL || cl->node == NULL || !is_leader(srv))
        return;
    int64_t deadline = host_mono_us() + CLUSTER_DRAIN_US;
    struct node_status st;
    while (host_mono_us() < deadline && hosted_status(cl->node, &st) == 0) {
        const struct node_cluster_status *s = &st.cluster;
        bool pending = false;
        for (size_t i = 0; i < s->replica_count && !pending; i++) {
            const struct node_cluster_link *l = &s->links[i];
            struct proc_view v = {.pid = 1};
            if (cl->replicas[i] != NULL)
                proc_view(cl->replicas[i], &v);
            /* one that is not running, or never said hello, cannot be waited for */
            pending = v.pid > 0 && l->known && !l->stuck && l->acked < s->head_seq;
        }
        if (!pending)
            return;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = CLUSTER_DRAIN_POLL_US * 1000L};
        nanosleep(&ts, NULL);
    }
}

void cluster_stop(struct server *srv)
{
    struct cluster *cl = srv->cluster;
    if (cl == NULL)
        return;
    for (int i = 0; i < cl->count; i++) /* no news for a node about to go */
        if (cl->replicas[i] != NULL)
            proc_on_restart(cl->replicas[i], NULL, NULL);
    hosted_stop(cl->client);
    hosted_stop(cl->node);
    for (int i = 0; i < cl->count; i++)
        proc_stop(cl->replicas[i]);
    proc_stop(cl->registry);
    srv->cluster = NULL;
    free(cl);
}

/* ---- status ------------------------------------------------------------------------------ */

static void json_seconds(struct buf *b, int64_t us)
{
    char text[32];
    snprintf(text, sizeof(text), "%.3f", (double)(us > 0 ? us : 0) / 1e6);
    buf_puts(b, text);
}

static void json_bool(struct buf *b, bool v)
{
    buf_puts(b, v ? "true" : "false");
}

static void json_names(struct buf *b, const struct cluster *cl, uint32_t mask)
{
    buf_puts(b, "[");
    for (int i = 0, n = 0; i < cl->count; i++)
        if (mask >> i & 1) {
            if (n++)
                buf_puts(b, ",");
            json_str(b, cl->names[i]);
        }
    buf_puts(b, "]");
}

static void json_traces(struct buf *b, struct hosted *h)
{
    static char lines[8][NODE_TRACE_MAX];
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    size_t n = hosted_trace(h, lines, 8);
    buf_puts(b, ",\"trace\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_puts(b, ",");
        json_str(b, lines[i]);
    }
    buf_puts(b, "]");
    pthread_mutex_unlock(&lock);
}

/*
 * A replica's state for the leader's status, from the core's view of it:
 * down when its process is not running, when the registry does not list it
 * (the client's last good answer: no heartbeat within the core's window) or
 * before its hello; catching-up while it lacks changes; up otherwise.
 */
static const char *replica_state(const struct node_status *leader, const struct node_status *client,
                                 size_t i, pid_t pid)
{
    const struct node_cluster_link *l = &leader->cluster.links[i];
    bool listed = !client->cluster.known_from_registry || (client->cluster.known_mask >> i & 1);
    if (pid <= 0 || !l->known || !listed)
        return "down";
    return l->acked < leader->cluster.head_seq ? "catching-up" : "up";
}

struct oldest_arg {
    int64_t after;
    int64_t at_us;
};

/* The commit time of change after+1 (the platform reads its own outbox). */
static int oldest_fn(shop *s, void *arg)
{
    struct oldest_arg *o = arg;
    return node_outbox_change_at(s, o->after, &o->at_us);
}

/* The commit time of the oldest change a replica lacks, 0: none. */
static int64_t lacking_since(struct request *rq, const struct node_cluster_status *s, size_t i)
{
    const struct node_cluster_link *l = &s->links[i];
    if (!l->known || l->acked >= s->head_seq)
        return 0;
    struct oldest_arg old = {.after = l->acked};
    if (worker_read(rq, oldest_fn, &old) != 0 || old.at_us == 0)
        return s->head_at_us; /* pruned or unreadable: at least the head's age */
    return old.at_us;
}

static void leader_status(struct request *rq, struct cluster *cl)
{
    struct server *srv = rq->srv;
    struct node_status *st = calloc(2, sizeof(*st));
    if (st == NULL || hosted_status(cl->node, &st[0]) != 0 ||
        hosted_status(cl->client, &st[1]) != 0) {
        free(st);
        http_reply_error(rq, 503, "server busy", "the node's status could not be read");
        return;
    }
    const struct node_cluster_status *s = &st[0].cluster, *c = &st[1].cluster;
    int64_t now_wall = host_wall_us();
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"topology\":\"cluster\",\"leader\":{\"node\":");
    json_str(b, srv->opt.node);
    buf_puts(b, ",\"port\":");
    buf_i64(b, srv->opt.port);
    buf_puts(b, ",\"pid\":");
    buf_i64(b, (int64_t)getpid());
    buf_puts(b, ",\"seq\":");
    buf_i64(b, s->head_seq);
    buf_puts(b, ",\"prunedThrough\":");
    buf_i64(b, s->pruned_through);
    buf_puts(b, ",\"propagate\":");
    json_str(b, s->before_commit ? "before-commit" : "after-commit");
    buf_puts(b, ",\"hookSends\":");
    buf_i64(b, (int64_t)s->hook_sends);
    buf_puts(b, ",\"phantoms\":");
    buf_i64(b, (int64_t)s->phantoms);
    buf_puts(b, ",\"phantomSeq\":");
    s->phantoms > 0 ? buf_i64(b, s->phantom_seq) : buf_puts(b, "null");
    buf_puts(b, ",\"replicaAhead\":");
    buf_i64(b, (int64_t)s->replica_ahead);
    json_traces(b, cl->node);
    buf_puts(b, "}");
    proc_json(b, "registry", srv, "registry", cl->registry);
    buf_puts(b, ",\"client\":{\"listed\":");
    json_names(b, cl, c->known_mask);
    buf_puts(b, ",\"fromRegistry\":");
    json_bool(b, c->known_from_registry);
    buf_puts(b, ",\"stale\":");
    json_bool(b, c->stale);
    buf_puts(b, ",\"registryAnswers\":");
    buf_i64(b, (int64_t)c->registry_answers);
    buf_puts(b, ",\"picks\":");
    buf_i64(b, (int64_t)c->picks);
    buf_puts(b, "},\"replicas\":[");
    for (int i = 0; i < cl->count; i++) {
        const struct node_cluster_link *l = &s->links[i];
        struct proc_view v = {0};
        char url[WIRE_URL_MAX];
        bool remote = cl->replicas[i] == NULL;
        if (!remote)
            proc_view(cl->replicas[i], &v);
        else if (wire_peer_url(srv->net, cl->names[i], url) && strrchr(url, ':') != NULL)
            v.port = atoi(strrchr(url, ':') + 1);
        struct wire_link_stats ls = {0};
        (void)wire_link_stats(srv->net, cl->names[i], &ls);
        buf_puts(b, i ? ",{\"node\":" : "{\"node\":");
        json_str(b, cl->names[i]);
        buf_puts(b, ",\"port\":");
        v.port > 0 ? buf_i64(b, v.port) : buf_puts(b, "null");
        buf_puts(b, ",\"pid\":");
        v.pid > 0 ? buf_i64(b, (int64_t)v.pid) : buf_puts(b, "null");
        buf_puts(b, ",\"state\":");
        json_str(b, replica_state(&st[0], &st[1], (size_t)i, remote ? 1 : v.pid));
        buf_puts(b, ",\"listed\":");
        json_bool(b, c->known_mask >> i & 1);
        buf_puts(b, ",\"position\":");
        l->known ? buf_i64(b, l->acked) : buf_puts(b, "null");
        buf_puts(b, ",\"sent\":");
        l->known ? buf_i64(b, l->sent) : buf_puts(b, "null");
        buf_puts(b, ",\"lagChanges\":");
        l->known ? buf_i64(b, s->head_seq > l->acked ? s->head_seq - l->acked : 0)
                 : buf_puts(b, "null");
        buf_puts(b, ",\"lagSeconds\":");
        int64_t since = lacking_since(rq, s, (size_t)i);
        json_seconds(b, since > 0 ? now_wall - since : 0);
        buf_puts(b, ",\"stuck\":");
        json_bool(b, l->stuck);
        buf_puts(b, ",\"batchesSent\":");
        buf_i64(b, (int64_t)l->batches_sent);
        buf_puts(b, ",\"timeouts\":");
        buf_i64(b, (int64_t)l->timeouts);
        buf_puts(b, ",\"gapResends\":");
        buf_i64(b, (int64_t)l->gap_resends);
        buf_puts(b, ",\"probes\":");
        buf_i64(b, (int64_t)l->probes);
        buf_puts(b, ",\"messagesLost\":");
        buf_i64(b, (int64_t)ls.lost);
        buf_puts(b, ",\"messagesFailed\":");
        buf_i64(b, (int64_t)ls.failed);
        buf_puts(b, ",\"lastError\":");
        /* a death says more than the link's last failed send to the dead */
        json_str(b, !remote && (v.pid <= 0 || ls.last_error[0] == '\0') ? v.last_error
                                                                          : ls.last_error);
        buf_puts(b, ",\"restarts\":");
        buf_i64(b, v.restarts);
        buf_puts(b, ",\"log\":");
        v.log_path[0] != '\0' ? json_str(b, v.log_path) : buf_puts(b, "null");
        buf_puts(b, "}");
    }
    buf_puts(b, "]}");
    free(st);
    http_reply(rq, 200);
}

/* A replica's or the registry's own status: what its node says. */
static void node_own_status(struct request *rq, struct cluster *cl)
{
    struct node_status *st = calloc(1, sizeof(*st));
    if (st == NULL || hosted_status(cl->node, st) != 0) {
        free(st);
        http_reply_error(rq, 503, "server busy", "the node's status could not be read");
        return;
    }
    const struct node_cluster_status *s = &st->cluster;
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"topology\":\"cluster\",\"node\":");
    json_str(b, st->name);
    buf_puts(b, ",\"role\":");
    json_str(b, node_role_name(st->role));
    buf_puts(b, ",\"up\":");
    json_bool(b, st->up);
    if (st->role == NODE_CLUSTER_REPLICA) {
        buf_puts(b, ",\"position\":");
        buf_i64(b, s->position);
        buf_puts(b, ",\"positionMax\":");
        buf_i64(b, s->position_max);
        buf_puts(b, ",\"batchesApplied\":");
        buf_i64(b, (int64_t)s->batches_applied);
        buf_puts(b, ",\"changesApplied\":");
        buf_i64(b, (int64_t)s->changes_applied);
        buf_puts(b, ",\"duplicates\":");
        buf_i64(b, (int64_t)s->duplicates);
        buf_puts(b, ",\"gaps\":");
        buf_i64(b, (int64_t)s->gaps);
        buf_puts(b, ",\"applyErrors\":");
        buf_i64(b, (int64_t)s->apply_errors);
        buf_puts(b, ",\"appliedTwice\":");
        json_bool(b, s->applied_twice);
        buf_puts(b, ",\"twiceSeq\":");
        s->applied_twice ? buf_i64(b, s->twice_seq) : buf_puts(b, "null");
        buf_puts(b, ",\"twiceAfter\":");
        s->applied_twice ? buf_i64(b, s->twice_after) : buf_puts(b, "null");
        buf_puts(b, ",\"lastApplyError\":");
        json_str(b, s->last_apply_error);
        buf_puts(b, ",\"lastLagSeconds\":");
        json_seconds(b, s->last_lag_us);
        buf_puts(b, ",\"heartbeatsSent\":");
        buf_i64(b, (int64_t)s->heartbeats_sent);
        const struct node_cache_status *c = &s->cache;
        buf_puts(b, ",\"cache\":{\"mode\":");
        json_str(b, c->mode == NODE_CACHE_ON ? "on" : c->mode == NODE_CACHE_NAIVE ? "naive" : "off");
        buf_puts(b, ",\"ttlSeconds\":");
        json_seconds(b, c->ttl_us);
        buf_puts(b, ",\"entries\":");
        buf_i64(b, (int64_t)c->entries);
        buf_puts(b, ",\"maxEntries\":");
        buf_i64(b, (int64_t)c->max_entries);
        buf_puts(b, ",\"hits\":");
        buf_i64(b, (int64_t)c->hits);
        buf_puts(b, ",\"misses\":");
        buf_i64(b, (int64_t)c->misses);
        buf_puts(b, ",\"expired\":");
        buf_i64(b, (int64_t)c->expired);
        buf_puts(b, ",\"invalidated\":");
        buf_i64(b, (int64_t)c->invalidated);
        buf_puts(b, ",\"evicted\":");
        buf_i64(b, (int64_t)c->evicted);
        buf_puts(b, ",\"refusedPuts\":");
        buf_i64(b, (int64_t)c->refused_puts);
        buf_puts(b, "}");
    } else {
        buf_puts(b, ",\"warming\":");
        json_bool(b, s->warming);
        buf_puts(b, ",\"listed\":");
        json_names(b, cl, s->listed_mask);
        buf_puts(b, ",\"heartbeats\":");
        buf_i64(b, (int64_t)s->heartbeats);
        buf_puts(b, ",\"queries\":");
        buf_i64(b, (int64_t)s->queries);
        buf_puts(b, ",\"answers\":");
        buf_i64(b, (int64_t)s->answers);
        buf_puts(b, ",\"unanswered\":");
        buf_i64(b, (int64_t)s->unanswered);
    }
    buf_puts(b, ",\"messagesIn\":");
    buf_i64(b, (int64_t)st->messages_in);
    buf_puts(b, ",\"malformed\":");
    buf_i64(b, (int64_t)st->malformed);
    json_traces(b, cl->node);
    buf_puts(b, "}");
    free(st);
    http_reply(rq, 200);
}

void cluster_status(struct request *rq)
{
    struct cluster *cl = rq->srv->cluster;
    if (cl == NULL || cl->node == NULL) {
        status_not_configured(rq);
        return;
    }
    if (is_leader(rq->srv))
        leader_status(rq, cl);
    else
        node_own_status(rq, cl);
}

/* ---- GET /getServer: the client's pick ---------------------------------------------------- */

static int pick_fn(struct node *n, void *arg)
{
    return node_client_pick(n, arg);
}

void cluster_get_server(struct request *rq)
{
    struct server *srv = rq->srv;
    struct cluster *cl = srv->cluster;
    if (cl == NULL || cl->node == NULL) {
        status_not_configured(rq);
        return;
    }
    if (!is_leader(srv)) { /* the client lives in the leader's process */
        struct wire_forwarded rep;
        char url[WIRE_URL_MAX] = "";
        int err = wire_peer_url(srv->net, "leader", url)
                      ? wire_forward(srv->net, "leader", "GET", "/getServer", NULL, NULL, 0,
                                     CLUSTER_FORWARD_MS, &rq->w->out, &rep)
                      : -ENOTCONN;
        if (err == 0) {
            http_reply_bytes(rq, &rq->w->out, rep.status,
                             rep.content_type[0] ? rep.content_type : NULL,
                             "X-Faultdrill-Via: leader");
            return;
        }
        snprintf(rq->detail, sizeof(rq->detail), "%s cannot reach its leader%s%s: %s",
                 srv->opt.node, url[0] ? " at " : "", url, strerror(-err));
        http_reply_error(rq, 503, "leader unreachable", rq->detail);
        return;
    }
    struct node_pick pick;
    int err = hosted_with(cl->client, pick_fn, &pick);
    char url[WIRE_URL_MAX];
    if (err != 0 || !wire_peer_url(srv->net, pick.replica, url)) {
        snprintf(rq->detail, sizeof(rq->detail), "%s", err != 0 ? platform_strerror(err)
                                                                : "the picked replica is not running");
        http_reply_error(rq, 503, "no replica", rq->detail);
        return;
    }
    int healthy = 0;
    for (int i = 0; i < cl->count; i++)
        healthy += (int)(pick.healthy_mask >> i & 1);
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"server\":");
    json_str(b, url);
    buf_puts(b, ",\"node\":");
    json_str(b, pick.replica);
    buf_puts(b, ",\"healthy\":");
    buf_i64(b, healthy);
    buf_puts(b, "}");
    http_reply(rq, 200);
}

/* ---- the naive --propagate before-commit --------------------------------------------------- */

void cluster_before_commit(void *ctx, const char *node, int64_t seq, const void *change,
                           size_t len)
{
    (void)node;
    struct server *srv = (struct server *)((char *)ctx - offsetof(struct server, host));
    struct cluster *cl = srv->cluster;
    if (cl != NULL && cl->node != NULL) /* none yet: the demo catalog, before the node */
        hosted_before_commit(cl->node, seq, change, len);
}

/* ---- a replica's read cache ------------------------------------------------------------------- */

/*
 * Whether a request's answer is cached, its key (path and query) and what
 * it depends on: the product list any product; a product its row; a user's
 * orders any order and any order line (a status change carries the order's
 * id, not its user: a dependency on user_id would miss it).
 */
static size_t cache_deps(struct request *rq, char *key, size_t cap, struct node_cache_dep *deps)
{
    if (strcmp(rq->ri->request_method, "GET") != 0 || rq->srv->opt.cache == NODE_CACHE_OFF)
        return 0;
    const char *uri = rq->ri->local_uri_raw != NULL ? rq->ri->local_uri_raw : rq->ri->local_uri;
    const char *query = rq->ri->query_string;
    int n = snprintf(key, cap, "%s%s%s", uri, query != NULL ? "?" : "", query != NULL ? query : "");
    if (n < 0 || (size_t)n >= cap)
        return 0;
    char *end = NULL;
    if (strcmp(uri, "/products") == 0) {
        deps[0] = (struct node_cache_dep){.table = "products"};
        return 1;
    }
    if (strncmp(uri, "/products/", 10) == 0) {
        long long id = strtoll(uri + 10, &end, 10);
        if (end == uri + 10 || *end != '\0' || id <= 0)
            return 0;
        deps[0] = (struct node_cache_dep){.table = "products", .column = "id", .value = id};
        return 1;
    }
    if (strncmp(uri, "/orders/", 8) == 0) {
        deps[0] = (struct node_cache_dep){.table = "orders"};
        deps[1] = (struct node_cache_dep){.table = "order_lines"};
        return 2;
    }
    return 0;
}

/* A read the core routed here: answered from the cache when it holds it. */
static bool cache_answer(struct request *rq, struct cluster *cl)
{
    char key[2 * SERVE_PATH_MAX];
    struct node_cache_dep deps[2];
    if (rq->head_only || cache_deps(rq, key, sizeof(key), deps) == 0)
        return false;
    int64_t position = 0;
    if (hosted_cache_get(cl->node, key, rq->session, &rq->w->out, &position) != 0)
        return false;
    rq->has_position = rq->position_fixed = true;
    rq->position = position; /* what the entry reflects, not the copy's newer position */
    http_reply_bytes(rq, &rq->w->out, 200, "application/json", "X-Faultdrill-Cache: hit");
    return true;
}

void cluster_served(struct request *rq)
{
    struct cluster *cl = rq->srv->cluster;
    char key[2 * SERVE_PATH_MAX];
    struct node_cache_dep deps[2];
    if (cl == NULL || cl->node == NULL || rq->status != 200 || !rq->position_fixed ||
        rq->head_only)
        return;
    size_t n = cache_deps(rq, key, sizeof(key), deps);
    if (n > 0) /* -ESTALE: the copy moved while it was read: not cached */
        (void)hosted_cache_put(cl->node, key, deps, n, buf_body(&rq->w->out),
                               buf_body_len(&rq->w->out), rq->position);
}

/* ---- client requests -------------------------------------------------------------------------- */

bool cluster_route(struct request *rq)
{
    struct cluster *cl = rq->srv->cluster;
    if (cl == NULL || cl->node == NULL)
        return false;
    if (rq->srv->opt.role == SERVE_REGISTRY) {
        const char *uri =
            rq->ri->local_uri_raw != NULL ? rq->ri->local_uri_raw : rq->ri->local_uri;
        if (strcmp(uri, "/api/node") == 0 || strcmp(uri, "/faults") == 0 ||
            strcmp(uri, "/heartbeat") == 0 || strcmp(uri, "/replication/status") == 0)
            return false;
        http_reply_error(rq, 404, "not a shop",
                         "the registry keeps the replicas' heartbeats, not the shop: ask the "
                         "leader's GET /getServer for a replica");
        return true;
    }
    if (hosted_route(cl->node, rq))
        return true;
    return rq->srv->opt.role == SERVE_REPLICA && rq->position_fixed && cache_answer(rq, cl);
}
