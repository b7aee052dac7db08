"""The dashboard's blueprint: what every page shares, and the page modules.

:func:`dashboard` makes the blueprint the API's app serves under ``/ui/``.  Each
page module (``signin``, ``overview``, ``actionpages``, ``incidentpages``) has a
``register(bp, state)`` that adds its routes; a new page is a new module listed in
``PAGES`` (and a link in ``nav.NAV``).  A page opened without a session sends the
browser to the sign-in form.

Pages are whole HTML documents; ``/ui/fragments/...`` are the parts htmx swaps in
(server-rendered and escaped like the pages); ``*.json`` are what the charts draw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from quart import Blueprint, render_template, request
from quart.wrappers import Response

from ..api.tokens import TokenBook
from . import (
    actionpages,
    alertpages,
    auditpages,
    incidentlist,
    incidentpages,
    overview,
    processpages,
    push,
    rulepages,
    signin,
)
from .context import DashboardView
from .nav import NAV, current
from .security import page_headers
from .web import RefusedError, UiState

__all__ = ["PAGES", "dashboard"]

# every page module, in the order its routes are added
PAGES: tuple[Callable[[Blueprint, UiState], None], ...] = (
    signin.register, overview.register, actionpages.register, incidentpages.register,
    push.register, alertpages.register, incidentlist.register,
    rulepages.register, auditpages.register, processpages.register,
)


def dashboard(view: DashboardView, book: TokenBook, *,
              clock: Any = time.monotonic, wall: Any = time.time) -> Blueprint:
    """The blueprint of the dashboard over ``view``; sign-in with a token of ``book``.
    ``clock`` times sessions and codes, ``wall`` is the time actions' deadlines are in."""
    bp = Blueprint("ui", __name__, url_prefix="/ui", static_folder="static",
                   static_url_path="/static", template_folder="templates")
    state = UiState(view, book, clock, wall)

    @bp.after_app_request
    async def headers(response: Response) -> Response:
        if request.path == "/ui" or request.path.startswith("/ui/"):
            response.headers.update(page_headers(request.path))
        return response

    @bp.context_processor
    async def navigation() -> dict[str, Any]:
        return {"nav": NAV, "nav_current": current(request.path)}

    @bp.errorhandler(RefusedError)
    async def refused(err: RefusedError) -> Response:
        found = state.session()
        body = await render_template("ui/refused.html", message=err.message,
                                     session=found[1] if found else None)
        return Response(body, status=err.status, headers=err.headers,
                        content_type="text/html; charset=utf-8")

    for register in PAGES:
        register(bp, state)
    return bp
