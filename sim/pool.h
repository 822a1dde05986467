/*
 * pool.h — long-lived forked worker processes for the commands that run many
 * drills (sweep, fuzz). The parent queues task ids; each worker, forked once,
 * runs tasks one after another in its own address space and sends back the
 * bytes its work function produced. A worker that dies (a crash of the
 * simulator, an abort) or overruns the wall-time limit is reported as that
 * task's failure and replaced, so one bad run never stops a sweep.
 *
 * POSIX only (fork, pipe, poll). The work function runs in the child with the
 * parent's memory as it was at the fork: everything a task needs must be
 * reachable from ctx or derivable from the task id.
 */
#ifndef FAULTDRILL_SIM_POOL_H
#define FAULTDRILL_SIM_POOL_H

#include <stddef.h>
#include <stdint.h>

#define POOL_WORKERS_MAX 256
#define POOL_RESULT_BYTES_MAX (64u << 20)

/* A growable byte buffer (what a work function writes its result into). */
struct pool_buf {
    char *data;
    size_t len, cap;
};

int pool_buf_append(struct pool_buf *b, const void *bytes, size_t n);
void pool_buf_release(struct pool_buf *b);

/*
 * Runs task id in a worker, writing its result into out; returns 0, or a
 * negative errno (the result then says why, as text).
 */
typedef int (*pool_work_fn)(void *ctx, uint64_t id, struct pool_buf *out);

enum pool_status {
    POOL_DONE,     /* the work function returned 0 */
    POOL_FAILED,   /* it returned an error; data says why */
    POOL_DIED,     /* the worker died running it; why says how */
    POOL_TIMEOUT,  /* it ran past the wall-time limit and was killed */
};

struct pool_result {
    uint64_t id;
    enum pool_status status;
    int err;               /* POOL_FAILED: the function's -errno */
    const char *data;      /* the bytes sent (NUL-terminated); valid until the next pool_wait */
    size_t len;
    int64_t wall_ms;       /* the task's wall time, measured by the worker (or the parent) */
    int worker;            /* 0-based slot that ran it */
    char why[256];         /* POOL_DIED, POOL_TIMEOUT */
};

struct pool;

/*
 * Forks jobs workers (1..POOL_WORKERS_MAX). timeout_ms > 0 limits one task's
 * wall time. NULL when it cannot (err says why).
 */
struct pool *pool_create(int jobs, pool_work_fn fn, void *ctx, int64_t timeout_ms,
                         char err[256]);
/* Queues a task; 0 or -ENOMEM. Tasks start in the order queued. */
int pool_submit(struct pool *p, uint64_t id);
/* The same with its own wall-time limit (0: none) instead of the pool's. */
int pool_submit_for(struct pool *p, uint64_t id, int64_t timeout_ms);
/* Tasks queued or running. */
size_t pool_pending(const struct pool *p);
/*
 * Waits for the next finished task (any order). 0 with r filled; -ENOENT when
 * nothing is queued or running; another -errno when the pool broke (a worker
 * could not be replaced).
 */
int pool_wait(struct pool *p, struct pool_result *r);
/* Stops the workers (queued tasks are dropped) and frees the pool. */
void pool_free(struct pool *p);

#endif /* FAULTDRILL_SIM_POOL_H */
