/*
 * check_fuzz.c — the generator of `faultdrill fuzz` (sim/fuzzgen.c) as a
 * library: which topologies it draws from, and the shapes it must produce.
 *
 * The space is whatever `run` builds: a combination (`mirror async`) joins
 * it the moment the runner accepts it, and one it refuses is never drawn. A
 * fake probe stands in for a runner that accepts a combination (none does on
 * main yet); the real probe is checked against `check` and `run` directly.
 *
 * The shapes (a late offline push, a jitter wide enough to reorder async
 * batches) come at the rates that let fuzz find the bugs they exist for,
 * and every drill parses and is a function of (seed, n).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cli.h"
#include "sim/fuzz.h"
#include "sim/sim.h"
#include "tests/check_run.h"

#define MIRROR_ASYNC (DRILL_MIRROR | DRILL_ASYNC)

static bool in_space(const struct fuzz_space *sp, unsigned set)
{
    for (size_t i = 0; i < sp->count; i++)
        if (sp->sets[i] == set)
            return true;
    return false;
}

/* A runner that builds every component alone and `mirror async` (with or
 * without stake), and no other combination. */
static bool accepts_mirror_async(unsigned set, void *ctx)
{
    int *asked = ctx;
    (*asked)++;
    unsigned bare = set & ~(unsigned)DRILL_STAKE;
    return (bare & (bare - 1)) == 0 || bare == MIRROR_ASYNC;
}

static bool accepts_singles(unsigned set, void *ctx)
{
    (void)ctx;
    unsigned bare = set & ~(unsigned)DRILL_STAKE;
    return (bare & (bare - 1)) == 0;
}

static char *generate(const struct fuzz_space *sp, uint64_t seed, uint64_t n)
{
    char *text = malloc(FUZZ_DRILL_BYTES_MAX);
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(fuzz_generate(sp, seed, n, text, FUZZ_DRILL_BYTES_MAX), 0);
    return text;
}

static void assert_parses(const char *text)
{
    struct drill *d = calloc(1, sizeof(*d));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(errs);
    int err = cli_drill_parse("fuzz.drill", text, strlen(text), d, errs);
    ck_assert_msg(err == 0, "a generated drill does not parse: %d:%d: %s\n%s", errs->e[0].line,
                  errs->e[0].col, errs->e[0].msg, text);
    free(d);
    free(errs);
}

START_TEST(a_combination_the_runner_accepts_joins_the_space)
{
    struct fuzz_space sp = {0};
    char err[REPORT_ERR_MAX] = "";
    int asked = 0;
    ck_assert_int_eq(fuzz_space_build(&sp, NULL, accepts_mirror_async, &asked, err), 0);
    unsigned cand[FUZZ_SETS_MAX];
    ck_assert_int_eq(asked, (int)fuzz_set_candidates(cand)); /* every candidate was probed */
    ck_assert(in_space(&sp, MIRROR_ASYNC));
    ck_assert(in_space(&sp, MIRROR_ASYNC | DRILL_STAKE));
    ck_assert(!in_space(&sp, DRILL_ASYNC | DRILL_CLUSTER)); /* refused: never drawn */
    ck_assert_uint_eq(sp.count, 12);                       /* 5 alone + 1 pair, x2 stake */

    /* named, it is the whole space; named while refused, it is a usage error */
    ck_assert_int_eq(fuzz_space_build(&sp, "mirror async", accepts_mirror_async, &asked, err), 0);
    ck_assert_uint_eq(sp.count, 1);
    ck_assert_uint_eq(sp.sets[0], MIRROR_ASYNC);
    ck_assert_int_eq(fuzz_space_build(&sp, "mirror async", accepts_singles, NULL, err), -ENOTSUP);
    ck_assert_ptr_nonnull(strstr(err, "does not build it yet"));
    ck_assert_int_eq(fuzz_space_build(&sp, "mirror sideways", accepts_singles, NULL, err),
                     -EINVAL);

    /* a space of the combination: every drill is of it (whether it parses is the
     * runner's; here only the words) */
    struct fuzz_space only = {.count = 1, .sets = {MIRROR_ASYNC}};
    char *text = malloc(FUZZ_DRILL_BYTES_MAX);
    ck_assert_ptr_nonnull(text);
    int rc = fuzz_generate(&only, 3, 0, text, FUZZ_DRILL_BYTES_MAX);
    if (fuzz_set_runnable(MIRROR_ASYNC, NULL)) {
        ck_assert_int_eq(rc, 0); /* the runner builds it: a full drill, which parses */
        ck_assert_ptr_nonnull(strstr(text, "\ntopology mirror async "));
        assert_parses(text);
    } else {
        ck_assert_int_ne(rc, 0); /* the parser refuses the header: no drill, an error */
    }
    free(text);
}
END_TEST

/* The component words of a drill's topology line ("mirror stake"): the words
 * before the first option. */
static void topology_words(const char *text, char *buf, size_t len)
{
    const char *t = strstr(text, "\ntopology ");
    ck_assert_ptr_nonnull(t);
    size_t n = 0;
    buf[0] = '\0';
    for (const char *w = t + 10; *w != '\n' && *w != '\0';) {
        size_t wl = strcspn(w, " \n");
        if (memchr(w, '=', wl) != NULL)
            break;
        n += (size_t)snprintf(buf + n, len - n, "%s%.*s", n ? " " : "", (int)wl, w);
        w += wl;
        while (*w == ' ')
            w++;
    }
}

START_TEST(the_space_is_exactly_what_this_build_runs)
{
    struct fuzz_space sp = {0};
    char err[REPORT_ERR_MAX] = "";
    ck_assert_int_eq(fuzz_space_probe(&sp, NULL, err), 0);
    unsigned cand[FUZZ_SETS_MAX];
    size_t n = fuzz_set_candidates(cand);
    ck_assert_uint_eq(n, 22); /* 5 alone, 6 pairs, each also with stake */
    for (size_t i = 0; i < n; i++) {
        /* run for itself: parse the header alone and simulate an instant */
        char words[64], text[256];
        fuzz_set_words(cand[i], words, sizeof(words));
        snprintf(text, sizeof(text), "drill \"probe\"\ntopology %s\nduration 10ms\n", words);
        struct drill *d = calloc(1, sizeof(*d));
        struct drill_errors *errs = calloc(1, sizeof(*errs));
        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(errs);
        bool runs = false;
        if (cli_drill_parse("probe.drill", text, strlen(text), d, errs) == 0) {
            struct report_run rep;
            char msg[REPORT_ERR_MAX];
            struct sim_options opt = {.seed = 1, .seed_given = true};
            runs = sim_run(d, &opt, &rep, msg) == 0;
            if (runs)
                sim_result_release(&rep);
        }
        free(d);
        free(errs);
        ck_assert_msg(runs == in_space(&sp, cand[i]), "topology %s: runs %d, in the space %d",
                      words, runs, in_space(&sp, cand[i]));
    }
    /* every component alone runs on main */
    ck_assert(in_space(&sp, DRILL_SINGLE));
    ck_assert(in_space(&sp, DRILL_MIRROR));
    ck_assert(in_space(&sp, DRILL_ASYNC));
    ck_assert(in_space(&sp, DRILL_OFFLINE));
    ck_assert(in_space(&sp, DRILL_CLUSTER));

    /* drawn: every set of the space, every drill parses and is a function of (seed, n) */
    size_t seen = 0;
    bool drawn[FUZZ_SETS_MAX] = {false};
    for (uint64_t k = 0; k < 150; k++) {
        char *text = generate(&sp, 21, k), *again = generate(&sp, 21, k), words[64];
        ck_assert_str_eq(text, again);
        assert_parses(text);
        topology_words(text, words, sizeof(words));
        for (size_t i = 0; i < sp.count; i++) {
            char want[64];
            fuzz_set_words(sp.sets[i], want, sizeof(want));
            if (strcmp(words, want) == 0 && !drawn[i]) {
                drawn[i] = true;
                seen++;
            }
        }
        free(text);
        free(again);
    }
    ck_assert_uint_eq(seen, sp.count);
}
END_TEST

/* How many of `runs` drills of seed over the one topology named contain needle
 * with a number at least min right after it. */
static int count_with(const char *topology, uint64_t seed, int runs, const char *needle,
                      double min, const char *unit)
{
    struct fuzz_space sp = {0};
    char err[REPORT_ERR_MAX] = "";
    ck_assert_int_eq(fuzz_space_probe(&sp, topology, err), 0);
    int count = 0;
    for (int k = 0; k < runs; k++) {
        char *text = generate(&sp, seed, (uint64_t)k);
        assert_parses(text);
        const char *at = strstr(text, needle);
        char *end = NULL;
        double v = at != NULL ? strtod(at + strlen(needle), &end) : 0;
        if (at != NULL && end != NULL && strncmp(end, unit, strlen(unit)) == 0 && v >= min)
            count++;
        free(text);
    }
    return count;
}

START_TEST(offline_drills_push_late_about_a_third_of_the_time)
{
    /* a local's link to central holding pushes back past the 0.5s reply timeout: written as
     * delay=0.6s..2s (formatted 600ms..900ms or 1s..2s) */
    int ms = count_with("offline", 7, 300, "/central/delay delay=", 600, "ms");
    int s = count_with("offline", 7, 300, "/central/delay delay=", 1, "s");
    int late = ms + s;
    ck_assert_msg(late >= 60 && late <= 150, "%d of 300 offline drills push late", late);
}
END_TEST

START_TEST(async_drills_reorder_batches_by_jitter_about_a_fifth_of_the_time)
{
    /* the shipper sends a batch every 10ms: only a wider jitter reorders them */
    int wide = count_with("async", 7, 300, " jitter=", 12, "ms");
    ck_assert_msg(wide >= 30 && wide <= 100, "%d of 300 async drills with a wide jitter", wide);
    int narrow = count_with("async", 7, 300, " jitter=", 1, "ms") - wide;
    ck_assert_msg(narrow > 0, "the narrow jitter is still drawn");
    /* a topology without batches to reorder never gets it */
    ck_assert_int_eq(count_with("single", 7, 100, " jitter=", 12, "ms"), 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("fuzz");
    TCase *tc = tcase_create("fuzz");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_combination_the_runner_accepts_joins_the_space);
    tcase_add_test(tc, the_space_is_exactly_what_this_build_runs);
    tcase_add_test(tc, offline_drills_push_late_about_a_third_of_the_time);
    tcase_add_test(tc, async_drills_reorder_batches_by_jitter_about_a_fifth_of_the_time);
    suite_add_tcase(su, tc);
    return check_run(su);
}
