/*
 * offline.c — the offline topology in the simulator. NOT BUILT YET: a drill that
 * uses it is refused with exit 3 and a clear message. Part of libsim.
 */
#include <errno.h>
#include <stdio.h>

#include "sim/world.h"

static int offline_configure(struct sim *s)
{
    snprintf(s->msg, sizeof(s->msg), "%.300s: topology offline is not built yet", s->drill->file);
    return -ENOTSUP;
}

const struct world_topo world_offline_topo = {
    .name = "offline",
    .configure = offline_configure,
};
