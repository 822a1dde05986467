/*
 * bench_checkers.c — what judging costs: a mirrored shop runs a history of
 * about N client operations (default 100,000 and 1,000,000) with every
 * invariant of the topology expected, a checkpoint every simulated second and
 * a drain at the end; prints the run's CPU time, the checkers' (all and per
 * invariant) and their share. DESIGN.md §4 wants the checkers under 10% of
 * the run. Session guarantees are judged as each read completes (session.c,
 * O(1) a read): that part is inside the run's time, not the checkers'.
 *
 *   bench_checkers [--checkpoints K] [OPS...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/sim.h"

static const char *const invariants[] = {
    "no-lost-acks", "mirror-identical", "stock-conserved", "order-totals",
    "integrity",    "read-your-writes", "monotonic-reads", "converges",
};
#define INVARIANTS (sizeof(invariants) / sizeof(invariants[0]))

static long checkpoints = 2; /* --checkpoints K: evenly spread, then the drain and the end */

static uint64_t cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A drill of about ops operations: 50 clients at 1,000 ops/s of simulated time. */
static int make_drill(long ops, char *text, size_t len)
{
    long seconds = ops / 1000 + 1;
    int n = snprintf(text, len,
                     "drill \"checker cost\"\n"
                     "topology mirror policy=degrade\n"
                     "seed 1\n"
                     "duration %lds\n"
                     "products 50 stock=1000000000 price=1..100\n"
                     "users 50\n"
                     "workload w clients=50 rate=1000/s "
                     "mix=browse:30,search:10,cart:25,checkout:15,orders:15,cancel:5 until=%lds\n"
                     "at 1s fault disk/mirror/write p=0.1 for=1s\n",
                     seconds + 2, seconds);
    for (long k = 1; k <= checkpoints && (size_t)n < len; k++)
        n += snprintf(text + n, len - (size_t)n, "at %ldms checkpoint\n",
                      seconds * 1000 * k / (checkpoints + 1));
    n += snprintf(text + n, len - (size_t)n, "at %lds drain within=2s\n", seconds);
    for (size_t i = 0; i < INVARIANTS && (size_t)n < len; i++)
        n += snprintf(text + n, len - (size_t)n, "expect %s\n", invariants[i]);
    return (size_t)n < len ? 0 : -1;
}

static int bench(long ops)
{
    size_t len = 8192 + (size_t)checkpoints * 32;
    char *text = malloc(len);
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    if (text == NULL || d == NULL || errs == NULL || make_drill(ops, text, len) != 0) {
        fprintf(stderr, "bench_checkers: out of memory\n");
        return 1;
    }
    if (drill_parse_text("checker-cost.drill", text, strlen(text), d, errs) != 0) {
        drill_errors_print("checker-cost.drill", errs, stderr);
        return 1;
    }
    uint64_t before[INVARIANTS], all_before = sim_checker_time_ns(NULL);
    for (size_t i = 0; i < INVARIANTS; i++)
        before[i] = sim_checker_time_ns(invariants[i]);
    struct sim_options opt = {.seed = 1, .seed_given = true};
    struct report_run rep;
    char msg[REPORT_ERR_MAX];
    uint64_t t0 = cpu_ns();
    int err = sim_run(d, &opt, &rep, msg);
    uint64_t run_ns = cpu_ns() - t0;
    if (err) {
        fprintf(stderr, "bench_checkers: %s\n", msg);
        return 1;
    }
    uint64_t checkers = sim_checker_time_ns(NULL) - all_before;
    printf("%llu operations (%s), %ld checkpoints + drain + end: run %.2f s CPU, checkers %.3f s "
           "= %.2f%% (target < 10%%)\n",
           (unsigned long long)rep.total_ops, rep.pass ? "every expectation met" : "NOT MET",
           checkpoints, (double)run_ns / 1e9, (double)checkers / 1e9,
           100.0 * (double)checkers / (double)run_ns);
    for (size_t i = 0; i < INVARIANTS; i++) {
        uint64_t ns = sim_checker_time_ns(invariants[i]) - before[i];
        printf("  %-17s %8.3f s  %5.2f%%  witnesses %llu\n", invariants[i], (double)ns / 1e9,
               100.0 * (double)ns / (double)run_ns,
               (unsigned long long)rep.expectations[i].witnesses);
    }
    int rc = rep.pass ? 0 : 1;
    sim_result_release(&rep);
    free(errs);
    free(d);
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    static const long defaults[] = {100000, 1000000};
    int rc = 0;
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--checkpoints") == 0) {
        checkpoints = strtol(argv[2], NULL, 10);
        first = 3;
    }
    if (argc > first) {
        for (int i = first; i < argc; i++)
            rc |= bench(strtol(argv[i], NULL, 10));
    } else {
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
            rc |= bench(defaults[i]);
    }
    return rc;
}
