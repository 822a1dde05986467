/*
 * cluster.h — the simulated cluster's pure check, kept apart so it can be
 * tested without a run: whether a history of round-robin picks was
 * balanced (lb.c, the lb-balanced invariant). The balancer, the registry,
 * propagation and the read cache are the platform's (platform/node.h).
 * Private to libsim (cluster.c and its tests).
 */
#ifndef FAULTDRILL_SIM_CLUSTER_H
#define FAULTDRILL_SIM_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/drill.h"

#define LB_REPLICAS_MAX DRILL_REPLICAS_MAX

/* Where a sequence of picks is not balanced (lb_balanced). */
struct lb_imbalance {
    size_t first, last;     /* the run of picks with one healthy set: indexes */
    uint32_t mask;
    bool outside;           /* a pick outside its healthy set (at index `last`) */
    int most, least;        /* replicas with the most and the fewest picks */
    uint32_t most_count, least_count;
};

/*
 * Over each maximal run of consecutive picks made from the same healthy
 * set, the picks per replica of that set differ by at most one, and no pick
 * lies outside its set. picks[i] is 0-based, masks[i] its set. Returns true
 * when balanced; otherwise *out (may be NULL) says where.
 */
bool lb_balanced(const uint32_t *masks, const int *picks, size_t n, struct lb_imbalance *out);

#endif /* FAULTDRILL_SIM_CLUSTER_H */
