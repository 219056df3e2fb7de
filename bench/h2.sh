#!/usr/bin/env bash
# bench/h2.sh: HTTP/2 speed (issue 11). A dense h2 capture made by real
# tools: h2load (Debian nghttp2-client) against nghttpd (nghttp2-server,
# cleartext h2 with prior knowledge), across a veth pair into a network
# namespace with offloads off, so tcpdump sees 1500-byte frames as a mirror
# port would (on lo, segments are 64 KB). Then, on that file in the same
# run: `keywarden run` (no config: every stream an `http` record, EVE and
# SQLite audit written) and tshark decoding every HTTP/2 request, RUNS
# rounds each (median, min-max of wall time; peak RSS from /usr/bin/time),
# plus keywarden's HTTP/2 memory high-water mark (stats.pipeline.h2_mem_peak)
# with the connections that were open at once. Prints the table of
# docs/performance.md "HTTP/2". Needs root (netns, tcpdump).
#
#   bench/h2.sh [RUNS] [BUILD_DIR]     env: N requests (50000), C connections (64),
#                                           M streams in flight per connection (10)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
B=${2:-build}
N=${N:-50000}
C=${C:-64}
M=${M:-10}
out=/tmp/kw-bench-h2
pcap=$out/h2-$N-$C-$M.pcap
mkdir -p "$out"
for t in h2load nghttpd tcpdump tshark capinfos ethtool /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "bench/h2.sh: $t missing (scripts/setup.sh)"; exit 1; }
done

make_capture() {
    local ns=kwbenchh2 port=8080 doc=$out/docroot
    mkdir -p "$doc/v1/orders"
    # three answers as an API gives them: a record, a page, an export
    head -c 600 /dev/urandom | base64 -w 0 > "$doc/v1/orders/1"        # 800 B
    head -c 3000 /dev/urandom | base64 -w 0 > "$doc/v1/orders/page"     # 4 KB
    head -c 12000 /dev/urandom | base64 -w 0 > "$doc/v1/orders/export"  # 16 KB
    ip netns del $ns 2>/dev/null || true
    ip link del kwh2a 2>/dev/null || true
    ip netns add $ns
    ip link add kwh2a type veth peer name kwh2b
    ip link set kwh2b netns $ns
    ip addr add 10.199.77.1/24 dev kwh2a
    ip link set kwh2a up
    ip netns exec $ns ip addr add 10.199.77.2/24 dev kwh2b
    ip netns exec $ns ip link set kwh2b up
    ip netns exec $ns ip link set lo up
    ethtool -K kwh2a tso off gso off gro off tx off >/dev/null
    ip netns exec $ns ethtool -K kwh2b tso off gso off gro off tx off >/dev/null
    ip netns exec $ns nghttpd --no-tls -d "$doc" $port >/dev/null 2>&1 &
    local srv=$!
    tcpdump -i kwh2a -s 0 -B 262144 -w "$pcap" "tcp port $port" 2> "$out/tcpdump.log" &
    local dump=$!
    sleep 1
    # a bearer token as contractors send; made up for the benchmark
    h2load -n "$N" -c "$C" -m "$M" -t 1 -H 'authorization: Bearer kwbench-0123456789abcdef' \
        "http://10.199.77.2:$port/v1/orders/1" "http://10.199.77.2:$port/v1/orders/page" \
        "http://10.199.77.2:$port/v1/orders/1" "http://10.199.77.2:$port/v1/orders/export" \
        > "$out/h2load.log" 2>&1
    sleep 1
    kill -INT $dump; wait $dump 2>/dev/null || true
    kill $srv; wait $srv 2>/dev/null || true
    ip link del kwh2a 2>/dev/null || true
    ip netns del $ns
    grep -E '^requests:|^finished in' "$out/h2load.log" >&2
    # a benchmark of a lossy capture measures loss recovery, not speed
    if ! grep -q '^0 packets dropped by kernel' "$out/tcpdump.log"; then
        cat "$out/tcpdump.log" >&2
        mv "$pcap" "$pcap.lossy"
        echo "bench/h2.sh: tcpdump dropped packets; try a smaller N or C" >&2
        exit 1
    fi
}

[ -f "$pcap" ] || make_capture
cat "$pcap" > /dev/null # page cache
bytes=$(stat -c %s "$pcap")
pkts=$(capinfos -c -M "$pcap" 2>/dev/null | awk '/Number of packets/ {print $NF}')

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)], a[1], a[NR]}'; }

# the packet path stage by stage (bench_pipeline): the bare libpcap loop,
# + decode, flow table and reassembly, + one HTTP/2 reader per connection
# with h2_txn_fill and credentials (no judge, records or database)
declare -A st srss
for ((i = 0; i < RUNS; i++)); do
    for m in bare flow http2; do
        /usr/bin/time -f '%e %M' -o "$out/time" "$B/bench/bench_pipeline" $m "$pcap" > "$out/$m.txt"
        read -r s rss < "$out/time"
        st[$m]="${st[$m]:-} $s" srss[$m]=$rss
    done
done
ptx=$(sed -n 's/.* txns=\([0-9]*\).*/\1/p' "$out/http2.txt")
ppeak=$(sed -n 's/.* h2_mem_peak=\([0-9]*\).*/\1/p' "$out/http2.txt")

# keywarden: the whole path, records and audit trail written
kt=() krss=()
for ((i = 0; i < RUNS; i++)); do
    rm -rf "$out/kw" && mkdir -p "$out/kw"
    /usr/bin/time -f '%e %M' -o "$out/time" "$B/cli/keywarden" run -q -r "$pcap" \
        --eve "$out/kw/eve.json" --db "$out/kw/kw.db" --user root
    read -r s rss < "$out/time"
    kt+=("$s") krss+=("$rss")
done
krec=$(grep -c '"event_type":"http"' "$out/kw/eve.json" || true)
stats=$(grep '"event_type":"stats"' "$out/kw/eve.json" | tail -1)
peak=$(printf '%s' "$stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["pipeline"]["h2_mem_peak"])')

# tshark: every HTTP/2 request decoded (HPACK included), one line each
tt=() trss=()
for ((i = 0; i < RUNS; i++)); do
    /usr/bin/time -f '%e %M' -o "$out/time" tshark -n -r "$pcap" -d tcp.port==8080,http2 \
        -Y http2.headers.method -T fields -E occurrence=a -E aggregator=, \
        -e http2.headers.method > "$out/tshark.txt" 2>/dev/null
    read -r s rss < "$out/time"
    tt+=("$s") trss+=("$rss")
done
trec=$(tr ',' '\n' < "$out/tshark.txt" | grep -c . || true)

read -r kmed kmin kmax <<< "$(median "${kt[@]}")"
read -r tmed tmin tmax <<< "$(median "${tt[@]}")"
mb=$(echo "$bytes / 1000000" | bc -l)
printf 'capture: %s, %.1f MB, %s packets, h2load -n %s -c %s -m %s\n' "$pcap" "$mb" "$pkts" "$N" "$C" "$M"
printf '| what | wall (median, min-max of %s) | requests found | transactions/s | MB/s | peak RSS |\n|---|---|---|---|---|---|\n' "$RUNS"
for m in bare flow http2; do
    read -r med lo hi <<< "$(median ${st[$m]})"
    name=$m rec="" tps=""
    case $m in
    bare) name='(a) `pcap_next_ex` loop' ;;
    flow) name='(c) + decode, flow table, TCP reassembly' ;;
    http2) name="(c') + HTTP/2 reader (frames, HPACK), paths, credentials" rec=$ptx
        tps=$(printf '%.0f' "$(echo "$ptx / $med" | bc -l)") ;;
    esac
    printf '| %s | %.2f s (%.2f-%.2f) | %s | %s | %.0f | %.0f MB |\n' "$name" "$med" "$lo" "$hi" "$rec" \
        "$tps" "$(echo "$mb / $med" | bc -l)" "$(echo "${srss[$m]} / 1024" | bc -l)"
done
for tool in keywarden tshark; do
    if [ $tool = keywarden ]; then med=$kmed lo=$kmin hi=$kmax rec=$krec rss=$(median "${krss[@]}") name='(d) `keywarden run` (EVE + SQLite audit)'; else med=$tmed lo=$tmin hi=$tmax rec=$trec rss=$(median "${trss[@]}") name='tshark `-Y http2.headers.method`'; fi
    printf '| %s | %.2f s (%.2f-%.2f) | %s | %.0f | %.1f | %.0f MB |\n' "$name" "$med" "$lo" "$hi" "$rec" \
        "$(echo "$rec / $med" | bc -l)" "$(echo "$mb / $med" | bc -l)" "$(echo "${rss%% *} / 1024" | bc -l)"
done
printf 'HTTP/2 readers'"'"' memory high-water mark (HPACK tables, streams, buffers), %s connections open at once:\n' "$C"
printf '  keywarden run: %s bytes = %.1f KiB per connection; bench_pipeline http2: %s bytes = %.1f KiB per connection\n' \
    "$peak" "$(echo "$peak / $C / 1024" | bc -l)" "$ppeak" "$(echo "$ppeak / $C / 1024" | bc -l)"
