/*
 * live_agree.c — the lag part of the sim/live agreement (agreement.md): for
 * each node, how long it was behind (its lane's behind, degraded or offline
 * stretches, which the simulator's story and run --live's watcher draw with
 * the same words) and the lag figures either run measured, simulated beside
 * live. The simulator sees every event; the live runner polls its nodes
 * (live_watch.c), so a live figure is a sample and says so. With topology
 * stake, also what the ledger did to each predictor (slashes, exclusion).
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

/* The stake ledger and its predictors hold no copy of the shop: no lag of theirs. */
static bool is_stake_lane(const char *lane)
{
    return strcmp(lane, "ledger") == 0 || strncmp(lane, "predictor", 9) == 0;
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

bool live_agree_is_lag(const char *name)
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

/* ---- stake: what the ledger did to each predictor ----------------------------- */

struct stake_story {
    int64_t slashed;                   /* micro-units, over every round */
    int64_t rounds_slashed;
    int64_t excluded_round;            /* 0: never */
};

/* From ledger.c's marks on a predictor's lane ("round N: slashed X", "round N: excluded"). */
static struct stake_story stake_of(const struct report_run *r, const char *lane)
{
    struct stake_story st = {0, 0, 0};
    for (size_t i = 0; i < r->event_count; i++) {
        const struct report_event *e = &r->events[i];
        long long round = 0, amount = 0;
        if (e->mark != REPORT_OP_FAIL || strcmp(e->lane, lane) != 0)
            continue;
        if (sscanf(e->label, "round %lld: slashed %lld", &round, &amount) == 2) {
            st.slashed += amount;
            st.rounds_slashed++;
        } else if (sscanf(e->label, "round %lld: exclude", &round) == 1 &&
                   strstr(e->label, "excluded") != NULL) {
            st.excluded_round = round;
        }
    }
    return st;
}

static void put_stake(FILE *out, const struct stake_story *st)
{
    if (st->rounds_slashed == 0)
        fputs("never slashed", out);
    else
        fprintf(out, "slashed %" PRId64 " in %" PRId64 " round(s)", st->slashed,
                st->rounds_slashed);
    if (st->excluded_round > 0)
        fprintf(out, ", excluded in round %" PRId64, st->excluded_round);
}

/* The stake ledger's verdicts on each predictor, simulated beside live. */
static void agree_stake(const struct report_run *sim, const struct report_run *live, FILE *out)
{
    bool header = false;
    for (size_t n = 0; n < live->node_lane_count; n++) {
        const char *lane = live->lanes[n];
        if (strncmp(lane, "predictor", 9) != 0)
            continue;
        struct stake_story s = stake_of(sim, lane), l = stake_of(live, lane);
        if (!header)
            fputs("\n## Stake\n\nWhat the ledger did to each predictor, simulated beside "
                  "live (serve --stake's ledger, the runner's predictors).\n\n"
                  "| predictor | simulated | live |\n|---|---|---|\n",
                  out);
        header = true;
        bool same = s.slashed == l.slashed && s.rounds_slashed == l.rounds_slashed &&
                    s.excluded_round == l.excluded_round;
        fprintf(out, "| %s | ", lane);
        put_stake(out, &s);
        fputs(" | ", out);
        put_stake(out, &l);
        fputs(same ? " |\n" : " (differs) |\n", out);
    }
}

void live_agree_lag(const struct report_run *sim, const struct report_run *live, FILE *out)
{
    agree_stake(sim, live, out);
    /* only when something lagged: a strict mirror's "never" and 0 changes say nothing */
    bool any = false;
    for (size_t i = 0; i < live->metric_count && !any; i++)
        any = live_agree_is_lag(live->metrics[i].name) && live->metrics[i].value != 0;
    for (size_t i = 0; i < sim->metric_count && !any; i++)
        any = live_agree_is_lag(sim->metrics[i].name) && sim->metrics[i].value != 0;
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
        if (is_stake_lane(live->lanes[n]))
            continue; /* the Stake section's */
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
            if (!live_agree_is_lag(name) || (side == 1 && figure(sim, name) != NULL))
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
