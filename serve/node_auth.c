/*
 * node_auth.c — the cluster secret and the MAC of node messages.
 *
 * The secret is 32 random bytes from the kernel, kept as 64 hex digits in a
 * file only its owner can read (created by the first node at its first
 * start, or given with --secret-file). A message's MAC is HMAC-SHA256
 * (Nettle) over a label, the sender, the receiver, the sender's counter and
 * the body, each field ended by a NUL (node names and counters hold none,
 * so no two messages share an input); a reply's MAC adds its status and is
 * bound to the request by the request's counter. Knows nothing of HTTP.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/nodes.h"

#define AUTH_SECRET_TEXT (2 * AUTH_SECRET_BYTES)

static const char hex_digits[] = "0123456789abcdef";

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int secret_create(const char *path, char *why, size_t cap)
{
    uint8_t raw[AUTH_SECRET_BYTES];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        snprintf(why, cap, "no random bytes from the kernel: %s", strerror(errno));
        return -EIO;
    }
    char text[AUTH_SECRET_TEXT + 1];
    for (size_t i = 0; i < sizeof(raw); i++) {
        text[2 * i] = hex_digits[raw[i] >> 4];
        text[2 * i + 1] = hex_digits[raw[i] & 15];
    }
    text[AUTH_SECRET_TEXT] = '\n';
    memset(raw, 0, sizeof(raw));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int err = errno;
        if (err == EEXIST)
            return 0; /* another node made it first: read theirs */
        snprintf(why, cap, "cannot create the cluster secret %s: %s", path, strerror(err));
        return -err;
    }
    int err = 0;
    if (write(fd, text, sizeof(text)) != (ssize_t)sizeof(text) || fsync(fd) != 0)
        err = errno != 0 ? errno : EIO;
    if (close(fd) != 0 && err == 0)
        err = errno;
    memset(text, 0, sizeof(text));
    if (err != 0) {
        unlink(path);
        snprintf(why, cap, "cannot write the cluster secret %s: %s", path, strerror(err));
        return -err;
    }
    return 0;
}

static int secret_parse(const char *text, size_t len, struct auth_key *key)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len != AUTH_SECRET_TEXT)
        return -EINVAL;
    for (size_t i = 0; i < AUTH_SECRET_BYTES; i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        key->bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int auth_secret_load(const char *path, bool create, struct auth_key *key, char *why, size_t cap)
{
    int err = create ? secret_create(path, why, cap) : 0;
    if (err)
        return err;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        err = errno;
        snprintf(why, cap, "cannot read the cluster secret %s: %s", path, strerror(err));
        return -err;
    }
    struct stat st;
    char text[AUTH_SECRET_TEXT + 8];
    ssize_t n = -1;
    if (fstat(fd, &st) != 0) {
        err = -errno;
        snprintf(why, cap, "cannot read the cluster secret %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        err = -EINVAL;
        snprintf(why, cap, "the cluster secret %s is not a regular file", path);
    } else if ((st.st_mode & 077) != 0) {
        err = -EPERM;
        snprintf(why, cap,
                 "the cluster secret %s may be read or written by others (mode %03o): "
                 "chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
    } else if (st.st_uid != geteuid()) {
        err = -EPERM;
        snprintf(why, cap, "the cluster secret %s belongs to another user", path);
    } else if ((n = read(fd, text, sizeof(text))) < 0) {
        err = -errno;
        snprintf(why, cap, "cannot read the cluster secret %s: %s", path, strerror(errno));
    } else if (secret_parse(text, (size_t)n, key) != 0) {
        err = -EINVAL;
        snprintf(why, cap, "the cluster secret %s is not %d hex digits", path, AUTH_SECRET_TEXT);
    }
    memset(text, 0, sizeof(text));
    close(fd);
    return err;
}

static void mac_field(struct hmac_sha256_ctx *c, const char *s)
{
    hmac_sha256_update(c, strlen(s) + 1, (const uint8_t *)s);
}

static void mac_number(struct hmac_sha256_ctx *c, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%" PRIu64, v);
    mac_field(c, text);
}

static void mac_finish(struct hmac_sha256_ctx *c, const void *body, size_t len,
                       char hex[AUTH_MAC_HEX + 1])
{
    if (len > 0)
        hmac_sha256_update(c, len, body);
    uint8_t digest[SHA256_DIGEST_SIZE];
    hmac_sha256_digest(c, sizeof(digest), digest);
    for (size_t i = 0; i < sizeof(digest); i++) {
        hex[2 * i] = hex_digits[digest[i] >> 4];
        hex[2 * i + 1] = hex_digits[digest[i] & 15];
    }
    hex[AUTH_MAC_HEX] = '\0';
}

void auth_mac_message(const struct auth_key *key, const char *from, const char *to,
                      uint64_t counter, const char *reply_to, const void *body, size_t len,
                      char hex[AUTH_MAC_HEX + 1])
{
    struct hmac_sha256_ctx c;
    hmac_sha256_set_key(&c, sizeof(key->bytes), key->bytes);
    mac_field(&c, "faultdrill-node-1");
    mac_field(&c, from);
    mac_field(&c, to);
    mac_number(&c, counter);
    mac_field(&c, reply_to != NULL ? reply_to : "");
    mac_finish(&c, body, len, hex);
}

void auth_mac_reply(const struct auth_key *key, const char *from, const char *to, uint64_t counter,
                    int status, const void *body, size_t len, char hex[AUTH_MAC_HEX + 1])
{
    struct hmac_sha256_ctx c;
    hmac_sha256_set_key(&c, sizeof(key->bytes), key->bytes);
    mac_field(&c, "faultdrill-reply-1");
    mac_field(&c, from);
    mac_field(&c, to);
    mac_number(&c, counter);
    mac_number(&c, (uint64_t)(status > 0 ? status : 0));
    mac_finish(&c, body, len, hex);
}

bool auth_mac_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL || strlen(a) != AUTH_MAC_HEX || strlen(b) != AUTH_MAC_HEX)
        return false;
    return memeql_sec(a, b, AUTH_MAC_HEX) != 0;
}
