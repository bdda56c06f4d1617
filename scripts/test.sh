#!/usr/bin/env bash
# Installs what is missing (Debian packages, the npm test servers), then
# builds weir three times and runs its tests in each, with no retries:
#   1. $WEIR_BUILD_DIR (RelWithDebInfo): every test, including the install
#      test;
#   2. $WEIR_BUILD_DIR-asan (AddressSanitizer + UndefinedBehaviorSanitizer):
#      every unit and integration test;
#   3. $WEIR_BUILD_DIR-tsan (ThreadSanitizer): the threaded parts, ctest
#      label "tsan" (only their targets are built).
# The libFuzzer targets run first (scripts/fuzz.sh). A sanitizer finding
# fails the test that made it, also in a child process the test started
# (the service, the tools). The last lines printed are a ctest summary.
# Usage: scripts/test.sh [ctest args...]   (passed to every ctest run)
#   WEIR_BUILD_DIR    build folder                  (default: build)
#   WEIR_SANITIZE     which sanitizer builds to run (default: "asan tsan";
#                     "" runs only the plain build)
#   WEIR_FUZZ_SECONDS time per libFuzzer target     (default: 20; 0 skips)
#   WEIR_SOAK_SCALE   size of soak and crash runs   (default: 1, the short
#                     form CI runs; larger runs longer)
# Set CI=1 to make a test whose real part is missing (s3rver, redis-server,
# sqlite3, a tool of the build) fail instead of skip.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
weir_install_deps
root=$(pwd)
build_dir=${WEIR_BUILD_DIR:-build}
sanitize=${WEIR_SANITIZE-asan tsan}
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
ctest_args=(-j2 --output-on-failure --timeout 900 "$@")

# Every build keeps line tables only (-g1): stacks still name file and
# line, and the compiler spends a quarter less time than with -g.
# Sanitizer builds: the library, tools and service at -O1; the tests' own
# sources at -O0, which compile in a third of their instrumented time at
# -O1 (docs/testing.md, "Time").
configure_sanitized() {  # build_dir sanitizers
  cmake -S . -B "$1" -G Ninja "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DWEIR_TEST_COMPILE_OPTIONS=-O0 \
    -DWEIR_SANITIZE="$2" -DWEIR_BUILD_BENCH=OFF
}
# Prints how long the run has taken so far, after each step.
step_done() { echo "== scripts/test.sh: $1 done at ${SECONDS} s"; }
supp=$root/tests/sanitizers
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:strict_init_order=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:suppressions=$supp/tsan.supp:print_suppressions=0"

step_done "installing what is missing"
cmake -S . -B "$build_dir" -G Ninja "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
cmake --build "$build_dir" -j "$(nproc)"
step_done "plain build"
# The fuzzers build separately with clang (only the decoders' sources).
fuzz_seconds=${WEIR_FUZZ_SECONDS:-20}
if [ "$fuzz_seconds" != "0" ]; then
  WEIR_FUZZ_BUILD_DIR="$build_dir-fuzz" bash scripts/fuzz.sh "$fuzz_seconds"
  step_done "fuzzing"
fi
if [[ " $sanitize " == *" tsan "* ]]; then
  configure_sanitized "$build_dir-tsan" thread
  cmake --build "$build_dir-tsan" -j "$(nproc)" --target tsan_tests
  step_done "TSan build"
  # The consumer-group churn test runs in the plain and ASan builds, not
  # here: slowed by ThreadSanitizer, it can trip an assertion inside
  # librdkafka 2.0.2's mock cluster (the broker process, not weir);
  # docs/testing.md, "Known gaps".
  (cd "$build_dir-tsan" &&
    ctest -L tsan -E 'KafkaSourceChurnTest' "${ctest_args[@]}")
  step_done "TSan tests"
fi
if [[ " $sanitize " == *" asan "* ]]; then
  configure_sanitized "$build_dir-asan" address,undefined
  cmake --build "$build_dir-asan" -j "$(nproc)"
  step_done "ASan+UBSan build"
  # The install test builds an unsanitized consumer: plain build only.
  # The two random-kill soaks (30 restarts of the service each, a fifth of
  # the ASan tests' time) run in the plain build; here the kill-point tests
  # and the Redis soak take the service through its restore paths
  # (docs/testing.md, "Time").
  (cd "$build_dir-asan" &&
    ctest -E '^install$|^CrashSoakTest\.RandomKills' "${ctest_args[@]}")
  step_done "ASan+UBSan tests"
fi
# A failing test fails the run: no reruns. scripts/stress.sh runs the
# integration tests repeatedly under CPU load to find the flaky ones.
cd "$build_dir"
ctest "${ctest_args[@]}"
