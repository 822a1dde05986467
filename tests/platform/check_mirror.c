/*
 * check_mirror.c — tests of platform/mirror.c: synchronous mirroring in each
 * mode (strict, degrade, the naive ack=early) under disk faults injected on
 * either copy through the fault VFS, resync to identical contents, read
 * fallback, and the in-process crash points with recovery on reopen.
 */
#include <check.h>
#include <errno.h>
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

static void setup_parallel(void)
{
    testenv_init(&t);
    testenv_use_parallel(&t);
}

static void teardown(void)
{
    testenv_release(&t);
}

static shop *open_mirror(enum mirror_policy policy, enum mirror_ack ack)
{
    struct shop_config cfg = testenv_config(&t, SHOP_MIRROR, policy, ack);
    return testenv_open(&t, &cfg);
}

static void assert_copies_equal(shop *s)
{
    char a[65], b[65];
    testenv_digest(s, 0, a);
    testenv_digest(s, 1, b);
    ck_assert_str_eq(a, b);
}

static int user_count(shop *s)
{
    int n = 0;
    char email[64];
    struct shop_user u;
    for (int i = 1; i <= 200; i++) {
        snprintf(email, sizeof(email), "u%d@example.com", i);
        if (shop_user_get_by_email(s, email, &u) == 0)
            n++;
    }
    return n;
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

/* Reopens the shop and returns it: what a restart sees. */
static shop *reopen(shop *s, enum mirror_policy policy, enum mirror_ack ack)
{
    shop_close(s);
    return open_mirror(policy, ack);
}

START_TEST(test_strict_in_sync_writes_both)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    int64_t uid = testenv_seed(s, 3);
    ck_assert_int_gt(shop_cart_add(s, uid, 1, 2), -1);
    ck_assert_int_gt(shop_checkout(s, uid, NULL), 0);
    struct mirror_status st = status_of(s);
    ck_assert_int_eq(st.state, MIRROR_IN_SYNC);
    ck_assert_int_eq(st.changes_behind, 0);
    ck_assert_int_eq(st.seq_primary, st.seq_mirror);
    ck_assert_int_eq(st.seq_primary, 6); /* 3 products, 1 user, cart, checkout */
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

START_TEST(test_strict_mirror_write_eio_refuses_and_leaves_nothing)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 2);
    char before[65];
    testenv_digest(s, 0, before);
    int64_t seq_before = status_of(s).seq_primary;
    testenv_arm("disk/mirror/write", EIO, 0);
    int64_t rc = add_user(s, 1);
    ck_assert_int_eq(rc, -EIO);
    ck_assert_ptr_nonnull(strstr(shop_errmsg(s), "mirror"));
    /* Nothing half-applied: the primary's content is as before. */
    char after[65];
    testenv_digest(s, 0, after);
    ck_assert_str_eq(before, after);
    /* Nothing saved, so nothing behind: no position moved (the refused write
     * is not a change plus its undo for the mirror to replay later). */
    struct mirror_status refused = status_of(s);
    ck_assert_int_eq(refused.state, MIRROR_FAILED);
    ck_assert_int_eq(refused.changes_behind, 0);
    ck_assert_ptr_null(refused.behind);
    ck_assert_int_eq(refused.seq_primary, seq_before);
    ck_assert_int_eq(refused.seq_mirror, seq_before);
    /* Nothing to replay, yet not in sync while the disk still refuses: a
     * resync probes both disks (serve's idle tick relies on it). */
    ck_assert_int_lt(shop_mirror_resync(s), 0);
    ck_assert_int_eq(status_of(s).state, MIRROR_FAILED);
    /* While the mirror cannot write, every write is refused. */
    ck_assert_int_eq(add_user(s, 2), -EIO);
    ck_assert_int_eq(user_count(s), 0);
    faults_disarm_all();
    /* Healed: the probe finds both disks writable, positions unchanged. */
    ck_assert_int_eq(shop_mirror_resync(s), 0);
    struct mirror_status healed = status_of(s);
    ck_assert_int_eq(healed.state, MIRROR_IN_SYNC);
    ck_assert_int_eq(healed.seq_primary, seq_before);
    ck_assert_int_eq(healed.resyncs, 0);
    assert_copies_equal(s);
    /* Healed: the next write resyncs first, then succeeds on both. */
    ck_assert_int_gt(add_user(s, 3), 0);
    struct mirror_status st = status_of(s);
    ck_assert_int_eq(st.state, MIRROR_IN_SYNC);
    ck_assert_int_eq(st.changes_behind, 0);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), 1);
    shop_close(s);
}
END_TEST

/* A write refused where the backlog prunes (every MIRROR_PRUNE_EVERY-th
 * position) leaves the lead's position row: a restart finds both copies at
 * the position they had before the refusal. */
START_TEST(test_strict_refused_at_prune_keeps_position)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    int i = 0;
    while ((status_of(s).seq_primary + 1) % 32 != 0)
        ck_assert_int_gt(add_user(s, ++i), 0);
    int64_t seq = status_of(s).seq_primary;
    testenv_arm("disk/mirror/write", EIO, 0);
    ck_assert_int_eq(add_user(s, 100), -EIO);
    faults_disarm_all();
    ck_assert_int_eq(status_of(s).seq_primary, seq);
    s = reopen(s, MIRROR_STRICT, MIRROR_ACK_BOTH);
    struct mirror_status st = status_of(s);
    ck_assert_int_eq(st.seq_primary, seq);
    ck_assert_int_eq(st.seq_mirror, seq);
    ck_assert_int_eq(st.state, MIRROR_IN_SYNC);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), i);
    ck_assert_int_gt(add_user(s, 101), 0);
    ck_assert_int_eq(status_of(s).seq_primary, seq + 1);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

START_TEST(test_strict_mirror_full_reports_enospc)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/mirror/full", 0, 0);
    ck_assert_int_eq(add_user(s, 1), -ENOSPC);
    faults_disarm_all();
    ck_assert_int_gt(add_user(s, 2), 0);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

START_TEST(test_strict_primary_write_eio_refuses)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/primary/write", EIO, 0);
    ck_assert_int_eq(add_user(s, 1), -EIO);
    ck_assert_int_eq(status_of(s).state, MIRROR_FAILED);
    faults_disarm_all();
    ck_assert_int_eq(user_count(s), 0);
    assert_copies_equal(s);
    ck_assert_int_gt(add_user(s, 2), 0);
    ck_assert_int_eq(status_of(s).state, MIRROR_IN_SYNC);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

START_TEST(test_strict_mirror_fsync_failure_is_undone)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/mirror/fsync", EIO, 1);
    ck_assert_int_eq(add_user(s, 1), -EIO);
    faults_disarm_all();
    ck_assert_int_eq(shop_mirror_resync(s), 0);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), 0);
    /* The unknown commit on the mirror may reappear after a crash: the
     * replayed inverse must still leave both copies equal. */
    ck_assert_int_eq(faults_vfs_crash("mirror", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    ck_assert_int_eq(faults_vfs_crash("primary", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    shop_abandon(s);
    ck_assert_int_eq(faults_vfs_restart("mirror"), 0);
    ck_assert_int_eq(faults_vfs_restart("primary"), 0);
    s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), 0);
    shop_close(s);
}
END_TEST

START_TEST(test_degrade_keeps_serving_and_resyncs)
{
    shop *s = open_mirror(MIRROR_DEGRADE, MIRROR_ACK_BOTH);
    testenv_seed(s, 2);
    testenv_arm("disk/mirror/write", EIO, 0);
    for (int i = 1; i <= 5; i++)
        ck_assert_int_gt(add_user(s, i), 0);
    struct mirror_status st = status_of(s);
    ck_assert_int_eq(st.state, MIRROR_DEGRADED);
    ck_assert_str_eq(st.lead, "primary");
    ck_assert_str_eq(st.behind, "mirror");
    ck_assert_int_eq(st.changes_behind, 5);
    ck_assert_int_gt(st.since_us, 0);
    ck_assert_int_ne(st.last_error[0], '\0');
    /* A resync while the disk still fails keeps it degraded. */
    ck_assert_int_lt(shop_mirror_resync(s), 0);
    ck_assert_int_eq(status_of(s).changes_behind, 5);
    faults_disarm_all();
    ck_assert_int_eq(shop_mirror_resync(s), 0);
    st = status_of(s);
    ck_assert_int_eq(st.state, MIRROR_IN_SYNC);
    ck_assert_int_eq(st.changes_behind, 0);
    ck_assert_int_eq(st.resyncs, 1);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), 5);
    shop_close(s);
}
END_TEST

START_TEST(test_degrade_resync_backs_off)
{
    /* While the mirror keeps failing, degrade writes do not retry the whole
     * backlog each time; after a heal, the first write past the backoff
     * resyncs, and an explicit resync never waits. */
    shop *s = open_mirror(MIRROR_DEGRADE, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/mirror/write", EIO, 0);
    ck_assert_int_gt(add_user(s, 1), 0);
    ck_assert_int_gt(add_user(s, 2), 0); /* tries the resync, fails: backoff */
    faults_disarm_all();
    ck_assert_int_gt(add_user(s, 3), 0); /* within the backoff: still degraded */
    ck_assert_int_eq(status_of(s).state, MIRROR_DEGRADED);
    ck_assert_int_eq(status_of(s).changes_behind, 3);
    t.now_us += 400000;
    ck_assert_int_gt(add_user(s, 4), 0);
    ck_assert_int_eq(status_of(s).state, MIRROR_IN_SYNC);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

/*
 * Self-repair: a pair out of sync asks for a tick (shop_mirror_next_wake) and
 * repairs itself when the host fires it, without any write; in sync, or
 * crashed, it asks for nothing. Both policies.
 */
START_TEST(test_pair_out_of_sync_repairs_itself_on_tick)
{
    enum mirror_policy policy = _i == 0 ? MIRROR_STRICT : MIRROR_DEGRADE;
    shop *s = open_mirror(policy, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    ck_assert_int_eq(shop_mirror_next_wake(s), -1);
    ck_assert_int_eq(shop_mirror_tick(s), 0);
    testenv_arm("disk/mirror/fsync", EIO, 0);
    if (policy == MIRROR_STRICT)
        ck_assert_int_eq(add_user(s, 1), -EIO); /* refused, the inverse committed */
    else
        ck_assert_int_gt(add_user(s, 1), 0); /* acknowledged on the primary alone */
    ck_assert_int_ne(status_of(s).state, MIRROR_IN_SYNC);
    int64_t left = t.now_us;
    int64_t wake = shop_mirror_next_wake(s);
    ck_assert_int_gt(wake, left);
    ck_assert_int_le(wake, left + SHOP_MIRROR_REPAIR_MAX_US);
    /* early: nothing happens */
    ck_assert_int_eq(shop_mirror_tick(s), 0);
    ck_assert_int_ne(status_of(s).state, MIRROR_IN_SYNC);
    /* due, fault still armed: it fails, backs off, and asks again */
    t.now_us = wake;
    ck_assert_int_lt(shop_mirror_tick(s), 0);
    int64_t wake2 = shop_mirror_next_wake(s);
    ck_assert_int_gt(wake2, t.now_us);
    ck_assert_int_le(wake2, t.now_us + SHOP_MIRROR_REPAIR_MAX_US);
    /* healed: the next tick repairs it, with no write in between */
    faults_disarm_all();
    t.now_us = wake2;
    ck_assert_int_eq(shop_mirror_tick(s), 0);
    struct mirror_status st = status_of(s);
    ck_assert_int_eq(st.state, MIRROR_IN_SYNC);
    ck_assert_int_eq(st.changes_behind, 0);
    ck_assert_int_eq(shop_mirror_next_wake(s), -1);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

/* However long a fault lasts, the pair keeps asking, never more than the promised interval apart. */
START_TEST(test_repair_attempts_stay_within_the_promised_interval)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/mirror/write", EIO, 0);
    ck_assert_int_lt(add_user(s, 1), 0);
    for (int i = 0; i < 20; i++) {
        int64_t wake = shop_mirror_next_wake(s);
        ck_assert_int_gt(wake, t.now_us);
        ck_assert_int_le(wake - t.now_us, SHOP_MIRROR_REPAIR_MAX_US);
        t.now_us = wake;
        ck_assert_int_lt(shop_mirror_tick(s), 0);
    }
    faults_disarm_all();
    t.now_us = shop_mirror_next_wake(s);
    ck_assert_int_eq(shop_mirror_tick(s), 0);
    ck_assert_int_eq(status_of(s).state, MIRROR_IN_SYNC);
    ck_assert_int_eq(user_count(s), 0);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

/* The naive mode has no repair: it never asks for one. */
START_TEST(test_early_ack_never_asks_for_a_repair)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_EARLY);
    testenv_seed(s, 1);
    testenv_arm("disk/mirror/write", EIO, 0);
    ck_assert_int_gt(add_user(s, 1), 0);
    ck_assert_int_eq(shop_mirror_next_wake(s), -1);
    t.now_us += 10 * SHOP_MIRROR_REPAIR_MAX_US;
    ck_assert_int_eq(shop_mirror_tick(s), 0);
    shop_close(s);
}
END_TEST

/*
 * A checkout (and an explicit order) that returns an error was not applied:
 * the order it hands back is read inside the write's transaction, so a read
 * fault cannot strike after the commit and report a committed order as
 * failed (fuzz seed 16051: the async host, told it failed, never shipped
 * it). Every read of the primary fails after the first `after` ones; for
 * each, the result and the database agree.
 */
START_TEST(test_a_failed_checkout_left_no_order)
{
    for (uint64_t after = 0; after < 40; after++) {
        struct shop_config cfg = testenv_config(&t, SHOP_SINGLE, MIRROR_STRICT, MIRROR_ACK_BOTH);
        shop *s = testenv_open(&t, &cfg);
        int64_t uid = testenv_seed(s, 2);
        ck_assert_int_eq(shop_cart_add(s, uid, 1, 1), 0);
        struct faults_arm_spec spec = {.p = 1, .err = EIO, .after = after};
        ck_assert_int_eq(faults_arm("disk/primary/read", &spec), 0);
        struct shop_order o;
        int64_t rc = shop_checkout(s, uid, &o);
        struct shop_order_line line = {.product_id = 2, .quantity = 1};
        int64_t rc2 = shop_order_create(s, uid, &line, 1, &o);
        faults_disarm_all();
        int64_t ids[4];
        int n = shop_order_list(s, uid, ids, 4);
        ck_assert_int_eq(n, (rc > 0) + (rc2 > 0));
        ck_assert_msg(rc > 0 || !platform_is_unknown((int)rc), "after %llu: %lld",
                      (unsigned long long)after, (long long)rc);
        shop_close(s);
        testenv_release(&t); /* a fresh database for the next */
        testenv_init(&t);
    }
}
END_TEST

START_TEST(test_degrade_mirror_full_then_resync_on_reopen)
{
    shop *s = open_mirror(MIRROR_DEGRADE, MIRROR_ACK_BOTH);
    int64_t uid = testenv_seed(s, 2);
    testenv_arm("disk/mirror/full", ENOSPC, 0);
    ck_assert_int_eq(shop_cart_add(s, uid, 1, 3), 0);
    ck_assert_int_gt(shop_checkout(s, uid, NULL), 0);
    ck_assert_int_eq(status_of(s).changes_behind, 2);
    faults_disarm_all();
    /* A restart recovers from the backlog too. */
    s = reopen(s, MIRROR_DEGRADE, MIRROR_ACK_BOTH);
    ck_assert_int_eq(status_of(s).state, MIRROR_IN_SYNC);
    assert_copies_equal(s);
    struct shop_product p;
    ck_assert_int_eq(shop_product_get(s, 1, &p), 0);
    ck_assert_int_eq(p.stock, 97);
    shop_close(s);
}
END_TEST

START_TEST(test_degrade_primary_fails_mirror_leads)
{
    shop *s = open_mirror(MIRROR_DEGRADE, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/primary/write", EIO, 0);
    for (int i = 1; i <= 3; i++)
        ck_assert_int_gt(add_user(s, i), 0);
    struct mirror_status st = status_of(s);
    ck_assert_int_eq(st.state, MIRROR_DEGRADED);
    ck_assert_str_eq(st.lead, "mirror");
    ck_assert_str_eq(st.behind, "primary");
    ck_assert_int_eq(st.changes_behind, 3);
    /* Reads still see every acknowledged write. */
    ck_assert_int_eq(user_count(s), 3);
    faults_disarm_all();
    t.now_us += 400000; /* past the resync backoff of degrade */
    ck_assert_int_gt(add_user(s, 4), 0);
    st = status_of(s);
    ck_assert_int_eq(st.state, MIRROR_IN_SYNC);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), 4);
    shop_close(s);
}
END_TEST

START_TEST(test_degrade_both_fail_refuses)
{
    shop *s = open_mirror(MIRROR_DEGRADE, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/primary/write", EIO, 0);
    testenv_arm("disk/mirror/write", EIO, 0);
    ck_assert_int_eq(add_user(s, 1), -EIO);
    ck_assert_int_eq(status_of(s).state, MIRROR_FAILED);
    faults_disarm_all();
    ck_assert_int_eq(user_count(s), 0);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

START_TEST(test_degrade_no_split_brain)
{
    /* The mirror falls behind; then the primary fails too. Writing on the
     * stale mirror would fork history, so writes must be refused. */
    shop *s = open_mirror(MIRROR_DEGRADE, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/mirror/write", EIO, 0);
    ck_assert_int_gt(add_user(s, 1), 0);
    ck_assert_int_eq(faults_disarm("disk/mirror/write"), 0);
    testenv_arm("disk/primary/write", EIO, 0);
    testenv_arm("disk/primary/read", EIO, 0);
    ck_assert_int_lt(add_user(s, 2), 0);
    faults_disarm_all();
    t.now_us += 400000; /* past the resync backoff of degrade */
    ck_assert_int_gt(add_user(s, 3), 0);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), 2);
    shop_close(s);
}
END_TEST

START_TEST(test_early_ack_drifts_and_never_heals)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_EARLY);
    testenv_seed(s, 1);
    testenv_arm("disk/mirror/write", EIO, 0);
    ck_assert_int_gt(add_user(s, 1), 0); /* acknowledged on the primary alone */
    faults_disarm_all();
    ck_assert_int_gt(add_user(s, 2), 0);
    char a[65], b[65];
    testenv_digest(s, 0, a);
    testenv_digest(s, 1, b);
    ck_assert_str_ne(a, b);
    s = reopen(s, MIRROR_STRICT, MIRROR_ACK_EARLY);
    testenv_digest(s, 0, a);
    testenv_digest(s, 1, b);
    ck_assert_str_ne(a, b); /* the naive mode never repairs its mirror */
    shop_close(s);
}
END_TEST

START_TEST(test_reads_fall_back_to_mirror)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 4);
    testenv_arm("disk/primary/read", EIO, 0);
    struct shop_product p;
    ck_assert_int_eq(shop_product_get(s, 3, &p), 0);
    ck_assert_str_eq(p.name, "product 3");
    struct shop_product list[8];
    ck_assert_int_eq(shop_product_list(s, NULL, list, 8), 4);
    testenv_arm("disk/mirror/read", EIO, 0);
    ck_assert_int_eq(shop_product_get(s, 3, &p), -EIO);
    faults_disarm_all();
    shop_close(s);
}
END_TEST

START_TEST(test_no_fallback_to_a_stale_mirror)
{
    shop *s = open_mirror(MIRROR_DEGRADE, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/mirror/write", EIO, 0);
    ck_assert_int_gt(add_user(s, 1), 0);
    testenv_arm("disk/primary/read", EIO, 0);
    struct shop_user u;
    ck_assert_int_eq(shop_user_get_by_email(s, "u1@example.com", &u), -EIO);
    faults_disarm_all();
    shop_close(s);
}
END_TEST

/* ---- crash points, in process ---------------------------------------- */

static shop *crash_and_reopen(shop *s, enum mirror_policy policy)
{
    ck_assert_int_eq(faults_vfs_crash("primary", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    ck_assert_int_eq(faults_vfs_crash("mirror", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    shop_abandon(s);
    faults_disarm_all();
    ck_assert_int_eq(faults_vfs_restart("primary"), 0);
    ck_assert_int_eq(faults_vfs_restart("mirror"), 0);
    return open_mirror(policy, MIRROR_ACK_BOTH);
}

START_TEST(test_crash_between_commits_recovers_on_reopen)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("crash/primary/mirror-between-commits", 0, 1);
    ck_assert_int_eq(add_user(s, 1), -ECANCELED);
    ck_assert_int_eq(t.crashes, 1);
    ck_assert_str_eq(t.crashed_point, "mirror-between-commits");
    /* The dead shop does nothing more. */
    ck_assert_int_eq(add_user(s, 2), -ECANCELED);
    s = crash_and_reopen(s, MIRROR_STRICT);
    struct mirror_status st = status_of(s);
    ck_assert_int_eq(st.state, MIRROR_IN_SYNC);
    ck_assert_int_eq(st.resyncs, 1);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), 1); /* the primary had committed it */
    ck_assert_int_eq(shop_integrity(s, 0), 0);
    ck_assert_int_eq(shop_integrity(s, 1), 0);
    shop_close(s);
}
END_TEST

START_TEST(test_crash_before_commit_loses_the_write_on_both)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("crash/primary/mirror-before-commit", 0, 1);
    ck_assert_int_eq(add_user(s, 1), -ECANCELED);
    ck_assert(platform_is_unknown(-ECANCELED));
    s = crash_and_reopen(s, MIRROR_STRICT);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), 0);
    shop_close(s);
}
END_TEST

START_TEST(test_crash_mid_checkout_is_atomic)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    int64_t uid = testenv_seed(s, 2);
    ck_assert_int_eq(shop_cart_add(s, uid, 2, 5), 0);
    testenv_arm("crash/primary/checkout-mid-transaction", 0, 1);
    ck_assert_int_eq(shop_checkout(s, uid, NULL), -ECANCELED);
    s = crash_and_reopen(s, MIRROR_STRICT);
    assert_copies_equal(s);
    struct shop_product p;
    ck_assert_int_eq(shop_product_get(s, 2, &p), 0);
    ck_assert_int_eq(p.stock, 100);
    struct shop_cart_item items[4];
    ck_assert_int_eq(shop_cart_get(s, uid, items, 4), 1);
    ck_assert_int_eq(shop_order_list(s, uid, NULL, 0), 0);
    shop_close(s);
}
END_TEST

START_TEST(test_crash_during_resync_then_finishes)
{
    shop *s = open_mirror(MIRROR_DEGRADE, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/mirror/write", EIO, 0);
    for (int i = 1; i <= 150; i++) /* more than two resync batches */
        ck_assert_int_gt(add_user(s, i), 0);
    ck_assert_int_eq(faults_disarm("disk/mirror/write"), 0);
    testenv_arm("crash/primary/mirror-during-resync", 0, 1);
    ck_assert_int_eq(shop_mirror_resync(s), -ECANCELED);
    s = crash_and_reopen(s, MIRROR_DEGRADE);
    ck_assert_int_eq(status_of(s).state, MIRROR_IN_SYNC);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), 150);
    shop_close(s);
}
END_TEST

START_TEST(test_primary_fsync_failure_is_unknown_and_reappears)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    testenv_arm("disk/primary/fsync", EIO, 1);
    int64_t rc = add_user(s, 1);
    bool parallel = t.env.parallel != NULL;
    if (parallel) {
        /* The mirror committed while the primary's sync failed: strict undid
         * it on the mirror, so whatever the primary's WAL holds, the replay
         * of the undo cancels it. The write is refused, not unknown. */
        ck_assert_int_eq(rc, -EIO);
    } else {
        /* Sequential: the mirror never saw it, the primary may have it. */
        ck_assert_int_eq(rc, -EINPROGRESS);
        ck_assert(platform_is_unknown((int)rc));
    }
    /* A process crash keeps the unsynced commit: it comes back, and
     * recovery makes both copies agree on what happened. */
    s = crash_and_reopen(s, MIRROR_STRICT);
    assert_copies_equal(s);
    ck_assert_int_eq(user_count(s), parallel ? 0 : 1);
    shop_close(s);
}
END_TEST

/*
 * A commit whose sync failed leaves frames that a later reopen may bring
 * back. Once the pair has repaired itself (a tick, faults healed), a crash
 * must not take back what readers saw: the repair settles the lead with a
 * commit of its own first (fuzz seed 16053: a strict undo whose sync failed
 * came back at a reopen and a client's reads went from position 6 to 5).
 * The mirror's sync fails (so strict undoes with an inverse) and then the
 * primary's, at each possible moment.
 */
START_TEST(test_what_was_read_after_a_repair_survives_a_crash)
{
    for (uint64_t after = 0; after < 6; after++) {
        shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
        testenv_seed(s, 1);
        testenv_arm("disk/mirror/fsync", EIO, 1);
        struct faults_arm_spec spec = {.p = 1, .err = EIO, .count = 1, .after = after};
        ck_assert_int_eq(faults_arm("disk/primary/fsync", &spec), 0);
        (void)add_user(s, 1);
        faults_disarm_all();
        for (int i = 0; i < 3 && shop_mirror_next_wake(s) >= 0; i++) {
            t.now_us = shop_mirror_next_wake(s);
            ck_assert_int_eq(shop_mirror_tick(s), 0);
        }
        ck_assert_int_eq(status_of(s).state, MIRROR_IN_SYNC);
        int seen = user_count(s);
        int64_t position = status_of(s).seq_primary;
        s = crash_and_reopen(s, MIRROR_STRICT);
        assert_copies_equal(s);
        ck_assert_msg(user_count(s) == seen, "after=%llu: %d user(s) read before the crash, %d after",
                      (unsigned long long)after, seen, user_count(s));
        ck_assert_int_ge(status_of(s).seq_primary, position);
        shop_close(s);
        testenv_release(&t);
        testenv_init(&t);
    }
}
END_TEST

START_TEST(test_power_cut_keeps_every_acknowledged_write)
{
    shop *s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    testenv_seed(s, 1);
    for (int i = 1; i <= 20; i++)
        ck_assert_int_gt(add_user(s, i), 0);
    struct faults_rng rng;
    faults_rng_seed(&rng, 7, "power");
    ck_assert_int_eq(faults_vfs_crash("primary", FAULTS_CRASH_POWER, &rng, NULL), 0);
    ck_assert_int_eq(faults_vfs_crash("mirror", FAULTS_CRASH_POWER, &rng, NULL), 0);
    shop_abandon(s);
    ck_assert_int_eq(faults_vfs_restart("primary"), 0);
    ck_assert_int_eq(faults_vfs_restart("mirror"), 0);
    s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    ck_assert_int_eq(user_count(s), 20);
    ck_assert_int_eq(shop_integrity(s, 0), 0);
    ck_assert_int_eq(shop_integrity(s, 1), 0);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

START_TEST(test_new_empty_mirror_is_copied_whole)
{
    struct shop_config cfg = testenv_config(&t, SHOP_SINGLE, MIRROR_STRICT, MIRROR_ACK_BOTH);
    shop *s = testenv_open(&t, &cfg);
    testenv_seed(s, 5);
    ck_assert_int_gt(add_user(s, 1), 0);
    shop_close(s);
    s = open_mirror(MIRROR_STRICT, MIRROR_ACK_BOTH);
    assert_copies_equal(s);
    ck_assert_int_gt(add_user(s, 2), 0);
    assert_copies_equal(s);
    ck_assert_int_eq(status_of(s).state, MIRROR_IN_SYNC);
    shop_close(s);
}
END_TEST

START_TEST(test_status_of_single_shop_is_einval)
{
    struct shop_config cfg = testenv_config(&t, SHOP_SINGLE, MIRROR_STRICT, MIRROR_ACK_BOTH);
    shop *s = testenv_open(&t, &cfg);
    struct mirror_status st;
    ck_assert_int_eq(shop_mirror_status(s, &st), -EINVAL);
    ck_assert_int_eq(shop_mirror_resync(s), -EINVAL);
    ck_assert_str_eq(mirror_state_name(MIRROR_DEGRADED), "degraded");
    shop_close(s);
}
END_TEST

static Suite *mirror_suite(void)
{
    Suite *su = suite_create("mirror");
    TCase *tc = tcase_create("faults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_strict_in_sync_writes_both);
    tcase_add_test(tc, test_strict_mirror_write_eio_refuses_and_leaves_nothing);
    tcase_add_test(tc, test_strict_mirror_full_reports_enospc);
    tcase_add_test(tc, test_strict_refused_at_prune_keeps_position);
    tcase_add_test(tc, test_strict_primary_write_eio_refuses);
    tcase_add_test(tc, test_strict_mirror_fsync_failure_is_undone);
    tcase_add_test(tc, test_degrade_keeps_serving_and_resyncs);
    tcase_add_test(tc, test_degrade_mirror_full_then_resync_on_reopen);
    tcase_add_test(tc, test_degrade_resync_backs_off);
    tcase_add_test(tc, test_degrade_primary_fails_mirror_leads);
    tcase_add_test(tc, test_degrade_both_fail_refuses);
    tcase_add_test(tc, test_degrade_no_split_brain);
    tcase_add_test(tc, test_early_ack_drifts_and_never_heals);
    tcase_add_test(tc, test_reads_fall_back_to_mirror);
    tcase_add_test(tc, test_no_fallback_to_a_stale_mirror);
    tcase_add_test(tc, test_status_of_single_shop_is_einval);
    tcase_add_loop_test(tc, test_pair_out_of_sync_repairs_itself_on_tick, 0, 2);
    tcase_add_test(tc, test_repair_attempts_stay_within_the_promised_interval);
    tcase_add_test(tc, test_early_ack_never_asks_for_a_repair);
    tcase_add_test(tc, test_a_failed_checkout_left_no_order);
    suite_add_tcase(su, tc);
    /* The same faults with the two commits overlapping, as serve and the
     * benchmark run them: now the primary can fail while the mirror commits. */
    TCase *tp = tcase_create("faults-parallel-commits");
    tcase_add_checked_fixture(tp, setup_parallel, teardown);
    tcase_add_test(tp, test_strict_in_sync_writes_both);
    tcase_add_test(tp, test_strict_mirror_write_eio_refuses_and_leaves_nothing);
    tcase_add_test(tp, test_strict_mirror_full_reports_enospc);
    tcase_add_test(tp, test_strict_refused_at_prune_keeps_position);
    tcase_add_test(tp, test_strict_primary_write_eio_refuses);
    tcase_add_test(tp, test_strict_mirror_fsync_failure_is_undone);
    tcase_add_test(tp, test_degrade_keeps_serving_and_resyncs);
    tcase_add_test(tp, test_degrade_mirror_full_then_resync_on_reopen);
    tcase_add_test(tp, test_degrade_primary_fails_mirror_leads);
    tcase_add_test(tp, test_degrade_both_fail_refuses);
    tcase_add_test(tp, test_degrade_no_split_brain);
    tcase_add_test(tp, test_reads_fall_back_to_mirror);
    tcase_add_test(tp, test_primary_fsync_failure_is_unknown_and_reappears);
    tcase_add_test(tp, test_power_cut_keeps_every_acknowledged_write);
    suite_add_tcase(su, tp);
    TCase *cr = tcase_create("crash");
    tcase_add_checked_fixture(cr, setup, teardown);
    tcase_add_test(cr, test_crash_between_commits_recovers_on_reopen);
    tcase_add_test(cr, test_crash_before_commit_loses_the_write_on_both);
    tcase_add_test(cr, test_crash_mid_checkout_is_atomic);
    tcase_add_test(cr, test_crash_during_resync_then_finishes);
    tcase_add_test(cr, test_primary_fsync_failure_is_unknown_and_reappears);
    tcase_add_test(cr, test_what_was_read_after_a_repair_survives_a_crash);
    tcase_add_test(cr, test_power_cut_keeps_every_acknowledged_write);
    tcase_add_test(cr, test_new_empty_mirror_is_copied_whole);
    suite_add_tcase(su, cr);
    return su;
}

int main(void)
{
    return check_run(mirror_suite());
}
