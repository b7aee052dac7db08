"""As root: the daemon reports the cgroup of processes in a cgroup v2 directory of their own.

One process is moved in before the daemon starts (the start-up scan reads it),
another moves itself in and then execs while the daemon runs (the exec's cgroup
is read).  Every cgroup made here is removed, with what is left in it killed,
even when the test fails (``tests/cgroup_support.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cgroups_support import fresh_cgroup
from live_support import Api, Daemon, wait_for
from support import ROOT

from linnix.engine import trace as t

RULE = "rule quiet: cpu_pct > 100000\n"


def in_cgroup(group: Path) -> subprocess.Popen[bytes]:
    """A shell that moves itself into ``group``, then execs a sleep."""
    return subprocess.Popen(
        ["sh", "-c", f'echo $$ > "{group}/cgroup.procs" && exec sleep 120'])


def own_cgroup(pid: int) -> str:
    text = Path(f"/proc/{pid}/cgroup").read_text()
    return next(line[3:] for line in text.splitlines() if line.startswith("0::"))


@pytest.mark.slow
def test_the_daemon_reports_the_cgroup_of_a_process_in_a_fresh_cgroup(tmp_path: Path) -> None:
    rules = tmp_path / "quiet.lnx"
    rules.write_text(RULE)
    children: list[subprocess.Popen[bytes]] = []
    daemon = None
    with fresh_cgroup("fields") as group:
        expected = "/" + group.name  # as /proc shows it: below the hierarchy's root
        try:
            children.append(in_cgroup(group))  # before the daemon: the start-up scan
            wait_for(lambda: own_cgroup(children[0].pid) == expected, 10,
                     "the first process to move into its cgroup")
            daemon = Daemon(tmp_path / "state", rules=[str(rules)])
            daemon.wait_ready()
            api = Api(tmp_path / "state")
            # forked in this test's cgroup, moved, then exec'd: the exec's cgroup
            children.append(in_cgroup(group))

            def reported(pid: int) -> dict[str, object] | None:
                status, body = api._call("GET", f"/processes/{pid}")
                return body if status == 200 and body["cgroup"] == expected else None

            for child in children:
                record = wait_for(lambda c=child: reported(c.pid), 30,  # type: ignore[misc]
                                  f"the daemon to report pid {child.pid} in {expected}")
                assert own_cgroup(child.pid) == expected
                assert (record["unit"], record["container"], record["user"]) == (
                    None, None, "root")
        finally:
            for child in children:
                child.kill()
                child.wait()
            if daemon is not None:
                daemon.stop()


@pytest.mark.slow
def test_a_recording_holds_the_cgroup_of_the_scan_and_of_each_exec(tmp_path: Path) -> None:
    trace = tmp_path / "rec.jsonl"
    children: list[subprocess.Popen[bytes]] = []
    with fresh_cgroup("record") as group:
        expected = "/" + group.name
        recorder = subprocess.Popen(
            [sys.executable, "-m", "linnix", "record", str(trace), "--duration", "30s"],
            stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
        try:
            children.append(in_cgroup(group))  # perhaps before the scan, perhaps after
            assert recorder.stderr is not None
            line = recorder.stderr.readline()  # the scan is done once it says this
            assert "recording for" in line, line + recorder.stderr.read()
            children.append(in_cgroup(group))  # after the scan: its exec is recorded
            wait_for(lambda: own_cgroup(children[1].pid) == expected, 10, "the move")
            sleep = f'"pid":{children[1].pid},"comm":"sleep"'
            wait_for(lambda: sleep in trace.read_text(), 30, "the exec of sleep in the trace")
        finally:
            recorder.send_signal(signal.SIGINT)
            recorder.communicate(timeout=30)
            for child in children:
                child.kill()
                child.wait()
    _, events = t.read_trace(str(trace))
    execs = [e for e in events if isinstance(e, t.Exec) and e.pid == children[1].pid]
    # the exec of sh, then, once sh moved itself, of sleep; sh's cgroup is read after its
    # batch, by when it may have moved already
    assert [e.comm for e in execs] == ["sh", "sleep"]
    assert execs[0].cgroup in (own_cgroup(os.getpid()), expected)
    assert execs[1].cgroup == expected
    assert all(e.cgroup is None or e.cgroup.startswith("/") for e in events
               if isinstance(e, t.Exec | t.Proc))
    scanned = [e for e in events if isinstance(e, t.Proc)]
    assert scanned and all(e.cgroup is not None for e in scanned if e.pid == 1)
