/*
 * check_cluster.c — the simulated cluster's pure check: whether a history
 * of round-robin picks was balanced (sim/lb.c, the lb-balanced invariant).
 * The balancer, the registry and the read cache are the platform's, tested
 * against the in-memory host in tests/platform/check_cluster_core.c.
 */
#include <check.h>
#include <stdlib.h>

#include "sim/cluster.h"
#include "tests/check_run.h"

/* Picks that rotate over each healthy set in turn are balanced. */
START_TEST(test_lb_balanced_accepts_rotation_across_set_changes)
{
    uint32_t masks[] = {7, 7, 7, 7, 7, 5, 5, 5, 5, 7, 7, 7};
    int picks[] = {0, 1, 2, 0, 1, 2, 0, 2, 0, 1, 2, 0};
    ck_assert(lb_balanced(masks, picks, 12, NULL));
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

static Suite *cluster_suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *lb = tcase_create("lb");
    tcase_add_test(lb, test_lb_balanced_accepts_rotation_across_set_changes);
    tcase_add_test(lb, test_lb_balanced_finds_an_uneven_run_and_a_pick_outside_its_set);
    suite_add_tcase(s, lb);
    return s;
}

int main(void)
{
    return check_run(cluster_suite());
}
