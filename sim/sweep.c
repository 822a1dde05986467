/*
 * sweep.c — `faultdrill sweep`: every drill for every seed of a range, in
 * long-lived forked workers (pool.h), so a passing seed costs one simulation
 * and nothing else: no process start, no report files. A failing seed gets
 * its report directory, written by the worker that ran it. The parent
 * collects one record per run (sweep.h), reruns a share of the seeds to check
 * that their traces come out the same (--recheck), and writes sweep.json,
 * sweep.md and the JUnit file.
 *
 * --shard K/N takes the seeds whose index in the range is K-1 modulo N, so N
 * machines together run the sweep once; which seeds are rechecked depends on
 * the index in the whole range, so the shards' rechecks are the unsharded
 * sweep's too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cli.h"
#include "sim/pool.h"
#include "sim/sweep.h"

#define SWEEP_RUN_WALL_MS_MAX (10 * 60 * 1000) /* one run; longer is a hang */
/* Test-only hooks that tests/sim/sweep_test.sh plants: a recheck of this seed
 * runs with a perturbed drill, the way a determinism leak would show; a worker
 * that reaches this seed aborts, the way a crash of the simulator would. */
#define SWEEP_PERTURB_ENV "FAULTDRILL_TEST_PERTURB_SEED"
#define SWEEP_ABORT_ENV "FAULTDRILL_TEST_ABORT_SEED"

static const char usage_sweep[] =
    "usage: faultdrill sweep DRILL|DIR... --seeds A-B [--jobs N] [--shard K/N]\n"
    "                        [--recheck PCT] [--out DIR] [--junit FILE]\n"
    "\n"
    "Runs every drill for every seed from A to B in N worker processes (default:\n"
    "one per core). Only failing seeds get reports, in OUT/<drill>/seed-<N>/;\n"
    "OUT/sweep.json and OUT/sweep.md list every drill x seed (verdict, failing\n"
    "invariants, trace_sha256, wall_ms). Prints a summary table and each failing\n"
    "seed's replay command.\n"
    "\n"
    "  --seeds A-B    the seeds (a single number: one seed)\n"
    "  --jobs N       worker processes (default: the number of cores)\n"
    "  --shard K/N    only the seeds whose index in A-B is K-1 modulo N; join the\n"
    "                 shards with `faultdrill report merge`\n"
    "  --recheck PCT  rerun PCT% of the seeds and fail when a trace differs\n"
    "  --out DIR      where results go (default faultdrill-out)\n"
    "  --junit FILE   JUnit XML: one testcase per drill x seed x expectation\n"
    "\n"
    "Fails (exit 1) when a seed does not meet its expectations, a rerun trace\n"
    "differs (not deterministic) or a fault statement fired in none of the seeds\n"
    "(one shard of several leaves that to report merge); exit 3 when a run could\n"
    "not run.\n";

struct sweep_task {
    uint32_t drill;
    bool recheck;
    uint64_t seed;
    size_t original; /* a recheck: the task it repeats */
};

struct sweep_args {
    struct cli_files files;
    uint64_t first, last;
    bool seeds_given;
    int jobs;
    unsigned shard_index, shard_count;
    unsigned recheck_pct;
    const char *out;
    bool out_given; /* the replay lines say it too */
    const char *junit;
};

struct sweep_ctx {
    struct drill **drills;
    struct sweep *sw;
    struct sweep_task *tasks;
    size_t task_count;
    const char *out;
    bool perturb, abort;
    uint64_t perturb_seed, abort_seed;
};

/* ---- arguments ------------------------------------------------------------------ */

static int parse_range(const char *text, uint64_t *a, uint64_t *b)
{
    char buf[64];
    if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf))
        return -EINVAL;
    char *dash = strchr(buf, '-');
    if (dash != NULL)
        *dash = '\0';
    if (cli_parse_u64(buf, a) != 0 || (dash ? cli_parse_u64(dash + 1, b) : 0) != 0)
        return -EINVAL;
    if (dash == NULL)
        *b = *a;
    return *a <= *b ? 0 : -EINVAL;
}

static int parse_shard(const char *text, unsigned *k, unsigned *n)
{
    char buf[64];
    if (snprintf(buf, sizeof(buf), "%s", text) >= (int)sizeof(buf))
        return -EINVAL;
    char *slash = strchr(buf, '/');
    uint64_t kk, nn;
    if (slash == NULL)
        return -EINVAL;
    *slash = '\0';
    if (cli_parse_u64(buf, &kk) != 0 || cli_parse_u64(slash + 1, &nn) != 0 || kk < 1 ||
        kk > nn || nn > 1000000)
        return -EINVAL;
    *k = (unsigned)kk;
    *n = (unsigned)nn;
    return 0;
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "faultdrill sweep: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", usage_sweep);
    va_end(ap);
    return EXIT_USAGE;
}

/* 0, -1 after --help, or an exit code after printing why. */
static int parse_args(int argc, char **argv, struct sweep_args *a)
{
    *a = (struct sweep_args){.jobs = cli_cores(), .shard_index = 1, .shard_count = 1,
                             .out = "faultdrill-out"};
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t v;
        if (cli_is_help(arg)) {
            fputs(usage_sweep, stdout);
            return -1;
        } else if (arg[0] == '-' && val == NULL) {
            return usage_error("'%s' needs a value or is unknown", arg);
        } else if (strcmp(arg, "--seeds") == 0) {
            if (parse_range(argv[++i], &a->first, &a->last) != 0 || a->last > SWEEP_SEED_MAX)
                return usage_error("--seeds takes A-B with A <= B <= 2^53, not '%s'", val);
            a->seeds_given = true;
        } else if (strcmp(arg, "--jobs") == 0) {
            if (cli_parse_u64(argv[++i], &v) != 0 || v < 1 || v > POOL_WORKERS_MAX)
                return usage_error("--jobs takes 1 to 256, not '%s'", val);
            a->jobs = (int)v;
        } else if (strcmp(arg, "--shard") == 0) {
            if (parse_shard(argv[++i], &a->shard_index, &a->shard_count) != 0)
                return usage_error("--shard takes K/N with 1 <= K <= N, not '%s'", val);
        } else if (strcmp(arg, "--recheck") == 0) {
            const char *t = argv[++i];
            char num[16];
            size_t n = strlen(t);
            snprintf(num, sizeof(num), "%.*s", (int)(n > 0 && t[n - 1] == '%' ? n - 1 : n), t);
            if (cli_parse_u64(num, &v) != 0 || v > 100)
                return usage_error("--recheck takes a percentage from 0 to 100, not '%s'", val);
            a->recheck_pct = (unsigned)v;
        } else if (strcmp(arg, "--out") == 0) {
            a->out = argv[++i];
            a->out_given = true;
        } else if (strcmp(arg, "--junit") == 0) {
            a->junit = argv[++i];
        } else if (arg[0] == '-') {
            return usage_error("unknown option '%s'", arg);
        } else if (cli_files_collect(&a->files, arg) != 0) {
            return EXIT_USAGE;
        }
    }
    if (a->files.count == 0)
        return usage_error("%s", "no drill given");
    if (!a->seeds_given)
        return usage_error("%s", "--seeds A-B is required");
    if (a->last - a->first + 1 == 0 || a->last - a->first >= SWEEP_RUNS_MAX)
        return usage_error("%s", "too many seeds (at most 2^32 in one sweep)");
    return 0;
}

/* ---- the worker side ---------------------------------------------------------------- */

static int append_text(struct pool_buf *out, const char *text)
{
    return pool_buf_append(out, text, strlen(text));
}

static int sweep_work(void *ctxp, uint64_t id, struct pool_buf *out)
{
    struct sweep_ctx *ctx = ctxp;
    const struct sweep_task *t = &ctx->tasks[id];
    const struct drill *d = ctx->drills[t->drill];
    struct drill *perturbed = NULL;
    if (ctx->abort && t->seed == ctx->abort_seed)
        abort();
    if (t->recheck && ctx->perturb && t->seed == ctx->perturb_seed) {
        perturbed = malloc(sizeof(*perturbed));
        if (perturbed == NULL)
            return append_text(out, "out of memory"), -ENOMEM;
        *perturbed = *d;
        perturbed->topology.latency_us += 1;
        d = perturbed;
    }
    char replay[1024], msg[REPORT_ERR_MAX] = "";
    cli_replay(replay, sizeof(replay), false, d->file, t->seed, ctx->sw->out);
    struct sim_options opt = {.seed = t->seed, .seed_given = true, .replay = replay};
    struct report_run rep;
    int64_t t0 = cli_now_ms();
    int err = sim_run(d, &opt, &rep, msg);
    free(perturbed);
    if (err) {
        append_text(out, msg);
        return err;
    }
    rep.wall_ms = cli_now_ms() - t0;
    if (!rep.pass && !t->recheck) {
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s/%s/seed-%" PRIu64, ctx->out, rep.drill_name, t->seed);
        err = cli_mkdir_p(dir, msg);
        if (!err)
            err = report_write_dir(&rep, dir, msg);
        if (err) {
            sim_result_release(&rep);
            append_text(out, "cannot write the reports: ");
            append_text(out, msg);
            return err;
        }
    }
    struct sweep_run run;
    err = sweep_run_from_report(ctx->sw, t->drill, &rep, &run);
    sim_result_release(&rep);
    char *json = err ? NULL : sweep_run_to_json(ctx->sw, &run);
    sweep_run_release(&run);
    if (json == NULL)
        return append_text(out, "out of memory"), -ENOMEM;
    err = append_text(out, json);
    free(json);
    return err;
}

/* ---- the parent side ----------------------------------------------------------------- */

/* Seed index i of the whole range is rechecked: PCT% of them, evenly spread, the first
 * one always (so a small sweep still rechecks something). */
static bool is_rechecked(uint64_t i, unsigned pct)
{
    if (pct == 0)
        return false;
    uint64_t before = (i * pct + 99) / 100, after = ((i + 1) * pct + 99) / 100;
    return after > before;
}

static int plan(const struct sweep_args *a, struct sweep_ctx *ctx)
{
    uint64_t range = a->last - a->first + 1;
    uint64_t per_drill = range / a->shard_count + 1;
    uint64_t max = per_drill * 2 * ctx->sw->drill_count;
    ctx->tasks = calloc(max, sizeof(*ctx->tasks));
    if (ctx->tasks == NULL)
        return -ENOMEM;
    size_t n = 0;
    for (uint64_t i = a->shard_index - 1; i < range; i += a->shard_count)
        for (size_t d = 0; d < ctx->sw->drill_count; d++)
            ctx->tasks[n++] = (struct sweep_task){.drill = (uint32_t)d, .seed = a->first + i};
    size_t mains = n;
    for (size_t k = 0; k < mains; k++) {
        uint64_t i = ctx->tasks[k].seed - a->first;
        if (is_rechecked(i, a->recheck_pct)) {
            ctx->tasks[n] = ctx->tasks[k];
            ctx->tasks[n].recheck = true;
            ctx->tasks[n++].original = k;
        }
    }
    ctx->task_count = n;
    return 0;
}

static int load_drills(const struct sweep_args *a, struct sweep_ctx *ctx)
{
    ctx->drills = calloc(a->files.count, sizeof(*ctx->drills));
    if (ctx->drills == NULL)
        return EXIT_CANNOT_RUN;
    int code = 0;
    for (size_t i = 0; i < a->files.count; i++) {
        ctx->drills[i] = cli_drill_load(a->files.paths[i]);
        if (ctx->drills[i] == NULL) {
            code = EXIT_USAGE;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (ctx->drills[j] != NULL && strcmp(ctx->drills[j]->name, ctx->drills[i]->name) == 0) {
                fprintf(stderr,
                        "faultdrill sweep: %s and %s have the same name: their reports "
                        "would share OUT/%s/\n",
                        ctx->drills[j]->file, ctx->drills[i]->file, ctx->drills[i]->name);
                code = EXIT_USAGE;
            }
        }
        if (code == 0 && sweep_add_drill(ctx->sw, ctx->drills[i]) != 0)
            code = EXIT_CANNOT_RUN;
    }
    return code;
}

/* The record of a run that produced none. */
static void error_run(const struct sweep_task *t, const char *why, struct sweep_run *run)
{
    memset(run, 0, sizeof(*run));
    run->drill = t->drill;
    run->seed = t->seed;
    run->verdict = SWEEP_ERROR;
    run->error = strdup(why[0] ? why : "no reason given");
}

/* Takes in one finished task; 0, or -errno when the sweep cannot go on. */
static int collect(struct sweep_ctx *ctx, const struct pool_result *r, size_t *run_of,
                   char (*recheck)[65])
{
    const struct sweep_task *t = &ctx->tasks[r->id];
    struct sweep_run run;
    char err[REPORT_ERR_MAX];
    if (t->recheck) {
        if (r->status == POOL_DONE && sweep_run_parse(ctx->sw, r->data, &run, err) == 0) {
            snprintf(recheck[r->id], sizeof(recheck[r->id]), "%s", run.trace_sha256);
            sweep_run_release(&run);
        }
        return 0;
    }
    if (r->status == POOL_DONE) {
        if (sweep_run_parse(ctx->sw, r->data, &run, err) != 0) {
            fprintf(stderr, "faultdrill sweep: a worker sent a bad record: %s\n", err);
            return -EPROTO;
        }
    } else {
        error_run(t, r->status == POOL_FAILED ? r->data : r->why, &run);
        if (run.error == NULL)
            return -ENOMEM;
    }
    run.wall_ms = r->wall_ms;
    run_of[r->id] = ctx->sw->run_count;
    int rc = sweep_add_run(ctx->sw, &run);
    if (rc != 0)
        sweep_run_release(&run);
    return rc;
}

static void attach_rechecks(struct sweep_ctx *ctx, const size_t *run_of, char (*recheck)[65])
{
    for (size_t k = 0; k < ctx->task_count; k++) {
        const struct sweep_task *t = &ctx->tasks[k];
        if (!t->recheck)
            continue;
        struct sweep_run *run = &ctx->sw->runs[run_of[t->original]];
        run->rechecked = true;
        snprintf(run->recheck_sha256, sizeof(run->recheck_sha256), "%s", recheck[k]);
    }
}

static int execute(const struct sweep_args *a, struct sweep_ctx *ctx)
{
    size_t *run_of = calloc(ctx->task_count + 1, sizeof(*run_of));
    char (*recheck)[65] = calloc(ctx->task_count + 1, sizeof(*recheck));
    char why[256];
    struct pool *p = NULL;
    int rc = -ENOMEM;
    if (run_of == NULL || recheck == NULL)
        goto out_free;
    p = pool_create(a->jobs, sweep_work, ctx, SWEEP_RUN_WALL_MS_MAX, why);
    if (p == NULL) {
        fprintf(stderr, "faultdrill sweep: %s\n", why);
        rc = -EAGAIN;
        goto out_free;
    }
    for (size_t k = 0; k < ctx->task_count; k++)
        if ((rc = pool_submit(p, k)) != 0)
            goto out_free;
    struct cli_progress progress;
    cli_progress_start(&progress, "sweep", ctx->task_count);
    uint64_t done = 0, failures = 0;
    struct pool_result r;
    while ((rc = pool_wait(p, &r)) == 0) {
        if ((rc = collect(ctx, &r, run_of, recheck)) != 0)
            break;
        done++;
        if (!ctx->tasks[r.id].recheck && ctx->sw->runs[ctx->sw->run_count - 1].verdict != SWEEP_PASS)
            failures++;
        cli_progress_update(&progress, done, failures);
    }
    cli_progress_end(&progress);
    if (rc == -ENOENT) {
        rc = 0;
        attach_rechecks(ctx, run_of, recheck);
    } else {
        fprintf(stderr, "faultdrill sweep: stopped: %s\n", strerror(-rc));
    }
out_free:
    pool_free(p);
    free(run_of);
    free(recheck);
    return rc;
}

int sweep_main(int argc, char **argv)
{
    struct sweep_args a;
    int code = parse_args(argc, argv, &a);
    if (code != 0) {
        cli_files_release(&a.files);
        return code < 0 ? EXIT_MET : code;
    }
    struct sweep sw = {.seed_first = a.first, .seed_last = a.last, .shard_index = a.shard_index,
                       .shard_count = a.shard_count, .recheck_pct = a.recheck_pct,
                       .out = a.out_given ? a.out : NULL};
    struct sweep_ctx ctx = {.sw = &sw, .out = a.out};
    const char *perturb = getenv(SWEEP_PERTURB_ENV);
    const char *abort_at = getenv(SWEEP_ABORT_ENV);
    ctx.perturb = perturb != NULL && cli_parse_u64(perturb, &ctx.perturb_seed) == 0;
    ctx.abort = abort_at != NULL && cli_parse_u64(abort_at, &ctx.abort_seed) == 0;
    code = load_drills(&a, &ctx);
    if (code == 0 && plan(&a, &ctx) != 0)
        code = EXIT_CANNOT_RUN;
    if (code == 0 && execute(&a, &ctx) != 0)
        code = EXIT_CANNOT_RUN;
    if (code == 0) {
        char err[REPORT_ERR_MAX];
        sweep_sort(&sw);
        if (sweep_write(&sw, a.out, a.junit, err) != 0) {
            fprintf(stderr, "faultdrill sweep: %s\n", err);
            code = EXIT_CANNOT_RUN;
        } else {
            struct sweep_totals t;
            sweep_print_summary(&sw, stdout);
            code = sweep_judge(&sw, &t);
        }
    }
    for (size_t i = 0; ctx.drills != NULL && i < a.files.count; i++)
        free(ctx.drills[i]);
    free(ctx.drills);
    free(ctx.tasks);
    sweep_release(&sw);
    cli_files_release(&a.files);
    return code;
}
