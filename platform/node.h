/*
 * node.h — part of platform.h (include that): a node of a replicated
 * topology as a host-independent state machine (DESIGN.md §1, "the one
 * seam"). Every replication protocol is written once, here, and driven by
 * two hosts: the simulator (virtual time, one thread, a simulated network)
 * and serve (a monotonic clock, threads, HTTP between processes).
 *
 * A node is a name, a role, its shop (or none: the registry, a client) and
 * its protocol state. The host hands it events — node_start,
 * node_on_message, node_on_timer, node_on_commit, node_peer_down/up,
 * node_crashed/node_restarted, and the operator's node_promote, node_fence,
 * node_set_online — and the node acts ONLY through the environment it was
 * given: env->send (a message to another node; the host may delay,
 * duplicate, reorder or drop it), env->timer (wake me at T), env->trace (a
 * protocol event in words), and its own shop. It never blocks, never reads
 * a clock other than env->mono_us/now_us and never calls back into the
 * host from inside the host's own callbacks.
 *
 * ---- How a host drives a node (the recipe) --------------------------------
 *
 *   1. Open the node's shop (async primary: shop_config.outbox = true unless
 *      outbox_off; offline local: shop_config.sync_queue = SHOP_QUEUE_SAME,
 *      or SHOP_QUEUE_SEPARATE for the naive queue=separate, which the
 *      protocol does not hide; offline central: no queue, unseeded). Fill
 *      struct node_config, call node_create, then node_start once the shop
 *      is open (and seeded, if the host seeds).
 *   2. env->send(ctx, from, to, msg, len): copy msg, carry it over the link
 *      from -> to (this is where link faults act: the sim's and serve's
 *      net/<from>/<to>/{drop,delay,duplicate,reorder}), and later call
 *      node_on_message(to_node, from, msg, len) — unless `to` is down, then
 *      drop it. Messages are the platform's binary codec: opaque bytes to the
 *      host, which may only name them (node_msg_describe).
 *   3. env->timer(ctx, node, timer, at_us): call node_on_timer(node, timer)
 *      once the protocol clock reaches at_us (never earlier; later is fine).
 *      A host need not cancel timers: a node ignores wakes it no longer
 *      wants. Drop the wakes of a node that is down.
 *   4. After a client write (or a group) commits on the node's shop, call
 *      node_on_commit(node, shop_last_seq(shop)).
 *   5. A client request reaching a node: copy node_view() after events (or
 *      on the thread running them) and decide with node_route() — a pure
 *      function of values, safe on any thread; it says serve here, forward
 *      to X, redirect to X, wait, or refuse. The node never does request I/O.
 *   6. When the node's process dies: node_crashed (the host abandons the
 *      shop); when it is back with a reopened shop: node_restarted. A host
 *      whose crash is a real process death simply creates a fresh node.
 *   7. Every event returns 0 or a negative errno; -ECANCELED means a crash
 *      point fired in the node's shop: the host must kill the node now
 *      (node_crashed + shop_abandon). -EPROTO: a malformed message, dropped,
 *      nothing changed. Anything else was traced and the node goes on.
 *   8. Status for checkers and status pages: node_status (a copy; for an
 *      offline local it also reads the queue's counts from the shop, a
 *      query over the whole queue: call it when needed, not per event).
 *   9. Operator actions are events too: node_promote, node_fence (async),
 *      node_set_online and node_sync_now (offline local). An operator who
 *      waits for a run now (serve's POST /sync/run) calls node_sync_now and
 *      waits, on the node's thread, for node_status's offline.settled to
 *      reach the ask (check after each event; it moves only in events).
 *
 * Offline in serve, say: `local` is the first process: its shop db.sqlite
 * with sync_queue = SHOP_QUEUE_SAME, its node NODE_OFFLINE_LOCAL with peer
 * "central", sync_interval_us = --interval and sync_retries = --retries (0:
 * the NODE_OFFLINE_* defaults), link_delay_us 0 on one machine (the reply
 * timeout is NODE_OFFLINE_REPLY_TIMEOUT_US + 2x it; an answer later than
 * that still marks its rows). `central` is its own process: its shop an
 * unseeded db_central.sqlite, its node NODE_OFFLINE_CENTRAL with peers
 * {"local"}. Messages go as they are over POST /api/node, link faults act in
 * the sender; the local's env->timer wakes the writer thread, which runs its
 * events. GET /sync/status reads node_status().offline (the job, and the
 * queue by table and state); POST /sync/run is step 9; the switch is
 * node_set_online. Nothing else of the protocol is the host's: no retries,
 * no timeouts, no marking, no FAILED policy.
 *
 * The cluster (leader, replicas, registry, clients) on top of that:
 *   - The leader's shop opens with outbox = true (and propagate_before_commit
 *     for the naive mode, whose env->before_commit the host hands to
 *     node_on_before_commit). node_on_commit(leader, seq) after every write it
 *     serves, node_on_commit(leader, 0) after a write whose outcome is
 *     unknown (the leader reads its outbox). Replicas open plain shops,
 *     unseeded: the catalog reaches them by propagation.
 *   - The registry and a client have no shop (node_config.shop NULL); a
 *     client node lives in the client's process (serve: the balancer in
 *     front of the replicas; the sim: one per simulated client). Messages to
 *     and from them travel like any other.
 *   - A client request: node_client_pick(client) names the replica and the
 *     session to send with it. At the replica, node_route(view, request):
 *     FORWARD (a write): carry the request to the leader (the host's own
 *     transport), serve it there (node_route HERE at the leader), and bring
 *     back its answer with the leader's position p (shop_last_seq); the
 *     replica then routes the answer as a read with session p: WAIT until
 *     node_view().position >= p, then answer. WAIT (a read behind the
 *     session): hold it, re-route after each event on the replica. HERE (a
 *     read): node_cache_get(key, session) first when the replica caches;
 *     else serve it on the replica's shop, answer with node_view().position
 *     and node_cache_put the answer at that position with what it depends
 *     on. When the answer (or a timeout) reaches the client:
 *     node_client_done(client, replica, answered, position).
 *
 * Threading: a node is single-threaded. Every call on one node (events,
 * node_status, node_view) must be serialized by the host; serve runs them
 * on the writer thread that owns the node's only writable shop. node_route
 * and node_session_* are pure functions over values: call them anywhere.
 *
 * Determinism: the same events in the same order at the same clock values
 * produce the same sends, timers and trace text (no addresses, no host
 * clock, no randomness in a node).
 */
#ifndef FAULTDRILL_PLATFORM_NODE_H
#define FAULTDRILL_PLATFORM_NODE_H

#include "platform/platform.h"

/* ---- Limits and the protocol constants (one choice of each) ----------- */

#define NODE_NAME_MAX 32          /* bytes of a node name, NUL included */
#define NODE_PEERS_MAX 64         /* peers of one node (replicas, locals) */
#define NODE_TRACE_MAX 320        /* bytes of one trace line handed to env->trace */
#define NODE_MSG_HEADER_BYTES 25  /* the codec's fixed header */
#define NODE_MSG_BYTES_MAX (NODE_MSG_HEADER_BYTES + SHOP_BATCH_BYTES_MAX)

/* Asynchronous replication (async.c). */
#define NODE_ASYNC_BATCH_CHANGES SHOP_BATCH_CHANGES_MAX /* changes per batch (drill batch=) */
#define NODE_ASYNC_BATCH_BYTES_MAX (1u << 20)   /* bytes per batch, about */
#define NODE_ASYNC_WINDOW_BATCHES 4             /* batches unacknowledged at once */
#define NODE_ASYNC_PUMP_US 10000                /* the shipper looks at the outbox this often */
#define NODE_ASYNC_RTO_MIN_US 100000            /* no progress for this + 2 x link delay... */
#define NODE_ASYNC_RTO_MAX_US 2000000           /* ...resend from the last ack, doubling to this */
#define NODE_ASYNC_SNAPSHOT_EVERY_US 1000000    /* outbox=off: a whole copy this often */

/*
 * Offline-first sync (offline.c). A local's sync job runs every interval
 * (node_config.sync_interval_us, 0: NODE_OFFLINE_INTERVAL_US); while online
 * and with no push in flight it pushes up to NODE_OFFLINE_PUSH_ROWS queue
 * rows, oldest first, PENDING and FAILED alike (the FAILED policy: a push
 * fails or succeeds as a whole, so a FAILED row is never what makes a push
 * fail, only the witness of pushes that did; leaving it out while pushes
 * fail saves nothing and would delay it after the heal). A push with no
 * answer after NODE_OFFLINE_REPLY_TIMEOUT_US plus twice the link delay has
 * failed: each row it carried counts a retry and becomes FAILED when its
 * retries reach the budget (sync_retries, 0: NODE_OFFLINE_RETRIES). A full
 * push that was accepted is followed at once by the next one.
 */
#define NODE_OFFLINE_INTERVAL_US 1000000         /* the sync job's period, by default */
#define NODE_OFFLINE_RETRIES 5                   /* failed pushes before FAILED, by default */
#define NODE_OFFLINE_PUSH_ROWS SHOP_SYNC_PUSH_ROWS_MAX /* queue rows in one push */
#define NODE_OFFLINE_REPLY_TIMEOUT_US 500000     /* a push unanswered (+ 2 x link delay) failed */

/*
 * Replicas with leader propagation (cluster.c). The leader ships its outbox
 * to every replica on each commit and keeps, per replica, acked <= sent <=
 * head with sent - acked at most NODE_CLUSTER_WINDOW_BATCHES batches; no ack
 * for the retransmission timeout (NODE_CLUSTER_RTO_MIN_US + 2 x link delay,
 * doubling to NODE_CLUSTER_RTO_MAX_US) sends it back to acked, a gap ack at
 * once. It prunes its outbox to the lowest position every replica confirmed,
 * in steps of NODE_CLUSTER_PRUNE_STEP changes. Replicas say hello (their
 * position and incarnation) at every start and whenever the leader probes
 * after its own restart. The registry lists the replicas whose heartbeat it
 * heard within NODE_CLUSTER_REGISTRY_WINDOW_US (and answers only once it has
 * been up that long); a client asks it every NODE_CLUSTER_REFRESH_US and
 * keeps its last good answer; a replica that failed a client's request is
 * skipped for NODE_CLUSTER_SKIP_US.
 */
#define NODE_CLUSTER_REPLICAS_MAX 16            /* replicas of one cluster */
#define NODE_CLUSTER_BATCH_CHANGES 256          /* changes per propagated batch */
#define NODE_CLUSTER_BATCH_BYTES_MAX (1u << 20) /* bytes per propagated batch, about */
#define NODE_CLUSTER_WINDOW_BATCHES 4           /* batches unacknowledged per replica */
#define NODE_CLUSTER_RTO_MIN_US 50000           /* no ack for this + 2 x link delay: back... */
#define NODE_CLUSTER_RTO_MAX_US 1000000         /* ...to the last ack, doubling to this */
#define NODE_CLUSTER_PRUNE_STEP 64              /* the outbox is pruned this many at a time */
#define NODE_CLUSTER_HEARTBEAT_US 200000        /* replica -> registry */
#define NODE_CLUSTER_REFRESH_US 500000          /* client -> registry */
#define NODE_CLUSTER_REGISTRY_WINDOW_US 600000  /* a replica heard this recently is listed */
#define NODE_CLUSTER_SKIP_US 1000000            /* a replica that failed a request rests */
/* A replica's read cache (cache.c). */
#define NODE_CACHE_ENTRIES 128                  /* entries at most (node_config.cache_entries) */
#define NODE_CACHE_TTL_US 5000000               /* an entry's age at most (cache_ttl_us) */
#define NODE_CACHE_DEPS_MAX 64                  /* dependencies of one entry kept exactly */
#define NODE_CACHE_ANSWER_BYTES_MAX (64u << 10) /* a larger answer is not cached */

/* ---- Roles ------------------------------------------------------------ */

enum node_role {
    NODE_ASYNC_PRIMARY,   /* takes writes, ships its outbox to the secondary */
    NODE_ASYNC_SECONDARY, /* applies the primary's batches; node_promote makes it take writes */
    NODE_OFFLINE_LOCAL,   /* takes writes offline; its sync job pushes its queue to central */
    NODE_OFFLINE_CENTRAL, /* aggregates the pushes of several locals */
    NODE_CLUSTER_LEADER,  /* orders every write, propagates its outbox to the replicas */
    NODE_CLUSTER_REPLICA, /* serves reads (and its cache), forwards writes to the leader */
    NODE_REGISTRY,        /* name -> replicas with health, from heartbeats */
    NODE_CLIENT,          /* the client side: registry answer, round robin, session */
    NODE_ROLES_COUNT
};

/* "async-primary", "async-secondary", "offline-local", ...; NULL past the end. */
const char *node_role_name(enum node_role role);
/* Whether node_create builds this role yet (the async and offline roles). */
bool node_role_is_built(enum node_role role);

enum node_cache_mode {
    NODE_CACHE_OFF,
    NODE_CACHE_ON,    /* invalidated by the change records a replica applies */
    NODE_CACHE_NAIVE, /* naive: never invalidated (only the ttl and the size bound) */
};

/* ---- Creating a node -------------------------------------------------- */

struct node;

/*
 * What a node is. Strings are copied. Members a role does not use are
 * ignored; 0 / NULL picks the default named above.
 */
struct node_config {
    const char *name;            /* this node: "primary", "replica2", "local3", "client1" */
    enum node_role role;
    shop *shop;                  /* its only writable shop; NULL for the registry and a client */
    /*
     * The one peer: async primary <-> secondary, offline local -> central,
     * cluster replica -> leader, client -> registry (NULL: no registry).
     */
    const char *peer;
    /* The many: leader -> replicas, central <- locals (the only origins it
     * accepts pushes from), registry and client -> replicas. */
    const char *const *peers;
    size_t peer_count;
    /* The one-way delay the host's link adds (the drill's WAN delay=, serve's
     * --delay): timeouts allow for it. The host, not the node, applies it. */
    int64_t link_delay_us;

    /* async */
    uint32_t batch_changes;      /* 0: NODE_ASYNC_BATCH_CHANGES; capped there */
    bool outbox_off;             /* naive: a whole copy every NODE_ASYNC_SNAPSHOT_EVERY_US */

    /* offline (a local; central needs only its peers) */
    int64_t sync_interval_us;    /* the sync job's period; 0: NODE_OFFLINE_INTERVAL_US */
    int sync_retries;            /* a row's retry budget before FAILED; 0: NODE_OFFLINE_RETRIES */

    /* cluster: leader (peers: the replicas), replica (peer: the leader),
     * registry (peers: the replicas), client (peer: the registry or NULL,
     * peers: the replicas it balances over, at most NODE_CLUSTER_REPLICAS_MAX) */
    const char *registry;        /* a replica's registry (NULL: it sends no heartbeat) */
    bool propagate_before_commit; /* leader, naive: the shop's before_commit hook propagates
                                   * (open its shop with propagate_before_commit, and hand
                                   * the hook's calls to node_on_before_commit) */
    enum node_cache_mode cache;  /* a replica's read cache */
    int64_t cache_ttl_us;        /* 0: NODE_CACHE_TTL_US */
    size_t cache_entries;        /* 0: NODE_CACHE_ENTRIES; capped there */
};

/*
 * Creates a node (no event yet). env is copied; it must have send and
 * timer (and mono_us or now_us). -EINVAL for a bad config, -ENOSYS for a
 * role that is not built yet (node_role_is_built), -ENOMEM. errmsg (may be
 * NULL) says why in words.
 */
int node_create(const struct node_config *cfg, const struct platform_env *env, struct node **out,
                char errmsg[SHOP_ERRMSG_MAX]);
/* Frees the node (never its shop). NULL is allowed. */
void node_destroy(struct node *n);
const char *node_name(const struct node *n);
enum node_role node_role(const struct node *n);

/* ---- Events ------------------------------------------------------------ */

/* The node's shop is open: recover the protocol state from it, arm timers. */
int node_start(struct node *n);
/* A message from node `from` (as the env's send gave it). */
int node_on_message(struct node *n, const char *from, const void *msg, size_t len);
/* A timer the node asked for through env->timer is due. */
int node_on_timer(struct node *n, int timer);
/* A client write or group committed on the node's shop; seq is its outbox
 * sequence (shop_last_seq; 0 when the shop keeps no outbox, or when the
 * write's outcome is unknown: a cluster leader then reads its outbox). */
int node_on_commit(struct node *n, int64_t seq);
/* The host learned that a peer's process died / came back (a hint: the
 * protocol is correct without it, it only acts sooner). */
void node_peer_down(struct node *n, const char *peer);
void node_peer_up(struct node *n, const char *peer);
/*
 * The cluster leader's shop called env->before_commit (propagate=before-commit,
 * the naive mode): the change goes to every replica now, before the commit
 * that may still fail. Other roles ignore it.
 */
int node_on_before_commit(struct node *n, int64_t seq, const void *change, size_t len);
/* The node's process died: everything volatile is gone; no event reaches it
 * until node_restarted. Counters (node_status) survive for the host. */
void node_crashed(struct node *n);
/* The node's process is back with its shop reopened: recover as node_start. */
int node_restarted(struct node *n, shop *reopened);

/* ---- Operator actions ------------------------------------------------- */

/*
 * Failover, on the async secondary: it stops applying the old primary's
 * batches, takes client writes from now on, and tells the old primary it is
 * fenced (a message, repeated whenever the old primary is heard from).
 * The RPO accounting is in node_status().async.failover. -EALREADY when
 * promoted already; -EINVAL on another role.
 */
int node_promote(struct node *n);
/*
 * Fencing, on the old primary (the operator's STONITH; the promoted node's
 * message does the same when it arrives): it refuses every client request
 * and ships nothing, for good; its head at that moment is recorded (the
 * changes the promoted copy lacks: node_status().async). Idempotent.
 * The host must keep a fenced node fenced across a restart (serve: persist
 * it, call node_fence again after node_start).
 */
int node_fence(struct node *n);
/*
 * Offline local: the sync job's online switch (the operator's, or the
 * drill's `offline` / `online`). Offline, the job pushes nothing (a push in
 * flight still gets its answer) and clients keep writing locally; online
 * again, the job runs at once. The switch survives node_crashed; a host
 * that creates a fresh node after a process death sets it again after
 * node_start. Allowed while the node is down. -EINVAL on another role.
 */
int node_set_online(struct node *n, bool online);
/*
 * Offline local: run the sync job now (serve's POST /sync/run), online or
 * not. *ask is this ask's number: the run it asked for has settled — what
 * it pushed, full pushes chained, was answered or timed out; offline, it
 * pushed nothing — once node_status's offline.settled reaches *ask. With a
 * push in flight the run follows its answer (one push at a time), so a
 * settled ask has pushed every row queued before it, unless a push failed
 * (last_push_ok, last_error say). node_crashed settles every ask (nobody
 * waits on a dead process). -EHOSTDOWN while down; -EINVAL on another role.
 */
int node_sync_now(struct node *n, uint64_t *ask);

/* ---- Requests: where a client request is served ------------------------ */

/*
 * A node's session rule (read-your-writes and monotonic reads across
 * replicas): a client remembers the highest position (the writer's outbox
 * sequence: the primary's or the leader's) that any reply it got reflected;
 * a node whose data is behind that position must not answer its read.
 */
struct node_session {
    int64_t position;
};

/* A reply reflecting `position` reached the client. Pure. */
void node_session_saw(struct node_session *s, int64_t position);

/* What routing needs of a node: a small value, copied under the host's lock. */
struct node_view {
    char name[NODE_NAME_MAX];
    enum node_role role;
    bool up;
    bool fenced;                 /* refuses every request (an old primary) */
    bool writable;               /* client writes are served here */
    char writer[NODE_NAME_MAX];  /* where writes go when not writable here ("" : nowhere) */
    int64_t position;            /* the writer's sequence this node's data reflects */
};

/* A copy of what node_route needs (serialized with the node's events). */
void node_view(const struct node *n, struct node_view *out);

struct node_request {
    bool is_write;
    struct node_session session; /* the client's, as it sent it (0: none) */
};

enum node_route_kind {
    NODE_ROUTE_HERE,     /* serve it on this node's shop */
    NODE_ROUTE_FORWARD,  /* send it to `to`, relay the answer (a write at a replica) */
    NODE_ROUTE_REDIRECT, /* tell the client to ask `to` (an async secondary is not the writer) */
    NODE_ROUTE_WAIT,     /* hold it until node_view().position >= wait_for, then route again */
    NODE_ROUTE_REFUSE,   /* answer an error now (fenced, down, no writer) */
};

struct node_route {
    enum node_route_kind kind;
    char to[NODE_NAME_MAX];
    int64_t wait_for;
    const char *why;             /* a static string, for the reply and the trace */
};

/*
 * The decision for one request at node view v. Pure: safe on reader threads.
 *   fenced or down                   -> REFUSE
 *   a write where v is writable      -> HERE
 *   a write elsewhere                -> FORWARD to v->writer (cluster replica),
 *                                       REDIRECT (async secondary), REFUSE (no writer)
 *   a read behind the session        -> WAIT for the session's position
 *   any other read                   -> HERE
 * The deferred reply of a forwarded write: the writer's answer carries its
 * position p; the relaying replica routes the reply with a session of p,
 * so it answers once it holds the write itself (WAIT, then HERE).
 */
void node_route(const struct node_view *v, const struct node_request *req,
                struct node_route *out);
const char *node_route_kind_name(enum node_route_kind kind);

/* ---- The cluster's client side and a replica's cache --------------------- */

/*
 * A client node (NODE_CLIENT) picks the replica for each request: round
 * robin over the healthy ones (the registry's last good answer, minus those
 * resting after a failure; when every known one rests, the known ones; when
 * none is known, all). The request carries pick.session; node_client_done
 * tells the client how it ended. A write is sent to the picked replica too:
 * it forwards it (node_route FORWARD).
 */
struct node_pick {
    char replica[NODE_NAME_MAX];
    int index;                   /* in node_config.peers */
    uint32_t healthy_mask;       /* the set it chose from (bit i: peers[i]) */
    struct node_session session; /* send it with the request */
};

/* -EINVAL on a node that is not a client. */
int node_client_pick(struct node *n, struct node_pick *out);
/*
 * The request sent to `replica` ended: answered (an answer of any outcome
 * came back; position: the position it reflected, the leader's sequence of a
 * write or of the copy or cache entry a read saw, -1: none) or not (it timed
 * out or the replica refused: it rests for NODE_CLUSTER_SKIP_US).
 */
void node_client_done(struct node *n, const char *replica, bool answered, int64_t position);

/*
 * A replica's read cache (node_config.cache): answers keyed by the host's
 * query text, each with the position it reflects and what it depends on —
 * rows of a table whose column holds a value (column NULL: any row of the
 * table). cache=on drops an entry when an applied change touches one of
 * them (the platform decodes its own change records) and moves the others
 * to the replica's new position; cache=naive never drops one (only the ttl
 * and the size bound, oldest first). Call it serialized with the node's
 * events, like node_view.
 */
struct node_cache_dep {
    const char *table;           /* "orders", "products", ... */
    const char *column;          /* "user_id", "id", ...; NULL: any row */
    int64_t value;
};

struct node_cache_hit {
    const void *answer;          /* the bytes put; valid until the next call on the node */
    size_t len;
    int64_t position;            /* the leader's sequence the answer reflects */
    int64_t age_us;
};

/*
 * A live entry for key: 0 and *out, or -ENOENT (none, expired, or under
 * cache=on older than the session), -ENOTSUP (no cache here).
 */
int node_cache_get(struct node *n, const char *key, const struct node_session *session,
                   struct node_cache_hit *out);
/*
 * Stores the answer to key as read at `position` (node_view().position when
 * the read ran). -ESTALE when the replica has moved past position since (not
 * cached: changes in between were not checked against it), -E2BIG past
 * NODE_CACHE_ANSWER_BYTES_MAX, -EINVAL for a dependency on an unknown table
 * or column, -ENOTSUP with no cache, -ENOMEM.
 */
int node_cache_put(struct node *n, const char *key, const struct node_cache_dep *deps,
                   size_t dep_count, const void *answer, size_t len, int64_t position);

/* ---- Status (checkers, status pages) --------------------------------- */

enum node_async_state {
    NODE_ASYNC_IDLE,      /* the secondary confirmed everything */
    NODE_ASYNC_STREAMING, /* what it lacks is in flight */
    NODE_ASYNC_RETRYING,  /* went back to the last ack after a timeout or a gap */
    NODE_ASYNC_STUCK,     /* cannot be fed from the outbox (see stuck_why) */
    NODE_ASYNC_FENCED,    /* an old primary after a failover */
    NODE_ASYNC_APPLYING,  /* a secondary, applying */
    NODE_ASYNC_PROMOTED,  /* a secondary promoted by a failover */
};

const char *node_async_state_name(enum node_async_state st);

/* RPO accounting of a failover, on the promoted secondary. */
struct node_failover {
    bool done;
    int64_t at_us;           /* wall clock (env->now_us) of the promotion */
    int64_t position;        /* the last change of the old primary the promoted copy holds */
    int64_t position_at_us;  /* when that change committed on the old primary (wall) */
    int64_t window_us;       /* at_us - position_at_us: the lag window the failover lost */
};

struct node_async_status {
    enum node_async_state state;
    bool outbox_off;
    uint32_t batch_changes;
    /* the primary (invariant: pruned_through <= acked <= sent <= head_seq) */
    int64_t head_seq, head_at_us;  /* the outbox's last change (as last read) */
    int64_t acked;                 /* highest position the secondary confirmed */
    int64_t sent;                  /* highest change shipped since the last go-back */
    int64_t pruned_through;        /* the outbox holds nothing at or below this */
    int64_t rto_us;
    int64_t last_commit_us;        /* wall time of the last node_on_commit */
    int64_t fenced_head_seq;       /* head when fenced: the old primary's last change */
    char stuck_why[SHOP_ERRMSG_MAX];
    uint64_t batches_sent, timeouts, gap_resends, acks, stale_acks, snapshots_sent;
    /* the secondary (position never moves back; moved_back says when it did) */
    int64_t position, position_at_us; /* applied, and when that change committed (wall) */
    int64_t position_max;
    bool moved_back;
    int64_t moved_back_from, moved_back_to, moved_back_at_us;
    int64_t snapshot_as_of_us;     /* outbox=off: the copy it holds was taken then (wall) */
    int64_t last_lag_us;           /* of the last batch applied: now - its newest commit */
    uint64_t batches_applied, changes_applied, duplicates, gaps, snapshots_applied,
        apply_errors;
    struct node_failover failover;
};

/* Offline-first sync: a local's job and queue, or central's side. */
struct node_offline_status {
    /* a local's sync job */
    bool online;                   /* the job's switch (node_set_online) */
    bool pushing;                  /* a push waits for its answer (never more than one) */
    bool last_push_ok;             /* the last push answered or timed out was accepted */
    int64_t interval_us, reply_timeout_us;
    int retries_budget;
    uint64_t runs;                 /* times the job looked (online or not) */
    uint64_t asks, settled;        /* node_sync_now's asks; the highest one settled */
    uint64_t pushes, accepted, failed_pushes, timeouts, late_replies;
    uint64_t rows_pushed, rows_synced, rows_retried, rows_failed;
    int64_t last_push_us, last_ok_us;   /* wall; 0: never */
    char last_error[SHOP_ERRMSG_MAX];   /* why the last push failed; "" once one is accepted */
    /* a local's queue by table and state, read from its shop by node_status */
    bool queue_read;               /* false: the node is down or its queue cannot be read */
    struct shop_sync_status queue;
    /* central */
    uint64_t pushes_applied, pushes_refused, rows_applied, rows_unchanged, strays;
    int64_t last_apply_us;         /* wall; 0: never */
};

/* The leader's view of one replica. */
struct node_cluster_link {
    char name[NODE_NAME_MAX];
    bool known;                  /* false after the leader's start until the replica's hello */
    bool stuck;                  /* needs changes the outbox pruned */
    int64_t acked, sent;         /* acked <= sent <= head; sent - acked within the window */
    int64_t rto_us;
    uint64_t batches_sent, timeouts, gap_resends, probes, acks, stale_acks;
};

struct node_cache_status {
    enum node_cache_mode mode;
    int64_t ttl_us;
    size_t entries, max_entries;
    uint64_t hits, misses, expired, invalidated, evicted, refused_puts;
};

struct node_cluster_status {
    /* the leader (invariant per link: pruned_through <= acked <= sent <= head_seq) */
    bool before_commit;
    int64_t head_seq, head_at_us, pruned_through;
    size_t replica_count;
    struct node_cluster_link links[NODE_CLUSTER_REPLICAS_MAX];
    uint64_t hook_sends;         /* before-commit: changes sent from the hook */
    uint64_t phantoms;           /* ...whose commit then failed */
    int64_t phantom_seq, phantom_at_us; /* the first of them (wall) */
    uint64_t replica_ahead;      /* acks beyond the leader's head (a phantom applied there) */
    /* a replica (position never moves back: applied_twice says when a change was
     * applied again, the no-echo witness) */
    int64_t position, position_at_us, position_max;
    uint64_t batches_applied, changes_applied, duplicates, gaps, apply_errors;
    bool applied_twice;
    int64_t twice_seq, twice_at_us, twice_after;  /* first change applied again, when (wall),
                                                   * and the position it had reached before */
    int last_apply_err;
    char last_apply_error[SHOP_ERRMSG_MAX];
    int64_t last_lag_us;         /* of the last batch applied: now - its newest commit */
    uint64_t heartbeats_sent;
    struct node_cache_status cache;
    /* the registry */
    bool warming;                /* up for less than a window: does not answer */
    uint32_t listed_mask;        /* bit i: peers[i] heard within the window */
    uint64_t heartbeats, queries, answers, unanswered;
    /* a client */
    uint32_t known_mask;         /* the registry's last good answer (bit i: peers[i]) */
    bool known_from_registry;    /* false: the configured list */
    bool stale;                  /* the registry missed an answer: on the last good one */
    int64_t known_at_us;
    int64_t session_position;
    uint64_t picks, skips, registry_answers;
};

struct node_status {
    char name[NODE_NAME_MAX];
    enum node_role role;
    bool up;
    bool fenced;
    uint64_t messages_in, messages_out, malformed, timers_fired, restarts;
    struct node_async_status async;  /* NODE_ASYNC_PRIMARY, NODE_ASYNC_SECONDARY */
    struct node_offline_status offline; /* NODE_OFFLINE_LOCAL, NODE_OFFLINE_CENTRAL */
    struct node_cluster_status cluster; /* cluster leader and replica, registry, client */
};

int node_status(const struct node *n, struct node_status *out);

/*
 * For a status page's lag on a writer (async primary, cluster leader): the
 * commit time (wall) of the change after `after` in shop s's outbox (any
 * handle, a read-only one included), *at_us 0 when the outbox holds none.
 * 0, or the error of shop_outbox_read (-ERANGE: pruned past it). The batch
 * layout stays the platform's: a host never decodes one.
 */
int node_outbox_change_at(shop *s, int64_t after, int64_t *at_us);

/* ---- Messages (the platform's codec) ---------------------------------- */

/*
 * "batch 12..15 (4 changes)", "ack 15", "malformed": what a message is, in
 * words, for a host's trace of a dropped or delayed message. The host never
 * decodes a message otherwise.
 */
void node_msg_describe(const void *msg, size_t len, char *buf, size_t buf_len);

#endif /* FAULTDRILL_PLATFORM_NODE_H */
