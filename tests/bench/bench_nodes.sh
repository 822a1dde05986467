#!/usr/bin/env bash
# bench_nodes.sh — figures of the live topologies with every node its own
# process (issue 10): async lag under a 200 ms WAN, cluster propagation, and
# the offline drain of a 10,000-row backlog. Figures, not pass/fail; the
# machine is shared, so quote one run's numbers together.
#
#   bench_nodes.sh FAULTDRILL [SAMPLES]
#
#   async:   --delay 200: a write acknowledged by the primary -> the primary
#            knows the secondary holds it (status secondarySeq == primarySeq),
#            one write at a time; p50 and p99 (the poll adds up to ~10 ms).
#   cluster: a product written to the leader -> replica1 answers it, one at a
#            time; p50 and p99.
#   offline: ~10,000 queue rows written while the job is idle, then one
#            POST /sync/run: the time until central accepted them all.
set -euo pipefail

FD=$1
SAMPLES=${2:-40}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/faultdrill-bench-nodes-XXXXXX")
PID=""

cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

die() {
    echo "bench_nodes: $*" >&2
    exit 1
}

now_ms() {
    date +%s%3N
}

# start DATA [serve options...]: sets PID, BASE once the banner names the port.
start() {
    local data=$1 log="$WORK/$(basename "$1").log" i port=""
    shift
    : >"$log"
    "$FD" serve --port 0 --data "$data" "$@" >"$log" 2>&1 &
    PID=$!
    for ((i = 0; i < 1200; i++)); do
        port=$(sed -n 's|.*http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log" | head -1)
        [ -n "$port" ] && break
        kill -0 "$PID" 2>/dev/null || die "serve exited: $(cat "$log")"
        sleep 0.05
    done
    [ -n "$port" ] || die "serve did not start"
    BASE="http://127.0.0.1:$port"
}

stop() {
    kill -TERM "$PID"
    wait "$PID" || die "serve did not stop cleanly"
    PID=""
}

post() {
    curl -sf -X POST -H 'Content-Type: application/json' --data-binary "$2" "$BASE$1"
}

# until URL FILTER: polls every 5 ms (60 s at most).
until_json() {
    local i
    for ((i = 0; i < 12000; i++)); do
        curl -s "$1" 2>/dev/null | jq -e "$2" >/dev/null 2>&1 && return 0
        sleep 0.005
    done
    die "$1 never satisfied $2"
}

# percentiles FILE: "p50 X ms, p99 Y ms, max Z ms (N samples)".
percentiles() {
    sort -n "$1" | awk '{v[NR] = $1} END {
        p50 = v[int((NR + 1) * 0.50)]; i = int(NR * 0.99 + 0.999); if (i > NR) i = NR;
        printf "p50 %d ms, p99 %d ms, max %d ms (%d samples)\n", p50, v[i], v[NR], NR }'
}

bench_async() {
    start "$WORK/async" --topology async --delay 200
    until_json "$BASE/replication/status" '.lagChanges == 0 and .secondarySeq > 0'
    : >"$WORK/async.ms"
    local i t0
    for ((i = 0; i < SAMPLES; i++)); do
        post /orders "{\"userId\":1,\"products\":[{\"productId\":$((i % 5 + 1)),\"quantity\":1}]}" \
            >/dev/null || die "an order failed"
        t0=$(now_ms)
        until_json "$BASE/replication/status" '.lagChanges == 0 and .secondarySeq == .primarySeq'
        echo $(($(now_ms) - t0)) >>"$WORK/async.ms"
    done
    stop
    echo "async --delay 200, acknowledged -> held by the secondary: $(percentiles "$WORK/async.ms")"
}

bench_cluster() {
    start "$WORK/cluster" --topology cluster
    until_json "$BASE/replication/status" 'all(.replicas[]; .state == "up" and .lagChanges == 0)'
    local r1 i id t0
    r1=$(curl -s "$BASE/replication/status" | jq -r '.replicas[0].port')
    : >"$WORK/cluster.ms"
    for ((i = 0; i < SAMPLES; i++)); do
        id=$(post /products "{\"name\":\"P$i\",\"price\":1,\"stock\":1}" | jq -r .id) ||
            die "a product failed"
        t0=$(now_ms)
        until curl -sf -o /dev/null "http://127.0.0.1:$r1/products/$id"; do sleep 0.002; done
        echo $(($(now_ms) - t0)) >>"$WORK/cluster.ms"
    done
    stop
    echo "cluster, written to the leader -> read at replica1: $(percentiles "$WORK/cluster.ms")"
}

bench_offline() {
    start "$WORK/offline" --topology offline --interval 3600000 --no-demo
    # 50 products, then orders of all 50: 2 + 2 x 50 queue rows each
    local i lines="" body rows t0 t1
    for ((i = 1; i <= 50; i++)); do
        post /products "{\"name\":\"P$i\",\"price\":1,\"stock\":1000000}" >/dev/null ||
            die "a product failed"
        lines="$lines${lines:+,}{\"productId\":$i,\"quantity\":1}"
    done
    post /users '{"name":"Bench","email":"bench@example.org"}' >/dev/null || die "a user failed"
    body="{\"userId\":1,\"products\":[$lines]}"
    for ((i = 0; i < 98; i++)); do
        post /orders "$body" >/dev/null || die "an order failed"
    done
    rows=$(curl -s "$BASE/sync/status" | jq .rows.pending)
    t0=$(now_ms)
    post /sync/run '' >"$WORK/run.json" || die "POST /sync/run failed"
    t1=$(now_ms)
    jq -e '.rows.pending == 0 and .online' "$WORK/run.json" >/dev/null ||
        die "the backlog did not drain: $(head -c 400 "$WORK/run.json")"
    echo "offline, a backlog of $rows queue rows -> all accepted by central: $((t1 - t0)) ms" \
        "($(jq .pushes "$WORK/run.json") pushes; the reply includes centralCheck," \
        "$(jq .centralCheck.tookMs "$WORK/run.json") ms)"
    stop
}

bench_async
bench_cluster
bench_offline
