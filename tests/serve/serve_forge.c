/*
 * serve_forge.c — the attacker's tools for the node-message tests: a batch
 * of the outbox that a replica would apply, and the MAC of a message under
 * a secret file (the wire format of serve/node_auth.c, written again here
 * from its description so the test does not borrow the code it checks).
 *
 *   serve_forge batch DIR SEQ OUT   makes a shop in DIR whose change SEQ
 *                                   creates product "Forged SEQ", and writes
 *                                   the batch of that one change to OUT
 *   serve_forge clusterbatch DIR SEQ OUT
 *                                   the same change as the node message a
 *                                   leader sends a replica (the platform's
 *                                   codec: the attacker knows the format)
 *   serve_forge probe OUT           a leader's probe, as a node message
 *   serve_forge mac SECRET FROM TO COUNTER BODY
 *                                   prints HMAC-SHA256 under SECRET's key of
 *                                   "faultdrill-node-1" NUL FROM NUL TO NUL
 *                                   COUNTER NUL NUL (no reply-to), then
 *                                   BODY's bytes
 */
#include <nettle/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/node_impl.h"
#include "platform/platform.h"

static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return 1700000000000000LL;
}

static int forge_batch(const char *dir, long seq, const char *out_path)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/forge.sqlite", dir);
    struct platform_env env = {.now_us = fixed_clock};
    struct shop_config cfg = {.topology = SHOP_SINGLE,
                              .primary = {.node = "leader", .path = path},
                              .sync_full = false,
                              .outbox = true};
    shop *s = NULL;
    char msg[SHOP_ERRMSG_MAX];
    if (shop_open(&cfg, &env, &s, msg) != 0) {
        fprintf(stderr, "serve_forge: %s\n", msg);
        return 3;
    }
    for (long i = 1; i <= seq; i++) {
        struct shop_product p = {.price_cents = 100, .stock = 1};
        snprintf(p.name, sizeof(p.name), "Forged %ld", i);
        if (shop_product_create(s, &p) < 0) {
            fprintf(stderr, "serve_forge: %s\n", shop_errmsg(s));
            return 3;
        }
    }
    struct shop_batch b = {0};
    int rc = shop_outbox_read(s, seq - 1, 1, 1u << 20, &b);
    if (rc != 0 || b.count != 1 || b.first_seq != seq) {
        fprintf(stderr, "serve_forge: no single change %ld in the outbox\n", seq);
        return 3;
    }
    FILE *f = fopen(out_path, "wb");
    if (f == NULL || fwrite(b.data, 1, b.len, f) != b.len || fclose(f) != 0) {
        perror(out_path);
        return 3;
    }
    shop_batch_release(&b);
    shop_close(s);
    return 0;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        return 3;
    }
    return 0;
}

/* The batch in OUT, wrapped as a node message of the given type. */
static int forge_node_msg(enum node_msg_type type, const char *path, int64_t a, int64_t b)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (type == NODE_MSG_CLUSTER_BATCH) {
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            perror(path);
            return 3;
        }
        static uint8_t in[1 << 20];
        len = fread(in, 1, sizeof(in), f);
        fclose(f);
        data = in;
    }
    struct node_msg m = {.type = type, .a = a, .b = b, .data = data, .len = len};
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (node_msg_encode(&m, &out, &out_len) != 0) {
        fprintf(stderr, "serve_forge: cannot encode the message\n");
        return 3;
    }
    int rc = write_file(path, out, out_len);
    free(out);
    return rc;
}

static int hex_value(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int forge_mac(char **a)
{
    FILE *f = fopen(a[0], "rb");
    char text[80] = "";
    if (f == NULL || fgets(text, sizeof(text), f) == NULL) {
        perror(a[0]);
        return 3;
    }
    fclose(f);
    uint8_t key[32];
    for (int i = 0; i < 32; i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            fprintf(stderr, "serve_forge: %s is not 64 hex digits\n", a[0]);
            return 3;
        }
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    struct hmac_sha256_ctx c;
    hmac_sha256_set_key(&c, sizeof(key), key);
    const char *fields[] = {"faultdrill-node-1", a[1], a[2], a[3], "" /* no reply-to */};
    for (int i = 0; i < 5; i++)
        hmac_sha256_update(&c, strlen(fields[i]) + 1, (const uint8_t *)fields[i]);
    f = fopen(a[4], "rb");
    if (f == NULL) {
        perror(a[4]);
        return 3;
    }
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        hmac_sha256_update(&c, n, chunk);
    fclose(f);
    uint8_t digest[SHA256_DIGEST_SIZE];
    hmac_sha256_digest(&c, sizeof(digest), digest);
    for (size_t i = 0; i < sizeof(digest); i++)
        printf("%02x", digest[i]);
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "batch") == 0 && atol(argv[3]) > 0)
        return forge_batch(argv[2], atol(argv[3]), argv[4]);
    if (argc == 5 && strcmp(argv[1], "clusterbatch") == 0 && atol(argv[3]) > 0) {
        int rc = forge_batch(argv[2], atol(argv[3]), argv[4]);
        return rc != 0 ? rc
                       : forge_node_msg(NODE_MSG_CLUSTER_BATCH, argv[4], atol(argv[3]),
                                        atol(argv[3]));
    }
    if (argc == 3 && strcmp(argv[1], "probe") == 0)
        return forge_node_msg(NODE_MSG_CLUSTER_PROBE, argv[2], 0, 0);
    if (argc == 7 && strcmp(argv[1], "mac") == 0)
        return forge_mac(argv + 2);
    fprintf(stderr, "usage: serve_forge batch|clusterbatch DIR SEQ OUT | probe OUT | mac SECRET FROM TO "
                    "COUNTER BODY\n");
    return 2;
}
