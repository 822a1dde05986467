/*
 * junit.c — JUnit XML of several drill runs, for CI test tabs: one
 * <testsuite> per drill (in the order the drills first appear), one
 * <testcase> per drill x seed x expectation, a <failure> with the explanation
 * and the replay command for each expectation not met, and an <error> for a
 * drill x seed that could not run (exit 3).
 *
 * Written to a temporary file in the target's directory and renamed over it,
 * so a CI job never reads half a file. Depends on the text helpers of
 * libreports and POSIX file calls.
 */
#include "reports/reports.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JUNIT_PATH_MAX    4096
#define JUNIT_TEMP_SUFFIX ".tmp.XXXXXX"

/* A run's wall time in seconds, "0.038", without floats or the locale. */
static void junit_put_seconds(FILE *out, int64_t ms)
{
    if (ms < 0) {
        ms = 0;
    }
    fprintf(out, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
}

static void junit_testcase(FILE *out, const struct report_run *r,
                           const struct report_expectation *e)
{
    const char *expected = e->expect_violated ? "violated" : "hold";
    fputs("    <testcase name=\"", out);
    report_xml_put_attr(out, e->invariant);
    fprintf(out, " (expected %s)\" classname=\"faultdrill.", expected);
    report_xml_put_attr(out, r->drill_name);
    fprintf(out, ".seed-%" PRIu64 "\" time=\"", r->seed);
    junit_put_seconds(out, r->wall_ms);
    if (e->ok) {
        /* what it judged, e.g. "held over 1,204 acknowledged writes..." */
        fputs("\">\n      <system-out>", out);
        report_xml_put_text(out, e->explanation);
        fputs("</system-out>\n    </testcase>\n", out);
        return;
    }
    fputs("\">\n      <failure message=\"expected ", out);
    report_xml_put_attr(out, e->invariant);
    fprintf(out, " to %s, but it %s\">", e->expect_violated ? "be violated" : "hold",
            e->observed_violated ? "was violated"
            : e->unexercised     ? "was unexercised"
                                 : "held");
    report_xml_put_text(out, e->explanation);
    fputs("\nreplay: ", out);
    report_xml_put_text(out, r->replay);
    fputs("</failure>\n    </testcase>\n", out);
}

/* A run that could not run: one testcase with the reason, as an <error>. */
static void junit_error(FILE *out, const struct report_run *r)
{
    fputs("    <testcase name=\"run\" classname=\"faultdrill.", out);
    report_xml_put_attr(out, r->drill_name);
    fprintf(out, ".seed-%" PRIu64 "\" time=\"0.000\">\n      <error message=\"could not run\">",
            r->seed);
    report_xml_put_text(out, r->run_error);
    if (r->replay[0] != '\0') {
        fputs("\nreplay: ", out);
        report_xml_put_text(out, r->replay);
    }
    fputs("</error>\n    </testcase>\n", out);
}

static void junit_count(const struct report_run *r, uint64_t *tests, uint64_t *failures,
                        uint64_t *errors, int64_t *ms)
{
    if (r->run_error[0] != '\0') {
        *tests += 1;
        *errors += 1;
        return;
    }
    *tests += r->expectation_count;
    for (size_t i = 0; i < r->expectation_count; i++) {
        *failures += !r->expectations[i].ok;
    }
    *ms += r->wall_ms > 0 ? r->wall_ms : 0;
}

/* The suite of the drill runs[first] names; marks each of its runs done. */
static void junit_suite(FILE *out, const struct report_run *const *runs, size_t count, size_t first,
                        bool *done)
{
    const char *name = runs[first]->drill_name;
    uint64_t tests = 0, failures = 0, errors = 0;
    int64_t ms = 0;
    for (size_t i = first; i < count; i++) {
        if (strcmp(runs[i]->drill_name, name) == 0) {
            junit_count(runs[i], &tests, &failures, &errors, &ms);
        }
    }
    fputs("  <testsuite name=\"", out);
    report_xml_put_attr(out, name);
    fprintf(out,
            "\" tests=\"%" PRIu64 "\" failures=\"%" PRIu64 "\" errors=\"%" PRIu64 "\" time=\"",
            tests, failures, errors);
    junit_put_seconds(out, ms);
    fputs("\">\n", out);
    for (size_t i = first; i < count; i++) {
        if (strcmp(runs[i]->drill_name, name) != 0) {
            continue;
        }
        done[i] = true;
        if (runs[i]->run_error[0] != '\0') {
            junit_error(out, runs[i]);
            continue;
        }
        for (size_t k = 0; k < runs[i]->expectation_count; k++) {
            junit_testcase(out, runs[i], &runs[i]->expectations[k]);
        }
    }
    fputs("  </testsuite>\n", out);
}

static int junit_document(FILE *out, const struct report_run *const *runs, size_t count)
{
    bool *done = calloc(count > 0 ? count : 1, sizeof *done);
    if (done == NULL) {
        return -ENOMEM;
    }
    uint64_t tests = 0, failures = 0, errors = 0;
    int64_t ms = 0;
    for (size_t i = 0; i < count; i++) {
        junit_count(runs[i], &tests, &failures, &errors, &ms);
    }
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"faultdrill\" "
            "tests=\"%" PRIu64 "\" failures=\"%" PRIu64 "\" errors=\"%" PRIu64 "\" time=\"",
            tests, failures, errors);
    junit_put_seconds(out, ms);
    fputs("\">\n", out);
    for (size_t i = 0; i < count; i++) {
        if (!done[i]) {
            junit_suite(out, runs, count, i, done);
        }
    }
    fputs("</testsuites>\n", out);
    free(done);
    return report_stream_status(out);
}

static int junit_fail(char err[REPORT_ERR_MAX], int rc, const char *what, const char *path)
{
    assert(rc < 0);
    /* The path is cut, if it must be, so the reason at the end always fits. */
    snprintf(err, REPORT_ERR_MAX, "cannot %s %.*s: %s", what, REPORT_ERR_MAX / 2, path,
             strerror(-rc));
    return rc;
}

/* Writes the document into the open temporary file and syncs it; closes the stream. */
static int junit_fill(int fd, const struct report_run *const *runs, size_t count)
{
    /* mkstemp makes the file 0600; a JUnit file is for CI to read. */
    if (fchmod(fd, 0644) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    FILE *out = fdopen(fd, "w");
    if (out == NULL) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int rc = junit_document(out, runs, count);
    if (rc == 0 && fsync(fileno(out)) != 0) {
        rc = -errno;
    }
    if (fclose(out) != 0 && rc == 0) {
        rc = -errno;
    }
    return rc;
}

int report_write_junit(const struct report_run *const *runs, size_t count, const char *path,
                       char err[REPORT_ERR_MAX])
{
    assert(runs != NULL || count == 0);
    assert(path != NULL && err != NULL);
    for (size_t i = 0; i < count; i++) {
        assert(report_run_is_valid(runs[i]));
    }
    err[0] = '\0';
    char temp[JUNIT_PATH_MAX];
    if ((size_t)snprintf(temp, sizeof temp, "%s%s", path, JUNIT_TEMP_SUFFIX) >= sizeof temp) {
        return junit_fail(err, -ENAMETOOLONG, "write", path);
    }
    int fd = mkstemp(temp);
    if (fd < 0) {
        return junit_fail(err, -errno, "create a temporary file for", path);
    }
    int rc = junit_fill(fd, runs, count);
    if (rc != 0) {
        unlink(temp);
        return junit_fail(err, rc, "write", path);
    }
    if (rename(temp, path) != 0) {
        rc = -errno;
        unlink(temp);
        return junit_fail(err, rc, "rename a temporary file to", path);
    }
    return 0;
}
