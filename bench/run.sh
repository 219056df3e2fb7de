#!/usr/bin/env bash
# bench/run.sh: keywarden's speed against the bare libpcap loop and against
# its peers (tshark, tcpflow, httpry), on the same files in the same run.
# Wall time, peak RSS (/usr/bin/time), packets/s, MB/s, transactions/s and
# how many HTTP transactions each tool found. Not a ctest: run it by hand.
# See bench/README.md for what each line measures.
#
#   bench/run.sh [--size 1G] [--runs 3] [--sizes "64M 256M 1G 4G"]
#                [--tshark-sizes "8M 32M"] [--small-size 450M] [--workers "1 2 4"]
#                [--no-dense] [--no-small] [--no-peers] [--no-scaling] [--base-kw PATH]
#                [--no-world] [--no-build] [--quick]
#
# Captures are made once with `kwsim dense` and cached as
# /tmp/kw-bench-SIZE.pcap (small API transactions: `kwsim dense --small`,
# /tmp/kw-bench-small-SIZE.pcap, ~230k transactions at 450M); outputs go to /tmp/kw-bench-out (EVE, SQLite,
# tshark/httpry logs) and /dev/shm/kw-bench-* (stream files of
# `keywarden streams` and tcpflow, ~1 GB each on the 1G capture).
# Results: /tmp/kw-bench-results/DATE/{raw.tsv,summary.md,*.log}.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${KW_BENCH_BUILD:-$ROOT/build-bench}
SIZE=1G
RUNS=3
SIZES="64M 256M 1G 4G"
TSHARK_SIZES="8M 32M"
SMALL_SIZE=450M
WORKERS="1 2 4"
PEERS=1 SCALING=1 WORLD=1 DOBUILD=1 DENSE=1 SMALL=1
BASE_KW="" # an older keywarden binary, timed in the same rounds (base-wN)

usage() {
    sed -n '8,13p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --tshark-sizes) TSHARK_SIZES=$2; shift 2 ;;
    --small-size) SMALL_SIZE=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --no-dense) DENSE=0; shift ;;
    --no-small) SMALL=0; shift ;;
    --base-kw) BASE_KW=$2; shift 2 ;;
    --no-peers) PEERS=0; shift ;;
    --no-scaling) SCALING=0; shift ;;
    --no-world) WORLD=0; shift ;;
    --no-build) DOBUILD=0; shift ;;
    --quick) SIZE=64M RUNS=1 SIZES="16M 64M" TSHARK_SIZES="4M" SMALL_SIZE=32M; shift ;;
    -h | --help) usage 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage 2 ;;
    esac
done

OUT=/tmp/kw-bench-out
SHM=/dev/shm
[ -d "$SHM" ] && [ -w "$SHM" ] || SHM=/tmp
RES=/tmp/kw-bench-results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT" "$RES"
RAW=$RES/raw.tsv
printf 'group\tcase\tfile\tbytes\tpackets\trun\twall_s\trss_kb\ttxns\tnote\tcpu_s\n' >"$RAW"
KW=$BUILD/cli/keywarden
KWSIM=$BUILD/kwsim
BP=$BUILD/bench/bench_pipeline
say() { printf '%s\n' "$*" | tee -a "$RES/run.log" >&2; }

# ---- build ----------------------------------------------------------------
if [ "$DOBUILD" = 1 ]; then
    say "== build (Release) in $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$RES/cmake.log" 2>&1
    cmake --build "$BUILD" -j2 --target keywarden kwsim bench_pipeline bench_h1 \
        >"$RES/build.log" 2>&1
    # Other areas' benches: use them when they build.
    cmake --build "$BUILD" -j2 --target bench_stream bench_capture >>"$RES/build.log" 2>&1 ||
        say "   (bench_stream/bench_capture did not build; skipped)"
fi

# ---- machine --------------------------------------------------------------
{
    echo "date: $(date -Iseconds)"
    echo "host: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'),"\
        "$(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "keywarden: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') (Release, $BUILD)"
    echo "libpcap: $(dpkg-query -W -f '${Version}' libpcap0.8 2>/dev/null || echo '?')"
    if [ "$PEERS" = 1 ]; then
        echo "tshark: $(tshark --version 2>/dev/null | head -1)"
        echo "tcpflow: $(tcpflow --version 2>/dev/null | head -1)"
        echo "httpry: $(httpry -h 2>&1 | head -1)"
    fi
    echo "runs: $RUNS; outputs: $OUT (EVE, db, logs), $SHM/kw-bench-* (stream files)"
} >"$RES/machine.txt"
cat "$RES/machine.txt" >&2

# ---- captures ------------------------------------------------------------
dense() { # SIZE [--small] -> path (cached)
    local f=/tmp/kw-bench-${2:+small-}$1.pcap
    if [ ! -s "$f" ]; then
        say "== kwsim dense ${2:+$2 }--size $1 -o $f"
        "$KWSIM" dense ${2:+"$2"} --size "$1" -o "$f" >>"$RES/run.log" 2>&1
    fi
    echo "$f"
}
warm() { cat "$@" >/dev/null; }
fbytes() { stat -c %s "$1"; }

# ---- one measurement -------------------------------------------------------
# measure GROUP CASE FILE RUN: runs CASE on FILE once, appends a raw row.
KW_RUN_EXTRA=()
declare -A PKTS
measure() {
    local group=$1 name=$2 file=$3 run=$4
    local log=$RES/$group.$name.$run
    local cmd=() txns="" note=""
    case $name in
    bare | decode | flow | http) cmd=("$BP" "$name" "$file") ;;
    streams)
        rm -rf "$SHM/kw-bench-streams"
        cmd=("$KW" streams -r "$file" -o "$SHM/kw-bench-streams") ;;
    base-w*)
        rm -f "$OUT"/eve.json "$OUT"/bench.db*
        cmd=("$BASE_KW" run -q "${KW_RUN_EXTRA[@]}" -r "$file" --eve "$OUT/eve.json"
            --db "$OUT/bench.db" --workers "${name#base-w}") ;;
    run | run-w*)
        rm -f "$OUT"/eve.json "$OUT"/bench.db*
        cmd=("$KW" run -q "${KW_RUN_EXTRA[@]}" -r "$file" --eve "$OUT/eve.json" --db "$OUT/bench.db")
        # run-wN: N packet workers (run alone is whatever the config says: 1)
        [ "$name" = run ] || cmd+=(--workers "${name#run-w}") ;;
    tshark | tshark2)
        cmd=(tshark -r "$file")
        [ "$name" = tshark2 ] && cmd+=(-2)
        cmd+=(-Y http -T fields -e http.request.method -e http.request.uri -e http.response.code) ;;
    tcpflow)
        rm -rf "$SHM/kw-bench-tcpflow" && mkdir -p "$SHM/kw-bench-tcpflow"
        cmd=(tcpflow -r "$file" -o "$SHM/kw-bench-tcpflow") ;;
    httpry)
        rm -f "$OUT/httpry.log"
        cmd=(httpry -r "$file" -o "$OUT/httpry.log") ;;
    *) echo "measure: unknown case $name" >&2; return 1 ;;
    esac
    sync -f "$OUT" 2>/dev/null || true
    local t0 t1 rc=0
    t0=$(date +%s%N)
    # peak RSS and CPU time (user + system, all threads): on a shared
    # machine CPU seconds say what a run costs when wall time says how
    # much of the machine it got
    /usr/bin/time -f '%M %U %S' -o "$log.rss" "${cmd[@]}" >"$log.out" 2>"$log.err" || rc=$?
    t1=$(date +%s%N)
    [ $rc = 0 ] || note="exit $rc"
    # What each tool found (transactions = requests seen; see README).
    case $name in
    bare) PKTS[$file]=$(sed -n 's/.* packets=\([0-9]*\).*/\1/p' "$log.out") ;;
    http)
        txns=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' "$log.out")
        note+="matched=$(sed -n 's/.* matched=\([0-9]*\).*/\1/p' "$log.out") "
        note+="records=$(sed -n 's/.* txns=\([0-9]*\).*/\1/p' "$log.out")" ;;
    flow) note+="delivered=$(sed -n 's/.* delivered=\([0-9]*\).*/\1/p' "$log.out") " ;;
    run | run-w* | base-w*)
        txns=$(grep '"event_type":"http"' "$OUT/eve.json" | grep -c '"http_method"' || true)
        note+="matched=$(grep '"event_type":"http"' "$OUT/eve.json" | grep -c '"http_method".*"status"' || true) "
        note+="records=$(grep -c '"event_type":"http"' "$OUT/eve.json" || true) "
        note+="alerts=$(grep -c '"event_type":"alert"' "$OUT/eve.json" || true) "
        note+="eve=$(($(fbytes "$OUT/eve.json") / 1024))KB"
        # CPU by thread from the final stats record (keywarden's own clocks;
        # a --base-kw binary older than them has none)
        note+="$(grep '"event_type":"stats"' "$OUT/eve.json" | tail -1 | python3 -c '
import json, sys
try:
    t = json.loads(sys.stdin.read())["stats"]["threads"]
except Exception:
    sys.exit(0)
print(" threads=" + ",".join("%s:%.3f" % (k, v["cpu_us"] / 1e6) for k, v in sorted(t.items())), end="")
')" ;;
    streams)
        note+="files=$(find "$SHM/kw-bench-streams" -type f ! -name '*.gaps' ! -name '*.tsv' | wc -l) "
        note+="MB=$(du -sm "$SHM/kw-bench-streams" | cut -f1)"
        rm -rf "$SHM/kw-bench-streams" ;;
    tshark | tshark2)
        txns=$(awk -F'\t' '$1 != ""' "$log.out" | wc -l)
        note+="responses=$(awk -F'\t' '$3 != ""' "$log.out" | wc -l)" ;;
    tcpflow)
        note+="files=$(find "$SHM/kw-bench-tcpflow" -type f ! -name report.xml | wc -l) "
        note+="MB=$(du -sm "$SHM/kw-bench-tcpflow" | cut -f1)"
        rm -rf "$SHM/kw-bench-tcpflow" ;;
    httpry)
        txns=$(awk -F'\t' '$4 == ">"' "$OUT/httpry.log" | wc -l)
        note+="responses=$(awk -F'\t' '$4 == "<"' "$OUT/httpry.log" | wc -l)" ;;
    esac
    : >"$log.out" # keep the tree small; tshark's output can be large
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$group" "$name" "$(basename "$file")" \
        "$(fbytes "$file")" "${PKTS[$file]:-}" "$run" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')" \
        "$(tail -1 "$log.rss" | cut -d' ' -f1)" "$txns" "$note" \
        "$(tail -1 "$log.rss" | awk '{ printf "%.2f", $2 + $3 }')" >>"$RAW"
}

# series GROUP FILE CASE...: RUNS rounds, every case once per round (so a
# noisy neighbour hits all of them alike); bare first so packets are known.
series() {
    local group=$1 file=$2
    shift 2
    warm "$file"
    say "== $group: $(basename "$file") ($(($(fbytes "$file") / 1048576)) MB): $* x $RUNS"
    for ((r = 1; r <= RUNS; r++)); do
        for c in "$@"; do measure "$group" "$c" "$file" "$r"; done
    done
}

# report RESDIR: markdown tables from raw.tsv (medians, spread, ratios).
report() {
    /usr/bin/python3 - "$1" <<'PY'
import csv, os, re, statistics, sys
res = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(res, "raw.tsv")), delimiter="\t"))
groups, order = {}, []
for r in rows:
    k = (r["group"], r["case"])
    if k not in groups:
        groups[k] = []
        order.append(k)
    groups[k].append(r)
LABEL = {
    "bare": "(a) pcap_next_ex loop",
    "decode": "(b) + decode",
    "flow": "(c) + flow table + TCP reassembly",
    "http": "(c') + HTTP parser, path norm, credentials",
    "streams": "(c'') keywarden streams -o tmpfs",
    "run": "(d) keywarden run (EVE + SQLite)",
    "run-w1": "(d) keywarden run --workers 1",
    "run-w2": "(d) keywarden run --workers 2",
    "run-w4": "(d) keywarden run --workers 4",
    "base-w1": "(d) baseline keywarden (--base-kw) --workers 1",
    "base-w2": "(d) baseline keywarden (--base-kw) --workers 2",
    "base-w4": "(d) baseline keywarden (--base-kw) --workers 4",
    "tshark": "tshark -Y http",
    "tshark2": "tshark -2 -Y http",
    "tcpflow": "tcpflow -o tmpfs",
    "httpry": "httpry -o file",
}

def agg(g, c):
    rs = groups.get((g, c))
    if not rs:
        return None
    w = sorted(float(r["wall_s"]) for r in rs)
    rss = [int(r["rss_kb"]) for r in rs if r["rss_kb"].isdigit()]
    cpu = sorted(float(r["cpu_s"]) for r in rs if r.get("cpu_s"))
    bare = groups.get((g, "bare"))
    pk = next((int(r["packets"]) for r in (bare or []) + rs if r["packets"]), 0)
    tx = [r["txns"] for r in rs if r["txns"] != ""]
    return dict(med=statistics.median(w), lo=w[0], hi=w[-1], n=len(w),
                cpu=statistics.median(cpu) if cpu else 0,
                rss=max(rss) / 1024 if rss else 0, bytes=int(rs[0]["bytes"]), pkts=pk,
                txns=int(tx[-1]) if tx else None, txn_same=len(set(tx)) <= 1,
                note=rs[-1]["note"], file=rs[0]["file"])

def fmt_rate(x):
    return f"{x/1e6:.2f} M" if x >= 1e6 else f"{x/1e3:.1f} k" if x >= 1e3 else f"{x:.0f}"

def table(g, title):
    cases = [c for (gg, c) in order if gg == g]
    if not cases:
        return
    base = agg(g, "bare")
    run = agg(g, "run") or agg(g, "run-w1")
    a0 = agg(g, cases[0])
    print(f"\n### {title}: {a0['file']}, {a0['bytes']/1e6:.1f} MB, {a0['pkts']:,} packets\n")
    print("| what | median s (min–max, n) | packets/s | MB/s | HTTP requests found | requests/s "
          "| speed vs bare loop | peer time ÷ keywarden run time | CPU s (median) | peak RSS MB | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        a = agg(g, c)
        m = a["med"]
        tx = "" if a["txns"] is None else f"{a['txns']:,}" + ("" if a["txn_same"] else " (varies!)")
        tps = "" if a["txns"] is None else fmt_rate(a["txns"] / m)
        vs = f"{base['med']/m:.2f}" if base else ""
        kvs = f"{m/run['med']:.2f}×" if run and c in ("tshark", "tshark2", "tcpflow", "httpry") else ""
        print(f"| {LABEL.get(c, c)} | {m:.3f} ({a['lo']:.3f}–{a['hi']:.3f}, {a['n']}) "
              f"| {fmt_rate(a['pkts']/m)} | {a['bytes']/1e6/m:,.0f} | {tx} | {tps} | {vs} | {kvs} "
              f"| {a['cpu']:.2f} | {a['rss']:.1f} | {a['note']} |")

for g in dict.fromkeys(g for g, _ in order):
    title = {"main": "Main dense capture",
             "small": "Small API transactions",
             "small-rules": "Small API transactions with rules (44 of 48 credentials claimed)"}.get(g, g)
    if g.startswith("scale-"):
        continue
    table(g, title)

# CPU seconds by thread of each keywarden run (the stats record's
# `threads`, medians over the rounds): which stage holds the others back.
for g in dict.fromkeys(g for g, _ in order):
    rows_t = []
    for (gg, c) in order:
        if gg != g or not (c.startswith("run") or c.startswith("base-w")):
            continue
        per = {}
        for r in groups.get((gg, c), []):
            m = re.search(r"threads=(\S+)", r["note"])
            for kv in (m.group(1).split(",") if m else []):
                k, v = kv.split(":")
                per.setdefault(k, []).append(float(v))
        if per:
            rows_t.append((c, {k: statistics.median(v) for k, v in per.items()}))
    if not rows_t:
        continue
    names = sorted({k for _, d in rows_t for k in d}, key=lambda k: (k != "main", k))
    print(f"\n### CPU seconds by thread ({g}; medians; the stats record's `threads`)\n")
    print("| what | " + " | ".join(names) + " | sum |")
    print("|---|" + "---|" * (len(names) + 1))
    for c, d in rows_t:
        print(f"| {LABEL.get(c, c)} | " + " | ".join(f"{d[k]:.2f}" if k in d else "" for k in names)
              + f" | {sum(d.values()):.2f} |")

# Cost per transaction by stage (groups with the http stage): each stage's
# extra wall time over the one before, divided by the requests found.
for g in dict.fromkeys(g for g, _ in order):
    h = agg(g, "http")
    if not h or not h["txns"] or g.startswith("scale-"):
        continue
    n = h["txns"]
    print(f"\n### Cost per transaction by stage: {h['file']} ({n:,} requests; medians; "
          "start-up included in the first and last rows)\n")
    print("| stage | median s | µs per transaction, cumulative | this stage alone, µs "
          "| CPU µs per transaction, cumulative |")
    print("|---|---|---|---|---|")
    prev = 0.0
    for c, what in (("bare", "pcap_next_ex loop"), ("decode", "+ decode"),
                    ("flow", "+ flow table, reassembly"),
                    ("http", "+ HTTP parser, paths, credentials"),
                    ("run", "+ everything after parsing (keywarden run, 1 worker)")):
        a = agg(g, c) or (agg(g, "run-w1") if c == "run" else None)
        if not a:
            continue
        print(f"| {what} | {a['med']:.3f} | {1e6*a['med']/n:.2f} | {1e6*(a['med']-prev)/n:.2f} "
              f"| {1e6*a['cpu']/n:.2f} |")
        prev = a["med"]
    ws = [c for (gg, c) in order if gg == g and c.startswith(("run-w", "base-w"))]
    base = agg(g, "run") or agg(g, "run-w1")
    for c in ws:
        a = agg(g, c)
        who = "baseline (--base-kw)" if c.startswith("base") else "keywarden run"
        print(f"| {who} --workers {c.split('-w')[1]} | {a['med']:.3f} | {1e6*a['med']/n:.2f} | "
              f"speed ×{base['med']/a['med']:.2f} of one worker, peak RSS {a['rss']:.0f} MB "
              f"| {1e6*a['cpu']/n:.2f} |")

# bench_stream / bench_h1 (other areas' benches)
p = os.path.join(res, "bench_stream.log")
if os.path.exists(p) and os.path.getsize(p):
    print("\n### bench_stream (decode + flow + reassembly vs bare, best of rounds, one process)\n")
    print("```\n" + open(p).read().strip() + "\n```")
p = os.path.join(res, "bench_h1.log")
if os.path.exists(p):
    txt = open(p).read()
    gbs = [float(x) for x in re.findall(r"s\)?: ([0-9.]+) GB/s", txt)]
    cpu = [float(x) for x in re.findall(r"cpu ([0-9.]+) GB/s", txt)]
    mts = [float(x) for x in re.findall(r"([0-9.]+) M transactions/s", txt)]
    if gbs:
        print(f"\n### bench_h1 (parser alone, in memory, 1 GB of small API messages)\n\n"
              f"median {statistics.median(gbs):.2f} GB/s wall (runs: {', '.join(map(str, gbs))})"
              + (f", median {statistics.median(cpu):.2f} GB/s of CPU time" if cpu else "")
              + f", median {statistics.median(mts):.2f} M transactions/s; target > 1 GB/s")

# tshark extrapolated to the main capture: a line through the tshark sizes
# (start-up + marginal cost per MB); with one size, proportional.
main = agg("main", "bare")
ts = [g for g, c in order if c == "tshark" and g.startswith("tshark-") and "small" not in g]
if main and ts:
    run = agg("main", "run")
    mmb = main["bytes"] / 1e6
    print(f"\n### tshark extrapolated to the main capture ({mmb:,.0f} MB): an estimate, not a measurement\n")
    print("| tool | measured (MB: median s) | marginal s/MB | estimate for main s "
          "| keywarden run on main, measured s | estimated ratio |")
    print("|---|---|---|---|---|---|")
    for c in ("tshark", "tshark2"):
        pts = sorted((agg(g, c)["bytes"] / 1e6, agg(g, c)["med"]) for g in ts if agg(g, c))
        if not pts:
            continue
        if len(pts) > 1:
            (x0, y0), (x1, y1) = pts[0], pts[-1]
            slope = (y1 - y0) / (x1 - x0)
            est = y1 + slope * (mmb - x1)
        else:
            slope = pts[0][1] / pts[0][0]
            est = slope * mmb
        meas = ", ".join(f"{x:.0f}: {y:.1f}" for x, y in pts)
        print(f"| {LABEL[c]} | {meas} | {slope:.3f} | {est:,.0f} | {run['med']:.2f} | {est/run['med']:,.0f}× |")

# how cost grows with input
sc = [g for g in dict.fromkeys(g for g, _ in order) if g.startswith("scale-")]
if sc:
    sc.sort(key=lambda g: agg(g, "bare")["bytes"])
    print("\n### How cost grows with input (dense captures, sizes interleaved in each round; "
          "ms per MB should be flat, RSS bounded)\n")
    print("| capture MB | packets | bare ms/MB | http stage ms/MB | keywarden run ms/MB "
          "| run txns | bare RSS MB | http RSS MB | run RSS MB | run speed vs bare |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for g in sc:
        b, h, r = agg(g, "bare"), agg(g, "http"), agg(g, "run")
        mb = b["bytes"] / 1e6
        f = lambda a: f"{1000*a['med']/mb:.2f}" if a else ""
        print(f"| {mb:,.0f} | {b['pkts']:,} | {f(b)} | {f(h)} | {f(r)} | "
              f"{r['txns'] if r else ''} | {b['rss']:.1f} | {h['rss'] if h else 0:.1f} | "
              f"{r['rss'] if r else 0:.1f} | {b['med']/r['med']:.2f} |")
print("\nMB = 10^6 bytes of captured data (pcap record payloads). Wall time includes process "
      "start-up (keywarden run: ~0.1 s opening SQLite and nDPI). Peak RSS is the maximum over runs.")
# keywarden runs on ~1.5 cores (packet thread and database writer), httpry and
# tcpflow on one: other load on the box slows the peers more, so ratios
# against them are only comparable between runs at the same load
loads = [l for l in open(os.path.join(res, "machine.txt")) if l.startswith("load")]
print("Load (1, 5, 15 min): " + "; ".join(l.strip() for l in loads) +
      ". Ratios against single-threaded peers move with it (docs/performance.md, "
      "\"Session of 2026-12-06 11:00\"): compare runs made at the same load.")
PY
}

PEER_CASES=()
[ "$PEERS" = 1 ] && PEER_CASES=(tcpflow httpry)

WORKER_CASES=()
for w in $WORKERS; do WORKER_CASES+=("run-w$w"); done
if [ -n "$BASE_KW" ]; then
    for w in $WORKERS; do WORKER_CASES+=("base-w$w"); done
    echo "baseline keywarden: $BASE_KW ($(git -C "$(dirname "$BASE_KW")/../.." rev-parse --short HEAD 2>/dev/null || echo '?'))" >>"$RES/machine.txt"
fi

# ---- 0. small API transactions (issue 13): the job as contractors send it --
# ~2 KB per transaction (kwsim dense --small): per-transaction cost, not
# bytes, is what this capture measures. Workers 1, 2, 4 and the peers in
# the same rounds.
if [ "$SMALL" = 1 ]; then
    SMALLF=$(dense "$SMALL_SIZE" --small)
    series small "$SMALLF" bare decode flow http "${WORKER_CASES[@]}" "${PEER_CASES[@]}"
    # The same capture with rules that claim 44 of its 48 credentials: the
    # path of a deployed sensor (attribution, schedule, sources, scope,
    # limits), where the run above, without rules, is an unconfigured
    # install whose every credential is unknown (bench/small_rules.py).
    RULES=$RES/small-rules.yaml
    python3 "$ROOT/bench/small_rules.py" "$KW" "$(dense 8M --small)" "$RULES" >>"$RES/run.log"
    KW_RUN_EXTRA=(--rules "$RULES")
    series small-rules "$SMALLF" "${WORKER_CASES[@]}" httpry
    KW_RUN_EXTRA=()
fi

# ---- 1. the main capture: every stage and the fast peers -----------------
if [ "$DENSE" = 1 ]; then
    MAIN=$(dense "$SIZE")
    series main "$MAIN" bare decode flow http streams run "${PEER_CASES[@]}"
    # bench_stream (area stream): decode + flow + reassembly vs bare, best of RUNS.
    if [ -x "$BUILD/bench/bench_stream" ]; then
        warm "$MAIN"
        "$BUILD/bench/bench_stream" "$MAIN" "$RUNS" 1 >"$RES/bench_stream.log" 2>&1 || true
    fi
    # The parser alone, in memory (area http).
    : >"$RES/bench_h1.log"
    for ((r = 1; r <= RUNS; r++)); do "$BUILD/bench/bench_h1" 1024 >>"$RES/bench_h1.log" 2>&1 || true; done
fi

# ---- 2. tshark, on smaller captures (it is ~1000x slower) ----------------
if [ "$PEERS" = 1 ]; then
    if [ "$DENSE" = 1 ]; then
        for s in $TSHARK_SIZES; do
            series "tshark-$s" "$(dense "$s")" bare run httpry tshark tshark2
        done
    fi
    # and on the small-transaction mix (the largest of --tshark-sizes)
    if [ "$SMALL" = 1 ]; then
        s=${TSHARK_SIZES##* }
        series "tshark-small-$s" "$(dense "$s" --small)" bare run httpry tshark
    fi
fi

# ---- 3. how cost grows with input -----------------------------------------
# Every size inside each round, so a change in load hits all sizes alike.
if [ "$SCALING" = 1 ]; then
    SC_SIZES=($SIZES) SC_FILES=()
    for s in "${SC_SIZES[@]}"; do SC_FILES+=("$(dense "$s")"); done
    warm "${SC_FILES[@]}"
    say "== scaling: ${SC_SIZES[*]}: bare http run x $RUNS"
    for ((r = 1; r <= RUNS; r++)); do
        for i in "${!SC_FILES[@]}"; do
            for c in bare http run; do measure "scale-${SC_SIZES[i]}" "$c" "${SC_FILES[i]}" "$r"; done
        done
    done
fi

# ---- 4. realistic captures ---------------------------------------------------
if [ "$WORLD" = 1 ]; then
    W=/tmp/kw-bench-company
    if [ ! -s "$W/capture.pcap" ]; then
        say "== kwsim gen --world tests/sim/worlds/company.yaml --seed 1 -o $W"
        "$KWSIM" gen --world "$ROOT/tests/sim/worlds/company.yaml" --seed 1 -o "$W" \
            >>"$RES/run.log" 2>&1
    fi
    KW_RUN_EXTRA=(-c "$W/keywarden.yaml")
    series world "$W/capture.pcap" bare flow http run "${PEER_CASES[@]}"
    KW_RUN_EXTRA=()
    # the project's shared corpus beside the checkout, when there is one
    for f in "${KW_PERF_CORPUS:-$ROOT/../shared/corpus/perf}"/*.pcap; do
        [ -f "$f" ] || continue
        series "corpus-$(basename "$f" .pcap)" "$f" bare flow http run "${PEER_CASES[@]}" \
            ${PEER_CASES[0]:+tshark}
    done
fi

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/machine.txt"
report "$RES" | tee "$RES/summary.md"
say "== results: $RES (raw.tsv, summary.md, logs)"
