/*
 * check_reports.c — tests libreports (every writer in reports/): report.json against the
 * DESIGN.md §6 keys, report.md, report.html, trace.log, JUnit XML and the
 * stdout summary line of DESIGN.md §5. Breaks them with a failing run, user
 * text full of markup and invalid UTF-8, a seed above 2^53, a run too big to
 * draw every operation, a full disk, and a report directory that is a file.
 * Depends on libreports, cJSON and Check only.
 */
#include "reports/reports.h"

#include <check.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tests/check_run.h"

#define SAMPLE_TRACE                                                                               \
    "0.000000 start drill=demo seed=42\n"                                                          \
    "2.000000 fault armed disk/primary/write\n"                                                    \
    "6.000000 crash primary power-cut\n"
#define SAMPLE_REPLAY "faultdrill run scenarios/demo.drill --seed 42"
#define HUGE_OK_OPS   20000
#define HUGE_BAD_OPS  10

/* A run with everything a report shows: 2 nodes, 2 clients, one unmet expectation. */
struct sample {
    struct report_run run;
    char lanes[4][64];
    struct report_expectation expectations[3];
    struct report_fault faults[2];
    struct report_op_count ops[3];
    struct report_event events[11];
};

static void sample_expectations(struct sample *s)
{
    s->expectations[0] = (struct report_expectation){
        .invariant = "no-lost-acks",
        .observed_violated = true,
        .ok = false,
        .first_violation_us = 3200000,
        .checks = 5,
        .explanation = "order 17, acknowledged to client2 at 3.1s, is missing on mirror",
        .paragraph = "When the shop tells a customer \"your order is placed\", it must survive.",
        .story_count = 3,
        .story = {{2000000, "primary", "fault disk/primary/write armed on primary"},
                  {3100000, "client2", "client2's checkout (op #17) was acknowledged"},
                  {3200000, "mirror", "no-lost-acks found violated: order 17 <missing>"}}};
    s->expectations[1] = (struct report_expectation){
        .invariant = "mirror-identical",
        .ok = true,
        .first_violation_us = -1,
        .checks = 5,
        .witnesses = 1204,
        .witness_noun = "acknowledged writes compared on both copies",
        .explanation = "primary and mirror held identical contents at every checkpoint"};
    s->expectations[2] = (struct report_expectation){
        .invariant = "integrity",
        .ok = true,
        .first_violation_us = -1,
        .checks = 4,
        .witnesses = 8,
        .witness_noun = "database checks",
        .explanation = "integrity_check was ok after every crash and restart"};
}

static void sample_events(struct sample *s)
{
    static const struct report_event events[] = {
        {500000, "client1", REPORT_OP_OK, "browse product 3", REPORT_STATE_UP},
        {1000000, "client2", REPORT_OP_OK, "cart add product 3", REPORT_STATE_UP},
        {2500000, "client2", REPORT_OP_FAIL, "checkout: disk I/O error", REPORT_STATE_UP},
        {3100000, "client2", REPORT_OP_OK, "checkout order 17", REPORT_STATE_UP},
        {3200000, "mirror", REPORT_VIOLATION, "no-lost-acks: order 17 missing on mirror", REPORT_STATE_UP},
        {4000000, "primary", REPORT_PARTITION, "primary | mirror", REPORT_STATE_UP},
        {6000000, "primary", REPORT_CRASH, "power cut", REPORT_STATE_UP},
        {6000000, "client1", REPORT_OP_UNKNOWN, "checkout in flight", REPORT_STATE_UP},
        {7000000, "primary", REPORT_RESTART, "", REPORT_STATE_UP},
        {8000000, "", REPORT_HEAL, "partition healed", REPORT_STATE_UP},
        {10000000, "", REPORT_CHECKPOINT, "checkpoint 1", REPORT_STATE_UP},
    };
    memcpy(s->events, events, sizeof events);
}

static void sample_init(struct sample *s)
{
    memset(s, 0, sizeof *s);
    static const char lanes[4][64] = {"primary", "mirror", "client1", "client2"};
    memcpy(s->lanes, lanes, sizeof lanes);
    sample_expectations(s);
    s->faults[0] = (struct report_fault){.name = "disk/primary/write",
                                         .lane = "primary",
                                         .line = 7,
                                         .armed_at_us = 2000000,
                                         .healed_at_us = 5000000,
                                         .reached = 40,
                                         .fired = 12};
    s->faults[1] = (struct report_fault){.name = "crash/primary/mirror-between-commits",
                                         .lane = "primary",
                                         .line = 8,
                                         .armed_at_us = 4000000,
                                         .healed_at_us = -1,
                                         .reached = 1,
                                         .fired = 1};
    s->ops[0] = (struct report_op_count){"browse", 800, 0, 0, 0};
    s->ops[1] = (struct report_op_count){"cart", 300, 2, 0, 40};
    s->ops[2] = (struct report_op_count){"checkout", 98, 3, 1, 7};
    sample_events(s);
    struct report_run *r = &s->run;
    r->reasons[0] = (struct report_reason){"rejected", "cart", "insufficient stock", 40};
    r->reasons[1] = (struct report_reason){"fail", "checkout", "storage failure", 3};
    r->reason_count = 2;
    snprintf(r->drill_name, sizeof r->drill_name, "demo");
    snprintf(r->drill_file, sizeof r->drill_file, "scenarios/demo.drill");
    snprintf(r->title, sizeof r->title, "Primary disk fails during checkout");
    snprintf(r->about, sizeof r->about,
             "Synchronous mirroring keeps every acknowledged order.\n"
             "Even when the primary's disk fails.");
    r->seed = 42;
    r->pass = false;
    r->expectation_count = 3;
    r->expectations = s->expectations;
    r->fault_count = 2;
    r->faults = s->faults;
    r->op_count = 3;
    r->ops = s->ops;
    r->total_ops = 1204;
    r->lane_count = 4;
    r->lanes = s->lanes;
    r->event_count = sizeof s->events / sizeof s->events[0];
    r->events = s->events;
    r->simulated_us = 30000000;
    r->wall_ms = 38;
    r->trace = SAMPLE_TRACE;
    r->trace_len = strlen(SAMPLE_TRACE);
    memset(r->trace_sha256, 'a', 64);
    snprintf(r->replay, sizeof r->replay, "%s", SAMPLE_REPLAY);
}

/* The sample with every expectation met. */
static void sample_pass(struct sample *s)
{
    s->expectations[0].observed_violated = false;
    s->expectations[0].ok = true;
    s->expectations[0].first_violation_us = -1;
    s->run.pass = true;
}

typedef int writer_fn(const struct report_run *r, FILE *out);

/* What a writer produces, as a malloc'd string; the writer must succeed. */
static char *render(writer_fn *writer, const struct report_run *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(writer(r, out), 0);
    ck_assert_int_eq(fclose(out), 0);
    ck_assert_uint_eq(strlen(text), len);
    return text;
}

static char *render_summary(const struct report_run *r, bool verbose)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    report_print_summary(r, out, verbose);
    ck_assert_int_eq(fclose(out), 0);
    return text;
}

static size_t count_of(const char *haystack, const char *needle)
{
    size_t count = 0;
    for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle)) {
        count++;
    }
    return count;
}

/* "&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#10;"...: an entity XML knows. */
static bool is_known_entity(const char *p)
{
    static const char *const named[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (strncmp(p, named[i], strlen(named[i])) == 0) {
            return true;
        }
    }
    if (p[1] != '#' || !isdigit((unsigned char)p[2])) {
        return false;
    }
    p += 2;
    while (isdigit((unsigned char)*p)) {
        p++;
    }
    return *p == ';';
}

/* Skips a tag's attributes up to its '>' or "/>"; NULL when a value holds '<' or a bad '&'. */
static const char *skip_attributes(const char *p)
{
    while (*p != '\0' && *p != '>' && !(p[0] == '/' && p[1] == '>')) {
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\0' || *p == '<' || (*p == '&' && !is_known_entity(p))) {
                    return NULL;
                }
            }
        }
        p++;
    }
    return *p == '\0' ? NULL : p;
}

/*
 * Well formed enough to trust: start and end tags balance, attribute values
 * are quoted and hold no '<', every '&' starts an entity, text holds no raw
 * '<' or '>'. An optional <?xml ...?> declaration comes first.
 */
static bool is_well_formed(const char *xml)
{
    const char *names[64];
    size_t lens[64], depth = 0;
    const char *p = xml;
    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        if (p == NULL) {
            return false;
        }
        p += 2;
    }
    while (*p != '\0') {
        if (*p == '&' && !is_known_entity(p)) {
            return false;
        } else if (*p == '>') {
            return false;
        } else if (*p != '<') {
            p++;
            continue;
        }
        bool closing = *++p == '/';
        p += closing;
        const char *name = p;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
            p++;
        }
        size_t len = (size_t)(p - name);
        p = skip_attributes(p);
        if (len == 0 || p == NULL) {
            return false;
        }
        if (*p == '/') {
            p += 2;
            continue;
        }
        p++;
        if (closing) {
            if (depth == 0 || lens[depth - 1] != len || strncmp(names[depth - 1], name, len) != 0) {
                return false;
            }
            depth--;
        } else if (depth < 64) {
            names[depth] = name;
            lens[depth++] = len;
        } else {
            return false;
        }
    }
    return depth == 0;
}

/* ---- report.json ---- */

static const cJSON *get(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    ck_assert_msg(item != NULL, "missing key \"%s\"", key);
    return item;
}

static void assert_string(const cJSON *obj, const char *key, const char *want)
{
    const cJSON *item = get(obj, key);
    ck_assert_msg(cJSON_IsString(item), "\"%s\" is not a string", key);
    ck_assert_str_eq(item->valuestring, want);
}

static void assert_number(const cJSON *obj, const char *key, double want)
{
    const cJSON *item = get(obj, key);
    ck_assert_msg(cJSON_IsNumber(item), "\"%s\" is not a number", key);
    ck_assert_msg(item->valuedouble == want, "\"%s\" is %g, not %g", key, item->valuedouble, want);
}

START_TEST(json_has_every_contract_key_with_its_type)
{
    struct sample s;
    sample_init(&s);
    char *text = render(report_write_json, &s.run);
    cJSON *root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    assert_string(root, "schema", "faultdrill.report/1");
    const cJSON *drill = get(root, "drill");
    assert_string(drill, "name", "demo");
    assert_string(drill, "file", "scenarios/demo.drill");
    assert_string(drill, "title", "Primary disk fails during checkout");
    assert_string(drill, "about", s.run.about);
    assert_number(root, "seed", 42);
    assert_string(root, "seed_str", "42");
    assert_string(root, "verdict", "fail");
    const cJSON *expectations = get(root, "expectations");
    ck_assert_int_eq(cJSON_GetArraySize(expectations), 3);
    const cJSON *unmet = cJSON_GetArrayItem(expectations, 0);
    assert_string(unmet, "invariant", "no-lost-acks");
    assert_string(unmet, "expected", "hold");
    assert_string(unmet, "observed", "violated");
    ck_assert(cJSON_IsFalse(get(unmet, "ok")));
    assert_string(unmet, "explanation", s.expectations[0].explanation);
    assert_number(unmet, "first_violation_us", 3200000);
    assert_number(unmet, "checks", 5);
    const cJSON *met = cJSON_GetArrayItem(expectations, 1);
    assert_string(met, "observed", "held");
    ck_assert(cJSON_IsTrue(get(met, "ok")));
    ck_assert(cJSON_IsNull(get(met, "first_violation_us")));
    const cJSON *faults = get(root, "faults");
    ck_assert_int_eq(cJSON_GetArraySize(faults), 2);
    assert_string(cJSON_GetArrayItem(faults, 0), "name", "disk/primary/write");
    assert_string(cJSON_GetArrayItem(faults, 0), "lane", "primary");
    assert_number(cJSON_GetArrayItem(faults, 0), "armed_at_us", 2000000);
    assert_number(cJSON_GetArrayItem(faults, 0), "healed_at_us", 5000000);
    assert_number(cJSON_GetArrayItem(faults, 0), "fired", 12);
    assert_number(cJSON_GetArrayItem(faults, 0), "reached", 40);
    assert_number(cJSON_GetArrayItem(faults, 0), "line", 7);
    ck_assert(cJSON_IsFalse(get(cJSON_GetArrayItem(faults, 0), "never_fired")));
    ck_assert(cJSON_IsNull(get(cJSON_GetArrayItem(faults, 1), "healed_at_us")));
    assert_number(met, "witnesses", 1204);
    assert_string(met, "witness", "acknowledged writes compared on both copies");
    const cJSON *ops = get(root, "ops");
    assert_number(get(ops, "checkout"), "ok", 98);
    assert_number(get(ops, "checkout"), "fail", 3);
    assert_number(get(ops, "checkout"), "unknown", 1);
    assert_number(get(ops, "checkout"), "rejected", 7);
    assert_number(ops, "total", 1204);
    const cJSON *reasons = get(root, "reasons");
    ck_assert_int_eq(cJSON_GetArraySize(reasons), 2);
    assert_string(cJSON_GetArrayItem(reasons, 0), "outcome", "rejected");
    assert_string(cJSON_GetArrayItem(reasons, 0), "kind", "cart");
    assert_string(cJSON_GetArrayItem(reasons, 0), "reason", "insufficient stock");
    assert_number(cJSON_GetArrayItem(reasons, 0), "count", 40);
    assert_string(unmet, "paragraph", s.expectations[0].paragraph);
    const cJSON *story = get(unmet, "story");
    ck_assert_int_eq(cJSON_GetArraySize(story), 3);
    assert_number(cJSON_GetArrayItem(story, 1), "at_us", 3100000);
    assert_string(cJSON_GetArrayItem(story, 1), "lane", "client2");
    assert_string(cJSON_GetArrayItem(story, 1), "text", s.expectations[0].story[1].text);
    ck_assert_int_eq(cJSON_GetArraySize(get(met, "story")), 0);
    assert_number(root, "simulated_us", 30000000);
    assert_number(root, "wall_ms", 38);
    assert_string(root, "trace_sha256", s.run.trace_sha256);
    assert_string(root, "replay", SAMPLE_REPLAY);
    assert_string(root, "mode", "sim");
    cJSON_Delete(root);
    free(text);
    s.run.live = true; /* run --live: the same document, mode live */
    text = render(report_write_json, &s.run);
    root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    assert_string(root, "mode", "live");
    cJSON_Delete(root);
    free(text);
}
END_TEST

START_TEST(json_keys_come_in_a_fixed_order)
{
    static const char *const keys[] = {"schema",       "drill",        "seed",         "seed_str",
                                       "verdict",      "mode",         "expectations", "faults",
                                       "ops",          "reasons",      "simulated_us", "wall_ms",
                                       "trace_sha256", "replay",
                                       "metrics",      "metric_units"};
    struct sample s;
    sample_init(&s);
    char *text = render(report_write_json, &s.run);
    cJSON *root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    const cJSON *item = root->child;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++, item = item->next) {
        ck_assert_ptr_nonnull(item);
        ck_assert_str_eq(item->string, keys[i]);
    }
    ck_assert_ptr_null(item);
    cJSON_Delete(root);
    free(text);
}
END_TEST

START_TEST(json_of_the_same_run_is_byte_identical)
{
    struct sample s;
    sample_init(&s);
    char *first = render(report_write_json, &s.run);
    char *second = render(report_write_json, &s.run);
    ck_assert_str_eq(first, second);
    free(first);
    free(second);
}
END_TEST

START_TEST(json_keeps_a_seed_above_2_to_the_53_exact)
{
    struct sample s;
    sample_init(&s);
    s.run.seed = UINT64_MAX;
    char *text = render(report_write_json, &s.run);
    ck_assert_ptr_nonnull(strstr(text, "\"seed\":\t18446744073709551615,"));
    cJSON *root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    ck_assert(cJSON_IsNumber(get(root, "seed")));
    assert_string(root, "seed_str", "18446744073709551615");
    cJSON_Delete(root);
    free(text);
}
END_TEST

START_TEST(json_stays_valid_when_a_title_is_not_utf8)
{
    struct sample s;
    sample_init(&s);
    snprintf(s.run.title, sizeof s.run.title, "caf\xE9 \"quoted\"\n\x01");
    char *text = render(report_write_json, &s.run);
    cJSON *root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    assert_string(get(root, "drill"), "title", "caf\xEF\xBF\xBD \"quoted\"\n\x01");
    cJSON_Delete(root);
    free(text);
}
END_TEST

START_TEST(json_onto_a_full_disk_returns_enospc)
{
    struct sample s;
    sample_init(&s);
    FILE *out = fopen("/dev/full", "w");
    if (out == NULL) {
        return; /* no /dev/full here: nothing to break */
    }
    ck_assert_int_eq(report_write_json(&s.run, out), -ENOSPC);
    fclose(out);
}
END_TEST

/* ---- report.md ---- */

START_TEST(markdown_has_the_table_rows_and_the_replay_block)
{
    struct sample s;
    sample_init(&s);
    char *text = render(report_write_markdown, &s.run);
    ck_assert_ptr_nonnull(strstr(text, "# Primary disk fails during checkout\n"));
    ck_assert_ptr_nonnull(strstr(text, "**FAIL**"));
    ck_assert_ptr_nonnull(strstr(text, "seed 42"));
    ck_assert_ptr_nonnull(strstr(text, "| invariant | expected | observed | ok | witnesses |\n"));
    ck_assert_ptr_nonnull(strstr(text, "| no-lost-acks | hold | violated | **no** | 0  |\n"));
    ck_assert_ptr_nonnull(strstr(text, "| mirror-identical | hold | held | yes | 1,204 "
                                       "acknowledged writes compared on both copies |\n"));
    ck_assert_ptr_nonnull(strstr(text, "| integrity | hold | held | yes | 8 database checks |\n"));
    ck_assert_ptr_nonnull(strstr(text, "> order 17, acknowledged to client2 at 3.1s"));
    ck_assert_ptr_nonnull(strstr(text, "| disk/primary/write | 7 | primary | 2s | 5s | 40 | 12 |\n"));
    ck_assert_ptr_nonnull(strstr(
        text, "| crash/primary/mirror-between-commits | 8 | primary | 4s | never | 1 | 1 |\n"));
    ck_assert_ptr_null(strstr(text, "never fired"));
    ck_assert_ptr_nonnull(strstr(text, "| kind | ok | rejected | fail | unknown |\n"));
    ck_assert_ptr_nonnull(strstr(text, "| checkout | 98 | 7 | 3 | 1 |\n"));
    ck_assert_ptr_nonnull(strstr(text, "| rejected | cart | insufficient stock | 40 |\n"));
    ck_assert_ptr_nonnull(strstr(text, "1,204 operations"));
    /* the unmet expectation's story, in order, and what the invariant means */
    const char *first = strstr(text, "1. **2s** primary: fault disk/primary/write armed");
    const char *last = strstr(text, "3. **3.2s** mirror: no-lost-acks found violated: order 17 "
                                    "\\<missing\\>\n");
    ck_assert(first != NULL && last != NULL && first < last);
    ck_assert_ptr_nonnull(strstr(text, "*What it means:* When the shop tells a customer"));
    ck_assert_ptr_nonnull(strstr(text, "```sh\n" SAMPLE_REPLAY "\n```\n"));
    ck_assert_ptr_nonnull(strstr(text, "> Synchronous mirroring keeps every acknowledged order.\n"
                                       "> Even when"));
    /* Met expectations are not quoted as failures. */
    ck_assert_ptr_null(strstr(text, "Not met: mirror-identical"));
    free(text);
}
END_TEST

/* An expectation that judged nothing and a fault that never fired are visible
 * in every writer (DESIGN.md §4: no vacuous pass; faults that never fired). */
START_TEST(unexercised_and_never_fired_show_in_every_writer)
{
    struct sample s;
    sample_init(&s);
    s.expectations[1].unexercised = true;
    s.expectations[1].ok = false;
    s.expectations[1].witnesses = 0;
    snprintf(s.expectations[1].explanation, sizeof s.expectations[1].explanation,
             "unexercised: no write was acknowledged");
    s.faults[0].fired = 0;
    s.faults[1].armed_at_us = -1;
    s.faults[1].reached = 0;
    s.faults[1].fired = 0;
    char *json = render(report_write_json, &s.run);
    cJSON *root = cJSON_Parse(json);
    ck_assert_ptr_nonnull(root);
    const cJSON *met = cJSON_GetArrayItem(get(root, "expectations"), 1);
    assert_string(met, "observed", "unexercised");
    assert_number(met, "witnesses", 0);
    const cJSON *faults = get(root, "faults");
    ck_assert(cJSON_IsTrue(get(cJSON_GetArrayItem(faults, 0), "never_fired")));
    ck_assert(cJSON_IsNull(get(cJSON_GetArrayItem(faults, 1), "armed_at_us")));
    cJSON_Delete(root);
    free(json);
    char *md = render(report_write_markdown, &s.run);
    ck_assert_ptr_nonnull(strstr(md, "| mirror-identical | hold | unexercised | **no** | 0 "));
    ck_assert_ptr_nonnull(strstr(md, "it was unexercised (it judged nothing)"));
    ck_assert_ptr_nonnull(strstr(md, "| 40 | 0 **never fired** |"));
    ck_assert_ptr_nonnull(strstr(md, "**2 fault statements never fired**"));
    free(md);
    char *html = render(report_write_html, &s.run);
    ck_assert_ptr_nonnull(strstr(html, "it was unexercised (it judged nothing)"));
    ck_assert_ptr_nonnull(strstr(html, "<strong>never fired</strong>"));
    free(html);
    char *text = render_summary(&s.run, true);
    ck_assert_ptr_nonnull(strstr(text, "fired 0 times of 40 calls: NEVER FIRED\n"));
    ck_assert_ptr_nonnull(strstr(text, "(line 8): never armed, NEVER FIRED\n"));
    ck_assert_ptr_nonnull(strstr(text, "expected mirror-identical to hold: unexercised"));
    free(text);
}
END_TEST

START_TEST(markdown_escapes_markup_in_user_text)
{
    struct sample s;
    sample_init(&s);
    snprintf(s.run.title, sizeof s.run.title, "<b>bold</b> | pipe");
    snprintf(s.faults[0].name, sizeof s.faults[0].name, "a|b");
    snprintf(s.run.replay, sizeof s.run.replay, "echo ```");
    char *text = render(report_write_markdown, &s.run);
    ck_assert_ptr_nonnull(strstr(text, "# \\<b\\>bold\\</b\\> \\| pipe\n"));
    ck_assert_ptr_nonnull(strstr(text, "| a\\|b | 7 | primary |"));
    ck_assert_ptr_nonnull(strstr(text, "\n````sh\necho ```\n````\n"));
    ck_assert_ptr_null(strstr(text, "<b>"));
    free(text);
}
END_TEST

/* ---- report.html ---- */

/* The <svg>...</svg> of a page, as a malloc'd string. */
static char *svg_of(const char *html)
{
    const char *start = strstr(html, "<svg");
    const char *end = strstr(html, "</svg>");
    ck_assert_ptr_nonnull(start);
    ck_assert_ptr_nonnull(end);
    return strndup(start, (size_t)(end - start) + strlen("</svg>"));
}

START_TEST(html_is_self_contained_with_one_lane_per_node_and_client)
{
    struct sample s;
    sample_init(&s);
    char *html = render(report_write_html, &s.run);
    ck_assert_ptr_nonnull(strstr(html, "<!DOCTYPE html>"));
    ck_assert_uint_eq(count_of(html, "<svg"), 1);
    ck_assert_uint_eq(count_of(html, "class=\"lane-label\""), 4);
    for (size_t i = 0; i < 4; i++) {
        char label[96];
        snprintf(label, sizeof label, "\">%s</text>", s.lanes[i]);
        ck_assert_msg(count_of(html, label) == 1, "lane %s labelled %zu times", s.lanes[i],
                      count_of(html, label));
    }
    /* nodes (not called clientN) are drawn bold, with a state strip below */
    ck_assert_uint_eq(count_of(html, "font-weight=\"600\">"), 2);
    ck_assert_ptr_null(strstr(html, "http://"));
    ck_assert_ptr_null(strstr(html, "https://"));
    ck_assert_ptr_null(strstr(html, "src="));
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "<link"));
    ck_assert_ptr_nonnull(strstr(html, "</html>\n"));
    char *svg = svg_of(html);
    ck_assert_msg(is_well_formed(svg), "the SVG is not well formed");
    free(svg);
    free(html);
}
END_TEST

START_TEST(html_draws_faults_ops_crashes_checkpoints_and_violations)
{
    struct sample s;
    sample_init(&s);
    char *html = render(report_write_html, &s.run);
    ck_assert_uint_eq(count_of(html, "<g class=\"fault\">"), 2);
    /* every band is labelled, even the one too short to hold its name */
    ck_assert_uint_eq(count_of(html, "class=\"fault-label\""), 2);
    ck_assert_ptr_nonnull(strstr(html, ">crash/primary/mirror-between-commits</text>"));
    ck_assert_uint_eq(count_of(html, "<circle class=\"violation\""), 1);
    ck_assert_ptr_nonnull(
        strstr(html, "<title>3.2s \xC2\xB7 mirror \xC2\xB7 VIOLATION: no-lost-acks: order 17"));
    ck_assert_ptr_nonnull(strstr(html, "stroke=\"#d0342c\" stroke-width=\"1.5\"><title>2.5s"));
    ck_assert_ptr_nonnull(strstr(html, "stroke=\"#e0a100\" stroke-width=\"1.5\"><title>6s"));
    ck_assert_uint_eq(count_of(html, "v16"), 3); /* the three ok ticks of the timeline */
    ck_assert_ptr_nonnull(strstr(html, "crash: power cut</title>"));
    ck_assert_ptr_nonnull(strstr(html, "restart</title>"));
    ck_assert_ptr_nonnull(strstr(html, "checkpoint: checkpoint 1</title>"));
    /* the time axis above the rows and below them, reaching the end */
    ck_assert_uint_eq(count_of(html, ">30s</text>"), 2);
    ck_assert_ptr_nonnull(strstr(html, "<text class=\"axis\""));
    /* the crash leaves the primary down until its restart: a black stretch of its strip */
    ck_assert_ptr_nonnull(strstr(html, "<title>6s\xE2\x80\x93" "7s \xC2\xB7 primary \xC2\xB7 down"));
    ck_assert_ptr_nonnull(strstr(html, "order 17, acknowledged to client2"));
    ck_assert_ptr_nonnull(strstr(html, "<pre><code>" SAMPLE_REPLAY "</code></pre>"));
    ck_assert_ptr_null(strstr(html, "density")); /* few operations: a tick each */
    free(html);
}
END_TEST

START_TEST(html_escapes_a_title_with_a_script_in_it)
{
    struct sample s;
    sample_init(&s);
    snprintf(s.run.title, sizeof s.run.title, "<script>alert(\"x&y\")</script>'");
    snprintf(s.run.drill_name, sizeof s.run.drill_name, "<img src=x>");
    snprintf(s.expectations[0].explanation, sizeof s.expectations[0].explanation, "a < b & c\x01");
    char *html = render(report_write_html, &s.run);
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "<img"));
    ck_assert_ptr_nonnull(
        strstr(html, "<h1>&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;</h1>"));
    ck_assert_ptr_nonnull(strstr(html, "a &lt; b &amp; c\xEF\xBF\xBD"));
    char *svg = svg_of(html);
    ck_assert(is_well_formed(svg));
    free(svg);
    free(html);
}
END_TEST

START_TEST(html_tells_the_story_with_links_to_the_timeline_and_quotes_the_invariant)
{
    struct sample s;
    sample_init(&s);
    char *html = render(report_write_html, &s.run);
    for (size_t k = 1; k <= 3; k++) {
        char href[64], id[64];
        snprintf(href, sizeof href, "href=\"#story-1-%zu\"", k);
        snprintf(id, sizeof id, "id=\"story-1-%zu\"", k);
        ck_assert_msg(count_of(html, href) == 1 && count_of(html, id) == 1, "step %zu", k);
    }
    ck_assert_ptr_null(strstr(html, "story-1-4"));
    ck_assert_ptr_null(strstr(html, "story-2-")); /* an expectation that held has no story */
    ck_assert_ptr_nonnull(strstr(html, "3.1s</a> <span class=\"lane\">client2</span> "
                                       "client2&#39;s checkout (op #17) was acknowledged</li>"));
    ck_assert_ptr_nonnull(strstr(html, "no-lost-acks found violated: order 17 &lt;missing&gt;"));
    /* the unmet expectation comes first, its paragraph quoted under its verdict */
    const char *unmet = strstr(html, "<article class=\"expect unmet\" id=\"expect-1\">");
    const char *met = strstr(html, "id=\"expect-2\"");
    const char *quote = strstr(html, "your order is placed");
    ck_assert(unmet != NULL && met != NULL && quote != NULL && unmet < quote && quote < met);
    ck_assert_ptr_nonnull(strstr(html, "<blockquote class=\"paragraph\"><strong>What no-lost-acks"));
    char *svg = svg_of(html);
    ck_assert(is_well_formed(svg));
    free(svg);
    free(html);
}
END_TEST

START_TEST(html_counts_rejected_apart_from_failed_with_a_table_of_reasons)
{
    struct sample s;
    sample_init(&s);
    char *html = render(report_write_html, &s.run);
    ck_assert_ptr_nonnull(strstr(html, "<tr><td>cart</td><td class=\"num\">300</td>"
                                       "<td class=\"num\">40</td><td class=\"num\">2</td>"
                                       "<td class=\"num\">0</td></tr>"));
    ck_assert_ptr_nonnull(strstr(html, "<h3>Why operations did not succeed</h3>"));
    ck_assert_ptr_nonnull(strstr(html, "<span class=\"chip o-rejected\">rejected</span></td>"
                                       "<td>cart</td><td>insufficient stock</td>"
                                       "<td class=\"num\">40</td>"));
    free(html);
}
END_TEST

/* A run of `count` operations over two clients, failures spread evenly, in the sample. */
static struct report_event *huge_events(struct sample *s, size_t count, size_t bad)
{
    enum { LABEL = 24 }; /* "#N", kept after the events in the same block */
    struct report_event *events = calloc(count, sizeof *events + LABEL);
    ck_assert_ptr_nonnull(events);
    char *labels = (char *)(events + count);
    for (size_t i = 0; i < count; i++) {
        events[i].at_us = (int64_t)i * 1000;
        events[i].lane = i % 2 ? "client1" : "client2";
        events[i].mark = i % (count / bad) == count / bad / 2 ? REPORT_OP_FAIL
                         : i % 3 == 0           ? REPORT_OP_REJECTED
                                                : REPORT_OP_OK;
        snprintf(labels + i * LABEL, LABEL, "#%zu", i + 1);
        events[i].label = labels + i * LABEL;
    }
    s->run.events = events;
    s->run.event_count = count;
    s->run.simulated_us = events[count - 1].at_us;
    return events;
}

START_TEST(html_of_a_huge_run_draws_density_and_keeps_every_failure)
{
    struct sample s;
    sample_init(&s);
    size_t count = HUGE_OK_OPS + HUGE_BAD_OPS;
    struct report_event *events = huge_events(&s, count, HUGE_BAD_OPS);
    char *html = render(report_write_html, &s.run);
    ck_assert_ptr_nonnull(strstr(html, "20,010 operations drawn as their density per 100"));
    ck_assert_ptr_null(strstr(html, "sampled evenly")); /* every failure has its tick */
    ck_assert_uint_eq(count_of(html, "\xC2\xB7 failed: #"), HUGE_BAD_OPS);
    /* 200 buckets per client row, each with its counts */
    ck_assert_uint_eq(count_of(html, " operations: "), 2 * 200);
    /* a bucket with one failure among a hundred still shows it (1.5 units at least) */
    ck_assert_ptr_nonnull(strstr(html, "height=\"1.5\" fill=\"#d0342c\""));
    ck_assert_uint_lt(strlen(html), 400 * 1024);
    char *svg = svg_of(html);
    ck_assert(is_well_formed(svg));
    free(svg);
    free(html);
    free(events);
}
END_TEST

START_TEST(html_of_a_run_with_too_many_failures_samples_their_ticks_and_says_so)
{
    struct sample s;
    sample_init(&s);
    size_t count = 3 * REPORT_TIMELINE_OPS_MAX;
    struct report_event *events = huge_events(&s, count, count / 2); /* every other one */
    char *html = render(report_write_html, &s.run);
    ck_assert_ptr_nonnull(strstr(html, "(showing 5,000 of 7,500, sampled evenly)"));
    ck_assert_uint_eq(count_of(html, "\xC2\xB7 failed: #"), REPORT_TIMELINE_OPS_MAX);
    free(html);
    free(events);
}
END_TEST

START_TEST(html_shares_one_row_among_many_clients)
{
    struct sample s;
    sample_init(&s);
    static char lanes[12][64];
    snprintf(lanes[0], 64, "primary");
    snprintf(lanes[1], 64, "mirror");
    for (int c = 1; c <= 10; c++) {
        snprintf(lanes[c + 1], 64, "client%d", c);
    }
    s.run.lanes = lanes;
    s.run.lane_count = 12;
    s.run.node_lane_count = 2;
    char *html = render(report_write_html, &s.run);
    ck_assert_uint_eq(count_of(html, "class=\"lane-label\""), 3);
    ck_assert_ptr_nonnull(strstr(html, "\">clients</text>"));
    free(html);
}
END_TEST

START_TEST(html_draws_node_states_and_partitions_across_the_nodes)
{
    struct sample s;
    sample_init(&s);
    s.events[5] = (struct report_event){4000000, "primary", REPORT_PARTITION,
                                        "partition primary | mirror", REPORT_STATE_UP};
    s.events[9] = (struct report_event){9000000, "-", REPORT_HEAL, "partition healed",
                                        REPORT_STATE_UP};
    s.events[0] = (struct report_event){500000, "mirror", REPORT_STATE, "lags: 3 change(s)",
                                        REPORT_STATE_BEHIND};
    s.events[8] = (struct report_event){7000000, "primary", REPORT_STATE, "leads alone",
                                        REPORT_STATE_LEADING};
    char *html = render(report_write_html, &s.run);
    /* the partition is a band from the cut to the heal, labelled with its sides */
    ck_assert_uint_eq(count_of(html, "<g class=\"partition\">"), 1);
    ck_assert_ptr_nonnull(strstr(html, ">partition primary | mirror</text>"));
    ck_assert_ptr_nonnull(strstr(html, "<title>4s \xC2\xB7 network partition"));
    /* the mirror lags from 0.5s to the end; the primary leads from 7s */
    ck_assert_ptr_nonnull(
        strstr(html, "fill=\"#f2cc60\"><title>500ms\xE2\x80\x93" "30s \xC2\xB7 mirror \xC2\xB7 "
                     "behind (lag): lags: 3 change(s)</title>"));
    ck_assert_ptr_nonnull(strstr(html, "fill=\"#6ea8dc\"><title>7s\xE2\x80\x93" "30s"));
    char *svg = svg_of(html);
    ck_assert(is_well_formed(svg));
    free(svg);
    free(html);
}
END_TEST

START_TEST(html_puts_events_of_unknown_lanes_on_an_other_lane)
{
    struct sample s;
    sample_init(&s);
    s.events[6].lane = "ghost"; /* the crash */
    snprintf(s.faults[1].lane, sizeof s.faults[1].lane, "%s", "");
    char *html = render(report_write_html, &s.run);
    ck_assert_uint_eq(count_of(html, "class=\"lane-label\""), 5);
    ck_assert_ptr_nonnull(strstr(html, "\">other</text>"));
    free(html);
}
END_TEST

/* ---- JUnit ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *in = fopen(path, "rb");
    ck_assert_msg(in != NULL, "cannot open %s", path);
    char *text = malloc(1 << 20);
    ck_assert_ptr_nonnull(text);
    *len = fread(text, 1, (1 << 20) - 1, in);
    text[*len] = '\0';
    fclose(in);
    return text;
}

static size_t entries_in(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t count = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        count += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    closedir(d);
    return count;
}

START_TEST(junit_has_a_testcase_per_run_and_expectation_and_a_failure_per_unmet_one)
{
    struct sample a, b, c;
    sample_init(&a);
    sample_init(&b);
    sample_pass(&b);
    b.run.seed = 43;
    sample_init(&c);
    snprintf(c.run.drill_name, sizeof c.run.drill_name, "x&y<z");
    snprintf(c.expectations[0].explanation, sizeof c.expectations[0].explanation,
             "a < b & c\nsecond line");
    const struct report_run *runs[] = {&a.run, &c.run, &b.run};
    char dir[] = "/tmp/check_reports.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], err[REPORT_ERR_MAX];
    snprintf(path, sizeof path, "%s/junit.xml", dir);
    ck_assert_int_eq(report_write_junit(runs, 3, path, err), 0);
    size_t len;
    char *xml = read_file(path, &len);
    ck_assert_uint_eq(entries_in(dir), 1); /* the temporary file is gone */
    ck_assert_msg(is_well_formed(xml), "not well formed:\n%s", xml);
    ck_assert_uint_eq(count_of(xml, "<testcase "), 9);
    ck_assert_uint_eq(count_of(xml, "<failure "), 2);
    ck_assert_uint_eq(count_of(xml, "<testsuite "), 2);
    ck_assert_ptr_nonnull(
        strstr(xml, "<testsuites name=\"faultdrill\" tests=\"9\" failures=\"2\""));
    ck_assert_ptr_nonnull(strstr(xml, "<testsuite name=\"demo\" tests=\"6\" failures=\"1\""));
    const char *demo = strstr(xml, "<testsuite name=\"demo\"");
    const char *other = strstr(xml, "<testsuite name=\"x&amp;y&lt;z\"");
    ck_assert(demo != NULL && other != NULL && demo < other); /* in the order drills appear */
    ck_assert_ptr_nonnull(strstr(xml, "<testcase name=\"no-lost-acks (expected hold)\" "
                                      "classname=\"faultdrill.demo.seed-43\" time=\"0.038\">\n"
                                      "      <system-out>"));
    ck_assert_ptr_nonnull(strstr(xml, "classname=\"faultdrill.x&amp;y&lt;z.seed-42\""));
    ck_assert_ptr_nonnull(
        strstr(xml, ">a &lt; b &amp; c\nsecond line\nreplay: " SAMPLE_REPLAY "</failure>"));
    ck_assert_ptr_nonnull(strstr(xml, "message=\"expected no-lost-acks to hold, but it was "
                                      "violated\""));
    unlink(path);
    rmdir(dir);
    free(xml);
}
END_TEST

START_TEST(junit_into_a_missing_directory_fails_with_a_message)
{
    struct sample s;
    sample_init(&s);
    const struct report_run *runs[] = {&s.run};
    char err[REPORT_ERR_MAX];
    ck_assert_int_eq(report_write_junit(runs, 1, "/nonexistent-dir/junit.xml", err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/junit.xml"));
}
END_TEST

/* ---- the summary line ---- */

START_TEST(summary_of_a_pass_is_exactly_the_design_line)
{
    struct sample s;
    sample_init(&s);
    sample_pass(&s);
    char *text = render_summary(&s.run, false);
    ck_assert_str_eq(text, "PASS  demo  seed=42  14 checks  1,212 witnesses  1,204 ops  30s "
                           "simulated in 38ms\n");
    free(text);
}
END_TEST

START_TEST(summary_of_a_fail_adds_the_explanation_and_the_replay)
{
    struct sample s;
    sample_init(&s);
    s.run.simulated_us = 1500000;
    snprintf(s.expectations[0].explanation, sizeof s.expectations[0].explanation,
             "order 17 is missing\non mirror");
    char *text = render_summary(&s.run, false);
    ck_assert_str_eq(text, "FAIL  demo  seed=42  14 checks  1,212 witnesses  1,204 ops  1.5s "
                           "simulated in 38ms\n"
                           "  expected no-lost-acks to hold: order 17 is missing\n"
                           "    on mirror\n"
                           "  replay: " SAMPLE_REPLAY "\n");
    free(text);
}
END_TEST

START_TEST(summary_verbose_adds_the_about_text_and_the_faults)
{
    struct sample s;
    sample_init(&s);
    sample_pass(&s);
    char *text = render_summary(&s.run, true);
    ck_assert_ptr_nonnull(strstr(text, "\n  Synchronous mirroring keeps every acknowledged "
                                       "order.\n  Even when"));
    ck_assert_ptr_nonnull(
        strstr(text, "\n  fault disk/primary/write on primary: armed at 2s, healed at 5s, "
                     "fired 12 times of 40 calls\n"));
    ck_assert_ptr_nonnull(strstr(text, "never healed, fired 1 time of 1 call\n"));
    ck_assert_ptr_null(strstr(text, "NEVER FIRED"));
    ck_assert_ptr_null(strstr(text, "replay:"));
    free(text);
}
END_TEST

/* ---- formatting, escaping, validation ---- */

START_TEST(durations_and_counts_read_like_the_design)
{
    static const struct {
        int64_t us;
        const char *text;
    } durations[] = {{0, "0s"},       {30000000, "30s"}, {1500000, "1.5s"},      {250000, "250ms"},
                     {1500, "1.5ms"}, {800, "800us"},    {1234567, "1.234567s"}, {90000000, "90s"}};
    static const struct {
        uint64_t n;
        const char *text;
    } counts[] = {{0, "0"},
                  {999, "999"},
                  {1000, "1,000"},
                  {1204, "1,204"},
                  {UINT64_MAX, "18,446,744,073,709,551,615"}};
    char out[REPORT_FMT_MAX];
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        report_format_duration(durations[i].us, out);
        ck_assert_str_eq(out, durations[i].text);
    }
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        report_format_count(counts[i].n, out);
        ck_assert_str_eq(out, counts[i].text);
    }
}
END_TEST

START_TEST(xml_escaping_replaces_what_xml_forbids)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    report_xml_put_attr(out, "a\"b'<>&\n\t\x01\xC0\xAF\xE2\x82\xAC");
    fputc('|', out);
    report_xml_put_text(out, "l1\nl2");
    fclose(out);
    ck_assert_str_eq(text, "a&quot;b&#39;&lt;&gt;&amp;&#10;&#9;\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                           "\xE2\x82\xAC|l1\nl2");
    free(text);
}
END_TEST

START_TEST(a_run_with_unterminated_text_or_unordered_events_is_invalid)
{
    struct sample s;
    sample_init(&s);
    ck_assert(report_run_is_valid(&s.run));
    memset(s.run.drill_name, 'x', sizeof s.run.drill_name);
    ck_assert(!report_run_is_valid(&s.run));
    sample_init(&s);
    s.events[1].at_us = 0;
    ck_assert(!report_run_is_valid(&s.run));
    sample_init(&s);
    s.run.trace = NULL;
    ck_assert(!report_run_is_valid(&s.run));
}
END_TEST

/* ---- report_write_dir ---- */

START_TEST(write_dir_into_a_regular_file_fails_with_a_message)
{
    struct sample s;
    sample_init(&s);
    char path[] = "/tmp/check_reports_file.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char err[REPORT_ERR_MAX];
    ck_assert_int_eq(report_write_dir(&s.run, path, err), -ENOTDIR);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "report.json"));
    unlink(path);
}
END_TEST

START_TEST(write_dir_creates_the_four_files)
{
    static const char *const names[] = {"report.json", "report.md", "report.html", "trace.log"};
    struct sample s;
    sample_init(&s);
    char dir[] = "/tmp/check_reports.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char err[REPORT_ERR_MAX];
    ck_assert_int_eq(report_write_dir(&s.run, dir, err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_uint_eq(entries_in(dir), 4);
    for (size_t i = 0; i < 4; i++) {
        char path[256];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *text = read_file(path, &len);
        ck_assert_uint_gt(len, 0);
        if (i == 0) {
            cJSON *root = cJSON_Parse(text);
            ck_assert_ptr_nonnull(root);
            cJSON_Delete(root);
        } else if (i == 3) {
            ck_assert_uint_eq(len, s.run.trace_len);
            ck_assert_mem_eq(text, s.run.trace, len);
        }
        free(text);
        unlink(path);
    }
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* A file size limit makes the kernel cut report.json short, as a full disk would. */
START_TEST(write_dir_with_a_short_write_fails_and_leaves_no_half_file)
{
    struct sample s;
    sample_init(&s);
    char dir[] = "/tmp/check_reports.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct rlimit saved, small = {.rlim_cur = 512, .rlim_max = RLIM_INFINITY};
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small.rlim_max = saved.rlim_max;
    void (*saved_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    char err[REPORT_ERR_MAX];
    int rc = report_write_dir(&s.run, dir, err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, saved_handler);
    ck_assert_int_eq(rc, -EFBIG);
    ck_assert_ptr_nonnull(strstr(err, "cannot write "));
    ck_assert_ptr_nonnull(strstr(err, "/report.json: "));
    ck_assert_uint_eq(entries_in(dir), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *reports_suite(void)
{
    Suite *suite = suite_create("reports");
    TCase *json = tcase_create("json");
    tcase_add_test(json, json_has_every_contract_key_with_its_type);
    tcase_add_test(json, json_keys_come_in_a_fixed_order);
    tcase_add_test(json, json_of_the_same_run_is_byte_identical);
    tcase_add_test(json, json_keeps_a_seed_above_2_to_the_53_exact);
    tcase_add_test(json, json_stays_valid_when_a_title_is_not_utf8);
    tcase_add_test(json, json_onto_a_full_disk_returns_enospc);
    suite_add_tcase(suite, json);
    TCase *pages = tcase_create("pages");
    tcase_add_test(pages, markdown_has_the_table_rows_and_the_replay_block);
    tcase_add_test(pages, markdown_escapes_markup_in_user_text);
    tcase_add_test(pages, unexercised_and_never_fired_show_in_every_writer);
    tcase_add_test(pages, html_is_self_contained_with_one_lane_per_node_and_client);
    tcase_add_test(pages, html_draws_faults_ops_crashes_checkpoints_and_violations);
    tcase_add_test(pages, html_escapes_a_title_with_a_script_in_it);
    tcase_add_test(pages, html_tells_the_story_with_links_to_the_timeline_and_quotes_the_invariant);
    tcase_add_test(pages, html_counts_rejected_apart_from_failed_with_a_table_of_reasons);
    tcase_add_test(pages, html_of_a_huge_run_draws_density_and_keeps_every_failure);
    tcase_add_test(pages, html_of_a_run_with_too_many_failures_samples_their_ticks_and_says_so);
    tcase_add_test(pages, html_shares_one_row_among_many_clients);
    tcase_add_test(pages, html_draws_node_states_and_partitions_across_the_nodes);
    tcase_add_test(pages, html_puts_events_of_unknown_lanes_on_an_other_lane);
    suite_add_tcase(suite, pages);
    TCase *ci = tcase_create("ci");
    tcase_add_test(ci, junit_has_a_testcase_per_run_and_expectation_and_a_failure_per_unmet_one);
    tcase_add_test(ci, junit_into_a_missing_directory_fails_with_a_message);
    tcase_add_test(ci, summary_of_a_pass_is_exactly_the_design_line);
    tcase_add_test(ci, summary_of_a_fail_adds_the_explanation_and_the_replay);
    tcase_add_test(ci, summary_verbose_adds_the_about_text_and_the_faults);
    suite_add_tcase(suite, ci);
    TCase *text = tcase_create("text");
    tcase_add_test(text, durations_and_counts_read_like_the_design);
    tcase_add_test(text, xml_escaping_replaces_what_xml_forbids);
    tcase_add_test(text, a_run_with_unterminated_text_or_unordered_events_is_invalid);
    suite_add_tcase(suite, text);
    TCase *files = tcase_create("files");
    tcase_add_test(files, write_dir_into_a_regular_file_fails_with_a_message);
    tcase_add_test(files, write_dir_creates_the_four_files);
    tcase_add_test(files, write_dir_with_a_short_write_fails_and_leaves_no_half_file);
    suite_add_tcase(suite, files);
    return suite;
}

int main(void)
{
    return check_run(reports_suite());
}
