/*
 * writer.c — group commit: one thread owns the only writable shop. Request
 * threads queue a write job and wait on their own semaphore; the writer
 * takes every queued job (up to SERVE_GROUP_MAX) and runs them all inside
 * one shop_group call: one transaction, one fdatasync per copy (both copies
 * at once through the host's parallel hook), one mirrored change. Each job
 * has its own savepoint, so a refused order (insufficient stock) leaves
 * nothing and the others commit. Only when the group has committed on every
 * copy it must are the jobs woken with their results; if the group fails,
 * every job that had succeeded inside gets the group's error instead (its
 * write was not acknowledged). While requests wait, more queue up, so under
 * load the groups grow by themselves and the syncs are shared.
 *
 * After each group (and every SERVE_TICK_MS when idle) the writer
 * publishes the mirror's status for /mirror/status and for the readers
 * (which copy to read). A mirror out of sync repairs itself when the
 * platform says (shop_mirror_next_wake / shop_mirror_tick): the writer only
 * wakes at that time and fires it, so a healed disk catches up without
 * waiting for a write, on the same schedule as in the simulator.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "serve/internal.h"

/* Runs one job on s (inside the group); the result goes into the job. */
static int64_t job_run(shop *s, struct write_job *j)
{
    switch (j->kind) {
    case JOB_PRODUCT_CREATE:
        return shop_product_create(s, &j->product);
    case JOB_PRODUCT_UPDATE:
        return shop_product_update(s, &j->product);
    case JOB_PRODUCT_DELETE:
        return shop_product_delete(s, j->id);
    case JOB_USER_CREATE:
        return shop_user_create(s, j->name, j->email);
    case JOB_USER_UPDATE:
        return shop_user_update(s, j->email, j->name, j->new_email);
    case JOB_ORDER_CREATE:
        return shop_order_create(s, j->id, j->lines, j->line_count, j->order);
    case JOB_ORDER_STATUS:
        return shop_order_set_status(s, j->id, j->status);
    case JOB_CART_ADD:
        return shop_cart_add(s, j->id, j->id2, j->quantity);
    case JOB_CART_SET:
        return shop_cart_set(s, j->id, j->id2, j->quantity);
    case JOB_CART_REMOVE:
        return shop_cart_remove(s, j->id, j->id2);
    case JOB_CHECKOUT:
        return shop_checkout(s, j->id, j->order);
    case JOB_CALL:
        break; /* never inside a group: see group_commit */
    }
    assert(!"unknown job kind");
    return -EINVAL;
}

struct group {
    struct write_job *jobs[SERVE_GROUP_MAX];
    size_t count;
};

static int group_fn(shop *s, void *arg)
{
    struct group *g = arg;
    for (size_t i = 0; i < g->count; i++) {
        struct write_job *j = g->jobs[i];
        if (j->kind == JOB_CALL)
            continue;
        j->rc = job_run(s, j);
        if (j->rc < 0)
            snprintf(j->detail, sizeof(j->detail), "%s", shop_errmsg(s));
    }
    return 0;
}

/*
 * The requests' writes in one transaction, then each writer_call on its
 * own: a call does its own transactions (applying a batch, marking sync
 * rows), which cannot nest in a group.
 */
static void group_commit(struct writer *w, struct group *g)
{
    size_t writes = 0;
    for (size_t i = 0; i < g->count; i++)
        writes += g->jobs[i]->kind != JOB_CALL;
    int err = writes > 0 ? shop_group(w->shop, group_fn, g) : 0;
    for (size_t i = 0; err != 0 && i < g->count; i++) {
        /* Not acknowledged: whatever succeeded inside reports the group's error. */
        struct write_job *j = g->jobs[i];
        if (j->kind != JOB_CALL && j->rc >= 0) {
            j->rc = err;
            snprintf(j->detail, sizeof(j->detail), "%s", shop_errmsg(w->shop));
        }
    }
    /* a replication node learns of the commit before anything else runs */
    if (err == 0 && writes > 0 && w->on_commit != NULL)
        w->on_commit(w->on_commit_ctx, w->shop);
    for (size_t i = 0; i < g->count; i++) {
        struct write_job *j = g->jobs[i];
        if (j->kind == JOB_CALL)
            j->rc = j->call(w->shop, j->call_arg);
    }
    atomic_store(&w->last_seq, shop_last_seq(w->shop));
}

void writer_set_on_commit(struct writer *w, void (*fn)(void *ctx, shop *s), void *ctx)
{
    w->on_commit = fn;
    w->on_commit_ctx = ctx;
}

static bool status_changed(const struct serve_status *a, const struct serve_status *b)
{
    return a->mirror.state != b->mirror.state || a->mirror.seq_primary != b->mirror.seq_primary ||
           a->mirror.seq_mirror != b->mirror.seq_mirror || a->lead_copy != b->lead_copy;
}

static void publish(struct writer *w, uint64_t writes)
{
    struct serve_status st;
    memset(&st, 0, sizeof(st));
    st.mirrored = shop_mirror_status(w->shop, &st.mirror) == 0;
    if (st.mirrored) {
        snprintf(st.lead, sizeof(st.lead), "%s", st.mirror.lead ? st.mirror.lead : "");
        snprintf(st.behind, sizeof(st.behind), "%s", st.mirror.behind ? st.mirror.behind : "");
        st.lead_copy = strcmp(st.lead, "mirror") == 0 ? 1 : 0;
    } else {
        snprintf(st.lead, sizeof(st.lead), "primary");
    }
    /* as mirror_read does: fall back only to a copy holding every write */
    bool same = st.mirrored && st.mirror.seq_primary == st.mirror.seq_mirror;
    unsigned hint = (st.lead_copy == 1 ? READ_HINT_MIRROR_LEADS : 0) |
                    (same ? READ_HINT_FALLBACK : 0);
    pthread_mutex_lock(&w->status_lock);
    bool changed = writes > 0 || status_changed(&st, &w->status);
    st.groups = w->status.groups + (writes > 0);
    st.writes = w->status.writes + writes;
    /* before any job of the group wakes: a read that starts after an
     * acknowledgement is tagged at or above the write's position */
    int64_t seq = atomic_load(&w->last_seq);
    int64_t one = seq > w->outbox_base ? seq : w->outbox_base;
    if (one == 0)
        one = (int64_t)st.groups; /* nothing numbers changes: count the groups */
    atomic_store(&w->position[0], st.mirrored ? st.mirror.seq_primary : one);
    atomic_store(&w->position[1], st.mirrored ? st.mirror.seq_mirror : one);
    w->group_position = st.mirrored ? shop_last_seq(w->shop) : one;
    w->status = st;
    w->status.mirror.lead = w->status.lead;
    w->status.mirror.behind = w->status.behind[0] ? w->status.behind : NULL;
    pthread_mutex_unlock(&w->status_lock);
    atomic_store(&w->read_hint, hint);
    if (changed)
        atomic_fetch_add(&w->generation, 1);
}

/* The platform's self-repair of the mirror, when it is due (it decides). */
static void tick(struct writer *w)
{
    (void)shop_mirror_tick(w->shop);
}

/* How long the idle writer may sleep: until the mirror's repair is due, at most a tick. */
static int64_t idle_wait_us(struct writer *w)
{
    int64_t wait = (int64_t)SERVE_TICK_MS * 1000;
    int64_t at = shop_mirror_next_wake(w->shop);
    if (at >= 0 && at - host_mono_us() < wait)
        wait = at - host_mono_us() > 0 ? at - host_mono_us() : 0;
    return wait;
}

/* Waits for jobs; returns how many it took (0 on an idle tick or at stop). */
static size_t take(struct writer *w, struct group *g)
{
    int64_t wait = idle_wait_us(w); /* the writer's own shop: read before the lock */
    pthread_mutex_lock(&w->lock);
    if (w->count == 0 && !w->stopping && wait > 0) {
        struct timespec until = host_deadline_after_us(wait);
        pthread_cond_timedwait(&w->wake, &w->lock, &until);
    }
    g->count = 0;
    while (w->count > 0 && g->count < SERVE_GROUP_MAX) {
        g->jobs[g->count++] = w->queue[w->head];
        w->head = (w->head + 1) % SERVE_QUEUE_MAX;
        w->count--;
    }
    pthread_mutex_unlock(&w->lock);
    return g->count;
}

static bool is_done(struct writer *w)
{
    pthread_mutex_lock(&w->lock);
    bool done = w->stopping && w->count == 0;
    pthread_mutex_unlock(&w->lock);
    return done;
}

/*
 * The group's jobs wake each other as a binary tree: the writer posts only
 * the first, and every woken job posts the next two (writer_submit). A
 * wake-up costs the poster an IPI in a VM; posting all of them took 9% of
 * the writer's time (perf), which is the one thread every write waits on.
 */
static void wake_group(struct group *g)
{
    for (size_t i = 0; i < g->count; i++) {
        g->jobs[i]->wake[0] = 2 * i + 1 < g->count ? g->jobs[2 * i + 1] : NULL;
        g->jobs[i]->wake[1] = 2 * i + 2 < g->count ? g->jobs[2 * i + 2] : NULL;
    }
    if (g->count > 0)
        sem_post(g->jobs[0]->done);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct group g;
    while (!is_done(w)) {
        size_t n = take(w, &g);
        if (n > 0)
            group_commit(w, &g);
        tick(w);
        publish(w, n);
        for (size_t i = 0; i < g.count; i++)
            g.jobs[i]->position = w->group_position;
        wake_group(&g);
    }
    return NULL;
}

int writer_start(struct writer *w, shop *s)
{
    memset(w, 0, sizeof(*w));
    atomic_init(&w->read_hint, 0);
    atomic_init(&w->generation, 0);
    atomic_init(&w->last_seq, shop_last_seq(s));
    struct shop_outbox_info info;
    w->outbox_base = shop_outbox_info(s, &info) == 0 ? info.head_seq : 0;
    w->shop = s;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (rc == 0)
        rc = pthread_mutex_init(&w->lock, NULL);
    if (rc == 0)
        rc = pthread_mutex_init(&w->status_lock, NULL);
    if (rc != 0)
        return -rc;
    publish(w, 0);
    rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc != 0)
        return -rc;
    w->started = true;
    return 0;
}

int writer_submit(struct writer *w, struct write_job *job)
{
    assert(job->done != NULL);
    job->rc = 0;
    job->detail[0] = '\0';
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        return -ESHUTDOWN;
    }
    if (w->count == SERVE_QUEUE_MAX) {
        pthread_mutex_unlock(&w->lock);
        return -EAGAIN;
    }
    w->queue[(w->head + w->count) % SERVE_QUEUE_MAX] = job;
    w->count++;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    while (sem_wait(job->done) != 0)
        assert(errno == EINTR);
    /* Copied first: a job's memory belongs to its thread once posted. */
    struct write_job *next[2] = {job->wake[0], job->wake[1]};
    for (size_t i = 0; i < 2; i++)
        if (next[i] != NULL)
            sem_post(next[i]->done);
    return 0;
}

int writer_call(struct writer *w, int (*fn)(shop *s, void *arg), void *arg)
{
    sem_t done;
    if (sem_init(&done, 0, 0) != 0)
        return -errno;
    struct write_job job = {.kind = JOB_CALL, .call = fn, .call_arg = arg, .done = &done};
    int rc = writer_submit(w, &job);
    sem_destroy(&done);
    return rc < 0 ? rc : (int)job.rc;
}

int64_t writer_last_seq(struct writer *w)
{
    return atomic_load(&w->last_seq);
}

int64_t writer_position(struct writer *w, int copy)
{
    return atomic_load(&w->position[copy == 1 ? 1 : 0]);
}

void writer_stop(struct writer *w)
{
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        w->started = false;
    }
    shop_close(w->shop);
    w->shop = NULL;
}

unsigned writer_read_hint(struct writer *w)
{
    return atomic_load(&w->read_hint);
}

uint64_t writer_generation(struct writer *w)
{
    return atomic_load(&w->generation);
}

void writer_get_status(struct writer *w, struct serve_status *out)
{
    pthread_mutex_lock(&w->status_lock);
    *out = w->status;
    out->mirror.lead = out->lead;
    out->mirror.behind = out->behind[0] ? out->behind : NULL;
    pthread_mutex_unlock(&w->status_lock);
}
