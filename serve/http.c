/*
 * http.c — the HTTP edge of serve: reading a request body within
 * SERVE_BODY_MAX (civetweb's max_request_size bounds only the headers, so
 * Content-Length is checked first and the bytes of a chunked body are
 * counted), parsing it as a JSON object, and sending replies. A reply is
 * one write: the headers are formatted into the room buf_reset keeps in
 * front of the body, so headers and body leave in one send (tcp_nodelay).
 * The one place a platform error becomes an HTTP status.
 */
#include <assert.h>
#include <civetweb.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "serve/internal.h"

#define HTTP_READ_CHUNK 65536

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

/* Whether the client asked to close after this reply. */
static bool wants_close(struct mg_connection *conn)
{
    const char *c = mg_get_header(conn, "Connection");
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (c != NULL)
        return strcasecmp(c, "close") == 0;
    return ri->http_version == NULL || strcmp(ri->http_version, "1.1") != 0;
}

/* The response head, built with memcpy: snprintf cost as much as a small reply. */
struct head {
    char p[SERVE_HEAD_RESERVE];
    size_t n;
};

static void head_put(struct head *h, const char *s)
{
    size_t len = strlen(s);
    assert(h->n + len < sizeof(h->p)); /* our own headers always fit */
    memcpy(h->p + h->n, s, len);
    h->n += len;
}

static void head_size(struct head *h, size_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    *--p = '\0';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    head_put(h, p);
}

static void head_build(struct head *h, struct request *rq, int status, const char *content_type,
                       const char *extra_headers, size_t body)
{
    h->n = 0;
    head_put(h, "HTTP/1.1 ");
    head_size(h, (size_t)status);
    head_put(h, " ");
    head_put(h, reason(status));
    if (content_type != NULL) {
        head_put(h, "\r\nContent-Type: ");
        head_put(h, content_type);
    }
    head_put(h, "\r\nContent-Length: ");
    head_size(h, body);
    head_put(h, rq->closing || wants_close(rq->conn) ? "\r\nConnection: close\r\n"
                                                     : "\r\nConnection: keep-alive\r\n");
    if (extra_headers != NULL) {
        head_put(h, extra_headers);
        head_put(h, "\r\n");
    }
    head_put(h, "\r\n");
}

void http_reply_bytes(struct request *rq, struct buf *b, int status, const char *content_type,
                      const char *extra_headers)
{
    if (b->oom) {
        buf_reset(b);
        status = 500;
        content_type = "application/json";
        extra_headers = NULL;
        buf_puts(b, "{\"error\":\"out of memory\",\"detail\":null}");
    }
    if (b->len < SERVE_HEAD_RESERVE) {
        /* not even the reserve could be allocated */
        mg_printf(rq->conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                            "Connection: close\r\n\r\n");
        return;
    }
    size_t body = buf_body_len(b);
    struct head h;
    head_build(&h, rq, status, content_type, extra_headers, body);
    rq->status = status;
    char *start = b->p + SERVE_HEAD_RESERVE - h.n;
    memcpy(start, h.p, h.n);
    mg_write(rq->conn, start, h.n + body);
}

void http_reply(struct request *rq, int status)
{
    /* A cluster's leader says how far its outbox got with an accepted write:
     * a replica that forwarded it waits to hold that change (read-your-writes). */
    char seq[48];
    const char *extra = NULL;
    const char *method = rq->ri != NULL ? rq->ri->request_method : "GET";
    if (rq->srv != NULL && rq->srv->opt.role == SERVE_CLUSTER && status >= 200 && status < 300 &&
        strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        snprintf(seq, sizeof(seq), "X-Faultdrill-Seq: %" PRId64,
                 writer_last_seq(&rq->srv->writer));
        extra = seq;
    }
    http_reply_bytes(rq, &rq->w->out, status, status == 204 ? NULL : "application/json",
                     extra);
}

void http_reply_error(struct request *rq, int status, const char *error, const char *detail)
{
    buf_reset(&rq->w->out);
    json_error(&rq->w->out, error, detail);
    http_reply(rq, status);
}

int http_status_of(int rc)
{
    if (platform_is_unknown(rc))
        return 500;
    switch (-rc) {
    case EINVAL: case ENODATA: case E2BIG:
        return 400;
    case ENOENT:
        return 404;
    case EEXIST: case ERANGE: case EPERM:
        return 409;
    case EIO: case ENOSPC: case EBADMSG: case EBUSY: case EAGAIN: case ESHUTDOWN:
        return 503;
    default:
        return 500;
    }
}

void http_reply_platform(struct request *rq, int rc, const char *detail)
{
    const char *error = platform_is_unknown(rc) ? "outcome unknown" : platform_strerror(rc);
    if (rc == -EAGAIN)
        error = "server busy: too many writes waiting";
    else if (rc == -ESHUTDOWN)
        error = "server stopping";
    http_reply_error(rq, http_status_of(rc), error, detail);
}

/* Reads the whole body into w->body (NUL-terminated); -E2BIG past the limit. */
static int read_body(struct request *rq)
{
    struct buf *b = &rq->w->body;
    b->len = 0;
    b->oom = false;
    long long declared = rq->ri->content_length;
    if (declared > (long long)SERVE_BODY_MAX)
        return -E2BIG;
    for (;;) {
        if (!buf_reserve(b, HTTP_READ_CHUNK + 1))
            return -ENOMEM;
        int n = mg_read(rq->conn, b->p + b->len, HTTP_READ_CHUNK);
        if (n < 0)
            return -EIO;
        if (n == 0)
            break;
        b->len += (size_t)n;
        if (b->len > SERVE_BODY_MAX)
            return -E2BIG;
    }
    b->p[b->len] = '\0';
    return 0;
}

int http_read_json(struct request *rq)
{
    int rc = read_body(rq);
    if (rc == -E2BIG) {
        snprintf(rq->detail, sizeof(rq->detail), "a request body may hold at most %u bytes",
                 SERVE_BODY_MAX);
        /* the rest of the body is not worth reading: close after the reply */
        mg_disable_connection_keep_alive(rq->conn);
        rq->closing = true;
        http_reply_error(rq, 413, "request body too large", rq->detail);
        return rc;
    }
    if (rc != 0) {
        http_reply_error(rq, rc == -ENOMEM ? 500 : 400, "cannot read the request body", NULL);
        return rc;
    }
    const char *end = NULL;
    /* the length counts the NUL read_body appends, so trailing garbage fails */
    rq->json = cJSON_ParseWithLengthOpts(rq->w->body.p, rq->w->body.len + 1, &end, true);
    if (rq->json == NULL || !cJSON_IsObject(rq->json)) {
        size_t at = end != NULL && end >= rq->w->body.p ? (size_t)(end - rq->w->body.p) : 0;
        if (rq->json == NULL)
            snprintf(rq->detail, sizeof(rq->detail), "not valid JSON (near byte %zu)", at);
        else
            snprintf(rq->detail, sizeof(rq->detail), "expected a JSON object");
        http_reply_error(rq, 400, "malformed JSON", rq->detail);
        return -EINVAL;
    }
    return 0;
}

int http_arg_id(struct request *rq, int i, const char *what, int64_t *out)
{
    const char *s = rq->args[i];
    int64_t v = 0;
    bool ok = s != NULL && s[0] != '\0' && strlen(s) <= 16;
    for (const char *p = s; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9';
        v = v * 10 + (*p - '0');
    }
    if (!ok || v <= 0) {
        snprintf(rq->detail, sizeof(rq->detail), "%s must be a positive whole number, not '%.64s'",
                 what, s != NULL ? s : "");
        http_reply_error(rq, 400, "bad id", rq->detail);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

int http_submit(struct request *rq, struct write_job *job)
{
    job->done = &rq->w->done;
    int rc = writer_submit(&rq->srv->writer, job);
    if (rc != 0)
        http_reply_platform(rq, rc, NULL);
    return rc;
}
