"""The guards on the real /proc: processes no rule may touch, proposed to a real manager.

As root (the daemon's privileges), each target is a real child of the test: a
process named like tmux's server, one named sshd, a login shell that leads a
session with a pseudo-terminal (``pty.fork()``), and a login shell without
one.  The manager is in enforce mode, so a target the guards let through is
killed: an ordinary child is, as the control.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from actions_support import Harness, running
from live_support import require_root
from proc_support import CHILD, read_line

from linnix.actions import ActionConflictError, ActionPolicy, Guards

pytestmark = [pytest.mark.root]


class Targets:
    """Real child processes, each named and started as asked; all killed at the end."""

    def __init__(self) -> None:
        self.popens: list[subprocess.Popen[str]] = []
        self.forked: list[tuple[int, int]] = []  # (pid, pty master)

    def named(self, name: str, argv0: str | None = None) -> int:
        """A child whose comm is ``name`` (and whose argv[0] is ``argv0``, if given)."""
        p = subprocess.Popen([argv0 or sys.executable, "-c", CHILD, name, "honour"],
                             executable=sys.executable, stdout=subprocess.PIPE, text=True)
        self.popens.append(p)
        assert int(read_line(p.stdout)) == p.pid
        return p.pid

    def terminal_login(self, name: str) -> int:
        """A login shell (argv[0] '-bash') leading a session on a new pseudo-terminal."""
        pid, master = pty.fork()
        if pid == 0:  # the child: become the shell at once
            os.execv(sys.executable, ["-bash", "-c", CHILD, name, "honour"])
        self.forked.append((pid, master))
        out = b""
        deadline = time.monotonic() + 10
        while not out.endswith(b"\n"):
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "the shell did not start"
            out += os.read(master, 64)
        assert int(out) == pid
        return pid

    def alive(self, pid: int) -> bool:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")

    def close(self) -> None:
        for p in self.popens:
            p.kill()
            p.wait()
            assert p.stdout is not None
            p.stdout.close()
        for pid, master in self.forked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(master)


@pytest.fixture
def targets() -> Iterator[Targets]:
    require_root()
    t = Targets()
    yield t
    t.close()


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Harness]:
    """Enforce mode on the real /proc with the daemon's guards: nothing is added to the
    built-in list, so whatever is refused is refused by it."""
    h = Harness(tmp_path / "live.db", "/proc", ActionPolicy(mode="enforce", kill_grace_s=1.0),
                wall=time.time, inline=False, guards=Guards(frozenset(), frozenset()))
    yield h
    h.store.close()


def _sessions(pid: int) -> tuple[int, int]:
    """(session id, tty_nr) as the kernel shows them."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    return int(fields[3]), int(fields[4])


@pytest.mark.parametrize(("start", "reason"), [
    (lambda t: t.named("tmux: server"), "'tmux: server' is on the protected list"),
    (lambda t: t.named("sshd"), "'sshd' is on the protected list"),
    (lambda t: t.terminal_login("lnx-shell"),
     "lnx-shell[{pid}] leads a session with a terminal (an interactive shell or login)"),
    (lambda t: t.named("lnx-login", argv0="-bash"),
     "lnx-login[{pid}] is a login shell (argv[0] is '-bash')"),
])
async def test_a_proposal_against_a_protected_process_is_refused_and_audited(
        targets: Targets, manager: Harness, start: Callable[[Targets], int],
        reason: str) -> None:
    pid = start(targets)
    async with running(manager.manager):
        row = await manager.propose(pid)
        with pytest.raises(ActionConflictError):
            await manager.manager.approve(row["id"], "alice", None)
    expected = reason.format(pid=pid)
    assert (row["status"], row["reason"]) == ("refused", expected)
    assert ("linnix", "action.refused", {"reason": expected, "at": "proposal"}) in (
        manager.events(row["id"]))
    assert targets.alive(pid)


async def test_the_pty_shell_really_leads_a_session_with_a_terminal(targets: Targets) -> None:
    """What the refusal above rests on: pty.fork() makes the child a session leader with
    a controlling terminal."""
    pid = targets.terminal_login("lnx-shell")
    session, tty_nr = _sessions(pid)
    assert session == pid and tty_nr != 0


async def test_an_ordinary_process_is_killed_in_enforce_mode(targets: Targets,
                                                             manager: Harness) -> None:
    """The control: the same manager kills what the guards let through."""
    pid = targets.named("lnx-worker")
    async with running(manager.manager):
        row = await manager.propose(pid)
        final = await manager.settle(row["id"])
    assert final["status"] == "succeeded", final
    assert not os.path.exists(f"/proc/{pid}") or not targets.alive(pid)


