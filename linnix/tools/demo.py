"""``linnix demo``: real, bounded workloads that trip each shipped rule.

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

Each workload process bounds itself: it stops at its deadline and arms a
real-time timer for shortly after it, whose SIGALRM ends the process even if
``linnix demo`` was SIGKILLed or the process is stuck.  Process counts and
memory are capped.

Names: the launcher sets its command name (``prctl(PR_SET_NAME)``) *before* it
forks, so the fork events that the agent sees already carry the scenario's
name (``lnx-forker``, ``lnx-spin`` and so on); forked children inherit it.
None of the names is in the ``protected`` list of ``rules/common.lnx``.

This module uses the standard library only: no trio, quart or bcc.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import math
import os
import resource
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, TextIO

from ..cli.argtypes import positive_int
from ..errors import LinnixError, UsageError

if TYPE_CHECKING:
    from ..procfs import ProcStat

__all__ = ["SCENARIOS", "Scenario", "add_parser", "cmd_demo", "run"]

# ---- shapes of the workloads (seconds unscaled; rates are never scaled) -----------------

GRACE_S = 2.0  # a workload process's timer fires this long after its deadline
STOP_GRACE_S = 1.0  # between SIGTERM and SIGKILL when the command stops a group
PAUSE_S = 5.0  # between scenarios of `all`, so that the alerts resolve
SUMMARY_EVERY_S = 3.0

FORK_RATE = 30.0  # forks a second
FORK_FOR_S = 6.0
FORK_CHILD_LIFE_S = 3.0  # long enough not to count as short jobs (1 s)
FORK_MAX_CHILDREN = 200

SPIKE_FOR_S = 12.0

RUNAWAY_FOR_S = 12.0
RUNAWAY_CHILDREN = 2
RUNAWAY_DUTY = 0.6  # each child is busy 60% of every period
RUNAWAY_PERIOD_S = 0.1

LEAK_FOR_S = 45.0
LEAK_MB_PER_S = 12
LEAK_STEP_S = 0.25
LEAK_CAP_MB = 600
LEAK_MAX_AVAILABLE = 0.5  # never take more than half of MemAvailable
_PAGE = os.sysconf("SC_PAGE_SIZE")

JOBS_FOR_S = 12.0
JOBS_RATE = 7.0  # short jobs a second: above 5 (short_jobs), well below 10 (fork_storm)

FD_FOR_S = 16.0
FD_LIMIT = 256
FD_FILL = 0.95

STALL_FOR_S = 40.0  # PSI avg10 needs ~10 s to pass 40%, then the rule needs 15 s
STALL_SPAWN_RATE = 8.0  # the spinners start at this pace: never a fork storm

_MB = 1024 * 1024
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stall_spinners() -> int:
    """How many spinners circuit-breaker starts: more runnable tasks than CPUs."""
    return 2 * (os.cpu_count() or 1) + 1


def _stall_ramp_s() -> float:
    return (stall_spinners() - 1) / STALL_SPAWN_RATE


# ---- what every workload process knows ----------------------------------------------------

class _Workload:
    """The plan of one scenario run, as inherited by each of its processes."""

    def __init__(self, scenario: Scenario, scale: float, t0: float, fd: int,
                 leak_cap_mb: int) -> None:
        self.scenario = scenario
        self.scale = scale
        self.t0 = t0  # CLOCK_MONOTONIC is shared by every process
        self.fd = fd  # write end of the status pipe
        self.leak_cap_mb = leak_cap_mb

    def at(self, seconds: float) -> float:
        """The monotonic time ``seconds`` (scaled) after the start."""
        return self.t0 + seconds * self.scale

    def span(self, seconds: float) -> float:
        return seconds * self.scale

    def end(self) -> float:
        """When the last process of the scenario should be gone."""
        return self.t0 + self.scenario.planned(self.scale)

    def say(self, text: str, kind: str = "info") -> None:
        """Send one line to ``linnix demo``; dropped if nobody reads any more."""
        line = f"{kind} {self.scenario.comm}[{os.getpid()}]: {text}"
        data = (line.replace("\n", " ")[:1000] + "\n").encode("utf-8", "replace")
        with contextlib.suppress(OSError):
            os.write(self.fd, data)

    def spawn(self, body: Callable[[_Workload, float], int | None], until: float) -> int:
        """Fork a workload process running ``body(self, until)`` and return its pid."""
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            _arm(until)
            code = body(self, until) or 0
        except BaseException as err:
            self.say(f"failed: {type(err).__name__}: {err}", "error")
        finally:
            os._exit(code)


def _arm(until: float) -> None:
    """Make sure this process ends shortly after ``until``, whatever happens."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, max(0.05, until - time.monotonic() + GRACE_S))


def set_name(name: str) -> None:
    """Set this process's command name (``/proc/PID/comm``, at most 15 bytes)."""
    raw = name.encode()[:15]
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_name = 15
        if libc.prctl(pr_set_name, ctypes.c_char_p(raw), ctypes.c_ulong(0), ctypes.c_ulong(0),
                      ctypes.c_ulong(0)) == 0:
            return
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/comm", "wb") as f:
            f.write(raw)
    except OSError:
        pass


def _ticks(rate: float, until: float) -> Iterator[float]:
    """Yield the time once per tick at ``rate`` a second until ``until``.

    Each tick is at least one interval after the previous one: a late tick
    pushes the next one back instead of bunching up, so no one-second window
    ever holds more than ``rate`` ticks.
    """
    gap = 1.0 / rate
    clock = time.monotonic
    due = clock()
    while due < until:
        now = clock()
        if due > now:
            time.sleep(due - now)
        tick = clock()
        yield tick
        due = tick + gap


def _sleep_until(until: float) -> None:
    while (left := until - time.monotonic()) > 0:
        time.sleep(left)


def _burn_until(until: float) -> None:
    clock = time.monotonic
    while clock() < until:
        pass


def _reap(live: set[int], block: bool = False) -> None:
    """Collect exited children (all of them with ``block``)."""
    while live:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            live.clear()
            return
        if pid == 0:
            return
        live.discard(pid)


def _fork_children(w: _Workload, rate: float, until: float, child: Callable[[], NoReturn],
                   cap: int | None = None,
                   progress: Callable[[float, int, int], None] | None = None
                   ) -> tuple[int, set[int]]:
    """Fork ``rate`` children a second until ``until`` (fewer while ``cap`` are alive),
    each running ``child``; how many were started, and those not reaped yet."""
    live: set[int] = set()
    started = 0
    for now in _ticks(rate, until):
        _reap(live)
        if cap is not None and len(live) >= cap:
            continue
        try:
            pid = os.fork()
        except OSError as err:
            w.say(f"fork failed ({err.strerror}); no more children", "warn")
            break
        if pid == 0:
            child()
        live.add(pid)
        started += 1
        if progress is not None:
            progress(now, started, len(live))
    return started, live


def _exit_at_once() -> NoReturn:
    os._exit(0)


def _live_briefly(seconds: float) -> NoReturn:
    """The body of a forked child that just exists for ``seconds``."""
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds + GRACE_S)
        time.sleep(seconds)
    finally:
        os._exit(0)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE / _MB
    except (OSError, ValueError, IndexError):
        return 0.0


def _mem_available_mb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# ---- the scenarios (each ``launch`` runs in the launcher, after setsid) --------------------

def _launch_fork_storm(w: _Workload) -> None:
    w.spawn(_forker, w.at(FORK_FOR_S + FORK_CHILD_LIFE_S))


def _forker(w: _Workload, until: float) -> int:
    life = w.span(FORK_CHILD_LIFE_S)
    stop_forking = until - life  # so that the last child is gone by ``until``
    w.say(f"forking {FORK_RATE:.0f} children a second for "
          f"{max(0.0, stop_forking - time.monotonic()):.1f}s; each lives {life:.1f}s "
          f"(at most {FORK_MAX_CHILDREN} alive)")
    report = time.monotonic() + 2.0

    def progress(now: float, started: int, alive: int) -> None:
        nonlocal report
        if now >= report:
            w.say(f"{started} children started, {alive} alive")
            report = now + 2.0

    started, live = _fork_children(w, FORK_RATE, stop_forking, lambda: _live_briefly(life),
                                   FORK_MAX_CHILDREN, progress)
    w.say(f"stopped forking after {started} children; waiting for the {len(live)} still alive")
    _reap(live, block=True)
    return 0


def _launch_cpu_spike(w: _Workload) -> None:
    w.spawn(_spinner, w.at(SPIKE_FOR_S))


def _spinner(w: _Workload, until: float) -> int:
    w.say(f"spinning on one CPU for {until - time.monotonic():.1f}s")
    _burn_until(until)
    return 0


def _launch_runaway_tree(w: _Workload) -> None:
    w.spawn(_runaway_parent, w.at(RUNAWAY_FOR_S))


def _runaway_parent(w: _Workload, until: float) -> int:
    kids: set[int] = set()
    for _ in range(RUNAWAY_CHILDREN):
        pid = os.fork()
        if pid == 0:
            try:
                _arm(until)
                _duty_cycle(until, RUNAWAY_DUTY, RUNAWAY_PERIOD_S)
            finally:
                os._exit(0)
        kids.add(pid)
    w.say(f"started {len(kids)} children ({', '.join(map(str, sorted(kids)))}), each busy "
          f"{RUNAWAY_DUTY:.0%} of the time, for {until - time.monotonic():.1f}s; "
          "the parent stays idle")
    _reap(kids, block=True)
    return 0


def _duty_cycle(until: float, duty: float, period: float) -> None:
    """Use ``duty`` of a CPU until ``until``: per period, spin, then sleep the rest.

    The spin is measured in CPU time, not wall time: on a busy host a child that
    is preempted still gets its share (the period just runs long, without a
    sleep), instead of quietly dropping below it.  A late period is never
    repaid, so the demand stays at most one CPU per child.
    """
    clock, used = time.monotonic, time.process_time
    while (start := clock()) < until:
        stop = used() + duty * period
        while used() < stop and clock() < until:
            pass
        rest = min(start + period, until) - clock()
        if rest > 0:
            time.sleep(rest)


def _launch_memory_leak(w: _Workload) -> None:
    w.spawn(_leaker, w.at(LEAK_FOR_S))


def _leaker(w: _Workload, until: float) -> int:
    cap = float(w.leak_cap_mb)
    available = _mem_available_mb()
    if available is not None and available * LEAK_MAX_AVAILABLE < cap:
        cap = available * LEAK_MAX_AVAILABLE
        w.say(f"only {available:.0f} MiB available: the cap is {cap:.0f} MiB", "warn")
    step_mb = LEAK_MB_PER_S * LEAK_STEP_S
    step = int(step_mb * _MB)
    pages = len(range(0, step, _PAGE))
    w.say(f"growing by {LEAK_MB_PER_S} MiB a second for {until - time.monotonic():.1f}s, "
          f"up to {cap:.0f} MiB more than the {_rss_mb():.0f} MiB it starts with")
    chunks: list[bytearray] = []
    grown = 0.0
    capped = False
    report = time.monotonic() + 5.0
    for now in _ticks(1.0 / LEAK_STEP_S, until):
        if grown + step_mb > cap:
            if not capped:
                w.say(f"reached the cap at {_rss_mb():.0f} MiB resident; holding it")
                capped = True
            continue
        try:
            chunk = bytearray(step)
            chunk[::_PAGE] = b"\xa5" * pages  # really touch every page
        except MemoryError:
            chunks.clear()
            w.say(f"allocation failed after {grown:.0f} MiB; stopping", "error")
            return 1
        chunks.append(chunk)
        grown += step_mb
        if now >= report:
            w.say(f"{_rss_mb():.0f} MiB resident")
            report = now + 5.0
    w.say(f"done at {_rss_mb():.0f} MiB resident")
    return 0


def _launch_short_jobs(w: _Workload) -> None:
    w.spawn(_jobs, w.at(JOBS_FOR_S))


def _jobs(w: _Workload, until: float) -> int:
    w.say(f"starting {JOBS_RATE:.0f} children a second that exit at once, "
          f"for {until - time.monotonic():.1f}s")
    first = time.monotonic()
    started, live = _fork_children(w, JOBS_RATE, until, _exit_at_once)
    _reap(live, block=True)
    w.say(f"started {started} short-lived children in {time.monotonic() - first:.1f}s")
    return 0


def _launch_fd_exhaustion(w: _Workload) -> None:
    w.spawn(_fdhog, w.at(FD_FOR_S))


def _fdhog(w: _Workload, until: float) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = FD_LIMIT
    for current in (soft, hard):
        if current != resource.RLIM_INFINITY:
            limit = min(limit, current)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    target = math.ceil(limit * FD_FILL)
    held = len(os.listdir("/proc/self/fd")) - 1  # the listing's own descriptor
    opened: list[int] = []
    while held < target:
        try:
            opened.append(os.open(os.devnull, os.O_RDONLY))
        except OSError as err:
            w.say(f"open failed after {held} descriptors ({err.strerror})", "warn")
            break
        held += 1
    w.say(f"lowered its open-files limit to {limit} and holds {held} descriptors "
          f"({100 * held / limit:.0f}%) for {until - time.monotonic():.1f}s")
    _sleep_until(until)
    return 0


def _launch_circuit_breaker(w: _Workload) -> None:
    until = w.end()
    count = stall_spinners()
    started = 0
    for _ in _ticks(STALL_SPAWN_RATE, until):
        w.spawn(_stall, until)
        started += 1
        if started == count:
            break
    w.say(f"started {started} spinners ({os.cpu_count() or 1} CPUs), each a child of init, "
          f"for {until - time.monotonic():.1f}s")


def _stall(w: _Workload, until: float) -> int:
    _burn_until(until)
    return 0


@dataclass(frozen=True)
class Scenario:
    """One workload and the rule it trips."""

    name: str
    rule: str
    severity: str
    comm: str  # the command name of every process of the workload
    workload: str  # what it does, at scale 1
    expect: str  # when the rule should fire, at scale 1
    length_s: float  # scaled part of its length
    launch: Callable[[_Workload], None]
    fixed_s: float = 0.0  # unscaled part of its length

    def planned(self, scale: float) -> float:
        """Seconds from the start until the last process should have exited."""
        return self.length_s * scale + self.fixed_s


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario(
        "fork-storm", "fork_storm", "critical", "lnx-forker",
        f"a leader forks {FORK_RATE:.0f} children a second for {FORK_FOR_S:.0f}s; each child "
        f"lives {FORK_CHILD_LIFE_S:.0f}s (at most {FORK_MAX_CHILDREN} alive)",
        "about 3s in: more than 10 processes created a second for 2s",
        FORK_FOR_S + FORK_CHILD_LIFE_S, _launch_fork_storm),
    Scenario(
        "cpu-spike", "cpu_spike", "warning", "lnx-spin",
        f"one process spins at 100% of a CPU for {SPIKE_FOR_S:.0f}s",
        "about 7s in: a subtree above 50% CPU for 5s",
        SPIKE_FOR_S, _launch_cpu_spike),
    Scenario(
        "runaway-tree", "runaway_tree", "critical", "lnx-runaway",
        f"an idle parent with {RUNAWAY_CHILDREN} children each busy {RUNAWAY_DUTY:.0%} of a CPU, "
        f"for {RUNAWAY_FOR_S:.0f}s",
        "about 7s in: a tree of 2 or more processes above 90% CPU for 5s",
        RUNAWAY_FOR_S, _launch_runaway_tree),
    Scenario(
        "memory-leak", "memory_leak", "warning", "lnx-leak",
        f"one process's resident memory grows {LEAK_MB_PER_S} MiB a second for "
        f"{LEAK_FOR_S:.0f}s (capped, {LEAK_CAP_MB} MiB by default)",
        "about 30s in: more than 50 MiB growth per 10s, for 20s",
        LEAK_FOR_S, _launch_memory_leak),
    Scenario(
        "short-jobs", "short_jobs", "warning", "lnx-jobs",
        f"a parent starts {JOBS_RATE:.0f} children a second that exit at once, "
        f"for {JOBS_FOR_S:.0f}s",
        "about 6s in: more than 5 children a second living under 1s, for 5s",
        JOBS_FOR_S, _launch_short_jobs),
    Scenario(
        "fd-exhaustion", "fd_exhaustion", "warning", "lnx-fdhog",
        f"a process lowers its open-files limit to {FD_LIMIT} and holds {FD_FILL:.0%} of it "
        f"for {FD_FOR_S:.0f}s",
        "about 11s in: over 90% of the descriptor limit for 10s",
        FD_FOR_S, _launch_fd_exhaustion),
    Scenario(
        "circuit-breaker", "circuit_breaker", "critical", "lnx-stall",
        f"{stall_spinners()} detached spinners (2 per CPU + 1), siblings under init, "
        f"for {STALL_FOR_S:.0f}s",
        "about 20s in: host CPU above 90% with CPU pressure above 40%, for 15s",
        STALL_FOR_S, _launch_circuit_breaker, fixed_s=_stall_ramp_s()),
)}


# ---- the command's side: launching, watching and stopping a group -------------------------

def group_members(pgid: int) -> list[ProcStat]:
    """The live (not zombie) processes of process group ``pgid``, read from /proc."""
    from ..procfs import list_pids, read_stat  # not at import: `check` loads demo

    found = (read_stat(pid) for pid in list_pids())
    return [st for st in found if st is not None and st.pgrp == pgid and not st.exited]


class _Group:
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


class _Signals:
    """SIGINT, SIGTERM and SIGHUP become bytes on a pipe the command selects on."""

    def __enter__(self) -> _Signals:
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.old = {sig: signal.signal(sig, self._note) for sig in _SIGNALS}
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
        return next((b for b in data if b in _SIGNALS), None)

    def wait(self, seconds: float) -> int | None:
        """Sleep up to ``seconds``; a signal cuts it short and is returned."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.r], [], [], left)
            if ready and (sig := self.take()) is not None:
                return sig
        return None


def _launcher(scenario: Scenario, w: _Workload, mask: Iterable[int]) -> NoReturn:
    """The forked launcher: detach, name the workload, start it and exit."""
    code = 1
    try:
        for sig in (*_SIGNALS, signal.SIGCHLD, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.setsid()
        w.fd = _detach_fds(w.fd)
        os.chdir("/")
        set_name(scenario.comm)
        _arm(w.end())
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
    biggest = max((m.rss_pages * _PAGE / _MB for m in members), default=0.0)
    n = len(members)
    return (f"group: {n} process{'es' * (n != 1)}, {cpu:.0f}% CPU, "
            f"largest resident set {biggest:.0f} MiB")


def _run_one(scenario: Scenario, scale: float, leak_cap_mb: int, sigs: _Signals,
             out: TextIO) -> int:
    """Run one scenario to its end; 0, 1 (the workload reported an error) or 128+signal."""
    def show(text: str) -> None:
        out.write(f"{_clock(t0)} {text}\n")
        out.flush()

    r, wfd = os.pipe()
    t0 = time.monotonic()
    w = _Workload(scenario, scale, t0, wfd, leak_cap_mb)
    out.flush()
    sys.stderr.flush()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            _launcher(scenario, w, mask)
    except OSError as err:
        os.close(r)
        raise LinnixError(f"cannot start the workload: {err.strerror}") from None
    finally:
        os.close(wfd)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    group = _Group(pid)
    status = 0
    try:
        show(f"workload started: process group {group.pgid}, in its own session "
             "(not a descendant of this command)")
        planned = scenario.planned(scale)
        watchdog = t0 + planned + GRACE_S + 3.0
        next_summary = t0 + SUMMARY_EVERY_S
        before: dict[int, int] = {}
        last = t0
        pending = b""
        while True:
            now = time.monotonic()
            if now >= watchdog:
                show("the workload outlived its deadline; stopping it")
                status = 1
                break
            wait = max(0.0, min(next_summary, watchdog) - now)
            ready, _, _ = select.select([r, sigs.r], [], [], wait)
            if sigs.r in ready and (sig := sigs.take()) is not None:
                show(f"got {signal.Signals(sig).name}: stopping the workload")
                n = group.stop()
                show(f"stopped {n} process{'es' * (n != 1)}; nothing of the workload is left")
                return 128 + sig
            if r in ready:
                data = os.read(r, 65536)
                if not data:
                    late = time.monotonic() - t0
                    note = ("" if late >= planned * 0.9 else f" (planned {planned:.1f}s: "
                            "it was stopped early, perhaps by an action)")
                    if group.settle(1.0):
                        show(f"done: every workload process has exited{note}")
                    else:
                        show("the workload closed its status pipe but left processes running; "
                             "stopping them")
                        status = 1
                    break
                *lines, pending = (pending + data).split(b"\n")
                for line in lines:
                    kind, _, text = line.decode("utf-8", "replace").partition(" ")
                    if kind == "error":
                        status = 1
                    show(text if kind == "info" else f"{kind}: {text}")
            if time.monotonic() >= next_summary:
                members = group_members(group.pgid)
                now = time.monotonic()
                show(_summary(members, before, now - last))
                before = {m.pid: m.cpu_ticks for m in members}
                last = now
                next_summary = now + SUMMARY_EVERY_S
    finally:
        try:
            group.stop()
        finally:
            os.close(r)
            group.reap()
    return status


def run(names: list[str], scale: float = 1.0, leak_cap_mb: int = LEAK_CAP_MB,
        out: TextIO | None = None) -> int:
    """Run scenarios in turn; the exit status of ``linnix demo``."""
    out = out or sys.stdout

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    status = 0
    with _Signals() as sigs:
        for i, name in enumerate(names):
            scenario = SCENARIOS[name]
            if i:
                pause = PAUSE_S * scale
                say(f"\n(pausing {pause:.1f}s so that the alerts resolve)\n")
                if (sig := sigs.wait(pause)) is not None:
                    say(f"got {signal.Signals(sig).name}: stopping")
                    return 128 + sig
            say(f"== {scenario.name} ({i + 1}/{len(names)}): trips {scenario.rule} "
                f"({scenario.severity}) ==")
            say(f"workload: {scenario.workload}; processes are named {scenario.comm}")
            say(f"expect: {scenario.rule} to fire {scenario.expect}")
            if scale != 1.0:
                say(f"note: durations scaled by {scale:g} (planned "
                    f"{scenario.planned(scale):.1f}s); at this scale the rule may not fire")
            if name == "circuit-breaker" and not os.path.exists("/proc/pressure/cpu"):
                say("note: this kernel reports no CPU pressure (/proc/pressure/cpu), so "
                    "circuit_breaker cannot fire here")
            rc = _run_one(scenario, scale, leak_cap_mb, sigs, out)
            if rc >= 128:
                return rc
            status = max(status, rc)
    if len(names) > 1:
        say(f"\nall {len(names)} scenarios done")
    return status


# ---- the command line ------------------------------------------------------------------------

def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value) or value <= 0 or value > 100:
        raise argparse.ArgumentTypeError(f"'{text}' must be above 0 and at most 100")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``linnix demo``."""
    p = sub.add_parser(
        "demo", help="run real, bounded workloads that trip each shipped rule",
        description="Run a real, bounded workload that trips one shipped rule (or all of "
                    "them in turn), detached from this terminal, and clean it up at the "
                    "end, on Ctrl-C and on SIGTERM.")
    p.add_argument("scenario", nargs="?", metavar="SCENARIO", choices=[*SCENARIOS, "all"],
                   help="one of: " + ", ".join(SCENARIOS) + ", or all")
    p.add_argument("--list", action="store_true",
                   help="list the scenarios and the rule each trips")
    p.add_argument("--duration-scale", type=_scale, default=1.0, metavar="FLOAT",
                   help="multiply every duration by this (default 1.0)")
    p.add_argument("--leak-cap", type=positive_int, default=LEAK_CAP_MB, metavar="MIB",
                   help=f"memory-leak stops growing after this many MiB "
                        f"(default {LEAK_CAP_MB})")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.list:
        width = max(map(len, SCENARIOS))
        for s in SCENARIOS.values():
            sys.stdout.write(f"{s.name:<{width}}  {s.rule:<16} {s.severity:<8}  "
                             f"{s.comm:<11}  {s.workload}\n")
        sys.stdout.write(f"{'all':<{width}}  every scenario in turn\n")
        return 0
    if args.scenario is None:
        raise UsageError("demo: name a scenario (or 'all'); 'linnix demo --list' lists them")
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    return run(names, args.duration_scale, args.leak_cap)
