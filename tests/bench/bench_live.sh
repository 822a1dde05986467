#!/usr/bin/env bash
# bench_live.sh — the highest client rate `run --live` holds on this machine
# (issue 16's figure): a mirror drill of 4 s at rising rates; an operation is
# late when it was issued more than 10 ms after its schedule (the previous
# completion plus the think time, as in the simulator). A rate is held while
# under 1% of the operations are late. The clients are closed loops, as in the
# simulator: ops/s stays below the rate by the requests' own latency.
#
#   bench_live.sh FAULTDRILL [RATE...]   (default 100 200 400 800 1600 3200)
set -uo pipefail
FD=$1
shift
RATES=${*:-100 200 400 800 1600 3200}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/faultdrill-bench-live-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
held=0
printf '%8s %8s %8s %8s %7s %10s %s\n' rate/s clients ops ops/s late% late-max held
for rate in $RATES; do
    clients=$((rate / 25))
    [ "$clients" -lt 4 ] && clients=4
    [ "$clients" -gt 256 ] && clients=256
    cat >"$WORK/rate$rate.drill" <<DRILL
drill "live rate $rate/s"
topology mirror
seed 1
duration 4s
products 20 stock=1000000 price=2..40
users 50
workload w clients=$clients rate=$rate/s mix=browse:40,cart:30,checkout:20,orders:10
expect no-lost-acks
expect mirror-identical
DRILL
    "$FD" run --live "$WORK/rate$rate.drill" --out "$WORK/out" -q >/dev/null 2>"$WORK/err"
    r=$WORK/out/rate$rate/live-seed-1/report.json
    if [ ! -f "$r" ]; then
        echo "rate $rate: did not run: $(head -2 "$WORK/err")"
        continue
    fi
    ops=$(jq -r .ops.total "$r")
    issued=$(jq -r .metrics.live_ops_issued "$r")
    late=$(jq -r .metrics.live_ops_late "$r")
    late_max=$(jq -r .metrics.live_late_max "$r")
    per_s=$(awk -v o="$ops" 'BEGIN { printf "%d", o / 4 }')
    pct=$(awk -v l="$late" -v i="$issued" 'BEGIN { printf "%.1f", i ? 100 * l / i : 0 }')
    ok=no
    if awk -v l="$late" -v i="$issued" 'BEGIN { exit !(i > 0 && l / i < 0.01) }'; then
        ok=yes
        held=$rate
    fi
    printf '%8s %8s %8s %8s %6s%% %8sus %s  (%s)\n' "$rate" "$clients" "$ops" "$per_s" "$pct" \
        "$late_max" "$ok" "$(jq -r .verdict "$r")"
done
echo "highest rate held: ${held}/s"
