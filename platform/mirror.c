/*
 * mirror.c — synchronous mirroring of the shop over two SQLite copies.
 *
 * A write runs once, on the lead copy, with its row changes captured
 * (change.c); that change is applied to the other copy and both commit before the write is
 * acknowledged. Each copy also stores the change in its own fd_backlog, in
 * the same transaction as the change, numbered by sequence; a copy's last
 * row is its position. That one table is what makes every failure
 * recoverable, whichever copy got further:
 *   - a crash between the two commits, or one copy's commit failing while
 *     the other's succeeded, leaves a copy one change behind, and resync
 *     (on the next write or on reopen) applies the other's backlog entry;
 *   - policy=degrade keeps writing on one copy and the backlog is exactly
 *     what the other missed, replayed in order on heal (resync);
 *   - policy=strict saves nothing the other copy refused: when it refuses
 *     before anything committed, the lead rolls back (no position moves);
 *     when its commit fails after the lead's, the lead commits the inverse,
 *     so nothing half-applied remains on either side.
 * Applying by sequence number makes replay idempotent: a copy applies only
 * entries above its own position.
 *
 * ack=early is the naive mode of the workshop: the primary commits and
 * acknowledges alone, the mirror is best effort, no backlog, no recovery.
 *
 * Depends on db.c and SQLite's session extension; knows nothing of faults.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/internal.h"
#include "platform/mutants.h"


/* Which side of a two-copy write failed. */
enum side {
    SIDE_NONE,
    SIDE_LEAD,      /* the lead failed (and the other did not commit) */
    SIDE_OTHER,     /* the other failed; the lead committed */
    SIDE_LEAD_ONLY, /* parallel commits: the lead failed, the other committed */
};

static int64_t mirror_now(const struct mirror *m)
{
    return m->env->now_us != NULL ? m->env->now_us(m->env->ctx) : 0;
}

/* The protocol clock: retries and self-repair are timed on it. */
static int64_t mirror_mono(const struct mirror *m)
{
    return m->env->mono_us != NULL ? m->env->mono_us(m->env->ctx) : mirror_now(m);
}

static void mirror_set_state(struct mirror *m, enum mirror_state st)
{
    if (m->state != st) {
        if (m->state == MIRROR_IN_SYNC)
            m->wake_at_us = mirror_mono(m) + MIRROR_REPAIR_US; /* left sync: repair soon */
        m->state = st;
        m->since_us = mirror_now(m);
    }
}

static void mirror_note_error(struct mirror *m, const struct db *d)
{
    snprintf(m->last_error, sizeof(m->last_error), "%s", d->errmsg);
}

/* Storage errors say something about a copy; domain errors about the request. */
static bool is_storage_error(int err)
{
    return err == -EIO || err == -ENOSPC || err == -ENOMEM || err == -EBADMSG ||
           err == -EBUSY || err == -EROFS || err == -EACCES || err == -EINPROGRESS;
}

static int crash_here(struct mirror *m, const char *point)
{
    if (!platform_crash_point(m->env, m->process_node, point))
        return 0;
    m->crashed = true;
    snprintf(m->copy[0].errmsg, SHOP_ERRMSG_MAX, "node %s crashed at %s", m->process_node,
             point);
    return -ECANCELED;
}

/* ---- changes ---------------------------------------------------------- */

/* Runs body on d (inside its transaction) and captures what it changed. */
static int run_captured(struct db *d, db_body body, void *arg, struct change_log *log)
{
    change_capture_start(d, log);
    int err = body(d, arg);
    int cap_err = change_capture_stop(d, log);
    return err ? err : cap_err;
}

/*
 * Appends change seq to d's backlog (applying it first when it comes from
 * the other copy); inside d's transaction. The row is also d's position
 * (db_load_seq). Rows the peer already holds are pruned every
 * MIRROR_PRUNE_EVERY changes, always keeping the peer's position and the
 * last, so a write touches one bookkeeping page and a change taken back out
 * (compensate) leaves the row of the position before it.
 */
static int append_change(struct mirror *m, struct db *d, const void *data, size_t len,
                         int64_t seq, int64_t peer_seq, bool apply)
{
    int err = apply ? change_apply_mirrored(d, data, len, seq) : 0;
    if (err)
        return err;
    sqlite3_stmt *st =
        db_stmt(d, "INSERT INTO fd_backlog (seq, changeset, at_us) VALUES (?, ?, ?)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_blob(st, 2, data, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, mirror_now(m));
    err = db_step_done(d, st, "recording the change in the backlog");
    if (err || seq % MIRROR_PRUNE_EVERY != 0)
        return err;
    st = db_stmt(d, "DELETE FROM fd_backlog WHERE seq < ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, peer_seq < seq ? peer_seq : seq - 1);
    return db_step_done(d, st, "pruning the backlog");
}

/* ---- the two-copy write ---------------------------------------------- */

struct write_result {
    int err;        /* 0: the lead committed (and the other too unless other_err) */
    enum side side; /* who failed */
    int other_err;  /* the other copy refused the change (lead committed) */
    bool rolled_back; /* strict: the other refused first, so the lead rolled back */
    struct change_log *cs; /* the mirror's capture buffer */
    int64_t seq;
};

/* Opens the other copy's transaction and applies the change, uncommitted. */
static int prepare_other(struct mirror *m, struct db *b, const struct change_log *cs,
                         int64_t seq, int64_t peer_seq)
{
    int err = db_begin(b);
    if (!err)
        err = append_change(m, b, cs->data, cs->len, seq, peer_seq, true);
    if (err)
        db_rollback(b);
    return err;
}

struct commit_job {
    struct db *d;
    int err;
    char msg[SHOP_ERRMSG_MAX]; /* the two commits must not share a buffer */
};

static void commit_job_run(void *arg)
{
    struct commit_job *j = arg;
    char *shared = j->d->errmsg;
    j->d->errmsg = j->msg;
    j->msg[0] = '\0';
    j->err = db_commit(j->d);
    j->d->errmsg = shared;
}

/* Both copies commit at once (the host's parallel hook): their syncs overlap. */
static void commit_both(struct mirror *m, struct db *A, struct db *B, struct write_result *r)
{
    struct commit_job ja = {.d = A}, jb = {.d = B};
    m->env->parallel(m->env->ctx, commit_job_run, &ja, &jb);
    if (!ja.err)
        A->seq = r->seq;
    if (!jb.err)
        B->seq = r->seq;
    r->err = ja.err;
    r->other_err = jb.err;
    if (ja.err)
        snprintf(A->errmsg, SHOP_ERRMSG_MAX, "%s", ja.msg);
    else if (jb.err)
        snprintf(A->errmsg, SHOP_ERRMSG_MAX, "%s", jb.msg);
    r->side = ja.err ? (jb.err ? SIDE_LEAD : SIDE_LEAD_ONLY) : (jb.err ? SIDE_OTHER : SIDE_NONE);
}

/*
 * Runs body on copy a and, when b >= 0, mirrors it to copy b; both commit or
 * the result says which side failed. The lead's backlog always records it.
 */
static void write_pair(struct mirror *m, int a, int b, db_body body, void *arg,
                       struct write_result *r)
{
    struct db *A = &m->copy[a];
    struct db *B = b >= 0 ? &m->copy[b] : NULL;
    memset(r, 0, sizeof(*r));
    r->cs = &m->log;
    r->side = SIDE_LEAD;
    r->err = db_begin(A);
    if (r->err)
        return;
    r->err = run_captured(A, body, arg, r->cs);
    if (!r->err && r->cs->len == 0) {
        r->err = db_commit(A); /* nothing changed: no mirrored write */
        r->side = r->err ? SIDE_LEAD : SIDE_NONE;
        return;
    }
    r->seq = A->seq + 1;
    if (!r->err)
        r->err = append_change(m, A, r->cs->data, r->cs->len, r->seq, m->copy[1 - a].seq, false);
    if (r->err) {
        db_rollback(A);
        return;
    }
    if (B != NULL)
        r->other_err = prepare_other(m, B, r->cs, r->seq, A->seq);
    if ((r->err = crash_here(m, "mirror-before-commit")) != 0)
        return;
    if (B != NULL && r->other_err && m->policy == MIRROR_STRICT &&
        !mutant_is(MUTANT_MIRROR_STRICT_NO_UNDO)) {
        /* strict, and the other copy refused before anything committed: the
         * lead does not commit either, so nothing was saved and neither
         * copy's position moves (no change and undo to replay later) */
        db_rollback(A);
        r->side = SIDE_OTHER;
        r->rolled_back = true;
        return;
    }
    if (B != NULL && !r->other_err && m->env->parallel != NULL) {
        commit_both(m, A, B, r);
        return;
    }
    r->err = db_commit(A);
    if (r->err) {
        if (B != NULL && !r->other_err)
            db_rollback(B);
        return;
    }
    A->seq = r->seq;
    r->side = SIDE_NONE;
    if ((r->err = crash_here(m, "mirror-between-commits")) != 0) {
        r->side = SIDE_LEAD;
        return;
    }
    if (B != NULL && !r->other_err)
        r->other_err = db_commit(B);
    if (B != NULL && !r->other_err)
        B->seq = r->seq;
    if (r->other_err)
        r->side = SIDE_OTHER;
}

/*
 * strict: the other copy refused a change the lead committed; undo it on the
 * lead, in one transaction. When the other copy surely does not hold it
 * (other_known), the undo takes the change back out of the lead's backlog
 * too: nothing was saved, so neither copy's position moves and nothing is
 * behind. When the other's commit is in doubt (it may have reached its disk),
 * the inverse is committed as the next change instead, so the other copy,
 * if it holds the change, replays the inverse and ends equal.
 */
static int compensate(struct mirror *m, int a, const struct change_log *cs, bool other_known)
{
    struct db *A = &m->copy[a];
    struct change_log *inv = &m->inverse;
    int rc = change_invert(cs->data, cs->len, inv);
    if (rc != 0)
        return db_fail(A, rc, "inverting a change: %s", platform_strerror(rc));
    int64_t seq = other_known ? A->seq - 1 : A->seq + 1;
    int err = db_begin(A);
    if (!err && other_known) {
        err = change_apply_mirrored(A, inv->data, inv->len, A->seq);
        sqlite3_stmt *st = err ? NULL : db_stmt(A, "DELETE FROM fd_backlog WHERE seq = ?");
        if (!err && st == NULL)
            err = -EIO;
        if (!err) {
            sqlite3_bind_int64(st, 1, A->seq);
            err = db_step_done(A, st, "taking the undone change out of the backlog");
        }
    } else if (!err) {
        err = append_change(m, A, inv->data, inv->len, seq, m->copy[1 - a].seq, true);
    }
    if (err)
        db_rollback(A);
    else
        err = db_commit(A);
    if (!err)
        A->seq = seq;
    return err;
}

static int refuse_behind(struct mirror *m, int behind)
{
    struct db *L = &m->copy[m->lead];
    mirror_set_state(m, MIRROR_FAILED);
    return db_fail(L, -EIO,
                   "writes refused (policy=strict): copy %s is %lld change(s) behind and "
                   "cannot catch up: %s",
                   m->copy[behind].node, (long long)(L->seq - m->copy[behind].seq),
                   m->last_error);
}

/* The other copy refused: degrade acknowledges on one copy, strict undoes. */
static int handle_other_failure(struct mirror *m, int a, int b, struct write_result *r)
{
    mirror_note_error(m, &m->copy[b]);
    if (m->policy == MIRROR_DEGRADE) {
        mirror_set_state(m, MIRROR_DEGRADED);
        return 0;
    }
    int other_err = r->other_err == -EINPROGRESS ? -EIO : r->other_err;
    mirror_set_state(m, MIRROR_FAILED);
    if (r->rolled_back)
        return db_fail(&m->copy[a], other_err,
                       "write refused (policy=strict): copy %s could not write, so %s did not "
                       "commit it either: %s",
                       m->copy[b].node, m->copy[a].node, m->last_error);
    int err = mutant_is(MUTANT_MIRROR_STRICT_NO_UNDO)
                  ? 0
                  : compensate(m, a, r->cs, r->other_err != -EINPROGRESS);
    if (err) {
        mirror_note_error(m, &m->copy[a]);
        return db_fail(&m->copy[a], -EINPROGRESS,
                       "copy %s refused the write and undoing it on %s failed too; outcome "
                       "unknown until resync: %s",
                       m->copy[b].node, m->copy[a].node, m->last_error);
    }
    return db_fail(&m->copy[a], other_err,
                   "write refused (policy=strict): copy %s could not write, so it was undone "
                   "on %s: %s",
                   m->copy[b].node, m->copy[a].node, m->last_error);
}

/*
 * Parallel commits: the other copy committed the change and the lead could
 * not. The other copy holds the newest write, so it leads now; degrade has
 * the write durable there and acknowledges it, strict undoes it there.
 */
static int handle_lead_only_failure(struct mirror *m, int a, int b, struct write_result *r)
{
    mirror_note_error(m, &m->copy[a]);
    int lead_err = r->err == -EINPROGRESS ? -EIO : r->err;
    m->lead = b;
    if (m->policy == MIRROR_DEGRADE) {
        mirror_set_state(m, MIRROR_DEGRADED);
        return 0;
    }
    int err = compensate(m, b, r->cs, r->err != -EINPROGRESS);
    mirror_set_state(m, MIRROR_FAILED);
    if (err)
        return db_fail(&m->copy[b], -EINPROGRESS,
                       "copy %s refused the write and undoing it on %s failed too; outcome "
                       "unknown until resync: %s",
                       m->copy[a].node, m->copy[b].node, m->last_error);
    return db_fail(&m->copy[b], lead_err,
                   "write refused (policy=strict): copy %s could not write, so it was undone "
                   "on %s: %s",
                   m->copy[a].node, m->copy[b].node, m->last_error);
}

static int write_early(struct mirror *m, db_body body, void *arg)
{
    struct write_result r;
    write_pair(m, 0, -1, body, arg, &r);
    if (!r.err && r.cs->len > 0) {
        /* Naive: the primary alone decided; the mirror gets it if it can. */
        struct db *B = &m->copy[1];
        int err = prepare_other(m, B, r.cs, r.seq, m->copy[0].seq);
        if (!err)
            err = db_commit(B);
        if (!err)
            B->seq = r.seq;
        else
            mirror_note_error(m, B);
    }
    return r.err;
}

int mirror_write(struct mirror *m, db_body body, void *arg)
{
    if (m->crashed)
        return db_fail(&m->copy[0], -ECANCELED, "node %s has crashed", m->process_node);
    if (m->ack == MIRROR_ACK_EARLY)
        return write_early(m, body, arg);
    int a = m->lead, b = 1 - a;
    /* strict refuses writes while behind, so every write retries (it is one
     * or two undo entries behind); degrade writes go on regardless and
     * retry a possibly long backlog only after a backoff */
    bool retry = m->policy == MIRROR_STRICT || mirror_mono(m) >= m->retry_at_us;
    if (m->copy[b].seq != m->copy[a].seq && retry)
        (void)mirror_resync(m);
    if (m->crashed)
        return -ECANCELED;
    a = m->lead; /* a completed resync hands the lead back to the primary */
    b = 1 - a;
    bool b_in_sync = m->copy[b].seq == m->copy[a].seq;
    if (!b_in_sync && m->policy == MIRROR_STRICT)
        return refuse_behind(m, b);

    struct write_result r;
    write_pair(m, a, b_in_sync ? b : -1, body, arg, &r);
    int err = r.err;
    if (r.err == -ECANCELED) {
        /* crashed: nothing more */
    } else if (r.err && r.side == SIDE_LEAD && is_storage_error(r.err)) {
        mirror_note_error(m, &m->copy[a]);
        bool can_fail_over = m->policy == MIRROR_DEGRADE && b_in_sync &&
                             r.err != -EINPROGRESS && !m->copy[a].pending_unknown;
        if (can_fail_over) {
            /* The lead cannot write but the other copy holds everything:
             * it leads now, and the old lead will be resynced from it. */
            m->lead = b;
            mirror_set_state(m, MIRROR_DEGRADED);
            write_pair(m, b, -1, body, arg, &r);
            err = r.err;
            if (err && is_storage_error(err)) {
                mirror_note_error(m, &m->copy[b]);
                mirror_set_state(m, MIRROR_FAILED);
            }
        } else {
            mirror_set_state(m, MIRROR_FAILED);
        }
    } else if (r.side == SIDE_LEAD_ONLY) {
        err = handle_lead_only_failure(m, a, b, &r);
    } else if (!r.err && r.side == SIDE_OTHER && mutant_is(MUTANT_MIRROR_ACK_BEFORE_MIRROR)) {
        m->copy[b].seq = m->copy[a].seq; /* the bug: acknowledged, the mirror's miss forgotten */
    } else if (!r.err && r.side == SIDE_OTHER) { /* also strict's rollback */
        err = handle_other_failure(m, a, b, &r);
    } else if (!r.err) {
        mirror_set_state(m, b_in_sync ? MIRROR_IN_SYNC : MIRROR_DEGRADED);
    }
    return err;
}

int mirror_read(struct mirror *m, db_body body, void *arg)
{
    if (m->crashed)
        return db_fail(&m->copy[0], -ECANCELED, "node %s has crashed", m->process_node);
    int a = m->lead, b = 1 - a;
    int err = db_read(&m->copy[a], body, arg);
    m->read_copy = a;
    if (!err || !is_storage_error(err))
        return err;
    /* Fall back only to a copy that holds every acknowledged write (the
     * naive mode believes its mirror always does). */
    if (m->copy[b].seq != m->copy[a].seq && m->ack != MIRROR_ACK_EARLY &&
        !mutant_is(MUTANT_MIRROR_READ_STALE))
        return err;
    int err_b = db_read(&m->copy[b], body, arg);
    m->read_copy = b;
    if (err_b && is_storage_error(err_b))
        return db_fail(&m->copy[a], err, "neither copy could read: %s / %s", m->copy[a].node,
                       m->copy[b].node);
    return err_b;
}

/* ---- resync ----------------------------------------------------------- */

struct backlog_batch {
    size_t count;
    int64_t seq[MIRROR_RESYNC_BATCH];
    struct {
        void *data;
        size_t len;
    } cs[MIRROR_RESYNC_BATCH];
};

static void batch_release(struct backlog_batch *bb)
{
    for (size_t i = 0; i < bb->count; i++)
        free(bb->cs[i].data);
    bb->count = 0;
}

static int batch_load(struct db *A, int64_t after, struct backlog_batch *bb)
{
    sqlite3_stmt *st =
        db_stmt(A, "SELECT seq, changeset FROM fd_backlog WHERE seq > ? ORDER BY seq LIMIT ?");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, MIRROR_RESYNC_BATCH);
    int rc;
    bb->count = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 1);
        void *copy = malloc(n > 0 ? (size_t)n : 1);
        if (copy == NULL) {
            sqlite3_reset(st);
            batch_release(bb);
            return db_fail(A, -ENOMEM, "out of memory reading the backlog");
        }
        memcpy(copy, sqlite3_column_blob(st, 1), (size_t)n);
        bb->seq[bb->count] = sqlite3_column_int64(st, 0);
        bb->cs[bb->count].data = copy;
        bb->cs[bb->count].len = (size_t)n;
        bb->count++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        batch_release(bb);
        return db_fail_sqlite(A, sqlite3_extended_errcode(A->conn), "reading the backlog");
    }
    return 0;
}

/* The backlog no longer holds what b needs (a new, empty copy): copy it all. */
static int full_copy(struct db *A, struct db *B)
{
    sqlite3_backup *bk = sqlite3_backup_init(B->conn, "main", A->conn, "main");
    if (bk == NULL)
        return db_fail_sqlite(B, sqlite3_extended_errcode(B->conn), "starting a full copy");
    int rc = sqlite3_backup_step(bk, -1);
    sqlite3_backup_finish(bk);
    if (rc != SQLITE_DONE)
        return db_fail_sqlite(B, rc, "copying the whole database");
    return db_load_seq(B);
}

static int apply_batch(struct mirror *m, struct db *B, int64_t peer_seq,
                       const struct backlog_batch *bb)
{
    int err = db_begin(B);
    for (size_t i = 0; !err && i < bb->count; i++)
        err = append_change(m, B, bb->cs[i].data, bb->cs[i].len, bb->seq[i], peer_seq,
                            !(mutant_is(MUTANT_MIRROR_RESYNC_SKIPS) && i == 0));
    if (err) {
        db_rollback(B);
        return err;
    }
    err = db_commit(B);
    if (!err)
        B->seq = bb->seq[bb->count - 1];
    return err;
}

/*
 * A copy's disk takes writes again? A transaction that adds and takes back
 * one bookkeeping row: it reaches the disk (the page is dirty) and leaves
 * the content and the position as they were.
 */
static int probe_write(struct db *d)
{
    int err = db_begin(d);
    sqlite3_stmt *st = err ? NULL
                           : db_stmt(d, "INSERT INTO fd_backlog (seq, changeset, at_us) "
                                        "VALUES (-1, x'', 0)");
    if (!err)
        err = st == NULL ? -EIO : db_step_done(d, st, "probing the disk");
    st = err ? NULL : db_stmt(d, "DELETE FROM fd_backlog WHERE seq = -1");
    if (!err)
        err = st == NULL ? -EIO : db_step_done(d, st, "probing the disk");
    if (err) {
        db_rollback(d);
        return err;
    }
    return db_commit(d);
}

int mirror_resync(struct mirror *m)
{
    if (m->crashed)
        return -ECANCELED;
    if (m->ack == MIRROR_ACK_EARLY)
        return db_fail(&m->copy[0], -ENOTSUP,
                       "ack=early keeps no way to repair its mirror: that is its bug");
    int a = m->lead, b = 1 - a;
    struct db *A = &m->copy[a], *B = &m->copy[b];
    struct backlog_batch *bb = calloc(1, sizeof(*bb));
    if (bb == NULL)
        return db_fail(A, -ENOMEM, "out of memory for a resync batch");
    int err = 0;
    bool was_behind = B->seq < A->seq;
    /* A commit whose sync failed left its frames in the copy's WAL: a reopen
     * (even a clean one whose checkpoint cannot sync) or a crash may bring
     * them back, after readers saw the copy without them. The next successful
     * commit overwrites them, so settle the lead first (and the other copy
     * when no replay will commit on it): what was read is what stays. */
    if (A->pending_unknown && (err = probe_write(A)) != 0)
        mirror_note_error(m, A);
    if (!err && !was_behind && B->pending_unknown && (err = probe_write(B)) != 0)
        mirror_note_error(m, B);
    if (!err && !was_behind && B->seq == A->seq && m->state != MIRROR_IN_SYNC) {
        /* nothing to replay (strict refused and saved nothing): in sync
         * again only once both disks take a write */
        err = probe_write(A);
        if (err)
            mirror_note_error(m, A);
        else if ((err = probe_write(B)) != 0)
            mirror_note_error(m, B);
    }
    while (!err && B->seq < A->seq) {
        int64_t from = B->seq;
        err = batch_load(A, B->seq, bb);
        if (err) {
            mirror_note_error(m, A);
            break;
        }
        if (bb->count == 0 || bb->seq[0] != B->seq + 1) {
            batch_release(bb);
            err = full_copy(A, B);
        } else {
            err = apply_batch(m, B, A->seq, bb);
            batch_release(bb);
        }
        if (err)
            mirror_note_error(m, B);
        else if (B->seq <= from) {
            /* a lead whose position is ahead of what its own database holds
             * (a commit counted that is not there): another round would copy
             * the same again, forever */
            err = db_fail(B, -EIO, "resync made no progress: %s holds changes up to %lld only",
                          A->node, (long long)B->seq);
            mirror_note_error(m, B);
        } else if (B->seq < A->seq) {
            err = crash_here(m, "mirror-during-resync");
        }
    }
    free(bb);
    if (!err) {
        m->resyncs += was_behind;
        m->lead = 0; /* in sync again: the primary leads */
        m->retry_wait_us = 0;
        m->retry_at_us = 0;
        m->wake_at_us = 0;
        mirror_set_state(m, MIRROR_IN_SYNC);
    } else if (err != -ECANCELED) {
        /* The behind copy still cannot write: writes stop hammering it
         * and retry after a backoff in the host's time. */
        m->retry_wait_us = m->retry_wait_us == 0 ? MIRROR_RETRY_US_MIN
                           : m->retry_wait_us >= MIRROR_RETRY_US_MAX / 2 ? MIRROR_RETRY_US_MAX
                                                                        : 2 * m->retry_wait_us;
        m->retry_at_us = mirror_mono(m) + m->retry_wait_us;
        mirror_set_state(m, m->policy == MIRROR_DEGRADE ? MIRROR_DEGRADED : MIRROR_FAILED);
        m->wake_at_us = mirror_mono(m) + (m->retry_wait_us > MIRROR_REPAIR_US ? m->retry_wait_us
                                                                             : MIRROR_REPAIR_US);
    }
    return err;
}

/*
 * Self-repair: a pair out of sync does not wait for a write (a strict pair
 * refuses them all until it is repaired, and a quiet shop may get none).
 * The first attempt comes MIRROR_REPAIR_US after the pair left sync, later
 * ones with the retry backoff (never sooner than MIRROR_REPAIR_US, never
 * later than MIRROR_RETRY_US_MAX); a write's own resync attempt counts too.
 */
int64_t mirror_next_wake(const struct mirror *m)
{
    if (m->crashed || m->ack == MIRROR_ACK_EARLY)
        return -1;
    if (m->state == MIRROR_IN_SYNC && m->copy[0].seq == m->copy[1].seq)
        return -1;
    return m->wake_at_us;
}

int mirror_tick(struct mirror *m)
{
    int64_t at = mirror_next_wake(m);
    if (at < 0 || mirror_mono(m) < at)
        return 0;
    return mirror_resync(m);
}

/* ---- lifecycle and status -------------------------------------------- */

/*
 * A copy created empty next to one that already holds data (a new mirror
 * disk, or a single database turned into a mirrored one) cannot be caught up
 * from a backlog: copy the whole database over.
 */
static int seed_new_copy(struct mirror *m, const bool empty[2])
{
    if (empty[0] == empty[1])
        return 0;
    int from = empty[0] ? 1 : 0;
    int err = full_copy(&m->copy[from], &m->copy[1 - from]);
    if (err)
        mirror_note_error(m, &m->copy[1 - from]);
    return err;
}

static int copy_is_empty(struct db *d, bool *empty)
{
    sqlite3_stmt *st = db_stmt(d, "SELECT (SELECT count(*) FROM users) + "
                                  "(SELECT count(*) FROM products) + (SELECT count(*) FROM orders)");
    if (st == NULL)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int err = db_fail_sqlite(d, sqlite3_extended_errcode(d->conn), "counting rows");
        sqlite3_reset(st);
        return err;
    }
    *empty = sqlite3_column_int64(st, 0) == 0 && d->seq == 0;
    sqlite3_reset(st);
    return 0;
}

int mirror_open(struct mirror *m, const struct shop_config *cfg, const struct platform_env *env,
                char *errmsg)
{
    memset(m, 0, sizeof(*m));
    m->env = env;
    m->policy = cfg->policy;
    m->ack = cfg->ack;
    m->process_node = cfg->primary.node;
    int err = db_open(&m->copy[0], &cfg->primary, cfg, errmsg);
    if (err)
        return err;
    err = db_open(&m->copy[1], &cfg->mirror, cfg, errmsg);
    if (err) {
        db_close(&m->copy[0], false);
        return err;
    }
    /* A mirrored local's sync marks are part of its mirrored writes: both
     * copies hold their table before any change can carry a mark. */
    for (int i = 0; !err && cfg->sync_queue != SHOP_QUEUE_NONE && i < 2; i++)
        err = sync_prepare_copy(&m->copy[i]);
    if (err) { /* the message is in errmsg (both copies write there) */
        db_close(&m->copy[0], false);
        db_close(&m->copy[1], false);
        return err;
    }
    m->since_us = mirror_now(m);
    m->state = MIRROR_IN_SYNC;
    if (m->ack == MIRROR_ACK_EARLY)
        return 0; /* the naive mode never checks its mirror */
    bool empty[2] = {false, false};
    err = copy_is_empty(&m->copy[0], &empty[0]);
    if (!err)
        err = copy_is_empty(&m->copy[1], &empty[1]);
    if (!err)
        err = seed_new_copy(m, empty);
    if (err) {
        mirror_close(m, false);
        return err;
    }
    m->lead = m->copy[1].seq > m->copy[0].seq ? 1 : 0;
    /* Recovery: the copy that is behind (a crash between the commits, or a
     * degraded run) catches up now; if it cannot, the state says so. */
    if (m->copy[0].seq != m->copy[1].seq)
        (void)mirror_resync(m);
    return m->crashed ? -ECANCELED : 0;
}

void mirror_close(struct mirror *m, bool abandon)
{
    change_log_release(&m->log);
    change_log_release(&m->inverse);
    db_close(&m->copy[0], abandon || m->crashed);
    db_close(&m->copy[1], abandon || m->crashed);
}

void mirror_get_status(const struct mirror *m, struct mirror_status *out)
{
    memset(out, 0, sizeof(*out));
    int a = m->lead, b = 1 - a;
    out->state = m->state;
    out->since_us = m->since_us;
    out->lead = m->copy[a].node;
    out->seq_primary = m->copy[0].seq;
    out->seq_mirror = m->copy[1].seq;
    out->changes_behind = m->copy[a].seq - m->copy[b].seq;
    if (out->changes_behind < 0)
        out->changes_behind = -out->changes_behind;
    out->behind = out->changes_behind > 0 ? m->copy[m->copy[a].seq > m->copy[b].seq ? b : a].node
                                          : NULL;
    out->resyncs = m->resyncs;
    snprintf(out->last_error, sizeof(out->last_error), "%s", m->last_error);
}
