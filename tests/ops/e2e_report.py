#!/usr/bin/env python3
"""`keywarden report` end to end (issue 14): a simulated world (kwsim,
tests/sim/worlds/demo.yaml) plus one hostile request made by curl to a
Python server on lo and recorded by tcpdump (a Host and a User-Agent that
carry <script>, a bearer token nobody owns), run through `keywarden run`,
then `keywarden report`, then rendered by chromium --headless.

What is checked, and against what:
 - every identity's 7x24 heat map equals the audit rows counted again here
   by local weekday and hour with Python's zoneinfo (not keywarden's TZif
   reader), in the time zone the rule file gives;
 - the schedule outlines equal the rule file's days and hours;
 - per identity, as many timeline entries as stored alert records name it,
   and each entry carries its summary sentence;
 - the hostile Host, User-Agent and path appear only escaped; the page has
   no <script>, no src, no href off the page, no url(); no secret seen on
   the wire (tshark reads them from the captures) is in the page;
 - chromium renders it with no console message (the page's CSP,
   default-src 'none', reports any load it would attempt), the DOM it
   built has the same cells, outlines and entries, and a screenshot is kept
   in OUT_DIR as the test artefact.
Usage: e2e_report.py KEYWARDEN KWSIM WORLD_YAML OUT_DIR
Exits 77 (skipped) without root (tcpdump on lo) or a tool."""
import datetime
import html.parser
import http.server
import json
import os
import re
import shutil
import socket
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import zoneinfo

import yaml

from kwtest import LoCapture  # tests/ops/kwtest.py: tcpdump on lo, stopped when quiet

HOSTILE_UA = "<script>alert('ua')</script> Mozilla/5.0"
HOSTILE_HOST = "<script>alert(\"host\")</script>.evil"
HOSTILE_PATH = "/v1/orders/<script>alert(3)</script>"
HOSTILE_TOKEN = "kwtest-hostile-Zq8pL2vX9rT4mN7bK1cW"
DAY = datetime.datetime(2026, 3, 23, 12, 0, tzinfo=datetime.timezone.utc)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def skip(why):
    print("SKIP: " + why)
    sys.exit(77)


class _H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b'{"ok":true}\n'
        self.send_response(200)  # an unknown credential the API accepts: an alert
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def hostile_capture(work):
    """curl -> http.server on 127.0.0.1, recorded by tcpdump; then moved
    in time (editcap -t) onto the simulated Monday so both fall in the
    report's week."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _H)
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    raw = os.path.join(work, "hostile-raw.pcap")
    cap = LoCapture(raw, [port])
    try:
        for path in (HOSTILE_PATH, "/v1/orders/1"):
            subprocess.run(["curl", "-s", "-o", "/dev/null", "--path-as-is",
                            "-H", "Host: " + HOSTILE_HOST, "-A", HOSTILE_UA,
                            "-H", "Authorization: Bearer " + HOSTILE_TOKEN,
                            "http://127.0.0.1:%d%s" % (port, path)], check=True, timeout=10)
    finally:
        cap.stop()
        srv.shutdown()
        srv.server_close()
    with open(raw, "rb") as f:
        head = f.read(24 + 16)
    magic = struct.unpack("<I", head[:4])[0]
    check(magic in (0xA1B2C3D4, 0xA1B23C4D), "tcpdump wrote a pcap")
    sec = struct.unpack("<I", head[24:28])[0]
    out = os.path.join(work, "hostile.pcap")
    subprocess.run(["editcap", "-t", str(int(DAY.timestamp()) - sec), raw, out], check=True)
    return out


def wire_secrets(pcaps):
    """Every credential the captures carried, as tshark reads them."""
    secrets = set()
    for p in pcaps:
        out = subprocess.run(["tshark", "-r", p, "-Y", "http.request", "-T", "fields",
                              "-E", "separator=\t", "-e", "http.authorization",
                              "-e", "http.request.line", "-e", "http.request.uri.query"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            for part in line.split("\t"):
                for v in part.split(","):
                    m = re.match(r"\s*(?:Bearer|Basic)\s+(\S+)", v)
                    if m:
                        secrets.add(m.group(1))
                    m = re.match(r"\s*X-API-Key:\s*(\S+)", v, re.I)
                    if m:
                        secrets.add(m.group(1).strip())
                    m = re.search(r"(?:^|&)api_key=([^&\s]+)", v)
                    if m:
                        secrets.add(m.group(1))
    return {s for s in secrets if len(s) >= 8}


class Page(html.parser.HTMLParser):
    """The parts of the report the test reads: per identity section its
    heat map cells, schedule outlines and alert entries; every tag, every
    attribute value and the text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections, self.cur, self.tags, self.attrs, self.text = {}, None, [], [], []
        self.in_summary = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs.extend((tag, k, v or "") for k, v in attrs)
        cls = (a.get("class") or "").split()
        if tag == "section" and "ident" in cls:
            self.cur = {"cells": {}, "sched": [], "grace": [], "alerts": [], "summaries": []}
            self.sections[a.get("data-id", "")] = self.cur
        if self.cur is None:
            return
        if tag == "rect" and "cell" in cls:
            self.cur["cells"][(int(a["data-day"]), int(a["data-hour"]))] = int(a["data-n"])
        if tag == "rect" and ("sched" in cls or "grace" in cls):
            self.cur["sched" if "sched" in cls else "grace"].append(
                (float(a["x"]), float(a["y"]), float(a["width"])))
        if tag == "li" and "alert" in cls:
            self.cur["alerts"].append(a.get("data-kind"))
        if tag == "p" and "summary" in cls:
            self.in_summary = True
            self.cur["summaries"].append("")

    def handle_endtag(self, tag):
        if tag == "section":
            self.cur = None
        if tag == "p":
            self.in_summary = False

    def handle_data(self, data):
        self.text.append(data)
        if self.in_summary and self.cur is not None:
            self.cur["summaries"][-1] += data


def parse(text):
    p = Page()
    p.feed(text)
    p.close()
    return p


def expected_heat(db, since, until, ident, tz):
    z = zoneinfo.ZoneInfo(tz)
    grid = {}
    for (ts,) in db.execute("SELECT ts FROM audit WHERE identity=? AND ts>=? AND ts<?",
                            (ident, since, until)):
        t = datetime.datetime.fromtimestamp(ts / 1e6, tz=z)
        k = (t.weekday(), t.hour)
        grid[k] = grid.get(k, 0) + 1
    return grid


DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def expected_sched(rule):
    """(row, start minute, end minute) runs of the rule's schedule, grace 0."""
    s = rule.get("schedule")
    if not s:
        return []
    d = s["days"]
    if d == "daily":
        days = list(range(7))
    elif "-" in d:
        a, b = (DAYS.index(x) for x in d.split("-"))
        days = [(a + i) % 7 for i in range((b - a) % 7 + 1)]
    else:
        days = [DAYS.index(x) for x in d.split(",")]
    h0, h1 = s["hours"].split("-")
    m0 = int(h0[:2]) * 60 + int(h0[3:])
    m1 = int(h1[:2]) * 60 + int(h1[3:])
    mins = [[False] * 1440 for _ in range(7)]
    for day in days:
        if m1 > m0:
            for m in range(m0, m1):
                mins[day][m] = True
        else:  # crosses midnight: belongs to the day it starts on
            for m in range(m0, 1440):
                mins[day][m] = True
            for m in range(0, m1):
                mins[(day + 1) % 7][m] = True
    runs = []
    for row in range(7):
        start = None
        for m in range(1441):
            on = m < 1440 and mins[row][m]
            if on and start is None:
                start = m
            if not on and start is not None:
                runs.append((row, start, m))
                start = None
    return sorted(runs)


def runs_of(rects):
    # heat map geometry of report_svg.c: x0 44, 24 px per hour, y0 22, 20 px per row
    return sorted((round((y - 22) / 20), round((x - 44) * 60 / 24), round((x - 44 + w) * 60 / 24))
                  for x, y, w in rects)


def chromium(page, out_dir, work):
    base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + os.path.join(work, "chromium-profile"),
            "--enable-logging=stderr", "--v=0"]
    url = "file://" + os.path.abspath(page)
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    shot = os.path.join(out_dir, "report.png")
    if os.path.exists(shot):
        os.unlink(shot)
    sh = subprocess.run(base + ["--hide-scrollbars", "--window-size=1280,2400",
                                "--screenshot=" + shot, url],
                        capture_output=True, text=True, timeout=120)
    console = [ln for ln in (dom.stderr + sh.stderr).splitlines() if ":CONSOLE" in ln]
    check(dom.returncode == 0 and sh.returncode == 0, "chromium ran (rc %d, %d)"
          % (dom.returncode, sh.returncode))
    check(not console, "no console message while rendering (%s)" % console[:3])
    ok = os.path.exists(shot) and os.path.getsize(shot) > 20000
    if ok:
        with open(shot, "rb") as f:
            head = f.read(24)
        w, h = struct.unpack(">II", head[16:24])
        ok = head[:8] == b"\x89PNG\r\n\x1a\n" and (w, h) == (1280, 2400)
    check(ok, "screenshot kept: %s" % shot)
    return dom.stdout


def check_page(label, p, db, since, until, rules, alerts_by_id, secrets, raw):
    ids = {r["id"]: r for r in rules}
    check(set(ids) <= set(p.sections), "%s: a section for every identity of the rules" % label)
    check("" in p.sections, "%s: a section for the unattributed credentials" % label)
    for ident, sec in sorted(p.sections.items()):
        tz = ids[ident]["timezone"] if ident in ids else "UTC"
        exp = expected_heat(db, since, until, ident, tz)
        got = {k: v for k, v in sec["cells"].items() if v}
        check(len(sec["cells"]) == 168 and got == exp,
              "%s: %s heat map (%d cells, %d requests) = audit rows by local hour in %s (%d)"
              % (label, ident or "unattributed", len(sec["cells"]), sum(got.values()), tz,
                 sum(exp.values())))
        if ident in ids:
            want = expected_sched(ids[ident])
            grace = str(ids[ident]["schedule"].get("grace", "0")).strip("m") != "0"
            check(runs_of(sec["sched"]) == want and len(want) > 0
                  and (len(sec["grace"]) >= len(want) if grace else not sec["grace"]),
                  "%s: %s schedule outline = %s %s (%d runs)"
                  % (label, ident, ids[ident]["schedule"]["days"],
                     ids[ident]["schedule"]["hours"], len(want)))
        n = alerts_by_id.get(ident, 0)
        check(len(sec["alerts"]) == n and all(s.strip() for s in sec["summaries"])
              and len(sec["summaries"]) == n,
              "%s: %s has %d alert entries, each with its sentence (stored: %d)"
              % (label, ident or "unattributed", len(sec["alerts"]), n))
    text = "".join(p.text)
    check("script" not in p.tags, "%s: no <script> element" % label)
    # What keywarden stored of the hostile request (the Host cut at its
    # '/', the path normalised) is what the page must show, as text.
    stored = db.execute("SELECT DISTINCT host, CASE template WHEN '' THEN path ELSE template END "
                        "FROM audit WHERE host LIKE '%<script>%'").fetchall()
    check(stored and all(h in text and e in text for h, e in stored) and HOSTILE_UA in text,
          "%s: hostile Host %s, its endpoint and User-Agent shown as text"
          % (label, [h for h, _ in stored]))
    check("<script" not in raw.lower(), "%s: no '<script' anywhere in the markup" % label)
    bad = [(t, k, v) for t, k, v in p.attrs
           if k == "src" or (k == "href" and not v.startswith("#"))
           or re.search(r"url\(|https?:|//", v) and k not in ("content",)]
    check(not bad, "%s: no src, no href off the page, no url() (%s)" % (label, bad[:3]))
    check(not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", raw, re.I),
          "%s: no http(s):// src/href in the text" % label)
    leaked = [s for s in secrets if s in raw]
    check(secrets and not leaked, "%s: none of the %d secrets on the wire is in the page (%s)"
          % (label, len(secrets), leaked[:2]))


def main():
    kw, kwsim, world, out_dir = sys.argv[1:5]
    if os.geteuid() != 0:
        skip("needs root for tcpdump on lo")
    for tool in ("tcpdump", "curl", "editcap", "tshark", "chromium"):
        if not shutil.which(tool):
            skip(tool + " missing")
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="kw-report-")
    try:
        sim = os.path.join(work, "world")
        subprocess.run([kwsim, "gen", "--world", world, "--seed", "1", "-o", sim], check=True,
                       stdout=subprocess.DEVNULL)
        hostile = hostile_capture(work)
        cfg = os.path.join(sim, "keywarden.yaml")
        cap = os.path.join(sim, "capture.pcap")
        r = subprocess.run([kw, "run", "-c", cfg, "-r", cap, "-r", hostile, "--no-progress"],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, "keywarden run (rc %d) %s" % (r.returncode, r.stderr[-300:]))
        page = os.path.join(out_dir, "report.html")
        rep = subprocess.run([kw, "report", "-c", cfg, "-o", page], capture_output=True,
                             text=True, timeout=120)
        check(rep.returncode == 0, "keywarden report (rc %d) %s" % (rep.returncode, rep.stderr))
        check(stat.S_IMODE(os.stat(page).st_mode) == 0o600, "page is 0600")
        db = sqlite3.connect(os.path.join(sim, "keywarden.db"))
        newest = max(db.execute("SELECT max(ts) FROM audit").fetchone()[0],
                     db.execute("SELECT max(ts) FROM alerts").fetchone()[0])
        since, until = newest - 7 * 86400 * 1000000, newest + 1
        with open(os.path.join(sim, "rules.d", "demo.yaml")) as f:
            rules = yaml.safe_load(f)["identities"]
        alerts_by_id = {}
        for (rec,) in db.execute("SELECT record FROM alerts WHERE ts>=? AND ts<?",
                                 (since, until)):
            i = (json.loads(rec).get("identity") or {}).get("id", "")
            alerts_by_id[i] = alerts_by_id.get(i, 0) + 1
        check(alerts_by_id.get("", 0) >= 2, "the hostile request and the stuffing raised "
              "alerts with no identity (%d)" % alerts_by_id.get("", 0))
        secrets = wire_secrets([cap, hostile])
        check(HOSTILE_TOKEN in secrets, "tshark read the hostile token off the wire")
        with open(page, encoding="utf-8") as f:
            raw = f.read()
        check_page("html", parse(raw), db, since, until, rules, alerts_by_id, secrets, raw)
        dom = chromium(page, out_dir, work)
        check_page("chromium DOM", parse(dom), db, since, until, rules, alerts_by_id, secrets,
                   dom)
        # one identity, and the command line's errors
        one = os.path.join(work, "c01.html")
        r = subprocess.run([kw, "report", "-c", cfg, "--identity", "c01", "-o", one],
                           capture_output=True, text=True)
        check(r.returncode == 0 and set(parse(open(one).read()).sections) == {"c01"},
              "--identity c01: one section")
        r = subprocess.run([kw, "report", "-c", cfg, "--since", "yesterday", "-o", one],
                           capture_output=True, text=True)
        check(r.returncode == 2 and "bad time" in r.stderr, "bad --since: exit 2 and says why")
        r = subprocess.run([kw, "report", "-c", cfg], capture_output=True, text=True)
        check(r.returncode == 2 and "-o FILE.html" in r.stderr, "no -o: exit 2 and says why")
        db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
