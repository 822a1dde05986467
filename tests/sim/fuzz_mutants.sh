#!/usr/bin/env bash
# How many generated drills `faultdrill fuzz` needs to find each planted bug
# (platform/mutants.h): for each mutant, `fuzz --first --jobs 1` with one
# seed, and the number of the first failing drill. First the same fuzz with
# no mutant: a failure there would be the platform's or the bench's, not the
# mutant's, and is printed; a mutant found at or past that drill, or whose
# first failure is a crash of the simulator, is marked † (not its own
# finding for sure). Prints a Markdown table (the README's). A figure
# printer, not a test: a mutant fuzz does not find within RUNS is "not found".
# usage: fuzz_mutants.sh FAULTDRILL MUTANT_LIST [SEED [RUNS]]
#   FAULTDRILL from a mutant build (cmake -DFAULTDRILL_MUTANTS=ON)
set -u
fd=$1
list=$2
seed=${3:-7}
runs=${4:-3000}
work=$(mktemp -d /tmp/faultdrill-fuzz-mutants-XXXXXX)
trap 'rm -rf "$work"' EXIT

first() { # first MUTANT: "N SIGNATURE" or "-"
    FAULTDRILL_MUTANT=$1 "$fd" fuzz --first --runs "$runs" --seed "$seed" --jobs 1 \
        --out "$work/$1" >"$work/$1.txt" 2>&1
    jq -r 'if .first_failing_drill == null then "-" else
           "\(.first_failing_drill) \(.findings | min_by(.drills[0]) | .signature)" end' \
        "$work/$1/fuzz.json" 2>/dev/null || echo "- (fuzz did not run: $(tail -1 "$work/$1.txt"))"
}

base=$(first none)
base_n=
if [[ $base != -* ]]; then
    base_n=${base%% *}
    echo "without a mutant, drill ${base%% *} fails already: ${base#* }"
fi
echo "fuzz --seed $seed --jobs 1 --first, at most $runs drills per mutant"
echo
echo "| mutant | drills to find it | what failed first |"
echo "|---|---|---|"
while IFS=$'\t' read -r name _; do
    t0=$(date +%s)
    r=$(first "$name")
    t1=$(date +%s)
    if [[ $r == -* ]]; then
        echo "| \`$name\` | not in $runs | ${r#-} |"
    else
        n=${r%% *}
        mark=
        if { [ -n "$base_n" ] && [ "$n" -ge "$base_n" ]; } || [[ $r == *"could not run"* ]]; then
            mark=†
        fi
        echo "| \`$name\` | $((n + 1))$mark | ${r#* } |"
    fi
    echo "$name: $r ($((t1 - t0)) s)" >&2
done < <("$list")
