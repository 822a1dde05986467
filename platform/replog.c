/*
 * replog.c — the replication log of one copy: the outbox a write records its
 * change in (same transaction), batches read from it and shipped by the
 * host, the idempotent apply of a batch on another copy (by sequence, with
 * the position recorded in the same transaction), and the offline sync
 * queue rows a write records per changed row. The host moves the batches;
 * this file never talks to another node. Depends on db.c and change.c.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/internal.h"
#include "platform/mutants.h"

#define BATCH_MAGIC "FDB1"
#define BATCH_HEAD 8        /* magic + u32 count */
#define ENTRY_HEAD 20       /* i64 seq, i64 at_us, u32 len */

/* ---- recording --------------------------------------------------------- */

int replog_record(struct db *d, const struct change_log *log, int64_t now_us, int64_t *seq)
{
    sqlite3_stmt *st = db_stmt(d, "INSERT INTO fd_outbox (change, at_us) VALUES (?1, ?2)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_blob(st, 1, log->data, (int)log->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_us);
    int err = db_step_done(d, st, "recording the change in the outbox");
    /* The last row is never pruned (replog_prune), so max + 1 never reuses
     * a sequence a reader has already seen. */
    if (!err)
        *seq = sqlite3_last_insert_rowid(d->conn);
    return err;
}

struct queue_ctx {
    struct db *d;
    sqlite3_stmt *st;
    int64_t now_us;
};

static int queue_row(void *arg, int table, const char *op, const char *key)
{
    struct queue_ctx *q = arg;
    sqlite3_reset(q->st);
    sqlite3_bind_text(q->st, 1, db_tables[table].name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q->st, 2, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q->st, 3, op, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q->st, 4, q->now_us);
    return db_step_done(q->d, q->st, "queueing a changed row for sync");
}

int replog_queue(struct db *d, const void *change, size_t len, int64_t now_us)
{
    struct queue_ctx q = {
        .d = d,
        .st = db_stmt(d, "INSERT INTO fd_sync_queue (tbl, row_key, op, created_at) "
                         "VALUES (?1, ?2, ?3, ?4)"),
        .now_us = now_us,
    };
    if (q.st == NULL)
        return -EIO;
    int err = change_for_each_row(change, len, queue_row, &q);
    if (err == -EBADMSG || err == -E2BIG)
        return db_fail(d, err, "the change record cannot be queued: %s", platform_strerror(err));
    return err;
}

/* ---- the outbox --------------------------------------------------------- */

int replog_info(struct db *d, struct shop_outbox_info *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = db_stmt(d, "SELECT (SELECT max(seq) FROM fd_outbox),"
                                  " (SELECT at_us FROM fd_outbox ORDER BY seq DESC LIMIT 1),"
                                  " (SELECT min(seq) FROM fd_outbox)");
    if (st == NULL)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the outbox");
        sqlite3_reset(st);
        return err;
    }
    out->head_seq = sqlite3_column_int64(st, 0);
    out->head_at_us = sqlite3_column_int64(st, 1);
    out->oldest_seq = sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    return 0;
}

static void put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int batch_reserve(struct shop_batch *b, size_t more, size_t *cap)
{
    if (b->len + more <= *cap)
        return 0;
    size_t want = *cap ? *cap : 4096;
    while (want < b->len + more)
        want *= 2;
    uint8_t *grown = realloc(b->data, want);
    if (grown == NULL)
        return -ENOMEM;
    b->data = grown;
    *cap = want;
    return 0;
}

static int batch_add(struct shop_batch *b, size_t *cap, int64_t seq, int64_t at_us,
                     const void *change, size_t len)
{
    if (len > CHANGE_BYTES_MAX)
        return -E2BIG;
    int err = batch_reserve(b, ENTRY_HEAD + len, cap);
    if (err)
        return err;
    uint8_t *p = b->data + b->len;
    put_u64le(p, (uint64_t)seq);
    put_u64le(p + 8, (uint64_t)at_us);
    put_u32le(p + 16, (uint32_t)len);
    memcpy(p + ENTRY_HEAD, change, len);
    b->len += ENTRY_HEAD + len;
    b->count++;
    if (b->first_seq == 0)
        b->first_seq = seq;
    b->last_seq = seq;
    put_u32le(b->data + 4, b->count);
    return 0;
}

static int batch_start(struct shop_batch *b, size_t *cap)
{
    memset(b, 0, sizeof(*b));
    *cap = 0;
    int err = batch_reserve(b, BATCH_HEAD, cap);
    if (err)
        return err;
    memcpy(b->data, BATCH_MAGIC, 4);
    put_u32le(b->data + 4, 0);
    b->len = BATCH_HEAD;
    return 0;
}

void shop_batch_release(struct shop_batch *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

int shop_batch_single(int64_t seq, int64_t at_us, const void *change, size_t len,
                      struct shop_batch *out)
{
    size_t cap;
    int err = batch_start(out, &cap);
    if (!err)
        err = batch_add(out, &cap, seq, at_us, change, len);
    if (err)
        shop_batch_release(out);
    return err;
}

int replog_read(struct db *d, int64_t after_seq, size_t max_changes, size_t max_bytes,
                struct shop_batch *out)
{
    size_t cap;
    int err = batch_start(out, &cap);
    if (err)
        return err;
    struct shop_outbox_info info;
    err = replog_info(d, &info);
    if (!err && info.oldest_seq > after_seq + 1 && info.head_seq > after_seq)
        err = db_fail(d, -ERANGE, "the outbox of %s no longer holds change %lld (oldest %lld)",
                      d->node, (long long)(after_seq + 1), (long long)info.oldest_seq);
    sqlite3_stmt *st = err ? NULL
                           : db_stmt(d, "SELECT seq, at_us, change FROM fd_outbox WHERE seq > ?1 "
                                        "ORDER BY seq LIMIT ?2");
    if (!err && st == NULL)
        err = -EIO;
    if (err)
        goto out_release;
    sqlite3_bind_int64(st, 1, after_seq);
    sqlite3_bind_int64(st, 2, (int64_t)max_changes);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        if (out->count > 0 && out->len + ENTRY_HEAD + len > max_bytes)
            break;
        err = batch_add(out, &cap, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                        sqlite3_column_blob(st, 2), len);
        if (err)
            break;
    }
    if (!err && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading the outbox");
    sqlite3_reset(st);
    if (!err)
        return 0;
out_release:
    shop_batch_release(out);
    return err;
}

int replog_prune(struct db *d, int64_t seq)
{
    sqlite3_stmt *st = db_stmt(d, "DELETE FROM fd_outbox WHERE seq <= ?1 AND "
                                  "seq < (SELECT max(seq) FROM fd_outbox)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, seq);
    return db_step_done(d, st, "pruning the outbox");
}

/* ---- applying ----------------------------------------------------------- */

int replog_position(struct db *d, const char *source, int64_t *seq, int64_t *at_us)
{
    sqlite3_stmt *st = db_stmt(d, "SELECT seq, at_us FROM fd_position WHERE source = ?1");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (at_us != NULL)
        *at_us = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading a position");
    return 0;
}

static int set_position(struct db *d, const char *source, int64_t seq, int64_t at_us)
{
    sqlite3_stmt *st = db_stmt(d, "INSERT INTO fd_position (source, seq, at_us) VALUES (?1, ?2, ?3) "
                                  "ON CONFLICT (source) DO UPDATE SET seq = ?2, at_us = ?3");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_int64(st, 3, at_us);
    return db_step_done(d, st, "recording the position");
}

/* A decoded entry of a batch. */
struct batch_entry {
    int64_t seq, at_us;
    const uint8_t *change;
    uint32_t len;
};

static bool batch_next(const uint8_t **p, size_t *left, struct batch_entry *e)
{
    if (*left < ENTRY_HEAD)
        return false;
    e->seq = (int64_t)get_u64le(*p);
    e->at_us = (int64_t)get_u64le(*p + 8);
    e->len = get_u32le(*p + 16);
    if (*left - ENTRY_HEAD < e->len || e->seq <= 0)
        return false;
    e->change = *p + ENTRY_HEAD;
    *p += ENTRY_HEAD + e->len;
    *left -= ENTRY_HEAD + e->len;
    return true;
}

/* Checks the framing of a whole batch before anything is applied. */
static int batch_check(const uint8_t *data, size_t len, uint32_t *count)
{
    if (len < BATCH_HEAD || memcmp(data, BATCH_MAGIC, 4) != 0)
        return -EPROTO;
    *count = get_u32le(data + 4);
    if (*count > SHOP_BATCH_CHANGES_MAX)
        return -EPROTO;
    const uint8_t *p = data + BATCH_HEAD;
    size_t left = len - BATCH_HEAD;
    struct batch_entry e;
    int64_t prev = 0;
    for (uint32_t i = 0; i < *count; i++) {
        if (!batch_next(&p, &left, &e) || e.seq <= prev)
            return -EPROTO;
        prev = e.seq;
    }
    return left == 0 ? 0 : -EPROTO;
}

int replog_batch_for_each(const void *batch, size_t len, replog_change_fn fn, void *arg)
{
    uint32_t count = 0;
    if (batch_check(batch, len, &count) != 0)
        return -EPROTO;
    const uint8_t *p = (const uint8_t *)batch + BATCH_HEAD;
    size_t left = len - BATCH_HEAD;
    struct batch_entry e;
    for (uint32_t i = 0; i < count && batch_next(&p, &left, &e); i++) {
        int err = fn(arg, e.seq, e.at_us, e.change, e.len);
        if (err)
            return err;
    }
    return 0;
}

static int apply_entries(struct db *d, const char *source, const uint8_t *data, size_t len,
                         uint32_t count, struct shop_apply_result *out)
{
    const uint8_t *p = data + BATCH_HEAD;
    size_t left = len - BATCH_HEAD;
    struct batch_entry e;
    for (uint32_t i = 0; i < count; i++) {
        bool ok = batch_next(&p, &left, &e);
        assert(ok); /* batch_check framed it */
        (void)ok;
        bool again = mutant_is(MUTANT_REPLOG_APPLY_TWICE) && e.seq <= out->position;
        if (e.seq <= out->position && !again) {
            out->skipped++;
            continue;
        }
        if (e.seq != out->position + 1 && !again) {
            out->gap = out->applied == 0;
            break; /* the rest waits for the missing change */
        }
        int err = change_apply(d, e.change, e.len, e.seq);
        if (err)
            return err;
        if (e.seq > out->position) {
            out->position = e.seq;
            out->position_at_us = e.at_us;
        }
        out->applied++;
    }
    if (mutant_is(MUTANT_REPLOG_POSITION_SEPARATE))
        return 0; /* the bug: recorded after the commit, in a transaction of its own */
    return out->applied > 0 ? set_position(d, source, out->position, out->position_at_us) : 0;
}

int replog_apply(struct db *d, const char *source, const void *batch, size_t len,
                 struct shop_apply_result *out)
{
    memset(out, 0, sizeof(*out));
    uint32_t count = 0;
    if (batch_check(batch, len, &count) != 0)
        return db_fail(d, -EPROTO, "a malformed batch from %s", source);
    int err = db_begin(d);
    if (err)
        return err;
    err = replog_position(d, source, &out->position, &out->position_at_us);
    int64_t position = out->position, position_at_us = out->position_at_us;
    if (!err)
        err = apply_entries(d, source, batch, len, count, out);
    int64_t failed_seq = out->position + 1;
    if (err) {
        /* rolled back: nothing of the batch counts as applied */
        out->position = position;
        out->position_at_us = position_at_us;
        out->applied = 0;
        out->skipped = 0;
        out->gap = false;
    }
    if (err || out->applied == 0) {
        db_rollback(d);
        if (err == -EBADMSG)
            return db_fail(d, err, "change %lld from %s does not apply on %s: the copies "
                                   "diverged",
                           (long long)failed_seq, source, d->node);
        return err;
    }
    err = db_commit(d);
    if (!err && mutant_is(MUTANT_REPLOG_POSITION_SEPARATE)) {
        err = db_begin(d);
        if (!err)
            err = set_position(d, source, out->position, out->position_at_us);
        if (!err)
            err = db_commit(d);
        else
            db_rollback(d);
        if (err)
            return err; /* the changes stay, their position does not: a resend applies them
                           again */
    }
    if (err == -EINPROGRESS) {
        /* unknown: the position on disk says what happened; the caller resends */
        out->applied = 0;
    } else if (err) {
        out->position = position;
        out->position_at_us = position_at_us;
        out->applied = 0;
    }
    return err;
}

/* ---- whole-state copies (the naive outbox=off) ------------------------- */

int replog_snapshot(struct db *d, void **data, size_t *len)
{
    sqlite3_int64 size = 0;
    unsigned char *image = sqlite3_serialize(d->conn, "main", &size, 0);
    if (image == NULL)
        return db_fail(d, -EIO, "cannot copy the database of %s", d->node);
    *data = malloc((size_t)size);
    if (*data == NULL) {
        sqlite3_free(image);
        return -ENOMEM;
    }
    memcpy(*data, image, (size_t)size);
    sqlite3_free(image);
    *len = (size_t)size;
    /* The image of a WAL database says "WAL" in its header (bytes 18, 19);
     * an in-memory copy must read as a rollback-journal database. */
    if (*len > 19) {
        ((uint8_t *)*data)[18] = 1;
        ((uint8_t *)*data)[19] = 1;
    }
    return 0;
}

int replog_restore(struct db *d, const void *data, size_t len)
{
    sqlite3 *mem = NULL;
    int rc = sqlite3_open_v2(":memory:", &mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL);
    unsigned char *buf = rc == SQLITE_OK ? sqlite3_malloc64(len) : NULL;
    if (buf == NULL) {
        sqlite3_close(mem);
        return -ENOMEM;
    }
    memcpy(buf, data, len);
    rc = sqlite3_deserialize(mem, "main", buf, (sqlite3_int64)len, (sqlite3_int64)len,
                             SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY);
    int err = 0;
    if (rc != SQLITE_OK) {
        err = db_fail(d, -EPROTO, "a malformed database copy for %s", d->node);
    } else {
        sqlite3_backup *b = sqlite3_backup_init(d->conn, "main", mem, "main");
        rc = b != NULL ? sqlite3_backup_step(b, -1) : sqlite3_extended_errcode(d->conn);
        if (b != NULL)
            sqlite3_backup_finish(b);
        if (rc != SQLITE_DONE)
            err = db_fail_sqlite(d, rc, "replacing the database with a copy");
    }
    sqlite3_close(mem);
    return err;
}
