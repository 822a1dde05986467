#!/bin/sh
# run.sh SERVER WEB_DIR OUT_DIR [e2e.js options...]
# run.sh --report FAULTDRILL OUT_DIR        (report.html at 1,000 and 20,000 operations)
#
# The browser end-to-end test of the shop page, as CTest runs it: checks that
# node and chromium are there (fails, never skips, when they are not: CI
# installs them with `make deps`), installs the pinned playwright-core into
# OUT_DIR/npm once (npm registry; never into the source tree), then runs
# e2e.js against SERVER (`faultdrill serve`), or the mock with SERVER=--mock.
set -eu

if [ $# -lt 3 ]; then
    echo "usage: $0 SERVER|--mock WEB_DIR OUT_DIR [--faults] [--headed]" >&2
    exit 2
fi
server=$1 web=$2 out=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)

# 1.61 is the last release that runs on Debian 12's nodejs 18 (1.62 wants node >= 20).
PLAYWRIGHT_VERSION=1.61.1
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export CHROMIUM

missing=""
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -x "$CHROMIUM" ] || missing="$missing chromium"
if [ -n "$missing" ]; then
    echo "FAIL: the browser test needs:$missing (not found; chromium looked for at $CHROMIUM)." >&2
    echo "      Install them with: apt-get install -y chromium nodejs npm   (or: make deps)" >&2
    exit 1
fi

mkdir -p "$out"
cache=$out/npm
have_version() {
    node -e "process.stdout.write(require(process.argv[1]).version)" \
        "$cache/node_modules/playwright-core/package.json" 2>/dev/null || true
}
install_playwright() {
    if [ "$(have_version)" != "$PLAYWRIGHT_VERSION" ]; then
        echo "installing playwright-core@$PLAYWRIGHT_VERSION into $cache"
        mkdir -p "$cache"
        npm install --prefix "$cache" --no-save --no-package-lock --no-audit --no-fund \
            --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION" >&2
    fi
}
# Two tests may start at once (ctest -j): one installs, the other waits.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$out/.npm.lock"
    flock 9
    install_playwright
    flock -u 9
else
    install_playwright
fi
if [ "$(have_version)" != "$PLAYWRIGHT_VERSION" ]; then
    echo "FAIL: could not install playwright-core@$PLAYWRIGHT_VERSION into $cache (is the npm registry reachable?)" >&2
    exit 1
fi

export NODE_PATH="$cache/node_modules"
if [ "$server" = "--report" ]; then
    # run.sh --report FAULTDRILL OUT_DIR: report.html in the browser (report.js), its
    # screenshots into OUT_DIR/report/
    exec node "$here/report.js" --faultdrill "$web" --drills "$here/drills" --out "$out/report" \
        --chromium "$CHROMIUM" "$@"
fi
if [ "$server" = "--mock" ]; then
    exec node "$here/e2e.js" --mock --web "$web" --out "$out" --chromium "$CHROMIUM" "$@"
fi
exec node "$here/e2e.js" --server "$server" --web "$web" --out "$out" --chromium "$CHROMIUM" "$@"
