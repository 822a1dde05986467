/*
 * check_story.c — what the simulator tells the report beyond the verdict
 * (sim/story.c and the outcome classification): a business refusal counts
 * as `rejected`, not failed, with its reason; a violation is marked on the
 * operation and the copy it concerns and told as a causal story that ends
 * with it; the invariant's paragraph travels with its verdict; a mirror
 * half's state (leading, degraded) and a crash show on the node lanes; a
 * `restart` of a live node is traced. Breaks the mirror with ack=early and a
 * failing disk, and asks an empty cart to check out.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"
#include "tests/check_run.h"

static struct drill *parse(const char *text)
{
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(errs);
    int err = drill_parse_text("story.drill", text, strlen(text), d, errs);
    if (err)
        drill_errors_print("story.drill", errs, stderr);
    ck_assert_int_eq(err, 0);
    free(errs);
    return d;
}

static void run(const struct drill *d, struct report_run *rep)
{
    struct sim_options opt = {.seed = d->seed, .seed_given = true};
    char msg[REPORT_ERR_MAX];
    int err = sim_run(d, &opt, rep, msg);
    ck_assert_msg(err == 0, "sim_run: %s", msg);
}

static const struct report_op_count *ops_of(const struct report_run *r, const char *kind)
{
    for (size_t i = 0; i < r->op_count; i++)
        if (strcmp(r->ops[i].kind, kind) == 0)
            return &r->ops[i];
    ck_abort_msg("no operation kind %s", kind);
    return NULL;
}

START_TEST(an_empty_cart_checkout_is_rejected_not_failed)
{
    struct drill *d = parse("drill \"Refusals\"\ntopology single\nseed 3\nduration 2s\n"
                            "products 2 stock=1\nusers 2\n"
                            "at 100ms op checkout client=client1\n"
                            "at 200ms op cart-add client=client2 product=1 qty=5\n"
                            "at 300ms op checkout client=client2\n"
                            "expect stock-conserved\n");
    struct report_run rep;
    run(d, &rep);
    const struct report_op_count *checkout = ops_of(&rep, "checkout");
    ck_assert_uint_eq(checkout->rejected, 2); /* an empty cart, then too little stock */
    ck_assert_uint_eq(checkout->fail, 0);
    ck_assert_uint_eq(checkout->ok, 0);
    bool empty = false, stock = false;
    for (size_t i = 0; i < rep.reason_count; i++) {
        const struct report_reason *x = &rep.reasons[i];
        ck_assert_str_eq(x->outcome, "rejected");
        empty = empty || (strcmp(x->reason, "the cart is empty") == 0 && x->count == 1);
        stock = stock || (strcmp(x->reason, "insufficient stock") == 0 && x->count == 1);
    }
    ck_assert(empty && stock);
    ck_assert_ptr_nonnull(strstr(rep.trace, "#1 rejected: the cart is empty"));
    size_t marks = 0;
    for (size_t i = 0; i < rep.event_count; i++)
        marks += rep.events[i].mark == REPORT_OP_REJECTED;
    ck_assert_uint_eq(marks, 2);
    sim_result_release(&rep);
    free(d);
}
END_TEST

static const char early_ack[] =
    "drill \"Early ack\"\ntopology mirror ack=early\nseed 5\nduration 8s\n"
    "products 10 stock=80 price=2..40\nusers 5\n"
    "workload shoppers clients=5 rate=150/s mix=cart:50,checkout:40,orders:10\n"
    "at 2s fault disk/mirror/write p=0.33 for=3s\nat 6s drain within=1s\n"
    "expect no-lost-acks violated\nexpect stock-conserved\n";

START_TEST(a_violation_is_told_as_a_story_and_marked_where_it_happened)
{
    struct drill *d = parse(early_ack);
    struct report_run rep;
    run(d, &rep);
    const struct report_expectation *e = &rep.expectations[0];
    ck_assert(e->observed_violated);
    ck_assert_ptr_nonnull(strstr(e->paragraph, "your order is placed"));
    ck_assert_ptr_nonnull(strstr(rep.expectations[1].paragraph, "stock"));
    ck_assert_uint_eq(rep.expectations[1].story_count, 0); /* it held */
    ck_assert_uint_ge(e->story_count, 3);
    /* the fault comes first, the acknowledged operation in the middle, the violation last */
    ck_assert_ptr_nonnull(strstr(e->story[0].text, "fault disk/mirror/write armed on mirror: a "
                                                   "write to mirror's database"));
    ck_assert_int_eq(e->story[0].at_us, 2000000);
    const struct report_story_step *last = &e->story[e->story_count - 1];
    ck_assert_str_eq(last->lane, "mirror");
    ck_assert_int_eq(last->at_us, e->first_violation_us);
    ck_assert_ptr_nonnull(strstr(last->text, "no-lost-acks found violated: order "));
    unsigned op = 0;
    ck_assert_int_eq(sscanf(strstr(e->explanation, "(op #"), "(op #%u", &op), 1);
    const struct report_story_step *ack = NULL;
    for (size_t k = 0; k < e->story_count; k++) {
        ck_assert(k == 0 || e->story[k].at_us >= e->story[k - 1].at_us);
        char needle[32];
        snprintf(needle, sizeof needle, "(op #%u)", op);
        if (strstr(e->story[k].text, needle) != NULL)
            ack = &e->story[k];
    }
    ck_assert_ptr_nonnull(ack);
    ck_assert_ptr_nonnull(strstr(ack->text, "was acknowledged: order "));
    /* the red dots: on the mirror that lacks the order, and on the operation at its ack */
    bool on_copy = false, on_op = false;
    for (size_t i = 0; i < rep.event_count; i++) {
        const struct report_event *m = &rep.events[i];
        ck_assert(i == 0 || m->at_us >= rep.events[i - 1].at_us);
        if (m->mark != REPORT_VIOLATION)
            continue;
        on_copy = on_copy || (strcmp(m->lane, "mirror") == 0 && m->at_us == last->at_us);
        on_op = on_op || (strcmp(m->lane, ack->lane) == 0 && m->at_us == ack->at_us);
    }
    ck_assert(on_copy && on_op);
    sim_result_release(&rep);
    free(d);
}
END_TEST

/* The state marks of one lane, in order, as a string of letters (U L B D F O X). */
static void states_of(const struct report_run *r, const char *lane, char *out, size_t len)
{
    static const char letters[] = "ULBDFOX";
    size_t n = 0;
    for (size_t i = 0; i < r->event_count && n + 1 < len; i++)
        if (r->events[i].mark == REPORT_STATE && strcmp(r->events[i].lane, lane) == 0 &&
            (n == 0 || out[n - 1] != letters[r->events[i].state]))
            out[n++] = letters[r->events[i].state];
    out[n] = '\0';
}

START_TEST(the_node_lanes_show_a_degraded_mirror_and_a_crash)
{
    struct drill *d = parse("drill \"Lanes\"\ntopology mirror policy=degrade\nseed 11\n"
                            "duration 8s\nproducts 10 stock=60\nusers 4\n"
                            "workload w clients=4 rate=100/s mix=cart:50,checkout:50 until=6s\n"
                            "at 1s fault disk/mirror/full for=2s\n"
                            "at 4s crash primary\nat 5s restart primary\nat 5500ms restart mirror\n"
                            "at 6s drain within=1s\nexpect no-lost-acks\n");
    struct report_run rep;
    run(d, &rep);
    char primary[64], mirror[64];
    states_of(&rep, "primary", primary, sizeof primary);
    states_of(&rep, "mirror", mirror, sizeof mirror);
    /* in sync, then the primary leads alone while the mirror is degraded, ... */
    ck_assert_msg(strncmp(primary, "UL", 2) == 0, "primary: %s", primary);
    ck_assert_msg(strncmp(mirror, "UD", 2) == 0, "mirror: %s", mirror);
    /* ... the primary goes down with its crash and comes back */
    ck_assert_msg(strstr(primary, "XU") != NULL || strstr(primary, "XL") != NULL, "primary: %s",
                  primary);
    ck_assert_int_eq(rep.events[0].at_us, 0); /* the first states from the start */
    /* restarting a node that is up says so */
    ck_assert_ptr_nonnull(strstr(rep.trace, "restart: mirror is already up"));
    sim_result_release(&rep);
    free(d);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("story");
    TCase *tc = tcase_create("story");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, an_empty_cart_checkout_is_rejected_not_failed);
    tcase_add_test(tc, a_violation_is_told_as_a_story_and_marked_where_it_happened);
    tcase_add_test(tc, the_node_lanes_show_a_degraded_mirror_and_a_crash);
    suite_add_tcase(su, tc);
    return check_run(su);
}
