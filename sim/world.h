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

/* A node of the topology: primary runs the shop; mirror is a disk it writes. */
struct world_node {
    char name[FAULTS_NODE_MAX];
    bool up;
    bool runs_shop;
    int64_t busy_until_us;  /* a node serves one request at a time */
    uint64_t crashes;
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
};

enum world_msg_kind {
    WORLD_REQUEST,
    WORLD_REPLY,
};

struct world_msg {
    int from, to;           /* endpoints: nodes 0..n-1, then clients */
    enum world_msg_kind kind;
    uint32_t op;
};

/* A fault point as the run armed it (report and `for=` bookkeeping). */
struct world_fault {
    char name[FAULTS_NAME_MAX];
    char lane[FAULTS_NODE_MAX];
    int64_t armed_at_us;
    int64_t healed_at_us;   /* -1 while armed */
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
    char why[REPORT_TEXT_MAX];
};

struct sim {
    const struct drill *drill;
    uint64_t seed;
    int64_t now_us;
    char workdir[512];
    char msg[REPORT_ERR_MAX];

    struct sim_queue queue;
    struct faults_rng net_rng;
    struct faults_rng crash_rng;

    size_t node_count;
    struct world_node nodes[DRILL_NODES_MAX];
    int client_count;
    struct world_client clients[DRILL_CLIENTS_MAX + 1]; /* 1-based */
    struct world_partition partition;

    /* the platform */
    shop *shop;
    struct platform_env env;
    struct shop_config shop_cfg;
    char paths[2][600];
    bool crash_pending;
    int mirror_state;       /* last traced enum mirror_state, -1 before any */
    char mirror_lead[FAULTS_NODE_MAX];
    char crash_point[64];
    int64_t delay_pending_us; /* slow disks during the request being served */
    uint32_t served_op[DRILL_CLIENTS_MAX + 1]; /* last request served per client */

    /* history and messages */
    size_t op_count, op_cap;
    struct sim_op *ops;     /* ops[id - 1] */
    size_t msg_count, msg_cap;
    struct world_msg *msgs;

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
    bool integrity_failed;
    char integrity_why[256];

    /* timeline marks for the report */
    size_t mark_count, mark_cap;
    struct report_event *marks;

    /* the trace */
    char *trace;
    size_t trace_len, trace_cap;
    bool trace_full;
};

/* runner.c */
void world_trace(struct sim *s, const char *lane, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void world_mark(struct sim *s, const char *lane, enum report_mark mark, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int world_node_index(const struct sim *s, const char *name);
const char *world_endpoint_name(const struct sim *s, int endpoint, char buf[32]);

/* workload.c: the next operation of a client, and serving one on the shop */
enum drill_op workload_pick(struct sim *s, int client);
void workload_prepare(struct sim *s, struct sim_op *op);
void workload_serve(struct sim *s, struct sim_op *op);
bool workload_is_write(enum drill_op kind);
void workload_record_ack(struct sim *s, const struct sim_op *op);

/* checkers.c: evaluate every expectation now (a checkpoint, the drain, the end) */
void checkers_run(struct sim *s, const char *when);

/* result.c */
int result_fill(struct sim *s, struct report_run *rep, const char *replay);

#endif /* FAULTDRILL_SIM_WORLD_H */
