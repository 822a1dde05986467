/*
 * mutants.h — planted bugs for the checkers' mutation score (tests/mutants).
 * Off by default and free when off: without -DFAULTDRILL_MUTANTS=ON,
 * mutant_is() is a constant false and every `if (mutant_is(MUTANT_X))` line
 * compiles away. A mutant build switches one on at run time:
 * FAULTDRILL_MUTANT=<name> (see mutant_name). Each mutant is a bug a real
 * implementation could have; `tests/mutants/run.sh` runs the drill catalog
 * against each and fails unless some drill catches every one.
 */
#ifndef FAULTDRILL_PLATFORM_MUTANTS_H
#define FAULTDRILL_PLATFORM_MUTANTS_H

#include <stdbool.h>

enum mutant {
    MUTANT_NONE,
    /* mirror.c */
    MUTANT_MIRROR_ACK_BEFORE_MIRROR, /* ack=both acknowledges although the mirror's commit failed */
    MUTANT_MIRROR_STRICT_NO_UNDO,    /* strict refuses the write but leaves it on the lead */
    MUTANT_MIRROR_RESYNC_SKIPS,      /* degrade's resync skips one backlog entry */
    MUTANT_MIRROR_READ_STALE,        /* reads fall back to a copy that is behind */
    /* shop.c */
    MUTANT_SHOP_CANCEL_KEEPS_STOCK, /* cancelling an order does not return its stock */
    MUTANT_SHOP_TOTAL_ROUNDED,      /* an order's total loses a cent (money through a float) */
    MUTANT_SHOP_OUTBOX_SKIPS_USERS, /* no outbox entry for changes to the users table */
    MUTANT_SHOP_QUEUE_AFTER_COMMIT, /* queue=same writes the queue rows after the commit */
    MUTANT_SHOP_CHECKOUT_TAKES_ONE, /* checkout takes one unit of stock per line, whatever the
                                       quantity */
    MUTANT_SHOP_CHECKOUT_LOST_UPDATE, /* checkout writes back the stock its cart line read, less
                                         the quantity (a read-modify-write across two
                                         transactions) */
    /* db.c */
    MUTANT_DB_FSYNC_ERROR_IGNORED, /* a commit whose fsync failed is acknowledged */
    /* replog.c */
    MUTANT_REPLOG_POSITION_SEPARATE, /* the applied position recorded in a separate transaction */
    MUTANT_REPLOG_APPLY_TWICE,       /* a resent batch is applied again (no skip by position) */
    /* sync.c */
    MUTANT_SYNC_CENTRAL_IGNORES_VERSIONS, /* central takes an older version over a newer one */
    MUTANT_SYNC_FAILED_EARLY,             /* a row is marked FAILED before its retry budget */
    MUTANT_SYNC_MARKS_UNSENT,             /* the local marks a row SYNCED that central refused */
    /* async.c */
    MUTANT_ASYNC_FAILOVER_NO_FENCE, /* the failover leaves the old primary serving (no fencing) */
    /* cluster.c, cache.c, registry.c */
    MUTANT_CACHE_KEEPS_ORDERS,      /* a replica's cache=on is not invalidated by orders' changes */
    MUTANT_CACHE_KEEPS_PRODUCTS,    /* nor, this one, by changes to products (their stock) */
    MUTANT_LB_PICKS_DEAD,           /* round-robin over every replica, not the healthy ones */
    MUTANT_REGISTRY_NEVER_FORGETS,  /* a replica the registry heard once stays listed for good */
    MUTANT_CLIENT_KEEPS_FIRST_ANSWER, /* a client keeps the registry's first answer for good */
    MUTANT_COUNT,
};

/* "mirror-ack-before-mirror", ...; NULL past the end. */
const char *mutant_name(enum mutant m);
/* What the bug is, in one line. */
const char *mutant_about(enum mutant m);

#ifdef FAULTDRILL_MUTANTS
/* The mutant FAULTDRILL_MUTANT names (read once), MUTANT_NONE when unset. */
enum mutant mutant_active(void);
static inline bool mutant_is(enum mutant m)
{
    return mutant_active() == m;
}
#else
static inline bool mutant_is(enum mutant m)
{
    (void)m;
    return false;
}
#endif

#endif /* FAULTDRILL_PLATFORM_MUTANTS_H */
