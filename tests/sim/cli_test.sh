#!/usr/bin/env bash
# The faultdrill CLI's contract (DESIGN.md §5): commands, --help, exit codes
# 0/1/2/3, FILE:LINE:COL errors, report files, JUnit, determinism.
# usage: cli_test.sh FAULTDRILL SCENARIOS_DIR
set -u
fd=$1
scenarios=$2
work=$(mktemp -d /tmp/faultdrill-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

expect_rc() { # expect_rc WANT DESCRIPTION COMMAND...
    local want=$1 what=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [ "$rc" = "$want" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $what: exit $rc, wanted $want"
        sed 's/^/  | /' "$work/out" "$work/err" | head -20
    fi
}

expect_grep() { # expect_grep PATTERN FILE DESCRIPTION
    if grep -q -- "$1" "$2"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $3: '$1' not in $2"
        sed 's/^/  | /' "$2" | head -20
    fi
}

cat >"$work/bad.drill" <<'DRILL'
drill "Typos"
topology mirror
at 2s fault disk/primry/write
at 3x crash primary
expect no-such-thing
DRILL

cat >"$work/unmet.drill" <<'DRILL'
drill "Expects a violation a correct mirror never shows"
topology mirror policy=strict
duration 2s
products 3
users 2
workload w clients=2 rate=50/s mix=cart:50,checkout:50
expect mirror-identical violated
DRILL

cat >"$work/never.drill" <<'DRILL'
drill "Faults the topology never reaches"
topology single
duration 2s
at 1s fault crash/primary/mirror-between-commits once
at 1s failover primary
expect no-lost-acks
DRILL

cat >"$work/async.drill" <<'DRILL'
drill "Async and offline in one drill"
topology async delay=200ms offline
duration 2s
expect no-lost-acks
DRILL

expect_rc 2 "no arguments" "$fd"
expect_rc 2 "unknown command" "$fd" bogus
expect_rc 0 "--help" "$fd" --help
for cmd in run check explain faults invariants; do
    expect_rc 0 "$cmd --help" "$fd" "$cmd" --help
done
expect_rc 2 "check of a drill with errors" "$fd" check "$work/bad.drill"
expect_grep "bad.drill:3:[0-9]*: " "$work/err" "errors as FILE:LINE:COL"
expect_grep "primry" "$work/err" "the unknown node is named"
expect_grep "bad.drill:4:" "$work/err" "the bad duration is reported too"
expect_grep "bad.drill:5:" "$work/err" "the unknown invariant is reported too"
expect_rc 2 "run of a drill with errors" "$fd" run "$work/bad.drill" --out "$work/o"
expect_rc 2 "a missing drill" "$fd" run "$work/none.drill"
expect_rc 2 "a bad seed" "$fd" run "$scenarios" --seed abc
expect_rc 0 "check of the catalog" "$fd" check "$scenarios"
expect_rc 0 "run of a passing drill" "$fd" run "$scenarios/mirror-crash-between-commits.drill" --out "$work/o"
expect_grep "^PASS  mirror-crash-between-commits  seed=3  " "$work/out" "the summary line"
for f in report.json report.md report.html trace.log; do
    [ -s "$work/o/mirror-crash-between-commits/seed-3/$f" ] && passed=$((passed + 1)) ||
        { failed=$((failed + 1)); echo "FAIL: $f was not written"; }
done
expect_rc 0 "the same run again" "$fd" run "$scenarios/mirror-crash-between-commits.drill" --out "$work/o2"
if cmp -s "$work/o/mirror-crash-between-commits/seed-3/trace.log" \
    "$work/o2/mirror-crash-between-commits/seed-3/trace.log"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); echo "FAIL: two runs of one seed wrote different traces"
fi
# planted bugs exist only in a mutant build (tests/mutants): here the variable changes nothing
FAULTDRILL_MUTANT=mirror-strict-no-undo expect_rc 0 "a normal build ignores FAULTDRILL_MUTANT" \
    "$fd" run "$scenarios/mirror-strict-mirror-disk-fails.drill" --out "$work/om"
expect_rc 1 "an expectation not met" "$fd" run "$work/unmet.drill" --out "$work/o"
expect_grep "^FAIL  unmet" "$work/out" "the FAIL line"
expect_grep "replay: faultdrill run .*unmet.drill --seed 1 --out $work/o\$" "$work/out" "the replay command, with --out"
# the replay line, run as printed, writes the same trace in the same place
sha_first=$(jq -r .trace_sha256 "$work/o/unmet/seed-1/report.json")
replay=$(sed -n 's/^ *replay: faultdrill //p' "$work/out" | head -1)
rm -rf "$work/o/unmet"
eval "\"\$fd\" $replay" >/dev/null 2>&1 || true
if [ "$(jq -r .trace_sha256 "$work/o/unmet/seed-1/report.json" 2>/dev/null)" = "$sha_first" ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); echo "FAIL: the replay line ($replay) did not reproduce the run in the same place"
fi
expect_rc 3 "an unwritable --out" "$fd" run "$scenarios/single-crash-mid-checkout.drill" --out "$work/bad.drill/x"
# a drill that could not run is in the JUnit file as an <error>, beside one that ran
expect_rc 3 "an unwritable --out, with JUnit" "$fd" run "$scenarios/single-crash-mid-checkout.drill" \
    --out "$work/bad.drill/x" --junit "$work/err.xml"
expect_grep '<testsuites name="faultdrill" tests="1" failures="0" errors="1"' "$work/err.xml" \
    "JUnit counts the drill that could not run as an error"
expect_grep '<error message="could not run">cannot write the reports' "$work/err.xml" \
    "JUnit says why it could not run"
# faults: every row's columns line up (the family starts at one column)
expect_rc 0 "faults" "$fd" faults
grep -v '^    ' "$work/out" | awk '{ print index($0, " " $2 " ") }' | sort -u >"$work/cols"
if [ "$(wc -l <"$work/cols")" = 1 ]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: faults' family column starts at $(tr '\n' ' ' <"$work/cols")"
fi
# explain's wording of every fault point and of a mix that does not add up to 100
cat >"$work/mix.drill" <<'DRILL'
drill "Relative weights"
topology mirror
duration 2s
workload w clients=2 rate=10/s mix=browse:50,cart:40 until=1s
at 1s fault * errno=EIO for=500ms
expect stock-conserved
DRILL
expect_rc 0 "explain of a mix of 90" "$fd" explain "$work/mix.drill"
expect_grep "add up to 90, not 100" "$work/out" "explain states a mix that does not add up to 100"
expect_grep "every fault point of the catalog starts firing" "$work/out" "explain of fault *"
sed -i 's/cart:40/carts:40/' "$work/mix.drill"
expect_rc 2 "an unknown mix operation" "$fd" check "$work/mix.drill"
expect_grep "cart-add (or cart)" "$work/err" "the mix error names the short names too"
# check refuses what run would (DESIGN.md §4): the same FILE:LINE:COL error, exit 2
expect_rc 2 "a combination of topologies that does not exist" "$fd" run "$work/async.drill" --out "$work/o"
expect_grep "async.drill:2:1: async, offline and cluster replicate between nodes" "$work/err" "says what is wrong"
expect_rc 2 "check of a combination that does not exist" "$fd" check "$work/async.drill"
expect_grep "async.drill:2:1: " "$work/err" "check says where"
expect_rc 2 "check of a fault that can never fire" "$fd" check "$work/never.drill"
expect_grep "never.drill:4:13: fault crash/primary/mirror-between-commits can never fire here" \
    "$work/err" "the crash point of a mirror on topology single"
expect_grep "never.drill:5:16: failover is built for topology async only" "$work/err" \
    "failover on a topology without it"
expect_rc 2 "run of a fault that can never fire" "$fd" run "$work/never.drill" --out "$work/o"
expect_rc 1 "a directory with one unmet drill, with JUnit" "$fd" run "$scenarios" "$work/unmet.drill" --out "$work/o" --junit "$work/junit.xml" -q
expect_grep "<testsuites" "$work/junit.xml" "JUnit root"
expect_grep "<failure" "$work/junit.xml" "JUnit failure"
expect_rc 0 "faults" "$fd" faults
expect_grep "disk/<node>/write" "$work/out" "the catalog lists disk points"
expect_grep "crash/<node>/mirror-between-commits" "$work/out" "the catalog lists crash points"
expect_rc 0 "invariants" "$fd" invariants
expect_grep "no-lost-acks" "$work/out" "the invariants"
expect_rc 0 "explain" "$fd" explain "$scenarios/mirror-primary-disk-fails.drill"
expect_grep "strict" "$work/out" "explain tells the policy"

echo "cli: $passed passed, $failed failed"
[ "$failed" = 0 ]
