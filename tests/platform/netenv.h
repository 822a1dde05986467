/*
 * netenv.h — an in-memory, deterministic host for the replication core's
 * tests (the idea of canonical/raft's raft_fixture): a virtual clock, one
 * event queue of messages and timers, and a fake network whose directed
 * links delay, drop, duplicate and reorder messages from a seeded
 * generator, or are cut. Each node runs a real shop (a scratch SQLite file)
 * and a real node of platform/node.h. Tests only.
 *
 * An event that returns -ECANCELED (a crash point fired in the node's shop)
 * kills that node as netenv_crash does (crash_points counts them); any other
 * non-zero return fails the test.
 */
#ifndef FAULTDRILL_NETENV_H
#define FAULTDRILL_NETENV_H

#include <stdbool.h>
#include <stdint.h>

#include "platform/platform.h"

#define NETENV_NODES_MAX 8
#define NETENV_EVENTS_MAX 200000

struct netenv_link {
    int64_t delay_us;    /* fixed one-way delay */
    int64_t jitter_us;   /* plus 0..jitter_us, uniform */
    double drop, duplicate, reorder; /* probabilities per message */
    bool cut;            /* a partition: everything dropped */
};

struct netenv_node {
    char name[NODE_NAME_MAX];
    char path[300];
    struct shop_config cfg;
    struct node_config ncfg;
    char peer[NODE_NAME_MAX];
    shop *shop;
    struct node *node;
    bool up;
    uint64_t writes;     /* acknowledged writes made through netenv_write */
};

struct netenv_event {
    int64_t at_us;
    uint64_t order;      /* ties: first queued, first out */
    bool is_timer;
    int to, from, timer;
    uint8_t *data;
    size_t len;
};

struct netenv {
    char dir[256];
    int64_t now_us;
    uint64_t rng;
    uint64_t order;
    struct platform_env env;
    size_t node_count;
    struct netenv_node nodes[NETENV_NODES_MAX];
    struct netenv_link links[NETENV_NODES_MAX][NETENV_NODES_MAX];
    size_t event_count;
    struct netenv_event *events;   /* NETENV_EVENTS_MAX, unordered */
    uint64_t sent, delivered, dropped, duplicated, timers;
    int64_t last_wall_us;
    size_t trace_len;
    char trace[1 << 16];           /* the last lines the nodes traced (a ring of sorts) */
    bool check_invariants;         /* after every event (default on) */
    /* set before netenv_add: */
    bool queue_separate;           /* offline locals: queue=separate (default same) */
    const char *(*vfs)(const char *node); /* the SQLite VFS of a node's shop; NULL: default */
    uint64_t crash_points;         /* nodes killed by a crash point in an event */
};

/* A scratch directory, the clock at 0, the generator seeded. */
void netenv_init(struct netenv *t, uint64_t seed);
/* Destroys every node, closes every shop, frees the queue, removes the files. */
void netenv_release(struct netenv *t);

/* Adds a node: opens its shop (outbox on for a primary unless outbox_off,
 * and for a cluster leader; a sync queue for an offline local; none for a
 * registry or a client) and creates and starts its node. ncfg's name, role,
 * peer, shop are set
 * from the arguments; the rest of ncfg (may be NULL) is taken as given. */
int netenv_add(struct netenv *t, const char *name, enum node_role role, const char *peer,
               const struct node_config *ncfg);
int netenv_index(const struct netenv *t, const char *name);
struct netenv_node *netenv_node(struct netenv *t, const char *name);
struct netenv_link *netenv_link(struct netenv *t, const char *from, const char *to);
/* Cuts (or heals) both directions between a and b. */
void netenv_partition(struct netenv *t, const char *a, const char *b, bool cut);

/* One client write on node `name` (a new user); node_on_commit after it. */
int netenv_write(struct netenv *t, const char *name);
/* Runs events up to the clock reaching at_us (the clock ends there). */
void netenv_run_until(struct netenv *t, int64_t at_us);
/* Runs for `us` more. */
void netenv_run(struct netenv *t, int64_t us);
/* Runs until no message is in flight and no wake is due before limit_us
 * from now; returns true when it went quiet. */
bool netenv_run_quiet(struct netenv *t, int64_t limit_us);

/* The node's process dies (its shop abandoned, its events dropped). */
void netenv_crash(struct netenv *t, const char *name);
/* It comes back: the shop reopened, node_restarted, its peers told. */
void netenv_restart(struct netenv *t, const char *name);

struct node_status netenv_status(struct netenv *t, const char *name);
/* Whether the two nodes' shops hold the same data. */
bool netenv_same_data(struct netenv *t, const char *a, const char *b);

#endif
