"""Which processes' windows move at a tick, kept apart per window key.

A windowed value changes when a new value is observed, and again when an old
one leaves the window: a wake-up is scheduled for that moment.  An average
moves continuously, so a process whose averaged window still moves stays
"hot" for that window's key until its buffer has settled.  A window too young
to have a value (None until observed for its shortest length) does not move
until it comes of age or is observed again: its process is "young" for that
key meanwhile, in a heap by the time it comes of age, so that a tick looks
only at those that do.

Everything is kept per window key (:func:`.windows.window_key`), so that a
rule judges only the processes whose own windows moved: a process hot for one
rule's average is not judged by a rule reading other windows at every tick.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from ..names import WINDOW_FUNCTIONS
from ..plan import CompiledRule, Plan
from .proctable import Proc
from .rulestate import EPS
from .windows import StepBuffer, window_key

__all__ = ["Moving", "rule_window_keys", "window_uses"]

_Young = tuple[StepBuffer, float]  # a young window, and the length at which it has a value


class Moving:
    """Per window key: the processes due at this tick, hot, young; the wake-ups."""

    def __init__(self, plan: Plan) -> None:
        self.due: dict[str, set[Proc]] = {}  # observed changed, or woken, at this tick
        self.hot: dict[str, set[Proc]] = {}  # an average of theirs moves with time alone
        self.young: dict[str, dict[Proc, _Young]] = {}
        # (when it comes of age, seq, process, key, its entry): stale once the entry is no
        # longer the process's in _aged; it takes the process out of young if still there
        self.ages: list[tuple[float, int, Proc, str, _Young]] = []
        # per key, each process's entry in the heap: one while it is young or goes back
        # and forth between young and hot (its age does not change with observations)
        self._aged: dict[str, dict[Proc, _Young]] = {}
        # (when, seq, process, key, observed at, window length): when the value observed
        # leaves a window of that length, or the window first has a value
        self.wakes: list[tuple[float, int, Proc, str, float, float]] = []
        self._seq = 0
        self.replan(plan)

    def replan(self, plan: Plan) -> None:
        """Take the new plan's windows; young processes are judged afresh (hot again)."""
        self.spans, self.averaged = window_uses(plan)
        self.shortest = {key: spans[0] for key, spans in self.spans.items() if spans}
        for key, young in self.young.items():
            self.hot.setdefault(key, set()).update(young)
        self.young.clear()
        self.ages.clear()
        self._aged.clear()

    def busy(self) -> bool:
        """Whether anything is due, hot or young (the next tick has work)."""
        return any(self.due.values()) or any(self.hot.values()) or any(self.young.values())

    def observed(self, key: str, changed: Iterable[Proc], now: float) -> None:
        """Processes whose window ``key`` took a new value at ``now``."""
        due = self.due.setdefault(key, set())
        hot = self.hot.setdefault(key, set()) if key in self.averaged else None
        spans = self.spans.get(key, ())
        wakes, push = self.wakes, heapq.heappush
        for p in changed:
            due.add(p)
            if hot is not None:
                hot.add(p)
            for span in spans:
                self._seq += 1
                push(wakes, (now + span, self._seq, p, key, now, span))

    def wake(self, now: float) -> None:
        """Windows that move at ``now`` because an old value left them."""
        wakes, due = self.wakes, self.due
        later = []
        while wakes and wakes[0][0] <= now + EPS:
            wake = heapq.heappop(wakes)
            p, key, observed, span = wake[2], wake[3], wake[4], wake[5]
            if p.alive:
                due.setdefault(key, set()).add(p)
                if observed > now - span:  # as a window tests it: not yet (float rounding)
                    later.append(wake)
        for wake in later:  # judged again at the next tick, when it has left
            heapq.heappush(wakes, wake)

    def of_age(self, now: float, gone: set[Proc]) -> None:
        """Young processes observed again, or whose window has a value at ``now`` (the
        first tick at which it has), are hot again; those in ``gone`` exited."""
        for key, young in self.young.items():
            if not young:
                continue
            # a view's intersection walks the smaller side: the few processes observed
            # or exited at this tick, not every young one (a daemon's first minute)
            if gone:
                for p in young.keys() & gone:
                    del young[p]
            due = self.due.get(key)
            if due:
                hot = self.hot.setdefault(key, set())
                for p in young.keys() & due:
                    del young[p]
                    hot.add(p)
        ages = self.ages
        # a bound that the float arithmetic of first + w cannot miss; the exact test
        # (as a window reads it) decides, and one not yet of age waits in the heap
        bound = now + 1e-9 * max(1.0, abs(now))
        later = []
        while ages and ages[0][0] <= bound:
            entry = heapq.heappop(ages)
            p, key, window = entry[2], entry[3], entry[4]
            aged = self._aged.get(key)
            if aged is None or aged.get(p) is not window:
                continue  # replaced by a newer entry
            buf, w = window
            if p.alive and buf.first > now - w:
                later.append(entry)  # not yet of age (the bound is a little generous)
                continue
            del aged[p]
            held = self.young.get(key)
            if held is not None and held.get(p) is window:  # not hot again, nor exited
                del held[p]
                if p.alive:
                    self.hot.setdefault(key, set()).add(p)
        for entry in later:
            heapq.heappush(ages, entry)

    def moved(self, keys: tuple[str, ...]) -> list[set[Proc]]:
        """The non-empty sets of processes whose windows ``keys`` may have moved."""
        out = []
        for key in keys:
            due = self.due.get(key)
            if due:
                out.append(due)
            hot = self.hot.get(key)
            if hot:
                out.append(hot)
        return out

    def cool(self, now: float) -> None:
        """Keep hot, per key, the processes whose window of that key still moves."""
        for key, hot in self.hot.items():
            if hot:
                self.hot[key] = self._cool(key, hot, now)
        for due in self.due.values():
            due.clear()

    def _cool(self, key: str, hot: set[Proc], now: float) -> set[Proc]:
        kept: set[Proc] = set()
        w = self.shortest.get(key)
        young = self.young.setdefault(key, {})
        aged = self._aged.setdefault(key, {})
        for p in hot:
            buf = p.win.get(key) if p.alive and p.win is not None else None
            if buf is None or buf.settled(now):
                continue
            if w is None or not buf.first > now - w:
                kept.add(p)  # its value may move with time alone
            else:  # it reads None at now
                entry = aged.get(p)
                if entry is None or entry[0] is not buf or entry[1] != w:
                    entry = aged[p] = (buf, w)
                    self._seq += 1
                    heapq.heappush(self.ages, (buf.first + w, self._seq, p, key, entry))
                young[p] = entry
        return kept


def window_uses(plan: Plan) -> tuple[dict[str, tuple[float, ...]], set[str]]:
    """Per window key (:func:`.windows.window_key`), its lengths; and the keys averaged."""
    spans: dict[str, set[float]] = {}
    averaged: set[str] = set()
    for rule in plan.ticked:
        k = plan.boundary_index(rule)
        for func, metric, key in _reads(rule, k):
            spans.setdefault(key, set()).update(w for m, w in rule.windows if m == metric)
            if func == "avg":
                averaged.add(key)
    return {m: tuple(sorted(ws)) for m, ws in spans.items()}, averaged


def rule_window_keys(rule: CompiledRule, bounded: int | None) -> tuple[str, ...]:
    """The window keys a rule reads, for a rule whose walls are ``bounded``."""
    return tuple(sorted({key for _, _, key in _reads(rule, bounded)}))


def _reads(rule: CompiledRule, bounded: int | None) -> Iterable[tuple[str, str, str]]:
    """(window function, metric, key) of each window the rule reads."""
    for func, _, rest in (name.partition("(") for name in rule.inputs if "(" in name):
        if func in WINDOW_FUNCTIONS:
            metric = rest.split(",")[0].strip()
            yield func, metric, window_key(metric, bounded)
