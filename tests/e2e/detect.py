#!/usr/bin/env python3
"""detect.py: end-to-end detection tests on kwsim worlds (stdlib only).

  detect.py policy   KWSIM KEYWARDEN WORLD WORK [--seed N] [--days D] [--report F]
  detect.py baseline KWSIM KEYWARDEN WORLD WORK [--seed N] [--report F]
  detect.py restart  KWSIM KEYWARDEN WORLD WORK [--seed N]

policy:   generate WORLD, run keywarden on it, score alerts against the
          simulator's incidents.jsonl; assert every non-benign incident gets
          its expected kinds for its identity (or its credential / source for
          unattributed kinds), no benign look-alike gets a must_not kind, and
          false alerts stay under FALSE_POLICY_PER_ID_DAY /
          FALSE_BASELINE_PER_ID_WEEK. Then the audit trail against the truth
          (issue 6) and the secrets check (INTERFACES.md: fingerprints and
          hints only).
baseline: the same on a world with learning weeks before the incidents, with
          the generated `schedule:` lines removed (hours become a baseline
          matter), run at sensitivity low, medium and high; asserts on medium,
          reports all three.
restart:  learning over two runs on one database (`-r` the first half of the
          days, then `-r` the rest) equals one run over all files: the same
          `baseline show --json` and the same alerts.

The scoring (what counts as found, false, benign violation) is described in
docs/detection-results.md."""
import base64
import collections
import datetime
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import urllib.parse

BASELINE_KINDS = {"unusual_hour", "new_endpoint", "new_source", "volume_spike", "key_sharing"}
SLACK_US = 300 * 1000000          # an alert may come a little after the incident's last request
HOUR_US = 3600 * 1000000
HOURLY = {"volume_spike", "rate_exceeded"}  # counted per clock hour
WEEK_US = 7 * 86400 * 1000000
DAY_US = 86400 * 1000000
LEARNING_US = 14 * DAY_US         # kwsim's generated rules: baseline learning 14d
# Bounds on false alerts (stated in docs/detection-results.md).
FALSE_POLICY_PER_ID_DAY = 0.02
FALSE_BASELINE_PER_ID_WEEK = 0.5

# With schedules removed, which baseline kind each scenario must raise.
BASELINE_FOR = {"off_hours": "unusual_hour", "new_source": "new_source",
                "volume_spike": "volume_spike", "key_sharing": "key_sharing",
                "out_of_scope": "new_endpoint", "method_escalation": "new_endpoint"}
# A benign look-alike must not raise its kind nor the other side's twin.
TWIN = {"off_hours": ["unusual_hour"], "volume_spike": ["rate_exceeded"],
        "new_endpoint": ["out_of_scope"]}


class Fail(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise Fail("%s -> %d\n%s%s" % (" ".join(cmd), r.returncode, r.stdout[-2000:],
                                         r.stderr[-2000:]))
    return r


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def parse_ts(text):
    """EVE timestamp 2026-03-23T21:42:06.194769+0000 -> µs since the epoch."""
    d = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    return round(d.timestamp() * 1e6)


def rfc3339(us):
    d = datetime.datetime.fromtimestamp(us // 1000000, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- world generation and keywarden runs ---------------------------------

def gen(kwsim, world, out, *extra):
    shutil.rmtree(out, ignore_errors=True)
    r = run([kwsim, "gen", "--world", world, "-o", out] + list(extra))
    log(r.stderr.strip())
    return World(out)


class World:
    def __init__(self, d):
        self.dir = d
        self.truth = read_jsonl(os.path.join(d, "truth.jsonl"))
        self.incidents = read_jsonl(os.path.join(d, "incidents.jsonl"))
        self.rules = [os.path.join(d, "rules.d", f) for f in os.listdir(os.path.join(d, "rules.d"))]
        self.pcaps = sorted(os.path.join(d, f) for f in os.listdir(d)
                            if f.startswith("capture") and f.endswith(".pcap"))
        self.identities = sorted({t["identity"] for t in self.truth if t["identity"]})
        self.first = {}
        for t in self.truth:
            if t["identity"] and t["identity"] not in self.first:
                self.first[t["identity"]] = t["ts"]
        self.t0 = min(t["ts"] for t in self.truth)
        self.t1 = max(t["ts"] for t in self.truth)

    def edit_rules(self, fn):
        for p in self.rules:
            with open(p) as f:
                text = f.read()
            with open(p, "w") as f:
                f.write(fn(text))


def keywarden_run(kw, world, tag, pcaps=None, db=None):
    """One `keywarden run`; returns the paths of what it wrote."""
    d = os.path.join(world.dir, tag)
    os.makedirs(d, exist_ok=True)
    out = {"eve": os.path.join(d, "eve.json"), "db": db or os.path.join(d, "kw.db"),
           "stdout": os.path.join(d, "stdout"), "stderr": os.path.join(d, "stderr")}
    cmd = [kw, "run", "-q", "-c", os.path.join(world.dir, "keywarden.yaml")]
    for p in pcaps or world.pcaps:
        cmd += ["-r", p]
    cmd += ["--eve", out["eve"], "--db", out["db"]]
    t = time.monotonic()
    with open(out["stdout"], "a") as so, open(out["stderr"], "a") as se:
        r = subprocess.run(cmd, stdout=so, stderr=se)
    if r.returncode != 0:
        raise Fail("%s -> %d (see %s)" % (" ".join(cmd), r.returncode, out["stderr"]))
    out["seconds"] = time.monotonic() - t
    return out


def read_alerts(eve_path):
    """Alert records, without the digest updates (`update_of`) that only
    extend an earlier alert's count."""
    alerts = []
    with open(eve_path) as f:
        for line in f:
            if '"event_type":"alert"' not in line:
                continue
            r = json.loads(line)
            a = r["alert"]
            if "update_of" in a:
                continue
            alerts.append({"ts": parse_ts(r["timestamp"]), "kind": a["kind"],
                           "identity": (r.get("identity") or {}).get("id"),
                           "fp": (r.get("credential") or {}).get("fingerprint"),
                           "src": r.get("src_ip"), "summary": a.get("summary", ""),
                           "subject": a.get("subject", ""), "id": a.get("id")})
    return alerts


# ---- scoring ---------------------------------------------------------------

class Score:
    """Matches alerts to incidents. An alert belongs to an incident when it is
    for the incident's identity (for an unattributed alert: one of the
    incident's credentials or client addresses) and falls within
    [start - SLACK, end + SLACK]."""

    def __init__(self, world, alerts, baseline_mode):
        self.world = world
        self.alerts = alerts
        by_inc = collections.defaultdict(lambda: (set(), set()))
        for t in world.truth:
            if t["incident"]:
                by_inc[t["incident"]][0].add(t["fingerprint"])
                by_inc[t["incident"]][1].add(t["client_ip"])
        self.incs = []
        for inc in world.incidents:
            exp, also = set(inc["expected"]), set(inc["also"])
            must_not = set(inc["must_not"])
            for k in list(must_not):
                must_not |= set(TWIN.get(k, []))
            if baseline_mode and not inc["benign"]:
                exp.discard("off_hours")  # the schedules were removed
                b = BASELINE_FOR.get(inc["scenario"])
                if b and inc["start_ts"] - world.first.get(inc["identity"], 0) >= LEARNING_US:
                    exp.add(b)
            fps, ips = by_inc[inc["id"]]
            self.incs.append(dict(inc, exp=exp, also=also - exp, must_not=must_not, fps=fps,
                                  ips=ips))
        self.classify()

    @staticmethod
    def matches(a, inc):
        end = inc["end_ts"] + SLACK_US
        if a["kind"] in HOURLY:  # fires when the hour's count crosses: up to its end
            end = max(end, (inc["end_ts"] // HOUR_US + 1) * HOUR_US)
        if not inc["start_ts"] - SLACK_US <= a["ts"] <= end:
            return False
        if a["identity"]:
            return a["identity"] == inc["identity"]
        return a["fp"] in inc["fps"] or a["src"] in inc["ips"]

    def classify(self):
        self.found = {}  # (incident id, kind) -> bool
        self.benign_hits = []
        for inc in self.incs:
            if inc["benign"]:
                for a in self.alerts:
                    if a["kind"] in inc["must_not"] and self.matches(a, inc):
                        self.benign_hits.append((inc["id"], a))
                continue
            for k in inc["exp"]:
                self.found[(inc["id"], k)] = any(
                    a["kind"] == k and self.matches(a, inc) for a in self.alerts)
        # An alert of another kind for an incident's identity within its window
        # is a side effect of the incident (its traffic made that hour busy,
        # say): listed, but neither a hit nor false. Everything else is false.
        self.false, self.side = [], []
        for a in self.alerts:
            mine = [inc for inc in self.incs if not inc["benign"] and self.matches(a, inc)]
            if any(a["kind"] in inc["exp"] | inc["also"] for inc in mine):
                continue
            (self.side if mine else self.false).append(a)

    def recall(self):
        per = collections.defaultdict(lambda: [0, 0])
        for (iid, k), hit in self.found.items():
            per[k][0] += hit
            per[k][1] += 1
        return dict(per)

    def exposure(self, learning_us):
        """identity-days (all traffic) and identity-weeks after learning."""
        w = self.world
        days = len(w.identities) * (w.t1 - w.t0) / DAY_US
        weeks = sum(max(0, w.t1 - (w.first[i] + learning_us)) for i in w.identities) / WEEK_US
        return days, weeks

    def false_rates(self, learning_us):
        days, weeks = self.exposure(learning_us)
        fp = sum(a["kind"] not in BASELINE_KINDS for a in self.false)
        fb = sum(a["kind"] in BASELINE_KINDS for a in self.false)
        return {"policy": fp, "baseline": fb, "id_days": days, "id_weeks": weeks,
                "policy_per_id_day": fp / days if days else 0.0,
                "baseline_per_id_week": fb / weeks if weeks else 0.0}

    def missed(self):
        return sorted(k for k, hit in self.found.items() if not hit)


def table(score, learning_us, title):
    lines = ["### " + title, "", "| kind | incidents | found | recall |", "|---|---|---|---|"]
    for k, (hit, n) in sorted(score.recall().items()):
        lines.append("| %s | %d | %d | %.2f |" % (k, n, hit, hit / n))
    fr = score.false_rates(learning_us)
    lines += ["", "False alerts: %d policy in %.1f identity-days (%.3f per identity-day); "
              "%d baseline in %.1f identity-weeks after learning (%.2f per identity-week). "
              "Benign look-alikes alerted: %d." %
              (fr["policy"], fr["id_days"], fr["policy_per_id_day"], fr["baseline"],
               fr["id_weeks"], fr["baseline_per_id_week"], len(score.benign_hits))]
    for a in score.false:
        lines.append("- false: %s %s %s: %s" % (rfc3339(a["ts"]), a["kind"], a["identity"] or
                                                a["fp"] or a["src"], a["summary"][:160]))
    for iid, a in score.benign_hits:
        lines.append("- benign %s alerted: %s %s" % (iid, a["kind"], a["summary"][:160]))
    for a in score.side:
        lines.append("- side effect of an incident: %s %s %s: %s" % (
            rfc3339(a["ts"]), a["kind"], a["identity"] or a["fp"] or a["src"], a["summary"][:160]))
    return "\n".join(lines) + "\n"


def check_score(score, learning_us, what):
    errs = []
    for iid, k in score.missed():
        errs.append("%s: incident %s got no %s alert" % (what, iid, k))
    for iid, a in score.benign_hits:
        errs.append("%s: benign %s alerted %s (%s)" % (what, iid, a["kind"], a["summary"]))
    fr = score.false_rates(learning_us)
    if fr["policy_per_id_day"] > FALSE_POLICY_PER_ID_DAY:
        errs.append("%s: %.3f false policy alerts per identity-day > %.3f" %
                    (what, fr["policy_per_id_day"], FALSE_POLICY_PER_ID_DAY))
    if fr["baseline_per_id_week"] > FALSE_BASELINE_PER_ID_WEEK:
        errs.append("%s: %.2f false baseline alerts per identity-week > %.2f" %
                    (what, fr["baseline_per_id_week"], FALSE_BASELINE_PER_ID_WEEK))
    if not score.found:
        errs.append("%s: no incident expected any alert: the test checks nothing" % what)
    if errs:
        raise Fail("\n".join(errs))


# ---- audit trail (issue 6) -------------------------------------------------

def norm_path(target):
    """The truth's raw target as keywarden normalises it (docs/http.md):
    no query, percent-decoded, dot segments removed (RFC 3986 §5.2.4),
    duplicate slashes merged."""
    p = urllib.parse.unquote(target.split("?", 1)[0])
    segs = []
    for s in p.split("/"):
        if s in ("", "."):
            continue
        if s == "..":
            if segs:
                segs.pop()
            continue
        segs.append(s)
    return "/" + "/".join(segs) + ("/" if p.endswith("/") and segs else "")


def us3339(us):
    d = datetime.datetime.fromtimestamp(us // 1000000, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (us % 1000000)


def audit_query(kw, db, ident, since, until):
    r = run([kw, "audit", "--db", db, "--identity", ident, "--since", us3339(since),
             "--until", us3339(until), "--json"])
    rows = []
    for line in r.stdout.splitlines():
        if line.strip():
            a = json.loads(line)
            h = a.get("http", {})
            rows.append((parse_ts(a["timestamp"]), h.get("http_method", ""), h.get("path", ""),
                         h.get("status", 0)))
    return collections.Counter(rows)


def audit_windows(world):
    """(identity, since, until) to ask for: each identity's whole history,
    and around each incident a window whose bounds are the exact times of
    real transactions (since inclusive, until exclusive)."""
    wins = [(i, world.t0, world.t1 + 1) for i in world.identities + [""]]
    by_id = collections.defaultdict(list)
    for t in world.truth:
        by_id[t["identity"]].append(t["ts"])
    for inc in world.incidents:
        for ident in (inc["identity"], ""):
            ts = [x for x in by_id[ident]
                  if inc["start_ts"] - 3600e6 <= x <= inc["end_ts"] + 3600e6]
            if len(ts) >= 3:
                wins.append((ident, ts[1], ts[-1]))
    return wins


def check_audit(kw, world, db):
    # Exact times: a request is stamped with the time its first byte was
    # seen, even when that first segment held only a few bytes.
    truth = collections.defaultdict(list)
    for t in sorted(world.truth, key=lambda t: t["ts"]):
        truth[t["identity"]].append((t["ts"], t["method"], norm_path(t["target"]), t["status"]))
    errs, rows, n = [], 0, 0
    for ident, since, until in audit_windows(world):
        want = collections.Counter(r for r in truth[ident] if since <= r[0] < until)
        got = audit_query(kw, db, ident, since, until)
        n += 1
        rows += sum(got.values())
        miss, extra = want - got, got - want
        if miss or extra:
            errs.append("audit %r %s..%s: %d rows, truth %d; missing %s; extra %s" %
                        (ident, us3339(since), us3339(until), sum(got.values()),
                         sum(want.values()), list(miss.elements())[:3],
                         list(extra.elements())[:3]))
    if rows == 0:
        errs.append("audit: no rows at all: the comparison checks nothing")
    if errs:
        raise Fail("\n".join(errs[:10]))
    log("audit: %d queries, %d rows, equal to the truth (time, method, path, status)"
        % (n, rows))


# ---- secrets never at rest --------------------------------------------------

def client_streams(pcap, ports):
    """Client-to-server TCP payload per connection, in sequence order
    (retransmissions and reordering undone), from a classic pcap with
    Ethernet, 802.1Q/802.1ad, IPv4 or IPv6."""
    flows = collections.defaultdict(dict)
    with open(pcap, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    end = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack_from(end + "I", data, off + 8)[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        eth = 12
        etype = struct.unpack_from(">H", pkt, eth)[0]
        while etype in (0x8100, 0x88a8):
            eth += 4
            etype = struct.unpack_from(">H", pkt, eth)[0]
        ip = eth + 2
        if etype == 0x0800 and pkt[ip + 9] == 6:
            tcp = ip + (pkt[ip] & 15) * 4
            src, dst = pkt[ip + 12:ip + 16], pkt[ip + 16:ip + 20]
            iplen = struct.unpack_from(">H", pkt, ip + 2)[0]
            stop = ip + iplen
        elif etype == 0x86dd and pkt[ip + 6] == 6:
            tcp = ip + 40
            src, dst = pkt[ip + 8:ip + 24], pkt[ip + 24:ip + 40]
            stop = tcp + struct.unpack_from(">H", pkt, ip + 4)[0]
        else:
            continue
        sport, dport, seq = struct.unpack_from(">HHI", pkt, tcp)
        if dport not in ports:
            continue
        payload = pkt[tcp + (pkt[tcp + 12] >> 4) * 4:stop]
        if payload:
            flows[(src, dst, sport, dport)][seq] = payload
    for segs in flows.values():
        yield b"".join(segs[s] for s in sorted(segs))


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_NAMES = {b"authorization": b"Authorization", b"dpop": b"DPoP", b"x-api-key": b"X-API-Key"}


def h2_as_text(stream):
    """A client's HTTP/2 byte stream (RFC 9113 §4.1 frames) as the header
    lines the HTTP/1 patterns below read: every header block decoded with
    python3-hpack (an HPACK implementation other than the libnghttp2
    deflater kwsim encodes with), one table for the whole direction."""
    import hpack  # Debian python3-hpack; only HTTP/2 worlds need it
    dec, out, block, off = hpack.Decoder(), [], b"", len(H2_PREFACE)
    dec.max_allowed_table_size = 65536
    while off + 9 <= len(stream):
        n = int.from_bytes(stream[off:off + 3], "big")
        typ, flags = stream[off + 3], stream[off + 4]
        payload = stream[off + 9:off + 9 + n]
        off += 9 + n
        if typ not in (1, 9):  # HEADERS, CONTINUATION
            continue
        if typ == 1:
            pad = payload[0] if flags & 0x8 else 0
            payload = payload[(1 if flags & 0x8 else 0) + (5 if flags & 0x20 else 0):
                              len(payload) - pad]
        block += payload
        if flags & 0x4:  # END_HEADERS
            for name, value in dec.decode(block, raw=True):
                if name == b":path":
                    out.append(b"GET " + value + b" HTTP/2")
                else:
                    out.append(H2_NAMES.get(name, name) + b": " + value)
            block = b""
    return b"\r\n" + b"\r\n".join(out) + b"\r\n"


def world_secrets(world):
    """Every secret the world sends, read from its captures: Bearer and
    DPoP-scheme tokens (JWTs included), DPoP proofs, X-API-Key values, api_key query values, and Basic
    credentials (the base64 blob and the password). Checked complete: the
    sha256 of the secrets found covers every fingerprint in the truth."""
    ports = {t["server_port"] for t in world.truth}
    secrets, users = set(), set()
    pats = [re.compile(p) for p in (rb"\r\nAuthorization: (?:Bearer|DPoP) ([\x21-\x7e]+)\r\n",
                                    rb"\r\nDPoP: ([\x21-\x7e]+)\r\n",  # proofs: never at rest either
                                    rb"\r\nX-API-Key: ([\x21-\x7e]+)\r\n",
                                    rb"[?&]api_key=([^ &#\r\n]+)[ &#]")]
    basic = re.compile(rb"\r\nAuthorization: Basic ([A-Za-z0-9+/=]+)\r\n")
    for pcap in world.pcaps:
        for s in client_streams(pcap, ports):
            if s.startswith(H2_PREFACE):
                s = h2_as_text(s)
            for p in pats:
                secrets |= {m.group(1).decode() for m in p.finditer(s)}
            for m in basic.finditer(s):
                user, _, pw = base64.b64decode(m.group(1)).decode().partition(":")
                users.add(user)
                secrets |= {m.group(1).decode(), pw}
    fps = {t["fingerprint"] for t in world.truth if t["fingerprint"]}
    have = {"sha256:" + hashlib.sha256(s.encode()).hexdigest() for s in secrets | users}
    if not fps <= have:
        raise Fail("secrets: %d fingerprints of the truth have no secret found in the capture" %
                   len(fps - have))
    # JWT signatures alone are secret enough to matter.
    for s in list(secrets):
        if s.count(".") == 2 and s.startswith("eyJ"):
            secrets.add(s.rsplit(".", 1)[1])
    return {s for s in secrets if len(s) >= 6}


def check_secrets(world, outputs):
    secrets = world_secrets(world)
    needles = [s.encode() for s in secrets]
    # The check must be able to fail: the capture itself holds them all.
    blob = b"".join(open(p, "rb").read() for p in world.pcaps[:1])
    if not any(n in blob for n in needles):
        raise Fail("secrets: none found in the capture by the same search: the check is blind")
    leaks = []
    files = []
    for o in outputs:
        for key in ("eve", "stdout", "stderr"):
            files.append(o[key])
        for suffix in ("", "-wal", "-shm", "-journal"):
            files.append(o["db"] + suffix)
    for path in sorted(set(files)):
        if not os.path.exists(path):
            continue
        data = open(path, "rb").read()
        for n in needles:
            if n in data:
                leaks.append("%s holds a secret (%s...)" % (path, n[:4].decode()))
    if leaks:
        raise Fail("secrets at rest:\n" + "\n".join(leaks[:10]))
    log("secrets: %d secrets from the capture, none in %d output files" %
        (len(secrets), sum(os.path.exists(p) for p in set(files))))


# ---- commands -----------------------------------------------------------------

def write_report(path, text):
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")


def cmd_policy(kwsim, kw, world_file, work, opt):
    extra = ["--seed", str(opt.seed)] + (["--days", str(opt.days)] if opt.days else [])
    extra += ["--tls"] if opt.tls else []  # every session in TLS, its secrets in a key log
    w = gen(kwsim, world_file, os.path.join(work, "w"), *extra)
    run([kw, "check", "-q", "-c", os.path.join(w.dir, "keywarden.yaml")])
    o = keywarden_run(kw, w, "run")
    alerts = read_alerts(o["eve"])
    score = Score(w, alerts, baseline_mode=False)
    title = "%s, seed %d, %d identities, %.1f days, %d transactions (%.1f s)" % (
        os.path.basename(world_file), opt.seed, len(w.identities), (w.t1 - w.t0) / DAY_US,
        len(w.truth), o["seconds"])
    text = table(score, LEARNING_US, title)
    log(text)
    write_report(opt.report, text)
    check_score(score, LEARNING_US, "policy")
    check_audit(kw, w, o["db"])
    # over TLS the capture hides the secrets: the same world in clear (same
    # seed, same credentials) is where they are read from
    clear = gen(kwsim, world_file, os.path.join(work, "clear"), *extra[:-1]) if opt.tls else w
    check_secrets(clear, [o])
    if opt.tls:
        http = sum(1 for r in read_jsonl(o["eve"]) if r.get("event_type") == "http")
        if http != len(w.truth):
            raise Fail("tls: %d http records decrypted, the world has %d" % (http, len(w.truth)))


# Detections that need no HTTP: they judge the TLS session itself.
META_KINDS = {"off_hours", "outside_access_window"}


def cmd_meta(kwsim, kw, world_file, work, opt):
    """Every session in TLS and no key log: the policy detections that need
    no HTTP still fire, on sessions to the configured services attributed
    by their source address, and say that the session was encrypted."""
    extra = ["--seed", str(opt.seed), "--tls"] + (["--days", str(opt.days)] if opt.days else [])
    w = gen(kwsim, world_file, os.path.join(work, "w"), *extra)
    cfg = os.path.join(w.dir, "keywarden.yaml")
    with open(cfg) as f:
        text = "".join(l for l in f if not l.startswith("tls:"))
    hosts = sorted({t["host"] for t in w.truth if t.get("host")})
    text += "services:\n" + "".join("  - { host: %s }\n" % h for h in hosts)
    with open(cfg, "w") as f:
        f.write(text)
    run([kw, "check", "-q", "-c", cfg])
    o = keywarden_run(kw, w, "meta")
    recs = read_jsonl(o["eve"])
    if any(r.get("event_type") == "http" for r in recs):
        raise Fail("meta: http records without keys")
    if not any(r.get("event_type") == "tls" for r in recs):
        raise Fail("meta: no tls records")
    alerts = read_alerts(o["eve"])
    score = Score(w, alerts, baseline_mode=False)
    for inc in score.incs:
        inc["exp"] &= META_KINDS
        inc["also"] = set(inc["also"]) | (set(inc["expected"]) - META_KINDS) | {"unusual_hour", "new_source"}
    score.classify()
    title = "%s over TLS without keys (metadata only), seed %d, %d identities, %.1f days" % (
        os.path.basename(world_file), opt.seed, len(w.identities), (w.t1 - w.t0) / DAY_US)
    text = table(score, LEARNING_US, title)
    log(text)
    write_report(opt.report, text)
    check_score(score, LEARNING_US, "meta")
    plain = [a for a in alerts if "update_of" not in a and "encrypted TLS session" not in a["summary"]
             and not a["summary"].endswith(")") and " more " not in a["summary"]]
    if plain:
        raise Fail("meta: alerts that do not say the session was encrypted: %s" %
                   [a["summary"][:100] for a in plain])


def set_sensitivity(level):
    return lambda text: re.sub(r"sensitivity: \w+", "sensitivity: " + level, text)


def no_schedules(text):
    return re.sub(r"(?m)^\s+schedule: .*\n", "", text)


def cmd_baseline(kwsim, kw, world_file, work, opt):
    w = gen(kwsim, world_file, os.path.join(work, "w"), "--seed", str(opt.seed), "--split", "day")
    w.edit_rules(no_schedules)
    if any("schedule:" in open(p).read() for p in w.rules):
        raise Fail("could not remove the schedules from the generated rules")
    results, errors = {}, []
    for level in ("low", "medium", "high"):
        w.edit_rules(set_sensitivity(level))
        o = keywarden_run(kw, w, "run-" + level)
        score = Score(w, read_alerts(o["eve"]), baseline_mode=True)
        results[level] = (score, o)
        title = "%s, seed %d, sensitivity %s, %d identities, %.1f days, %d transactions " \
                "(%.1f s)" % (os.path.basename(world_file), opt.seed, level, len(w.identities),
                              (w.t1 - w.t0) / DAY_US, len(w.truth), o["seconds"])
        text = table(score, LEARNING_US, title)
        log(text)
        write_report(opt.report, text)
    summary = ["| sensitivity | " + " | ".join(sorted(BASELINE_KINDS)) +
               " | false baseline / id-week | benign alerted |",
               "|---|" + "---|" * (len(BASELINE_KINDS) + 2)]
    for level, (score, _) in results.items():
        rec = score.recall()
        cells = ["%d/%d" % tuple(rec[k]) if k in rec else "-" for k in sorted(BASELINE_KINDS)]
        fr = score.false_rates(LEARNING_US)
        summary.append("| %s | %s | %.2f (%d) | %d |" % (level, " | ".join(cells),
                                                        fr["baseline_per_id_week"],
                                                        fr["baseline"], len(score.benign_hits)))
    log("\n".join(summary))
    write_report(opt.report, "\n".join(summary) + "\n")
    score, o = results["medium"]
    if not BASELINE_KINDS <= {k for _, k in score.found}:
        errors.append("baseline: the world does not stage every baseline kind after learning: %s"
                      % sorted(BASELINE_KINDS - {k for _, k in score.found}))
    try:
        check_score(score, LEARNING_US, "baseline medium")
    except Fail as e:
        errors.append(str(e))
    if errors:
        raise Fail("\n".join(errors))
    check_audit(kw, w, o["db"])
    check_secrets(w, [r[1] for r in results.values()])


def baseline_show(kw, db):
    """`keywarden baseline show --json`: the list, then every profile."""
    r = run([kw, "baseline", "show", "--json", "--db", db])
    keys = [json.loads(l)["key"] for l in r.stdout.splitlines() if l.strip()]
    shows = {"": r.stdout}
    for k in keys:
        shows[k] = run([kw, "baseline", "show", k, "--json", "--db", db]).stdout
    return keys, shows


def alert_keys(alerts):
    return sorted((a["ts"], a["kind"], a["identity"] or "", a["subject"], a["summary"])
                  for a in alerts)


def cmd_restart(kwsim, kw, world_file, work, opt):
    w = gen(kwsim, world_file, os.path.join(work, "w"), "--seed", str(opt.seed), "--split", "day")
    w.edit_rules(no_schedules)
    if len(w.pcaps) < 4:
        raise Fail("restart: need several day files, got %d" % len(w.pcaps))
    one = keywarden_run(kw, w, "one", w.pcaps)
    keys1, show1 = baseline_show(kw, one["db"])
    outs = [one]
    # Split in the middle of learning, and inside the incident week (open
    # quarantine and key-sharing episodes cross the restart).
    for cut in (len(w.pcaps) // 2, len(w.pcaps) - 5):
        outs += restart_compare(kw, w, cut, keys1, show1, read_alerts(one["eve"]))
    # (secrets: e2e_baseline checks the same world's outputs)


def restart_compare(kw, w, half, keys1, show1, alerts1):
    db2 = os.path.join(w.dir, "two-%d.db" % half)
    a = keywarden_run(kw, w, "two-%d-a" % half, w.pcaps[:half], db=db2)
    b = keywarden_run(kw, w, "two-%d-b" % half, w.pcaps[half:], db=db2)
    keys2, show2 = baseline_show(kw, db2)
    errs = []
    if not keys1:
        errs.append("restart: no profiles learned: the comparison checks nothing")
    if keys1 != keys2:
        errs.append("restart: profiles differ: %s vs %s" % (keys1, keys2))
    for k in keys1:
        if show1.get(k) != show2.get(k):
            d1, d2 = json.loads(show1[k]), json.loads(show2.get(k) or "{}")
            diff = sorted(f for f in set(d1) | set(d2) if d1.get(f) != d2.get(f))
            errs.append("restart: baseline show %s differs in %s" % (k or "(list)", diff))
    al1 = alert_keys(alerts1)
    al2 = alert_keys(read_alerts(a["eve"]) + read_alerts(b["eve"]))
    if al1 != al2:
        s1, s2 = set(al1), set(al2)
        errs.append("restart: alerts differ: only in one run %s; only in two runs %s" %
                    ([x[1:4] for x in sorted(s1 - s2)][:5], [x[1:4] for x in sorted(s2 - s1)][:5]))
    if errs:
        raise Fail("\n".join(errs))
    log("restart: %d profiles and %d alerts equal over one run (%d files) and two runs "
        "(%d + %d files)" % (len(keys1), len(al1), len(w.pcaps), half, len(w.pcaps) - half))
    return [a, b]


def cmd_h2loss(kwsim, kw, world_file, work, opt):
    """HTTP/2 under mirror loss: the world with --loss, keywarden against
    the truth stream by stream (client address, port, stream id, time).
    Nothing is invented and nothing reported differs from the truth (a
    stream whose blocks could not be decoded after a loss is reported with
    what is known, never with a guessed header). A stream of a connection
    before its first lost stream (the connection's HPACK tables are then
    intact) is reported whole: request, status, gRPC status. Caught: a
    connection whose first client segment (the preface) was lost dropped
    whole, and an answer reaching the parser before the request bytes its
    ACK covers (reported without its answer)."""
    w = gen(kwsim, world_file, os.path.join(work, "w"), "--seed", str(opt.seed),
            "--days", str(opt.days or 4), "--loss", "0.01")
    o = keywarden_run(kw, w, "run")
    # a client port comes back on later connections: a stream is its
    # (address, port, stream id) and the truth's nearest in time
    by_key = collections.defaultdict(list)
    conns, cur = [], {}
    for t in sorted((t for t in w.truth if t.get("protocol") == "HTTP/2"),
                    key=lambda t: t["ts"]):
        by_key[(t["client_ip"], t["client_port"], t["stream_id"])].append(t)
        c = (t["client_ip"], t["client_port"])
        if c not in cur or t["stream_id"] <= cur[c][-1]["stream_id"]:
            cur[c] = []
            conns.append(cur[c])
        cur[c].append(t)
    whole = set()
    for c in conns:
        for t in c:
            if t["lost"]:
                break
            whole.add(id(t))
    got, errs = {}, []
    for r in read_jsonl(o["eve"]):
        h = r.get("http", {})
        if r.get("event_type") != "http" or h.get("protocol") != "HTTP/2":
            continue
        k = (r["src_ip"], r["src_port"], h.get("http2", {}).get("stream_id"))
        if k not in by_key:
            errs.append("invented: %s %s" % (k, h.get("url")))
            continue
        ts = parse_ts(r["timestamp"])
        t = min(by_key[k], key=lambda x: abs(x["ts"] - ts))
        if id(t) in got:
            errs.append("reported twice: %s" % (k,))
        got[id(t)] = h
        if "http_method" in h and (h["http_method"], h.get("url")) != (t["method"], t["target"]):
            errs.append("%s: %s %s, truth %s %s" % (k, h["http_method"], h.get("url"),
                                                    t["method"], t["target"]))
        if "status" in h and not t["lost"] and h["status"] != t["status"]:
            errs.append("%s: status %s, truth %s" % (k, h["status"], t["status"]))
        g = h.get("grpc", {}).get("status")
        if g is not None and not t["lost"] and g != t.get("grpc_status"):
            errs.append("%s: grpc-status %s, truth %s" % (k, g, t.get("grpc_status")))
        if id(t) in whole and ("http_method" not in h or "status" not in h or
                               ("grpc_status" in t and g is None)):
            errs.append("%s (before any loss on its connection): reported without %s" %
                        (k, "its request" if "http_method" not in h else "its answer"))
    for c in conns:
        for t in c:
            if id(t) in whole and id(t) not in got:
                errs.append("not reported (before any loss on its connection): %s %s %s" %
                            (t["client_ip"], t["client_port"], t["stream_id"]))
    lost = sum(1 for c in conns for t in c if t["lost"])
    if not lost or len(whole) == sum(len(c) for c in conns):
        errs.append("no stream lost: the loss check checks nothing")
    if errs:
        raise Fail("%d problems:\n%s" % (len(errs), "\n".join(errs[:12])))
    log("h2 loss: %d streams on %d connections, %d marked lost; %d reported, nothing invented "
        "or different; all %d streams before a connection's first loss whole" %
        (sum(len(c) for c in conns), len(conns), lost, len(got), len(whole)))


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["policy", "baseline", "restart", "meta", "h2loss"])
    ap.add_argument("kwsim")
    ap.add_argument("keywarden")
    ap.add_argument("world")
    ap.add_argument("work")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=0)
    ap.add_argument("--report", help="append the markdown tables to this file")
    ap.add_argument("--tls", action="store_true",
                    help="policy: the world in TLS, decrypted with its key log")
    opt = ap.parse_args()
    os.makedirs(opt.work, exist_ok=True)
    cmd = {"policy": cmd_policy, "baseline": cmd_baseline, "restart": cmd_restart,
           "meta": cmd_meta, "h2loss": cmd_h2loss}[opt.command]
    t = time.monotonic()
    try:
        cmd(opt.kwsim, opt.keywarden, opt.world, opt.work, opt)
    except Fail as e:
        print("FAIL: %s" % e, flush=True)
        return 1
    log("%s ok (%.1f s)" % (opt.command, time.monotonic() - t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
