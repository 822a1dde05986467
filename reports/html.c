/*
 * html.c — report.html: the result of one drill run as one self-contained
 * page a student can open from a CI artifact, read top to bottom: the title,
 * verdict and seed; the about text; the timeline (timeline.c) and its legend;
 * each expectation as a card with its verdict, what the checker found, the
 * causal story of a violation (each step linked to its numbered mark on the
 * timeline) and the invariant's paragraph; the operations by outcome (ok,
 * rejected, failed, unknown) with a table of reasons; the faults; the replay
 * command.
 *
 * No network: inline CSS, no script, no external URL, no src attribute.
 * Every piece of user text goes through report_xml_put_text: drill titles are
 * user input. Depends on the text helpers and the timeline of libreports.
 */
#include "reports/reports.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

static const char html_style[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#24292f;"
    "max-width:1180px;margin:0 auto;padding:1rem 1.5rem;line-height:1.45}\n"
    "h1{margin:0 0 .3rem;font-size:1.5rem}h2{margin-top:1.6rem;font-size:1.2rem;"
    "border-bottom:1px solid #d8dee4;padding-bottom:.2rem}h3{margin:.2rem 0;font-size:1.05rem}\n"
    ".verdict{display:inline-block;padding:.1rem .6rem;border-radius:4px;color:#fff;"
    "font-weight:700}.pass{background:#2e9d4f}.fail{background:#d0342c}\n"
    ".facts{color:#57606a;margin:.2rem 0}.about{white-space:pre-wrap;border-left:4px solid "
    "#d8dee4;padding-left:.8rem;margin:.5rem 0}\n"
    "table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d8dee4;"
    "padding:.25rem .6rem;text-align:left;vertical-align:top}th{background:#f6f8fa}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}tr.unmet td{background:#fff5f5}\n"
    ".timeline{border:1px solid #d8dee4;background:#fff}\n"
    ".legend{font-size:.9rem;margin:.3rem 0}.legend span{margin-right:.9rem;white-space:nowrap}"
    ".sw{display:inline-block;width:.9rem;height:.9rem;vertical-align:middle;margin-right:.3rem;"
    "border-radius:2px}\n"
    ".expect{border:1px solid #d8dee4;border-left:6px solid #2e9d4f;border-radius:4px;"
    "padding:.6rem .9rem;margin:.8rem 0}.expect.unmet{border-left-color:#d0342c;"
    "background:#fffafa}.expect.violated-as-expected{border-left-color:#8a63d2}\n"
    ".explanation{white-space:pre-wrap}\n"
    "ol.story{margin:.4rem 0;padding-left:1.6rem}ol.story li{margin:.15rem 0}"
    "ol.story{list-style:none;padding-left:.4rem}"
    "ol.story a{font-variant-numeric:tabular-nums;font-weight:600;text-decoration:none}"
    ".step{display:inline-block;min-width:1.6rem;text-align:center;border:1px solid #24292f;"
    "border-radius:.8rem;font-size:.8rem;margin-right:.3rem;color:#24292f}"
    ".lane{display:inline-block;min-width:5.5rem;color:#57606a}\n"
    "blockquote.paragraph{margin:.5rem 0;padding:.3rem .8rem;border-left:4px solid #8a63d2;"
    "background:#f6f8fa;color:#3d444d}\n"
    ".chip{display:inline-block;padding:0 .45rem;border-radius:3px;color:#fff;font-size:.85rem;"
    "font-weight:600}.o-ok{background:#2e9d4f}.o-rejected{background:#8c959f}"
    ".o-fail{background:#d0342c}.o-unknown{background:#e0a100}.o-various{background:#57606a}\n"
    ".story-mark:target circle{fill:#ffd33d;stroke-width:2}\n"
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
    fprintf(out, "</h1>\n<p class=\"facts\"><span class=\"verdict %s\">%s</span> drill <strong>",
            r->pass ? "pass" : "fail", r->pass ? "PASS" : "FAIL");
    report_xml_put_text(out, r->drill_name);
    fprintf(out,
            "</strong>, seed <strong>%" PRIu64 "</strong> \xC2\xB7 %s %s in %" PRId64
            " ms \xC2\xB7 %s operations \xC2\xB7 ",
            r->seed, simulated, r->live ? "live" : "simulated", r->wall_ms, ops);
    report_xml_put_text(out, r->drill_file);
    fputs(r->live ? " \xC2\xB7 trace sha256 (live: no promise) <code>"
                  : " \xC2\xB7 trace sha256 <code>",
          out);
    report_xml_put_text(out, r->trace_sha256);
    fputs("</code></p>\n</header>\n", out);
    if (r->about[0] != '\0') {
        fputs("<p class=\"about\">", out);
        report_xml_put_text(out, r->about);
        fputs("</p>\n", out);
    }
}

static void html_legend_item(FILE *out, const char *style, const char *words)
{
    fprintf(out, "<span><i class=\"sw\" style=\"%s\"></i>%s</span>", style, words);
}

static int html_timeline(const struct report_run *r, FILE *out)
{
    static const char *const ops[][2] = {
        {"background:#2e9d4f", "ok"},
        {"background:#8c959f", "rejected (a business rule said no)"},
        {"background:#d0342c", "failed"},
        {"background:#e0a100", "outcome unknown"},
    };
    static const char *const marks[][2] = {
        {"background:#f28c28;opacity:.45", "fault armed"},
        {"background:#57606a;opacity:.3", "network partition"},
        {"background:#8a63d2;width:2px", "checkpoint"},
        {"background:#d0342c;border-radius:50%", "violation"},
        {"background:#fff;border:1px solid #24292f;border-radius:50%", "story step"},
    };
    static const char *const states[][2] = {
        {"background:#b7e4c7", "up / in sync"},
        {"background:#6ea8dc", "leading alone"},
        {"background:#f2cc60", "behind (lag)"},
        {"background:#f0883e", "degraded"},
        {"background:#d0342c", "refusing writes"},
        {"background:#afb8c1", "offline"},
        {"background:#24292f", "down"},
    };
    fputs("<section>\n<h2>Timeline</h2>\n", out);
    int rc = report_write_timeline(r, out);
    fputs("<p class=\"legend\"><strong>Operations:</strong> ", out);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        html_legend_item(out, ops[i][0], ops[i][1]);
    }
    fputs("<br><strong>Marks:</strong> ", out);
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        html_legend_item(out, marks[i][0], marks[i][1]);
    }
    fputs("<span>\xC3\x97 crash</span><span>\xE2\x96\xB2 restart</span>"
          "<br><strong>Node states</strong> (the strip under each node): ",
          out);
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        html_legend_item(out, states[i][0], states[i][1]);
    }
    fputs("<br>Hover over anything for its time and details.</p>\n</section>\n", out);
    return rc;
}

/* The causal story: each step's time links to its numbered circle on the timeline. */
static void html_story(const struct report_expectation *e, size_t index, size_t letter, FILE *out)
{
    if (e->story_count == 0) {
        return;
    }
    fputs("<p><strong>How it came about</strong> (click a time to see it on the timeline):</p>\n"
          "<ol class=\"story\">\n",
          out);
    for (size_t k = 0; k < e->story_count; k++) {
        const struct report_story_step *s = &e->story[k];
        char at[REPORT_FMT_MAX], name[16];
        report_format_story_time(s->at_us, at);
        report_story_step_name(letter, k, name);
        fprintf(out,
                "<li value=\"%zu\"><a href=\"#story-%zu-%zu\"><span class=\"step\">%s</span> "
                "%s</a> <span class=\"lane\">",
                k + 1, index + 1, k + 1, name, at);
        report_xml_put_text(out, s->lane[0] != '\0' && strcmp(s->lane, "-") != 0 ? s->lane
                                                                                 : "everywhere");
        fputs("</span> ", out);
        report_xml_put_text(out, s->text);
        fputs("</li>\n", out);
    }
    fputs("</ol>\n", out);
}

static void html_expectation(const struct report_expectation *e, size_t index, size_t letter,
                             FILE *out)
{
    char checks[REPORT_FMT_MAX], first[REPORT_FMT_MAX] = "", witnesses[REPORT_FMT_MAX];
    report_format_count(e->checks, checks);
    report_format_count(e->witnesses, witnesses);
    if (e->first_violation_us >= 0) {
        report_format_duration(e->first_violation_us, first);
    }
    const char *cls = !e->ok                 ? "expect unmet"
                      : e->observed_violated ? "expect violated-as-expected"
                                             : "expect";
    fprintf(out, "<article class=\"%s\" id=\"expect-%zu\">\n<h3>%s ", cls, index + 1,
            e->ok ? "\xE2\x9C\x93" : "\xE2\x9C\x97");
    report_xml_put_text(out, e->invariant);
    fprintf(out, " \xE2\x80\x94 expected to %s; it %s%s. %s</h3>\n",
            e->expect_violated ? "be violated" : "hold",
            e->observed_violated ? "was violated at "
            : e->unexercised     ? "was unexercised (it judged nothing)"
                                 : "held",
            first, e->ok ? "Met." : "<strong>Not met.</strong>");
    fprintf(out, "<p class=\"facts\">judged in %s check%s \xC2\xB7 <span class=\"witnesses\">%s ",
            checks, e->checks == 1 ? "" : "s", witnesses);
    report_xml_put_text(out, e->witness_noun);
    fputs("</span> witnessed</p>\n", out);
    fputs("<p class=\"explanation\">", out);
    report_xml_put_text(out, e->explanation);
    fputs("</p>\n", out);
    html_story(e, index, letter, out);
    if (e->paragraph[0] != '\0') {
        fputs("<blockquote class=\"paragraph\"><strong>What ", out);
        report_xml_put_text(out, e->invariant);
        fputs(" means.</strong> ", out);
        report_xml_put_text(out, e->paragraph);
        fputs("</blockquote>\n", out);
    }
    fputs("</article>\n", out);
}

static void html_expectations(const struct report_run *r, FILE *out)
{
    fputs("<section>\n<h2>Expectations</h2>\n", out);
    if (r->expectation_count == 0) {
        fputs("<p>The drill expects nothing.</p>\n", out);
    }
    /* the unmet ones first: they are what the reader came for */
    size_t storied = 0;
    for (size_t i = 0; i < r->expectation_count; i++) {
        storied += r->expectations[i].story_count > 0;
    }
    for (int pass = 0; pass < 2; pass++) {
        size_t letter = 0;
        for (size_t i = 0; i < r->expectation_count; i++) {
            const struct report_expectation *e = &r->expectations[i];
            if (e->ok == (pass == 1)) {
                html_expectation(e, i, storied > 1 ? letter : SIZE_MAX, out);
            }
            letter += e->story_count > 0;
        }
    }
    fputs("</section>\n", out);
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

static void html_reasons(const struct report_run *r, FILE *out)
{
    if (r->reason_count == 0) {
        return;
    }
    fputs("<h3>Why operations did not succeed</h3>\n<table>\n<tr><th>outcome</th><th>kind</th>"
          "<th>reason</th><th>count</th></tr>\n",
          out);
    for (size_t i = 0; i < r->reason_count; i++) {
        const struct report_reason *x = &r->reasons[i];
        char count[REPORT_FMT_MAX];
        report_format_count(x->count, count);
        fputs("<tr><td><span class=\"chip o-", out);
        report_xml_put_attr(out, x->outcome);
        fputs("\">", out);
        report_xml_put_text(out, x->outcome);
        fputs("</span></td><td>", out);
        report_xml_put_text(out, x->kind);
        fputs("</td><td>", out);
        report_xml_put_text(out, x->reason);
        fprintf(out, "</td><td class=\"num\">%s</td></tr>\n", count);
    }
    fputs("</table>\n", out);
}

static void html_ops(const struct report_run *r, FILE *out)
{
    char total[REPORT_FMT_MAX];
    report_format_count(r->total_ops, total);
    fputs("<section>\n<h2>Operations</h2>\n", out);
    if (r->op_count > 0) {
        fputs("<table>\n<tr><th>kind</th><th><span class=\"chip o-ok\">ok</span></th>"
              "<th><span class=\"chip o-rejected\">rejected</span></th>"
              "<th><span class=\"chip o-fail\">failed</span></th>"
              "<th><span class=\"chip o-unknown\">unknown</span></th></tr>\n",
              out);
    }
    for (size_t i = 0; i < r->op_count; i++) {
        const struct report_op_count *c = &r->ops[i];
        if (c->ok + c->rejected + c->fail + c->unknown == 0) {
            continue; /* a kind the workload never asked for */
        }
        struct report_op_text t;
        report_format_op(c, &t);
        fputs("<tr><td>", out);
        report_xml_put_text(out, c->kind);
        fprintf(out,
                "</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                "<td class=\"num\">%s</td></tr>\n",
                t.ok, t.rejected, t.fail, t.unknown);
    }
    fprintf(out,
            "%s<p>%s operations in all. <em>Rejected</em>: a business rule said no (an empty "
            "cart, insufficient stock, a duplicate email): the system worked. <em>Failed</em>: "
            "the system could not do it (an I/O error, a node down, a mirror policy refusing "
            "the write). <em>Unknown</em>: no reply, or the node died with the operation in "
            "flight, so it may or may not have been applied.</p>\n",
            r->op_count > 0 ? "</table>\n" : "", total);
    html_reasons(r, out);
    fputs("</section>\n", out);
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
    html_ops(r, out);
    html_faults(r, out);
    html_replay(r, out);
    int status = report_stream_status(out);
    return rc != 0 ? rc : status;
}
