/*
 * result.c — turns a finished run into the report the reports library
 * writes: expectations met or not with their explanations, the faults as
 * armed, operation counts, the timeline's lanes and marks, and the trace
 * with its digest. Part of libsim.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

static void fill_expectations(struct sim *s, struct report_run *rep)
{
    const struct drill *d = s->drill;
    rep->pass = true;
    for (size_t i = 0; i < d->expect_count; i++) {
        const struct drill_expect *e = &d->expects[i];
        const struct world_verdict *v = &s->verdicts[i];
        struct report_expectation *x = &rep->expectations[i];
        const struct invariant_info *info = invariant_lookup(e->invariant);
        const char *summary = info ? info->summary : e->invariant;
        const char *noun = info && info->witness ? info->witness : "things judged";
        snprintf(x->invariant, sizeof(x->invariant), "%s", e->invariant);
        snprintf(x->witness_noun, sizeof(x->witness_noun), "%s", noun);
        x->expect_violated = e->violated;
        x->observed_violated = v->violated;
        x->witnesses = v->witnesses;
        /* DESIGN.md §4: a checker that judged nothing did not hold, it was not exercised */
        x->unexercised = !v->violated && v->witnesses == 0;
        x->ok = v->violated == e->violated && !x->unexercised;
        x->first_violation_us = v->violated ? v->first_us : -1;
        x->checks = v->checks;
        char witnesses[REPORT_FMT_MAX], checks[REPORT_FMT_MAX];
        report_format_count(v->witnesses, witnesses);
        report_format_count(v->checks, checks);
        if (v->violated)
            snprintf(x->explanation, sizeof(x->explanation), "%s", v->why);
        else if (x->unexercised)
            snprintf(x->explanation, sizeof(x->explanation),
                     "unexercised: %s (it judged no %s in %s check%s, so it proves nothing: %s)",
                     v->lacked[0]          ? v->lacked
                     : v->checks == 0      ? "no checkpoint found the state it needs"
                     : info && info->lacks ? info->lacks
                                           : "the drill gave it nothing to judge",
                     noun, checks, v->checks == 1 ? "" : "s", summary);
        else if (e->violated)
            snprintf(x->explanation, sizeof(x->explanation),
                     "expected a violation, but it held over %s %s in %s check%s: %s", witnesses,
                     noun, checks, v->checks == 1 ? "" : "s", summary);
        else
            snprintf(x->explanation, sizeof(x->explanation),
                     "held over %s %s in %s check%s: %s%s%s", witnesses, noun, checks,
                     v->checks == 1 ? "" : "s", summary, v->lacked[0] ? ". Not judged: " : "",
                     v->lacked);
        rep->pass = rep->pass && x->ok;
    }
}

/* The fault ledger: one entry per fault statement of the drill, in its order,
 * with how often the point was reached and how often it fired while armed. A
 * statement the run never armed (its time came after the end, or arming
 * failed) is listed with armed_at_us -1: it never fired either. */
static size_t fill_faults(struct sim *s, struct report_run *rep)
{
    const struct drill *d = s->drill;
    size_t n = 0;
    for (size_t i = 0; i < s->fault_count; i++) {
        struct world_fault *f = &s->faults[i];
        if (f->armed)
            faults_stats(f->name, &f->reached, &f->fired);
    }
    for (size_t ev = 0; ev < d->event_count; ev++) {
        const struct drill_event *e = &d->events[ev];
        if (e->action != DRILL_FAULT)
            continue;
        struct report_fault *r = &rep->faults[n++];
        snprintf(r->name, sizeof(r->name), "%s", e->name);
        r->line = e->line;
        r->armed_at_us = -1;
        r->healed_at_us = -1;
        for (size_t i = 0; i < s->fault_count; i++) {
            const struct world_fault *f = &s->faults[i];
            if (f->event != (int)ev)
                continue;
            snprintf(r->lane, sizeof(r->lane), "%s", f->lane);
            r->armed_at_us = f->armed_at_us;
            r->healed_at_us = f->armed ? -1 : f->healed_at_us;
            r->reached += f->reached;
            r->fired += f->fired;
        }
    }
    return n;
}

static void fill_ops(struct sim *s, struct report_run *rep)
{
    for (int k = 0; k < DRILL_OP_COUNT; k++)
        snprintf(rep->ops[k].kind, sizeof(rep->ops[k].kind), "%s", drill_op_name((enum drill_op)k));
    for (size_t i = 0; i < s->op_count; i++) {
        struct report_op_count *c = &rep->ops[s->ops[i].kind];
        switch (s->ops[i].outcome) {
        case SIM_OK:
            c->ok++;
            break;
        case SIM_FAIL:
            c->fail++;
            break;
        case SIM_REJECTED:
            c->rejected++;
            break;
        default:
            c->unknown++; /* still pending at the end counts as unknown too */
            break;
        }
    }
    rep->total_ops = s->op_count;
}

static void fill_lanes(struct sim *s, struct report_run *rep)
{
    size_t n = 0;
    for (size_t i = 0; i < s->node_count; i++)
        snprintf(rep->lanes[n++], 64, "%s", s->nodes[i].name);
    for (int c = 1; c <= s->client_count; c++)
        snprintf(rep->lanes[n++], 64, "client%d", c);
    rep->lane_count = n;
    rep->node_lane_count = s->node_count;
}

static void fill_about(const struct drill *d, struct report_run *rep)
{
    size_t used = 0;
    for (size_t i = 0; i < d->about_count && used < sizeof(rep->about) - 1; i++) {
        int w = snprintf(rep->about + used, sizeof(rep->about) - used, "%s%s", i ? "\n" : "",
                         d->about[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int result_fill(struct sim *s, struct report_run *rep, const char *replay)
{
    const struct drill *d = s->drill;
    snprintf(rep->drill_name, sizeof(rep->drill_name), "%s", d->name);
    snprintf(rep->drill_file, sizeof(rep->drill_file), "%s", d->file);
    snprintf(rep->title, sizeof(rep->title), "%s", d->title);
    fill_about(d, rep);
    rep->seed = s->seed;
    rep->expectations = calloc(d->expect_count + 1, sizeof(*rep->expectations));
    size_t statements = 0;
    for (size_t i = 0; i < d->event_count; i++)
        statements += d->events[i].action == DRILL_FAULT;
    rep->faults = calloc(statements + 1, sizeof(*rep->faults));
    rep->ops = calloc(DRILL_OP_COUNT, sizeof(*rep->ops));
    rep->lanes = calloc(s->node_count + (size_t)s->client_count + 1, sizeof(*rep->lanes));
    if (!rep->expectations || !rep->faults || !rep->ops || !rep->lanes) {
        sim_result_release(rep);
        snprintf(s->msg, sizeof(s->msg), "out of memory writing the result");
        return -ENOMEM;
    }
    rep->expectation_count = d->expect_count;
    fill_expectations(s, rep);
    rep->fault_count = fill_faults(s, rep);
    rep->op_count = DRILL_OP_COUNT;
    fill_ops(s, rep);
    fill_lanes(s, rep);
    rep->events = s->marks; /* ownership moves to the report */
    rep->event_count = s->mark_count;
    rep->event_text = s->mark_text;
    s->marks = NULL;
    s->mark_text = NULL;
    s->mark_count = s->mark_cap = 0;
    rep->simulated_us = s->now_us;
    world_trace_to_report(s, rep);
    snprintf(rep->replay, sizeof(rep->replay), "%s", replay ? replay : "");
    rep->metric_count = s->metric_count;
    memcpy(rep->metrics, s->metrics, sizeof(rep->metrics));
    if (story_fill(s, rep) != 0) {
        sim_result_release(rep);
        snprintf(s->msg, sizeof(s->msg), "out of memory writing the result");
        return -ENOMEM;
    }
    return 0;
}

void sim_result_release(struct report_run *rep)
{
    free(rep->expectations);
    free(rep->faults);
    free(rep->ops);
    free(rep->lanes);
    free(rep->events);
    world_mark_text_free(rep->event_text);
    if (rep->trace != NULL && rep->trace_len > 0)
        free((void *)rep->trace);
    if (rep->trace_file != NULL)
        fclose(rep->trace_file);
    memset(rep, 0, sizeof(*rep));
}
