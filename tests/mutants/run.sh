#!/usr/bin/env bash
# tests/mutants/run.sh FAULTDRILL MUTANT_LIST [DRILL|DIR...]
#
# The checkers' mutation score. FAULTDRILL must come from a mutant build
# (cmake -DFAULTDRILL_MUTANTS=ON); MUTANT_LIST prints the planted bugs
# (platform/mutants.h). The drills (default: the catalog, scenarios/) must all
# pass with no mutant; then, for each mutant (FAULTDRILL_MUTANT=name), some
# drill must fail: an expectation not met (exit 1). Prints which drills
# caught which mutant and the score; exits 1 unless every mutant is caught.
set -uo pipefail
fd=$1
list=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
drills=("$@")
[ ${#drills[@]} -gt 0 ] || drills=("$here/../../scenarios")
work=$(mktemp -d "${TMPDIR:-/tmp}/faultdrill-mutants-XXXXXX")
trap 'rm -rf "$work"' EXIT

FAULTDRILL_MUTANT=none "$fd" run "${drills[@]}" --out "$work/out" >"$work/base" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
    echo "mutants: the drills do not all pass without a mutant (exit $rc):"
    grep -v '^PASS' "$work/base" | head -20
    exit 1
fi

total=0
caught=0
escaped=()
while IFS=$'\t' read -r name about; do
    total=$((total + 1))
    rm -rf "$work/out"
    FAULTDRILL_MUTANT=$name "$fd" run "${drills[@]}" --out "$work/out" >"$work/run" 2>&1
    rc=$?
    by=$(awk '/^FAIL /{print $2}' "$work/run" | sort -u | tr '\n' ' ')
    if [ $rc -eq 1 ] && [ -n "$by" ]; then
        caught=$((caught + 1))
        printf 'caught   %-32s by %s\n' "$name" "$by"
    else
        escaped+=("$name")
        printf 'ESCAPED  %-32s (%s; exit %d)\n' "$name" "$about" "$rc"
        [ $rc -eq 1 ] || [ $rc -eq 0 ] || grep -v '^PASS' "$work/run" | head -5 | sed 's/^/         | /'
    fi
done < <("$list")

echo "mutation score: $caught/$total planted bugs caught by the drills"
[ $caught -eq $total ] && [ $total -ge 1 ]
