/*
 * sweepio.c — a sweep's results in memory and on disk (see sweep.h): the
 * record of one run built from its report, that record as JSON (what a worker
 * sends to the parent and what sweep.json lists, one run per line), reading a
 * sweep.json back, judging the whole, and writing sweep.json, sweep.md and
 * the JUnit file. Knows nothing of how the runs were made.
 */
#include <assert.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/cli.h"
#include "sim/sweep.h"

static const char *const verdict_names[] = {"pass", "fail", "error"};

/* ---- building ----------------------------------------------------------------- */

int sweep_add_drill(struct sweep *s, const struct drill *d)
{
    if (s->drill_count == SWEEP_DRILLS_MAX)
        return -E2BIG;
    struct sweep_drill *grown = realloc(s->drills, (s->drill_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    s->drills = grown;
    struct sweep_drill *sd = &s->drills[s->drill_count];
    memset(sd, 0, sizeof(*sd));
    snprintf(sd->name, sizeof(sd->name), "%s", d->name);
    snprintf(sd->file, sizeof(sd->file), "%s", d->file);
    snprintf(sd->title, sizeof(sd->title), "%s", d->title);
    size_t n = 0;
    for (size_t i = 0; i < d->event_count; i++)
        n += d->events[i].action == DRILL_FAULT;
    sd->statements = calloc(n + 1, sizeof(*sd->statements));
    if (sd->statements == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < d->event_count; i++) {
        const struct drill_event *e = &d->events[i];
        if (e->action != DRILL_FAULT)
            continue;
        struct sweep_statement *st = &sd->statements[sd->statement_count++];
        st->line = e->line;
        st->at_us = e->at_us;
        snprintf(st->name, sizeof(st->name), "%s", e->name);
    }
    s->drill_count++;
    return 0;
}

int sweep_add_run(struct sweep *s, struct sweep_run *run)
{
    assert(run->drill < s->drill_count);
    if (s->run_count == s->run_cap) {
        size_t cap = s->run_cap ? s->run_cap * 2 : 1024;
        struct sweep_run *grown = realloc(s->runs, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        s->runs = grown;
        s->run_cap = cap;
    }
    s->runs[s->run_count++] = *run;
    memset(run, 0, sizeof(*run));
    return 0;
}

void sweep_run_release(struct sweep_run *run)
{
    for (size_t i = 0; i < run->expect_count; i++)
        free(run->expects[i].explanation);
    free(run->expects);
    free(run->faults);
    free(run->error);
    memset(run, 0, sizeof(*run));
}

void sweep_release(struct sweep *s)
{
    for (size_t i = 0; i < s->run_count; i++)
        sweep_run_release(&s->runs[i]);
    free(s->runs);
    for (size_t i = 0; i < s->drill_count; i++)
        free(s->drills[i].statements);
    free(s->drills);
    memset(s, 0, sizeof(*s));
}

static int by_drill_then_seed(const void *a, const void *b)
{
    const struct sweep_run *x = a, *y = b;
    if (x->drill != y->drill)
        return x->drill < y->drill ? -1 : 1;
    return x->seed < y->seed ? -1 : x->seed > y->seed;
}

void sweep_sort(struct sweep *s)
{
    if (s->run_count > 1)
        qsort(s->runs, s->run_count, sizeof(*s->runs), by_drill_then_seed);
}

/* The fault statement a report's fault ledger entry belongs to (by its line). */
static int statement_of(const struct sweep_drill *sd, const struct report_fault *f, bool *taken)
{
    for (size_t j = 0; j < sd->statement_count; j++) {
        if (!taken[j] && sd->statements[j].line == f->line) {
            taken[j] = true;
            return (int)j;
        }
    }
    return -1;
}

int sweep_run_from_report(const struct sweep *s, size_t drill, const struct report_run *rep,
                          struct sweep_run *run)
{
    assert(drill < s->drill_count);
    const struct sweep_drill *sd = &s->drills[drill];
    memset(run, 0, sizeof(*run));
    run->drill = drill;
    run->seed = rep->seed;
    run->verdict = rep->pass ? SWEEP_PASS : SWEEP_FAIL;
    snprintf(run->trace_sha256, sizeof(run->trace_sha256), "%s", rep->trace_sha256);
    run->wall_ms = rep->wall_ms;
    run->ops = rep->total_ops;
    run->simulated_us = rep->simulated_us;
    run->expects = calloc(rep->expectation_count + 1, sizeof(*run->expects));
    run->faults = calloc(sd->statement_count + 1, sizeof(*run->faults));
    bool *taken = calloc(sd->statement_count + 1, sizeof(*taken));
    if (run->expects == NULL || run->faults == NULL || taken == NULL)
        goto out_nomem;
    for (size_t i = 0; i < rep->expectation_count; i++) {
        const struct report_expectation *e = &rep->expectations[i];
        struct sweep_expect *x = &run->expects[run->expect_count++];
        snprintf(x->invariant, sizeof(x->invariant), "%s", e->invariant);
        x->expect_violated = e->expect_violated;
        snprintf(x->observed, sizeof(x->observed), "%s", report_observed(e));
        x->ok = e->ok;
        if (!e->ok && (x->explanation = strdup(e->explanation)) == NULL)
            goto out_nomem;
    }
    run->fault_count = sd->statement_count;
    for (size_t j = 0; j < sd->statement_count; j++)
        run->faults[j].line = sd->statements[j].line;
    for (size_t i = 0; i < rep->fault_count; i++) {
        int j = statement_of(sd, &rep->faults[i], taken);
        if (j >= 0) {
            run->faults[j].reached = rep->faults[i].reached;
            run->faults[j].fired = rep->faults[i].fired;
        }
    }
    free(taken);
    return 0;
out_nomem:
    free(taken);
    sweep_run_release(run);
    return -ENOMEM;
}

/* ---- JSON of one run -------------------------------------------------------------- */

static cJSON *add_u64(cJSON *obj, const char *key, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return cJSON_AddRawToObject(obj, key, buf);
}

static cJSON *add_i64(cJSON *obj, const char *key, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return cJSON_AddRawToObject(obj, key, buf);
}

static cJSON *run_object(const struct sweep *s, const struct sweep_run *run)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *failing = NULL, *expects = NULL, *faults = NULL;
    if (o == NULL || !cJSON_AddStringToObject(o, "drill", s->drills[run->drill].name) ||
        !add_u64(o, "seed", run->seed) ||
        !cJSON_AddStringToObject(o, "verdict", verdict_names[run->verdict]) ||
        (failing = cJSON_AddArrayToObject(o, "failing")) == NULL ||
        !cJSON_AddStringToObject(o, "trace_sha256", run->trace_sha256) ||
        !add_i64(o, "wall_ms", run->wall_ms) || !add_u64(o, "ops", run->ops) ||
        !add_i64(o, "simulated_us", run->simulated_us))
        goto out_nomem;
    if (run->error != NULL && !cJSON_AddStringToObject(o, "error", run->error))
        goto out_nomem;
    if ((expects = cJSON_AddArrayToObject(o, "expectations")) == NULL ||
        (faults = cJSON_AddArrayToObject(o, "faults")) == NULL)
        goto out_nomem;
    for (size_t i = 0; i < run->expect_count; i++) {
        const struct sweep_expect *x = &run->expects[i];
        cJSON *e = cJSON_CreateObject();
        if (e == NULL)
            goto out_nomem;
        cJSON_AddItemToArray(expects, e);
        if (!cJSON_AddStringToObject(e, "invariant", x->invariant) ||
            !cJSON_AddStringToObject(e, "expected", x->expect_violated ? "violated" : "hold") ||
            !cJSON_AddStringToObject(e, "observed", x->observed) ||
            !cJSON_AddBoolToObject(e, "ok", x->ok))
            goto out_nomem;
        if (x->explanation != NULL &&
            !cJSON_AddStringToObject(e, "explanation", x->explanation))
            goto out_nomem;
        if (!x->ok) {
            cJSON *name = cJSON_CreateString(x->invariant);
            if (name == NULL)
                goto out_nomem;
            cJSON_AddItemToArray(failing, name);
        }
    }
    for (size_t i = 0; i < run->fault_count; i++) {
        cJSON *f = cJSON_CreateObject();
        if (f == NULL)
            goto out_nomem;
        cJSON_AddItemToArray(faults, f);
        if (!cJSON_AddNumberToObject(f, "line", run->faults[i].line) ||
            !add_u64(f, "reached", run->faults[i].reached) ||
            !add_u64(f, "fired", run->faults[i].fired))
            goto out_nomem;
    }
    if (run->rechecked) {
        cJSON *r = cJSON_AddObjectToObject(o, "recheck");
        if (r == NULL || !cJSON_AddStringToObject(r, "trace_sha256", run->recheck_sha256) ||
            !cJSON_AddBoolToObject(
                r, "same", strcmp(run->recheck_sha256, run->trace_sha256) == 0))
            goto out_nomem;
    }
    return o;
out_nomem:
    cJSON_Delete(o);
    return NULL;
}

char *sweep_run_to_json(const struct sweep *s, const struct sweep_run *run)
{
    cJSON *o = run_object(s, run);
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* ---- reading JSON ------------------------------------------------------------------- */

static const cJSON *item(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = item(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A whole number in [lo, hi]; false when absent or not one. */
static bool num_of(const cJSON *o, const char *key, double lo, double hi, double *out)
{
    const cJSON *v = item(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return false;
    *out = v->valuedouble;
    return true;
}

#define BAD(...)                                                                               \
    do {                                                                                       \
        snprintf(err, REPORT_ERR_MAX, __VA_ARGS__);                                            \
        goto out_bad;                                                                          \
    } while (0)

static int parse_expects(const cJSON *arr, struct sweep_run *run, char err[REPORT_ERR_MAX])
{
    run->expects = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*run->expects));
    if (run->expects == NULL)
        BAD("out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        struct sweep_expect *x = &run->expects[run->expect_count++];
        const char *inv = str_of(e, "invariant"), *exp = str_of(e, "expected");
        const char *obs = str_of(e, "observed"), *why = str_of(e, "explanation");
        const cJSON *ok = item(e, "ok");
        if (inv == NULL || exp == NULL || obs == NULL || !cJSON_IsBool(ok) ||
            strlen(inv) >= sizeof(x->invariant) || strlen(obs) >= sizeof(x->observed) ||
            (strcmp(exp, "hold") != 0 && strcmp(exp, "violated") != 0))
            BAD("an expectation lacks invariant, expected, observed or ok");
        snprintf(x->invariant, sizeof(x->invariant), "%s", inv);
        snprintf(x->observed, sizeof(x->observed), "%s", obs);
        x->expect_violated = strcmp(exp, "violated") == 0;
        x->ok = cJSON_IsTrue(ok);
        if (why != NULL && (x->explanation = strdup(why)) == NULL)
            BAD("out of memory");
    }
    return 0;
out_bad:
    return -EINVAL;
}

static int parse_faults(const cJSON *arr, struct sweep_run *run, char err[REPORT_ERR_MAX])
{
    run->faults = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*run->faults));
    if (run->faults == NULL)
        BAD("out of memory");
    const cJSON *f;
    cJSON_ArrayForEach(f, arr)
    {
        double line, reached, fired;
        if (!num_of(f, "line", 1, 1e9, &line) || !num_of(f, "reached", 0, 9e15, &reached) ||
            !num_of(f, "fired", 0, 9e15, &fired))
            BAD("a fault lacks line, reached or fired");
        run->faults[run->fault_count++] =
            (struct sweep_fault){(int)line, (uint64_t)reached, (uint64_t)fired};
    }
    return 0;
out_bad:
    return -EINVAL;
}

static int parse_run(const struct sweep *s, const cJSON *o, struct sweep_run *run,
                     char err[REPORT_ERR_MAX])
{
    memset(run, 0, sizeof(*run));
    const char *drill = str_of(o, "drill"), *verdict = str_of(o, "verdict");
    const char *sha = str_of(o, "trace_sha256"), *error = str_of(o, "error");
    double seed, wall, ops, sim;
    if (drill == NULL || verdict == NULL || sha == NULL || strlen(sha) > 64 ||
        !num_of(o, "seed", 0, (double)SWEEP_SEED_MAX, &seed) ||
        !num_of(o, "wall_ms", -1e15, 1e15, &wall) || !num_of(o, "ops", 0, 9e15, &ops) ||
        !num_of(o, "simulated_us", -1e15, 1e15, &sim))
        BAD("a run lacks drill, seed, verdict, trace_sha256, wall_ms, ops or simulated_us");
    run->drill = s->drill_count;
    for (size_t i = 0; i < s->drill_count; i++)
        if (strcmp(s->drills[i].name, drill) == 0)
            run->drill = i;
    if (run->drill == s->drill_count)
        BAD("a run names drill '%.100s', which the sweep does not list", drill);
    run->verdict = SWEEP_ERROR + 1;
    for (int v = SWEEP_PASS; v <= SWEEP_ERROR; v++)
        if (strcmp(verdict, verdict_names[v]) == 0)
            run->verdict = (enum sweep_verdict)v;
    if (run->verdict > SWEEP_ERROR)
        BAD("verdict '%.40s' is none of pass, fail, error", verdict);
    run->seed = (uint64_t)seed;
    run->wall_ms = (int64_t)wall;
    run->ops = (uint64_t)ops;
    run->simulated_us = (int64_t)sim;
    snprintf(run->trace_sha256, sizeof(run->trace_sha256), "%s", sha);
    if (error != NULL && (run->error = strdup(error)) == NULL)
        BAD("out of memory");
    const cJSON *expects = item(o, "expectations"), *faults = item(o, "faults");
    if (!cJSON_IsArray(expects) || !cJSON_IsArray(faults))
        BAD("a run lacks its expectations or faults");
    if (parse_expects(expects, run, err) != 0 || parse_faults(faults, run, err) != 0)
        goto out_bad;
    const cJSON *recheck = item(o, "recheck");
    if (recheck != NULL) {
        const char *again = str_of(recheck, "trace_sha256");
        if (again == NULL || strlen(again) > 64)
            BAD("a recheck lacks its trace_sha256");
        run->rechecked = true;
        snprintf(run->recheck_sha256, sizeof(run->recheck_sha256), "%s", again);
    }
    return 0;
out_bad:
    sweep_run_release(run);
    return -EINVAL;
}

int sweep_run_parse(const struct sweep *s, const char *json, struct sweep_run *run,
                    char err[REPORT_ERR_MAX])
{
    cJSON *o = cJSON_Parse(json);
    if (o == NULL) {
        snprintf(err, REPORT_ERR_MAX, "a run record is not JSON");
        memset(run, 0, sizeof(*run));
        return -EINVAL;
    }
    int rc = parse_run(s, o, run, err);
    cJSON_Delete(o);
    return rc;
}

static int parse_drill(const cJSON *o, struct sweep_drill *sd, char err[REPORT_ERR_MAX])
{
    const char *name = str_of(o, "name"), *file = str_of(o, "file"), *title = str_of(o, "title");
    const cJSON *faults = item(o, "faults");
    if (name == NULL || file == NULL || title == NULL || !cJSON_IsArray(faults) ||
        strlen(name) >= sizeof(sd->name) || strlen(file) >= sizeof(sd->file) ||
        strlen(title) >= sizeof(sd->title))
        BAD("a drill lacks name, file, title or faults");
    snprintf(sd->name, sizeof(sd->name), "%s", name);
    snprintf(sd->file, sizeof(sd->file), "%s", file);
    snprintf(sd->title, sizeof(sd->title), "%s", title);
    sd->statements = calloc((size_t)cJSON_GetArraySize(faults) + 1, sizeof(*sd->statements));
    if (sd->statements == NULL)
        BAD("out of memory");
    const cJSON *f;
    cJSON_ArrayForEach(f, faults)
    {
        struct sweep_statement *st = &sd->statements[sd->statement_count++];
        const char *point = str_of(f, "name");
        double line, at;
        if (point == NULL || strlen(point) >= sizeof(st->name) ||
            !num_of(f, "line", 1, 1e9, &line) || !num_of(f, "at_us", 0, 9e15, &at))
            BAD("a fault statement of %.100s lacks line, at_us or name", name);
        st->line = (int)line;
        st->at_us = (int64_t)at;
        snprintf(st->name, sizeof(st->name), "%s", point);
    }
    return 0;
out_bad:
    return -EINVAL;
}

static int parse_sweep(const cJSON *root, struct sweep *s, char err[REPORT_ERR_MAX])
{
    const char *schema = str_of(root, "schema");
    if (schema == NULL || strcmp(schema, SWEEP_SCHEMA) != 0)
        BAD("not a sweep.json (schema is not %s)", SWEEP_SCHEMA);
    const cJSON *seeds = item(root, "seeds"), *shard = item(root, "shard");
    double first, last, index, count, pct;
    if (!num_of(seeds, "first", 0, (double)SWEEP_SEED_MAX, &first) ||
        !num_of(seeds, "last", first, (double)SWEEP_SEED_MAX, &last) ||
        !num_of(shard, "index", 0, 1e6, &index) || !num_of(shard, "count", 1, 1e6, &count) ||
        index > count || !num_of(root, "recheck_pct", 0, 100, &pct))
        BAD("seeds, shard or recheck_pct missing or out of range");
    s->seed_first = (uint64_t)first;
    s->seed_last = (uint64_t)last;
    s->shard_index = (unsigned)index;
    s->shard_count = (unsigned)count;
    s->recheck_pct = (unsigned)pct;
    const cJSON *drills = item(root, "drills"), *runs = item(root, "runs");
    if (!cJSON_IsArray(drills) || !cJSON_IsArray(runs))
        BAD("drills or runs missing");
    if (cJSON_GetArraySize(drills) > SWEEP_DRILLS_MAX)
        BAD("more than %d drills", SWEEP_DRILLS_MAX);
    s->drills = calloc((size_t)cJSON_GetArraySize(drills) + 1, sizeof(*s->drills));
    if (s->drills == NULL)
        BAD("out of memory");
    const cJSON *o;
    cJSON_ArrayForEach(o, drills)
    {
        if (parse_drill(o, &s->drills[s->drill_count++], err) != 0)
            goto out_bad;
    }
    cJSON_ArrayForEach(o, runs)
    {
        struct sweep_run run;
        if (parse_run(s, o, &run, err) != 0)
            goto out_bad;
        if (sweep_add_run(s, &run) != 0) {
            sweep_run_release(&run);
            BAD("out of memory");
        }
    }
    return 0;
out_bad:
    return -EINVAL;
}

int sweep_read(const char *path, struct sweep *s, char err[REPORT_ERR_MAX])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int rc = -errno;
        snprintf(err, REPORT_ERR_MAX, "%.300s: %s", path, strerror(errno));
        return rc;
    }
    struct stat st;
    char *text = NULL;
    int rc = 0;
    if (fstat(fileno(f), &st) != 0 || (text = malloc((size_t)st.st_size + 1)) == NULL ||
        fread(text, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        rc = text == NULL ? -ENOMEM : -EIO;
        snprintf(err, REPORT_ERR_MAX, "%.300s: cannot read it", path);
        goto out_close;
    }
    text[st.st_size] = '\0';
    cJSON *root = cJSON_ParseWithLength(text, (size_t)st.st_size);
    if (root == NULL) {
        rc = -EINVAL;
        snprintf(err, REPORT_ERR_MAX, "%.300s: not valid JSON", path);
        goto out_close;
    }
    char why[REPORT_ERR_MAX];
    rc = parse_sweep(root, s, why);
    if (rc != 0)
        snprintf(err, REPORT_ERR_MAX, "%.200s: %.300s", path, why);
    cJSON_Delete(root);
out_close:
    free(text);
    fclose(f);
    return rc;
}

/* ---- judging ------------------------------------------------------------------------- */

/* Seeds of drill d in which statement j fired; how many of its runs ran. */
static uint64_t fired_seeds(const struct sweep *s, size_t d, size_t j, uint64_t *ran)
{
    uint64_t fired = 0;
    *ran = 0;
    for (size_t i = 0; i < s->run_count; i++) {
        const struct sweep_run *r = &s->runs[i];
        if (r->drill != d || r->verdict == SWEEP_ERROR)
            continue;
        (*ran)++;
        fired += j < r->fault_count && r->faults[j].fired > 0;
    }
    return fired;
}

static bool is_unfired(const struct sweep *s, size_t d, size_t j)
{
    uint64_t ran;
    return fired_seeds(s, d, j, &ran) == 0 && ran > 0;
}

static bool is_nondeterministic(const struct sweep_run *r)
{
    return r->rechecked && strcmp(r->recheck_sha256, r->trace_sha256) != 0;
}

bool sweep_judges_faults(const struct sweep *s)
{
    return s->shard_count == 1 || s->shard_index == 0;
}

int sweep_judge(const struct sweep *s, struct sweep_totals *t)
{
    bool judge_unfired = sweep_judges_faults(s);
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < s->run_count; i++) {
        const struct sweep_run *r = &s->runs[i];
        t->runs++;
        t->passed += r->verdict == SWEEP_PASS;
        t->failed += r->verdict == SWEEP_FAIL;
        t->errors += r->verdict == SWEEP_ERROR;
        t->rechecked += r->rechecked;
        t->nondeterministic += is_nondeterministic(r);
        t->ops += r->ops;
        t->simulated_us += r->simulated_us;
        t->wall_ms += r->wall_ms > 0 ? r->wall_ms : 0;
    }
    if (judge_unfired)
        for (size_t d = 0; d < s->drill_count; d++)
            for (size_t j = 0; j < s->drills[d].statement_count; j++)
                t->unfired += is_unfired(s, d, j);
    if (t->errors > 0)
        return EXIT_CANNOT_RUN;
    return t->failed + t->nondeterministic + t->unfired > 0 ? EXIT_NOT_MET : EXIT_MET;
}

void sweep_replay(const struct sweep *s, const struct sweep_run *run, char *buf, size_t len)
{
    cli_replay(buf, len, false, s->drills[run->drill].file, run->seed, s->out);
}

/* ---- writing --------------------------------------------------------------------------- */

static void put_json_string(FILE *out, const char *text)
{
    cJSON *str = cJSON_CreateString(text);
    char *printed = str ? cJSON_PrintUnformatted(str) : NULL;
    fputs(printed ? printed : "\"\"", out);
    free(printed);
    cJSON_Delete(str);
}

static int write_json(const struct sweep *s, bool judge_unfired, FILE *out)
{
    (void)judge_unfired; /* sweep_judge knows */
    struct sweep_totals t;
    int code = sweep_judge(s, &t);
    fprintf(out,
            "{\n  \"schema\": \"%s\",\n  \"seeds\": {\"first\": %" PRIu64 ", \"last\": %" PRIu64
            "},\n  \"shard\": {\"index\": %u, \"count\": %u},\n  \"recheck_pct\": %u,\n"
            "  \"drills\": [",
            SWEEP_SCHEMA, s->seed_first, s->seed_last, s->shard_index, s->shard_count,
            s->recheck_pct);
    for (size_t d = 0; d < s->drill_count; d++) {
        const struct sweep_drill *sd = &s->drills[d];
        fputs(d ? ",\n    {\"name\": " : "\n    {\"name\": ", out);
        put_json_string(out, sd->name);
        fputs(", \"file\": ", out);
        put_json_string(out, sd->file);
        fputs(", \"title\": ", out);
        put_json_string(out, sd->title);
        fputs(", \"faults\": [", out);
        for (size_t j = 0; j < sd->statement_count; j++) {
            uint64_t ran, fired = fired_seeds(s, d, j, &ran);
            fprintf(out, "%s{\"line\": %d, \"at_us\": %" PRId64 ", \"name\": ", j ? ", " : "",
                    sd->statements[j].line, sd->statements[j].at_us);
            put_json_string(out, sd->statements[j].name);
            fprintf(out, ", \"fired_in_seeds\": %" PRIu64 ", \"seeds\": %" PRIu64 "}", fired,
                    ran);
        }
        fputs("]}", out);
    }
    fputs("\n  ],\n  \"runs\": [", out);
    for (size_t i = 0; i < s->run_count; i++) {
        char *text = sweep_run_to_json(s, &s->runs[i]);
        if (text == NULL)
            return -ENOMEM;
        fprintf(out, "%s\n    %s", i ? "," : "", text);
        free(text);
    }
    fprintf(out,
            "\n  ],\n  \"totals\": {\"runs\": %" PRIu64 ", \"passed\": %" PRIu64
            ", \"failed\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"rechecked\": %" PRIu64
            ", \"nondeterministic\": %" PRIu64 ", \"unfired_faults\": %" PRIu64
            ", \"ops\": %" PRIu64 ", \"simulated_us\": %" PRId64 ", \"wall_ms\": %" PRId64
            "},\n  \"verdict\": \"%s\"\n}\n",
            t.runs, t.passed, t.failed, t.errors, t.rechecked, t.nondeterministic, t.unfired,
            t.ops, t.simulated_us, t.wall_ms, code == EXIT_MET ? "pass" : "fail");
    return report_stream_status(out);
}

static void failing_list(const struct sweep_run *r, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t used = 0;
    for (size_t k = 0; k < r->expect_count && used + 1 < len; k++) {
        const struct sweep_expect *x = &r->expects[k];
        if (x->ok)
            continue;
        int n = snprintf(buf + used, len - used, "%s%s %s", used ? ", " : "", x->invariant,
                         x->observed);
        used += n > 0 ? (size_t)n : 0;
    }
    if (used >= len)
        buf[len - 1] = '\0';
}

static void drill_totals(const struct sweep *s, size_t d, struct sweep_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < s->run_count; i++) {
        const struct sweep_run *r = &s->runs[i];
        if (r->drill != d)
            continue;
        t->runs++;
        t->passed += r->verdict == SWEEP_PASS;
        t->failed += r->verdict == SWEEP_FAIL;
        t->errors += r->verdict == SWEEP_ERROR;
        t->nondeterministic += is_nondeterministic(r);
        t->ops += r->ops;
        t->simulated_us += r->simulated_us;
        t->wall_ms += r->wall_ms > 0 ? r->wall_ms : 0;
    }
}

static void shard_text(const struct sweep *s, char *buf, size_t len)
{
    if (s->shard_count == 1)
        snprintf(buf, len, "unsharded");
    else if (s->shard_index == 0)
        snprintf(buf, len, "%u shards merged", s->shard_count);
    else
        snprintf(buf, len, "shard %u/%u", s->shard_index, s->shard_count);
}

#define SWEEP_PRINTED_MAX 20 /* failing seeds listed on a terminal; sweep.md has them all */

/* The findings after the table, in Markdown (md) or plain text. */
static void write_findings(const struct sweep *s, bool judge_unfired, bool md, FILE *out)
{
    const char *bullet = md ? "- " : "  ";
    const char *tick = md ? "`" : "";
    bool header = false;
    uint64_t listed = 0, failing = 0;
    for (size_t i = 0; i < s->run_count; i++)
        failing += s->runs[i].verdict != SWEEP_PASS;
    for (size_t i = 0; i < s->run_count; i++) {
        const struct sweep_run *r = &s->runs[i];
        if (r->verdict == SWEEP_PASS)
            continue;
        if (!header)
            fprintf(out, md ? "\n## Failing seeds\n\n" : "\nfailing seeds:\n");
        header = true;
        if (!md && listed == SWEEP_PRINTED_MAX) {
            fprintf(out, "  ... and %" PRIu64 " more: see sweep.md\n", failing - listed);
            break;
        }
        listed++;
        char what[512], replay[4200];
        if (r->verdict == SWEEP_ERROR)
            snprintf(what, sizeof(what), "could not run: %.480s", r->error ? r->error : "?");
        else
            failing_list(r, what, sizeof(what));
        sweep_replay(s, r, replay, sizeof(replay));
        fprintf(out, "%s%s seed %" PRIu64 ": %s\n%s  replay: %s%s%s\n", bullet,
                s->drills[r->drill].name, r->seed, what, md ? "" : "", tick, replay, tick);
    }
    header = false;
    for (size_t i = 0; i < s->run_count; i++) {
        const struct sweep_run *r = &s->runs[i];
        if (!is_nondeterministic(r))
            continue;
        if (!header)
            fprintf(out, md ? "\n## Not deterministic\n\n" : "\nnot deterministic:\n");
        header = true;
        fprintf(out, "%s%s seed %" PRIu64 ": trace %.12s… the first time, %.12s… when rerun\n",
                bullet, s->drills[r->drill].name, r->seed, r->trace_sha256,
                r->recheck_sha256[0] ? r->recheck_sha256 : "(no trace)");
    }
    header = false;
    for (size_t d = 0; judge_unfired && d < s->drill_count; d++) {
        for (size_t j = 0; j < s->drills[d].statement_count; j++) {
            if (!is_unfired(s, d, j))
                continue;
            if (!header)
                fprintf(out, md ? "\n## Fault statements that never fired\n\n"
                                : "\nfault statements that fired in none of the seeds:\n");
            header = true;
            uint64_t ran;
            fired_seeds(s, d, j, &ran);
            fprintf(out, "%s%s%s:%d%s fault %s fired in none of its %" PRIu64 " seeds\n", bullet,
                    tick, s->drills[d].file, s->drills[d].statements[j].line, tick,
                    s->drills[d].statements[j].name, ran);
        }
    }
}

static int write_md(const struct sweep *s, bool judge_unfired, FILE *out)
{
    struct sweep_totals t;
    int code = sweep_judge(s, &t);
    char shard[64];
    shard_text(s, shard, sizeof(shard));
    fprintf(out, "# Sweep: seeds %" PRIu64 "–%" PRIu64 " (%s)\n\n**%s**", s->seed_first,
            s->seed_last, shard, code == EXIT_MET ? "PASS" : "FAIL");
    fprintf(out,
            ": %" PRIu64 " runs, %" PRIu64 " passed, %" PRIu64 " failed, %" PRIu64
            " could not run",
            t.runs, t.passed, t.failed, t.errors);
    if (t.rechecked)
        fprintf(out, "; %" PRIu64 " rechecked, %" PRIu64 " not deterministic", t.rechecked,
                t.nondeterministic);
    if (judge_unfired)
        fprintf(out, "; %" PRIu64 " fault statements never fired", t.unfired);
    fputs(".\n\n| drill | seeds | passed | failed | errors | ops | simulated |\n"
          "|---|---:|---:|---:|---:|---:|---:|\n",
          out);
    for (size_t d = 0; d < s->drill_count; d++) {
        struct sweep_totals dt;
        drill_totals(s, d, &dt);
        char ops[REPORT_FMT_MAX], sim[REPORT_FMT_MAX];
        report_format_count(dt.ops, ops);
        report_format_duration(dt.simulated_us, sim);
        fprintf(out, "| %s | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %" PRIu64 " | %s | %s |\n",
                s->drills[d].name, dt.runs, dt.passed, dt.failed, dt.errors, ops, sim);
    }
    write_findings(s, judge_unfired, true, out);
    return report_stream_status(out);
}

void sweep_print_summary(const struct sweep *s, FILE *out)
{
    bool judge_unfired = sweep_judges_faults(s);
    struct sweep_totals t;
    int code = sweep_judge(s, &t);
    fprintf(out, "%-32s %7s %7s %7s %7s %11s\n", "drill", "seeds", "passed", "failed", "errors",
            "ops");
    for (size_t d = 0; d < s->drill_count; d++) {
        struct sweep_totals dt;
        drill_totals(s, d, &dt);
        char ops[REPORT_FMT_MAX];
        report_format_count(dt.ops, ops);
        fprintf(out, "%-32s %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %11s\n",
                s->drills[d].name, dt.runs, dt.passed, dt.failed, dt.errors, ops);
    }
    write_findings(s, judge_unfired, false, out);
    char shard[64], ops[REPORT_FMT_MAX];
    shard_text(s, shard, sizeof(shard));
    report_format_count(t.ops, ops);
    fprintf(out, "%s  %" PRIu64 " runs (%s), %" PRIu64 " passed, %" PRIu64 " failed, %" PRIu64
                 " could not run",
            code == EXIT_MET ? "PASS" : "FAIL", t.runs, shard, t.passed, t.failed, t.errors);
    if (t.rechecked)
        fprintf(out, ", %" PRIu64 "/%" PRIu64 " rechecked not deterministic", t.nondeterministic,
                t.rechecked);
    if (judge_unfired && t.unfired)
        fprintf(out, ", %" PRIu64 " fault statements never fired", t.unfired);
    fprintf(out, "; %s ops\n", ops);
}

/* ---- JUnit ------------------------------------------------------------------------------ */

static void put_seconds(FILE *out, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    fprintf(out, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
}

static void junit_case_open(FILE *out, const char *name, const char *drill, const char *suffix,
                            int64_t ms)
{
    fputs("    <testcase name=\"", out);
    report_xml_put_attr(out, name);
    fputs("\" classname=\"faultdrill.", out);
    report_xml_put_attr(out, drill);
    fputs(suffix, out);
    fputs("\" time=\"", out);
    put_seconds(out, ms);
    fputs("\"", out);
}

static void junit_run(const struct sweep *s, const struct sweep_run *r, FILE *out)
{
    const char *drill = s->drills[r->drill].name;
    char cls[48], replay[4200];
    snprintf(cls, sizeof(cls), ".seed-%" PRIu64, r->seed);
    sweep_replay(s, r, replay, sizeof(replay));
    if (r->verdict == SWEEP_ERROR) {
        junit_case_open(out, "run", drill, cls, r->wall_ms);
        fputs(">\n      <error message=\"could not run\">", out);
        report_xml_put_text(out, r->error ? r->error : "");
        fputs("\nreplay: ", out);
        report_xml_put_text(out, replay);
        fputs("</error>\n    </testcase>\n", out);
    }
    for (size_t k = 0; k < r->expect_count; k++) {
        const struct sweep_expect *x = &r->expects[k];
        char name[96];
        snprintf(name, sizeof(name), "%s (expected %s)", x->invariant,
                 x->expect_violated ? "violated" : "hold");
        junit_case_open(out, name, drill, cls, r->wall_ms);
        if (x->ok) {
            fputs("/>\n", out);
            continue;
        }
        char msg[160];
        snprintf(msg, sizeof(msg), "expected %s to %s, but it was %s", x->invariant,
                 x->expect_violated ? "be violated" : "hold", x->observed);
        fputs(">\n      <failure message=\"", out);
        report_xml_put_attr(out, msg);
        fputs("\">", out);
        report_xml_put_text(out, x->explanation ? x->explanation : "");
        fputs("\nreplay: ", out);
        report_xml_put_text(out, replay);
        fputs("</failure>\n    </testcase>\n", out);
    }
    if (r->rechecked) {
        junit_case_open(out, "deterministic (rechecked)", drill, cls, r->wall_ms);
        if (!is_nondeterministic(r)) {
            fputs("/>\n", out);
        } else {
            fputs(">\n      <failure message=\"not deterministic\">", out);
            fprintf(out, "trace_sha256 %s the first time, %s when rerun\nreplay: ",
                    r->trace_sha256, r->recheck_sha256[0] ? r->recheck_sha256 : "(none)");
            report_xml_put_text(out, replay);
            fputs("</failure>\n    </testcase>\n", out);
        }
    }
}

static void junit_statements(const struct sweep *s, size_t d, FILE *out)
{
    const struct sweep_drill *sd = &s->drills[d];
    for (size_t j = 0; j < sd->statement_count; j++) {
        uint64_t ran, fired = fired_seeds(s, d, j, &ran);
        char name[FAULTS_NAME_MAX + 64];
        snprintf(name, sizeof(name), "fault %s (line %d) fired", sd->statements[j].name,
                 sd->statements[j].line);
        junit_case_open(out, name, sd->name, ".faults", 0);
        if (!is_unfired(s, d, j)) {
            fputs("/>\n", out);
            continue;
        }
        fprintf(out,
                ">\n      <failure message=\"never fired\">%" PRIu64 " of %" PRIu64
                " seeds fired it: the drill does not test what it says</failure>\n"
                "    </testcase>\n",
                fired, ran);
    }
}

static void junit_count(const struct sweep *s, size_t d, bool judge_unfired, uint64_t c[3],
                        int64_t *ms)
{
    for (size_t i = 0; i < s->run_count; i++) {
        const struct sweep_run *r = &s->runs[i];
        if (r->drill != d)
            continue;
        c[0] += r->expect_count + (r->verdict == SWEEP_ERROR) + r->rechecked;
        for (size_t k = 0; k < r->expect_count; k++)
            c[1] += !r->expects[k].ok;
        c[1] += is_nondeterministic(r);
        c[2] += r->verdict == SWEEP_ERROR;
        *ms += r->wall_ms > 0 ? r->wall_ms : 0;
    }
    if (judge_unfired) {
        c[0] += s->drills[d].statement_count;
        for (size_t j = 0; j < s->drills[d].statement_count; j++)
            c[1] += is_unfired(s, d, j);
    }
}

static int write_junit(const struct sweep *s, bool judge_unfired, FILE *out)
{
    uint64_t all[3] = {0};
    int64_t all_ms = 0;
    for (size_t d = 0; d < s->drill_count; d++)
        junit_count(s, d, judge_unfired, all, &all_ms);
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"faultdrill\" "
            "tests=\"%" PRIu64 "\" failures=\"%" PRIu64 "\" errors=\"%" PRIu64 "\" time=\"",
            all[0], all[1], all[2]);
    put_seconds(out, all_ms);
    fputs("\">\n", out);
    size_t i = 0; /* runs are sorted by drill: each suite is one stretch */
    for (size_t d = 0; d < s->drill_count; d++) {
        uint64_t c[3] = {0};
        int64_t ms = 0;
        junit_count(s, d, judge_unfired, c, &ms);
        fputs("  <testsuite name=\"", out);
        report_xml_put_attr(out, s->drills[d].name);
        fprintf(out,
                "\" tests=\"%" PRIu64 "\" failures=\"%" PRIu64 "\" errors=\"%" PRIu64
                "\" time=\"",
                c[0], c[1], c[2]);
        put_seconds(out, ms);
        fputs("\">\n", out);
        for (; i < s->run_count && s->runs[i].drill == d; i++)
            junit_run(s, &s->runs[i], out);
        if (judge_unfired)
            junit_statements(s, d, out);
        fputs("  </testsuite>\n", out);
    }
    fputs("</testsuites>\n", out);
    return report_stream_status(out);
}

/* ---- files --------------------------------------------------------------------------------- */

typedef int (*writer_fn)(const struct sweep *s, bool judge_unfired, FILE *out);

/* Writes path through a temporary file renamed over it: readers never see half a file. */
static int write_file(const char *path, writer_fn fn, const struct sweep *s, bool judge_unfired,
                      char err[REPORT_ERR_MAX])
{
    char tmp[4200];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(err, REPORT_ERR_MAX, "cannot write %.300s: %s", path, strerror(ENAMETOOLONG));
        return -ENAMETOOLONG;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = -errno;
        snprintf(err, REPORT_ERR_MAX, "cannot write %.300s: %s", path, strerror(errno));
        return rc;
    }
    FILE *out = fdopen(fd, "w");
    int rc = out == NULL ? -errno : 0;
    if (out == NULL)
        close(fd);
    if (rc == 0 && fchmod(fd, 0644) != 0)
        rc = -errno;
    if (rc == 0)
        rc = fn(s, judge_unfired, out);
    if (out != NULL && fclose(out) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        snprintf(err, REPORT_ERR_MAX, "cannot write %.300s: %s", path, strerror(-rc));
    }
    return rc;
}

int sweep_write(const struct sweep *s, const char *out_dir, const char *junit,
                char err[REPORT_ERR_MAX])
{
    bool judge_unfired = sweep_judges_faults(s);
    char path[4200];
    int rc = cli_mkdir_p(out_dir, err);
    if (rc != 0)
        return rc;
    snprintf(path, sizeof(path), "%s/sweep.json", out_dir);
    rc = write_file(path, write_json, s, judge_unfired, err);
    if (rc == 0) {
        snprintf(path, sizeof(path), "%s/sweep.md", out_dir);
        rc = write_file(path, write_md, s, judge_unfired, err);
    }
    if (rc == 0 && junit != NULL)
        rc = write_file(junit, write_junit, s, judge_unfired, err);
    return rc;
}
