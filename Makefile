# Thin wrapper over CMake. `make test` works on a fresh Debian machine:
# it installs what is missing, configures, builds and runs the suite.
#
#   make deps       install the Debian packages the build needs (apt-get)
#   make build      configure and build into build/
#   make run        deps + build + run the drill catalog (scenarios/), reports in faultdrill-out/
#   make test       deps + build + ctest
#   make asan       the same suite under AddressSanitizer + UBSan (build-asan/)
#   make bench      the benchmarks (figures, not pass/fail); BENCH_OLD=path/to/an/older/bench_sim
#                   measures the simulator against that build side by side
#   make fuzz       the libFuzzer targets (clang, build-fuzz/), FUZZ_SECONDS each (default 60)
#   make mutants    the checkers' mutation score: the catalog against each planted bug (build-mutants/)
#   make serve      deps + build + the live shop on http://127.0.0.1:3002/ (SERVE_ARGS=...)
#   make install    deps + build + install: PREFIX/bin/faultdrill, PREFIX/share/faultdrill/{web,scenarios},
#                   PREFIX/share/doc/faultdrill (PREFIX=/usr/local; DESTDIR=... for a staging dir)
#   make clean

# what building and the C tests need (the sweep CI workflow installs only these:
# `make build PACKAGES='$(BUILD_PACKAGES)'`)
BUILD_PACKAGES := build-essential cmake pkg-config libfiu-dev fiu-utils libsqlite3-dev \
                  libcjson-dev libcivetweb-dev check libsubunit-dev nettle-dev libcurl4-openssl-dev
PACKAGES := $(BUILD_PACKAGES)
# the browser end-to-end test (tests/web): headless chromium driven from node; npm only
# when none is on PATH (NodeSource's nodejs bundles one and conflicts with Debian's npm)
PACKAGES += chromium nodejs $(if $(shell command -v npm),,npm)
# faultdrill serve's HTTP tests (tests/serve) and its benchmark (tests/bench/bench_serve.sh)
PACKAGES += curl jq wrk sqlite3
# the fuzz targets (tests/fuzz, `make fuzz`): libFuzzer comes with clang's runtime
PACKAGES += clang-14 libclang-rt-14-dev
FUZZ_SECONDS ?= 60
# the test of the CI and Kubernetes files (tests/ci) parses their YAML
PACKAGES += python3 python3-yaml
BUILD    ?= build
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build run test asan bench fuzz mutants serve live install clean
PREFIX   ?= /usr/local

deps:
	@missing=$$(for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/sim/faultdrill run scenarios --out faultdrill-out --junit faultdrill-out/junit.xml

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFAULTDRILL_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

# The checkers' mutation score: a build with the planted bugs of platform/mutants.h
# compiled in, the catalog run against each (tests/mutants/run.sh).
mutants: deps
	cmake -S . -B build-mutants -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAULTDRILL_MUTANTS=ON
	cmake --build build-mutants -j $(JOBS) --target faultdrill mutant_list
	tests/mutants/run.sh build-mutants/sim/faultdrill build-mutants/tests/mutants/mutant_list
	cd build-mutants && ctest -R '^mutant_' --output-on-failure -j $(JOBS)

bench: build
	$(BUILD)/tests/bench/bench_checkout
	$(BUILD)/tests/bench/bench_sim $(if $(BENCH_OLD),--old $(BENCH_OLD))
	$(BUILD)/tests/bench/bench_checkers
	tests/bench/bench_serve.sh $(BUILD)/sim/faultdrill
	tests/bench/bench_nodes.sh $(BUILD)/sim/faultdrill
	tests/bench/bench_scale.sh $(BUILD)/sim/faultdrill
	tests/bench/bench_live.sh $(BUILD)/sim/faultdrill

# the live catalog: every scenario check --live accepts, simulated and live,
# verdicts compared (tests/live/catalog.sh); about 10 s of real time per drill
live: build
	tests/live/catalog.sh $(BUILD)/sim/faultdrill

fuzz: deps
	CC=clang-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DFAULTDRILL_FUZZ=ON \
	  -DFUZZ_SECONDS=$(FUZZ_SECONDS)
	cmake --build build-fuzz -j $(JOBS) --target fuzz_http fuzz_drill
	cd build-fuzz && ctest --output-on-failure -V -L fuzz

serve: build
	$(BUILD)/sim/faultdrill serve $(SERVE_ARGS)

install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

clean:
	rm -rf build build-asan build-fuzz build-mutants
