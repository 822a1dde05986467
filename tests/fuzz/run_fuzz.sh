#!/usr/bin/env bash
# run_fuzz.sh TARGET CORPUS SECONDS — one libFuzzer run of TARGET for SECONDS
# on a scratch copy of the committed CORPUS (new inputs never dirty the tree;
# `make fuzz-merge` is not a thing: add a finding by hand as a regression).
# Prints libFuzzer's last status line (execs/s, cov, ft) and the run's length;
# a finding (crash, leak, timeout) fails and leaves its input in the cwd.
set -euo pipefail
TARGET=$1 CORPUS=$2 SECONDS_RUN=$3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp -r "$CORPUS/." "$WORK/"
rc=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    "$TARGET" -max_total_time="$SECONDS_RUN" -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 "$WORK" >"$WORK.log" 2>&1 || rc=$?
grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$WORK.log" | tail -1 || true
grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss)' "$WORK.log" || true
if [ "$rc" != 0 ]; then
    tail -60 "$WORK.log"
    echo "run_fuzz: $(basename "$TARGET") found a problem (exit $rc)" >&2
fi
rm -f "$WORK.log"
exit "$rc"
