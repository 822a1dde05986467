/*
 * cart.c — the carts, on two sets of routes.
 *
 * The workshop's own (DESIGN.md §7), with its semantics and shapes so its
 * front end works unchanged: POST /cart/:userId {productId, quantity} SETS
 * that product's quantity; GET /cart/:userId is the cart as an object
 * mapping product id to quantity ({"2": 3}); DELETE
 * /cart/:userId/item/:productId removes one product and answers the map.
 *
 * The project's front end's richer view: /shop/cart/:userId (GET, POST that
 * ADDS the quantity, DELETE .../item/:productId) answers the cart with
 * product names, prices and subtotals.
 *
 * POST /cart/:userId/checkout turns the cart into one order, atomically
 * (409 when a product lacks stock, 400 when the cart is empty).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "serve/internal.h"

#define CART_ID_MAX 9007199254740991LL /* 2^53 - 1 */

struct render_args {
    int64_t user_id;
    struct buf *out;
    struct shop_cart_item items[SHOP_ORDER_LINES_MAX];
    struct shop_product p;
};

static int render_read(shop *s, void *arg)
{
    struct render_args *a = arg;
    int n = shop_cart_get(s, a->user_id, a->items, SHOP_ORDER_LINES_MAX);
    if (n < 0)
        return n;
    if (n > SHOP_ORDER_LINES_MAX)
        n = SHOP_ORDER_LINES_MAX; /* the platform keeps a cart within this */
    struct buf *b = a->out;
    int64_t total = 0;
    buf_reset(b);
    buf_puts(b, "{\"userId\":");
    buf_i64(b, a->user_id);
    buf_puts(b, ",\"items\":[");
    for (int i = 0; i < n; i++) {
        const struct shop_cart_item *it = &a->items[i];
        int rc = shop_product_get(s, it->product_id, &a->p);
        if (rc < 0)
            return rc;
        buf_puts(b, i ? ",{\"productId\":" : "{\"productId\":");
        buf_i64(b, it->product_id);
        buf_puts(b, ",\"name\":");
        json_str(b, a->p.name);
        buf_puts(b, ",\"quantity\":");
        buf_i64(b, it->quantity);
        buf_puts(b, ",\"price\":");
        json_money(b, it->unit_price_cents);
        buf_puts(b, ",\"subtotal\":");
        json_money(b, it->unit_price_cents * it->quantity);
        buf_puts(b, "}");
        total += it->unit_price_cents * it->quantity;
    }
    buf_puts(b, "],\"total\":");
    json_money(b, total);
    buf_puts(b, "}");
    return 0;
}

/* The workshop's shape: {"<productId>": quantity, ...}. */
static int map_read(shop *s, void *arg)
{
    struct render_args *a = arg;
    int n = shop_cart_get(s, a->user_id, a->items, SHOP_ORDER_LINES_MAX);
    if (n < 0)
        return n;
    if (n > SHOP_ORDER_LINES_MAX)
        n = SHOP_ORDER_LINES_MAX; /* the platform keeps a cart within this */
    struct buf *b = a->out;
    buf_reset(b);
    buf_puts(b, "{");
    for (int i = 0; i < n; i++) {
        buf_puts(b, i ? ",\"" : "\"");
        buf_i64(b, a->items[i].product_id);
        buf_puts(b, "\":");
        buf_i64(b, a->items[i].quantity);
    }
    buf_puts(b, "}");
    return 0;
}

enum cart_shape { CART_MAP, CART_VIEW };

static void reply_cart(struct request *rq, int64_t user_id, enum cart_shape shape)
{
    struct render_args a = {.user_id = user_id, .out = &rq->w->out};
    int rc = worker_read(rq, shape == CART_MAP ? map_read : render_read, &a);
    if (rc < 0)
        http_reply_platform(rq, rc, rq->detail);
    else
        http_reply(rq, 200);
}

/* Runs a cart write and replies with the cart, or the error. */
static void cart_write(struct request *rq, struct write_job *job, enum cart_shape shape)
{
    if (http_submit(rq, job) < 0)
        return;
    if (job->rc < 0)
        http_reply_platform(rq, (int)job->rc, job->detail);
    else
        reply_cart(rq, job->id, shape);
}

/* POST {productId, quantity}: the job's product and quantity, or 400. */
static int read_item(struct request *rq, struct write_job *job)
{
    if (http_arg_id(rq, 0, "a user id", &job->id) < 0 || http_read_json(rq) < 0)
        return -1;
    int rc = json_get_int(rq->json, "productId", 1, CART_ID_MAX, true, &job->id2, rq->detail);
    if (rc == 0)
        rc = json_get_int(rq->json, "quantity", 1, SHOP_QTY_MAX, true, &job->quantity,
                          rq->detail);
    if (rc < 0) {
        http_reply_error(rq, 400, "invalid cart item", rq->detail);
        return -1;
    }
    return 0;
}

void cart_set(struct request *rq)
{
    struct write_job job = {.kind = JOB_CART_SET};
    if (read_item(rq, &job) == 0)
        cart_write(rq, &job, CART_MAP);
}

void cart_get(struct request *rq)
{
    int64_t user_id;
    if (http_arg_id(rq, 0, "a user id", &user_id) == 0)
        reply_cart(rq, user_id, CART_MAP);
}

static void remove_item(struct request *rq, enum cart_shape shape)
{
    struct write_job job = {.kind = JOB_CART_REMOVE};
    if (http_arg_id(rq, 0, "a user id", &job.id) == 0 &&
        http_arg_id(rq, 1, "a product id", &job.id2) == 0)
        cart_write(rq, &job, shape);
}

void cart_remove(struct request *rq)
{
    remove_item(rq, CART_MAP);
}

void cart_view_add(struct request *rq)
{
    struct write_job job = {.kind = JOB_CART_ADD};
    if (read_item(rq, &job) == 0)
        cart_write(rq, &job, CART_VIEW);
}

void cart_view_get(struct request *rq)
{
    int64_t user_id;
    if (http_arg_id(rq, 0, "a user id", &user_id) == 0)
        reply_cart(rq, user_id, CART_VIEW);
}

void cart_view_remove(struct request *rq)
{
    remove_item(rq, CART_VIEW);
}

void cart_checkout(struct request *rq)
{
    struct shop_order order;
    struct write_job job = {.kind = JOB_CHECKOUT, .order = &order};
    if (http_arg_id(rq, 0, "a user id", &job.id) < 0 || http_submit(rq, &job) < 0)
        return;
    if (job.rc < 0) {
        http_reply_platform(rq, (int)job.rc, job.detail);
        return;
    }
    buf_reset(&rq->w->out);
    json_order(&rq->w->out, &order);
    http_reply(rq, 201);
}
