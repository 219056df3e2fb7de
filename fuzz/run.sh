#!/bin/sh
# Runs every libFuzzer target for SECONDS each (default 180), one after the
# other, starting from its seed corpus. Build first:
#   CC=clang cmake -S . -B build-fuzz -DKW_SANITIZE=ON -DKW_LIBFUZZER=ON
#   cmake --build build-fuzz --target <fuzz targets>
# New inputs go to build-fuzz/fuzz-work/<target>/ (the seeds in fuzz/corpus
# are only read); crashes to build-fuzz/fuzz-work/artifacts/. A crash stops
# that target; the script goes on and exits 1 at the end if any crashed.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${KW_FUZZ_BUILD:-$here/build-fuzz}/fuzz
secs=${1:-180}
[ $# -gt 0 ] && shift
targets=${*:-$(ls "$here/fuzz/corpus")}
work=$bin/../fuzz-work
mkdir -p "$work/artifacts"
rc=0
for t in $targets; do
    mkdir -p "$work/$t"
    echo "== $t ($secs s)"
    # A known leak inside Debian's libfyaml (see fuzz/libfyaml.supp) would stop
    # fuzz_rules within minutes; suppress it there and nowhere else.
    supp=
    [ "$t" = fuzz_rules ] && supp="suppressions=$here/fuzz/libfyaml.supp"
    if ! LSAN_OPTIONS="${LSAN_OPTIONS:-}${LSAN_OPTIONS:+:}$supp" nice -n "${KW_FUZZ_NICE:-10}" "$bin/$t" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 \
        -artifact_prefix="$work/artifacts/$t-" "$work/$t" "$here/fuzz/corpus/$t" \
        >"$work/$t.log" 2>&1; then
        echo "   CRASH: see $work/$t.log"
        rc=1
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|cov: " "$work/$t.log" | tail -3
done
exit $rc
