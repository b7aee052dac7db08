"""From alerts to incidents and actions (the live daemon only).

The engine's outputs arrive synchronously, right after a tick, while the
process table still shows the moment an instance fired: that is when the
incident's snapshot (the process subtree with its metrics and exact subtree
totals, and the host) is taken.  Writing to the store is asynchronous, so the
outputs are queued and a task handles them in order: an incident is opened
before the actions proposed with it, and resolved after them.  Command lines
the table does not know are read from /proc just before the incident is
stored (off the event loop), for the processes that are still the same.

While an incident is open, the values its rule reads are kept by the engine
(:mod:`linnix.engine.trail`); the responder saves them with the incident every
:data:`TRAIL_SAVE_S` seconds and when it resolves, their times made Unix times.

An incident also keeps a ``context`` for its analysis (:mod:`linnix.analysis`):
the firing process's ancestors, the host's busiest forkers, and the rule's
condition and runbook.  The incident of a rule with an ``analyze`` action
(the engine proposes nothing for it: it acts on no process) is handed to
:class:`~.analyst.Analyses` once stored, which analyses it in the background.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import trio

from ..actions import ActionManager, Target
from ..actions.manager import CgroupTarget
from ..actions.store import AsyncStore
from ..engine.core import Output
from ..engine.evaluator import Alert, Proposal
from ..engine.proctable import Proc, ProcTable
from ..engine.rulestate import InstanceKey
from ..engine.trail import Point
from ..errors import Outage
from ..plan import Plan
from ..procfs import PROC, Clock
from ..timefmt import seconds
from .analyst import Analyses
from .snapshot import CMDLINE_READERS, SubtreeTotals, fill_cmdlines

__all__ = ["Responder", "ancestors", "bounded_totals", "describe_rule", "forkers",
           "host_snapshot", "incident_record", "process_json", "subtree_snapshot"]

SNAPSHOT_MAX = 200  # processes kept in an incident's subtree snapshot
ANCESTORS_MAX = 16  # ancestors kept in an incident's context, nearest first
FORKERS_MAX = 5  # the busiest forkers kept in an incident's context
TRAIL_SAVE_S = 30.0  # how often the trails of open incidents are saved

Key = InstanceKey  # rule, instance pid, instance start, instance cgroup


def process_json(p: Proc, now: float) -> dict[str, Any]:
    """A process and its metrics, as the API and incidents show it."""
    return {
        "pid": p.pid, "ppid": p.ppid, "comm": p.comm, "exe": p.exe, "cmdline": p.cmdline,
        "uid": p.uid, "user": p.user, "cgroup": p.cgroup, "unit": p.unit,
        "container": p.container, "start": seconds(p.start), "age_s": seconds(p.age(now)),
        "cpu_pct": p.cpu_pct,
        "rss_mb": p.rss_mb, "fds": p.fds, "fd_limit": p.fd_limit, "fd_pct": p.fd_pct,
        "threads": p.threads, "children": p.children,
    }


def subtree_snapshot(root: Proc, now: float, limit: int = SNAPSHOT_MAX,
                     totals: SubtreeTotals | None = None, wall: int | None = None,
                     table: ProcTable | None = None) -> list[dict[str, Any]]:
    """The root and its descendants (breadth first, at most ``limit``), with depth and
    each one's subtree totals (over its whole subtree, shown or not).

    ``wall``: the rule has a boundary, whose totals the table keeps at that
    index.  The root then also records the rule's totals (``totals``), and a
    wall below it is listed (``"wall": true``) but not what is below it, which
    is none of the rule's business.
    """
    sums = totals or SubtreeTotals()
    first = {**process_json(root, now), **sums.of(root), "depth": 0}
    if wall is not None and table is not None:
        first["totals"] = bounded_totals(root, wall, table)
    out = [first]
    queue = deque((kid, 1) for kid in sorted(root.kids.values(), key=lambda k: k.pid))
    while queue and len(out) < limit:
        node, depth = queue.popleft()
        entry = {**process_json(node, now), **sums.of(node), "depth": depth}
        out.append(entry)
        if wall is not None and node.bounded[wall].wall:
            entry["wall"] = True
            continue
        queue.extend((kid, depth + 1) for kid in sorted(node.kids.values(), key=lambda k: k.pid))
    return out


def bounded_totals(p: Proc, wall: int, table: ProcTable) -> dict[str, Any]:
    """``p``'s subtree totals within the walls of one boundary, as the rule read them
    (null: a value the table does not add up, since no rule reads it)."""
    totals = p.bounded[wall]
    return {"subtree_cpu_pct": totals.sub_cpu_pct if table.sum_cpu else None,
            "subtree_rss_mb": totals.sub_rss_mb if table.sum_rss else None,
            "subtree_fds": totals.sub_fds if table.sum_fds else None,
            "subtree_procs": totals.sub_procs}


def host_snapshot(table: ProcTable, now: float) -> dict[str, Any]:
    h = table.host
    return {
        "cpu_pct": h.cpu_pct, "ncpu": h.ncpu, "mem_total_mb": h.mem_total_mb,
        "mem_available_mb": h.mem_available_mb, "mem_used_pct": h.mem_used_pct,
        "psi_cpu_some": h.psi_cpu_some, "psi_mem_some": h.psi_mem_some,
        "psi_mem_full": h.psi_mem_full, "psi_io_some": h.psi_io_some,
        "psi_io_full": h.psi_io_full, "procs": h.procs, "forks_per_sec": h.forks.count(now),
        "lost_events": h.lost.total(now),
    }


def _started_as(p: Proposal, table: ProcTable) -> str | None:
    """The executable the target was started from, as the table recorded it at exec (or
    at the start-up scan): the guards match it too, whatever its file has become since."""
    proc = table.procs.get(p.pid) if p.pid is not None else None
    if proc is None or proc.start != p.start:
        return None  # not the process the proposal is about
    return proc.exe


def ancestors(p: Proc, table: ProcTable, now: float,
              limit: int = ANCESTORS_MAX) -> list[dict[str, Any]]:
    """Where ``p`` came from: its parent, the parent's parent, ... (at most ``limit``)."""
    out: list[dict[str, Any]] = []
    parent = table.procs.get(p.ppid)
    while parent is not None and len(out) < limit and parent.pid != p.pid:
        out.append(process_json(parent, now))
        parent = table.procs.get(parent.ppid) if parent.ppid != parent.pid else None
    return out


def forkers(table: ProcTable, now: float, n: int = FORKERS_MAX) -> dict[str, Any] | None:
    """The processes that created the most children in the last second, and the total
    over all (None: none did)."""
    rates = [(p, p.child_forks.count(now)) for p in table.live()]
    rates = [(p, r) for p, r in rates if r > 0]
    if not rates:
        return None
    top = sorted(rates, key=lambda pr: (-pr[1], pr[0].pid))[:n]
    return {"total": float(sum(r for _, r in rates)),
            "top": [{"pid": p.pid, "comm": p.comm, "exe": p.exe, "forks_per_sec": float(r)}
                    for p, r in top]}


def describe_rule(plan: Plan, name: str) -> dict[str, Any]:
    """What an incident of rule ``name`` keeps of the rule (its condition and runbook),
    and whether the rule asks for an analysis ({}: no such rule)."""
    found = next((r for r in plan.rules if r.name == name), None)
    if found is None:
        return {}
    return {"condition": found.cond_text, "runbook": found.runbook,
            "analyze": any(a.name == "analyze" for a in found.actions)}


def _busiest(table: ProcTable, now: float, totals: SubtreeTotals,
             n: int = 20) -> list[dict[str, Any]]:
    procs = sorted(table.live(), key=lambda p: (-(p.cpu_pct or 0.0), p.pid))[:n]
    return [{**process_json(p, now), **totals.of(p), "depth": 0} for p in procs]


def incident_record(alert: Alert, table: ProcTable, totals: SubtreeTotals,
                    rule: Mapping[str, Any]) -> dict[str, Any]:
    """The incident a firing ``alert`` opens, as the table shows it now: ``key`` (its
    instance), ``analyze`` (``rule``, as :func:`describe_rule` says it, asks for an
    analysis) and the arguments of :meth:`Store.open_incident`."""
    now = alert.ts
    subtree = (subtree_snapshot(alert.proc, now, totals=totals, wall=alert.wall, table=table)
               if alert.proc is not None
               else _busiest(table, now, totals))
    history = [{"ts": seconds(ts), "values": values} for ts, values in alert.history or ()]
    context = {k: v for k, v in rule.items() if k in ("condition", "runbook")}
    if alert.proc is not None:
        context["ancestors"] = ancestors(alert.proc, table, now)
    busy = forkers(table, now)
    if busy is not None:
        context["forkers"] = busy
    return {
        "key": alert.instance, "rule": alert.rule,
        "severity": alert.severity, "scope": alert.scope, "pid": alert.pid,
        "comm": alert.comm, "start": seconds(alert.start), "message": alert.message,
        "labels": dict(alert.labels), "history": history or [
            {"ts": seconds(now), "values": alert.values}],
        "subtree": subtree, "host": host_snapshot(table, now), "context": context,
        "analyze": bool(rule.get("analyze")),
    }


class Responder:
    """Sink for the engine; opens and resolves incidents, hands proposals over."""

    def __init__(self, store: AsyncStore, actions: ActionManager, table: Callable[[], ProcTable],
                 publish: Callable[[str, dict[str, Any]], None],
                 on_problem: Callable[[str], None] = lambda message: None,
                 clock: Clock | None = None, proc_root: str = PROC,
                 describe: Callable[[str], Mapping[str, Any]] = lambda rule: {},
                 analyses: Analyses | None = None,
                 trails: Callable[[], Mapping[Key, list[Point]]] | None = None,
                 wall_offset: Callable[[], float] | None = None) -> None:
        self.store = store
        # the trails so far of the firing instances (the engine's), saved every
        # TRAIL_SAVE_S with their incidents; their times are the engine's, and Unix time
        # is wall_offset() more (by default from the clock; without one, the same)
        self.trails = trails
        self.wall_offset = wall_offset or (
            (lambda: time.time() - clock.now()) if clock is not None else lambda: 0.0)
        self._saved: dict[int, tuple[float, int]] = {}  # incident: its trail when saved
        # by a rule's name: its condition and runbook (for its incidents' context), and
        # whether it has an analyze action
        self.describe = describe
        self.analyses = analyses or Analyses(store, on_problem=on_problem)
        self.actions = actions
        self.table = table
        self.publish = publish
        self.clock = clock  # the engine's: start times are on it (None: /proc is not read)
        self.proc_root = proc_root
        self._readers = trio.CapacityLimiter(CMDLINE_READERS)
        self.outage = Outage(on_problem)
        self.open: dict[Key, int] = {}
        self.unhandled = 0  # outputs queued and not yet handled
        self._send, self._receive = trio.open_memory_channel[tuple[str, Any]](math.inf)

    def __call__(self, batch: Sequence[Output]) -> None:
        table = self.table()
        totals = SubtreeTotals()  # the table does not change during the batch
        closing: list[Key] = []  # event rules' incidents: closed once their actions are in
        for item in batch:
            if isinstance(item, Alert):
                self.publish("alert", item.to_json())
                if item.state == "firing":
                    key = item.instance
                    if key in closing:  # the same process matched again in this batch
                        closing.remove(key)
                        self._queue("resolve", (key, "event", [], None))
                    incident = self._incident(item, table, totals)
                    incident["record"] = item.json_record()  # given the incident's id
                    self._queue("open", incident)
                    if item.trigger is not None:
                        closing.append(key)
                elif item.state == "resolved":
                    key = item.instance
                    offset = None if item.unix is None else item.unix - item.ts
                    self._queue("resolve", (key, item.reason or "cleared",
                                            self._trail_json(item.trail or (), offset),
                                            item.json_record()))
            elif isinstance(item, Proposal):
                self._queue("propose", (item, _started_as(item, table)))
        for key in closing:
            self._queue("resolve", (key, "event", [], None))

    def _queue(self, kind: str, item: Any) -> None:
        self.unhandled += 1
        self._send.send_nowait((kind, item))

    def _trail_json(self, points: Sequence[Point],
                    offset: float | None = None) -> list[dict[str, Any]]:
        """A trail as the store keeps it: each point's Unix time (its engine time plus
        ``offset``, by default :attr:`wall_offset`'s) and values."""
        if offset is None:
            offset = self.wall_offset()
        return [{"at": seconds(ts + offset), "values": values} for ts, values in points]

    def save_trails(self) -> None:
        """Queue the trails so far of the firing instances: their incidents' are saved
        in order with the rest (an incident resolved meanwhile keeps its final one)."""
        if self.trails is not None:
            self._queue("trails", self.trails())

    async def _save_trails_every(self, every: float) -> None:
        while True:
            await trio.sleep(every)
            self.save_trails()

    def _incident(self, alert: Alert, table: ProcTable,
                  totals: SubtreeTotals) -> dict[str, Any]:
        return incident_record(alert, table, totals, self.describe(alert.rule))

    async def run(self) -> None:
        """Handle queued outputs in order until cancelled.

        An output the store cannot take (a full disk, a damaged database) is
        counted and skipped, said once until storing works again: alerts keep
        reaching the log, the alerts file and the stream meanwhile.
        """
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.analyses.run)
            if self.trails is not None:
                nursery.start_soon(self._save_trails_every, TRAIL_SAVE_S)
            await self._respond()

    async def _respond(self) -> None:
        async for kind, item in self._receive:
            try:
                await self._handle(kind, item)
            except (sqlite3.Error, OSError) as err:
                self.outage.failed(f"cannot record {kind} in the store: {err}; alerts still "
                                   "reach the log, alerts.jsonl and the API stream")
                continue
            finally:
                self.unhandled -= 1
            self.outage.worked("recording in the store again ({lost:,} output(s) could not "
                               "be recorded)")

    @property
    def failed(self) -> int:
        """Outputs that could not be stored."""
        return self.outage.lost

    async def _handle(self, kind: str, item: Any) -> None:
        if kind == "open":
            key, record = item.pop("key"), item.pop("record")
            await fill_cmdlines([*item["subtree"], *item["context"].get("ancestors", ())],
                                self.clock, self._readers, root=self.proc_root)
            analyze = item.pop("analyze")
            self.open[key] = await self.store.open_incident(**item)
            record["incident_id"] = self.open[key]  # the history's transition links to it
            self.publish("incident", {"id": self.open[key], "state": "opened", **item})
            if analyze:
                await self.analyses.submit(self.open[key])
        elif kind == "resolve":
            key, reason, trail, record = item
            incident = self.open.pop(key, None)
            if incident is not None:
                if record is not None:  # a resolved transition (not an event rule's end)
                    record["incident_id"] = incident
                self._saved.pop(incident, None)
                await self.store.resolve_incident(incident, reason, trail)
                self.publish("incident", {"id": incident, "state": "resolved",
                                          "reason": reason})
        elif kind == "trails":
            await self._keep_trails(item)
        else:
            await self._propose(item)

    async def _keep_trails(self, trails: Mapping[Key, list[Point]]) -> None:
        """Save the trails of open incidents that grew since they were last saved."""
        batch, marks = {}, {}
        for key, points in trails.items():
            incident = self.open.get(key)
            if incident is None or not points:
                continue
            mark = (points[-1][0], len(points))
            if self._saved.get(incident) != mark:
                batch[incident], marks[incident] = self._trail_json(points), mark
        if batch:
            await self.store.keep_trails(batch)
            self._saved.update(marks)

    async def _propose(self, proposal: tuple[Proposal, str | None]) -> None:
        p, exe = proposal
        incident = self.open.get(p.instance)
        target = None if p.pid is None else Target(p.pid, p.comm, p.start, exe)
        extra = ({} if p.cgroup is None or p.cgroup_id is None
                 else {"cgroup": CgroupTarget(p.cgroup, p.cgroup_id)})  # a cgroup action's
        await self.actions.propose(rule=p.rule, action=p.action, target=target,
                                   incident_id=incident, monitor_only=p.monitor_only, **extra)
