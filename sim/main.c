/*
 * main.c — the faultdrill command line (DESIGN.md §5 is the contract):
 * dispatches every command; run, check, explain, faults and invariants live
 * here, sweep, report merge, shrink and fuzz in their own files (cli.h).
 * Exit codes: 0 every expectation met, 1 an expectation not met, 2 bad usage
 * or an invalid drill, 3 could not run. The CLI is the only layer that reads
 * the wall clock (to report how long a run took) and the filesystem layout of
 * reports.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "sim/cli.h"


static const char usage_main[] =
    "usage: faultdrill COMMAND [ARGS]\n"
    "\n"
    "  run DRILL|DIR... [--live] [--seed N] [--out DIR] [--junit FILE] [-q|-v]\n"
    "                      run drills and judge their expectations\n"
    "  check [--live] DRILL|DIR...\n"
    "                      parse and validate only (--live: and what run --live\n"
    "                      cannot play)\n"
    "  explain DRILL       what the drill will do, in words\n"
    "  faults              the fault-point catalog\n"
    "  invariants          the checkers and what each means\n"
    "  sweep DRILL|DIR... --seeds A-B [--jobs N] [--shard K/N] [--recheck PCT]\n"
    "        [--out DIR] [--junit FILE]\n"
    "                      every drill for every seed, in worker processes\n"
    "  report merge DIR... [--out DIR] [--junit FILE]\n"
    "                      join the shards of a sweep\n"
    "  shrink DRILL --seed N [-o FILE]\n"
    "                      the smallest drill that still fails the same way\n"
    "  fuzz [--topology T] [--runs N | --time DUR] [--seed S] [--jobs N] [--out DIR]\n"
    "        [--show N] [--first]\n"
    "                      random valid drills, each failure shrunk\n"
    "  serve [--port N] [--data DIR] [--allow-faults] ...\n"
    "                      the live shop on civetweb\n"
    "\n"
    "Exit codes: 0 every expectation met, 1 an expectation not met,\n"
    "2 bad usage or an invalid drill, 3 could not run.\n"
    "`faultdrill COMMAND --help` tells more.\n";

static const char usage_run[] =
    "usage: faultdrill run DRILL|DIR... [--live] [--seed N] [--out DIR] [--junit FILE] [-q|-v]\n"
    "\n"
    "Runs each drill (a directory: every *.drill in it, by name) in the\n"
    "deterministic simulator and checks its expectations. Per drill and seed,\n"
    "OUT/<drill>/seed-<N>/ receives report.json, report.md, report.html and\n"
    "trace.log (OUT defaults to faultdrill-out). One line per run on stdout.\n"
    "\n"
    "  --seed N      use seed N instead of the drill's own\n"
    "  --out DIR     where reports go (default faultdrill-out)\n"
    "  --junit FILE  also write JUnit XML, one testcase per drill x expectation\n"
    "  -q            print only failures    -v  print more about each run\n"
    "  --live        play the drill against real `faultdrill serve` processes on\n"
    "                loopback, in real time, judged by the same checkers (reports in\n"
    "                OUT/DRILL/live-seed-N, \"mode\": \"live\"); single, mirror, async,\n"
    "                offline, cluster and stake drills (one serve process per node);\n"
    "                `check --live` says what cannot be played live and why\n";

static const char usage_check[] = "usage: faultdrill check [--live] DRILL|DIR...\n"
                                  "\nParses and validates drills; prints every error as\n"
                                  "FILE:LINE:COL: message and exits 2 if there is one.\n"
                                  "--live: also what run --live cannot play in them.\n";
static const char usage_explain[] = "usage: faultdrill explain DRILL\n"
                                    "\nTells, in words, what the drill will do.\n";
static const char usage_faults[] = "usage: faultdrill faults\n"
                                   "\nLists every fault point: name, family, default errno,\n"
                                   "where it fires and what it does.\n";
static const char usage_invariants[] = "usage: faultdrill invariants\n"
                                       "\nLists every invariant and what it means.\n";

/* ---- run ------------------------------------------------------------------ */

struct run_args {
    struct cli_files files;
    uint64_t seed;
    bool seed_given;
    const char *out;
    bool out_given; /* the replay line says it too */
    const char *junit;
    bool quiet, verbose;
    bool live;
};

/* Parses run's arguments; returns 0, or an exit code (> 0) after printing why. */
static int parse_run_args(int argc, char **argv, struct run_args *a)
{
    a->out = "faultdrill-out";
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (cli_is_help(arg)) {
            fputs(usage_run, stdout);
            return -1;
        } else if (strcmp(arg, "--seed") == 0 && has_value) {
            if (cli_parse_u64(argv[++i], &a->seed) != 0) {
                fprintf(stderr, "faultdrill run: --seed takes a whole number, not '%s'\n",
                        argv[i]);
                return EXIT_USAGE;
            }
            a->seed_given = true;
        } else if (strcmp(arg, "--out") == 0 && has_value) {
            a->out = argv[++i];
            a->out_given = true;
        } else if (strcmp(arg, "--junit") == 0 && has_value) {
            a->junit = argv[++i];
        } else if (strcmp(arg, "-q") == 0) {
            a->quiet = true;
        } else if (strcmp(arg, "-v") == 0) {
            a->verbose = true;
        } else if (strcmp(arg, "--live") == 0) {
            a->live = true;
        } else if (arg[0] == '-') {
            fprintf(stderr, "faultdrill run: unknown or incomplete option '%s'\n%s", arg,
                    usage_run);
            return EXIT_USAGE;
        } else if (cli_files_collect(&a->files, arg) != 0) {
            return EXIT_USAGE;
        }
    }
    if (a->files.count == 0) {
        fprintf(stderr, "faultdrill run: no drill given\n%s", usage_run);
        return EXIT_USAGE;
    }
    return 0;
}

/* What run --live cannot play in this drill, printed as FILE:LINE:COL: message. */
static bool live_refused(const char *path, const struct drill *d)
{
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    if (errs == NULL)
        return true;
    bool refused = sim_live_check(d, errs) != 0;
    if (refused)
        drill_errors_print(path, errs, stderr);
    free(errs);
    return refused;
}

/* Runs one drill and writes its reports; returns an exit code. */
static int run_one(const struct run_args *a, const char *path, struct report_run *rep)
{
    struct drill *d = cli_drill_load(path);
    if (d == NULL)
        return EXIT_USAGE;
    uint64_t seed = a->seed_given ? a->seed : d->seed;
    if (a->live && live_refused(path, d)) {
        free(d);
        return EXIT_USAGE;
    }
    /* the command that gives this run again, reports in the same place */
    char replay[1024];
    cli_replay(replay, sizeof(replay), a->live, path, seed, a->out_given ? a->out : NULL);
    struct sim_options opt = {.seed = seed, .seed_given = true, .replay = replay};
    char msg[REPORT_ERR_MAX] = "";
    int64_t t0 = cli_now_ms();
    int err = a->live ? sim_run_live(d, &opt, rep, msg) : sim_run(d, &opt, rep, msg);
    int64_t wall = cli_now_ms() - t0;
    /* live: the simulator's run of the same drill and seed, for the agreement */
    struct report_run sim = {0};
    bool compared = false;
    if (!err && a->live) {
        char sim_msg[REPORT_ERR_MAX] = "";
        struct sim_options sim_opt = {.seed = seed, .seed_given = true, .replay = replay};
        compared = sim_run(d, &sim_opt, &sim, sim_msg) == 0;
        if (!compared)
            fprintf(stderr, "faultdrill run: %s: no simulated run to compare with: %s\n", path,
                    sim_msg);
    }
    if (err) {
        fprintf(stderr, "faultdrill run: %s: could not run: %s\n", path, msg);
        /* what JUnit needs to show it as an <error> */
        sim_result_release(rep);
        snprintf(rep->drill_name, sizeof(rep->drill_name), "%s", d->name);
        snprintf(rep->drill_file, sizeof(rep->drill_file), "%s", path);
        rep->seed = seed;
        snprintf(rep->replay, sizeof(rep->replay), "%s", replay);
        snprintf(rep->run_error, sizeof(rep->run_error), "%s", msg[0] ? msg : "(no reason given)");
        free(d);
        return EXIT_CANNOT_RUN;
    }
    free(d);
    rep->wall_ms = wall;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s/%sseed-%" PRIu64, a->out, rep->drill_name,
             a->live ? "live-" : "", seed);
    if (cli_mkdir_p(dir, msg) != 0 || report_write_dir(rep, dir, msg) != 0) {
        fprintf(stderr, "faultdrill run: %s: cannot write the reports: %s\n", path, msg);
        snprintf(rep->run_error, sizeof(rep->run_error), "cannot write the reports: %.400s", msg);
        sim_result_release(&sim);
        return EXIT_CANNOT_RUN;
    }
    if (compared) {
        char file[4200];
        snprintf(file, sizeof(file), "%s/agreement.md", dir);
        FILE *f = fopen(file, "w");
        bool same = f != NULL && sim_live_compare(&sim, rep, f);
        if (f == NULL || fclose(f) != 0) {
            fprintf(stderr, "faultdrill run: %s: cannot write %s\n", path, file);
            sim_result_release(&sim);
            return EXIT_CANNOT_RUN;
        }
        if (!a->quiet || !rep->pass)
            report_print_summary(rep, stdout, a->verbose);
        if (!a->quiet || !same)
            printf("%s  %s  sim/live: %s (simulated %s, live %s): %s\n", same ? "AGREE " : "DIFFER",
                   rep->drill_name, same ? "the same verdicts" : "the verdicts differ",
                   sim.pass ? "PASS" : "FAIL", rep->pass ? "PASS" : "FAIL", file);
        sim_result_release(&sim);
        fflush(stdout);
        return rep->pass ? EXIT_MET : EXIT_NOT_MET;
    }
    sim_result_release(&sim);
    if (!a->quiet || !rep->pass)
        report_print_summary(rep, stdout, a->verbose);
    fflush(stdout);
    return rep->pass ? EXIT_MET : EXIT_NOT_MET;
}

static int cmd_run(int argc, char **argv)
{
    struct run_args a = {0};
    int code = parse_run_args(argc, argv, &a);
    if (code != 0) {
        cli_files_release(&a.files);
        return code < 0 ? EXIT_MET : code;
    }
    struct report_run *reps = calloc(a.files.count, sizeof(*reps));
    const struct report_run **done = calloc(a.files.count, sizeof(*done));
    if (reps == NULL || done == NULL) {
        fprintf(stderr, "faultdrill run: out of memory\n");
        free(reps);
        free(done);
        cli_files_release(&a.files);
        return EXIT_CANNOT_RUN;
    }
    size_t ran = 0;
    code = EXIT_MET;
    for (size_t i = 0; i < a.files.count; i++) {
        int c = run_one(&a, a.files.paths[i], &reps[i]);
        if (c == EXIT_MET || c == EXIT_NOT_MET || reps[i].run_error[0] != '\0')
            done[ran++] = &reps[i];
        /* the worst outcome decides: could not run > invalid > not met */
        if (c == EXIT_CANNOT_RUN || (c == EXIT_USAGE && code != EXIT_CANNOT_RUN) ||
            (c == EXIT_NOT_MET && code == EXIT_MET))
            code = c;
    }
    char msg[REPORT_ERR_MAX];
    if (a.junit != NULL && report_write_junit(done, ran, a.junit, msg) != 0) {
        fprintf(stderr, "faultdrill run: cannot write %s: %s\n", a.junit, msg);
        code = EXIT_CANNOT_RUN;
    }
    for (size_t i = 0; i < a.files.count; i++)
        sim_result_release(&reps[i]);
    free(reps);
    free(done);
    cli_files_release(&a.files);
    return code;
}

/* ---- check, explain, faults, invariants --------------------------------- */

static int cmd_check(int argc, char **argv)
{
    struct cli_files fl = {0};
    bool live = false;
    for (int i = 0; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage_check, stdout);
            cli_files_release(&fl);
            return EXIT_MET;
        }
        if (strcmp(argv[i], "--live") == 0) {
            live = true;
            continue;
        }
        if (cli_files_collect(&fl, argv[i]) != 0) {
            cli_files_release(&fl);
            return EXIT_USAGE;
        }
    }
    if (fl.count == 0) {
        fputs(usage_check, stderr);
        return EXIT_USAGE;
    }
    int code = EXIT_MET;
    for (size_t i = 0; i < fl.count; i++) {
        struct drill *d = cli_drill_load(fl.paths[i]);
        if (d == NULL || (live && live_refused(fl.paths[i], d)))
            code = EXIT_USAGE;
        else
            printf("ok  %s%s\n", fl.paths[i], live ? " (live too)" : "");
        free(d);
    }
    cli_files_release(&fl);
    return code;
}

static int cmd_explain(int argc, char **argv)
{
    if (argc == 1 && cli_is_help(argv[0])) {
        fputs(usage_explain, stdout);
        return EXIT_MET;
    }
    if (argc != 1) {
        fputs(usage_explain, stderr);
        return EXIT_USAGE;
    }
    struct drill *d = cli_drill_load(argv[0]);
    if (d == NULL)
        return EXIT_USAGE;
    drill_explain(d, stdout);
    /* live: whether run --live plays it, and if not, why (as check --live says) */
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    if (errs != NULL && sim_live_check(d, errs) == 0) {
        printf("\nLive: `faultdrill run --live` plays this drill against real serve processes, "
               "judged by the same checkers.\n");
    } else if (errs != NULL) {
        printf("\nLive: `faultdrill run --live` cannot play this drill yet:\n");
        for (size_t i = 0; i < errs->count; i++)
            printf("  line %d: %s\n", errs->e[i].line, errs->e[i].msg);
    }
    free(errs);
    free(d);
    return EXIT_MET;
}

static int cmd_faults(int argc, char **argv)
{
    if (argc > 0) {
        fputs(usage_faults, cli_is_help(argv[0]) ? stdout : stderr);
        return cli_is_help(argv[0]) ? EXIT_MET : EXIT_USAGE;
    }
    size_t n = 0;
    const struct faults_point *cat = faults_catalog(&n);
    /* columns as wide as their widest entry, so every row lines up */
    int wname = 0, wfamily = 0, werrno = 1;
    for (size_t i = 0; i < n; i++) {
        const char *en = cat[i].errno_default ? faults_errno_name(cat[i].errno_default) : NULL;
        int a = (int)strlen(cat[i].pattern), b = (int)strlen(faults_family_name(cat[i].family));
        int c = en ? (int)strlen(en) : 1;
        wname = a > wname ? a : wname;
        wfamily = b > wfamily ? b : wfamily;
        werrno = c > werrno ? c : werrno;
    }
    for (size_t i = 0; i < n; i++) {
        const char *en = cat[i].errno_default ? faults_errno_name(cat[i].errno_default) : NULL;
        printf("%-*s  %-*s  %-*s  %s\n    where: %s\n", wname, cat[i].pattern, wfamily,
               faults_family_name(cat[i].family), werrno, en ? en : "-", cat[i].description,
               cat[i].where);
    }
    return EXIT_MET;
}

static int cmd_invariants(int argc, char **argv)
{
    if (argc > 0) {
        fputs(usage_invariants, cli_is_help(argv[0]) ? stdout : stderr);
        return cli_is_help(argv[0]) ? EXIT_MET : EXIT_USAGE;
    }
    size_t n = 0;
    const struct invariant_info *cat = invariant_catalog(&n);
    for (size_t i = 0; i < n; i++)
        printf("%s%s\n  holds when %s\n  %s\n\n", cat[i].name,
               sim_checker_lookup(cat[i].name) ? "" : "  (not built yet)", cat[i].summary,
               cat[i].explanation);
    return EXIT_MET;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (cli_is_help(cmd)) {
        fputs(usage_main, stdout);
        return EXIT_MET;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(cmd, "explain") == 0)
        return cmd_explain(argc - 2, argv + 2);
    if (strcmp(cmd, "faults") == 0)
        return cmd_faults(argc - 2, argv + 2);
    if (strcmp(cmd, "invariants") == 0)
        return cmd_invariants(argc - 2, argv + 2);
    if (strcmp(cmd, "serve") == 0)
        return serve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "sweep") == 0)
        return sweep_main(argc - 2, argv + 2);
    if (strcmp(cmd, "report") == 0)
        return report_main(argc - 2, argv + 2);
    if (strcmp(cmd, "shrink") == 0)
        return shrink_main(argc - 2, argv + 2);
    if (strcmp(cmd, "fuzz") == 0)
        return fuzz_main(argc - 2, argv + 2);
    fprintf(stderr, "faultdrill: unknown command '%s'\n%s", cmd, usage_main);
    return EXIT_USAGE;
}
