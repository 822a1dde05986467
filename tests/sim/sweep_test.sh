#!/usr/bin/env bash
# `faultdrill sweep` and `faultdrill report merge` (DESIGN.md §5, §8): the
# shards run as separate processes and their merge equals the unsharded sweep
# seed for seed; reports only for failing seeds; a planted nondeterminism is
# caught by --recheck; a fault statement that never fired fails the sweep; a
# worker that dies is one failed run, not a stopped sweep; merge refuses shards
# that do not fit; the progress line shows on a terminal only; --help.
# usage: sweep_test.sh FAULTDRILL DRILLS_DIR   (needs jq)
set -u
fd=$1
drills=$2
work=$(mktemp -d /tmp/faultdrill-sweep-XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}

expect_rc() { # expect_rc WANT DESCRIPTION COMMAND...
    local want=$1 what=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [ "$rc" = "$want" ]; then
        ok
    else
        bad "$what: exit $rc, wanted $want"
        sed 's/^/  | /' "$work/out" "$work/err" | head -20
    fi
    # a worker's leak report (sanitizer build) or odd exit shows here
    if grep -q "ended with status\|LeakSanitizer\|runtime error" "$work/err"; then
        bad "$what: a worker did not end cleanly"
        head -30 "$work/err" | sed 's/^/  | /'
    fi
}

expect_grep() { # expect_grep PATTERN FILE DESCRIPTION
    if grep -q -- "$1" "$2"; then ok; else
        bad "$3: '$1' not in $2"
        sed 's/^/  | /' "$2" | head -20
    fi
}

expect_eq() { # expect_eq GOT WANT DESCRIPTION
    if [ "$1" = "$2" ]; then ok; else bad "$3: got '$1', wanted '$2'"; fi
}

quick=$drills/quick.drill
early=$drills/early-ack-loses.drill
unfired=$drills/unfired.drill

# --help on every new command, exit 0
for cmd in "sweep" "report" "report merge"; do
    # shellcheck disable=SC2086
    expect_rc 0 "$cmd --help" "$fd" $cmd --help
    expect_grep "usage: faultdrill" "$work/out" "$cmd --help prints its usage"
done

# bad usage: exit 2
expect_rc 2 "sweep without --seeds" "$fd" sweep "$quick"
expect_rc 2 "sweep with seeds backwards" "$fd" sweep "$quick" --seeds 5-3
expect_rc 2 "sweep --shard 0/3" "$fd" sweep "$quick" --seeds 1-3 --shard 0/3
expect_rc 2 "sweep --shard 4/3" "$fd" sweep "$quick" --seeds 1-3 --shard 4/3
expect_rc 2 "sweep --recheck 101" "$fd" sweep "$quick" --seeds 1-3 --recheck 101
expect_rc 2 "sweep of a missing drill" "$fd" sweep "$work/none.drill" --seeds 1-3
expect_rc 2 "report without merge" "$fd" report "$work"

# shards as separate processes; their merge equals the unsharded sweep, seed for seed
seeds=1-9
for k in 1 2 3; do
    expect_rc 0 "shard $k/3" "$fd" sweep "$quick" "$unfired" --seeds $seeds --shard $k/3 \
        --recheck 30 --jobs 2 --out "$work/shard$k"
done
expect_rc 1 "the unsharded sweep (the unfired fault fails it)" "$fd" sweep "$quick" "$unfired" \
    --seeds $seeds --recheck 30 --jobs 2 --out "$work/all" --junit "$work/all.xml"
expect_rc 1 "merge of the three shards (the unfired fault fails it)" "$fd" report merge \
    "$work/shard1" "$work/shard2" "$work/shard3/sweep.json" --out "$work/merged" \
    --junit "$work/merged.xml"
expect_grep "3 shards merged" "$work/out" "the merge says what it joined"
expect_grep "unfired.drill:.* fault disk/primary/write fired in none of its 9 seeds" "$work/out" \
    "the merge judges the fault statements no shard could"
norm='del(.shard) | del(.runs[].wall_ms) | del(.totals.wall_ms)'
if diff <(jq -S "$norm" "$work/all/sweep.json") <(jq -S "$norm" "$work/merged/sweep.json") \
    >"$work/diff"; then ok; else
    bad "the merge differs from the unsharded sweep"
    head -20 "$work/diff"
fi
expect_eq "$(jq '.runs | length' "$work/merged/sweep.json")" 18 "18 runs: 2 drills x 9 seeds"
expect_eq "$(jq '[.runs[] | select(.recheck)] | length' "$work/all/sweep.json")" 6 \
    "--recheck 30 reruns 3 of 9 seeds per drill"
expect_eq "$(jq -r '.shard | "\(.index)/\(.count)"' "$work/merged/sweep.json")" "0/3" \
    "a merge is shard 0 of 3"
expect_eq "$(jq -r '.shard | "\(.index)/\(.count)"' "$work/shard2/sweep.json")" "2/3" \
    "a shard says which it is"
expect_eq "$(jq -r '[.runs[].seed] | map(tostring) | join(",")' "$work/shard2/sweep.json")" \
    "2,5,8,2,5,8" "shard 2/3 takes the seeds whose index is 1 mod 3"
grep -o 'testcase ' "$work/all.xml" | wc -l >"$work/n1"
grep -o 'testcase ' "$work/merged.xml" | wc -l >"$work/n2"
expect_eq "$(cat "$work/n2")" "$(cat "$work/n1")" "the merged JUnit has the unsharded one's testcases"
expect_grep '<failure message="never fired">' "$work/merged.xml" "the JUnit file shows the unfired fault"
expect_eq "$(find "$work/all" -mindepth 1 -type d | wc -l)" 0 "passing seeds get no report files"

# merge refuses shards that do not fit together (exit 2)
expect_rc 2 "merge with a shard missing" "$fd" report merge "$work/shard1" "$work/shard3" --out "$work/m2"
expect_grep "shard 2/3 is missing" "$work/err" "merge names the missing shard"
expect_rc 2 "merge with a shard given twice" "$fd" report merge "$work/shard1" "$work/shard1" \
    "$work/shard2" "$work/shard3" --out "$work/m3"
"$fd" sweep "$quick" "$unfired" --seeds 1-6 --shard 1/3 --out "$work/other" >/dev/null
expect_rc 2 "merge of shards of different sweeps" "$fd" report merge "$work/other" "$work/shard2" \
    "$work/shard3" --out "$work/m4"
expect_rc 2 "merge of a merge" "$fd" report merge "$work/merged" --out "$work/m5"
echo '{"schema": "nope"}' >"$work/junk.json"
expect_rc 2 "merge of something that is not a sweep.json" "$fd" report merge "$work/junk.json"
expect_rc 3 "merge of a file that is not there" "$fd" report merge "$work/none.json"

# failing seeds: reports for them only, each listed with its replay command; JUnit failures
expect_rc 1 "a sweep with failing seeds" "$fd" sweep "$early" --seeds 1-4 --jobs 2 --out "$work/fail" \
    --junit "$work/fail.xml"
fails=$(jq '[.runs[] | select(.verdict == "fail")] | length' "$work/fail/sweep.json")
expect_eq "$(find "$work/fail/early-ack-loses" -name report.json | wc -l)" "$fails" \
    "one report directory per failing seed"
expect_grep "replay: faultdrill run $early --seed" "$work/out" "each failing seed's replay command"
expect_grep "replay: faultdrill run $early --seed [0-9]* --out $work/fail\$" "$work/out" \
    "... with the sweep's --out, as run's replay line has it"
# the replay line, run as printed, writes that seed's report again in the same place
replay=$(sed -n 's/^ *replay: faultdrill //p' "$work/out" | head -1)
rseed=$(echo "$replay" | sed 's/.*--seed \([0-9]*\).*/\1/')
rm -rf "$work/fail/early-ack-loses/seed-$rseed"
eval "\"\$fd\" $replay" >/dev/null 2>&1
expect_eq "$(jq -r .trace_sha256 "$work/fail/early-ack-loses/seed-$rseed/report.json" 2>/dev/null)" \
    "$(jq -r ".runs[] | select(.seed == $rseed) | .trace_sha256" "$work/fail/sweep.json")" \
    "the replay line reproduces the seed's report where the sweep put it"
expect_eq "$(jq -r '[.runs[] | select(.verdict == "fail")][0].failing[0]' "$work/fail/sweep.json")" \
    "no-lost-acks" \
    "sweep.json names the failing invariant"
expect_eq "$(grep -c '<failure message="expected no-lost-acks' "$work/fail.xml")" "$fails" \
    "the JUnit file has a failure per failing seed"
first=$(jq -r '.runs[] | select(.verdict == "fail") | .seed' "$work/fail/sweep.json" | head -1)
"$fd" run "$early" --seed "$first" --out "$work/replay" >/dev/null
expect_eq "$(jq -r .trace_sha256 "$work/replay/early-ack-loses/seed-$first/report.json")" \
    "$(jq -r ".runs[] | select(.seed == $first) | .trace_sha256" "$work/fail/sweep.json")" \
    "the replay command reproduces the sweep's trace"
expect_grep "Failing seeds" "$work/fail/sweep.md" "sweep.md lists the failing seeds"

# --recheck catches a planted nondeterminism (a test hook perturbs the rerun of seed 2)
FAULTDRILL_TEST_PERTURB_SEED=2 expect_rc 1 "a sweep whose rerun of seed 2 differs" \
    "$fd" sweep "$quick" --seeds 1-4 --recheck 100 --jobs 2 --out "$work/nondet"
expect_grep "not deterministic" "$work/out" "says the run is not deterministic"
expect_grep "seed 2: trace" "$work/out" "names the seed"
expect_eq "$(jq '[.runs[] | select(.recheck.same == false)] | map(.seed)' -c "$work/nondet/sweep.json")" \
    "[2]" "sweep.json marks only seed 2"
expect_rc 0 "the same sweep without the hook" "$fd" sweep "$quick" --seeds 1-4 --recheck 100 \
    --jobs 2 --out "$work/det"

# a worker that dies is that seed's failure; the sweep goes on with a new worker
FAULTDRILL_TEST_ABORT_SEED=3 expect_rc 3 "a worker aborts on seed 3" \
    "$fd" sweep "$quick" --seeds 1-6 --jobs 2 --out "$work/abort" --junit "$work/abort.xml"
expect_eq "$(jq -c '[.runs[] | .verdict]' "$work/abort/sweep.json")" \
    '["pass","pass","error","pass","pass","pass"]' "only seed 3 could not run"
expect_grep "killed by signal" "$work/out" "says how the worker died"
expect_grep '<error message="could not run">' "$work/abort.xml" "the JUnit file has the error"

# the progress line: on a terminal, not in CI nor into a pipe
if command -v script >/dev/null; then
    env -u CI script -qec "$fd sweep $quick --seeds 1-3 --jobs 1 --out $work/tty" /dev/null \
        >"$work/tty.txt" 2>&1
    expect_grep "sweep  [0-9]/3" "$work/tty.txt" "a terminal gets the progress line"
    CI=1 script -qec "$fd sweep $quick --seeds 1-3 --jobs 1 --out $work/tty" /dev/null \
        >"$work/ci.txt" 2>&1
    if grep -q "runs/s" "$work/ci.txt"; then bad "CI=1 still shows the progress line"; else ok; fi
fi
"$fd" sweep "$quick" --seeds 1-3 --jobs 1 --out "$work/pipe" >"$work/pipe.txt"
if grep -q "runs/s" "$work/pipe.txt"; then bad "a pipe gets the progress line"; else ok; fi

echo "sweep_test: $passed passed, $failed failed"
[ "$failed" = 0 ]
