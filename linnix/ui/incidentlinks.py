"""Which firing alerts have an incident: the overview links each to its page."""

from __future__ import annotations

from typing import Any

from .context import DashboardView

__all__ = ["link_incidents"]


async def link_incidents(view: DashboardView,
                         alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The firing alerts, each with the id of its open incident (``incident_id``; None
    when it has none: not stored yet, or the store could not take it).  An incident is
    the alert's when it is of the same rule, pid and start (those the responder keys
    its incidents by), the newest of them if there are several."""
    if not alerts:
        return alerts
    rows = await view.store.open_incidents()
    open_ids = {(r["rule"], r["pid"], r["start"]): r["id"] for r in rows}  # newest last
    return [{**a, "incident_id": open_ids.get((a.get("rule"), a.get("pid"), a.get("start")))}
            for a in alerts]
