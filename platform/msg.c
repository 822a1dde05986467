/*
 * msg.c — the binary codec of node messages: the only place that turns a
 * protocol message into bytes for a host's transport and back. A host
 * carries the bytes and, for its trace, may ask what they are
 * (node_msg_describe); it never decodes them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/node_impl.h"

static const char node_msg_magic[4] = {'F', 'D', 'N', '1'};

static const char *const msg_type_names[NODE_MSG_TYPES_END] = {
    [NODE_MSG_ASYNC_BATCH] = "batch",
    [NODE_MSG_ASYNC_ACK] = "ack",
    [NODE_MSG_ASYNC_SNAPSHOT] = "snapshot",
    [NODE_MSG_ASYNC_FENCE] = "fence",
    [NODE_MSG_SYNC_PUSH] = "push",
    [NODE_MSG_SYNC_ACCEPTED] = "accepted",
    [NODE_MSG_SYNC_REFUSED] = "refused",
    [NODE_MSG_CLUSTER_BATCH] = "changes",
    [NODE_MSG_CLUSTER_ACK] = "position",
    [NODE_MSG_CLUSTER_PROBE] = "probe",
    [NODE_MSG_HEARTBEAT] = "heartbeat",
    [NODE_MSG_REGISTRY_QUERY] = "query",
    [NODE_MSG_REGISTRY_ANSWER] = "replicas",
};

const char *node_msg_type_name(enum node_msg_type type)
{
    if ((int)type <= 0 || type >= NODE_MSG_TYPES_END)
        return NULL;
    return msg_type_names[type];
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_i64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static int64_t get_i64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

int node_msg_encode(const struct node_msg *m, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (node_msg_type_name(m->type) == NULL || (m->len > 0 && m->data == NULL))
        return -EINVAL;
    if (m->len > NODE_MSG_BYTES_MAX - NODE_MSG_HEADER_BYTES)
        return -E2BIG;
    size_t len = NODE_MSG_HEADER_BYTES + m->len;
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return -ENOMEM;
    memcpy(buf, node_msg_magic, 4);
    buf[4] = (uint8_t)m->type;
    put_i64(buf + 5, m->a);
    put_i64(buf + 13, m->b);
    put_u32(buf + 21, (uint32_t)m->len);
    if (m->len > 0)
        memcpy(buf + NODE_MSG_HEADER_BYTES, m->data, m->len);
    *out = buf;
    *out_len = len;
    return 0;
}

int node_msg_decode(const void *buf, size_t len, struct node_msg *out)
{
    const uint8_t *p = buf;
    memset(out, 0, sizeof(*out));
    if (buf == NULL || len < NODE_MSG_HEADER_BYTES || len > NODE_MSG_BYTES_MAX ||
        memcmp(p, node_msg_magic, 4) != 0)
        return -EPROTO;
    if (node_msg_type_name((enum node_msg_type)p[4]) == NULL)
        return -EPROTO;
    uint32_t n = get_u32(p + 21);
    if ((size_t)n != len - NODE_MSG_HEADER_BYTES)
        return -EPROTO;
    out->type = (enum node_msg_type)p[4];
    out->a = get_i64(p + 5);
    out->b = get_i64(p + 13);
    out->data = n > 0 ? p + NODE_MSG_HEADER_BYTES : NULL;
    out->len = n;
    return 0;
}

void node_msg_describe(const void *msg, size_t len, char *buf, size_t buf_len)
{
    struct node_msg m;
    if (buf_len == 0)
        return;
    if (node_msg_decode(msg, len, &m) != 0) {
        snprintf(buf, buf_len, "malformed message");
        return;
    }
    switch (m.type) {
    case NODE_MSG_ASYNC_BATCH:
        snprintf(buf, buf_len, "batch %lld..%lld", (long long)m.a, (long long)m.b);
        break;
    case NODE_MSG_ASYNC_ACK:
        snprintf(buf, buf_len, "ack %lld%s", (long long)m.a, m.b ? " (gap)" : "");
        break;
    case NODE_MSG_ASYNC_SNAPSHOT:
        snprintf(buf, buf_len, "snapshot (%zu bytes)", m.len);
        break;
    case NODE_MSG_SYNC_PUSH:
    case NODE_MSG_SYNC_ACCEPTED:
    case NODE_MSG_SYNC_REFUSED:
        snprintf(buf, buf_len, "%s %lld (%zu bytes)", node_msg_type_name(m.type), (long long)m.b,
                 m.len);
        break;
    case NODE_MSG_CLUSTER_BATCH:
        snprintf(buf, buf_len, "changes %lld..%lld", (long long)m.a, (long long)m.b);
        break;
    case NODE_MSG_CLUSTER_ACK:
        snprintf(buf, buf_len, "%s %lld%s", m.b % 4 & 2 ? "hello at" : "position", (long long)m.a,
                 m.b % 4 & 1 ? " (gap)" : "");
        break;
    case NODE_MSG_CLUSTER_PROBE:
    case NODE_MSG_REGISTRY_QUERY:
        snprintf(buf, buf_len, "%s", node_msg_type_name(m.type));
        break;
    case NODE_MSG_REGISTRY_ANSWER:
        snprintf(buf, buf_len, "replicas (%lld listed)", (long long)m.a);
        break;
    default:
        snprintf(buf, buf_len, "%s %lld", node_msg_type_name(m.type), (long long)m.a);
        break;
    }
}
