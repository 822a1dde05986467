/*
 * check_mirror_log.c — a mirrored shop that also replicates (DESIGN §2,
 * "Combinations": mirror async, mirror cluster, mirror offline). Its outbox
 * and sync queue are written inside the mirrored write on BOTH copies, with
 * the same sequence numbers and queue ids; prunes and SYNCED marks are
 * mirrored writes; a degraded pair's resync brings the bookkeeping along in
 * either direction; strict refuses it with the change; a crash between the
 * commits recovers it on reopen. Each test compares the copies' bookkeeping
 * tables row by row (raw SQLite, read-only), not only their domain digests.
 */
#include <check.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/faults.h"
#include "tests/platform/testenv.h"
#include "tests/check_run.h"

static struct testenv t;

static void setup(void)
{
    testenv_init(&t);
}

static void teardown(void)
{
    testenv_release(&t);
}

static shop *open_logged(enum mirror_policy policy, bool outbox, enum shop_sync_queue queue)
{
    struct shop_config cfg = testenv_config(&t, SHOP_MIRROR, policy, MIRROR_ACK_BOTH);
    cfg.outbox = outbox;
    cfg.sync_queue = queue;
    return testenv_open(&t, &cfg);
}

/* The rows of sql on the copy at path, as one text (malloc'ed). */
static char *dump(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    size_t cap = 256, len = 0;
    char *out = calloc(1, cap);
    ck_assert_ptr_nonnull(out);
    if (rc != SQLITE_OK) { /* no such table: say so, so the copies can differ by it */
        snprintf(out, cap, "(%s)", sqlite3_errmsg(db));
        sqlite3_close(db);
        return out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *v = (const char *)sqlite3_column_text(st, i);
            size_t n = strlen(v != NULL ? v : "NULL") + 2;
            while (len + n + 1 > cap) {
                cap *= 2;
                out = realloc(out, cap);
                ck_assert_ptr_nonnull(out);
            }
            len += (size_t)snprintf(out + len, cap - len, "%s%c", v != NULL ? v : "NULL",
                                    i + 1 < sqlite3_column_count(st) ? '|' : '\n');
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static const char outbox_sql[] = "SELECT seq, hex(change), at_us FROM fd_outbox ORDER BY seq";
static const char queue_sql[] =
    "SELECT id, tbl, row_key, op, state, retries, created_at, synced_at, last_error "
    "FROM fd_sync_queue ORDER BY id";
static const char marks_sql[] = "SELECT queue_id, at_us FROM fd_sync_marks ORDER BY 1, 2";

/* Both copies hold the same rows of sql; returns how many lines they hold. */
static int assert_same_rows(const char *sql)
{
    char *a = dump(t.primary_path, sql), *b = dump(t.mirror_path, sql);
    ck_assert_str_eq(a, b);
    int lines = 0;
    for (const char *p = a; *p; p++)
        lines += *p == '\n';
    free(a);
    free(b);
    return lines;
}

static int rows_on(const char *path, const char *sql)
{
    char *a = dump(path, sql);
    int lines = 0;
    for (const char *p = a; *p; p++)
        lines += *p == '\n';
    free(a);
    return lines;
}

static void assert_copies_equal(shop *s)
{
    char a[65], b[65];
    testenv_digest(s, 0, a);
    testenv_digest(s, 1, b);
    ck_assert_str_eq(a, b);
}

static int64_t add_user(shop *s, int i)
{
    char email[64];
    snprintf(email, sizeof(email), "u%d@example.com", i);
    return shop_user_create(s, "someone", email);
}

static struct mirror_status status_of(shop *s)
{
    struct mirror_status st;
    ck_assert_int_eq(shop_mirror_status(s, &st), 0);
    return st;
}

static struct shop_outbox_info info_of(shop *s)
{
    struct shop_outbox_info info;
    int rc = shop_outbox_info(s, &info);
    ck_assert_msg(rc == 0, "outbox info: %d %s", rc, shop_errmsg(s));
    return info;
}

/* A process crash of the node: both copies lose what was not synced; the
 * shop is reopened by the caller. Returns NULL. */
static shop *crash_and_reopen(shop *s)
{
    ck_assert_int_eq(faults_vfs_crash("primary", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    ck_assert_int_eq(faults_vfs_crash("mirror", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    shop_abandon(s);
    faults_disarm_all();
    ck_assert_int_eq(faults_vfs_restart("primary"), 0);
    ck_assert_int_eq(faults_vfs_restart("mirror"), 0);
    return NULL;
}

/* ---- the outbox ---------------------------------------------------------- */

/* Every write lands in both copies' outbox with the same sequence; the
 * shop's last sequence is the outbox's (what async ships and acknowledges),
 * and a batch read from the pair makes an equal replica. */
START_TEST(outbox_is_written_on_both_copies_with_the_same_sequences)
{
    shop *s = open_logged(MIRROR_STRICT, true, SHOP_QUEUE_NONE);
    testenv_seed(s, 3);
    for (int i = 1; i <= 5; i++)
        ck_assert_int_gt(add_user(s, i), 0);
    struct shop_outbox_info info = info_of(s);
    ck_assert_int_ge(info.head_seq, 9); /* 3 products + 1 user seeded, 5 users */
    ck_assert_int_eq(shop_last_seq(s), info.head_seq);
    ck_assert_int_eq(assert_same_rows(outbox_sql), info.head_seq);
    assert_copies_equal(s);

    struct shop_config rc = testenv_config(&t, SHOP_SINGLE, MIRROR_STRICT, MIRROR_ACK_BOTH);
    char path[320];
    snprintf(path, sizeof(path), "%s/replica.sqlite", t.dir);
    rc.primary = (struct shop_copy){.node = "secondary", .path = path, .vfs = NULL};
    shop *rep = testenv_open(&t, &rc);
    struct shop_batch b;
    ck_assert_int_eq(shop_outbox_read(s, 0, 100, SHOP_BATCH_BYTES_MAX, &b), 0);
    ck_assert_int_eq(b.count, (uint32_t)info.head_seq);
    struct shop_apply_result r;
    ck_assert_int_eq(shop_replica_apply(rep, "primary", b.data, b.len, &r), 0);
    ck_assert_int_eq(r.position, info.head_seq);
    shop_batch_release(&b);
    char a[65], c[65];
    testenv_digest(s, 0, a);
    ck_assert_int_eq(shop_digest(rep, 0, c), 0);
    ck_assert_str_eq(a, c);
    shop_close(rep);

    /* The prune is a mirrored write: both copies drop the same rows. */
    ck_assert_int_eq(shop_outbox_prune(s, info.head_seq - 2), 0);
    ck_assert_int_eq(assert_same_rows(outbox_sql), 2); /* head-1 and head */
    ck_assert_int_eq(info_of(s).oldest_seq, info.head_seq - 2 + 1);
    ck_assert_int_eq(status_of(s).state, MIRROR_IN_SYNC);
    shop_close(s);
}
END_TEST

/* Without an outbox the mirrored shop refuses the outbox calls, and a
 * mirror still never applies another node's batches. */
START_TEST(mirror_without_outbox_refuses_the_log)
{
    shop *s = open_logged(MIRROR_STRICT, false, SHOP_QUEUE_NONE);
    testenv_seed(s, 1);
    struct shop_outbox_info info;
    struct shop_batch b;
    struct shop_apply_result r;
    ck_assert_int_eq(shop_outbox_info(s, &info), -EINVAL);
    ck_assert_int_eq(shop_outbox_read(s, 0, 10, 1000, &b), -EINVAL);
    ck_assert_int_eq(shop_outbox_prune(s, 1), -EINVAL);
    ck_assert_int_eq(shop_replica_apply(s, "x", "FDB1\0\0\0\0", 8, &r), -EINVAL);
    ck_assert_int_eq(rows_on(t.primary_path, outbox_sql), 0);
    /* the pair's own sequence stays what shop_last_seq says */
    ck_assert_int_eq(shop_last_seq(s), status_of(s).seq_primary);
    shop_close(s);
}
END_TEST

/* degrade, the mirror's disk fails: writes and a prune go on on the primary
 * alone; on heal the resync brings the outbox rows and the prune along. */
START_TEST(degraded_mirror_gets_the_outbox_back_on_resync)
{
    shop *s = open_logged(MIRROR_DEGRADE, true, SHOP_QUEUE_NONE);
    testenv_seed(s, 2);
    int64_t before = info_of(s).head_seq;
    testenv_arm("disk/mirror/write", EIO, 0);
    for (int i = 1; i <= 6; i++)
        ck_assert_int_gt(add_user(s, i), 0);
    ck_assert_int_eq(shop_outbox_prune(s, before + 2), 0);
    ck_assert_int_eq(status_of(s).state, MIRROR_DEGRADED);
    ck_assert_int_eq(info_of(s).head_seq, before + 6);
    /* the mirror is behind: it lacks the new rows and still has the pruned */
    ck_assert_int_eq(rows_on(t.mirror_path, outbox_sql), (int)before);
    faults_disarm_all();
    ck_assert_int_eq(shop_mirror_resync(s), 0);
    struct mirror_status st = status_of(s);
    ck_assert_int_eq(st.state, MIRROR_IN_SYNC);
    ck_assert_int_eq(st.changes_behind, 0);
    ck_assert_int_eq(assert_same_rows(outbox_sql), 4); /* before+6 - (before+2) */
    assert_copies_equal(s);
    ck_assert_int_gt(add_user(s, 7), 0);
    ck_assert_int_eq(assert_same_rows(outbox_sql), 5);
    ck_assert_int_eq(shop_last_seq(s), before + 7);
    shop_close(s);
}
END_TEST

/* The other direction: the primary's disk fails, the mirror leads and
 * records the outbox; on heal the primary is brought up to the mirror's. */
START_TEST(degraded_primary_gets_the_mirrors_outbox_back_on_resync)
{
    shop *s = open_logged(MIRROR_DEGRADE, true, SHOP_QUEUE_NONE);
    testenv_seed(s, 2);
    int64_t before = info_of(s).head_seq;
    testenv_arm("disk/primary/write", EIO, 0);
    for (int i = 1; i <= 4; i++)
        ck_assert_int_gt(add_user(s, i), 0);
    struct mirror_status st = status_of(s);
    ck_assert_int_eq(st.state, MIRROR_DEGRADED);
    ck_assert_str_eq(st.lead, "mirror");
    ck_assert_int_eq(info_of(s).head_seq, before + 4);
    ck_assert_int_eq(shop_last_seq(s), before + 4);
    ck_assert_int_eq(rows_on(t.mirror_path, outbox_sql), (int)before + 4);
    ck_assert_int_eq(rows_on(t.primary_path, outbox_sql), (int)before);
    faults_disarm_all();
    ck_assert_int_eq(shop_mirror_resync(s), 0);
    ck_assert_int_eq(status_of(s).state, MIRROR_IN_SYNC);
    ck_assert_int_eq(assert_same_rows(outbox_sql), (int)before + 4);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

/* strict: the mirror refuses, so the write and its outbox row are on
 * neither copy and the outbox head does not move. */
START_TEST(strict_refusal_leaves_no_outbox_row)
{
    shop *s = open_logged(MIRROR_STRICT, true, SHOP_QUEUE_SAME);
    testenv_seed(s, 1);
    int64_t head = info_of(s).head_seq;
    int queued = rows_on(t.primary_path, queue_sql);
    testenv_arm("disk/mirror/write", EIO, 0);
    ck_assert_int_eq(add_user(s, 1), -EIO);
    /* a prune is refused like any write while the mirror cannot write */
    ck_assert_int_lt(shop_outbox_prune(s, head), 0);
    faults_disarm_all();
    ck_assert_int_eq(info_of(s).head_seq, head);
    ck_assert_int_eq(assert_same_rows(outbox_sql), (int)head);
    ck_assert_int_eq(assert_same_rows(queue_sql), queued);
    ck_assert_int_gt(add_user(s, 2), 0);
    ck_assert_int_eq(info_of(s).head_seq, head + 1);
    ck_assert_int_eq(assert_same_rows(outbox_sql), (int)head + 1);
    ck_assert_int_eq(assert_same_rows(queue_sql), queued + 1);
    shop_close(s);
}
END_TEST

/* A crash between the two commits: the primary holds the write and its
 * outbox row, the mirror neither; the reopen's resync brings both. */
START_TEST(crash_between_commits_recovers_the_outbox_row)
{
    shop *s = open_logged(MIRROR_STRICT, true, SHOP_QUEUE_NONE);
    testenv_seed(s, 1);
    int64_t head = info_of(s).head_seq;
    testenv_arm("crash/primary/mirror-between-commits", 0, 1);
    ck_assert_int_eq(add_user(s, 1), -ECANCELED);
    ck_assert_int_eq(t.crashes, 1);
    faults_disarm_all();
    ck_assert_int_eq(rows_on(t.primary_path, outbox_sql), (int)head + 1);
    ck_assert_int_eq(rows_on(t.mirror_path, outbox_sql), (int)head);
    s = crash_and_reopen(s);
    s = open_logged(MIRROR_STRICT, true, SHOP_QUEUE_NONE);
    ck_assert_int_eq(status_of(s).state, MIRROR_IN_SYNC);
    ck_assert_int_eq(info_of(s).head_seq, head + 1);
    ck_assert_int_eq(assert_same_rows(outbox_sql), (int)head + 1);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

/* ---- the sync queue ------------------------------------------------------ */

static shop *open_central(void)
{
    struct shop_config cfg = testenv_config(&t, SHOP_SINGLE, MIRROR_STRICT, MIRROR_ACK_BOTH);
    static char path[320];
    snprintf(path, sizeof(path), "%s/central.sqlite", t.dir);
    cfg.primary = (struct shop_copy){.node = "central", .path = path, .vfs = NULL};
    return testenv_open(&t, &cfg);
}

/* One round: push what is pending, apply it centrally, mark it. */
static uint32_t sync_round(shop *local, shop *central)
{
    struct shop_sync_push p;
    struct shop_sync_result r;
    struct shop_sync_marked m;
    int rc = shop_sync_pending(local, SHOP_SYNC_PUSH_ROWS_MAX, true, &p);
    ck_assert_msg(rc == 0, "pending: %d %s", rc, shop_errmsg(local));
    if (p.count == 0) {
        shop_sync_push_release(&p);
        return 0;
    }
    rc = shop_sync_apply_central(central, "primary", p.data, p.len, &r);
    ck_assert_msg(rc == 0, "apply: %d %s", rc, shop_errmsg(central));
    rc = shop_sync_mark(local, &r, 0, 3, &m);
    ck_assert_msg(rc == 0, "mark: %d %s", rc, shop_errmsg(local));
    uint32_t n = p.count;
    ck_assert_uint_eq(m.synced, n);
    shop_sync_push_release(&p);
    return n;
}

/* The queue rows, the SYNCED marks and the marks log are on both copies;
 * central is never a mirror. */
START_TEST(sync_queue_and_marks_are_on_both_copies)
{
    shop *s = open_logged(MIRROR_STRICT, false, SHOP_QUEUE_SAME);
    shop *central = open_central();
    testenv_seed(s, 2);
    int queued = assert_same_rows(queue_sql);
    ck_assert_int_ge(queued, 3);
    ck_assert_uint_eq(sync_round(s, central), (uint32_t)queued);
    ck_assert_int_eq(assert_same_rows(queue_sql), queued);
    ck_assert_int_eq(assert_same_rows(marks_sql), queued);
    struct shop_sync_status q;
    ck_assert_int_eq(shop_sync_status(s, &q), 0);
    ck_assert_int_eq(q.total[SHOP_SYNC_SYNCED], queued);
    ck_assert_int_eq(q.total[SHOP_SYNC_PENDING], 0);
    struct shop_sync_compare cmp;
    ck_assert_int_eq(shop_sync_compare(s, central, "primary", &cmp), 0);
    ck_assert_int_ge(cmp.rows, queued);
    ck_assert_int_eq(cmp.matching, cmp.rows);
    ck_assert_int_eq(assert_same_rows(outbox_sql), 0);
    assert_copies_equal(s);
    /* a mirror cannot be central */
    struct shop_sync_push p;
    struct shop_sync_result r;
    ck_assert_int_eq(shop_sync_pending(s, 10, true, &p), 0);
    ck_assert_int_eq(shop_sync_apply_central(s, "primary", p.data, p.len, &r), -EINVAL);
    shop_sync_push_release(&p);
    shop_close(central);
    shop_close(s);
}
END_TEST

/* degrade: a local whose mirror disk fails queues and marks on the primary
 * alone; the resync brings the queue rows and the marks to the mirror. */
START_TEST(degraded_local_gets_queue_and_marks_back_on_resync)
{
    shop *s = open_logged(MIRROR_DEGRADE, false, SHOP_QUEUE_SAME);
    shop *central = open_central();
    testenv_seed(s, 1);
    (void)sync_round(s, central);
    int queued = assert_same_rows(queue_sql);
    testenv_arm("disk/mirror/write", EIO, 0);
    for (int i = 1; i <= 3; i++)
        ck_assert_int_gt(add_user(s, i), 0);
    ck_assert_uint_eq(sync_round(s, central), 3);
    ck_assert_int_eq(status_of(s).state, MIRROR_DEGRADED);
    ck_assert_int_eq(rows_on(t.mirror_path, queue_sql), queued);
    faults_disarm_all();
    ck_assert_int_eq(shop_mirror_resync(s), 0);
    ck_assert_int_eq(assert_same_rows(queue_sql), queued + 3);
    ck_assert_int_eq(assert_same_rows(marks_sql), queued + 3);
    assert_copies_equal(s);
    struct shop_sync_status q;
    ck_assert_int_eq(shop_sync_status(s, &q), 0);
    ck_assert_int_eq(q.total[SHOP_SYNC_PENDING], 0);
    shop_close(central);
    shop_close(s);
}
END_TEST

/* queue=separate on a mirror: the queue rows are a second mirrored write;
 * a crash in between leaves the row on both copies and no queue row on
 * either (the naive mode's flaw, kept per node). */
START_TEST(queue_separate_crash_leaves_the_row_unqueued_on_both)
{
    shop *s = open_logged(MIRROR_STRICT, false, SHOP_QUEUE_SEPARATE);
    testenv_seed(s, 1);
    int queued = assert_same_rows(queue_sql);
    testenv_arm("crash/primary/sync-between-row-and-queue", 0, 1);
    ck_assert_int_eq(add_user(s, 1), -ECANCELED);
    s = crash_and_reopen(s);
    s = open_logged(MIRROR_STRICT, false, SHOP_QUEUE_SEPARATE);
    ck_assert_int_eq(assert_same_rows(queue_sql), queued);
    assert_copies_equal(s);
    struct shop_user u;
    ck_assert_int_eq(shop_user_get_by_email(s, "u1@example.com", &u), 0);
    shop_close(s);
}
END_TEST

static Suite *mirror_log_suite(void)
{
    Suite *suite = suite_create("mirror_log");
    TCase *tc = tcase_create("outbox");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, outbox_is_written_on_both_copies_with_the_same_sequences);
    tcase_add_test(tc, mirror_without_outbox_refuses_the_log);
    tcase_add_test(tc, degraded_mirror_gets_the_outbox_back_on_resync);
    tcase_add_test(tc, degraded_primary_gets_the_mirrors_outbox_back_on_resync);
    tcase_add_test(tc, strict_refusal_leaves_no_outbox_row);
    tcase_add_test(tc, crash_between_commits_recovers_the_outbox_row);
    suite_add_tcase(suite, tc);
    TCase *q = tcase_create("sync queue");
    tcase_add_checked_fixture(q, setup, teardown);
    tcase_add_test(q, sync_queue_and_marks_are_on_both_copies);
    tcase_add_test(q, degraded_local_gets_queue_and_marks_back_on_resync);
    tcase_add_test(q, queue_separate_crash_leaves_the_row_unqueued_on_both);
    suite_add_tcase(suite, q);
    return suite;
}

int main(void)
{
    return check_run(mirror_log_suite());
}
