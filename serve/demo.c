/*
 * demo.c — the demo catalog a fresh data directory gets, so a student sees
 * a shop at once: twenty products in four categories and one user to sign
 * in as (ada@example.org). Fixed data, always the same; committed as one
 * group. Never added to a shop that already has products.
 */
#include <errno.h>
#include <stdio.h>

#include "serve/internal.h"

struct demo_product {
    const char *name, *category, *description;
    int64_t price_cents, stock;
};

static const struct demo_product demo_products[] = {
    {"Enamel mug", "kitchen", "A white enamel mug, 350 ml.", 1250, 40},
    {"Chef's knife", "kitchen", "20 cm carbon steel blade.", 5900, 12},
    {"Cast-iron pan", "kitchen", "26 cm, pre-seasoned.", 4490, 8},
    {"Tea towel", "kitchen", "Linen, striped.", 690, 60},
    {"Pepper mill", "kitchen", "Beech wood, ceramic grinder.", 2150, 20},
    {"Notebook A5", "stationery", "Dot grid, 120 pages.", 990, 80},
    {"Fountain pen", "stationery", "Steel nib, medium.", 3200, 15},
    {"Ink bottle", "stationery", "Blue-black, 50 ml.", 1100, 25},
    {"Desk lamp", "stationery", "Adjustable arm, warm LED.", 4800, 10},
    {"Pencil set", "stationery", "Twelve graphite grades.", 1450, 35},
    {"Trail shoes", "outdoor", "Light trail running shoes.", 11900, 9},
    {"Water bottle", "outdoor", "Insulated, 750 ml.", 2400, 50},
    {"Head torch", "outdoor", "300 lumens, rechargeable.", 3650, 18},
    {"Rain jacket", "outdoor", "Packable, taped seams.", 8900, 7},
    {"Camping stool", "outdoor", "Folding, aluminium.", 1990, 3},
    {"Paperback: The Pragmatic Programmer", "books", "20th anniversary edition.", 3990, 11},
    {"Paperback: Designing Data-Intensive Applications", "books", "Kleppmann.", 4500, 6},
    {"Paperback: SQLite internals", "books", "How the pager and the WAL work.", 2990, 4},
    {"Hardcover: Site Reliability Engineering", "books", "Google's SRE book.", 5200, 5},
    {"Zine: Fault injection for beginners", "books", "Twelve stapled pages.", 500, 0},
};

#define DEMO_COUNT (sizeof(demo_products) / sizeof(demo_products[0]))

static int demo_fn(shop *s, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < DEMO_COUNT; i++) {
        const struct demo_product *d = &demo_products[i];
        struct shop_product p = {.price_cents = d->price_cents, .stock = d->stock};
        snprintf(p.name, sizeof(p.name), "%s", d->name);
        snprintf(p.category, sizeof(p.category), "%s", d->category);
        snprintf(p.description, sizeof(p.description), "%s", d->description);
        int64_t id = shop_product_create(s, &p);
        if (id < 0)
            return (int)id;
    }
    int64_t uid = shop_user_create(s, "Ada Lovelace", "ada@example.org");
    return uid < 0 && uid != -EEXIST ? (int)uid : 0;
}

int demo_seed(shop *s)
{
    int n = shop_product_list(s, NULL, NULL, 0);
    if (n != 0)
        return n < 0 ? n : 0;
    int err = shop_group(s, demo_fn, NULL);
    return err < 0 ? err : (int)DEMO_COUNT;
}
