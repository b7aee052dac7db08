"""The overview page, its live part (``/ui/fragments/live``) and the host's chart data
(``/ui/host.json``)."""

from __future__ import annotations

from quart import Blueprint, render_template
from quart.wrappers import Response

from ..api.stream import encode_json
from .pages import live
from .web import UiState, html, unauthorized_fragment

__all__ = ["LIVE_EVERY_S", "register"]

# how often the overview's live part is fetched again with no push (ui/push.py): the
# fallback that keeps a page whose stream is down from staying stale for long
LIVE_EVERY_S = 30


def register(bp: Blueprint, state: UiState) -> None:
    """Add the overview's routes to ``bp``."""

    @bp.get("/")
    async def overview() -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        data = await live(state.view, state.wall())
        return html(await render_template("ui/overview.html", session=found[1], live=data,
                                          every=LIVE_EVERY_S))

    @bp.get("/fragments/live")
    async def live_fragment() -> Response:
        found = state.session()
        if found is None:
            return unauthorized_fragment()
        data = await live(state.view, state.wall())
        return html(await render_template("ui/_live.html", session=found[1], live=data))

    @bp.get("/host.json")
    async def host() -> Response:
        if state.session() is None:
            return Response(encode_json({"error": "unauthorized", "detail": "not signed in"}),
                            status=401, content_type="application/json")
        return Response(encode_json(state.view.host_history()),
                        content_type="application/json")
