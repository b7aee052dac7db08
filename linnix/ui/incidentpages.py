"""One incident's page with its analysis, and "Analyse now"."""

from __future__ import annotations

from quart import Blueprint, render_template
from quart.wrappers import Response

from ..api.analyses import analyze_now
from ..api.fields import HttpError
from .pages import analysis_item, incident_item
from .sessions import Session
from .web import RefusedError, UiState, html, redirect

__all__ = ["register"]


def register(bp: Blueprint, state: UiState) -> None:
    """Add the incident routes to ``bp``."""

    async def incident_page(incident_id: int, session: Session) -> Response:
        row = await state.view.store.incident(incident_id) if 0 < incident_id < 2**63 \
            else None
        if row is None:
            raise RefusedError(404, f"No incident has id {incident_id}.")
        return html(await render_template(
            "ui/incident.html", session=session, incident=incident_item(row),
            analysis=analysis_item(row.get("analysis")),
            may_analyze=session.who.may("approver")))

    @bp.get("/incidents/<int:incident_id>")
    async def incident(incident_id: int) -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        return await incident_page(incident_id, found[1])

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
