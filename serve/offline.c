/* offline.c — offline-first sync in serve: not built yet. */
#include <errno.h>
#include <stdio.h>

#include "serve/internal.h"

int offline_start(struct server *srv)
{
    (void)srv;
    fprintf(stderr, "faultdrill serve: topology offline is not built yet\n");
    return -ENOSYS;
}

void offline_stop(struct server *srv)
{
    (void)srv;
}

void offline_status(struct request *rq)
{
    status_not_configured(rq);
}
