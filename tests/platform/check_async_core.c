/*
 * check_async_core.c — the asynchronous replication core (platform/async.c,
 * node.c, msg.c) against the in-memory deterministic host (netenv): losses,
 * duplicates, reordering with a late gap report, partitions, crash and
 * restart of either side, failover with fencing, outbox=off, the window,
 * malformed and stray messages, the codec and the pure routing rule.
 * netenv checks pruned <= acked <= sent <= head, the window and that a
 * secondary's position never moves back after every single event.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netenv.h"
#include "platform/node_impl.h"

#define MS 1000

static struct netenv *t;

/* primary + secondary with a one-way delay both ways, batches of `batch`. */
static void setup_pair(uint64_t seed, uint32_t batch, int64_t delay_us, bool outbox_off)
{
    t = calloc(1, sizeof(*t));
    ck_assert_ptr_nonnull(t);
    netenv_init(t, seed);
    struct node_config c = {.batch_changes = batch, .link_delay_us = delay_us,
                            .outbox_off = outbox_off};
    ck_assert_int_eq(netenv_add(t, "primary", NODE_ASYNC_PRIMARY, "secondary", &c), 0);
    ck_assert_int_eq(netenv_add(t, "secondary", NODE_ASYNC_SECONDARY, "primary", &c), 0);
    netenv_link(t, "primary", "secondary")->delay_us = delay_us;
    netenv_link(t, "secondary", "primary")->delay_us = delay_us;
}

static void teardown_pair(void)
{
    if (t == NULL)
        return;
    netenv_release(t);
    free(t);
    t = NULL;
}

/* n writes on node, one every gap_us. */
static void writes(const char *node, int n, int64_t gap_us)
{
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(netenv_write(t, node), 0);
        netenv_run(t, gap_us);
    }
}

static void assert_converged(void)
{
    ck_assert_msg(netenv_run_quiet(t, 60000 * MS), "did not go quiet:\n%s", t->trace);
    struct node_status p = netenv_status(t, "primary"), s = netenv_status(t, "secondary");
    ck_assert_msg(p.async.acked == p.async.head_seq, "acked %lld of %lld:\n%s",
                  (long long)p.async.acked, (long long)p.async.head_seq, t->trace);
    ck_assert_int_eq(s.async.position, p.async.head_seq);
    ck_assert_int_eq(p.async.pruned_through, p.async.acked);
    ck_assert_int_eq(p.async.state, NODE_ASYNC_IDLE);
    ck_assert(netenv_same_data(t, "primary", "secondary"));
}

/* ---- the codec ------------------------------------------------------------ */

START_TEST(test_codec_round_trip_and_rejects)
{
    const uint8_t payload[] = "some batch bytes";
    struct node_msg m = {.type = NODE_MSG_ASYNC_BATCH, .a = 12, .b = -3, .data = payload,
                         .len = sizeof(payload)};
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(node_msg_encode(&m, &buf, &len), 0);
    ck_assert_uint_eq(len, NODE_MSG_HEADER_BYTES + sizeof(payload));
    struct node_msg d;
    ck_assert_int_eq(node_msg_decode(buf, len, &d), 0);
    ck_assert_int_eq(d.type, NODE_MSG_ASYNC_BATCH);
    ck_assert_int_eq(d.a, 12);
    ck_assert_int_eq(d.b, -3);
    ck_assert_uint_eq(d.len, sizeof(payload));
    ck_assert_mem_eq(d.data, payload, sizeof(payload));
    char text[64];
    node_msg_describe(buf, len, text, sizeof(text));
    ck_assert_str_eq(text, "batch 12..-3");
    /* truncated, padded, bad magic, unknown type: all refused */
    ck_assert_int_eq(node_msg_decode(buf, len - 1, &d), -EPROTO);
    ck_assert_int_eq(node_msg_decode(buf, NODE_MSG_HEADER_BYTES - 1, &d), -EPROTO);
    buf[0] = 'X';
    ck_assert_int_eq(node_msg_decode(buf, len, &d), -EPROTO);
    node_msg_describe(buf, len, text, sizeof(text));
    ck_assert_str_eq(text, "malformed message");
    buf[0] = 'F';
    buf[4] = 0;
    ck_assert_int_eq(node_msg_decode(buf, len, &d), -EPROTO);
    buf[4] = NODE_MSG_TYPES_END;
    ck_assert_int_eq(node_msg_decode(buf, len, &d), -EPROTO);
    free(buf);
    uint8_t *big;
    uint8_t *huge = calloc(1, NODE_MSG_BYTES_MAX);
    ck_assert_ptr_nonnull(huge);
    struct node_msg h = {.type = NODE_MSG_ASYNC_SNAPSHOT, .data = huge,
                         .len = NODE_MSG_BYTES_MAX - NODE_MSG_HEADER_BYTES + 1};
    ck_assert_int_eq(node_msg_encode(&h, &big, &len), -E2BIG);
    ck_assert_ptr_null(big);
    free(huge);
}
END_TEST

/* ---- streaming ------------------------------------------------------------ */

START_TEST(test_clean_stream_converges_and_prunes)
{
    setup_pair(1, 8, 20 * MS, false);
    writes("primary", 300, 2 * MS);
    assert_converged();
    struct node_status p = netenv_status(t, "primary"), s = netenv_status(t, "secondary");
    ck_assert_int_eq(p.async.head_seq, 300);
    ck_assert_uint_eq(p.async.timeouts + p.async.gap_resends, 0);
    ck_assert_uint_eq(s.async.duplicates, 0);
    ck_assert_uint_ge(p.async.batches_sent, 300 / 8);
    ck_assert_int_gt(s.async.last_lag_us, 0);
    /* nothing to ship: the primary asks for no more wakes */
    ck_assert_uint_eq(t->event_count, 0);
}
END_TEST

START_TEST(test_losses_both_ways_are_resent)
{
    setup_pair(2, 10, 30 * MS, false);
    netenv_link(t, "primary", "secondary")->drop = 0.3;
    netenv_link(t, "secondary", "primary")->drop = 0.3;
    writes("primary", 300, 3 * MS);
    netenv_link(t, "primary", "secondary")->drop = 0;
    netenv_link(t, "secondary", "primary")->drop = 0;
    assert_converged();
    struct node_status p = netenv_status(t, "primary");
    ck_assert_uint_gt(t->dropped, 0);
    ck_assert_uint_gt(p.async.timeouts + p.async.gap_resends, 0);
}
END_TEST

START_TEST(test_duplicates_change_nothing)
{
    setup_pair(3, 10, 30 * MS, false);
    netenv_link(t, "primary", "secondary")->duplicate = 0.5;
    netenv_link(t, "secondary", "primary")->duplicate = 0.5;
    writes("primary", 200, 3 * MS);
    assert_converged();
    ck_assert_uint_gt(t->duplicated, 0);
    ck_assert_uint_gt(netenv_status(t, "secondary").async.duplicates, 0);
}
END_TEST

/*
 * The bug of issue 10: with jitter, acks overtake each other and a late
 * "missing changes after X" arrives when the primary has already pruned
 * X + 1. Going back to X made the outbox unreadable and the secondary never
 * caught up. Over many seeds: every run converges, and stale acks happened.
 */
START_TEST(test_late_gap_report_never_rewinds_below_ack)
{
    uint64_t stale = 0, gap_resends = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        setup_pair(seed, 4, 100 * MS, false);
        netenv_link(t, "primary", "secondary")->jitter_us = 500;
        netenv_link(t, "secondary", "primary")->jitter_us = 500;
        netenv_link(t, "primary", "secondary")->reorder = 0.2;
        writes("primary", 150, 4 * MS);
        assert_converged();
        struct node_status p = netenv_status(t, "primary");
        stale += p.async.stale_acks;
        gap_resends += p.async.gap_resends;
        teardown_pair();
    }
    ck_assert_uint_gt(stale, 0);
    ck_assert_uint_gt(gap_resends, 0);
}
END_TEST

START_TEST(test_window_bounds_what_is_unacknowledged)
{
    setup_pair(4, 4, 10 * MS, false);
    netenv_link(t, "secondary", "primary")->cut = true; /* no ack comes back */
    writes("primary", 100, 1 * MS);
    netenv_run(t, 500 * MS);
    struct node_status p = netenv_status(t, "primary");
    ck_assert_int_eq(p.async.acked, 0);
    ck_assert_int_le(p.async.sent, (int64_t)NODE_ASYNC_WINDOW_BATCHES * 4);
    ck_assert_uint_gt(p.async.timeouts, 0);
    netenv_link(t, "secondary", "primary")->cut = false;
    assert_converged();
}
END_TEST

START_TEST(test_partition_backs_off_then_heals)
{
    setup_pair(5, 10, 10 * MS, false);
    writes("primary", 50, 2 * MS);
    netenv_partition(t, "primary", "secondary", true);
    writes("primary", 100, 2 * MS);
    netenv_run(t, 4000 * MS);
    struct node_status p = netenv_status(t, "primary");
    ck_assert_int_eq(p.async.rto_us, NODE_ASYNC_RTO_MAX_US);
    ck_assert_int_lt(p.async.acked, p.async.head_seq);
    uint64_t timeouts = p.async.timeouts;
    ck_assert_uint_ge(timeouts, 4);
    ck_assert_uint_le(timeouts, 8); /* backed off, not once per pump tick */
    netenv_partition(t, "primary", "secondary", false);
    assert_converged();
    ck_assert_int_eq(netenv_status(t, "primary").async.rto_us, NODE_ASYNC_RTO_MIN_US + 20 * MS);
}
END_TEST

/* ---- crashes ---------------------------------------------------------------- */

START_TEST(test_secondary_crash_and_restart)
{
    setup_pair(6, 10, 20 * MS, false);
    writes("primary", 100, 2 * MS);
    netenv_crash(t, "secondary");
    writes("primary", 100, 2 * MS);
    netenv_run(t, 1000 * MS);
    ck_assert_int_lt(netenv_status(t, "primary").async.acked, 200);
    netenv_restart(t, "secondary");
    ck_assert_int_gt(netenv_status(t, "secondary").async.position, 0); /* from its shop */
    writes("primary", 20, 2 * MS);
    assert_converged();
}
END_TEST

START_TEST(test_primary_crash_and_restart_resumes_from_its_outbox)
{
    setup_pair(7, 10, 20 * MS, false);
    writes("primary", 120, 1 * MS);
    netenv_crash(t, "primary");
    netenv_run(t, 500 * MS); /* what was in flight lands; the acks are lost */
    netenv_restart(t, "primary");
    struct node_status p = netenv_status(t, "primary");
    ck_assert_int_eq(p.async.sent, p.async.acked);
    ck_assert_int_le(p.async.acked, netenv_status(t, "secondary").async.position);
    writes("primary", 30, 2 * MS);
    assert_converged();
    ck_assert_uint_eq(netenv_status(t, "primary").restarts, 1);
}
END_TEST

/* ---- failover ------------------------------------------------------------- */

START_TEST(test_failover_accounts_the_window_and_fences_by_message)
{
    setup_pair(8, 10, 20 * MS, false);
    writes("primary", 100, 2 * MS);
    netenv_run(t, 500 * MS);
    netenv_partition(t, "primary", "secondary", true);
    writes("primary", 40, 2 * MS); /* acknowledged on the primary, never shipped */
    struct node *sec = netenv_node(t, "secondary")->node;
    ck_assert_int_eq(node_promote(sec), 0);
    ck_assert_int_eq(node_promote(sec), -EALREADY);
    struct node_status s = netenv_status(t, "secondary");
    ck_assert(s.async.failover.done);
    ck_assert_int_eq(s.async.failover.position, 100);
    ck_assert_int_eq(s.async.failover.window_us,
                     s.async.failover.at_us - s.async.failover.position_at_us);
    ck_assert_int_gt(s.async.failover.window_us, 80 * MS);
    ck_assert_int_eq(s.async.state, NODE_ASYNC_PROMOTED);
    /* the promoted copy takes writes; the old primary does not know yet */
    ck_assert_int_eq(netenv_write(t, "secondary"), 0);
    ck_assert_int_eq(netenv_write(t, "primary"), 0);
    netenv_partition(t, "primary", "secondary", false);
    netenv_run(t, 3000 * MS); /* it resends after a timeout, and hears it is fenced */
    struct node_status p = netenv_status(t, "primary");
    ck_assert_msg(p.fenced, "not fenced:\n%s", t->trace);
    ck_assert_int_eq(p.async.state, NODE_ASYNC_FENCED);
    ck_assert_int_eq(p.async.fenced_head_seq, 141);
    ck_assert_int_eq(netenv_write(t, "primary"), -EPERM);
    ck_assert_int_eq(netenv_status(t, "secondary").async.position, 100);
    /* fenced for good: a restart keeps it so, and it ships nothing */
    netenv_crash(t, "primary");
    netenv_restart(t, "primary");
    uint64_t sent = netenv_status(t, "primary").messages_out;
    netenv_run(t, 1000 * MS);
    ck_assert_uint_eq(netenv_status(t, "primary").messages_out, sent);
    ck_assert_int_eq(netenv_write(t, "primary"), -EPERM);
}
END_TEST

START_TEST(test_operator_fence_is_immediate)
{
    setup_pair(9, 10, 20 * MS, false);
    writes("primary", 30, 2 * MS);
    struct node *prim = netenv_node(t, "primary")->node;
    ck_assert_int_eq(node_fence(prim), 0);
    ck_assert_int_eq(node_fence(prim), 0);
    ck_assert_int_eq(node_fence(netenv_node(t, "secondary")->node), -EINVAL);
    ck_assert_int_eq(node_promote(prim), -EINVAL);
    ck_assert_int_eq(netenv_write(t, "primary"), -EPERM);
    ck_assert_int_eq(netenv_status(t, "primary").async.fenced_head_seq, 30);
}
END_TEST

/* ---- outbox=off ------------------------------------------------------------ */

START_TEST(test_outbox_off_copies_whole_database)
{
    setup_pair(10, 0, 20 * MS, true);
    writes("primary", 50, 10 * MS);
    netenv_run(t, 2 * NODE_ASYNC_SNAPSHOT_EVERY_US);
    struct node_status p = netenv_status(t, "primary"), s = netenv_status(t, "secondary");
    ck_assert_uint_eq(p.async.batches_sent, 0);
    ck_assert_uint_ge(p.async.snapshots_sent, 2);
    ck_assert_uint_ge(s.async.snapshots_applied, 2);
    ck_assert_int_gt(s.async.snapshot_as_of_us, p.async.last_commit_us);
    ck_assert(netenv_same_data(t, "primary", "secondary"));
}
END_TEST

/* ---- stray and malformed input ---------------------------------------------- */

START_TEST(test_malformed_and_stray_messages_change_nothing)
{
    setup_pair(11, 10, 20 * MS, false);
    writes("primary", 20, 2 * MS);
    netenv_run(t, 500 * MS);
    struct node *prim = netenv_node(t, "primary")->node;
    struct node_status before = netenv_status(t, "primary");
    ck_assert_int_eq(node_on_message(prim, "secondary", "garbage", 7), -EPROTO);
    uint8_t *buf;
    size_t len;
    struct node_msg ack = {.type = NODE_MSG_ASYNC_ACK, .a = 0, .b = 1};
    ck_assert_int_eq(node_msg_encode(&ack, &buf, &len), 0);
    ck_assert_int_eq(node_on_message(prim, "mallory", buf, len), 0); /* not its secondary */
    ck_assert_int_eq(node_on_message(prim, "secondary", buf, len), 0); /* stale */
    free(buf);
    struct node_msg fence = {.type = NODE_MSG_ASYNC_FENCE};
    ck_assert_int_eq(node_msg_encode(&fence, &buf, &len), 0);
    ck_assert_int_eq(node_on_message(prim, "mallory", buf, len), 0);
    free(buf);
    struct node_status after = netenv_status(t, "primary");
    ck_assert_uint_eq(after.malformed, before.malformed + 1);
    ck_assert_int_eq(after.async.acked, before.async.acked);
    ck_assert_int_eq(after.async.sent, before.async.sent);
    ck_assert_uint_eq(after.async.stale_acks, before.async.stale_acks + 1);
    ck_assert(!after.fenced);
    assert_converged();
}
END_TEST

/* ---- node creation and routing -------------------------------------------- */

static void noop_send(void *ctx, const char *from, const char *to, const void *msg, size_t len)
{
    (void)ctx, (void)from, (void)to, (void)msg, (void)len;
}

static void noop_timer(void *ctx, const char *node, int timer, int64_t at_us)
{
    (void)ctx, (void)node, (void)timer, (void)at_us;
}

static int64_t zero_clock(void *ctx)
{
    (void)ctx;
    return 0;
}

START_TEST(test_create_refuses_bad_configs_and_unbuilt_roles)
{
    struct platform_env env = {.now_us = zero_clock, .send = noop_send, .timer = noop_timer};
    struct node *n = NULL;
    char msg[SHOP_ERRMSG_MAX];
    struct node_config c = {.name = "leader", .role = NODE_CLUSTER_LEADER};
    ck_assert_int_eq(node_create(&c, &env, &n, msg), -EINVAL); /* no replicas */
    ck_assert_ptr_nonnull(strstr(msg, "replicas"));
    ck_assert_ptr_null(n);
    for (int role = 0; role < NODE_ROLES_COUNT; role++) {
        if (node_role_is_built((enum node_role)role))
            continue;
        c = (struct node_config){.name = "x", .role = (enum node_role)role, .peer = "y"};
        ck_assert_int_eq(node_create(&c, &env, &n, msg), -ENOSYS);
        ck_assert_ptr_nonnull(strstr(msg, "not built yet"));
        ck_assert_ptr_null(n);
    }
    c = (struct node_config){.name = "", .role = NODE_ASYNC_PRIMARY, .peer = "secondary"};
    ck_assert_int_eq(node_create(&c, &env, &n, msg), -EINVAL);
    c.name = "primary";
    c.peer = NULL;
    ck_assert_int_eq(node_create(&c, &env, &n, msg), -EINVAL);
    c.peer = "secondary";
    struct platform_env no_send = env;
    no_send.send = NULL;
    ck_assert_int_eq(node_create(&c, &no_send, &n, msg), -EINVAL);
    ck_assert_int_eq(node_create(&c, &env, &n, msg), 0);
    ck_assert_str_eq(node_name(n), "primary");
    ck_assert_int_eq(node_start(n), -EINVAL); /* no shop: it stays down */
    struct node_view v;
    node_view(n, &v);
    ck_assert(!v.up);
    node_destroy(n);
    ck_assert_str_eq(node_role_name(NODE_CLIENT), "client");
    ck_assert_ptr_null(node_role_name(NODE_ROLES_COUNT));
}
END_TEST

START_TEST(test_route_is_a_pure_rule)
{
    struct node_view v = {.up = true, .writable = true, .position = 10};
    snprintf(v.writer, sizeof(v.writer), "primary");
    struct node_request w = {.is_write = true}, r = {.is_write = false};
    struct node_route out;
    node_route(&v, &w, &out);
    ck_assert_int_eq(out.kind, NODE_ROUTE_HERE);
    v.fenced = true;
    node_route(&v, &r, &out);
    ck_assert_int_eq(out.kind, NODE_ROUTE_REFUSE);
    v.fenced = false;
    v.writable = false;
    v.role = NODE_ASYNC_SECONDARY;
    node_route(&v, &w, &out);
    ck_assert_int_eq(out.kind, NODE_ROUTE_REDIRECT);
    ck_assert_str_eq(out.to, "primary");
    v.role = NODE_CLUSTER_REPLICA;
    snprintf(v.writer, sizeof(v.writer), "leader");
    node_route(&v, &w, &out);
    ck_assert_int_eq(out.kind, NODE_ROUTE_FORWARD);
    ck_assert_str_eq(out.to, "leader");
    /* read-your-writes: a session ahead of the node waits for it */
    r.session.position = 11;
    node_route(&v, &r, &out);
    ck_assert_int_eq(out.kind, NODE_ROUTE_WAIT);
    ck_assert_int_eq(out.wait_for, 11);
    r.session.position = 10;
    node_route(&v, &r, &out);
    ck_assert_int_eq(out.kind, NODE_ROUTE_HERE);
    v.writer[0] = '\0';
    node_route(&v, &w, &out);
    ck_assert_int_eq(out.kind, NODE_ROUTE_REFUSE);
    v.up = false;
    node_route(&v, &r, &out);
    ck_assert_int_eq(out.kind, NODE_ROUTE_REFUSE);
    /* sessions only move forward */
    struct node_session s = {0};
    node_session_saw(&s, 7);
    node_session_saw(&s, 3);
    ck_assert_int_eq(s.position, 7);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("async core");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, test_codec_round_trip_and_rejects);
    tcase_add_test(tc, test_create_refuses_bad_configs_and_unbuilt_roles);
    tcase_add_test(tc, test_route_is_a_pure_rule);
    suite_add_tcase(s, tc);
    tc = tcase_create("protocol");
    tcase_add_checked_fixture(tc, NULL, teardown_pair);
    tcase_add_test(tc, test_clean_stream_converges_and_prunes);
    tcase_add_test(tc, test_losses_both_ways_are_resent);
    tcase_add_test(tc, test_duplicates_change_nothing);
    tcase_add_test(tc, test_window_bounds_what_is_unacknowledged);
    tcase_add_test(tc, test_partition_backs_off_then_heals);
    tcase_add_test(tc, test_secondary_crash_and_restart);
    tcase_add_test(tc, test_primary_crash_and_restart_resumes_from_its_outbox);
    tcase_add_test(tc, test_failover_accounts_the_window_and_fences_by_message);
    tcase_add_test(tc, test_operator_fence_is_immediate);
    tcase_add_test(tc, test_outbox_off_copies_whole_database);
    tcase_add_test(tc, test_malformed_and_stray_messages_change_nothing);
    suite_add_tcase(s, tc);
    tc = tcase_create("late gap");
    tcase_add_test(tc, test_late_gap_report_never_rewinds_below_ack);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
