/*
 * lb.c — the lb-balanced check over a history of picks: within each run of
 * picks made from one healthy set, the replicas of the set were picked
 * evenly (within one) and never outside it. The balancer itself is the
 * platform's client role (platform/registry.c). Pure. Part of libsim; used
 * by cluster.c.
 */
#include <stdbool.h>

#include "sim/cluster.h"

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
