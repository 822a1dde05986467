/*
 * summary.c — the lines `faultdrill run` prints per drill run (DESIGN.md §5
 * is the contract for the first one):
 *
 *   PASS  mirror-primary-disk-fails  seed=42  14 checks  1,204 ops  30s simulated in 38ms
 *
 * A failure adds, indented two spaces, each unmet expectation's explanation
 * and the replay command; verbose adds the about text and the faults. Depends
 * on the text helpers of libreports.
 */
#include "reports/reports.h"

#include <assert.h>
#include <inttypes.h>

/*
 * s for a terminal: control characters become '?' so user text cannot move
 * the cursor; a line break continues on a new line indented by `indent`.
 */
static void summary_put(FILE *out, const char *s, const char *indent)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '\n') {
            fprintf(out, "\n%s", indent);
        } else if (*p < 0x20 || *p == 0x7F) {
            fputc('?', out);
        } else {
            fputc(*p, out);
        }
    }
}

static void summary_headline(const struct report_run *r, FILE *out)
{
    uint64_t checks = 0, witnesses = 0;
    for (size_t i = 0; i < r->expectation_count; i++) {
        checks += r->expectations[i].checks;
        witnesses += r->expectations[i].witnesses;
    }
    char checks_text[REPORT_FMT_MAX], ops[REPORT_FMT_MAX], simulated[REPORT_FMT_MAX];
    char witness_text[REPORT_FMT_MAX];
    report_format_count(checks, checks_text);
    report_format_count(witnesses, witness_text);
    report_format_count(r->total_ops, ops);
    report_format_duration(r->simulated_us, simulated);
    fprintf(out, "%s  ", r->pass ? "PASS" : "FAIL");
    summary_put(out, r->drill_name, "");
    fprintf(out,
            "  seed=%" PRIu64 "  %s checks  %s witnesses  %s ops  %s %s in %" PRId64 "ms\n",
            r->seed, checks_text, witness_text, ops, simulated, r->live ? "live" : "simulated",
            r->wall_ms);
}

static void summary_verbose(const struct report_run *r, FILE *out)
{
    if (r->about[0] != '\0') {
        fputs("  ", out);
        summary_put(out, r->about, "  ");
        fputc('\n', out);
    }
    for (size_t i = 0; i < r->fault_count; i++) {
        const struct report_fault *f = &r->faults[i];
        char armed[REPORT_FMT_MAX], healed[REPORT_FMT_MAX], fired[REPORT_FMT_MAX];
        char reached[REPORT_FMT_MAX];
        report_format_duration(f->armed_at_us < 0 ? 0 : f->armed_at_us, armed);
        report_format_duration(f->healed_at_us < 0 ? 0 : f->healed_at_us, healed);
        report_format_count(f->fired, fired);
        report_format_count(f->reached, reached);
        fputs("  fault ", out);
        summary_put(out, f->name, "  ");
        if (f->lane[0] != '\0') {
            fputs(" on ", out);
            summary_put(out, f->lane, "  ");
        }
        if (f->armed_at_us < 0) {
            fprintf(out, " (line %d): never armed, NEVER FIRED\n", f->line);
            continue;
        }
        fprintf(out, ": armed at %s, %s%s, fired %s time%s", armed,
                f->healed_at_us >= 0 ? "healed at " : "never healed",
                f->healed_at_us >= 0 ? healed : "", fired, f->fired == 1 ? "" : "s");
        fprintf(out, " of %s call%s%s\n", reached, f->reached == 1 ? "" : "s",
                f->fired == 0 ? ": NEVER FIRED" : "");
    }
}

void report_print_summary(const struct report_run *r, FILE *out, bool verbose)
{
    assert(report_run_is_valid(r));
    assert(out != NULL);
    summary_headline(r, out);
    if (verbose) {
        summary_verbose(r, out);
    }
    if (r->pass) {
        return;
    }
    for (size_t i = 0; i < r->expectation_count; i++) {
        const struct report_expectation *e = &r->expectations[i];
        if (e->ok) {
            continue;
        }
        fputs("  expected ", out);
        summary_put(out, e->invariant, "");
        fprintf(out, " to %s: ", e->expect_violated ? "be violated" : "hold");
        summary_put(out, e->explanation, "    ");
        fputc('\n', out);
    }
    fputs("  replay: ", out);
    summary_put(out, r->replay, "  ");
    fputc('\n', out);
}
