#!/usr/bin/env bash
# tests/mutants/readme_rows.sh MUTANT_LIST README
#
# The README's mutant table stays true: every planted bug of
# platform/mutants.h has its row ("| `name` | ..."), and every row names a
# planted bug. Runs in every build (mutant_list needs no mutant build).
set -uo pipefail
list=$1
readme=$2
planted=$("$list" | cut -f1 | sort)
rows=$(sed -n '/^| mutant | the bug | caught by |$/,/^$/p' "$readme" |
       sed -n 's/^| `\([a-z0-9-]*\)` |.*/\1/p' | sort)
if [ -z "$planted" ] || [ -z "$rows" ]; then
    echo "readme_rows: no planted bugs or no table rows found"
    exit 1
fi
if [ "$planted" != "$rows" ]; then
    echo "readme_rows: the README's mutant table and platform/mutants.h differ:"
    diff <(echo "$planted") <(echo "$rows") | sed -n "s/^</  planted, no row:/p; s/^>/  row, not planted:/p"
    exit 1
fi
echo "readme_rows: $(echo "$planted" | wc -l) mutants, one row each"
