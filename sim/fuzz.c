/*
 * fuzz.c — `faultdrill fuzz`: generates drills (fuzzgen.c), runs them in
 * forked workers (pool.h), and for every failure keeps the drill, shrunk
 * (shrink.h) into OUT/failures/<n>.drill with its seed and explanation.
 *
 * A finding is an expectation of a correct mode that came out violated, a
 * run that could not run (a crash, a hang or an error of the simulator), or
 * a rerun whose trace differed (every 50th drill is run twice). Findings are
 * grouped by signature (topology, invariant) so one bug seen a hundred times
 * is one line; the first few of each are shrunk, the rest kept as generated.
 * An expectation that its drill did not exercise is not a finding: it is
 * counted apart, per invariant, as a measure of the generator.
 *
 * Reproducible from --seed: drill n is a function of (seed, n) alone, so the
 * same seed and run count give the same drills, verdicts and files whatever
 * --jobs is.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim/cli.h"
#include "sim/fuzz.h"
#include "sim/pool.h"
#include "sim/shrink.h"

#define FUZZ_RUN_WALL_MS_MAX (120 * 1000) /* one generated drill; longer is a hang */
#define FUZZ_SHRINK_WALL_MS_MAX (30 * 60 * 1000)
#define FUZZ_RECHECK_EVERY 50
#define FUZZ_SHRINK_PER_SIGNATURE 2
#define FUZZ_SIGNATURES_MAX 256
#define FUZZ_KEPT_MAX 64 /* drills kept per signature */
#define FUZZ_INVARIANTS_MAX 32

enum task_kind {
    TASK_RUN = 0,
    TASK_RECHECK = 1,
    TASK_SHRINK = 2,
};
#define TASK_ID(kind, index) (((uint64_t)(kind) << 56) | (index))
#define TASK_KIND(id) ((enum task_kind)((id) >> 56))
#define TASK_INDEX(id) ((id) & ((UINT64_C(1) << 56) - 1))

static const char usage_fuzz[] =
    "usage: faultdrill fuzz [--topology T] [--runs N | --time DUR] [--seed S] [--jobs N]\n"
    "                       [--out DIR] [--show N] [--first]\n"
    "\n"
    "Generates valid random drills for every topology this build runs (their\n"
    "options in the correct modes, workloads, faults from the catalog at random\n"
    "times, crashes, restarts, partitions, offline switches, failovers, a drain)\n"
    "expecting what the correct modes promise, runs them in worker processes, and\n"
    "writes each failure, shrunk, to OUT/failures/<n>.drill with its seed and\n"
    "explanation (the drill as generated beside it, <n>.original.drill).\n"
    "Reproducible: drill n depends only on the fuzz seed and n.\n"
    "\n"
    "  --topology T  only topology T (its component words, e.g. \"mirror\")\n"
    "  --runs N      run N drills (default 1000)\n"
    "  --time DUR    run drills for DUR of wall time instead (e.g. 10m)\n"
    "  --seed S      the fuzz seed (default: from the clock, printed)\n"
    "  --jobs N      worker processes (default: the number of cores)\n"
    "  --out DIR     where failures and fuzz.json go (default faultdrill-out)\n"
    "  --show N      print drill N of the seed and exit\n"
    "  --first       stop at the first failing drill, unshrunk, and print its\n"
    "                number: how many drills a bug takes to find\n"
    "\n"
    "Exit codes: 0 nothing found, 1 a failing drill was found, 2 bad usage,\n"
    "3 could not run (or the generator wrote a drill that does not parse).\n";

struct fuzz_args {
    const char *topology;
    uint64_t runs;
    int64_t time_us;
    uint64_t seed;
    bool seed_given;
    int jobs;
    const char *out;
    bool show;
    uint64_t show_index;
    bool first;
};

struct fuzz_ctx {
    struct fuzz_space space;
    uint64_t seed;
};

/* What fuzz found, grouped. */
struct signature {
    char key[200];          /* "mirror: no-lost-acks violated" */
    char invariant[48];     /* "" for errors and nondeterminism */
    uint64_t count;
    size_t kept;
    uint64_t indices[FUZZ_KEPT_MAX];
    char explanation[REPORT_TEXT_MAX]; /* of the first one */
    size_t shrinks_asked;
};

struct findings {
    size_t count;
    struct signature sig[FUZZ_SIGNATURES_MAX];
    uint64_t runs, passed, failed_runs, unexercised_runs, generator_errors;
    char unexercised_names[FUZZ_INVARIANTS_MAX][48];
    uint64_t unexercised_counts[FUZZ_INVARIANTS_MAX];
    size_t unexercised_kinds;
    uint64_t ops;
    char (*sha)[65]; /* per run index, for the rechecks */
    uint64_t sha_count;
};

/* ---- the worker side --------------------------------------------------------------- */

static int append(struct pool_buf *out, const char *text)
{
    return pool_buf_append(out, text, strlen(text));
}

static int emit(struct pool_buf *out, cJSON *o)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (text == NULL)
        return append(out, "out of memory"), -ENOMEM;
    int rc = append(out, text);
    free(text);
    return rc;
}

/* The generated drill n, parsed; NULL (with why in out) when it does not parse. */
static struct drill *generated(const struct fuzz_ctx *ctx, uint64_t n, char *text,
                               struct pool_buf *out, char file[64])
{
    snprintf(file, 64, "%" PRIu64 ".drill", n);
    if (fuzz_generate(&ctx->space, ctx->seed, n, text, FUZZ_DRILL_BYTES_MAX) != 0) {
        append(out, "the generator overflowed its buffer");
        return NULL;
    }
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    if (d == NULL || errs == NULL || cli_drill_parse(file, text, strlen(text), d, errs) != 0) {
        char why[400];
        snprintf(why, sizeof(why), "generated drill %" PRIu64 " does not parse: %d:%d: %s\n", n,
                 errs ? errs->e[0].line : 0, errs ? errs->e[0].col : 0,
                 errs ? errs->e[0].msg : "out of memory");
        append(out, why);
        append(out, text);
        free(d);
        d = NULL;
    }
    free(errs);
    return d;
}

static cJSON *run_record(const struct report_run *rep)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *found = cJSON_AddArrayToObject(o, "findings");
    cJSON *unex = cJSON_AddArrayToObject(o, "unexercised");
    cJSON_AddStringToObject(o, "sha", rep->trace_sha256);
    cJSON_AddNumberToObject(o, "ops", (double)rep->total_ops);
    for (size_t i = 0; i < rep->expectation_count; i++) {
        const struct report_expectation *e = &rep->expectations[i];
        if (e->ok)
            continue;
        if (strcmp(report_observed(e), "unexercised") == 0) {
            cJSON_AddItemToArray(unex, cJSON_CreateString(e->invariant));
            continue;
        }
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "invariant", e->invariant);
        cJSON_AddStringToObject(f, "observed", report_observed(e));
        cJSON_AddStringToObject(f, "explanation", e->explanation);
        cJSON_AddItemToArray(found, f);
    }
    return o;
}

static int shrink_record(const char *file, const char *text, const struct drill *d,
                         const char *invariant, struct pool_buf *out)
{
    struct shrink_result r;
    char err[REPORT_ERR_MAX] = "";
    int rc = shrink_drill(file, text, d->seed, invariant, &r, err);
    if (rc != 0)
        return append(out, err), rc;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "text", r.text);
    cJSON_AddStringToObject(o, "explanation", r.explanation);
    cJSON_AddNumberToObject(o, "statements_before", (double)r.before.statements);
    cJSON_AddNumberToObject(o, "statements_after", (double)r.after.statements);
    cJSON_AddNumberToObject(o, "ops_before", (double)r.before.ops);
    cJSON_AddNumberToObject(o, "ops_after", (double)r.after.ops);
    cJSON_AddNumberToObject(o, "runs", r.runs);
    shrink_result_release(&r);
    return emit(out, o);
}

/* Task data for a shrink: the invariant to keep travels in the parent's table,
 * which the worker cannot see after the fork; so a shrink re-runs the drill
 * first and keeps its first violated invariant, as the parent did. */
static const char *first_violated(const struct drill *d, uint64_t seed, char inv[48])
{
    struct sim_options opt = {.seed = seed, .seed_given = true};
    struct report_run rep;
    char msg[REPORT_ERR_MAX];
    inv[0] = '\0';
    if (sim_run(d, &opt, &rep, msg) != 0)
        return NULL;
    for (size_t i = 0; i < rep.expectation_count && inv[0] == '\0'; i++)
        if (!rep.expectations[i].ok && rep.expectations[i].observed_violated)
            snprintf(inv, 48, "%s", rep.expectations[i].invariant);
    sim_result_release(&rep);
    return inv[0] ? inv : NULL;
}

static int fuzz_work(void *ctxp, uint64_t id, struct pool_buf *out)
{
    const struct fuzz_ctx *ctx = ctxp;
    uint64_t n = TASK_INDEX(id);
    char *text = malloc(FUZZ_DRILL_BYTES_MAX);
    char file[64];
    if (text == NULL)
        return append(out, "out of memory"), -ENOMEM;
    struct drill *d = generated(ctx, n, text, out, file);
    int rc = -EPROTO;
    if (d != NULL && TASK_KIND(id) == TASK_SHRINK) {
        char inv[48];
        const char *keep = first_violated(d, d->seed, inv);
        rc = shrink_record(file, text, d, keep, out);
    } else if (d != NULL) {
        struct sim_options opt = {.seed = d->seed, .seed_given = true};
        struct report_run rep;
        char msg[REPORT_ERR_MAX] = "";
        rc = sim_run(d, &opt, &rep, msg);
        if (rc != 0) {
            append(out, msg);
        } else {
            rc = emit(out, run_record(&rep));
            sim_result_release(&rep);
        }
    }
    free(d);
    free(text);
    return rc;
}

/* ---- the parent side --------------------------------------------------------------- */

static struct signature *signature_of(struct findings *f, const char *key, const char *invariant)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->sig[i].key, key) == 0)
            return &f->sig[i];
    if (f->count == FUZZ_SIGNATURES_MAX)
        return NULL;
    struct signature *s = &f->sig[f->count++];
    memset(s, 0, sizeof(*s));
    snprintf(s->key, sizeof(s->key), "%s", key);
    snprintf(s->invariant, sizeof(s->invariant), "%s", invariant);
    return s;
}

/* Records one finding of drill n. Which drills a signature keeps (and shrinks) and
 * whose explanation it shows go by drill number, not by which worker was first,
 * so the outcome does not depend on --jobs. */
static void found(struct findings *f, uint64_t n, const char *key, const char *invariant,
                  const char *explanation)
{
    struct signature *s = signature_of(f, key, invariant);
    if (s == NULL)
        return;
    if (s->count == 0 || n < s->indices[0])
        snprintf(s->explanation, sizeof(s->explanation), "%s", explanation);
    s->count++;
    size_t at = s->kept;
    while (at > 0 && s->indices[at - 1] > n)
        at--;
    if (at == FUZZ_KEPT_MAX)
        return;
    size_t last = s->kept < FUZZ_KEPT_MAX ? s->kept : FUZZ_KEPT_MAX - 1;
    memmove(s->indices + at + 1, s->indices + at, (last - at) * sizeof(*s->indices));
    s->indices[at] = n;
    if (s->kept < FUZZ_KEPT_MAX)
        s->kept++;
}

static int by_first_drill(const void *a, const void *b)
{
    const struct signature *x = a, *y = b;
    return x->indices[0] < y->indices[0] ? -1 : x->indices[0] > y->indices[0];
}

static void count_unexercised(struct findings *f, const char *inv)
{
    for (size_t i = 0; i < f->unexercised_kinds; i++)
        if (strcmp(f->unexercised_names[i], inv) == 0) {
            f->unexercised_counts[i]++;
            return;
        }
    if (f->unexercised_kinds == FUZZ_INVARIANTS_MAX)
        return;
    snprintf(f->unexercised_names[f->unexercised_kinds], 48, "%s", inv);
    f->unexercised_counts[f->unexercised_kinds++] = 1;
}

/* The topology words of drill n ("mirror"), for grouping findings. */
static void set_of(const struct fuzz_ctx *ctx, uint64_t n, char words[64])
{
    char *text = malloc(FUZZ_DRILL_BYTES_MAX);
    words[0] = '\0';
    if (text == NULL || fuzz_generate(&ctx->space, ctx->seed, n, text, FUZZ_DRILL_BYTES_MAX) != 0) {
        free(text);
        return;
    }
    const char *t = strstr(text, "\ntopology ");
    size_t len = 0;
    for (const char *w = t ? t + 10 : ""; *w != '\0' && *w != '\n';) {
        size_t wl = strcspn(w, " \n");
        if (memchr(w, '=', wl) != NULL)
            break; /* the options begin */
        len = (size_t)(w + wl - (t + 10));
        w += wl;
        while (*w == ' ')
            w++;
    }
    if (t != NULL)
        snprintf(words, 64, "%.*s", (int)len, t + 10);
    free(text);
}

/* The worker's record of one run: findings with three strings each, unexercised as strings. */
static bool well_formed(const cJSON *o)
{
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(o, "findings");
    const cJSON *un = cJSON_GetObjectItemCaseSensitive(o, "unexercised");
    if (!cJSON_IsObject(o) || !cJSON_IsArray(fs) || !cJSON_IsArray(un))
        return false;
    const cJSON *e;
    cJSON_ArrayForEach(e, fs)
    {
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "invariant")) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "observed")) ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "explanation")))
            return false;
    }
    cJSON_ArrayForEach(e, un)
    {
        if (!cJSON_IsString(e))
            return false;
    }
    return true;
}

static void take_run(const struct fuzz_ctx *ctx, struct findings *f, const struct pool_result *r)
{
    uint64_t n = TASK_INDEX(r->id);
    char set[64], key[200];
    set_of(ctx, n, set);
    f->runs++;
    if (r->status != POOL_DONE) {
        const char *why = r->status == POOL_FAILED ? r->data : r->why;
        bool gen = r->status == POOL_FAILED && r->err == -EPROTO;
        if (gen) {
            f->generator_errors++;
            fprintf(stderr, "faultdrill fuzz: %s\n", why);
            return;
        }
        f->failed_runs++;
        snprintf(key, sizeof(key), "%s: could not run: %.80s", set,
                 r->status == POOL_DIED ? "the simulator crashed"
                 : r->status == POOL_TIMEOUT ? "the simulator hung"
                                             : why);
        found(f, n, key, "", why);
        return;
    }
    cJSON *o = cJSON_Parse(r->data);
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(o, "sha");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(o, "ops");
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(o, "findings");
    const cJSON *un = cJSON_GetObjectItemCaseSensitive(o, "unexercised");
    if (!well_formed(o)) { /* our own worker wrote it: a bench bug, said out loud */
        f->failed_runs++;
        snprintf(key, sizeof(key), "%s: could not run: the worker's result is malformed", set);
        found(f, n, key, "", "the worker's result lacks a field or has one of the wrong type");
        cJSON_Delete(o);
        return;
    }
    if (cJSON_IsString(sha) && n < f->sha_count)
        snprintf(f->sha[n], 65, "%s", sha->valuestring);
    if (cJSON_IsNumber(ops))
        f->ops += (uint64_t)ops->valuedouble;
    const cJSON *e;
    bool failed = false;
    cJSON_ArrayForEach(e, fs)
    {
        const char *inv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "invariant"));
        const char *obs = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "observed"));
        const char *why = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "explanation"));
        if (!failed) { /* a run counts once, under its first violation */
            snprintf(key, sizeof(key), "%s: %s %s", set, inv, obs);
            found(f, n, key, inv, why);
        }
        failed = true;
    }
    bool unexercised = false;
    cJSON_ArrayForEach(e, un)
    {
        count_unexercised(f, e->valuestring);
        unexercised = true;
    }
    f->failed_runs += failed;
    f->unexercised_runs += !failed && unexercised;
    f->passed += !failed && !unexercised;
    cJSON_Delete(o);
}

static void take_recheck(const struct fuzz_ctx *ctx, struct findings *f,
                         const struct pool_result *r)
{
    uint64_t n = TASK_INDEX(r->id);
    if (r->status != POOL_DONE || n >= f->sha_count)
        return; /* the first run reports its own errors */
    cJSON *o = cJSON_Parse(r->data);
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(o, "sha");
    if (cJSON_IsString(sha) && f->sha[n][0] != '\0' && strcmp(sha->valuestring, f->sha[n]) != 0) {
        char set[64], key[200], why[300];
        set_of(ctx, n, set);
        snprintf(key, sizeof(key), "%s: not deterministic", set);
        snprintf(why, sizeof(why), "run twice, drill %" PRIu64 " gave trace %.12s… then %.12s…",
                 n, f->sha[n], sha->valuestring);
        found(f, n, key, "", why);
    }
    cJSON_Delete(o);
}

/* ---- files ------------------------------------------------------------------------------ */

static int write_file(const char *path, const char *head, const char *text)
{
    FILE *out = fopen(path, "w");
    if (out == NULL)
        return -errno;
    fputs(head, out);
    fputs(text, out);
    return fclose(out) == 0 ? 0 : -errno;
}

/* "# " before every line of text, into buf. */
static void commented(const char *text, char *buf, size_t len)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, len - n, "#   ");
    for (const char *c = text; *c != '\0' && n + 8 < len; c++) {
        buf[n++] = *c;
        if (*c == '\n')
            n += (size_t)snprintf(buf + n, len - n, "#   ");
    }
    snprintf(buf + n, len - n, "\n");
}

static int write_shrunk(const struct fuzz_args *a, const struct fuzz_ctx *ctx, uint64_t n,
                        const char *data, const struct signature *s)
{
    cJSON *o = cJSON_Parse(data);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(o, "explanation");
    if (!cJSON_IsString(text) || !cJSON_IsString(why)) {
        cJSON_Delete(o);
        return -EPROTO;
    }
    char path[4200], head[REPORT_TEXT_MAX + 1024], exp[REPORT_TEXT_MAX + 256];
    commented(why->valuestring, exp, sizeof(exp));
    snprintf(head, sizeof(head),
             "# Found by `faultdrill fuzz --seed %" PRIu64 "`, drill %" PRIu64 " (as generated: "
             "%" PRIu64 ".original.drill),\n# shrunk by `faultdrill shrink`. %s. Why:\n%s\n",
             ctx->seed, n, n, s->key, exp);
    snprintf(path, sizeof(path), "%s/failures/%" PRIu64 ".drill", a->out, n);
    int rc = write_file(path, head, text->valuestring);
    cJSON_Delete(o);
    return rc;
}

static int write_original(const struct fuzz_args *a, const struct fuzz_ctx *ctx, uint64_t n,
                          const char *dir, const char *suffix)
{
    char *text = malloc(FUZZ_DRILL_BYTES_MAX);
    if (text == NULL || fuzz_generate(&ctx->space, ctx->seed, n, text, FUZZ_DRILL_BYTES_MAX) != 0) {
        free(text);
        return -ENOMEM;
    }
    char path[4200], err[REPORT_ERR_MAX];
    snprintf(path, sizeof(path), "%s/%s", a->out, dir);
    int rc = cli_mkdir_p(path, err);
    snprintf(path, sizeof(path), "%s/%s/%" PRIu64 "%s.drill", a->out, dir, n, suffix);
    if (rc == 0)
        rc = write_file(path, "", text);
    free(text);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, struct fuzz_args *a)
{
    *a = (struct fuzz_args){.runs = 1000, .jobs = cli_cores(), .out = "faultdrill-out"};
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t v;
        if (cli_is_help(arg)) {
            fputs(usage_fuzz, stdout);
            return -1;
        }
        if (strcmp(arg, "--first") == 0) {
            a->first = true;
            continue;
        }
        if (val == NULL)
            goto bad;
        i++;
        if (strcmp(arg, "--topology") == 0)
            a->topology = val;
        else if (strcmp(arg, "--runs") == 0 && cli_parse_u64(val, &a->runs) == 0 && a->runs > 0 &&
                 a->runs < (UINT64_C(1) << 40))
            a->time_us = 0;
        else if (strcmp(arg, "--time") == 0 && drill_duration_parse(val, &a->time_us) == 0 &&
                 a->time_us > 0)
            ;
        else if (strcmp(arg, "--seed") == 0 && cli_parse_u64(val, &a->seed) == 0)
            a->seed_given = true;
        else if (strcmp(arg, "--jobs") == 0 && cli_parse_u64(val, &v) == 0 && v >= 1 &&
                 v <= POOL_WORKERS_MAX)
            a->jobs = (int)v;
        else if (strcmp(arg, "--out") == 0)
            a->out = val;
        else if (strcmp(arg, "--show") == 0 && cli_parse_u64(val, &a->show_index) == 0)
            a->show = true;
        else
            goto bad;
        continue;
    bad:
        fprintf(stderr, "faultdrill fuzz: bad or incomplete option '%s%s%s'\n%s", arg,
                val ? " " : "", val ? val : "", usage_fuzz);
        return EXIT_USAGE;
    }
    if (!a->seed_given) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        a->seed = ((uint64_t)t.tv_sec * 1000003u ^ (uint64_t)t.tv_nsec ^ (uint64_t)getpid()) %
                  1000000000u;
    }
    return 0;
}

/* The lowest drill number with a finding; false when none. Every drill below
 * it ran (drills are queued in order), so it does not depend on --jobs. */
static bool first_failing(const struct findings *f, uint64_t *n)
{
    for (size_t i = 0; i < f->count; i++)
        if (i == 0 || f->sig[i].indices[0] < *n)
            *n = f->sig[i].indices[0];
    return f->count > 0;
}

static void print_summary(const struct fuzz_args *a, const struct fuzz_ctx *ctx,
                          const struct findings *f, double run_s, double all_s)
{
    char runs[REPORT_FMT_MAX], ops[REPORT_FMT_MAX];
    report_format_count(f->runs, runs);
    report_format_count(f->ops, ops);
    printf("fuzz seed %" PRIu64 ": %s drills (%s ops) in %.1f s, %.1f drills/s; %" PRIu64
           " passed, %" PRIu64 " failed, %" PRIu64 " only unexercised",
           ctx->seed, runs, ops, run_s, run_s > 0 ? (double)f->runs / run_s : 0, f->passed,
           f->failed_runs, f->unexercised_runs);
    if (f->generator_errors)
        printf(", %" PRIu64 " GENERATOR ERRORS", f->generator_errors);
    printf(" (%.1f s with shrinking)\n", all_s);
    uint64_t first;
    if (first_failing(f, &first))
        printf("  first failing drill: %" PRIu64 " (found after %" PRIu64 " drills)\n", first,
               first + 1);
    for (size_t i = 0; i < f->count; i++) {
        const struct signature *s = &f->sig[i];
        printf("  FOUND %s  x%" PRIu64 "  (drill %" PRIu64 ")\n    %.300s\n", s->key, s->count,
               s->indices[0], s->explanation);
        if (s->shrinks_asked > 0)
            printf("    shrunk: %s/failures/%" PRIu64 ".drill\n", a->out, s->indices[0]);
        printf("    replay: " CLI_PROGRAM " fuzz --seed %" PRIu64 " --show %" PRIu64
               " > d.drill && " CLI_PROGRAM " run d.drill\n",
               ctx->seed, s->indices[0]);
    }
    if (f->unexercised_kinds > 0) {
        printf("  unexercised (the drill gave the checker nothing to judge; not failures):");
        for (size_t i = 0; i < f->unexercised_kinds; i++)
            printf(" %s x%" PRIu64, f->unexercised_names[i], f->unexercised_counts[i]);
        printf("\n");
    }
}

static int write_json(const struct fuzz_args *a, const struct fuzz_ctx *ctx,
                      const struct findings *f, double run_s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "schema", "faultdrill.fuzz/1");
    cJSON_AddNumberToObject(o, "seed", (double)ctx->seed);
    cJSON_AddNumberToObject(o, "runs", (double)f->runs);
    cJSON_AddNumberToObject(o, "passed", (double)f->passed);
    cJSON_AddNumberToObject(o, "failed", (double)f->failed_runs);
    cJSON_AddNumberToObject(o, "only_unexercised", (double)f->unexercised_runs);
    cJSON_AddNumberToObject(o, "generator_errors", (double)f->generator_errors);
    cJSON_AddNumberToObject(o, "runs_per_s", run_s > 0 ? (double)f->runs / run_s : 0);
    uint64_t first;
    if (first_failing(f, &first))
        cJSON_AddNumberToObject(o, "first_failing_drill", (double)first);
    else
        cJSON_AddNullToObject(o, "first_failing_drill");
    cJSON *topo = cJSON_AddArrayToObject(o, "topologies");
    for (size_t i = 0; i < ctx->space.count; i++) {
        char w[64];
        fuzz_set_words(ctx->space.sets[i], w, sizeof(w));
        cJSON_AddItemToArray(topo, cJSON_CreateString(w));
    }
    cJSON *list = cJSON_AddArrayToObject(o, "findings");
    for (size_t i = 0; i < f->count; i++) {
        const struct signature *s = &f->sig[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "signature", s->key);
        cJSON_AddNumberToObject(x, "count", (double)s->count);
        cJSON_AddStringToObject(x, "explanation", s->explanation);
        cJSON *idx = cJSON_AddArrayToObject(x, "drills");
        for (size_t k = 0; k < s->kept; k++)
            cJSON_AddItemToArray(idx, cJSON_CreateNumber((double)s->indices[k]));
        cJSON_AddItemToArray(list, x);
    }
    cJSON *un = cJSON_AddObjectToObject(o, "unexercised");
    for (size_t i = 0; i < f->unexercised_kinds; i++)
        cJSON_AddNumberToObject(un, f->unexercised_names[i], (double)f->unexercised_counts[i]);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    char path[4200];
    snprintf(path, sizeof(path), "%s/fuzz.json", a->out);
    int rc = text ? write_file(path, text, "\n") : -ENOMEM;
    free(text);
    return rc;
}

/* The first few drills of each signature, shrunk, in parallel; 0 or -errno. */
static int shrink_phase(const struct fuzz_args *a, const struct fuzz_ctx *ctx, struct findings *f,
                        struct pool *p)
{
    qsort(f->sig, f->count, sizeof(f->sig[0]), by_first_drill);
    for (size_t i = 0; i < f->count; i++) {
        struct signature *s = &f->sig[i];
        if (s->invariant[0] == '\0')
            continue; /* a crash or a nondeterminism keeps its drill as generated */
        for (size_t k = 0; k < s->kept && k < FUZZ_SHRINK_PER_SIGNATURE; k++, s->shrinks_asked++)
            pool_submit_for(p, TASK_ID(TASK_SHRINK, s->indices[k]), FUZZ_SHRINK_WALL_MS_MAX);
    }
    struct pool_result r;
    int rc;
    while ((rc = pool_wait(p, &r)) == 0) {
        uint64_t n = TASK_INDEX(r.id);
        const struct signature *s = NULL;
        for (size_t i = 0; i < f->count && s == NULL; i++)
            for (size_t k = 0; k < f->sig[i].shrinks_asked; k++)
                if (f->sig[i].indices[k] == n)
                    s = &f->sig[i];
        if (r.status != POOL_DONE)
            fprintf(stderr, "faultdrill fuzz: shrinking drill %" PRIu64 " failed: %s\n", n,
                    r.status == POOL_FAILED ? r.data : r.why);
        else if (s != NULL && write_shrunk(a, ctx, n, r.data, s) != 0)
            fprintf(stderr, "faultdrill fuzz: cannot write the shrunk drill %" PRIu64 "\n", n);
    }
    return rc == -ENOENT ? 0 : rc;
}

/* Feeds the pool with drills and collects them; then shrinks. 0 or -errno. */
static int fuzz_loop(const struct fuzz_args *a, struct fuzz_ctx *ctx, struct findings *f,
                     double *run_s)
{
    char why[256];
    struct pool *p = pool_create(a->jobs, fuzz_work, ctx, FUZZ_RUN_WALL_MS_MAX, why);
    if (p == NULL) {
        fprintf(stderr, "faultdrill fuzz: %s\n", why);
        return -EAGAIN;
    }
    int64_t t0 = cli_now_ms(), deadline = a->time_us ? t0 + a->time_us / 1000 : 0;
    uint64_t next = 0, limit = a->time_us ? f->sha_count : a->runs, runs_done = 0;
    struct cli_progress progress;
    cli_progress_start(&progress, "fuzz", a->time_us ? 0 : a->runs);
    int rc = 0;
    for (;;) {
        /* keep a few drills queued per worker (one with --first, so that it stops right at
         * the failing drill); with --time, stop queueing at the deadline */
        while (next < limit && pool_pending(p) < (size_t)a->jobs * (a->first ? 1 : 4) &&
               (deadline == 0 || cli_now_ms() < deadline)) {
            pool_submit(p, TASK_ID(TASK_RUN, next));
            if (next % FUZZ_RECHECK_EVERY == FUZZ_RECHECK_EVERY - 1)
                pool_submit(p, TASK_ID(TASK_RECHECK, next));
            next++;
        }
        struct pool_result r;
        rc = pool_wait(p, &r);
        if (rc != 0)
            break;
        enum task_kind kind = TASK_KIND(r.id);
        if (kind == TASK_RUN) {
            take_run(ctx, f, &r);
            if (++runs_done == next && (next == limit || (deadline && cli_now_ms() >= deadline)))
                *run_s = (double)(cli_now_ms() - t0) / 1000.0;
        } else if (kind == TASK_RECHECK) {
            take_recheck(ctx, f, &r);
        }
        cli_progress_update(&progress, runs_done, f->failed_runs);
        if ((deadline && cli_now_ms() >= deadline) || (a->first && f->count > 0))
            limit = next; /* what is queued still runs */
    }
    cli_progress_end(&progress);
    if (*run_s == 0)
        *run_s = (double)(cli_now_ms() - t0) / 1000.0;
    if (rc == -ENOENT)
        rc = a->first ? 0 : shrink_phase(a, ctx, f, p);
    pool_free(p);
    return rc;
}

static int keep_failures(const struct fuzz_args *a, const struct fuzz_ctx *ctx,
                         const struct findings *f)
{
    int rc = 0;
    for (size_t i = 0; i < f->count; i++) {
        const struct signature *s = &f->sig[i];
        for (size_t k = 0; k < s->kept && rc == 0; k++) {
            bool shrunk = k < s->shrinks_asked;
            rc = write_original(a, ctx, s->indices[k], shrunk ? "failures" : "failures/more",
                                shrunk ? ".original" : "");
        }
    }
    return rc;
}

int fuzz_main(int argc, char **argv)
{
    struct fuzz_args a;
    int code = parse_args(argc, argv, &a);
    if (code != 0)
        return code < 0 ? EXIT_MET : code;
    struct fuzz_ctx ctx = {.seed = a.seed};
    char err[REPORT_ERR_MAX];
    int rc = fuzz_space_probe(&ctx.space, a.topology, err);
    const char *plant = getenv("FAULTDRILL_TEST_FUZZ_PLANT");
    ctx.space.plant_early_ack = plant != NULL && strcmp(plant, "early-ack") == 0;
    if (rc != 0) {
        fprintf(stderr, "faultdrill fuzz: %s\n", err);
        return rc == -EINVAL || rc == -ENOTSUP ? EXIT_USAGE : EXIT_CANNOT_RUN;
    }
    if (a.show) {
        char *text = malloc(FUZZ_DRILL_BYTES_MAX);
        rc = text ? fuzz_generate(&ctx.space, ctx.seed, a.show_index, text, FUZZ_DRILL_BYTES_MAX)
                  : -ENOMEM;
        if (rc == 0)
            fputs(text, stdout);
        free(text);
        return rc == 0 ? EXIT_MET : EXIT_CANNOT_RUN;
    }
    struct findings *f = calloc(1, sizeof(*f));
    uint64_t cap = a.time_us ? (UINT64_C(1) << 24) : a.runs;
    if (f == NULL || (f->sha = calloc(cap, sizeof(*f->sha))) == NULL) {
        free(f);
        fprintf(stderr, "faultdrill fuzz: out of memory\n");
        return EXIT_CANNOT_RUN;
    }
    f->sha_count = cap;
    char path[4200];
    snprintf(path, sizeof(path), "%s/failures", a.out);
    if (cli_mkdir_p(path, err) != 0) {
        fprintf(stderr, "faultdrill fuzz: %s\n", err);
        free(f->sha);
        free(f);
        return EXIT_CANNOT_RUN;
    }
    if (!a.seed_given)
        printf("fuzz seed %" PRIu64 " (give --seed %" PRIu64 " to repeat this)\n", a.seed, a.seed);
    double run_s = 0;
    int64_t t0 = cli_now_ms();
    rc = fuzz_loop(&a, &ctx, f, &run_s);
    if (rc == 0)
        rc = keep_failures(&a, &ctx, f);
    if (rc == 0)
        rc = write_json(&a, &ctx, f, run_s);
    print_summary(&a, &ctx, f, run_s, (double)(cli_now_ms() - t0) / 1000.0);
    code = rc != 0 || f->generator_errors ? EXIT_CANNOT_RUN
           : f->count > 0                 ? EXIT_NOT_MET
                                          : EXIT_MET;
    if (rc != 0)
        fprintf(stderr, "faultdrill fuzz: %s\n", strerror(-rc));
    free(f->sha);
    free(f);
    return code;
}
