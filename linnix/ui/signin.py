"""Sign-in and out, and the one-time codes ``linnix ui`` asks for.

The API's bearer-token check does not apply to the dashboard: a page is opened
with a session cookie (:mod:`.sessions`).  Only ``POST /ui/codes`` takes the
API's ``Authorization: Bearer`` header.
"""

from __future__ import annotations

from quart import Blueprint, render_template, request
from quart.wrappers import Response

from ..api.stream import encode_json
from ..api.tokens import Principal
from .security import clear_session_cookie, set_session_cookie
from .web import UiState, html, redirect

__all__ = ["TOKEN_MAX", "register"]

TOKEN_MAX = 512  # longer is no token (api.tokens' tokens have at most 512 characters)


def register(bp: Blueprint, state: UiState) -> None:
    """Add the sign-in routes to ``bp``."""

    @bp.get("")
    async def bare() -> Response:
        return redirect("/ui/", 308)

    @bp.get("/signin")
    async def signin_page() -> Response:
        code = request.args.get("code")
        if state.session() is not None and code is None:
            return redirect("/ui/", 303)
        return html(await render_template("ui/signin.html", code=code,
                                          out=request.args.get("out") is not None))

    @bp.post("/signin")
    async def signin() -> Response:
        fields = await state.form(None)
        state.check_failures()
        who: Principal | None
        if "code" in fields:
            who = state.codes.take(fields["code"][:TOKEN_MAX])
            problem = ("This sign-in link has expired or was used already: run "
                       "'linnix ui' again for a new one.")
        else:
            token = fields.get("token", "").strip()
            who = state.book.identify(token) if 0 < len(token) <= TOKEN_MAX else None
            problem = ("That token is not valid. The admin's token is in api.token in the "
                       "daemon's state directory; 'linnix token add' makes named ones.")
        if who is None:
            state.failures.failed(state.client())
            return html(await render_template("ui/signin.html", code=None, out=False,
                                              problem=problem), 401)
        sid, _ = state.sessions.open(who)
        response = redirect("/ui/", 303)
        set_session_cookie(response, sid, request.scheme == "https")
        return response

    @bp.post("/signout")
    async def signout() -> Response:
        found = state.signed_in()
        await state.form(found)
        state.sessions.close(found[0])
        response = redirect("/ui/signin?out=1", 303)
        clear_session_cookie(response)
        return response

    @bp.post("/codes")
    async def codes() -> Response:
        """A one-time sign-in code for the holder of an API token (``linnix ui``)."""
        state.check_failures()
        scheme, _, given = (request.headers.get("Authorization") or "").strip().partition(" ")
        who = state.book.identify(given.strip()) if scheme.lower() == "bearer" else None
        if who is None:
            state.failures.failed(state.client())
            return Response(encode_json({"error": "unauthorized", "detail": "this request "
                                         "needs 'Authorization: Bearer <token>' with a valid "
                                         "token"}), status=401,
                            content_type="application/json",
                            headers={"WWW-Authenticate": 'Bearer realm="linnix"'})
        code = state.codes.make(who)
        return Response(encode_json({"code": code, "path": f"/ui/signin?code={code}",
                                     "expires_in": state.codes.ttl_s, "name": who.name}),
                        content_type="application/json")
