#!/usr/bin/env bash
# bench/tls.sh: keywarden's full path over TLS (decrypting with the key log)
# against the same simulated world in clear: `kwsim gen --world company.yaml
# --seed 1` with and without --tls, `keywarden run` on each, RUNS rounds
# (median and min-max of wall time). Prints the table of
# docs/performance.md "TLS". Usage: bench/tls.sh [RUNS] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
B=${2:-build}
W=tests/sim/worlds/company.yaml
out=/tmp/kw-bench-tls
mkdir -p "$out"
for mode in clear tls; do
    d="$out/$mode"
    if [ ! -f "$d/capture.pcap" ]; then
        extra=""
        [ "$mode" = tls ] && extra="--tls"
        "$B/kwsim" gen --world "$W" --seed 1 -o "$d" $extra 2>/dev/null
    fi
    cat "$d/capture.pcap" > /dev/null # page cache
done
printf '| capture | MB | run (median, min-max of %s) | MB/s | http records | tls records |\n|---|---|---|---|---|---|\n' "$RUNS"
for mode in clear tls; do
    d="$out/$mode"
    mb=$(( $(stat -c %s "$d/capture.pcap") / 1000000 ))
    times=()
    for ((i = 0; i < RUNS; i++)); do
        rm -rf "$d/run" && mkdir -p "$d/run"
        t0=$(date +%s%N)
        "$B/cli/keywarden" run -q -c "$d/keywarden.yaml" -r "$d/capture.pcap" \
            --eve "$d/run/eve.json" --db "$d/run/kw.db" --user root
        t1=$(date +%s%N)
        times+=("$(( (t1 - t0) / 1000000 ))")
    done
    sorted=($(printf '%s\n' "${times[@]}" | sort -n))
    med=${sorted[$(( RUNS / 2 ))]}
    http=$(grep -c '"event_type":"http"' "$d/run/eve.json" || true)
    tls=$(grep -c '"event_type":"tls"' "$d/run/eve.json" || true)
    printf '| %s | %s | %.2f s (%.2f-%.2f) | %.0f | %s | %s |\n' "$mode" "$mb" \
        "$(echo "$med / 1000" | bc -l)" "$(echo "${sorted[0]} / 1000" | bc -l)" \
        "$(echo "${sorted[-1]} / 1000" | bc -l)" "$(echo "$mb * 1000 / $med" | bc -l)" "$http" "$tls"
done
