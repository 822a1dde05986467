#!/usr/bin/env bash
# serve_node_test.sh — every node its own process (DESIGN.md §7): the
# cluster secret, nodes pointed at each other with --peer (as on separate
# hosts), a node with another secret refused, and the link fault points
# (duplicate, reorder) acting in the sender's transport, live.
#
#   serve_node_test.sh FAULTDRILL SERVE_DIGEST CASE
#
# Cases: secret_file peer_processes offline_peer wrong_secret link_duplicate_reorder
set -euo pipefail

FD=$1
DIGEST=$2
CASE=$3
. "$(dirname "$0")/lib.sh"
SIDE_PID=""

stop_side() {
    if [ -n "$SIDE_PID" ]; then
        kill -TERM "$SIDE_PID" 2>/dev/null || true
        wait "$SIDE_PID" 2>/dev/null || true
        SIDE_PID=""
    fi
}
trap 'stop_side; cleanup' EXIT

expect_exit() {
    local code=$1 rc=0
    shift
    "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = "$code" ] || fail "'$*' exited $rc, expected $code: $(cat "$WORK/err")"
    if [ "$code" = 3 ]; then
        [ "$(wc -l <"$WORK/err")" = 1 ] || fail "'$*' said more than one line: $(cat "$WORK/err")"
    fi
}

# start_side DATA LOG [serve options...]: a second node started by hand;
# sets SIDE_PID and SIDE_URL.
start_side() {
    local data=$1 log=$2 i port=""
    shift 2
    : >"$log" # the background job opens it later: the banner loop reads it now
    "$FD" serve --port 0 --data "$data" "$@" >"$log" 2>&1 &
    SIDE_PID=$!
    for ((i = 0; i < STARTUP_WAIT_S * 20; i++)); do
        port=$(sed -n 's|.*http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log" | head -1)
        [ -n "$port" ] && break
        kill -0 "$SIDE_PID" 2>/dev/null || fail "the side node exited: $(cat "$log")"
        sleep 0.05
    done
    [ -n "$port" ] || fail "the side node did not start"
    SIDE_URL="http://127.0.0.1:$port"
}

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

# The first start makes DATA/node.secret, mode 600, and hands it to its
# children; a secret others may read, or that is not 64 hex digits, or
# that is missing, stops the node before it makes anything.
case_secret_file() {
    start_server "$WORK/data" --topology async --delay 0
    local secret="$WORK/data/node.secret"
    [ -f "$secret" ] || fail "no cluster secret was made"
    [ "$(stat -c %a "$secret")" = 600 ] || fail "the secret is mode $(stat -c %a "$secret")"
    grep -Eqx '[0-9a-f]{64}' "$secret" || fail "the secret is not 64 hex digits"
    local first
    first=$(cat "$secret")
    wait_caught_up
    stop_server
    start_server "$WORK/data" --topology async --delay 0
    [ "$(cat "$secret")" = "$first" ] || fail "a restart made a new secret"
    stop_server
    mkdir -p "$WORK/open"
    printf '%064d\n' 7 >"$WORK/open/node.secret"
    chmod 644 "$WORK/open/node.secret"
    expect_exit 3 "$FD" serve --port 0 --data "$WORK/open" --topology cluster
    grep -q 'chmod 600' "$WORK/err" || fail "a readable secret: $(cat "$WORK/err")"
    [ ! -e "$WORK/open/db.sqlite" ] || fail "a refused secret still made the shop"
    printf 'not hex\n' >"$WORK/short.secret"
    chmod 600 "$WORK/short.secret"
    expect_exit 3 "$FD" serve --port 0 --data "$WORK/d2" --topology offline \
        --secret-file "$WORK/short.secret"
    grep -q '64 hex digits' "$WORK/err" || fail "a malformed secret: $(cat "$WORK/err")"
    expect_exit 3 "$FD" serve --port 0 --data "$WORK/d2" --role secondary \
        --secret-file "$WORK/no-such.secret"
    grep -q 'cannot read the cluster secret' "$WORK/err" || fail "no secret: $(cat "$WORK/err")"
    expect_exit 2 "$FD" serve --port 0 --data "$WORK/d2" --topology mirror \
        --peer secondary=http://127.0.0.1:1
    expect_exit 2 "$FD" serve --port 0 --data "$WORK/d2" --topology async \
        --peer secondary=ftp://127.0.0.1:1
    # single and mirror are one node: no secret, no node messages
    start_server "$WORK/mirror" --topology mirror
    [ ! -e "$WORK/mirror/node.secret" ] || fail "a mirror made a cluster secret"
    expect 404 POST /api/node '{}'
    stop_server
}

# Two nodes started by hand, as on two hosts: the secondary with the shared
# secret, the primary told where it is. Nothing is spawned; the copies end
# equal; the secondary takes no write of its own.
case_peer_processes() {
    mkdir -p "$WORK/side"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/shared.secret"
    chmod 600 "$WORK/shared.secret"
    start_side "$WORK/side" "$WORK/side.log" --role secondary --secret-file "$WORK/shared.secret"
    start_server "$WORK/data" --topology async --delay 30 --secret-file "$WORK/shared.secret" \
        --peer "secondary=$SIDE_URL"
    [ ! -e "$WORK/data/secondary" ] || fail "the primary started a secondary of its own"
    [ ! -e "$WORK/data/node.secret" ] || fail "the primary made a secret beside --secret-file"
    wait_caught_up
    jqe ".secondaryProcess.url == \"$SIDE_URL\" and .secondaryProcess.pid == null"
    orders 6
    wait_caught_up
    expect 200 GET "$SIDE_URL/heartbeat"
    jqe '.node == "secondary" and .topology == "async"'
    expect 200 GET "$SIDE_URL/orders/1"
    jqe 'length == 6'
    # the core's routing: a write at the secondary is sent to the writer
    expect 307 POST "$SIDE_URL/users" '{"name":"Eve","email":"eve@example.org"}'
    jqe '.error == "not the writer"'
    grep -qi "^Location: $BASE/users" "$WORK/head" || fail "no Location of the primary: $(cat "$WORK/head")"
    stop_server
    stop_side
    grep -q 'stopped cleanly' "$WORK/side.log" || fail "the secondary did not stop cleanly"
    "$DIGEST" "$WORK/data/db.sqlite" "$WORK/side/db_async.sqlite" >"$WORK/digest" ||
        fail "primary and secondary differ: $(cat "$WORK/digest")"
}

# Offline sync between two nodes started by hand: central is told nothing of
# the local, yet answers its pushes — at the address the local's messages
# name (X-Faultdrill-Reply-To, under the MAC). Nothing is spawned.
case_offline_peer() {
    mkdir -p "$WORK/side"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/shared.secret"
    chmod 600 "$WORK/shared.secret"
    start_side "$WORK/side" "$WORK/side.log" --role central --secret-file "$WORK/shared.secret"
    start_server "$WORK/data" --topology offline --interval 3600000 \
        --secret-file "$WORK/shared.secret" --peer "central=$SIDE_URL"
    [ ! -e "$WORK/data/central" ] || fail "the local started a central of its own"
    expect 200 POST /sync/run
    jqe '.online == true and .rows.pending == 0 and .rows.synced > 0 and .accepted == 1'
    jqe ".centralProcess.url == \"$SIDE_URL\" and .centralProcess.pid == null"
    jqe '.centralCheck == null' # central's file is not ours to read
    local synced
    synced=$(jq .rows.synced "$WORK/body")
    expect 201 POST /users '{"name":"Ida","email":"ida@example.org"}'
    expect 200 POST /sync/run
    jq -e --argjson s "$synced" '.rows.synced > $s and .rows.pending == 0' "$WORK/body" \
        >/dev/null || fail "the second push was not answered: $(cat "$WORK/body")"
    expect 200 GET "$SIDE_URL/sync/status"
    jqe '.node == "central" and .locals == ["local"] and .pushesApplied == 2 and .strays == 0'
    stop_server
    stop_side
    grep -q 'stopped cleanly' "$WORK/side.log" || fail "central did not stop cleanly"
}

# A secondary holding another secret: the primary's messages are refused
# (401), the status says why, the secondary applies nothing.
case_wrong_secret() {
    mkdir -p "$WORK/side"
    start_side "$WORK/side" "$WORK/side.log" --role secondary
    start_server "$WORK/data" --topology async --delay 0 --peer "secondary=$SIDE_URL"
    until_json /replication/status '.failures > 0'
    jqe '.failures > 0 and (.lastError | test("refused our message")) and
         (.lastError | test("secret"))'
    jqe '.secondarySeq == 0 and .changesApplied == 0'
    expect 200 GET "$SIDE_URL/products"
    jqe 'length == 0'
    stop_server
    stop_side
}

# duplicate and reorder on the primary->secondary link, switched on live
# with fiu-ctrl in the primary (the sender): every batch arrives twice,
# every other one after the next; the secondary skips what it holds, the
# primary resends past a gap, and the copies end equal.
case_link_duplicate_reorder() {
    start_server "$WORK/data" --topology async --delay 0 --allow-faults
    wait_caught_up
    expect 200 GET /faults
    jqe 'any(.points[]; .name == "net/primary/secondary/duplicate") and
         any(.points[]; .name == "net/primary/secondary/reorder")'
    until_fifo "$PID"
    fiu-ctrl -c "enable name=net/primary/secondary/duplicate" "$PID" || fail "fiu-ctrl enable"
    orders 4
    wait_caught_up
    jqe '.duplicatesSkipped >= 1'
    fiu-ctrl -c "disable name=net/primary/secondary/duplicate" "$PID" || fail "fiu-ctrl disable"
    fiu-ctrl -c "enable name=net/primary/secondary/reorder" "$PID" || fail "fiu-ctrl enable"
    orders 6
    # a held batch and the gap it leaves make the primary resend
    until_json /replication/status '.resends >= 1'
    fiu-ctrl -c "disable name=net/primary/secondary/reorder" "$PID" || fail "fiu-ctrl disable"
    orders 1
    wait_caught_up
    jqe '.resends >= 1'
    stop_server
    "$DIGEST" "$WORK/data/db.sqlite" "$WORK/data/secondary/db_async.sqlite" >"$WORK/digest" ||
        fail "primary and secondary differ: $(cat "$WORK/digest")"
}

case "$CASE" in
secret_file | peer_processes | offline_peer | wrong_secret | link_duplicate_reorder)
    "case_$CASE"
    ;;
*)
    echo "serve_node_test.sh: unknown case $CASE" >&2
    exit 2
    ;;
esac
echo "PASS [$CASE]"
