/*
 * sweep.h — the results of a sweep (every drill x every seed, DESIGN.md §5)
 * and the files that carry them: OUT/sweep.json (schema faultdrill.sweep/1),
 * OUT/sweep.md and the JUnit file. `faultdrill sweep` fills a struct sweep
 * from its workers; `faultdrill report merge` reads the sweep.json of every
 * shard back into one and writes the same three files, so a merged sweep and
 * an unsharded one are written by the same code.
 *
 * What makes a sweep fail (sweep_judge): a run whose expectations were not
 * met, a run that could not run, a rechecked run whose trace differed (not
 * deterministic), and a fault statement that fired in none of the seeds.
 *
 * Depends on cJSON, libreports' text helpers and the drill limits; not on
 * the simulator.
 */
#ifndef FAULTDRILL_SIM_SWEEP_H
#define FAULTDRILL_SIM_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "reports/reports.h"
#include "sim/drill.h"

#define SWEEP_SCHEMA "faultdrill.sweep/1"
#define SWEEP_DRILLS_MAX 1024
#define SWEEP_SEED_MAX (UINT64_C(1) << 53) /* seeds travel as JSON numbers (doubles) */
#define SWEEP_RUNS_MAX (UINT64_C(1) << 32)

enum sweep_verdict {
    SWEEP_PASS,
    SWEEP_FAIL,  /* an expectation not met */
    SWEEP_ERROR, /* could not run: the simulator refused, crashed or hung */
};

struct sweep_expect {
    char invariant[48];
    bool expect_violated;
    char observed[16];   /* "held", "violated", "unexercised" */
    bool ok;
    char *explanation;   /* only when not ok (malloc'd), else NULL */
};

/* One fault statement of a drill as one run saw it. */
struct sweep_fault {
    int line;
    uint64_t reached; /* calls that consulted the point while it was armed */
    uint64_t fired;
};

struct sweep_run {
    size_t drill;                  /* index into sweep.drills */
    uint64_t seed;
    enum sweep_verdict verdict;
    char trace_sha256[65];
    int64_t wall_ms;
    uint64_t ops;
    int64_t simulated_us;
    size_t expect_count;
    struct sweep_expect *expects;
    size_t fault_count;
    struct sweep_fault *faults;
    char *error;                   /* SWEEP_ERROR: why (malloc'd) */
    bool rechecked;                /* run a second time for --recheck */
    char recheck_sha256[65];       /* the second run's trace hash ("" if it could not run) */
};

/* A fault statement: its line, when it arms and the point it arms. */
struct sweep_statement {
    int line;
    int64_t at_us;
    char name[FAULTS_NAME_MAX];
};

struct sweep_drill {
    char name[DRILL_NAME_MAX];
    char file[4096];
    char title[DRILL_TEXT_MAX];
    size_t statement_count;
    struct sweep_statement *statements; /* malloc'd */
};

struct sweep {
    uint64_t seed_first, seed_last;    /* --seeds A-B */
    unsigned shard_index, shard_count; /* --shard K/N; 1/1 when not sharded */
    unsigned recheck_pct;
    size_t drill_count;
    struct sweep_drill *drills;
    size_t run_count, run_cap;
    struct sweep_run *runs;
    const char *out;                   /* --out when given (replay lines carry it), or NULL */
};

/* ---- Building one ----------------------------------------------------------- */

/* Adds the drill's name, file, title and fault statements; 0, -E2BIG (more than
 * SWEEP_DRILLS_MAX) or -ENOMEM. */
int sweep_add_drill(struct sweep *s, const struct drill *d);
/* Appends a run (the sweep takes over its allocations); 0 or -ENOMEM. */
int sweep_add_run(struct sweep *s, struct sweep_run *run);
void sweep_run_release(struct sweep_run *run);
void sweep_release(struct sweep *s);
/* Orders the runs by drill, then seed: how every file lists them. */
void sweep_sort(struct sweep *s);

/* The record of one finished run, from its report; 0 or -ENOMEM. */
int sweep_run_from_report(const struct sweep *s, size_t drill, const struct report_run *rep,
                          struct sweep_run *run);

/* ---- JSON ------------------------------------------------------------------------ */

/* One run as the JSON object sweep.json lists (malloc'd text; NULL if out of memory). */
char *sweep_run_to_json(const struct sweep *s, const struct sweep_run *run);
/* Parses such an object (its "drill" must name one of s->drills); 0 or -EINVAL with err. */
int sweep_run_parse(const struct sweep *s, const char *json, struct sweep_run *run,
                    char err[REPORT_ERR_MAX]);

/* Reads a sweep.json into s (zeroed by the caller); 0 or -errno with err. */
int sweep_read(const char *path, struct sweep *s, char err[REPORT_ERR_MAX]);

/* ---- Judging and writing ---------------------------------------------------------- */

struct sweep_totals {
    uint64_t runs, passed, failed, errors;
    uint64_t rechecked, nondeterministic;
    uint64_t unfired;      /* fault statements that fired in none of the seeds */
    uint64_t ops;
    int64_t simulated_us, wall_ms;
};

/*
 * Counts what the sweep found and returns its exit code: 0 all met, 1 a run
 * not met, a trace not reproduced or a fault statement that never fired, 3 a
 * run that could not run.
 */
int sweep_judge(const struct sweep *s, struct sweep_totals *t);
/* False for one shard of several: it sees only some seeds, so whether a fault
 * statement fired in none of them is for `report merge` to judge. */
bool sweep_judges_faults(const struct sweep *s);

/* Writes OUT/sweep.json and OUT/sweep.md (and the JUnit file when junit is
 * not NULL), each to a temporary file renamed over the target; 0 or -errno. */
int sweep_write(const struct sweep *s, const char *out_dir, const char *junit,
                char err[REPORT_ERR_MAX]);

/* The summary table, each failing seed's replay command, the fault statements
 * that never fired and the runs that were not deterministic. */
void sweep_print_summary(const struct sweep *s, FILE *out);

/* "faultdrill run FILE --seed N" */
void sweep_replay(const struct sweep *s, const struct sweep_run *run, char *buf, size_t len);

#endif /* FAULTDRILL_SIM_SWEEP_H */
