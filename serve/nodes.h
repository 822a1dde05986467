/*
 * nodes.h — what serve/'s node files share: every node is its own process
 * (DESIGN.md §7) and nodes talk through authenticated node messages.
 *
 *   node_auth.c   the cluster secret (a file, mode 0600) and the HMAC-SHA256
 *                 (Nettle) of a message and of its reply
 *   node_net.c    the transport: POST /api/node through libcurl, the link
 *                 fault points net/<from>/<to>/... consulted in the sender,
 *                 the receiving side (MAC, freshness, replay), and plain
 *                 forwarding of a client's request to another node
 *   node_proc.c   child processes: a node started by this one, supervised
 *                 by a thread (free port from the kernel, log file,
 *                 restarted after a death, stopped with us)
 *   node_host.c   a node of the platform's replication core, hosted: its
 *                 events on the writer's thread, its timers, its messages,
 *                 and client requests routed by the core's rule
 *
 * The transport decides nothing about a protocol: it carries bytes from one
 * node to another, or loses, delays, duplicates or reorders them when a
 * link fault point says so.
 */
#ifndef FAULTDRILL_SERVE_NODES_H
#define FAULTDRILL_SERVE_NODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "faults/faults.h"
#include "platform/platform.h"

struct buf;
struct request;
struct server;

#define AUTH_SECRET_BYTES    32
#define AUTH_SECRET_FILE     "node.secret" /* in the first node's data directory */
#define AUTH_MAC_HEX         64
#define WIRE_PEERS_MAX       16                /* links of one node */
#define WIRE_URL_MAX         256               /* "http://host:port" of a peer */
#define WIRE_MSG_BYTES_MAX   (8u << 20)        /* one node message's body */
#define WIRE_REPLY_BYTES_MAX (2u << 20)        /* one reply's body */
#define WIRE_FRESH_US        (120LL * 1000000) /* a message's counter within this of our clock */
#define WIRE_DELAY_US_MAX    10000000LL        /* a net/.../delay holds a message at most this */
#define WIRE_CONNECT_MS      1000              /* connecting to a peer */
#define WIRE_SEND_MS         5000              /* a one-way message's POST, at most */
#define WIRE_QUEUE_MAX       1024              /* one-way messages waiting on one link */
#define WIRE_QUEUE_BYTES_MAX (64u << 20)       /* ...and their bytes */
#define WIRE_HOLD_US_MAX     1000000 /* a reordered message waits for the next this long */

#define WIRE_FROM_HEADER     "X-Faultdrill-From"
#define WIRE_TO_HEADER       "X-Faultdrill-To"
#define WIRE_COUNTER_HEADER  "X-Faultdrill-Counter"
#define WIRE_MAC_HEADER      "X-Faultdrill-Mac"
#define WIRE_REPLY_TO_HEADER "X-Faultdrill-Reply-To" /* where the sender listens */

/* ---- The secret and the MAC (node_auth.c) ------------------------------ */

struct auth_key {
    uint8_t bytes[AUTH_SECRET_BYTES];
};

/*
 * Reads the cluster secret from path: 64 hex digits (and a newline), in a
 * regular file that only its owner may read or write (like ssh's keys: a
 * secret others can read is refused). create: a missing file is made, mode
 * 0600, from the kernel's random generator. 0, or -errno with why.
 */
int auth_secret_load(const char *path, bool create, struct auth_key *key, char *why, size_t cap);

/* HMAC-SHA256 under key, lowercase hex, of a message: from, to, its counter
 * and its body; and of the reply to it, which also covers the status. */
void auth_mac_message(const struct auth_key *key, const char *from, const char *to,
                      uint64_t counter, const char *reply_to, const void *body, size_t len,
                      char hex[AUTH_MAC_HEX + 1]);
void auth_mac_reply(const struct auth_key *key, const char *from, const char *to, uint64_t counter,
                    int status, const void *body, size_t len, char hex[AUTH_MAC_HEX + 1]);
/* Whether two MACs are equal, in time that does not depend on where they differ. */
bool auth_mac_equal(const char *a, const char *b);

/* ---- The transport (node_net.c) ---------------------------------------- */

struct wire;

/*
 * What this node does with a message it received and authenticated: writes
 * the reply's body into reply and returns its HTTP status (200, or an error
 * status with a JSON error body).
 */
typedef int (*wire_handler_fn)(void *ctx, const char *from, const void *body, size_t len,
                               struct buf *reply);

/* The libcurl library, once per process, before any thread uses it. */
int wire_global_init(void);
void wire_global_cleanup(void);

int wire_create(const char *self, const struct auth_key *key, struct wire **out);
/* Every message this node sends waits latency_us plus a draw in [0, jitter_us]
 * from a generator seeded with seed (serve --latency, --jitter, --net-seed). */
void wire_set_latency(struct wire *n, int64_t latency_us, int64_t jitter_us, uint64_t seed);
void wire_free(struct wire *n);
const char *wire_self(const struct wire *n);
/* Stopping: delays (net/.../delay) end now and no new one starts, so what
 * is left goes out at once. */
void wire_hurry(struct wire *n);
/* The node that receives this node's messages and how it handles them. */
void wire_set_handler(struct wire *n, wire_handler_fn fn, void *ctx);
/*
 * Adds the link to peer `name`, or changes where it listens (a restarted
 * child's new port); url NULL or "" while it is not known (down). The link's
 * fault points are net/<self>/<name>/drop|delay|duplicate|reorder. -E2BIG
 * past WIRE_PEERS_MAX, -EINVAL for a bad name or URL.
 */
int wire_set_peer(struct wire *n, const char *name, const char *url);
/*
 * Where this node listens, as its messages tell their receivers (X-Faultdrill-
 * Reply-To, under the MAC): a receiver that was not told where the sender
 * is (--peer, a child it started) learns it from an authenticated message.
 */
void wire_set_self_url(struct wire *n, const char *url);
/* The peer's URL into out (""; false when unknown). */
bool wire_peer_url(struct wire *n, const char *name, char out[WIRE_URL_MAX]);

/* What happened to a call besides its result. */
struct wire_call_info {
    int status;       /* the peer's HTTP status; 0 when no reply came */
    bool lost;        /* a link fault point lost the message or its reply */
    bool held;        /* net/.../reorder: it goes after the next message on the link */
    bool duplicated;  /* net/.../duplicate: it was delivered twice */
    int64_t delay_us; /* net/.../delay held it this long */
    char detail[256]; /* why it failed, for a status */
};

/*
 * Sends body to node `to` as POST /api/node and waits (at most timeout_ms)
 * for the reply, whose body lands in reply. The link's fault points act
 * first, per message, as the simulator's transport does: drop loses it (no
 * reply: -ETIMEDOUT, info->lost); delay holds it first; duplicate delivers it
 * twice; reorder holds it back until the next message on the link has gone
 * (-ETIMEDOUT for now, info->held). A reply whose MAC does not verify is
 * -EBADMSG; a peer that refused ours (401: another secret) -EACCES; no peer
 * known -ENOTCONN; a peer that does not answer -ECONNREFUSED or -ETIMEDOUT.
 * 0 when a reply came (info->status says which). One call at a time per
 * link: the link keeps its messages in order (the receiver refuses a
 * counter that goes back).
 */
int wire_call(struct wire *n, const char *to, const void *body, size_t len, int timeout_ms,
              struct buf *reply, struct wire_call_info *info);

/*
 * The environment's send: queues a copy of msg for node `to` and returns at
 * once (it never blocks on the network). The link's thread POSTs it when
 * due: after delay_us (a WAN the topology models, serve's --delay) plus
 * what net/<self>/<to>/delay adds; net/.../drop loses it here, duplicate
 * queues it twice, reorder holds it back until the next message on the link
 * has gone (at most WIRE_HOLD_US_MAX). Nobody waits for the reply: a message
 * the peer does not take (down, another secret, a full queue) is lost, and
 * counted in the link's stats. -ENOTCONN for no such peer, -E2BIG past
 * WIRE_MSG_BYTES_MAX, -ENOBUFS when the link's queue is full.
 */
int wire_send(struct wire *n, const char *to, const void *msg, size_t len, int64_t delay_us);

struct wire_link_stats {
    uint64_t queued, sent, lost, failed, overflow; /* lost: by a fault; failed: not taken */
    size_t pending;
    char last_error[256];
};

/* The one-way traffic to `to` so far; false when there is no such link. */
bool wire_link_stats(struct wire *n, const char *to, struct wire_link_stats *out);

/* POST /api/node: the receiving side (401 unless authenticated). */
void wire_api(struct request *rq);

/* A client's request forwarded to another node, its reply as it came. */
struct wire_forwarded {
    int status;      /* 0: no reply */
    bool maybe_sent; /* a failure after the request may have reached the peer */
    int64_t seq;     /* X-Faultdrill-Seq; 0 when absent */
    char content_type[128];
};

/*
 * Sends method + target (path and query) with body to node `to` as an
 * ordinary HTTP request (a replica's write answered by its leader) and puts
 * the reply's body into reply. 0 when a reply came; -errno otherwise.
 */
int wire_forward(struct wire *n, const char *to, const char *method, const char *target,
                 const char *content_type, const void *body, size_t len, int timeout_ms,
                 struct buf *reply, struct wire_forwarded *out);

/* POSTs json to url (an operator's command line: no node, no secret);
 * 0 with the status and the reply's body, or -errno when no reply came. */
int wire_post_json(const char *url, const char *json, int timeout_ms, struct buf *reply,
                   int *status);

/* Reads a request's raw body into rq->w->body (413 past max, replied). */
int wire_read_body(struct request *rq, size_t max);

/* ---- Child processes (node_proc.c) -------------------------------------- */

struct proc;

#define PROC_ARGS_MAX 16 /* topology arguments of one child */

/*
 * Starts node `name` as `faultdrill serve --role NAME` in data directory dir
 * with its log in dir/serve.log, on a port the kernel picks, sharing this
 * node's secret and knowing this node as a peer; extra holds its topology's
 * arguments (NULL-terminated). A thread supervises it: it reads the port
 * from the child's banner, tells the transport (wire_set_peer), reaps a
 * child that died (said on stderr and in the view) and starts it again
 * after a pause (1 s, doubling to 5 s). Returns at once; proc_settle
 * waits for the first start to be over.
 */
int proc_start(struct server *srv, const char *name, const char *dir, const char *const *extra,
               struct proc **out);
/* Waits until the first start is over, up or not (bounded by the banner's
 * wait), and says on stdout which. */
void proc_settle(struct proc *c);
/* SIGTERM, a bounded wait, then SIGKILL; frees c. */
void proc_stop(struct proc *c);

struct proc_view {
    pid_t pid; /* 0: not running */
    int port;  /* 0: unknown */
    unsigned restarts;
    int64_t up_since_mono_us;
    char last_error[384];
    char log_path[4096];
};

void proc_view(struct proc *c, struct proc_view *out);
/* fn(ctx, name) on the supervising thread each time the child was started
 * again and said its port (not its first start), under the child's lock (fn
 * must not call proc_view); NULL: none, once a call under way has returned. */
void proc_on_restart(struct proc *c, void (*fn)(void *ctx, const char *name), void *ctx);
/*
 * Appends ,"KEY":{"node","url","pid","port","restarts","log","lastError"} to
 * a JSON object being written: where node `name` runs (child NULL: it was
 * named by --peer and runs elsewhere; pid, log are then null).
 */
void proc_json(struct buf *b, const char *key, struct server *srv, const char *name,
               struct proc *child);

/* ---- A node of the replication core, hosted (node_host.c) ----------------- */

struct hosted;

/*
 * Creates the core's node for cfg (cfg->shop: the writer's shop, which only
 * the writer's thread touches) and starts it on the writer's thread; its
 * messages go out through srv->net, wan_us later when addressed to wan_to
 * (NULL: none); POST /api/node delivers to it; the writer tells it of every
 * group it commits. switched_off (an offline local whose operator switched
 * its sync job off before a restart): the switch is set before the node
 * starts, so its first run pushes nothing. 0, or -errno after a line on
 * stderr.
 */
int hosted_start(struct server *srv, const struct node_config *cfg, const char *wan_to,
                 int64_t wan_us, bool switched_off, struct hosted **out);
/*
 * hosted_start, where takes_messages false leaves POST /api/node alone: a
 * process that hosts two nodes (a cluster's leader and its client) hands
 * each message to one of them itself, through hosted_deliver. A node
 * without a shop (cfg->shop NULL: a registry, a client) is not told of the
 * writer's commits.
 */
int hosted_start_node(struct server *srv, const struct node_config *cfg, const char *wan_to,
                      int64_t wan_us, bool switched_off, bool takes_messages,
                      struct hosted **out);
/* A message for this node (ctx: the hosted node), as wire_handler_fn. */
int hosted_deliver(void *ctx, const char *from, const void *body, size_t len, struct buf *reply);
/* After civetweb stopped: no timers, no messages; frees h. */
void hosted_stop(struct hosted *h);
/* node_status, on the writer's thread. */
int hosted_status(struct hosted *h, struct node_status *out);
/* The node's view after its last event (any thread). */
void hosted_view(struct hosted *h, struct node_view *out);
/* fn(node, arg) on the writer's thread, serialized with the node's events;
 * its return value. The trace lines the node writes meanwhile are dropped:
 * fn is the host's doing (POST /sync/run's switch off and on), not news. */
int hosted_with(struct hosted *h, int (*fn)(struct node *n, void *arg), void *arg);
/* Whether a wake the node asked for is due now or being delivered: the node
 * has something to do without any message arriving. */
bool hosted_wake_due(struct hosted *h);
/* Print the node's trace lines to stdout as they come (the live log). */
void hosted_log_traces(struct hosted *h, bool on);
/*
 * A client request routed by the core's rule (node_route) on the node's
 * view, with the client's session (X-Faultdrill-Session: the highest
 * X-Faultdrill-Position it was answered with): true when replied here — a
 * redirect to the writer, a refusal, a write FORWARDed to the writer and
 * answered once this node holds it, a read that WAITed for the session in
 * vain (503 after HOSTED_WAIT_US); false: serve it on this node's shop (a
 * replica's read then says the leader's position its copy held). Status,
 * admin and node routes always pass.
 */
bool hosted_route(struct hosted *h, struct request *rq);
/* node_set_online: the operator's switch of an offline local's sync job. */
int hosted_set_online(struct hosted *h, bool online);
int hosted_promote(struct hosted *h);
int hosted_fence(struct hosted *h);
/* The node's last trace lines, oldest first; returns how many. */
size_t hosted_trace(struct hosted *h, char lines[][NODE_TRACE_MAX], size_t max);

/*
 * Every request passes here first: the topology's routing (async, cluster,
 * offline: the core's rule through hosted_route). True when replied.
 */
bool follow_intercept(struct request *rq);
/* After a request follow_intercept let through was served here (a
 * replica's read cache keeps its answer). */
void follow_served(struct request *rq);

/*
 * A replica's read cache (node_cache_get/put, on the writer's thread): a
 * hit's answer is copied into out's body and its position into *position;
 * -ENOENT (a miss), -ENOTSUP (no cache here). put: -ESTALE when the node
 * moved past position since, as node_cache_put.
 */
/* node_peer_up: the host saw `peer`'s process start again. */
int hosted_peer_up(struct hosted *h, const char *peer);
/* node_on_before_commit, on the writer's thread that is inside the commit. */
void hosted_before_commit(struct hosted *h, int64_t seq, const void *change, size_t len);
int hosted_cache_get(struct hosted *h, const char *key, int64_t session, struct buf *out,
                     int64_t *position);
int hosted_cache_put(struct hosted *h, const char *key, const struct node_cache_dep *deps,
                     size_t dep_count, const void *answer, size_t len, int64_t position);

#endif /* FAULTDRILL_SERVE_NODES_H */
