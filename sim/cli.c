/*
 * cli.c — helpers the faultdrill commands share (see cli.h): drill files
 * from the arguments, loading with errors printed, numbers, mkdir -p, the
 * wall clock and the progress line. Reads the terminal and the clock; knows
 * nothing of how a drill runs.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sim/cli.h"

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

void cli_shell_word(char *buf, size_t size, const char *word)
{
    size_t n = strlen(buf);
    bool plain = word[0] != '\0' && strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                  "0123456789_./-+=:,@%") == strlen(word);
    if (plain) {
        snprintf(buf + n, size - n, " %s", word);
        return;
    }
    if (n + 3 < size) {
        buf[n++] = ' ';
        buf[n++] = '\'';
    }
    for (const char *c = word; *c != '\0' && n + 5 < size; c++) {
        if (*c == '\'') {
            memcpy(buf + n, "'\\''", 4);
            n += 4;
        } else {
            buf[n++] = *c;
        }
    }
    if (n + 1 < size)
        buf[n++] = '\'';
    buf[n] = '\0';
}

void cli_replay(char *buf, size_t size, bool live, const char *file, uint64_t seed,
                const char *out)
{
    snprintf(buf, size, CLI_PROGRAM " run%s", live ? " --live" : "");
    cli_shell_word(buf, size, file);
    size_t n = strlen(buf);
    snprintf(buf + n, size - n, " --seed %" PRIu64, seed);
    if (out != NULL) {
        n = strlen(buf);
        snprintf(buf + n, size - n, " --out");
        cli_shell_word(buf, size, out);
    }
}

/* ---- drill files ---------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_path(struct cli_files *fl, const char *path)
{
    if (fl->count == CLI_FILES_MAX) {
        fprintf(stderr, "faultdrill: more than %d drills at once\n", CLI_FILES_MAX);
        return -E2BIG;
    }
    fl->paths[fl->count] = strdup(path);
    if (fl->paths[fl->count] == NULL)
        return -ENOMEM;
    fl->count++;
    return 0;
}

static int add_dir(struct cli_files *fl, const char *dir)
{
    DIR *dp = opendir(dir);
    if (dp == NULL) {
        int err = -errno;
        fprintf(stderr, "faultdrill: %s: %s\n", dir, strerror(errno));
        return err;
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

int cli_files_collect(struct cli_files *fl, const char *arg)
{
    struct stat st;
    if (stat(arg, &st) != 0) {
        int err = -errno;
        fprintf(stderr, "faultdrill: %s: %s\n", arg, strerror(errno));
        return err;
    }
    return S_ISDIR(st.st_mode) ? add_dir(fl, arg) : add_path(fl, arg);
}

void cli_files_release(struct cli_files *fl)
{
    for (size_t i = 0; i < fl->count; i++)
        free(fl->paths[i]);
    fl->count = 0;
}

int cli_drill_parse(const char *file, const char *text, size_t len, struct drill *d,
                    struct drill_errors *errs)
{
    int err = drill_parse_text(file, text, len, d, errs);
    return err ? err : drill_check_runnable(d, errs);
}

struct drill *cli_drill_load(const char *path)
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
    if (!err)
        err = drill_check_runnable(d, errs); /* what run would refuse, check refuses too */
    if (err) {
        drill_errors_print(path, errs, stderr);
        free(d);
        d = NULL;
    }
    free(errs);
    return d;
}

/* ---- numbers, paths, time ------------------------------------------------ */

int cli_parse_u64(const char *text, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || text[0] == '+' ||
        text[0] == ' ')
        return -EINVAL;
    *out = v;
    return 0;
}

int cli_mkdir_p(const char *path, char err[REPORT_ERR_MAX])
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        snprintf(err, REPORT_ERR_MAX, "path too long: %.300s", path);
        return -ENAMETOOLONG;
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                int rc = -errno;
                snprintf(err, REPORT_ERR_MAX, "cannot create %.300s: %s", buf, strerror(errno));
                return rc;
            }
            *p = saved;
            if (saved == '\0')
                return 0;
        }
    }
}

int64_t cli_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int cli_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 256 ? 256 : (int)n);
}

/* ---- the progress line ---------------------------------------------------- */

#define PROGRESS_EVERY_MS 200

void cli_progress_start(struct cli_progress *p, const char *what, uint64_t total)
{
    const char *ci = getenv("CI");
    *p = (struct cli_progress){
        .on = isatty(STDOUT_FILENO) && (ci == NULL || ci[0] == '\0'),
        .what = what,
        .total = total,
        .start_ms = cli_now_ms(),
    };
}

void cli_progress_update(struct cli_progress *p, uint64_t done, uint64_t failures)
{
    if (!p->on)
        return;
    int64_t now = cli_now_ms();
    if (now - p->shown_ms < PROGRESS_EVERY_MS && done != p->total)
        return;
    p->shown_ms = now;
    double elapsed_s = (double)(now - p->start_ms) / 1000.0;
    double rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
    char d[REPORT_FMT_MAX], t[REPORT_FMT_MAX], left[64] = "";
    report_format_count(done, d);
    report_format_count(p->total, t);
    if (p->total > 0 && rate > 0 && done < p->total) {
        char dur[REPORT_FMT_MAX];
        double s = (double)(p->total - done) / rate;
        report_format_duration((int64_t)s * 1000000, dur);
        snprintf(left, sizeof(left), "  %s left", dur);
    }
    char line[256];
    int n = p->total > 0 ? snprintf(line, sizeof(line), "%s  %s/%s  %" PRIu64 " failing  %.1f runs/s%s",
                                    p->what, d, t, failures, rate, left)
                         : snprintf(line, sizeof(line), "%s  %s  %" PRIu64 " failing  %.1f runs/s",
                                    p->what, d, failures, rate);
    size_t len = n < 0 ? 0 : (size_t)n;
    printf("\r%s", line);
    for (size_t i = len; i < p->width; i++)
        putchar(' ');
    p->width = len;
    fflush(stdout);
}

void cli_progress_end(struct cli_progress *p)
{
    if (!p->on || p->width == 0)
        return;
    printf("\r%*s\r", (int)p->width, "");
    fflush(stdout);
    p->width = 0;
}
