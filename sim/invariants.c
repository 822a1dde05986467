/*
 * invariants.c — the invariant catalog (DESIGN.md §4, a contract for the
 * names): what each checker promises, in the table's words, and a paragraph
 * a student can read when it breaks (`faultdrill invariants` prints it,
 * reports quote it). Data only: the checkers themselves live elsewhere in
 * libsim; the drill parser validates `expect` lines against this table.
 */
#include "sim/drill.h"

#include <assert.h>
#include <string.h>

#define ANY 0u /* meaningful on every topology */

static const struct invariant_info catalog[] = {
    {
        .name = "no-lost-acks",
        .summary = "every write acknowledged to a client is present, after recovery, on every "
                   "copy that was meant to hold it synchronously",
        .explanation =
            "When the shop tells a customer \"your order is placed\", that order must survive: "
            "after every crash, restart and failover it must still be on every copy that was "
            "meant to hold it synchronously. It breaks when a write is acknowledged before it "
            "is durable everywhere it should be. The classic bug is acknowledging after the "
            "primary alone (mirror ack=early, or PRAGMA synchronous=NORMAL): a crash between "
            "the acknowledgement and the second commit or the fsync loses an order the "
            "customer was told exists. Operations in flight when a node died have an unknown "
            "outcome and count neither as lost nor as acknowledged.",
        .options = "",
        .witness = "acknowledged writes looked up",
        .lacks = "no write that leaves a row (checkout, cancel, user-create) was acknowledged to a client",
        .components = ANY,
    },
    {
        .name = "mirror-identical",
        .summary = "primary and mirror hold identical contents at every checkpoint (strict), or "
                   "once resynced (degrade)",
        .explanation =
            "A mirror is only worth having if it is a true copy. With policy=strict both copies "
            "must hold exactly the same rows at every checkpoint; with policy=degrade one copy "
            "may fall behind while its partner fails, but once the fault heals the resync must "
            "make them identical again. It breaks when a write lands on one copy only: a crash "
            "between the two commits, a disk error on the mirror that is ignored, or a resync "
            "that skips or replays changes. With ack=early the copies drift apart silently, "
            "and nobody notices until the day the mirror has to take over.",
        .options = "",
        .witness = "acknowledged writes compared on both copies",
        .lacks = "no write was acknowledged before a point where both copies could be read and compared",
        .components = DRILL_MIRROR,
    },
    {
        .name = "replica-prefix",
        .summary = "the secondary equals the primary as of some earlier commit, and its "
                   "position never moves back",
        .explanation =
            "An asynchronous copy may lag behind, but it must never invent history: at every "
            "moment it must equal the primary as the primary was at some earlier commit, with "
            "changes applied in order and exactly once, and its position must never move "
            "backwards. It breaks when batches are applied out of order, twice, or halfway (a "
            "crash between applying a batch and recording its position). The naive mode "
            "outbox=off copies the whole state on a timer while writes go on, so the copy can "
            "hold a mix of old and new rows that the primary never held at any moment.",
        .options = "",
        .witness = "changes applied on the secondary",
        .lacks = "the secondary applied no change while it was a secondary (no writes, or a failover before any batch)",
        .components = DRILL_ASYNC | DRILL_CLUSTER,
    },
    {
        .name = "converges",
        .summary = "after `drain`, every copy holds identical contents within the drain bound "
                   "(offline sync: central holds every local change)",
        .explanation =
            "Once the faults stop and the drain has run, every copy must end up holding the "
            "same data within the time the drain allows: mirrors resynced, secondaries caught "
            "up, replicas in step with the leader, and in offline sync the central database "
            "holding every change made on every local. This is the liveness half of "
            "replication: safety is not enough if the copies never agree again. It breaks "
            "when a change is dropped for good (a lost message that is never retried, a queue "
            "entry never written because of queue=separate, a change marked SYNCED that never "
            "arrived) or when catching up takes longer than the drain bound.",
        .options = "",
        .witness = "acknowledged writes on the converged copies",
        .lacks = "nothing was written before the drain, so every copy was trivially equal (or there was no drain)",
        .components = DRILL_MIRROR | DRILL_ASYNC | DRILL_OFFLINE | DRILL_CLUSTER,
    },
    {
        .name = "outbox-accounted",
        .summary = "every local change is SYNCED and present centrally, or PENDING/FAILED and "
                   "visible in the status; nothing SYNCED twice; FAILED only after the retry "
                   "budget",
        .explanation =
            "In offline-first sync every change made on a local must be accounted for: either "
            "SYNCED and present on central, or still PENDING or FAILED and visible in the sync "
            "status so that someone can act on it. Nothing may be applied centrally twice, and "
            "a change may be marked FAILED only after its retry budget is spent. It breaks in "
            "the naive mode queue=separate, where a row and its queue entry are written in two "
            "transactions: a crash between them leaves a change nobody will ever push. It also "
            "breaks when a push succeeds but the node dies before marking it SYNCED and the "
            "retry is not an idempotent upsert.",
        .options = "",
        .witness = "local changes accounted",
        .lacks = "no local change was made (no write reached a local)",
        .components = DRILL_OFFLINE,
    },
    {
        .name = "stock-conserved",
        .summary = "per product, initial stock = stock now + quantities in orders not "
                   "cancelled; stock never below zero",
        .explanation =
            "Stock is never created or destroyed: for every product, the stock it started with "
            "equals the stock left plus the units in orders that are not cancelled, and stock "
            "never goes below zero. It breaks when checkout reads the stock into C and writes "
            "it back (two clients then sell the same last unit: a lost update), when an order "
            "is half applied across a crash, when a replica applies the same change twice, or "
            "when cancelling an order returns its units twice.",
        .options = "",
        .witness = "stock movements (acknowledged checkouts and cancellations)",
        .lacks = "no checkout or cancellation was acknowledged: stock never moved",
        .components = ANY,
    },
    {
        .name = "order-totals",
        .summary = "every order's total equals the sum of its lines",
        .explanation =
            "Every order's total must equal the sum of its lines, quantity times unit price, "
            "in integer cents. It breaks when the total is computed outside the transaction "
            "that writes the lines (a price changes in between), when only some lines of an "
            "order reach a copy, or when money is kept in floating point and a cent is rounded "
            "away.",
        .options = "",
        .witness = "orders audited",
        .lacks = "no order was placed on any copy",
        .components = ANY,
    },
    {
        .name = "read-your-writes",
        .summary = "no client reads state older than its own acknowledged write",
        .explanation =
            "A customer who was told their write succeeded must see it on their next reads: "
            "the item they just added must be in their cart. It breaks when reads are served "
            "by a copy that has not received the client's write yet (an asynchronous "
            "secondary, or a replica lagging behind the leader) or by a cache that still holds "
            "the old answer; cache=naive never invalidates, so it shows the bug at once.",
        .options = "",
        .witness = "reads after the client's own acknowledged write",
        .lacks = "no client read anything after its own acknowledged write",
        .components = ANY,
    },
    {
        .name = "monotonic-reads",
        .summary = "no client reads state older than what it read before",
        .explanation =
            "A client must never see time go backwards: once it has read some state, it must "
            "not later read an older one (an order that disappears, then comes back). It "
            "breaks when successive reads of one client go to copies at different lag, "
            "typically round-robin load balancing over replicas that are not equally up to "
            "date, or when a stale cache entry is served after a fresher answer.",
        .options = "",
        .witness = "reads after an earlier read of the same client",
        .lacks = "no client read twice",
        .components = ANY,
    },
    {
        .name = "no-echo",
        .summary = "each propagated change is applied exactly once on each replica",
        .explanation =
            "In the replicated cluster every change carries an id, and each replica must apply "
            "each change exactly once. It breaks when a write that reached a replica is "
            "forwarded to the leader and the leader propagates it back to the replica it came "
            "from, which applies it a second time (an echo), or when a retried propagation is "
            "not recognised as a duplicate. Counters and stock then drift by the repeated "
            "amounts. With propagate=before-commit, replicas may also apply a change that the "
            "leader then rolls back.",
        .options = "",
        .witness = "propagated changes counted",
        .lacks = "no change was propagated to a replica",
        .components = DRILL_CLUSTER,
    },
    {
        .name = "lb-balanced",
        .summary = "healthy replicas' request counts differ by at most one per rotation",
        .explanation =
            "Round-robin load balancing must share the work fairly: over each rotation the "
            "request counts of the healthy replicas differ by at most one, and a failed "
            "replica is skipped and tried again later rather than hit over and over. It breaks "
            "when the rotation does not move past a dead replica (its share all falls on one "
            "neighbour), when a recovered replica is never taken back, when the registry's "
            "last good answer is forgotten while the registry is down, when the registry "
            "keeps listing a replica it has not heard from within its window (every answer "
            "it gives a client is judged against the heartbeats it got), or when a client "
            "does not take the registry's answer as its list.",
        .options = "",
        .witness = "rotations over two or more healthy replicas",
        .lacks = "no client request was balanced over two or more healthy replicas",
        .components = DRILL_CLUSTER,
    },
    {
        .name = "integrity",
        .summary = "`PRAGMA integrity_check` is ok on every database after every crash and "
                   "restart",
        .explanation =
            "After every crash and restart each database must pass SQLite's PRAGMA "
            "integrity_check. SQLite survives a power cut only when fsync tells the truth and "
            "the journal or WAL stays with its database file. It breaks when a copy is made by "
            "copying the database file while it is being written, when the WAL is lost or "
            "separated from its database, or when a torn write reaches the B-tree because "
            "syncs were skipped or their errors ignored.",
        .options = "",
        .witness = "database checks",
        .lacks = "no database could be checked",
        .components = ANY,
    },
    {
        .name = "rpo-bounded",
        .summary = "after a failover, lost acknowledged writes are at most `max=` and all lie in "
                   "the replication lag window",
        .explanation =
            "After a failover to the asynchronous secondary, some acknowledged writes may be "
            "lost: that is the price of asynchronous replication, the recovery point objective "
            "(RPO). This invariant makes the price explicit and bounded: the lost writes must "
            "number at most max= and must all be among the newest, those still inside the "
            "replication lag window when the primary failed. It breaks when older writes are "
            "missing too (a batch skipped, or dropped without a retry), when the old primary "
            "acknowledged a write after the failover (it was not fenced), or when the loss "
            "exceeds the bound, as with outbox=off, where everything since the last full copy "
            "is gone.",
        .options = "max",
        .witness = "failovers judged",
        .lacks = "no failover happened",
        .components = DRILL_ASYNC,
    },
    {
        .name = "stake-conserved",
        .summary = "deposits = balances + treasury; no balance below zero; weights in [0, 1]",
        .explanation =
            "In the stake ledger money only moves, it is never created or destroyed: the sum "
            "of all deposits equals the predictors' balances plus the treasury, no balance is "
            "ever negative, and every consensus weight stays between 0 and 1. It breaks when "
            "slashing debits a predictor without crediting the treasury (or credits it twice), "
            "when one round is applied in several transactions and a crash splits it, or when "
            "weights are normalised by a total that can be zero. It also breaks when a "
            "predictor that lied (stake/<predictor>/lie) escapes its slash in a round where it "
            "still counted: a liar holding a large share of the stake pulls the "
            "stake-weighted consensus towards itself and can hide inside the tolerance.",
        .options = "",
        .witness = "ledger rounds checked",
        .lacks = "no ledger round closed",
        .components = DRILL_STAKE,
    },
};

#define CATALOG_COUNT (sizeof catalog / sizeof catalog[0])

const struct invariant_info *invariant_catalog(size_t *count)
{
    assert(count != NULL);
    *count = CATALOG_COUNT;
    return catalog;
}

const struct invariant_info *invariant_lookup(const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < CATALOG_COUNT; i++) {
        if (strcmp(catalog[i].name, name) == 0) {
            return &catalog[i];
        }
    }
    return NULL;
}
