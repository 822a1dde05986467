/*
 * shop.c — the shop's domain: users, products, carts, orders. Each public
 * call validates its arguments, then runs one transaction body on the store
 * (a single copy, or the mirror). Every write is decided inside SQL
 * (conditional UPDATEs, INSERT ... SELECT), never read, modified in C and
 * written back. Depends on db.c and mirror.c.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/internal.h"
#include "platform/mutants.h"

/* The stock a user's cart line read (MUTANT_SHOP_CHECKOUT_LOST_UPDATE). */
struct seen_stock {
    int64_t user_id, product_id, stock;
};
#define SEEN_STOCK_MAX 256

struct shop {
    enum shop_topology topology;
    int pinned; /* copy every read goes to, or -1 */
    struct platform_env env;
    const char *process_node;
    bool crashed;
    bool reader;            /* shop_open_reader: reads only */
    struct {
        bool active;        /* inside shop_group: writes join its transaction */
        struct db *db;      /* the copy the group's transaction runs on */
        int err;            /* sticky storage error of the group */
        shop_group_fn fn;
        void *arg;
    } group;
    bool outbox;            /* single copy: record changes in fd_outbox */
    enum shop_sync_queue sync_queue;
    bool propagate_before_commit;
    struct change_log log;  /* the capture of the write in progress (single copy) */
    int64_t last_seq;       /* outbox sequence of the last write committed */
    struct db single;
    struct mirror mirror;
    struct seen_stock *seen; /* MUTANT_SHOP_CHECKOUT_LOST_UPDATE only (NULL otherwise) */
    char errmsg[SHOP_ERRMSG_MAX];
};

/* ---- store dispatch --------------------------------------------------- */

static int shop_fail(shop *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int shop_fail(shop *s, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
    va_end(ap);
    return rc;
}

static int shop_crashed(shop *s)
{
    return shop_fail(s, -ECANCELED, "node %s has crashed; reopen the shop", s->process_node);
}

/* Errors that say the request was wrong, not the storage: inside a group
 * they undo one write and leave the others be. */
static bool is_domain_error(int err)
{
    return err == -EINVAL || err == -ENOENT || err == -EEXIST || err == -ERANGE ||
           err == -EPERM || err == -ENODATA || err == -E2BIG;
}

static int savepoint(struct db *d, const char *sql)
{
    return db_step_done(d, db_stmt(d, sql), "a group savepoint");
}

/*
 * One write inside a group: its own savepoint on the group's transaction.
 * A refused write is rolled back to the savepoint and its captured row
 * changes are cut off the change record, so the mirror never sees them.
 */
static int group_write(shop *s, db_body body, void *arg)
{
    struct db *d = s->group.db;
    if (s->group.err)
        return shop_fail(s, s->group.err, "an earlier write of this group failed: %s",
                         platform_strerror(s->group.err));
    struct change_log *log = d->capturing;
    size_t mark_len = log != NULL ? log->len : 0;
    uint32_t mark_rows = log != NULL ? log->rows : 0;
    int err = savepoint(d, "SAVEPOINT fd_group_write");
    if (err) {
        s->group.err = err;
        return err;
    }
    err = body(d, arg);
    if (log != NULL && !err && log->err)
        err = log->err;
    if (err) {
        int undo = savepoint(d, "ROLLBACK TO fd_group_write");
        if (log != NULL) {
            log->len = mark_len;
            log->rows = mark_rows;
        }
        if (undo || !is_domain_error(err))
            s->group.err = undo ? undo : err;
    }
    int rel = savepoint(d, "RELEASE fd_group_write");
    if (rel && !s->group.err)
        s->group.err = rel;
    return err ? err : rel;
}

static int64_t shop_now(const shop *s);

static bool is_captured(const shop *s)
{
    return s->outbox || s->sync_queue != SHOP_QUEUE_NONE;
}

/* Inside the write's transaction: what the outbox and the queue record. */
static int record_change(shop *s, struct db *d, int64_t *seq)
{
    int err = 0;
    if (s->outbox)
        err = replog_record(d, &s->log, shop_now(s), seq);
    if (!err && s->sync_queue == SHOP_QUEUE_SAME && !mutant_is(MUTANT_SHOP_QUEUE_AFTER_COMMIT))
        err = replog_queue(d, s->log.data, s->log.len, shop_now(s));
    if (!err && s->propagate_before_commit && s->env.before_commit != NULL)
        s->env.before_commit(s->env.ctx, s->process_node, *seq, s->log.data, s->log.len);
    return err;
}

static bool queue_after_commit(const shop *s)
{
    return s->sync_queue == SHOP_QUEUE_SEPARATE ||
           (s->sync_queue == SHOP_QUEUE_SAME && mutant_is(MUTANT_SHOP_QUEUE_AFTER_COMMIT));
}

static int queue_body(struct db *d, void *arg)
{
    shop *s = arg;
    return replog_queue(d, s->log.data, s->log.len, shop_now(s));
}

/*
 * The naive queue=separate: the queue rows follow in a second transaction
 * (a second mirrored write on a mirror), so a crash in between leaves a
 * committed row nobody will ever sync.
 */
static int queue_separately(shop *s)
{
    if (platform_crash_point(&s->env, s->process_node, "sync-between-row-and-queue"))
        return -ECANCELED;
    if (s->topology == SHOP_MIRROR)
        return mirror_write(&s->mirror, queue_body, s);
    return db_write(&s->single, queue_body, s);
}

/* After a captured write committed: queue=separate's second transaction. */
static int queue_after(shop *s)
{
    if (!queue_after_commit(s) || s->log.len == 0)
        return 0;
    int err = queue_separately(s);
    if (err && err != -ECANCELED) {
        /* The write itself committed: it is acknowledged. Its queue rows
         * are lost, which is exactly the naive mode's flaw. */
        snprintf(s->errmsg, sizeof(s->errmsg),
                 "the change committed but its sync-queue rows could not be written "
                 "(queue=separate): it will never be synced");
        err = 0;
    }
    return err;
}

/* A single copy's write whose change is recorded (outbox, sync queue). */
static int captured_write(shop *s, db_body body, void *arg)
{
    struct db *d = &s->single;
    int err = db_begin(d);
    if (err)
        return err;
    change_capture_start(d, &s->log);
    err = body(d, arg);
    int cap_err = change_capture_stop(d, &s->log);
    err = err ? err : cap_err;
    int64_t seq = 0;
    if (!err && s->log.len > 0)
        err = record_change(s, d, &seq);
    if (err) {
        db_rollback(d);
        return err;
    }
    err = db_commit(d);
    if (err)
        return err;
    if (seq > 0)
        s->last_seq = seq;
    return queue_after(s);
}

/* A mirrored write's recording (mirror_captured_write). */
struct mirror_record {
    shop *s;
    db_body body;
    void *arg;
    int64_t seq; /* the outbox sequence recorded, or 0 */
};

/*
 * Runs on the lead copy inside the mirror's transaction and capture: the
 * body, then what the outbox and the queue record of the body's change. The
 * mirror's capture takes those bookkeeping rows in too, so the other copy
 * applies them in its own transaction (same sequence numbers, same queue
 * ids), a degraded copy replays them on resync, and strict undoes them with
 * the change.
 */
static int mirror_record_body(struct db *d, void *arg)
{
    struct mirror_record *r = arg;
    shop *s = r->s;
    int err = r->body(d, r->arg);
    struct change_log *cap = d->capturing;
    if (err || cap == NULL || cap->err || cap->len == 0)
        return err;
    /* The domain change alone (the outbox row must not hold itself): a
     * copy, since recording grows the capture's buffer. */
    s->log.len = 0;
    s->log.rows = cap->rows;
    if (s->log.cap < cap->len) {
        uint8_t *grown = realloc(s->log.data, cap->len);
        if (grown == NULL)
            return db_fail(d, -ENOMEM, "out of memory copying a change");
        s->log.data = grown;
        s->log.cap = cap->len;
    }
    memcpy(s->log.data, cap->data, cap->len);
    s->log.len = cap->len;
    return record_change(s, d, &r->seq);
}

/* A mirrored shop's write whose change is recorded (outbox, sync queue). */
static int mirror_captured_write(shop *s, db_body body, void *arg)
{
    struct mirror_record r = {.s = s, .body = body, .arg = arg};
    s->log.len = 0;
    int err = mirror_write(&s->mirror, mirror_record_body, &r);
    if (err)
        return err;
    if (r.seq > 0)
        s->last_seq = r.seq;
    return queue_after(s);
}

static int shop_write(shop *s, db_body body, void *arg)
{
    if (s->crashed)
        return shop_crashed(s);
    if (s->reader)
        return shop_fail(s, -EROFS, "this handle only reads");
    if (s->group.active)
        return group_write(s, body, arg);
    s->errmsg[0] = '\0';
    int err;
    if (s->topology == SHOP_MIRROR && is_captured(s))
        err = mirror_captured_write(s, body, arg);
    else if (s->topology == SHOP_MIRROR)
        err = mirror_write(&s->mirror, body, arg);
    else
        err = is_captured(s) ? captured_write(s, body, arg) : db_write(&s->single, body, arg);
    if (!err && s->topology == SHOP_MIRROR && !s->outbox)
        s->last_seq = s->mirror.copy[s->mirror.lead].seq; /* the pair's sequence */
    if (err == -ECANCELED) {
        s->crashed = true;
        s->mirror.crashed = true;
    }
    return err;
}

static int shop_read(shop *s, db_body body, void *arg)
{
    if (s->crashed)
        return shop_crashed(s);
    if (s->group.active)
        return body(s->group.db, arg); /* inside the group's transaction */
    s->errmsg[0] = '\0';
    if (s->pinned >= 0)
        return db_read(s->topology == SHOP_MIRROR ? &s->mirror.copy[s->pinned] : &s->single,
                       body, arg);
    return s->topology == SHOP_MIRROR ? mirror_read(&s->mirror, body, arg)
                                      : db_read(&s->single, body, arg);
}

static int64_t shop_now(const shop *s)
{
    return s->env.now_us != NULL ? s->env.now_us(s->env.ctx) : 0;
}

/* ---- lifecycle -------------------------------------------------------- */

int shop_open(const struct shop_config *cfg, const struct platform_env *env, shop **out,
              char errmsg[SHOP_ERRMSG_MAX])
{
    char scratch[SHOP_ERRMSG_MAX];
    char *msg = errmsg != NULL ? errmsg : scratch;
    *out = NULL;
    msg[0] = '\0';
    if (cfg == NULL || env == NULL || cfg->primary.node == NULL ||
        (cfg->topology != SHOP_SINGLE && cfg->topology != SHOP_MIRROR)) {
        snprintf(msg, SHOP_ERRMSG_MAX, "shop_open: a topology and a primary copy are required");
        return -EINVAL;
    }
    shop *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(msg, SHOP_ERRMSG_MAX, "out of memory");
        return -ENOMEM;
    }
    s->topology = cfg->topology;
    s->outbox = cfg->outbox || cfg->propagate_before_commit;
    s->sync_queue = cfg->sync_queue;
    s->propagate_before_commit = cfg->propagate_before_commit;
    s->pinned = -1;
    s->env = *env;
    s->process_node = cfg->primary.node;
    int err = cfg->topology == SHOP_MIRROR ? mirror_open(&s->mirror, cfg, &s->env, s->errmsg)
                                           : db_open(&s->single, &cfg->primary, cfg, s->errmsg);
    if (err == -ECANCELED) {
        /* Recovery itself hit a crash point: the node is dead again. */
        snprintf(msg, SHOP_ERRMSG_MAX, "%s", s->errmsg);
        mirror_close(&s->mirror, true);
        free(s);
        return err;
    }
    if (err) {
        snprintf(msg, SHOP_ERRMSG_MAX, "%s", s->errmsg);
        free(s);
        return err;
    }
    *out = s;
    return 0;
}

int shop_open_reader(const struct shop_copy *copy, const struct platform_env *env, shop **out,
                     char errmsg[SHOP_ERRMSG_MAX])
{
    char scratch[SHOP_ERRMSG_MAX];
    char *msg = errmsg != NULL ? errmsg : scratch;
    *out = NULL;
    msg[0] = '\0';
    if (copy == NULL || env == NULL || copy->node == NULL || copy->path == NULL) {
        snprintf(msg, SHOP_ERRMSG_MAX, "shop_open_reader: a copy with a node and a path is required");
        return -EINVAL;
    }
    shop *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(msg, SHOP_ERRMSG_MAX, "out of memory");
        return -ENOMEM;
    }
    s->topology = SHOP_SINGLE;
    s->reader = true;
    s->pinned = -1;
    s->env = *env;
    s->process_node = copy->node;
    int err = db_open_reader(&s->single, copy, s->errmsg);
    if (err) {
        snprintf(msg, SHOP_ERRMSG_MAX, "%s", s->errmsg);
        free(s);
        return err;
    }
    *out = s;
    return 0;
}

static int group_body(struct db *d, void *arg)
{
    shop *s = arg;
    s->group.active = true;
    s->group.db = d;
    s->group.err = 0;
    int rc = s->group.fn(s, s->group.arg);
    s->group.active = false;
    s->group.db = NULL;
    if (rc < 0)
        return rc;
    return s->group.err;
}

int shop_group(shop *s, shop_group_fn fn, void *arg)
{
    assert(fn != NULL);
    if (s->group.active || s->group.fn != NULL)
        return shop_fail(s, -EBUSY, "groups do not nest");
    s->group.fn = fn;
    s->group.arg = arg;
    int err = shop_write(s, group_body, s);
    s->group.fn = NULL;
    s->group.arg = NULL;
    return err;
}

static void shop_release(shop *s, bool abandon)
{
    if (s == NULL)
        return;
    if (s->topology == SHOP_MIRROR)
        mirror_close(&s->mirror, abandon || s->crashed);
    else
        db_close(&s->single, abandon || s->crashed);
    change_log_release(&s->log);
    free(s->seen);
    free(s);
}

void shop_close(shop *s)
{
    shop_release(s, false);
}

void shop_abandon(shop *s)
{
    shop_release(s, true);
}

const char *shop_errmsg(const shop *s)
{
    return s->errmsg;
}

/* ---- validation ------------------------------------------------------- */

static bool is_text_ok(const char *t, size_t max, bool allow_empty)
{
    if (t == NULL)
        return false;
    size_t n = strnlen(t, max + 1);
    if (n > max || (!allow_empty && n == 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] < 0x20 && t[i] != '\t' && t[i] != '\n')
            return false;
    return true;
}

static bool is_email_ok(const char *e)
{
    if (!is_text_ok(e, SHOP_EMAIL_MAX, false))
        return false;
    const char *at = strchr(e, '@');
    if (at == NULL || at == e || at[1] == '\0' || strchr(at + 1, '@') != NULL)
        return false;
    for (const char *p = e; *p; p++)
        if (*p == ' ' || *p == '\t' || *p == '\n')
            return false;
    return true;
}

static int check_product(shop *s, const struct shop_product *p)
{
    if (p == NULL)
        return shop_fail(s, -EINVAL, "a product is required");
    if (!is_text_ok(p->name, SHOP_NAME_MAX, false))
        return shop_fail(s, -EINVAL, "a product needs a name of 1 to %d bytes", SHOP_NAME_MAX);
    if (!is_text_ok(p->description, SHOP_TEXT_MAX, true) ||
        !is_text_ok(p->category, SHOP_CATEGORY_MAX, true))
        return shop_fail(s, -EINVAL, "description or category too long or not text");
    if (p->price_cents < 0 || p->price_cents > SHOP_PRICE_MAX)
        return shop_fail(s, -EINVAL, "price must be 0 to %d cents, not %lld", SHOP_PRICE_MAX,
                         (long long)p->price_cents);
    if (p->stock < 0)
        return shop_fail(s, -EINVAL, "stock cannot be negative (%lld)", (long long)p->stock);
    return 0;
}

static int check_qty(shop *s, int64_t q)
{
    if (q <= 0 || q > SHOP_QTY_MAX)
        return shop_fail(s, -EINVAL, "quantity must be 1 to %d, not %lld", SHOP_QTY_MAX,
                         (long long)q);
    return 0;
}

/* ---- small statement helpers ------------------------------------------ */

/* A text column into dst, cut to cap - 1 bytes (no printf: lists copy
 * three of these per row). */
static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    assert(cap > 0);
    const char *t = (const char *)sqlite3_column_text(st, col);
    size_t n = t != NULL ? (size_t)sqlite3_column_bytes(st, col) : 0;
    n = n < cap - 1 ? n : cap - 1;
    if (n > 0)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

/* Steps a statement returning one integer; *found tells whether a row came. */
static int step_int(struct db *d, sqlite3_stmt *st, int64_t *value, bool *found)
{
    *found = false;
    if (st == NULL)
        return -EIO; /* db_stmt said why */
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *value = sqlite3_column_int64(st, 0);
    int err = rc == SQLITE_ROW || rc == SQLITE_DONE
                  ? 0
                  : db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading");
    sqlite3_reset(st);
    return err;
}

static int exists(struct db *d, const char *sql, int64_t id, bool *found)
{
    sqlite3_stmt *st = db_stmt(d, sql);
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    int64_t v;
    return step_int(d, st, &v, found);
}

static int require_user(struct db *d, int64_t user_id)
{
    bool found;
    int err = exists(d, "SELECT 1 FROM users WHERE id = ?", user_id, &found);
    if (!err && !found)
        err = db_fail(d, -ENOENT, "no user with id %lld", (long long)user_id);
    return err;
}

/* ---- users ------------------------------------------------------------ */

struct user_args {
    shop *s;
    const char *name, *email, *new_email;
    int64_t id;
    struct shop_user *out;
};

static int user_create_body(struct db *d, void *arg)
{
    struct user_args *a = arg;
    sqlite3_stmt *st =
        db_stmt(d, "INSERT INTO users (name, email, updated_at) VALUES (?, ?, ?)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, shop_now(a->s));
    int err = db_step_done(d, st, "creating a user");
    if (err == -EEXIST)
        return db_fail(d, err, "a user with email %s already exists", a->email);
    a->id = sqlite3_last_insert_rowid(d->conn);
    return err;
}

int64_t shop_user_create(shop *s, const char *name, const char *email)
{
    if (!is_text_ok(name, SHOP_NAME_MAX, false))
        return shop_fail(s, -EINVAL, "a user needs a name of 1 to %d bytes", SHOP_NAME_MAX);
    if (!is_email_ok(email))
        return shop_fail(s, -EINVAL, "'%.64s' is not an email address", email ? email : "");
    struct user_args a = {.s = s, .name = name, .email = email};
    /* the bug: a users change bypasses the outbox and the sync queue */
    int err = mutant_is(MUTANT_SHOP_OUTBOX_SKIPS_USERS) && is_captured(s) &&
                          s->topology == SHOP_SINGLE
                  ? db_write(&s->single, user_create_body, &a)
                  : shop_write(s, user_create_body, &a);
    return err ? err : a.id;
}

static int user_update_body(struct db *d, void *arg)
{
    struct user_args *a = arg;
    sqlite3_stmt *st = db_stmt(d, "UPDATE users SET name = coalesce(?, name), "
                                  "email = coalesce(?, email), updated_at = ? WHERE email = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, a->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->new_email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, shop_now(a->s));
    sqlite3_bind_text(st, 4, a->email, -1, SQLITE_STATIC);
    int err = db_step_done(d, st, "updating a user");
    if (err == -EEXIST)
        return db_fail(d, err, "a user with email %s already exists", a->new_email);
    if (!err && sqlite3_changes(d->conn) == 0)
        return db_fail(d, -ENOENT, "no user with email %s", a->email);
    return err;
}

int shop_user_update(shop *s, const char *email, const char *name, const char *new_email)
{
    if (!is_email_ok(email))
        return shop_fail(s, -EINVAL, "'%.64s' is not an email address", email ? email : "");
    if (name != NULL && !is_text_ok(name, SHOP_NAME_MAX, false))
        return shop_fail(s, -EINVAL, "a user needs a name of 1 to %d bytes", SHOP_NAME_MAX);
    if (new_email != NULL && !is_email_ok(new_email))
        return shop_fail(s, -EINVAL, "'%.64s' is not an email address", new_email);
    struct user_args a = {.s = s, .name = name, .email = email, .new_email = new_email};
    if (mutant_is(MUTANT_SHOP_OUTBOX_SKIPS_USERS) && is_captured(s) && s->topology == SHOP_SINGLE)
        return db_write(&s->single, user_update_body, &a);
    return shop_write(s, user_update_body, &a);
}

static int user_get_body(struct db *d, void *arg)
{
    struct user_args *a = arg;
    sqlite3_stmt *st =
        a->email != NULL
            ? db_stmt(d, "SELECT id, name, email, updated_at FROM users WHERE email = ?")
            : db_stmt(d, "SELECT id, name, email, updated_at FROM users WHERE id = ?");
    if (st == NULL)
        return -EIO;
    if (a->email != NULL)
        sqlite3_bind_text(st, 1, a->email, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, a->id);
    int rc = sqlite3_step(st);
    int err = 0;
    if (rc == SQLITE_ROW) {
        a->out->id = sqlite3_column_int64(st, 0);
        copy_text(a->out->name, sizeof(a->out->name), st, 1);
        copy_text(a->out->email, sizeof(a->out->email), st, 2);
        a->out->updated_at_us = sqlite3_column_int64(st, 3);
    } else if (rc == SQLITE_DONE) {
        err = a->email ? db_fail(d, -ENOENT, "no user with email %s", a->email)
                       : db_fail(d, -ENOENT, "no user with id %lld", (long long)a->id);
    } else {
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading a user");
    }
    sqlite3_reset(st);
    return err;
}

int shop_user_get(shop *s, int64_t id, struct shop_user *out)
{
    struct user_args a = {.s = s, .id = id, .out = out};
    return shop_read(s, user_get_body, &a);
}

int shop_user_get_by_email(shop *s, const char *email, struct shop_user *out)
{
    if (email == NULL)
        return shop_fail(s, -EINVAL, "an email is required");
    struct user_args a = {.s = s, .email = email, .out = out};
    return shop_read(s, user_get_body, &a);
}

/* ---- products --------------------------------------------------------- */

struct product_args {
    const struct shop_product *in;
    struct shop_product *out;
    const struct shop_product_filter *filter;
    size_t max;
    int64_t id;
    int count;
};

static int product_create_body(struct db *d, void *arg)
{
    struct product_args *a = arg;
    sqlite3_stmt *st = db_stmt(d, "INSERT INTO products (name, description, category, "
                                  "price_cents, stock) VALUES (?, ?, ?, ?, ?)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, a->in->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->in->description, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->in->category, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, a->in->price_cents);
    sqlite3_bind_int64(st, 5, a->in->stock);
    int err = db_step_done(d, st, "creating a product");
    a->id = sqlite3_last_insert_rowid(d->conn);
    return err;
}

int64_t shop_product_create(shop *s, const struct shop_product *p)
{
    int err = check_product(s, p);
    if (err)
        return err;
    struct product_args a = {.in = p};
    err = shop_write(s, product_create_body, &a);
    return err ? err : a.id;
}

static int product_update_body(struct db *d, void *arg)
{
    struct product_args *a = arg;
    sqlite3_stmt *st = db_stmt(d, "UPDATE products SET name = ?, description = ?, category = ?, "
                                  "price_cents = ?, stock = ? WHERE id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, a->in->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, a->in->description, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, a->in->category, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, a->in->price_cents);
    sqlite3_bind_int64(st, 5, a->in->stock);
    sqlite3_bind_int64(st, 6, a->in->id);
    int err = db_step_done(d, st, "updating a product");
    if (!err && sqlite3_changes(d->conn) == 0)
        return db_fail(d, -ENOENT, "no product with id %lld", (long long)a->in->id);
    return err;
}

int shop_product_update(shop *s, const struct shop_product *p)
{
    int err = check_product(s, p);
    if (err)
        return err;
    struct product_args a = {.in = p};
    return shop_write(s, product_update_body, &a);
}

static int product_delete_body(struct db *d, void *arg)
{
    struct product_args *a = arg;
    bool found;
    int err = exists(d, "SELECT 1 FROM order_lines WHERE product_id = ? LIMIT 1", a->id, &found);
    if (err)
        return err;
    if (found)
        return db_fail(d, -EPERM, "product %lld appears in orders and cannot be deleted",
                       (long long)a->id);
    sqlite3_stmt *st = db_stmt(d, "DELETE FROM carts WHERE product_id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->id);
    err = db_step_done(d, st, "removing a product from carts");
    if (err)
        return err;
    st = db_stmt(d, "DELETE FROM products WHERE id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->id);
    err = db_step_done(d, st, "deleting a product");
    if (!err && sqlite3_changes(d->conn) == 0)
        return db_fail(d, -ENOENT, "no product with id %lld", (long long)a->id);
    return err;
}

int shop_product_delete(shop *s, int64_t id)
{
    struct product_args a = {.id = id};
    return shop_write(s, product_delete_body, &a);
}

static void read_product(sqlite3_stmt *st, struct shop_product *p)
{
    p->id = sqlite3_column_int64(st, 0);
    copy_text(p->name, sizeof(p->name), st, 1);
    copy_text(p->description, sizeof(p->description), st, 2);
    copy_text(p->category, sizeof(p->category), st, 3);
    p->price_cents = sqlite3_column_int64(st, 4);
    p->stock = sqlite3_column_int64(st, 5);
}

static int product_get_body(struct db *d, void *arg)
{
    struct product_args *a = arg;
    sqlite3_stmt *st = db_stmt(d, "SELECT id, name, description, category, price_cents, stock "
                                  "FROM products WHERE id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->id);
    int rc = sqlite3_step(st);
    int err = 0;
    if (rc == SQLITE_ROW)
        read_product(st, a->out);
    else if (rc == SQLITE_DONE)
        err = db_fail(d, -ENOENT, "no product with id %lld", (long long)a->id);
    else
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading a product");
    sqlite3_reset(st);
    return err;
}

int shop_product_get(shop *s, int64_t id, struct shop_product *out)
{
    struct product_args a = {.id = id, .out = out};
    return shop_read(s, product_get_body, &a);
}

/* Binds a filter's parameters 1..3 (as both product statements name them). */
static void bind_product_filter(sqlite3_stmt *st, const struct shop_product_filter *f)
{
    if (f != NULL && f->category != NULL)
        sqlite3_bind_text(st, 1, f->category, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, f != NULL && f->in_stock_only);
    if (f != NULL && f->query != NULL && f->query[0] != '\0')
        sqlite3_bind_text(st, 3, f->query, -1, SQLITE_STATIC);
}

static int product_list_body(struct db *d, void *arg)
{
    struct product_args *a = arg;
    const struct shop_product_filter *f = a->filter;
    sqlite3_stmt *st = db_stmt(
        d, "SELECT id, name, description, category, price_cents, stock FROM products"
           " WHERE (?1 IS NULL OR category = ?1) AND (?2 = 0 OR stock > 0)"
           " AND (?3 IS NULL OR instr(lower(name), lower(?3)) > 0"
           "      OR instr(lower(description), lower(?3)) > 0)"
           " ORDER BY id");
    if (st == NULL)
        return -EIO;
    bind_product_filter(st, f);
    int rc;
    a->count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((size_t)a->count < a->max)
            read_product(st, &a->out[a->count]);
        a->count++;
    }
    int err = rc == SQLITE_DONE
                  ? 0
                  : db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "listing products");
    sqlite3_reset(st);
    return err;
}

static int product_page_body(struct db *d, void *arg)
{
    struct product_args *a = arg;
    sqlite3_stmt *st = db_stmt(
        d, "SELECT id, name, description, category, price_cents, stock FROM products"
           " WHERE id > ?4 AND (?1 IS NULL OR category = ?1) AND (?2 = 0 OR stock > 0)"
           " AND (?3 IS NULL OR instr(lower(name), lower(?3)) > 0"
           "      OR instr(lower(description), lower(?3)) > 0)"
           " ORDER BY id LIMIT ?5");
    if (st == NULL)
        return -EIO;
    bind_product_filter(st, a->filter);
    sqlite3_bind_int64(st, 4, a->id);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)a->max);
    int rc;
    a->count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (size_t)a->count < a->max)
        read_product(st, &a->out[a->count++]);
    int err = rc == SQLITE_DONE || rc == SQLITE_ROW
                  ? 0
                  : db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "listing products");
    sqlite3_reset(st);
    return err;
}

int shop_product_page(shop *s, const struct shop_product_filter *filter, int64_t after_id,
                      struct shop_product *out, size_t max)
{
    if (out == NULL || max == 0 || max > SHOP_PAGE_MAX)
        return shop_fail(s, -EINVAL, "a page holds 1 to %d products, not %zu", SHOP_PAGE_MAX,
                         out == NULL ? (size_t)0 : max);
    struct product_args a = {.filter = filter, .out = out, .max = max, .id = after_id};
    int err = shop_read(s, product_page_body, &a);
    return err ? err : a.count;
}

int shop_product_list(shop *s, const struct shop_product_filter *filter, struct shop_product *out,
                      size_t max)
{
    if (out == NULL && max > 0)
        return shop_fail(s, -EINVAL, "no buffer for %zu products", max);
    struct product_args a = {.filter = filter, .out = out, .max = max};
    int err = shop_read(s, product_list_body, &a);
    return err ? err : a.count;
}

/* ---- carts ------------------------------------------------------------ */

/*
 * MUTANT_SHOP_CHECKOUT_LOST_UPDATE, the planted lost update: putting a
 * product in the cart remembers the stock it read (as a web shop keeps the
 * product it showed in the session), and checkout writes that stock back less
 * the quantity, in a later transaction: whatever other checkouts took in
 * between is given back.
 */
static int seen_stock_note(shop *s, struct db *d, int64_t user_id, int64_t product_id)
{
    if (s->seen == NULL && (s->seen = calloc(SEEN_STOCK_MAX, sizeof(*s->seen))) == NULL)
        return -ENOMEM;
    sqlite3_stmt *st = db_stmt(d, "SELECT stock FROM products WHERE id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, product_id);
    int64_t stock = 0;
    bool found;
    int err = step_int(d, st, &stock, &found);
    if (err || !found)
        return err;
    size_t slot = (size_t)(user_id * 31 + product_id) % SEEN_STOCK_MAX;
    s->seen[slot] = (struct seen_stock){user_id, product_id, stock};
    return 0;
}

static int seen_stock_write(shop *s, struct db *d, int64_t user_id)
{
    for (size_t i = 0; s->seen != NULL && i < SEEN_STOCK_MAX; i++) {
        const struct seen_stock *w = &s->seen[i];
        if (w->user_id != user_id || w->product_id == 0)
            continue;
        sqlite3_stmt *st = db_stmt(d, "UPDATE products SET stock = ?1 - (SELECT quantity"
                                      " FROM carts WHERE user_id = ?2 AND product_id = ?3)"
                                      " WHERE id = ?3 AND EXISTS (SELECT 1 FROM carts"
                                      " WHERE user_id = ?2 AND product_id = ?3)");
        if (st == NULL)
            return -EIO;
        sqlite3_bind_int64(st, 1, w->stock);
        sqlite3_bind_int64(st, 2, user_id);
        sqlite3_bind_int64(st, 3, w->product_id);
        int err = db_step_done(d, st, "writing the stock back");
        if (err)
            return err == -EINVAL ? db_fail(d, -ERANGE, "insufficient stock") : err;
    }
    return 0;
}

struct cart_args {
    shop *s;
    int64_t user_id, product_id, quantity;
    bool set; /* the quantity replaces what the cart holds (else adds to it) */
    struct shop_cart_item *out;
    size_t max;
    int count;
};

static int cart_add_body(struct db *d, void *arg)
{
    struct cart_args *a = arg;
    int err = require_user(d, a->user_id);
    if (err)
        return err;
    bool found;
    err = exists(d, "SELECT 1 FROM products WHERE id = ?", a->product_id, &found);
    if (!err && !found)
        err = db_fail(d, -ENOENT, "no product with id %lld", (long long)a->product_id);
    if (!err && mutant_is(MUTANT_SHOP_CHECKOUT_LOST_UPDATE))
        err = seen_stock_note(a->s, d, a->user_id, a->product_id);
    if (err)
        return err;
    /* A cart must stay something checkout can turn into one order. */
    sqlite3_stmt *st = db_stmt(d, "SELECT count(*) FROM carts WHERE user_id = ?1 AND NOT EXISTS"
                                  " (SELECT 1 FROM carts WHERE user_id = ?1 AND product_id = ?2)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    sqlite3_bind_int64(st, 2, a->product_id);
    int64_t distinct = 0;
    err = step_int(d, st, &distinct, &found);
    if (err)
        return err;
    if (distinct >= SHOP_ORDER_LINES_MAX)
        return db_fail(d, -E2BIG, "a cart holds at most %d different products",
                       SHOP_ORDER_LINES_MAX);
    st = a->set ? db_stmt(d, "INSERT INTO carts (user_id, product_id, quantity)"
                             " VALUES (?1, ?2, ?3) ON CONFLICT (user_id, product_id)"
                             " DO UPDATE SET quantity = ?3 WHERE ?3 <= ?4")
                : db_stmt(d, "INSERT INTO carts (user_id, product_id, quantity)"
                             " VALUES (?1, ?2, ?3) ON CONFLICT (user_id, product_id)"
                             " DO UPDATE SET quantity = quantity + ?3"
                             " WHERE quantity + ?3 <= ?4");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    sqlite3_bind_int64(st, 2, a->product_id);
    sqlite3_bind_int64(st, 3, a->quantity);
    sqlite3_bind_int64(st, 4, SHOP_QTY_MAX);
    err = db_step_done(d, st, "adding to the cart");
    if (!err && sqlite3_changes(d->conn) == 0)
        return db_fail(d, -EINVAL, "a cart line may hold at most %d units", SHOP_QTY_MAX);
    return err;
}

int shop_cart_add(shop *s, int64_t user_id, int64_t product_id, int64_t quantity)
{
    int err = check_qty(s, quantity);
    if (err)
        return err;
    struct cart_args a = {
        .s = s, .user_id = user_id, .product_id = product_id, .quantity = quantity};
    return shop_write(s, cart_add_body, &a);
}

static int cart_remove_body(struct db *d, void *arg)
{
    struct cart_args *a = arg;
    sqlite3_stmt *st = db_stmt(d, "DELETE FROM carts WHERE user_id = ? AND product_id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    sqlite3_bind_int64(st, 2, a->product_id);
    int err = db_step_done(d, st, "removing from the cart");
    if (!err && sqlite3_changes(d->conn) == 0)
        return db_fail(d, -ENOENT, "product %lld is not in the cart of user %lld",
                       (long long)a->product_id, (long long)a->user_id);
    return err;
}

int shop_cart_set(shop *s, int64_t user_id, int64_t product_id, int64_t quantity)
{
    int err = check_qty(s, quantity);
    if (err)
        return err;
    struct cart_args a = {.s = s, .user_id = user_id, .product_id = product_id,
                          .quantity = quantity, .set = true};
    return shop_write(s, cart_add_body, &a);
}

int shop_cart_remove(shop *s, int64_t user_id, int64_t product_id)
{
    struct cart_args a = {.user_id = user_id, .product_id = product_id};
    return shop_write(s, cart_remove_body, &a);
}

static int cart_get_body(struct db *d, void *arg)
{
    struct cart_args *a = arg;
    int err = require_user(d, a->user_id);
    if (err)
        return err;
    sqlite3_stmt *st = db_stmt(d, "SELECT c.product_id, c.quantity, p.price_cents FROM carts c"
                                  " JOIN products p ON p.id = c.product_id WHERE c.user_id = ?"
                                  " ORDER BY c.product_id");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    int rc;
    a->count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((size_t)a->count < a->max) {
            struct shop_cart_item *it = &a->out[a->count];
            it->product_id = sqlite3_column_int64(st, 0);
            it->quantity = sqlite3_column_int64(st, 1);
            it->unit_price_cents = sqlite3_column_int64(st, 2);
        }
        a->count++;
    }
    err = rc == SQLITE_DONE ? 0
                            : db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading a cart");
    sqlite3_reset(st);
    return err;
}

int shop_cart_get(shop *s, int64_t user_id, struct shop_cart_item *out, size_t max)
{
    if (out == NULL && max > 0)
        return shop_fail(s, -EINVAL, "no buffer for %zu cart items", max);
    struct cart_args a = {.user_id = user_id, .out = out, .max = max};
    int err = shop_read(s, cart_get_body, &a);
    return err ? err : a.count;
}

/* ---- orders ----------------------------------------------------------- */

static const char *const status_names[] = {"pending", "shipped", "delivered", "cancelled"};

const char *shop_order_status_name(enum shop_order_status st)
{
    assert((unsigned)st < sizeof(status_names) / sizeof(status_names[0]));
    return status_names[st];
}

int shop_order_status_parse(const char *name, enum shop_order_status *out)
{
    for (size_t i = 0; name != NULL && i < sizeof(status_names) / sizeof(status_names[0]); i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (enum shop_order_status)i;
            return 0;
        }
    }
    return -EINVAL;
}

struct order_args {
    shop *s;
    int64_t user_id, order_id;
    const struct shop_order_line *lines;
    size_t count;
    enum shop_order_status status;
    struct shop_order *out;
    int64_t *ids;
    size_t max;
    int listed;
};

static int order_get_body(struct db *d, void *arg);

static int order_insert(struct db *d, struct order_args *a)
{
    sqlite3_stmt *st = db_stmt(d, "INSERT INTO orders (user_id, status, total_cents, created_at)"
                                  " VALUES (?, 'pending', 0, ?)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    sqlite3_bind_int64(st, 2, shop_now(a->s));
    int err = db_step_done(d, st, "creating an order");
    a->order_id = sqlite3_last_insert_rowid(d->conn);
    return err;
}

/* The total is computed by SQL from the lines just written. */
static int order_set_total(struct db *d, int64_t order_id)
{
    sqlite3_stmt *st = db_stmt(d, "UPDATE orders SET total_cents = (SELECT"
                                  " coalesce(sum(quantity * unit_price_cents), 0)"
                                  " FROM order_lines WHERE order_id = ?1) WHERE id = ?1");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, order_id);
    int err = db_step_done(d, st, "totalling an order");
    if (!err && mutant_is(MUTANT_SHOP_TOTAL_ROUNDED)) {
        /* the bug: money through a float, a cent rounded away */
        st = db_stmt(d, "UPDATE orders SET total_cents = CAST(total_cents * 0.999999 AS INTEGER)"
                        " WHERE id = ?1");
        if (st == NULL)
            return -EIO;
        sqlite3_bind_int64(st, 1, order_id);
        err = db_step_done(d, st, "totalling an order");
    }
    return err;
}

/* Takes quantity of one product from stock, or says why it cannot. */
static int take_stock(struct db *d, int64_t product_id, int64_t quantity)
{
    sqlite3_stmt *st =
        db_stmt(d, "UPDATE products SET stock = stock - ?1 WHERE id = ?2 AND stock >= ?1");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, quantity);
    sqlite3_bind_int64(st, 2, product_id);
    int err = db_step_done(d, st, "taking stock");
    if (err || sqlite3_changes(d->conn) == 1)
        return err;
    st = db_stmt(d, "SELECT stock FROM products WHERE id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, product_id);
    int64_t stock = 0;
    bool found;
    err = step_int(d, st, &stock, &found);
    if (err)
        return err;
    if (!found)
        return db_fail(d, -ENOENT, "no product with id %lld", (long long)product_id);
    return db_fail(d, -ERANGE, "insufficient stock: product %lld has %lld, the order wants %lld",
                   (long long)product_id, (long long)stock, (long long)quantity);
}

static int order_create_body(struct db *d, void *arg)
{
    struct order_args *a = arg;
    int err = require_user(d, a->user_id);
    if (!err)
        err = order_insert(d, a);
    for (size_t i = 0; !err && i < a->count; i++) {
        err = take_stock(d, a->lines[i].product_id, a->lines[i].quantity);
        if (err)
            break;
        sqlite3_stmt *st = db_stmt(d, "INSERT INTO order_lines (order_id, product_id, quantity,"
                                      " unit_price_cents) SELECT ?1, id, ?2, price_cents"
                                      " FROM products WHERE id = ?3");
        if (st == NULL)
            return -EIO;
        sqlite3_bind_int64(st, 1, a->order_id);
        sqlite3_bind_int64(st, 2, a->lines[i].quantity);
        sqlite3_bind_int64(st, 3, a->lines[i].product_id);
        err = db_step_done(d, st, "adding an order line");
    }
    if (!err)
        err = order_set_total(d, a->order_id);
    if (!err && a->out != NULL)
        err = order_get_body(d, a); /* inside: a failed read leaves nothing written */
    if (err)
        return err;
    if (platform_crash_point(&a->s->env, a->s->process_node, "checkout-mid-transaction"))
        return db_fail(d, -ECANCELED, "node %s crashed inside the order transaction",
                       a->s->process_node);
    return 0;
}

static int check_lines(shop *s, const struct shop_order_line *lines, size_t count)
{
    if (count == 0 || lines == NULL)
        return shop_fail(s, -EINVAL, "an order needs at least one line");
    if (count > SHOP_ORDER_LINES_MAX)
        return shop_fail(s, -E2BIG, "an order holds at most %d lines", SHOP_ORDER_LINES_MAX);
    for (size_t i = 0; i < count; i++) {
        int err = check_qty(s, lines[i].quantity);
        if (err)
            return err;
        for (size_t j = 0; j < i; j++)
            if (lines[j].product_id == lines[i].product_id)
                return shop_fail(s, -EINVAL, "product %lld is listed twice in one order",
                                 (long long)lines[i].product_id);
    }
    return 0;
}

int64_t shop_order_create(shop *s, int64_t user_id, const struct shop_order_line *lines,
                          size_t count, struct shop_order *out)
{
    int err = check_lines(s, lines, count);
    if (err)
        return err;
    /* out is read back inside the write's transaction: a read that fails
     * after the commit would report a committed order as not applied */
    struct order_args a = {.s = s, .user_id = user_id, .lines = lines, .count = count, .out = out};
    err = shop_write(s, order_create_body, &a);
    return err ? err : a.order_id;
}

static int checkout_body(struct db *d, void *arg)
{
    struct order_args *a = arg;
    int err = require_user(d, a->user_id);
    if (err)
        return err;
    /* Name the first line that cannot be served, for the message; the
     * UPDATE below is conditional anyway. */
    sqlite3_stmt *st = db_stmt(d, "SELECT c.product_id, c.quantity, p.stock FROM carts c"
                                  " JOIN products p ON p.id = c.product_id"
                                  " WHERE c.user_id = ? AND p.stock < c.quantity"
                                  " ORDER BY c.product_id LIMIT 1");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        err = db_fail(d, -ERANGE,
                      "insufficient stock: product %lld has %lld, the cart wants %lld",
                      (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 2),
                      (long long)sqlite3_column_int64(st, 1));
    } else if (rc != SQLITE_DONE) {
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "checking stock");
    }
    sqlite3_reset(st);
    if (err)
        return err;
    st = db_stmt(d, "SELECT count(*) FROM carts WHERE user_id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    int64_t lines = 0;
    bool found;
    err = step_int(d, st, &lines, &found);
    if (err)
        return err;
    if (lines == 0)
        return db_fail(d, -ENODATA, "the cart of user %lld is empty", (long long)a->user_id);
    if (lines > SHOP_ORDER_LINES_MAX)
        return db_fail(d, -E2BIG, "the cart holds %lld products; an order holds at most %d",
                       (long long)lines, SHOP_ORDER_LINES_MAX);
    err = order_insert(d, a);
    if (err)
        return err;
    st = db_stmt(d, "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)"
                    " SELECT ?1, c.product_id, c.quantity, p.price_cents FROM carts c"
                    " JOIN products p ON p.id = c.product_id WHERE c.user_id = ?2");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->order_id);
    sqlite3_bind_int64(st, 2, a->user_id);
    err = db_step_done(d, st, "moving the cart into the order");
    if (err)
        return err;
    st = mutant_is(MUTANT_SHOP_CHECKOUT_TAKES_ONE)
             ? db_stmt(d, "UPDATE products SET stock = stock - 1"
                          " WHERE id IN (SELECT product_id FROM carts WHERE user_id = ?1)")
             : db_stmt(d, "UPDATE products SET stock = stock - (SELECT quantity FROM carts"
                          " WHERE user_id = ?1 AND product_id = products.id)"
                          " WHERE id IN (SELECT product_id FROM carts WHERE user_id = ?1)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    err = db_step_done(d, st, "taking stock");
    if (err)
        return err == -EINVAL ? db_fail(d, -ERANGE, "insufficient stock") : err;
    if (sqlite3_changes(d->conn) != lines)
        return db_fail(d, -ERANGE, "insufficient stock");
    err = mutant_is(MUTANT_SHOP_CHECKOUT_LOST_UPDATE) ? seen_stock_write(a->s, d, a->user_id) : 0;
    if (err)
        return err;
    st = db_stmt(d, "DELETE FROM carts WHERE user_id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    err = db_step_done(d, st, "emptying the cart");
    if (!err)
        err = order_set_total(d, a->order_id);
    if (!err && a->out != NULL)
        err = order_get_body(d, a); /* inside: a failed read leaves nothing written */
    if (!err && platform_crash_point(&a->s->env, a->s->process_node, "checkout-mid-transaction"))
        return db_fail(d, -ECANCELED, "node %s crashed inside the checkout transaction",
                       a->s->process_node);
    return err;
}

int64_t shop_checkout(shop *s, int64_t user_id, struct shop_order *out)
{
    /* out is read back inside the write's transaction (as shop_order_create) */
    struct order_args a = {.s = s, .user_id = user_id, .out = out};
    int err = shop_write(s, checkout_body, &a);
    return err ? err : a.order_id;
}

/* Which transitions the shop allows: from (row) -> to (column). */
static const bool transition_ok[4][4] = {
    [ORDER_PENDING] = {[ORDER_SHIPPED] = true, [ORDER_CANCELLED] = true},
    [ORDER_SHIPPED] = {[ORDER_DELIVERED] = true, [ORDER_CANCELLED] = true},
};

static int order_status_body(struct db *d, void *arg)
{
    struct order_args *a = arg;
    sqlite3_stmt *st = db_stmt(d, "SELECT status FROM orders WHERE id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->order_id);
    int rc = sqlite3_step(st);
    enum shop_order_status from = ORDER_PENDING;
    int err = 0;
    if (rc == SQLITE_ROW)
        err = shop_order_status_parse((const char *)sqlite3_column_text(st, 0), &from);
    else if (rc == SQLITE_DONE)
        err = db_fail(d, -ENOENT, "no order with id %lld", (long long)a->order_id);
    else
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading an order");
    sqlite3_reset(st);
    if (err || from == a->status)
        return err;
    if (!transition_ok[from][a->status])
        return db_fail(d, -EPERM, "order %lld is %s and cannot become %s",
                       (long long)a->order_id, shop_order_status_name(from),
                       shop_order_status_name(a->status));
    st = db_stmt(d, "UPDATE orders SET status = ? WHERE id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, shop_order_status_name(a->status), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->order_id);
    err = db_step_done(d, st, "changing an order's status");
    if (err || a->status != ORDER_CANCELLED || mutant_is(MUTANT_SHOP_CANCEL_KEEPS_STOCK))
        return err;
    st = db_stmt(d, "UPDATE products SET stock = stock + (SELECT quantity FROM order_lines"
                    " WHERE order_id = ?1 AND product_id = products.id)"
                    " WHERE id IN (SELECT product_id FROM order_lines WHERE order_id = ?1)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->order_id);
    return db_step_done(d, st, "returning stock");
}

int shop_order_set_status(shop *s, int64_t order_id, enum shop_order_status status)
{
    if ((unsigned)status > ORDER_CANCELLED)
        return shop_fail(s, -EINVAL, "unknown order status %d", (int)status);
    struct order_args a = {.s = s, .order_id = order_id, .status = status};
    return shop_write(s, order_status_body, &a);
}

static int order_lines_read(struct db *d, struct shop_order *o)
{
    sqlite3_stmt *st = db_stmt(d, "SELECT product_id, quantity, unit_price_cents"
                                  " FROM order_lines WHERE order_id = ? ORDER BY product_id");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, o->id);
    int rc;
    o->line_count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (o->line_count == SHOP_ORDER_LINES_MAX) {
            sqlite3_reset(st);
            return db_fail(d, -E2BIG, "order %lld has more than %d lines", (long long)o->id,
                           SHOP_ORDER_LINES_MAX);
        }
        struct shop_order_line *l = &o->lines[o->line_count++];
        l->product_id = sqlite3_column_int64(st, 0);
        l->quantity = sqlite3_column_int64(st, 1);
        l->unit_price_cents = sqlite3_column_int64(st, 2);
    }
    int err = rc == SQLITE_DONE
                  ? 0
                  : db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading order lines");
    sqlite3_reset(st);
    return err;
}

static int order_get_body(struct db *d, void *arg)
{
    struct order_args *a = arg;
    sqlite3_stmt *st = db_stmt(d, "SELECT id, user_id, status, total_cents, created_at"
                                  " FROM orders WHERE id = ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->order_id);
    int rc = sqlite3_step(st);
    int err = 0;
    if (rc == SQLITE_ROW) {
        struct shop_order *o = a->out;
        o->id = sqlite3_column_int64(st, 0);
        o->user_id = sqlite3_column_int64(st, 1);
        err = shop_order_status_parse((const char *)sqlite3_column_text(st, 2), &o->status);
        o->total_cents = sqlite3_column_int64(st, 3);
        o->created_at_us = sqlite3_column_int64(st, 4);
    } else if (rc == SQLITE_DONE) {
        err = db_fail(d, -ENOENT, "no order with id %lld", (long long)a->order_id);
    } else {
        err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "reading an order");
    }
    sqlite3_reset(st);
    if (err)
        return err == -EINVAL ? db_fail(d, -EBADMSG, "order has an unknown status") : err;
    return order_lines_read(d, a->out);
}

int shop_order_get(shop *s, int64_t order_id, struct shop_order *out)
{
    struct order_args a = {.s = s, .order_id = order_id, .out = out};
    return shop_read(s, order_get_body, &a);
}

static int order_list_body(struct db *d, void *arg)
{
    struct order_args *a = arg;
    int err = require_user(d, a->user_id);
    if (err)
        return err;
    sqlite3_stmt *st = db_stmt(d, "SELECT id FROM orders WHERE user_id = ? ORDER BY id DESC");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    int rc;
    a->listed = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((size_t)a->listed < a->max)
            a->ids[a->listed] = sqlite3_column_int64(st, 0);
        a->listed++;
    }
    err = rc == SQLITE_DONE
              ? 0
              : db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "listing orders");
    sqlite3_reset(st);
    return err;
}

static int order_page_body(struct db *d, void *arg)
{
    struct order_args *a = arg;
    int err = require_user(d, a->user_id);
    if (err)
        return err;
    /* A range on the orders_user index (user_id, id): the page ends the scan. */
    sqlite3_stmt *st = db_stmt(d, "SELECT id FROM orders WHERE user_id = ?1 AND id < ?2"
                                  " ORDER BY id DESC LIMIT ?3");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, a->user_id);
    sqlite3_bind_int64(st, 2, a->order_id > 0 ? a->order_id : INT64_MAX);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)a->max);
    int rc;
    a->listed = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (size_t)a->listed < a->max)
        a->ids[a->listed++] = sqlite3_column_int64(st, 0);
    err = rc == SQLITE_DONE || rc == SQLITE_ROW
              ? 0
              : db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "listing orders");
    sqlite3_reset(st);
    return err;
}

int shop_order_page(shop *s, int64_t user_id, int64_t before_id, int64_t *ids, size_t max)
{
    if (ids == NULL || max == 0 || max > SHOP_PAGE_MAX)
        return shop_fail(s, -EINVAL, "a page holds 1 to %d orders, not %zu", SHOP_PAGE_MAX,
                         ids == NULL ? (size_t)0 : max);
    struct order_args a = {
        .s = s, .user_id = user_id, .order_id = before_id, .ids = ids, .max = max};
    int err = shop_read(s, order_page_body, &a);
    return err ? err : a.listed;
}

int shop_order_list(shop *s, int64_t user_id, int64_t *ids, size_t max)
{
    if (ids == NULL && max > 0)
        return shop_fail(s, -EINVAL, "no buffer for %zu order ids", max);
    struct order_args a = {.s = s, .user_id = user_id, .ids = ids, .max = max};
    int err = shop_read(s, order_list_body, &a);
    return err ? err : a.listed;
}

/* ---- mirroring and inspection ------------------------------------------ */

int shop_mirror_status(shop *s, struct mirror_status *out)
{
    if (s->topology != SHOP_MIRROR)
        return shop_fail(s, -EINVAL, "this shop is not mirrored");
    mirror_get_status(&s->mirror, out);
    return 0;
}

const char *mirror_state_name(enum mirror_state st)
{
    switch (st) {
    case MIRROR_IN_SYNC:
        return "in-sync";
    case MIRROR_DEGRADED:
        return "degraded";
    case MIRROR_FAILED:
        return "failed";
    }
    return "?";
}

int shop_mirror_resync(shop *s)
{
    if (s->topology != SHOP_MIRROR)
        return shop_fail(s, -EINVAL, "this shop is not mirrored");
    if (s->crashed)
        return shop_crashed(s);
    s->errmsg[0] = '\0';
    int err = mirror_resync(&s->mirror);
    if (err == -ECANCELED)
        s->crashed = true;
    return err;
}

int64_t shop_mirror_next_wake(shop *s)
{
    if (s->topology != SHOP_MIRROR || s->crashed || s->reader)
        return -1;
    return mirror_next_wake(&s->mirror);
}

int shop_mirror_tick(shop *s)
{
    if (s->topology != SHOP_MIRROR || s->crashed || s->reader)
        return 0;
    s->errmsg[0] = '\0';
    int err = mirror_tick(&s->mirror);
    if (err == -ECANCELED)
        s->crashed = true;
    return err;
}

static struct db *shop_copy(shop *s, int copy)
{
    if (s->topology == SHOP_SINGLE)
        return copy == 0 ? &s->single : NULL;
    return copy == 0 || copy == 1 ? &s->mirror.copy[copy] : NULL;
}

int shop_digest(shop *s, int copy, char hex[65])
{
    struct db *d = shop_copy(s, copy);
    if (d == NULL)
        return shop_fail(s, -EINVAL, "no copy %d in this shop", copy);
    if (s->crashed)
        return shop_crashed(s);
    return db_digest(d, hex);
}

int shop_integrity(shop *s, int copy)
{
    struct db *d = shop_copy(s, copy);
    if (d == NULL)
        return shop_fail(s, -EINVAL, "no copy %d in this shop", copy);
    if (s->crashed)
        return shop_crashed(s);
    return db_integrity(d);
}

int shop_read_position(const shop *s, int *copy, int64_t *seq)
{
    if (s->topology != SHOP_MIRROR)
        return -ENOTSUP;
    int c = s->pinned >= 0 ? s->pinned : s->mirror.read_copy;
    *copy = c;
    *seq = s->mirror.copy[c].seq;
    return 0;
}

int shop_pin_reads(shop *s, int copy)
{
    if (copy != -1 && shop_copy(s, copy) == NULL)
        return shop_fail(s, -EINVAL, "no copy %d in this shop", copy);
    s->pinned = copy;
    return 0;
}

static int audit_products(struct db *d, struct shop_audit *a)
{
    sqlite3_stmt *st = db_stmt(d, "SELECT p.id, p.stock, coalesce((SELECT sum(l.quantity)"
                                  " FROM order_lines l JOIN orders o ON o.id = l.order_id"
                                  " WHERE l.product_id = p.id AND o.status != 'cancelled'), 0)"
                                  " FROM products p ORDER BY p.id");
    if (st == NULL)
        return -EIO;
    int rc;
    a->product_count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (a->product_count < SHOP_AUDIT_PRODUCTS_MAX) {
            a->products[a->product_count].id = sqlite3_column_int64(st, 0);
            a->products[a->product_count].stock = sqlite3_column_int64(st, 1);
            a->products[a->product_count].ordered = sqlite3_column_int64(st, 2);
        }
        a->product_count++;
    }
    int err = rc == SQLITE_DONE ? 0
                                : db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "auditing");
    sqlite3_reset(st);
    return err;
}

static int audit_body(struct db *d, void *arg)
{
    struct shop_audit *a = arg;
    int err = audit_products(d, a);
    if (err)
        return err;
    sqlite3_stmt *st = db_stmt(d, "SELECT o.id, o.total_cents, coalesce((SELECT"
                                  " sum(quantity * unit_price_cents) FROM order_lines"
                                  " WHERE order_id = o.id), 0) AS lines FROM orders o"
                                  " WHERE o.total_cents != lines ORDER BY o.id");
    if (st == NULL)
        return -EIO;
    int rc;
    a->bad_total_count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (a->bad_total_count < SHOP_AUDIT_BAD_MAX) {
            a->bad_totals[a->bad_total_count].order_id = sqlite3_column_int64(st, 0);
            a->bad_totals[a->bad_total_count].total_cents = sqlite3_column_int64(st, 1);
            a->bad_totals[a->bad_total_count].lines_cents = sqlite3_column_int64(st, 2);
        }
        a->bad_total_count++;
    }
    err = rc == SQLITE_DONE ? 0 : db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "auditing");
    sqlite3_reset(st);
    if (err)
        return err;
    bool found;
    err = step_int(d, db_stmt(d, "SELECT count(*) FROM orders"), &a->orders, &found);
    if (!err)
        err = step_int(d, db_stmt(d, "SELECT count(*) FROM users"), &a->users, &found);
    return err;
}

int shop_audit(shop *s, int copy, struct shop_audit *out)
{
    struct db *d = shop_copy(s, copy);
    if (d == NULL)
        return shop_fail(s, -EINVAL, "no copy %d in this shop", copy);
    if (s->crashed)
        return shop_crashed(s);
    return db_read(d, audit_body, out);
}

/* ---- replication log --------------------------------------------------- */

/*
 * A single copy, or a mirror (whose outbox is kept on both copies: read from
 * the copy the mirror reads, pruned by a mirrored write). The rest of the
 * replication log (applying batches, whole-state copies) is a single copy's:
 * a mirrored node only ships.
 */
static struct db *single_copy(shop *s)
{
    return s->topology == SHOP_SINGLE ? &s->single : NULL;
}

/* Runs body as a read of s: its single copy, or the copy the mirror reads. */
static int log_read(shop *s, db_body body, void *arg)
{
    if (s->topology == SHOP_MIRROR)
        return shop_read(s, body, arg);
    return body(&s->single, arg);
}

static int info_body(struct db *d, void *arg)
{
    return replog_info(d, arg);
}

int shop_outbox_info(shop *s, struct shop_outbox_info *out)
{
    if (s->crashed)
        return shop_crashed(s);
    if (!s->outbox && s->topology != SHOP_SINGLE)
        return shop_fail(s, -EINVAL, "this mirrored shop keeps no outbox");
    return log_read(s, info_body, out);
}

int64_t shop_last_seq(const shop *s)
{
    return s->last_seq;
}

struct outbox_read {
    int64_t after_seq;
    size_t max_changes, max_bytes;
    struct shop_batch *out;
};

static int outbox_read_body(struct db *d, void *arg)
{
    struct outbox_read *r = arg;
    return replog_read(d, r->after_seq, r->max_changes, r->max_bytes, r->out);
}

int shop_outbox_read(shop *s, int64_t after_seq, size_t max_changes, size_t max_bytes,
                     struct shop_batch *out)
{
    memset(out, 0, sizeof(*out));
    if (s->crashed)
        return shop_crashed(s);
    if ((!s->outbox && s->topology != SHOP_SINGLE) || after_seq < 0 || max_changes == 0)
        return shop_fail(s, -EINVAL, "shop_outbox_read: an outbox, a position >= 0 and a "
                                     "batch size > 0 are required");
    if (max_changes > SHOP_BATCH_CHANGES_MAX)
        max_changes = SHOP_BATCH_CHANGES_MAX;
    if (max_bytes > SHOP_BATCH_BYTES_MAX)
        max_bytes = SHOP_BATCH_BYTES_MAX;
    struct outbox_read r = {after_seq, max_changes, max_bytes, out};
    return log_read(s, outbox_read_body, &r);
}

static int prune_body(struct db *d, void *arg)
{
    return replog_prune(d, *(const int64_t *)arg);
}

int shop_outbox_prune(shop *s, int64_t seq)
{
    if (s->crashed)
        return shop_crashed(s);
    if (s->topology == SHOP_SINGLE)
        return replog_prune(&s->single, seq);
    if (!s->outbox)
        return shop_fail(s, -EINVAL, "this mirrored shop keeps no outbox");
    if (s->reader || s->group.active)
        return shop_fail(s, -EINVAL, "shop_outbox_prune: a writer, outside a group");
    s->errmsg[0] = '\0';
    /* a mirrored write: both copies prune the same rows (the degraded copy
     * on resync), and a strict pair that cannot write keeps them */
    int err = mirror_write(&s->mirror, prune_body, &seq);
    if (err == -ECANCELED) {
        s->crashed = true;
        s->mirror.crashed = true;
    }
    return err;
}

int shop_replica_apply(shop *s, const char *source, const void *batch, size_t len,
                       struct shop_apply_result *out)
{
    struct db *d = single_copy(s);
    memset(out, 0, sizeof(*out));
    if (s->crashed)
        return shop_crashed(s);
    if (s->reader)
        return shop_fail(s, -EROFS, "this handle only reads");
    if (d == NULL || source == NULL || batch == NULL)
        return shop_fail(s, -EINVAL, "shop_replica_apply: a single copy, a source and a batch "
                                     "are required");
    s->errmsg[0] = '\0';
    return replog_apply(d, source, batch, len, out);
}

struct position_read {
    const char *source;
    int64_t *seq, *at_us;
};

static int position_body(struct db *d, void *arg)
{
    struct position_read *r = arg;
    return replog_position(d, r->source, r->seq, r->at_us);
}

int shop_replica_position(shop *s, const char *source, int64_t *seq, int64_t *at_us)
{
    if (s->crashed)
        return shop_crashed(s);
    if (source == NULL)
        return shop_fail(s, -EINVAL, "shop_replica_position: a source is required");
    struct position_read r = {source, seq, at_us};
    return log_read(s, position_body, &r);
}

/* ---- offline sync (sync.c) ---------------------------------------------- */

int shop_parts(shop *s, bool write, struct shop_parts *out)
{
    if (s->crashed)
        return shop_crashed(s);
    if (write && s->reader)
        return shop_fail(s, -EROFS, "this handle only reads");
    if (s->group.active)
        return shop_fail(s, -EINVAL, "offline sync works outside a group");
    s->errmsg[0] = '\0';
    out->mirrored = s->topology == SHOP_MIRROR;
    out->db = out->mirrored ? &s->mirror.copy[s->mirror.lead] : &s->single;
    out->env = &s->env;
    out->node = s->process_node;
    return 0;
}

int shop_parts_write(shop *s, db_body body, void *arg)
{
    if (s->topology != SHOP_MIRROR)
        return db_write(&s->single, body, arg);
    if (s->crashed)
        return shop_crashed(s);
    int err = mirror_write(&s->mirror, body, arg);
    if (err == -ECANCELED) {
        s->crashed = true;
        s->mirror.crashed = true;
    }
    return err;
}

int shop_parts_read(shop *s, db_body body, void *arg)
{
    if (s->topology != SHOP_MIRROR)
        return db_read(&s->single, body, arg);
    return shop_read(s, body, arg);
}

void shop_set_crashed(shop *s)
{
    s->crashed = true;
}

const char *shop_table_name(int table)
{
    return table >= 0 && (size_t)table < db_table_count ? db_tables[table].name : NULL;
}

const char *shop_sync_state_name(enum shop_sync_state st)
{
    static const char *const names[] = {"PENDING", "SYNCED", "FAILED"};
    return (unsigned)st < 3 ? names[st] : "?";
}

struct snapshot_read {
    void **data;
    size_t *len;
};

static int snapshot_body(struct db *d, void *arg)
{
    struct snapshot_read *r = arg;
    return replog_snapshot(d, r->data, r->len);
}

int shop_snapshot(shop *s, void **data, size_t *len)
{
    if (s->crashed)
        return shop_crashed(s);
    if (s->topology == SHOP_SINGLE)
        return replog_snapshot(&s->single, data, len);
    struct snapshot_read r = {data, len}; /* the copy the mirror reads */
    return shop_read(s, snapshot_body, &r);
}

int shop_restore(shop *s, const void *data, size_t len)
{
    struct db *d = single_copy(s);
    if (s->crashed)
        return shop_crashed(s);
    if (d == NULL || s->reader)
        return shop_fail(s, -EINVAL, "only a writable single copy can be replaced");
    s->errmsg[0] = '\0';
    return replog_restore(d, data, len);
}
