"""One incident's page: its summary, the rule's source, the values its condition read
(charted from ``/ui/incidents/ID/values.json``), the subtree snapshot, the timeline,
the analysis, and "Analyse now"."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, render_template
from quart.wrappers import Response

from ..api.analyses import analyze_now
from ..api.fields import HttpError
from ..api.stream import encode_json
from .incidentdata import rule_source_item, subtree_item, timeline, values_item, values_json
from .pages import analysis_item, incident_item
from .sessions import Session
from .web import RefusedError, UiState, html, redirect

__all__ = ["VALUES_EVERY_S", "register"]

VALUES_EVERY_S = 30  # an open incident's charts are fetched again (its trail is saved so)


def _json(body: object, status: int = 200) -> Response:
    return Response(encode_json(body), status=status, content_type="application/json")


def register(bp: Blueprint, state: UiState) -> None:
    """Add the incident routes to ``bp``."""

    async def incident_row(incident_id: int) -> dict[str, Any] | None:
        if not 0 < incident_id < 2**63:
            return None
        row: dict[str, Any] | None = await state.view.store.incident(incident_id)
        return row

    async def incident_page(incident_id: int, session: Session) -> Response:
        row = await incident_row(incident_id)
        if row is None:
            raise RefusedError(404, f"No incident has id {incident_id}.")
        context = row["context"] if isinstance(row.get("context"), dict) else {}
        return html(await render_template(
            "ui/incident.html", session=session, incident=incident_item(row),
            analysis=analysis_item(row.get("analysis")),
            may_analyze=session.who.may("approver"),
            source=rule_source_item(state.view, row["rule"]),
            condition=context.get("condition"), values=values_item(row),
            values_every=VALUES_EVERY_S if row.get("resolved_at") is None else 0,
            subtree=subtree_item(row), timeline=await timeline(state.view, row)))

    @bp.get("/incidents/<int:incident_id>")
    async def incident(incident_id: int) -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        return await incident_page(incident_id, found[1])

    @bp.get("/incidents/<int:incident_id>/values.json")
    async def incident_values(incident_id: int) -> Response:
        if state.session() is None:
            return _json({"error": "unauthorized", "detail": "not signed in"}, 401)
        row = await incident_row(incident_id)
        if row is None:
            return _json({"error": "not_found",
                          "detail": f"no incident has id {incident_id}"}, 404)
        return _json(values_json(row))

    @bp.post("/incidents/<int:incident_id>/analyze")
    async def analyze_incident(incident_id: int) -> Response:
        found = state.signed_in()
        await state.form(found)
        who = found[1].who
        if not who.may("approver"):  # as the API's POST /incidents/{id}/analyze
            raise RefusedError(403, f"The token {who.name!r} has the role {who.role}; "
                          "analysing needs approver or admin.")
        if not 0 < incident_id < 2**63:
            raise RefusedError(404, f"No incident has id {incident_id}.")
        try:
            await analyze_now(state.view, incident_id)
        except HttpError as err:
            raise RefusedError(err.status, f"Not analysed: {err.detail}.") from None
        return redirect(f"/ui/incidents/{incident_id}", 303)
