"""The live daemon as the HTTP API sees it (implements ``api.context.DaemonView``).

Process records are taken from the engine's table at once (the table changes
only between two awaits); then the command lines it does not know are read
from /proc in worker threads (:func:`~linnix.runtime.snapshot.fill_cmdlines`),
and subtree totals are computed from the table's tree
(:class:`~linnix.runtime.snapshot.SubtreeTotals`).
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import trio

from ..actions.pause import status_json
from ..engine.cgrules import labels_of
from ..engine.cgtable import Cg
from ..engine.core import Output
from ..engine.evaluator import FIRING, PENDING, Alert
from ..engine.net import recent_events
from ..engine.proctable import Proc
from ..engine.trail import instance_key
from ..language.explain import explain_rule
from ..language.source import excerpt
from ..plan import Plan
from ..procfs import PROC, Clock
from ..timefmt import seconds, stamp
from .hostring import HostRing
from .procring import ALL_MEASURED, ProcRing
from .responder import process_json
from .snapshot import CMDLINE_READERS, SubtreeTotals, fill_cmdlines

if TYPE_CHECKING:
    from .daemon import Daemon

__all__ = ["History", "LiveView"]

GRAPH_MAX = 500  # processes in one /graph answer
# what last_firings keeps of a firing alert
_FIRING = ("time", "ts", "pid", "comm", "start", "cgroup", "severity", "message")


class History:
    """The most recent outputs, as JSON (for ``GET /alerts?history=1`` and the dashboard),
    and each rule's newest firing since the start (for the dashboard's rules page: one per
    rule name, so it outlasts the outputs the ring lets go).  An alert's record is the one
    the responder gives ``incident_id`` once the incident its transition opened or resolved
    is stored (:meth:`Alert.json_record`)."""

    def __init__(self, size: int = 1000) -> None:
        self.items: deque[dict[str, Any]] = deque(maxlen=size)
        self.fired: dict[str, dict[str, Any]] = {}

    def __call__(self, batch: Sequence[Output]) -> None:
        for item in batch:
            record = item.json_record() if isinstance(item, Alert) else item.to_json()
            self.items.append(record)
            if record["type"] == "alert" and record["state"] == "firing":
                self.fired[record["rule"]] = record


class LiveView:
    """Reads the daemon's engine; reloads go through the daemon."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.store = daemon.astore
        self.actions = daemon.action_manager
        self.hub = daemon.hub
        self.registry = daemon.registry
        self.proc_root = PROC
        self._readers = trio.CapacityLimiter(CMDLINE_READERS)
        # where each rule of the running plan is in its list, by name; a weak reference and
        # indexes, not the rules: the plan a reload replaced is let go
        self._by_name: tuple[weakref.ref[Plan] | None, dict[str, int]] = (None, {})
        self._explained: dict[str, str] = {}  # rule_source's explain, for the running plan
        # process_table's last answer: the table, its events and ticks then, the rows
        self._rows: tuple[Any, tuple[int, int], list[dict[str, Any]]] = (None, (0, 0), [])
        # the host's recent samples, for the dashboard's charts (kept while the API serves)
        self.host_ring = HostRing(daemon.opts.sample_interval)
        if daemon.telemetry is not None:
            daemon.telemetry.on_host = lambda ev: self.host_ring.add(time.time(), ev)
        # and each live process's, read from the table once the engine applied a round
        self.proc_ring = ProcRing(daemon.opts.sample_interval)
        if daemon.engine is not None:
            daemon.engine.on_round = self._record_round

    def _record_round(self, ts: float) -> None:
        """The round of samples taken at ``ts`` (the engine's clock) is in the table."""
        core, engine = self.daemon.core, self.daemon.engine
        if core is None or engine is None:
            return
        wall = time.time() - (engine.clock.now() - ts)
        self.proc_ring.record(wall, core.table.procs, self._measured())

    def _measured(self) -> tuple[bool, bool, bool]:
        """Which of cpu, rss and fds the sampler measures now: a value the table still
        has of one it no longer measures (a reload turned it off) is stale."""
        telemetry = self.daemon.telemetry
        if telemetry is None:
            return ALL_MEASURED
        each = telemetry.per_process
        return (each, each, each and telemetry.procs.fds)

    def _now(self) -> float:
        engine = self.daemon.engine
        return engine.clock.now() if engine is not None else 0.0

    def _clock(self) -> Clock | None:
        engine = self.daemon.engine
        return engine.clock if engine is not None else None

    async def _with_cmdlines(self, records: list[dict[str, Any]]) -> None:
        await fill_cmdlines(records, self._clock(), self._readers, root=self.proc_root)

    def ready(self) -> tuple[bool, str]:
        reason = self.daemon.not_ready
        if reason is not None:
            return False, reason
        source = self.daemon.source
        return True, source.name if source is not None else "unknown"

    def _table(self) -> Any:
        core = self.daemon.core
        return core.table if core is not None else None

    async def processes(self) -> list[dict[str, Any]]:
        table = self._table()
        if table is None:
            return []
        now = self._now()
        records = [process_json(table.procs[pid], now) for pid in sorted(table.procs)]
        await self._with_cmdlines(records)
        return records

    async def process(self, pid: int) -> dict[str, Any] | None:
        table = self._table()
        p = table.procs.get(pid) if table is not None else None
        if p is None:
            return None
        record = process_json(p, self._now())
        # its last network events while they are captured; null when they are not
        record["connections"] = recent_events(p) if table.net.recent else None
        await self._with_cmdlines([record])
        return record

    def process_table(self) -> list[dict[str, Any]]:
        # the table as it is now, in one go (it changes only between awaits); nothing is
        # read from /proc, so the process tree costs O(processes) and no thread.  The
        # same list is handed out again until the engine applies an event or runs a
        # tick: a page and the branches opened from it read one snapshot, not one each
        table, core = self._table(), self.daemon.core
        if table is None or core is None:
            return []
        key = (table.events, core.ticks)
        if self._rows[0] is table and self._rows[1] == key:
            return self._rows[2]
        rows = [{"pid": p.pid, "ppid": p.ppid, "comm": p.comm, "uid": p.uid, "user": p.user,
                 "unit": p.unit, "container": p.container, "cpu_pct": p.cpu_pct,
                 "rss_mb": p.rss_mb, "fds": p.fds} for p in table.procs.values()]
        self._rows = (table, key, rows)
        return rows

    async def graph(self, pid: int) -> dict[str, Any] | None:
        table = self._table()
        p = table.procs.get(pid) if table is not None else None
        if p is None:
            return None
        now = self._now()
        budget = [GRAPH_MAX]
        totals = SubtreeTotals()
        records: list[dict[str, Any]] = []

        def node(q: Proc) -> dict[str, Any]:
            budget[0] -= 1
            kids = []
            for kid in sorted(q.kids.values(), key=lambda k: k.pid):
                if budget[0] <= 0:
                    break
                kids.append(node(kid))
            record = {**process_json(q, now), **totals.of(q), "children": kids}
            records.append(record)
            return record

        tree = node(p)
        process = process_json(p, now)
        ancestors = [process_json(a, now) for a in p.lineage()]
        await self._with_cmdlines([process, *ancestors, *records])
        return {"process": process, "ancestors": ancestors, "subtree": tree,
                "truncated": budget[0] <= 0}

    def alerts(self) -> list[dict[str, Any]]:
        core = self.daemon.core
        if core is None:
            return []
        now = self._now()
        host = core.table.host
        out = []
        for state in core.evaluator.rules:
            rule = state.rule
            for key, inst in state.instances.items():
                if inst.state not in (PENDING, FIRING):
                    continue
                try:
                    values = rule.values(key, host, now)
                except Exception:
                    values = {}
                proc = key if isinstance(key, Proc) else None
                labels = dict(rule.labels)
                if isinstance(key, Cg):  # a cgroup rule's: the cgroup, unit and container
                    labels = labels_of(key, labels)
                out.append({
                    "rule": rule.name, "state": "firing" if inst.state == FIRING else "pending",
                    "incident_id": self._incident_of(rule.name, key, inst.state),
                    "since": seconds(inst.since), "time": stamp(inst.since, now),
                    "severity": rule.severity, "scope": rule.scope.value,
                    "pid": proc.pid if proc is not None else None,
                    "comm": proc.comm if proc is not None else None,
                    "start": seconds(proc.start) if proc is not None else None,
                    "message": rule.message.render({**values, "rule": rule.name}),
                    "labels": labels,
                    "values": {k: values.get(k) for k in rule.inputs},
                })
        return sorted(out, key=lambda a: (a["rule"], a["pid"] or 0))

    def _incident_of(self, rule: str, key: Any, state: int) -> int | None:
        """The id of the incident a firing instance opened, once stored (the responder's
        key)."""
        responder = getattr(self.daemon, "responder", None)
        if state != FIRING or responder is None:
            return None
        found = responder.open.get(instance_key(rule, key))
        return int(found) if found is not None else None

    def alert_history(self, limit: int) -> list[dict[str, Any]]:
        items = list(self.daemon.history.items)
        return items[-limit:] if limit > 0 else []

    def rules(self) -> list[dict[str, Any]]:
        core = self.daemon.core
        if core is None:
            return []
        counts = {s.rule.name: s.counts() for s in core.evaluator.rules}
        return [{
            "name": r.name, "path": r.path, "line": r.line, "scope": r.scope.value,
            "severity": r.severity, "enabled": r.enabled, "tags": list(r.tags),
            "condition": r.cond_text, "for_s": r.for_s,
            "actions": [a.describe() for a in r.actions],
            "counts": counts.get(r.name, {"pending": 0, "firing": 0}),
        } for r in core.plan.rules]

    async def reload(self, actor: str,
                     note: str | None = None) -> tuple[bool, list[dict[str, Any]]]:
        ok, diagnostics = await self.daemon.reload(actor, note)  # audited there
        # with the line and carets `linnix check` shows: the answer is all a reader sees
        return ok, [{**d.to_json(), "excerpt": excerpt(d)} for d in diagnostics]

    async def ask_model(self, incident_id: int) -> bool:
        analyses = getattr(self.daemon, "analyses", None)
        return analyses is not None and analyses.model is not None \
            and analyses.queue(incident_id)

    def dashboard_status(self) -> dict[str, Any]:
        core, source = self.daemon.core, self.daemon.source
        return {"mode": self.actions.policy.mode,
                "source": source.name if source is not None else None,
                "events": core.table.events if core is not None else None,
                "lost": core.table.lost_total if core is not None else None,
                "processes": len(core.table.procs) if core is not None else None,
                "rules": len(core.plan.active) if core is not None else None,
                "paused": status_json(self.actions.paused)}

    def host_history(self) -> dict[str, Any]:
        return self.host_ring.series()

    def process_history(self, pid: int) -> dict[str, Any] | None:
        table = self._table()
        p = table.procs.get(pid) if table is not None else None
        return self.proc_ring.history(p) if p is not None else None

    def rule_source(self, name: str) -> dict[str, Any] | None:
        core = self.daemon.core
        if core is None:
            return None
        plan = core.plan
        at = self._indexed(plan).get(name)
        if at is None:
            return None
        rule = plan.rules[at]
        explained = self._explained
        if name not in explained:
            explained[name] = explain_rule(rule)
        return {"name": rule.name, "path": rule.path, "line": rule.line,
                "source": rule.source, "explain": explained[name]}

    def _indexed(self, plan: Plan) -> dict[str, int]:
        """Where each rule of ``plan`` is, by name; what was explained is kept until a
        reload swaps the plan."""
        held = self._by_name[0]
        if held is None or held() is not plan:
            self._by_name = (weakref.ref(plan), {r.name: i for i, r in enumerate(plan.rules)})
            self._explained = {}
        return self._by_name[1]

    def last_firings(self) -> dict[str, Any]:
        fired = self.daemon.history.fired if self.daemon.history is not None else {}
        return {name: {key: record.get(key) for key in _FIRING}
                for name, record in fired.items()}
