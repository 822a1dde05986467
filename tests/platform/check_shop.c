/*
 * check_shop.c — Check tests of the shop's rules (platform/shop.c): users,
 * products, carts, checkout and orders, status transitions, the schema and
 * the error contract of platform.h.
 *
 * Every test runs twice, over the same fixture parametrised by topology: a
 * SHOP_SINGLE shop, then a SHOP_MIRROR shop (policy=strict, ack=both, both
 * copies in the test's scratch directory). The rules must hold identically
 * when mirrored, and the mirrored teardown checks that both copies ended
 * with equal digests. The host is fake: its clock is a number the test sets,
 * so every timestamp the shop stores must equal it (never the wall clock).
 * No fault injection here: tests/platform/check_mirror.c does that.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platform/platform.h"
#include "tests/check_run.h"

#define RUN_DIR_MAX       32 /* "/tmp/check_shop-XXXXXX" */
#define TEST_DIR_MAX      64
#define TEST_PATH_MAX     128
#define RANDOM_PRODUCTS   6
#define RANDOM_USERS      3
#define RANDOM_STEPS      150
#define RANDOM_ORDERS_MAX RANDOM_STEPS

/* What the fake clock starts at: about the year 2191 as wall time, 222
 * years of uptime as monotonic time, so no real clock can pass for it. */
#define FAKE_EPOCH_US 7000000000000000LL

/* ---- the fixture ------------------------------------------------------- */

struct fixture {
    enum shop_topology topology;
    char dir[TEST_DIR_MAX];
    char primary_path[TEST_PATH_MAX];
    char mirror_path[TEST_PATH_MAX];
    int64_t now_us;      /* what the fake host's clock says */
    int64_t clock_reads; /* how often the shop asked */
    struct platform_env env;
    struct shop_config cfg;
    shop *s;
};

static struct fixture fx;
static char run_dir[RUN_DIR_MAX]; /* made by main(); each test's directory goes inside */

static int64_t fake_now_us(void *ctx)
{
    struct fixture *f = ctx;
    f->clock_reads++;
    return f->now_us;
}

static void fake_crash(void *ctx, const char *node, const char *point)
{
    (void)ctx;
    ck_abort_msg("unexpected crash point %s/%s: no fault is armed in these tests", node, point);
}

static int copies(void)
{
    return fx.topology == SHOP_MIRROR ? 2 : 1;
}

static shop *open_or_fail(const struct shop_config *cfg)
{
    shop *s = NULL;
    char msg[SHOP_ERRMSG_MAX];
    int rc = shop_open(cfg, &fx.env, &s, msg);
    ck_assert_msg(rc == 0, "shop_open: %d (%s): %s", rc, platform_strerror(rc), msg);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void setup_common(enum shop_topology topology)
{
    memset(&fx, 0, sizeof(fx));
    fx.topology = topology;
    snprintf(fx.dir, sizeof(fx.dir), "%s/test-XXXXXX", run_dir);
    ck_assert_ptr_nonnull(mkdtemp(fx.dir));
    snprintf(fx.primary_path, sizeof(fx.primary_path), "%s/db.sqlite", fx.dir);
    snprintf(fx.mirror_path, sizeof(fx.mirror_path), "%s/db_mirror.sqlite", fx.dir);
    fx.now_us = FAKE_EPOCH_US;
    fx.env = (struct platform_env){.ctx = &fx, .now_us = fake_now_us, .crash = fake_crash};
    fx.cfg = (struct shop_config){
        .topology = topology,
        .primary = {.node = "primary", .path = fx.primary_path},
        .mirror = {.node = "mirror", .path = fx.mirror_path},
        .policy = MIRROR_STRICT,
        .ack = MIRROR_ACK_BOTH,
        .sync_full = true,
    };
    fx.s = open_or_fail(&fx.cfg);
}

static void setup_single(void)
{
    setup_common(SHOP_SINGLE);
}

static void setup_mirror(void)
{
    setup_common(SHOP_MIRROR);
}

/* Removes a test's directory, which holds only files (the shop's and the tests' own). */
static bool remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    char path[TEST_PATH_MAX + 256];
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return rmdir(dir) == 0;
}

/* Removes the run's directory and what failed tests left in it (a forked
 * test that fails exits at once, without its teardown). */
static void remove_run_dir(void)
{
    DIR *d = opendir(run_dir);
    if (d == NULL)
        return;
    char path[TEST_PATH_MAX + 256];
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", run_dir, e->d_name);
        remove_dir(path);
    }
    closedir(d);
    rmdir(run_dir);
}

/* Whatever a test did, every copy is sound and a mirror's copies are equal. */
static void check_copies_agree(void)
{
    char hex[2][65];
    for (int c = 0; c < copies(); c++) {
        ck_assert_msg(shop_integrity(fx.s, c) == 0, "integrity of copy %d: %s", c,
                      shop_errmsg(fx.s));
        ck_assert_int_eq(shop_digest(fx.s, c, hex[c]), 0);
        ck_assert_uint_eq(strlen(hex[c]), 64);
    }
    if (fx.topology == SHOP_MIRROR) {
        ck_assert_str_eq(hex[0], hex[1]);
        struct mirror_status st;
        ck_assert_int_eq(shop_mirror_status(fx.s, &st), 0);
        ck_assert_msg(st.state == MIRROR_IN_SYNC, "mirror is %s: %s", mirror_state_name(st.state),
                      st.last_error);
        ck_assert_int_eq(st.seq_primary, st.seq_mirror);
        ck_assert_int_eq(st.changes_behind, 0);
    } else {
        ck_assert_int_eq(shop_digest(fx.s, 1, hex[1]), -EINVAL);
    }
}

static void teardown(void)
{
    if (fx.s != NULL) {
        check_copies_agree();
        shop_close(fx.s);
        fx.s = NULL;
    }
    ck_assert_msg(remove_dir(fx.dir), "cannot remove %s", fx.dir);
}

/* ---- helpers ----------------------------------------------------------- */

static void set_clock(int64_t us)
{
    fx.now_us = us;
}

static int64_t make_user(const char *name, const char *email)
{
    int64_t id = shop_user_create(fx.s, name, email);
    ck_assert_msg(id > 0, "creating user %s: %lld %s", email, (long long)id, shop_errmsg(fx.s));
    return id;
}

static struct shop_product product_value(const char *name, const char *category,
                                         int64_t price_cents, int64_t stock)
{
    struct shop_product p = {.price_cents = price_cents, .stock = stock};
    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.category, sizeof(p.category), "%s", category);
    snprintf(p.description, sizeof(p.description), "about %s", name);
    return p;
}

static int64_t make_product(const char *name, const char *category, int64_t price_cents,
                            int64_t stock)
{
    struct shop_product p = product_value(name, category, price_cents, stock);
    int64_t id = shop_product_create(fx.s, &p);
    ck_assert_msg(id > 0, "creating product %s: %lld %s", name, (long long)id, shop_errmsg(fx.s));
    return id;
}

static int64_t stock_of(int64_t product_id)
{
    struct shop_product p;
    int rc = shop_product_get(fx.s, product_id, &p);
    ck_assert_msg(rc == 0, "product %lld: %d %s", (long long)product_id, rc, shop_errmsg(fx.s));
    ck_assert_int_ge(p.stock, 0);
    return p.stock;
}

static int order_count(int64_t user_id)
{
    int n = shop_order_list(fx.s, user_id, NULL, 0);
    ck_assert_msg(n >= 0, "order list of %lld: %d %s", (long long)user_id, n, shop_errmsg(fx.s));
    return n;
}

static int cart_count(int64_t user_id)
{
    int n = shop_cart_get(fx.s, user_id, NULL, 0);
    ck_assert_msg(n >= 0, "cart of %lld: %d %s", (long long)user_id, n, shop_errmsg(fx.s));
    return n;
}

static void add_to_cart(int64_t user_id, int64_t product_id, int64_t quantity)
{
    int rc = shop_cart_add(fx.s, user_id, product_id, quantity);
    ck_assert_msg(rc == 0, "cart add: %d %s", rc, shop_errmsg(fx.s));
}

/* A digest of every copy, to show that a refused call wrote nothing. */
struct snapshot {
    char hex[2][65];
};

static void snapshot_take(struct snapshot *snap)
{
    memset(snap, 0, sizeof(*snap));
    for (int c = 0; c < copies(); c++)
        ck_assert_int_eq(shop_digest(fx.s, c, snap->hex[c]), 0);
}

static void assert_unchanged(const struct snapshot *before)
{
    struct snapshot now;
    snapshot_take(&now);
    for (int c = 0; c < copies(); c++)
        ck_assert_msg(strcmp(before->hex[c], now.hex[c]) == 0,
                      "copy %d changed although the call was refused", c);
}

/* A refused call returned `want` and left a message. */
static void assert_refused(int64_t rc, int want)
{
    ck_assert_msg(rc == want, "expected %d (%s), got %lld (%s): %s", want, platform_strerror(want),
                  (long long)rc, platform_strerror((int)rc), shop_errmsg(fx.s));
    ck_assert_msg(shop_errmsg(fx.s)[0] != '\0', "no message for %d", want);
}

/* ---- users --------------------------------------------------------------- */

START_TEST(user_create_returns_increasing_ids)
{
    int64_t prev = 0;
    char email[64];
    for (int i = 0; i < 5; i++) {
        set_clock(FAKE_EPOCH_US + 1000 * i);
        snprintf(email, sizeof(email), "user%d@example.com", i);
        int64_t id = make_user("User", email);
        ck_assert_int_gt(id, prev);
        prev = id;
        struct shop_user u;
        ck_assert_int_eq(shop_user_get(fx.s, id, &u), 0);
        ck_assert_int_eq(u.id, id);
        ck_assert_str_eq(u.name, "User");
        ck_assert_str_eq(u.email, email);
        ck_assert_int_eq(u.updated_at_us, FAKE_EPOCH_US + 1000 * i);
    }
    ck_assert_int_gt(fx.clock_reads, 0);
}
END_TEST

START_TEST(user_duplicate_email_is_eexist_and_writes_nothing)
{
    int64_t id = make_user("Ada", "ada@example.com");
    struct snapshot before;
    snapshot_take(&before);
    assert_refused(shop_user_create(fx.s, "Impostor", "ada@example.com"), -EEXIST);
    assert_unchanged(&before);
    struct shop_user u;
    ck_assert_int_eq(shop_user_get_by_email(fx.s, "ada@example.com", &u), 0);
    ck_assert_int_eq(u.id, id);
    ck_assert_str_eq(u.name, "Ada");
    /* The refused insert did not use up an id. */
    ck_assert_int_eq(make_user("Bob", "bob@example.com"), id + 1);
}
END_TEST

START_TEST(user_bad_email_or_name_is_einval)
{
    make_user("Ada", "ada@example.com");
    struct snapshot before;
    snapshot_take(&before);
    static const char *const bad_emails[] = {"",      "no-at-sign", "@example.com", "ada@",
                                             "a@b@c", "a da@x.org", "tab\t@x.org"};
    for (size_t i = 0; i < sizeof(bad_emails) / sizeof(bad_emails[0]); i++)
        assert_refused(shop_user_create(fx.s, "Eve", bad_emails[i]), -EINVAL);
    assert_refused(shop_user_create(fx.s, "Eve", NULL), -EINVAL);
    assert_refused(shop_user_create(fx.s, "", "eve@example.com"), -EINVAL);
    assert_refused(shop_user_create(fx.s, NULL, "eve@example.com"), -EINVAL);
    char long_name[SHOP_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_refused(shop_user_create(fx.s, long_name, "eve@example.com"), -EINVAL);
    assert_unchanged(&before);
    long_name[SHOP_NAME_MAX] = '\0'; /* exactly the limit is fine */
    ck_assert_int_gt(shop_user_create(fx.s, long_name, "eve@example.com"), 0);
}
END_TEST

START_TEST(user_update_by_email)
{
    set_clock(FAKE_EPOCH_US + 1);
    int64_t ada = make_user("Ada", "ada@example.com");
    make_user("Bob", "bob@example.com");

    set_clock(FAKE_EPOCH_US + 2);
    ck_assert_int_eq(shop_user_update(fx.s, "ada@example.com", "Ada Lovelace", NULL), 0);
    struct shop_user u;
    ck_assert_int_eq(shop_user_get(fx.s, ada, &u), 0);
    ck_assert_str_eq(u.name, "Ada Lovelace");
    ck_assert_str_eq(u.email, "ada@example.com");
    ck_assert_int_eq(u.updated_at_us, FAKE_EPOCH_US + 2);

    set_clock(FAKE_EPOCH_US + 3);
    ck_assert_int_eq(shop_user_update(fx.s, "ada@example.com", NULL, "ada@lovelace.org"), 0);
    assert_refused(shop_user_get_by_email(fx.s, "ada@example.com", &u), -ENOENT);
    ck_assert_int_eq(shop_user_get_by_email(fx.s, "ada@lovelace.org", &u), 0);
    ck_assert_int_eq(u.id, ada);
    ck_assert_str_eq(u.name, "Ada Lovelace");
    ck_assert_int_eq(u.updated_at_us, FAKE_EPOCH_US + 3);

    struct snapshot before;
    snapshot_take(&before);
    assert_refused(shop_user_update(fx.s, "nobody@example.com", "X", NULL), -ENOENT);
    assert_refused(shop_user_update(fx.s, "ada@lovelace.org", NULL, "bob@example.com"), -EEXIST);
    assert_refused(shop_user_update(fx.s, "ada@lovelace.org", "", NULL), -EINVAL);
    assert_refused(shop_user_update(fx.s, "ada@lovelace.org", NULL, "not-an-email"), -EINVAL);
    assert_unchanged(&before);
    ck_assert_int_eq(shop_user_get_by_email(fx.s, "bob@example.com", &u), 0);
    ck_assert_str_eq(u.name, "Bob");
}
END_TEST

START_TEST(user_get_unknown_is_enoent)
{
    struct shop_user u;
    assert_refused(shop_user_get(fx.s, 12345, &u), -ENOENT);
    assert_refused(shop_user_get_by_email(fx.s, "ghost@example.com", &u), -ENOENT);
}
END_TEST

/* ---- products ------------------------------------------------------------ */

static void assert_product_eq(const struct shop_product *a, const struct shop_product *b)
{
    ck_assert_int_eq(a->id, b->id);
    ck_assert_str_eq(a->name, b->name);
    ck_assert_str_eq(a->description, b->description);
    ck_assert_str_eq(a->category, b->category);
    ck_assert_int_eq(a->price_cents, b->price_cents);
    ck_assert_int_eq(a->stock, b->stock);
}

START_TEST(product_create_get_update_delete)
{
    struct shop_product p = product_value("Kettle", "kitchen", 2999, 12);
    p.id = 777; /* ignored by create */
    int64_t id = shop_product_create(fx.s, &p);
    ck_assert_int_gt(id, 0);
    ck_assert_int_ne(id, 777);
    int64_t id2 = make_product("Toaster", "kitchen", 4500, 3);
    ck_assert_int_gt(id2, id);

    struct shop_product got;
    ck_assert_int_eq(shop_product_get(fx.s, id, &got), 0);
    p.id = id;
    assert_product_eq(&got, &p);

    struct shop_product upd = product_value("Electric kettle", "appliances", 3499, 0);
    snprintf(upd.description, sizeof(upd.description), "1.7 l, steel");
    upd.id = id;
    ck_assert_int_eq(shop_product_update(fx.s, &upd), 0);
    ck_assert_int_eq(shop_product_get(fx.s, id, &got), 0);
    assert_product_eq(&got, &upd);
    /* The other product is untouched. */
    ck_assert_int_eq(shop_product_get(fx.s, id2, &got), 0);
    ck_assert_str_eq(got.name, "Toaster");
    ck_assert_int_eq(got.stock, 3);

    ck_assert_int_eq(shop_product_delete(fx.s, id), 0);
    assert_refused(shop_product_get(fx.s, id, &got), -ENOENT);
    assert_refused(shop_product_delete(fx.s, id), -ENOENT);
    upd.id = id;
    assert_refused(shop_product_update(fx.s, &upd), -ENOENT);
    ck_assert_int_eq(shop_product_get(fx.s, id2, &got), 0);
}
END_TEST

START_TEST(product_validation_is_einval)
{
    int64_t id = make_product("Lamp", "home", 1500, 4);
    struct snapshot before;
    snapshot_take(&before);
    struct shop_product p = product_value("Bad", "home", -1, 1);
    assert_refused(shop_product_create(fx.s, &p), -EINVAL);
    p = product_value("Bad", "home", 100, -1);
    assert_refused(shop_product_create(fx.s, &p), -EINVAL);
    p = product_value("Bad", "home", SHOP_PRICE_MAX + 1LL, 1);
    assert_refused(shop_product_create(fx.s, &p), -EINVAL);
    p = product_value("", "home", 100, 1);
    assert_refused(shop_product_create(fx.s, &p), -EINVAL);
    assert_refused(shop_product_create(fx.s, NULL), -EINVAL);

    p = product_value("Lamp", "home", 1500, -5);
    p.id = id;
    assert_refused(shop_product_update(fx.s, &p), -EINVAL);
    p = product_value("Lamp", "home", -1500, 5);
    p.id = id;
    assert_refused(shop_product_update(fx.s, &p), -EINVAL);
    assert_unchanged(&before);
    ck_assert_int_eq(stock_of(id), 4);

    /* Zero is a price and a stock. */
    p = product_value("Free sample", "home", 0, 0);
    ck_assert_int_gt(shop_product_create(fx.s, &p), 0);
}
END_TEST

START_TEST(product_delete_refused_once_ordered)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t pid = make_product("Book", "books", 1200, 5);
    struct shop_order_line line = {.product_id = pid, .quantity = 1};
    int64_t oid = shop_order_create(fx.s, uid, &line, 1, NULL);
    ck_assert_int_gt(oid, 0);
    struct snapshot before;
    snapshot_take(&before);
    assert_refused(shop_product_delete(fx.s, pid), -EPERM);
    assert_unchanged(&before);
    /* Cancelling does not erase the order's history. */
    ck_assert_int_eq(shop_order_set_status(fx.s, oid, ORDER_CANCELLED), 0);
    assert_refused(shop_product_delete(fx.s, pid), -EPERM);
    ck_assert_int_eq(stock_of(pid), 5);
}
END_TEST

START_TEST(product_delete_removes_it_from_carts)
{
    int64_t ada = make_user("Ada", "ada@example.com");
    int64_t bob = make_user("Bob", "bob@example.com");
    int64_t gone = make_product("Gone", "misc", 100, 10);
    int64_t kept = make_product("Kept", "misc", 200, 10);
    add_to_cart(ada, gone, 2);
    add_to_cart(ada, kept, 1);
    add_to_cart(bob, gone, 4);
    ck_assert_int_eq(shop_product_delete(fx.s, gone), 0);
    struct shop_cart_item items[4];
    ck_assert_int_eq(shop_cart_get(fx.s, ada, items, 4), 1);
    ck_assert_int_eq(items[0].product_id, kept);
    ck_assert_int_eq(items[0].quantity, 1);
    ck_assert_int_eq(cart_count(bob), 0);
    /* And a checkout afterwards is not confused by the vanished line. */
    struct shop_order o;
    ck_assert_int_gt(shop_checkout(fx.s, ada, &o), 0);
    ck_assert_uint_eq(o.line_count, 1);
    ck_assert_int_eq(o.total_cents, 200);
}
END_TEST

/* Products for the list tests, in id order. Names and descriptions differ so
 * that a match on either one alone is visible. */
static void make_catalog(int64_t ids[5])
{
    /* One product per row reads as a table. */
    /* clang-format off */
    static const struct {
        const char *name, *description, *category;
        int64_t stock;
    } rows[5] = {
        {"Red Apple",   "crisp",             "fruit",  10},
        {"green APPLE", "sour",              "fruit",  0},
        {"Banana",      "yellow",            "fruit",  7},
        {"Carrot",      "orange root",       "veg",    0},
        {"Pie",         "baked with ApPlEs", "bakery", 2},
    };
    /* clang-format on */
    for (int i = 0; i < 5; i++) {
        struct shop_product p =
            product_value(rows[i].name, rows[i].category, 100 + i, rows[i].stock);
        snprintf(p.description, sizeof(p.description), "%s", rows[i].description);
        ids[i] = shop_product_create(fx.s, &p);
        ck_assert_int_gt(ids[i], 0);
    }
}

static void assert_listed(const struct shop_product_filter *f, const int64_t *want, int n)
{
    struct shop_product out[8];
    int got = shop_product_list(fx.s, f, out, 8);
    ck_assert_msg(got == n, "listed %d products, want %d", got, n);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(out[i].id, want[i]);
}

START_TEST(product_list_filters)
{
    int64_t id[5];
    make_catalog(id);
    assert_listed(NULL, id, 5);
    struct shop_product_filter f = {0};
    assert_listed(&f, id, 5);

    f = (struct shop_product_filter){.category = "fruit"};
    assert_listed(&f, (int64_t[]){id[0], id[1], id[2]}, 3);
    f = (struct shop_product_filter){.category = "Fruit"}; /* exact match */
    assert_listed(&f, NULL, 0);
    f = (struct shop_product_filter){.in_stock_only = true};
    assert_listed(&f, (int64_t[]){id[0], id[2], id[4]}, 3);
    f = (struct shop_product_filter){.query = "apple"};
    assert_listed(&f, (int64_t[]){id[0], id[1], id[4]}, 3); /* names and a description */
    f = (struct shop_product_filter){.query = "ApPlE"};
    assert_listed(&f, (int64_t[]){id[0], id[1], id[4]}, 3);
    f = (struct shop_product_filter){.query = "BANANA"}; /* a name only */
    assert_listed(&f, (int64_t[]){id[2]}, 1);
    f = (struct shop_product_filter){.query = "Root"}; /* a description only */
    assert_listed(&f, (int64_t[]){id[3]}, 1);
    f = (struct shop_product_filter){.query = ""}; /* an empty query filters nothing */
    assert_listed(&f, id, 5);
    f = (struct shop_product_filter){.category = "fruit", .in_stock_only = true, .query = "APPLE"};
    assert_listed(&f, (int64_t[]){id[0]}, 1);
    f = (struct shop_product_filter){.query = "durian"};
    assert_listed(&f, NULL, 0);
}
END_TEST

START_TEST(product_list_counts_beyond_max)
{
    int64_t id[5];
    make_catalog(id);
    struct shop_product out[3];
    memset(out, 0, sizeof(out));
    out[2].id = -42; /* must stay untouched */
    ck_assert_int_eq(shop_product_list(fx.s, NULL, out, 2), 5);
    ck_assert_int_eq(out[0].id, id[0]);
    ck_assert_int_eq(out[1].id, id[1]);
    ck_assert_int_eq(out[2].id, -42);
    ck_assert_int_eq(shop_product_list(fx.s, NULL, NULL, 0), 5);
    assert_refused(shop_product_list(fx.s, NULL, NULL, 3), -EINVAL);
}
END_TEST

START_TEST(product_page_walks_the_list_page_by_page)
{
    int64_t id[5];
    make_catalog(id);
    struct shop_product out[3];
    memset(out, 0, sizeof(out));
    out[2].id = -42; /* past the page: must stay untouched */
    ck_assert_int_eq(shop_product_page(fx.s, NULL, 0, out, 2), 2);
    ck_assert_int_eq(out[0].id, id[0]);
    ck_assert_int_eq(out[1].id, id[1]);
    ck_assert_int_eq(out[2].id, -42);
    ck_assert_str_eq(out[1].name, "green APPLE");
    ck_assert_int_eq(shop_product_page(fx.s, NULL, id[1], out, 2), 2);
    ck_assert_int_eq(out[0].id, id[2]);
    ck_assert_int_eq(out[1].id, id[3]);
    ck_assert_int_eq(shop_product_page(fx.s, NULL, id[3], out, 2), 1);
    ck_assert_int_eq(out[0].id, id[4]);
    ck_assert_int_eq(shop_product_page(fx.s, NULL, id[4], out, 2), 0);
    /* The filter applies inside the page: apples in stock, one at a time. */
    struct shop_product_filter f = {.in_stock_only = true, .query = "apple"};
    ck_assert_int_eq(shop_product_page(fx.s, &f, 0, out, 1), 1);
    ck_assert_int_eq(out[0].id, id[0]);
    ck_assert_int_eq(shop_product_page(fx.s, &f, id[0], out, 1), 1);
    ck_assert_int_eq(out[0].id, id[4]);
    ck_assert_int_eq(shop_product_page(fx.s, &f, id[4], out, 1), 0);
    assert_refused(shop_product_page(fx.s, NULL, 0, out, 0), -EINVAL);
    assert_refused(shop_product_page(fx.s, NULL, 0, NULL, 2), -EINVAL);
    assert_refused(shop_product_page(fx.s, NULL, 0, out, SHOP_PAGE_MAX + 1), -EINVAL);
}
END_TEST

/* ---- carts --------------------------------------------------------------- */

START_TEST(cart_add_accumulates)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t a = make_product("A", "x", 250, 10);
    int64_t b = make_product("B", "x", 999, 10);
    add_to_cart(uid, b, 1);
    add_to_cart(uid, a, 2);
    add_to_cart(uid, a, 3);
    struct shop_cart_item items[4];
    ck_assert_int_eq(shop_cart_get(fx.s, uid, items, 4), 2);
    ck_assert_int_eq(items[0].product_id, a); /* by product id */
    ck_assert_int_eq(items[0].quantity, 5);
    ck_assert_int_eq(items[0].unit_price_cents, 250);
    ck_assert_int_eq(items[1].product_id, b);
    ck_assert_int_eq(items[1].quantity, 1);
    /* A cart shows the current price, and adding does not touch stock. */
    struct shop_product p = product_value("A", "x", 300, 10);
    p.id = a;
    ck_assert_int_eq(shop_product_update(fx.s, &p), 0);
    ck_assert_int_eq(shop_cart_get(fx.s, uid, items, 4), 2);
    ck_assert_int_eq(items[0].unit_price_cents, 300);
    ck_assert_int_eq(stock_of(a), 10);
    /* The count comes back even with a short buffer. */
    ck_assert_int_eq(shop_cart_get(fx.s, uid, items, 1), 2);
}
END_TEST

START_TEST(cart_add_bad_quantity_or_unknown_ids)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t pid = make_product("A", "x", 250, 10);
    add_to_cart(uid, pid, 1);
    struct snapshot before;
    snapshot_take(&before);
    assert_refused(shop_cart_add(fx.s, uid, pid, 0), -EINVAL);
    assert_refused(shop_cart_add(fx.s, uid, pid, -3), -EINVAL);
    assert_refused(shop_cart_add(fx.s, uid, pid, SHOP_QTY_MAX + 1LL), -EINVAL);
    assert_refused(shop_cart_add(fx.s, uid + 100, pid, 1), -ENOENT);
    assert_refused(shop_cart_add(fx.s, uid, pid + 100, 1), -ENOENT);
    /* The line limit holds for the sum, not just one call. */
    assert_refused(shop_cart_add(fx.s, uid, pid, SHOP_QTY_MAX), -EINVAL);
    assert_unchanged(&before);
    struct shop_cart_item it;
    ck_assert_int_eq(shop_cart_get(fx.s, uid, &it, 1), 1);
    ck_assert_int_eq(it.quantity, 1);
    assert_refused(shop_cart_get(fx.s, uid + 100, &it, 1), -ENOENT);
}
END_TEST

/* The workshop's POST /cart: the quantity replaces what the cart holds. */
START_TEST(cart_set_replaces_the_quantity)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t a = make_product("A", "x", 250, 10);
    int64_t b = make_product("B", "x", 100, 10);
    struct shop_cart_item it[2];
    ck_assert_int_eq(shop_cart_set(fx.s, uid, a, 1), 0);
    ck_assert_int_eq(shop_cart_set(fx.s, uid, a, 3), 0);
    ck_assert_int_eq(shop_cart_get(fx.s, uid, it, 2), 1);
    ck_assert_int_eq(it[0].quantity, 3); /* set, not 1 + 3 */
    ck_assert_int_eq(shop_cart_set(fx.s, uid, a, 2), 0);
    add_to_cart(uid, b, 2);
    ck_assert_int_eq(shop_cart_set(fx.s, uid, b, SHOP_QTY_MAX), 0);
    ck_assert_int_eq(shop_cart_get(fx.s, uid, it, 2), 2);
    ck_assert_int_eq(it[0].quantity, 2);
    ck_assert_int_eq(it[1].quantity, SHOP_QTY_MAX);
    struct snapshot before;
    snapshot_take(&before);
    assert_refused(shop_cart_set(fx.s, uid, a, 0), -EINVAL);
    assert_refused(shop_cart_set(fx.s, uid, a, SHOP_QTY_MAX + 1LL), -EINVAL);
    assert_refused(shop_cart_set(fx.s, uid + 100, a, 1), -ENOENT);
    assert_refused(shop_cart_set(fx.s, uid, b + 100, 1), -ENOENT);
    assert_unchanged(&before);
}
END_TEST

START_TEST(cart_remove)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t a = make_product("A", "x", 100, 10);
    int64_t b = make_product("B", "x", 100, 10);
    add_to_cart(uid, a, 1);
    add_to_cart(uid, b, 2);
    ck_assert_int_eq(shop_cart_remove(fx.s, uid, a), 0);
    struct shop_cart_item it[2];
    ck_assert_int_eq(shop_cart_get(fx.s, uid, it, 2), 1);
    ck_assert_int_eq(it[0].product_id, b);
    struct snapshot before;
    snapshot_take(&before);
    assert_refused(shop_cart_remove(fx.s, uid, a), -ENOENT);
    assert_refused(shop_cart_remove(fx.s, uid + 100, b), -ENOENT);
    assert_unchanged(&before);
}
END_TEST

/* ---- checkout and orders -------------------------------------------------- */

START_TEST(checkout_moves_cart_into_order)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t a = make_product("A", "x", 250, 10);
    int64_t b = make_product("B", "x", 1999, 5);
    int64_t c = make_product("C", "x", 1, 1);
    add_to_cart(uid, b, 2);
    add_to_cart(uid, a, 3);
    set_clock(FAKE_EPOCH_US + 777);
    struct shop_order o;
    memset(&o, 0xff, sizeof(o));
    int64_t oid = shop_checkout(fx.s, uid, &o);
    ck_assert_msg(oid > 0, "checkout: %lld %s", (long long)oid, shop_errmsg(fx.s));
    ck_assert_int_eq(o.id, oid);
    ck_assert_int_eq(o.user_id, uid);
    ck_assert_int_eq(o.status, ORDER_PENDING);
    ck_assert_int_eq(o.total_cents, 3 * 250 + 2 * 1999);
    ck_assert_int_eq(o.created_at_us, FAKE_EPOCH_US + 777);
    ck_assert_uint_eq(o.line_count, 2);
    ck_assert_int_eq(o.lines[0].product_id, a);
    ck_assert_int_eq(o.lines[0].quantity, 3);
    ck_assert_int_eq(o.lines[0].unit_price_cents, 250);
    ck_assert_int_eq(o.lines[1].product_id, b);
    ck_assert_int_eq(o.lines[1].quantity, 2);
    ck_assert_int_eq(o.lines[1].unit_price_cents, 1999);
    ck_assert_int_eq(cart_count(uid), 0);
    ck_assert_int_eq(stock_of(a), 7);
    ck_assert_int_eq(stock_of(b), 3);
    ck_assert_int_eq(stock_of(c), 1);
    int64_t ids[2];
    ck_assert_int_eq(shop_order_list(fx.s, uid, ids, 2), 1);
    ck_assert_int_eq(ids[0], oid);
    /* The same order read back later, and without asking for it at checkout. */
    add_to_cart(uid, c, 1);
    int64_t oid2 = shop_checkout(fx.s, uid, NULL);
    ck_assert_int_gt(oid2, oid);
    struct shop_order again;
    ck_assert_int_eq(shop_order_get(fx.s, oid, &again), 0);
    ck_assert_int_eq(again.total_cents, o.total_cents);
    ck_assert_int_eq(again.created_at_us, FAKE_EPOCH_US + 777);
    ck_assert_int_eq(stock_of(c), 0);
}
END_TEST

START_TEST(checkout_snapshots_unit_prices)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t a = make_product("A", "x", 250, 10);
    add_to_cart(uid, a, 4);
    int64_t oid = shop_checkout(fx.s, uid, NULL);
    ck_assert_int_gt(oid, 0);
    struct shop_product p = product_value("A", "x", 9999, 100);
    p.id = a;
    ck_assert_int_eq(shop_product_update(fx.s, &p), 0);
    struct shop_order o;
    ck_assert_int_eq(shop_order_get(fx.s, oid, &o), 0);
    ck_assert_int_eq(o.lines[0].unit_price_cents, 250);
    ck_assert_int_eq(o.total_cents, 1000);
    /* The same holds for explicit orders. */
    struct shop_order_line line = {.product_id = a, .quantity = 2, .unit_price_cents = 1};
    int64_t oid2 = shop_order_create(fx.s, uid, &line, 1, &o);
    ck_assert_int_gt(oid2, 0);
    ck_assert_int_eq(o.lines[0].unit_price_cents, 9999); /* the caller's price is ignored */
    ck_assert_int_eq(o.total_cents, 2 * 9999);
    p.price_cents = 1;
    ck_assert_int_eq(shop_product_update(fx.s, &p), 0);
    ck_assert_int_eq(shop_order_get(fx.s, oid2, &o), 0);
    ck_assert_int_eq(o.total_cents, 2 * 9999);
}
END_TEST

START_TEST(checkout_empty_cart_is_enodata)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    make_product("A", "x", 250, 10);
    struct snapshot before;
    snapshot_take(&before);
    assert_refused(shop_checkout(fx.s, uid, NULL), -ENODATA);
    assert_refused(shop_checkout(fx.s, uid + 100, NULL), -ENOENT);
    assert_unchanged(&before);
    ck_assert_int_eq(order_count(uid), 0);
}
END_TEST

START_TEST(checkout_insufficient_stock_rejects_whole_order)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t a = make_product("A", "x", 100, 10);
    int64_t b = make_product("B", "x", 200, 10);
    int64_t c = make_product("C", "x", 300, 1); /* the last line is the short one */
    add_to_cart(uid, a, 2);
    add_to_cart(uid, b, 10);
    add_to_cart(uid, c, 2);
    struct snapshot before;
    snapshot_take(&before);
    assert_refused(shop_checkout(fx.s, uid, NULL), -ERANGE);
    assert_unchanged(&before);
    ck_assert_int_eq(stock_of(a), 10);
    ck_assert_int_eq(stock_of(b), 10);
    ck_assert_int_eq(stock_of(c), 1);
    ck_assert_int_eq(order_count(uid), 0);
    struct shop_cart_item it[4];
    ck_assert_int_eq(shop_cart_get(fx.s, uid, it, 4), 3);
    ck_assert_int_eq(it[0].quantity, 2);
    ck_assert_int_eq(it[1].quantity, 10);
    ck_assert_int_eq(it[2].quantity, 2);
    /* Fix the cart and the same checkout goes through, taking exactly b's stock. */
    ck_assert_int_eq(shop_cart_remove(fx.s, uid, c), 0);
    ck_assert_int_gt(shop_checkout(fx.s, uid, NULL), 0);
    ck_assert_int_eq(stock_of(b), 0);
    ck_assert_int_eq(stock_of(a), 8);
}
END_TEST

START_TEST(order_create_explicit_lines)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t a = make_product("A", "x", 150, 10);
    int64_t b = make_product("B", "x", 75, 3);
    struct shop_order_line lines[2] = {{.product_id = a, .quantity = 4},
                                       {.product_id = b, .quantity = 3}};
    set_clock(FAKE_EPOCH_US + 55);
    struct shop_order o;
    int64_t oid = shop_order_create(fx.s, uid, lines, 2, &o);
    ck_assert_msg(oid > 0, "order: %lld %s", (long long)oid, shop_errmsg(fx.s));
    ck_assert_int_eq(o.id, oid);
    ck_assert_int_eq(o.total_cents, 4 * 150 + 3 * 75);
    ck_assert_int_eq(o.created_at_us, FAKE_EPOCH_US + 55);
    ck_assert_int_eq(o.status, ORDER_PENDING);
    ck_assert_uint_eq(o.line_count, 2);
    ck_assert_int_eq(stock_of(a), 6);
    ck_assert_int_eq(stock_of(b), 0);
    /* An explicit order leaves the cart alone. */
    add_to_cart(uid, a, 1);
    ck_assert_int_gt(shop_order_create(fx.s, uid, lines, 1, NULL), 0);
    ck_assert_int_eq(cart_count(uid), 1);
    ck_assert_int_eq(stock_of(a), 2);
}
END_TEST

START_TEST(order_create_is_atomic)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t a = make_product("A", "x", 150, 10);
    int64_t b = make_product("B", "x", 75, 3);
    struct snapshot before;
    snapshot_take(&before);

    /* The first line fits and is taken before the second is found short. */
    struct shop_order_line short_last[2] = {{.product_id = a, .quantity = 5},
                                            {.product_id = b, .quantity = 4}};
    assert_refused(shop_order_create(fx.s, uid, short_last, 2, NULL), -ERANGE);
    struct shop_order_line unknown_last[2] = {{.product_id = a, .quantity = 5},
                                              {.product_id = b + 100, .quantity = 1}};
    assert_refused(shop_order_create(fx.s, uid, unknown_last, 2, NULL), -ENOENT);
    struct shop_order_line dup[2] = {{.product_id = a, .quantity = 1},
                                     {.product_id = a, .quantity = 1}};
    assert_refused(shop_order_create(fx.s, uid, dup, 2, NULL), -EINVAL);
    assert_refused(shop_order_create(fx.s, uid, dup, 0, NULL), -EINVAL);
    assert_refused(shop_order_create(fx.s, uid, NULL, 1, NULL), -EINVAL);
    struct shop_order_line zero = {.product_id = a, .quantity = 0};
    assert_refused(shop_order_create(fx.s, uid, &zero, 1, NULL), -EINVAL);
    zero.quantity = -2;
    assert_refused(shop_order_create(fx.s, uid, &zero, 1, NULL), -EINVAL);
    assert_refused(shop_order_create(fx.s, uid + 100, dup, 1, NULL), -ENOENT);

    static struct shop_order_line many[SHOP_ORDER_LINES_MAX + 1];
    for (size_t i = 0; i < SHOP_ORDER_LINES_MAX + 1; i++)
        many[i] = (struct shop_order_line){.product_id = (int64_t)i + 1000, .quantity = 1};
    assert_refused(shop_order_create(fx.s, uid, many, SHOP_ORDER_LINES_MAX + 1, NULL), -E2BIG);

    assert_unchanged(&before);
    ck_assert_int_eq(stock_of(a), 10);
    ck_assert_int_eq(stock_of(b), 3);
    ck_assert_int_eq(order_count(uid), 0);
}
END_TEST

/* A fixed-seed generator local to the test, so runs repeat exactly. */
static uint32_t lcg_next(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*state >> 33);
}

struct random_shop {
    int64_t users[RANDOM_USERS];
    int64_t products[RANDOM_PRODUCTS];
    int64_t initial[RANDOM_PRODUCTS];
    int64_t model[RANDOM_PRODUCTS]; /* the stock the rules predict */
    int64_t orders[RANDOM_ORDERS_MAX];
    int order_count;
};

/* One random explicit order: accepted exactly when the model has the stock. */
static void random_order(struct random_shop *r, uint64_t *rng)
{
    struct shop_order_line lines[3];
    size_t n = 1 + lcg_next(rng) % 3;
    size_t first = lcg_next(rng) % RANDOM_PRODUCTS;
    bool fits = true;
    for (size_t i = 0; i < n; i++) {
        size_t k = (first + i) % RANDOM_PRODUCTS; /* distinct products */
        lines[i] = (struct shop_order_line){.product_id = r->products[k],
                                            .quantity = 1 + lcg_next(rng) % 6};
        fits = fits && r->model[k] >= lines[i].quantity;
    }
    int64_t uid = r->users[lcg_next(rng) % RANDOM_USERS];
    int64_t oid = shop_order_create(fx.s, uid, lines, n, NULL);
    if (!fits) {
        assert_refused(oid, -ERANGE);
        return;
    }
    ck_assert_msg(oid > 0, "order: %lld %s", (long long)oid, shop_errmsg(fx.s));
    for (size_t i = 0; i < n; i++)
        r->model[(first + i) % RANDOM_PRODUCTS] -= lines[i].quantity;
    ck_assert_int_lt(r->order_count, RANDOM_ORDERS_MAX);
    r->orders[r->order_count++] = oid;
}

/* Moves a random order to a random status; the rules decide, the model follows. */
static void random_transition(struct random_shop *r, uint64_t *rng)
{
    if (r->order_count == 0)
        return;
    int64_t oid = r->orders[lcg_next(rng) % (uint32_t)r->order_count];
    enum shop_order_status to = (enum shop_order_status)(lcg_next(rng) % 4);
    struct shop_order o;
    ck_assert_int_eq(shop_order_get(fx.s, oid, &o), 0);
    static const bool ok[4][4] = {
        [ORDER_PENDING] = {true, true, false, true},
        [ORDER_SHIPPED] = {false, true, true, true},
        [ORDER_DELIVERED] = {false, false, true, false},
        [ORDER_CANCELLED] = {false, false, false, true},
    };
    int rc = shop_order_set_status(fx.s, oid, to);
    ck_assert_int_eq(rc, ok[o.status][to] ? 0 : -EPERM);
    if (rc == 0 && to == ORDER_CANCELLED && o.status != ORDER_CANCELLED) {
        for (size_t i = 0; i < o.line_count; i++)
            for (size_t k = 0; k < RANDOM_PRODUCTS; k++)
                if (r->products[k] == o.lines[i].product_id)
                    r->model[k] += o.lines[i].quantity;
    }
}

/* initial stock = stock now + quantities in orders not cancelled, per product. */
static void assert_stock_conserved(const struct random_shop *r)
{
    int64_t ordered[RANDOM_PRODUCTS] = {0};
    int listed = 0;
    for (size_t u = 0; u < RANDOM_USERS; u++) {
        int64_t ids[RANDOM_ORDERS_MAX];
        int n = shop_order_list(fx.s, r->users[u], ids, RANDOM_ORDERS_MAX);
        ck_assert_int_ge(n, 0);
        ck_assert_int_le(n, RANDOM_ORDERS_MAX);
        listed += n;
        for (int i = 0; i < n; i++) {
            struct shop_order o;
            ck_assert_int_eq(shop_order_get(fx.s, ids[i], &o), 0);
            ck_assert_int_eq(o.user_id, r->users[u]);
            int64_t total = 0;
            for (size_t l = 0; l < o.line_count; l++)
                total += o.lines[l].quantity * o.lines[l].unit_price_cents;
            ck_assert_int_eq(o.total_cents, total);
            if (o.status == ORDER_CANCELLED)
                continue;
            for (size_t l = 0; l < o.line_count; l++)
                for (size_t k = 0; k < RANDOM_PRODUCTS; k++)
                    if (r->products[k] == o.lines[l].product_id)
                        ordered[k] += o.lines[l].quantity;
        }
    }
    ck_assert_int_eq(listed, r->order_count);
    for (size_t k = 0; k < RANDOM_PRODUCTS; k++) {
        int64_t now = stock_of(r->products[k]);
        ck_assert_int_eq(now, r->model[k]);
        ck_assert_msg(r->initial[k] == now + ordered[k],
                      "product %lld: initial %lld != now %lld + ordered %lld",
                      (long long)r->products[k], (long long)r->initial[k], (long long)now,
                      (long long)ordered[k]);
    }
}

START_TEST(stock_conserved_under_random_orders)
{
    struct random_shop r = {0};
    char email[64];
    for (size_t u = 0; u < RANDOM_USERS; u++) {
        snprintf(email, sizeof(email), "u%zu@example.com", u);
        r.users[u] = make_user("Shopper", email);
    }
    for (size_t k = 0; k < RANDOM_PRODUCTS; k++) {
        r.initial[k] = r.model[k] = 15 + 5 * (int64_t)k;
        r.products[k] = make_product("P", "x", 100 + 7 * (int64_t)k, r.initial[k]);
    }
    uint64_t rng = 20240607;
    int refused = 0;
    for (int step = 0; step < RANDOM_STEPS; step++) {
        set_clock(FAKE_EPOCH_US + step);
        if (lcg_next(&rng) % 4 == 0) {
            random_transition(&r, &rng);
        } else {
            int before = r.order_count;
            random_order(&r, &rng);
            refused += r.order_count == before;
        }
    }
    assert_stock_conserved(&r);
    /* The run exercised both outcomes, or it proved little. */
    ck_assert_int_gt(r.order_count, 10);
    ck_assert_int_gt(refused, 5);
}
END_TEST

START_TEST(order_status_transitions)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t a = make_product("A", "x", 100, 10);
    struct shop_order_line line = {.product_id = a, .quantity = 3};
    struct shop_order o;

    int64_t delivered = shop_order_create(fx.s, uid, &line, 1, NULL);
    ck_assert_int_eq(shop_order_set_status(fx.s, delivered, ORDER_SHIPPED), 0);
    ck_assert_int_eq(shop_order_get(fx.s, delivered, &o), 0);
    ck_assert_int_eq(o.status, ORDER_SHIPPED);
    ck_assert_int_eq(shop_order_set_status(fx.s, delivered, ORDER_SHIPPED), 0); /* no-op */
    ck_assert_int_eq(shop_order_set_status(fx.s, delivered, ORDER_DELIVERED), 0);
    struct snapshot before;
    snapshot_take(&before);
    assert_refused(shop_order_set_status(fx.s, delivered, ORDER_PENDING), -EPERM);
    assert_refused(shop_order_set_status(fx.s, delivered, ORDER_SHIPPED), -EPERM);
    assert_refused(shop_order_set_status(fx.s, delivered, ORDER_CANCELLED), -EPERM);
    ck_assert_int_eq(shop_order_set_status(fx.s, delivered, ORDER_DELIVERED), 0);
    assert_unchanged(&before);
    ck_assert_int_eq(shop_order_get(fx.s, delivered, &o), 0);
    ck_assert_int_eq(o.status, ORDER_DELIVERED);
    ck_assert_int_eq(stock_of(a), 7);

    int64_t cancelled = shop_order_create(fx.s, uid, &line, 1, NULL);
    ck_assert_int_eq(stock_of(a), 4);
    ck_assert_int_eq(shop_order_set_status(fx.s, cancelled, ORDER_CANCELLED), 0);
    ck_assert_int_eq(stock_of(a), 7);
    /* Cancelling again is a no-op, not a second refund. */
    ck_assert_int_eq(shop_order_set_status(fx.s, cancelled, ORDER_CANCELLED), 0);
    ck_assert_int_eq(stock_of(a), 7);
    assert_refused(shop_order_set_status(fx.s, cancelled, ORDER_SHIPPED), -EPERM);
    assert_refused(shop_order_set_status(fx.s, cancelled, ORDER_PENDING), -EPERM);
    assert_refused(shop_order_set_status(fx.s, cancelled, ORDER_DELIVERED), -EPERM);
    ck_assert_int_eq(stock_of(a), 7);

    int64_t shipped = shop_order_create(fx.s, uid, &line, 1, NULL);
    ck_assert_int_eq(shop_order_set_status(fx.s, shipped, ORDER_SHIPPED), 0);
    assert_refused(shop_order_set_status(fx.s, shipped, ORDER_PENDING), -EPERM);
    ck_assert_int_eq(stock_of(a), 4);
    ck_assert_int_eq(shop_order_set_status(fx.s, shipped, ORDER_CANCELLED), 0);
    ck_assert_int_eq(stock_of(a), 7);
    ck_assert_int_eq(shop_order_get(fx.s, shipped, &o), 0);
    ck_assert_int_eq(o.status, ORDER_CANCELLED);
    ck_assert_int_eq(o.total_cents, 300); /* a cancelled order keeps its record */

    assert_refused(shop_order_set_status(fx.s, shipped + 100, ORDER_SHIPPED), -ENOENT);
    assert_refused(shop_order_set_status(fx.s, shipped, (enum shop_order_status)9), -EINVAL);
}
END_TEST

START_TEST(order_status_names)
{
    static const char *const names[] = {"pending", "shipped", "delivered", "cancelled"};
    for (int st = ORDER_PENDING; st <= ORDER_CANCELLED; st++) {
        ck_assert_str_eq(shop_order_status_name((enum shop_order_status)st), names[st]);
        enum shop_order_status parsed = ORDER_CANCELLED;
        ck_assert_int_eq(shop_order_status_parse(names[st], &parsed), 0);
        ck_assert_int_eq(parsed, st);
    }
    enum shop_order_status parsed;
    ck_assert_int_eq(shop_order_status_parse("Pending", &parsed), -EINVAL);
    ck_assert_int_eq(shop_order_status_parse("", &parsed), -EINVAL);
    ck_assert_int_eq(shop_order_status_parse(NULL, &parsed), -EINVAL);
}
END_TEST

START_TEST(order_get_unknown_is_enoent)
{
    struct shop_order o;
    assert_refused(shop_order_get(fx.s, 1, &o), -ENOENT);
    assert_refused(shop_order_get(fx.s, -5, &o), -ENOENT);
}
END_TEST

START_TEST(order_list_newest_first)
{
    int64_t ada = make_user("Ada", "ada@example.com");
    int64_t bob = make_user("Bob", "bob@example.com");
    int64_t a = make_product("A", "x", 100, 100);
    struct shop_order_line line = {.product_id = a, .quantity = 1};
    int64_t o1 = shop_order_create(fx.s, ada, &line, 1, NULL);
    int64_t ob = shop_order_create(fx.s, bob, &line, 1, NULL);
    int64_t o2 = shop_order_create(fx.s, ada, &line, 1, NULL);
    add_to_cart(ada, a, 2);
    int64_t o3 = shop_checkout(fx.s, ada, NULL);
    ck_assert_int_gt(o1, 0);
    ck_assert_int_gt(ob, 0);
    int64_t ids[4] = {0};
    ck_assert_int_eq(shop_order_list(fx.s, ada, ids, 4), 3);
    ck_assert_int_eq(ids[0], o3);
    ck_assert_int_eq(ids[1], o2);
    ck_assert_int_eq(ids[2], o1);
    ids[1] = -1;
    ck_assert_int_eq(shop_order_list(fx.s, ada, ids, 1), 3);
    ck_assert_int_eq(ids[0], o3);
    ck_assert_int_eq(ids[1], -1);
    ck_assert_int_eq(shop_order_list(fx.s, bob, ids, 4), 1);
    ck_assert_int_eq(ids[0], ob);
    assert_refused(shop_order_list(fx.s, bob + 100, ids, 4), -ENOENT);
    assert_refused(shop_order_list(fx.s, bob, NULL, 4), -EINVAL);
}
END_TEST

START_TEST(order_page_walks_back_from_the_newest)
{
    int64_t ada = make_user("Ada", "ada@example.com");
    int64_t bob = make_user("Bob", "bob@example.com");
    int64_t a = make_product("A", "x", 100, 100);
    struct shop_order_line line = {.product_id = a, .quantity = 1};
    int64_t mine[5];
    for (int i = 0; i < 5; i++) {
        mine[i] = shop_order_create(fx.s, ada, &line, 1, NULL);
        ck_assert_int_gt(mine[i], 0);
        ck_assert_int_gt(shop_order_create(fx.s, bob, &line, 1, NULL), 0); /* interleaved */
    }
    int64_t ids[3] = {0, 0, -7};
    ck_assert_int_eq(shop_order_page(fx.s, ada, 0, ids, 2), 2);
    ck_assert_int_eq(ids[0], mine[4]);
    ck_assert_int_eq(ids[1], mine[3]);
    ck_assert_int_eq(ids[2], -7); /* past the page: untouched */
    ck_assert_int_eq(shop_order_page(fx.s, ada, mine[3], ids, 2), 2);
    ck_assert_int_eq(ids[0], mine[2]);
    ck_assert_int_eq(ids[1], mine[1]);
    ck_assert_int_eq(shop_order_page(fx.s, ada, mine[1], ids, 2), 1);
    ck_assert_int_eq(ids[0], mine[0]);
    ck_assert_int_eq(shop_order_page(fx.s, ada, mine[0], ids, 2), 0);
    int64_t carol = make_user("Carol", "carol@example.com");
    ck_assert_int_eq(shop_order_page(fx.s, carol, 0, ids, 2), 0);
    assert_refused(shop_order_page(fx.s, bob + 100, 0, ids, 2), -ENOENT);
    assert_refused(shop_order_page(fx.s, ada, 0, NULL, 2), -EINVAL);
    assert_refused(shop_order_page(fx.s, ada, 0, ids, 0), -EINVAL);
    assert_refused(shop_order_page(fx.s, ada, 0, ids, SHOP_PAGE_MAX + 1), -EINVAL);
}
END_TEST

/* ---- schema ---------------------------------------------------------------- */

START_TEST(reopened_shop_keeps_everything)
{
    set_clock(FAKE_EPOCH_US + 9);
    int64_t uid = make_user("Ada", "ada@example.com");
    int64_t a = make_product("A", "x", 250, 10);
    int64_t b = make_product("B", "y", 100, 10);
    add_to_cart(uid, a, 2);
    int64_t oid = shop_checkout(fx.s, uid, NULL);
    add_to_cart(uid, b, 1);
    struct snapshot before;
    snapshot_take(&before);

    shop_close(fx.s);
    fx.s = NULL;
    set_clock(FAKE_EPOCH_US + 1000000);
    fx.s = open_or_fail(&fx.cfg);
    assert_unchanged(&before);
    struct shop_user u;
    ck_assert_int_eq(shop_user_get(fx.s, uid, &u), 0);
    ck_assert_int_eq(u.updated_at_us, FAKE_EPOCH_US + 9);
    struct shop_order o;
    ck_assert_int_eq(shop_order_get(fx.s, oid, &o), 0);
    ck_assert_int_eq(o.total_cents, 500);
    ck_assert_int_eq(stock_of(a), 8);
    ck_assert_int_eq(cart_count(uid), 1);
    /* Ids carry on where they stopped. */
    ck_assert_int_eq(make_product("C", "z", 1, 1), b + 1);
    ck_assert_int_gt(shop_checkout(fx.s, uid, NULL), oid);
}
END_TEST

static int raw_user_version(const char *path)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return version;
}

START_TEST(schema_version_is_current)
{
    make_user("Ada", "ada@example.com");
    shop_close(fx.s);
    fx.s = NULL;
    ck_assert_int_eq(raw_user_version(fx.primary_path), SHOP_SCHEMA_VERSION);
    if (fx.topology == SHOP_MIRROR)
        ck_assert_int_eq(raw_user_version(fx.mirror_path), SHOP_SCHEMA_VERSION);
    fx.s = open_or_fail(&fx.cfg);
}
END_TEST

static void make_future_database(const char *path)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE from_the_future (x); PRAGMA user_version = 99;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
}

static void assert_open_refused_newer(const struct shop_config *cfg)
{
    shop *s = (shop *)&fx; /* must be reset to NULL */
    char msg[SHOP_ERRMSG_MAX] = "";
    int rc = shop_open(cfg, &fx.env, &s, msg);
    ck_assert_msg(rc == -EPROTO, "opening a version-99 database: %d %s", rc, msg);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(msg, "99") != NULL, "message does not name the version: '%s'", msg);
}

START_TEST(newer_schema_is_refused)
{
    char future[TEST_PATH_MAX], fresh[TEST_PATH_MAX];
    snprintf(future, sizeof(future), "%s/future.sqlite", fx.dir);
    snprintf(fresh, sizeof(fresh), "%s/fresh.sqlite", fx.dir);
    make_future_database(future);
    struct shop_config cfg = fx.cfg;
    cfg.primary.path = future;
    cfg.mirror.path = fresh;
    assert_open_refused_newer(&cfg);
    ck_assert_int_eq(raw_user_version(future), 99);
    if (fx.topology == SHOP_MIRROR) {
        /* A mirror copy from the future is refused as well. */
        cfg.primary.path = fresh;
        cfg.mirror.path = future;
        assert_open_refused_newer(&cfg);
    }
}
END_TEST

/* ---- the error contract ------------------------------------------------------ */

START_TEST(strerror_and_unknown_outcomes)
{
    static const int codes[] = {EINVAL, ENOENT, EEXIST,      ERANGE,    EPERM,  ENODATA,
                                EIO,    ENOSPC, EINPROGRESS, ECANCELED, EBADMSG};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *m = platform_strerror(-codes[i]);
        ck_assert_ptr_nonnull(m);
        ck_assert_uint_gt(strlen(m), 0);
        ck_assert_str_ne(m, "unexpected error");
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(m, platform_strerror(-codes[j]));
    }
    ck_assert_str_eq(platform_strerror(-ERANGE), "insufficient stock");
    ck_assert_str_eq(platform_strerror(0), "ok");
    ck_assert_uint_gt(strlen(platform_strerror(-ETXTBSY)), 0);
    ck_assert(platform_is_unknown(-EINPROGRESS));
    ck_assert(platform_is_unknown(-ECANCELED));
    static const int known[] = {0, -EIO, -ENOSPC, -ERANGE, -EINVAL, -ENOENT, -EBADMSG};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        ck_assert(!platform_is_unknown(known[i]));
}
END_TEST

START_TEST(errmsg_cleared_by_success_set_by_failure)
{
    int64_t uid = make_user("Ada", "ada@example.com");
    assert_refused(shop_checkout(fx.s, uid, NULL), -ENODATA);
    struct shop_user u;
    ck_assert_int_eq(shop_user_get(fx.s, uid, &u), 0);
    ck_assert_str_eq(shop_errmsg(fx.s), "");
    assert_refused(shop_user_get(fx.s, uid + 1, &u), -ENOENT);
}
END_TEST

START_TEST(mirror_status_matches_topology)
{
    struct mirror_status st;
    make_user("Ada", "ada@example.com");
    if (fx.topology == SHOP_SINGLE) {
        assert_refused(shop_mirror_status(fx.s, &st), -EINVAL);
        assert_refused(shop_mirror_resync(fx.s), -EINVAL);
        assert_refused(shop_integrity(fx.s, 1), -EINVAL);
        return;
    }
    ck_assert_int_eq(shop_mirror_status(fx.s, &st), 0);
    ck_assert_int_eq(st.state, MIRROR_IN_SYNC);
    ck_assert_int_eq(st.seq_primary, 1);
    ck_assert_int_eq(st.seq_mirror, 1);
    ck_assert_ptr_null(st.behind);
    ck_assert_str_eq(mirror_state_name(st.state), "in-sync");
    ck_assert_int_eq(shop_mirror_resync(fx.s), 0);
    assert_refused(shop_digest(fx.s, 2, (char[65]){0}), -EINVAL);
}
END_TEST

/* ---- the runner ------------------------------------------------------------ */

static TCase *shop_tcase(const char *name, void (*setup)(void))
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, user_create_returns_increasing_ids);
    tcase_add_test(tc, user_duplicate_email_is_eexist_and_writes_nothing);
    tcase_add_test(tc, user_bad_email_or_name_is_einval);
    tcase_add_test(tc, user_update_by_email);
    tcase_add_test(tc, user_get_unknown_is_enoent);
    tcase_add_test(tc, product_create_get_update_delete);
    tcase_add_test(tc, product_validation_is_einval);
    tcase_add_test(tc, product_delete_refused_once_ordered);
    tcase_add_test(tc, product_delete_removes_it_from_carts);
    tcase_add_test(tc, product_list_filters);
    tcase_add_test(tc, product_list_counts_beyond_max);
    tcase_add_test(tc, product_page_walks_the_list_page_by_page);
    tcase_add_test(tc, cart_add_accumulates);
    tcase_add_test(tc, cart_add_bad_quantity_or_unknown_ids);
    tcase_add_test(tc, cart_set_replaces_the_quantity);
    tcase_add_test(tc, cart_remove);
    tcase_add_test(tc, checkout_moves_cart_into_order);
    tcase_add_test(tc, checkout_snapshots_unit_prices);
    tcase_add_test(tc, checkout_empty_cart_is_enodata);
    tcase_add_test(tc, checkout_insufficient_stock_rejects_whole_order);
    tcase_add_test(tc, order_create_explicit_lines);
    tcase_add_test(tc, order_create_is_atomic);
    tcase_add_test(tc, stock_conserved_under_random_orders);
    tcase_add_test(tc, order_status_transitions);
    tcase_add_test(tc, order_status_names);
    tcase_add_test(tc, order_get_unknown_is_enoent);
    tcase_add_test(tc, order_list_newest_first);
    tcase_add_test(tc, order_page_walks_back_from_the_newest);
    tcase_add_test(tc, reopened_shop_keeps_everything);
    tcase_add_test(tc, schema_version_is_current);
    tcase_add_test(tc, newer_schema_is_refused);
    tcase_add_test(tc, strerror_and_unknown_outcomes);
    tcase_add_test(tc, errmsg_cleared_by_success_set_by_failure);
    tcase_add_test(tc, mirror_status_matches_topology);
    return tc;
}

static Suite *shop_suite(void)
{
    Suite *s = suite_create("shop");
    suite_add_tcase(s, shop_tcase("single", setup_single));
    suite_add_tcase(s, shop_tcase("mirror-strict", setup_mirror));
    return s;
}

int main(void)
{
    snprintf(run_dir, sizeof(run_dir), "/tmp/check_shop-XXXXXX");
    if (mkdtemp(run_dir) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    int rc = check_run(shop_suite());
    remove_run_dir();
    return rc;
}
