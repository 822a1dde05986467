/*
 * check_group.c — tests of group commit (shop_group in platform/shop.c) and
 * of read-only handles (shop_open_reader): many writes in one transaction,
 * a refused write that leaves nothing (not even in the mirrored change), a
 * storage failure that fails the whole group on both copies, and readers
 * that never write. This is what `faultdrill serve`'s writer thread relies on.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/faults.h"
#include "tests/check_run.h"
#include "tests/platform/testenv.h"

#define GROUP_ORDERS 6

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

static shop *open_mirror(enum mirror_policy policy)
{
    struct shop_config cfg = testenv_config(&t, SHOP_MIRROR, policy, MIRROR_ACK_BOTH);
    return testenv_open(&t, &cfg);
}

static void assert_copies_equal(shop *s)
{
    char a[65], b[65];
    testenv_digest(s, 0, a);
    testenv_digest(s, 1, b);
    ck_assert_str_eq(a, b);
}

static int64_t stock_of(shop *s, int64_t id)
{
    struct shop_product p;
    ck_assert_int_eq(shop_product_get(s, id, &p), 0);
    return p.stock;
}

/* The group a server's writer would run: one order per job, results kept. */
struct orders_job {
    int64_t user;
    int64_t qty[GROUP_ORDERS];
    int64_t result[GROUP_ORDERS];
    int runs;
};

static int place_orders(shop *s, void *arg)
{
    struct orders_job *j = arg;
    j->runs++;
    for (int i = 0; i < GROUP_ORDERS; i++) {
        struct shop_order_line line = {.product_id = 1, .quantity = j->qty[i]};
        j->result[i] = shop_order_create(s, j->user, &line, 1, NULL);
    }
    return 0;
}

static void job_init(struct orders_job *j, int64_t user, int64_t qty)
{
    memset(j, 0, sizeof(*j));
    j->user = user;
    for (int i = 0; i < GROUP_ORDERS; i++)
        j->qty[i] = qty;
}

START_TEST(group_commits_every_write_in_one_transaction)
{
    shop *s = open_mirror(MIRROR_STRICT);
    int64_t user = testenv_seed(s, 2);
    struct mirror_status before, after;
    ck_assert_int_eq(shop_mirror_status(s, &before), 0);
    struct orders_job j;
    job_init(&j, user, 3);
    ck_assert_int_eq(shop_group(s, place_orders, &j), 0);
    for (int i = 0; i < GROUP_ORDERS; i++)
        ck_assert_int_gt(j.result[i], 0);
    ck_assert_int_eq(stock_of(s, 1), 100 - 3 * GROUP_ORDERS);
    ck_assert_int_eq(shop_mirror_status(s, &after), 0);
    /* one mirrored change for the whole group */
    ck_assert_int_eq(after.seq_primary, before.seq_primary + 1);
    ck_assert_int_eq(after.seq_mirror, after.seq_primary);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

START_TEST(group_refused_write_leaves_nothing_and_others_commit)
{
    shop *s = open_mirror(MIRROR_STRICT);
    int64_t user = testenv_seed(s, 2);
    struct orders_job j;
    job_init(&j, user, 30); /* stock 100: the 4th order of 30 lacks stock */
    ck_assert_int_eq(shop_group(s, place_orders, &j), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_gt(j.result[i], 0);
    for (int i = 3; i < GROUP_ORDERS; i++)
        ck_assert_int_eq(j.result[i], -ERANGE);
    ck_assert_int_eq(stock_of(s, 1), 10);
    int64_t ids[16];
    ck_assert_int_eq(shop_order_list(s, user, ids, 16), 3);
    /* the refused writes' row changes were cut from the mirrored change:
     * the mirror applied it strictly and holds the same rows */
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

START_TEST(group_mirror_disk_fails_whole_group_on_both_copies)
{
    shop *s = open_mirror(MIRROR_STRICT);
    int64_t user = testenv_seed(s, 2);
    struct orders_job j;
    job_init(&j, user, 1);
    testenv_arm("disk/mirror/write", EIO, 0);
    int rc = shop_group(s, place_orders, &j);
    faults_disarm("disk/mirror/write");
    ck_assert_msg(rc == -EIO, "group rc %d: %s", rc, shop_errmsg(s));
    ck_assert_int_eq(stock_of(s, 1), 100);
    int64_t ids[16];
    ck_assert_int_eq(shop_order_list(s, user, ids, 16), 0);
    ck_assert_int_eq(shop_mirror_resync(s), 0);
    job_init(&j, user, 1);
    ck_assert_int_eq(shop_group(s, place_orders, &j), 0);
    ck_assert_int_eq(stock_of(s, 1), 100 - GROUP_ORDERS);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

START_TEST(group_degrade_replays_on_healthy_copy)
{
    shop *s = open_mirror(MIRROR_DEGRADE);
    int64_t user = testenv_seed(s, 2);
    struct orders_job j;
    job_init(&j, user, 2);
    testenv_arm("disk/primary/write", EIO, 0);
    int rc = shop_group(s, place_orders, &j);
    faults_disarm("disk/primary/write");
    ck_assert_msg(rc == 0, "group rc %d: %s", rc, shop_errmsg(s));
    ck_assert_int_ge(j.runs, 1);
    for (int i = 0; i < GROUP_ORDERS; i++)
        ck_assert_int_gt(j.result[i], 0);
    ck_assert_int_eq(stock_of(s, 1), 100 - 2 * GROUP_ORDERS);
    ck_assert_int_eq(shop_mirror_resync(s), 0);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

static int create_then_read(shop *s, void *arg)
{
    struct shop_user *u = arg;
    int64_t id = shop_user_create(s, "Grace", "grace@example.com");
    if (id < 0)
        return (int)id;
    return shop_user_get_by_email(s, "grace@example.com", u);
}

START_TEST(group_reads_see_the_group_writes)
{
    shop *s = open_mirror(MIRROR_STRICT);
    (void)testenv_seed(s, 1);
    struct shop_user u;
    memset(&u, 0, sizeof(u));
    ck_assert_int_eq(shop_group(s, create_then_read, &u), 0);
    ck_assert_str_eq(u.name, "Grace");
    ck_assert_int_gt(u.id, 0);
    assert_copies_equal(s);
    shop_close(s);
}
END_TEST

static int nest(shop *s, void *arg)
{
    (void)arg;
    return shop_group(s, nest, NULL);
}

START_TEST(group_does_not_nest)
{
    shop *s = open_mirror(MIRROR_STRICT);
    (void)testenv_seed(s, 1);
    ck_assert_int_eq(shop_group(s, nest, NULL), -EBUSY);
    /* the shop still works afterwards */
    ck_assert_int_gt(shop_user_create(s, "Bob", "bob@example.com"), 0);
    shop_close(s);
}
END_TEST

START_TEST(reader_reads_and_refuses_writes)
{
    shop *s = open_mirror(MIRROR_STRICT);
    (void)testenv_seed(s, 3);
    struct shop_copy copy = {.node = "primary", .path = t.primary_path, .vfs = NULL};
    shop *r = NULL;
    char msg[SHOP_ERRMSG_MAX];
    ck_assert_msg(shop_open_reader(&copy, &t.env, &r, msg) == 0, "%s", msg);
    struct shop_product list[8];
    ck_assert_int_eq(shop_product_list(r, NULL, list, 8), 3);
    struct shop_product p = {.price_cents = 5, .stock = 1};
    snprintf(p.name, sizeof(p.name), "nope");
    ck_assert_int_eq(shop_product_create(r, &p), -EROFS);
    /* the writer's later commits are visible to the reader */
    ck_assert_int_gt(shop_product_create(s, &p), 0);
    ck_assert_int_eq(shop_product_list(r, NULL, list, 8), 4);
    shop_close(r);
    shop_close(s);
}
END_TEST

START_TEST(reader_of_missing_file_is_enoent)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/absent.sqlite", t.dir);
    struct shop_copy copy = {.node = "primary", .path = path, .vfs = NULL};
    shop *r = NULL;
    ck_assert_int_eq(shop_open_reader(&copy, &t.env, &r, NULL), -ENOENT);
    ck_assert_ptr_null(r);
}
END_TEST

static Suite *group_suite(void)
{
    Suite *suite = suite_create("group");
    TCase *tc = tcase_create("sequential");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, group_commits_every_write_in_one_transaction);
    tcase_add_test(tc, group_refused_write_leaves_nothing_and_others_commit);
    tcase_add_test(tc, group_mirror_disk_fails_whole_group_on_both_copies);
    tcase_add_test(tc, group_degrade_replays_on_healthy_copy);
    tcase_add_test(tc, group_reads_see_the_group_writes);
    tcase_add_test(tc, group_does_not_nest);
    tcase_add_test(tc, reader_reads_and_refuses_writes);
    tcase_add_test(tc, reader_of_missing_file_is_enoent);
    suite_add_tcase(suite, tc);
    TCase *par = tcase_create("parallel");
    tcase_add_checked_fixture(par, setup_parallel, teardown);
    tcase_add_test(par, group_commits_every_write_in_one_transaction);
    tcase_add_test(par, group_refused_write_leaves_nothing_and_others_commit);
    tcase_add_test(par, group_mirror_disk_fails_whole_group_on_both_copies);
    suite_add_tcase(suite, par);
    return suite;
}

int main(void)
{
    return check_run(group_suite());
}
