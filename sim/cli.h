/*
 * cli.h — what the faultdrill commands share (main.c dispatches; run, check
 * and explain live there; sweep, report merge, shrink and fuzz in their own
 * files): the exit codes of DESIGN.md §5, collecting drill files from the
 * arguments, loading a drill with its errors printed, number and path
 * helpers, the wall clock, and the one updating progress line of long runs.
 *
 * The CLI is the only layer that reads the wall clock or the terminal;
 * libsim below it stays deterministic.
 */
#ifndef FAULTDRILL_SIM_CLI_H
#define FAULTDRILL_SIM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/sim.h"

#define EXIT_MET 0
#define EXIT_NOT_MET 1
#define EXIT_USAGE 2
#define EXIT_CANNOT_RUN 3

/* ---- The commands (each returns an exit code) ------------------------- */

int sweep_main(int argc, char **argv);        /* sweep.c */
int report_main(int argc, char **argv);       /* merge.c: `report merge ...` */
int shrink_main(int argc, char **argv);       /* shrink.c */
int fuzz_main(int argc, char **argv);         /* fuzz.c */

/* True for --help and -h. */
bool cli_is_help(const char *arg);

/* Appends word to a shell command line in buf (size bytes), quoted when the
 * shell would split or expand it. */
void cli_shell_word(char *buf, size_t size, const char *word);
/* The command that replays one run: `faultdrill run [--live] FILE --seed N
 * [--out OUT]` (out NULL: the default, left out), quoted for a shell. */
void cli_replay(char *buf, size_t size, bool live, const char *file, uint64_t seed,
                const char *out);

/* ---- Drill files -------------------------------------------------------- */

#define CLI_FILES_MAX 1024

struct cli_files {
    size_t count;
    char *paths[CLI_FILES_MAX];
};

/* Adds a file, or every *.drill of a directory sorted by name; 0 or -errno
 * after printing why on stderr. */
int cli_files_collect(struct cli_files *fl, const char *arg);
void cli_files_release(struct cli_files *fl);

/* Parses drill text and checks that `run` would take it (drill_check_runnable):
 * what `check` accepts; 0 or -EINVAL with the errors in errs. */
int cli_drill_parse(const char *file, const char *text, size_t len, struct drill *d,
                    struct drill_errors *errs);
/* Parses one drill (calloc'd; free it), printing its errors; NULL when invalid. */
struct drill *cli_drill_load(const char *path);

/* ---- Numbers, paths, time ----------------------------------------------- */

/* A whole number in decimal, nothing else: 0 or -EINVAL. */
int cli_parse_u64(const char *text, uint64_t *out);
/* mkdir -p; 0 or -errno with the message in err. */
int cli_mkdir_p(const char *path, char err[REPORT_ERR_MAX]);
/* Milliseconds on the monotonic clock. */
int64_t cli_now_ms(void);
/* The number of online processors, at least 1. */
int cli_cores(void);
/* argv[0] as the user can retype it in a replay command: "faultdrill". */
#define CLI_PROGRAM "faultdrill"

/* ---- The progress line ---------------------------------------------------- */

/*
 * One line rewritten in place on stdout: "sweep  340/1,000  2 failing
 * 38.1 runs/s  17s left". On only when stdout is a terminal and CI is not
 * set; every call is a no-op otherwise.
 */
struct cli_progress {
    bool on;
    const char *what;
    uint64_t total;
    int64_t start_ms;
    int64_t shown_ms;
    size_t width; /* of the last line drawn, to blank it */
};

void cli_progress_start(struct cli_progress *p, const char *what, uint64_t total);
void cli_progress_update(struct cli_progress *p, uint64_t done, uint64_t failures);
/* Erases the line (before printing results). */
void cli_progress_end(struct cli_progress *p);

#endif /* FAULTDRILL_SIM_CLI_H */
