/*
 * pool.c — forked worker processes (see pool.h). One pipe pair per worker:
 * the parent writes 8-byte task ids, the worker answers with a fixed header
 * and the result bytes. Each worker holds at most one task, so the parent
 * knows what a dead or overdue worker was doing, and load balances by
 * handing the next task to whichever worker answers first.
 *
 * The parent never runs a task itself; a worker is replaced by forking the
 * parent again, which is why the work function must not depend on anything
 * the parent changes after pool_create beyond what ctx exposes.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim/cli.h"
#include "sim/pool.h"

struct wire_header {
    uint64_t id;
    int32_t rc;
    uint32_t len;
    int64_t wall_ms;
};

struct worker {
    pid_t pid;
    int task_w;     /* parent -> worker */
    int result_r;   /* worker -> parent */
    bool busy;
    uint64_t task;
    int64_t started_ms;
    int64_t timeout_ms; /* of the task it runs; 0: none */
};

struct queued {
    uint64_t id;
    int64_t timeout_ms;
};

struct pool {
    pool_work_fn fn;
    void *ctx;
    int64_t timeout_ms;
    int jobs;
    struct worker w[POOL_WORKERS_MAX];
    struct queued *queue;
    size_t queue_head, queue_len, queue_cap;
    size_t running;
    int next_scan;
    struct pool_buf result;
    void (*old_sigpipe)(int);
};

/* ---- buffers -------------------------------------------------------------- */

int pool_buf_append(struct pool_buf *b, const void *bytes, size_t n)
{
    if (b->len + n + 1 > POOL_RESULT_BYTES_MAX)
        return -E2BIG;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL)
            return -ENOMEM;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void pool_buf_release(struct pool_buf *b)
{
    free(b->data);
    *b = (struct pool_buf){0};
}

/* ---- pipes ---------------------------------------------------------------- */

static int write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes: n, 0 at end of file before the first byte, -errno. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return got == 0 ? 0 : -EPIPE;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---- the worker side ------------------------------------------------------ */

static void worker_loop(struct pool *p, int task_r, int result_w)
{
    struct pool_buf out = {0};
    for (;;) {
        uint64_t id;
        if (read_full(task_r, &id, sizeof(id)) != (ssize_t)sizeof(id))
            break;
        out.len = 0;
        int64_t t0 = cli_now_ms();
        int rc = p->fn(p->ctx, id, &out);
        struct wire_header h = {
            .id = id,
            .rc = rc,
            .len = (uint32_t)out.len,
            .wall_ms = cli_now_ms() - t0,
        };
        if (write_full(result_w, &h, sizeof(h)) != 0 ||
            (out.len > 0 && write_full(result_w, out.data, out.len) != 0))
            break;
    }
    pool_buf_release(&out);
}

/* Forks the worker of slot i; 0 or -errno. */
static int spawn(struct pool *p, int i)
{
    int task[2], result[2];
    if (pipe(task) != 0)
        return -errno;
    if (pipe(result) != 0) {
        int err = -errno;
        close(task[0]);
        close(task[1]);
        return err;
    }
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(task[0]);
        close(task[1]);
        close(result[0]);
        close(result[1]);
        return err;
    }
    if (pid == 0) {
        /* The other workers' pipe ends must not stay open here, or the
         * parent would never see their end of file. */
        for (int k = 0; k < p->jobs; k++) {
            if (k != i && p->w[k].pid > 0) {
                close(p->w[k].task_w);
                close(p->w[k].result_r);
            }
        }
        close(task[1]);
        close(result[0]);
        signal(SIGPIPE, SIG_DFL);
        worker_loop(p, task[0], result[1]);
        /* exit, not _exit: the sanitizer build's leak check runs in workers too */
        exit(0);
    }
    close(task[0]);
    close(result[1]);
    p->w[i] = (struct worker){.pid = pid, .task_w = task[1], .result_r = result[0]};
    return 0;
}

/* ---- the parent side ------------------------------------------------------ */

struct pool *pool_create(int jobs, pool_work_fn fn, void *ctx, int64_t timeout_ms, char err[256])
{
    assert(fn != NULL);
    if (jobs < 1 || jobs > POOL_WORKERS_MAX) {
        snprintf(err, 256, "--jobs must be 1 to %d", POOL_WORKERS_MAX);
        return NULL;
    }
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, 256, "out of memory");
        return NULL;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->timeout_ms = timeout_ms;
    p->old_sigpipe = signal(SIGPIPE, SIG_IGN); /* a dead worker is an EPIPE, not our death */
    for (int i = 0; i < jobs; i++) {
        int rc = spawn(p, i);
        if (rc != 0) {
            snprintf(err, 256, "cannot start worker %d: %s", i + 1, strerror(-rc));
            pool_free(p);
            return NULL;
        }
        p->jobs = i + 1;
    }
    return p;
}

int pool_submit(struct pool *p, uint64_t id)
{
    return pool_submit_for(p, id, p->timeout_ms);
}

int pool_submit_for(struct pool *p, uint64_t id, int64_t timeout_ms)
{
    if (p->queue_len == p->queue_cap) {
        /* compact what was consumed before growing */
        if (p->queue_head > 0) {
            memmove(p->queue, p->queue + p->queue_head,
                    (p->queue_len - p->queue_head) * sizeof(*p->queue));
            p->queue_len -= p->queue_head;
            p->queue_head = 0;
        }
        if (p->queue_len == p->queue_cap) {
            size_t cap = p->queue_cap ? p->queue_cap * 2 : 256;
            struct queued *grown = realloc(p->queue, cap * sizeof(*grown));
            if (grown == NULL)
                return -ENOMEM;
            p->queue = grown;
            p->queue_cap = cap;
        }
    }
    p->queue[p->queue_len++] = (struct queued){id, timeout_ms};
    return 0;
}

size_t pool_pending(const struct pool *p)
{
    return p->queue_len - p->queue_head + p->running;
}

static void reap(struct worker *w, char why[256])
{
    close(w->task_w);
    close(w->result_r);
    int status = 0;
    pid_t r;
    do {
        r = waitpid(w->pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (why == NULL)
        return;
    if (r < 0)
        snprintf(why, 256, "the worker vanished: %s", strerror(errno));
    else if (WIFSIGNALED(status))
        snprintf(why, 256, "the worker was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(why, 256, "the worker exited with status %d in the middle of the run",
                 WEXITSTATUS(status));
}

/* Replaces worker i after reap(); 0 or -errno. */
static int replace(struct pool *p, int i)
{
    p->w[i].pid = 0;
    int rc = spawn(p, i);
    if (rc != 0)
        fprintf(stderr, "faultdrill: cannot replace worker %d: %s\n", i + 1, strerror(-rc));
    return rc;
}

static void dispatch(struct pool *p)
{
    for (int i = 0; i < p->jobs && p->queue_head < p->queue_len; i++) {
        struct worker *w = &p->w[i];
        if (w->busy || w->pid <= 0)
            continue;
        struct queued q = p->queue[p->queue_head++];
        uint64_t id = q.id;
        w->busy = true;
        w->task = id;
        w->started_ms = cli_now_ms();
        w->timeout_ms = q.timeout_ms;
        p->running++;
        /* A failed write means the worker died: its end of file reports it. */
        (void)write_full(w->task_w, &id, sizeof(id));
    }
}

/* A dead or overdue worker: the result of its task, and a new worker. */
static int lost(struct pool *p, int i, enum pool_status status, struct pool_result *r)
{
    struct worker *w = &p->w[i];
    *r = (struct pool_result){
        .id = w->task,
        .status = status,
        .data = "",
        .wall_ms = cli_now_ms() - w->started_ms,
        .worker = i,
    };
    if (status == POOL_TIMEOUT) {
        kill(w->pid, SIGKILL);
        reap(w, NULL);
        snprintf(r->why, sizeof(r->why), "still running after %lld ms of wall time: killed",
                 (long long)w->timeout_ms);
    } else {
        reap(w, r->why);
    }
    w->busy = false;
    p->running--;
    return replace(p, i);
}

static int receive(struct pool *p, int i, struct pool_result *r)
{
    struct worker *w = &p->w[i];
    struct wire_header h;
    ssize_t n = read_full(w->result_r, &h, sizeof(h));
    if (n != (ssize_t)sizeof(h) || h.id != w->task || h.len > POOL_RESULT_BYTES_MAX)
        return lost(p, i, POOL_DIED, r);
    p->result.len = 0;
    if (h.len > 0) {
        if (p->result.cap < (size_t)h.len + 1) {
            char *grown = realloc(p->result.data, (size_t)h.len + 1);
            if (grown == NULL)
                return -ENOMEM;
            p->result.data = grown;
            p->result.cap = (size_t)h.len + 1;
        }
        if (read_full(w->result_r, p->result.data, h.len) != (ssize_t)h.len)
            return lost(p, i, POOL_DIED, r);
        p->result.len = h.len;
        p->result.data[h.len] = '\0';
    }
    *r = (struct pool_result){
        .id = h.id,
        .status = h.rc == 0 ? POOL_DONE : POOL_FAILED,
        .err = h.rc,
        .data = h.len > 0 ? p->result.data : "",
        .len = h.len,
        .wall_ms = h.wall_ms,
        .worker = i,
    };
    w->busy = false;
    p->running--;
    return 0;
}

int pool_wait(struct pool *p, struct pool_result *r)
{
    for (;;) {
        dispatch(p);
        if (p->running == 0)
            return -ENOENT;
        struct pollfd fds[POOL_WORKERS_MAX];
        int slot[POOL_WORKERS_MAX];
        nfds_t nfds = 0;
        int64_t now = cli_now_ms(), wait_ms = -1;
        for (int k = 0; k < p->jobs; k++) {
            int i = (p->next_scan + k) % p->jobs;
            struct worker *w = &p->w[i];
            if (!w->busy)
                continue;
            if (w->timeout_ms > 0) {
                int64_t left = w->started_ms + w->timeout_ms - now;
                if (left <= 0)
                    return lost(p, i, POOL_TIMEOUT, r);
                if (wait_ms < 0 || left < wait_ms)
                    wait_ms = left;
            }
            fds[nfds] = (struct pollfd){.fd = w->result_r, .events = POLLIN};
            slot[nfds++] = i;
        }
        int ready = poll(fds, nfds, wait_ms > INT32_MAX ? INT32_MAX : (int)wait_ms);
        if (ready < 0 && errno != EINTR)
            return -errno;
        for (nfds_t k = 0; ready > 0 && k < nfds; k++) {
            if (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                p->next_scan = (slot[k] + 1) % p->jobs; /* the others go first next time */
                return receive(p, slot[k], r);
            }
        }
    }
}

void pool_free(struct pool *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->jobs; i++) {
        struct worker *w = &p->w[i];
        if (w->pid <= 0)
            continue;
        if (w->busy)
            kill(w->pid, SIGKILL);
        close(w->task_w); /* end of file: the worker's loop ends */
        close(w->result_r);
        int status = 0;
        while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (!w->busy && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            fprintf(stderr, "faultdrill: worker %d ended with status %d at the end\n", i + 1,
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
    signal(SIGPIPE, p->old_sigpipe);
    free(p->queue);
    pool_buf_release(&p->result);
    free(p);
}
