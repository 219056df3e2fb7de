#!/usr/bin/env python3
"""The man pages say what the binary and docs/ say (issue 14):
 - every long option of every command's --help is in keywarden(8), and
   every command of `keywarden --help`;
 - every config key of docs/config.md's example is in keywarden.yaml(5);
 - every alert kind of INTERFACES (rules/rules_config.c's list) is in
   keywarden-rules(5);
 - scdoc turns each page into roff that groff renders without warnings.
Usage: man_check.py KEYWARDEN SOURCE_DIR
"""
import os
import re
import subprocess
import sys

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def main():
    kw, src = sys.argv[1:3]
    man = os.path.join(src, "docs", "man")
    page = {n: open(os.path.join(man, n + ".scd")).read()
            for n in ("keywarden.8", "keywarden.yaml.5", "keywarden-rules.5")}
    top = subprocess.run([kw, "--help"], capture_output=True, text=True).stdout
    cmds = re.findall(r"^  keywarden (\w+)", top, re.M)
    check(len(cmds) >= 7, "commands from keywarden --help: %s" % cmds)
    for c in cmds:
        check("*keywarden %s*" % c in page["keywarden.8"], "keywarden(8) has command %s" % c)
        h = subprocess.run([kw, c, "--help"], capture_output=True, text=True)
        opts = set(re.findall(r"(--[a-z][a-z-]+)", h.stdout + h.stderr)) - {"--help"}
        missing = sorted(o for o in opts if o not in page["keywarden.8"])
        check(not missing, "keywarden(8) has every option of %s (missing %s)" % (c, missing))
    cfg = open(os.path.join(src, "docs", "config.md")).read()
    example = cfg[cfg.index("## Keys"):]
    example = example[example.index("```yaml") + 7:]
    example = example[:example.index("```")]
    keys = set(re.findall(r"^([a-z_]+):", example, re.M))
    keys |= {"%s.%s" % (s, k) for s, body in re.findall(r"^([a-z_]+):\s*\{([^}]*)\}", example,
                                                       re.M)
             for k in re.findall(r"([a-z_]+):", body)}
    missing = sorted(k for k in keys if "*%s*" % k not in page["keywarden.yaml.5"]
                     and k not in page["keywarden.yaml.5"])
    check(len(keys) > 10 and not missing, "keywarden.yaml(5) has the %d keys of docs/config.md "
          "(missing %s)" % (len(keys), missing))
    rc = open(os.path.join(src, "rules", "rules_config.c")).read()
    kinds = re.findall(r'"([a-z_]+)"', rc[rc.index("alert_kinds[]"):rc.index("NULL};")])
    missing = sorted(k for k in kinds if "*%s*" % k not in page["keywarden-rules.5"])
    check(len(kinds) >= 16 and not missing, "keywarden-rules(5) has the %d alert kinds (missing"
          " %s)" % (len(kinds), missing))
    for n, text in page.items():
        roff = subprocess.run(["scdoc"], input=text, capture_output=True, text=True)
        g = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=roff.stdout,
                           capture_output=True, text=True)
        check(roff.returncode == 0 and g.returncode == 0 and not g.stderr.strip(),
              "%s: scdoc and groff clean %s" % (n, (roff.stderr + g.stderr)[:200]))
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
