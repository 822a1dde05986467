/*
 * lb.c — a client's round-robin balancer over the cluster's replicas: the
 * registry's last good answer, replicas resting after a timeout, strict
 * rotation over what is left; and the check that a history of picks was
 * balanced (the lb-balanced invariant). Pure: no network, no clock, no shop.
 * Part of libsim; used by cluster.c.
 */
#include <assert.h>
#include <string.h>

#include "sim/cluster.h"

static uint32_t all_mask(int replicas)
{
    return replicas >= 32 ? UINT32_MAX : (UINT32_C(1) << replicas) - 1;
}

void lb_init(struct lb *lb, int replicas)
{
    assert(replicas >= 1 && replicas <= LB_REPLICAS_MAX);
    memset(lb, 0, sizeof(*lb));
    lb->replicas = replicas;
    lb->known_mask = all_mask(replicas);
    lb->known_at_us = -1;
    lb->last = -1;
}

void lb_set_known(struct lb *lb, uint32_t mask, int64_t now_us)
{
    lb->known_mask = mask & all_mask(lb->replicas);
    lb->known_at_us = now_us;
}

void lb_skip(struct lb *lb, int r, int64_t until_us)
{
    assert(r >= 0 && r < lb->replicas);
    if (until_us > lb->skip_until_us[r])
        lb->skip_until_us[r] = until_us;
}

uint32_t lb_healthy(const struct lb *lb, int64_t now_us)
{
    uint32_t healthy = 0;
    for (int r = 0; r < lb->replicas; r++)
        if ((lb->known_mask >> r & 1) && lb->skip_until_us[r] <= now_us)
            healthy |= UINT32_C(1) << r;
    if (healthy == 0)
        healthy = lb->known_mask;
    if (healthy == 0)
        healthy = all_mask(lb->replicas);
    return healthy;
}

int lb_pick(struct lb *lb, int64_t now_us, uint32_t *mask)
{
    uint32_t healthy = lb_healthy(lb, now_us);
    assert(healthy != 0);
    *mask = healthy;
    for (int i = 1; i <= lb->replicas; i++) {
        int r = (lb->last + i) % lb->replicas; /* last >= -1, i >= 1 */
        if (healthy >> r & 1) {
            lb->last = r;
            return r;
        }
    }
    assert(!"a non-empty healthy set has a member");
    return 0;
}

/* Checks one run of picks [first, end) made from `mask`. */
static bool run_balanced(const uint32_t *masks, const int *picks, size_t first, size_t end,
                         struct lb_imbalance *out)
{
    uint32_t count[LB_REPLICAS_MAX] = {0};
    uint32_t mask = masks[first];
    for (size_t i = first; i < end; i++) {
        int r = picks[i];
        if (r < 0 || r >= LB_REPLICAS_MAX || !(mask >> r & 1)) {
            if (out != NULL)
                *out = (struct lb_imbalance){.first = first, .last = i, .mask = mask,
                                             .outside = true, .most = r, .least = r};
            return false;
        }
        count[r]++;
    }
    int most = -1, least = -1;
    for (int r = 0; r < LB_REPLICAS_MAX; r++) {
        if (!(mask >> r & 1))
            continue;
        if (most < 0 || count[r] > count[most])
            most = r;
        if (least < 0 || count[r] < count[least])
            least = r;
    }
    if (most < 0 || count[most] - count[least] <= 1)
        return true;
    if (out != NULL)
        *out = (struct lb_imbalance){.first = first, .last = end - 1, .mask = mask,
                                     .most = most, .least = least,
                                     .most_count = count[most], .least_count = count[least]};
    return false;
}

bool lb_balanced(const uint32_t *masks, const int *picks, size_t n, struct lb_imbalance *out)
{
    size_t first = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && masks[i] == masks[first])
            continue;
        if (first < n && !run_balanced(masks, picks, first, i, out))
            return false;
        first = i;
    }
    return true;
}
