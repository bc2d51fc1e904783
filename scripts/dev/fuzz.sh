#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, -fsanitize=fuzzer,address,undefined) into
# ${BUILD_DIR:-build-fuzz} and runs each for SECONDS (default 60) on a scratch copy of its seed
# corpus (tests/fuzz/corpus/<target>/, the current data/protocols.json, safety_limits.json and
# targets.json for the JSON readers, plus ../shared/data/nnav samples for the navigator readers
# when present), so the repository's corpus is not grown. Prints a table (target, executions,
# exec/s, findings) and exits 1 when any target found something (crash, escaped exception other
# than tmsplan::Error, leak, timeout > 10 s, memory > 2 GB, undefined behaviour).
# Findings are kept in $BUILD_DIR/fuzz-run/<target>/ (crash-*, leak-*, timeout-*, oom-*) with the
# log; replay one with: $BUILD_DIR/fuzz/fuzz_<target> <file>.
#
#   scripts/dev/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-60}
shift || true

export BUILD_DIR=${BUILD_DIR:-build-fuzz}
export BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
export TMSPLAN_EXTRA_PACKAGES="clang libclang-rt-14-dev ${TMSPLAN_EXTRA_PACKAGES:-}"
export CMAKE_EXTRA_ARGS="-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DTMSPLAN_FUZZ=ON -DBUILD_TESTING=OFF ${CMAKE_EXTRA_ARGS:-}"
t0=$(date +%s)
scripts/setup.sh
echo "fuzz: build $(($(date +%s) - t0)) s" >&2

if (($#)); then
  targets=("$@")
else
  targets=()
  for f in tests/fuzz/fuzz_*.cpp; do
    n=$(basename "$f" .cpp)
    targets+=("${n#fuzz_}")
  done
fi

RUN="$ROOT/$BUILD_DIR/fuzz-run"
rm -rf "$RUN"
mkdir -p "$RUN"
# Leaks are findings; a sanitizer report aborts (the target's exit code is then non-zero).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

rows=()
failed=0
for t in "${targets[@]}"; do
  bin="$ROOT/$BUILD_DIR/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: no target $t ($bin)" >&2; exit 2; }
  work="$RUN/$t"
  mkdir -p "$work/corpus"
  [ -d "tests/fuzz/corpus/$t" ] && cp -r "tests/fuzz/corpus/$t/." "$work/corpus/"
  # The data files these readers read in use, as they are now (the corpus keeps no copies to go stale).
  case $t in
    protocol) cp data/protocols.json "$work/corpus/presets.json" && cp data/safety_limits.json "$work/corpus/" ;;
    targets_library) cp data/targets.json "$work/corpus/" ;;
  esac
  if [ "$t" = ccd ] && [ -d ../shared/data/coils ]; then
    # The validated coil models (SimNIBS, GPL-3), cut to their header and first 30 dipoles so that
    # inputs stay small: used in place, never copied into the repo.
    for f in ../shared/data/coils/*.ccd; do
      { sed -n '1p' "$f"; echo 30; sed -n '3,33p' "$f"; } > "$work/corpus/shared-$(basename "$f")"
    done
  fi
  if [ "$t" = navigators ] && [ -d ../shared/data/nnav ]; then
    # Real navigator exports (SimNIBS test files, GPL-3): used in place, never copied into the repo.
    find ../shared/data/nnav -type f ! -name 'LICENSE*' -size -64k -print0 |
      while IFS= read -r -d '' f; do cp "$f" "$work/corpus/nnav-$(basename "$f")"; done
  fi
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$work/")
  [ -f "$ROOT/tests/fuzz/$t.dict" ] && args+=(-dict="$ROOT/tests/fuzz/$t.dict")
  echo "fuzz: $t for $SECONDS_PER_TARGET s" >&2
  rc=0
  (cd "$work" && timeout $((SECONDS_PER_TARGET + 120)) "$bin" "${args[@]}" "$work/corpus" >"$work/log" 2>&1) || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
  findings=$(find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  if ((rc != 0 && findings == 0)); then findings=1; fi  # died without an artifact (e.g. killed by timeout)
  if ((findings)); then
    failed=1
    echo "fuzz: $t: FINDING (exit $rc); log $work/log" >&2
    grep -E "^(==[0-9]+==ERROR|SUMMARY|FUZZ FINDING|.*runtime error)" "$work/log" | head -5 >&2 || true
  fi
  rows+=("$(printf '%-18s %12s %8s %9s' "$t" "${execs:-?}" "${speed:-?}" "$findings")")
done

printf '%-18s %12s %8s %9s\n' target executions exec/s findings
printf '%s\n' "${rows[@]}"
exit "$failed"
