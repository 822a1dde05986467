#!/usr/bin/env bash
# serve_attack_test.sh — `faultdrill serve` under attack and overload (issue
# 13): bodies built to exhaust a stack or memory, HTTP that civetweb or a
# proxy could misread, cross-site requests, and clients that hold
# connections. Raw requests go through bash's /dev/tcp; the crowd of slow
# and idle clients through http_crowd. CTest runs one case per test.
#
#   serve_attack_test.sh FAULTDRILL HTTP_CROWD CASE
#
# Cases: json_limits http_errors cross_site crowd timeouts client_cap
set -euo pipefail

FD=$1
CROWD=$2
CASE=$3
. "$(dirname "$0")/lib.sh"
# A server may close a connection it refused before the client is done
# writing: that is an EPIPE for the writer to ignore, not a signal.
trap '' PIPE

# raw FORMAT: sends printf FORMAT (so \r\n and \x00 work, % is %%) on a new
# connection, reads the reply until the server closes (or 5 s): the reply in
# $WORK/raw, its status in RAW_STATUS ("" when none came).
raw() {
    # shellcheck disable=SC2059
    printf "$1" >"$WORK/request"
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    # One write: bash's own printf flushes at every newline, and a server
    # that answers and closes after the first line would turn the next
    # write into SIGPIPE (ignored below) and a reset.
    cat "$WORK/request" >&3 2>/dev/null || true
    timeout 5 cat <&3 >"$WORK/raw" || true
    exec 3<&- 3>&-
    RAW_STATUS=$(head -1 "$WORK/raw" | tr -d '\r' | awk '{print $2}')
    sed -n '/^\r$/,$p' "$WORK/raw" | tail -n +2 >"$WORK/body"
}

# expect_raw CODE FORMAT: the reply's status, and a JSON error body unless 204.
expect_raw() {
    local code=$1
    raw "$2"
    [ "$RAW_STATUS" = "$code" ] || fail "$(printf '%s' "$2" | head -c 80) answered '$RAW_STATUS', expected $code: $(head -c 300 "$WORK/raw")"
    if [ "$code" != 204 ] && [ "$code" != 200 ]; then
        jqe 'has("error") and has("detail")'
    fi
}

H() { printf 'Host: 127.0.0.1:%s\\r\\n' "$PORT"; }

alive() {
    expect 200 GET /heartbeat
}

# ---- cases ------------------------------------------------------------------

# Deep, wide, long and NUL bodies to every JSON route: each is refused with
# the JSON error, nothing is written, the server stays up.
case_json_limits() {
    start_server "$WORK/data" --allow-faults
    expect 200 GET /users/ada%40example.org
    local deep wide long routes r
    deep=$(printf '%*s' 700 '' | tr ' ' '[')
    local deepobj
    deepobj="$(printf '%*s' 700 '' | sed 's/ /{"a":/g')1$(printf '%*s' 700 '' | tr ' ' '}')"
    wide="{\"products\":[$(printf '1,%.0s' $(seq 1 5000))1]}"
    long="{\"name\":\"$(head -c 70000 /dev/zero | tr '\0' 'x')\"}"
    routes="POST:/products PUT:/products/1 POST:/users PUT:/users/ada%40example.org POST:/orders
            PUT:/orders/1 POST:/cart/1 POST:/faults"
    for r in $routes; do
        local m=${r%%:*} p=${r#*:}
        expect_error 400 "$m" "$p" "$deep"
        jqe '.detail | test("nested deeper")'
        expect_error 400 "$m" "$p" "$deepobj"
        expect_error 400 "$m" "$p" "$wide"
        jqe '.detail | test("more than")'
        expect_error 413 "$m" "$p" "$long"
        expect_error 400 "$m" "$p" '{"name":"ab\u0000cd","email":"nul@example.org","price":1,"stock":1,"userId":1,"status":"paid","productId":1,"quantity":1,"action":"enable"}'
        jqe '.detail | test("u0000")'
        # a raw NUL byte inside a string
        local n=$'{"name":"ab'
        expect_raw 400 "$m $p HTTP/1.1\r\n$(H)Content-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n${n}\x00cd\",\"x\":1}"
        alive
    done
    expect 200 GET /products
    jqe 'all(.[]; .name != "ab")'
    expect 404 GET /users/nul%40example.org
    stop_server
}

# Every HTTP error as the JSON error with the right status.
case_http_errors() {
    start_server "$WORK/data"
    local h
    h=$(H)
    expect_raw 405 "PUT /products HTTP/1.1\r\n${h}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    grep -qi '^Allow: GET, HEAD, POST, OPTIONS' "$WORK/raw" || fail "405 without Allow: $(cat "$WORK/raw")"
    expect_raw 400 "GARBAGE\r\n\r\n"
    expect_raw 400 "GET /products HTTP/1.1 extra\r\n${h}\r\n"
    for m in PROPFIND MKCOL TRACE LOCK COPY FOO get; do
        expect_raw 501 "$m /products HTTP/1.1\r\n${h}Connection: close\r\n\r\n"
    done
    expect_raw 405 "PATCH /products/1 HTTP/1.1\r\n${h}Connection: close\r\n\r\n"
    expect_raw 505 "GET /products HTTP/2.0\r\n${h}\r\n"
    # HEAD is GET without the body
    raw "HEAD /products HTTP/1.1\r\n${h}Connection: close\r\n\r\n"
    [ "$RAW_STATUS" = 200 ] || fail "HEAD /products answered $RAW_STATUS"
    [ ! -s "$WORK/body" ] || fail "HEAD /products sent a body"
    grep -qi '^Content-Length: [1-9]' "$WORK/raw" || fail "HEAD without GET's Content-Length"
    # OPTIONS * and absolute URIs are answered, not dropped
    expect_raw 204 "OPTIONS * HTTP/1.1\r\n${h}Connection: close\r\n\r\n"
    grep -qi '^Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS' "$WORK/raw" || fail "OPTIONS * without Allow"
    expect_raw 204 "OPTIONS /products/1 HTTP/1.1\r\n${h}Connection: close\r\n\r\n"
    grep -qi '^Access-Control' "$WORK/raw" && fail "OPTIONS granted CORS"
    expect_raw 200 "GET http://127.0.0.1:$PORT/products/1 HTTP/1.1\r\n${h}Connection: close\r\n\r\n"
    expect_raw 400 "GET http://evil.example/products/1 HTTP/1.1\r\n${h}Connection: close\r\n\r\n"
    jqe '.error == "wrong host"'
    # framing a proxy could read otherwise: refused, connection closed
    expect_raw 400 "POST /users HTTP/1.1\r\n${h}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}"
    expect_raw 400 "POST /users HTTP/1.1\r\n${h}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
    expect_raw 400 "POST /users HTTP/1.1\r\n${h}Content-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    expect_raw 400 "POST /users HTTP/1.1\r\n${h}Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n"
    # ids at 2^53 and past it are 400, as API.md says
    expect_error 400 GET /products/9007199254740992
    expect_error 400 GET /products/9007199254740993
    expect_error 400 GET /orders/99999999999999999999
    expect 404 GET /products/9007199254740991
    # NUL in a path
    expect_error 400 GET /users/%00
    jqe '.error == "bad path"'
    expect_error 400 GET /index.html%00.js
    grep -qi '<html' "$WORK/body" && fail "index.html%00.js served index.html"
    expect_error 400 GET /users/a%2Fb
    expect 200 GET /
    alive
    stop_server
}

# DESIGN.md §7: no cross-site request changes anything; a wrong Host is
# refused on every route (DNS rebinding).
case_cross_site() {
    start_server "$WORK/data" --allow-faults
    local h body='{"name":"disk/primary/write","action":"enable"}'
    h=$(H)
    local len=${#body}
    expect_raw 415 "POST /faults HTTP/1.1\r\n${h}Content-Type: text/plain\r\nContent-Length: $len\r\nConnection: close\r\n\r\n$body"
    expect_raw 415 "POST /faults HTTP/1.1\r\n${h}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: $len\r\nConnection: close\r\n\r\n$body"
    expect_raw 415 "POST /faults HTTP/1.1\r\n${h}Content-Length: $len\r\nConnection: close\r\n\r\n$body"
    expect_raw 403 "POST /faults HTTP/1.1\r\n${h}Origin: http://evil.example\r\nContent-Type: application/json\r\nContent-Length: $len\r\nConnection: close\r\n\r\n$body"
    expect_raw 403 "POST /faults HTTP/1.1\r\n${h}Origin: null\r\nContent-Type: application/json\r\nContent-Length: $len\r\nConnection: close\r\n\r\n$body"
    expect_raw 403 "POST /faults HTTP/1.1\r\n${h}Origin: http://127.0.0.1:1\r\nContent-Type: application/json\r\nContent-Length: $len\r\nConnection: close\r\n\r\n$body"
    expect_raw 400 "POST /faults HTTP/1.1\r\nHost: evil.example:$PORT\r\nContent-Type: application/json\r\nContent-Length: $len\r\nConnection: close\r\n\r\n$body"
    expect_raw 415 "POST /cart/1/checkout HTTP/1.1\r\n${h}Content-Length: 0\r\nConnection: close\r\n\r\n"
    expect_raw 415 "DELETE /products/1 HTTP/1.1\r\n${h}Connection: close\r\n\r\n"
    expect_raw 403 "DELETE /products/1 HTTP/1.1\r\n${h}Origin: http://evil.example\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    # nothing was switched, nothing deleted
    expect 200 GET /faults
    jqe 'all(.points[]; .enabled == false)'
    expect 200 GET /products/1
    # DNS rebinding: a wrong Host, or none in HTTP/1.1, is refused on reads too
    for p in /products /faults /heartbeat / /index.html; do
        expect_raw 400 "GET $p HTTP/1.1\r\nHost: evil.example:$PORT\r\nConnection: close\r\n\r\n"
        jqe '.error == "wrong host"'
    done
    expect_raw 400 "GET /products HTTP/1.1\r\nConnection: close\r\n\r\n"
    expect_raw 200 "GET /products/1 HTTP/1.0\r\n\r\n"
    expect_raw 200 "GET /products/1 HTTP/1.1\r\nHost: localhost:$PORT\r\nConnection: close\r\n\r\n"
    # the server's own page may switch faults
    expect_raw 200 "POST /faults HTTP/1.1\r\n${h}Origin: http://127.0.0.1:$PORT\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: $len\r\nConnection: close\r\n\r\n$body"
    jqe 'any(.points[]; .name == "disk/primary/write" and .enabled)'
    expect 200 POST /faults '{"name":"disk/primary/write","action":"disable"}'
    # a bodiless request from the server's own page needs no Content-Type
    # (the workshop's front end deletes a cart item with a bare fetch)
    expect_raw 404 "DELETE /products/999999 HTTP/1.1\r\n${h}Origin: http://127.0.0.1:$PORT\r\nConnection: close\r\n\r\n"
    expect_raw 415 "DELETE /products/999999 HTTP/1.1\r\n${h}Origin: http://127.0.0.1:$PORT\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
    stop_server
}

# 100 connections trickling a body and 100 saying nothing: a fresh request
# is still answered within 1 s (a functional bound, generous under ASan).
case_crowd() {
    start_server "$WORK/data"
    "$CROWD" crowd "$PORT" 100 100 5 >"$WORK/crowd" || fail "crowd: $(cat "$WORK/crowd")"
    local worst
    worst=$(awk '{print $3}' "$WORK/crowd")
    [ "$worst" -le 1000 ] || fail "a fresh request waited ${worst} ms: $(cat "$WORK/crowd")"
    echo "crowd: $(cat "$WORK/crowd")"
    alive
    stop_server
}

# Headers, bodies and idle keep-alive connections are bounded in time.
case_timeouts() {
    start_server "$WORK/data" --request-timeout 1000 --keep-alive 500
    local out
    out=$("$CROWD" slow "$PORT")
    [ "${out%% *}" = 408 ] || fail "a trickled body answered '$out', expected 408"
    [ "${out##* }" -lt 5000 ] || fail "a trickled body was cut after ${out##* } ms"
    out=$("$CROWD" idle "$PORT")
    [ "${out%% *}" = closed ] && [ "${out##* }" -lt 5000 ] || fail "an idle connection: $out"
    out=$("$CROWD" idle "$PORT" 'GET /products/1 HTTP/1.1\r\nHost: 127.0.0.1:'"$PORT"'\r\nX-Slow: 1')
    [ "${out%% *}" = closed ] && [ "${out##* }" -lt 5000 ] || fail "slow headers: $out"
    out=$("$CROWD" idle "$PORT" 'GET /products/1 HTTP/1.1\r\nHost: 127.0.0.1:'"$PORT"'\r\n\r\n')
    [ "${out%% *}" = closed ] && [ "${out##* }" -lt 4000 ] || fail "an idle keep-alive connection: $out"
    alive
    stop_server
}

# One client address holds at most --client-cap connections; another
# address is still served, and the count comes back down.
case_client_cap() {
    start_server "$WORK/data" --client-cap 4
    local i fds=()
    for ((i = 0; i < 4; i++)); do
        exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
        printf 'GET /heartbeat HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n' "$PORT" >&$fd
        fds+=("$fd")
    done
    sleep 0.3
    expect_raw 503 "GET /heartbeat HTTP/1.1\r\n$(H)\r\n"
    jqe '.detail | test("client-cap")'
    curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 "http://127.0.0.1:$PORT/heartbeat" \
        >"$WORK/other"
    [ "$(cat "$WORK/other")" = 200 ] || fail "another address answered $(cat "$WORK/other")"
    for fd in "${fds[@]}"; do exec {fd}<&-; done
    sleep 0.5
    alive
    stop_server
}

"case_$CASE"
