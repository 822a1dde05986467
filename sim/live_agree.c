/*
 * live_agree.c — the lag part of the sim/live agreement (agreement.md): for
 * each node, how long it was behind (its lane's behind, degraded or offline
 * stretches, which the simulator's story and run --live's watcher draw with
 * the same words) and the lag figures either run measured, simulated beside
 * live. The simulator sees every event; the live runner polls its nodes
 * (live_watch.c), so a live figure is a sample and says so.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sim/live_more.h"

/* A node's lane that lags: a copy lacking changes (behind, or a degraded mirror half
 * behind; not a fenced old primary), or a local cut off on purpose. */
static bool lagging(const struct report_event *e)
{
    return e->state == REPORT_STATE_BEHIND || e->state == REPORT_STATE_OFFLINE ||
           (e->state == REPORT_STATE_DEGRADED && strstr(e->label, "behind") != NULL);
}

/* To the millisecond: a live run's times are real, its microseconds noise. */
static void put_duration(FILE *out, int64_t us)
{
    char d[REPORT_FMT_MAX];
    report_format_duration(us / 1000 * 1000, d);
    fputs(d, out);
}

struct behind {
    int64_t total_us, longest_us;
    size_t stretches;
    bool seen;                         /* the lane has states at all */
};

/* Node `lane`'s lagging stretches, from its REPORT_STATE marks (in time order). */
static struct behind behind_of(const struct report_run *r, const char *lane)
{
    struct behind b = {0, 0, 0, false};
    int64_t since = -1;
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        if (e->mark != REPORT_STATE || strcmp(e->lane, lane) != 0)
            continue;
        b.seen = true;
        bool lags = lagging(e);
        if (lags && since < 0) {
            since = e->at_us;
        } else if (!lags && since >= 0) {
            int64_t d = e->at_us - since;
            b.total_us += d;
            b.longest_us = d > b.longest_us ? d : b.longest_us;
            b.stretches++;
            since = -1;
        }
    }
    if (since >= 0 && r->simulated_us > since) { /* still behind at the end */
        int64_t d = r->simulated_us - since;
        b.total_us += d;
        b.longest_us = d > b.longest_us ? d : b.longest_us;
        b.stretches++;
    }
    return b;
}

static void put_behind(FILE *out, const struct behind *b)
{
    if (!b->seen) {
        fputs("not drawn", out);
        return;
    }
    if (b->stretches == 0) {
        fputs("never", out);
        return;
    }
    put_duration(out, b->total_us);
    fprintf(out, " in %zu stretch(es), the longest ", b->stretches);
    put_duration(out, b->longest_us);
}

static bool is_lag_figure(const char *name)
{
    return strstr(name, "lag") != NULL;
}

static const struct report_metric *figure(const struct report_run *r, const char *name)
{
    for (size_t i = 0; i < r->metric_count; i++)
        if (strcmp(r->metrics[i].name, name) == 0)
            return &r->metrics[i];
    return NULL;
}

static void put_figure(FILE *out, const struct report_metric *m, const char *none)
{
    if (m == NULL)
        fputs(none, out);
    else if (strcmp(m->unit, "us") == 0)
        put_duration(out, m->value);
    else
        fprintf(out, "%" PRId64 " %s", m->value, m->unit);
}

void live_agree_lag(const struct report_run *sim, const struct report_run *live, FILE *out)
{
    bool any = false;
    for (size_t i = 0; i < live->metric_count && !any; i++)
        any = is_lag_figure(live->metrics[i].name);
    for (size_t i = 0; i < sim->metric_count && !any; i++)
        any = is_lag_figure(sim->metrics[i].name);
    size_t nodes = live->node_lane_count;
    for (size_t n = 0; n < nodes && !any; n++) {
        struct behind s = behind_of(sim, live->lanes[n]), l = behind_of(live, live->lanes[n]);
        any = s.stretches > 0 || l.stretches > 0;
    }
    if (!any)
        return;
    fputs("\n## Lag\n\nHow long each node was behind (its lane behind, degraded or offline), and "
          "the lag figures, simulated beside live. The simulator sees every event; the live "
          "runner reads the nodes' status routes every 0.1 s, so a live figure is a sample.\n\n"
          "| node | simulated: behind | live: behind |\n|---|---|---|\n",
          out);
    for (size_t n = 0; n < nodes; n++) {
        struct behind s = behind_of(sim, live->lanes[n]), l = behind_of(live, live->lanes[n]);
        fprintf(out, "| %s | ", live->lanes[n]);
        put_behind(out, &s);
        fputs(" | ", out);
        put_behind(out, &l);
        fputs(" |\n", out);
    }
    bool header = false;
    for (int side = 0; side < 2; side++) {
        const struct report_run *r = side == 0 ? sim : live;
        for (size_t i = 0; i < r->metric_count; i++) {
            const char *name = r->metrics[i].name;
            if (!is_lag_figure(name) || (side == 1 && figure(sim, name) != NULL))
                continue; /* each figure once */
            if (!header)
                fputs("\n| lag figure | simulated | live |\n|---|---|---|\n", out);
            header = true;
            fprintf(out, "| %s | ", name);
            put_figure(out, figure(sim, name), "not measured by the simulator");
            fputs(" | ", out);
            put_figure(out, figure(live, name), "not measured live");
            fputs(" |\n", out);
        }
    }
}
