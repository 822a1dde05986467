/*
 * shrink.c — delta debugging over a drill's text (see shrink.h). The drill
 * is an array of lines; a candidate is that array with some lines dropped or
 * one word of one line rewritten; the oracle parses the candidate and runs it
 * under the seed, and the candidate is kept when the target expectation
 * comes out as it did at first. Lines go first (ddmin: chunks of halving
 * size), then numbers (try the floor, then bisect), in passes until a pass
 * changes nothing. Part of the CLI layer: runs sim_run in this process.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sim/cli.h"
#include "sim/shrink.h"

extern char **environ;

#define SHRINK_PASSES_MAX 6
#define SHRINK_LINES_MAX (2 * DRILL_EVENTS_MAX + 256)
#define SHRINK_WORDS_MAX DRILL_WORDS_MAX
#define MS INT64_C(1000)
#define SECOND INT64_C(1000000)

struct shrinker {
    const char *file;
    uint64_t seed;
    char **lines;
    size_t count;
    struct drill *d;           /* scratch for the oracle */
    struct drill_errors *errs; /* scratch */
    struct shrink_result *res;
    bool demonstration;
};

/* ---- words of a line ------------------------------------------------------------ */

struct word {
    size_t start, len; /* the whole word */
    size_t key_len;    /* key=value: the key's length, else 0 */
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Splits a line as the drill parser does (quotes, escapes, '#' comments);
 * returns the number of words, and where the comment starts in *comment. */
static size_t split(const char *line, struct word *w, size_t *comment)
{
    size_t n = 0, i = 0, len = strlen(line);
    *comment = len;
    while (i < len) {
        if (is_blank(line[i])) {
            i++;
            continue;
        }
        if (line[i] == '#') {
            *comment = i;
            break;
        }
        size_t start = i, key_len = 0;
        bool quoted = false;
        while (i < len && !is_blank(line[i]) && line[i] != '#') {
            if (line[i] == '"') {
                for (i++; i < len && line[i] != '"'; i++)
                    if (line[i] == '\\' && i + 1 < len)
                        i++;
                quoted = true;
            } else if (line[i] == '=' && key_len == 0 && !quoted) {
                key_len = i - start;
            }
            if (i < len)
                i++;
        }
        if (n < SHRINK_WORDS_MAX)
            w[n++] = (struct word){start, i - start, key_len};
    }
    return n;
}

static bool word_is(const char *line, const struct word *w, const char *text)
{
    return w->len == strlen(text) && strncmp(line + w->start, text, w->len) == 0;
}

static bool key_is(const char *line, const struct word *w, const char *key)
{
    return w->key_len == strlen(key) && strncmp(line + w->start, key, w->key_len) == 0;
}

/* A copy of line with bytes [start, start+len) replaced by text. */
static char *splice(const char *line, size_t start, size_t len, const char *text)
{
    size_t total = strlen(line), n = strlen(text);
    char *out = malloc(total - len + n + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, line, start);
    memcpy(out + start, text, n);
    memcpy(out + start + n, line + start + len, total - start - len + 1);
    return out;
}

/* ---- the oracle ------------------------------------------------------------------ */

static char *join(char *const *lines, size_t count, size_t *len)
{
    size_t total = 1;
    for (size_t i = 0; i < count; i++)
        total += strlen(lines[i]) + 1;
    char *text = malloc(total);
    if (text == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(lines[i]);
        memcpy(text + at, lines[i], n);
        at += n;
        text[at++] = '\n';
    }
    text[at] = '\0';
    *len = at;
    return text;
}

static size_t statements(char *const *lines, size_t count)
{
    size_t n = 0;
    struct word w[SHRINK_WORDS_MAX];
    size_t comment;
    for (size_t i = 0; i < count; i++)
        n += split(lines[i], w, &comment) > 0;
    return n;
}

static size_t text_statements(const char *text)
{
    size_t n = 0;
    char line[DRILL_LINE_MAX + 1];
    struct word w[SHRINK_WORDS_MAX];
    size_t comment;
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        snprintf(line, sizeof(line), "%.*s", (int)(len < DRILL_LINE_MAX ? len : DRILL_LINE_MAX), p);
        n += split(line, w, &comment) > 0;
        p += len + (nl != NULL);
    }
    return n;
}

/* The expectation the shrink keeps, in a finished run; NULL if the run has none. */
static const struct report_expectation *target_in(const struct shrinker *k,
                                                  const struct report_run *rep)
{
    for (size_t i = 0; i < rep->expectation_count; i++) {
        const struct report_expectation *e = &rep->expectations[i];
        if (strcmp(e->invariant, k->res->invariant) == 0 &&
            e->expect_violated == k->res->expect_violated)
            return e;
    }
    return NULL;
}

static bool comes_out_the_same(const struct shrinker *k, const struct report_expectation *e)
{
    if (e == NULL)
        return false;
    if (k->demonstration)
        return e->observed_violated;
    return !e->ok && strcmp(report_observed(e), k->res->observed) == 0;
}

/*
 * Parses and runs the candidate; true when the target comes out the same,
 * and then its size and explanation are the result's. -errno (< 0) when the
 * run budget is spent.
 */
static int oracle(struct shrinker *k, char *const *lines, size_t count)
{
    if (k->res->runs >= SHRINK_RUNS_MAX) {
        k->res->capped = true;
        return -E2BIG;
    }
    size_t len;
    char *text = join(lines, count, &len);
    if (text == NULL)
        return -ENOMEM;
    memset(k->d, 0, sizeof(*k->d));
    int err = cli_drill_parse(k->file, text, len, k->d, k->errs);
    free(text);
    if (err)
        return false;
    struct sim_options opt = {.seed = k->seed, .seed_given = true};
    struct report_run rep;
    char msg[REPORT_ERR_MAX];
    k->res->runs++;
    if (sim_run(k->d, &opt, &rep, msg) != 0)
        return false;
    const struct report_expectation *e = target_in(k, &rep);
    bool same = comes_out_the_same(k, e);
    if (same) {
        k->res->after = (struct shrink_size){statements(lines, count), rep.total_ops,
                                             rep.simulated_us};
        snprintf(k->res->explanation, sizeof(k->res->explanation), "%s", e->explanation);
    }
    sim_result_release(&rep);
    return same;
}

/* ---- dropping lines ------------------------------------------------------------------ */

/* Lines that may go: not the title, not the target expectation, not set-up
 * whose absence would mean a default (duration, products...), not blank. */
static bool is_droppable(const struct shrinker *k, const char *line)
{
    struct word w[SHRINK_WORDS_MAX];
    size_t comment, n = split(line, w, &comment);
    if (n == 0)
        return false;
    if (word_is(line, &w[0], "expect")) {
        bool violated = n > 2 && word_is(line, &w[2], "violated");
        char inv[48];
        snprintf(inv, sizeof(inv), "%.*s", (int)w[1].len, line + w[1].start);
        return n < 2 || strcmp(inv, k->res->invariant) != 0 ||
               violated != k->res->expect_violated;
    }
    return word_is(line, &w[0], "at") || word_is(line, &w[0], "about") ||
           word_is(line, &w[0], "workload");
}

/* Replaces the drill with the candidate; frees the lines that went. */
static void commit_drop(struct shrinker *k, const size_t *drop, size_t ndrop)
{
    size_t out = 0, di = 0;
    for (size_t i = 0; i < k->count; i++) {
        if (di < ndrop && drop[di] == i) {
            free(k->lines[i]);
            di++;
            continue;
        }
        k->lines[out++] = k->lines[i];
    }
    k->count = out;
}

/* Tries dropping the lines drop[0..ndrop); true (and done) when the target stays. */
static int try_drop(struct shrinker *k, const size_t *drop, size_t ndrop)
{
    char *cand[SHRINK_LINES_MAX];
    size_t n = 0, di = 0;
    for (size_t i = 0; i < k->count; i++) {
        if (di < ndrop && drop[di] == i) {
            di++;
            continue;
        }
        cand[n++] = k->lines[i];
    }
    int rc = oracle(k, cand, n);
    if (rc > 0)
        commit_drop(k, drop, ndrop);
    return rc;
}

/* ddmin over the droppable lines; true when anything went. */
static int drop_lines(struct shrinker *k, bool *changed)
{
    size_t idx[SHRINK_LINES_MAX], count = 0;
    for (size_t i = 0; i < k->count; i++)
        if (is_droppable(k, k->lines[i]))
            idx[count++] = i;
    size_t chunk = count > 1 ? count / 2 : count;
    while (chunk >= 1 && count > 0) {
        bool progressed = false;
        for (size_t start = 0; start < count;) {
            size_t n = chunk < count - start ? chunk : count - start;
            int rc = try_drop(k, idx + start, n);
            if (rc < 0)
                return rc;
            if (rc == 0) {
                start += n;
                continue;
            }
            /* the kept lines moved down by n from here on */
            for (size_t j = start + n; j < count; j++)
                idx[j - n] = idx[j] - n;
            count -= n;
            progressed = *changed = true;
        }
        if (!progressed)
            chunk /= 2;
        else if (chunk > count / 2 && count > 1)
            chunk = count / 2;
    }
    return 0;
}

/* ---- lowering numbers ------------------------------------------------------------------ */

enum num_kind {
    NUM_DURATION, /* value in us */
    NUM_INT,
    NUM_RATE,     /* "R/s" */
    NUM_PROB,     /* p=, in thousandths */
};

struct num {
    enum num_kind kind;
    int64_t floor;
};

static bool num_parse(enum num_kind kind, const char *text, int64_t *v)
{
    char *end = NULL;
    switch (kind) {
    case NUM_DURATION:
        return drill_duration_parse(text, v) == 0;
    case NUM_INT:
        *v = strtoll(text, &end, 10);
        return end != text && *end == '\0';
    case NUM_RATE: {
        double r = strtod(text, &end);
        if (end == text || strcmp(end, "/s") != 0 || r != floor(r))
            return false; /* a fractional rate stays as written */
        *v = (int64_t)r;
        return true;
    }
    case NUM_PROB: {
        double p = strtod(text, &end);
        if (end == text || *end != '\0')
            return false;
        *v = (int64_t)llround(p * 1000);
        return true;
    }
    }
    return false;
}

static void num_format(enum num_kind kind, int64_t v, char *buf, size_t len)
{
    char dur[DRILL_DURATION_TEXT_MAX];
    switch (kind) {
    case NUM_DURATION:
        snprintf(buf, len, "%s", drill_duration_format(v, dur));
        break;
    case NUM_INT:
        snprintf(buf, len, "%" PRId64, v);
        break;
    case NUM_RATE:
        snprintf(buf, len, "%" PRId64 "/s", v);
        break;
    case NUM_PROB:
        snprintf(buf, len, "%g", (double)v / 1000.0);
        break;
    }
}

/* Values a person would write: durations on a grid that grows with the value. */
static int64_t grid(enum num_kind kind, int64_t high)
{
    if (kind != NUM_DURATION)
        return 1;
    return high >= 10 * SECOND ? SECOND : high >= SECOND ? 100 * MS : high >= 100 * MS ? 10 * MS
                                                                                        : MS;
}

/*
 * After the time of an `at` line changed width, its action keeps the column it
 * had (the timeline stays aligned as its author aligned it), at least one
 * blank after the time. end: where the new time ends in line; old_end in old.
 */
static char *keep_column(char *line, size_t end, size_t old_end, const char *old)
{
    size_t old_gap = strspn(old + old_end, " \t"), gap = strspn(line + end, " \t");
    if (old[old_end + old_gap] == '\0' || strchr(old + old_end, '\t') != NULL)
        return line;
    size_t column = old_end + old_gap;
    size_t want = column > end ? column - end : 1;
    char pad[64];
    if (want >= sizeof(pad))
        return line;
    memset(pad, ' ', want);
    pad[want] = '\0';
    char *fixed = splice(line, end, gap, pad);
    free(line);
    return fixed;
}

/* Tries word j of line i written as v; true (and done) when the target stays. */
static int try_value(struct shrinker *k, size_t i, const struct word *w, enum num_kind kind,
                     int64_t v)
{
    char text[64];
    num_format(kind, v, text, sizeof(text));
    size_t start = w->key_len ? w->start + w->key_len + 1 : w->start;
    size_t len = w->key_len ? w->len - w->key_len - 1 : w->len;
    char *line = splice(k->lines[i], start, len, text);
    if (line == NULL)
        return -ENOMEM;
    if (w->key_len == 0 && strncmp(k->lines[i], "at", 2) == 0 && is_blank(k->lines[i][2]))
        line = keep_column(line, start + strlen(text), start + len, k->lines[i]);
    if (line == NULL)
        return -ENOMEM;
    char *old = k->lines[i];
    k->lines[i] = line;
    int rc = oracle(k, k->lines, k->count);
    if (rc > 0) {
        free(old);
    } else {
        k->lines[i] = old;
        free(line);
    }
    return rc;
}

/* The floor first, then bisection down from the value (re-split after each change). */
static int lower(struct shrinker *k, size_t i, size_t j, struct num nk, bool *changed)
{
    struct word w[SHRINK_WORDS_MAX];
    size_t comment;
    split(k->lines[i], w, &comment);
    char text[64];
    size_t start = w[j].key_len ? w[j].start + w[j].key_len + 1 : w[j].start;
    size_t len = w[j].key_len ? w[j].len - w[j].key_len - 1 : w[j].len;
    snprintf(text, sizeof(text), "%.*s", (int)(len < 63 ? len : 63), k->lines[i] + start);
    int64_t v;
    if (!num_parse(nk.kind, text, &v) || v <= nk.floor)
        return 0;
    int rc = try_value(k, i, &w[j], nk.kind, nk.floor);
    if (rc != 0) {
        *changed = *changed || rc > 0;
        return rc < 0 ? rc : 0;
    }
    int64_t low = nk.floor, high = v;
    for (;;) {
        int64_t g = grid(nk.kind, high);
        int64_t tolerance = high / 8 > g ? high / 8 : g;
        if (high - low <= tolerance)
            break;
        int64_t mid = low + (high - low) / 2;
        mid = mid / g * g;
        if (mid <= low)
            mid = low + g;
        if (mid >= high)
            break;
        split(k->lines[i], w, &comment);
        rc = try_value(k, i, &w[j], nk.kind, mid);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            high = mid;
            *changed = true;
        } else {
            low = mid;
        }
    }
    return 0;
}

/*
 * What can be lowered in word j of a line whose verb (after `at T`) is verb.
 * Not the numbers that bound what the system must achieve: a shorter drain
 * (`within=`), fewer retries or smaller async batches would make a liveness
 * failure of their own, and the shrunk drill would fail for another reason.
 */
static bool numeric(const char *line, const struct word *w, size_t j, size_t verb,
                    struct num *out)
{
    static const struct {
        const char *verb, *key; /* key NULL: the positional word after the verb */
        struct num num;
    } table[] = {
        {"duration", NULL, {NUM_DURATION, 100 * MS}},
        {"products", NULL, {NUM_INT, 1}},
        {"products", "stock", {NUM_INT, 1}},
        {"users", NULL, {NUM_INT, 1}},
        {"workload", "clients", {NUM_INT, 1}},
        {"workload", "rate", {NUM_RATE, 1}},
        {"workload", "until", {NUM_DURATION, 10 * MS}},
        {"topology", "latency", {NUM_DURATION, 0}},
        {"topology", "jitter", {NUM_DURATION, 0}},
        {"topology", "delay", {NUM_DURATION, MS}},
        {"topology", "interval", {NUM_DURATION, 10 * MS}},
        {"topology", "replicas", {NUM_INT, 1}},
        {"topology", "locals", {NUM_INT, 1}},
        {"topology", "ttl", {NUM_DURATION, MS}},
        {"fault", "p", {NUM_PROB, 10}},
        {"fault", "for", {NUM_DURATION, MS}},
        {"fault", "count", {NUM_INT, 1}},
        {"fault", "after", {NUM_INT, 0}},
        {"fault", "delay", {NUM_DURATION, MS}},
        {"op", "product", {NUM_INT, 1}},
        {"op", "qty", {NUM_INT, 1}},
    };
    if (verb == 2 && j == 1) { /* at T: move it earlier */
        *out = (struct num){NUM_DURATION, 0};
        return true;
    }
    for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
        if (!word_is(line, &w[verb], table[t].verb))
            continue;
        bool match = table[t].key == NULL ? (j == verb + 1 && w[j].key_len == 0)
                                          : key_is(line, &w[j], table[t].key);
        if (match) {
            *out = table[t].num;
            return true;
        }
    }
    return false;
}

/* mix=a:1,b:2,c:3 without its entry e (NULL when only one is left). */
static char *mix_without(const char *line, const struct word *w, size_t e)
{
    const char *v = line + w->start + w->key_len + 1;
    size_t vlen = w->len - w->key_len - 1;
    char out[DRILL_LINE_MAX];
    size_t o = 0, index = 0, entries = 1;
    for (size_t i = 0; i < vlen; i++)
        entries += v[i] == ',';
    if (entries < 2 || e >= entries)
        return NULL;
    for (size_t i = 0, from = 0; i <= vlen; i++) {
        if (i < vlen && v[i] != ',')
            continue;
        if (index++ != e) {
            o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%.*s", o ? "," : "",
                                  (int)(i - from), v + from);
        }
        from = i + 1;
    }
    return splice(line, w->start + w->key_len + 1, vlen, out);
}

static int drop_mix_entries(struct shrinker *k, size_t i, size_t j, bool *changed)
{
    for (size_t e = 0;;) {
        struct word w[SHRINK_WORDS_MAX];
        size_t comment;
        split(k->lines[i], w, &comment);
        char *line = mix_without(k->lines[i], &w[j], e);
        if (line == NULL)
            return 0;
        char *old = k->lines[i];
        k->lines[i] = line;
        int rc = oracle(k, k->lines, k->count);
        if (rc > 0) {
            free(old);
            *changed = true;
            continue; /* entry e is now the next one */
        }
        k->lines[i] = old;
        free(line);
        if (rc < 0)
            return rc;
        e++;
    }
}

static int lower_numbers(struct shrinker *k, bool *changed)
{
    for (size_t i = 0; i < k->count; i++) {
        struct word w[SHRINK_WORDS_MAX];
        size_t comment, n = split(k->lines[i], w, &comment);
        if (n == 0)
            continue;
        size_t verb = word_is(k->lines[i], &w[0], "at") ? 2 : 0;
        if (verb >= n)
            continue;
        for (size_t j = 1; j < n; j++) {
            struct num nk;
            int rc = 0;
            split(k->lines[i], w, &comment); /* words move as values change */
            if (word_is(k->lines[i], &w[verb], "workload") && key_is(k->lines[i], &w[j], "mix"))
                rc = drop_mix_entries(k, i, j, changed);
            else if (numeric(k->lines[i], w, j, verb, &nk))
                rc = lower(k, i, j, nk, changed);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* ---- setting up and finishing ---------------------------------------------------------- */

/* Lines without comments or trailing blanks; the seed pinned (`seed N`). */
static int load_lines(struct shrinker *k, const char *text)
{
    k->lines = calloc(SHRINK_LINES_MAX, sizeof(*k->lines));
    if (k->lines == NULL)
        return -ENOMEM;
    bool seeded = false;
    size_t after_topology = 0;
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (k->count + 2 >= SHRINK_LINES_MAX)
            return -E2BIG;
        char *line = strndup(p, n);
        if (line == NULL)
            return -ENOMEM;
        struct word w[SHRINK_WORDS_MAX];
        size_t comment, words = split(line, w, &comment);
        line[comment] = '\0';
        for (size_t e = strlen(line); e > 0 && is_blank(line[e - 1]); e--)
            line[e - 1] = '\0';
        if (words == 0 && comment < n) { /* a comment line goes entirely */
            free(line);
        } else {
            if (words > 1 && word_is(line, &w[0], "seed")) {
                char seed[32];
                snprintf(seed, sizeof(seed), "%" PRIu64, k->seed);
                char *pinned = splice(line, w[1].start, w[1].len, seed);
                free(line);
                if ((line = pinned) == NULL)
                    return -ENOMEM;
                seeded = true;
            }
            if (words > 0 && (word_is(line, &w[0], "topology") || word_is(line, &w[0], "drill")))
                after_topology = k->count + 1;
            k->lines[k->count++] = line;
        }
        p += n + (nl != NULL);
    }
    if (!seeded) {
        char seed[48];
        snprintf(seed, sizeof(seed), "seed %" PRIu64, k->seed);
        memmove(k->lines + after_topology + 1, k->lines + after_topology,
                (k->count - after_topology) * sizeof(*k->lines));
        if ((k->lines[after_topology] = strdup(seed)) == NULL)
            return -ENOMEM;
        k->count++;
    }
    return 0;
}

/* Finds the expectation to keep: the first one not met, else (a drill that
 * demonstrates a break) the first one violated as expected. */
static int pick_target(struct shrinker *k, const struct report_run *rep, const char *invariant)
{
    const struct report_expectation *pick = NULL;
    for (size_t i = 0; i < rep->expectation_count && pick == NULL; i++)
        if (!rep->expectations[i].ok &&
            (invariant == NULL || strcmp(rep->expectations[i].invariant, invariant) == 0))
            pick = &rep->expectations[i];
    if (invariant != NULL && pick == NULL)
        return -ENOENT;
    for (size_t i = 0; i < rep->expectation_count && pick == NULL; i++)
        if (rep->expectations[i].observed_violated) {
            pick = &rep->expectations[i];
            k->demonstration = true;
        }
    if (pick == NULL)
        return -ENOENT;
    struct shrink_result *r = k->res;
    snprintf(r->invariant, sizeof(r->invariant), "%s", pick->invariant);
    r->expect_violated = pick->expect_violated;
    snprintf(r->observed, sizeof(r->observed), "%s", report_observed(pick));
    r->demonstration = k->demonstration;
    r->before = (struct shrink_size){statements(k->lines, k->count), rep->total_ops,
                                     rep->simulated_us};
    return 0;
}

static int first_run(struct shrinker *k, const char *invariant, char err[REPORT_ERR_MAX])
{
    size_t len;
    char *text = join(k->lines, k->count, &len);
    if (text == NULL)
        return -ENOMEM;
    int rc = cli_drill_parse(k->file, text, len, k->d, k->errs);
    free(text);
    if (rc != 0) {
        const struct drill_error *e = &k->errs->e[0];
        snprintf(err, REPORT_ERR_MAX, "%.300s:%d:%d: %.150s", k->file, e->line, e->col, e->msg);
        return -EINVAL;
    }
    struct sim_options opt = {.seed = k->seed, .seed_given = true};
    struct report_run rep;
    rc = sim_run(k->d, &opt, &rep, err);
    if (rc != 0)
        return rc;
    k->res->runs++;
    rc = pick_target(k, &rep, invariant);
    sim_result_release(&rep);
    if (rc == -ENOENT)
        snprintf(err, REPORT_ERR_MAX,
                 "nothing to shrink: with seed %" PRIu64 " every expectation is met and nothing "
                 "is violated",
                 k->seed);
    return rc;
}

/* The time of an `at` line; false for any other line. */
static bool at_time(const char *line, int64_t *us)
{
    struct word w[SHRINK_WORDS_MAX];
    size_t comment, n = split(line, w, &comment);
    if (n < 2 || !word_is(line, &w[0], "at"))
        return false;
    char text[64];
    snprintf(text, sizeof(text), "%.*s", (int)(w[1].len < 63 ? w[1].len : 63), line + w[1].start);
    return num_parse(NUM_DURATION, text, us);
}

/*
 * Moving a line earlier can take it past lines above it. The parser orders
 * the timeline by time, ties in file order, so sorting the `at` lines the
 * same way (stable, each into a place an `at` line held) leaves the run as
 * it was, and the drill reads in time order again.
 */
static void sort_timeline(struct shrinker *k)
{
    size_t slot[SHRINK_LINES_MAX];
    int64_t when[SHRINK_LINES_MAX];
    char *line[SHRINK_LINES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < k->count; i++) {
        int64_t us;
        if (!at_time(k->lines[i], &us))
            continue;
        size_t j = n++;
        for (; j > 0 && when[j - 1] > us; j--) { /* insertion: stable */
            when[j] = when[j - 1];
            line[j] = line[j - 1];
        }
        when[j] = us;
        line[j] = k->lines[i];
        slot[n - 1] = i;
    }
    for (size_t j = 0; j < n; j++)
        k->lines[slot[j]] = line[j];
}

/* The text to write: one about line saying where it came from, no runs of blank lines. */
static char *finish_text(struct shrinker *k)
{
    sort_timeline(k);
    char about[DRILL_TEXT_MAX];
    const struct shrink_result *r = k->res;
    const char *base = strrchr(k->file, '/');
    snprintf(about, sizeof(about),
             "about \"Shrunk by faultdrill shrink from %.200s with seed %" PRIu64
             ": %s is still %s, %s.\"",
             base ? base + 1 : k->file, k->seed, r->invariant, r->observed,
             k->demonstration ? "as the drill expects" : "which fails the drill");
    size_t total = strlen(about) + 2;
    for (size_t i = 0; i < k->count; i++)
        total += strlen(k->lines[i]) + 1;
    char *text = malloc(total);
    if (text == NULL)
        return NULL;
    size_t at = 0;
    bool blank = true, about_done = false;
    for (size_t i = 0; i < k->count; i++) {
        bool is_blank_line = k->lines[i][0] == '\0';
        if (is_blank_line && blank)
            continue;
        at += (size_t)sprintf(text + at, "%s\n", k->lines[i]);
        blank = is_blank_line;
        if (!about_done && strncmp(k->lines[i], "drill", 5) == 0) {
            at += (size_t)sprintf(text + at, "%s\n", about);
            about_done = true;
        }
    }
    while (at > 1 && text[at - 1] == '\n' && text[at - 2] == '\n')
        at--;
    text[at] = '\0';
    return text;
}

/* The written text itself must fail the same way: one more run, and its sizes are the result's. */
static int verify(struct shrinker *k, const char *text, char err[REPORT_ERR_MAX])
{
    memset(k->d, 0, sizeof(*k->d));
    if (cli_drill_parse(k->file, text, strlen(text), k->d, k->errs) != 0) {
        snprintf(err, REPORT_ERR_MAX, "the shrunk drill does not parse: %.200s (a bug of shrink)",
                 k->errs->e[0].msg);
        return -EPROTO;
    }
    struct sim_options opt = {.seed = k->seed, .seed_given = true};
    struct report_run rep;
    int rc = sim_run(k->d, &opt, &rep, err);
    if (rc != 0)
        return rc;
    k->res->runs++;
    const struct report_expectation *e = target_in(k, &rep);
    if (!comes_out_the_same(k, e)) {
        snprintf(err, REPORT_ERR_MAX, "the shrunk drill no longer fails the same way (a bug of shrink)");
        rc = -EPROTO;
    } else {
        k->res->after.statements = text_statements(text);
        k->res->after.ops = rep.total_ops;
        k->res->after.simulated_us = rep.simulated_us;
        snprintf(k->res->explanation, sizeof(k->res->explanation), "%s", e->explanation);
    }
    sim_result_release(&rep);
    return rc;
}

int shrink_drill(const char *file, const char *text, uint64_t seed, const char *invariant,
                 struct shrink_result *out, char err[REPORT_ERR_MAX])
{
    memset(out, 0, sizeof(*out));
    struct shrinker k = {.file = file, .seed = seed, .res = out};
    k.d = calloc(1, sizeof(*k.d));
    k.errs = calloc(1, sizeof(*k.errs));
    int rc = k.d && k.errs ? load_lines(&k, text) : -ENOMEM;
    if (rc == 0)
        rc = first_run(&k, invariant, err);
    for (int pass = 0; rc == 0 && pass < SHRINK_PASSES_MAX; pass++) {
        bool changed = false;
        rc = drop_lines(&k, &changed);
        if (rc == 0)
            rc = lower_numbers(&k, &changed);
        if (!changed)
            break;
    }
    if (rc == -E2BIG && out->capped)
        rc = 0; /* the budget is spent: what was reached so far stands */
    if (rc == 0 && out->after.statements == 0)
        out->after = out->before; /* nothing could go */
    if (rc == 0 && (out->text = finish_text(&k)) == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = verify(&k, out->text, err);
    if (rc == -ENOMEM)
        snprintf(err, REPORT_ERR_MAX, "out of memory");
    else if (rc == -E2BIG)
        snprintf(err, REPORT_ERR_MAX, "the drill has more than %d lines", SHRINK_LINES_MAX);
    for (size_t i = 0; i < k.count; i++)
        free(k.lines[i]);
    free(k.lines);
    free(k.d);
    free(k.errs);
    return rc;
}

void shrink_result_release(struct shrink_result *r)
{
    free(r->text);
    r->text = NULL;
}

/* ---- the command ------------------------------------------------------------------------ */

static const char usage_shrink[] =
    "usage: faultdrill shrink DRILL [--seed N] [-o FILE]\n"
    "\n"
    "Finds the smallest drill that still fails the same way with the same seed:\n"
    "drops timeline lines, other expectations, workloads; lowers durations, rates,\n"
    "counts, p=, for=, until=; moves faults earlier; keeps a change only when the\n"
    "same expectation still fails. Writes the result (default <name>.min.drill in\n"
    "the current directory), prints a unified diff against the original and the\n"
    "sizes before and after. A drill that meets every expectation but demonstrates\n"
    "a violation (`expect X violated`) is shrunk keeping that violation.\n"
    "\n"
    "  --seed N   the failing seed (default: the drill's own)\n"
    "  -o FILE    where to write the minimal drill\n"
    "\n"
    "Exit codes: 0 written, 2 bad usage, an invalid drill or nothing to shrink\n"
    "(the seed meets every expectation), 3 could not run.\n";

static char *read_text(const char *path, char err[REPORT_ERR_MAX])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, REPORT_ERR_MAX, "%.300s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(DRILL_FILE_BYTES_MAX + 1);
    size_t n = text ? fread(text, 1, DRILL_FILE_BYTES_MAX + 1, f) : 0;
    fclose(f);
    if (text == NULL || n > DRILL_FILE_BYTES_MAX) {
        snprintf(err, REPORT_ERR_MAX, "%.300s: too big or out of memory", path);
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

static int write_text(const char *path, const char *text, char err[REPORT_ERR_MAX])
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) {
        snprintf(err, REPORT_ERR_MAX, "cannot write %.300s: %s", path, strerror(errno));
        return -EIO;
    }
    return 0;
}

/* diff -u of the two files on stdout; diff(1) is in every Debian (diffutils is essential).
 * The labels are the names alone: no modification times, so the output is a function of the
 * input. */
static void print_diff(const char *a, const char *b)
{
    fflush(stdout);
    char *argv[] = {"diff", "-u", "--label", (char *)a, "--label", (char *)b,
                    (char *)a, (char *)b, NULL};
    pid_t pid;
    if (posix_spawnp(&pid, "diff", NULL, NULL, argv, environ) != 0) {
        printf("(no diff(1) here: compare %s with %s)\n", a, b);
        return;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
}

static void print_sizes(const struct shrink_result *r, int64_t wall_ms)
{
    char ob[REPORT_FMT_MAX], oa[REPORT_FMT_MAX], sb[REPORT_FMT_MAX], sa[REPORT_FMT_MAX];
    report_format_count(r->before.ops, ob);
    report_format_count(r->after.ops, oa);
    report_format_duration(r->before.simulated_us, sb);
    report_format_duration(r->after.simulated_us, sa);
    printf("statements %zu -> %zu, operations %s -> %s, simulated %s -> %s "
           "(%u runs in %.1f s%s)\n",
           r->before.statements, r->after.statements, ob, oa, sb, sa, r->runs,
           (double)wall_ms / 1000.0, r->capped ? ", stopped at the run budget" : "");
}

int shrink_main(int argc, char **argv)
{
    const char *path = NULL, *out = NULL;
    uint64_t seed = 0;
    bool seed_given = false;
    for (int i = 0; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage_shrink, stdout);
            return EXIT_MET;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            if (cli_parse_u64(argv[++i], &seed) != 0) {
                fprintf(stderr, "faultdrill shrink: --seed takes a whole number, not '%s'\n",
                        argv[i]);
                return EXIT_USAGE;
            }
            seed_given = true;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] == '-' || path != NULL) {
            fprintf(stderr, "faultdrill shrink: unexpected '%s'\n%s", argv[i], usage_shrink);
            return EXIT_USAGE;
        } else {
            path = argv[i];
        }
    }
    if (path == NULL) {
        fprintf(stderr, "faultdrill shrink: no drill given\n%s", usage_shrink);
        return EXIT_USAGE;
    }
    struct drill *d = cli_drill_load(path);
    if (d == NULL)
        return EXIT_USAGE;
    if (!seed_given)
        seed = d->seed;
    char def[DRILL_NAME_MAX + 16], err[REPORT_ERR_MAX] = "";
    snprintf(def, sizeof(def), "%s.min.drill", d->name);
    free(d);
    if (out == NULL)
        out = def;
    char *text = read_text(path, err);
    if (text == NULL) {
        fprintf(stderr, "faultdrill shrink: %s\n", err);
        return EXIT_CANNOT_RUN;
    }
    struct shrink_result r;
    int64_t t0 = cli_now_ms();
    int rc = shrink_drill(path, text, seed, NULL, &r, err);
    free(text);
    if (rc == 0 && write_text(out, r.text, err) != 0)
        rc = -EIO;
    if (rc != 0) {
        fprintf(stderr, "faultdrill shrink: %s\n", err);
        shrink_result_release(&r);
        return rc == -EINVAL || rc == -ENOENT ? EXIT_USAGE : EXIT_CANNOT_RUN;
    }
    print_diff(path, out);
    printf("%s: with seed %" PRIu64 " %s is still %s, %s\n  %s\n", out, seed, r.invariant,
           r.observed,
           r.demonstration ? "the violation the drill demonstrates" : "which fails the drill",
           r.explanation);
    print_sizes(&r, cli_now_ms() - t0);
    shrink_result_release(&r);
    return EXIT_MET;
}
