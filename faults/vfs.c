/*
 * vfs.c — the fault-injecting SQLite VFS and its crash model: one shim VFS
 * per node ("faultdrill-<node>") over the default VFS. Every read, write and
 * sync consults the node's disk/ points; every write and truncate first
 * saves the bytes it replaces in the node's undo log, so a power cut can
 * later drop, keep or tear any write since its file's last sync.
 *
 * Depends on SQLite's VFS interface, on arm.c (faults_check) and on POSIX
 * file calls for applying a power cut; knows nothing of the platform, of
 * libfiu or of the simulator (time comes through faults_host).
 *
 * Crash model (our own take on SQLite's src/test6.c): write-through with an
 * undo log rather than a read overlay. The real files always hold every
 * write; the log holds, per unsynced write, the bytes and the size it
 * replaced. A successful sync of a path forgets that path's records; a power
 * cut walks the records newest first, draws each one's fate and restores
 * what the dropped ones replaced, except where a newer kept write has fixed
 * the bytes ("frozen" ranges). The result is the synced image with a subset
 * of the later writes applied in order, some of them torn.
 *
 * Where the files live is the host's choice: on the host's disk through the
 * default VFS (serve, the real-crash test), or in this process's memory
 * through memfs.c (the simulator: no system call for a node's files). The
 * crash model is the same code on both; only applying a power cut differs
 * (POSIX calls on the paths, or memfs writes that bypass every handle).
 *
 * A crash also ends an incarnation: handles opened before it refuse every
 * call that could touch the disk or start a transaction (reads, writes,
 * syncs, truncates, new file and WAL-index locks) and pass the ones that
 * only let go (unlocks, unmap without delete, close), so the host can close
 * its dead connections without them checkpointing or deleting anything.
 *
 * Locking: `vfs_lock` guards the node table and every undo log. It is held
 * across the real write or truncate that a record describes (so records and
 * writes happen in one order) and across applying a power cut, but never
 * while calling faults_check or a host callback, nor across a real sync.
 */
#include "faults/faults.h"
#include "faults/internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#define VFS_NAME_PREFIX "faultdrill-"
#define VFS_NAME_MAX    (sizeof VFS_NAME_PREFIX + FAULTS_NODE_MAX)
/* Undo records a node may hold; FAULTS_UNDO_BYTES_MAX bounds their bytes. */
#define VFS_UNDO_RECORDS_MAX (1u << 20)
/* A torn write keeps a whole number of these from its start (a sector). */
#define VFS_TEAR_SECTOR_BYTES 512
/* Zeros written per call when a power cut punches a hole. */
#define VFS_ZERO_CHUNK_BYTES 65536
/* Short writes or EINTRs tolerated in a row while applying a power cut. */
#define VFS_PWRITE_RETRIES_MAX 64

/* Freed records kept for reuse: a write makes a record and the next sync
 * drops it, thousands of times a simulated second. */
#define VFS_UNDO_POOL_MAX 64

/* One write or truncate since its file's last sync. */
struct undo_record {
    uint64_t seq;        /* global order on the node */
    const char *path;    /* the file, as SQLite named it: the node's own copy
                          * (struct vfs_path), or the record's when owns_path */
    bool owns_path;
    size_t old_cap;      /* bytes of old[] allocated */
    bool is_truncate;    /* else a write */
    int64_t lo, hi;      /* the byte range the operation set */
    int64_t old_size;    /* file size before it */
    int64_t new_size;    /* truncates: the size it set */
    unsigned char old[]; /* what [lo, min(hi, old_size)) held before */
};

struct undo_log {
    struct undo_record **records; /* oldest first */
    size_t count;
    size_t cap;
    uint64_t next_seq;
    uint64_t bytes; /* sum of (hi - lo): the unsynced bytes */
    struct undo_record *pool[VFS_UNDO_POOL_MAX]; /* freed records for reuse */
    size_t pool_count;
};

/* What the node knows of one of its files: its size, kept as it writes,
 * so an undo record costs no fstat. Entries never move once made. */
struct vfs_path {
    char *path;
    int64_t size;
    bool size_known;
};

#define VFS_PATHS_MAX 16 /* files of one node whose size is cached */

struct vfs_node {
    bool in_use;
    /* incarnation << 1 | up: the incarnation moves on at every crash and
     * restart. Written under vfs_lock, read without it (a file's liveness
     * is one load). */
    atomic_uint_fast64_t life;
    char name[FAULTS_NODE_MAX];
    char vfs_name[VFS_NAME_MAX];
    char point_read[FAULTS_NAME_MAX];
    char point_write[FAULTS_NAME_MAX];
    char point_fsync[FAULTS_NAME_MAX];
    char point_full[FAULTS_NAME_MAX];
    char point_slow[FAULTS_NAME_MAX];
    char point_prefix[FAULTS_NAME_MAX]; /* "disk/<node>/" */
    /* faults_may_fire(point_prefix) as of a faults_generation(), packed as
     * generation << 1 | may so one atomic load reads a consistent pair. */
    atomic_uint_fast64_t may_fault;
    struct faults_host host;
    sqlite3_vfs vfs; /* registered with SQLite: its address must not move */
    sqlite3_vfs *real;
    struct memfs *mem; /* the node's files when its host keeps them in memory */
    struct undo_log log;
    size_t path_count;
    struct vfs_path paths[VFS_PATHS_MAX];
};

/* Our file: SQLite allocates szOsFile bytes, the real file follows ours. */
struct vfs_file {
    sqlite3_file base; /* first: SQLite sees only this */
    struct vfs_node *node;
    uint64_t life;        /* the node's when opened (up); another means dead */
    char *path;           /* NULL: not part of the crash model */
    struct vfs_path *known; /* the node's entry for path, NULL if none */
    sqlite3_file *real;
};

/* The real file starts right after ours: keep it 8-byte aligned. */
_Static_assert(sizeof(struct vfs_file) % 8 == 0,
               "the real sqlite3_file after struct vfs_file must stay 8-byte aligned");

enum vfs_op { VFS_OP_READ, VFS_OP_WRITE, VFS_OP_SYNC };

static pthread_mutex_t vfs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vfs_node nodes[FAULTS_NODES_MAX]; /* under vfs_lock */

/* ---- File sizes (vfs_lock held) ---------------------------------------- */

/* The node's entry for path, made on first use; NULL when the table is full. */
static struct vfs_path *node_path(struct vfs_node *node, const char *path)
{
    for (size_t i = 0; i < node->path_count; i++) {
        if (strcmp(node->paths[i].path, path) == 0) {
            return &node->paths[i];
        }
    }
    if (node->path_count == VFS_PATHS_MAX) {
        return NULL; /* correct without it, only slower */
    }
    char *copy = strdup(path);
    if (copy == NULL) {
        return NULL;
    }
    node->paths[node->path_count] = (struct vfs_path){.path = copy};
    return &node->paths[node->path_count++];
}

/* The file's size before an operation: cached, or asked once. */
static int file_size_before(struct vfs_file *f, sqlite3_int64 *size)
{
    if (f->known != NULL && f->known->size_known) {
        *size = f->known->size;
        return SQLITE_OK;
    }
    int rc = f->real->pMethods->xFileSize(f->real, size);
    if (rc == SQLITE_OK && f->known != NULL) {
        f->known->size = *size;
        f->known->size_known = true;
    }
    return rc;
}

/* After the real write or truncate: the new size, or, if it failed (perhaps
 * half done), nothing known until the disk is asked again. */
static void file_size_after(struct vfs_file *f, int rc, int64_t size, bool is_truncate)
{
    if (f->known == NULL || !f->known->size_known) {
        return;
    }
    if (rc != SQLITE_OK) {
        f->known->size_known = false;
    } else if (is_truncate || size > f->known->size) {
        f->known->size = size;
    }
}

/* Crashes rewrite files behind SQLite's back: ask the disk again. */
static void node_forget_sizes(struct vfs_node *node)
{
    for (size_t i = 0; i < node->path_count; i++) {
        node->paths[i].size_known = false;
    }
}

/* ---- The undo log (vfs_lock held) ------------------------------------- */

/* Back to the pool, or to malloc when the pool is full. */
static void undo_record_free(struct undo_log *log, struct undo_record *rec)
{
    if (rec->owns_path) {
        free((char *)rec->path);
    }
    rec->path = NULL;
    rec->owns_path = false;
    if (log->pool_count < VFS_UNDO_POOL_MAX) {
        log->pool[log->pool_count++] = rec;
    } else {
        free(rec);
    }
}

/* A record with room for old_len old bytes: a pooled one that fits without
 * wasting more than it holds, else a new one. NULL when out of memory. */
static struct undo_record *undo_record_take(struct undo_log *log, size_t old_len)
{
    for (size_t i = log->pool_count; i-- > 0;) {
        struct undo_record *rec = log->pool[i];
        if (rec->old_cap >= old_len && rec->old_cap <= 2 * old_len + 64) {
            log->pool[i] = log->pool[--log->pool_count];
            return rec;
        }
    }
    struct undo_record *rec = malloc(sizeof *rec + old_len);
    if (rec != NULL) {
        rec->old_cap = old_len;
    }
    return rec;
}

static void undo_log_remove_if(struct undo_log *log, const char *path, uint64_t before_seq)
{
    size_t kept = 0;
    for (size_t i = 0; i < log->count; i++) {
        struct undo_record *rec = log->records[i];
        if (strcmp(rec->path, path) == 0 && rec->seq < before_seq) {
            log->bytes -= (uint64_t)(rec->hi - rec->lo);
            undo_record_free(log, rec);
        } else {
            log->records[kept++] = rec;
        }
    }
    log->count = kept;
}

static void undo_log_clear(struct undo_log *log)
{
    for (size_t i = 0; i < log->count; i++) {
        undo_record_free(log, log->records[i]);
    }
    log->count = 0;
    log->bytes = 0;
}

static void undo_log_release(struct undo_log *log)
{
    undo_log_clear(log);
    for (size_t i = 0; i < log->pool_count; i++) {
        free(log->pool[i]);
    }
    free(log->records);
    *log = (struct undo_log){0};
}

/* Room for one more record; false when a limit or memory says no. */
static bool undo_log_has_room(struct undo_log *log, int64_t bytes)
{
    if (log->count >= VFS_UNDO_RECORDS_MAX ||
        log->bytes + (uint64_t)bytes > (uint64_t)FAULTS_UNDO_BYTES_MAX) {
        return false;
    }
    if (log->count == log->cap) {
        size_t cap = log->cap == 0 ? 64 : log->cap * 2;
        struct undo_record **grown = realloc(log->records, cap * sizeof *grown);
        if (grown == NULL) {
            return false;
        }
        log->records = grown;
        log->cap = cap;
    }
    return true;
}

/*
 * Saves what the operation setting [lo, hi) of f's file is about to replace.
 * SQLite's code for the caller to return, SQLITE_IOERR_NOMEM past a limit.
 */
static int undo_log_record(struct vfs_file *f, bool is_truncate, int64_t lo, int64_t hi,
                           int64_t new_size)
{
    struct undo_log *log = &f->node->log;
    int io_error = is_truncate ? SQLITE_IOERR_TRUNCATE : SQLITE_IOERR_WRITE;
    sqlite3_int64 old_size = 0;
    if (file_size_before(f, &old_size) != SQLITE_OK) {
        return io_error;
    }
    if (!undo_log_has_room(log, hi - lo)) {
        return SQLITE_IOERR_NOMEM;
    }
    int64_t old_end = hi < old_size ? hi : old_size;
    size_t old_len = old_end > lo ? (size_t)(old_end - lo) : 0;
    /* The node's own copy of the path lives as long as the log's records
     * (both go at unregister); a file past VFS_PATHS_MAX brings its own. */
    bool owns_path = f->known == NULL;
    const char *path = owns_path ? strdup(f->path) : f->known->path;
    struct undo_record *rec = path != NULL ? undo_record_take(log, old_len) : NULL;
    if (rec == NULL) {
        if (owns_path) {
            free((char *)path);
        }
        return SQLITE_IOERR_NOMEM;
    }
    size_t old_cap = rec->old_cap;
    *rec = (struct undo_record){.seq = log->next_seq++,
                                .path = path,
                                .owns_path = owns_path,
                                .old_cap = old_cap,
                                .is_truncate = is_truncate,
                                .lo = lo,
                                .hi = hi,
                                .old_size = old_size,
                                .new_size = new_size};
    if (old_len > 0) {
        int rc = f->real->pMethods->xRead(f->real, rec->old, (int)old_len, lo);
        if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
            undo_record_free(log, rec);
            return io_error;
        }
    }
    log->records[log->count++] = rec;
    log->bytes += (uint64_t)(hi - lo);
    return SQLITE_OK;
}

/* ---- Byte-range sets (for applying a power cut) ------------------------ */

struct range {
    int64_t lo, hi; /* [lo, hi), lo < hi */
};

/* Sorted, disjoint, non-adjacent ranges. */
struct range_set {
    struct range *v;
    size_t count;
    size_t cap;
};

/* Index of the first range that ends after `at` (count if none). */
static size_t range_set_first_after(const struct range_set *set, int64_t at)
{
    size_t lo = 0;
    size_t hi = set->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->v[mid].hi <= at) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Replaces v[first, end) with `pieces` ranges; -ENOMEM leaves it unchanged. */
static int range_set_splice(struct range_set *set, size_t first, size_t end,
                            const struct range *pieces, size_t piece_count)
{
    size_t count = set->count - (end - first) + piece_count;
    if (count > set->cap) {
        size_t cap = set->cap == 0 ? 16 : set->cap * 2;
        struct range *grown = realloc(set->v, cap * sizeof *grown);
        if (grown == NULL) {
            return -ENOMEM;
        }
        set->v = grown;
        set->cap = cap;
    }
    memmove(set->v + first + piece_count, set->v + end, (set->count - end) * sizeof *set->v);
    memcpy(set->v + first, pieces, piece_count * sizeof *pieces);
    set->count = count;
    return 0;
}

static int range_set_add(struct range_set *set, int64_t lo, int64_t hi)
{
    if (lo >= hi) {
        return 0;
    }
    /* Merge with every range that overlaps or touches [lo, hi). */
    size_t first = range_set_first_after(set, lo - 1);
    size_t end = first;
    struct range merged = {lo, hi};
    while (end < set->count && set->v[end].lo <= hi) {
        merged.lo = set->v[end].lo < merged.lo ? set->v[end].lo : merged.lo;
        merged.hi = set->v[end].hi > merged.hi ? set->v[end].hi : merged.hi;
        end++;
    }
    return range_set_splice(set, first, end, &merged, 1);
}

static int range_set_remove(struct range_set *set, int64_t lo, int64_t hi)
{
    if (lo >= hi) {
        return 0;
    }
    size_t first = range_set_first_after(set, lo);
    size_t end = first;
    while (end < set->count && set->v[end].lo < hi) {
        end++;
    }
    if (first == end) {
        return 0;
    }
    struct range pieces[2];
    size_t piece_count = 0;
    if (set->v[first].lo < lo) {
        pieces[piece_count++] = (struct range){set->v[first].lo, lo};
    }
    if (set->v[end - 1].hi > hi) {
        pieces[piece_count++] = (struct range){hi, set->v[end - 1].hi};
    }
    return range_set_splice(set, first, end, pieces, piece_count);
}

static void range_set_release(struct range_set *set)
{
    free(set->v);
    *set = (struct range_set){0};
}

/* ---- Applying a power cut (vfs_lock held) ------------------------------ */

enum crash_fate { CRASH_KEEP, CRASH_DROP, CRASH_TEAR };

/* One file the power cut rewrites. */
struct crash_file {
    const char *path;
    int fd;                  /* on disk */
    struct memfs_file *mem;  /* in memory */
    bool size_known;
    int64_t size;            /* the size it ends with */
    struct range_set frozen; /* bytes a kept write fixed: never restored */
    struct range_set gone;   /* bytes that do not exist in the image */
};

struct crash_plan {
    struct faults_rng *rng;
    struct memfs *mem; /* the node's store, NULL when its files are on disk */
    struct crash_file *files;
    size_t file_count;
    size_t *file_of;        /* record index -> files index */
    enum crash_fate *fates; /* record index -> its fate */
    int64_t *kept_lens;     /* record index -> bytes a tear kept */
    int error;              /* first failure, as -errno */
};

static void crash_fail(struct crash_plan *plan, int err)
{
    if (plan->error == 0) {
        plan->error = -err;
    }
}

static void crash_pwrite(struct crash_plan *plan, struct crash_file *file, const void *buf,
                         int64_t len, int64_t offset)
{
    if (file->mem != NULL) {
        if (memfs_file_write(file->mem, buf, len, offset) < 0) {
            crash_fail(plan, ENOMEM);
        }
        return;
    }
    int fd = file->fd;
    if (fd < 0) {
        return;
    }
    const unsigned char *bytes = buf;
    int retries = 0;
    while (len > 0 && retries < VFS_PWRITE_RETRIES_MAX) {
        ssize_t done = pwrite(fd, bytes, (size_t)len, (off_t)offset);
        if (done < 0 && errno != EINTR) {
            crash_fail(plan, errno);
            return;
        }
        if (done <= 0) {
            retries++;
            continue;
        }
        bytes += done;
        len -= done;
        offset += done;
    }
    if (len > 0) {
        crash_fail(plan, EIO);
    }
}

/* Puts [x, y) back as `rec` found it: old bytes, or gone past its old size. */
static void crash_restore(struct crash_plan *plan, struct crash_file *file,
                          const struct undo_record *rec, int64_t x, int64_t y)
{
    int64_t data_end = y < rec->old_size ? y : rec->old_size;
    if (x < data_end) {
        crash_pwrite(plan, file, rec->old + (x - rec->lo), data_end - x, x);
        if (range_set_remove(&file->gone, x, data_end) < 0) {
            crash_fail(plan, ENOMEM);
        }
    }
    int64_t gone_start = x > rec->old_size ? x : rec->old_size;
    if (gone_start < y && range_set_add(&file->gone, gone_start, y) < 0) {
        crash_fail(plan, ENOMEM);
    }
}

/* Undoes `rec` over [a, b), except the bytes newer kept writes froze. */
static void crash_revert(struct crash_plan *plan, struct crash_file *file,
                         const struct undo_record *rec, int64_t a, int64_t b)
{
    const struct range_set *frozen = &file->frozen;
    size_t i = range_set_first_after(frozen, a);
    int64_t at = a;
    /* Each pass consumes a frozen range or a gap before one: bounded. */
    while (at < b) {
        if (i < frozen->count && frozen->v[i].lo <= at) {
            at = frozen->v[i].hi;
            i++;
            continue;
        }
        int64_t gap_end = i < frozen->count && frozen->v[i].lo < b ? frozen->v[i].lo : b;
        crash_restore(plan, file, rec, at, gap_end);
        at = gap_end;
    }
}

/* Draws the fate of one record; a tear also draws how much of it stays. */
static enum crash_fate crash_draw(struct faults_rng *rng, const struct undo_record *rec,
                                  int64_t *kept_len)
{
    *kept_len = 0;
    if (rec->is_truncate) {
        /* A truncate changes metadata only: it happens whole or not at all. */
        return faults_rng_below(rng, 2) == 0 ? CRASH_KEEP : CRASH_DROP;
    }
    uint64_t pick = faults_rng_below(rng, 3);
    if (pick < 2) {
        return pick == 0 ? CRASH_KEEP : CRASH_DROP;
    }
    uint64_t len = (uint64_t)(rec->hi - rec->lo);
    if (len > VFS_TEAR_SECTOR_BYTES) {
        uint64_t sectors = (len - 1) / VFS_TEAR_SECTOR_BYTES + 1; /* multiples < len */
        *kept_len = (int64_t)(faults_rng_below(rng, sectors) * VFS_TEAR_SECTOR_BYTES);
    } else {
        *kept_len = (int64_t)faults_rng_below(rng, len);
    }
    return CRASH_TEAR;
}

/* The plan's file for `path`, opening it on first sight. */
static size_t crash_file_index(struct crash_plan *plan, const char *path)
{
    for (size_t i = 0; i < plan->file_count; i++) {
        if (strcmp(plan->files[i].path, path) == 0) {
            return i;
        }
    }
    struct crash_file *file = &plan->files[plan->file_count];
    *file = (struct crash_file){.path = path, .fd = -1};
    /* Plain POSIX or the store itself, not the dead SQLite handles: the
     * files must change even when no connection has them open any more. */
    if (plan->mem != NULL) {
        file->mem = memfs_file_at(plan->mem, path);
        if (file->mem == NULL) {
            crash_fail(plan, ENOMEM);
        }
    } else {
        file->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (file->fd < 0) {
            crash_fail(plan, errno);
        }
    }
    return plan->file_count++;
}

static int crash_plan_init(struct crash_plan *plan, const struct undo_log *log,
                           struct faults_rng *rng, struct memfs *mem)
{
    size_t n = log->count;
    *plan = (struct crash_plan){.rng = rng, .mem = mem};
    plan->files = calloc(n, sizeof *plan->files);
    plan->file_of = calloc(n, sizeof *plan->file_of);
    plan->fates = calloc(n, sizeof *plan->fates);
    plan->kept_lens = calloc(n, sizeof *plan->kept_lens);
    if (plan->files == NULL || plan->file_of == NULL || plan->fates == NULL ||
        plan->kept_lens == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        plan->file_of[i] = crash_file_index(plan, log->records[i]->path);
    }
    return 0;
}

static void crash_plan_release(struct crash_plan *plan)
{
    for (size_t i = 0; i < plan->file_count; i++) {
        range_set_release(&plan->files[i].frozen);
        range_set_release(&plan->files[i].gone);
        if (plan->files[i].fd >= 0) {
            close(plan->files[i].fd);
        }
    }
    free(plan->files);
    free(plan->file_of);
    free(plan->fates);
    free(plan->kept_lens);
}

/* Newest first: draw each record's fate and undo what it does not keep. */
static void crash_walk(struct crash_plan *plan, const struct undo_log *log,
                       struct faults_crash_stats *stats)
{
    for (size_t k = log->count; k-- > 0;) {
        const struct undo_record *rec = log->records[k];
        struct crash_file *file = &plan->files[plan->file_of[k]];
        int64_t kept_len = 0;
        enum crash_fate fate = crash_draw(plan->rng, rec, &kept_len);
        plan->fates[k] = fate;
        plan->kept_lens[k] = kept_len;
        int64_t kept_end = fate == CRASH_KEEP ? rec->hi : rec->lo + kept_len;
        crash_revert(plan, file, rec, kept_end, rec->hi);
        if (range_set_add(&file->frozen, rec->lo, kept_end) < 0) {
            crash_fail(plan, ENOMEM);
        }
        stats->writes_kept += fate == CRASH_KEEP;
        stats->writes_dropped += fate == CRASH_DROP;
        stats->writes_torn += fate == CRASH_TEAR;
    }
}

/* Oldest first: the size each file ends with, replaying only what stayed. */
static void crash_sizes(struct crash_plan *plan, const struct undo_log *log)
{
    for (size_t k = 0; k < log->count; k++) {
        const struct undo_record *rec = log->records[k];
        struct crash_file *file = &plan->files[plan->file_of[k]];
        if (!file->size_known) {
            file->size = rec->old_size; /* the size at the file's last sync */
            file->size_known = true;
        }
        switch (plan->fates[k]) {
        case CRASH_KEEP:
            if (rec->is_truncate) {
                file->size = rec->new_size;
            } else if (rec->hi > file->size) {
                file->size = rec->hi;
            }
            break;
        case CRASH_TEAR:
            if (plan->kept_lens[k] > 0 && rec->lo + plan->kept_lens[k] > file->size) {
                file->size = rec->lo + plan->kept_lens[k];
            }
            break;
        case CRASH_DROP:
            break;
        }
    }
}

/* Zeroes the gone bytes that end up inside the file, cuts it, syncs it. */
static void crash_finish_file(struct crash_plan *plan, struct crash_file *file)
{
    static const unsigned char zeros[VFS_ZERO_CHUNK_BYTES];
    if (file->fd < 0 && file->mem == NULL) {
        return;
    }
    for (size_t i = 0; i < file->gone.count; i++) {
        int64_t lo = file->gone.v[i].lo;
        int64_t hi = file->gone.v[i].hi < file->size ? file->gone.v[i].hi : file->size;
        for (int64_t at = lo; at < hi; at += VFS_ZERO_CHUNK_BYTES) {
            int64_t len = hi - at < VFS_ZERO_CHUNK_BYTES ? hi - at : VFS_ZERO_CHUNK_BYTES;
            crash_pwrite(plan, file, zeros, len, at);
        }
    }
    if (file->mem != NULL) {
        memfs_file_truncate(file->mem, file->size);
        return;
    }
    if (ftruncate(file->fd, (off_t)file->size) != 0) {
        crash_fail(plan, errno);
    }
    if (fsync(file->fd) != 0) {
        crash_fail(plan, errno);
    }
}

/* Rewrites the node's files as a power cut leaves them; vfs_lock held. */
static int crash_power(struct vfs_node *node, struct faults_rng *rng,
                       struct faults_crash_stats *stats)
{
    struct crash_plan plan;
    int rc = crash_plan_init(&plan, &node->log, rng, node->mem);
    if (rc < 0) {
        goto out_release;
    }
    crash_walk(&plan, &node->log, stats);
    crash_sizes(&plan, &node->log);
    for (size_t i = 0; i < plan.file_count; i++) {
        crash_finish_file(&plan, &plan.files[i]);
    }
    rc = plan.error;
out_release:
    crash_plan_release(&plan);
    return rc;
}

/* ---- Nodes (vfs_lock held unless said) -------------------------------- */

static struct vfs_node *vfs_node_find(const char *name)
{
    for (size_t i = 0; i < FAULTS_NODES_MAX; i++) {
        if (nodes[i].in_use && strcmp(nodes[i].name, name) == 0) {
            return &nodes[i];
        }
    }
    return NULL;
}

static bool vfs_node_is_up(const struct vfs_node *node)
{
    return (atomic_load(&node->life) & 1) != 0;
}

/* The node crashed (and maybe restarted) since f was opened. No lock: a
 * crash that lands right after the check is the same as one right after
 * the call, and calls that write re-check under vfs_lock. */
static bool vfs_file_is_dead(const struct vfs_file *f)
{
    return atomic_load(&f->node->life) != f->life;
}

static bool vfs_file_is_dead_locked(const struct vfs_file *f)
{
    return vfs_file_is_dead(f);
}

/* A crash (up = false) or a restart (up = true); vfs_lock held. */
static void vfs_node_set_up(struct vfs_node *node, bool up)
{
    uint64_t incarnation = (atomic_load(&node->life) >> 1) + 1;
    atomic_store(&node->life, incarnation << 1 | (uint64_t)up);
}

/* The SQLite code for an injected errno: a full disk whatever the call. */
static int vfs_error_code(int64_t err, int io_error)
{
    if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
        return SQLITE_FULL;
    }
    return io_error;
}

/*
 * Consults the node's points for one call: slow first (the host spends the
 * delay, then the call goes on), then the op's error points. SQLITE_OK, or
 * the code to fail the call with. Takes no lock around faults_check or the
 * host, so the host may call back into this library.
 */
/* Whether some armed point may match this node's disk points: when not,
 * every faults_check of them would return 0 (a closed run). */
static bool vfs_node_may_fault(struct vfs_node *node)
{
    uint64_t gen = faults_generation();
    uint64_t cached = atomic_load_explicit(&node->may_fault, memory_order_acquire);
    if (cached >> 1 == gen) {
        return (cached & 1) != 0;
    }
    bool may = faults_may_fire(node->point_prefix);
    atomic_store_explicit(&node->may_fault, gen << 1 | (uint64_t)may, memory_order_release);
    return may;
}

static int vfs_inject(struct vfs_file *f, enum vfs_op op)
{
    struct vfs_node *node = f->node; /* names are fixed at registration */
    if (!vfs_node_may_fault(node)) {
        return SQLITE_OK;
    }
    int64_t delay_us = faults_check(node->point_slow);
    if (delay_us > 0) {
        pthread_mutex_lock(&vfs_lock);
        struct faults_host host = node->host;
        pthread_mutex_unlock(&vfs_lock);
        if (host.delay != NULL) {
            host.delay(host.ctx, node->name, delay_us);
        }
    }
    static const int io_errors[] = {
        [VFS_OP_READ] = SQLITE_IOERR_READ,
        [VFS_OP_WRITE] = SQLITE_IOERR_WRITE,
        [VFS_OP_SYNC] = SQLITE_IOERR_FSYNC,
    };
    const char *point = op == VFS_OP_READ    ? node->point_read
                        : op == VFS_OP_WRITE ? node->point_write
                                             : node->point_fsync;
    int64_t err = faults_check(point);
    if (err == 0 && op == VFS_OP_WRITE) {
        err = faults_check(node->point_full);
    }
    return err > 0 ? vfs_error_code(err, io_errors[op]) : SQLITE_OK;
}

/* ---- The file methods -------------------------------------------------- */

static int file_close(sqlite3_file *file)
{
    struct vfs_file *f = (struct vfs_file *)file;
    /* Dead or alive, the real handle closes: it releases locks and memory
     * and never writes (SQLite's unix VFS writes nothing on close). */
    int rc = f->real->pMethods->xClose(f->real);
    free(f->path);
    f->path = NULL;
    return rc;
}

static int file_read(sqlite3_file *file, void *buf, int amount, sqlite3_int64 offset)
{
    struct vfs_file *f = (struct vfs_file *)file;
    if (vfs_file_is_dead(f)) {
        return SQLITE_IOERR_READ;
    }
    int rc = vfs_inject(f, VFS_OP_READ);
    if (rc != SQLITE_OK) {
        return rc;
    }
    return f->real->pMethods->xRead(f->real, buf, amount, offset);
}

/*
 * True when the node's host cuts no power: no undo record is kept, so a
 * write needs no lock around it (the dead check before it suffices: such a
 * node only dies by a process crash, which keeps every write anyway). Read
 * without vfs_lock, as skip_real_sync is: the host is set at registration,
 * before any file of the node is open.
 */
static bool vfs_file_is_untracked(const struct vfs_file *f)
{
    return f->node->host.no_power_cut || f->path == NULL;
}

static int file_write(sqlite3_file *file, const void *buf, int amount, sqlite3_int64 offset)
{
    struct vfs_file *f = (struct vfs_file *)file;
    if (vfs_file_is_dead(f)) {
        return SQLITE_IOERR_WRITE;
    }
    int rc = vfs_inject(f, VFS_OP_WRITE);
    if (rc != SQLITE_OK) {
        return rc;
    }
    if (vfs_file_is_untracked(f)) {
        if (vfs_file_is_dead(f)) {
            return SQLITE_IOERR_WRITE; /* died while the host spent a delay */
        }
        return f->real->pMethods->xWrite(f->real, buf, amount, offset);
    }
    pthread_mutex_lock(&vfs_lock);
    if (vfs_file_is_dead_locked(f)) {
        rc = SQLITE_IOERR_WRITE; /* died while the host spent a delay */
    } else if (f->path != NULL && amount > 0) {
        rc = undo_log_record(f, false, offset, offset + amount, -1);
    }
    if (rc == SQLITE_OK) {
        rc = f->real->pMethods->xWrite(f->real, buf, amount, offset);
        file_size_after(f, rc, offset + amount, false);
    }
    pthread_mutex_unlock(&vfs_lock);
    return rc;
}

static int file_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct vfs_file *f = (struct vfs_file *)file;
    int rc = SQLITE_OK;
    if (vfs_file_is_untracked(f)) {
        if (vfs_file_is_dead(f)) {
            return SQLITE_IOERR_TRUNCATE;
        }
        return f->real->pMethods->xTruncate(f->real, size);
    }
    pthread_mutex_lock(&vfs_lock);
    if (vfs_file_is_dead_locked(f)) {
        rc = SQLITE_IOERR_TRUNCATE;
    } else if (f->path != NULL) {
        sqlite3_int64 old_size = 0;
        rc = file_size_before(f, &old_size);
        if (rc == SQLITE_OK && old_size != size) {
            int64_t lo = size < old_size ? size : old_size;
            int64_t hi = size < old_size ? old_size : size;
            rc = undo_log_record(f, true, lo, hi, size);
        }
    }
    if (rc == SQLITE_OK) {
        rc = f->real->pMethods->xTruncate(f->real, size);
        file_size_after(f, rc, size, true);
    }
    pthread_mutex_unlock(&vfs_lock);
    return rc;
}

static int file_sync(sqlite3_file *file, int flags)
{
    struct vfs_file *f = (struct vfs_file *)file;
    if (vfs_file_is_dead(f)) {
        return SQLITE_IOERR_FSYNC;
    }
    /* An injected fsync failure syncs nothing and forgets nothing. */
    int rc = vfs_inject(f, VFS_OP_SYNC);
    if (rc != SQLITE_OK) {
        return rc;
    }
    pthread_mutex_lock(&vfs_lock);
    bool dead = vfs_file_is_dead_locked(f);
    uint64_t synced_before = f->node->log.next_seq;
    pthread_mutex_unlock(&vfs_lock);
    if (dead) {
        return SQLITE_IOERR_FSYNC;
    }
    /* Not under vfs_lock: a sync may take long. Writes that race with it
     * get later sequence numbers and stay in the log. */
    rc = f->node->host.skip_real_sync ? SQLITE_OK : f->real->pMethods->xSync(f->real, flags);
    pthread_mutex_lock(&vfs_lock);
    if (vfs_file_is_dead_locked(f)) {
        rc = SQLITE_IOERR_FSYNC; /* the node died during the sync */
    } else if (rc == SQLITE_OK && !vfs_file_is_untracked(f)) {
        undo_log_remove_if(&f->node->log, f->path, synced_before);
    }
    pthread_mutex_unlock(&vfs_lock);
    return rc;
}

static int file_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct vfs_file *f = (struct vfs_file *)file;
    return f->real->pMethods->xFileSize(f->real, size);
}

static int file_lock(sqlite3_file *file, int level)
{
    struct vfs_file *f = (struct vfs_file *)file;
    /* SQLite calls xLock only to take a stronger lock. A dead connection
     * must not take one: with EXCLUSIVE, closing it would checkpoint and
     * delete the WAL of the next incarnation. */
    if (vfs_file_is_dead(f)) {
        return SQLITE_IOERR_LOCK;
    }
    return f->real->pMethods->xLock(f->real, level);
}

static int file_unlock(sqlite3_file *file, int level)
{
    struct vfs_file *f = (struct vfs_file *)file;
    return f->real->pMethods->xUnlock(f->real, level);
}

static int file_check_reserved_lock(sqlite3_file *file, int *reserved)
{
    struct vfs_file *f = (struct vfs_file *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, reserved);
}

static int file_file_control(sqlite3_file *file, int op, void *arg)
{
    struct vfs_file *f = (struct vfs_file *)file;
    switch (op) {
    case SQLITE_FCNTL_MMAP_SIZE:
        /* No memory mapping: every page must pass xRead/xWrite. */
        *(sqlite3_int64 *)arg = 0;
        return SQLITE_OK;
    case SQLITE_FCNTL_CHUNK_SIZE:
    case SQLITE_FCNTL_SIZE_HINT:
        /* Hints that would let the real VFS grow files behind the undo
         * log's back; ignoring them is always allowed. */
        return SQLITE_OK;
    default:
        return f->real->pMethods->xFileControl(f->real, op, arg);
    }
}

static int file_sector_size(sqlite3_file *file)
{
    struct vfs_file *f = (struct vfs_file *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int file_device_characteristics(sqlite3_file *file)
{
    struct vfs_file *f = (struct vfs_file *)file;
    /* A power cut may drop or tear any unsynced write, in any order: claim
     * no atomic or sequential writes. Power-safe overwrite holds (a tear
     * never touches bytes outside the write). */
    int caps = f->real->pMethods->xDeviceCharacteristics(f->real);
    return caps & (SQLITE_IOCAP_POWERSAFE_OVERWRITE | SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN);
}

static int file_shm_map(sqlite3_file *file, int page, int page_size, int extend,
                        void volatile **mapped)
{
    struct vfs_file *f = (struct vfs_file *)file;
    return f->real->pMethods->xShmMap(f->real, page, page_size, extend, mapped);
}

static int file_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    struct vfs_file *f = (struct vfs_file *)file;
    if ((flags & SQLITE_SHM_LOCK) != 0) {
        /* Unlocks always pass: closing must release everything. A dead
         * connection takes no new lock, so it cannot even serve reads from
         * its page cache. */
        if (vfs_file_is_dead(f)) {
            return SQLITE_IOERR_SHMLOCK;
        }
        /* In WAL mode a read transaction starts with a shared lock on a read
         * mark and then, as long as the WAL-index says nothing changed, reads
         * its pages from the cache without any xRead. Consulting the read
         * point here lets a failing disk be seen by every reader, as drills
         * expect, and not only on a cache miss. */
        if ((flags & SQLITE_SHM_SHARED) != 0 && vfs_node_may_fault(f->node)) {
            int64_t err = faults_check(f->node->point_read);
            if (err > 0) {
                return vfs_error_code(err, SQLITE_IOERR_READ);
            }
        }
    }
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void file_shm_barrier(sqlite3_file *file)
{
    struct vfs_file *f = (struct vfs_file *)file;
    f->real->pMethods->xShmBarrier(f->real);
}

static int file_shm_unmap(sqlite3_file *file, int delete_flag)
{
    struct vfs_file *f = (struct vfs_file *)file;
    /* A dead connection leaves the -shm for the next incarnation's. */
    if (vfs_file_is_dead(f)) {
        delete_flag = 0;
    }
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int file_fetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **page)
{
    (void)file;
    (void)offset;
    (void)amount;
    *page = NULL; /* never mapped: SQLite falls back to xRead */
    return SQLITE_OK;
}

static int file_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *page)
{
    (void)file;
    (void)offset;
    (void)page;
    return SQLITE_OK;
}

/* One table per io_methods version, so the shim offers what the real has. */
#define FILE_METHODS(version)                                                                      \
    {                                                                                              \
        .iVersion = (version), .xClose = file_close, .xRead = file_read, .xWrite = file_write,     \
        .xTruncate = file_truncate, .xSync = file_sync, .xFileSize = file_file_size,               \
        .xLock = file_lock, .xUnlock = file_unlock,                                                \
        .xCheckReservedLock = file_check_reserved_lock, .xFileControl = file_file_control,         \
        .xSectorSize = file_sector_size, .xDeviceCharacteristics = file_device_characteristics,    \
        .xShmMap = file_shm_map, .xShmLock = file_shm_lock, .xShmBarrier = file_shm_barrier,       \
        .xShmUnmap = file_shm_unmap, .xFetch = file_fetch, .xUnfetch = file_unfetch,               \
    }

static const sqlite3_io_methods file_methods[] = {FILE_METHODS(1), FILE_METHODS(2),
                                                  FILE_METHODS(3)};

#define FILE_METHODS_VERSION_MAX ((int)(sizeof file_methods / sizeof file_methods[0]))

/* ---- The VFS methods --------------------------------------------------- */

static sqlite3_vfs *vfs_real(sqlite3_vfs *vfs)
{
    return ((struct vfs_node *)vfs->pAppData)->real;
}

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                    int *out_flags)
{
    struct vfs_node *node = vfs->pAppData;
    struct vfs_file *f = (struct vfs_file *)file;
    *f = (struct vfs_file){.node = node, .real = (sqlite3_file *)(f + 1)};
    f->life = atomic_load(&node->life);
    if ((f->life & 1) == 0) {
        return SQLITE_CANTOPEN;
    }
    /* Only named, lasting files take part in the crash model; a -shm is
     * never opened here (it goes through xShmMap). */
    if (name != NULL && (flags & SQLITE_OPEN_DELETEONCLOSE) == 0) {
        f->path = strdup(name);
        if (f->path == NULL) {
            return SQLITE_NOMEM;
        }
        pthread_mutex_lock(&vfs_lock);
        f->known = node_path(node, name);
        if (f->known != NULL) {
            f->known->size_known = false; /* whatever happened while closed */
        }
        pthread_mutex_unlock(&vfs_lock);
    }
    int rc = node->real->xOpen(node->real, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods != NULL) {
            f->real->pMethods->xClose(f->real);
        }
        free(f->path);
        f->path = NULL;
        return rc;
    }
    int version = f->real->pMethods->iVersion;
    version = version < 1                          ? 1
              : version > FILE_METHODS_VERSION_MAX ? FILE_METHODS_VERSION_MAX
                                                   : version;
    f->base.pMethods = &file_methods[version - 1];
    return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *path, int sync_dir)
{
    struct vfs_node *node = vfs->pAppData;
    if (!vfs_node_is_up(node)) {
        return SQLITE_IOERR_DELETE;
    }
    int rc = node->real->xDelete(node->real, path, sync_dir);
    if (rc == SQLITE_OK || rc == SQLITE_IOERR_DELETE_NOENT) {
        /* The file is gone for good: a power cut has nothing to restore. */
        pthread_mutex_lock(&vfs_lock);
        undo_log_remove_if(&node->log, path, UINT64_MAX);
        struct vfs_path *known = node_path(node, path);
        if (known != NULL) {
            known->size_known = false;
        }
        pthread_mutex_unlock(&vfs_lock);
    }
    return rc;
}

static int vfs_access(sqlite3_vfs *vfs, const char *path, int flags, int *result)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xAccess(real, path, flags, result);
}

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *path, int out_len, char *out)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xFullPathname(real, path, out_len, out);
}

static void *vfs_dl_open(sqlite3_vfs *vfs, const char *path)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xDlOpen(real, path);
}

static void vfs_dl_error(sqlite3_vfs *vfs, int len, char *msg)
{
    sqlite3_vfs *real = vfs_real(vfs);
    real->xDlError(real, len, msg);
}

static void (*vfs_dl_sym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xDlSym(real, handle, symbol);
}

static void vfs_dl_close(sqlite3_vfs *vfs, void *handle)
{
    sqlite3_vfs *real = vfs_real(vfs);
    real->xDlClose(real, handle);
}

static int vfs_randomness(sqlite3_vfs *vfs, int len, char *out)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xRandomness(real, len, out);
}

static int vfs_sleep(sqlite3_vfs *vfs, int micros)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xSleep(real, micros);
}

static int vfs_current_time(sqlite3_vfs *vfs, double *now)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xCurrentTime(real, now);
}

static int vfs_get_last_error(sqlite3_vfs *vfs, int len, char *msg)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xGetLastError != NULL ? real->xGetLastError(real, len, msg) : 0;
}

static int vfs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *now)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xCurrentTimeInt64(real, now);
}

static int vfs_set_system_call(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr call)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xSetSystemCall(real, name, call);
}

static sqlite3_syscall_ptr vfs_get_system_call(sqlite3_vfs *vfs, const char *name)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xGetSystemCall(real, name);
}

static const char *vfs_next_system_call(sqlite3_vfs *vfs, const char *name)
{
    sqlite3_vfs *real = vfs_real(vfs);
    return real->xNextSystemCall(real, name);
}

/* ---- Public ------------------------------------------------------------ */

/* Fills a free slot for `name` over `real`; vfs_lock held. */
static void vfs_node_init(struct vfs_node *node, const char *name, sqlite3_vfs *real,
                          struct memfs *mem, const struct faults_host *host)
{
    *node = (struct vfs_node){.in_use = true, .real = real, .mem = mem};
    atomic_store(&node->life, 1); /* incarnation 0, up */
    snprintf(node->name, sizeof node->name, "%s", name);
    snprintf(node->vfs_name, sizeof node->vfs_name, VFS_NAME_PREFIX "%s", name);
    snprintf(node->point_read, sizeof node->point_read, "disk/%s/read", name);
    snprintf(node->point_write, sizeof node->point_write, "disk/%s/write", name);
    snprintf(node->point_fsync, sizeof node->point_fsync, "disk/%s/fsync", name);
    snprintf(node->point_full, sizeof node->point_full, "disk/%s/full", name);
    snprintf(node->point_slow, sizeof node->point_slow, "disk/%s/slow", name);
    snprintf(node->point_prefix, sizeof node->point_prefix, "disk/%s/", name);
    if (host != NULL) {
        node->host = *host;
    }
    int version = real->iVersion < 3 ? real->iVersion : 3;
    node->vfs = (sqlite3_vfs){
        .iVersion = version,
        .szOsFile = (int)sizeof(struct vfs_file) + real->szOsFile,
        .mxPathname = real->mxPathname,
        .zName = node->vfs_name,
        .pAppData = node,
        .xOpen = vfs_open,
        .xDelete = vfs_delete,
        .xAccess = vfs_access,
        .xFullPathname = vfs_full_pathname,
        .xDlOpen = vfs_dl_open,
        .xDlError = vfs_dl_error,
        .xDlSym = vfs_dl_sym,
        .xDlClose = vfs_dl_close,
        .xRandomness = vfs_randomness,
        .xSleep = vfs_sleep,
        .xCurrentTime = vfs_current_time,
        .xGetLastError = vfs_get_last_error,
        .xCurrentTimeInt64 = version >= 2 ? vfs_current_time_int64 : NULL,
        .xSetSystemCall = version >= 3 ? vfs_set_system_call : NULL,
        .xGetSystemCall = version >= 3 ? vfs_get_system_call : NULL,
        .xNextSystemCall = version >= 3 ? vfs_next_system_call : NULL,
    };
}

int faults_vfs_register(const char *node_name, const struct faults_host *host)
{
    if (!faults_is_node_name(node_name)) {
        faults_errmsg_set("node %s: not a node name ([a-z0-9_-], 1..%d bytes)",
                          node_name != NULL ? node_name : "(null)", FAULTS_NODE_MAX - 1);
        return -EINVAL;
    }
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (real == NULL) {
        faults_errmsg_set("node %s: SQLite has no default VFS", node_name);
        return -ENOENT;
    }
    assert(real->xOpen != vfs_open); /* nobody made one of ours the default */
    int rc = 0;
    pthread_mutex_lock(&vfs_lock);
    struct vfs_node *node = vfs_node_find(node_name);
    bool memory = host != NULL && host->memory;
    if (node != NULL && memory != (node->mem != NULL)) {
        faults_errmsg_set("node %s: its files are %s; a new host cannot move them", node_name,
                          node->mem != NULL ? "in memory" : "on disk");
        rc = -EINVAL;
        goto out_unlock;
    }
    if (node != NULL) {
        node->host = host != NULL ? *host : (struct faults_host){0};
        node_forget_sizes(node); /* untracked writes did not keep them */
        goto out_unlock;
    }
    for (size_t i = 0; i < FAULTS_NODES_MAX && node == NULL; i++) {
        node = nodes[i].in_use ? NULL : &nodes[i];
    }
    if (node == NULL) {
        faults_errmsg_set("node %s: more than %d nodes", node_name, FAULTS_NODES_MAX);
        rc = -E2BIG;
        goto out_unlock;
    }
    struct memfs *mem = NULL;
    if (memory) {
        mem = memfs_create(real);
        if (mem == NULL) {
            faults_errmsg_set("node %s: out of memory", node_name);
            rc = -ENOMEM;
            goto out_unlock;
        }
    }
    vfs_node_init(node, node_name, mem != NULL ? memfs_vfs(mem) : real, mem, host);
    if (sqlite3_vfs_register(&node->vfs, 0) != SQLITE_OK) {
        memfs_free(mem);
        node->in_use = false;
        faults_errmsg_set("node %s: sqlite3_vfs_register failed", node_name);
        rc = -ENOMEM;
    }
out_unlock:
    pthread_mutex_unlock(&vfs_lock);
    return rc;
}

const char *faults_vfs_name(const char *node_name)
{
    pthread_mutex_lock(&vfs_lock);
    struct vfs_node *node = node_name != NULL ? vfs_node_find(node_name) : NULL;
    pthread_mutex_unlock(&vfs_lock);
    return node != NULL ? node->vfs_name : NULL;
}

int faults_vfs_crash(const char *node_name, enum faults_crash_kind kind, struct faults_rng *rng,
                     struct faults_crash_stats *stats)
{
    struct faults_crash_stats ignored = {0};
    stats = stats != NULL ? stats : &ignored;
    *stats = (struct faults_crash_stats){0};
    if (kind == FAULTS_CRASH_POWER && rng == NULL) {
        faults_errmsg_set("node %s: a power cut needs a generator",
                          node_name != NULL ? node_name : "(null)");
        return -EINVAL;
    }
    int rc = 0;
    pthread_mutex_lock(&vfs_lock);
    struct vfs_node *node = node_name != NULL ? vfs_node_find(node_name) : NULL;
    if (node == NULL) {
        faults_errmsg_set("node %s: not registered", node_name != NULL ? node_name : "(null)");
        rc = -ENOENT;
        goto out_unlock;
    }
    if (!vfs_node_is_up(node)) {
        goto out_unlock; /* already dead: nothing can have been written */
    }
    if (kind == FAULTS_CRASH_POWER && node->host.no_power_cut) {
        faults_errmsg_set("node %s: its host keeps no record for power cuts", node_name);
        rc = -ENOTSUP;
        goto out_unlock;
    }
    stats->bytes_unsynced = node->log.bytes;
    if (kind == FAULTS_CRASH_POWER && node->log.count > 0) {
        rc = crash_power(node, rng, stats);
        if (rc < 0) {
            faults_errmsg_set("node %s: applying the power cut failed: %s", node_name,
                              strerror(-rc));
        }
    } else {
        stats->writes_kept = node->log.count; /* the page cache survives */
    }
    undo_log_clear(&node->log);
    node_forget_sizes(node);
    vfs_node_set_up(node, false);
out_unlock:
    pthread_mutex_unlock(&vfs_lock);
    return rc;
}

int faults_vfs_restart(const char *node_name)
{
    int rc = 0;
    pthread_mutex_lock(&vfs_lock);
    struct vfs_node *node = node_name != NULL ? vfs_node_find(node_name) : NULL;
    if (node == NULL) {
        faults_errmsg_set("node %s: not registered", node_name != NULL ? node_name : "(null)");
        rc = -ENOENT;
    } else if (!vfs_node_is_up(node)) {
        vfs_node_set_up(node, true);
    }
    pthread_mutex_unlock(&vfs_lock);
    return rc;
}

bool faults_vfs_is_up(const char *node_name)
{
    pthread_mutex_lock(&vfs_lock);
    struct vfs_node *node = node_name != NULL ? vfs_node_find(node_name) : NULL;
    bool up = node != NULL && vfs_node_is_up(node);
    pthread_mutex_unlock(&vfs_lock);
    return up;
}

uint64_t faults_vfs_unsynced_bytes(const char *node_name)
{
    pthread_mutex_lock(&vfs_lock);
    struct vfs_node *node = node_name != NULL ? vfs_node_find(node_name) : NULL;
    uint64_t bytes = node != NULL ? node->log.bytes : 0;
    pthread_mutex_unlock(&vfs_lock);
    return bytes;
}

uint64_t faults_vfs_memory_bytes(const char *node_name)
{
    pthread_mutex_lock(&vfs_lock);
    struct vfs_node *node = node_name != NULL ? vfs_node_find(node_name) : NULL;
    uint64_t bytes = node != NULL && node->mem != NULL ? memfs_bytes(node->mem) : 0;
    pthread_mutex_unlock(&vfs_lock);
    return bytes;
}

void faults_vfs_unregister_all(void)
{
    pthread_mutex_lock(&vfs_lock);
    for (size_t i = 0; i < FAULTS_NODES_MAX; i++) {
        if (nodes[i].in_use) {
            sqlite3_vfs_unregister(&nodes[i].vfs);
            undo_log_release(&nodes[i].log);
            memfs_free(nodes[i].mem);
            for (size_t p = 0; p < nodes[i].path_count; p++) {
                free(nodes[i].paths[p].path);
            }
            nodes[i] = (struct vfs_node){0};
        }
    }
    pthread_mutex_unlock(&vfs_lock);
}
