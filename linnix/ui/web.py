"""What every page module of the dashboard shares: the request's session, the
refusal page, redirects, forms with their CSRF check.

:class:`UiState` is built once by :func:`linnix.ui.routes.dashboard` and handed to
each page module's ``register(bp, state)``; a module adds its routes to the
blueprint and reads the daemon only through ``state.view``.
"""

from __future__ import annotations

from typing import Any

from quart import request
from quart.wrappers import Response

from ..api.tokens import TokenBook
from .context import DashboardView
from .security import COOKIE, cross_site
from .sessions import Codes, Failures, Session, Sessions

__all__ = ["RefusedError", "UiState", "html", "redirect", "unauthorized_fragment"]


class RefusedError(Exception):
    """A request the dashboard answers with a page that says why (and a status)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def redirect(location: str, status: int = 303) -> Response:
    """Send the browser to ``location`` (303: GET it, whatever the request was)."""
    return Response("", status=status, headers={"Location": location})


def html(body: str, status: int = 200) -> Response:
    """An HTML page or fragment."""
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def unauthorized_fragment() -> Response:
    """What a fragment answers without a session: htmx follows ``HX-Redirect``, so the
    page goes to the sign-in form."""
    return Response("", status=401, headers={"HX-Redirect": "/ui/signin"})


class UiState:
    """What the blueprint's routes share: the view, the token book, sign-in tables,
    the clocks (``clock`` times sessions and codes; ``wall`` is Unix time)."""

    def __init__(self, view: DashboardView, book: TokenBook, clock: Any, wall: Any) -> None:
        self.view = view
        self.book = book
        self.wall = wall
        self.sessions = Sessions(clock)
        self.codes = Codes(clock)
        self.failures = Failures(clock)

    def session(self) -> tuple[str, Session] | None:
        """The request's session, if its cookie names one whose token still holds."""
        sid = request.cookies.get(COOKIE)
        found = self.sessions.get(sid)
        if found is None or sid is None:
            return None
        if not self.book.holds(found.who):  # the token was revoked: so are its sessions
            self.sessions.close(sid)
            return None
        return sid, found

    def signed_in(self) -> tuple[str, Session]:
        """The session of a request that needs one (a POST): refused without."""
        found = self.session()
        if found is None:
            raise RefusedError(401, "Not signed in.")
        return found

    def page_or_signin(self) -> tuple[str, Session] | Response:
        """The session of a page's request, or the redirect to the sign-in form."""
        found = self.session()
        if found is None:
            return redirect("/ui/signin", 303)
        return found

    async def form(self, found: tuple[str, Session] | None) -> dict[str, str]:
        """The posted form, once it is known to come from this dashboard (and, with a
        session, to carry its CSRF token)."""
        why = cross_site(request.headers, request.scheme, request.host)
        if why is not None:
            raise RefusedError(403, f"Refused: {why}.")
        fields = {k: v for k, v in (await request.form).items()}
        if found is not None and not found[1].csrf_ok(fields.get("csrf")):
            raise RefusedError(403, "Refused: the form did not carry this session's CSRF "
                          "token. Reload the page and try again.")
        return fields

    def client(self) -> str:
        return str(request.remote_addr or "unknown")

    def check_failures(self) -> None:
        wait = self.failures.wait(self.client())
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            raise RefusedError(429, f"Too many wrong tokens from this address: try again in "
                          f"{seconds} s.", {"Retry-After": str(seconds)})
