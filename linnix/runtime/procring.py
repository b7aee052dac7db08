"""Each live process's recent samples, for the dashboard's charts: one bounded ring each.

After the engine applies a round of samples, :meth:`ProcRing.record` reads every
live process's ``cpu_pct``, ``rss_mb`` and ``fds`` from the process table (on the
trio thread) and keeps the last ``WINDOW_S`` seconds of them at the sampling
interval: 900 rounds at one a second.

Kept compactly, because a host may run thousands of processes:

* one column of times, shared by every process (the rounds' Unix times);
* per process, only the rounds at which one of its values changed, each a point
  of four 32-bit integers in one array (the round's number, CPU in hundredths of
  a percent, RSS in KiB, descriptors; all bits set: not measured).  An idle
  process costs one point however long it lives; one whose values change at
  every round costs 900 (14 KiB).
* every process's points together are held to ``budget`` (``BUDGET_POINTS``:
  6.4 MB).  When a round passes it, the rings holding the most points are thinned,
  each to every other round of what it had (its values held in between: its
  resolution doubles), until the total is back under seven eighths of the
  budget; once the total is under a quarter of it, every ring records each round
  again.  :meth:`ProcRing.history` says a ring's coarsest spacing in its window
  (``resolution_s``).

A ring belongs to the table's record of one process: it goes at the first round
after the process exits, and a pid used again starts a fresh one.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

from ..engine.records import Proc

__all__ = ["ALL_MEASURED", "BUDGET_POINTS", "COLUMNS", "NONE", "WINDOW_S", "ProcRing"]

WINDOW_S = 15 * 60.0  # what a process page's charts show
COLUMNS = ("cpu_pct", "rss_mb", "fds")  # after the time, in this order
BUDGET_POINTS = 400_000  # every ring's points together: 6.4 MB at 16 bytes a point
NONE = 0xFFFFFFFF  # a value not measured
_TOP = NONE - 1  # a larger value is kept as this (42,949,672.94 %, 4 TiB, 4,294,967,294 fds)
_TRIM = 32  # points out of the window that a ring drops at once (not at each round)
_FOREVER = 1 << 62  # a round never reached
_UNSEEN = object()  # a ring compares its process's values at its next round
ALL_MEASURED = (True, True, True)


def _code(value: float | None, scale: float) -> int:
    """``value * scale`` as an integer to keep; NONE when not measured (or not a number)."""
    if value is None:
        return NONE
    v = value * scale + 0.5  # to the nearest: the sampler's 97.8 % is kept as 9780
    if 0.5 <= v < _TOP:
        return int(v)
    if v >= _TOP:
        return _TOP
    return 0 if v < 0.5 else NONE  # NaN fails every comparison


def _value(code: int, scale: float) -> float | None:
    return None if code == NONE else code / scale


class _Ring:
    """One process's points: ``data`` holds (round, cpu, rss, fds) four integers each."""

    __slots__ = ("coarse", "coarse_to", "data", "proc", "seen", "step")

    def __init__(self, proc: Proc, first: int, point: tuple[int, int, int]) -> None:
        self.proc = proc  # the table's record: a new process (even with this pid) is another
        self.seen: object = proc.last_sample  # what the table last applied, when recorded
        self.data = array("I", (first, *point))
        self.step = 1  # records at the rounds that are multiples of it
        self.coarse = 1  # the coarsest step of its points before round coarse_to
        self.coarse_to = 0


def _length(ring: _Ring) -> int:
    return len(ring.data)


def _resampled(data: array[int], step: int, lo: int, last: int) -> array[int]:
    """The points of ``data`` from round ``lo`` on, at the rounds that are multiples of
    ``step`` (and the point in force at ``lo``), each with the value held then."""
    rounds = data[0::4]
    i = max(0, bisect_right(rounds, lo) - 1)
    out = array("I", data[4 * i:4 * i + 4])
    cur = kept = tuple(out[1:])
    grid = (max(rounds[i], lo) // step + 1) * step  # the next round to keep
    for j in range(i + 1, len(rounds)):
        r = rounds[j]
        if grid < r:  # the rounds from grid up to r held cur
            if cur != kept:
                out.extend((grid, *cur))
                kept = cur
            grid = (r + step - 1) // step * step
        cur = tuple(data[4 * j + 1:4 * j + 4])
    if grid <= last and cur != kept:
        out.extend((grid, *cur))
    return out


class ProcRing:
    """The samples of every live process over the last ``window_s`` seconds."""

    def __init__(self, interval: float, window_s: float = WINDOW_S,
                 budget: int = BUDGET_POINTS) -> None:
        self.interval = interval
        self.size = max(1, math.ceil(window_s / max(interval, 0.001)))  # rounds kept
        self.budget = budget
        self.times = array("d", [math.nan]) * self.size  # round r at r % size
        self.rounds = 0  # recorded so far; the next one's number
        self.rings: dict[int, _Ring] = {}  # by pid
        self.points = 0  # in every ring together
        self.measured = ALL_MEASURED  # which of cpu, rss and fds the sampler measures
        self.thinned = False  # some ring records less often than each round

    # ---- recording (each round, on the trio thread) -----------------------------------
    def record(self, wall: float, procs: Mapping[int, Proc],
               measured: tuple[bool, bool, bool] = ALL_MEASURED) -> None:
        """One round, sampled at Unix time ``wall``: the values of every process in
        ``procs`` (the process table's), those of ``measured`` columns (cpu, rss, fds)
        only; a ring whose process is no longer there is freed."""
        n = self.rounds
        self.times[n % self.size] = wall
        force = measured != self.measured  # the same values now mean something else
        self.measured = measured
        old, new = self.rings, {}
        points = self.points
        for pid, p in procs.items():
            ring = old.pop(pid, None)
            if ring is None or ring.proc is not p:
                if ring is not None:  # its pid is another process's now
                    points -= len(ring.data) >> 2
                ring = _Ring(p, n, self._point(p))
                points += 1
            else:
                if force:
                    ring.seen = _UNSEEN
                # the table replaces last_sample whenever a sample changes a value: one
                # that is still the one seen changed nothing (the usual case on a quiet host)
                if p.last_sample is not ring.seen and n % ring.step == 0:
                    points += self._add(ring, p, n)
            new[pid] = ring
        for ring in old.values():  # exited
            points -= len(ring.data) >> 2
        self.rings, self.points, self.rounds = new, points, n + 1
        if points > self.budget:
            self._thin(n)
        elif self.thinned and points < self.budget // 4:
            self._refine(n)

    def _point(self, p: Proc) -> tuple[int, int, int]:
        cpu, rss, fds = self.measured
        return (_code(p.cpu_pct, 100.0) if cpu else NONE,
                _code(p.rss_mb, 1024.0) if rss else NONE,
                _code(p.fds, 1.0) if fds else NONE)

    def _add(self, ring: _Ring, p: Proc, n: int) -> int:
        """Keep ``p``'s values at round ``n`` if one changed; the points it adds."""
        ring.seen = p.last_sample
        cpu, rss, fds = self._point(p)
        data = ring.data
        if data[-3] == cpu and data[-2] == rss and data[-1] == fds:
            return 0
        data.extend((n, cpu, rss, fds))
        if len(data) > 4 * _TRIM and data[4 * _TRIM] <= n - self.size + 1:
            del data[:4 * _TRIM]  # before the point in force at the window's start
            return 1 - _TRIM
        return 1

    def _thin(self, n: int) -> None:
        """Halve the resolution of the rings holding the most points, until every
        ring's points together are under seven eighths of the budget."""
        low = self.budget - self.budget // 8
        lo = max(0, n - self.size + 1)
        for ring in sorted(self.rings.values(), key=_length, reverse=True):
            if self.points <= low:
                break
            if ring.step >= self.size:
                continue  # one point a window already
            before = len(ring.data)
            ring.step *= 2
            ring.data = _resampled(ring.data, ring.step, lo, n)
            ring.seen = _UNSEEN
            ring.coarse = max(ring.coarse, ring.step) if ring.coarse_to > lo else ring.step
            ring.coarse_to = _FOREVER
            self.points += (len(ring.data) - before) >> 2
        self.thinned = True

    def _refine(self, n: int) -> None:
        """Every ring records each round again (what it kept stays as coarse as it is)."""
        for ring in self.rings.values():
            if ring.step > 1:
                ring.step, ring.coarse_to = 1, n + 1
        self.thinned = False

    # ---- reading ------------------------------------------------------------------------
    def history(self, p: Proc) -> dict[str, Any]:
        """``p``'s columns: ``t`` (Unix seconds), one list per name of :data:`COLUMNS`
        (a value not measured as None), one point a round, a value held from the
        round it was kept to the next; and ``resolution_s``, the longest a value is
        held in them for want of points (the sample interval, or more in a ring that
        was thinned).  Empty before the first round that saw ``p``."""
        out: dict[str, Any] = {"t": [], **{name: [] for name in COLUMNS},
                               "resolution_s": self.interval}
        ring = self.rings.get(p.pid)
        if ring is None or ring.proc is not p:
            return out
        data, last = ring.data, self.rounds - 1
        lo = max(last - self.size + 1, data[0])
        rounds = data[0::4]
        i = bisect_right(rounds, lo) - 1  # the point in force at lo
        t, cpu, rss, fds = out["t"], out["cpu_pct"], out["rss_mb"], out["fds"]
        times, size = self.times, self.size
        values = self._decoded(data, i)
        until = rounds[i + 1] if i + 1 < len(rounds) else last + 1
        for r in range(lo, last + 1):
            if r >= until:
                i += 1
                values = self._decoded(data, i)
                until = rounds[i + 1] if i + 1 < len(rounds) else last + 1
            t.append(times[r % size])
            cpu.append(values[0])
            rss.append(values[1])
            fds.append(values[2])
        if lo < ring.coarse_to:
            out["resolution_s"] = self.interval * ring.coarse
        return out

    @staticmethod
    def _decoded(data: array[int], i: int) -> tuple[float | None, float | None, int | None]:
        fds = data[4 * i + 3]
        return (_value(data[4 * i + 1], 100.0), _value(data[4 * i + 2], 1024.0),
                None if fds == NONE else fds)
