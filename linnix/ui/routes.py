"""The dashboard's routes: sign-in and out, the overview, deciding on an action, an
incident and its analysis.

:func:`dashboard` makes the blueprint the API's app serves under ``/ui/``.  The
API's bearer-token check does not apply here: a page is opened with a session
cookie (:mod:`.sessions`), and a page opened without one sends the browser to
the sign-in form.  Only ``POST /ui/codes``, which ``linnix ui`` calls to get a
one-time sign-in link, takes the API's ``Authorization: Bearer`` header.

Pages are whole HTML documents; ``/ui/fragments/...`` are the parts htmx
swaps in (server-rendered and escaped like the pages); ``/ui/host.json`` is
what the charts draw.
"""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, render_template, request
from quart.wrappers import Response

from ..api.analyses import analyze_now
from ..api.decisions import decide
from ..api.fields import REASON_MAX, HttpError
from ..api.stream import encode_json
from ..api.tokens import Principal, TokenBook
from .context import DashboardView
from .pages import action_item, analysis_item, incident_item, live
from .security import (
    COOKIE,
    clear_session_cookie,
    cross_site,
    page_headers,
    set_session_cookie,
)
from .sessions import Codes, Failures, Session, Sessions

__all__ = ["dashboard"]

LIVE_EVERY_S = 2  # how often the overview's live part is fetched again
TOKEN_MAX = 512  # longer is no token (api.tokens' tokens have at most 512 characters)


class _RefusedError(Exception):
    """A request the dashboard answers with a page that says why (and a status)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def redirect(location: str, status: int = 303) -> Response:
    """Send the browser to ``location`` (303: GET it, whatever the request was)."""
    return Response("", status=status, headers={"Location": location})


class _State:
    """What the blueprint's routes share: the view, the token book, sign-in tables."""

    def __init__(self, view: DashboardView, book: TokenBook, clock: Any) -> None:
        self.view = view
        self.book = book
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

    def client(self) -> str:
        return str(request.remote_addr or "unknown")

    def check_failures(self) -> None:
        wait = self.failures.wait(self.client())
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            raise _RefusedError(429, f"Too many wrong tokens from this address: try again in "
                                f"{seconds} s.", {"Retry-After": str(seconds)})


def dashboard(view: DashboardView, book: TokenBook, *,
              clock: Any = time.monotonic, wall: Any = time.time) -> Blueprint:
    """The blueprint of the dashboard over ``view``; sign-in with a token of ``book``.
    ``clock`` times sessions and codes, ``wall`` is the time actions' deadlines are in."""
    bp = Blueprint("ui", __name__, url_prefix="/ui", static_folder="static",
                   static_url_path="/static", template_folder="templates")
    state = _State(view, book, clock)

    @bp.after_app_request
    async def headers(response: Response) -> Response:
        if request.path == "/ui" or request.path.startswith("/ui/"):
            response.headers.update(page_headers(request.path))
        return response

    @bp.errorhandler(_RefusedError)
    async def refused(err: _RefusedError) -> Response:
        found = state.session()
        body = await render_template("ui/refused.html", message=err.message,
                                     session=found[1] if found else None)
        return Response(body, status=err.status, headers=err.headers,
                        content_type="text/html; charset=utf-8")

    def signed_in() -> tuple[str, Session]:
        found = state.session()
        if found is None:
            raise _RefusedError(401, "Not signed in.")
        return found

    async def form(found: tuple[str, Session] | None) -> dict[str, str]:
        """The posted form, once it is known to come from this dashboard (and, with a
        session, to carry its CSRF token)."""
        why = cross_site(request.headers, request.scheme, request.host)
        if why is not None:
            raise _RefusedError(403, f"Refused: {why}.")
        fields = {k: v for k, v in (await request.form).items()}
        if found is not None and not found[1].csrf_ok(fields.get("csrf")):
            raise _RefusedError(403, "Refused: the form did not carry this session's CSRF "
                                "token. Reload the page and try again.")
        return fields

    def page_or_signin() -> tuple[str, Session] | Response:
        found = state.session()
        if found is None:
            return redirect("/ui/signin", 303)
        return found

    def html(body: str, status: int = 200) -> Response:
        return Response(body, status=status, content_type="text/html; charset=utf-8")

    # -- sign-in and out

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
        fields = await form(None)
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
        found = signed_in()
        await form(found)
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

    # -- the overview

    @bp.get("/")
    async def overview() -> Response:
        found = page_or_signin()
        if isinstance(found, Response):
            return found
        data = await live(state.view, wall())
        return html(await render_template("ui/overview.html", session=found[1], live=data,
                                          every=LIVE_EVERY_S))

    @bp.get("/fragments/live")
    async def live_fragment() -> Response:
        found = state.session()
        if found is None:  # htmx follows HX-Redirect: the page goes to the sign-in form
            return Response("", status=401, headers={"HX-Redirect": "/ui/signin"})
        data = await live(state.view, wall())
        return html(await render_template("ui/_live.html", session=found[1], live=data))

    @bp.get("/host.json")
    async def host() -> Response:
        if state.session() is None:
            return Response(encode_json({"error": "unauthorized", "detail": "not signed in"}),
                            status=401, content_type="application/json")
        return Response(encode_json(state.view.host_history()),
                        content_type="application/json")

    # -- one action: its page, and the decision

    async def action_page(action_id: int, session: Session, problem: str | None = None,
                          status: int = 200, reason: str = "") -> Response:
        row = await state.view.store.action(action_id) if 0 < action_id < 2**63 else None
        if row is None:
            raise _RefusedError(404, f"No action has id {action_id}.")
        body = await render_template(
            "ui/action.html", session=session, action=action_item(row, wall()),
            may_decide=session.who.may("approver"), problem=problem, reason=reason,
            verb=request.args.get("verb"), reason_max=REASON_MAX)
        return html(body, status)

    @bp.get("/actions/<int:action_id>")
    async def action(action_id: int) -> Response:
        found = page_or_signin()
        if isinstance(found, Response):
            return found
        return await action_page(action_id, found[1])

    @bp.get("/fragments/actions/<int:action_id>")
    async def action_fragment(action_id: int) -> Response:
        found = state.session()
        if found is None:
            return Response("", status=401, headers={"HX-Redirect": "/ui/signin"})
        row = await state.view.store.action(action_id) if 0 < action_id < 2**63 else None
        if row is None:
            raise _RefusedError(404, f"No action has id {action_id}.")
        return html(await render_template("ui/_action_status.html",
                                          action=action_item(row, wall())))

    @bp.post("/actions/<int:action_id>")
    async def decide_action(action_id: int) -> Response:
        found = signed_in()
        fields = await form(found)
        session = found[1]
        verb = fields.get("verb")
        reason = fields.get("reason", "").strip()
        if verb not in ("approve", "reject"):
            raise _RefusedError(400, "Choose Approve or Reject.")
        if not session.who.may("approver"):
            raise _RefusedError(403, f"The token {session.who.name!r} has the role "
                                f"{session.who.role}; deciding needs approver or admin.")
        if not reason or len(reason) > REASON_MAX:
            return await action_page(action_id, session, status=400, reason=reason[:REASON_MAX],
                                     problem=f"Say why, in at most {REASON_MAX} characters.")
        try:
            await decide(state.view, action_id, verb, session.who.name, reason)
        except HttpError as err:
            return await action_page(action_id, session, problem=err.detail,
                                     status=err.status, reason=reason)
        return redirect(f"/ui/actions/{action_id}", 303)

    # -- one incident and its analysis

    async def incident_page(incident_id: int, session: Session) -> Response:
        row = await state.view.store.incident(incident_id) if 0 < incident_id < 2**63 \
            else None
        if row is None:
            raise _RefusedError(404, f"No incident has id {incident_id}.")
        return html(await render_template(
            "ui/incident.html", session=session, incident=incident_item(row),
            analysis=analysis_item(row.get("analysis")),
            may_analyze=session.who.may("approver")))

    @bp.get("/incidents/<int:incident_id>")
    async def incident(incident_id: int) -> Response:
        found = page_or_signin()
        if isinstance(found, Response):
            return found
        return await incident_page(incident_id, found[1])

    @bp.post("/incidents/<int:incident_id>/analyze")
    async def analyze_incident(incident_id: int) -> Response:
        found = signed_in()
        await form(found)
        who = found[1].who
        if not who.may("approver"):  # as the API's POST /incidents/{id}/analyze
            raise _RefusedError(403, f"The token {who.name!r} has the role {who.role}; "
                                "analysing needs approver or admin.")
        if not 0 < incident_id < 2**63:
            raise _RefusedError(404, f"No incident has id {incident_id}.")
        try:
            await analyze_now(state.view, incident_id)
        except HttpError as err:
            raise _RefusedError(err.status, f"Not analysed: {err.detail}.") from None
        return redirect(f"/ui/incidents/{incident_id}", 303)

    return bp
