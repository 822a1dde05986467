#!/usr/bin/env bash
# install_test.sh — `make install` (CMake's install) into a staging directory
# (DESTDIR, prefix /opt/faultdrill): the binary, the front end, the drill
# catalog and the docs land where the README says; the installed binary
# runs, checks the installed catalog, and serves the installed front end
# (not the source tree's: a marker added to the installed copy must show).
#
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

BUILD=$1
SRC=$2
CASE=install
FD=/nonexistent # set below, once installed
. "$SRC/tests/serve/lib.sh"

STAGE=$WORK/stage
PREFIX=/opt/faultdrill
DESTDIR=$STAGE cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" 2>&1 ||
    fail "cmake --install failed: $(tail -5 "$WORK/install.log")"
ROOT=$STAGE$PREFIX

FD=$ROOT/bin/faultdrill
[ -x "$FD" ] || fail "no executable $PREFIX/bin/faultdrill"
for f in index.html app.js style.css; do
    cmp -s "$SRC/platform/web/$f" "$ROOT/share/faultdrill/web/$f" ||
        fail "share/faultdrill/web/$f is not the source tree's"
done
want=$(find "$SRC/scenarios" -name '*.drill' | wc -l)
got=$(find "$ROOT/share/faultdrill/scenarios" -name '*.drill' | wc -l)
[ "$want" -gt 0 ] && [ "$got" = "$want" ] || fail "$got of $want drills installed"
[ -f "$ROOT/share/doc/faultdrill/README.md" ] || fail "no share/doc/faultdrill/README.md"

"$FD" --help >"$WORK/help" 2>&1 || fail "installed faultdrill --help failed"
grep -q '^usage: faultdrill' "$WORK/help" || fail "unexpected --help: $(head -3 "$WORK/help")"
"$FD" check "$ROOT/share/faultdrill/scenarios" >"$WORK/check" 2>&1 ||
    fail "installed faultdrill check of the installed catalog failed: $(tail -5 "$WORK/check")"

# The installed server serves the installed front end.
marker="installed-copy-$$"
echo "<!-- $marker -->" >>"$ROOT/share/faultdrill/web/index.html"
start_server "$WORK/data"
grep -q 'no front end' "$LOG" && fail "the installed serve found no front end: $(cat "$LOG")"
expect 200 GET /
grep -q "$marker" "$WORK/body" || fail "GET / is not the installed index.html"
expect 200 GET /app.js
stop_server
echo "PASS [install]: $(find "$ROOT" -type f | wc -l) files under $PREFIX"
