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

Event rules (``on exec|exit|fork``, :mod:`linnix.engine.events`) are judged
in :meth:`Core.feed` at each event they wait for, at its own time, and never
at ticks; what they produce comes out in order with what the ticks produce.

Between events, ticks at which nothing can change are skipped
(:mod:`linnix.engine.idle`): a gap of 10^7 s costs what its few wake-ups
cost, not twenty million ticks.  Skipped ticks count in :attr:`Core.ticks`
as if they had run (they would have produced nothing), so the results, the
tick count included, are those of running every tick;
``skip_idle=False`` runs every tick.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

from ..names import METRICS
from ..plan import Plan, needs_network
from . import trace as t
from .evaluator import Alert, Evaluator, Proposal
from .events import EventRules
from .idle import Grid, Proofs, next_busy_tick
from .proctable import ProcTable

__all__ = ["DEFAULT_TICK_S", "Core", "Output"]

DEFAULT_TICK_S = 0.5
SKIP_MIN_TICKS = 4  # a shorter run of ticks is run, not examined for quiet
SKIP_BACKOFF_MAX = 32  # after a look found nothing to skip, at most this many ticks to the next
Output = Alert | Proposal


class Core:
    """Process table + evaluator + tick schedule."""

    def __init__(self, plan: Plan, tick_s: float = DEFAULT_TICK_S,
                 history: bool = False, skip_idle: bool = True,
                 recent_network: bool = False, trails: bool = False) -> None:
        if not (tick_s > 0 and math.isfinite(tick_s)):
            raise ValueError("tick must be positive")
        self.plan = plan
        self.tick_s = tick_s
        self.skip_idle = skip_idle
        self._errors = 0  # rule errors counted so far: a tick that adds some is not quiet
        self._wait = 0  # ticks to run before looking for quiet again
        self._backoff = 1  # ... after the next look that finds none (doubling)
        self.table = _table_for(plan)
        # each process's last network events, for the API: kept (by the daemon) only
        # while the plan has network events captured
        self.recent_network = recent_network
        self.table.net.keep_recent(recent_network and needs_network(plan))
        self.evaluator = Evaluator(plan, history, trails)  # trails: the live daemon's
        self.evaluator.tally.install(self.table)  # counts every exec and exit from the first
        self.events = EventRules(plan)  # judged at their events, not at ticks
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.next_tick = math.inf
        self._k = 0
        self.ticks = 0
        self.output: list[Output] = []
        self.alert_counts: Counter[tuple[str, str]] = Counter()
        self.proposal_count = 0
        # called with each tick's time once it has run (``replay --why`` looks at a
        # rule's state there); None, the rule, costs one test per tick
        self.after_tick: Callable[[float], None] | None = None

    # ---- input ---------------------------------------------------------------------
    def header(self, header: t.Header) -> None:
        self.table.header(header)

    def start(self, ts: float) -> None:
        """Fix the tick schedule's origin (the first event's ts, or the daemon's start)."""
        if self.first_ts is None:
            if not math.isfinite(ts):
                raise ValueError(f"time must be finite, not {ts!r}")
            self.first_ts = ts
            self.next_tick = ts
            self.table.expiry = Grid(ts, self.tick_s).expiry  # fork counts, by tick

    def feed(self, events: list[t.Event]) -> None:
        """Apply events in order, running each tick that falls before one."""
        if not events:
            return
        if self.first_ts is None:
            self.start(events[0].ts)
        table = self.table
        handlers = table.handlers
        next_tick = self.next_tick
        if self.events.by_kind:
            self._feed_judged(events)
        else:
            for ev in events:
                if ev.ts > next_tick:
                    self._ticks_before(ev.ts)
                    next_tick = self.next_tick
                handlers[type(ev)](ev)
        table.fold()  # exact subtree totals for whoever reads the table between ticks
        table.events += len(events)
        self.last_ts = events[-1].ts

    def _feed_judged(self, events: list[t.Event]) -> None:
        """:meth:`feed`'s loop when event rules wait for some events: each is judged at
        its event, and what it produces comes out between the ticks around it."""
        table = self.table
        handlers, appliers = table.handlers, self.events.appliers(table)  # by kind
        out: list[Output] = []
        next_tick = self.next_tick  # only ticks move it, as in feed()
        for ev in events:
            if ev.ts > next_tick:
                self._ticks_before(ev.ts)
                next_tick = self.next_tick
            apply = appliers.get(type(ev))
            if apply is None:  # no rule waits for it: applied as feed() does
                handlers[type(ev)](ev)
                continue
            apply(ev, out)
            if out:  # each alert followed by its proposals
                for item in out:
                    if isinstance(item, Alert):
                        self.alert_counts[(item.rule, item.state)] += 1
                    else:
                        self.proposal_count += 1
                self.output.extend(out)
                out = []

    def finish(self) -> None:
        """Run the ticks up to (and at) the last event (the end of a trace)."""
        if self.last_ts is not None:
            self.run_until(self.last_ts)

    # ---- ticks ----------------------------------------------------------------------
    def _ticks_before(self, ts: float) -> None:
        if not math.isfinite(ts):
            raise ValueError(f"time must be finite, not {ts!r}")
        self._run_ticks(ts, False)

    def run_until(self, now: float) -> None:
        """Run every tick scheduled at or before ``now``."""
        if not math.isfinite(now):
            raise ValueError(f"time must be finite, not {now!r}")
        self._run_ticks(now, True)

    def _run_ticks(self, limit: float, inclusive: bool) -> None:
        """The ticks before ``limit`` (or at it, when ``inclusive``), quiet ones skipped."""
        if not self.next_tick <= limit:
            return
        if not self.skip_idle:
            while self.next_tick < limit or (inclusive and self.next_tick == limit):
                self._tick()
            return
        assert self.first_ts is not None
        grid = Grid(self.first_ts, self.tick_s)
        k_to = grid.index(limit, inclusive=inclusive)  # the first tick this run leaves
        proofs: Proofs = {}  # one run of ticks: no event comes between them
        while self._k < k_to:
            self._tick()
            self._skip(grid, k_to, proofs)

    def _skip(self, grid: Grid, k_to: int, proofs: Proofs) -> None:
        """Count as run the coming ticks (before ``k_to``) at which nothing can change."""
        errors = sum(s.errors for s in self.evaluator.rules)
        erred, self._errors = errors != self._errors, errors
        if erred or k_to - self._k < SKIP_MIN_TICKS:
            return  # a condition that raised raises at every tick, and each one counts
        if self._wait:
            self._wait -= 1
            return
        k = next_busy_tick(self.evaluator, self.table, grid, self._k, k_to, proofs)
        if k > self._k:
            self.ticks += k - self._k
            self._k = k
            self.next_tick = grid.at(k)
            self._backoff = 1
        else:  # busy for a while, maybe: looking at every tick would cost more than the tick
            self._wait = self._backoff
            self._backoff = min(2 * self._backoff, SKIP_BACKOFF_MAX)

    def _tick(self) -> None:
        now = self.next_tick
        self.table.fold()
        alerts, proposals = self.evaluator.step(self.table, now)
        self.ticks += 1
        self._emit(alerts, proposals)
        self._k += 1
        assert self.first_ts is not None
        self.next_tick = self.first_ts + self._k * self.tick_s
        if self.after_tick is not None:
            self.after_tick(now)

    def _emit(self, alerts: list[Alert], proposals: list[Proposal]) -> None:
        for a in alerts:
            self.alert_counts[(a.rule, a.state)] += 1
        self.proposal_count += len(proposals)
        self.output.extend(alerts)
        self.output.extend(proposals)

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
        if "connects" in _added_up(plan):
            table.net.subtree = True
        table.net.keep_recent(self.recent_network and needs_network(plan))
        _set_boundaries(table, plan)
        now = self.last_ts if self.last_ts is not None else 0.0
        resolved = self.evaluator.replace_plan(plan, self.table, now)
        self.events = self.events.replace_plan(plan)
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
    table = ProcTable(subtree=plan.needs_subtree,
                      subtree_forks="forks" in _added_up(plan),
                      subtree_connects="connects" in _added_up(plan), sums=_sums(plan))
    _set_boundaries(table, plan)
    return table


def _set_boundaries(table: ProcTable, plan: Plan) -> None:
    """Keep the totals within the walls of the plan's boundaries, at the index at which
    its rules read them."""
    table.set_boundaries(tuple(b.text for b in plan.boundaries),
                         tuple(b.wall for b in plan.boundaries))
