/*
 * worker.c — what each civetweb worker thread owns (its thread pointer):
 * read-only shop handles on each copy, opened on first use, so GETs run in
 * parallel without touching the writer; the semaphore its write jobs are
 * woken on; and the buffers a request needs, kept from one request to the
 * next so a reply allocates nothing once warm.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/internal.h"

void *worker_create(struct server *srv)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->srv = srv;
    if (sem_init(&w->done, 0, 0) != 0) {
        free(w);
        return NULL;
    }
    if (http_guard_add(srv, w) != 0) {
        sem_destroy(&w->done);
        free(w);
        return NULL;
    }
    return w;
}

void worker_free(void *p)
{
    struct worker *w = p;
    if (w == NULL)
        return;
    http_guard_remove(w->srv, w);
    shop_close(w->reader[0]);
    shop_close(w->reader[1]);
    sem_destroy(&w->done);
    buf_release(&w->out);
    buf_release(&w->body);
    buf_release(&w->products_cache.reply);
    free(w->products);
    free(w->ids);
    free(w);
}

static int reader_get(struct request *rq, int copy, shop **out)
{
    struct worker *w = rq->w;
    if (w->reader[copy] == NULL) {
        const struct shop_copy *c = copy == 0 ? &w->srv->cfg.primary : &w->srv->cfg.mirror;
        char msg[SHOP_ERRMSG_MAX];
        int rc = shop_open_reader(c, &w->srv->env, &w->reader[copy], msg);
        if (rc != 0) {
            snprintf(rq->detail, sizeof(rq->detail), "%s", msg);
            return rc == -ENOENT ? -EIO : rc;
        }
    }
    *out = w->reader[copy];
    return 0;
}

static bool is_storage_error(int rc)
{
    return rc == -EIO || rc == -ENOSPC || rc == -EBUSY || rc == -ENOMEM || rc == -EBADMSG;
}

static int read_on(struct request *rq, int copy, int (*fn)(shop *s, void *arg), void *arg)
{
    shop *s = NULL;
    int rc = reader_get(rq, copy, &s);
    if (!rq->wrote && !rq->position_fixed) {
        /* before reading: the copy holds at least this much, never less */
        rq->has_position = true;
        rq->position = writer_position(&rq->srv->writer, copy);
    }
    if (rc == 0) {
        rc = fn(s, arg);
        if (rc < 0)
            snprintf(rq->detail, sizeof(rq->detail), "%s", shop_errmsg(s));
        if (is_storage_error(rc)) {
            /* A fresh handle next time: nothing stale survives a healed disk. */
            shop_close(s);
            rq->w->reader[copy] = NULL;
        }
    }
    return rc;
}

int worker_read(struct request *rq, int (*fn)(shop *s, void *arg), void *arg)
{
    unsigned hint = writer_read_hint(&rq->srv->writer);
    int lead = hint & READ_HINT_MIRROR_LEADS ? 1 : 0;
    int rc = read_on(rq, lead, fn, arg);
    if (rc >= 0 || !is_storage_error(rc) || !(hint & READ_HINT_FALLBACK))
        return rc;
    /* The lead's disk cannot read; the other copy holds the same writes. */
    char first[SERVE_DETAIL_MAX];
    snprintf(first, sizeof(first), "%s", rq->detail);
    int rc2 = read_on(rq, 1 - lead, fn, arg);
    if (rc2 < 0 && is_storage_error(rc2)) {
        char second[SERVE_DETAIL_MAX];
        snprintf(second, sizeof(second), "%s", rq->detail);
        snprintf(rq->detail, sizeof(rq->detail), "neither copy could read: %.200s / %.200s", first,
                 second);
        return rc;
    }
    return rc2;
}
