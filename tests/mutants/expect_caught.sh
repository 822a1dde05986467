#!/usr/bin/env bash
# tests/mutants/expect_caught.sh FAULTDRILL MUTANT DRILL INVARIANT WORDS
#
# One planted bug against the drill meant to catch it: the drill passes with
# no mutant, and with MUTANT it fails (exit 1) on INVARIANT, the explanation
# containing WORDS. The other direction of a checker's test, where only a
# mutant build can make the bug (tests/mutants/run.sh scores them all).
set -uo pipefail
fd=$1
mutant=$2
drill=$3
invariant=$4
words=$5
work=$(mktemp -d "${TMPDIR:-/tmp}/faultdrill-mutant-XXXXXX")
trap 'rm -rf "$work"' EXIT
if ! FAULTDRILL_MUTANT=none "$fd" run "$drill" --out "$work/none" >"$work/none.txt" 2>&1; then
    echo "expect_caught: $drill fails without a mutant:"
    cat "$work/none.txt"
    exit 1
fi
FAULTDRILL_MUTANT=$mutant "$fd" run "$drill" --out "$work/out" >"$work/out.txt" 2>&1
rc=$?
if [ $rc -ne 1 ] || ! grep -F "expected $invariant to hold:" "$work/out.txt" | grep -qF "$words"; then
    echo "expect_caught: $mutant not caught by $invariant in $drill (exit $rc):"
    cat "$work/out.txt"
    exit 1
fi
echo "expect_caught: $mutant caught by $invariant in $(basename "$drill")"
