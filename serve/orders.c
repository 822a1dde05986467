/*
 * orders.c — /orders: create {userId, products:[{productId, quantity}]}
 * (201, or 409 when a product lacks stock: the whole order is refused),
 * a user's orders newest first, and status changes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/internal.h"

#define ORDERS_ID_MAX 9007199254740991LL /* 2^53 - 1: what a JSON number holds exactly */

/* Parses products:[{productId, quantity}] into lines; replies 400 on error. */
static int parse_lines(struct request *rq, struct shop_order_line *lines, size_t *count)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(rq->json, "products");
    int rc = 0;
    *count = 0;
    if (!cJSON_IsArray(arr)) {
        snprintf(rq->detail, sizeof(rq->detail), "field 'products' must be a list of "
                                                 "{productId, quantity}");
        rc = -EINVAL;
    } else if (cJSON_GetArraySize(arr) == 0) {
        snprintf(rq->detail, sizeof(rq->detail), "an order needs at least one product");
        rc = -EINVAL;
    } else if (cJSON_GetArraySize(arr) > SHOP_ORDER_LINES_MAX) {
        snprintf(rq->detail, sizeof(rq->detail), "an order holds at most %d lines",
                 SHOP_ORDER_LINES_MAX);
        rc = -EINVAL;
    }
    const cJSON *it = NULL;
    if (rc == 0) {
        cJSON_ArrayForEach(it, arr) {
            struct shop_order_line *l = &lines[*count];
            if (!cJSON_IsObject(it)) {
                snprintf(rq->detail, sizeof(rq->detail), "products[%zu] must be an object",
                         *count);
                rc = -EINVAL;
            }
            if (rc == 0)
                rc = json_get_int(it, "productId", 1, ORDERS_ID_MAX, true, &l->product_id,
                                  rq->detail);
            if (rc == 0)
                rc = json_get_int(it, "quantity", 1, SHOP_QTY_MAX, true, &l->quantity,
                                  rq->detail);
            if (rc != 0)
                break;
            (*count)++;
        }
    }
    if (rc != 0)
        http_reply_error(rq, 400, "invalid order", rq->detail);
    return rc;
}

void orders_create(struct request *rq)
{
    struct shop_order_line lines[SHOP_ORDER_LINES_MAX];
    struct shop_order order;
    struct write_job job = {.kind = JOB_ORDER_CREATE, .lines = lines, .order = &order};
    if (http_read_json(rq) < 0)
        return;
    int rc = json_get_int(rq->json, "userId", 1, ORDERS_ID_MAX, true, &job.id, rq->detail);
    if (rc < 0) {
        http_reply_error(rq, 400, "invalid order", rq->detail);
        return;
    }
    if (parse_lines(rq, lines, &job.line_count) < 0 || http_submit(rq, &job) < 0)
        return;
    if (job.rc < 0) {
        http_reply_platform(rq, (int)job.rc, job.detail);
        return;
    }
    buf_reset(&rq->w->out);
    json_order(&rq->w->out, &order);
    http_reply(rq, 201);
}

struct list_args {
    struct worker *w;
    int64_t user_id;
    int count;
    struct shop_order order;
    struct buf *out;
};

/* The user's order ids, newest first, into the worker's array. */
static int ids_read(shop *s, struct list_args *a)
{
    struct worker *w = a->w;
    for (;;) {
        int n = shop_order_list(s, a->user_id, w->ids, w->ids_cap);
        if (n < 0 || (size_t)n <= w->ids_cap) {
            a->count = n;
            return n < 0 ? n : 0;
        }
        if (n > SERVE_LIST_MAX)
            return -E2BIG;
        int64_t *ids = realloc(w->ids, (size_t)n * sizeof(*ids));
        if (ids == NULL)
            return -ENOMEM;
        w->ids = ids;
        w->ids_cap = (size_t)n;
    }
}

static int list_read(shop *s, void *arg)
{
    struct list_args *a = arg;
    int rc = ids_read(s, a);
    buf_reset(a->out);
    buf_puts(a->out, "[");
    for (int i = 0; rc == 0 && i < a->count; i++) {
        rc = shop_order_get(s, a->w->ids[i], &a->order);
        if (rc == 0) {
            if (i > 0)
                buf_puts(a->out, ",");
            json_order(a->out, &a->order);
        }
    }
    buf_puts(a->out, "]");
    return rc;
}

void orders_list(struct request *rq)
{
    struct list_args a = {.w = rq->w, .out = &rq->w->out};
    if (http_arg_id(rq, 0, "a user id", &a.user_id) < 0)
        return;
    int rc = worker_read(rq, list_read, &a);
    if (rc < 0)
        http_reply_platform(rq, rc, rq->detail);
    else
        http_reply(rq, 200);
}

struct order_args {
    int64_t id;
    struct shop_order order;
};

static int order_read(shop *s, void *arg)
{
    struct order_args *a = arg;
    return shop_order_get(s, a->id, &a->order);
}

void orders_set_status(struct request *rq)
{
    struct write_job job = {.kind = JOB_ORDER_STATUS};
    const char *status = NULL;
    if (http_arg_id(rq, 0, "an order id", &job.id) < 0 || http_read_json(rq) < 0)
        return;
    int rc = json_get_str(rq->json, "status", 16, true, &status, rq->detail);
    if (rc == 0 && shop_order_status_parse(status, &job.status) != 0) {
        snprintf(rq->detail, sizeof(rq->detail),
                 "status must be pending, shipped, delivered or cancelled, not '%s'", status);
        rc = -EINVAL;
    }
    if (rc < 0) {
        http_reply_error(rq, 400, "invalid status", rq->detail);
        return;
    }
    if (http_submit(rq, &job) < 0)
        return;
    if (job.rc < 0) {
        http_reply_platform(rq, (int)job.rc, job.detail);
        return;
    }
    struct order_args a = {.id = job.id};
    rc = worker_read(rq, order_read, &a);
    if (rc < 0) {
        http_reply_platform(rq, rc, rq->detail);
        return;
    }
    buf_reset(&rq->w->out);
    json_order(&rq->w->out, &a.order);
    http_reply(rq, 200);
}
