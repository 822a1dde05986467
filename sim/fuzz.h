/*
 * fuzz.h — random valid drills (DESIGN.md §5, `faultdrill fuzz`): for a
 * topology this build can run (single, mirror, async, offline, cluster, each
 * with or without stake, and combinations as `run` comes to accept them), its
 * options in their correct modes, a workload, faults from the catalog at
 * random times, crashes and restarts, partitions, offline switches, a
 * failover, checkpoints, explicit operations and a drain, and the
 * expectations the correct modes promise for what the drill does.
 *
 * The naive modes (mirror ack=early or sync=normal, async outbox=off, offline
 * queue=separate, cluster propagate=before-commit or cache=naive) are never
 * generated: they break their promises by design, and a failure of a
 * generated drill must be a bug of the platform or of the bench.
 *
 * Generation is a pure function of (seed, index): the same fuzz seed gives
 * the same drills whatever the number of workers. Depends on the drill
 * parser and the seeded generator of libfaults; the probe runs the simulator.
 */
#ifndef FAULTDRILL_SIM_FUZZ_H
#define FAULTDRILL_SIM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reports/reports.h"

#define FUZZ_DRILL_BYTES_MAX 16384
#define FUZZ_SETS_MAX 32

/* The topologies (sets of DRILL_* component bits) that generation draws from. */
struct fuzz_space {
    size_t count;
    unsigned sets[FUZZ_SETS_MAX];
    bool plant_early_ack; /* test only: mirrors acknowledge early (a naive mode), so fuzz
                           * has something to find (FAULTDRILL_TEST_FUZZ_PLANT=early-ack) */
};

/* The candidate topologies: every component alone and every pair of
 * replication components, each also with stake. Returns how many. */
size_t fuzz_set_candidates(unsigned sets[FUZZ_SETS_MAX]);

/* Whether `run` builds a set; ctx is the caller's. */
typedef bool fuzz_runnable_fn(unsigned set, void *ctx);

/* The probe of this build: a drill of the set's topology line alone is
 * parsed (`check`) and run for an instant (`run`); ctx unused. */
bool fuzz_set_runnable(unsigned set, void *ctx);

/*
 * The space: the candidates runnable accepts, so a combination joins the
 * moment `run` builds it and one it refuses is never generated. only (NULL:
 * all) keeps the one set named by topology words ("mirror", "mirror async").
 * 0; -EINVAL (bad words) or -ENOTSUP (nothing left) with err.
 */
int fuzz_space_build(struct fuzz_space *sp, const char *only, fuzz_runnable_fn *runnable,
                     void *ctx, char err[REPORT_ERR_MAX]);

/* fuzz_space_build with this build's probe, fuzz_set_runnable. */
int fuzz_space_probe(struct fuzz_space *sp, const char *only, char err[REPORT_ERR_MAX]);

/* The topology words of a set: "mirror async". */
void fuzz_set_words(unsigned set, char *buf, size_t len);

/*
 * Writes drill number index of the fuzz seeded with seed into text (a full
 * drill file, at most FUZZ_DRILL_BYTES_MAX bytes). 0, or -E2BIG.
 */
int fuzz_generate(const struct fuzz_space *sp, uint64_t seed, uint64_t index, char *text,
                  size_t len);

#endif /* FAULTDRILL_SIM_FUZZ_H */
