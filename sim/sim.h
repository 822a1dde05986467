/*
 * sim.h — libsim: the deterministic simulator that runs a drill against the
 * platform and judges it. Virtual time in microseconds, one event queue
 * ordered by (time, insertion sequence), seeded generators with named
 * streams, a simulated network, nodes that crash and restart through the
 * fault layer, clients that run the workload, a history of every client
 * operation, and the invariant checkers.
 *
 * Single-threaded, no wall clock, no unseeded randomness: the same drill and
 * seed give the same trace, byte for byte. The CLI (main.c) uses sim_run();
 * the rest of this header is shared by libsim's own files.
 */
#ifndef FAULTDRILL_SIM_H
#define FAULTDRILL_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "faults/faults.h"
#include "platform/platform.h"
#include "reports/reports.h"
#include "sim/drill.h"

/* ---- Limits ----------------------------------------------------------- */

#define SIM_EVENTS_MAX (1u << 20)   /* events queued at once */
#define SIM_OPS_MAX (1u << 22)      /* client operations in one run */
#define SIM_MSGS_MAX (1u << 22)     /* messages in flight at once */
#define SIM_TRACE_BYTES_MAX (256u << 20)
#define SIM_SEEN_MAX 20             /* order ids one order-status read lists (the newest):
                                     * one page, as a client asks; a full page is truncated */
#define SIM_CLIENT_TIMEOUT_US 1000000
#define SIM_SERVICE_US 200          /* a node's time to serve one request */
#define SIM_DRAIN_POLL_US 10000

/* ---- Running a drill (the CLI's entry point) -------------------------- */

struct sim_options {
    uint64_t seed;
    bool seed_given;      /* --seed overrides the drill's own */
    const char *workdir;  /* where the run's databases live on disk; NULL: in memory, or
                             a scratch dir when on_disk */
    bool on_disk;         /* the databases on the host's disk rather than in this process's
                             memory: slower, same trace; for comparisons */
    const char *replay;   /* the command line that replays this run, for reports */
    size_t trace_memory;  /* bytes of trace kept in memory; past them the trace goes to an
                             unnamed temporary file (same bytes, same hash); 0: 1 MiB */
};

/*
 * Runs the drill and fills rep (free it with sim_result_release). Returns 0
 * when the run happened (pass or fail is rep->pass), -ENOTSUP when the drill
 * needs a component that is not built yet, other -errno when it could not
 * run; msg says why.
 */
int sim_run(const struct drill *d, const struct sim_options *opt, struct report_run *rep,
            char msg[REPORT_ERR_MAX]);
void sim_result_release(struct report_run *rep);

/*
 * `run --live` (live.c, DESIGN.md §5): the same drill against real `serve`
 * processes on loopback, in real time, judged by the same checkers.
 * sim_live_check appends to errs what the live runner cannot play (a power
 * cut, a topology not built live yet...) at the statement's FILE:LINE:COL and
 * returns -EINVAL, or 0. sim_run_live runs a drill that passed it, like
 * sim_run (rep->live is set; no trace-hash promise).
 */
int sim_live_check(const struct drill *d, struct drill_errors *errs);
int sim_run_live(const struct drill *d, const struct sim_options *opt, struct report_run *rep,
                 char msg[REPORT_ERR_MAX]);
/* The sim/live agreement of one drill and seed run both ways, in Markdown
 * (verdicts per expectation, operations by kind and outcome, the figures both
 * measured); true when every verdict agrees. */
bool sim_live_compare(const struct report_run *sim, const struct report_run *live, FILE *out);

/* ---- Events ------------------------------------------------------------ */

enum sim_event_type {
    SIM_EV_CLIENT_NEXT, /* a: client: issue the next operation */
    SIM_EV_DELIVER,     /* a: message index */
    SIM_EV_TIMEOUT,     /* a: client, b: operation id */
    SIM_EV_TIMELINE,    /* a: index into the drill's events */
    SIM_EV_DISARM,      /* a: index into the run's fault records (`for=`) */
    SIM_EV_DRAIN_POLL,  /* a: index of the drain event */
    SIM_EV_TOPO,        /* a, b: the topology module's timer (world_timer) */
    SIM_EV_LEDGER,      /* the stake ledger's round (ledger.c) */
    SIM_EV_END,
    SIM_EV_MIRROR,      /* the mirror's self-repair is due (shop_mirror_next_wake) */
};

struct sim_event {
    int64_t at_us;
    uint64_t seq;       /* insertion order: ties fire in the order queued */
    enum sim_event_type type;
    int a;
    int64_t b;
};

struct sim_queue {
    struct sim_event *heap;
    size_t count;
    size_t cap;
    uint64_t next_seq;
};

int sim_queue_push(struct sim_queue *q, int64_t at_us, enum sim_event_type type, int a,
                   int64_t b);
bool sim_queue_pop(struct sim_queue *q, struct sim_event *out);
void sim_queue_release(struct sim_queue *q);

/* ---- History ----------------------------------------------------------- */

enum sim_outcome {
    SIM_PENDING,
    SIM_OK,
    SIM_FAIL,
    SIM_UNKNOWN,  /* timed out or the node died: possibly applied */
    SIM_REJECTED, /* a business rule said no (empty cart, stock, duplicate email): the
                   * system worked (platform_is_rejected) */
};

struct sim_op {
    uint32_t id;
    int client;            /* 1-based */
    enum drill_op kind;
    int64_t invoke_us;
    int64_t complete_us;   /* -1 while pending */
    enum sim_outcome outcome;
    int err;               /* the platform's result when it failed */
    int64_t user_id, product_id, qty;
    int64_t order_id;      /* checkout result, or the order cancelled; order-status: an
                            * order of the client's it should have listed at its position
                            * and did not (SIM_SESSION_LIED); a product read that lied: the
                            * stock the state at its position held */
    int64_t total_cents;   /* checkout: the order's total; a product read that lied: the
                            * stock it showed */
    bool is_write;
    bool is_explicit;      /* from an `op` line: not part of the client's workload loop */
    int node;              /* the node that served it, -1 before */
    int via;               /* cluster: the replica the client sent it to, -1: none */
    uint32_t healthy_mask; /* cluster: the client's healthy replicas when it chose (bit r-1) */
    int64_t seq;           /* a write: the outbox sequence it committed as (0: none) */
    int64_t served_us;     /* when a node ran it (the rows it wrote carry this time), -1 before */
    int64_t min_seq;       /* cluster: the session's last known sequence, sent with reads */
    uint32_t seen_count;   /* order-status: the order ids listed */
    /* what it reflects (session.c): a write's commit sequence, a read's copy or cache
     * entry sequence, in the numbering of `lineage`; -1: not known */
    int64_t pos;
    int32_t lineage;
    uint32_t after_write;  /* when issued: the client's acknowledged write with the highest
                            * position (op id, 0: none) */
    uint32_t after_read;   /* when issued: its completed read with the highest position */
    uint8_t session;       /* a read's judgement: SIM_SESSION_* */
};

/* How a completed read compares with its session (sim_op.session). */
enum {
    SIM_SESSION_W_JUDGED = 1 << 0, /* compared with the client's own acknowledged writes */
    SIM_SESSION_STALE = 1 << 1,    /* its position is below the client's own write's */
    SIM_SESSION_LIED = 1 << 2,     /* it lacks an own order its position claims to hold, or
                                    * (a cached product read) shows a stock it did not */
    SIM_SESSION_W_OTHER = 1 << 3,  /* the write is in another lineage: not comparable */
    SIM_SESSION_R_JUDGED = 1 << 4, /* compared with the client's earlier read */
    SIM_SESSION_BACK = 1 << 5,     /* its position is below the earlier read's */
    SIM_SESSION_R_OTHER = 1 << 6,  /* the earlier read is in another lineage */
};

/* ---- Checkers ---------------------------------------------------------- */

struct sim;

enum sim_check {
    SIM_CHECK_SKIPPED = -1, /* cannot be judged now (a copy is down, not drained yet) */
    SIM_CHECK_VIOLATED = 0,
    SIM_CHECK_HOLDS = 1,
};

/* Evaluates one invariant now; when violated, writes why (ops, rows, nodes, times). */
typedef enum sim_check (*sim_checker)(struct sim *s, const struct drill_expect *e, char *why,
                                      size_t why_len);

/* The checker of an invariant, or NULL when it is not built yet. */
sim_checker sim_checker_lookup(const char *invariant);
/* CPU time this process spent in the checkers of `invariant` (NULL: all) since it
 * started: a benchmark figure, never part of a trace or a report. */
uint64_t sim_checker_time_ns(const char *invariant);

#endif /* FAULTDRILL_SIM_H */
