"""Values over time: event rates, sums over a period, and windowed metrics.

A windowed metric is kept as a step function: an observation holds until the
next one, and only changes are stored.  A buffer keeps the observation in
effect at ``now - span`` and everything after it, so its length is bounded by
the number of changes within the longest window the plan asks for.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial, reduce
from itertools import islice
from operator import add

from ..names import METRICS, Scope

__all__ = ["RATE_WINDOW_S", "ExpiryCounts", "RateWindow", "StepBuffer", "SumWindow", "Windowed",
           "window_key", "window_metric"]

RATE_WINDOW_S = 1.0

# Floats added one after the other, from ``start`` on, as a loop would: the same
# additions in the same order.  Before 3.12 ``sum`` does exactly that, in C doubles,
# with no Python call per step (twice as fast as ``reduce`` on a minute's steps); from
# 3.12 it compensates rounding errors, and its result may differ in the last bit.
_added_up: Callable[[Iterable[float], float], float]
if sys.version_info < (3, 12):
    _added_up = sum
else:
    _added_up = partial(reduce, add)


def window_key(metric: str, bounded: int | None) -> str:
    """The name under which a window of ``metric`` is kept for a rule whose subtree
    totals are those within the walls of the plan's boundary ``bounded`` (None: none).

    Such a rule's windows of subtree metrics hold the values within its walls,
    apart from the plain windows of the same metrics: ``METRIC@K``.  Generated
    conditions name them so too (``linnix.language.codegen.window_key``).
    """
    if bounded is None or METRICS[metric].scope is not Scope.SUBTREE:
        return metric
    return f"{metric}@{bounded}"


def window_metric(key: str) -> str:
    """The metric a window holds (see :func:`window_key`)."""
    return key.partition("@")[0]


class RateWindow:
    """Timestamps of events in the trailing second; ``count(now)`` is the rate."""

    __slots__ = ("_q",)
    EMPTY: RateWindow  # shared, never added to: most processes never fork

    def __init__(self) -> None:
        self._q: deque[float] = deque()

    def add(self, ts: float) -> None:
        """Record an event; those that left the window meanwhile go, read or not.

        Events come in time order and are read at times no earlier than the
        last one added, so dropping here never changes a count; it bounds the
        window by the events of one second when no rule reads it.
        """
        q = self._q
        q.append(ts)
        edge = ts - RATE_WINDOW_S
        while q[0] <= edge:
            q.popleft()

    def count(self, now: float) -> int:
        """Events with ``now - 1s < ts <= now``."""
        q = self._q
        edge = now - RATE_WINDOW_S
        while q and q[0] <= edge:
            q.popleft()
        return len(q)

    def peek(self, now: float) -> int:
        """``count(now)`` that drops nothing: for a reader off the ticks' path (a scrape),
        whose ``now`` (no earlier than the last event, like a tick's) may be later than
        that of a tick still to run."""
        edge = now - RATE_WINDOW_S
        return sum(1 for ts in self._q if edge < ts <= now)

    def __len__(self) -> int:
        return len(self._q)

    def first(self) -> float | None:
        """The time of the oldest event held (None: none); it leaves at that + 1 s."""
        return self._q[0] if self._q else None


RateWindow.EMPTY = RateWindow()


class ExpiryCounts:
    """Counts that each leave at a known moment; ``count(now)`` is what has not left.

    A rate window whose events are grouped by the moment they leave it, so
    that many events cost one entry (see :mod:`linnix.engine.subtree`).
    Entries come in the order they leave.
    """

    __slots__ = ("_q", "_total")
    EMPTY: ExpiryCounts  # shared, never added to

    def __init__(self) -> None:
        self._q: deque[tuple[float, int]] = deque()
        self._total = 0

    def add(self, leaves: float, n: int) -> None:
        q = self._q
        if q and q[-1][0] >= leaves:
            if q[-1][0] == leaves:
                q[-1] = (leaves, q[-1][1] + n)
            else:  # out of order (never from the table): keep the order
                ordered = sorted([*q, (leaves, n)])
                q.clear()
                q.extend(ordered)
        else:
            q.append((leaves, n))
        self._total += n

    def count(self, now: float) -> int:
        q = self._q
        while q and q[0][0] <= now:
            self._total -= q.popleft()[1]
        return self._total


ExpiryCounts.EMPTY = ExpiryCounts()


class SumWindow:
    """A sum of counts over the trailing ``span`` seconds (e.g. lost events in 60 s)."""

    __slots__ = ("_q", "_sum", "span")

    def __init__(self, span: float) -> None:
        self.span = span
        self._q: deque[tuple[float, int]] = deque()
        self._sum = 0

    def add(self, ts: float, count: int) -> None:
        """Record a count; those that left the window meanwhile go (see RateWindow.add)."""
        q = self._q
        q.append((ts, count))
        self._sum += count
        edge = ts - self.span
        while q[0][0] <= edge:
            self._sum -= q.popleft()[1]

    def total(self, now: float) -> int:
        q = self._q
        edge = now - self.span
        while q and q[0][0] <= edge:
            self._sum -= q.popleft()[1]
        return self._sum

    def first(self) -> float | None:
        """The time of the oldest count held (None: none); it leaves at that + span."""
        return self._q[0][0] if self._q else None


class StepBuffer:
    """Changes of one metric of one instance, as (time, value) steps, in time order
    (observations come at the ticks' increasing times).

    Beside each step but the last, its area (value times how long it held) is
    kept, so that an average adds up areas computed once rather than once per
    tick (:meth:`avg`).
    """

    __slots__ = ("areas", "first", "span", "steps")

    def __init__(self, span: float, ts: float, value: float) -> None:
        self.span = span
        self.first = ts  # when the metric was first observed
        self.steps: deque[tuple[float, float]] = deque([(ts, value)])
        self.areas: deque[float] = deque()  # areas[k]: steps[k]'s, up to steps[k + 1]

    def push(self, ts: float, value: float) -> bool:
        """Record an observation; True when it changed the value."""
        steps = self.steps
        t0, v = steps[-1]
        if v == value:
            return False
        steps.append((ts, value))
        self.areas.append(v * (ts - t0))
        edge = ts - self.span
        while len(steps) > 1 and steps[1][0] <= edge:
            steps.popleft()
            self.areas.popleft()
        return True

    def settled(self, now: float) -> bool:
        """True when every window function is constant until the next change.

        That is when the latest step already covers the longest window (and
        the metric has been observed for that long).
        """
        edge = now - self.span
        return self.steps[-1][0] <= edge and self.first <= edge

    def _start(self, edge: float) -> int:
        """The index of the step in effect at ``edge`` (0 when none is older)."""
        steps = self.steps
        i, last = 0, len(steps) - 1
        while i < last and steps[i + 1][0] <= edge:
            i += 1
        return i

    def _since(self, now: float, window: float) -> list[tuple[float, float]] | None:
        """Steps in effect during [now - window, now], the first clipped to its start."""
        edge = now - window
        if self.first > edge:
            return None  # not observed for the whole window yet
        steps = self.steps
        i = self._start(edge)
        out = [(edge, steps[i][1])]
        out.extend(s for s in islice(steps, i + 1, None) if s[0] <= now)
        return out

    def at(self, when: float) -> float:
        """The value in effect at ``when`` (the oldest kept one if earlier).

        Steps are in time order (ticks observe at increasing times), so it is
        the latest one no later than ``when``: looked for from the end, where
        a tick's ``now`` finds it at once.
        """
        steps = self.steps
        for i in range(len(steps) - 1, 0, -1):
            if steps[i][0] <= when:
                return steps[i][1]
        return steps[0][1]

    def delta(self, now: float, window: float) -> float | None:
        edge = now - window
        if self.first > edge:
            return None  # not observed for the whole window yet
        return self.at(now) - self.steps[self._start(edge)][1]

    def avg(self, now: float, window: float) -> float | None:
        """The time-weighted mean over [now - window, now].

        The sum of each step's value times how long it held within the window,
        added from the oldest step on: the first area is clipped at the edge,
        the last runs to ``now``, those between are the kept ``areas`` (the
        same products), added in the same order by :data:`_added_up`: the result
        is the same to the last bit as a plain loop's, at a fraction of the cost.
        """
        edge = now - window
        if self.first > edge:
            return None  # not observed for the whole window yet
        steps = self.steps
        i = self._start(edge)
        v = steps[i][1]
        if window <= 0:
            return v
        last = len(steps) - 1
        t_last, v_last = steps[last]
        if t_last > now:  # read before the latest observation (never at a tick)
            return self._avg_until(now, window, i)
        if i == last:
            return (0.0 + v * (now - edge)) / window
        total = 0.0 + v * (steps[i + 1][0] - edge)
        total = _added_up(islice(self.areas, i + 1, last), total)
        return (total + v_last * (now - t_last)) / window

    def _avg_until(self, now: float, window: float, i: int) -> float:
        """:meth:`avg` one step at a time, leaving out the steps after ``now``."""
        steps = self.steps
        t0, v = now - window, steps[i][1]
        total = 0.0
        for t1, after in islice(steps, i + 1, None):
            if t1 <= now:
                total += v * (t1 - t0)
                t0, v = t1, after
        total += v * (now - t0)
        return total / window

    def min(self, now: float, window: float) -> float | None:
        span = self._since(now, window)
        return None if span is None else min(v for _, v in span)

    def max(self, now: float, window: float) -> float | None:
        span = self._since(now, window)
        return None if span is None else max(v for _, v in span)


class Windowed:
    """A record (process or host) whose metrics may be windowed.

    Generated conditions call ``win_delta(key, seconds, now)`` and friends (the
    key: see :func:`window_metric`); the evaluator feeds observations through
    :meth:`observe`.
    """

    __slots__ = ("win",)

    def __init__(self) -> None:
        self.win: dict[str, StepBuffer] | None = None

    def observe(self, metric: str, span: float, now: float, value: float) -> bool:
        """Record the metric's value at ``now``; True if the buffer changed."""
        if self.win is None:
            self.win = {}
        buf = self.win.get(metric)
        if buf is None:
            self.win[metric] = StepBuffer(span, now, value)
            return True
        return buf.push(now, value)

    def settled(self, now: float) -> bool:
        if self.win is not None:
            for buf in self.win.values():
                if not buf.settled(now):
                    return False
        return True

    def _buf(self, metric: str) -> StepBuffer | None:
        return None if self.win is None else self.win.get(metric)

    def win_delta(self, metric: str, window: float, now: float) -> float | None:
        win = self.win
        buf = None if win is None else win.get(metric)
        return None if buf is None else buf.delta(now, window)

    def win_rate(self, metric: str, window: float, now: float) -> float | None:
        buf = self._buf(metric)
        d = None if buf is None else buf.delta(now, window)
        return None if d is None else d / window

    def win_avg(self, metric: str, window: float, now: float) -> float | None:
        buf = self._buf(metric)
        return None if buf is None else buf.avg(now, window)

    def win_min(self, metric: str, window: float, now: float) -> float | None:
        buf = self._buf(metric)
        return None if buf is None else buf.min(now, window)

    def win_max(self, metric: str, window: float, now: float) -> float | None:
        buf = self._buf(metric)
        return None if buf is None else buf.max(now, window)
