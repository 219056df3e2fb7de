#!/usr/bin/env python3
"""The Debian package (issue 14): built by `cpack -G DEB` from the build
tree, installed with dpkg on this machine, its service started as systemd
starts it, and purged.

 1  the .deb holds the binary, man pages, unit, sysusers.d, tmpfiles.d,
    logrotate and the example config in FHS places; Depends come from the
    libraries the binary links (dpkg-shlibdeps); the unit names /usr/bin.
 2  dpkg -i: the system user keywarden, /var/lib/keywarden (0700) and
    /var/log/keywarden owned by it, /etc/keywarden root:keywarden 0640,
    man pages lint clean, `keywarden check` passes on the shipped config.
 3  the service, fed a replay of a simulated company through a FIFO (the
    unit's ExecStart with `-r FIFO` added, as a drop-in would): with
    systemd as PID 1 through systemctl; without it, the unit's command
    line as the unit runs it (User, Group, AmbientCapabilities,
    CapabilityBoundingSet, EnvironmentFile, ExecStartPre first, via
    setpriv). It runs as keywarden with no capabilities, writes EVE and
    the audit trail where the package put them, reloads on SIGHUP, stops
    cleanly on SIGTERM (exit 0, final stats record).
 4  dpkg --purge leaves no file, folder or user behind (the user is
    removed by the test when the test made it: Debian keeps system users).

Needs root and dpkg, and CI=true or KW_TEST_SYSTEM=1 (it changes the
machine for every process on it); exit 77 = skipped (also when a keywarden package is
already installed: this test never touches a real installation).
Usage: e2e_package.py BUILD_DIR KWSIM WORLD
"""
import glob
import grp
import hashlib
import os
import pwd
import shlex
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kwtest  # noqa: E402

failures = []
FIFO_DIR = "/run/keywarden-pkgtest"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def sh(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def installed():
    r = sh(["dpkg-query", "-W", "-f=${Status}", "keywarden"])
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def pcap_records(path):
    with open(path, "rb") as f:
        data = f.read()
    import struct
    head, off, recs = data[:24], 24, []
    while off + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        recs.append(data[off:off + 16 + caplen])
        off += 16 + caplen
    return head, recs


def unit_fields(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "[")) and "=" in line:
                k, _, v = line.partition("=")
                out.setdefault(k, []).append(v)
    return out


def build_deb(build, work):
    r = sh(["cpack", "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"),
            "-D", "CPACK_OUTPUT_FILE_PREFIX=" + work], cwd=build)
    debs = glob.glob(os.path.join(work, "keywarden_*.deb"))
    check(r.returncode == 0 and len(debs) == 1, "cpack -G DEB builds one package %s"
          % (r.stderr[-500:] if r.returncode else os.path.basename(debs[0])))
    if not debs:
        return None
    deb = debs[0]
    files = set(l.split()[-1].lstrip(".") for l in sh(["dpkg-deb", "-c", deb]).stdout.splitlines()
                if not l.endswith("/"))
    want = {"/usr/bin/keywarden", "/usr/share/man/man8/keywarden.8.gz",
            "/usr/share/man/man5/keywarden.yaml.5.gz", "/usr/share/man/man5/keywarden-rules.5.gz",
            "/usr/lib/systemd/system/keywarden.service", "/usr/lib/sysusers.d/keywarden.conf",
            "/usr/lib/tmpfiles.d/keywarden.conf", "/etc/logrotate.d/keywarden",
            "/etc/keywarden/keywarden.yaml", "/etc/keywarden/rules.d/example.yaml"}
    check(files == want, "package contents in FHS places (extra %s, missing %s)"
          % (sorted(files - want), sorted(want - files)))
    dep = sh(["dpkg-deb", "-f", deb, "Depends"]).stdout
    libs = ["libpcap0.8", "libndpi", "libsqlite3-0", "libcurl4", "libfyaml0", "libjansson4",
            "libssl3", "libcap2", "libmicrohttpd12"]
    check(all(l in dep for l in libs), "Depends from dpkg-shlibdeps: %s" % dep.strip())
    conf = sh(["dpkg-deb", "-I", deb, "conffiles"]).stdout.split()
    check("/etc/keywarden/keywarden.yaml" in conf, "the config is a conffile")
    return deb


def check_installed():
    try:
        pw = pwd.getpwnam("keywarden")
        check(pw.pw_uid < 1000 and pw.pw_shell.endswith("nologin"),
              "system user keywarden (uid %d, %s)" % (pw.pw_uid, pw.pw_shell))
    except KeyError:
        check(False, "system user keywarden exists")
        return None
    st = os.stat("/var/lib/keywarden")
    check(st.st_uid == pw.pw_uid and stat.S_IMODE(st.st_mode) == 0o700,
          "/var/lib/keywarden keywarden 0700 (%o)" % stat.S_IMODE(st.st_mode))
    check(os.stat("/var/log/keywarden").st_uid == pw.pw_uid, "/var/log/keywarden keywarden's")
    st = os.stat("/etc/keywarden/keywarden.yaml")
    check(st.st_uid == 0 and st.st_gid == pw.pw_gid and stat.S_IMODE(st.st_mode) == 0o640,
          "/etc/keywarden/keywarden.yaml root:keywarden 0640 (%o)" % stat.S_IMODE(st.st_mode))
    for page in ("man8/keywarden.8.gz", "man5/keywarden.yaml.5.gz", "man5/keywarden-rules.5.gz"):
        r = subprocess.run("zcat /usr/share/man/%s | groff -man -Tutf8 -ww -z" % page, shell=True,
                           capture_output=True, text=True)
        check(r.returncode == 0 and not r.stderr.strip(), "man page %s renders without warnings"
              " %s" % (page, r.stderr[:200]))
    r = sh(["setpriv", "--reuid", "keywarden", "--regid", "keywarden", "--init-groups", "--",
            "/usr/bin/keywarden", "check", "-c", "/etc/keywarden/keywarden.yaml"])
    check(r.returncode == 0 and "0 errors, 0 warnings" in r.stdout,
          "keywarden check (as keywarden) on the shipped config: %s" % (r.stdout + r.stderr).strip())
    return pw


def install_world(kwsim, world, work, pw):
    sim = os.path.join(work, "sim")
    subprocess.run([kwsim, "gen", "--world", world, "--seed", "5", "-o", sim], check=True,
                   stdout=subprocess.DEVNULL)
    src = glob.glob(os.path.join(sim, "rules.d", "*.yaml"))[0]
    dst = "/etc/keywarden/rules.d/world.yaml"
    shutil.copy(src, dst)
    os.chown(dst, 0, pw.pw_gid)
    os.chmod(dst, 0o640)
    return os.path.join(sim, "capture.pcap")


def start_service(unit, fifo):
    """systemd: a runtime drop-in with the unit's ExecStart plus -r FIFO.
    Without systemd: the same command line, as the unit would run it."""
    f = unit_fields(unit)
    exec_start = shlex.split(f["ExecStart"][-1]) + ["-r", fifo]
    if os.path.isdir("/run/systemd/system"):
        d = "/run/systemd/system/keywarden.service.d"
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "test.conf"), "w") as o:
            o.write("[Service]\nExecStart=\nExecStart=%s\n" % " ".join(map(shlex.quote,
                                                                          exec_start)))
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        subprocess.run(["systemctl", "start", "--no-block", "keywarden.service"], check=True)
        pid = kwtest.wait_for(lambda: int(sh(["systemctl", "show", "-p", "MainPID", "--value",
                                              "keywarden.service"]).stdout.strip() or 0))
        return "systemd", pid, None
    user, group = f["User"][0], f["Group"][0]
    caps = ",".join("+" + c.lower()[4:] for c in f["AmbientCapabilities"][0].split())
    bound = ",".join("+" + c.lower()[4:] for c in f["CapabilityBoundingSet"][0].split())
    env = dict(os.environ)
    envfile = f.get("EnvironmentFile", [""])[0].lstrip("-")
    if envfile and os.path.exists(envfile):
        for line in open(envfile):
            if "=" in line and not line.startswith("#"):
                k, _, v = line.strip().partition("=")
                env[k] = v
    for sd, mode in (("StateDirectory", "StateDirectoryMode"), ("LogsDirectory",
                                                                  "LogsDirectoryMode")):
        path = ("/var/lib/" if sd == "StateDirectory" else "/var/log/") + f[sd][0]
        os.makedirs(path, exist_ok=True)
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, int(f[mode][0], 8))
    run_as = ["setpriv", "--reuid", user, "--regid", group, "--init-groups",
              "--bounding-set", "-all," + bound, "--inh-caps", caps, "--ambient-caps", caps,
              "--no-new-privs", "--"]
    for pre in f.get("ExecStartPre", []):
        r = subprocess.run(run_as + shlex.split(pre), capture_output=True, text=True, env=env)
        check(r.returncode == 0, "ExecStartPre %s: exit %d %s" % (pre, r.returncode,
                                                                   r.stderr.strip()[:200]))
    os.umask(0o077)  # UMask=0077
    p = subprocess.Popen(run_as + exec_start, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=env, cwd="/")
    return "command line", p.pid, p


def run_service(kwsim, world, work, pw):
    pcap = install_world(kwsim, world, work, pw)
    os.makedirs(FIFO_DIR, mode=0o755, exist_ok=True)
    fifo = os.path.join(FIFO_DIR, "replay.pcap")
    if os.path.exists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo, 0o644)
    how, pid, proc = start_service("/usr/lib/systemd/system/keywarden.service", fifo)
    log = kwtest.StderrLog(proc.stderr) if proc else None
    head, recs = pcap_records(pcap)
    w = open(fifo, "wb")  # blocks until keywarden opens it
    w.write(head)
    half = len(recs) // 2
    w.write(b"".join(recs[:half]))
    w.flush()
    eve = "/var/log/keywarden/eve.json"
    got = kwtest.wait_for(lambda: len(kwtest.eve_records(eve, "http")) > 0, timeout=20)
    check(got, "[%s] replay through the FIFO: http records in %s" % (how, eve))
    kwtest.wait_ready(pid)
    st = kwtest.proc_status(pid)
    check(st["Uid"].split() == [str(pw.pw_uid)] * 4, "[%s] runs as keywarden (Uid %s)"
          % (how, st["Uid"]))
    bad = [(t, k) for t in kwtest.tasks(pid) for k in ("CapEff", "CapPrm", "CapInh", "CapAmb")
           if int(kwtest.proc_status(pid, t)[k], 16)]
    check(not bad, "[%s] no capability in any of its %d threads %s"
          % (how, len(kwtest.tasks(pid)), bad))
    if log:
        check(kwtest.wait_for(lambda: log.find("capabilities given up")) is not None,
              "[%s] it says it gave its capabilities up" % how)
    # A file source is read blocking: the reload happens at the next packet.
    os.kill(pid, signal.SIGHUP)
    w.write(b"".join(recs[half:]))
    w.flush()
    if log:
        check(kwtest.wait_for(lambda: log.find("rules reloaded")) is not None,
              "[%s] SIGHUP reloads the rules" % how)
    else:
        r = kwtest.wait_for(lambda: "rules reloaded" in sh(["journalctl", "-u", "keywarden",
                                                             "--no-pager"]).stdout)
        check(r, "[%s] SIGHUP reloads the rules (journal)" % how)
    time.sleep(1.0)
    os.kill(pid, signal.SIGTERM)
    w.close()
    if proc:
        rc = proc.wait(60)
    else:
        kwtest.wait_for(lambda: sh(["systemctl", "is-active", "keywarden"]).stdout.strip()
                        != "active", timeout=60)
        rc = int(sh(["systemctl", "show", "-p", "ExecMainStatus", "--value",
                     "keywarden"]).stdout.strip() or -1)
    check(rc == 0, "[%s] SIGTERM: clean exit 0 (%s)" % (how, rc))
    stats = kwtest.eve_records(eve, "stats")
    http = kwtest.eve_records(eve, "http")
    check(stats and stats[-1]["stats"]["capture"]["packets"] == len(recs),
          "final stats record counts all %d packets" % len(recs))
    db = "/var/lib/keywarden/keywarden.db"
    rows = sqlite3.connect(db).execute("select count(*) from audit").fetchone()[0]
    with_cred = sum(1 for r in http if r.get("credential"))
    check(rows == with_cred and rows > 0, "audit trail in %s: %d rows = %d http records with a "
          "credential" % (db, rows, with_cred))
    check(os.stat(db).st_uid == pw.pw_uid, "the database belongs to keywarden")
    if proc is None and os.path.isdir("/run/systemd/system"):
        shutil.rmtree("/run/systemd/system/keywarden.service.d", ignore_errors=True)
        subprocess.run(["systemctl", "daemon-reload"])
    if failures and log:
        print(log.text()[-2000:])


def main():
    build, kwsim, world = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3]
    if os.geteuid() != 0 or not shutil.which("dpkg") or not shutil.which("cpack") \
            or not shutil.which("setpriv"):
        print("skipped: needs root, dpkg, cpack and setpriv")
        return 77
    if not kwtest.may_change_system():
        print("skipped: installs a package and a system user; runs in CI (CI=true) or with "
              "KW_TEST_SYSTEM=1")
        return 77
    if installed():
        print("skipped: a keywarden package is installed here; not touching it")
        return 77
    user_before = True
    try:
        pwd.getpwnam("keywarden")
    except KeyError:
        user_before = False
    work = tempfile.mkdtemp(prefix="kw-pkg-")
    os.chmod(work, 0o755)
    try:
        deb = build_deb(build, work)
        if deb:
            r = sh(["dpkg", "-i", deb])
            check(r.returncode == 0, "dpkg -i %s" % (r.stderr[-400:] if r.returncode else "ok"))
            pw = check_installed() if r.returncode == 0 else None
            if pw:
                run_service(kwsim, world, work, pw)
    finally:
        r = sh(["dpkg", "--purge", "keywarden"])
        check(r.returncode == 0, "dpkg --purge keywarden")
        if not user_before:
            sh(["userdel", "keywarden"])
            try:
                grp.getgrnam("keywarden")
                sh(["groupdel", "keywarden"])
            except KeyError:
                pass
        shutil.rmtree(FIFO_DIR, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    left = [p for p in ("/usr/bin/keywarden", "/etc/keywarden", "/var/lib/keywarden",
                        "/var/log/keywarden", "/usr/lib/systemd/system/keywarden.service",
                        "/usr/lib/sysusers.d/keywarden.conf", "/etc/logrotate.d/keywarden",
                        "/usr/share/man/man8/keywarden.8.gz") if os.path.exists(p)]
    check(not left, "purge leaves nothing behind %s" % left)
    gone = sh(["getent", "passwd", "keywarden"]).returncode != 0
    check(gone or user_before, "no user keywarden left behind")
    check(not installed(), "package no longer installed")
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
