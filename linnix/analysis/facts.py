"""The built-in analyst: the facts of an incident, each with an id, from what was stored.

Pure and synchronous: it reads an incident as the store returns it (its value
history, its process snapshot, the host at that moment and its ``context``:
the firing process's ancestors, the busiest forkers, the rule's condition and
runbook) and the store rows the caller looked up (earlier incidents of the
same rule, other incidents in the same window).  Nothing is guessed: a fact
whose data was not kept is left out, and a value not measured stays ``None``.

Facts come in a fixed order and are numbered ``F1``, ``F2``, ... in it, so that
the same incident always gives the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["ANALYST", "DRIVERS_MAX", "VERSION", "analyze", "load_metric"]

VERSION = 1
ANALYST = "builtin"
DRIVERS_MAX = 5  # processes named as drivers
EARLIER_MAX = 5  # earlier incidents listed (all are counted)
ORIGIN_FIELDS = ("pid", "comm", "exe", "cmdline", "user", "unit", "container")

Fact = dict[str, Any]

# The process metric that carries the load a condition's names speak of, and the subtree
# total of it: the first word of this list found in any name decides (forks last: a rule
# about CPU or memory often reads a fork rate or a process count only to rule out a storm).
_LOADS = (("rss", "rss_mb"), ("mem", "rss_mb"), ("fd", "fds"), ("cpu", "cpu_pct"),
          ("fork", "forks"), ("procs", "forks"), ("short_jobs", "forks"))
_SUBTREE = {"cpu_pct": "subtree_cpu_pct", "rss_mb": "subtree_rss_mb", "fds": "subtree_fds",
            "forks": "subtree_procs"}


def load_metric(names: Iterable[str]) -> str:
    """Which process metric the condition's names are about (``cpu_pct`` by default)."""
    names = [name.replace("ncpu", "") for name in names]  # a core count is not a load
    for word, metric in _LOADS:
        if any(word in name for name in names):
            return metric
    return "cpu_pct"


def analyze(incident: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]] = (),
            nearby: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The analysis of ``incident``: its facts, numbered, and what it was made from."""
    context = incident.get("context") or {}
    history = incident.get("history") or []
    names = _names(history)
    metric = load_metric(names)
    facts: list[Fact] = []
    facts += _condition(history, context)
    facts += (_trajectory(name, history) for name in names)
    facts += _drivers(incident.get("subtree") or [], context, metric)
    facts += _branch(incident.get("subtree") or [], incident.get("scope"), metric)
    facts += _origin(incident.get("subtree") or [], incident.get("scope"), context)
    facts += _host(incident.get("host") or {})
    facts += _alerts(nearby)
    facts += _before(incident, earlier)
    facts += _runbook(context)
    for number, fact in enumerate(facts, 1):
        fact["id"] = f"F{number}"
    return {"version": VERSION, "analyst": ANALYST, "incident": incident.get("id"),
            "rule": incident.get("rule"), "message": incident.get("message"),
            "scope": incident.get("scope"), "metric": metric,
            "facts": [{"id": f.pop("id"), **f} for f in facts]}


def _names(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every name the condition read, in the order of the first sample (then sorted)."""
    seen: dict[str, None] = {}
    for sample in history:
        for name in sorted(sample.get("values") or {}):
            seen.setdefault(name, None)
    return list(seen)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _condition(history: Sequence[Mapping[str, Any]], context: Mapping[str, Any]) -> list[Fact]:
    """What the rule asked and how long it held before it fired."""
    if not history and not context.get("condition"):
        return []
    first = history[0].get("ts") if history else None
    fired = history[-1].get("ts") if history else None
    held = (fired - first) if isinstance(first, (int, float)) \
        and isinstance(fired, (int, float)) else None
    return [{"kind": "condition", "condition": context.get("condition"),
             "held_since": first, "fired_at": fired, "held_s": held}]


def _trajectory(name: str, history: Sequence[Mapping[str, Any]]) -> Fact:
    """One name's values across the 'for' window: first, peak, last; when it peaked."""
    points = [(s.get("ts"), (s.get("values") or {}).get(name)) for s in history
              if name in (s.get("values") or {})]
    numeric = [(ts, v) for ts, v in ((ts, _number(v)) for ts, v in points) if v is not None]
    peak = max(numeric, key=lambda p: p[1]) if numeric else None  # the first of equal peaks
    return {"kind": "trajectory", "name": name, "samples": len(points),
            "first": _point(points[0]), "last": _point(points[-1]),
            "peak": _point(peak) if peak is not None else None}


def _point(point: tuple[Any, Any]) -> dict[str, Any]:
    return {"ts": point[0], "value": point[1]}


def _who(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"pid": p.get("pid"), "comm": p.get("comm"), "exe": p.get("exe")}


def _ranked(rows: Iterable[tuple[Mapping[str, Any], float]], total: float | None) -> list[Fact]:
    top = sorted(rows, key=lambda r: (-r[1], r[0].get("pid") or 0))[:DRIVERS_MAX]
    return [{**_who(p), "value": v, "share": (v / total) if total else None} for p, v in top]


def _drivers(subtree: Sequence[Mapping[str, Any]], context: Mapping[str, Any],
             metric: str) -> list[Fact]:
    """The processes that contributed most, each with its share of the total."""
    forkers = context.get("forkers")
    if metric == "forks" and isinstance(forkers, Mapping) and forkers.get("top"):
        rows = [(p, v) for p in forkers["top"]
                if (v := _number(p.get("forks_per_sec"))) is not None and v > 0]
        total = _number(forkers.get("total"))
        return [{"kind": "drivers", "metric": "forks_per_sec", "total": total,
                 "top": _ranked(rows, total)}] if rows else []
    own = "children" if metric == "forks" else metric
    rows = [(p, v) for p in subtree if (v := _number(p.get(own))) is not None and v > 0]
    if not rows:
        return []
    total = sum(v for _, v in rows)
    return [{"kind": "drivers", "metric": own, "total": total, "top": _ranked(rows, total)}]


def _branch(subtree: Sequence[Mapping[str, Any]], scope: object, metric: str) -> list[Fact]:
    """For a subtree: the root's child whose branch holds the most of the load."""
    if scope == "system" or not subtree:
        return []
    total_name = _SUBTREE[metric]
    whole = _number(subtree[0].get(total_name))
    kids = [(p, v) for p in subtree if p.get("depth") == 1
            and (v := _number(p.get(total_name))) is not None]
    if not kids or not whole:
        return []
    p, v = min(kids, key=lambda r: (-r[1], r[0].get("pid") or 0))
    return [{"kind": "branch", "metric": total_name, **_who(p), "value": v, "of": whole,
             "share": v / whole, "procs": p.get("subtree_procs")}]


def _origin(subtree: Sequence[Mapping[str, Any]], scope: object,
            context: Mapping[str, Any]) -> list[Fact]:
    """The process and where it came from: its ancestors, nearest first."""
    if scope == "system" or not subtree:
        return []
    chain = [subtree[0], *(context.get("ancestors") or [])]
    return [{"kind": "origin", "chain": [{k: p.get(k) for k in ORIGIN_FIELDS}
                                         for p in chain]}]


_HOST_FIELDS = ("cpu_pct", "mem_used_pct", "psi_cpu_some", "psi_mem_some", "psi_mem_full",
                "psi_io_some", "psi_io_full", "forks_per_sec", "procs", "lost_events")


def _host(host: Mapping[str, Any]) -> list[Fact]:
    """The host when the rule fired: what was measured (nothing else)."""
    kept = {k: host[k] for k in _HOST_FIELDS if host.get(k) is not None}
    return [{"kind": "host", **kept}] if kept else []


def _alerts(nearby: Sequence[Mapping[str, Any]]) -> list[Fact]:
    if not nearby:
        return []
    return [{"kind": "alerts", "incidents": [
        {k: i.get(k) for k in ("id", "rule", "severity", "pid", "comm", "opened_at")}
        for i in nearby]}]


def _before(incident: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]]) -> list[Fact]:
    """Earlier incidents of the same rule about the same executable."""
    subtree = incident.get("subtree") or []
    exe = subtree[0].get("exe") if subtree and incident.get("scope") != "system" else None
    same = [i for i in earlier if i.get("exe") == exe] if exe is not None else list(earlier)
    if not same:
        return [{"kind": "before", "exe": exe, "count": 0, "incidents": []}]
    return [{"kind": "before", "exe": exe, "count": len(same), "incidents": [
        {k: i.get(k) for k in ("id", "opened_at", "resolved_at", "pid", "comm")}
        for i in same[:EARLIER_MAX]]}]


def _runbook(context: Mapping[str, Any]) -> list[Fact]:
    text = context.get("runbook")
    return [{"kind": "runbook", "text": text}] if text else []
