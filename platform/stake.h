/*
 * stake.h — the stake ledger: proof of stake with slashing (DESIGN.md §2,
 * the `stake-conserved` invariant of §4), as its own SQLite database.
 *
 * Predictors register with a deposit, submit one prediction per round, and
 * closing a round computes the stake-weighted consensus, slashes every
 * eligible predictor whose error exceeds the tolerance by a fraction of its
 * stake into the treasury, and excludes whoever falls below the minimum
 * stake. Every amount is an integer number of micro-units and every
 * prediction an integer fixed-point value (milli-units, say), so that
 *
 *     deposits = sum(balances) + treasury
 *
 * holds exactly after every operation. A header of its own (not part of
 * platform.h) because the ledger shares nothing with the shop: it is a
 * separate database with a separate API, linked from libplatform.
 *
 * Like the rest of libplatform it never reads a clock, never calls rand(),
 * never spawns threads, and knows nothing of the simulator; the fault layer
 * reaches it only through the SQLite VFS named at open. A ledger object is
 * not thread-safe.
 *
 * Rounds are numbered from 1. Exactly one round is open at a time: the
 * current round, which is one past the last closed round. Submissions go to
 * the current round; closing it opens the next.
 *
 * Rounding (all of it integer, exact, and the same on every machine):
 *   consensus   = sum(stake_i * prediction_i) / sum(stake_i) over the
 *                 eligible submissions, rounded to the nearest integer,
 *                 halves away from zero (so negating every prediction
 *                 negates the consensus). The sums are 128-bit.
 *   weight_ppm  = floor(stake_i * 1000000 / sum(stake_j)): each is in
 *                 [0, 1000000] and their sum is in (1000000 - n, 1000000].
 *   slash       = floor(stake * slash_ppm / 1000000), computed as
 *                 (stake / 1e6) * ppm + (stake % 1e6) * ppm / 1e6 so no
 *                 product can overflow. What the floor leaves stays with the
 *                 predictor. The stake is the balance when the round closed.
 * A predictor is slashed when |prediction - consensus| > tolerance
 * (strictly: an error equal to the tolerance is not slashed). Missing a
 * round is never slashed: a predictor who does not submit keeps its stake
 * and has no weight in that round. A round without eligible submissions
 * closes without a consensus (has_consensus false) and slashes nobody.
 * A predictor whose balance ends a round below min_stake is excluded for
 * good (balances never grow): no weight, no submissions, never slashed
 * again; its balance stays in the ledger and in the audit.
 *
 * Errors: every action returns 0 or a negative errno, and stake_errmsg()
 * then says what went wrong. The codes mean:
 *   -EINVAL   bad argument or configuration (empty name, deposit <= 0 or
 *             below min_stake, round <= 0, a config that differs from the
 *             one the ledger was created with, a file that is not a ledger,
 *             an unknown VFS name)
 *   -ERANGE   a value outside its named limit (deposit > STAKE_DEPOSIT_MAX,
 *             |prediction| > STAKE_PREDICTION_MAX), or arithmetic that
 *             cannot be done exactly
 *   -E2BIG    the ledger already holds max_predictors predictors
 *   -ENOENT   unknown predictor, a round not yet open (submit, close) or
 *             not yet closed (stake_round_get)
 *   -EEXIST   duplicate predictor name; a second submission in a round
 *   -EPERM    the round is closed; the predictor is excluded
 *   -EIO      the disk failed: NOTHING was changed
 *   -ENOSPC   the disk is full: NOTHING was changed
 *   -EINPROGRESS  the commit's sync failed: outcome unknown (it may
 *             reappear after a crash); the ledger is conserved either way
 *   -EBUSY    another connection holds the database's write lock
 *   -EROFS    the file or its directory is read-only
 *   -EBADMSG  the database is corrupt
 *   -EPROTO   the database was written by a newer faultdrill
 *   -EACCES   the file cannot be opened or created
 *   -ENOMEM   out of memory
 */
#ifndef FAULTDRILL_PLATFORM_STAKE_H
#define FAULTDRILL_PLATFORM_STAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Limits ----------------------------------------------------------- */

#define STAKE_NAME_MAX       64                 /* bytes in a predictor's name */
#define STAKE_PREDICTORS_MAX 256                /* predictors a ledger may be configured for */
#define STAKE_DEPOSIT_MAX    1000000000000000LL /* micro-units: 1e9 units per predictor */
#define STAKE_PREDICTION_MAX 1000000000000000LL /* |prediction| in fixed-point units */
#define STAKE_PPM            1000000 /* parts per million: a weight of 1, a 100 % slash */
#define STAKE_ERRMSG_MAX     256
#define STAKE_SCHEMA_VERSION 1 /* PRAGMA user_version of a current ledger */

/* ---- Opening a ledger ------------------------------------------------- */

/* Fixed when the ledger is created and stored in it. */
struct stake_config {
    int64_t tolerance; /* error allowed, in prediction units: 0..2*STAKE_PREDICTION_MAX */
    int64_t slash_ppm; /* share of the stake slashed: 0..STAKE_PPM (200000 = 20 %) */
    int64_t min_stake; /* micro-units: 1..STAKE_DEPOSIT_MAX; below it a predictor is excluded */
    int64_t max_predictors; /* 1..STAKE_PREDICTORS_MAX */
};

typedef struct stake_ledger stake_ledger;

/*
 * Opens the ledger at path (creating it with cfg, WAL, synchronous=FULL),
 * through the SQLite VFS named vfs (NULL: the default). On an existing
 * ledger cfg must equal the stored config, or be NULL to take it. On
 * failure *out is NULL; errmsg (may be NULL) receives the message.
 */
int stake_open(const char *path, const char *vfs, const struct stake_config *cfg,
               stake_ledger **out, char errmsg[STAKE_ERRMSG_MAX]);
/* Closes cleanly. NULL is allowed. */
void stake_close(stake_ledger *l);
/* Closes after the node died (a simulated crash): nothing more is written,
 * not even a checkpoint. NULL is allowed. */
void stake_abandon(stake_ledger *l);
/* The message of the last failed call on l ("" after a success). */
const char *stake_errmsg(const stake_ledger *l);
/* The config the ledger was created with. */
void stake_get_config(const stake_ledger *l, struct stake_config *out);

/* ---- Predictors ------------------------------------------------------- */

struct stake_predictor {
    int64_t id; /* > 0, in registration order */
    char name[STAKE_NAME_MAX + 1];
    int64_t deposit;          /* what it paid in */
    int64_t balance;          /* what it holds now: deposit minus slashes */
    int64_t registered_round; /* the round open when it registered */
    bool excluded;
    int64_t excluded_round; /* the round whose close excluded it; 0 if not excluded */
};

/*
 * Registers a predictor with deposit micro-units (min_stake..STAKE_DEPOSIT_MAX);
 * *id (may be NULL) receives its id. -EEXIST for a name already taken,
 * -E2BIG past max_predictors.
 */
int stake_register(stake_ledger *l, const char *name, int64_t deposit, int64_t *id);
int stake_predictor_get(stake_ledger *l, int64_t id, struct stake_predictor *out);
/* Predictors by id, at most max into out (may be NULL when max is 0);
 * returns how many there are in all (may exceed max). */
int stake_list(stake_ledger *l, struct stake_predictor *out, size_t max);

/* ---- Rounds ----------------------------------------------------------- */

/* The open round (1 on a new ledger). */
int stake_current_round(stake_ledger *l, int64_t *round);

/*
 * Records predictor_id's prediction for round, which must be the open
 * round (-EPERM when closed, -ENOENT when not open yet). -EPERM for an
 * excluded predictor, -EEXIST for a second submission in the round.
 */
int stake_submit(stake_ledger *l, int64_t round, int64_t predictor_id, int64_t prediction);

/* One submission of a closed round, as its close decided it. */
struct stake_round_entry {
    int64_t predictor_id;
    int64_t prediction;
    int64_t stake;      /* balance when the round closed, before slashing */
    int64_t weight_ppm; /* 0..STAKE_PPM; 0 when not eligible or no consensus */
    int64_t error;      /* prediction - consensus; 0 without a consensus */
    int64_t slashed;    /* micro-units moved to the treasury */
    int64_t balance;    /* after the round (now, for stake_round_get) */
    bool eligible;      /* counted in the consensus */
    bool excluded;      /* this round's close excluded it */
};

struct stake_round_result {
    int64_t round;
    bool has_consensus;    /* false: no eligible submission */
    int64_t consensus;     /* 0 when !has_consensus */
    int64_t total_stake;   /* sum of the eligible stakes: the weights' denominator */
    int64_t slashed_total; /* sum of the entries' slashed */
    int64_t treasury;      /* the treasury after the round */
    size_t excluded_count; /* entries with excluded set */
    size_t entry_count;    /* every submission of the round, by predictor id */
    struct stake_round_entry entries[STAKE_PREDICTORS_MAX];
};

/*
 * Closes the open round in ONE transaction: consensus, weights, slashes,
 * the treasury, exclusions, and the next round opened; out (may be NULL)
 * receives the result. -EPERM when round is already closed, -ENOENT when
 * it is not open yet. On any error nothing changed (except -EINPROGRESS:
 * unknown) and out is zeroed.
 */
int stake_close_round(stake_ledger *l, int64_t round, struct stake_round_result *out);
/* The result of a closed round, as stake_close_round returned it (balances
 * are those of now). -ENOENT when the round is not closed. */
int stake_round_get(stake_ledger *l, int64_t round, struct stake_round_result *out);

/* ---- Inspection (the stake-conserved checker) -------------------------- */

struct stake_weight {
    int64_t predictor_id;
    int64_t weight_ppm;
};

/* One consistent snapshot of the ledger, read in one transaction. */
struct stake_audit {
    int64_t deposits;    /* sum of every deposit */
    int64_t balances;    /* sum of every balance, excluded predictors included */
    int64_t treasury;    /* every slash so far */
    int64_t min_balance; /* 0 when there are no predictors */
    int64_t predictors;
    int64_t eligible; /* predictors not excluded */
    int64_t eligible_stake;
    int64_t rounds_closed;
    /* Current weights, one per predictor by id: floor(balance * 1e6 /
     * eligible_stake) for an eligible one, 0 for an excluded one. */
    size_t weight_count;
    struct stake_weight weights[STAKE_PREDICTORS_MAX];
    int64_t weight_sum_ppm;
    /* Over every closed round's recorded weights: the extremes, and the
     * largest per-round sum (0 when no round has weights). */
    int64_t round_weight_min_ppm;
    int64_t round_weight_max_ppm;
    int64_t round_weight_sum_max_ppm;
};

int stake_audit(stake_ledger *l, struct stake_audit *out);
/* Whether a holds `stake-conserved`: deposits = balances + treasury, no
 * balance below zero, the treasury not negative, every weight (current and
 * recorded) in [0, STAKE_PPM] and every sum of weights at most STAKE_PPM. */
bool stake_audit_is_ok(const struct stake_audit *a);

#endif /* FAULTDRILL_PLATFORM_STAKE_H */
