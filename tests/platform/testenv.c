/*
 * testenv.c — the platform tests' scratch directory, fake host and fault
 * VFS set-up (see testenv.h).
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <check.h>
#include <errno.h>
#include <fiu-control.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faults/faults.h"
#include "tests/platform/testenv.h"

static int64_t fake_now(void *ctx)
{
    struct testenv *t = ctx;
    return t->now_us += 1000;
}

static void fake_crash(void *ctx, const char *node, const char *point)
{
    struct testenv *t = ctx;
    if (t->kill_on_crash)
        raise(SIGKILL);
    t->crashes++;
    snprintf(t->crashed_node, sizeof(t->crashed_node), "%s", node);
    snprintf(t->crashed_point, sizeof(t->crashed_point), "%s", point);
}

struct run_arg {
    void (*fn)(void *);
    void *arg;
};

static void *run_thread(void *p)
{
    struct run_arg *r = p;
    r->fn(r->arg);
    return NULL;
}

static void thread_parallel(void *ctx, void (*fn)(void *), void *a, void *b)
{
    (void)ctx;
    pthread_t th;
    struct run_arg ra = {fn, b};
    ck_assert_int_eq(pthread_create(&th, NULL, run_thread, &ra), 0);
    fn(a);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
}

void testenv_use_parallel(struct testenv *t)
{
    t->env.parallel = thread_parallel;
}

void testenv_init(struct testenv *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/faultdrill-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->primary_path, sizeof(t->primary_path), "%s/db.sqlite", t->dir);
    snprintf(t->mirror_path, sizeof(t->mirror_path), "%s/db_mirror.sqlite", t->dir);
    t->env.ctx = t;
    t->env.now_us = fake_now;
    t->env.crash = fake_crash;
    ck_assert_int_eq(faults_init(1), 0);
    ck_assert_int_eq(faults_vfs_register("primary", NULL), 0);
    ck_assert_int_eq(faults_vfs_register("mirror", NULL), 0);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void testenv_release(struct testenv *t)
{
    faults_disarm_all();
    faults_vfs_unregister_all();
    nftw(t->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

struct shop_config testenv_config(struct testenv *t, enum shop_topology topo,
                                  enum mirror_policy policy, enum mirror_ack ack)
{
    struct shop_config cfg = {
        .topology = topo,
        .primary = {.node = "primary", .path = t->primary_path,
                    .vfs = faults_vfs_name("primary")},
        .mirror = {.node = "mirror", .path = t->mirror_path, .vfs = faults_vfs_name("mirror")},
        .policy = policy,
        .ack = ack,
        .sync_full = true,
    };
    return cfg;
}

shop *testenv_open(struct testenv *t, const struct shop_config *cfg)
{
    shop *s = NULL;
    char msg[SHOP_ERRMSG_MAX];
    int rc = shop_open(cfg, &t->env, &s, msg);
    ck_assert_msg(rc == 0, "shop_open: %d %s", rc, msg);
    return s;
}

void testenv_arm(const char *name, int err, uint64_t count)
{
    struct faults_arm_spec spec = {.p = 1, .err = err, .count = count};
    int rc = faults_arm(name, &spec);
    ck_assert_msg(rc == 0, "arming %s: %d %s", name, rc, faults_errmsg());
}

int64_t testenv_seed(shop *s, int products)
{
    for (int i = 0; i < products; i++) {
        struct shop_product p = {.price_cents = 100 + i, .stock = 100};
        snprintf(p.name, sizeof(p.name), "product %d", i + 1);
        snprintf(p.category, sizeof(p.category), "cat%d", i % 3);
        int64_t id = shop_product_create(s, &p);
        ck_assert_msg(id == i + 1, "product create: %lld %s", (long long)id, shop_errmsg(s));
    }
    int64_t uid = shop_user_create(s, "Ada", "ada@example.com");
    ck_assert_msg(uid > 0, "user create: %lld %s", (long long)uid, shop_errmsg(s));
    return uid;
}

void testenv_digest(shop *s, int copy, char hex[65])
{
    int rc = shop_digest(s, copy, hex);
    ck_assert_msg(rc == 0, "digest of copy %d: %d %s", copy, rc, shop_errmsg(s));
}
