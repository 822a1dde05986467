/*
 * internal.h — what the platform's own files share and nobody else may use:
 * one copy of the database (struct db), the transaction runner, the mirror,
 * and the SQLite-to-errno mapping. Not installed, not included outside
 * platform/.
 */
#ifndef FAULTDRILL_PLATFORM_INTERNAL_H
#define FAULTDRILL_PLATFORM_INTERNAL_H

#include <sqlite3.h>
#include <stdarg.h>

#include "platform/platform.h"

#define DB_STMT_CACHE_MAX 48   /* prepared statements kept per connection */
#define DB_NODE_MAX 32
#define DB_PATH_MAX 4096
#define DB_APPLY_CACHE_MAX 32  /* changeset statement shapes kept per connection */
#define MIRROR_RESYNC_BATCH 64 /* backlog entries applied per resync transaction */
#define MIRROR_PRUNE_EVERY 32  /* backlog rows the peer holds are pruned this often */
#define MIRROR_RETRY_US_MIN 10000   /* a failed resync is retried by writes after this... */
#define MIRROR_RETRY_US_MAX SHOP_MIRROR_REPAIR_MAX_US /* ...doubling up to this (explicit
                                                       * resyncs always try) */
#define MIRROR_REPAIR_US 50000      /* a pair out of sync repairs itself (mirror_tick) this long
                                     * after it left sync, then with the retry backoff */

/* ---- One copy -------------------------------------------------------- */

struct db_stmt_slot {
    const char *sql; /* a string literal: the cache is keyed by its address */
    sqlite3_stmt *stmt;
};

struct db_apply_slot {
    int table;
    int op;        /* SQLITE_INSERT, SQLITE_UPDATE, SQLITE_DELETE */
    uint32_t mask; /* UPDATE: the changed columns */
    sqlite3_stmt *stmt;
};

struct change_log;

struct db {
    sqlite3 *conn;
    char node[DB_NODE_MAX];
    char path[DB_PATH_MAX];
    char *errmsg;          /* the owning shop's message buffer (SHOP_ERRMSG_MAX) */
    int64_t seq;           /* mirrored writes applied: the last fd_backlog row */
    bool pending_unknown;  /* a commit's sync failed: it may reappear after a crash */
    bool read_only;        /* opened by shop_open_reader: no schema work, no writes */
    struct change_log *capturing; /* the capture in progress on this connection, or NULL */
    size_t stmt_count;
    struct db_stmt_slot stmts[DB_STMT_CACHE_MAX];
    size_t apply_count;
    struct db_apply_slot apply[DB_APPLY_CACHE_MAX];
};

/* A domain table as the mirror sees it: key columns first. */
struct db_table {
    const char *name;
    int ncol;
    int npk;
    const char *const *cols;
};

/* The domain tables, in the order digests and sessions use (change.c), then
 * the outbox and sync-queue bookkeeping a mirrored copy keeps in step. */
extern const struct db_table db_tables[];
extern const size_t db_table_count;          /* the domain tables */
extern const size_t db_mirrored_table_count; /* and the bookkeeping a mirror carries */

/* Opens a copy, sets WAL and synchronous, creates or migrates the schema. */
int db_open(struct db *d, const struct shop_copy *copy, const struct shop_config *cfg,
            char *errmsg);
/* Opens a copy for reading only (shop_open_reader): no schema changes. */
int db_open_reader(struct db *d, const struct shop_copy *copy, char *errmsg);
/* Closes; with `abandon` the connection is closed without a checkpoint attempt. */
void db_close(struct db *d, bool abandon);
/* The one place SQLite result codes become negative errno. */
int db_errno(int sqlite_rc);
/* Formats the message into d->errmsg and returns rc (negative). */
int db_fail(struct db *d, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* As db_fail, with SQLite's own message of the connection appended. */
int db_fail_sqlite(struct db *d, int sqlite_rc, const char *what);
/* A cached prepared statement for a literal SQL string, reset and unbound. */
sqlite3_stmt *db_stmt(struct db *d, const char *sql);
/* Runs SQL without results (BEGIN, COMMIT, DDL). Returns 0 or -errno. */
int db_exec(struct db *d, const char *sql);
/* Steps a statement expected to finish without rows; 0 or -errno. */
int db_step_done(struct db *d, sqlite3_stmt *st, const char *what);
/* Reads the copy's mirror position into d->seq: its last fd_backlog row. */
int db_load_seq(struct db *d);

/* BEGIN IMMEDIATE. */
int db_begin(struct db *d);
/* COMMIT; a commit whose sync failed is -EINPROGRESS and sets pending_unknown. */
int db_commit(struct db *d);
/* ROLLBACK if a transaction is open; errors are ignored (nothing to undo). */
void db_rollback(struct db *d);

/* A transaction body: runs statements on d, returns 0 or -errno. */
typedef int (*db_body)(struct db *d, void *arg);

/*
 * Runs body in BEGIN IMMEDIATE ... COMMIT on one copy. A commit whose sync
 * failed returns -EINPROGRESS (unknown outcome).
 */
int db_write(struct db *d, db_body body, void *arg);
/* Runs body in a read transaction. */
int db_read(struct db *d, db_body body, void *arg);

/* SHA-256 of the domain tables in key order, as 64 hex digits. */
int db_digest(struct db *d, char hex[65]);
int db_integrity(struct db *d);

/* ---- Change records (change.c) ---------------------------------------- */

#define CHANGE_BYTES_MAX (16u << 20) /* one write's change record */

/* The row changes of one write, in the format change.c describes. */
struct change_log {
    uint8_t *data;
    size_t len;
    size_t cap;
    uint32_t rows;
    int err; /* sticky: -ENOMEM, -E2BIG, -EBADMSG while capturing */
};

/* Captures every change to a domain table on d until stop. */
void change_capture_start(struct db *d, struct change_log *log);
/* Stops capturing; returns the capture's error, if any. */
int change_capture_stop(struct db *d, struct change_log *log);
/* Applies a replication change (domain tables only) strictly: any mismatch is
 * divergence (-EBADMSG). */
int change_apply(struct db *d, const void *data, size_t len, int64_t seq);
/* The same for a mirror's change, which may carry outbox and queue rows. */
int change_apply_mirrored(struct db *d, const void *data, size_t len, int64_t seq);
/* Writes into out the change that undoes data. */
int change_invert(const void *data, size_t len, struct change_log *out);
void change_log_release(struct change_log *log);

#define CHANGE_KEY_MAX 64 /* a row key as text: "12" or "12/3" */
/* One changed row: its table (index into db_tables), "insert"/"update"/"delete", its key. */
typedef int (*change_row_fn)(void *arg, int table, const char *op, const char *key);
/* Calls fn for every row change of a record, in order; stops at fn's error. */
int change_for_each_row(const void *data, size_t len, change_row_fn fn, void *arg);
/*
 * Calls fn for every integer value the rows of a record carry: each row's
 * key, every column of an insert or a delete, and an update's changed
 * columns (old and new value); col indexes db_tables[table].cols. A read
 * cache learns from it which answers a change touches.
 */
typedef int (*change_value_fn)(void *arg, int table, int col, int64_t value);
int change_for_each_value(const void *data, size_t len, change_value_fn fn, void *arg);
/* Finalizes the apply statements cached on d. */
void change_cache_release(struct db *d);

/* ---- The replication log (replog.c) ------------------------------------ */

/* Inside d's transaction: appends the change to the outbox; *seq is its sequence. */
int replog_record(struct db *d, const struct change_log *log, int64_t now_us, int64_t *seq);
/* Inside d's transaction: one fd_sync_queue row per changed row. */
int replog_queue(struct db *d, const void *change, size_t len, int64_t now_us);
int replog_info(struct db *d, struct shop_outbox_info *out);
int replog_read(struct db *d, int64_t after_seq, size_t max_changes, size_t max_bytes,
                struct shop_batch *out);
int replog_prune(struct db *d, int64_t seq);
int replog_position(struct db *d, const char *source, int64_t *seq, int64_t *at_us);
/* Its own transaction: applies a batch idempotently and records the position. */
int replog_apply(struct db *d, const char *source, const void *batch, size_t len,
                 struct shop_apply_result *out);

/* Calls fn for every change of an encoded batch, in order: -EPROTO when the
 * batch is malformed (nothing called), else fn's first error or 0. */
typedef int (*replog_change_fn)(void *arg, int64_t seq, int64_t at_us, const void *change,
                                size_t len);
int replog_batch_for_each(const void *batch, size_t len, replog_change_fn fn, void *arg);

/* The whole database as bytes (malloc'ed), and replacing it with such a copy. */
int replog_snapshot(struct db *d, void **data, size_t *len);
int replog_restore(struct db *d, const void *data, size_t len);

/* ---- SHA-256 ---------------------------------------------------------- */

/* Nettle's sha256_ctx, kept opaque here: its header renames sha256_init and
 * friends by macro (sha256.c holds the only include). */
#define SHA256_STATE_BYTES 128
struct sha256 {
    _Alignas(8) unsigned char state[SHA256_STATE_BYTES];
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
void sha256_final(struct sha256 *c, uint8_t out[32]);
void sha256_hex(const uint8_t digest[32], char hex[65]);

/* ---- The mirror ------------------------------------------------------- */

struct mirror {
    struct db copy[2];          /* 0: primary, 1: mirror */
    int lead;                   /* index of the copy holding every write */
    int read_copy;              /* the copy that served the last read */
    enum mirror_policy policy;
    enum mirror_ack ack;
    enum mirror_state state;
    int64_t since_us;
    int64_t resyncs;
    char last_error[SHOP_ERRMSG_MAX];
    const struct platform_env *env;
    const char *process_node;   /* the node whose process runs the mirror: crash points */
    bool crashed;               /* a crash point fired: no further I/O */
    int64_t retry_at_us;        /* writes retry a failed resync from then on */
    int64_t retry_wait_us;      /* the current backoff */
    int64_t wake_at_us;         /* out of sync: when mirror_tick repairs (protocol clock) */
    struct change_log log;      /* the capture of the write in progress */
    struct change_log inverse;  /* its inverse, when strict mode undoes it */
};

int mirror_open(struct mirror *m, const struct shop_config *cfg, const struct platform_env *env,
                char *errmsg);
void mirror_close(struct mirror *m, bool abandon);
int mirror_write(struct mirror *m, db_body body, void *arg);
int mirror_read(struct mirror *m, db_body body, void *arg);
int mirror_resync(struct mirror *m);
int64_t mirror_next_wake(const struct mirror *m);
int mirror_tick(struct mirror *m);
void mirror_get_status(const struct mirror *m, struct mirror_status *out);

/*
 * Consults crash/<node>/<point>; when it fires, tells the host and returns
 * true: the caller must unwind without further I/O and return -ECANCELED.
 */
bool platform_crash_point(const struct platform_env *env, const char *node, const char *point);

/* ---- Offline sync (sync.c) --------------------------------------------- */

/* What sync.c works on: a shop's copy (a mirror's lead: messages and
 * direct statements; writes and reads go through shop_parts_write/read), its
 * host and its node. */
struct shop_parts {
    struct db *db;
    const struct platform_env *env;
    const char *node;
    bool mirrored;
};

/*
 * Fills out for sync.c (clearing the shop's message), or returns -ECANCELED
 * after a crash, -EROFS for a reader when `write`, -EINVAL inside a group.
 */
int shop_parts(shop *s, bool write, struct shop_parts *out);
/* A crash point fired inside sync.c: every later call on s is -ECANCELED. */
void shop_set_crashed(shop *s);
/* Runs body as one write of the shop (a mirrored write on a mirror). */
int shop_parts_write(shop *s, db_body body, void *arg);
/* Runs body as one read of the shop (on the copy the mirror reads). */
int shop_parts_read(shop *s, db_body body, void *arg);
/* Creates the sync marks table on a copy (a mirrored local's two copies). */
int sync_prepare_copy(struct db *d);

#endif /* FAULTDRILL_PLATFORM_INTERNAL_H */
