/*
 * node.c — the node object every role shares (node.h): creating one,
 * handing each event to its role's operations, the helpers that act only
 * through the environment (send, timers, trace, clocks), and the pure
 * request-routing and session rules.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/internal.h"
#include "platform/node_impl.h"

static const char *const role_names[NODE_ROLES_COUNT] = {
    [NODE_ASYNC_PRIMARY] = "async-primary",     [NODE_ASYNC_SECONDARY] = "async-secondary",
    [NODE_OFFLINE_LOCAL] = "offline-local",     [NODE_OFFLINE_CENTRAL] = "offline-central",
    [NODE_CLUSTER_LEADER] = "cluster-leader",   [NODE_CLUSTER_REPLICA] = "cluster-replica",
    [NODE_REGISTRY] = "registry",               [NODE_CLIENT] = "client",
};

const char *node_role_name(enum node_role role)
{
    return (int)role >= 0 && role < NODE_ROLES_COUNT ? role_names[role] : NULL;
}

bool node_role_is_built(enum node_role role)
{
    return role == NODE_ASYNC_PRIMARY || role == NODE_ASYNC_SECONDARY ||
           role == NODE_OFFLINE_LOCAL || role == NODE_OFFLINE_CENTRAL ||
           role == NODE_CLUSTER_LEADER || role == NODE_CLUSTER_REPLICA ||
           role == NODE_REGISTRY || role == NODE_CLIENT;
}

/* ---- helpers ------------------------------------------------------------ */

int64_t node_wall_us(const struct node *n)
{
    return n->env.now_us != NULL ? n->env.now_us(n->env.ctx) : 0;
}

int64_t node_mono_us(const struct node *n)
{
    return n->env.mono_us != NULL ? n->env.mono_us(n->env.ctx) : node_wall_us(n);
}

void node_trace(struct node *n, const char *fmt, ...)
{
    if (n->env.trace == NULL)
        return;
    char text[NODE_TRACE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    n->env.trace(n->env.ctx, n->name, text);
}

int node_send(struct node *n, const char *to, const struct node_msg *m)
{
    uint8_t *buf;
    size_t len;
    int err = node_msg_encode(m, &buf, &len);
    if (err) {
        node_trace(n, "cannot send a %s to %s: %s", node_msg_type_name(m->type), to,
                   platform_strerror(err));
        return err;
    }
    n->env.send(n->env.ctx, n->name, to, buf, len);
    n->messages_out++;
    free(buf);
    return 0;
}

void node_arm(struct node *n, enum node_timer t, int64_t at_us)
{
    assert(t >= 0 && t < NODE_TIMERS_MAX);
    if (n->due_us[t] != 0 && n->due_us[t] <= at_us)
        return; /* an earlier wake is pending: it re-arms what it still needs */
    n->due_us[t] = at_us;
    n->env.timer(n->env.ctx, n->name, (int)t, at_us);
}

int64_t node_next_tick_us(const struct node *n, int64_t period_us)
{
    assert(period_us > 0);
    int64_t now = node_mono_us(n);
    return (now / period_us + 1) * period_us;
}

/* ---- creating ------------------------------------------------------------- */

static int copy_name(char dst[NODE_NAME_MAX], const char *src)
{
    if (src == NULL || src[0] == '\0' || strlen(src) >= NODE_NAME_MAX)
        return -EINVAL;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int check_config(const struct node_config *cfg, const struct platform_env *env,
                        char *msg, size_t len)
{
    if (cfg->name == NULL || cfg->name[0] == '\0' || strlen(cfg->name) >= NODE_NAME_MAX) {
        snprintf(msg, len, "a node needs a name of 1 to %d bytes", NODE_NAME_MAX - 1);
        return -EINVAL;
    }
    if (node_role_name(cfg->role) == NULL) {
        snprintf(msg, len, "node %s: unknown role %d", cfg->name, (int)cfg->role);
        return -EINVAL;
    }
    if (!node_role_is_built(cfg->role)) {
        snprintf(msg, len, "node %s: the %s role is not built yet (issue 10, phase 2)",
                 cfg->name, node_role_name(cfg->role));
        return -ENOSYS;
    }
    if (env == NULL || env->send == NULL || env->timer == NULL ||
        (env->mono_us == NULL && env->now_us == NULL)) {
        snprintf(msg, len, "node %s: the environment needs send, timer and a clock", cfg->name);
        return -EINVAL;
    }
    if (cfg->peer_count > NODE_PEERS_MAX || (cfg->peer_count > 0 && cfg->peers == NULL)) {
        snprintf(msg, len, "node %s: at most %d peers", cfg->name, NODE_PEERS_MAX);
        return -EINVAL;
    }
    if (cfg->link_delay_us < 0) {
        snprintf(msg, len, "node %s: a negative link delay", cfg->name);
        return -EINVAL;
    }
    return 0;
}

/* The role's own state and operations; msg says why it refused. */
static int role_create(struct node *n, char *msg, size_t len)
{
    int err;
    switch (n->role) {
    case NODE_ASYNC_PRIMARY:
    case NODE_ASYNC_SECONDARY:
        err = async_create(n);
        break;
    case NODE_OFFLINE_LOCAL:
    case NODE_OFFLINE_CENTRAL:
        return offline_create(n, msg, len);
    case NODE_CLUSTER_LEADER:
    case NODE_CLUSTER_REPLICA:
        return cluster_create(n, msg, len);
    case NODE_REGISTRY:
    case NODE_CLIENT:
        return registry_create(n, msg, len);
    default:
        err = -ENOSYS;
        break;
    }
    if (err)
        snprintf(msg, len, "node %s: %s", n->name, platform_strerror(err));
    return err;
}

int node_create(const struct node_config *cfg, const struct platform_env *env, struct node **out,
                char errmsg[SHOP_ERRMSG_MAX])
{
    char msg[SHOP_ERRMSG_MAX] = "";
    *out = NULL;
    int err = check_config(cfg, env, msg, sizeof(msg));
    struct node *n = NULL;
    if (!err) {
        n = calloc(1, sizeof(*n));
        err = n == NULL ? -ENOMEM : 0;
    }
    if (!err) {
        n->cfg = *cfg;
        n->env = *env;
        n->role = cfg->role;
        n->shop = cfg->shop;
        copy_name(n->name, cfg->name);
        if (cfg->peer != NULL && copy_name(n->peer, cfg->peer) != 0) {
            snprintf(msg, sizeof(msg), "node %s: a bad peer name", cfg->name);
            err = -EINVAL;
        }
        for (size_t i = 0; !err && i < cfg->peer_count; i++) {
            if (copy_name(n->peers[i], cfg->peers[i]) != 0) {
                snprintf(msg, sizeof(msg), "node %s: a bad peer name", cfg->name);
                err = -EINVAL;
            }
        }
        n->peer_count = cfg->peer_count;
        n->cfg.name = n->name;
        n->cfg.peer = n->peer[0] ? n->peer : NULL;
        n->cfg.peers = NULL; /* the copies are n->peers */
    }
    if (!err && cfg->registry != NULL && copy_name(n->registry_name, cfg->registry) != 0) {
        snprintf(msg, sizeof(msg), "node %s: a bad registry name", cfg->name);
        err = -EINVAL;
    }
    if (!err) {
        n->cfg.registry = n->registry_name[0] ? n->registry_name : NULL;
        err = role_create(n, msg, sizeof(msg));
    }
    if (err) {
        node_destroy(n);
        if (errmsg != NULL)
            snprintf(errmsg, SHOP_ERRMSG_MAX, "%s", msg[0] ? msg : platform_strerror(err));
        return err;
    }
    *out = n;
    return 0;
}

void node_destroy(struct node *n)
{
    if (n == NULL)
        return;
    if (n->ops != NULL && n->ops->release != NULL)
        n->ops->release(n);
    free(n);
}

const char *node_name(const struct node *n)
{
    return n->name;
}

enum node_role node_role(const struct node *n)
{
    return n->role;
}

/* ---- events ---------------------------------------------------------------- */

int node_start(struct node *n)
{
    if (n->shop == NULL && n->role != NODE_REGISTRY && n->role != NODE_CLIENT)
        return -EINVAL; /* its shop did not open: it stays down */
    n->up = true;
    memset(n->due_us, 0, sizeof(n->due_us));
    return n->ops->start != NULL ? n->ops->start(n) : 0;
}

int node_on_message(struct node *n, const char *from, const void *msg, size_t len)
{
    if (!n->up)
        return 0; /* a host should not deliver to a dead node; nothing happens */
    n->messages_in++;
    struct node_msg m;
    if (node_msg_decode(msg, len, &m) != 0) {
        n->malformed++;
        node_trace(n, "malformed message from %s dropped (%zu bytes)", from, len);
        return -EPROTO;
    }
    return n->ops->message != NULL ? n->ops->message(n, from, &m) : 0;
}

int node_on_timer(struct node *n, int timer)
{
    if (timer < 0 || timer >= NODE_TIMERS_MAX)
        return -EINVAL;
    int64_t due = n->due_us[timer];
    if (!n->up || due == 0 || node_mono_us(n) < due)
        return 0; /* a wake it no longer wants: an earlier one handled it */
    n->due_us[timer] = 0;
    n->timers_fired++;
    return n->ops->timer != NULL ? n->ops->timer(n, (enum node_timer)timer) : 0;
}

int node_on_commit(struct node *n, int64_t seq)
{
    if (!n->up || n->ops->commit == NULL)
        return 0;
    return n->ops->commit(n, seq);
}

int node_on_before_commit(struct node *n, int64_t seq, const void *change, size_t len)
{
    if (!n->up || n->ops->before_commit == NULL)
        return 0;
    return n->ops->before_commit(n, seq, change, len);
}

void node_peer_down(struct node *n, const char *peer)
{
    (void)n;
    (void)peer; /* no role acts on it yet: timeouts find a dead peer */
}

void node_peer_up(struct node *n, const char *peer)
{
    if (n->up && n->ops->peer_up != NULL)
        n->ops->peer_up(n, peer);
}

void node_crashed(struct node *n)
{
    if (!n->up)
        return;
    n->up = false;
    n->shop = NULL;
    memset(n->due_us, 0, sizeof(n->due_us));
    if (n->ops->crashed != NULL)
        n->ops->crashed(n);
}

int node_restarted(struct node *n, shop *reopened)
{
    n->shop = reopened;
    n->restarts++;
    return node_start(n);
}

int node_promote(struct node *n)
{
    return n->ops->promote != NULL ? n->ops->promote(n) : -EINVAL;
}

int node_fence(struct node *n)
{
    return n->ops->fence != NULL ? n->ops->fence(n) : -EINVAL;
}

int node_set_online(struct node *n, bool online)
{
    return n->ops->set_online != NULL ? n->ops->set_online(n, online) : -EINVAL;
}

int node_sync_now(struct node *n, uint64_t *ask)
{
    if (n->ops->sync_now == NULL)
        return -EINVAL;
    return n->up ? n->ops->sync_now(n, ask) : -EHOSTDOWN;
}

/* ---- status and routing ------------------------------------------------- */

int node_status(const struct node *n, struct node_status *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->name, n->name, sizeof(out->name));
    out->role = n->role;
    out->up = n->up;
    out->fenced = n->fenced;
    out->messages_in = n->messages_in;
    out->messages_out = n->messages_out;
    out->malformed = n->malformed;
    out->timers_fired = n->timers_fired;
    out->restarts = n->restarts;
    if (n->ops->status != NULL)
        n->ops->status(n, out);
    return 0;
}

void node_view(const struct node *n, struct node_view *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->name, n->name, sizeof(out->name));
    out->role = n->role;
    out->up = n->up;
    out->fenced = n->fenced;
    if (n->ops->view != NULL)
        n->ops->view(n, out);
}

void node_session_saw(struct node_session *s, int64_t position)
{
    if (position > s->position)
        s->position = position;
}

static const char *const route_names[] = {
    [NODE_ROUTE_HERE] = "here",   [NODE_ROUTE_FORWARD] = "forward",
    [NODE_ROUTE_REDIRECT] = "redirect", [NODE_ROUTE_WAIT] = "wait",
    [NODE_ROUTE_REFUSE] = "refuse",
};

const char *node_route_kind_name(enum node_route_kind kind)
{
    return (int)kind >= 0 && kind <= NODE_ROUTE_REFUSE ? route_names[kind] : NULL;
}

static void route_to(struct node_route *out, enum node_route_kind kind, const char *to,
                     const char *why)
{
    out->kind = kind;
    snprintf(out->to, sizeof(out->to), "%s", to != NULL ? to : "");
    out->why = why;
}

void node_route(const struct node_view *v, const struct node_request *req,
                struct node_route *out)
{
    memset(out, 0, sizeof(*out));
    if (!v->up) {
        route_to(out, NODE_ROUTE_REFUSE, NULL, "the node is down");
    } else if (v->fenced) {
        route_to(out, NODE_ROUTE_REFUSE, NULL, "fenced since the failover");
    } else if (req->is_write && v->writable) {
        route_to(out, NODE_ROUTE_HERE, NULL, "the writer");
    } else if (req->is_write && v->writer[0] == '\0') {
        route_to(out, NODE_ROUTE_REFUSE, NULL, "no node takes writes");
    } else if (req->is_write) {
        bool forwards = v->role == NODE_CLUSTER_REPLICA;
        route_to(out, forwards ? NODE_ROUTE_FORWARD : NODE_ROUTE_REDIRECT, v->writer,
                 forwards ? "writes are forwarded to the leader" : "writes go to the writer");
    } else if (req->session.position > v->position) {
        route_to(out, NODE_ROUTE_WAIT, NULL, "the node is behind the client's session");
        out->wait_for = req->session.position;
    } else {
        route_to(out, NODE_ROUTE_HERE, NULL, "a read");
    }
}

/* ---- a writer's outbox, for status pages ------------------------------- */

static int first_at(void *arg, int64_t seq, int64_t at_us, const void *change, size_t len)
{
    (void)seq;
    (void)change;
    (void)len;
    *(int64_t *)arg = at_us;
    return 1; /* the first one is enough */
}

int node_outbox_change_at(shop *s, int64_t after, int64_t *at_us)
{
    *at_us = 0;
    struct shop_batch b = {0};
    int rc = shop_outbox_read(s, after, 1, SHOP_BATCH_BYTES_MAX, &b);
    if (rc == 0 && b.count > 0)
        (void)replog_batch_for_each(b.data, b.len, first_at, at_us);
    shop_batch_release(&b);
    return rc;
}
