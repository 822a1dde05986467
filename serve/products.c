/*
 * products.c — /products: list (with ?category=, ?inStock=true, ?q=), get,
 * create, replace, delete. Reads go through the worker's reader; writes
 * through the writer's group commit.
 */
#include <civetweb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/internal.h"

#define PRODUCTS_STOCK_MAX 1000000000000LL /* units of one product */
#define PRODUCTS_QUERY_MAX 256             /* bytes of ?q= */

struct list_args {
    struct worker *w;
    const struct shop_product_filter *filter;
    int count;
};

/* Lists into the worker's array, growing it when the catalog outgrew it. */
static int list_read(shop *s, void *arg)
{
    struct list_args *a = arg;
    struct worker *w = a->w;
    for (;;) {
        int n = shop_product_list(s, a->filter, w->products, w->products_cap);
        if (n < 0 || (size_t)n <= w->products_cap) {
            a->count = n;
            return n < 0 ? n : 0;
        }
        if (n > SERVE_LIST_MAX)
            return -E2BIG;
        struct shop_product *p = realloc(w->products, (size_t)n * sizeof(*p));
        if (p == NULL)
            return -ENOMEM;
        w->products = p;
        w->products_cap = (size_t)n;
    }
}

/* Reads one query variable; 1 when absent, -EINVAL (replied) when too long. */
static int query_var(struct request *rq, const char *name, char *out, size_t cap)
{
    const char *qs = rq->ri->query_string;
    if (qs == NULL)
        return 1;
    int n = mg_get_var(qs, strlen(qs), name, out, cap);
    if (n == -1)
        return 1;
    if (n < 0) {
        snprintf(rq->detail, sizeof(rq->detail), "query parameter '%s' is too long", name);
        http_reply_error(rq, 400, "invalid query", rq->detail);
        return -EINVAL;
    }
    return 0;
}

static int parse_filter(struct request *rq, struct shop_product_filter *f, char *category,
                        char *query)
{
    char in_stock[8];
    int rc = query_var(rq, "category", category, SHOP_CATEGORY_MAX + 1);
    if (rc == 0)
        f->category = category;
    if (rc >= 0 && (rc = query_var(rq, "q", query, PRODUCTS_QUERY_MAX)) == 0)
        f->query = query;
    if (rc >= 0 && (rc = query_var(rq, "inStock", in_stock, sizeof(in_stock))) == 0) {
        if (strcmp(in_stock, "true") == 0 || strcmp(in_stock, "1") == 0) {
            f->in_stock_only = true;
        } else if (strcmp(in_stock, "false") != 0 && strcmp(in_stock, "0") != 0) {
            http_reply_error(rq, 400, "invalid query", "inStock must be true or false");
            return -EINVAL;
        }
    }
    return rc < 0 ? rc : 0;
}

/* Keeps this reply for the next GET /products with the same query. */
static void cache_store(struct worker *w, const char *key, uint64_t generation)
{
    struct buf *c = &w->products_cache.reply;
    size_t n = buf_body_len(&w->out);
    w->products_cache.valid = false;
    buf_reset(c);
    buf_put(c, buf_body(&w->out), n);
    if (c->oom)
        return;
    snprintf(w->products_cache.key, sizeof(w->products_cache.key), "%s", key);
    w->products_cache.generation = generation;
    w->products_cache.valid = true;
}

void products_list(struct request *rq)
{
    struct worker *w = rq->w;
    /* read before the database: a reply is never tagged newer than its data */
    unsigned hint = writer_read_hint(&rq->srv->writer);
    if (!rq->position_fixed) {
        rq->has_position = true;
        rq->position = writer_position(&rq->srv->writer, hint & READ_HINT_MIRROR_LEADS ? 1 : 0);
    }
    uint64_t generation = writer_generation(&rq->srv->writer);
    const char *key = rq->ri->query_string != NULL ? rq->ri->query_string : "";
    bool cacheable = strlen(key) < sizeof(w->products_cache.key);
    if (cacheable && w->products_cache.valid && w->products_cache.generation == generation &&
        strcmp(w->products_cache.key, key) == 0) {
        http_reply_bytes(rq, &w->products_cache.reply, 200, "application/json", NULL);
        return;
    }
    char category[SHOP_CATEGORY_MAX + 1], query[PRODUCTS_QUERY_MAX];
    struct shop_product_filter f = {0};
    if (parse_filter(rq, &f, category, query) < 0)
        return;
    struct list_args a = {.w = w, .filter = &f};
    int rc = worker_read(rq, list_read, &a);
    if (rc < 0) {
        http_reply_platform(rq, rc, rq->detail);
        return;
    }
    struct buf *b = &w->out;
    buf_reset(b);
    buf_puts(b, "[");
    for (int i = 0; i < a.count; i++) {
        if (i > 0)
            buf_puts(b, ",");
        json_product(b, &w->products[i]);
    }
    buf_puts(b, "]");
    if (cacheable)
        cache_store(w, key, generation);
    http_reply(rq, 200);
}

struct get_args {
    int64_t id;
    struct shop_product p;
};

static int get_read(shop *s, void *arg)
{
    struct get_args *a = arg;
    return shop_product_get(s, a->id, &a->p);
}

void products_get(struct request *rq)
{
    struct get_args a;
    if (http_arg_id(rq, 0, "a product id", &a.id) < 0)
        return;
    int rc = worker_read(rq, get_read, &a);
    if (rc < 0) {
        http_reply_platform(rq, rc, rq->detail);
        return;
    }
    buf_reset(&rq->w->out);
    json_product(&rq->w->out, &a.p);
    http_reply(rq, 200);
}

/* Fills p from the body: name, description?, category?, price, stock. */
static int parse_product(struct request *rq, struct shop_product *p)
{
    const char *name = NULL, *description = "", *category = "";
    int rc = json_get_str(rq->json, "name", SHOP_NAME_MAX, true, &name, rq->detail);
    if (rc >= 0)
        rc = json_get_str(rq->json, "description", SHOP_TEXT_MAX, false, &description,
                          rq->detail);
    if (rc >= 0)
        rc = json_get_str(rq->json, "category", SHOP_CATEGORY_MAX, false, &category, rq->detail);
    if (rc >= 0)
        rc = json_get_price(rq->json, "price", &p->price_cents, rq->detail);
    if (rc >= 0)
        rc = json_get_int(rq->json, "stock", 0, PRODUCTS_STOCK_MAX, true, &p->stock, rq->detail);
    if (rc < 0) {
        http_reply_error(rq, 400, "invalid product", rq->detail);
        return rc;
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->description, sizeof(p->description), "%s", description);
    snprintf(p->category, sizeof(p->category), "%s", category);
    return 0;
}

static void product_write(struct request *rq, enum job_kind kind, int64_t id)
{
    struct write_job job = {.kind = kind};
    if (http_read_json(rq) < 0 || parse_product(rq, &job.product) < 0)
        return;
    job.product.id = id;
    if (http_submit(rq, &job) < 0)
        return;
    if (job.rc < 0) {
        http_reply_platform(rq, (int)job.rc, job.detail);
        return;
    }
    if (kind == JOB_PRODUCT_CREATE)
        job.product.id = job.rc;
    buf_reset(&rq->w->out);
    json_product(&rq->w->out, &job.product);
    http_reply(rq, kind == JOB_PRODUCT_CREATE ? 201 : 200);
}

void products_create(struct request *rq)
{
    product_write(rq, JOB_PRODUCT_CREATE, 0);
}

void products_update(struct request *rq)
{
    int64_t id;
    if (http_arg_id(rq, 0, "a product id", &id) == 0)
        product_write(rq, JOB_PRODUCT_UPDATE, id);
}

void products_delete(struct request *rq)
{
    struct write_job job = {.kind = JOB_PRODUCT_DELETE};
    if (http_arg_id(rq, 0, "a product id", &job.id) < 0 || http_submit(rq, &job) < 0)
        return;
    if (job.rc < 0) {
        http_reply_platform(rq, (int)job.rc, job.detail);
        return;
    }
    buf_reset(&rq->w->out);
    http_reply(rq, 204);
}
