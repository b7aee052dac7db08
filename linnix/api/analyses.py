"""Analysing a stored incident again, on request.

The API's ``POST /incidents/<id>/analyze`` and the dashboard's "Analyse now"
button both go through :func:`analyze_now`, so that an analysis asked for in
a browser is made, stored and handed to the model exactly as one asked for
with ``curl``.  It only ever makes and stores an analysis: nothing here
reaches the action manager.
"""

from __future__ import annotations

from typing import Any

from ..analysis import analyze_stored
from .context import DaemonView
from .fields import check_id, fail

__all__ = ["analyze_now"]


async def analyze_now(view: DaemonView, incident_id: int) -> dict[str, Any] | None:
    """Make the built-in analysis of incident ``incident_id``, store it (replacing an
    earlier one) and queue the incident for the model, if one is configured; the stored
    analysis.  An unknown incident is an ``HttpError`` 404."""
    store = view.store
    check_id(incident_id, "incident")
    found = await store.call(analyze_stored, store.store, incident_id)
    if found is None:
        fail(404, "not found", f"no incident has id {incident_id}")
    await store.save_analysis(incident_id, found)
    stored: dict[str, Any] | None = await store.analysis(incident_id)
    await view.ask_model(incident_id)  # its part is stored when it comes, if configured
    return stored
