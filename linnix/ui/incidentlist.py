"""The incidents page (``/ui/incidents``): the store's incidents, newest first, filtered
(open only, rule, severity) and paged with the store's ``before`` cursor; its first
page's list (``/ui/fragments/incidents``) is fetched again when incidents are pushed."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, render_template
from quart.wrappers import Response

from .alertdata import (
    FILTER_MAX,
    INCIDENTS_PAGE,
    SEVERITIES,
    IncidentFilter,
    incident_row,
)
from .alertpages import query_filter
from .overview import LIVE_EVERY_S
from .web import UiState, html, unauthorized_fragment

__all__ = ["register"]


def register(bp: Blueprint, state: UiState) -> None:
    """Add the incidents page's routes to ``bp``."""

    async def listing(f: IncidentFilter) -> dict[str, Any]:
        rows = await state.view.store.incidents(
            open_only=f.open, limit=INCIDENTS_PAGE, before=f.before, rule=f.rule or None,
            severity=f.severity or None)
        older = int(rows[-1]["id"]) if len(rows) == INCIDENTS_PAGE else None
        return {"rows": [incident_row(r) for r in rows], "older": older,
                "rules": sorted(str(r.get("name")) for r in state.view.rules()),
                "rules_loaded": state.view.dashboard_status().get("rules")}

    @bp.get("/incidents")
    async def incidents() -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        f = query_filter(IncidentFilter)
        return html(await render_template(
            "ui/incidents.html", session=found[1], f=f, page=await listing(f),
            severities=SEVERITIES, every=LIVE_EVERY_S, filter_max=FILTER_MAX))

    @bp.get("/fragments/incidents")
    async def incidents_fragment() -> Response:
        if state.session() is None:
            return unauthorized_fragment()
        f = query_filter(IncidentFilter)
        return html(await render_template("ui/_incidents.html", f=f, page=await listing(f)))
