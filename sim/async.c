/*
 * async.c — asynchronous replication in the simulator. NOT BUILT YET.
 */
#include <errno.h>
#include <stdio.h>

#include "sim/world.h"

static int async_configure(struct sim *s)
{
    snprintf(s->msg, sizeof(s->msg), "%.300s: topology async is not built yet", s->drill->file);
    return -ENOTSUP;
}

const struct world_topo world_async_topo = {
    .name = "async",
    .configure = async_configure,
};
