/*
 * platform.h — libplatform: the shop (users, products, carts, orders on
 * SQLite) and its redundancy, starting with synchronous mirroring.
 *
 * The platform knows nothing of the simulator or the fault layer. It is handed
 * an environment (struct platform_env) for time and for what happens when a
 * crash point fires, and an optional SQLite VFS name per copy (that is how
 * the fault layer reaches it). It never reads the wall clock, never sleeps,
 * never spawns threads and never calls rand().
 *
 * A shop object is not thread-safe: one thread (or the simulator) drives it.
 *
 * Errors: every action returns 0 (or a count/id >= 0 where said) or a
 * negative errno, and shop_errmsg() then says what went wrong in words a
 * user can act on. The codes mean:
 *   -EINVAL   bad argument (zero or negative quantity, empty name, bad email...)
 *   -ENOENT   unknown user, product or order
 *   -EEXIST   duplicate email
 *   -ERANGE   insufficient stock (the whole order is rejected)
 *   -EPERM    status transition not allowed (e.g. delivered -> pending)
 *   -ENODATA  checkout of an empty cart
 *   -EIO      a copy could not read or write: the write was NOT applied
 *   -ENOSPC   a copy's disk is full: the write was NOT applied
 *   -EINPROGRESS  outcome unknown: a commit whose sync failed, or a crash
 *             point fired mid-write; it may reappear after a crash. Never
 *             count it as failed nor as acknowledged (platform_is_unknown()).
 *   -ECANCELED    the node died at a crash point (outcome unknown too); the
 *             shop must be closed with shop_abandon() and reopened.
 *   -EBADMSG  the copies diverged or a database is corrupt
 *   -E2BIG    over a limit (more than SHOP_ORDER_LINES_MAX lines in a cart or order)
 *   -EPROTO   the database was written by a newer faultdrill (schema version)
 *   -EACCES   a database file cannot be opened or created
 */
#ifndef FAULTDRILL_PLATFORM_H
#define FAULTDRILL_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Limits ----------------------------------------------------------- */

#define SHOP_NAME_MAX 200        /* bytes in a user or product name */
#define SHOP_TEXT_MAX 2000       /* bytes in a description */
#define SHOP_EMAIL_MAX 254       /* bytes in an email address */
#define SHOP_CATEGORY_MAX 64     /* bytes in a category */
#define SHOP_ORDER_LINES_MAX 100 /* lines in one order */
#define SHOP_QTY_MAX 1000000     /* units of one product in one line */
#define SHOP_PRICE_MAX 100000000 /* cents: one million in the shop's currency */
#define SHOP_ERRMSG_MAX 256
#define SHOP_PAGE_MAX 1000       /* rows in one page (shop_product_page, shop_order_page) */
#define SHOP_SCHEMA_VERSION 2    /* PRAGMA user_version of a current database */

/* ---- The environment (the seam of DESIGN.md §1) ------------------------ */

struct platform_env {
    void *ctx;
    /* The wall clock in microseconds (virtual in the sim, CLOCK_REALTIME in
     * serve): it stamps created_at / updated_at and a change's commit time. */
    int64_t (*now_us)(void *ctx);
    /* The protocol clock in microseconds, monotonic (virtual in the sim,
     * CLOCK_MONOTONIC in serve): timeouts and timers. NULL: now_us. */
    int64_t (*mono_us)(void *ctx);
    /*
     * A crash point fired: the host must kill `node` (crash/<node>/<point>).
     * When this returns, the platform unwinds without further writes and
     * returns -ECANCELED. A real host may simply not return (SIGKILL).
     * NULL: crash points are ignored.
     */
    void (*crash)(void *ctx, const char *node, const char *point);
    /*
     * Runs fn(a) and fn(b) and returns when both have returned, at the same
     * time if the host can: the mirror commits its two copies through this,
     * so that their syncs overlap. fn touches disjoint state. NULL (the
     * simulator): the platform commits one copy after the other, with the
     * crash point crash/<node>/mirror-between-commits in between.
     */
    void (*parallel)(void *ctx, void (*fn)(void *arg), void *a, void *b);
    /*
     * propagate=before-commit (the naive mode): called with a write's change
     * record and the outbox sequence it will have, BEFORE the write commits;
     * the commit may still fail. NULL: not called.
     */
    void (*before_commit)(void *ctx, const char *node, int64_t seq, const void *change,
                          size_t len);
    /*
     * The transport and the scheduler of the replication protocols (node.h;
     * a shop alone never calls them). send: carry an encoded message from
     * node `from` to node `to` (copy it; deliver it with node_on_message,
     * late, twice, out of order or never). timer: call node_on_timer(node,
     * timer) once mono_us reaches at_us. trace: a protocol event in words
     * (NULL: dropped). None of them may call back into a node synchronously.
     */
    void (*send)(void *ctx, const char *from, const char *to, const void *msg, size_t len);
    void (*timer)(void *ctx, const char *node, int timer, int64_t at_us);
    void (*trace)(void *ctx, const char *node, const char *text);
};

/* Whether rc means "may or may not have been applied". */
bool platform_is_unknown(int rc);
/* Whether rc is a business rule's refusal (bad argument, not found, duplicate, stock,
 * transition, empty cart, over a limit): the system worked and said no. */
bool platform_is_rejected(int rc);
/* The message of a negative errno as the platform uses it ("insufficient stock"). */
const char *platform_strerror(int rc);

/* ---- Opening a shop --------------------------------------------------- */

enum shop_topology {
    SHOP_SINGLE, /* one database: node `primary` */
    SHOP_MIRROR, /* primary + mirror, synchronous mirroring */
};

enum mirror_policy {
    MIRROR_STRICT,  /* reject writes while either copy cannot write */
    MIRROR_DEGRADE, /* serve on the healthy copy, record what the other missed, resync */
};

enum mirror_ack {
    MIRROR_ACK_BOTH,  /* acknowledge when both copies committed (correct) */
    MIRROR_ACK_EARLY, /* naive: acknowledge after the primary alone; mirror best effort */
};

/* One copy of the data: where it lives and whose disk it is on. */
struct shop_copy {
    const char *node; /* node name, used in crash point names: "primary", "mirror" */
    const char *path; /* database file */
    const char *vfs;  /* SQLite VFS name, or NULL for the default */
};

enum shop_sync_queue {
    SHOP_QUEUE_NONE,
    SHOP_QUEUE_SAME,     /* queue rows in the change's own transaction (correct) */
    SHOP_QUEUE_SEPARATE, /* naive: a second transaction after the change commits,
                          * with the crash point crash/<node>/sync-between-row-and-queue */
};

struct shop_config {
    enum shop_topology topology;
    struct shop_copy primary;
    struct shop_copy mirror;  /* SHOP_MIRROR only */
    enum mirror_policy policy;
    enum mirror_ack ack;
    /* PRAGMA synchronous: true = FULL (durable acks, the default a caller
     * should pick), false = NORMAL (a power cut may lose acknowledged writes). */
    bool sync_full;
    /* Asynchronous replication and leader propagation: record every write's
     * change in this copy's outbox (fd_outbox), in the write's transaction.
     * SHOP_SINGLE only. */
    bool outbox;
    /* Offline-first sync: record one fd_sync_queue row per changed domain
     * row. SHOP_SINGLE only. */
    enum shop_sync_queue sync_queue;
    /* Naive leader propagation (propagate=before-commit): hand each change
     * to env->before_commit while its transaction is still open. */
    bool propagate_before_commit;
};

typedef struct shop shop;

/*
 * Opens (creating or migrating) the databases and recovers: in SHOP_MIRROR
 * the copy that is behind is brought up to date from the other's backlog.
 * env is copied. On failure *out is NULL and the return says why;
 * errmsg (may be NULL) receives the message.
 */
int shop_open(const struct shop_config *cfg, const struct platform_env *env, shop **out,
              char errmsg[SHOP_ERRMSG_MAX]);
/* Closes cleanly. NULL is allowed. */
void shop_close(shop *s);
/* Closes after the node died: no further reads or writes are attempted. */
void shop_abandon(shop *s);
/* The message of the last failed call on s. */
const char *shop_errmsg(const shop *s);

/*
 * Opens a read-only handle on one copy (a single database file, no mirror
 * logic, no recovery): for a server's reader threads, each with its own
 * handle, beside the one handle that writes. Every write call on it returns
 * -EROFS. The database must exist (-ENOENT otherwise).
 */
int shop_open_reader(const struct shop_copy *copy, const struct platform_env *env, shop **out,
                     char errmsg[SHOP_ERRMSG_MAX]);

/*
 * Group commit: runs fn(s, arg), which may call any write functions of s;
 * they all land in ONE transaction (one commit, one sync per copy, one
 * mirrored change). Each write inside runs in its own savepoint, so a write
 * refused for a domain reason (-EINVAL, -ENOENT, -EEXIST, -ERANGE, -EPERM,
 * -ENODATA, -E2BIG) leaves nothing and the others go on. A storage error
 * inside (-EIO, -ENOSPC, -EBADMSG, -ECANCELED) fails every later write of
 * the group with the same error.
 * Returns 0 when the group committed on every copy it must (the writes that
 * returned success are acknowledged), else the error that stopped it: then
 * every write of the group that returned success is NOT acknowledged and
 * must be reported as this error (unknown when platform_is_unknown()).
 * fn's own return value is passed through when negative and nothing was
 * committed. Groups do not nest (-EBUSY). Reads inside fn see the group's
 * own writes. fn may run more than once (a degrading mirror replays the
 * group on the healthy copy): only the last run's results count, so fn
 * must overwrite, not accumulate, what it records.
 */
typedef int (*shop_group_fn)(shop *s, void *arg);
int shop_group(shop *s, shop_group_fn fn, void *arg);

/* ---- Users ------------------------------------------------------------ */

struct shop_user {
    int64_t id;
    char name[SHOP_NAME_MAX + 1];
    char email[SHOP_EMAIL_MAX + 1];
    int64_t updated_at_us;
};

/* Creates a user; returns the new id (> 0) or -EINVAL / -EEXIST / storage errors. */
int64_t shop_user_create(shop *s, const char *name, const char *email);
/* Updates the user with `email`: name and/or email (NULL keeps the old). */
int shop_user_update(shop *s, const char *email, const char *name, const char *new_email);
int shop_user_get(shop *s, int64_t id, struct shop_user *out);
int shop_user_get_by_email(shop *s, const char *email, struct shop_user *out);

/* ---- Products --------------------------------------------------------- */

struct shop_product {
    int64_t id;
    char name[SHOP_NAME_MAX + 1];
    char description[SHOP_TEXT_MAX + 1];
    char category[SHOP_CATEGORY_MAX + 1];
    int64_t price_cents;
    int64_t stock;
};

/* Creates a product from p (id ignored); returns the new id. */
int64_t shop_product_create(shop *s, const struct shop_product *p);
/* Replaces every field of product p->id. */
int shop_product_update(shop *s, const struct shop_product *p);
/* Deletes a product; -EPERM if an order line refers to it. */
int shop_product_delete(shop *s, int64_t id);
int shop_product_get(shop *s, int64_t id, struct shop_product *out);

struct shop_product_filter {
    const char *category; /* exact match, or NULL */
    bool in_stock_only;
    const char *query;    /* substring of name or description, case-insensitive, or NULL */
};

/*
 * Lists products by id, at most `max` into out; returns how many matched in
 * all (may exceed max: call again with a larger buffer).
 */
int shop_product_list(shop *s, const struct shop_product_filter *filter, struct shop_product *out,
                      size_t max);
/*
 * One page of that list, as a client asks for it: the products after
 * after_id (0: from the first) that match, by id, at most max (1 to
 * SHOP_PAGE_MAX) into out; returns how many it listed. Reads no further
 * than the page, however many products there are.
 */
int shop_product_page(shop *s, const struct shop_product_filter *filter, int64_t after_id,
                      struct shop_product *out, size_t max);

/* ---- Carts ------------------------------------------------------------ */

struct shop_cart_item {
    int64_t product_id;
    int64_t quantity;
    int64_t unit_price_cents; /* the product's current price */
};

/* Adds quantity (> 0) of a product to the user's cart (adds to what is there). */
int shop_cart_add(shop *s, int64_t user_id, int64_t product_id, int64_t quantity);
/* Sets the product's quantity (> 0) in the user's cart, whatever it held
 * (the workshop's POST /cart). */
int shop_cart_set(shop *s, int64_t user_id, int64_t product_id, int64_t quantity);
/* Removes a product from the cart; -ENOENT if it was not in it. */
int shop_cart_remove(shop *s, int64_t user_id, int64_t product_id);
/* The cart's items by product id; returns how many (may exceed max). */
int shop_cart_get(shop *s, int64_t user_id, struct shop_cart_item *out, size_t max);

/* ---- Orders ----------------------------------------------------------- */

enum shop_order_status {
    ORDER_PENDING,
    ORDER_SHIPPED,
    ORDER_DELIVERED,
    ORDER_CANCELLED,
};

struct shop_order_line {
    int64_t product_id;
    int64_t quantity;
    int64_t unit_price_cents;
};

struct shop_order {
    int64_t id;
    int64_t user_id;
    enum shop_order_status status;
    int64_t total_cents;
    int64_t created_at_us;
    size_t line_count;
    struct shop_order_line lines[SHOP_ORDER_LINES_MAX];
};

/* "pending", "shipped", "delivered", "cancelled". */
const char *shop_order_status_name(enum shop_order_status st);
/* Parses a status name; -EINVAL when unknown. */
int shop_order_status_parse(const char *name, enum shop_order_status *out);

/*
 * Creates an order from explicit lines (unit prices taken from the products)
 * in one transaction: every product's stock is decremented or, if one lacks
 * stock, nothing happens (-ERANGE). Returns the order id; out (may be NULL)
 * receives the order.
 */
int64_t shop_order_create(shop *s, int64_t user_id, const struct shop_order_line *lines,
                          size_t count, struct shop_order *out);
/* Moves the user's cart into an order, atomically; -ENODATA on an empty cart. */
int64_t shop_checkout(shop *s, int64_t user_id, struct shop_order *out);
/*
 * pending -> shipped -> delivered; pending or shipped -> cancelled, which
 * returns the stock. Anything else is -EPERM; the same status is a no-op.
 */
int shop_order_set_status(shop *s, int64_t order_id, enum shop_order_status status);
int shop_order_get(shop *s, int64_t order_id, struct shop_order *out);
/* The user's order ids, newest first; returns how many (may exceed max). */
int shop_order_list(shop *s, int64_t user_id, int64_t *ids, size_t max);
/* One page of them: the ids below before_id (0: from the newest), newest
 * first, at most max (1 to SHOP_PAGE_MAX); returns how many it listed.
 * Reads no further than the page, however many orders the user has. */
int shop_order_page(shop *s, int64_t user_id, int64_t before_id, int64_t *ids, size_t max);

/* ---- Mirroring -------------------------------------------------------- */

enum mirror_state {
    MIRROR_IN_SYNC,   /* both copies hold every acknowledged write */
    MIRROR_DEGRADED,  /* one copy is behind; writes go to the other (degrade) */
    MIRROR_FAILED,    /* no copy can take writes (strict with a failing copy, or both) */
};

struct mirror_status {
    enum mirror_state state;
    int64_t since_us;          /* when the state began */
    const char *lead;          /* node of the copy holding every write */
    const char *behind;        /* node of the copy that is behind, or NULL */
    int64_t changes_behind;    /* mirrored writes the behind copy lacks */
    int64_t seq_primary;       /* mirrored writes each copy has applied */
    int64_t seq_mirror;
    int64_t resyncs;           /* completed resyncs since open */
    char last_error[SHOP_ERRMSG_MAX];
};

/* -EINVAL when the shop is not mirrored. */
int shop_mirror_status(shop *s, struct mirror_status *out);
/* "in-sync", "degraded", "failed". */
const char *mirror_state_name(enum mirror_state st);
/*
 * Tries to bring the behind copy up to date now (writes also try first).
 * Returns 0 when in sync afterwards, else the error that stopped it;
 * -ENOTSUP with ack=early, which has no repair (the naive mode's bug).
 */
int shop_mirror_resync(shop *s);
/*
 * Self-repair (DESIGN.md §1: the platform decides, the host only fires). A
 * pair out of sync (a copy behind, or strict's refusal not yet cleared)
 * resyncs on its own, without waiting for a write: shop_mirror_next_wake
 * says when, on the env's protocol clock (mono_us), -1 when nothing is due
 * (in sync, not mirrored, ack=early, crashed); the host calls
 * shop_mirror_tick once that time has come (an early call does nothing) and
 * asks again. Returns 0, or the failed resync's error (-ECANCELED: a crash
 * point fired; the shop must be abandoned). While out of sync, attempts are
 * never more than SHOP_MIRROR_REPAIR_MAX_US apart.
 */
#define SHOP_MIRROR_REPAIR_MAX_US 320000
int64_t shop_mirror_next_wake(shop *s);
int shop_mirror_tick(shop *s);

/* ---- Replication log (asynchronous replication, leader propagation) ---- */

#define SHOP_BATCH_CHANGES_MAX 1024     /* changes in one shipped batch */
#define SHOP_BATCH_BYTES_MAX (8u << 20) /* bytes of one shipped batch */

/*
 * A batch of outbox changes, as shipped between nodes. Encoded (little
 * endian): "FDB1", u32 count, then per change i64 seq, i64 at_us, u32 len,
 * len bytes of change record. Self-contained: the receiver needs nothing
 * else. data is malloc'ed: free it with shop_batch_release.
 */
struct shop_batch {
    uint8_t *data;
    size_t len;
    uint32_t count;
    int64_t first_seq, last_seq; /* 0 when empty */
};

void shop_batch_release(struct shop_batch *b);

/* The outbox's state: the last sequence written, and the oldest kept. */
struct shop_outbox_info {
    int64_t head_seq;     /* last change recorded (0: none yet) */
    int64_t head_at_us;   /* when it committed */
    int64_t oldest_seq;   /* oldest change still kept (0: empty) */
};

int shop_outbox_info(shop *s, struct shop_outbox_info *out);
/* The sequence of the last write this handle committed with a change (0: none): the
 * outbox's, or a mirrored shop's pair sequence (both copies number changes alike). */
int64_t shop_last_seq(const shop *s);
/* A mirrored shop: the copy (0 primary, 1 mirror) that served this handle's last read
 * and that copy's sequence now (what the read reflected); -ENOTSUP for one copy. */
int shop_read_position(const shop *s, int *copy, int64_t *seq);
/*
 * Reads the changes after after_seq, in order, at most max_changes and about
 * max_bytes (at least one change when there is one) into out. -ERANGE when
 * after_seq + 1 was already pruned (the reader must be re-seeded).
 */
int shop_outbox_read(shop *s, int64_t after_seq, size_t max_changes, size_t max_bytes,
                     struct shop_batch *out);
/* Forgets the changes up to seq (every reader holds them). */
int shop_outbox_prune(shop *s, int64_t seq);
/* Encodes one change (e.g. the one handed to before_commit) as a batch. */
int shop_batch_single(int64_t seq, int64_t at_us, const void *change, size_t len,
                      struct shop_batch *out);

/* What applying a batch did. */
struct shop_apply_result {
    int64_t position;    /* the last sequence of `source` now applied */
    int64_t position_at_us; /* the commit time (on the source) of that change */
    uint32_t applied;    /* changes applied by this call */
    uint32_t skipped;    /* already applied (duplicates): nothing done */
    bool gap;            /* the batch starts after position + 1: nothing applied,
                          * the sender must resend from position + 1 */
};

/*
 * Applies a batch from `source` idempotently, by sequence: changes at or
 * below this copy's position for source are skipped, the next ones applied
 * in order, each with the position update in ONE transaction, so a crash
 * between applying and recording is impossible. A change that does not
 * apply cleanly is divergence (-EBADMSG) and nothing of it is applied.
 * A malformed batch is -EPROTO.
 */
int shop_replica_apply(shop *s, const char *source, const void *batch, size_t len,
                       struct shop_apply_result *out);
/* This copy's position for source (0 when it never applied anything). */
int shop_replica_position(shop *s, const char *source, int64_t *seq, int64_t *at_us);

/*
 * The naive outbox=off replication: the whole database as bytes (free()
 * them), and replacing a copy's whole database with such bytes. The copy
 * carries no positions: the receiver cannot tell what it lacks.
 */
int shop_snapshot(shop *s, void **data, size_t *len);
int shop_restore(shop *s, const void *data, size_t len);

/* ---- Offline sync queue ---------------------------------------------- */

enum shop_sync_state { SHOP_SYNC_PENDING, SHOP_SYNC_SYNCED, SHOP_SYNC_FAILED };

#define SHOP_SYNC_KEY_MAX 64

struct shop_sync_entry {
    int64_t id;                     /* fd_sync_queue row */
    int table;                      /* index into shop_table_name() */
    char row_key[SHOP_SYNC_KEY_MAX];/* the row's key: "12" or "12/3" for two-column keys */
    char op[8];                     /* "insert", "update", "delete" */
    enum shop_sync_state state;
    int64_t retries;
    int64_t created_at_us;
};

/* "users", "products", "carts", "orders", "order_lines"; NULL past the end. */
const char *shop_table_name(int table);
const char *shop_sync_state_name(enum shop_sync_state st);

/* ---- Inspection (for checkers and tests) ------------------------------ */

/* Lowercase hex SHA-256 of data: the digest the platform and the runner use. */
void platform_sha256_hex(const void *data, size_t len, char hex[65]);

/*
 * A digest of the shop's contents (every domain table, rows in key order) on
 * one copy: two copies with equal digests hold equal data. copy is 0 for
 * the primary, 1 for the mirror. hex receives 64 hex digits and a NUL.
 */
int shop_digest(shop *s, int copy, char hex[65]);
/* PRAGMA integrity_check on one copy: 0 when "ok", -EBADMSG otherwise. */
int shop_integrity(shop *s, int copy);

/*
 * Pins every read that follows to one copy (0 primary, 1 mirror), with no
 * fallback, so a checker can ask "what does this copy hold?"; -1 unpins.
 */
int shop_pin_reads(shop *s, int copy);

#define SHOP_AUDIT_PRODUCTS_MAX 1024
#define SHOP_AUDIT_BAD_MAX 8

/* What the consistency checkers need from one copy, in one read transaction. */
struct shop_audit {
    size_t product_count; /* > SHOP_AUDIT_PRODUCTS_MAX: only the first are listed */
    struct {
        int64_t id;
        int64_t stock;
        int64_t ordered;  /* units in orders that are not cancelled */
    } products[SHOP_AUDIT_PRODUCTS_MAX];
    int64_t orders;
    int64_t users;
    size_t bad_total_count; /* orders whose total is not the sum of their lines */
    struct {
        int64_t order_id;
        int64_t total_cents;
        int64_t lines_cents;
    } bad_totals[SHOP_AUDIT_BAD_MAX];
};

int shop_audit(shop *s, int copy, struct shop_audit *out);

/* ---- Offline sync (sync.c) ------------------------------------------- */

/*
 * The platform half of offline-first sync (DESIGN.md §2). A local records
 * one fd_sync_queue row per changed domain row (shop_config.sync_queue).
 * Its sync job reads the PENDING rows, each with the CURRENT values of its
 * row (or "gone"), into a push; the host carries the push to central;
 * central upserts it in ONE transaction, keyed by a global id
 * "<origin>:<table>:<row_key>" (the origin is the local's node name, so
 * several locals never clash); the host carries the accepted queue ids back
 * and the local marks them SYNCED. When a push fails (central's error, no
 * reply in time), every row it carried counts one retry, and becomes FAILED
 * when its retries reach the budget; FAILED rows stay retriable: a later
 * push that includes them and is accepted marks them SYNCED.
 *
 * Central keeps what it received in fd_central_rows, created by its first
 * push; central's own shop tables stay empty (it is an aggregate). Each row
 * there remembers the queue id of the newest change applied to it (its
 * version) and is overwritten only by a strictly newer one, so duplicated,
 * reordered and re-sent pushes change nothing. The local records every
 * SYNCED transition in fd_sync_marks, so that a row synced twice shows.
 *
 * Crash point crash/<node>/sync-after-push, in shop_sync_mark: central has
 * applied the push, the local has not yet recorded SYNCED; the next push
 * re-sends the same rows and central accepts them without a change.
 *
 * A push (little endian): "FDS1", u32 count, u16 n + origin; per entry
 * i64 queue id, u16 n + global id, u8 table (shop_table_name), u8 op (0
 * insert, 1 update, 2 delete), u8 present (0: the row is gone), u32 n + the
 * row: u8 columns, then per column u8 SQLite type and an i64, an f64, a
 * u32 n + bytes (text, blob) or nothing (NULL). A reply: "FDR1", u32 count,
 * u32 applied, u32 unchanged, then count i64 queue ids.
 */

#define SHOP_SYNC_PUSH_ROWS_MAX 256          /* queue rows in one push */
#define SHOP_SYNC_PUSH_BYTES_MAX (4u << 20)  /* bytes of one push */
#define SHOP_SYNC_ID_MAX 128                 /* bytes of a global id, NUL included */
#define SHOP_SYNC_TABLES_MAX 8               /* domain tables (shop_table_name) */
#define SHOP_SYNC_EXAMPLES_MAX 8             /* mismatches one comparison lists */
#define SHOP_SYNC_REPLY_BYTES_MAX (16 + 8 * SHOP_SYNC_PUSH_ROWS_MAX)

/* A push, as the local's job sends it to central. */
struct shop_sync_push {
    uint8_t *data;   /* malloc'ed: shop_sync_push_release */
    size_t len;
    uint32_t count;  /* queue rows in it */
    uint32_t retried;/* of which were pushed before and failed (retries > 0) */
    uint32_t failed; /* of which are FAILED (retried after their budget) */
    int64_t ids[SHOP_SYNC_PUSH_ROWS_MAX]; /* their queue ids, ascending */
};

void shop_sync_push_release(struct shop_sync_push *p);

/*
 * Reads up to max (<= SHOP_SYNC_PUSH_ROWS_MAX) PENDING queue rows, and
 * FAILED ones too when include_failed, in id order, with their rows' current
 * values, in one read transaction. An empty queue gives count 0 (and a
 * valid, empty push). -EINVAL when s is not a single copy or max is 0.
 */
int shop_sync_pending(shop *local, size_t max, bool include_failed, struct shop_sync_push *out);

/* What central did with a push: the queue ids it holds now (accepted). */
struct shop_sync_result {
    uint32_t count;     /* queue ids in ids[] */
    uint32_t applied;   /* entries that changed central's copy of their row */
    uint32_t unchanged; /* entries central already held (as new or newer): duplicates */
    int64_t ids[SHOP_SYNC_PUSH_ROWS_MAX];
};

/*
 * On central: applies a push from `origin` idempotently in ONE transaction
 * (all of it or nothing). Every entry is accepted. -EPROTO for a malformed
 * push or one from another origin; -ENOSPC / -EIO when central's disk fails
 * (nothing applied); -EINPROGRESS when the commit's sync failed (unknown:
 * the local must treat it as failed and re-send, which is harmless).
 */
int shop_sync_apply_central(shop *central, const char *origin, const void *push, size_t len,
                            struct shop_sync_result *out);
/* The ids a push carried, as a result: what a failed push marks (retries). */
void shop_sync_result_of_push(const struct shop_sync_push *p, struct shop_sync_result *out);
/* Central's reply on the wire; returns its length. */
size_t shop_sync_reply_encode(const struct shop_sync_result *r,
                              uint8_t buf[SHOP_SYNC_REPLY_BYTES_MAX]);
/* -EPROTO when malformed. */
int shop_sync_reply_decode(const void *data, size_t len, struct shop_sync_result *out);

/* What shop_sync_mark changed. */
struct shop_sync_marked {
    uint32_t synced;     /* rows this call marked SYNCED */
    uint32_t already;    /* accepted rows already SYNCED (a late or repeated reply): untouched */
    uint32_t unknown;    /* accepted ids with no queue row here */
    uint32_t retried;    /* failed push: rows whose retry count went up */
    uint32_t failed;     /* failed push: rows that became FAILED now (budget spent) */
    int64_t retries_max; /* failed push: the highest retry count among them */
};

/*
 * On the local, ONE transaction. err == 0: res holds central's accepted ids;
 * each row not yet SYNCED becomes SYNCED (synced_at now) and the transition
 * is recorded in fd_sync_marks. err < 0: the push failed with err; res holds
 * the ids it carried (shop_sync_result_of_push); each row not SYNCED counts
 * a retry with err's message as last_error, and becomes FAILED when its
 * retries reach retries_budget (>= 1). out may be NULL. Crash point
 * crash/<node>/sync-after-push before an accepted push is marked:
 * -ECANCELED, the shop must be abandoned.
 */
int shop_sync_mark(shop *local, const struct shop_sync_result *res, int err, int retries_budget,
                   struct shop_sync_marked *out);

/* The queue of a local, by table and state (`GET /sync/status`). */
struct shop_sync_status {
    int64_t count[SHOP_SYNC_TABLES_MAX][3]; /* rows by table and enum shop_sync_state */
    int64_t total[3];                       /* rows by state */
    int64_t oldest_pending_at_us;  /* created_at of the oldest PENDING or FAILED row; 0: none */
    int64_t oldest_pending_age_us; /* now minus that; 0: none */
    int64_t retries_max;           /* among PENDING and FAILED rows */
    int64_t failed_retries_min;    /* the fewest retries of a FAILED row; 0: none FAILED */
    int64_t failed_retries_min_id; /* that row */
    int64_t synced_marks;          /* SYNCED transitions recorded in fd_sync_marks */
    int64_t synced_twice;          /* queue rows recorded SYNCED more than once (must be 0) */
    int64_t synced_twice_id;       /* the first of them */
};

int shop_sync_status(shop *local, struct shop_sync_status *out);
/* One queue row; -ENOENT when there is none with that id. */
int shop_sync_entry_get(shop *local, int64_t id, struct shop_sync_entry *out);

/* What central holds under one global id. */
struct shop_sync_central_row {
    char origin[SHOP_SYNC_ID_MAX];
    int table;
    char row_key[SHOP_SYNC_KEY_MAX];
    bool deleted;
    int64_t version;          /* queue id (on origin) of the newest change applied */
    int64_t synced_at_us;     /* when central applied it */
    size_t data_len;          /* the row as encoded in a push (0 when deleted) */
    char data_sha256[65];
};

/* -ENOENT when central holds nothing under global_id. */
int shop_sync_central_get(shop *central, const char *global_id, struct shop_sync_central_row *out);

enum shop_sync_problem {
    SHOP_SYNC_MATCH,     /* central holds the local row's values, or both know it is gone */
    SHOP_SYNC_MISSING,   /* a local row central never received */
    SHOP_SYNC_DIFFERS,   /* central holds other values, or holds it as deleted */
    SHOP_SYNC_UNDELETED, /* the local deleted the row; central still holds it */
};

/* One row compared between a local and central. */
struct shop_sync_row {
    enum shop_sync_problem problem;
    int table;
    char row_key[SHOP_SYNC_KEY_MAX];
    /* no queue row newer than what central applied: nothing will ever sync
     * this difference (a change committed without its queue row) */
    bool lost;
    bool queued;               /* the row has queue rows; the newest is described below */
    int64_t queue_id;
    char op[8];
    enum shop_sync_state state;
    int64_t retries;
    int64_t created_at_us;
    int64_t synced_at_us;      /* 0 when not SYNCED */
    int64_t central_version;   /* queue id central applied last for it; 0: none */
    int64_t central_synced_at_us;
};

struct shop_sync_compare {
    int64_t rows;              /* keys compared: local rows, queued keys, central's rows */
    int64_t matching;
    int64_t mismatched[4];     /* by enum shop_sync_problem (index 0 unused) */
    int64_t lost;              /* mismatches nothing will repair (see shop_sync_row.lost) */
    int64_t waiting;           /* mismatches a PENDING or FAILED queue row will repair */
    size_t example_count;      /* the first mismatches, lost ones first */
    struct shop_sync_row examples[SHOP_SYNC_EXAMPLES_MAX];
};

/*
 * Compares every row of every domain table on local, every key in its
 * queue, and everything central holds from origin (the local's node name),
 * by content: the checkers' view of offline sync.
 */
int shop_sync_compare(shop *local, shop *central, const char *origin,
                      struct shop_sync_compare *out);

/* ---- Nodes of a replicated topology: the protocols (node.h) ---------- */

#include "platform/node.h"

#endif /* FAULTDRILL_PLATFORM_H */
