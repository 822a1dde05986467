/*
 * registry.c — the cluster's service registry and its clients, written
 * once (DESIGN.md §2): replicas send the registry a heartbeat every
 * NODE_CLUSTER_HEARTBEAT_US; it lists those heard within
 * NODE_CLUSTER_REGISTRY_WINDOW_US, and answers only once it has been up
 * that long (a registry just back knows too few). A client asks it every
 * NODE_CLUSTER_REFRESH_US and keeps its last good answer while it is
 * silent; it picks a replica for each request round robin over the healthy
 * ones (known, and not resting after a failure), and carries the session
 * (the highest position any answer it got reflected) that node_route uses
 * for read-your-writes and monotonic reads across replicas.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/mutants.h"
#include "platform/node_impl.h"

struct registry_state {
    /* the registry */
    int64_t up_since_us;
    int64_t heard_us[NODE_CLUSTER_REPLICAS_MAX]; /* mono, -1: not since its start */
    bool warming_traced;
    uint64_t heartbeats, queries, answers, unanswered;
    /* a client */
    uint32_t known_mask;
    bool from_registry, stale;
    int64_t known_at_us, asked_us, answered_us;
    int64_t skip_until_us[NODE_CLUSTER_REPLICAS_MAX];
    int last;                /* the replica picked last, -1: none yet */
    struct node_session session;
    uint64_t picks, skips, registry_answers;
};

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

static uint32_t all_mask(const struct node *n)
{
    return n->peer_count >= 32 ? UINT32_MAX : (UINT32_C(1) << n->peer_count) - 1;
}

static int peer_index(const struct node *n, const char *name, size_t len)
{
    for (size_t i = 0; i < n->peer_count; i++)
        if (strlen(n->peers[i]) == len && memcmp(n->peers[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* "{replica1,replica3}" */
static void mask_text(const struct node *n, uint32_t mask, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "{");
    for (size_t i = 0; i < n->peer_count && used < len; i++)
        if (mask >> i & 1)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used > 1 ? "," : "",
                                     n->peers[i]);
    if (used < len)
        snprintf(buf + used, len - used, "}");
}

int registry_create(struct node *n, char *errmsg, size_t len)
{
    if (n->peer_count == 0 || n->peer_count > NODE_CLUSTER_REPLICAS_MAX) {
        snprintf(errmsg, len, "node %s: a %s needs 1 to %d replicas (peers)", n->name,
                 node_role_name(n->role), NODE_CLUSTER_REPLICAS_MAX);
        return -EINVAL;
    }
    struct registry_state *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    r->known_mask = all_mask(n);
    r->known_at_us = -1;
    r->last = -1;
    n->registry = r;
    n->ops = n->role == NODE_REGISTRY ? &node_registry_ops : &node_client_ops;
    return 0;
}

static void registry_release(struct node *n)
{
    free(n->registry);
    n->registry = NULL;
}

/* ---- the registry ------------------------------------------------------------ */

static bool listed(const struct registry_state *r, size_t i, int64_t now)
{
    return r->heard_us[i] >= 0 && (now - r->heard_us[i] <= NODE_CLUSTER_REGISTRY_WINDOW_US ||
                                   mutant_is(MUTANT_REGISTRY_NEVER_FORGETS));
}

static int registry_start(struct node *n)
{
    struct registry_state *r = n->registry;
    r->up_since_us = node_mono_us(n);
    for (size_t i = 0; i < NODE_CLUSTER_REPLICAS_MAX; i++)
        r->heard_us[i] = -1;
    r->warming_traced = false;
    node_trace(n, "%s: answers once it has heard heartbeats for %.3fs",
               n->restarts == 0 ? "registry of the replicas" : "back", 
               secs(NODE_CLUSTER_REGISTRY_WINDOW_US));
    return 0;
}

static void answer(struct node *n, const char *client)
{
    struct registry_state *r = n->registry;
    int64_t now = node_mono_us(n);
    r->queries++;
    if (now - r->up_since_us < NODE_CLUSTER_REGISTRY_WINDOW_US) {
        r->unanswered++;
        if (!r->warming_traced)
            node_trace(n, "not answering yet: still hearing heartbeats");
        r->warming_traced = true;
        return;
    }
    char names[NODE_CLUSTER_REPLICAS_MAX * NODE_NAME_MAX];
    size_t used = 0, count = 0;
    for (size_t i = 0; i < n->peer_count; i++) {
        if (!listed(r, i, now))
            continue;
        size_t len = strlen(n->peers[i]);
        if (used > 0)
            names[used++] = '\n';
        memcpy(names + used, n->peers[i], len);
        used += len;
        count++;
    }
    struct node_msg m = {.type = NODE_MSG_REGISTRY_ANSWER, .a = (int64_t)count,
                         .data = (const uint8_t *)names, .len = used};
    if (node_send(n, client, &m) == 0)
        r->answers++;
}

static int registry_message(struct node *n, const char *from, const struct node_msg *m)
{
    struct registry_state *r = n->registry;
    if (m->type == NODE_MSG_HEARTBEAT) {
        int i = peer_index(n, from, strlen(from));
        if (i < 0) {
            node_trace(n, "heartbeat from %s ignored: not a replica it lists", from);
            return 0;
        }
        r->heard_us[i] = node_mono_us(n);
        r->heartbeats++;
    } else if (m->type == NODE_MSG_REGISTRY_QUERY) {
        answer(n, from);
    }
    return 0;
}

static void registry_status(const struct node *n, struct node_status *out)
{
    const struct registry_state *r = n->registry;
    struct node_cluster_status *s = &out->cluster;
    int64_t now = node_mono_us(n);
    s->warming = n->up && now - r->up_since_us < NODE_CLUSTER_REGISTRY_WINDOW_US;
    for (size_t i = 0; n->up && i < n->peer_count; i++)
        if (listed(r, i, now))
            s->listed_mask |= UINT32_C(1) << i;
    s->heartbeats = r->heartbeats;
    s->queries = r->queries;
    s->answers = r->answers;
    s->unanswered = r->unanswered;
}

const struct node_ops node_registry_ops = {
    .start = registry_start,
    .message = registry_message,
    .status = registry_status,
    .release = registry_release,
};

/* ---- a client ---------------------------------------------------------------- */

static void refresh(struct node *n)
{
    struct registry_state *r = n->registry;
    int64_t now = node_mono_us(n);
    if (r->asked_us > r->answered_us && r->from_registry && !r->stale) {
        char known[NODE_CLUSTER_REPLICAS_MAX * (NODE_NAME_MAX + 1) + 3];
        mask_text(n, r->known_mask, known, sizeof(known));
        node_trace(n, "the registry did not answer: keeping its last good answer %s (from "
                      "%.3fs)",
                   known, secs(r->known_at_us));
        r->stale = true;
    }
    struct node_msg m = {.type = NODE_MSG_REGISTRY_QUERY};
    node_send(n, n->peer, &m);
    r->asked_us = now;
    node_arm(n, NODE_TIMER_REFRESH, now + NODE_CLUSTER_REFRESH_US);
}

static int client_start(struct node *n)
{
    if (n->peer[0] != '\0')
        refresh(n);
    return 0;
}

static void on_answer(struct node *n, const struct node_msg *m)
{
    struct registry_state *r = n->registry;
    if (r->from_registry && mutant_is(MUTANT_CLIENT_KEEPS_FIRST_ANSWER))
        return;
    uint32_t mask = 0;
    const char *p = (const char *)m->data, *end = p + m->len;
    while (p != NULL && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl != NULL ? nl : end) - p);
        int i = peer_index(n, p, len);
        if (i >= 0)
            mask |= UINT32_C(1) << i;
        p = nl != NULL ? nl + 1 : NULL;
    }
    char known[NODE_CLUSTER_REPLICAS_MAX * (NODE_NAME_MAX + 1) + 3];
    mask_text(n, mask, known, sizeof(known));
    if (r->stale)
        node_trace(n, "the registry answers again: %s", known);
    else if (mask != r->known_mask || !r->from_registry)
        node_trace(n, "the registry lists %s", known);
    r->known_mask = mask;
    r->from_registry = true;
    r->stale = false;
    r->known_at_us = node_mono_us(n);
    r->answered_us = r->known_at_us;
    r->registry_answers++;
}

static int client_message(struct node *n, const char *from, const struct node_msg *m)
{
    if (m->type == NODE_MSG_REGISTRY_ANSWER && strcmp(from, n->peer) == 0)
        on_answer(n, m);
    return 0;
}

static int client_timer(struct node *n, enum node_timer t)
{
    if (t == NODE_TIMER_REFRESH)
        refresh(n);
    return 0;
}

/* Known and not resting; else the known ones; else all of them. */
static uint32_t healthy(const struct node *n, int64_t now)
{
    const struct registry_state *r = n->registry;
    uint32_t mask = 0;
    for (size_t i = 0; i < n->peer_count; i++)
        if ((r->known_mask >> i & 1) && r->skip_until_us[i] <= now)
            mask |= UINT32_C(1) << i;
    if (mask == 0)
        mask = r->known_mask;
    return mask != 0 ? mask : all_mask(n);
}

int node_client_pick(struct node *n, struct node_pick *out)
{
    memset(out, 0, sizeof(*out));
    if (n->role != NODE_CLIENT)
        return -EINVAL;
    struct registry_state *r = n->registry;
    uint32_t mask = healthy(n, node_mono_us(n));
    int count = (int)n->peer_count;
    for (int k = 1; k <= count; k++) {
        int i = (r->last + k) % count; /* last >= -1 */
        if ((mask >> i & 1) || mutant_is(MUTANT_LB_PICKS_DEAD)) {
            r->last = i;
            break;
        }
    }
    r->picks++;
    out->index = r->last;
    out->healthy_mask = mask;
    memcpy(out->replica, n->peers[r->last], sizeof(out->replica));
    out->session = r->session;
    return 0;
}

void node_client_done(struct node *n, const char *replica, bool answered, int64_t position)
{
    if (n->role != NODE_CLIENT)
        return;
    struct registry_state *r = n->registry;
    if (answered) {
        node_session_saw(&r->session, position);
        return;
    }
    int i = peer_index(n, replica, strlen(replica));
    if (i < 0)
        return;
    int64_t until = node_mono_us(n) + NODE_CLUSTER_SKIP_US;
    if (until > r->skip_until_us[i])
        r->skip_until_us[i] = until;
    r->skips++;
    node_trace(n, "%s did not answer: skipped until %.3fs", replica, secs(until));
}

static void client_status(const struct node *n, struct node_status *out)
{
    const struct registry_state *r = n->registry;
    struct node_cluster_status *s = &out->cluster;
    s->known_mask = r->known_mask;
    s->known_from_registry = r->from_registry;
    s->stale = r->stale;
    s->known_at_us = r->known_at_us;
    s->session_position = r->session.position;
    s->picks = r->picks;
    s->skips = r->skips;
    s->registry_answers = r->registry_answers;
}

const struct node_ops node_client_ops = {
    .start = client_start,
    .message = client_message,
    .timer = client_timer,
    .status = client_status,
    .release = registry_release,
};
