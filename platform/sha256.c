/*
 * sha256.c — SHA-256 (FIPS 180-4) for content digests of a copy and the
 * trace digest of a run, computed by Nettle (a well-kept library, Debian
 * nettle-dev): nothing cryptographic is hand-written here. The digests are
 * the standard ones, so every stored or reported digest stays what it was.
 */
#include <nettle/sha2.h>

/* Nettle's header maps these names onto its own by macro; ours are the
 * platform's (internal.h). */
#undef sha256_init
#undef sha256_update
#undef sha256_digest

#include "platform/internal.h"

_Static_assert(sizeof(struct sha256_ctx) <= SHA256_STATE_BYTES,
               "struct sha256 holds Nettle's sha256_ctx");
_Static_assert(_Alignof(struct sha256_ctx) <= 8, "struct sha256 is aligned for sha256_ctx");

static struct sha256_ctx *ctx_of(struct sha256 *c)
{
    return (struct sha256_ctx *)(void *)c->state;
}

void sha256_init(struct sha256 *c)
{
    nettle_sha256_init(ctx_of(c));
}

void sha256_update(struct sha256 *c, const void *data, size_t len)
{
    if (len > 0)
        nettle_sha256_update(ctx_of(c), len, data);
}

void sha256_final(struct sha256 *c, uint8_t out[32])
{
    nettle_sha256_digest(ctx_of(c), SHA256_DIGEST_SIZE, out);
}

void sha256_hex(const uint8_t digest[32], char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = '\0';
}

void platform_sha256_hex(const void *data, size_t len, char hex[65])
{
    struct sha256 c;
    uint8_t out[32];
    sha256_init(&c);
    sha256_update(&c, data, len);
    sha256_final(&c, out);
    sha256_hex(out, hex);
}
