#!/usr/bin/env bash
# live_test.sh — `faultdrill run --live` (DESIGN.md §5) end to end: short
# drills played against real `faultdrill serve` processes on loopback, in
# real time, judged by the simulator's checkers; each case asserts the
# verdict, and the live verdict against the simulated one.
#
#   live_test.sh FAULTDRILL CASE
#
# Cases: mirror_degrade planted_early_ack crash_process partition
#        async_failover offline_outage power_cut_refused not_live_yet
#        cluster_crash
set -euo pipefail

FD=$1
CASE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
SCENARIOS=$HERE/../../scenarios
WORK=$(mktemp -d "${TMPDIR:-/tmp}/faultdrill-live-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

fail() {
    echo "FAIL [$CASE]: $*" >&2
    for f in "$WORK"/out "$WORK"/err; do
        [ -f "$f" ] && { echo "--- $f" >&2; head -40 "$f" >&2; }
    done
    exit 1
}

# run_drill WANT_RC DRILL [run options...]: runs it, the exit code must be WANT_RC.
run_drill() {
    local want=$1 drill=$2 rc=0
    shift 2
    "$FD" run "$drill" --out "$WORK/reports" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = "$want" ] || fail "run $* $drill exited $rc, expected $want"
}

# report NAME SEED live|sim: the report.json of a run.
report() {
    local dir=seed-$2
    [ "$3" = live ] && dir=live-seed-$2
    echo "$WORK/reports/$1/$dir/report.json"
}

# observed JSON INVARIANT: held, violated or unexercised.
observed() {
    jq -r --arg i "$2" '.expectations[] | select(.invariant == $i) | .observed' "$1"
}

# Every expectation has the same observed verdict live and simulated.
same_verdicts() {
    local live=$1 sim=$2 i
    for i in $(jq -r '.expectations[].invariant' "$live"); do
        [ "$(observed "$live" "$i")" = "$(observed "$sim" "$i")" ] ||
            fail "$i: live $(observed "$live" "$i"), simulated $(observed "$sim" "$i")"
    done
}

live_report_ok() {
    local r=$1
    jq -e '.mode == "live"' "$r" >/dev/null || fail "report.json does not say mode live"
    jq -e '.wall_ms >= 2000' "$r" >/dev/null || fail "a 3 s live drill took under 2 s of wall time"
    # a workload was played (not a rate: closed-loop clients under ASan on a loaded machine
    # complete a fraction of the drill's rate, and strict refusals are not acknowledgements)
    jq -e '[.ops[] | objects | .ok] | add >= 15' "$r" >/dev/null ||
        fail "fewer than 15 operations acknowledged: $(jq -c .ops "$r")"
    [ -s "$(dirname "$r")/trace.log" ] && [ -s "$(dirname "$r")/report.md" ] &&
        [ -s "$(dirname "$r")/report.html" ] || fail "the report files are missing"
}

case_mirror_degrade() {
    local drill=$HERE/live_mirror_degrade.drill
    run_drill 0 "$drill" --live
    local live sim
    live=$(report live_mirror_degrade 3 live)
    live_report_ok "$live"
    jq -e '.verdict == "pass" and all(.expectations[]; .observed == "held")' "$live" >/dev/null ||
        fail "live: $(jq -c '[.expectations[] | {invariant, observed, explanation}]' "$live")"
    # the fault was really played in the process: the mirror's writes failed
    jq -e 'any(.faults[]; .name == "disk/mirror/full" and .fired > 0)' "$live" >/dev/null ||
        fail "disk/mirror/full never fired live: $(jq -c .faults "$live")"
    grep -q 'fault disk/mirror/full armed' "$(dirname "$live")/trace.log" || fail "no arming traced"
    grep -q 'heal disk/mirror/full' "$(dirname "$live")/trace.log" || fail "for= did not heal it"
    # the agreement with the simulator's run of the same drill and seed
    grep -q '^AGREE   live_mirror_degrade  sim/live: the same verdicts' "$WORK/out" ||
        fail "no agreement line"
    grep -q 'The simulator predicted the live run' "$(dirname "$live")/agreement.md" ||
        fail "agreement.md does not agree"
    grep -q '^| checkout | [0-9]* / [0-9]* / [0-9]* / [0-9]* | [0-9]* / [0-9]* / [0-9]* / [0-9]* |$' \
        "$(dirname "$live")/agreement.md" || fail "agreement.md has no checkout row"
    run_drill 0 "$drill"
    sim=$(report live_mirror_degrade 3 sim)
    jq -e '.mode == "sim"' "$sim" >/dev/null || fail "a simulated report does not say mode sim"
    same_verdicts "$live" "$sim"
}

# A planted bug: the mirror acknowledges before its copy is written; the live
# run must catch the acknowledged orders the mirror lost, as the simulator does.
case_planted_early_ack() {
    local drill=$HERE/live_planted_early_ack.drill
    run_drill 1 "$drill" --live
    local live
    live=$(report live_planted_early_ack 4 live)
    live_report_ok "$live"
    jq -e '.verdict == "fail"' "$live" >/dev/null || fail "the planted bug was not caught"
    [ "$(observed "$live" mirror-identical)" = violated ] ||
        fail "mirror-identical $(observed "$live" mirror-identical) live"
    [ "$(observed "$live" no-lost-acks)" = violated ] ||
        fail "no-lost-acks $(observed "$live" no-lost-acks) live"
    [ "$(observed "$live" stock-conserved)" = held ] || fail "stock-conserved did not hold"
    grep -q 'FAIL  live_planted_early_ack' "$WORK/out" || fail "no FAIL line"
    grep -q 'sim/live: the same verdicts (simulated FAIL, live FAIL)' "$WORK/out" ||
        fail "the simulator did not predict the failure"
    run_drill 1 "$drill"
    same_verdicts "$live" "$(report live_planted_early_ack 4 sim)"
}

case_crash_process() {
    local drill=$HERE/live_crash_process.drill
    run_drill 0 "$drill" --live
    local live trace
    live=$(report live_crash_process 2 live)
    live_report_ok "$live"
    trace=$(dirname "$live")/trace.log
    grep -q 'crash (process, crash): SIGKILL to process' "$trace" || fail "no SIGKILL traced"
    grep -q 'restart (restart): process' "$trace" || fail "no restart traced"
    jq -e 'all(.expectations[]; .observed == "held")' "$live" >/dev/null ||
        fail "live: $(jq -c '[.expectations[] | {invariant, observed, explanation}]' "$live")"
    # while the process was dead, requests were refused (failed), never acknowledged
    jq -e '[.ops[] | objects | .fail] | add > 0' "$live" >/dev/null || fail "no operation failed while down"
    run_drill 0 "$drill"
    same_verdicts "$live" "$(report live_crash_process 2 sim)"
}

# A partition between primary and mirror cuts the mirror's disk off in the
# primary's process: strict mirroring refuses checkouts until the heal.
case_partition() {
    local drill=$HERE/live_partition.drill
    run_drill 0 "$drill" --live
    local live
    live=$(report live_partition 6 live)
    live_report_ok "$live"
    jq -e 'all(.expectations[]; .observed == "held")' "$live" >/dev/null ||
        fail "live: $(jq -c '[.expectations[] | {invariant, observed, explanation}]' "$live")"
    # writes are refused (503: failed) while the mirror's disk is out of reach
    jq -e '.ops["cart-add"].fail + .ops.checkout.fail > 0 and .ops.checkout.ok > 0' "$live" \
        >/dev/null || fail "no write failed during the partition: $(jq -c .ops "$live")"
    grep -q 'partition primary | mirror' "$(dirname "$live")/trace.log" || fail "not traced"
    grep -q 'AGREE   live_partition' "$WORK/out" || fail "the simulator disagrees"
}

# Async, two processes wired by --peer: a partition cut in the senders'
# transports, then the secondary promoted through its admin route and the old
# primary fenced. The acknowledged orders after the cut are lost, all of them in
# the lag window, as the simulator predicts.
case_async_failover() {
    local drill=$HERE/live_async_failover.drill
    run_drill 0 "$drill" --live
    local live trace
    live=$(report live_async_failover 8 live)
    live_report_ok "$live"
    trace=$(dirname "$live")/trace.log
    [ "$(observed "$live" no-lost-acks)" = violated ] ||
        fail "no-lost-acks $(observed "$live" no-lost-acks): the failover lost nothing live"
    for i in rpo-bounded replica-prefix order-totals; do
        [ "$(observed "$live" "$i")" = held ] || fail "$i $(observed "$live" "$i") live"
    done
    jq -e '.metrics.failover_lost_writes > 0 and .metrics.failover_lost_outside_window == 0' \
        "$live" >/dev/null || fail "the loss was not counted: $(jq -c .metrics "$live")"
    # created users are judged too (their rows' times are read back from the files)
    jq -e '.ops["user-create"].ok > 0' "$live" >/dev/null || fail "no user was created"
    jq -e '.expectations[] | select(.invariant == "replica-prefix") | .witnesses > 0' "$live" \
        >/dev/null || fail "replica-prefix judged no applied change"
    grep -q 'partition primary | secondary' "$trace" || fail "no partition traced"
    grep -q 'failover: secondary promoted at change [1-9]' "$trace" || fail "no failover traced"
    # after the failover the clients wrote to the promoted secondary
    grep -q -- '-> secondary' "$trace" || fail "no operation went to the promoted secondary"
    grep -q 'AGREE   live_async_failover' "$WORK/out" || fail "the simulator disagrees"
    run_drill 0 "$drill"
    same_verdicts "$live" "$(report live_async_failover 8 sim)"
}

# Offline, two locals and central in three processes (serve --role local1,
# local2, central): local1's sync job switched off and on through its admin
# route, central's answers to it dropped on their link (in central's process),
# local2 SIGKILLed and restarted; everything syncs.
case_offline_outage() {
    local drill=$HERE/live_offline_outage.drill
    run_drill 0 "$drill" --live
    local live trace
    live=$(report live_offline_outage 4 live)
    live_report_ok "$live"
    trace=$(dirname "$live")/trace.log
    jq -e 'all(.expectations[]; .observed == "held")' "$live" >/dev/null ||
        fail "live: $(jq -c '[.expectations[] | {invariant, observed, explanation}]' "$live")"
    jq -e '.expectations[] | select(.invariant == "outbox-accounted") | .witnesses > 20' \
        "$live" >/dev/null || fail "outbox-accounted judged too little"
    jq -e 'any(.faults[]; .name == "net/central/local1/drop" and .fired > 0)' "$live" \
        >/dev/null || fail "central's answers were never dropped: $(jq -c .faults "$live")"
    grep -q 'POST /sync/offline switched the sync job off' "$trace" || fail "not switched off"
    grep -q 'POST /sync/online switched the sync job on' "$trace" || fail "not switched on"
    grep -q 'crash (process, crash): SIGKILL to process' "$trace" || fail "no SIGKILL traced"
    # the clients wrote to both locals
    grep -q -- '-> local1$' "$trace" && grep -q -- '-> local2$' "$trace" ||
        fail "the clients did not write to both locals"
    grep -q 'AGREE   live_offline_outage' "$WORK/out" || fail "the simulator disagrees"
    run_drill 0 "$drill"
    same_verdicts "$live" "$(report live_offline_outage 4 sim)"
}

# A power cut is refused at its statement, with the fix in the message; nothing runs.
case_power_cut_refused() {
    local drill=$HERE/live_power_cut.drill
    run_drill 2 "$drill" --live
    grep -q "live_power_cut.drill:5:1: run --live cannot cut the power of a real machine: write \`crash primary process\`" \
        "$WORK/err" || fail "no FILE:LINE:COL error suggesting crash primary process"
    [ ! -e "$WORK/reports/live_power_cut" ] || fail "a refused drill wrote reports"
    local rc=0
    "$FD" check --live "$drill" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = 2 ] || fail "check --live exited $rc"
    grep -q 'live_power_cut.drill:5:1:' "$WORK/err" || fail "check --live did not say where"
    "$FD" explain "$drill" >"$WORK/out" 2>"$WORK/err" || fail "explain failed"
    grep -q 'cannot play this drill yet' "$WORK/out" && grep -q 'line 5: run --live cannot cut' \
        "$WORK/out" || fail "explain does not say why it cannot run live"
    "$FD" check "$drill" >"$WORK/out" 2>"$WORK/err" || fail "the drill is valid for the simulator"
    run_drill 0 "$drill"
}

# What is not played live yet is an error naming it, never a silent fallback:
# a cluster replica's power cut plays as a SIGKILL (its copy syncs every
# commit), the leader's is not played: refused where it is written.
case_not_live_yet() {
    sed -e 's/ replica1$/ leader/' "$HERE/live_cluster_crash.drill" >"$WORK/leader.drill"
    grep -q '^at 1s  crash leader$' "$WORK/leader.drill" || fail "the drill was not rewritten"
    run_drill 2 "$WORK/leader.drill" --live
    grep -q "leader.drill:13:1: run --live cannot cut the power of a real machine: write \`crash leader process\`" \
        "$WORK/err" || fail "no FILE:LINE:COL error for the leader's power cut"
    [ ! -e "$WORK/reports/live_cluster_crash" ] || fail "reports written"
    # more clients than the registry's process keeps senders for
    sed -e 's/clients=4 /clients=20 /' "$HERE/live_cluster_crash.drill" >"$WORK/many.drill"
    local rc=0
    "$FD" check --live "$WORK/many.drill" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" = 2 ] || fail "check --live of 20 cluster clients exited $rc"
    grep -q "many.drill:7:1: run --live: 20 clients, 2 replicas and the leader would be 23 senders" \
        "$WORK/err" || fail "no FILE:LINE:COL error for too many cluster clients"
    "$FD" check "$WORK/many.drill" >"$WORK/out" 2>"$WORK/err" || fail "valid for the simulator"
    "$FD" check --live "$SCENARIOS/cluster-concurrent-purchases.drill" >"$WORK/out" ||
        fail "a cluster scenario is refused live"
    "$FD" check --live "$SCENARIOS/mirror-disk-full-degrade.drill" >"$WORK/out" ||
        fail "a mirror scenario is refused live"
    grep -q '(live too)' "$WORK/out" || fail "check --live does not say live"
    "$FD" explain "$SCENARIOS/mirror-disk-full-degrade.drill" >"$WORK/out" || fail "explain failed"
    grep -q 'run --live` plays this drill' "$WORK/out" || fail "explain does not say it runs live"
}

# A cluster live: leader, replicas and registry are processes; the clients are
# core client nodes in the runner balanced by the registry's real answers.
# replica1 is killed and restarted on its port, catches up, and the verdicts
# (lb-balanced's client half, no-echo and converges from the processes' status
# and files) are the simulator's.
case_cluster_crash() {
    local drill=$HERE/live_cluster_crash.drill
    run_drill 0 "$drill" --live
    local live trace
    live=$(report live_cluster_crash 8 live)
    live_report_ok "$live"
    trace=$(dirname "$live")/trace.log
    jq -e 'all(.expectations[]; .observed == "held")' "$live" >/dev/null ||
        fail "live: $(jq -c '[.expectations[] | {invariant, observed, explanation}]' "$live")"
    grep -q '^ *1\.[0-9]* replica1 *crash (power cut): SIGKILL to process' "$trace" ||
        fail "no SIGKILL of replica1 traced"
    grep -q 'replica1 *restart (restart): process' "$trace" || fail "no restart traced"
    # the clients took the registry's answers, and sent to both replicas
    jq -e '.metrics.live_registry_answers >= 8' "$live" \
        >/dev/null || fail "the clients took too few registry answers: $(jq -c .metrics "$live")"
    grep -q -- '-> replica1$' "$trace" && grep -q -- '-> replica2$' "$trace" ||
        fail "the clients did not use both replicas"
    # judged on something: rotations, propagated changes, converged writes
    local i
    for i in lb-balanced no-echo converges read-your-writes; do
        jq -e --arg i "$i" '.expectations[] | select(.invariant == $i) | .witnesses > 10' \
            "$live" >/dev/null || fail "$i judged too little live"
    done
    grep -q 'AGREE   live_cluster_crash' "$WORK/out" || fail "the simulator disagrees"
    run_drill 0 "$drill"
    same_verdicts "$live" "$(report live_cluster_crash 8 sim)"
}

# A combination live: the primary's process keeps both copies (serve --topology
# 'mirror async'), its mirror disk fails through that process's fifo, the pair
# resyncs, the secondary is promoted; the verdicts are the simulator's.
case_mirror_async() {
    local drill=$HERE/live_mirror_async.drill
    run_drill 0 "$drill" --live
    local live trace
    live=$(report live_mirror_async 8 live)
    live_report_ok "$live"
    trace=$(dirname "$live")/trace.log
    jq -e 'all(.expectations[]; .observed == "held")' "$live" >/dev/null ||
        fail "live: $(jq -c '[.expectations[] | {invariant, observed, explanation}]' "$live")"
    jq -e '.expectations[] | select(.invariant == "mirror-identical") | .witnesses > 0' \
        "$live" >/dev/null || fail "mirror-identical compared nothing live"
    grep -q 'mirror *fault disk/mirror/write armed' "$trace" || fail "the mirror's fault was not armed"
    grep -q 'failover: secondary promoted at change [1-9]' "$trace" || fail "no failover traced"
    grep -q 'AGREE   live_mirror_async' "$WORK/out" || fail "the simulator disagrees"
    run_drill 0 "$drill"
    same_verdicts "$live" "$(report live_mirror_async 8 sim)"
    # the other combinations play live too (their catalog drills agree: make live)
    "$FD" check --live "$SCENARIOS/mirror-cluster-leader-mirror-disk-fails.drill" \
        "$SCENARIOS/mirror-offline-local-mirror-disk-fails.drill" >"$WORK/out" 2>"$WORK/err" ||
        fail "a combination is refused live: $(cat "$WORK/err")"
    [ "$(grep -c '(live too)' "$WORK/out")" = 2 ] || fail "check --live does not say live"
}

case "$CASE" in
mirror_degrade | planted_early_ack | crash_process | partition | async_failover | \
    offline_outage | power_cut_refused | not_live_yet | cluster_crash | mirror_async)
    "case_$CASE"
    ;;
*)
    echo "live_test.sh: unknown case $CASE" >&2
    exit 2
    ;;
esac
echo "PASS [$CASE]"
