/*
 * bench_sim.c — the simulator's speed, as issue 15 asks for it. Prints
 * figures, asserts nothing about time; exits 0 unless a drill cannot be
 * read or run (3), or a run's verdict is not a pass (1: the bench drills
 * are built to pass, so a failure is a bug, not a slow machine).
 *
 *   standard   tests/bench/standard.drill (>= 1,000 client operations over
 *              20 s of virtual time, disk faults, a crash point, a power cut,
 *              restarts): simulated / wall time, best of 5 runs.
 *   versus     the same against an older build's bench_sim (--old PATH):
 *              rounds that run the old binary's one-run measure and this
 *              one's in turn, so both see the same machine; the ratio is of
 *              the best times of this one run.
 *   recovery   opening a shop apart from the runs: a fresh mirrored shop,
 *              and the reopen after a power cut that leaves a WAL to recover.
 *   scale      one drill at 10k, 100k and 1M operations (standard.drill's
 *              workload and fault pattern over a longer time), each in its own
 *              child process: wall time and peak memory (getrusage maxrss),
 *              each step's growth, and the memory each operation adds.
 *   seeds      N seeds of standard.drill one after another in one process.
 *
 *   bench_sim [--drill FILE] [--seeds N] [--sizes N,N,...] [--old PATH]
 *             [--rounds N] [--only standard|versus|recovery|scale|seeds]
 *             [--once SEED] [--scaled OPS] [--no-session-checks]
 *
 * --once SEED runs one seed (for a profiler); --scaled OPS prints the scaled
 * drill's text; --seeds 0 prints the one-run figure only (what --old asks an
 * older build for). The `one run:` and `N seeds:` lines keep their format: an
 * older bench_sim is read through them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "faults/faults.h"
#include "platform/platform.h"
#include "sim/sim.h"

#ifndef BENCH_DRILL
#define BENCH_DRILL "tests/bench/standard.drill"
#endif

#define BENCH_SIZES_MAX    8
#define BENCH_BEST_OF      5
#define BENCH_ROUNDS       3
#define BENCH_DRILL_BYTES  (64u << 10)
#define BENCH_PERIOD_US    (20 * INT64_C(1000000)) /* standard.drill's fault pattern */
#define BENCH_PERIODS_MAX  8  /* the fault pattern's repeats: the same drill at every length */
#define BENCH_OPS_PER_S    69                      /* standard.drill: 1,243 ops in 18 s */
#define BENCH_RECOVERY_ORDERS 2000

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* This process's CPU time (user + system): what a run cost even when the
 * machine is shared and the wall clock also counts other people's work. */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double best_cpu_s; /* best_run's best CPU time */

struct totals {
    uint64_t ops;
    int64_t simulated_us;
    unsigned runs;
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
    t->runs++;
    t->passed += rep.pass;
    if (!rep.pass)
        fprintf(stderr, "bench_sim: %s seed %" PRIu64 " did not pass\n", d->name, seed);
    sim_result_release(&rep);
    return 0;
}

static struct drill *parse_text(const char *name, const char *text)
{
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    if (d == NULL || errs == NULL ||
        drill_parse_text(name, text, strlen(text), d, errs) != 0) {
        if (errs != NULL)
            drill_errors_print(name, errs, stderr);
        free(errs);
        free(d);
        return NULL;
    }
    free(errs);
    return d;
}

/* ---- standard: one seed, best of five ----------------------------------- */

/* Best wall time of BENCH_BEST_OF runs of the drill's own seed; 0 on error. */
static double best_run(const struct drill *d, struct totals *one)
{
    double best = 1e9;
    best_cpu_s = 1e9;
    for (int k = 0; k < BENCH_BEST_OF; k++) {
        struct totals t = {0};
        double t0 = now_s();
        double c0 = cpu_s();
        if (run_seed(d, d->seed, &t) != 0)
            return 0;
        double wall = now_s() - t0;
        double cpu = cpu_s() - c0;
        best = wall < best ? wall : best;
        best_cpu_s = cpu < best_cpu_s ? cpu : best_cpu_s;
        *one = t;
    }
    return best;
}

static void print_one_run(const char *path, const struct totals *one, double best)
{
    printf("bench_sim: %s\n", path);
    printf("one run:   %" PRIu64 " ops, %.1f s simulated in %.1f ms (best of %d): "
           "simulated/wall = %.0f  (target >= 1000)\n",
           one->ops, (double)one->simulated_us / 1e6, best * 1e3, BENCH_BEST_OF,
           (double)one->simulated_us / 1e6 / best);
    printf("cpu:       %.1f ms of CPU (best of %d): simulated/cpu = %.0f\n", best_cpu_s * 1e3,
           BENCH_BEST_OF, (double)one->simulated_us / 1e6 / best_cpu_s);
}

/* ---- versus: an older build's bench_sim, side by side ---------------------- */

/* Runs `old --seeds 0 --drill path` and reads its best one-run time (ms). */
static double old_best_ms(const char *old, const char *path)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s' --drill '%s' --seeds 0 2>/dev/null", old, path);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return 0;
    char line[512];
    double ms = 0;
    while (fgets(line, sizeof(line), p) != NULL) {
        const char *in = strstr(line, " simulated in ");
        if (strncmp(line, "one run:", 8) == 0 && in != NULL)
            ms = strtod(in + strlen(" simulated in "), NULL);
    }
    int status = pclose(p);
    return status == 0 ? ms : 0;
}

static int bench_versus(const struct drill *d, const char *path, const char *old, int rounds)
{
    double old_best = 1e12, new_best = 1e12;
    for (int r = 0; r < rounds; r++) {
        double o = old_best_ms(old, path);
        if (o <= 0) {
            fprintf(stderr, "bench_sim: %s gave no `one run:` line\n", old);
            return 3;
        }
        struct totals one = {0};
        double n = best_run(d, &one) * 1e3;
        if (n <= 0)
            return 3;
        printf("round %d:   old %.1f ms, new %.1f ms (each best of %d)\n", r + 1, o, n,
               BENCH_BEST_OF);
        old_best = o < old_best ? o : old_best;
        new_best = n < new_best ? n : new_best;
    }
    printf("versus:    old build %s: %.1f ms, this build %.1f ms: new is %.2fx as fast "
           "(best of %d rounds, this run)\n",
           old, old_best, new_best, old_best / new_best, rounds);
    return 0;
}

/* ---- recovery: opening a shop, apart from the runs ---------------------------- */

static int64_t no_time(void *ctx)
{
    (void)ctx;
    return 0;
}

struct recovery_shop {
    struct shop_config cfg;
    struct platform_env env;
};

static void recovery_config(struct recovery_shop *r)
{
    faults_vfs_register("rprimary", &(struct faults_host){.skip_real_sync = true, .memory = true});
    faults_vfs_register("rmirror", &(struct faults_host){.skip_real_sync = true, .memory = true});
    r->cfg = (struct shop_config){
        .topology = SHOP_MIRROR,
        .primary = {.node = "rprimary", .path = "/bench/db.sqlite",
                    .vfs = faults_vfs_name("rprimary")},
        .mirror = {.node = "rmirror", .path = "/bench/mirror.sqlite",
                   .vfs = faults_vfs_name("rmirror")},
        .policy = MIRROR_DEGRADE,
        .ack = MIRROR_ACK_BOTH,
        .sync_full = true,
    };
    r->env = (struct platform_env){.now_us = no_time};
}

/* A product, a user and BENCH_RECOVERY_ORDERS orders; round makes them new. */
static int recovery_fill(shop *s, int round, char msg[SHOP_ERRMSG_MAX])
{
    struct shop_product p = {.price_cents = 100, .stock = 1000000};
    snprintf(p.name, sizeof(p.name), "Bench product %d", round);
    char email[64];
    snprintf(email, sizeof(email), "bench%d@bench.example", round);
    int64_t product = shop_product_create(s, &p);
    int64_t user = product < 0 ? product : shop_user_create(s, "Bench", email);
    for (int i = 0; user >= 0 && i < BENCH_RECOVERY_ORDERS; i++) {
        struct shop_order_line line = {.product_id = product, .quantity = 1};
        user = shop_order_create(s, user, &line, 1, NULL) < 0 ? -EIO : user;
    }
    if (user < 0) {
        snprintf(msg, SHOP_ERRMSG_MAX, "%s", shop_errmsg(s));
        return -EIO;
    }
    return 0;
}

static int bench_recovery(void)
{
    faults_init(1);
    struct recovery_shop r;
    recovery_config(&r);
    char msg[SHOP_ERRMSG_MAX];
    shop *s = NULL;
    double t0 = now_s();
    int err = shop_open(&r.cfg, &r.env, &s, msg);
    double fresh = now_s() - t0;
    if (!err)
        err = recovery_fill(s, 1, msg);
    /* A clean close and reopen: what a restart costs with nothing to recover. */
    double clean = 0;
    if (!err) {
        shop_close(s);
        s = NULL;
        t0 = now_s();
        err = shop_open(&r.cfg, &r.env, &s, msg);
        clean = now_s() - t0;
    }
    /* Orders that stay in the WAL, then the process dies: the reopen
     * recovers them from the WAL with an empty WAL-index. */
    if (!err)
        err = recovery_fill(s, 2, msg);
    double recovered = 0;
    uint64_t unsynced = 0;
    if (!err) {
        struct faults_rng rng;
        faults_rng_seed(&rng, 1, "bench");
        unsynced = faults_vfs_unsynced_bytes("rprimary");
        faults_vfs_crash("rprimary", FAULTS_CRASH_PROCESS, &rng, NULL);
        faults_vfs_crash("rmirror", FAULTS_CRASH_PROCESS, &rng, NULL);
        shop_abandon(s);
        s = NULL;
        faults_vfs_restart("rprimary");
        faults_vfs_restart("rmirror");
        t0 = now_s();
        err = shop_open(&r.cfg, &r.env, &s, msg);
        recovered = now_s() - t0;
    }
    shop_close(s);
    faults_vfs_unregister_all();
    if (err) {
        fprintf(stderr, "bench_sim: recovery: %s\n", msg);
        return 3;
    }
    printf("recovery:  open of a new mirrored shop %.0f us; clean reopen %.0f us; reopen "
           "after a process crash (WAL recovery of %d orders, %" PRIu64 " unsynced bytes) "
           "%.0f us\n",
           fresh * 1e6, clean * 1e6, BENCH_RECOVERY_ORDERS, unsynced, recovered * 1e6);
    return 0;
}

/* ---- scale: one drill at growing lengths, each in a child --------------------- */

/*
 * standard.drill's shop, workload and fault pattern over a run long enough
 * for `ops` operations: the pattern of faults, crashes and restarts repeats
 * at most BENCH_PERIODS_MAX times, spread evenly over the run, so a longer
 * run is the same drill with more operations between its events (a run
 * with more restarts would cost more per operation, not because of its
 * length). Stock is large enough that checkouts never run out.
 */
/* --no-session-checks: the scaled drill without read-your-writes and
 * monotonic-reads, to see the simulator's own growth apart from theirs. */
static bool session_checks = true;

static int scaled_text(uint64_t ops, char *out, size_t cap)
{
    int64_t work_us = (int64_t)(ops * 1000000 / BENCH_OPS_PER_S);
    int64_t periods = work_us / BENCH_PERIOD_US;
    periods = periods < 1 ? 1 : periods > BENCH_PERIODS_MAX ? BENCH_PERIODS_MAX : periods;
    int64_t period_s = work_us / periods / 1000000;
    period_s = period_s < 20 ? 20 : period_s;
    int64_t until_s = period_s * periods - 2;
    int n = snprintf(out, cap,
                     "drill \"Benchmark: %" PRIu64 " operations of the standard drill\"\n"
                     "about \"bench_sim's scale figure: standard.drill's workload and faults, "
                     "longer\"\n"
                     "topology mirror policy=degrade latency=1ms jitter=1ms\n"
                     "seed 1\nduration %" PRId64 "s\n"
                     "products 20 stock=100000000 price=1..100\nusers 10\n"
                     "workload shoppers clients=10 rate=80/s "
                     "mix=browse:40,search:10,cart:25,checkout:15,orders:10 until=%" PRId64 "s\n",
                     ops, until_s + 2, until_s);
    static const struct {
        int at_s;
        const char *what;
    } pattern[] = {
        {2, "fault disk/mirror/write errno=EIO p=0.2 for=3s"},
        {6, "fault crash/primary/mirror-between-commits once"},
        {7, "restart primary"},
        {9, "fault disk/primary/fsync p=0.05 for=2s"},
        {12, "crash mirror"},
        {13, "restart mirror"},
        {15, "crash primary"},
        {16, "restart primary"},
    };
    for (int64_t p = 0; p < periods && n > 0 && (size_t)n < cap; p++)
        for (size_t i = 0; i < sizeof(pattern) / sizeof(pattern[0]) && (size_t)n < cap; i++)
            n += snprintf(out + n, cap - (size_t)n, "at %" PRId64 "s %s\n",
                          p * period_s + pattern[i].at_s, pattern[i].what);
    if (n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n,
                      "at %" PRId64 "s drain within=2s\n"
                      "expect no-lost-acks\nexpect mirror-identical\nexpect stock-conserved\n"
                      "expect order-totals\nexpect integrity\nexpect converges\n%s",
                      until_s,
                      session_checks ? "expect read-your-writes\nexpect monotonic-reads\n" : "");
    return n > 0 && (size_t)n < cap ? 0 : -E2BIG;
}

struct scale_result {
    uint64_t ops;
    double wall_s;
    double cpu_s; /* the child's user + system time */
    int64_t simulated_us;
    int pass;
    long maxrss_kb;
    bool ok;
};

/* Runs the scaled drill in a child process; its peak memory is its own. */
static struct scale_result scale_child(uint64_t ops)
{
    struct scale_result res = {0};
    int fds[2];
    if (pipe(fds) != 0)
        return res;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        char *text = malloc(BENCH_DRILL_BYTES);
        struct scale_result r = {0};
        struct drill *d = NULL;
        if (text != NULL && scaled_text(ops, text, BENCH_DRILL_BYTES) == 0)
            d = parse_text("scaled.drill", text);
        struct totals t = {0};
        if (d != NULL) {
            double t0 = now_s();
            if (run_seed(d, 1, &t) == 0) {
                r.wall_s = now_s() - t0;
                r.ops = t.ops;
                r.simulated_us = t.simulated_us;
                r.pass = (int)t.passed;
                r.ok = true;
            }
        }
        ssize_t w = write(fds[1], &r, sizeof(r));
        _exit(w == (ssize_t)sizeof(r) ? 0 : 3);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        return res;
    }
    ssize_t got = read(fds[0], &res, sizeof(res));
    close(fds[0]);
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid || got != (ssize_t)sizeof(res) || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        res.ok = false;
        return res;
    }
    res.maxrss_kb = ru.ru_maxrss;
    res.cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    return res;
}

static int parse_sizes(const char *text, uint64_t *sizes, int *count)
{
    *count = 0;
    for (const char *p = text; *p != '\0' && *count < BENCH_SIZES_MAX;) {
        char *end = NULL;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || v == 0)
            return -EINVAL;
        sizes[(*count)++] = v;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return -EINVAL;
    }
    return *count > 0 ? 0 : -EINVAL;
}

static int bench_scale(const uint64_t *sizes, int count)
{
    /* A short run first: the memory a run needs whatever its length. */
    struct scale_result base = scale_child(1000);
    if (!base.ok) {
        fprintf(stderr, "bench_sim: the scaled drill could not run\n");
        return 3;
    }
    int rc = 0;
    struct scale_result prev = {0};
    for (int i = 0; i < count; i++) {
        struct scale_result r = scale_child(sizes[i]);
        if (!r.ok) {
            fprintf(stderr, "bench_sim: the scaled drill of %" PRIu64 " ops could not run\n",
                    sizes[i]);
            return 3;
        }
        double per_op = r.ops > base.ops ? (double)(r.maxrss_kb - base.maxrss_kb) * 1024.0 /
                                                 (double)(r.ops - base.ops)
                                         : 0;
        printf("scale:     %8" PRIu64 " ops (%6.0f s simulated): %7.2f s wall (cpu %7.2f s), "
               "simulated/wall %5.0f, peak %6.1f MB, %4.0f bytes/op over a 1k-op run%s",
               r.ops, (double)r.simulated_us / 1e6, r.wall_s, r.cpu_s,
               (double)r.simulated_us / 1e6 / r.wall_s, (double)r.maxrss_kb / 1024.0, per_op,
               r.pass ? "" : ", NOT PASSED");
        if (i > 0)
            printf("; x%.1f ops: wall x%.1f, cpu x%.1f, peak x%.1f",
                   (double)r.ops / (double)prev.ops, r.wall_s / prev.wall_s,
                   r.cpu_s / prev.cpu_s, (double)r.maxrss_kb / (double)prev.maxrss_kb);
        printf("\n");
        rc = r.pass ? rc : 1;
        prev = r;
    }
    printf("scale:     targets: wall and memory x10 per x10 ops (+-20%%), <= 300 bytes/op\n");
    return rc;
}

/* ---- seeds ---------------------------------------------------------------------- */

static int bench_seeds(const struct drill *d, unsigned seeds)
{
    struct totals all = {0};
    double t0 = now_s();
    double c0 = cpu_s();
    for (unsigned s = 1; s <= seeds; s++)
        if (run_seed(d, s, &all) != 0)
            return 3;
    double wall = now_s() - t0;
    double cpu = cpu_s() - c0;
    printf("%u seeds:  %.1f s wall, %.1f ms a seed, %.0f ops a seed, %u passed  "
           "(target <= 25 s for 1000); %.1f s of CPU\n",
           seeds, wall, wall * 1e3 / seeds, (double)all.ops / seeds, all.passed, cpu);
    printf("overall:   simulated/wall = %.0f\n", (double)all.simulated_us / 1e6 / wall);
    return all.passed == all.runs ? 0 : 1;
}

/* ---- main ----------------------------------------------------------------------- */

struct args {
    const char *path;
    unsigned seeds;
    uint64_t sizes[BENCH_SIZES_MAX];
    int size_count;
    const char *old;
    int rounds;
    const char *only;
    long long once;
    long long scaled;
};

static int parse_args(int argc, char **argv, struct args *a)
{
    *a = (struct args){.path = BENCH_DRILL, .seeds = 1000, .rounds = BENCH_ROUNDS,
                       .once = -1, .scaled = -1};
    parse_sizes("10000,100000,1000000", a->sizes, &a->size_count);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-session-checks") == 0) {
            session_checks = false;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            return -EINVAL;
        if (strcmp(argv[i], "--drill") == 0)
            a->path = v;
        else if (strcmp(argv[i], "--seeds") == 0)
            a->seeds = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(argv[i], "--sizes") == 0) {
            if (parse_sizes(v, a->sizes, &a->size_count) != 0)
                return -EINVAL;
        } else if (strcmp(argv[i], "--old") == 0)
            a->old = v;
        else if (strcmp(argv[i], "--rounds") == 0)
            a->rounds = atoi(v) > 0 ? atoi(v) : 1;
        else if (strcmp(argv[i], "--only") == 0)
            a->only = v;
        else if (strcmp(argv[i], "--once") == 0)
            a->once = atoll(v);
        else if (strcmp(argv[i], "--scaled") == 0)
            a->scaled = atoll(v);
        else
            return -EINVAL;
        i++;
    }
    return 0;
}

static bool wants(const struct args *a, const char *part)
{
    return a->only == NULL || strcmp(a->only, part) == 0;
}

int main(int argc, char **argv)
{
    struct args a;
    if (parse_args(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: bench_sim [--drill FILE] [--seeds N] [--sizes N,N,...] "
                        "[--old PATH] [--rounds N]\n"
                        "                 [--only standard|versus|recovery|scale|seeds] "
                        "[--once SEED] [--scaled OPS] [--no-session-checks]\n");
        return 2;
    }
    if (a.scaled > 0) {
        static char text[BENCH_DRILL_BYTES];
        if (scaled_text((uint64_t)a.scaled, text, sizeof(text)) != 0)
            return 3;
        fputs(text, stdout);
        return 0;
    }
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    if (d == NULL || errs == NULL || drill_parse_file(a.path, d, errs) != 0) {
        if (errs != NULL)
            drill_errors_print(a.path, errs, stderr);
        return 3;
    }
    free(errs);
    int rc = 0;
    if (a.once >= 0) {
        struct totals t = {0};
        rc = run_seed(d, (uint64_t)a.once, &t) != 0 ? 3 : t.passed == 1 ? 0 : 1;
        free(d);
        return rc;
    }
    if (wants(&a, "standard")) {
        struct totals one = {0};
        double best = best_run(d, &one);
        if (best <= 0)
            return 3;
        print_one_run(a.path, &one, best);
    }
    if (a.old != NULL && wants(&a, "versus") && rc != 3) {
        int r = bench_versus(d, a.path, a.old, a.rounds);
        rc = r > rc ? r : rc;
    }
    if (a.seeds == 0)
        goto out; /* the one-run figure only, as an older build is asked for it */
    if (wants(&a, "recovery") && rc != 3) {
        int r = bench_recovery();
        rc = r > rc ? r : rc;
    }
    if (wants(&a, "seeds") && rc != 3) {
        int r = bench_seeds(d, a.seeds);
        rc = r > rc ? r : rc;
    }
    if (wants(&a, "scale") && rc != 3) {
        int r = bench_scale(a.sizes, a.size_count);
        rc = r > rc ? r : rc;
    }
out:
    free(d);
    return rc;
}
