/*
 * cache.c — one replica's read cache: answers keyed by query, each valid
 * at a replica position, dropped when older than the ttl, when a change
 * touches its query (the caller decides which) or to make room (oldest
 * first, CACHE_ENTRIES_MAX at most). Pure: no clock, no shop, no network.
 * Part of libsim; used by cluster.c.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cluster.h"

void cache_init(struct cache *c, int64_t ttl_us, size_t max_entries)
{
    assert(ttl_us > 0);
    assert(max_entries >= 1 && max_entries <= CACHE_ENTRIES_MAX);
    memset(c, 0, sizeof(*c));
    c->ttl_us = ttl_us;
    c->max_entries = max_entries;
}

static void drop(struct cache_entry *e)
{
    free(e->seen);
    memset(e, 0, sizeof(*e));
}

void cache_release(struct cache *c)
{
    for (size_t i = 0; i < CACHE_ENTRIES_MAX; i++)
        if (c->e[i].used)
            drop(&c->e[i]);
}

static struct cache_entry *find(struct cache *c, int kind, int64_t arg)
{
    for (size_t i = 0; i < c->max_entries; i++)
        if (c->e[i].used && c->e[i].kind == kind && c->e[i].arg == arg)
            return &c->e[i];
    return NULL;
}

const struct cache_entry *cache_get(struct cache *c, int kind, int64_t arg, int64_t now_us)
{
    struct cache_entry *e = find(c, kind, arg);
    if (e != NULL && now_us - e->created_us >= c->ttl_us) {
        drop(e);
        c->expired++;
        e = NULL;
    }
    if (e == NULL)
        c->misses++;
    else
        c->hits++;
    return e;
}

/* A free slot, or the oldest entry's, evicted. */
static struct cache_entry *slot(struct cache *c)
{
    struct cache_entry *oldest = NULL;
    for (size_t i = 0; i < c->max_entries; i++) {
        if (!c->e[i].used)
            return &c->e[i];
        if (oldest == NULL || c->e[i].stamp < oldest->stamp)
            oldest = &c->e[i];
    }
    assert(oldest != NULL);
    drop(oldest);
    c->evicted++;
    return oldest;
}

int cache_put(struct cache *c, int kind, int64_t arg, int64_t position, int64_t now_us,
              const int64_t *seen, uint32_t seen_count)
{
    assert(seen_count == 0 || seen != NULL);
    int64_t *copy = NULL;
    if (seen_count > 0) {
        copy = malloc(seen_count * sizeof(*copy));
        if (copy == NULL)
            return -ENOMEM;
        memcpy(copy, seen, seen_count * sizeof(*copy));
    }
    struct cache_entry *e = find(c, kind, arg);
    if (e != NULL)
        drop(e);
    else
        e = slot(c);
    *e = (struct cache_entry){.used = true, .kind = kind, .arg = arg, .position = position,
                              .created_us = now_us, .stamp = c->next_stamp++,
                              .seen_count = seen_count, .seen = copy};
    return 0;
}

size_t cache_invalidate(struct cache *c, int kind, int64_t arg, bool any_arg)
{
    size_t n = 0;
    for (size_t i = 0; i < c->max_entries; i++) {
        struct cache_entry *e = &c->e[i];
        if (e->used && e->kind == kind && (any_arg || e->arg == arg)) {
            drop(e);
            n++;
        }
    }
    c->invalidated += n;
    return n;
}

void cache_advance(struct cache *c, int64_t position)
{
    for (size_t i = 0; i < c->max_entries; i++)
        if (c->e[i].used && c->e[i].position < position)
            c->e[i].position = position;
}

size_t cache_count(const struct cache *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->max_entries; i++)
        n += c->e[i].used;
    return n;
}
