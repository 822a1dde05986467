/*
 * live.h — what run --live's files share (live.c plays the drill, live_cluster.c
 * hosts the cluster's client nodes).
 */
#ifndef FAULTDRILL_SIM_LIVE_H
#define FAULTDRILL_SIM_LIVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/world.h"

/*
 * The drill's clients of a cluster: one platform client node (NODE_CLIENT) per
 * client, hosted in the runner as the simulator hosts them (round robin over
 * what the registry lists, its last good answer while the registry is silent,
 * the session). Their messages to the registry go over POST /api/node with the
 * cluster secret's HMAC (serve's transport); the registry's answers come back to
 * a listener of the runner's on loopback. Every call on a client node is made
 * under `lock` (the run's lock).
 */
struct live_clients;

/* Under the lock: client c got a registry answer listing `count` replicas; afterwards its
 * node holds `kept` (bit i: replica i+1), which is the answer when it `took` it. */
typedef void (*live_took_fn)(void *ctx, int client, int count, uint32_t kept, bool took);

/* Starts the client nodes and their transport; 0, or -errno with msg. */
int live_clients_start(struct sim *s, pthread_mutex_t *lock, const char *secret_file,
                       const char *registry_url, live_took_fn took, void *took_ctx,
                       struct live_clients **out, char *msg, size_t len);
/* Under the lock: client c's pick (the replica's index among replica1..N). */
int live_clients_pick(struct live_clients *lc, int client, struct node_pick *pick);
/* Under the lock: how client c's request to `replica` ended (answered: a reply came;
 * position: what it reflected, -1: none). */
void live_clients_done(struct live_clients *lc, int client, const char *replica, bool answered,
                       int64_t position);
/* Under the lock: the registry's answers the clients took, and messages refused. */
void live_clients_counts(struct live_clients *lc, uint64_t *answers, uint64_t *refused);
/* How many nodes may send to the registry's process (serve keeps their links and counters). */
int live_registry_senders_max(void);
/* Not under the lock: stops the listener, the timers and the links; frees lc. */
void live_clients_stop(struct live_clients *lc);

#endif
