"""Counting processes and events: ``count(EXPR)`` and ``execs/exits/crashes(FIELD, W)``.

:class:`Tally` is what generated code reads as ``h.tally``:

* ``count(EXPR)``: for each term of the plan, the set of live processes for
  which EXPR holds.  :meth:`Tally.refresh` runs at the start of each tick and
  judges again only the processes whose inputs changed (the table's change
  sets, by the groups EXPR reads), drops those that exited, and rescans every
  live process only for a term that reads ``parent.*``, ``ancestors`` or a
  value that moves with time.  So a tick at which nothing changed costs
  nothing per process, and the count never changes between events (the idle
  skipping of :mod:`.idle` stays valid) unless EXPR moves with time.
* the event counters: per (kind, field) a :class:`KeyedCounter` of event
  times by the FIELD value of the process, recorded by the table's exec and
  exit handlers (wrapped by :meth:`Tally.install`, only while the plan has a
  counter) as each event is applied, so whatever is evaluated after the event
  (a tick, or an event rule at the event itself) counts it.  A crash is an
  exit by a core-dump signal.

The key tables are bounded: at most :data:`MAX_KEYS` values per table and
:data:`MAX_ENTRIES` event times in all; beyond them the value seen least
recently is evicted first (counted in :attr:`KeyedCounter.evictions`), so a
process choosing new names at will cannot grow memory.
"""

from __future__ import annotations

import bisect
import functools
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from ..names import METRICS, Scope
from ..plan import CountTerm, Plan
from . import trace as t
from .proctable import Proc, ProcTable
from .rulestate import change_groups

__all__ = ["MAX_ENTRIES", "MAX_KEYS", "KeyedCounter", "Tally"]

MAX_KEYS = 4096  # distinct FIELD values per counter
MAX_ENTRIES = 65536  # event times per counter, all values together


class KeyedCounter:
    """Event times by key, for the trailing ``span`` seconds, bounded."""

    __slots__ = ("entries", "evictions", "keys", "max_entries", "max_keys", "span")

    def __init__(self, span: float, max_keys: int = MAX_KEYS,
                 max_entries: int = MAX_ENTRIES) -> None:
        self.span = span
        self.max_keys = max_keys
        self.max_entries = max_entries
        # key -> its event times, ascending; the key seen least recently first
        self.keys: OrderedDict[object, list[float]] = OrderedDict()
        self.entries = 0
        self.evictions = 0  # keys (or, for one key alone, event times) dropped to stay bounded

    def add(self, key: object, ts: float) -> None:
        times = self.keys.get(key)
        if times is None:
            times = self.keys[key] = []
        else:
            self.keys.move_to_end(key)
        times.append(ts)
        self.entries += 1
        if len(self.keys) > self.max_keys or self.entries > self.max_entries:
            self._bound(times)

    def _bound(self, newest: list[float]) -> None:
        keys = self.keys
        while len(keys) > self.max_keys or self.entries > self.max_entries:
            oldest = next(iter(keys.values()))
            if oldest is newest:  # one key holds them all: forget its oldest times
                excess = self.entries - self.max_entries
                del newest[:excess]
                self.entries -= excess
                self.evictions += excess
                return
            keys.popitem(last=False)
            self.entries -= len(oldest)
            self.evictions += 1

    def count(self, key: object, window: float, now: float) -> int:
        """Events of ``key`` in the trailing ``window``: at times in (now - window, now]."""
        times = self.keys.get(key)
        if not times:
            return 0
        return bisect.bisect_right(times, now) - bisect.bisect_right(times, now - window)

    def expire(self, now: float) -> None:
        """Forget the keys whose every event is older than the longest window."""
        horizon = now - self.span
        keys = self.keys
        while keys:
            times = next(iter(keys.values()))
            if times and times[-1] > horizon:
                return
            keys.popitem(last=False)
            self.entries -= len(times)

    def __len__(self) -> int:
        return len(self.keys)


class Tally:
    """The counts and event counters of one engine, for one plan at a time."""

    def __init__(self, plan: Plan) -> None:
        self.terms: tuple[CountTerm, ...] = ()
        self.counted: dict[str, set[Proc]] = {}
        self.counters: dict[tuple[str, str], KeyedCounter] = {}
        self._fresh: set[str] = set()  # terms not judged on every live process yet
        self._every_tick: dict[str, bool] = {}
        self.moving = False  # some term moves with time: no tick is quiet
        self.errors = 0  # count conditions that raised (the process is left out)
        self.judged = 0  # count conditions evaluated, ever (what a tick costs)
        self.evicted = 0  # evictions of counters no longer in the plan
        self.table: ProcTable | None = None
        self._plain: tuple[Any, Any] = (None, None)  # the table's own exec, exit handlers
        self._hooked = False  # whether the table's handlers are wrapped to count
        self._seen: object = None  # the event counted last (counted once, whoever asks first)
        self.replace(plan)

    # ---- the plan ----------------------------------------------------------------
    def replace(self, plan: Plan) -> None:
        """Take up a new plan's terms and counters; unchanged ones keep what they hold."""
        self.terms = plan.counts
        self.counted = {c.text: self.counted.get(c.text, set()) for c in plan.counts}
        self._fresh = {c.text for c in plan.counts} - set(self._every_tick)
        self._every_tick = {c.text: _every_tick(c.inputs) for c in plan.counts}
        self.moving = any(_moves(c.inputs) for c in plan.counts)
        counters: dict[tuple[str, str], KeyedCounter] = {}
        for spec in plan.event_counters:
            old = self.counters.pop((spec.kind, spec.field), None)
            if old is None:
                old = KeyedCounter(spec.span_s)
            old.span = spec.span_s
            counters[spec.kind, spec.field] = old
        self.evicted += sum(c.evictions for c in self.counters.values())
        self.counters = counters
        self._hook()

    @property
    def evictions(self) -> int:
        """Keys (and event times) dropped to keep the counters bounded, ever."""
        return self.evicted + sum(c.evictions for c in self.counters.values())

    # ---- what generated code reads -----------------------------------------------
    def count(self, text: str) -> int:
        found = self.counted.get(text)
        return 0 if found is None else len(found)

    def events(self, kind: str, field: str, value: object, window: float,
               now: float) -> int | None:
        if value is None:  # the instance's FIELD is not known: neither is the count
            return None
        counter = self.counters.get((kind, field))
        return None if counter is None else counter.count(value, window, now)

    # ---- events ------------------------------------------------------------------
    def install(self, table: ProcTable) -> None:
        """Be ``table.host.tally``, counting its exec and exit events as they are applied
        while the plan has event counters."""
        if self.table is not table:
            self.table = table
            table.host.tally = self
            self._plain = (table.handlers[t.Exec], table.handlers[t.Exit])
            self._hooked = False
        self._hook()

    def _hook(self) -> None:
        """Wrap the table's exec and exit handlers while some counter reads them, and only
        then: a plan with none pays nothing per event (a reload may add or drop them)."""
        table = self.table
        if table is None or bool(self.counters) == self._hooked:
            return
        on_exec, on_exit = self._plain
        if not self.counters:
            table.handlers[t.Exec], table.handlers[t.Exit] = on_exec, on_exit
            self._hooked = False
            return
        procs = table.procs

        def exec_then_count(ev: t.Exec) -> None:
            on_exec(ev)
            self.observe(ev, procs.get(ev.pid))

        def count_then_exit(ev: t.Exit) -> None:
            self.observe(ev, procs.get(ev.pid))  # its fields as last known, before it goes
            on_exit(ev)

        table.handlers[t.Exec] = exec_then_count
        table.handlers[t.Exit] = count_then_exit
        self._hooked = True

    def observe(self, ev: t.Exec | t.Exit, p: Proc | None) -> None:
        """Count one exec (``p`` after it) or exit (``p`` before it) of the table, once.

        The table's handlers call it as they apply the event, so whatever is
        evaluated after that (a tick, an event rule at the event) counts it;
        code evaluating at an exit before the table forgets the process may call
        it first: the handler then does not count the same event again.
        """
        if ev is self._seen or not self.counters or p is None:
            return
        self._seen = ev
        if isinstance(ev, t.Exec):
            self._record("execs", p, ev.ts)
            return
        self._record("exits", p, ev.ts)
        if ev.crashed():  # linnix.signals says which signals are crashes
            self._record("crashes", p, ev.ts)

    def _record(self, kind: str, p: Proc, ts: float) -> None:
        for (k, field), counter in self.counters.items():
            if k == kind:
                value = getattr(p, field)
                if value is not None:
                    counter.add(value, ts)

    # ---- ticks -------------------------------------------------------------------
    def refresh(self, table: ProcTable, now: float) -> None:
        """Bring every count up to date for the tick at ``now`` (before rules are judged)."""
        for counter in self.counters.values():
            counter.expire(now)
        if not self.terms:
            return
        host, gone = table.host, table.exited
        for term in self.terms:
            found = self.counted[term.text]
            if gone:
                found.difference_update(gone)
            if term.text in self._fresh or self._every_tick[term.text]:
                candidates: Iterable[Proc] = list(table.live())
            else:
                candidates = table.changed(_groups(term.inputs))
            self._judge(term, found, candidates, host, now)
        self._fresh.clear()

    def _judge(self, term: CountTerm, found: set[Proc], candidates: Iterable[Proc],
               host: Any, now: float) -> None:
        cond = term.cond
        for p in candidates:
            self.judged += 1
            try:
                held = cond(p, host, now)
            except Exception:  # a bug in generated code: the process is not counted
                self.errors += 1
                held = False
            if held:
                found.add(p)
            else:
                found.discard(p)

    def busy(self) -> bool:
        """Whether a count or an event counter may move with time alone (no event)."""
        return self.moving or any(c.keys for c in self.counters.values())


def _every_tick(inputs: tuple[str, ...]) -> bool:
    """Whether a term must be judged on every live process at every tick: it reads another
    process (a parent's field changes with no change of this one) or a value moving with
    time."""
    return any(name.startswith("parent.") or name == "ancestors" for name in inputs) or \
        _moves(inputs)


def _moves(inputs: tuple[str, ...]) -> bool:
    return any(METRICS[name.removeprefix("parent.")].time_varying for name in inputs
               if name.removeprefix("parent.") in METRICS)


@functools.cache
def _groups(inputs: tuple[str, ...]) -> frozenset[str]:
    """The table's change sets whose members may have a new value of what a term reads."""
    groups = {"meta"}
    for name in inputs:
        metric = METRICS.get(name)
        if metric is not None and metric.scope is Scope.PROCESS:
            groups |= change_groups(name)
    return frozenset(groups)
