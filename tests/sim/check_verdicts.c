/*
 * check_verdicts.c — verdicts you can trust (DESIGN.md §4), end to end from
 * drill text: an expectation whose checker judged nothing is `unexercised`
 * and not met (each case here passed vacuously before witnesses existed);
 * the fault ledger counts, per fault statement, how often the point was
 * reached and how often it fired.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"
#include "tests/check_run.h"

/* Runs a drill given as text with a seed; the report in rep. */
static void run_seed(const char *text, uint64_t seed, struct report_run *rep)
{
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(errs);
    int err = drill_parse_text("t.drill", text, strlen(text), d, errs);
    if (err)
        drill_errors_print("t.drill", errs, stderr);
    ck_assert_int_eq(err, 0);
    struct sim_options opt = {.seed = seed, .seed_given = true};
    char msg[REPORT_ERR_MAX];
    err = sim_run(d, &opt, rep, msg);
    ck_assert_msg(err == 0, "sim_run: %s", msg);
    free(errs);
    free(d);
}

/* Every naive drill of the catalog: an expectation seen violated judged what it
 * found broken, so its witnesses are never 0 ("0 acknowledged writes looked up"
 * beside 20 lost writes was a count left behind by an early return). */
START_TEST(test_a_violation_counts_what_it_judged)
{
    static const char *const naive[] = {
        "mirror-early-ack-drift",         "mirror-early-ack-stale-reads",
        "async-outbox-off-failover",      "async-failover-loses-lag-window",
        "offline-separate-queue-crash",   "cluster-naive-cache",
        "cluster-propagate-before-commit",
    };
    size_t violated = 0;
    for (size_t i = 0; i < sizeof(naive) / sizeof(naive[0]); i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s.drill", SCENARIOS_DIR, naive[i]);
        struct drill *d = calloc(1, sizeof(*d));
        struct drill_errors *errs = calloc(1, sizeof(*errs));
        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(errs);
        ck_assert_msg(drill_parse_file(path, d, errs) == 0, "%s does not parse", path);
        struct sim_options opt = {0};
        struct report_run rep;
        char msg[REPORT_ERR_MAX];
        ck_assert_msg(sim_run(d, &opt, &rep, msg) == 0, "%s: %s", naive[i], msg);
        for (size_t k = 0; k < rep.expectation_count; k++) {
            const struct report_expectation *x = &rep.expectations[k];
            if (!x->observed_violated)
                continue;
            violated++;
            ck_assert_msg(x->witnesses > 0, "%s: %s violated with 0 witnesses: %s", naive[i],
                          x->invariant, x->explanation);
        }
        sim_result_release(&rep);
        free(errs);
        free(d);
    }
    ck_assert_uint_ge(violated, sizeof(naive) / sizeof(naive[0])); /* each shows its bug */
}
END_TEST

static void run_text(const char *text, struct report_run *rep)
{
    run_seed(text, 1, rep);
}

static const struct report_expectation *expectation(const struct report_run *rep,
                                                    const char *invariant)
{
    for (size_t i = 0; i < rep->expectation_count; i++)
        if (strcmp(rep->expectations[i].invariant, invariant) == 0)
            return &rep->expectations[i];
    ck_abort_msg("no expectation %s", invariant);
    return NULL;
}

static void assert_unexercised(const struct report_run *rep, const char *invariant,
                               const char *lacked)
{
    const struct report_expectation *x = expectation(rep, invariant);
    ck_assert_msg(x->unexercised && !x->ok && !x->observed_violated,
                  "%s: expected unexercised, got %s (%llu witnesses): %s", invariant,
                  report_observed(x), (unsigned long long)x->witnesses, x->explanation);
    ck_assert_uint_eq(x->witnesses, 0);
    ck_assert_msg(strncmp(x->explanation, "unexercised: ", 13) == 0, "%s", x->explanation);
    ck_assert_msg(strstr(x->explanation, lacked) != NULL, "%s: \"%s\" not in: %s", invariant,
                  lacked, x->explanation);
    ck_assert(!rep->pass);
}

static void assert_held(const struct report_run *rep, const char *invariant)
{
    const struct report_expectation *x = expectation(rep, invariant);
    ck_assert_msg(x->ok && !x->unexercised && x->witnesses > 0, "%s: %s", invariant,
                  x->explanation);
    ck_assert_msg(strncmp(x->explanation, "held over ", 10) == 0, "%s", x->explanation);
}

/* A browse-only workload writes nothing: nothing could be lost or drift. */
START_TEST(test_browse_only_mirror_is_unexercised)
{
    struct report_run rep;
    run_text("drill \"browse only\"\n"
             "topology mirror\n"
             "duration 2s\n"
             "workload w clients=2 rate=100/s mix=browse:1\n"
             "at 1s checkpoint\n"
             "expect no-lost-acks\n"
             "expect mirror-identical\n"
             "expect stock-conserved\n"
             "expect order-totals\n"
             "expect integrity\n",
             &rep);
    assert_unexercised(&rep, "no-lost-acks", "no write that leaves a row");
    assert_unexercised(&rep, "mirror-identical", "no write was acknowledged");
    assert_unexercised(&rep, "stock-conserved", "stock never moved");
    assert_unexercised(&rep, "order-totals", "no order was placed");
    assert_held(&rep, "integrity"); /* the databases were checked all the same */
    sim_result_release(&rep);
}
END_TEST

/* The same drill with checkouts judges real writes. */
START_TEST(test_a_writing_mirror_holds_over_its_writes)
{
    struct report_run rep;
    run_text("drill \"writes\"\n"
             "topology mirror\n"
             "duration 2s\n"
             "workload w clients=2 rate=100/s mix=browse:1,cart:2,checkout:2\n"
             "at 1s checkpoint\n"
             "expect no-lost-acks\n"
             "expect mirror-identical\n"
             "expect stock-conserved\n"
             "expect order-totals\n",
             &rep);
    assert_held(&rep, "no-lost-acks");
    assert_held(&rep, "mirror-identical");
    assert_held(&rep, "stock-conserved");
    assert_held(&rep, "order-totals");
    ck_assert(rep.pass);
    ck_assert_ptr_nonnull(
        strstr(expectation(&rep, "no-lost-acks")->explanation, "acknowledged writes looked up"));
    sim_result_release(&rep);
}
END_TEST

/* A cluster with no workload: nothing propagated, nothing balanced. */
START_TEST(test_idle_cluster_is_unexercised)
{
    struct report_run rep;
    run_text("drill \"idle cluster\"\n"
             "topology cluster replicas=2\n"
             "duration 2s\n"
             "at 1s drain within=1s\n"
             "expect no-echo\n"
             "expect lb-balanced\n"
             "expect converges\n",
             &rep);
    assert_unexercised(&rep, "no-echo", "no change was propagated");
    assert_unexercised(&rep, "lb-balanced", "two or more healthy replicas");
    assert_unexercised(&rep, "converges", "nothing was written");
    sim_result_release(&rep);
}
END_TEST

/* One replica: there is nothing to balance. */
START_TEST(test_lb_balanced_with_one_replica_is_unexercised)
{
    struct report_run rep;
    run_text("drill \"one replica\"\n"
             "topology cluster replicas=1\n"
             "duration 2s\n"
             "workload w clients=2 rate=100/s mix=browse:1,cart:1\n"
             "expect lb-balanced\n",
             &rep);
    assert_unexercised(&rep, "lb-balanced", "1 replica");
    sim_result_release(&rep);
}
END_TEST

/* A failover before the secondary applied anything: no prefix was judged,
 * and the fenced primary leaves nothing to converge with. */
START_TEST(test_async_after_an_early_failover_is_unexercised)
{
    struct report_run rep;
    run_text("drill \"early failover\"\n"
             "topology async delay=2s\n"
             "duration 3s\n"
             "workload w clients=2 rate=100/s mix=cart:1,checkout:1 until=2s\n"
             "at 500ms failover secondary\n"
             "at 2s drain within=1s\n"
             "expect replica-prefix\n"
             "expect converges\n",
             &rep);
    assert_unexercised(&rep, "replica-prefix", "applied no change before the failover");
    assert_unexercised(&rep, "converges", "fenced");
    sim_result_release(&rep);
}
END_TEST

/* Offline sync with a browse-only workload: nothing to sync. */
START_TEST(test_offline_with_nothing_to_sync_is_unexercised)
{
    struct report_run rep;
    run_text("drill \"nothing to sync\"\n"
             "topology offline interval=500ms\n"
             "duration 3s\n"
             "workload w clients=2 rate=50/s mix=browse:1 until=2s\n"
             "at 2s drain within=1s\n"
             "expect outbox-accounted\n"
             "expect converges\n"
             "expect no-lost-acks\n",
             &rep);
    assert_unexercised(&rep, "outbox-accounted", "no local change");
    assert_unexercised(&rep, "converges", "nothing was written");
    assert_unexercised(&rep, "no-lost-acks", "no write that leaves a row");
    sim_result_release(&rep);
}
END_TEST

/* The fault ledger: per statement, reached and fired; a statement that
 * never fired is listed with fired 0. */
START_TEST(test_fault_ledger_counts_reached_and_fired_per_statement)
{
    struct report_run rep;
    run_text("drill \"ledger\"\n"
             "topology mirror policy=degrade\n"
             "duration 3s\n"
             "workload w clients=2 rate=100/s mix=cart:1,checkout:1\n"
             "at 1s fault disk/mirror/write p=0.5 for=1s\n"
             "at 1s fault disk/primary/fsync after=1000000 for=1s\n"
             "expect no-lost-acks\n",
             &rep);
    ck_assert_uint_eq(rep.fault_count, 2);
    const struct report_fault *f = &rep.faults[0];
    ck_assert_str_eq(f->name, "disk/mirror/write");
    ck_assert_int_eq(f->line, 5);
    ck_assert_int_eq(f->armed_at_us, 1000000);
    ck_assert_int_eq(f->healed_at_us, 2000000);
    ck_assert_uint_gt(f->fired, 0);
    ck_assert_uint_gt(f->reached, f->fired); /* p=0.5: some calls passed */
    f = &rep.faults[1];
    ck_assert_str_eq(f->name, "disk/primary/fsync");
    ck_assert_int_eq(f->line, 6);
    ck_assert_uint_gt(f->reached, 0);
    ck_assert_uint_eq(f->fired, 0); /* reached, never fired */
    sim_result_release(&rep);
}
END_TEST

/* Reads of every kind are judged by position: a browse served from a cache
 * entry older than the client's own checkout breaks read-your-writes even
 * when the workload never lists orders (it held vacuously before). */
START_TEST(test_naive_cache_breaks_read_your_writes_on_browse)
{
    struct report_run rep;
    run_text("drill \"naive cache, browse\"\n"
             "topology cluster replicas=2 cache=naive ttl=5s\n"
             "duration 4s\n"
             "products 3\n"
             "workload w clients=3 rate=120/s mix=browse:50,cart:25,checkout:25\n"
             "expect read-your-writes violated\n"
             "expect monotonic-reads\n",
             &rep);
    const struct report_expectation *x = expectation(&rep, "read-your-writes");
    ck_assert_msg(x->ok && x->observed_violated, "%s", x->explanation);
    ck_assert_ptr_nonnull(strstr(x->explanation, "'s browse at"));
    sim_result_release(&rep);
}
END_TEST

/* The correct cache refuses entries older than the session: it holds over
 * every kind of read. */
START_TEST(test_correct_cache_holds_read_your_writes_on_browse)
{
    struct report_run rep;
    run_text("drill \"correct cache, browse\"\n"
             "topology cluster replicas=2 cache=on ttl=5s\n"
             "duration 4s\n"
             "products 3\n"
             "workload w clients=3 rate=120/s mix=browse:40,search:10,cart:25,checkout:25\n"
             "expect read-your-writes\n"
             "expect monotonic-reads\n",
             &rep);
    assert_held(&rep, "read-your-writes");
    assert_held(&rep, "monotonic-reads");
    sim_result_release(&rep);
}
END_TEST

/* A client with more orders than one list shows is still judged (there was
 * a silent stop at 256 orders): ack=early's stale reads show at 14 s as they
 * do at 2 s. */
START_TEST(test_late_stale_reads_still_show)
{
    struct report_run rep;
    run_text("drill \"late stale reads\"\n"
             "topology mirror ack=early\n"
             "duration 18s\n"
             "products 8 stock=200 price=2..30\n"
             "workload w clients=4 rate=120/s mix=cart:35,checkout:30,orders:35 until=17s\n"
             "at 14s fault disk/mirror/write p=0.5 for=2s\n"
             "at 16s fault disk/primary/read p=0.5 for=1s\n"
             "expect read-your-writes violated\n",
             &rep);
    const struct report_expectation *x = expectation(&rep, "read-your-writes");
    ck_assert_msg(x->ok && x->observed_violated, "%s", x->explanation);
    sim_result_release(&rep);
}
END_TEST

/* ---- no false alarms ------------------------------------------------------ */

/* policy=degrade with the PRIMARY's disk failing: the mirror leads and
 * acknowledges, the primary is behind on purpose until resynced. */
START_TEST(test_degrade_with_the_primary_disk_failing_loses_nothing)
{
    static const char text[] = "drill \"degrade, primary disk full\"\n"
                               "topology mirror policy=degrade\n"
                               "duration 8s\n"
                               "workload w clients=4 rate=150/s mix=browse:40,cart:30,checkout:30 "
                               "until=6s\n"
                               "at 1s fault disk/primary/full for=2s\n"
                               "at 2s checkpoint\n"
                               "at 6s drain within=2s\n"
                               "expect no-lost-acks\n"
                               "expect mirror-identical\n"
                               "expect converges\n";
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct report_run rep;
        run_seed(text, seed, &rep);
        assert_held(&rep, "no-lost-acks");
        assert_held(&rep, "mirror-identical");
        assert_held(&rep, "converges");
        sim_result_release(&rep);
    }
}
END_TEST

/* An injected read error during PRAGMA integrity_check is not corruption. */
/* strict, its mirror's disk failing to the end: every evaluation saw the
 * pair failed with the fault armed, so mirror-identical judged nothing and
 * says so (it is neither a pass nor a false alarm). */
START_TEST(test_strict_pair_failed_under_a_fault_is_never_a_silent_pass)
{
    struct report_run rep;
    run_text("drill \"strict, the mirror's disk fails for good\"\n"
             "topology mirror policy=strict\n"
             "duration 2s\n"
             "products 3 stock=50\n"
             "workload w clients=2 rate=50/s mix=cart:1\n"
             "at 500ms fault disk/mirror/write\n"
             "at 1s checkpoint\n"
             "expect mirror-identical\n",
             &rep);
    assert_unexercised(&rep, "mirror-identical",
                       "2 evaluation(s) skipped while the pair reported failed with a disk fault "
                       "armed");
    sim_result_release(&rep);
}
END_TEST

/* The same fault healed: the platform repairs the pair on its own (no drain,
 * the clients only read after the heal), the copies are compared, and the
 * verdict counts the checkpoint it skipped during the fault. */
START_TEST(test_strict_pair_is_judged_once_repaired_and_counts_what_it_skipped)
{
    struct report_run rep;
    run_text("drill \"strict, the mirror's disk fails for a while\"\n"
             "topology mirror policy=strict\n"
             "duration 2s\n"
             "products 3 stock=50\n"
             "workload w clients=2 rate=50/s mix=cart:1 until=1s\n"
             "workload r clients=1 rate=20/s mix=browse:1\n"
             "at 500ms fault disk/mirror/write for=700ms\n"
             "at 1s checkpoint\n"
             "at 1.9s checkpoint\n"
             "expect mirror-identical\n",
             &rep);
    assert_held(&rep, "mirror-identical");
    const struct report_expectation *x = expectation(&rep, "mirror-identical");
    ck_assert_msg(strstr(x->explanation, "1 evaluation(s) skipped while a disk fault of the pair "
                                         "was armed") != NULL,
                  "%s", x->explanation);
    sim_result_release(&rep);
}
END_TEST

START_TEST(test_integrity_is_judged_without_injected_faults)
{
    static const char text[] = "drill \"read faults\"\n"
                               "topology single\n"
                               "duration 4s\n"
                               "workload w clients=3 rate=120/s mix=browse:40,cart:30,checkout:30\n"
                               "at 1s fault disk/primary/read p=0.3 for=2s\n"
                               "at 1500ms checkpoint\n"
                               "at 2s crash primary\n"
                               "at 2500ms restart primary\n"
                               "at 2800ms checkpoint\n"
                               "expect integrity\n";
    for (uint64_t seed = 1; seed <= 5; seed++) {
        struct report_run rep;
        run_seed(text, seed, &rep);
        assert_held(&rep, "integrity");
        sim_result_release(&rep);
    }
}
END_TEST

/* The drain brings back a node whose restart failed (strict, its mirror out
 * of reach), and a failed restart leaves no host path in the trace. */
START_TEST(test_drain_reopens_a_node_whose_restart_failed)
{
    static const char text[] = "drill \"restart fails\"\n"
                               "topology mirror policy=strict\n"
                               "duration 5s\n"
                               "workload w clients=2 rate=100/s mix=cart:50,checkout:50 until=3s\n"
                               "at 1s partition primary | mirror\n"
                               "at 1500ms crash primary\n"
                               "at 2s restart primary\n"
                               "at 3s drain within=1s\n"
                               "expect converges\n"
                               "expect no-lost-acks\n";
    struct report_run a, b;
    run_seed(text, 1, &a);
    ck_assert_ptr_nonnull(strstr(a.trace, "cannot open the shop (restart)"));
    assert_held(&a, "converges");
    assert_held(&a, "no-lost-acks");
    ck_assert_ptr_null(strstr(a.trace, "/tmp"));
    run_seed(text, 1, &b);
    ck_assert_str_eq(a.trace_sha256, b.trace_sha256);
    sim_result_release(&a);
    sim_result_release(&b);
}
END_TEST

/* A drain whose bound ends exactly at the end of the run keeps its verdict:
 * here a 2 s WAN cannot catch up within the 1 s bound, and it says so. */
START_TEST(test_a_drain_ending_at_the_end_is_judged)
{
    struct report_run rep;
    run_text("drill \"drain at the end\"\n"
             "topology async delay=2s\n"
             "duration 4s\n"
             "workload w clients=2 rate=100/s mix=cart:50,checkout:50 until=3s\n"
             "at 3s drain within=1s\n"
             "expect converges violated\n",
             &rep);
    const struct report_expectation *x = expectation(&rep, "converges");
    ck_assert_msg(x->ok && x->observed_violated, "%s", x->explanation);
    ck_assert_ptr_nonnull(strstr(x->explanation, "did not finish by 4.000s"));
    sim_result_release(&rep);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("verdicts");
    TCase *tc = tcase_create("unexercised");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_browse_only_mirror_is_unexercised);
    tcase_add_test(tc, test_a_writing_mirror_holds_over_its_writes);
    tcase_add_test(tc, test_idle_cluster_is_unexercised);
    tcase_add_test(tc, test_lb_balanced_with_one_replica_is_unexercised);
    tcase_add_test(tc, test_async_after_an_early_failover_is_unexercised);
    tcase_add_test(tc, test_offline_with_nothing_to_sync_is_unexercised);
    tcase_add_test(tc, test_naive_cache_breaks_read_your_writes_on_browse);
    tcase_add_test(tc, test_correct_cache_holds_read_your_writes_on_browse);
    tcase_add_test(tc, test_late_stale_reads_still_show);
    suite_add_tcase(su, tc);
    TCase *alarms = tcase_create("no false alarms");
    tcase_set_timeout(alarms, 300);
    tcase_add_test(alarms, test_degrade_with_the_primary_disk_failing_loses_nothing);
    tcase_add_test(alarms, test_integrity_is_judged_without_injected_faults);
    tcase_add_test(alarms, test_strict_pair_failed_under_a_fault_is_never_a_silent_pass);
    tcase_add_test(alarms, test_strict_pair_is_judged_once_repaired_and_counts_what_it_skipped);
    tcase_add_test(alarms, test_drain_reopens_a_node_whose_restart_failed);
    tcase_add_test(alarms, test_a_drain_ending_at_the_end_is_judged);
    tcase_add_test(alarms, test_a_violation_counts_what_it_judged);
    suite_add_tcase(su, alarms);
    TCase *ledger = tcase_create("ledger");
    tcase_set_timeout(ledger, 120);
    tcase_add_test(ledger, test_fault_ledger_counts_reached_and_fired_per_statement);
    suite_add_tcase(su, ledger);
    return check_run(su);
}
