/*
 * testenv.h — what the platform's tests share: a scratch directory, a fake
 * host (a clock the test moves, a crash hook that records), and shops opened
 * over the fault VFS. Tests only; never linked into the product.
 */
#ifndef FAULTDRILL_TESTENV_H
#define FAULTDRILL_TESTENV_H

#include <stdbool.h>
#include <stdint.h>

#include "platform/platform.h"

struct testenv {
    char dir[256];
    char primary_path[300];
    char mirror_path[300];
    int64_t now_us;
    int crashes;
    char crashed_node[32];
    char crashed_point[64];
    bool kill_on_crash;       /* the real crash test: SIGKILL ourselves */
    struct platform_env env;
};

/* Makes a scratch directory and the env; registers the fault VFS of nodes
 * "primary" and "mirror" and starts libfaults with seed 1. */
void testenv_init(struct testenv *t);
/* Commits the mirror's two copies from two threads (the env's parallel hook),
 * as a real host does; without this they commit one after the other. */
void testenv_use_parallel(struct testenv *t);
/* Disarms every fault, unregisters the VFS, removes the directory. */
void testenv_release(struct testenv *t);

/* A config over the fault VFS; topology, policy, ack as given, sync FULL. */
struct shop_config testenv_config(struct testenv *t, enum shop_topology topo,
                                  enum mirror_policy policy, enum mirror_ack ack);
/* shop_open that must succeed (ck_assert with the message otherwise). */
shop *testenv_open(struct testenv *t, const struct shop_config *cfg);

/* Arms a point with p=1 and errno err (0: the catalog default), count (0: always). */
void testenv_arm(const char *name, int err, uint64_t count);

/* Seeds n products (stock 100, price 100+id cents) and one user; returns the user id. */
int64_t testenv_seed(shop *s, int products);

/* Digest of a copy (ck_assert on failure). */
void testenv_digest(shop *s, int copy, char hex[65]);

#endif
