#!/usr/bin/env bash
# serve_cluster_test.sh — end-to-end tests of `faultdrill serve --topology
# cluster` through a real HTTP client (curl, jq): each case starts its own
# leader on a free loopback port (--port 0, read back from the banner) with
# its own data directory; the leader starts the registry and its replicas,
# each its own process hosting one node of the platform's core (their ports
# come from GET /replication/status); the nodes talk over POST /api/node,
# and the case drives them and stops them.
#
#   serve_cluster_test.sh FAULTDRILL SERVE_DIGEST CASE [SERVE_FORGE]
#
# Cases: propagate_sigterm_equal forward_read_your_writes session_across_replicas
#        registry_rotates kill9_replica_respawn registry_kill9 cache_on_naive
#        combination_refused propagate_before_commit fiu_drop_lag
#        sigterm_no_orphans forged_batch_refused (needs SERVE_FORGE)
set -euo pipefail

FD=$1
DIGEST=$2
CASE=$3
FORGE=${4:-}
. "$(dirname "$0")/lib.sh"
FIFO_DIR=${TMPDIR:-/tmp}
REPLICA_PIDS=()
EXTRA_PID=""

cleanup() {
    local p
    for p in "$PID" "$EXTRA_PID"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
            rm -f "$FIFO_DIR/fiu-ctrl-$p.in" "$FIFO_DIR/fiu-ctrl-$p.out"
        fi
    done
    # a SIGKILLed leader's replicas get SIGTERM from the kernel; be sure anyway
    for p in "${REPLICA_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
        rm -f "$FIFO_DIR/fiu-ctrl-$p.in" "$FIFO_DIR/fiu-ctrl-$p.out"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL [$CASE]: $*" >&2
    if [ -f "$WORK/body" ]; then
        echo "last body: $(head -c 600 "$WORK/body")" >&2
    fi
    local log
    for log in "$WORK"/server*.log "$WORK"/*/replica*/serve.log "$WORK"/*/registry/serve.log; do
        [ -f "$log" ] && { echo "--- $log" >&2; tail -15 "$log" >&2; }
    done
    exit 1
}

# start_leader DATA [serve options...]: sets PID, PORT, BASE, R1, R2 (replica
# ports), REG (the registry's URL) and REPLICA_PIDS (the registry's too) once
# every replica is up and the registry has answered the leader's client.
SERVE_ARGS=(--topology cluster)
start_leader() {
    start_server "$@"
    wait_all_up
    R1=$(jq -r '.replicas[0].port' "$WORK/body")
    R2=$(jq -r '.replicas[1].port' "$WORK/body")
    REG=$(jq -r '.registry.url' "$WORK/body")
    mapfile -t REPLICA_PIDS < <(jq -r '.replicas[].pid, .registry.pid' "$WORK/body")
}

# stop_leader: SIGTERM, which must end in exit 0.
stop_leader() {
    kill -TERM "$PID"
    local rc=0
    wait "$PID" || rc=$?
    rm -f "$FIFO_DIR/fiu-ctrl-$PID.in" "$FIFO_DIR/fiu-ctrl-$PID.out" # libfiu leaves them
    PID=""
    [ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM"
    grep -q 'stopped cleanly' "$LOG" || fail "no clean stop in the log"
    no_sanitizer_reports
}

# The replicas' exit codes reach only their leader: their logs are read too.
no_sanitizer_reports() {
    local bad
    bad=$(grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$WORK"/server*.log \
        "$WORK"/data/replica*/serve.log "$WORK"/data/registry/serve.log 2>/dev/null || true)
    [ -z "$bad" ] || fail "sanitizer reports in: $bad"
}

status() {
    expect 200 GET "$BASE/replication/status"
}

# wait_for FILTER [SECONDS]: polls /replication/status until the filter
# holds (WAIT_S of wall clock unless more is given).
wait_for() {
    until_json "$BASE/replication/status" "$1" "${2:-$WAIT_S}"
}

wait_all_up() {
    wait_for 'all(.replicas[]; .state == "up" and .lagChanges == 0) and .client.fromRegistry and
              (.client.listed | length) == (.replicas | length) and .registry.pid != null' \
        "$STARTUP_WAIT_S"
}

# session_get SESSION URL: GET with X-Faultdrill-Session (the highest
# X-Faultdrill-Position the client was answered with); sets STATUS.
session_get() {
    STATUS=$(curl -s -o "$WORK/body" -D "$WORK/head" -w '%{http_code}' --max-time 30 \
        -H "X-Faultdrill-Session: $1" "$2") || fail "curl GET $2 failed"
}

# position: the X-Faultdrill-Position of the last reply.
position() {
    sed -n 's/^X-Faultdrill-Position: \([0-9]*\).*/\1/Ip' "$WORK/head" | tr -d '\r' | head -1
}

# wait_get URL: polls a GET until it answers 200.
wait_get() {
    until_json "$1" true
}

new_product() {
    expect 201 POST "$BASE/products" "{\"name\":\"$1\",\"price\":2.5,\"stock\":${2:-10}}"
    jq -r .id "$WORK/body"
}

# ---- cases ------------------------------------------------------------------

# A write to the leader reaches every replica; a burst written just before a
# SIGTERM is shipped before the replicas stop, so all three copies are equal.
case_propagate_sigterm_equal() {
    start_leader "$WORK/data"
    status
    jqe '.topology == "cluster" and .leader.node == "leader" and (.replicas | length == 2)'
    jqe '.leader.seq >= 1 and (.leader.seq as $s | all(.replicas[]; .position == $s))'
    expect 201 POST "$BASE/users" '{"name":"Ann","email":"ann@example.org"}'
    grep -qi '^X-Faultdrill-Seq: [0-9]' "$WORK/head" || fail "the leader's write reply has no sequence"
    local pid
    pid=$(new_product Anvil 7)
    local r
    for r in "$R1" "$R2"; do
        wait_get "http://127.0.0.1:$r/products/$pid"
        jqe '.name == "Anvil" and .stock == 7'
        expect 200 GET "http://127.0.0.1:$r/heartbeat"
        jqe '.node | startswith("replica")'
        # the replica's own status is its core node's: applied, never twice
        expect 200 GET "http://127.0.0.1:$r/replication/status"
        jqe '.role == "cluster-replica" and .position >= 3 and .changesApplied >= 3 and
             .appliedTwice == false and .heartbeatsSent > 0'
    done
    # a burst of concurrent writes on slow links, then stop at once: what the
    # replicas have not got yet is shipped before they are stopped
    fiu-ctrl -c "enable name=net/leader/replica1/delay,failinfo=200000" "$PID" ||
        fail "fiu-ctrl enable failed"
    fiu-ctrl -c "enable name=net/leader/replica2/delay,failinfo=200000" "$PID" ||
        fail "fiu-ctrl enable failed"
    seq 1 60 | xargs -P 8 -I{} curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
        --data-binary '{"name":"Burst {}","price":1,"stock":1}' "$BASE/products"
    stop_leader
    "$DIGEST" "$WORK/data/db.sqlite" "$WORK/data/replica1/db.sqlite" \
        "$WORK/data/replica2/db.sqlite" >"$WORK/digest" ||
        fail "the copies differ after a clean stop: $(cat "$WORK/digest")"
}

# A write sent to a replica is forwarded to the leader and answered once the
# same replica holds it (the core's deferred reply): a read from it at once
# sees the write; a replica whose leader is gone says so with 503.
case_forward_read_your_writes() {
    start_leader "$WORK/data"
    local r1="http://127.0.0.1:$R1" r2="http://127.0.0.1:$R2"
    # every batch waits 100 ms: a replica that answered before holding the
    # write would show the old state below
    until_fifo "$PID"
    fiu-ctrl -c "enable name=net/leader/replica1/delay,failinfo=100000" "$PID" ||
        fail "fiu-ctrl enable failed"
    fiu-ctrl -c "enable name=net/leader/replica2/delay,failinfo=100000" "$PID" ||
        fail "fiu-ctrl enable failed"
    expect 201 POST "$r1/users" '{"name":"Bo","email":"bo@example.org"}'
    grep -qi '^X-Faultdrill-Via: leader' "$WORK/head" || fail "not answered by the leader"
    local uid i oid seq pos
    uid=$(jq .id "$WORK/body")
    for ((i = 1; i <= 10; i++)); do
        expect 201 POST "$r1/orders" "{\"userId\":$uid,\"products\":[{\"productId\":1,\"quantity\":1}]}"
        oid=$(jq .id "$WORK/body")
        seq=$(sed -n 's/^X-Faultdrill-Seq: \([0-9]*\).*/\1/Ip' "$WORK/head" | tr -d '\r')
        [ -n "$seq" ] && [ "$(position)" = "$seq" ] ||
            fail "a forwarded write says position $(position), the leader's sequence $seq"
        expect 200 GET "$r1/orders/$uid" # at once, from the same replica
        jqe "length == $i and any(.[]; .id == $oid)"
        pos=$(position)
        [ -n "$pos" ] && [ "$pos" -ge "$seq" ] || fail "the read says position $pos, before $seq"
    done
    expect 200 PUT "$r2/products/2" '{"name":"Renamed","price":3,"stock":42}'
    expect 200 GET "$r2/products/2"
    jqe '.name == "Renamed" and .stock == 42'
    expect 409 POST "$r2/orders" "{\"userId\":$uid,\"products\":[{\"productId\":2,\"quantity\":43}]}"
    jqe 'has("error")'
    expect 200 GET "$BASE/products/2"
    jqe '.stock == 42'
    # batches come only as authenticated node messages: the old door is gone
    expect 404 POST "$BASE/api/sync" 'x'
    expect 404 POST "$r1/api/sync" 'x'
    stop_leader
    # a replica alone: its leader's port is closed
    local lport=$PORT
    : >"$WORK/leader-lonely.log"
    "$FD" serve --role replica1 --peer leader="http://127.0.0.1:$lport" --port 0 \
        --data "$WORK/lonely" --no-demo >"$WORK/leader-lonely.log" 2>&1 &
    EXTRA_PID=$!
    local port=""
    for ((i = 0; i < STARTUP_WAIT_S * 20; i++)); do
        port=$(sed -n 's|.*http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$WORK/leader-lonely.log" | head -1)
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || fail "a lone replica did not start"
    grep -q 'no registry' "$WORK/leader-lonely.log" || fail "a replica without a registry did not say so"
    expect 503 POST "http://127.0.0.1:$port/users" '{"name":"Cy","email":"cy@example.org"}'
    jqe '.error == "leader unreachable" and (.detail | test("leader at http://127.0.0.1:"))'
    expect 503 GET "http://127.0.0.1:$port/getServer"
    expect 200 GET "http://127.0.0.1:$port/products"
    kill -TERM "$EXTRA_PID"
    wait "$EXTRA_PID" || fail "the lone replica did not stop cleanly"
    rm -f "$FIFO_DIR/fiu-ctrl-$EXTRA_PID.in" "$FIFO_DIR/fiu-ctrl-$EXTRA_PID.out"
    EXTRA_PID=""
}

# The session rule across replicas: a client that wrote through replica1 and
# reads from replica2 with its session (X-Faultdrill-Session: the position it
# was answered with) is held until replica2 holds the write — with replica2's
# link cut, held in vain (503, nothing stale served) while a read without a
# session is served at once from the old copy; healed, the same read sees it.
case_session_across_replicas() {
    start_leader "$WORK/data"
    local r1="http://127.0.0.1:$R1" r2="http://127.0.0.1:$R2" pos id
    until_fifo "$PID"
    fiu-ctrl -c "enable name=net/leader/replica2/drop" "$PID" || fail "fiu-ctrl enable failed"
    expect 201 POST "$r1/products" '{"name":"Session","price":1,"stock":1}'
    id=$(jq .id "$WORK/body")
    pos=$(position)
    [ -n "$pos" ] && [ "$pos" -gt 0 ] || fail "the write through replica1 has no position"
    session_get "$pos" "$r2/products/$id"
    [ "$STATUS" = 503 ] || fail "replica2, cut off, answered $STATUS to a read behind the session"
    jqe '.error == "behind your session" and (.detail | test("replica2"))'
    expect 404 GET "$r2/products/$id" # no session: the old copy, at once
    expect 200 GET "$r2/products?q=Session"
    jqe 'length == 0'
    [ "$(position)" -lt "$pos" ] || fail "replica2's old copy says position $(position) >= $pos"
    # the session held the read: it is answered the moment replica2 catches up
    fiu-ctrl -c "disable name=net/leader/replica2/drop" "$PID" || fail "fiu-ctrl disable failed"
    session_get "$pos" "$r2/products/$id"
    [ "$STATUS" = 200 ] || fail "replica2 answered $STATUS after the heal"
    jqe '.name == "Session"'
    [ "$(position)" -ge "$pos" ] || fail "the read says position $(position), before $pos"
    # a session that is not a number is refused
    session_get "soon" "$r2/products/$id"
    [ "$STATUS" = 400 ] || fail "a bad session answered $STATUS"
    stop_leader
}

# GET /getServer is the leader's client node: round robin over the replicas
# the registry lists; each address answers as the node it is named for; a
# replica forwards the call to its leader. The registry is its own process
# and shows what it heard; it serves no shop.
case_registry_rotates() {
    start_leader "$WORK/data"
    local i seen=""
    for ((i = 0; i < 6; i++)); do
        expect 200 GET "$BASE/getServer"
        jqe '(.server | startswith("http://127.0.0.1:")) and (.node | type == "string") and .healthy == 2'
        local node server
        node=$(jq -r .node "$WORK/body")
        server=$(jq -r .server "$WORK/body")
        seen="$seen $node"
        expect 200 GET "$server/heartbeat"
        jqe ".node == \"$node\""
    done
    for n in replica1 replica2; do
        [ "$(echo "$seen" | tr ' ' '\n' | grep -cx "$n")" = 3 ] ||
            fail "6 answers should name $n three times:$seen"
    done
    expect 200 GET "http://127.0.0.1:$R1/getServer"
    jqe '.node == "replica1" or .node == "replica2"'
    grep -qi '^X-Faultdrill-Via: leader' "$WORK/head" || fail "a replica answered /getServer itself"
    expect 200 GET "$REG/replication/status"
    jqe '.role == "registry" and .warming == false and .listed == ["replica1","replica2"] and
         .heartbeats > 0 and .answers > 0'
    expect 404 GET "$REG/products"
    jqe '.error == "not a shop"'
    stop_leader
}

# kill -9 a replica: the status says down, the registry skips it, the leader
# still takes writes; it is restarted and catches up from its own position.
case_kill9_replica_respawn() {
    start_leader "$WORK/data"
    local victim=${REPLICA_PIDS[0]} i
    # a replica that stops answering (SIGSTOP: down for as long as the test
    # needs, no race with a restart) stops heartbeating: the registry drops
    # it, and the leader's client with it
    kill -STOP "$victim"
    wait_for '.replicas[0].state == "down" and .replicas[0].listed == false and
              .replicas[1].state == "up" and .client.listed == ["replica2"]'
    local nodes=""
    for ((i = 0; i < 4; i++)); do
        expect 200 GET "$BASE/getServer"
        nodes="$nodes $(jq -r .node "$WORK/body")"
    done
    [ "$nodes" = " replica2 replica2 replica2 replica2" ] ||
        fail "/getServer named a replica the registry does not list:$nodes"
    kill -CONT "$victim"
    wait_for '.replicas[0].state == "up" and .client.listed == ["replica1","replica2"]'
    # kill -9: the leader sees its child die and says so (it restarts it a
    # second later, so the gap itself is not waited for)
    kill -KILL "$victim"
    wait_for '.replicas[0].lastError | test("pid '"$victim"'.*signal 9")'
    jqe '.replicas[1].state == "up"'
    local ids=()
    for ((i = 0; i < 5; i++)); do
        ids+=("$(new_product "While down $i")")
    done
    wait_for ".replicas[0].state == \"up\" and .replicas[0].lagChanges == 0 and
              .replicas[0].restarts == 1 and .replicas[0].pid != $victim"
    local port
    port=$(jq -r '.replicas[0].port' "$WORK/body")
    REPLICA_PIDS+=("$(jq -r '.replicas[0].pid' "$WORK/body")")
    for id in "${ids[@]}"; do
        expect 200 GET "http://127.0.0.1:$port/products/$id"
    done
    # it caught up from its own durable position: nothing applied twice
    expect 200 GET "http://127.0.0.1:$port/replication/status"
    jqe '.appliedTwice == false and .changesApplied == 5'
    stop_leader
    "$DIGEST" "$WORK/data/db.sqlite" "$WORK/data/replica1/db.sqlite" >"$WORK/digest" ||
        fail "replica1 differs from the leader: $(cat "$WORK/digest")"
}

# kill -9 the registry: the leader's client keeps its last good answer and
# /getServer goes on; the registry is restarted where it listened, hears the
# replicas' heartbeats again and answers the client again.
case_registry_kill9() {
    start_leader "$WORK/data"
    local victim=${REPLICA_PIDS[2]} i
    expect 200 GET "$REG/replication/status"
    kill -KILL "$victim"
    wait_for '.registry.pid == null and (.registry.lastError | test("signal 9"))'
    for ((i = 0; i < 4; i++)); do
        expect 200 GET "$BASE/getServer"
        jqe '.healthy == 2'
    done
    wait_for ".registry.pid != null and .registry.pid != $victim and .registry.restarts == 1 and
              .registry.url == \"$REG\" and .client.fromRegistry and .client.stale == false and
              .client.listed == [\"replica1\",\"replica2\"]"
    REPLICA_PIDS+=("$(jq -r '.registry.pid' "$WORK/body")")
    until_json "$REG/replication/status" '.warming == false and .listed == ["replica1","replica2"]'
    stop_leader
}

# A replica's read cache (--cache on): an answer is cached, and dropped when
# a change the replica applies touches what it read, so the next read sees
# the write. --cache naive never drops it: the replica keeps serving the
# old answer after it applied the change, even to a client whose session
# says it wrote it (the workshop's bug, shown live).
case_cache_on_naive() {
    local mode name
    for mode in on naive; do
        start_leader "$WORK/data-$mode" --cache "$mode" --ttl 60000
        local r1="http://127.0.0.1:$R1" seq
        expect 200 GET "$r1/products/3"
        name=$(jq -r .name "$WORK/body")
        grep -qi '^X-Faultdrill-Cache: hit' "$WORK/head" && fail "a first read was a cache hit"
        expect 200 GET "$r1/products/3"
        grep -qi '^X-Faultdrill-Cache: hit' "$WORK/head" || fail "a second read was not a cache hit"
        jqe ".name == \"$name\""
        expect 200 PUT "$BASE/products/3" '{"name":"Recalled","price":3,"stock":5}'
        seq=$(sed -n 's/^X-Faultdrill-Seq: \([0-9]*\).*/\1/Ip' "$WORK/head" | tr -d '\r')
        until_json "$r1/replication/status" ".position >= $seq"
        session_get "$seq" "$r1/products/3"
        [ "$STATUS" = 200 ] || fail "a read with the write's session answered $STATUS"
        if [ "$mode" = on ]; then
            jqe '.name == "Recalled"'
            grep -qi '^X-Faultdrill-Cache: hit' "$WORK/head" && fail "cache=on served a dropped entry"
            until_json "$r1/replication/status" '.cache.mode == "on" and .cache.invalidated >= 1 and
                                                 .cache.hits == 1'
        else
            jqe ".name == \"$name\""
            grep -qi '^X-Faultdrill-Cache: hit' "$WORK/head" || fail "cache=naive did not serve its entry"
            [ "$(position)" -lt "$seq" ] || fail "the naive entry says position $(position) >= $seq"
            until_json "$r1/replication/status" '.cache.mode == "naive" and .cache.invalidated == 0'
        fi
        stop_leader
    done
}

# Two topologies that replicate between nodes do not combine (DESIGN.md §2:
# only mirror, a node's storage, goes beside one; serve_combo_test.sh runs
# those): exit 2 with why, before anything is made on disk.
case_combination_refused() {
    local t rc
    for t in "cluster async" "offline+cluster"; do
        rc=0
        "$FD" serve --topology "$t" --port 0 --data "$WORK/combo" >"$WORK/combo.log" 2>&1 || rc=$?
        [ "$rc" = 2 ] || fail "--topology '$t' exited $rc, expected 2"
        grep -q "do not combine with each other" "$WORK/combo.log" ||
            fail "--topology '$t' did not say why: $(cat "$WORK/combo.log")"
        [ ! -e "$WORK/combo" ] || fail "--topology '$t' made its data directory"
    done
    rc=0
    "$FD" serve --topology "mirror bogus" --port 0 --data "$WORK/combo" >"$WORK/combo.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q "bad value for --topology" "$WORK/combo.log" ||
        fail "an unknown topology is not a bad value: $rc $(cat "$WORK/combo.log")"
}

# --propagate before-commit (the naive mode, the core's leader sending from
# inside the transaction): a commit that then fails (the leader's fsync
# fault) leaves the replicas with a product the leader never kept, and the
# copies differ for good. The default, after-commit, under the same fault:
# the replicas never see it, and the copies are equal.
case_propagate_before_commit() {
    local mode id
    for mode in before-commit after-commit; do
        start_leader "$WORK/data-$mode" --propagate "$mode"
        local r1="http://127.0.0.1:$R1"
        status
        jqe ".leader.propagate == \"$mode\""
        until_fifo "$PID"
        fiu-ctrl -c "enable name=disk/leader/fsync,failinfo=5" "$PID" || fail "fiu-ctrl enable failed"
        req POST "$BASE/products" '{"name":"Phantom","price":1,"stock":1}'
        [ "$STATUS" -ge 500 ] || fail "a write whose commit failed answered $STATUS"
        fiu-ctrl -c "disable name=disk/leader/fsync" "$PID" || fail "fiu-ctrl disable failed"
        id=$(new_product Kept)
        wait_get "$r1/products/$id"
        expect 200 GET "$BASE/products?q=Phantom"
        jqe 'length == 0'
        expect 200 GET "$r1/products?q=Phantom"
        if [ "$mode" = before-commit ]; then
            jqe 'length == 1'
            wait_for '.leader.hookSends >= 2 and .leader.phantoms >= 1 and .leader.replicaAhead > 0'
        else
            jqe 'length == 0'
            wait_for '.leader.hookSends == 0 and .leader.phantoms == 0 and .replicas[0].lagChanges == 0'
        fi
        stop_leader
        local rc=0
        "$DIGEST" "$WORK/data-$mode/db.sqlite" "$WORK/data-$mode/replica1/db.sqlite" \
            >"$WORK/digest" || rc=$?
        if [ "$mode" = before-commit ]; then
            [ "$rc" != 0 ] || fail "before-commit: the copies are equal after a phantom"
        else
            [ "$rc" = 0 ] || fail "after-commit: the copies differ: $(cat "$WORK/digest")"
        fi
    done
}

# fiu-ctrl drops the leader's batches to replica1: it lags while replica2
# follows; healed, the core's resend catches it up.
case_fiu_drop_lag() {
    start_leader "$WORK/data"
    until_fifo "$PID"
    fiu-ctrl -c "enable name=net/leader/replica1/drop" "$PID" || fail "fiu-ctrl enable failed"
    local id
    id=$(new_product Dropped)
    wait_get "http://127.0.0.1:$R2/products/$id"
    wait_for '.replicas[1].lagChanges == 0 and .replicas[0].lagChanges > 0 and
              .replicas[0].state == "catching-up" and .replicas[0].messagesLost > 0 and
              .replicas[0].timeouts > 0 and .replicas[0].lagSeconds > 0.2'
    expect 404 GET "http://127.0.0.1:$R1/products/$id"
    fiu-ctrl -c "disable name=net/leader/replica1/drop" "$PID" || fail "fiu-ctrl disable failed"
    wait_for '.replicas[0].lagChanges == 0 and .replicas[0].state == "up"'
    expect 200 GET "http://127.0.0.1:$R1/products/$id"
    stop_leader
}

# SIGTERM on the leader stops every replica and the registry and exits 0; a
# SIGKILLed leader's children stop by themselves (they never outlive it).
case_sigterm_no_orphans() {
    start_leader "$WORK/data" --replicas 3
    local pids=("${REPLICA_PIDS[@]}") p i
    [ "${#pids[@]}" = 4 ] || fail "expected 3 replicas and a registry, got ${#pids[@]}"
    stop_leader
    for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null && fail "child pid $p outlived its leader"
    done
    for n in replica1 replica2 replica3 registry; do
        grep -q 'stopped cleanly' "$WORK/data/$n/serve.log" || fail "$n did not stop cleanly"
    done
    start_leader "$WORK/data"
    pids=("${REPLICA_PIDS[@]}")
    local leader=$PID
    kill -KILL "$leader"
    wait "$leader" 2>/dev/null || true
    rm -f "$FIFO_DIR/fiu-ctrl-$leader.in" "$FIFO_DIR/fiu-ctrl-$leader.out"
    PID=""
    local end=$((SECONDS + WAIT_S))
    for p in "${pids[@]}"; do
        while kill -0 "$p" 2>/dev/null; do
            [ "$SECONDS" -lt "$end" ] || fail "child pid $p outlived a SIGKILLed leader"
            sleep 0.05
        done
    done
    return 0
}

# node_post URL BODYFILE [HEADER...]: POST /api/node as any local process
# could; sets STATUS.
node_post() {
    local url=$1 body=$2
    shift 2
    local args=(-s -o "$WORK/body" -w '%{http_code}' --max-time 30
        -H 'Content-Type: application/octet-stream' --data-binary "@$body")
    local h
    for h in "$@"; do
        args+=(-H "$h")
    done
    STATUS=$(curl "${args[@]}" "$url/api/node") || fail "curl POST $url/api/node failed"
}

# signed URL BODYFILE SECRET FROM TO COUNTER: node_post with the MAC of
# those fields under SECRET.
signed() {
    local url=$1 body=$2 secret=$3 from=$4 to=$5 counter=$6 mac
    mac=$("$FORGE" mac "$secret" "$from" "$to" "$counter" "$body") || fail "serve_forge mac"
    node_post "$url" "$body" "X-Faultdrill-From: $from" "X-Faultdrill-To: $to" \
        "X-Faultdrill-Counter: $counter" "X-Faultdrill-Mac: $mac"
}

now_us() {
    date +%s%6N
}

# The attack of issue 10: any local process posts a node message to a
# replica — a real one, the leader's batch of the next change (creating
# product "Forged N") in the core's codec. Unsigned, signed under another
# secret, addressed to another node, stale, or replayed, it is refused with
# 401 and changes nothing; the replica keeps following its leader. Signed
# with the cluster's secret it would be applied: that is what makes the
# refusals mean something.
case_forged_batch_refused() {
    [ -n "$FORGE" ] || fail "serve_forge not given"
    # no demo catalog: the forged product's id is free on the replicas
    start_leader "$WORK/data" --no-demo
    local r1="http://127.0.0.1:$R1" r2="http://127.0.0.1:$R2" pos next counter
    status
    pos=$(jq '.replicas[0].position' "$WORK/body")
    next=$((pos + 1))
    "$FORGE" clusterbatch "$WORK" "$next" "$WORK/forged" || fail "serve_forge clusterbatch"
    "$FORGE" probe "$WORK/probe" || fail "serve_forge probe"
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/other.secret"
    local secret="$WORK/data/node.secret"
    [ "$(stat -c %a "$secret")" = 600 ] || fail "the cluster secret is not mode 600"
    # unsigned
    node_post "$r1" "$WORK/forged"
    [ "$STATUS" = 401 ] || fail "an unsigned batch answered $STATUS"
    jqe '.error == "unauthenticated"'
    node_post "$r1" "$WORK/forged" "X-Faultdrill-From: leader" "X-Faultdrill-To: replica1" \
        "X-Faultdrill-Counter: $(now_us)" "X-Faultdrill-Mac: $(printf '0%.0s' {1..64})"
    [ "$STATUS" = 401 ] || fail "a batch with a made-up MAC answered $STATUS"
    # signed under another secret
    signed "$r1" "$WORK/forged" "$WORK/other.secret" leader replica1 "$(now_us)"
    [ "$STATUS" = 401 ] || fail "a batch under another secret answered $STATUS"
    jqe '.detail | test("MAC")'
    # signed with the cluster's secret, but for replica2
    signed "$r1" "$WORK/forged" "$secret" leader replica2 "$(now_us)"
    [ "$STATUS" = 401 ] || fail "a batch for replica2 answered $STATUS at replica1"
    # signed, but an hour old
    signed "$r1" "$WORK/forged" "$secret" leader replica1 "$(($(now_us) - 3600000000))"
    [ "$STATUS" = 401 ] || fail "an hour-old message answered $STATUS"
    # a replay: a real probe goes through once, its copy does not (a counter
    # 2 s ahead, so that the leader's own messages do not overtake it)
    counter=$(($(now_us) + 2000000))
    signed "$r1" "$WORK/probe" "$secret" leader replica1 "$counter"
    [ "$STATUS" = 200 ] || fail "a signed probe answered $STATUS"
    signed "$r1" "$WORK/probe" "$secret" leader replica1 "$counter"
    [ "$STATUS" = 401 ] || fail "a replayed message answered $STATUS"
    jqe '.detail | test("replay")'
    # nothing of it reached replica1, which still follows its leader
    expect 200 GET "$r1/products?q=Forged"
    jqe 'length == 0'
    expect 200 GET "$r1/replication/status"
    jqe ".position == $pos and .changesApplied == $pos"
    local id
    id=$(new_product Genuine)
    wait_get "$r1/products/$id"
    wait_for '.replicas[0].lagChanges == 0 and .replicas[0].state == "up"'
    # the control: the same batch signed with the cluster's secret is applied
    # (at replica2, which then holds a change its leader never made)
    status
    pos=$(jq '.replicas[1].position' "$WORK/body")
    mkdir -p "$WORK/b2"
    "$FORGE" clusterbatch "$WORK/b2" "$((pos + 1))" "$WORK/forged2" || fail "serve_forge clusterbatch"
    signed "$r2" "$WORK/forged2" "$secret" leader replica2 "$(($(now_us) + 2000000))"
    [ "$STATUS" = 200 ] || fail "the signed control batch answered $STATUS"
    expect 200 GET "$r2/products?q=Forged"
    jqe 'length == 1'
    stop_leader
    "$DIGEST" "$WORK/data/db.sqlite" "$WORK/data/replica1/db.sqlite" >"$WORK/digest" ||
        fail "replica1 differs from the leader: $(cat "$WORK/digest")"
}

case "$CASE" in
propagate_sigterm_equal | forward_read_your_writes | session_across_replicas | registry_rotates | \
    kill9_replica_respawn | registry_kill9 | cache_on_naive | combination_refused | \
    propagate_before_commit | fiu_drop_lag | sigterm_no_orphans | forged_batch_refused)
    "case_$CASE"
    ;;
*)
    echo "unknown case: $CASE" >&2
    exit 2
    ;;
esac
echo "PASS [$CASE]"
