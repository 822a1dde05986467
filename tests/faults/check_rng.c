/*
 * check_rng.c — tests faults/rng.c: the named-stream generator every random
 * choice of a run draws from. Breaks determinism, stream independence and the
 * ranges of unit() and below(). Depends on libfaults and Check only.
 */
#include "faults/faults.h"

#include <check.h>
#include <stdlib.h>
#include "tests/check_run.h"

#define DRAWS 10000
/* faults_rng_seed(42, "crash"): its first two draws. */
#define PINNED_FIRST  0x7636b246fa4a3ea7ull
#define PINNED_SECOND 0xfdb7b46af4aee129ull

START_TEST(same_seed_and_stream_give_the_same_sequence)
{
    struct faults_rng a, b;
    faults_rng_seed(&a, 42, "disk/primary/write");
    faults_rng_seed(&b, 42, "disk/primary/write");
    for (int i = 0; i < DRAWS; i++) {
        ck_assert_uint_eq(faults_rng_next(&a), faults_rng_next(&b));
    }
}
END_TEST

START_TEST(sequence_is_pinned_across_builds)
{
    /* Reports promise the same trace on every machine: the algorithm and its
     * seeding must not drift. Values computed once from this implementation. */
    struct faults_rng rng;
    faults_rng_seed(&rng, 42, "crash");
    uint64_t first = faults_rng_next(&rng);
    uint64_t second = faults_rng_next(&rng);
    ck_assert_uint_eq(first, PINNED_FIRST);
    ck_assert_uint_eq(second, PINNED_SECOND);
}
END_TEST

/* Fraction of equal bits between two streams over DRAWS draws. */
static double equal_bit_fraction(struct faults_rng *a, struct faults_rng *b)
{
    uint64_t equal = 0;
    for (int i = 0; i < DRAWS; i++) {
        equal += (uint64_t)__builtin_popcountll(~(faults_rng_next(a) ^ faults_rng_next(b)));
    }
    return (double)equal / (64.0 * DRAWS);
}

START_TEST(streams_of_one_seed_are_independent)
{
    struct faults_rng a, b;
    faults_rng_seed(&a, 42, "disk/primary/write");
    faults_rng_seed(&b, 42, "disk/primary/read");
    double fraction = equal_bit_fraction(&a, &b);
    ck_assert_msg(fraction > 0.49 && fraction < 0.51, "equal bits %.4f", fraction);
}
END_TEST

START_TEST(seeds_of_one_stream_are_independent)
{
    struct faults_rng a, b;
    faults_rng_seed(&a, 1, "crash");
    faults_rng_seed(&b, 2, "crash");
    double fraction = equal_bit_fraction(&a, &b);
    ck_assert_msg(fraction > 0.49 && fraction < 0.51, "equal bits %.4f", fraction);
}
END_TEST

START_TEST(empty_stream_is_a_stream)
{
    struct faults_rng a, b;
    faults_rng_seed(&a, 7, "");
    faults_rng_seed(&b, 7, "x");
    ck_assert_uint_ne(faults_rng_next(&a), faults_rng_next(&b));
}
END_TEST

START_TEST(unit_is_in_zero_one_and_centred)
{
    struct faults_rng rng;
    faults_rng_seed(&rng, 3, "unit");
    double sum = 0;
    for (int i = 0; i < DRAWS; i++) {
        double u = faults_rng_unit(&rng);
        ck_assert(u >= 0.0 && u < 1.0);
        sum += u;
    }
    double mean = sum / DRAWS;
    ck_assert_msg(mean > 0.48 && mean < 0.52, "mean %.4f", mean);
}
END_TEST

static const uint64_t bounds[] = {1, 2, 3, 7, 512, 1000, (1ull << 63) + 1, UINT64_MAX};

START_TEST(below_stays_below_n)
{
    struct faults_rng rng;
    faults_rng_seed(&rng, 5, "below");
    uint64_t n = bounds[_i];
    for (int i = 0; i < DRAWS; i++) {
        ck_assert_uint_lt(faults_rng_below(&rng, n), n);
    }
}
END_TEST

START_TEST(below_is_uniform_over_small_n)
{
    /* 3 does not divide 2^64: a plain modulo would still pass this loose
     * test, but a wrong range or a stuck value would not. */
    struct faults_rng rng;
    faults_rng_seed(&rng, 9, "below3");
    int hits[3] = {0};
    for (int i = 0; i < 3 * DRAWS; i++) {
        hits[faults_rng_below(&rng, 3)]++;
    }
    for (int k = 0; k < 3; k++) {
        ck_assert_msg(hits[k] > DRAWS * 95 / 100 && hits[k] < DRAWS * 105 / 100, "hits[%d]=%d", k,
                      hits[k]);
    }
}
END_TEST

START_TEST(below_covers_every_value_of_a_large_n)
{
    /* Just past 2^63 the rejection zone is almost half of all draws: the
     * upper half of [0, n) must still come out half of the time. */
    struct faults_rng rng;
    faults_rng_seed(&rng, 11, "big");
    uint64_t n = (1ull << 63) + 1;
    int upper = 0;
    for (int i = 0; i < DRAWS; i++) {
        upper += faults_rng_below(&rng, n) >= (1ull << 62);
    }
    ck_assert_msg(upper > DRAWS * 48 / 100 && upper < DRAWS * 52 / 100, "upper %d", upper);
}
END_TEST

static Suite *rng_suite(void)
{
    Suite *suite = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_add_test(tc, same_seed_and_stream_give_the_same_sequence);
    tcase_add_test(tc, sequence_is_pinned_across_builds);
    tcase_add_test(tc, streams_of_one_seed_are_independent);
    tcase_add_test(tc, seeds_of_one_stream_are_independent);
    tcase_add_test(tc, empty_stream_is_a_stream);
    tcase_add_test(tc, unit_is_in_zero_one_and_centred);
    tcase_add_loop_test(tc, below_stays_below_n, 0, (int)(sizeof bounds / sizeof bounds[0]));
    tcase_add_test(tc, below_is_uniform_over_small_n);
    tcase_add_test(tc, below_covers_every_value_of_a_large_n);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    return check_run(rng_suite());
}
