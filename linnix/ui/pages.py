"""What the dashboard's templates show, computed from the daemon's view.

Every number is formatted here, so that the templates only place text: a value
that was not measured becomes "—", never 0.  Process data (names, command
lines, paths, messages) passes through as it is: the templates escape it.
"""

from __future__ import annotations

import math
from typing import Any

from ..analysis.render import fact_lines, model_part
from ..timefmt import rfc3339
from .context import DashboardView

__all__ = ["NOT_MEASURED", "ACTIONS_SHOWN", "analysis_item", "freeze_item", "incident_item",
           "live", "measured", "model_state", "number", "time_left"]

NOT_MEASURED = "—"
ACTIONS_SHOWN = 50  # pending actions listed on the overview
# the latest host values beside the charts: (series, label, unit)
HOST_VALUES = (("cpu_pct", "CPU", "%"), ("mem_used_pct", "Memory", "%"),
               ("psi_cpu_some", "CPU pressure (some)", "%"),
               ("psi_mem_some", "Memory pressure (some)", "%"),
               ("psi_mem_full", "Memory pressure (full)", "%"),
               ("psi_io_some", "I/O pressure (some)", "%"),
               ("psi_io_full", "I/O pressure (full)", "%"))


def measured(value: float | None, unit: str = "", digits: int = 1) -> str:
    """``value`` with ``digits`` decimals and its unit, or "—" when not measured."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NOT_MEASURED
    return f"{value:,.{digits}f}{unit}"


def number(value: int | None) -> str:
    """A count with thousands separators, or "—" when not measured."""
    return NOT_MEASURED if value is None else f"{value:,}"


def time_left(expires_at: float | None, now: float) -> str:
    """How long an action waits for a decision, in words."""
    if expires_at is None:
        return "no deadline"
    left = math.ceil(expires_at - now)
    if left <= 0:
        return "expiring now"
    return f"{_minutes(left)} left"


def _minutes(seconds: int) -> str:
    """A whole number of seconds as ``Xm YYs`` (``Ys`` under a minute)."""
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


def target(row: dict[str, Any]) -> str:
    """An action's target as people name it: ``comm [pid]`` or its cgroup."""
    if row.get("pid") is not None:
        return f"{row.get('comm') or '?'} [{row['pid']}]"
    return str(row.get("cgroup") or "the host")


def action_item(row: dict[str, Any], now: float) -> dict[str, Any]:
    """One action as its row on a page."""
    return {"id": row["id"], "kind": row["kind"], "rule": row["rule"], "status": row["status"],
            "target": target(row), "exe": row.get("exe"), "time": row.get("time"),
            "pid": row.get("pid"),  # the process page's link (None: a cgroup's, the host's)
            "incident_id": row.get("incident_id"),
            "left": time_left(row.get("expires_at"), now), "reason": row.get("reason"),
            "decided_by": row.get("decided_by"), "result": row.get("result")}


def freeze_item(row: dict[str, Any], now: float) -> dict[str, Any]:
    """A freeze an action made (a row of the store's ``freezes``), as a page shows it."""
    thawed = row.get("thawed_at")
    return {"action_id": row["action_id"], "cgroup": row["cgroup"],
            "since": rfc3339(float(row["frozen_at"])),
            "left": _minutes(max(0, math.ceil(float(row["thaw_by"]) - now))),
            "thawed": None if thawed is None else rfc3339(float(thawed)),
            "thaw_reason": row.get("thaw_reason")}


def host_now(history: dict[str, Any]) -> list[dict[str, str]]:
    """The latest host sample's values, labelled."""
    times = history.get("t") or []
    out = []
    for name, label, unit in HOST_VALUES:
        column = history.get(name) or []
        value = column[-1] if times and column else None
        out.append({"name": name, "label": label, "value": measured(value, unit)})
    return out


async def live(view: DashboardView, now: float) -> dict[str, Any]:
    """The overview's live part: status, alerts, actions waiting, the host's latest values."""
    status = view.dashboard_status()
    alerts = view.alerts()
    # each firing alert links to its incident by the id the view gives (None: not stored)
    firing = [{**a, "incident_id": a.get("incident_id")} for a in alerts
              if a.get("state") == "firing"]
    pending_alerts = [a for a in alerts if a.get("state") != "firing"]
    rows = await view.store.actions(status="pending", limit=ACTIONS_SHOWN)
    frozen = (await view.store.active_freezes())[:ACTIONS_SHOWN]
    pause = (status.get("paused") or {}).get("paused")  # absent: actions are active
    return {
        "mode": status.get("mode"),
        "paused_by": pause.get("by") if pause else None,
        "source": status.get("source") or NOT_MEASURED,
        "events": number(status.get("events")),
        "lost": number(status.get("lost")),
        "processes": number(status.get("processes")),
        "rules": status.get("rules"),
        "firing": firing,
        "pending_alerts": pending_alerts,
        "actions": [action_item(r, now) for r in rows],
        "frozen": [freeze_item(r, now) for r in frozen],
        "host": host_now(view.host_history()),
    }


def _root_exe(row: dict[str, Any]) -> str | None:
    """The executable of the incident's process: its snapshot's root, when that is it."""
    subtree = row.get("subtree") or []
    root = subtree[0] if subtree and isinstance(subtree[0], dict) else {}
    if row.get("pid") is None or root.get("pid") != row["pid"]:
        return None
    exe = root.get("exe")
    return str(exe) if exe else None


def _incident_target(row: dict[str, Any]) -> str:
    """``comm [pid]``; else the cgroup (a cgroup rule's label) or the host."""
    if row.get("pid") is not None:
        return target(row)
    labels = row.get("labels")
    cgroup = labels.get("cgroup") if isinstance(labels, dict) else None
    return str(row.get("comm") or cgroup or "the host")


def incident_item(row: dict[str, Any]) -> dict[str, Any]:
    """An incident's summary as its page shows it (times in RFC 3339, UTC)."""
    resolved = row.get("resolved_at")
    return {"id": row["id"], "rule": row["rule"], "severity": row["severity"],
            "scope": row.get("scope"), "target": _incident_target(row),
            "pid": row.get("pid"),
            "exe": _root_exe(row), "opened": row.get("time"),
            "state": "open" if resolved is None else "resolved",
            "resolved": None if resolved is None else rfc3339(float(resolved)),
            "resolved_reason": row.get("resolved_reason"), "message": row.get("message"),
            "actions": [{"id": a["id"], "kind": a["kind"], "status": a["status"]}
                        for a in row.get("actions") or []]}


def model_state(part: dict[str, Any] | None) -> str | None:
    """What became of the model's part: pending, failed, unverified or verified (None:
    no model was asked)."""
    if not part:
        return None
    if part.get("pending"):
        return "pending"
    if part.get("error") is not None:
        return "failed"
    return "verified" if part.get("verified") else "unverified"


def analysis_item(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """An incident's stored analysis as its page shows it: each fact with its id, then
    the model's part, labelled (None: never analysed).  Lines are those of
    ``linnix incidents show``; the template escapes them."""
    if stored is None:
        return None
    analysis = stored.get("analysis")
    if analysis is None:
        return {"time": stored.get("time"), "error": str(stored.get("error")),
                "facts": [], "model": None}
    lines = model_part(analysis)
    state = model_state(analysis.get("model"))
    return {"time": stored.get("time"), "error": None, "analyst": analysis.get("analyst"),
            "facts": [{"id": fid, "line": line} for fid, line in fact_lines(analysis)],
            "model": None if state is None else {"state": state, "label": lines[0],
                                                  "lines": lines[1:]}}
