/*
 * main.c — the faultdrill command line (DESIGN.md §5 is the contract):
 * run, check, explain, faults, invariants, each with --help. Exit codes:
 * 0 every expectation met, 1 an expectation not met, 2 bad usage or an
 * invalid drill, 3 could not run. The only place that reads the wall clock
 * (to report how long a run took) and the filesystem layout of reports.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "serve/serve.h"
#include "sim/sim.h"

#define EXIT_MET 0
#define EXIT_NOT_MET 1
#define EXIT_USAGE 2
#define EXIT_CANNOT_RUN 3
#define MAIN_FILES_MAX 1024

static const char usage_main[] =
    "usage: faultdrill COMMAND [ARGS]\n"
    "\n"
    "  run DRILL|DIR... [--seed N] [--out DIR] [--junit FILE] [-q|-v]\n"
    "                      run drills and judge their expectations\n"
    "  check DRILL|DIR...  parse and validate only\n"
    "  explain DRILL       what the drill will do, in words\n"
    "  faults              the fault-point catalog\n"
    "  invariants          the checkers and what each means\n"
    "  serve [--port N] [--data DIR] [--allow-faults] ...\n"
    "                      the live shop on civetweb\n"
    "\n"
    "Exit codes: 0 every expectation met, 1 an expectation not met,\n"
    "2 bad usage or an invalid drill, 3 could not run.\n"
    "`faultdrill COMMAND --help` tells more. Not built yet: sweep, shrink,\n"
    "report merge.\n";

static const char usage_run[] =
    "usage: faultdrill run DRILL|DIR... [--seed N] [--out DIR] [--junit FILE] [-q|-v]\n"
    "\n"
    "Runs each drill (a directory: every *.drill in it, by name) in the\n"
    "deterministic simulator and checks its expectations. Per drill and seed,\n"
    "OUT/<drill>/seed-<N>/ receives report.json, report.md, report.html and\n"
    "trace.log (OUT defaults to faultdrill-out). One line per run on stdout.\n"
    "\n"
    "  --seed N      use seed N instead of the drill's own\n"
    "  --out DIR     where reports go (default faultdrill-out)\n"
    "  --junit FILE  also write JUnit XML, one testcase per drill x expectation\n"
    "  -q            print only failures    -v  print more about each run\n";

static const char usage_check[] = "usage: faultdrill check DRILL|DIR...\n"
                                  "\nParses and validates drills; prints every error as\n"
                                  "FILE:LINE:COL: message and exits 2 if there is one.\n";
static const char usage_explain[] = "usage: faultdrill explain DRILL\n"
                                    "\nTells, in words, what the drill will do.\n";
static const char usage_faults[] = "usage: faultdrill faults\n"
                                   "\nLists every fault point: name, family, default errno,\n"
                                   "where it fires and what it does.\n";
static const char usage_invariants[] = "usage: faultdrill invariants\n"
                                       "\nLists every invariant and what it means.\n";

static bool is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* ---- collecting drill files -------------------------------------------- */

struct file_list {
    size_t count;
    char *paths[MAIN_FILES_MAX];
};

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_path(struct file_list *fl, const char *path)
{
    if (fl->count == MAIN_FILES_MAX) {
        fprintf(stderr, "faultdrill: more than %d drills at once\n", MAIN_FILES_MAX);
        return -E2BIG;
    }
    fl->paths[fl->count] = strdup(path);
    if (fl->paths[fl->count] == NULL)
        return -ENOMEM;
    fl->count++;
    return 0;
}

static int add_dir(struct file_list *fl, const char *dir)
{
    DIR *dp = opendir(dir);
    if (dp == NULL) {
        fprintf(stderr, "faultdrill: %s: %s\n", dir, strerror(errno));
        return -errno;
    }
    size_t first = fl->count;
    struct dirent *de;
    int err = 0;
    while (!err && (de = readdir(dp)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > 6 && strcmp(de->d_name + n - 6, ".drill") == 0) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            err = add_path(fl, path);
        }
    }
    closedir(dp);
    qsort(fl->paths + first, fl->count - first, sizeof(char *), by_name);
    if (!err && fl->count == first)
        fprintf(stderr, "faultdrill: %s: no *.drill files\n", dir);
    return err;
}

static int collect(struct file_list *fl, const char *arg)
{
    struct stat st;
    if (stat(arg, &st) != 0) {
        fprintf(stderr, "faultdrill: %s: %s\n", arg, strerror(errno));
        return -errno;
    }
    return S_ISDIR(st.st_mode) ? add_dir(fl, arg) : add_path(fl, arg);
}

static void file_list_release(struct file_list *fl)
{
    for (size_t i = 0; i < fl->count; i++)
        free(fl->paths[i]);
    fl->count = 0;
}

/* Parses one drill, printing its errors; NULL when it is invalid. */
static struct drill *load(const char *path)
{
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    if (d == NULL || errs == NULL) {
        fprintf(stderr, "faultdrill: out of memory\n");
        free(d);
        free(errs);
        return NULL;
    }
    int err = drill_parse_file(path, d, errs);
    if (err) {
        drill_errors_print(path, errs, stderr);
        free(d);
        d = NULL;
    }
    free(errs);
    return d;
}

/* ---- run ------------------------------------------------------------------ */

struct run_args {
    struct file_list files;
    uint64_t seed;
    bool seed_given;
    const char *out;
    const char *junit;
    bool quiet, verbose;
};

static int parse_u64(const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

/* Parses run's arguments; returns 0, or an exit code (> 0) after printing why. */
static int parse_run_args(int argc, char **argv, struct run_args *a)
{
    a->out = "faultdrill-out";
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        bool has_value = i + 1 < argc;
        if (is_help(arg)) {
            fputs(usage_run, stdout);
            return -1;
        } else if (strcmp(arg, "--seed") == 0 && has_value) {
            if (parse_u64(argv[++i], &a->seed) != 0) {
                fprintf(stderr, "faultdrill run: --seed takes a whole number, not '%s'\n",
                        argv[i]);
                return EXIT_USAGE;
            }
            a->seed_given = true;
        } else if (strcmp(arg, "--out") == 0 && has_value) {
            a->out = argv[++i];
        } else if (strcmp(arg, "--junit") == 0 && has_value) {
            a->junit = argv[++i];
        } else if (strcmp(arg, "-q") == 0) {
            a->quiet = true;
        } else if (strcmp(arg, "-v") == 0) {
            a->verbose = true;
        } else if (arg[0] == '-') {
            fprintf(stderr, "faultdrill run: unknown or incomplete option '%s'\n%s", arg,
                    usage_run);
            return EXIT_USAGE;
        } else if (collect(&a->files, arg) != 0) {
            return EXIT_USAGE;
        }
    }
    if (a->files.count == 0) {
        fprintf(stderr, "faultdrill run: no drill given\n%s", usage_run);
        return EXIT_USAGE;
    }
    return 0;
}

static int mkdir_p(const char *path, char err[REPORT_ERR_MAX])
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                snprintf(err, REPORT_ERR_MAX, "cannot create %.300s: %s", buf, strerror(errno));
                return -errno;
            }
            *p = saved;
            if (saved == '\0')
                return 0;
        }
    }
}

static int64_t wall_ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Runs one drill and writes its reports; returns an exit code. */
static int run_one(const struct run_args *a, const char *path, struct report_run *rep)
{
    struct drill *d = load(path);
    if (d == NULL)
        return EXIT_USAGE;
    uint64_t seed = a->seed_given ? a->seed : d->seed;
    char replay[1024];
    snprintf(replay, sizeof(replay), "faultdrill run %s --seed %" PRIu64, path, seed);
    struct sim_options opt = {.seed = seed, .seed_given = true, .replay = replay};
    char msg[REPORT_ERR_MAX] = "";
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int err = sim_run(d, &opt, rep, msg);
    free(d);
    if (err) {
        fprintf(stderr, "faultdrill run: %s: could not run: %s\n", path, msg);
        return EXIT_CANNOT_RUN;
    }
    rep->wall_ms = wall_ms_since(&t0);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/%s/seed-%" PRIu64, a->out, rep->drill_name, seed);
    if (mkdir_p(dir, msg) != 0 || report_write_dir(rep, dir, msg) != 0) {
        fprintf(stderr, "faultdrill run: %s: cannot write the reports: %s\n", path, msg);
        return EXIT_CANNOT_RUN;
    }
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
        file_list_release(&a.files);
        return code < 0 ? EXIT_MET : code;
    }
    struct report_run *reps = calloc(a.files.count, sizeof(*reps));
    const struct report_run **done = calloc(a.files.count, sizeof(*done));
    if (reps == NULL || done == NULL) {
        fprintf(stderr, "faultdrill run: out of memory\n");
        free(reps);
        free(done);
        file_list_release(&a.files);
        return EXIT_CANNOT_RUN;
    }
    size_t ran = 0;
    code = EXIT_MET;
    for (size_t i = 0; i < a.files.count; i++) {
        int c = run_one(&a, a.files.paths[i], &reps[i]);
        if (c == EXIT_MET || c == EXIT_NOT_MET)
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
    file_list_release(&a.files);
    return code;
}

/* ---- check, explain, faults, invariants --------------------------------- */

static int cmd_check(int argc, char **argv)
{
    struct file_list fl = {0};
    for (int i = 0; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(usage_check, stdout);
            file_list_release(&fl);
            return EXIT_MET;
        }
        if (collect(&fl, argv[i]) != 0) {
            file_list_release(&fl);
            return EXIT_USAGE;
        }
    }
    if (fl.count == 0) {
        fputs(usage_check, stderr);
        return EXIT_USAGE;
    }
    int code = EXIT_MET;
    for (size_t i = 0; i < fl.count; i++) {
        struct drill *d = load(fl.paths[i]);
        if (d == NULL)
            code = EXIT_USAGE;
        else
            printf("ok  %s\n", fl.paths[i]);
        free(d);
    }
    file_list_release(&fl);
    return code;
}

static int cmd_explain(int argc, char **argv)
{
    if (argc == 1 && is_help(argv[0])) {
        fputs(usage_explain, stdout);
        return EXIT_MET;
    }
    if (argc != 1) {
        fputs(usage_explain, stderr);
        return EXIT_USAGE;
    }
    struct drill *d = load(argv[0]);
    if (d == NULL)
        return EXIT_USAGE;
    drill_explain(d, stdout);
    free(d);
    return EXIT_MET;
}

static int cmd_faults(int argc, char **argv)
{
    if (argc > 0) {
        fputs(usage_faults, is_help(argv[0]) ? stdout : stderr);
        return is_help(argv[0]) ? EXIT_MET : EXIT_USAGE;
    }
    size_t n = 0;
    const struct faults_point *cat = faults_catalog(&n);
    for (size_t i = 0; i < n; i++) {
        const char *en = cat[i].errno_default ? faults_errno_name(cat[i].errno_default) : NULL;
        printf("%-36s %-5s %-7s %s\n    where: %s\n", cat[i].pattern,
               faults_family_name(cat[i].family), en ? en : "-", cat[i].description,
               cat[i].where);
    }
    return EXIT_MET;
}

static int cmd_invariants(int argc, char **argv)
{
    if (argc > 0) {
        fputs(usage_invariants, is_help(argv[0]) ? stdout : stderr);
        return is_help(argv[0]) ? EXIT_MET : EXIT_USAGE;
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
    if (is_help(cmd)) {
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
    if (strcmp(cmd, "sweep") == 0 || strcmp(cmd, "shrink") == 0 || strcmp(cmd, "report") == 0) {
        fprintf(stderr, "faultdrill: '%s' is not built yet\n", cmd);
        return EXIT_CANNOT_RUN;
    }
    fprintf(stderr, "faultdrill: unknown command '%s'\n%s", cmd, usage_main);
    return EXIT_USAGE;
}
