/*
 * bench_checkout.c — durable write throughput of the shop on this machine's
 * disk: how many order transactions per second it commits unmirrored and
 * strict-mirrored with synchronous=FULL, next to the bare fdatasync rate of
 * the same disk measured by the same program (the ceiling every durable
 * commit pays for).
 *
 * One operation is exactly one write transaction: shop_order_create of one
 * line of quantity 1, rotating over 20 products with stock 10^9 and 50 users.
 * Phases: bare (pwrite 4 KiB at offset 0 + fdatasync), single, mirror strict
 * (ack both, both copies in the same directory), and mirror degrade for
 * information, then single and strict again with an outbox (the mirrored node
 * of `mirror async|cluster`). Targets (from the issue): strict >= 0.5 x unmirrored, and
 * unmirrored >= 0.5 x bare.
 *
 * This is a host of the platform (DESIGN.md §1): it may read the monotonic
 * clock, the platform may not. Run by `make bench`, never by ctest.
 *
 *   bench_checkout [--dir DIR] [--seconds S] [--vfs NAME]
 *
 * Exit: 0 whatever the figures; 2 bad usage; 3 could not run (set-up or I/O).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "platform/platform.h"

#define BENCH_PRODUCTS    20
#define BENCH_USERS       50
#define BENCH_STOCK       1000000000LL
#define BENCH_WARMUP_OPS  50
#define BENCH_SECONDS_MAX 3600.0
#define BENCH_SAMPLES_MAX (1u << 21) /* latencies kept for percentiles */
#define BENCH_BLOCK       4096
#define BENCH_PATH_MAX    4096
#define BENCH_TARGET      0.5

#define EXIT_USAGE 2
#define EXIT_SETUP 3

struct options {
    const char *dir; /* NULL: a fresh directory under the current one */
    double seconds;
    const char *vfs;
};

struct phase {
    const char *name;
    uint64_t ops;
    double seconds;
    double p50_us, p99_us;
    bool ran;
};

/* Latencies of one phase, in microseconds. */
struct samples {
    double *us;
    size_t count;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t host_now_us(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_checkout [--dir DIR] [--seconds S] [--vfs NAME]\n"
               "  --dir DIR     where the files go (default: a new bench-XXXXXX under the\n"
               "                current directory; not /tmp, which may be memory)\n"
               "  --seconds S   length of each phase (default 3)\n"
               "  --vfs NAME    SQLite VFS for the shop's databases (default: SQLite's)\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.seconds = 3.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc ||
            (strcmp(a, "--dir") != 0 && strcmp(a, "--seconds") != 0 && strcmp(a, "--vfs") != 0)) {
            fprintf(stderr, "bench_checkout: unknown option or missing value: %s\n", a);
            usage(stderr);
            return -EINVAL;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--dir") == 0) {
            o->dir = v;
        } else if (strcmp(a, "--vfs") == 0) {
            o->vfs = v;
        } else {
            char *end = NULL;
            o->seconds = strtod(v, &end);
            if (end == v || *end != '\0' || !(o->seconds > 0) || o->seconds > BENCH_SECONDS_MAX) {
                fprintf(stderr, "bench_checkout: --seconds wants a number in (0, %g], not %s\n",
                        BENCH_SECONDS_MAX, v);
                return -EINVAL;
            }
        }
    }
    return 0;
}

/* ---- where the files go --------------------------------------------------- */

static const char *fs_type_name(long magic)
{
    switch ((unsigned long)magic) {
    case 0xEF53:
        return "ext2/3/4";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x01021994:
        return "tmpfs";
    case 0x858458F6:
        return "ramfs";
    case 0x794C7630:
        return "overlayfs";
    case 0xF2F52010:
        return "f2fs";
    case 0x2FC12FC1:
        return "zfs";
    case 0x6969:
        return "nfs";
    case 0xFF534D42:
        return "cifs";
    case 0x65735546:
        return "fuse";
    case 0x4D44:
        return "vfat";
    default:
        return "unknown";
    }
}

static bool is_memory_fs(long magic)
{
    return (unsigned long)magic == 0x01021994 || (unsigned long)magic == 0x858458F6;
}

static void path_in(char out[BENCH_PATH_MAX], const char *dir, const char *file)
{
    int n = snprintf(out, BENCH_PATH_MAX, "%s/%s", dir, file);
    if (n < 0 || n >= BENCH_PATH_MAX) {
        fprintf(stderr, "bench_checkout: path too long: %s/%s\n", dir, file);
        exit(EXIT_SETUP);
    }
}

/* Removes a database and the files SQLite keeps next to it. */
static void remove_db(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[BENCH_PATH_MAX + 16];
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

/* ---- latencies -------------------------------------------------------------- */

static void samples_add(struct samples *s, double us)
{
    if (s->count < BENCH_SAMPLES_MAX)
        s->us[s->count++] = us;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void samples_summarise(struct samples *s, struct phase *ph)
{
    if (s->count == 0)
        return;
    qsort(s->us, s->count, sizeof(double), cmp_double);
    ph->p50_us = s->us[s->count / 2];
    ph->p99_us = s->us[(size_t)((double)(s->count - 1) * 0.99)];
    s->count = 0;
}

/* ---- phase (a): the disk alone -------------------------------------------- */

static int run_bare(const char *dir, double seconds, struct samples *lat, struct phase *ph)
{
    char path[BENCH_PATH_MAX];
    path_in(path, dir, "bare.dat");
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0) {
        fprintf(stderr, "bench_checkout: cannot create %s: %s\n", path, strerror(errno));
        return -errno;
    }
    static char block[BENCH_BLOCK];
    memset(block, 0xA5, sizeof(block));
    int err = 0;
    /* The first write allocates the block; the timed ones only overwrite it,
     * as a WAL being reused after a checkpoint does. */
    if (pwrite(fd, block, sizeof(block), 0) != (ssize_t)sizeof(block) || fsync(fd) != 0)
        err = -errno;
    double start = now_s(), t = start;
    while (!err && t - start < seconds) {
        block[0] = (char)ph->ops;
        if (pwrite(fd, block, sizeof(block), 0) != (ssize_t)sizeof(block) || fdatasync(fd) != 0) {
            err = -errno;
            break;
        }
        double t2 = now_s();
        samples_add(lat, (t2 - t) * 1e6);
        t = t2;
        ph->ops++;
    }
    ph->seconds = t - start;
    close(fd);
    unlink(path);
    if (err) {
        fprintf(stderr, "bench_checkout: writing %s: %s\n", path, strerror(-err));
        return err;
    }
    samples_summarise(lat, ph);
    ph->ran = true;
    return 0;
}

/* ---- phases (b)-(d): the shop --------------------------------------------- */

struct catalog {
    int64_t products[BENCH_PRODUCTS];
    int64_t users[BENCH_USERS];
};

static int seed(shop *s, struct catalog *c)
{
    for (int i = 0; i < BENCH_PRODUCTS; i++) {
        struct shop_product p = {.price_cents = 199 + 100 * i, .stock = BENCH_STOCK};
        snprintf(p.name, sizeof(p.name), "Bench product %d", i + 1);
        snprintf(p.category, sizeof(p.category), "cat%d", i % 4);
        c->products[i] = shop_product_create(s, &p);
        if (c->products[i] < 0)
            return (int)c->products[i];
    }
    for (int i = 0; i < BENCH_USERS; i++) {
        char email[64];
        snprintf(email, sizeof(email), "shopper%d@bench.example", i + 1);
        c->users[i] = shop_user_create(s, "Bench shopper", email);
        if (c->users[i] < 0)
            return (int)c->users[i];
    }
    return 0;
}

/* One operation: one order of one unit, one write transaction. */
static int64_t one_order(shop *s, const struct catalog *c, uint64_t i)
{
    struct shop_order_line line = {.product_id = c->products[i % BENCH_PRODUCTS], .quantity = 1};
    return shop_order_create(s, c->users[(i / BENCH_PRODUCTS + i) % BENCH_USERS], &line, 1, NULL);
}

static int run_shop_with(const struct shop_config *cfg, const struct platform_env *env,
                         double seconds, struct samples *lat, struct phase *ph);

/*
 * The host's parallel hook, as a real host provides it: one long-lived
 * worker thread runs fn(b) while the caller runs fn(a), so the mirror's two
 * commits (and their fdatasyncs) overlap. A thread per call would cost more
 * than the overlap gains.
 */
struct worker {
    pthread_t thread;
    sem_t go, done;
    void (*fn)(void *);
    void *arg;
    bool stop;
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    for (;;) {
        while (sem_wait(&w->go) != 0)
            ;
        if (w->stop)
            return NULL;
        w->fn(w->arg);
        sem_post(&w->done);
    }
}

static void worker_parallel(void *ctx, void (*fn)(void *), void *a, void *b)
{
    struct worker *w = ctx;
    w->fn = fn;
    w->arg = b;
    sem_post(&w->go);
    fn(a);
    while (sem_wait(&w->done) != 0)
        ;
}

static int worker_start(struct worker *w)
{
    memset(w, 0, sizeof(*w));
    if (sem_init(&w->go, 0, 0) != 0 || sem_init(&w->done, 0, 0) != 0)
        return -errno;
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    return -rc;
}

static void worker_stop(struct worker *w)
{
    w->stop = true;
    sem_post(&w->go);
    pthread_join(w->thread, NULL);
    sem_destroy(&w->go);
    sem_destroy(&w->done);
}

static int run_shop(const struct shop_config *cfg, double seconds, struct samples *lat,
                    struct phase *ph)
{
    struct worker w;
    int werr = worker_start(&w);
    if (werr) {
        fprintf(stderr, "bench_checkout: cannot start the commit worker: %s\n", strerror(-werr));
        return werr;
    }
    struct platform_env env = {.ctx = &w, .now_us = host_now_us, .parallel = worker_parallel};
    int err = run_shop_with(cfg, &env, seconds, lat, ph);
    worker_stop(&w);
    return err;
}

static int run_shop_with(const struct shop_config *cfg, const struct platform_env *env,
                         double seconds, struct samples *lat, struct phase *ph)
{
    shop *s = NULL;
    char msg[SHOP_ERRMSG_MAX];
    int err = shop_open(cfg, env, &s, msg);
    if (err) {
        fprintf(stderr, "bench_checkout: %s: cannot open the shop: %s\n", ph->name, msg);
        return err;
    }
    struct catalog c;
    err = seed(s, &c);
    for (uint64_t i = 0; !err && i < BENCH_WARMUP_OPS; i++) {
        int64_t id = one_order(s, &c, i);
        err = id < 0 ? (int)id : 0;
    }
    double start = now_s(), t = start;
    while (!err && t - start < seconds) {
        int64_t id = one_order(s, &c, ph->ops);
        if (id < 0) {
            err = (int)id;
            break;
        }
        double t2 = now_s();
        samples_add(lat, (t2 - t) * 1e6);
        t = t2;
        ph->ops++;
    }
    ph->seconds = t - start;
    if (err)
        fprintf(stderr, "bench_checkout: %s: %s (%s)\n", ph->name, shop_errmsg(s),
                platform_strerror(err));
    if (!err && cfg->topology == SHOP_MIRROR) {
        char a[65], b[65];
        err = shop_digest(s, 0, a);
        if (!err)
            err = shop_digest(s, 1, b);
        if (!err && strcmp(a, b) != 0) {
            fprintf(stderr, "bench_checkout: %s: the copies differ after the run\n", ph->name);
            err = -EBADMSG;
        }
    }
    shop_close(s);
    if (err)
        return err;
    samples_summarise(lat, ph);
    ph->ran = true;
    return 0;
}

/* ---- report ----------------------------------------------------------------- */

static double rate(const struct phase *ph)
{
    return ph->ran && ph->seconds > 0 ? (double)ph->ops / ph->seconds : 0;
}

static void print_ratio(double num, double den)
{
    if (den > 0 && num > 0)
        printf("  %8.2f", num / den);
    else
        printf("  %8s", "-");
}

static void print_table(const struct phase *ph, size_t n, const struct phase *bare,
                        const struct phase *single)
{
    printf("\n%-16s %9s %8s %10s %9s %9s %10s %10s\n", "phase", "ops", "seconds", "ops/s", "p50 us",
           "p99 us", "vs single", "vs bare");
    for (size_t i = 0; i < n; i++) {
        printf("%-16s %9llu %8.2f %10.0f %9.0f %9.0f", ph[i].name, (unsigned long long)ph[i].ops,
               ph[i].seconds, rate(&ph[i]), ph[i].p50_us, ph[i].p99_us);
        print_ratio(rate(&ph[i]), rate(single));
        printf(" ");
        print_ratio(rate(&ph[i]), rate(bare));
        printf("\n");
    }
}

static void print_target(const char *what, double num, double den)
{
    if (!(num > 0) || !(den > 0)) {
        printf("target %s >= %.1f: not measured\n", what, BENCH_TARGET);
        return;
    }
    double r = num / den;
    printf("target %s >= %.1f: %.2f %s\n", what, BENCH_TARGET, r,
           r >= BENCH_TARGET ? "OK" : "MISS");
}

/* ---- main ------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct options opt;
    if (parse_options(argc, argv, &opt) != 0)
        return EXIT_USAGE;
    if (opt.vfs != NULL && sqlite3_vfs_find(opt.vfs) == NULL) {
        fprintf(stderr, "bench_checkout: no SQLite VFS named %s in this process\n", opt.vfs);
        return EXIT_SETUP;
    }
    char made[64] = "";
    const char *dir = opt.dir;
    if (dir == NULL) {
        snprintf(made, sizeof(made), "bench-XXXXXX");
        if (mkdtemp(made) == NULL) {
            fprintf(stderr, "bench_checkout: cannot make a directory here: %s\n", strerror(errno));
            return EXIT_SETUP;
        }
        dir = made;
    }
    struct statfs fs;
    if (statfs(dir, &fs) != 0) {
        fprintf(stderr, "bench_checkout: %s: %s\n", dir, strerror(errno));
        if (made[0] != '\0')
            rmdir(made);
        return EXIT_SETUP;
    }
    struct samples lat = {.us = malloc(BENCH_SAMPLES_MAX * sizeof(double))};
    if (lat.us == NULL) {
        fprintf(stderr, "bench_checkout: out of memory\n");
        return EXIT_SETUP;
    }

    printf("bench_checkout: %s on %s (0x%lx)%s, %.1f s per phase, SQLite %s, vfs %s\n", dir,
           fs_type_name((long)fs.f_type), (unsigned long)fs.f_type,
           is_memory_fs((long)fs.f_type) ? " -- MEMORY, NOT A DISK: figures meaningless" : "",
           opt.seconds, sqlite3_libversion(), opt.vfs != NULL ? opt.vfs : "default");
    printf("one op = shop_order_create of 1 line (qty 1) = one write transaction; WAL, "
           "synchronous=FULL; %d products x %d users\n",
           BENCH_PRODUCTS, BENCH_USERS);

    char single_db[BENCH_PATH_MAX], primary_db[BENCH_PATH_MAX], mirror_db[BENCH_PATH_MAX];
    path_in(single_db, dir, "single.sqlite");
    path_in(primary_db, dir, "db.sqlite");
    path_in(mirror_db, dir, "db_mirror.sqlite");
    struct shop_config single = {
        .topology = SHOP_SINGLE,
        .primary = {.node = "primary", .path = single_db, .vfs = opt.vfs},
        .sync_full = true,
    };
    struct shop_config strict = single;
    strict.topology = SHOP_MIRROR;
    strict.primary.path = primary_db;
    strict.mirror = (struct shop_copy){.node = "mirror", .path = mirror_db, .vfs = opt.vfs};
    strict.policy = MIRROR_STRICT;
    strict.ack = MIRROR_ACK_BOTH;
    struct shop_config degrade = strict;
    degrade.policy = MIRROR_DEGRADE;
    /* the combinations' mirrored node (mirror async|cluster): its outbox rows
     * travel in the mirrored change and are written on both copies */
    struct shop_config single_outbox = single, strict_outbox = strict;
    single_outbox.outbox = true;
    strict_outbox.outbox = true;

    enum { BARE, SINGLE, STRICT, DEGRADE, SINGLE_OUTBOX, STRICT_OUTBOX, PHASES };
    struct phase ph[PHASES] = {
        [BARE] = {.name = "bare fdatasync"},
        [SINGLE] = {.name = "single"},
        [STRICT] = {.name = "mirror strict"},
        [DEGRADE] = {.name = "mirror degrade"},
        [SINGLE_OUTBOX] = {.name = "single outbox"},
        [STRICT_OUTBOX] = {.name = "strict outbox"},
    };
    const struct shop_config *cfgs[PHASES] = {
        [SINGLE] = &single, [STRICT] = &strict, [DEGRADE] = &degrade,
        [SINGLE_OUTBOX] = &single_outbox, [STRICT_OUTBOX] = &strict_outbox};
    int err = run_bare(dir, opt.seconds, &lat, &ph[BARE]);
    for (int i = SINGLE; !err && i < PHASES; i++) {
        /* Each shop phase starts from fresh files. */
        remove_db(cfgs[i]->primary.path);
        if (cfgs[i]->topology == SHOP_MIRROR)
            remove_db(cfgs[i]->mirror.path);
        err = run_shop(cfgs[i], opt.seconds, &lat, &ph[i]);
        remove_db(cfgs[i]->primary.path);
        if (cfgs[i]->topology == SHOP_MIRROR)
            remove_db(cfgs[i]->mirror.path);
    }
    free(lat.us);
    if (made[0] != '\0')
        rmdir(made);

    print_table(ph, PHASES, &ph[BARE], &ph[SINGLE]);
    printf("\n");
    print_target("strict/unmirrored", rate(&ph[STRICT]), rate(&ph[SINGLE]));
    print_target("unmirrored/bare", rate(&ph[SINGLE]), rate(&ph[BARE]));
    printf("strict outbox / single outbox: %.2fx (the cost of the mirror on a node "
           "that also replicates)\n",
           rate(&ph[SINGLE_OUTBOX]) > 0 ? rate(&ph[STRICT_OUTBOX]) / rate(&ph[SINGLE_OUTBOX]) : 0);
    return err ? EXIT_SETUP : 0;
}
