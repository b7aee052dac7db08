"""What an incident's page shows beyond its summary and analysis: the rule's source, the
values its condition read over the incident's window, the subtree snapshot and the
timeline of transitions and actions.

Everything comes from the stored incident (its ``history``: the values up to the
firing, on the engine's clock; its ``trail``: the values while it was open, in
Unix time), its actions' audit records and the view's ``rule_source``.  Numbers
are formatted here ("—" when not measured); process data passes through as it
is, for the templates to escape.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..names import COUNTING_FUNCTIONS, METRICS, TEXT_MAX, Dim, field_of
from ..timefmt import rfc3339
from .context import DashboardView
from .pages import NOT_MEASURED, measured, number

__all__ = ["rule_source_item", "subtree_item", "timeline", "unit_of", "values_item",
           "values_json"]

SUBTREE_SHOWN = 50  # processes of the snapshot listed
CHARTS_MAX = 12  # names charted
TEXT_VALUES_MAX = 5  # distinct values listed of a name that is not a number
TIMELINE_ACTIONS = 20  # actions whose steps the timeline lists
AUDIT_PER_ACTION = 100  # audit records read per action (its newest)
DEPTH_SHOWN = 8  # deeper processes are indented as this deep
# numbers that name something rather than measure it: listed, not charted
IDENTITIES = frozenset({"pid", "ppid", "uid", "start"})
_UNITS = {Dim.PERCENT: "%", Dim.SIZE: "MiB", Dim.DURATION: "s", Dim.PLAIN: ""}

Point = tuple[float, Mapping[str, Any]]


# ---- the rule's source ----------------------------------------------------------------

def rule_source_item(view: DashboardView, name: str) -> dict[str, Any] | None:
    """The loaded rule's source as the page shows it (None: no rule of that name is
    loaded now).  A rule the view lists but whose source it does not give shows where
    it is, with its source said to be unavailable."""
    found = view.rule_source(name)
    if found is None:
        listed = next((r for r in view.rules() if r.get("name") == name), None)
        if listed is None:
            return None
        found = {"path": listed.get("path"), "line": listed.get("line"), "source": None,
                 "explain": None, "unavailable": True}
    text, explain = found.get("source"), found.get("explain")
    return {"where": f"{found.get('path')}:{found.get('line')}",
            "text": None if text is None else str(text)[:TEXT_MAX * 4],
            "explain": None if explain is None else str(explain)[:TEXT_MAX * 4],
            "unavailable": bool(found.get("unavailable"))}


# ---- the values over the incident's window ---------------------------------------------

def _finite(value: object) -> float | None:
    """A value as a chart can draw it: a finite number (not a truth value), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _points(row: Mapping[str, Any]) -> tuple[list[Point], float | None]:
    """Every recorded point in Unix time, oldest first, and when the incident opened.

    The trail is in Unix time, and begins with the firing (unless a restart lost
    what was recorded before it: then it begins later than the incident opened).
    The history's times are the engine's, and its last point is the firing: it is
    placed at the trail's first point, or at the time the store gave the incident
    (a moment later) when the trail does not begin with the firing."""
    opened = _finite(row.get("opened_at"))
    history = [p for p in row.get("history") or ()
               if isinstance(p, dict) and _finite(p.get("ts")) is not None]
    trail = [(float(p["at"]), p.get("values") or {}) for p in row.get("trail") or ()
             if isinstance(p, dict) and _finite(p.get("at")) is not None]
    if trail and opened is not None:
        opened = min(opened, trail[0][0])
    out: list[Point] = []
    if history and opened is not None:
        fired = float(history[-1]["ts"])
        out = [(opened - (fired - float(p["ts"])), p.get("values") or {}) for p in history]
        if trail and trail[0][0] == opened:
            out.pop()  # the trail begins with the firing too
    out.extend(trail)
    out = [(t, v if isinstance(v, Mapping) else {}) for t, v in out]
    out.sort(key=lambda p: p[0])
    return out, opened


def _names(points: Iterable[Point]) -> list[str]:
    """The names read, in the order they first appear."""
    seen: dict[str, None] = {}
    for _, values in points:
        for name in values:
            seen.setdefault(str(name), None)
    return list(seen)


def unit_of(name: str) -> str:
    """The unit of a name a rule reads (of its metric, for a window function)."""
    func, paren, rest = name.partition("(")
    if paren:
        if func in COUNTING_FUNCTIONS:
            return ""
        name = rest.split(",")[0].strip()
    metric = METRICS.get(field_of(name))
    return _UNITS.get(metric.dim, "") if metric is not None else ""


def _charted(points: Sequence[Point], names: Iterable[str]) -> tuple[list[str], list[str]]:
    """The names charted (a number at some point) and those listed as text."""
    charts: list[str] = []
    texts: list[str] = []
    for name in names:
        numeric = any(_finite(values.get(name)) is not None for _, values in points)
        (charts if numeric and name not in IDENTITIES else texts).append(name)
    return charts[:CHARTS_MAX], texts


def _text_values(points: Sequence[Point], name: str) -> dict[str, Any]:
    distinct: dict[str, None] = {}
    for _, values in points:
        value = values.get(name)
        distinct.setdefault(NOT_MEASURED if value is None else str(value)[:TEXT_MAX], None)
    shown = list(distinct)[:TEXT_VALUES_MAX]
    return {"name": name, "shown": shown, "more": len(distinct) - len(shown)}


def _summary(points: Sequence[Point], name: str, opened: float | None,
             unit: str) -> dict[str, str]:
    """The values of one chart in words: at the opening, the highest, the last."""
    measured_points = [(t, _finite(v.get(name))) for t, v in points]
    numbers = [(t, x) for t, x in measured_points if x is not None]
    at_open = next((x for t, x in reversed(numbers) if opened is not None and t <= opened),
                   None)
    suffix = unit if unit in ("%", "") else f" {unit}"
    return {"opened": measured(at_open, suffix),
            "highest": measured(max((x for _, x in numbers), default=None), suffix),
            "last": measured(numbers[-1][1] if numbers else None, suffix)}


def values_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the page says of the values: a chart per name that is a number (with its
    unit and its values in words), the other names' distinct values, the span."""
    points, opened = _points(row)
    charts, texts = _charted(points, _names(points))
    first = points[0][0] if points else None
    last = points[-1][0] if points else None
    return {"points": len(points),
            "before": sum(1 for t, _ in points if opened is not None and t < opened),
            "first": None if first is None else rfc3339(first),
            "last": None if last is None else rfc3339(last),
            "trail": bool(row.get("trail")),
            "charts": [{"name": n, "unit": unit_of(n),
                        **_summary(points, n, opened, unit_of(n))} for n in charts],
            "texts": [_text_values(points, n) for n in texts]}


def values_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """The charts' data: times (Unix seconds) and, per charted name, its values before
    the incident opened and while it was open (the opening's point in both, so that
    the two lines meet; null where a column does not apply or nothing was measured)."""
    points, opened = _points(row)
    charts, _ = _charted(points, _names(points))
    times = [t for t, _ in points]
    names = {}
    for name in charts:
        column = [_finite(values.get(name)) for _, values in points]
        names[name] = {
            "unit": unit_of(name),
            "before": [x if opened is None or t <= opened else None
                       for t, x in zip(times, column, strict=True)],
            "open": [x if opened is not None and t >= opened else None
                     for t, x in zip(times, column, strict=True)]}
    resolved = _finite(row.get("resolved_at"))
    return {"t": times, "opened": opened, "resolved": resolved, "names": names}


# ---- the subtree snapshot -----------------------------------------------------------------

def _count(value: object) -> str:
    return number(value) if isinstance(value, int) and not isinstance(value, bool) \
        else NOT_MEASURED


def subtree_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot taken when the incident opened: the process and its subtree (or,
    for a rule about the host or a cgroup, the busiest processes), bounded."""
    procs = [p for p in row.get("subtree") or () if isinstance(p, dict)]
    pid = row.get("pid")
    tree = bool(procs) and pid is not None and procs[0].get("pid") == pid
    shown = []
    for p in procs[:SUBTREE_SHOWN]:
        depth = p["depth"] if isinstance(p.get("depth"), int) else 0
        shown.append({
            "process": f"{p.get('comm') or '?'} [{p.get('pid')}]",
            "depth": depth, "indent": max(0, min(depth, DEPTH_SHOWN)),
            "cpu": measured(_finite(p.get("cpu_pct")), "%"),
            "memory": measured(_finite(p.get("rss_mb")), " MiB"),
            "fds": _count(p.get("fds")),
            "subtree_cpu": measured(_finite(p.get("subtree_cpu_pct")), "%"),
            "wall": bool(p.get("wall"))})
    total = procs[0].get("subtree_procs") if tree else None
    beyond = total - len(procs) if isinstance(total, int) and total > len(procs) else 0
    return {"tree": tree, "rows": shown, "more": len(procs) - len(shown) + beyond}


# ---- the timeline ---------------------------------------------------------------------

def _step(at: object, kind: str, what: str, who: str | None = None,
          why: object = None) -> dict[str, Any] | None:
    when = _finite(at)
    if when is None:
        return None
    return {"at": when, "time": rfc3339(when), "kind": kind, "what": what, "who": who,
            "why": None if why is None or why == "" else str(why)[:TEXT_MAX]}


def _alert_steps(row: Mapping[str, Any]) -> list[dict[str, Any] | None]:
    points, _ = _points({**row, "trail": ()})
    steps = []
    if len(points) > 1:  # values were recorded before it fired: it was pending
        steps.append(_step(points[0][0], "alert", "pending: the condition began to hold"))
    steps.append(_step(row.get("opened_at"), "alert", "firing: the incident opened",
                       why=row.get("message")))
    if row.get("resolved_at") is not None:
        steps.append(_step(row.get("resolved_at"), "alert", "resolved",
                           why=row.get("resolved_reason")))
    return steps


def _action_steps(action: Mapping[str, Any],
                  audit: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | None]:
    """One action's steps: each audit record about it, its repeats counted in one."""
    name = f"action {action.get('id')} ({action.get('kind')})"
    records = [r for r in reversed(audit) if r.get("event") != "action.repeated"]
    if not records:  # no audit records (retention took them): what its row says
        return [_step(action.get("created_at"), "action", f"{name}: proposed"),
                _step(action.get("decided_at"), "action", f"{name}: {action.get('status')}",
                      action.get("decided_by"), action.get("reason"))]
    steps = []
    for r in records:
        event = str(r.get("event") or "")
        detail = r.get("detail") if isinstance(r.get("detail"), dict) else {}
        steps.append(_step(r.get("at"), "action",
                           f"{name}: {event.removeprefix('action.')}",
                           str(r.get("actor") or "") or None, detail.get("reason")))
    repeats = action.get("repeats")
    if isinstance(repeats, int) and repeats > 0:
        steps.append(_step(action.get("last_seen_at"), "action",
                           f"{name}: proposed again {repeats:,} time(s) (the last)"))
    return steps


async def timeline(view: DashboardView, row: Mapping[str, Any]) -> dict[str, Any]:
    """The incident's steps in time order: pending, firing, each action's steps (who
    decided and why, from the audit log), its analysis, resolved."""
    steps = _alert_steps(row)
    actions = [a for a in row.get("actions") or () if isinstance(a, dict)]
    for action in actions[:TIMELINE_ACTIONS]:
        audit = await view.store.audit_log(action_id=action["id"], limit=AUDIT_PER_ACTION)
        steps += _action_steps(action, audit)
    analysis = row.get("analysis")
    if isinstance(analysis, dict):
        error = analysis.get("error")
        steps.append(_step(analysis.get("created_at"), "analysis",
                           "analysed" if error is None else "analysis failed", why=error))
    kept = sorted((s for s in steps if s is not None), key=lambda s: s["at"])
    return {"steps": kept, "more_actions": max(0, len(actions) - TIMELINE_ACTIONS)}
