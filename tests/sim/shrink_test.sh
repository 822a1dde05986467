#!/usr/bin/env bash
# `faultdrill shrink` (DESIGN.md §5): the minimal drill parses, still fails the
# same invariant with the same seed, is smaller, and comes out byte for byte
# the same when shrunk again; a demonstration drill keeps its violation; a seed
# that meets everything and a broken drill are usage errors (exit 2); --help.
# usage: shrink_test.sh FAULTDRILL DRILLS_DIR   (DRILLS_DIR: tests/sim/drills/sweep)
set -u
fd=$1
drills=$2
work=$(mktemp -d /tmp/faultdrill-shrink-XXXXXX)
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
}
expect_grep() { # expect_grep PATTERN FILE DESCRIPTION
    if grep -q -- "$1" "$2"; then ok; else
        bad "$3: '$1' not in $2"
        sed 's/^/  | /' "$2" | head -20
    fi
}
statements() { grep -cv '^\s*\(#.*\)\?$' "$1"; }

early=$drills/early-ack-loses.drill
expect_rc 0 "shrink --help" "$fd" shrink --help
expect_grep "usage: faultdrill shrink" "$work/out" "shrink --help prints its usage"
expect_rc 2 "shrink without a drill" "$fd" shrink --seed 3
expect_rc 2 "shrink of a missing drill" "$fd" shrink "$work/none.drill" --seed 3

# a failing seed of the early-ack drill
expect_rc 1 "seed 3 of the early-ack drill fails" "$fd" run "$early" --seed 3 --out "$work/o"
expect_rc 0 "shrink it" "$fd" shrink "$early" --seed 3 -o "$work/a.drill"
expect_grep "^--- $early$" "$work/out" "prints a unified diff against the original (no file times: same input, same output)"
expect_grep "^+++ $work/a.drill$" "$work/out" "... and the minimal drill"
expect_grep "statements [0-9]* -> [0-9]*, operations" "$work/out" "prints the sizes"
expect_rc 0 "the minimal drill parses" "$fd" check "$work/a.drill"
expect_rc 1 "the minimal drill still fails, with its own seed" "$fd" run "$work/a.drill" --out "$work/o"
expect_grep "expected no-lost-acks to hold" "$work/out" "... the same invariant"
if [ "$(statements "$work/a.drill")" -lt "$(statements "$early")" ]; then ok; else
    bad "the minimal drill is not smaller: $(statements "$work/a.drill") statements"
fi
if grep -q "stock-conserved\|^at .*drain" "$work/a.drill"; then
    bad "what the failure does not need is still there"
    cat "$work/a.drill"
else ok; fi
(cd "$work" && "$fd" shrink "$early" --seed 3 >/dev/null 2>&1)
if cmp -s "$work/a.drill" "$work/early-ack-loses.min.drill"; then ok; else
    bad "shrinking twice gave two drills (or the default name is not <name>.min.drill)"
fi

# a demonstration: every expectation met, the violation it expects is kept
sed 's/^expect no-lost-acks$/expect no-lost-acks violated/' "$early" >"$work/demo.drill"
expect_rc 0 "the demonstration passes" "$fd" run "$work/demo.drill" --seed 3 --out "$work/o"
expect_rc 0 "shrink a demonstration" "$fd" shrink "$work/demo.drill" --seed 3 -o "$work/d.drill"
expect_grep "the violation the drill demonstrates" "$work/out" "says it kept the demonstrated violation"
expect_rc 0 "the shrunk demonstration still passes" "$fd" run "$work/d.drill" --out "$work/o"
expect_grep "^expect no-lost-acks violated" "$work/d.drill" "... keeping its expectation"

# moving lines earlier can take one past lines above it: the minimal drill is
# still a timeline in time order (here the checkout, written first, must stay
# after the cart-add, while the cart-add and the fault move to 0s)
cat >"$work/order.drill" <<'EOF_DRILL'
drill "Shrink keeps time order"
topology mirror ack=early
duration 2s
products 2 stock=10 price=1..20
users 1
workload idle clients=1 rate=1/s mix=browse:1 until=10ms
at 1500ms op checkout client=client1
at 900ms  op cart-add client=client1 product=1 qty=1
at 300ms  fault disk/mirror/write
expect no-lost-acks
EOF_DRILL
expect_rc 0 "shrink a drill whose lines end up out of order" "$fd" shrink "$work/order.drill" --seed 1 -o "$work/order.min.drill"
expect_rc 0 "its minimal drill passes check" "$fd" check "$work/order.min.drill"
expect_rc 1 "... and still fails" "$fd" run "$work/order.min.drill" --out "$work/o"
expect_grep "expected no-lost-acks to hold" "$work/out" "... the same invariant"
times=$(awk '/^at /{t=$2; v=t+0; if (t ~ /us$/) v/=1000; else if (t ~ /ms$/) v+=0; else v*=1000; print v}' "$work/order.min.drill")
if [ "$(echo "$times" | wc -l)" -ge 3 ] && [ "$times" = "$(echo "$times" | sort -n)" ]; then ok; else
    bad "the minimal drill's timeline is not in time order"
    cat "$work/order.min.drill"
fi
if [ "$(grep '^at ' "$work/order.min.drill" | tail -1 | grep -c checkout)" = 1 ]; then ok; else
    bad "the checkout is no longer the last line of the timeline"
    cat "$work/order.min.drill"
fi

# nothing to shrink: exit 2
expect_rc 2 "shrink of a seed that meets everything" "$fd" shrink "$drills/quick.drill" --seed 1
expect_grep "nothing to shrink" "$work/err" "says why"

echo "shrink_test: $passed passed, $failed failed"
[ "$failed" = 0 ]
