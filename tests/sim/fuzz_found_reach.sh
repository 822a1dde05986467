#!/usr/bin/env bash
# The fuzz-found drills written to show an exchange still reach it: a drill
# that passes without its trace ever getting there proves nothing (the
# async-stall drills did, for a while, once the core paced its batches 10ms
# apart and their 1-2ms of jitter stopped reordering anything).
# usage: fuzz_found_reach.sh FAULTDRILL DRILLS_DIR
set -u
fd=$1
dir=$2
work=$(mktemp -d /tmp/faultdrill-reach-XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
# reach DRILL MIN PATTERN: the drill passes and its trace has PATTERN at least MIN times
reach() {
    local name=$1 min=$2 pattern=$3 trace n
    if ! "$fd" run "$dir/$name.drill" --out "$work" -q >"$work/out" 2>&1; then
        failed=$((failed + 1))
        echo "FAIL: $name does not pass"
        sed 's/^/  | /' "$work/out" | head -10
        return
    fi
    trace=$(ls "$work/$name"/seed-*/trace.log)
    n=$(grep -c -- "$pattern" "$trace")
    if [ "$n" -ge "$min" ]; then passed=$((passed + 1)); else
        failed=$((failed + 1))
        echo "FAIL: $name: '$pattern' $n times in its trace, wanted at least $min"
    fi
}
reach async-stall-under-jitter 1 "secondary  batch .*: a gap, nothing applied"
reach async-stall-under-jitter 1 "primary    secondary is missing changes after 0: resending from there"
reach async-stall-after-nack 1 "secondary  batch .*: a gap, nothing applied"
reach async-stall-after-nack 1 "primary    secondary is missing changes after 58: resending from there"
reach async-stall-after-nack 1 "primary    secondary is missing changes after 68: resending from there"
reach async-stall-after-nack 1 "secondary  applied .* up to 96 "
echo "fuzz_found_reach: $passed passed, $failed failed"
[ "$failed" = 0 ]
