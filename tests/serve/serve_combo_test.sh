#!/usr/bin/env bash
# serve_combo_test.sh — the combinations of DESIGN.md §2 live: `faultdrill
# serve --topology 'mirror async'` (the primary's disk mirrored, an async
# secondary its own process), 'mirror offline' (the local's) and 'mirror
# cluster' (the leader's). The mirrored node keeps db.sqlite and
# db_mirror.sqlite with GET /mirror/status; its outbox or sync queue is on
# both copies; a mirror disk broken under policy=degrade is resynced on heal,
# bookkeeping included, while replication goes on; after a clean stop every
# copy holds the same data.
#
#   serve_combo_test.sh FAULTDRILL SERVE_DIGEST CASE
#
# Cases: mirror_async mirror_async_failover mirror_offline mirror_cluster refused
set -euo pipefail

FD=$1
DIGEST=$2
CASE=$3
. "$(dirname "$0")/lib.sh"

fiu() {
    command -v fiu-ctrl >/dev/null || fail "fiu-ctrl is not installed (Debian package fiu-utils)"
    until_fifo "$PID"
    fiu-ctrl -c "$1" "$PID" || fail "fiu-ctrl -c '$1' failed"
}

have_sqlite3() {
    command -v sqlite3 >/dev/null || fail "sqlite3 is not installed (Debian package sqlite3)"
}

# same_rows DATA SQL: the mirrored node's two copies hold the same rows of SQL
# (its outbox or sync queue), and at least one.
same_rows() {
    have_sqlite3
    sqlite3 -readonly "$1/db.sqlite" "$2" >"$WORK/rows0"
    sqlite3 -readonly "$1/db_mirror.sqlite" "$2" >"$WORK/rows1"
    [ -s "$WORK/rows0" ] || fail "no rows of '$2' on $1/db.sqlite"
    cmp -s "$WORK/rows0" "$WORK/rows1" ||
        fail "db.sqlite and db_mirror.sqlite differ in '$2': $(diff "$WORK/rows0" "$WORK/rows1" | head -5)"
}

orders() {
    local n=$1 i
    for ((i = 0; i < n; i++)); do
        expect 201 POST /orders "{\"userId\":1,\"products\":[{\"productId\":$((i % 5 + 1)),\"quantity\":1}]}"
    done
}

# break_mirror: the mirror's disk fails every write (policy=degrade goes on
# on the primary's copy alone); mend_mirror heals it and waits for the resync.
break_mirror() {
    fiu "enable name=disk/mirror/write,failinfo=5"
}

mend_mirror() {
    fiu "disable name=disk/mirror/write"
    until_json /mirror/status '.state == "in-sync" and .changesBehind == 0 and .resyncs >= 1'
}

degraded() {
    until_json /mirror/status '.state == "degraded" and .changesBehind > 0 and .behind == "mirror"'
}

OUTBOX_SQL="SELECT seq, hex(change), at_us FROM fd_outbox ORDER BY seq"
QUEUE_SQL="SELECT id, tbl, row_key, op, state, retries, created_at, synced_at FROM fd_sync_queue ORDER BY id"

# ---- cases ------------------------------------------------------------------

case_mirror_async() {
    start_server "$WORK/data" --topology 'mirror async' --policy degrade --delay 0
    grep -q "topology mirror async, policy degrade" "$LOG" || fail "the banner does not say mirror async"
    until_json /replication/status '.lagChanges == 0 and .secondarySeq == .primarySeq'
    expect 200 GET /mirror/status
    jqe '.state == "in-sync" and .lead == "primary" and .seqPrimary == .seqMirror'
    orders 5
    break_mirror
    orders 10 # degrade: acknowledged on the primary's copy alone
    degraded
    # the outbox goes on shipping from the primary's copy
    until_json /replication/status '.lagChanges == 0 and .secondarySeq == .primarySeq'
    mend_mirror
    orders 5
    until_json /replication/status '.lagChanges == 0 and .secondarySeq == .primarySeq'
    jqe '.primarySeq >= 21'
    stop_server
    "$DIGEST" "$WORK/data/db.sqlite" "$WORK/data/db_mirror.sqlite" \
        "$WORK/data/secondary/db_async.sqlite" >"$WORK/digest" ||
        fail "the copies differ after a clean stop: $(cat "$WORK/digest")"
    same_rows "$WORK/data" "$OUTBOX_SQL"
}

# Failover with a mirrored primary: the three orders the secondary never got
# are named as lost, the old primary (both its copies) is fenced, and its pair
# still holds them, identical on both copies.
case_mirror_async_failover() {
    start_server "$WORK/data" --topology 'mirror async' --policy strict --delay 0
    until_json /replication/status '.lagChanges == 0 and .secondarySeq == .primarySeq'
    local held sec
    held=$(jq .secondarySeq "$WORK/body")
    sec=$(jq -r .secondaryProcess.url "$WORK/body")
    fiu "enable name=net/primary/secondary/drop"
    orders 3
    expect 200 GET /replication/status
    jqe ".lagChanges == 3 and .secondarySeq == $held"
    "$FD" serve failover "$sec" >"$WORK/promote" 2>&1 || fail "serve failover: $(cat "$WORK/promote")"
    jq -e ".failover.position == $held" "$WORK/promote" >/dev/null ||
        fail "the promotion's answer: $(cat "$WORK/promote")"
    expect 201 POST "$sec/users" '{"name":"Nova","email":"nova@example.org"}'
    until_json /replication/status '.fenced'
    jqe ".lostChanges.first == $((held + 1)) and .lostChanges.last == $((held + 3)) and
         .lostChanges.count == 3"
    expect 503 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    stop_server
    "$DIGEST" "$WORK/data/db.sqlite" "$WORK/data/db_mirror.sqlite" >"$WORK/digest" ||
        fail "the fenced primary's copies differ: $(cat "$WORK/digest")"
    same_rows "$WORK/data" "$OUTBOX_SQL"
    [ "$(sqlite3 -readonly "$WORK/data/db_mirror.sqlite" "SELECT count(*) FROM orders")" = 3 ] ||
        fail "the mirror does not hold the three orders the secondary lost"
}

case_mirror_offline() {
    start_server "$WORK/data" --topology 'mirror offline' --policy degrade --interval 100
    grep -q "topology mirror offline" "$LOG" || fail "the banner does not say mirror offline"
    expect 200 GET /mirror/status
    jqe '.state == "in-sync" and .lead == "local"'
    orders 5
    break_mirror
    orders 10
    degraded
    # the sync job marks rows SYNCED on the local's copy alone meanwhile
    until_json /sync/status '.rows.pending == 0 and .rows.failed == 0 and .rows.synced > 0'
    mend_mirror
    orders 3
    until_json /sync/status '.rows.pending == 0 and .rows.failed == 0 and .syncedTwice == 0'
    stop_server
    "$DIGEST" "$WORK/data/db.sqlite" "$WORK/data/db_mirror.sqlite" >"$WORK/digest" ||
        fail "the local's copies differ after a clean stop: $(cat "$WORK/digest")"
    same_rows "$WORK/data" "$QUEUE_SQL"
    have_sqlite3
    [ "$(sqlite3 -readonly "$WORK/data/db_mirror.sqlite" \
        "SELECT count(*) FROM fd_sync_queue WHERE state != 'SYNCED'")" = 0 ] ||
        fail "the mirror's copy of the queue has rows not SYNCED"
}

case_mirror_cluster() {
    start_server "$WORK/data" --topology 'mirror cluster' --policy degrade --replicas 2
    until_json /replication/status 'all(.replicas[]; .state == "up" and .lagChanges == 0) and
                                    (.replicas | length) == 2' "$STARTUP_WAIT_S"
    expect 200 GET /mirror/status
    jqe '.state == "in-sync" and .lead == "leader"'
    orders 5
    break_mirror
    orders 10
    degraded
    until_json /replication/status 'all(.replicas[]; .lagChanges == 0) and
                                    (.leader.seq as $s | all(.replicas[]; .position == $s))'
    mend_mirror
    orders 3
    until_json /replication/status '(.leader.seq as $s | all(.replicas[]; .position == $s))'
    stop_server
    "$DIGEST" "$WORK/data/db.sqlite" "$WORK/data/db_mirror.sqlite" \
        "$WORK/data/replica1/db.sqlite" "$WORK/data/replica2/db.sqlite" >"$WORK/digest" ||
        fail "the copies differ after a clean stop: $(cat "$WORK/digest")"
    same_rows "$WORK/data" "$OUTBOX_SQL"
}

# Two components that replicate between nodes do not combine: exit 2 with
# why, before anything is made on disk.
case_refused() {
    local t rc
    for t in "async cluster" "offline+async" "mirror single"; do
        rc=0
        "$FD" serve --topology "$t" --port 0 --data "$WORK/combo" >"$WORK/combo.log" 2>&1 || rc=$?
        [ "$rc" = 2 ] || fail "--topology '$t' exited $rc, expected 2"
        grep -q "do not combine with each other" "$WORK/combo.log" ||
            fail "--topology '$t' did not say why: $(cat "$WORK/combo.log")"
        [ ! -e "$WORK/combo" ] || fail "--topology '$t' made its data directory"
    done
}

"case_$CASE"
