#!/usr/bin/env bash
# serve_test.sh — end-to-end tests of `faultdrill serve` through a real HTTP
# client (curl, jq): each case starts its own server on a free loopback port
# (--port 0, read back from the banner) with its own data directory, drives
# it, and stops it. CTest runs one case per test (tests/serve/CMakeLists.txt).
#
#   serve_test.sh FAULTDRILL SERVE_DIGEST CASE
#
# Cases: routes bad_input path_escape concurrent_orders sigterm_mirror_equal
#        kill9_restart startup_errors faults_http_strict faults_http_degrade
#        faults_read_fallback single_topology fiu_ctrl crash_point ack_early
#        position_header fifo_drill_commands
set -euo pipefail

FD=$1
DIGEST=$2
CASE=$3
. "$(dirname "$0")/lib.sh"

mirror_equal() {
    local data=$1
    "$DIGEST" "$data/db.sqlite" "$data/db_mirror.sqlite" >"$WORK/digest" ||
        fail "the two copies differ: $(cat "$WORK/digest")"
}

wait_for_state() {
    local want=$1 i
    for ((i = 0; i < 100; i++)); do
        req GET /mirror/status
        [ "$(jq -r .state "$WORK/body")" = "$want" ] && return 0
        sleep 0.1
    done
    fail "mirror state never became $want: $(cat "$WORK/body")"
}

# ---- cases ------------------------------------------------------------------

case_routes() {
    start_server "$WORK/data"
    expect 200 GET /heartbeat
    jqe '.status == "ok" and .topology == "mirror" and .node == "primary"'
    expect 200 GET /
    grep -qi '<html' "$WORK/body" || fail "/ is not the front end"
    expect 200 GET /products
    jqe 'length == 20 and (.[0] | has("id") and has("name") and has("price") and has("stock"))'
    expect 200 GET '/products?category=books'
    jqe 'length > 0 and all(.[]; .category == "books")'
    expect 200 GET '/products?inStock=true'
    jqe 'length > 0 and all(.[]; .stock > 0)'
    expect 200 GET '/products?q=MUG'
    jqe 'length == 1 and .[0].name == "Enamel mug" and .[0].price == 12.5'
    expect 200 GET /products/1
    jqe '.id == 1 and .price == 12.5'
    expect 201 POST /products '{"name":"Lamp","description":"d","category":"home","price":19.99,"stock":5}'
    jqe '.name == "Lamp" and .price == 19.99 and .stock == 5 and .category == "home"'
    local pid
    pid=$(jq .id "$WORK/body")
    expect 200 PUT "/products/$pid" '{"name":"Lamp 2","price":20,"stock":7}'
    jqe ".id == $pid and .name == \"Lamp 2\" and .price == 20 and .description == \"\""
    expect 200 GET "/products/$pid"
    jqe '.stock == 7'
    expect 204 DELETE "/products/$pid"
    expect_error 404 GET "/products/$pid"

    expect 201 POST /users '{"name":"Grace","email":"grace@example.org"}'
    jqe '.name == "Grace" and .email == "grace@example.org"'
    local uid
    uid=$(jq .id "$WORK/body")
    expect 200 GET /users/grace@example.org
    jqe ".id == $uid"
    expect 200 PUT /users/grace%40example.org '{"name":"Grace H.","newEmail":"gh@example.org"}'
    jqe ".id == $uid and .name == \"Grace H.\" and .email == \"gh@example.org\""
    expect_error 404 GET /users/grace@example.org

    # The workshop's cart (DESIGN.md section 7): POST sets the quantity, the
    # cart is a map of product id to quantity.
    expect 200 POST "/cart/$uid" '{"productId":1,"quantity":1}'
    jqe '. == {"1": 1}'
    expect 200 POST "/cart/$uid" '{"productId":1,"quantity":3}'
    jqe '. == {"1": 3}'
    expect 200 POST "/cart/$uid" '{"productId":1,"quantity":2}'
    jqe '. == {"1": 2}'
    expect 200 POST "/cart/$uid" '{"productId":6,"quantity":1}'
    jqe '. == {"1": 2, "6": 1}'
    expect 200 GET "/cart/$uid"
    jqe '. == {"1": 2, "6": 1}'
    expect 200 DELETE "/cart/$uid/item/6"
    jqe '. == {"1": 2}'
    expect_error 404 DELETE "/cart/$uid/item/6"
    # The project's front end's richer cart: POST adds, names and totals.
    expect 200 GET "/shop/cart/$uid"
    jqe ".userId == $uid and (.items | length) == 1 and .items[0].name == \"Enamel mug\" and .items[0].quantity == 2 and .items[0].subtotal == 25 and .total == 25"
    expect 200 POST "/shop/cart/$uid" '{"productId":6,"quantity":1}'
    jqe '(.items | length) == 2 and .total == 34.9'
    expect 200 POST "/shop/cart/$uid" '{"productId":6,"quantity":1}'
    jqe '.items[1].quantity == 2 and .total == 44.8'
    expect 200 DELETE "/shop/cart/$uid/item/6"
    jqe '(.items | length) == 1 and .total == 25'
    expect_error 404 DELETE "/shop/cart/$uid/item/6"
    expect 201 POST "/cart/$uid/checkout"
    jqe ".userId == $uid and .status == \"pending\" and .total == 25 and (.products | length) == 1"
    expect 200 GET "/cart/$uid"
    jqe '. == {}'
    expect 200 GET "/shop/cart/$uid"
    jqe '(.items | length) == 0 and .total == 0'

    expect 201 POST /orders "{\"userId\":$uid,\"products\":[{\"productId\":2,\"quantity\":1},{\"productId\":4,\"quantity\":3}]}"
    jqe '.total == 79.7 and (.createdAt | test("^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T.*Z$"))'
    local oid
    oid=$(jq .id "$WORK/body")
    expect 200 GET "/orders/$uid"
    jqe "length == 2 and .[0].id == $oid"
    expect 200 PUT "/orders/$oid" '{"status":"shipped"}'
    jqe '.status == "shipped"'
    expect_error 409 PUT "/orders/$oid" '{"status":"pending"}'
    expect_error 409 DELETE /products/2

    expect 200 GET /mirror/status
    jqe '.topology == "mirror" and .state == "in-sync" and .lead == "primary" and .behind == null and .seqPrimary == .seqMirror and .changesBehind == 0'
    expect_error 404 GET /replication/status
    jqe '.error == "not configured"'
    expect_error 404 GET /sync/status
    expect_error 404 GET /getServer
    expect_error 404 POST /api/sync '{}'
    expect_error 404 GET /faults
    stop_server
    mirror_equal "$WORK/data"
}

case_bad_input() {
    start_server "$WORK/data"
    expect_error 400 POST /orders '{"userId":1,'
    jqe '.error == "malformed JSON"'
    expect_error 400 POST /orders ''
    expect_error 400 POST /orders '[1,2]'
    expect_error 400 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]} trailing'
    expect_error 400 GET /users/%ff%fe
    expect_error 400 POST /orders '{"products":[{"productId":1,"quantity":1}]}'
    expect_error 400 POST /orders '{"userId":"1","products":[{"productId":1,"quantity":1}]}'
    expect_error 400 POST /orders '{"userId":1,"products":[]}'
    expect_error 400 POST /orders '{"userId":1,"products":{"productId":1}}'
    expect_error 400 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":0}]}'
    expect_error 400 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":-2}]}'
    expect_error 400 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1.5}]}'
    expect_error 400 POST /orders '{"userId":1,"products":[{"productId":1}]}'
    expect_error 404 POST /orders '{"userId":1,"products":[{"productId":999,"quantity":1}]}'
    expect_error 404 POST /orders '{"userId":999,"products":[{"productId":1,"quantity":1}]}'
    expect_error 409 POST /orders '{"userId":1,"products":[{"productId":15,"quantity":4}]}'
    jqe '.error == "insufficient stock"'
    expect 200 GET /products/15
    jqe '.stock == 3'
    expect_error 400 POST /products '{"name":"x","price":1.234,"stock":1}'
    expect_error 400 POST /products '{"name":"x","price":"12","stock":1}'
    expect_error 400 POST /products '{"name":"x","price":-1,"stock":1}'
    expect_error 400 POST /products '{"name":"x","price":1e20,"stock":1}'
    expect_error 400 POST /products '{"name":"x","price":1,"stock":-1}'
    expect_error 400 POST /products '{"name":"x","price":1,"stock":2.5}'
    expect_error 400 POST /products '{"name":"","price":1,"stock":1}'
    expect_error 400 POST /products '{"price":1,"stock":1}'
    expect_error 400 POST /products '{"name":"x","price":1,"stock":"no"}'
    req POST /products "$(printf '{"name":"bad \xff utf8","price":1,"stock":1}')"
    [ "$STATUS" = 400 ] || fail "invalid UTF-8 answered $STATUS"
    expect 201 POST /products '{"name":"cheap","price":0.29,"stock":1}'
    jqe '.price == 0.29'
    expect 201 POST /orders "$(printf '{"userId":1,"products":[{"productId":1,"quantity":1}]}\n  ')"
    expect_error 404 PUT /products/999 '{"name":"x","price":1,"stock":1}'
    expect_error 400 GET /products/abc
    expect_error 400 GET /products/0
    expect_error 400 GET /products/-1
    expect_error 400 GET '/products?inStock=maybe'
    expect_error 404 DELETE /products/999
    expect_error 409 POST /users '{"name":"Ada","email":"ada@example.org"}'
    expect_error 400 POST /users '{"name":"Ada","email":"not-an-email"}'
    expect_error 400 POST /users '{"name":"Ada"}'
    expect_error 400 PUT /users/ada@example.org '{}'
    expect_error 404 PUT /users/nobody@example.org '{"name":"x"}'
    expect_error 400 POST /cart/1 '{"productId":1,"quantity":0}'
    expect_error 404 POST /cart/999 '{"productId":1,"quantity":1}'
    expect_error 404 GET /cart/999
    expect_error 400 POST /shop/cart/1 '{"productId":1,"quantity":0}'
    expect_error 404 GET /shop/cart/999
    expect_error 400 POST /cart/1/checkout
    jqe '.error == "the cart is empty"'
    expect_error 400 PUT /orders/1 '{"status":"lost"}'
    expect_error 404 PUT /orders/999 '{"status":"shipped"}'
    expect_error 404 GET /orders/999
    expect_error 404 GET /no/such/route
    expect_error 404 POST /no/such/route '{}'
    expect_error 405 DELETE /orders
    expect_error 405 PATCH /products/1
    head -c 2097152 /dev/zero | tr '\0' a >"$WORK/big"
    STATUS=$(curl -s -o "$WORK/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data-binary @"$WORK/big" "$BASE/orders") || true # the server closes mid-upload
    [ "$STATUS" = 413 ] || fail "a 2 MiB body answered $STATUS"
    jqe '.error == "request body too large"'
    # chunked: refused once past 64 KiB; 200 KiB fit in loopback's buffers, so the
    # client has sent it all before the close (a larger one may meet a reset)
    head -c 204800 "$WORK/big" >"$WORK/chunked"
    STATUS=$(curl -s -o "$WORK/body" -w '%{http_code}' -X POST -H 'Transfer-Encoding: chunked' \
        -H 'Content-Type: application/json' --data-binary @"$WORK/chunked" "$BASE/products") || true
    [ "$STATUS" = 413 ] || fail "a 200 KiB chunked body answered $STATUS"
    expect 200 GET /heartbeat
    stop_server
    mirror_equal "$WORK/data"
}

case_path_escape() {
    mkdir -p "$WORK/web/sub"
    echo '<html>shop</html>' >"$WORK/web/index.html"
    echo 'console.log(1)' >"$WORK/web/sub/app.js"
    echo 'TOP SECRET' >"$WORK/secret.txt"
    echo 'hidden' >"$WORK/web/.env"
    ln -s "$WORK/secret.txt" "$WORK/web/link.txt"
    start_server "$WORK/data" --web "$WORK/web"
    expect 200 GET /
    grep -q shop "$WORK/body" || fail "/ is not index.html"
    expect 200 GET /sub/app.js
    local p
    for p in '/../secret.txt' '/%2e%2e/secret.txt' '/%2E%2E/secret.txt' '/sub/../../secret.txt' \
        '/sub/%2e%2e/%2e%2e/secret.txt' '/..%2fsecret.txt' '/%2e%2e%2fsecret.txt' \
        '/link.txt' '/.env' '/..' '/sub/..%5c..%5csecret.txt'; do
        req GET "$p"
        case "$STATUS" in 400 | 404) ;; *) fail "GET $p answered $STATUS" ;; esac
        if grep -q 'TOP SECRET\|hidden' "$WORK/body"; then fail "GET $p leaked a file"; fi
    done
    # the API is never shadowed by a file of the same name
    mkdir -p "$WORK/web/products"
    echo '<html>shadow</html>' >"$WORK/web/products/index.html"
    expect 200 GET /products
    jqe 'type == "array"'
    stop_server
}

case_concurrent_orders() {
    start_server "$WORK/data" --no-demo
    expect 201 POST /users '{"name":"Ada","email":"ada@example.org"}'
    expect 201 POST /products '{"name":"Scarce","price":1.5,"stock":10}'
    local pid i clients=()
    pid=$(jq .id "$WORK/body")
    # warm every thread's reply cache: afterwards it must not serve the old stock
    for ((i = 0; i < 10; i++)); do
        expect 200 GET /products
        jqe "any(.[]; .id == $pid and .stock == 10)"
    done
    for ((i = 0; i < 40; i++)); do
        curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' \
            --data-binary "{\"userId\":1,\"products\":[{\"productId\":$pid,\"quantity\":1}]}" \
            "$BASE/orders" >"$WORK/code.$i" &
        clients+=($!)
    done
    wait "${clients[@]}"
    local created refused
    created=$(cat "$WORK"/code.* | grep -c '^201$' || true)
    refused=$(cat "$WORK"/code.* | grep -c '^409$' || true)
    [ "$created" = 10 ] && [ "$refused" = 30 ] ||
        fail "40 orders against a stock of 10: $created created, $refused refused"
    expect 200 GET "/products/$pid"
    jqe '.stock == 0'
    for ((i = 0; i < 10; i++)); do
        expect 200 GET /products
        jqe "any(.[]; .id == $pid and .stock == 0)"
    done
    expect 200 GET /orders/1
    jqe 'length == 10'
    stop_server
    mirror_equal "$WORK/data"
}

case_sigterm_mirror_equal() {
    start_server "$WORK/data"
    local i
    for ((i = 0; i < 20; i++)); do
        expect 201 POST /orders "{\"userId\":1,\"products\":[{\"productId\":$((i % 5 + 1)),\"quantity\":1}]}"
    done
    stop_server
    mirror_equal "$WORK/data"
    # the data outlives the process; no second demo catalog
    start_server "$WORK/data"
    grep -q 'demo catalog' "$LOG" && fail "the demo catalog was added twice"
    expect 200 GET /orders/1
    jqe 'length == 20'
    expect 200 GET /products
    jqe 'length == 20'
    stop_server
    mirror_equal "$WORK/data"
}

# Writers post orders until told to stop; every 201 goes into acked.N.
order_burst() {
    local n=$1
    while [ ! -f "$WORK/stop" ]; do
        curl -s -m 5 -o "$WORK/burst.$n" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            --data-binary "{\"userId\":1,\"products\":[{\"productId\":$((n + 1)),\"quantity\":1}]}" \
            "$BASE/orders" >"$WORK/burst.code.$n" 2>/dev/null || true
        if [ "$(cat "$WORK/burst.code.$n")" = 201 ]; then
            jq .id "$WORK/burst.$n" >>"$WORK/acked.$n"
        fi
    done
}

case_kill9_restart() {
    start_server "$WORK/data"
    local n bursts=()
    for n in 0 1 2 3; do
        order_burst "$n" &
        bursts+=($!)
    done
    sleep 1.5
    kill -KILL "$PID"
    wait "$PID" 2>/dev/null || true
    # libfiu removes its fifo at exit; a killed process leaves it behind
    rm -f "${TMPDIR:-/tmp}/fiu-ctrl-$PID.in" "${TMPDIR:-/tmp}/fiu-ctrl-$PID.out"
    PID=""
    touch "$WORK/stop"
    wait "${bursts[@]}"
    local acked
    acked=$(cat "$WORK"/acked.* 2>/dev/null | sort -n | uniq)
    [ -n "$acked" ] || fail "no order was acknowledged before the kill"
    start_server "$WORK/data"
    expect 200 GET /orders/1
    local id
    for id in $acked; do
        jq -e --argjson id "$id" 'any(.[]; .id == $id)' "$WORK/body" >/dev/null ||
            fail "acknowledged order $id is gone after kill -9 and restart"
    done
    expect 200 GET /mirror/status
    jqe '.state == "in-sync"'
    stop_server
    mirror_equal "$WORK/data"
    echo "kill -9 after $(echo "$acked" | wc -l) acknowledged orders: all present"
}

# expect_exit CODE COMMAND...: the command must exit CODE with one line on stderr.
expect_exit() {
    local code=$1 rc=0
    shift
    "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = "$code" ] || fail "'$*' exited $rc, expected $code: $(cat "$WORK/err")"
    if [ "$code" = 3 ]; then
        [ "$(wc -l <"$WORK/err")" = 1 ] || fail "'$*' said more than one line: $(cat "$WORK/err")"
    fi
}

case_startup_errors() {
    start_server "$WORK/data"
    expect_exit 3 "$FD" serve --port "$PORT" --data "$WORK/data2"
    grep -q "cannot listen on 127.0.0.1:$PORT" "$WORK/err" || fail "port in use: $(cat "$WORK/err")"
    [ ! -e "$WORK/data2" ] || fail "a port in use still created (and seeded) the data directory"
    stop_server
    echo "a file" >"$WORK/afile"
    expect_exit 3 "$FD" serve --port 0 --data "$WORK/afile"
    grep -q 'cannot write to data directory' "$WORK/err" || fail "file as --data: $(cat "$WORK/err")"
    expect_exit 3 "$FD" serve --port 0 --data "$WORK/afile/sub"
    expect_exit 3 "$FD" serve --port 0 --data /proc/faultdrill-no-such-dir
    expect_exit 2 "$FD" serve --port 0 --data "$WORK/d3" --topology galaxy
    expect_exit 2 "$FD" serve --port 0 --data "$WORK/d3" --topology replica
    expect_exit 2 "$FD" serve --port 0 --data "$WORK/d3" --topology async --role replica1
    grep -q 'belongs to topology cluster' "$WORK/err" || fail "replica in async: $(cat "$WORK/err")"
    expect_exit 2 "$FD" serve --port 0 --data "$WORK/d3" --node replica1
    expect_exit 2 "$FD" serve --port 0 --data "$WORK/d3" --topology offline --interval 0
    expect_exit 2 "$FD" serve --port 0 --data "$WORK/d3" --topology cluster --replicas 9
    expect_exit 2 "$FD" serve --port 70000
    expect_exit 2 "$FD" serve --policy sloppy
    expect_exit 2 "$FD" serve --bogus
    expect_exit 0 "$FD" serve --help
    grep -q -- '--allow-faults' "$WORK/out" || fail "--help does not list --allow-faults"
}

post_fault() {
    expect 200 POST /faults "$1"
}

case_faults_http_strict() {
    start_server "$WORK/data" --allow-faults --policy strict
    expect 200 GET /faults
    jqe 'any(.points[]; .name == "disk/mirror/write" and .enabled == false)'
    expect_error 400 POST /faults '{"name":"disk/elsewhere/write","action":"enable"}'
    expect_error 400 POST /faults '{"name":"disk/mirror/write","action":"explode"}'
    expect_error 400 POST /faults '{"name":"disk/mirror/write","action":"enable","errno":"EINTR"}'
    expect 201 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    post_fault '{"name":"disk/mirror/write","action":"enable","errno":"EIO"}'
    jqe 'any(.points[]; .name == "disk/mirror/write" and .enabled and .errno == "EIO")'
    expect_error 503 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    expect 200 GET /mirror/status
    # refused and nothing saved: nothing is behind (no phantom changes)
    jqe '.state == "failed" and .behind == null and .changesBehind == 0 and .seqPrimary == .seqMirror and (.lastError | length) > 0'
    expect_error 503 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    expect 200 GET /products/1
    jqe '.stock == 39'
    post_fault '{"name":"disk/mirror/write","action":"disable"}'
    wait_for_state in-sync
    jqe '.changesBehind == 0 and .seqPrimary == .seqMirror'
    expect 201 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    expect 200 GET /products/1
    jqe '.stock == 38'
    # both disks down: refused, and the state stays failed while idle (no
    # idle resync may call it in sync: there is nothing to replay)
    post_fault '{"name":"disk/primary/write","action":"enable"}'
    post_fault '{"name":"disk/mirror/write","action":"enable"}'
    expect_error 503 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    sleep 1.2
    expect 200 GET /mirror/status
    jqe '.state == "failed"'
    post_fault '{"name":"disk/primary/write","action":"disable"}'
    post_fault '{"name":"disk/mirror/write","action":"disable"}'
    expect 201 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    expect 200 GET /mirror/status
    jqe '.state == "in-sync"'
    stop_server
    mirror_equal "$WORK/data"
}

case_faults_http_degrade() {
    start_server "$WORK/data" --allow-faults --policy degrade
    post_fault '{"name":"disk/mirror/full","action":"enable"}'
    jqe 'any(.points[]; .name == "disk/mirror/full" and .errno == "ENOSPC")'
    local i
    for ((i = 0; i < 5; i++)); do
        expect 201 POST /orders '{"userId":1,"products":[{"productId":2,"quantity":1}]}'
    done
    expect 200 GET /mirror/status
    jqe '.state == "degraded" and .behind == "mirror" and .changesBehind >= 5'
    post_fault '{"name":"disk/mirror/full","action":"disable"}'
    wait_for_state in-sync
    jqe '.resyncs >= 1 and .changesBehind == 0'
    stop_server
    mirror_equal "$WORK/data"
}

case_faults_read_fallback() {
    start_server "$WORK/data" --allow-faults
    post_fault '{"name":"disk/primary/read","action":"enable"}'
    expect 200 GET /products/1
    jqe '.name == "Enamel mug"'
    expect 200 GET '/products?q=mug'
    expect 200 GET /users/ada@example.org
    post_fault '{"name":"disk/mirror/read","action":"enable","errno":5}'
    expect_error 503 GET /products/2
    post_fault '{"name":"disk/primary/read","action":"disable"}'
    post_fault '{"name":"disk/mirror/read","action":"disable"}'
    expect 200 GET /products/2
    wait_for_state in-sync
    expect 201 POST /orders '{"userId":1,"products":[{"productId":2,"quantity":1}]}'
    stop_server
    mirror_equal "$WORK/data"
}

case_single_topology() {
    start_server "$WORK/data" --topology single --allow-faults
    expect 200 GET /heartbeat
    jqe '.topology == "single"'
    expect_error 404 GET /mirror/status
    jqe '.error == "not configured" and (.detail | test("single"))'
    expect 201 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":2}]}'
    expect 200 GET /orders/1
    jqe 'length == 1 and .[0].total == 25'
    # a commit whose sync failed may or may not survive a crash: 500, never 201 nor 503
    post_fault '{"name":"disk/primary/fsync","action":"enable"}'
    expect_error 500 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    jqe '.error == "outcome unknown"'
    post_fault '{"name":"disk/primary/fsync","action":"disable"}'
    expect 201 POST /orders '{"userId":1,"products":[{"productId":1,"quantity":1}]}'
    stop_server
    [ -f "$WORK/data/db.sqlite" ] || fail "no db.sqlite"
    [ ! -e "$WORK/data/db_mirror.sqlite" ] || fail "a single topology made a mirror copy"
}

case_fiu_ctrl() {
    command -v fiu-ctrl >/dev/null || fail "fiu-ctrl is not installed (Debian package fiu-utils)"
    start_server "$WORK/data" --policy strict --allow-faults
    grep -q "fiu-ctrl -c \"enable name=disk/mirror/write,failinfo=5\" $PID" "$LOG" ||
        fail "the banner does not show the fiu-ctrl command"
    expect 201 POST /orders '{"userId":1,"products":[{"productId":3,"quantity":1}]}'
    fiu-ctrl -c "enable name=disk/mirror/write,failinfo=28" "$PID" || fail "fiu-ctrl enable failed"
    expect_error 503 POST /orders '{"userId":1,"products":[{"productId":3,"quantity":1}]}'
    expect 200 GET /mirror/status
    jqe '.state == "failed"'
    # The panel shows what fiu-ctrl switched, with its errno.
    expect 200 GET /faults
    jqe 'any(.points[]; .name == "disk/mirror/write" and .enabled and .errno == "ENOSPC")'
    # A bad command is refused in the reply fiu-ctrl reads, and changes nothing.
    fiu-ctrl -c "frobnicate name=disk/mirror/read" "$PID" >"$WORK/ctl" 2>&1 || true
    grep -q "returned error" "$WORK/ctl" || fail "an unknown command was not refused: $(cat "$WORK/ctl")"
    fiu-ctrl -c "disable name=disk/mirror/write" "$PID" || fail "fiu-ctrl disable failed"
    expect 200 GET /faults
    jqe 'all(.points[]; .enabled == false)'
    wait_for_state in-sync
    expect 201 POST /orders '{"userId":1,"products":[{"productId":3,"quantity":1}]}'
    stop_server
    mirror_equal "$WORK/data"
}

# A crash point switched on live kills the server as kill -9 would; a
# restart recovers both copies with every acknowledged order and nothing of
# the one that was inside its transaction.
case_crash_point() {
    start_server "$WORK/data"
    for p in 1 2 3; do
        expect 201 POST /orders "{\"userId\":1,\"products\":[{\"productId\":$p,\"quantity\":1}]}"
    done
    fiu-ctrl -c "enable name=crash/primary/checkout-mid-transaction" "$PID" || fail "fiu-ctrl enable"
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data-binary '{"userId":1,"products":[{"productId":4,"quantity":1}]}' "$BASE/orders" || true)
    [ "$code" = 000 ] || fail "the order inside the crash got an answer ($code)"
    local rc=0
    wait "$PID" || rc=$?
    [ "$rc" = 137 ] || fail "serve exited $rc, expected death by SIGKILL (137)"
    grep -q 'crash point crash/primary/checkout-mid-transaction fired' "$LOG" ||
        fail "the log does not say which crash point fired"
    rm -f "${TMPDIR:-/tmp}/fiu-ctrl-$PID.in" "${TMPDIR:-/tmp}/fiu-ctrl-$PID.out"
    PID=""
    start_server "$WORK/data"
    expect 200 GET /orders/1
    jqe 'length == 3 and ([.[].products[0].productId] | sort) == [1,2,3]'
    expect 200 GET /mirror/status
    jqe '.state == "in-sync"'
    stop_server
    mirror_equal "$WORK/data"
}

# --ack early is the naive mirror mode: with the mirror's disk full, an order
# is still acknowledged (the primary alone committed), where the default
# (--ack both, strict) refuses it; --sync normal is reported as such.
case_ack_early() {
    start_server "$WORK/data" --ack early --sync normal --allow-faults
    expect 200 GET /mirror/status
    jqe '.ack == "early" and .synchronous == "normal"'
    expect 200 POST /faults '{"name":"disk/mirror/write","action":"enable","errno":"ENOSPC"}'
    expect 201 POST /orders '{"userId":1,"products":[{"productId":3,"quantity":1}]}'
    stop_server
    start_server "$WORK/data2" --allow-faults
    expect 200 GET /mirror/status
    jqe '.ack == "both" and .synchronous == "full"'
    expect 200 POST /faults '{"name":"disk/mirror/write","action":"enable","errno":"ENOSPC"}'
    expect_error 503 POST /orders '{"userId":1,"products":[{"productId":3,"quantity":1}]}'
    stop_server
    expect_exit 2 "$FD" serve --port 0 --data "$WORK/data3" --ack sometimes
    expect_exit 2 "$FD" serve --port 0 --data "$WORK/data3" --sync off
}

# header NAME: the value of a reply header of the last request.
header() {
    tr -d '\r' <"$WORK/head" | sed -n "s/^$1: //Ip" | head -1
}

# Every acknowledged write carries the position it committed at, rising; a
# read started after an acknowledgement is tagged at or above it (single and
# mirror).
case_position_header() {
    local topo last pos
    for topo in mirror single; do
        start_server "$WORK/data-$topo" --topology "$topo"
        last=-1
        for p in 1 2 3 4; do
            expect 201 POST /orders "{\"userId\":1,\"products\":[{\"productId\":$p,\"quantity\":1}]}"
            pos=$(header X-Faultdrill-Position)
            [ -n "$pos" ] || fail "$topo: a write's reply has no X-Faultdrill-Position"
            [ "$pos" -gt "$last" ] || fail "$topo: write position $pos after $last"
            last=$pos
        done
        expect 200 GET /products
        pos=$(header X-Faultdrill-Position)
        [ -n "$pos" ] && [ "$pos" -ge "$last" ] || fail "$topo: a read after write $last tagged '$pos'"
        expect 200 GET /orders/1
        pos=$(header X-Faultdrill-Position)
        [ -n "$pos" ] && [ "$pos" -ge "$last" ] || fail "$topo: an orders read after $last tagged '$pos'"
        expect_error 404 GET /products/999999
        [ -z "$(header X-Faultdrill-Position)" ] || fail "$topo: an error reply carries a position"
        stop_server
    done
}

# fifo CMD: one command on the server's fiu-ctrl fifo; prints the reply.
fifo() {
    local p="${TMPDIR:-/tmp}/fiu-ctrl-$PID"
    echo "$1" >"$p.in"
    cat "$p.out"
}

# faultdrill's own fifo commands: a point armed with p, count and an errno
# fires exactly count times, and its reached/fired counts come back.
case_fifo_drill_commands() {
    start_server "$WORK/data" --allow-faults
    [ "$(fifo 'faultdrill-arm name=disk/mirror/write,failinfo=28,p=1,count=1')" = 0 ] ||
        fail "faultdrill-arm refused"
    expect 200 GET /faults
    jqe 'any(.points[]; .name == "disk/mirror/write" and .enabled and .errno == "ENOSPC")'
    expect_error 503 POST /orders '{"userId":1,"products":[{"productId":3,"quantity":1}]}'
    [ "$(fifo 'faultdrill-fired name=disk/mirror/write')" = 1 ] || fail "fired is not 1"
    [ "$(fifo 'faultdrill-reached name=disk/mirror/write')" -ge 1 ] || fail "reached is 0"
    wait_for_state in-sync
    expect 201 POST /orders '{"userId":1,"products":[{"productId":3,"quantity":1}]}'
    [ "$(fifo 'faultdrill-fired name=disk/mirror/write')" = 1 ] || fail "count=1 fired again"
    [ "$(fifo 'faultdrill-disarm name=disk/mirror/write')" = 0 ] || fail "faultdrill-disarm refused"
    expect 200 GET /faults
    jqe 'all(.points[]; .enabled == false)'
    [ "$(fifo 'faultdrill-arm name=disk/nowhere/write,failinfo=5')" = -1 ] ||
        fail "an unknown point was armed"
    [ "$(fifo 'faultdrill-arm name=disk/mirror/write,failinfo=5,p=2')" = -1 ] ||
        fail "p=2 was accepted"
    stop_server
    mirror_equal "$WORK/data"
}

case "$CASE" in
routes | bad_input | path_escape | concurrent_orders | sigterm_mirror_equal | kill9_restart | \
    startup_errors | faults_http_strict | faults_http_degrade | faults_read_fallback | \
    single_topology | fiu_ctrl | crash_point | ack_early | position_header | fifo_drill_commands)
    "case_$CASE"
    ;;
*)
    echo "serve_test.sh: unknown case $CASE" >&2
    exit 2
    ;;
esac
echo "PASS [$CASE]"
