/*
 * status.c — what the server says about itself: /mirror/status (live, from
 * the snapshot the writer publishes after every group), /heartbeat, and the
 * routes of topologies this server does not run, which answer 404
 * {"error":"not configured"} rather than pretend.
 */
#include <civetweb.h>
#include <stdio.h>
#include <string.h>

#include "serve/internal.h"

static const char *topology_name(const struct server *srv)
{
    return serve_role_name(srv->opt.role);
}

void status_mirror(struct request *rq)
{
    struct serve_status st;
    writer_get_status(&rq->srv->writer, &st);
    if (!st.mirrored) {
        snprintf(rq->detail, sizeof(rq->detail), "topology %s has no mirror",
                 topology_name(rq->srv));
        http_reply_error(rq, 404, "not configured", rq->detail);
        return;
    }
    const struct mirror_status *m = &st.mirror;
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"topology\":\"mirror\",\"policy\":");
    json_str(b, rq->srv->opt.policy == MIRROR_STRICT ? "strict" : "degrade");
    buf_puts(b, ",\"ack\":");
    json_str(b, rq->srv->opt.ack == MIRROR_ACK_EARLY ? "early" : "both");
    buf_puts(b, ",\"synchronous\":");
    json_str(b, rq->srv->opt.sync_normal ? "normal" : "full");
    buf_puts(b, ",\"state\":");
    json_str(b, mirror_state_name(m->state));
    buf_puts(b, ",\"since\":");
    json_time(b, m->since_us);
    buf_puts(b, ",\"lead\":");
    json_str(b, m->lead);
    buf_puts(b, ",\"behind\":");
    if (m->behind != NULL)
        json_str(b, m->behind);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"changesBehind\":");
    buf_i64(b, m->changes_behind);
    buf_puts(b, ",\"seqPrimary\":");
    buf_i64(b, m->seq_primary);
    buf_puts(b, ",\"seqMirror\":");
    buf_i64(b, m->seq_mirror);
    buf_puts(b, ",\"resyncs\":");
    buf_i64(b, m->resyncs);
    buf_puts(b, ",\"lastError\":");
    json_str(b, m->last_error);
    buf_puts(b, "}");
    http_reply(rq, 200);
}

void status_heartbeat(struct request *rq)
{
    struct serve_status st;
    writer_get_status(&rq->srv->writer, &st);
    char uptime[32];
    snprintf(uptime, sizeof(uptime), "%.1f",
             (double)(host_mono_us() - rq->srv->started_mono_us) / 1e6);
    struct buf *b = &rq->w->out;
    buf_reset(b);
    buf_puts(b, "{\"status\":\"ok\",\"node\":");
    json_str(b, rq->srv->opt.node);
    buf_puts(b, ",\"topology\":");
    json_str(b, topology_name(rq->srv));
    buf_puts(b, ",\"uptimeSeconds\":");
    buf_puts(b, uptime);
    buf_puts(b, ",\"groups\":");
    buf_i64(b, (int64_t)st.groups);
    buf_puts(b, ",\"writes\":");
    buf_i64(b, (int64_t)st.writes);
    buf_puts(b, "}");
    http_reply(rq, 200);
}

void status_not_configured(struct request *rq)
{
    const char *uri = rq->ri->local_uri_raw ? rq->ri->local_uri_raw : rq->ri->local_uri;
    const char *what = strstr(uri, "replication") ? "async replication"
                       : strstr(uri, "sync/status") ? "offline sync"
                       : strstr(uri, "getServer")   ? "service registry"
                                                    : "cluster propagation";
    snprintf(rq->detail, sizeof(rq->detail), "topology %s has no %s", topology_name(rq->srv),
             what);
    http_reply_error(rq, 404, "not configured", rq->detail);
}

void status_replication(struct request *rq)
{
    if (rq->srv->opt.role == SERVE_ASYNC || rq->srv->opt.role == SERVE_SECONDARY)
        async_status(rq);
    else if (rq->srv->opt.role == SERVE_CLUSTER || rq->srv->opt.role == SERVE_REPLICA ||
             rq->srv->opt.role == SERVE_REGISTRY)
        cluster_status(rq);
    else
        status_not_configured(rq);
}

void status_sync(struct request *rq)
{
    if (rq->srv->opt.role == SERVE_OFFLINE || rq->srv->opt.role == SERVE_CENTRAL)
        offline_status(rq);
    else
        status_not_configured(rq);
}
