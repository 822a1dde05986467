/*
 * routes.c — the route table of DESIGN.md §7 and the dispatcher civetweb
 * calls for every request (its begin_request callback, so civetweb's own
 * file serving never runs and nothing shadows the API). A path that
 * matches a route with another method is 405; a path that matches no route
 * is a static file of the web root (GET) or 404. Path parameters are the
 * URL-decoded segments.
 */
#include <civetweb.h>
#include <stdio.h>
#include <string.h>

#include "serve/internal.h"

struct route {
    const char *method;
    const char *pattern; /* segments; ":" takes one parameter */
    route_fn fn;
};

static const struct route routes[] = {
    {"GET", "products", products_list},
    {"POST", "products", products_create},
    {"GET", "products/:", products_get},
    {"PUT", "products/:", products_update},
    {"DELETE", "products/:", products_delete},
    {"POST", "users", users_create},
    {"GET", "users/:", users_get},
    {"PUT", "users/:", users_update},
    {"POST", "orders", orders_create},
    {"GET", "orders/:", orders_list},
    {"PUT", "orders/:", orders_set_status},
    {"GET", "cart/:", cart_get},
    {"POST", "cart/:", cart_add},
    {"DELETE", "cart/:/item/:", cart_remove},
    {"POST", "cart/:/checkout", cart_checkout},
    {"GET", "mirror/status", status_mirror},
    {"GET", "heartbeat", status_heartbeat},
    {"GET", "replication/status", status_replication},
    {"GET", "sync/status", status_sync},
    {"POST", "sync/run", offline_run_now},
    {"GET", "getServer", cluster_get_server},
    {"POST", "api/node", wire_api},
    {"GET", "faults", panel_list},
    {"POST", "faults", panel_set},
};

#define ROUTES_COUNT (sizeof(routes) / sizeof(routes[0]))

struct path {
    char buf[SERVE_PATH_MAX];
    const char *seg[SERVE_SEGMENTS_MAX];
    size_t count;
    bool too_long;
};

/* Splits "/cart/7/item/3" into segments; empty segments are dropped. */
static void path_split(struct path *p, const char *uri)
{
    size_t len = strlen(uri);
    p->count = 0;
    p->too_long = len >= sizeof(p->buf);
    if (p->too_long)
        return;
    memcpy(p->buf, uri, len + 1);
    char *save = NULL;
    for (char *s = strtok_r(p->buf, "/", &save); s != NULL; s = strtok_r(NULL, "/", &save)) {
        if (p->count == SERVE_SEGMENTS_MAX) {
            p->too_long = true;
            return;
        }
        p->seg[p->count++] = s;
    }
}

/* Whether the path has the pattern's shape; parameters go into args. */
static bool route_matches(const char *pattern, const struct path *p, const char **args)
{
    size_t i = 0, nargs = 0;
    const char *pat = pattern;
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

static void not_allowed(struct request *rq, const struct path *p)
{
    char allow[64] = "", detail[SERVE_DETAIL_MAX];
    for (size_t i = 0; i < ROUTES_COUNT; i++) {
        const char *args[SERVE_ARGS_MAX];
        if (route_matches(routes[i].pattern, p, args) && strlen(allow) + 8 < sizeof(allow)) {
            strcat(allow, allow[0] ? ", " : "");
            strcat(allow, routes[i].method);
        }
    }
    snprintf(detail, sizeof(detail), "%s is not allowed here; use %s", rq->ri->request_method,
             allow);
    buf_reset(&rq->w->out);
    json_error(&rq->w->out, "method not allowed", detail);
    char header[96];
    snprintf(header, sizeof(header), "Allow: %s", allow);
    http_reply_bytes(rq, &rq->w->out, 405, "application/json", header);
}

static void route(struct request *rq, const char *uri)
{
    struct path p;
    path_split(&p, uri);
    bool path_known = false;
    for (size_t i = 0; !p.too_long && i < ROUTES_COUNT; i++) {
        if (!route_matches(routes[i].pattern, &p, rq->args))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, rq->ri->request_method) == 0) {
            routes[i].fn(rq);
            return;
        }
    }
    if (path_known) {
        not_allowed(rq, &p);
    } else if (strcmp(rq->ri->request_method, "GET") == 0) {
        static_serve(rq, uri);
    } else {
        snprintf(rq->detail, sizeof(rq->detail), "no route %s %.200s", rq->ri->request_method,
                 uri);
        http_reply_error(rq, 404, "not found", rq->detail);
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
    const char *uri = rq.ri->local_uri_raw != NULL ? rq.ri->local_uri_raw : rq.ri->local_uri;
    if (uri == NULL || uri[0] != '/') {
        http_reply_error(&rq, 400, "bad request", "the request target must be a path");
    } else if (!json_is_utf8(uri, strlen(uri))) {
        http_reply_error(&rq, 400, "bad path", "the path is not valid UTF-8");
    } else if (!follow_intercept(&rq)) {
        route(&rq, uri);
    }
    cJSON_Delete(rq.json);
    return rq.status > 0 ? rq.status : 200;
}
