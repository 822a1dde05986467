/*
 * explain.c — `faultdrill explain`: what a parsed drill will do, told to a
 * student in plain English: the system under test, the shop, the load, each
 * timeline line as a sentence, and what every expectation promises.
 *
 * Reads a struct drill that drill_parse_* validated (so names are known to
 * be in the catalogs) and writes text; it never parses, runs or checks. The
 * sentences about invariants come from invariants.c, those about fault
 * points partly from the fault catalog's descriptions.
 */
#include "sim/drill.h"

#include <assert.h>
#include <stdarg.h>
#include <string.h>

#define EXPLAIN_WIDTH    78   /* wrap column of the output */
#define EXPLAIN_TEXT_MAX 2048 /* one paragraph */
#define INDENT           "  "

/* A paragraph being built; overflowing text is cut, never overrun. */
struct text {
    char buf[EXPLAIN_TEXT_MAX];
    size_t len;
};

__attribute__((format(printf, 2, 3))) static void text_add(struct text *t, const char *fmt, ...)
{
    if (t->len >= sizeof t->buf - 1) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof t->buf - t->len, fmt, ap);
    va_end(ap);
    if (n > 0) {
        t->len += (size_t)n;
        t->len = t->len < sizeof t->buf - 1 ? t->len : sizeof t->buf - 1;
    }
}

/* Prints a paragraph indented and wrapped at EXPLAIN_WIDTH, then a newline. */
static void wrap(FILE *out, const char *indent, const char *text)
{
    size_t indent_len = strlen(indent);
    size_t col = indent_len;
    bool line_empty = true;
    fputs(indent, out);
    for (const char *s = text; *s != '\0';) {
        while (*s == ' ') {
            s++;
        }
        size_t len = strcspn(s, " ");
        if (len == 0) {
            break;
        }
        if (!line_empty && col + 1 + len > EXPLAIN_WIDTH) {
            fprintf(out, "\n%s", indent);
            col = indent_len;
            line_empty = true;
        }
        if (!line_empty) {
            fputc(' ', out);
            col++;
        }
        fwrite(s, 1, len, out);
        col += len;
        line_empty = false;
        s += len;
    }
    fputc('\n', out);
}

/* "the primary" for a role, "replica2" / "client3" for a numbered node. */
static const char *node_phrase(const char *node, char buf[FAULTS_NAME_MAX])
{
    size_t len = strlen(node);
    bool numbered = len > 0 && node[len - 1] >= '0' && node[len - 1] <= '9';
    snprintf(buf, FAULTS_NAME_MAX, "%s%.*s", numbered ? "" : "the ", FAULTS_NAME_MAX - 5, node);
    return buf;
}

static const char *duration(int64_t us, char buf[DRILL_DURATION_TEXT_MAX])
{
    return drill_duration_format(us, buf);
}

/* ---- Topology ----------------------------------------------------------- */

static void explain_mirror(struct text *t, const struct drill_topology *topo)
{
    if (topo->components & DRILL_CLUSTER)
        text_add(t, "The leader's disk is mirrored: two copies, leader and mirror, written "
                    "synchronously; ");
    else if (topo->components & DRILL_OFFLINE)
        text_add(t, topo->locals > 0 ? "Each local's disk is mirrored (localK's mirror is "
                                       "mirrorK): two copies, written synchronously; "
                                     : "The local's disk is mirrored: two copies, local and "
                                       "mirror, written synchronously; ");
    else
        text_add(t, "Two copies, primary and mirror, written synchronously; ");
    if (topo->policy == MIRROR_STRICT) {
        text_add(t, "policy strict: a write is refused while either copy cannot write. ");
    } else {
        text_add(t, "policy degrade: while one copy cannot write, the shop goes on with the "
                    "other, records what its partner missed and resyncs it once healed. ");
    }
    if (topo->ack == MIRROR_ACK_BOTH) {
        text_add(t, "A write is acknowledged only when both copies committed it. ");
    } else {
        text_add(t, "ack=early (the naive mode): a write is acknowledged as soon as the "
                    "primary committed it and the mirror follows on a best-effort basis, so "
                    "a crash between the two commits loses acknowledged writes. ");
    }
    text_add(t, "Reads fall back to the mirror when the primary cannot read. ");
}

static void explain_async(struct text *t, const struct drill_topology *topo)
{
    char d[DRILL_DURATION_TEXT_MAX];
    text_add(t, "Asynchronous replication from the primary to the secondary: ");
    if (!topo->outbox_off) {
        text_add(t,
                 "each change is written to an outbox in the same transaction, then shipped "
                 "in order in batches of up to %d after a WAN delay of %s, and applied "
                 "idempotently. A failover to the secondary loses the writes still in "
                 "flight (the RPO window). ",
                 topo->async_batch, duration(topo->async_delay_us, d));
    } else {
        text_add(t, "outbox=off (the naive mode): the whole state is copied to the secondary "
                    "on a timer instead of shipping each change, so the copy can mix old and "
                    "new rows and a failover loses everything since the last copy. ");
    }
}

static void explain_offline(struct text *t, const struct drill_topology *topo)
{
    char d[DRILL_DURATION_TEXT_MAX];
    if (topo->locals == 0) {
        text_add(t, "Offline-first sync: one local node (local) takes writes locally");
    } else {
        text_add(t, "Offline-first sync: %d local nodes (local1..local%d) take writes locally",
                 topo->locals, topo->locals);
    }
    text_add(t,
             ", and a job every %s pushes their queued changes to central as idempotent "
             "upserts, retrying up to %d times before it marks a change FAILED. ",
             duration(topo->sync_interval_us, d), topo->retries);
    if (!topo->queue_separate) {
        text_add(t, "Each change and its queue entry are written in one transaction. ");
    } else {
        text_add(t, "queue=separate (the naive mode): a change and its queue entry are written "
                    "in two transactions, so a crash between them leaves a change that is "
                    "never synced. ");
    }
}

static void explain_cluster(struct text *t, const struct drill_topology *topo)
{
    char d[DRILL_DURATION_TEXT_MAX];
    text_add(t,
             "A cluster: the leader and %d replica%s (replica1..replica%d), found through "
             "the registry. The leader applies each write, then propagates it to every "
             "replica; a write that reaches a replica is forwarded to the leader. ",
             topo->replicas, topo->replicas == 1 ? "" : "s", topo->replicas);
    if (topo->propagate_before_commit) {
        text_add(t, "propagate=before-commit (the naive mode): changes leave from a pre-commit "
                    "hook, so replicas can apply writes the leader then rolls back. ");
    }
    text_add(t, "Reads rotate round-robin over the healthy replicas. ");
    if (topo->cache == DRILL_CACHE_ON) {
        text_add(t,
                 "Answers are cached for up to %s and invalidated by the writes that touch "
                 "them. ",
                 duration(topo->cache_ttl_us, d));
    } else if (topo->cache == DRILL_CACHE_NAIVE) {
        text_add(t, "cache=naive (the naive mode): cached answers are never invalidated by "
                    "writes, so clients can read stale data. ");
    }
}

/* A share in parts per million as a percentage: "20%", "12.5%". */
static const char *percent(int64_t ppm, char buf[32])
{
    int64_t whole = ppm / 10000, frac = ppm % 10000;
    int digits = 4;
    while (frac != 0 && frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    if (frac == 0) {
        snprintf(buf, 32, "%lld%%", (long long)whole);
    } else {
        snprintf(buf, 32, "%lld.%0*lld%%", (long long)whole, digits, (long long)frac);
    }
    return buf;
}

static void explain_stake(struct text *t, const struct drill_topology *topo)
{
    char d[DRILL_DURATION_TEXT_MAX], pct[32];
    text_add(t,
             "A stake ledger on node ledger, a database of its own: %d predictor%s "
             "(predictor1..predictor%d) each register a deposit of %lld micro-units. Every %s "
             "each predictor sends the ledger a prediction of a value that wanders at random, "
             "and the ledger closes the round in one transaction: the consensus is the "
             "stake-weighted mean, ",
             topo->predictors, topo->predictors == 1 ? "" : "s", topo->predictors,
             (long long)topo->stake_deposit, duration(topo->stake_round_us, d));
    text_add(t,
             "a predictor more than %lld away from it loses %s of its stake to the treasury, "
             "and one whose stake falls below %lld micro-units is excluded for good. Honest "
             "predictors stay within a quarter of the tolerance of the truth. ",
             (long long)topo->stake_tolerance, percent(topo->stake_slash_ppm, pct),
             (long long)topo->stake_min);
}

static void explain_topology(FILE *out, const struct drill *d)
{
    const struct drill_topology *topo = &d->topology;
    struct text t = {.len = 0};
    fprintf(out, "\nThe system:\n");
    if (topo->components & DRILL_SINGLE) {
        text_add(&t, "One database on node primary, with no copy: whatever its disk loses, the "
                     "shop loses. ");
    }
    if (topo->components & DRILL_MIRROR) {
        explain_mirror(&t, topo);
    }
    if (topo->components & (DRILL_SINGLE | DRILL_MIRROR)) {
        text_add(&t, topo->sync_normal
                         ? "sync=normal: commits are acknowledged before they reach the disk "
                           "(synchronous=NORMAL), so a power cut may lose the latest "
                           "acknowledged writes. "
                         : "Every commit is on disk before it is acknowledged "
                           "(synchronous=FULL). ");
    }
    wrap(out, INDENT, t.buf);
    struct {
        unsigned component;
        void (*fn)(struct text *t, const struct drill_topology *topo);
    } const parts[] = {
        {DRILL_ASYNC, explain_async},
        {DRILL_OFFLINE, explain_offline},
        {DRILL_CLUSTER, explain_cluster},
        {DRILL_STAKE, explain_stake},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (topo->components & parts[i].component) {
            t.len = 0;
            t.buf[0] = '\0';
            parts[i].fn(&t, topo);
            wrap(out, INDENT, t.buf);
        }
    }
    char a[DRILL_DURATION_TEXT_MAX], b[DRILL_DURATION_TEXT_MAX];
    t.len = 0;
    text_add(&t, "Every network message takes %s", duration(topo->latency_us, a));
    if (topo->jitter_us > 0) {
        text_add(&t, ", give or take up to %s", duration(topo->jitter_us, b));
    }
    text_add(&t, ".");
    wrap(out, INDENT, t.buf);
}

/* ---- The shop and its load ---------------------------------------------- */

/* How a student would say an operation. */
static const char *const op_phrases[DRILL_OP_COUNT] = {
    [DRILL_OP_BROWSE] = "browse",
    [DRILL_OP_SEARCH] = "search",
    [DRILL_OP_CART_ADD] = "add to cart",
    [DRILL_OP_CART_REMOVE] = "remove from cart",
    [DRILL_OP_CHECKOUT] = "checkout",
    [DRILL_OP_ORDER_STATUS] = "look at their orders",
    [DRILL_OP_ORDER_CANCEL] = "cancel an order",
    [DRILL_OP_USER_CREATE] = "sign up",
    [DRILL_OP_USER_UPDATE] = "update their profile",
};

static void explain_shop(FILE *out, const struct drill *d)
{
    struct text t = {.len = 0};
    char a[DRILL_DURATION_TEXT_MAX];
    fprintf(out, "\nThe shop:\n");
    text_add(&t,
             "The shop starts with %d product%s, %lld in stock each, priced from "
             "%lld.%02lld to %lld.%02lld, and %d user%s. ",
             d->products, d->products == 1 ? "" : "s", (long long)d->product_stock,
             (long long)(d->price_min_cents / 100), (long long)(d->price_min_cents % 100),
             (long long)(d->price_max_cents / 100), (long long)(d->price_max_cents % 100), d->users,
             d->users == 1 ? "" : "s");
    text_add(&t,
             "The run lasts %s of virtual time; its randomness comes from seed %llu "
             "(--seed overrides it).",
             duration(d->duration_us, a), (unsigned long long)d->seed);
    wrap(out, INDENT, t.buf);
}

static void explain_workload(FILE *out, const struct drill_workload *wl)
{
    struct text t = {.len = 0};
    char a[DRILL_DURATION_TEXT_MAX];
    unsigned total = 0;
    for (size_t k = 0; k < DRILL_OP_COUNT; k++) {
        total += wl->mix[k];
    }
    text_add(&t,
             "Workload %s (client%d..client%d): %d client%s make%s %g operation%s per "
             "second until %s:",
             wl->name, wl->first_client, wl->first_client + wl->clients - 1, wl->clients,
             wl->clients == 1 ? "" : "s", wl->clients == 1 ? "s" : "", wl->rate_per_s,
             wl->rate_per_s == 1 ? "" : "s", duration(wl->until_us, a));
    const char *sep = " ";
    for (size_t k = 0; k < DRILL_OP_COUNT && total > 0; k++) {
        if (wl->mix[k] > 0) {
            text_add(&t, "%s%.0f%% %s", sep, 100.0 * wl->mix[k] / total, op_phrases[k]);
            sep = ", ";
        }
    }
    if (total != 100 && total > 0) {
        /* the weights are relative: say so rather than normalise in silence */
        text_add(&t, " (the mix's weights add up to %u, not 100: each is taken as its share of %u)",
                 total, total);
    }
    text_add(&t, ".");
    wrap(out, INDENT, t.buf);
}

static void explain_load(FILE *out, const struct drill *d)
{
    fprintf(out, "\nThe load:\n");
    for (size_t i = 0; i < d->workload_count; i++) {
        explain_workload(out, &d->workloads[i]);
    }
    if (d->workload_count == 0 && d->clients > 0) {
        struct text t = {.len = 0};
        text_add(&t,
                 "No background workload: only the `op` lines of the timeline act, as "
                 "client1..client%d.",
                 d->clients);
        wrap(out, INDENT, t.buf);
    } else if (d->workload_count == 0) {
        wrap(out, INDENT, "No client acts in this drill.");
    }
}

/* ---- Timeline ----------------------------------------------------------- */

/* The n-th '/'-separated component of name (n from 0) into buf. */
static const char *component(const char *name, int n, char buf[FAULTS_NAME_MAX])
{
    const char *s = name;
    for (int i = 0; i < n && s != NULL; i++) {
        s = strchr(s, '/');
        s = s != NULL ? s + 1 : NULL;
    }
    size_t len = s != NULL ? strcspn(s, "/") : 0;
    snprintf(buf, FAULTS_NAME_MAX, "%.*s", (int)len, s != NULL ? s : "");
    return buf;
}

static const char *errno_text(const struct drill_event *ev, const struct faults_point *fp,
                              char buf[32])
{
    int err = ev->err_given ? ev->spec.err : fp->errno_default;
    const char *name = faults_errno_name(err);
    if (name != NULL) {
        snprintf(buf, 32, "%s", name);
    } else {
        snprintf(buf, 32, "errno %d", err);
    }
    return buf;
}

static void fault_disk(struct text *t, const struct drill_event *ev, const struct faults_point *fp)
{
    char node[FAULTS_NAME_MAX], who[FAULTS_NAME_MAX], kind[FAULTS_NAME_MAX], err[32];
    char delay[DRILL_DURATION_TEXT_MAX];
    node_phrase(component(ev->name, 1, node), who);
    component(ev->name, 2, kind);
    errno_text(ev, fp, err);
    if (strcmp(kind, "full") == 0) {
        text_add(t, "%s's disk is full: its writes fail with %s", who, err);
    } else if (strcmp(kind, "slow") == 0) {
        int64_t us = ev->spec.delay_us > 0 ? ev->spec.delay_us : fp->delay_us_default;
        text_add(t, "%s's disk slows down: every read, write and sync takes %s longer", who,
                 duration(us, delay));
    } else if (strcmp(kind, "fsync") == 0) {
        text_add(t,
                 "%s's disk starts failing fsyncs with %s (what was written is not made "
                 "durable)",
                 who, err);
    } else {
        text_add(t, "%s's disk starts failing %ss with %s", who, kind, err);
    }
}

static void fault_net(struct text *t, const struct drill_event *ev, const struct faults_point *fp)
{
    char from[FAULTS_NAME_MAX], to[FAULTS_NAME_MAX], kind[FAULTS_NAME_MAX];
    char delay[DRILL_DURATION_TEXT_MAX];
    component(ev->name, 1, from);
    component(ev->name, 2, to);
    component(ev->name, 3, kind);
    text_add(t, "messages from %s to %s ", from, to);
    if (strcmp(kind, "drop") == 0) {
        text_add(t, "are lost");
    } else if (strcmp(kind, "delay") == 0) {
        int64_t us = ev->spec.delay_us > 0 ? ev->spec.delay_us : fp->delay_us_default;
        text_add(t, "arrive %s late", duration(us, delay));
    } else if (strcmp(kind, "duplicate") == 0) {
        text_add(t, "are delivered twice");
    } else {
        text_add(t, "can be overtaken by the next one on the link");
    }
}

static void fault_crash(struct text *t, const struct drill_event *ev, const struct faults_point *fp)
{
    char node[FAULTS_NAME_MAX], who[FAULTS_NAME_MAX], point[FAULTS_NAME_MAX];
    node_phrase(component(ev->name, 1, node), who);
    component(ev->name, 2, point);
    /* The catalog's sentence, as a clause: lower-case start, no full stop. */
    char what[256];
    snprintf(what, sizeof what, "%s", fp->description);
    size_t len = strlen(what);
    if (len > 0 && what[len - 1] == '.') {
        what[len - 1] = '\0';
    }
    if (what[0] >= 'A' && what[0] <= 'Z') {
        what[0] = (char)(what[0] - 'A' + 'a');
    }
    text_add(t, "%s is set to die at code point %s (%s)", who, point, what);
}

/* How often, how many times, for how long. */
static void fault_qualifiers(struct text *t, const struct drill_event *ev)
{
    char d[DRILL_DURATION_TEXT_MAX];
    if (ev->spec.p > 0 && ev->spec.p < 1) {
        if (ev->spec.p == 0.5) {
            text_add(t, ", half the time (p=0.5)");
        } else {
            text_add(t, ", %g%% of the time (p=%g)", ev->spec.p * 100, ev->spec.p);
        }
    }
    if (ev->spec.after > 0) {
        text_add(t, ", after letting the first %llu call%s through",
                 (unsigned long long)ev->spec.after, ev->spec.after == 1 ? "" : "s");
    }
    if (ev->spec.count == 1) {
        text_add(t, ", once only");
    } else if (ev->spec.count > 1) {
        text_add(t, ", at most %llu times", (unsigned long long)ev->spec.count);
    }
    if (ev->for_us > 0) {
        text_add(t, ", for %s", duration(ev->for_us, d));
    } else if (ev->spec.count != 1) {
        text_add(t, ", until healed");
    }
}

static void fault_stake(struct text *t, const struct drill_event *ev)
{
    char node[FAULTS_NAME_MAX];
    text_add(t,
             "%s starts lying: each of its predictions lands more than twice the "
             "tolerance away from the truth, so the ledger should slash it every round",
             component(ev->name, 1, node));
}

static void explain_fault(struct text *t, const struct drill_event *ev)
{
    const struct faults_point *fp = faults_lookup(ev->name);
    assert(fp != NULL); /* the parser checked the name */
    if (strcmp(ev->name, "*") == 0) {
        text_add(t, "every fault point of the catalog starts firing");
    } else if (strchr(ev->name, '*') != NULL) {
        text_add(t, "every fault point whose name starts with \"%.*s\" starts firing",
                 (int)(strlen(ev->name) - 1), ev->name);
    } else if (fp->family == FAULTS_FAMILY_DISK) {
        fault_disk(t, ev, fp);
    } else if (fp->family == FAULTS_FAMILY_NET) {
        fault_net(t, ev, fp);
    } else if (fp->family == FAULTS_FAMILY_CRASH) {
        fault_crash(t, ev, fp);
    } else if (fp->family == FAULTS_FAMILY_STAKE) {
        fault_stake(t, ev);
    } else {
        text_add(t, "fault point %s starts firing", ev->name);
    }
    fault_qualifiers(t, ev);
}

static void explain_partition(struct text *t, const struct drill_event *ev)
{
    const char *names[2][DRILL_SIDE_MAX];
    char sides[2][256];
    for (int s = 0; s < 2; s++) {
        size_t len = 0;
        sides[s][0] = '\0';
        for (int i = 0; i < ev->side_count[s]; i++) {
            names[s][i] = ev->side[s][i];
            const char *sep = i == 0 ? "" : i + 1 == ev->side_count[s] ? " and " : ", ";
            int n = snprintf(sides[s] + len, sizeof sides[s] - len, "%s%s", sep, names[s][i]);
            len += n > 0 && (size_t)n < sizeof sides[s] - len ? (size_t)n : 0;
        }
    }
    if (ev->side_count[0] == 1 && ev->side_count[1] == 1) {
        text_add(t, "the network is cut between %s and %s", sides[0], sides[1]);
    } else {
        text_add(t, "the network splits in two, %s on one side and %s on the other", sides[0],
                 sides[1]);
    }
    text_add(t, ": no message crosses until `heal partition`");
}

static void explain_op(struct text *t, const struct drill_event *ev)
{
    char product[48] = "a product";
    if (ev->product > 0) {
        snprintf(product, sizeof product, "product %lld", (long long)ev->product);
    }
    text_add(t, "client%d ", ev->client);
    switch (ev->op) {
    case DRILL_OP_BROWSE:
        text_add(t, "browses the products%s%s", ev->product > 0 ? " and looks at " : "",
                 ev->product > 0 ? product : "");
        break;
    case DRILL_OP_SEARCH:
        text_add(t, "searches the products");
        break;
    case DRILL_OP_CART_ADD:
        if (ev->qty > 0) {
            text_add(t, "adds %lld of %s to its cart", (long long)ev->qty, product);
        } else {
            text_add(t, "adds %s to its cart", product);
        }
        break;
    case DRILL_OP_CART_REMOVE:
        text_add(t, "removes %s from its cart", product);
        break;
    case DRILL_OP_CHECKOUT:
        text_add(t, "checks out its cart");
        break;
    case DRILL_OP_ORDER_STATUS:
        text_add(t, "looks at its orders");
        break;
    case DRILL_OP_ORDER_CANCEL:
        text_add(t, "cancels one of its orders");
        break;
    case DRILL_OP_USER_CREATE:
        text_add(t, "signs up as a new user");
        break;
    case DRILL_OP_USER_UPDATE:
        text_add(t, "updates its profile");
        break;
    case DRILL_OP_COUNT:
        assert(!"explain_op: not an operation");
        break;
    }
}

static void explain_heal(struct text *t, const struct drill_event *ev)
{
    if (ev->heal == DRILL_HEAL_PARTITION) {
        text_add(t, "the network partition heals: messages cross again");
    } else if (ev->heal == DRILL_HEAL_ALL) {
        text_add(t, "every fault and partition heals");
    } else {
        text_add(t, "the fault %s is healed: the point stops firing", ev->name);
    }
}

/* The node actions: crash, restart, offline, online, failover. */
static void explain_node(struct text *t, const struct drill_event *ev)
{
    char who[FAULTS_NAME_MAX];
    node_phrase(ev->name, who);
    switch (ev->action) {
    case DRILL_CRASH:
        if (ev->process) {
            text_add(t,
                     "%s's process dies; the operating system keeps the writes it had not "
                     "synced yet",
                     who);
        } else {
            text_add(t,
                     "%s loses power: the writes it had not synced yet are dropped, kept or "
                     "torn, as in a real power cut",
                     who);
        }
        break;
    case DRILL_RESTART:
        text_add(t, "%s restarts and recovers from what is on its disk", who);
        break;
    case DRILL_GO_OFFLINE:
        text_add(t,
                 "%s goes offline: its sync job stops pushing changes to central, while it "
                 "keeps taking writes",
                 who);
        break;
    case DRILL_GO_ONLINE:
        text_add(t, "%s comes back online and its sync job resumes", who);
        break;
    case DRILL_FAILOVER:
        text_add(t, "%s is promoted and takes over the writes (failover)", who);
        break;
    default:
        assert(!"explain_node: not a node action");
        break;
    }
}

static void explain_event(FILE *out, const struct drill_event *ev)
{
    struct text t = {.len = 0};
    char at[DRILL_DURATION_TEXT_MAX], within[DRILL_DURATION_TEXT_MAX];
    text_add(&t, "At %s, ", duration(ev->at_us, at));
    switch (ev->action) {
    case DRILL_FAULT:
        explain_fault(&t, ev);
        break;
    case DRILL_HEAL:
        explain_heal(&t, ev);
        break;
    case DRILL_PARTITION:
        explain_partition(&t, ev);
        break;
    case DRILL_OP:
        explain_op(&t, ev);
        break;
    case DRILL_CHECKPOINT:
        text_add(&t, "the invariants are checked (a checkpoint)");
        break;
    case DRILL_DRAIN:
        text_add(&t,
                 "the workload stops, every fault heals and every dead node restarts; "
                 "then every queue must be empty within %s",
                 duration(ev->within_us, within));
        break;
    default:
        explain_node(&t, ev);
        break;
    }
    text_add(&t, ".");
    wrap(out, INDENT, t.buf);
}

static void explain_timeline(FILE *out, const struct drill *d)
{
    fprintf(out, "\nWhat happens:\n");
    if (d->event_count == 0) {
        wrap(out, INDENT,
             "Nothing strikes: the timeline is empty, and the invariants are "
             "checked at the end.");
    }
    for (size_t i = 0; i < d->event_count; i++) {
        explain_event(out, &d->events[i]);
    }
}

static void explain_expects(FILE *out, const struct drill *d)
{
    fprintf(out, "\nWhat must be true:\n");
    if (d->expect_count == 0) {
        wrap(out, INDENT, "No expectation: this drill checks nothing, so it always passes.");
    }
    for (size_t i = 0; i < d->expect_count; i++) {
        const struct drill_expect *e = &d->expects[i];
        const struct invariant_info *inv = invariant_lookup(e->invariant);
        assert(inv != NULL); /* the parser checked the name */
        struct text t = {.len = 0};
        text_add(&t, "%s", inv->name);
        if (e->max >= 0) {
            text_add(&t, " (max=%lld)", (long long)e->max);
        }
        if (e->violated) {
            text_add(&t,
                     " must be violated: this drill demonstrates a failure. It would hold "
                     "when %s.",
                     inv->summary);
        } else {
            text_add(&t, " must hold: %s.", inv->summary);
        }
        wrap(out, INDENT, t.buf);
    }
}

void drill_explain(const struct drill *d, FILE *out)
{
    assert(d != NULL && out != NULL);
    fprintf(out, "%s\n", d->title);
    fprintf(out, "(drill %s, %s)\n", d->name, d->file);
    for (size_t i = 0; i < d->about_count; i++) {
        fputc('\n', out);
        wrap(out, INDENT, d->about[i]);
    }
    explain_topology(out, d);
    explain_shop(out, d);
    explain_load(out, d);
    explain_timeline(out, d);
    explain_expects(out, d);
}
