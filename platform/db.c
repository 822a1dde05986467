/*
 * db.c — one copy of the shop's data: opening a SQLite database (WAL, the
 * chosen synchronous level, foreign keys), creating or migrating its schema,
 * the statement cache, transactions, and the single place where SQLite
 * result codes become negative errno. Depends on SQLite only.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "platform/internal.h"
#include "platform/mutants.h"

/*
 * Version 1. Every table has a primary key (the session extension needs one
 * to mirror a change). No ON DELETE CASCADE: a cascade would be replayed
 * twice when a change is applied to the other copy, so the shop deletes
 * dependent rows itself. Foreign keys are checked at commit (DEFERRABLE
 * INITIALLY DEFERRED) so a change may list its rows in any order. fd_backlog belongs to the mirror and is never
 * part of a change.
 */
static const char schema_v1[] =
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL CHECK (length(name) > 0),"
    " email TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " updated_at INTEGER NOT NULL);"
    "CREATE TABLE products ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL CHECK (length(name) > 0),"
    " description TEXT NOT NULL DEFAULT '',"
    " category TEXT NOT NULL DEFAULT '',"
    " price_cents INTEGER NOT NULL CHECK (price_cents >= 0),"
    " stock INTEGER NOT NULL CHECK (stock >= 0));"
    "CREATE INDEX products_category ON products(category);"
    "CREATE TABLE carts ("
    " user_id INTEGER NOT NULL REFERENCES users(id) DEFERRABLE INITIALLY DEFERRED,"
    " product_id INTEGER NOT NULL REFERENCES products(id) DEFERRABLE INITIALLY DEFERRED,"
    " quantity INTEGER NOT NULL CHECK (quantity > 0),"
    " PRIMARY KEY (user_id, product_id)) WITHOUT ROWID;"
    "CREATE TABLE orders ("
    " id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL REFERENCES users(id) DEFERRABLE INITIALLY DEFERRED,"
    " status TEXT NOT NULL"
    /* ORs, not IN (...): SQLite checks a constant IN list through a temporary
     * b-tree that every INSERT and UPDATE of an order built and dropped */
    "  CHECK (status = 'pending' OR status = 'shipped' OR status = 'delivered'"
    "   OR status = 'cancelled'),"
    " total_cents INTEGER NOT NULL CHECK (total_cents >= 0),"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX orders_user ON orders(user_id, id);"
    "CREATE TABLE order_lines ("
    " order_id INTEGER NOT NULL REFERENCES orders(id) DEFERRABLE INITIALLY DEFERRED,"
    " product_id INTEGER NOT NULL REFERENCES products(id) DEFERRABLE INITIALLY DEFERRED,"
    " quantity INTEGER NOT NULL CHECK (quantity > 0),"
    " unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),"
    " PRIMARY KEY (order_id, product_id)) WITHOUT ROWID;"
    "CREATE INDEX order_lines_product ON order_lines(product_id);"
    "CREATE TABLE fd_backlog ("
    " seq INTEGER PRIMARY KEY,"
    " changeset BLOB NOT NULL,"
    " at_us INTEGER NOT NULL);"
    "PRAGMA user_version = 1;";

/*
 * Version 2: the bookkeeping of asynchronous replication and offline sync,
 * written in the same transaction as the change it describes (never part
 * of a change itself). fd_outbox: this copy's changes to ship, by sequence.
 * fd_position: how far this copy has applied another copy's outbox.
 * fd_sync_queue: one row per changed domain row, for the offline sync job.
 */
static const char schema_v2[] =
    "CREATE TABLE fd_outbox ("
    " seq INTEGER PRIMARY KEY,"
    " change BLOB NOT NULL,"
    " at_us INTEGER NOT NULL);"
    "CREATE TABLE fd_position ("
    " source TEXT PRIMARY KEY,"
    " seq INTEGER NOT NULL,"
    " at_us INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE fd_sync_queue ("
    " id INTEGER PRIMARY KEY,"
    " tbl TEXT NOT NULL,"
    " row_key TEXT NOT NULL,"
    " op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),"
    " state TEXT NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'SYNCED', 'FAILED')),"
    " retries INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " synced_at INTEGER,"
    " last_error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX fd_sync_queue_state ON fd_sync_queue(state, id);"
    "PRAGMA user_version = 2;";

int db_errno(int sqlite_rc)
{
    switch (sqlite_rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_IOERR:
        if (sqlite_rc == SQLITE_IOERR_NOMEM)
            return -ENOMEM;
        return -EIO;
    case SQLITE_CONSTRAINT:
        if (sqlite_rc == SQLITE_CONSTRAINT_UNIQUE || sqlite_rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return -EEXIST;
        if (sqlite_rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return -EPERM;
        return -EINVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_CANTOPEN:
        return -EACCES;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        return -EINVAL;
    default:
        return -EIO;
    }
}

int db_fail(struct db *d, int rc, const char *fmt, ...)
{
    assert(rc < 0);
    if (d->errmsg != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->errmsg, SHOP_ERRMSG_MAX, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int db_fail_sqlite(struct db *d, int sqlite_rc, const char *what)
{
    int rc = db_errno(sqlite_rc);
    if (rc == 0)
        rc = -EIO;
    return db_fail(d, rc, "%s on %s: %s (%s)", what, d->node, platform_strerror(rc),
                   d->conn ? sqlite3_errmsg(d->conn) : sqlite3_errstr(sqlite_rc));
}

sqlite3_stmt *db_stmt(struct db *d, const char *sql)
{
    for (size_t i = 0; i < d->stmt_count; i++) {
        if (d->stmts[i].sql == sql) {
            sqlite3_reset(d->stmts[i].stmt);
            sqlite3_clear_bindings(d->stmts[i].stmt);
            return d->stmts[i].stmt;
        }
    }
    /* The statements are string literals of this library: running out of
     * slots is a programming error, not an operating one. */
    assert(d->stmt_count < DB_STMT_CACHE_MAX);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(d->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        db_fail_sqlite(d, rc, "preparing a statement");
        return NULL;
    }
    d->stmts[d->stmt_count].sql = sql;
    d->stmts[d->stmt_count].stmt = st;
    d->stmt_count++;
    return st;
}

int db_exec(struct db *d, const char *sql)
{
    int rc = sqlite3_exec(d->conn, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "running SQL");
    return 0;
}

int db_step_done(struct db *d, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        sqlite3_reset(st);
        return 0;
    }
    rc = sqlite3_extended_errcode(d->conn);
    int err = db_fail_sqlite(d, rc, what);
    sqlite3_reset(st);
    return err;
}

int db_load_seq(struct db *d)
{
    sqlite3_stmt *st = db_stmt(d, "SELECT coalesce(max(seq), 0) FROM fd_backlog");
    if (st == NULL)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the mirror position");
        sqlite3_reset(st);
        return err;
    }
    d->seq = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

/* Reads user_version, refusing a newer schema before anything is written. */
static int db_schema_version(struct db *d, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->conn, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail_sqlite(d, rc, "reading the schema version");
    rc = sqlite3_step(st);
    int version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (version < 0)
        return db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the schema version");
    if (version > SHOP_SCHEMA_VERSION)
        return db_fail(d, -EPROTO,
                       "%s: schema version %d is newer than this faultdrill (%d); upgrade it",
                       d->path, version, SHOP_SCHEMA_VERSION);
    *out = version;
    return 0;
}

static int db_migrate(struct db *d, int version)
{
    if (version == SHOP_SCHEMA_VERSION)
        return 0;
    int err = db_exec(d, "BEGIN IMMEDIATE");
    if (err)
        return err;
    if (version < 1)
        err = db_exec(d, schema_v1);
    if (!err && version < 2)
        err = db_exec(d, schema_v2);
    if (err) {
        sqlite3_exec(d->conn, "ROLLBACK", NULL, NULL, NULL);
        return err;
    }
    err = db_exec(d, "COMMIT");
    if (err && !sqlite3_get_autocommit(d->conn))
        sqlite3_exec(d->conn, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

int db_open(struct db *d, const struct shop_copy *copy, const struct shop_config *cfg,
            char *errmsg)
{
    memset(d, 0, sizeof(*d));
    d->errmsg = errmsg;
    if (copy->node == NULL || copy->path == NULL || strlen(copy->node) >= sizeof(d->node) ||
        strlen(copy->path) >= sizeof(d->path))
        return db_fail(d, -EINVAL, "a copy needs a node name (< %d bytes) and a path (< %d bytes)",
                       DB_NODE_MAX, DB_PATH_MAX);
    strcpy(d->node, copy->node);
    strcpy(d->path, copy->path);
    int rc = sqlite3_open_v2(copy->path, &d->conn,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             copy->vfs);
    if (rc != SQLITE_OK) {
        int err = db_fail(d, db_errno(rc) ? db_errno(rc) : -EIO, "cannot open %s for %s: %s",
                          copy->path, copy->node,
                          d->conn ? sqlite3_errmsg(d->conn) : sqlite3_errstr(rc));
        sqlite3_close(d->conn);
        d->conn = NULL;
        return err;
    }
    sqlite3_extended_result_codes(d->conn, 1);
    sqlite3_busy_timeout(d->conn, 5000);
    int version = 0;
    int err = db_schema_version(d, &version);
    if (!err)
        err = db_exec(d, "PRAGMA journal_mode = WAL");
    if (!err)
        err = db_exec(d, cfg->sync_full ? "PRAGMA synchronous = FULL"
                                        : "PRAGMA synchronous = NORMAL");
    if (!err)
        err = db_exec(d, "PRAGMA foreign_keys = ON");
    if (!err)
        err = db_migrate(d, version);
    if (!err)
        err = db_load_seq(d);
    if (err) {
        db_close(d, false);
        return err;
    }
    return 0;
}

int db_open_reader(struct db *d, const struct shop_copy *copy, char *errmsg)
{
    memset(d, 0, sizeof(*d));
    d->errmsg = errmsg;
    d->read_only = true;
    if (copy->node == NULL || copy->path == NULL || strlen(copy->node) >= sizeof(d->node) ||
        strlen(copy->path) >= sizeof(d->path))
        return db_fail(d, -EINVAL, "a copy needs a node name (< %d bytes) and a path (< %d bytes)",
                       DB_NODE_MAX, DB_PATH_MAX);
    strcpy(d->node, copy->node);
    strcpy(d->path, copy->path);
    /* Read-write open (WAL readers write the shared-memory index), but
     * query_only: the reader never changes the database. No CREATE: a
     * reader of a missing file is an error, not a new empty shop. */
    int rc = sqlite3_open_v2(copy->path, &d->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             copy->vfs);
    if (rc != SQLITE_OK) {
        int err = rc == SQLITE_CANTOPEN ? -ENOENT : (db_errno(rc) ? db_errno(rc) : -EIO);
        err = db_fail(d, err, "cannot open %s for reading: %s", copy->path,
                      d->conn ? sqlite3_errmsg(d->conn) : sqlite3_errstr(rc));
        sqlite3_close(d->conn);
        d->conn = NULL;
        return err;
    }
    sqlite3_extended_result_codes(d->conn, 1);
    sqlite3_busy_timeout(d->conn, 5000);
    int version = 0;
    int err = db_schema_version(d, &version);
    if (!err && version != SHOP_SCHEMA_VERSION)
        err = db_fail(d, version > SHOP_SCHEMA_VERSION ? -EPROTO : -ENOENT,
                      "%s holds schema version %d, this faultdrill reads version %d", copy->path,
                      version, SHOP_SCHEMA_VERSION);
    if (!err)
        err = db_exec(d, "PRAGMA query_only = ON");
    if (err) {
        db_close(d, false);
        return err;
    }
    return 0;
}

void db_close(struct db *d, bool abandon)
{
    for (size_t i = 0; i < d->stmt_count; i++)
        sqlite3_finalize(d->stmts[i].stmt);
    d->stmt_count = 0;
    change_cache_release(d);
    if (d->conn != NULL) {
        /* A dead node's files refuse writes anyway; skipping the checkpoint
         * on close just keeps SQLite from trying. */
        if (abandon)
            sqlite3_db_config(d->conn, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
        sqlite3_close_v2(d->conn);
        d->conn = NULL;
    }
}

static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";

int db_begin(struct db *d)
{
    sqlite3_stmt *st = db_stmt(d, sql_begin);
    return st == NULL ? -EIO : db_step_done(d, st, "starting a transaction");
}

void db_rollback(struct db *d)
{
    if (d->conn == NULL || sqlite3_get_autocommit(d->conn))
        return;
    sqlite3_stmt *st = db_stmt(d, sql_rollback);
    if (st == NULL || sqlite3_step(st) != SQLITE_DONE)
        sqlite3_exec(d->conn, "ROLLBACK", NULL, NULL, NULL);
    if (st != NULL)
        sqlite3_reset(st);
}

int db_commit(struct db *d)
{
    sqlite3_stmt *st = db_stmt(d, sql_commit);
    if (st == NULL)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        d->pending_unknown = false;
        return 0;
    }
    rc = sqlite3_extended_errcode(d->conn);
    int err = db_fail_sqlite(d, rc, "committing");
    sqlite3_reset(st);
    db_rollback(d);
    if (rc == SQLITE_IOERR_FSYNC) {
        /* The commit frame is in the WAL but not synced: a crash may bring
         * it back, a later successful commit overwrites it. Unknown. */
        d->pending_unknown = true;
        if (mutant_is(MUTANT_DB_FSYNC_ERROR_IGNORED))
            return 0; /* the bug: acknowledged though it may vanish */
        return db_fail(d, -EINPROGRESS, "commit on %s could not be synced; outcome unknown",
                       d->node);
    }
    return err;
}

int db_write(struct db *d, db_body body, void *arg)
{
    int err = db_begin(d);
    if (err)
        return err;
    err = body(d, arg);
    if (err) {
        db_rollback(d);
        return err;
    }
    return db_commit(d);
}

static const char sql_begin_read[] = "BEGIN";

int db_read(struct db *d, db_body body, void *arg)
{
    sqlite3_stmt *st = db_stmt(d, sql_begin_read);
    int err = st == NULL ? -EIO : db_step_done(d, st, "starting a read");
    if (err)
        return err;
    err = body(d, arg);
    db_rollback(d);
    return err;
}

static void digest_value(struct sha256 *c, sqlite3_stmt *st, int col)
{
    uint8_t tag = (uint8_t)sqlite3_column_type(st, col);
    sha256_update(c, &tag, 1);
    switch (tag) {
    case SQLITE_INTEGER: {
        uint64_t v = (uint64_t)sqlite3_column_int64(st, col);
        uint8_t b[8];
        for (int i = 0; i < 8; i++)
            b[i] = (uint8_t)(v >> (8 * i));
        sha256_update(c, b, 8);
        break;
    }
    case SQLITE_FLOAT: {
        double v = sqlite3_column_double(st, col);
        sha256_update(c, &v, sizeof(v));
        break;
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
        const void *p = tag == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, col)
                                           : sqlite3_column_blob(st, col);
        uint32_t n = (uint32_t)sqlite3_column_bytes(st, col);
        sha256_update(c, &n, sizeof(n));
        if (n > 0)
            sha256_update(c, p, n);
        break;
    }
    default:
        break;
    }
}

static int digest_table(struct db *d, struct sha256 *c, const char *table)
{
    char sql[128];
    /* Column 1 (with 2 as the tie-break of the composite keys) is the key. */
    snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY 1, 2", table);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->conn, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail_sqlite(d, rc, "digesting");
    sha256_update(c, table, strlen(table) + 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int cols = sqlite3_column_count(st);
        for (int i = 0; i < cols; i++)
            digest_value(c, st, i);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "digesting");
    return 0;
}

static int digest_body(struct db *d, void *arg)
{
    struct sha256 c;
    sha256_init(&c);
    for (size_t i = 0; i < db_table_count; i++) {
        int err = digest_table(d, &c, db_tables[i].name);
        if (err)
            return err;
    }
    uint8_t out[32];
    sha256_final(&c, out);
    sha256_hex(out, arg);
    return 0;
}

int db_digest(struct db *d, char hex[65])
{
    return db_read(d, digest_body, hex);
}

int db_integrity(struct db *d)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->conn, "PRAGMA integrity_check", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail_sqlite(d, rc, "checking integrity");
    rc = sqlite3_step(st);
    int err = 0;
    if (rc != SQLITE_ROW)
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "checking integrity");
    else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
        err = db_fail(d, -EBADMSG, "integrity check of %s failed: %s", d->node,
                      (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return err;
}
