"""The alerts page (``/ui/alerts``): the active alerts and the history of transitions,
filtered; its list part (``/ui/fragments/alerts``) is fetched again when alerts are
pushed (ui/push.py)."""

from __future__ import annotations

from typing import TypeVar

from quart import Blueprint, render_template, request
from quart.wrappers import Response

from .alertdata import (
    FILTER_MAX,
    SEVERITIES,
    STATES,
    AlertFilter,
    FilterError,
    IncidentFilter,
    alerts_page,
)
from .overview import LIVE_EVERY_S
from .web import RefusedError, UiState, html, unauthorized_fragment

__all__ = ["query_filter", "register"]


F = TypeVar("F", AlertFilter, IncidentFilter)


def query_filter(kind: type[F]) -> F:
    """The page's filter from the request's query; a 400 page saying why when it cannot
    be applied (the alerts and the incidents pages)."""
    try:
        return kind.of(request.args)
    except FilterError as err:
        raise RefusedError(400, str(err)) from None


def register(bp: Blueprint, state: UiState) -> None:
    """Add the alerts page's routes to ``bp``."""

    @bp.get("/alerts")
    async def alerts() -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        f = query_filter(AlertFilter)
        return html(await render_template(
            "ui/alerts.html", session=found[1], f=f, page=alerts_page(state.view, f),
            severities=SEVERITIES, states=STATES, every=LIVE_EVERY_S,
            filter_max=FILTER_MAX))

    @bp.get("/fragments/alerts")
    async def alerts_fragment() -> Response:
        if state.session() is None:
            return unauthorized_fragment()
        f = query_filter(AlertFilter)
        return html(await render_template("ui/_alerts.html", f=f,
                                          page=alerts_page(state.view, f)))
