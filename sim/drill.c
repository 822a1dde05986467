/*
 * drill.c — the drill language (DESIGN.md §4, a contract): splits a drill
 * file into statements and words, checks every statement against the
 * topology it declares, the fault-point catalog and the invariant catalog,
 * and fills a struct drill. It reports every error of a file, each at the
 * line and column of the offending word, rather than stopping at the first:
 * a statement with an error is dropped, but what it declared validly
 * (a topology's components, a workload's clients) is kept, so that one
 * mistake does not make every later line wrong too.
 *
 * Pure text processing: it depends on libfaults' catalog (point names,
 * errno names) and on platform.h's mirror enums only. It never arms a
 * fault, opens a database or reads the clock. The invariant catalog is data
 * in invariants.c; the words for students are in explain.c.
 */
#include "sim/drill.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "platform/stake.h"

/* Limits of values that have no constant in drill.h: beyond them a drill
 * is surely a typo, and the runner's queues stay bounded. */
#define BATCH_MAX            100000     /* async batch=N */
#define RETRIES_MAX          1000       /* offline retries=N */
#define EXPECT_MAX_MAX       1000000000 /* expect ... max=N */
#define SUGGEST_DISTANCE_MAX 2          /* "did you mean" only this close */
#define SUGGEST_LEN_MAX      64         /* longer words get no suggestion */
#define LIST_TEXT_MAX        200        /* "nodes here: ..." and similar lists */
#define HINT_TEXT_MAX        96         /* "; did you mean '...'?" */
#define FAULT_KINDS_MAX      64         /* catalog entries searched for a suggestion */
#define PERCENT_DIGITS_MAX   4          /* slash=12.3456%: a part per million is 0.0001 % */

_Static_assert(DRILL_NODES_MAX <= FAULTS_NODES_MAX, "every node gets a VFS");
_Static_assert(DRILL_STAKE_AMOUNT_MAX == STAKE_DEPOSIT_MAX, "deposit= is what the ledger takes");
_Static_assert(DRILL_PREDICTORS_MAX <= STAKE_PREDICTORS_MAX, "predictors= fits a ledger");
_Static_assert(4 * DRILL_STAKE_TOLERANCE_MAX < STAKE_PREDICTION_MAX / 4,
               "a lie of a few tolerances around the truth is a valid prediction");

/* ---- Names -------------------------------------------------------------- */

static const char *const op_names[DRILL_OP_COUNT] = {
    [DRILL_OP_BROWSE] = "browse",
    [DRILL_OP_SEARCH] = "search",
    [DRILL_OP_CART_ADD] = "cart-add",
    [DRILL_OP_CART_REMOVE] = "cart-remove",
    [DRILL_OP_CHECKOUT] = "checkout",
    [DRILL_OP_ORDER_STATUS] = "order-status",
    [DRILL_OP_ORDER_CANCEL] = "order-cancel",
    [DRILL_OP_USER_CREATE] = "user-create",
    [DRILL_OP_USER_UPDATE] = "user-update",
};

/* Short names the mix and `op` accept too (drill.h). */
static const struct {
    const char *alias;
    enum drill_op op;
} op_aliases[] = {
    {"cart", DRILL_OP_CART_ADD},
    {"orders", DRILL_OP_ORDER_STATUS},
    {"cancel", DRILL_OP_ORDER_CANCEL},
    {"user", DRILL_OP_USER_UPDATE},
};

#define OP_ALIAS_COUNT (sizeof op_aliases / sizeof op_aliases[0])

/* Indexed by enum drill_action; NULL-terminated for the suggestion lists. */
static const char *const action_names[] = {
    "fault",  "heal",     "partition", "crash",      "restart", "offline",
    "online", "failover", "op",        "checkpoint", "drain",   NULL,
};

#define ACTION_COUNT (sizeof action_names / sizeof action_names[0] - 1)

/* Indexed by bit position of enum drill_component. */
static const char *const component_names[] = {
    "single", "mirror", "async", "offline", "cluster", "stake", NULL,
};

#define COMPONENT_COUNT (sizeof component_names / sizeof component_names[0] - 1)

const char *drill_op_name(enum drill_op op)
{
    assert((unsigned)op < DRILL_OP_COUNT);
    return op_names[op];
}

const char *drill_action_name(enum drill_action a)
{
    assert((unsigned)a < ACTION_COUNT);
    return action_names[a];
}

const char *drill_component_name(enum drill_component c)
{
    for (size_t i = 0; i < COMPONENT_COUNT; i++) {
        if ((unsigned)c == 1u << i) {
            return component_names[i];
        }
    }
    assert(!"drill_component_name: not one component");
    return "?";
}

/* An operation by name or alias. */
static bool op_parse(const char *name, enum drill_op *out)
{
    for (size_t i = 0; i < DRILL_OP_COUNT; i++) {
        if (strcmp(op_names[i], name) == 0) {
            *out = (enum drill_op)i;
            return true;
        }
    }
    for (size_t i = 0; i < OP_ALIAS_COUNT; i++) {
        if (strcmp(op_aliases[i].alias, name) == 0) {
            *out = op_aliases[i].op;
            return true;
        }
    }
    return false;
}

/* ---- Nodes -------------------------------------------------------------- */

static size_t nodes_add(char names[DRILL_NODES_MAX][FAULTS_NODE_MAX], size_t n, const char *name,
                        int number)
{
    char node[FAULTS_NODE_MAX];
    if (number > 0) {
        snprintf(node, sizeof node, "%s%d", name, number);
    } else {
        snprintf(node, sizeof node, "%s", name);
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], node) == 0) {
            return n; /* mirror and async share the primary */
        }
    }
    assert(n < DRILL_NODES_MAX);
    memcpy(names[n], node, sizeof node);
    return n + 1;
}

size_t drill_nodes(const struct drill *d, char names[DRILL_NODES_MAX][FAULTS_NODE_MAX])
{
    const struct drill_topology *t = &d->topology;
    unsigned comps = t->components != 0 ? t->components : DRILL_SINGLE;
    size_t n = 0;
    /* a mirror is the second disk of the node it mirrors, listed after it:
     * the primary, the cluster's leader, or the offline local */
    bool beside = (comps & DRILL_MIRROR) && (comps & (DRILL_OFFLINE | DRILL_CLUSTER));
    if ((comps & (DRILL_SINGLE | DRILL_ASYNC)) || ((comps & DRILL_MIRROR) && !beside)) {
        n = nodes_add(names, n, "primary", 0);
    }
    if ((comps & DRILL_MIRROR) && !beside) {
        n = nodes_add(names, n, "mirror", 0);
    }
    if (comps & DRILL_ASYNC) {
        n = nodes_add(names, n, "secondary", 0);
    }
    if (comps & DRILL_OFFLINE) {
        /* every local's disk is mirrored: localK's mirror is mirrorK */
        for (int i = 1; i <= t->locals; i++) {
            n = nodes_add(names, n, "local", i);
            if (beside) {
                n = nodes_add(names, n, "mirror", i);
            }
        }
        if (t->locals == 0) {
            n = nodes_add(names, n, "local", 0);
            if (beside) {
                n = nodes_add(names, n, "mirror", 0);
            }
        }
        n = nodes_add(names, n, "central", 0);
    }
    if (comps & DRILL_CLUSTER) {
        n = nodes_add(names, n, "leader", 0);
        if (beside) {
            n = nodes_add(names, n, "mirror", 0);
        }
        for (int i = 1; i <= t->replicas; i++) {
            n = nodes_add(names, n, "replica", i);
        }
        n = nodes_add(names, n, "registry", 0);
    }
    if (comps & DRILL_STAKE) {
        n = nodes_add(names, n, "ledger", 0);
        for (int i = 1; i <= t->predictors; i++) {
            n = nodes_add(names, n, "predictor", i);
        }
    }
    return n;
}

bool drill_has_node(const struct drill *d, const char *name)
{
    char names[DRILL_NODES_MAX][FAULTS_NODE_MAX];
    size_t n = drill_nodes(d, names);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* How many nodes drill_nodes would list, without asserting on the limit. */
static int topology_node_count(const struct drill_topology *t)
{
    int n = 0;
    unsigned c = t->components;
    if ((c & (DRILL_SINGLE | DRILL_ASYNC)) ||
        ((c & DRILL_MIRROR) && !(c & (DRILL_OFFLINE | DRILL_CLUSTER)))) {
        n++; /* primary (drill_nodes) */
    }
    bool mirror = (c & DRILL_MIRROR) != 0;
    n += mirror && !(c & DRILL_OFFLINE) ? 1 : 0; /* offline: one mirror per local, below */
    n += (t->components & DRILL_ASYNC) ? 1 : 0;
    if (t->components & DRILL_OFFLINE) {
        n += (t->locals > 0 ? t->locals : 1) * (mirror ? 2 : 1) + 1;
    }
    if (t->components & DRILL_CLUSTER) {
        n += t->replicas + 2;
    }
    if (t->components & DRILL_STAKE) {
        n += t->predictors + 1;
    }
    return n;
}

/* ---- Durations ---------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const struct {
    const char *unit;
    int64_t us;
} duration_units[] = {
    {"m", INT64_C(60000000)},
    {"s", INT64_C(1000000)},
    {"ms", INT64_C(1000)},
    {"us", INT64_C(1)},
};

#define DURATION_UNIT_COUNT          (sizeof duration_units / sizeof duration_units[0])
#define DURATION_FRACTION_DIGITS_MAX 9

int drill_duration_parse(const char *text, int64_t *us)
{
    assert(text != NULL && us != NULL);
    uint64_t whole = 0;
    const char *s = text;
    for (; is_digit(*s); s++) {
        if (whole > (UINT64_MAX - 9) / 10) {
            return -EINVAL; /* does not even fit a number: garbage */
        }
        whole = whole * 10 + (uint64_t)(*s - '0');
    }
    if (s == text) {
        return -EINVAL;
    }
    uint64_t frac = 0, frac_scale = 1;
    if (*s == '.') {
        const char *frac_start = ++s;
        for (; is_digit(*s); s++) {
            if (s - frac_start == DURATION_FRACTION_DIGITS_MAX) {
                return -EINVAL;
            }
            frac = frac * 10 + (uint64_t)(*s - '0');
            frac_scale *= 10;
        }
        if (s == frac_start) {
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < DURATION_UNIT_COUNT; i++) {
        if (strcmp(s, duration_units[i].unit) != 0) {
            continue;
        }
        uint64_t mult = (uint64_t)duration_units[i].us;
        /* frac < 1e9 and mult <= 6e7: the product fits. Durations are whole
         * microseconds, so a finer fraction is refused, not rounded. */
        if (frac * mult % frac_scale != 0) {
            return -EINVAL;
        }
        if (whole > (uint64_t)DRILL_DURATION_US_MAX / mult) {
            return -ERANGE;
        }
        uint64_t total = whole * mult + frac * mult / frac_scale;
        if (total > (uint64_t)DRILL_DURATION_US_MAX) {
            return -ERANGE;
        }
        *us = (int64_t)total;
        return 0;
    }
    return -EINVAL;
}

const char *drill_duration_format(int64_t us, char buf[DRILL_DURATION_TEXT_MAX])
{
    assert(us >= 0);
    /* Whole minutes as minutes; from a second on, seconds (1.5s reads
     * better than 1500ms); below, milliseconds, then microseconds. */
    int64_t unit = us % duration_units[0].us == 0 && us > 0 ? duration_units[0].us
                   : us >= duration_units[1].us             ? duration_units[1].us
                   : us >= duration_units[2].us             ? duration_units[2].us
                                                            : duration_units[3].us;
    size_t u = 0;
    while (duration_units[u].us != unit) {
        u++;
    }
    int64_t frac = us % unit;
    if (frac == 0) {
        snprintf(buf, DRILL_DURATION_TEXT_MAX, "%lld%s", (long long)(us / unit),
                 us == 0 ? "s" : duration_units[u].unit);
        return buf;
    }
    int digits = unit == duration_units[1].us ? 6 : 3;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    snprintf(buf, DRILL_DURATION_TEXT_MAX, "%lld.%0*lld%s", (long long)(us / unit), digits,
             (long long)frac, duration_units[u].unit);
    return buf;
}

/* ---- The parser and its errors ----------------------------------------- */

/* One word of a statement: a positional word, or an option key=value. */
struct word {
    char *text;  /* the word, or the option's key; unescaped, NUL-terminated */
    char *value; /* the option's value (after the first unquoted '='), or NULL */
    int col;     /* 1-based byte column of its first character */
};

/* A statement's words after the verb (or after `at TIME ACTION`). */
struct stmt {
    struct word *verb; /* the verb, or the action */
    size_t pos_count, opt_count;
    struct word *pos[DRILL_WORDS_MAX];
    struct word *opt[DRILL_WORDS_MAX];
};

struct parser {
    const char *file;
    struct drill *d;
    struct drill_errors *errs;
    int line;
    int line_errors; /* errors found in the current statement */
    size_t word_count;
    struct word words[DRILL_WORDS_MAX];
    /* Unescaped words: each takes at most its raw bytes plus a NUL. */
    char buf[2 * DRILL_LINE_MAX + 2];
    /* Lines of statements given once (0: not yet). */
    int title_line, topology_line, seed_line, duration_line, products_line, users_line;
    int first_at_line, drain_line;
    /* A header statement that failed: checks depending on it are skipped,
     * so one mistake gives one error. */
    bool duration_bad, products_bad;
    bool events_full_reported;
    int workload_clients; /* clients declared by the workloads */
    struct {
        int line, col; /* of until=, or 0 when it defaults to the duration */
    } until[DRILL_WORKLOADS_MAX];
};

__attribute__((format(printf, 4, 0))) static void errors_addv(struct drill_errors *errs, int line,
                                                              int col, const char *fmt, va_list ap)
{
    if (errs->count == DRILL_ERRORS_MAX) {
        errs->truncated = true;
        return;
    }
    struct drill_error *e = &errs->e[errs->count++];
    e->line = line;
    e->col = col;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
}

__attribute__((format(printf, 4, 5))) static void errors_add(struct drill_errors *errs, int line,
                                                             int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errors_addv(errs, line, col, fmt, ap);
    va_end(ap);
}

/* An error at line:col; counts against the current statement. */
__attribute__((format(printf, 4, 5))) static void perr(struct parser *p, int line, int col,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errors_addv(p->errs, line, col, fmt, ap);
    va_end(ap);
    p->line_errors++;
}

/* An error at a word of the current line. */
__attribute__((format(printf, 3, 4))) static void werr(struct parser *p, const struct word *w,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errors_addv(p->errs, p->line, w->col, fmt, ap);
    va_end(ap);
    p->line_errors++;
}

/* Levenshtein distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    assert(la <= SUGGEST_LEN_MAX && lb <= SUGGEST_LEN_MAX);
    size_t row[SUGGEST_LEN_MAX + 1];
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/*
 * The candidate closest to `word` (NULL-terminated list, or `count` entries
 * when count > 0), or NULL when none is close: at most SUGGEST_DISTANCE_MAX
 * edits, and fewer than the word's length.
 */
static const char *suggest(const char *word, const char *const *cands, size_t count)
{
    size_t len = strlen(word);
    if (len > SUGGEST_LEN_MAX) {
        return NULL;
    }
    const char *best = NULL;
    size_t best_dist = SUGGEST_DISTANCE_MAX + 1;
    for (size_t i = 0; count > 0 ? i < count : cands[i] != NULL; i++) {
        if (strlen(cands[i]) > SUGGEST_LEN_MAX) {
            continue;
        }
        size_t dist = edit_distance(word, cands[i]);
        if (dist < best_dist && dist < len) {
            best = cands[i];
            best_dist = dist;
        }
    }
    return best;
}

/* "; did you mean 'x'?" with suggest()'s candidate, or "". */
static const char *hint(char buf[HINT_TEXT_MAX], const char *word, const char *const *cands,
                        size_t count)
{
    const char *best = suggest(word, cands, count);
    buf[0] = '\0';
    if (best != NULL) {
        snprintf(buf, HINT_TEXT_MAX, "; did you mean '%.*s'?", SUGGEST_LEN_MAX, best);
    }
    return buf;
}

/* names joined as "a, b or c" (or with `last` instead of " or "). */
static const char *join(char buf[LIST_TEXT_MAX], const char *const *names, size_t count,
                        const char *suffix, const char *last)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count && len < LIST_TEXT_MAX; i++) {
        const char *sep = i == 0 ? "" : i + 1 == count ? last : ", ";
        int n = snprintf(buf + len, LIST_TEXT_MAX - len, "%s%s%s", sep, names[i], suffix);
        len += n > 0 ? (size_t)n : 0;
    }
    return buf;
}

static size_t list_count(const char *const *names)
{
    size_t n = 0;
    while (names[n] != NULL) {
        n++;
    }
    return n;
}

/* "mirror", "async or cluster": the components of a mask, for messages. */
static const char *components_text(char buf[LIST_TEXT_MAX], unsigned mask)
{
    const char *names[COMPONENT_COUNT];
    size_t n = 0;
    for (size_t i = 0; i < COMPONENT_COUNT; i++) {
        if (mask & (1u << i)) {
            names[n++] = component_names[i];
        }
    }
    return join(buf, names, n, "", " or ");
}

/* ---- Lexing ------------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/*
 * Reads one word starting at line[*i] into *out; a double-quoted part may
 * hold spaces and '#', with \" and \\ as escapes (any other backslash is
 * kept as it is). Returns false, error reported, on an unterminated quote.
 */
static bool lex_word(struct parser *p, const char *line, size_t len, size_t *i, char **out,
                     struct word *w)
{
    char *o = *out;
    bool quoted = false;
    while (*i < len && !is_blank(line[*i]) && line[*i] != '#') {
        char c = line[*i];
        if (c == '"') {
            int quote_col = (int)*i + 1;
            for ((*i)++; *i < len && line[*i] != '"'; (*i)++) {
                if (line[*i] == '\\' && *i + 1 < len &&
                    (line[*i + 1] == '"' || line[*i + 1] == '\\')) {
                    (*i)++;
                }
                *o++ = line[*i];
            }
            if (*i == len) {
                perr(p, p->line, quote_col, "unterminated string: add the closing \"");
                return false;
            }
            (*i)++;
            quoted = true;
        } else if (c == '=' && w->value == NULL && !quoted) {
            *o++ = '\0';
            w->value = o;
            (*i)++;
        } else {
            *o++ = c;
            (*i)++;
        }
    }
    *o++ = '\0';
    *out = o;
    return true;
}

/* Splits a line into words; false (reported) when it cannot be. */
static bool lex_line(struct parser *p, const char *line, size_t len)
{
    char *out = p->buf;
    p->word_count = 0;
    size_t i = 0;
    while (i < len) {
        if (is_blank(line[i])) {
            i++;
            continue;
        }
        if (line[i] == '#') {
            break;
        }
        if (p->word_count == DRILL_WORDS_MAX) {
            perr(p, p->line, (int)i + 1, "more than %d words in one statement", DRILL_WORDS_MAX);
            return false;
        }
        struct word *w = &p->words[p->word_count++];
        *w = (struct word){.text = out, .value = NULL, .col = (int)i + 1};
        if (!lex_word(p, line, len, &i, &out, w)) {
            return false;
        }
        assert(out <= p->buf + sizeof p->buf);
    }
    return true;
}

/* Sorts a statement's words (from `first` on) into positional and options. */
static void stmt_split(struct parser *p, size_t first, struct stmt *s)
{
    s->pos_count = 0;
    s->opt_count = 0;
    for (size_t i = first; i < p->word_count; i++) {
        struct word *w = &p->words[i];
        if (w->value != NULL) {
            s->opt[s->opt_count++] = w;
        } else {
            s->pos[s->pos_count++] = w;
        }
    }
}

/* ---- Values ------------------------------------------------------------- */

/* A whole number in decimal digits only (no sign), within [lo, hi]. */
static bool int_parse(const char *text, int64_t lo, int64_t hi, int64_t *out)
{
    if (!is_digit(text[0])) {
        return false;
    }
    int64_t v = 0;
    for (const char *s = text; *s != '\0'; s++) {
        if (!is_digit(*s) || v > (INT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (*s - '0');
    }
    if (v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

/* A number of the form 12, 0.5 or 12.25: locale-independent, no exponent. */
static bool decimal_parse(const char *text, double *out)
{
    int64_t whole = 0;
    const char *dot = strchr(text, '.');
    size_t whole_len = dot != NULL ? (size_t)(dot - text) : strlen(text);
    char digits[24];
    if (whole_len == 0 || whole_len >= sizeof digits) {
        return false;
    }
    memcpy(digits, text, whole_len);
    digits[whole_len] = '\0';
    if (!int_parse(digits, 0, INT64_C(1000000000000), &whole)) {
        return false;
    }
    double v = (double)whole;
    if (dot != NULL) {
        double scale = 0.1;
        if (dot[1] == '\0' || strlen(dot + 1) > DURATION_FRACTION_DIGITS_MAX) {
            return false;
        }
        for (const char *s = dot + 1; *s != '\0'; s++, scale /= 10) {
            if (!is_digit(*s)) {
                return false;
            }
            v += (*s - '0') * scale;
        }
    }
    *out = v;
    return true;
}

/*
 * A whole number in [lo, hi]: `text` is the word or the option's value;
 * `what` names it in the message (NULL: the option, as "key=").
 */
static bool int_word(struct parser *p, const struct word *w, const char *text, const char *what,
                     int64_t lo, int64_t hi, int64_t *out)
{
    if (int_parse(text, lo, hi, out)) {
        return true;
    }
    werr(p, w, "bad number '%s' for %s%s: write a whole number from %lld to %lld", text,
         what != NULL ? what : w->text, what != NULL ? "" : "=", (long long)lo, (long long)hi);
    return false;
}

/* A duration, as int_word; zero refused when `positive`. */
static bool dur_word(struct parser *p, const struct word *w, const char *text, const char *what,
                     bool positive, int64_t *us)
{
    char max[DRILL_DURATION_TEXT_MAX];
    int rc = drill_duration_parse(text, us);
    if (rc == -ERANGE) {
        werr(p, w, "duration '%s' is too long: the limit is %s", text,
             drill_duration_format(DRILL_DURATION_US_MAX, max));
        return false;
    }
    if (rc < 0) {
        werr(p, w, "bad duration '%s': write it like 250ms, 2s, 1.5s or 1m", text);
        return false;
    }
    if (positive && *us == 0) {
        werr(p, w, "%s%s must be longer than 0", what != NULL ? what : w->text,
             what != NULL ? "" : "=");
        return false;
    }
    return true;
}

/* The index of w's value among `choices`, or -1 (reported). */
static int choice_word(struct parser *p, const struct word *w, const char *const *choices)
{
    size_t n = list_count(choices);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(choices[i], w->value) == 0) {
            return (int)i;
        }
    }
    char list[LIST_TEXT_MAX];
    werr(p, w, "bad value '%s' for %s=: write %s", w->value, w->text,
         join(list, choices, n, "", " or "));
    return -1;
}

/*
 * The index of option w among `names` (NULL-terminated), or -1 when it is
 * unknown, repeated or empty (reported; `stmt` names the statement).
 */
static int option_find(struct parser *p, const struct word *w, const char *stmt,
                       const char *const *names, unsigned *seen)
{
    size_t n = list_count(names);
    assert(n <= 32);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], w->text) != 0) {
            continue;
        }
        if (*seen & (1u << i)) {
            werr(p, w, "option %s= given twice", w->text);
            return -1;
        }
        *seen |= 1u << i;
        if (w->value[0] == '\0') {
            werr(p, w, "option %s= needs a value", w->text);
            return -1;
        }
        return (int)i;
    }
    char list[LIST_TEXT_MAX], h[HINT_TEXT_MAX];
    if (n == 0) {
        werr(p, w, "unknown option '%s=': %s takes no options", w->text, stmt);
    } else {
        werr(p, w, "unknown option '%s=' for %s; it takes %s%s", w->text, stmt,
             join(list, names, n, "=", ", "), hint(h, w->text, names, 0));
    }
    return -1;
}

/* Checks the positional word count; `usage` shows the statement's form. */
static bool pos_check(struct parser *p, const struct stmt *s, size_t min, size_t max,
                      const char *usage)
{
    if (s->pos_count < min) {
        werr(p, s->verb, "incomplete %s: write `%s`", s->verb->text, usage);
        return false;
    }
    if (s->pos_count > max) {
        werr(p, s->pos[max], "unexpected '%s': write `%s`", s->pos[max]->text, usage);
        return false;
    }
    return true;
}

/* Reports every option of a statement that takes none. */
static void opts_none(struct parser *p, const struct stmt *s)
{
    unsigned seen = 0;
    static const char *const none[] = {NULL};
    for (size_t i = 0; i < s->opt_count; i++) {
        option_find(p, s->opt[i], s->verb->text, none, &seen);
    }
}

/* Copies text into a fixed field; reports when it does not fit. */
static bool text_copy(struct parser *p, const struct word *w, char *dst, size_t size,
                      const char *what)
{
    size_t len = strlen(w->text);
    if (len >= size) {
        werr(p, w, "%s longer than %zu bytes", what, size - 1);
        return false;
    }
    memcpy(dst, w->text, len + 1);
    return true;
}

/* A statement that may appear once: false (reported) the second time. */
static bool once_check(struct parser *p, const struct stmt *s, int *seen_line)
{
    if (*seen_line != 0) {
        werr(p, s->verb, "`%s` given twice (first at line %d)", s->verb->text, *seen_line);
        return false;
    }
    *seen_line = p->line;
    return true;
}

/* ---- Header statements -------------------------------------------------- */

static void stmt_drill(struct parser *p, struct stmt *s)
{
    if (!once_check(p, s, &p->title_line)) {
        return;
    }
    opts_none(p, s);
    if (!pos_check(p, s, 1, 1, "drill \"title\"")) {
        return;
    }
    if (s->pos[0]->text[0] == '\0') {
        werr(p, s->pos[0], "the title is empty: say what the drill shows");
        return;
    }
    text_copy(p, s->pos[0], p->d->title, sizeof p->d->title, "title");
}

static void stmt_about(struct parser *p, struct stmt *s)
{
    struct drill *d = p->d;
    opts_none(p, s);
    if (!pos_check(p, s, 1, 1, "about \"text\"")) {
        return;
    }
    if (d->about_count == DRILL_ABOUT_MAX) {
        werr(p, s->verb, "more than %d about lines", DRILL_ABOUT_MAX);
        return;
    }
    if (text_copy(p, s->pos[0], d->about[d->about_count], DRILL_TEXT_MAX, "about text")) {
        d->about_count++;
    }
}

static void stmt_seed(struct parser *p, struct stmt *s)
{
    if (!once_check(p, s, &p->seed_line)) {
        return;
    }
    opts_none(p, s);
    if (!pos_check(p, s, 1, 1, "seed N")) {
        return;
    }
    const char *text = s->pos[0]->text;
    uint64_t v = 0;
    bool ok = is_digit(text[0]);
    for (const char *c = text; ok && *c != '\0'; c++) {
        ok = is_digit(*c) && v <= (UINT64_MAX - (uint64_t)(*c - '0')) / 10;
        v = v * 10 + (uint64_t)(*c - '0');
    }
    if (!ok) {
        werr(p, s->pos[0], "bad seed '%s': write a whole number from 0 to %llu", text,
             (unsigned long long)UINT64_MAX);
        return;
    }
    p->d->seed = v;
}

static void stmt_duration(struct parser *p, struct stmt *s)
{
    if (!once_check(p, s, &p->duration_line)) {
        return;
    }
    p->duration_bad = true;
    opts_none(p, s);
    if (!pos_check(p, s, 1, 1, "duration 30s")) {
        return;
    }
    int64_t us = 0;
    if (dur_word(p, s->pos[0], s->pos[0]->text, "duration", true, &us)) {
        p->d->duration_us = us;
        p->duration_bad = false;
    }
}

/* price=LO..HI in currency units with at most two decimals, into cents. */
static bool price_parse(const char *text, int64_t *cents)
{
    const char *dot = strchr(text, '.');
    size_t whole_len = dot != NULL ? (size_t)(dot - text) : strlen(text);
    char whole[16];
    int64_t units = 0, frac = 0;
    if (whole_len == 0 || whole_len >= sizeof whole) {
        return false;
    }
    memcpy(whole, text, whole_len);
    whole[whole_len] = '\0';
    if (!int_parse(whole, 0, SHOP_PRICE_MAX / 100, &units)) {
        return false;
    }
    if (dot != NULL) {
        size_t frac_len = strlen(dot + 1);
        if (frac_len < 1 || frac_len > 2 || !int_parse(dot + 1, 0, 99, &frac)) {
            return false;
        }
        frac *= frac_len == 1 ? 10 : 1;
    }
    *cents = units * 100 + frac;
    return *cents <= SHOP_PRICE_MAX;
}

static void products_price(struct parser *p, const struct word *w)
{
    char lo_text[32];
    const char *dots = strstr(w->value, "..");
    size_t lo_len = dots != NULL ? (size_t)(dots - w->value) : 0;
    int64_t lo = 0, hi = 0;
    bool ok = dots != NULL && lo_len < sizeof lo_text;
    if (ok) {
        memcpy(lo_text, w->value, lo_len);
        lo_text[lo_len] = '\0';
        ok = price_parse(lo_text, &lo) && price_parse(dots + 2, &hi);
    }
    if (!ok) {
        werr(p, w,
             "bad price range '%s': write it like price=5..120 or price=4.99..19.99 "
             "(currency units, at most %d)",
             w->value, SHOP_PRICE_MAX / 100);
        return;
    }
    if (lo > hi) {
        werr(p, w, "price range '%s' is upside down: the lowest price comes first", w->value);
        return;
    }
    p->d->price_min_cents = lo;
    p->d->price_max_cents = hi;
}

static void stmt_products(struct parser *p, struct stmt *s)
{
    static const char *const names[] = {"stock", "price", NULL};
    struct drill *d = p->d;
    if (!once_check(p, s, &p->products_line)) {
        return;
    }
    int errors = p->line_errors;
    int64_t v = 0;
    if (pos_check(p, s, 1, 1, "products N stock=N price=LO..HI") &&
        int_word(p, s->pos[0], s->pos[0]->text, "products", 1, DRILL_PRODUCTS_MAX, &v)) {
        d->products = (int)v;
    }
    unsigned seen = 0;
    for (size_t i = 0; i < s->opt_count; i++) {
        const struct word *w = s->opt[i];
        int idx = option_find(p, w, "products", names, &seen);
        if (idx == 0 && int_word(p, w, w->value, NULL, 0, DRILL_STOCK_MAX, &v)) {
            d->product_stock = v;
        } else if (idx == 1) {
            products_price(p, w);
        }
    }
    p->products_bad = p->line_errors != errors;
}

static void stmt_users(struct parser *p, struct stmt *s)
{
    if (!once_check(p, s, &p->users_line)) {
        return;
    }
    opts_none(p, s);
    int64_t v = 0;
    if (pos_check(p, s, 1, 1, "users N") &&
        int_word(p, s->pos[0], s->pos[0]->text, "users", 1, DRILL_USERS_MAX, &v)) {
        p->d->users = (int)v;
    }
}

/* ---- Topology ----------------------------------------------------------- */

enum topo_option {
    TOPO_POLICY,
    TOPO_ACK,
    TOPO_SYNC,
    TOPO_DELAY,
    TOPO_BATCH,
    TOPO_OUTBOX,
    TOPO_LOCALS,
    TOPO_INTERVAL,
    TOPO_RETRIES,
    TOPO_QUEUE,
    TOPO_REPLICAS,
    TOPO_PROPAGATE,
    TOPO_CACHE,
    TOPO_TTL,
    TOPO_LB,
    TOPO_PREDICTORS,
    TOPO_DEPOSIT,
    TOPO_TOLERANCE,
    TOPO_SLASH,
    TOPO_MIN_STAKE,
    TOPO_ROUND,
    TOPO_LATENCY,
    TOPO_JITTER,
    TOPO_OPTION_COUNT,
};

static const char *const topo_option_names[] = {
    [TOPO_POLICY] = "policy",
    [TOPO_ACK] = "ack",
    [TOPO_SYNC] = "sync",
    [TOPO_DELAY] = "delay",
    [TOPO_BATCH] = "batch",
    [TOPO_OUTBOX] = "outbox",
    [TOPO_LOCALS] = "locals",
    [TOPO_INTERVAL] = "interval",
    [TOPO_RETRIES] = "retries",
    [TOPO_QUEUE] = "queue",
    [TOPO_REPLICAS] = "replicas",
    [TOPO_PROPAGATE] = "propagate",
    [TOPO_CACHE] = "cache",
    [TOPO_TTL] = "ttl",
    [TOPO_LB] = "lb",
    [TOPO_PREDICTORS] = "predictors",
    [TOPO_DEPOSIT] = "deposit",
    [TOPO_TOLERANCE] = "tolerance",
    [TOPO_SLASH] = "slash",
    [TOPO_MIN_STAKE] = "min-stake",
    [TOPO_ROUND] = "round",
    [TOPO_LATENCY] = "latency",
    [TOPO_JITTER] = "jitter",
    [TOPO_OPTION_COUNT] = NULL,
};

/* Choices are listed in the order of the field's enum (or false, true). */
static const char *const policy_choices[] = {"strict", "degrade", NULL};
static const char *const ack_choices[] = {"both", "early", NULL};
static const char *const sync_choices[] = {"full", "normal", NULL};
static const char *const outbox_choices[] = {"on", "off", NULL};
static const char *const queue_choices[] = {"same", "separate", NULL};
static const char *const propagate_choices[] = {"after-commit", "before-commit", NULL};
static const char *const cache_choices[] = {"off", "on", "naive", NULL};
static const char *const lb_choices[] = {"round-robin", NULL};

_Static_assert(MIRROR_STRICT == 0 && MIRROR_DEGRADE == 1, "policy_choices order");
_Static_assert(MIRROR_ACK_BOTH == 0 && MIRROR_ACK_EARLY == 1, "ack_choices order");
_Static_assert(DRILL_CACHE_OFF == 0 && DRILL_CACHE_ON == 1 && DRILL_CACHE_NAIVE == 2,
               "cache_choices order");

/* What a topology option takes: one of `choices`, a duration (positive
 * when lo > 0, at least lo when lo > 1), a percentage (kept in parts per
 * million) or a whole number in [lo, hi]; and which components own it. */
static const struct {
    unsigned components; /* 0: any topology */
    const char *const *choices;
    bool duration;
    bool percent;
    int64_t lo, hi;
} topo_options[TOPO_OPTION_COUNT] = {
    [TOPO_POLICY] = {DRILL_MIRROR, policy_choices, false, false, 0, 0},
    [TOPO_ACK] = {DRILL_MIRROR, ack_choices, false, false, 0, 0},
    [TOPO_SYNC] = {DRILL_SINGLE | DRILL_MIRROR, sync_choices, false, false, 0, 0},
    [TOPO_DELAY] = {DRILL_ASYNC, NULL, true, false, 0, 0},
    [TOPO_BATCH] = {DRILL_ASYNC, NULL, false, false, 1, BATCH_MAX},
    [TOPO_OUTBOX] = {DRILL_ASYNC, outbox_choices, false, false, 0, 0},
    [TOPO_LOCALS] = {DRILL_OFFLINE, NULL, false, false, 1, DRILL_LOCALS_MAX},
    [TOPO_INTERVAL] = {DRILL_OFFLINE, NULL, true, false, 1, 0},
    [TOPO_RETRIES] = {DRILL_OFFLINE, NULL, false, false, 0, RETRIES_MAX},
    [TOPO_QUEUE] = {DRILL_OFFLINE, queue_choices, false, false, 0, 0},
    [TOPO_REPLICAS] = {DRILL_CLUSTER, NULL, false, false, 1, DRILL_REPLICAS_MAX},
    [TOPO_PROPAGATE] = {DRILL_CLUSTER, propagate_choices, false, false, 0, 0},
    [TOPO_CACHE] = {DRILL_CLUSTER, cache_choices, false, false, 0, 0},
    [TOPO_TTL] = {DRILL_CLUSTER, NULL, true, false, 1, 0},
    [TOPO_LB] = {DRILL_CLUSTER, lb_choices, false, false, 0, 0},
    [TOPO_PREDICTORS] = {DRILL_STAKE, NULL, false, false, 1, DRILL_PREDICTORS_MAX},
    [TOPO_DEPOSIT] = {DRILL_STAKE, NULL, false, false, 1, DRILL_STAKE_AMOUNT_MAX},
    [TOPO_TOLERANCE] = {DRILL_STAKE, NULL, false, false, 0, DRILL_STAKE_TOLERANCE_MAX},
    [TOPO_SLASH] = {DRILL_STAKE, NULL, false, true, 0, STAKE_PPM},
    [TOPO_MIN_STAKE] = {DRILL_STAKE, NULL, false, false, 1, DRILL_STAKE_AMOUNT_MAX},
    [TOPO_ROUND] = {DRILL_STAKE, NULL, true, false, DRILL_STAKE_ROUND_US_MIN, 0},
    [TOPO_LATENCY] = {0, NULL, true, false, 0, 0},
    [TOPO_JITTER] = {0, NULL, true, false, 0, 0},
};

/* A percentage such as 20%, 12.5% or 0.0001%, from 0% to 100%, into parts
 * per million: exact, since a part per million is 0.0001 %. */
static bool percent_parse(const char *text, int64_t *ppm)
{
    size_t len = strlen(text);
    char number[32];
    if (len < 2 || len - 1 >= sizeof number || text[len - 1] != '%') {
        return false;
    }
    memcpy(number, text, len - 1);
    number[len - 1] = '\0';
    char *dot = strchr(number, '.');
    int64_t whole = 0, frac = 0;
    size_t frac_len = 0;
    if (dot != NULL) {
        *dot = '\0';
        frac_len = strlen(dot + 1);
        if (frac_len < 1 || frac_len > PERCENT_DIGITS_MAX || !int_parse(dot + 1, 0, 9999, &frac)) {
            return false;
        }
        for (size_t i = frac_len; i < PERCENT_DIGITS_MAX; i++) {
            frac *= 10;
        }
    }
    if (!int_parse(number, 0, 100, &whole)) {
        return false;
    }
    int64_t v = whole * (STAKE_PPM / 100) + frac;
    if (v > STAKE_PPM) {
        return false;
    }
    *ppm = v;
    return true;
}

/* The option's value: a choice's index, a number, microseconds, or parts
 * per million. */
static bool topology_value(struct parser *p, const struct word *w, enum topo_option opt, int64_t *v)
{
    char min[DRILL_DURATION_TEXT_MAX];
    if (topo_options[opt].choices != NULL) {
        int c = choice_word(p, w, topo_options[opt].choices);
        *v = c;
        return c >= 0;
    }
    if (topo_options[opt].duration) {
        if (!dur_word(p, w, w->value, NULL, topo_options[opt].lo > 0, v)) {
            return false;
        }
        if (topo_options[opt].lo > 1 && *v < topo_options[opt].lo) {
            werr(p, w, "%s= must be at least %s", w->text,
                 drill_duration_format(topo_options[opt].lo, min));
            return false;
        }
        return true;
    }
    if (topo_options[opt].percent) {
        if (percent_parse(w->value, v)) {
            return true;
        }
        werr(p, w, "bad percentage '%s' for %s=: write it like %s=20%% or %s=12.5%% (0%% to 100%%)",
             w->value, w->text, w->text, w->text);
        return false;
    }
    return int_word(p, w, w->value, NULL, topo_options[opt].lo, topo_options[opt].hi, v);
}

static void topology_set(struct drill_topology *t, enum topo_option opt, int64_t v)
{
    switch (opt) {
    case TOPO_POLICY:
        t->policy = (enum mirror_policy)v;
        break;
    case TOPO_ACK:
        t->ack = (enum mirror_ack)v;
        break;
    case TOPO_SYNC:
        t->sync_normal = v == 1;
        break;
    case TOPO_DELAY:
        t->async_delay_us = v;
        break;
    case TOPO_BATCH:
        t->async_batch = (int)v;
        break;
    case TOPO_OUTBOX:
        t->outbox_off = v == 1;
        break;
    case TOPO_LOCALS:
        t->locals = (int)v;
        break;
    case TOPO_INTERVAL:
        t->sync_interval_us = v;
        break;
    case TOPO_RETRIES:
        t->retries = (int)v;
        break;
    case TOPO_QUEUE:
        t->queue_separate = v == 1;
        break;
    case TOPO_REPLICAS:
        t->replicas = (int)v;
        break;
    case TOPO_PROPAGATE:
        t->propagate_before_commit = v == 1;
        break;
    case TOPO_CACHE:
        t->cache = (enum drill_cache)v;
        break;
    case TOPO_TTL:
        t->cache_ttl_us = v;
        break;
    case TOPO_LB: /* round-robin is the only balancer */
        break;
    case TOPO_PREDICTORS:
        t->predictors = (int)v;
        break;
    case TOPO_DEPOSIT:
        t->stake_deposit = v;
        break;
    case TOPO_TOLERANCE:
        t->stake_tolerance = v;
        break;
    case TOPO_SLASH:
        t->stake_slash_ppm = v;
        break;
    case TOPO_MIN_STAKE:
        t->stake_min = v;
        break;
    case TOPO_ROUND:
        t->stake_round_us = v;
        break;
    case TOPO_LATENCY:
        t->latency_us = v;
        break;
    case TOPO_JITTER:
        t->jitter_us = v;
        break;
    case TOPO_OPTION_COUNT:
        assert(!"topology_set: not an option");
        break;
    }
}

/* The components named by the positional words; reports unknown, repeated
 * and conflicting ones, and keeps the rest. */
static unsigned topology_components(struct parser *p, const struct stmt *s)
{
    unsigned comps = 0;
    const struct word *single = NULL;
    for (size_t i = 0; i < s->pos_count; i++) {
        const struct word *w = s->pos[i];
        size_t c = 0;
        while (c < COMPONENT_COUNT && strcmp(component_names[c], w->text) != 0) {
            c++;
        }
        char list[LIST_TEXT_MAX], h[HINT_TEXT_MAX];
        if (c == COMPONENT_COUNT) {
            werr(p, w, "unknown topology component '%s'; components: %s%s", w->text,
                 join(list, component_names, COMPONENT_COUNT, "", ", "),
                 hint(h, w->text, component_names, 0));
        } else if (comps & (1u << c)) {
            werr(p, w, "component %s named twice", w->text);
        } else {
            comps |= 1u << c;
            single = c == 0 ? w : single;
        }
    }
    /* The stake ledger is a database of its own beside the shop's: it goes
     * with any of the others, and alone it goes with `single`. */
    unsigned databases = comps & ~(unsigned)DRILL_STAKE;
    if (single != NULL && (comps & (DRILL_MIRROR | DRILL_ASYNC))) {
        werr(p, single, "single and %s both define primary; drop single",
             (comps & DRILL_MIRROR) ? "mirror" : "async");
        comps &= ~(unsigned)DRILL_SINGLE;
    } else if (single != NULL && databases != DRILL_SINGLE) {
        werr(p, single, "single is one database on its own; drop it to use %s",
             (comps & DRILL_OFFLINE) ? "offline" : "cluster");
        comps &= ~(unsigned)DRILL_SINGLE;
    }
    return (comps & ~(unsigned)DRILL_STAKE) != 0 ? comps : comps | DRILL_SINGLE;
}

/* Reports an unknown topology option with the options of the components
 * this drill uses (the whole list no longer fits one message). */
static void topology_option_unknown(struct parser *p, const struct word *w, unsigned comps)
{
    const char *names[TOPO_OPTION_COUNT];
    size_t n = 0;
    for (size_t i = 0; i < TOPO_OPTION_COUNT; i++) {
        if (topo_options[i].components == 0 || (topo_options[i].components & comps) != 0) {
            names[n++] = topo_option_names[i];
        }
    }
    char list[LIST_TEXT_MAX], h[HINT_TEXT_MAX], used[LIST_TEXT_MAX];
    werr(p, w, "unknown option '%s=' for topology %s; it takes %s%s", w->text,
         components_text(used, comps), join(list, names, n, "=", ", "),
         hint(h, w->text, topo_option_names, 0));
}

/* deposit= and min-stake= together: a predictor must be able to register. */
static void topology_stake_check(struct parser *p, const struct drill_topology *t,
                                 const struct word *deposit, const struct word *min_stake)
{
    if (t->stake_deposit >= t->stake_min) {
        return;
    }
    if (deposit != NULL) {
        werr(p, deposit, "deposit=%lld is below min-stake=%lld: a predictor could not register",
             (long long)t->stake_deposit, (long long)t->stake_min);
    } else {
        werr(p, min_stake,
             "min-stake=%lld is above the deposit (%lld by default): a predictor could not "
             "register; raise deposit= too",
             (long long)t->stake_min, (long long)t->stake_deposit);
    }
}

static void stmt_topology(struct parser *p, struct stmt *s)
{
    struct drill_topology *t = &p->d->topology;
    if (!once_check(p, s, &p->topology_line)) {
        return;
    }
    t->components = topology_components(p, s);
    p->d->topology_line = p->line;
    unsigned seen = 0;
    const struct word *stake_words[2] = {NULL, NULL}; /* deposit=, min-stake= when valid */
    for (size_t i = 0; i < s->opt_count; i++) {
        const struct word *w = s->opt[i];
        size_t known = 0;
        while (known < TOPO_OPTION_COUNT && strcmp(topo_option_names[known], w->text) != 0) {
            known++;
        }
        if (known == TOPO_OPTION_COUNT) {
            topology_option_unknown(p, w, t->components);
            continue;
        }
        int idx = option_find(p, w, "topology", topo_option_names, &seen);
        if (idx < 0) {
            continue;
        }
        unsigned need = topo_options[idx].components;
        if (need != 0 && (need & t->components) == 0) {
            char list[LIST_TEXT_MAX];
            werr(p, w, "option %s= belongs to topology %s, which this drill does not use", w->text,
                 components_text(list, need));
            continue;
        }
        int64_t v = 0;
        if (topology_value(p, w, (enum topo_option)idx, &v)) {
            topology_set(t, (enum topo_option)idx, v);
            stake_words[0] = idx == TOPO_DEPOSIT ? w : stake_words[0];
            stake_words[1] = idx == TOPO_MIN_STAKE ? w : stake_words[1];
        }
    }
    if (stake_words[0] != NULL || stake_words[1] != NULL) {
        topology_stake_check(p, t, stake_words[0], stake_words[1]);
    }
    int nodes = topology_node_count(t);
    if (nodes > DRILL_NODES_MAX) {
        werr(p, s->verb, "this topology has %d nodes, more than the limit of %d", nodes,
             DRILL_NODES_MAX);
        t->locals = 0;
        t->replicas = 2;
        t->predictors = 4;
    }
}

/* ---- Workloads ---------------------------------------------------------- */

static bool is_name(const char *text)
{
    return faults_is_node_name(text) && strlen(text) < DRILL_NAME_MAX;
}

/* One KIND:WEIGHT of a mix; the weight, or -1 (reported). */
static int64_t mix_entry(struct parser *p, const struct word *w, char *entry, unsigned *seen,
                         enum drill_op *op)
{
    char list[LIST_TEXT_MAX], h[HINT_TEXT_MAX];
    char *colon = strchr(entry, ':');
    if (colon == NULL) {
        werr(p, w, "bad mix entry '%s': write KIND:WEIGHT, like mix=browse:50,checkout:25", entry);
        return -1;
    }
    *colon = '\0';
    if (!op_parse(entry, op)) {
        /* every name the mix takes: "cart-add (or cart), ..." */
        list[0] = '\0';
        for (size_t k = 0; k < DRILL_OP_COUNT; k++) {
            size_t n = strlen(list);
            snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", op_names[k]);
            for (size_t i = 0; i < OP_ALIAS_COUNT; i++) {
                n = strlen(list);
                if (op_aliases[i].op == (enum drill_op)k)
                    snprintf(list + n, sizeof list - n, " (or %s)", op_aliases[i].alias);
            }
        }
        werr(p, w, "unknown operation '%.40s' in mix; operations: %s%s", entry, list,
             hint(h, entry, op_names, DRILL_OP_COUNT));
        return -1;
    }
    if (*seen & (1u << *op)) {
        werr(p, w, "mix names %s twice", op_names[*op]);
        return -1;
    }
    *seen |= 1u << *op;
    int64_t weight = 0;
    if (!int_word(p, w, colon + 1, op_names[*op], 0, DRILL_MIX_WEIGHT_MAX, &weight)) {
        return -1;
    }
    return weight;
}

/* mix=KIND:WEIGHT,... into mix; every entry checked. */
static void workload_mix(struct parser *p, struct word *w, unsigned mix[DRILL_OP_COUNT])
{
    unsigned seen = 0;
    bool any = false, bad = false;
    for (char *entry = w->value; entry != NULL;) {
        char *comma = strchr(entry, ',');
        if (comma != NULL) {
            *comma = '\0';
        }
        enum drill_op op = DRILL_OP_BROWSE;
        int64_t weight = mix_entry(p, w, entry, &seen, &op);
        if (weight >= 0) {
            mix[op] = (unsigned)weight;
            any = any || weight > 0;
        }
        bad = bad || weight < 0;
        entry = comma != NULL ? comma + 1 : NULL;
    }
    if (!any && !bad) {
        werr(p, w, "mix gives every operation weight 0: at least one weight must be above 0");
    }
}

/* rate=R/s */
static void workload_rate(struct parser *p, const struct word *w, double *rate)
{
    size_t len = strlen(w->value);
    char number[32];
    double v = 0;
    bool ok = len > 2 && len - 2 < sizeof number && strcmp(w->value + len - 2, "/s") == 0;
    if (ok) {
        memcpy(number, w->value, len - 2);
        number[len - 2] = '\0';
        ok = decimal_parse(number, &v) && v > 0 && v <= DRILL_RATE_PER_S_MAX;
    }
    if (!ok) {
        werr(p, w,
             "bad rate '%s': write operations per second like rate=200/s (above 0, at "
             "most %d)",
             w->value, DRILL_RATE_PER_S_MAX);
        return;
    }
    *rate = v;
}

/* The workload's options, into wl; until= remembered for the end checks. */
static void workload_options(struct parser *p, struct stmt *s, struct drill_workload *wl)
{
    static const char *const names[] = {"clients", "rate", "mix", "until", NULL};
    size_t index = p->d->workload_count;
    unsigned seen = 0;
    for (size_t i = 0; i < s->opt_count; i++) {
        struct word *w = s->opt[i];
        int64_t v = 0;
        switch (option_find(p, w, "workload", names, &seen)) {
        case 0:
            if (int_word(p, w, w->value, NULL, 1, DRILL_CLIENTS_MAX, &v)) {
                wl->clients = (int)v;
            }
            break;
        case 1:
            workload_rate(p, w, &wl->rate_per_s);
            break;
        case 2:
            workload_mix(p, w, wl->mix);
            break;
        case 3:
            if (dur_word(p, w, w->value, NULL, true, &v)) {
                wl->until_us = v;
                p->until[index].line = p->line;
                p->until[index].col = w->col;
            }
            break;
        default:
            break;
        }
    }
    if ((seen & 2u) == 0) {
        werr(p, s->verb, "workload %s needs rate=, like rate=200/s", wl->name);
    }
    if ((seen & 4u) == 0) {
        werr(p, s->verb, "workload %s needs mix=, like mix=browse:50,cart:25,checkout:25",
             wl->name);
    }
}

static void stmt_workload(struct parser *p, struct stmt *s)
{
    struct drill *d = p->d;
    if (d->workload_count == DRILL_WORKLOADS_MAX) {
        werr(p, s->verb, "more than %d workloads", DRILL_WORKLOADS_MAX);
        return;
    }
    struct drill_workload wl = {.clients = 1};
    if (pos_check(p, s, 1, 1, "workload NAME clients=N rate=R/s mix=KIND:W,... [until=DUR]")) {
        const struct word *w = s->pos[0];
        if (!is_name(w->text)) {
            werr(p, w, "bad workload name '%s': use a-z, 0-9, - and _, at most %d bytes", w->text,
                 DRILL_NAME_MAX - 1);
        } else {
            memcpy(wl.name, w->text, strlen(w->text) + 1);
        }
        for (size_t i = 0; i < d->workload_count && wl.name[0] != '\0'; i++) {
            if (strcmp(d->workloads[i].name, wl.name) == 0) {
                werr(p, w, "workload %s defined twice", wl.name);
            }
        }
    }
    workload_options(p, s, &wl);
    if (p->workload_clients + wl.clients > DRILL_CLIENTS_MAX) {
        werr(p, s->verb, "the workloads have %d clients in all, more than the limit of %d",
             p->workload_clients + wl.clients, DRILL_CLIENTS_MAX);
        return;
    }
    /* Kept even when an option was wrong: later `op client=` lines count on
     * its clients, and the error is reported already. */
    wl.first_client = p->workload_clients + 1;
    p->workload_clients += wl.clients;
    d->clients = p->workload_clients;
    d->workloads[d->workload_count++] = wl;
}

/* ---- Nodes and clients in statements ------------------------------------ */

/* N of "clientN" (no leading zero), or 0. */
static int client_number(const char *name)
{
    int64_t n = 0;
    if (strncmp(name, "client", 6) != 0 || name[6] == '0' ||
        !int_parse(name + 6, 1, DRILL_CLIENTS_MAX, &n)) {
        return 0;
    }
    return (int)n;
}

/* Whether clientN may be named: one of the workloads' clients, or, in a
 * drill without workloads, any N up to the limit (its `op` lines make it). */
static bool client_exists(const struct parser *p, int n)
{
    int last = p->workload_clients > 0 ? p->workload_clients : DRILL_CLIENTS_MAX;
    return n >= 1 && n <= last;
}

/* "primary, mirror" (and the clients when `clients`), for messages. */
static const char *nodes_text(const struct parser *p, char buf[LIST_TEXT_MAX], bool clients)
{
    char names[DRILL_NODES_MAX][FAULTS_NODE_MAX];
    const char *ptrs[DRILL_NODES_MAX];
    size_t n = drill_nodes(p->d, names);
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = names[i];
    }
    join(buf, ptrs, n, "", ", ");
    size_t len = strlen(buf);
    if (clients && p->workload_clients > 0) {
        snprintf(buf + len, LIST_TEXT_MAX - len, ", client1..client%d", p->workload_clients);
    } else if (clients) {
        snprintf(buf + len, LIST_TEXT_MAX - len, " and clients client1..");
    }
    return buf;
}

/* Reports `name` as unknown, with the nodes there are; `where` may add
 * context such as " in fault disk/primry/write". */
static void node_unknown(struct parser *p, int col, const char *name, const char *where,
                         bool clients)
{
    char names[DRILL_NODES_MAX][FAULTS_NODE_MAX];
    const char *ptrs[DRILL_NODES_MAX] = {NULL}; /* no node: suggest() meets NULL at once */
    size_t n = drill_nodes(p->d, names);
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = names[i];
    }
    char list[LIST_TEXT_MAX], h[HINT_TEXT_MAX];
    perr(p, p->line, col, "unknown node '%s'%s; nodes here: %s%s", name, where,
         nodes_text(p, list, clients), hint(h, name, ptrs, n));
}

/* Whether `name` is a node of the topology (or a client, when allowed). */
static bool node_known(const struct parser *p, const char *name, bool clients)
{
    if (drill_has_node(p->d, name)) {
        return true;
    }
    return clients && client_exists(p, client_number(name));
}

/* Whether some node (or client) name starts with `prefix`. */
static bool node_prefix_known(const struct parser *p, const char *prefix, bool clients)
{
    char names[DRILL_NODES_MAX][FAULTS_NODE_MAX];
    size_t n = drill_nodes(p->d, names);
    size_t len = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], prefix, len) == 0) {
            return true;
        }
    }
    return clients && (strncmp("client", prefix, len < 6 ? len : 6) == 0);
}

/* ---- Timeline: faults --------------------------------------------------- */

/* The catalog's last pattern components ("write", "mirror-between-commits"),
 * for "did you mean"; taken from libfaults so new points are suggested too. */
static size_t fault_kinds(const char *kinds[], size_t max)
{
    size_t count = 0, n = 0;
    const struct faults_point *cat = faults_catalog(&count);
    for (size_t i = 0; i < count && n < max; i++) {
        const char *kind = strrchr(cat[i].pattern, '/');
        kinds[n++] = kind != NULL ? kind + 1 : cat[i].pattern;
    }
    return n;
}

/* Reports an unknown fault point, suggesting a near miss of its last part. */
static void fault_unknown(struct parser *p, const struct word *w)
{
    char h[FAULTS_NAME_MAX + 32] = "";
    const char *slash = strrchr(w->text, '/');
    const char *kinds[FAULT_KINDS_MAX];
    size_t kind_count = fault_kinds(kinds, FAULT_KINDS_MAX);
    const char *kind =
        slash != NULL && kind_count > 0 ? suggest(slash + 1, kinds, kind_count) : NULL;
    if (kind != NULL && strlen(w->text) < FAULTS_NAME_MAX) {
        char fixed[FAULTS_NAME_MAX + SUGGEST_LEN_MAX];
        snprintf(fixed, sizeof fixed, "%.*s%s", (int)(slash + 1 - w->text), w->text, kind);
        if (faults_lookup(fixed) != NULL) {
            snprintf(h, sizeof h, "; did you mean '%.*s'?", FAULTS_NAME_MAX - 1, fixed);
        }
    }
    werr(p, w,
         "unknown fault point '%s'; `faultdrill faults` lists them (disk/<node>/write, "
         "net/<from>/<to>/drop, crash/<node>/<point>, ...)%s",
         w->text, h);
}

/*
 * Checks the node components of a fault name against the pattern it
 * matched: each must be a node of the topology (or a client, for network
 * links); a wildcard's cut component must begin some node's name.
 */
static bool fault_nodes_check(struct parser *p, const struct word *w, const char *pattern)
{
    char name[FAULTS_NAME_MAX];
    memcpy(name, w->text, strlen(w->text) + 1);
    bool net = strncmp(pattern, "net/", 4) == 0;
    const char *pat = pattern;
    char *save = NULL;
    char *from = NULL;
    bool ok = true;
    for (char *comp = strtok_r(name, "/", &save); comp != NULL && pat != NULL;
         comp = strtok_r(NULL, "/", &save)) {
        bool placeholder = pat[0] == '<';
        const char *pat_slash = strchr(pat, '/');
        pat = pat_slash != NULL ? pat_slash + 1 : NULL;
        if (!placeholder) {
            continue;
        }
        size_t len = strlen(comp);
        if (len > 0 && comp[len - 1] == '*') {
            comp[len - 1] = '\0';
            if (!node_prefix_known(p, comp, net)) {
                char where[FAULTS_NAME_MAX + 16], list[LIST_TEXT_MAX];
                snprintf(where, sizeof where, " in fault %s", w->text);
                werr(p, w, "no node starts with '%s'%s; nodes here: %s", comp, where,
                     nodes_text(p, list, net));
                ok = false;
            }
            break;
        }
        if (!node_known(p, comp, net)) {
            char where[FAULTS_NAME_MAX + 16];
            snprintf(where, sizeof where, " in fault %s", w->text);
            node_unknown(p, w->col, comp, where, net);
            ok = false;
        } else if (from != NULL && strcmp(from, comp) == 0) {
            werr(p, w, "fault %s: a link joins two different nodes", w->text);
            ok = false;
        }
        from = net ? comp : NULL;
    }
    return ok;
}

/* Whether a node is a predictor of topology stake (predictor1...). */
static bool is_predictor_node(const char *node)
{
    return strncmp(node, "predictor", 9) == 0;
}

/* Only a predictor lies: stake/<node>/... names one (or, cut by a '*', a
 * prefix of "predictor"). */
static bool fault_stake_check(struct parser *p, const struct word *w)
{
    char node[FAULTS_NAME_MAX];
    const char *start = strchr(w->text, '/');
    size_t len = start != NULL ? strcspn(start + 1, "/*") : 0;
    snprintf(node, sizeof node, "%.*s", (int)len, start != NULL ? start + 1 : "");
    bool cut = start != NULL && start[1 + len] == '*';
    if (is_predictor_node(node) || (cut && strncmp("predictor", node, len) == 0)) {
        return true;
    }
    werr(p, w, "fault %s: only a predictor lies; predictors here: predictor1..predictor%d", w->text,
         p->d->topology.predictors);
    return false;
}

/* The catalog entry of a fault name valid in this drill, or NULL (reported). */
static const struct faults_point *fault_name(struct parser *p, const struct word *w)
{
    if (strlen(w->text) >= FAULTS_NAME_MAX) {
        werr(p, w, "fault point name longer than %d bytes", FAULTS_NAME_MAX - 1);
        return NULL;
    }
    const struct faults_point *fp = faults_lookup(w->text);
    if (fp == NULL) {
        fault_unknown(p, w);
        return NULL;
    }
    if (fp->family == FAULTS_FAMILY_LIBC) {
        werr(p, w,
             "%s is a libc point: it fires only in `faultdrill serve` under fiu-run, "
             "never in a drill; use disk/<node>/... here",
             w->text);
        return NULL;
    }
    if (!fault_nodes_check(p, w, fp->pattern)) {
        return NULL;
    }
    return fp->family != FAULTS_FAMILY_STAKE || fault_stake_check(p, w) ? fp : NULL;
}

enum fault_option {
    FAULT_P,
    FAULT_ERRNO,
    FAULT_COUNT,
    FAULT_AFTER,
    FAULT_FOR,
    FAULT_DELAY,
};

static const char *const fault_option_names[] = {"p",   "errno", "count", "after",
                                                 "for", "delay", NULL};

/* p=: above 0, at most 1. */
static void fault_p(struct parser *p, const struct word *w, struct drill_event *ev)
{
    double v = 0;
    if (!decimal_parse(w->value, &v) || v > 1) {
        werr(p, w, "bad probability '%s': p= is above 0 and at most 1, like p=0.5", w->value);
    } else if (v == 0) {
        werr(p, w, "p=0 would never fire; remove the line");
    } else {
        ev->spec.p = v;
        ev->p_given = true;
    }
}

/* errno=: a name or number libfaults accepts (EINTR and EAGAIN refused). */
static void fault_errno(struct parser *p, const struct word *w, struct drill_event *ev)
{
    int err = faults_errno_parse(w->value);
    if (err < 0) {
        werr(p, w, "%s", faults_errmsg()); /* "errno EINTR: refused, SQLite retries it forever" */
        return;
    }
    ev->spec.err = err;
    ev->err_given = true;
}

static void fault_option(struct parser *p, const struct word *w, const struct faults_point *fp,
                         struct drill_event *ev, unsigned *seen)
{
    int64_t v = 0;
    switch (option_find(p, w, "fault", fault_option_names, seen)) {
    case FAULT_P:
        fault_p(p, w, ev);
        break;
    case FAULT_ERRNO:
        if (fp != NULL && fp->errno_default == 0) {
            werr(p, w, "fault %s takes no errno=: only disk faults fail with an errno", ev->name);
        } else {
            fault_errno(p, w, ev);
        }
        break;
    case FAULT_COUNT:
        if (int_word(p, w, w->value, NULL, 1, DRILL_FAULT_COUNT_MAX, &v)) {
            ev->spec.count = (uint64_t)v;
        }
        break;
    case FAULT_AFTER:
        if (int_word(p, w, w->value, NULL, 0, DRILL_FAULT_COUNT_MAX, &v)) {
            ev->spec.after = (uint64_t)v;
        }
        break;
    case FAULT_FOR:
        if (dur_word(p, w, w->value, NULL, true, &v)) {
            ev->for_us = v;
        }
        break;
    case FAULT_DELAY:
        if (fp != NULL && fp->delay_us_default == 0) {
            werr(p, w,
                 "delay= applies only to slow and delay points (disk/<node>/slow, "
                 "net/<from>/<to>/delay), not to %s",
                 ev->name);
        } else if (dur_word(p, w, w->value, NULL, true, &v)) {
            ev->spec.delay_us = v;
        }
        break;
    default:
        break;
    }
}

static void act_fault(struct parser *p, struct stmt *s, struct drill_event *ev)
{
    static const char usage[] = "fault NAME [once] [p=P errno=E count=N after=N for=DUR "
                                "delay=DUR]";
    if (!pos_check(p, s, 1, 2, usage)) {
        return;
    }
    const struct faults_point *fp = fault_name(p, s->pos[0]);
    if (fp != NULL) {
        memcpy(ev->name, s->pos[0]->text, strlen(s->pos[0]->text) + 1);
    }
    bool once = false;
    if (s->pos_count == 2 && strcmp(s->pos[1]->text, "once") == 0) {
        once = true;
    } else if (s->pos_count == 2) {
        werr(p, s->pos[1], "unexpected '%s': write `%s`", s->pos[1]->text, usage);
    }
    ev->spec.p = 1.0;
    unsigned seen = 0;
    for (size_t i = 0; i < s->opt_count; i++) {
        /* Without a valid name, options are still checked, but not
         * against the point (fp NULL). */
        fault_option(p, s->opt[i], fp, ev, &seen);
    }
    if (once && (seen & (1u << FAULT_COUNT))) {
        werr(p, s->pos[1], "once and count= together: once means count=1");
    } else if (once) {
        ev->spec.count = 1;
    }
}

/* ---- Timeline: everything else ----------------------------------------- */

static void act_heal(struct parser *p, struct stmt *s, struct drill_event *ev)
{
    opts_none(p, s);
    if (!pos_check(p, s, 1, 1, "heal NAME | heal partition | heal all")) {
        return;
    }
    const struct word *w = s->pos[0];
    if (strcmp(w->text, "partition") == 0) {
        ev->heal = DRILL_HEAL_PARTITION;
    } else if (strcmp(w->text, "all") == 0) {
        ev->heal = DRILL_HEAL_ALL;
    } else if (fault_name(p, w) != NULL) {
        ev->heal = DRILL_HEAL_POINT;
    } else {
        return;
    }
    memcpy(ev->name, w->text, strlen(w->text) + 1);
}

/* Adds one node to a side of a partition. */
static void partition_add(struct parser *p, struct drill_event *ev, int side, const char *node,
                          int col)
{
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < ev->side_count[s]; i++) {
            if (strcmp(ev->side[s][i], node) == 0) {
                perr(p, p->line, col,
                     s == side ? "node %s named twice on one side"
                               : "node %s is on both sides of the partition",
                     node);
                return;
            }
        }
    }
    if (!drill_has_node(p->d, node)) {
        node_unknown(p, col, node, "", false);
    } else if (ev->side_count[side] == DRILL_SIDE_MAX) {
        perr(p, p->line, col, "more than %d nodes on one side of a partition", DRILL_SIDE_MAX);
    } else {
        memcpy(ev->side[side][ev->side_count[side]++], node, strlen(node) + 1);
    }
}

/* partition A [B...] | C [D...]; the bar may touch the names (a|b). */
static void act_partition(struct parser *p, struct stmt *s, struct drill_event *ev)
{
    static const char usage[] = "partition primary | secondary";
    int side = 0;
    opts_none(p, s);
    for (size_t i = 0; i < s->pos_count; i++) {
        char *text = s->pos[i]->text;
        for (char *piece = text; piece != NULL;) {
            char *bar = strchr(piece, '|');
            if (bar != NULL) {
                *bar = '\0';
            }
            if (piece[0] != '\0') {
                partition_add(p, ev, side, piece, s->pos[i]->col + (int)(piece - text));
            }
            if (bar != NULL && side == 1) {
                perr(p, p->line, s->pos[i]->col + (int)(bar - text),
                     "a partition has two sides: one '|' only; write `%s`", usage);
            }
            side = bar != NULL ? 1 : side;
            piece = bar != NULL ? bar + 1 : NULL;
        }
    }
    if (p->line_errors == 0 && (ev->side_count[0] == 0 || ev->side_count[1] == 0)) {
        werr(p, s->verb, "a partition needs nodes on both sides of '|': write `%s`", usage);
    }
    snprintf(ev->name, sizeof ev->name, "partition");
}

/* Whether a node is a local of topology offline (local, local1...). */
static bool is_local_node(const char *node)
{
    return strncmp(node, "local", 5) == 0;
}

/* crash, restart, offline, online, failover: NODE (and `process` for crash). */
static void act_node(struct parser *p, struct stmt *s, struct drill_event *ev)
{
    const char *verb = s->verb->text;
    bool crash = ev->action == DRILL_CRASH;
    char usage[32];
    snprintf(usage, sizeof usage, "%s NODE%s", verb, crash ? " [process]" : "");
    opts_none(p, s);
    if (!pos_check(p, s, 1, crash ? 2 : 1, usage)) {
        return;
    }
    const struct word *w = s->pos[0];
    if (s->pos_count == 2 && strcmp(s->pos[1]->text, "process") != 0) {
        werr(p, s->pos[1],
             "unexpected '%s': write `crash NODE` (a power cut) or `crash NODE "
             "process`",
             s->pos[1]->text);
    }
    ev->process = s->pos_count == 2;
    bool switchable = ev->action == DRILL_GO_OFFLINE || ev->action == DRILL_GO_ONLINE;
    if (switchable && (p->d->topology.components & DRILL_OFFLINE) == 0) {
        werr(p, s->verb, "`%s` switches a local's sync job: it needs topology offline", verb);
    } else if (!drill_has_node(p->d, w->text)) {
        node_unknown(p, w->col, w->text, "", false);
    } else if (switchable && !is_local_node(w->text)) {
        werr(p, w, "`%s` switches a local's sync job; %s is not a local node", verb, w->text);
    } else if (ev->action == DRILL_FAILOVER &&
               (is_local_node(w->text) || strcmp(w->text, "central") == 0 ||
                strcmp(w->text, "registry") == 0 || strcmp(w->text, "ledger") == 0 ||
                is_predictor_node(w->text))) {
        werr(p, w,
             "failover promotes a copy (primary, mirror, secondary, leader or a "
             "replica); %s is not one",
             w->text);
    } else {
        memcpy(ev->name, w->text, strlen(w->text) + 1);
    }
}

/* op KIND client=clientN [product=ID] [qty=N] */
static void op_option(struct parser *p, const struct word *w, struct drill_event *ev,
                      unsigned *seen)
{
    static const char *const names[] = {"client", "product", "qty", NULL};
    int64_t v = 0;
    int idx = option_find(p, w, "op", names, seen);
    bool takes_product =
        ev->op == DRILL_OP_BROWSE || ev->op == DRILL_OP_CART_ADD || ev->op == DRILL_OP_CART_REMOVE;
    if (idx == 0) {
        int n = client_number(w->value);
        if (!client_exists(p, n) && p->workload_clients > 0) {
            werr(p, w, "unknown client '%s'; the workloads have client1..client%d", w->value,
                 p->workload_clients);
        } else if (!client_exists(p, n)) {
            werr(p, w, "bad client '%s': write clientN, N from 1 to %d", w->value,
                 DRILL_CLIENTS_MAX);
        }
        ev->client = n;
    } else if ((idx == 1 && !takes_product) || (idx == 2 && ev->op != DRILL_OP_CART_ADD)) {
        werr(p, w, "op %s takes no %s=", op_names[ev->op], w->text);
    } else if (idx == 1 && (p->products_bad || p->d->products < 1)) {
        return; /* the products line is wrong: reported there */
    } else if (idx == 1 && int_word(p, w, w->value, NULL, 1, p->d->products, &v)) {
        ev->product = v;
    } else if (idx == 2 && int_word(p, w, w->value, NULL, 1, SHOP_QTY_MAX, &v)) {
        ev->qty = v;
    }
}

static void act_op(struct parser *p, struct stmt *s, struct drill_event *ev)
{
    if (!pos_check(p, s, 1, 1, "op KIND client=clientN [product=ID] [qty=N]")) {
        return;
    }
    const struct word *w = s->pos[0];
    if (!op_parse(w->text, &ev->op)) {
        char list[LIST_TEXT_MAX], h[HINT_TEXT_MAX];
        werr(p, w, "unknown operation '%s'; operations: %s%s", w->text,
             join(list, op_names, DRILL_OP_COUNT, "", ", "),
             hint(h, w->text, op_names, DRILL_OP_COUNT));
        return;
    }
    snprintf(ev->name, sizeof ev->name, "%s", op_names[ev->op]);
    unsigned seen = 0;
    for (size_t i = 0; i < s->opt_count; i++) {
        op_option(p, s->opt[i], ev, &seen);
    }
    if ((seen & 1u) == 0) {
        werr(p, s->verb, "op %s needs client=, like client=client1", ev->name);
    } else if (p->workload_clients == 0 && ev->client > p->d->clients) {
        p->d->clients = ev->client; /* no workloads: the ops make the clients */
    }
}

static void act_checkpoint(struct parser *p, struct stmt *s, struct drill_event *ev)
{
    (void)ev;
    opts_none(p, s);
    pos_check(p, s, 0, 0, "checkpoint");
}

static void act_drain(struct parser *p, struct stmt *s, struct drill_event *ev)
{
    static const char *const names[] = {"within", NULL};
    char a[DRILL_DURATION_TEXT_MAX], b[DRILL_DURATION_TEXT_MAX];
    char c[DRILL_DURATION_TEXT_MAX], d[DRILL_DURATION_TEXT_MAX];
    pos_check(p, s, 0, 0, "drain within=DUR");
    unsigned seen = 0;
    for (size_t i = 0; i < s->opt_count; i++) {
        const struct word *w = s->opt[i];
        if (option_find(p, w, "drain", names, &seen) == 0) {
            dur_word(p, w, w->value, NULL, true, &ev->within_us);
        }
    }
    if (seen == 0) {
        werr(p, s->verb,
             "drain needs within=, the time the queues get to empty: drain "
             "within=10s");
    } else if (p->drain_line != 0) {
        werr(p, s->verb, "drain given twice (first at line %d): a drill drains once",
             p->drain_line);
    } else if (!p->duration_bad && ev->within_us > 0 &&
               ev->at_us + ev->within_us > p->d->duration_us) {
        werr(p, s->verb, "drain at %s within=%s ends at %s, after the drill's duration %s",
             drill_duration_format(ev->at_us, a), drill_duration_format(ev->within_us, b),
             drill_duration_format(ev->at_us + ev->within_us, c),
             drill_duration_format(p->d->duration_us, d));
    }
    if (p->drain_line == 0) {
        p->drain_line = p->line;
    }
}

/* ---- The `at` statement ------------------------------------------------- */

typedef void (*action_fn)(struct parser *p, struct stmt *s, struct drill_event *ev);

/* Indexed by enum drill_action. */
static const action_fn action_fns[ACTION_COUNT] = {
    [DRILL_FAULT] = act_fault,
    [DRILL_HEAL] = act_heal,
    [DRILL_PARTITION] = act_partition,
    [DRILL_CRASH] = act_node,
    [DRILL_RESTART] = act_node,
    [DRILL_GO_OFFLINE] = act_node,
    [DRILL_GO_ONLINE] = act_node,
    [DRILL_FAILOVER] = act_node,
    [DRILL_OP] = act_op,
    [DRILL_CHECKPOINT] = act_checkpoint,
    [DRILL_DRAIN] = act_drain,
};

/* The action named by w, or ACTION_COUNT (reported). */
static size_t action_find(struct parser *p, const struct word *w)
{
    for (size_t i = 0; i < ACTION_COUNT; i++) {
        if (w->value == NULL && strcmp(action_names[i], w->text) == 0) {
            return i;
        }
    }
    char list[LIST_TEXT_MAX], h[HINT_TEXT_MAX];
    werr(p, w, "unknown action '%s'; actions: %s%s", w->text,
         join(list, action_names, ACTION_COUNT, "", ", "), hint(h, w->text, action_names, 0));
    return ACTION_COUNT;
}

/* at TIME ACTION ...: one timeline event. */
static void stmt_at(struct parser *p, struct stmt *s)
{
    struct drill *d = p->d;
    char a[DRILL_DURATION_TEXT_MAX], b[DRILL_DURATION_TEXT_MAX];
    if (p->first_at_line == 0) {
        p->first_at_line = p->line;
    }
    if (p->word_count < 3 || p->words[1].value != NULL) {
        werr(p, s->verb,
             "`at` needs a time and an action: write `at 2s fault "
             "disk/primary/write`");
        return;
    }
    struct drill_event ev = {.line = p->line, .col = s->verb->col};
    const struct word *time = &p->words[1];
    if (dur_word(p, time, time->text, "at", false, &ev.at_us) && !p->duration_bad &&
        ev.at_us > d->duration_us) {
        werr(p, time, "at %s is after the end of the drill (duration %s)",
             drill_duration_format(ev.at_us, a), drill_duration_format(d->duration_us, b));
    }
    size_t action = action_find(p, &p->words[2]);
    if (action == ACTION_COUNT) {
        return;
    }
    ev.action = (enum drill_action)action;
    struct stmt args;
    stmt_split(p, 3, &args);
    args.verb = &p->words[2];
    ev.arg_col = p->word_count > 3 ? p->words[3].col : ev.col;
    action_fns[action](p, &args, &ev);
    if (p->line_errors != 0) {
        return;
    }
    if (d->event_count == DRILL_EVENTS_MAX) {
        if (!p->events_full_reported) {
            werr(p, s->verb, "more than %d timeline statements", DRILL_EVENTS_MAX);
        }
        p->events_full_reported = true;
        return;
    }
    d->events[d->event_count++] = ev;
}

/* ---- Expectations ------------------------------------------------------- */

/* Whether `key` is one of the comma-separated `options`. */
static bool option_listed(const char *options, const char *key)
{
    size_t len = strlen(key);
    for (const char *o = options; *o != '\0';) {
        const char *comma = strchr(o, ',');
        size_t olen = comma != NULL ? (size_t)(comma - o) : strlen(o);
        if (olen == len && strncmp(o, key, len) == 0) {
            return true;
        }
        o += olen + (comma != NULL ? 1 : 0);
    }
    return false;
}

/* The invariant names, for suggestions. */
static size_t invariant_names(const char *names[DRILL_EXPECTS_MAX])
{
    size_t count = 0;
    const struct invariant_info *cat = invariant_catalog(&count);
    assert(count <= DRILL_EXPECTS_MAX);
    for (size_t i = 0; i < count; i++) {
        names[i] = cat[i].name;
    }
    return count;
}

static void stmt_expect(struct parser *p, struct stmt *s)
{
    struct drill *d = p->d;
    static const char usage[] = "expect INVARIANT [violated] [max=N]";
    if (!pos_check(p, s, 1, 2, usage)) {
        return;
    }
    const struct word *w = s->pos[0];
    const struct invariant_info *inv = invariant_lookup(w->text);
    if (inv == NULL) {
        const char *names[DRILL_EXPECTS_MAX] = {NULL};
        char h[HINT_TEXT_MAX];
        werr(p, w, "unknown invariant '%s'; `faultdrill invariants` lists them%s", w->text,
             hint(h, w->text, names, invariant_names(names)));
        return;
    }
    struct drill_expect e = {.max = -1, .line = p->line, .col = s->verb->col};
    snprintf(e.invariant, sizeof e.invariant, "%s", inv->name);
    if (s->pos_count == 2 && strcmp(s->pos[1]->text, "violated") != 0) {
        werr(p, s->pos[1], "unexpected '%s': write `%s`", s->pos[1]->text, usage);
    }
    e.violated = s->pos_count == 2;
    for (size_t i = 0; i < s->opt_count; i++) {
        const struct word *o = s->opt[i];
        if (!option_listed(inv->options, o->text)) {
            werr(p, o, "invariant %s takes no option %s=", inv->name, o->text);
        } else if (strcmp(o->text, "max") != 0) {
            assert(!"stmt_expect: an invariant option other than max= is not parsed yet");
        } else if (e.max >= 0) {
            werr(p, o, "option %s= given twice", o->text);
        } else if (!int_word(p, o, o->value, NULL, 0, EXPECT_MAX_MAX, &e.max)) {
            e.max = -1;
        }
    }
    for (size_t i = 0; i < d->expect_count; i++) {
        if (strcmp(d->expects[i].invariant, inv->name) == 0) {
            werr(p, w, "expect %s given twice (first at line %d)", inv->name, d->expects[i].line);
        }
    }
    if (p->line_errors == 0 && d->expect_count == DRILL_EXPECTS_MAX) {
        werr(p, s->verb, "more than %d expectations", DRILL_EXPECTS_MAX);
    } else if (p->line_errors == 0) {
        d->expects[d->expect_count++] = e;
    }
}

/* ---- Statements --------------------------------------------------------- */

typedef void (*stmt_fn)(struct parser *p, struct stmt *s);

static const struct {
    const char *verb;
    stmt_fn fn;
    bool header; /* must come before the first `at` */
} stmts[] = {
    {"drill", stmt_drill, true},
    {"about", stmt_about, true},
    {"topology", stmt_topology, true},
    {"seed", stmt_seed, true},
    {"duration", stmt_duration, true},
    {"products", stmt_products, true},
    {"users", stmt_users, true},
    {"workload", stmt_workload, true},
    {"at", stmt_at, false},
    {"expect", stmt_expect, false},
};

#define STMT_COUNT (sizeof stmts / sizeof stmts[0])

static void stmt_unknown(struct parser *p, const struct word *w)
{
    const char *verbs[STMT_COUNT + ACTION_COUNT];
    for (size_t i = 0; i < STMT_COUNT; i++) {
        verbs[i] = stmts[i].verb;
    }
    for (size_t i = 0; i < ACTION_COUNT; i++) {
        if (w->value == NULL && strcmp(action_names[i], w->text) == 0) {
            werr(p, w,
                 "unknown statement '%s': timeline statements start with `at TIME`, "
                 "like `at 5s %s ...`",
                 w->text, w->text);
            return;
        }
        verbs[STMT_COUNT + i] = action_names[i];
    }
    char h[HINT_TEXT_MAX];
    werr(p, w, "unknown statement '%s'%s", w->text,
         hint(h, w->text, verbs, STMT_COUNT + ACTION_COUNT));
}

static void parse_statement(struct parser *p)
{
    struct word *verb = &p->words[0];
    for (size_t i = 0; i < STMT_COUNT; i++) {
        if (verb->value != NULL || strcmp(stmts[i].verb, verb->text) != 0) {
            continue;
        }
        if (stmts[i].header && p->first_at_line != 0) {
            /* Reported, and parsed all the same so its own errors show. */
            werr(p, verb,
                 "`%s` belongs to the header: it must come before the first `at` "
                 "(line %d)",
                 verb->text, p->first_at_line);
        }
        struct stmt s;
        stmt_split(p, 1, &s);
        s.verb = verb;
        stmts[i].fn(p, &s);
        return;
    }
    stmt_unknown(p, verb);
}

static void parse_line(struct parser *p, const char *line, size_t len)
{
    p->line_errors = 0;
    if (len > DRILL_LINE_MAX) {
        perr(p, p->line, 1, "line longer than %d bytes", DRILL_LINE_MAX);
        return;
    }
    const char *nul = memchr(line, '\0', len);
    if (nul != NULL) {
        perr(p, p->line, (int)(nul - line) + 1, "NUL byte: a drill is plain text");
        return;
    }
    if (lex_line(p, line, len) && p->word_count > 0) {
        parse_statement(p);
    }
}

/* ---- End of file: what needs the whole drill ---------------------------- */

static int event_compare(const void *a, const void *b)
{
    const struct drill_event *x = a, *y = b;
    if (x->at_us != y->at_us) {
        return x->at_us < y->at_us ? -1 : 1;
    }
    return (x->line > y->line) - (x->line < y->line); /* stable: file order */
}

/* A heal of one point must follow a fault armed with that exact name. */
static void finish_heals(struct parser *p)
{
    const struct drill *d = p->d;
    for (size_t i = 0; i < d->event_count; i++) {
        const struct drill_event *h = &d->events[i];
        if (h->action != DRILL_HEAL || h->heal != DRILL_HEAL_POINT) {
            continue;
        }
        bool armed = false;
        for (size_t j = 0; j < i && !armed; j++) {
            armed = d->events[j].action == DRILL_FAULT && strcmp(d->events[j].name, h->name) == 0;
        }
        if (!armed) {
            char t[DRILL_DURATION_TEXT_MAX];
            perr(p, h->line, h->col, "heal %s: no fault is armed with this exact name before %s",
                 h->name, drill_duration_format(h->at_us, t));
        }
    }
}

static void errors_sort(struct drill_errors *errs);

/* ---- What the topology can do (`check` refuses what `run` would) ------- */

enum role {
    ROLE_NONE,
    ROLE_CLIENT,
    ROLE_PRIMARY,
    ROLE_MIRROR,
    ROLE_SECONDARY,
    ROLE_LOCAL,
    ROLE_CENTRAL,
    ROLE_LEADER,
    ROLE_REPLICA,
    ROLE_REGISTRY,
    ROLE_LEDGER,
    ROLE_PREDICTOR,
};

static enum role role_of(const char *name)
{
    static const struct {
        const char *prefix;
        enum role role;
    } roles[] = {
        {"client", ROLE_CLIENT},       {"primary", ROLE_PRIMARY},     {"mirror", ROLE_MIRROR},
        {"secondary", ROLE_SECONDARY}, {"local", ROLE_LOCAL},         {"central", ROLE_CENTRAL},
        {"leader", ROLE_LEADER},       {"replica", ROLE_REPLICA},     {"registry", ROLE_REGISTRY},
        {"ledger", ROLE_LEDGER},       {"predictor", ROLE_PREDICTOR},
    };
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        if (strncmp(name, roles[i].prefix, strlen(roles[i].prefix)) == 0) {
            return roles[i].role;
        }
    }
    return ROLE_NONE;
}

/* The directed links the simulator sends messages on (a mirror is a disk of
 * the primary's process: nothing travels between them). */
static bool link_used(enum role from, enum role to)
{
    static const enum role links[][2] = {
        {ROLE_CLIENT, ROLE_PRIMARY},    {ROLE_PRIMARY, ROLE_CLIENT},
        {ROLE_CLIENT, ROLE_SECONDARY},  {ROLE_SECONDARY, ROLE_CLIENT},
        {ROLE_CLIENT, ROLE_LOCAL},      {ROLE_LOCAL, ROLE_CLIENT},
        {ROLE_CLIENT, ROLE_REPLICA},    {ROLE_REPLICA, ROLE_CLIENT},
        {ROLE_CLIENT, ROLE_REGISTRY},   {ROLE_REGISTRY, ROLE_CLIENT},
        {ROLE_PRIMARY, ROLE_SECONDARY}, {ROLE_SECONDARY, ROLE_PRIMARY},
        {ROLE_LOCAL, ROLE_CENTRAL},     {ROLE_CENTRAL, ROLE_LOCAL},
        {ROLE_LEADER, ROLE_REPLICA},    {ROLE_REPLICA, ROLE_LEADER},
        {ROLE_REPLICA, ROLE_REGISTRY},  {ROLE_PREDICTOR, ROLE_LEDGER},
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        if (links[i][0] == from && links[i][1] == to) {
            return true;
        }
    }
    return false;
}

/* The node component of a fault name ("primary" of disk/primary/write). */
static void fault_node(const char *name, int part, char out[FAULTS_NAME_MAX])
{
    const char *p = name;
    for (int i = 0; i < part && p != NULL; i++) {
        p = strchr(p, '/');
        p = p != NULL ? p + 1 : NULL;
    }
    size_t n = p != NULL ? strcspn(p, "/") : 0;
    snprintf(out, FAULTS_NAME_MAX, "%.*s", (int)n, p != NULL ? p : "");
}

/* NULL when the point can fire in this drill, else why it never can. */
static const char *fault_unreachable(const struct drill *d, const char *name, char *buf, size_t len)
{
    unsigned c = d->topology.components;
    char node[FAULTS_NAME_MAX], to[FAULTS_NAME_MAX];
    fault_node(name, 1, node);
    enum role r = role_of(node);
    if (strncmp(name, "disk/", 5) == 0) {
        if (r == ROLE_REGISTRY || r == ROLE_PREDICTOR) {
            snprintf(buf, len, "%.32s holds no database: nothing it does touches a disk", node);
            return buf;
        }
        return NULL;
    }
    if (strncmp(name, "net/", 4) == 0) {
        fault_node(name, 2, to);
        if (link_used(r, role_of(to))) {
            return NULL;
        }
        if (role_of(to) == ROLE_MIRROR || r == ROLE_MIRROR) {
            snprintf(buf, len,
                     "the mirror is a disk of the %s's process: no message goes "
                     "from %.32s to %.32s (use disk/mirror/... or a partition)",
                     (c & DRILL_CLUSTER) ? "leader" : (c & DRILL_OFFLINE) ? "local" : "primary",
                     node, to);
        } else {
            snprintf(buf, len, "no message ever goes from %.32s to %.32s in this topology", node,
                     to);
        }
        return buf;
    }
    if (strncmp(name, "crash/", 6) != 0) {
        return NULL;
    }
    const char *point = strrchr(name, '/') + 1;
    bool ok = true;
    const char *needs = "";
    if (strncmp(point, "mirror-", 7) == 0) {
        /* (role_of takes prefixes: local1, mirror2...) */
        enum role mirrored = (c & DRILL_CLUSTER)   ? ROLE_LEADER
                             : (c & DRILL_OFFLINE) ? ROLE_LOCAL
                                                   : ROLE_PRIMARY;
        ok = (c & DRILL_MIRROR) != 0 && r == mirrored;
        needs = mirrored == ROLE_LEADER  ? "topology mirror, on leader (the process that writes "
                                           "both copies)"
                : mirrored == ROLE_LOCAL ? "topology mirror, on local (the process that writes "
                                           "both copies)"
                                         : "topology mirror, on primary (the process that writes "
                                           "both copies)";
    } else if (strcmp(point, "checkout-mid-transaction") == 0) {
        ok = (r == ROLE_PRIMARY) || (r == ROLE_SECONDARY && (c & DRILL_ASYNC)) || r == ROLE_LOCAL ||
             r == ROLE_LEADER;
        needs = "a node that serves checkouts (primary, a promoted secondary, a local or the "
                "leader)";
    } else if (strcmp(point, "sync-between-row-and-queue") == 0) {
        ok = (c & DRILL_OFFLINE) != 0 && r == ROLE_LOCAL && d->topology.queue_separate;
        needs = "topology offline queue=separate, on a local";
    } else if (strncmp(point, "sync-", 5) == 0) {
        ok = (c & DRILL_OFFLINE) != 0 && r == ROLE_LOCAL;
        needs = "topology offline, on a local";
    }
    if (ok) {
        return NULL;
    }
    snprintf(buf, len, "this crash point exists only with %s", needs);
    return buf;
}

int drill_check_runnable(const struct drill *d, struct drill_errors *errs)
{
    size_t before = errs->count;
    /* mirror is a node's storage (DESIGN §2): it goes with one of the
     * components that replicate between nodes; those do not combine */
    unsigned between = d->topology.components & (DRILL_ASYNC | DRILL_OFFLINE | DRILL_CLUSTER);
    if (between & (between - 1)) {
        errors_add(errs, d->topology_line, 1,
                   "async, offline and cluster replicate between nodes and do not combine with "
                   "each other: use one of them (mirror and stake may go beside it)");
    }
    int failovers = 0;
    for (size_t i = 0; i < d->event_count; i++) {
        const struct drill_event *e = &d->events[i];
        char why[240];
        if (e->action == DRILL_FAULT && e->name[0] != '\0' && strchr(e->name, '*') == NULL &&
            fault_unreachable(d, e->name, why, sizeof why) != NULL) {
            errors_add(errs, e->line, e->arg_col, "fault %s can never fire here: %s", e->name, why);
        }
        if (e->action != DRILL_FAILOVER || e->name[0] == '\0') {
            continue;
        }
        if ((d->topology.components & DRILL_ASYNC) == 0) {
            errors_add(errs, e->line, e->arg_col,
                       "failover is built for topology async only (it promotes the secondary)");
        } else if (strcmp(e->name, "secondary") != 0) {
            errors_add(errs, e->line, e->arg_col,
                       "failover %s: async promotes its secondary; write `failover secondary`",
                       e->name);
        } else if (++failovers > 1) {
            errors_add(errs, e->line, e->col,
                       "a second failover: async promotes its secondary once");
        }
    }
    errors_sort(errs);
    return errs->count > before ? -EINVAL : 0;
}

static void finish_expects(struct parser *p)
{
    const struct drill *d = p->d;
    for (size_t i = 0; i < d->expect_count; i++) {
        const struct drill_expect *e = &d->expects[i];
        const struct invariant_info *inv = invariant_lookup(e->invariant);
        assert(inv != NULL);
        if (inv->components != 0 && (inv->components & d->topology.components) == 0) {
            char list[LIST_TEXT_MAX];
            perr(p, e->line, e->col, "invariant %s needs topology %s", inv->name,
                 components_text(list, inv->components));
        }
    }
}

static void finish_workloads(struct parser *p)
{
    struct drill *d = p->d;
    for (size_t i = 0; i < d->workload_count; i++) {
        struct drill_workload *wl = &d->workloads[i];
        if (p->until[i].line == 0) {
            wl->until_us = d->duration_us;
        } else if (!p->duration_bad && wl->until_us > d->duration_us) {
            char a[DRILL_DURATION_TEXT_MAX], b[DRILL_DURATION_TEXT_MAX];
            perr(p, p->until[i].line, p->until[i].col,
                 "until=%s is after the end of the drill (duration %s)",
                 drill_duration_format(wl->until_us, a), drill_duration_format(d->duration_us, b));
        }
    }
}

/* Errors in line order, stable (insertion sort: at most DRILL_ERRORS_MAX). */
static void errors_sort(struct drill_errors *errs)
{
    for (size_t i = 1; i < errs->count; i++) {
        struct drill_error e = errs->e[i];
        size_t j = i;
        while (j > 0 && (errs->e[j - 1].line > e.line ||
                         (errs->e[j - 1].line == e.line && errs->e[j - 1].col > e.col))) {
            errs->e[j] = errs->e[j - 1];
            j--;
        }
        errs->e[j] = e;
    }
}

static void parse_finish(struct parser *p)
{
    struct drill *d = p->d;
    if (p->title_line == 0) {
        perr(p, 1, 1,
             "missing `drill \"title\"`: a drill starts with its title, like drill "
             "\"Primary disk fails during checkout\"");
    }
    finish_workloads(p);
    qsort(d->events, d->event_count, sizeof d->events[0], event_compare);
    finish_heals(p);
    finish_expects(p);
    errors_sort(p->errs);
}

/* ---- Entry points ------------------------------------------------------- */

static void drill_defaults(struct drill *d)
{
    memset(d, 0, sizeof *d);
    d->topology = (struct drill_topology){
        .components = DRILL_SINGLE,
        .policy = MIRROR_STRICT,
        .ack = MIRROR_ACK_BOTH,
        .async_delay_us = 100 * INT64_C(1000),
        .async_batch = NODE_ASYNC_BATCH_CHANGES, /* the core's one default */
        .sync_interval_us = NODE_OFFLINE_INTERVAL_US, /* the core's one default */
        .retries = NODE_OFFLINE_RETRIES,
        .replicas = 2,
        .cache = DRILL_CACHE_OFF,
        .cache_ttl_us = 5 * INT64_C(1000000),
        .predictors = 4,
        .stake_deposit = INT64_C(1000000),
        .stake_tolerance = 50,
        .stake_slash_ppm = STAKE_PPM / 5,
        .stake_min = INT64_C(100000),
        .stake_round_us = INT64_C(1000000),
        .latency_us = INT64_C(1000),
    };
    d->seed = 1;
    d->duration_us = 10 * INT64_C(1000000);
    d->products = 10;
    d->product_stock = 100;
    d->price_min_cents = 100;
    d->price_max_cents = 10000;
    d->users = 4;
}

/* The name and path of the drill; false (reported at 1:1) when too long. */
static bool drill_set_file(struct parser *p, const char *file)
{
    struct drill *d = p->d;
    const char *slash = strrchr(file, '/');
    const char *base = slash != NULL ? slash + 1 : file;
    size_t len = strlen(base);
    if (len > 6 && strcmp(base + len - 6, ".drill") == 0) {
        len -= 6;
    }
    if (strlen(file) >= sizeof d->file) {
        perr(p, 1, 1, "path longer than %zu bytes", sizeof d->file - 1);
        return false;
    }
    if (len >= sizeof d->name) {
        perr(p, 1, 1,
             "file name longer than %zu bytes before .drill: reports use it as a "
             "directory name",
             sizeof d->name - 1);
        return false;
    }
    memcpy(d->file, file, strlen(file) + 1);
    memcpy(d->name, base, len);
    d->name[len] = '\0';
    return true;
}

int drill_parse_text(const char *file, const char *text, size_t len, struct drill *d,
                     struct drill_errors *errs)
{
    assert(file != NULL && (text != NULL || len == 0) && d != NULL && errs != NULL);
    memset(errs, 0, sizeof *errs);
    drill_defaults(d);
    struct parser *p = calloc(1, sizeof *p);
    if (p == NULL) {
        errors_add(errs, 0, 0, "out of memory parsing %s", file);
        return -ENOMEM;
    }
    p->file = file;
    p->d = d;
    p->errs = errs;
    drill_set_file(p, file);
    if (len > DRILL_FILE_BYTES_MAX) {
        perr(p, 1, 1, "larger than %u bytes, the limit for a drill", DRILL_FILE_BYTES_MAX);
        len = 0;
    }
    for (size_t start = 0; start < len;) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        p->line++;
        parse_line(p, text + start, end - start);
        start = end + 1;
    }
    parse_finish(p);
    free(p);
    return errs->count > 0 || errs->truncated ? -EINVAL : 0;
}

int drill_parse_file(const char *path, struct drill *d, struct drill_errors *errs)
{
    assert(path != NULL && d != NULL && errs != NULL);
    memset(errs, 0, sizeof *errs);
    drill_defaults(d);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int err = errno;
        errors_add(errs, 0, 0, "cannot read %s: %s", path, strerror(err));
        return -err;
    }
    /* One byte more than the limit tells "too large" from "exactly full". */
    char *buf = malloc(DRILL_FILE_BYTES_MAX + 1);
    int rc = 0;
    if (buf == NULL) {
        errors_add(errs, 0, 0, "out of memory reading %s", path);
        rc = -ENOMEM;
        goto out_close;
    }
    size_t len = fread(buf, 1, DRILL_FILE_BYTES_MAX + 1, f);
    if (ferror(f)) {
        int err = errno != 0 ? errno : EIO;
        errors_add(errs, 0, 0, "cannot read %s: %s", path, strerror(err));
        rc = -err;
    } else if (len > DRILL_FILE_BYTES_MAX) {
        errors_add(errs, 0, 0, "cannot read %s: larger than %u bytes, the limit for a drill", path,
                   DRILL_FILE_BYTES_MAX);
        rc = -E2BIG;
    } else {
        rc = drill_parse_text(path, buf, len, d, errs);
    }
    free(buf);
out_close:
    fclose(f);
    return rc;
}

void drill_errors_print(const char *file, const struct drill_errors *errs, FILE *out)
{
    for (size_t i = 0; i < errs->count; i++) {
        fprintf(out, "%s:%d:%d: %s\n", file, errs->e[i].line, errs->e[i].col, errs->e[i].msg);
    }
    if (errs->truncated) {
        fprintf(out, "%s:0:0: too many errors: only the first %d are shown\n", file,
                DRILL_ERRORS_MAX);
    }
}
