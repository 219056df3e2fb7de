#!/usr/bin/env bash
# bench/fleet.sh: the fleet (docs/fleet.md) against one local run, on the
# company world (`kwsim gen --world company.yaml --seed 1`, 2 weeks, 23 k
# requests), with a real nats-server -js on 127.0.0.1 (store in /tmp).
#
#   throughput, RUNS rounds (median, min-max of wall time):
#     local    keywarden run over the capture (parse + judge + store)
#     sensor   keywarden run as a sensor over the capture: parse, publish,
#              wait until JetStream acknowledged every record
#     2 sens.  two sensors at once, each on one half (split by client
#              network with tcpdump, as tests/e2e_fleet.py does)
#     judge    keywarden judge --drain over what the two sensors published
#   latency: the two halves fed to two live sensors through stdin over
#     LAT_S seconds (bench/fleet_feed.py rewrites packet times to the wall
#     clock), one judge running: its stats record's p50/p99 of (wall time
#     when judged - packet time), for every record and for those that
#     raised a finding.
#
# Usage: bench/fleet.sh [RUNS] [BUILD_DIR] [LAT_S]   (defaults 3 build 120)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
B=$(realpath "${2:-build}")
LAT_S=${3:-120}
KW=$B/cli/keywarden
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
out=/tmp/kw-bench-fleet
W=$out/w
mkdir -p "$out"
if [ ! -f "$W/capture.pcap" ]; then
    "$B/kwsim" gen --world tests/sim/worlds/company.yaml --seed 1 -o "$W" 2>/dev/null
fi
A="net 10.50.0.0/16 or net 2001:db8:50::/64 or net 203.0.113.0/24 or net 172.31.8.0/24"
[ -f "$W/a.pcap" ] || tcpdump -r "$W/capture.pcap" -w "$W/a.pcap" "$A" 2>/dev/null
[ -f "$W/b.pcap" ] || tcpdump -r "$W/capture.pcap" -w "$W/b.pcap" "not ($A)" 2>/dev/null
cat "$W"/*.pcap > /dev/null # page cache

nats_pid=""
port=0
nats_start() {
    nats_stop
    rm -rf "$out/js"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$NATS" -js -a 127.0.0.1 -p "$port" -sd "$out/js" > "$out/nats.log" 2>&1 &
    nats_pid=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
        sleep 0.1
    done
    echo "nats-server did not start" >&2
    exit 1
}
nats_stop() {
    if [ -n "$nats_pid" ]; then kill "$nats_pid" 2>/dev/null || true; wait "$nats_pid" 2>/dev/null || true; fi
    nats_pid=""
}
trap nats_stop EXIT

# cfg NAME [SENSOR]: the world's config with a fleet: section
cfg() {
    local f="$W/$1.yaml"
    cp "$W/keywarden.yaml" "$f"
    printf 'fleet:\n  nats: "nats://127.0.0.1:%s"\n  partitions: 16\n' "$port" >> "$f"
    if [ -n "${2:-}" ]; then printf '  sensor: %s\n  spool: { path: %s/spool-%s }\n' "$2" "$out" "$2" >> "$f"; fi
    if [ -n "${3:-}" ]; then printf '  lateness: %s\n' "$3" >> "$f"; fi
    echo "$f"
}
ms() { echo $(( $(date +%s%N) / 1000000 )); }
stat_of() { # EVE file, python expression over the last stats record `s`
    python3 -c '
import json, sys
s = None
for line in open(sys.argv[1]):
    if "\"event_type\":\"stats\"" in line: s = json.loads(line)["stats"]
print(eval(sys.argv[2]))' "$1" "$2"
}
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.2f s (%.2f-%.2f)", a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000}'; }
medv() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -a t_local t_sensor t_two t_judge
recs_local=0; recs_sensor=0; recs_two=0; recs_judge=0
for ((r = 0; r < RUNS; r++)); do
    d=$out/run; rm -rf "$d" "$out"/spool-*; mkdir -p "$d"
    t=$(ms)
    "$KW" run -q -c "$W/keywarden.yaml" -r "$W/capture.pcap" --eve "$d/local.json" --db "$d/local.db"
    t_local+=($(( $(ms) - t )))
    recs_local=$(stat_of "$d/local.json" 's["pipeline"]["transactions"] + s["pipeline"]["tls_sessions"] + s["flow"]["flows_created"]')

    nats_start
    c=$(cfg sensor-all all)
    t=$(ms)
    "$KW" run -q -c "$c" -r "$W/capture.pcap" --eve "$d/sensor.json" --db "$d/sensor.db" 2> "$d/sensor.err"
    t_sensor+=($(( $(ms) - t )))
    recs_sensor=$(stat_of "$d/sensor.json" 's["fleet"]["txns"] + s["fleet"]["tls"] + s["fleet"]["flows"]')
    marks_sensor=$(stat_of "$d/sensor.json" 's["fleet"]["marks"]')

    nats_start
    ca=$(cfg sensor-a a); cb=$(cfg sensor-b b)
    t=$(ms)
    "$KW" run -q -c "$ca" -r "$W/a.pcap" --eve "$d/sa.json" --db "$d/sa.db" 2> "$d/sa.err" &
    pa=$!
    "$KW" run -q -c "$cb" -r "$W/b.pcap" --eve "$d/sb.json" --db "$d/sb.db" 2> "$d/sb.err"
    wait $pa
    t_two+=($(( $(ms) - t )))
    R='s["fleet"]["txns"] + s["fleet"]["tls"] + s["fleet"]["flows"]'
    recs_two=$(( $(stat_of "$d/sa.json" "$R") + $(stat_of "$d/sb.json" "$R") ))
    marks_two=$(( $(stat_of "$d/sa.json" 's["fleet"]["marks"]') + $(stat_of "$d/sb.json" 's["fleet"]["marks"]') ))

    cj=$(cfg judge)
    t=$(ms)
    "$KW" judge -q -c "$cj" --drain --idle 10 --eve "$d/judge.json" --db "$d/judge.db" 2> "$d/judge.err"
    t_judge+=($(( $(ms) - t )))
    recs_judge=$(stat_of "$d/judge.json" 's["fleet"]["transactions"] + s["fleet"]["tls_sessions"] + s["fleet"]["flows"]')
    marks_judge=$(stat_of "$d/judge.json" 's["fleet"]["marks"]')
    a_local=$(grep -c '"event_type":"alert"' "$d/local.json" || true)
    a_judge=$(grep -c '"event_type":"alert"' "$d/judge.json" || true)
    nats_stop
done

mb=$(( $(stat -c %s "$W/capture.pcap") / 1000000 ))
echo "company world: $mb MB; load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
echo
printf '| what | records | wall (median, min-max of %s) | records/s | MB/s |\n|---|---|---|---|---|\n' "$RUNS"
row() { # name records times...
    local name=$1 recs=$2; shift 2
    local m; m=$(medv "$@")
    printf '| %s | %s | %s | %.0f | %.0f |\n' "$name" "$recs" "$(med "$@")" \
        "$(echo "$recs * 1000 / $m" | bc -l)" "$(echo "$mb * 1000 / $m" | bc -l)"
}
row "local run (transactions)" "$recs_local" "${t_local[@]}"
row "one sensor, publish until acknowledged" "$recs_sensor" "${t_sensor[@]}"
row "two sensors at once (halves)" "$recs_two" "${t_two[@]}"
row "one judge --drain over the two sensors" "$recs_judge" "${t_judge[@]}"
echo
echo "records: transactions + TLS sessions + ended flows (what the judge stage takes); the"
echo "clock marks besides: one sensor $marks_sensor, two sensors $marks_two, judge $marks_judge."
echo "alerts: local run $a_local, judge $a_judge (last round)"

# ---- latency ----
d=$out/lat; rm -rf "$d" "$out"/spool-*; mkdir -p "$d"
nats_start
ca=$(cfg sensor-a a); cb=$(cfg sensor-b b); cj=$(cfg judge "" 10s)
"$KW" judge -q -c "$cj" --eve "$d/judge.json" --db "$d/judge.db" 2> "$d/judge.err" &
pj=$!
printf '%s\n' "[\"$KW\", \"run\", \"-q\", \"-c\", \"$ca\", \"-r\", \"-\", \"--eve\", \"$d/sa.json\", \"--db\", \"$d/sa.db\"]" \
    "[\"$KW\", \"run\", \"-q\", \"-c\", \"$cb\", \"-r\", \"-\", \"--eve\", \"$d/sb.json\", \"--db\", \"$d/sb.db\"]" > "$d/cmds"
python3 bench/fleet_feed.py "$LAT_S" "$d/cmds" "$W/a.pcap" "$W/b.pcap" 2> "$d/sensors.err"
sleep 3
kill -TERM $pj; wait $pj || true
echo
echo "latency, packet written to a sensor -> record judged ($LAT_S s feed, $(stat_of "$d/judge.json" 's["fleet"]["judged"]') records, $(stat_of "$d/judge.json" 's["fleet"]["late"]') late; load average $(cut -d' ' -f1-3 /proc/loadavg)):"
stat_of "$d/judge.json" '"| all records | p50 %.1f ms | p99 %.1f ms |\n| records that raised a new alert | p50 %.1f ms | p99 %.1f ms |" % (s["fleet"]["latency"]["judged_p50_ms"], s["fleet"]["latency"]["judged_p99_ms"], s["fleet"]["latency"]["alert_p50_ms"], s["fleet"]["latency"]["alert_p99_ms"])'
nats_stop
