/*
 * check_drill.c — tests sim/drill.c, sim/invariants.c and sim/explain.c: the
 * drill language of DESIGN.md §4. A drill using every verb must parse to
 * exact values; each class of mistake must be reported at its line and
 * column with its message, and all mistakes of a file at once; explain must
 * say the key sentences. Depends on libsim's drill part, libfaults' catalog
 * and Check; the sample drills are under DRILLS_DIR.
 */
#include "sim/drill.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tests/check_run.h"

#ifndef DRILLS_DIR
#error "DRILLS_DIR must name tests/sim/drills"
#endif

#define S_US  INT64_C(1000000)
#define MS_US INT64_C(1000)

static struct drill *d;
static struct drill_errors errs;

static void setup(void)
{
    d = calloc(1, sizeof *d);
    ck_assert_ptr_nonnull(d);
    memset(&errs, 0, sizeof errs);
}

static void teardown(void)
{
    free(d);
    d = NULL;
}

static int parse(const char *text)
{
    return drill_parse_text("t.drill", text, strlen(text), d, &errs);
}

/* Fails the test with every error, so a broken drill says why. */
static void assert_parses(int rc)
{
    if (rc != 0 || errs.count != 0) {
        drill_errors_print("drill", &errs, stderr);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(errs.count, 0);
}

/* ---- The full drill ----------------------------------------------------- */

START_TEST(full_drill_header_parses_to_exact_values)
{
    assert_parses(drill_parse_file(DRILLS_DIR "/full.drill", d, &errs));
    ck_assert_str_eq(d->name, "full");
    ck_assert_str_eq(d->file, DRILLS_DIR "/full.drill");
    ck_assert_str_eq(d->title, "Primary disk fails during checkout");
    ck_assert_uint_eq(d->about_count, 2);
    ck_assert_str_eq(d->about[1], "A second line, with a # that is not a comment.");
    const struct drill_topology *t = &d->topology;
    ck_assert_uint_eq(t->components, DRILL_MIRROR | DRILL_ASYNC);
    ck_assert_int_eq(t->policy, MIRROR_DEGRADE);
    ck_assert_int_eq(t->ack, MIRROR_ACK_EARLY);
    ck_assert(t->sync_normal);
    ck_assert_int_eq(t->async_delay_us, 250 * MS_US);
    ck_assert_int_eq(t->async_batch, 20);
    ck_assert(!t->outbox_off);
    ck_assert_int_eq(t->latency_us, 2 * MS_US);
    ck_assert_int_eq(t->jitter_us, 500);
    ck_assert_uint_eq(d->seed, 42);
    ck_assert_int_eq(d->duration_us, 30 * S_US);
    ck_assert_int_eq(d->products, 20);
    ck_assert_int_eq(d->product_stock, 50);
    ck_assert_int_eq(d->price_min_cents, 499);
    ck_assert_int_eq(d->price_max_cents, 12000);
    ck_assert_int_eq(d->users, 8);
}
END_TEST

START_TEST(full_drill_workloads_number_their_clients)
{
    assert_parses(drill_parse_file(DRILLS_DIR "/full.drill", d, &errs));
    ck_assert_uint_eq(d->workload_count, 2);
    const struct drill_workload *w = &d->workloads[0];
    ck_assert_str_eq(w->name, "shoppers");
    ck_assert_int_eq(w->clients, 8);
    ck_assert_int_eq(w->first_client, 1);
    ck_assert(w->rate_per_s == 200.0);
    ck_assert_uint_eq(w->mix[DRILL_OP_BROWSE], 50);
    ck_assert_uint_eq(w->mix[DRILL_OP_CART_ADD], 25); /* the alias "cart" */
    ck_assert_uint_eq(w->mix[DRILL_OP_CHECKOUT], 25);
    ck_assert_uint_eq(w->mix[DRILL_OP_SEARCH], 0);
    ck_assert_int_eq(w->until_us, 20 * S_US);
    w = &d->workloads[1];
    ck_assert_str_eq(w->name, "admins");
    ck_assert_int_eq(w->first_client, 9);
    ck_assert_int_eq(w->clients, 2);
    ck_assert(w->rate_per_s == 0.5);
    ck_assert_uint_eq(w->mix[DRILL_OP_USER_UPDATE], 1);  /* "user" */
    ck_assert_uint_eq(w->mix[DRILL_OP_ORDER_STATUS], 3); /* "orders" */
    ck_assert_int_eq(w->until_us, 30 * S_US);            /* defaults to the duration */
    ck_assert_int_eq(d->clients, 10);
}
END_TEST

START_TEST(full_drill_events_are_sorted_stably_by_time)
{
    static const struct {
        int64_t at_us;
        enum drill_action action;
        const char *name;
    } expected[] = {
        {1500 * MS_US, DRILL_FAULT, "disk/mirror/full"},
        {2 * S_US, DRILL_FAULT, "disk/primary/write"},
        {3 * S_US, DRILL_FAULT, "net/client9/primary/delay"},
        {4 * S_US, DRILL_FAULT, "crash/primary/mirror-between-commits"},
        {5 * S_US, DRILL_PARTITION, "partition"},
        {6 * S_US, DRILL_CRASH, "primary"}, /* same time: file order */
        {6 * S_US, DRILL_CRASH, "mirror"},
        {7 * S_US, DRILL_RESTART, "primary"},
        {8 * S_US, DRILL_HEAL, "partition"},
        {9 * S_US, DRILL_FAILOVER, "secondary"},
        {10 * S_US, DRILL_HEAL, "disk/primary/write"},
        {11 * S_US, DRILL_OP, "checkout"},
        {11 * S_US, DRILL_OP, "cart-add"},
        {12 * S_US, DRILL_CHECKPOINT, ""},
        {13 * S_US, DRILL_HEAL, "all"},
        {20 * S_US, DRILL_DRAIN, ""},
    };
    assert_parses(drill_parse_file(DRILLS_DIR "/full.drill", d, &errs));
    ck_assert_uint_eq(d->event_count, sizeof expected / sizeof expected[0]);
    for (size_t i = 0; i < d->event_count; i++) {
        ck_assert_int_eq(d->events[i].at_us, expected[i].at_us);
        ck_assert_int_eq(d->events[i].action, expected[i].action);
        ck_assert_str_eq(d->events[i].name, expected[i].name);
    }
    ck_assert_int_eq(d->events[5].line, 18);
    ck_assert_int_eq(d->events[5].col, 1);
}
END_TEST

START_TEST(full_drill_fault_specs_and_actions_carry_their_options)
{
    assert_parses(drill_parse_file(DRILLS_DIR "/full.drill", d, &errs));
    const struct drill_event *e = d->events;
    ck_assert_int_eq(e[0].spec.err, ENOSPC); /* errno=ENOSPC -> 28 */
    ck_assert_int_eq(e[0].spec.err, 28);
    ck_assert(e[0].err_given && !e[0].p_given);
    ck_assert(e[0].spec.p == 1.0);
    ck_assert_uint_eq(e[0].spec.count, 3);
    ck_assert_uint_eq(e[0].spec.after, 10);
    ck_assert_int_eq(e[0].for_us, 0);
    ck_assert(e[1].spec.p == 0.5 && e[1].p_given);
    ck_assert_int_eq(e[1].spec.err, EIO);
    ck_assert_int_eq(e[1].for_us, 3 * S_US);
    ck_assert_int_eq(e[2].spec.delay_us, 40 * MS_US);
    ck_assert_uint_eq(e[3].spec.count, 1); /* once */
    ck_assert_int_eq(e[4].side_count[0], 1);
    ck_assert_int_eq(e[4].side_count[1], 2);
    ck_assert_str_eq(e[4].side[0][0], "primary");
    ck_assert_str_eq(e[4].side[1][0], "secondary");
    ck_assert_str_eq(e[4].side[1][1], "mirror");
    ck_assert(!e[5].process && e[6].process);
    ck_assert_int_eq(e[8].heal, DRILL_HEAL_PARTITION);
    ck_assert_int_eq(e[10].heal, DRILL_HEAL_POINT);
    ck_assert_int_eq(e[14].heal, DRILL_HEAL_ALL);
    ck_assert_int_eq(e[11].op, DRILL_OP_CHECKOUT);
    ck_assert_int_eq(e[11].client, 2);
    ck_assert_int_eq(e[11].product, 0);
    ck_assert_int_eq(e[12].op, DRILL_OP_CART_ADD);
    ck_assert_int_eq(e[12].client, 10);
    ck_assert_int_eq(e[12].product, 3);
    ck_assert_int_eq(e[12].qty, 2);
    ck_assert_int_eq(e[15].within_us, 10 * S_US);
}
END_TEST

START_TEST(full_drill_expectations_keep_their_options)
{
    assert_parses(drill_parse_file(DRILLS_DIR "/full.drill", d, &errs));
    ck_assert_uint_eq(d->expect_count, 3);
    ck_assert_str_eq(d->expects[0].invariant, "no-lost-acks");
    ck_assert(!d->expects[0].violated);
    ck_assert_int_eq(d->expects[0].max, -1);
    ck_assert_str_eq(d->expects[1].invariant, "mirror-identical");
    ck_assert(d->expects[1].violated);
    ck_assert_str_eq(d->expects[2].invariant, "rpo-bounded");
    ck_assert_int_eq(d->expects[2].max, 50);
    ck_assert_int_eq(d->expects[2].line, 32);
}
END_TEST

START_TEST(a_title_alone_gives_the_documented_defaults)
{
    assert_parses(parse("drill \"Only a title\"\n"));
    ck_assert_str_eq(d->name, "t");
    ck_assert_uint_eq(d->topology.components, DRILL_SINGLE);
    ck_assert_int_eq(d->topology.policy, MIRROR_STRICT);
    ck_assert_int_eq(d->topology.ack, MIRROR_ACK_BOTH);
    ck_assert(!d->topology.sync_normal);
    ck_assert_int_eq(d->topology.async_delay_us, 100 * MS_US);
    ck_assert_int_eq(d->topology.async_batch, NODE_ASYNC_BATCH_CHANGES);
    ck_assert_int_eq(d->topology.sync_interval_us, S_US);
    ck_assert_int_eq(d->topology.retries, 5);
    ck_assert_int_eq(d->topology.replicas, 2);
    ck_assert_int_eq(d->topology.cache_ttl_us, 5 * S_US);
    ck_assert_int_eq(d->topology.latency_us, MS_US);
    ck_assert_uint_eq(d->seed, 1);
    ck_assert_int_eq(d->duration_us, 10 * S_US);
    ck_assert_int_eq(d->products, 10);
    ck_assert_int_eq(d->product_stock, 100);
    ck_assert_int_eq(d->price_min_cents, 100);
    ck_assert_int_eq(d->price_max_cents, 10000);
    ck_assert_int_eq(d->users, 4);
    ck_assert_int_eq(d->clients, 0);
}
END_TEST

/* ---- One mistake, one error --------------------------------------------- */

static const struct {
    const char *what;
    const char *text;
    int line, col;
    const char *msg;
} mistakes[] = {
    {"unknown verb", "drill \"t\"\nfualt x\n", 2, 1,
     "unknown statement 'fualt'; did you mean 'fault'?"},
    {"action without at", "drill \"t\"\ncrash primary\n", 2, 1,
     "unknown statement 'crash': timeline statements start with `at TIME`, like `at 5s crash "
     "...`"},
    {"bad duration", "drill \"t\"\nduration 2sec\n", 2, 10,
     "bad duration '2sec': write it like 250ms, 2s, 1.5s or 1m"},
    {"duration without unit", "drill \"t\"\nat 2 checkpoint\n", 2, 4,
     "bad duration '2': write it like 250ms, 2s, 1.5s or 1m"},
    {"negative duration", "drill \"t\"\nat -1s checkpoint\n", 2, 4,
     "bad duration '-1s': write it like 250ms, 2s, 1.5s or 1m"},
    {"unknown node in crash", "drill \"t\"\ntopology mirror\nat 1s crash mirorr\n", 3, 13,
     "unknown node 'mirorr'; nodes here: primary, mirror; did you mean 'mirror'?"},
    {"unknown node in a fault name",
     "drill \"t\"\ntopology mirror\nat 2s fault disk/primry/write\n", 3, 13,
     "unknown node 'primry' in fault disk/primry/write; nodes here: primary, mirror; did you "
     "mean 'primary'?"},
    {"unknown fault point", "drill \"t\"\nat 1s fault disk/primary/wirte\n", 2, 13,
     "unknown fault point 'disk/primary/wirte'; `faultdrill faults` lists them "
     "(disk/<node>/write, net/<from>/<to>/drop, crash/<node>/<point>, ...); did you mean "
     "'disk/primary/write'?"},
    {"libc point in a drill", "drill \"t\"\nat 1s fault posix/io/rw/pwrite\n", 2, 13,
     "posix/io/rw/pwrite is a libc point: it fires only in `faultdrill serve` under fiu-run, "
     "never in a drill; use disk/<node>/... here"},
    {"unknown invariant", "drill \"t\"\nexpect no-lost-ack\n", 2, 8,
     "unknown invariant 'no-lost-ack'; `faultdrill invariants` lists them; did you mean "
     "'no-lost-acks'?"},
    {"missing title", "seed 4\n", 1, 1,
     "missing `drill \"title\"`: a drill starts with its title, like drill \"Primary disk "
     "fails during checkout\""},
    {"title twice", "drill \"t\"\ndrill \"u\"\n", 2, 1, "`drill` given twice (first at line 1)"},
    {"option of a component not used", "drill \"t\"\ntopology async policy=strict\n", 2, 16,
     "option policy= belongs to topology mirror, which this drill does not use"},
    {"sync= on async alone", "drill \"t\"\ntopology async sync=normal\n", 2, 16,
     "option sync= belongs to topology single or mirror, which this drill does not use"},
    {"misspelt option", "drill \"t\"\ntopology mirror polcy=strict\n", 2, 17,
     "unknown option 'polcy=' for topology mirror; it takes policy=, ack=, sync=, latency=, "
     "jitter=; did you mean 'policy'?"},
    {"bad option value", "drill \"t\"\ntopology mirror policy=lenient\n", 2, 17,
     "bad value 'lenient' for policy=: write strict or degrade"},
    {"single with mirror", "drill \"t\"\ntopology single mirror\n", 2, 10,
     "single and mirror both define primary; drop single"},
    {"p=0", "drill \"t\"\nat 1s fault disk/primary/write p=0\n", 2, 32,
     "p=0 would never fire; remove the line"},
    {"p above 1", "drill \"t\"\nat 1s fault disk/primary/write p=1.5\n", 2, 32,
     "bad probability '1.5': p= is above 0 and at most 1, like p=0.5"},
    {"EINTR", "drill \"t\"\nat 1s fault disk/primary/write errno=EINTR\n", 2, 32,
     "errno EINTR: refused, SQLite retries it forever"},
    {"errno on a network point",
     "drill \"t\"\ntopology async\nat 1s fault net/primary/secondary/drop errno=EIO\n", 3, 40,
     "fault net/primary/secondary/drop takes no errno=: only disk faults fail with an errno"},
    {"delay on a write point", "drill \"t\"\nat 1s fault disk/primary/write delay=5ms\n", 2, 32,
     "delay= applies only to slow and delay points (disk/<node>/slow, net/<from>/<to>/delay), "
     "not to disk/primary/write"},
    {"once with count", "drill \"t\"\nat 1s fault disk/primary/write once count=2\n", 2, 32,
     "once and count= together: once means count=1"},
    {"header after at", "drill \"t\"\nat 1s checkpoint\nusers 3\n", 3, 1,
     "`users` belongs to the header: it must come before the first `at` (line 2)"},
    {"time beyond duration", "drill \"t\"\nduration 10s\nat 11s checkpoint\n", 3, 4,
     "at 11s is after the end of the drill (duration 10s)"},
    {"until beyond duration",
     "drill \"t\"\nduration 10s\nworkload w rate=1/s mix=browse:1 until=20s\n", 3, 34,
     "until=20s is after the end of the drill (duration 10s)"},
    {"drain beyond duration", "drill \"t\"\nduration 30s\nat 25s drain within=10s\n", 3, 8,
     "drain at 25s within=10s ends at 35s, after the drill's duration 30s"},
    {"drain without within", "drill \"t\"\nat 5s drain\n", 2, 7,
     "drain needs within=, the time the queues get to empty: drain within=10s"},
    {"invariant of another topology", "drill \"t\"\nexpect replica-prefix\n", 2, 1,
     "invariant replica-prefix needs topology async or cluster"},
    {"option an invariant does not take", "drill \"t\"\nexpect integrity max=3\n", 2, 18,
     "invariant integrity takes no option max="},
    {"unterminated string", "drill \"t\"\nabout \"no end\n", 2, 7,
     "unterminated string: add the closing \""},
    {"op for a client no workload has",
     "drill \"t\"\nworkload w clients=2 rate=1/s mix=browse:1\nat 1s op checkout "
     "client=client3\n",
     3, 19, "unknown client 'client3'; the workloads have client1..client2"},
    {"op for a malformed client", "drill \"t\"\nat 1s op checkout client=client0\n", 2, 19,
     "bad client 'client0': write clientN, N from 1 to 256"},
    {"heal of a fault never armed", "drill \"t\"\nat 1s heal disk/primary/write\n", 2, 1,
     "heal disk/primary/write: no fault is armed with this exact name before 1s"},
    {"a node on both sides", "drill \"t\"\ntopology async\nat 1s partition primary | primary\n", 3,
     27, "node primary is on both sides of the partition"},
    {"one-sided partition", "drill \"t\"\ntopology async\nat 1s partition primary secondary\n", 3,
     7, "a partition needs nodes on both sides of '|': write `partition primary | secondary`"},
    {"offline without topology offline", "drill \"t\"\nat 1s offline primary\n", 2, 7,
     "`offline` switches a local's sync job: it needs topology offline"},
    {"failover to a non-copy", "drill \"t\"\ntopology offline\nat 1s failover central\n", 3, 16,
     "failover promotes a copy (primary, mirror, secondary, leader or a replica); central is "
     "not one"},
    {"mix with no weight", "drill \"t\"\nworkload w rate=1/s mix=browse:0\n", 2, 21,
     "mix gives every operation weight 0: at least one weight must be above 0"},
    {"workload without rate", "drill \"t\"\nworkload w mix=browse:1\n", 2, 1,
     "workload w needs rate=, like rate=200/s"},
    {"upside-down prices", "drill \"t\"\nproducts 3 price=9..3\n", 2, 12,
     "price range '9..3' is upside down: the lowest price comes first"},
    {"three decimals in a price", "drill \"t\"\nproducts 3 price=1.999..3\n", 2, 12,
     "bad price range '1.999..3': write it like price=5..120 or price=4.99..19.99 (currency "
     "units, at most 1000000)"},
    {"extra word", "drill \"t\"\nat 1s checkpoint now\n", 2, 18,
     "unexpected 'now': write `checkpoint`"},
    {"too many nodes",
     "drill \"t\"\ntopology offline cluster stake locals=16 replicas=16 predictors=32\n", 2, 1,
     "this topology has 68 nodes, more than the limit of 64"},
    /* topology stake */
    {"no predictors", "drill \"t\"\ntopology stake predictors=0\n", 2, 16,
     "bad number '0' for predictors=: write a whole number from 1 to 32"},
    {"too many predictors", "drill \"t\"\ntopology stake predictors=33\n", 2, 16,
     "bad number '33' for predictors=: write a whole number from 1 to 32"},
    {"zero deposit", "drill \"t\"\ntopology stake deposit=0\n", 2, 16,
     "bad number '0' for deposit=: write a whole number from 1 to 1000000000000000"},
    {"deposit in units", "drill \"t\"\ntopology stake deposit=1.5\n", 2, 16,
     "bad number '1.5' for deposit=: write a whole number from 1 to 1000000000000000"},
    {"negative tolerance", "drill \"t\"\ntopology stake tolerance=-1\n", 2, 16,
     "bad number '-1' for tolerance=: write a whole number from 0 to 1000000000000"},
    {"slash without %", "drill \"t\"\ntopology stake slash=20\n", 2, 16,
     "bad percentage '20' for slash=: write it like slash=20% or slash=12.5% (0% to 100%)"},
    {"slash above 100%", "drill \"t\"\ntopology stake slash=100.5%\n", 2, 16,
     "bad percentage '100.5%' for slash=: write it like slash=20% or slash=12.5% (0% to 100%)"},
    {"slash finer than a ppm", "drill \"t\"\ntopology stake slash=12.34567%\n", 2, 16,
     "bad percentage '12.34567%' for slash=: write it like slash=20% or slash=12.5% (0% to "
     "100%)"},
    {"zero min-stake", "drill \"t\"\ntopology stake min-stake=0\n", 2, 16,
     "bad number '0' for min-stake=: write a whole number from 1 to 1000000000000000"},
    {"deposit below min-stake", "drill \"t\"\ntopology stake min-stake=5000 deposit=1000\n", 2, 31,
     "deposit=1000 is below min-stake=5000: a predictor could not register"},
    {"min-stake above the default deposit", "drill \"t\"\ntopology stake min-stake=2000000\n", 2,
     16,
     "min-stake=2000000 is above the deposit (1000000 by default): a predictor could not "
     "register; raise deposit= too"},
    {"round too short", "drill \"t\"\ntopology stake round=5ms\n", 2, 16,
     "round= must be at least 10ms"},
    {"round of zero", "drill \"t\"\ntopology stake round=0s\n", 2, 16,
     "round= must be longer than 0"},
    {"stake option without stake", "drill \"t\"\ntopology single predictors=3\n", 2, 17,
     "option predictors= belongs to topology stake, which this drill does not use"},
    {"misspelt stake option", "drill \"t\"\ntopology stake predictor=3\n", 2, 16,
     "unknown option 'predictor=' for topology single or stake; it takes sync=, predictors=, "
     "deposit=, tolerance=, slash=, min-stake=, round=, latency=, jitter=; did you mean "
     "'predictors'?"},
    {"single beside offline and stake", "drill \"t\"\ntopology single offline stake\n", 2, 10,
     "single is one database on its own; drop it to use offline"},
    {"the ledger does not lie", "drill \"t\"\ntopology stake\nat 1s fault stake/ledger/lie\n", 3,
     13, "fault stake/ledger/lie: only a predictor lies; predictors here: predictor1..predictor4"},
    {"a predictor the drill lacks",
     "drill \"t\"\ntopology stake predictors=2\nat 1s fault stake/predictor3/lie\n", 3, 13,
     "unknown node 'predictor3' in fault stake/predictor3/lie; nodes here: primary, ledger, "
     "predictor1, predictor2; did you mean 'predictor1'?"},
    {"failover to the ledger", "drill \"t\"\ntopology async stake\nat 1s failover ledger\n", 3, 16,
     "failover promotes a copy (primary, mirror, secondary, leader or a replica); ledger is not "
     "one"},
    {"stake-conserved without stake", "drill \"t\"\nexpect stake-conserved\n", 2, 1,
     "invariant stake-conserved needs topology stake"},
};

#define MISTAKE_COUNT (sizeof mistakes / sizeof mistakes[0])

START_TEST(each_mistake_is_reported_at_its_word)
{
    int rc = parse(mistakes[_i].text);
    ck_assert_msg(rc == -EINVAL, "%s: rc %d", mistakes[_i].what, rc);
    if (errs.count != 1) {
        drill_errors_print(mistakes[_i].what, &errs, stderr);
    }
    ck_assert_msg(errs.count == 1, "%s: %zu errors", mistakes[_i].what, errs.count);
    ck_assert_msg(errs.e[0].line == mistakes[_i].line && errs.e[0].col == mistakes[_i].col,
                  "%s: at %d:%d, expected %d:%d", mistakes[_i].what, errs.e[0].line, errs.e[0].col,
                  mistakes[_i].line, mistakes[_i].col);
    ck_assert_str_eq(errs.e[0].msg, mistakes[_i].msg);
}
END_TEST

/* ---- What the simulator cannot run: `check` refuses what `run` would ---- */

static const struct {
    const char *what;
    const char *text;
    int line, col;
    const char *msg;
} unrunnable[] = {
    {"a mirror crash point on single",
     "drill \"t\"\nat 1s fault crash/primary/mirror-between-commits once\n", 2, 13,
     "fault crash/primary/mirror-between-commits can never fire here: this crash point exists "
     "only with topology mirror, on primary (the process that writes both copies)"},
    {"a mirror crash point on the mirror",
     "drill \"t\"\ntopology mirror\nat 1s fault crash/mirror/mirror-before-commit\n", 3, 13,
     "fault crash/mirror/mirror-before-commit can never fire here: this crash point exists only "
     "with topology mirror, on primary (the process that writes both copies)"},
    {"a queue crash point without queue=separate",
     "drill \"t\"\ntopology offline\nat 1s fault crash/local/sync-between-row-and-queue\n", 3, 13,
     "fault crash/local/sync-between-row-and-queue can never fire here: this crash point exists "
     "only with topology offline queue=separate, on a local"},
    {"a disk the registry has not got",
     "drill \"t\"\ntopology cluster\nat 1s fault disk/registry/write\n", 3, 13,
     "fault disk/registry/write can never fire here: registry holds no database: nothing it "
     "does touches a disk"},
    {"a link nothing travels on",
     "drill \"t\"\ntopology mirror\nat 1s fault net/primary/mirror/drop\n", 3, 13,
     "fault net/primary/mirror/drop can never fire here: the mirror is a disk of the primary's "
     "process: no message goes from primary to mirror (use disk/mirror/... or a partition)"},
    {"failover without async", "drill \"t\"\ntopology mirror\nat 1s failover mirror\n", 3, 16,
     "failover is built for topology async only (it promotes the secondary)"},
    {"failover of the primary", "drill \"t\"\ntopology async\nat 1s failover primary\n", 3, 16,
     "failover primary: async promotes its secondary; write `failover secondary`"},
    {"two failovers",
     "drill \"t\"\ntopology async\nat 1s failover secondary\nat 2s failover secondary\n", 4, 1,
     "a second failover: async promotes its secondary once"},
    {"components that do not combine", "drill \"t\"\ntopology async cluster\n", 2, 1,
     "async, offline and cluster replicate between nodes and do not combine with each other: "
     "use one of them (mirror and stake may go beside it)"},
    {"a mirror crash point off the mirrored node",
     "drill \"t\"\ntopology mirror cluster\nat 1s fault crash/replica1/mirror-between-commits\n",
     3, 13,
     "fault crash/replica1/mirror-between-commits can never fire here: this crash point exists "
     "only with topology mirror, on leader (the process that writes both copies)"},
};

#define UNRUNNABLE_COUNT (sizeof unrunnable / sizeof unrunnable[0])

START_TEST(what_cannot_run_is_reported_at_its_word)
{
    assert_parses(parse(unrunnable[_i].text));
    int rc = drill_check_runnable(d, &errs);
    ck_assert_msg(rc == -EINVAL, "%s: rc %d", unrunnable[_i].what, rc);
    if (errs.count != 1) {
        drill_errors_print(unrunnable[_i].what, &errs, stderr);
    }
    ck_assert_msg(errs.count == 1, "%s: %zu errors", unrunnable[_i].what, errs.count);
    ck_assert_msg(errs.e[0].line == unrunnable[_i].line && errs.e[0].col == unrunnable[_i].col,
                  "%s: at %d:%d, expected %d:%d", unrunnable[_i].what, errs.e[0].line,
                  errs.e[0].col, unrunnable[_i].line, unrunnable[_i].col);
    ck_assert_str_eq(errs.e[0].msg, unrunnable[_i].msg);
}
END_TEST

/* Every catalog-like use of each topology runs: wildcards, links that carry
 * messages, crash points where the topology has them. */
START_TEST(what_can_run_is_accepted)
{
    static const char *const ok[] = {
        "drill \"t\"\ntopology mirror\nat 1s fault crash/primary/mirror-between-commits once\n"
        "at 1s fault disk/mirror/write\nat 1s fault crash/primary/checkout-mid-transaction\n",
        "drill \"t\"\ntopology async\nat 1s fault net/primary/secondary/drop\n"
        "at 1s fault net/secondary/primary/delay\nat 2s failover secondary\n"
        "at 3s fault crash/secondary/checkout-mid-transaction\n",
        "drill \"t\"\ntopology offline queue=separate\n"
        "at 1s fault crash/local/sync-between-row-and-queue\nat 1s fault net/local/central/drop\n"
        "at 1s fault crash/local/sync-after-push\n",
        "drill \"t\"\ntopology cluster\nat 1s fault net/leader/replica1/drop\n"
        "at 1s fault net/replica2/registry/drop\nat 1s fault disk/replica*\n",
        "drill \"t\"\nworkload w clients=2 rate=1/s mix=browse:1\n"
        "at 1s fault net/client1/primary/drop\nat 1s fault net/primary/client2/delay\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_parses(parse(ok[i]));
        int rc = drill_check_runnable(d, &errs);
        if (rc != 0) {
            drill_errors_print("ok", &errs, stderr);
        }
        ck_assert_int_eq(rc, 0);
    }
}
END_TEST

/* ---- Many mistakes ------------------------------------------------------ */

START_TEST(five_different_mistakes_are_all_reported_in_line_order)
{
    static const struct {
        int line, col;
        const char *start;
    } expected[] = {
        {2, 17, "option outbox= belongs to topology async"},
        {3, 10, "bad duration '30sec'"},
        {5, 13, "unknown node 'primry' in fault disk/primry/write"},
        {6, 1, "unknown statement 'chekpoint'; did you mean 'checkpoint'?"},
        {8, 8, "unknown invariant 'no-lost-ack'"},
    };
    ck_assert_int_eq(drill_parse_file(DRILLS_DIR "/five_errors.drill", d, &errs), -EINVAL);
    ck_assert_uint_eq(errs.count, 5);
    ck_assert(!errs.truncated);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(errs.e[i].line, expected[i].line);
        ck_assert_int_eq(errs.e[i].col, expected[i].col);
        ck_assert_msg(strncmp(errs.e[i].msg, expected[i].start, strlen(expected[i].start)) == 0,
                      "error %zu: %s", i, errs.e[i].msg);
    }
}
END_TEST

START_TEST(errors_found_at_the_end_are_sorted_into_line_order)
{
    /* The missing title and the topology check are found after the last
     * line; they must still come out in line order. */
    ck_assert_int_eq(parse("expect mirror-identical\nseed x\n"), -EINVAL);
    ck_assert_uint_eq(errs.count, 3);
    ck_assert_int_eq(errs.e[0].line, 1);
    ck_assert_int_eq(errs.e[0].col, 1);
    ck_assert(strncmp(errs.e[0].msg, "missing `drill", 14) == 0);
    ck_assert_int_eq(errs.e[1].line, 1);
    ck_assert_int_eq(errs.e[1].col, 1);
    ck_assert_str_eq(errs.e[1].msg, "invariant mirror-identical needs topology mirror");
    ck_assert_int_eq(errs.e[2].line, 2);
    ck_assert_int_eq(errs.e[2].col, 6);
}
END_TEST

START_TEST(more_errors_than_the_limit_are_truncated_not_overrun)
{
    char text[4096] = "drill \"t\"\n";
    for (int i = 0; i < DRILL_ERRORS_MAX + 10; i++) {
        strcat(text, "bogus\n");
    }
    ck_assert_int_eq(parse(text), -EINVAL);
    ck_assert_uint_eq(errs.count, DRILL_ERRORS_MAX);
    ck_assert(errs.truncated);
    ck_assert_int_eq(errs.e[DRILL_ERRORS_MAX - 1].line, DRILL_ERRORS_MAX + 1);
}
END_TEST

START_TEST(a_mistake_in_the_topology_does_not_make_later_lines_wrong)
{
    /* The bad option is one error; mirror still exists for the crash. */
    ck_assert_int_eq(parse("drill \"t\"\ntopology mirror policy=x\nat 1s crash mirror\n"), -EINVAL);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_eq(errs.e[0].line, 2);
}
END_TEST

/* ---- Lexing ------------------------------------------------------------- */

START_TEST(quoted_strings_keep_hash_spaces_and_escapes)
{
    assert_parses(parse("drill \"50# off \\\"today\\\" \\\\ only\"   # a real comment\n"
                        "about \"a\tb\" # \"not a string\n"
                        "  # an indented comment\n"
                        "\n"
                        "workload w clients=1 rate=1/s mix=\"browse:1,checkout:2\"\n"));
    ck_assert_str_eq(d->title, "50# off \"today\" \\ only");
    ck_assert_str_eq(d->about[0], "a\tb");
    ck_assert_uint_eq(d->workloads[0].mix[DRILL_OP_CHECKOUT], 2);
}
END_TEST

START_TEST(crlf_lines_and_a_missing_final_newline_parse)
{
    assert_parses(parse("drill \"t\"\r\nduration 5s\r\nat 5s checkpoint"));
    ck_assert_int_eq(d->duration_us, 5 * S_US);
    ck_assert_uint_eq(d->event_count, 1);
}
END_TEST

START_TEST(a_nul_byte_is_an_error_not_an_end)
{
    static const char text[] = "drill \"t\"\nseed 4\0\nusers 3\n";
    ck_assert_int_eq(drill_parse_text("t.drill", text, sizeof text - 1, d, &errs), -EINVAL);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_eq(errs.e[0].line, 2);
    ck_assert_int_eq(errs.e[0].col, 7);
    ck_assert_int_eq(d->users, 3);
}
END_TEST

START_TEST(a_partition_bar_may_touch_the_names)
{
    assert_parses(parse("drill \"t\"\ntopology mirror async\nat 1s partition primary|mirror "
                        "secondary\n"));
    ck_assert_int_eq(d->events[0].side_count[0], 1);
    ck_assert_int_eq(d->events[0].side_count[1], 2);
    ck_assert_str_eq(d->events[0].side[1][1], "secondary");
}
END_TEST

/* ---- Durations ---------------------------------------------------------- */

START_TEST(durations_parse_in_every_unit)
{
    static const struct {
        const char *text;
        int64_t us;
    } good[] = {
        {"250ms", 250 * MS_US}, {"2s", 2 * S_US},        {"1.5s", 1500 * MS_US},
        {"1m", 60 * S_US},      {"100us", 100},          {"0s", 0},
        {"0.001ms", 1},         {"1440m", 86400 * S_US}, {"1.25m", 75 * S_US},
    };
    static const char *const bad[] = {"2",    "-1s",      "1.5", "s",    "",
                                      "1.s",  ".5s",      "2 s", "1e3s", "2S",
                                      "2sec", "0.0001ms", "1h",  "+2s",  "99999999999999999999s"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t us = -1;
        ck_assert_msg(drill_duration_parse(good[i].text, &us) == 0, "%s", good[i].text);
        ck_assert_int_eq(us, good[i].us);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us = -1;
        ck_assert_msg(drill_duration_parse(bad[i], &us) == -EINVAL, "%s", bad[i]);
    }
    int64_t us = 0;
    ck_assert_int_eq(drill_duration_parse("1441m", &us), -ERANGE);
    ck_assert_int_eq(drill_duration_parse("86400.000001s", &us), -ERANGE);
}
END_TEST

START_TEST(durations_format_the_way_a_drill_writes_them)
{
    char buf[DRILL_DURATION_TEXT_MAX];
    ck_assert_str_eq(drill_duration_format(0, buf), "0s");
    ck_assert_str_eq(drill_duration_format(1500 * MS_US, buf), "1.5s");
    ck_assert_str_eq(drill_duration_format(250 * MS_US, buf), "250ms");
    ck_assert_str_eq(drill_duration_format(60 * S_US, buf), "1m");
    ck_assert_str_eq(drill_duration_format(90 * S_US, buf), "90s");
    ck_assert_str_eq(drill_duration_format(100, buf), "100us");
    ck_assert_str_eq(drill_duration_format(1500, buf), "1.5ms");
    ck_assert_str_eq(drill_duration_format(S_US + 1, buf), "1.000001s");
    /* Every value reads back to itself. */
    for (int64_t us = 0; us < 3 * S_US; us = us * 3 + 7) {
        int64_t back = -1;
        ck_assert_int_eq(drill_duration_parse(drill_duration_format(us, buf), &back), 0);
        ck_assert_int_eq(back, us);
    }
}
END_TEST

/* ---- Nodes and clients -------------------------------------------------- */

static void assert_nodes(const char *topology, const char *expected)
{
    char text[256];
    snprintf(text, sizeof text, "drill \"t\"\n%s\n", topology);
    assert_parses(parse(text));
    char names[DRILL_NODES_MAX][FAULTS_NODE_MAX];
    size_t n = drill_nodes(d, names);
    char joined[512] = "";
    for (size_t i = 0; i < n; i++) {
        strcat(joined, i == 0 ? "" : " ");
        strcat(joined, names[i]);
    }
    ck_assert_str_eq(joined, expected);
}

START_TEST(each_topology_has_its_nodes_in_a_stable_order)
{
    assert_nodes("", "primary");
    assert_nodes("topology single", "primary");
    assert_nodes("topology mirror", "primary mirror");
    assert_nodes("topology async mirror", "primary mirror secondary");
    assert_nodes("topology offline", "local central");
    assert_nodes("topology offline locals=3", "local1 local2 local3 central");
    assert_nodes("topology cluster", "leader replica1 replica2 registry");
    /* a mirror is the second disk of the node it mirrors, listed after it */
    assert_nodes("topology mirror cluster", "leader mirror replica1 replica2 registry");
    assert_nodes("topology offline mirror", "local mirror central");
    assert_nodes("topology mirror offline locals=2", "local1 mirror1 local2 mirror2 central");
    assert_nodes("topology cluster replicas=3 cache=naive ttl=2s",
                 "leader replica1 replica2 replica3 registry");
    ck_assert(drill_has_node(d, "replica3"));
    ck_assert(!drill_has_node(d, "replica4"));
    ck_assert(!drill_has_node(d, "primary"));
    ck_assert_int_eq(d->topology.cache, DRILL_CACHE_NAIVE);
    ck_assert_int_eq(d->topology.cache_ttl_us, 2 * S_US);
}
END_TEST

START_TEST(stake_goes_beside_any_topology_with_its_nodes_last)
{
    assert_nodes("topology stake", "primary ledger predictor1 predictor2 predictor3 predictor4");
    ck_assert_uint_eq(d->topology.components, DRILL_SINGLE | DRILL_STAKE);
    assert_nodes("topology single stake predictors=2", "primary ledger predictor1 predictor2");
    ck_assert_uint_eq(d->topology.components, DRILL_SINGLE | DRILL_STAKE);
    assert_nodes("topology stake async predictors=1", "primary secondary ledger predictor1");
    assert_nodes("topology mirror stake predictors=1", "primary mirror ledger predictor1");
    assert_nodes("topology offline stake predictors=1", "local central ledger predictor1");
    assert_nodes("topology cluster stake replicas=1 predictors=1",
                 "leader replica1 registry ledger predictor1");
    ck_assert(drill_has_node(d, "ledger"));
    ck_assert(!drill_has_node(d, "predictor2"));
    ck_assert_str_eq(drill_component_name(DRILL_STAKE), "stake");
}
END_TEST

START_TEST(stake_options_parse_to_exact_values)
{
    assert_parses(parse("drill \"t\"\ntopology stake\n"));
    const struct drill_topology *t = &d->topology;
    ck_assert_int_eq(t->predictors, 4);
    ck_assert_int_eq(t->stake_deposit, 1000000);
    ck_assert_int_eq(t->stake_tolerance, 50);
    ck_assert_int_eq(t->stake_slash_ppm, 200000);
    ck_assert_int_eq(t->stake_min, 100000);
    ck_assert_int_eq(t->stake_round_us, S_US);
    assert_parses(parse("drill \"t\"\ntopology single stake predictors=32 deposit=2000000 "
                        "tolerance=0 slash=12.5% min-stake=2000000 round=250ms\n"));
    ck_assert_int_eq(t->predictors, 32);
    ck_assert_int_eq(t->stake_deposit, 2000000);
    ck_assert_int_eq(t->stake_tolerance, 0);
    ck_assert_int_eq(t->stake_slash_ppm, 125000);
    ck_assert_int_eq(t->stake_min, 2000000);
    ck_assert_int_eq(t->stake_round_us, 250 * MS_US);
    static const struct {
        const char *text;
        int64_t ppm;
    } slashes[] = {{"0%", 0},        {"100%", 1000000},  {"0.0001%", 1}, {"33.3333%", 333333},
                   {"7.25%", 72500}, {"100.0%", 1000000}};
    for (size_t i = 0; i < sizeof slashes / sizeof slashes[0]; i++) {
        char text[96];
        snprintf(text, sizeof text, "drill \"t\"\ntopology stake slash=%s\n", slashes[i].text);
        assert_parses(parse(text));
        ck_assert_int_eq(t->stake_slash_ppm, slashes[i].ppm);
    }
}
END_TEST

START_TEST(a_predictor_lies_by_fault)
{
    assert_parses(parse("drill \"t\"\ntopology single stake predictors=5\n"
                        "at 2s fault stake/predictor2/lie for=4s\nat 3s fault stake/pred*\n"
                        "at 4s crash ledger\nat 5s restart ledger\n"
                        "at 6s partition predictor1 | ledger\nexpect stake-conserved\n"));
    ck_assert_str_eq(d->events[0].name, "stake/predictor2/lie");
    ck_assert_int_eq(d->events[0].for_us, 4 * S_US);
    ck_assert_int_eq(faults_lookup(d->events[0].name)->family, FAULTS_FAMILY_STAKE);
    ck_assert_str_eq(d->events[2].name, "ledger");
    ck_assert_str_eq(d->expects[0].invariant, "stake-conserved");
    ck_assert_int_eq(parse("drill \"t\"\ntopology stake\nat 1s fault stake/pri*\n"), -EINVAL);
    ck_assert_str_eq(errs.e[0].msg, "fault stake/pri*: only a predictor lies; predictors here: "
                                    "predictor1..predictor4");
}
END_TEST

START_TEST(without_workloads_op_lines_make_the_clients)
{
    assert_parses(parse("drill \"t\"\nat 1s op cart-add client=client3 product=2\n"
                        "at 2s op checkout client=client3\nat 3s op browse client=client1\n"));
    ck_assert_int_eq(d->clients, 3);
    ck_assert_int_eq(d->events[0].client, 3);
}
END_TEST

START_TEST(offline_and_online_take_a_local_node)
{
    assert_parses(parse("drill \"t\"\ntopology offline locals=2 queue=separate\n"
                        "at 1s offline local2\nat 2s online local2\n"
                        "expect outbox-accounted\n"));
    ck_assert_int_eq(d->events[0].action, DRILL_GO_OFFLINE);
    ck_assert_int_eq(d->events[1].action, DRILL_GO_ONLINE);
    ck_assert_str_eq(d->events[1].name, "local2");
    ck_assert(d->topology.queue_separate);
    ck_assert_int_eq(parse("drill \"t\"\ntopology offline\nat 1s offline central\n"), -EINVAL);
    ck_assert_str_eq(errs.e[0].msg, "`offline` switches a local's sync job; central is not a "
                                    "local node");
}
END_TEST

START_TEST(fault_wildcards_check_the_nodes_they_name)
{
    assert_parses(parse("drill \"t\"\ntopology mirror\nat 1s fault disk/primary/*\n"
                        "at 1s fault disk/mir*\nat 2s heal disk/mir*\n"));
    ck_assert_str_eq(d->events[1].name, "disk/mir*");
    ck_assert_int_eq(parse("drill \"t\"\ntopology mirror\nat 1s fault disk/sec*\n"), -EINVAL);
    ck_assert_str_eq(errs.e[0].msg, "no node starts with 'sec' in fault disk/sec*; nodes here: "
                                    "primary, mirror");
}
END_TEST

/* ---- Files and printing ------------------------------------------------- */

START_TEST(errors_print_as_file_line_col_message)
{
    ck_assert_int_eq(parse("drill \"t\"\n\nusers 8 x\n"), -EINVAL);
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    ck_assert_ptr_nonnull(out);
    drill_errors_print("f.drill", &errs, out);
    fclose(out);
    ck_assert_str_eq(buf, "f.drill:3:9: unexpected 'x': write `users N`\n");
    free(buf);
}
END_TEST

START_TEST(a_missing_file_is_enoent_with_one_error_naming_it)
{
    ck_assert_int_eq(drill_parse_file("/nonexistent/dir/x.drill", d, &errs), -ENOENT);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_eq(errs.e[0].line, 0);
    ck_assert_int_eq(errs.e[0].col, 0);
    ck_assert_str_eq(errs.e[0].msg,
                     "cannot read /nonexistent/dir/x.drill: No such file or directory");
}
END_TEST

/* A file of `size` bytes of comment, parsed. */
static int parse_comment_file(size_t size)
{
    char path[] = "/tmp/check_drill_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < size; i++) {
        fputc(i % 100 == 99 ? '\n' : '#', f);
    }
    fclose(f);
    int rc = drill_parse_file(path, d, &errs);
    unlink(path);
    return rc;
}

START_TEST(a_file_over_the_size_limit_is_refused_whole)
{
    ck_assert_int_eq(parse_comment_file(DRILL_FILE_BYTES_MAX + 1), -E2BIG);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_eq(errs.e[0].line, 0);
    ck_assert_ptr_nonnull(strstr(errs.e[0].msg, "larger than 1048576 bytes"));
    /* Exactly at the limit it is read: only the title is missing. */
    ck_assert_int_eq(parse_comment_file(DRILL_FILE_BYTES_MAX), -EINVAL);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_eq(errs.e[0].line, 1);
}
END_TEST

START_TEST(a_line_over_the_limit_is_one_error)
{
    size_t len = DRILL_LINE_MAX + 10;
    char *text = malloc(len + 32);
    ck_assert_ptr_nonnull(text);
    strcpy(text, "drill \"t\"\nabout \"");
    size_t used = strlen(text);
    memset(text + used, 'x', len);
    strcpy(text + used + len, "\"\nusers 2\n");
    ck_assert_int_eq(parse(text), -EINVAL);
    free(text);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_int_eq(errs.e[0].line, 2);
    ck_assert_str_eq(errs.e[0].msg, "line longer than 4096 bytes");
    ck_assert_int_eq(d->users, 2);
}
END_TEST

START_TEST(a_directory_is_not_a_drill)
{
    ck_assert_int_eq(drill_parse_file(DRILLS_DIR, d, &errs), -EISDIR);
    ck_assert_uint_eq(errs.count, 1);
}
END_TEST

START_TEST(the_drill_name_is_the_file_name_without_drill)
{
    assert_parses(
        drill_parse_text("scenarios/mirror-primary-disk.drill", "drill \"t\"\n", 10, d, &errs));
    ck_assert_str_eq(d->name, "mirror-primary-disk");
    assert_parses(drill_parse_text("plain", "drill \"t\"\n", 10, d, &errs));
    ck_assert_str_eq(d->name, "plain");
}
END_TEST

/* ---- Invariants and explain --------------------------------------------- */

START_TEST(the_invariant_catalog_follows_the_design)
{
    static const char *const names[] = {
        "no-lost-acks",     "mirror-identical", "replica-prefix", "converges",
        "outbox-accounted", "stock-conserved",  "order-totals",   "read-your-writes",
        "monotonic-reads",  "no-echo",          "lb-balanced",    "integrity",
        "rpo-bounded",      "stake-conserved",
    };
    size_t count = 0;
    const struct invariant_info *cat = invariant_catalog(&count);
    ck_assert_uint_eq(count, sizeof names / sizeof names[0]);
    for (size_t i = 0; i < count; i++) {
        ck_assert_str_eq(cat[i].name, names[i]);
        ck_assert_ptr_eq(invariant_lookup(names[i]), &cat[i]);
        ck_assert_uint_gt(strlen(cat[i].summary), 20);
        ck_assert_uint_gt(strlen(cat[i].explanation), 200);
        ck_assert_str_eq(cat[i].options, strcmp(names[i], "rpo-bounded") == 0 ? "max" : "");
    }
    ck_assert_ptr_null(invariant_lookup("no-lost-ack"));
    ck_assert_uint_eq(invariant_lookup("mirror-identical")->components, DRILL_MIRROR);
    ck_assert_uint_eq(invariant_lookup("no-lost-acks")->components, 0);
    ck_assert_uint_eq(invariant_lookup("stake-conserved")->components, DRILL_STAKE);
}
END_TEST

/* Text explain writes for the drill, with line breaks and indents folded
 * into single spaces so phrases can be searched across wrapped lines. */
static char *explain_text(void)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&buf, &size);
    ck_assert_ptr_nonnull(out);
    drill_explain(d, out);
    fclose(out);
    size_t j = 0;
    for (size_t i = 0; buf[i] != '\0'; i++) {
        bool space = buf[i] == ' ' || buf[i] == '\n';
        if (!space || (j > 0 && buf[j - 1] != ' ')) {
            buf[j++] = space ? ' ' : buf[i];
        }
    }
    buf[j] = '\0';
    return buf;
}

START_TEST(explain_tells_the_drill_in_words)
{
    static const char *const phrases[] = {
        "Primary disk fails during checkout",
        "Synchronous mirroring keeps every acknowledged order.",
        "Two copies, primary and mirror, written synchronously; policy degrade",
        "ack=early (the naive mode)",
        "batches of up to 20 after a WAN delay of 250ms",
        "20 products, 50 in stock each, priced from 4.99 to 120.00, and 8 users",
        "seed 42",
        ("8 clients make 200 operations per second until 20s: 50% browse, 25% add to cart, "
         "25% checkout."),
        "Workload admins (client9..client10)",
        "At 2s, the primary's disk starts failing writes with EIO, half the time (p=0.5), for 3s.",
        "At 1.5s, the mirror's disk is full: its writes fail with ENOSPC",
        "At 6s, the mirror's process dies",
        "At 9s, the secondary is promoted",
        "At 11s, client10 adds 2 of product 3 to its cart.",
        "then every queue must be empty within 10s.",
        "no-lost-acks must hold: every write acknowledged to a client is present",
        "mirror-identical must be violated: this drill demonstrates a failure",
        "rpo-bounded (max=50) must hold",
    };
    assert_parses(drill_parse_file(DRILLS_DIR "/full.drill", d, &errs));
    char *text = explain_text();
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++) {
        ck_assert_msg(strstr(text, phrases[i]) != NULL, "missing \"%s\" in:\n%s", phrases[i], text);
    }
    free(text);
}
END_TEST

START_TEST(explain_says_what_strict_mirroring_refuses)
{
    assert_parses(parse("drill \"t\"\ntopology mirror\nat 1s fault disk/mirror/fsync p=0.25\n"
                        "at 2s fault net/primary/mirror/drop\n"));
    char *text = explain_text();
    ck_assert_ptr_nonnull(strstr(text, "policy strict: a write is refused while either copy "
                                       "cannot write"));
    ck_assert_ptr_nonnull(strstr(text, "A write is acknowledged only when both copies committed"));
    ck_assert_ptr_nonnull(strstr(text, "failing fsyncs with EIO"));
    ck_assert_ptr_nonnull(strstr(text, "25% of the time (p=0.25), until healed."));
    ck_assert_ptr_nonnull(strstr(text, "messages from primary to mirror are lost"));
    ck_assert_ptr_nonnull(strstr(text, "No client acts in this drill."));
    free(text);
}
END_TEST

START_TEST(explain_describes_offline_sync_and_the_cluster)
{
    assert_parses(parse("drill \"t\"\ntopology offline cluster locals=2 queue=separate "
                        "interval=2s replicas=3 cache=naive propagate=before-commit\n"
                        "at 1s offline local1\nat 2s crash replica2 process\n"));
    char *text = explain_text();
    static const char *const phrases[] = {
        "2 local nodes (local1..local2) take writes locally",
        "a job every 2s pushes their queued changes to central",
        "queue=separate (the naive mode)",
        "the leader and 3 replicas (replica1..replica3)",
        "propagate=before-commit (the naive mode)",
        "cache=naive (the naive mode)",
        "At 1s, local1 goes offline",
        "At 2s, replica2's process dies",
    };
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++) {
        ck_assert_msg(strstr(text, phrases[i]) != NULL, "missing \"%s\" in:\n%s", phrases[i], text);
    }
    free(text);
}
END_TEST

START_TEST(explain_tells_the_stake_ledger_and_the_lie)
{
    assert_parses(parse("drill \"t\"\ntopology single stake predictors=5 tolerance=40 "
                        "slash=12.5% min-stake=600000 round=500ms\n"
                        "at 2s fault stake/predictor3/lie for=4s\nat 3s crash ledger\n"
                        "expect stake-conserved\n"));
    char *text = explain_text();
    static const char *const phrases[] = {
        "A stake ledger on node ledger, a database of its own: 5 predictors "
        "(predictor1..predictor5) each register a deposit of 1000000 micro-units. Every 500ms",
        "the consensus is the stake-weighted mean, a predictor more than 40 away from it loses "
        "12.5% of its stake to the treasury",
        "below 600000 micro-units is excluded for good",
        "At 2s, predictor3 starts lying: each of its predictions lands more than twice the "
        "tolerance away from the truth, so the ledger should slash it every round, for 4s.",
        "At 3s, the ledger loses power",
        "stake-conserved must hold: deposits = balances + treasury",
    };
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++) {
        ck_assert_msg(strstr(text, phrases[i]) != NULL, "missing \"%s\" in:\n%s", phrases[i], text);
    }
    free(text);
}
END_TEST

static Suite *drill_suite(void)
{
    Suite *suite = suite_create("drill");
    TCase *tc = tcase_create("drill");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, full_drill_header_parses_to_exact_values);
    tcase_add_test(tc, full_drill_workloads_number_their_clients);
    tcase_add_test(tc, full_drill_events_are_sorted_stably_by_time);
    tcase_add_test(tc, full_drill_fault_specs_and_actions_carry_their_options);
    tcase_add_test(tc, full_drill_expectations_keep_their_options);
    tcase_add_test(tc, a_title_alone_gives_the_documented_defaults);
    tcase_add_loop_test(tc, each_mistake_is_reported_at_its_word, 0, (int)MISTAKE_COUNT);
    tcase_add_test(tc, five_different_mistakes_are_all_reported_in_line_order);
    tcase_add_test(tc, errors_found_at_the_end_are_sorted_into_line_order);
    tcase_add_test(tc, more_errors_than_the_limit_are_truncated_not_overrun);
    tcase_add_test(tc, a_mistake_in_the_topology_does_not_make_later_lines_wrong);
    tcase_add_test(tc, quoted_strings_keep_hash_spaces_and_escapes);
    tcase_add_test(tc, crlf_lines_and_a_missing_final_newline_parse);
    tcase_add_test(tc, a_nul_byte_is_an_error_not_an_end);
    tcase_add_test(tc, a_partition_bar_may_touch_the_names);
    tcase_add_test(tc, durations_parse_in_every_unit);
    tcase_add_test(tc, durations_format_the_way_a_drill_writes_them);
    tcase_add_test(tc, each_topology_has_its_nodes_in_a_stable_order);
    tcase_add_loop_test(tc, what_cannot_run_is_reported_at_its_word, 0, (int)UNRUNNABLE_COUNT);
    tcase_add_test(tc, what_can_run_is_accepted);
    tcase_add_test(tc, stake_goes_beside_any_topology_with_its_nodes_last);
    tcase_add_test(tc, stake_options_parse_to_exact_values);
    tcase_add_test(tc, a_predictor_lies_by_fault);
    tcase_add_test(tc, without_workloads_op_lines_make_the_clients);
    tcase_add_test(tc, offline_and_online_take_a_local_node);
    tcase_add_test(tc, fault_wildcards_check_the_nodes_they_name);
    tcase_add_test(tc, errors_print_as_file_line_col_message);
    tcase_add_test(tc, a_missing_file_is_enoent_with_one_error_naming_it);
    tcase_add_test(tc, a_file_over_the_size_limit_is_refused_whole);
    tcase_add_test(tc, a_line_over_the_limit_is_one_error);
    tcase_add_test(tc, a_directory_is_not_a_drill);
    tcase_add_test(tc, the_drill_name_is_the_file_name_without_drill);
    tcase_add_test(tc, the_invariant_catalog_follows_the_design);
    tcase_add_test(tc, explain_tells_the_drill_in_words);
    tcase_add_test(tc, explain_says_what_strict_mirroring_refuses);
    tcase_add_test(tc, explain_describes_offline_sync_and_the_cluster);
    tcase_add_test(tc, explain_tells_the_stake_ledger_and_the_lie);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    return check_run(drill_suite());
}
