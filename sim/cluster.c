/*
 * cluster.c — the cluster topology in the simulator. NOT BUILT YET: a drill that
 * uses it is refused with exit 3 and a clear message. Part of libsim.
 */
#include <errno.h>
#include <stdio.h>

#include "sim/world.h"

static int cluster_configure(struct sim *s)
{
    snprintf(s->msg, sizeof(s->msg), "%.300s: topology cluster is not built yet", s->drill->file);
    return -ENOTSUP;
}

const struct world_topo world_cluster_topo = {
    .name = "cluster",
    .configure = cluster_configure,
};
