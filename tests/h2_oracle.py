#!/usr/bin/env python3
"""h2_oracle: keywarden's HTTP/2 transactions against tshark's decoding.

Used by e2e_h2.py (captures it records on loopback) and run on its own over
the captures stored in tests/data/h2 (`h2_oracle.py KEYWARDEN DIR`): each
NAME.pcap there has NAME.json saying its server ports, its key log if any,
and what else must hold (credentials, gRPC statuses).

The oracle is tshark (4.0): every request whose header block it decodes
(a client HEADERS with :method, a PUSH_PROMISE, the HTTP/1.1 request of an
h2c upgrade) must be exactly one keywarden `http` record with the same
client port and stream id, method, host (of :authority), path and, when
tshark decoded a final response, the same status. Nothing keywarden reports
may be missing from tshark's requests: nothing is invented.
"""
import json
import os
import subprocess
import sys


def _list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def _headers(frame):
    out = {}
    for h in _list(frame.get("http2.header")):
        name, value = h.get("http2.header.name"), h.get("http2.header.value", "")
        if name is not None and name not in out:
            out[name] = value
    return out


def _find(obj, key):
    """The first value of `key` anywhere inside a tshark JSON layer."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            r = _find(v, key)
            if r is not None:
                return r
    elif isinstance(obj, list):
        for v in obj:
            r = _find(v, key)
            if r is not None:
                return r
    return None


def tshark_requests(pcap, ports, keylog=None, decode_as="http2"):
    """{(client_port, stream_id): {"method", "authority", "path", "status"}}
    for every request tshark decodes; status is None without an answer."""
    cmd = ["tshark", "-r", pcap, "-T", "json", "--no-duplicate-keys", "-J", "tcp http2 http",
           "-Y", "http2.header or http.request or http.response"]
    for p in ports:
        cmd += ["-d", f"tcp.port=={p},{decode_as}"]  # http: tshark follows an h2c upgrade
    if keylog:
        cmd += ["-o", f"tls.keylog_file:{keylog}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    reqs, block_type = {}, {}
    for pkt in json.loads(out or "[]"):
        layers = pkt["_source"]["layers"]
        tcp = layers["tcp"][0] if isinstance(layers["tcp"], list) else layers["tcp"]
        sport, dport = int(tcp["tcp.srcport"]), int(tcp["tcp.dstport"])
        to_server = dport in ports
        cport = sport if to_server else dport
        for http in _list(layers.get("http")):  # the HTTP/1.1 request of an h2c upgrade
            method, uri = _find(http, "http.request.method"), _find(http, "http.request.uri")
            if to_server and method and "h2c" in str(_find(http, "http.upgrade")).lower():
                reqs[(cport, 1)] = {"method": method, "authority": _find(http, "http.host") or "",
                                    "path": uri, "status": None}
        for layer in _list(layers.get("http2")):
            for fr in _list(layer.get("http2.stream")):
                if "http2.type" not in fr:
                    continue
                ftype, sid = int(fr["http2.type"]), int(fr["http2.streamid"])
                if ftype in (1, 5):
                    block_type[(cport, to_server, sid)] = ftype
                elif ftype == 9:
                    ftype = block_type.get((cport, to_server, sid), 1)
                hs = _headers(fr)
                if not hs:
                    continue
                if ftype == 5:
                    sid = int(fr.get("http2.push_promise.promised_stream_id", sid))
                if (to_server or ftype == 5) and ":method" in hs:
                    reqs.setdefault((cport, sid), {
                        "method": hs[":method"], "authority": hs.get(":authority", ""),
                        "path": hs.get(":path", hs.get(":authority", "")), "status": None})
                elif not to_server and ":status" in hs and not hs[":status"].startswith("1"):
                    r = reqs.setdefault((cport, sid), {"method": None, "authority": None,
                                                       "path": None, "status": None})
                    if r["status"] is None:
                        r["status"] = int(hs[":status"])
    return reqs


def host_of(authority):
    a = (authority or "").rsplit("@", 1)[-1]
    if a.startswith("["):
        return a[: a.index("]") + 1].lower()
    return a.split(":")[0].lower()


def keywarden_records(kw, pcap, work, tag, keylog=None, rules=None):
    eve = os.path.join(work, f"{tag}.eve.json")
    if os.path.exists(eve):
        os.unlink(eve)
    cmd = [kw, "run", "-r", pcap, "--eve", eve, "-q", "--db", os.path.join(work, f"{tag}.db"),
           "--user", "root"]
    if keylog:
        cmd += ["--tls-keylog", keylog]
    if rules:
        cmd += ["--rules", rules]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"keywarden failed ({r.returncode}): {r.stderr}")
    with open(eve) as f:
        return [json.loads(l) for l in f]


def compare(recs, want, what):
    """keywarden's HTTP/2 records == tshark's requests; returns the count."""
    got = {}
    for r in recs:
        if r["event_type"] != "http" or r["http"].get("protocol") != "HTTP/2":
            continue
        key = (r["src_port"], r["http"]["http2"]["stream_id"])
        assert key not in got, f"{what}: two records for client port/stream {key}"
        got[key] = r["http"]
    want = {k: v for k, v in want.items() if v["method"] is not None}
    missing = sorted(set(want) - set(got))
    invented = sorted(set(got) - set(want))
    assert not missing, f"{what}: tshark's requests missing: {[(k, want[k]) for k in missing]}"
    assert not invented, f"{what}: not in tshark: {[(k, got[k]) for k in invented]}"
    for k, w in want.items():
        h = got[k]
        assert h.get("http_method") == w["method"], (what, k, h, w)
        assert h.get("url") == w["path"], (what, k, h, w)
        assert h.get("hostname", "") == host_of(w["authority"]), (what, k, h, w)
        if w["status"] is not None:
            assert h.get("status") == w["status"], (what, k, h, w)
        else:
            assert "status" not in h, (what, k, h, w)
    return len(want)


def main():
    kw, d = sys.argv[1], sys.argv[2]
    import tempfile
    work = tempfile.mkdtemp(prefix="kw_h2_oracle_")
    total = 0
    names = sorted(n[:-5] for n in os.listdir(d) if n.endswith(".json"))
    assert names, f"no captures in {d}"
    for name in names:
        with open(os.path.join(d, name + ".json")) as f:
            meta = json.load(f)
        pcap = os.path.join(d, name + ".pcap")
        keylog = None
        if meta.get("keylog"):  # keywarden refuses a key log others may read
            keylog = os.path.join(work, meta["keylog"])
            with open(os.path.join(d, meta["keylog"]), "rb") as src, open(keylog, "wb") as dst:
                dst.write(src.read())
            os.chmod(keylog, 0o600)
        want = tshark_requests(pcap, meta["ports"], keylog, meta.get("decode_as", "http2"))
        recs = keywarden_records(kw, pcap, work, name, keylog)
        n = compare(recs, want, name)
        assert n >= meta.get("min_requests", 1), f"{name}: only {n} requests"
        grpc = [r["http"]["grpc"] for r in recs if r["event_type"] == "http" and "grpc" in r["http"]]
        for st in meta.get("grpc_statuses", []):
            assert any(g.get("status") == st for g in grpc), f"{name}: no grpc-status {st}"
        print(f"{name}: {n} requests agree with tshark")
        total += n
    print(f"h2_oracle: {total} requests in {len(names)} captures agree with tshark")


if __name__ == "__main__":
    main()
