/*
 * static.c — the front end's files from the web root (--web, default the
 * source tree's platform/web). Only GETs that match no API route come here.
 * A path can never leave the root: any "." or ".." segment (however it was
 * encoded: civetweb has decoded %2e by now) is refused with 400, hidden
 * files are 404, and the file's real path (symlinks resolved) must still lie
 * under the root's real path.
 */
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/internal.h"

/* 0 for a clean relative path, -EINVAL for a ".."/"." segment or a
 * backslash, -ENOENT for a hidden file. */
static int check_path(const char *path)
{
    const char *seg = path;
    while (*seg != '\0') {
        while (*seg == '/')
            seg++;
        size_t len = strcspn(seg, "/");
        if (len == 0)
            break;
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return -EINVAL;
        if (memchr(seg, '\\', len) != NULL)
            return -EINVAL;
        if (seg[0] == '.')
            return -ENOENT;
        seg += len;
    }
    return 0;
}

/* The real path of root + path, if it is a regular file under root. */
static int resolve(const char *root, const char *path, char real[PATH_MAX], struct stat *st)
{
    char full[SERVE_PATH_MAX + PATH_MAX];
    int n = snprintf(full, sizeof(full), "%s%s", root, path);
    if (n < 0 || (size_t)n >= sizeof(full) || realpath(full, real) == NULL)
        return -ENOENT;
    size_t rl = strlen(root);
    if (strncmp(real, root, rl) != 0 || real[rl] != '/')
        return -ENOENT;
    if (stat(real, st) != 0)
        return -ENOENT;
    if (S_ISDIR(st->st_mode)) {
        n = snprintf(full, sizeof(full), "%s/index.html", real);
        if (n < 0 || (size_t)n >= sizeof(full) || realpath(full, real) == NULL ||
            strncmp(real, root, rl) != 0 || real[rl] != '/' || stat(real, st) != 0)
            return -ENOENT;
    }
    return S_ISREG(st->st_mode) ? 0 : -ENOENT;
}

static int read_file(const char *real, size_t size, struct buf *b)
{
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    buf_reset(b);
    int err = buf_reserve(b, size) ? 0 : -ENOMEM;
    size_t got = 0;
    while (!err && got < size) {
        ssize_t n = read(fd, b->p + b->len + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            err = n < 0 ? -errno : -EIO;
        else
            got += (size_t)n;
    }
    close(fd);
    if (!err)
        b->len += got;
    return err;
}

static void content_type(const char *real, char *out, size_t cap)
{
    const char *mime = mg_get_builtin_mime_type(real);
    bool text = strncmp(mime, "text/", 5) == 0 || strstr(mime, "javascript") != NULL ||
                strstr(mime, "json") != NULL || strstr(mime, "svg") != NULL;
    snprintf(out, cap, "%s%s", mime, text ? "; charset=utf-8" : "");
}

void static_serve(struct request *rq, const char *path)
{
    const char *root = rq->srv->web_root;
    int rc = check_path(path);
    if (rc == -EINVAL) {
        http_reply_error(rq, 400, "bad path", "a path may not contain '.' or '..' segments");
        return;
    }
    char real[PATH_MAX];
    struct stat st;
    if (rc == 0 && root[0] == '\0')
        rc = -ENOENT;
    if (rc == 0)
        rc = resolve(root, strcmp(path, "/") == 0 ? "/index.html" : path, real, &st);
    if (rc == 0 && (size_t)st.st_size > SERVE_STATIC_MAX)
        rc = -EFBIG;
    if (rc == 0)
        rc = read_file(real, (size_t)st.st_size, &rq->w->out);
    if (rc < 0) {
        snprintf(rq->detail, sizeof(rq->detail), "no route or file %.200s", path);
        if (rc == -ENOENT)
            http_reply_error(rq, 404, "not found", rq->detail);
        else
            http_reply_error(rq, 500, "cannot read the file", strerror(-rc));
        return;
    }
    char type[128];
    content_type(real, type, sizeof(type));
    http_reply_bytes(rq, &rq->w->out, 200, type, "Cache-Control: no-cache");
}
