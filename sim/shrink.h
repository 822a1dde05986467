/*
 * shrink.h — reducing a failing drill to the smallest one that still fails
 * the same way with the same seed (DESIGN.md §5, `faultdrill shrink`), by
 * delta debugging over the drill's own text: whole lines dropped in halving
 * chunks (timeline lines, other expectations, workloads, about lines), then
 * each number lowered by bisection (duration, product and user counts, stock,
 * clients, rates, until=, p=, for=, count=, after=, delay=, the topology's
 * latencies, delays, intervals, replicas, locals) and each `at` moved
 * earlier, until nothing more can go. The bounds of liveness stay as written
 * (a drain's within=, offline retries=, async batch=): lowering them makes a
 * failure of its own. A change is kept only when the drill
 * still parses and the same expectation still comes out the same way.
 *
 * The drill is edited as text, line by line and word by word, so what is
 * left reads as its author wrote it (comments are dropped: they would describe
 * what is gone). Deterministic: the same drill and seed give the same result.
 * Runs the simulator in this process (sim_run), one run per candidate.
 */
#ifndef FAULTDRILL_SIM_SHRINK_H
#define FAULTDRILL_SIM_SHRINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reports/reports.h"

#define SHRINK_RUNS_MAX 2000 /* simulations one shrink may take */

struct shrink_size {
    size_t statements;     /* non-blank, non-comment lines */
    uint64_t ops;          /* client operations of the run */
    int64_t simulated_us;
};

struct shrink_result {
    char *text;                        /* the minimal drill (malloc'd) */
    struct shrink_size before, after;
    char invariant[48];                /* the expectation it keeps failing */
    bool expect_violated;
    char observed[16];                 /* how it came out: "violated", "held"... */
    bool demonstration;                /* every expectation was met; it keeps a violation the
                                        * drill expects (`expect X violated`) */
    char explanation[REPORT_TEXT_MAX]; /* the minimal drill's explanation of it */
    unsigned runs;                     /* simulations it took */
    bool capped;                       /* stopped at SHRINK_RUNS_MAX */
};

/*
 * Shrinks the drill text (file names it, for errors and the drill's name)
 * under seed, keeping the expectation of invariant (NULL: the first one not
 * met, else the first violated one of a demonstration). 0 with out filled; -EINVAL when the drill does not parse;
 * -ENOENT when the run meets every expectation and violates nothing (there is
 * nothing to keep); another -errno when it cannot run. err says why.
 */
int shrink_drill(const char *file, const char *text, uint64_t seed, const char *invariant,
                 struct shrink_result *out, char err[REPORT_ERR_MAX]);
void shrink_result_release(struct shrink_result *r);

#endif /* FAULTDRILL_SIM_SHRINK_H */
