#!/usr/bin/env bash
# Builds tmsplan with AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer into
# ${BUILD_DIR:-build-asan} (RelWithDebInfo, ccache), makes the sample heads with the instrumented
# make-samples, then runs the tests. Any sanitizer report fails the run, including reports from the
# tools that tests start as child processes (they write to log files that are checked at the end,
# since a bad-input test expects exit code 1 and a single stderr line and could not tell).
#
#   scripts/dev/sanitize.sh                            # the whole suite once, regression test included
#   CTEST_ARGS="-L sanitize" scripts/dev/sanitize.sh   # unit tests + bad-input catalogues, half the time
#   CTEST_ARGS="-L sanitize -R navigator" scripts/dev/sanitize.sh
#
# The "sanitize" label is given by tests/CMakeLists.txt in sanitizer builds to a second listing of
# the Catch tests tagged [unit], [cli], [reliability], [targets] or [plan] (not [data]); the plain
# listing holds every test.
# No LeakSanitizer suppressions are needed (ITK/GDCM report no leaks in these runs). Measured build
# and test times: docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

export BUILD_DIR=${BUILD_DIR:-build-asan}
export BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
export CMAKE_EXTRA_ARGS="-DTMSPLAN_SANITIZE=ON ${CMAKE_EXTRA_ARGS:-}"
CTEST_ARGS=${CTEST_ARGS--LE sanitize}

t0=$(date +%s)
scripts/setup.sh
t1=$(date +%s)
echo "sanitize: build $((t1 - t0)) s" >&2

LOG_DIR="$ROOT/$BUILD_DIR/sanitizer-logs"
rm -rf "$LOG_DIR"
mkdir -p "$LOG_DIR"
# exitcode 86: a sanitizer abort must not look like a tool's ordinary failure (exit 1).
export ASAN_OPTIONS="detect_leaks=1:exitcode=86:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$LOG_DIR/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87:log_path=$LOG_DIR/ubsan"

status=0
"$BUILD_DIR/bin/make-samples" --out "$BUILD_DIR/samples" --quiet || status=$?
t2=$(date +%s)
echo "sanitize: make-samples $((t2 - t1)) s" >&2
if ((status == 0)); then
  (cd "$BUILD_DIR" && ctest --output-on-failure -j "$(nproc)" $CTEST_ARGS) || status=$?
fi
t3=$(date +%s)
echo "sanitize: ctest $((t3 - t2)) s" >&2

reports=$(find "$LOG_DIR" -type f -size +0c | sort)
if [ -n "$reports" ]; then
  echo "sanitize: sanitizer reports:" >&2
  for f in $reports; do
    echo "==== $f" >&2
    cat "$f" >&2
  done
  status=1
fi
if ((status != 0)); then
  echo "sanitize: FAILED" >&2
  exit 1
fi
echo "sanitize: clean (build $((t1 - t0)) s, make-samples $((t2 - t1)) s, tests $((t3 - t2)) s)" >&2
