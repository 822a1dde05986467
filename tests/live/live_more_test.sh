#!/usr/bin/env bash
# live_more_test.sh — what `run --live` shows beside its verdicts: one lane
# per node in the live report's timeline (down, behind, promoted, fenced,
# offline, degraded: from the nodes' status routes, in the simulator's
# words), and the lag in the sim/live agreement (agreement.md's "Lag").
#
#   live_more_test.sh FAULTDRILL CASE
#
# Cases: async_lag offline_lanes mirror_lanes latency stake stake_refusals stake_async
set -euo pipefail

FD=$1
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/faultdrill-livemore-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

fail() {
    echo "FAIL [$CASE]: $*" >&2
    for f in "$WORK"/out "$WORK"/err; do
        [ -f "$f" ] && { echo "--- $f" >&2; head -40 "$f" >&2; }
    done
    exit 1
}

# live NAME SEED: runs tests/live/NAME.drill live (it must pass and agree); sets DIR.
live() {
    local rc=0
    "$FD" run "$HERE/$1.drill" --live --out "$WORK/reports" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = 0 ] || fail "run --live $1 exited $rc"
    grep -q "^AGREE   $1 " "$WORK/out" || fail "no AGREE line"
    DIR=$WORK/reports/$1/live-seed-$2
    [ -s "$DIR/report.html" ] && [ -s "$DIR/agreement.md" ] || fail "report files missing"
}

# lane NODE STATE-WORD LABEL-TEXT: the timeline has a stretch of NODE in that state.
lane() {
    grep -q "<title>[^<]* · $1 · $2: [^<]*$3" "$DIR/report.html" ||
        fail "no '$2' stretch with '$3' on lane $1: $(grep -o "<title>[^<]* · $1 · [^<]*</title>" \
            "$DIR/report.html" | head -8)"
}

# row NAME: agreement.md's Lag row for NAME (a node or a figure).
row() {
    sed -n '/^## Lag/,$p' "$DIR/agreement.md" | grep "^| $1 |" || true
}

# An async secondary trails its primary by the 100 ms delay, is cut off, then
# promoted: its lane shows the lag, then the promotion; the primary's the fence.
case_async_lag() {
    live live_async_failover 8
    lane secondary 'behind (lag)' 'lags: [0-9]* change(s) behind primary'
    lane secondary 'leading alone' 'promoted: takes the writes'
    lane primary degraded 'fenced: replaced by the promoted secondary'
    grep -q "<title>[^<]* · heal: partition healed" "$DIR/report.html" ||
        fail "the partition's heal is not on the timeline"
    grep -q '^## Lag' "$DIR/agreement.md" || fail "agreement.md has no Lag section"
    # the secondary was behind in both runs (the simulator sees every event, live polls)
    row secondary | grep -Eq '^\| secondary \| [0-9.]+m?s in [0-9]+ stretch\(es\).* \| [0-9.]+m?s in [0-9]+ stretch\(es\)' ||
        fail "secondary's lag row: $(row secondary)"
    # the per-batch lag, measured both ways: the 100 ms delay, give or take
    local p50
    p50=$(jq '.metrics.replication_lag_p50_us' "$DIR/report.json")
    [ "$p50" != null ] && [ "$p50" -ge 90000 ] && [ "$p50" -le 1000000 ] ||
        fail "live replication_lag_p50_us $p50 (the link's delay is 100 ms)"
    row replication_lag_p50_us | grep -Eq '^\| replication_lag_p50_us \| [0-9.]+ms \| [0-9.]+ms \|$' ||
        fail "p50 row: $(row replication_lag_p50_us)"
    jq -e '.metrics.lag_changes_max > 0' "$DIR/report.json" >/dev/null ||
        fail "no changes behind measured live: $(jq -c .metrics "$DIR/report.json")"
    row lag_changes_max | grep -Eq '^\| lag_changes_max \| [1-9][0-9]* changes \| [1-9][0-9]* changes \|$' ||
        fail "lag_changes_max row: $(row lag_changes_max)"
}

# local1 goes offline, local2's process is killed and restarted: two lanes, and the
# time to sync measured live.
case_offline_lanes() {
    live live_offline_outage 4
    lane local1 offline 'keeps taking orders locally'
    lane local2 down 'crashed, not restarted yet'
    lane central 'up / in sync' 'up'
    row local1 | grep -Eq '^\| local1 \| [0-9.]+m?s in 1 stretch\(es\).* \| [0-9.]+m?s in 1 stretch\(es\)' ||
        fail "local1's row: $(row local1)"
    row local2 | grep -q '| never | never |' || fail "local2's row: $(row local2)"
    jq -e '.metrics.sync_lag_max_us > 0' "$DIR/report.json" >/dev/null ||
        fail "no time to sync measured: $(jq -c .metrics "$DIR/report.json")"
    row sync_lag_max_us | grep -q '| not measured by the simulator | [0-9.]*m\?s |' ||
        fail "sync_lag_max_us row: $(row sync_lag_max_us)"
}

# The mirror's disk fills: primary leads alone, the mirror is degraded and behind.
case_mirror_lanes() {
    live live_mirror_degrade 3
    lane primary 'leading alone' 'leads alone: mirror is [0-9]* change(s) behind'
    lane mirror degraded 'out of the mirror, [0-9]* change(s) behind'
    lane mirror 'up / in sync' 'in sync: both copies hold every write'
    row mirror | grep -Eq '^\| mirror \| [0-9.]+m?s in 1 stretch\(es\).* \| [0-9.]+m?s in 1 stretch\(es\)' ||
        fail "mirror's row: $(row mirror)"
    # a lag figure is set once, in the Lag section, not also among the other figures
    ! sed -n '1,/^## Lag/p' "$DIR/agreement.md" | grep -q '^| lag_changes_max' ||
        fail "lag_changes_max is listed before the Lag section too"
    row lag_changes_max | grep -Eq '^\| lag_changes_max \| [1-9][0-9]* changes \| [1-9][0-9]* changes \|$' ||
        fail "lag_changes_max row: $(row lag_changes_max)"
}

# latency=200ms jitter=20ms, played: the nodes' messages in serve's transport, the
# clients' in their threads. Bare loopback would give a ~50 ms lag (the batch delay)
# and several times the simulator's operations.
case_latency() {
    live live_latency 6
    grep -q 'live: every message waits latency=0.200s plus up to jitter=0.020s' \
        "$DIR/trace.log" || fail "the trace does not say the latency is played"
    local p50 sim_ops live_ops
    p50=$(jq '.metrics.replication_lag_p50_us' "$DIR/report.json")
    [ "$p50" != null ] && [ "$p50" -ge 240000 ] && [ "$p50" -le 1500000 ] ||
        fail "live replication_lag_p50_us $p50: the batch delay 50 ms plus a 200 ms hop"
    sim_ops=$(sed -n 's/^- operations: simulated \([0-9,]*\) in .*/\1/p' "$DIR/agreement.md" | tr -d ,)
    live_ops=$(sed -n 's/^- operations: .*, live \([0-9,]*\) in .*/\1/p' "$DIR/agreement.md" | tr -d ,)
    [ -n "$sim_ops" ] && [ -n "$live_ops" ] && [ "$sim_ops" -gt 0 ] ||
        fail "no operation counts in agreement.md"
    [ "$live_ops" -le $((2 * sim_ops + 4)) ] ||
        fail "live completed $live_ops operations to the simulator's $sim_ops: the clients' hops are not played"
    # serve's options: a bad duration is a usage error that names the option
    local rc=0
    "$FD" serve --latency 5x --port 0 >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = 2 ] && grep -q "bad value for --latency: '5x'" "$WORK/err" ||
        fail "serve --latency 5x: exit $rc"
    rc=0
    "$FD" serve --jitter 11s --port 0 >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = 2 ] && grep -q "bad value for --jitter: '11s'" "$WORK/err" ||
        fail "serve --jitter 11s (over 10 s): exit $rc"
}

# The ledger's story, line by line without the times: what the predictors sent, what
# the ledger recorded, refused, closed and slashed, and who it excluded.
ledger_story() {
    grep -E '^[0-9.]+ (ledger|predictor[0-9]+|-) +(round|stake step|predicts|lies|prediction|heal stake|fault stake)' "$1" |
        sed -E 's/^[0-9.]+ +//; s/round [0-9]+: (prediction [0-9-]+ of predictor[0-9]+ refused).*/\1/; s/(prediction [0-9-]+ of predictor[0-9]+ refused).*/\1/'
}

# serve --stake hosts the ledger, the runner plays the predictors: the liar is slashed
# and excluded live exactly as in the simulator (the same draws, the same ledger code).
case_stake() {
    live live_stake 11
    jq -e '.verdict == "pass" and all(.expectations[]; .observed == "held")' "$DIR/report.json" >/dev/null ||
        fail "live: $(jq -c '[.expectations[] | {invariant, observed, explanation}]' "$DIR/report.json")"
    jq -e '.expectations[] | select(.invariant == "stake-conserved") | .witnesses >= 6' \
        "$DIR/report.json" >/dev/null || fail "stake-conserved judged too few rounds"
    jq -e 'any(.faults[]; .name == "stake/predictor3/lie" and .fired >= 3)' "$DIR/report.json" >/dev/null ||
        fail "the lie never fired live: $(jq -c .faults "$DIR/report.json")"
    grep -q 'round 4: predictor3 excluded for good: its balance 512000' "$DIR/trace.log" ||
        fail "predictor3 was not excluded in round 4"
    grep -q 'refused: 409 refused by the ledger: predictor 3 is excluded' "$DIR/trace.log" ||
        fail "the excluded liar's prediction was not refused by serve"
    # the agreement sets what the ledger did to each predictor, both ways
    grep -q '^| predictor3 | slashed 488000 in 3 round(s), excluded in round 4 | slashed 488000 in 3 round(s), excluded in round 4 |$' \
        "$DIR/agreement.md" || fail "agreement.md's Stake row: $(grep predictor3 "$DIR/agreement.md")"
    ! grep -q '(differs)' "$DIR/agreement.md" || fail "agreement.md says a row differs"
    local rc=0
    "$FD" run "$HERE/live_stake.drill" --out "$WORK/reports" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = 0 ] || fail "the simulated run exited $rc"
    ledger_story "$WORK/reports/live_stake/seed-11/trace.log" >"$WORK/sim.story"
    ledger_story "$DIR/trace.log" >"$WORK/live.story"
    [ "$(wc -l <"$WORK/sim.story")" -ge 40 ] || fail "the simulated ledger story is short"
    diff "$WORK/sim.story" "$WORK/live.story" >"$WORK/story.diff" ||
        fail "the live ledger's story differs from the simulator's: $(head -20 "$WORK/story.diff")"
}

# Stake beside an async pair: the primary's process hosts the ledger (in its own data
# directory); the ledger's story is the simulator's, and the pair's verdicts too.
case_stake_async() {
    live live_stake_async 5
    jq -e '.verdict == "pass" and all(.expectations[]; .observed == "held")' "$DIR/report.json" >/dev/null ||
        fail "live: $(jq -c '[.expectations[] | {invariant, observed, explanation}]' "$DIR/report.json")"
    grep -q '^| predictor2 | slashed 360000 in 2 round(s) | slashed 360000 in 2 round(s) |$' \
        "$DIR/agreement.md" || fail "agreement.md's Stake row: $(grep predictor2 "$DIR/agreement.md")"
    grep -q 'stake ledger open (judged on its file)' "$DIR/trace.log" || fail "the ledger was not judged on its file"
    ! grep -q '^| ledger |' "$DIR/agreement.md" || fail "the ledger has a Lag row"
    local rc=0
    "$FD" run "$HERE/live_stake_async.drill" --out "$WORK/reports" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = 0 ] || fail "the simulated run exited $rc"
    ledger_story "$WORK/reports/live_stake_async/seed-5/trace.log" >"$WORK/sim.story"
    ledger_story "$DIR/trace.log" >"$WORK/live.story"
    diff "$WORK/sim.story" "$WORK/live.story" >"$WORK/story.diff" ||
        fail "the live ledger's story differs from the simulator's: $(head -20 "$WORK/story.diff")"
}

# What stake cannot do live is refused at its line, before anything runs.
case_stake_refusals() {
    local drill=$WORK/refused.drill rc
    refused() { # LINE_TEXT EXPECTED_MESSAGE
        sed '/^at 2s checkpoint/d' "$HERE/live_stake.drill" >"$drill"
        echo "$1" >>"$drill"
        rc=0
        "$FD" check --live "$drill" >"$WORK/out" 2>"$WORK/err" || rc=$?
        [ "$rc" = 2 ] || fail "check --live with '$1' exited $rc"
        grep -q "refused.drill:[0-9]*:[0-9]*: .*$2" "$WORK/err" ||
            fail "'$1': $(cat "$WORK/err")"
    }
    refused 'at 2s crash ledger process' 'the mirror and the stake ledger are disks of primary'
    refused 'at 2s crash primary process' 'hosts the stake ledger in primary.s process'
    refused 'at 2s partition predictor2 | ledger' 'cannot cut predictor2 off'
    "$FD" check --live "$HERE/live_stake.drill" >"$WORK/out" || fail "the stake drill is refused live"
    grep -q '(live too)' "$WORK/out" || fail "check --live does not say live"
}

"case_$CASE"
echo "ok [$CASE]"
