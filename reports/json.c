/*
 * json.c — report.json, the machine-readable result of one drill run
 * (DESIGN.md §6 is the contract for its keys; `faultdrill report merge`
 * and CI scripts read it back).
 *
 * Built as a cJSON tree in a fixed key order and printed formatted, so the
 * same run gives the same bytes. Integers are written as raw digits, not
 * through cJSON's doubles: a seed or a count above 2^53 stays exact. Depends
 * on cJSON and the text helpers of libreports.
 */
#include "reports/reports.h"

#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_SCHEMA "faultdrill.report/1"

/* User text may be any bytes; JSON must be UTF-8. */
static bool add_string(cJSON *obj, const char *key, const char *s)
{
    char *clean = report_utf8_clean(s);
    if (clean == NULL) {
        return false;
    }
    bool ok = cJSON_AddStringToObject(obj, key, clean) != NULL;
    free(clean);
    return ok;
}

static bool add_uint(cJSON *obj, const char *key, uint64_t value)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%" PRIu64, value);
    return cJSON_AddRawToObject(obj, key, digits) != NULL;
}

static bool add_int(cJSON *obj, const char *key, int64_t value)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%" PRId64, value);
    return cJSON_AddRawToObject(obj, key, digits) != NULL;
}

/* A time, or null for "never" (the struct's -1). */
static bool add_time_or_null(cJSON *obj, const char *key, int64_t at_us)
{
    if (at_us < 0) {
        return cJSON_AddNullToObject(obj, key) != NULL;
    }
    return add_int(obj, key, at_us);
}

static bool add_bool(cJSON *obj, const char *key, bool value)
{
    return cJSON_AddBoolToObject(obj, key, value) != NULL;
}

static bool add_drill(cJSON *root, const struct report_run *r)
{
    cJSON *drill = cJSON_AddObjectToObject(root, "drill");
    return drill != NULL && add_string(drill, "name", r->drill_name) &&
           add_string(drill, "file", r->drill_file) && add_string(drill, "title", r->title) &&
           add_string(drill, "about", r->about);
}

/* "story": [{"at_us", "lane", "text"}, ...]: how a violation came about. */
static bool add_story(cJSON *item, const struct report_expectation *e)
{
    cJSON *story = cJSON_AddArrayToObject(item, "story");
    if (story == NULL) {
        return false;
    }
    for (size_t i = 0; i < e->story_count; i++) {
        cJSON *step = cJSON_CreateObject();
        if (step == NULL || !cJSON_AddItemToArray(story, step)) {
            cJSON_Delete(step);
            return false;
        }
        if (!add_int(step, "at_us", e->story[i].at_us) ||
            !add_string(step, "lane", e->story[i].lane) ||
            !add_string(step, "text", e->story[i].text)) {
            return false;
        }
    }
    return true;
}

static bool add_expectation(cJSON *list, const struct report_expectation *e)
{
    cJSON *item = cJSON_CreateObject();
    if (item == NULL || !cJSON_AddItemToArray(list, item)) {
        cJSON_Delete(item);
        return false;
    }
    return add_string(item, "invariant", e->invariant) &&
           add_string(item, "expected", e->expect_violated ? "violated" : "hold") &&
           add_string(item, "observed", report_observed(e)) && add_bool(item, "ok", e->ok) &&
           add_string(item, "explanation", e->explanation) &&
           add_time_or_null(item, "first_violation_us", e->first_violation_us) &&
           add_uint(item, "checks", e->checks) && add_uint(item, "witnesses", e->witnesses) &&
           add_string(item, "witness", e->witness_noun) &&
           add_string(item, "paragraph", e->paragraph) && add_story(item, e);
}

static bool add_fault(cJSON *list, const struct report_fault *f)
{
    cJSON *item = cJSON_CreateObject();
    if (item == NULL || !cJSON_AddItemToArray(list, item)) {
        cJSON_Delete(item);
        return false;
    }
    /* the fault ledger: one entry per fault statement, in the drill's order */
    return add_string(item, "name", f->name) && add_string(item, "lane", f->lane) &&
           add_int(item, "line", f->line) &&
           add_time_or_null(item, "armed_at_us", f->armed_at_us) &&
           add_time_or_null(item, "healed_at_us", f->healed_at_us) &&
           add_uint(item, "reached", f->reached) && add_uint(item, "fired", f->fired) &&
           add_bool(item, "never_fired", f->fired == 0);
}

/* "ops": {"<kind>": {"ok", "rejected", "fail", "unknown"}, ..., "total": N} */
static bool add_ops(cJSON *root, const struct report_run *r)
{
    cJSON *ops = cJSON_AddObjectToObject(root, "ops");
    if (ops == NULL) {
        return false;
    }
    for (size_t i = 0; i < r->op_count; i++) {
        const struct report_op_count *c = &r->ops[i];
        assert(strcmp(c->kind, "total") != 0); /* the key of the grand total */
        char *kind = report_utf8_clean(c->kind);
        cJSON *counts = kind == NULL ? NULL : cJSON_AddObjectToObject(ops, kind);
        free(kind);
        if (counts == NULL || !add_uint(counts, "ok", c->ok) ||
            !add_uint(counts, "rejected", c->rejected) || !add_uint(counts, "fail", c->fail) ||
            !add_uint(counts, "unknown", c->unknown)) {
            return false;
        }
    }
    return add_uint(ops, "total", r->total_ops);
}

/* "reasons": [{"outcome", "kind", "reason", "count"}, ...]: why operations did not succeed. */
static bool add_reasons(cJSON *root, const struct report_run *r)
{
    cJSON *reasons = cJSON_AddArrayToObject(root, "reasons");
    if (reasons == NULL) {
        return false;
    }
    for (size_t i = 0; i < r->reason_count; i++) {
        const struct report_reason *x = &r->reasons[i];
        cJSON *item = cJSON_CreateObject();
        if (item == NULL || !cJSON_AddItemToArray(reasons, item)) {
            cJSON_Delete(item);
            return false;
        }
        if (!add_string(item, "outcome", x->outcome) || !add_string(item, "kind", x->kind) ||
            !add_string(item, "reason", x->reason) || !add_uint(item, "count", x->count)) {
            return false;
        }
    }
    return true;
}

static bool add_lists(cJSON *root, const struct report_run *r)
{
    cJSON *expectations = cJSON_AddArrayToObject(root, "expectations");
    if (expectations == NULL) {
        return false;
    }
    for (size_t i = 0; i < r->expectation_count; i++) {
        if (!add_expectation(expectations, &r->expectations[i])) {
            return false;
        }
    }
    cJSON *faults = cJSON_AddArrayToObject(root, "faults");
    if (faults == NULL) {
        return false;
    }
    for (size_t i = 0; i < r->fault_count; i++) {
        if (!add_fault(faults, &r->faults[i])) {
            return false;
        }
    }
    return add_ops(root, r) && add_reasons(root, r);
}

/* "metrics": {"name": value, ...}, the units in "metric_units". */
static bool add_metrics(cJSON *root, const struct report_run *r)
{
    cJSON *m = cJSON_AddObjectToObject(root, "metrics");
    cJSON *u = cJSON_AddObjectToObject(root, "metric_units");
    if (m == NULL || u == NULL)
        return false;
    for (size_t i = 0; i < r->metric_count; i++)
        if (!add_int(m, r->metrics[i].name, r->metrics[i].value) ||
            !add_string(u, r->metrics[i].name, r->metrics[i].unit))
            return false;
    return true;
}

/* The whole document; NULL when out of memory. */
static cJSON *json_create(const struct report_run *r)
{
    cJSON *root = cJSON_CreateObject();
    if (root == NULL) {
        return NULL;
    }
    char seed[24];
    snprintf(seed, sizeof seed, "%" PRIu64, r->seed);
    bool ok = add_string(root, "schema", REPORT_SCHEMA) && add_drill(root, r) &&
              add_uint(root, "seed", r->seed) && add_string(root, "seed_str", seed) &&
              add_string(root, "verdict", r->pass ? "pass" : "fail") &&
              add_string(root, "mode", r->live ? "live" : "sim") && add_lists(root, r) &&
              add_int(root, "simulated_us", r->simulated_us) &&
              add_int(root, "wall_ms", r->wall_ms) &&
              add_string(root, "trace_sha256", r->trace_sha256) &&
              add_string(root, "replay", r->replay) && add_metrics(root, r);
    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int report_write_json(const struct report_run *r, FILE *out)
{
    assert(report_run_is_valid(r));
    assert(out != NULL);
    cJSON *root = json_create(r);
    if (root == NULL) {
        return -ENOMEM;
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (text == NULL) {
        return -ENOMEM;
    }
    fputs(text, out);
    fputc('\n', out);
    free(text);
    return report_stream_status(out);
}
