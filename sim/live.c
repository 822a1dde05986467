/*
 * live.c — `faultdrill run --live DRILL` (DESIGN.md §5): the same drill
 * against real `faultdrill serve` processes on loopback, in real time.
 *
 * The runner seeds the drill's catalog into a scratch directory (the
 * simulator's own setup, on the host's disk), closes it, and starts one
 * serve process per node that runs one. Each client of the drill is a thread
 * that talks HTTP (libcurl) at the drill's rates: the same seeded choices as
 * in the simulator, the next operation a think time after the last one
 * completed. The timeline plays in real time: faults through each process's
 * fiu-ctrl fifo (faultdrill-arm, which arms as a drill arms), `crash NODE
 * process` as SIGKILL, `restart` as a new process on the same data. Every
 * operation goes into the simulator's history with its real times, its
 * outcome (a timeout or a reset is unknown, a refused connection failed) and
 * the position its reply carries (X-Faultdrill-Position). At a drain and at
 * the end the processes stop and the copies are read back from their files;
 * the simulator's checkers judge it all and the reports are the same files,
 * with "mode": "live".
 *
 * What is not played live yet is refused by sim_live_check, at its
 * FILE:LINE:COL, before anything starts: never a silent fallback.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim/live.h"
#include "sim/live_more.h"
#include "sim/world.h"

#define LIVE_TIMEOUT_MS 2000      /* a request unanswered by then is unknown */
#define LIVE_START_WAIT_MS 60000  /* a serve process prints its banner (ASan builds start slowly) */
#define LIVE_STOP_WAIT_MS 20000   /* SIGTERM to exit, then SIGKILL */
#define LIVE_FIFO_WAIT_MS 5000    /* a fiu-ctrl command's reply */
#define LIVE_POLL_US 10000        /* the timeline's and the drain's polling period */
#define LIVE_LATE_US 10000        /* an operation issued later than this behind its schedule */
#define LIVE_BODY_MAX (16u << 20) /* a reply larger than this is cut (and the op failed) */
#define LIVE_OPS_MAX 64           /* explicit `op` lines in flight at once */
#define LIVE_CUTS_MAX 64          /* links a partition cuts at once */
#define LIVE_ADMIN_TIMEOUT_MS 10000 /* an admin route's answer (failover, offline, status) */
#define LIVE_LISTING_SLACK_US 1000000 /* cluster: a registry answer's transits, allowed */

struct live_proc {
    pid_t pid;          /* 0: not running */
    int port;           /* async, offline: chosen before the first start, kept by restarts */
    unsigned incarnation;
    char base[64];      /* http://127.0.0.1:PORT */
    char log[WORLD_PATH_MAX + 32];
};

struct live {
    struct sim *s;
    pthread_mutex_t lock;     /* every change of s, and procs[].base */
    struct timespec t0;
    char exe[4096];
    struct live_proc procs[DRILL_NODES_MAX];
    atomic_bool stop;         /* the workload ends */
    pthread_t clients[DRILL_CLIENTS_MAX + 1];
    bool client_started[DRILL_CLIENTS_MAX + 1];
    pthread_t explicit_ops[LIVE_OPS_MAX];
    size_t explicit_count;
    bool judged_files;        /* the processes are stopped for a judgement (drain) */
    bool mirror_cut;          /* a partition separates primary from its mirror's disk */
    /* async, offline: links a partition cut (net/<from>/<to>/drop in from's process) */
    struct { int from, to; } cuts[LIVE_CUTS_MAX];
    size_t cut_count;
    bool switched_off[DRILL_NODES_MAX]; /* offline: `offline NODE` turned its sync job off */
    bool failed_over;                   /* async: the secondary was promoted */
    /* acknowledged user-creates: the row's own time is read back from the files */
    struct live_user { uint32_t op; int client; uint32_t n; } *users;
    size_t user_count, user_cap;
    char secret[WORLD_PATH_MAX + 16];   /* async, offline, cluster: the cluster secret's file */
    struct live_clients *clients_host;  /* cluster: the drill's clients' core nodes */
    int64_t killed_us[DRILL_NODES_MAX]; /* when each node's process was killed; -1: running */
    uint64_t late_ops, late_max_us, issued;
    struct live_watch *watch; /* live_watch.c: the nodes' lanes and lag */
    struct live_stake *stake; /* live_stake.c: the predictors of topology stake */
};

/* ---- time ------------------------------------------------------------- */

static int64_t live_now(const struct live *L)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - L->t0.tv_sec) * 1000000 + (t.tv_nsec - L->t0.tv_nsec) / 1000;
}

/* Under the lock: the run's clock follows the real one, never backwards. */
static void tick(struct live *L)
{
    int64_t now = live_now(L);
    if (now > L->s->now_us)
        L->s->now_us = now;
}

/* Sleeps until `at` (run time); returns early (false) once the workload stops. */
static bool sleep_until(struct live *L, int64_t at, bool stoppable)
{
    for (;;) {
        if (stoppable && atomic_load(&L->stop))
            return false;
        int64_t left = at - live_now(L);
        if (left <= 0)
            return true;
        if (left > 20000)
            left = 20000;
        struct timespec d = {.tv_sec = 0, .tv_nsec = (long)left * 1000};
        nanosleep(&d, NULL);
    }
}

/* ---- what can run live ------------------------------------------------ */

static void add_error(struct drill_errors *errs, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add_error(struct drill_errors *errs, int line, int col, const char *fmt, ...)
{
    if (errs->count == DRILL_ERRORS_MAX) {
        errs->truncated = true;
        return;
    }
    struct drill_error *e = &errs->e[errs->count++];
    e->line = line;
    e->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

/* Async, offline and cluster: one serve process per node, each with a data directory of
 * its own, wired to the others with --peer and the shared secret. */
static bool multi_process(const struct drill *d)
{
    return (d->topology.components & (DRILL_ASYNC | DRILL_OFFLINE | DRILL_CLUSTER)) != 0;
}

static bool is_cluster(const struct drill *d)
{
    return (d->topology.components & DRILL_CLUSTER) != 0;
}

/* The nodes that run a serve process of their own. */
static bool runs_process(const struct drill *d, const char *name)
{
    if (strcmp(name, "primary") == 0)
        return true;
    if ((d->topology.components & DRILL_ASYNC) != 0)
        return strcmp(name, "secondary") == 0;
    if ((d->topology.components & DRILL_OFFLINE) != 0)
        return strncmp(name, "local", 5) == 0 || strcmp(name, "central") == 0;
    if (is_cluster(d))
        return strcmp(name, "leader") == 0 || strncmp(name, "replica", 7) == 0 ||
               strcmp(name, "registry") == 0;
    return false;
}

/* mirror offline with locals=N: mirrorK, the mirror disk of localK */
static bool is_local_mirror(const struct drill *d, const char *name)
{
    return (d->topology.components & (DRILL_MIRROR | DRILL_OFFLINE)) ==
               (DRILL_MIRROR | DRILL_OFFLINE) &&
           strncmp(name, "mirror", 6) == 0 && name[6] >= '1' && name[6] <= '9';
}

/* A point's name in the process that runs it: each local's serve process names its
 * mirror disk `mirror`, so disk/mirrorK/... is disk/mirror/... in localK's process. */
static const char *point_in_process(const struct drill *d, const char *point,
                                    char out[FAULTS_NAME_MAX])
{
    char lane[FAULTS_NODE_MAX];
    world_fault_lane(point, lane);
    const char *rest = strchr(point, '/');
    if (!is_local_mirror(d, lane) || rest == NULL || (rest = strchr(rest + 1, '/')) == NULL)
        return point;
    size_t family = (size_t)(strchr(point, '/') - point);
    snprintf(out, FAULTS_NAME_MAX, "%.*s/mirror%s", (int)family, point, rest);
    return out;
}

/* The node whose process runs node `name` (a mirror's disk: its primary's; the stake
 * ledger: the first node's, primary, local or leader, whose serve --stake hosts it). */
static int process_of(const struct drill *d, const char *name)
{
    char names[DRILL_NODES_MAX][FAULTS_NODE_MAX];
    size_t n = drill_nodes(d, names);
    char local[FAULTS_NODE_MAX];
    if (strcmp(name, "mirror") == 0) /* a disk of the mirrored node's process */
        name = (d->topology.components & DRILL_CLUSTER)   ? "leader"
               : (d->topology.components & DRILL_OFFLINE) ? "local"
                                                          : "primary";
    else if (is_local_mirror(d, name)) { /* mirror offline: mirrorK is localK's disk */
        snprintf(local, sizeof(local), "local%s", name + 6);
        name = local;
    } else if ((d->topology.components & DRILL_STAKE) != 0 && strcmp(name, "ledger") == 0)
        name = names[0];
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return runs_process(d, name) ? (int)i : -1;
    return -1;
}

int sim_live_check(const struct drill *d, struct drill_errors *errs)
{
    size_t before = errs->count;
    unsigned c = d->topology.components;
    /* stake runs beside any topology that runs live (serve --stake in its first node's
     * process): the rest is judged as if alone */
    unsigned rest = c & ~(unsigned)DRILL_STAKE;
    /* a combination: mirror is the replicating node's storage (serve --topology 'mirror
     * async' etc. keeps both files in that node's process), so it plays as the other */
    if ((rest & DRILL_MIRROR) != 0 && (rest & ~(unsigned)DRILL_MIRROR) != 0) {
        rest &= ~(unsigned)DRILL_MIRROR;
    }
    unsigned live = DRILL_SINGLE | DRILL_MIRROR | DRILL_STAKE;
    unsigned other =
        rest == DRILL_ASYNC || rest == DRILL_OFFLINE || rest == DRILL_CLUSTER ? 0 : c & ~live;
    int topo_line = d->topology_line > 0 ? d->topology_line : 1;
    if (other != 0 && (c & (DRILL_ASYNC | DRILL_OFFLINE | DRILL_CLUSTER)) != 0) {
        add_error(errs, topo_line, 1,
                  "run --live plays async, offline and cluster each alone (beside mirror and "
                  "stake), not combined with each other; run it in the simulator");
        return -EINVAL;
    }
    if (other != 0) {
        for (unsigned bit = 1; bit <= DRILL_STAKE; bit <<= 1) {
            if ((other & bit) == 0)
                continue;
            add_error(errs, topo_line, 1,
                      "run --live does not play topology %s yet (single, mirror, async, "
                      "offline, cluster and stake run live); run it in the simulator",
                      drill_component_name((enum drill_component)bit));
        }
        return -EINVAL; /* its statements would only repeat it */
    }
    if (rest == DRILL_CLUSTER &&
        d->clients + d->topology.replicas + 1 > live_registry_senders_max()) {
        /* each client is a node the registry's process answers, beside the replicas and
         * the leader's own client: serve keeps the links and counters of that many */
        add_error(errs, topo_line, 1,
                  "run --live: %d clients, %d replicas and the leader would be %d senders to the "
                  "registry's process, which keeps at most %d; run it in the simulator",
                  d->clients, d->topology.replicas, d->clients + d->topology.replicas + 1,
                  live_registry_senders_max());
        return -EINVAL;
    }
    for (size_t i = 0; i < d->event_count; i++) {
        const struct drill_event *e = &d->events[i];
        switch (e->action) {
        case DRILL_CRASH:
            if (!e->process && is_cluster(d) &&
                (strncmp(e->name, "replica", 7) == 0 || strcmp(e->name, "registry") == 0))
                break; /* played as a SIGKILL: a cluster's copies sync every commit (sync=full,
                        * the only mode it has), all a power cut of a replica keeps; the
                        * registry keeps nothing */
            if (!e->process)
                add_error(errs, e->line, e->col,
                          "run --live cannot cut the power of a real machine: write `crash %s "
                          "process` (a SIGKILL: the OS keeps what the process wrote)",
                          e->name);
            else if (process_of(d, e->name) < 0 || strcmp(e->name, "mirror") == 0 ||
                     strcmp(e->name, "ledger") == 0)
                add_error(errs, e->line, e->arg_col,
                          "run --live can crash only a node that runs a process; %s does not "
                          "(the mirror and the stake ledger are disks of primary's process; "
                          "predictors are the runner's)",
                          e->name);
            else if ((c & DRILL_STAKE) != 0 && process_of(d, e->name) == process_of(d, "ledger"))
                add_error(errs, e->line, e->arg_col,
                          "run --live hosts the stake ledger in %s's process (serve --stake): "
                          "crashing it would take the ledger down too, which the simulator "
                          "does not; run it in the simulator",
                          e->name);
            break;
        case DRILL_RESTART:
            if (process_of(d, e->name) < 0 || strcmp(e->name, "mirror") == 0 ||
                strcmp(e->name, "ledger") == 0)
                add_error(errs, e->line, e->arg_col,
                          "run --live can restart only a node that runs a process; %s does not",
                          e->name);
            break;
        case DRILL_FAULT: {
            char lane[FAULTS_NODE_MAX];
            world_fault_lane(e->name, lane);
            if (strchr(e->name, '*') != NULL)
                add_error(errs, e->line, e->arg_col,
                          "run --live arms points by their exact name, not a wildcard (%s)",
                          e->name);
            else if (live_stake_point(e->name))
                break; /* a predictor's: the runner's own (live_stake.c) */
            else if (strncmp(e->name, "net/", 4) == 0 && !multi_process(d))
                add_error(errs, e->line, e->arg_col,
                          "run --live: %s has no node-to-node link (the mirror is a disk of "
                          "primary's process)",
                          e->name);
            else if (strncmp(e->name, "disk/", 5) != 0 && strncmp(e->name, "crash/", 6) != 0 &&
                     strncmp(e->name, "net/", 4) != 0)
                add_error(errs, e->line, e->arg_col,
                          "run --live does not arm %s yet (disk/, crash/ and net/ points are "
                          "live)",
                          e->name);
            else if (process_of(d, lane) < 0)
                add_error(errs, e->line, e->arg_col,
                          "run --live: no process of this drill runs node %s%s", lane,
                          strncmp(e->name, "net/", 4) == 0 ? " (a link's points act in its "
                                                             "sender)"
                                                           : "");
            break;
        }
        case DRILL_PARTITION:
            for (int side = 0; (c & DRILL_STAKE) != 0 && side < 2; side++)
                for (int k = 0; k < e->side_count[side]; k++)
                    if (strncmp(e->side[side][k], "predictor", 9) == 0 ||
                        strcmp(e->side[side][k], "ledger") == 0) {
                        add_error(errs, e->line, e->arg_col,
                                  "run --live cannot cut %s off: the predictors' predictions "
                                  "are the runner's HTTP requests to the ledger's process",
                                  e->side[side][k]);
                        side = 2;
                        break;
                    }
            /* links are cut in the senders' transports: node to node only */
            for (int side = 0; multi_process(d) && side < 2; side++)
                for (int k = 0; k < e->side_count[side]; k++)
                    if (process_of(d, e->side[side][k]) < 0) {
                        add_error(errs, e->line, e->arg_col,
                                  "run --live cuts links between nodes that run a process; "
                                  "%s does not (a client's own link cannot be cut live)",
                                  e->side[side][k]);
                        side = 2;
                        break;
                    }
            break;
        case DRILL_HEAL:
            break;
        case DRILL_GO_OFFLINE:
        case DRILL_GO_ONLINE:
            if (rest != DRILL_OFFLINE)
                add_error(errs, e->line, e->col, "run --live plays `%s` in topology offline "
                                                 "only",
                          drill_action_name(e->action));
            break;
        case DRILL_FAILOVER:
            if (rest != DRILL_ASYNC || strcmp(e->name, "secondary") != 0)
                add_error(errs, e->line, e->col,
                          "run --live plays `failover secondary` of topology async only "
                          "(POST /replication/failover on the secondary's process)");
            break;
        case DRILL_OP:
        case DRILL_CHECKPOINT:
        case DRILL_DRAIN:
            break;
        }
    }
    return errs->count > before ? -EINVAL : 0;
}

/* ---- serve processes --------------------------------------------------- */

static void fifo_paths(pid_t pid, char in[256], char out[256])
{
    const char *tmp = getenv("TMPDIR");
    const char *dir = tmp != NULL && tmp[0] ? tmp : "/tmp";
    snprintf(in, 256, "%s/fiu-ctrl-%d.in", dir, (int)pid);
    snprintf(out, 256, "%s/fiu-ctrl-%d.out", dir, (int)pid);
}

/* A process that died: its fifos stay behind (libfiu removes them only at exit). */
static void forget_fifos(pid_t pid)
{
    char in[256], out[256];
    fifo_paths(pid, in, out);
    unlink(in);
    unlink(out);
}

/* The port in a serve banner ("... http://127.0.0.1:PORT/ ..."), 0: not yet. */
static int banner_port(const char *log)
{
    FILE *f = fopen(log, "r");
    if (f == NULL)
        return 0;
    char line[1024];
    int port = 0;
    while (port == 0 && fgets(line, sizeof(line), f) != NULL) {
        static const char banner[] = "faultdrill serve: http://127.0.0.1:";
        const char *p = strstr(line, banner);
        if (p != NULL)
            port = atoi(p + strlen(banner));
    }
    fclose(f);
    return port;
}

/* The command line of node n's serve process. */
struct live_argv {
    const char *v[96]; /* offline locals=16: 17 nodes, 16 --peer each */
    size_t n;
    char port[16], threads[16], data[WORLD_PATH_MAX + 64], delay[24], interval[24], retries[16];
    char latency[24], jitter[24], net_seed[24];
    char replicas[16], ttl[24];
    char peers[DRILL_NODES_MAX][FAULTS_NODE_MAX + 32];
};

static void arg(struct live_argv *a, const char *v)
{
    if (a->n + 1 < sizeof(a->v) / sizeof(a->v[0]))
        a->v[a->n++] = v;
    a->v[a->n] = NULL;
}

/* Whether node `name` is told where `peer` listens: every other node, but in a cluster
 * a replica knows only the leader and the registry, and the registry nobody (it learns
 * where its clients listen from their authenticated messages). */
static bool peer_of(const struct drill *d, const char *name, const char *peer)
{
    if (!is_cluster(d) || strcmp(name, "leader") == 0)
        return true;
    if (strncmp(name, "replica", 7) == 0)
        return strcmp(peer, "leader") == 0 || strcmp(peer, "registry") == 0;
    return false;
}

static void build_argv(struct live *L, int n, struct live_argv *a)
{
    struct sim *s = L->s;
    const struct drill_topology *t = &s->drill->topology;
    const char *name = s->nodes[n].name;
    memset(a, 0, sizeof(*a));
    snprintf(a->port, sizeof(a->port), "%d", L->procs[n].port);
    snprintf(a->threads, sizeof(a->threads), "%d", s->client_count + 16);
    arg(a, L->exe);
    arg(a, "serve");
    arg(a, "--port");
    arg(a, a->port);
    arg(a, "--allow-faults");
    arg(a, "--no-demo");
    arg(a, "--threads");
    arg(a, a->threads);
    arg(a, "--sync");
    arg(a, t->sync_normal ? "normal" : "full");
    if (!multi_process(s->drill)) {
        bool mirror = (t->components & DRILL_MIRROR) != 0;
        arg(a, "--data");
        arg(a, s->workdir);
        arg(a, "--topology");
        arg(a, mirror ? "mirror" : "single");
        arg(a, "--policy");
        arg(a, t->policy == MIRROR_DEGRADE ? "degrade" : "strict");
        arg(a, "--ack");
        arg(a, t->ack == MIRROR_ACK_EARLY ? "early" : "both");
        if ((t->components & DRILL_STAKE) != 0)
            arg(a, "--stake"); /* the ledger the simulator's setup made in DATA */
        return;
    }
    /* the node's own directory (runner.c put its file there), the shared secret, and
     * where each other node listens: as a user wires the processes by hand */
    snprintf(a->data, sizeof(a->data), "%.500s/%s", s->workdir, name);
    arg(a, "--data");
    arg(a, a->data);
    bool mirrored = (t->components & DRILL_MIRROR) != 0;
    arg(a, "--topology");
    if ((t->components & DRILL_ASYNC) != 0)
        arg(a, mirrored ? "mirror async" : "async");
    else if ((t->components & DRILL_CLUSTER) != 0)
        arg(a, mirrored ? "mirror cluster" : "cluster");
    else
        arg(a, mirrored ? "mirror offline" : "offline");
    arg(a, "--role");
    arg(a, name);
    if (mirrored && n == process_of(s->drill, "mirror")) {
        arg(a, "--policy");
        arg(a, t->policy == MIRROR_DEGRADE ? "degrade" : "strict");
        arg(a, "--ack");
        arg(a, t->ack == MIRROR_ACK_EARLY ? "early" : "both");
    }
    arg(a, "--secret-file");
    arg(a, L->secret);
    for (size_t m = 0; m < s->node_count; m++) {
        if (m == (size_t)n || L->procs[m].port <= 0 || !peer_of(s->drill, name, s->nodes[m].name))
            continue;
        snprintf(a->peers[m], sizeof(a->peers[m]), "%s=http://127.0.0.1:%d", s->nodes[m].name,
                 L->procs[m].port);
        arg(a, "--peer");
        arg(a, a->peers[m]);
    }
    /* the drill's network: each sender's transport delays its messages */
    snprintf(a->latency, sizeof(a->latency), "%" PRId64 "us", t->latency_us);
    snprintf(a->jitter, sizeof(a->jitter), "%" PRId64 "us", t->jitter_us);
    snprintf(a->net_seed, sizeof(a->net_seed), "%" PRIu64, s->seed);
    arg(a, "--latency");
    arg(a, a->latency);
    arg(a, "--jitter");
    arg(a, a->jitter);
    arg(a, "--net-seed");
    arg(a, a->net_seed);
    if ((t->components & DRILL_STAKE) != 0 && n == process_of(s->drill, "ledger"))
        arg(a, "--stake"); /* the ledger the simulator's setup made, moved into its DATA */
    if (is_cluster(s->drill)) {
        /* every node is told the cluster's shape; the leader starts none of them itself
         * (each has a --peer), so the runner can kill and restart each by its pid */
        snprintf(a->replicas, sizeof(a->replicas), "%d", t->replicas);
        arg(a, "--replicas");
        arg(a, a->replicas);
        if (t->cache != DRILL_CACHE_OFF && strncmp(name, "replica", 7) == 0) {
            snprintf(a->ttl, sizeof(a->ttl), "%" PRId64, t->cache_ttl_us / 1000);
            arg(a, "--cache");
            arg(a, t->cache == DRILL_CACHE_ON ? "on" : "naive");
            arg(a, "--ttl");
            arg(a, a->ttl);
        }
        if (t->propagate_before_commit && strcmp(name, "leader") == 0) {
            arg(a, "--propagate");
            arg(a, "before-commit");
        }
        return;
    }
    if ((t->components & DRILL_ASYNC) != 0) {
        snprintf(a->delay, sizeof(a->delay), "%" PRId64, t->async_delay_us / 1000);
        arg(a, "--delay");
        arg(a, a->delay);
        arg(a, "--outbox");
        arg(a, t->outbox_off ? "off" : "on");
    } else {
        int64_t ms = t->sync_interval_us / 1000;
        snprintf(a->interval, sizeof(a->interval), "%" PRId64, ms > 0 ? ms : 1);
        snprintf(a->retries, sizeof(a->retries), "%d", t->retries > 0 ? t->retries : 5);
        arg(a, "--interval");
        arg(a, a->interval);
        arg(a, "--retries");
        arg(a, a->retries);
        arg(a, "--queue");
        arg(a, t->queue_separate ? "separate" : "same");
    }
}

/* Starts node n's serve process on the run's data (not under the lock). */
static int proc_start(struct live *L, int n, char *msg, size_t len)
{
    struct sim *s = L->s;
    struct live_proc *p = &L->procs[n];
    snprintf(p->log, sizeof(p->log), "%s/serve-%s-%u.log", s->workdir, s->nodes[n].name,
             p->incarnation + 1);
    struct live_argv *args = calloc(1, sizeof(*args));
    if (args == NULL) {
        snprintf(msg, len, "out of memory");
        return -ENOMEM;
    }
    build_argv(L, n, args);
    const char *const *argv = args->v;
    int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int err = errno;
        free(args);
        snprintf(msg, len, "cannot create %s: %s", p->log, strerror(err));
        return -err;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(fd);
        free(args);
        snprintf(msg, len, "cannot start serve for %s: %s", s->nodes[n].name, strerror(err));
        return -err;
    }
    if (pid == 0) {
        /* the child: only async-signal-safe calls until exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(L->exe, (char *const *)argv);
        _exit(127);
    }
    close(fd);
    free(args);
    int port = 0;
    for (int waited = 0; waited < LIVE_START_WAIT_MS && port == 0; waited += 20) {
        port = banner_port(p->log);
        int status;
        if (port == 0 && waitpid(pid, &status, WNOHANG) == pid) {
            forget_fifos(pid);
            snprintf(msg, len, "serve for %s exited at start (see %s)", s->nodes[n].name, p->log);
            return -ECHILD;
        }
        if (port == 0)
            usleep(20000);
    }
    if (port == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        forget_fifos(pid);
        snprintf(msg, len, "serve for %s printed no address within %d s", s->nodes[n].name,
                 LIVE_START_WAIT_MS / 1000);
        return -ETIMEDOUT;
    }
    pthread_mutex_lock(&L->lock);
    p->pid = pid;
    p->port = port;
    p->incarnation++;
    snprintf(p->base, sizeof(p->base), "http://127.0.0.1:%d", port);
    pthread_mutex_unlock(&L->lock);
    return 0;
}

/* SIGKILL (a crash) or SIGTERM (a clean stop, SIGKILL if it will not). */
static void proc_stop(struct live *L, int n, bool crash)
{
    struct live_proc *p = &L->procs[n];
    pthread_mutex_lock(&L->lock);
    pid_t pid = p->pid;
    p->pid = 0;
    p->base[0] = '\0';
    pthread_mutex_unlock(&L->lock);
    if (pid <= 0)
        return;
    kill(pid, crash ? SIGKILL : SIGTERM);
    int status = 0;
    for (int waited = 0; !crash && waited < LIVE_STOP_WAIT_MS; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return;
        usleep(10000);
    }
    if (!crash)
        kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    forget_fifos(pid);
}

/* ---- fault control: the process's fiu-ctrl fifo ---------------------- */

/* One command, one reply (an integer); -ETIMEDOUT when the process does not answer. */
static int fifo_command(pid_t pid, const char *cmd, long *reply)
{
    char in[256], out[256];
    fifo_paths(pid, in, out);
    int fd = -1;
    for (int waited = 0; waited < LIVE_FIFO_WAIT_MS; waited += 5) {
        fd = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0 || kill(pid, 0) != 0)
            break;
        usleep(5000); /* its reader reopens between commands */
    }
    if (fd < 0)
        return -ETIMEDOUT;
    char line[FAULTS_NAME_MAX + 160];
    int n = snprintf(line, sizeof(line), "%s\n", cmd);
    ssize_t w = write(fd, line, (size_t)n);
    close(fd);
    if (w != n)
        return -EIO;
    int rd = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (rd < 0)
        return -errno;
    char buf[32];
    size_t got = 0;
    for (int waited = 0; waited < LIVE_FIFO_WAIT_MS; waited += 2) {
        ssize_t r = read(rd, buf + got, sizeof(buf) - 1 - got);
        if (r > 0) {
            got += (size_t)r;
            if (memchr(buf, '\n', got) != NULL)
                break;
            continue;
        }
        if (kill(pid, 0) != 0)
            break;
        usleep(2000);
    }
    close(rd);
    if (got == 0 || memchr(buf, '\n', got) == NULL)
        return -ETIMEDOUT;
    buf[got] = '\0';
    *reply = strtol(buf, NULL, 10);
    return 0;
}

/* The fault's counts from its process (before it is disarmed or the process stops). */
static void fault_counts(struct live *L, struct world_fault *f, int n)
{
    pid_t pid = L->procs[n].pid;
    long v = 0;
    char cmd[FAULTS_NAME_MAX + 32];
    if (pid <= 0)
        return;
    char point[FAULTS_NAME_MAX];
    const char *name = point_in_process(L->s->drill, f->name, point);
    snprintf(cmd, sizeof(cmd), "faultdrill-reached name=%s", name);
    if (fifo_command(pid, cmd, &v) == 0 && v >= 0)
        f->reached += (uint64_t)v;
    snprintf(cmd, sizeof(cmd), "faultdrill-fired name=%s", name);
    if (fifo_command(pid, cmd, &v) == 0 && v >= 0)
        f->fired += (uint64_t)v;
}

/* Arms f (the drill's statement e) in node n's process. */
static int fault_send(struct live *L, const struct drill_event *e, const struct world_fault *f,
                      int n)
{
    pid_t pid = L->procs[n].pid;
    if (pid <= 0)
        return -ESRCH;
    struct faults_arm_spec spec = e->spec;
    if (spec.count > 0) {
        if (f->fired >= spec.count)
            return 0; /* used up before its process restarted */
        spec.count -= f->fired;
    }
    char cmd[FAULTS_NAME_MAX + 160], point[FAULTS_NAME_MAX];
    const struct faults_point *fp = faults_lookup(e->name);
    int64_t info = fp != NULL && fp->delay_us_default > 0 ? spec.delay_us : spec.err;
    snprintf(cmd, sizeof(cmd),
             "faultdrill-arm name=%s,failinfo=%" PRId64 ",p=%.17g,count=%" PRIu64
             ",after=%" PRIu64,
             point_in_process(L->s->drill, e->name, point), info, spec.p > 0 ? spec.p : 1.0,
             spec.count, spec.after);
    long reply = -1;
    int err = fifo_command(pid, cmd, &reply);
    return err ? err : reply == 0 ? 0 : -EINVAL;
}

static void heal_fault(struct live *L, struct world_fault *f)
{
    struct sim *s = L->s;
    if (!f->armed)
        return;
    int n = process_of(s->drill, f->lane);
    if (live_stake_point(f->name)) {
        live_stake_disarm(f);
    } else if (n >= 0 && L->procs[n].pid > 0) {
        fault_counts(L, f, n);
        char cmd[FAULTS_NAME_MAX + 32];
        long reply = 0;
        char point[FAULTS_NAME_MAX];
        snprintf(cmd, sizeof(cmd), "faultdrill-disarm name=%s",
                 point_in_process(s->drill, f->name, point));
        fifo_command(L->procs[n].pid, cmd, &reply);
    }
    world_fault_healed(s, f);
}

static void arm_fault(struct live *L, const struct drill_event *e)
{
    struct sim *s = L->s;
    for (size_t i = 0; i < s->fault_count; i++)
        if (s->faults[i].armed && strcmp(s->faults[i].name, e->name) == 0)
            heal_fault(L, &s->faults[i]); /* re-arming replaces */
    struct world_fault *f = world_fault_slot(s, e);
    if (f == NULL)
        return;
    int n = process_of(s->drill, f->lane);
    char why[FAULTS_NAME_MAX + 64] = "";
    if (live_stake_point(e->name) && live_stake_arm(e, why, sizeof(why)) != 0) {
        world_trace(s, f->lane, "fault %s could not be armed: %s", e->name, why);
        return;
    }
    int err = live_stake_point(e->name) ? 0 : n >= 0 ? fault_send(L, e, f, n) : -ESRCH;
    if (err) {
        world_trace(s, f->lane, "fault %s could not be armed: %s", e->name,
                    err == -ESRCH ? "its process is not running" : strerror(-err));
        return;
    }
    world_fault_armed(s, f);
}

/*
 * A partition that separates primary from mirror cuts the mirror's disk off,
 * as in the simulator: its reads, writes and syncs fail with EIO until the
 * heal (the same points a drill arms by hand), in primary's process.
 */
static void cut_mirror(struct live *L, bool cut)
{
    struct sim *s = L->s;
    int p = s->main_node;
    L->mirror_cut = cut;
    if (L->procs[p].pid <= 0)
        return;
    static const char *const ops[] = {"read", "write", "fsync"};
    for (size_t i = 0; i < 3; i++) {
        char cmd[FAULTS_NAME_MAX + 64];
        long reply = 0;
        if (cut)
            snprintf(cmd, sizeof(cmd), "faultdrill-arm name=disk/mirror/%s,failinfo=%d,p=1",
                     ops[i], EIO);
        else
            snprintf(cmd, sizeof(cmd), "faultdrill-disarm name=disk/mirror/%s", ops[i]);
        if (fifo_command(L->procs[p].pid, cmd, &reply) != 0 || reply != 0)
            world_trace(s, "mirror", "partition: disk/mirror/%s could not be %s", ops[i],
                        cut ? "cut" : "mended");
    }
}

/* One link of a partition: net/<from>/<to>/drop in from's process (the sender's
 * transport loses every message, as the simulator's partition does), or mended. */
static void cut_link(struct live *L, int from, int to, bool cut)
{
    struct sim *s = L->s;
    if (L->procs[from].pid <= 0)
        return; /* armed again when it restarts (rearm) */
    char cmd[FAULTS_NAME_MAX + 64];
    long reply = 0;
    if (cut)
        snprintf(cmd, sizeof(cmd), "faultdrill-arm name=net/%s/%s/drop,failinfo=0,p=1",
                 s->nodes[from].name, s->nodes[to].name);
    else
        snprintf(cmd, sizeof(cmd), "faultdrill-disarm name=net/%s/%s/drop", s->nodes[from].name,
                 s->nodes[to].name);
    if (fifo_command(L->procs[from].pid, cmd, &reply) != 0 || reply != 0)
        world_trace(s, s->nodes[from].name, "partition: the link to %s could not be %s",
                    s->nodes[to].name, cut ? "cut" : "mended");
}

/* Async and offline: every link across the partition is cut, both ways. */
static void cut_links(struct live *L, const struct drill_event *e)
{
    struct sim *s = L->s;
    for (int i = 0; i < e->side_count[0]; i++)
        for (int j = 0; j < e->side_count[1]; j++) {
            int a = process_of(s->drill, e->side[0][i]), b = process_of(s->drill, e->side[1][j]);
            if (a < 0 || b < 0 || a == b)
                continue;
            for (int dir = 0; dir < 2; dir++) {
                int from = dir ? b : a, to = dir ? a : b;
                bool known = false;
                for (size_t k = 0; k < L->cut_count; k++)
                    known |= L->cuts[k].from == from && L->cuts[k].to == to;
                if (known || L->cut_count == LIVE_CUTS_MAX)
                    continue;
                L->cuts[L->cut_count].from = from;
                L->cuts[L->cut_count].to = to;
                L->cut_count++;
                cut_link(L, from, to, true);
            }
        }
}

static void partition(struct live *L, const struct drill_event *e)
{
    struct sim *s = L->s;
    bool sides[2][2] = {{false, false}, {false, false}}; /* [side][primary, mirror] */
    for (int side = 0; side < 2; side++)
        for (int i = 0; i < e->side_count[side]; i++) {
            sides[side][0] |= strcmp(e->side[side][i], "primary") == 0;
            sides[side][1] |= strcmp(e->side[side][i], "mirror") == 0;
        }
    bool separated = (sides[0][0] && sides[1][1]) || (sides[1][0] && sides[0][1]);
    s->partition.active = true;
    world_trace(s, "-", "partition %s%s | %s%s", e->side[0][0], e->side_count[0] > 1 ? " ..." : "",
                e->side[1][0], e->side_count[1] > 1 ? " ..." : "");
    world_mark(s, e->side[0][0], REPORT_PARTITION, "partition %s | %s", e->side[0][0],
               e->side[1][0]);
    if ((s->drill->topology.components & DRILL_MIRROR) != 0)
        cut_mirror(L, separated);
    if (multi_process(s->drill))
        cut_links(L, e);
}

static void heal_partition(struct live *L)
{
    struct sim *s = L->s;
    if (!s->partition.active)
        return;
    s->partition.active = false;
    if (L->mirror_cut)
        cut_mirror(L, false);
    for (size_t k = 0; k < L->cut_count; k++)
        cut_link(L, L->cuts[k].from, L->cuts[k].to, false);
    L->cut_count = 0;
    world_trace(s, "-", "heal partition");
    world_mark(s, "-", REPORT_HEAL, "partition healed");
}

/* A new process of node n: the faults armed on its points are armed again. */
static void rearm(struct live *L, int n)
{
    struct sim *s = L->s;
    if (L->mirror_cut && n == s->main_node)
        cut_mirror(L, true);
    for (size_t k = 0; k < L->cut_count; k++)
        if (L->cuts[k].from == n)
            cut_link(L, n, L->cuts[k].to, true);
    for (size_t i = 0; i < s->fault_count; i++) {
        struct world_fault *f = &s->faults[i];
        if (f->armed && process_of(s->drill, f->lane) == n)
            fault_send(L, &s->drill->events[f->event], f, n);
    }
}

/* ---- HTTP clients ----------------------------------------------------- */

struct reply {
    CURLcode cc;
    long status;
    char *body;
    size_t len;
    bool cut;
    bool has_position;
    int64_t position;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t add = size * n;
    if (r->len + add > LIVE_BODY_MAX) {
        r->cut = true;
        return add;
    }
    char *grown = realloc(r->body, r->len + add + 1);
    if (grown == NULL)
        return 0;
    r->body = grown;
    memcpy(r->body + r->len, data, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t len = size * n;
    static const char name[] = "x-faultdrill-position:";
    if (len > sizeof(name) && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        char v[32];
        size_t vl = len - (sizeof(name) - 1);
        if (vl >= sizeof(v))
            vl = sizeof(v) - 1;
        memcpy(v, data + sizeof(name) - 1, vl);
        v[vl] = '\0';
        r->position = strtoll(v, NULL, 10);
        r->has_position = true;
    }
    return len;
}

/* One request to base+path within timeout_ms; r->body is malloc'd (free it). */
static void request_within(CURL *h, const char *base, const char *method, const char *path,
                           const char *json, struct reply *r, long timeout_ms, int64_t session)
{
    memset(r, 0, sizeof(*r));
    if (base[0] == '\0') {
        r->cc = CURLE_COULDNT_CONNECT; /* the node's process is down */
        return;
    }
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    struct curl_slist *headers = NULL;
    if (session >= 0) { /* cluster: the client's session, as its node picked it */
        char line[64];
        snprintf(line, sizeof(line), "X-Faultdrill-Session: %" PRId64, session);
        headers = curl_slist_append(headers, line);
    }
    if (strcmp(method, "GET") != 0) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json != NULL ? json : "");
    }
    if (headers != NULL)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    r->cc = curl_easy_perform(h);
    if (r->cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(headers);
}

/* A client's request: unanswered after LIVE_TIMEOUT_MS, its outcome is unknown. */
static void request(CURL *h, const char *base, const char *method, const char *path,
                    const char *json, struct reply *r)
{
    request_within(h, base, method, path, json, r, LIVE_TIMEOUT_MS, -1);
}

/* An admin request to node n's process (not under the lock); its reply parsed (NULL:
 * no 2xx JSON reply, `why` says what came instead). */
static cJSON *admin(struct live *L, int n, const char *method, const char *path, char *why,
                    size_t len)
{
    char base[64];
    pthread_mutex_lock(&L->lock);
    snprintf(base, sizeof(base), "%s", L->procs[n].base);
    pthread_mutex_unlock(&L->lock);
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(why, len, "out of memory");
        return NULL;
    }
    struct reply r;
    request_within(h, base, method, path, method[0] == 'P' ? "{}" : NULL, &r,
                   LIVE_ADMIN_TIMEOUT_MS, -1);
    curl_easy_cleanup(h);
    cJSON *j = NULL;
    if (r.cc != CURLE_OK)
        snprintf(why, len, "%s %s: %s", method, path,
                 base[0] ? curl_easy_strerror(r.cc) : "its process is not running");
    else if (r.status < 200 || r.status >= 300)
        snprintf(why, len, "%s %s answered %ld: %.160s", method, path, r.status,
                 r.body != NULL ? r.body : "");
    else if ((j = cJSON_Parse(r.body)) == NULL)
        snprintf(why, len, "%s %s: the reply is not JSON", method, path);
    free(r.body);
    return j;
}

/* What an operation asked, copied out of the history (which other threads grow). */
struct ask {
    uint32_t id;
    int client;
    enum drill_op kind;
    int64_t user_id, product_id, qty, order_id;
    char email[SHOP_EMAIL_MAX + 1];
    uint32_t created_users;
    int node;
    char base[64];
    int64_t session; /* cluster: X-Faultdrill-Session; -1: none */
};

/* A client's request, as its ask says (its node, its session). */
static void request_as(CURL *h, const struct ask *q, const char *method, const char *path,
                       const char *json, struct reply *r)
{
    request_within(h, q->base, method, path, json, r, LIVE_TIMEOUT_MS, q->session);
}

/* What came back, to be written into the history. */
struct answer {
    enum sim_outcome outcome;
    int err;
    bool has_position;
    int64_t position;
    int64_t order_id, total_cents, user_id, created_at_us;
    int64_t ids[SIM_SEEN_MAX];
    uint32_t count;
    bool truncated;
};

static int status_errno(long status)
{
    switch (status) {
    case 400:
        return -EINVAL;
    case 404:
        return -ENOENT;
    case 409:
        return -ERANGE;
    case 413:
        return -E2BIG;
    case 503:
        return -EIO;
    default:
        return -EPROTO;
    }
}

/* The outcome of one reply, and the position it carries. */
static bool judge_reply(const struct reply *r, struct answer *a)
{
    if (r->cc == CURLE_COULDNT_CONNECT) {
        a->outcome = SIM_FAIL; /* never reached a process: nothing applied */
        a->err = -ECONNREFUSED;
        return false;
    }
    if (r->cc != CURLE_OK) {
        a->outcome = SIM_UNKNOWN; /* sent, and no answer: it may have been applied */
        a->err = r->cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNRESET;
        return false;
    }
    if (r->status >= 200 && r->status < 300 && !r->cut) {
        a->outcome = SIM_OK;
        a->err = 0;
        if (r->has_position && (!a->has_position || r->position < a->position)) {
            a->has_position = true;
            a->position = r->position;
        }
        return true;
    }
    if (r->status == 500 && r->body != NULL && strstr(r->body, "outcome unknown") != NULL) {
        a->outcome = SIM_UNKNOWN;
        a->err = -EINPROGRESS;
        return false;
    }
    a->err = r->cut ? -EPROTO : status_errno(r->status);
    if (r->status == 400 && r->body != NULL && strstr(r->body, "empty") != NULL)
        a->err = -ENODATA; /* the cart was empty */
    /* a business rule said no (stock, not found, empty cart...): the system worked */
    a->outcome = platform_is_rejected(a->err) ? SIM_REJECTED : SIM_FAIL;
    return false;
}

static int64_t json_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)llround(v->valuedouble) : 0;
}

static const char *const search_words[] = {"tea", "mug", "lamp", "desk", "sock", "book"};

/* Runs one operation over HTTP (no lock held). */
static void perform(CURL *h, const struct ask *q, struct answer *a)
{
    struct reply r = {0};
    char path[256], body[256];
    memset(a, 0, sizeof(*a));
    switch (q->kind) {
    case DRILL_OP_BROWSE:
        request_as(h, q, "GET", "/products", NULL, &r);
        if (judge_reply(&r, a)) {
            free(r.body);
            snprintf(path, sizeof(path), "/products/%" PRId64, q->product_id);
            request_as(h, q, "GET", path, NULL, &r);
            judge_reply(&r, a);
        }
        break;
    case DRILL_OP_SEARCH:
        snprintf(path, sizeof(path), "/products?q=%s&inStock=true",
                 search_words[q->product_id % (int64_t)(sizeof(search_words) / sizeof(*search_words))]);
        request_as(h, q, "GET", path, NULL, &r);
        judge_reply(&r, a);
        break;
    case DRILL_OP_CART_ADD:
        snprintf(path, sizeof(path), "/cart/%" PRId64, q->user_id);
        snprintf(body, sizeof(body), "{\"productId\":%" PRId64 ",\"quantity\":%" PRId64 "}",
                 q->product_id, q->qty);
        request_as(h, q, "POST", path, body, &r);
        judge_reply(&r, a);
        break;
    case DRILL_OP_CART_REMOVE:
        snprintf(path, sizeof(path), "/cart/%" PRId64 "/item/%" PRId64, q->user_id,
                 q->product_id);
        request_as(h, q, "DELETE", path, NULL, &r);
        judge_reply(&r, a);
        break;
    case DRILL_OP_CHECKOUT:
        snprintf(path, sizeof(path), "/cart/%" PRId64 "/checkout", q->user_id);
        request_as(h, q, "POST", path, NULL, &r);
        if (judge_reply(&r, a)) {
            cJSON *o = cJSON_Parse(r.body);
            a->order_id = json_int(o, "id");
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "total");
            a->total_cents = cJSON_IsNumber(t) ? (int64_t)llround(t->valuedouble * 100) : 0;
            a->created_at_us = json_int(o, "createdAtUs");
            if (a->order_id <= 0) {
                a->outcome = SIM_FAIL;
                a->err = -EPROTO;
            }
            cJSON_Delete(o);
        }
        break;
    case DRILL_OP_ORDER_STATUS:
        snprintf(path, sizeof(path), "/orders/%" PRId64, q->user_id);
        request_as(h, q, "GET", path, NULL, &r);
        if (judge_reply(&r, a)) {
            cJSON *list = cJSON_Parse(r.body);
            const cJSON *o;
            cJSON_ArrayForEach(o, list)
            {
                if (a->count == SIM_SEEN_MAX) {
                    a->truncated = true;
                    break;
                }
                a->ids[a->count++] = json_int(o, "id");
            }
            if (!cJSON_IsArray(list)) {
                a->outcome = SIM_FAIL;
                a->err = -EPROTO;
            }
            cJSON_Delete(list);
        }
        break;
    case DRILL_OP_ORDER_CANCEL:
        if (q->order_id <= 0) {
            a->outcome = SIM_REJECTED; /* nothing to cancel: the simulator's node says so too */
            a->err = -ENOENT;
            return;
        }
        snprintf(path, sizeof(path), "/orders/%" PRId64, q->order_id);
        request_as(h, q, "PUT", path, "{\"status\":\"cancelled\"}", &r);
        judge_reply(&r, a);
        break;
    case DRILL_OP_USER_CREATE:
        snprintf(body, sizeof(body), "{\"name\":\"New shopper\",\"email\":\"c%d.%u@drill.example\"}",
                 q->client, q->created_users);
        request_as(h, q, "POST", "/users", body, &r);
        if (judge_reply(&r, a)) {
            cJSON *o = cJSON_Parse(r.body);
            a->user_id = json_int(o, "id");
            cJSON_Delete(o);
        }
        break;
    case DRILL_OP_USER_UPDATE: {
        char *email = curl_easy_escape(h, q->email, 0);
        snprintf(path, sizeof(path), "/users/%s", email != NULL ? email : "");
        curl_free(email);
        snprintf(body, sizeof(body), "{\"name\":\"Shopper %u\"}", q->id);
        request_as(h, q, "PUT", path, body, &r);
        judge_reply(&r, a);
        break;
    }
    case DRILL_OP_COUNT:
        a->outcome = SIM_FAIL;
        a->err = -EINVAL;
        return;
    }
    free(r.body);
}

/* Under the lock: a new operation of client c, issued now; fills q. NULL: none. */
static struct sim_op *issue(struct live *L, int client, enum drill_op kind, int64_t product,
                            int64_t qty, bool is_explicit, struct ask *q)
{
    struct sim *s = L->s;
    tick(L);
    struct sim_op *op = world_new_op(s, client, kind);
    if (op == NULL)
        return NULL;
    world_op_prepare(s, op, product, qty, is_explicit);
    /* cluster: the client's node picks the replica and the session it sends; else the
     * topology's rule (offline: client c writes to local (c-1) % N), else the main node */
    int n = s->main_node;
    int64_t session = -1;
    if (L->clients_host != NULL) {
        struct node_pick pick;
        char name[FAULTS_NODE_MAX];
        if (live_clients_pick(L->clients_host, client, &pick) == 0) {
            snprintf(name, sizeof(name), "%s", pick.replica);
            n = world_node_index(s, name) >= 0 ? world_node_index(s, name) : n;
            op->via = n;
            op->healthy_mask = pick.healthy_mask;
            op->min_seq = pick.session.position;
            session = pick.session.position;
        }
    } else if (s->topo != NULL && s->topo->route != NULL) {
        n = s->topo->route(s, op);
    }
    if (n < 0)
        n = s->main_node;
    char lane[32];
    snprintf(lane, sizeof(lane), "client%d", client);
    world_trace(s, lane, "%s #%u -> %s", drill_op_name(kind), op->id, s->nodes[n].name);
    *q = (struct ask){.id = op->id,
                      .client = client,
                      .kind = kind,
                      .user_id = op->user_id,
                      .product_id = op->product_id,
                      .qty = op->qty,
                      .order_id = op->order_id,
                      .created_users = s->clients[client].created_users,
                      .node = n,
                      .session = session};
    snprintf(q->email, sizeof(q->email), "%s", s->clients[client].email);
    snprintf(q->base, sizeof(q->base), "%s", L->procs[n].base);
    L->issued++;
    return op;
}

/* The lineage of positions a reply of node n speaks in: a mirror's change
 * sequence lives in its files; a single copy counts its commit groups since
 * its process started, so each incarnation is a lineage of its own. */
static int lineage_of(const struct live *L, int n)
{
    /* an async primary numbers its changes in its outbox, kept in its file (as the
     * simulator's async_position); every other copy counts its own commit groups */
    const struct drill_topology *t = &L->s->drill->topology;
    if (is_cluster(L->s->drill)) /* every copy speaks in the leader's sequence */
        return L->s->main_node;
    /* a mirror's sequence: the mirrored node's process only (mirror async: not the
     * secondary's single copy) */
    bool mirror_pair = (t->components & DRILL_MIRROR) != 0 &&
                       (!multi_process(L->s->drill) || n == process_of(L->s->drill, "mirror"));
    bool persistent = mirror_pair ||
                      ((t->components & DRILL_ASYNC) != 0 && !t->outbox_off &&
                       strcmp(L->s->nodes[n].name, "primary") == 0);
    return persistent ? n : n + DRILL_NODES_MAX * (int)L->procs[n].incarnation;
}

/* Under the lock: the answer goes into the history; the client hears it. */
static void complete(struct live *L, const struct ask *q, const struct answer *a)
{
    struct sim *s = L->s;
    tick(L);
    struct sim_op *op = &s->ops[q->id - 1];
    /* a cluster's write is the leader's (the replica forwarded it), as in the simulator */
    op->node = is_cluster(s->drill) && op->is_write ? s->main_node : q->node;
    op->err = a->err;
    op->served_us = s->now_us;
    if (a->outcome == SIM_OK && q->kind == DRILL_OP_CHECKOUT) {
        op->order_id = a->order_id;
        op->total_cents = a->total_cents;
        op->served_us = a->created_at_us; /* the order row carries the server's time */
    }
    if (a->outcome == SIM_OK && q->kind == DRILL_OP_USER_CREATE && a->user_id > 0)
        op->user_id = a->user_id;
    int lineage = lineage_of(L, q->node);
    int64_t pos = a->outcome == SIM_OK && a->has_position ? a->position : -1;
    if (op->is_write) {
        op->lineage = lineage;
        op->pos = pos;
        op->seq = pos > 0 ? pos : 0;
    } else {
        s->read_count = 0;
        session_read_at(s, op, lineage, pos, a->ids, a->count, a->truncated);
    }
    if (a->outcome == SIM_OK && q->kind == DRILL_OP_USER_CREATE && a->user_id > 0) {
        if (L->user_count == L->user_cap) {
            size_t cap = L->user_cap ? 2 * L->user_cap : 64;
            struct live_user *grown = realloc(L->users, cap * sizeof(*grown));
            if (grown != NULL) {
                L->users = grown;
                L->user_cap = cap;
            }
        }
        if (L->user_count < L->user_cap)
            L->users[L->user_count++] =
                (struct live_user){.op = q->id, .client = q->client, .n = q->created_users};
    }
    if (L->clients_host != NULL && op->via >= 0 && (size_t)op->via < s->node_count) {
        /* the client's node hears how it ended: its session, or a replica to rest */
        bool answered = !(a->err == -ECONNREFUSED || a->err == -ETIMEDOUT ||
                          a->err == -ECONNRESET);
        if (!answered)
            world_trace(s, "-", "client%d: #%u had no answer from %s", q->client, q->id,
                        s->nodes[op->via].name);
        live_clients_done(L->clients_host, q->client, s->nodes[op->via].name, answered, pos);
    }
    world_complete(s, op, a->outcome);
}

struct client_arg {
    struct live *L;
    int client;
    /* an explicit `op` line */
    const struct drill_event *e;
};

static void *client_main(void *arg)
{
    struct client_arg *ca = arg;
    struct live *L = ca->L;
    struct sim *s = L->s;
    int c = ca->client;
    CURL *h = curl_easy_init();
    pthread_mutex_lock(&L->lock);
    const struct drill_workload *w = s->clients[c].workload;
    int64_t until = w->until_us < s->drill->duration_us ? w->until_us : s->drill->duration_us;
    int64_t next = world_think_us(s, c);
    struct live_hops hops;
    live_hops_init(&hops, &s->drill->topology, s->seed, c);
    pthread_mutex_unlock(&L->lock);
    while (h != NULL && next < until && sleep_until(L, next, true)) {
        struct ask q;
        pthread_mutex_lock(&L->lock);
        int64_t late = live_now(L) - next;
        if (late > LIVE_LATE_US)
            L->late_ops++;
        if (late > 0 && (uint64_t)late > L->late_max_us)
            L->late_max_us = (uint64_t)late;
        struct sim_op *op = s->workload_stopped
                                ? NULL
                                : issue(L, c, workload_pick(s, c), 0, 0, false, &q);
        pthread_mutex_unlock(&L->lock);
        if (op == NULL)
            break;
        struct answer a;
        live_hop(&hops); /* the request's way there, and the reply's back */
        perform(h, &q, &a);
        live_hop(&hops);
        pthread_mutex_lock(&L->lock);
        complete(L, &q, &a);
        next = s->now_us + world_think_us(s, c);
        pthread_mutex_unlock(&L->lock);
    }
    curl_easy_cleanup(h);
    free(ca);
    return NULL;
}

/* An `op` line: one operation beside the client's own loop. */
static void *explicit_main(void *arg)
{
    struct client_arg *ca = arg;
    struct live *L = ca->L;
    const struct drill_event *e = ca->e;
    CURL *h = curl_easy_init();
    struct ask q;
    pthread_mutex_lock(&L->lock);
    struct sim_op *op = h != NULL ? issue(L, e->client, e->op, e->product, e->qty, true, &q)
                                  : NULL;
    pthread_mutex_unlock(&L->lock);
    struct live_hops hops;
    live_hops_init(&hops, &L->s->drill->topology, L->s->seed + (uint64_t)e->line, e->client);
    if (op != NULL) {
        struct answer a;
        live_hop(&hops);
        perform(h, &q, &a);
        live_hop(&hops);
        pthread_mutex_lock(&L->lock);
        complete(L, &q, &a);
        pthread_mutex_unlock(&L->lock);
    }
    curl_easy_cleanup(h);
    free(ca);
    return NULL;
}

/* ---- the timeline ------------------------------------------------------ */

/* A crash point that fired in node n's process says so in its log before it dies. */
static void count_crash_point(struct live *L, int n)
{
    struct sim *s = L->s;
    FILE *f = fopen(L->procs[n].log, "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        for (size_t i = 0; i < s->fault_count; i++) {
            struct world_fault *wf = &s->faults[i];
            char said[FAULTS_NAME_MAX + 32];
            snprintf(said, sizeof(said), "crash point %s fired", wf->name);
            if (wf->armed && process_of(s->drill, wf->lane) == n && strstr(line, said) != NULL) {
                wf->reached++;
                wf->fired++;
            }
        }
    }
    if (f != NULL)
        fclose(f);
}

/* A process that died on its own (a crash point fired): the node is down. */
static void reap(struct live *L)
{
    struct sim *s = L->s;
    for (size_t n = 0; n < s->node_count; n++) {
        struct live_proc *p = &L->procs[n];
        int status;
        if (p->pid <= 0 || waitpid(p->pid, &status, WNOHANG) != p->pid)
            continue;
        pid_t pid = p->pid;
        forget_fifos(pid);
        pthread_mutex_lock(&L->lock);
        p->pid = 0;
        p->base[0] = '\0';
        tick(L);
        struct world_node *node = &s->nodes[n];
        node->up = false;
        node->crashes++;
        s->epoch++;
        L->killed_us[n] = s->now_us;
        count_crash_point(L, (int)n);
        bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
        world_trace(s, node->name, "process %d died (%s %d): a crash point, as the simulator's "
                                   "process crash",
                    (int)pid, killed ? "signal" : "exit", killed ? SIGKILL : WEXITSTATUS(status));
        world_mark(s, node->name, REPORT_CRASH, "%s crashed (its process died)", node->name);
        pthread_mutex_unlock(&L->lock);
    }
}

static void heal_everything(struct live *L)
{
    struct sim *s = L->s;
    for (size_t i = 0; i < s->fault_count; i++)
        heal_fault(L, &s->faults[i]);
    heal_partition(L);
}

static int restart(struct live *L, int n, const char *why)
{
    struct sim *s = L->s;
    if (L->procs[n].pid > 0)
        return 0;
    char msg[REPORT_ERR_MAX];
    /* a process starting may send (a replica heartbeats) before it prints its address:
     * from now on the registry may hear it again */
    pthread_mutex_lock(&L->lock);
    L->killed_us[n] = -1;
    pthread_mutex_unlock(&L->lock);
    int err = proc_start(L, n, msg, sizeof(msg));
    pthread_mutex_lock(&L->lock);
    tick(L);
    struct world_node *node = &s->nodes[n];
    if (err) {
        L->killed_us[n] = s->now_us; /* down now; what it sent while starting, heard */
        world_trace(s, node->name, "restart (%s) failed: %s", why, msg);
    } else {
        node->up = true;
        s->epoch++;
        world_trace(s, node->name, "restart (%s): process %d at %s", why, (int)L->procs[n].pid,
                    L->procs[n].base);
        world_mark(s, node->name, REPORT_RESTART, "%s restarted", node->name);
        rearm(L, n);
    }
    pthread_mutex_unlock(&L->lock);
    return err;
}

/* A number of a JSON object (0 when it has none). */
static int64_t json_num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)llround(v->valuedouble) : 0;
}

/* Async: the secondary's status, which the checkers read in place of the core's node
 * (replica-prefix: its position, and whether it ever moved back), asked once its
 * primary has stopped (not under the lock). */
static void async_status_of_secondary(struct live *L, int n)
{
    struct sim *s = L->s;
    char why[256] = "";
    if (L->procs[n].pid <= 0) /* as the simulator's end-of-run recovery brings it back */
        restart(L, n, "recovery, to read the secondary's position");
    cJSON *j = L->procs[n].pid > 0 ? admin(L, n, "GET", "/replication/status", why, sizeof(why))
                                   : NULL;
    pthread_mutex_lock(&L->lock);
    tick(L);
    if (j == NULL) {
        world_trace(s, s->nodes[n].name, "the secondary's status could not be read%s%s",
                    why[0] ? ": " : " (its process is not running)", why);
    } else {
        struct node_async_status st;
        memset(&st, 0, sizeof(st));
        st.position = json_num(j, "position");
        st.position_max = st.position;
        st.changes_applied = (uint64_t)json_num(j, "changesApplied");
        st.moved_back = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "movedBack"));
        if (st.moved_back) {
            st.moved_back_at_us = s->now_us;
            st.moved_back_from = st.position;
            st.moved_back_to = st.position;
        }
        world_trace(s, s->nodes[n].name,
                    "secondary's status: position %" PRId64 ", %" PRIu64 " change(s) applied%s",
                    st.position, st.changes_applied, st.moved_back ? ", its position moved back"
                                                                   : "");
        async_live_status(s, true, &st);
    }
    pthread_mutex_unlock(&L->lock);
    cJSON_Delete(j);
}

/*
 * A created user is told apart from another on a reused id by its row's time, which
 * the simulator's history carries (served_us) and a live reply does not: under the
 * lock, once the files are open, each acknowledged user-create takes the time of the
 * row its own email names on the copy that acknowledged it. A row that is not there
 * leaves the history as it was: the checkers see the loss.
 */
static void user_times(struct live *L)
{
    struct sim *s = L->s;
    for (size_t i = 0; i < L->user_count; i++) {
        struct sim_op *op = &s->ops[L->users[i].op - 1];
        shop *sh = op->node >= 0 && (size_t)op->node < s->node_count ? s->nodes[op->node].shop
                                                                     : NULL;
        char email[SHOP_EMAIL_MAX + 1];
        struct shop_user u;
        snprintf(email, sizeof(email), "c%d.%u@drill.example", L->users[i].client,
                 L->users[i].n);
        if (sh != NULL && shop_user_get_by_email(sh, email, &u) == 0 && u.id == op->user_id)
            op->served_us = u.updated_at_us;
    }
}

/*
 * Cluster: what a node's process says in GET /replication/status stands in for the
 * core's node in the checkers (no-echo: a replica's positions and whether it applied a
 * change twice; converges: the leader's head and its phantoms), asked just before the
 * process stops (not under the lock).
 */
static void cluster_status_of(struct live *L, int n)
{
    struct sim *s = L->s;
    const char *name = s->nodes[n].name;
    bool leader = strcmp(name, "leader") == 0;
    int r = -1;
    if (!leader && sscanf(name, "replica%d", &r) != 1)
        return; /* the registry: its answers are judged by the clients that took them */
    char why[256] = "";
    cJSON *j = L->procs[n].pid > 0 ? admin(L, n, "GET", "/replication/status", why, sizeof(why))
                                   : NULL;
    pthread_mutex_lock(&L->lock);
    tick(L);
    if (j == NULL) {
        world_trace(s, name, "its status could not be read%s%s",
                    why[0] ? ": " : " (its process is not running)", why);
    } else {
        struct node_cluster_status *st = calloc(1, sizeof(*st));
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "leader");
        if (st != NULL && leader) {
            st->head_seq = json_num(l, "seq");
            st->phantoms = (uint64_t)json_num(l, "phantoms");
            st->phantom_seq = json_num(l, "phantomSeq");
            world_trace(s, name, "status: head %" PRId64 ", %" PRIu64 " phantom change(s)",
                        st->head_seq, st->phantoms);
            cluster_live_status(s, -1, st);
        } else if (st != NULL) {
            st->position = json_num(j, "position");
            st->position_max = json_num(j, "positionMax");
            st->changes_applied = (uint64_t)json_num(j, "changesApplied");
            st->applied_twice = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "appliedTwice"));
            st->twice_seq = json_num(j, "twiceSeq");
            st->twice_after = json_num(j, "twiceAfter");
            st->twice_at_us = s->now_us; /* read now; the process's wall time is not the run's */
            world_trace(s, name, "status: position %" PRId64 " (at most %" PRId64 "), %" PRIu64
                                 " change(s) applied%s",
                        st->position, st->position_max, st->changes_applied,
                        st->applied_twice ? ", one of them twice" : "");
            cluster_live_status(s, r - 1, st);
        }
        free(st);
    }
    pthread_mutex_unlock(&L->lock);
    cJSON_Delete(j);
}

/* Cluster: every running replica holds the leader's head (its status says). */
static bool cluster_behind(struct live *L, char *why, size_t len)
{
    struct sim *s = L->s;
    cJSON *j = admin(L, s->main_node, "GET", "/replication/status", why, len);
    if (j == NULL)
        return true;
    int64_t head = json_num(cJSON_GetObjectItemCaseSensitive(j, "leader"), "seq");
    const cJSON *rep;
    bool behind = false;
    cJSON_ArrayForEach(rep, cJSON_GetObjectItemCaseSensitive(j, "replicas"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(rep, "node");
        const cJSON *pos = cJSON_GetObjectItemCaseSensitive(rep, "position");
        if (!cJSON_IsString(name))
            continue;
        if (!cJSON_IsNumber(pos)) {
            snprintf(why, len, "%s has not said hello to the leader (at change %" PRId64 ")",
                     name->valuestring, head);
            behind = true;
            break;
        }
        if ((int64_t)pos->valuedouble < head) {
            snprintf(why, len, "%s is at change %" PRId64 ", the leader at %" PRId64,
                     name->valuestring, (int64_t)pos->valuedouble, head);
            behind = true;
            break;
        }
    }
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "leader");
    size_t used = strlen(why);
    if (behind && json_num(l, "phantoms") > 0 && used < len)
        snprintf(why + used, len - used,
                 ": propagate=before-commit sent %" PRId64 " change(s) whose commit then failed "
                 "(the first, change %" PRId64 "), and the replicas skip the leader's reuse of "
                 "those sequences as duplicates",
                 json_num(l, "phantoms"), json_num(l, "phantomSeq"));
    cJSON_Delete(j);
    return behind;
}

/* Stops every process cleanly and opens the copies from their files (the
 * recovery a restart would run), for the checkers. */
static void open_files(struct live *L, const char *why)
{
    struct sim *s = L->s;
    /* the first node stops first (an async primary hands its secondary what it lacks
     * as it stops; a local's last push finds central up) */
    for (size_t n = 0; n < s->node_count; n++) {
        if ((s->drill->topology.components & DRILL_ASYNC) != 0 &&
            strcmp(s->nodes[n].name, "secondary") == 0)
            async_status_of_secondary(L, (int)n);
        if (is_cluster(s->drill))
            cluster_status_of(L, (int)n);
        proc_stop(L, (int)n, false);
    }
    pthread_mutex_lock(&L->lock);
    tick(L);
    for (size_t n = 0; n < s->node_count; n++)
        if (s->nodes[n].holds_db && s->nodes[n].shop == NULL)
            world_open_shop(s, (int)n, why);
    ledger_live_open(s); /* stake: serve's ledger, judged on its file */
    user_times(L);
    L->judged_files = true;
    pthread_mutex_unlock(&L->lock);
}

/* After a judgement on the files: the processes take their data back. */
static void resume(struct live *L)
{
    struct sim *s = L->s;
    if (!L->judged_files)
        return;
    pthread_mutex_lock(&L->lock);
    for (size_t n = 0; n < s->node_count; n++) {
        shop_close(s->nodes[n].shop);
        s->nodes[n].shop = NULL;
    }
    ledger_live_let_go(s);
    L->judged_files = false;
    pthread_mutex_unlock(&L->lock);
    for (size_t n = 0; n < s->node_count; n++)
        if (runs_process(s->drill, s->nodes[n].name) && s->nodes[n].up)
            restart(L, (int)n, "after the drain's judgement");
}

/* GET /mirror/status of the main process: changes its mirror is behind (-1: unknown). */
static int64_t mirror_behind(struct live *L, CURL *h, int m, char *why, size_t len)
{
    struct reply r;
    char base[64];
    pthread_mutex_lock(&L->lock);
    snprintf(base, sizeof(base), "%s", L->procs[m].base);
    pthread_mutex_unlock(&L->lock);
    request(h, base, "GET", "/mirror/status", NULL, &r);
    int64_t behind = -1;
    if (r.cc == CURLE_OK && r.status == 200) {
        cJSON *o = cJSON_Parse(r.body);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "changesBehind");
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "lastError");
        const cJSON *who = cJSON_GetObjectItemCaseSensitive(o, "behind");
        if (cJSON_IsNumber(b))
            behind = (int64_t)b->valuedouble;
        snprintf(why, len, "copy %s is still %" PRId64 " change(s) behind: %.120s",
                 cJSON_IsString(who) ? who->valuestring : "?", behind,
                 cJSON_IsString(e) ? e->valuestring : "");
        cJSON_Delete(o);
    } else {
        snprintf(why, len, "the mirror's status did not answer");
    }
    free(r.body);
    return behind;
}

/* Async: the primary's status says its secondary confirmed every change. */
static bool async_behind(struct live *L, char *why, size_t len)
{
    int p = world_node_index(L->s, "primary");
    cJSON *j = admin(L, p, "GET", "/replication/status", why, len);
    if (j == NULL)
        return true;
    int64_t lag = json_num(j, "lagChanges");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "state");
    if (lag > 0)
        snprintf(why, len, "secondary has confirmed change %" PRId64 " of %" PRId64 " (%s)",
                 json_num(j, "secondarySeq"), json_num(j, "primarySeq"),
                 cJSON_IsString(state) ? state->valuestring : "?");
    cJSON_Delete(j);
    return lag > 0;
}

static bool local_behind(struct live *L, int n, char *why, size_t len);

/* Offline: no local's sync queue has a PENDING or FAILED row. */
static bool offline_behind(struct live *L, char *why, size_t len)
{
    for (size_t n = 0; n < L->s->node_count; n++)
        if (strncmp(L->s->nodes[n].name, "local", 5) == 0 && local_behind(L, (int)n, why, len))
            return true;
    return false;
}

/* Offline: local n's sync queue has a PENDING or FAILED row (or cannot say). */
static bool local_behind(struct live *L, int n, char *why, size_t len)
{
    cJSON *j = admin(L, n, "GET", "/sync/status", why, len);
    if (j == NULL)
        return true;
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "rows");
    int64_t pending = json_num(rows, "pending"), failed = json_num(rows, "failed");
    bool readable = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "queueError"));
    if (!readable)
        snprintf(why, len, "the sync queue of %s cannot be read", L->s->nodes[n].name);
    else if (pending + failed > 0)
        snprintf(why, len,
                 "%s still has %" PRId64 " PENDING and %" PRId64 " FAILED sync row(s), the "
                 "oldest waiting %.3fs",
                 L->s->nodes[n].name, pending, failed, cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(
                                      j, "oldestPendingSeconds"))
                                      ? cJSON_GetObjectItemCaseSensitive(j, "oldestPendingSeconds")
                                            ->valuedouble
                                      : 0.0);
    cJSON_Delete(j);
    return !readable || pending + failed > 0;
}

/* What keeps the system from being quiet (under no lock). */
static bool drain_pending(struct live *L, CURL *h, char *why, size_t len)
{
    struct sim *s = L->s;
    pthread_mutex_lock(&L->lock);
    size_t pending = (size_t)s->explicit_pending;
    for (int c = 1; c <= s->client_count; c++)
        pending += s->clients[c].pending_op != 0;
    pthread_mutex_unlock(&L->lock);
    if (pending > 0) {
        snprintf(why, len, "%zu client operation(s) still in flight", pending);
        return true;
    }
    for (size_t n = 0; n < s->node_count; n++) {
        if (runs_process(s->drill, s->nodes[n].name) && L->procs[n].pid <= 0) {
            snprintf(why, len, "the process of %s is not running", s->nodes[n].name);
            return true;
        }
    }
    /* each mirrored node's pair (mirror offline: every local's); a fenced old primary's
     * pair is judged from its files only */
    for (size_t n = 0; (s->drill->topology.components & DRILL_MIRROR) != 0 && !L->failed_over &&
                       n < s->node_count;
         n++)
        if (s->nodes[n].cfg.topology == SHOP_MIRROR && mirror_behind(L, h, (int)n, why, len) != 0)
            return true;
    if ((s->drill->topology.components & DRILL_MIRROR) != 0 && !multi_process(s->drill))
        return false;
    if ((s->drill->topology.components & DRILL_ASYNC) != 0 && !L->failed_over)
        return async_behind(L, why, len);
    if ((s->drill->topology.components & DRILL_OFFLINE) != 0)
        return offline_behind(L, why, len);
    if (is_cluster(s->drill))
        return cluster_behind(L, why, len);
    return false;
}

/* Offline: the local's sync job switched through its admin route (kept across its
 * restarts by serve itself, in its data directory). */
static void switch_sync(struct live *L, int n, bool online, const char *why_now)
{
    struct sim *s = L->s;
    char why[256] = "";
    cJSON *j = admin(L, n, "POST", online ? "/sync/online" : "/sync/offline", why, sizeof(why));
    pthread_mutex_lock(&L->lock);
    tick(L);
    const char *name = s->nodes[n].name;
    if (j == NULL) {
        world_trace(s, name, "%s%s: the sync job could not be switched %s: %s", why_now,
                    online ? "online" : "offline", online ? "on" : "off", why);
    } else {
        L->switched_off[n] = !online;
        world_trace(s, name, "%s%s: POST /sync/%s switched the sync job %s", why_now,
                    online ? "online" : "offline", online ? "online" : "offline",
                    online ? "on" : "off");
        world_mark(s, name, online ? REPORT_HEAL : REPORT_PARTITION, "%s %s", name,
                   online ? "online" : "offline");
    }
    pthread_mutex_unlock(&L->lock);
    cJSON_Delete(j);
}

/* The failover's instants in both clocks: the run's, and the processes' wall clock the
 * order rows carry; their difference is what async.c needs. */
static int64_t wall_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Async: the operator promotes the secondary (POST /replication/failover on its
 * process) and fences the old primary (POST /replication/fence, the STONITH the
 * simulator's failover does too); clients write to the secondary from then on. */
static void failover(struct live *L, int n)
{
    struct sim *s = L->s;
    int p = world_node_index(s, "primary");
    char why[256] = "", fence_why[256] = "";
    if (n < 0 || p < 0 || L->failed_over)
        return;
    cJSON *j = admin(L, n, "POST", "/replication/failover", why, sizeof(why));
    cJSON *f = j != NULL ? admin(L, p, "POST", "/replication/fence", fence_why,
                                 sizeof(fence_why))
                         : NULL;
    int64_t wall = wall_us();
    pthread_mutex_lock(&L->lock);
    tick(L);
    int64_t offset = wall - s->now_us;
    if (j == NULL) {
        world_trace(s, s->nodes[n].name, "failover: the secondary was not promoted: %s", why);
    } else {
        if (f == NULL)
            world_trace(s, s->nodes[p].name, "failover: the old primary could not be fenced "
                                             "(%s): the promoted secondary fences it when it "
                                             "hears from it",
                        fence_why);
        const cJSON *fo = cJSON_GetObjectItemCaseSensitive(j, "failover");
        struct node_async_status st;
        memset(&st, 0, sizeof(st));
        st.position = json_num(j, "position");
        st.position_max = st.position;
        st.failover.done = true;
        st.failover.position = json_num(fo, "position");
        st.failover.position_at_us = json_num(fo, "positionAtUs");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(fo, "windowSeconds");
        st.failover.window_us = cJSON_IsNumber(w) ? (int64_t)llround(w->valuedouble * 1e6) : 0;
        L->failed_over = true;
        s->epoch++;
        async_live_failover(s, offset, &st); /* clients go to the secondary now */
    }
    pthread_mutex_unlock(&L->lock);
    cJSON_Delete(j);
    cJSON_Delete(f);
}

static void drain(struct live *L, const struct drill_event *e)
{
    struct sim *s = L->s;
    pthread_mutex_lock(&L->lock);
    tick(L);
    s->workload_stopped = true;
    heal_everything(L);
    pthread_mutex_unlock(&L->lock);
    for (size_t n = 0; n < s->node_count; n++)
        if (runs_process(s->drill, s->nodes[n].name) && L->procs[n].pid <= 0)
            restart(L, (int)n, "drain");
    for (size_t n = 0; n < s->node_count; n++)
        if (L->switched_off[n])
            switch_sync(L, (int)n, true, "drain: back ");
    pthread_mutex_lock(&L->lock);
    tick(L);
    s->draining = true;
    s->drain_deadline_us = s->now_us + e->within_us;
    world_trace(s, "-", "drain: workload stopped, faults healed, nodes restarted; waiting up to "
                        "%lld ms for every queue to empty",
                (long long)(e->within_us / 1000));
    int64_t deadline = s->drain_deadline_us;
    pthread_mutex_unlock(&L->lock);
    CURL *h = curl_easy_init();
    char why[256] = "";
    bool busy = true;
    while (h != NULL) {
        busy = drain_pending(L, h, why, sizeof(why));
        if (!busy || live_now(L) >= deadline)
            break;
        sleep_until(L, live_now(L) + LIVE_POLL_US, false);
    }
    curl_easy_cleanup(h);
    pthread_mutex_lock(&L->lock);
    tick(L);
    s->draining = false;
    s->drained = true;
    if (busy) {
        s->drain_failed = true;
        snprintf(s->drain_why, sizeof(s->drain_why), "the drain did not finish by %.3fs: %.200s",
                 (double)s->now_us / 1e6, why);
        world_trace(s, "-", "drain failed: %s", why);
    } else {
        world_trace(s, "-", "drained: every queue is empty");
    }
    pthread_mutex_unlock(&L->lock);
    /* judged on the files, as the simulator judges its copies */
    open_files(L, "drain");
    pthread_mutex_lock(&L->lock);
    world_mark(s, s->nodes[0].name, REPORT_CHECKPOINT, "drain");
    checkers_run(s, "drain");
    pthread_mutex_unlock(&L->lock);
}

static void play(struct live *L, size_t index)
{
    struct sim *s = L->s;
    const struct drill_event *e = &s->drill->events[index];
    int n = process_of(s->drill, e->name);
    if (e->action != DRILL_DRAIN && e->action != DRILL_CHECKPOINT)
        resume(L);
    switch (e->action) {
    case DRILL_FAULT:
        pthread_mutex_lock(&L->lock);
        tick(L);
        arm_fault(L, e);
        pthread_mutex_unlock(&L->lock);
        break;
    case DRILL_HEAL:
        pthread_mutex_lock(&L->lock);
        tick(L);
        if (e->heal == DRILL_HEAL_ALL)
            heal_everything(L);
        else if (e->heal == DRILL_HEAL_PARTITION)
            heal_partition(L);
        else
            for (size_t i = 0; i < s->fault_count; i++)
                if (strcmp(s->faults[i].name, e->name) == 0)
                    heal_fault(L, &s->faults[i]);
        pthread_mutex_unlock(&L->lock);
        break;
    case DRILL_PARTITION:
        pthread_mutex_lock(&L->lock);
        tick(L);
        partition(L, e);
        pthread_mutex_unlock(&L->lock);
        break;
    case DRILL_CRASH:
        if (n >= 0 && L->procs[n].pid > 0) {
            pthread_mutex_lock(&L->lock);
            for (size_t i = 0; i < s->fault_count; i++)
                if (s->faults[i].armed && process_of(s->drill, s->faults[i].lane) == n)
                    fault_counts(L, &s->faults[i], n); /* what fired so far, before it dies */
            pthread_mutex_unlock(&L->lock);
            pid_t pid = L->procs[n].pid;
            proc_stop(L, n, true);
            pthread_mutex_lock(&L->lock);
            tick(L);
            s->nodes[n].up = false;
            s->nodes[n].crashes++;
            s->epoch++;
            L->killed_us[n] = s->now_us;
            if (e->process)
                world_trace(s, s->nodes[n].name, "crash (process, crash): SIGKILL to process %d",
                            (int)pid);
            else /* a cluster's replica or registry, sync=full (sim_live_check) */
                world_trace(s, s->nodes[n].name, "crash (power cut): SIGKILL to process %d; with "
                                                 "sync=full its disk holds every commit, all a "
                                                 "power cut keeps",
                            (int)pid);
            world_mark(s, s->nodes[n].name, REPORT_CRASH, "%s crashed (crash)", s->nodes[n].name);
            pthread_mutex_unlock(&L->lock);
        }
        break;
    case DRILL_RESTART:
        if (n >= 0)
            restart(L, n, "restart");
        break;
    case DRILL_OP:
        if (L->explicit_count < LIVE_OPS_MAX) {
            struct client_arg *ca = calloc(1, sizeof(*ca));
            if (ca != NULL) {
                *ca = (struct client_arg){.L = L, .client = e->client, .e = e};
                if (pthread_create(&L->explicit_ops[L->explicit_count], NULL, explicit_main,
                                   ca) == 0)
                    L->explicit_count++;
                else
                    free(ca);
            }
        }
        break;
    case DRILL_CHECKPOINT:
        /* the copies are inside running processes: what the history shows is judged now
         * (sessions); what only the files show is judged at the drain and the end */
        pthread_mutex_lock(&L->lock);
        tick(L);
        world_trace(s, "-", "checkpoint: live, the copies are in running processes; the "
                            "history is judged now, the files at the drain and the end");
        world_mark(s, s->nodes[0].name, REPORT_CHECKPOINT, "checkpoint");
        checkers_run(s, "checkpoint");
        pthread_mutex_unlock(&L->lock);
        break;
    case DRILL_DRAIN:
        drain(L, e);
        break;
    case DRILL_GO_OFFLINE:
    case DRILL_GO_ONLINE:
        if (n >= 0)
            switch_sync(L, n, e->action == DRILL_GO_ONLINE, "");
        break;
    case DRILL_FAILOVER:
        failover(L, n);
        break;
    }
}

/* ---- the run ----------------------------------------------------------- */

/*
 * Cluster, under the lock: client c got the registry's answer (`count` replicas) and
 * holds `listed` now, the answer when it took it. A replica
 * whose process the runner killed cannot have been heard since: listing it past the
 * registry's window (plus LIVE_LISTING_SLACK_US for the two transits the runner does
 * not see) is what lb-balanced reports, as the simulator does.
 */
static void took_listing(void *ctx, int client, int count, uint32_t listed, bool took)
{
    struct live *L = ctx;
    struct sim *s = L->s;
    int64_t killed[DRILL_REPLICAS_MAX];
    tick(L);
    cluster_live_answer(s, client, count, listed); /* an answer it did not take */
    if (!took)
        return;
    for (int r = 0; r < s->drill->topology.replicas && r < DRILL_REPLICAS_MAX; r++) {
        char name[FAULTS_NODE_MAX];
        snprintf(name, sizeof(name), "replica%d", r + 1);
        int n = world_node_index(s, name);
        killed[r] = n >= 0 ? L->killed_us[n] : -1;
    }
    cluster_live_listing(s, client, listed, killed, LIVE_LISTING_SLACK_US);
}

/* Cluster: the drill's clients are core client nodes hosted here (live_cluster.c),
 * talking to the registry's process. */
static int start_cluster_clients(struct live *L)
{
    struct sim *s = L->s;
    int r = world_node_index(s, "registry");
    char url[64];
    if (r < 0) {
        snprintf(s->msg, sizeof(s->msg), "a cluster without a registry");
        return -EINVAL;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", L->procs[r].port);
    return live_clients_start(s, &L->lock, L->secret, url, took_listing, L, &L->clients_host,
                              s->msg, sizeof(s->msg));
}

/*
 * The core's periodic timers (an async primary's whole copies with outbox=off, a
 * local's sync job) tick at whole multiples of their period on the monotonic clock
 * (node_next_tick_us), in the simulator from time 0. Live, time 0 is put on such a
 * multiple (the next one, waited for) so they tick at the drill's times too: a
 * failover just before a copy loses what it loses in the simulator.
 */
static void align_start(struct live *L)
{
    const struct drill_topology *t = &L->s->drill->topology;
    int64_t period = 0;
    if ((t->components & DRILL_ASYNC) != 0)
        period = NODE_ASYNC_SNAPSHOT_EVERY_US;
    else if ((t->components & DRILL_OFFLINE) != 0)
        period = t->sync_interval_us;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t mono = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    if (period <= 0 || period > 10000000)
        return;
    int64_t at = (mono / period + 1) * period;
    L->t0.tv_sec = (time_t)(at / 1000000);
    L->t0.tv_nsec = (long)(at % 1000000) * 1000;
    sleep_until(L, 0, false);
}

/* live_watch.c's view of the run, under the lock. */
static void watch_tick(void *ctx)
{
    tick(ctx);
}

static int watch_node(void *ctx, int n, char base[64])
{
    struct live *L = ctx;
    int p = process_of(L->s->drill, L->s->nodes[n].name);
    if (p < 0 || L->judged_files)
        return -1;
    if (L->procs[p].pid > 0) {
        snprintf(base, 64, "%s", L->procs[p].base);
        return 1;
    }
    return L->s->nodes[p].up ? -1 : 0; /* up: stopped for a judgement, or starting */
}

static void start_watch(struct live *L)
{
    struct live_watch_io io = {.s = L->s, .lock = &L->lock, .ctx = L, .tick = watch_tick,
                               .node = watch_node};
    L->watch = live_watch_start(&io);
}

static void stop_watch(struct live *L)
{
    live_watch_stop(L->watch);
    L->watch = NULL;
    live_stake_stop(L->stake); /* the predictors too: the run ends */
    L->stake = NULL;
}

static int64_t stake_now(void *ctx)
{
    return live_now(ctx);
}

static int stake_ledger(void *ctx, char base[64])
{
    struct live *L = ctx;
    int p = process_of(L->s->drill, "ledger");
    if (p < 0 || L->procs[p].pid <= 0)
        return 0;
    snprintf(base, 64, "%s", L->procs[p].base);
    return 1;
}

/* Topology stake: the predictors' thread (live_stake.c). */
static int start_stake(struct live *L)
{
    if ((L->s->drill->topology.components & DRILL_STAKE) == 0)
        return 0;
    struct live_stake_io io = {.s = L->s, .lock = &L->lock, .ctx = L, .tick = watch_tick,
                               .now = stake_now, .ledger = stake_ledger};
    L->stake = live_stake_start(&io);
    return L->stake != NULL ? 0 : -ENOMEM;
}

static int start_clients(struct live *L)
{
    struct sim *s = L->s;
    for (int c = 1; c <= s->client_count; c++) {
        if (s->clients[c].workload == NULL)
            continue;
        struct client_arg *ca = calloc(1, sizeof(*ca));
        if (ca == NULL)
            return -ENOMEM;
        *ca = (struct client_arg){.L = L, .client = c};
        int err = pthread_create(&L->clients[c], NULL, client_main, ca);
        if (err) {
            free(ca);
            return -err;
        }
        L->client_started[c] = true;
    }
    return 0;
}

static void stop_clients(struct live *L)
{
    atomic_store(&L->stop, true);
    for (int c = 1; c <= DRILL_CLIENTS_MAX; c++)
        if (L->client_started[c]) {
            pthread_join(L->clients[c], NULL);
            L->client_started[c] = false;
        }
    for (size_t i = 0; i < L->explicit_count; i++)
        pthread_join(L->explicit_ops[i], NULL);
    L->explicit_count = 0;
}

/* `for=DUR`: a fault whose time is up heals itself. */
static void expire_faults(struct live *L)
{
    struct sim *s = L->s;
    int64_t now = live_now(L);
    for (size_t i = 0; i < s->fault_count; i++) {
        struct world_fault *f = &s->faults[i];
        int64_t for_us = s->drill->events[f->event].for_us;
        if (f->armed && for_us > 0 && now >= f->armed_at_us + for_us) {
            pthread_mutex_lock(&L->lock);
            tick(L);
            heal_fault(L, f);
            pthread_mutex_unlock(&L->lock);
        }
    }
}

/* Waits until `at`, watching the processes and the faults' time limits. */
static void wait_until(struct live *L, int64_t at)
{
    for (;;) {
        reap(L);
        expire_faults(L);
        int64_t step = at - live_now(L);
        if (step <= 0)
            return;
        sleep_until(L, live_now(L) + (step < LIVE_POLL_US ? step : LIVE_POLL_US), false);
    }
}

static int run_timeline(struct live *L)
{
    struct sim *s = L->s;
    const struct drill *d = s->drill;
    for (size_t i = 0; i < d->event_count; i++) {
        wait_until(L, d->events[i].at_us);
        play(L, i);
    }
    wait_until(L, d->duration_us);
    return 0;
}

/* The end: the workload stops, the processes stop, the files are judged. */
static void finish(struct live *L)
{
    struct sim *s = L->s;
    stop_watch(L);
    stop_clients(L);
    reap(L);
    pthread_mutex_lock(&L->lock);
    tick(L);
    for (size_t i = 0; i < s->fault_count; i++)
        if (s->faults[i].armed) {
            int n = process_of(s->drill, s->faults[i].lane);
            if (n >= 0)
                fault_counts(L, &s->faults[i], n);
        }
    world_metric(s, "live_ops_issued", (int64_t)L->issued, "ops");
    world_metric(s, "live_ops_late", (int64_t)L->late_ops, "ops");
    world_metric(s, "live_late_max", (int64_t)L->late_max_us, "us");
    if (L->clients_host != NULL) {
        uint64_t answers = 0, refused = 0;
        live_clients_counts(L->clients_host, &answers, &refused);
        world_metric(s, "live_registry_answers", (int64_t)answers, "messages");
        if (refused > 0)
            world_trace(s, "-", "live: %" PRIu64 " message(s) to the clients refused (not "
                                "authentic, not fresh, or malformed)",
                        refused);
    }
    pthread_mutex_unlock(&L->lock);
    if (!L->judged_files)
        open_files(L, "end of run");
    pthread_mutex_lock(&L->lock);
    tick(L);
    async_report(s);
    world_trace(s, "-", "end");
    s->final_check = true;
    checkers_run(s, "end");
    pthread_mutex_unlock(&L->lock);
}

/* What only the simulator models, said once so a reader of a live trace never wonders. */
static void note_sim_only(struct live *L)
{
    struct sim *s = L->s;
    const struct drill_topology *t = &s->drill->topology;
    world_trace(s, "-", "live: every message waits latency=%.3fs plus up to jitter=%.3fs "
                        "(seeded): a client's request and reply in its thread%s",
                (double)t->latency_us / 1e6, (double)t->jitter_us / 1e6,
                multi_process(s->drill) ? ", a node's messages in its sender's transport "
                                          "(serve --latency, --jitter)"
                                        : "");
    if ((t->components & DRILL_ASYNC) != 0 && t->async_batch > 0 &&
        t->async_batch != (int)NODE_ASYNC_BATCH_CHANGES)
        world_trace(s, "primary", "live: serve has no batch= option; its primary ships up to %d "
                                  "changes a batch where the simulator ships batch=%d",
                    (int)NODE_ASYNC_BATCH_CHANGES, t->async_batch);
}

/*
 * Async and offline: the processes are wired as a user wires them by hand. Each node
 * gets a loopback port chosen now (the kernel's free ones, all held open until every
 * one is chosen) and kept by its restarts, so every other node's --peer stays true;
 * they share a cluster secret in the scratch directory (mode 0600).
 */
static int wire_up(struct live *L)
{
    struct sim *s = L->s;
    int fds[DRILL_NODES_MAX];
    int err = 0;
    for (size_t n = 0; n < s->node_count; n++)
        fds[n] = -1;
    for (size_t n = 0; n < s->node_count && !err; n++) {
        if (!runs_process(s->drill, s->nodes[n].name))
            continue;
        if (!s->nodes[n].holds_db) { /* the registry: a data directory of its own too */
            char dir[WORLD_PATH_MAX + 64];
            snprintf(dir, sizeof(dir), "%.500s/%s", s->workdir, s->nodes[n].name);
            (void)mkdir(dir, 0700);
        }
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        fds[n] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[n] < 0 || bind(fds[n], (struct sockaddr *)&a, sizeof(a)) != 0 ||
            getsockname(fds[n], (struct sockaddr *)&a, &len) != 0)
            err = -errno;
        else
            L->procs[n].port = ntohs(a.sin_port);
    }
    for (size_t n = 0; n < s->node_count; n++)
        if (fds[n] >= 0)
            close(fds[n]);
    if (err) {
        snprintf(s->msg, sizeof(s->msg), "cannot find a free loopback port: %s", strerror(-err));
        return err;
    }
    unsigned char key[32];
    char hex[sizeof(key) * 2 + 2];
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
        snprintf(s->msg, sizeof(s->msg), "cannot make the cluster secret: %s", strerror(errno));
        return -EIO;
    }
    for (size_t i = 0; i < sizeof(key); i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[sizeof(key) * 2] = '\n';
    snprintf(L->secret, sizeof(L->secret), "%.500s/node.secret", s->workdir);
    int fd = open(L->secret, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, hex, sizeof(key) * 2 + 1) == (ssize_t)(sizeof(key) * 2 + 1);
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok) {
        snprintf(s->msg, sizeof(s->msg), "cannot write the cluster secret %.300s: %s", L->secret,
                 strerror(errno));
        return -EIO;
    }
    return 0;
}

int sim_run_live(const struct drill *d, const struct sim_options *opt, struct report_run *rep,
                 char msg[REPORT_ERR_MAX])
{
    memset(rep, 0, sizeof(*rep));
    struct drill_errors *errs = calloc(1, sizeof(*errs));
    struct sim *s = calloc(1, sizeof(*s));
    struct live *L = calloc(1, sizeof(*L));
    if (errs == NULL || s == NULL || L == NULL) {
        free(errs);
        free(s);
        free(L);
        snprintf(msg, REPORT_ERR_MAX, "out of memory");
        return -ENOMEM;
    }
    int err = sim_live_check(d, errs);
    if (err)
        snprintf(msg, REPORT_ERR_MAX, "%.300s:%d:%d: %.200s", d->file, errs->e[0].line, errs->e[0].col,
                 errs->e[0].msg);
    free(errs);
    if (err) {
        free(s);
        free(L);
        return -ENOTSUP;
    }
    ssize_t got = readlink("/proc/self/exe", L->exe, sizeof(L->exe) - 1);
    if (got <= 0) {
        snprintf(msg, REPORT_ERR_MAX, "cannot find this program (/proc/self/exe): %s",
                 strerror(errno));
        free(s);
        free(L);
        return -ENOENT;
    }
    L->exe[got] = '\0';
    L->s = s;
    for (size_t n = 0; n < DRILL_NODES_MAX; n++)
        L->killed_us[n] = -1;
    pthread_mutex_init(&L->lock, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s->live = true;
    struct sim_options on_disk = *opt;
    on_disk.on_disk = true; /* the serve processes open the same files */
    err = world_prepare(s, d, &on_disk);
    if (!err && (d->topology.components & DRILL_STAKE) != 0) {
        err = ledger_start(s); /* the ledger file, its predictors registered */
        ledger_live_let_go(s); /* serve --stake opens it */
        int host = process_of(d, "ledger");
        if (!err && multi_process(d) && host >= 0) {
            char dir[WORLD_PATH_MAX + FAULTS_NODE_MAX + 2];
            snprintf(dir, sizeof(dir), "%.500s/%s", s->workdir, s->nodes[host].name);
            err = ledger_live_move(s, dir); /* into its host's own data directory */
        }
    }
    /* the catalog is on disk: the runner lets go of it, the processes take it */
    if (!err && is_cluster(d) && s->nodes[s->main_node].shop != NULL)
        cluster_live_start(s, shop_last_seq(s->nodes[s->main_node].shop));
    for (size_t n = 0; !err && n < s->node_count; n++) {
        shop_close(s->nodes[n].shop);
        s->nodes[n].shop = NULL;
    }
    if (!err && multi_process(d))
        err = wire_up(L);
    /* the others before the first node: it finds its peers listening */
    if (!err)
        for (size_t i = s->node_count; i > 0 && !err; i--)
            if (runs_process(d, s->nodes[i - 1].name))
                err = proc_start(L, (int)(i - 1), s->msg, sizeof(s->msg));
    if (!err) {
        clock_gettime(CLOCK_MONOTONIC, &L->t0); /* every process listens */
        align_start(L);
        world_trace(s, "-", "start: drill %s, seed %llu, live: serve process %d at %s", d->name,
                    (unsigned long long)s->seed, (int)L->procs[s->main_node].pid,
                    L->procs[s->main_node].base);
        note_sim_only(L);
        start_watch(L);
        if (is_cluster(d))
            err = start_cluster_clients(L); /* s->msg says why not */
        if (!err) {
            err = start_clients(L);
            if (!err)
                err = start_stake(L);
            if (err)
                snprintf(s->msg, sizeof(s->msg), "cannot start the clients: %s", strerror(-err));
        }
    }
    if (!err)
        err = run_timeline(L);
    if (!err)
        finish(L);
    else
        stop_clients(L);
    stop_watch(L);
    for (size_t n = 0; n < s->node_count; n++)
        proc_stop(L, (int)n, true);
    live_clients_stop(L->clients_host);
    L->clients_host = NULL;
    if (!err) {
        err = result_fill(s, rep, opt->replay);
        rep->live = true;
        rep->simulated_us = s->now_us / 1000 * 1000; /* real time: to the millisecond */
    }
    if (err)
        snprintf(msg, REPORT_ERR_MAX, "%s", s->msg);
    world_teardown(s);
    pthread_mutex_destroy(&L->lock);
    curl_global_cleanup();
    free(L->users);
    free(L);
    free(s);
    return err;
}

/* ---- sim/live agreement ------------------------------------------------- */

static const char *observed_of(const struct report_expectation *e)
{
    return report_observed(e);
}

bool sim_live_compare(const struct report_run *sim, const struct report_run *live, FILE *out)
{
    size_t agree = 0, judged = 0;
    for (size_t i = 0; i < live->expectation_count; i++) {
        for (size_t j = 0; j < sim->expectation_count; j++) {
            if (strcmp(live->expectations[i].invariant, sim->expectations[j].invariant) != 0)
                continue;
            judged++;
            agree += strcmp(observed_of(&live->expectations[i]),
                            observed_of(&sim->expectations[j])) == 0;
            break;
        }
    }
    bool same = agree == judged && judged == live->expectation_count &&
                sim->pass == live->pass;
    fprintf(out, "# Simulated and live: %s\n\n", live->drill_name);
    fprintf(out, "The same drill and seed (%" PRIu64 "), run by the simulator and by `run --live` "
                 "against real serve processes.\n\n",
            live->seed);
    fprintf(out, "- verdict: simulated **%s**, live **%s**; %zu of %zu expectations agree\n",
            sim->pass ? "PASS" : "FAIL", live->pass ? "PASS" : "FAIL", agree,
            live->expectation_count);
    char a[REPORT_FMT_MAX], b[REPORT_FMT_MAX], ds[REPORT_FMT_MAX], dl[REPORT_FMT_MAX];
    report_format_count(sim->total_ops, a);
    report_format_count(live->total_ops, b);
    report_format_duration(sim->simulated_us, ds);
    report_format_duration(live->simulated_us, dl);
    fprintf(out, "- operations: simulated %s in %s of virtual time, live %s in %s of real time\n\n",
            a, ds, b, dl);
    fputs("| expectation | expected | simulated | live |\n|---|---|---|---|\n", out);
    for (size_t i = 0; i < live->expectation_count; i++) {
        const struct report_expectation *l = &live->expectations[i];
        const char *s = "?";
        for (size_t j = 0; j < sim->expectation_count; j++)
            if (strcmp(l->invariant, sim->expectations[j].invariant) == 0)
                s = observed_of(&sim->expectations[j]);
        fprintf(out, "| %s | %s | %s | %s%s |\n", l->invariant,
                l->expect_violated ? "violated" : "holds", s, observed_of(l),
                strcmp(s, observed_of(l)) == 0 ? "" : " (differs)");
    }
    fputs("\n| operation | simulated ok / rejected / failed / unknown | live ok / rejected / "
          "failed / unknown |\n|---|---|---|\n",
          out);
    for (size_t k = 0; k < live->op_count && k < sim->op_count; k++) {
        const struct report_op_count *s = &sim->ops[k], *l = &live->ops[k];
        if (s->ok + s->rejected + s->fail + s->unknown + l->ok + l->rejected + l->fail +
                l->unknown ==
            0)
            continue;
        fprintf(out, "| %s | %" PRIu64 " / %" PRIu64 " / %" PRIu64 " / %" PRIu64 " | %" PRIu64
                     " / %" PRIu64 " / %" PRIu64 " / %" PRIu64 " |\n",
                l->kind, s->ok, s->rejected, s->fail, s->unknown, l->ok, l->rejected, l->fail,
                l->unknown);
    }
    bool header = false;
    for (size_t i = 0; i < live->metric_count; i++) {
        for (size_t j = 0; j < sim->metric_count; j++) {
            if (strcmp(live->metrics[i].name, sim->metrics[j].name) != 0 ||
                live_agree_is_lag(live->metrics[i].name)) /* in the Lag section */
                continue;
            if (!header)
                fputs("\n| figure | simulated | live |\n|---|---|---|\n", out);
            header = true;
            fprintf(out, "| %s | %" PRId64 " %s | %" PRId64 " %s |\n", live->metrics[i].name,
                    sim->metrics[j].value, sim->metrics[j].unit, live->metrics[i].value,
                    live->metrics[i].unit);
        }
    }
    live_agree_lag(sim, live, out);
    fprintf(out, "\n%s\n", same ? "The simulator predicted the live run's verdicts."
                                : "The live run's verdicts differ from the simulator's: see "
                                  "both reports.");
    return same;
}
