/*
 * cache.c — a cluster replica's read cache (node.h, node_cache_*): answers
 * keyed by the host's query text, each with the position of the leader's
 * sequence it reflects and the rows it depends on (table, column = value,
 * or any row of a table). Under cache=on every change the replica applies
 * is decoded (change_for_each_value: the keys and values its rows carry)
 * and the entries it touches are dropped; the others are valid at the new
 * position. cache=naive (the workshop bug) never drops an entry for a
 * change. Both are bounded in age (ttl) and size (oldest first).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "platform/internal.h"
#include "platform/mutants.h"
#include "platform/node_impl.h"

#define TOUCHED_MAX 256 /* values of one change remembered; past it, whole tables */

struct dep {
    int table;
    int col;                /* -1: any row of the table */
    int64_t value;
};

struct entry {
    bool used;
    uint64_t hash;
    char *key;
    void *answer;
    size_t len;
    int64_t position, created_us;
    uint64_t stamp;         /* insertion order: the oldest goes first */
    uint32_t tables;        /* bit t: some dependency on table t */
    size_t dep_count;
    struct dep *deps;
};

struct node_cache {
    enum node_cache_mode mode;
    int64_t ttl_us;
    size_t max;
    uint64_t next_stamp;
    uint32_t watched[8];    /* per table: bit c when some entry depends on column c's value */
    uint64_t hits, misses, expired, invalidated, evicted, refused;
    struct entry e[NODE_CACHE_ENTRIES];
};

static uint64_t hash_key(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

struct node_cache *cache_new(enum node_cache_mode mode, int64_t ttl_us, size_t max_entries)
{
    assert(db_table_count <= 8);
    struct node_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->mode = mode;
    c->ttl_us = ttl_us > 0 ? ttl_us : NODE_CACHE_TTL_US;
    c->max = max_entries == 0 || max_entries > NODE_CACHE_ENTRIES ? NODE_CACHE_ENTRIES
                                                                   : max_entries;
    return c;
}

static void drop(struct entry *e)
{
    free(e->key);
    free(e->answer);
    free(e->deps);
    memset(e, 0, sizeof(*e));
}

void cache_clear(struct node_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->max; i++)
        if (c->e[i].used)
            drop(&c->e[i]);
    memset(c->watched, 0, sizeof(c->watched));
}

void cache_free(struct node_cache *c)
{
    cache_clear(c);
    free(c);
}

static struct entry *find(struct node_cache *c, const char *key, uint64_t hash)
{
    for (size_t i = 0; i < c->max; i++)
        if (c->e[i].used && c->e[i].hash == hash && strcmp(c->e[i].key, key) == 0)
            return &c->e[i];
    return NULL;
}

int cache_get(struct node_cache *c, const char *key, int64_t now_us, int64_t session,
              struct node_cache_hit *out)
{
    memset(out, 0, sizeof(*out));
    struct entry *e = find(c, key, hash_key(key));
    if (e != NULL && now_us - e->created_us >= c->ttl_us) {
        drop(e);
        c->expired++;
        e = NULL;
    }
    /* cache=on never answers older than what the client has seen; naive does */
    if (e == NULL || (c->mode == NODE_CACHE_ON && e->position < session)) {
        c->misses++;
        return -ENOENT;
    }
    c->hits++;
    out->answer = e->answer;
    out->len = e->len;
    out->position = e->position;
    out->age_us = now_us - e->created_us;
    return 0;
}

/* The table and column a dependency names; -EINVAL when the schema has none. */
static int resolve(const struct node_cache_dep *d, struct dep *out)
{
    for (size_t t = 0; d->table != NULL && t < db_table_count; t++) {
        if (strcmp(db_tables[t].name, d->table) != 0)
            continue;
        *out = (struct dep){.table = (int)t, .col = -1, .value = d->value};
        if (d->column == NULL)
            return 0;
        for (int col = 0; col < db_tables[t].ncol; col++)
            if (strcmp(db_tables[t].cols[col], d->column) == 0) {
                out->col = col;
                return 0;
            }
        return -EINVAL;
    }
    return -EINVAL;
}

static struct entry *slot_for(struct node_cache *c, const char *key, uint64_t hash)
{
    struct entry *e = find(c, key, hash), *oldest = NULL;
    if (e != NULL) {
        drop(e);
        return e;
    }
    for (size_t i = 0; i < c->max; i++) {
        if (!c->e[i].used)
            return &c->e[i];
        if (oldest == NULL || c->e[i].stamp < oldest->stamp)
            oldest = &c->e[i];
    }
    drop(oldest);
    c->evicted++;
    return oldest;
}

int cache_put(struct node_cache *c, const char *key, const struct node_cache_dep *deps,
              size_t dep_count, const void *answer, size_t len, int64_t position,
              int64_t now_us)
{
    if (len > NODE_CACHE_ANSWER_BYTES_MAX) {
        c->refused++;
        return -E2BIG;
    }
    /* more dependencies than kept exactly: any row of their tables (coarser, never wrong) */
    bool whole = dep_count > NODE_CACHE_DEPS_MAX;
    struct dep *kept = calloc(dep_count > 0 ? dep_count : 1, sizeof(*kept));
    char *k = strdup(key);
    void *a = len > 0 ? malloc(len) : NULL;
    if (kept == NULL || k == NULL || (len > 0 && a == NULL)) {
        free(kept);
        free(k);
        free(a);
        c->refused++;
        return -ENOMEM;
    }
    uint32_t tables = 0;
    size_t n = 0;
    for (size_t i = 0; i < dep_count; i++) {
        struct dep d;
        if (resolve(&deps[i], &d) != 0) {
            free(kept);
            free(k);
            free(a);
            c->refused++;
            return -EINVAL;
        }
        if (whole)
            d.col = -1;
        if (whole && (tables >> d.table & 1))
            continue;
        tables |= UINT32_C(1) << d.table;
        kept[n++] = d;
    }
    uint64_t hash = hash_key(key);
    struct entry *e = slot_for(c, key, hash);
    *e = (struct entry){.used = true, .hash = hash, .key = k, .answer = a, .len = len,
                        .position = position, .created_us = now_us,
                        .stamp = c->next_stamp++, .tables = tables, .dep_count = n,
                        .deps = kept};
    if (len > 0)
        memcpy(a, answer, len);
    for (size_t i = 0; i < n; i++)
        if (kept[i].col >= 0)
            c->watched[kept[i].table] |= UINT32_C(1) << kept[i].col;
    return 0;
}

/* ---- invalidation from change records ------------------------------------ */

struct touched {
    const struct node_cache *c;
    uint32_t tables;        /* rows of these tables changed */
    uint32_t overflow;      /* tables whose values did not all fit: every dep on them matches */
    size_t count;
    struct dep v[TOUCHED_MAX];
};

static int note_value(void *arg, int table, int col, int64_t value)
{
    struct touched *t = arg;
    if (mutant_is(MUTANT_CACHE_KEEPS_ORDERS) && strcmp(db_tables[table].name, "orders") == 0)
        return 0;
    if (mutant_is(MUTANT_CACHE_KEEPS_PRODUCTS) && strcmp(db_tables[table].name, "products") == 0)
        return 0;
    t->tables |= UINT32_C(1) << table;
    if (!(t->c->watched[table] >> col & 1))
        return 0;
    if (t->count == TOUCHED_MAX) {
        t->overflow |= UINT32_C(1) << table;
        return 0;
    }
    t->v[t->count++] = (struct dep){.table = table, .col = col, .value = value};
    return 0;
}

static bool touches(const struct touched *t, const struct entry *e)
{
    if ((e->tables & t->tables) == 0)
        return false;
    for (size_t i = 0; i < e->dep_count; i++) {
        const struct dep *d = &e->deps[i];
        if (!(t->tables >> d->table & 1))
            continue;
        if (d->col < 0 || (t->overflow >> d->table & 1))
            return true;
        for (size_t k = 0; k < t->count; k++)
            if (t->v[k].table == d->table && t->v[k].col == d->col && t->v[k].value == d->value)
                return true;
    }
    return false;
}

void cache_change(struct node_cache *c, const void *change, size_t len)
{
    if (c == NULL || c->mode != NODE_CACHE_ON)
        return;
    bool any = false;
    for (size_t i = 0; i < c->max && !any; i++)
        any = c->e[i].used;
    if (!any)
        return;
    struct touched t;
    t.c = c;
    t.tables = t.overflow = 0;
    t.count = 0;
    /* a record it cannot read touched everything, as far as it can tell */
    bool known = change_for_each_value(change, len, note_value, &t) == 0;
    for (size_t i = 0; i < c->max; i++) {
        if (c->e[i].used && (!known || touches(&t, &c->e[i]))) {
            drop(&c->e[i]);
            c->invalidated++;
        }
    }
}

void cache_advance(struct node_cache *c, int64_t position)
{
    if (c == NULL || c->mode != NODE_CACHE_ON)
        return;
    for (size_t i = 0; i < c->max; i++)
        if (c->e[i].used && c->e[i].position < position)
            c->e[i].position = position;
}

void cache_status(const struct node_cache *c, struct node_cache_status *out)
{
    memset(out, 0, sizeof(*out));
    if (c == NULL)
        return;
    out->mode = c->mode;
    out->ttl_us = c->ttl_us;
    out->max_entries = c->max;
    for (size_t i = 0; i < c->max; i++)
        out->entries += c->e[i].used;
    out->hits = c->hits;
    out->misses = c->misses;
    out->expired = c->expired;
    out->invalidated = c->invalidated;
    out->evicted = c->evicted;
    out->refused_puts = c->refused;
}
