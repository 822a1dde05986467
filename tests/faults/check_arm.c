/*
 * check_arm.c — tests faults/arm.c: arming libfiu points and deciding from
 * seeded streams. Breaks p/once/count/after, reproducibility by seed,
 * disarming, and points enabled from outside the way fiu-ctrl does.
 * Depends on libfaults, libfiu's control API and Check. Every test disarms
 * what it armed (the fixture), because a point left enabled leaks into
 * Check's own machinery.
 */
#include "faults/faults.h"

#include <check.h>
#include <errno.h>
#include <fiu-control.h>
#include <fiu.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALLS 200

static void setup(void)
{
    ck_assert_int_eq(faults_init(42), 0);
}

static void teardown(void)
{
    faults_disarm_all();
}

static int arm(const char *name, struct faults_arm_spec spec)
{
    return faults_arm(name, &spec);
}

/* Calls `name` CALLS times; bit i of fired[] says whether call i fired. */
static int run_calls(const char *name, bool fired[CALLS])
{
    int count = 0;
    for (int i = 0; i < CALLS; i++) {
        fired[i] = faults_check(name) != 0;
        count += fired[i];
    }
    return count;
}

START_TEST(p_one_always_fires_with_the_catalog_errno)
{
    ck_assert_int_eq(arm("disk/primary/write", (struct faults_arm_spec){.p = 1}), 0);
    for (int i = 0; i < CALLS; i++) {
        ck_assert_int_eq(faults_check("disk/primary/write"), EIO);
    }
    uint64_t calls = 0, fired = 0;
    ck_assert_int_eq(faults_stats("disk/primary/write", &calls, &fired), 0);
    ck_assert_uint_eq(calls, CALLS);
    ck_assert_uint_eq(fired, CALLS);
    ck_assert_int_eq(faults_check("disk/mirror/write"), 0);
}
END_TEST

START_TEST(p_zero_means_always)
{
    ck_assert_int_eq(arm("disk/primary/full", (struct faults_arm_spec){0}), 0);
    bool fired[CALLS];
    ck_assert_int_eq(run_calls("disk/primary/full", fired), CALLS);
    ck_assert_int_eq(faults_check("disk/primary/full"), ENOSPC);
}
END_TEST

START_TEST(once_fires_exactly_once)
{
    ck_assert_int_eq(arm("disk/primary/fsync", (struct faults_arm_spec){.count = 1}), 0);
    bool fired[CALLS];
    ck_assert_int_eq(run_calls("disk/primary/fsync", fired), 1);
    ck_assert(fired[0]);
}
END_TEST

START_TEST(count_three_fires_the_first_three)
{
    ck_assert_int_eq(arm("disk/primary/read", (struct faults_arm_spec){.count = 3}), 0);
    bool fired[CALLS];
    ck_assert_int_eq(run_calls("disk/primary/read", fired), 3);
    ck_assert(fired[0] && fired[1] && fired[2] && !fired[3]);
}
END_TEST

START_TEST(after_two_skips_two_calls)
{
    ck_assert_int_eq(arm("disk/primary/read", (struct faults_arm_spec){.after = 2, .count = 1}), 0);
    bool fired[CALLS];
    ck_assert_int_eq(run_calls("disk/primary/read", fired), 1);
    ck_assert(!fired[0] && !fired[1] && fired[2]);
}
END_TEST

/* The fire pattern of a p=0.3 point under `seed`. */
static int pattern_under_seed(uint64_t seed, bool fired[CALLS])
{
    ck_assert_int_eq(faults_init(seed), 0);
    ck_assert_int_eq(arm("net/client1/primary/drop", (struct faults_arm_spec){.p = 0.3}), 0);
    return run_calls("net/client1/primary/drop", fired);
}

START_TEST(probability_fires_a_seeded_reproducible_subset)
{
    bool first[CALLS], again[CALLS], other[CALLS];
    int count = pattern_under_seed(7, first);
    ck_assert_msg(count > CALLS * 2 / 10 && count < CALLS * 4 / 10, "fired %d", count);
    ck_assert_int_eq(pattern_under_seed(7, again), count);
    ck_assert_mem_eq(first, again, sizeof first);
    pattern_under_seed(8, other);
    ck_assert(memcmp(first, other, sizeof first) != 0);
}
END_TEST

START_TEST(another_armed_point_does_not_shift_the_stream)
{
    bool alone[CALLS], interleaved[CALLS];
    pattern_under_seed(7, alone);
    ck_assert_int_eq(faults_init(7), 0);
    ck_assert_int_eq(arm("net/client1/primary/drop", (struct faults_arm_spec){.p = 0.3}), 0);
    ck_assert_int_eq(arm("disk/primary/read", (struct faults_arm_spec){.p = 0.5}), 0);
    for (int i = 0; i < CALLS; i++) {
        faults_check("disk/primary/read");
        interleaved[i] = faults_check("net/client1/primary/drop") != 0;
    }
    ck_assert_mem_eq(alone, interleaved, sizeof alone);
}
END_TEST

START_TEST(rearming_resets_counters_and_stream)
{
    bool first[CALLS], second[CALLS];
    pattern_under_seed(3, first);
    ck_assert_int_eq(arm("net/client1/primary/drop", (struct faults_arm_spec){.p = 0.3}), 0);
    uint64_t calls = 1;
    ck_assert_int_eq(faults_stats("net/client1/primary/drop", &calls, NULL), 0);
    ck_assert_uint_eq(calls, 0);
    run_calls("net/client1/primary/drop", second);
    ck_assert_mem_eq(first, second, sizeof first);
}
END_TEST

START_TEST(disarm_stops_it)
{
    ck_assert_int_eq(arm("disk/primary/write", (struct faults_arm_spec){.p = 1}), 0);
    ck_assert_int_eq(faults_check("disk/primary/write"), EIO);
    ck_assert_int_eq(faults_disarm("disk/primary/write"), 0);
    ck_assert_int_eq(faults_check("disk/primary/write"), 0);
    ck_assert_int_eq(faults_disarm("disk/primary/write"), -ENOENT);
    ck_assert_int_eq(faults_stats("disk/primary/write", NULL, NULL), -ENOENT);
}
END_TEST

START_TEST(init_disarms_everything)
{
    ck_assert_int_eq(arm("disk/primary/write", (struct faults_arm_spec){.p = 1}), 0);
    ck_assert_int_eq(arm("disk/*", (struct faults_arm_spec){.p = 1}), 0);
    ck_assert_int_eq(faults_init(42), 0);
    ck_assert_int_eq(faults_check("disk/primary/write"), 0);
    ck_assert_int_eq(faults_check("disk/mirror/read"), 0);
}
END_TEST

START_TEST(armed_errno_and_delay_are_what_check_returns)
{
    ck_assert_int_eq(arm("disk/primary/write", (struct faults_arm_spec){.err = ENOSPC}), 0);
    ck_assert_int_eq(faults_check("disk/primary/write"), ENOSPC);
    ck_assert_int_eq(arm("disk/primary/slow", (struct faults_arm_spec){.delay_us = 1234}), 0);
    ck_assert_int_eq(faults_check("disk/primary/slow"), 1234);
    ck_assert_int_eq(arm("net/a/b/delay", (struct faults_arm_spec){0}), 0);
    ck_assert_int_eq(faults_check("net/a/b/delay"), FAULTS_DELAY_US_DEFAULT);
}
END_TEST

START_TEST(wildcard_gives_each_name_its_own_default)
{
    ck_assert_int_eq(arm("disk/primary/*", (struct faults_arm_spec){.p = 1}), 0);
    ck_assert_int_eq(faults_check("disk/primary/write"), EIO);
    ck_assert_int_eq(faults_check("disk/primary/full"), ENOSPC);
    ck_assert_int_eq(faults_check("disk/primary/slow"), FAULTS_DELAY_US_DEFAULT);
    ck_assert_int_eq(faults_check("disk/mirror/write"), 0);
    uint64_t calls = 0;
    ck_assert_int_eq(faults_stats("disk/primary/*", &calls, NULL), 0);
    ck_assert_uint_eq(calls, 3);
}
END_TEST

START_TEST(wildcard_armed_after_a_miss_is_seen)
{
    /* libfiu caches wildcard lookups, misses included. */
    ck_assert_int_eq(faults_check("disk/primary/read"), 0);
    ck_assert_int_eq(arm("disk/*", (struct faults_arm_spec){.p = 1}), 0);
    ck_assert_int_eq(faults_check("disk/primary/read"), EIO);
    ck_assert_int_eq(arm("disk/*", (struct faults_arm_spec){.p = 1, .err = EROFS}), 0);
    ck_assert_int_eq(faults_check("disk/primary/read"), EROFS);
    ck_assert_int_eq(faults_disarm("disk/*"), 0);
    ck_assert_int_eq(faults_check("disk/primary/read"), 0);
}
END_TEST

START_TEST(external_enable_like_fiu_ctrl_is_seen_with_its_failinfo)
{
    /* fiu-ctrl -c "enable name=disk/primary/write,failinfo=28" */
    ck_assert_int_eq(fiu_enable("disk/primary/write", 1, (void *)(intptr_t)28, 0), 0);
    ck_assert_int_eq(faults_check("disk/primary/write"), 28);
    ck_assert_int_eq(fiu_disable("disk/primary/write"), 0);
    /* Without failinfo: the catalog's default, never one libfiu picks. */
    ck_assert_int_eq(fiu_enable("disk/primary/full", 1, NULL, 0), 0);
    ck_assert_int_eq(faults_check("disk/primary/full"), ENOSPC);
    ck_assert_int_eq(fiu_disable("disk/primary/full"), 0);
    ck_assert_int_eq(fiu_enable("disk/primary/slow", 1, (void *)(intptr_t)500, 0), 0);
    ck_assert_int_eq(faults_check("disk/primary/slow"), 500);
    ck_assert_int_eq(fiu_disable("disk/primary/slow"), 0);
    /* A failinfo SQLite would retry forever is not passed on. */
    ck_assert_int_eq(fiu_enable("disk/primary/read", 1, (void *)(intptr_t)EINTR, 0), 0);
    ck_assert_int_eq(faults_check("disk/primary/read"), EIO);
    ck_assert_int_eq(fiu_disable("disk/primary/read"), 0);
    ck_assert_int_eq(faults_check("disk/primary/write"), 0);
}
END_TEST

START_TEST(crash_point_fires_through_plain_fiu_fail)
{
    /* The platform writes fiu_do_on(...): no faults_check involved. */
    ck_assert_int_eq(
        arm("crash/primary/checkout-mid-transaction", (struct faults_arm_spec){.count = 1}), 0);
    ck_assert_int_ne(fiu_fail("crash/primary/checkout-mid-transaction"), 0);
    ck_assert_int_eq(fiu_fail("crash/primary/checkout-mid-transaction"), 0);
    uint64_t fired = 0;
    ck_assert_int_eq(faults_stats("crash/primary/checkout-mid-transaction", NULL, &fired), 0);
    ck_assert_uint_eq(fired, 1);
}
END_TEST

START_TEST(bad_specs_and_names_are_refused)
{
    ck_assert_int_eq(arm("disk/primary/wrte", (struct faults_arm_spec){0}), -EINVAL);
    ck_assert_ptr_nonnull(strstr(faults_errmsg(), "disk/primary/wrte"));
    ck_assert_int_eq(arm("disk/primary/write", (struct faults_arm_spec){.p = 1.5}), -EINVAL);
    ck_assert_int_eq(arm("disk/primary/write", (struct faults_arm_spec){.p = -0.1}), -EINVAL);
    ck_assert_int_eq(arm("disk/primary/write", (struct faults_arm_spec){.p = NAN}), -EINVAL);
    ck_assert_int_eq(arm("disk/primary/write", (struct faults_arm_spec){.err = EINTR}), -EINVAL);
    ck_assert_int_eq(arm("disk/primary/write", (struct faults_arm_spec){.err = EAGAIN}), -EINVAL);
    ck_assert_int_eq(arm("disk/primary/slow", (struct faults_arm_spec){.delay_us = -1}), -EINVAL);
    ck_assert_int_eq(faults_check("disk/primary/write"), 0);
}
END_TEST

START_TEST(arming_past_the_limit_is_e2big)
{
    char name[FAULTS_NAME_MAX];
    for (int i = 0; i < FAULTS_ARMED_MAX; i++) {
        snprintf(name, sizeof name, "net/n%d/x/drop", i);
        ck_assert_int_eq(arm(name, (struct faults_arm_spec){.p = 1}), 0);
    }
    ck_assert_int_eq(arm("net/over/x/drop", (struct faults_arm_spec){.p = 1}), -E2BIG);
    /* Re-arming one already armed still works at the limit. */
    ck_assert_int_eq(arm("net/n0/x/drop", (struct faults_arm_spec){.p = 1}), 0);
    ck_assert_int_ne(faults_check("net/n255/x/drop"), 0);
}
END_TEST

START_TEST(arming_before_init_is_refused)
{
    ck_assert_int_eq(arm("disk/primary/write", (struct faults_arm_spec){.p = 1}), -EINVAL);
    ck_assert_int_eq(faults_check("disk/primary/write"), 0);
}
END_TEST

static Suite *arm_suite(void)
{
    Suite *suite = suite_create("arm");
    TCase *tc = tcase_create("arm");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, p_one_always_fires_with_the_catalog_errno);
    tcase_add_test(tc, p_zero_means_always);
    tcase_add_test(tc, once_fires_exactly_once);
    tcase_add_test(tc, count_three_fires_the_first_three);
    tcase_add_test(tc, after_two_skips_two_calls);
    tcase_add_test(tc, probability_fires_a_seeded_reproducible_subset);
    tcase_add_test(tc, another_armed_point_does_not_shift_the_stream);
    tcase_add_test(tc, rearming_resets_counters_and_stream);
    tcase_add_test(tc, disarm_stops_it);
    tcase_add_test(tc, init_disarms_everything);
    tcase_add_test(tc, armed_errno_and_delay_are_what_check_returns);
    tcase_add_test(tc, wildcard_gives_each_name_its_own_default);
    tcase_add_test(tc, wildcard_armed_after_a_miss_is_seen);
    tcase_add_test(tc, external_enable_like_fiu_ctrl_is_seen_with_its_failinfo);
    tcase_add_test(tc, crash_point_fires_through_plain_fiu_fail);
    tcase_add_test(tc, bad_specs_and_names_are_refused);
    tcase_add_test(tc, arming_past_the_limit_is_e2big);
    suite_add_tcase(suite, tc);
    return suite;
}

/* Only where each test has its own process can nothing have run faults_init. */
static Suite *before_init_suite(void)
{
    Suite *suite = suite_create("arm-before-init");
    TCase *tc = tcase_create("before-init");
    tcase_add_test(tc, arming_before_init_is_refused);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(arm_suite());
    if (srunner_fork_status(runner) != CK_NOFORK) {
        srunner_add_suite(runner, before_init_suite());
    }
    srunner_run_all(runner, CK_ENV);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
