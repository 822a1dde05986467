/*
 * internal.h — what the files of libfaults share and nobody else may use:
 * the thread-local error message and the in-memory file store (memfs.c)
 * that the fault VFS wraps for hosts that keep files in memory. Not
 * installed, not included outside faults/.
 */
#ifndef FAULTDRILL_FAULTS_INTERNAL_H
#define FAULTDRILL_FAULTS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

/* Bytes of faults_errmsg(), NUL included; longer messages are cut. */
#define FAULTS_ERRMSG_MAX 256

/* Sets this thread's faults_errmsg() (printf format). */
void faults_errmsg_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- memfs.c: a node's files in memory ---------------------------------- */

/* A store of files, reached as a SQLite VFS that is never registered: vfs.c
 * wraps it as it wraps the default VFS. */
struct memfs;
struct memfs_file;

/* A new empty store over `host` (the default VFS, for randomness, sleep and
 * time); NULL when out of memory. */
struct memfs *memfs_create(sqlite3_vfs *host);
/* The store's VFS, valid until memfs_free. */
sqlite3_vfs *memfs_vfs(struct memfs *fs);
/* Frees the store and its files; no handle may be open. NULL is a no-op. */
void memfs_free(struct memfs *fs);
/* Bytes held in the store's files (their sizes). */
uint64_t memfs_bytes(struct memfs *fs);

/* For applying a power cut behind SQLite's back: the file at path (created
 * empty when missing; NULL when out of memory), and writes and truncates
 * that bypass every handle. A store has no lock: one thread at a time. */
struct memfs_file *memfs_file_at(struct memfs *fs, const char *path);
int memfs_file_write(struct memfs_file *file, const void *buf, int64_t len, int64_t offset);
int memfs_file_truncate(struct memfs_file *file, int64_t size);

#endif /* FAULTDRILL_FAULTS_INTERNAL_H */
