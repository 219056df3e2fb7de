#!/usr/bin/env python3
"""The documented routes of RabbitMQ's management API, from the server's own
/api/index.html (stdin): one "METHOD /api/..." line per method marked X in
the table's GET, PUT, DELETE and POST columns, parameters as {name}."""
import re
import sys

html = sys.stdin.read()
out = set()
for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    if len(cells) < 5 or "/api" not in cells[4]:
        continue
    path = re.sub(r"<i>([^<]*)</i>", r"{\1}", cells[4])
    path = re.sub(r"<[^>]*>", "", path).strip()
    for m, c in zip(("GET", "PUT", "DELETE", "POST"), cells[:4]):
        if c.strip() == "X":
            out.add("%s %s" % (m, path))
print("\n".join(sorted(out)))
