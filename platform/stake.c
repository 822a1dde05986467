/*
 * stake.c — the stake ledger of stake.h: predictors, deposits, rounds,
 * the stake-weighted consensus, slashing into the treasury and exclusion,
 * on one SQLite database of its own (WAL, synchronous=FULL).
 *
 * Every state change is one BEGIN IMMEDIATE ... COMMIT, and every decision
 * that SQLite's 64-bit integers can make exactly is made in SQL (who may
 * submit, who is slashed and by how much, who is excluded, the treasury).
 * Only the consensus and the weights are computed in C, because their
 * products (stake × prediction, stake × 1e6) need 128 bits.
 *
 * Depends on SQLite only. It deliberately shares no code with db.c (the
 * ledger is a separate database that must stay usable on its own), so it
 * has its own small statement cache and its own SQLite-to-errno mapping,
 * which follows db_errno() code for code.
 */
#include "platform/stake.h"
#include "platform/internal.h"

#include <assert.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAKE_PATH_MAX 4096
/* PRAGMA application_id of a ledger ("FDSK"): tells it from a shop database,
 * whose user_version is 1 too. */
#define STAKE_APPLICATION_ID 0x4644534B

_Static_assert(STAKE_APPLICATION_ID == 1178882891, "schema_v1 spells the application id out");

typedef __int128 stake_wide; /* stake × prediction sums: |x| < 2^110 within the limits */

/* ---- schema ------------------------------------------------------------ */

/*
 * Version 1. stake_state holds the one open round and the treasury;
 * stake_rounds one row per closed round; stake_submissions one row per
 * (round, predictor), completed by the round's close. The CHECKs restate
 * the invariants so that a bug aborts its transaction instead of storing a
 * broken ledger. deposits are never a separate counter: they are the sum of
 * the predictors' deposit column, which nothing ever updates, so the audit
 * compares two independently maintained sides.
 */
static const char schema_v1[] =
    "CREATE TABLE stake_config ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " tolerance INTEGER NOT NULL,"
    " slash_ppm INTEGER NOT NULL,"
    " min_stake INTEGER NOT NULL,"
    " max_predictors INTEGER NOT NULL);"
    "CREATE TABLE stake_state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " current_round INTEGER NOT NULL CHECK (current_round >= 1),"
    " treasury INTEGER NOT NULL CHECK (treasury >= 0));"
    "INSERT INTO stake_state (id, current_round, treasury) VALUES (1, 1, 0);"
    "CREATE TABLE stake_predictors ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE CHECK (length(name) > 0),"
    " deposit INTEGER NOT NULL CHECK (deposit > 0),"
    " balance INTEGER NOT NULL CHECK (balance >= 0 AND balance <= deposit),"
    " registered_round INTEGER NOT NULL,"
    " excluded_round INTEGER);"
    "CREATE TABLE stake_rounds ("
    " round INTEGER PRIMARY KEY,"
    " has_consensus INTEGER NOT NULL CHECK (has_consensus IN (0, 1)),"
    " consensus INTEGER NOT NULL,"
    " total_stake INTEGER NOT NULL CHECK (total_stake >= 0),"
    " slashed_total INTEGER NOT NULL CHECK (slashed_total >= 0),"
    " treasury INTEGER NOT NULL CHECK (treasury >= 0));"
    "CREATE TABLE stake_submissions ("
    " round INTEGER NOT NULL,"
    " predictor_id INTEGER NOT NULL REFERENCES stake_predictors(id),"
    " prediction INTEGER NOT NULL,"
    " eligible INTEGER NOT NULL DEFAULT 0,"
    " stake INTEGER NOT NULL DEFAULT 0 CHECK (stake >= 0),"
    " weight_ppm INTEGER NOT NULL DEFAULT 0 CHECK (weight_ppm BETWEEN 0 AND 1000000),"
    " error INTEGER NOT NULL DEFAULT 0,"
    " slashed INTEGER NOT NULL DEFAULT 0 CHECK (slashed >= 0 AND slashed <= stake),"
    " PRIMARY KEY (round, predictor_id)) WITHOUT ROWID;"
    "PRAGMA application_id = 1178882891;" /* STAKE_APPLICATION_ID */
    "PRAGMA user_version = 1;";

/* ---- statements --------------------------------------------------------- */

enum stake_sql {
    SQL_BEGIN,
    SQL_BEGIN_READ,
    SQL_COMMIT,
    SQL_ROLLBACK,
    SQL_CONFIG_INSERT,
    SQL_CONFIG_GET,
    SQL_STATE,
    SQL_REGISTER,
    SQL_PREDICTOR_GET,
    SQL_PREDICTOR_LIST,
    SQL_SUBMIT,
    SQL_SUBMIT_WHY,
    SQL_SNAPSHOT,
    SQL_ELIGIBLE,
    SQL_SET_WEIGHT,
    SQL_SLASH_DECIDE,
    SQL_SLASH_APPLY,
    SQL_EXCLUDE,
    SQL_ADVANCE,
    SQL_ROUND_INSERT,
    SQL_ROUND_GET,
    SQL_ROUND_ENTRIES,
    SQL_AUDIT_TOTALS,
    SQL_AUDIT_BALANCES,
    SQL_AUDIT_ROUNDS,
    SQL_COUNT
};

static const char *const sql_text[SQL_COUNT] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_BEGIN_READ] = "BEGIN",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_CONFIG_INSERT] = "INSERT INTO stake_config"
                          " (id, tolerance, slash_ppm, min_stake, max_predictors)"
                          " VALUES (1, ?1, ?2, ?3, ?4)",
    [SQL_CONFIG_GET] = "SELECT tolerance, slash_ppm, min_stake, max_predictors"
                       " FROM stake_config WHERE id = 1",
    [SQL_STATE] = "SELECT current_round, treasury FROM stake_state WHERE id = 1",
    /* The limit is decided in the same statement: no row, no insert. */
    [SQL_REGISTER] = "INSERT INTO stake_predictors (name, deposit, balance, registered_round)"
                     " SELECT ?1, ?2, ?2, current_round FROM stake_state"
                     " WHERE (SELECT count(*) FROM stake_predictors) < ?3",
    [SQL_PREDICTOR_GET] = "SELECT id, name, deposit, balance, registered_round, excluded_round"
                          " FROM stake_predictors WHERE id = ?1",
    [SQL_PREDICTOR_LIST] = "SELECT id, name, deposit, balance, registered_round, excluded_round"
                           " FROM stake_predictors ORDER BY id",
    /* Inserts only into the open round and only for an eligible predictor;
     * a second submission hits the primary key (-EEXIST). */
    [SQL_SUBMIT] = "INSERT INTO stake_submissions (round, predictor_id, prediction)"
                   " SELECT ?1, p.id, ?3 FROM stake_predictors AS p, stake_state AS s"
                   " WHERE p.id = ?2 AND s.current_round = ?1"
                   " AND p.excluded_round IS NULL AND p.balance >= ?4",
    [SQL_SUBMIT_WHY] = "SELECT s.current_round, p.id IS NOT NULL,"
                       " p.excluded_round IS NOT NULL OR p.balance < ?2"
                       " FROM stake_state AS s LEFT JOIN stake_predictors AS p ON p.id = ?1",
    /* The stake of a round is the balance when it closes. */
    [SQL_SNAPSHOT] = "UPDATE stake_submissions AS s SET stake = p.balance,"
                     " eligible = (p.excluded_round IS NULL AND p.balance >= ?2)"
                     " FROM stake_predictors AS p"
                     " WHERE p.id = s.predictor_id AND s.round = ?1",
    [SQL_ELIGIBLE] = "SELECT predictor_id, prediction, stake FROM stake_submissions"
                     " WHERE round = ?1 AND eligible ORDER BY predictor_id",
    [SQL_SET_WEIGHT] = "UPDATE stake_submissions SET weight_ppm = ?3"
                       " WHERE round = ?1 AND predictor_id = ?2",
    /* floor(stake * ppm / 1e6) without the product: see stake.h. */
    [SQL_SLASH_DECIDE] = "UPDATE stake_submissions SET error = prediction - ?2,"
                         " slashed = CASE WHEN abs(prediction - ?2) > ?3"
                         "  THEN (stake / 1000000) * ?4 + (stake % 1000000) * ?4 / 1000000"
                         "  ELSE 0 END"
                         " WHERE round = ?1 AND eligible",
    [SQL_SLASH_APPLY] = "UPDATE stake_predictors AS p SET balance = p.balance - s.slashed"
                        " FROM stake_submissions AS s"
                        " WHERE s.round = ?1 AND s.predictor_id = p.id AND s.slashed > 0",
    [SQL_EXCLUDE] = "UPDATE stake_predictors SET excluded_round = ?1"
                    " WHERE excluded_round IS NULL AND balance < ?2",
    [SQL_ADVANCE] = "UPDATE stake_state SET current_round = ?1 + 1, treasury = treasury +"
                    " (SELECT coalesce(sum(slashed), 0) FROM stake_submissions WHERE round = ?1)"
                    " WHERE id = 1 AND current_round = ?1",
    [SQL_ROUND_INSERT] = "INSERT INTO stake_rounds"
                         " (round, has_consensus, consensus, total_stake, slashed_total, treasury)"
                         " SELECT ?1, ?2, ?3, ?4, (SELECT coalesce(sum(slashed), 0)"
                         "  FROM stake_submissions WHERE round = ?1), treasury"
                         " FROM stake_state WHERE id = 1",
    [SQL_ROUND_GET] = "SELECT has_consensus, consensus, total_stake, slashed_total, treasury"
                      " FROM stake_rounds WHERE round = ?1",
    [SQL_ROUND_ENTRIES] = "SELECT s.predictor_id, s.prediction, s.stake, s.weight_ppm, s.error,"
                          " s.slashed, p.balance, s.eligible, p.excluded_round IS s.round"
                          " FROM stake_submissions AS s"
                          " JOIN stake_predictors AS p ON p.id = s.predictor_id"
                          " WHERE s.round = ?1 ORDER BY s.predictor_id",
    [SQL_AUDIT_TOTALS] =
        "SELECT coalesce(sum(deposit), 0), coalesce(sum(balance), 0), coalesce(min(balance), 0),"
        " count(*), count(*) FILTER (WHERE excluded_round IS NULL),"
        " coalesce(sum(balance) FILTER (WHERE excluded_round IS NULL), 0),"
        " (SELECT treasury FROM stake_state WHERE id = 1),"
        " (SELECT count(*) FROM stake_rounds)"
        " FROM stake_predictors",
    [SQL_AUDIT_BALANCES] = "SELECT id, balance, excluded_round IS NULL FROM stake_predictors"
                           " ORDER BY id",
    [SQL_AUDIT_ROUNDS] =
        "SELECT coalesce(min(s.weight_ppm), 0), coalesce(max(s.weight_ppm), 0),"
        " (SELECT coalesce(max(w), 0) FROM (SELECT sum(weight_ppm) AS w FROM stake_submissions"
        "  WHERE round IN (SELECT round FROM stake_rounds) GROUP BY round))"
        " FROM stake_submissions AS s JOIN stake_rounds AS r ON r.round = s.round",
};

struct stake_ledger {
    sqlite3 *conn;
    struct stake_config cfg;
    char path[STAKE_PATH_MAX];
    sqlite3_stmt *stmts[SQL_COUNT];
    char errmsg[STAKE_ERRMSG_MAX];
};

/* ---- errors ------------------------------------------------------------- */

static int stake_fail(stake_ledger *l, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int stake_fail(stake_ledger *l, int rc, const char *fmt, ...)
{
    assert(rc < 0);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->errmsg, sizeof(l->errmsg), fmt, ap);
    va_end(ap);
    return rc;
}

/* The connection's last error as errno, with SQLite's own words appended. */
static int stake_fail_sqlite(stake_ledger *l, const char *what)
{
    int code = sqlite3_extended_errcode(l->conn);
    int rc = db_errno(code);
    if (rc == 0)
        rc = -EIO;
    return stake_fail(l, rc, "stake ledger %s: %s: %s", l->path, what, sqlite3_errmsg(l->conn));
}

/* ---- statements and transactions ----------------------------------------- */

/* The cached statement id, reset and unbound; prepared on first use. */
static int stake_stmt(stake_ledger *l, enum stake_sql id, sqlite3_stmt **out)
{
    assert(id < SQL_COUNT && sql_text[id] != NULL);
    if (l->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(l->conn, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &l->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            *out = NULL;
            return stake_fail_sqlite(l, "preparing a statement");
        }
    }
    sqlite3_reset(l->stmts[id]);
    sqlite3_clear_bindings(l->stmts[id]);
    *out = l->stmts[id];
    return 0;
}

/* Steps st once: 1 for a row, 0 when done, or -errno (st is reset then). */
static int stake_step(stake_ledger *l, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    int err = stake_fail_sqlite(l, what);
    sqlite3_reset(st);
    return err;
}

/* Runs a cached statement that returns no rows. */
static int stake_run(stake_ledger *l, sqlite3_stmt *st, const char *what)
{
    int rc = stake_step(l, st, what);
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

static int stake_exec_id(stake_ledger *l, enum stake_sql id, const char *what)
{
    sqlite3_stmt *st;
    int err = stake_stmt(l, id, &st);
    return err ? err : stake_run(l, st, what);
}

static void stake_rollback(stake_ledger *l)
{
    if (l->conn == NULL || sqlite3_get_autocommit(l->conn))
        return;
    sqlite3_stmt *st;
    if (stake_stmt(l, SQL_ROLLBACK, &st) != 0 || sqlite3_step(st) != SQLITE_DONE)
        sqlite3_exec(l->conn, "ROLLBACK", NULL, NULL, NULL);
    if (st != NULL)
        sqlite3_reset(st);
}

static int stake_commit(stake_ledger *l)
{
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_COMMIT, &st);
    if (!err && sqlite3_step(st) == SQLITE_DONE) {
        sqlite3_reset(st);
        return 0;
    }
    int code = sqlite3_extended_errcode(l->conn);
    if (!err)
        err = stake_fail_sqlite(l, "committing");
    if (st != NULL)
        sqlite3_reset(st);
    stake_rollback(l);
    if (code == SQLITE_IOERR_FSYNC)
        /* The commit frame may be in the WAL without being synced: a crash
         * may keep it or drop it. Conserved either way, but unknown. */
        return stake_fail(l, -EINPROGRESS,
                          "stake ledger %s: the commit could not be synced; outcome unknown",
                          l->path);
    return err;
}

typedef int (*stake_body)(stake_ledger *l, void *arg);

/* Runs body in BEGIN IMMEDIATE ... COMMIT: every state change is one of these. */
static int stake_write(stake_ledger *l, stake_body body, void *arg)
{
    l->errmsg[0] = '\0';
    int err = stake_exec_id(l, SQL_BEGIN, "starting a transaction");
    if (err)
        return err;
    err = body(l, arg);
    if (err) {
        stake_rollback(l);
        return err;
    }
    return stake_commit(l);
}

/* Runs body in one read transaction: a consistent snapshot. */
static int stake_read(stake_ledger *l, stake_body body, void *arg)
{
    l->errmsg[0] = '\0';
    int err = stake_exec_id(l, SQL_BEGIN_READ, "starting a read");
    if (err)
        return err;
    err = body(l, arg);
    stake_rollback(l);
    return err;
}

/* ---- opening ------------------------------------------------------------ */

static int config_check(const struct stake_config *c, char *msg)
{
    if (c->tolerance < 0 || c->tolerance > 2 * STAKE_PREDICTION_MAX || c->slash_ppm < 0 ||
        c->slash_ppm > STAKE_PPM || c->min_stake < 1 || c->min_stake > STAKE_DEPOSIT_MAX ||
        c->max_predictors < 1 || c->max_predictors > STAKE_PREDICTORS_MAX) {
        snprintf(msg, STAKE_ERRMSG_MAX,
                 "stake config out of range: tolerance 0..%lld, slash_ppm 0..%d, "
                 "min_stake 1..%lld, max_predictors 1..%d",
                 2 * STAKE_PREDICTION_MAX, STAKE_PPM, STAKE_DEPOSIT_MAX, STAKE_PREDICTORS_MAX);
        return -EINVAL;
    }
    return 0;
}

static bool config_equal(const struct stake_config *a, const struct stake_config *b)
{
    return a->tolerance == b->tolerance && a->slash_ppm == b->slash_ppm &&
           a->min_stake == b->min_stake && a->max_predictors == b->max_predictors;
}

/* One integer from a one-row query run once (PRAGMAs, at open only). */
static int query_int(stake_ledger *l, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(l->conn, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int err = stake_fail_sqlite(l, sql);
        sqlite3_finalize(st);
        return err;
    }
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Refuses a newer schema or a database that is not a ledger, before any write. */
static int schema_version(stake_ledger *l, int64_t *version)
{
    int64_t app_id = 0, objects = 0;
    int err = query_int(l, "PRAGMA user_version", version);
    if (!err)
        err = query_int(l, "PRAGMA application_id", &app_id);
    if (!err)
        err = query_int(l, "SELECT count(*) FROM sqlite_schema", &objects);
    if (err)
        return err;
    if ((*version == 0 && objects > 0) || (*version > 0 && app_id != STAKE_APPLICATION_ID))
        return stake_fail(l, -EINVAL, "%s is not a stake ledger (another database)", l->path);
    if (*version > STAKE_SCHEMA_VERSION)
        return stake_fail(l, -EPROTO,
                          "%s: stake schema version %lld is newer than this faultdrill (%d); "
                          "upgrade it",
                          l->path, (long long)*version, STAKE_SCHEMA_VERSION);
    return 0;
}

static int create_body(stake_ledger *l, void *arg)
{
    (void)arg;
    if (sqlite3_exec(l->conn, schema_v1, NULL, NULL, NULL) != SQLITE_OK)
        return stake_fail_sqlite(l, "creating the schema");
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_CONFIG_INSERT, &st);
    if (err)
        return err;
    sqlite3_bind_int64(st, 1, l->cfg.tolerance);
    sqlite3_bind_int64(st, 2, l->cfg.slash_ppm);
    sqlite3_bind_int64(st, 3, l->cfg.min_stake);
    sqlite3_bind_int64(st, 4, l->cfg.max_predictors);
    return stake_run(l, st, "storing the config");
}

static int config_load_body(stake_ledger *l, void *arg)
{
    struct stake_config *c = arg;
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_CONFIG_GET, &st);
    if (err)
        return err;
    int rc = stake_step(l, st, "reading the config");
    if (rc <= 0)
        return rc < 0 ? rc : stake_fail(l, -EBADMSG, "%s: the config row is missing", l->path);
    c->tolerance = sqlite3_column_int64(st, 0);
    c->slash_ppm = sqlite3_column_int64(st, 1);
    c->min_stake = sqlite3_column_int64(st, 2);
    c->max_predictors = sqlite3_column_int64(st, 3);
    sqlite3_reset(st);
    char scratch[STAKE_ERRMSG_MAX];
    if (config_check(c, scratch))
        return stake_fail(l, -EBADMSG, "%s: the stored config is corrupt: %s", l->path, scratch);
    return 0;
}

/* Creates the schema with cfg, or loads the stored config and checks cfg against it. */
static int schema_open(stake_ledger *l, const struct stake_config *cfg, int64_t version)
{
    if (version == 0) {
        if (cfg == NULL)
            return stake_fail(l, -EINVAL, "%s: a new stake ledger needs a config", l->path);
        l->cfg = *cfg;
        return stake_write(l, create_body, NULL);
    }
    int err = stake_read(l, config_load_body, &l->cfg);
    if (err)
        return err;
    if (cfg != NULL && !config_equal(cfg, &l->cfg))
        return stake_fail(l, -EINVAL,
                          "%s was created with tolerance=%lld slash_ppm=%lld min_stake=%lld "
                          "max_predictors=%lld; open it with that config or none",
                          l->path, (long long)l->cfg.tolerance, (long long)l->cfg.slash_ppm,
                          (long long)l->cfg.min_stake, (long long)l->cfg.max_predictors);
    return 0;
}

/* WAL and FULL sync: an acknowledged round survives a power cut. */
static int pragmas_set(stake_ledger *l)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(l->conn, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    bool wal =
        rc == SQLITE_ROW && sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return stake_fail_sqlite(l, "setting WAL mode");
    if (!wal)
        return stake_fail(l, -EIO, "%s: the file system or VFS cannot use WAL mode", l->path);
    if (sqlite3_exec(l->conn, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK)
        return stake_fail_sqlite(l, "setting synchronous = FULL");
    return 0;
}

static int stake_open_conn(stake_ledger *l, const char *vfs, const struct stake_config *cfg)
{
    /* No busy timeout: the ledger has one owner, and sleeping is not ours
     * to do. Another writer is -EBUSY. */
    int rc = sqlite3_open_v2(l->path, &l->conn,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs);
    if (rc != SQLITE_OK) {
        int err = db_errno(rc) ? db_errno(rc) : -EIO;
        return stake_fail(l, err, "cannot open stake ledger %s: %s", l->path,
                          l->conn != NULL ? sqlite3_errmsg(l->conn) : sqlite3_errstr(rc));
    }
    sqlite3_extended_result_codes(l->conn, 1);
    int64_t version = 0;
    int err = schema_version(l, &version);
    if (!err)
        err = pragmas_set(l);
    if (!err)
        err = schema_open(l, cfg, version);
    return err;
}

static void stake_release(stake_ledger *l, bool abandon)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < SQL_COUNT; i++)
        sqlite3_finalize(l->stmts[i]);
    if (l->conn != NULL) {
        /* A dead node writes nothing more, not even a checkpoint. */
        if (abandon)
            sqlite3_db_config(l->conn, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
        sqlite3_close_v2(l->conn);
    }
    free(l);
}

int stake_open(const char *path, const char *vfs, const struct stake_config *cfg,
               stake_ledger **out, char errmsg[STAKE_ERRMSG_MAX])
{
    char scratch[STAKE_ERRMSG_MAX];
    char *msg = errmsg != NULL ? errmsg : scratch;
    assert(out != NULL);
    *out = NULL;
    msg[0] = '\0';
    if (path == NULL || path[0] == '\0' || strlen(path) >= STAKE_PATH_MAX) {
        snprintf(msg, STAKE_ERRMSG_MAX, "stake_open: a path (< %d bytes) is required",
                 STAKE_PATH_MAX);
        return -EINVAL;
    }
    if (cfg != NULL) {
        int err = config_check(cfg, msg);
        if (err)
            return err;
    }
    if (vfs != NULL && sqlite3_vfs_find(vfs) == NULL) {
        snprintf(msg, STAKE_ERRMSG_MAX, "stake_open: no SQLite VFS named \"%s\"", vfs);
        return -EINVAL;
    }
    stake_ledger *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(msg, STAKE_ERRMSG_MAX, "out of memory");
        return -ENOMEM;
    }
    strcpy(l->path, path);
    int err = stake_open_conn(l, vfs, cfg);
    if (err) {
        snprintf(msg, STAKE_ERRMSG_MAX, "%s", l->errmsg);
        stake_release(l, false);
        return err;
    }
    *out = l;
    return 0;
}

void stake_close(stake_ledger *l)
{
    stake_release(l, false);
}

void stake_abandon(stake_ledger *l)
{
    stake_release(l, true);
}

const char *stake_errmsg(const stake_ledger *l)
{
    return l->errmsg;
}

void stake_get_config(const stake_ledger *l, struct stake_config *out)
{
    *out = l->cfg;
}

/* ---- predictors ---------------------------------------------------------- */

struct register_arg {
    const char *name;
    int64_t deposit;
    int64_t id;
};

static int register_body(stake_ledger *l, void *p)
{
    struct register_arg *a = p;
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_REGISTER, &st);
    if (err)
        return err;
    sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->deposit);
    sqlite3_bind_int64(st, 3, l->cfg.max_predictors);
    err = stake_run(l, st, "registering a predictor");
    if (err == -EEXIST)
        return stake_fail(l, err, "a predictor named \"%s\" is already registered", a->name);
    if (err)
        return err;
    if (sqlite3_changes(l->conn) == 0)
        return stake_fail(l, -E2BIG, "the ledger already holds its %lld predictors (max)",
                          (long long)l->cfg.max_predictors);
    a->id = sqlite3_last_insert_rowid(l->conn);
    return 0;
}

int stake_register(stake_ledger *l, const char *name, int64_t deposit, int64_t *id)
{
    assert(l != NULL);
    l->errmsg[0] = '\0';
    if (name == NULL || name[0] == '\0' || strnlen(name, STAKE_NAME_MAX + 1) > STAKE_NAME_MAX)
        return stake_fail(l, -EINVAL, "a predictor needs a name of 1..%d bytes", STAKE_NAME_MAX);
    if (deposit > STAKE_DEPOSIT_MAX)
        return stake_fail(l, -ERANGE, "deposit %lld is over the limit of %lld micro-units",
                          (long long)deposit, STAKE_DEPOSIT_MAX);
    if (deposit <= 0 || deposit < l->cfg.min_stake)
        return stake_fail(l, -EINVAL, "deposit %lld is below the minimum stake of %lld",
                          (long long)deposit, (long long)l->cfg.min_stake);
    struct register_arg a = {.name = name, .deposit = deposit};
    int err = stake_write(l, register_body, &a);
    if (!err && id != NULL)
        *id = a.id;
    return err;
}

static void predictor_from_row(sqlite3_stmt *st, struct stake_predictor *p)
{
    memset(p, 0, sizeof(*p));
    p->id = sqlite3_column_int64(st, 0);
    snprintf(p->name, sizeof(p->name), "%s", (const char *)sqlite3_column_text(st, 1));
    p->deposit = sqlite3_column_int64(st, 2);
    p->balance = sqlite3_column_int64(st, 3);
    p->registered_round = sqlite3_column_int64(st, 4);
    p->excluded = sqlite3_column_type(st, 5) != SQLITE_NULL;
    p->excluded_round = p->excluded ? sqlite3_column_int64(st, 5) : 0;
}

struct get_arg {
    int64_t id;
    struct stake_predictor *out;
};

static int get_body(stake_ledger *l, void *p)
{
    struct get_arg *a = p;
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_PREDICTOR_GET, &st);
    if (err)
        return err;
    sqlite3_bind_int64(st, 1, a->id);
    int rc = stake_step(l, st, "reading a predictor");
    if (rc == 0)
        return stake_fail(l, -ENOENT, "no predictor %lld", (long long)a->id);
    if (rc > 0)
        predictor_from_row(st, a->out);
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

int stake_predictor_get(stake_ledger *l, int64_t id, struct stake_predictor *out)
{
    assert(l != NULL && out != NULL);
    memset(out, 0, sizeof(*out));
    struct get_arg a = {.id = id, .out = out};
    return stake_read(l, get_body, &a);
}

struct list_arg {
    struct stake_predictor *out;
    size_t max;
    int count;
};

static int list_body(stake_ledger *l, void *p)
{
    struct list_arg *a = p;
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_PREDICTOR_LIST, &st);
    if (err)
        return err;
    int rc;
    while ((rc = stake_step(l, st, "listing predictors")) > 0) {
        if ((size_t)a->count < a->max)
            predictor_from_row(st, &a->out[a->count]);
        a->count++;
    }
    sqlite3_reset(st);
    return rc;
}

int stake_list(stake_ledger *l, struct stake_predictor *out, size_t max)
{
    assert(l != NULL && (out != NULL || max == 0));
    struct list_arg a = {.out = out, .max = max};
    int err = stake_read(l, list_body, &a);
    return err ? err : a.count;
}

/* ---- rounds ---------------------------------------------------------------- */

static int current_round(stake_ledger *l, int64_t *round)
{
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_STATE, &st);
    if (err)
        return err;
    int rc = stake_step(l, st, "reading the open round");
    if (rc == 0)
        return stake_fail(l, -EBADMSG, "%s: the state row is missing", l->path);
    if (rc > 0)
        *round = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc < 0 ? rc : 0;
}

static int current_round_body(stake_ledger *l, void *p)
{
    return current_round(l, p);
}

int stake_current_round(stake_ledger *l, int64_t *round)
{
    assert(l != NULL && round != NULL);
    return stake_read(l, current_round_body, round);
}

/* -EPERM for a closed round, -ENOENT for one not open yet, 0 for the open one. */
static int round_is_open(stake_ledger *l, int64_t round, int64_t current, const char *verb)
{
    if (round < current)
        return stake_fail(l, -EPERM, "cannot %s round %lld: it is closed (round %lld is open)",
                          verb, (long long)round, (long long)current);
    if (round > current)
        return stake_fail(l, -ENOENT, "cannot %s round %lld: it is not open yet (round %lld is)",
                          verb, (long long)round, (long long)current);
    return 0;
}

struct submit_arg {
    int64_t round;
    int64_t predictor_id;
    int64_t prediction;
};

/* Why the conditional insert inserted nothing. */
static int submit_refused(stake_ledger *l, const struct submit_arg *a)
{
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_SUBMIT_WHY, &st);
    if (err)
        return err;
    sqlite3_bind_int64(st, 1, a->predictor_id);
    sqlite3_bind_int64(st, 2, l->cfg.min_stake);
    int rc = stake_step(l, st, "checking a submission");
    if (rc <= 0)
        return rc < 0 ? rc : stake_fail(l, -EBADMSG, "%s: the state row is missing", l->path);
    int64_t current = sqlite3_column_int64(st, 0);
    bool known = sqlite3_column_int(st, 1) != 0;
    bool excluded = sqlite3_column_int(st, 2) != 0;
    sqlite3_reset(st);
    err = round_is_open(l, a->round, current, "submit to");
    if (err)
        return err;
    if (!known)
        return stake_fail(l, -ENOENT, "no predictor %lld", (long long)a->predictor_id);
    if (excluded)
        return stake_fail(l, -EPERM, "predictor %lld is excluded (stake below %lld)",
                          (long long)a->predictor_id, (long long)l->cfg.min_stake);
    return stake_fail(l, -EIO, "submission of predictor %lld refused for no known reason",
                      (long long)a->predictor_id);
}

static int submit_body(stake_ledger *l, void *p)
{
    struct submit_arg *a = p;
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_SUBMIT, &st);
    if (err)
        return err;
    sqlite3_bind_int64(st, 1, a->round);
    sqlite3_bind_int64(st, 2, a->predictor_id);
    sqlite3_bind_int64(st, 3, a->prediction);
    sqlite3_bind_int64(st, 4, l->cfg.min_stake);
    err = stake_run(l, st, "submitting a prediction");
    if (err == -EEXIST)
        return stake_fail(l, err, "predictor %lld already submitted in round %lld",
                          (long long)a->predictor_id, (long long)a->round);
    if (err)
        return err;
    return sqlite3_changes(l->conn) == 1 ? 0 : submit_refused(l, a);
}

int stake_submit(stake_ledger *l, int64_t round, int64_t predictor_id, int64_t prediction)
{
    assert(l != NULL);
    l->errmsg[0] = '\0';
    if (round <= 0)
        return stake_fail(l, -EINVAL, "round %lld: rounds are numbered from 1", (long long)round);
    if (prediction > STAKE_PREDICTION_MAX || prediction < -STAKE_PREDICTION_MAX)
        return stake_fail(l, -ERANGE, "prediction %lld is outside +-%lld", (long long)prediction,
                          STAKE_PREDICTION_MAX);
    struct submit_arg a = {.round = round, .predictor_id = predictor_id, .prediction = prediction};
    return stake_write(l, submit_body, &a);
}

/* ---- closing a round ---------------------------------------------------------- */

/* n / d rounded to the nearest integer, halves away from zero; d > 0. */
static stake_wide div_nearest(stake_wide n, stake_wide d)
{
    assert(d > 0);
    stake_wide mag = n < 0 ? -n : n;
    stake_wide q = (2 * mag + d) / (2 * d);
    return n < 0 ? -q : q;
}

struct consensus {
    bool has;
    int64_t value;
    int64_t total_stake;
    size_t count;
    int64_t ids[STAKE_PREDICTORS_MAX];
    int64_t stakes[STAKE_PREDICTORS_MAX];
};

/* Reads the eligible submissions and computes the weighted mean in 128 bits. */
static int consensus_compute(stake_ledger *l, int64_t round, struct consensus *c)
{
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_ELIGIBLE, &st);
    if (err)
        return err;
    sqlite3_bind_int64(st, 1, round);
    stake_wide weighted = 0;
    int rc;
    while ((rc = stake_step(l, st, "reading the round's submissions")) > 0) {
        int64_t stake = sqlite3_column_int64(st, 2);
        int64_t prediction = sqlite3_column_int64(st, 1);
        /* The limits make overflow impossible; a row outside them is corrupt. */
        if (c->count == STAKE_PREDICTORS_MAX || stake < 0 || stake > STAKE_DEPOSIT_MAX ||
            prediction > STAKE_PREDICTION_MAX || prediction < -STAKE_PREDICTION_MAX) {
            sqlite3_reset(st);
            return stake_fail(l, -EBADMSG, "%s: round %lld holds a submission out of range",
                              l->path, (long long)round);
        }
        if (__builtin_add_overflow(c->total_stake, stake, &c->total_stake) ||
            __builtin_add_overflow(weighted, (stake_wide)stake * prediction, &weighted)) {
            sqlite3_reset(st);
            return stake_fail(l, -ERANGE, "round %lld: the stakes are too large to sum exactly",
                              (long long)round);
        }
        c->ids[c->count] = sqlite3_column_int64(st, 0);
        c->stakes[c->count] = stake;
        c->count++;
    }
    sqlite3_reset(st);
    if (rc < 0)
        return rc;
    /* min_stake >= 1, so eligible stakes are positive: a total of 0 means
     * nobody eligible submitted. */
    c->has = c->total_stake > 0;
    c->value = c->has ? (int64_t)div_nearest(weighted, c->total_stake) : 0;
    return 0;
}

static int weights_store(stake_ledger *l, int64_t round, const struct consensus *c)
{
    for (size_t i = 0; i < c->count; i++) {
        stake_wide w = (stake_wide)c->stakes[i] * STAKE_PPM / c->total_stake;
        assert(w >= 0 && w <= STAKE_PPM);
        sqlite3_stmt *st;
        int err = stake_stmt(l, SQL_SET_WEIGHT, &st);
        if (err)
            return err;
        sqlite3_bind_int64(st, 1, round);
        sqlite3_bind_int64(st, 2, c->ids[i]);
        sqlite3_bind_int64(st, 3, (int64_t)w);
        err = stake_run(l, st, "recording a weight");
        if (err)
            return err;
    }
    return 0;
}

/* Binds up to four integers to a cached statement and runs it. */
static int run4(stake_ledger *l, enum stake_sql id, const char *what, int n, int64_t a, int64_t b,
                int64_t c, int64_t d)
{
    assert(n >= 1 && n <= 4);
    sqlite3_stmt *st;
    int err = stake_stmt(l, id, &st);
    if (err)
        return err;
    const int64_t v[4] = {a, b, c, d};
    for (int i = 0; i < n; i++)
        sqlite3_bind_int64(st, i + 1, v[i]);
    return stake_run(l, st, what);
}

static int round_load(stake_ledger *l, int64_t round, struct stake_round_result *out);

struct close_arg {
    int64_t round;
    struct stake_round_result *out;
    struct consensus c;
};

/* The whole round, inside the caller's BEGIN IMMEDIATE. */
static int close_body(stake_ledger *l, void *p)
{
    struct close_arg *a = p;
    const struct stake_config *cfg = &l->cfg;
    int64_t current = 0;
    int err = current_round(l, &current);
    if (!err)
        err = round_is_open(l, a->round, current, "close");
    if (!err)
        err = run4(l, SQL_SNAPSHOT, "recording the stakes", 2, a->round, cfg->min_stake, 0, 0);
    if (!err)
        err = consensus_compute(l, a->round, &a->c);
    if (!err)
        err = weights_store(l, a->round, &a->c);
    if (!err && a->c.has)
        err = run4(l, SQL_SLASH_DECIDE, "deciding the slashes", 4, a->round, a->c.value,
                   cfg->tolerance, cfg->slash_ppm);
    if (!err)
        err = run4(l, SQL_SLASH_APPLY, "slashing", 1, a->round, 0, 0, 0);
    if (!err)
        err = run4(l, SQL_EXCLUDE, "excluding", 2, a->round, cfg->min_stake, 0, 0);
    if (!err)
        err = run4(l, SQL_ADVANCE, "moving to the treasury", 1, a->round, 0, 0, 0);
    if (!err && sqlite3_changes(l->conn) != 1)
        err = stake_fail(l, -EBADMSG, "%s: the open round moved during the close", l->path);
    if (!err)
        err = run4(l, SQL_ROUND_INSERT, "recording the round", 4, a->round, a->c.has, a->c.value,
                   a->c.total_stake);
    if (!err)
        err = round_load(l, a->round, a->out);
    return err;
}

int stake_close_round(stake_ledger *l, int64_t round, struct stake_round_result *out)
{
    assert(l != NULL);
    l->errmsg[0] = '\0';
    if (round <= 0)
        return stake_fail(l, -EINVAL, "round %lld: rounds are numbered from 1", (long long)round);
    /* The consensus scratch holds STAKE_PREDICTORS_MAX ids and stakes: on
     * the heap, with the result when the caller passes none. */
    struct close_arg *a = calloc(1, sizeof(*a) + (out == NULL ? sizeof(*out) : 0));
    if (a == NULL)
        return stake_fail(l, -ENOMEM, "out of memory");
    a->round = round;
    a->out = out != NULL ? out : (struct stake_round_result *)(a + 1);
    int err = stake_write(l, close_body, a);
    if (err && out != NULL)
        memset(out, 0, sizeof(*out));
    free(a);
    return err;
}

static void entry_from_row(sqlite3_stmt *st, struct stake_round_entry *e)
{
    e->predictor_id = sqlite3_column_int64(st, 0);
    e->prediction = sqlite3_column_int64(st, 1);
    e->stake = sqlite3_column_int64(st, 2);
    e->weight_ppm = sqlite3_column_int64(st, 3);
    e->error = sqlite3_column_int64(st, 4);
    e->slashed = sqlite3_column_int64(st, 5);
    e->balance = sqlite3_column_int64(st, 6);
    e->eligible = sqlite3_column_int(st, 7) != 0;
    e->excluded = sqlite3_column_int(st, 8) != 0;
}

static int round_entries(stake_ledger *l, int64_t round, struct stake_round_result *out)
{
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_ROUND_ENTRIES, &st);
    if (err)
        return err;
    sqlite3_bind_int64(st, 1, round);
    int rc;
    while ((rc = stake_step(l, st, "reading a round")) > 0) {
        if (out->entry_count == STAKE_PREDICTORS_MAX) {
            sqlite3_reset(st);
            return stake_fail(l, -EBADMSG, "%s: round %lld has more than %d submissions", l->path,
                              (long long)round, STAKE_PREDICTORS_MAX);
        }
        struct stake_round_entry *e = &out->entries[out->entry_count++];
        entry_from_row(st, e);
        if (e->excluded)
            out->excluded_count++;
    }
    sqlite3_reset(st);
    return rc;
}

static int round_load(stake_ledger *l, int64_t round, struct stake_round_result *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_ROUND_GET, &st);
    if (err)
        return err;
    sqlite3_bind_int64(st, 1, round);
    int rc = stake_step(l, st, "reading a round");
    if (rc == 0)
        return stake_fail(l, -ENOENT, "round %lld is not closed", (long long)round);
    if (rc < 0)
        return rc;
    out->round = round;
    out->has_consensus = sqlite3_column_int(st, 0) != 0;
    out->consensus = sqlite3_column_int64(st, 1);
    out->total_stake = sqlite3_column_int64(st, 2);
    out->slashed_total = sqlite3_column_int64(st, 3);
    out->treasury = sqlite3_column_int64(st, 4);
    sqlite3_reset(st);
    return round_entries(l, round, out);
}

struct round_get_arg {
    int64_t round;
    struct stake_round_result *out;
};

static int round_get_body(stake_ledger *l, void *p)
{
    struct round_get_arg *a = p;
    return round_load(l, a->round, a->out);
}

int stake_round_get(stake_ledger *l, int64_t round, struct stake_round_result *out)
{
    assert(l != NULL && out != NULL);
    struct round_get_arg a = {.round = round, .out = out};
    int err = stake_read(l, round_get_body, &a);
    if (err)
        memset(out, 0, sizeof(*out));
    return err;
}

/* ---- audit ---------------------------------------------------------------------- */

static int audit_totals(stake_ledger *l, struct stake_audit *out)
{
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_AUDIT_TOTALS, &st);
    if (err)
        return err;
    int rc = stake_step(l, st, "auditing");
    if (rc <= 0)
        return rc < 0 ? rc : stake_fail(l, -EIO, "auditing %s: no totals", l->path);
    out->deposits = sqlite3_column_int64(st, 0);
    out->balances = sqlite3_column_int64(st, 1);
    out->min_balance = sqlite3_column_int64(st, 2);
    out->predictors = sqlite3_column_int64(st, 3);
    out->eligible = sqlite3_column_int64(st, 4);
    out->eligible_stake = sqlite3_column_int64(st, 5);
    out->treasury = sqlite3_column_int64(st, 6);
    out->rounds_closed = sqlite3_column_int64(st, 7);
    sqlite3_reset(st);
    return 0;
}

/* Current weights, computed from the balances as a close would weigh them. */
static int audit_weights(stake_ledger *l, struct stake_audit *out)
{
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_AUDIT_BALANCES, &st);
    if (err)
        return err;
    int rc;
    while ((rc = stake_step(l, st, "auditing the weights")) > 0) {
        if (out->weight_count == STAKE_PREDICTORS_MAX) {
            sqlite3_reset(st);
            return stake_fail(l, -EBADMSG, "%s: more than %d predictors", l->path,
                              STAKE_PREDICTORS_MAX);
        }
        struct stake_weight *w = &out->weights[out->weight_count++];
        w->predictor_id = sqlite3_column_int64(st, 0);
        int64_t balance = sqlite3_column_int64(st, 1);
        bool eligible = sqlite3_column_int(st, 2) != 0;
        /* Reported as found: a negative balance gives a negative weight,
         * which the checker must see, not a clamp. */
        if (eligible && out->eligible_stake > 0)
            w->weight_ppm = (int64_t)((stake_wide)balance * STAKE_PPM / out->eligible_stake);
        out->weight_sum_ppm += w->weight_ppm;
    }
    sqlite3_reset(st);
    return rc;
}

static int audit_rounds(stake_ledger *l, struct stake_audit *out)
{
    sqlite3_stmt *st;
    int err = stake_stmt(l, SQL_AUDIT_ROUNDS, &st);
    if (err)
        return err;
    int rc = stake_step(l, st, "auditing the rounds");
    if (rc <= 0)
        return rc < 0 ? rc : stake_fail(l, -EIO, "auditing %s: no round weights", l->path);
    out->round_weight_min_ppm = sqlite3_column_int64(st, 0);
    out->round_weight_max_ppm = sqlite3_column_int64(st, 1);
    out->round_weight_sum_max_ppm = sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    return 0;
}

static int audit_body(stake_ledger *l, void *p)
{
    struct stake_audit *out = p;
    int err = audit_totals(l, out);
    if (!err)
        err = audit_weights(l, out);
    if (!err)
        err = audit_rounds(l, out);
    return err;
}

int stake_audit(stake_ledger *l, struct stake_audit *out)
{
    assert(l != NULL && out != NULL);
    memset(out, 0, sizeof(*out));
    int err = stake_read(l, audit_body, out);
    if (err)
        memset(out, 0, sizeof(*out));
    return err;
}

bool stake_audit_is_ok(const struct stake_audit *a)
{
    int64_t held;
    if (__builtin_add_overflow(a->balances, a->treasury, &held) || held != a->deposits)
        return false;
    if (a->min_balance < 0 || a->balances < 0 || a->treasury < 0)
        return false;
    if (a->weight_sum_ppm < 0 || a->weight_sum_ppm > STAKE_PPM)
        return false;
    for (size_t i = 0; i < a->weight_count; i++)
        if (a->weights[i].weight_ppm < 0 || a->weights[i].weight_ppm > STAKE_PPM)
            return false;
    return a->round_weight_min_ppm >= 0 && a->round_weight_max_ppm <= STAKE_PPM &&
           a->round_weight_sum_max_ppm <= STAKE_PPM;
}
