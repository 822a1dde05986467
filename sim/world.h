/*
 * world.h — the state of one simulated run, shared by the runner
 * (runner.c), the workload (workload.c), the checkers (checkers.c) and the
 * result assembly (result.c). Private to libsim.
 */
#ifndef FAULTDRILL_SIM_WORLD_H
#define FAULTDRILL_SIM_WORLD_H

#include <stdarg.h>

#include "sim/sim.h"

#define WORLD_FAULTS_MAX (DRILL_EVENTS_MAX + 8)
#define WORLD_CLIENT_ORDERS_MAX 64

#define WORLD_PATH_MAX 600

/*
 * A node of the topology. A node that holds a database runs a shop process
 * (primary, secondary, local, central, leader, replica); mirror is a disk
 * the primary's process writes; registry holds no database.
 */
struct world_node {
    char name[FAULTS_NODE_MAX];
    bool up;
    bool holds_db;
    bool seed;              /* gets the drill's catalog and users at the start */
    shop *shop;             /* its open shop, NULL while down or unopenable */
    struct shop_config cfg;
    char paths[2][WORLD_PATH_MAX];
    int64_t busy_until_us;  /* a node serves one request at a time */
    uint64_t crashes;
    uint64_t commits;       /* client writes it committed (or may have): a copy's own position */
    /* a mirrored node (its cfg.topology is SHOP_MIRROR): its mirror's node name
     * (mirror, or mirrorK beside localK), and its pair as the runner follows it */
    char mirror_node[FAULTS_NODE_MAX];
    int mirror_state;       /* last traced enum mirror_state, -1 before any */
    char mirror_lead[FAULTS_NODE_MAX];
    int64_t mirror_wake_us; /* the mirror's self-repair queued for then (-1: none) */
    bool remote_disk_cut;   /* a partition cuts the node off its mirror's disk */
    int64_t remote_disk_healed_us; /* when such a cut last healed (-1: never) */
};

struct world_client {
    int64_t user_id;
    char email[SHOP_EMAIL_MAX + 1];
    const struct drill_workload *workload; /* NULL: a client of explicit `op` lines only */
    struct faults_rng rng;
    uint32_t pending_op;    /* its workload's operation in flight, 0: none */
    uint32_t created_users;
    size_t order_count;     /* its acknowledged, not cancelled orders (for cancel) */
    int64_t orders[WORLD_CLIENT_ORDERS_MAX];
    /* its session (session.c): the acknowledged write and the completed read with the
     * highest positions (op ids), and its acknowledged checkouts in order */
    uint32_t best_write, best_read;
    uint32_t *checkouts;
    size_t checkout_count, checkout_cap;
};

enum world_msg_kind {
    WORLD_REQUEST,
    WORLD_REPLY,
    WORLD_NODE,             /* node to node: a topology module's message */
};

struct world_msg {
    int from, to;           /* endpoints: nodes 0..n-1, then clients */
    enum world_msg_kind kind;
    uint32_t op;
    int type;               /* WORLD_NODE: the module's message type */
    int64_t a, b;           /* WORLD_NODE: the module's arguments */
    void *data;             /* WORLD_NODE: payload owned by the message (freed on delivery) */
    size_t len;
};

/*
 * A topology component beyond single and mirror (async.c, offline.c,
 * cluster.c): the runner calls these at fixed points; NULL members are
 * not needed by that component.
 */
struct world_topo {
    const char *name;
    /* after the nodes are set up (configs in place), before any shop opens */
    int (*configure)(struct sim *s);
    /* after the shops are open and seeded: start timers */
    int (*start)(struct sim *s);
    /* the node a client's request goes to; -1: the client cannot reach any */
    int (*route)(struct sim *s, struct sim_op *op);
    /* a request reached node n: true when the module handled it (forwarded it) */
    bool (*serve)(struct sim *s, int n, const struct world_msg *m);
    /* a request was served on node n (op->err says how) */
    void (*served)(struct sim *s, int n, struct sim_op *op);
    /* the reply of op reached its client */
    void (*replied)(struct sim *s, struct sim_op *op);
    /* a WORLD_NODE message arrived at a node that is up */
    void (*deliver)(struct sim *s, const struct world_msg *m);
    /* SIM_EV_TOPO fired: a, b as pushed */
    void (*tick)(struct sim *s, int a, int64_t b);
    void (*crashed)(struct sim *s, int n);
    void (*restarted)(struct sim *s, int n);
    /* offline, online, failover */
    void (*action)(struct sim *s, const struct drill_event *e);
    /* the position op reflects, just served on node n (session.c): a write's commit
     * sequence, a read's copy's; lineage names the numbering. false: not the module's
     * (the mirror pair's sequence or the node's own commits apply) */
    bool (*position)(struct sim *s, int n, const struct sim_op *op, int *lineage,
                     int64_t *pos);
    /* node n's state for the report's lanes (a replica's lag, a local offline);
     * REPORT_STATE_COUNT: nothing to say (up or down is the runner's). NULL: none */
    enum report_node_state (*node_state)(struct sim *s, int n, int64_t *value, char *label,
                                         size_t len);
    /* the node whose shop must hold op's acknowledged write; NULL: the main node */
    int (*ack_node)(struct sim *s, const struct sim_op *op);
    /* the drain waits while this says so */
    bool (*pending)(struct sim *s, char *why, size_t len);
    void (*release)(struct sim *s);
};

extern const struct world_topo world_async_topo;
extern const struct world_topo world_offline_topo;
extern const struct world_topo world_cluster_topo;

/* A fault point as the run armed it (report and `for=` bookkeeping). */
struct world_fault {
    char name[FAULTS_NAME_MAX];
    char lane[FAULTS_NODE_MAX];
    int event;              /* the drill's fault statement (index into its events) */
    int64_t armed_at_us;
    int64_t healed_at_us;   /* -1 while armed */
    uint64_t reached;       /* calls that consulted the point while armed */
    uint64_t fired;
    bool armed;
};

struct world_partition {
    bool active;
    bool side[2][DRILL_NODES_MAX + DRILL_CLIENTS_MAX + 1];
};

/* What the checkers recorded about one expectation. */
struct world_verdict {
    bool violated;
    int64_t first_us;
    uint64_t checks;
    uint64_t witnesses;     /* the most things one evaluation judged (world_witness) */
    char why[REPORT_TEXT_MAX];
    char lacked[512];       /* a holding checker's note: why it judged nothing, or what it
                             * could not judge */
    size_t story_count;     /* story.c: how the violation came about */
    struct report_story_step story[REPORT_STORY_MAX];
};

/* story.c: what it watches between events for the report's lanes and stories. */
struct world_story {
    bool started;
    int64_t lag_every_us;                   /* a lag mark at most this often per node */
    int64_t fault_fired_us[WORLD_FAULTS_MAX]; /* when each fault first fired, -1: not yet */
    int64_t lag_max;                        /* async, mirror, cluster: changes a copy was behind at
                                               most (-1: none seen), for the agreement */
    struct {
        enum report_node_state state;
        int64_t value;                      /* a lag, in changes */
        int64_t marked_us;
        int64_t behind_since_us;            /* a lag began (-1: none); it shows once it lasts */
    } node[DRILL_NODES_MAX];
};

struct sim {
    const struct drill *drill;
    uint64_t seed;
    int64_t now_us;
    char workdir[512];
    bool files_on_disk; /* the nodes' files are in workdir on the host's disk, not in memory */
    char msg[REPORT_ERR_MAX];

    struct sim_queue queue;
    struct faults_rng net_rng;
    struct faults_rng crash_rng;

    size_t node_count;
    struct world_node nodes[DRILL_NODES_MAX];
    int client_count;
    struct world_client clients[DRILL_CLIENTS_MAX + 1]; /* 1-based */
    struct world_partition partition;

    /* the platform: every node's shop is in nodes[]; main_node runs the one
     * clients write to in single, mirror and async (primary, or the
     * secondary after a failover) */
    int main_node;
    struct platform_env env;
    const struct world_topo *topo; /* async, offline or cluster; NULL: single/mirror */
    void *topo_state;              /* the module's own state */
    void *ledger_state;            /* ledger.c's own state; NULL without topology stake */
    bool crash_pending;
    char crash_node[FAULTS_NODE_MAX];
    char crash_point[64];
    int64_t delay_pending_us; /* slow disks during the request being served */
    uint32_t served_op[DRILL_CLIENTS_MAX + 1]; /* last request served per client */
    /* the order ids the order-status being served listed (newest first), for session.c */
    int64_t read_ids[SIM_SEEN_MAX];
    uint32_t read_count;
    bool read_truncated;    /* the user has more orders than listed */

    /* history and messages */
    size_t op_count, op_cap;
    struct sim_op *ops;     /* ops[id - 1] */
    size_t msg_count, msg_cap;
    struct world_msg *msgs;     /* slots; a delivered message's slot is reused */
    size_t msg_free_count, msg_free_cap;
    int *msg_free;              /* free slots, the last freed on top */

    size_t fault_count;
    struct world_fault faults[WORLD_FAULTS_MAX];
    int net_armed;          /* armed faults that can match a link: net/... or * */
    int explicit_pending;   /* `op` lines still in flight (not part of a client's loop) */

    bool workload_stopped;
    bool draining;
    bool drained;           /* a drain has ended (well or not) */
    int64_t drain_deadline_us;
    bool drain_failed;
    char drain_why[256];

    struct world_verdict verdicts[DRILL_EXPECTS_MAX];
    uint64_t judged;        /* witnesses of the checker being evaluated (checkers_run resets) */
    /* what can change a copy behind the workload's back: crashes, opens, failovers,
     * offline/online (runner.c counts); checkers redo their incremental work when it moves */
    uint64_t epoch;
    uint64_t evaluation;    /* checkers_run calls so far (a shared audit is per evaluation) */
    bool final_check;       /* the end of the run: every acknowledged write is looked up again */
    struct checker_memo *memo; /* checkers.c's incremental state */
    bool integrity_failed;
    char integrity_why[256];
    uint64_t integrity_checks; /* integrity_check runs after opens that judged a database */

    /* timeline marks for the report */
    size_t mark_count, mark_cap;
    struct report_event *marks;
    struct mark_text *mark_text; /* their lane and label text (runner.c) */

    struct world_story story;

    /* figures measured by the topology modules, copied into the report */
    size_t metric_count;
    struct report_metric metrics[REPORT_METRICS_MAX];

    /* `run --live` (live.c): the nodes are serve processes and the clients threads; the
     * runner's pieces that schedule virtual time do nothing */
    bool live;

    /* the trace */
    char *trace;              /* the trace's tail not yet in trace_spill */
    size_t trace_len, trace_cap;
    size_t trace_memory;      /* trace_len's bound once spilling */
    size_t trace_spilled;     /* bytes in trace_spill */
    FILE *trace_spill;        /* a long run's trace so far (unnamed temporary file) */
    void *trace_hash;         /* the digest of trace_spill's bytes (runner.c) */
    bool trace_full;
};

/* runner.c: what sim_run and run --live (live.c) share */
/* The run's seed, the fault layer, the scratch directory, the nodes and their shops,
 * open and seeded. */
int world_prepare(struct sim *s, const struct drill *d, const struct sim_options *opt);
/* A new operation in the history, invoked now (NULL: the history is full). */
struct sim_op *world_new_op(struct sim *s, int client, enum drill_op kind);
/* An operation about to go out (simulated or live): its arguments, what the
 * workload and the session expect of it, and who waits for its answer. */
void world_op_prepare(struct sim *s, struct sim_op *op, int64_t product, int64_t qty,
                      bool is_explicit);
/* The client's think time before its next operation (its own seeded stream). */
int64_t world_think_us(struct sim *s, int client);
/* The client heard op's outcome now: traced, marked, acknowledged, session judged. */
void world_complete(struct sim *s, struct sim_op *op, enum sim_outcome outcome);
/* Closes the shops, disarms the faults, removes the scratch files, frees the run. */
void world_teardown(struct sim *s);

/* runner.c: a fault statement's slot, shared by the simulator and run --live (each arms
 * and disarms its own way: libfiu here, a process's fifo live) */
/* The node a fault point strikes: its second path component ("" none); a link's
 * (net/<from>/<to>/...) is its sender, whose transport consults it. */
void world_fault_lane(const char *name, char lane[FAULTS_NODE_MAX]);
/* The next slot, filled from statement e (name, lane, event), not counted yet; NULL:
 * no room (traced). An armed fault of the same name is healed first by the caller. */
struct world_fault *world_fault_slot(struct sim *s, const struct drill_event *e);
/* The slot's fault was armed now: it counts, and the trace says so. */
void world_fault_armed(struct sim *s, struct world_fault *f);
/* An armed fault stopped now (its counts taken by the caller): traced and marked. */
void world_fault_healed(struct sim *s, struct world_fault *f);

/* runner.c */
/* Times the armed faults have fired so far: a check whose answer changed it
 * saw an injected fault, not the system (integrity is judged without them). */
uint64_t world_faults_fired(struct sim *s);
/* Whether a disk of node n's mirrored pair fails on purpose now (a drill's disk fault on
 * either copy, or a partition between the node and its mirror's disk); *healed_us receives
 * when the last such fault healed (-1: none has). mirror-identical judges a pair out of sync
 * by it. */
bool world_pair_disk_faulted(const struct sim *s, int n, int64_t *healed_us);
/* The main node's shop and config (single, mirror, async primary). */
shop *world_shop(const struct sim *s);
const struct shop_config *world_cfg(const struct sim *s);
/* Is node n mirrored (the primary, or with `mirror cluster` the leader, with
 * `mirror offline` each local)? world_mirror_node: the first such node, the
 * main node when none is. */
bool world_is_mirrored(const struct sim *s, int n);
int world_mirror_node(const struct sim *s);
/* The copy of node n's shop that holds every write (0, or 1 while a degraded
 * mirror leads): what a checker compares with the other nodes. */
int world_lead_copy(const struct sim *s, int n);
/* Sends a node-to-node message (copies data) through the link's faults; at_us >= now. */
void world_send(struct sim *s, int from, int to, int type, int64_t a, int64_t b,
                const void *data, size_t len, int64_t at_us);
/* Pushes a SIM_EV_TOPO event. */
int world_timer(struct sim *s, int64_t at_us, int a, int64_t b);
/* Opens node n's shop (recovery included); 0 or the error (traced). */
int world_open_shop(struct sim *s, int n, const char *why);
/* A crash point fired inside node n's shop: crash the node now. */
void world_handle_crash_point(struct sim *s);
/* The client's endpoint index for messages. */
int world_client_endpoint(const struct sim *s, int client);
/* Sends the reply of op from node n to its client, ready at done_us. */
void world_reply(struct sim *s, int n, struct sim_op *op, int64_t done_us);
/* Serves op on node n's shop right now (records err, traces, handles crash
 * points); returns false when the node died serving it. */
bool world_serve_on(struct sim *s, int n, struct sim_op *op);
/* Records a figure of the run (report.json "metrics"); ignored past REPORT_METRICS_MAX. */
void world_metric(struct sim *s, const char *name, int64_t value, const char *unit);
void world_trace(struct sim *s, const char *lane, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void world_mark(struct sim *s, const char *lane, enum report_mark mark, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int world_node_index(const struct sim *s, const char *name);
const char *world_endpoint_name(const struct sim *s, int endpoint, char buf[32]);

/* workload.c: the next operation of a client, and serving one on the shop */
enum drill_op workload_pick(struct sim *s, int client);
void workload_prepare(struct sim *s, struct sim_op *op);
void workload_serve(struct sim *s, shop *sh, struct sim_op *op);
bool workload_is_write(enum drill_op kind);
void workload_record_ack(struct sim *s, const struct sim_op *op);

/* async.c: its checkers, and its figures traced at the end */
enum sim_check async_rpo_bounded(struct sim *s, const struct drill_expect *e, char *why,
                                 size_t len);
enum sim_check async_replica_prefix(struct sim *s, const struct drill_expect *e, char *why,
                                    size_t len);
enum sim_check async_converges(struct sim *s, const struct drill_expect *e, char *why,
                               size_t len);
void async_report(struct sim *s);
/* run --live (live.c): the serve processes' status stands in for the core's nodes;
 * a failover the secondary's process reported (offset_us: its clock minus the run's) */
void async_live_status(struct sim *s, bool secondary, const struct node_async_status *status);
void async_live_failover(struct sim *s, int64_t offset_us,
                         const struct node_async_status *secondary);

/* cluster.c: its checkers, and its part of converges (replicas equal the leader) */
enum sim_check cluster_no_echo(struct sim *s, const struct drill_expect *e, char *why,
                               size_t len);
enum sim_check cluster_lb_balanced(struct sim *s, const struct drill_expect *e, char *why,
                                   size_t len);
enum sim_check cluster_converges(struct sim *s, const struct drill_expect *e, char *why,
                                 size_t len);
/* At the end: propagation lag p50/p99, resends, cache hits as metrics and a trace line. */
void cluster_report(struct sim *s);
/* run --live (live.c): the catalog's changes before the workload (the leader's head), and
 * what replica r's process (r < 0: the leader's) said in its status, for the checkers */
void cluster_live_start(struct sim *s, int64_t seeded);
void cluster_live_status(struct sim *s, int replica, const struct node_cluster_status *st);
void cluster_live_listing(struct sim *s, int client, uint32_t listed, const int64_t *killed_us,
                          int64_t slack_us);
void cluster_live_answer(struct sim *s, int client, int listed, uint32_t kept);

/* checkers.c: evaluate every expectation now (a checkpoint, the drain, the end) */
void checkers_run(struct sim *s, const char *when);
void checkers_release(struct sim *s);
/* A checker judged n more things (acknowledged writes looked up, reads compared,
 * changes counted...): its witnesses. A checker that holds having judged nothing
 * leaves its expectation unexercised; it may say why in `why` while holding. */
static inline void world_witness(struct sim *s, uint64_t n)
{
    s->judged += n;
}

/* session.c: positions and the session guarantees, judged as reads complete */
void session_issued(struct sim *s, struct sim_op *op);
/* op was just served on node n (after the topology's served hook) */
void session_served(struct sim *s, int n, struct sim_op *op);
/* A read answered at lineage/pos without the runner serving it (a cache hit):
 * ids are the order ids it listed (order-status), newest first. */
void session_read_at(struct sim *s, struct sim_op *op, int lineage, int64_t pos,
                     const int64_t *ids, uint32_t count, bool truncated);
void session_completed(struct sim *s, struct sim_op *op);
void session_release(struct sim *s);

/* memory.c: SQLite's allocations from size classes with free lists (before
 * SQLite's first use in a single-threaded process; a no-op after it) */
void sim_memory_install(void);

/* result.c */
int result_fill(struct sim *s, struct report_run *rep, const char *replay);

/* The marks' text: blocks that never move (a mark points into them), handed
 * to the report with the marks. Frees a chain of them (NULL: nothing). */
struct mark_text {
    struct mark_text *next;
    size_t used, cap;
    char data[];
};
void world_mark_text_free(struct mark_text *t);

/* Hands the trace over to rep (in memory, or its file) with its SHA-256. */
void world_trace_to_report(struct sim *s, struct report_run *rep);

/* story.c: the report's node lanes, violation marks, causal stories and reasons */
/* After each event: notes node state changes and faults that fired first. */
void story_observe(struct sim *s);
/* Expectation i was just violated (why names ops "#N" and nodes): marks the
 * operations and the copies it concerns and writes the chain of events that led to it. */
void story_violation(struct sim *s, size_t i, const char *why);
/* Into the report: stories, invariant paragraphs, reasons, rejected counts,
 * marks in time order. 0 or -ENOMEM. */
int story_fill(struct sim *s, struct report_run *rep);

/* ledger.c: topology stake, beside any other. Every call does nothing (or
 * returns 0 / false) when the drill has no stake ledger. */
/* After the shops are seeded: opens the ledger, registers the predictors,
 * queues the first SIM_EV_LEDGER. */
int ledger_start(struct sim *s);
/* SIM_EV_LEDGER: closes the open round, then the predictors predict. */
void ledger_tick(struct sim *s);
/* A WORLD_NODE message: true when it was the ledger's (handled here). */
bool ledger_deliver(struct sim *s, const struct world_msg *m);
/* Node n died or came back (any node: the ledger picks its own). */
void ledger_crashed(struct sim *s, int n);
void ledger_restarted(struct sim *s, int n);
void ledger_release(struct sim *s);
/* run --live (live_stake.c): serve hosts the ledger, the runner plays the predictors */
struct ledger_live_prediction {
    int predictor;          /* N of predictorN */
    int64_t id;             /* its id in the ledger */
    int64_t value, truth;
    bool lied;              /* stake/predictorN/lie fired (in the runner's own libfiu) */
};
struct stake_round_result;
void ledger_live_let_go(struct sim *s);   /* closes the runner's handle: serve opens the file */
int ledger_live_open(struct sim *s);      /* opens it again for a judgement (0: open) */
/* moves the (closed) ledger's file into dir: the hosting process's data directory */
int ledger_live_move(struct sim *s, const char *dir);
int64_t ledger_live_round_us(struct sim *s);
/* One step of the predictors: the truth walks, each draws (and maybe lies), traced */
int ledger_live_step(struct sim *s, struct ledger_live_prediction *out, int max);
void ledger_live_recorded(struct sim *s, const struct ledger_live_prediction *p, int64_t round);
void ledger_live_closed(struct sim *s, const struct stake_round_result *r);
/* The stake-conserved checker. */
enum sim_check ledger_stake_conserved(struct sim *s, const struct drill_expect *e, char *why,
                                      size_t len);

/* offline.c: its checker, and its part of converges (central holds every local change) */
enum sim_check offline_outbox_accounted(struct sim *s, const struct drill_expect *e, char *why,
                                        size_t len);
enum sim_check offline_converges(struct sim *s, const struct drill_expect *e, char *why,
                                 size_t len);

#endif /* FAULTDRILL_SIM_WORLD_H */
