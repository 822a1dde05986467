/*
 * workload.c — what simulated clients do: pick the next operation from the
 * workload's mix, choose its arguments from the client's own seeded stream,
 * and, on the node that receives the request, serve it on the shop. The
 * results are recorded in the operation's history entry; the client learns
 * the outcome only when (and if) the reply reaches it. Part of libsim.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/world.h"

static const char *const search_words[] = {"tea", "mug", "lamp", "desk", "sock", "book"};
#define SEARCH_WORDS (sizeof(search_words) / sizeof(search_words[0]))

bool workload_is_write(enum drill_op kind)
{
    switch (kind) {
    case DRILL_OP_CART_ADD:
    case DRILL_OP_CART_REMOVE:
    case DRILL_OP_CHECKOUT:
    case DRILL_OP_ORDER_CANCEL:
    case DRILL_OP_USER_CREATE:
    case DRILL_OP_USER_UPDATE:
        return true;
    default:
        return false;
    }
}

enum drill_op workload_pick(struct sim *s, int client)
{
    struct world_client *c = &s->clients[client];
    const unsigned *mix = c->workload->mix;
    uint64_t total = 0;
    for (int k = 0; k < DRILL_OP_COUNT; k++)
        total += mix[k];
    if (total == 0)
        return DRILL_OP_BROWSE;
    uint64_t r = faults_rng_below(&c->rng, total);
    for (int k = 0; k < DRILL_OP_COUNT; k++) {
        if (r < mix[k])
            return (enum drill_op)k;
        r -= mix[k];
    }
    return DRILL_OP_BROWSE;
}

/* Arguments are drawn when the client issues the operation, not when it is
 * served, so a crash or a retry never changes what a client asked for. */
void workload_prepare(struct sim *s, struct sim_op *op)
{
    struct world_client *c = &s->clients[op->client];
    int products = s->drill->products > 0 ? s->drill->products : 1;
    op->user_id = c->user_id;
    if (op->product_id == 0)
        op->product_id = 1 + (int64_t)faults_rng_below(&c->rng, (uint64_t)products);
    if (op->qty == 0)
        op->qty = 1 + (int64_t)faults_rng_below(&c->rng, 3);
    if (op->kind == DRILL_OP_ORDER_CANCEL)
        op->order_id = c->order_count > 0 ? c->orders[c->order_count - 1] : 0;
    if (op->kind == DRILL_OP_USER_CREATE)
        c->created_users++;
    op->is_write = workload_is_write(op->kind);
}

/* Every read is one page, as a real client asks: its cost does not grow
 * with the shop (WORKLOAD_PAGE products, SIM_SEEN_MAX orders). */
#define WORKLOAD_PAGE 16

static int serve_browse(shop *sh, struct sim_op *op)
{
    struct shop_product list[WORKLOAD_PAGE];
    int n = shop_product_page(sh, NULL, 0, list, WORKLOAD_PAGE);
    if (n < 0)
        return n;
    struct shop_product p;
    return shop_product_get(sh, op->product_id, &p);
}

static int serve_search(shop *sh, struct sim_op *op)
{
    struct shop_product list[WORKLOAD_PAGE];
    struct shop_product_filter f = {.query = search_words[op->product_id % SEARCH_WORDS],
                                    .in_stock_only = true};
    int n = shop_product_page(sh, &f, 0, list, WORKLOAD_PAGE);
    return n < 0 ? n : 0;
}

/* The list goes to s->read_ids: session.c judges it once the read's position is known. */
static int serve_order_status(struct sim *s, shop *sh, struct sim_op *op)
{
    s->read_count = 0;
    s->read_truncated = false;
    int n = shop_order_page(sh, op->user_id, 0, s->read_ids, SIM_SEEN_MAX);
    if (n < 0)
        return n;
    s->read_count = (uint32_t)(n < SIM_SEEN_MAX ? n : SIM_SEEN_MAX);
    s->read_truncated = n >= SIM_SEEN_MAX;
    op->seen_count = s->read_count;
    return 0;
}

static int serve_user(struct sim *s, shop *sh, struct sim_op *op)
{
    struct world_client *c = &s->clients[op->client];
    char text[SHOP_EMAIL_MAX + 1];
    if (op->kind == DRILL_OP_USER_CREATE) {
        snprintf(text, sizeof(text), "c%d.%u@drill.example", op->client, c->created_users);
        int64_t id = shop_user_create(sh, "New shopper", text);
        op->user_id = id > 0 ? id : op->user_id;
        return id < 0 ? (int)id : 0;
    }
    snprintf(text, sizeof(text), "Shopper %u", op->id);
    return shop_user_update(sh, c->email, text, NULL);
}

void workload_serve(struct sim *s, shop *sh, struct sim_op *op)
{
    int err = 0;
    struct shop_order order;
    switch (op->kind) {
    case DRILL_OP_BROWSE:
        err = serve_browse(sh, op);
        break;
    case DRILL_OP_SEARCH:
        err = serve_search(sh, op);
        break;
    case DRILL_OP_CART_ADD:
        err = shop_cart_add(sh, op->user_id, op->product_id, op->qty);
        break;
    case DRILL_OP_CART_REMOVE:
        err = shop_cart_remove(sh, op->user_id, op->product_id);
        break;
    case DRILL_OP_CHECKOUT: {
        int64_t id = shop_checkout(sh, op->user_id, &order);
        err = id < 0 ? (int)id : 0;
        if (id > 0) {
            op->order_id = id;
            op->total_cents = order.total_cents;
        }
        break;
    }
    case DRILL_OP_ORDER_STATUS:
        err = serve_order_status(s, sh, op);
        break;
    case DRILL_OP_ORDER_CANCEL:
        err = op->order_id > 0 ? shop_order_set_status(sh, op->order_id, ORDER_CANCELLED)
                               : -ENOENT;
        break;
    case DRILL_OP_USER_CREATE:
    case DRILL_OP_USER_UPDATE:
        err = serve_user(s, sh, op);
        break;
    case DRILL_OP_COUNT:
        err = -EINVAL;
        break;
    }
    op->err = err;
}

/* The client heard "ok": what it now knows it owns. */
void workload_record_ack(struct sim *s, const struct sim_op *op)
{
    struct world_client *c = &s->clients[op->client];
    if (op->kind == DRILL_OP_CHECKOUT && op->order_id > 0) {
        if (c->order_count == WORLD_CLIENT_ORDERS_MAX) {
            memmove(c->orders, c->orders + 1, (WORLD_CLIENT_ORDERS_MAX - 1) * sizeof(int64_t));
            c->order_count--;
        }
        c->orders[c->order_count++] = op->order_id;
    } else if (op->kind == DRILL_OP_ORDER_CANCEL) {
        for (size_t i = 0; i < c->order_count; i++) {
            if (c->orders[i] == op->order_id) {
                memmove(c->orders + i, c->orders + i + 1,
                        (c->order_count - i - 1) * sizeof(int64_t));
                c->order_count--;
                break;
            }
        }
    }
}
