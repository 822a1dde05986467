/*
 * routes.c — the route table of DESIGN.md §7 and the dispatcher civetweb
 * calls for every request (its begin_request callback, so civetweb's own
 * file serving never runs and nothing shadows the API). Before a handler
 * runs, the request is judged as a whole, in this order:
 *   - the target: a path, or an absolute URI naming this server (`OPTIONS *`
 *     is answered here); each segment is URL-decoded on its own, and a NUL,
 *     invalid UTF-8 or a '/' inside a segment is 400 "bad path";
 *   - Host (DNS rebinding): it must name this server, on every route;
 *   - framing (request smuggling): two Content-Length headers, or one with
 *     Transfer-Encoding, or a transfer coding other than chunked, are refused
 *     and the connection closed;
 *   - the method: one this server has none of (PROPFIND, TRACE, PATCH...) is
 *     501; a known path with another method is 405 with Allow; HEAD is GET
 *     without the body; OPTIONS answers Allow (and grants no CORS);
 *   - cross-site requests (DESIGN.md §7): a state-changing request needs
 *     `Content-Type: application/json` (a raw route such as /api/node, a
 *     type no form or no-cors fetch can send) and, when Origin is present,
 *     this server's own origin;
 *   - the body's size, before reading.
 * A path that matches no route is a static file of the web root (GET) or 404.
 */
#include <civetweb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/internal.h"

/* What a route's request body is: how it is checked before the handler. */
enum body_kind {
    BODY_NONE, /* none expected; a state-changing one still says application/json */
    BODY_JSON, /* one JSON object, application/json */
    BODY_RAW,  /* bytes the handler reads itself: any type but a form's */
};

struct route {
    const char *method;
    const char *pattern; /* segments; ":" takes one parameter */
    route_fn fn;
    enum body_kind body;
};

static const struct route routes[] = {
    {"GET", "products", products_list, BODY_NONE},
    {"POST", "products", products_create, BODY_JSON},
    {"GET", "products/:", products_get, BODY_NONE},
    {"PUT", "products/:", products_update, BODY_JSON},
    {"DELETE", "products/:", products_delete, BODY_NONE},
    {"POST", "users", users_create, BODY_JSON},
    {"GET", "users/:", users_get, BODY_NONE},
    {"PUT", "users/:", users_update, BODY_JSON},
    {"POST", "orders", orders_create, BODY_JSON},
    {"GET", "orders/:", orders_list, BODY_NONE},
    {"PUT", "orders/:", orders_set_status, BODY_JSON},
    {"GET", "cart/:", cart_get, BODY_NONE},
    {"POST", "cart/:", cart_set, BODY_JSON},
    {"DELETE", "cart/:/item/:", cart_remove, BODY_NONE},
    {"POST", "cart/:/checkout", cart_checkout, BODY_NONE},
    {"GET", "shop/cart/:", cart_view_get, BODY_NONE},
    {"POST", "shop/cart/:", cart_view_add, BODY_JSON},
    {"DELETE", "shop/cart/:/item/:", cart_view_remove, BODY_NONE},
    {"GET", "mirror/status", status_mirror, BODY_NONE},
    {"GET", "heartbeat", status_heartbeat, BODY_NONE},
    {"GET", "replication/status", status_replication, BODY_NONE},
    {"POST", "replication/failover", async_failover, BODY_NONE},
    {"POST", "replication/fence", async_fence, BODY_NONE},
    {"GET", "sync/status", status_sync, BODY_NONE},
    {"POST", "sync/run", offline_run_now, BODY_NONE},
    {"POST", "sync/offline", offline_switch_off, BODY_NONE},
    {"POST", "sync/online", offline_switch_on, BODY_NONE},
    {"GET", "getServer", cluster_get_server, BODY_NONE},
    {"POST", "stake/predictors", stake_register_route, BODY_JSON},
    {"POST", "stake/predictions", stake_submit_route, BODY_JSON},
    {"POST", "stake/rounds/close", stake_close_route, BODY_NONE},
    {"GET", "stake/rounds/:", stake_round_route, BODY_NONE},
    {"GET", "stake/status", stake_status_route, BODY_NONE},
    {"POST", "api/node", wire_api, BODY_RAW},
    {"GET", "faults", panel_list, BODY_NONE},
    {"POST", "faults", panel_set, BODY_JSON},
};

#define ROUTES_COUNT (sizeof(routes) / sizeof(routes[0]))

/* The methods this server knows (PATCH only to say 405 with what to use):
 * anything else is 501 on any path. */
static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                      "PATCH"};

/* The URL-decoded segments of a path, each NUL-terminated in buf. */
struct path {
    char buf[SERVE_PATH_MAX];
    const char *seg[SERVE_SEGMENTS_MAX];
    size_t count;
    bool too_long; /* more segments than any route has: no route matches */
};

/*
 * Splits the raw path "/cart/7/item/3" on '/' and decodes each segment
 * (empty ones are dropped): 0, or -EINVAL with the reason in detail when a
 * segment decodes to a NUL, to invalid UTF-8, or to a '/' or '\\'.
 */
static int path_split(struct path *p, const char *raw, size_t len, char *detail)
{
    p->count = 0;
    p->too_long = false;
    size_t used = 0;
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        while (i + n < len && raw[i + n] != '/')
            n++;
        if (n > 0) {
            if (used + n + 1 > sizeof(p->buf)) {
                snprintf(detail, SERVE_DETAIL_MAX, "the path is longer than %d bytes",
                         SERVE_PATH_MAX - 1);
                return -EINVAL;
            }
            char *out = p->buf + used;
            int m = mg_url_decode(raw + i, (int)n, out, (int)(sizeof(p->buf) - used), 0);
            if (m < 0 || strlen(out) != (size_t)m || memchr(out, '/', (size_t)m) != NULL ||
                memchr(out, '\\', (size_t)m) != NULL) {
                snprintf(detail, SERVE_DETAIL_MAX,
                         "a path segment may not hold an encoded NUL, '/' or '\\'");
                return -EINVAL;
            }
            if (!json_is_utf8(out, (size_t)m)) {
                snprintf(detail, SERVE_DETAIL_MAX, "the path is not valid UTF-8");
                return -EINVAL;
            }
            if (p->count == SERVE_SEGMENTS_MAX)
                p->too_long = true;
            else
                p->seg[p->count++] = out;
            used += (size_t)m + 1;
        }
        i += n + 1;
    }
    return 0;
}

/* Whether the path has the pattern's shape; parameters go into args. */
static bool route_matches(const char *pattern, const struct path *p, const char **args)
{
    size_t i = 0, nargs = 0;
    const char *pat = pattern;
    if (p->too_long)
        return false;
    while (*pat != '\0') {
        const char *slash = strchr(pat, '/');
        size_t len = slash != NULL ? (size_t)(slash - pat) : strlen(pat);
        if (i == p->count)
            return false;
        if (len == 1 && pat[0] == ':') {
            if (nargs == SERVE_ARGS_MAX)
                return false;
            args[nargs++] = p->seg[i];
        } else if (strlen(p->seg[i]) != len || strncmp(p->seg[i], pat, len) != 0) {
            return false;
        }
        i++;
        pat += len + (slash != NULL);
    }
    return i == p->count;
}

/* "GET, HEAD, POST, OPTIONS": the methods of the routes that match p. */
static void allowed_methods(const struct path *p, char *allow, size_t cap)
{
    snprintf(allow, cap, "%s", "");
    for (size_t i = 0; i < ROUTES_COUNT; i++) {
        const char *args[SERVE_ARGS_MAX];
        if (!route_matches(routes[i].pattern, p, args))
            continue;
        size_t n = strlen(allow);
        snprintf(allow + n, cap - n, "%s%s%s", n > 0 ? ", " : "", routes[i].method,
                 strcmp(routes[i].method, "GET") == 0 ? ", HEAD" : "");
    }
    size_t n = strlen(allow);
    snprintf(allow + n, cap - n, "%s", ", OPTIONS");
}

static void reply_allow(struct request *rq, int status, const char *allow)
{
    char header[128];
    snprintf(header, sizeof(header), "Allow: %s", allow);
    buf_reset(&rq->w->out);
    if (status != 204) {
        snprintf(rq->detail, sizeof(rq->detail), "%s is not allowed here; use %s",
                 rq->ri->request_method, allow);
        json_error(&rq->w->out, "method not allowed", rq->detail);
    }
    http_reply_bytes(rq, &rq->w->out, status, status == 204 ? NULL : "application/json", header);
}

/* The media type of a Content-Type header, compared without parameters. */
static bool media_type_is(const char *value, const char *type)
{
    if (value == NULL)
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(type);
    if (strncasecmp(value, type, n) != 0)
        return false;
    value += n;
    while (*value == ' ' || *value == '\t')
        value++;
    return *value == '\0' || *value == ';';
}

/* A type a form or a no-cors fetch may send cross-site without asking. */
static bool is_form_type(const char *value)
{
    return value == NULL || media_type_is(value, "text/plain") ||
           media_type_is(value, "application/x-www-form-urlencoded") ||
           media_type_is(value, "multipart/form-data");
}

/* True for a method that changes nothing (DESIGN.md §7's cross-site rules
 * are about the others). */
static bool is_safe(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

/* A state-changing request from another site's page is refused (403). */
static bool origin_refused(struct request *rq)
{
    const char *origin = mg_get_header(rq->conn, "Origin");
    if (origin == NULL || http_origin_is_own(rq, origin))
        return false;
    snprintf(rq->detail, sizeof(rq->detail),
             "a state-changing request from origin '%.100s' is refused: only this server's "
             "own pages may send one", origin);
    http_reply_error(rq, 403, "cross-site request refused", rq->detail);
    return true;
}

/*
 * ...and so is one a form or a no-cors fetch could send (415). A request
 * without a body and without a Content-Type passes only with this server's
 * own Origin, which a browser adds to every non-GET request: the workshop's
 * front end removes a cart item with a bare fetch(url, {method: 'DELETE'}).
 */
static bool content_type_refused(struct request *rq, enum body_kind body)
{
    const char *type = mg_get_header(rq->conn, "Content-Type");
    const char *origin = mg_get_header(rq->conn, "Origin");
    /* a raw route's handler asks for a header of its own (a form cannot send one) */
    bool ok = body == BODY_RAW ? type == NULL || !is_form_type(type)
              : body == BODY_NONE && type == NULL && origin != NULL
                  ? http_origin_is_own(rq, origin)
                  : media_type_is(type, "application/json");
    if (ok)
        return false;
    snprintf(rq->detail, sizeof(rq->detail),
             "a state-changing request needs Content-Type: %s, not '%.100s'",
             body == BODY_RAW ? "application/octet-stream" : "application/json",
             type != NULL ? type : "(none)");
    http_reply_error(rq, 415, "unsupported media type", rq->detail);
    return true;
}

/* Runs the route, after the checks that depend on it. */
static void run(struct request *rq, const struct route *r)
{
    if (!is_safe(rq->ri->request_method) && content_type_refused(rq, r->body))
        return;
    if (r->body != BODY_RAW && rq->ri->content_length > (long long)SERVE_BODY_MAX) {
        http_reply_too_large(rq);
        return;
    }
    if (r->body == BODY_NONE && rq->ri->content_length < 0 &&
        mg_get_header(rq->conn, "Transfer-Encoding") != NULL) {
        /* a chunked body nobody reads: not worth draining */
        http_close_after_reply(rq);
    }
    r->fn(rq);
}

static void route(struct request *rq, const char *raw_path, size_t raw_len)
{
    struct path p;
    if (path_split(&p, raw_path, raw_len, rq->detail) < 0) {
        http_reply_error(rq, 400, "bad path", rq->detail);
        return;
    }
    const char *method = rq->ri->request_method;
    bool options = strcmp(method, "OPTIONS") == 0;
    const char *as = strcmp(method, "HEAD") == 0 ? "GET" : method;
    bool path_known = false;
    for (size_t i = 0; i < ROUTES_COUNT; i++) {
        if (!route_matches(routes[i].pattern, &p, rq->args))
            continue;
        path_known = true;
        if (!options && strcmp(routes[i].method, as) == 0) {
            run(rq, &routes[i]);
            return;
        }
    }
    char allow[96];
    if (path_known) {
        allowed_methods(&p, allow, sizeof(allow));
        reply_allow(rq, options ? 204 : 405, allow);
    } else if (strcmp(as, "GET") == 0) {
        /* the decoded segments again, joined: static.c checks each */
        char joined[SERVE_PATH_MAX];
        size_t n = 0;
        joined[0] = '/';
        joined[1] = '\0';
        for (size_t i = 0; i < p.count && n + strlen(p.seg[i]) + 2 < sizeof(joined); i++)
            n += (size_t)snprintf(joined + n, sizeof(joined) - n, "/%s", p.seg[i]);
        static_serve(rq, joined);
    } else {
        snprintf(rq->detail, sizeof(rq->detail), "no route %s %.*s", method,
                 (int)(raw_len < 200 ? raw_len : 200), raw_path);
        http_reply_error(rq, 404, "not found", rq->detail);
    }
}

bool routes_method_known(const char *m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(m, methods[i]) == 0)
            return true;
    return false;
}

/*
 * Body framing (request smuggling behind a proxy): one Content-Length at
 * most, never beside Transfer-Encoding, whose only coding is chunked.
 * Refused requests close the connection: where their body ends is unknown.
 */
static bool framing_refused(struct request *rq)
{
    int lengths = 0, codings = 0;
    const char *coding = NULL;
    for (int i = 0; i < rq->ri->num_headers; i++) {
        const char *name = rq->ri->http_headers[i].name;
        if (strcasecmp(name, "Content-Length") == 0)
            lengths++;
        if (strcasecmp(name, "Transfer-Encoding") == 0) {
            codings++;
            coding = rq->ri->http_headers[i].value;
        }
    }
    const char *why = NULL;
    int status = 400;
    if (lengths > 1)
        why = "more than one Content-Length header";
    else if (lengths > 0 && codings > 0)
        why = "both Content-Length and Transfer-Encoding";
    else if (codings > 1)
        why = "more than one Transfer-Encoding header";
    else if (codings == 1 && strcasecmp(coding, "chunked") != 0) {
        why = "a transfer coding other than chunked";
        status = 501;
    }
    if (why == NULL)
        return false;
    http_close_after_reply(rq);
    snprintf(rq->detail, sizeof(rq->detail), "the request has %s", why);
    http_reply_error(rq, status, status == 501 ? "not implemented" : "bad request", rq->detail);
    return true;
}

/* The path of the request target, or NULL after replying (a foreign
 * absolute URI, or a target that is no path). Query strings are cut. */
static const char *target_path(struct request *rq, size_t *len)
{
    const char *t = rq->ri->request_uri;
    if (t == NULL)
        t = rq->ri->local_uri;
    if (t != NULL && (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0)) {
        const char *auth = strstr(t, "//") + 2;
        size_t n = strcspn(auth, "/?#");
        if (!http_host_is_own(rq, auth, n)) {
            snprintf(rq->detail, sizeof(rq->detail), "this server is not '%.*s'",
                     (int)(n < 100 ? n : 100), auth);
            http_reply_error(rq, 400, "wrong host", rq->detail);
            return NULL;
        }
        t = auth[n] == '/' ? auth + n : "/";
    }
    if (t == NULL || t[0] != '/') {
        http_reply_error(rq, 400, "bad request", "the request target must be a path");
        return NULL;
    }
    *len = strcspn(t, "?#");
    return t;
}

void routes_handle(struct request *rq)
{
    const struct mg_request_info *ri = rq->ri;
    const char *host = mg_get_header(rq->conn, "Host");
    size_t len = 0;
    const char *path = NULL;
    if (!routes_method_known(ri->request_method)) {
        snprintf(rq->detail, sizeof(rq->detail), "this server has no method %.40s",
                 ri->request_method);
        http_close_after_reply(rq);
        http_reply_error(rq, 501, "not implemented", rq->detail);
    } else if (host == NULL ? ri->http_version != NULL && strcmp(ri->http_version, "1.0") != 0
                            : !http_host_is_own(rq, host, strlen(host))) {
        snprintf(rq->detail, sizeof(rq->detail), "this server is not '%.100s'",
                 host != NULL ? host : "(no Host header)");
        http_reply_error(rq, 400, "wrong host", rq->detail);
    } else if (framing_refused(rq)) {
        /* replied */
    } else if (ri->request_uri != NULL && strcmp(ri->request_uri, "*") == 0) {
        if (strcmp(ri->request_method, "OPTIONS") == 0)
            reply_allow(rq, 204, "GET, HEAD, POST, PUT, DELETE, OPTIONS");
        else
            http_reply_error(rq, 400, "bad request", "only OPTIONS may ask about '*'");
    } else if ((path = target_path(rq, &len)) == NULL) {
        /* replied */
    } else if (!is_safe(ri->request_method) && origin_refused(rq)) {
        /* replied (before a replica forwards it: the leader never sees Origin) */
    } else if (!follow_intercept(rq)) {
        route(rq, path, len);
        follow_served(rq);
    }
}

int routes_dispatch(struct mg_connection *conn)
{
    struct worker *w = mg_get_thread_pointer(conn);
    if (w == NULL) {
        mg_printf(conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                        "Connection: close\r\n\r\n");
        return 500;
    }
    struct request rq = {.conn = conn, .ri = mg_get_request_info(conn), .w = w, .srv = w->srv};
    rq.head_only = strcmp(rq.ri->request_method, "HEAD") == 0;
    if (http_conn_begin(&rq))
        routes_handle(&rq);
    cJSON_Delete(rq.json);
    return rq.status > 0 ? rq.status : 200;
}
