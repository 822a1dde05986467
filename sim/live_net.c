/*
 * live_net.c — a drill's network for `run --live`'s clients. In the
 * simulator every message, a client's request and its reply too, takes the
 * topology's latency= plus a draw in [0, jitter=] (runner.c). Live, the
 * node-to-node messages are delayed in their senders' transports (serve
 * --latency, --jitter); a client's request and reply are delayed here: its
 * thread waits one hop before sending and one after the answer, each drawn
 * from the client's own seeded generator. The reply collector the status
 * watcher and the stake players share (live_body) lives here too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/live_more.h"

void live_hops_init(struct live_hops *h, const struct drill_topology *t, uint64_t seed,
                    int client)
{
    char stream[32];
    snprintf(stream, sizeof(stream), "live/client%d/net", client);
    faults_rng_seed(&h->rng, seed, stream);
    h->latency_us = t->latency_us > 0 ? t->latency_us : 0;
    h->jitter_us = t->jitter_us > 0 ? t->jitter_us : 0;
}

int64_t live_hop(struct live_hops *h)
{
    int64_t us = h->latency_us;
    if (h->jitter_us > 0)
        us += (int64_t)faults_rng_below(&h->rng, (uint64_t)h->jitter_us + 1);
    if (us <= 0)
        return 0;
    struct timespec d = {.tv_sec = (time_t)(us / 1000000), .tv_nsec = (long)(us % 1000000) * 1000};
    while (nanosleep(&d, &d) != 0) {
    }
    return us;
}

/* ---- replies ------------------------------------------------------------ */

size_t live_body_collect(char *data, size_t size, size_t n, void *arg)
{
    struct live_body *b = arg;
    size_t len = size * n;
    if (b->len + len > b->max) {
        b->cut = true;
        return 0; /* libcurl fails the transfer */
    }
    char *grown = realloc(b->data, b->len + len + 1);
    if (grown == NULL)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

void live_body_reset(struct live_body *b)
{
    b->len = 0;
    b->cut = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}
