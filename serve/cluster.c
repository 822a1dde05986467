/*
 * cluster.c — replicas with leader propagation in `faultdrill serve`
 * (DESIGN.md §2, §7): a leader that serves the shop and runs its replicas
 * as child processes on the next ports, propagating its outbox to each over
 * HTTP; and a replica's side of that conversation.
 *
 * Leader: one thread per replica owns that replica's whole life. It forks
 * and execs `serve --topology replica`, learns the port from the child's
 * banner, copies the child's output into DATA/replicaK/serve.log, asks the
 * replica where it is (an empty POST /api/sync), ships the outbox after that
 * position in batches, follows the replica's answer after a gap or a lost
 * batch (backing off up to 2 s), and respawns a replica that died (after
 * 1 s, backing off up to 5 s), which then catches up from its own durable
 * position. Each thread reads the outbox through its own read-only handle;
 * pruning goes through the writer (the only writable handle), up to the
 * lowest position every replica acknowledged. A leader whose replicas cannot
 * start still serves: /replication/status says which are down and why, and
 * their threads keep trying. The registry (GET /getServer) rotates over the
 * leader and the replicas that are up.
 *
 * Replica: POST /api/sync applies a batch through its writer. A replica
 * keeps no outbox and ships nothing, so a change never echoes back. Every
 * other request that writes is forwarded to the leader, and the leader's
 * reply relayed once this replica holds that write (the leader's
 * X-Faultdrill-Seq, waited for at most 2 s): read-your-writes through a
 * replica.
 *
 * Node-to-node HTTP is a small client on non-blocking sockets with a
 * deadline on every call: civetweb answers with one thread per connection,
 * so an unbounded call to a stuck peer would hold a thread forever.
 *
 * Touches the platform only through platform.h and the server through
 * internal.h (writer_call, worker_read, the HTTP reply helpers).
 */
#define _GNU_SOURCE /* pipe2: a pipe that is close-on-exec from birth, while other threads fork */
#include <assert.h>
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "serve/internal.h"

#define CLUSTER_SOURCE              "leader" /* a replica's name for the leader's outbox */
#define CLUSTER_SOURCE_HEADER       "X-Faultdrill-Source"
#define CLUSTER_SEQ_HEADER          "X-Faultdrill-Seq" /* the leader's outbox after a write */
#define CLUSTER_SHIP_CHANGES_MAX    512                /* changes in one shipped batch */
#define CLUSTER_SHIP_BYTES_MAX      (1u << 20)         /* bytes of one shipped batch, about */
#define CLUSTER_IDLE_MS             2        /* an idle thread looks at the outbox this often */
#define CLUSTER_PROBE_MS            250      /* ...and asks its replica where it is this often */
#define CLUSTER_HEALTHY_MS          1500     /* a replica heard this recently is not down */
#define CLUSTER_BEHIND_MS           1000     /* lacking a change this old: catching-up */
#define CLUSTER_BACKOFF_MS_MIN      20       /* a failed send is retried after this... */
#define CLUSTER_BACKOFF_MS_MAX      2000     /* ...doubling up to this */
#define CLUSTER_RESPAWN_MS_MIN      1000     /* a dead replica is started again after this... */
#define CLUSTER_RESPAWN_MS_MAX      5000     /* ...doubling up to this */
#define CLUSTER_BANNER_MS           60000    /* a child must say its port within this (ASan) */
#define CLUSTER_CONNECT_MS          1000     /* connecting to a peer on loopback */
#define CLUSTER_SYNC_MS             5000     /* a POST /api/sync's answer */
#define CLUSTER_FORWARD_MS          10000    /* the leader's answer to a forwarded write */
#define CLUSTER_REGISTRY_MS         2000     /* the leader's answer to a forwarded /getServer */
#define CLUSTER_RYW_MS              2000     /* a forwarded write waits to be held here */
#define CLUSTER_DRAIN_MS            2000     /* a stopping leader ships what is pending */
#define CLUSTER_TERM_MS             5000     /* a replica's clean stop, then SIGKILL */
#define CLUSTER_DELAY_US_MAX        10000000 /* a net/.../delay sleeps at most this */
#define CLUSTER_PRUNE_STEP          256      /* prune the outbox in steps of this many changes */
#define CLUSTER_HEAD_MAX            8192     /* bytes of a peer's response head */
#define CLUSTER_REPLY_MAX           (SERVE_BODY_MAX + 65536u) /* bytes of a peer's response body */
#define CLUSTER_REQ_HEAD_MAX        (2 * SERVE_PATH_MAX + 1024)
#define CLUSTER_LINE_MAX            1024  /* a child's output line scanned for the banner */
#define CLUSTER_PUMP_BYTES          65536 /* a child's output copied per look */
#define CLUSTER_FDS_MAX             65536 /* descriptors a child closes without close_range */
#define CLUSTER_REPLICA_THREADS_MAX 16    /* civetweb workers of a replica */
#define CLUSTER_CONTENT_TYPE_MAX    128
#define CLUSTER_ARGS_MAX            24

/* ---- the state ------------------------------------------------------------ */

/* A connection to another node: one per replica thread, kept alive. */
struct peer {
    int fd; /* -1: not connected */
    int port;
};

struct peer_reply {
    int status;
    int64_t seq; /* X-Faultdrill-Seq; 0 when absent */
    char content_type[CLUSTER_CONTENT_TYPE_MAX];
    bool sent;   /* bytes of the request left: a failure after this is an unknown outcome */
    bool closed; /* the peer closes the connection after this reply */
};

struct cluster;

struct replica {
    struct cluster *cl;
    int index; /* 1..N */
    char node[FAULTS_NODE_MAX];
    char dir[SERVE_PATH_MAX];
    char log_path[SERVE_PATH_MAX];
    char drop_point[FAULTS_NAME_MAX];
    char delay_point[FAULTS_NAME_MAX];
    pthread_t thread;
    bool thread_started;
    /* The thread's own. */
    shop *reader; /* read-only handle on the leader's copy */
    struct peer peer;
    struct buf reply;
    int out_fd; /* the child's stdout; -1 when none */
    int log_fd;
    int64_t backoff_ms, respawn_ms;
    int64_t respawn_at_us, probe_at_us; /* monotonic */
    bool position_known;                /* asked since the child (re)started */
    /* Shared: under cl->lock. */
    pid_t pid;    /* 0: not running */
    int port;     /* 0: unknown */
    bool heard;   /* answered at least once in this leader's life (it may be pruned for) */
    bool settled; /* the first start attempt is over (cluster_start waits for it) */
    bool drained; /* stopping: it holds everything, or cannot be reached */
    int64_t position, position_at_us;
    int64_t missing_at_us; /* commit time of the oldest change it lacks; 0: none known */
    int64_t contact_mono_us, contact_wall_us;
    unsigned restarts;
    char last_error[SERVE_DETAIL_MAX];
};

struct cluster {
    struct server *srv;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; broadcast on stop, drain, settle, apply */
    bool stopping, draining;
    /* Leader. */
    int count;
    struct replica replicas[SERVE_REPLICAS_MAX];
    _Atomic int64_t head; /* the outbox's last sequence, as the threads last read it */
    _Atomic unsigned rotation;
    int64_t pruned; /* the outbox holds nothing at or below this */
    bool pruning;
    pid_t self;
    int fd_max;
    bool any_port; /* --port 0: the replicas take free ports too */
    char threads_arg[16], leader_port_arg[16];
    /* Replica. */
    int64_t applied; /* this copy's position for the leader (under lock) */
};

static void cluster_wait_ms(struct cluster *cl, int64_t ms)
{
    struct timespec t = host_deadline_after_us(ms * 1000);
    pthread_mutex_lock(&cl->lock);
    if (!cl->stopping)
        pthread_cond_timedwait(&cl->cond, &cl->lock, &t);
    pthread_mutex_unlock(&cl->lock);
}

static bool cluster_stopping(struct cluster *cl)
{
    pthread_mutex_lock(&cl->lock);
    bool stopping = cl->stopping;
    pthread_mutex_unlock(&cl->lock);
    return stopping;
}

static int cluster_create(struct server *srv, struct cluster **out)
{
    struct cluster *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&cl->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc == 0 && (rc = pthread_mutex_init(&cl->lock, NULL)) != 0)
        pthread_cond_destroy(&cl->cond);
    if (rc != 0) {
        free(cl);
        return -rc;
    }
    cl->srv = srv;
    atomic_init(&cl->head, 0);
    atomic_init(&cl->rotation, 0);
    *out = cl;
    return 0;
}

static void cluster_free(struct cluster *cl)
{
    pthread_cond_destroy(&cl->cond);
    pthread_mutex_destroy(&cl->lock);
    free(cl);
}

/* ---- node-to-node HTTP ------------------------------------------------------ */

/* Waits until fd is ready for events; -ETIMEDOUT past the deadline. */
static int peer_wait(int fd, short events, int64_t deadline_us)
{
    for (;;) {
        int64_t left_us = deadline_us - host_mono_us();
        if (left_us <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)((left_us + 999) / 1000));
        if (n > 0)
            return 0; /* readable, writable or failed: the next call says which */
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static void peer_close(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

static int peer_connect(struct peer *p, int64_t deadline_us)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)p->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int err = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        err = errno == EINPROGRESS ? 0 : -errno;
        int64_t connect_by = host_mono_us() + (int64_t)CLUSTER_CONNECT_MS * 1000;
        if (err == 0)
            err = peer_wait(fd, POLLOUT, connect_by < deadline_us ? connect_by : deadline_us);
        int so = 0;
        socklen_t len = sizeof(so);
        if (err == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len) != 0)
            err = -errno;
        else if (err == 0)
            err = -so;
    }
    if (err != 0) {
        close(fd);
        return err;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    p->fd = fd;
    return 0;
}

static int peer_send(int fd, const void *data, size_t len, int flags, int64_t deadline_us)
{
    const char *at = data;
    while (len > 0) {
        ssize_t n = send(fd, at, len, MSG_NOSIGNAL | flags);
        if (n > 0) {
            at += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int err = peer_wait(fd, POLLOUT, deadline_us);
            if (err != 0)
                return err;
        } else {
            return n < 0 ? -errno : -EPIPE;
        }
    }
    return 0;
}

/* Some bytes (> 0), 0 at the end of the stream, or -errno. */
static ssize_t peer_recv(int fd, char *into, size_t cap, int64_t deadline_us)
{
    for (;;) {
        ssize_t n = recv(fd, into, cap, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int err = peer_wait(fd, POLLIN, deadline_us);
        if (err != 0)
            return err;
    }
}

static const char *skip_spaces(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Parses a NUL-terminated response head (status line and header lines). */
static int peer_parse_head(char *head, struct peer_reply *r, long long *content_length)
{
    if (strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
        return -EPROTO;
    char *end = NULL;
    long status = strtol(head + 9, &end, 10);
    if (end != head + 12 || status < 100 || status > 599)
        return -EPROTO;
    r->status = (int)status;
    r->closed = head[7] == '0';
    *content_length = -1;
    char *line = strstr(head, "\r\n");
    while (line != NULL) {
        line += 2;
        char *next = strstr(line, "\r\n");
        if (next != NULL)
            *next = '\0';
        char *colon = strchr(line, ':');
        if (colon != NULL) {
            *colon = '\0';
            const char *value = skip_spaces(colon + 1);
            if (strcasecmp(line, "Content-Length") == 0) {
                errno = 0;
                *content_length = strtoll(value, &end, 10);
                if (errno != 0 || end == value || *content_length < 0)
                    return -EPROTO;
            } else if (strcasecmp(line, "Content-Type") == 0) {
                snprintf(r->content_type, sizeof(r->content_type), "%s", value);
            } else if (strcasecmp(line, CLUSTER_SEQ_HEADER) == 0) {
                r->seq = strtoll(value, NULL, 10);
            } else if (strcasecmp(line, "Connection") == 0) {
                r->closed = strcasecmp(value, "close") == 0;
            }
        }
        line = next;
    }
    return 0;
}

/* The first "\r\n\r\n" of the n bytes at p; NULL when none yet. */
static char *find_head_end(char *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (memcmp(p + i, "\r\n\r\n", 4) == 0)
            return p + i;
    return NULL;
}

/* Reads a response: the head, then the body into out (buf_reset first). */
static int peer_read_reply(struct peer *p, int64_t deadline_us, struct peer_reply *r,
                           struct buf *out)
{
    char head[CLUSTER_HEAD_MAX + 1];
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        if (got == CLUSTER_HEAD_MAX)
            return -EPROTO;
        ssize_t n = peer_recv(p->fd, head + got, CLUSTER_HEAD_MAX - got, deadline_us);
        if (n <= 0)
            return n == 0 ? -ECONNRESET : (int)n;
        got += (size_t)n;
        end = find_head_end(head, got);
    }
    size_t head_len = (size_t)(end - head) + 4;
    end[2] = '\0'; /* the last header line keeps its "\r\n" */
    long long length = -1;
    int err = peer_parse_head(head, r, &length);
    if (err != 0)
        return err;
    if (length > (long long)CLUSTER_REPLY_MAX)
        return -E2BIG;
    buf_reset(out);
    size_t extra = got - head_len;
    if (length >= 0 && extra > (size_t)length)
        extra = (size_t)length;
    buf_put(out, head + head_len, extra);
    size_t want = length >= 0 ? (size_t)length : CLUSTER_REPLY_MAX;
    while (!out->oom && buf_body_len(out) < want) {
        if (!buf_reserve(out, 16384))
            break;
        size_t room = want - buf_body_len(out);
        ssize_t n = peer_recv(p->fd, out->p + out->len, room < 16384 ? room : 16384, deadline_us);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            if (length >= 0)
                return -ECONNRESET;
            r->closed = true;
            break;
        }
        out->len += (size_t)n;
    }
    if (out->oom)
        return -ENOMEM;
    if (length < 0)
        r->closed = true;
    return 0;
}

/*
 * One request to the peer on 127.0.0.1:p->port and its reply, all within
 * timeout_ms. A kept-alive connection the peer has closed meanwhile is
 * replaced once when the request may be repeated (idempotent).
 */
static int peer_call(struct peer *p, const char *method, const char *target, const char *headers,
                     const void *body, size_t len, int timeout_ms, bool idempotent,
                     struct peer_reply *r, struct buf *out)
{
    char head[CLUSTER_REQ_HEAD_MAX];
    memset(r, 0, sizeof(*r));
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %zu\r\n%s\r\n",
                     method, target, p->port, len, headers != NULL ? headers : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return -ENAMETOOLONG;
    int64_t deadline_us = host_mono_us() + (int64_t)timeout_ms * 1000;
    for (int attempt = 0;; attempt++) {
        bool reused = p->fd >= 0;
        int err = reused ? 0 : peer_connect(p, deadline_us);
        if (err != 0)
            return err;
        r->sent = true;
        err = peer_send(p->fd, head, (size_t)n, len > 0 ? MSG_MORE : 0, deadline_us);
        if (err == 0 && len > 0)
            err = peer_send(p->fd, body, len, 0, deadline_us);
        if (err == 0)
            err = peer_read_reply(p, deadline_us, r, out);
        if (err == 0) {
            if (r->closed)
                peer_close(p);
            return 0;
        }
        peer_close(p);
        bool stale = err == -ECONNRESET || err == -EPIPE;
        if (!(reused && stale && idempotent && attempt == 0))
            return err;
        memset(r, 0, sizeof(*r));
    }
}

/* ---- a replica's process ---------------------------------------------------- */

/* What a child needs after fork: prepared before, so the child only calls
 * async-signal-safe functions until exec. */
struct spawn {
    char *argv[CLUSTER_ARGS_MAX];
    int out_fd, log_fd, null_fd;
    pid_t parent;
    int fd_max;
};

static void child_exec(const struct spawn *sp)
{
    setpgid(0, 0); /* a terminal's Ctrl-C reaches the leader, which stops us in order */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != sp->parent)
        _exit(127); /* the leader is gone already */
    if (dup2(sp->null_fd, STDIN_FILENO) < 0 || dup2(sp->out_fd, STDOUT_FILENO) < 0 ||
        dup2(sp->log_fd, STDERR_FILENO) < 0)
        _exit(127);
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
        for (int fd = 3; fd < sp->fd_max; fd++)
            close(fd);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* the leader's threads block SIGTERM/SIGINT */
    execv("/proc/self/exe", sp->argv);
    static const char msg[] = "faultdrill serve: cannot run /proc/self/exe for a replica\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
}

static void log_write(struct replica *r, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(r->log_fd, data, len);
        if (n <= 0 && errno != EINTR)
            return; /* a full disk loses the log, not the replica */
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
    }
}

/* Copies what the child printed since the last look into its log. */
static void replica_pump_output(struct replica *r)
{
    if (r->out_fd < 0)
        return;
    char chunk[4096];
    for (size_t total = 0; total < CLUSTER_PUMP_BYTES;) {
        ssize_t n = read(r->out_fd, chunk, sizeof(chunk));
        if (n > 0) {
            log_write(r, chunk, (size_t)n);
            total += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            if (n == 0) { /* the child closed its stdout: it is ending */
                close(r->out_fd);
                r->out_fd = -1;
            }
            return;
        }
    }
}

/* The last line the child wrote in its log: why it could not start. */
static void log_last_line(const struct replica *r, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(r->log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char tail[512];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof(tail) - 1 ? size - (off_t)sizeof(tail) + 1 : 0;
    ssize_t n = pread(fd, tail, sizeof(tail) - 1, from);
    close(fd);
    if (n <= 0)
        return;
    tail[n] = '\0';
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
        tail[--n] = '\0';
    const char *line = strrchr(tail, '\n');
    line = line != NULL ? line + 1 : tail;
    if (strncmp(line, "faultdrill serve: ", 18) == 0)
        line += 18;
    snprintf(out, cap, "%.200s", line);
}

/* Reads the child's output until its banner names the port; 0 or -errno. */
static int replica_read_banner(struct replica *r, int *port)
{
    static const char banner[] = "faultdrill serve: http://127.0.0.1:";
    char line[CLUSTER_LINE_MAX];
    size_t len = 0;
    int64_t deadline_us = host_mono_us() + (int64_t)CLUSTER_BANNER_MS * 1000;
    for (;;) {
        if (cluster_stopping(r->cl))
            return -ECANCELED;
        int64_t slice_us = host_mono_us() + 100000; /* look at the stop flag now and then */
        int err = peer_wait(r->out_fd, POLLIN, slice_us < deadline_us ? slice_us : deadline_us);
        if (err == -ETIMEDOUT && host_mono_us() < deadline_us)
            continue;
        if (err != 0)
            return err;
        char c;
        ssize_t n = read(r->out_fd, &c, 1); /* byte by byte: nothing after the banner is taken */
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return -ECHILD; /* the child closed its stdout: it died */
        log_write(r, &c, 1);
        if (c != '\n') {
            if (len + 1 < sizeof(line))
                line[len++] = c;
            continue;
        }
        line[len] = '\0';
        len = 0;
        const char *at = strstr(line, banner);
        if (at != NULL) {
            long v = strtol(at + sizeof(banner) - 1, NULL, 10);
            if (v <= 0 || v > 65535)
                return -EPROTO;
            *port = (int)v;
            return 0;
        }
    }
}

static void describe_exit(int status, char *out, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "ended (status %d)", status);
}

/* libfiu leaves its fiu-ctrl fifos behind when a process ends: the child's go
 * with it (reaped, so the pid cannot be someone else's yet). */
static void remove_fifo(pid_t pid)
{
    const char *tmp = getenv("TMPDIR");
    char path[SERVE_PATH_MAX];
    const char *suffix[] = {"in", "out"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/fiu-ctrl-%d.%s", tmp != NULL && tmp[0] ? tmp : "/tmp",
                 (int)pid, suffix[i]);
        unlink(path);
    }
}

/* The child has been reaped: the replica is down until respawned. */
static void replica_gone(struct replica *r, int status, const char *why)
{
    char how[160];
    describe_exit(status, how, sizeof(how));
    remove_fifo(r->pid);
    replica_pump_output(r);
    if (r->out_fd >= 0)
        close(r->out_fd);
    r->out_fd = -1;
    peer_close(&r->peer);
    r->position_known = false;
    r->respawn_at_us = host_mono_us() + r->respawn_ms * 1000;
    pthread_mutex_lock(&r->cl->lock);
    snprintf(r->last_error, sizeof(r->last_error), "%s (pid %d) %s; restarting it", r->node,
             (int)r->pid, why != NULL ? why : how);
    r->pid = 0;
    r->contact_mono_us = 0;
    pthread_mutex_unlock(&r->cl->lock);
    if (r->respawn_ms < CLUSTER_RESPAWN_MS_MAX)
        r->respawn_ms *= 2;
}

/* Whether the child has ended (then reaped and recorded). */
static bool replica_reaped(struct replica *r)
{
    int status = 0;
    pid_t got = waitpid(r->pid, &status, WNOHANG);
    if (got == 0 || (got < 0 && errno == EINTR))
        return false;
    replica_gone(r, got < 0 ? 0 : status, got < 0 ? "vanished" : NULL);
    return true;
}

static void replica_args(struct replica *r, struct spawn *sp, char *port_arg, size_t cap)
{
    struct cluster *cl = r->cl;
    const struct serve_options *o = &cl->srv->opt;
    snprintf(port_arg, cap, "%d", cl->any_port ? 0 : o->port + r->index);
    size_t n = 0;
    char **a = sp->argv;
    a[n++] = "faultdrill";
    a[n++] = "serve";
    a[n++] = "--topology";
    a[n++] = "replica";
    a[n++] = "--node";
    a[n++] = r->node;
    a[n++] = "--leader-port";
    a[n++] = cl->leader_port_arg;
    a[n++] = "--port";
    a[n++] = port_arg;
    a[n++] = "--data";
    a[n++] = r->dir;
    a[n++] = "--no-demo";
    a[n++] = "--threads";
    a[n++] = cl->threads_arg;
    a[n++] = "--web";
    a[n++] = cl->srv->web_root[0] ? cl->srv->web_root : (char *)o->web_dir;
    if (o->allow_faults)
        a[n++] = "--allow-faults";
    assert(n < CLUSTER_ARGS_MAX);
    a[n] = NULL;
}

/* The child did not come up: make sure it is gone, and say why. */
static void spawn_failed(struct replica *r, pid_t pid, int err, char *why, size_t cap)
{
    if (err != -ECHILD)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    char last[256];
    log_last_line(r, last, sizeof(last));
    char how[160];
    describe_exit(status, how, sizeof(how));
    if (err == -ETIMEDOUT)
        snprintf(why, cap, "did not say its port within %d s; killed", CLUSTER_BANNER_MS / 1000);
    else
        snprintf(why, cap, "%s%s%s", how, last[0] ? ": " : "", last);
    if (r->out_fd >= 0)
        close(r->out_fd);
    r->out_fd = -1;
    pthread_mutex_lock(&r->cl->lock);
    r->pid = 0;
    pthread_mutex_unlock(&r->cl->lock);
}

/* Starts the child and reads its port; 0, or -errno with why in last_error. */
static int replica_spawn(struct replica *r)
{
    char why[SERVE_DETAIL_MAX] = "";
    struct spawn sp = {.parent = r->cl->self, .fd_max = r->cl->fd_max, .null_fd = -1};
    int pipe_fd[2] = {-1, -1};
    char port_arg[16];
    replica_args(r, &sp, port_arg, sizeof(port_arg));
    int err = 0;
    if (mkdir(r->dir, 0755) != 0 && errno != EEXIST)
        err = -errno;
    if (!err && r->log_fd < 0 &&
        (r->log_fd = open(r->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
        err = -errno;
    if (!err && (sp.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        err = -errno;
    if (!err && pipe2(pipe_fd, O_CLOEXEC) != 0)
        err = -errno;
    if (err) {
        snprintf(why, sizeof(why), "cannot prepare %.300s: %s", r->dir, strerror(-err));
        goto out_close;
    }
    sp.out_fd = pipe_fd[1];
    sp.log_fd = r->log_fd;
    pid_t pid = fork();
    if (pid == 0)
        child_exec(&sp);
    if (pid < 0) {
        err = -errno;
        snprintf(why, sizeof(why), "cannot start a process: %s", strerror(-err));
        goto out_close;
    }
    close(pipe_fd[1]);
    pipe_fd[1] = -1;
    r->out_fd = pipe_fd[0];
    pipe_fd[0] = -1;
    pthread_mutex_lock(&r->cl->lock);
    r->pid = pid;
    pthread_mutex_unlock(&r->cl->lock);
    int port = 0;
    err = replica_read_banner(r, &port);
    if (err == 0) {
        int fl = fcntl(r->out_fd, F_GETFL);
        fcntl(r->out_fd, F_SETFL, fl | O_NONBLOCK);
        pthread_mutex_lock(&r->cl->lock);
        r->port = port;
        r->contact_mono_us = 0;
        pthread_mutex_unlock(&r->cl->lock);
        r->peer.port = port;
        r->position_known = false;
        close(sp.null_fd);
        return 0;
    }
    spawn_failed(r, pid, err, why, sizeof(why));
out_close:
    if (pipe_fd[0] >= 0)
        close(pipe_fd[0]);
    if (pipe_fd[1] >= 0)
        close(pipe_fd[1]);
    if (sp.null_fd >= 0)
        close(sp.null_fd);
    pthread_mutex_lock(&r->cl->lock);
    snprintf(r->last_error, sizeof(r->last_error), "%s cannot start: %.400s", r->node, why);
    pthread_mutex_unlock(&r->cl->lock);
    return err != 0 ? err : -EIO;
}

/* SIGTERM, a bounded wait (its output still copied), then SIGKILL. */
static void replica_terminate(struct replica *r)
{
    if (r->pid <= 0)
        return;
    pid_t pid = r->pid;
    /* our kept-alive connection would hold one of its workers until it times out */
    peer_close(&r->peer);
    kill(pid, SIGTERM);
    int status = 0;
    pid_t got = 0;
    int64_t deadline_us = host_mono_us() + (int64_t)CLUSTER_TERM_MS * 1000;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && host_mono_us() < deadline_us) {
        replica_pump_output(r);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000L};
        nanosleep(&ts, NULL);
    }
    if (got == 0) {
        fprintf(stderr, "faultdrill serve: %s (pid %d) did not stop within %d s: killed\n", r->node,
                (int)pid, CLUSTER_TERM_MS / 1000);
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    remove_fifo(pid);
    replica_pump_output(r);
    pthread_mutex_lock(&r->cl->lock);
    r->pid = 0;
    pthread_mutex_unlock(&r->cl->lock);
}

/* ---- propagation ------------------------------------------------------------ */

static int64_t leader_head(struct cluster *cl)
{
    int64_t head = atomic_load(&cl->head);
    int64_t last = writer_last_seq(&cl->srv->writer);
    return last > head ? last : head;
}

static void head_seen(struct cluster *cl, int64_t seq)
{
    int64_t cur = atomic_load(&cl->head);
    while (seq > cur && !atomic_compare_exchange_weak(&cl->head, &cur, seq))
        ;
}

static void replica_error(struct replica *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void replica_error(struct replica *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&r->cl->lock);
    vsnprintf(r->last_error, sizeof(r->last_error), fmt, ap);
    pthread_mutex_unlock(&r->cl->lock);
    va_end(ap);
}

/* After a failure: wait, longer each time in a row. */
static void replica_backoff(struct replica *r)
{
    cluster_wait_ms(r->cl, r->backoff_ms);
    r->backoff_ms =
        r->backoff_ms * 2 < CLUSTER_BACKOFF_MS_MAX ? r->backoff_ms * 2 : CLUSTER_BACKOFF_MS_MAX;
}

static int reader_get(struct replica *r, shop **out)
{
    if (r->reader == NULL) {
        char msg[SHOP_ERRMSG_MAX];
        struct server *srv = r->cl->srv;
        int rc = shop_open_reader(&srv->cfg.primary, &srv->env, &r->reader, msg);
        if (rc != 0) {
            replica_error(r, "cannot read the leader's outbox: %s", msg);
            return rc;
        }
    }
    *out = r->reader;
    return 0;
}

static void reader_drop(struct replica *r)
{
    shop_close(r->reader); /* a fresh handle next time: nothing stale survives a healed disk */
    r->reader = NULL;
}

/* What a replica answered to POST /api/sync. */
struct sync_answer {
    int64_t position;
    int64_t applied, skipped;
    bool gap;
};

/* POSTs a batch (or nothing: a probe) and reads the replica's answer. */
static int replica_post(struct replica *r, const void *batch, size_t len, struct sync_answer *a)
{
    struct peer_reply rep;
    int err = peer_call(&r->peer, "POST", "/api/sync",
                        "Content-Type: application/octet-stream\r\n" CLUSTER_SOURCE_HEADER
                        ": " CLUSTER_SOURCE "\r\n",
                        batch, len, CLUSTER_SYNC_MS, true, &rep, &r->reply);
    if (err != 0) {
        replica_error(r, "%s on port %d: %s", r->node, r->peer.port,
                      err == -ETIMEDOUT ? "no answer in time" : strerror(-err));
        return err;
    }
    cJSON *j = cJSON_ParseWithLength(buf_body(&r->reply), buf_body_len(&r->reply));
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(j, "position");
    if (rep.status != 200 || !cJSON_IsNumber(pos)) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "detail");
        replica_error(r, "%s answered %d: %s%s%s", r->node, rep.status,
                      cJSON_IsString(e) ? e->valuestring : "not a sync answer",
                      cJSON_IsString(d) ? ": " : "", cJSON_IsString(d) ? d->valuestring : "");
        cJSON_Delete(j);
        return rep.status == 409 ? -EBADMSG : -EIO;
    }
    a->position = (int64_t)pos->valuedouble;
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "applied");
    a->applied = cJSON_IsNumber(x) ? (int64_t)x->valuedouble : 0;
    x = cJSON_GetObjectItemCaseSensitive(j, "skipped");
    a->skipped = cJSON_IsNumber(x) ? (int64_t)x->valuedouble : 0;
    a->gap = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "gap"));
    cJSON_Delete(j);
    int64_t now_mono = host_mono_us(), now_wall = host_wall_us();
    pthread_mutex_lock(&r->cl->lock);
    r->position = a->position;
    r->heard = true;
    r->contact_mono_us = now_mono;
    r->contact_wall_us = now_wall;
    pthread_mutex_unlock(&r->cl->lock);
    r->position_known = true;
    return 0;
}

static int prune_fn(shop *s, void *arg)
{
    return shop_outbox_prune(s, *(const int64_t *)arg);
}

/* Forgets the changes every replica holds, now and then, through the writer. */
static void maybe_prune(struct cluster *cl)
{
    int64_t low = INT64_MAX;
    pthread_mutex_lock(&cl->lock);
    for (int i = 0; i < cl->count; i++) {
        const struct replica *r = &cl->replicas[i];
        if (!r->heard)
            low = -1; /* it may hold anything: keep everything */
        else if (low >= 0 && r->position < low)
            low = r->position;
    }
    bool go = !cl->pruning && !cl->stopping && low >= 0 && low - cl->pruned >= CLUSTER_PRUNE_STEP;
    if (go)
        cl->pruning = true;
    pthread_mutex_unlock(&cl->lock);
    if (!go)
        return;
    int rc = writer_call(&cl->srv->writer, prune_fn, &low);
    pthread_mutex_lock(&cl->lock);
    cl->pruning = false;
    if (rc == 0)
        cl->pruned = low;
    pthread_mutex_unlock(&cl->lock);
}

/* It holds every change there is. */
static void replica_caught_up(struct replica *r)
{
    struct cluster *cl = r->cl;
    r->backoff_ms = CLUSTER_BACKOFF_MS_MIN;
    r->respawn_ms = CLUSTER_RESPAWN_MS_MIN;
    pthread_mutex_lock(&cl->lock);
    r->missing_at_us = 0;
    if (cl->draining && !r->drained) {
        r->drained = true;
        pthread_cond_broadcast(&cl->cond);
    }
    pthread_mutex_unlock(&cl->lock);
}

/* Asks where the replica is, and reads the outbox's head. */
static int replica_probe(struct replica *r)
{
    struct sync_answer a;
    int err = replica_post(r, NULL, 0, &a);
    r->probe_at_us = host_mono_us() + (int64_t)CLUSTER_PROBE_MS * 1000;
    shop *s = NULL;
    struct shop_outbox_info info;
    bool head_read = false;
    if (err == 0 && reader_get(r, &s) == 0) {
        head_read = shop_outbox_info(s, &info) == 0;
        if (head_read)
            head_seen(r->cl, info.head_seq);
        else
            reader_drop(r);
    }
    if (err == 0 && head_read && a.position > leader_head(r->cl)) {
        /* a leader whose database was replaced would number its changes anew */
        replica_error(r,
                      "%s holds change %" PRId64 " but the leader's outbox ends at %" PRId64
                      ": the copies diverged",
                      r->node, a.position, leader_head(r->cl));
        return -EBADMSG;
    }
    return err;
}

/* The commit time of a batch's first change (the encoding of platform.h). */
static int64_t batch_first_at_us(const struct shop_batch *b)
{
    if (b->count == 0 || b->len < 24)
        return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b->data[16 + i]; /* "FDB1", u32 count, i64 seq, then i64 at_us */
    return (int64_t)v;
}

/* Consults the link's fault points; true when the batch is lost. */
static bool link_drops(struct replica *r, const struct shop_batch *b)
{
    int64_t delay_us = faults_check(r->delay_point);
    if (delay_us > 0)
        cluster_wait_ms(r->cl,
                        (delay_us < CLUSTER_DELAY_US_MAX ? delay_us : CLUSTER_DELAY_US_MAX) / 1000);
    if (faults_check(r->drop_point) == 0)
        return false;
    replica_error(r, "a batch of changes %" PRId64 "-%" PRId64 " was lost (%s)", b->first_seq,
                  b->last_seq, r->drop_point);
    return true;
}

/* One round with a running replica: probe, or ship one batch, or idle. */
static void replica_ship_step(struct replica *r)
{
    struct cluster *cl = r->cl;
    if (!r->position_known || host_mono_us() >= r->probe_at_us) {
        if (replica_probe(r) != 0) {
            replica_backoff(r);
            return;
        }
    }
    if (r->position >= leader_head(cl)) {
        replica_caught_up(r);
        cluster_wait_ms(cl, CLUSTER_IDLE_MS);
        return;
    }
    shop *s = NULL;
    struct shop_batch b = {0};
    int rc = reader_get(r, &s);
    if (rc == 0 && (rc = shop_outbox_read(s, r->position, CLUSTER_SHIP_CHANGES_MAX,
                                          CLUSTER_SHIP_BYTES_MAX, &b)) != 0) {
        if (rc == -ERANGE)
            replica_error(r,
                          "%s is at change %" PRId64 " but the outbox was pruned past it: "
                          "give it a copy of the leader's database",
                          r->node, r->position);
        else
            replica_error(r, "cannot read the leader's outbox: %s", shop_errmsg(s));
        reader_drop(r);
    }
    if (rc != 0) {
        replica_backoff(r);
        return;
    }
    if (b.count == 0) {
        shop_batch_release(&b);
        replica_caught_up(r);
        cluster_wait_ms(cl, CLUSTER_IDLE_MS);
        return;
    }
    head_seen(cl, b.last_seq);
    pthread_mutex_lock(&cl->lock);
    r->missing_at_us = batch_first_at_us(&b);
    pthread_mutex_unlock(&cl->lock);
    struct sync_answer a;
    bool lost = link_drops(r, &b);
    int err = lost ? -ETIMEDOUT : replica_post(r, b.data, b.len, &a);
    shop_batch_release(&b);
    if (err != 0) {
        replica_backoff(r);
        return;
    }
    /* after a gap the answer's position is where to resend from: nothing else to do */
    r->backoff_ms = CLUSTER_BACKOFF_MS_MIN;
    maybe_prune(cl);
}

/* Not running: start it, unless stopping or resting after a death. */
static void replica_start_step(struct replica *r)
{
    struct cluster *cl = r->cl;
    pthread_mutex_lock(&cl->lock);
    bool draining = cl->draining;
    if (draining && !r->drained) {
        r->drained = true; /* nothing to ship to */
        pthread_cond_broadcast(&cl->cond);
    }
    pthread_mutex_unlock(&cl->lock);
    int64_t now_us = host_mono_us();
    if (draining || now_us < r->respawn_at_us) {
        int64_t left_us = draining ? 100000 : r->respawn_at_us - now_us;
        cluster_wait_ms(cl, left_us < 100000 ? left_us / 1000 + 1 : 100);
        return;
    }
    bool first = !r->settled;
    int err = replica_spawn(r);
    pthread_mutex_lock(&cl->lock);
    if (!first && err == 0)
        r->restarts++;
    r->settled = true;
    pthread_cond_broadcast(&cl->cond);
    pthread_mutex_unlock(&cl->lock);
    if (err != 0) {
        r->respawn_at_us = host_mono_us() + r->respawn_ms * 1000;
        if (r->respawn_ms < CLUSTER_RESPAWN_MS_MAX)
            r->respawn_ms *= 2;
    }
}

static void *replica_main(void *arg)
{
    struct replica *r = arg;
    while (!cluster_stopping(r->cl)) {
        if (r->pid <= 0) {
            replica_start_step(r);
            continue;
        }
        replica_pump_output(r);
        if (!replica_reaped(r))
            replica_ship_step(r);
    }
    replica_terminate(r);
    return NULL;
}

/* ---- the leader's life ------------------------------------------------------ */

static int leader_start(struct server *srv, struct cluster *cl)
{
    const struct serve_options *o = &srv->opt;
    cl->self = getpid();
    /* --port 0: the replicas take free ports too (P+1..P+N may belong to
     * someone else) and say which in their banners */
    cl->any_port = o->port_requested == 0;
    struct rlimit rl;
    cl->fd_max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < CLUSTER_FDS_MAX
                     ? (int)rl.rlim_cur
                     : CLUSTER_FDS_MAX;
    int threads =
        o->threads < CLUSTER_REPLICA_THREADS_MAX ? o->threads : CLUSTER_REPLICA_THREADS_MAX;
    snprintf(cl->threads_arg, sizeof(cl->threads_arg), "%d", threads);
    snprintf(cl->leader_port_arg, sizeof(cl->leader_port_arg), "%d", o->port);
    /* waitpid needs children that are not reaped behind our back */
    struct sigaction sa;
    if (sigaction(SIGCHLD, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
        signal(SIGCHLD, SIG_DFL);
    cl->count = o->replicas;
    for (int i = 0; i < cl->count; i++) {
        struct replica *r = &cl->replicas[i];
        r->cl = cl;
        r->index = i + 1;
        /* formatted from i, not from r's own strings: source and target in one struct */
        int k = i + 1;
        snprintf(r->node, sizeof(r->node), "replica%d", k);
        snprintf(r->dir, sizeof(r->dir), "%.3000s/replica%d", o->data_dir, k);
        snprintf(r->log_path, sizeof(r->log_path), "%.3000s/replica%d/serve.log", o->data_dir, k);
        snprintf(r->drop_point, sizeof(r->drop_point), "net/leader/replica%d/drop", k);
        snprintf(r->delay_point, sizeof(r->delay_point), "net/leader/replica%d/delay", k);
        r->peer.fd = -1;
        r->out_fd = -1;
        r->log_fd = -1;
        r->backoff_ms = CLUSTER_BACKOFF_MS_MIN;
        r->respawn_ms = CLUSTER_RESPAWN_MS_MIN;
        r->port = cl->any_port ? 0 : o->port + r->index;
        pthread_mutex_lock(&srv->panel.lock);
        (void)panel_add(&srv->panel, r->drop_point);
        (void)panel_add(&srv->panel, r->delay_point);
        pthread_mutex_unlock(&srv->panel.lock);
        if (!cl->any_port && o->port + r->index > 65535) {
            r->settled = true;
            r->respawn_at_us = INT64_MAX;
            snprintf(r->last_error, sizeof(r->last_error),
                     "replica%d cannot start: port %d is past 65535", k, o->port + k);
        }
    }
    for (int i = 0; i < cl->count; i++) {
        struct replica *r = &cl->replicas[i];
        int rc = pthread_create(&r->thread, NULL, replica_main, r);
        if (rc != 0) {
            fprintf(stderr, "faultdrill serve: cannot start a thread for %s: %s\n", r->node,
                    strerror(rc));
            return -rc;
        }
        r->thread_started = true;
    }
    /* the first start of every replica, so the status knows their ports */
    pthread_mutex_lock(&cl->lock);
    for (int i = 0; i < cl->count;) {
        if (cl->replicas[i].settled) {
            i++;
            continue;
        }
        pthread_cond_wait(&cl->cond,
                          &cl->lock); /* bounded: a spawn gives up after CLUSTER_BANNER_MS */
    }
    for (int i = 0; i < cl->count; i++) {
        const struct replica *r = &cl->replicas[i];
        if (r->pid > 0)
            printf("faultdrill serve: %s on port %d, pid %d, log %s\n", r->node, r->port,
                   (int)r->pid, r->log_path);
        else
            printf("faultdrill serve: %s is down (%s); the leader serves, and retries it\n",
                   r->node, r->last_error);
    }
    pthread_mutex_unlock(&cl->lock);
    fflush(stdout);
    return 0;
}

static int position_fn(shop *s, void *arg)
{
    return shop_replica_position(s, CLUSTER_SOURCE, (int64_t *)arg, NULL);
}

int cluster_start(struct server *srv)
{
    assert(srv->cluster == NULL);
    struct cluster *cl = NULL;
    int err = cluster_create(srv, &cl);
    if (err != 0) {
        fprintf(stderr, "faultdrill serve: cannot set up the cluster: %s\n", strerror(-err));
        return err;
    }
    srv->cluster = cl;
    if (srv->opt.role == SERVE_CLUSTER)
        return leader_start(srv, cl);
    assert(srv->opt.role == SERVE_REPLICA);
    int64_t position = 0;
    err = writer_call(&srv->writer, position_fn, &position);
    if (err != 0) {
        fprintf(stderr, "faultdrill serve: cannot read %s's position: %s\n", srv->opt.node,
                strerror(-err));
        return err;
    }
    cl->applied = position;
    return 0;
}

void cluster_stop(struct server *srv)
{
    struct cluster *cl = srv->cluster;
    if (cl == NULL)
        return;
    /* Ship what is pending first (civetweb has stopped: no more writes come). */
    pthread_mutex_lock(&cl->lock);
    cl->draining = true;
    pthread_cond_broadcast(&cl->cond);
    struct timespec until = host_deadline_after_us((int64_t)CLUSTER_DRAIN_MS * 1000);
    for (int i = 0; i < cl->count;) {
        const struct replica *r = &cl->replicas[i];
        if (r->drained || !r->thread_started) {
            i++;
            continue;
        }
        if (pthread_cond_timedwait(&cl->cond, &cl->lock, &until) == ETIMEDOUT)
            break;
    }
    cl->stopping = true;
    pthread_cond_broadcast(&cl->cond);
    pthread_mutex_unlock(&cl->lock);
    for (int i = 0; i < cl->count; i++) {
        struct replica *r = &cl->replicas[i];
        if (r->thread_started)
            pthread_join(r->thread, NULL);
        shop_close(r->reader);
        peer_close(&r->peer);
        buf_release(&r->reply);
        if (r->out_fd >= 0)
            close(r->out_fd);
        if (r->log_fd >= 0)
            close(r->log_fd);
    }
    srv->cluster = NULL;
    cluster_free(cl);
}

/* ---- what the leader says --------------------------------------------------- */

/* A replica as the status and the registry see it. */
struct replica_view {
    char node[FAULTS_NODE_MAX];
    pid_t pid;
    int port;
    bool heard;
    int64_t position, missing_at_us, contact_mono_us, contact_wall_us;
    unsigned restarts;
    char last_error[SERVE_DETAIL_MAX];
    char log_path[SERVE_PATH_MAX];
};

static int views_get(struct cluster *cl, struct replica_view *v)
{
    pthread_mutex_lock(&cl->lock);
    for (int i = 0; i < cl->count; i++) {
        const struct replica *r = &cl->replicas[i];
        memcpy(v[i].node, r->node, sizeof(v[i].node));
        v[i].pid = r->pid;
        v[i].port = r->port;
        v[i].heard = r->heard;
        v[i].position = r->position;
        v[i].missing_at_us = r->missing_at_us;
        v[i].contact_mono_us = r->contact_mono_us;
        v[i].contact_wall_us = r->contact_wall_us;
        v[i].restarts = r->restarts;
        memcpy(v[i].last_error, r->last_error, sizeof(v[i].last_error));
        memcpy(v[i].log_path, r->log_path, sizeof(v[i].log_path));
    }
    int n = cl->count;
    pthread_mutex_unlock(&cl->lock);
    return n;
}

/* down: not running or not heard lately; catching-up: lacks a change older
 * than CLUSTER_BEHIND_MS; up otherwise. */
static const char *view_state(const struct replica_view *v, int64_t now_mono, int64_t now_wall)
{
    if (v->pid <= 0 || v->contact_mono_us == 0 ||
        now_mono - v->contact_mono_us > (int64_t)CLUSTER_HEALTHY_MS * 1000)
        return "down";
    if (v->missing_at_us > 0 && now_wall - v->missing_at_us > (int64_t)CLUSTER_BEHIND_MS * 1000)
        return "catching-up";
    return "up";
}

static void json_seconds(struct buf *b, int64_t us)
{
    char text[32];
    snprintf(text, sizeof(text), "%.3f", (double)(us > 0 ? us : 0) / 1e6);
    buf_puts(b, text);
}

void cluster_status(struct request *rq)
{
    struct cluster *cl = rq->srv->cluster;
    if (cl == NULL || rq->srv->opt.role != SERVE_CLUSTER) {
        status_not_configured(rq);
        return;
    }
    struct replica_view v[SERVE_REPLICAS_MAX];
    int n = views_get(cl, v);
    int64_t head = leader_head(cl), now_mono = host_mono_us(), now_wall = host_wall_us();
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"topology\":\"cluster\",\"leader\":{\"node\":");
    json_str(b, rq->srv->opt.node);
    buf_puts(b, ",\"port\":");
    buf_i64(b, rq->srv->opt.port);
    buf_puts(b, ",\"pid\":");
    buf_i64(b, (int64_t)getpid());
    buf_puts(b, ",\"seq\":");
    buf_i64(b, head);
    buf_puts(b, "},\"replicas\":[");
    for (int i = 0; i < n; i++) {
        buf_puts(b, i ? ",{\"node\":" : "{\"node\":");
        json_str(b, v[i].node);
        buf_puts(b, ",\"port\":");
        v[i].port > 0 ? buf_i64(b, v[i].port) : buf_puts(b, "null");
        buf_puts(b, ",\"pid\":");
        v[i].pid > 0 ? buf_i64(b, (int64_t)v[i].pid) : buf_puts(b, "null");
        buf_puts(b, ",\"state\":");
        json_str(b, view_state(&v[i], now_mono, now_wall));
        buf_puts(b, ",\"position\":");
        v[i].heard ? buf_i64(b, v[i].position) : buf_puts(b, "null");
        buf_puts(b, ",\"lagChanges\":");
        v[i].heard ? buf_i64(b, head > v[i].position ? head - v[i].position : 0)
                   : buf_puts(b, "null");
        buf_puts(b, ",\"lagSeconds\":");
        json_seconds(b, v[i].missing_at_us > 0 ? now_wall - v[i].missing_at_us : 0);
        buf_puts(b, ",\"lastError\":");
        json_str(b, v[i].last_error);
        buf_puts(b, ",\"lastContact\":");
        if (v[i].contact_wall_us > 0)
            json_time(b, v[i].contact_wall_us);
        else
            buf_puts(b, "null");
        buf_puts(b, ",\"restarts\":");
        buf_i64(b, v[i].restarts);
        buf_puts(b, ",\"log\":");
        json_str(b, v[i].log_path);
        buf_puts(b, "}");
    }
    buf_puts(b, "]}");
    http_reply(rq, 200);
}

/* ---- a replica's side --------------------------------------------------------- */

/* Reads the raw body into w->body; -E2BIG past max (413 sent), <0 otherwise. */
static int read_raw_body(struct request *rq, size_t max)
{
    struct buf *b = &rq->w->body;
    b->len = 0;
    b->oom = false;
    int rc = 0;
    if (rq->ri->content_length > (long long)max)
        rc = -E2BIG;
    while (rc == 0) {
        if (!buf_reserve(b, 65536)) {
            rc = -ENOMEM;
            break;
        }
        int n = mg_read(rq->conn, b->p + b->len, 65536);
        if (n < 0)
            rc = -EIO;
        if (n <= 0)
            break;
        b->len += (size_t)n;
        if (b->len > max)
            rc = -E2BIG;
    }
    if (rc == -E2BIG) {
        snprintf(rq->detail, sizeof(rq->detail), "a request body may hold at most %zu bytes", max);
        mg_disable_connection_keep_alive(rq->conn);
        rq->closing = true;
        http_reply_error(rq, 413, "request body too large", rq->detail);
    } else if (rc != 0) {
        http_reply_error(rq, rc == -ENOMEM ? 500 : 400, "cannot read the request body", NULL);
    }
    return rc;
}

struct apply_arg {
    const void *batch;
    size_t len;
    struct shop_apply_result res;
    char detail[SHOP_ERRMSG_MAX];
};

static int apply_fn(shop *s, void *arg)
{
    struct apply_arg *a = arg;
    int rc = shop_replica_apply(s, CLUSTER_SOURCE, a->batch, a->len, &a->res);
    if (rc != 0)
        snprintf(a->detail, sizeof(a->detail), "%s", shop_errmsg(s));
    return rc;
}

static void sync_reply(struct request *rq, int64_t position, int64_t applied, int64_t skipped,
                       bool gap)
{
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"position\":");
    buf_i64(b, position);
    buf_puts(b, ",\"applied\":");
    buf_i64(b, applied);
    buf_puts(b, ",\"skipped\":");
    buf_i64(b, skipped);
    buf_puts(b, gap ? ",\"gap\":true}" : ",\"gap\":false}");
    http_reply(rq, 200);
}

static void applied_moved(struct cluster *cl, int64_t position)
{
    pthread_mutex_lock(&cl->lock);
    if (position > cl->applied) {
        cl->applied = position;
        pthread_cond_broadcast(&cl->cond);
    }
    pthread_mutex_unlock(&cl->lock);
}

void cluster_api_sync(struct request *rq)
{
    struct cluster *cl = rq->srv->cluster;
    if (rq->srv->opt.role != SERVE_REPLICA || cl == NULL) {
        status_not_configured(rq);
        return;
    }
    const char *source = mg_get_header(rq->conn, CLUSTER_SOURCE_HEADER);
    if (source == NULL || strcmp(source, CLUSTER_SOURCE) != 0) {
        http_reply_error(rq, 400, "not from the leader",
                         "POST /api/sync takes the leader's batches (" CLUSTER_SOURCE_HEADER
                         ": " CLUSTER_SOURCE ")");
        return;
    }
    if (read_raw_body(rq, SHOP_BATCH_BYTES_MAX) != 0)
        return;
    if (rq->w->body.len == 0) { /* a probe: where are you? */
        int64_t position = 0;
        int rc = worker_read(rq, position_fn, &position);
        if (rc != 0) {
            http_reply_platform(rq, rc, rq->detail);
            return;
        }
        applied_moved(cl, position);
        sync_reply(rq, position, 0, 0, false);
        return;
    }
    struct apply_arg a = {.batch = rq->w->body.p, .len = rq->w->body.len};
    int rc = writer_call(&rq->srv->writer, apply_fn, &a);
    if (rc == -EPROTO) {
        http_reply_error(rq, 400, "malformed batch", a.detail);
    } else if (rc == -EBADMSG) {
        http_reply_error(rq, 409, "the copies diverged", a.detail);
    } else if (rc != 0) {
        /* disk errors, an unknown commit, a busy or stopping writer: retry later */
        http_reply_error(rq, 503,
                         platform_is_unknown(rc) ? "outcome unknown" : platform_strerror(rc),
                         a.detail[0] ? a.detail : NULL);
    } else {
        applied_moved(cl, a.res.position);
        sync_reply(rq, a.res.position, a.res.applied, a.res.skipped, a.res.gap);
    }
}

/* Waits until this replica holds change seq; false when the bound passed. */
static bool wait_applied(struct cluster *cl, int64_t seq)
{
    struct timespec until = host_deadline_after_us((int64_t)CLUSTER_RYW_MS * 1000);
    pthread_mutex_lock(&cl->lock);
    while (cl->applied < seq)
        if (pthread_cond_timedwait(&cl->cond, &cl->lock, &until) == ETIMEDOUT)
            break;
    bool held = cl->applied >= seq;
    pthread_mutex_unlock(&cl->lock);
    return held;
}

/* Relays the leader's reply (in rq->w->out) to the client. */
static void relay(struct request *rq, const struct peer_reply *rep, bool stale)
{
    char headers[160];
    int n = snprintf(headers, sizeof(headers), "X-Faultdrill-Via: leader");
    if (rep->seq > 0)
        n += snprintf(headers + n, sizeof(headers) - (size_t)n,
                      "\r\n" CLUSTER_SEQ_HEADER ": %" PRId64, rep->seq);
    if (stale)
        snprintf(headers + n, sizeof(headers) - (size_t)n, "\r\nX-Faultdrill-Stale: 1");
    const char *type =
        rep->status == 204 || rep->content_type[0] == '\0' ? NULL : rep->content_type;
    http_reply_bytes(rq, &rq->w->out, rep->status, type, headers);
}

/* Sends method+target to the leader and relays its answer; returns the seq. */
static void forward_to_leader(struct request *rq, const char *method, const char *target,
                              const void *body, size_t len, int timeout_ms, bool wait_for_seq)
{
    struct server *srv = rq->srv;
    char headers[CLUSTER_CONTENT_TYPE_MAX + 160];
    const char *type = mg_get_header(rq->conn, "Content-Type");
    int n = snprintf(headers, sizeof(headers),
                     "Connection: close\r\nX-Faultdrill-Forwarded-By: %s\r\n", srv->opt.node);
    if (type != NULL && strlen(type) < CLUSTER_CONTENT_TYPE_MAX)
        snprintf(headers + n, sizeof(headers) - (size_t)n, "Content-Type: %s\r\n", type);
    struct peer peer = {.fd = -1, .port = srv->opt.leader_port};
    struct peer_reply rep;
    int err =
        peer_call(&peer, method, target, headers, body, len, timeout_ms, false, &rep, &rq->w->out);
    peer_close(&peer);
    if (err != 0 && !rep.sent) {
        snprintf(rq->detail, sizeof(rq->detail), "%s cannot reach its leader on port %d: %s",
                 srv->opt.node, srv->opt.leader_port, strerror(-err));
        http_reply_error(rq, 503, "leader unreachable", rq->detail);
        return;
    }
    if (err != 0) {
        snprintf(rq->detail, sizeof(rq->detail),
                 "%s forwarded the request to its leader on port %d, which did not answer (%s): "
                 "it may or may not have been applied",
                 srv->opt.node, srv->opt.leader_port,
                 err == -ETIMEDOUT ? "timed out" : strerror(-err));
        http_reply_error(rq, strcmp(method, "GET") == 0 ? 503 : 500,
                         strcmp(method, "GET") == 0 ? "leader unreachable" : "outcome unknown",
                         rq->detail);
        return;
    }
    bool stale = false;
    if (wait_for_seq && rep.status >= 200 && rep.status < 300 && rep.seq > 0)
        stale = !wait_applied(srv->cluster, rep.seq);
    relay(rq, &rep, stale);
}

bool cluster_forward(struct request *rq)
{
    if (rq->srv->opt.role != SERVE_REPLICA || rq->srv->cluster == NULL)
        return false;
    const char *method = rq->ri->request_method;
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return false;
    const char *uri = rq->ri->local_uri_raw != NULL ? rq->ri->local_uri_raw : rq->ri->local_uri;
    /* The leader's batches, and this node's own fault panel, stay here. */
    if (strcmp(uri, "/api/sync") == 0 || strcmp(uri, "/faults") == 0)
        return false;
    char target[2 * SERVE_PATH_MAX];
    const char *query = rq->ri->query_string;
    int n = snprintf(target, sizeof(target), "%s%s%s", uri, query != NULL ? "?" : "",
                     query != NULL ? query : "");
    if (n < 0 || (size_t)n >= sizeof(target)) {
        http_reply_error(rq, 400, "bad request", "the request target is too long");
        return true;
    }
    if (read_raw_body(rq, SERVE_BODY_MAX) == 0)
        forward_to_leader(rq, method, target, rq->w->body.p, rq->w->body.len, CLUSTER_FORWARD_MS,
                          true);
    return true;
}

void cluster_get_server(struct request *rq)
{
    struct server *srv = rq->srv;
    struct cluster *cl = srv->cluster;
    if (cl == NULL) {
        status_not_configured(rq);
        return;
    }
    if (srv->opt.role == SERVE_REPLICA) { /* the registry is the leader's */
        forward_to_leader(rq, "GET", "/getServer", NULL, 0, CLUSTER_REGISTRY_MS, false);
        return;
    }
    struct replica_view v[SERVE_REPLICAS_MAX];
    int n = views_get(cl, v);
    int64_t now_mono = host_mono_us(), now_wall = host_wall_us();
    /* the leader (it is answering) and the replicas that are up, in order */
    const char *nodes[SERVE_REPLICAS_MAX + 1] = {srv->opt.node};
    int ports[SERVE_REPLICAS_MAX + 1] = {srv->opt.port};
    int healthy = 1;
    for (int i = 0; i < n; i++) {
        if (strcmp(view_state(&v[i], now_mono, now_wall), "up") != 0)
            continue;
        nodes[healthy] = cl->replicas[i].node;
        ports[healthy] = v[i].port;
        healthy++;
    }
    unsigned turn = atomic_fetch_add(&cl->rotation, 1) % (unsigned)healthy;
    char server[64];
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", ports[turn]);
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"server\":");
    json_str(b, server);
    buf_puts(b, ",\"node\":");
    json_str(b, nodes[turn]);
    buf_puts(b, ",\"healthy\":");
    buf_i64(b, healthy);
    buf_puts(b, "}");
    http_reply(rq, 200);
}
