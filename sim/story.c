/*
 * story.c — what the report needs to explain a run, beyond the trace: each
 * node's state over time for its lane (a mirror half in sync, leading or
 * degraded, a replica's lag, a local offline, a node down), the violation
 * marked on the operations and the copies it concerns, the causal story of a
 * violation (the chain of events that led to it, in plain sentences with
 * times), the invariant's paragraph, and why operations did not succeed.
 *
 * It watches and never acts: it reads node, fault and history state and adds
 * timeline marks, so the trace and every verdict are the same with or without
 * it. Part of libsim; the topology modules tell their nodes' states through
 * world_topo.node_state.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

#define STORY_LAG_MARKS_MAX  400   /* lag marks per node over the drill's duration, about */
#define STORY_CANDIDATES_MAX 256   /* events a story chooses from (the latest ones) */
#define STORY_CONCERNED_MAX  4     /* operations and copies a violation names */
#define STORY_SHORT          5     /* a story this short may tell what happened elsewhere */
#define STORY_LAG_SHOWN_US   50000 /* a lag shorter than this is a write in flight, not news */

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

/* ---- node states ------------------------------------------------------- */

/* A mirror half's state from the shop's mirror status; COUNT: nothing to say. */
static enum report_node_state mirror_half(struct sim *s, int n, int64_t *value, char *label,
                                          size_t len)
{
    const struct shop_config *cfg = world_cfg(s);
    struct mirror_status st;
    if (cfg->topology != SHOP_MIRROR || world_shop(s) == NULL ||
        shop_mirror_status(world_shop(s), &st) != 0)
        return REPORT_STATE_COUNT;
    const char *name = s->nodes[n].name;
    bool is_half = n == s->main_node || strcmp(name, cfg->mirror.node) == 0;
    if (!is_half)
        return REPORT_STATE_COUNT;
    bool lead = st.lead != NULL && strcmp(st.lead, name) == 0;
    *value = st.changes_behind;
    if (st.state == MIRROR_IN_SYNC) {
        if (label != NULL)
            snprintf(label, len, "in sync: both copies hold every write");
        return REPORT_STATE_UP;
    }
    if (st.state == MIRROR_FAILED) {
        if (label != NULL)
            snprintf(label, len, "the mirror refuses writes: %.120s", st.last_error);
        return REPORT_STATE_FAILED;
    }
    if (lead) {
        if (label != NULL)
            snprintf(label, len, "leads alone: %s is %lld change(s) behind", st.behind,
                     (long long)st.changes_behind);
        return REPORT_STATE_LEADING;
    }
    if (label != NULL)
        snprintf(label, len, "degraded: out of the mirror, %lld change(s) behind (%.100s)",
                 (long long)st.changes_behind, st.last_error);
    return REPORT_STATE_DEGRADED;
}

static enum report_node_state node_state(struct sim *s, int n, int64_t *value, char *label,
                                         size_t len)
{
    const struct world_node *node = &s->nodes[n];
    *value = 0;
    if (!node->up) {
        if (label != NULL)
            snprintf(label, len, "down: crashed, not restarted yet");
        return REPORT_STATE_DOWN;
    }
    if (node->holds_db && node->shop == NULL) {
        if (label != NULL)
            snprintf(label, len, "down: its shop could not open");
        return REPORT_STATE_DOWN;
    }
    enum report_node_state st = REPORT_STATE_COUNT;
    if (s->topo != NULL && s->topo->node_state != NULL)
        st = s->topo->node_state(s, n, value, label, len);
    else
        st = mirror_half(s, n, value, label, len);
    if (st != REPORT_STATE_COUNT)
        return st;
    if (label != NULL)
        snprintf(label, len, "up");
    return REPORT_STATE_UP;
}

/* Whether node n's new state is news: a lag counts once it has lasted (from when it began). */
static bool lag_is_news(struct sim *s, size_t n, enum report_node_state st, int64_t *at_us)
{
    struct world_story *w = &s->story;
    *at_us = s->now_us;
    if (st != REPORT_STATE_BEHIND) {
        w->node[n].behind_since_us = -1;
        return true;
    }
    if (w->node[n].state == REPORT_STATE_BEHIND)
        return true;
    if (w->node[n].behind_since_us < 0)
        w->node[n].behind_since_us = s->now_us;
    int64_t shown = w->lag_every_us > STORY_LAG_SHOWN_US ? w->lag_every_us : STORY_LAG_SHOWN_US;
    *at_us = w->node[n].behind_since_us;
    return s->now_us - w->node[n].behind_since_us >= shown;
}

static void observe_nodes(struct sim *s)
{
    struct world_story *w = &s->story;
    for (size_t n = 0; n < s->node_count; n++) {
        int64_t value = 0, at_us = s->now_us;
        enum report_node_state st = node_state(s, (int)n, &value, NULL, 0);
        if ((s->drill->topology.components & (DRILL_ASYNC | DRILL_MIRROR | DRILL_CLUSTER)) != 0 &&
            st != REPORT_STATE_DOWN && value > w->lag_max)
            w->lag_max = value;
        bool changed = st != w->node[n].state;
        bool lag_moved = !changed && value != w->node[n].value &&
                         s->now_us - w->node[n].marked_us >= w->lag_every_us;
        if ((!changed && !lag_moved) || !lag_is_news(s, n, st, &at_us))
            continue;
        char label[160];
        node_state(s, (int)n, &value, label, sizeof(label));
        size_t before = s->mark_count;
        world_mark(s, s->nodes[n].name, REPORT_STATE, "%s", label);
        if (s->mark_count > before) {
            s->marks[before].state = st;
            /* a lag shows from when it began; the first state from the start */
            s->marks[before].at_us = w->node[n].state == REPORT_STATE_COUNT ? 0 : at_us;
        }
        w->node[n].state = st;
        w->node[n].value = value;
        w->node[n].marked_us = s->now_us;
    }
}

static void observe_faults(struct sim *s)
{
    for (size_t i = 0; i < s->fault_count; i++) {
        uint64_t calls = 0, fired = 0;
        if (s->story.fault_fired_us[i] >= 0 || !s->faults[i].armed ||
            faults_stats(s->faults[i].name, &calls, &fired) != 0 || fired == 0)
            continue;
        s->story.fault_fired_us[i] = s->now_us;
    }
}

void story_observe(struct sim *s)
{
    struct world_story *w = &s->story;
    if (!w->started) {
        w->started = true;
        int64_t every = s->drill->duration_us / STORY_LAG_MARKS_MAX;
        w->lag_every_us = every > 1000 ? every : 1000;
        unsigned copies = DRILL_ASYNC | DRILL_MIRROR | DRILL_CLUSTER;
        w->lag_max = (s->drill->topology.components & copies) != 0 ? 0 : -1;
        for (size_t i = 0; i < WORLD_FAULTS_MAX; i++)
            w->fault_fired_us[i] = -1;
        for (size_t n = 0; n < DRILL_NODES_MAX; n++) {
            w->node[n].state = REPORT_STATE_COUNT;
            w->node[n].behind_since_us = -1;
        }
    }
    observe_faults(s);
    observe_nodes(s);
}

/* ---- violations: what they concern ---------------------------------------- */

struct concerned {
    size_t op_count, node_count;
    const struct sim_op *ops[STORY_CONCERNED_MAX];
    int nodes[STORY_CONCERNED_MAX];
};

static bool is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool mentions(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(text, word); n > 0 && p != NULL; p = strstr(p + 1, word)) {
        bool start = p == text || !is_word_char(p[-1]);
        if (start && !is_word_char(p[n]))
            return true;
    }
    return false;
}

/* The operations ("#284") and nodes (by name) a checker's explanation names. */
static void find_concerned(struct sim *s, const char *why, struct concerned *c)
{
    memset(c, 0, sizeof(*c));
    for (const char *p = strchr(why, '#'); p != NULL; p = strchr(p + 1, '#')) {
        char *end = NULL;
        unsigned long id = strtoul(p + 1, &end, 10);
        if (end == p + 1 || id == 0 || id > s->op_count || c->op_count == STORY_CONCERNED_MAX)
            continue;
        bool seen = false;
        for (size_t k = 0; k < c->op_count; k++)
            seen = seen || c->ops[k]->id == id;
        if (!seen)
            c->ops[c->op_count++] = &s->ops[id - 1];
    }
    for (size_t n = 0; n < s->node_count && c->node_count < STORY_CONCERNED_MAX; n++)
        if (mentions(why, s->nodes[n].name))
            c->nodes[c->node_count++] = (int)n;
}

/* A mark at an earlier time (kept in order by story_fill's sort). */
static void mark_at(struct sim *s, int64_t at_us, const char *lane, const char *label)
{
    size_t before = s->mark_count;
    world_mark(s, lane, REPORT_VIOLATION, "%s", label);
    if (s->mark_count > before)
        s->marks[before].at_us = at_us;
}

static void mark_concerned(struct sim *s, const char *invariant, const char *why,
                           const struct concerned *c)
{
    char label[160];
    for (size_t k = 0; k < c->op_count; k++) {
        const struct sim_op *op = c->ops[k];
        char lane[32];
        snprintf(lane, sizeof(lane), "client%d", op->client);
        snprintf(label, sizeof(label), "%s: op #%u %s is the one this violation concerns",
                 invariant, op->id, drill_op_name(op->kind));
        mark_at(s, op->complete_us >= 0 ? op->complete_us : op->invoke_us, lane, label);
    }
    snprintf(label, sizeof(label), "%s: %s", invariant, why);
    if (c->node_count == 0)
        world_mark(s, s->nodes[0].name, REPORT_VIOLATION, "%s", label);
    for (size_t k = 0; k < c->node_count; k++)
        world_mark(s, s->nodes[c->nodes[k]].name, REPORT_VIOLATION, "%s", label);
}

/* ---- the causal story ------------------------------------------------------ */

struct candidate {
    int64_t at_us;
    int priority; /* 4: always told; 3: a fault that struck; 2: on a copy concerned;
                   * 1: elsewhere */
    bool last;    /* the violation: after everything at its time */
    char lane[64];
    char text[256];
};

struct story_build {
    struct sim *s;
    const struct concerned *c;
    size_t count, next; /* a ring: the latest STORY_CANDIDATES_MAX events */
    struct candidate items[STORY_CANDIDATES_MAX];
};

static bool concerns_lane(const struct story_build *b, const char *lane)
{
    if (b->c->node_count == 0 || strcmp(lane, "-") == 0 || lane[0] == '\0')
        return true;
    for (size_t k = 0; k < b->c->node_count; k++)
        if (strcmp(b->s->nodes[b->c->nodes[k]].name, lane) == 0)
            return true;
    return false;
}

static struct candidate *add(struct story_build *b, int64_t at_us, const char *lane, int priority)
{
    struct candidate *x = &b->items[b->next];
    b->next = (b->next + 1) % STORY_CANDIDATES_MAX;
    b->count += b->count < STORY_CANDIDATES_MAX;
    memset(x, 0, sizeof(*x));
    x->at_us = at_us;
    x->priority = priority;
    snprintf(x->lane, sizeof(x->lane), "%s", lane);
    return x;
}

/* Copies src into out replacing each `from` by `to` (bounded by len). */
static void replace_all(char *out, size_t len, const char *src, const char *from, const char *to)
{
    size_t used = 0, from_len = strlen(from);
    out[0] = '\0';
    while (*src != '\0' && used + 1 < len) {
        const char *piece = strncmp(src, from, from_len) == 0 ? to : NULL;
        int w = piece != NULL ? snprintf(out + used, len - used, "%s", piece)
                              : snprintf(out + used, len - used, "%c", *src);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
        src += piece != NULL ? from_len : 1;
    }
}

/* The fault's catalog sentence about this point: "a write to mirror's database ... fails". */
static void fault_effect(const struct world_fault *f, char *out, size_t len)
{
    const struct faults_point *p = faults_lookup(f->name);
    const char *d = p != NULL && p->description != NULL ? p->description : "";
    char parts[2][FAULTS_NODE_MAX] = {"", ""}, a[256], b[256], owner[FAULTS_NODE_MAX + 3];
    sscanf(f->name, "%*[^/]/%31[^/]/%31[^/]", parts[0], parts[1]);
    snprintf(owner, sizeof(owner), "%s's", parts[0]);
    replace_all(a, sizeof(a), d, "<from>", parts[0]);
    replace_all(b, sizeof(b), a, "<to>", parts[1]);
    replace_all(a, sizeof(a), b, "the node's", owner);
    replace_all(b, sizeof(b), a, "<node>", parts[0]);
    replace_all(a, sizeof(a), b, "`", "");
    if (a[0] >= 'A' && a[0] <= 'Z')
        a[0] = (char)(a[0] - 'A' + 'a');
    snprintf(out, len, "%s", a[0] != '\0' ? a : f->name);
}

/* Whether fault f was armed while a concerned operation was served (or sent). */
static bool struck_concerned_op(const struct story_build *b, const struct world_fault *f)
{
    for (size_t k = 0; k < b->c->op_count; k++) {
        const struct sim_op *op = b->c->ops[k];
        /* live, served_us may be in the server's clock: the run's is the reply's */
        int64_t at = b->s->live             ? op->invoke_us
                     : op->served_us >= 0 ? op->served_us
                                          : op->invoke_us;
        if (at >= f->armed_at_us && (f->armed || at <= f->healed_at_us))
            return true;
    }
    return false;
}

/*
 * A fault's steps: armed (with its effect), first struck, healed. Told first
 * when it was active while a concerned operation was served or, when the
 * violation names no operation, when it struck a concerned copy.
 */
static void add_faults(struct story_build *b)
{
    struct sim *s = b->s;
    for (size_t i = 0; i < s->fault_count; i++) {
        const struct world_fault *f = &s->faults[i];
        const char *lane = f->lane[0] != '\0' ? f->lane : "-";
        int64_t fired_us = s->story.fault_fired_us[i];
        if (f->armed_at_us > s->now_us)
            continue;
        int priority = concerns_lane(b, lane) ? 2 : 1;
        if (b->c->op_count > 0)
            priority = struck_concerned_op(b, f) ? 3 : 1;
        else if (fired_us >= 0 && priority == 2)
            priority = 3;
        char effect[200];
        fault_effect(f, effect, sizeof(effect));
        struct candidate *x = add(b, f->armed_at_us, lane, priority);
        snprintf(x->text, sizeof(x->text), "fault %.64s armed on %.31s: %.140s", f->name, lane,
                 effect);
        if (fired_us >= 0 && fired_us <= s->now_us) {
            x = add(b, fired_us, lane, priority);
            snprintf(x->text, sizeof(x->text), "fault %s struck for the first time", f->name);
        }
        if (!f->armed && f->healed_at_us >= 0 && f->healed_at_us <= s->now_us) {
            x = add(b, f->healed_at_us, lane, priority);
            snprintf(x->text, sizeof(x->text), "fault %s healed, after striking %llu time(s)",
                     f->name, (unsigned long long)f->fired);
        }
    }
}

/* A crash, a state change, a partition: on a concerned copy (after the operation it concerns). */
static int mark_priority(const struct story_build *b, const struct report_event *e,
                         const char *lane)
{
    if (!concerns_lane(b, lane))
        return 1;
    for (size_t k = 0; k < b->c->op_count; k++)
        if (e->at_us < b->c->ops[k]->invoke_us)
            return 1;
    return 2;
}

static bool is_lag(enum report_node_state st, enum report_node_state before)
{
    return st == REPORT_STATE_BEHIND || (st == REPORT_STATE_UP && before == REPORT_STATE_BEHIND);
}

static void add_mark(struct story_build *b, const struct report_event *e)
{
    /* a partition of the network is everyone's, not its first side's */
    bool net = (e->mark == REPORT_PARTITION && strncmp(e->label, "partition ", 10) == 0) ||
               (e->mark == REPORT_HEAL && strcmp(e->label, "partition healed") == 0);
    const char *lane = net ? "-" : e->lane;
    struct candidate *x = add(b, e->at_us, lane, mark_priority(b, e, lane));
    if (e->mark == REPORT_STATE)
        snprintf(x->text, sizeof(x->text), "%s %s", e->lane, e->label);
    else
        snprintf(x->text, sizeof(x->text), "%s", e->label);
}

/*
 * Crashes, restarts, partitions, failovers and the nodes' state changes so
 * far. A lag that only moved is no news, and of a replica's lag coming and
 * going only the latest change is told.
 */
static void add_marks(struct story_build *b)
{
    struct sim *s = b->s;
    enum report_node_state last[DRILL_NODES_MAX];
    const struct report_event *last_lag[DRILL_NODES_MAX] = {NULL};
    for (size_t n = 0; n < DRILL_NODES_MAX; n++)
        last[n] = REPORT_STATE_UP;
    for (size_t i = 0; i < s->mark_count; i++) {
        const struct report_event *e = &s->marks[i];
        int n = world_node_index(s, e->lane);
        bool wanted = e->mark == REPORT_CRASH || e->mark == REPORT_RESTART ||
                      e->mark == REPORT_PARTITION ||
                      (e->mark == REPORT_HEAL && strncmp(e->label, "heal ", 5) != 0) ||
                      (e->mark == REPORT_CHECKPOINT && strchr(e->label, ':') != NULL);
        if (e->at_us > s->now_us)
            continue;
        if (e->mark == REPORT_STATE && n >= 0) {
            enum report_node_state before = last[n];
            last[n] = e->state;
            if (e->state == before || e->state == REPORT_STATE_DOWN ||
                (e->state == REPORT_STATE_UP && before == REPORT_STATE_DOWN))
                continue;
            if (is_lag(e->state, before)) {
                last_lag[n] = e;
                continue;
            }
            wanted = true;
        }
        if (wanted)
            add_mark(b, e);
    }
    for (size_t n = 0; n < s->node_count; n++)
        if (last_lag[n] != NULL)
            add_mark(b, last_lag[n]);
}

static void op_sentence(struct sim *s, const struct sim_op *op, char *out, size_t len)
{
    static const char *const heard[] = {"was still waiting for a reply", "was acknowledged",
                                        "failed", "ended with an unknown outcome", "was rejected"};
    static const char unknown_prefix[] = "outcome unknown: ";
    char served[64] = "";
    if (op->node >= 0 && op->served_us >= 0 && s->live)
        /* live, served_us may be a row's own time in the server's clock (an order's
         * created_at): the reply's time is the run's */
        snprintf(served, sizeof(served), ", answered by %s at %.3fs,", s->nodes[op->node].name,
                 secs(op->complete_us));
    else if (op->node >= 0 && op->served_us >= 0)
        snprintf(served, sizeof(served), ", served by %s at %.3fs,", s->nodes[op->node].name,
                 secs(op->served_us));
    int w = snprintf(out, len, "client%d's %s (op #%u)%s %s", op->client, drill_op_name(op->kind),
                     op->id, served, heard[op->outcome]);
    if (w < 0 || (size_t)w >= len)
        return;
    const char *why = op->err != 0 ? platform_strerror(op->err) : "";
    if (strncmp(why, unknown_prefix, sizeof(unknown_prefix) - 1) == 0)
        why += sizeof(unknown_prefix) - 1;
    if (op->outcome == SIM_OK && op->kind == DRILL_OP_CHECKOUT)
        snprintf(out + w, len - (size_t)w, ": order %lld", (long long)op->order_id);
    else if (op->outcome == SIM_OK && op->kind == DRILL_OP_USER_CREATE)
        snprintf(out + w, len - (size_t)w, ": user %lld", (long long)op->user_id);
    else if (why[0] != '\0')
        snprintf(out + w, len - (size_t)w, ": %s", why);
    else if (op->outcome == SIM_UNKNOWN)
        snprintf(out + w, len - (size_t)w, ": no reply before the client's timeout");
}

static int cmp_time(const void *x, const void *y)
{
    const struct candidate *a = x, *b = y;
    if (a->at_us != b->at_us)
        return a->at_us < b->at_us ? -1 : 1;
    if (a->last != b->last)
        return a->last ? 1 : -1;
    return a->priority > b->priority ? -1 : a->priority < b->priority;
}

/* Keeps the REPORT_STORY_MAX most telling candidates, in time order, into v. */
static void choose(struct story_build *b, struct world_verdict *v)
{
    struct candidate *all = b->items;
    qsort(all, b->count, sizeof(*all), cmp_time);
    bool keep[STORY_CANDIDATES_MAX] = {false};
    size_t kept = 0;
    for (int priority = 4; priority >= 1; priority--) {
        /* the latest first: what happened just before the violation explains it best; what
         * happened elsewhere only when little else is known */
        size_t max = priority > 1 ? REPORT_STORY_MAX : STORY_SHORT;
        for (size_t i = b->count; i-- > 0 && kept < max;) {
            if (!keep[i] && all[i].priority == priority) {
                keep[i] = true;
                kept++;
            }
        }
    }
    v->story_count = 0;
    for (size_t i = 0; i < b->count; i++) {
        if (!keep[i])
            continue;
        struct report_story_step *step = &v->story[v->story_count++];
        step->at_us = all[i].at_us;
        snprintf(step->lane, sizeof(step->lane), "%s", all[i].lane);
        snprintf(step->text, sizeof(step->text), "%s", all[i].text);
    }
}

static void tell(struct sim *s, size_t i, const char *why, const struct concerned *c)
{
    struct story_build *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return; /* the story only explains; the verdict stands without it */
    b->s = s;
    b->c = c;
    add_marks(b);
    add_faults(b);
    for (size_t k = 0; k < c->op_count; k++) {
        const struct sim_op *op = c->ops[k];
        char lane[32];
        snprintf(lane, sizeof(lane), "client%d", op->client);
        struct candidate *x =
            add(b, op->complete_us >= 0 ? op->complete_us : op->invoke_us, lane, 4);
        op_sentence(s, op, x->text, sizeof(x->text));
    }
    const char *lane = c->node_count > 0 ? s->nodes[c->nodes[0]].name : s->nodes[0].name;
    struct candidate *x = add(b, s->now_us, lane, 4);
    x->last = true;
    snprintf(x->text, sizeof(x->text), "%s found violated: %s", s->drill->expects[i].invariant,
             why);
    choose(b, &s->verdicts[i]);
    free(b);
}

void story_violation(struct sim *s, size_t i, const char *why)
{
    assert(i < s->drill->expect_count);
    struct concerned c;
    find_concerned(s, why, &c);
    mark_concerned(s, s->drill->expects[i].invariant, why, &c);
    tell(s, i, why, &c);
}

/* ---- into the report --------------------------------------------------------- */

static const char *reason_of(const struct sim_op *op)
{
    if (op->outcome == SIM_PENDING)
        return "still in flight when the drill ended";
    if (op->err != 0)
        return platform_strerror(op->err);
    return op->outcome == SIM_UNKNOWN ? "no reply before the client's timeout" : "no reason given";
}

static int cmp_reason(const void *x, const void *y)
{
    const struct report_reason *a = x, *b = y;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    int c = strcmp(a->outcome, b->outcome);
    c = c != 0 ? c : strcmp(a->kind, b->kind);
    return c != 0 ? c : strcmp(a->reason, b->reason);
}

static void fill_reasons(struct sim *s, struct report_run *rep)
{
    static const char *const outcome[] = {"unknown", "ok", "fail", "unknown", "rejected"};
    rep->reason_count = 0;
    for (size_t i = 0; i < s->op_count; i++) {
        const struct sim_op *op = &s->ops[i];
        if (op->outcome == SIM_OK)
            continue;
        const char *kind = drill_op_name(op->kind), *reason = reason_of(op);
        const char *out = outcome[op->outcome];
        size_t k = 0;
        while (k < rep->reason_count && (strcmp(rep->reasons[k].outcome, out) != 0 ||
                                         strcmp(rep->reasons[k].kind, kind) != 0 ||
                                         strcmp(rep->reasons[k].reason, reason) != 0))
            k++;
        if (k == rep->reason_count && k == REPORT_REASONS_MAX - 1) {
            /* the last row counts every other reason, so the table adds up */
            out = "various", kind = "various", reason = "other reasons";
        }
        if (k == rep->reason_count && k < REPORT_REASONS_MAX) {
            struct report_reason *x = &rep->reasons[rep->reason_count++];
            snprintf(x->outcome, sizeof(x->outcome), "%s", out);
            snprintf(x->kind, sizeof(x->kind), "%s", kind);
            snprintf(x->reason, sizeof(x->reason), "%s", reason);
        }
        rep->reasons[k < REPORT_REASONS_MAX ? k : REPORT_REASONS_MAX - 1].count++;
    }
    qsort(rep->reasons, rep->reason_count, sizeof(rep->reasons[0]), cmp_reason);
}

struct order_key {
    int64_t at_us;
    size_t index;
};

static int cmp_order(const void *x, const void *y)
{
    const struct order_key *a = x, *b = y;
    if (a->at_us != b->at_us)
        return a->at_us < b->at_us ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Marks placed back in time (a violation on the operation it concerns) go in order. */
static int sort_marks(struct report_run *rep)
{
    size_t n = rep->event_count;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = rep->events[i].at_us >= rep->events[i - 1].at_us;
    if (sorted)
        return 0;
    struct order_key *keys = malloc(n * sizeof(*keys));
    struct report_event *events = malloc(n * sizeof(*events));
    if (keys == NULL || events == NULL) {
        free(keys);
        free(events);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = (struct order_key){rep->events[i].at_us, i};
    qsort(keys, n, sizeof(*keys), cmp_order);
    for (size_t i = 0; i < n; i++)
        events[i] = rep->events[keys[i].index];
    free(keys);
    free(rep->events);
    rep->events = events;
    return 0;
}

int story_fill(struct sim *s, struct report_run *rep)
{
    for (size_t i = 0; i < rep->expectation_count && i < s->drill->expect_count; i++) {
        struct report_expectation *x = &rep->expectations[i];
        const struct world_verdict *v = &s->verdicts[i];
        const struct invariant_info *info = invariant_lookup(s->drill->expects[i].invariant);
        snprintf(x->paragraph, sizeof(x->paragraph), "%s",
                 info != NULL && info->explanation != NULL ? info->explanation : "");
        x->story_count = v->violated ? v->story_count : 0;
        memcpy(x->story, v->story, sizeof(x->story));
    }
    fill_reasons(s, rep);
    /* the copies' lag in changes, as run --live polls it (live_watch.c) */
    if (s->story.started && s->story.lag_max >= 0 && rep->metric_count < REPORT_METRICS_MAX) {
        struct report_metric *m = &rep->metrics[rep->metric_count++];
        snprintf(m->name, sizeof(m->name), "lag_changes_max");
        snprintf(m->unit, sizeof(m->unit), "changes");
        m->value = s->story.lag_max;
    }
    return sort_marks(rep);
}
