/*
 * sync.c — offline-first sync, the platform half (platform.h, "Offline
 * sync"): on a local, reading the sync queue into a push with each row's
 * current values and marking the queue after central answered; on central,
 * applying a push idempotently by global id into fd_central_rows; and the
 * read side the checkers and the status use (status, one central row, a
 * row-by-row comparison of a local with central).
 *
 * The host moves pushes and replies between nodes; this file never talks to
 * another node and never decides when to sync (the sim's offline.c and
 * serve do). Its statements are prepared per call, not cached on the
 * connection: the sync job runs about once a second, and the connection's
 * statement cache is sized for the shop's hot path. Depends on db.c and
 * SQLite.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/internal.h"
#include "platform/mutants.h"

#define PUSH_MAGIC            "FDS1"
#define REPLY_MAGIC           "FDR1"
#define SYNC_SQL_MAX          256
#define SYNC_ERROR_TEXT_MAX   200 /* bytes of last_error kept per queue row */
#define SYNC_COMPARE_KEYS_MAX (1u << 22)

enum { OP_INSERT, OP_UPDATE, OP_DELETE };

static const char *const op_names[] = {"insert", "update", "delete"};

static const char central_schema[] = "CREATE TABLE IF NOT EXISTS fd_central_rows ("
                                     " global_id TEXT PRIMARY KEY,"
                                     " origin TEXT NOT NULL,"
                                     " tbl TEXT NOT NULL,"
                                     " row_key TEXT NOT NULL,"
                                     " data BLOB,"
                                     " deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),"
                                     " version INTEGER NOT NULL,"
                                     " synced_at INTEGER NOT NULL) WITHOUT ROWID";

/* One row per SYNCED transition: no UNIQUE on purpose, so that a row synced
 * twice is recorded twice and the accounting can see it. */
static const char marks_schema[] = "CREATE TABLE IF NOT EXISTS fd_sync_marks ("
                                   " queue_id INTEGER NOT NULL,"
                                   " at_us INTEGER NOT NULL)";

/* ---- small helpers ------------------------------------------------------- */

int sync_prepare_copy(struct db *d)
{
    return db_exec(d, marks_schema);
}

static int64_t sync_now(const struct shop_parts *p)
{
    return p->env->now_us != NULL ? p->env->now_us(p->env->ctx) : 0;
}

static int table_of(const char *name)
{
    for (size_t i = 0; i < db_table_count; i++)
        if (strcmp(db_tables[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int op_of(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(op_names[i], name) == 0)
            return i;
    return -1;
}

static enum shop_sync_state state_of(const char *name)
{
    if (name != NULL && strcmp(name, "SYNCED") == 0)
        return SHOP_SYNC_SYNCED;
    if (name != NULL && strcmp(name, "FAILED") == 0)
        return SHOP_SYNC_FAILED;
    return SHOP_SYNC_PENDING;
}

static const char *column_text(sqlite3_stmt *st, int col)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    return t != NULL ? t : "";
}

static int prepare(struct db *d, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(d->conn, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(*st);
        *st = NULL;
        return db_fail_sqlite(d, rc, "preparing a sync statement");
    }
    return 0;
}

/* Steps a statement to its end; 0 or -errno (with the message). */
static int step_done(struct db *d, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return 0;
    return db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), what);
}

static bool has_table(struct db *d, const char *name, int *err)
{
    sqlite3_stmt *st = NULL;
    *err = prepare(d, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1", &st);
    if (*err)
        return false;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        *err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the schema");
    sqlite3_finalize(st);
    return rc == SQLITE_ROW;
}

/* "12" or "12/3" into the key columns of table t. */
static bool parse_key(const struct db_table *t, const char *key, int64_t k[2])
{
    const char *p = key;
    for (int i = 0; i < t->npk; i++) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno != 0)
            return false;
        k[i] = v;
        p = end;
        if (i + 1 < t->npk) {
            if (*p != '/')
                return false;
            p++;
        }
    }
    return *p == '\0';
}

static void key_text(const struct db_table *t, sqlite3_stmt *st, char out[SHOP_SYNC_KEY_MAX])
{
    if (t->npk == 1)
        snprintf(out, SHOP_SYNC_KEY_MAX, "%lld", (long long)sqlite3_column_int64(st, 0));
    else
        snprintf(out, SHOP_SYNC_KEY_MAX, "%lld/%lld", (long long)sqlite3_column_int64(st, 0),
                 (long long)sqlite3_column_int64(st, 1));
}

static int global_id(char out[SHOP_SYNC_ID_MAX], const char *origin, const char *table,
                     const char *key)
{
    int n = snprintf(out, SHOP_SYNC_ID_MAX, "%s:%s:%s", origin, table, key);
    return n > 0 && n < SHOP_SYNC_ID_MAX ? 0 : -E2BIG;
}

/* ---- encoding ------------------------------------------------------------ */

struct buf {
    uint8_t *data;
    size_t len, cap, max;
    int err; /* sticky: -ENOMEM, -E2BIG */
};

static void buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->err)
        return;
    if (b->len + n > b->max) {
        b->err = -E2BIG;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (grown == NULL) {
            b->err = -ENOMEM;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_le(struct buf *b, uint64_t v, int bytes)
{
    uint8_t tmp[8];
    for (int i = 0; i < bytes; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    buf_put(b, tmp, (size_t)bytes);
}

static void buf_text(struct buf *b, const char *t, int len_bytes)
{
    size_t n = strlen(t);
    buf_le(b, n, len_bytes);
    buf_put(b, t, n);
}

/* The row under a SELECT *: u8 columns, then each value with its type. */
static void buf_row(struct buf *b, sqlite3_stmt *st)
{
    int cols = sqlite3_column_count(st);
    buf_le(b, (uint64_t)cols, 1);
    for (int i = 0; i < cols; i++) {
        int type = sqlite3_column_type(st, i);
        buf_le(b, (uint64_t)type, 1);
        if (type == SQLITE_INTEGER) {
            buf_le(b, (uint64_t)sqlite3_column_int64(st, i), 8);
        } else if (type == SQLITE_FLOAT) {
            double v = sqlite3_column_double(st, i);
            uint64_t bits;
            memcpy(&bits, &v, sizeof(bits));
            buf_le(b, bits, 8);
        } else if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
            const void *p = type == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, i)
                                                : sqlite3_column_blob(st, i);
            size_t n = (size_t)sqlite3_column_bytes(st, i);
            buf_le(b, n, 4);
            buf_put(b, p, n);
        }
    }
}

struct reader {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static const uint8_t *rd_take(struct reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint64_t rd_le(struct reader *r, int bytes)
{
    const uint8_t *p = rd_take(r, (size_t)bytes);
    uint64_t v = 0;
    for (int i = bytes - 1; p != NULL && i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A length-prefixed string into out (NUL-terminated); false when too long. */
static bool rd_text(struct reader *r, int len_bytes, char *out, size_t cap)
{
    size_t n = (size_t)rd_le(r, len_bytes);
    const uint8_t *p = rd_take(r, n);
    if (p == NULL || n >= cap || memchr(p, '\0', n) != NULL) {
        r->bad = true;
        return false;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Checks an encoded row's framing; its column count must be the table's. */
static bool rd_row(struct reader *r, const struct db_table *t)
{
    if (rd_le(r, 1) != (uint64_t)t->ncol)
        return false;
    for (int i = 0; i < t->ncol && !r->bad; i++) {
        uint64_t type = rd_le(r, 1);
        if (type == SQLITE_INTEGER || type == SQLITE_FLOAT)
            rd_take(r, 8);
        else if (type == SQLITE_TEXT || type == SQLITE_BLOB)
            rd_take(r, (size_t)rd_le(r, 4));
        else if (type != SQLITE_NULL)
            r->bad = true;
    }
    return !r->bad;
}

/* ---- reading a row's current values -------------------------------------- */

/* One SELECT * by key per table, prepared on first use within one call. */
struct row_reader {
    struct db *d;
    sqlite3_stmt *st[SHOP_SYNC_TABLES_MAX];
};

static void row_reader_release(struct row_reader *rr)
{
    for (size_t i = 0; i < SHOP_SYNC_TABLES_MAX; i++)
        sqlite3_finalize(rr->st[i]);
    memset(rr->st, 0, sizeof(rr->st));
}

/* Steps the row of (table, key): *found says whether it exists; the caller
 * reads the columns, then resets the statement it gets back. */
static int row_lookup(struct row_reader *rr, int table, const char *key, sqlite3_stmt **out,
                      bool *found)
{
    const struct db_table *t = &db_tables[table];
    int64_t k[2] = {0, 0};
    *found = false;
    *out = NULL;
    if (!parse_key(t, key, k))
        return db_fail(rr->d, -EBADMSG, "queue row key '%s' of %s is malformed", key, t->name);
    if (rr->st[table] == NULL) {
        char sql[SYNC_SQL_MAX];
        if (t->npk == 1)
            snprintf(sql, sizeof(sql), "SELECT * FROM %s WHERE %s = ?1", t->name, t->cols[0]);
        else
            snprintf(sql, sizeof(sql), "SELECT * FROM %s WHERE %s = ?1 AND %s = ?2", t->name,
                     t->cols[0], t->cols[1]);
        int err = prepare(rr->d, sql, &rr->st[table]);
        if (err)
            return err;
    }
    sqlite3_stmt *st = rr->st[table];
    sqlite3_reset(st);
    for (int i = 0; i < t->npk; i++)
        sqlite3_bind_int64(st, i + 1, k[i]);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail_sqlite(rr->d, sqlite3_extended_errcode(rr->d->conn), "reading a row");
    *found = rc == SQLITE_ROW;
    *out = st;
    return 0;
}

/* ---- the push (local) ----------------------------------------------------- */

void shop_sync_push_release(struct shop_sync_push *p)
{
    free(p->data);
    memset(p, 0, sizeof(*p));
}

struct pending_ctx {
    const char *origin;
    size_t max;
    bool include_failed;
    struct shop_sync_push *out;
    struct buf b;
    size_t head_len; /* the push's header, before the first entry */
    struct row_reader rr;
};

static int push_entry(struct pending_ctx *c, sqlite3_stmt *q)
{
    struct db *d = c->rr.d;
    int64_t id = sqlite3_column_int64(q, 0);
    const char *tbl = column_text(q, 1), *key = column_text(q, 2);
    int table = table_of(tbl), op = op_of(column_text(q, 3));
    if (table < 0 || op < 0)
        return db_fail(d, -EBADMSG, "queue row %lld names table '%s' op '%s'", (long long)id, tbl,
                       column_text(q, 3));
    char gid[SHOP_SYNC_ID_MAX];
    if (global_id(gid, c->origin, tbl, key) != 0)
        return db_fail(d, -E2BIG, "the global id of queue row %lld is too long", (long long)id);
    sqlite3_stmt *row = NULL;
    bool found = false;
    int err = row_lookup(&c->rr, table, key, &row, &found);
    if (err)
        return err;
    buf_le(&c->b, (uint64_t)id, 8);
    buf_text(&c->b, gid, 2);
    uint8_t head[3] = {(uint8_t)table, (uint8_t)op, found ? 1 : 0};
    buf_put(&c->b, head, 3);
    size_t len_at = c->b.len;
    buf_le(&c->b, 0, 4);
    if (found)
        buf_row(&c->b, row);
    sqlite3_reset(row);
    if (c->b.err)
        return db_fail(d, c->b.err, "building a push: %s", platform_strerror(c->b.err));
    uint64_t row_len = c->b.len - len_at - 4;
    for (int i = 0; i < 4; i++)
        c->b.data[len_at + (size_t)i] = (uint8_t)(row_len >> (8 * i));
    struct shop_sync_push *out = c->out;
    out->ids[out->count++] = id;
    out->retried += sqlite3_column_int64(q, 5) > 0;
    out->failed += state_of(column_text(q, 4)) == SHOP_SYNC_FAILED;
    return 0;
}

static int pending_body(struct db *d, void *arg)
{
    struct pending_ctx *c = arg;
    sqlite3_stmt *q = NULL;
    if (c->rr.d != d) { /* a mirror read from its other copy */
        row_reader_release(&c->rr);
        c->rr.d = d;
    }
    /* a mirror's second attempt (on its other copy) starts the push over */
    c->b.len = c->head_len;
    c->out->count = 0;
    c->out->retried = 0;
    c->out->failed = 0;
    int err = prepare(d,
                      "SELECT id, tbl, row_key, op, state, retries FROM fd_sync_queue"
                      " WHERE state = 'PENDING' OR (?1 AND state = 'FAILED')"
                      " ORDER BY id LIMIT ?2",
                      &q);
    if (err)
        return err;
    sqlite3_bind_int(q, 1, c->include_failed);
    sqlite3_bind_int64(q, 2, (int64_t)c->max);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(q)) == SQLITE_ROW)
        err = push_entry(c, q);
    if (!err && rc != SQLITE_DONE)
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the sync queue");
    sqlite3_finalize(q);
    return err;
}

int shop_sync_pending(shop *local, size_t max, bool include_failed, struct shop_sync_push *out)
{
    memset(out, 0, sizeof(*out));
    struct shop_parts p;
    int err = shop_parts(local, false, &p);
    if (err)
        return err;
    if (max == 0 || max > SHOP_SYNC_PUSH_ROWS_MAX)
        return db_fail(p.db, -EINVAL, "a push holds 1 to %d rows, not %zu", SHOP_SYNC_PUSH_ROWS_MAX,
                       max);
    struct pending_ctx c = {.origin = p.node,
                            .max = max,
                            .include_failed = include_failed,
                            .out = out,
                            .b = {.max = SHOP_SYNC_PUSH_BYTES_MAX},
                            .rr = {.d = p.db}};
    buf_put(&c.b, PUSH_MAGIC, 4);
    buf_le(&c.b, 0, 4);
    buf_text(&c.b, p.node, 2);
    c.head_len = c.b.len;
    err = c.b.err ? c.b.err : shop_parts_read(local, pending_body, &c);
    row_reader_release(&c.rr);
    if (err) {
        free(c.b.data);
        memset(out, 0, sizeof(*out));
        return err;
    }
    for (int i = 0; i < 4; i++)
        c.b.data[4 + i] = (uint8_t)(out->count >> (8 * i));
    out->data = c.b.data;
    out->len = c.b.len;
    return 0;
}

/* ---- applying a push (central) ------------------------------------------- */

struct push_entry {
    int64_t id;
    char gid[SHOP_SYNC_ID_MAX];
    int table, op;
    bool present;
    const uint8_t *row;
    size_t row_len;
};

static bool read_entry(struct reader *r, const char *origin, struct push_entry *e)
{
    e->id = (int64_t)rd_le(r, 8);
    if (!rd_text(r, 2, e->gid, sizeof(e->gid)))
        return false;
    e->table = (int)rd_le(r, 1);
    e->op = (int)rd_le(r, 1);
    e->present = rd_le(r, 1) == 1;
    e->row_len = (size_t)rd_le(r, 4);
    e->row = rd_take(r, e->row_len);
    if (r->bad || e->id <= 0 || e->table < 0 || (size_t)e->table >= db_table_count || e->op > 2)
        return false;
    /* the global id must be origin:table:key, so no push writes another's rows */
    size_t olen = strlen(origin), tlen = strlen(db_tables[e->table].name);
    if (strncmp(e->gid, origin, olen) != 0 || e->gid[olen] != ':' ||
        strncmp(e->gid + olen + 1, db_tables[e->table].name, tlen) != 0 ||
        e->gid[olen + 1 + tlen] != ':')
        return false;
    int64_t k[2];
    if (!parse_key(&db_tables[e->table], e->gid + olen + tlen + 2, k))
        return false;
    struct reader row = {e->row, e->row_len, false};
    if (e->present ? !rd_row(&row, &db_tables[e->table]) || row.left != 0 : e->row_len != 0)
        return false;
    return true;
}

/* Checks the whole push before anything is applied. */
static int push_check(const uint8_t *data, size_t len, const char *origin, uint32_t *count)
{
    struct reader r = {data, len, false};
    const uint8_t *magic = rd_take(&r, 4);
    if (magic == NULL || memcmp(magic, PUSH_MAGIC, 4) != 0)
        return -EPROTO;
    *count = (uint32_t)rd_le(&r, 4);
    char who[SHOP_SYNC_ID_MAX];
    if (*count > SHOP_SYNC_PUSH_ROWS_MAX || !rd_text(&r, 2, who, sizeof(who)) ||
        strcmp(who, origin) != 0)
        return -EPROTO;
    struct push_entry e;
    int64_t prev = 0;
    for (uint32_t i = 0; i < *count; i++) {
        if (!read_entry(&r, origin, &e) || e.id <= prev)
            return -EPROTO;
        prev = e.id;
    }
    return r.left == 0 ? 0 : -EPROTO;
}

static int central_upsert(struct db *d, sqlite3_stmt *st, const char *origin,
                          const struct push_entry *e, int64_t now_us, bool *changed)
{
    size_t olen = strlen(origin), tlen = strlen(db_tables[e->table].name);
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, e->gid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, origin, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, db_tables[e->table].name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, e->gid + olen + tlen + 2, -1, SQLITE_STATIC);
    if (e->present)
        sqlite3_bind_blob(st, 5, e->row, (int)e->row_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int(st, 6, !e->present);
    sqlite3_bind_int64(st, 7, e->id);
    sqlite3_bind_int64(st, 8, now_us);
    int err = step_done(d, st, "applying a sync push");
    *changed = !err && sqlite3_changes(d->conn) > 0;
    return err;
}

static int central_apply_entries(struct db *d, const char *origin, const uint8_t *data, size_t len,
                                 uint32_t count, int64_t now_us, struct shop_sync_result *out)
{
    sqlite3_stmt *st = NULL;
    int err = db_exec(d, central_schema);
    if (!err)
        err = prepare(d,
                      mutant_is(MUTANT_SYNC_CENTRAL_IGNORES_VERSIONS)
                          ? "INSERT INTO fd_central_rows (global_id, origin, tbl, row_key, data,"
                            " deleted, version, synced_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                            " ON CONFLICT (global_id) DO UPDATE SET data = excluded.data,"
                            " deleted = excluded.deleted, version = excluded.version,"
                            " synced_at = excluded.synced_at" /* the bug: any version wins */
                          : "INSERT INTO fd_central_rows (global_id, origin, tbl, row_key, data,"
                            " deleted, version, synced_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                            " ON CONFLICT (global_id) DO UPDATE SET data = excluded.data,"
                            " deleted = excluded.deleted, version = excluded.version,"
                            " synced_at = excluded.synced_at"
                            " WHERE excluded.version > fd_central_rows.version",
                      &st);
    struct reader r = {data, len, false};
    rd_take(&r, 8);
    char who[SHOP_SYNC_ID_MAX];
    rd_text(&r, 2, who, sizeof(who));
    for (uint32_t i = 0; !err && i < count; i++) {
        struct push_entry e;
        bool ok = read_entry(&r, origin, &e), changed = false;
        assert(ok); /* push_check framed it */
        (void)ok;
        err = central_upsert(d, st, origin, &e, now_us, &changed);
        if (!err) {
            out->ids[out->count++] = e.id;
            out->applied += changed;
            out->unchanged += !changed;
        }
    }
    sqlite3_finalize(st);
    return err;
}

int shop_sync_apply_central(shop *central, const char *origin, const void *push, size_t len,
                            struct shop_sync_result *out)
{
    memset(out, 0, sizeof(*out));
    struct shop_parts p;
    int err = shop_parts(central, true, &p);
    if (err)
        return err;
    if (p.mirrored) /* mirror offline mirrors the locals, central stays one copy */
        return db_fail(p.db, -EINVAL, "central is a single copy: it cannot be mirrored");
    uint32_t count = 0;
    if (origin == NULL || push == NULL || push_check(push, len, origin, &count) != 0)
        return db_fail(p.db, -EPROTO, "a malformed sync push from %s",
                       origin != NULL ? origin : "(no origin)");
    err = db_begin(p.db);
    if (!err)
        err = central_apply_entries(p.db, origin, push, len, count, sync_now(&p), out);
    if (err) {
        db_rollback(p.db);
        memset(out, 0, sizeof(*out));
        return err;
    }
    err = db_commit(p.db);
    if (err)
        memset(out, 0, sizeof(*out));
    return err;
}

void shop_sync_result_of_push(const struct shop_sync_push *p, struct shop_sync_result *out)
{
    memset(out, 0, sizeof(*out));
    assert(p->count <= SHOP_SYNC_PUSH_ROWS_MAX);
    out->count = p->count;
    memcpy(out->ids, p->ids, p->count * sizeof(p->ids[0]));
}

size_t shop_sync_reply_encode(const struct shop_sync_result *r,
                              uint8_t buf[SHOP_SYNC_REPLY_BYTES_MAX])
{
    assert(r->count <= SHOP_SYNC_PUSH_ROWS_MAX);
    memcpy(buf, REPLY_MAGIC, 4);
    uint32_t head[3] = {r->count, r->applied, r->unchanged};
    size_t at = 4;
    for (int h = 0; h < 3; h++, at += 4)
        for (int i = 0; i < 4; i++)
            buf[at + (size_t)i] = (uint8_t)(head[h] >> (8 * i));
    for (uint32_t k = 0; k < r->count; k++, at += 8)
        for (int i = 0; i < 8; i++)
            buf[at + (size_t)i] = (uint8_t)((uint64_t)r->ids[k] >> (8 * i));
    return at;
}

int shop_sync_reply_decode(const void *data, size_t len, struct shop_sync_result *out)
{
    memset(out, 0, sizeof(*out));
    struct reader r = {data, len, false};
    const uint8_t *magic = rd_take(&r, 4);
    if (magic == NULL || memcmp(magic, REPLY_MAGIC, 4) != 0)
        return -EPROTO;
    uint32_t count = (uint32_t)rd_le(&r, 4);
    out->applied = (uint32_t)rd_le(&r, 4);
    out->unchanged = (uint32_t)rd_le(&r, 4);
    if (r.bad || count > SHOP_SYNC_PUSH_ROWS_MAX || r.left != (size_t)count * 8) {
        memset(out, 0, sizeof(*out));
        return -EPROTO;
    }
    for (uint32_t k = 0; k < count; k++)
        out->ids[k] = (int64_t)rd_le(&r, 8);
    out->count = count;
    return 0;
}

/* ---- marking (local) ------------------------------------------------------ */

struct mark_ctx {
    const struct shop_sync_result *res;
    int err;
    int budget;
    int64_t now_us;
    struct shop_sync_marked *out;
};

static int mark_synced(struct db *d, struct mark_ctx *c)
{
    sqlite3_stmt *up = NULL, *log = NULL, *has = NULL;
    int err = db_exec(d, marks_schema);
    if (!err)
        err = prepare(d,
                      "UPDATE fd_sync_queue SET state = 'SYNCED', synced_at = ?2,"
                      " last_error = '' WHERE id = ?1 AND state != 'SYNCED'",
                      &up);
    if (!err)
        err = prepare(d, "INSERT INTO fd_sync_marks (queue_id, at_us) VALUES (?1, ?2)", &log);
    if (!err)
        err = prepare(d, "SELECT 1 FROM fd_sync_queue WHERE id = ?1", &has);
    for (uint32_t i = 0; !err && i < c->res->count; i++) {
        int64_t id = c->res->ids[i];
        sqlite3_reset(up);
        sqlite3_bind_int64(up, 1, id);
        sqlite3_bind_int64(up, 2, c->now_us);
        err = step_done(d, up, "marking a row SYNCED");
        if (!err && sqlite3_changes(d->conn) > 0) {
            sqlite3_reset(log);
            sqlite3_bind_int64(log, 1, id);
            sqlite3_bind_int64(log, 2, c->now_us);
            err = step_done(d, log, "recording a SYNCED row");
            c->out->synced++;
        } else if (!err) {
            sqlite3_reset(has);
            sqlite3_bind_int64(has, 1, id);
            int rc = sqlite3_step(has);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the queue");
            c->out->already += rc == SQLITE_ROW;
            c->out->unknown += rc == SQLITE_DONE;
        }
    }
    sqlite3_finalize(up);
    sqlite3_finalize(log);
    sqlite3_finalize(has);
    return err;
}

static int mark_failed(struct db *d, struct mark_ctx *c)
{
    sqlite3_stmt *up = NULL;
    int err = prepare(d,
                      "UPDATE fd_sync_queue SET retries = retries + 1, last_error = ?2,"
                      " state = CASE WHEN retries + 1 >= ?3 THEN 'FAILED' ELSE state END"
                      " WHERE id = ?1 AND state != 'SYNCED' RETURNING retries, state",
                      &up);
    char why[SYNC_ERROR_TEXT_MAX];
    snprintf(why, sizeof(why), "%s", platform_strerror(c->err));
    for (uint32_t i = 0; !err && i < c->res->count; i++) {
        sqlite3_reset(up);
        sqlite3_bind_int64(up, 1, c->res->ids[i]);
        sqlite3_bind_text(up, 2, why, -1, SQLITE_STATIC);
        sqlite3_bind_int(up, 3, c->budget);
        int rc = sqlite3_step(up);
        if (rc == SQLITE_ROW) {
            int64_t retries = sqlite3_column_int64(up, 0);
            bool failed = state_of(column_text(up, 1)) == SHOP_SYNC_FAILED;
            c->out->retried++;
            c->out->failed += failed && retries == c->budget;
            if (retries > c->out->retries_max)
                c->out->retries_max = retries;
            rc = sqlite3_step(up);
        }
        if (rc != SQLITE_DONE)
            err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "counting a retry");
    }
    sqlite3_finalize(up);
    return err;
}

static int mark_body(struct db *d, void *arg)
{
    struct mark_ctx *c = arg;
    /* a mirror may run the body a second time on its other copy (the lead
     * failed): count only the run that commits */
    memset(c->out, 0, sizeof(*c->out));
    if (mutant_is(MUTANT_SYNC_MARKS_UNSENT))
        return mark_synced(d, c); /* the bug: a refused push counts as synced */
    return c->err == 0 ? mark_synced(d, c) : mark_failed(d, c);
}

int shop_sync_mark(shop *local, const struct shop_sync_result *res, int err, int retries_budget,
                   struct shop_sync_marked *out)
{
    struct shop_sync_marked scratch;
    struct mark_ctx c = {
        .res = res,
        .err = err,
        .budget = mutant_is(MUTANT_SYNC_FAILED_EARLY) ? 1 : retries_budget,
        .out = out != NULL ? out : &scratch};
    memset(c.out, 0, sizeof(*c.out));
    struct shop_parts p;
    int rc = shop_parts(local, true, &p);
    if (rc)
        return rc;
    if (res == NULL || res->count > SHOP_SYNC_PUSH_ROWS_MAX || err > 0 || retries_budget < 1)
        return db_fail(p.db, -EINVAL, "shop_sync_mark: a result, err <= 0 and a budget >= 1");
    if (res->count == 0)
        return 0;
    if (err == 0 && platform_crash_point(p.env, p.node, "sync-after-push")) {
        shop_set_crashed(local);
        return db_fail(p.db, -ECANCELED, "node %s crashed at sync-after-push", p.node);
    }
    c.now_us = sync_now(&p);
    rc = shop_parts_write(local, mark_body, &c);
    if (rc)
        memset(c.out, 0, sizeof(*c.out));
    return rc;
}

/* ---- status (local) ------------------------------------------------------- */

static int status_counts(struct db *d, struct shop_sync_status *out)
{
    sqlite3_stmt *st = NULL;
    int err = prepare(d, "SELECT tbl, state, count(*) FROM fd_sync_queue GROUP BY tbl, state", &st);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int table = table_of(column_text(st, 0));
        enum shop_sync_state state = state_of(column_text(st, 1));
        int64_t n = sqlite3_column_int64(st, 2);
        if (table >= 0 && table < SHOP_SYNC_TABLES_MAX)
            out->count[table][state] += n;
        out->total[state] += n;
    }
    if (!err && rc != SQLITE_DONE)
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the sync status");
    sqlite3_finalize(st);
    return err;
}

/* One row of integers from sql into v[0..n-1] (NULL reads as 0). */
static int status_ints(struct db *d, const char *sql, int64_t *v, int n)
{
    sqlite3_stmt *st = NULL;
    int err = prepare(d, sql, &st);
    if (err)
        return err;
    int rc = sqlite3_step(st);
    for (int i = 0; i < n; i++)
        v[i] = rc == SQLITE_ROW ? sqlite3_column_int64(st, i) : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the sync status");
    sqlite3_finalize(st);
    return err;
}

struct status_ctx {
    struct shop_sync_status *out;
    int64_t now_us;
};

static int status_body(struct db *d, void *arg)
{
    struct status_ctx *c = arg;
    struct shop_sync_status *out = c->out;
    memset(out, 0, sizeof(*out)); /* a mirror's second attempt starts over */
    int err = status_counts(d, out);
    int64_t v[3];
    if (!err)
        err = status_ints(d,
                          "SELECT min(created_at), max(retries) FROM fd_sync_queue"
                          " WHERE state != 'SYNCED'",
                          v, 2);
    if (!err) {
        out->oldest_pending_at_us = v[0];
        out->oldest_pending_age_us = v[0] > 0 ? c->now_us - v[0] : 0;
        out->retries_max = v[1];
        err = status_ints(d,
                          "SELECT retries, id FROM fd_sync_queue WHERE state = 'FAILED'"
                          " ORDER BY retries, id LIMIT 1",
                          v, 2);
    }
    if (!err) {
        out->failed_retries_min = v[0];
        out->failed_retries_min_id = v[1];
    }
    bool marks = !err && has_table(d, "fd_sync_marks", &err);
    if (marks)
        err = status_ints(d,
                          "SELECT (SELECT count(*) FROM fd_sync_marks),"
                          " (SELECT count(*) FROM (SELECT queue_id FROM fd_sync_marks"
                          "  GROUP BY queue_id HAVING count(*) > 1)),"
                          " (SELECT min(queue_id) FROM (SELECT queue_id FROM fd_sync_marks"
                          "  GROUP BY queue_id HAVING count(*) > 1))",
                          v, 3);
    if (marks && !err) {
        out->synced_marks = v[0];
        out->synced_twice = v[1];
        out->synced_twice_id = v[2];
    }
    return err;
}

int shop_sync_status(shop *local, struct shop_sync_status *out)
{
    memset(out, 0, sizeof(*out));
    struct shop_parts p;
    int err = shop_parts(local, false, &p);
    if (err)
        return err;
    struct status_ctx c = {.out = out, .now_us = sync_now(&p)};
    err = shop_parts_read(local, status_body, &c);
    if (err)
        memset(out, 0, sizeof(*out));
    return err;
}

struct entry_ctx {
    int64_t id;
    struct shop_sync_entry *out;
};

static int entry_body(struct db *d, void *arg)
{
    struct entry_ctx *c = arg;
    sqlite3_stmt *st = NULL;
    int err = prepare(d,
                      "SELECT tbl, row_key, op, state, retries, created_at"
                      " FROM fd_sync_queue WHERE id = ?1",
                      &st);
    if (err)
        return err;
    sqlite3_bind_int64(st, 1, c->id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        c->out->id = c->id;
        c->out->table = table_of(column_text(st, 0));
        snprintf(c->out->row_key, sizeof(c->out->row_key), "%s", column_text(st, 1));
        snprintf(c->out->op, sizeof(c->out->op), "%s", column_text(st, 2));
        c->out->state = state_of(column_text(st, 3));
        c->out->retries = sqlite3_column_int64(st, 4);
        c->out->created_at_us = sqlite3_column_int64(st, 5);
    } else if (rc == SQLITE_DONE) {
        err = db_fail(d, -ENOENT, "no sync queue row %lld", (long long)c->id);
    } else {
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the sync queue");
    }
    sqlite3_finalize(st);
    return err;
}

int shop_sync_entry_get(shop *local, int64_t id, struct shop_sync_entry *out)
{
    memset(out, 0, sizeof(*out));
    struct shop_parts p;
    int err = shop_parts(local, false, &p);
    if (err)
        return err;
    struct entry_ctx c = {.id = id, .out = out};
    return shop_parts_read(local, entry_body, &c);
}

/* ---- central's side, read ------------------------------------------------- */

struct central_get_ctx {
    const char *gid;
    struct shop_sync_central_row *out;
};

static void digest_blob(const void *data, size_t len, char hex[65])
{
    platform_sha256_hex(data != NULL ? data : "", len, hex);
}

static int central_get_body(struct db *d, void *arg)
{
    struct central_get_ctx *c = arg;
    int err = 0;
    if (!has_table(d, "fd_central_rows", &err))
        return err ? err : db_fail(d, -ENOENT, "central holds nothing yet (no push arrived)");
    sqlite3_stmt *st = NULL;
    err = prepare(d,
                  "SELECT origin, tbl, row_key, data, deleted, version, synced_at"
                  " FROM fd_central_rows WHERE global_id = ?1",
                  &st);
    if (err)
        return err;
    sqlite3_bind_text(st, 1, c->gid, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    struct shop_sync_central_row *o = c->out;
    if (rc == SQLITE_ROW) {
        snprintf(o->origin, sizeof(o->origin), "%s", column_text(st, 0));
        o->table = table_of(column_text(st, 1));
        snprintf(o->row_key, sizeof(o->row_key), "%s", column_text(st, 2));
        o->data_len = (size_t)sqlite3_column_bytes(st, 3);
        digest_blob(sqlite3_column_blob(st, 3), o->data_len, o->data_sha256);
        o->deleted = sqlite3_column_int(st, 4) != 0;
        o->version = sqlite3_column_int64(st, 5);
        o->synced_at_us = sqlite3_column_int64(st, 6);
    } else if (rc == SQLITE_DONE) {
        err = db_fail(d, -ENOENT, "central holds nothing under %s", c->gid);
    } else {
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading central's rows");
    }
    sqlite3_finalize(st);
    return err;
}

int shop_sync_central_get(shop *central, const char *global_id, struct shop_sync_central_row *out)
{
    memset(out, 0, sizeof(*out));
    struct shop_parts p;
    int err = shop_parts(central, false, &p);
    if (err)
        return err;
    if (global_id == NULL)
        return db_fail(p.db, -EINVAL, "a global id is required");
    struct central_get_ctx c = {.gid = global_id, .out = out};
    return db_read(p.db, central_get_body, &c);
}

/* ---- comparing a local with central --------------------------------------- */

/* One key as one side sees it; the three sides are merged by (table, key). */
struct side_key {
    int table;
    char key[SHOP_SYNC_KEY_MAX];
    uint8_t sha[32]; /* the row as a push encodes it (local, central) */
    bool deleted;    /* central: held as deleted */
    int64_t a, b;    /* central: version, synced_at; queue: id, created_at */
    int64_t retries, synced_at;
    enum shop_sync_state state;
    char op[8];
};

struct side {
    struct side_key *k;
    size_t n, cap;
};

static int side_add(struct side *s, struct side_key **out)
{
    if (s->n == SYNC_COMPARE_KEYS_MAX)
        return -E2BIG;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        struct side_key *grown = realloc(s->k, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        s->k = grown;
        s->cap = cap;
    }
    *out = &s->k[s->n++];
    memset(*out, 0, sizeof(**out));
    return 0;
}

static int key_cmp(const void *x, const void *y)
{
    const struct side_key *a = x, *b = y;
    if (a->table != b->table)
        return a->table < b->table ? -1 : 1;
    return strcmp(a->key, b->key);
}

static void sha_of(const void *data, size_t len, uint8_t out[32])
{
    struct sha256 c;
    sha256_init(&c);
    if (len > 0)
        sha256_update(&c, data, len);
    sha256_final(&c, out);
}

/* Every domain row of the local, encoded as a push would carry it. */
static int local_rows(struct db *d, struct side *rows)
{
    struct buf b = {.max = SHOP_SYNC_PUSH_BYTES_MAX};
    int err = 0;
    for (size_t t = 0; !err && t < db_table_count; t++) {
        char sql[SYNC_SQL_MAX];
        snprintf(sql, sizeof(sql), "SELECT * FROM %s", db_tables[t].name);
        sqlite3_stmt *st = NULL;
        err = prepare(d, sql, &st);
        int rc = SQLITE_DONE;
        while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct side_key *k;
            err = side_add(rows, &k);
            if (err)
                break;
            k->table = (int)t;
            key_text(&db_tables[t], st, k->key);
            b.len = 0;
            buf_row(&b, st);
            err = b.err;
            sha_of(b.data, b.len, k->sha);
        }
        if (!err && rc != SQLITE_DONE)
            err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the rows");
        sqlite3_finalize(st);
    }
    free(b.data);
    return err;
}

/* The newest queue row of every key the local queued. */
static int local_queue(struct db *d, struct side *queue)
{
    sqlite3_stmt *st = NULL;
    int err = prepare(d,
                      "SELECT tbl, row_key, max(id), op, state, retries, created_at,"
                      " coalesce(synced_at, 0) FROM fd_sync_queue GROUP BY tbl, row_key",
                      &st);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int table = table_of(column_text(st, 0));
        if (table < 0)
            continue;
        struct side_key *k;
        err = side_add(queue, &k);
        if (err)
            break;
        k->table = table;
        snprintf(k->key, sizeof(k->key), "%s", column_text(st, 1));
        k->a = sqlite3_column_int64(st, 2);
        snprintf(k->op, sizeof(k->op), "%s", column_text(st, 3));
        k->state = state_of(column_text(st, 4));
        k->retries = sqlite3_column_int64(st, 5);
        k->b = sqlite3_column_int64(st, 6);
        k->synced_at = sqlite3_column_int64(st, 7);
    }
    if (!err && rc != SQLITE_DONE)
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the sync queue");
    sqlite3_finalize(st);
    return err;
}

struct local_ctx {
    struct side *rows, *queue;
};

static int local_body(struct db *d, void *arg)
{
    struct local_ctx *c = arg;
    c->rows->n = 0; /* a mirror's second attempt starts over */
    c->queue->n = 0;
    int err = local_rows(d, c->rows);
    return err ? err : local_queue(d, c->queue);
}

struct central_ctx {
    const char *origin;
    struct side *rows;
};

static int central_body(struct db *d, void *arg)
{
    struct central_ctx *c = arg;
    int err = 0;
    if (!has_table(d, "fd_central_rows", &err))
        return err;
    sqlite3_stmt *st = NULL;
    err = prepare(d,
                  "SELECT tbl, row_key, data, deleted, version, synced_at"
                  " FROM fd_central_rows WHERE origin = ?1",
                  &st);
    if (err)
        return err;
    sqlite3_bind_text(st, 1, c->origin, -1, SQLITE_STATIC);
    int rc = SQLITE_DONE;
    while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int table = table_of(column_text(st, 0));
        if (table < 0)
            continue;
        struct side_key *k;
        err = side_add(c->rows, &k);
        if (err)
            break;
        k->table = table;
        snprintf(k->key, sizeof(k->key), "%s", column_text(st, 1));
        sha_of(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), k->sha);
        k->deleted = sqlite3_column_int(st, 3) != 0;
        k->a = sqlite3_column_int64(st, 4);
        k->b = sqlite3_column_int64(st, 5);
    }
    if (!err && rc != SQLITE_DONE)
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading central's rows");
    sqlite3_finalize(st);
    return err;
}

/* The entry for key x in a sorted side, or NULL. */
static const struct side_key *side_find(const struct side *s, const struct side_key *x)
{
    return s->n > 0 ? bsearch(x, s->k, s->n, sizeof(*s->k), key_cmp) : NULL;
}

static void judge_key(const struct side_key *x, const struct side_key *row,
                      const struct side_key *q, const struct side_key *c,
                      struct shop_sync_compare *out)
{
    enum shop_sync_problem p = SHOP_SYNC_MATCH;
    if (row != NULL && c == NULL)
        p = SHOP_SYNC_MISSING;
    else if (row != NULL && (c->deleted || memcmp(row->sha, c->sha, 32) != 0))
        p = SHOP_SYNC_DIFFERS;
    else if (row == NULL && c != NULL && !c->deleted)
        p = SHOP_SYNC_UNDELETED;
    out->rows++;
    if (p == SHOP_SYNC_MATCH) {
        out->matching++;
        return;
    }
    out->mismatched[p]++;
    /* a PENDING or FAILED queue row newer than what central applied will
     * bring central up to date; anything else never will */
    bool lost = q == NULL || q->state == SHOP_SYNC_SYNCED || (c != NULL && q->a <= c->a);
    out->lost += lost;
    out->waiting += !lost;
    struct shop_sync_row r = {.problem = p, .table = x->table, .lost = lost, .queued = q != NULL};
    snprintf(r.row_key, sizeof(r.row_key), "%s", x->key);
    if (q != NULL) {
        r.queue_id = q->a;
        snprintf(r.op, sizeof(r.op), "%s", q->op);
        r.state = q->state;
        r.retries = q->retries;
        r.created_at_us = q->b;
        r.synced_at_us = q->synced_at;
    }
    r.central_version = c != NULL ? c->a : 0;
    r.central_synced_at_us = c != NULL ? c->b : 0;
    /* lost ones first: they are the ones an explanation must name */
    size_t n = out->example_count;
    if (n < SHOP_SYNC_EXAMPLES_MAX) {
        out->examples[out->example_count++] = r;
    } else if (lost) {
        for (size_t i = 0; i < n; i++) {
            if (!out->examples[i].lost) {
                out->examples[i] = r;
                break;
            }
        }
    }
}

static int sort_examples(const void *x, const void *y)
{
    const struct shop_sync_row *a = x, *b = y;
    if (a->lost != b->lost)
        return a->lost ? -1 : 1;
    if (a->table != b->table)
        return a->table < b->table ? -1 : 1;
    return strcmp(a->row_key, b->row_key);
}

/* Walks the union of the three sorted sides. */
static void compare_sides(struct side *rows, struct side *queue, struct side *central,
                          struct shop_sync_compare *out)
{
    struct side *sides[3] = {rows, queue, central};
    for (int s = 0; s < 3; s++) {
        if (sides[s]->n > 0)
            qsort(sides[s]->k, sides[s]->n, sizeof(*sides[s]->k), key_cmp);
    }
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < sides[s]->n; i++) {
            const struct side_key *x = &sides[s]->k[i];
            /* each key once: skip it on a later side when an earlier holds it */
            if ((s >= 1 && side_find(rows, x) != NULL) || (s == 2 && side_find(queue, x) != NULL))
                continue;
            judge_key(x, side_find(rows, x), side_find(queue, x), side_find(central, x), out);
        }
    }
    qsort(out->examples, out->example_count, sizeof(out->examples[0]), sort_examples);
}

int shop_sync_compare(shop *local, shop *central, const char *origin, struct shop_sync_compare *out)
{
    memset(out, 0, sizeof(*out));
    struct shop_parts pl, pc;
    int err = shop_parts(local, false, &pl);
    if (err)
        return err;
    err = shop_parts(central, false, &pc);
    if (err)
        return err;
    if (origin == NULL)
        return db_fail(pl.db, -EINVAL, "an origin is required");
    struct side rows = {0}, queue = {0}, held = {0};
    struct local_ctx lc = {.rows = &rows, .queue = &queue};
    struct central_ctx cc = {.origin = origin, .rows = &held};
    err = shop_parts_read(local, local_body, &lc);
    if (!err) {
        err = shop_parts_read(central, central_body, &cc);
        if (err)
            snprintf(pl.db->errmsg, SHOP_ERRMSG_MAX, "%s", pc.db->errmsg);
    }
    if (err == -E2BIG || err == -ENOMEM)
        db_fail(pl.db, err, "comparing %s with central: %s", origin, platform_strerror(err));
    if (!err)
        compare_sides(&rows, &queue, &held, out);
    free(rows.k);
    free(queue.k);
    free(held.k);
    return err;
}
