#!/usr/bin/env bash
# Installs what is needed, builds keywarden three times (ASan+UBSan, TSan
# for the threaded tests, then a normal build with warnings as errors) and
# runs the whole test suite under ASan+UBSan and in the normal build, fuzz
# corpora included. One line per step; apt, compiler and ctest output
# go to build-logs/test.log and are shown only when a step fails. Output
# ends with ctest's summary of the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/steps.sh
JOBS=$(nproc)

# ctest's output is kept in the log; its summary (and, on failure, the
# failed tests with their output) is printed, so the run ends as ctest does.
run_ctest() {
  local dir=$1 out rc=0
  shift
  out=$(mktemp)
  ctest --test-dir "$dir" -j"$JOBS" --output-on-failure --no-label-summary "$@" >"$out" 2>&1 || rc=$?
  cat "$out" >>"$KW_LOG"
  if [ "$rc" -eq 0 ]; then
    echo "ok"
    sed -n '/tests passed/,$p' "$out"
  else
    echo "FAILED (full log: $KW_LOG)"
    cat "$out"
  fi
  rm -f "$out"
  return "$rc"
}

step "packages (scripts/setup.sh)" scripts/setup.sh
step "build ASan+UBSan (build-asan)" bash -c "cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKW_SANITIZE=ON -DKW_WERROR=ON && cmake --build build-asan -j$JOBS"
printf 'test ASan+UBSan (ctest, without label slow) ... '
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest build-asan --label-exclude slow
# The threads that share state (packet workers and judge, their stats
# snapshots, the signal flags, the database writer, alert delivery) under
# ThreadSanitizer, in the tests that run them: with workers, live, through
# a reload, scraped by Prometheus. ASan and TSan cannot share a build.
step "build TSan (build-tsan)" bash -c "cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DKW_TSAN=ON && cmake --build build-tsan -j$JOBS"
printf 'test TSan (ctest, the threaded tests) ... '
TSAN_OPTIONS=halt_on_error=1 \
  run_ctest build-tsan -R '^(test_base|test_alerts|test_audit|e2e_workers|e2e_fanout|e2e_live_lo|e2e_reload|ops_metrics)$'
step "build release -Werror (build)" bash -c "cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKW_WERROR=ON && cmake --build build -j$JOBS"
printf 'test release (ctest, everything) ... '
run_ctest build
