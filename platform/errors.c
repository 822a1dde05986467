/*
 * errors.c — what the platform's negative errno codes mean to a user, and
 * the crash-point hook. Depends on libfiu's fiu.h only (the point is a
 * fiu_fail call; the decision belongs to whoever enabled it).
 */
#include <assert.h>
#include <errno.h>
#include <fiu.h>
#include <stdio.h>
#include <string.h>

#include "platform/internal.h"

bool platform_is_unknown(int rc)
{
    return rc == -EINPROGRESS || rc == -ECANCELED;
}

bool platform_is_rejected(int rc)
{
    return rc == -EINVAL || rc == -ENOENT || rc == -EEXIST || rc == -ERANGE || rc == -EPERM ||
           rc == -ENODATA || rc == -E2BIG;
}

const char *platform_strerror(int rc)
{
    switch (-rc) {
    case 0:
        return "ok";
    case EINVAL:
        return "invalid argument";
    case ENOENT:
        return "not found";
    case EEXIST:
        return "already exists";
    case ERANGE:
        return "insufficient stock";
    case EPERM:
        return "not allowed";
    case ENODATA:
        return "the cart is empty";
    case EIO:
        return "storage failure: the write was not applied";
    case ENOSPC:
        return "disk full: the write was not applied";
    case EINPROGRESS:
        return "outcome unknown: the commit could not be synced";
    case ECANCELED:
        return "the node crashed: outcome unknown";
    case EBADMSG:
        return "copies diverged or database corrupt";
    case EBUSY:
        return "database busy";
    case ENOMEM:
        return "out of memory";
    case EROFS:
        return "read-only storage";
    case E2BIG:
        return "over a limit";
    case EPROTO:
        return "database from a newer version";
    case EACCES:
        return "cannot open the database file";
    case ETIMEDOUT:
        return "no reply in time: the other node or the link is down";
    default:
        return "unexpected error";
    }
}

bool platform_crash_point(const struct platform_env *env, const char *node, const char *point)
{
    char name[160];
    int n = snprintf(name, sizeof(name), "crash/%s/%s", node, point);
    assert(n > 0 && (size_t)n < sizeof(name));
    if (!fiu_fail(name))
        return false;
    if (env->crash != NULL)
        env->crash(env->ctx, node, point);
    return true;
}
