/*
 * live_cluster.c — run --live of topology cluster: the drill's clients are the
 * platform's client nodes (NODE_CLIENT), one per client, hosted here exactly as
 * sim/cluster.c hosts them in the simulator: node_client_pick names the replica
 * and the session a request carries, node_client_done hears how it ended. What
 * differs is the carrier: a client node's messages to the registry go over
 * serve's transport (POST /api/node, HMAC-SHA256 under the cluster secret, the
 * link points net/clientN/registry/...), and the registry's answers arrive at a
 * listener of the runner's on loopback, checked as serve checks a node message
 * (the MAC, the addressee, the counter's freshness and order) before the client
 * node sees them. Timers fire on a thread of their own on CLOCK_MONOTONIC.
 *
 * Every call on a client node is made under the run's lock (a node is
 * single-threaded); the transport's threads only carry bytes.
 */
#define _GNU_SOURCE
#include <civetweb.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/nodes.h"
#include "sim/live.h"

#define CLIENT_TIMERS_MAX 8
#define CLIENT_TICK_US 5000          /* the timer thread's period */
#define CLIENT_BODY_MAX (64u << 10)  /* a registry answer is a few names */

struct client_timer {
    int timer;
    int64_t at_us;
};

struct live_clients {
    struct sim *s;
    pthread_mutex_t *lock;
    struct auth_key key;
    struct mg_context *mg;
    bool mg_library;
    char url[64];
    int count;
    struct node *nodes[DRILL_CLIENTS_MAX + 1];
    struct wire *wires[DRILL_CLIENTS_MAX + 1];
    struct client_timer timers[DRILL_CLIENTS_MAX + 1][CLIENT_TIMERS_MAX];
    size_t timer_count[DRILL_CLIENTS_MAX + 1];
    uint64_t last_counter[DRILL_CLIENTS_MAX + 1]; /* the registry's, per addressee */
    struct platform_env env;
    live_took_fn took;
    void *took_ctx;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    uint64_t answers, refused;
};

static int64_t clock_us(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int64_t env_now(void *ctx)
{
    (void)ctx;
    return clock_us(CLOCK_REALTIME);
}

static int64_t env_mono(void *ctx)
{
    (void)ctx;
    return clock_us(CLOCK_MONOTONIC);
}

/* "client7" -> 7; 0: not one of ours. */
static int client_of(const struct live_clients *lc, const char *name)
{
    int c = 0;
    char rest = 0;
    if (name == NULL || sscanf(name, "client%d%c", &c, &rest) != 1 || c < 1 || c > lc->count)
        return 0;
    return c;
}

/* Under the lock (a node's call): the message goes out on the client's link. */
static void env_send(void *ctx, const char *from, const char *to, const void *msg, size_t len)
{
    struct live_clients *lc = ctx;
    int c = client_of(lc, from);
    if (c > 0 && lc->wires[c] != NULL)
        (void)wire_send(lc->wires[c], to, msg, len, 0); /* a refused send is a lost message */
}

static void env_timer(void *ctx, const char *node, int timer, int64_t at_us)
{
    struct live_clients *lc = ctx;
    int c = client_of(lc, node);
    if (c == 0)
        return;
    struct client_timer *t = lc->timers[c];
    for (size_t i = 0; i < lc->timer_count[c]; i++)
        if (t[i].timer == timer && t[i].at_us == at_us)
            return;
    if (lc->timer_count[c] == CLIENT_TIMERS_MAX) {
        /* full: the latest wake gives way (the node asks again when woken) */
        size_t latest = 0;
        for (size_t i = 1; i < CLIENT_TIMERS_MAX; i++)
            if (t[i].at_us > t[latest].at_us)
                latest = i;
        if (t[latest].at_us <= at_us)
            return;
        t[latest] = t[--lc->timer_count[c]];
    }
    t[lc->timer_count[c]++] = (struct client_timer){timer, at_us};
}

static void env_trace(void *ctx, const char *node, const char *text)
{
    struct live_clients *lc = ctx;
    world_trace(lc->s, node, "%s", text);
}

/* ---- the registry's answers ------------------------------------------------ */

static int refuse(struct mg_connection *conn, struct live_clients *lc, const char *why)
{
    pthread_mutex_lock(lc->lock);
    lc->refused++;
    pthread_mutex_unlock(lc->lock);
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"error\":\"refused\",\"detail\":\"%s\"}", why);
    mg_printf(conn,
              "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
              "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
              n, body);
    return 401;
}

/* POST /api/node: a node message to one of the clients, checked as serve checks one. */
static int on_request(struct mg_connection *conn, void *arg)
{
    struct live_clients *lc = arg;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "POST") != 0 || ri->content_length < 0 ||
        ri->content_length > (long long)CLIENT_BODY_MAX)
        return refuse(conn, lc, "a node message is a POST with a body of known length");
    size_t len = (size_t)ri->content_length;
    uint8_t *body = malloc(len + 1);
    size_t got = 0;
    while (body != NULL && got < len) {
        int r = mg_read(conn, body + got, len - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (body == NULL || got < len) {
        free(body);
        return refuse(conn, lc, "the body did not arrive");
    }
    const char *from = mg_get_header(conn, WIRE_FROM_HEADER);
    const char *to = mg_get_header(conn, WIRE_TO_HEADER);
    const char *counter_text = mg_get_header(conn, WIRE_COUNTER_HEADER);
    const char *mac = mg_get_header(conn, WIRE_MAC_HEADER);
    const char *reply_to = mg_get_header(conn, WIRE_REPLY_TO_HEADER);
    char *end = NULL;
    unsigned long long counter = counter_text != NULL ? strtoull(counter_text, &end, 10) : 0;
    int c = client_of(lc, to);
    char expect[AUTH_MAC_HEX + 1];
    if (from == NULL || mac == NULL || end == NULL || *end != '\0' || c == 0 ||
        !faults_is_node_name(from)) {
        free(body);
        return refuse(conn, lc, "malformed sender, receiver or counter");
    }
    auth_mac_message(&lc->key, from, to, counter, reply_to, body, len, expect);
    int64_t skew = (int64_t)counter - clock_us(CLOCK_REALTIME);
    if (!auth_mac_equal(mac, expect) || strcmp(from, "registry") != 0 ||
        skew > WIRE_FRESH_US || skew < -WIRE_FRESH_US) {
        free(body);
        return refuse(conn, lc, "not an authentic, fresh message of the registry");
    }
    /* an answer's size, as the platform names it (a host never decodes a message) */
    char what[96] = "";
    long long listed = -1;
    node_msg_describe(body, len, what, sizeof(what));
    if (sscanf(what, "replicas (%lld listed)", &listed) != 1)
        listed = -1;
    struct node_status *st = calloc(2, sizeof(*st)); /* large: not on a worker's stack */
    pthread_mutex_lock(lc->lock);
    bool fresh = counter > lc->last_counter[c];
    if (fresh) {
        lc->last_counter[c] = counter;
        if (st != NULL)
            node_status(lc->nodes[c], &st[0]);
        (void)node_on_message(lc->nodes[c], from, body, len);
        if (st != NULL && node_status(lc->nodes[c], &st[1]) == 0 && listed >= 0) {
            bool took = st[1].cluster.registry_answers > st[0].cluster.registry_answers;
            lc->answers += took; /* its list is the registry's now */
            if (lc->took != NULL)
                lc->took(lc->took_ctx, c, (int)listed, st[1].cluster.known_mask, took);
        }
    }
    pthread_mutex_unlock(lc->lock);
    free(st);
    free(body);
    if (!fresh)
        return refuse(conn, lc, "a replay");
    auth_mac_reply(&lc->key, from, to, counter, 200, "", 0, expect);
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" WIRE_MAC_HEADER ": %s\r\n\r\n", expect);
    return 200;
}

/* ---- timers ---------------------------------------------------------------- */

static void *timer_main(void *arg)
{
    struct live_clients *lc = arg;
    while (!atomic_load(&lc->stop)) {
        pthread_mutex_lock(lc->lock);
        int64_t now = clock_us(CLOCK_MONOTONIC);
        for (int c = 1; c <= lc->count; c++) {
            for (size_t i = 0; i < lc->timer_count[c];) {
                struct client_timer t = lc->timers[c][i];
                if (t.at_us > now) {
                    i++;
                    continue;
                }
                lc->timers[c][i] = lc->timers[c][--lc->timer_count[c]];
                (void)node_on_timer(lc->nodes[c], t.timer);
            }
        }
        pthread_mutex_unlock(lc->lock);
        struct timespec d = {.tv_sec = 0, .tv_nsec = CLIENT_TICK_US * 1000L};
        nanosleep(&d, NULL);
    }
    return NULL;
}

/* ---- life ------------------------------------------------------------------ */

int live_clients_start(struct sim *s, pthread_mutex_t *lock, const char *secret_file,
                       const char *registry_url, live_took_fn took, void *took_ctx,
                       struct live_clients **out, char *msg, size_t len)
{
    struct live_clients *lc = calloc(1, sizeof(*lc));
    if (lc == NULL) {
        snprintf(msg, len, "out of memory");
        return -ENOMEM;
    }
    lc->s = s;
    lc->lock = lock;
    lc->count = s->drill->clients < DRILL_CLIENTS_MAX ? s->drill->clients : DRILL_CLIENTS_MAX;
    lc->env = s->env;
    lc->env.ctx = lc;
    lc->env.now_us = env_now;
    lc->env.mono_us = env_mono;
    lc->env.send = env_send;
    lc->env.timer = env_timer;
    lc->env.trace = env_trace;
    lc->env.crash = NULL;
    lc->took = took;
    lc->took_ctx = took_ctx;
    *out = lc;
    char why[256] = "";
    int err = auth_secret_load(secret_file, false, &lc->key, why, sizeof(why));
    if (err) {
        snprintf(msg, len, "the cluster secret: %s", why);
        return err;
    }
    mg_init_library(0);
    lc->mg_library = true;
    const char *options[] = {"listening_ports", "127.0.0.1:0", "num_threads", "4",
                             "enable_keep_alive", "yes", NULL};
    lc->mg = mg_start(NULL, NULL, options);
    struct mg_server_port sp[1];
    if (lc->mg == NULL || mg_get_server_ports(lc->mg, 1, sp) != 1) {
        snprintf(msg, len, "the clients' listener for the registry's answers could not start");
        return -EADDRINUSE;
    }
    mg_set_request_handler(lc->mg, "/api/node$", on_request, lc);
    snprintf(lc->url, sizeof(lc->url), "http://127.0.0.1:%d", sp[0].port);
    int replicas = s->drill->topology.replicas;
    char names[DRILL_REPLICAS_MAX][FAULTS_NODE_MAX];
    const char *peers[DRILL_REPLICAS_MAX];
    for (int r = 0; r < replicas && r < DRILL_REPLICAS_MAX; r++) {
        snprintf(names[r], sizeof(names[r]), "replica%d", r + 1);
        peers[r] = names[r];
    }
    pthread_mutex_lock(lock);
    for (int c = 1; c <= lc->count && !err; c++) {
        char name[NODE_NAME_MAX];
        snprintf(name, sizeof(name), "client%d", c);
        err = wire_create(name, &lc->key, &lc->wires[c]);
        if (!err)
            err = wire_set_peer(lc->wires[c], "registry", registry_url);
        if (err) {
            snprintf(msg, len, "cannot make %s's link to the registry: %s", name, strerror(-err));
            break;
        }
        wire_set_self_url(lc->wires[c], lc->url);
        struct node_config cfg = {.name = name, .role = NODE_CLIENT, .peer = "registry",
                                  .peers = peers, .peer_count = (size_t)replicas};
        char emsg[SHOP_ERRMSG_MAX];
        err = node_create(&cfg, &lc->env, &lc->nodes[c], emsg);
        if (err) {
            snprintf(msg, len, "%s: %s", name, emsg);
            break;
        }
        err = node_start(lc->nodes[c]);
        if (err)
            snprintf(msg, len, "%s did not start: %s", name, platform_strerror(err));
    }
    pthread_mutex_unlock(lock);
    if (!err) {
        err = -pthread_create(&lc->thread, NULL, timer_main, lc);
        lc->thread_started = err == 0;
        if (err)
            snprintf(msg, len, "cannot start the clients' timers: %s", strerror(-err));
    }
    return err;
}

int live_clients_pick(struct live_clients *lc, int client, struct node_pick *pick)
{
    if (client < 1 || client > lc->count || lc->nodes[client] == NULL)
        return -EINVAL;
    return node_client_pick(lc->nodes[client], pick);
}

void live_clients_done(struct live_clients *lc, int client, const char *replica, bool answered,
                       int64_t position)
{
    if (client >= 1 && client <= lc->count && lc->nodes[client] != NULL)
        node_client_done(lc->nodes[client], replica, answered, position);
}

void live_clients_counts(struct live_clients *lc, uint64_t *answers, uint64_t *refused)
{
    *answers = lc->answers;
    *refused = lc->refused;
}

int live_registry_senders_max(void)
{
    return WIRE_PEERS_MAX;
}

void live_clients_stop(struct live_clients *lc)
{
    if (lc == NULL)
        return;
    atomic_store(&lc->stop, true);
    if (lc->thread_started)
        pthread_join(lc->thread, NULL);
    if (lc->mg != NULL)
        mg_stop(lc->mg); /* no answer arrives from now on */
    if (lc->mg_library)
        mg_exit_library();
    for (int c = 1; c <= lc->count; c++)
        wire_free(lc->wires[c]);
    pthread_mutex_lock(lc->lock);
    for (int c = 1; c <= lc->count; c++)
        node_destroy(lc->nodes[c]);
    pthread_mutex_unlock(lc->lock);
    memset(&lc->key, 0, sizeof(lc->key));
    free(lc);
}
