"""``replay --analyze``: the built-in analysis of each incident a replay opens.

The daemon opens an incident when an instance fires, with a snapshot of the
process table at that tick, and its analyst reads it back from the store.  A
replay does the same, on the trace's clock: :meth:`ReplayAnalyst.attach` hooks
the core's ticks, so that each firing alert is seen while the table still
shows that moment; its incident goes into a store of its own (a temporary
directory, removed by :meth:`close`); once the tick's incidents are stored,
each new one is analysed as the ``analyze`` action would analyse it then
(:func:`linnix.analysis.analyze_stored`: earlier incidents of the rule, other
incidents of the window so far).  Only the first :data:`ANALYSES_MAX` incidents
are stored and analysed, so disk and memory stay bounded on any trace; the
rest are counted.  Nothing here changes what the replay outputs or proposes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ..actions.store import Store
from ..analysis import analyze_stored, text
from ..engine.core import Core, Output
from ..engine.evaluator import Alert
from ..engine.rulestate import InstanceKey
from ..plan import Plan
from .responder import describe_rule, incident_record
from .snapshot import SubtreeTotals

__all__ = ["ANALYSES_MAX", "ReplayAnalyst", "text_analyses"]

ANALYSES_MAX = 1000  # incidents stored and analysed in one replay

Key = InstanceKey


class ReplayAnalyst:
    """Incidents and their analyses, from the alerts of one replay."""

    def __init__(self, plan: Plan, limit: int = ANALYSES_MAX) -> None:
        self.plan = plan
        self.limit = limit
        self.now = 0.0  # the trace time of the alerts being stored: the store's clock
        self._dir = tempfile.mkdtemp(prefix="linnix-replay-")
        try:
            self.store = Store(f"{self._dir}/incidents.db", clock=lambda: self.now)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self.store.db.execute("PRAGMA synchronous = OFF")  # thrown away at the end
        self.analyses: dict[int, dict[str, Any]] = {}  # by incident id, in the order opened
        self.opened_at: dict[int, float] = {}  # each incident's firing time (trace seconds)
        self._of_alert: dict[int, int] = {}  # id(firing Alert) -> its incident, per batch
        self.skipped = 0  # incidents past the limit: neither stored nor analysed
        self._open: dict[Key, int] = {}
        self._core: Core | None = None
        self._list: list[Output] | None = None  # the core's output list looked at so far
        self._seen = 0  # ... and how many of its items

    def attach(self, core: Core) -> None:
        """Give to :func:`~.replay.replay` as ``attach``: look at each tick's outputs."""
        self._core = core
        core.after_tick = self._after_tick

    def sink(self, downstream: Callable[[Sequence[Output]], None]
             ) -> Callable[[Sequence[Output]], None]:
        """``downstream`` behind a look at the outputs no tick produced (event rules');
        while it runs, :meth:`incident_of` knows the incidents of the batch's alerts."""
        def sink(batch: Sequence[Output]) -> None:
            if batch is self._list:
                self._take(batch[self._seen:])
                self._list, self._seen = None, 0
            else:
                self._take(batch)
            try:
                downstream(batch)
            finally:
                self._of_alert.clear()  # the batch's alerts go: their ids may be reused
        return sink

    def incident_of(self, alert: Alert) -> int | None:
        """The incident a firing alert of the batch being sunk opened (None: past the
        limit, or not a firing alert)."""
        return self._of_alert.get(id(alert))

    def close(self) -> None:
        self.store.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _after_tick(self, now: float) -> None:
        core = self._core
        assert core is not None
        if core.output is not self._list:
            self._list, self._seen = core.output, 0
        fresh = core.output[self._seen:]
        self._seen = len(core.output)
        self._take(fresh)

    def _take(self, items: Sequence[Output]) -> None:
        """Open and resolve the incidents of these outputs, as the responder would; then
        analyse the new ones, each seeing the others of the same moment."""
        core = self._core
        assert core is not None
        totals = SubtreeTotals()
        opened: list[int] = []
        for item in items:
            if not isinstance(item, Alert):
                continue
            key = item.instance
            self.now = item.ts
            if item.state == "firing":
                incident = self._open_one(item, core, totals)
                if incident is not None:
                    opened.append(incident)
                    if item.trigger is not None:  # an event rule's: closed at once
                        self._resolve(key, "event")
            elif item.state == "resolved":
                self._resolve(key, item.reason or "cleared")
        for incident in opened:
            found = analyze_stored(self.store, incident)
            if found is not None:
                self.analyses[incident] = found

    def _open_one(self, alert: Alert, core: Core, totals: SubtreeTotals) -> int | None:
        if len(self.opened_at) >= self.limit:
            self.skipped += 1
            return None
        record = incident_record(alert, core.table, totals, describe_rule(self.plan,
                                                                          alert.rule))
        key = record.pop("key")
        record.pop("analyze")
        incident = self.store.open_incident(**record)
        self._open[key] = incident
        self.opened_at[incident] = alert.ts
        self._of_alert[id(alert)] = incident
        return incident

    def _resolve(self, key: Key, reason: str) -> None:
        incident = self._open.pop(key, None)
        if incident is not None:
            self.store.resolve_incident(incident, reason)


def text_analyses(analyst: ReplayAnalyst, out: TextIO) -> None:
    """After the summary: each incident's analysis, in the order they opened."""
    count = len(analyst.opened_at) + analyst.skipped
    if not count:
        out.write("\nno incident opened: nothing to analyse\n")
        return
    out.write(f"\nanalyses of {count} incident(s), numbered in the order they opened:\n")
    for incident, analysis in analyst.analyses.items():
        out.write(f"\n{analyst.opened_at[incident]:.3f}s: {text(analysis)}")
    if analyst.skipped:
        out.write(f"\n{analyst.skipped} incident(s) after the first {analyst.limit} were "
                  "not analysed\n")
