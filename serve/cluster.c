/* cluster.c — a leader with replicas in serve: not built yet. */
#include <errno.h>
#include <stdio.h>

#include "serve/internal.h"

int cluster_start(struct server *srv)
{
    fprintf(stderr, "faultdrill serve: topology %s is not built yet\n",
            serve_role_name(srv->opt.role));
    return -ENOSYS;
}

void cluster_stop(struct server *srv)
{
    (void)srv;
}

void cluster_status(struct request *rq)
{
    status_not_configured(rq);
}

void cluster_get_server(struct request *rq)
{
    status_not_configured(rq);
}

void cluster_api_sync(struct request *rq)
{
    status_not_configured(rq);
}

bool cluster_forward(struct request *rq)
{
    (void)rq;
    return false;
}
