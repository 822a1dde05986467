/*
 * html.c — report.html: the result of one drill run as one self-contained
 * page a student can open from a CI artifact. Header with title, verdict and
 * seed; the about text; the SVG timeline (timeline.c) with a legend; the
 * expectations with their explanations; faults; operations; the replay
 * command.
 *
 * No network: inline CSS, no script, no external URL, no src attribute.
 * Every piece of user text goes through report_xml_put_text: drill titles are
 * user input. Depends on the text helpers and the timeline of libreports.
 */
#include "reports/reports.h"

#include <assert.h>
#include <inttypes.h>

static const char html_style[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#24292f;"
    "max-width:1100px;margin:0 auto;padding:1.5rem;line-height:1.45}\n"
    "h1{margin:0 0 .4rem;font-size:1.6rem}h2{margin-top:2rem;font-size:1.2rem;"
    "border-bottom:1px solid #d8dee4;padding-bottom:.2rem}\n"
    ".verdict{display:inline-block;padding:.1rem .6rem;border-radius:4px;color:#fff;"
    "font-weight:700}.pass{background:#2e9d4f}.fail{background:#d0342c}\n"
    ".facts{color:#57606a}.about{white-space:pre-wrap;border-left:4px solid #d8dee4;"
    "padding-left:.8rem}\n"
    "table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d8dee4;"
    "padding:.3rem .6rem;text-align:left;vertical-align:top}th{background:#f6f8fa}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "tr.unmet td{background:#fff5f5}.explanation{white-space:pre-wrap;max-width:40rem}\n"
    ".timeline{border:1px solid #d8dee4;background:#fff}\n"
    ".legend span{margin-right:1rem;white-space:nowrap}.sw{display:inline-block;width:.9rem;"
    "height:.9rem;vertical-align:middle;margin-right:.3rem;border-radius:2px}\n"
    "pre{background:#f6f8fa;padding:.8rem;overflow-x:auto}code{font-size:.95em}\n";

static void html_head(const struct report_run *r, FILE *out)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          out);
    fprintf(out, "%s \xE2\x80\x94 ", r->pass ? "PASS" : "FAIL");
    report_xml_put_text(out, r->title[0] != '\0' ? r->title : r->drill_name);
    fprintf(out, " (seed %" PRIu64 ")</title>\n<style>\n%s</style>\n</head>\n<body>\n", r->seed,
            html_style);
}

static void html_header(const struct report_run *r, FILE *out)
{
    char ops[REPORT_FMT_MAX], simulated[REPORT_FMT_MAX];
    report_format_count(r->total_ops, ops);
    report_format_duration(r->simulated_us, simulated);
    fputs("<header>\n<h1>", out);
    report_xml_put_text(out, r->title[0] != '\0' ? r->title : r->drill_name);
    fprintf(out, "</h1>\n<p><span class=\"verdict %s\">%s</span> drill <strong>",
            r->pass ? "pass" : "fail", r->pass ? "PASS" : "FAIL");
    report_xml_put_text(out, r->drill_name);
    fprintf(out, "</strong>, seed <strong>%" PRIu64 "</strong></p>\n<p class=\"facts\">", r->seed);
    report_xml_put_text(out, r->drill_file);
    fprintf(out,
            " \xC2\xB7 %s simulated in %" PRId64 " ms \xC2\xB7 %s operations \xC2\xB7 "
            "trace sha256 <code>",
            simulated, r->wall_ms, ops);
    report_xml_put_text(out, r->trace_sha256);
    fputs("</code></p>\n</header>\n", out);
    if (r->about[0] != '\0') {
        fputs("<p class=\"about\">", out);
        report_xml_put_text(out, r->about);
        fputs("</p>\n", out);
    }
}

static int html_timeline(const struct report_run *r, FILE *out)
{
    static const char *const legend[][2] = {
        {"#f28c28;opacity:.45", "fault armed"},
        {"#2e9d4f", "operation ok"},
        {"#d0342c", "operation failed"},
        {"#e0a100", "outcome unknown"},
        {"#222222", "crash \xC3\x97"},
        {"#2e9d4f", "restart \xE2\x96\xB2"},
        {"#8a63d2", "checkpoint"},
        {"#d0342c;border-radius:50%", "violation"},
    };
    fputs("<section>\n<h2>Timeline</h2>\n", out);
    int rc = report_write_timeline(r, out);
    fputs("<p class=\"legend\">", out);
    for (size_t i = 0; i < sizeof legend / sizeof legend[0]; i++) {
        fprintf(out, "<span><i class=\"sw\" style=\"background:%s\"></i>%s</span>", legend[i][0],
                legend[i][1]);
    }
    fputs("<br>Hover over a mark for its time and details. Dashed lines: partitions (dark) "
          "and heals (green).</p>\n</section>\n",
          out);
    return rc;
}

static void html_expectation(const struct report_expectation *e, FILE *out)
{
    char checks[REPORT_FMT_MAX], first[REPORT_FMT_MAX] = "\xE2\x80\x94";
    char witnesses[REPORT_FMT_MAX];
    report_format_count(e->checks, checks);
    report_format_count(e->witnesses, witnesses);
    if (e->first_violation_us >= 0) {
        report_format_duration(e->first_violation_us, first);
    }
    fprintf(out, "<tr%s><td>", e->ok ? "" : " class=\"unmet\"");
    report_xml_put_text(out, e->invariant);
    fprintf(out,
            "</td><td>%s</td><td>%s</td><td>%s</td><td class=\"num\">%s</td>"
            "<td class=\"num\">%s</td><td class=\"num\">%s ",
            e->expect_violated ? "violated" : "hold", report_observed(e),
            e->ok ? "\xE2\x9C\x93 met" : "<strong>\xE2\x9C\x97 not met</strong>", first, checks,
            witnesses);
    report_xml_put_text(out, e->witness_noun);
    fputs("</td><td class=\"explanation\">", out);
    report_xml_put_text(out, e->explanation);
    fputs("</td></tr>\n", out);
}

static void html_expectations(const struct report_run *r, FILE *out)
{
    fputs("<section>\n<h2>Expectations</h2>\n", out);
    if (r->expectation_count == 0) {
        fputs("<p>The drill expects nothing.</p>\n</section>\n", out);
        return;
    }
    fputs("<table>\n<tr><th>invariant</th><th>expected</th><th>observed</th><th>result</th>"
          "<th>first violation</th><th>checks</th><th>witnesses</th><th>explanation</th></tr>\n",
          out);
    for (size_t i = 0; i < r->expectation_count; i++) {
        html_expectation(&r->expectations[i], out);
    }
    fputs("</table>\n</section>\n", out);
}

static void html_faults(const struct report_run *r, FILE *out)
{
    fputs("<section>\n<h2>Faults</h2>\n", out);
    if (r->fault_count == 0) {
        fputs("<p>No faults were armed.</p>\n</section>\n", out);
        return;
    }
    fputs("<table>\n<tr><th>fault</th><th>line</th><th>lane</th><th>armed at</th>"
          "<th>healed at</th><th>reached</th><th>fired</th></tr>\n",
          out);
    for (size_t i = 0; i < r->fault_count; i++) {
        const struct report_fault *f = &r->faults[i];
        char armed[REPORT_FMT_MAX] = "never", healed[REPORT_FMT_MAX] = "never";
        char fired[REPORT_FMT_MAX], reached[REPORT_FMT_MAX];
        if (f->armed_at_us >= 0) {
            report_format_duration(f->armed_at_us, armed);
        }
        if (f->healed_at_us >= 0) {
            report_format_duration(f->healed_at_us, healed);
        }
        report_format_count(f->fired, fired);
        report_format_count(f->reached, reached);
        fprintf(out, "<tr%s><td><code>", f->fired == 0 ? " class=\"unmet\"" : "");
        report_xml_put_text(out, f->name);
        fprintf(out, "</code></td><td class=\"num\">%d</td><td>", f->line);
        report_xml_put_text(out, f->lane);
        fprintf(out,
                "</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                "<td class=\"num\">%s</td><td class=\"num\">%s%s</td></tr>\n",
                armed, healed, reached, fired,
                f->fired == 0 ? " <strong>never fired</strong>" : "");
    }
    fputs("</table>\n</section>\n", out);
}

static void html_ops(const struct report_run *r, FILE *out)
{
    char total[REPORT_FMT_MAX];
    report_format_count(r->total_ops, total);
    fputs("<section>\n<h2>Operations</h2>\n", out);
    if (r->op_count > 0) {
        fputs("<table>\n<tr><th>kind</th><th>ok</th><th>failed</th><th>unknown</th></tr>\n", out);
    }
    for (size_t i = 0; i < r->op_count; i++) {
        struct report_op_text t;
        report_format_op(&r->ops[i], &t);
        fputs("<tr><td>", out);
        report_xml_put_text(out, r->ops[i].kind);
        fprintf(out,
                "</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                "<td class=\"num\">%s</td></tr>\n",
                t.ok, t.fail, t.unknown);
    }
    fprintf(out,
            "%s<p>%s operations in all. <em>Unknown</em>: the node died with the operation "
            "in flight, so it may or may not have been applied.</p>\n</section>\n",
            r->op_count > 0 ? "</table>\n" : "", total);
}

static void html_replay(const struct report_run *r, FILE *out)
{
    fputs("<section>\n<h2>Replay</h2>\n<p>The same drill and seed replay this run exactly:</p>\n"
          "<pre><code>",
          out);
    report_xml_put_text(out, r->replay);
    fputs("</code></pre>\n</section>\n</body>\n</html>\n", out);
}

int report_write_html(const struct report_run *r, FILE *out)
{
    assert(report_run_is_valid(r));
    assert(out != NULL);
    html_head(r, out);
    html_header(r, out);
    int rc = html_timeline(r, out);
    html_expectations(r, out);
    html_faults(r, out);
    html_ops(r, out);
    html_replay(r, out);
    int status = report_stream_status(out);
    return rc != 0 ? rc : status;
}
