/*
 * check_change.c — tests of platform/change.c, the change record the mirror
 * ships: its table descriptions match the real schema, a captured change
 * applied to an equal copy makes it equal, its inverse undoes it, and a
 * corrupt or divergent change is refused, never half-applied.
 * White-box: it includes platform/internal.h.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/internal.h"
#include "tests/platform/testenv.h"
#include "tests/check_run.h"

static struct testenv t;
static struct db a, b;
static char msg[SHOP_ERRMSG_MAX];

static void setup(void)
{
    testenv_init(&t);
    struct shop_copy ca = {.node = "primary", .path = t.primary_path};
    struct shop_copy cb = {.node = "mirror", .path = t.mirror_path};
    struct shop_config cfg = {.sync_full = false};
    ck_assert_int_eq(db_open(&a, &ca, &cfg, msg), 0);
    ck_assert_int_eq(db_open(&b, &cb, &cfg, msg), 0);
}

static void teardown(void)
{
    db_close(&a, false);
    db_close(&b, false);
    testenv_release(&t);
}

static int exec_body(struct db *d, void *arg)
{
    return db_exec(d, arg);
}

/* Runs sql on d in one transaction, capturing it into log. */
static void capture(struct db *d, const char *sql, struct change_log *log)
{
    ck_assert_int_eq(db_begin(d), 0);
    change_capture_start(d, log);
    int err = db_exec(d, sql);
    ck_assert_int_eq(change_capture_stop(d, log), 0);
    ck_assert_msg(err == 0, "%s: %s", sql, msg);
    ck_assert_int_eq(db_commit(d), 0);
}

static int apply(struct db *d, const struct change_log *log)
{
    int err = db_begin(d);
    if (!err)
        err = change_apply(d, log->data, log->len, 1);
    if (err)
        db_rollback(d);
    else
        err = db_commit(d);
    return err;
}

static void assert_equal(void)
{
    char ha[65], hb[65];
    ck_assert_int_eq(db_digest(&a, ha), 0);
    ck_assert_int_eq(db_digest(&b, hb), 0);
    ck_assert_str_eq(ha, hb);
}

static const char seed_sql[] =
    "INSERT INTO users VALUES (1, 'Ada', 'ada@x.org', 5);"
    "INSERT INTO products VALUES (1, 'Tea', 'green', 'drinks', 350, 10),"
    " (2, 'Cup', '', '', 900, 3);"
    "INSERT INTO carts VALUES (1, 1, 2);";

START_TEST(test_descriptions_match_schema)
{
    for (size_t i = 0; i < db_table_count; i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT name, pk FROM pragma_table_info('%s') ORDER BY cid",
                 db_tables[i].name);
        sqlite3_stmt *st = NULL;
        ck_assert_int_eq(sqlite3_prepare_v2(a.conn, sql, -1, &st, NULL), SQLITE_OK);
        int col = 0, pks = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            ck_assert_int_lt(col, db_tables[i].ncol);
            ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), db_tables[i].cols[col]);
            if (sqlite3_column_int(st, 1) > 0) {
                /* key columns come first, in key order */
                ck_assert_int_eq(sqlite3_column_int(st, 1), col + 1);
                pks++;
            }
            col++;
        }
        sqlite3_finalize(st);
        ck_assert_int_eq(col, db_tables[i].ncol);
        ck_assert_int_eq(pks, db_tables[i].npk);
    }
}
END_TEST

START_TEST(test_insert_update_delete_round_trip)
{
    struct change_log log = {0}, inv = {0};
    capture(&a, seed_sql, &log);
    ck_assert_int_eq(log.rows, 4);
    ck_assert_int_eq(apply(&b, &log), 0);
    assert_equal();
    char before[65];
    ck_assert_int_eq(db_digest(&a, before), 0);
    capture(&a,
            "UPDATE products SET stock = stock - 2, description = 'sencha' WHERE id = 1;"
            "UPDATE products SET price_cents = price_cents WHERE id = 2;" /* no change */
            "DELETE FROM carts WHERE user_id = 1;"
            "INSERT INTO orders VALUES (7, 1, 'pending', 700, 9);"
            "INSERT INTO order_lines VALUES (7, 1, 2, 350);",
            &log);
    ck_assert_int_eq(log.rows, 4); /* the no-op UPDATE is not a change */
    ck_assert_int_eq(apply(&b, &log), 0);
    assert_equal();
    /* The inverse, applied to both, brings back the state before. */
    ck_assert_int_eq(change_invert(log.data, log.len, &inv), 0);
    ck_assert_int_eq(inv.rows, 4);
    ck_assert_int_eq(apply(&a, &inv), 0);
    ck_assert_int_eq(apply(&b, &inv), 0);
    assert_equal();
    char after[65];
    ck_assert_int_eq(db_digest(&a, after), 0);
    ck_assert_str_eq(before, after);
    change_log_release(&log);
    change_log_release(&inv);
}
END_TEST

START_TEST(test_divergent_copy_is_refused_whole)
{
    struct change_log log = {0};
    capture(&a, seed_sql, &log);
    ck_assert_int_eq(apply(&b, &log), 0);
    /* The mirror's row differs from what the change expects. */
    ck_assert_int_eq(db_write(&b, exec_body, "UPDATE products SET stock = 9 WHERE id = 1"), 0);
    char before[65];
    ck_assert_int_eq(db_digest(&b, before), 0);
    capture(&a,
            "INSERT INTO users VALUES (2, 'Bea', 'bea@x.org', 6);"
            "UPDATE products SET stock = stock - 1 WHERE id = 1;",
            &log);
    ck_assert_int_eq(apply(&b, &log), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(msg, "diverged"));
    char after[65];
    ck_assert_int_eq(db_digest(&b, after), 0);
    ck_assert_str_eq(before, after); /* the user insert was rolled back too */
    /* An insert of a row that is already there is divergence as well. */
    capture(&a, "INSERT INTO users VALUES (3, 'Cy', 'cy@x.org', 7);", &log);
    ck_assert_int_eq(apply(&b, &log), 0);
    ck_assert_int_eq(apply(&b, &log), -EBADMSG);
    change_log_release(&log);
}
END_TEST

START_TEST(test_corrupt_change_is_refused)
{
    struct change_log log = {0};
    capture(&a, seed_sql, &log);
    for (size_t cut = 1; cut < log.len; cut += 7)
        ck_assert_int_eq(apply(&b, &(struct change_log){.data = log.data, .len = cut}),
                         -EBADMSG);
    uint8_t bad[6] = {99, SQLITE_INSERT, 0, 0, 0, 0}; /* table 99 */
    ck_assert_int_eq(apply(&b, &(struct change_log){.data = bad, .len = sizeof(bad)}), -EBADMSG);
    struct change_log inv = {0};
    ck_assert_int_eq(change_invert(bad, sizeof(bad), &inv), -EBADMSG);
    char h[65];
    ck_assert_int_eq(db_digest(&b, h), 0);
    change_log_release(&log);
    change_log_release(&inv);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("change");
    TCase *tc = tcase_create("records");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_descriptions_match_schema);
    tcase_add_test(tc, test_insert_update_delete_round_trip);
    tcase_add_test(tc, test_divergent_copy_is_refused_whole);
    tcase_add_test(tc, test_corrupt_change_is_refused);
    suite_add_tcase(su, tc);
    return check_run(su);
}
