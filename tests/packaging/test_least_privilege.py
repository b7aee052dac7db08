"""The daemon with only the unit's capabilities, as an unprivileged user: eBPF capture
attaches, another user's file descriptors are counted, and another user's process is killed
on approval.  Root and eBPF needed (to hand out the capabilities); skipped otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_support import Api, Daemon, free_port, require_ebpf, wait_for
from support import ROOT

from linnix.procfs import read_stat
from linnix.runtime.sources import caps

pytestmark = [pytest.mark.root, pytest.mark.ebpf, pytest.mark.slow]

DAEMON_USER, TARGET_USER = 65534, 64999  # nobody, and somebody else

RULE = """
rule target_found {
    when comm == "lnx-target" and fds > 6
    severity critical
    action kill(grace = 2s)
}
"""

# ten files open, then named lnx-target once the daemon watches
TARGET = r"""
import ctypes, os, sys, time
held = [open(os.devnull) for _ in range(10)]
sys.stdin.readline()
ctypes.CDLL(None).prctl(15, b"lnx-target", 0, 0, 0)
print(os.getpid(), flush=True)
while True:
    time.sleep(60)
"""


def setpriv(user: int, capabilities: list[str]) -> list[str]:
    """Run as ``user`` with exactly ``capabilities`` (effective, inherited, ambient, bound)."""
    wanted = ",".join(["-all", *(f"+{c.removeprefix('CAP_').lower()}" for c in capabilities)])
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
            f"--inh-caps={wanted}", f"--ambient-caps={wanted}", f"--bounding-set={wanted}"]


@pytest.fixture
def place() -> Iterator[Path]:
    require_ebpf()
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    folder = Path(tempfile.mkdtemp(prefix="linnix-caps-", dir="/tmp"))
    os.chmod(folder, 0o755)
    (folder / "rules").mkdir()
    (folder / "rules" / "test.lnx").write_text(RULE)
    (folder / "state").mkdir()
    os.chown(folder / "state", DAEMON_USER, DAEMON_USER)
    yield folder
    shutil.rmtree(folder)


def test_the_units_capabilities_are_enough(place: Path) -> None:
    unit = caps.names(caps.SERVICE)
    config = place / "linnix.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n')
    os.chmod(config, 0o644)
    target = subprocess.Popen([*setpriv(TARGET_USER, []), sys.executable, "-c", TARGET],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    daemon = Daemon(place / "state", "--source", "ebpf", "--config", str(config),
                    rules=[str(place / "rules")], wrap=setpriv(DAEMON_USER, unit))
    try:
        info = daemon.wait_ready()
        assert info["source"] == "ebpf", daemon.stderr  # the eBPF program attached
        assert target.stdin is not None and target.stdout is not None
        target.stdin.write("go\n")
        target.stdin.flush()
        pid = int(target.stdout.readline())
        api = Api(place / "state")

        def pending() -> dict[str, object] | None:
            rows = api.get("/actions?status=pending&limit=100")["actions"]
            return next((a for a in rows if a["pid"] == pid), None)

        # proposed only if the fds of another user's process were counted
        action = wait_for(pending, 30, f"a pending kill for {pid}")
        status, body = api.post(f"/actions/{action['id']}/approve",
                                {"approver": "alice", "reason": "least privilege"})
        assert status == 200, body

        def settled() -> dict[str, object] | None:
            row = api.get(f"/actions/{action['id']}")
            return row if row["status"] not in ("approved", "executing") else None

        row = wait_for(settled, 30, "the kill to finish")
        assert row["status"] == "succeeded", row
        assert target.wait(10) is not None
        st = read_stat(pid)
        assert st is None or st.exited
    finally:
        daemon.stop()
        if target.poll() is None:
            target.kill()
        target.communicate()
    assert "eBPF unavailable" not in daemon.stderr


def test_without_them_capture_is_refused_for_the_reason_doctor_gives(place: Path) -> None:
    probe = ("from linnix.procfs import Clock\n"
             "from linnix.runtime.sources.bcc import BpfSource, BpfUnavailableError\n"
             "try:\n    BpfSource(Clock(), ring_pages=64).close()\n"
             "except BpfUnavailableError as err:\n    print(err)\n")
    done = subprocess.run([*setpriv(DAEMON_USER, ["CAP_BPF", "CAP_PERFMON"]), sys.executable,
                           "-c", probe], check=False, capture_output=True, text=True,
                          timeout=120, cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == caps.capture_problem(
        (1 << caps.CAP_BPF) | (1 << caps.CAP_PERFMON), DAEMON_USER)
