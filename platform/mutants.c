/*
 * mutants.c — the names of the planted bugs (mutants.h), and which one the
 * environment switched on. Part of libplatform.
 */
#include "platform/mutants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const char *about;
} mutants[MUTANT_COUNT] = {
    [MUTANT_NONE] = {"none", "no planted bug"},
    [MUTANT_MIRROR_ACK_BEFORE_MIRROR] = {"mirror-ack-before-mirror",
                                         "ack=both acknowledges a write the mirror failed to "
                                         "commit, and forgets it"},
    [MUTANT_MIRROR_STRICT_NO_UNDO] = {"mirror-strict-no-undo",
                                      "policy=strict refuses a write the mirror could not take "
                                      "but leaves it on the lead"},
    [MUTANT_MIRROR_RESYNC_SKIPS] = {"mirror-resync-skips",
                                    "policy=degrade's resync skips one backlog entry"},
    [MUTANT_MIRROR_READ_STALE] = {"mirror-read-stale", "reads fall back to a copy that is behind"},
    [MUTANT_SHOP_CANCEL_KEEPS_STOCK] = {"shop-cancel-keeps-stock",
                                        "cancelling an order does not return its stock"},
    [MUTANT_SHOP_TOTAL_ROUNDED] = {"shop-total-rounded",
                                   "an order's total goes through a float and loses a cent"},
    [MUTANT_SHOP_OUTBOX_SKIPS_USERS] = {"shop-outbox-skips-users",
                                        "the outbox records no entry for changes to users"},
    [MUTANT_SHOP_QUEUE_AFTER_COMMIT] = {"shop-queue-after-commit",
                                        "queue=same writes the sync-queue rows after the "
                                        "change's commit"},
    [MUTANT_SHOP_CHECKOUT_TAKES_ONE] = {"shop-checkout-takes-one",
                                        "checkout takes one unit of stock per line, whatever "
                                        "the quantity ordered"},
    [MUTANT_SHOP_CHECKOUT_LOST_UPDATE] = {"shop-checkout-lost-update",
                                          "checkout writes back the stock its cart line read, "
                                          "less the quantity: a lost update"},
    [MUTANT_DB_FSYNC_ERROR_IGNORED] = {"db-fsync-error-ignored",
                                       "a commit whose fsync failed is acknowledged"},
    [MUTANT_REPLOG_POSITION_SEPARATE] = {"replog-position-separate",
                                         "a copy records the position it applied in a separate "
                                         "transaction"},
    [MUTANT_REPLOG_APPLY_TWICE] = {"replog-apply-twice",
                                   "a resent batch is applied again instead of skipped by "
                                   "position"},
    [MUTANT_SYNC_CENTRAL_IGNORES_VERSIONS] = {"sync-central-ignores-versions",
                                              "central overwrites a row with an older version"},
    [MUTANT_SYNC_FAILED_EARLY] = {"sync-failed-early",
                                  "a sync-queue row is marked FAILED after one failed push"},
    [MUTANT_SYNC_MARKS_UNSENT] = {"sync-marks-unsent",
                                  "the local marks SYNCED a row central did not take"},
    [MUTANT_ASYNC_FAILOVER_NO_FENCE] = {"async-failover-no-fence",
                                        "the failover promotes the secondary but leaves the old "
                                        "primary taking writes"},
    [MUTANT_CACHE_KEEPS_ORDERS] = {"cache-keeps-orders",
                                   "a replica's read cache is not invalidated by changes to "
                                   "orders"},
    [MUTANT_CACHE_KEEPS_PRODUCTS] = {"cache-keeps-products",
                                     "a replica's read cache is not invalidated by changes to "
                                     "products (their stock)"},
    [MUTANT_LB_PICKS_DEAD] = {"lb-picks-dead",
                              "the balancer rotates over every replica, not only the healthy "
                              "ones"},
    [MUTANT_REGISTRY_NEVER_FORGETS] = {"registry-never-forgets",
                                       "the registry keeps listing a replica it stopped "
                                       "hearing"},
    [MUTANT_CLIENT_KEEPS_FIRST_ANSWER] = {"client-keeps-first-answer",
                                          "a client keeps the registry's first answer and "
                                          "ignores every later one"},
};

const char *mutant_name(enum mutant m)
{
    return (unsigned)m < MUTANT_COUNT ? mutants[m].name : NULL;
}

const char *mutant_about(enum mutant m)
{
    return (unsigned)m < MUTANT_COUNT ? mutants[m].about : NULL;
}

#ifdef FAULTDRILL_MUTANTS
enum mutant mutant_active(void)
{
    static int active = -1;
    if (active >= 0)
        return (enum mutant)active;
    const char *want = getenv("FAULTDRILL_MUTANT");
    active = MUTANT_NONE;
    for (int m = 1; want != NULL && want[0] != '\0' && m < MUTANT_COUNT; m++)
        if (strcmp(want, mutants[m].name) == 0)
            active = m;
    if (want != NULL && want[0] != '\0' && active == MUTANT_NONE && strcmp(want, "none") != 0) {
        fprintf(stderr, "FAULTDRILL_MUTANT=%s: no such mutant\n", want);
        exit(3);
    }
    return (enum mutant)active;
}
#endif
