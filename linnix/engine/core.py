"""The synchronous engine core: events in, ticks at the right times, results out.

:class:`Core` owns the process table and the evaluator.  It knows nothing of
files, sockets or trio; time is whatever the caller says it is:

* :meth:`Core.feed` applies events in order and runs every tick that falls
  before the next event, so that events with ``ts <= T`` are applied before
  the tick at ``T``; ticks fall at ``first_ts + k * tick``.
* :meth:`Core.run_until` runs the ticks due by a time: replay calls it through
  :meth:`Core.finish` at the end of a trace, the live engine from its timer
  (:mod:`linnix.runtime.live`), so that a tick runs even when no event comes.

The same sequence of events always produces the same results, however it is
split into batches.
"""

from __future__ import annotations

import math
from collections import Counter

from ..names import METRICS
from ..plan import Plan
from . import trace as t
from .evaluator import Alert, Evaluator, Proposal
from .proctable import ProcTable

__all__ = ["DEFAULT_TICK_S", "Core", "Output"]

DEFAULT_TICK_S = 0.5
Output = Alert | Proposal


class Core:
    """Process table + evaluator + tick schedule."""

    def __init__(self, plan: Plan, tick_s: float = DEFAULT_TICK_S,
                 history: bool = False) -> None:
        if not tick_s > 0:
            raise ValueError("tick must be positive")
        self.plan = plan
        self.tick_s = tick_s
        self.table = _table_for(plan)
        self.evaluator = Evaluator(plan, history)
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.next_tick = math.inf
        self._k = 0
        self.ticks = 0
        self.output: list[Output] = []
        self.alert_counts: Counter[tuple[str, str]] = Counter()
        self.proposal_count = 0

    # ---- input ---------------------------------------------------------------------
    def header(self, header: t.Header) -> None:
        self.table.header(header)

    def start(self, ts: float) -> None:
        """Fix the tick schedule's origin (the first event's ts, or the daemon's start)."""
        if self.first_ts is None:
            self.first_ts = ts
            self.next_tick = ts

    def feed(self, events: list[t.Event]) -> None:
        """Apply events in order, running each tick that falls before one."""
        if not events:
            return
        if self.first_ts is None:
            self.start(events[0].ts)
        table = self.table
        handlers = table.handlers
        next_tick = self.next_tick
        for ev in events:
            if ev.ts > next_tick:
                self._ticks_before(ev.ts)
                next_tick = self.next_tick
            handlers[type(ev)](ev)
        table.fold()  # exact subtree totals for whoever reads the table between ticks
        table.events += len(events)
        self.last_ts = events[-1].ts

    def finish(self) -> None:
        """Run the ticks up to (and at) the last event (the end of a trace)."""
        if self.last_ts is not None:
            self.run_until(self.last_ts)

    # ---- ticks ----------------------------------------------------------------------
    def _ticks_before(self, ts: float) -> None:
        while self.next_tick < ts:
            self._tick()

    def run_until(self, now: float) -> None:
        """Run every tick scheduled at or before ``now``."""
        while self.next_tick <= now:
            self._tick()

    def _tick(self) -> None:
        now = self.next_tick
        self.table.fold()
        alerts, proposals = self.evaluator.step(self.table, now)
        self.ticks += 1
        for a in alerts:
            self.alert_counts[(a.rule, a.state)] += 1
        self.proposal_count += len(proposals)
        self.output.extend(alerts)
        self.output.extend(proposals)
        self._k += 1
        assert self.first_ts is not None
        self.next_tick = self.first_ts + self._k * self.tick_s

    def drain(self) -> list[Output]:
        """Results produced since the last drain, in order."""
        out, self.output = self.output, []
        return out

    # ---- plan changes ----------------------------------------------------------------
    def replace_plan(self, plan: Plan) -> list[Alert]:
        """Swap the rules (reload); unchanged rules keep their instances' state."""
        sums = _sums(plan)
        table = self.table
        if plan.needs_subtree and not (table.subtree and sums <= _sums_of(table)):
            table.enable_subtree(sums | _sums_of(table))
        if "forks" in _added_up(plan):
            table.subtree_forks = True
        now = self.last_ts if self.last_ts is not None else 0.0
        resolved = self.evaluator.replace_plan(plan, self.table, now)
        self.plan = plan
        return resolved

    # ---- gaps in time (the live engine after a suspend or a paused VM) ---------------
    def skip_ticks(self, now: float) -> int:
        """Skip the ticks due by ``now`` without running them; how many were skipped.

        Running them would judge time nobody observed on what was known before
        it.  The schedule keeps its grid: the next tick is the first after ``now``.
        """
        if self.first_ts is None or self.next_tick > now:
            return 0
        k = max(self._k, math.floor((now - self.first_ts) / self.tick_s))
        while self.first_ts + k * self.tick_s <= now:  # floor() of a float may fall short
            k += 1
        skipped, self._k = k - self._k, k
        self.next_tick = self.first_ts + k * self.tick_s
        return skipped

    def restart_timers(self, now: float) -> None:
        """Every ``for`` and ``clear for`` under way starts again at ``now``."""
        self.evaluator.restart_timers(now)


_SUMS = frozenset({"cpu", "rss", "fds"})  # what ProcTable(sums=...) can add up


def _added_up(plan: Plan) -> frozenset[str]:
    """What the plan's subtree metrics add up along the tree (the registry says)."""
    metrics = (METRICS.get(name) for name in plan.metrics)
    return frozenset(m.adds_up for m in metrics if m is not None and m.adds_up is not None)


def _sums(plan: Plan) -> frozenset[str]:
    """Which per-process values the plan needs summed over subtrees."""
    return _added_up(plan) & _SUMS


def _sums_of(table: ProcTable) -> frozenset[str]:
    flags = {"cpu": table.sum_cpu, "rss": table.sum_rss, "fds": table.sum_fds}
    return frozenset(k for k, on in flags.items() if on)


def _table_for(plan: Plan) -> ProcTable:
    return ProcTable(subtree=plan.needs_subtree,
                     subtree_forks="forks" in _added_up(plan), sums=_sums(plan))
