"""The dashboard's defences that are not sign-in itself: headers, cookies, form checks.

* Every response under ``/ui/`` carries :data:`CSP` (scripts and styles only
  from the agent itself: no inline script, no ``eval``, no framing) and
  :data:`HEADERS`; pages are never cached, static files are revalidated.
* The session cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict``
  (no other site's page sends it), scoped to ``/ui/``, and ``Secure`` when the
  page came over TLS.
* A form that changes something is accepted only with the session's CSRF
  token, and only when the browser does not say it came from another origin
  (``Origin``, ``Sec-Fetch-Site``): the sign-in form has no session yet, so the
  second check is its only one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

__all__ = ["COOKIE", "CSP", "HEADERS", "clear_session_cookie", "cross_site", "page_headers",
           "set_session_cookie"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
    "Cross-Origin-Opener-Policy": "same-origin",
}
COOKIE = "linnix_session"
COOKIE_PATH = "/ui/"


def page_headers(path: str) -> dict[str, str]:
    """The headers of a response to ``path``: :data:`HEADERS` and its caching."""
    static = path.startswith("/ui/static/")
    return {**HEADERS, "Cache-Control": "no-cache" if static else "no-store"}


def set_session_cookie(response: Any, sid: str, secure: bool) -> None:
    """Give ``response`` the session cookie (``secure``: the request came over TLS)."""
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", secure=secure,
                        path=COOKIE_PATH)


def clear_session_cookie(response: Any) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")


def cross_site(headers: Any, scheme: str, host: str) -> str | None:
    """Why a form post with these request headers (a mapping) did not come from this
    dashboard, or None when nothing says so.  A browser sends ``Sec-Fetch-Site`` with
    every request and ``Origin`` with every POST; other clients send neither.  Under
    ``Referrer-Policy: no-referrer`` a browser sends ``Origin: null`` even for its own
    forms, so "null" counts only when ``Sec-Fetch-Site`` does not vouch for the form."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"the browser says the form came from another site ({site})"
    origin = headers.get("Origin")
    if origin is None or (origin == "null" and site is not None):
        return None
    if origin == "null":
        return "the browser hid where the form came from (Origin: null)"
    parts = urlsplit(origin)
    if parts.scheme != scheme or (parts.netloc or "").lower() != host.lower():
        return f"the form came from {origin}, not from this dashboard"
    return None
