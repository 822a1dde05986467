/*
 * check_cluster_core.c — the cluster roles of the replication core
 * (platform/cluster.c, registry.c, cache.c) against the in-memory
 * deterministic host (netenv): propagation to every replica through losses,
 * duplicates, reordering and partitions, pruning to the lowest position,
 * catch-up after a restart of a replica or of the leader, the forwarded
 * write's deferred answer and the session rule (node_route), the naive
 * propagate=before-commit, the registry's heartbeats and the client's last
 * good answer and round robin, and the replica's read cache invalidated from
 * the change records it applies. netenv checks pruned <= acked <= sent <=
 * head, the window, and that no replica applies a change twice, after every
 * single event.
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
static const char *const replicas[] = {"replica1", "replica2", "replica3"};

/* the leader's pre-commit hook (propagate=before-commit), captured for the test */
static uint8_t hook_change[4096];
static size_t hook_len;
static int64_t hook_seq;

static void hook(void *ctx, const char *node, int64_t seq, const void *change, size_t len)
{
    struct netenv *e = ctx;
    ck_assert_str_eq(node, "leader");
    if (len <= sizeof(hook_change)) {
        memcpy(hook_change, change, len);
        hook_len = len;
        hook_seq = seq;
    }
    node_on_before_commit(netenv_node(e, "leader")->node, seq, change, len);
}

/*
 * A leader and n replicas, a one-way delay on every link; with_registry adds
 * the registry and one client. cfg (may be NULL) gives the replicas' cache
 * and the leader's naive mode.
 */
static void setup_cluster(uint64_t seed, size_t n, int64_t delay_us, bool with_registry,
                          const struct node_config *cfg)
{
    t = calloc(1, sizeof(*t));
    ck_assert_ptr_nonnull(t);
    netenv_init(t, seed);
    struct node_config c = {.link_delay_us = delay_us};
    if (cfg != NULL)
        c = *cfg;
    c.link_delay_us = delay_us;
    if (c.propagate_before_commit)
        t->env.before_commit = hook;
    struct node_config lc = c;
    lc.peers = replicas;
    lc.peer_count = n;
    ck_assert_int_eq(netenv_add(t, "leader", NODE_CLUSTER_LEADER, "", &lc), 0);
    for (size_t i = 0; i < n; i++) {
        struct node_config rc = c;
        rc.registry = with_registry ? "registry" : NULL;
        ck_assert_int_eq(netenv_add(t, replicas[i], NODE_CLUSTER_REPLICA, "leader", &rc), 0);
    }
    if (with_registry) {
        struct node_config gc = {.peers = replicas, .peer_count = n, .link_delay_us = delay_us};
        ck_assert_int_eq(netenv_add(t, "registry", NODE_REGISTRY, "", &gc), 0);
        ck_assert_int_eq(netenv_add(t, "client1", NODE_CLIENT, "registry", &gc), 0);
    }
    for (size_t a = 0; a < t->node_count; a++)
        for (size_t b = 0; b < t->node_count; b++)
            t->links[a][b].delay_us = delay_us;
}

static void teardown_cluster(void)
{
    if (t == NULL)
        return;
    netenv_release(t);
    free(t);
    t = NULL;
}

static void writes(int n, int64_t gap_us)
{
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(netenv_write(t, "leader"), 0);
        netenv_run(t, gap_us);
    }
}

static void assert_converged(size_t n)
{
    ck_assert_msg(netenv_run_quiet(t, 60000 * MS), "did not go quiet:\n%s", t->trace);
    struct node_status l = netenv_status(t, "leader");
    for (size_t i = 0; i < n; i++) {
        struct node_status r = netenv_status(t, replicas[i]);
        ck_assert_msg(r.cluster.position == l.cluster.head_seq, "%s at %lld of %lld:\n%s",
                      replicas[i], (long long)r.cluster.position,
                      (long long)l.cluster.head_seq, t->trace);
        ck_assert_int_eq(l.cluster.links[i].acked, l.cluster.head_seq);
        ck_assert(!r.cluster.applied_twice);
        ck_assert(netenv_same_data(t, "leader", replicas[i]));
    }
}

/* ---- propagation ------------------------------------------------------------- */

START_TEST(test_every_replica_gets_every_change_once_and_the_outbox_is_pruned)
{
    setup_cluster(1, 3, 2 * MS, false, NULL);
    writes(300, 1 * MS);
    assert_converged(3);
    struct node_status l = netenv_status(t, "leader");
    ck_assert_int_ge(l.cluster.head_seq, 300);
    /* pruned in steps to what every replica confirmed */
    ck_assert_int_gt(l.cluster.pruned_through, l.cluster.head_seq - NODE_CLUSTER_PRUNE_STEP);
    ck_assert_int_le(l.cluster.pruned_through, l.cluster.head_seq);
    for (size_t i = 0; i < 3; i++) {
        ck_assert(l.cluster.links[i].known);
        ck_assert_uint_eq(l.cluster.links[i].timeouts, 0);
        struct node_status r = netenv_status(t, replicas[i]);
        ck_assert_uint_eq(r.cluster.changes_applied, (uint64_t)l.cluster.head_seq);
    }
    teardown_cluster();
}
END_TEST

START_TEST(test_losses_duplicates_and_reordering_still_converge)
{
    for (uint64_t seed = 1; seed <= 6; seed++) {
        setup_cluster(seed, 2, 3 * MS, false, NULL);
        for (size_t a = 0; a < t->node_count; a++)
            for (size_t b = 0; b < t->node_count; b++)
                t->links[a][b] = (struct netenv_link){.delay_us = 3 * MS, .jitter_us = 4 * MS,
                                                      .drop = 0.1, .duplicate = 0.1,
                                                      .reorder = 0.2};
        writes(250, 500);
        for (size_t a = 0; a < t->node_count; a++)
            for (size_t b = 0; b < t->node_count; b++)
                t->links[a][b].drop = 0;
        assert_converged(2);
        struct node_status l = netenv_status(t, "leader");
        struct node_status r = netenv_status(t, "replica1");
        ck_assert_uint_gt(l.cluster.links[0].timeouts + l.cluster.links[0].gap_resends, 0);
        ck_assert_uint_gt(r.cluster.duplicates, 0);
        teardown_cluster();
    }
}
END_TEST

START_TEST(test_a_partition_backs_off_and_the_replica_catches_up_after_the_heal)
{
    setup_cluster(3, 2, 2 * MS, false, NULL);
    writes(20, 1 * MS);
    netenv_partition(t, "leader", "replica2", true);
    writes(200, 10 * MS);
    struct node_status l = netenv_status(t, "leader");
    ck_assert_uint_ge(l.cluster.links[1].timeouts, 3);
    ck_assert_int_eq(l.cluster.links[1].rto_us, NODE_CLUSTER_RTO_MAX_US);
    /* nothing replica2 lacks is pruned; replica1 has it all */
    ck_assert_int_le(l.cluster.pruned_through, l.cluster.links[1].acked);
    ck_assert_int_eq(l.cluster.links[0].acked, l.cluster.head_seq);
    /* the window bounds what is in flight to the silent replica */
    ck_assert_int_le(l.cluster.links[1].sent - l.cluster.links[1].acked,
                     (int64_t)NODE_CLUSTER_WINDOW_BATCHES * NODE_CLUSTER_BATCH_CHANGES);
    netenv_partition(t, "leader", "replica2", false);
    assert_converged(2);
    teardown_cluster();
}
END_TEST

START_TEST(test_a_replica_restarted_says_hello_and_gets_exactly_what_it_lacks)
{
    setup_cluster(4, 2, 2 * MS, false, NULL);
    writes(50, 1 * MS);
    netenv_crash(t, "replica1");
    writes(100, 1 * MS);
    struct node_status l = netenv_status(t, "leader");
    ck_assert_int_lt(l.cluster.links[0].acked, l.cluster.head_seq);
    ck_assert_int_le(l.cluster.pruned_through, l.cluster.links[0].acked);
    netenv_restart(t, "replica1");
    assert_converged(2);
    ck_assert_ptr_nonnull(strstr(t->trace, "replica1 restarted: at change"));
    struct node_status r = netenv_status(t, "replica1");
    ck_assert_uint_eq(r.restarts, 1);
    ck_assert_uint_eq(r.cluster.changes_applied, (uint64_t)r.cluster.position);
    teardown_cluster();
}
END_TEST

START_TEST(test_a_leader_restarted_probes_and_resumes_from_the_replicas_positions)
{
    setup_cluster(5, 2, 2 * MS, false, NULL);
    writes(120, 1 * MS);
    netenv_partition(t, "leader", "replica2", true);
    writes(80, 1 * MS);
    netenv_crash(t, "leader");
    netenv_partition(t, "leader", "replica2", false);
    netenv_run(t, 100 * MS);
    netenv_restart(t, "leader");
    struct node_status l = netenv_status(t, "leader");
    ck_assert(!l.cluster.links[0].known && !l.cluster.links[1].known);
    writes(30, 1 * MS);
    assert_converged(2);
    l = netenv_status(t, "leader");
    ck_assert_uint_ge(l.cluster.links[1].probes, 1);
    ck_assert_int_ge(l.cluster.head_seq, 230);
    teardown_cluster();
}
END_TEST

START_TEST(test_acks_of_a_dead_replica_process_are_ignored)
{
    setup_cluster(6, 1, 5 * MS, false, NULL);
    writes(10, 1 * MS);
    netenv_run(t, 3 * MS); /* acks in flight */
    netenv_crash(t, "replica1");
    netenv_run(t, 1 * MS);
    netenv_restart(t, "replica1");
    writes(10, 1 * MS);
    assert_converged(1);
    teardown_cluster();
}
END_TEST

/* ---- requests: forwarding, the deferred answer, the session ----------------- */

START_TEST(test_a_forwarded_write_is_answered_once_the_replica_holds_it)
{
    setup_cluster(7, 2, 20 * MS, false, NULL);
    netenv_run(t, 100 * MS);
    struct node_view rv;
    node_view(netenv_node(t, "replica1")->node, &rv);
    struct node_request w = {.is_write = true};
    struct node_route r;
    node_route(&rv, &w, &r);
    ck_assert_int_eq(r.kind, NODE_ROUTE_FORWARD);
    ck_assert_str_eq(r.to, "leader");
    /* the leader serves it (as the host forwarded it) */
    ck_assert_int_eq(netenv_write(t, "leader"), 0);
    int64_t p = netenv_status(t, "leader").cluster.head_seq;
    /* the answer carries p: the replica holds it back until it applied p */
    struct node_request answer = {.session = {.position = p}};
    node_view(netenv_node(t, "replica1")->node, &rv);
    node_route(&rv, &answer, &r);
    ck_assert_int_eq(r.kind, NODE_ROUTE_WAIT);
    ck_assert_int_eq(r.wait_for, p);
    netenv_run(t, 30 * MS);
    node_view(netenv_node(t, "replica1")->node, &rv);
    ck_assert_int_ge(rv.position, p);
    node_route(&rv, &answer, &r);
    ck_assert_int_eq(r.kind, NODE_ROUTE_HERE);
    /* a read at the other replica behind the session waits too, then is served */
    netenv_partition(t, "leader", "replica2", true);
    ck_assert_int_eq(netenv_write(t, "leader"), 0);
    p = netenv_status(t, "leader").cluster.head_seq;
    netenv_run(t, 200 * MS);
    node_view(netenv_node(t, "replica2")->node, &rv);
    struct node_request read = {.session = {.position = p}};
    node_route(&rv, &read, &r);
    ck_assert_int_eq(r.kind, NODE_ROUTE_WAIT);
    netenv_partition(t, "leader", "replica2", false);
    assert_converged(2);
    node_view(netenv_node(t, "replica2")->node, &rv);
    node_route(&rv, &read, &r);
    ck_assert_int_eq(r.kind, NODE_ROUTE_HERE);
    teardown_cluster();
}
END_TEST

/* ---- propagate=before-commit --------------------------------------------------- */

START_TEST(test_before_commit_sends_from_the_hook_and_counts_a_phantom)
{
    struct node_config c = {.propagate_before_commit = true};
    setup_cluster(8, 2, 2 * MS, false, &c);
    writes(20, 1 * MS);
    assert_converged(2);
    struct node_status l = netenv_status(t, "leader");
    ck_assert_uint_eq(l.cluster.hook_sends, 20);
    ck_assert_uint_eq(l.cluster.phantoms, 0);
    /* a hooked change whose commit never came (it failed), then the next one
     * with the same sequence: the replicas got a change the leader lacks */
    ck_assert_uint_gt(hook_len, 0);
    struct node *leader = netenv_node(t, "leader")->node;
    int64_t seq = l.cluster.head_seq + 1;
    ck_assert_int_eq(node_on_before_commit(leader, seq, hook_change, hook_len), 0);
    ck_assert_int_eq(node_on_before_commit(leader, seq, hook_change, hook_len), 0);
    l = netenv_status(t, "leader");
    ck_assert_uint_eq(l.cluster.phantoms, 1);
    ck_assert_int_eq(l.cluster.phantom_seq, seq);
    ck_assert_uint_eq(l.cluster.hook_sends, 22);
    teardown_cluster();
}
END_TEST

/* ---- the registry and the client ------------------------------------------------ */

static int pick(struct node_pick *p)
{
    ck_assert_int_eq(node_client_pick(netenv_node(t, "client1")->node, p), 0);
    return p->index;
}

START_TEST(test_the_client_rotates_skips_a_failed_replica_and_takes_it_back)
{
    setup_cluster(9, 3, 1 * MS, true, NULL);
    struct node_pick p;
    /* before any answer: the configured list, in strict rotation */
    ck_assert_int_eq(pick(&p), 0);
    ck_assert_uint_eq(p.healthy_mask, 7);
    ck_assert_int_eq(pick(&p), 1);
    ck_assert_int_eq(pick(&p), 2);
    ck_assert_int_eq(pick(&p), 0);
    struct node *client = netenv_node(t, "client1")->node;
    node_client_done(client, "replica2", false, -1);
    ck_assert_int_eq(pick(&p), 2); /* replica2 rests */
    ck_assert_uint_eq(p.healthy_mask, 5);
    ck_assert_int_eq(pick(&p), 0);
    netenv_run(t, NODE_CLUSTER_SKIP_US);
    ck_assert_int_eq(pick(&p), 1); /* back in the rotation */
    ck_assert_uint_eq(p.healthy_mask, 7);
    /* the session: the highest position any answer reflected */
    node_client_done(client, "replica1", true, 40);
    node_client_done(client, "replica3", true, 12);
    pick(&p);
    ck_assert_int_eq(p.session.position, 40);
    ck_assert_uint_eq(netenv_status(t, "client1").cluster.skips, 1);
    teardown_cluster();
}
END_TEST

START_TEST(test_the_registry_lists_live_replicas_and_the_client_keeps_its_last_answer)
{
    setup_cluster(10, 3, 1 * MS, true, NULL);
    netenv_run(t, NODE_CLUSTER_REGISTRY_WINDOW_US / 2);
    struct node_status g = netenv_status(t, "registry");
    ck_assert(g.cluster.warming); /* not a whole window of heartbeats yet */
    ck_assert_uint_gt(g.cluster.unanswered, 0);
    netenv_run(t, 2 * NODE_CLUSTER_REFRESH_US);
    struct node_status c = netenv_status(t, "client1");
    ck_assert(c.cluster.known_from_registry);
    ck_assert_uint_eq(c.cluster.known_mask, 7);
    /* a dead replica drops out of the registry's answer */
    netenv_crash(t, "replica3");
    netenv_run(t, NODE_CLUSTER_REGISTRY_WINDOW_US + 2 * NODE_CLUSTER_REFRESH_US);
    c = netenv_status(t, "client1");
    ck_assert_uint_eq(c.cluster.known_mask, 3);
    struct node_pick p;
    for (int i = 0; i < 6; i++)
        ck_assert_int_ne(pick(&p), 2);
    /* the registry dies: the client keeps the last good answer */
    netenv_crash(t, "registry");
    netenv_restart(t, "replica3");
    netenv_run(t, 3 * NODE_CLUSTER_REFRESH_US);
    c = netenv_status(t, "client1");
    ck_assert(c.cluster.stale);
    ck_assert_uint_eq(c.cluster.known_mask, 3);
    ck_assert_ptr_nonnull(strstr(t->trace, "keeping its last good answer {replica1,replica2}"));
    /* back, it answers again once it has heard a window of heartbeats */
    netenv_restart(t, "registry");
    netenv_run(t, NODE_CLUSTER_REFRESH_US);
    ck_assert(netenv_status(t, "registry").cluster.warming);
    netenv_run(t, NODE_CLUSTER_REGISTRY_WINDOW_US + 2 * NODE_CLUSTER_REFRESH_US);
    c = netenv_status(t, "client1");
    ck_assert(!c.cluster.stale);
    ck_assert_uint_eq(c.cluster.known_mask, 7);
    ck_assert_ptr_nonnull(strstr(t->trace, "the registry answers again"));
    teardown_cluster();
}
END_TEST

/* ---- the read cache ---------------------------------------------------------------- */

static struct node *replica1(void)
{
    return netenv_node(t, "replica1")->node;
}

static int64_t position1(void)
{
    struct node_view v;
    node_view(replica1(), &v);
    return v.position;
}

static int put(const char *key, const char *table, const char *column, int64_t value,
               const char *answer)
{
    struct node_cache_dep d = {.table = table, .column = column, .value = value};
    return node_cache_put(replica1(), key, &d, 1, answer, strlen(answer) + 1, position1());
}

static bool cached(const char *key, int64_t session)
{
    struct node_cache_hit h;
    struct node_session s = {.position = session};
    return node_cache_get(replica1(), key, &s, &h) == 0;
}

/* A user whose id the test knows: the first write creates user 1 on an empty shop. */
START_TEST(test_cache_on_drops_what_a_change_touches_and_moves_the_rest)
{
    struct node_config c = {.cache = NODE_CACHE_ON, .cache_ttl_us = 10000 * MS};
    setup_cluster(11, 1, 1 * MS, false, &c);
    writes(3, 5 * MS); /* users 1..3 */
    ck_assert_int_eq(put("user/1", "users", "id", 1, "alice"), 0);
    ck_assert_int_eq(put("user/2", "users", "id", 2, "bob"), 0);
    ck_assert_int_eq(put("users", "users", NULL, 0, "all"), 0);
    ck_assert_int_eq(put("orders/1", "orders", "user_id", 1, "none"), 0);
    struct node_cache_hit h;
    ck_assert_int_eq(node_cache_get(replica1(), "user/1", NULL, &h), 0);
    ck_assert_str_eq(h.answer, "alice");
    ck_assert_int_eq(h.position, position1());
    /* user 2 changes on the leader: user/2 and the whole list go, the others move on */
    shop *ls = netenv_node(t, "leader")->shop;
    struct shop_user u;
    ck_assert_int_eq(shop_user_get(ls, 2, &u), 0);
    ck_assert_int_eq(shop_user_update(ls, u.email, "Bob Two", NULL), 0);
    ck_assert_int_eq(node_on_commit(netenv_node(t, "leader")->node, shop_last_seq(ls)), 0);
    netenv_run(t, 10 * MS);
    ck_assert(!cached("user/2", 0));
    ck_assert(!cached("users", 0));
    ck_assert(cached("user/1", position1()));
    ck_assert(cached("orders/1", position1()));
    struct node_status st = netenv_status(t, "replica1");
    ck_assert_uint_eq(st.cluster.cache.invalidated, 2);
    ck_assert_uint_eq(st.cluster.cache.entries, 2);
    /* a put at a position the replica has moved past is refused */
    ck_assert_int_eq(node_cache_put(replica1(), "late", NULL, 0, "x", 1, position1() - 1),
                     -ESTALE);
    ck_assert_int_eq(put("bad", "users", "nope", 1, "x"), -EINVAL);
    ck_assert_int_eq(put("bad", "nope", NULL, 1, "x"), -EINVAL);
    teardown_cluster();
}
END_TEST

START_TEST(test_cache_naive_never_drops_an_entry_for_a_change)
{
    struct node_config c = {.cache = NODE_CACHE_NAIVE, .cache_ttl_us = 10000 * MS};
    setup_cluster(12, 1, 1 * MS, false, &c);
    writes(2, 5 * MS);
    int64_t at = position1();
    ck_assert_int_eq(put("users", "users", NULL, 0, "two"), 0);
    writes(5, 5 * MS);
    struct node_cache_hit h;
    struct node_session s = {.position = position1()};
    ck_assert_int_eq(node_cache_get(replica1(), "users", &s, &h), 0);
    ck_assert_int_eq(h.position, at); /* it says how old it is: the checkers see the lie */
    ck_assert_int_lt(h.position, s.position);
    ck_assert_uint_eq(netenv_status(t, "replica1").cluster.cache.invalidated, 0);
    teardown_cluster();
}
END_TEST

START_TEST(test_cache_is_bounded_in_age_and_size_and_lost_with_the_process)
{
    struct node_config c = {.cache = NODE_CACHE_ON, .cache_ttl_us = 100 * MS,
                            .cache_entries = 4};
    setup_cluster(13, 1, 1 * MS, false, &c);
    writes(1, 5 * MS);
    char key[16];
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(put(key, "products", "id", i, "v"), 0);
    }
    struct node_status st = netenv_status(t, "replica1");
    ck_assert_uint_eq(st.cluster.cache.entries, 4);
    ck_assert_uint_eq(st.cluster.cache.evicted, 2);
    ck_assert(!cached("k0", 0) && !cached("k1", 0)); /* the oldest went first */
    ck_assert(cached("k5", 0));
    netenv_run(t, 100 * MS);
    ck_assert(!cached("k5", 0));
    ck_assert_uint_eq(netenv_status(t, "replica1").cluster.cache.expired, 1);
    ck_assert_int_eq(put("k9", "products", NULL, 0, "v"), 0);
    netenv_crash(t, "replica1");
    netenv_restart(t, "replica1");
    netenv_run(t, 10 * MS);
    ck_assert(!cached("k9", 0));
    char big[NODE_CACHE_ANSWER_BYTES_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(put("big", "products", NULL, 0, big), -E2BIG);
    teardown_cluster();
}
END_TEST

static Suite *cluster_core_suite(void)
{
    Suite *s = suite_create("cluster core");
    TCase *p = tcase_create("propagation");
    tcase_set_timeout(p, 120);
    tcase_add_test(p, test_every_replica_gets_every_change_once_and_the_outbox_is_pruned);
    tcase_add_test(p, test_losses_duplicates_and_reordering_still_converge);
    tcase_add_test(p, test_a_partition_backs_off_and_the_replica_catches_up_after_the_heal);
    tcase_add_test(p, test_a_replica_restarted_says_hello_and_gets_exactly_what_it_lacks);
    tcase_add_test(p, test_a_leader_restarted_probes_and_resumes_from_the_replicas_positions);
    tcase_add_test(p, test_acks_of_a_dead_replica_process_are_ignored);
    tcase_add_test(p, test_before_commit_sends_from_the_hook_and_counts_a_phantom);
    suite_add_tcase(s, p);
    TCase *r = tcase_create("requests");
    tcase_set_timeout(r, 60);
    tcase_add_test(r, test_a_forwarded_write_is_answered_once_the_replica_holds_it);
    tcase_add_test(r, test_the_client_rotates_skips_a_failed_replica_and_takes_it_back);
    tcase_add_test(r, test_the_registry_lists_live_replicas_and_the_client_keeps_its_last_answer);
    suite_add_tcase(s, r);
    TCase *c = tcase_create("cache");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, test_cache_on_drops_what_a_change_touches_and_moves_the_rest);
    tcase_add_test(c, test_cache_naive_never_drops_an_entry_for_a_change);
    tcase_add_test(c, test_cache_is_bounded_in_age_and_size_and_lost_with_the_process);
    suite_add_tcase(s, c);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cluster_core_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
