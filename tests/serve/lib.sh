# lib.sh — what the serve test scripts share: a scratch directory, starting
# `faultdrill serve` on a free loopback port (--port 0, read back from the
# banner) and stopping it with SIGTERM (exit 0 required), requests through
# curl and checks of their JSON with jq. Sourced after FD and CASE are set.

WORK=$(mktemp -d "${TMPDIR:-/tmp}/faultdrill-serve-XXXXXX")
PID=""
BASE=""
STARTUP_WAIT_S=60 # the sanitizer build starts slowly

cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
        rm -f "${TMPDIR:-/tmp}/fiu-ctrl-$PID.in" "${TMPDIR:-/tmp}/fiu-ctrl-$PID.out"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL [$CASE]: $*" >&2
    if [ -f "$WORK/body" ]; then
        echo "last body: $(head -c 600 "$WORK/body")" >&2
    fi
    for log in "$WORK"/server*.log "$WORK"/*/*/serve.log; do
        [ -f "$log" ] && { echo "--- $log" >&2; tail -20 "$log" >&2; }
    done
    exit 1
}

# start_server DATA [serve options...]: sets PID, PORT, BASE. A script's
# SERVE_ARGS come first (its topology).
SERVERS=0
SERVE_ARGS=()
start_server() {
    local data=$1
    shift
    SERVERS=$((SERVERS + 1))
    LOG="$WORK/server$SERVERS.log"
    : >"$LOG"
    "$FD" serve --port 0 --data "$data" "${SERVE_ARGS[@]}" "$@" >"$LOG" 2>&1 &
    PID=$!
    local i
    for ((i = 0; i < STARTUP_WAIT_S * 20; i++)); do
        PORT=$(sed -n 's|.*http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$LOG" | head -1)
        [ -n "$PORT" ] && break
        kill -0 "$PID" 2>/dev/null || fail "serve exited at start: $(cat "$LOG")"
        sleep 0.05
    done
    [ -n "$PORT" ] || fail "serve did not start within ${STARTUP_WAIT_S}s"
    BASE="http://127.0.0.1:$PORT"
}

# stop_server: SIGTERM, which must end in exit 0.
stop_server() {
    kill -TERM "$PID"
    local rc=0
    wait "$PID" || rc=$?
    PID=""
    [ "$rc" = 0 ] || fail "serve exited $rc after SIGTERM"
    grep -q 'stopped cleanly' "$LOG" || fail "no clean stop in the log"
}

# kill9: the server dies without a chance to write anything more (a killed
# process leaves its fiu-ctrl fifos behind).
kill9() {
    kill -KILL "$PID"
    wait "$PID" 2>/dev/null || true
    rm -f "${TMPDIR:-/tmp}/fiu-ctrl-$PID.in" "${TMPDIR:-/tmp}/fiu-ctrl-$PID.out"
    PID=""
}

# req METHOD PATH|URL [BODY]: sets STATUS; the body is in $WORK/body, the
# headers in $WORK/head. A PATH goes to $BASE.
req() {
    local method=$1 url=$2
    case "$url" in
    http://*) ;;
    *) url="$BASE$url" ;;
    esac
    local args=(-s -o "$WORK/body" -D "$WORK/head" -w '%{http_code}' -X "$method" --path-as-is
        --max-time 30)
    if [ $# -ge 3 ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$3")
    elif [ "$method" != GET ] && [ "$method" != HEAD ]; then
        # a state-changing request says JSON, body or not (DESIGN.md §7)
        args+=(-H 'Content-Type: application/json')
    fi
    STATUS=$(curl "${args[@]}" "$url") || fail "curl $method $url failed"
}

# expect CODE METHOD PATH [BODY]: the request must answer CODE.
expect() {
    local code=$1
    shift
    req "$@"
    [ "$STATUS" = "$code" ] || fail "$1 $2 answered $STATUS, expected $code"
}

# jqe FILTER: the last body must satisfy the jq filter.
jqe() {
    jq -e "$1" "$WORK/body" >/dev/null || fail "body does not satisfy: $1"
}

# until_json URL FILTER [SECONDS]: GETs URL (a path goes to $BASE) until it
# answers 200 with a body the jq filter accepts; fails after SECONDS (WAIT_S)
# of wall clock. A test waits for its condition this way, never for a fixed
# time: CI runs the suite on a loaded 2-core machine, under the sanitizers too.
WAIT_S=30
until_json() {
    local url=$1 filter=$2 seconds=${3:-$WAIT_S}
    local end=$((SECONDS + seconds))
    while :; do
        req GET "$url"
        [ "$STATUS" = 200 ] && jq -e "$filter" "$WORK/body" >/dev/null && return 0
        [ "$SECONDS" -lt "$end" ] || break
        sleep 0.05
    done
    fail "GET $url never satisfied $filter within ${seconds}s (last $STATUS)"
}

# until_fifo PID: waits for PID's fiu-ctrl fifo (libfiu makes it at start).
until_fifo() {
    local end=$((SECONDS + WAIT_S))
    until [ -p "${TMPDIR:-/tmp}/fiu-ctrl-$1.in" ]; do
        [ "$SECONDS" -lt "$end" ] || fail "no fiu-ctrl fifo for pid $1 within ${WAIT_S}s"
        sleep 0.05
    done
}

# An error reply is JSON with "error" and "detail".
expect_error() {
    expect "$@"
    jqe 'has("error") and has("detail") and (.error | type == "string")'
}

