/*
 * internal.h — what serve/'s files share and nobody else may use: the
 * server, its host environment, the group-commit writer, the per-thread
 * worker state, the request being answered, and the JSON and HTTP helpers.
 *
 * Threads: civetweb's workers answer requests (each owns a struct worker
 * with its own read-only shop handles and buffers); one writer thread owns
 * the only writable shop; one helper thread runs the second half of the
 * mirror's parallel commit; libfiu's remote-control thread reads its fifo;
 * the main thread waits for SIGTERM/SIGINT.
 */
#ifndef FAULTDRILL_SERVE_INTERNAL_H
#define FAULTDRILL_SERVE_INTERNAL_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "faults/faults.h"
#include "platform/platform.h"
#include "serve/nodes.h"
#include "serve/serve.h"

struct mg_connection;
struct mg_context;
struct mg_request_info;

/* ---- Limits ----------------------------------------------------------- */

#define SERVE_PORT_DEFAULT 3002
#define SERVE_THREADS 512           /* civetweb workers: one per open connection */
#define SERVE_CLIENT_CAP 256        /* connections one client address may hold */
#define SERVE_REQUEST_TIMEOUT_MS 10000 /* a request's headers, and its body, must arrive within */
#define SERVE_KEEP_ALIVE_MS 2000    /* an idle keep-alive connection is closed after */
#define SERVE_BODY_MAX (64u << 10)  /* request body bytes; more is 413 */
#define SERVE_JSON_DEPTH_MAX 16     /* nesting of a request's JSON ([ and {) */
#define SERVE_JSON_TOKENS_MAX 4096  /* containers, commas and colons of one request */
#define SERVE_QUEUE_MAX 1024        /* write jobs waiting for the writer; full is 503 */
#define SERVE_GROUP_MAX 64          /* write jobs committed in one transaction */
#define SERVE_TICK_MS 500           /* idle writer: how often it publishes (the mirror's
                                     * repair is due when the platform says) */
#define SERVE_HEAD_RESERVE 512      /* room for the status line and headers before a body */
#define SERVE_LIST_MAX 100000       /* products or orders in one reply */
#define SERVE_PATH_MAX 4096
#define SERVE_ARGS_MAX 4            /* path parameters of one route */
#define SERVE_SEGMENTS_MAX 8        /* path segments an API route may have */
#define SERVE_STATIC_MAX (16u << 20) /* bytes of one static file */
#define SERVE_FAULTS_MAX 64         /* points the HTTP panel tracks */
#define SERVE_DETAIL_MAX 512        /* bytes of an error's detail */
#define SERVE_CACHE_KEY_MAX 256     /* bytes of a query string a reply cache keys on */

/* Exit codes (DESIGN.md §5). */
#define SERVE_EXIT_OK 0
#define SERVE_EXIT_USAGE 2
#define SERVE_EXIT_CANNOT_RUN 3

/* ---- The host environment (host.c) ------------------------------------ */

/*
 * One persistent helper thread for the platform's parallel hook: the
 * writer runs fn(a) while the helper runs fn(b), so the mirror's two
 * commits and their fdatasyncs overlap.
 */
struct host {
    pthread_t thread;
    sem_t go, done;
    void (*fn)(void *arg);
    void *arg;
    bool stop;
    bool started;
};

int host_start(struct host *h);
void host_stop(struct host *h);
/* The env: wall-clock microseconds (stored as created_at), a crash hook that
 * kills the process as kill -9 would (a crash point enabled by fiu-ctrl),
 * the helper's parallel hook. */
struct platform_env host_env(struct host *h);
int64_t host_wall_us(void);
int64_t host_mono_us(void);
/* CLOCK_MONOTONIC now + us: the deadline of a pthread_cond_timedwait on a
 * condition variable set to the monotonic clock. */
struct timespec host_deadline_after_us(int64_t us);
/* What the fault VFS does with a fired disk/<node>/slow point: sleep. */
struct faults_host host_faults(void);

/* ---- Output buffers and JSON (json.c) --------------------------------- */

/* A growable byte buffer; after an allocation failure `oom` is set and
 * further writes are dropped (the reply then says 500). */
struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

void buf_release(struct buf *b);
/* Empties b, keeping SERVE_HEAD_RESERVE bytes in front for the headers. */
void buf_reset(struct buf *b);
bool buf_reserve(struct buf *b, size_t more);
void buf_put(struct buf *b, const char *s, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_i64(struct buf *b, int64_t v);
/* The body written since buf_reset. */
const char *buf_body(const struct buf *b);
size_t buf_body_len(const struct buf *b);

void json_str(struct buf *b, const char *s);
void json_money(struct buf *b, int64_t cents); /* 1250 -> 12.5 */
void json_time(struct buf *b, int64_t wall_us); /* "2026-11-21T10:00:00.000Z" */
void json_error(struct buf *b, const char *error, const char *detail);
void json_product(struct buf *b, const struct shop_product *p);
void json_user(struct buf *b, const struct shop_user *u);
void json_order(struct buf *b, const struct shop_order *o);

/*
 * Reading a request's fields (cJSON, case-sensitive keys). Each returns 0
 * when the field was read, 1 when it is absent and optional, -EINVAL with
 * a sentence in detail (SERVE_DETAIL_MAX) otherwise.
 */
int json_get_str(const cJSON *o, const char *key, size_t max, bool required, const char **out,
                 char *detail);
int json_get_int(const cJSON *o, const char *key, int64_t min, int64_t max, bool required,
                 int64_t *out, char *detail);
/* A price: a number with at most 2 decimals, 0 to SHOP_PRICE_MAX cents. */
int json_get_price(const cJSON *o, const char *key, int64_t *cents, char *detail);
bool json_is_utf8(const char *s, size_t n);
/* Depth, count and NUL limits on a request body before it is parsed:
 * 0, or -EINVAL with a sentence in detail. */
int json_check_limits(const char *text, size_t n, char *detail);

/* ---- The writer: group commit (writer.c) ------------------------------ */

enum job_kind {
    JOB_PRODUCT_CREATE,
    JOB_PRODUCT_UPDATE,
    JOB_PRODUCT_DELETE,
    JOB_USER_CREATE,
    JOB_USER_UPDATE,
    JOB_ORDER_CREATE,
    JOB_ORDER_STATUS,
    JOB_CART_ADD,
    JOB_CART_SET,
    JOB_CART_REMOVE,
    JOB_CHECKOUT,
    JOB_CALL, /* writer_call: a function on the writable shop, outside any group */
};

/*
 * One write, owned by the request thread that waits for it: the parsed
 * request in, the result out. Pointers stay valid while it waits.
 */
struct write_job {
    enum job_kind kind;
    int64_t id;                   /* user, product or order the write is about */
    int64_t id2;                  /* cart: the product */
    int64_t quantity;             /* cart add and set */
    struct shop_product product;  /* product create / update */
    const char *name, *email, *new_email;
    const struct shop_order_line *lines;
    size_t line_count;
    enum shop_order_status status;
    struct shop_order *order;     /* receives the order (create, checkout) */
    int (*call)(shop *s, void *arg); /* JOB_CALL */
    void *call_arg;
    int64_t rc;                   /* >= 0 done (the new id where one is made), or -errno */
    int64_t position;             /* done: the position its group committed at (writer_position) */
    char detail[SHOP_ERRMSG_MAX];
    sem_t *done;                  /* posted when rc is final */
    struct write_job *wake[2];    /* writer.c: the jobs of its group it wakes next */
};

/* What /mirror/status shows: published by the writer after every group. */
struct serve_status {
    bool mirrored;
    struct mirror_status mirror; /* lead/behind point into the strings below */
    char lead[FAULTS_NODE_MAX];
    char behind[FAULTS_NODE_MAX];
    int lead_copy;               /* 0 primary, 1 mirror: where readers read */
    uint64_t groups, writes;
};

struct writer {
    shop *shop;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct write_job *queue[SERVE_QUEUE_MAX];
    size_t head, count;
    bool stopping;
    bool started;
    pthread_mutex_t status_lock;
    struct serve_status status;
    /* What readers need on every request, without the lock. */
    _Atomic unsigned read_hint;  /* READ_HINT_* bits */
    _Atomic uint64_t generation; /* bumped whenever what readers see may have changed */
    _Atomic int64_t last_seq;    /* shop_last_seq after the last group */
    /* writer_set_on_commit: the writer thread's own */
    void (*on_commit)(void *ctx, shop *s);
    void *on_commit_ctx;
    /* The position each copy holds (X-Faultdrill-Position): a mirrored shop's copy
     * sequences, else the outbox head, else the groups committed since start. */
    _Atomic int64_t position[2];
    int64_t outbox_base;         /* the outbox head when the writer started */
    int64_t group_position;      /* the writer thread's: where its last group committed */
};

#define READ_HINT_MIRROR_LEADS 1u /* the mirror copy holds every acknowledged write */
#define READ_HINT_FALLBACK 2u     /* both copies hold them: a failed read may try the other */

/* Takes ownership of s (writable) and starts the thread. */
int writer_start(struct writer *w, shop *s);
/*
 * Queues job and waits until the writer has committed its group (or failed
 * it). Returns 0 when job->rc is final; -EAGAIN when the queue is full and
 * -ESHUTDOWN when stopping (the job was not run).
 */
int writer_submit(struct writer *w, struct write_job *job);
/*
 * Runs fn(shop, arg) on the writer's thread, on the only writable handle,
 * between two groups (not inside one), and waits for it: how a topology's
 * background thread writes to the served copy (prune the outbox, mark sync
 * rows, apply a leader's batch). Returns fn's return, or -EAGAIN /
 * -ESHUTDOWN as writer_submit. Readers see what fn wrote: the generation
 * moves on after it.
 */
int writer_call(struct writer *w, int (*fn)(shop *s, void *arg), void *arg);
/*
 * fn(ctx, shop) runs on the writer's thread after every group that
 * committed a write, before anything else touches the shop (a replication
 * node's node_on_commit). Call it on the writer's thread (from a
 * writer_call); NULL removes it.
 */
void writer_set_on_commit(struct writer *w, void (*fn)(void *ctx, shop *s), void *ctx);
/* The outbox sequence of the last change the writer committed (0: none). */
int64_t writer_last_seq(struct writer *w);
/* What copy (0 primary, 1 mirror) holds as of the last group: every write
 * acknowledged so far is at or below it on a copy that holds it. */
int64_t writer_position(struct writer *w, int copy);
/* Runs every queued job, stops the thread, closes the shop. */
void writer_stop(struct writer *w);
void writer_get_status(struct writer *w, struct serve_status *out);
/* READ_HINT_* bits as of the last group. */
unsigned writer_read_hint(struct writer *w);
/*
 * Changes after every group commit and every resync, before any job of the
 * group is woken: a reply computed after reading generation g reflects at
 * least every write acknowledged before g was published (the reply caches).
 */
uint64_t writer_generation(struct writer *w);

/* ---- The server (server.c) -------------------------------------------- */

/*
 * What this process runs (--topology, --role): ONE node, named as a drill
 * names it (DESIGN.md §7: every node its own process). mirror: primary, two
 * files of one process; async: primary, which starts the secondary
 * (db_async.sqlite, its own process, fed over POST /api/node); offline:
 * local, which starts central (db_central.sqlite, its own process); cluster:
 * leader, which starts the registry and replica1..N (each its own process and
 * data directory).
 */
enum serve_role {
    SERVE_SINGLE,
    SERVE_MIRROR,
    SERVE_ASYNC,     /* the primary of async replication */
    SERVE_OFFLINE,   /* the local of offline sync */
    SERVE_CLUSTER,   /* the leader of a cluster */
    SERVE_REPLICA,   /* replicaN, fed by leader */
    SERVE_SECONDARY, /* the async secondary, fed by primary */
    SERVE_CENTRAL,   /* the offline central, fed by locals */
    SERVE_REGISTRY,  /* a cluster's registry, hearing the replicas' heartbeats */
};

#define SERVE_DELAY_MS_DEFAULT 200     /* async: the WAN delay a batch waits */
#define SERVE_INTERVAL_MS_DEFAULT 2000 /* offline: how often the sync job runs */
#define SERVE_RETRIES_DEFAULT 5        /* offline: failed pushes before a row is FAILED */
#define SERVE_REPLICAS_DEFAULT 2       /* cluster: replicas on the next ports */
#define SERVE_REPLICAS_MAX 8

struct serve_options {
    int port;                    /* where civetweb listens (once started: the real port) */
    int port_requested;          /* --port as given: 0 asks for any free port */
    const char *data_dir;
    enum serve_role role;
    enum shop_topology topology; /* of the served shop: SHOP_MIRROR for SERVE_MIRROR */
    const char *node;            /* the served copy's node name: primary, local, leader... */
    int64_t delay_ms;            /* async */
    int64_t latency_us, jitter_us; /* every node message this node sends: latency plus a
                                      seeded draw in [0, jitter] (--latency, --jitter) */
    uint64_t net_seed;           /* --net-seed: the jitter's generator */
    bool stake;                  /* --stake: host the stake ledger (stake.c) */
    const char *stake_config;    /* --stake-config SPEC for a new ledger; NULL: defaults */
    bool outbox_off;             /* async: the naive whole-database copy (--outbox off) */
    int64_t interval_ms;         /* offline */
    int retries;                 /* offline */
    bool queue_separate;         /* offline: the naive queue in a second transaction */
    int replicas;                /* cluster */
    enum node_cache_mode cache;  /* cluster: a replica's read cache (--cache) */
    int64_t cache_ttl_ms;        /* ...and its entries' age at most (--ttl; 0: the core's) */
    bool propagate_before;       /* cluster: the naive --propagate before-commit */
    const char *secret_file;     /* --secret-file; NULL: DATA/node.secret, made at first start */
    const char *peers[WIRE_PEERS_MAX]; /* --peer NAME=URL */
    int peer_count;
    enum mirror_policy policy;
    enum mirror_ack ack;         /* --ack: both (default) or early (the naive mode) */
    bool sync_normal;            /* --sync normal */
    bool allow_faults;
    const char *web_dir;
    bool demo;
    bool bench_trivial;
    int threads; /* civetweb workers */
    int client_cap;          /* connections per client address; more are 503 */
    int request_timeout_ms;  /* headers, and then the body, must arrive within */
    int keep_alive_ms;       /* idle keep-alive connections are closed after */
};

struct fault_panel {
    pthread_mutex_t lock;
    size_t count;
    struct {
        char name[FAULTS_NAME_MAX];
        int64_t value; /* errno, or delay in microseconds for slow */
        bool enabled;
    } points[SERVE_FAULTS_MAX];
};

struct async_host;  /* async.c */
struct offline_host; /* offline.c */
struct cluster;     /* cluster.c */
struct http_guard;  /* http.c: connections per client, late bodies */

struct server {
    struct serve_options opt;
    struct host host;
    struct platform_env env;
    struct shop_config cfg;
    char primary_path[SERVE_PATH_MAX];
    char mirror_path[SERVE_PATH_MAX];
    char secret_path[SERVE_PATH_MAX]; /* the cluster secret children are given */
    struct wire *net;              /* node messages; NULL for single and mirror */
    struct async_host *async;
    _Atomic bool refusing; /* stopping: client requests get 503, node messages still go */
    struct offline_host *offline;
    struct cluster *cluster;
    struct stake_host *stake;      /* --stake: the ledger (stake.c); NULL without */
    char web_root[SERVE_PATH_MAX]; /* realpath of --web; "" when missing */
    struct writer writer;
    struct mg_context *mg;
    int64_t started_mono_us;
    struct fault_panel panel;
    struct http_guard *guard;
};

/* ---- The stake ledger (stake.c) ----------------------------------------- */

#define STAKE_DEFAULT_TOLERANCE 50       /* a drill's defaults (sim/drill.c) */
#define STAKE_DEFAULT_SLASH_PPM 200000
#define STAKE_DEFAULT_MIN_STAKE 100000

struct stake_config;
/* --stake-config: tolerance=N,slash=PPM|P%,min-stake=N,predictors=N (each optional). */
int stake_parse_config(const char *spec, struct stake_config *cfg, char *why, size_t len);
/* Opens DATA/ledger.sqlite on node ledger's fault VFS (said on stderr when it cannot). */
int stake_host_start(struct server *srv);
void stake_host_stop(struct server *srv);

/* "mirror", "async", ...: the topology this node belongs to. */
const char *serve_role_name(enum serve_role role);

/* ---- Worker threads and requests (worker.c, http.c) -------------------- */

/* One per civetweb worker thread (its thread pointer). */
struct worker {
    struct server *srv;
    shop *reader[2]; /* read-only handles on each copy, opened on first use */
    sem_t done;      /* what the writer posts when this thread's job is done */
    struct buf out;  /* the reply being built */
    struct buf body; /* the request body */
    struct shop_product *products;
    size_t products_cap;
    int64_t *ids;
    size_t ids_cap;
    /* The last GET /products reply of this thread, valid while nothing was
     * committed since (writer_generation): the catalog is read far more
     * often than it changes, and a hit costs no SQL and no JSON. */
    struct {
        bool valid;
        uint64_t generation;
        char key[SERVE_CACHE_KEY_MAX];
        struct buf reply;
    } products_cache;
    /* The connection being served (http.c's guard). */
    int client;                      /* its client's slot in the guard; -1 none yet */
    bool client_refused;             /* that client holds too many connections */
    bool error_sent;                 /* civetweb's http_error answered it */
    _Atomic int64_t read_deadline_us; /* a body being read must be in by then; 0 none */
    _Atomic bool read_cut;           /* the guard cut its read side */
    char peer[48];                   /* the client's address and port, for the guard */
    int peer_port;
};

struct request {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    struct worker *w;
    struct server *srv;
    const char *args[SERVE_ARGS_MAX]; /* path parameters, URL-decoded */
    cJSON *json;                      /* the parsed body, if read */
    bool closing;                     /* the connection closes after this reply */
    bool head_only;                   /* HEAD: the reply's headers without its body */
    bool body_read;                   /* http.c read (or refused) the body */
    int status;                       /* the status replied, for civetweb's log */
    /* X-Faultdrill-Position: a write's commit position, else the position of the
     * copy a read was served from, taken before reading it */
    bool has_position, wrote;
    bool position_fixed; /* the node's routing set position (a replica's read) */
    int64_t session;     /* X-Faultdrill-Session, as the node's routing read it */
    int64_t position;
    char detail[SERVE_DETAIL_MAX];
};

void *worker_create(struct server *srv);
void worker_free(void *w);
/*
 * Runs fn on a read-only handle on the copy that holds every acknowledged
 * write (the writer's last published lead); when that copy cannot read and
 * the copies are in sync, on the other. On failure rq->detail says why.
 */
int worker_read(struct request *rq, int (*fn)(shop *s, void *arg), void *arg);

/* Reads the body (413 past SERVE_BODY_MAX, chunked too) and parses it as a
 * JSON object into rq->json. On failure the error reply is sent: returns <0. */
int http_read_json(struct request *rq);
/* Sends rq->w->out's body as JSON with this status. */
void http_reply(struct request *rq, int status);
void http_reply_bytes(struct request *rq, struct buf *b, int status, const char *content_type,
                      const char *extra_headers);
void http_reply_error(struct request *rq, int status, const char *error, const char *detail);
/* The status and error reply of a platform error (negative errno). */
void http_reply_platform(struct request *rq, int rc, const char *detail);
int http_status_of(int rc);
/* A path id: 1..2^53 in decimal digits; -EINVAL (and the 400 reply) otherwise. */
int http_arg_id(struct request *rq, int i, const char *what, int64_t *out);
/* Submits a write job and, on a queue problem, replies 503 (returns < 0). */
int http_submit(struct request *rq, struct write_job *job);
/* 413 (the body is over SERVE_BODY_MAX), closing the connection. */
void http_reply_too_large(struct request *rq);
/* The connection closes after this request's reply. */
void http_close_after_reply(struct request *rq);
/* Whether host[0..n) ("127.0.0.1:3002", "localhost:3002") names this server,
 * and whether an Origin header is this server's own ("http://" + a host). */
bool http_host_is_own(const struct request *rq, const char *host, size_t n);
bool http_origin_is_own(const struct request *rq, const char *origin);

/*
 * The guard (http.c): a thread that cuts bodies arriving slower than
 * --request-timeout, and the count of each client address's connections
 * (--client-cap). Started before civetweb, stopped after it.
 */
int http_guard_start(struct server *srv);
void http_guard_stop(struct server *srv);
int http_guard_add(struct server *srv, struct worker *w);
void http_guard_remove(struct server *srv, struct worker *w);
/* Before each request: counts a new connection's client (until the
 * connection closes) and answers 503 (false) when it holds more than its share. */
bool http_conn_begin(struct request *rq);
/* civetweb's callbacks: http_error, and connection_close (where a request
 * civetweb parsed but did not route, `OPTIONS *` or an absolute URI, is
 * answered, and the client's count goes down). */
int http_on_error(struct mg_connection *conn, int status, const char *msg);
void http_on_close(const struct mg_connection *conn);

/* ---- Routes ------------------------------------------------------------ */

typedef void (*route_fn)(struct request *rq);

/* The begin_request callback: every request comes through here. */
int routes_dispatch(struct mg_connection *conn);
/* Judges and answers one request (routes.c's header comment says how). */
void routes_handle(struct request *rq);
/* GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH: any other method is 501. */
bool routes_method_known(const char *method);

void products_list(struct request *rq);
void products_get(struct request *rq);
void products_create(struct request *rq);
void products_update(struct request *rq);
void products_delete(struct request *rq);
void users_create(struct request *rq);
void users_update(struct request *rq);
void users_get(struct request *rq);
void orders_create(struct request *rq);
void orders_list(struct request *rq);
void orders_set_status(struct request *rq);
void cart_set(struct request *rq);
void cart_get(struct request *rq);
void cart_remove(struct request *rq);
void cart_view_add(struct request *rq);
void cart_view_get(struct request *rq);
void cart_view_remove(struct request *rq);
void cart_checkout(struct request *rq);
void status_mirror(struct request *rq);
void status_heartbeat(struct request *rq);
void status_not_configured(struct request *rq);
void status_replication(struct request *rq); /* async, or cluster's leader */
void status_sync(struct request *rq);        /* offline */
void stake_register_route(struct request *rq); /* --stake */
void stake_submit_route(struct request *rq);
void stake_close_route(struct request *rq);
void stake_round_route(struct request *rq);
void stake_status_route(struct request *rq);

/* ---- Topologies that run beside the writer ------------------------------
 *
 * Each starts after the writer and civetweb (the port is known) and stops
 * after civetweb stopped accepting and before the writer closes the shop.
 * start returns 0 or -errno after printing one line on stderr.
 */

/* async.c: the core's async primary or secondary, hosted (node_host.c). */
int async_start(struct server *srv);
/* Stopping, before civetweb stops: the primary ships what is left, bounded. */
void async_drain(struct server *srv);
void async_stop(struct server *srv);
void async_status(struct request *rq);   /* GET /replication/status */
void async_failover(struct request *rq); /* POST /replication/failover (secondary) */
void async_fence(struct request *rq);    /* POST /replication/fence (primary) */
/* A client request at an async node, routed by the core: true when replied
 * here (a redirect to the writer, a fenced primary's refusal). */
bool async_route(struct request *rq);
/* `faultdrill serve failover|fence URL` (argv[0] is the verb): exit code. */
int async_admin_main(int argc, char **argv);

/* offline.c: the core's offline local or central, hosted (node_host.c). */
int offline_start(struct server *srv);
void offline_stop(struct server *srv);
void offline_status(struct request *rq); /* GET /sync/status, JSON or HTML */
void offline_run_now(struct request *rq); /* POST /sync/run: a run now, and its answer */
void offline_switch_off(struct request *rq); /* POST /sync/offline: the job stops pushing */
void offline_switch_on(struct request *rq);  /* POST /sync/online: ...and pushes again */
/* A client request at an offline node, routed by the core (central takes
 * no writes): true when replied here. */
bool offline_route(struct request *rq);

/* cluster.c: the core's cluster nodes, hosted (node_host.c): the leader
 * (which starts the registry and the replicas, and hosts the client that
 * answers GET /getServer), a replica, the registry. */
int cluster_start(struct server *srv);
void cluster_stop(struct server *srv);
/* A stopping leader (clients refused, civetweb still taking node messages):
 * waits, bounded, until every replica it knows acknowledged its head. */
void cluster_drain(struct server *srv);
void cluster_status(struct request *rq);     /* GET /replication/status on the leader */
void cluster_get_server(struct request *rq); /* GET /getServer */
/* A client request at a cluster node, routed by the core (a replica
 * forwards writes, holds reads behind the session): true when replied. */
bool cluster_route(struct request *rq);
/* After a request cluster_route let through was served (a replica's cache). */
void cluster_served(struct request *rq);
/* The leader shop's before_commit hook under --propagate before-commit (ctx:
 * the server's host, as host_env gives it): the core's leader propagates
 * the change from inside its transaction. */
void cluster_before_commit(void *ctx, const char *node, int64_t seq, const void *change,
                           size_t len);
void panel_list(struct request *rq);
void panel_set(struct request *rq);
/* GET of a file under the web root; 404 for anything outside it. */
void static_serve(struct request *rq, const char *path);


/* ---- Fault control (panel.c) and the demo catalog (demo.c) ------------ */

/* Tracks disk/<node>/read|write|fsync|full|slow for each node. */
void panel_init(struct fault_panel *p, const char *const *nodes, size_t count);
/* Tracks one more point (a net/... point of a topology); -E2BIG when full. */
int panel_add(struct fault_panel *p, const char *name);
/* libfiu's remote control on ${TMPDIR:-/tmp}/fiu-ctrl-PID, as fiu-ctrl
 * expects; what it enables or disables shows in the panel's list. */
int panel_start_fifo(struct fault_panel *p, char *path, size_t cap);
/* Removes the fifos (the thread reading them dies with the process). */
void panel_stop_fifo(void);
/* Disables every point the panel enabled. */
void panel_release(struct fault_panel *p);

/* Adds the demo catalog when the shop has no product; returns how many. */
int demo_seed(shop *s);

#endif /* FAULTDRILL_SERVE_INTERNAL_H */
