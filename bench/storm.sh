#!/usr/bin/env bash
# bench/storm.sh: how keywarden's cost grows in a storm of distinct alerts
# (bench/storm_gen.py: every transaction its own accepted unknown token,
# its own alert window and baseline profile). Times `keywarden run` on
# 4,000 and 40,000 transactions, RUNS rounds each (medians), and prints
# the cost per transaction of each and their ratio: 1.0 is linear; a pass
# over a table per eviction shows as a ratio of 5 to 10.
#
#   bench/storm.sh [KEYWARDEN] [RUNS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KW=${1:-$ROOT/build/cli/keywarden}
RUNS=${2:-3}
T=$(mktemp -d /tmp/kw-storm.XXXXXX)
trap 'rm -rf "$T"' EXIT
for n in 4000 40000; do python3 "$ROOT/bench/storm_gen.py" $n "$T/s$n.pcap"; done
for n in 4000 40000; do
    for r in $(seq "$RUNS"); do
        rm -f "$T"/eve.json "$T"/db.sqlite*
        /usr/bin/time -f "$n %e %U %S %M" -a -o "$T/times" \
            "$KW" run -q -r "$T/s$n.pcap" --eve "$T/eve.json" --db "$T/db.sqlite"
    done
    grep -c '"event_type":"alert"' "$T/eve.json" >"$T/alerts$n"
done
python3 - "$T" <<'PY'
import statistics as st, sys, collections
t = sys.argv[1]; d = collections.defaultdict(list)
for l in open(t + "/times"):
    n, w, u, s, m = l.split(); d[int(n)].append((float(w), float(u) + float(s), int(m)))
print("| transactions | alerts | wall s (median) | CPU s | µs CPU per transaction | peak RSS MB |")
print("|---|---|---|---|---|---|")
per = {}
for n in sorted(d):
    w = st.median(x[0] for x in d[n]); c = st.median(x[1] for x in d[n])
    m = max(x[2] for x in d[n]) / 1024; per[n] = c / n * 1e6
    print(f"| {n:,} | {open(t + '/alerts%d' % n).read().strip()} | {w:.2f} | {c:.2f} | {per[n]:.0f} | {m:.0f} |")
a, b = sorted(per)
print(f"\nCPU per transaction at {b:,} over {a:,}: {per[b] / per[a]:.2f} (1.0 = linear)")
PY
