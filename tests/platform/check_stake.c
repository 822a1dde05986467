/*
 * check_stake.c — Check tests of the stake ledger (platform/stake.c):
 * registration rules, the weighted consensus and its rounding on
 * hand-computed examples, exact slashing into the treasury, exclusion,
 * the round rules, conservation against an independent model over many
 * seeded rounds, the limits, persistence, the schema, and disk faults
 * injected through libfaults' VFS (a failed close changes nothing; a sync
 * failed before a power cut leaves the round either wholly there or not).
 *
 * Every ledger is opened through the fault VFS of node "ledger", which
 * skips the real fsync (as the simulator does): the crash model alone
 * decides what a power cut keeps, and the tests stay fast on a real disk.
 */
#include <check.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/faults.h"
#include "platform/stake.h"
#include "tests/check_run.h"
#include "tests/platform/testenv.h"

#define NODE              "ledger"
#define PATH_BYTES        400
#define RANDOM_PREDICTORS 8
#define RANDOM_ROUNDS     150
#define RANDOM_SEEDS      3
#define POWER_SEEDS       8
#define REOPEN_ROUNDS     4

typedef __int128 wide;

static struct testenv t;
static char path[PATH_BYTES];
static stake_ledger *L;

/* Tolerance 500 milli-units, 20 % slash, min stake 0.1 unit, 8 predictors. */
static const struct stake_config cfg_default = {
    .tolerance = 500,
    .slash_ppm = 200000,
    .min_stake = 100000,
    .max_predictors = 8,
};

static void setup(void)
{
    testenv_init(&t);
    struct faults_host host = {.skip_real_sync = true};
    ck_assert_int_eq(faults_vfs_register(NODE, &host), 0);
    snprintf(path, sizeof(path), "%s/stake.sqlite", t.dir);
    L = NULL;
}

static void teardown(void)
{
    stake_close(L);
    L = NULL;
    testenv_release(&t);
}

/* ---- helpers ----------------------------------------------------------- */

static stake_ledger *open_at(const char *p, const struct stake_config *cfg)
{
    stake_ledger *l = NULL;
    char msg[STAKE_ERRMSG_MAX];
    int rc = stake_open(p, faults_vfs_name(NODE), cfg, &l, msg);
    ck_assert_msg(rc == 0, "stake_open %s: %d %s", p, rc, msg);
    ck_assert_ptr_nonnull(l);
    return l;
}

static int open_rc(const char *p, const struct stake_config *cfg)
{
    stake_ledger *l = NULL;
    char msg[STAKE_ERRMSG_MAX];
    int rc = stake_open(p, faults_vfs_name(NODE), cfg, &l, msg);
    if (rc == 0)
        stake_close(l);
    else
        ck_assert_msg(l == NULL && msg[0] != '\0', "a failed open leaves no ledger, a message");
    return rc;
}

static int64_t reg(stake_ledger *l, const char *name, int64_t deposit)
{
    int64_t id = 0;
    int rc = stake_register(l, name, deposit, &id);
    ck_assert_msg(rc == 0, "register %s: %d %s", name, rc, stake_errmsg(l));
    ck_assert_int_gt(id, 0);
    ck_assert_str_eq(stake_errmsg(l), "");
    return id;
}

static void submit(stake_ledger *l, int64_t round, int64_t id, int64_t prediction)
{
    int rc = stake_submit(l, round, id, prediction);
    ck_assert_msg(rc == 0, "submit %lld in round %lld: %d %s", (long long)id, (long long)round, rc,
                  stake_errmsg(l));
}

static void close_round(stake_ledger *l, int64_t round, struct stake_round_result *res)
{
    int rc = stake_close_round(l, round, res);
    ck_assert_msg(rc == 0, "close round %lld: %d %s", (long long)round, rc, stake_errmsg(l));
    ck_assert_int_eq(res->round, round);
}

/* Audits and checks the stake-conserved invariant. */
static void audit(stake_ledger *l, struct stake_audit *a)
{
    int rc = stake_audit(l, a);
    ck_assert_msg(rc == 0, "audit: %d %s", rc, stake_errmsg(l));
    ck_assert_msg(stake_audit_is_ok(a),
                  "not conserved: deposits %lld balances %lld treasury %lld min %lld weights %lld",
                  (long long)a->deposits, (long long)a->balances, (long long)a->treasury,
                  (long long)a->min_balance, (long long)a->weight_sum_ppm);
}

static int64_t round_now(stake_ledger *l)
{
    int64_t r = 0;
    ck_assert_int_eq(stake_current_round(l, &r), 0);
    return r;
}

static struct stake_predictor predictor(stake_ledger *l, int64_t id)
{
    struct stake_predictor p;
    int rc = stake_predictor_get(l, id, &p);
    ck_assert_msg(rc == 0, "predictor %lld: %d %s", (long long)id, rc, stake_errmsg(l));
    return p;
}

static const struct stake_round_entry *entry_of(const struct stake_round_result *r, int64_t id)
{
    for (size_t i = 0; i < r->entry_count; i++)
        if (r->entries[i].predictor_id == id)
            return &r->entries[i];
    ck_abort_msg("predictor %lld is not in round %lld", (long long)id, (long long)r->round);
    return NULL;
}

/* PRAGMA integrity_check on a closed ledger file, through the default VFS. */
static void assert_integrity(const char *p)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void raw_exec(const char *p, const char *sql)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(p, &db), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* Three honest predictors and a liar with their round-1 submissions. */
static void liar_round(stake_ledger *l)
{
    int64_t ids[4] = {reg(l, "h1", 3000000), reg(l, "h2", 3000000), reg(l, "h3", 3000000),
                      reg(l, "liar", 1000003)};
    for (int i = 0; i < 3; i++)
        submit(l, 1, ids[i], 1000);
    submit(l, 1, ids[3], 6000);
}

/* ---- registration ------------------------------------------------------- */

START_TEST(register_assigns_ids_and_keeps_the_deposit)
{
    L = open_at(path, &cfg_default);
    ck_assert_int_eq(reg(L, "ada", 1000000), 1);
    ck_assert_int_eq(reg(L, "bob", 250000), 2);
    struct stake_predictor p = predictor(L, 2);
    ck_assert_str_eq(p.name, "bob");
    ck_assert_int_eq(p.deposit, 250000);
    ck_assert_int_eq(p.balance, 250000);
    ck_assert_int_eq(p.registered_round, 1);
    ck_assert(!p.excluded);
    ck_assert_int_eq(p.excluded_round, 0);

    struct stake_predictor all[4];
    ck_assert_int_eq(stake_list(L, all, 4), 2);
    ck_assert_str_eq(all[0].name, "ada");
    ck_assert_int_eq(all[1].id, 2);
    ck_assert_int_eq(stake_list(L, all, 1), 2); /* counts beyond max */
    ck_assert_int_eq(stake_list(L, NULL, 0), 2);
    ck_assert_int_eq(stake_predictor_get(L, 3, &p), -ENOENT);
    ck_assert_int_eq(p.id, 0); /* zeroed on failure */
    ck_assert_str_ne(stake_errmsg(L), "");
}
END_TEST

START_TEST(register_refuses_bad_names_deposits_and_duplicates)
{
    L = open_at(path, &cfg_default);
    reg(L, "ada", 1000000);
    struct stake_audit before, after;
    audit(L, &before);

    char long_name[STAKE_NAME_MAX + 2];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    ck_assert_int_eq(stake_register(L, "", 1000000, NULL), -EINVAL);
    ck_assert_int_eq(stake_register(L, NULL, 1000000, NULL), -EINVAL);
    ck_assert_int_eq(stake_register(L, long_name, 1000000, NULL), -EINVAL);
    long_name[STAKE_NAME_MAX] = '\0'; /* exactly the limit is fine */
    reg(L, long_name, 1000000);
    ck_assert_int_eq(stake_register(L, "zero", 0, NULL), -EINVAL);
    ck_assert_int_eq(stake_register(L, "neg", -5, NULL), -EINVAL);
    ck_assert_int_eq(stake_register(L, "poor", cfg_default.min_stake - 1, NULL), -EINVAL);
    ck_assert_int_eq(stake_register(L, "rich", STAKE_DEPOSIT_MAX + 1, NULL), -ERANGE);
    int64_t id = -1;
    ck_assert_int_eq(stake_register(L, "ada", 5000000, &id), -EEXIST);
    ck_assert_int_eq(id, -1);
    ck_assert_ptr_nonnull(strstr(stake_errmsg(L), "ada"));

    ck_assert_int_eq(stake_list(L, NULL, 0), 2);
    audit(L, &after);
    ck_assert_int_eq(after.deposits, before.deposits + 1000000);
    ck_assert_int_eq(stake_register(L, "min", cfg_default.min_stake, NULL), 0);
}
END_TEST

START_TEST(register_past_max_predictors_is_e2big)
{
    L = open_at(path, &cfg_default);
    char name[16];
    for (int i = 0; i < cfg_default.max_predictors; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        reg(L, name, 1000000);
    }
    ck_assert_int_eq(stake_register(L, "one-too-many", 1000000, NULL), -E2BIG);
    ck_assert_int_eq(stake_list(L, NULL, 0), cfg_default.max_predictors);
}
END_TEST

START_TEST(config_is_validated_and_fixed_at_creation)
{
    struct stake_config bad[] = {
        {.tolerance = -1, .slash_ppm = 1, .min_stake = 1, .max_predictors = 1},
        {.tolerance = 0, .slash_ppm = STAKE_PPM + 1, .min_stake = 1, .max_predictors = 1},
        {.tolerance = 0, .slash_ppm = -1, .min_stake = 1, .max_predictors = 1},
        {.tolerance = 0, .slash_ppm = 0, .min_stake = 0, .max_predictors = 1},
        {.tolerance = 0, .slash_ppm = 0, .min_stake = 1, .max_predictors = 0},
        {.tolerance = 0,
         .slash_ppm = 0,
         .min_stake = 1,
         .max_predictors = STAKE_PREDICTORS_MAX + 1},
        {.tolerance = 2 * STAKE_PREDICTION_MAX + 1,
         .slash_ppm = 0,
         .min_stake = 1,
         .max_predictors = 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(open_rc(path, &bad[i]), -EINVAL);
    ck_assert_int_eq(open_rc(path, NULL), -EINVAL); /* a new ledger needs a config */
    ck_assert_int_eq(stake_open(NULL, NULL, &cfg_default, &L, NULL), -EINVAL);
    ck_assert_ptr_null(L);
    ck_assert_int_eq(stake_open(path, "no-such-vfs", &cfg_default, &L, NULL), -EINVAL);
    ck_assert_ptr_null(L);

    ck_assert_int_eq(open_rc(path, &cfg_default), 0);
    struct stake_config other = cfg_default;
    other.slash_ppm = 100000;
    ck_assert_int_eq(open_rc(path, &other), -EINVAL);
    L = open_at(path, NULL);
    struct stake_config got;
    stake_get_config(L, &got);
    ck_assert_mem_eq(&got, &cfg_default, sizeof(got));
}
END_TEST

/* ---- consensus ------------------------------------------------------------- */

START_TEST(consensus_is_the_stake_weighted_mean)
{
    L = open_at(path, &cfg_default);
    int64_t a = reg(L, "a", 3000000), b = reg(L, "b", 1000000);
    submit(L, 1, a, 1000);
    submit(L, 1, b, 2000);
    struct stake_round_result r;
    close_round(L, 1, &r);
    /* (3e6 * 1000 + 1e6 * 2000) / 4e6 = 1250 exactly. */
    ck_assert(r.has_consensus);
    ck_assert_int_eq(r.consensus, 1250);
    ck_assert_int_eq(r.total_stake, 4000000);
    ck_assert_int_eq(r.entry_count, 2);
    ck_assert_int_eq(entry_of(&r, a)->weight_ppm, 750000);
    ck_assert_int_eq(entry_of(&r, b)->weight_ppm, 250000);
    ck_assert_int_eq(entry_of(&r, a)->error, -250);
    ck_assert_int_eq(entry_of(&r, b)->error, 750);
    ck_assert_int_eq(entry_of(&r, a)->slashed, 0);
    ck_assert_int_eq(entry_of(&r, b)->slashed, 200000); /* 750 > 500: 20 % of 1e6 */
    ck_assert_int_eq(entry_of(&r, b)->stake, 1000000);
    ck_assert_int_eq(entry_of(&r, b)->balance, 800000);
    ck_assert(entry_of(&r, a)->eligible && entry_of(&r, b)->eligible);
    ck_assert_int_eq(r.slashed_total, 200000);
    ck_assert_int_eq(r.treasury, 200000);
    ck_assert_int_eq(round_now(L), 2);
}
END_TEST

struct rounding_case {
    int n;
    int64_t stakes[3];
    int64_t predictions[3];
    int64_t consensus;
    int64_t weights[3];
};

/* Nearest, halves away from zero; weights floored. Computed by hand. */
static const struct rounding_case rounding_cases[] = {
    {2, {1, 2}, {0, 1}, 1, {333333, 666666}},                   /* 2/3 -> 1 */
    {2, {1, 1}, {0, 1}, 1, {500000, 500000}},                   /* 1/2 -> 1 */
    {2, {1, 1}, {-1, 0}, -1, {500000, 500000}},                 /* -1/2 -> -1 */
    {2, {1, 2}, {-3, 0}, -1, {333333, 666666}},                 /* -3/3 = -1 */
    {3, {1, 1, 1}, {0, 0, 1}, 0, {333333, 333333, 333333}},     /* 1/3 -> 0 */
    {3, {1, 1, 1}, {0, 0, -1}, 0, {333333, 333333, 333333}},    /* -1/3 -> 0 */
    {3, {2, 3, 5}, {10, -20, 7}, -1, {200000, 300000, 500000}}, /* (20-60+35)/10 -> -1 */
    {1, {7}, {-123456789}, -123456789, {1000000}},
};

START_TEST(consensus_rounds_to_nearest_halves_away_from_zero)
{
    const struct rounding_case *c = &rounding_cases[_i];
    /* Nobody is slashed: the case is only about the mean and the weights. */
    struct stake_config cfg = {.tolerance = 2 * STAKE_PREDICTION_MAX,
                               .slash_ppm = STAKE_PPM,
                               .min_stake = 1,
                               .max_predictors = 3};
    L = open_at(path, &cfg);
    int64_t ids[3];
    char name[16];
    for (int i = 0; i < c->n; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        ids[i] = reg(L, name, c->stakes[i]);
        submit(L, 1, ids[i], c->predictions[i]);
    }
    struct stake_round_result r;
    close_round(L, 1, &r);
    ck_assert_int_eq(r.consensus, c->consensus);
    int64_t sum = 0;
    for (int i = 0; i < c->n; i++) {
        ck_assert_int_eq(entry_of(&r, ids[i])->weight_ppm, c->weights[i]);
        ck_assert_int_eq(entry_of(&r, ids[i])->error, c->predictions[i] - c->consensus);
        sum += c->weights[i];
    }
    ck_assert_int_le(sum, STAKE_PPM);
    ck_assert_int_gt(sum, STAKE_PPM - c->n);
    /* Negating every prediction negates the consensus. */
    for (int i = 0; i < c->n; i++)
        submit(L, 2, ids[i], -c->predictions[i]);
    close_round(L, 2, &r);
    ck_assert_int_eq(r.consensus, -c->consensus);
}
END_TEST

/* ---- slashing and exclusion --------------------------------------------------- */

START_TEST(liar_is_slashed_by_exactly_the_fraction_into_the_treasury)
{
    L = open_at(path, &cfg_default);
    int64_t honest[3];
    honest[0] = reg(L, "h1", 3000000);
    honest[1] = reg(L, "h2", 3000000);
    honest[2] = reg(L, "h3", 3000000);
    int64_t liar = reg(L, "liar", 1000003);
    int64_t absent = reg(L, "absent", 2000000);
    struct stake_audit before, after;
    audit(L, &before);
    for (int i = 0; i < 3; i++)
        submit(L, 1, honest[i], 1000);
    submit(L, 1, liar, 6000);

    struct stake_round_result r;
    close_round(L, 1, &r);
    /* 1000 + 5000 * 1000003 / 10000003 = 1500.0013 -> 1500. */
    ck_assert_int_eq(r.consensus, 1500);
    ck_assert_int_eq(r.total_stake, 10000003);
    for (int i = 0; i < 3; i++) {
        const struct stake_round_entry *e = entry_of(&r, honest[i]);
        ck_assert_int_eq(e->error, -500); /* exactly the tolerance: not slashed */
        ck_assert_int_eq(e->slashed, 0);
        ck_assert_int_eq(e->weight_ppm, 299999);
    }
    const struct stake_round_entry *e = entry_of(&r, liar);
    ck_assert_int_eq(e->error, 4500);
    ck_assert_int_eq(e->weight_ppm, 100000);
    ck_assert_int_eq(e->slashed, 200000); /* floor(1000003 * 0.2) = floor(200000.6) */
    ck_assert_int_eq(e->balance, 800003);
    ck_assert(!e->excluded);
    ck_assert_int_eq(r.entry_count, 4); /* the absent predictor has no entry */
    ck_assert_int_eq(r.excluded_count, 0);

    audit(L, &after);
    ck_assert_int_eq(after.treasury - before.treasury, 200000);
    ck_assert_int_eq(before.balances - after.balances, 200000);
    ck_assert_int_eq(after.deposits, before.deposits);
    ck_assert_int_eq(predictor(L, liar).balance, 800003);
    ck_assert_int_eq(predictor(L, absent).balance, 2000000); /* missing a round costs nothing */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(predictor(L, honest[i]).balance, 3000000);
    ck_assert_int_eq(after.round_weight_sum_max_ppm, 3 * 299999 + 100000);
}
END_TEST

START_TEST(tolerance_is_strict_and_slashes_floor_at_the_extremes)
{
    struct stake_config cfg = {
        .tolerance = 500, .slash_ppm = 999999, .min_stake = 1, .max_predictors = 4};
    L = open_at(path, &cfg);
    int64_t anchor = reg(L, "anchor", STAKE_DEPOSIT_MAX);
    int64_t over = reg(L, "over", 1000000), at = reg(L, "at", 1000000);
    submit(L, 1, anchor, 0);
    submit(L, 1, over, 501);
    submit(L, 1, at, 500);
    struct stake_round_result r;
    close_round(L, 1, &r);
    ck_assert_int_eq(r.consensus, 0);                      /* 1001e6 / (1e15 + 2e6) rounds to 0 */
    ck_assert_int_eq(entry_of(&r, over)->slashed, 999999); /* floor(1e6 * 0.999999) */
    ck_assert_int_eq(entry_of(&r, at)->slashed, 0);
    ck_assert_int_eq(entry_of(&r, anchor)->slashed, 0);

    /* Tolerance 500 still; now everyone is off by more. */
    submit(L, 2, anchor, 1000);
    submit(L, 2, at, 1000 + 501);
    close_round(L, 2, &r);
    ck_assert_int_eq(r.consensus, 1000);
    ck_assert_int_eq(entry_of(&r, at)->slashed, 999999);
    submit(L, 3, anchor, -1000000);
    submit(L, 3, over, 1999999); /* balance 1 now: the slash floors to 0 */
    close_round(L, 3, &r);
    ck_assert_int_eq(entry_of(&r, over)->slashed, 0);
    ck_assert_int_eq(entry_of(&r, anchor)->slashed, 0);
    submit(L, 4, anchor, 0);
    submit(L, 4, at, 2000000);
    close_round(L, 4, &r);
    /* The anchor's own error is 0; at holds 1 micro-unit, slashed 0. */
    ck_assert_int_eq(entry_of(&r, at)->slashed, 0);
    submit(L, 5, anchor, STAKE_PREDICTION_MAX);
    submit(L, 5, over, -STAKE_PREDICTION_MAX);
    close_round(L, 5, &r);
    /* (1e15 * 1e15 - 1 * 1e15) / (1e15 + 1) = 1e15 - 1.99... -> 1e15 - 2. */
    ck_assert_int_eq(r.consensus, STAKE_PREDICTION_MAX - 2);
    ck_assert_int_eq(entry_of(&r, anchor)->error, 2);
    ck_assert_int_eq(entry_of(&r, anchor)->slashed, 0);
    struct stake_audit a;
    audit(L, &a);
    ck_assert_int_eq(a.treasury, 2 * 999999);
}
END_TEST

START_TEST(below_min_stake_is_excluded_and_cannot_submit)
{
    struct stake_config cfg = cfg_default;
    cfg.min_stake = 900000;
    L = open_at(path, &cfg);
    int64_t a = reg(L, "a", 30000000), b = reg(L, "b", 30000000), liar = reg(L, "liar", 1000000);
    submit(L, 1, a, 100);
    submit(L, 1, b, 100);
    submit(L, 1, liar, 5100); /* consensus 100 + 5000/61 = 182: only the liar is off */
    struct stake_round_result r;
    close_round(L, 1, &r);
    const struct stake_round_entry *e = entry_of(&r, liar);
    ck_assert_int_eq(e->slashed, 200000);
    ck_assert_int_eq(e->balance, 800000);
    ck_assert(e->excluded);
    ck_assert_int_eq(r.excluded_count, 1);
    ck_assert(!entry_of(&r, a)->excluded);
    struct stake_predictor p = predictor(L, liar);
    ck_assert(p.excluded);
    ck_assert_int_eq(p.excluded_round, 1);

    ck_assert_int_eq(stake_submit(L, 2, liar, 100), -EPERM);
    ck_assert_ptr_nonnull(strstr(stake_errmsg(L), "excluded"));
    struct stake_audit au;
    audit(L, &au);
    ck_assert_int_eq(au.eligible, 2);
    ck_assert_int_eq(au.eligible_stake, 60000000);
    ck_assert_int_eq(au.weights[2].predictor_id, liar);
    ck_assert_int_eq(au.weights[2].weight_ppm, 0);
    ck_assert_int_eq(au.weights[0].weight_ppm, 500000);
    ck_assert_int_eq(au.balances + au.treasury, au.deposits);

    submit(L, 2, a, 200);
    submit(L, 2, b, 300);
    close_round(L, 2, &r);
    ck_assert_int_eq(r.consensus, 250);
    ck_assert_int_eq(r.entry_count, 2);
    ck_assert_int_eq(r.excluded_count, 0); /* excluded once, in round 1 */
    ck_assert_int_eq(predictor(L, liar).balance, 800000);
    ck_assert_int_eq(predictor(L, liar).excluded_round, 1);
}
END_TEST

/* ---- round rules ---------------------------------------------------------------- */

START_TEST(submissions_follow_the_round_rules)
{
    L = open_at(path, &cfg_default);
    int64_t a = reg(L, "a", 1000000);
    submit(L, 1, a, 10);
    struct stake_audit before, after;
    audit(L, &before);
    ck_assert_int_eq(stake_submit(L, 1, a, 20), -EEXIST);
    ck_assert_int_eq(stake_submit(L, 2, a, 20), -ENOENT); /* not open yet */
    ck_assert_int_eq(stake_submit(L, 0, a, 20), -EINVAL);
    ck_assert_int_eq(stake_submit(L, 1, 99, 20), -ENOENT);
    ck_assert_int_eq(stake_submit(L, 1, a, STAKE_PREDICTION_MAX + 1), -ERANGE);
    ck_assert_int_eq(stake_submit(L, 1, a, -STAKE_PREDICTION_MAX - 1), -ERANGE);
    ck_assert_int_eq(stake_close_round(L, 2, NULL), -ENOENT);
    ck_assert_int_eq(stake_close_round(L, 0, NULL), -EINVAL);
    struct stake_round_result r;
    ck_assert_int_eq(stake_round_get(L, 1, &r), -ENOENT); /* open, not closed */
    audit(L, &after);
    ck_assert_mem_eq(&before, &after, sizeof(before));

    close_round(L, 1, &r);
    ck_assert_int_eq(entry_of(&r, a)->prediction, 10); /* the first submission stands */
    ck_assert_int_eq(stake_submit(L, 1, a, 30), -EPERM);
    ck_assert_ptr_nonnull(strstr(stake_errmsg(L), "closed"));
    ck_assert_int_eq(stake_close_round(L, 1, &r), -EPERM);
    ck_assert_int_eq(r.round, 0); /* zeroed on failure */
    submit(L, 2, a, 30);
    ck_assert_int_eq(stake_close_round(L, 2, NULL), 0);
    ck_assert_int_eq(stake_round_get(L, 2, &r), 0);
    ck_assert_int_eq(r.consensus, 30);
    ck_assert_int_eq(round_now(L), 3);
}
END_TEST

START_TEST(round_without_submissions_has_no_consensus_and_slashes_nobody)
{
    L = open_at(path, &cfg_default);
    int64_t a = reg(L, "a", 1000000);
    struct stake_round_result r;
    close_round(L, 1, &r);
    ck_assert(!r.has_consensus);
    ck_assert_int_eq(r.consensus, 0);
    ck_assert_int_eq(r.entry_count, 0);
    ck_assert_int_eq(r.slashed_total, 0);
    ck_assert_int_eq(r.total_stake, 0);
    ck_assert_int_eq(predictor(L, a).balance, 1000000);
    ck_assert_int_eq(round_now(L), 2);
    struct stake_audit au;
    audit(L, &au);
    ck_assert_int_eq(au.rounds_closed, 1);
    ck_assert_int_eq(au.treasury, 0);
}
END_TEST

/* ---- conservation against a model ----------------------------------------------- */

/* The rules of stake.h written independently: truncate, then fix the half. */
static int64_t model_nearest(wide n, wide d)
{
    wide q = n / d, r = n % d;
    if (2 * (r < 0 ? -r : r) >= d)
        q += n < 0 ? -1 : 1;
    return (int64_t)q;
}

struct model {
    struct stake_config cfg;
    int64_t ids[RANDOM_PREDICTORS];
    int64_t balance[RANDOM_PREDICTORS];
    bool excluded[RANDOM_PREDICTORS];
    int64_t deposits;
    int64_t treasury;
};

struct model_round {
    bool submitted[RANDOM_PREDICTORS];
    int64_t prediction[RANDOM_PREDICTORS];
};

static int64_t rng_between(struct faults_rng *rng, int64_t lo, int64_t hi)
{
    return lo + (int64_t)faults_rng_below(rng, (uint64_t)(hi - lo + 1));
}

/* Submits for every eligible predictor with p = 0.7; a few lie wildly. */
static void model_submit(struct model *m, struct faults_rng *rng, int64_t round,
                         struct model_round *mr)
{
    memset(mr, 0, sizeof(*mr));
    int64_t truth = rng_between(rng, -1000000000, 1000000000);
    for (int i = 0; i < RANDOM_PREDICTORS; i++) {
        bool liar = faults_rng_below(rng, 100) < 15;
        int64_t noise = liar ? rng_between(rng, -50000, 50000) : rng_between(rng, -400, 400);
        if (faults_rng_below(rng, 10) >= 7)
            continue;
        if (m->excluded[i]) {
            ck_assert_int_eq(stake_submit(L, round, m->ids[i], truth), -EPERM);
            continue;
        }
        mr->submitted[i] = true;
        mr->prediction[i] = truth + noise;
        submit(L, round, m->ids[i], mr->prediction[i]);
    }
}

/* Checks one closed round against the model and moves the model on. */
static void model_close(struct model *m, const struct model_round *mr,
                        const struct stake_round_result *r)
{
    wide total = 0, weighted = 0;
    size_t n = 0;
    for (int i = 0; i < RANDOM_PREDICTORS; i++) {
        if (!mr->submitted[i])
            continue;
        total += m->balance[i];
        weighted += (wide)m->balance[i] * mr->prediction[i];
        n++;
    }
    ck_assert_int_eq(r->entry_count, n);
    ck_assert_int_eq(r->has_consensus, total > 0);
    ck_assert_int_eq(r->total_stake, (int64_t)total);
    int64_t consensus = total > 0 ? model_nearest(weighted, total) : 0;
    ck_assert_int_eq(r->consensus, consensus);
    int64_t slashed_total = 0, weight_sum = 0;
    size_t excluded = 0;
    for (int i = 0; i < RANDOM_PREDICTORS; i++) {
        if (!mr->submitted[i])
            continue;
        const struct stake_round_entry *e = entry_of(r, m->ids[i]);
        int64_t error = mr->prediction[i] - consensus;
        int64_t slash = (error > m->cfg.tolerance || error < -m->cfg.tolerance)
                            ? (int64_t)((wide)m->balance[i] * m->cfg.slash_ppm / STAKE_PPM)
                            : 0;
        ck_assert_int_eq(e->stake, m->balance[i]);
        ck_assert_int_eq(e->weight_ppm, (int64_t)((wide)m->balance[i] * STAKE_PPM / total));
        ck_assert_int_eq(e->error, error);
        ck_assert_int_eq(e->slashed, slash);
        m->balance[i] -= slash;
        m->treasury += slash;
        slashed_total += slash;
        weight_sum += e->weight_ppm;
        ck_assert_int_eq(e->balance, m->balance[i]);
        bool now_excluded = m->balance[i] < m->cfg.min_stake;
        ck_assert_int_eq(e->excluded, now_excluded);
        m->excluded[i] = now_excluded;
        excluded += now_excluded;
    }
    ck_assert_int_le(weight_sum, STAKE_PPM);
    ck_assert(n == 0 || weight_sum > STAKE_PPM - (int64_t)n);
    ck_assert_int_eq(r->slashed_total, slashed_total);
    ck_assert_int_eq(r->treasury, m->treasury);
    ck_assert_int_eq(r->excluded_count, excluded);
}

static void model_audit(const struct model *m)
{
    struct stake_audit a;
    audit(L, &a);
    int64_t balances = 0, eligible = 0;
    for (int i = 0; i < RANDOM_PREDICTORS; i++) {
        balances += m->balance[i];
        eligible += !m->excluded[i];
        struct stake_predictor p = predictor(L, m->ids[i]);
        ck_assert_int_eq(p.balance, m->balance[i]);
        ck_assert_int_eq(p.excluded, m->excluded[i]);
    }
    ck_assert_int_eq(a.deposits, m->deposits);
    ck_assert_int_eq(a.balances, balances);
    ck_assert_int_eq(a.treasury, m->treasury);
    ck_assert_int_eq(a.eligible, eligible);
    ck_assert(eligible == 0 || a.weight_sum_ppm > STAKE_PPM - eligible);
}

START_TEST(random_rounds_conserve_every_micro_unit)
{
    struct model m = {.cfg = {.tolerance = 500,
                              .slash_ppm = 150000,
                              .min_stake = 600000,
                              .max_predictors = RANDOM_PREDICTORS}};
    L = open_at(path, &m.cfg);
    struct faults_rng rng;
    faults_rng_seed(&rng, (uint64_t)_i + 1, "stake");
    char name[16];
    for (int i = 0; i < RANDOM_PREDICTORS; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        m.balance[i] = rng_between(&rng, m.cfg.min_stake, 5000000);
        m.ids[i] = reg(L, name, m.balance[i]);
        m.deposits += m.balance[i];
    }
    int exclusions_seen = 0, empty_rounds = 0;
    for (int64_t round = 1; round <= RANDOM_ROUNDS; round++) {
        struct model_round mr;
        model_submit(&m, &rng, round, &mr);
        struct stake_round_result r;
        close_round(L, round, &r);
        model_close(&m, &mr, &r);
        model_audit(&m);
        exclusions_seen += (int)r.excluded_count;
        empty_rounds += !r.has_consensus;
    }
    /* The run exercised what it is meant to. */
    ck_assert_int_gt(m.treasury, 0);
    ck_assert_int_gt(exclusions_seen, 0);
    ck_assert_int_lt(empty_rounds, RANDOM_ROUNDS);
}
END_TEST

/* ---- limits ------------------------------------------------------------------------ */

START_TEST(limits_keep_the_arithmetic_exact)
{
    struct stake_config cfg = {.tolerance = 2 * STAKE_PREDICTION_MAX,
                               .slash_ppm = STAKE_PPM,
                               .min_stake = 1,
                               .max_predictors = STAKE_PREDICTORS_MAX};
    L = open_at(path, &cfg);
    char name[16];
    for (int i = 0; i < STAKE_PREDICTORS_MAX; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        ck_assert_int_eq(reg(L, name, STAKE_DEPOSIT_MAX), i + 1);
    }
    ck_assert_int_eq(stake_register(L, "extra", 1, NULL), -E2BIG);
    /* Half at +max, half at -max: 0. */
    for (int i = 1; i <= STAKE_PREDICTORS_MAX; i++)
        submit(L, 1, i, i % 2 ? STAKE_PREDICTION_MAX : -STAKE_PREDICTION_MAX);
    struct stake_round_result *r = malloc(sizeof(*r));
    ck_assert_ptr_nonnull(r);
    close_round(L, 1, r);
    ck_assert_int_eq(r->consensus, 0);
    ck_assert_int_eq(r->entry_count, STAKE_PREDICTORS_MAX);
    ck_assert_int_eq(r->total_stake, STAKE_PREDICTORS_MAX * STAKE_DEPOSIT_MAX);
    for (size_t i = 0; i < r->entry_count; i++)
        ck_assert_int_eq(r->entries[i].weight_ppm, STAKE_PPM / STAKE_PREDICTORS_MAX);
    /* 255 at -max, one at +max: -254/256 of max, exactly. */
    for (int i = 1; i <= STAKE_PREDICTORS_MAX; i++)
        submit(L, 2, i, i == 1 ? STAKE_PREDICTION_MAX : -STAKE_PREDICTION_MAX);
    close_round(L, 2, r);
    ck_assert_int_eq(r->consensus, -992187500000000LL);
    for (int i = 1; i <= STAKE_PREDICTORS_MAX; i++)
        submit(L, 3, i, STAKE_PREDICTION_MAX);
    close_round(L, 3, r);
    ck_assert_int_eq(r->consensus, STAKE_PREDICTION_MAX);
    ck_assert_int_eq(r->slashed_total, 0);
    free(r);
    struct stake_audit a;
    audit(L, &a);
    ck_assert_int_eq(a.deposits, STAKE_PREDICTORS_MAX * STAKE_DEPOSIT_MAX);
    ck_assert_int_eq(a.weight_count, STAKE_PREDICTORS_MAX);
}
END_TEST

START_TEST(audit_check_rejects_every_broken_invariant)
{
    L = open_at(path, &cfg_default);
    liar_round(L);
    close_round(L, 1, &(struct stake_round_result){0});
    struct stake_audit good, bad;
    audit(L, &good);
    ck_assert_int_eq(good.deposits, 10000003);
    ck_assert_int_eq(good.treasury, 200000);
    ck_assert_int_eq(good.min_balance, 800003);
    ck_assert_int_eq(good.predictors, 4);
    ck_assert_int_eq(good.rounds_closed, 1);
    ck_assert_int_eq(good.round_weight_min_ppm, 100000);
    ck_assert_int_eq(good.round_weight_max_ppm, 299999);

    bad = good;
    bad.treasury++; /* a micro-unit from nowhere */
    ck_assert(!stake_audit_is_ok(&bad));
    bad = good;
    bad.min_balance = -1;
    ck_assert(!stake_audit_is_ok(&bad));
    bad = good;
    bad.weights[0].weight_ppm = STAKE_PPM + 1;
    ck_assert(!stake_audit_is_ok(&bad));
    bad = good;
    bad.weights[1].weight_ppm = -1;
    ck_assert(!stake_audit_is_ok(&bad));
    bad = good;
    bad.weight_sum_ppm = STAKE_PPM + 1;
    ck_assert(!stake_audit_is_ok(&bad));
    bad = good;
    bad.round_weight_sum_max_ppm = STAKE_PPM + 1;
    ck_assert(!stake_audit_is_ok(&bad));
    bad = good;
    bad.balances = INT64_MAX; /* the sum must not overflow into a pass */
    bad.treasury = INT64_MAX;
    ck_assert(!stake_audit_is_ok(&bad));
}
END_TEST

/* ---- persistence and schema -------------------------------------------------------- */

START_TEST(reopened_ledger_keeps_everything)
{
    struct stake_config cfg = cfg_default;
    cfg.min_stake = 900000;
    L = open_at(path, &cfg);
    int64_t a = reg(L, "a", 3000000), b = reg(L, "b", 2000000), liar = reg(L, "liar", 1000000);
    for (int64_t round = 1; round <= REOPEN_ROUNDS; round++) {
        submit(L, round, a, 1000 * round);
        submit(L, round, b, 1000 * round + 100);
        if (round == 1)
            submit(L, round, liar, 99999);
        ck_assert_int_eq(stake_close_round(L, round, NULL), 0);
    }
    submit(L, REOPEN_ROUNDS + 1, a, 7); /* the open round's submissions persist too */
    struct stake_audit before, after;
    audit(L, &before);
    struct stake_predictor list_before[4], list_after[4];
    ck_assert_int_eq(stake_list(L, list_before, 4), 3);
    struct stake_round_result *r = malloc(2 * sizeof(*r));
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(stake_round_get(L, 1, &r[0]), 0);
    stake_close(L);
    assert_integrity(path);

    L = open_at(path, NULL);
    audit(L, &after);
    ck_assert_mem_eq(&before, &after, sizeof(before));
    ck_assert_int_eq(stake_list(L, list_after, 4), 3);
    ck_assert_mem_eq(list_before, list_after, 3 * sizeof(list_before[0]));
    ck_assert_int_eq(stake_round_get(L, 1, &r[1]), 0);
    ck_assert_mem_eq(&r[0], &r[1], sizeof(r[0]));
    ck_assert(entry_of(&r[1], liar)->excluded);
    ck_assert_int_eq(round_now(L), REOPEN_ROUNDS + 1);
    ck_assert_int_eq(stake_submit(L, REOPEN_ROUNDS + 1, a, 8), -EEXIST);
    ck_assert_int_eq(stake_submit(L, REOPEN_ROUNDS + 1, liar, 8), -EPERM);
    submit(L, REOPEN_ROUNDS + 1, b, 9);
    ck_assert_int_eq(stake_close_round(L, REOPEN_ROUNDS + 1, &r[0]), 0);
    ck_assert_int_eq(r[0].consensus, 8); /* stakes still 3:2 after round 1: 7.8 -> 8 */
    free(r);
}
END_TEST

START_TEST(schema_is_versioned_and_foreign_files_refused)
{
    L = open_at(path, &cfg_default);
    stake_close(L);
    L = NULL;
    raw_exec(path, "PRAGMA user_version = 2");
    ck_assert_int_eq(open_rc(path, &cfg_default), -EPROTO);
    raw_exec(path, "PRAGMA user_version = 1");
    ck_assert_int_eq(open_rc(path, &cfg_default), 0);

    char other[PATH_BYTES];
    snprintf(other, sizeof(other), "%s/other.sqlite", t.dir);
    raw_exec(other, "CREATE TABLE users (id INTEGER PRIMARY KEY); PRAGMA user_version = 1");
    ck_assert_int_eq(open_rc(other, &cfg_default), -EINVAL); /* a shop, say */
    snprintf(other, sizeof(other), "%s/other2.sqlite", t.dir);
    raw_exec(other, "CREATE TABLE t (x)");
    ck_assert_int_eq(open_rc(other, &cfg_default), -EINVAL);
}
END_TEST

/* ---- disk faults ---------------------------------------------------------------------- */

START_TEST(disk_write_fault_on_close_changes_nothing)
{
    L = open_at(path, &cfg_default);
    liar_round(L);
    struct stake_audit before, after;
    audit(L, &before);
    struct stake_predictor list_before[4], list_after[4];
    ck_assert_int_eq(stake_list(L, list_before, 4), 4);

    testenv_arm("disk/" NODE "/write", 0, 0);
    struct stake_round_result r;
    ck_assert_int_eq(stake_close_round(L, 1, &r), -EIO);
    ck_assert_str_ne(stake_errmsg(L), "");
    ck_assert_int_eq(r.entry_count, 0);
    ck_assert_int_eq(stake_register(L, "late", 1000000, NULL), -EIO);
    audit(L, &after);
    ck_assert_mem_eq(&before, &after, sizeof(before));
    ck_assert_int_eq(stake_list(L, list_after, 4), 4);
    ck_assert_mem_eq(list_before, list_after, sizeof(list_before));
    ck_assert_int_eq(round_now(L), 1);
    ck_assert_int_eq(stake_round_get(L, 1, &r), -ENOENT);
    ck_assert_int_eq(faults_disarm("disk/" NODE "/write"), 0);

    /* Nothing reached the disk either. */
    stake_close(L);
    L = open_at(path, NULL);
    audit(L, &after);
    ck_assert_mem_eq(&before, &after, sizeof(before));
    /* And the round closes as if nothing had happened. */
    close_round(L, 1, &r);
    ck_assert_int_eq(r.consensus, 1500);
    ck_assert_int_eq(r.slashed_total, 200000);
    audit(L, &after);
    ck_assert_int_eq(after.treasury, 200000);
}
END_TEST

START_TEST(disk_full_on_submit_and_close_changes_nothing)
{
    L = open_at(path, &cfg_default);
    liar_round(L);
    struct stake_audit before, after;
    audit(L, &before);
    testenv_arm("disk/" NODE "/full", 0, 0);
    ck_assert_int_eq(stake_close_round(L, 1, NULL), -ENOSPC);
    audit(L, &after);
    ck_assert_mem_eq(&before, &after, sizeof(before));
    ck_assert_int_eq(round_now(L), 1);
    faults_disarm_all();
    close_round(L, 1, &(struct stake_round_result){0});
}
END_TEST

/*
 * The commit's sync fails (unknown outcome), then the power goes: what the
 * crash model keeps decides whether round 1 closed, but it is all or
 * nothing, and the ledger is conserved either way.
 */
START_TEST(fsync_fault_then_power_cut_is_all_or_nothing)
{
    /* The reference: the same round closed without faults, in another file. */
    char ref_path[PATH_BYTES];
    snprintf(ref_path, sizeof(ref_path), "%s/ref.sqlite", t.dir);
    stake_ledger *ref = open_at(ref_path, &cfg_default);
    liar_round(ref);
    ck_assert_int_eq(stake_close_round(ref, 1, NULL), 0);
    struct stake_audit closed, open, now;
    audit(ref, &closed);
    stake_close(ref);

    L = open_at(path, &cfg_default);
    liar_round(L);
    audit(L, &open);
    testenv_arm("disk/" NODE "/fsync", 0, 0);
    int rc = stake_close_round(L, 1, NULL);
    ck_assert_msg(rc == -EINPROGRESS, "close: %d %s", rc, stake_errmsg(L));
    /* Seed 0 is a process crash, which keeps every unsynced write: the
     * "all" side. A power cut keeps a commit only if every one of its
     * frame writes survives, so the others mostly show "nothing". */
    struct faults_rng rng;
    faults_rng_seed(&rng, (uint64_t)_i + 1, "power");
    enum faults_crash_kind kind = _i == 0 ? FAULTS_CRASH_PROCESS : FAULTS_CRASH_POWER;
    ck_assert_int_eq(faults_vfs_crash(NODE, kind, &rng, NULL), 0);
    stake_abandon(L);
    faults_disarm_all();
    ck_assert_int_eq(faults_vfs_restart(NODE), 0);

    L = open_at(path, NULL);
    audit(L, &now);
    int64_t round = round_now(L);
    if (round == 1)
        ck_assert_mem_eq(&now, &open, sizeof(now));
    else
        ck_assert_mem_eq(&now, &closed, sizeof(now));
    stake_close(L);
    L = NULL;
    assert_integrity(path);
}
END_TEST

START_TEST(power_cut_keeps_every_acknowledged_round)
{
    L = open_at(path, &cfg_default);
    liar_round(L);
    ck_assert_int_eq(stake_close_round(L, 1, NULL), 0);
    ck_assert_int_eq(stake_close_round(L, 2, NULL), 0);
    struct stake_audit before, after;
    audit(L, &before);
    struct faults_rng rng;
    faults_rng_seed(&rng, 7, "power");
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_POWER, &rng, NULL), 0);
    ck_assert_int_eq(stake_submit(L, 3, 1, 5), -EIO); /* the dead node writes nothing */
    stake_abandon(L);
    ck_assert_int_eq(faults_vfs_restart(NODE), 0);
    L = open_at(path, NULL);
    audit(L, &after);
    ck_assert_mem_eq(&before, &after, sizeof(before));
    ck_assert_int_eq(round_now(L), 3);
}
END_TEST

/* ---- the runner -------------------------------------------------------------------------- */

static Suite *stake_suite(void)
{
    Suite *s = suite_create("stake");
    TCase *rules = tcase_create("rules");
    tcase_add_checked_fixture(rules, setup, teardown);
    tcase_add_test(rules, register_assigns_ids_and_keeps_the_deposit);
    tcase_add_test(rules, register_refuses_bad_names_deposits_and_duplicates);
    tcase_add_test(rules, register_past_max_predictors_is_e2big);
    tcase_add_test(rules, config_is_validated_and_fixed_at_creation);
    tcase_add_test(rules, consensus_is_the_stake_weighted_mean);
    tcase_add_loop_test(rules, consensus_rounds_to_nearest_halves_away_from_zero, 0,
                        (int)(sizeof(rounding_cases) / sizeof(rounding_cases[0])));
    tcase_add_test(rules, liar_is_slashed_by_exactly_the_fraction_into_the_treasury);
    tcase_add_test(rules, tolerance_is_strict_and_slashes_floor_at_the_extremes);
    tcase_add_test(rules, below_min_stake_is_excluded_and_cannot_submit);
    tcase_add_test(rules, submissions_follow_the_round_rules);
    tcase_add_test(rules, round_without_submissions_has_no_consensus_and_slashes_nobody);
    tcase_add_test(rules, audit_check_rejects_every_broken_invariant);
    tcase_add_test(rules, reopened_ledger_keeps_everything);
    tcase_add_test(rules, schema_is_versioned_and_foreign_files_refused);
    suite_add_tcase(s, rules);

    TCase *bulk = tcase_create("bulk");
    tcase_add_checked_fixture(bulk, setup, teardown);
    tcase_set_timeout(bulk, 120); /* the sanitizer build is several times slower */
    tcase_add_loop_test(bulk, random_rounds_conserve_every_micro_unit, 0, RANDOM_SEEDS);
    tcase_add_test(bulk, limits_keep_the_arithmetic_exact);
    suite_add_tcase(s, bulk);

    TCase *faults = tcase_create("faults");
    tcase_add_checked_fixture(faults, setup, teardown);
    tcase_add_test(faults, disk_write_fault_on_close_changes_nothing);
    tcase_add_test(faults, disk_full_on_submit_and_close_changes_nothing);
    tcase_add_loop_test(faults, fsync_fault_then_power_cut_is_all_or_nothing, 0, POWER_SEEDS);
    tcase_add_test(faults, power_cut_keeps_every_acknowledged_round);
    suite_add_tcase(s, faults);
    return s;
}

int main(void)
{
    return check_run(stake_suite());
}
