/*
 * faults.h — libfaults: the fault-point catalog, the fault-injecting SQLite
 * VFS with its crash model, the seeded generator, and the libfiu glue.
 *
 * This library knows nothing of the shop: it reaches the platform only
 * through the SQLite VFS it registers (a database opened with the VFS named
 * by faults_vfs_name()). Fault names are a contract (DESIGN.md §3).
 *
 * Threading: the arming table and the VFS node table are each protected by
 * a mutex, so `faultdrill serve` may use them from several threads; the
 * simulator uses them from one. Neither lock is held while calling into
 * libfiu or into a host callback.
 */
#ifndef FAULTDRILL_FAULTS_H
#define FAULTDRILL_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Limits ----------------------------------------------------------- */

#define FAULTS_NAME_MAX         128          /* bytes in a fault point name, NUL included */
#define FAULTS_NODE_MAX         32           /* bytes in a node name, NUL included */
#define FAULTS_NODES_MAX        64           /* VFS nodes registered at once */
#define FAULTS_ARMED_MAX        256          /* fault points armed at once */
#define FAULTS_UNDO_BYTES_MAX   (256u << 20) /* unsynced bytes a node may hold */
#define FAULTS_DELAY_US_DEFAULT 10000        /* slow/delay points armed without a delay */

/* ---- The seeded generator -------------------------------------------- */

/*
 * xoshiro256** with a named stream: the same (seed, stream) always gives the
 * same sequence, and two streams of one seed are independent, so arming one
 * more fault never shifts the randomness of anything else.
 */
struct faults_rng {
    uint64_t s[4];
};

/* Seeds rng from (seed, stream); stream may be "" but not NULL. */
void faults_rng_seed(struct faults_rng *rng, uint64_t seed, const char *stream);
uint64_t faults_rng_next(struct faults_rng *rng);
/* Uniform in [0, 1). */
double faults_rng_unit(struct faults_rng *rng);
/* Uniform in [0, n); n > 0. */
uint64_t faults_rng_below(struct faults_rng *rng, uint64_t n);

/* ---- The catalog (data, not prose) ------------------------------------ */

enum faults_family {
    FAULTS_FAMILY_DISK,
    FAULTS_FAMILY_NET,
    FAULTS_FAMILY_CRASH,
    FAULTS_FAMILY_LIBC,
    FAULTS_FAMILY_STAKE, /* consulted by the host's stake predictors (faults_check) */
};

/*
 * One entry per fault point. Names are patterns where <node>, <from> and <to>
 * stand for one path component (a node name); everything else is literal.
 */
struct faults_point {
    const char *pattern; /* e.g. "disk/<node>/write" */
    enum faults_family family;
    const char *where;        /* the code location or call where it fires */
    int errno_default;        /* errno injected when none is given; 0: takes none */
    const char *description;  /* one sentence for `faultdrill faults` */
    int64_t delay_us_default; /* delay when none is given; 0: takes none (not slow/delay) */
};

/* The whole catalog, in a stable order; *count receives its length. */
const struct faults_point *faults_catalog(size_t *count);
/* Family name as printed: "disk", "net", "crash", "libc", "stake". */
const char *faults_family_name(enum faults_family family);
/*
 * The catalog entry a concrete name matches, or NULL. A name ending in '*'
 * is a prefix (libfiu's wildcard): it matches when some catalog pattern can
 * produce a name with that prefix, and the first such entry is returned.
 */
const struct faults_point *faults_lookup(const char *name);
/* Whether `node` can stand for <node>/<from>/<to>: 1..FAULTS_NODE_MAX-1 bytes
 * of [a-z0-9_-]. */
bool faults_is_node_name(const char *node);

/*
 * errno name <-> number for the ones drills may name ("EIO", "ENOSPC", ...).
 * Parsing takes a name from the table or a decimal number; EINTR and
 * EAGAIN/EWOULDBLOCK are refused (SQLite retries them forever), by name and
 * by number.
 */
int faults_errno_parse(const char *text); /* > 0, or -EINVAL when unknown */
const char *faults_errno_name(int err);   /* "EIO"; NULL when not in the table */

/* ---- Arming points (the fiu_enable_external glue) --------------------- */

/*
 * How an armed point decides; zero-initialise, then set what you need. Per
 * call: the first `after` calls pass; once `count` fired, every call passes;
 * otherwise it fires with probability p, drawn from the point's own stream.
 */
struct faults_arm_spec {
    double p;         /* probability per call in [0, 1]; 0 means 1 (always) */
    int err;          /* errno to inject (> 0); 0: the catalog default */
    uint64_t count;   /* fire at most this many times; 0: unlimited (`once` = 1) */
    uint64_t after;   /* let the first `after` calls pass (SQLite's Nth-call loop) */
    int64_t delay_us; /* for slow/delay points; 0: 10 ms */
};

/*
 * Starts a run: calls fiu_init, disarms everything still armed and sets the
 * run's seed (each armed point draws from stream (seed, name)). Idempotent.
 * faults_arm before the first faults_init fails with -EINVAL.
 */
int faults_init(uint64_t seed);
/*
 * Arms a point through fiu_enable_external. `name` must match the catalog
 * (-EINVAL otherwise, with a message in faults_errmsg()); re-arming a name
 * replaces its spec and resets its counters. -E2BIG past FAULTS_ARMED_MAX.
 */
int faults_arm(const char *name, const struct faults_arm_spec *spec);
/* Disarms exactly `name` as armed; -ENOENT when it was not armed through
 * faults_arm (a point enabled by fiu-ctrl is left to fiu-ctrl). */
int faults_disarm(const char *name);
/* Disarms every point armed through faults_arm (ends a run or a test). */
void faults_disarm_all(void);
/* Calls seen and times fired since the point was armed; -ENOENT if not armed. */
int faults_stats(const char *name, uint64_t *calls, uint64_t *fired);
/* The last error message of this library (thread-local). */
const char *faults_errmsg(void);

/*
 * Consults point `name` as code under test does (fiu_fail) and, when it
 * fires, returns the errno to inject (> 0; the armed err, or the failinfo of
 * an external `fiu-ctrl enable`, or the catalog default); 0 when it does not
 * fire. For slow/delay points the return is the delay in microseconds
 * (FAULTS_DELAY_US_DEFAULT when none was given). Points that take neither
 * (crash/, net/drop...) return the armed errno or EIO: only "fired" matters.
 */
int64_t faults_check(const char *name);

/*
 * A closed run: every point is armed through faults_arm in this process
 * (nobody calls fiu_enable or fiu-ctrl directly), so a point nobody armed is
 * answered "does not fire" without asking libfiu. The simulator's choice;
 * off by default (serve takes fiu-ctrl, tests may enable points directly).
 * Changes nothing that fires: only what it costs to learn that nothing does.
 */
void faults_set_closed(bool closed);
/* Moves on every arm, disarm and faults_set_closed: a caller that cached
 * faults_may_fire asks again when it changed. */
uint64_t faults_generation(void);
/* False only in a closed run when no armed point can match a name that
 * starts with prefix ("disk/primary/"): then faults_check of every such
 * name returns 0 and may be skipped. */
bool faults_may_fire(const char *prefix);

/* ---- The fault-injecting VFS and the crash model ---------------------- */

/* What the host provides to the VFS: how a `slow` disk spends time. */
struct faults_host {
    void *ctx;
    /* Called with the delay of a fired disk/<node>/slow point: the sim
     * advances virtual time, a real host sleeps. NULL: the delay is ignored. */
    void (*delay)(void *ctx, const char *node, int64_t delay_us);
    /* true: a successful xSync only ends the crash model's hold on the
     * writes, without the real fsync. The simulator's choice: there the model
     * alone decides what survives, and the host disk's durability is moot. */
    bool skip_real_sync;
    /* true: the host never cuts this node's power, so the VFS keeps no undo
     * record of unsynced writes (a read and a copy saved per write, and no
     * global lock held across the real write). Injected read, write, fsync,
     * full and slow faults and process crashes work as ever; a power cut
     * is refused (-ENOTSUP). A live server's choice: kill -9 and a real
     * power loss are its crash model, not the simulated one. */
    bool no_power_cut;
    /* true: the node's files live in this process's memory, not on the
     * host's disk: no system call for them, the same crash model, and the
     * same SQLite-visible behaviour as the default VFS inside one process.
     * They last until faults_vfs_unregister_all (a restart finds them as a
     * crash left them). Fixed at the node's first registration. The node's
     * files, connections, crashes and restarts must be used from one thread
     * at a time (the store takes no lock). The simulator's choice; a live
     * server keeps real files. */
    bool memory;
};

enum faults_crash_kind {
    FAULTS_CRASH_POWER,   /* unsynced writes dropped, kept or torn (seeded) */
    FAULTS_CRASH_PROCESS, /* unsynced writes kept: the OS page cache survives */
};

/* What a crash did to a node's unsynced writes. A truncate counts as a write
 * and is kept or dropped whole, never torn. */
struct faults_crash_stats {
    uint64_t writes_kept;
    uint64_t writes_dropped;
    uint64_t writes_torn;
    uint64_t bytes_unsynced;
};

/*
 * Registers (or re-registers) the VFS of `node`, wrapping the default VFS
 * (or, when host->memory, the node's in-memory file store).
 * Every file a connection opens with it consults disk/<node>/read, write,
 * fsync, full and slow, and is part of the node's crash model: read in
 * xRead and also when a WAL read transaction starts (its shared WAL-index
 * lock), so that a failing disk is seen even by a query the page cache
 * would serve; write and full in xWrite; fsync in xSync; slow in xRead,
 * xWrite and xSync. An injected ENOSPC, EDQUOT or EFBIG is SQLITE_FULL,
 * any other errno the call's SQLITE_IOERR_* code. host may be
 * NULL. The VFS name is faults_vfs_name(node). Re-registering a node keeps
 * its VFS object (open connections stay valid) and replaces the host.
 * -EINVAL for a bad node name or a re-registration that changes `memory`,
 * -E2BIG past FAULTS_NODES_MAX, -ENOMEM.
 *
 * So that every byte goes through xRead/xWrite, the VFS disables memory
 * mapping (mmap_size is forced to 0, xFetch maps nothing) and ignores
 * chunk-size and size hints; it reports no atomic-write capabilities.
 * Temporary files without a name are faulted but not part of the crash
 * model; a file deleted through the VFS leaves the crash model (the delete
 * is taken as durable).
 */
int faults_vfs_register(const char *node, const struct faults_host *host);
/* "faultdrill-<node>", in a static per-node buffer valid until unregister;
 * NULL when the node is not registered. */
const char *faults_vfs_name(const char *node);
/*
 * The node dies. POWER: every write since the file's last successful sync is
 * dropped, kept or torn by a choice drawn from rng (process crash: all kept).
 * From then on the files opened before the crash take no reads, writes,
 * syncs, truncates or new locks (they fail with SQLITE_IOERR_*; unlocks and
 * closes pass through), so the host can close the dead connections without
 * touching the disk; opening and deleting files fail until
 * faults_vfs_restart(). The host must close every dead connection before it
 * opens the database again: while one stays open it holds the WAL-index
 * (-shm) and SQLite would trust that stale index instead of recovering from
 * the files. rng may be NULL only for a process crash; stats may be NULL.
 * Crashing a node that is already down does nothing (stats all zero).
 * A power cut rewrites the files with plain POSIX calls, which releases this
 * process's POSIX locks on them: another reason the dead connections go.
 * -ENOTSUP for a power cut of a node whose host set no_power_cut.
 */
int faults_vfs_crash(const char *node, enum faults_crash_kind kind, struct faults_rng *rng,
                     struct faults_crash_stats *stats);
/* A new incarnation of the node: files may be opened again (SQLite recovers).
 * Restarting a node that is up does nothing. -ENOENT when not registered. */
int faults_vfs_restart(const char *node);
/* Whether the node is up (registered and not crashed). */
bool faults_vfs_is_up(const char *node);
/* Bytes written (or cut by truncates) since their file's last sync and held
 * for the crash model; 0 when the node is not registered. */
uint64_t faults_vfs_unsynced_bytes(const char *node);
/* Bytes held by the node's files in its memory store (their sizes, WAL
 * included); 0 when the node keeps its files on disk or is not registered. */
uint64_t faults_vfs_memory_bytes(const char *node);
/* Unregisters every node's VFS; no connection may still use one. */
void faults_vfs_unregister_all(void);

#endif /* FAULTDRILL_FAULTS_H */
