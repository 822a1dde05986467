/*
 * check_cluster.c — the cluster's pure pieces: the round-robin balancer
 * (sim/lb.c: rotation, skipping a replica that timed out, the registry's
 * last good answer, the lb-balanced check) and a replica's read cache
 * (sim/cache.c: hits, ttl, invalidation by key and by kind, eviction of the
 * oldest, positions advanced past untouched changes).
 */
#include <check.h>
#include <stdlib.h>

#include "sim/cluster.h"
#include "tests/check_run.h"

/* ---- lb ----------------------------------------------------------------- */

START_TEST(test_lb_rotates_over_every_replica)
{
    struct lb lb;
    lb_init(&lb, 3);
    uint32_t mask;
    int expect[] = {0, 1, 2, 0, 1, 2, 0};
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(lb_pick(&lb, 0, &mask), expect[i]);
        ck_assert_uint_eq(mask, 7);
    }
}
END_TEST

START_TEST(test_lb_skips_a_replica_that_timed_out_then_takes_it_back)
{
    struct lb lb;
    lb_init(&lb, 3);
    uint32_t mask;
    ck_assert_int_eq(lb_pick(&lb, 0, &mask), 0);
    lb_skip(&lb, 1, 1000);
    ck_assert_int_eq(lb_pick(&lb, 10, &mask), 2);
    ck_assert_uint_eq(mask, 5);
    ck_assert_int_eq(lb_pick(&lb, 20, &mask), 0);
    ck_assert_int_eq(lb_pick(&lb, 30, &mask), 2);
    /* rested: back in the rotation */
    ck_assert_int_eq(lb_pick(&lb, 1000, &mask), 0);
    ck_assert_uint_eq(mask, 7);
    ck_assert_int_eq(lb_pick(&lb, 1001, &mask), 1);
}
END_TEST

START_TEST(test_lb_follows_the_registry_and_falls_back_when_nothing_is_left)
{
    struct lb lb;
    lb_init(&lb, 3);
    ck_assert_int_eq(lb.known_at_us, -1);
    lb_set_known(&lb, 0x4 | 0x100, 50); /* bits past the replicas are ignored */
    ck_assert_uint_eq(lb.known_mask, 4);
    ck_assert_uint_eq(lb_healthy(&lb, 60), 4);
    /* the only known replica rests: still try it rather than nothing */
    lb_skip(&lb, 2, 500);
    ck_assert_uint_eq(lb_healthy(&lb, 60), 4);
    /* the registry lists nobody: try them all */
    lb_set_known(&lb, 0, 70);
    ck_assert_uint_eq(lb_healthy(&lb, 80), 7);
}
END_TEST

START_TEST(test_lb_pick_history_is_balanced_across_set_changes)
{
    struct lb lb;
    lb_init(&lb, 4);
    uint32_t masks[200];
    int picks[200];
    for (int i = 0; i < 200; i++) {
        if (i == 37)
            lb_skip(&lb, 2, 100);
        if (i == 90)
            lb_set_known(&lb, 0xb, 90);
        picks[i] = lb_pick(&lb, i, &masks[i]);
    }
    struct lb_imbalance b;
    ck_assert(lb_balanced(masks, picks, 200, &b));
}
END_TEST

START_TEST(test_lb_balanced_finds_an_uneven_run_and_a_pick_outside_its_set)
{
    uint32_t masks[] = {3, 3, 3, 3, 3, 1, 1};
    int uneven[] = {0, 0, 1, 0, 0, 0, 0};
    struct lb_imbalance b;
    ck_assert(!lb_balanced(masks, uneven, 7, &b));
    ck_assert(!b.outside);
    ck_assert_uint_eq(b.first, 0);
    ck_assert_uint_eq(b.last, 4);
    ck_assert_int_eq(b.most, 0);
    ck_assert_uint_eq(b.most_count, 4);
    ck_assert_int_eq(b.least, 1);
    ck_assert_uint_eq(b.least_count, 1);
    int outside[] = {0, 1, 0, 1, 0, 0, 1};
    ck_assert(!lb_balanced(masks, outside, 7, &b));
    ck_assert(b.outside);
    ck_assert_uint_eq(b.last, 6);
    int fine[] = {0, 1, 0, 1, 0, 0, 0};
    ck_assert(lb_balanced(masks, fine, 7, NULL));
    ck_assert(lb_balanced(masks, fine, 0, NULL));
}
END_TEST

/* ---- cache -------------------------------------------------------------- */

START_TEST(test_cache_hit_copies_the_answer_and_counts)
{
    static struct cache c;
    cache_init(&c, 1000, 4);
    int64_t seen[] = {3, 2, 1};
    ck_assert_ptr_null(cache_get(&c, 5, 7, 0));
    ck_assert_int_eq(cache_put(&c, 5, 7, 10, 0, seen, 3), 0);
    seen[0] = 99; /* the cache holds its own copy */
    const struct cache_entry *e = cache_get(&c, 5, 7, 10);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->seen_count, 3);
    ck_assert_int_eq(e->seen[0], 3);
    ck_assert_int_eq(e->position, 10);
    ck_assert_ptr_null(cache_get(&c, 5, 8, 10));
    ck_assert_ptr_null(cache_get(&c, 4, 7, 10));
    ck_assert_uint_eq(c.hits, 1);
    ck_assert_uint_eq(c.misses, 3);
    /* replacing keeps one entry per key */
    ck_assert_int_eq(cache_put(&c, 5, 7, 12, 20, NULL, 0), 0);
    ck_assert_uint_eq(cache_count(&c), 1);
    ck_assert_uint_eq(cache_get(&c, 5, 7, 20)->seen_count, 0);
    cache_release(&c);
    ck_assert_uint_eq(cache_count(&c), 0);
}
END_TEST

START_TEST(test_cache_entries_expire_after_the_ttl)
{
    static struct cache c;
    cache_init(&c, 1000, 4);
    ck_assert_int_eq(cache_put(&c, 1, 1, 0, 100, NULL, 0), 0);
    ck_assert_ptr_nonnull(cache_get(&c, 1, 1, 1099));
    ck_assert_ptr_null(cache_get(&c, 1, 1, 1100));
    ck_assert_uint_eq(c.expired, 1);
    ck_assert_uint_eq(cache_count(&c), 0);
    cache_release(&c);
}
END_TEST

START_TEST(test_cache_invalidates_by_key_or_whole_kind)
{
    static struct cache c;
    cache_init(&c, 1000, 8);
    for (int64_t u = 1; u <= 3; u++)
        ck_assert_int_eq(cache_put(&c, 5, u, 0, 0, &u, 1), 0);
    ck_assert_int_eq(cache_put(&c, 0, 1, 0, 0, NULL, 0), 0);
    ck_assert_int_eq(cache_put(&c, 0, 2, 0, 0, NULL, 0), 0);
    ck_assert_uint_eq(cache_invalidate(&c, 5, 2, false), 1);
    ck_assert_ptr_null(cache_get(&c, 5, 2, 1));
    ck_assert_ptr_nonnull(cache_get(&c, 5, 1, 1));
    ck_assert_uint_eq(cache_invalidate(&c, 0, 0, true), 2);
    ck_assert_uint_eq(cache_count(&c), 2);
    /* what survives a batch of changes is valid after it */
    cache_advance(&c, 42);
    ck_assert_int_eq(cache_get(&c, 5, 3, 1)->position, 42);
    ck_assert_uint_eq(c.invalidated, 3);
    cache_release(&c);
}
END_TEST

START_TEST(test_cache_evicts_the_oldest_when_full)
{
    static struct cache c;
    cache_init(&c, 1000000, 3);
    for (int64_t k = 1; k <= 3; k++)
        ck_assert_int_eq(cache_put(&c, 1, k, 0, k, NULL, 0), 0);
    ck_assert_int_eq(cache_put(&c, 1, 4, 0, 4, NULL, 0), 0);
    ck_assert_uint_eq(cache_count(&c), 3);
    ck_assert_uint_eq(c.evicted, 1);
    ck_assert_ptr_null(cache_get(&c, 1, 1, 5));
    for (int64_t k = 2; k <= 4; k++)
        ck_assert_ptr_nonnull(cache_get(&c, 1, k, 5));
    cache_release(&c);
}
END_TEST

static Suite *cluster_suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *lb = tcase_create("lb");
    tcase_add_test(lb, test_lb_rotates_over_every_replica);
    tcase_add_test(lb, test_lb_skips_a_replica_that_timed_out_then_takes_it_back);
    tcase_add_test(lb, test_lb_follows_the_registry_and_falls_back_when_nothing_is_left);
    tcase_add_test(lb, test_lb_pick_history_is_balanced_across_set_changes);
    tcase_add_test(lb, test_lb_balanced_finds_an_uneven_run_and_a_pick_outside_its_set);
    suite_add_tcase(s, lb);
    TCase *cache = tcase_create("cache");
    tcase_add_test(cache, test_cache_hit_copies_the_answer_and_counts);
    tcase_add_test(cache, test_cache_entries_expire_after_the_ttl);
    tcase_add_test(cache, test_cache_invalidates_by_key_or_whole_kind);
    tcase_add_test(cache, test_cache_evicts_the_oldest_when_full);
    suite_add_tcase(s, cache);
    return s;
}

int main(void)
{
    return check_run(cluster_suite());
}
