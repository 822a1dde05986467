/*
 * node_impl.h — what node.c, msg.c and the protocol files (async.c, offline.c,
 * and the cluster, registry and client roles to come) share: the node
 * object, the per-role operations, the message codec and the helpers that
 * act through the environment. Private to platform/ (and its tests).
 */
#ifndef FAULTDRILL_PLATFORM_NODE_IMPL_H
#define FAULTDRILL_PLATFORM_NODE_IMPL_H

#include <stdarg.h>

#include "platform/platform.h"

/* ---- The codec ---------------------------------------------------------
 * Every node message (little endian): "FDN1", u8 type, i64 a, i64 b,
 * u32 n, n bytes of payload. What a, b and the payload mean is the type's.
 */

enum node_msg_type {
    NODE_MSG_ASYNC_BATCH = 1, /* primary -> secondary: a first seq, b last seq, a shop batch */
    NODE_MSG_ASYNC_ACK,       /* secondary -> primary: a position, b 1 when the batch left a gap */
    NODE_MSG_ASYNC_SNAPSHOT,  /* primary -> secondary (outbox=off): a taken at (wall us), the copy */
    NODE_MSG_ASYNC_FENCE,     /* promoted secondary -> old primary: a its failover position */
    /* offline: a is the local's life (its epoch), b the push's number in it */
    NODE_MSG_SYNC_PUSH,       /* local -> central: a shop_sync_pending push */
    NODE_MSG_SYNC_ACCEPTED,   /* central -> local: shop_sync_reply_encode of what it holds */
    NODE_MSG_SYNC_REFUSED,    /* central -> local: u32 errno, then central's error text */
    /* cluster (cluster.c, registry.c) */
    NODE_MSG_CLUSTER_BATCH,   /* leader -> replica: a first seq, b last seq, a shop batch */
    NODE_MSG_CLUSTER_ACK,     /* replica -> leader: a position, b incarnation x 4 + ACK_* flags */
    NODE_MSG_CLUSTER_PROBE,   /* leader -> replica: where are you? (answered by a hello) */
    NODE_MSG_HEARTBEAT,       /* replica -> registry: a its position */
    NODE_MSG_REGISTRY_QUERY,  /* client -> registry: which replicas live? */
    NODE_MSG_REGISTRY_ANSWER, /* registry -> client: a how many, the names, one per line */
    NODE_MSG_TYPES_END
};

struct node_msg {
    enum node_msg_type type;
    int64_t a, b;
    const uint8_t *data; /* decode: points into the buffer decoded */
    size_t len;
};

/* A malloc'ed encoding of m (free it); -ENOMEM, -E2BIG past NODE_MSG_BYTES_MAX. */
int node_msg_encode(const struct node_msg *m, uint8_t **out, size_t *out_len);
/* -EPROTO when buf is not one well-formed message of a known type. */
int node_msg_decode(const void *buf, size_t len, struct node_msg *out);
const char *node_msg_type_name(enum node_msg_type type);

/* ---- Timers (the `timer` of env->timer and node_on_timer) ------------- */

enum node_timer {
    NODE_TIMER_PUMP,     /* async: look at the outbox, resend on a timeout */
    NODE_TIMER_SNAPSHOT, /* async outbox=off: the next whole copy */
    NODE_TIMER_SYNC,     /* offline local: the sync job's run (periodic, or now) */
    NODE_TIMER_SYNC_REPLY, /* offline local: the push in flight's answer is due */
    NODE_TIMER_PROPAGATE, /* cluster leader: the earliest resend or probe deadline */
    NODE_TIMER_HEARTBEAT, /* cluster replica: tell the registry it lives */
    NODE_TIMER_REFRESH,   /* client: ask the registry again */
    NODE_TIMERS_MAX
};

/* ---- The node ------------------------------------------------------------ */

struct async_state;
struct offline_state;
struct cluster_state;
struct registry_state;
struct node_cache;

/* What a role implements; NULL members: the event means nothing to it. */
struct node_ops {
    int (*start)(struct node *n);
    int (*message)(struct node *n, const char *from, const struct node_msg *m);
    int (*timer)(struct node *n, enum node_timer t);
    int (*commit)(struct node *n, int64_t seq);
    int (*before_commit)(struct node *n, int64_t seq, const void *change, size_t len);
    void (*peer_up)(struct node *n, const char *peer);
    void (*crashed)(struct node *n);
    int (*promote)(struct node *n);
    int (*fence)(struct node *n);
    int (*set_online)(struct node *n, bool online);
    int (*sync_now)(struct node *n, uint64_t *ask);
    void (*view)(const struct node *n, struct node_view *out);
    void (*status)(const struct node *n, struct node_status *out);
    void (*release)(struct node *n);
};

struct node {
    char name[NODE_NAME_MAX];
    char peer[NODE_NAME_MAX];
    enum node_role role;
    struct node_config cfg;      /* strings point at the copies here */
    size_t peer_count;
    char peers[NODE_PEERS_MAX][NODE_NAME_MAX];
    char registry_name[NODE_NAME_MAX]; /* cfg.registry's copy */
    struct platform_env env;
    shop *shop;
    bool up;
    bool fenced;
    int64_t due_us[NODE_TIMERS_MAX]; /* a wake asked for, 0: none */
    uint64_t messages_in, messages_out, malformed, timers_fired, restarts;
    const struct node_ops *ops;
    struct async_state *async;   /* NODE_ASYNC_* */
    struct offline_state *offline; /* NODE_OFFLINE_* */
    struct cluster_state *cluster; /* NODE_CLUSTER_LEADER, NODE_CLUSTER_REPLICA */
    struct registry_state *registry; /* NODE_REGISTRY, NODE_CLIENT */
};

/* The protocol clock and the wall clock. */
int64_t node_mono_us(const struct node *n);
int64_t node_wall_us(const struct node *n);
/* Encodes and sends m to `to`; 0 or -ENOMEM / -E2BIG (traced). */
int node_send(struct node *n, const char *to, const struct node_msg *m);
/* Asks for a wake at at_us unless an earlier (or the same) one is pending. */
void node_arm(struct node *n, enum node_timer t, int64_t at_us);
/* The next multiple of period_us strictly after the protocol clock's now. */
int64_t node_next_tick_us(const struct node *n, int64_t period_us);
void node_trace(struct node *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* async.c */
extern const struct node_ops node_async_primary_ops;
extern const struct node_ops node_async_secondary_ops;
int async_create(struct node *n);

/* offline.c */
extern const struct node_ops node_offline_local_ops;
extern const struct node_ops node_offline_central_ops;
int offline_create(struct node *n, char *errmsg, size_t len);
/* cluster.c: the leader and the replicas; registry.c: the registry and the client */
extern const struct node_ops node_cluster_leader_ops;
extern const struct node_ops node_cluster_replica_ops;
extern const struct node_ops node_registry_ops;
extern const struct node_ops node_client_ops;
int cluster_create(struct node *n, char *errmsg, size_t len);
int registry_create(struct node *n, char *errmsg, size_t len);

/* cache.c: a replica's read cache */
struct node_cache *cache_new(enum node_cache_mode mode, int64_t ttl_us, size_t max_entries);
void cache_free(struct node_cache *c);
/* Forgets every entry (the process died). */
void cache_clear(struct node_cache *c);
/* cache=on: drops the entries a change record touches. */
void cache_change(struct node_cache *c, const void *change, size_t len);
/* cache=on: the survivors of changes up to position are valid there now. */
void cache_advance(struct node_cache *c, int64_t position);
int cache_get(struct node_cache *c, const char *key, int64_t now_us, int64_t session,
              struct node_cache_hit *out);
int cache_put(struct node_cache *c, const char *key, const struct node_cache_dep *deps,
              size_t dep_count, const void *answer, size_t len, int64_t position,
              int64_t now_us);
void cache_status(const struct node_cache *c, struct node_cache_status *out);

#endif /* FAULTDRILL_PLATFORM_NODE_IMPL_H */
