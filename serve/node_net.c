/*
 * node_net.c — the transport between nodes: a node message is POST
 * /api/node with an octet-stream body and four headers (from, to, the
 * sender's counter, the MAC of node_auth.c); the reply carries a MAC bound
 * to the request. Sent through libcurl, one kept-alive connection per link.
 *
 * Sender: the link fault points net/<self>/<to>/drop|delay|duplicate|reorder
 * are consulted per message, here, exactly where the simulator's transport
 * consults them, so `fiu-ctrl -c "enable name=net/primary/secondary/drop"
 * PID` cuts a live link. The counter is this process's microsecond clock,
 * made strictly increasing, taken under the link's lock, so a receiver sees
 * one sender's counters rise.
 *
 * Receiver: a message is refused with 401 — before anything reads its body
 * as a protocol message — unless the headers are well formed, the MAC
 * verifies under the cluster secret, it is addressed to this node, its
 * counter is within WIRE_FRESH_US of our clock and above every counter this
 * sender used before (a replay is refused). Then the node's handler answers.
 * The reply's own link may lose it: net/<self>/<from>/drop answers 202
 * with no body, which the sender reads as a reply that never came.
 *
 * Also here: a client's request forwarded to another node (plain HTTP
 * through libcurl; the node answering it treats it as any client's).
 */
#include <civetweb.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "serve/internal.h"
#include "serve/nodes.h"

#define WIRE_REPLY_LOST_STATUS 202 /* the reply's link lost it: no body */

enum link_point { POINT_DROP, POINT_DELAY, POINT_DUPLICATE, POINT_REORDER, POINTS };
static const char *const point_names[POINTS] = {"drop", "delay", "duplicate", "reorder"};

/* A one-way message waiting on its link (wire_send). */
struct queued {
    int64_t due_us; /* mono: not before */
    uint64_t order; /* equal dues go in the order they were sent */
    bool held;      /* net/.../reorder: it goes right after the next one */
    uint8_t *data;
    size_t len;
};

struct wire_link {
    struct wire *w;
    char name[FAULTS_NODE_MAX];
    char url[WIRE_URL_MAX]; /* under net->lock; "" while unknown */
    char points[POINTS][FAULTS_NAME_MAX];
    pthread_mutex_t lock; /* one message at a time, in counter order */
    CURL *curl;
    struct buf held; /* wire_call: a reordered message waiting for the next one */
    bool holding;
    bool pinned; /* its URL was given (--peer, a child we run), not learned */
    /* wire_send: the queue and the thread that empties it (under qlock) */
    pthread_mutex_t qlock;
    pthread_cond_t qcond; /* CLOCK_MONOTONIC */
    struct queued q[WIRE_QUEUE_MAX];
    size_t qcount, qbytes;
    uint64_t qorder;
    pthread_t thread;
    bool thread_started, stopping;
    struct wire_link_stats stats;
    /* --latency/--jitter: this link's draws (under w->lock), seeded at the first */
    struct faults_rng rng;
    bool rng_seeded;
};

struct sender_seen {
    char from[FAULTS_NODE_MAX];
    uint64_t last;
};

struct wire {
    char self[FAULTS_NODE_MAX];
    char self_url[WIRE_URL_MAX]; /* under lock; "" until known */
    struct auth_key key;
    pthread_mutex_t lock;   /* links' urls, the table, the counters */
    pthread_cond_t hurried; /* CLOCK_MONOTONIC: a delay ends early */
    bool hurry;             /* stopping: no more delays */
    struct wire_link *links[WIRE_PEERS_MAX];
    size_t count;
    uint64_t counter;
    struct sender_seen seen[WIRE_PEERS_MAX];
    size_t seen_count;
    wire_handler_fn handler;
    void *handler_ctx;
    /* every message this node sends takes latency_us plus a draw in [0, jitter_us] */
    int64_t latency_us, jitter_us;
    uint64_t net_seed;
};

/* ---- life ------------------------------------------------------------------- */

int wire_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
}

void wire_global_cleanup(void)
{
    curl_global_cleanup();
}

int wire_create(const char *self, const struct auth_key *key, struct wire **out)
{
    if (!faults_is_node_name(self))
        return -EINVAL;
    struct wire *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return -ENOMEM;
    int rc = pthread_mutex_init(&n->lock, NULL);
    if (rc != 0) {
        free(n);
        return -rc;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->hurried, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(n->self, sizeof(n->self), "%s", self);
    n->key = *key;
    *out = n;
    return 0;
}

static void link_stop_thread(struct wire_link *l)
{
    pthread_mutex_lock(&l->qlock);
    l->stopping = true;
    pthread_cond_broadcast(&l->qcond);
    bool started = l->thread_started;
    pthread_mutex_unlock(&l->qlock);
    if (started)
        pthread_join(l->thread, NULL);
    for (size_t i = 0; i < l->qcount; i++)
        free(l->q[i].data);
    l->qcount = 0;
}

void wire_free(struct wire *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->count; i++) {
        struct wire_link *l = n->links[i];
        link_stop_thread(l);
        curl_easy_cleanup(l->curl);
        buf_release(&l->held);
        pthread_cond_destroy(&l->qcond);
        pthread_mutex_destroy(&l->qlock);
        pthread_mutex_destroy(&l->lock);
        free(l);
    }
    pthread_cond_destroy(&n->hurried);
    pthread_mutex_destroy(&n->lock);
    memset(&n->key, 0, sizeof(n->key));
    free(n);
}

void wire_hurry(struct wire *n)
{
    if (n == NULL)
        return;
    pthread_mutex_lock(&n->lock);
    n->hurry = true;
    pthread_cond_broadcast(&n->hurried);
    size_t count = n->count;
    pthread_mutex_unlock(&n->lock);
    for (size_t i = 0; i < count; i++) {
        struct wire_link *l = n->links[i];
        pthread_mutex_lock(&l->qlock);
        pthread_cond_broadcast(&l->qcond);
        pthread_mutex_unlock(&l->qlock);
    }
}

static bool is_hurried(struct wire *n)
{
    pthread_mutex_lock(&n->lock);
    bool h = n->hurry;
    pthread_mutex_unlock(&n->lock);
    return h;
}

/* A link's delay: up to WIRE_DELAY_US_MAX, over at once when hurried.
 * Returns how long it held. */
static int64_t link_delay(struct wire *n, int64_t us)
{
    if (us > WIRE_DELAY_US_MAX)
        us = WIRE_DELAY_US_MAX;
    int64_t t0 = host_mono_us();
    struct timespec until = host_deadline_after_us(us);
    pthread_mutex_lock(&n->lock);
    while (!n->hurry && host_mono_us() - t0 < us)
        if (pthread_cond_timedwait(&n->hurried, &n->lock, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&n->lock);
    return host_mono_us() - t0;
}

void wire_set_latency(struct wire *n, int64_t latency_us, int64_t jitter_us, uint64_t seed)
{
    pthread_mutex_lock(&n->lock);
    n->latency_us = latency_us > 0 ? latency_us : 0;
    n->jitter_us = jitter_us > 0 ? jitter_us : 0;
    n->net_seed = seed;
    pthread_mutex_unlock(&n->lock);
}

/*
 * One hop's latency on link l, as the simulator's network draws it (runner.c):
 * latency plus a uniform draw in [0, jitter], from a generator of the link's own
 * (seeded with --net-seed and net/<self>/<to>), so a link's draws do not depend on
 * the other links' traffic.
 */
static int64_t link_latency(struct wire *n, struct wire_link *l)
{
    pthread_mutex_lock(&n->lock);
    int64_t us = n->latency_us;
    if (n->jitter_us > 0) {
        if (!l->rng_seeded) {
            char stream[FAULTS_NAME_MAX];
            snprintf(stream, sizeof(stream), "net/%s/%s", n->self, l->name);
            faults_rng_seed(&l->rng, n->net_seed, stream);
            l->rng_seeded = true;
        }
        us += (int64_t)faults_rng_below(&l->rng, (uint64_t)n->jitter_us + 1);
    }
    pthread_mutex_unlock(&n->lock);
    return us;
}

const char *wire_self(const struct wire *n)
{
    return n->self;
}

void wire_set_handler(struct wire *n, wire_handler_fn fn, void *ctx)
{
    pthread_mutex_lock(&n->lock);
    n->handler = fn;
    n->handler_ctx = ctx;
    pthread_mutex_unlock(&n->lock);
}

static struct wire_link *link_find(struct wire *n, const char *name)
{
    for (size_t i = 0; i < n->count; i++)
        if (strcmp(n->links[i]->name, name) == 0)
            return n->links[i];
    return NULL;
}

static bool is_url(const char *url)
{
    size_t len = strlen(url);
    return len < WIRE_URL_MAX &&
           (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) &&
           strpbrk(url, " \r\n\"") == NULL && url[len - 1] != '/';
}

void wire_set_self_url(struct wire *n, const char *url)
{
    pthread_mutex_lock(&n->lock);
    snprintf(n->self_url, sizeof(n->self_url), "%s", url != NULL && is_url(url) ? url : "");
    pthread_mutex_unlock(&n->lock);
}

static int set_peer(struct wire *n, const char *name, const char *url, bool pin);

int wire_set_peer(struct wire *n, const char *name, const char *url)
{
    return set_peer(n, name, url, true);
}

/* An authenticated message said where its sender listens. */
static void learn_peer(struct wire *n, const char *name, const char *url)
{
    if (url == NULL || !is_url(url))
        return;
    pthread_mutex_lock(&n->lock);
    struct wire_link *l = link_find(n, name);
    bool learn = l == NULL || (!l->pinned && strcmp(l->url, url) != 0);
    pthread_mutex_unlock(&n->lock);
    if (learn)
        (void)set_peer(n, name, url, false);
}

static int set_peer(struct wire *n, const char *name, const char *url, bool pin)
{
    if (!faults_is_node_name(name) || strcmp(name, n->self) == 0)
        return -EINVAL;
    if (url != NULL && url[0] != '\0' && !is_url(url))
        return -EINVAL;
    pthread_mutex_lock(&n->lock);
    struct wire_link *l = link_find(n, name);
    int err = 0;
    if (l == NULL && n->count == WIRE_PEERS_MAX)
        err = -E2BIG;
    if (l == NULL && err == 0) {
        l = calloc(1, sizeof(*l));
        if (l == NULL || (l->curl = curl_easy_init()) == NULL) {
            free(l);
            l = NULL;
            err = -ENOMEM;
        }
    }
    if (l != NULL && l->name[0] == '\0') { /* new */
        l->w = n;
        pthread_mutex_init(&l->lock, NULL);
        pthread_mutex_init(&l->qlock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&l->qcond, &ca);
        pthread_condattr_destroy(&ca);
        snprintf(l->name, sizeof(l->name), "%s", name);
        for (int p = 0; p < POINTS; p++)
            snprintf(l->points[p], sizeof(l->points[p]), "net/%s/%s/%s", n->self, name,
                     point_names[p]);
        n->links[n->count++] = l;
    }
    if (l != NULL && (pin || !l->pinned)) {
        snprintf(l->url, sizeof(l->url), "%s", url != NULL ? url : "");
        l->pinned |= pin;
    }
    pthread_mutex_unlock(&n->lock);
    return err;
}

bool wire_peer_url(struct wire *n, const char *name, char out[WIRE_URL_MAX])
{
    pthread_mutex_lock(&n->lock);
    struct wire_link *l = link_find(n, name);
    snprintf(out, WIRE_URL_MAX, "%s", l != NULL ? l->url : "");
    pthread_mutex_unlock(&n->lock);
    return out[0] != '\0';
}

/* Strictly increasing, near the wall clock in microseconds: a restarted
 * sender goes on above what it used before. */
static uint64_t next_counter(struct wire *n)
{
    int64_t now = host_wall_us();
    pthread_mutex_lock(&n->lock);
    n->counter = (uint64_t)now > n->counter ? (uint64_t)now : n->counter + 1;
    uint64_t c = n->counter;
    pthread_mutex_unlock(&n->lock);
    return c;
}

/* ---- libcurl ------------------------------------------------------------------ */

struct reply_sink {
    struct buf *body;
    size_t max;
    bool too_big;
    char mac[AUTH_MAC_HEX + 1];
    char content_type[128];
    int64_t seq;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct reply_sink *s = arg;
    size_t len = size * nmemb;
    if (buf_body_len(s->body) + len > s->max) {
        s->too_big = true;
        return 0; /* curl stops: CURLE_WRITE_ERROR */
    }
    buf_put(s->body, data, len);
    return s->body->oom ? 0 : len;
}

/* "Name: value\r\n" -> value, when the header is `name`. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vl = (size_t)(end - v);
    if (vl >= cap)
        vl = cap - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return true;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    struct reply_sink *s = arg;
    size_t len = size * nmemb;
    char seq[32];
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (after a 100) */
        s->mac[0] = '\0';
        s->content_type[0] = '\0';
        s->seq = 0;
    }
    header_value(line, len, WIRE_MAC_HEADER, s->mac, sizeof(s->mac));
    header_value(line, len, "Content-Type", s->content_type, sizeof(s->content_type));
    if (header_value(line, len, "X-Faultdrill-Seq", seq, sizeof(seq)))
        s->seq = strtoll(seq, NULL, 10);
    return len;
}

static int curl_errno(CURLcode rc, const struct reply_sink *s)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_WRITE_ERROR:
        return s->too_big ? -E2BIG : -ENOMEM;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* The options every request of ours sets: no proxy from the environment
 * (a peer is reached directly), no signals (threads), bounded times. */
static void curl_common(CURL *c, const char *url, struct curl_slist *headers, int timeout_ms,
                        struct reply_sink *sink)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)WIRE_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, sink);
}

/* ---- sending a node message ------------------------------------------------------ */

static void call_detail(struct wire_call_info *info, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void call_detail(struct wire_call_info *info, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(info->detail, sizeof(info->detail), fmt, ap);
    va_end(ap);
}

/* The error of a refusal's JSON body, for the detail. */
static void refusal_text(const struct buf *reply, char *out, size_t cap)
{
    cJSON *j = cJSON_ParseWithLength(buf_body(reply), buf_body_len(reply));
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "detail");
    snprintf(out, cap, "%s%s%s", cJSON_IsString(e) ? e->valuestring : "no reason given",
             cJSON_IsString(d) ? ": " : "", cJSON_IsString(d) ? d->valuestring : "");
    cJSON_Delete(j);
}

/* One message over the link, its reply verified; under l->lock. */
static int transmit(struct wire *n, struct wire_link *l, const char *url, const void *body,
                    size_t len, int timeout_ms, struct buf *reply, struct wire_call_info *info)
{
    uint64_t counter = next_counter(n);
    char mac[AUTH_MAC_HEX + 1], target[WIRE_URL_MAX + 16], self_url[WIRE_URL_MAX];
    pthread_mutex_lock(&n->lock);
    snprintf(self_url, sizeof(self_url), "%s", n->self_url);
    pthread_mutex_unlock(&n->lock);
    auth_mac_message(&n->key, n->self, l->name, counter, self_url, body, len, mac);
    snprintf(target, sizeof(target), "%s/api/node", url);
    char h_from[64], h_to[64], h_counter[64], h_mac[96], h_reply[WIRE_URL_MAX + 32];
    snprintf(h_from, sizeof(h_from), WIRE_FROM_HEADER ": %s", n->self);
    snprintf(h_to, sizeof(h_to), WIRE_TO_HEADER ": %s", l->name);
    snprintf(h_counter, sizeof(h_counter), WIRE_COUNTER_HEADER ": %" PRIu64, counter);
    snprintf(h_mac, sizeof(h_mac), WIRE_MAC_HEADER ": %s", mac);
    snprintf(h_reply, sizeof(h_reply), WIRE_REPLY_TO_HEADER ": %s", self_url);
    struct curl_slist *headers = NULL, *tail;
    const char *lines[] = {"Content-Type: application/octet-stream",
                           "Expect:",
                           h_from,
                           h_to,
                           h_counter,
                           h_mac,
                           self_url[0] ? h_reply : NULL};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]) && lines[i] != NULL; i++) {
        tail = curl_slist_append(headers, lines[i]);
        if (tail == NULL) {
            curl_slist_free_all(headers);
            return -ENOMEM;
        }
        headers = tail;
    }
    buf_reset(reply);
    struct reply_sink sink = {.body = reply, .max = WIRE_REPLY_BYTES_MAX};
    CURL *c = l->curl;
    curl_common(c, target, headers, timeout_ms, &sink);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, len > 0 ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    int err = curl_errno(curl_easy_perform(c), &sink);
    curl_slist_free_all(headers);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (err != 0) {
        call_detail(info, "%s at %s: %s", l->name, url,
                    err == -ETIMEDOUT ? "no reply in time" : strerror(-err));
        return err;
    }
    info->status = (int)status;
    if (status == 401) {
        char why[160];
        refusal_text(reply, why, sizeof(why));
        call_detail(info, "%s refused our message (%s): do both nodes hold the same secret?",
                    l->name, why);
        return -EACCES;
    }
    char expect[AUTH_MAC_HEX + 1];
    auth_mac_reply(&n->key, n->self, l->name, counter, (int)status, buf_body(reply),
                   buf_body_len(reply), expect);
    if (!auth_mac_equal(sink.mac, expect)) {
        call_detail(info, "the reply from %s at %s is not authenticated: ignored", l->name, url);
        return -EBADMSG;
    }
    if (status == WIRE_REPLY_LOST_STATUS) {
        info->lost = true;
        info->status = 0;
        call_detail(info, "the reply from %s was lost on the link (net/%s/%s/drop)", l->name,
                    l->name, n->self);
        return -ETIMEDOUT;
    }
    return 0;
}

/* A message held back by net/.../reorder goes now, after the one just sent;
 * its reply has nobody waiting for it. */
static void send_held(struct wire *n, struct wire_link *l, const char *url, int timeout_ms)
{
    if (!l->holding)
        return;
    l->holding = false;
    struct buf ignored = {0};
    struct wire_call_info info = {0};
    (void)transmit(n, l, url, buf_body(&l->held), buf_body_len(&l->held), timeout_ms, &ignored,
                   &info);
    buf_release(&ignored);
}

int wire_call(struct wire *n, const char *to, const void *body, size_t len, int timeout_ms,
              struct buf *reply, struct wire_call_info *info)
{
    *info = (struct wire_call_info){0};
    char url[WIRE_URL_MAX];
    pthread_mutex_lock(&n->lock);
    struct wire_link *l = link_find(n, to);
    snprintf(url, sizeof(url), "%s", l != NULL ? l->url : "");
    pthread_mutex_unlock(&n->lock);
    if (l == NULL || url[0] == '\0') {
        call_detail(info, "%s: %s", to, l == NULL ? "no such peer" : "not running (no address)");
        return -ENOTCONN;
    }
    pthread_mutex_lock(&l->lock);
    int err = 0;
    if (faults_check(l->points[POINT_DROP]) > 0) {
        info->lost = true;
        call_detail(info, "the message to %s was lost on the link (%s)", to, l->points[POINT_DROP]);
        err = -ETIMEDOUT;
        goto out_unlock;
    }
    int64_t delay_us = faults_check(l->points[POINT_DELAY]);
    if (delay_us > 0)
        info->delay_us = link_delay(n, delay_us);
    /* the request's hop and its reply's: a call is two messages in the simulator */
    int64_t hops_us = link_latency(n, l) + link_latency(n, l);
    if (hops_us > 0)
        (void)link_delay(n, hops_us);
    if (!l->holding && faults_check(l->points[POINT_REORDER]) > 0) {
        buf_reset(&l->held);
        buf_put(&l->held, body, len);
        if (!l->held.oom) {
            l->holding = true;
            info->held = true;
            call_detail(info, "the message to %s goes after the next one (%s)", to,
                        l->points[POINT_REORDER]);
            err = -ETIMEDOUT;
            goto out_unlock;
        }
    }
    info->duplicated = faults_check(l->points[POINT_DUPLICATE]) > 0;
    if (info->duplicated) {
        struct wire_call_info first = {0};
        (void)transmit(n, l, url, body, len, timeout_ms, reply, &first);
    }
    err = transmit(n, l, url, body, len, timeout_ms, reply, info);
    send_held(n, l, url, timeout_ms);
out_unlock:
    pthread_mutex_unlock(&l->lock);
    return err;
}

/* ---- one-way messages (the environment's send) -------------------------------------- */

/* The queue's next message to go at `now`: the earliest due that is not held
 * back; -1 when none. *wake_us: when to look again. */
static int link_next(const struct wire_link *l, int64_t now, bool hurried, int64_t *wake_us)
{
    int best = -1;
    *wake_us = INT64_MAX;
    for (size_t i = 0; i < l->qcount; i++) {
        const struct queued *m = &l->q[i];
        int64_t due = hurried ? 0 : m->due_us;
        if (m->held) /* released by the next message, or at the latest after this */
            due = hurried ? 0 : m->due_us + WIRE_HOLD_US_MAX;
        if (due > now) {
            if (due < *wake_us)
                *wake_us = due;
            continue;
        }
        if (best < 0 || m->order < l->q[best].order)
            best = (int)i;
    }
    return best;
}

/* Sends one queued message (the queue's lock is not held). */
static void link_transmit(struct wire_link *l, struct queued *m)
{
    struct wire *n = l->w;
    char url[WIRE_URL_MAX];
    pthread_mutex_lock(&n->lock);
    snprintf(url, sizeof(url), "%s", l->url);
    pthread_mutex_unlock(&n->lock);
    struct wire_call_info info = {0};
    struct buf reply = {0};
    int err = -ENOTCONN;
    pthread_mutex_lock(&l->lock);
    if (url[0] != '\0')
        err = transmit(n, l, url, m->data, m->len, WIRE_SEND_MS, &reply, &info);
    pthread_mutex_unlock(&l->lock);
    buf_release(&reply);
    pthread_mutex_lock(&l->qlock);
    if (err == 0 && info.status == 200) {
        l->stats.sent++;
    } else {
        l->stats.failed++;
        if (err == 0)
            snprintf(l->stats.last_error, sizeof(l->stats.last_error),
                     "%s answered %d to a message", l->name, info.status);
        else if (url[0] == '\0')
            snprintf(l->stats.last_error, sizeof(l->stats.last_error),
                     "%s is not running (no address): a message was lost", l->name);
        else
            snprintf(l->stats.last_error, sizeof(l->stats.last_error), "%s", info.detail);
    }
    pthread_mutex_unlock(&l->qlock);
}

static void *link_main(void *arg)
{
    struct wire_link *l = arg;
    pthread_mutex_lock(&l->qlock);
    while (!l->stopping) {
        int64_t now = host_mono_us(), wake = 0;
        int i = link_next(l, now, is_hurried(l->w), &wake);
        if (i < 0) {
            if (wake == INT64_MAX) {
                pthread_cond_wait(&l->qcond, &l->qlock);
            } else {
                struct timespec until = host_deadline_after_us(wake - now);
                pthread_cond_timedwait(&l->qcond, &l->qlock, &until);
            }
            continue;
        }
        struct queued m = l->q[i];
        l->q[i] = l->q[--l->qcount];
        l->qbytes -= m.len;
        bool was_held = m.held;
        pthread_mutex_unlock(&l->qlock);
        link_transmit(l, &m);
        free(m.data);
        pthread_mutex_lock(&l->qlock);
        /* what was held back goes right after the message that overtook it */
        for (size_t k = 0; !was_held && k < l->qcount; k++)
            if (l->q[k].held && l->q[k].order < m.order + 1) {
                l->q[k].held = false;
                l->q[k].due_us = 0;
            }
    }
    pthread_mutex_unlock(&l->qlock);
    return NULL;
}

/* Queues a copy of msg; under l->qlock. */
static int link_enqueue(struct wire_link *l, const void *msg, size_t len, int64_t due_us, bool held)
{
    if (l->qcount == WIRE_QUEUE_MAX || l->qbytes + len > WIRE_QUEUE_BYTES_MAX) {
        l->stats.overflow++;
        return -ENOBUFS;
    }
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return -ENOMEM;
    if (len > 0)
        memcpy(copy, msg, len);
    l->q[l->qcount++] = (struct queued){
        .due_us = due_us, .order = ++l->qorder, .held = held, .data = copy, .len = len};
    l->qbytes += len;
    l->stats.queued++;
    if (!l->thread_started) {
        int rc = pthread_create(&l->thread, NULL, link_main, l);
        if (rc != 0) {
            free(copy);
            l->qcount--;
            l->qbytes -= len;
            return -rc;
        }
        l->thread_started = true;
    }
    pthread_cond_signal(&l->qcond);
    return 0;
}

int wire_send(struct wire *n, const char *to, const void *msg, size_t len, int64_t delay_us)
{
    if (len > WIRE_MSG_BYTES_MAX)
        return -E2BIG;
    pthread_mutex_lock(&n->lock);
    struct wire_link *l = link_find(n, to);
    pthread_mutex_unlock(&n->lock);
    if (l == NULL)
        return -ENOTCONN;
    pthread_mutex_lock(&l->qlock);
    int err = 0;
    if (faults_check(l->points[POINT_DROP]) > 0) {
        l->stats.lost++;
        snprintf(l->stats.last_error, sizeof(l->stats.last_error),
                 "a message to %s was lost on the link (%s)", to, l->points[POINT_DROP]);
        goto out_unlock;
    }
    int64_t extra = faults_check(l->points[POINT_DELAY]);
    int64_t due = host_mono_us() + delay_us + (extra > 0 ? extra : 0) + link_latency(n, l);
    bool held = faults_check(l->points[POINT_REORDER]) > 0;
    int copies = faults_check(l->points[POINT_DUPLICATE]) > 0 ? 2 : 1;
    for (int c = 0; c < copies && err == 0; c++)
        err = link_enqueue(l, msg, len, due, held && c == 0);
    if (err == -ENOBUFS)
        snprintf(l->stats.last_error, sizeof(l->stats.last_error),
                 "the link to %s holds %d messages already: one was lost", to, WIRE_QUEUE_MAX);
out_unlock:
    pthread_mutex_unlock(&l->qlock);
    return err;
}

bool wire_link_stats(struct wire *n, const char *to, struct wire_link_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&n->lock);
    struct wire_link *l = link_find(n, to);
    pthread_mutex_unlock(&n->lock);
    if (l == NULL)
        return false;
    pthread_mutex_lock(&l->qlock);
    *out = l->stats;
    out->pending = l->qcount;
    pthread_mutex_unlock(&l->qlock);
    return true;
}

/* ---- forwarding a client's request ------------------------------------------------ */

int wire_forward(struct wire *n, const char *to, const char *method, const char *target,
                 const char *content_type, const void *body, size_t len, int timeout_ms,
                 struct buf *reply, struct wire_forwarded *out)
{
    *out = (struct wire_forwarded){0};
    char base[WIRE_URL_MAX];
    if (!wire_peer_url(n, to, base))
        return -ENOTCONN;
    size_t url_len = strlen(base) + strlen(target) + 1;
    char *url = malloc(url_len);
    CURL *c = curl_easy_init();
    struct curl_slist *headers = NULL;
    char h_type[160], h_by[64];
    snprintf(h_by, sizeof(h_by), "X-Faultdrill-Forwarded-By: %s", n->self);
    int err = url == NULL || c == NULL ? -ENOMEM : 0;
    if (!err) {
        snprintf(url, url_len, "%s%s", base, target);
        headers = curl_slist_append(NULL, h_by);
        struct curl_slist *t = headers != NULL ? curl_slist_append(headers, "Expect:") : NULL;
        if (t != NULL && content_type != NULL && strlen(content_type) < 128) {
            snprintf(h_type, sizeof(h_type), "Content-Type: %s", content_type);
            t = curl_slist_append(headers, h_type);
        }
        if (t == NULL)
            err = -ENOMEM;
    }
    if (!err) {
        buf_reset(reply);
        struct reply_sink sink = {.body = reply, .max = SERVE_BODY_MAX + 65536u};
        curl_common(c, url, headers, timeout_ms, &sink);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, len > 0 ? body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        CURLcode rc = curl_easy_perform(c);
        err = curl_errno(rc, &sink);
        out->maybe_sent = err != 0 && err != -ECONNREFUSED;
        if (err == 0) {
            long status = 0;
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            out->status = (int)status;
            out->seq = sink.seq;
            snprintf(out->content_type, sizeof(out->content_type), "%s", sink.content_type);
        }
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    free(url);
    return err;
}

int wire_post_json(const char *url, const char *json, int timeout_ms, struct buf *reply,
                   int *status)
{
    *status = 0;
    CURL *c = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    int err = c == NULL || headers == NULL ? -ENOMEM : 0;
    if (!err) {
        buf_reset(reply);
        struct reply_sink sink = {.body = reply, .max = SERVE_BODY_MAX};
        curl_common(c, url, headers, timeout_ms, &sink);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
        err = curl_errno(curl_easy_perform(c), &sink);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        *status = (int)code;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return err;
}

/* ---- receiving ------------------------------------------------------------------------ */

int wire_read_body(struct request *rq, size_t max)
{
    struct buf *b = &rq->w->body;
    b->len = 0;
    b->oom = false;
    int rc = 0;
    if (rq->ri->content_length > (long long)max)
        rc = -E2BIG;
    while (rc == 0) {
        if (!buf_reserve(b, 65536)) {
            rc = -ENOMEM;
            break;
        }
        int got = mg_read(rq->conn, b->p + b->len, 65536);
        if (got < 0)
            rc = -EIO;
        if (got <= 0)
            break;
        b->len += (size_t)got;
        if (b->len > max)
            rc = -E2BIG;
    }
    if (rc == -E2BIG) {
        snprintf(rq->detail, sizeof(rq->detail), "a request body may hold at most %zu bytes", max);
        mg_disable_connection_keep_alive(rq->conn);
        rq->closing = true;
        http_reply_error(rq, 413, "request body too large", rq->detail);
    } else if (rc != 0) {
        http_reply_error(rq, rc == -ENOMEM ? 500 : 400, "cannot read the request body", NULL);
    }
    return rc;
}

static void refuse(struct request *rq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(struct request *rq, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rq->detail, sizeof(rq->detail), fmt, ap);
    va_end(ap);
    http_reply_error(rq, 401, "unauthenticated", rq->detail);
}

/* The sender's counter must rise: false for a replay (or a full table). */
static bool counter_fresh(struct wire *n, const char *from, uint64_t counter, bool *full)
{
    *full = false;
    pthread_mutex_lock(&n->lock);
    struct sender_seen *s = NULL;
    for (size_t i = 0; i < n->seen_count && s == NULL; i++)
        if (strcmp(n->seen[i].from, from) == 0)
            s = &n->seen[i];
    if (s == NULL && n->seen_count < WIRE_PEERS_MAX) {
        s = &n->seen[n->seen_count++];
        snprintf(s->from, sizeof(s->from), "%s", from);
        s->last = 0;
    }
    bool ok = s != NULL && counter > s->last;
    if (ok)
        s->last = counter;
    *full = s == NULL;
    pthread_mutex_unlock(&n->lock);
    return ok;
}

static bool parse_counter(const char *text, uint64_t *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9' || strlen(text) > 20)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* Checks everything but the replay; 0 or a refusal sent. */
static int authenticate(struct request *rq, struct wire *n, const char **from_out,
                        uint64_t *counter_out)
{
    const char *from = mg_get_header(rq->conn, WIRE_FROM_HEADER);
    const char *to = mg_get_header(rq->conn, WIRE_TO_HEADER);
    const char *counter_text = mg_get_header(rq->conn, WIRE_COUNTER_HEADER);
    const char *mac = mg_get_header(rq->conn, WIRE_MAC_HEADER);
    const char *reply_to = mg_get_header(rq->conn, WIRE_REPLY_TO_HEADER);
    uint64_t counter = 0;
    if (from == NULL || to == NULL || counter_text == NULL || mac == NULL) {
        refuse(rq, "a node message carries " WIRE_FROM_HEADER ", " WIRE_TO_HEADER
                   ", " WIRE_COUNTER_HEADER " and " WIRE_MAC_HEADER);
        return -EACCES;
    }
    if (!faults_is_node_name(from) || !faults_is_node_name(to) ||
        !parse_counter(counter_text, &counter)) {
        refuse(rq, "malformed sender, receiver or counter");
        return -EACCES;
    }
    char expect[AUTH_MAC_HEX + 1];
    const struct buf *b = &rq->w->body;
    auth_mac_message(&n->key, from, to, counter, reply_to, b->p, b->len, expect);
    if (!auth_mac_equal(mac, expect)) {
        refuse(rq, "the MAC does not verify under this cluster's secret");
        return -EACCES;
    }
    if (strcmp(to, n->self) != 0) {
        refuse(rq, "the message is for %s; this is %s", to, n->self);
        return -EACCES;
    }
    int64_t now = host_wall_us();
    int64_t skew = (int64_t)counter - now;
    if (skew > WIRE_FRESH_US || skew < -WIRE_FRESH_US) {
        refuse(rq, "the message's counter is %.0f s from this node's clock (at most %lld s)",
               (double)skew / 1e6, WIRE_FRESH_US / 1000000);
        return -EACCES;
    }
    *from_out = from;
    *counter_out = counter;
    learn_peer(n, from, reply_to);
    return 0;
}

static void reply_signed(struct request *rq, struct wire *n, const char *from, uint64_t counter,
                         int status)
{
    struct buf *out = &rq->w->out;
    char mac[AUTH_MAC_HEX + 1], header[128];
    auth_mac_reply(&n->key, from, n->self, counter, status, buf_body(out), buf_body_len(out), mac);
    snprintf(header, sizeof(header), WIRE_MAC_HEADER ": %s", mac);
    bool json = buf_body_len(out) > 0 && buf_body(out)[0] == '{';
    http_reply_bytes(rq, out, status,
                     status == WIRE_REPLY_LOST_STATUS ? NULL
                     : json                           ? "application/json"
                                                      : "application/octet-stream",
                     header);
}

void wire_api(struct request *rq)
{
    struct wire *n = rq->srv->net;
    if (n == NULL) {
        status_not_configured(rq);
        return;
    }
    if (wire_read_body(rq, WIRE_MSG_BYTES_MAX) != 0)
        return;
    const char *from = NULL;
    uint64_t counter = 0;
    if (authenticate(rq, n, &from, &counter) != 0)
        return;
    bool full = false;
    if (!counter_fresh(n, from, counter, &full)) {
        if (full)
            http_reply_error(rq, 503, "too many senders",
                             "this node tracks the counters of at most 16 senders");
        else
            refuse(rq, "a replay: %s used counter %" PRIu64 " or a later one already", from,
                   counter);
        return;
    }
    pthread_mutex_lock(&n->lock);
    wire_handler_fn fn = n->handler;
    void *ctx = n->handler_ctx;
    pthread_mutex_unlock(&n->lock);
    struct buf *out = &rq->w->out;
    buf_reset(out);
    int status = 0;
    if (fn == NULL) {
        json_error(out, "not ready", "this node does not take messages yet");
        status = 503;
    } else {
        status = fn(ctx, from, rq->w->body.p, rq->w->body.len, out);
    }
    /* The reply travels on our link back to the sender: its fault points. */
    char point[FAULTS_NAME_MAX];
    snprintf(point, sizeof(point), "net/%s/%s/delay", n->self, from);
    int64_t delay_us = faults_check(point);
    if (delay_us > 0)
        (void)link_delay(n, delay_us);
    snprintf(point, sizeof(point), "net/%s/%s/drop", n->self, from);
    if (faults_check(point) > 0) {
        buf_reset(out);
        status = WIRE_REPLY_LOST_STATUS;
    }
    reply_signed(rq, n, from, counter, status);
}
