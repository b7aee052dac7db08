"""``linnix demo cgroup-hog``, as root: the real command starts its own daemon, which
freezes the hog's cgroup by itself and kills it once the demo approves the kill; the
cgroup, the hog and the daemon are gone afterwards, and also when it is stopped by
SIGTERM while the freeze holds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cgroups_support import v2_hierarchy
from live_support import _unavailable, require_root
from support import ROOT, run_linnix

pytestmark = [pytest.mark.root, pytest.mark.slow]

STEPS = [  # the lines it prints, in order
    r"== cgroup-hog: a CPU hog \(pid (?P<pid>\d+)\) in the cgroup "
    r"/(?P<cg>linnix-demo-\d+-hog\.service) ==",
    r"rule cgroup_hog: cg_cpu_pct > 50% for 2s, action freeze, action kill_cgroup; "
    r'the daemon runs in monitor mode with \[actions\] auto = \["freeze"\]',
    r"cgroup_hog fired for /(?P=cg): freeze \(action 1\) runs without approval, "
    r"kill_cgroup \(action 2\) waits for one",
    r"frozen: cgroup\.freeze reads 1 and the hog's CPU time stays at \d+\.\d\ds",
    r"approving action 2 \(what 'linnix actions approve 2' does\)",
    r"killed: the hog died of signal 9; 0 process\(es\) left in /(?P=cg)",
    r"thawed: cgroup\.freeze reads 0 \(the freeze never outlives its decision\)",
]


def hierarchy() -> Path:
    require_root()
    root = v2_hierarchy()
    if root is None:
        _unavailable("no cgroup v2 hierarchy is mounted")
    assert root is not None
    return root


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped does not count)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_it_freezes_the_hog_and_kills_it_once_approved() -> None:
    root = hierarchy()
    done = run_linnix("demo", "cgroup-hog", timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    found = re.fullmatch("\n".join(STEPS) + "\n", done.stdout)
    assert found is not None, done.stdout
    assert not (root / found["cg"]).exists()
    assert not alive(int(found["pid"]))


def test_sigterm_while_frozen_stops_the_daemon_and_removes_everything() -> None:
    root = hierarchy()
    demo = subprocess.Popen([sys.executable, "-m", "linnix", "demo", "cgroup-hog"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        assert demo.stdout is not None
        lines = [demo.stdout.readline() for _ in range(4)]  # up to "frozen: ..."
        assert lines[-1].startswith("frozen: "), lines
        first = re.match(STEPS[0], lines[0])
        assert first is not None, lines
        children = [int(p) for p in os.listdir("/proc")
                    if p.isdigit() and _ppid(int(p)) == demo.pid]
        demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 128 + signal.SIGTERM, (out, err)
    assert "interrupted: stopped and cleaned up" in out
    assert not (root / first["cg"]).exists()
    assert not alive(int(first["pid"]))
    assert len(children) == 2, children  # the hog and the daemon
    assert not any(alive(pid) for pid in children)


def _ppid(pid: int) -> int | None:
    """The parent of ``pid``, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except OSError:
        return None


def test_off_root_it_says_that_it_needs_root() -> None:
    require_root()  # to run it as nobody
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-m", "linnix", "demo", "cgroup-hog"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert (done.returncode, done.stdout) == (1, ""), done.stderr
    assert done.stderr == ("linnix: demo cgroup-hog needs root: it makes a cgroup and "
                           "freezes it\n")
