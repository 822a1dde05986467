/*
 * check_checkers.c — every checker of sim/checkers.c in both directions: a
 * state or history where the invariant holds, and one where it is broken,
 * with the explanation naming what broke. State is broken behind the
 * shop's back through a second SQLite connection; histories are written by
 * hand. White-box: it includes sim/world.h.
 */
#include <check.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/world.h"
#include "tests/check_run.h"

static char dir[64];
static struct sim *s;
static struct drill *d;
static char why[REPORT_TEXT_MAX];

static int64_t fake_now(void *ctx)
{
    (void)ctx;
    return 1000;
}

static void open_world(enum shop_topology topo, enum mirror_ack ack)
{
    snprintf(dir, sizeof(dir), "/tmp/check-checkers-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    s = calloc(1, sizeof(*s));
    d = calloc(1, sizeof(*d));
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(d);
    d->product_stock = 10;
    s->drill = d;
    struct world_node *n = &s->nodes[0];
    s->node_count = 1;
    s->main_node = 0;
    snprintf(n->name, sizeof(n->name), "primary");
    n->holds_db = true;
    snprintf(n->paths[0], sizeof(n->paths[0]), "%s/db.sqlite", dir);
    snprintf(n->paths[1], sizeof(n->paths[1]), "%s/db_mirror.sqlite", dir);
    n->cfg = (struct shop_config){
        .topology = topo,
        .primary = {.node = "primary", .path = n->paths[0]},
        .mirror = {.node = "mirror", .path = n->paths[1]},
        .policy = MIRROR_STRICT,
        .ack = ack,
        .sync_full = false,
    };
    s->env = (struct platform_env){.now_us = fake_now};
    char msg[SHOP_ERRMSG_MAX];
    ck_assert_msg(shop_open(&n->cfg, &s->env, &n->shop, msg) == 0, "%s", msg);
    for (int i = 1; i <= 3; i++) {
        struct shop_product p = {.price_cents = 100 * i, .stock = 10};
        snprintf(p.name, sizeof(p.name), "p%d", i);
        ck_assert_int_eq(shop_product_create(s->nodes[0].shop, &p), i);
    }
    ck_assert_int_eq(shop_user_create(s->nodes[0].shop, "u", "u@x.org"), 1);
}

static void close_world(void)
{
    session_release(s);
    checkers_release(s);
    free(s->ops);
    shop_close(s->nodes[0].shop);
    free(s);
    free(d);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Breaks a copy behind the shop's back. */
static void tamper(int copy, const char *sql)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(s->nodes[0].paths[copy], &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : "");
    sqlite3_close(db);
}

static enum sim_check judge(const char *invariant)
{
    sim_checker fn = sim_checker_lookup(invariant);
    ck_assert_ptr_nonnull(fn);
    struct drill_expect e = {.max = -1};
    snprintf(e.invariant, sizeof(e.invariant), "%s", invariant);
    why[0] = '\0';
    s->judged = 0;
    s->evaluation++; /* a new evaluation: audits and digests are taken again */
    return fn(s, &e, why, sizeof(why));
}

static struct sim_op *add_op(int client, enum drill_op kind, enum sim_outcome outcome,
                             int64_t invoke, int64_t complete)
{
    if (s->op_count == s->op_cap) {
        s->op_cap = s->op_cap ? 2 * s->op_cap : 16;
        s->ops = realloc(s->ops, s->op_cap * sizeof(*s->ops));
        ck_assert_ptr_nonnull(s->ops);
    }
    struct sim_op *op = &s->ops[s->op_count];
    memset(op, 0, sizeof(*op));
    op->id = (uint32_t)++s->op_count;
    op->client = client;
    op->kind = kind;
    op->outcome = outcome;
    op->invoke_us = invoke;
    op->complete_us = complete;
    op->is_write = workload_is_write(kind);
    return op;
}

/* An operation of client's issued now and completed ok at lineage 0, position pos;
 * an order list shows ids. session.c judges it as the runner would. */
static struct sim_op *session_op(int client, enum drill_op kind, int64_t pos, int n,
                                 const int64_t *ids)
{
    int64_t at = 100 * (int64_t)(s->op_count + 1);
    struct sim_op *op = add_op(client, kind, SIM_PENDING, at, -1);
    session_issued(s, op);
    if (op->is_write) {
        op->lineage = 0;
        op->pos = pos;
    } else {
        session_read_at(s, op, 0, pos, ids, (uint32_t)n, false);
    }
    op->outcome = SIM_OK;
    op->complete_us = at + 10;
    session_completed(s, op);
    return op;
}

static int64_t checkout(int64_t product, int64_t qty)
{
    ck_assert_int_eq(shop_cart_add(s->nodes[0].shop, 1, product, qty), 0);
    int64_t id = shop_checkout(s->nodes[0].shop, 1, NULL);
    ck_assert_int_gt(id, 0);
    return id;
}

START_TEST(test_no_lost_acks_both_ways)
{
    open_world(SHOP_MIRROR, MIRROR_ACK_BOTH);
    int64_t order = checkout(2, 3);
    struct sim_op *op = add_op(1, DRILL_OP_CHECKOUT, SIM_OK, 10, 20);
    op->order_id = order;
    op->user_id = 1;
    op->served_us = 1000; /* fake_now: the order's created_at */
    struct sim_op *unknown = add_op(1, DRILL_OP_CHECKOUT, SIM_UNKNOWN, 30, 40);
    unknown->order_id = 999; /* may or may not exist: never judged */
    ck_assert_int_eq(judge("no-lost-acks"), SIM_CHECK_HOLDS);
    /* the same id on an order made at another time (a promoted copy reuses
     * ids) is not the acknowledged order; a crash (the epoch) makes the checker
     * look again at writes it settled */
    op->served_us = 2000;
    s->epoch++;
    ck_assert_int_eq(judge("no-lost-acks"), SIM_CHECK_VIOLATED);
    op->served_us = 1000;
    ck_assert_int_eq(judge("no-lost-acks"), SIM_CHECK_HOLDS);
    tamper(1, "DELETE FROM order_lines; DELETE FROM orders;");
    ck_assert_int_eq(judge("no-lost-acks"), SIM_CHECK_HOLDS); /* settled: no crash since */
    s->final_check = true; /* the end looks again at everything */
    ck_assert_int_eq(judge("no-lost-acks"), SIM_CHECK_VIOLATED);
    ck_assert_ptr_nonnull(strstr(why, "order 1"));
    ck_assert_ptr_nonnull(strstr(why, "mirror"));
    ck_assert_ptr_nonnull(strstr(why, "client1"));
    close_world();
}
END_TEST

START_TEST(test_mirror_identical_both_ways)
{
    open_world(SHOP_MIRROR, MIRROR_ACK_BOTH);
    checkout(1, 1);
    ck_assert_int_eq(judge("mirror-identical"), SIM_CHECK_HOLDS);
    tamper(1, "UPDATE users SET name = 'someone else'");
    ck_assert_int_eq(judge("mirror-identical"), SIM_CHECK_VIOLATED);
    ck_assert_ptr_nonnull(strstr(why, "different"));
    close_world();
}
END_TEST

START_TEST(test_stock_conserved_both_ways)
{
    open_world(SHOP_SINGLE, MIRROR_ACK_BOTH);
    int64_t order = checkout(3, 4);
    ck_assert_int_eq(shop_order_set_status(s->nodes[0].shop, order, ORDER_CANCELLED), 0);
    checkout(3, 2);
    ck_assert_int_eq(judge("stock-conserved"), SIM_CHECK_HOLDS);
    tamper(0, "UPDATE products SET stock = stock + 1 WHERE id = 3");
    ck_assert_int_eq(judge("stock-conserved"), SIM_CHECK_VIOLATED);
    ck_assert_ptr_nonnull(strstr(why, "product 3 on primary"));
    close_world();
}
END_TEST

START_TEST(test_order_totals_both_ways)
{
    open_world(SHOP_SINGLE, MIRROR_ACK_BOTH);
    int64_t order = checkout(2, 2);
    ck_assert_int_eq(judge("order-totals"), SIM_CHECK_HOLDS);
    char sql[96];
    snprintf(sql, sizeof(sql), "UPDATE orders SET total_cents = 1 WHERE id = %lld",
             (long long)order);
    tamper(0, sql);
    ck_assert_int_eq(judge("order-totals"), SIM_CHECK_VIOLATED);
    ck_assert_ptr_nonnull(strstr(why, "lines add up to 400"));
    close_world();
}
END_TEST

START_TEST(test_integrity_both_ways)
{
    open_world(SHOP_SINGLE, MIRROR_ACK_BOTH);
    ck_assert_int_eq(judge("integrity"), SIM_CHECK_HOLDS);
    s->integrity_failed = true;
    snprintf(s->integrity_why, sizeof(s->integrity_why), "integrity_check failed on primary");
    ck_assert_int_eq(judge("integrity"), SIM_CHECK_VIOLATED);
    ck_assert_str_eq(why, "integrity_check failed on primary");
    close_world();
}
END_TEST

START_TEST(test_read_your_writes_both_ways)
{
    open_world(SHOP_SINGLE, MIRROR_ACK_BOTH);
    ck_assert_int_eq(judge("read-your-writes"), SIM_CHECK_HOLDS);
    ck_assert_uint_eq(s->judged, 0); /* no read after an own write: unexercised */
    session_op(2, DRILL_OP_BROWSE, 3, 0, NULL);
    session_op(2, DRILL_OP_CART_ADD, 7, 0, NULL);
    session_op(3, DRILL_OP_SEARCH, 1, 0, NULL); /* another client: nothing to compare */
    session_op(2, DRILL_OP_BROWSE, 7, 0, NULL);
    ck_assert_int_eq(judge("read-your-writes"), SIM_CHECK_HOLDS);
    ck_assert_uint_eq(s->judged, 1);
    /* any kind of read, served by a copy behind the client's own write */
    session_op(2, DRILL_OP_SEARCH, 6, 0, NULL);
    ck_assert_int_eq(judge("read-your-writes"), SIM_CHECK_VIOLATED);
    ck_assert_ptr_nonnull(strstr(why, "client2's search at"));
    ck_assert_ptr_nonnull(strstr(why, "op #5"));
    ck_assert_ptr_nonnull(strstr(why, "position 6"));
    ck_assert_ptr_nonnull(strstr(why, "cart-add (op #2"));
    ck_assert_ptr_nonnull(strstr(why, "position 7"));
    close_world();
}
END_TEST

/* An order list whose position claims an order it does not show lied. */
START_TEST(test_read_your_writes_judges_what_an_order_list_showed)
{
    open_world(SHOP_SINGLE, MIRROR_ACK_BOTH);
    struct sim_op *w = session_op(1, DRILL_OP_CHECKOUT, 110, 0, NULL);
    w->order_id = 9;
    /* the checkout completed before session_completed saw order_id: record it again */
    s->clients[1].checkout_count = 0;
    session_completed(s, w);
    int64_t with[] = {9, 4}, without[] = {4};
    session_op(1, DRILL_OP_ORDER_STATUS, 120, 2, with);
    ck_assert_int_eq(judge("read-your-writes"), SIM_CHECK_HOLDS);
    struct sim_op *r = session_op(1, DRILL_OP_ORDER_STATUS, 120, 1, without);
    ck_assert(r->session & SIM_SESSION_LIED);
    ck_assert_int_eq(judge("read-your-writes"), SIM_CHECK_VIOLATED);
    ck_assert_ptr_nonnull(strstr(why, "claimed position 120 but did not show order 9"));
    ck_assert_ptr_nonnull(strstr(why, "position 110 (op #1"));
    close_world();
}
END_TEST

START_TEST(test_monotonic_reads_both_ways)
{
    open_world(SHOP_SINGLE, MIRROR_ACK_BOTH);
    session_op(1, DRILL_OP_BROWSE, 4, 0, NULL);
    session_op(1, DRILL_OP_ORDER_STATUS, 8, 0, NULL);
    session_op(2, DRILL_OP_BROWSE, 2, 0, NULL); /* another client */
    session_op(1, DRILL_OP_USER_UPDATE, 9, 0, NULL);
    session_op(1, DRILL_OP_SEARCH, 8, 0, NULL);
    ck_assert_int_eq(judge("monotonic-reads"), SIM_CHECK_HOLDS);
    ck_assert_uint_eq(s->judged, 2);
    session_op(1, DRILL_OP_BROWSE, 5, 0, NULL);
    ck_assert_int_eq(judge("monotonic-reads"), SIM_CHECK_VIOLATED);
    ck_assert_ptr_nonnull(strstr(why, "at position 8, then its browse"));
    ck_assert_ptr_nonnull(strstr(why, "at position 5"));
    close_world();
}
END_TEST

/* After a failover, positions of the new history do not compare with the old. */
START_TEST(test_session_positions_of_another_lineage_are_not_compared)
{
    open_world(SHOP_SINGLE, MIRROR_ACK_BOTH);
    session_op(1, DRILL_OP_CART_ADD, 50, 0, NULL);
    struct sim_op *r = add_op(1, DRILL_OP_BROWSE, SIM_PENDING, 1000, -1);
    session_issued(s, r);
    session_read_at(s, r, 1, 3, NULL, 0, false);
    r->outcome = SIM_OK;
    r->complete_us = 1010;
    session_completed(s, r);
    ck_assert(r->session & SIM_SESSION_W_OTHER);
    ck_assert_int_eq(judge("read-your-writes"), SIM_CHECK_HOLDS);
    ck_assert_uint_eq(s->judged, 0);
    ck_assert_ptr_nonnull(strstr(why, "another copy's history"));
    close_world();
}
END_TEST

START_TEST(test_converges_only_after_a_drain)
{
    open_world(SHOP_MIRROR, MIRROR_ACK_BOTH);
    ck_assert_int_eq(judge("converges"), SIM_CHECK_SKIPPED);
    s->drained = true;
    ck_assert_int_eq(judge("converges"), SIM_CHECK_HOLDS);
    s->drain_failed = true;
    snprintf(s->drain_why, sizeof(s->drain_why), "copy mirror is still 3 change(s) behind");
    ck_assert_int_eq(judge("converges"), SIM_CHECK_VIOLATED);
    ck_assert_ptr_nonnull(strstr(why, "3 change(s) behind"));
    close_world();
}
END_TEST

/* Every invariant of the catalog has a checker, except those listed here as
 * not built; a stale list fails too. */
START_TEST(test_unbuilt_invariants_have_no_checker)
{
    static const char *const unbuilt[] = {NULL}; /* names, NULL-terminated */
    size_t count = 0;
    const struct invariant_info *cat = invariant_catalog(&count);
    for (size_t i = 0; i < count; i++) {
        bool listed = false;
        for (size_t j = 0; unbuilt[j] != NULL; j++)
            listed = listed || strcmp(cat[i].name, unbuilt[j]) == 0;
        if (listed)
            ck_assert_msg(sim_checker_lookup(cat[i].name) == NULL, "%s is built now", cat[i].name);
        else
            ck_assert_msg(sim_checker_lookup(cat[i].name) != NULL, "%s has no checker",
                          cat[i].name);
    }
    ck_assert_ptr_null(sim_checker_lookup("no-such-invariant"));
}
END_TEST

int main(void)
{
    Suite *su = suite_create("checkers");
    TCase *tc = tcase_create("both-ways");
    tcase_add_test(tc, test_no_lost_acks_both_ways);
    tcase_add_test(tc, test_mirror_identical_both_ways);
    tcase_add_test(tc, test_stock_conserved_both_ways);
    tcase_add_test(tc, test_order_totals_both_ways);
    tcase_add_test(tc, test_integrity_both_ways);
    tcase_add_test(tc, test_read_your_writes_both_ways);
    tcase_add_test(tc, test_read_your_writes_judges_what_an_order_list_showed);
    tcase_add_test(tc, test_monotonic_reads_both_ways);
    tcase_add_test(tc, test_session_positions_of_another_lineage_are_not_compared);
    tcase_add_test(tc, test_converges_only_after_a_drain);
    tcase_add_test(tc, test_unbuilt_invariants_have_no_checker);
    suite_add_tcase(su, tc);
    return check_run(su);
}
