"""Actions only from the host's pid namespace: the check, the refusal, its audit record,
and (as root) a real pid namespace made by ``unshare``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from actions_support import Harness, Make, harnesses, running
from live_support import Daemon, require_root
from proc_support import HOST_PID_NS, FakeProc
from support import ROOT
from trio.testing import MockClock

from linnix.actions import ActionPolicy, Guards
from linnix.actions.guards import identify, pid_namespace_refusal

CHILD_NS = "pid:[4026532719]"  # any namespace but the host's


def test_the_hosts_namespace_with_its_own_proc_allows_actions(proc: FakeProc) -> None:
    assert pid_namespace_refusal(proc.path) is None
    assert Guards(frozenset(), frozenset(), own=set(), root=proc.path).namespace is None


@pytest.mark.parametrize(("link", "nspid", "says"), [
    (CHILD_NS, "7", "does not run in the host's pid namespace"),
    (CHILD_NS, "48213\t7", "does not run in the host's pid namespace"),
    (None, "7", "cannot tell whether linnix runs in the host's pid namespace"),
    ("garbage", "7", "does not run in the host's pid namespace"),
    (HOST_PID_NS, "48213\t7", "is not this pid namespace's (NSpid lists 2 pid(s))"),
    (HOST_PID_NS, None, "is not this pid namespace's (NSpid lists no pid(s))"),
])
def test_anywhere_else_every_action_is_refused(proc: FakeProc, link: str | None,
                                               nspid: str | None, says: str) -> None:
    proc.namespace(link, nspid)
    reason = pid_namespace_refusal(proc.path)
    assert reason is not None and says in reason and "refused" in reason
    guards = Guards(frozenset(), frozenset(), own=set(), root=proc.path)
    worker = identify(500, proc.path)
    assert worker is not None
    assert guards.check(worker) == reason
    assert guards.check(worker, tree=[worker]) == reason


def test_the_real_proc_here_agrees_with_the_kernel() -> None:
    """This process's own namespace, read the way the guard reads it."""
    host = os.readlink("/proc/self/ns/pid") == HOST_PID_NS
    assert (pid_namespace_refusal() is None) == host


async def test_a_refusal_for_the_namespace_is_audited(autojump_clock: MockClock,
                                                      tmp_path: Path, proc: FakeProc) -> None:
    proc.namespace(CHILD_NS, "7")
    with harnesses(tmp_path / "linnix.db", proc) as make:
        h = _harness(make, proc)
        async with running(h.manager):
            row = await h.propose(500)
            await trio.sleep(0)
        reason = pid_namespace_refusal(proc.path)
        assert (row["status"], row["reason"]) == ("refused", reason)
        assert h.events(row["id"])[-1] == ("linnix", "action.refused",
                                           {"reason": reason, "at": "proposal"})


def _harness(make: Make, proc: FakeProc) -> Harness:
    return make(ActionPolicy(mode="enforce"),
                guards=Guards(frozenset(), frozenset(), own=set(), root=proc.path))


UNDER_UNSHARE = r"""
import json, subprocess, sys
from linnix.actions.guards import Guards, identify, pid_namespace_refusal
child = subprocess.Popen(["sleep", "30"])
ident = identify(child.pid)
guards = Guards(frozenset(), frozenset())
print(json.dumps({"pid": child.pid, "check": guards.check(ident),
                  "refusal": pid_namespace_refusal()}))
child.kill()
"""


def test_under_a_new_pid_namespace_actions_are_refused() -> None:
    require_root()
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", UNDER_UNSHARE],
        check=False, capture_output=True, text=True, timeout=60, cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["refusal"] is not None
    assert "does not run in the host's pid namespace" in seen["refusal"]
    assert seen["check"] == seen["refusal"]
    assert seen["pid"] < 10  # the child's pid inside the new namespace, not the host's


def test_the_daemon_says_so_at_start(tmp_path: Path) -> None:
    require_root()
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    daemon = Daemon(tmp_path / "state", "--source", "poll", "--no-api", "--duration", "2s",
                    wrap=["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"])
    daemon.proc.wait(60)
    daemon.collect()
    assert daemon.proc.returncode == 0, daemon.stderr
    said = [line for line in daemon.stderr.splitlines() if "pid namespace" in line]
    assert said == ["linnix: linnix does not run in the host's pid namespace (a container "
                    "without the host's pids?): a pid it reads may name another process "
                    "there, so actions are refused; capture and alerts go on"]
