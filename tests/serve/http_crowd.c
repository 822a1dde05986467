/*
 * http_crowd.c — the clients a shell cannot be, for serve_attack_test.sh:
 *
 *   http_crowd crowd PORT SLOW IDLE SECONDS
 *     opens IDLE connections that send nothing and SLOW connections that
 *     send a POST /orders' headers and then trickle its body one byte every
 *     200 ms; after a second, a fresh connection's GET /heartbeat is timed
 *     (connect to the end of the reply), once a second for SECONDS. Prints
 *     "fresh worst MS answered N/M held H": exit 0 when every fresh request
 *     was answered 200, 1 otherwise.
 *   http_crowd slow PORT
 *     one POST /orders whose body trickles a byte every 200 ms: prints the
 *     status the server answered and after how many ms.
 *   http_crowd idle PORT [REQUEST]
 *     one connection that sends nothing (or REQUEST, then waits): prints
 *     after how many ms the server closed it.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CROWD_MAX 2000
#define TRICKLE_MS 200

static const char slow_head[] = "POST /orders HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{";

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads until the peer closes or timeout_ms passes; returns bytes read. */
static size_t read_until_close(int fd, char *buf, size_t cap, int timeout_ms, bool *closed)
{
    size_t got = 0;
    long long end = now_ms() + timeout_ms;
    *closed = false;
    while (now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now_ms())) <= 0)
            break;
        char tmp[4096];
        ssize_t k = recv(fd, tmp, sizeof(tmp), 0);
        if (k <= 0) {
            *closed = true;
            break;
        }
        size_t take = (size_t)k < cap - 1 - got ? (size_t)k : cap - 1 - got;
        memcpy(buf + got, tmp, take);
        got += take;
    }
    buf[got] = '\0';
    return got;
}

/* The time a fresh GET /heartbeat takes, or -1 when it is not a 200. */
static long long fresh_request(int port)
{
    long long t0 = now_ms();
    int fd = dial(port);
    if (fd < 0)
        return -1;
    char req[128], buf[4096];
    int n = snprintf(req, sizeof(req),
                     "GET /heartbeat HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                     port);
    bool closed;
    if (send_all(fd, req, (size_t)n) != 0) {
        close(fd);
        return -1;
    }
    read_until_close(fd, buf, sizeof(buf), 30000, &closed);
    close(fd);
    long long t = now_ms() - t0;
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? t : -1;
}

static int crowd(int port, int slow, int idle, int seconds)
{
    static int fds[CROWD_MAX];
    int n = 0;
    char head[256];
    int hn = snprintf(head, sizeof(head), slow_head, port);
    for (int i = 0; i < idle + slow && n < CROWD_MAX; i++) {
        int fd = dial(port);
        if (fd < 0) {
            fprintf(stderr, "http_crowd: connect %d: %s\n", i, strerror(errno));
            return 2;
        }
        if (i >= idle && send_all(fd, head, (size_t)hn) != 0) {
            fprintf(stderr, "http_crowd: send: %s\n", strerror(errno));
            return 2;
        }
        fds[n++] = fd;
    }
    long long start = now_ms(), next_fresh = start + 1000, next_trickle = start;
    long long worst = 0;
    int asked = 0, answered = 0;
    while (now_ms() < start + 1000LL * (seconds + 1)) {
        if (now_ms() >= next_trickle) {
            for (int i = idle; i < n; i++)
                if (fds[i] >= 0 && send(fds[i], " ", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
                    close(fds[i]);
                    fds[i] = -1;
                }
            next_trickle += TRICKLE_MS;
        }
        if (now_ms() >= next_fresh) {
            long long t = fresh_request(port);
            asked++;
            if (t >= 0) {
                answered++;
                worst = t > worst ? t : worst;
            } else {
                worst = 30000;
            }
            next_fresh = now_ms() + 1000;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    int held = 0;
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        char c;
        if (!(poll(&p, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_PEEK) <= 0))
            held++;
        close(fds[i]);
    }
    printf("fresh worst %lld ms answered %d/%d held %d/%d\n", worst, answered, asked, held, n);
    return answered == asked && asked > 0 ? 0 : 1;
}

static int slow_one(int port)
{
    int fd = dial(port);
    char head[256], buf[4096];
    int hn = snprintf(head, sizeof(head), slow_head, port);
    if (fd < 0 || send_all(fd, head, (size_t)hn) != 0)
        return 2;
    long long t0 = now_ms();
    bool closed = false;
    size_t got = 0;
    while (now_ms() - t0 < 60000 && got == 0 && !closed) {
        send(fd, " ", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        got = read_until_close(fd, buf, sizeof(buf), TRICKLE_MS, &closed);
    }
    if (got > 0) /* the rest of the reply */
        read_until_close(fd, buf + got, sizeof(buf) - got, 1000, &closed);
    close(fd);
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    printf("%d %lld\n", status, now_ms() - t0);
    return 0;
}

static int idle_one(int port, const char *request)
{
    int fd = dial(port);
    if (fd < 0)
        return 2;
    long long t0 = now_ms();
    if (request != NULL) {
        /* "\r\n" written as \r\n in the argument */
        char req[1024];
        size_t n = 0;
        for (const char *p = request; *p && n + 1 < sizeof(req); p++) {
            if (p[0] == '\\' && (p[1] == 'r' || p[1] == 'n')) {
                req[n++] = p[1] == 'r' ? '\r' : '\n';
                p++;
            } else {
                req[n++] = *p;
            }
        }
        if (send_all(fd, req, n) != 0)
            return 2;
    }
    char buf[8192];
    bool closed = false;
    read_until_close(fd, buf, sizeof(buf), 60000, &closed);
    close(fd);
    printf("%s %lld\n", closed ? "closed" : "open", now_ms() - t0);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 6 && strcmp(argv[1], "crowd") == 0)
        return crowd(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc >= 3 && strcmp(argv[1], "slow") == 0)
        return slow_one(atoi(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "idle") == 0)
        return idle_one(atoi(argv[2]), argc >= 4 ? argv[3] : NULL);
    fprintf(stderr, "usage: http_crowd crowd PORT SLOW IDLE SECONDS | slow PORT | "
                    "idle PORT [REQUEST]\n");
    return 2;
}
