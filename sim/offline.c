/*
 * offline.c — offline-first sync in the simulator (topology `offline`):
 * nodes `local` (or local1..localN with locals=N) and `central`. Clients
 * write to their local, whose every change lands in its sync queue (in the
 * change's transaction, or in a second one with the naive queue=separate).
 * A sync job per local runs every interval=: while the local is up and
 * online it pushes its PENDING rows (and, after a heal, its FAILED ones)
 * to central, which upserts them idempotently by global id and replies
 * with the queue ids it accepted; the local marks those SYNCED. A push that
 * fails, or gets no reply in time, costs every row it carried one retry;
 * a row whose retries reach retries= is FAILED, kept, and pushed again
 * later. `offline NODE` / `online NODE` flip a local's job switch; clients
 * keep writing locally meanwhile.
 *
 * Checkers: outbox-accounted, and the offline part of converges. Part of
 * libsim; talks to the platform only through platform.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

#define OFFLINE_PUSH_ROWS        256    /* queue rows in one push (<= SHOP_SYNC_PUSH_ROWS_MAX) */
#define OFFLINE_REPLY_TIMEOUT_US 500000 /* a push without a reply by then has failed */
#define OFFLINE_FAILED_EVERY     3      /* while pushes fail, FAILED rows join every 3rd run */

enum offline_msg {
    OFFLINE_PUSH = 1, /* local -> central: b: tag, data: the push */
    OFFLINE_REPLY,    /* central -> local: a: 0 or -errno, b: tag, data: the accepted ids */
};

/* The timer's a: kind * DRILL_LOCALS_MAX + the local's index; b: a push tag. */
enum offline_timer {
    OFFLINE_TICK,    /* the job's periodic run */
    OFFLINE_AGAIN,   /* one extra run now (online again, a full push accepted) */
    OFFLINE_TIMEOUT, /* the reply of push b is due */
};

struct offline_local {
    int node;
    bool online;
    bool quiet;        /* "not pushing" already traced for this spell */
    uint32_t life;     /* the node's incarnation: replies to an earlier one are ignored */
    uint32_t push_no;  /* pushes sent in this life */
    int64_t in_flight; /* tag of the push waiting for its reply, 0: none */
    struct shop_sync_result carried; /* the queue ids it carried */
    bool last_ok;                    /* the last push was accepted */
    unsigned runs_without_failed;
    /* figures */
    uint64_t pushes, accepted, late, failed_pushes, timeouts, rows_pushed, rows_synced;
};

struct offline_state {
    int central;
    int count;
    struct offline_local local[DRILL_LOCALS_MAX];
    int64_t interval_us;
    int retries;
    bool separate;
    bool reported;
};

static struct offline_state *st(struct sim *s)
{
    return s->topo == &world_offline_topo ? s->topo_state : NULL;
}

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

static const char *name_of(struct sim *s, int node)
{
    return s->nodes[node].name;
}

static int64_t tag_of(const struct offline_local *l)
{
    return (int64_t)l->life << 32 | l->push_no;
}

static int local_of_node(const struct offline_state *o, int node)
{
    for (int i = 0; i < o->count; i++)
        if (o->local[i].node == node)
            return i;
    return -1;
}

static int timer(struct sim *s, int64_t at_us, enum offline_timer kind, int local, int64_t b)
{
    return world_timer(s, at_us, (int)kind * DRILL_LOCALS_MAX + local, b);
}

/* ---- set-up --------------------------------------------------------------- */

static int offline_configure(struct sim *s)
{
    struct offline_state *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return -ENOMEM;
    s->topo_state = o;
    const struct drill_topology *t = &s->drill->topology;
    o->central = world_node_index(s, "central");
    for (size_t n = 0; n < s->node_count && o->count < DRILL_LOCALS_MAX; n++)
        if (strncmp(s->nodes[n].name, "local", 5) == 0)
            o->local[o->count++].node = (int)n;
    if (o->central < 0 || o->count == 0) {
        snprintf(s->msg, sizeof(s->msg), "offline needs nodes local (or local1..N) and central");
        return -EINVAL;
    }
    o->interval_us = t->sync_interval_us > 0 ? t->sync_interval_us : 1000000;
    o->retries = t->retries > 0 ? t->retries : 5;
    o->separate = t->queue_separate;
    for (int i = 0; i < o->count; i++) {
        struct world_node *n = &s->nodes[o->local[i].node];
        n->cfg.sync_queue = o->separate ? SHOP_QUEUE_SEPARATE : SHOP_QUEUE_SAME;
        n->seed = true;
        o->local[i].online = true;
        o->local[i].last_ok = true;
        o->local[i].life = 1;
    }
    s->nodes[o->central].seed = false; /* an aggregate: it holds what the locals push */
    s->main_node = o->local[0].node;
    return 0;
}

static int offline_start(struct sim *s)
{
    struct offline_state *o = st(s);
    char names[160] = "";
    size_t used = 0;
    for (int i = 0; i < o->count && used < sizeof(names) - FAULTS_NODE_MAX - 2; i++)
        used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
                                 name_of(s, o->local[i].node));
    world_trace(s, "central",
                "offline sync: %s push to central every %.3fs; a row is FAILED after %d failed "
                "pushes; queue=%s%s",
                names, secs(o->interval_us), o->retries, o->separate ? "separate" : "same",
                o->separate ? " (naive: a row and its queue entry in two transactions)" : "");
    int err = 0;
    for (int i = 0; !err && i < o->count; i++)
        err = timer(s, s->now_us + o->interval_us, OFFLINE_TICK, i, 0);
    return err;
}

static void offline_release(struct sim *s)
{
    free(s->topo_state);
    s->topo_state = NULL;
}

/* Clients are spread over the locals: client c writes to local (c-1) % N. */
static int offline_route(struct sim *s, struct sim_op *op)
{
    struct offline_state *o = st(s);
    return o->local[(op->client - 1) % o->count].node;
}

/* ---- the job (on a local) ------------------------------------------------- */

static void rows_waiting(struct sim *s, int node, char *out, size_t len)
{
    struct shop_sync_status q;
    shop *sh = s->nodes[node].shop;
    if (sh == NULL || shop_sync_status(sh, &q) != 0) {
        snprintf(out, len, "its queue cannot be read");
        return;
    }
    snprintf(out, len, "%lld row(s) PENDING, %lld FAILED", (long long)q.total[SHOP_SYNC_PENDING],
             (long long)q.total[SHOP_SYNC_FAILED]);
}

static bool job_can_push(struct sim *s, struct offline_local *l)
{
    struct world_node *n = &s->nodes[l->node];
    const char *why = !n->up || n->shop == NULL ? "down" : !l->online ? "offline" : NULL;
    if (why == NULL) {
        l->quiet = false;
        return true;
    }
    if (!l->quiet && n->up && n->shop != NULL) {
        char waiting[96];
        rows_waiting(s, l->node, waiting, sizeof(waiting));
        world_trace(s, n->name, "sync job: %s, not pushing (%s wait)", why, waiting);
    }
    l->quiet = true;
    return false;
}

static void job_run(struct sim *s, struct offline_state *o, int i)
{
    struct offline_local *l = &o->local[i];
    if (!job_can_push(s, l) || l->in_flight != 0)
        return; /* one push at a time: the next run looks again */
    bool with_failed = l->last_ok || ++l->runs_without_failed >= OFFLINE_FAILED_EVERY;
    if (with_failed)
        l->runs_without_failed = 0;
    struct world_node *n = &s->nodes[l->node];
    struct shop_sync_push p;
    int err = shop_sync_pending(n->shop, OFFLINE_PUSH_ROWS, with_failed, &p);
    if (err) {
        world_trace(s, n->name, "sync job cannot read its queue: %s", shop_errmsg(n->shop));
        return;
    }
    if (p.count > 0) {
        l->push_no++;
        l->in_flight = tag_of(l);
        shop_sync_result_of_push(&p, &l->carried);
        l->pushes++;
        l->rows_pushed += p.count;
        world_send(s, l->node, o->central, OFFLINE_PUSH, 0, l->in_flight, p.data, p.len, s->now_us);
        world_trace(s, n->name,
                    "pushed %u row(s) (%u retried, %u of them FAILED) -> central "
                    "(push %u)",
                    p.count, p.retried, p.failed, l->push_no);
        timer(s, s->now_us + OFFLINE_REPLY_TIMEOUT_US, OFFLINE_TIMEOUT, i, l->in_flight);
    }
    shop_sync_push_release(&p);
}

/* A push failed (central's error or no reply): every row it carried retries. */
static void push_failed(struct sim *s, struct offline_state *o, struct offline_local *l, int err,
                        const char *why)
{
    struct world_node *n = &s->nodes[l->node];
    l->failed_pushes++;
    l->last_ok = false;
    if (n->shop == NULL)
        return;
    struct shop_sync_marked m;
    int rc = shop_sync_mark(n->shop, &l->carried, err, o->retries, &m);
    if (rc) {
        world_trace(s, n->name, "%s; cannot count the retries: %s", why, shop_errmsg(n->shop));
        return;
    }
    world_trace(s, n->name,
                "%s: push failed; its %u row(s) count one more retry (most now "
                "%lld, FAILED at %d)",
                why, m.retried, (long long)m.retries_max, o->retries);
    if (m.failed > 0)
        world_trace(s, n->name,
                    "%u row(s) FAILED after %d failed pushes (the budget): kept, and pushed "
                    "again after a heal",
                    m.failed, o->retries);
}

static void push_accepted(struct sim *s, struct offline_state *o, int i,
                          const struct shop_sync_result *r, bool late)
{
    struct offline_local *l = &o->local[i];
    struct world_node *n = &s->nodes[l->node];
    struct shop_sync_marked m;
    int err = shop_sync_mark(n->shop, r, 0, o->retries, &m);
    if (err == -ECANCELED || s->crash_pending) {
        world_trace(s, n->name,
                    "crash point %s fired: central holds %u row(s) this local "
                    "never marked SYNCED",
                    s->crash_point, r->count);
        world_handle_crash_point(s);
        return;
    }
    if (err) {
        world_trace(s, n->name,
                    "central accepted %u row(s) but they cannot be marked: %s; "
                    "they stay PENDING and go again",
                    r->count, shop_errmsg(n->shop));
        return;
    }
    l->accepted += !late;
    l->late += late;
    l->last_ok = true;
    l->rows_synced += m.synced;
    world_trace(s, n->name, "%smarked %u row(s) SYNCED (%u were already)",
                late ? "late reply: " : "", m.synced, m.already);
    if (!late && r->count == OFFLINE_PUSH_ROWS)
        timer(s, s->now_us, OFFLINE_AGAIN, i, 0); /* a full push: more is waiting */
}

static void on_reply(struct sim *s, struct offline_state *o, const struct world_msg *m)
{
    int i = local_of_node(o, m->to);
    if (i < 0)
        return;
    struct offline_local *l = &o->local[i];
    struct world_node *n = &s->nodes[l->node];
    if ((uint32_t)((uint64_t)m->b >> 32) != l->life || n->shop == NULL) {
        world_trace(s, n->name, "reply to push %u of an earlier life ignored",
                    (unsigned)(m->b & 0xffffffff));
        return;
    }
    bool late = m->b != l->in_flight;
    if (!late)
        l->in_flight = 0;
    if (m->a != 0) {
        if (!late) {
            char why[160];
            snprintf(why, sizeof(why), "central could not apply push %u (%s)",
                     (unsigned)(m->b & 0xffffffff), platform_strerror((int)m->a));
            push_failed(s, o, l, (int)m->a, why);
        }
        return;
    }
    struct shop_sync_result r;
    if (shop_sync_reply_decode(m->data, m->len, &r) != 0) {
        world_trace(s, n->name, "a malformed reply from central ignored");
        return;
    }
    push_accepted(s, o, i, &r, late);
}

static void on_timeout(struct sim *s, struct offline_state *o, int i, int64_t tag)
{
    struct offline_local *l = &o->local[i];
    if (l->in_flight != tag)
        return; /* answered, or a push of an earlier life */
    l->in_flight = 0;
    l->timeouts++;
    char why[128];
    snprintf(why, sizeof(why), "push %u got no reply within %.3fs", (unsigned)(tag & 0xffffffff),
             secs(OFFLINE_REPLY_TIMEOUT_US));
    push_failed(s, o, l, -ETIMEDOUT, why);
}

/* ---- central -------------------------------------------------------------- */

static void on_push(struct sim *s, struct offline_state *o, const struct world_msg *m)
{
    struct world_node *c = &s->nodes[o->central];
    const char *origin = name_of(s, m->from);
    if (c->shop == NULL || local_of_node(o, m->from) < 0)
        return;
    s->delay_pending_us = 0;
    struct shop_sync_result r;
    int err = shop_sync_apply_central(c->shop, origin, m->data, m->len, &r);
    if (s->crash_pending) {
        world_handle_crash_point(s);
        return;
    }
    int64_t done = s->now_us + SIM_SERVICE_US + s->delay_pending_us;
    unsigned no = (unsigned)(m->b & 0xffffffff);
    if (err) {
        world_trace(s, c->name, "cannot apply %s's push %u: %s -> replies with the error", origin,
                    no, shop_errmsg(c->shop));
        world_send(s, o->central, m->from, OFFLINE_REPLY, err, m->b, NULL, 0, done);
        return;
    }
    world_trace(s, c->name,
                "applied %s's push %u: accepted %u row(s) (%u new values, %u already "
                "held)",
                origin, no, r.count, r.applied, r.unchanged);
    uint8_t buf[SHOP_SYNC_REPLY_BYTES_MAX];
    size_t len = shop_sync_reply_encode(&r, buf);
    world_send(s, o->central, m->from, OFFLINE_REPLY, 0, m->b, buf, len, done);
}

/* ---- hooks ---------------------------------------------------------------- */

static void offline_tick(struct sim *s, int a, int64_t b)
{
    struct offline_state *o = st(s);
    int kind = a / DRILL_LOCALS_MAX, i = a % DRILL_LOCALS_MAX;
    if (i >= o->count)
        return;
    if (kind == OFFLINE_TICK) {
        timer(s, s->now_us + o->interval_us, OFFLINE_TICK, i, 0);
        job_run(s, o, i);
    } else if (kind == OFFLINE_AGAIN) {
        job_run(s, o, i);
    } else if (kind == OFFLINE_TIMEOUT) {
        on_timeout(s, o, i, b);
    }
}

static void offline_deliver(struct sim *s, const struct world_msg *m)
{
    struct offline_state *o = st(s);
    if (m->type == OFFLINE_PUSH && m->to == o->central)
        on_push(s, o, m);
    else if (m->type == OFFLINE_REPLY)
        on_reply(s, o, m);
}

static void offline_crashed(struct sim *s, int n)
{
    struct offline_state *o = st(s);
    int i = local_of_node(o, n);
    if (i < 0)
        return;
    /* a new process forgets the push it was waiting for; its rows are still
     * PENDING on disk and go again */
    o->local[i].life++;
    o->local[i].in_flight = 0;
}

static void offline_action(struct sim *s, const struct drill_event *e)
{
    struct offline_state *o = st(s);
    int n = world_node_index(s, e->name), i = n >= 0 ? local_of_node(o, n) : -1;
    if (i < 0 || (e->action != DRILL_GO_OFFLINE && e->action != DRILL_GO_ONLINE)) {
        world_trace(s, "-", "%s %s: nothing to do in offline (offline/online take a local)",
                    drill_action_name(e->action), e->name);
        return;
    }
    struct offline_local *l = &o->local[i];
    char waiting[96];
    rows_waiting(s, n, waiting, sizeof(waiting));
    l->online = e->action == DRILL_GO_ONLINE;
    l->quiet = !l->online; /* traced here */
    world_mark(s, e->name, l->online ? REPORT_HEAL : REPORT_PARTITION, "%s %s", e->name,
               l->online ? "online" : "offline");
    if (!l->online) {
        world_trace(s, e->name,
                    "goes offline: its sync job stops pushing; clients keep writing "
                    "locally (%s)",
                    waiting);
        return;
    }
    world_trace(s, e->name, "back online: the sync job pushes now (%s)", waiting);
    timer(s, s->now_us, OFFLINE_AGAIN, i, 0);
}

static void trace_figures(struct sim *s, struct offline_state *o)
{
    for (int i = 0; i < o->count; i++) {
        const struct offline_local *l = &o->local[i];
        world_trace(s, name_of(s, l->node),
                    "sync figures: %llu pushes (%llu accepted in time, %llu failed of which "
                    "%llu without a reply; %llu late or repeated replies), %llu rows pushed, "
                    "%llu marked SYNCED",
                    (unsigned long long)l->pushes, (unsigned long long)l->accepted,
                    (unsigned long long)l->failed_pushes, (unsigned long long)l->timeouts,
                    (unsigned long long)l->late, (unsigned long long)l->rows_pushed,
                    (unsigned long long)l->rows_synced);
    }
}

/* The drain heals everything, so the locals' switches go back online too;
 * it waits until no local has a PENDING or FAILED row. */
static bool offline_pending(struct sim *s, char *why, size_t len)
{
    struct offline_state *o = st(s);
    for (int i = 0; i < o->count; i++) {
        struct offline_local *l = &o->local[i];
        if (s->draining && !l->online) {
            l->online = true;
            l->quiet = false;
            world_trace(s, name_of(s, l->node), "drain: back online");
            timer(s, s->now_us, OFFLINE_AGAIN, i, 0);
        }
    }
    for (int i = 0; i < o->count; i++) {
        struct offline_local *l = &o->local[i];
        struct shop_sync_status q;
        shop *sh = s->nodes[l->node].shop;
        if (sh == NULL || shop_sync_status(sh, &q) != 0)
            continue; /* the runner reports a shop that is not running */
        int64_t left = q.total[SHOP_SYNC_PENDING] + q.total[SHOP_SYNC_FAILED];
        if (left > 0) {
            snprintf(why, len,
                     "%s still has %lld PENDING and %lld FAILED sync row(s), the "
                     "oldest from %.3fs",
                     name_of(s, l->node), (long long)q.total[SHOP_SYNC_PENDING],
                     (long long)q.total[SHOP_SYNC_FAILED], secs(q.oldest_pending_at_us));
            return true;
        }
    }
    if (s->draining && !o->reported) {
        o->reported = true;
        trace_figures(s, o);
    }
    return false;
}

/* Each local acknowledges its own clients' writes and must keep them. */
static int offline_ack_node(struct sim *s, const struct sim_op *op)
{
    (void)s;
    return op->node;
}

const struct world_topo world_offline_topo = {
    .ack_node = offline_ack_node,
    .name = "offline",
    .configure = offline_configure,
    .start = offline_start,
    .route = offline_route,
    .deliver = offline_deliver,
    .tick = offline_tick,
    .crashed = offline_crashed,
    .action = offline_action,
    .pending = offline_pending,
    .release = offline_release,
};

/* ---- checkers ------------------------------------------------------------- */

static const char *const problem_words[] = {
    [SHOP_SYNC_MATCH] = "matches",
    [SHOP_SYNC_MISSING] = "is missing on central",
    [SHOP_SYNC_DIFFERS] = "holds other values on central",
    [SHOP_SYNC_UNDELETED] = "was deleted locally but central still holds it",
};

/* One compared row in words: table, key, node, the queue's view, central's. */
static void describe_row(const struct shop_sync_row *r, const char *node, char *out, size_t len)
{
    char queue[200], held[96];
    if (!r->queued)
        snprintf(queue, sizeof(queue), "it has no sync-queue entry at all");
    else if (r->state == SHOP_SYNC_SYNCED)
        snprintf(queue, sizeof(queue),
                 "its newest queue entry #%lld (%s, queued at %.3fs) was marked SYNCED at %.3fs",
                 (long long)r->queue_id, r->op, secs(r->created_at_us), secs(r->synced_at_us));
    else
        snprintf(queue, sizeof(queue),
                 "its newest queue entry #%lld (%s, queued at %.3fs) is %s after %lld retries",
                 (long long)r->queue_id, r->op, secs(r->created_at_us),
                 shop_sync_state_name(r->state), (long long)r->retries);
    if (r->central_version > 0)
        snprintf(held, sizeof(held), "central last applied queue entry #%lld at %.3fs",
                 (long long)r->central_version, secs(r->central_synced_at_us));
    else
        snprintf(held, sizeof(held), "central never received it");
    snprintf(out, len, "row %s %s of %s %s: %s; %s", shop_table_name(r->table), r->row_key, node,
             problem_words[r->problem], queue, held);
}

static int compare_local(struct sim *s, struct offline_state *o, int i, struct shop_sync_compare *c)
{
    shop *local = s->nodes[o->local[i].node].shop, *central = s->nodes[o->central].shop;
    if (local == NULL || central == NULL)
        return -EAGAIN;
    return shop_sync_compare(local, central, name_of(s, o->local[i].node), c);
}

/* The writes clients made on a local (acknowledged or maybe applied): the
 * changes its sync must account for, beyond the seeded catalog. */
static uint64_t local_writes(const struct sim *s, int node)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->op_count; i++) {
        const struct sim_op *op = &s->ops[i];
        n += op->is_write && op->node == node &&
             (op->outcome == SIM_OK || op->outcome == SIM_UNKNOWN);
    }
    return n;
}

/* FAILED only at the budget, nothing SYNCED twice. */
static enum sim_check check_status(struct sim *s, struct offline_state *o, int i, char *why,
                                   size_t len)
{
    const char *node = name_of(s, o->local[i].node);
    shop *sh = s->nodes[o->local[i].node].shop;
    struct shop_sync_status q;
    if (shop_sync_status(sh, &q) != 0)
        return SIM_CHECK_SKIPPED;
    struct shop_sync_entry e;
    if (q.synced_twice > 0) {
        shop_sync_entry_get(sh, q.synced_twice_id, &e);
        snprintf(why, len,
                 "sync-queue entry #%lld on %s (row %s %s, %s) was marked SYNCED more than once "
                 "(%lld such entries; %lld SYNCED transitions for %lld SYNCED rows)",
                 (long long)q.synced_twice_id, node, shop_table_name(e.table), e.row_key, e.op,
                 (long long)q.synced_twice, (long long)q.synced_marks,
                 (long long)q.total[SHOP_SYNC_SYNCED]);
        return SIM_CHECK_VIOLATED;
    }
    if (q.total[SHOP_SYNC_FAILED] > 0 && q.failed_retries_min < o->retries) {
        shop_sync_entry_get(sh, q.failed_retries_min_id, &e);
        snprintf(why, len,
                 "sync-queue entry #%lld on %s (row %s %s, %s, queued at %.3fs) is FAILED after "
                 "%lld failed pushes, before its budget of retries=%d was spent",
                 (long long)q.failed_retries_min_id, node, shop_table_name(e.table), e.row_key,
                 e.op, secs(e.created_at_us), (long long)q.failed_retries_min, o->retries);
        return SIM_CHECK_VIOLATED;
    }
    world_witness(s, local_writes(s, o->local[i].node)); /* each accounted for */
    return SIM_CHECK_HOLDS;
}

enum sim_check offline_outbox_accounted(struct sim *s, const struct drill_expect *e, char *why,
                                        size_t len)
{
    (void)e;
    struct offline_state *o = st(s);
    if (o == NULL || s->nodes[o->central].shop == NULL)
        return SIM_CHECK_SKIPPED;
    enum sim_check result = SIM_CHECK_SKIPPED;
    struct shop_sync_compare *c = malloc(sizeof(*c));
    if (c == NULL)
        return SIM_CHECK_SKIPPED;
    for (int i = 0; i < o->count && result != SIM_CHECK_VIOLATED; i++) {
        if (compare_local(s, o, i, c) != 0)
            continue; /* a local that is down is judged when it is back */
        enum sim_check r = check_status(s, o, i, why, len);
        if (r == SIM_CHECK_VIOLATED || c->lost > 0) {
            result = SIM_CHECK_VIOLATED;
        } else if (r == SIM_CHECK_HOLDS) {
            result = SIM_CHECK_HOLDS;
        }
        if (r == SIM_CHECK_VIOLATED || c->lost == 0)
            continue;
        char row[600];
        describe_row(&c->examples[0], name_of(s, o->local[i].node), row, sizeof(row));
        snprintf(why, len,
                 "at %.3fs %lld change(s) on %s are neither SYNCED and present on central nor "
                 "PENDING/FAILED in its sync queue, so no sync will ever carry them; first: "
                 "%s%s",
                 secs(s->now_us), (long long)c->lost, name_of(s, o->local[i].node), row,
                 o->separate ? " (queue=separate writes a change and its queue entry in two "
                               "transactions: a crash between them leaves exactly this)"
                             : "");
    }
    free(c);
    return result;
}

enum sim_check offline_converges(struct sim *s, const struct drill_expect *e, char *why, size_t len)
{
    (void)e;
    struct offline_state *o = st(s);
    if (o == NULL)
        return SIM_CHECK_SKIPPED;
    struct shop_sync_compare *c = malloc(sizeof(*c));
    if (c == NULL)
        return SIM_CHECK_SKIPPED;
    enum sim_check result = SIM_CHECK_HOLDS;
    for (int i = 0; i < o->count && result == SIM_CHECK_HOLDS; i++) {
        if (compare_local(s, o, i, c) != 0) {
            result = SIM_CHECK_SKIPPED;
            break;
        }
        if (c->matching == c->rows) {
            world_witness(s, local_writes(s, o->local[i].node)); /* all on central */
            continue;
        }
        char row[600];
        describe_row(&c->examples[0], name_of(s, o->local[i].node), row, sizeof(row));
        snprintf(why, len,
                 "after the drain (%.3fs) central does not hold every change of %s: %lld of "
                 "%lld rows differ (%lld missing, %lld with other values, %lld not deleted); "
                 "first: %s",
                 secs(s->now_us), name_of(s, o->local[i].node), (long long)(c->rows - c->matching),
                 (long long)c->rows, (long long)c->mismatched[SHOP_SYNC_MISSING],
                 (long long)c->mismatched[SHOP_SYNC_DIFFERS],
                 (long long)c->mismatched[SHOP_SYNC_UNDELETED], row);
        result = SIM_CHECK_VIOLATED;
    }
    free(c);
    return result;
}
