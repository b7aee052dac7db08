"""What every workload process of ``linnix demo`` knows and does.

A :class:`Workload` is the plan of one scenario run as each of its processes
inherits it across ``fork()``: when it started (on ``CLOCK_MONOTONIC``, which
every process shares), its scale, and the pipe on which it reports progress to
the command.  The helpers below are the pieces the scenarios are built from:
forking at a steady rate, burning or holding CPU until a deadline, reaping.

Each workload process bounds itself: it stops at its deadline and arms a
real-time timer for shortly after it (:func:`arm`), whose SIGALRM ends the
process even if ``linnix demo`` was SIGKILLed or the process is stuck.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from .scenarios import Scenario

__all__ = [
    "GRACE_S", "MB", "PAGE", "Workload", "arm", "set_name", "ticks", "sleep_until",
    "burn_until", "reap", "fork_children", "exit_at_once", "live_briefly", "rss_mb",
    "mem_available_mb",
]

GRACE_S = 2.0  # a workload process's timer fires this long after its deadline
MB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


class Workload:
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

    def spawn(self, body: Callable[[Workload, float], int | None], until: float) -> int:
        """Fork a workload process running ``body(self, until)`` and return its pid."""
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            arm(until)
            code = body(self, until) or 0
        except BaseException as err:
            self.say(f"failed: {type(err).__name__}: {err}", "error")
        finally:
            os._exit(code)


def arm(until: float) -> None:
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


def ticks(rate: float, until: float) -> Iterator[float]:
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


def sleep_until(until: float) -> None:
    while (left := until - time.monotonic()) > 0:
        time.sleep(left)


def burn_until(until: float) -> None:
    clock = time.monotonic
    while clock() < until:
        pass


def reap(live: set[int], block: bool = False) -> None:
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


def fork_children(w: Workload, rate: float, until: float, child: Callable[[], NoReturn],
                  cap: int | None = None,
                  progress: Callable[[float, int, int], None] | None = None
                  ) -> tuple[int, set[int]]:
    """Fork ``rate`` children a second until ``until`` (fewer while ``cap`` are alive),
    each running ``child``; how many were started, and those not reaped yet."""
    live: set[int] = set()
    started = 0
    for now in ticks(rate, until):
        reap(live)
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


def exit_at_once() -> NoReturn:
    os._exit(0)


def live_briefly(seconds: float) -> NoReturn:
    """The body of a forked child that just exists for ``seconds``."""
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds + GRACE_S)
        time.sleep(seconds)
    finally:
        os._exit(0)


def rss_mb() -> float:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE / MB
    except (OSError, ValueError, IndexError):
        return 0.0


def meminfo_mb(key: str) -> float | None:
    """A line of /proc/meminfo (``"MemTotal:"``, say) in MiB; None when unreadable."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def mem_available_mb() -> float | None:
    return meminfo_mb("MemAvailable:")
