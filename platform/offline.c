/*
 * offline.c — offline-first sync, written once (DESIGN.md §2): the roles
 * offline-local and offline-central of node.h.
 *
 * A local takes its clients' writes on its own shop, whose every change
 * lands in its sync queue (sync.c; in the change's own transaction, or in a
 * second one with the naive queue=separate, which this job does not hide:
 * a change without its queue row is never pushed). Its sync job runs every
 * interval. While the local is online and no push is in flight, it reads up
 * to NODE_OFFLINE_PUSH_ROWS queue rows, PENDING and FAILED alike, oldest
 * first (shop_sync_pending), and sends them to central as one push.
 * Central applies a push in one transaction, idempotently by global id and
 * version (shop_sync_apply_central), and answers with the queue ids it holds
 * (accepted) or with its error (refused). The local marks accepted rows
 * SYNCED; a refusal, or no answer within the reply timeout, costs each row
 * the push carried one retry, and a row whose retries reach the budget is
 * FAILED: kept, counted in the status, and pushed again with every push
 * until one is accepted (the FAILED policy, node.h says why).
 *
 * A push is named by the local's life (its epoch: the wall clock when the
 * node started, strictly increasing within one node object) and its number
 * in that life. An answer to another life is ignored: that process is gone
 * and its rows are still on disk, PENDING, and go again. An answer to an
 * earlier push of this life (late, or duplicated) still marks what central
 * accepted: central holds those rows, so SYNCED is true of them.
 *
 * The operator may ask for a run now (node_sync_now: serve's POST /sync/run).
 * A run serves every ask made before it began; it settles them when it is
 * over — nothing to push, or its last push (full pushes chain) answered or
 * timed out — and an ask made while a push was in flight gets a run of its
 * own right after that push's answer.
 *
 * Invariants asserted: at most one push in flight; push numbers and epochs
 * strictly increase; a mark accounts for every id of the answer; central
 * answers for every entry of a push it applied.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/node_impl.h"

#define REFUSAL_TEXT_MAX 200 /* bytes of central's error text in a refusal */

struct offline_state {
    /* a local */
    int64_t interval_us, timeout_us;
    int budget;
    bool online;
    bool quiet;              /* "offline, not pushing" traced for this spell */
    int64_t epoch;           /* this life */
    uint32_t push_no;        /* pushes sent in this life */
    uint32_t in_flight;      /* the push waiting for its answer; 0: none */
    int64_t due_us;          /* mono: its answer is due by then */
    struct shop_sync_result carried; /* the queue ids it carried */
    bool last_ok;
    uint64_t asks, settled;  /* node_sync_now's asks; the highest one settled */
    uint64_t push_ask;       /* the asks the push in flight's run started after */
    uint64_t runs, pushes, accepted, failed_pushes, timeouts, late;
    uint64_t rows_pushed, rows_synced, rows_retried, rows_failed;
    int64_t last_push_us, last_ok_us;
    char last_error[SHOP_ERRMSG_MAX];
    /* central */
    uint64_t applied, refused, rows_applied, rows_unchanged, strays;
    int64_t last_apply_us;
};

static double secs(int64_t us)
{
    return (double)us / 1e6;
}

int offline_create(struct node *n, char *errmsg, size_t len)
{
    if (n->role == NODE_OFFLINE_LOCAL && n->peer[0] == '\0') {
        snprintf(errmsg, len, "node %s: an offline local needs its central (peer)", n->name);
        return -EINVAL;
    }
    if (n->role == NODE_OFFLINE_CENTRAL && n->peer_count == 0) {
        snprintf(errmsg, len, "node %s: an offline central needs its locals (peers)", n->name);
        return -EINVAL;
    }
    if (n->cfg.sync_interval_us < 0 || n->cfg.sync_retries < 0) {
        snprintf(errmsg, len, "node %s: a negative sync interval or retry budget", n->name);
        return -EINVAL;
    }
    struct offline_state *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        snprintf(errmsg, len, "node %s: %s", n->name, platform_strerror(-ENOMEM));
        return -ENOMEM;
    }
    o->interval_us = n->cfg.sync_interval_us > 0 ? n->cfg.sync_interval_us
                                                 : NODE_OFFLINE_INTERVAL_US;
    o->budget = n->cfg.sync_retries > 0 ? n->cfg.sync_retries : NODE_OFFLINE_RETRIES;
    o->timeout_us = NODE_OFFLINE_REPLY_TIMEOUT_US + 2 * n->cfg.link_delay_us;
    o->online = true;
    o->last_ok = true;
    n->offline = o;
    n->ops = n->role == NODE_OFFLINE_LOCAL ? &node_offline_local_ops : &node_offline_central_ops;
    return 0;
}

static void offline_release(struct node *n)
{
    free(n->offline);
    n->offline = NULL;
}

/* "12 row(s) PENDING, 3 FAILED", for the traces that say what waits. */
static void rows_waiting(struct node *n, char *out, size_t len)
{
    struct shop_sync_status q;
    if (n->shop == NULL || shop_sync_status(n->shop, &q) != 0) {
        snprintf(out, len, "its queue cannot be read");
        return;
    }
    snprintf(out, len, "%lld row(s) PENDING, %lld FAILED", (long long)q.total[SHOP_SYNC_PENDING],
             (long long)q.total[SHOP_SYNC_FAILED]);
}

/* ---- a local: the sync job ------------------------------------------------ */

/* The job's next run, now (node_arm's table keeps 0 for "none": never arm 0). */
static void run_now(struct node *n)
{
    int64_t now = node_mono_us(n);
    node_arm(n, NODE_TIMER_SYNC, now > 0 ? now : 1);
}

static int local_start(struct node *n)
{
    struct offline_state *o = n->offline;
    int64_t wall = node_wall_us(n);
    int64_t epoch = wall > o->epoch ? wall : o->epoch + 1;
    assert(epoch > o->epoch);
    o->epoch = epoch;
    o->push_no = 0;
    o->in_flight = 0;
    o->quiet = false;
    if (n->restarts == 0)
        node_trace(n, "offline sync: the job pushes its queue to %s every %.3fs, up to %d rows a "
                      "push, one push at a time; no answer in %.3fs fails a push; a row is FAILED "
                      "after %d failed pushes and goes again with every push",
                   n->peer, secs(o->interval_us), NODE_OFFLINE_PUSH_ROWS, secs(o->timeout_us),
                   o->budget);
    else
        node_trace(n, "the sync job starts again (a new life: answers to earlier pushes are "
                      "ignored)");
    node_arm(n, NODE_TIMER_SYNC, node_next_tick_us(n, o->interval_us));
    return 0;
}

static void local_crashed(struct node *n)
{
    struct offline_state *o = n->offline;
    /* the process forgets the push it waited for; its rows are still
     * PENDING or FAILED on disk and go again */
    o->in_flight = 0;
    o->quiet = false;
    o->settled = o->asks; /* nobody waits on a dead process */
}

/* The run that started after `ask` asks is over: its pushes were answered,
 * timed out or never sent. Asks that came during it get a run of their own. */
static void settle(struct node *n, uint64_t ask)
{
    struct offline_state *o = n->offline;
    assert(o->in_flight == 0 && ask <= o->asks);
    if (ask > o->settled)
        o->settled = ask;
    if (o->asks > o->settled)
        run_now(n);
}

/* A push failed (central's refusal or no answer): each row it carried retries. */
static int push_failed(struct node *n, int err, const char *why)
{
    struct offline_state *o = n->offline;
    assert(o->in_flight == 0);
    o->failed_pushes++;
    o->last_ok = false;
    snprintf(o->last_error, sizeof(o->last_error), "%s", why);
    settle(n, o->push_ask);
    struct shop_sync_marked m;
    int rc = shop_sync_mark(n->shop, &o->carried, err, o->budget, &m);
    if (rc == -ECANCELED)
        return rc;
    if (rc) {
        node_trace(n, "%s; cannot count the retries: %s", why, shop_errmsg(n->shop));
        return 0;
    }
    assert(m.retried <= o->carried.count && m.failed <= m.retried);
    o->rows_retried += m.retried;
    o->rows_failed += m.failed;
    node_trace(n, "%s: push failed; its %u row(s) count one more retry (most now %lld, FAILED "
                  "at %d)",
               why, m.retried, (long long)m.retries_max, o->budget);
    if (m.failed > 0)
        node_trace(n, "%u row(s) FAILED after %d failed pushes (the budget): kept, and pushed "
                      "again with every push until one is accepted",
                   m.failed, o->budget);
    return 0;
}

static int job_run(struct node *n)
{
    struct offline_state *o = n->offline;
    uint64_t ask = o->asks; /* the asks this run serves */
    o->runs++;
    if (!o->online) {
        if (!o->quiet) {
            char waiting[96];
            rows_waiting(n, waiting, sizeof(waiting));
            node_trace(n, "sync job: offline, not pushing (%s wait)", waiting);
        }
        o->quiet = true;
        if (o->in_flight == 0)
            settle(n, ask);
        return 0;
    }
    o->quiet = false;
    if (o->in_flight != 0)
        return 0; /* one push at a time: its answer settles, and runs the asks after it */
    struct shop_sync_push p;
    int err = shop_sync_pending(n->shop, NODE_OFFLINE_PUSH_ROWS, true, &p);
    if (err) {
        node_trace(n, "sync job cannot read its queue: %s", shop_errmsg(n->shop));
        snprintf(o->last_error, sizeof(o->last_error), "cannot read the sync queue: %s",
                 shop_errmsg(n->shop));
        if (err == -ECANCELED)
            return err;
        settle(n, ask);
        return 0;
    }
    if (p.count > 0) {
        struct node_msg m = {.type = NODE_MSG_SYNC_PUSH, .a = o->epoch, .b = o->push_no + 1,
                             .data = p.data, .len = p.len};
        err = node_send(n, n->peer, &m);
        if (!err) {
            o->push_no++;
            o->in_flight = o->push_no;
            o->push_ask = ask;
            o->due_us = node_mono_us(n) + o->timeout_us;
            shop_sync_result_of_push(&p, &o->carried);
            o->pushes++;
            o->rows_pushed += p.count;
            o->last_push_us = node_wall_us(n);
            node_trace(n, "pushed %u row(s) (%u retried, %u of them FAILED) -> %s (push %u)",
                       p.count, p.retried, p.failed, n->peer, o->push_no);
            node_arm(n, NODE_TIMER_SYNC_REPLY, o->due_us);
        }
    }
    shop_sync_push_release(&p);
    if (o->in_flight == 0)
        settle(n, ask); /* nothing to push (or it could not be sent) */
    return 0;
}

static int on_timeout(struct node *n)
{
    struct offline_state *o = n->offline;
    if (o->in_flight == 0)
        return 0; /* answered */
    if (node_mono_us(n) < o->due_us) {
        node_arm(n, NODE_TIMER_SYNC_REPLY, o->due_us); /* a wake of an earlier push */
        return 0;
    }
    uint32_t no = o->in_flight;
    o->in_flight = 0;
    o->timeouts++;
    char why[128];
    snprintf(why, sizeof(why), "push %u got no answer within %.3fs", no, secs(o->timeout_us));
    return push_failed(n, -ETIMEDOUT, why);
}

static int local_timer(struct node *n, enum node_timer t)
{
    if (t == NODE_TIMER_SYNC_REPLY)
        return on_timeout(n);
    if (t != NODE_TIMER_SYNC)
        return 0;
    node_arm(n, NODE_TIMER_SYNC, node_next_tick_us(n, n->offline->interval_us));
    return job_run(n);
}

static int on_accepted(struct node *n, const struct node_msg *m, bool late)
{
    struct offline_state *o = n->offline;
    struct shop_sync_result r;
    if (shop_sync_reply_decode(m->data, m->len, &r) != 0) {
        n->malformed++;
        node_trace(n, "a malformed answer from %s to push %lld dropped", n->peer, (long long)m->b);
        return -EPROTO;
    }
    if (!late)
        o->in_flight = 0;
    struct shop_sync_marked mk;
    int err = shop_sync_mark(n->shop, &r, 0, o->budget, &mk);
    if (err == -ECANCELED) {
        node_trace(n, "a crash point fired: %s holds %u row(s) this local never marked SYNCED",
                   n->peer, r.count);
        return err;
    }
    if (err) {
        node_trace(n, "%s accepted %u row(s) but they cannot be marked: %s; they stay PENDING "
                      "and go again",
                   n->peer, r.count, shop_errmsg(n->shop));
        snprintf(o->last_error, sizeof(o->last_error), "cannot mark accepted rows SYNCED: %s",
                 shop_errmsg(n->shop));
        if (!late)
            settle(n, o->push_ask);
        return 0;
    }
    assert(mk.synced + mk.already + mk.unknown == r.count);
    o->rows_synced += mk.synced;
    if (late) {
        o->late++;
        node_trace(n, "late answer to push %lld: marked %u row(s) SYNCED (%u were already)",
                   (long long)m->b, mk.synced, mk.already);
        return 0;
    }
    o->accepted++;
    o->last_ok = true;
    o->last_ok_us = node_wall_us(n);
    o->last_error[0] = '\0';
    node_trace(n, "marked %u row(s) SYNCED (%u were already)", mk.synced, mk.already);
    if (r.count >= NODE_OFFLINE_PUSH_ROWS)
        run_now(n); /* a full push: more is waiting, and the run goes on */
    else
        settle(n, o->push_ask);
    return 0;
}

static int on_refused(struct node *n, const struct node_msg *m, bool late)
{
    struct offline_state *o = n->offline;
    if (m->len < 4) {
        n->malformed++;
        node_trace(n, "a malformed refusal from %s dropped", n->peer);
        return -EPROTO;
    }
    if (late) {
        node_trace(n, "late refusal of push %lld ignored", (long long)m->b);
        return 0;
    }
    o->in_flight = 0;
    uint32_t code = (uint32_t)m->data[0] | (uint32_t)m->data[1] << 8 |
                    (uint32_t)m->data[2] << 16 | (uint32_t)m->data[3] << 24;
    int err = code > 0 && code < 4096 ? -(int)code : -EIO;
    size_t text_len = m->len - 4 < REFUSAL_TEXT_MAX ? m->len - 4 : REFUSAL_TEXT_MAX;
    char why[SHOP_ERRMSG_MAX];
    snprintf(why, sizeof(why), "%s refused push %lld: %.*s", n->peer, (long long)m->b,
             (int)text_len, (const char *)m->data + 4);
    return push_failed(n, err, why);
}

static int local_message(struct node *n, const char *from, const struct node_msg *m)
{
    struct offline_state *o = n->offline;
    if (strcmp(from, n->peer) != 0 ||
        (m->type != NODE_MSG_SYNC_ACCEPTED && m->type != NODE_MSG_SYNC_REFUSED)) {
        node_trace(n, "%s from %s ignored: a local takes answers from %s only",
                   node_msg_type_name(m->type), from, n->peer);
        return 0;
    }
    if (m->a != o->epoch) {
        node_trace(n, "answer to push %lld of an earlier life ignored", (long long)m->b);
        return 0;
    }
    bool late = o->in_flight == 0 || m->b != (int64_t)o->in_flight;
    if (m->type == NODE_MSG_SYNC_ACCEPTED)
        return on_accepted(n, m, late);
    return on_refused(n, m, late);
}

static int set_online(struct node *n, bool online)
{
    struct offline_state *o = n->offline;
    char waiting[96] = "it is down";
    if (n->up)
        rows_waiting(n, waiting, sizeof(waiting));
    if (o->online == online) {
        node_trace(n, "already %s (%s)", online ? "online" : "offline", waiting);
        return 0;
    }
    o->online = online;
    if (!online) {
        o->quiet = true; /* said here */
        node_trace(n, "goes offline: its sync job stops pushing; clients keep writing locally "
                      "(%s)",
                   waiting);
        return 0;
    }
    o->quiet = false;
    node_trace(n, "back online: the sync job pushes now (%s)", waiting);
    if (n->up)
        run_now(n);
    return 0;
}

static int sync_now(struct node *n, uint64_t *ask)
{
    struct offline_state *o = n->offline;
    *ask = ++o->asks;
    if (o->in_flight == 0)
        run_now(n);
    else
        node_trace(n, "a run now is asked for: it follows push %u's answer", o->in_flight);
    return 0;
}

static void local_view(const struct node *n, struct node_view *out)
{
    out->writable = true; /* a local takes its clients' writes, online or not */
    snprintf(out->writer, sizeof(out->writer), "%s", n->name);
    out->position = 0;    /* no shared numbering: sessions are per local */
}

static void local_status(const struct node *n, struct node_status *out)
{
    const struct offline_state *o = n->offline;
    struct node_offline_status *s = &out->offline;
    s->online = o->online;
    s->pushing = o->in_flight != 0;
    s->last_push_ok = o->last_ok;
    s->interval_us = o->interval_us;
    s->reply_timeout_us = o->timeout_us;
    s->retries_budget = o->budget;
    s->runs = o->runs;
    s->asks = o->asks;
    s->settled = o->settled;
    s->pushes = o->pushes;
    s->accepted = o->accepted;
    s->failed_pushes = o->failed_pushes;
    s->timeouts = o->timeouts;
    s->late_replies = o->late;
    s->rows_pushed = o->rows_pushed;
    s->rows_synced = o->rows_synced;
    s->rows_retried = o->rows_retried;
    s->rows_failed = o->rows_failed;
    s->last_push_us = o->last_push_us;
    s->last_ok_us = o->last_ok_us;
    memcpy(s->last_error, o->last_error, sizeof(s->last_error));
    s->queue_read = n->up && n->shop != NULL && shop_sync_status(n->shop, &s->queue) == 0;
    if (!s->queue_read)
        memset(&s->queue, 0, sizeof(s->queue));
}

const struct node_ops node_offline_local_ops = {
    .start = local_start,
    .message = local_message,
    .timer = local_timer,
    .crashed = local_crashed,
    .set_online = set_online,
    .sync_now = sync_now,
    .view = local_view,
    .status = local_status,
    .release = offline_release,
};

/* ---- central ---------------------------------------------------------------- */

static bool is_local(const struct node *n, const char *name)
{
    for (size_t i = 0; i < n->peer_count; i++)
        if (strcmp(n->peers[i], name) == 0)
            return true;
    return false;
}

static void refuse(struct node *n, const char *to, const struct node_msg *push, int err)
{
    uint8_t buf[4 + REFUSAL_TEXT_MAX];
    uint32_t code = (uint32_t)-err;
    for (int i = 0; i < 4; i++)
        buf[i] = (uint8_t)(code >> (8 * i));
    const char *text = n->shop != NULL ? shop_errmsg(n->shop) : platform_strerror(err);
    if (text == NULL || text[0] == '\0')
        text = platform_strerror(err);
    size_t len = strlen(text) < REFUSAL_TEXT_MAX ? strlen(text) : REFUSAL_TEXT_MAX;
    memcpy(buf + 4, text, len);
    struct node_msg m = {.type = NODE_MSG_SYNC_REFUSED, .a = push->a, .b = push->b, .data = buf,
                         .len = 4 + len};
    node_send(n, to, &m);
}

static int central_message(struct node *n, const char *from, const struct node_msg *m)
{
    struct offline_state *o = n->offline;
    if (m->type != NODE_MSG_SYNC_PUSH || !is_local(n, from)) {
        o->strays++;
        node_trace(n, "%s from %s ignored: central takes pushes from its locals only",
                   node_msg_type_name(m->type), from);
        return 0;
    }
    struct shop_sync_result r;
    int err = shop_sync_apply_central(n->shop, from, m->data, m->len, &r);
    if (err == -ECANCELED)
        return err;
    if (err) {
        o->refused++;
        node_trace(n, "cannot apply %s's push %lld: %s -> answers with the error", from,
                   (long long)m->b, shop_errmsg(n->shop));
        refuse(n, from, m, err);
        return 0;
    }
    assert(r.applied + r.unchanged == r.count);
    o->applied++;
    o->rows_applied += r.applied;
    o->rows_unchanged += r.unchanged;
    o->last_apply_us = node_wall_us(n);
    node_trace(n, "applied %s's push %lld: accepted %u row(s) (%u new values, %u already held)",
               from, (long long)m->b, r.count, r.applied, r.unchanged);
    uint8_t buf[SHOP_SYNC_REPLY_BYTES_MAX];
    struct node_msg a = {.type = NODE_MSG_SYNC_ACCEPTED, .a = m->a, .b = m->b, .data = buf,
                         .len = shop_sync_reply_encode(&r, buf)};
    node_send(n, from, &a);
    return 0;
}

static void central_view(const struct node *n, struct node_view *out)
{
    (void)n;
    out->writable = false; /* an aggregate: the locals take the writes */
    out->writer[0] = '\0';
    out->position = 0;
}

static void central_status(const struct node *n, struct node_status *out)
{
    const struct offline_state *o = n->offline;
    struct node_offline_status *s = &out->offline;
    s->pushes_applied = o->applied;
    s->pushes_refused = o->refused;
    s->rows_applied = o->rows_applied;
    s->rows_unchanged = o->rows_unchanged;
    s->strays = o->strays;
    s->last_apply_us = o->last_apply_us;
}

const struct node_ops node_offline_central_ops = {
    .message = central_message,
    .view = central_view,
    .status = central_status,
    .release = offline_release,
};
