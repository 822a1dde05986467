/*
 * drill.h — a drill file, parsed (DESIGN.md §4 is the contract): the header,
 * the topology and its options, the workload, the timeline and the
 * expectations; plus the invariant catalog the parser validates against.
 *
 * Internal to libsim (the runner and the CLI use it); parsing depends on
 * libfaults (fault-point names) and platform.h (mirror enums), nothing else.
 */
#ifndef FAULTDRILL_SIM_DRILL_H
#define FAULTDRILL_SIM_DRILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "faults/faults.h"
#include "platform/platform.h"

/* ---- Limits (exceeding one is a parse error, never a truncation) ------- */

#define DRILL_TEXT_MAX 512      /* bytes in a title or one about line */
#define DRILL_ABOUT_MAX 16      /* about lines */
#define DRILL_WORKLOADS_MAX 8
#define DRILL_EVENTS_MAX 512    /* timeline statements */
#define DRILL_EXPECTS_MAX 32
#define DRILL_NODES_MAX 64      /* nodes of a topology, clients not included (each gets a
                                 * VFS: at most FAULTS_NODES_MAX) */
#define DRILL_CLIENTS_MAX 256   /* clients over all workloads */
#define DRILL_SIDE_MAX 8        /* nodes on one side of a partition */
#define DRILL_ERRORS_MAX 64     /* errors reported for one file */
#define DRILL_NAME_MAX 64       /* a drill's name: its file name without .drill */
#define DRILL_FILE_BYTES_MAX (1u << 20)
#define DRILL_LINE_MAX 4096     /* bytes in one line */
#define DRILL_WORDS_MAX 64      /* words in one statement */
#define DRILL_DURATION_US_MAX (24 * 3600 * INT64_C(1000000)) /* any duration: 24h */
#define DRILL_PRODUCTS_MAX SHOP_AUDIT_PRODUCTS_MAX /* the checkers audit every product */
#define DRILL_USERS_MAX 100000
#define DRILL_STOCK_MAX 1000000000 /* stock=N of one product */
#define DRILL_RATE_PER_S_MAX 100000 /* rate=R/s of one workload */
#define DRILL_MIX_WEIGHT_MAX 1000000
#define DRILL_LOCALS_MAX 16     /* locals=N */
#define DRILL_REPLICAS_MAX 16   /* replicas=N */
#define DRILL_PREDICTORS_MAX 32 /* stake predictors=N */
#define DRILL_STAKE_AMOUNT_MAX INT64_C(1000000000000000) /* deposit=, min-stake=: micro-units
                                                         * (STAKE_DEPOSIT_MAX) */
#define DRILL_STAKE_TOLERANCE_MAX INT64_C(1000000000000) /* tolerance=N: a lie (a few times
                                                           * the tolerance) stays a valid
                                                           * prediction */
#define DRILL_STAKE_ROUND_US_MIN INT64_C(10000) /* round=DUR: at least 10ms */
#define DRILL_FAULT_COUNT_MAX 1000000000 /* count=N and after=N */
#define DRILL_DURATION_TEXT_MAX 32 /* drill_duration_format's buffer */

/* ---- Topology ----------------------------------------------------------- */

enum drill_component {
    DRILL_SINGLE = 1u << 0,
    DRILL_MIRROR = 1u << 1,
    DRILL_ASYNC = 1u << 2,
    DRILL_OFFLINE = 1u << 3,
    DRILL_CLUSTER = 1u << 4,
    DRILL_STAKE = 1u << 5, /* beside any other: the stake ledger is a separate database */
};

enum drill_cache {
    DRILL_CACHE_OFF,
    DRILL_CACHE_ON,
    DRILL_CACHE_NAIVE,
};

struct drill_topology {
    unsigned components;           /* DRILL_* bits; `single` alone if the drill names none,
                                    * and `single` beside `stake` when stake is named alone */
    /* mirror: policy=strict|degrade, ack=both|early */
    enum mirror_policy policy;     /* default strict */
    enum mirror_ack ack;           /* default both */
    /* single and mirror: sync=full|normal (PRAGMA synchronous; default full) */
    bool sync_normal;
    /* async: delay=DUR (default 100ms), batch=N (default 50), outbox=on|off */
    int64_t async_delay_us;
    int async_batch;
    bool outbox_off;
    /* offline: locals=N (0: one node named `local`), interval=DUR (1s),
     * retries=N (5), queue=same|separate */
    int locals;
    int64_t sync_interval_us;
    int retries;
    bool queue_separate;
    /* cluster: replicas=N (2), propagate=after-commit|before-commit,
     * cache=off|on|naive, ttl=DUR (5s), lb=round-robin */
    int replicas;
    bool propagate_before_commit;
    enum drill_cache cache;
    int64_t cache_ttl_us;
    /* stake: predictors=N (4), deposit=N micro-units (1000000), tolerance=N in the
     * prediction unit (50), slash=PCT (20%, kept in parts per million), min-stake=N
     * micro-units (100000, at most the deposit), round=DUR (1s) */
    int predictors;
    int64_t stake_deposit;
    int64_t stake_tolerance;
    int64_t stake_slash_ppm;
    int64_t stake_min;
    int64_t stake_round_us;
    /* any topology: latency=DUR (default 1ms), jitter=DUR (0) */
    int64_t latency_us;
    int64_t jitter_us;
};

/* ---- Workload ----------------------------------------------------------- */

/* What a client does; the mix names are the strings of drill_op_name(). */
enum drill_op {
    DRILL_OP_BROWSE,       /* "browse": list products, read one */
    DRILL_OP_SEARCH,       /* "search": product search by a word */
    DRILL_OP_CART_ADD,     /* "cart-add" (alias "cart") */
    DRILL_OP_CART_REMOVE,  /* "cart-remove" */
    DRILL_OP_CHECKOUT,     /* "checkout" */
    DRILL_OP_ORDER_STATUS, /* "order-status" (alias "orders"): read own orders */
    DRILL_OP_ORDER_CANCEL, /* "order-cancel" (alias "cancel") */
    DRILL_OP_USER_CREATE,  /* "user-create" */
    DRILL_OP_USER_UPDATE,  /* "user-update" (alias "user") */
    DRILL_OP_COUNT,
};

struct drill_workload {
    char name[DRILL_NAME_MAX];    /* [a-z0-9_-]; unique in the drill */
    int clients;                  /* clients=N (default 1) */
    double rate_per_s;            /* rate=R/s (required, > 0): operations per second over all
                                   * its clients */
    unsigned mix[DRILL_OP_COUNT]; /* mix=KIND:WEIGHT,... (required); weights, not necessarily
                                   * summing to 100, at least one > 0 */
    int64_t until_us;             /* until=DUR (default: the drill's duration) */
    int first_client;             /* its clients are client<first_client>..; set by the parser */
};

/* ---- Timeline ----------------------------------------------------------- */

enum drill_action {
    DRILL_FAULT,      /* fault NAME [p= errno= once count= after= for= delay=] */
    DRILL_HEAL,       /* heal NAME | heal partition | heal all */
    DRILL_PARTITION,  /* partition A [B...] | C [D...] */
    DRILL_CRASH,      /* crash NODE [process] */
    DRILL_RESTART,    /* restart NODE */
    DRILL_GO_OFFLINE, /* offline NODE */
    DRILL_GO_ONLINE,  /* online NODE */
    DRILL_FAILOVER,   /* failover NODE */
    DRILL_OP,         /* op KIND client=clientN [product=ID qty=N] */
    DRILL_CHECKPOINT, /* checkpoint */
    DRILL_DRAIN,      /* drain within=DUR */
};

enum drill_heal {
    DRILL_HEAL_POINT,     /* one fault point, by the exact name it was armed with */
    DRILL_HEAL_PARTITION, /* every partition */
    DRILL_HEAL_ALL,       /* every fault and partition */
};

struct drill_event {
    int64_t at_us;
    int line, col;                  /* of the `at` */
    int arg_col;                    /* of the action's first word after its verb (the fault
                                     * point, the node...), else col */
    enum drill_action action;
    char name[FAULTS_NAME_MAX];     /* fault point, node, or op kind name (canonical, no alias);
                                     * "partition"/"all" for those heals; "" otherwise */
    /* DRILL_FAULT */
    struct faults_arm_spec spec;    /* p (never 0 here: p=0 is refused; 1 when not given), err (0:
                                     * the catalog default), count (`once`: 1), after, delay_us (0:
                                     * the default; only slow/delay points take delay=) */
    bool p_given, err_given;
    int64_t for_us;                 /* 0: until healed */
    /* DRILL_HEAL */
    enum drill_heal heal;
    /* DRILL_PARTITION: node names on each side */
    int side_count[2];
    char side[2][DRILL_SIDE_MAX][FAULTS_NODE_MAX];
    /* DRILL_CRASH */
    bool process;                   /* `process`: unsynced writes kept */
    /* DRILL_OP */
    enum drill_op op;
    int client;                     /* N of clientN */
    int64_t product;                /* product=ID, 0: chosen by the client */
    int64_t qty;                    /* qty=N, 0: chosen by the client */
    /* DRILL_DRAIN */
    int64_t within_us;
};

/* ---- Expectations and invariants -------------------------------------- */

struct drill_expect {
    char invariant[48];
    bool violated;      /* `violated`: the drill demonstrates a break */
    int64_t max;        /* max=N where the invariant takes it, else -1 */
    int line, col;
};

struct invariant_info {
    const char *name;        /* "no-lost-acks" */
    const char *summary;     /* the "holds when" sentence of DESIGN.md §4 */
    const char *explanation; /* one paragraph for a student: what breaks it, why it matters */
    const char *options;     /* accepted option keys, comma-separated; "" none */
    const char *witness;     /* what its checker counts as judged, plural ("acknowledged
                              * writes"): reports say "held over 1,204 acknowledged writes" */
    const char *lacks;       /* when it judged nothing: what the drill lacked */
    unsigned components;     /* DRILL_* where it is meaningful; 0: any */
};

/* The catalog, in DESIGN.md's order. */
const struct invariant_info *invariant_catalog(size_t *count);
const struct invariant_info *invariant_lookup(const char *name);

/* ---- The drill ---------------------------------------------------------- */

struct drill {
    char name[DRILL_NAME_MAX];            /* file name without directory and .drill */
    char file[4096];                      /* as given */
    char title[DRILL_TEXT_MAX];
    size_t about_count;
    char about[DRILL_ABOUT_MAX][DRILL_TEXT_MAX];
    struct drill_topology topology;
    uint64_t seed;                        /* default 1 */
    int64_t duration_us;                  /* default 10s */
    int products;                         /* products N (default 10) */
    int64_t product_stock;                /* stock=N (default 100) */
    int64_t price_min_cents, price_max_cents; /* price=LO..HI in currency units (default 1..100) */
    int users;                            /* users N (default 4) */
    size_t workload_count;
    struct drill_workload workloads[DRILL_WORKLOADS_MAX];
    int clients;                          /* total over workloads; a drill without workloads
                                           * has the clients its `op` lines name (up to the
                                           * highest N); with workloads, `op` must name one of
                                           * theirs */
    size_t event_count;
    struct drill_event events[DRILL_EVENTS_MAX]; /* sorted by time, then by line */
    size_t expect_count;
    struct drill_expect expects[DRILL_EXPECTS_MAX];
    int topology_line;                    /* of the `topology` statement, 0: none */
};

struct drill_error {
    int line, col;
    char msg[240];
};

struct drill_errors {
    size_t count;
    bool truncated;                       /* more than DRILL_ERRORS_MAX */
    struct drill_error e[DRILL_ERRORS_MAX];
};

/*
 * Parses a drill. Returns 0, or -EINVAL with every error found in errs
 * (line and column 1-based; a file-level error such as a missing title is
 * at 1:1), or -errno when the file cannot be read (errs has one entry, 0:0).
 * `d` is large: allocate it (calloc).
 */
int drill_parse_file(const char *path, struct drill *d, struct drill_errors *errs);
int drill_parse_text(const char *file, const char *text, size_t len, struct drill *d,
                     struct drill_errors *errs);
/*
 * What the simulator can run (after a successful parse; `check` and `run`
 * both ask): components built together, a failover the topology has, fault
 * points something in the topology reaches (a crash point of the mirror on
 * topology single never fires). Appends each problem to errs (sorted) and
 * returns -EINVAL, or 0.
 */
int drill_check_runnable(const struct drill *d, struct drill_errors *errs);
/* Prints every error as FILE:LINE:COL: message, one per line. */
void drill_errors_print(const char *file, const struct drill_errors *errs, FILE *out);

/* The drill's node names in a stable order (topology components in the
 * order single, mirror, async, offline, cluster, stake); returns how many. */
size_t drill_nodes(const struct drill *d, char names[DRILL_NODES_MAX][FAULTS_NODE_MAX]);
bool drill_has_node(const struct drill *d, const char *name);

const char *drill_op_name(enum drill_op op);
const char *drill_action_name(enum drill_action a);
/* "single", "mirror", "async", "offline", "cluster", "stake" for one DRILL_* bit. */
const char *drill_component_name(enum drill_component c);

/* Parses a duration as drills write it (250ms, 2s, 1.5s, 1m, 100us; whole
 * microseconds): 0, -EINVAL when malformed, -ERANGE above DRILL_DURATION_US_MAX. */
int drill_duration_parse(const char *text, int64_t *us);
/* Writes us (>= 0) the way a drill would ("1.5s", "250ms", "2m") into buf;
 * returns buf. drill_duration_parse reads it back to the same value. */
const char *drill_duration_format(int64_t us, char buf[DRILL_DURATION_TEXT_MAX]);

/* What the drill will do, in words, for a student (`faultdrill explain`). */
void drill_explain(const struct drill *d, FILE *out);

#endif /* FAULTDRILL_SIM_DRILL_H */
