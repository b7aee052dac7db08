"""The scenarios of ``linnix demo``: one real, bounded workload per shipped rule.

Each :class:`Scenario` names the rule it trips, what it does and when the rule
should fire, and its ``launch`` function, which runs in the launcher (after
``setsid()``, see :mod:`.supervisor`) and forks the workload's processes.
The shapes are chosen so that each workload trips its own rule and no other
critical one: durations are scaled by ``--duration-scale``, rates never are.

Names: every process of a workload carries the scenario's command name
(``lnx-forker``, ``lnx-spin`` and so on), none of which is in the
``protected`` list of ``rules/common.lnx``.
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

from .workload import (
    MB,
    PAGE,
    Workload,
    arm,
    burn_until,
    exit_at_once,
    fork_children,
    live_briefly,
    mem_available_mb,
    meminfo_mb,
    reap,
    rss_mb,
    sleep_until,
    ticks,
)

__all__ = ["FD_LIMIT", "GROUPS", "SCENARIOS", "Scenario", "default_leak_cap_mb", "stall_spinners"]

# ---- shapes of the workloads (seconds unscaled; rates are never scaled) -----------------
#
# Each shape is what the shipped rule needs to fire at its production threshold, with a
# margin, and no more: the thresholds scale with the host's CPUs and memory, so do these.

FORK_FOR_S = 5.0  # forking this long; the rule needs 2 s above its threshold
FORK_CHILD_LIFE_S = 6.0  # children linger, as a fork bomb's do (and are no short jobs)

SPIKE_FOR_S = 135.0  # cpu_spike needs 2 minutes above 90% of a CPU

RUNAWAY_FOR_S = 95.0  # runaway_tree: its one-minute windows fill, then 15 s
RUNAWAY_DUTY = 0.9  # each child is busy 90% of every period: over the 80% of every CPU
RUNAWAY_PERIOD_S = 0.1  # the rule needs, without stalling the host (no circuit_breaker)

LEAK_FOR_S = 135.0  # memory_leak: the 30 s window fills, then 90 s above the threshold
LEAK_MARGIN = 1.5  # grow 1.5x the rule's threshold rate
LEAK_STEP_S = 0.25
LEAK_MAX_AVAILABLE = 0.5  # never take more than half of MemAvailable

JOBS_FOR_S = 75.0  # short_jobs needs a minute above 20 a second
JOBS_RATE = 30.0  # short jobs a second

FD_FOR_S = 16.0
FD_LIMIT = 256
FD_FILL = 0.95

STALL_FOR_S = 85.0  # PSI avg10 needs ~10 s to pass 50%, then the rule needs a minute
STALL_SPAWN_RATE = 8.0  # the spinners start at this pace: never a fork storm


def ncpu() -> int:
    return os.cpu_count() or 1


def fork_threshold() -> int:
    """fork_storm's threshold on this host: this many more processes within 5 s."""
    return 100 + 10 * ncpu()


def fork_rate() -> float:
    """Forks a second: the threshold is crossed 1.5 s in, well before forking stops."""
    return fork_threshold() / 1.5


def fork_max_children() -> int:
    return math.ceil(fork_rate() * FORK_FOR_S)


def runaway_children() -> int:
    """One busy child per CPU: 90% of each, over the rule's 80% of every CPU."""
    return ncpu()


def mem_total_mb() -> float | None:
    return meminfo_mb("MemTotal:")


def leak_rate_mb_s() -> float:
    """memory_leak's threshold is mem_total_mb / 200 per 30 s; grow ``LEAK_MARGIN`` times that."""
    total = mem_total_mb() or 1024.0
    return LEAK_MARGIN * total / 200 / 30


def default_leak_cap_mb() -> int:
    """How much the leaker grows in all, at its rate, over its whole run."""
    return math.ceil(leak_rate_mb_s() * LEAK_FOR_S)


def stall_spinners() -> int:
    """How many spinners circuit-breaker starts: more runnable tasks than CPUs."""
    return 2 * ncpu() + 1


def _stall_ramp_s() -> float:
    return (stall_spinners() - 1) / STALL_SPAWN_RATE


# ---- the scenarios (each ``launch`` runs in the launcher, after setsid) --------------------

def _launch_fork_storm(w: Workload) -> None:
    w.spawn(_forker, w.at(FORK_FOR_S + FORK_CHILD_LIFE_S))


def _forker(w: Workload, until: float) -> int:
    life = w.span(FORK_CHILD_LIFE_S)
    stop_forking = until - life  # so that the last child is gone by ``until``
    rate = fork_rate()
    w.say(f"forking {rate:.0f} children a second for "
          f"{max(0.0, stop_forking - time.monotonic()):.1f}s; each lives {life:.1f}s "
          f"(at most {fork_max_children()} alive; the rule's threshold here is "
          f"{fork_threshold()} more processes within 5s)")
    report = time.monotonic() + 1.0

    def progress(now: float, started: int, alive: int) -> None:
        nonlocal report
        if now >= report:
            w.say(f"{started} children started, {alive} alive")
            report = now + 1.0

    started, live = fork_children(w, rate, stop_forking, lambda: live_briefly(life),
                                   fork_max_children(), progress)
    w.say(f"stopped forking after {started} children; waiting for the {len(live)} still alive")
    reap(live, block=True)
    return 0


def _launch_cpu_spike(w: Workload) -> None:
    w.spawn(_spinner, w.at(SPIKE_FOR_S))


def _spinner(w: Workload, until: float) -> int:
    w.say(f"spinning on one CPU for {until - time.monotonic():.1f}s")
    burn_until(until)
    return 0


def _launch_runaway_tree(w: Workload) -> None:
    w.spawn(_runaway_parent, w.at(RUNAWAY_FOR_S))


def _runaway_parent(w: Workload, until: float) -> int:
    kids: set[int] = set()
    for _ in range(runaway_children()):
        pid = os.fork()
        if pid == 0:
            try:
                arm(until)
                _duty_cycle(until, RUNAWAY_DUTY, RUNAWAY_PERIOD_S)
            finally:
                os._exit(0)
        kids.add(pid)
    w.say(f"started {len(kids)} children ({', '.join(map(str, sorted(kids)))}), each busy "
          f"{RUNAWAY_DUTY:.0%} of the time, for {until - time.monotonic():.1f}s; "
          "the parent stays idle")
    reap(kids, block=True)
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


def _launch_memory_leak(w: Workload) -> None:
    w.spawn(_leaker, w.at(LEAK_FOR_S))


def _leaker(w: Workload, until: float) -> int:
    cap = float(w.leak_cap_mb)
    available = mem_available_mb()
    if available is not None and available * LEAK_MAX_AVAILABLE < cap:
        cap = available * LEAK_MAX_AVAILABLE
        w.say(f"only {available:.0f} MiB available: the cap is {cap:.0f} MiB", "warn")
    rate = leak_rate_mb_s()
    step_mb = rate * LEAK_STEP_S
    step = int(step_mb * MB)
    pages = len(range(0, step, PAGE))
    w.say(f"growing by {rate:.1f} MiB a second for {until - time.monotonic():.1f}s, "
          f"up to {cap:.0f} MiB more than the {rss_mb():.0f} MiB it starts with")
    chunks: list[bytearray] = []
    grown = 0.0
    capped = False
    report = time.monotonic() + 5.0
    for now in ticks(1.0 / LEAK_STEP_S, until):
        if grown + step_mb > cap:
            if not capped:
                w.say(f"reached the cap at {rss_mb():.0f} MiB resident; holding it")
                capped = True
            continue
        try:
            chunk = bytearray(step)
            chunk[::PAGE] = b"\xa5" * pages  # really touch every page
        except MemoryError:
            chunks.clear()
            w.say(f"allocation failed after {grown:.0f} MiB; stopping", "error")
            return 1
        chunks.append(chunk)
        grown += step_mb
        if now >= report:
            w.say(f"{rss_mb():.0f} MiB resident")
            report = now + 5.0
    w.say(f"done at {rss_mb():.0f} MiB resident")
    return 0


def _launch_short_jobs(w: Workload) -> None:
    w.spawn(_jobs, w.at(JOBS_FOR_S))


def _jobs(w: Workload, until: float) -> int:
    w.say(f"starting {JOBS_RATE:.0f} children a second that exit at once, "
          f"for {until - time.monotonic():.1f}s")
    first = time.monotonic()
    started, live = fork_children(w, JOBS_RATE, until, exit_at_once)
    reap(live, block=True)
    w.say(f"started {started} short-lived children in {time.monotonic() - first:.1f}s")
    return 0


def _launch_fd_exhaustion(w: Workload) -> None:
    w.spawn(_fdhog, w.at(FD_FOR_S))


def _fdhog(w: Workload, until: float) -> int:
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
    sleep_until(until)
    return 0


def _launch_circuit_breaker(w: Workload) -> None:
    until = w.end()
    count = stall_spinners()
    started = 0
    for _ in ticks(STALL_SPAWN_RATE, until):
        w.spawn(_stall, until)
        started += 1
        if started == count:
            break
    w.say(f"started {started} spinners ({os.cpu_count() or 1} CPUs), each a child of init, "
          f"for {until - time.monotonic():.1f}s")


def _stall(w: Workload, until: float) -> int:
    burn_until(until)
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
    launch: Callable[[Workload], None]
    fixed_s: float = 0.0  # unscaled part of its length

    def planned(self, scale: float) -> float:
        """Seconds from the start until the last process should have exited."""
        return self.length_s * scale + self.fixed_s


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario(
        "fork-storm", "fork_storm", "critical", "lnx-forker",
        f"a leader forks {fork_rate():.0f} children a second for {FORK_FOR_S:.0f}s; each child "
        f"lives {FORK_CHILD_LIFE_S:.0f}s (at most {fork_max_children()} alive)",
        f"about 4s in: more than {fork_threshold()} new processes alive within 5s, for 2s",
        FORK_FOR_S + FORK_CHILD_LIFE_S, _launch_fork_storm),
    Scenario(
        "cpu-spike", "cpu_spike", "warning", "lnx-spin",
        f"one process spins at 100% of a CPU for {SPIKE_FOR_S:.0f}s",
        "about 2m in: one process above 90% of a CPU for 2 minutes",
        SPIKE_FOR_S, _launch_cpu_spike),
    Scenario(
        "runaway-tree", "runaway_tree", "critical", "lnx-runaway",
        f"an idle parent with {runaway_children()} children (one per CPU) each busy "
        f"{RUNAWAY_DUTY:.0%} of a CPU, for {RUNAWAY_FOR_S:.0f}s",
        f"about 77s in: a tree that started nothing new for a minute, above {80 * ncpu()}% "
        "CPU on average over it, for 15s",
        RUNAWAY_FOR_S, _launch_runaway_tree),
    Scenario(
        "memory-leak", "memory_leak", "warning", "lnx-leak",
        f"one process's resident memory grows {leak_rate_mb_s():.1f} MiB a second for "
        f"{LEAK_FOR_S:.0f}s ({default_leak_cap_mb()} MiB in all on this host)",
        "about 2m in: more than 0.5% of the host's memory growth per 30s, for 90s",
        LEAK_FOR_S, _launch_memory_leak),
    Scenario(
        "short-jobs", "short_jobs", "warning", "lnx-jobs",
        f"a parent starts {JOBS_RATE:.0f} children a second that exit at once, "
        f"for {JOBS_FOR_S:.0f}s",
        "about 61s in: more than 20 children a second living under 1s, for a minute",
        JOBS_FOR_S, _launch_short_jobs),
    Scenario(
        "fd-exhaustion", "fd_exhaustion", "warning", "lnx-fdhog",
        f"a process lowers its open-files limit to {FD_LIMIT} and holds {FD_FILL:.0%} of it "
        f"for {FD_FOR_S:.0f}s",
        "about 11s in: over 90% of the descriptor limit (at least 64) for 10s",
        FD_FOR_S, _launch_fd_exhaustion),
    Scenario(
        "circuit-breaker", "circuit_breaker", "critical", "lnx-stall",
        f"{stall_spinners()} detached spinners (2 per CPU + 1), siblings under init, "
        f"for {STALL_FOR_S:.0f}s",
        "about 72s in: host CPU above 95% with CPU pressure above 50%, for a minute",
        STALL_FOR_S, _launch_circuit_breaker, fixed_s=_stall_ramp_s()),
)}

# Scenarios that may run at the same time (one CPU, memory, short jobs, descriptors: none
# disturbs another's rule); the others fill the CPUs or the process table and run alone.
GROUPS: tuple[tuple[str, ...], ...] = (
    ("fork-storm",),
    ("cpu-spike", "memory-leak", "short-jobs", "fd-exhaustion"),
    ("runaway-tree",),
    ("circuit-breaker",),
)
