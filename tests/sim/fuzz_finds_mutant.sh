#!/usr/bin/env bash
# `faultdrill fuzz` finds a planted bug within a bound: FAULTDRILL_MUTANT=NAME
# fuzz --first over TOPOLOGY fails within RUNS drills, and the same drills
# pass without the mutant (so the failure is the mutant's).
# usage: fuzz_finds_mutant.sh FAULTDRILL NAME TOPOLOGY RUNS   (a mutant build; needs jq)
set -u
fd=$1
name=$2
topology=$3
runs=$4
work=$(mktemp -d /tmp/faultdrill-finds-XXXXXX)
trap 'rm -rf "$work"' EXIT
FAULTDRILL_MUTANT=$name "$fd" fuzz --first --topology "$topology" --runs "$runs" --seed 7 \
    --jobs 1 --out "$work/m" >"$work/m.txt" 2>&1
rc=$?
first=$(jq -r .first_failing_drill "$work/m/fuzz.json" 2>/dev/null)
if [ "$rc" != 1 ] || [ -z "$first" ] || [ "$first" = null ]; then
    echo "FAIL: fuzz did not find $name in $runs $topology drills (exit $rc)"
    head -5 "$work/m.txt"
    exit 1
fi
FAULTDRILL_MUTANT=none "$fd" fuzz --topology "$topology" --runs "$((first + 1))" --seed 7 \
    --jobs 1 --out "$work/n" >"$work/n.txt" 2>&1
rc=$?
if [ "$rc" != 0 ]; then
    echo "FAIL: without $name the same $((first + 1)) drills do not all pass (exit $rc)"
    head -5 "$work/n.txt"
    exit 1
fi
echo "fuzz found $name at $topology drill $first of seed 7: $(jq -r '.findings[0].signature' \
    "$work/m/fuzz.json")"
