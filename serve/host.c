/*
 * host.c — serve as a host of the platform (DESIGN.md §1): the clocks, the
 * parallel hook on one persistent helper thread, and what a slow disk does
 * (sleep). The only file of serve/ that reads a clock for the platform.
 *
 * The platform's env clock is the wall clock (CLOCK_REALTIME): the shop
 * stores it as orders' created_at and the mirror's state times, which users
 * read as dates. Uptime and intervals use CLOCK_MONOTONIC.
 */
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "serve/internal.h"

int64_t host_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t host_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t env_now_us(void *ctx)
{
    (void)ctx;
    return host_wall_us();
}

static int64_t env_mono_us(void *ctx)
{
    (void)ctx;
    return host_mono_us();
}

static void sem_wait_all(sem_t *s)
{
    while (sem_wait(s) != 0)
        assert(errno == EINTR);
}

static void *helper_main(void *p)
{
    struct host *h = p;
    for (;;) {
        sem_wait_all(&h->go);
        if (h->stop)
            return NULL;
        h->fn(h->arg);
        sem_post(&h->done);
    }
}

/* One caller at a time: only the writer thread commits. */
static void env_parallel(void *ctx, void (*fn)(void *arg), void *a, void *b)
{
    struct host *h = ctx;
    assert(h->started);
    h->fn = fn;
    h->arg = b;
    sem_post(&h->go);
    fn(a);
    sem_wait_all(&h->done);
}

/* Free memory a thread arena keeps before glibc gives it back. */
#define HOST_TRIM_THRESHOLD_BYTES (64 << 20)

int host_start(struct host *h)
{
    memset(h, 0, sizeof(*h));
    /* Measured: glibc trimmed the writer's arena on nearly every group (a
     * savepoint's release frees the top chunk), and each trim is an madvise
     * whose TLB shootdown interrupts every core: 4% of the writer thread.
     * Keeping the memory costs at most this much per arena. A tuning
     * only: another allocator (a sanitizer's) refuses it, and that is fine. */
    (void)mallopt(M_TRIM_THRESHOLD, HOST_TRIM_THRESHOLD_BYTES);
    if (sem_init(&h->go, 0, 0) != 0 || sem_init(&h->done, 0, 0) != 0)
        return -errno;
    int rc = pthread_create(&h->thread, NULL, helper_main, h);
    if (rc != 0)
        return -rc;
    h->started = true;
    return 0;
}

void host_stop(struct host *h)
{
    if (!h->started)
        return;
    h->stop = true;
    sem_post(&h->go);
    pthread_join(h->thread, NULL);
    sem_destroy(&h->go);
    sem_destroy(&h->done);
    h->started = false;
}

/*
 * A crash point enabled at run time (fiu-ctrl -c "enable name=crash/primary/
 * checkout-mid-transaction" PID) fired: the process dies on the spot, as a
 * kill -9 would — no unwinding, no clean close, no atexit. A restart then
 * recovers, which is what the point is there to show.
 */
static void env_crash(void *ctx, const char *node, const char *point)
{
    (void)ctx;
    char line[256];
    int n = snprintf(line, sizeof(line), "faultdrill serve: crash point crash/%s/%s fired: dying "
                                         "as kill -9 would\n", node, point);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line));
        (void)w;
    }
    raise(SIGKILL);
    _exit(137); /* not reached */
}

struct timespec host_deadline_after_us(int64_t us)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(us / 1000000);
    t.tv_nsec += (long)(us % 1000000) * 1000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

struct platform_env host_env(struct host *h)
{
    struct platform_env env = {
        .ctx = h,
        .now_us = env_now_us,
        .mono_us = env_mono_us,
        .crash = env_crash,
        .parallel = env_parallel,
    };
    return env;
}

static void faults_sleep(void *ctx, const char *node, int64_t delay_us)
{
    (void)ctx;
    (void)node;
    if (delay_us <= 0)
        return;
    struct timespec ts = {.tv_sec = delay_us / 1000000, .tv_nsec = (delay_us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

struct faults_host host_faults(void)
{
    /* serve never simulates a power cut (kill -9 and a real one are its
     * crash model), so the VFS keeps no undo record: faults still fire. */
    struct faults_host fh = {
        .ctx = NULL, .delay = faults_sleep, .skip_real_sync = false, .no_power_cut = true};
    return fh;
}
