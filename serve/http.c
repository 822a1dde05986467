/*
 * http.c — the HTTP edge of serve: reading a request body within
 * SERVE_BODY_MAX (civetweb's max_request_size bounds only the headers, so
 * Content-Length is checked first and the bytes of a chunked body are
 * counted), parsing it as a JSON object, and sending replies. A reply is
 * one write: the headers are formatted into the room buf_reset keeps in
 * front of the body, so headers and body leave in one send (tcp_nodelay).
 * The one place a platform error becomes an HTTP status.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <civetweb.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve/internal.h"

#define HTTP_READ_CHUNK 65536

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
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
    if (status != 204) {
        head_put(h, "\r\nContent-Length: ");
        head_size(h, body);
    }
    head_put(h, rq->closing || wants_close(rq->conn) ? "\r\nConnection: close\r\n"
                                                     : "\r\nConnection: keep-alive\r\n");
    if (extra_headers != NULL) {
        head_put(h, extra_headers);
        head_put(h, "\r\n");
    }
    if (rq->has_position && status < 300) {
        head_put(h, "X-Faultdrill-Position: ");
        head_size(h, rq->position > 0 ? (size_t)rq->position : 0);
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
    /* HEAD: GET's headers, Content-Length included, without the body */
    mg_write(rq->conn, start, h.n + (rq->head_only ? 0 : body));
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
    /* refused before its body was read: civetweb would drain a large or
     * chunked body to keep the connection, so it closes instead */
    if (!rq->body_read && rq->ri != NULL &&
        (rq->ri->content_length > (long long)SERVE_BODY_MAX ||
         (rq->ri->content_length < 0 && mg_get_header(rq->conn, "Transfer-Encoding") != NULL)))
        http_close_after_reply(rq);
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

/* ---- The guard: connections per client, bodies that take too long -------- */

/*
 * civetweb gives each connection a worker thread until it closes and bounds
 * only the time to read the headers (request_timeout_ms for the first
 * request, keep_alive_timeout_ms for the next ones): a body trickled one
 * byte at a time would hold its worker forever. The guard's thread wakes
 * every SERVE_GUARD_TICK_MS and cuts the read side of a connection whose
 * body is late (shutdown(SHUT_RD): the worker's read fails, it answers 408
 * and closes). It also counts each client address's connections: past
 * --client-cap, a connection is answered 503 and closed.
 */
#define SERVE_GUARD_TICK_MS 100

struct client_slot {
    char addr[48];
    int count;
};

struct http_guard {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool started, stop;
    struct client_slot *clients; /* one per worker at most: a linear scan */
    size_t nclients;
    struct worker **workers;
    size_t nworkers, workers_cap;
};

/* The socket of this server whose peer is addr:port, read side shut. */
static void cut_read_side(int listen_port, const char *addr, int port)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end = NULL;
        long fd = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || fd == dirfd(d))
            continue;
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getsockname((int)fd, (struct sockaddr *)&ss, &len) != 0 || ss.ss_family != AF_INET ||
            ntohs(((struct sockaddr_in *)&ss)->sin_port) != listen_port)
            continue;
        len = sizeof(ss);
        char text[INET_ADDRSTRLEN];
        if (getpeername((int)fd, (struct sockaddr *)&ss, &len) != 0 || ss.ss_family != AF_INET ||
            ntohs(((struct sockaddr_in *)&ss)->sin_port) != port ||
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof(text)) ==
                NULL ||
            strcmp(text, addr) != 0)
            continue;
        shutdown((int)fd, SHUT_RD);
        break;
    }
    closedir(d);
}

static void *guard_run(void *arg)
{
    struct server *srv = arg;
    struct http_guard *g = srv->guard;
    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        struct timespec until = host_deadline_after_us(SERVE_GUARD_TICK_MS * 1000);
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
        int64_t now = host_mono_us();
        for (size_t i = 0; i < g->nworkers && !g->stop; i++) {
            struct worker *w = g->workers[i];
            int64_t deadline = atomic_load(&w->read_deadline_us);
            if (deadline == 0 || now < deadline || atomic_load(&w->read_cut))
                continue;
            char addr[48];
            snprintf(addr, sizeof(addr), "%s", w->peer);
            int port = w->peer_port;
            atomic_store(&w->read_cut, true);
            pthread_mutex_unlock(&g->lock);
            cut_read_side(srv->opt.port, addr, port);
            pthread_mutex_lock(&g->lock);
        }
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int http_guard_start(struct server *srv)
{
    struct http_guard *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    g->nclients = (size_t)srv->opt.threads;
    g->clients = calloc(g->nclients, sizeof(*g->clients));
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&g->lock, NULL);
    srv->guard = g;
    if (g->clients == NULL || pthread_create(&g->thread, NULL, guard_run, srv) != 0) {
        http_guard_stop(srv);
        return -ENOMEM;
    }
    g->started = true;
    return 0;
}

void http_guard_stop(struct server *srv)
{
    struct http_guard *g = srv->guard;
    if (g == NULL)
        return;
    if (g->started) {
        pthread_mutex_lock(&g->lock);
        g->stop = true;
        pthread_cond_signal(&g->wake);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->thread, NULL);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g->clients);
    free(g->workers);
    free(g);
    srv->guard = NULL;
}

int http_guard_add(struct server *srv, struct worker *w)
{
    struct http_guard *g = srv->guard;
    w->client = -1;
    if (g == NULL)
        return 0; /* no guard (the fuzz target): nothing is timed */
    pthread_mutex_lock(&g->lock);
    int rc = 0;
    if (g->nworkers == g->workers_cap) {
        size_t cap = g->workers_cap ? 2 * g->workers_cap : 64;
        struct worker **p = realloc(g->workers, cap * sizeof(*p));
        if (p == NULL)
            rc = -ENOMEM;
        else {
            g->workers = p;
            g->workers_cap = cap;
        }
    }
    if (rc == 0)
        g->workers[g->nworkers++] = w;
    pthread_mutex_unlock(&g->lock);
    return rc;
}

void http_guard_remove(struct server *srv, struct worker *w)
{
    struct http_guard *g = srv->guard;
    if (g == NULL)
        return;
    pthread_mutex_lock(&g->lock);
    for (size_t i = 0; i < g->nworkers; i++) {
        if (g->workers[i] == w) {
            g->workers[i] = g->workers[--g->nworkers];
            break;
        }
    }
    pthread_mutex_unlock(&g->lock);
}

/* Starts (true) or ends (false) the timed read of a body; on ending, says
 * whether the guard cut it. */
static bool read_guard(struct request *rq, bool start)
{
    struct worker *w = rq->w;
    if (start) {
        snprintf(w->peer, sizeof(w->peer), "%s", rq->ri->remote_addr);
        w->peer_port = rq->ri->remote_port;
        atomic_store(&w->read_cut, false);
        atomic_store(&w->read_deadline_us,
                     host_mono_us() + (int64_t)rq->srv->opt.request_timeout_ms * 1000);
        return false;
    }
    atomic_store(&w->read_deadline_us, 0);
    return atomic_load(&w->read_cut);
}

/* A connection's first request counts its client; false after refusing it. */
bool http_conn_begin(struct request *rq)
{
    struct worker *w = rq->w;
    struct http_guard *g = rq->srv->guard;
    if (g == NULL || w->client >= 0)
        return true; /* counted (a refused connection has no next request) */
    const char *addr = rq->ri->remote_addr;
    pthread_mutex_lock(&g->lock);
    size_t at = g->nclients, free_at = g->nclients;
    for (size_t i = 0; i < g->nclients; i++) {
        if (g->clients[i].count > 0 && strcmp(g->clients[i].addr, addr) == 0) {
            at = i;
            break;
        }
        if (g->clients[i].count == 0 && free_at == g->nclients)
            free_at = i;
    }
    if (at == g->nclients && free_at < g->nclients) {
        at = free_at;
        snprintf(g->clients[at].addr, sizeof(g->clients[at].addr), "%s", addr);
    }
    int count = 0;
    if (at < g->nclients) {
        count = ++g->clients[at].count;
        w->client = (int)at;
    }
    pthread_mutex_unlock(&g->lock);
    w->client_refused = count > rq->srv->opt.client_cap;
    if (w->client_refused) {
        snprintf(rq->detail, sizeof(rq->detail),
                 "%s holds more than %d connections (--client-cap): close some", addr,
                 rq->srv->opt.client_cap);
        http_close_after_reply(rq);
        http_reply_error(rq, 503, "server busy", rq->detail);
    }
    return !w->client_refused;
}

/* The connection ends: its client's count goes down. */
static void conn_forget(struct server *srv, struct worker *w)
{
    struct http_guard *g = srv->guard;
    if (g != NULL && w->client >= 0) {
        pthread_mutex_lock(&g->lock);
        g->clients[w->client].count--;
        pthread_mutex_unlock(&g->lock);
    }
    w->client = -1;
    w->client_refused = false;
    w->error_sent = false;
}

/*
 * civetweb's own errors (a malformed request line, headers too large, an
 * unknown method): the JSON error too. A request line that parsed but
 * names a method civetweb does not know (TRACE, lowercase get) is 501.
 */
int http_on_error(struct mg_connection *conn, int status, const char *msg)
{
    struct worker *w = mg_get_thread_pointer(conn);
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (w == NULL)
        return 1; /* civetweb's own page */
    w->error_sent = true;
    struct request rq = {.conn = conn, .ri = ri, .w = w, .srv = w->srv, .closing = true};
    const char *error = "bad request";
    const char *m = ri != NULL ? ri->request_method : NULL;
    bool token = m != NULL && m[0] != '\0' && strlen(m) <= 32 && !routes_method_known(m);
    for (const char *p = m; token && *p; p++)
        token = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '-' || *p == '_';
    if (status == 400 && token && ri->request_uri != NULL && ri->http_version != NULL) {
        status = 501;
        error = "not implemented";
        snprintf(rq.detail, sizeof(rq.detail), "this server has no method %.40s", m);
    } else {
        snprintf(rq.detail, sizeof(rq.detail), "%s", msg != NULL ? msg : "");
        if (status == 413)
            status = 431, error = "request headers too large";
        else if (status == 408)
            error = "request timeout";
        else if (status == 505)
            error = "HTTP version not supported";
        else if (status >= 500)
            error = "server error";
    }
    mg_disable_connection_keep_alive(conn);
    http_reply_error(&rq, status, error, rq.detail);
    return 0;
}

/*
 * civetweb closes the connection. A request it parsed but never passed to
 * begin_request nor answered with an error is `OPTIONS *` or an absolute
 * URI it took for a proxy request: it is answered here before the close.
 */
void http_on_close(const struct mg_connection *cconn)
{
    struct mg_connection *conn = (struct mg_connection *)cconn; /* civetweb's API is const */
    struct worker *w = mg_get_thread_pointer(conn);
    if (w == NULL)
        return;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (!w->error_sent && ri != NULL && ri->request_method != NULL &&
        ri->request_uri != NULL && ri->request_uri[0] != '/' && ri->local_uri == NULL) {
        /* civetweb left local_uri empty: the handlers see the URI's path */
        struct mg_request_info copy = *ri;
        const char *auth = strstr(ri->request_uri, "//");
        const char *path = auth != NULL ? strchr(auth + 2, '/') : NULL;
        copy.local_uri = copy.local_uri_raw = path != NULL ? path : "/";
        struct request rq = {.conn = conn, .ri = &copy, .w = w, .srv = w->srv, .closing = true};
        rq.head_only = strcmp(ri->request_method, "HEAD") == 0;
        routes_handle(&rq);
        cJSON_Delete(rq.json);
    }
    conn_forget(w->srv, w);
}

void http_close_after_reply(struct request *rq)
{
    mg_disable_connection_keep_alive(rq->conn);
    rq->closing = true;
}

void http_reply_too_large(struct request *rq)
{
    snprintf(rq->detail, sizeof(rq->detail), "a request body may hold at most %u bytes",
             SERVE_BODY_MAX);
    /* the rest of the body is not worth reading: close after the reply */
    http_close_after_reply(rq);
    http_reply_error(rq, 413, "request body too large", rq->detail);
}

/* Reads the whole body into w->body (NUL-terminated); -E2BIG past the
 * limit, -ETIMEDOUT when the guard cut a body that took too long. */
static int read_body(struct request *rq)
{
    struct buf *b = &rq->w->body;
    b->len = 0;
    b->oom = false;
    long long declared = rq->ri->content_length;
    rq->body_read = true;
    if (declared > (long long)SERVE_BODY_MAX)
        return -E2BIG;
    /* what civetweb holds already is copied without waiting; the rest is
     * asked for as declared, so no read waits for bytes that never come */
    size_t chunk = declared > 0 ? (size_t)declared : HTTP_READ_CHUNK;
    read_guard(rq, true);
    int rc = 0;
    for (;;) {
        if (!buf_reserve(b, chunk + 1)) {
            rc = -ENOMEM;
            break;
        }
        int n = mg_read(rq->conn, b->p + b->len, chunk);
        if (n <= 0) {
            rc = n < 0 ? -EIO : 0;
            break;
        }
        b->len += (size_t)n;
        if (b->len > SERVE_BODY_MAX) {
            rc = -E2BIG;
            break;
        }
    }
    if (read_guard(rq, false) && rc == -EIO)
        rc = -ETIMEDOUT;
    if (rc == 0 && declared >= 0 && b->len < (size_t)declared)
        rc = -EIO; /* the client hung up mid-body */
    if (rc == 0)
        b->p[b->len] = '\0';
    return rc;
}

int http_read_json(struct request *rq)
{
    int rc = read_body(rq);
    if (rc == -E2BIG) {
        http_reply_too_large(rq);
        return rc;
    }
    if (rc == -ETIMEDOUT) {
        snprintf(rq->detail, sizeof(rq->detail), "the body did not arrive within %d ms",
                 rq->srv->opt.request_timeout_ms);
        http_close_after_reply(rq);
        http_reply_error(rq, 408, "request timeout", rq->detail);
        return rc;
    }
    if (rc != 0) {
        http_close_after_reply(rq);
        http_reply_error(rq, rc == -ENOMEM ? 500 : 400, "cannot read the request body", NULL);
        return rc;
    }
    if (json_check_limits(rq->w->body.p, rq->w->body.len, rq->detail) < 0) {
        http_reply_error(rq, 400, "malformed JSON", rq->detail);
        return -EINVAL;
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
    /* below 2^53 (16 digits at most): every such id survives a double */
    bool ok = s != NULL && s[0] != '\0' && strlen(s) <= 16;
    for (const char *p = s; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9';
        v = v * 10 + (*p - '0');
    }
    if (!ok || v <= 0 || v >= ((int64_t)1 << 53)) {
        snprintf(rq->detail, sizeof(rq->detail),
                 "%s must be a whole number from 1 to 2^53 - 1, not '%.64s'", what,
                 s != NULL ? s : "");
        http_reply_error(rq, 400, "bad id", rq->detail);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* ---- Host and Origin: this server's own names ------------------------------ */

/* "127.0.0.1:3002", "localhost:3002" (and without ":80" on port 80). */
bool http_host_is_own(const struct request *rq, const char *host, size_t n)
{
    static const char *const names[] = {"127.0.0.1", "localhost"};
    int port = rq->srv->opt.port;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len = strlen(names[i]);
        if (n < len || strncasecmp(host, names[i], len) != 0)
            continue;
        if (n == len)
            return port == 80;
        char want[16];
        int w = snprintf(want, sizeof(want), ":%d", port);
        if (n - len == (size_t)w && memcmp(host + len, want, (size_t)w) == 0)
            return true;
    }
    return false;
}

bool http_origin_is_own(const struct request *rq, const char *origin)
{
    if (strncasecmp(origin, "http://", 7) != 0)
        return false; /* "null", https://..., anything else */
    return http_host_is_own(rq, origin + 7, strlen(origin + 7));
}

int http_submit(struct request *rq, struct write_job *job)
{
    job->done = &rq->w->done;
    int rc = writer_submit(&rq->srv->writer, job);
    if (rc != 0)
        http_reply_platform(rq, rc, NULL);
    else if (job->rc >= 0) {
        rq->wrote = rq->has_position = true;
        rq->position = job->position;
    }
    return rc;
}
