/*
 * check_sim.c — the simulator end to end: the event queue's (time,
 * sequence) order; determinism (the same drill and seed give the same trace
 * byte for byte, another seed another trace); and every drill of the
 * catalog (scenarios/) with its expected verdict, each `violated`
 * expectation really observed.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/sim.h"
#include "tests/check_run.h"

#ifndef SCENARIOS_DIR
#error "SCENARIOS_DIR must name the drill catalog"
#endif

static struct drill *load(const char *path)
{
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(errs);
    int err = drill_parse_file(path, d, errs);
    if (err)
        drill_errors_print(path, errs, stderr);
    ck_assert_msg(err == 0, "%s does not parse", path);
    free(errs);
    return d;
}

static void run(const struct drill *d, uint64_t seed, struct report_run *rep)
{
    struct sim_options opt = {.seed = seed, .seed_given = true};
    char msg[REPORT_ERR_MAX];
    int err = sim_run(d, &opt, rep, msg);
    ck_assert_msg(err == 0, "sim_run: %s", msg);
}

START_TEST(test_queue_orders_by_time_then_insertion)
{
    struct sim_queue q = {0};
    int64_t times[] = {50, 10, 50, 30, 10, 50, 0};
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(sim_queue_push(&q, times[i], SIM_EV_END, i, 0), 0);
    int expect[] = {6, 1, 4, 3, 0, 2, 5}; /* ties fire in the order queued */
    struct sim_event ev;
    for (int i = 0; i < 7; i++) {
        ck_assert(sim_queue_pop(&q, &ev));
        ck_assert_int_eq(ev.a, expect[i]);
    }
    ck_assert(!sim_queue_pop(&q, &ev));
    /* Many random pushes come out sorted. */
    uint64_t x = 12345;
    for (int i = 0; i < 5000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ck_assert_int_eq(sim_queue_push(&q, (int64_t)(x >> 40) % 1000, SIM_EV_END, i, 0), 0);
    }
    int64_t last = -1;
    uint64_t last_seq = 0;
    while (sim_queue_pop(&q, &ev)) {
        ck_assert(ev.at_us > last || (ev.at_us == last && ev.seq > last_seq));
        last = ev.at_us;
        last_seq = ev.seq;
    }
    sim_queue_release(&q);
}
END_TEST

START_TEST(test_same_seed_same_trace_other_seed_other_trace)
{
    struct drill *d = load(SCENARIOS_DIR "/mirror-primary-disk-fails.drill");
    struct report_run a, b, c;
    run(d, 42, &a);
    run(d, 42, &b);
    run(d, 43, &c);
    ck_assert_uint_gt(a.trace_len, 1000);
    ck_assert_uint_eq(a.trace_len, b.trace_len);
    ck_assert(memcmp(a.trace, b.trace, a.trace_len) == 0);
    ck_assert_str_eq(a.trace_sha256, b.trace_sha256);
    ck_assert_str_ne(a.trace_sha256, c.trace_sha256);
    ck_assert_uint_eq(a.total_ops, b.total_ops);
    sim_result_release(&a);
    sim_result_release(&b);
    sim_result_release(&c);
    free(d);
}
END_TEST

/* A trace longer than what a run keeps in memory goes to a temporary file:
 * the same bytes in trace.log and the same hash. */
START_TEST(test_a_trace_spilled_to_a_file_is_the_same_trace)
{
    struct drill *d = load(SCENARIOS_DIR "/mirror-primary-disk-fails.drill");
    struct report_run mem, spilled;
    char msg[REPORT_ERR_MAX];
    struct sim_options o = {.seed = 42, .seed_given = true};
    ck_assert_int_eq(sim_run(d, &o, &mem, msg), 0);
    o.trace_memory = 4096;
    ck_assert_int_eq(sim_run(d, &o, &spilled, msg), 0);
    ck_assert_ptr_null(mem.trace_file);
    ck_assert_ptr_nonnull(spilled.trace_file); /* it did spill */
    ck_assert_ptr_null(spilled.trace);
    ck_assert_uint_gt(mem.trace_len, 4 * 4096);
    ck_assert_uint_eq(spilled.trace_len, mem.trace_len);
    ck_assert_str_eq(spilled.trace_sha256, mem.trace_sha256);
    char dir[] = "/tmp/faultdrill-spill-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(report_write_dir(&spilled, dir, msg), 0);
    char path[sizeof(dir) + 16];
    snprintf(path, sizeof(path), "%s/trace.log", dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *text = malloc(mem.trace_len + 1);
    ck_assert_uint_eq(fread(text, 1, mem.trace_len + 1, f), mem.trace_len);
    fclose(f);
    ck_assert(memcmp(text, mem.trace, mem.trace_len) == 0);
    free(text);
    const char *files[] = {"trace.log", "report.json", "report.md", "report.html"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    sim_result_release(&mem);
    sim_result_release(&spilled);
    free(d);
}
END_TEST

START_TEST(test_catalog_verdicts)
{
    DIR *dp = opendir(SCENARIOS_DIR);
    ck_assert_ptr_nonnull(dp);
    struct dirent *de;
    int drills = 0, violations_shown = 0;
    while ((de = readdir(dp)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 7 || strcmp(de->d_name + n - 6, ".drill") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", SCENARIOS_DIR, de->d_name);
        struct drill *d = load(path);
        ck_assert_msg(d->about_count > 0, "%s: a catalog drill tells a student what to watch",
                      path);
        struct report_run rep;
        run(d, d->seed, &rep);
        for (size_t i = 0; i < rep.expectation_count; i++) {
            const struct report_expectation *x = &rep.expectations[i];
            ck_assert_msg(x->ok, "%s: expect %s%s: %s", path, x->invariant,
                          x->expect_violated ? " violated" : "", x->explanation);
            ck_assert_msg(x->checks > 0 || x->expect_violated, "%s: %s never judged", path,
                          x->invariant);
            violations_shown += x->expect_violated && x->observed_violated;
        }
        for (size_t i = 0; i < rep.fault_count; i++)
            ck_assert_msg(rep.faults[i].fired > 0 || strncmp(rep.faults[i].name, "crash/", 6) == 0,
                          "%s: fault %s never fired: a drill statement that does nothing", path,
                          rep.faults[i].name);
        ck_assert_msg(rep.pass, "%s fails", path);
        ck_assert_uint_gt(rep.total_ops, 100);
        sim_result_release(&rep);
        free(d);
        drills++;
    }
    closedir(dp);
    ck_assert_int_ge(drills, 5);
    ck_assert_int_ge(violations_shown, 2); /* the naive mode's drill breaks what it says */
}
END_TEST

START_TEST(test_explicit_ops_run_beside_the_workload)
{
    static const char text[] = "drill \"Explicit operations\"\n"
                               "topology single\n"
                               "duration 3s\n"
                               "products 4 stock=10\n"
                               "users 2\n"
                               "workload w clients=2 rate=100/s mix=browse:1 until=2s\n"
                               "at 1s op cart-add client=client1 product=3 qty=4\n"
                               "at 1500ms op checkout client=client1\n"
                               "at 2s drain within=500ms\n"
                               "expect stock-conserved\n";
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(errs);
    int err = drill_parse_text("explicit.drill", text, sizeof(text) - 1, d, errs);
    if (err)
        drill_errors_print("explicit.drill", errs, stderr);
    ck_assert_int_eq(err, 0);
    struct report_run rep;
    run(d, 1, &rep);
    ck_assert(rep.pass);
    uint64_t browse = 0, cart = 0, checkout = 0;
    for (size_t i = 0; i < rep.op_count; i++) {
        if (strcmp(rep.ops[i].kind, "browse") == 0)
            browse = rep.ops[i].ok;
        if (strcmp(rep.ops[i].kind, "cart-add") == 0)
            cart = rep.ops[i].ok;
        if (strcmp(rep.ops[i].kind, "checkout") == 0)
            checkout = rep.ops[i].ok;
    }
    ck_assert_uint_eq(cart, 1);
    ck_assert_uint_eq(checkout, 1);
    ck_assert_uint_gt(browse, 150); /* both clients kept their loop for 2 s */
    ck_assert_ptr_nonnull(strstr(rep.trace, "ok: order 1, "));
    sim_result_release(&rep);
    free(errs);
    free(d);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("sim");
    TCase *tc = tcase_create("end-to-end");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_queue_orders_by_time_then_insertion);
    tcase_add_test(tc, test_same_seed_same_trace_other_seed_other_trace);
    tcase_add_test(tc, test_a_trace_spilled_to_a_file_is_the_same_trace);
    tcase_add_test(tc, test_catalog_verdicts);
    tcase_add_test(tc, test_explicit_ops_run_beside_the_workload);
    suite_add_tcase(su, tc);
    return check_run(su);
}
