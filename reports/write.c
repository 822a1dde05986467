/*
 * write.c — report_write_dir: the four files of one drill run (DESIGN.md §6
 * fixes their names) written into the run's directory, which the caller has
 * made: report.json, report.md, report.html and trace.log.
 *
 * Every failure (a file that cannot be created, a short write, a failing
 * close) comes back as -errno with a message naming the file; a file left
 * half written is removed, so a reader finds a whole report or none. Depends
 * on the writers of libreports and libc.
 */
#include "reports/reports.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define WRITE_PATH_MAX 4096

typedef int report_writer(const struct report_run *r, FILE *out);

/* trace.log is the runner's trace as it is, byte for byte. */
static int write_trace(const struct report_run *r, FILE *out)
{
    errno = 0;
    if (r->trace != NULL || r->trace_len == 0) {
        if (r->trace_len > 0 && fwrite(r->trace, 1, r->trace_len, out) != r->trace_len)
            return errno != 0 ? -errno : -EIO;
        return report_stream_status(out);
    }
    /* a long run's trace, copied from its file */
    if (fseek(r->trace_file, 0, SEEK_SET) != 0)
        return errno != 0 ? -errno : -EIO;
    char buf[1 << 16];
    size_t left = r->trace_len;
    while (left > 0) {
        size_t n = fread(buf, 1, left < sizeof(buf) ? left : sizeof(buf), r->trace_file);
        if (n == 0)
            return ferror(r->trace_file) && errno != 0 ? -errno : -EIO;
        if (fwrite(buf, 1, n, out) != n)
            return errno != 0 ? -errno : -EIO;
        left -= n;
    }
    return report_stream_status(out);
}

static int write_fail(char err[REPORT_ERR_MAX], int rc, const char *what, const char *path)
{
    assert(rc < 0);
    /* The path is cut, if it must be, so the reason at the end always fits. */
    snprintf(err, REPORT_ERR_MAX, "cannot %s %.*s: %s", what, REPORT_ERR_MAX / 2, path,
             strerror(-rc));
    return rc;
}

static int write_file(const struct report_run *r, const char *dir, const char *name,
                      report_writer *writer, char err[REPORT_ERR_MAX])
{
    char path[WRITE_PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        return write_fail(err, -ENAMETOOLONG, "create", name);
    }
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        return write_fail(err, -errno, "create", path);
    }
    int rc = writer(r, out);
    errno = 0;
    if (fclose(out) != 0 && rc == 0) {
        rc = errno != 0 ? -errno : -EIO;
    }
    if (rc != 0) {
        unlink(path);
        return write_fail(err, rc, "write", path);
    }
    return 0;
}

int report_write_dir(const struct report_run *r, const char *dir, char err[REPORT_ERR_MAX])
{
    static const struct {
        const char *name;
        report_writer *writer;
    } files[] = {
        {"report.json", report_write_json},
        {"report.md", report_write_markdown},
        {"report.html", report_write_html},
        {"trace.log", write_trace},
    };
    assert(report_run_is_valid(r));
    assert(dir != NULL && err != NULL);
    err[0] = '\0';
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int rc = write_file(r, dir, files[i].name, files[i].writer, err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
