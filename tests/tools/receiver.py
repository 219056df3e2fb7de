#!/usr/bin/env python3
"""Test receiver for keywarden's alert delivery (tests/test_alerts.c).

A real HTTP server on 127.0.0.1 that stands in for a signed webhook
receiver or a Slack incoming webhook. It prints its port on stdout, then
records every request as one JSON line in --out:
  {"t": unix time, "path", "id": X-Keywarden-Alert-Id, "sig_ok": bool|null,
   "status": what it answered, "body": the request body, "error": ...}

Behaviour is programmed at run time with POST /_control (JSON):
  {"fail": N, "status": 500, "retry_after": "1"}  answer N requests with status
  {"hang": N, "seconds": 3}                       hold N requests, then close
  {"delay": 0.1}                                  delay every answer
  {"reset": true}                                 back to answering 200
Modes: --mode webhook (verifies X-Keywarden-Signature when --secret is
given; bad signature -> 401) or --mode slack (checks Block Kit structure
and limits; a bad message -> 400 invalid_blocks, as Slack answers).
"""
import argparse
import hashlib
import hmac
import json
import sys
import threading
import time
import ctypes
import signal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"fail": 0, "status": 500, "retry_after": None, "hang": 0, "seconds": 3.0, "delay": 0.0}


def slack_problems(msg):
    """Returns a list of Block Kit violations (empty when valid)."""
    p = []
    if not isinstance(msg, dict):
        return ["payload is not an object"]
    text = msg.get("text")
    if not isinstance(text, str) or not text.strip():
        p.append("missing text fallback")
    elif len(text) > 40000:
        p.append("text over 40000")
    blocks = msg.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return p + ["no blocks"]
    if len(blocks) > 50:
        p.append("more than 50 blocks")
    for i, b in enumerate(blocks):
        t = b.get("type")
        if t == "header":
            tx = b.get("text", {})
            if tx.get("type") != "plain_text" or not 0 < len(tx.get("text", "")) <= 150:
                p.append(f"block {i}: bad header")
        elif t == "section":
            tx, fields = b.get("text"), b.get("fields")
            if tx is None and fields is None:
                p.append(f"block {i}: section without text or fields")
            if tx is not None and (tx.get("type") not in ("mrkdwn", "plain_text")
                                   or not 0 < len(tx.get("text", "")) <= 3000):
                p.append(f"block {i}: section text length {len(tx.get('text', ''))}")
            if fields is not None:
                if not 0 < len(fields) <= 10:
                    p.append(f"block {i}: {len(fields)} fields")
                for f in fields:
                    if not 0 < len(f.get("text", "")) <= 2000:
                        p.append(f"block {i}: field length {len(f.get('text', ''))}")
        elif t == "context":
            el = b.get("elements", [])
            if not 0 < len(el) <= 10:
                p.append(f"block {i}: {len(el)} context elements")
            for e in el:
                if not 0 < len(e.get("text", "")) <= 3000:
                    p.append(f"block {i}: context text length")
        elif t != "divider":
            p.append(f"block {i}: unknown type {t}")
    return p


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that time out or die are part of the tests


class Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def record(self, rec):
        with LOCK:
            self.server.out.write(json.dumps(rec) + "\n")
            self.server.out.flush()

    def answer(self, status, body=b"ok", headers=()):
        try:
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (timeout, killed): its answer is lost

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.path == "/_control":
            c = json.loads(body or b"{}")
            with LOCK:
                if c.get("reset"):
                    STATE.update(fail=0, hang=0, delay=0.0, retry_after=None)
                STATE.update({k: v for k, v in c.items() if k != "reset"})
            return self.answer(200)
        rec = {"t": time.time(), "path": self.path, "id": self.headers.get("X-Keywarden-Alert-Id"),
               "sig_ok": None, "body": body.decode("utf-8", "replace")}
        secret = self.server.secret
        if self.server.mode == "webhook" and secret:
            ts = self.headers.get("X-Keywarden-Timestamp", "")
            want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
            rec["sig_ok"] = hmac.compare_digest(want, self.headers.get("X-Keywarden-Signature", ""))
        with LOCK:
            hang = STATE["hang"] > 0
            fail = not hang and STATE["fail"] > 0
            if hang:
                STATE["hang"] -= 1
            elif fail:
                STATE["fail"] -= 1
            status, ra, secs, delay = STATE["status"], STATE["retry_after"], STATE["seconds"], STATE["delay"]
        if hang:
            rec["status"] = "hang"
            self.record(rec)
            time.sleep(secs)
            self.close_connection = True
            return
        if delay:
            time.sleep(delay)
        if fail:
            rec["status"] = status
            self.record(rec)
            return self.answer(status, b"failing on purpose",
                               [("Retry-After", str(ra))] if ra is not None else [])
        if rec["sig_ok"] is False:
            rec["status"] = 401
            self.record(rec)
            return self.answer(401, b"bad signature")
        if self.server.mode == "slack":
            try:
                problems = slack_problems(json.loads(body))
            except ValueError:
                problems = ["body is not JSON"]
            if problems:
                rec["status"], rec["error"] = 400, problems
                self.record(rec)
                return self.answer(400, b"invalid_blocks")
        rec["status"] = 200
        self.record(rec)
        self.answer(200)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--secret", default="")
    ap.add_argument("--mode", choices=("webhook", "slack"), default="webhook")
    a = ap.parse_args()
    try:  # die with the test that started us (PR_SET_PDEATHSIG = 1)
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.out = open(a.out, "a", encoding="utf-8")
    srv.secret, srv.mode = a.secret, a.mode
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
