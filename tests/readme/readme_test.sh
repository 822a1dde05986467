#!/usr/bin/env bash
# readme_test.sh — the README's claims that a program can check, checked
# against the program and the tree (issue 14: "the README has no claim a test
# does not check"):
#   - the commands the "Not built yet" paragraph names are the ones
#     `faultdrill --help` ends with, and each is a clear error (exit 3, "not
#     built yet");
#   - the commands of "The CLI" are the commands of `faultdrill --help`, each
#     with a --help of its own, and every `faultdrill COMMAND` the README
#     shows is one of them;
#   - the drill catalog's table lists exactly scenarios/*.drill, and every
#     drill "For teachers" names exists;
#   - every path the Layout names exists, and every top-level directory of
#     the tree is in it.
# New commands and directories are found, not listed here: adding one fails
# this test until the README says what it is.
#
#   readme_test.sh FAULTDRILL SOURCE_DIR
set -uo pipefail

FD=$1
SRC=$2
README=$SRC/README.md
failed=0
checked=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { checked=$((checked + 1)); }

# The lines of a README section: from its heading to the next of its level.
section() { # section '## The CLI'
    awk -v h="$1" 'index($0, h) == 1 { p = 1; print; next }
                   p && /^## / { exit } p { print }' "$README"
}

# ---- Not built yet ------------------------------------------------------------
help=$("$FD" --help 2>&1) || fail "faultdrill --help failed"
help_nb=$(printf '%s\n' "$help" | tr '\n' ' ' | sed -n 's/.*Not built yet: *\([^.]*\)\..*/\1/p' |
    tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep -v '^$' | sort -u)
# the commands the README's Not built yet paragraph names ("the command `x`",
# "the commands `x` and `y`"); other parts it may list are not commands
readme_nb=$(awk '/^\*\*Not built yet\*\*/ { p = 1 } p && /^$/ { exit } p { print }' "$README" |
    tr '\n' ' ' | grep -o 'the commands\? [^.;:]*' | grep -o '`[a-z][a-z-]*`' | tr -d '`' | sort -u)
if [ "$help_nb" != "$readme_nb" ]; then
    fail "README's Not built yet list ($(echo $readme_nb)) is not --help's ($(echo $help_nb)): edit the **Not built yet** paragraph"
else
    ok
fi
for c in $help_nb; do
    out=$("$FD" "$c" 2>&1)
    rc=$?
    if [ "$rc" = 3 ] && grep -qi "not built yet" <<<"$out"; then ok; else
        fail "faultdrill $c, listed as not built, exits $rc: $out"
    fi
done

# ---- The CLI ------------------------------------------------------------------
help_cmds=$(printf '%s\n' "$help" | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p; s/^  \([a-z][a-z-]*\)$/\1/p' | sort -u)
[ -n "$help_cmds" ] || fail "no commands found in faultdrill --help"
cli_cmds=$(section '## The CLI' | awk '/^```/ { n++; next } n == 1' |
    grep -o 'faultdrill [a-z][a-z-]*' | awk '{ print $2 }' | sort -u)
for c in $help_cmds; do
    if grep -qx "$c" <<<"$cli_cmds"; then ok; else
        fail "faultdrill $c is in --help but not in the README's CLI section (add its usage line to the block under ## The CLI)"
    fi
    if "$FD" "$c" --help >/dev/null 2>&1; then ok; else fail "faultdrill $c --help fails"; fi
done
for c in $cli_cmds; do
    if grep -qx "$c" <<<"$help_cmds"; then ok; else
        fail "the README's CLI section shows faultdrill $c, which --help does not list"
    fi
done
# every `faultdrill COMMAND` the README shows, in code or in backquotes
shown=$( (awk '/^```/ { c = !c; next } c' "$README" | grep -o '^ *\(build/sim/\)\?faultdrill [a-z][a-z-]*'
    grep -o '`\(build/sim/\)\?faultdrill [a-z][a-z-]*' "$README") |
    sed 's/.*faultdrill //' | sort -u)
for c in $shown; do
    if grep -qx "$c" <<<"$help_cmds" || grep -qx "$c" <<<"$help_nb"; then ok; else
        fail "the README shows faultdrill $c, which is no command"
    fi
done

# ---- The drill catalog and For teachers ---------------------------------------
table=$(section '## The drill catalog' | sed -n 's/^| `\([a-z0-9-]*\)` |.*/\1/p' | sort -u)
tree=$(cd "$SRC/scenarios" && ls *.drill | sed 's/\.drill$//' | sort -u)
if [ "$table" = "$tree" ]; then ok; else
    fail "the catalog table and scenarios/ differ: $(diff <(echo "$table") <(echo "$tree") | grep '^[<>]' | tr '\n' ' ')"
fi
for d in $(section '## For teachers' | grep '^| [0-9]' | cut -d'|' -f3 | grep -o '`[a-z0-9-]*`' | tr -d '`'); do
    if [ -f "$SRC/scenarios/$d.drill" ]; then ok; else fail "For teachers names $d, not in scenarios/"; fi
done

# ---- Layout -------------------------------------------------------------------
layout=$(section '## Layout' | awk '/^```/ { n++; next } n == 1')
[ -n "$layout" ] || fail "no Layout block"
top=""
while IFS= read -r line; do
    case "$line" in
    "" | "    "*) continue ;; # a description's continuation
    "  "*)
        name=$(awk '{ print $1 }' <<<"$line")
        [ -n "$top" ] || { fail "Layout: $name under no directory"; continue; }
        if [ -e "$SRC/$top$name" ]; then ok; else fail "Layout names $top$name, which does not exist"; fi
        ;;
    *)
        top=$(awk '{ print $1 }' <<<"$line")
        if [ -e "$SRC/$top" ]; then ok; else fail "Layout names $top, which does not exist"; fi
        ;;
    esac
done <<<"$layout"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    dirs=$(git -C "$SRC" ls-files | grep / | cut -d/ -f1 | sort -u)
else
    dirs=$(cd "$SRC" && find . -mindepth 1 -maxdepth 1 -type d ! -name 'build*' ! -name .git |
        sed 's|^\./||' | sort -u)
fi
for d in $dirs; do
    if grep -q "^$d/" <<<"$layout"; then ok; else
        fail "top-level directory $d/ is not in the README's Layout (add a line '$d/   what it holds')"
    fi
done

echo "readme_truth: $checked claims checked, $failed wrong"
[ "$failed" = 0 ]
