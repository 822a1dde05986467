/*
 * cluster.h — the two pure pieces of the simulated cluster, kept apart so
 * they can be tested without a run: the client-side round-robin balancer
 * (lb.c) with its balance check, and a replica's read cache (cache.c).
 * Neither knows about the network, the shop or the clock: time comes in as
 * arguments. Private to libsim (cluster.c and its tests).
 */
#ifndef FAULTDRILL_SIM_CLUSTER_H
#define FAULTDRILL_SIM_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/drill.h"

/* ---- Round-robin load balancing (lb.c) -------------------------------- */

#define LB_REPLICAS_MAX DRILL_REPLICAS_MAX

/* One client's balancer: replicas are 0-based here, bit r of a mask. */
struct lb {
    int replicas;                          /* 1..LB_REPLICAS_MAX */
    uint32_t known_mask;                   /* the registry's last good answer */
    int64_t known_at_us;                   /* when it arrived (-1: the configured list) */
    int64_t skip_until_us[LB_REPLICAS_MAX];/* a replica that timed out rests until then */
    int last;                              /* the replica picked last, -1: none yet */
};

/* Starts with every replica known (the configured list), none skipped. */
void lb_init(struct lb *lb, int replicas);
/* The registry answered: these replicas are alive. */
void lb_set_known(struct lb *lb, uint32_t mask, int64_t now_us);
/* A request through replica r timed out: skip it until until_us. */
void lb_skip(struct lb *lb, int r, int64_t until_us);
/*
 * The replicas a pick chooses from now: the known ones not resting; when
 * every known one rests, the known ones; when none is known, all of them
 * (a client that knows nothing still tries).
 */
uint32_t lb_healthy(const struct lb *lb, int64_t now_us);
/* The next replica after the last one picked among lb_healthy(now), which
 * *mask receives; strict rotation, so a fixed set is shared evenly. */
int lb_pick(struct lb *lb, int64_t now_us, uint32_t *mask);

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

/* ---- A replica's read cache (cache.c) --------------------------------- */

#define CACHE_ENTRIES_MAX 128  /* entries one replica keeps */

/*
 * An entry answers one query: (kind, arg) is the operation and its key
 * (order-status: the user; browse: the product; search: the word). It holds
 * the answer (the order ids an order-status read saw) and the replica
 * position it is valid at.
 */
struct cache_entry {
    bool used;
    int kind;
    int64_t arg;
    int64_t position;
    int64_t created_us;
    uint64_t stamp;         /* insertion order: the oldest is evicted first */
    uint32_t seen_count;
    int64_t *seen;          /* malloc'ed, seen_count ids */
};

struct cache {
    int64_t ttl_us;
    size_t max_entries;     /* <= CACHE_ENTRIES_MAX */
    uint64_t next_stamp;
    uint64_t hits, misses, expired, invalidated, evicted;
    struct cache_entry e[CACHE_ENTRIES_MAX];
};

void cache_init(struct cache *c, int64_t ttl_us, size_t max_entries);
/* Frees every entry's answer. The cache can be used again afterwards. */
void cache_release(struct cache *c);
/* The live entry for (kind, arg), or NULL (missing or older than the ttl,
 * which drops it). Counts a hit or a miss. */
const struct cache_entry *cache_get(struct cache *c, int kind, int64_t arg, int64_t now_us);
/* Stores (replaces) the answer for (kind, arg), evicting the oldest entry
 * when full: 0 or -ENOMEM (then the entry is simply not cached). */
int cache_put(struct cache *c, int kind, int64_t arg, int64_t position, int64_t now_us,
              const int64_t *seen, uint32_t seen_count);
/* Drops the entries of kind whose key is arg (any_arg: every key of kind);
 * returns how many. */
size_t cache_invalidate(struct cache *c, int kind, int64_t arg, bool any_arg);
/* The replica applied changes up to position and the surviving entries were
 * not touched by them: they are valid at position now. */
void cache_advance(struct cache *c, int64_t position);
/* How many entries are held. */
size_t cache_count(const struct cache *c);

#endif /* FAULTDRILL_SIM_CLUSTER_H */
