/*
 * markdown.c — report.md, the result of one drill run for people reading a
 * CI artifact or a pull request: title, verdict, the about text, tables of
 * expectations, faults and operations (ok, rejected, fail, unknown, and why),
 * each unmet expectation and each expected violation with its explanation
 * quoted, its causal story and the invariant's paragraph, and the replay
 * command.
 *
 * User text (titles, explanations, names) is escaped so it can neither open
 * an HTML tag nor break a table. Depends on the text helpers of libreports.
 */
#include "reports/reports.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

/* What would start markup in running text or end a table cell. */
#define MD_SPECIAL "\\`*<>[]|&"

static void md_put_char(FILE *out, char c)
{
    assert(c != '\0');
    if (strchr(MD_SPECIAL, c) != NULL) {
        fputc('\\', out);
    }
    fputc(c, out);
}

/* s escaped; in a table cell a line break becomes a space. */
static void md_put(FILE *out, const char *s, bool in_cell)
{
    for (const char *p = s; *p != '\0'; p++) {
        if (in_cell && (*p == '\n' || *p == '\r')) {
            fputc(' ', out);
        } else {
            md_put_char(out, *p);
        }
    }
}

/* Each line of s as a block quote line. */
static void md_put_quoted(FILE *out, const char *s)
{
    fputs("> ", out);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\n') {
            fputs("\n> ", out);
        } else {
            md_put_char(out, *p);
        }
    }
    fputs("\n\n", out);
}

static void md_header(const struct report_run *r, FILE *out)
{
    char ops[REPORT_FMT_MAX], simulated[REPORT_FMT_MAX];
    report_format_count(r->total_ops, ops);
    report_format_duration(r->simulated_us, simulated);
    fputs("# ", out);
    md_put(out, r->title[0] != '\0' ? r->title : r->drill_name, true);
    fprintf(out, "\n\n**%s** — drill ", r->pass ? "PASS" : "FAIL");
    md_put(out, r->drill_name, true);
    fprintf(out, ", seed %" PRIu64 "\n\n- file: ", r->seed);
    md_put(out, r->drill_file, true);
    if (r->live)
        fprintf(out, "\n- live: %s against real serve processes, %" PRId64
                     " ms of wall time\n- %s operations\n- trace sha256: `%s` (a live run is not "
                     "reproducible: no promise)\n",
                simulated, r->wall_ms, ops, r->trace_sha256);
    else
        fprintf(out, "\n- %s simulated in %" PRId64 " ms of wall time\n- %s operations\n"
                     "- trace sha256: `%s`\n",
                simulated, r->wall_ms, ops, r->trace_sha256);
    for (size_t i = 0; i < r->metric_count; i++)
        fprintf(out, "- %s: %" PRId64 " %s\n", r->metrics[i].name, r->metrics[i].value,
                r->metrics[i].unit);
    fputs("\n", out);
    if (r->about[0] != '\0') {
        md_put_quoted(out, r->about);
    }
}

static void md_story(const struct report_expectation *e, FILE *out)
{
    if (e->story_count == 0) {
        return;
    }
    fputs("How it came about:\n\n", out);
    for (size_t k = 0; k < e->story_count; k++) {
        char at[REPORT_FMT_MAX];
        report_format_story_time(e->story[k].at_us, at);
        fprintf(out, "%zu. **%s** ", k + 1, at);
        md_put(out,
               e->story[k].lane[0] != '\0' && strcmp(e->story[k].lane, "-") != 0 ? e->story[k].lane
                                                                                 : "everywhere",
               true);
        fputs(": ", out);
        md_put(out, e->story[k].text, true);
        fputc('\n', out);
    }
    fputc('\n', out);
}

/* One expectation's section: the verdict, what was found, the story, the paragraph. */
static void md_expectation(const struct report_expectation *e, FILE *out)
{
    fprintf(out, "### %s ", e->ok ? "Met:" : "Not met:");
    md_put(out, e->invariant, true);
    fprintf(out, "\n\nExpected it to %s; it %s", e->expect_violated ? "be violated" : "hold",
            e->observed_violated ? "was violated"
            : e->unexercised     ? "was unexercised (it judged nothing)"
                                 : "held");
    if (e->first_violation_us >= 0) {
        char at[REPORT_FMT_MAX];
        report_format_duration(e->first_violation_us, at);
        fprintf(out, ", first at %s", at);
    }
    fputs(".\n\n", out);
    md_put_quoted(out, e->explanation);
    md_story(e, out);
    if (e->paragraph[0] != '\0') {
        fputs("*What it means:* ", out);
        md_put(out, e->paragraph, true);
        fputs("\n\n", out);
    }
}

static void md_expectations(const struct report_run *r, FILE *out)
{
    fputs("## Expectations\n\n", out);
    if (r->expectation_count == 0) {
        fputs("The drill expects nothing.\n\n", out);
        return;
    }
    fputs("| invariant | expected | observed | ok | witnesses |\n|---|---|---|---|---:|\n", out);
    for (size_t i = 0; i < r->expectation_count; i++) {
        const struct report_expectation *e = &r->expectations[i];
        char witnesses[REPORT_FMT_MAX];
        report_format_count(e->witnesses, witnesses);
        fputs("| ", out);
        md_put(out, e->invariant, true);
        fprintf(out, " | %s | %s | %s | %s ", e->expect_violated ? "violated" : "hold",
                report_observed(e), e->ok ? "yes" : "**no**", witnesses);
        md_put(out, e->witness_noun, true);
        fputs(" |\n", out);
    }
    fputc('\n', out);
    /* the unmet ones, then the violations that were expected: each with its story */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < r->expectation_count; i++) {
            const struct report_expectation *e = &r->expectations[i];
            bool wanted = pass == 0 ? !e->ok : e->ok && e->observed_violated;
            if (wanted) {
                md_expectation(e, out);
            }
        }
    }
}

static void md_faults(const struct report_run *r, FILE *out)
{
    fputs("## Faults\n\n", out);
    if (r->fault_count == 0) {
        fputs("No faults were armed.\n\n", out);
        return;
    }
    fputs("| fault | line | lane | armed at | healed at | reached | fired |\n"
          "|---|---:|---|---:|---:|---:|---:|\n",
          out);
    size_t never = 0;
    for (size_t i = 0; i < r->fault_count; i++) {
        const struct report_fault *f = &r->faults[i];
        char armed[REPORT_FMT_MAX], healed[REPORT_FMT_MAX], fired[REPORT_FMT_MAX];
        char reached[REPORT_FMT_MAX];
        if (f->armed_at_us >= 0) {
            report_format_duration(f->armed_at_us, armed);
        } else {
            snprintf(armed, sizeof armed, "never");
        }
        report_format_count(f->reached, reached);
        never += f->fired == 0;
        if (f->healed_at_us >= 0) {
            report_format_duration(f->healed_at_us, healed);
        } else {
            snprintf(healed, sizeof healed, "never");
        }
        report_format_count(f->fired, fired);
        fputs("| ", out);
        md_put(out, f->name, true);
        fprintf(out, " | %d | ", f->line);
        md_put(out, f->lane[0] != '\0' ? f->lane : "-", true);
        fprintf(out, " | %s | %s | %s | %s%s |\n", armed, healed, reached, fired,
                f->fired == 0 ? " **never fired**" : "");
    }
    fputc('\n', out);
    if (never > 0) {
        fprintf(out,
                "**%zu fault statement%s never fired**: the drill did not exercise %s (reached "
                "counts the calls that consulted the point while it was armed).\n\n",
                never, never == 1 ? "" : "s", never == 1 ? "it" : "them");
    }
}

static void md_reasons(const struct report_run *r, FILE *out)
{
    if (r->reason_count == 0) {
        return;
    }
    fputs("Why operations did not succeed:\n\n| outcome | kind | reason | count |\n"
          "|---|---|---|---:|\n",
          out);
    for (size_t i = 0; i < r->reason_count; i++) {
        const struct report_reason *x = &r->reasons[i];
        char count[REPORT_FMT_MAX];
        report_format_count(x->count, count);
        fputs("| ", out);
        md_put(out, x->outcome, true);
        fputs(" | ", out);
        md_put(out, x->kind, true);
        fputs(" | ", out);
        md_put(out, x->reason, true);
        fprintf(out, " | %s |\n", count);
    }
    fputc('\n', out);
}

static void md_ops(const struct report_run *r, FILE *out)
{
    char total[REPORT_FMT_MAX];
    report_format_count(r->total_ops, total);
    fputs("## Operations\n\n", out);
    if (r->op_count > 0) {
        fputs("| kind | ok | rejected | fail | unknown |\n|---|---:|---:|---:|---:|\n", out);
    }
    for (size_t i = 0; i < r->op_count; i++) {
        struct report_op_text t;
        report_format_op(&r->ops[i], &t);
        fputs("| ", out);
        md_put(out, r->ops[i].kind, true);
        fprintf(out, " | %s | %s | %s | %s |\n", t.ok, t.rejected, t.fail, t.unknown);
    }
    fprintf(out,
            "%s%s operations in all. *Rejected*: a business rule said no (an empty cart, "
            "insufficient stock, a duplicate email); *fail*: the system could not do it; "
            "*unknown*: no reply, or the node died with the operation in flight.\n\n",
            r->op_count > 0 ? "\n" : "", total);
    md_reasons(r, out);
}

/* A fence longer than any run of backticks in s, so s cannot close it. */
static size_t md_fence_len(const char *s)
{
    size_t longest = 0, run = 0;
    for (const char *p = s; *p != '\0'; p++) {
        run = *p == '`' ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    return longest < 3 ? 3 : longest + 1;
}

static void md_replay(const struct report_run *r, FILE *out)
{
    size_t fence = md_fence_len(r->replay);
    fputs("## Replay\n\n", out);
    for (size_t i = 0; i < fence; i++) {
        fputc('`', out);
    }
    fprintf(out, "sh\n%s\n", r->replay);
    for (size_t i = 0; i < fence; i++) {
        fputc('`', out);
    }
    fputc('\n', out);
}

int report_write_markdown(const struct report_run *r, FILE *out)
{
    assert(report_run_is_valid(r));
    assert(out != NULL);
    md_header(r, out);
    md_expectations(r, out);
    md_faults(r, out);
    md_ops(r, out);
    md_replay(r, out);
    return report_stream_status(out);
}
