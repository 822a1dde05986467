/*
 * live_more.h — what `run --live` (live.c) adds beside its own runner: a
 * watcher of the serve processes' status routes that draws the nodes' lanes
 * and measures the replication lag (live_watch.c), and the lag part of the
 * sim/live agreement (live_agree.c).
 */
#ifndef FAULTDRILL_LIVE_MORE_H
#define FAULTDRILL_LIVE_MORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "faults/faults.h"
#include "reports/reports.h"
#include "sim/drill.h"

struct sim;

/* A reply libcurl writes into (live_watch.c, live_stake.c): grown as it comes and
 * NUL-terminated; past max bytes the transfer fails and cut says so. */
struct live_body {
    char *data;
    size_t len, max;
    bool cut;
};

/* CURLOPT_WRITEFUNCTION with CURLOPT_WRITEDATA a struct live_body (live_net.c). */
size_t live_body_collect(char *data, size_t size, size_t n, void *arg);
/* Empties it for the next reply (keeps its memory and max). */
void live_body_reset(struct live_body *b);

/* What the watcher asks the live runner, always under *lock. */
struct live_watch_io {
    struct sim *s;
    pthread_mutex_t *lock;             /* the runner's lock over s */
    void *ctx;
    /* the run's clock moves to now (s->now_us), never backwards */
    void (*tick)(void *ctx);
    /* node n: 1 its process runs at *base*, 0 its process is down (crashed), -1 not to be
     * watched now (no process of its own to ask, or stopped for a judgement of the files) */
    int (*node)(void *ctx, int n, char base[64]);
};

struct live_watch;

/*
 * Starts the watcher thread: every LIVE_WATCH_EVERY_US it reads each node's
 * status route and marks the node's lane when its state changes (down,
 * behind with its lag, offline, degraded...), as the simulator's story does.
 * NULL when it cannot start (said in the trace; the run goes on without lanes).
 */
struct live_watch *live_watch_start(const struct live_watch_io *io);

/* Stops and joins it, then puts the lag it measured into the run's figures (under the
 * lock, which the caller does not hold). NULL: nothing. */
void live_watch_stop(struct live_watch *w);

/*
 * The agreement's lag: how long each node was behind (from the lanes both runs
 * drew) and the lag figures either run measured, simulated beside live, in
 * Markdown. Nothing when neither run had a copy that could fall behind. With
 * topology stake, first what the ledger did to each predictor, both ways.
 */
void live_agree_lag(const struct report_run *sim, const struct report_run *live, FILE *out);
/* A lag figure (its name says lag): the agreement sets it in the Lag section, not among
 * the other figures. */
bool live_agree_is_lag(const char *name);

/* live_net.c: a client's hops on the drill's network (latency= plus a seeded draw in
 * [0, jitter=]), one before its request, one after the reply, as the simulator's
 * messages take them. */
struct live_hops {
    struct faults_rng rng;
    int64_t latency_us, jitter_us;
};

void live_hops_init(struct live_hops *h, const struct drill_topology *t, uint64_t seed,
                    int client);

/* Waits one hop; returns how long (us). */
int64_t live_hop(struct live_hops *h);

/*
 * live_stake.c: topology stake live. serve --stake hosts the ledger in the main
 * node's process; a thread of the runner plays the predictors every round=
 * (closes the open round, sends each prediction), as ledger.c does in the simulator.
 */
struct live_stake_io {
    struct sim *s;
    pthread_mutex_t *lock;
    void *ctx;
    void (*tick)(void *ctx);
    int64_t (*now)(void *ctx);                /* the run's time, us (no lock needed) */
    int (*ledger)(void *ctx, char base[64]);  /* 1: the ledger's process runs at base */
};

struct live_stake;
struct world_fault;
struct drill_event;

struct live_stake *live_stake_start(const struct live_stake_io *io); /* NULL: could not */
void live_stake_stop(struct live_stake *w);
/* stake/<predictor>/lie: a point of the runner's own predictors, armed in its libfiu */
bool live_stake_point(const char *name);
int live_stake_arm(const struct drill_event *e, char *why, size_t len);
void live_stake_disarm(struct world_fault *f);

#endif
