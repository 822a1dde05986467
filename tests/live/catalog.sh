#!/usr/bin/env bash
# catalog.sh — the live catalog (`make live`): every drill of scenarios/ that
# `check --live` accepts runs in the simulator and live (`run --live`); one
# line per drill: verdicts, operations and wall time both ways. Exits 1 when
# a live verdict differs from the simulated one (per expectation), and lists
# the drills that do not run live yet with the reason check --live gives.
#
#   catalog.sh FAULTDRILL [SCENARIOS_DIR]
set -uo pipefail

FD=$1
DIR=${2:-$(cd "$(dirname "$0")/../../scenarios" && pwd)}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/faultdrill-catalog-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
differ=0 ran=0
printf '%-36s %-6s %-6s %8s %8s %9s %9s\n' drill sim live ops-sim ops-live wall-sim wall-live
for drill in "$DIR"/*.drill; do
    name=$(basename "$drill" .drill)
    if ! "$FD" check --live "$drill" >/dev/null 2>"$WORK/why"; then
        echo "not live yet: $name: $(head -1 "$WORK/why" | sed 's/^[^ ]*: //')" >>"$WORK/skipped"
        continue
    fi
    "$FD" run "$drill" --out "$WORK/r" -q >/dev/null 2>&1
    "$FD" run "$drill" --live --out "$WORK/r" -q >/dev/null 2>"$WORK/err"
    sim=$(ls "$WORK/r/$name"/seed-*/report.json 2>/dev/null | head -1)
    live=$(ls "$WORK/r/$name"/live-seed-*/report.json 2>/dev/null | head -1)
    if [ -z "$sim" ] || [ -z "$live" ]; then
        echo "$name: did not run: $(head -3 "$WORK/err")"
        differ=1
        continue
    fi
    ran=$((ran + 1))
    verdicts_sim=$(jq -c '[.expectations[] | [.invariant, .observed]]' "$sim")
    verdicts_live=$(jq -c '[.expectations[] | [.invariant, .observed]]' "$live")
    mark=""
    if [ "$verdicts_sim" != "$verdicts_live" ]; then
        differ=1
        mark="  DIFFERS: sim $verdicts_sim live $verdicts_live"
    fi
    printf '%-36s %-6s %-6s %8s %8s %8sms %8sms%s\n' "$name" "$(jq -r .verdict "$sim")" \
        "$(jq -r .verdict "$live")" "$(jq -r .ops.total "$sim")" "$(jq -r .ops.total "$live")" \
        "$(jq -r .wall_ms "$sim")" "$(jq -r .wall_ms "$live")" "$mark"
done
[ -f "$WORK/skipped" ] && cat "$WORK/skipped"
echo "$ran drill(s) run both ways; $([ "$differ" = 0 ] && echo "every verdict agrees" || echo "SOME DIFFER")"
exit "$differ"
