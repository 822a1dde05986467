/*
 * node_proc.c — nodes this process starts (DESIGN.md §7: every node its own
 * process): an async secondary, an offline central, a cluster's replicas.
 *
 * Each child has a thread that owns its whole life: it forks and execs
 * `faultdrill serve --role NAME --port 0 ...` (the kernel picks a free port:
 * no fixed port can collide with the ephemeral range), reads the port from
 * the banner the child writes into its log (DIR/serve.log, which the child
 * writes itself, so it outlives us without a broken pipe), tells the
 * transport where the node listens, reaps it when it dies (said on stderr
 * and in the view), and starts it again after a pause that doubles from
 * PROC_RESPAWN_MS_MIN to PROC_RESPAWN_MS_MAX, on the port it had (the
 * kernel's pick of its first start: nodes that were told where it listens,
 * a registry's replicas, still reach it; should that port be taken, the
 * next start takes any). A child dies with us: the
 * kernel sends it SIGTERM when this thread ends (PR_SET_PDEATHSIG), a
 * clean stop sends SIGTERM first and SIGKILL after PROC_TERM_MS.
 *
 * Decides nothing about a protocol: whether a node is up for a protocol is
 * what its messages say, not this file.
 */
#define _GNU_SOURCE /* close_range through syscall, O_CLOEXEC everywhere */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "serve/internal.h"
#include "serve/nodes.h"

#define PROC_RESPAWN_MS_MIN 1000  /* a dead child is started again after this... */
#define PROC_RESPAWN_MS_MAX 5000  /* ...doubling up to this */
#define PROC_STABLE_MS      10000 /* a child up this long earns the short pause again */
#define PROC_BANNER_MS      60000 /* a child must say its port within this (ASan is slow) */
#define PROC_TERM_MS        5000  /* a child's clean stop, then SIGKILL */
#define PROC_POLL_MS        20    /* how often the thread looks at its child */
#define PROC_FDS_MAX        65536 /* descriptors a child closes without close_range */
#define PROC_ARGV_MAX       (24 + PROC_ARGS_MAX)
#define PROC_THREADS_MAX    16 /* civetweb workers of a child */
#define PROC_LOG_LINE_MAX   1024

struct proc {
    struct server *srv;
    char name[FAULTS_NODE_MAX];
    char dir[SERVE_PATH_MAX];
    char log_path[SERVE_PATH_MAX];
    char *argv[PROC_ARGV_MAX];
    char threads_arg[16], port_arg[16], peer_arg[FAULTS_NODE_MAX + WIRE_URL_MAX + 2];
    int last_port; /* where the last start listened: the next asks for it (0: any) */
    void (*on_restart)(void *ctx, const char *name); /* under lock */
    void *on_restart_ctx;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC: stop, settled */
    bool stopping, settled;
    int log_fd;
    int fd_max;
    pid_t parent;
    int64_t respawn_ms, respawn_at_us;
    /* under lock */
    pid_t pid;
    int port;
    unsigned restarts;
    int64_t up_since_us;
    char last_error[384];
};

/* ---- the child's side of fork: async-signal-safe calls only ------------------ */

static void child_exec(const struct proc *c, int null_fd)
{
    setpgid(0, 0); /* a terminal's Ctrl-C reaches the parent, which stops us in order */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != c->parent)
        _exit(127); /* the parent is gone already */
    if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(c->log_fd, STDOUT_FILENO) < 0 ||
        dup2(c->log_fd, STDERR_FILENO) < 0)
        _exit(127);
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
        for (int fd = 3; fd < c->fd_max; fd++)
            close(fd);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* our threads block SIGTERM/SIGINT */
    execv("/proc/self/exe", c->argv);
    static const char msg[] = "faultdrill serve: cannot run /proc/self/exe for a node\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
}

/* ---- helpers ---------------------------------------------------------------------- */

static bool child_stopping(struct proc *c)
{
    pthread_mutex_lock(&c->lock);
    bool s = c->stopping;
    pthread_mutex_unlock(&c->lock);
    return s;
}

static void child_wait_ms(struct proc *c, int64_t ms)
{
    struct timespec t = host_deadline_after_us(ms * 1000);
    pthread_mutex_lock(&c->lock);
    if (!c->stopping)
        pthread_cond_timedwait(&c->cond, &c->lock, &t);
    pthread_mutex_unlock(&c->lock);
}

static void set_error(struct proc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(struct proc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&c->lock);
    vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
    pthread_mutex_unlock(&c->lock);
    va_end(ap);
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

/* libfiu leaves its fiu-ctrl fifos behind when a process is killed: a
 * reaped child's go (its pid cannot be someone else's yet). */
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

/* The last line of the log after offset from: why a child could not start. */
static void log_last_line(const struct proc *c, off_t from, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(c->log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char tail[512];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t at = size - (off_t)sizeof(tail) + 1 > from ? size - (off_t)sizeof(tail) + 1 : from;
    ssize_t n = at < size ? pread(fd, tail, sizeof(tail) - 1, at) : 0;
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

/*
 * Follows the log from offset `from` until the child's banner names its
 * port. -ECHILD when the child ended first (status in *status), -ETIMEDOUT
 * past PROC_BANNER_MS, -ECANCELED when stopping.
 */
static int read_banner(struct proc *c, pid_t pid, off_t from, int *port, int *status)
{
    static const char banner[] = "faultdrill serve: http://127.0.0.1:";
    int fd = open(c->log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char line[PROC_LOG_LINE_MAX];
    size_t len = 0;
    off_t at = from;
    int err = -ETIMEDOUT;
    int64_t deadline = host_mono_us() + (int64_t)PROC_BANNER_MS * 1000;
    while (host_mono_us() < deadline) {
        char chunk[512];
        ssize_t n = pread(fd, chunk, sizeof(chunk), at);
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] != '\n') {
                if (len + 1 < sizeof(line))
                    line[len++] = chunk[i];
                continue;
            }
            line[len] = '\0';
            len = 0;
            const char *p = strstr(line, banner);
            long v = p != NULL ? strtol(p + sizeof(banner) - 1, NULL, 10) : 0;
            if (p != NULL) {
                *port = (int)v;
                err = v > 0 && v <= 65535 ? 0 : -EPROTO;
                goto out_close;
            }
        }
        if (n > 0) {
            at += n;
            continue;
        }
        if (waitpid(pid, status, WNOHANG) == pid) {
            err = -ECHILD;
            goto out_close;
        }
        if (child_stopping(c)) {
            err = -ECANCELED;
            goto out_close;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = PROC_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
out_close:
    close(fd);
    return err;
}

/* ---- one start ---------------------------------------------------------------------- */

static void child_down(struct proc *c)
{
    (void)wire_set_peer(c->srv->net, c->name, NULL);
    pthread_mutex_lock(&c->lock);
    c->pid = 0;
    c->port = 0;
    c->up_since_us = 0;
    pthread_mutex_unlock(&c->lock);
}

static void schedule_respawn(struct proc *c)
{
    c->respawn_at_us = host_mono_us() + c->respawn_ms * 1000;
    c->respawn_ms =
        c->respawn_ms * 2 < PROC_RESPAWN_MS_MAX ? c->respawn_ms * 2 : PROC_RESPAWN_MS_MAX;
}

/* Starts the child and learns its port; 0, or -errno with last_error set. */
static int child_spawn(struct proc *c)
{
    if (mkdir(c->dir, 0755) != 0 && errno != EEXIST) {
        set_error(c, "%s cannot start: cannot make %.300s: %s", c->name, c->dir, strerror(errno));
        return -errno;
    }
    if (c->log_fd < 0 &&
        (c->log_fd = open(c->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        set_error(c, "%s cannot start: cannot open %.300s: %s", c->name, c->log_path,
                  strerror(errno));
        return -errno;
    }
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0)
        return -errno;
    off_t from = lseek(c->log_fd, 0, SEEK_END);
    snprintf(c->port_arg, sizeof(c->port_arg), "%d", c->last_port);
    pid_t pid = fork();
    if (pid == 0)
        child_exec(c, null_fd);
    int fork_errno = errno;
    close(null_fd);
    if (pid < 0) {
        set_error(c, "%s cannot start: fork: %s", c->name, strerror(fork_errno));
        return -fork_errno;
    }
    pthread_mutex_lock(&c->lock);
    c->pid = pid;
    pthread_mutex_unlock(&c->lock);
    int port = 0, status = 0;
    int err = read_banner(c, pid, from, &port, &status);
    if (err == 0) {
        char url[WIRE_URL_MAX];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
        (void)wire_set_peer(c->srv->net, c->name, url);
        pthread_mutex_lock(&c->lock);
        c->port = port;
        c->up_since_us = host_mono_us();
        pthread_mutex_unlock(&c->lock);
        c->last_port = port;
        return 0;
    }
    c->last_port = 0; /* perhaps its port was taken meanwhile: any, next time */
    if (err != -ECHILD) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    remove_fifo(pid);
    char last[256], how[160];
    log_last_line(c, from, last, sizeof(last));
    describe_exit(status, how, sizeof(how));
    if (err == -ETIMEDOUT)
        set_error(c, "%s did not say its port within %d s; killed", c->name, PROC_BANNER_MS / 1000);
    else if (err != -ECANCELED)
        set_error(c, "%s cannot start: %s%s%s", c->name, how, last[0] ? ": " : "", last);
    child_down(c);
    return err;
}

/* The child ended: record why, and when it comes back. */
static void child_gone(struct proc *c, pid_t pid, int status)
{
    char how[160];
    describe_exit(status, how, sizeof(how));
    remove_fifo(pid);
    pthread_mutex_lock(&c->lock);
    int64_t up_us = c->up_since_us > 0 ? host_mono_us() - c->up_since_us : 0;
    pthread_mutex_unlock(&c->lock);
    if (up_us >= (int64_t)PROC_STABLE_MS * 1000)
        c->respawn_ms = PROC_RESPAWN_MS_MIN;
    set_error(c, "%s (pid %d) %s; restarting it", c->name, (int)pid, how);
    fprintf(stderr, "faultdrill serve: %s (pid %d) %s; restarting it in %.1f s\n", c->name,
            (int)pid, how, (double)c->respawn_ms / 1000);
    child_down(c);
    schedule_respawn(c);
}

static void child_terminate(struct proc *c)
{
    pthread_mutex_lock(&c->lock);
    pid_t pid = c->pid;
    pthread_mutex_unlock(&c->lock);
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    int status = 0;
    pid_t got = 0;
    int64_t deadline = host_mono_us() + (int64_t)PROC_TERM_MS * 1000;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && host_mono_us() < deadline) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000L};
        nanosleep(&ts, NULL);
    }
    if (got == 0) {
        fprintf(stderr, "faultdrill serve: %s (pid %d) did not stop within %d s: killed\n", c->name,
                (int)pid, PROC_TERM_MS / 1000);
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    remove_fifo(pid);
    child_down(c);
}

static void settle(struct proc *c)
{
    pthread_mutex_lock(&c->lock);
    c->settled = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void *child_main(void *arg)
{
    struct proc *c = arg;
    bool first = true;
    while (!child_stopping(c)) {
        pthread_mutex_lock(&c->lock);
        pid_t pid = c->pid;
        pthread_mutex_unlock(&c->lock);
        if (pid > 0) {
            int status = 0;
            pid_t got = waitpid(pid, &status, WNOHANG);
            if (got == pid || (got < 0 && errno == ECHILD))
                child_gone(c, pid, got == pid ? status : 0);
            else
                child_wait_ms(c, PROC_POLL_MS);
            continue;
        }
        if (!first && host_mono_us() < c->respawn_at_us) {
            child_wait_ms(c, PROC_POLL_MS * 5);
            continue;
        }
        int err = child_spawn(c);
        if (err == 0 && !first) {
            pthread_mutex_lock(&c->lock);
            c->restarts++;
            if (c->on_restart != NULL) /* under the lock: proc_on_restart(NULL) waits for it */
                c->on_restart(c->on_restart_ctx, c->name);
            pthread_mutex_unlock(&c->lock);
        }
        if (err != 0)
            schedule_respawn(c);
        if (first)
            settle(c);
        first = false;
    }
    child_terminate(c);
    settle(c);
    return NULL;
}

/* ---- the API -------------------------------------------------------------------------- */

static int build_argv(struct proc *c, const char *const *extra)
{
    struct server *srv = c->srv;
    const struct serve_options *o = &srv->opt;
    char self_url[WIRE_URL_MAX];
    snprintf(self_url, sizeof(self_url), "http://127.0.0.1:%d", o->port);
    snprintf(c->peer_arg, sizeof(c->peer_arg), "%s=%s", o->node, self_url);
    int threads = o->threads < PROC_THREADS_MAX ? o->threads : PROC_THREADS_MAX;
    snprintf(c->threads_arg, sizeof(c->threads_arg), "%d", threads);
    size_t n = 0;
    char **a = c->argv;
    a[n++] = "faultdrill";
    a[n++] = "serve";
    a[n++] = "--role";
    a[n++] = c->name;
    a[n++] = "--port";
    a[n++] = c->port_arg;
    a[n++] = "--data";
    a[n++] = c->dir;
    a[n++] = "--secret-file";
    a[n++] = srv->secret_path;
    a[n++] = "--peer";
    a[n++] = c->peer_arg;
    a[n++] = "--no-demo";
    a[n++] = "--threads";
    a[n++] = c->threads_arg;
    a[n++] = "--web";
    a[n++] = srv->web_root[0] ? srv->web_root : (char *)o->web_dir;
    if (o->allow_faults)
        a[n++] = "--allow-faults";
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (n + 1 >= PROC_ARGV_MAX)
            return -E2BIG;
        a[n++] = (char *)extra[i];
    }
    a[n] = NULL;
    return 0;
}

static void child_free(struct proc *c)
{
    if (c->log_fd >= 0)
        close(c->log_fd);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int proc_start(struct server *srv, const char *name, const char *dir, const char *const *extra,
               struct proc **out)
{
    struct proc *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->lock, NULL);
    c->srv = srv;
    c->log_fd = -1;
    c->parent = getpid();
    c->respawn_ms = PROC_RESPAWN_MS_MIN;
    snprintf(c->name, sizeof(c->name), "%s", name);
    int err = 0;
    if (snprintf(c->dir, sizeof(c->dir), "%s", dir) >= (int)sizeof(c->dir) ||
        snprintf(c->log_path, sizeof(c->log_path), "%s/serve.log", dir) >= (int)sizeof(c->log_path))
        err = -ENAMETOOLONG;
    if (!err)
        err = build_argv(c, extra);
    struct rlimit rl;
    c->fd_max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < PROC_FDS_MAX ? (int)rl.rlim_cur
                                                                                 : PROC_FDS_MAX;
    /* waitpid needs children that are not reaped behind our back */
    struct sigaction sa;
    if (sigaction(SIGCHLD, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
        signal(SIGCHLD, SIG_DFL);
    if (!err)
        err = wire_set_peer(srv->net, name, NULL);
    if (!err)
        err = -pthread_create(&c->thread, NULL, child_main, c);
    if (err) {
        fprintf(stderr, "faultdrill serve: cannot start %s: %s\n", name, strerror(-err));
        child_free(c);
        return err;
    }
    *out = c;
    return 0;
}

void proc_settle(struct proc *c)
{
    pthread_mutex_lock(&c->lock);
    while (!c->settled) /* bounded: a start gives up after PROC_BANNER_MS */
        pthread_cond_wait(&c->cond, &c->lock);
    if (c->pid > 0)
        printf("faultdrill serve: %s on port %d, pid %d, log %s\n", c->name, c->port, (int)c->pid,
               c->log_path);
    else
        printf("faultdrill serve: %s is down (%s); retrying it\n", c->name, c->last_error);
    pthread_mutex_unlock(&c->lock);
    fflush(stdout);
}

void proc_stop(struct proc *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    child_free(c);
}

void proc_json(struct buf *b, const char *key, struct server *srv, const char *name,
               struct proc *child)
{
    char url[WIRE_URL_MAX];
    bool known = srv->net != NULL && wire_peer_url(srv->net, name, url);
    struct proc_view c = {0};
    if (child != NULL)
        proc_view(child, &c);
    buf_puts(b, ",");
    json_str(b, key);
    buf_puts(b, ":{\"node\":");
    json_str(b, name);
    buf_puts(b, ",\"url\":");
    known ? json_str(b, url) : buf_puts(b, "null");
    buf_puts(b, ",\"pid\":");
    c.pid > 0 ? buf_i64(b, c.pid) : buf_puts(b, "null");
    buf_puts(b, ",\"restarts\":");
    buf_i64(b, c.restarts);
    buf_puts(b, ",\"log\":");
    child != NULL ? json_str(b, c.log_path) : buf_puts(b, "null");
    buf_puts(b, ",\"lastError\":");
    json_str(b, c.last_error);
    buf_puts(b, "}");
}

void proc_view(struct proc *c, struct proc_view *out)
{
    pthread_mutex_lock(&c->lock);
    out->pid = c->pid;
    out->port = c->port;
    out->restarts = c->restarts;
    out->up_since_mono_us = c->up_since_us;
    snprintf(out->last_error, sizeof(out->last_error), "%s", c->last_error);
    snprintf(out->log_path, sizeof(out->log_path), "%s", c->log_path);
    pthread_mutex_unlock(&c->lock);
}

void proc_on_restart(struct proc *c, void (*fn)(void *ctx, const char *name), void *ctx)
{
    pthread_mutex_lock(&c->lock);
    c->on_restart = fn;
    c->on_restart_ctx = ctx;
    pthread_mutex_unlock(&c->lock);
}
