/*
 * fuzz_http.c — libFuzzer target for serve's HTTP layer: each input is one
 * request (request line, headers, body, as on the wire) handed to the very
 * code civetweb calls for it in the server: routes_dispatch (begin_request),
 * http_on_error (civetweb's own errors) and http_on_close (a request it did
 * not route). civetweb itself is a library we do not fuzz: this file plays
 * its part, parsing the bytes into a struct mg_request_info and defining the
 * few mg_* functions serve calls on a connection (the executable's
 * definitions take precedence over libcivetweb's), so the request reaches
 * an in-memory shop (SQLite files on tmpfs, the demo catalog, the writer
 * thread, the fault panel) without a socket.
 *
 * The oracle, beyond ASan/UBSan: every request gets exactly one reply that
 * starts "HTTP/1.1 NNN ", and a JSON reply body (every error) parses.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, mkdtemp */
#endif
#include <civetweb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "serve/internal.h"

#define FUZZ_PORT 3002
#define FUZZ_HEADERS_MAX MG_MAX_HEADERS
#define FUZZ_OUT_MAX (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The connection civetweb would hand over: the parsed request, its body,
 * what was written back. */
struct mg_connection {
    struct mg_request_info ri;
    char *buf; /* the input, NUL-terminated, cut up in place */
    const char *body;
    size_t body_len, body_read;
    char *out;
    size_t out_len;
    int writes;
    struct worker *w;
};

/* ---- the civetweb functions serve calls on a connection ----------------- */

const struct mg_request_info *mg_get_request_info(const struct mg_connection *conn)
{
    return &conn->ri;
}

const char *mg_get_header(const struct mg_connection *conn, const char *name)
{
    for (int i = 0; i < conn->ri.num_headers; i++)
        if (strcasecmp(conn->ri.http_headers[i].name, name) == 0)
            return conn->ri.http_headers[i].value;
    return NULL;
}

int mg_read(struct mg_connection *conn, void *buf, size_t len)
{
    size_t left = conn->body_len - conn->body_read;
    size_t n = len < left ? len : left;
    memcpy(buf, conn->body + conn->body_read, n);
    conn->body_read += n;
    return (int)n;
}

int mg_write(struct mg_connection *conn, const void *buf, size_t len)
{
    conn->writes++;
    if (conn->out_len + len <= FUZZ_OUT_MAX) {
        memcpy(conn->out + conn->out_len, buf, len);
        conn->out_len += len;
    }
    return (int)len;
}

int mg_printf(struct mg_connection *conn, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return n;
    return mg_write(conn, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void *mg_get_thread_pointer(const struct mg_connection *conn)
{
    return conn->w;
}

void mg_disable_connection_keep_alive(struct mg_connection *conn)
{
    (void)conn;
}

/* ---- the in-memory shop ---------------------------------------------------- */

static struct server *srv;
static struct worker *worker;

static void fuzz_setup(void)
{
    srv = calloc(1, sizeof(*srv));
    char dir[] = "/dev/shm/fuzz-http-XXXXXX";
    char tmpdir[] = "/tmp/fuzz-http-XXXXXX";
    const char *data = mkdtemp(dir);
    if (data == NULL)
        data = mkdtemp(tmpdir);
    if (srv == NULL || data == NULL)
        abort();
    srv->opt = (struct serve_options){
        .port = FUZZ_PORT, .port_requested = FUZZ_PORT, .data_dir = data,
        .role = SERVE_SINGLE, .topology = SHOP_SINGLE, .node = "primary",
        .allow_faults = true, .web_dir = FUZZ_WEB_DIR, .demo = true, .threads = 2,
        .client_cap = 2, .request_timeout_ms = 1000, .keep_alive_ms = 1000};
    if (realpath(FUZZ_WEB_DIR, srv->web_root) == NULL)
        srv->web_root[0] = '\0';
    snprintf(srv->primary_path, sizeof(srv->primary_path), "%s/db.sqlite", data);
    if (host_start(&srv->host) != 0)
        abort();
    srv->env = host_env(&srv->host);
    const char *nodes[1] = {"primary"};
    panel_init(&srv->panel, nodes, 1);
    struct faults_host fh = host_faults();
    if (faults_init(0) != 0 || faults_vfs_register("primary", &fh) != 0)
        abort();
    srv->cfg = (struct shop_config){
        .topology = SHOP_SINGLE,
        .primary = {.node = "primary", .path = srv->primary_path,
                    .vfs = faults_vfs_name("primary")},
        .ack = MIRROR_ACK_BOTH,
    };
    shop *s = NULL;
    char msg[SHOP_ERRMSG_MAX];
    if (shop_open(&srv->cfg, &srv->env, &s, msg) != 0 || demo_seed(s) < 0 ||
        writer_start(&srv->writer, s) != 0) {
        fprintf(stderr, "fuzz_http: cannot open the shop: %s\n", msg);
        abort();
    }
    worker = worker_create(srv);
    if (worker == NULL)
        abort();
}

/* ---- the request, as civetweb would have parsed it --------------------------- */

/* Cuts buf at the first "\r\n" (or "\n"): returns the next line's start. */
static char *cut_line(char *p, char *end)
{
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
        return NULL;
    *nl = '\0';
    if (nl > p && nl[-1] == '\r')
        nl[-1] = '\0';
    return nl + 1;
}

/* 0 and conn->ri filled, or -1: a request civetweb would refuse (400). */
static int parse(struct mg_connection *conn, size_t size)
{
    char *p = conn->buf, *end = conn->buf + size;
    char *next = cut_line(p, end);
    if (next == NULL)
        return -1;
    char *sp1 = strchr(p, ' ');
    char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL || sp1 == p)
        return -1;
    *sp1 = *sp2 = '\0';
    conn->ri.request_method = p;
    conn->ri.request_uri = sp1 + 1;
    if (strncmp(sp2 + 1, "HTTP/", 5) != 0)
        return -1;
    conn->ri.http_version = sp2 + 6;
    char *q = strchr(sp1 + 1, '?');
    if (q != NULL) {
        *q = '\0';
        conn->ri.query_string = q + 1;
    }
    conn->ri.local_uri = conn->ri.local_uri_raw = sp1[1] == '/' ? sp1 + 1 : NULL;
    conn->ri.content_length = -1;
    for (p = next; p < end;) {
        next = cut_line(p, end);
        if (next == NULL)
            return -1; /* the headers never ended */
        if (*p == '\0') {
            conn->body = next;
            conn->body_len = (size_t)(end - next);
            break;
        }
        char *colon = strchr(p, ':');
        if (colon == NULL || conn->ri.num_headers == FUZZ_HEADERS_MAX)
            return -1;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        conn->ri.http_headers[conn->ri.num_headers].name = p;
        conn->ri.http_headers[conn->ri.num_headers].value = v;
        conn->ri.num_headers++;
        if (strcasecmp(p, "Content-Length") == 0 && conn->ri.content_length < 0)
            conn->ri.content_length = atoll(v);
        p = next;
    }
    if (conn->body == NULL)
        return -1;
    if (conn->ri.content_length >= 0 && (size_t)conn->ri.content_length < conn->body_len)
        conn->body_len = (size_t)conn->ri.content_length;
    return 0;
}

/* The reply must be one HTTP/1.1 response, its JSON body well formed. */
static void check_reply(const struct mg_connection *conn)
{
    if (conn->writes != 1 || conn->out_len < 13 || memcmp(conn->out, "HTTP/1.1 ", 9) != 0) {
        fprintf(stderr, "fuzz_http: %d writes, reply '%.60s'\n", conn->writes, conn->out);
        abort();
    }
    const char *head_end = memmem(conn->out, conn->out_len, "\r\n\r\n", 4);
    if (head_end == NULL)
        abort();
    const char *body = head_end + 4;
    size_t len = conn->out_len - (size_t)(body - conn->out);
    bool json = memmem(conn->out, (size_t)(head_end - conn->out), "application/json", 16) != NULL;
    const char *m = conn->ri.request_method;
    if (json && len > 0 && (m == NULL || strcmp(m, "HEAD") != 0)) {
        cJSON *j = cJSON_ParseWithLength(body, len);
        if (j == NULL) {
            fprintf(stderr, "fuzz_http: a JSON reply that does not parse: %.200s\n", body);
            abort();
        }
        cJSON_Delete(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv == NULL)
        fuzz_setup();
    if (size > SERVE_BODY_MAX + 8192)
        return 0;
    struct mg_connection conn = {.w = worker};
    conn.buf = malloc(size + 1);
    static char *out; /* allocated once: a fresh 4 MiB each time costs page faults */
    if (out == NULL)
        out = malloc(FUZZ_OUT_MAX);
    conn.out = out;
    if (conn.buf == NULL || conn.out == NULL)
        abort();
    memcpy(conn.buf, data, size);
    conn.buf[size] = '\0';
    snprintf(conn.ri.remote_addr, sizeof(conn.ri.remote_addr), "127.0.0.1");
    conn.ri.remote_port = 40000;
    if (parse(&conn, size) != 0) {
        /* what civetweb does with a request it cannot parse */
        http_on_error(&conn, 400, "Bad request");
    } else if (conn.ri.local_uri == NULL) {
        /* `OPTIONS *`, an absolute URI: civetweb closes, serve answers */
        http_on_close(&conn);
    } else {
        routes_dispatch(&conn);
    }
    check_reply(&conn);
    panel_release(&srv->panel); /* a fault switched on by this input ends with it */
    worker->error_sent = false;
    free(conn.buf);
    return 0;
}
