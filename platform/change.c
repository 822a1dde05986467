/*
 * change.c — the change record of one write: captured on the copy that runs
 * it, applied strictly to the other copy, inverted to undo it.
 *
 * Capture uses SQLite's preupdate hook, the primitive the session extension
 * is built on. We do not use the session extension itself on this path: it
 * re-reads each table's schema per session and prepares a SELECT per table
 * to build every changeset, which measured ~60 us per write — half the cost
 * of a durable commit (see README, "Mirroring cost"). Apply uses one cached
 * statement per (table, operation, changed columns).
 *
 * Format, one row change after another (all integers little-endian):
 *   u8 table, u8 op (INSERT/DELETE/UPDATE as SQLite numbers them), u32 mask
 *   INSERT: every column's new value;  DELETE: every column's old value;
 *   UPDATE: old value of each key or changed column (mask), then the new
 *           value of each changed column, in column order.
 *   value: u8 type (SQLite's), then i64 / f64 (8 bytes) or u32 length + bytes.
 * Strict: the copies are equal before a change, so a row that is missing,
 * different or already there is divergence (-EBADMSG), never resolved.
 * Depends on db.c and SQLite.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/internal.h"

#define APPLY_SQL_MAX 1024

/* The domain tables and their columns, in schema order (schema_v1 in db.c;
 * check_shop asserts they agree with PRAGMA table_info). Key columns first. */
static const char *const users_cols[] = {"id", "name", "email", "updated_at"};
static const char *const products_cols[] = {"id",          "name",        "description",
                                            "category",    "price_cents", "stock"};
static const char *const carts_cols[] = {"user_id", "product_id", "quantity"};
static const char *const orders_cols[] = {"id", "user_id", "status", "total_cents",
                                          "created_at"};
static const char *const lines_cols[] = {"order_id", "product_id", "quantity",
                                         "unit_price_cents"};

/* The bookkeeping a mirrored copy keeps in step with its pair (schema_v2 in
 * db.c, fd_sync_marks in sync.c): a mirrored node's outbox and sync queue are
 * written inside its mirrored writes, so they are part of the mirror's change
 * (never of a replication change: change_apply refuses them). */
static const char *const outbox_cols[] = {"seq", "change", "at_us"};
static const char *const position_cols[] = {"source", "seq", "at_us"};
static const char *const queue_cols[] = {"id",      "tbl",        "row_key",
                                         "op",      "state",      "retries",
                                         "created_at", "synced_at", "last_error"};
static const char *const marks_cols[] = {"queue_id", "at_us"}; /* rowid table, no key */

const struct db_table db_tables[] = {
    {"users", 4, 1, users_cols},      {"products", 6, 1, products_cols},
    {"carts", 3, 2, carts_cols},      {"orders", 5, 1, orders_cols},
    {"order_lines", 4, 2, lines_cols},
    {"fd_outbox", 3, 1, outbox_cols}, {"fd_position", 3, 1, position_cols},
    {"fd_sync_queue", 9, 1, queue_cols}, {"fd_sync_marks", 2, 0, marks_cols},
};
const size_t db_table_count = 5;
const size_t db_mirrored_table_count = sizeof(db_tables) / sizeof(db_tables[0]);

#define COLS_MAX 12 /* the widest table above */

static int table_index(const char *name)
{
    for (size_t i = 0; i < db_mirrored_table_count; i++)
        if (strcmp(db_tables[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool is_key_or_changed(const struct db_table *t, uint32_t mask, int col)
{
    return col < t->npk || (mask & (1u << col));
}

/* ---- encoding --------------------------------------------------------- */

static void put(struct change_log *log, const void *p, size_t n)
{
    if (log->err)
        return;
    if (log->len + n > CHANGE_BYTES_MAX) {
        log->err = -E2BIG;
        return;
    }
    if (log->len + n > log->cap) {
        size_t cap = log->cap ? log->cap : 512;
        while (cap < log->len + n)
            cap *= 2;
        uint8_t *grown = realloc(log->data, cap);
        if (grown == NULL) {
            log->err = -ENOMEM;
            return;
        }
        log->data = grown;
        log->cap = cap;
    }
    memcpy(log->data + log->len, p, n);
    log->len += n;
}

static void put_u32(struct change_log *log, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(log, b, 4);
}

static void put_u64(struct change_log *log, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(log, b, 8);
}

static void put_value(struct change_log *log, sqlite3_value *v)
{
    uint8_t type = (uint8_t)sqlite3_value_type(v);
    put(log, &type, 1);
    if (type == SQLITE_INTEGER) {
        put_u64(log, (uint64_t)sqlite3_value_int64(v));
    } else if (type == SQLITE_FLOAT) {
        double d = sqlite3_value_double(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        put_u64(log, bits);
    } else if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
        const void *p = type == SQLITE_TEXT ? (const void *)sqlite3_value_text(v)
                                            : sqlite3_value_blob(v);
        uint32_t n = (uint32_t)sqlite3_value_bytes(v);
        put_u32(log, n);
        put(log, p, n);
    }
}

static bool values_equal(sqlite3_value *a, sqlite3_value *b)
{
    int t = sqlite3_value_type(a);
    if (t != sqlite3_value_type(b))
        return false;
    switch (t) {
    case SQLITE_INTEGER:
        return sqlite3_value_int64(a) == sqlite3_value_int64(b);
    case SQLITE_FLOAT:
        return sqlite3_value_double(a) == sqlite3_value_double(b);
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
        int n = sqlite3_value_bytes(a);
        const void *pa = t == SQLITE_TEXT ? (const void *)sqlite3_value_text(a)
                                          : sqlite3_value_blob(a);
        const void *pb = t == SQLITE_TEXT ? (const void *)sqlite3_value_text(b)
                                          : sqlite3_value_blob(b);
        return n == sqlite3_value_bytes(b) && (n == 0 || memcmp(pa, pb, (size_t)n) == 0);
    }
    default:
        return true;
    }
}

static void on_preupdate(void *ctx, sqlite3 *db, int op, const char *schema, const char *name,
                         sqlite3_int64 key1, sqlite3_int64 key2)
{
    (void)key1;
    (void)key2;
    struct change_log *log = ctx;
    int table = table_index(name);
    if (table < 0 || strcmp(schema, "main") != 0)
        return; /* the mirror's own backlog is not part of a change */
    const struct db_table *t = &db_tables[table];
    if (sqlite3_preupdate_count(db) != t->ncol) {
        log->err = -EBADMSG;
        return;
    }
    sqlite3_value *olds[COLS_MAX] = {0}, *news[COLS_MAX] = {0};
    assert(t->ncol <= COLS_MAX);
    uint32_t mask = 0;
    for (int i = 0; i < t->ncol; i++) {
        if (op != SQLITE_INSERT)
            sqlite3_preupdate_old(db, i, &olds[i]);
        if (op != SQLITE_DELETE)
            sqlite3_preupdate_new(db, i, &news[i]);
        if (op == SQLITE_UPDATE && !values_equal(olds[i], news[i]))
            mask |= 1u << i;
    }
    if (op == SQLITE_UPDATE && mask == 0)
        return; /* an UPDATE that changed nothing */
    uint8_t head[2] = {(uint8_t)table, (uint8_t)op};
    put(log, head, 2);
    put_u32(log, mask);
    for (int i = 0; i < t->ncol; i++) {
        if (op == SQLITE_INSERT)
            put_value(log, news[i]);
        else if (op == SQLITE_DELETE || is_key_or_changed(t, mask, i))
            put_value(log, olds[i]);
    }
    for (int i = 0; op == SQLITE_UPDATE && i < t->ncol; i++)
        if (mask & (1u << i))
            put_value(log, news[i]);
    log->rows++;
}

void change_capture_start(struct db *d, struct change_log *log)
{
    log->len = 0;
    log->rows = 0;
    log->err = 0;
    d->capturing = log;
    sqlite3_preupdate_hook(d->conn, on_preupdate, log);
}

int change_capture_stop(struct db *d, struct change_log *log)
{
    sqlite3_preupdate_hook(d->conn, NULL, NULL);
    d->capturing = NULL;
    if (log->err)
        return db_fail(d, log->err, "recording the change: %s", platform_strerror(log->err));
    return 0;
}

void change_log_release(struct change_log *log)
{
    free(log->data);
    memset(log, 0, sizeof(*log));
}

/* ---- decoding --------------------------------------------------------- */

struct reader {
    const uint8_t *p;
    size_t left;
};

struct value_ref {
    int type;
    int64_t i;
    double f;
    const uint8_t *bytes;
    uint32_t n;
    const uint8_t *raw; /* the encoded value, for re-encoding */
    size_t raw_len;
};

static bool take(struct reader *r, size_t n, const uint8_t **out)
{
    if (r->left < n)
        return false;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static uint64_t le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static bool read_value(struct reader *r, struct value_ref *v)
{
    const uint8_t *b;
    v->raw = r->p;
    if (!take(r, 1, &b))
        return false;
    v->type = b[0];
    if (v->type == SQLITE_INTEGER || v->type == SQLITE_FLOAT) {
        if (!take(r, 8, &b))
            return false;
        uint64_t bits = le64(b);
        v->i = (int64_t)bits;
        memcpy(&v->f, &bits, sizeof(v->f));
    } else if (v->type == SQLITE_TEXT || v->type == SQLITE_BLOB) {
        if (!take(r, 4, &b))
            return false;
        v->n = le32(b);
        if (!take(r, v->n, &v->bytes))
            return false;
    } else if (v->type != SQLITE_NULL) {
        return false;
    }
    v->raw_len = (size_t)(r->p - v->raw);
    return true;
}

/* One decoded row change; values are indexed by column. */
struct row_change {
    int table;
    int op;
    uint32_t mask;
    struct value_ref old[COLS_MAX], neu[COLS_MAX];
};

/* Decodes one row change of a table below `tables` (db_table_count: the
 * domain only; db_mirrored_table_count: a mirror's change). */
static bool read_row(struct reader *r, struct row_change *rc, size_t tables)
{
    const uint8_t *b;
    if (!take(r, 6, &b))
        return false;
    rc->table = b[0];
    rc->op = b[1];
    rc->mask = le32(b + 2);
    if ((size_t)rc->table >= tables)
        return false;
    const struct db_table *t = &db_tables[rc->table];
    if (rc->op != SQLITE_INSERT && rc->op != SQLITE_DELETE && rc->op != SQLITE_UPDATE)
        return false;
    if (rc->mask >> t->ncol != 0 || (rc->op == SQLITE_UPDATE) != (rc->mask != 0))
        return false;
    for (int i = 0; i < t->ncol; i++) {
        if (rc->op == SQLITE_INSERT && !read_value(r, &rc->neu[i]))
            return false;
        if (rc->op != SQLITE_INSERT && (rc->op == SQLITE_DELETE || is_key_or_changed(t, rc->mask, i)) &&
            !read_value(r, &rc->old[i]))
            return false;
    }
    for (int i = 0; rc->op == SQLITE_UPDATE && i < t->ncol; i++)
        if ((rc->mask & (1u << i)) && !read_value(r, &rc->neu[i]))
            return false;
    return true;
}

/* ---- applying ---------------------------------------------------------- */

struct sql_buf {
    char text[APPLY_SQL_MAX];
    size_t len;
};

static void sql_add(struct sql_buf *b, const char *text)
{
    size_t n = strlen(text);
    assert(b->len + n < sizeof(b->text)); /* the schema is ours: a bug if it overflows */
    memcpy(b->text + b->len, text, n + 1);
    b->len += n;
}

/* Appends "<sep><column> <op> ?<param>". */
static void sql_term(struct sql_buf *b, const char *sep, const char *col, const char *op,
                     int param)
{
    char num[16];
    snprintf(num, sizeof(num), "?%d", param);
    sql_add(b, sep);
    sql_add(b, col);
    sql_add(b, op);
    sql_add(b, num);
}

/*
 * The SQL of one (table, op, mask). Parameters: INSERT ?1..?n the new row;
 * DELETE ?1..?n the old row; UPDATE ?k the new value of changed column k,
 * ?n+k its old value (and of key columns), all numbered by column.
 */
static void build_sql(const struct db_table *t, int op, uint32_t mask, struct sql_buf *b)
{
    int n = t->ncol;
    b->len = 0;
    b->text[0] = '\0';
    if (op == SQLITE_INSERT) {
        sql_add(b, "INSERT INTO ");
        sql_add(b, t->name);
        for (int i = 0; i < n; i++)
            sql_term(b, i ? ", " : " VALUES (", "", "", i + 1);
        sql_add(b, ")");
        return;
    }
    if (op == SQLITE_DELETE) {
        sql_add(b, "DELETE FROM ");
        sql_add(b, t->name);
        for (int i = 0; i < n; i++)
            sql_term(b, i ? " AND " : " WHERE ", t->cols[i], i < t->npk ? " = " : " IS ", i + 1);
        return;
    }
    sql_add(b, "UPDATE ");
    sql_add(b, t->name);
    const char *sep = " SET ";
    for (int i = 0; i < n; i++) {
        if (mask & (1u << i)) {
            sql_term(b, sep, t->cols[i], " = ", i + 1);
            sep = ", ";
        }
    }
    sep = " WHERE ";
    for (int i = 0; i < n; i++) {
        if (is_key_or_changed(t, mask, i)) {
            sql_term(b, sep, t->cols[i], i < t->npk ? " = " : " IS ", n + i + 1);
            sep = " AND ";
        }
    }
}

/* The cached statement for (table, op, mask); *transient when not cached. */
static sqlite3_stmt *apply_stmt(struct db *d, int table, int op, uint32_t mask, bool *transient)
{
    *transient = false;
    for (size_t i = 0; i < d->apply_count; i++) {
        struct db_apply_slot *sl = &d->apply[i];
        if (sl->table == table && sl->op == op && sl->mask == mask) {
            sqlite3_reset(sl->stmt);
            sqlite3_clear_bindings(sl->stmt);
            return sl->stmt;
        }
    }
    struct sql_buf sql;
    build_sql(&db_tables[table], op, mask, &sql);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(d->conn, sql.text, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        db_fail_sqlite(d, rc, "preparing a change");
        return NULL;
    }
    if (d->apply_count < DB_APPLY_CACHE_MAX)
        d->apply[d->apply_count++] = (struct db_apply_slot){table, op, mask, st};
    else
        *transient = true; /* more shapes than slots: correct, only slower */
    return st;
}

static void bind_ref(sqlite3_stmt *st, int idx, const struct value_ref *v)
{
    switch (v->type) {
    case SQLITE_INTEGER:
        sqlite3_bind_int64(st, idx, v->i);
        break;
    case SQLITE_FLOAT:
        sqlite3_bind_double(st, idx, v->f);
        break;
    case SQLITE_TEXT:
        sqlite3_bind_text(st, idx, (const char *)v->bytes, (int)v->n, SQLITE_STATIC);
        break;
    case SQLITE_BLOB:
        sqlite3_bind_blob(st, idx, v->bytes, (int)v->n, SQLITE_STATIC);
        break;
    default:
        sqlite3_bind_null(st, idx);
        break;
    }
}

static int apply_row(struct db *d, const struct row_change *rc, int64_t seq)
{
    const struct db_table *t = &db_tables[rc->table];
    bool transient;
    sqlite3_stmt *st = apply_stmt(d, rc->table, rc->op, rc->mask, &transient);
    if (st == NULL)
        return -EIO;
    for (int i = 0; i < t->ncol; i++) {
        if (rc->op == SQLITE_INSERT)
            bind_ref(st, i + 1, &rc->neu[i]);
        else if (rc->op == SQLITE_DELETE)
            bind_ref(st, i + 1, &rc->old[i]);
        else if (is_key_or_changed(t, rc->mask, i)) {
            bind_ref(st, t->ncol + i + 1, &rc->old[i]);
            if (rc->mask & (1u << i))
                bind_ref(st, i + 1, &rc->neu[i]);
        }
    }
    int err = 0;
    int r = sqlite3_step(st);
    if (r != SQLITE_DONE) {
        r = sqlite3_extended_errcode(d->conn);
        err = (r & 0xff) == SQLITE_CONSTRAINT ? -EBADMSG : db_fail_sqlite(d, r, "applying");
    } else if (sqlite3_changes(d->conn) != 1) {
        err = -EBADMSG;
    }
    if (transient)
        sqlite3_finalize(st);
    else
        sqlite3_reset(st);
    if (err == -EBADMSG)
        return db_fail(d, err,
                       "copies diverged: change %lld does not apply to table %s on %s "
                       "(row missing, different, or already there)",
                       (long long)seq, t->name, d->node);
    return err;
}

static int apply_rows(struct db *d, const void *data, size_t len, int64_t seq, size_t tables)
{
    struct reader r = {data, len};
    struct row_change rc;
    while (r.left > 0) {
        if (!read_row(&r, &rc, tables))
            return db_fail(d, -EBADMSG, "change %lld is corrupt", (long long)seq);
        int err = apply_row(d, &rc, seq);
        if (err)
            return err;
    }
    return 0;
}

int change_apply(struct db *d, const void *data, size_t len, int64_t seq)
{
    return apply_rows(d, data, len, seq, db_table_count);
}

int change_apply_mirrored(struct db *d, const void *data, size_t len, int64_t seq)
{
    return apply_rows(d, data, len, seq, db_mirrored_table_count);
}

/* ---- inverting --------------------------------------------------------- */

static void put_ref(struct change_log *out, const struct value_ref *v)
{
    put(out, v->raw, v->raw_len);
}

/* The inverse of one row change: INSERT <-> DELETE, UPDATE swaps old and new. */
static void put_inverse(struct change_log *out, const struct row_change *rc)
{
    const struct db_table *t = &db_tables[rc->table];
    int op = rc->op == SQLITE_INSERT ? SQLITE_DELETE
             : rc->op == SQLITE_DELETE ? SQLITE_INSERT
                                       : SQLITE_UPDATE;
    uint8_t head[2] = {(uint8_t)rc->table, (uint8_t)op};
    put(out, head, 2);
    put_u32(out, rc->mask);
    for (int i = 0; i < t->ncol; i++) {
        if (rc->op == SQLITE_INSERT)
            put_ref(out, &rc->neu[i]); /* becomes the old row of a DELETE */
        else if (rc->op == SQLITE_DELETE)
            put_ref(out, &rc->old[i]); /* becomes the new row of an INSERT */
        else if (is_key_or_changed(t, rc->mask, i))
            put_ref(out, (rc->mask & (1u << i)) ? &rc->neu[i] : &rc->old[i]);
    }
    for (int i = 0; rc->op == SQLITE_UPDATE && i < t->ncol; i++)
        if (rc->mask & (1u << i))
            put_ref(out, &rc->old[i]);
    out->rows++;
}

int change_invert(const void *data, size_t len, struct change_log *out)
{
    /* Row changes are undone newest first: find where each one starts. */
    size_t count = 0, cap = 16;
    size_t *starts = malloc(cap * sizeof(*starts));
    if (starts == NULL)
        return -ENOMEM;
    struct reader r = {data, len};
    struct row_change rc;
    while (r.left > 0) {
        if (count == cap) {
            size_t *grown = realloc(starts, 2 * cap * sizeof(*starts));
            if (grown == NULL) {
                free(starts);
                return -ENOMEM;
            }
            starts = grown;
            cap *= 2;
        }
        starts[count++] = len - r.left;
        if (!read_row(&r, &rc, db_mirrored_table_count)) {
            free(starts);
            return -EBADMSG;
        }
    }
    out->len = 0;
    out->rows = 0;
    out->err = 0;
    for (size_t k = count; k-- > 0;) {
        struct reader one = {(const uint8_t *)data + starts[k], len - starts[k]};
        bool ok = read_row(&one, &rc, db_mirrored_table_count);
        assert(ok);
        put_inverse(out, &rc);
    }
    free(starts);
    return out->err;
}

void change_cache_release(struct db *d)
{
    for (size_t i = 0; i < d->apply_count; i++)
        sqlite3_finalize(d->apply[i].stmt);
    d->apply_count = 0;
}

/* ---- row keys ---------------------------------------------------------- */

int change_for_each_row(const void *data, size_t len, change_row_fn fn, void *arg)
{
    struct reader r = {data, len};
    struct row_change rc;
    while (r.left > 0) {
        if (!read_row(&r, &rc, db_table_count))
            return -EBADMSG;
        const struct db_table *t = &db_tables[rc.table];
        const struct value_ref *key = rc.op == SQLITE_INSERT ? rc.neu : rc.old;
        char text[CHANGE_KEY_MAX];
        size_t used = 0;
        for (int i = 0; i < t->npk; i++) {
            if (key[i].type != SQLITE_INTEGER)
                return -EBADMSG; /* every key of the schema is an integer */
            int n = snprintf(text + used, sizeof(text) - used, "%s%lld", i ? "/" : "",
                             (long long)key[i].i);
            if (n < 0 || (size_t)n >= sizeof(text) - used)
                return -E2BIG;
            used += (size_t)n;
        }
        const char *op = rc.op == SQLITE_INSERT ? "insert" : rc.op == SQLITE_DELETE ? "delete"
                                                                                     : "update";
        int err = fn(arg, rc.table, op, text);
        if (err)
            return err;
    }
    return 0;
}

/* ---- integer values, for the read caches ------------------------------- */

/* One integer value a row carries: keys always, every column of an insert or
 * a delete, an update's changed columns (old and new). */
static int row_values(const struct row_change *rc, change_value_fn fn, void *arg)
{
    const struct db_table *t = &db_tables[rc->table];
    for (int i = 0; i < t->ncol; i++) {
        const struct value_ref *v[2] = {NULL, NULL};
        if (rc->op == SQLITE_INSERT) {
            v[0] = &rc->neu[i];
        } else if (rc->op == SQLITE_DELETE) {
            v[0] = &rc->old[i];
        } else if (is_key_or_changed(t, rc->mask, i)) {
            v[0] = &rc->old[i];
            if (rc->mask & (1u << i))
                v[1] = &rc->neu[i];
        }
        for (int k = 0; k < 2; k++) {
            if (v[k] == NULL || v[k]->type != SQLITE_INTEGER)
                continue;
            int err = fn(arg, rc->table, i, v[k]->i);
            if (err)
                return err;
        }
    }
    return 0;
}

int change_for_each_value(const void *data, size_t len, change_value_fn fn, void *arg)
{
    struct reader r = {data, len};
    struct row_change rc;
    while (r.left > 0) {
        if (!read_row(&r, &rc, db_table_count))
            return -EBADMSG;
        int err = row_values(&rc, fn, arg);
        if (err)
            return err;
    }
    return 0;
}
