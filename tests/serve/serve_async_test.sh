#!/usr/bin/env bash
# serve_async_test.sh — `faultdrill serve --topology async` over real HTTP:
# the primary ships its outbox after the WAN delay to the secondary, its own
# process (DATA/secondary/db_async.sqlite) fed over POST /api/node; it
# survives a broken secondary disk, a lossy link, a kill -9 of either node,
# and leaves the two copies equal after a clean stop.
#
#   serve_async_test.sh FAULTDRILL SERVE_DIGEST CASE
#
# Cases: ships_after_delay secondary_disk link_drop kill9_resume sigterm_drains
#        kill9_secondary failover_live outbox_off
set -euo pipefail

FD=$1
DIGEST=$2
CASE=$3
. "$(dirname "$0")/lib.sh"

copies_equal() {
    "$DIGEST" "$1/db.sqlite" "$1/secondary/db_async.sqlite" >"$WORK/digest" ||
        fail "primary and secondary differ: $(cat "$WORK/digest")"
}

# secondary_pid: the secondary's process, from the primary's status, once
# its fiu-ctrl fifo is there.
secondary_pid() {
    until_json /replication/status '.secondaryProcess.pid != null'
    local spid
    spid=$(jq -r .secondaryProcess.pid "$WORK/body")
    until_fifo "$spid"
    echo "$spid"
}

# gone PID: waits until a process that is not our child has ended.
gone() {
    local end=$((SECONDS + WAIT_S))
    while kill -0 "$1" 2>/dev/null; do
        [ "$SECONDS" -lt "$end" ] || fail "process $1 did not end within ${WAIT_S}s"
        sleep 0.05
    done
}

# wait_caught_up: the secondary holds every change the primary has.
wait_caught_up() {
    until_json /replication/status \
        '.lagChanges == 0 and .secondarySeq == .primarySeq and .inTransit == 0'
}

orders() {
    local n=$1 i
    for ((i = 0; i < n; i++)); do
        expect 201 POST /orders "{\"userId\":1,\"products\":[{\"productId\":$((i % 5 + 1)),\"quantity\":1}]}"
    done
}

case_ships_after_delay() {
    # 2 s: long enough that a loaded machine still asks before it passes
    start_server "$WORK/data" --topology async --delay 2000
    expect 200 GET /heartbeat
    jqe '.topology == "async" and .node == "primary"'
    wait_caught_up # the demo catalog
    expect 404 GET /mirror/status
    expect 404 GET /sync/status
    orders 10
    # Just acknowledged: still crossing the WAN, not applied yet.
    expect 200 GET /replication/status
    jqe '.state == "streaming" and .delayMs == 2000 and .lagChanges >= 1'
    jqe '.secondarySeq < .primarySeq and .lagSeconds >= 0'
    wait_caught_up
    # Each change waited the delay: commit -> applied is at least 2 s.
    jqe '.lastApplyLagSeconds >= 2 and .batchesApplied >= 2 and .failures == 0'
    jqe '.changesApplied == .primarySeq and .prunedThrough <= .secondarySeq'
    stop_server
    copies_equal "$WORK/data"
}

case_secondary_disk() {
    start_server "$WORK/data" --topology async --delay 0
    wait_caught_up
    local spid
    spid=$(secondary_pid)
    # the disk is the secondary's: its own process takes the fault
    fiu-ctrl -c "enable name=disk/secondary/write,failinfo=5" "$spid" || fail "fiu-ctrl enable"
    # The primary does not wait for the secondary: writes go on.
    orders 5
    until_json /replication/status '.applyErrors > 0 and .timeouts > 0'
    # the secondary could not apply, so it did not acknowledge: the primary
    # resends after its timeout
    jqe '.lagChanges >= 1 and .applyErrors > 0 and .timeouts > 0'
    # The lag is the age of the OLDEST change the secondary lacks, not the newest.
    sleep 0.6
    orders 1
    expect 200 GET /replication/status
    jqe '.lagSeconds >= 0.5'
    fiu-ctrl -c "disable name=disk/secondary/write" "$spid" || fail "fiu-ctrl disable"
    orders 1
    wait_caught_up
    jqe '.state == "idle" and .resends > 0'
    stop_server
    copies_equal "$WORK/data"
}

case_link_drop() {
    start_server "$WORK/data" --topology async --delay 50 --allow-faults
    wait_caught_up
    expect 200 GET /faults
    jqe 'any(.points[]; .name == "net/primary/secondary/drop")'
    expect 200 POST /faults '{"name":"net/primary/secondary/drop","action":"enable"}'
    orders 6
    until_json /replication/status '.dropped > 0 and .lagChanges >= 6 and .timeouts > 0'
    expect 200 POST /faults '{"name":"net/primary/secondary/drop","action":"disable"}'
    wait_caught_up
    jqe '.resends > 0 and .duplicatesSkipped >= 0'
    stop_server
    copies_equal "$WORK/data"
}

case_kill9_resume() {
    # A long delay: everything acknowledged is still in transit at the kill.
    start_server "$WORK/data" --topology async --delay 5000
    orders 8
    expect 200 GET /replication/status
    jqe '.lagChanges >= 8'
    local spid
    spid=$(secondary_pid)
    kill -KILL "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
    # The secondary dies with the primary that started it.
    gone "$spid"
    # The outbox survived with the primary: a restart ships what was missing.
    start_server "$WORK/data" --topology async --delay 0
    wait_caught_up
    expect 200 GET /orders/1
    jqe 'length == 8'
    stop_server
    copies_equal "$WORK/data"
}

# SIGTERM with everything still crossing a 5 s WAN: the stop ships it
# without the delay, so the copies are equal afterwards.
case_sigterm_drains() {
    start_server "$WORK/data" --topology async --delay 5000
    orders 8
    expect 200 GET /replication/status
    jqe '.lagChanges >= 8'
    stop_server
    copies_equal "$WORK/data"
}

# kill -9 of the secondary under load: writes go on (the primary does not
# wait for it), the primary restarts it, and it catches up from its own
# durable position; nothing acknowledged is lost.
case_kill9_secondary() {
    start_server "$WORK/data" --topology async --delay 20
    wait_caught_up
    local spid
    spid=$(secondary_pid)
    orders 5 &
    local load=$!
    sleep 0.1
    kill -KILL "$spid"
    wait "$load" || fail "writes failed while the secondary died"
    orders 5
    until_json /replication/status \
        ".secondaryProcess | .restarts >= 1 and .pid != $spid and .pid != null"
    jqe '.secondaryProcess.lastError | test("signal 9")'
    wait_caught_up
    expect 200 GET /orders/1
    jqe 'length == 10'
    stop_server
    copies_equal "$WORK/data"
}

# Failover, live: with three acknowledged orders the secondary never got
# (the link cut with net/primary/secondary/drop), the operator promotes the
# secondary (faultdrill serve failover URL). It takes writes;
# the old primary is fenced by the secondary's message (and by the
# operator's command) and refuses every request; the status names the
# acknowledged changes the promoted copy lacks. Both stay so across a restart.
case_failover_live() {
    start_server "$WORK/data" --topology async --delay 0
    wait_caught_up
    local held sec
    held=$(jq .secondarySeq "$WORK/body")
    sec=$(jq -r .secondaryProcess.url "$WORK/body")
    until_fifo "$PID"
    fiu-ctrl -c "enable name=net/primary/secondary/drop" "$PID" || fail "fiu-ctrl enable"
    orders 3
    expect 200 GET /replication/status
    jqe ".lagChanges == 3 and .secondarySeq == $held"
    "$FD" serve failover "$sec" >"$WORK/promote" 2>&1 || fail "serve failover: $(cat "$WORK/promote")"
    jq -e ".failover.position == $held and .failover.windowSeconds > 0" "$WORK/promote" \
        >/dev/null || fail "the promotion's answer: $(cat "$WORK/promote")"
    "$FD" serve failover "$sec" >"$WORK/again" 2>&1 && fail "a second promotion succeeded"
    # the promoted copy takes writes (the old primary's last three are not in it)
    expect 201 POST "$sec/users" '{"name":"Nova","email":"nova@example.org"}'
    expect 200 GET "$sec/orders/1"
    jqe 'length == 0' # the three orders were acknowledged by the old primary only
    # the old primary: fenced by the secondary's message; the operator's too
    until_json /replication/status '.fenced'
    jqe ".fenced and .state == \"fenced\" and .lostChanges.first == $((held + 1)) and
         .lostChanges.last == $((held + 3)) and .lostChanges.count == 3"
    "$FD" serve fence "$BASE" >"$WORK/fence" 2>&1 || true
    expect 503 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    jqe '.error == "fenced"'
    expect 503 GET /products
    # a restart keeps both: the primary fenced, the secondary promoted
    stop_server
    [ -f "$WORK/data/fenced" ] || fail "the fence was not recorded"
    [ -f "$WORK/data/secondary/promoted" ] || fail "the promotion was not recorded"
    start_server "$WORK/data" --topology async --delay 0
    expect 503 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    expect 200 GET /replication/status
    jqe '.fenced'
    sec=$(jq -r .secondaryProcess.url "$WORK/body")
    expect 201 POST "$sec/users" '{"name":"Vega","email":"vega@example.org"}'
    stop_server
}

# --outbox off, the naive mode: the whole database goes to the secondary
# every second instead of its changes; the copies end equal all the same.
case_outbox_off() {
    start_server "$WORK/data" --topology async --delay 0 --outbox off
    expect 200 GET /replication/status
    jqe '.outbox == "off"'
    orders 3
    expect 200 GET /replication/status
    local sec before
    sec=$(jq -r .secondaryProcess.url "$WORK/body")
    before=$(jq .snapshotsSent "$WORK/body")
    # a copy taken after the orders reaches the secondary; copies keep going
    until_json "$sec/orders/1" 'length == 3'
    until_json /replication/status ".snapshotsSent > $before"
    jqe '.batchesSent == 0'
    stop_server
    copies_equal "$WORK/data"
}

case "$CASE" in
ships_after_delay | secondary_disk | link_drop | kill9_resume | sigterm_drains | kill9_secondary | \
    failover_live | outbox_off)
    "case_$CASE"
    ;;
*)
    echo "serve_async_test.sh: unknown case $CASE" >&2
    exit 2
    ;;
esac
echo "PASS [$CASE]"
