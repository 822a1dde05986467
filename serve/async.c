/* async.c — asynchronous replication in serve: not built yet. */
#include <errno.h>
#include <stdio.h>

#include "serve/internal.h"

int async_start(struct server *srv)
{
    (void)srv;
    fprintf(stderr, "faultdrill serve: topology async is not built yet\n");
    return -ENOSYS;
}

void async_stop(struct server *srv)
{
    (void)srv;
}

void async_status(struct request *rq)
{
    status_not_configured(rq);
}
