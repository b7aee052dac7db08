"""One live process as its dashboard page shows it.

Its record (command line, executable, connections) is the API's
``/processes/{pid}``; its ancestors and children, with their subtree totals,
come from the same snapshot of the process table as the tree's; the alerts and
actions are those of this process (its pid and its start time, so that a pid
used again does not inherit an earlier process's), newest first and bounded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..procfs import HZ, START_TOLERANCE_S
from ..timefmt import rfc3339
from .context import DashboardView
from .pages import NOT_MEASURED, action_item, measured, number
from .proctree import SORTS, Node, build, user, where

__all__ = ["ACTIONS_READ", "ANCESTORS_SHOWN", "CHILDREN_SHOWN", "PID_MAX", "duration",
           "process_item", "same_process"]

PID_MAX = 2**31  # a pid is a positive 32-bit number: anything else names no process
ANCESTORS_SHOWN = 64  # nearest first; a longer chain says how many more there are
CHILDREN_SHOWN = 200  # busiest first, likewise
ACTIONS_READ = 50  # the newest actions on this pid read from the store


def duration(seconds: float | None) -> str:
    """A length of time in words, to the second below an hour: ``3d 04h``, ``2h 05m``,
    ``4m 09s``, ``12s``; "—" when not known."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return NOT_MEASURED
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def same_process(row: Mapping[str, Any], start: float | None,
                 offset: float | None) -> bool:
    """Whether the action ``row`` (on this pid) targeted the process that started at
    ``start`` (engine seconds): its start in clock ticks, on the engine's clock whose
    origin is ``offset`` seconds after boot.  Without that clock (no daemon) the pid
    alone decides; with it, an unknown start decides nothing, so the action is left out."""
    if offset is None:
        return True
    ticks = row.get("start_ticks")
    if ticks is None or start is None:
        return False
    return bool(abs(ticks / HZ - offset - start) <= START_TOLERANCE_S)


def _offset(view: DashboardView) -> float | None:
    """The engine clock's origin, as the action manager knows it (None: no daemon)."""
    boot_offset = getattr(view.actions, "boot_offset", None)
    return float(boot_offset()) if callable(boot_offset) else None


def _link(node: Node) -> dict[str, Any]:
    return {"pid": node.pid, "comm": node.proc.get("comm") or "?"}


def _child(node: Node) -> dict[str, Any]:
    return {**_link(node), "cpu": measured(node.cpu, "%"), "rss": measured(node.rss, " MB"),
            "fds": number(node.fds), "procs": number(node.procs), "one": node.procs == 1}


def _family(node: Node | None) -> dict[str, Any]:
    """Ancestors (nearest first) and children (busiest subtree first), bounded."""
    if node is None:  # born after the snapshot: nothing known of its place yet
        return {"ancestors": [], "more_ancestors": 0, "children": [], "more_children": 0,
                "subtree": None}
    ancestors = list(node.lineage())
    kids = sorted(node.kids, key=SORTS["cpu"])
    return {"ancestors": [_link(a) for a in ancestors[:ANCESTORS_SHOWN]],
            "more_ancestors": max(0, len(ancestors) - ANCESTORS_SHOWN),
            "children": [_child(k) for k in kids[:CHILDREN_SHOWN]],
            "more_children": max(0, len(kids) - CHILDREN_SHOWN),
            "subtree": _child(node)}


def _connections(record: Mapping[str, Any], wall: float) -> list[dict[str, Any]] | None:
    """The process's last network events, newest first (None: not captured)."""
    events = record.get("connections")
    if events is None:
        return None
    start, age = record.get("start"), record.get("age_s")
    now = None if start is None or age is None else start + age  # the engine's clock
    out = []
    for ev in reversed(events):
        ts = ev.get("ts")
        when = NOT_MEASURED if now is None or ts is None else rfc3339(wall - (now - ts))
        out.append({"time": when, "kind": ev.get("kind"), "family": ev.get("family"),
                    "addr": ev.get("addr") or NOT_MEASURED,
                    "port": NOT_MEASURED if ev.get("port") is None else ev["port"]})
    return out


def _user(record: Mapping[str, Any]) -> str:
    """``name (uid N)``, or what of it is known."""
    name, uid = record.get("user"), record.get("uid")
    return f"{name} (uid {uid})" if name and uid is not None else user(record)


def _values(record: Mapping[str, Any]) -> list[dict[str, str]]:
    fds, limit = record.get("fds"), record.get("fd_limit")
    return [{"name": "cpu", "label": "CPU", "value": measured(record.get("cpu_pct"), "%")},
            {"name": "rss", "label": "Memory (RSS)",
             "value": measured(record.get("rss_mb"), " MB")},
            {"name": "fds", "label": "Open fds",
             "value": number(fds) + ("" if fds is None or limit is None
                                     else f" of {limit:,}")},
            {"name": "threads", "label": "Threads", "value": number(record.get("threads"))}]


async def process_item(view: DashboardView, pid: int, wall: float) -> dict[str, Any] | None:
    """Everything the page of process ``pid`` shows; None when no live process has it."""
    forest = build(view.process_table())  # first: the record below waits for /proc
    record = await view.process(pid)
    if record is None:
        return None
    start, age = record.get("start"), record.get("age_s")
    alerts = [a for a in view.alerts() if a.get("pid") == pid
              and (start is None or a.get("start") is None or a.get("start") == start)]
    offset = _offset(view)
    rows = await view.store.actions(pid=pid, limit=ACTIONS_READ)
    history = view.process_history(pid)
    return {
        "pid": pid, "comm": record.get("comm") or "?", "exe": record.get("exe"),
        "cmdline": record.get("cmdline"), "user": _user(record),
        "where": where(record), "unit": record.get("unit"),
        "container": record.get("container"), "cgroup": record.get("cgroup"),
        "age": duration(age),
        "started": NOT_MEASURED if age is None else rfc3339(wall - age),
        "values": _values(record), **_family(forest.nodes.get(pid)),
        "alerts": alerts,
        "actions": [action_item(r, wall) for r in rows if same_process(r, start, offset)],
        "chart_source": None if history is None else f"/ui/processes/{pid}/history.json",
        "samples": len(history.get("t") or []) if history is not None else 0,
        "connections": _connections(record, wall),
    }
