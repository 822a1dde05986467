/*
 * bench_sim.c — the simulator's speed, as the runner issue asks for it:
 * for tests/bench/standard.drill (>= 1,000 client operations over 20 s of
 * virtual time, with disk faults, a crash point, a power cut and restarts)
 * the ratio of simulated time to wall time, and how long N seeds of it take
 * one after another in one process (the simulation only; writing reports
 * is measured separately by `faultdrill run`). Prints figures; exits 0
 * unless the drill cannot be read or run (3).
 *
 *   bench_sim [--drill FILE] [--seeds N]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/sim.h"

#ifndef BENCH_DRILL
#define BENCH_DRILL "tests/bench/standard.drill"
#endif

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct totals {
    uint64_t ops;
    int64_t simulated_us;
    unsigned passed;
};

static int run_seed(const struct drill *d, uint64_t seed, struct totals *t)
{
    struct sim_options opt = {.seed = seed, .seed_given = true};
    struct report_run rep;
    char msg[REPORT_ERR_MAX];
    int err = sim_run(d, &opt, &rep, msg);
    if (err) {
        fprintf(stderr, "bench_sim: seed %" PRIu64 ": %s\n", seed, msg);
        return err;
    }
    t->ops += rep.total_ops;
    t->simulated_us += rep.simulated_us;
    t->passed += rep.pass;
    sim_result_release(&rep);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = BENCH_DRILL;
    unsigned seeds = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--drill") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
            seeds = (unsigned)strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench_sim [--drill FILE] [--seeds N]\n");
            return 2;
        }
    }
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    if (d == NULL || errs == NULL || drill_parse_file(path, d, errs) != 0) {
        if (errs != NULL)
            drill_errors_print(path, errs, stderr);
        return 3;
    }
    /* One seed, best of five: the ratio of the contract. */
    double best = 1e9;
    struct totals one = {0};
    for (int k = 0; k < 5; k++) {
        struct totals t = {0};
        double t0 = now_s();
        if (run_seed(d, d->seed, &t) != 0)
            return 3;
        double wall = now_s() - t0;
        if (wall < best)
            best = wall;
        one = t;
    }
    printf("bench_sim: %s\n", path);
    printf("one run:   %" PRIu64 " ops, %.1f s simulated in %.1f ms (best of 5): "
           "simulated/wall = %.0f  (target >= 1000)\n",
           one.ops, (double)one.simulated_us / 1e6, best * 1e3,
           (double)one.simulated_us / 1e6 / best);
    struct totals all = {0};
    double t0 = now_s();
    for (unsigned s = 1; s <= seeds; s++)
        if (run_seed(d, s, &all) != 0)
            return 3;
    double wall = now_s() - t0;
    printf("%u seeds:  %.1f s wall, %.1f ms a seed, %.0f ops a seed, %u passed  "
           "(target <= 60 s)\n",
           seeds, wall, wall * 1e3 / seeds, (double)all.ops / seeds, all.passed);
    printf("overall:   simulated/wall = %.0f\n", (double)all.simulated_us / 1e6 / wall);
    free(errs);
    free(d);
    return 0;
}
