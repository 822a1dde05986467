/*
 * check_crash_real.c — the real crash test: a forked child runs a mirrored
 * shop until a crash point fires and kills itself with SIGKILL; the parent
 * reopens the files. The same run is then done in process with the fault
 * VFS's process-crash model. Both must end in the same contents, byte for
 * byte (equal digests), which is what lets the simulator trust its model.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faults/faults.h"
#include "tests/platform/testenv.h"
#include "tests/check_run.h"

struct outcome {
    char primary[65];
    char mirror[65];
    int users;
    int orders;
    int64_t stock;
};

/* The run up to the crash: returns the rc of the operation that crashed. */
static int64_t run_until_crash(struct testenv *t, const char *point)
{
    struct shop_config cfg = testenv_config(t, SHOP_MIRROR, MIRROR_STRICT, MIRROR_ACK_BOTH);
    shop *s = testenv_open(t, &cfg);
    int64_t uid = testenv_seed(s, 3);
    ck_assert_int_eq(shop_cart_add(s, uid, 2, 4), 0);
    ck_assert_int_gt(shop_checkout(s, uid, NULL), 0);
    ck_assert_int_eq(shop_cart_add(s, uid, 3, 7), 0);
    char name[96];
    snprintf(name, sizeof(name), "crash/primary/%s", point);
    testenv_arm(name, 0, 1);
    int64_t rc = strcmp(point, "checkout-mid-transaction") == 0
                     ? shop_checkout(s, uid, NULL)
                     : shop_user_create(s, "Bea", "bea@example.com");
    /* In process: the host now kills the node's files and its shop. */
    ck_assert_int_eq(faults_vfs_crash("primary", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    ck_assert_int_eq(faults_vfs_crash("mirror", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    shop_abandon(s);
    faults_disarm_all();
    ck_assert_int_eq(faults_vfs_restart("primary"), 0);
    ck_assert_int_eq(faults_vfs_restart("mirror"), 0);
    return rc;
}

static void observe(struct testenv *t, struct outcome *o)
{
    struct shop_config cfg = testenv_config(t, SHOP_MIRROR, MIRROR_STRICT, MIRROR_ACK_BOTH);
    shop *s = testenv_open(t, &cfg);
    testenv_digest(s, 0, o->primary);
    testenv_digest(s, 1, o->mirror);
    struct shop_user u;
    o->users = 1 + (shop_user_get_by_email(s, "bea@example.com", &u) == 0);
    o->orders = shop_order_list(s, 1, NULL, 0);
    struct shop_product p;
    ck_assert_int_eq(shop_product_get(s, 3, &p), 0);
    o->stock = p.stock;
    ck_assert_int_eq(shop_integrity(s, 0), 0);
    ck_assert_int_eq(shop_integrity(s, 1), 0);
    shop_close(s);
}

static void crash_for_real(const char *point, struct outcome *o)
{
    struct testenv t;
    testenv_init(&t);
    t.kill_on_crash = true;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        run_until_crash(&t, point);
        _exit(2); /* the crash point did not fire */
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "child was not killed at %s (status %d)", point, status);
    t.kill_on_crash = false;
    observe(&t, o);
    testenv_release(&t);
}

static void crash_in_process(const char *point, struct outcome *o)
{
    struct testenv t;
    testenv_init(&t);
    int64_t rc = run_until_crash(&t, point);
    ck_assert_int_eq(rc, -ECANCELED);
    ck_assert_int_eq(t.crashes, 1);
    observe(&t, o);
    testenv_release(&t);
}

static void assert_models_agree(const char *point, struct outcome *real)
{
    struct outcome model;
    crash_for_real(point, real);
    crash_in_process(point, &model);
    ck_assert_str_eq(real->primary, real->mirror);
    ck_assert_str_eq(model.primary, model.mirror);
    ck_assert_msg(strcmp(real->primary, model.primary) == 0,
                  "%s: a real kill and the in-process model disagree", point);
    ck_assert_int_eq(real->users, model.users);
    ck_assert_int_eq(real->orders, model.orders);
    ck_assert_int_eq(real->stock, model.stock);
}

START_TEST(test_real_kill_between_commits)
{
    struct outcome o;
    assert_models_agree("mirror-between-commits", &o);
    ck_assert_int_eq(o.users, 2); /* the primary had committed: recovery mirrors it */
}
END_TEST

START_TEST(test_real_kill_before_commit)
{
    struct outcome o;
    assert_models_agree("mirror-before-commit", &o);
    ck_assert_int_eq(o.users, 1);
}
END_TEST

START_TEST(test_real_kill_mid_checkout)
{
    struct outcome o;
    assert_models_agree("checkout-mid-transaction", &o);
    ck_assert_int_eq(o.orders, 1);
    ck_assert_int_eq(o.stock, 100); /* the second checkout left no trace */
}
END_TEST

int main(void)
{
    Suite *su = suite_create("crash_real");
    TCase *tc = tcase_create("fork");
    tcase_add_test(tc, test_real_kill_between_commits);
    tcase_add_test(tc, test_real_kill_before_commit);
    tcase_add_test(tc, test_real_kill_mid_checkout);
    suite_add_tcase(su, tc);
    return check_run(su);
}
