#!/usr/bin/env bash
# `faultdrill fuzz` (DESIGN.md §5): generated drills are valid (check accepts
# them) and a function of the seed; a planted bug (a test hook turns the
# mirrors' acknowledgement early, a naive mode) is found, each kind is shrunk
# into OUT/failures/<n>.drill, which parses and still fails the same way; the
# whole outcome (fuzz.json, the failure files) is the same whatever --jobs is.
# usage: fuzz_test.sh FAULTDRILL   (needs jq)
set -u
fd=$1
work=$(mktemp -d /tmp/faultdrill-fuzz-XXXXXX)
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
    if [ "$rc" = "$want" ]; then ok; else
        bad "$what: exit $rc, wanted $want"
        sed 's/^/  | /' "$work/out" "$work/err" | head -20
    fi
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
expect_eq() { if [ "$1" = "$2" ]; then ok; else bad "$3: got '$1', wanted '$2'"; fi; }

expect_rc 0 "fuzz --help" "$fd" fuzz --help
expect_grep "usage: faultdrill fuzz" "$work/out" "fuzz --help prints its usage"
expect_rc 2 "fuzz --topology nonsense" "$fd" fuzz --topology nonsense --runs 1
expect_rc 2 "fuzz --runs 0" "$fd" fuzz --runs 0
expect_rc 2 "fuzz --time soon" "$fd" fuzz --time soon

# generated drills: valid, and a function of (seed, n)
mkdir -p "$work/gen"
for n in $(seq 0 11); do "$fd" fuzz --seed 11 --show "$n" >"$work/gen/$n.drill"; done
expect_rc 0 "12 generated drills pass check" "$fd" check "$work/gen"
"$fd" fuzz --seed 11 --show 7 >"$work/again.drill"
if cmp -s "$work/gen/7.drill" "$work/again.drill"; then ok; else bad "drill 7 of seed 11 came out twice differently"; fi
"$fd" fuzz --seed 12 --show 7 >"$work/other.drill"
if cmp -s "$work/gen/7.drill" "$work/other.drill"; then bad "seeds 11 and 12 gave the same drill 7"; else ok; fi
"$fd" fuzz --seed 11 --topology mirror --show 3 >"$work/mirror.drill"
expect_grep "^topology mirror" "$work/mirror.drill" "--topology mirror gives mirror drills"

# a planted bug is found, shrunk, and the outcome does not depend on --jobs
export FAULTDRILL_TEST_FUZZ_PLANT=early-ack
expect_rc 1 "fuzz finds the planted early acknowledgement" \
    "$fd" fuzz --topology mirror --runs 8 --seed 3 --jobs 2 --out "$work/p2"
expect_grep "FOUND mirror: .* violated" "$work/out" "names what it found"
shrunk=$(find "$work/p2/failures" -maxdepth 1 -name '[0-9]*.drill' ! -name '*.original.drill' | sort)
if [ -n "$shrunk" ]; then ok; else bad "no shrunk drill in OUT/failures"; fi
for f in $shrunk; do
    orig=${f%.drill}.original.drill
    expect_rc 0 "$(basename "$f") parses" "$fd" check "$f"
    expect_rc 1 "$(basename "$f") still fails" "$fd" run "$f" --out "$work/o"
    inv=$(sed -n 's/^# shrunk by `faultdrill shrink`. mirror: \([a-z-]*\) violated.*/\1/p' "$f")
    expect_grep "expected $inv to hold" "$work/out" "$(basename "$f") fails the same invariant"
    if [ "$(grep -c . "$f")" -lt "$(grep -c . "$orig")" ]; then ok; else
        bad "$(basename "$f") is not smaller than $(basename "$orig")"
    fi
done
expect_rc 1 "the same fuzz with one worker" \
    "$fd" fuzz --topology mirror --runs 8 --seed 3 --jobs 1 --out "$work/p1"
if diff <(jq -S 'del(.runs_per_s)' "$work/p1/fuzz.json") <(jq -S 'del(.runs_per_s)' "$work/p2/fuzz.json") \
    >"$work/diff" && diff -r "$work/p1/failures" "$work/p2/failures" >>"$work/diff"; then ok; else
    bad "fuzz with --jobs 1 and --jobs 2 differ"
    head -20 "$work/diff"
fi
# --first stops at the lowest failing drill (how many drills a bug takes to find), unshrunk,
# whatever --jobs is
first=$(jq '[.findings[].drills[0]] | min' "$work/p1/fuzz.json")
expect_eq "$(jq .first_failing_drill "$work/p1/fuzz.json")" "$first" "fuzz.json names the first failing drill"
for jobs in 1 2; do
    expect_rc 1 "fuzz --first --jobs $jobs" \
        "$fd" fuzz --topology mirror --runs 8 --seed 3 --jobs "$jobs" --first --out "$work/f$jobs"
    expect_grep "first failing drill: $first (found after $((first + 1)) drills)" "$work/out" \
        "--first --jobs $jobs prints the first failing drill"
    expect_eq "$(jq .first_failing_drill "$work/f$jobs/fuzz.json")" "$first" \
        "--first --jobs $jobs stops at the same drill"
    expect_eq "$(find "$work/f$jobs/failures" -maxdepth 1 -name '*.drill' | wc -l)" 0 \
        "--first --jobs $jobs shrinks nothing"
done
expect_eq "$(jq .runs "$work/f1/fuzz.json")" "$((first + 1))" "--first --jobs 1 runs no drill past it"
unset FAULTDRILL_TEST_FUZZ_PLANT

# unplanted, over every topology: every drill it wrote parses and ran (that --jobs does not
# change the outcome is shown above, failures included)
"$fd" fuzz --runs 6 --seed 5 --jobs 2 --out "$work/u1" >/dev/null 2>&1
expect_eq "$(jq .runs "$work/u1/fuzz.json")" 6 "fuzz.json counts the drills run"
expect_eq "$(jq .generator_errors "$work/u1/fuzz.json")" 0 "the generator wrote only valid drills"
expect_eq "$(jq .first_failing_drill "$work/u1/fuzz.json")" null "no failing drill, none named"

# the shapes are as deterministic as the rest: two drills with a late offline push and two
# with a jitter that reorders async batches, every seed rechecked, give one trace hash each
mkdir -p "$work/shapes"
pick() { # pick TOPOLOGY PATTERN: copies the first two drills of seed 7 that have PATTERN
    local k=0 n
    for n in $(seq 0 60); do
        "$fd" fuzz --seed 7 --topology "$1" --show "$n" >"$work/s.drill"
        if grep -Eq -- "$2" "$work/s.drill"; then
            cp "$work/s.drill" "$work/shapes/$1-$n.drill"
            k=$((k + 1))
            [ "$k" = 2 ] && break
        fi
    done
}
pick offline '/central/delay delay=([6-9]00ms|[12](\.[0-9])?s)'
pick async ' jitter=(1[2-9]|2[0-9]|30)ms'
expect_eq "$(find "$work/shapes" -name '*.drill' | wc -l)" 4 "seed 7 has two of each shape in 60 drills"
"$fd" sweep "$work/shapes" --seeds 1-3 --recheck 100 --jobs 2 --out "$work/sw" >"$work/out" 2>&1
expect_eq "$(jq .totals.rechecked "$work/sw/sweep.json")" 12 "every run of the shapes rechecked"
expect_eq "$(jq .totals.nondeterministic "$work/sw/sweep.json")" 0 "the shapes give one trace per seed"
expect_eq "$(jq '[.runs[].expectations[] | select(.observed == "violated")] | length' \
    "$work/sw/sweep.json")" 0 "the shapes break no promise of the correct modes"
# (a drill's other events may keep its local from pushing then: offline, partitioned)
if [ "$(grep -c "/central/delay fired in none" "$work/out")" -lt 2 ]; then ok; else
    bad "no late push fired"
    grep "fired in none" "$work/out"
fi

echo "fuzz_test: $passed passed, $failed failed"
[ "$failed" = 0 ]
