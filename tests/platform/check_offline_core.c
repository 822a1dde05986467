/*
 * check_offline_core.c — the offline-first sync core (platform/offline.c,
 * roles offline-local and offline-central of node.h) against the in-memory
 * deterministic host (netenv): a clean sync, drops, duplicates, reordering
 * with late answers, central's disk failing (the retry budget, FAILED rows
 * kept and synced after the heal), a crash after the push before the mark,
 * the online switch, a backlog, several locals to one central, the naive
 * queue=separate left visible, stray and malformed messages, and the
 * configuration errors. netenv checks after every event that no queue row
 * is SYNCED twice, that a row is FAILED only at its budget, and that no push
 * is answered twice.
 */
#include <check.h>
#include <errno.h>
#include <fiu-control.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/faults.h"
#include "netenv.h"
#include "platform/node_impl.h"

#define MS 1000
#define INTERVAL (100 * MS)
#define HOUR (3600000 * (int64_t)MS)

static struct netenv *t;
static int64_t setup_interval; /* the locals' sync interval; 0: INTERVAL */
static const char *locals3[] = {"local1", "local2", "local3"};

static const char *vfs_of(const char *node)
{
    return faults_vfs_name(node);
}

/* central and n locals (local, or local1..localn), interval 100 ms. */
static void setup_offline(uint64_t seed, int n, int retries, bool separate)
{
    t = calloc(1, sizeof(*t));
    ck_assert_ptr_nonnull(t);
    netenv_init(t, seed);
    ck_assert_int_eq(faults_init(seed), 0);
    t->queue_separate = separate;
    t->vfs = vfs_of;
    const char *one[] = {"local"};
    const char *const *names = n == 1 ? one : locals3;
    struct faults_host memory = {.memory = true, .no_power_cut = true};
    for (int i = 0; i < n + 1; i++)
        ck_assert_int_eq(faults_vfs_register(i < n ? names[i] : "central", &memory), 0);
    struct node_config c = {.peers = names, .peer_count = (size_t)n};
    ck_assert_int_eq(netenv_add(t, "central", NODE_OFFLINE_CENTRAL, "", &c), 0);
    struct node_config l = {.sync_interval_us = setup_interval ? setup_interval : INTERVAL,
                            .sync_retries = retries};
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(netenv_add(t, names[i], NODE_OFFLINE_LOCAL, "central", &l), 0);
        netenv_link(t, names[i], "central")->delay_us = 2 * MS;
        netenv_link(t, "central", names[i])->delay_us = 2 * MS;
    }
}

static void teardown_offline(void)
{
    setup_interval = 0;
    fiu_disable("crash/local/sync-after-push");
    fiu_disable("crash/local/sync-between-row-and-queue");
    faults_disarm_all();
    if (t != NULL) {
        netenv_release(t);
        free(t);
        t = NULL;
    }
    faults_vfs_unregister_all();
}

static void writes(const char *node, int n, int64_t gap_us)
{
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(netenv_write(t, node), 0);
        netenv_run(t, gap_us);
    }
}

static struct node_offline_status off(const char *node)
{
    return netenv_status(t, node).offline;
}

static int64_t waiting(const char *node)
{
    struct node_offline_status o = off(node);
    ck_assert(o.queue_read);
    return o.queue.total[SHOP_SYNC_PENDING] + o.queue.total[SHOP_SYNC_FAILED];
}

/* Runs until no local has a row waiting or a push in flight (false at the limit). */
static bool run_synced(int64_t limit_us)
{
    int64_t end = t->now_us + limit_us;
    for (;;) {
        bool done = true;
        for (size_t i = 0; i < t->node_count; i++) {
            struct netenv_node *nn = &t->nodes[i];
            if (nn->ncfg.role != NODE_OFFLINE_LOCAL)
                continue;
            struct node_offline_status o = off(nn->name);
            done = done && nn->up && !o.pushing && o.queue_read &&
                   o.queue.total[SHOP_SYNC_PENDING] + o.queue.total[SHOP_SYNC_FAILED] == 0;
        }
        if (done)
            return true;
        if (t->now_us >= end)
            return false;
        netenv_run(t, 10 * MS);
    }
}

/* central holds every row of local, and every queue row is accounted for. */
static void assert_central_holds(const char *local)
{
    struct shop_sync_compare *c = malloc(sizeof(*c));
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(shop_sync_compare(netenv_node(t, local)->shop,
                                       netenv_node(t, "central")->shop, local, c),
                     0);
    ck_assert_msg(c->matching == c->rows && c->lost == 0,
                  "%s: %lld of %lld rows match, %lld lost:\n%s", local, (long long)c->matching,
                  (long long)c->rows, (long long)c->lost, t->trace);
    ck_assert_int_gt(c->rows, 0);
    free(c);
}

static void assert_synced(const char *local, uint64_t writes_made)
{
    ck_assert_msg(run_synced(60000 * MS), "%s did not sync:\n%s", local, t->trace);
    struct node_offline_status o = off(local);
    ck_assert_int_eq(o.queue.total[SHOP_SYNC_SYNCED], (int64_t)writes_made);
    ck_assert_int_eq(o.queue.synced_marks, (int64_t)writes_made); /* each exactly once */
    ck_assert_int_eq(o.queue.synced_twice, 0);
    assert_central_holds(local);
}

/* ---- a clean sync ----------------------------------------------------------- */

START_TEST(test_clean_sync_pushes_each_row_once)
{
    setup_offline(1, 1, 3, false);
    writes("local", 40, 7 * MS);
    assert_synced("local", 40);
    struct node_offline_status o = off("local"), c = off("central");
    ck_assert(o.online && !o.pushing && o.last_push_ok);
    ck_assert_int_eq(o.interval_us, INTERVAL);
    ck_assert_int_eq(o.retries_budget, 3);
    ck_assert_int_eq(o.reply_timeout_us, NODE_OFFLINE_REPLY_TIMEOUT_US);
    ck_assert_uint_eq(o.rows_pushed, 40); /* nothing pushed twice on a clean link */
    ck_assert_uint_eq(o.rows_synced, 40);
    ck_assert_uint_eq(o.accepted, o.pushes);
    ck_assert_uint_eq(o.failed_pushes + o.timeouts + o.late_replies + o.rows_retried, 0);
    ck_assert_str_eq(o.last_error, "");
    ck_assert_int_gt(o.last_ok_us, 0);
    /* 40 writes over 280 ms, pushed every 100 ms: a push per run that found rows */
    ck_assert_uint_ge(o.pushes, 2);
    ck_assert_uint_le(o.pushes, 4);
    ck_assert_uint_eq(c.pushes_applied, o.pushes);
    ck_assert_uint_eq(c.rows_applied, 40);
    ck_assert_uint_eq(c.rows_unchanged + c.pushes_refused + c.strays, 0);
    /* the job keeps running while there is nothing to push */
    uint64_t runs = o.runs;
    netenv_run(t, 10 * INTERVAL);
    ck_assert_uint_ge(off("local").runs, runs + 9);
    ck_assert_uint_eq(off("local").pushes, o.pushes);
}
END_TEST

START_TEST(test_same_events_same_trace)
{
    char first[sizeof(t->trace)];
    for (int round = 0; round < 2; round++) {
        setup_offline(5, 1, 2, false);
        netenv_link(t, "local", "central")->drop = 0.3;
        netenv_link(t, "central", "local")->duplicate = 0.3;
        netenv_link(t, "central", "local")->jitter_us = 900 * MS;
        writes("local", 60, 9 * MS);
        ck_assert(run_synced(60000 * MS));
        if (round == 0)
            memcpy(first, t->trace, sizeof(first));
        else
            ck_assert_str_eq(first, t->trace);
        teardown_offline();
    }
}
END_TEST

/* ---- a lossy network ----------------------------------------------------------- */

START_TEST(test_drops_both_ways_time_out_retry_and_converge)
{
    setup_offline(2, 1, 100, false);
    netenv_link(t, "local", "central")->drop = 0.4;
    netenv_link(t, "central", "local")->drop = 0.4;
    writes("local", 120, 5 * MS);
    assert_synced("local", 120);
    struct node_offline_status o = off("local"), c = off("central");
    ck_assert_uint_gt(o.timeouts, 0);
    ck_assert_uint_eq(o.failed_pushes, o.timeouts); /* central refused nothing */
    ck_assert_uint_gt(o.rows_retried, 0);
    ck_assert_uint_gt(o.rows_pushed, 120);
    ck_assert_uint_eq(c.rows_applied, 120);
    /* an answer lost after central applied the push: the rows go again and
     * central holds them already */
    netenv_link(t, "local", "central")->drop = 0;
    netenv_link(t, "central", "local")->drop = 1;
    uint64_t unchanged = c.rows_unchanged;
    writes("local", 10, MS);
    netenv_run(t, INTERVAL);
    ck_assert_uint_eq(off("central").rows_applied, 130);
    netenv_link(t, "central", "local")->drop = 0;
    assert_synced("local", 130);
    ck_assert_uint_ge(off("central").rows_unchanged, unchanged + 10);
}
END_TEST

START_TEST(test_duplicates_change_nothing_and_late_answers_mark)
{
    setup_offline(3, 1, 5, false);
    netenv_link(t, "local", "central")->duplicate = 1.0;
    netenv_link(t, "central", "local")->duplicate = 1.0;
    writes("local", 50, 4 * MS);
    assert_synced("local", 50);
    struct node_offline_status o = off("local"), c = off("central");
    ck_assert_uint_eq(c.pushes_applied, 2 * o.pushes); /* each push twice */
    ck_assert_uint_eq(c.rows_applied, 50);
    ck_assert_uint_eq(c.rows_unchanged, o.rows_pushed + (c.pushes_applied - 2 * o.pushes));
    ck_assert_uint_gt(o.late_replies, 0); /* the second copies of the answers */
    ck_assert_uint_eq(o.rows_synced, 50);
    ck_assert_uint_eq(o.failed_pushes, 0);
}
END_TEST

START_TEST(test_reordered_answers_after_the_timeout_still_mark)
{
    setup_offline(4, 1, 50, false);
    /* answers arrive anywhere from 0.2 s to 1.4 s late: after the timeout */
    struct netenv_link *back = netenv_link(t, "central", "local");
    back->delay_us = 200 * MS;
    back->jitter_us = 1200 * MS;
    back->reorder = 0.5;
    writes("local", 80, 6 * MS);
    assert_synced("local", 80);
    struct node_offline_status o = off("local");
    ck_assert_uint_gt(o.timeouts, 0);
    ck_assert_uint_gt(o.late_replies, 0);
    ck_assert_uint_eq(o.rows_synced, 80);
}
END_TEST

START_TEST(test_partition_then_heal)
{
    setup_offline(6, 1, 3, false);
    writes("local", 10, 5 * MS);
    ck_assert(run_synced(10 * INTERVAL));
    netenv_partition(t, "local", "central", true);
    writes("local", 30, 20 * MS); /* 600 ms cut off: every push times out */
    netenv_run(t, 20 * INTERVAL);
    struct node_offline_status o = off("local");
    ck_assert(!o.last_push_ok);
    ck_assert_uint_ge(o.timeouts, 3);
    ck_assert_ptr_nonnull(strstr(o.last_error, "no answer"));
    ck_assert_int_eq(o.queue.total[SHOP_SYNC_FAILED], 30); /* budget 3: all spent */
    ck_assert_uint_eq(o.rows_failed, 30);
    netenv_partition(t, "local", "central", false);
    assert_synced("local", 40);
    ck_assert(off("local").last_push_ok);
    ck_assert_str_eq(off("local").last_error, "");
}
END_TEST

/* ---- central's disk, the budget, FAILED rows ------------------------------------ */

START_TEST(test_central_disk_full_rows_fail_at_budget_and_sync_after_heal)
{
    setup_offline(7, 1, 3, false);
    writes("local", 10, 5 * MS);
    ck_assert(run_synced(10 * INTERVAL));
    struct faults_arm_spec full = {.p = 1};
    ck_assert_int_eq(faults_arm("disk/central/full", &full), 0);
    writes("local", 20, 10 * MS);
    netenv_run(t, 6 * INTERVAL);
    struct node_offline_status o = off("local"), c = off("central");
    ck_assert_uint_ge(c.pushes_refused, 3);
    ck_assert_uint_eq(o.failed_pushes, c.pushes_refused);
    ck_assert_uint_eq(o.timeouts, 0); /* refused, not lost: no need to wait */
    ck_assert_msg(strstr(o.last_error, "full") != NULL, "last error: %s", o.last_error);
    /* FAILED only at the budget, kept, and still pushed with every push */
    ck_assert_int_gt(o.queue.total[SHOP_SYNC_FAILED], 0);
    ck_assert_int_ge(o.queue.failed_retries_min, 3);
    ck_assert_int_eq(o.queue.total[SHOP_SYNC_FAILED] + o.queue.total[SHOP_SYNC_PENDING], 20);
    ck_assert_int_gt(o.queue.retries_max, 3);
    ck_assert_uint_eq(o.rows_failed, (uint64_t)o.queue.total[SHOP_SYNC_FAILED]);
    int64_t failed = o.queue.total[SHOP_SYNC_FAILED];
    uint64_t pushes = c.pushes_applied;
    ck_assert_int_eq(faults_disarm("disk/central/full"), 0);
    /* the heal: the very next run pushes the FAILED rows with the rest */
    netenv_run(t, INTERVAL + 10 * MS);
    o = off("local");
    ck_assert_int_eq(o.queue.total[SHOP_SYNC_FAILED], 0);
    ck_assert_int_eq(o.queue.total[SHOP_SYNC_PENDING], 0);
    ck_assert_uint_eq(off("central").pushes_applied, pushes + 1);
    ck_assert_int_gt(failed, 0);
    assert_synced("local", 30);
}
END_TEST

/* ---- crashes ------------------------------------------------------------------------ */

START_TEST(test_crash_after_push_before_mark_resends_and_marks_once)
{
    setup_offline(8, 1, 5, false);
    writes("local", 25, 3 * MS);
    ck_assert_int_eq(fiu_enable("crash/local/sync-after-push", 1, NULL, FIU_ONETIME), 0);
    netenv_run(t, 2 * INTERVAL);
    ck_assert_uint_eq(t->crash_points, 1);
    ck_assert(!netenv_node(t, "local")->up);
    struct node_offline_status c = off("central");
    ck_assert_uint_eq(c.rows_applied, 25); /* central took them; the local never marked */
    netenv_restart(t, "local");
    ck_assert_int_eq(waiting("local"), 25);
    assert_synced("local", 25);
    c = off("central");
    ck_assert_uint_eq(c.rows_applied, 25);
    ck_assert_uint_eq(c.rows_unchanged, 25); /* the second push changed nothing */
    ck_assert_uint_eq(netenv_status(t, "local").restarts, 1);
}
END_TEST

START_TEST(test_one_push_in_flight_while_answers_are_slow)
{
    setup_offline(16, 1, 5, false);
    netenv_link(t, "central", "local")->delay_us = 350 * MS; /* answers take 3.5 runs */
    writes("local", 10, MS);
    netenv_run(t, INTERVAL + MS);
    ck_assert_uint_eq(off("local").pushes, 1);
    writes("local", 10, MS);
    netenv_run(t, 3 * INTERVAL); /* three runs find rows waiting and a push in flight */
    struct node_offline_status o = off("local");
    ck_assert_uint_eq(o.pushes, 1);
    ck_assert(o.pushing);
    ck_assert_uint_ge(o.runs, 4);
    netenv_run(t, INTERVAL);
    ck_assert_uint_eq(off("local").accepted, 1);
    assert_synced("local", 20);
    ck_assert_uint_eq(off("local").timeouts, 0);
}
END_TEST

START_TEST(test_answers_to_an_earlier_life_are_ignored)
{
    setup_offline(9, 1, 5, false);
    netenv_link(t, "central", "local")->delay_us = 300 * MS; /* answers arrive late */
    writes("local", 10, 2 * MS);
    netenv_run(t, INTERVAL + 50 * MS); /* the push left; its answer is on the way */
    ck_assert(off("local").pushing);
    netenv_crash(t, "local");
    netenv_restart(t, "local");
    ck_assert(!off("local").pushing);
    netenv_run(t, 300 * MS); /* the old answer arrives: ignored */
    ck_assert_ptr_nonnull(strstr(t->trace, "earlier life ignored"));
    netenv_link(t, "central", "local")->delay_us = 2 * MS;
    assert_synced("local", 10);
}
END_TEST

START_TEST(test_central_crash_is_a_timeout)
{
    setup_offline(10, 1, 5, false);
    netenv_link(t, "local", "central")->delay_us = 50 * MS;
    writes("local", 10, 2 * MS);
    netenv_run(t, INTERVAL); /* a push is on its way to central */
    ck_assert(off("local").pushing);
    netenv_crash(t, "central");
    netenv_run(t, 2 * NODE_OFFLINE_REPLY_TIMEOUT_US);
    ck_assert_uint_ge(off("local").timeouts, 1);
    netenv_restart(t, "central");
    assert_synced("local", 10);
}
END_TEST

/* ---- the online switch --------------------------------------------------------------- */

START_TEST(test_offline_keeps_writing_and_online_pushes_at_once)
{
    setup_offline(11, 1, 5, false);
    struct node *n = netenv_node(t, "local")->node;
    ck_assert_int_eq(node_set_online(n, false), 0);
    writes("local", 30, 10 * MS);
    netenv_run(t, 5 * INTERVAL);
    struct node_offline_status o = off("local");
    ck_assert(!o.online);
    ck_assert_uint_eq(o.pushes, 0);
    ck_assert_uint_gt(o.runs, 5);
    ck_assert_int_eq(o.queue.total[SHOP_SYNC_PENDING], 30);
    ck_assert_int_eq(off("central").pushes_applied, 0);
    ck_assert_ptr_nonnull(strstr(t->trace, "offline, not pushing")
                              ? strstr(t->trace, "offline, not pushing")
                              : strstr(t->trace, "goes offline"));
    ck_assert_int_eq(node_set_online(n, false), 0); /* idempotent */
    int64_t at = t->now_us;
    ck_assert_int_eq(node_set_online(n, true), 0);
    netenv_run(t, 10 * MS); /* at once, not at the next tick */
    ck_assert_int_lt(t->now_us - at, INTERVAL);
    ck_assert_int_eq(waiting("local"), 0);
    assert_synced("local", 30);
    /* the switch survives a crash */
    ck_assert_int_eq(node_set_online(n, false), 0);
    netenv_crash(t, "local");
    ck_assert_int_eq(node_set_online(n, false), 0); /* allowed while down */
    netenv_restart(t, "local");
    writes("local", 5, MS);
    netenv_run(t, 3 * INTERVAL);
    ck_assert(!off("local").online);
    ck_assert_int_eq(waiting("local"), 5);
}
END_TEST

START_TEST(test_a_backlog_drains_in_full_pushes_back_to_back)
{
    setup_offline(12, 1, 5, false);
    struct node *n = netenv_node(t, "local")->node;
    node_set_online(n, false);
    for (int i = 0; i < 3 * NODE_OFFLINE_PUSH_ROWS + 10; i++)
        ck_assert_int_eq(netenv_write(t, "local"), 0);
    node_set_online(n, true);
    netenv_run(t, 40 * MS); /* four pushes, each after the last one's answer */
    struct node_offline_status o = off("local");
    ck_assert_uint_eq(o.pushes, 4);
    ck_assert_int_eq(waiting("local"), 0);
    assert_synced("local", 3 * NODE_OFFLINE_PUSH_ROWS + 10);
}
END_TEST

/* ---- several locals ------------------------------------------------------------------- */

START_TEST(test_several_locals_one_central_no_clash)
{
    setup_offline(13, 3, 4, false);
    netenv_link(t, "local1", "central")->drop = 0.3;
    netenv_link(t, "central", "local3")->reorder = 0.5;
    netenv_link(t, "central", "local3")->jitter_us = 400 * MS;
    netenv_link(t, "local2", "central")->duplicate = 0.5;
    for (int i = 0; i < 40; i++) {
        for (int k = 0; k < 3; k++)
            ck_assert_int_eq(netenv_write(t, locals3[k]), 0); /* the same user ids on each */
        netenv_run(t, 5 * MS);
    }
    ck_assert(run_synced(60000 * MS));
    uint64_t applied = 0;
    for (int k = 0; k < 3; k++) {
        assert_synced(locals3[k], 40);
        /* user 1 of each local is its own row on central */
        char gid[SHOP_SYNC_ID_MAX];
        snprintf(gid, sizeof(gid), "%s:users:1", locals3[k]);
        struct shop_sync_central_row row;
        ck_assert_int_eq(shop_sync_central_get(netenv_node(t, "central")->shop, gid, &row), 0);
        ck_assert_str_eq(row.origin, locals3[k]);
    }
    applied = off("central").rows_applied;
    ck_assert_uint_eq(applied, 120);
}
END_TEST

/* ---- queue=separate: the protocol does not hide the naive mode ---------------------------- */

START_TEST(test_separate_queue_crash_leaves_a_change_nothing_syncs)
{
    setup_offline(14, 1, 5, true);
    writes("local", 5, 2 * MS);
    ck_assert_int_eq(fiu_enable("crash/local/sync-between-row-and-queue", 1, NULL, FIU_ONETIME),
                     0);
    ck_assert_int_eq(netenv_write(t, "local"), -ECANCELED);
    netenv_crash(t, "local");
    netenv_restart(t, "local");
    ck_assert(run_synced(20 * INTERVAL)); /* the queue empties... */
    struct shop_sync_compare *c = malloc(sizeof(*c));
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(shop_sync_compare(netenv_node(t, "local")->shop,
                                       netenv_node(t, "central")->shop, "local", c),
                     0);
    ck_assert_int_eq(c->lost, 1); /* ...and central never learns of the sixth user */
    ck_assert_int_eq(c->mismatched[SHOP_SYNC_MISSING], 1);
    ck_assert(!c->examples[0].queued);
    free(c);
}
END_TEST

/* ---- strays, malformed messages, configuration ----------------------------------------------- */

static void deliver(const char *to, const char *from, enum node_msg_type type, int64_t a,
                    int64_t b, const void *data, size_t len, int expect)
{
    struct node_msg m = {.type = type, .a = a, .b = b, .data = data, .len = len};
    uint8_t *buf;
    size_t n;
    ck_assert_int_eq(node_msg_encode(&m, &buf, &n), 0);
    ck_assert_int_eq(node_on_message(netenv_node(t, to)->node, from, buf, n), expect);
    free(buf);
}

START_TEST(test_strays_and_malformed_messages_change_nothing)
{
    setup_offline(15, 1, 5, false);
    writes("local", 5, MS);
    struct shop_sync_push p;
    ck_assert_int_eq(shop_sync_pending(netenv_node(t, "local")->shop, 10, true, &p), 0);
    /* a push from a node that is not one of central's locals */
    deliver("central", "intruder", NODE_MSG_SYNC_PUSH, 1, 1, p.data, p.len, 0);
    /* a push whose origin is not its sender: central refuses it */
    deliver("central", "local", NODE_MSG_SYNC_PUSH, 1, 1, "garbage", 7, 0);
    shop_sync_push_release(&p);
    struct node_offline_status c = off("central");
    ck_assert_uint_eq(c.strays, 1);
    ck_assert_uint_eq(c.pushes_refused, 1);
    ck_assert_uint_eq(c.rows_applied, 0);
    /* answers: not from central, of another life, malformed */
    int64_t life = 0;
    deliver("local", "intruder", NODE_MSG_SYNC_ACCEPTED, life, 1, NULL, 0, 0);
    deliver("local", "central", NODE_MSG_SYNC_ACCEPTED, 12345, 1, NULL, 0, 0);
    ck_assert_int_eq(waiting("local"), 5);
    netenv_run(t, INTERVAL); /* the first push left: its life is the epoch */
    /* node_on_message: bytes that are no message at all */
    ck_assert_int_eq(node_on_message(netenv_node(t, "local")->node, "central", "xx", 2), -EPROTO);
    ck_assert_uint_eq(netenv_status(t, "local").malformed, 1);
    assert_synced("local", 5);
    char text[64];
    uint8_t *buf;
    size_t n;
    struct node_msg m = {.type = NODE_MSG_SYNC_PUSH, .a = 1, .b = 7, .data = (const uint8_t *)"x",
                         .len = 1};
    ck_assert_int_eq(node_msg_encode(&m, &buf, &n), 0);
    node_msg_describe(buf, n, text, sizeof(text));
    ck_assert_str_eq(text, "push 7 (1 bytes)");
    free(buf);
}
END_TEST

START_TEST(test_config_errors_and_the_switch_on_other_roles)
{
    netenv_init(t = calloc(1, sizeof(*t)), 1);
    ck_assert_int_eq(faults_init(1), 0);
    struct shop_config sc = {.topology = SHOP_SINGLE,
                             .primary = {.node = "local", .path = ":memory:"}};
    shop *s = NULL;
    char msg[SHOP_ERRMSG_MAX];
    ck_assert_int_eq(shop_open(&sc, &t->env, &s, msg), 0);
    struct node *n = NULL;
    struct node_config c = {.name = "local", .role = NODE_OFFLINE_LOCAL, .shop = s};
    ck_assert_int_eq(node_create(&c, &t->env, &n, msg), -EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "needs its central"));
    c.role = NODE_OFFLINE_CENTRAL;
    ck_assert_int_eq(node_create(&c, &t->env, &n, msg), -EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "needs its locals"));
    c.role = NODE_OFFLINE_LOCAL;
    c.peer = "central";
    c.sync_retries = -1;
    ck_assert_int_eq(node_create(&c, &t->env, &n, msg), -EINVAL);
    c.sync_retries = 0;
    ck_assert_int_eq(node_create(&c, &t->env, &n, msg), 0);
    ck_assert(node_role_is_built(NODE_OFFLINE_LOCAL) && node_role_is_built(NODE_OFFLINE_CENTRAL));
    struct node_status st;
    node_status(n, &st);
    ck_assert_int_eq(st.offline.interval_us, NODE_OFFLINE_INTERVAL_US);
    ck_assert_int_eq(st.offline.retries_budget, NODE_OFFLINE_RETRIES);
    ck_assert(!st.offline.queue_read); /* not started: no queue read */
    struct node_view v;
    node_view(n, &v);
    ck_assert(v.writable);
    node_destroy(n);
    const char *locals[] = {"local"};
    c = (struct node_config){.name = "central", .role = NODE_OFFLINE_CENTRAL, .shop = s,
                             .peers = locals, .peer_count = 1};
    ck_assert_int_eq(node_create(&c, &t->env, &n, msg), 0);
    ck_assert_int_eq(node_set_online(n, true), -EINVAL);
    node_view(n, &v);
    struct node_request wr = {.is_write = true};
    struct node_route r;
    node_route(&v, &wr, &r);
    ck_assert_int_eq(r.kind, NODE_ROUTE_REFUSE);
    node_destroy(n);
    c = (struct node_config){.name = "primary", .role = NODE_ASYNC_PRIMARY, .shop = s,
                             .peer = "secondary"};
    ck_assert_int_eq(node_create(&c, &t->env, &n, msg), 0);
    ck_assert_int_eq(node_set_online(n, false), -EINVAL);
    node_destroy(n);
    shop_close(s);
    netenv_release(t);
    free(t);
    t = NULL;
}
END_TEST

/* ---- the operator's run now (serve's POST /sync/run) ------------------------------------------- */

static uint64_t sync_now(const char *node)
{
    uint64_t ask = 0;
    ck_assert_int_eq(node_sync_now(netenv_node(t, node)->node, &ask), 0);
    ck_assert_uint_gt(ask, 0);
    return ask;
}

/* Runs until the ask has settled (false at the limit). */
static bool run_settled(const char *node, uint64_t ask, int64_t limit_us)
{
    for (int64_t end = t->now_us + limit_us; off(node).settled < ask; netenv_run(t, MS))
        if (t->now_us >= end)
            return false;
    return true;
}

START_TEST(test_sync_now_runs_at_once_and_settles_after_the_answer)
{
    setup_interval = HOUR; /* the job runs only when asked */
    setup_offline(17, 1, 3, false);
    writes("local", 10, MS);
    netenv_run(t, INTERVAL);
    ck_assert_int_eq(waiting("local"), 10); /* the timer is an hour away */
    uint64_t ask = sync_now("local");
    ck_assert_uint_eq(off("local").settled, ask - 1);
    netenv_run(t, 1); /* the run is now; its answer takes 4 ms */
    ck_assert(off("local").pushing);
    ck_assert_uint_lt(off("local").settled, ask);
    ck_assert(run_settled("local", ask, 10 * MS));
    ck_assert_int_eq(waiting("local"), 0); /* settled: what was written before the ask is SYNCED */
    ck_assert_uint_eq(off("local").pushes, 1);
    /* a backlog: the run chains its full pushes and settles after the last */
    for (int i = 0; i < 2 * NODE_OFFLINE_PUSH_ROWS + 5; i++)
        ck_assert_int_eq(netenv_write(t, "local"), 0);
    ask = sync_now("local");
    ck_assert(run_settled("local", ask, 100 * MS));
    ck_assert_int_eq(waiting("local"), 0);
    ck_assert_uint_eq(off("local").pushes, 4);
    /* asked while a push is in flight: a run follows its answer, and the ask
     * settles only once the rows written before it are pushed and answered */
    netenv_link(t, "central", "local")->delay_us = 300 * MS;
    writes("local", 3, MS);
    uint64_t first = sync_now("local");
    netenv_run(t, 10 * MS);
    ck_assert(off("local").pushing);
    writes("local", 4, MS);
    uint64_t second = sync_now("local");
    ck_assert(run_settled("local", first, 400 * MS));
    ck_assert_uint_lt(off("local").settled, second);
    ck_assert_int_eq(waiting("local"), 4);
    ck_assert(run_settled("local", second, 400 * MS));
    ck_assert_int_eq(waiting("local"), 0);
    ck_assert_uint_eq(off("local").pushes, 6);
    ck_assert_uint_eq(off("local").timeouts, 0);
    assert_synced("local", 10 + 2 * NODE_OFFLINE_PUSH_ROWS + 5 + 7);
}
END_TEST

START_TEST(test_sync_now_settles_on_failure_offline_and_crash)
{
    setup_interval = HOUR;
    setup_offline(18, 1, 3, false);
    writes("local", 5, MS);
    ck_assert(run_settled("local", sync_now("local"), 10 * MS));
    ck_assert_int_eq(waiting("local"), 0);
    /* central refuses: the ask settles with the failure */
    struct faults_arm_spec full = {.p = 1};
    ck_assert_int_eq(faults_arm("disk/central/full", &full), 0);
    writes("local", 5, MS);
    uint64_t failed = off("local").failed_pushes;
    uint64_t ask = sync_now("local");
    ck_assert(run_settled("local", ask, 20 * MS));
    ck_assert_uint_eq(off("local").failed_pushes, failed + 1);
    ck_assert(!off("local").last_push_ok);
    ck_assert_int_eq(faults_disarm("disk/central/full"), 0);
    /* no answer at all: it settles at the timeout */
    netenv_partition(t, "local", "central", true);
    uint64_t timeouts = off("local").timeouts;
    ask = sync_now("local");
    ck_assert(!run_settled("local", ask, NODE_OFFLINE_REPLY_TIMEOUT_US / 2));
    ck_assert(run_settled("local", ask, NODE_OFFLINE_REPLY_TIMEOUT_US));
    ck_assert_uint_eq(off("local").timeouts, timeouts + 1);
    netenv_partition(t, "local", "central", false);
    /* offline: the run pushes nothing and settles at once */
    struct node *n = netenv_node(t, "local")->node;
    ck_assert_int_eq(node_set_online(n, false), 0);
    uint64_t pushes = off("local").pushes;
    ask = sync_now("local");
    ck_assert(run_settled("local", ask, MS));
    ck_assert_uint_eq(off("local").pushes, pushes);
    ck_assert_int_eq(waiting("local"), 5);
    ck_assert_int_eq(node_set_online(n, true), 0);
    /* a crash settles every ask: nobody waits on a dead process */
    netenv_link(t, "central", "local")->delay_us = 300 * MS;
    ask = sync_now("local");
    netenv_run(t, 10 * MS);
    ck_assert(off("local").pushing);
    netenv_crash(t, "local");
    uint64_t unused;
    ck_assert_int_eq(node_sync_now(n, &unused), -EHOSTDOWN);
    netenv_restart(t, "local");
    ck_assert_uint_ge(off("local").settled, ask);
    netenv_link(t, "central", "local")->delay_us = 2 * MS;
    ck_assert(run_settled("local", sync_now("local"), 10 * MS));
    assert_synced("local", 10);
    /* another role */
    ck_assert_int_eq(node_sync_now(netenv_node(t, "central")->node, &unused), -EINVAL);
}
END_TEST

/* ---- everything at once, over seeds ----------------------------------------------------------- */

#define SOAK_SEEDS 8

/*
 * Three locals over links that drop, duplicate and reorder both ways,
 * central's disk failing one write in twenty, local2 dying after central
 * took a push (twice at most), local3 offline for a spell: whatever the
 * seed, once central's disk heals every row of every local reaches central
 * and is marked SYNCED exactly once (netenv checks after every event that
 * no row is marked twice and none is FAILED before its budget). The faults
 * are counted over the seeds, so the test knows it exercised them.
 */
START_TEST(test_everything_at_once_over_seeds)
{
    uint64_t crashes = 0, refused = 0, timeouts = 0, late = 0, failed_rows = 0, unchanged = 0;
    for (uint64_t seed = 100; seed < 100 + SOAK_SEEDS; seed++) {
        setup_offline(seed, 3, 2, false);
        for (int k = 0; k < 3; k++) {
            struct netenv_link *links[2] = {netenv_link(t, locals3[k], "central"),
                                            netenv_link(t, "central", locals3[k])};
            for (int d = 0; d < 2; d++) {
                links[d]->drop = 0.2;
                links[d]->duplicate = 0.2;
                links[d]->reorder = 0.3;
                links[d]->jitter_us = 300 * MS;
            }
        }
        struct faults_arm_spec disk = {.p = 0.05};
        ck_assert_int_eq(faults_arm("disk/central/write", &disk), 0);
        struct faults_arm_spec crash = {.p = 0.5, .count = 2};
        ck_assert_int_eq(faults_arm("crash/local2/sync-after-push", &crash), 0);
        struct node *local3 = netenv_node(t, "local3")->node;
        for (int i = 0; i < 60; i++) {
            if (i == 10)
                ck_assert_int_eq(node_set_online(local3, false), 0);
            if (i == 40)
                ck_assert_int_eq(node_set_online(local3, true), 0);
            for (int k = 0; k < 3; k++) {
                if (!netenv_node(t, locals3[k])->up)
                    netenv_restart(t, locals3[k]); /* back up; it writes next round */
                else
                    ck_assert_int_eq(netenv_write(t, locals3[k]), 0);
            }
            netenv_run(t, 20 * MS);
        }
        faults_disarm_all(); /* central's disk heals; no more crashes */
        for (int k = 0; k < 3; k++)
            if (!netenv_node(t, locals3[k])->up)
                netenv_restart(t, locals3[k]);
        /* the links stay bad: FAILED rows go with every push, so it converges anyway */
        ck_assert_msg(run_synced(120000 * MS), "seed %llu did not sync:\n%s",
                      (unsigned long long)seed, t->trace);
        uint64_t made = 0;
        for (int k = 0; k < 3; k++) {
            struct netenv_node *nn = netenv_node(t, locals3[k]);
            ck_assert_uint_gt(nn->writes, 30);
            assert_synced(locals3[k], nn->writes);
            made += nn->writes;
            struct node_offline_status o = off(locals3[k]);
            timeouts += o.timeouts;
            late += o.late_replies;
            failed_rows += o.rows_failed;
        }
        struct node_offline_status c = off("central");
        ck_assert_uint_eq(c.rows_applied, made); /* each row applied once; again: unchanged */
        crashes += t->crash_points;
        refused += c.pushes_refused;
        unchanged += c.rows_unchanged;
        teardown_offline();
    }
    /* what the seeds exercised together */
    ck_assert_uint_gt(crashes, 0);
    ck_assert_uint_gt(refused, 0);
    ck_assert_uint_gt(timeouts, 0);
    ck_assert_uint_gt(late, 0);
    ck_assert_uint_gt(failed_rows, 0);
    ck_assert_uint_gt(unchanged, 0);
}
END_TEST

static Suite *offline_core_suite(void)
{
    Suite *s = suite_create("offline_core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, teardown_offline);
    tcase_add_test(tc, test_clean_sync_pushes_each_row_once);
    tcase_add_test(tc, test_same_events_same_trace);
    tcase_add_test(tc, test_drops_both_ways_time_out_retry_and_converge);
    tcase_add_test(tc, test_duplicates_change_nothing_and_late_answers_mark);
    tcase_add_test(tc, test_reordered_answers_after_the_timeout_still_mark);
    tcase_add_test(tc, test_partition_then_heal);
    tcase_add_test(tc, test_central_disk_full_rows_fail_at_budget_and_sync_after_heal);
    tcase_add_test(tc, test_crash_after_push_before_mark_resends_and_marks_once);
    tcase_add_test(tc, test_one_push_in_flight_while_answers_are_slow);
    tcase_add_test(tc, test_answers_to_an_earlier_life_are_ignored);
    tcase_add_test(tc, test_central_crash_is_a_timeout);
    tcase_add_test(tc, test_offline_keeps_writing_and_online_pushes_at_once);
    tcase_add_test(tc, test_a_backlog_drains_in_full_pushes_back_to_back);
    tcase_add_test(tc, test_several_locals_one_central_no_clash);
    tcase_add_test(tc, test_separate_queue_crash_leaves_a_change_nothing_syncs);
    tcase_add_test(tc, test_strays_and_malformed_messages_change_nothing);
    tcase_add_test(tc, test_config_errors_and_the_switch_on_other_roles);
    tcase_add_test(tc, test_sync_now_runs_at_once_and_settles_after_the_answer);
    tcase_add_test(tc, test_sync_now_settles_on_failure_offline_and_crash);
    tcase_add_test(tc, test_everything_at_once_over_seeds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(offline_core_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
