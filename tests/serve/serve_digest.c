/*
 * serve_digest.c — the serve tests' look inside a stopped server's data:
 * prints the digest (every domain table, rows in key order) of each
 * database file given, one per line, and exits 0 when they are all equal,
 * 1 when they differ, 3 when one cannot be read. Read-only handles: it
 * never recovers or changes a file.
 *
 *   serve_digest FILE...
 */
#include <stdio.h>
#include <string.h>

#include "platform/platform.h"

static int64_t no_clock(void *ctx)
{
    (void)ctx;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: serve_digest FILE...\n");
        return 2;
    }
    struct platform_env env = {.now_us = no_clock};
    char first[65] = "";
    int code = 0;
    for (int i = 1; i < argc; i++) {
        struct shop_copy copy = {.node = "primary", .path = argv[i]};
        shop *s = NULL;
        char msg[SHOP_ERRMSG_MAX];
        char hex[65];
        int rc = shop_open_reader(&copy, &env, &s, msg);
        if (rc == 0 && (rc = shop_digest(s, 0, hex)) != 0)
            snprintf(msg, sizeof(msg), "%s", shop_errmsg(s));
        shop_close(s);
        if (rc != 0) {
            fprintf(stderr, "serve_digest: %s: %s\n", argv[i], msg);
            return 3;
        }
        printf("%s  %s\n", hex, argv[i]);
        if (i == 1)
            memcpy(first, hex, sizeof(first));
        else if (strcmp(first, hex) != 0)
            code = 1;
    }
    return code;
}
