"""Starting, watching and stopping the process group of one ``linnix demo`` run.

Every scenario runs detached from the command that started it.  The command
forks a *launcher*, which calls ``setsid()`` (a new session and process group
whose id is the launcher's pid), names itself after the scenario, forks the
workload processes and exits at once: the workload is re-parented to init (or
the nearest subreaper) and never appears under the shell, the test harness or
``linnix demo`` itself, which would otherwise become the root of a "runaway
tree".

The command keeps the launcher as an unreaped child until the end, so the
launcher's pid, which is the group id, cannot be reused by anyone else while
the command may still signal the group: ``killpg`` only ever reaches the
workload.  It learns that the workload has ended from a pipe whose write end
only the workload holds (end of file once the last process has exited, zombies
included), prints the workload's own progress lines and a summary of the group
read from ``/proc``, and on SIGINT, SIGTERM or SIGHUP kills the whole group
(SIGTERM, a short grace, then SIGKILL) and exits with 128 + the signal number.

The launcher sets its command name (``prctl(PR_SET_NAME)``) *before* it forks,
so the fork events that the agent sees already carry the scenario's name;
forked children inherit it.  Everything is bounded in time: a watchdog stops a
workload that outlives its plan, and each workload process ends itself
shortly after its deadline (see :mod:`.workload`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, NoReturn, TextIO

from ...errors import LinnixError
from .workload import GRACE_S, MB, PAGE, Workload, arm, set_name

if TYPE_CHECKING:
    from ...procfs import ProcStat
    from .scenarios import Scenario

__all__ = ["SIGNALS", "Signals", "group_members", "run_one"]

STOP_GRACE_S = 1.0  # between SIGTERM and SIGKILL when the command stops a group
SUMMARY_EVERY_S = 3.0
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def group_members(pgid: int) -> list[ProcStat]:
    """The live (not zombie) processes of process group ``pgid``, read from /proc."""
    from ...procfs import list_pids, read_stat  # not at import: `check` loads demo

    found = (read_stat(pid) for pid in list_pids())
    return [st for st in found if st is not None and st.pgrp == pgid and not st.exited]


class Group:
    """The process group of one scenario run, led by our own (unreaped) launcher."""

    def __init__(self, launcher: int) -> None:
        self.launcher = launcher
        self.pgid = launcher  # the launcher's setsid() made it the group leader
        self.reaped = False

    def _launcher_running(self) -> bool:
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.launcher, flags) is None

    def _signal(self, sig: int) -> None:
        if self.reaped:  # never: the group id could belong to someone else by now
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def settle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the group to empty by itself; True if it did.

        The status pipe reaches end of file when the last process has closed
        its descriptors, a moment before it has finished exiting.
        """
        deadline = time.monotonic() + seconds
        while group_members(self.pgid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> int:
        """Kill every process of the group; returns how many were still running."""
        if self._launcher_running():
            # Our own child: kill it before it can start anything more.  Before its
            # setsid() it has no group of its own and has started nothing.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.launcher, signal.SIGKILL)
            os.waitid(os.P_PID, self.launcher, os.WEXITED | os.WNOWAIT)
        found = {m.pid for m in group_members(self.pgid)}
        if not found:
            return 0
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        members = found
        while members and time.monotonic() < deadline:
            time.sleep(0.02)
            members = {m.pid for m in group_members(self.pgid)}
        deadline = time.monotonic() + 5.0
        while members:  # forks during the grace period join the group, so repeat
            self._signal(signal.SIGKILL)
            time.sleep(0.02)
            members = {m.pid for m in group_members(self.pgid)}
            if time.monotonic() > deadline:
                raise LinnixError(f"processes {sorted(members)} of group {self.pgid} "
                                  "survive SIGKILL")
            found |= members
        return len(found)

    def reap(self) -> int:
        """Collect the launcher (last: its pid guards the group id); its exit status."""
        if self.reaped:
            return 0
        _, status = os.waitpid(self.launcher, 0)
        self.reaped = True
        return os.waitstatus_to_exitcode(status)


class Signals:
    """SIGINT, SIGTERM and SIGHUP become bytes on a pipe the command selects on."""

    def __enter__(self) -> Signals:
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.old = {sig: signal.signal(sig, self._note) for sig in SIGNALS}
        # zombies must stay: an auto-reaped launcher would free the group id
        self.old_child = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.old_wakeup = signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self.old_wakeup)
        signal.signal(signal.SIGCHLD, self.old_child)
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        os.close(self.r)
        os.close(self.w)

    @staticmethod
    def _note(signum: int, frame: object) -> None:
        """Nothing to do here: the wake-up byte on the pipe carries the signal."""

    def take(self) -> int | None:
        """The first signal received since the last call, if any."""
        try:
            data = os.read(self.r, 512)
        except BlockingIOError:
            return None
        return next((b for b in data if b in SIGNALS), None)

    def wait(self, seconds: float) -> int | None:
        """Sleep up to ``seconds``; a signal cuts it short and is returned."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.r], [], [], left)
            if ready and (sig := self.take()) is not None:
                return sig
        return None


def _launcher(scenario: Scenario, w: Workload, mask: Iterable[int]) -> NoReturn:
    """The forked launcher: detach, name the workload, start it and exit."""
    code = 1
    try:
        for sig in (*SIGNALS, signal.SIGCHLD, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.setsid()
        w.fd = _detach_fds(w.fd)
        os.chdir("/")
        set_name(scenario.comm)
        arm(w.end())
        scenario.launch(w)
        code = 0
    except BaseException as err:
        w.say(f"could not start the workload: {type(err).__name__}: {err}", "error")
    finally:
        os._exit(code)


def _detach_fds(keep: int) -> int:
    """Standard streams to /dev/null, every other descriptor but ``keep`` closed.

    Returns the new number of ``keep`` (moved above 2), set non-blocking so
    that a reader that stopped reading never stalls the workload.
    """
    moved = fcntl.fcntl(keep, fcntl.F_DUPFD, 3)
    os.close(keep)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: close by number
        os.closerange(3, moved)
        os.closerange(moved + 1, max(moved + 1, os.sysconf("SC_OPEN_MAX")))
        open_fds = []
    for fd in open_fds:
        if fd > 2 and fd != moved:
            with contextlib.suppress(OSError):
                os.close(fd)
    os.set_blocking(moved, False)
    return moved


def _clock(t0: float) -> str:
    return f"[{time.monotonic() - t0:6.1f}s]"


def _summary(members: list[ProcStat], before: dict[int, int], dt: float) -> str:
    ticks = sum(max(0, m.cpu_ticks - before.get(m.pid, 0)) for m in members)
    cpu = 100.0 * ticks / _CLK_TCK / dt if dt > 0 else 0.0
    biggest = max((m.rss_pages * PAGE / MB for m in members), default=0.0)
    n = len(members)
    return (f"group: {n} process{'es' * (n != 1)}, {cpu:.0f}% CPU, "
            f"largest resident set {biggest:.0f} MiB")



def run_one(scenario: Scenario, scale: float, leak_cap_mb: int, sigs: Signals,
            out: TextIO) -> int:
    """Run one scenario to its end; 0, 1 (the workload reported an error) or 128+signal."""
    r, wfd = os.pipe()
    t0 = time.monotonic()
    w = Workload(scenario, scale, t0, wfd, leak_cap_mb)
    group = Group(_start(scenario, w, r, out))
    watch = _Watch(group, r, t0, scenario.planned(scale), out)
    try:
        watch.show(f"workload started: process group {group.pgid}, in its own session "
                   "(not a descendant of this command)")
        return watch.follow(sigs)
    finally:
        try:
            group.stop()
        finally:
            os.close(r)
            group.reap()


def _start(scenario: Scenario, w: Workload, r: int, out: TextIO) -> int:
    """Fork the launcher and return its pid.

    The write end of the status pipe is closed here so that only the workload
    holds it; the stop signals stay blocked across the fork so that the
    launcher never runs the command's handlers.
    """
    out.flush()
    sys.stderr.flush()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            _launcher(scenario, w, mask)
    except OSError as err:
        os.close(r)
        raise LinnixError(f"cannot start the workload: {err.strerror}") from None
    finally:
        os.close(w.fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return pid


class _Watch:
    """The command's view of one running workload: its lines, summaries and end."""

    def __init__(self, group: Group, r: int, t0: float, planned: float, out: TextIO) -> None:
        self.group = group
        self.r = r  # read end of the status pipe
        self.t0 = t0
        self.planned = planned
        self.out = out
        self.status = 0
        self.pending = b""  # the start of a line not complete yet
        self.next_summary = t0 + SUMMARY_EVERY_S
        self.before: dict[int, int] = {}  # CPU ticks per pid at the last summary
        self.last = t0

    def show(self, text: str) -> None:
        self.out.write(f"{_clock(self.t0)} {text}\n")
        self.out.flush()

    def follow(self, sigs: Signals) -> int:
        """Watch until the workload ends (its status) or a signal stops it (128 + it)."""
        watchdog = self.t0 + self.planned + GRACE_S + 3.0
        while True:
            now = time.monotonic()
            if now >= watchdog:
                self.show("the workload outlived its deadline; stopping it")
                return 1
            wait = max(0.0, min(self.next_summary, watchdog) - now)
            ready, _, _ = select.select([self.r, sigs.r], [], [], wait)
            if sigs.r in ready and (sig := sigs.take()) is not None:
                return self._stop(sig)
            if self.r in ready and not self._read():
                return self._ended()
            if time.monotonic() >= self.next_summary:
                self._summarise()

    def _stop(self, sig: int) -> int:
        self.show(f"got {signal.Signals(sig).name}: stopping the workload")
        n = self.group.stop()
        self.show(f"stopped {n} process{'es' * (n != 1)}; nothing of the workload is left")
        return 128 + sig

    def _read(self) -> bool:
        """Show the workload's complete lines; False at end of file."""
        data = os.read(self.r, 65536)
        if not data:
            return False
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            kind, _, text = line.decode("utf-8", "replace").partition(" ")
            if kind == "error":
                self.status = 1
            self.show(text if kind == "info" else f"{kind}: {text}")
        return True

    def _ended(self) -> int:
        """The status pipe is closed: check that the group is empty, say so."""
        late = time.monotonic() - self.t0
        note = ("" if late >= self.planned * 0.9 else f" (planned {self.planned:.1f}s: "
                "it was stopped early, perhaps by an action)")
        if self.group.settle(1.0):
            self.show(f"done: every workload process has exited{note}")
        else:
            self.show("the workload closed its status pipe but left processes running; "
                      "stopping them")
            self.status = 1
        return self.status

    def _summarise(self) -> None:
        members = group_members(self.group.pgid)
        now = time.monotonic()
        self.show(_summary(members, self.before, now - self.last))
        self.before = {m.pid: m.cpu_ticks for m in members}
        self.last = now
        self.next_summary = now + SUMMARY_EVERY_S
