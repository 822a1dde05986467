/*
 * queue.c — the simulator's event queue: a binary min-heap ordered by
 * (time, insertion sequence), so events due at the same microsecond fire in
 * the order they were queued (libuv's timer rule) and a run never depends on
 * heap layout. Depends on nothing but libc.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "sim/sim.h"

static bool is_before(const struct sim_event *x, const struct sim_event *y)
{
    return x->at_us < y->at_us || (x->at_us == y->at_us && x->seq < y->seq);
}

static void swap(struct sim_event *x, struct sim_event *y)
{
    struct sim_event t = *x;
    *x = *y;
    *y = t;
}

int sim_queue_push(struct sim_queue *q, int64_t at_us, enum sim_event_type type, int a,
                   int64_t b)
{
    assert(at_us >= 0);
    if (q->count == SIM_EVENTS_MAX)
        return -E2BIG;
    if (q->count == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 1024;
        struct sim_event *grown = realloc(q->heap, cap * sizeof(*grown));
        if (grown == NULL)
            return -ENOMEM;
        q->heap = grown;
        q->cap = cap;
    }
    size_t i = q->count++;
    q->heap[i] = (struct sim_event){at_us, q->next_seq++, type, a, b};
    while (i > 0 && is_before(&q->heap[i], &q->heap[(i - 1) / 2])) {
        swap(&q->heap[i], &q->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    return 0;
}

bool sim_queue_pop(struct sim_queue *q, struct sim_event *out)
{
    if (q->count == 0)
        return false;
    *out = q->heap[0];
    q->heap[0] = q->heap[--q->count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->count && is_before(&q->heap[l], &q->heap[m]))
            m = l;
        if (r < q->count && is_before(&q->heap[r], &q->heap[m]))
            m = r;
        if (m == i)
            break;
        swap(&q->heap[i], &q->heap[m]);
        i = m;
    }
    return true;
}

void sim_queue_release(struct sim_queue *q)
{
    free(q->heap);
    q->heap = NULL;
    q->count = q->cap = 0;
}
