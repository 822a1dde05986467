/*
 * cart.c — /cart/:userId: add {productId, quantity}, get, remove one
 * product, checkout (the cart becomes one order, atomically: 409 when a
 * product lacks stock, 400 when the cart is empty). Every cart reply is the
 * cart as it stands after the write, with product names and subtotals.
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

int cart_render(struct request *rq, int64_t user_id)
{
    struct render_args a = {.user_id = user_id, .out = &rq->w->out};
    return worker_read(rq, render_read, &a);
}

static void reply_cart(struct request *rq, int64_t user_id)
{
    int rc = cart_render(rq, user_id);
    if (rc < 0)
        http_reply_platform(rq, rc, rq->detail);
    else
        http_reply(rq, 200);
}

/* Runs a cart write and replies with the cart, or the error. */
static void cart_write(struct request *rq, struct write_job *job)
{
    if (http_submit(rq, job) < 0)
        return;
    if (job->rc < 0)
        http_reply_platform(rq, (int)job->rc, job->detail);
    else
        reply_cart(rq, job->id);
}

void cart_add(struct request *rq)
{
    struct write_job job = {.kind = JOB_CART_ADD};
    if (http_arg_id(rq, 0, "a user id", &job.id) < 0 || http_read_json(rq) < 0)
        return;
    int rc = json_get_int(rq->json, "productId", 1, CART_ID_MAX, true, &job.id2, rq->detail);
    if (rc == 0)
        rc = json_get_int(rq->json, "quantity", 1, SHOP_QTY_MAX, true, &job.quantity,
                          rq->detail);
    if (rc < 0) {
        http_reply_error(rq, 400, "invalid cart item", rq->detail);
        return;
    }
    cart_write(rq, &job);
}

void cart_get(struct request *rq)
{
    int64_t user_id;
    if (http_arg_id(rq, 0, "a user id", &user_id) == 0)
        reply_cart(rq, user_id);
}

void cart_remove(struct request *rq)
{
    struct write_job job = {.kind = JOB_CART_REMOVE};
    if (http_arg_id(rq, 0, "a user id", &job.id) == 0 &&
        http_arg_id(rq, 1, "a product id", &job.id2) == 0)
        cart_write(rq, &job);
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
