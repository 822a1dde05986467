#!/usr/bin/env bash
# serve_stake_test.sh — `faultdrill serve --stake`: the platform's stake
# ledger behind JSON routes (serve/API.md). Each case starts its own server.
#
#   serve_stake_test.sh FAULTDRILL CASE
#
# Cases: rounds bad_input disk restart
set -euo pipefail

FD=$1
CASE=$2
. "$(dirname "$0")/lib.sh"
SERVE_ARGS=(--topology single --no-demo)
CONFIG=tolerance=50,slash=20%,min-stake=600000,predictors=4

register() { # NAME: a predictor with 1,000,000 micro-units; sets ID
    expect 201 POST /stake/predictors "{\"name\":\"$1\",\"deposit\":1000000}"
    jqe ".name == \"$1\" and .balance == 1000000 and .excluded == false"
    ID=$(jq .id "$WORK/body")
}

predict() { # ID VALUE
    expect 201 POST /stake/predictions "{\"predictorId\":$1,\"prediction\":$2}"
}

# Three honest predictors near 1000 and a liar at 1110 (more would drag the
# consensus past the honest ones, 4 equal stakes): the liar is slashed 20 % a
# round (1,000,000 -> 800,000 -> 640,000 -> 512,000), excluded below 600,000, and
# deposits = balances + treasury after every close.
case_rounds() {
    start_server "$WORK/data" --stake-config "$CONFIG"
    local ids=() r
    for n in a b c liar; do
        register "$n"
        ids+=("$ID")
    done
    for r in 1 2 3; do
        predict "${ids[0]}" 1000
        predict "${ids[1]}" 1010
        predict "${ids[2]}" 990
        predict "${ids[3]}" 1110
        expect 200 POST /stake/rounds/close
        jqe ".round == $r and .hasConsensus and (.entries | length) == 4"
        jqe "[.entries[] | select(.predictorId != ${ids[3]}) | .slashed] | all(. == 0)"
        expect 200 GET /stake/status
        jqe '.conserved and .deposits == .balances + .treasury'
    done
    expect 200 GET /stake/status
    jqe ".round == 4 and .roundsClosed == 3 and .treasury == 488000"
    jqe ".predictors[3].balance == 512000 and .predictors[3].excluded and .predictors[3].excludedRound == 3"
    jqe '.slashed == ["liar"] and .eligible == 3 and (.predictors[3].weightPpm == 0)'
    jqe '[.predictors[0:3][] | .weightPpm] | all(. == 333333)'
    # the excluded liar's next prediction is refused; a second one in a round too
    expect_error 409 POST /stake/predictions "{\"predictorId\":${ids[3]},\"prediction\":1}"
    jqe '.detail | test("excluded")'
    predict "${ids[0]}" 1000
    expect_error 409 POST /stake/predictions "{\"predictorId\":${ids[0]},\"prediction\":1}"
    expect 200 GET /stake/rounds/2
    jqe '.round == 2 and ([.entries[] | .slashed] | add) == 160000'
    expect_error 404 GET /stake/rounds/4
    stop_server
}

# Bad input is a JSON error that changes nothing.
case_bad_input() {
    start_server "$WORK/data" --stake-config "$CONFIG"
    register a
    expect_error 400 POST /stake/predictors '{"name":"b"}'
    expect_error 400 POST /stake/predictors '{"name":"b","deposit":"lots"}'
    expect_error 400 POST /stake/predictors '{"name":"","deposit":1000000}'
    expect_error 400 POST /stake/predictors '{"name":"b","deposit":500000}' # below min-stake
    expect_error 409 POST /stake/predictors '{"name":"a","deposit":1000000}' # taken
    expect_error 400 POST /stake/predictions '{"predictorId":1}'
    expect_error 400 POST /stake/predictions '{"predictorId":1,"prediction":1.5}'
    expect_error 400 POST /stake/predictions '{"predictorId":1,"prediction":1e300}'
    expect_error 404 POST /stake/predictions '{"predictorId":99,"prediction":1}'
    expect_error 404 POST /stake/predictions '{"predictorId":1,"prediction":1,"round":7}'
    expect_error 400 GET /stake/rounds/x
    expect_error 400 POST /stake/predictions 'not json'
    expect 200 GET /stake/status
    jqe '(.predictors | length) == 1 and .deposits == 1000000 and .round == 1'
    jqe '.config == {"tolerance":50,"slashPpm":200000,"minStake":600000,"maxPredictors":4}'
    stop_server
    # the options: a bad spec is a usage error; a server without --stake has no ledger
    local rc=0
    "$FD" serve --port 0 --data "$WORK/other" --stake-config slash=120% >"$WORK/out" 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q "bad value for --stake-config: 'slash=120%'" "$WORK/out" ||
        fail "--stake-config slash=120%: exit $rc: $(cat "$WORK/out")"
    start_server "$WORK/plain"
    expect_error 404 GET /stake/status
    jqe '.detail | test("--stake")'
    stop_server
}

# The ledger's disk fails: a close is refused with nothing changed, and works once healed.
case_disk() {
    command -v fiu-ctrl >/dev/null || fail "fiu-ctrl is not installed (Debian package fiu-utils)"
    start_server "$WORK/data" --stake-config "$CONFIG"
    register a
    predict "$ID" 1000
    until_fifo "$PID"
    fiu-ctrl -c "enable name=disk/ledger/write,failinfo=5" "$PID"
    expect_error 503 POST /stake/rounds/close
    fiu-ctrl -c "disable name=disk/ledger/write" "$PID"
    expect 200 GET /stake/status
    jqe '.round == 1 and .roundsClosed == 0'
    expect 200 POST /stake/rounds/close
    jqe '.round == 1 and .consensus == 1000'
    stop_server
}

# The ledger outlives its process: a SIGKILL and a new serve --stake (no config: the
# ledger's own) find every stake and the open round.
case_restart() {
    start_server "$WORK/data" --stake-config "$CONFIG"
    register a
    register b
    predict 1 1000
    predict 2 5000
    expect 200 POST /stake/rounds/close
    kill9
    start_server "$WORK/data" --stake
    expect 200 GET /stake/status
    jqe '.round == 2 and .conserved and .treasury > 0 and .config.maxPredictors == 4'
    jqe '(.predictors | length) == 2'
    stop_server
}

"case_$CASE"
echo "ok [$CASE]"
