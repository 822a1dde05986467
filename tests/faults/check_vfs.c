/*
 * check_vfs.c — tests faults/vfs.c: the fault-injecting VFS and its crash
 * model. Breaks SQLite through each disk point (read, write, fsync, full,
 * slow), cuts power under seeded generators and checks what survives, and
 * checks that a dead incarnation can no longer touch the disk.
 *
 * Every test runs twice: with the node's files on disk (the default VFS)
 * and in memory (faults_host.memory, the simulator's store), since the crash
 * model must be the same on both. In memory nothing may reach the disk.
 *
 * Depends on libfaults, SQLite, Check and POSIX file calls (to look at the
 * bytes a power cut left). Every test works in its own temporary directory
 * and disarms and unregisters everything before it returns.
 */
#include "faults/faults.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tests/check_run.h"

#define NODE          "n1"
#define DIR_BYTES     64
#define LEAF_BYTES    32
#define PATH_BYTES    (DIR_BYTES + LEAF_BYTES + 16)
#define SYNCED_ROWS   20
#define UNSYNCED_ROWS 30
#define PAYLOAD_BYTES 600
#define POWER_SEEDS   8
/* Seeds for the byte-level crash model tests: enough to see every fate. */
#define MODEL_SEEDS 40
#define SECTOR      512
#define PAGE        4096

/* ---- Fixture ------------------------------------------------------------ */

struct delay_recorder {
    int calls;
    int64_t last_delay_us;
    char last_node[FAULTS_NODE_MAX];
};

static struct delay_recorder recorder;
static bool in_memory; /* this test case's files live in the node's memory store */
static char dir[DIR_BYTES];
static char db_path[PATH_BYTES];

static void record_delay(void *ctx, const char *node, int64_t delay_us)
{
    struct delay_recorder *r = ctx;
    r->calls++;
    r->last_delay_us = delay_us;
    snprintf(r->last_node, sizeof r->last_node, "%s", node);
}

static void remove_dir_contents(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return;
    }
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            char child[DIR_BYTES + sizeof e->d_name + 2];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            unlink(child);
        }
    }
    closedir(d);
}

/* A host for this test case's store. */
static struct faults_host host_of(struct delay_recorder *r, bool no_power_cut)
{
    return (struct faults_host){.ctx = r,
                                .delay = r != NULL ? record_delay : NULL,
                                .no_power_cut = no_power_cut,
                                .memory = in_memory};
}

static void setup(void)
{
    recorder = (struct delay_recorder){0};
    ck_assert_int_eq(faults_init(1), 0);
    snprintf(dir, sizeof dir, "/tmp/check_vfs.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/shop.db", dir);
    struct faults_host host = host_of(&recorder, false);
    ck_assert_int_eq(faults_vfs_register(NODE, &host), 0);
}

static void setup_disk(void)
{
    in_memory = false;
    setup();
}

static void setup_memory(void)
{
    in_memory = true;
    setup();
}

static void teardown(void)
{
    faults_disarm_all();
    faults_vfs_unregister_all();
    if (in_memory) {
        /* Not one file of the node reached the disk. */
        DIR *d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
            ck_assert_msg(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0,
                          "%s reached the disk", e->d_name);
        }
        closedir(d);
    }
    remove_dir_contents(dir);
    rmdir(dir);
}

/* Every file of the node gone, the node registered afresh. */
static void wipe_files(void)
{
    if (in_memory) {
        faults_vfs_unregister_all();
        struct faults_host host = host_of(&recorder, false);
        ck_assert_int_eq(faults_vfs_register(NODE, &host), 0);
    } else {
        remove_dir_contents(dir);
    }
}

/* ---- SQLite helpers ------------------------------------------------------ */

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err != NULL ? err : "?");
    sqlite3_free(err);
}

static int try_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static sqlite3 *open_db(void)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             faults_vfs_name(NODE));
    ck_assert_msg(rc == SQLITE_OK, "open: %s", sqlite3_errmsg(db));
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    return db;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
    int64_t value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return value;
}

static void assert_integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(stmt, 0), "ok");
    sqlite3_finalize(stmt);
}

static void fill_payload(char *payload, int64_t id)
{
    memset(payload, 'a' + (int)(id % 26), PAYLOAD_BYTES);
    payload[PAYLOAD_BYTES] = '\0';
}

static void insert_row(sqlite3 *db, int64_t id)
{
    char payload[PAYLOAD_BYTES + 1];
    fill_payload(payload, id);
    sqlite3_stmt *stmt = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?, ?)", -1, &stmt, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(stmt, 1, id);
    sqlite3_bind_text(stmt, 2, payload, -1, SQLITE_TRANSIENT);
    ck_assert_int_eq(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
}

/* SYNCED_ROWS durable commits, then UNSYNCED_ROWS commits nobody synced. */
static sqlite3 *open_and_fill_unchecked(void)
{
    sqlite3 *db = open_db();
    exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    for (int64_t id = 1; id <= SYNCED_ROWS; id++) {
        insert_row(db, id);
    }
    ck_assert_uint_eq(faults_vfs_unsynced_bytes(NODE), 0);
    exec(db, "PRAGMA synchronous=OFF");
    for (int64_t id = SYNCED_ROWS + 1; id <= SYNCED_ROWS + UNSYNCED_ROWS; id++) {
        insert_row(db, id);
    }
    return db;
}

/* As open_and_fill_unchecked, and the crash model holds the unsynced writes. */
static sqlite3 *open_and_fill(void)
{
    sqlite3 *db = open_and_fill_unchecked();
    ck_assert_uint_gt(faults_vfs_unsynced_bytes(NODE), 0);
    return db;
}

/* Every row's payload is the one written for its id. */
static void assert_payloads_intact(sqlite3 *db)
{
    sqlite3_stmt *stmt = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT id, v FROM t", -1, &stmt, NULL), SQLITE_OK);
    char expected[PAYLOAD_BYTES + 1];
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        fill_payload(expected, sqlite3_column_int64(stmt, 0));
        ck_assert_str_eq((const char *)sqlite3_column_text(stmt, 1), expected);
    }
    sqlite3_finalize(stmt);
}

/* Closes the dead connection, restarts the node, reopens: a real restart. */
static sqlite3 *restart_and_reopen(sqlite3 *dead)
{
    ck_assert_int_eq(sqlite3_close(dead), SQLITE_OK);
    ck_assert_int_eq(faults_vfs_restart(NODE), 0);
    ck_assert(faults_vfs_is_up(NODE));
    return open_db();
}

static int arm(const char *name, struct faults_arm_spec spec)
{
    return faults_arm(name, &spec);
}

/* ---- Each disk point through SQLite -------------------------------------- */

START_TEST(read_fault_fails_the_query_until_disarmed)
{
    sqlite3 *db = open_db();
    exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    insert_row(db, 1);
    insert_row(db, 2);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);

    db = open_db();                         /* a cold page cache: the query must read */
    exec(db, "PRAGMA mmap_size=268435456"); /* asked for, refused: reads stay faultable */
    ck_assert_int_eq(arm("disk/" NODE "/read", (struct faults_arm_spec){.p = 1}), 0);
    ck_assert_int_ne(try_exec(db, "SELECT count(*) FROM t"), SQLITE_OK);
    ck_assert_int_eq(sqlite3_extended_errcode(db), SQLITE_IOERR_READ);
    ck_assert_int_eq(faults_disarm("disk/" NODE "/read"), 0);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), 2);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

START_TEST(read_fault_reaches_a_warm_page_cache)
{
    /* In WAL mode a query on a warm cache reads no page: the fault must
     * still fail it (it is consulted when the read transaction starts). */
    sqlite3 *db = open_db();
    exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    insert_row(db, 1);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), 1);
    ck_assert_int_eq(arm("disk/" NODE "/read", (struct faults_arm_spec){.count = 1}), 0);
    ck_assert_int_ne(try_exec(db, "SELECT count(*) FROM t"), SQLITE_OK);
    ck_assert_int_eq(sqlite3_extended_errcode(db), SQLITE_IOERR_READ);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), 1); /* once: fine again */
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

/* Arms `point` with `spec`, fails one insert with `expected`, disarms, and
 * checks the same connection commits again and the failed row is absent. */
static void assert_write_path_fault(const char *point, struct faults_arm_spec spec, int expected)
{
    sqlite3 *db = open_db();
    exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    insert_row(db, 1);
    ck_assert_int_eq(arm(point, spec), 0);
    ck_assert_int_ne(try_exec(db, "INSERT INTO t VALUES (2, 'lost')"), SQLITE_OK);
    ck_assert_int_eq(sqlite3_extended_errcode(db), expected);
    ck_assert_int_eq(faults_disarm(point), 0);
    exec(db, "INSERT INTO t VALUES (3, 'kept')");
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t WHERE id = 2"), 0);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), 2);
    assert_integrity_ok(db);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

START_TEST(write_fault_is_ioerr_write)
{
    assert_write_path_fault("disk/" NODE "/write", (struct faults_arm_spec){.p = 1},
                            SQLITE_IOERR_WRITE);
}
END_TEST

START_TEST(fsync_fault_is_ioerr_fsync)
{
    assert_write_path_fault("disk/" NODE "/fsync", (struct faults_arm_spec){.p = 1},
                            SQLITE_IOERR_FSYNC);
}
END_TEST

START_TEST(full_disk_is_sqlite_full)
{
    assert_write_path_fault("disk/" NODE "/full", (struct faults_arm_spec){.p = 1}, SQLITE_FULL);
}
END_TEST

START_TEST(enospc_on_write_is_sqlite_full)
{
    assert_write_path_fault("disk/" NODE "/write", (struct faults_arm_spec){.err = ENOSPC},
                            SQLITE_FULL);
}
END_TEST

START_TEST(eio_on_full_is_ioerr_write)
{
    assert_write_path_fault("disk/" NODE "/full", (struct faults_arm_spec){.err = EIO},
                            SQLITE_IOERR_WRITE);
}
END_TEST

START_TEST(wildcard_on_the_node_fails_writes)
{
    assert_write_path_fault("disk/" NODE "/w*", (struct faults_arm_spec){.p = 1},
                            SQLITE_IOERR_WRITE);
}
END_TEST

START_TEST(slow_disk_calls_the_host_with_the_delay)
{
    sqlite3 *db = open_db();
    ck_assert_int_eq(recorder.calls, 0);
    ck_assert_int_eq(arm("disk/" NODE "/slow", (struct faults_arm_spec){.delay_us = 1234}), 0);
    exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    insert_row(db, 1);
    ck_assert_int_gt(recorder.calls, 0);
    ck_assert_int_eq(recorder.last_delay_us, 1234);
    ck_assert_str_eq(recorder.last_node, NODE);
    ck_assert_int_eq(faults_disarm("disk/" NODE "/slow"), 0);
    int calls = recorder.calls;
    insert_row(db, 2);
    ck_assert_int_eq(recorder.calls, calls);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), 2);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

START_TEST(reregistering_keeps_the_vfs_and_swaps_the_host)
{
    sqlite3_vfs *before = sqlite3_vfs_find(faults_vfs_name(NODE));
    ck_assert_ptr_nonnull(before);
    sqlite3 *db = open_db();
    struct delay_recorder other = {0};
    struct faults_host host = host_of(&other, false);
    ck_assert_int_eq(faults_vfs_register(NODE, &host), 0);
    /* Where the files live is fixed at the first registration. */
    host.memory = !in_memory;
    ck_assert_int_eq(faults_vfs_register(NODE, &host), -EINVAL);
    host.memory = in_memory;
    ck_assert_ptr_eq(sqlite3_vfs_find(faults_vfs_name(NODE)), before);
    ck_assert_int_eq(arm("disk/" NODE "/slow", (struct faults_arm_spec){.p = 1}), 0);
    exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    ck_assert_int_gt(other.calls, 0);
    ck_assert_int_eq(other.last_delay_us, FAULTS_DELAY_US_DEFAULT);
    ck_assert_int_eq(recorder.calls, 0);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
    ck_assert_ptr_null(sqlite3_vfs_find("faultdrill-nobody"));
    ck_assert_ptr_null(faults_vfs_name("nobody"));
    ck_assert_int_eq(faults_vfs_register("Bad/Name", NULL), -EINVAL);
}
END_TEST

/* ---- Crashes through SQLite ---------------------------------------------- */

_Static_assert(SYNCED_ROWS == 20, "the queries below spell SYNCED_ROWS as 20");

struct power_outcome {
    int64_t unsynced_survivors;
    struct faults_crash_stats stats;
};

/* One power cut under `seed` on a fresh database; what survived. */
static struct power_outcome power_cut_once(uint64_t seed)
{
    wipe_files();
    sqlite3 *db = open_and_fill();
    struct faults_rng rng;
    faults_rng_seed(&rng, seed, "crash");
    struct power_outcome out = {0};
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_POWER, &rng, &out.stats), 0);
    ck_assert(!faults_vfs_is_up(NODE));
    ck_assert_uint_eq(faults_vfs_unsynced_bytes(NODE), 0);
    ck_assert_uint_gt(out.stats.bytes_unsynced, 0);
    ck_assert_uint_gt(out.stats.writes_kept + out.stats.writes_dropped + out.stats.writes_torn, 0);
    db = restart_and_reopen(db);
    assert_integrity_ok(db);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t WHERE id <= 20"), SYNCED_ROWS);
    out.unsynced_survivors = query_int(db, "SELECT count(*) FROM t WHERE id > 20");
    ck_assert_int_le(out.unsynced_survivors, UNSYNCED_ROWS);
    /* WAL recovery stops at the first bad frame: survivors are a prefix. */
    ck_assert_int_eq(query_int(db, "SELECT coalesce(max(id), 20) FROM t"),
                     SYNCED_ROWS + out.unsynced_survivors);
    assert_payloads_intact(db);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
    return out;
}

START_TEST(power_cut_keeps_synced_rows_and_a_prefix_of_the_rest)
{
    int64_t fewest = UNSYNCED_ROWS;
    for (uint64_t seed = 1; seed <= POWER_SEEDS; seed++) {
        struct power_outcome out = power_cut_once(seed);
        fewest = out.unsynced_survivors < fewest ? out.unsynced_survivors : fewest;
    }
    /* Over several seeds some unsynced commit must have been lost, or the
     * power cut is keeping everything like a process crash. */
    ck_assert_int_lt(fewest, UNSYNCED_ROWS);
}
END_TEST

START_TEST(power_cut_is_reproducible_by_seed)
{
    struct power_outcome first = power_cut_once(5);
    struct power_outcome again = power_cut_once(5);
    ck_assert_int_eq(first.unsynced_survivors, again.unsynced_survivors);
    ck_assert_mem_eq(&first.stats, &again.stats, sizeof first.stats);
}
END_TEST

START_TEST(process_crash_keeps_unsynced_commits)
{
    sqlite3 *db = open_and_fill();
    struct faults_crash_stats stats;
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_PROCESS, NULL, &stats), 0);
    ck_assert_uint_gt(stats.writes_kept, 0);
    ck_assert_uint_eq(stats.writes_dropped + stats.writes_torn, 0);
    db = restart_and_reopen(db);
    assert_integrity_ok(db);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), SYNCED_ROWS + UNSYNCED_ROWS);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

/* A host that never cuts power: nothing held, faults still fire, no power cut. */
START_TEST(no_power_cut_host_keeps_no_undo_but_still_faults)
{
    struct faults_host host = host_of(NULL, true);
    ck_assert_int_eq(faults_vfs_register(NODE, &host), 0);
    sqlite3 *db = open_and_fill_unchecked();
    ck_assert_uint_eq(faults_vfs_unsynced_bytes(NODE), 0);
    ck_assert_int_eq(arm("disk/" NODE "/write", (struct faults_arm_spec){.p = 1}), 0);
    ck_assert_int_ne(try_exec(db, "INSERT INTO t VALUES (-1, 'lost')"), SQLITE_OK);
    ck_assert_int_eq(sqlite3_extended_errcode(db), SQLITE_IOERR_WRITE);
    ck_assert_int_eq(faults_disarm("disk/" NODE "/write"), 0);
    struct faults_rng rng;
    faults_rng_seed(&rng, 1, "power");
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_POWER, &rng, NULL), -ENOTSUP);
    ck_assert(faults_vfs_is_up(NODE));
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    db = restart_and_reopen(db);
    assert_integrity_ok(db);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), SYNCED_ROWS + UNSYNCED_ROWS);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

START_TEST(dead_incarnation_cannot_write)
{
    sqlite3 *db = open_db();
    exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    insert_row(db, 1);
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    ck_assert_int_ne(try_exec(db, "INSERT INTO t VALUES (2, 'from the dead')"), SQLITE_OK);
    ck_assert_int_eq(faults_vfs_restart(NODE), 0);
    /* Up again, but this connection belongs to the old incarnation. */
    ck_assert_int_ne(try_exec(db, "INSERT INTO t VALUES (3, 'from the dead')"), SQLITE_OK);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
    db = open_db();
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), 1);
    exec(db, "INSERT INTO t VALUES (4, 'alive')");
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), 2);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

START_TEST(opening_while_down_fails)
{
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    ck_assert(!faults_vfs_is_up(NODE));
    /* A second crash of a dead node changes nothing. */
    struct faults_crash_stats stats = {.writes_kept = 99};
    ck_assert_int_eq(
        faults_vfs_crash(NODE, FAULTS_CRASH_POWER, &(struct faults_rng){{1, 2, 3, 4}}, &stats), 0);
    ck_assert_uint_eq(stats.writes_kept, 0);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             faults_vfs_name(NODE));
    ck_assert_int_eq(rc, SQLITE_CANTOPEN);
    sqlite3_close(db);
    ck_assert_int_eq(faults_vfs_restart(NODE), 0);
    db = open_db();
    exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
    ck_assert_int_eq(faults_vfs_crash("nobody", FAULTS_CRASH_PROCESS, NULL, NULL), -ENOENT);
    ck_assert_int_eq(faults_vfs_restart("nobody"), -ENOENT);
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_POWER, NULL, NULL), -EINVAL);
}
END_TEST

/* ---- The crash model byte by byte ---------------------------------------- */

/* A file opened straight through the node's VFS, as SQLite would. */
struct raw_file {
    sqlite3_file *file;
    sqlite3_filename name; /* SQLite keeps pointing at it: lives as long */
    char path[PATH_BYTES];
};

/* Opens `path` through `node`'s VFS. */
static int raw_open_at(struct raw_file *raw, const char *node, const char *path)
{
    ck_assert_uint_lt(strlen(path), sizeof raw->path);
    snprintf(raw->path, sizeof raw->path, "%s", path);
    sqlite3_vfs *vfs = sqlite3_vfs_find(faults_vfs_name(node));
    ck_assert_ptr_nonnull(vfs);
    raw->file = calloc(1, (size_t)vfs->szOsFile);
    raw->name = sqlite3_create_filename(raw->path, "", "", 0, NULL);
    ck_assert(raw->file != NULL && raw->name != NULL);
    int out = 0;
    int rc = vfs->xOpen(vfs, raw->name, raw->file,
                        SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &out);
    if (rc != SQLITE_OK) {
        ck_assert_ptr_null(raw->file->pMethods);
    }
    return rc;
}

static int raw_open(struct raw_file *raw, const char *leaf)
{
    ck_assert_uint_lt(strlen(leaf), LEAF_BYTES);
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/%.*s", dir, LEAF_BYTES - 1, leaf);
    return raw_open_at(raw, NODE, path);
}

static void raw_close(struct raw_file *raw)
{
    if (raw->file->pMethods != NULL) {
        raw->file->pMethods->xClose(raw->file);
    }
    free(raw->file);
    sqlite3_free_filename(raw->name);
}

static int raw_write(struct raw_file *raw, char byte, int64_t offset, int len)
{
    char *buf = malloc((size_t)len);
    ck_assert_ptr_nonnull(buf);
    memset(buf, byte, (size_t)len);
    int rc = raw->file->pMethods->xWrite(raw->file, buf, len, offset);
    free(buf);
    return rc;
}

static int raw_sync(struct raw_file *raw)
{
    return raw->file->pMethods->xSync(raw->file, SQLITE_SYNC_NORMAL);
}

/* In memory the only way to the bytes is the node's VFS, which opens nothing
 * while the node is down: restart it first (a restart changes no byte). */
static unsigned char *memory_bytes(const char *path, int64_t *size)
{
    if (!faults_vfs_is_up(NODE)) {
        ck_assert_int_eq(faults_vfs_restart(NODE), 0);
    }
    sqlite3_vfs *vfs = sqlite3_vfs_find(faults_vfs_name(NODE));
    ck_assert_ptr_nonnull(vfs);
    sqlite3_file *file = calloc(1, (size_t)vfs->szOsFile);
    sqlite3_filename name = sqlite3_create_filename(path, "", "", 0, NULL);
    ck_assert(file != NULL && name != NULL);
    int out = 0;
    ck_assert_int_eq(vfs->xOpen(vfs, name, file, SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READWRITE, &out),
                     SQLITE_OK);
    sqlite3_int64 n = 0;
    ck_assert_int_eq(file->pMethods->xFileSize(file, &n), SQLITE_OK);
    *size = n;
    unsigned char *bytes = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(bytes);
    if (n > 0) {
        ck_assert_int_eq(file->pMethods->xRead(file, bytes, (int)n, 0), SQLITE_OK);
    }
    file->pMethods->xClose(file);
    free(file);
    sqlite3_free_filename(name);
    return bytes;
}

/* The file's bytes as the disk (or the memory store) holds them now; *size
 * receives its length. */
static unsigned char *disk_bytes(const char *path, int64_t *size)
{
    if (in_memory) {
        return memory_bytes(path, size);
    }
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    *size = st.st_size;
    unsigned char *bytes = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(bytes);
    ck_assert_int_eq(pread(fd, bytes, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    return bytes;
}

/* Length of the run of `byte` starting at bytes[from], up to `end`. */
static int64_t run_of(const unsigned char *bytes, int64_t from, int64_t end, unsigned char byte)
{
    int64_t at = from;
    while (at < end && bytes[at] == byte) {
        at++;
    }
    return at - from;
}

/* Power cut under `seed`, then the node restarts; returns the stats. */
static struct faults_crash_stats cut_power(uint64_t seed)
{
    struct faults_rng rng;
    faults_rng_seed(&rng, seed, "model");
    struct faults_crash_stats stats;
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_POWER, &rng, &stats), 0);
    ck_assert_int_eq(faults_vfs_restart(NODE), 0);
    return stats;
}

START_TEST(overwrite_is_kept_dropped_or_torn_at_a_sector)
{
    int seen_kept = 0, seen_dropped = 0, seen_torn = 0;
    for (uint64_t seed = 0; seed < MODEL_SEEDS; seed++) {
        char leaf[LEAF_BYTES];
        snprintf(leaf, sizeof leaf, "over%d", (int)seed);
        struct raw_file raw;
        ck_assert_int_eq(raw_open(&raw, leaf), SQLITE_OK);
        ck_assert_int_eq(raw_write(&raw, 'a', 0, PAGE), SQLITE_OK);
        ck_assert_int_eq(raw_sync(&raw), SQLITE_OK);
        ck_assert_int_eq(raw_write(&raw, 'b', 0, PAGE), SQLITE_OK); /* unsynced */
        ck_assert_uint_eq(faults_vfs_unsynced_bytes(NODE), PAGE);
        cut_power(seed);
        raw_close(&raw);
        int64_t size = 0;
        unsigned char *bytes = disk_bytes(raw.path, &size);
        ck_assert_int_eq(size, PAGE); /* synced bytes are never lost */
        int64_t b_run = run_of(bytes, 0, size, 'b');
        ck_assert_int_eq(b_run % SECTOR, 0);
        ck_assert_int_eq(run_of(bytes, b_run, size, 'a'), PAGE - b_run);
        seen_kept += b_run == PAGE;
        seen_dropped += b_run == 0;
        seen_torn += b_run > 0 && b_run < PAGE;
        free(bytes);
    }
    ck_assert(seen_kept > 0 && seen_dropped > 0 && seen_torn > 0);
}
END_TEST

START_TEST(newer_kept_write_wins_over_older_dropped_one)
{
    /* a synced over two sectors, then b over the first and c over both,
     * unsynced. What survives reads c*b*a* with b inside the first sector: a
     * newer write's kept bytes are never rolled back by an older dropped
     * write (c kept and b dropped would otherwise read a...ac...c). */
    bool seen[3] = {false};
    for (uint64_t seed = 0; seed < MODEL_SEEDS; seed++) {
        char leaf[LEAF_BYTES];
        snprintf(leaf, sizeof leaf, "layer%d", (int)seed);
        struct raw_file raw;
        ck_assert_int_eq(raw_open(&raw, leaf), SQLITE_OK);
        ck_assert_int_eq(raw_write(&raw, 'a', 0, 2 * SECTOR), SQLITE_OK);
        ck_assert_int_eq(raw_sync(&raw), SQLITE_OK);
        ck_assert_int_eq(raw_write(&raw, 'b', 0, SECTOR), SQLITE_OK);
        ck_assert_int_eq(raw_write(&raw, 'c', 0, 2 * SECTOR), SQLITE_OK);
        cut_power(seed);
        raw_close(&raw);
        int64_t size = 0;
        unsigned char *bytes = disk_bytes(raw.path, &size);
        ck_assert_int_eq(size, 2 * SECTOR);
        int64_t c_run = run_of(bytes, 0, size, 'c');
        int64_t b_run = run_of(bytes, c_run, size, 'b');
        ck_assert_int_le(c_run + b_run, b_run > 0 ? SECTOR : size);
        ck_assert_int_eq(run_of(bytes, c_run + b_run, size, 'a'), size - c_run - b_run);
        seen[bytes[0] - 'a'] = true;
        free(bytes);
    }
    ck_assert(seen[0] && seen[1] && seen[2]);
}
END_TEST

START_TEST(dropped_append_before_a_kept_one_leaves_a_hole)
{
    /* x then y appended to a new file. If x is dropped and y kept, the file
     * still reaches y's end, with zeros where x was: never x's bytes. */
    bool seen_hole = false, seen_empty = false;
    for (uint64_t seed = 0; seed < MODEL_SEEDS; seed++) {
        char leaf[LEAF_BYTES];
        snprintf(leaf, sizeof leaf, "append%d", (int)seed);
        struct raw_file raw;
        ck_assert_int_eq(raw_open(&raw, leaf), SQLITE_OK);
        ck_assert_int_eq(raw_sync(&raw), SQLITE_OK); /* the empty file is durable */
        ck_assert_int_eq(raw_write(&raw, 'x', 0, 1000), SQLITE_OK);
        ck_assert_int_eq(raw_write(&raw, 'y', 1000, 1000), SQLITE_OK);
        cut_power(seed);
        raw_close(&raw);
        int64_t size = 0;
        unsigned char *bytes = disk_bytes(raw.path, &size);
        ck_assert_int_le(size, 2000);
        int64_t x_end = size < 1000 ? size : 1000;
        int64_t x_run = run_of(bytes, 0, x_end, 'x');
        ck_assert_int_eq(run_of(bytes, x_run, x_end, 0), x_end - x_run);
        if (size > 1000) {
            ck_assert_int_eq(run_of(bytes, 1000, size, 'y'), size - 1000);
            seen_hole |= bytes[0] == 0;
        }
        seen_empty |= size == 0;
        free(bytes);
    }
    ck_assert(seen_hole && seen_empty);
}
END_TEST

START_TEST(dropped_truncate_restores_the_tail)
{
    bool seen_cut = false, seen_restored = false;
    for (uint64_t seed = 0; seed < MODEL_SEEDS; seed++) {
        char leaf[LEAF_BYTES];
        snprintf(leaf, sizeof leaf, "trunc%d", (int)seed);
        struct raw_file raw;
        ck_assert_int_eq(raw_open(&raw, leaf), SQLITE_OK);
        ck_assert_int_eq(raw_write(&raw, 'a', 0, 2 * PAGE), SQLITE_OK);
        ck_assert_int_eq(raw_sync(&raw), SQLITE_OK);
        ck_assert_int_eq(raw.file->pMethods->xTruncate(raw.file, PAGE), SQLITE_OK);
        ck_assert_uint_eq(faults_vfs_unsynced_bytes(NODE), PAGE);
        struct faults_crash_stats stats = cut_power(seed);
        ck_assert_uint_eq(stats.writes_torn, 0); /* truncates are whole */
        raw_close(&raw);
        int64_t size = 0;
        unsigned char *bytes = disk_bytes(raw.path, &size);
        ck_assert(size == PAGE || size == 2 * PAGE);
        ck_assert_int_eq(run_of(bytes, 0, size, 'a'), size);
        seen_cut |= size == PAGE;
        seen_restored |= size == 2 * PAGE;
        free(bytes);
    }
    ck_assert(seen_cut && seen_restored);
}
END_TEST

START_TEST(sync_on_any_handle_of_a_path_forgets_its_writes)
{
    struct raw_file first, second;
    ck_assert_int_eq(raw_open(&first, "shared"), SQLITE_OK);
    ck_assert_int_eq(raw_open(&second, "shared"), SQLITE_OK);
    ck_assert_int_eq(raw_write(&first, 'a', 0, PAGE), SQLITE_OK);
    ck_assert_uint_eq(faults_vfs_unsynced_bytes(NODE), PAGE);
    /* An injected fsync failure syncs nothing and forgets nothing. */
    ck_assert_int_eq(arm("disk/" NODE "/fsync", (struct faults_arm_spec){.count = 1}), 0);
    ck_assert_int_eq(raw_sync(&second), SQLITE_IOERR_FSYNC);
    ck_assert_uint_eq(faults_vfs_unsynced_bytes(NODE), PAGE);
    ck_assert_int_eq(raw_sync(&second), SQLITE_OK);
    ck_assert_uint_eq(faults_vfs_unsynced_bytes(NODE), 0);
    /* Synced bytes survive any power cut. */
    cut_power(3);
    raw_close(&first);
    raw_close(&second);
    int64_t size = 0;
    unsigned char *bytes = disk_bytes(first.path, &size);
    ck_assert_int_eq(size, PAGE);
    ck_assert_int_eq(run_of(bytes, 0, size, 'a'), PAGE);
    free(bytes);
}
END_TEST

START_TEST(process_crash_keeps_every_byte)
{
    struct raw_file raw;
    ck_assert_int_eq(raw_open(&raw, "process"), SQLITE_OK);
    ck_assert_int_eq(raw_write(&raw, 'a', 0, PAGE), SQLITE_OK);
    ck_assert_int_eq(raw_sync(&raw), SQLITE_OK);
    ck_assert_int_eq(raw_write(&raw, 'b', 0, PAGE), SQLITE_OK);
    ck_assert_int_eq(raw_write(&raw, 'c', PAGE, PAGE), SQLITE_OK);
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    raw_close(&raw);
    int64_t size = 0;
    unsigned char *bytes = disk_bytes(raw.path, &size);
    ck_assert_int_eq(size, 2 * PAGE);
    ck_assert_int_eq(run_of(bytes, 0, PAGE, 'b'), PAGE);
    ck_assert_int_eq(run_of(bytes, PAGE, size, 'c'), PAGE);
    free(bytes);
}
END_TEST

START_TEST(dead_handle_refuses_every_disk_call)
{
    struct raw_file raw;
    ck_assert_int_eq(raw_open(&raw, "dead"), SQLITE_OK);
    ck_assert_int_eq(raw_write(&raw, 'a', 0, PAGE), SQLITE_OK);
    ck_assert_int_eq(raw_sync(&raw), SQLITE_OK);
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    sqlite3_file *f = raw.file;
    char buf[16];
    ck_assert_int_eq(f->pMethods->xRead(f, buf, sizeof buf, 0), SQLITE_IOERR_READ);
    ck_assert_int_eq(raw_write(&raw, 'z', 0, 16), SQLITE_IOERR_WRITE);
    ck_assert_int_eq(raw_sync(&raw), SQLITE_IOERR_FSYNC);
    ck_assert_int_eq(f->pMethods->xTruncate(f, 0), SQLITE_IOERR_TRUNCATE);
    ck_assert_int_eq(f->pMethods->xLock(f, SQLITE_LOCK_SHARED), SQLITE_IOERR_LOCK);
    sqlite3_vfs *vfs = sqlite3_vfs_find(faults_vfs_name(NODE));
    ck_assert_int_eq(vfs->xDelete(vfs, raw.path, 0), SQLITE_IOERR_DELETE);
    struct raw_file other;
    ck_assert_int_eq(raw_open(&other, "other"), SQLITE_CANTOPEN);
    free(other.file);
    sqlite3_free_filename(other.name);
    ck_assert_int_eq(faults_vfs_restart(NODE), 0);
    ck_assert_int_eq(raw_write(&raw, 'z', 0, 16), SQLITE_IOERR_WRITE); /* still dead */
    raw_close(&raw);
    ck_assert_int_eq(raw_open(&raw, "dead"), SQLITE_OK);
    ck_assert_int_eq(f == raw.file, false);
    ck_assert_int_eq(raw.file->pMethods->xRead(raw.file, buf, sizeof buf, 0), SQLITE_OK);
    ck_assert_int_eq(buf[0], 'a');
    raw_close(&raw);
}
END_TEST

START_TEST(undo_limit_refuses_writes_with_ioerr_nomem)
{
    /* A sparse extension by truncate counts its bytes without storing any:
     * the cheap way to reach FAULTS_UNDO_BYTES_MAX. */
    struct raw_file raw;
    ck_assert_int_eq(raw_open(&raw, "limit"), SQLITE_OK);
    ck_assert_int_eq(raw_write(&raw, 'a', 0, SECTOR), SQLITE_OK);
    ck_assert_int_eq(raw_sync(&raw), SQLITE_OK);
    sqlite3_file *f = raw.file;
    ck_assert_int_eq(f->pMethods->xTruncate(f, SECTOR + FAULTS_UNDO_BYTES_MAX), SQLITE_OK);
    ck_assert_uint_eq(faults_vfs_unsynced_bytes(NODE), FAULTS_UNDO_BYTES_MAX);
    ck_assert_int_eq(raw_write(&raw, 'b', 0, 1), SQLITE_IOERR_NOMEM);
    char byte = 0;
    ck_assert_int_eq(f->pMethods->xRead(f, &byte, 1, 0), SQLITE_OK);
    ck_assert_int_eq(byte, 'a'); /* the refused write wrote nothing */
    ck_assert_int_eq(raw_sync(&raw), SQLITE_OK);
    ck_assert_int_eq(raw_write(&raw, 'b', 0, 1), SQLITE_OK);
    raw_close(&raw);
}
END_TEST

/* ---- Sharing, locks, deletes: what SQLite expects of any VFS -------------- */

START_TEST(two_connections_share_one_database)
{
    sqlite3 *a = open_db();
    exec(a, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    insert_row(a, 1);
    sqlite3 *b = open_db();
    ck_assert_int_eq(query_int(b, "SELECT count(*) FROM t"), 1);
    insert_row(b, 2);
    ck_assert_int_eq(query_int(a, "SELECT count(*) FROM t"), 2);
    ck_assert_int_eq(sqlite3_close(a), SQLITE_OK);
    ck_assert_int_eq(query_int(b, "SELECT count(*) FROM t"), 2);
    ck_assert_int_eq(sqlite3_close(b), SQLITE_OK);
}
END_TEST

START_TEST(a_writer_excludes_another_writer)
{
    sqlite3 *a = open_db();
    sqlite3 *b = open_db();
    exec(a, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    exec(a, "BEGIN IMMEDIATE");
    insert_row(a, 1);
    /* No busy handler: the second writer is refused at once. */
    ck_assert_int_eq(try_exec(b, "BEGIN IMMEDIATE"), SQLITE_BUSY);
    /* A reader still sees the last commit, not the open transaction. */
    ck_assert_int_eq(query_int(b, "SELECT count(*) FROM t"), 0);
    exec(a, "COMMIT");
    exec(b, "BEGIN IMMEDIATE");
    insert_row(b, 2);
    ck_assert_int_eq(try_exec(a, "BEGIN IMMEDIATE"), SQLITE_BUSY);
    exec(b, "COMMIT");
    ck_assert_int_eq(query_int(a, "SELECT count(*) FROM t"), 2);
    ck_assert_int_eq(sqlite3_close(a), SQLITE_OK);
    ck_assert_int_eq(sqlite3_close(b), SQLITE_OK);
}
END_TEST

/* Whether the node's VFS says `path` exists (non-empty, as SQLite asks). */
static bool vfs_exists(const char *path)
{
    sqlite3_vfs *vfs = sqlite3_vfs_find(faults_vfs_name(NODE));
    int exists = -1;
    ck_assert_int_eq(vfs->xAccess(vfs, path, SQLITE_ACCESS_EXISTS, &exists), SQLITE_OK);
    return exists == 1;
}

START_TEST(last_close_checkpoints_and_a_reopen_recovers)
{
    char wal[PATH_BYTES + 8];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    sqlite3 *db = open_and_fill();
    sqlite3 *second = open_db();
    ck_assert(vfs_exists(wal));
    ck_assert_int_eq(sqlite3_close(second), SQLITE_OK);
    ck_assert(vfs_exists(wal)); /* another connection still reads it */
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
    ck_assert(!vfs_exists(wal)); /* the last one checkpointed and deleted it */
    db = open_db();
    assert_integrity_ok(db);
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), SYNCED_ROWS + UNSYNCED_ROWS);
    /* Commits left in the WAL by a dead process: the next opener recovers
     * them from the WAL (its WAL-index starts empty). */
    insert_row(db, 1000);
    ck_assert_int_eq(faults_vfs_crash(NODE, FAULTS_CRASH_PROCESS, NULL, NULL), 0);
    ck_assert(vfs_exists(wal) || !faults_vfs_is_up(NODE));
    db = restart_and_reopen(db);
    ck_assert(vfs_exists(wal));
    ck_assert_int_eq(query_int(db, "SELECT count(*) FROM t"), SYNCED_ROWS + UNSYNCED_ROWS + 1);
    assert_integrity_ok(db);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

START_TEST(deleted_file_lives_on_for_its_handle)
{
    struct raw_file raw;
    ck_assert_int_eq(raw_open(&raw, "gone"), SQLITE_OK);
    ck_assert_int_eq(raw_write(&raw, 'a', 0, PAGE), SQLITE_OK);
    ck_assert(vfs_exists(raw.path));
    sqlite3_vfs *vfs = sqlite3_vfs_find(faults_vfs_name(NODE));
    ck_assert_int_eq(vfs->xDelete(vfs, raw.path, 0), SQLITE_OK);
    ck_assert(!vfs_exists(raw.path));
    ck_assert_int_eq(vfs->xDelete(vfs, raw.path, 0), SQLITE_IOERR_DELETE_NOENT);
    ck_assert_uint_eq(faults_vfs_unsynced_bytes(NODE), 0); /* a delete is durable */
    char byte = 0;
    ck_assert_int_eq(raw.file->pMethods->xRead(raw.file, &byte, 1, PAGE - 1), SQLITE_OK);
    ck_assert_int_eq(byte, 'a');
    struct raw_file again;
    ck_assert_int_eq(raw_open(&again, "gone"), SQLITE_OK); /* a new, empty file */
    sqlite3_int64 size = -1;
    ck_assert_int_eq(again.file->pMethods->xFileSize(again.file, &size), SQLITE_OK);
    ck_assert_int_eq(size, 0);
    ck_assert_int_eq(again.file->pMethods->xRead(again.file, &byte, 1, 0),
                     SQLITE_IOERR_SHORT_READ);
    ck_assert_int_eq(byte, 0); /* a short read fills with zeros */
    raw_close(&again);
    raw_close(&raw);
}
END_TEST

#define TWIN_DISK   "twin-disk"
#define TWIN_MEMORY "twin-memory"

/* The same writes on a disk node and a memory node, the same power cut:
 * every byte of every file must come out the same. */
static void twin_writes(struct raw_file *raw)
{
    ck_assert_int_eq(raw_write(raw, 'a', 0, 3 * PAGE), SQLITE_OK);
    ck_assert_int_eq(raw_sync(raw), SQLITE_OK);
    ck_assert_int_eq(raw_write(raw, 'b', PAGE / 2, PAGE), SQLITE_OK);
    ck_assert_int_eq(raw_write(raw, 'c', 2 * PAGE + 100, 2 * PAGE), SQLITE_OK);
    ck_assert_int_eq(raw->file->pMethods->xTruncate(raw->file, 2 * PAGE + 700), SQLITE_OK);
    ck_assert_int_eq(raw_write(raw, 'd', 5 * PAGE, 1000), SQLITE_OK); /* past the end: a hole */
    ck_assert_int_eq(raw_write(raw, 'e', 300, 2 * SECTOR + 3), SQLITE_OK);
}

static unsigned char *posix_bytes(const char *path, int64_t *size)
{
    bool was = in_memory;
    in_memory = false;
    unsigned char *bytes = disk_bytes(path, size);
    in_memory = was;
    return bytes;
}

START_TEST(same_seed_same_bytes_on_disk_and_in_memory)
{
    struct faults_host disk = {0};
    struct faults_host memory = {.memory = true};
    ck_assert_int_eq(faults_vfs_register(TWIN_DISK, &disk), 0);
    ck_assert_int_eq(faults_vfs_register(TWIN_MEMORY, &memory), 0);
    bool differed = false;
    for (uint64_t seed = 0; seed < MODEL_SEEDS; seed++) {
        char disk_path[PATH_BYTES], memory_path[PATH_BYTES];
        snprintf(disk_path, sizeof disk_path, "%s/twin%d", dir, (int)seed);
        snprintf(memory_path, sizeof memory_path, "/check-vfs-memory/twin%d", (int)seed);
        struct raw_file on_disk, in_mem;
        ck_assert_int_eq(raw_open_at(&on_disk, TWIN_DISK, disk_path), SQLITE_OK);
        ck_assert_int_eq(raw_open_at(&in_mem, TWIN_MEMORY, memory_path), SQLITE_OK);
        twin_writes(&on_disk);
        twin_writes(&in_mem);
        ck_assert_uint_eq(faults_vfs_unsynced_bytes(TWIN_DISK),
                          faults_vfs_unsynced_bytes(TWIN_MEMORY));
        struct faults_rng rng_disk, rng_memory;
        faults_rng_seed(&rng_disk, seed, "twin");
        faults_rng_seed(&rng_memory, seed, "twin");
        struct faults_crash_stats st_disk, st_memory;
        ck_assert_int_eq(faults_vfs_crash(TWIN_DISK, FAULTS_CRASH_POWER, &rng_disk, &st_disk), 0);
        ck_assert_int_eq(
            faults_vfs_crash(TWIN_MEMORY, FAULTS_CRASH_POWER, &rng_memory, &st_memory), 0);
        ck_assert_mem_eq(&st_disk, &st_memory, sizeof st_disk);
        raw_close(&on_disk);
        raw_close(&in_mem);
        ck_assert_int_eq(faults_vfs_restart(TWIN_DISK), 0);
        ck_assert_int_eq(faults_vfs_restart(TWIN_MEMORY), 0);
        int64_t disk_size = 0, memory_size = 0;
        unsigned char *a = posix_bytes(disk_path, &disk_size);
        struct raw_file mem_again;
        ck_assert_int_eq(raw_open_at(&mem_again, TWIN_MEMORY, memory_path), SQLITE_OK);
        sqlite3_int64 n = 0;
        ck_assert_int_eq(mem_again.file->pMethods->xFileSize(mem_again.file, &n), SQLITE_OK);
        memory_size = n;
        ck_assert_int_eq(memory_size, disk_size);
        unsigned char *b = malloc((size_t)n + 1);
        ck_assert_ptr_nonnull(b);
        if (n > 0) {
            ck_assert_int_eq(mem_again.file->pMethods->xRead(mem_again.file, b, (int)n, 0),
                             SQLITE_OK);
        }
        raw_close(&mem_again);
        ck_assert_mem_eq(a, b, (size_t)n);
        differed |= disk_size != 3 * PAGE || run_of(a, 0, disk_size, 'a') != disk_size;
        free(a);
        free(b);
        unlink(disk_path);
    }
    ck_assert(differed); /* some seed changed the file from its synced image */
}
END_TEST

static void add_cases(Suite *suite, bool memory)
{
    void (*fixture)(void) = memory ? setup_memory : setup_disk;
    const char *where = memory ? "-memory" : "-disk";
    char name[3][32];
    snprintf(name[0], sizeof name[0], "disk-points%s", where);
    snprintf(name[1], sizeof name[1], "crashes%s", where);
    snprintf(name[2], sizeof name[2], "crash-model%s", where);

    TCase *faults = tcase_create(name[0]);
    tcase_add_checked_fixture(faults, fixture, teardown);
    tcase_add_test(faults, read_fault_fails_the_query_until_disarmed);
    tcase_add_test(faults, read_fault_reaches_a_warm_page_cache);
    tcase_add_test(faults, write_fault_is_ioerr_write);
    tcase_add_test(faults, fsync_fault_is_ioerr_fsync);
    tcase_add_test(faults, full_disk_is_sqlite_full);
    tcase_add_test(faults, enospc_on_write_is_sqlite_full);
    tcase_add_test(faults, eio_on_full_is_ioerr_write);
    tcase_add_test(faults, wildcard_on_the_node_fails_writes);
    tcase_add_test(faults, slow_disk_calls_the_host_with_the_delay);
    tcase_add_test(faults, reregistering_keeps_the_vfs_and_swaps_the_host);
    suite_add_tcase(suite, faults);

    TCase *crashes = tcase_create(name[1]);
    tcase_add_checked_fixture(crashes, fixture, teardown);
    tcase_add_test(crashes, power_cut_keeps_synced_rows_and_a_prefix_of_the_rest);
    tcase_add_test(crashes, power_cut_is_reproducible_by_seed);
    tcase_add_test(crashes, process_crash_keeps_unsynced_commits);
    tcase_add_test(crashes, no_power_cut_host_keeps_no_undo_but_still_faults);
    tcase_add_test(crashes, dead_incarnation_cannot_write);
    tcase_add_test(crashes, opening_while_down_fails);
    tcase_add_test(crashes, two_connections_share_one_database);
    tcase_add_test(crashes, a_writer_excludes_another_writer);
    tcase_add_test(crashes, last_close_checkpoints_and_a_reopen_recovers);
    suite_add_tcase(suite, crashes);

    TCase *model = tcase_create(name[2]);
    tcase_add_checked_fixture(model, fixture, teardown);
    tcase_add_test(model, overwrite_is_kept_dropped_or_torn_at_a_sector);
    tcase_add_test(model, newer_kept_write_wins_over_older_dropped_one);
    tcase_add_test(model, dropped_append_before_a_kept_one_leaves_a_hole);
    tcase_add_test(model, dropped_truncate_restores_the_tail);
    tcase_add_test(model, sync_on_any_handle_of_a_path_forgets_its_writes);
    tcase_add_test(model, process_crash_keeps_every_byte);
    tcase_add_test(model, dead_handle_refuses_every_disk_call);
    tcase_add_test(model, undo_limit_refuses_writes_with_ioerr_nomem);
    tcase_add_test(model, deleted_file_lives_on_for_its_handle);
    tcase_add_test(model, same_seed_same_bytes_on_disk_and_in_memory);
    suite_add_tcase(suite, model);
}

static Suite *vfs_suite(void)
{
    Suite *suite = suite_create("vfs");
    add_cases(suite, false);
    add_cases(suite, true);
    return suite;
}

int main(void)
{
    return check_run(vfs_suite());
}
