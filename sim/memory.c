/*
 * memory.c — SQLite's memory in the simulator: size classes with free lists
 * in place of malloc and free. A simulated operation makes about fifty
 * SQLite allocations (Debian's SQLite is built without lookaside memory),
 * and each malloc/free pair through glibc cost more than the allocation is
 * worth; here a free block goes on its class's list and the next request of
 * that class takes it back (LIFO reuse, no coalescing, no locks).
 *
 * Only for a single-threaded process that runs simulations (the simulator
 * is one thread; sweeps fork workers): installed by sim_run through
 * SQLITE_CONFIG_MALLOC, which SQLite accepts only before its first use in
 * the process. Not installed in a sanitizer build, so that ASan keeps
 * seeing every SQLite allocation. Memory taken from the system is kept for
 * reuse until the process ends: a run's SQLite memory is bounded (page
 * caches, statements) and the next run takes the same blocks again.
 *
 * Depends on SQLite's sqlite3_mem_methods and the C library.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sim/world.h"

/* A sanitizer build keeps the system allocator: gcc says so with
 * __SANITIZE_ADDRESS__, clang (the fuzz build) with __has_feature, and
 * CMake defines FAULTDRILL_SYSTEM_MALLOC for both sanitizer builds. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_SYSTEM_MALLOC 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(FAULTDRILL_SYSTEM_MALLOC)
#define MEM_SYSTEM_MALLOC 1
#endif

#if !defined(MEM_SYSTEM_MALLOC)

#define MEM_ALIGN        16                    /* what malloc gives; SQLite needs 8 */
#define MEM_HEADER       16                    /* a block's class (or size), kept aligned */
#define MEM_SMALL_MAX    1024                  /* classes of MEM_ALIGN bytes up to this */
#define MEM_LARGE_STEP   512                   /* then classes of this step... */
#define MEM_CLASSED_MAX  (16 * 1024)           /* ...up to this; larger blocks are malloc's */
#define MEM_SMALL_COUNT  (MEM_SMALL_MAX / MEM_ALIGN)
#define MEM_CLASS_COUNT  (MEM_SMALL_COUNT + (MEM_CLASSED_MAX - MEM_SMALL_MAX) / MEM_LARGE_STEP)
#define MEM_CHUNK_BYTES  (256 * 1024)          /* taken from malloc at a time for the classes */
#define MEM_UNCLASSED    UINT64_MAX            /* header of a block of malloc's own */

/* A free block's payload holds the next free block of its class. */
struct mem_free {
    struct mem_free *next;
};

struct mem_state {
    struct mem_free *free[MEM_CLASS_COUNT];
    unsigned char *chunk; /* carving: [chunk, chunk_end) is not handed out yet */
    unsigned char *chunk_end;
};

static struct mem_state mem;

/* The class of a request of n bytes (n <= MEM_CLASSED_MAX). */
static size_t mem_class(size_t n)
{
    if (n <= MEM_SMALL_MAX)
        return n == 0 ? 0 : (n - 1) / MEM_ALIGN;
    return MEM_SMALL_COUNT + (n - MEM_SMALL_MAX - 1) / MEM_LARGE_STEP;
}

static size_t mem_class_bytes(size_t c)
{
    if (c < MEM_SMALL_COUNT)
        return (c + 1) * MEM_ALIGN;
    return MEM_SMALL_MAX + (c - MEM_SMALL_COUNT + 1) * MEM_LARGE_STEP;
}

static uint64_t *mem_header(void *p)
{
    return (uint64_t *)((unsigned char *)p - MEM_HEADER);
}

/* A new block of class c from the current chunk (a new chunk when it is
 * spent; the rest of the old one is left unused). */
static void *mem_carve(size_t c)
{
    size_t need = MEM_HEADER + mem_class_bytes(c);
    if (mem.chunk == NULL || (size_t)(mem.chunk_end - mem.chunk) < need) {
        unsigned char *fresh = malloc(MEM_CHUNK_BYTES);
        if (fresh == NULL)
            return NULL;
        mem.chunk = fresh;
        mem.chunk_end = fresh + MEM_CHUNK_BYTES;
    }
    unsigned char *block = mem.chunk;
    mem.chunk += need;
    *(uint64_t *)block = c;
    return block + MEM_HEADER;
}

static void *mem_malloc(int bytes)
{
    size_t n = bytes > 0 ? (size_t)bytes : 1;
    if (n > MEM_CLASSED_MAX) {
        unsigned char *block = malloc(MEM_HEADER + n);
        if (block == NULL)
            return NULL;
        *(uint64_t *)block = MEM_UNCLASSED;
        *(uint64_t *)(block + 8) = n;
        return block + MEM_HEADER;
    }
    size_t c = mem_class(n);
    struct mem_free *f = mem.free[c];
    if (f != NULL) {
        mem.free[c] = f->next;
        return f;
    }
    return mem_carve(c);
}

static void mem_free(void *p)
{
    if (p == NULL)
        return;
    uint64_t c = *mem_header(p);
    if (c == MEM_UNCLASSED) {
        free(mem_header(p));
        return;
    }
    assert(c < MEM_CLASS_COUNT);
    struct mem_free *f = p;
    f->next = mem.free[c];
    mem.free[c] = f;
}

static int mem_size(void *p)
{
    uint64_t c = *mem_header(p);
    if (c == MEM_UNCLASSED)
        return (int)mem_header(p)[1];
    return (int)mem_class_bytes((size_t)c);
}

static void *mem_realloc(void *p, int bytes)
{
    size_t have = (size_t)mem_size(p);
    size_t want = bytes > 0 ? (size_t)bytes : 1;
    if (want <= have)
        return p; /* it still fits its block */
    void *q = mem_malloc(bytes);
    if (q == NULL)
        return NULL;
    memcpy(q, p, want < have ? want : have);
    mem_free(p);
    return q;
}

static int mem_roundup(int bytes)
{
    size_t n = bytes > 0 ? (size_t)bytes : 1;
    if (n > MEM_CLASSED_MAX)
        return (int)((n + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN);
    return (int)mem_class_bytes(mem_class(n));
}

static int mem_init(void *app)
{
    (void)app;
    return SQLITE_OK;
}

static void mem_shutdown(void *app)
{
    (void)app;
}

#endif /* !MEM_SYSTEM_MALLOC */

void sim_memory_install(void)
{
#if defined(MEM_SYSTEM_MALLOC)
    /* ASan must see SQLite's allocations one by one. */
#else
    static const sqlite3_mem_methods methods = {
        .xMalloc = mem_malloc,
        .xFree = mem_free,
        .xRealloc = mem_realloc,
        .xSize = mem_size,
        .xRoundup = mem_roundup,
        .xInit = mem_init,
        .xShutdown = mem_shutdown,
    };
    /* Refused (SQLITE_MISUSE) once SQLite is in use: then malloc stays. */
    sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);
#endif
}
