/*
 * merge.c — `faultdrill report merge DIR...`: joins the sweep.json of the
 * shards of one sweep (DESIGN.md §8) into one sweep.json, sweep.md and JUnit
 * file, written by the same code as an unsharded sweep's, so the merge of
 * shards 1..N equals the unsharded sweep seed for seed. Refuses shards that
 * do not belong together: different seeds, drills or shard counts, a shard
 * missing or given twice, a seed listed twice. Judges what no single shard
 * could: a fault statement that fired in none of the seeds.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sim/cli.h"
#include "sim/sweep.h"

static const char usage_report[] =
    "usage: faultdrill report merge DIR|FILE... [--out DIR] [--junit FILE]\n"
    "\n"
    "Joins the shards of a sweep (`faultdrill sweep --shard K/N`): each DIR holds\n"
    "one shard's sweep.json (or name the file itself). Writes OUT/sweep.json,\n"
    "OUT/sweep.md and, with --junit, one JUnit file for them all; prints the\n"
    "summary. Exit codes as sweep's: 0 all met, 1 a seed failed, a rerun differed\n"
    "or a fault statement fired in none of the seeds, 2 shards that do not fit\n"
    "together, 3 a run could not run or a file could not be read or written.\n"
    "\n"
    "  --out DIR     where the merged files go (default faultdrill-out)\n"
    "  --junit FILE  the JUnit XML of the whole sweep\n";

#define MERGE_SHARDS_MAX 4096

__attribute__((format(printf, 2, 3))) static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "faultdrill report merge: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

/* A sweep.json path for a directory or file argument. */
static void shard_path(const char *arg, char *buf, size_t len)
{
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(buf, len, "%s/sweep.json", arg);
    else
        snprintf(buf, len, "%s", arg);
}

static bool same_drills(const struct sweep *a, const struct sweep *b)
{
    if (a->drill_count != b->drill_count)
        return false;
    for (size_t d = 0; d < a->drill_count; d++) {
        const struct sweep_drill *x = &a->drills[d], *y = &b->drills[d];
        if (strcmp(x->name, y->name) != 0 || strcmp(x->file, y->file) != 0 ||
            x->statement_count != y->statement_count)
            return false;
        for (size_t j = 0; j < x->statement_count; j++)
            if (x->statements[j].line != y->statements[j].line ||
                strcmp(x->statements[j].name, y->statements[j].name) != 0)
                return false;
    }
    return true;
}

/* Checks that shard fits the first one; an exit code after printing why, or 0. */
static int fits(const struct sweep *first, const char *first_path, const struct sweep *shard,
                const char *path)
{
    if (shard->shard_index == 0)
        return fail(EXIT_USAGE, "%s is already a merge of shards, not one shard", path);
    if (shard->seed_first != first->seed_first || shard->seed_last != first->seed_last ||
        shard->shard_count != first->shard_count || shard->recheck_pct != first->recheck_pct)
        return fail(EXIT_USAGE,
                    "%s and %s come from different sweeps (seeds, shard count or --recheck "
                    "differ)",
                    first_path, path);
    if (!same_drills(first, shard))
        return fail(EXIT_USAGE, "%s and %s swept different drills", first_path, path);
    return 0;
}

/* Moves the shard's runs into the merge (the shard keeps its drills). */
static int take_runs(struct sweep *merged, struct sweep *shard)
{
    for (size_t i = 0; i < shard->run_count; i++) {
        int rc = sweep_add_run(merged, &shard->runs[i]);
        if (rc != 0)
            return rc;
    }
    shard->run_count = 0;
    return 0;
}

static int check_complete(const struct sweep *m, const bool *seen)
{
    for (unsigned i = 1; i <= m->shard_count; i++)
        if (!seen[i])
            return fail(EXIT_USAGE, "shard %u/%u is missing", i, m->shard_count);
    for (size_t i = 1; i < m->run_count; i++) {
        const struct sweep_run *a = &m->runs[i - 1], *b = &m->runs[i];
        if (a->drill == b->drill && a->seed == b->seed)
            return fail(EXIT_USAGE, "%s seed %" PRIu64 " is in two shards",
                        m->drills[a->drill].name, a->seed);
    }
    return 0;
}

/* Reads every shard into merged; an exit code (0: they fit together). */
static int read_shards(const char *const *paths, size_t count, struct sweep *merged)
{
    bool *seen = NULL;
    int code = 0;
    for (size_t i = 0; i < count && code == 0; i++) {
        struct sweep shard = {0};
        char err[REPORT_ERR_MAX];
        int rc = sweep_read(paths[i], &shard, err);
        if (rc != 0) {
            code = fail(rc == -EINVAL ? EXIT_USAGE : EXIT_CANNOT_RUN, "%s", err);
        } else if (i == 0) {
            *merged = shard; /* the first one carries the drills */
            seen = calloc((size_t)shard.shard_count + 1, sizeof(*seen));
            if (seen == NULL)
                code = EXIT_CANNOT_RUN;
            else if (shard.shard_index == 0)
                code = fail(EXIT_USAGE, "%s is already a merge of shards, not one shard",
                            paths[0]);
            else
                seen[shard.shard_index] = true;
            continue;
        } else if ((code = fits(merged, paths[0], &shard, paths[i])) == 0) {
            if (seen[shard.shard_index])
                code = fail(EXIT_USAGE, "%s: this shard was given twice (see %s)", paths[i],
                            paths[0]);
            seen[shard.shard_index] = true;
            if (code == 0 && take_runs(merged, &shard) != 0)
                code = EXIT_CANNOT_RUN;
        }
        sweep_release(&shard);
    }
    if (code == 0) {
        merged->shard_index = merged->shard_count == 1 ? 1 : 0;
        sweep_sort(merged);
        code = check_complete(merged, seen);
    }
    free(seen);
    return code;
}

static int cmd_merge(int argc, char **argv)
{
    const char *out = "faultdrill-out", *junit = NULL;
    const char **paths = calloc((size_t)argc + 1, sizeof(*paths));
    char (*bufs)[4200] = calloc((size_t)argc + 1, sizeof(*bufs));
    size_t count = 0;
    int code = 0;
    if (paths == NULL || bufs == NULL)
        code = EXIT_CANNOT_RUN;
    for (int i = 0; code == 0 && i < argc; i++) {
        const char *arg = argv[i];
        if (cli_is_help(arg)) {
            fputs(usage_report, stdout);
            code = -1;
        } else if (strcmp(arg, "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(arg, "--junit") == 0 && i + 1 < argc) {
            junit = argv[++i];
        } else if (arg[0] == '-') {
            fprintf(stderr, "faultdrill report merge: unknown or incomplete option '%s'\n%s",
                    arg, usage_report);
            code = EXIT_USAGE;
        } else if (count == MERGE_SHARDS_MAX) {
            code = fail(EXIT_USAGE, "more than %d shards", MERGE_SHARDS_MAX);
        } else {
            shard_path(arg, bufs[count], sizeof(bufs[count]));
            paths[count] = bufs[count];
            count++;
        }
    }
    if (code == 0 && count == 0) {
        fprintf(stderr, "faultdrill report merge: no shard given\n%s", usage_report);
        code = EXIT_USAGE;
    }
    struct sweep merged = {0};
    if (code == 0)
        code = read_shards(paths, count, &merged);
    if (code == 0) {
        char err[REPORT_ERR_MAX];
        struct sweep_totals t;
        if (sweep_write(&merged, out, junit, err) != 0) {
            fprintf(stderr, "faultdrill report merge: %s\n", err);
            code = EXIT_CANNOT_RUN;
        } else {
            sweep_print_summary(&merged, stdout);
            code = sweep_judge(&merged, &t);
        }
    }
    sweep_release(&merged);
    free(paths);
    free(bufs);
    return code < 0 ? EXIT_MET : code;
}

int report_main(int argc, char **argv)
{
    if (argc >= 1 && cli_is_help(argv[0])) {
        fputs(usage_report, stdout);
        return EXIT_MET;
    }
    if (argc < 1 || strcmp(argv[0], "merge") != 0) {
        fprintf(stderr, "faultdrill report: the only subcommand is merge\n%s", usage_report);
        return EXIT_USAGE;
    }
    return cmd_merge(argc - 1, argv + 1);
}
