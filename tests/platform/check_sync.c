/*
 * check_sync.c — tests of offline-first sync (platform/sync.c): a push
 * carries the queue's PENDING rows with their rows' current values; central
 * applies it in one transaction keyed by global id, so repeated, reordered
 * and re-sent pushes change nothing and two locals never clash; a failed
 * push counts retries and marks FAILED only at the budget, and FAILED rows
 * sync once included again; a crash after the push and before the mark
 * re-sends without syncing anything twice; a full central disk applies
 * nothing; the comparison finds a row committed without its queue entry
 * (queue=separate's bug) and tells waiting rows from lost ones; malformed
 * pushes and replies are refused.
 *
 * Nodes: "local" and "local2" (locals), "central", each on its own fault
 * VFS, in the scratch directory of testenv.
 */
#include <check.h>
#include <errno.h>
#include <fiu-control.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/faults.h"
#include "tests/check_run.h"
#include "tests/platform/testenv.h"

#define BUDGET        3
#define SEED_PRODUCTS 3
#define SEED_ROWS     (SEED_PRODUCTS + 1) /* the products and one user */

static struct testenv t;
static char paths[3][320];
static const char *const nodes[3] = {"local", "local2", "central"};

static void setup(void)
{
    testenv_init(&t);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(faults_vfs_register(nodes[i], NULL), 0);
        snprintf(paths[i], sizeof(paths[i]), "%s/db_%s.sqlite", t.dir, nodes[i]);
    }
}

static void teardown(void)
{
    fiu_disable("crash/local/sync-after-push");
    fiu_disable("crash/local/sync-between-row-and-queue");
    testenv_release(&t);
}

/* ---- helpers ----------------------------------------------------------- */

static shop *open_node(int i, enum shop_sync_queue queue)
{
    struct shop_config cfg = {
        .topology = SHOP_SINGLE,
        .primary = {.node = nodes[i], .path = paths[i], .vfs = faults_vfs_name(nodes[i])},
        .sync_full = true,
        .sync_queue = queue,
    };
    return testenv_open(&t, &cfg);
}

static shop *open_local(void)
{
    return open_node(0, SHOP_QUEUE_SAME);
}

static shop *open_central(void)
{
    return open_node(2, SHOP_QUEUE_NONE);
}

static void pending(shop *local, bool include_failed, struct shop_sync_push *p)
{
    int rc = shop_sync_pending(local, SHOP_SYNC_PUSH_ROWS_MAX, include_failed, p);
    ck_assert_msg(rc == 0, "pending: %d %s", rc, shop_errmsg(local));
}

static void apply(shop *central, const char *origin, const struct shop_sync_push *p,
                  struct shop_sync_result *r)
{
    int rc = shop_sync_apply_central(central, origin, p->data, p->len, r);
    ck_assert_msg(rc == 0, "apply: %d %s", rc, shop_errmsg(central));
    ck_assert_uint_eq(r->count, p->count);
}

static void mark(shop *local, const struct shop_sync_result *r, int err, struct shop_sync_marked *m)
{
    int rc = shop_sync_mark(local, r, err, BUDGET, m);
    ck_assert_msg(rc == 0, "mark: %d %s", rc, shop_errmsg(local));
}

/* One whole round: push what is pending, apply it, mark it. */
static uint32_t sync_round(shop *local, shop *central, const char *origin, bool include_failed)
{
    struct shop_sync_push p;
    struct shop_sync_result r;
    struct shop_sync_marked m;
    pending(local, include_failed, &p);
    apply(central, origin, &p, &r);
    mark(local, &r, 0, &m);
    uint32_t n = p.count;
    shop_sync_push_release(&p);
    return n;
}

static struct shop_sync_status status(shop *local)
{
    struct shop_sync_status st;
    int rc = shop_sync_status(local, &st);
    ck_assert_msg(rc == 0, "status: %d %s", rc, shop_errmsg(local));
    return st;
}

static struct shop_sync_compare compare(shop *local, shop *central, const char *origin)
{
    struct shop_sync_compare c;
    int rc = shop_sync_compare(local, central, origin, &c);
    ck_assert_msg(rc == 0, "compare: %d %s", rc, shop_errmsg(local));
    return c;
}

static void assert_converged(shop *local, shop *central, const char *origin)
{
    struct shop_sync_compare c = compare(local, central, origin);
    ck_assert_msg(c.matching == c.rows && c.lost == 0 && c.waiting == 0,
                  "%s: %lld of %lld rows match (first mismatch: table %d key %s problem %d)",
                  origin, (long long)c.matching, (long long)c.rows,
                  c.example_count ? c.examples[0].table : -1,
                  c.example_count ? c.examples[0].row_key : "-",
                  c.example_count ? (int)c.examples[0].problem : -1);
}

static void set_price(shop *s, int64_t id, int64_t cents)
{
    struct shop_product p;
    ck_assert_int_eq(shop_product_get(s, id, &p), 0);
    p.price_cents = cents;
    ck_assert_int_eq(shop_product_update(s, &p), 0);
}

/* ---- push, apply, mark ------------------------------------------------- */

START_TEST(seeded_rows_sync_and_match)
{
    shop *local = open_local(), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    struct shop_sync_status st = status(local);
    ck_assert_int_eq(st.total[SHOP_SYNC_PENDING], SEED_ROWS);
    ck_assert_int_eq(st.count[1][SHOP_SYNC_PENDING], SEED_PRODUCTS); /* products */
    ck_assert_int_gt(st.oldest_pending_at_us, 0);
    ck_assert_int_gt(st.oldest_pending_age_us, 0);

    struct shop_sync_push p;
    struct shop_sync_result r;
    struct shop_sync_marked m;
    pending(local, false, &p);
    ck_assert_uint_eq(p.count, SEED_ROWS);
    ck_assert_uint_eq(p.retried, 0);
    for (uint32_t i = 1; i < p.count; i++)
        ck_assert_int_lt(p.ids[i - 1], p.ids[i]);
    apply(central, "local", &p, &r);
    ck_assert_uint_eq(r.applied, SEED_ROWS);
    ck_assert_uint_eq(r.unchanged, 0);
    mark(local, &r, 0, &m);
    ck_assert_uint_eq(m.synced, SEED_ROWS);
    shop_sync_push_release(&p);

    st = status(local);
    ck_assert_int_eq(st.total[SHOP_SYNC_SYNCED], SEED_ROWS);
    ck_assert_int_eq(st.total[SHOP_SYNC_PENDING], 0);
    ck_assert_int_eq(st.oldest_pending_at_us, 0);
    ck_assert_int_eq(st.synced_marks, SEED_ROWS);
    ck_assert_int_eq(st.synced_twice, 0);

    struct shop_sync_central_row row;
    ck_assert_int_eq(shop_sync_central_get(central, "local:products:2", &row), 0);
    ck_assert_str_eq(row.origin, "local");
    ck_assert_str_eq(shop_table_name(row.table), "products");
    ck_assert_str_eq(row.row_key, "2");
    ck_assert(!row.deleted);
    ck_assert_int_gt(row.data_len, 0);
    ck_assert_int_eq(shop_sync_central_get(central, "local:products:99", &row), -ENOENT);
    assert_converged(local, central, "local");

    /* central is an aggregate: its own shop tables stay empty */
    struct shop_product list[4];
    ck_assert_int_eq(shop_product_list(central, NULL, list, 4), 0);
    /* nothing left to push */
    pending(local, true, &p);
    ck_assert_uint_eq(p.count, 0);
    shop_sync_push_release(&p);
    shop_close(local);
    shop_close(central);
}
END_TEST

START_TEST(push_carries_the_current_values)
{
    shop *local = open_local(), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    set_price(local, 1, 555);
    set_price(local, 1, 777); /* two more queue rows for product 1 */
    ck_assert_uint_eq(sync_round(local, central, "local", false), SEED_ROWS + 2);
    assert_converged(local, central, "local");
    struct shop_sync_central_row row;
    ck_assert_int_eq(shop_sync_central_get(central, "local:products:1", &row), 0);
    ck_assert_int_eq(row.version, status(local).synced_marks); /* the newest queue id */
    shop_close(local);
    shop_close(central);
}
END_TEST

START_TEST(duplicate_push_changes_nothing)
{
    shop *local = open_local(), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    struct shop_sync_push p;
    struct shop_sync_result r;
    pending(local, false, &p);
    apply(central, "local", &p, &r);
    struct shop_sync_central_row before, after;
    ck_assert_int_eq(shop_sync_central_get(central, "local:users:1", &before), 0);
    apply(central, "local", &p, &r);
    ck_assert_uint_eq(r.applied, 0);
    ck_assert_uint_eq(r.unchanged, SEED_ROWS);
    ck_assert_int_eq(shop_sync_central_get(central, "local:users:1", &after), 0);
    ck_assert_int_eq(after.synced_at_us, before.synced_at_us);
    ck_assert_int_eq(after.version, before.version);
    ck_assert_str_eq(after.data_sha256, before.data_sha256);
    /* marking twice: the second reply finds them SYNCED already */
    struct shop_sync_marked m;
    mark(local, &r, 0, &m);
    ck_assert_uint_eq(m.synced, SEED_ROWS);
    mark(local, &r, 0, &m);
    ck_assert_uint_eq(m.synced, 0);
    ck_assert_uint_eq(m.already, SEED_ROWS);
    ck_assert_int_eq(status(local).synced_twice, 0);
    ck_assert_int_eq(status(local).synced_marks, SEED_ROWS);
    shop_sync_push_release(&p);
    shop_close(local);
    shop_close(central);
}
END_TEST

START_TEST(older_push_arriving_late_is_ignored)
{
    shop *local = open_local(), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    struct shop_sync_push old, newer;
    struct shop_sync_result r;
    pending(local, false, &old);
    set_price(local, 2, 4242);
    pending(local, false, &newer); /* the same rows, now with the new price, and one more */
    ck_assert_uint_eq(newer.count, old.count + 1);
    apply(central, "local", &newer, &r);
    apply(central, "local", &old, &r); /* reordered on the network */
    ck_assert_uint_eq(r.applied, 0);
    struct shop_sync_marked m;
    mark(local, &r, 0, &m);
    ck_assert_uint_eq(m.synced, old.count);
    /* the price change's own queue row is still PENDING, but central
     * already holds its values: the comparison sees them equal */
    assert_converged(local, central, "local");
    ck_assert_uint_eq(sync_round(local, central, "local", false), 1);
    assert_converged(local, central, "local");
    shop_sync_push_release(&old);
    shop_sync_push_release(&newer);
    shop_close(local);
    shop_close(central);
}
END_TEST

START_TEST(two_locals_never_clash)
{
    shop *a = open_local(), *b = open_node(1, SHOP_QUEUE_SAME), *central = open_central();
    testenv_seed(a, SEED_PRODUCTS);
    testenv_seed(b, SEED_PRODUCTS);
    set_price(b, 1, 9999); /* same ids, other values */
    sync_round(a, central, "local", false);
    sync_round(b, central, "local2", false);
    assert_converged(a, central, "local");
    assert_converged(b, central, "local2");
    struct shop_sync_central_row ra, rb;
    ck_assert_int_eq(shop_sync_central_get(central, "local:products:1", &ra), 0);
    ck_assert_int_eq(shop_sync_central_get(central, "local2:products:1", &rb), 0);
    ck_assert_str_ne(ra.data_sha256, rb.data_sha256);
    /* a push cannot pose as another origin */
    struct shop_sync_push p;
    struct shop_sync_result r;
    set_price(a, 1, 1);
    pending(a, false, &p);
    ck_assert_int_eq(shop_sync_apply_central(central, "local2", p.data, p.len, &r), -EPROTO);
    ck_assert_uint_eq(r.count, 0);
    shop_sync_push_release(&p);
    shop_close(a);
    shop_close(b);
    shop_close(central);
}
END_TEST

START_TEST(deletes_sync_as_deleted)
{
    shop *local = open_local(), *central = open_central();
    int64_t uid = testenv_seed(local, SEED_PRODUCTS);
    ck_assert_int_eq(shop_cart_add(local, uid, 1, 2), 0);
    sync_round(local, central, "local", false);
    ck_assert_int_eq(shop_cart_remove(local, uid, 1), 0);
    struct shop_sync_compare c = compare(local, central, "local");
    ck_assert_int_eq(c.mismatched[SHOP_SYNC_UNDELETED], 1);
    ck_assert_int_eq(c.waiting, 1); /* its delete is PENDING */
    ck_assert_int_eq(c.lost, 0);
    ck_assert_str_eq(c.examples[0].op, "delete");
    ck_assert_int_eq(c.examples[0].state, SHOP_SYNC_PENDING);
    sync_round(local, central, "local", false);
    struct shop_sync_central_row row;
    char gid[64];
    snprintf(gid, sizeof(gid), "local:carts:%lld/1", (long long)uid);
    ck_assert_int_eq(shop_sync_central_get(central, gid, &row), 0);
    ck_assert(row.deleted);
    ck_assert_int_eq(row.data_len, 0);
    assert_converged(local, central, "local");
    shop_close(local);
    shop_close(central);
}
END_TEST

/* ---- failures ------------------------------------------------------------ */

START_TEST(central_disk_full_applies_nothing_then_failed_after_budget)
{
    shop *local = open_local(), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    struct shop_sync_push p;
    struct shop_sync_result r, carried;
    struct shop_sync_marked m;
    testenv_arm("disk/central/full", 0, 0);
    for (int attempt = 1; attempt <= BUDGET; attempt++) {
        pending(local, attempt == BUDGET, &p);
        ck_assert_uint_eq(p.count, SEED_ROWS);
        ck_assert_uint_eq(p.retried, attempt > 1 ? SEED_ROWS : 0);
        int rc = shop_sync_apply_central(central, "local", p.data, p.len, &r);
        ck_assert_int_eq(rc, -ENOSPC);
        ck_assert_uint_eq(r.count, 0);
        shop_sync_result_of_push(&p, &carried);
        mark(local, &carried, rc, &m);
        ck_assert_uint_eq(m.retried, SEED_ROWS);
        ck_assert_int_eq(m.retries_max, attempt);
        ck_assert_uint_eq(m.failed, attempt == BUDGET ? SEED_ROWS : 0);
        shop_sync_push_release(&p);
    }
    faults_disarm_all();
    struct shop_sync_central_row row;
    ck_assert_int_eq(shop_sync_central_get(central, "local:users:1", &row), -ENOENT);
    struct shop_sync_status st = status(local);
    ck_assert_int_eq(st.total[SHOP_SYNC_FAILED], SEED_ROWS);
    ck_assert_int_eq(st.failed_retries_min, BUDGET);
    ck_assert_int_gt(st.failed_retries_min_id, 0);
    struct shop_sync_entry e;
    ck_assert_int_eq(shop_sync_entry_get(local, st.failed_retries_min_id, &e), 0);
    ck_assert_int_eq(e.state, SHOP_SYNC_FAILED);
    ck_assert_int_eq(e.retries, BUDGET);
    /* the comparison: missing centrally, but a FAILED row will bring them */
    struct shop_sync_compare c = compare(local, central, "local");
    ck_assert_int_eq(c.mismatched[SHOP_SYNC_MISSING], SEED_ROWS);
    ck_assert_int_eq(c.waiting, SEED_ROWS);
    ck_assert_int_eq(c.lost, 0);

    /* FAILED rows are only pushed when asked for, and then they sync */
    pending(local, false, &p);
    ck_assert_uint_eq(p.count, 0);
    shop_sync_push_release(&p);
    pending(local, true, &p);
    ck_assert_uint_eq(p.failed, SEED_ROWS);
    apply(central, "local", &p, &r);
    mark(local, &r, 0, &m);
    ck_assert_uint_eq(m.synced, SEED_ROWS);
    shop_sync_push_release(&p);
    ck_assert_int_eq(status(local).total[SHOP_SYNC_FAILED], 0);
    assert_converged(local, central, "local");
    shop_close(local);
    shop_close(central);
}
END_TEST

START_TEST(crash_after_push_resends_and_syncs_once)
{
    shop *local = open_local(), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    struct shop_sync_push p;
    struct shop_sync_result r;
    pending(local, false, &p);
    apply(central, "local", &p, &r);
    shop_sync_push_release(&p);
    ck_assert_int_eq(fiu_enable("crash/local/sync-after-push", 1, NULL, FIU_ONETIME), 0);
    ck_assert_int_eq(shop_sync_mark(local, &r, 0, BUDGET, NULL), -ECANCELED);
    ck_assert_int_eq(t.crashes, 1);
    ck_assert_str_eq(t.crashed_node, "local");
    ck_assert_str_eq(t.crashed_point, "sync-after-push");
    ck_assert_int_eq(shop_sync_status(local, &(struct shop_sync_status){0}), -ECANCELED);
    ck_assert_int_eq(faults_vfs_crash("local", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    shop_abandon(local);
    ck_assert_int_eq(faults_vfs_restart("local"), 0);

    local = open_local();
    ck_assert_int_eq(status(local).total[SHOP_SYNC_PENDING], SEED_ROWS);
    pending(local, false, &p);
    apply(central, "local", &p, &r);
    ck_assert_uint_eq(r.applied, 0); /* central had them: the re-send changes nothing */
    ck_assert_uint_eq(r.unchanged, SEED_ROWS);
    struct shop_sync_marked m;
    mark(local, &r, 0, &m);
    ck_assert_uint_eq(m.synced, SEED_ROWS);
    shop_sync_push_release(&p);
    struct shop_sync_status st = status(local);
    ck_assert_int_eq(st.synced_marks, SEED_ROWS);
    ck_assert_int_eq(st.synced_twice, 0);
    assert_converged(local, central, "local");
    shop_close(local);
    shop_close(central);
}
END_TEST

START_TEST(failed_mark_keeps_rows_pending)
{
    shop *local = open_local(), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    struct shop_sync_push p;
    struct shop_sync_result r;
    pending(local, false, &p);
    apply(central, "local", &p, &r);
    testenv_arm("disk/local/write", EIO, 0);
    int rc = shop_sync_mark(local, &r, 0, BUDGET, NULL);
    faults_disarm_all();
    ck_assert_int_eq(rc, -EIO);
    ck_assert_int_eq(status(local).total[SHOP_SYNC_PENDING], SEED_ROWS);
    ck_assert_int_eq(status(local).synced_marks, 0);
    shop_sync_push_release(&p);
    ck_assert_uint_eq(sync_round(local, central, "local", false), SEED_ROWS);
    assert_converged(local, central, "local");
    shop_close(local);
    shop_close(central);
}
END_TEST

START_TEST(unqueued_row_of_queue_separate_is_lost)
{
    shop *local = open_node(0, SHOP_QUEUE_SEPARATE), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    sync_round(local, central, "local", false);
    assert_converged(local, central, "local");
    ck_assert_int_eq(fiu_enable("crash/local/sync-between-row-and-queue", 1, NULL, FIU_ONETIME), 0);
    struct shop_product prod = {.price_cents = 10, .stock = 5};
    snprintf(prod.name, sizeof(prod.name), "unqueued");
    ck_assert_int_eq(shop_product_create(local, &prod), -ECANCELED);
    ck_assert_int_eq(faults_vfs_crash("local", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    shop_abandon(local);
    ck_assert_int_eq(faults_vfs_restart("local"), 0);
    local = open_node(0, SHOP_QUEUE_SEPARATE);

    ck_assert_uint_eq(sync_round(local, central, "local", true), 0); /* nothing queued */
    struct shop_sync_compare c = compare(local, central, "local");
    ck_assert_int_eq(c.mismatched[SHOP_SYNC_MISSING], 1);
    ck_assert_int_eq(c.lost, 1);
    ck_assert_uint_eq(c.example_count, 1);
    ck_assert(c.examples[0].lost);
    ck_assert(!c.examples[0].queued);
    ck_assert_str_eq(shop_table_name(c.examples[0].table), "products");
    ck_assert_str_eq(c.examples[0].row_key, "4");
    shop_close(local);
    shop_close(central);
}
END_TEST

START_TEST(change_after_synced_row_without_queue_is_lost)
{
    /* a row changed behind the queue's back (as queue=separate's crash leaves
     * an update): its newest queue row is SYNCED, central is stale */
    shop *local = open_node(0, SHOP_QUEUE_SEPARATE), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    sync_round(local, central, "local", false);
    ck_assert_int_eq(fiu_enable("crash/local/sync-between-row-and-queue", 1, NULL, FIU_ONETIME), 0);
    struct shop_product prod;
    ck_assert_int_eq(shop_product_get(local, 3, &prod), 0);
    prod.stock = 1;
    ck_assert_int_eq(shop_product_update(local, &prod), -ECANCELED);
    ck_assert_int_eq(faults_vfs_crash("local", FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    shop_abandon(local);
    ck_assert_int_eq(faults_vfs_restart("local"), 0);
    local = open_node(0, SHOP_QUEUE_SEPARATE);
    struct shop_sync_compare c = compare(local, central, "local");
    ck_assert_int_eq(c.mismatched[SHOP_SYNC_DIFFERS], 1);
    ck_assert_int_eq(c.lost, 1);
    ck_assert(c.examples[0].queued);
    ck_assert_int_eq(c.examples[0].state, SHOP_SYNC_SYNCED);
    ck_assert_int_gt(c.examples[0].synced_at_us, 0);
    ck_assert_int_eq(c.examples[0].central_version, c.examples[0].queue_id);
    shop_close(local);
    shop_close(central);
}
END_TEST

/* ---- formats and arguments ---------------------------------------------- */

START_TEST(malformed_pushes_are_refused)
{
    shop *local = open_local(), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    struct shop_sync_push p;
    struct shop_sync_result r;
    pending(local, false, &p);
    ck_assert_int_eq(shop_sync_apply_central(central, "local", "nonsense", 8, &r), -EPROTO);
    for (size_t cut = 0; cut < p.len; cut += 7)
        ck_assert_int_eq(shop_sync_apply_central(central, "local", p.data, cut, &r), -EPROTO);
    uint8_t *bad = malloc(p.len);
    ck_assert_ptr_nonnull(bad);
    memcpy(bad, p.data, p.len);
    bad[p.len - 1] ^= 0xff; /* inside the last row's values: still framed... */
    memcpy(bad, "FDS9", 4); /* ...but not a push any more */
    ck_assert_int_eq(shop_sync_apply_central(central, "local", bad, p.len, &r), -EPROTO);
    free(bad);
    struct shop_sync_central_row row;
    ck_assert_int_eq(shop_sync_central_get(central, "local:users:1", &row), -ENOENT);
    shop_sync_push_release(&p);
    ck_assert_int_eq(shop_sync_pending(local, 0, false, &p), -EINVAL);
    ck_assert_ptr_null(p.data);
    ck_assert_int_eq(shop_sync_pending(local, SHOP_SYNC_PUSH_ROWS_MAX + 1, false, &p), -EINVAL);
    ck_assert_int_eq(shop_sync_mark(local, &r, 0, 0, NULL), -EINVAL);
    shop_close(local);
    shop_close(central);
}
END_TEST

START_TEST(push_size_is_bounded)
{
    shop *local = open_local(), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    struct shop_sync_push p;
    ck_assert_int_eq(shop_sync_pending(local, 2, false, &p), 0);
    ck_assert_uint_eq(p.count, 2);
    struct shop_sync_result r;
    apply(central, "local", &p, &r);
    struct shop_sync_marked m;
    mark(local, &r, 0, &m);
    shop_sync_push_release(&p);
    ck_assert_int_eq(status(local).total[SHOP_SYNC_PENDING], SEED_ROWS - 2);
    sync_round(local, central, "local", false);
    assert_converged(local, central, "local");
    shop_close(local);
    shop_close(central);
}
END_TEST

START_TEST(reply_round_trip)
{
    struct shop_sync_result r = {.count = 3, .applied = 2, .unchanged = 1, .ids = {4, 9, 1000}};
    uint8_t buf[SHOP_SYNC_REPLY_BYTES_MAX];
    size_t n = shop_sync_reply_encode(&r, buf);
    struct shop_sync_result back;
    ck_assert_int_eq(shop_sync_reply_decode(buf, n, &back), 0);
    ck_assert_uint_eq(back.count, 3);
    ck_assert_uint_eq(back.applied, 2);
    ck_assert_uint_eq(back.unchanged, 1);
    ck_assert_int_eq(back.ids[2], 1000);
    ck_assert_int_eq(shop_sync_reply_decode(buf, n - 1, &back), -EPROTO);
    ck_assert_uint_eq(back.count, 0);
    buf[0] = 'X';
    ck_assert_int_eq(shop_sync_reply_decode(buf, n, &back), -EPROTO);
}
END_TEST

START_TEST(central_before_any_push_holds_nothing)
{
    shop *local = open_local(), *central = open_central();
    testenv_seed(local, SEED_PRODUCTS);
    struct shop_sync_central_row row;
    ck_assert_int_eq(shop_sync_central_get(central, "local:users:1", &row), -ENOENT);
    struct shop_sync_compare c = compare(local, central, "local");
    ck_assert_int_eq(c.rows, SEED_ROWS);
    ck_assert_int_eq(c.mismatched[SHOP_SYNC_MISSING], SEED_ROWS);
    ck_assert_int_eq(c.waiting, SEED_ROWS);
    struct shop_sync_status st = status(central);
    ck_assert_int_eq(st.total[SHOP_SYNC_PENDING] + st.total[SHOP_SYNC_SYNCED], 0);
    shop_close(local);
    shop_close(central);
}
END_TEST

static Suite *sync_suite(void)
{
    Suite *suite = suite_create("sync");
    TCase *tc = tcase_create("push");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, seeded_rows_sync_and_match);
    tcase_add_test(tc, push_carries_the_current_values);
    tcase_add_test(tc, duplicate_push_changes_nothing);
    tcase_add_test(tc, older_push_arriving_late_is_ignored);
    tcase_add_test(tc, two_locals_never_clash);
    tcase_add_test(tc, deletes_sync_as_deleted);
    tcase_add_test(tc, push_size_is_bounded);
    suite_add_tcase(suite, tc);

    TCase *f = tcase_create("failures");
    tcase_add_checked_fixture(f, setup, teardown);
    tcase_add_test(f, central_disk_full_applies_nothing_then_failed_after_budget);
    tcase_add_test(f, crash_after_push_resends_and_syncs_once);
    tcase_add_test(f, failed_mark_keeps_rows_pending);
    tcase_add_test(f, unqueued_row_of_queue_separate_is_lost);
    tcase_add_test(f, change_after_synced_row_without_queue_is_lost);
    suite_add_tcase(suite, f);

    TCase *fm = tcase_create("formats");
    tcase_add_checked_fixture(fm, setup, teardown);
    tcase_add_test(fm, malformed_pushes_are_refused);
    tcase_add_test(fm, reply_round_trip);
    tcase_add_test(fm, central_before_any_push_holds_nothing);
    suite_add_tcase(suite, fm);
    return suite;
}

int main(void)
{
    return check_run(sync_suite());
}
