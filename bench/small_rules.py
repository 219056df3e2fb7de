#!/usr/bin/env python3
"""bench/small_rules.py KEYWARDEN CAPTURE OUT.yaml [UNKNOWN]

A rules file for the small-API bench capture (kwsim dense --small), so
the bench also measures the path of a deployed sensor: every credential
but UNKNOWN (default 4) claimed by an identity with a schedule, source
networks, a scope, a deny list and a rate limit. Without rules every
credential of that capture is unknown, and the run measures an
unconfigured install (4,549 alerts on the 450 MB capture, nearly all
unknown_credential and credential_stuffing).

The credentials' fingerprints are read from the EVE records of a
keywarden run over CAPTURE (a cut of a few MB has them all); no secret is
written anywhere, only the SHA-256 fingerprints keywarden prints.
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    kw, cap, out = sys.argv[1:4]
    unknown = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    with tempfile.TemporaryDirectory() as d:
        eve = os.path.join(d, "eve.json")
        subprocess.run([kw, "run", "-q", "-r", cap, "--eve", eve, "--db",
                        os.path.join(d, "kw.db")], check=True)
        fps = set()
        with open(eve) as f:
            for line in f:
                r = json.loads(line)
                fp = r.get("credential", {}).get("fingerprint")
                if r.get("event_type") == "http" and fp:
                    fps.add(fp)
    fps = sorted(fps)
    if len(fps) <= unknown:
        sys.exit("small_rules.py: only %d credentials in %s" % (len(fps), cap))
    lines = ["# made by bench/small_rules.py from %s" % os.path.basename(cap),
             "identities:"]
    for i, fp in enumerate(fps[:len(fps) - unknown]):
        lines += ["  - id: c%02d" % i,
                  "    name: Contractor %d" % i,
                  "    credentials:",
                  "      - { sha256: \"%s\" }" % fp,
                  "    timezone: Europe/Berlin",
                  "    schedule: { days: mon-fri, hours: \"07:00-19:00\" }",
                  "    sources: [ 10.0.0.0/8 ]",
                  "    scope: [ \"GET /v1/**\", \"POST /v1/**\", \"PUT /v1/**\" ]",
                  "    deny: [ \"* /v1/admin/**\" ]",
                  "    limits: { requests_per_hour: 200000 }"]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: %d identities, %d credentials left unknown"
          % (out, len(fps) - unknown, unknown))


if __name__ == "__main__":
    main()
