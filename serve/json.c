/*
 * json.c — JSON in and out for serve: a growable buffer, the writers of the
 * shapes in serve/API.md (money leaves as a decimal, kept in cents), and the
 * readers of a request's fields with the checks every handler needs (types,
 * ranges, integral quantities, prices with at most two decimals, UTF-8).
 * Output is written straight into a per-thread buffer: no tree, no
 * allocation per reply. Depends on cJSON and platform.h only.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/internal.h"

#define BUF_INITIAL 8192
#define JSON_SAFE_INT_MAX 9007199254740992.0 /* 2^53: doubles hold every integer below */

/* ---- the buffer --------------------------------------------------------- */

void buf_release(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

bool buf_reserve(struct buf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : BUF_INITIAL;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void buf_reset(struct buf *b)
{
    b->oom = false;
    b->len = 0;
    if (buf_reserve(b, SERVE_HEAD_RESERVE))
        b->len = SERVE_HEAD_RESERVE;
}

void buf_put(struct buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void buf_puts(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Decimal digits of v, written backwards from end; returns the start.
 * Hand-rolled: snprintf was a tenth of a GET /products. */
static char *format_u64(uint64_t v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

void buf_i64(struct buf *b, int64_t v)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp);
    char *p = format_u64(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, end);
    if (v < 0)
        *--p = '-';
    buf_put(b, p, (size_t)(end - p));
}

const char *buf_body(const struct buf *b)
{
    return b->p + SERVE_HEAD_RESERVE;
}

size_t buf_body_len(const struct buf *b)
{
    return b->len >= SERVE_HEAD_RESERVE ? b->len - SERVE_HEAD_RESERVE : 0;
}

/* ---- writing ------------------------------------------------------------ */

void json_str(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    if (!buf_reserve(b, 2 + 6 * n))
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            *o++ = '\\';
            *o++ = (char)*p;
        } else if (*p < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[*p >> 4];
            o[5] = hex[*p & 15];
            o += 6;
        } else {
            *o++ = (char)*p;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

void json_money(struct buf *b, int64_t cents)
{
    assert(cents >= 0);
    char tmp[32];
    char *end = tmp + sizeof(tmp);
    int64_t frac = cents % 100;
    char *p = end;
    if (frac != 0) {
        /* 12.05, 12.5: two decimals, or one when the second is 0 */
        if (frac % 10 != 0)
            *--p = (char)('0' + frac % 10);
        *--p = (char)('0' + frac / 10);
        *--p = '.';
    }
    p = format_u64((uint64_t)(cents / 100), p);
    buf_put(b, p, (size_t)(end - p));
}

void json_time(struct buf *b, int64_t wall_us)
{
    time_t secs = (time_t)(wall_us / 1000000);
    struct tm tm;
    char tmp[48];
    if (wall_us < 0 || gmtime_r(&secs, &tm) == NULL) {
        buf_puts(b, "null");
        return;
    }
    size_t n = strftime(tmp, sizeof(tmp), "\"%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, ".%03dZ\"", (int)(wall_us / 1000 % 1000));
    buf_put(b, tmp, n);
}

void json_error(struct buf *b, const char *error, const char *detail)
{
    buf_puts(b, "{\"error\":");
    json_str(b, error);
    buf_puts(b, ",\"detail\":");
    if (detail != NULL && detail[0] != '\0')
        json_str(b, detail);
    else
        buf_puts(b, "null");
    buf_puts(b, "}");
}

void json_product(struct buf *b, const struct shop_product *p)
{
    buf_puts(b, "{\"id\":");
    buf_i64(b, p->id);
    buf_puts(b, ",\"name\":");
    json_str(b, p->name);
    buf_puts(b, ",\"description\":");
    json_str(b, p->description);
    buf_puts(b, ",\"category\":");
    json_str(b, p->category);
    buf_puts(b, ",\"price\":");
    json_money(b, p->price_cents);
    buf_puts(b, ",\"stock\":");
    buf_i64(b, p->stock);
    buf_puts(b, "}");
}

void json_user(struct buf *b, const struct shop_user *u)
{
    buf_puts(b, "{\"id\":");
    buf_i64(b, u->id);
    buf_puts(b, ",\"name\":");
    json_str(b, u->name);
    buf_puts(b, ",\"email\":");
    json_str(b, u->email);
    buf_puts(b, "}");
}

void json_order(struct buf *b, const struct shop_order *o)
{
    buf_puts(b, "{\"id\":");
    buf_i64(b, o->id);
    buf_puts(b, ",\"userId\":");
    buf_i64(b, o->user_id);
    buf_puts(b, ",\"status\":");
    json_str(b, shop_order_status_name(o->status));
    buf_puts(b, ",\"total\":");
    json_money(b, o->total_cents);
    buf_puts(b, ",\"createdAt\":");
    json_time(b, o->created_at_us);
    buf_puts(b, ",\"createdAtUs\":");
    buf_i64(b, o->created_at_us);
    buf_puts(b, ",\"products\":[");
    for (size_t i = 0; i < o->line_count && i < SHOP_ORDER_LINES_MAX; i++) {
        buf_puts(b, i ? ",{\"productId\":" : "{\"productId\":");
        buf_i64(b, o->lines[i].product_id);
        buf_puts(b, ",\"quantity\":");
        buf_i64(b, o->lines[i].quantity);
        buf_puts(b, ",\"price\":");
        json_money(b, o->lines[i].unit_price_cents);
        buf_puts(b, "}");
    }
    buf_puts(b, "]}");
}

/* ---- reading ------------------------------------------------------------ */

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
bool json_is_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p++;
        if (c < 0x80)
            continue;
        int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : -1;
        if (more < 0 || c > 0xF4 || end - p < more)
            return false;
        unsigned cp = c & (0x3Fu >> more);
        for (int i = 0; i < more; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3Fu);
        }
        if ((more == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += more;
    }
    return true;
}

/*
 * The limits of DESIGN.md §7, checked on the raw bytes before cJSON sees
 * them: cJSON's parser recurses once per nesting level (a worker's stack
 * holds ~600) and allocates a node per value (a megabyte of "[1,1,..." is
 * half a million nodes). A NUL would silently cut a C string short: raw
 * 0x00 (or any control character inside a string, which JSON forbids) and
 * the escape \u0000 are refused here too.
 */
int json_check_limits(const char *text, size_t n, char *detail)
{
    unsigned depth = 0;
    size_t tokens = 0;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == 0) {
            snprintf(detail, SERVE_DETAIL_MAX, "a NUL byte at byte %zu", i);
            return -EINVAL;
        }
        if (in_string) {
            if (c == '"') {
                in_string = false;
            } else if (c < 0x20) {
                snprintf(detail, SERVE_DETAIL_MAX,
                         "a raw control character in a string at byte %zu", i);
                return -EINVAL;
            } else if (c == '\\' && i + 1 < n) {
                i++;
                if ((unsigned char)text[i] < 0x20) {
                    snprintf(detail, SERVE_DETAIL_MAX,
                             "a raw control character in a string at byte %zu", i);
                    return -EINVAL;
                }
                if (text[i] == 'u' && n - i > 4 && memcmp(text + i + 1, "0000", 4) == 0) {
                    snprintf(detail, SERVE_DETAIL_MAX, "\\u0000 in a string at byte %zu", i - 1);
                    return -EINVAL;
                }
            }
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '[': case '{':
            if (++depth > SERVE_JSON_DEPTH_MAX) {
                snprintf(detail, SERVE_DETAIL_MAX, "nested deeper than %d levels at byte %zu",
                         SERVE_JSON_DEPTH_MAX, i);
                return -EINVAL;
            }
            tokens++;
            break;
        case ']': case '}':
            depth -= depth > 0; /* unbalanced: cJSON says where */
            break;
        case ',': case ':':
            tokens++;
            break;
        default:
            break;
        }
        if (tokens > SERVE_JSON_TOKENS_MAX) {
            snprintf(detail, SERVE_DETAIL_MAX, "more than %d values at byte %zu",
                     SERVE_JSON_TOKENS_MAX, i);
            return -EINVAL;
        }
    }
    return 0;
}

static const cJSON *field(const cJSON *o, const char *key, bool required, int *rc, char *detail)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (it == NULL || cJSON_IsNull(it)) {
        *rc = required ? -EINVAL : 1;
        if (required)
            snprintf(detail, SERVE_DETAIL_MAX, "field '%s' is required", key);
        return NULL;
    }
    *rc = 0;
    return it;
}

int json_get_str(const cJSON *o, const char *key, size_t max, bool required, const char **out,
                 char *detail)
{
    int rc;
    const cJSON *it = field(o, key, required, &rc, detail);
    if (it == NULL)
        return rc;
    if (!cJSON_IsString(it) || it->valuestring == NULL) {
        snprintf(detail, SERVE_DETAIL_MAX, "field '%s' must be a string", key);
        return -EINVAL;
    }
    size_t n = strlen(it->valuestring);
    if (n > max) {
        snprintf(detail, SERVE_DETAIL_MAX, "field '%s' is longer than %zu bytes", key, max);
        return -EINVAL;
    }
    if (!json_is_utf8(it->valuestring, n)) {
        snprintf(detail, SERVE_DETAIL_MAX, "field '%s' is not valid UTF-8", key);
        return -EINVAL;
    }
    *out = it->valuestring;
    return 0;
}

int json_get_int(const cJSON *o, const char *key, int64_t min, int64_t max, bool required,
                 int64_t *out, char *detail)
{
    int rc;
    const cJSON *it = field(o, key, required, &rc, detail);
    if (it == NULL)
        return rc;
    double v = it->valuedouble;
    if (!cJSON_IsNumber(it) || !isfinite(v) || v != floor(v) || fabs(v) >= JSON_SAFE_INT_MAX) {
        snprintf(detail, SERVE_DETAIL_MAX, "field '%s' must be a whole number", key);
        return -EINVAL;
    }
    if (v < (double)min || v > (double)max) {
        snprintf(detail, SERVE_DETAIL_MAX, "field '%s' must be %" PRId64 " to %" PRId64 ", not %.0f",
                 key, min, max, v);
        return -EINVAL;
    }
    *out = (int64_t)v;
    return 0;
}

int json_get_price(const cJSON *o, const char *key, int64_t *cents, char *detail)
{
    int rc;
    const cJSON *it = field(o, key, true, &rc, detail);
    if (it == NULL)
        return rc;
    double v = it->valuedouble;
    if (!cJSON_IsNumber(it) || !isfinite(v) || v < 0 || v > SHOP_PRICE_MAX / 100.0) {
        snprintf(detail, SERVE_DETAIL_MAX, "field '%s' must be a number from 0 to %d", key,
                 SHOP_PRICE_MAX / 100);
        return -EINVAL;
    }
    /* Exact: strtod gives the double nearest to "12.34", and so does the
     * correctly rounded 1234 / 100.0; a third decimal gives another double. */
    double c = nearbyint(v * 100.0);
    if (c / 100.0 != v) {
        snprintf(detail, SERVE_DETAIL_MAX, "field '%s' has more than 2 decimals", key);
        return -EINVAL;
    }
    *cents = (int64_t)c;
    return 0;
}
