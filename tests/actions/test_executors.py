"""Executors against real child processes: kill, kill_tree, signal, renice, pid reuse.

Every target is a child of the test.  A *witness* process prints the number of
every catchable signal it receives, so a test can prove that nothing reached
it: it sends SIGWINCH itself and the first line back must be SIGWINCH (a
SIGTERM sent earlier would have been delivered, and printed, first).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_support import require_root
from proc_support import CHILD, FakeProc, read_line
from support import ROOT

from linnix.actions.executors import kill, kill_tree, renice, send_signal, signal_name
from linnix.actions.guards import Guards, Identity, descendants, identify

# argv: names from the root down; "name:ignore" ignores SIGTERM.  Each level starts
# the next, prints its pid once named, then waits for its child, reaps it and says so.
TREE = r"""
import ctypes, os, signal, subprocess, sys, time
name, _, mode = sys.argv[1].partition(":")
ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
# set either way: an ignored signal stays ignored in the children started after
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore" else signal.SIG_DFL)
child = None
if len(sys.argv) > 2:
    child = subprocess.Popen([sys.executable, sys.argv[0], *sys.argv[2:]])
print(os.getpid(), flush=True)
if child is not None:
    child.wait()
    print("reaped", child.pid, flush=True)
while True:
    time.sleep(60)
"""


def state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rpartition(b")")[2].split()[0].decode()


def exited(fd: int) -> bool:
    """Whether the process behind a pidfd has exited (a zombie counts)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def wait_exited(fd: int, timeout: float = 5.0) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(int(timeout * 1000)))


class Children:
    """Processes started by a test, killed (through pidfds) whatever happens."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.popens: list[subprocess.Popen[str]] = []
        self.fds: list[int] = []

    def start(self, name: str, mode: str = "honour") -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, "-c", CHILD, name, mode],
                             stdout=subprocess.PIPE, text=True)
        self.popens.append(p)
        assert int(read_line(p.stdout)) == p.pid  # named, handlers in place
        self.track(p.pid)
        return p

    def tree(self, *names: str) -> tuple[subprocess.Popen[str], list[int]]:
        script = self.tmp / "tree.py"
        script.write_text(TREE)
        p = subprocess.Popen([sys.executable, str(script), *names], stdout=subprocess.PIPE,
                             text=True)
        self.popens.append(p)
        pids = [int(read_line(p.stdout)) for _ in names]
        for pid in pids:
            self.track(pid)
        return p, pids

    def track(self, pid: int) -> int:
        fd = os.pidfd_open(pid)
        self.fds.append(fd)
        return fd

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)
        for p in self.popens:
            with contextlib.suppress(OSError):
                p.kill()
            p.wait()
            if p.stdout is not None:
                p.stdout.close()


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Children]:
    c = Children(tmp_path)
    yield c
    c.close()


@pytest.fixture
def guards() -> Guards:
    return Guards(frozenset({"sshd"}), frozenset())


def who(p: subprocess.Popen[str]) -> Identity:
    found = identify(p.pid)
    assert found is not None
    return found


def assert_untouched(p: subprocess.Popen[str]) -> None:
    """The witness received no signal, is running, and keeps its priority."""
    assert p.poll() is None
    assert state(p.pid) in ("S", "R")
    assert os.getpriority(os.PRIO_PROCESS, p.pid) == 0
    os.kill(p.pid, signal.SIGWINCH)
    assert int(read_line(p.stdout)) == signal.SIGWINCH  # nothing arrived before it


# ---- kill -----------------------------------------------------------------------------------

async def test_kill_a_process_that_exits_on_sigterm(children: Children,
                                                    guards: Guards) -> None:
    p = children.start("lnx-polite")
    started = time.monotonic()
    out = await kill(guards, who(p), grace=10.0)
    assert time.monotonic() - started < 5.0  # it did not wait out the grace
    assert out.ok and not out.refused
    assert out.detail == f"SIGTERM sent: lnx-polite[{p.pid}]; 1 exited within the 10s grace"
    assert p.wait(5) == -signal.SIGTERM


async def test_kill_a_process_that_ignores_sigterm(children: Children, guards: Guards) -> None:
    p = children.start("lnx-stubborn", "ignore")
    started = time.monotonic()
    out = await kill(guards, who(p), grace=0.5)
    assert time.monotonic() - started >= 0.5
    assert out.ok
    assert out.detail == (f"SIGTERM sent: lnx-stubborn[{p.pid}]; 0 exited within the 0.5s "
                          "grace; 1 killed with SIGKILL after it")
    assert p.wait(5) == -signal.SIGKILL


async def test_kill_with_sigkill_does_not_wait(children: Children, guards: Guards) -> None:
    p = children.start("lnx-stubborn", "ignore")
    out = await kill(guards, who(p), grace=30.0, signum=signal.SIGKILL)
    assert out.ok and out.detail == f"SIGKILL sent: lnx-stubborn[{p.pid}]"
    assert p.wait(5) == -signal.SIGKILL


async def test_kill_with_a_real_time_signal_names_it(children: Children,
                                                     guards: Guards) -> None:
    p = children.start("lnx-witness", "witness")
    out = await kill(guards, who(p), grace=0.2, signum=signal.SIGRTMIN + 6)
    assert out.ok, out.detail
    assert out.detail.startswith(f"SIGRTMIN+6 sent: lnx-witness[{p.pid}]; 0 exited")
    assert "1 killed with SIGKILL" in out.detail
    assert int(read_line(p.stdout)) == signal.SIGRTMIN + 6
    assert p.wait(5) == -signal.SIGKILL


async def test_kill_a_process_that_is_gone(children: Children, guards: Guards) -> None:
    p = children.start("lnx-brief")
    before = who(p)
    p.kill()
    p.wait()
    out = await kill(guards, before, grace=1.0)
    assert not out.ok and not out.refused
    assert out.detail == f"process {p.pid} is gone"


async def test_kill_an_exited_process_that_was_not_reaped(children: Children,
                                                          guards: Guards) -> None:
    p = children.start("lnx-zombie")
    before = who(p)
    fd = children.track(p.pid)
    p.kill()
    assert wait_exited(fd)
    assert state(p.pid) == "Z"
    out = await kill(guards, before, grace=1.0)
    # a zombie has ended already: like a reaped process, there is nothing to signal
    assert not out.ok and not out.refused
    assert out.detail == f"process {p.pid} is gone"


# ---- kill_tree ------------------------------------------------------------------------------

async def test_kill_tree_deepest_first_and_all_gone(children: Children,
                                                    guards: Guards) -> None:
    _, (root, mid, leaf) = children.tree("lnx-root", "lnx-mid:ignore", "lnx-leaf")
    fds = {pid: os.pidfd_open(pid) for pid in (root, mid, leaf)}
    try:
        tree = descendants(root)
        assert [(i.pid, i.comm) for i in tree] == [(leaf, "lnx-leaf"), (mid, "lnx-mid")]
        root_ident = identify(root)
        assert root_ident is not None
        out = await kill_tree(guards, [*tree, root_ident], grace=2.0)
        assert out.ok, out.detail
        assert out.detail == (
            f"SIGTERM sent: lnx-leaf[{leaf}], lnx-mid[{mid}], lnx-root[{root}]; "
            "2 exited within the 2s grace; 1 killed with SIGKILL after it")
        for pid, fd in fds.items():
            assert wait_exited(fd), f"{pid} is still alive"
    finally:
        for fd in fds.values():
            os.close(fd)


async def test_kill_tree_counts_what_exited_while_it_waited_on_another(
        children: Children, guards: Guards) -> None:
    """The leaf ignores SIGTERM and is waited on first; the root exits meanwhile: it
    exited within the grace, and only the leaf needs SIGKILL."""
    _, (root, leaf) = children.tree("lnx-root", "lnx-leaf:ignore")
    root_ident = identify(root)
    assert root_ident is not None
    out = await kill_tree(guards, [*descendants(root), root_ident], grace=2.0)
    assert out.ok
    assert out.detail == (f"SIGTERM sent: lnx-leaf[{leaf}], lnx-root[{root}]; "
                          "1 exited within the 2s grace; 1 killed with SIGKILL after it")


async def test_kill_tree_reports_descendants_that_ended_meanwhile(children: Children,
                                                                   guards: Guards) -> None:
    p, (root, leaf) = children.tree("lnx-root", "lnx-leaf")
    tree = descendants(root)
    root_ident = identify(root)
    assert root_ident is not None and [i.pid for i in tree] == [leaf]
    os.kill(leaf, signal.SIGKILL)  # the parent reaps it: gone before the action runs
    assert read_line(p.stdout, 30) == f"reaped {leaf}"
    out = await kill_tree(guards, [*tree, root_ident], grace=5.0)
    assert out.ok
    assert out.detail == (f"SIGTERM sent: lnx-root[{root}] (1 already gone); "
                          "1 exited within the 5s grace")


# ---- signal and renice ----------------------------------------------------------------------

async def test_signal_sigstop_then_sigcont(children: Children, guards: Guards) -> None:
    p = children.start("lnx-pausable")
    ident = who(p)
    out = await send_signal(guards, ident, signal.SIGSTOP)
    assert out.ok and out.detail == f"SIGSTOP sent to lnx-pausable[{p.pid}]"
    deadline = time.monotonic() + 5
    while state(p.pid) != "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(p.pid) == "T"
    out = await send_signal(guards, ident, signal.SIGCONT)
    assert out.ok
    deadline = time.monotonic() + 5
    while state(p.pid) == "T" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(p.pid) in ("S", "R")


async def test_signal_is_delivered_once_and_named(children: Children, guards: Guards) -> None:
    p = children.start("lnx-witness", "witness")
    out = await send_signal(guards, who(p), signal.SIGUSR1)
    assert out.ok and out.detail == f"SIGUSR1 sent to lnx-witness[{p.pid}]"
    assert int(read_line(p.stdout)) == signal.SIGUSR1
    out = await send_signal(guards, who(p), signal.SIGRTMIN + 6)
    assert out.ok and out.detail == f"SIGRTMIN+6 sent to lnx-witness[{p.pid}]"
    assert int(read_line(p.stdout)) == signal.SIGRTMIN + 6
    assert_untouched(p)  # and nothing else


def test_signal_names() -> None:
    assert signal_name(signal.SIGTERM) == "SIGTERM"
    assert signal_name(signal.SIGRTMIN) == "SIGRTMIN"
    assert signal_name(signal.SIGRTMIN + 6) == "SIGRTMIN+6"
    assert signal_name(signal.SIGRTMAX) == "SIGRTMAX"
    assert signal_name(32) == "signal 32"


async def test_renice(children: Children, guards: Guards) -> None:
    p = children.start("lnx-nice")
    out = await renice(guards, who(p), 10)
    assert out.ok and out.detail == f"lnx-nice[{p.pid}] reniced to 10"
    assert os.getpriority(os.PRIO_PROCESS, p.pid) == 10
    assert p.poll() is None


async def test_renice_a_gone_process(children: Children, guards: Guards) -> None:
    p = children.start("lnx-nice")
    before = who(p)
    p.kill()
    p.wait()
    out = await renice(guards, before, 10)
    assert not out.ok and out.detail == f"process {p.pid} is gone"


# ---- pid reuse ------------------------------------------------------------------------------

def earlier_holder(now: Identity) -> Identity:
    """The identity of a process that held ``now.pid`` before: same pid, earlier start."""
    return Identity(now.pid, now.start_ticks - 500, now.comm, now.exe, now.ppid, False)


REUSED = "now belongs to another process"


async def test_pid_reuse_refuses_kill_and_signals_nothing(children: Children,
                                                          guards: Guards) -> None:
    p = children.start("lnx-witness", "witness")
    out = await kill(guards, earlier_holder(who(p)), grace=0.1)
    assert not out.ok and out.refused and REUSED in out.detail
    out = await kill(guards, earlier_holder(who(p)), grace=0.1, signum=signal.SIGKILL)
    assert not out.ok and out.refused
    assert_untouched(p)


async def test_pid_reuse_refuses_kill_tree_and_signals_nothing(children: Children,
                                                               guards: Guards) -> None:
    p = children.start("lnx-witness", "witness")
    kid = children.start("lnx-witness", "witness")  # stands for a descendant
    out = await kill_tree(guards, [who(kid), earlier_holder(who(p))], grace=0.1)
    assert not out.ok and out.refused and REUSED in out.detail
    assert_untouched(p)
    assert_untouched(kid)  # the root was refused first: no descendant was touched


async def test_pid_reuse_refuses_signal_and_renice(children: Children,
                                                   guards: Guards) -> None:
    p = children.start("lnx-witness", "witness")
    out = await send_signal(guards, earlier_holder(who(p)), signal.SIGSTOP)
    assert not out.ok and out.refused and REUSED in out.detail
    out = await send_signal(guards, earlier_holder(who(p)), signal.SIGTERM)
    assert not out.ok and out.refused
    out = await renice(guards, earlier_holder(who(p)), 19)
    assert not out.ok and out.refused and REUSED in out.detail
    assert_untouched(p)


async def test_pid_reuse_seen_through_a_fake_proc(children: Children,
                                                  tmp_path: Path) -> None:
    """The /proc the guards read says another process holds the pid now."""
    p = children.start("lnx-witness", "witness")
    real = who(p)
    proc = FakeProc(tmp_path / "proc")
    proc.add(p.pid, "lnx-other", 1, start=real.start_ticks + 1000)
    g = Guards(frozenset(), frozenset(), root=proc.path)
    for out in (await kill(g, real, grace=0.1),
                await kill_tree(g, [real], grace=0.1),
                await send_signal(g, real, signal.SIGTERM),
                await renice(g, real, 5)):
        assert not out.ok and out.refused
        assert out.detail == (f"pid {p.pid} now belongs to another process (lnx-other, started "
                              "later): the original is gone")
    assert_untouched(p)


REUSE_IN_NAMESPACE = r"""
import json, os, select, signal, subprocess, sys, time
import trio
from linnix.actions.executors import kill, kill_tree, renice, send_signal
from linnix.actions.guards import Guards, identify

witness = sys.argv[1]

def last_pid(n):
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(n))

def line(p):
    ready, _, _ = select.select([p.stdout], [], [], 10)
    return p.stdout.readline().strip() if ready else None

last_pid(299)
first = subprocess.Popen([sys.executable, "-c", witness, "lnx-first", "witness"],
                         stdout=subprocess.PIPE, text=True)
line(first)
old = identify(first.pid)
first.kill()
first.wait()
time.sleep(0.05)  # the reuse happens at a later clock tick, as any real one does
last_pid(old.pid - 1)
second = subprocess.Popen([sys.executable, "-c", witness, "lnx-second", "witness"],
                          stdout=subprocess.PIPE, text=True)
line(second)
new = identify(second.pid)
g = Guards(frozenset(), frozenset())

async def main():
    return [await kill(g, old, grace=0.1), await kill_tree(g, [old], grace=0.1),
            await send_signal(g, old, signal.SIGSTOP), await renice(g, old, 19)]

outcomes = trio.run(main)
stat = open(f"/proc/{second.pid}/stat").read().rpartition(")")[2].split()
os.kill(second.pid, signal.SIGWINCH)
print(json.dumps({
    "old": [old.pid, old.start_ticks], "new": [new.pid, new.start_ticks],
    "outcomes": [[o.ok, o.refused, o.detail] for o in outcomes],
    "alive": second.poll() is None, "state": stat[0],
    "nice": os.getpriority(os.PRIO_PROCESS, second.pid),
    "first_signal": line(second),
}))
second.kill()
second.wait()
"""


def test_real_pid_reuse_in_a_pid_namespace(tmp_path: Path) -> None:
    """A process exits and another one really gets its pid (set up in a fresh pid
    namespace, where nothing else takes pids): acting on the old identity is refused."""
    require_root()
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    proc = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c",
         REUSE_IN_NAMESPACE, CHILD],
        check=False, capture_output=True, text=True, cwd=str(ROOT), timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    (old_pid, old_start), (new_pid, new_start) = got["old"], got["new"]
    assert new_pid == old_pid and new_start != old_start  # the pid really was reused
    for ok, refused, detail in got["outcomes"]:
        assert (ok, refused) == (False, True)
        assert detail.startswith(f"pid {old_pid} now belongs to another process (lnx-second")
    assert got["alive"] and got["state"] in ("S", "R") and got["nice"] == 0
    assert got["first_signal"] == str(int(signal.SIGWINCH))  # nothing reached it before


async def test_a_protected_process_is_still_signalled_if_asked_directly(
        children: Children) -> None:
    """Executors only re-check identity; the protected list is the guards' business
    (ActionManager checks it at proposal and before execution)."""
    p = children.start("lnx-witness", "witness")
    out = await send_signal(Guards(frozenset({"lnx-witness"}), frozenset()), who(p),
                            signal.SIGUSR2)
    assert out.ok
    assert int(read_line(p.stdout)) == signal.SIGUSR2


def test_every_process_action_of_the_registry_has_an_executor() -> None:
    from linnix.actions.executors import EXECUTORS
    from linnix.names import ACTIONS

    assert set(EXECUTORS) == {name for name, spec in ACTIONS.items() if spec.targets_process}
