#!/usr/bin/env python3
"""`keywarden run` turns core dumps off before it reads anything secret
(issue 15): RLIMIT_CORE 0 and PR_SET_DUMPABLE 0.

keywarden is started as an ordinary user (nobody, through setpriv, so no
user switch of its own resets anything) reading a pcap from a pipe that
this test keeps open, so the process waits mid-run. Then, from outside:
- /proc/PID/limits shows "Max core file size 0 0";
- /proc/PID/environ is owned by root although the process runs as nobody:
  the kernel does that only for a process that is not dumpable (proc(5)),
  and the same flag keeps processes of the same user from ptrace-attaching
  to it and reading its memory.
A control run of `sleep` as nobody shows the file owned by nobody, so the
check can fail.

Needs root (to start processes as another user): exits 77 otherwise.
Usage: e2e_nodump.py KEYWARDEN
"""
import os
import pwd
import shutil
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77


def as_nobody(cmd, **kw):
    return subprocess.Popen(["setpriv", "--reuid", "nobody", "--regid", "nogroup",
                             "--clear-groups", "--"] + cmd, **kw)


def main():
    kw = sys.argv[1]
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        print("skipped: needs root and setpriv")
        return SKIP
    try:
        nobody = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        print("skipped: no user nobody")
        return SKIP
    work = tempfile.mkdtemp(prefix="kw-e2e-nodump-")
    os.chmod(work, 0o777)
    ctl = as_nobody(["sleep", "30"])
    p = as_nobody([kw, "run", "-q", "-r", "-", "--eve", os.path.join(work, "eve.json"),
                   "--db", os.path.join(work, "kw.db")],
                  stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # a pcap header and one packet: the source reads a first packet
        # before run opens its outputs; then it waits on the pipe
        p.stdin.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1) +
                      struct.pack("<IIII", 1700000000, 0, 14, 14) + b"\0" * 14)
        p.stdin.flush()
        end = time.time() + 20
        while time.time() < end and not os.path.exists(os.path.join(work, "kw.db")):
            time.sleep(0.1)
        time.sleep(0.3)
        if p.poll() is not None:
            print("FAIL: keywarden ended early: %s" % p.stderr.read().decode())
            return 1
        limits = [l for l in open("/proc/%d/limits" % p.pid) if l.startswith("Max core file size")]
        uid = int(open("/proc/%d/status" % p.pid).read().split("Uid:")[1].split()[0])
        owner = os.stat("/proc/%d/environ" % p.pid).st_uid
        ctl_owner = os.stat("/proc/%d/environ" % ctl.pid).st_uid
        print("run: uid %d, environ owner %d, %s; control (sleep): environ owner %d" %
              (uid, owner, limits[0].split()[4:6] if limits else None, ctl_owner))
        if ctl_owner != nobody:
            print("FAIL: the control is not owned by nobody: the check would prove nothing")
            return 1
        if uid != nobody:
            print("FAIL: keywarden does not run as nobody")
            return 1
        if not limits or limits[0].split()[4:6] != ["0", "0"]:
            print("FAIL: core file size limit is not 0/0: %s" % limits)
            return 1
        if owner != 0:
            print("FAIL: keywarden is dumpable (its /proc files belong to its user)")
            return 1
        print("ok")
        return 0
    finally:
        ctl.kill()
        ctl.wait()
        p.stdin.close()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
