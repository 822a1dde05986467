/*
 * ledger.c — the stake ledger in the simulator (topology `stake`, beside any
 * other): node `ledger` keeps a platform stake ledger (platform/stake.h) in
 * <workdir>/ledger.sqlite on its own fault VFS, and predictor1..N register
 * with a deposit at the start. Every `round=` each predictor that is up
 * predicts a value that wanders at random (the truth) and sends the
 * prediction to the ledger over the simulated network, so partitions and
 * net/<predictor>/ledger/... faults reach it; when stake/<predictor>/lie
 * fires it lies, well outside the tolerance. At the next round the ledger
 * closes the open round in one transaction and the trace says who was
 * slashed, by how much, and who was excluded. A close the disk refuses
 * changes nothing and is retried at the next round; a crashed ledger
 * abandons its connection and reopens (SQLite recovers) on restart.
 *
 * Checker: stake-conserved, from the ledger's own audit plus a history of
 * the lies the ledger accepted: each must be slashed in its round while the
 * liar was eligible. Part of libsim; reaches the ledger only through
 * platform/stake.h and the runner only through world.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/stake.h"
#include "sim/world.h"

#define LEDGER_MSG_PREDICTION 0x5354 /* WORLD_NODE type: a: predictor N, b: prediction */
#define LEDGER_TRUTH_START    100000 /* where the truth's random walk begins */
#define LEDGER_TRUTH_ABS_MAX  (STAKE_PREDICTION_MAX / 4) /* the walk is kept within this */
#define LEDGER_LIES_MAX       (1u << 20) /* accepted lies remembered for the checker */
#define LEDGER_ROUNDS_MAX     (1u << 24) /* rounds whose close time is remembered */
#define LEDGER_MSG_TEXT_MAX   320

/* What travels with a prediction besides its value: the simulator's own
 * bookkeeping for the trace and the checker. The ledger's decisions never
 * read it. */
struct ledger_payload {
    int64_t tick;  /* the predictors' round of sending that made it */
    int64_t truth; /* the truth it was meant to predict */
    bool lied;     /* stake/<predictor>/lie fired for it */
};

/* A lie the ledger accepted into a round: the history stake-conserved judges. */
struct ledger_lie {
    int predictor; /* N of predictorN */
    int64_t round;
    int64_t prediction, truth;
    int64_t at_us; /* when the ledger recorded it */
};

struct ledger_state {
    int node;                                     /* index of node `ledger` */
    int count;                                    /* predictors */
    int predictor_node[DRILL_PREDICTORS_MAX + 1]; /* node index of predictorN */
    int64_t id[DRILL_PREDICTORS_MAX + 1];         /* its id in the ledger, 0: not known */
    struct faults_rng rng[DRILL_PREDICTORS_MAX + 1];
    struct faults_rng truth_rng;
    struct stake_config cfg;
    int64_t deposit;
    int64_t round_us;
    char path[WORLD_PATH_MAX];
    stake_ledger *ledger; /* NULL while down or not openable */
    int64_t tick;         /* predictions sent so far, in rounds */
    int64_t truth;
    int64_t truth_round, round_truth; /* the truth the open round's predictions aimed at */
    size_t lie_count, lie_cap, lies_judged;
    struct ledger_lie *lies;
    size_t closed_cap;
    int64_t *closed_at_us;            /* by round - 1; 0: not closed by this run */
    struct stake_round_result result; /* scratch: large */
    struct stake_audit audit;         /* scratch: large */
    struct stake_predictor list[DRILL_PREDICTORS_MAX];
};

static struct ledger_state *st(struct sim *s)
{
    return s->ledger_state;
}

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

/* The ledger's message without the run's scratch directory, which differs
 * from run to run: the trace must not. */
static const char *clean(const struct sim *s, const char *msg, char buf[LEDGER_MSG_TEXT_MAX])
{
    size_t dir = strlen(s->workdir), len = 0;
    for (const char *m = msg; *m != '\0' && len + 1 < LEDGER_MSG_TEXT_MAX;) {
        if (dir > 0 && strncmp(m, s->workdir, dir) == 0 && m[dir] == '/') {
            m += dir + 1;
            continue;
        }
        buf[len++] = *m++;
    }
    buf[len] = '\0';
    return buf;
}

static const char *ledger_msg(struct sim *s, char buf[LEDGER_MSG_TEXT_MAX])
{
    return clean(s, stake_errmsg(st(s)->ledger), buf);
}

/* N of the predictor with ledger id `id`, or 0. */
static int predictor_of(const struct ledger_state *l, int64_t id)
{
    for (int i = 1; i <= l->count; i++)
        if (l->id[i] == id)
            return i;
    return 0;
}

/* ---- opening ---------------------------------------------------------------- */

/* Learns the predictors' ids, registering those the ledger does not hold
 * yet (every one, on a new ledger). */
static int ledger_register(struct sim *s)
{
    struct ledger_state *l = st(s);
    char msg[LEDGER_MSG_TEXT_MAX], name[FAULTS_NODE_MAX];
    int n = stake_list(l->ledger, l->list, DRILL_PREDICTORS_MAX);
    if (n < 0) {
        world_trace(s, "ledger", "cannot list the predictors: %s", ledger_msg(s, msg));
        return n;
    }
    for (int i = 1; i <= l->count; i++) {
        snprintf(name, sizeof(name), "predictor%d", i);
        l->id[i] = 0;
        for (int k = 0; k < n && k < DRILL_PREDICTORS_MAX; k++)
            if (strcmp(l->list[k].name, name) == 0)
                l->id[i] = l->list[k].id;
        if (l->id[i] != 0)
            continue;
        int err = stake_register(l->ledger, name, l->deposit, &l->id[i]);
        if (err) {
            world_trace(s, "ledger", "cannot register %s: %s", name, ledger_msg(s, msg));
            return err;
        }
        world_trace(s, "ledger", "%s registered with a deposit of %lld", name,
                    (long long)l->deposit);
    }
    return 0;
}

/* Opens the ledger on node `ledger`'s disk; 0 or the error (traced). */
static int ledger_open(struct sim *s, const char *why)
{
    struct ledger_state *l = st(s);
    char raw[STAKE_ERRMSG_MAX], msg[LEDGER_MSG_TEXT_MAX];
    int err = stake_open(l->path, faults_vfs_name("ledger"), &l->cfg, &l->ledger, raw);
    if (err) {
        world_trace(s, "ledger", "cannot open the stake ledger (%s): %s", why, clean(s, raw, msg));
        return err;
    }
    err = ledger_register(s);
    int64_t round = 0;
    if (!err)
        err = stake_current_round(l->ledger, &round);
    if (err) {
        stake_close(l->ledger);
        l->ledger = NULL;
        world_trace(s, "ledger", "stake ledger not usable (%s): closed, retried next round", why);
        return err;
    }
    world_trace(s, "ledger", "stake ledger open (%s): round %lld is open", why, (long long)round);
    return 0;
}

int ledger_start(struct sim *s)
{
    const struct drill_topology *t = &s->drill->topology;
    if ((t->components & DRILL_STAKE) == 0)
        return 0;
    struct ledger_state *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return -ENOMEM;
    s->ledger_state = l;
    l->node = world_node_index(s, "ledger");
    l->count = t->predictors;
    if (l->node < 0 || l->count < 1 || l->count > DRILL_PREDICTORS_MAX) {
        snprintf(s->msg, sizeof(s->msg), "topology stake needs node ledger and 1..%d predictors",
                 DRILL_PREDICTORS_MAX);
        return -EINVAL;
    }
    for (int i = 1; i <= l->count; i++) {
        char name[FAULTS_NODE_MAX], stream[48];
        snprintf(name, sizeof(name), "predictor%d", i);
        snprintf(stream, sizeof(stream), "predictor/%d", i);
        l->predictor_node[i] = world_node_index(s, name);
        faults_rng_seed(&l->rng[i], s->seed, stream);
        if (l->predictor_node[i] < 0) {
            snprintf(s->msg, sizeof(s->msg), "topology stake: no node %s", name);
            return -EINVAL;
        }
    }
    faults_rng_seed(&l->truth_rng, s->seed, "truth");
    l->truth = LEDGER_TRUTH_START;
    l->cfg = (struct stake_config){.tolerance = t->stake_tolerance,
                                   .slash_ppm = t->stake_slash_ppm,
                                   .min_stake = t->stake_min,
                                   .max_predictors = l->count};
    l->deposit = t->stake_deposit;
    l->round_us = t->stake_round_us;
    snprintf(l->path, sizeof(l->path), "%s/ledger.sqlite", s->workdir);
    world_trace(s, "ledger",
                "stake: %d predictors, deposit %lld, tolerance %lld, slash %lld ppm, min-stake "
                "%lld, a round every %.3fs",
                l->count, (long long)l->deposit, (long long)l->cfg.tolerance,
                (long long)l->cfg.slash_ppm, (long long)l->cfg.min_stake, secs(l->round_us));
    if (ledger_open(s, "start") != 0) {
        snprintf(s->msg, sizeof(s->msg), "cannot start the stake ledger (see trace)");
        return -EIO;
    }
    return sim_queue_push(&s->queue, s->now_us + l->round_us, SIM_EV_LEDGER, 0, 0);
}

void ledger_release(struct sim *s)
{
    struct ledger_state *l = st(s);
    if (l == NULL)
        return;
    stake_close(l->ledger);
    free(l->lies);
    free(l->closed_at_us);
    free(l);
    s->ledger_state = NULL;
}

void ledger_crashed(struct sim *s, int n)
{
    struct ledger_state *l = st(s);
    if (l == NULL || n != l->node || l->ledger == NULL)
        return;
    /* The runner crashed the node's VFS first: nothing more reaches the disk. */
    stake_abandon(l->ledger);
    l->ledger = NULL;
    world_trace(s, "ledger", "stake ledger abandoned: its process died");
}

void ledger_restarted(struct sim *s, int n)
{
    struct ledger_state *l = st(s);
    if (l == NULL || n != l->node || l->ledger != NULL || !s->nodes[n].up)
        return;
    ledger_open(s, "restart");
}

/* ---- the predictors ------------------------------------------------------- */

/*
 * Predictor i's prediction of the truth. Honest predictors stay within a
 * quarter of the tolerance (not half): with a fifth of the stake, a liar
 * two and a half tolerances off pulls the weighted mean half a tolerance
 * its way, and an honest prediction must still lie within the tolerance of
 * that mean. A lie is 2 to 2.5 tolerances (+1, so that tolerance=0 lies
 * too) off, on a side drawn at random. Every draw is made whether or not
 * the predictor lies, so arming the fault shifts no other randomness.
 */
static int64_t predict(struct ledger_state *l, int i, bool lie)
{
    int64_t tol = l->cfg.tolerance;
    int64_t noise_max = tol / 4;
    int64_t noise = (int64_t)faults_rng_below(&l->rng[i], 2 * (uint64_t)noise_max + 1) - noise_max;
    int64_t off = 2 * tol + 1 + (int64_t)faults_rng_below(&l->rng[i], (uint64_t)tol / 2 + 1);
    int64_t side = faults_rng_below(&l->rng[i], 2) == 0 ? 1 : -1;
    return lie ? l->truth + side * off : l->truth + noise;
}

/* The truth takes one random step of up to half a tolerance. */
static void truth_step(struct ledger_state *l)
{
    int64_t half = l->cfg.tolerance / 2;
    l->truth += (int64_t)faults_rng_below(&l->truth_rng, 2 * (uint64_t)half + 1) - half;
    if (l->truth > LEDGER_TRUTH_ABS_MAX)
        l->truth = LEDGER_TRUTH_ABS_MAX;
    if (l->truth < -LEDGER_TRUTH_ABS_MAX)
        l->truth = -LEDGER_TRUTH_ABS_MAX;
}

/* Every predictor that is up sends its prediction to the ledger. */
static void predictors_send(struct sim *s)
{
    struct ledger_state *l = st(s);
    l->tick++;
    truth_step(l);
    world_trace(s, "-", "stake step %lld: the truth is %lld", (long long)l->tick,
                (long long)l->truth);
    for (int i = 1; i <= l->count; i++) {
        char lane[FAULTS_NODE_MAX], point[FAULTS_NAME_MAX];
        snprintf(lane, sizeof(lane), "predictor%d", i);
        if (!s->nodes[l->predictor_node[i]].up) {
            world_trace(s, lane, "down: no prediction");
            continue;
        }
        snprintf(point, sizeof(point), "stake/%s/lie", lane);
        bool lie = faults_check(point) > 0;
        struct ledger_payload p = {.tick = l->tick, .truth = l->truth, .lied = lie};
        int64_t value = predict(l, i, lie);
        if (lie)
            world_trace(s, lane, "lies (%s): predicts %lld, %+lld off the truth -> ledger", point,
                        (long long)value, (long long)(value - l->truth));
        else
            world_trace(s, lane, "predicts %lld -> ledger", (long long)value);
        world_send(s, l->predictor_node[i], l->node, LEDGER_MSG_PREDICTION, i, value, &p, sizeof(p),
                   s->now_us);
    }
}

/* ---- the ledger ------------------------------------------------------------ */

static void remember_lie(struct sim *s, int i, int64_t round, int64_t value,
                         const struct ledger_payload *p)
{
    struct ledger_state *l = st(s);
    if (l->lie_count == l->lie_cap) {
        size_t cap = l->lie_cap ? 2 * l->lie_cap : 64;
        struct ledger_lie *grown =
            cap <= LEDGER_LIES_MAX ? realloc(l->lies, cap * sizeof(*grown)) : NULL;
        if (grown == NULL) {
            world_trace(s, "ledger", "no room to remember more lies: later ones are not judged");
            return;
        }
        l->lies = grown;
        l->lie_cap = cap;
    }
    l->lies[l->lie_count++] = (struct ledger_lie){
        .predictor = i, .round = round, .prediction = value, .truth = p->truth, .at_us = s->now_us};
}

/* Records one prediction in the open round. */
static void accept_prediction(struct sim *s, int i, int64_t value, const struct ledger_payload *p)
{
    struct ledger_state *l = st(s);
    char msg[LEDGER_MSG_TEXT_MAX];
    int64_t round = 0;
    int err = stake_current_round(l->ledger, &round);
    if (!err)
        err = stake_submit(l->ledger, round, l->id[i], value);
    if (err == -EEXIST || err == -EPERM) {
        world_trace(s, "ledger", "round %lld: prediction %lld of predictor%d refused: %s",
                    (long long)round, (long long)value, i, ledger_msg(s, msg));
        return;
    }
    if (err) {
        world_trace(s, "ledger", "round %lld: prediction %lld of predictor%d not recorded%s: %s",
                    (long long)round, (long long)value, i,
                    err == -EINPROGRESS ? " (or maybe recorded: the sync failed)" : "",
                    ledger_msg(s, msg));
        return;
    }
    world_trace(s, "ledger", "round %lld: predictor%d predicts %lld%s", (long long)round, i,
                (long long)value, p->lied ? " (a lie)" : "");
    if (l->truth_round != round) {
        l->truth_round = round;
        l->round_truth = p->truth;
    }
    if (p->lied)
        remember_lie(s, i, round, value, p);
}

bool ledger_deliver(struct sim *s, const struct world_msg *m)
{
    struct ledger_state *l = st(s);
    if (l == NULL || m->to != l->node || m->type != LEDGER_MSG_PREDICTION)
        return false;
    int i = (int)m->a;
    struct ledger_payload p;
    if (i < 1 || i > l->count || m->len != sizeof(p) || m->data == NULL)
        return true; /* not one of ours: nothing sends such a message */
    memcpy(&p, m->data, sizeof(p));
    if (!s->nodes[l->node].up) {
        world_trace(s, "ledger", "prediction of predictor%d lost: the ledger is down", i);
        return true;
    }
    if (l->ledger == NULL) {
        world_trace(s, "ledger", "prediction of predictor%d lost: the stake ledger is not open", i);
        return true;
    }
    accept_prediction(s, i, m->b, &p);
    return true;
}

static void remember_close(struct sim *s, int64_t round)
{
    struct ledger_state *l = st(s);
    if (round < 1 || (uint64_t)round > LEDGER_ROUNDS_MAX)
        return;
    if ((size_t)round > l->closed_cap) {
        size_t cap = l->closed_cap ? l->closed_cap : 64;
        while (cap < (size_t)round)
            cap *= 2;
        int64_t *grown = realloc(l->closed_at_us, cap * sizeof(*grown));
        if (grown == NULL)
            return;
        memset(grown + l->closed_cap, 0, (cap - l->closed_cap) * sizeof(*grown));
        l->closed_at_us = grown;
        l->closed_cap = cap;
    }
    l->closed_at_us[round - 1] = s->now_us;
}

/* Who the close slashed and excluded, one line each, on the ledger's lane
 * and as marks on the predictors' lanes. */
static void trace_entries(struct sim *s, const struct stake_round_result *r)
{
    struct ledger_state *l = st(s);
    for (size_t k = 0; k < r->entry_count; k++) {
        const struct stake_round_entry *e = &r->entries[k];
        char lane[FAULTS_NODE_MAX];
        snprintf(lane, sizeof(lane), "predictor%d", predictor_of(l, e->predictor_id));
        if (e->slashed > 0) {
            world_trace(s, "ledger",
                        "round %lld: %s slashed %lld of its stake %lld (predicted %lld, error "
                        "%+lld beyond the tolerance %lld): balance %lld",
                        (long long)r->round, lane, (long long)e->slashed, (long long)e->stake,
                        (long long)e->prediction, (long long)e->error, (long long)l->cfg.tolerance,
                        (long long)e->balance);
            world_mark(s, lane, REPORT_OP_FAIL, "round %lld: slashed %lld", (long long)r->round,
                       (long long)e->slashed);
        }
        if (e->excluded) {
            world_trace(s, "ledger",
                        "round %lld: %s excluded for good: its balance %lld is below min-stake "
                        "%lld",
                        (long long)r->round, lane, (long long)e->balance,
                        (long long)l->cfg.min_stake);
            world_mark(s, lane, REPORT_OP_FAIL, "round %lld: excluded", (long long)r->round);
        }
    }
}

/* Closes the open round; a failure changes nothing and waits for the next. */
static void close_round(struct sim *s)
{
    struct ledger_state *l = st(s);
    char msg[LEDGER_MSG_TEXT_MAX], truth[48] = "";
    if (!s->nodes[l->node].up) {
        world_trace(s, "ledger", "down: no round closed");
        return;
    }
    if (l->ledger == NULL && ledger_open(s, "retry") != 0)
        return;
    struct stake_round_result *r = &l->result;
    int64_t round = 0;
    int err = stake_current_round(l->ledger, &round);
    if (!err)
        err = stake_close_round(l->ledger, round, r);
    if (err) {
        world_trace(s, "ledger",
                    "round %lld not closed%s: %s; its predictions stay, retried next "
                    "round",
                    (long long)round,
                    err == -EINPROGRESS ? " (or maybe closed: the sync failed)" : "",
                    ledger_msg(s, msg));
        return;
    }
    remember_close(s, r->round);
    if (l->truth_round == r->round)
        snprintf(truth, sizeof(truth), " (the truth was %lld)", (long long)l->round_truth);
    if (!r->has_consensus)
        world_trace(s, "ledger", "round %lld closed without a consensus: no eligible prediction",
                    (long long)r->round);
    else
        world_trace(s, "ledger",
                    "round %lld closed: consensus %lld%s from %zu prediction(s), stake %lld; "
                    "slashed %lld, treasury %lld",
                    (long long)r->round, (long long)r->consensus, truth, r->entry_count,
                    (long long)r->total_stake, (long long)r->slashed_total, (long long)r->treasury);
    trace_entries(s, r);
}

void ledger_tick(struct sim *s)
{
    struct ledger_state *l = st(s);
    if (l == NULL)
        return;
    if (l->tick > 0)
        close_round(s); /* the round the last predictions went to */
    predictors_send(s);
    sim_queue_push(&s->queue, s->now_us + l->round_us, SIM_EV_LEDGER, 0, 0);
}

/* ---- stake-conserved --------------------------------------------------------- */

/* Why an audit that stake_audit_is_ok refuses is wrong, in amounts. */
static void audit_why(struct sim *s, const struct stake_audit *a, char *why, size_t len)
{
    if (a->deposits != a->balances + a->treasury) {
        snprintf(why, len,
                 "at %.3fs, after %lld closed round(s), the ledger holds deposits of %lld but "
                 "balances %lld + treasury %lld = %lld: %lld micro-units were %s",
                 secs(s->now_us), (long long)a->rounds_closed, (long long)a->deposits,
                 (long long)a->balances, (long long)a->treasury,
                 (long long)(a->balances + a->treasury),
                 (long long)llabs(a->balances + a->treasury - a->deposits),
                 a->balances + a->treasury > a->deposits ? "created" : "destroyed");
    } else if (a->min_balance < 0 || a->treasury < 0) {
        snprintf(why, len, "at %.3fs a balance (lowest %lld) or the treasury (%lld) is negative",
                 secs(s->now_us), (long long)a->min_balance, (long long)a->treasury);
    } else {
        snprintf(why, len,
                 "at %.3fs a weight is outside [0, %d] ppm: current weights sum to %lld ppm; "
                 "recorded round weights range over [%lld, %lld] and sum to at most %lld",
                 secs(s->now_us), STAKE_PPM, (long long)a->weight_sum_ppm,
                 (long long)a->round_weight_min_ppm, (long long)a->round_weight_max_ppm,
                 (long long)a->round_weight_sum_max_ppm);
    }
}

/* floor(stake * ppm / 1e6), as stake.h defines the slash, without overflow. */
static int64_t slash_due(int64_t stake, int64_t ppm)
{
    return (stake / STAKE_PPM) * ppm + (stake % STAKE_PPM) * ppm / STAKE_PPM;
}

/* Judges one accepted lie once its round is closed: -1 not yet, 0 fine,
 * 1 not slashed (why filled). */
static int judge_lie(struct sim *s, const struct ledger_lie *lie, char *why, size_t len)
{
    struct ledger_state *l = st(s);
    struct stake_round_result *r = &l->result;
    int err = stake_round_get(l->ledger, lie->round, r);
    if (err)
        return -1; /* not closed yet, or cannot be read now */
    const struct stake_round_entry *e = NULL;
    for (size_t k = 0; k < r->entry_count && e == NULL; k++)
        if (r->entries[k].predictor_id == l->id[lie->predictor])
            e = &r->entries[k];
    int64_t closed_us = (size_t)lie->round <= l->closed_cap ? l->closed_at_us[lie->round - 1] : 0;
    if (e == NULL) {
        snprintf(why, len,
                 "predictor%d's lie %lld, recorded in round %lld at %.3fs, is missing from the "
                 "closed round: a recorded submission was lost",
                 lie->predictor, (long long)lie->prediction, (long long)lie->round,
                 secs(lie->at_us));
        return 1;
    }
    if (!e->eligible)
        return 0; /* excluded before this round closed: nothing left to slash */
    int64_t due = slash_due(e->stake, l->cfg.slash_ppm);
    bool caught = llabs(e->error) > l->cfg.tolerance;
    if (caught && e->slashed == due)
        return 0;
    if (caught) {
        snprintf(why, len,
                 "predictor%d lied in round %lld (predicted %lld at %.3fs) and was caught (error "
                 "%+lld, tolerance %lld), but the close at %.3fs slashed %lld of its stake %lld "
                 "instead of %lld",
                 lie->predictor, (long long)lie->round, (long long)lie->prediction,
                 secs(lie->at_us), (long long)e->error, (long long)l->cfg.tolerance,
                 secs(closed_us), (long long)e->slashed, (long long)e->stake, (long long)due);
        return 1;
    }
    snprintf(why, len,
             "predictor%d lied in round %lld (predicted %lld at %.3fs, the truth was %lld) while "
             "eligible with a stake of %lld, but the close at %.3fs did not slash it: consensus "
             "%lld, error %+lld within the tolerance %lld (its weight of %lld ppm pulled the "
             "consensus its way)",
             lie->predictor, (long long)lie->round, (long long)lie->prediction, secs(lie->at_us),
             (long long)lie->truth, (long long)e->stake, secs(closed_us), (long long)r->consensus,
             (long long)e->error, (long long)l->cfg.tolerance, (long long)e->weight_ppm);
    return 1;
}

enum sim_check ledger_stake_conserved(struct sim *s, const struct drill_expect *e, char *why,
                                      size_t len)
{
    (void)e;
    struct ledger_state *l = st(s);
    if (l == NULL || l->ledger == NULL)
        return SIM_CHECK_SKIPPED; /* no ledger, or it is down */
    if (stake_audit(l->ledger, &l->audit) != 0)
        return SIM_CHECK_SKIPPED; /* its disk cannot be read now */
    if (!stake_audit_is_ok(&l->audit)) {
        audit_why(s, &l->audit, why, len);
        return SIM_CHECK_VIOLATED;
    }
    /* Lies are judged in order, each once its round is closed. */
    while (l->lies_judged < l->lie_count) {
        int verdict = judge_lie(s, &l->lies[l->lies_judged], why, len);
        if (verdict < 0)
            break;
        if (verdict > 0)
            return SIM_CHECK_VIOLATED;
        l->lies_judged++;
    }
    world_witness(s, l->audit.rounds_closed > 0 ? (uint64_t)l->audit.rounds_closed : 0);
    return SIM_CHECK_HOLDS;
}

/* ---- run --live (live_stake.c) ----------------------------------------------
 *
 * Live, the ledger is serve's (serve --stake, in the main node's process) and
 * the predictors are the live runner's: the same draws, the same lies, the
 * same traces, sent over HTTP. The simulator's own state keeps what the
 * checker needs (the predictors' ids, the lies the ledger accepted, when each
 * round closed); the file is opened here only for a judgement.
 */

void ledger_live_let_go(struct sim *s)
{
    struct ledger_state *l = st(s);
    if (l == NULL || l->ledger == NULL)
        return;
    stake_close(l->ledger);
    l->ledger = NULL;
}

int ledger_live_open(struct sim *s)
{
    struct ledger_state *l = st(s);
    if (l == NULL || l->ledger != NULL)
        return 0;
    return ledger_open(s, "judged on its file");
}

int64_t ledger_live_round_us(struct sim *s)
{
    struct ledger_state *l = st(s);
    return l != NULL ? l->round_us : 0;
}

int ledger_live_step(struct sim *s, struct ledger_live_prediction *out, int max)
{
    struct ledger_state *l = st(s);
    if (l == NULL)
        return 0;
    l->tick++;
    truth_step(l);
    world_trace(s, "-", "stake step %lld: the truth is %lld", (long long)l->tick,
                (long long)l->truth);
    int n = 0;
    for (int i = 1; i <= l->count && n < max; i++) {
        char lane[FAULTS_NODE_MAX], point[FAULTS_NAME_MAX];
        snprintf(lane, sizeof(lane), "predictor%d", i);
        snprintf(point, sizeof(point), "stake/%s/lie", lane);
        bool lie = faults_check(point) > 0;
        int64_t value = predict(l, i, lie);
        if (lie)
            world_trace(s, lane, "lies (%s): predicts %lld, %+lld off the truth -> ledger", point,
                        (long long)value, (long long)(value - l->truth));
        else
            world_trace(s, lane, "predicts %lld -> ledger", (long long)value);
        out[n++] = (struct ledger_live_prediction){
            .predictor = i, .id = l->id[i], .value = value, .truth = l->truth, .lied = lie};
    }
    return n;
}

void ledger_live_recorded(struct sim *s, const struct ledger_live_prediction *p, int64_t round)
{
    struct ledger_state *l = st(s);
    if (l == NULL)
        return;
    world_trace(s, "ledger", "round %lld: predictor%d predicts %lld%s", (long long)round,
                p->predictor, (long long)p->value, p->lied ? " (a lie)" : "");
    if (l->truth_round != round) {
        l->truth_round = round;
        l->round_truth = p->truth;
    }
    if (p->lied) {
        struct ledger_payload payload = {.tick = l->tick, .truth = p->truth, .lied = true};
        remember_lie(s, p->predictor, round, p->value, &payload);
    }
}

void ledger_live_closed(struct sim *s, const struct stake_round_result *r)
{
    struct ledger_state *l = st(s);
    if (l == NULL)
        return;
    char truth[48] = "";
    remember_close(s, r->round);
    if (l->truth_round == r->round)
        snprintf(truth, sizeof(truth), " (the truth was %lld)", (long long)l->round_truth);
    if (!r->has_consensus)
        world_trace(s, "ledger", "round %lld closed without a consensus: no eligible prediction",
                    (long long)r->round);
    else
        world_trace(s, "ledger",
                    "round %lld closed: consensus %lld%s from %zu prediction(s), stake %lld; "
                    "slashed %lld, treasury %lld",
                    (long long)r->round, (long long)r->consensus, truth, r->entry_count,
                    (long long)r->total_stake, (long long)r->slashed_total, (long long)r->treasury);
    trace_entries(s, r);
}

int ledger_live_move(struct sim *s, const char *dir)
{
    struct ledger_state *l = st(s);
    if (l == NULL || l->ledger != NULL)
        return -EBUSY;
    char to[WORLD_PATH_MAX];
    if (snprintf(to, sizeof(to), "%s/ledger.sqlite", dir) >= (int)sizeof(to))
        return -ENAMETOOLONG;
    static const char *const suffixes[] = {"-wal", "-shm", ""}; /* the database last */
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(*suffixes); i++) {
        char a[WORLD_PATH_MAX + 8], b[WORLD_PATH_MAX + 8];
        snprintf(a, sizeof(a), "%s%s", l->path, suffixes[i]);
        snprintf(b, sizeof(b), "%s%s", to, suffixes[i]);
        if (rename(a, b) != 0 && (errno != ENOENT || suffixes[i][0] == '\0')) {
            int err = -errno;
            world_trace(s, "ledger", "cannot move the stake ledger to its node's directory: %s",
                        strerror(errno));
            return err;
        }
    }
    snprintf(l->path, sizeof(l->path), "%s", to);
    return 0;
}
