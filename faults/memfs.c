/*
 * memfs.c — the files of a simulated node kept in this process's memory: a
 * SQLite VFS with no system call for the files it holds, that the fault VFS
 * (vfs.c) wraps instead of the default VFS when the host asks for it
 * (faults_host.memory). The simulator's choice: its nodes' files are scratch,
 * and the crash model of vfs.c, not the host's disk, decides what survives.
 *
 * It behaves as SQLite's unix VFS does inside one process, so that a run
 * makes the same calls, of the same sizes, in the same order, on either:
 * files last until deleted (closing keeps them, as on disk); a file deleted
 * while open lives on for its handles; the database lock levels and the
 * WAL-index (shared memory) locks follow os_unix.c's in-process rules; the
 * WAL-index starts zeroed when its first handle maps it (unix: the first
 * connection truncates the -shm), so a reopened database recovers from its
 * WAL; "exists" means a non-empty regular file; the sector size is 4096 and
 * overwrites are power-safe. Data lives in fixed-size chunks, allocated on
 * first write (a hole reads as zeros), so a growing file never moves.
 *
 * Depends on SQLite's VFS interface only (randomness, sleep and time are
 * the default VFS's). Knows nothing of faults or crashes: vfs.c applies a
 * power cut with memfs_file_write/memfs_file_truncate.
 *
 * Threading: none. A store is used by one thread at a time (the
 * simulator's), so no call takes a lock: a lock per read and write was a
 * measurable part of a simulated operation.
 */
#include "faults/internal.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define MEMFS_CHUNK_BYTES  65536 /* a file's data is an array of these */
#define MEMFS_SECTOR_BYTES 4096  /* os_unix.c's SQLITE_DEFAULT_SECTOR_SIZE */
#define MEMFS_SHM_REGIONS_MAX 4096 /* WAL-index regions of 32 KiB: 128 MiB */
#define MEMFS_SHM_LOCKS    SQLITE_SHM_NLOCK

/* The WAL-index of one database: regions that never move while mapped. */
struct memfs_shm {
    void **regions;
    int region_count;
    int region_bytes;
    struct memfs_handle *mapped; /* handles that mapped it, linked by shm_next */
};

/*
 * A file's bytes below `size` are in its chunks, or zero where a chunk is
 * NULL (a hole). Bytes at or past `size` inside a chunk mean nothing: a
 * chunk is not zeroed when made, and whatever grows the file zeroes what it
 * exposes (a write past the end, a truncate that extends).
 */
struct memfs_file {
    char *path;               /* NULL: anonymous (a temp file), never in the namespace */
    bool linked;              /* in the store's namespace */
    int handles;              /* open handles */
    int64_t size;
    unsigned char **chunks;   /* chunk_count slots; a NULL chunk reads as zeros */
    size_t chunk_count;
    int lock_level;           /* the strongest file lock any handle holds */
    int shared_count;         /* handles holding SHARED or more */
    struct memfs_shm *shm;    /* NULL until mapped; freed when the last handle unmaps */
};

/* SQLite allocates szOsFile bytes for this; base comes first. */
struct memfs_handle {
    sqlite3_file base;
    struct memfs *fs;
    struct memfs_file *file;
    int lock_level;
    bool delete_on_close;
    uint16_t shm_shared;      /* WAL-index locks this handle holds, one bit a slot */
    uint16_t shm_exclusive;
    bool shm_is_mapped;
    struct memfs_handle *shm_next;
};

struct memfs {
    sqlite3_vfs vfs; /* first: SQLite hands us this pointer back */
    sqlite3_vfs *host; /* the default VFS: randomness, sleep, time */
    struct memfs_file **files; /* the namespace */
    size_t file_count;
    size_t file_cap;
};

/* ---- Files ---------------------------------------------------------------- */

static struct memfs_file *fs_find(struct memfs *fs, const char *path, size_t *index)
{
    for (size_t i = 0; i < fs->file_count; i++) {
        if (strcmp(fs->files[i]->path, path) == 0) {
            if (index != NULL) {
                *index = i;
            }
            return fs->files[i];
        }
    }
    return NULL;
}

static void file_free(struct memfs_file *file)
{
    assert(file->shm == NULL);
    for (size_t i = 0; i < file->chunk_count; i++) {
        free(file->chunks[i]);
    }
    free(file->chunks);
    free(file->path);
    free(file);
}

/* A new empty file; linked into the namespace when path is not NULL. */
static struct memfs_file *fs_create(struct memfs *fs, const char *path)
{
    struct memfs_file *file = calloc(1, sizeof *file);
    if (file == NULL) {
        return NULL;
    }
    if (path == NULL) {
        return file;
    }
    file->path = strdup(path);
    if (file->path == NULL) {
        free(file);
        return NULL;
    }
    if (fs->file_count == fs->file_cap) {
        size_t cap = fs->file_cap == 0 ? 8 : fs->file_cap * 2;
        struct memfs_file **grown = realloc(fs->files, cap * sizeof *grown);
        if (grown == NULL) {
            file_free(file);
            return NULL;
        }
        fs->files = grown;
        fs->file_cap = cap;
    }
    fs->files[fs->file_count++] = file;
    file->linked = true;
    return file;
}

/* Takes the file out of the namespace; freed now or at its last close. */
static void fs_unlink(struct memfs *fs, size_t index)
{
    struct memfs_file *file = fs->files[index];
    fs->files[index] = fs->files[--fs->file_count];
    file->linked = false;
    if (file->handles == 0) {
        file_free(file);
    }
}

/* Copies [offset, offset + len) of the file's data into buf (zeros in holes
 * and past the end). */
static void file_copy_out(const struct memfs_file *file, void *buf, int64_t len, int64_t offset)
{
    unsigned char *out = buf;
    while (len > 0) {
        size_t chunk = (size_t)(offset / MEMFS_CHUNK_BYTES);
        int64_t within = offset % MEMFS_CHUNK_BYTES;
        int64_t n = MEMFS_CHUNK_BYTES - within < len ? MEMFS_CHUNK_BYTES - within : len;
        if (chunk < file->chunk_count && file->chunks[chunk] != NULL) {
            memcpy(out, file->chunks[chunk] + within, (size_t)n);
        } else {
            memset(out, 0, (size_t)n);
        }
        out += n;
        offset += n;
        len -= n;
    }
}

/* Room for chunk index `last`; false when memory says no. */
static bool file_reserve(struct memfs_file *file, size_t last)
{
    if (last < file->chunk_count) {
        return true;
    }
    size_t count = file->chunk_count == 0 ? 4 : file->chunk_count;
    while (count <= last) {
        count *= 2;
    }
    unsigned char **grown = realloc(file->chunks, count * sizeof *grown);
    if (grown == NULL) {
        return false;
    }
    memset(grown + file->chunk_count, 0, (count - file->chunk_count) * sizeof *grown);
    file->chunks = grown;
    file->chunk_count = count;
    return true;
}

/* Zeroes [from, to) inside the chunks that exist (a hole is zero already). */
static void file_zero(struct memfs_file *file, int64_t from, int64_t to)
{
    while (from < to) {
        size_t chunk = (size_t)(from / MEMFS_CHUNK_BYTES);
        int64_t within = from % MEMFS_CHUNK_BYTES;
        int64_t n = MEMFS_CHUNK_BYTES - within < to - from ? MEMFS_CHUNK_BYTES - within : to - from;
        if (chunk < file->chunk_count && file->chunks[chunk] != NULL) {
            memset(file->chunks[chunk] + within, 0, (size_t)n);
        }
        from += n;
    }
}

int memfs_file_truncate(struct memfs_file *file, int64_t size)
{
    assert(size >= 0);
    if (size < file->size) {
        /* Chunks wholly past the end go; the rest past `size` means nothing. */
        size_t keep = (size_t)((size + MEMFS_CHUNK_BYTES - 1) / MEMFS_CHUNK_BYTES);
        for (size_t i = keep; i < file->chunk_count; i++) {
            free(file->chunks[i]);
            file->chunks[i] = NULL;
        }
    } else {
        file_zero(file, file->size, size); /* ftruncate extends with zeros */
    }
    file->size = size;
    return 0;
}

int memfs_file_write(struct memfs_file *file, const void *buf, int64_t len, int64_t offset)
{
    assert(len >= 0 && offset >= 0);
    if (len == 0) {
        return 0;
    }
    if (!file_reserve(file, (size_t)((offset + len - 1) / MEMFS_CHUNK_BYTES))) {
        return -ENOMEM;
    }
    if (offset > file->size) {
        file_zero(file, file->size, offset); /* the gap a write past the end leaves */
    }
    const unsigned char *in = buf;
    int64_t at = offset;
    int64_t left = len;
    while (left > 0) {
        size_t chunk = (size_t)(at / MEMFS_CHUNK_BYTES);
        int64_t within = at % MEMFS_CHUNK_BYTES;
        int64_t n = MEMFS_CHUNK_BYTES - within < left ? MEMFS_CHUNK_BYTES - within : left;
        if (file->chunks[chunk] == NULL) {
            unsigned char *fresh = malloc(MEMFS_CHUNK_BYTES);
            if (fresh == NULL) {
                return -ENOMEM; /* the chunks before hold their part: a short write */
            }
            /* A hole read as zeros: keep them where the file already
             * reaches, around the part this write sets. */
            int64_t base = (int64_t)chunk * MEMFS_CHUNK_BYTES;
            int64_t lo = within;
            int64_t hi = file->size - base < MEMFS_CHUNK_BYTES ? file->size - base
                                                                 : MEMFS_CHUNK_BYTES;
            memset(fresh, 0, (size_t)lo);
            if (hi > within + n) {
                memset(fresh + within + n, 0, (size_t)(hi - within - n));
            }
            file->chunks[chunk] = fresh;
        }
        memcpy(file->chunks[chunk] + within, in, (size_t)n);
        in += n;
        at += n;
        left -= n;
    }
    if (offset + len > file->size) {
        file->size = offset + len;
    }
    return 0;
}

/* ---- The store, for vfs.c's power cuts ----------------------------------- */

struct memfs_file *memfs_file_at(struct memfs *fs, const char *path)
{
    struct memfs_file *file = fs_find(fs, path, NULL);
    return file != NULL ? file : fs_create(fs, path);
}


/* ---- The WAL-index ----------------------------------------------------------- */

static void shm_free(struct memfs_shm *shm)
{
    for (int i = 0; i < shm->region_count; i++) {
        free(shm->regions[i]);
    }
    free(shm->regions);
    free(shm);
}

/* Lets go of h's WAL-index: its locks, and the index itself when h was the
 * last to map it (the next handle starts from zeros and recovers). */
static void shm_detach(struct memfs_handle *h)
{
    struct memfs_shm *shm = h->file->shm;
    if (!h->shm_is_mapped || shm == NULL) {
        return;
    }
    for (struct memfs_handle **p = &shm->mapped; *p != NULL; p = &(*p)->shm_next) {
        if (*p == h) {
            *p = h->shm_next;
            break;
        }
    }
    h->shm_next = NULL;
    h->shm_is_mapped = false;
    h->shm_shared = 0;
    h->shm_exclusive = 0;
    if (shm->mapped == NULL) {
        shm_free(shm);
        h->file->shm = NULL;
    }
}

/* ---- File lock levels (os_unix.c's in-process rules) ------------------------ */

static int lock_take(struct memfs_handle *h, int level)
{
    struct memfs_file *file = h->file;
    if (h->lock_level >= level) {
        return SQLITE_OK;
    }
    /* Someone else holds PENDING or more, or this handle wants more than
     * SHARED while another holds more than SHARED. */
    if (h->lock_level != file->lock_level &&
        (file->lock_level >= SQLITE_LOCK_PENDING || level > SQLITE_LOCK_SHARED)) {
        return SQLITE_BUSY;
    }
    if (level == SQLITE_LOCK_SHARED) {
        file->shared_count++;
        h->lock_level = SQLITE_LOCK_SHARED;
        if (file->lock_level < SQLITE_LOCK_SHARED) {
            file->lock_level = SQLITE_LOCK_SHARED;
        }
        return SQLITE_OK;
    }
    if (level == SQLITE_LOCK_EXCLUSIVE && file->shared_count > 1) {
        /* Others still read: keep PENDING so no new reader starts. */
        h->lock_level = SQLITE_LOCK_PENDING;
        file->lock_level = SQLITE_LOCK_PENDING;
        return SQLITE_BUSY;
    }
    h->lock_level = level;
    file->lock_level = level;
    return SQLITE_OK;
}

static int lock_release(struct memfs_handle *h, int level)
{
    struct memfs_file *file = h->file;
    if (h->lock_level <= level) {
        return SQLITE_OK;
    }
    if (h->lock_level > SQLITE_LOCK_SHARED) {
        file->lock_level = SQLITE_LOCK_SHARED;
    }
    if (level == SQLITE_LOCK_NONE) {
        file->shared_count--;
        if (file->shared_count == 0) {
            file->lock_level = SQLITE_LOCK_NONE;
        }
    }
    h->lock_level = level;
    return SQLITE_OK;
}

/* ---- The io methods ------------------------------------------------------ */

static int h_close(sqlite3_file *f)
{
    struct memfs_handle *h = (struct memfs_handle *)f;
    struct memfs *fs = h->fs;
    shm_detach(h);
    lock_release(h, SQLITE_LOCK_NONE);
    struct memfs_file *file = h->file;
    size_t index = 0;
    if (h->delete_on_close && file->linked && fs_find(fs, file->path, &index) == file) {
        fs_unlink(fs, index);
    }
    file->handles--;
    if (file->handles == 0 && !file->linked) {
        file_free(file);
    }
    h->file = NULL;
    return SQLITE_OK;
}

static int h_read(sqlite3_file *f, void *buf, int amount, sqlite3_int64 offset)
{
    struct memfs_handle *h = (struct memfs_handle *)f;
    const struct memfs_file *file = h->file;
    int64_t have = file->size > offset ? file->size - offset : 0;
    int64_t n = have < amount ? have : amount;
    if (n > 0) {
        file_copy_out(file, buf, n, offset);
    }
    if (n < amount) {
        /* SQLite's contract: the missing part reads as zeros. */
        memset((unsigned char *)buf + n, 0, (size_t)(amount - n));
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

static int h_write(sqlite3_file *f, const void *buf, int amount, sqlite3_int64 offset)
{
    struct memfs_handle *h = (struct memfs_handle *)f;
    int rc = memfs_file_write(h->file, buf, amount, offset);
    return rc == 0 ? SQLITE_OK : SQLITE_IOERR_NOMEM;
}

static int h_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct memfs_handle *h = (struct memfs_handle *)f;
    memfs_file_truncate(h->file, size);
    return SQLITE_OK;
}

static int h_sync(sqlite3_file *f, int flags)
{
    (void)f;
    (void)flags;
    return SQLITE_OK; /* memory is as durable as it gets; vfs.c models the rest */
}

static int h_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct memfs_handle *h = (struct memfs_handle *)f;
    *size = h->file->size;
    return SQLITE_OK;
}

static int h_lock(sqlite3_file *f, int level)
{
    struct memfs_handle *h = (struct memfs_handle *)f;
    int rc = lock_take(h, level);
    return rc;
}

static int h_unlock(sqlite3_file *f, int level)
{
    struct memfs_handle *h = (struct memfs_handle *)f;
    int rc = lock_release(h, level);
    return rc;
}

static int h_check_reserved_lock(sqlite3_file *f, int *reserved)
{
    struct memfs_handle *h = (struct memfs_handle *)f;
    *reserved = h->file->lock_level > SQLITE_LOCK_SHARED;
    return SQLITE_OK;
}

static int h_file_control(sqlite3_file *f, int op, void *arg)
{
    (void)f;
    (void)op;
    (void)arg;
    return SQLITE_NOTFOUND; /* every hint SQLite sends has a default */
}

static int h_sector_size(sqlite3_file *f)
{
    (void)f;
    return MEMFS_SECTOR_BYTES;
}

static int h_device_characteristics(sqlite3_file *f)
{
    (void)f;
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE; /* os_unix.c's default (psow=1) */
}

static int h_shm_map(sqlite3_file *f, int region, int region_bytes, int extend,
                     void volatile **mapped)
{
    struct memfs_handle *h = (struct memfs_handle *)f;
    int rc = SQLITE_OK;
    *mapped = NULL;
    struct memfs_file *file = h->file;
    if (file->shm == NULL) {
        file->shm = calloc(1, sizeof *file->shm);
        if (file->shm == NULL) {
            rc = SQLITE_IOERR_NOMEM;
            goto out_unlock;
        }
        file->shm->region_bytes = region_bytes;
    }
    struct memfs_shm *shm = file->shm;
    if (!h->shm_is_mapped) {
        h->shm_is_mapped = true;
        h->shm_next = shm->mapped;
        shm->mapped = h;
    }
    assert(shm->region_bytes == region_bytes);
    if (region >= shm->region_count) {
        if (!extend) {
            goto out_unlock; /* not there yet: NULL, and SQLite knows */
        }
        if (region >= MEMFS_SHM_REGIONS_MAX) {
            rc = SQLITE_IOERR_SHMSIZE;
            goto out_unlock;
        }
        void **grown = realloc(shm->regions, (size_t)(region + 1) * sizeof *grown);
        if (grown == NULL) {
            rc = SQLITE_IOERR_NOMEM;
            goto out_unlock;
        }
        shm->regions = grown;
        while (shm->region_count <= region) {
            void *zeros = calloc(1, (size_t)region_bytes);
            if (zeros == NULL) {
                rc = SQLITE_IOERR_NOMEM;
                goto out_unlock;
            }
            shm->regions[shm->region_count++] = zeros;
        }
    }
    *mapped = shm->regions[region];
out_unlock:
    return rc;
}

/* os_unix.c's unixShmLock between the connections of one process. */
static int h_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    struct memfs_handle *h = (struct memfs_handle *)f;
    assert(offset >= 0 && n >= 1 && offset + n <= MEMFS_SHM_LOCKS);
    uint16_t mask = (uint16_t)((1u << (offset + n)) - (1u << offset));
    int rc = SQLITE_OK;
    struct memfs_shm *shm = h->file->shm;
    if (shm == NULL || !h->shm_is_mapped) {
        rc = SQLITE_IOERR_SHMLOCK;
    } else if (flags & SQLITE_SHM_UNLOCK) {
        h->shm_shared &= (uint16_t)~mask;
        h->shm_exclusive &= (uint16_t)~mask;
    } else if (flags & SQLITE_SHM_SHARED) {
        for (const struct memfs_handle *x = shm->mapped; x != NULL; x = x->shm_next) {
            if (x->shm_exclusive & mask) {
                rc = SQLITE_BUSY;
                break;
            }
        }
        if (rc == SQLITE_OK) {
            h->shm_shared |= mask;
        }
    } else {
        for (const struct memfs_handle *x = shm->mapped; x != NULL; x = x->shm_next) {
            if ((x->shm_exclusive | x->shm_shared) & mask) {
                rc = SQLITE_BUSY;
                break;
            }
        }
        if (rc == SQLITE_OK) {
            h->shm_exclusive |= mask;
        }
    }
    return rc;
}

static void h_shm_barrier(sqlite3_file *f)
{
    (void)f;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static int h_shm_unmap(sqlite3_file *f, int delete_flag)
{
    (void)delete_flag; /* the index goes with its last mapping either way */
    struct memfs_handle *h = (struct memfs_handle *)f;
    shm_detach(h);
    return SQLITE_OK;
}

static const sqlite3_io_methods memfs_io = {
    .iVersion = 2,
    .xClose = h_close,
    .xRead = h_read,
    .xWrite = h_write,
    .xTruncate = h_truncate,
    .xSync = h_sync,
    .xFileSize = h_file_size,
    .xLock = h_lock,
    .xUnlock = h_unlock,
    .xCheckReservedLock = h_check_reserved_lock,
    .xFileControl = h_file_control,
    .xSectorSize = h_sector_size,
    .xDeviceCharacteristics = h_device_characteristics,
    .xShmMap = h_shm_map,
    .xShmLock = h_shm_lock,
    .xShmBarrier = h_shm_barrier,
    .xShmUnmap = h_shm_unmap,
};

/* ---- The VFS methods ----------------------------------------------------- */

static int fs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                   int *out_flags)
{
    struct memfs *fs = (struct memfs *)vfs;
    struct memfs_handle *h = (struct memfs_handle *)f;
    *h = (struct memfs_handle){.fs = fs};
    bool anonymous = name == NULL || (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
    int rc = SQLITE_OK;
    struct memfs_file *file = anonymous ? NULL : fs_find(fs, name, NULL);
    if (file != NULL && (flags & SQLITE_OPEN_EXCLUSIVE) != 0 &&
        (flags & SQLITE_OPEN_CREATE) != 0) {
        rc = SQLITE_CANTOPEN;
    } else if (file == NULL && !anonymous && (flags & SQLITE_OPEN_CREATE) == 0) {
        rc = SQLITE_CANTOPEN;
    } else if (file == NULL) {
        file = fs_create(fs, anonymous ? NULL : name);
        rc = file == NULL ? SQLITE_NOMEM : SQLITE_OK;
    }
    if (rc == SQLITE_OK) {
        file->handles++;
        h->file = file;
        h->base.pMethods = &memfs_io;
    }
    if (rc == SQLITE_OK && out_flags != NULL) {
        *out_flags = flags;
    }
    return rc;
}

static int fs_delete(sqlite3_vfs *vfs, const char *path, int sync_dir)
{
    (void)sync_dir;
    struct memfs *fs = (struct memfs *)vfs;
    size_t index = 0;
    int rc = SQLITE_IOERR_DELETE_NOENT;
    if (fs_find(fs, path, &index) != NULL) {
        fs_unlink(fs, index);
        rc = SQLITE_OK;
    }
    return rc;
}

static int fs_access(sqlite3_vfs *vfs, const char *path, int flags, int *result)
{
    struct memfs *fs = (struct memfs *)vfs;
    const struct memfs_file *file = fs_find(fs, path, NULL);
    /* os_unix.c: an empty regular file does not "exist" (a WAL left empty). */
    *result = file != NULL && (flags != SQLITE_ACCESS_EXISTS || file->size > 0);
    return SQLITE_OK;
}

static int fs_full_pathname(sqlite3_vfs *vfs, const char *path, int out_len, char *out)
{
    struct memfs *fs = (struct memfs *)vfs;
    if (path[0] != '/') {
        /* Relative: let the host VFS anchor it (one getcwd). */
        return fs->host->xFullPathname(fs->host, path, out_len, out);
    }
    size_t len = strlen(path);
    if (len + 1 > (size_t)out_len) {
        return SQLITE_CANTOPEN;
    }
    memcpy(out, path, len + 1);
    return SQLITE_OK;
}

static void *fs_dl_open(sqlite3_vfs *vfs, const char *path)
{
    (void)vfs;
    (void)path;
    return NULL; /* no extensions from a simulated disk */
}

static void fs_dl_error(sqlite3_vfs *vfs, int len, char *msg)
{
    (void)vfs;
    if (len > 0) {
        snprintf(msg, (size_t)len, "extensions cannot be loaded from memory files");
    }
}

static void (*fs_dl_sym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void)
{
    (void)vfs;
    (void)handle;
    (void)symbol;
    return NULL;
}

static void fs_dl_close(sqlite3_vfs *vfs, void *handle)
{
    (void)vfs;
    (void)handle;
}

static int fs_randomness(sqlite3_vfs *vfs, int len, char *out)
{
    struct memfs *fs = (struct memfs *)vfs;
    return fs->host->xRandomness(fs->host, len, out);
}

static int fs_sleep(sqlite3_vfs *vfs, int micros)
{
    struct memfs *fs = (struct memfs *)vfs;
    return fs->host->xSleep(fs->host, micros);
}

static int fs_current_time(sqlite3_vfs *vfs, double *now)
{
    struct memfs *fs = (struct memfs *)vfs;
    return fs->host->xCurrentTime(fs->host, now);
}

static int fs_get_last_error(sqlite3_vfs *vfs, int len, char *msg)
{
    (void)vfs;
    (void)len;
    (void)msg;
    return 0;
}

static int fs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *now)
{
    struct memfs *fs = (struct memfs *)vfs;
    if (fs->host->iVersion >= 2 && fs->host->xCurrentTimeInt64 != NULL) {
        return fs->host->xCurrentTimeInt64(fs->host, now);
    }
    double days = 0;
    int rc = fs->host->xCurrentTime(fs->host, &days);
    *now = (sqlite3_int64)(days * 86400000.0);
    return rc;
}

/* ---- Public (to libfaults) ----------------------------------------------- */

struct memfs *memfs_create(sqlite3_vfs *host)
{
    struct memfs *fs = calloc(1, sizeof *fs);
    if (fs == NULL) {
        return NULL;
    }
    fs->host = host;
    fs->vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct memfs_handle),
        .mxPathname = host->mxPathname,
        .zName = "faultdrill-memfs", /* never registered: reached through vfs.c */
        .xOpen = fs_open,
        .xDelete = fs_delete,
        .xAccess = fs_access,
        .xFullPathname = fs_full_pathname,
        .xDlOpen = fs_dl_open,
        .xDlError = fs_dl_error,
        .xDlSym = fs_dl_sym,
        .xDlClose = fs_dl_close,
        .xRandomness = fs_randomness,
        .xSleep = fs_sleep,
        .xCurrentTime = fs_current_time,
        .xGetLastError = fs_get_last_error,
        .xCurrentTimeInt64 = fs_current_time_int64,
    };
    return fs;
}

sqlite3_vfs *memfs_vfs(struct memfs *fs)
{
    return &fs->vfs;
}

void memfs_free(struct memfs *fs)
{
    if (fs == NULL) {
        return;
    }
    /* No handle may be open: the files go with the store. */
    for (size_t i = 0; i < fs->file_count; i++) {
        assert(fs->files[i]->handles == 0);
        file_free(fs->files[i]);
    }
    free(fs->files);
    free(fs);
}

uint64_t memfs_bytes(struct memfs *fs)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < fs->file_count; i++) {
        bytes += (uint64_t)fs->files[i]->size;
    }
    return bytes;
}
