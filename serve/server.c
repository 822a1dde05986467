/*
 * server.c — `faultdrill serve`: its options, and the server's life. Start:
 * the data directory, the fault VFS of nodes primary and mirror, the shop
 * (recovery happens in shop_open), the demo catalog, the writer thread,
 * civetweb on 127.0.0.1 only, libfiu's remote control. Then the main thread
 * waits for SIGTERM/SIGINT (blocked in every other thread); stop: civetweb
 * stops accepting and finishes its requests (whose writes the writer still
 * commits), the writer drains its queue and closes the shop, exit 0.
 * Anything that keeps it from starting is one line on stderr and exit 3.
 */
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <fiu-control.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "platform/stake.h"
#include "serve/internal.h"

#ifndef FAULTDRILL_WEB_DIR
#define FAULTDRILL_WEB_DIR "platform/web"
#endif

#define SERVE_THREADS_MAX 4096
#define SERVE_PORT_MAX 65535
#define SERVE_STOP_POKES 40              /* wake-ups of civetweb's master thread... */
#define SERVE_STOP_POKE_NS 50000000L     /* ...50 ms apart */

static const char usage[] =
    "usage: faultdrill serve [--port N] [--data DIR] [--topology T] [--policy strict|degrade]\n"
    "                        [--ack both|early] [--sync full|normal]\n"
    "                        [--delay MS] [--outbox on|off] [--interval MS] [--retries N]\n"
    "                        [--queue same|separate]\n"
    "                        [--replicas N] [--cache on|naive|off] [--ttl MS]\n"
                        "                        [--propagate after-commit|before-commit]\n"
    "                        [--role NODE] [--peer NAME=URL]... [--secret-file FILE]\n"
    "                        [--latency DUR] [--jitter DUR] [--net-seed N]\n"
    "                        [--stake] [--stake-config SPEC]\n"
    "                        [--allow-faults] [--web DIR] [--seed-demo|--no-demo] [--threads N]\n"
    "                        [--client-cap N] [--request-timeout MS] [--keep-alive MS]\n"
    "\n"
    "The live shop on http://127.0.0.1:PORT/ : the REST API (DESIGN.md section 7,\n"
    "serve/API.md), the front end, and faults switched at run time.\n"
    "\n"
    "  --port N          listen on 127.0.0.1:N (default 3002; 0 picks a free port)\n"
    "  --data DIR        the databases (default ./shop-data): db.sqlite, and the\n"
    "                    second copy the topology asks for\n"
    "  --topology T      mirror (default): db.sqlite and db_mirror.sqlite, both\n"
    "                      committed before a write is acknowledged (nodes primary, mirror)\n"
    "                    single: db.sqlite alone (node primary)\n"
    "                    async: db.sqlite, shipped after --delay to the secondary, its\n"
    "                      own process (DIR/secondary/db_async.sqlite)\n"
    "                    offline: db.sqlite (node local), pushed every --interval to\n"
    "                      central, its own process (DIR/central/db_central.sqlite)\n"
    "                    cluster: the leader here, --replicas replicas and the registry,\n"
    "                      each its own process (DIR/replicaN/db.sqlite, DIR/registry);\n"
    "                      a replica forwards writes to the leader and holds a read until\n"
    "                      it caught up with the client's X-Faultdrill-Session\n"
    "                    'mirror async', 'mirror offline', 'mirror cluster': the same,\n"
    "                      with the primary's, the local's or the leader's disk mirrored\n"
    "                      (db_mirror.sqlite beside db.sqlite, GET /mirror/status)\n"
    "                    Nodes talk over POST /api/node, authenticated with HMAC-SHA256\n"
    "                    under the cluster secret (DIR/node.secret, made at first start)\n"
    "  --policy P        mirror: strict (default) refuses writes while either copy\n"
    "                    fails; degrade keeps serving on one copy, resyncs it on heal\n"
    "  --ack early       mirror: the naive mode, acknowledged once the primary alone\n"
    "                    committed (the default, both, waits for both copies)\n"
    "  --sync normal     PRAGMA synchronous = NORMAL instead of FULL\n"
    "  --delay MS        async: the WAN delay of every shipped batch (default 200)\n"
    "  --outbox on|off   async: off is the naive mode: the whole database is copied\n"
    "                    to the secondary every second instead of its changes\n"
    "  --interval MS     offline: how often the sync job runs (default 2000)\n"
    "  --retries N       offline: failed pushes before a row is FAILED (default 5)\n"
    "  --queue same|separate  offline: a write's sync-queue rows in its own transaction\n"
    "                    (same, the default) or in a second one after it (the naive mode)\n"
    "  --replicas N      cluster: how many replicas, 1 to 8 (default 2)\n"
    "  --cache on|naive|off  cluster: each replica caches its answers to GET /products,\n"
    "                    /products/:id and /orders/:userId, invalidated by the changes it\n"
    "                    applies (on) or never (naive: only --ttl and the size bound)\n"
    "  --ttl MS          cluster: a cached answer's age at most (default 5000)\n"
    "  --propagate before-commit  cluster: the naive mode, the leader sends each change\n"
    "                    from inside its transaction (default after-commit)\n"
    "  --allow-faults    GET/POST /faults: the front end's fault panel (loopback only)\n"
    "  --web DIR         the front end's files (default: PREFIX/share/faultdrill/web when\n"
    "                    installed, else the source tree's platform/web)\n"
    "  --seed-demo       give a shop without products the demo catalog (the default)\n"
    "  --no-demo         leave a new shop empty\n"
    "  --threads N       civetweb worker threads, one per open connection (default 512)\n"
    "  --client-cap N    connections one client address may hold; more are 503 (default 256)\n"
    "  --request-timeout MS  a request's headers, then its body, must arrive within\n"
    "                    (default 10000; a late body is 408)\n"
    "  --keep-alive MS   an idle keep-alive connection is closed after (default 2000)\n"
    "  --role NODE       run this one node: primary, local, leader (the first node of\n"
    "                    async, offline, cluster), or secondary, central, replicaN,\n"
    "                    registry (a node the first one starts itself, unless --peer\n"
    "                    names it)\n"
    "  --peer NAME=URL   where node NAME listens (e.g. secondary=http://10.0.0.2:3002):\n"
    "                    it is not started here; repeat for each. Several offline\n"
    "                    locals: --role local1..localN, each with --peer central=URL,\n"
    "                    and central with --peer localK=URL for each\n"
    "  --secret-file F   the cluster secret (64 hex digits, mode 0600); every node of\n"
    "                    a topology needs the same one\n"
    "  --latency DUR     every node message this node sends arrives DUR later (N, Nus,\n"
    "                    Nms or Ns; default 0), as a drill's latency=; a request that\n"
    "                    waits for its answer (a push) waits two hops\n"
    "  --jitter DUR      ...plus up to DUR more, drawn per message from a generator\n"
    "                    seeded with --net-seed N (default 0), as a drill's jitter=\n"
    "  --stake           also host the stake ledger (DIR/ledger.sqlite, node ledger's\n"
    "                    disk): /stake/predictors, /stake/predictions, /stake/rounds/close,\n"
    "                    /stake/rounds/N, /stake/status (serve/API.md)\n"
    "  --stake-config SPEC  a new ledger's rules, implies --stake:\n"
    "                    tolerance=N,slash=PPM|P%,min-stake=N,predictors=N (defaults\n"
    "                    50, 20%, 100000, 256); an existing ledger keeps its own\n"
    "\n"
    "Async failover, from another terminal: faultdrill serve failover SECONDARY_URL\n"
    "(promotes it; its primary is fenced), faultdrill serve fence PRIMARY_URL.\n"
    "\n"
    "Faults at run time, from another terminal (5 is EIO, 28 ENOSPC):\n"
    "  fiu-ctrl -c \"enable name=disk/mirror/write,failinfo=5\" PID\n"
    "  fiu-ctrl -c \"disable name=disk/mirror/write\" PID\n"
    "Stop with Ctrl-C or SIGTERM: requests in flight finish, the databases close.\n"
    "Exit codes: 0 stopped cleanly, 2 bad usage, 3 could not run.\n";

static const char usage_hint[] = "`faultdrill serve --help` lists the options.\n";

static int parse_int(const char *text, int min, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* A duration in milliseconds: 0 to one hour. */
static int parse_ms(const char *text, int64_t *out)
{
    int v = 0;
    int rc = parse_int(text, 0, 3600 * 1000, &v);
    *out = v;
    return rc;
}

/* A link's latency or jitter: N[us|ms|s] (ms without a unit), 0 to 10 s. */
static int parse_link_us(const char *text, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || v < 0)
        return -EINVAL;
    long long unit = strcmp(end, "us") == 0                    ? 1
                     : strcmp(end, "ms") == 0 || *end == '\0' ? 1000
                     : strcmp(end, "s") == 0                   ? 1000000
                                                               : 0;
    if (unit == 0 || v > WIRE_DELAY_US_MAX / unit)
        return -EINVAL;
    *out = (int64_t)(v * unit);
    return 0;
}

/* --topology names, and the node the first process of each runs. */
static const struct {
    const char *name;
    enum serve_role role;
    const char *node; /* the served copy's node */
} roles[] = {
    {"single", SERVE_SINGLE, "primary"},   {"mirror", SERVE_MIRROR, "primary"},
    {"async", SERVE_ASYNC, "primary"},     {"offline", SERVE_OFFLINE, "local"},
    {"cluster", SERVE_CLUSTER, "leader"},
};

/* The nodes a topology's first process starts: what --role accepts besides
 * the first node's own name. */
static const struct {
    const char *node; /* replicaN: a prefix */
    enum serve_role role;
    enum serve_role first; /* the topology's first node */
} followers[] = {
    {"secondary", SERVE_SECONDARY, SERVE_ASYNC},
    {"central", SERVE_CENTRAL, SERVE_OFFLINE},
    {"replica", SERVE_REPLICA, SERVE_CLUSTER},
    {"registry", SERVE_REGISTRY, SERVE_CLUSTER},
};

const char *serve_role_name(enum serve_role role)
{
    for (size_t i = 0; i < sizeof(followers) / sizeof(followers[0]); i++)
        if (followers[i].role == role)
            role = followers[i].first;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (roles[i].role == role)
            return roles[i].name;
    return "?";
}

/* local1..local64: one of an offline topology's several locals (a drill's locals=N),
 * each its own first process beside the others, all pushing to one central. */
static bool is_local_name(const char *node)
{
    int k = 0;
    return strncmp(node, "local", 5) == 0 && node[5] >= '1' && node[5] <= '9' &&
           parse_int(node + 5, 1, 64, &k) == 0;
}

/* replicaN, N in 1..SERVE_REPLICAS_MAX. */
static bool is_replica_name(const char *node)
{
    int k = 0;
    return strncmp(node, "replica", 7) == 0 && node[7] >= '1' && node[7] <= '9' &&
           parse_int(node + 7, 1, SERVE_REPLICAS_MAX, &k) == 0;
}

/* "mirror async", "async+mirror", "mirror,cluster": two known topologies,
 * their indexes in roles[] in *a and *b. */
static bool is_combination(const char *v, size_t *a, size_t *b)
{
    char words[2][16];
    int n = 0;
    for (const char *p = v; *p != '\0' && n <= 2;) {
        size_t len = strcspn(p, " +,");
        if (len > 0) {
            if (n == 2 || len >= sizeof(words[0]))
                return false;
            snprintf(words[n++], sizeof(words[0]), "%.*s", (int)len, p);
        }
        p += len + (p[len] != '\0');
    }
    size_t found[2];
    int known = 0;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
            if (strcmp(words[k], roles[i].name) == 0)
                found[known++] = i;
    if (n != 2 || known != 2)
        return false;
    *a = found[0];
    *b = found[1];
    return true;
}

/* --role NODE against --topology; 0 or an exit code after saying why. */
static int resolve_role(struct serve_options *o, const char *node, bool topology_given)
{
    if (node == NULL)
        return 0;
    if (is_local_name(node)) {
        if (topology_given && o->role != SERVE_OFFLINE) {
            fprintf(stderr, "faultdrill serve: node %s belongs to topology offline, not %s\n",
                    node, serve_role_name(o->role));
            return SERVE_EXIT_USAGE;
        }
        o->role = SERVE_OFFLINE;
        /* `--topology 'mirror offline'`: every local's disk is mirrored */
        o->topology = topology_given && o->topology == SHOP_MIRROR ? SHOP_MIRROR : SHOP_SINGLE;
        o->node = node;
        return 0;
    }
    for (size_t i = 0; i < sizeof(followers) / sizeof(followers[0]); i++) {
        bool match = followers[i].role == SERVE_REPLICA ? is_replica_name(node)
                                                        : strcmp(node, followers[i].node) == 0;
        if (!match)
            continue;
        if (topology_given && o->role != followers[i].first) {
            fprintf(stderr, "faultdrill serve: node %s belongs to topology %s, not %s\n", node,
                    serve_role_name(followers[i].first), serve_role_name(o->role));
            return SERVE_EXIT_USAGE;
        }
        o->role = followers[i].role;
        o->topology = SHOP_SINGLE;
        o->node = node;
        return 0;
    }
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(node, roles[i].node) != 0)
            continue;
        if (topology_given && strcmp(o->node, node) != 0) {
            fprintf(stderr, "faultdrill serve: topology %s has no node %s\n",
                    serve_role_name(o->role), node);
            return SERVE_EXIT_USAGE;
        }
        if (!topology_given) { /* primary alone is the default mirror */
            o->role = roles[i].role == SERVE_SINGLE ? SERVE_MIRROR : roles[i].role;
            o->topology = o->role == SERVE_MIRROR ? SHOP_MIRROR : SHOP_SINGLE;
            o->node = node;
        }
        return 0;
    }
    fprintf(stderr,
            "faultdrill serve: unknown node '%s' for --role (primary, secondary, local, "
            "local1..local64, central, leader, registry, replica1..replica%d)\n",
            node, SERVE_REPLICAS_MAX);
    return SERVE_EXIT_USAGE;
}

/* --peer NAME=URL: a node's name and an http URL without a trailing slash. */
static int add_peer(struct serve_options *o, const char *v)
{
    const char *eq = strchr(v, '=');
    char name[FAULTS_NODE_MAX];
    size_t n = eq != NULL ? (size_t)(eq - v) : 0;
    bool ok = eq != NULL && n > 0 && n < sizeof(name) && o->peer_count < WIRE_PEERS_MAX;
    if (ok) {
        memcpy(name, v, n);
        name[n] = '\0';
        const char *url = eq + 1;
        size_t len = strlen(url);
        ok = faults_is_node_name(name) && len > 7 && len < WIRE_URL_MAX &&
             (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) &&
             url[len - 1] != '/' && strpbrk(url, " \r\n\"") == NULL;
    }
    if (!ok) {
        fprintf(stderr, "faultdrill serve: bad --peer '%s': NAME=http://HOST:PORT (at most %d)\n",
                v, WIRE_PEERS_MAX);
        return SERVE_EXIT_USAGE;
    }
    o->peers[o->peer_count++] = v;
    return 0;
}

/* One option with a value; returns 0, or an exit code after saying why. */
static int parse_valued(struct serve_options *o, const char *opt, const char *v)
{
    if (strcmp(opt, "--port") == 0 && parse_int(v, 0, SERVE_PORT_MAX, &o->port) == 0) {
        o->port_requested = o->port;
        return 0;
    }
    if (strcmp(opt, "--threads") == 0 && parse_int(v, 2, SERVE_THREADS_MAX, &o->threads) == 0)
        return 0;
    if (strcmp(opt, "--client-cap") == 0 && parse_int(v, 1, SERVE_THREADS_MAX, &o->client_cap) == 0)
        return 0;
    if (strcmp(opt, "--request-timeout") == 0 &&
        parse_int(v, 100, 3600 * 1000, &o->request_timeout_ms) == 0)
        return 0;
    if (strcmp(opt, "--keep-alive") == 0 && parse_int(v, 100, 3600 * 1000, &o->keep_alive_ms) == 0)
        return 0;
    if (strcmp(opt, "--data") == 0 && v[0] != '\0') {
        o->data_dir = v;
        return 0;
    }
    if (strcmp(opt, "--web") == 0 && v[0] != '\0') {
        o->web_dir = v;
        return 0;
    }
    if (strcmp(opt, "--policy") == 0 && (!strcmp(v, "strict") || !strcmp(v, "degrade"))) {
        o->policy = strcmp(v, "strict") == 0 ? MIRROR_STRICT : MIRROR_DEGRADE;
        return 0;
    }
    if (strcmp(opt, "--ack") == 0 && (!strcmp(v, "both") || !strcmp(v, "early"))) {
        o->ack = strcmp(v, "both") == 0 ? MIRROR_ACK_BOTH : MIRROR_ACK_EARLY;
        return 0;
    }
    if (strcmp(opt, "--sync") == 0 && (!strcmp(v, "full") || !strcmp(v, "normal"))) {
        o->sync_normal = strcmp(v, "normal") == 0;
        return 0;
    }
    int64_t ms = 0;
    if (strcmp(opt, "--outbox") == 0 && (!strcmp(v, "on") || !strcmp(v, "off"))) {
        o->outbox_off = strcmp(v, "off") == 0;
        return 0;
    }
    if (strcmp(opt, "--delay") == 0 && parse_ms(v, &ms) == 0) {
        o->delay_ms = ms;
        return 0;
    }
    if (strcmp(opt, "--latency") == 0 && parse_link_us(v, &o->latency_us) == 0)
        return 0;
    if (strcmp(opt, "--jitter") == 0 && parse_link_us(v, &o->jitter_us) == 0)
        return 0;
    if (strcmp(opt, "--net-seed") == 0 && v[0] >= '0' && v[0] <= '9') {
        char *end = NULL;
        errno = 0;
        unsigned long long seed = strtoull(v, &end, 10);
        if (errno == 0 && *end == '\0') {
            o->net_seed = seed;
            return 0;
        }
    }
    if (strcmp(opt, "--stake-config") == 0) {
        struct stake_config cfg;
        char why[256];
        if (stake_parse_config(v, &cfg, why, sizeof(why)) == 0) {
            o->stake_config = v;
            o->stake = true;
            return 0;
        }
        fprintf(stderr, "faultdrill serve: bad value for --stake-config: '%s': %s\n", v, why);
        return SERVE_EXIT_USAGE;
    }
    if (strcmp(opt, "--interval") == 0 && parse_ms(v, &ms) == 0 && ms > 0) {
        o->interval_ms = ms;
        return 0;
    }
    if (strcmp(opt, "--retries") == 0 && parse_int(v, 1, 1000, &o->retries) == 0)
        return 0;
    if (strcmp(opt, "--queue") == 0 && (!strcmp(v, "same") || !strcmp(v, "separate"))) {
        o->queue_separate = strcmp(v, "separate") == 0;
        return 0;
    }
    if (strcmp(opt, "--cache") == 0 &&
        (!strcmp(v, "off") || !strcmp(v, "on") || !strcmp(v, "naive"))) {
        o->cache = !strcmp(v, "on") ? NODE_CACHE_ON : !strcmp(v, "naive") ? NODE_CACHE_NAIVE
                                                                           : NODE_CACHE_OFF;
        return 0;
    }
    if (strcmp(opt, "--propagate") == 0 &&
        (!strcmp(v, "after-commit") || !strcmp(v, "before-commit"))) {
        o->propagate_before = strcmp(v, "before-commit") == 0;
        return 0;
    }
    if (strcmp(opt, "--ttl") == 0 && parse_ms(v, &ms) == 0 && ms > 0) {
        o->cache_ttl_ms = ms;
        return 0;
    }
    if (strcmp(opt, "--replicas") == 0 &&
        parse_int(v, 1, SERVE_REPLICAS_MAX, &o->replicas) == 0)
        return 0;
    if (strcmp(opt, "--secret-file") == 0 && v[0] != '\0') {
        o->secret_file = v;
        return 0;
    }
    if (strcmp(opt, "--topology") == 0) {
        for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
            if (strcmp(v, roles[i].name) == 0) {
                o->role = roles[i].role;
                o->topology = roles[i].role == SERVE_MIRROR ? SHOP_MIRROR : SHOP_SINGLE;
                o->node = roles[i].node;
                return 0;
            }
        }
        size_t a, b;
        if (is_combination(v, &a, &b)) {
            /* DESIGN.md 2: mirror is a node's storage, async, offline and
             * cluster replicate between nodes; so mirror goes beside one */
            size_t other = roles[a].role == SERVE_MIRROR ? b : a;
            bool mirrored = roles[a].role == SERVE_MIRROR || roles[b].role == SERVE_MIRROR;
            enum serve_role r = roles[other].role;
            if (!mirrored || r == SERVE_MIRROR || r == SERVE_SINGLE) {
                fprintf(stderr,
                        "faultdrill serve: --topology '%s': mirror (a node's storage) goes "
                        "beside one of async, offline, cluster, which replicate between nodes "
                        "and do not combine with each other\n",
                        v);
                return SERVE_EXIT_USAGE;
            }
            o->role = r;
            o->topology = SHOP_MIRROR; /* the primary's, the local's or the leader's disk */
            o->node = roles[other].node;
            return 0;
        }
    }
    /* one line, not the whole help: the error must stay on the screen */
    fprintf(stderr, "faultdrill serve: bad value for %s: '%s'\n%s", opt, v, usage_hint);
    return SERVE_EXIT_USAGE;
}

/* Returns 0, -1 after --help, or an exit code (> 0) after saying why. */
static int parse_options(int argc, char **argv, struct serve_options *o)
{
    *o = (struct serve_options){.port = SERVE_PORT_DEFAULT, .port_requested = SERVE_PORT_DEFAULT,
                                .data_dir = "shop-data",
                                .role = SERVE_MIRROR, .topology = SHOP_MIRROR,
                                .node = "primary", .policy = MIRROR_STRICT,
                                .delay_ms = SERVE_DELAY_MS_DEFAULT,
                                .interval_ms = SERVE_INTERVAL_MS_DEFAULT,
                                .retries = SERVE_RETRIES_DEFAULT,
                                .replicas = SERVE_REPLICAS_DEFAULT,
                                .web_dir = NULL /* default_web_dir */, .demo = true,
                                .threads = SERVE_THREADS, .client_cap = SERVE_CLIENT_CAP,
                                .request_timeout_ms = SERVE_REQUEST_TIMEOUT_MS,
                                .keep_alive_ms = SERVE_KEEP_ALIVE_MS};
    const char *node = NULL;
    bool topology_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return -1;
        } else if (strcmp(a, "--allow-faults") == 0) {
            o->allow_faults = true;
        } else if (strcmp(a, "--seed-demo") == 0 || strcmp(a, "--no-demo") == 0) {
            o->demo = strcmp(a, "--seed-demo") == 0;
        } else if (strcmp(a, "--stake") == 0) {
            o->stake = true;
        } else if (strcmp(a, "--bench-trivial") == 0) {
            o->bench_trivial = true; /* hidden: the stack's ceiling for `make bench` */
        } else if (i + 1 < argc && (!strcmp(a, "--port") || !strcmp(a, "--data") ||
                                    !strcmp(a, "--topology") || !strcmp(a, "--policy") ||
                                    !strcmp(a, "--ack") || !strcmp(a, "--sync") ||
                                    !strcmp(a, "--web") || !strcmp(a, "--threads") ||
                                    !strcmp(a, "--delay") || !strcmp(a, "--interval") ||
                                    !strcmp(a, "--retries") || !strcmp(a, "--replicas") ||
                                    !strcmp(a, "--secret-file") || !strcmp(a, "--client-cap") ||
                                    !strcmp(a, "--request-timeout") ||
                                    !strcmp(a, "--keep-alive") || !strcmp(a, "--outbox") ||
                                    !strcmp(a, "--queue") || !strcmp(a, "--cache") ||
                                    !strcmp(a, "--ttl") || !strcmp(a, "--propagate") ||
                                    !strcmp(a, "--latency") || !strcmp(a, "--jitter") ||
                                    !strcmp(a, "--net-seed") || !strcmp(a, "--stake-config"))) {
            topology_given |= strcmp(a, "--topology") == 0;
            int code = parse_valued(o, a, argv[++i]);
            if (code != 0)
                return code;
        } else if (i + 1 < argc && strcmp(a, "--role") == 0) {
            node = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--peer") == 0) {
            int code = add_peer(o, argv[++i]);
            if (code != 0)
                return code;
        } else {
            fprintf(stderr, "faultdrill serve: unknown or incomplete option '%s'\n%s", a,
                    usage_hint);
            return SERVE_EXIT_USAGE;
        }
    }
    int code = resolve_role(o, node, topology_given);
    if (code == 0 && o->peer_count > 0 && (o->role == SERVE_SINGLE || o->role == SERVE_MIRROR)) {
        fprintf(stderr, "faultdrill serve: topology %s has no other node for --peer\n",
                serve_role_name(o->role));
        code = SERVE_EXIT_USAGE;
    }
    return code;
}

/* ---- the data directory and the shop ------------------------------------ */

static int mkdir_p(const char *path)
{
    char buf[SERVE_PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = saved;
        if (saved == '\0')
            return 0;
    }
}

/* Creates the data directory and proves it writable. */
static int prepare_data_dir(const char *dir)
{
    int err = mkdir_p(dir);
    struct stat st;
    if (!err && stat(dir, &st) != 0)
        err = -errno;
    if (!err && !S_ISDIR(st.st_mode))
        err = -ENOTDIR;
    char probe[SERVE_PATH_MAX];
    if (!err && snprintf(probe, sizeof(probe), "%s/.faultdrill-probe", dir) >= (int)sizeof(probe))
        err = -ENAMETOOLONG;
    if (!err) {
        int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            err = -errno;
        else if (close(fd) != 0 || unlink(probe) != 0)
            err = -errno;
    }
    if (err)
        fprintf(stderr, "faultdrill serve: cannot write to data directory %s: %s\n", dir,
                strerror(-err));
    return err;
}

/* The second copy's node of a topology that keeps one in this process. */
static const char *second_node(const struct serve_options *o)
{
    return o->topology == SHOP_MIRROR ? "mirror" : NULL;
}

/* A node's database in its data directory: the name says which copy it is. */
static const char *db_file(enum serve_role role)
{
    return role == SERVE_SECONDARY ? "db_async.sqlite"
           : role == SERVE_CENTRAL ? "db_central.sqlite"
                                   : "db.sqlite";
}

static bool is_follower(enum serve_role role)
{
    return role == SERVE_SECONDARY || role == SERVE_CENTRAL || role == SERVE_REPLICA ||
           role == SERVE_REGISTRY;
}

static int open_shop(struct server *srv, shop **out)
{
    const struct serve_options *o = &srv->opt;
    snprintf(srv->primary_path, sizeof(srv->primary_path), "%s/%s", o->data_dir, db_file(o->role));
    snprintf(srv->mirror_path, sizeof(srv->mirror_path), "%s/db_mirror.sqlite", o->data_dir);
    struct faults_host fh = host_faults();
    int err = faults_init(0);
    if (!err)
        err = faults_vfs_register(o->node, &fh);
    const char *second = second_node(o);
    if (!err && second != NULL)
        err = faults_vfs_register(second, &fh);
    if (err) {
        fprintf(stderr, "faultdrill serve: cannot set up the fault VFS: %s\n", faults_errmsg());
        return err;
    }
    srv->cfg = (struct shop_config){
        .topology = o->topology,
        .primary = {.node = o->node, .path = srv->primary_path, .vfs = faults_vfs_name(o->node)},
        .mirror = {.node = "mirror", .path = srv->mirror_path, .vfs = faults_vfs_name("mirror")},
        .policy = o->policy,
        .ack = o->ack,
        .sync_full = !o->sync_normal,
        .outbox = (o->role == SERVE_ASYNC && !o->outbox_off) || o->role == SERVE_CLUSTER,
        .sync_queue = o->role != SERVE_OFFLINE ? SHOP_QUEUE_NONE
                      : o->queue_separate      ? SHOP_QUEUE_SEPARATE
                                               : SHOP_QUEUE_SAME,
    };
    if (o->role == SERVE_CLUSTER && o->propagate_before) {
        srv->cfg.propagate_before_commit = true; /* the naive mode: the core's leader sends */
        srv->env.before_commit = cluster_before_commit;
    }
    char msg[SHOP_ERRMSG_MAX];
    err = shop_open(&srv->cfg, &srv->env, out, msg);
    if (err) {
        fprintf(stderr, "faultdrill serve: cannot open the shop in %s: %s\n", o->data_dir, msg);
        return err;
    }
    /* A follower's catalog comes from its upstream. */
    int n = o->demo && !is_follower(o->role) ? demo_seed(*out) : 0;
    if (n < 0)
        fprintf(stderr, "faultdrill serve: could not add the demo catalog: %s\n",
                shop_errmsg(*out));
    else if (n > 0)
        printf("faultdrill serve: new shop: added the demo catalog (%d products)\n", n);
    return 0;
}

/* ---- node messages ------------------------------------------------------- */

/* A topology with more than one node: the cluster secret (made in the data
 * directory at first start unless --secret-file names one), this node's
 * transport, and the peers --peer names. */
static int start_net(struct server *srv)
{
    const struct serve_options *o = &srv->opt;
    if (o->role == SERVE_SINGLE || o->role == SERVE_MIRROR)
        return 0;
    bool create = o->secret_file == NULL;
    int n = create ? snprintf(srv->secret_path, sizeof(srv->secret_path), "%s/%s", o->data_dir,
                              AUTH_SECRET_FILE)
                   : snprintf(srv->secret_path, sizeof(srv->secret_path), "%s", o->secret_file);
    if (n < 0 || (size_t)n >= sizeof(srv->secret_path)) {
        fprintf(stderr, "faultdrill serve: the path of the cluster secret is too long\n");
        return -ENAMETOOLONG;
    }
    char why[SERVE_PATH_MAX + 256] = "";
    struct auth_key key;
    int err = auth_secret_load(srv->secret_path, create, &key, why, sizeof(why));
    if (err) {
        fprintf(stderr, "faultdrill serve: %s\n", why);
        return err;
    }
    err = wire_create(o->node, &key, &srv->net);
    memset(&key, 0, sizeof(key));
    if (!err)
        wire_set_latency(srv->net, o->latency_us, o->jitter_us, o->net_seed);
    for (int i = 0; !err && i < o->peer_count; i++) {
        char name[FAULTS_NODE_MAX];
        const char *eq = strchr(o->peers[i], '=');
        snprintf(name, sizeof(name), "%.*s", (int)(eq - o->peers[i]), o->peers[i]);
        err = wire_set_peer(srv->net, name, eq + 1);
        if (err)
            fprintf(stderr, "faultdrill serve: --peer %s: %s\n", o->peers[i],
                    err == -EINVAL ? "that is this node" : strerror(-err));
    }
    if (err && srv->net == NULL)
        fprintf(stderr, "faultdrill serve: cannot set up node messages: %s\n", strerror(-err));
    return err;
}

/* ---- civetweb ------------------------------------------------------------ */

static void *on_thread_start(const struct mg_context *ctx, int thread_type)
{
    if (thread_type != 1)
        return NULL; /* the master and timer threads answer no request */
    return worker_create(mg_get_user_data(ctx));
}

static void on_thread_exit(const struct mg_context *ctx, int thread_type, void *p)
{
    (void)ctx;
    if (thread_type == 1)
        worker_free(p);
}

/* The ceiling of this stack for `make bench`: a fixed 60-byte JSON. */
static int trivial_request(struct mg_connection *conn)
{
    static const char body[] = "{\"status\":\"ok\",\"service\":\"faultdrill\",\"bench\":\"trivialceil\"}";
    _Static_assert(sizeof(body) - 1 == 60, "the trivial reply is 60 bytes");
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Content-Length: 60\r\nConnection: keep-alive\r\n\r\n";
    char out[sizeof(reply) + sizeof(body)];
    memcpy(out, reply, sizeof(reply) - 1);
    memcpy(out + sizeof(reply) - 1, body, sizeof(body) - 1);
    mg_write(conn, out, sizeof(out) - 2);
    return 200;
}

/* Why civetweb could not listen ("Address already in use"): its own text
 * only says it failed. 0 when a bind works now. */
static int bind_error(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int err = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : errno;
    close(fd);
    return err;
}

static int start_civetweb(struct server *srv)
{
    char ports[32], threads[16], request_ms[16], keep_ms[16];
    snprintf(ports, sizeof(ports), "127.0.0.1:%d", srv->opt.port);
    snprintf(threads, sizeof(threads), "%d", srv->opt.threads);
    snprintf(request_ms, sizeof(request_ms), "%d", srv->opt.request_timeout_ms);
    snprintf(keep_ms, sizeof(keep_ms), "%d", srv->opt.keep_alive_ms);
    /* A worker per connection, so enough of them that idle and slow clients
     * leave room (each is a mostly idle thread); civetweb bounds the time to
     * read headers (request_timeout_ms, keep_alive_timeout_ms once a request
     * was served), http.c's guard the time to read a body. */
    const char *options[] = {
        "listening_ports", ports, "num_threads", threads, "tcp_nodelay", "1",
        "enable_keep_alive", "yes", "keep_alive_timeout_ms", keep_ms, "decode_url", "no",
        "request_timeout_ms", request_ms, "enable_directory_listing", "no",
        "listen_backlog", "1024", "connection_queue", "1024", NULL,
    };
    struct mg_callbacks cb = {
        .begin_request = srv->opt.bench_trivial ? trivial_request : routes_dispatch,
        .http_error = http_on_error,
        .connection_close = http_on_close,
        .init_thread = on_thread_start,
        .exit_thread = on_thread_exit,
    };
    unsigned code = 0;
    char text[256] = "";
    struct mg_error_data err = {.code = &code, .text = text, .text_buffer_size = sizeof(text)};
    struct mg_init_data init = {.callbacks = &cb, .user_data = srv, .configuration_options = options};
    srv->mg = mg_start2(&init, &err);
    if (srv->mg == NULL) {
        int why = bind_error(srv->opt.port);
        fprintf(stderr, "faultdrill serve: cannot listen on %s: %s\n", ports,
                why ? strerror(why) : text[0] ? text : "civetweb could not start");
        return -EADDRINUSE;
    }
    struct mg_server_port sp[1];
    if (mg_get_server_ports(srv->mg, 1, sp) == 1)
        srv->opt.port = sp[0].port;
    if (srv->net != NULL) {
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv->opt.port);
        wire_set_self_url(srv->net, url);
    }
    return 0;
}

/* A connection and each worker's read handles need descriptors: the soft
 * limit is raised to the hard one, and the threads fitted under it. */
static int raise_fd_limit(struct server *srv)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    /* a socket and a reader on each of two copies (db, -wal: 2 each) per worker */
    rlim_t need = (rlim_t)srv->opt.threads * 5 + 256;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        int fit = rl.rlim_cur > 266 ? (int)((rl.rlim_cur - 256) / 5) : 2;
        fprintf(stderr, "faultdrill serve: %d threads need about %llu file descriptors and "
                        "the limit is %llu (ulimit -n): %d threads\n",
                srv->opt.threads, (unsigned long long)need, (unsigned long long)rl.rlim_cur, fit);
        srv->opt.threads = fit;
        if (srv->opt.client_cap > fit)
            srv->opt.client_cap = fit;
    }
    return 0;
}

/* ---- life ------------------------------------------------------------------- */

/* An installed faultdrill (make install) serves its own copy of the front
 * end: PREFIX/share/faultdrill/web beside PREFIX/bin/faultdrill; a build
 * tree's serves the source tree's. */
static const char *default_web_dir(char *buf, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return FAULTDRILL_WEB_DIR;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return FAULTDRILL_WEB_DIR;
    *slash = '\0';
    int len = snprintf(buf, size, "%s/../share/faultdrill/web", exe);
    struct stat st;
    if (len < 0 || (size_t)len >= size || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return FAULTDRILL_WEB_DIR;
    return buf;
}

/* Resolved before civetweb starts; a missing front end is said in the banner. */
static void find_web_root(struct server *srv)
{
    if (realpath(srv->opt.web_dir, srv->web_root) == NULL)
        srv->web_root[0] = '\0';
}

static void banner(const struct server *srv, const char *fifo)
{
    int pid = (int)getpid();
    const struct serve_options *o = &srv->opt;
    const char *second = second_node(o);
    const char *node = second != NULL ? second : o->node;
    bool combined = o->role != SERVE_MIRROR && o->topology == SHOP_MIRROR;
    printf("faultdrill serve: http://127.0.0.1:%d/  topology %s%s", o->port,
           combined ? "mirror " : "", serve_role_name(o->role));
    if (o->topology == SHOP_MIRROR)
        printf(", policy %s", o->policy == MIRROR_STRICT ? "strict" : "degrade");
    if (o->role == SERVE_ASYNC)
        printf(", delay %" PRId64 " ms", o->delay_ms);
    else if (o->role == SERVE_OFFLINE)
        printf(", interval %" PRId64 " ms, retries %d%s", o->interval_ms, o->retries,
               o->queue_separate ? ", queue separate (naive)" : "");
    else if (o->role == SERVE_CLUSTER)
        printf(", %d replicas", o->replicas);
    if (is_follower(o->role))
        printf(", node %s", o->node);
    printf(", data %s\n", o->data_dir);
    printf("  pid %d; fault control: %s%s\n", pid, fifo[0] ? fifo : "(fifo unavailable)",
           o->allow_faults ? ", and /faults over HTTP" : "");
    printf("  break the %s's disk: fiu-ctrl -c \"enable name=disk/%s/write,failinfo=5\" %d\n", node,
           node, pid);
    printf("  heal it: fiu-ctrl -c \"disable name=disk/%s/write\" %d\n", node, pid);
    const char *link = o->role == SERVE_ASYNC     ? "net/primary/secondary/drop"
                       : o->role == SERVE_OFFLINE ? "net/local/central/drop"
                       : o->role == SERVE_CLUSTER ? "net/leader/replica1/drop"
                       : o->role == SERVE_CENTRAL ? "net/central/local/drop"
                                                  : NULL;
    if (link != NULL)
        printf("  cut the link: fiu-ctrl -c \"enable name=%s\" %d (disable to mend it)\n", link,
               pid);
    printf("  stop: Ctrl-C or kill %d\n", pid);
    if (srv->web_root[0] == '\0' && !o->bench_trivial)
        printf("  no front end at %s: only the API is served (--web DIR)\n", o->web_dir);
    fflush(stdout);
}

static int wait_for_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    return sig;
}

/*
 * civetweb's master thread polls its listening socket in 2-second quanta
 * and looks at the stop flag only between polls: a few connections to
 * ourselves wake it, so a stop takes milliseconds instead of 2 s.
 */
static void *poke_listener(void *arg)
{
    const int port = *(const int *)arg;
    for (int i = 0; i < SERVE_STOP_POKES; i++) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = SERVE_STOP_POKE_NS};
        nanosleep(&ts, NULL);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return NULL;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (rc != 0)
            return NULL; /* the listener is closed: civetweb saw the flag */
    }
    return NULL;
}

static void stop_all(struct server *srv)
{
    if (srv->mg != NULL && srv->async != NULL && srv->opt.role == SERVE_ASYNC) {
        /* the secondary's acknowledgements still come in while the last
         * changes go out, without the WAN delay; clients are turned away */
        atomic_store(&srv->refusing, true);
        wire_hurry(srv->net);
        async_drain(srv);
    }
    if (srv->mg != NULL && srv->cluster != NULL && srv->opt.role == SERVE_CLUSTER) {
        /* the same for a leader: the replicas' acks still come in */
        atomic_store(&srv->refusing, true);
        wire_hurry(srv->net);
        cluster_drain(srv);
    }
    /* a request in flight may be a node message held by a link's delay
     * (wire_api): mg_stop waits for it, so the delays end first */
    wire_hurry(srv->net);
    if (srv->mg != NULL) {
        pthread_t poker;
        bool poking = pthread_create(&poker, NULL, poke_listener, &srv->opt.port) == 0;
        mg_stop(srv->mg); /* stops accepting, finishes requests in flight */
        if (poking)
            pthread_join(poker, NULL);
    }
    srv->mg = NULL;
    http_guard_stop(srv); /* after the workers it watches */
    /* The topology's threads still use the writer: they stop first. */
    wire_hurry(srv->net);
    async_stop(srv);
    offline_stop(srv);
    cluster_stop(srv);
    if (srv->writer.shop != NULL)
        writer_stop(&srv->writer); /* commits what is queued, closes the shop */
    stake_host_stop(srv);          /* after civetweb: no route uses it any more */
    wire_free(srv->net);
    srv->net = NULL;
    panel_release(&srv->panel);
    host_stop(&srv->host);
    faults_vfs_unregister_all();
}

static int serve_run(struct server *srv, const sigset_t *signals)
{
    char fifo[SERVE_PATH_MAX] = "";
    shop *s = NULL;
    int err = host_start(&srv->host);
    if (err) {
        fprintf(stderr, "faultdrill serve: cannot start a thread: %s\n", strerror(-err));
        return SERVE_EXIT_CANNOT_RUN;
    }
    srv->env = host_env(&srv->host);
    const char *nodes[2] = {srv->opt.node, second_node(&srv->opt)};
    panel_init(&srv->panel, nodes, nodes[1] != NULL ? 2 : 1);
    static char installed_web[PATH_MAX];
    if (srv->opt.web_dir == NULL)
        srv->opt.web_dir = default_web_dir(installed_web, sizeof(installed_web));
    if (!srv->opt.bench_trivial) {
        find_web_root(srv);
        /* A port in use is said before the data directory is touched. */
        int busy = srv->opt.port != 0 ? bind_error(srv->opt.port) : 0;
        if (busy != 0) {
            fprintf(stderr, "faultdrill serve: cannot listen on 127.0.0.1:%d: %s\n",
                    srv->opt.port, strerror(busy));
            err = -busy;
        }
        if (!err)
            err = prepare_data_dir(srv->opt.data_dir);
        if (!err)
            err = start_net(srv); /* a bad secret is said before the shop is made */
        if (!err)
            err = open_shop(srv, &s);
        if (!err && (err = writer_start(&srv->writer, s)) != 0)
            fprintf(stderr, "faultdrill serve: cannot start the writer: %s\n", strerror(-err));
        if (!err && srv->opt.stake)
            err = stake_host_start(srv);
    }
    if (!err && (err = raise_fd_limit(srv)) == 0 && (err = http_guard_start(srv)) != 0)
        fprintf(stderr, "faultdrill serve: cannot start the guard: %s\n", strerror(-err));
    if (!err)
        err = start_civetweb(srv);
    if (!err && (srv->opt.role == SERVE_ASYNC || srv->opt.role == SERVE_SECONDARY))
        err = async_start(srv);
    if (!err && (srv->opt.role == SERVE_OFFLINE || srv->opt.role == SERVE_CENTRAL))
        err = offline_start(srv);
    if (!err && (srv->opt.role == SERVE_CLUSTER || srv->opt.role == SERVE_REPLICA ||
                 srv->opt.role == SERVE_REGISTRY))
        err = cluster_start(srv);
    if (err) {
        stop_all(srv);
        return SERVE_EXIT_CANNOT_RUN;
    }
    if (panel_start_fifo(&srv->panel, fifo, sizeof(fifo)) != 0) {
        fprintf(stderr, "faultdrill serve: no fiu-ctrl fifo (%s): faults only over HTTP\n", fifo);
        fifo[0] = '\0';
    }
    srv->started_mono_us = host_mono_us();
    banner(srv, fifo);
    int sig = wait_for_signal(signals);
    printf("faultdrill serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    fflush(stdout);
    stop_all(srv);
    panel_stop_fifo();
    printf("faultdrill serve: stopped cleanly\n");
    return SERVE_EXIT_OK;
}

int serve_main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "failover") == 0 || strcmp(argv[1], "fence") == 0)) {
        if (wire_global_init() != 0)
            return SERVE_EXIT_CANNOT_RUN;
        int code = async_admin_main(argc - 1, argv + 1);
        wire_global_cleanup();
        return code;
    }
    struct server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        fprintf(stderr, "faultdrill serve: out of memory\n");
        return SERVE_EXIT_CANNOT_RUN;
    }
    int code = parse_options(argc, argv, &srv->opt);
    if (code != 0) {
        free(srv);
        return code < 0 ? SERVE_EXIT_OK : code;
    }
    /* Only the main thread takes SIGTERM/SIGINT: every thread started from
     * here on inherits the mask, and sigwait collects them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    mg_init_library(0);
    if (wire_global_init() != 0) {
        fprintf(stderr, "faultdrill serve: cannot set up libcurl\n");
        code = SERVE_EXIT_CANNOT_RUN;
    } else {
        code = serve_run(srv, &signals);
        wire_global_cleanup();
    }
    mg_exit_library();
    pthread_sigmask(SIG_UNBLOCK, &signals, NULL);
    free(srv);
    return code;
}
