"""One action's page, its status fragment, and the decisions: approve, reject, and thaw
the cgroup a freeze holds."""

from __future__ import annotations

from quart import Blueprint, render_template, request
from quart.wrappers import Response

from ..api.decisions import decide
from ..api.fields import REASON_MAX, HttpError
from .pages import action_item, freeze_item
from .sessions import Session
from .web import RefusedError, UiState, html, redirect, unauthorized_fragment

__all__ = ["register"]


def register(bp: Blueprint, state: UiState) -> None:
    """Add the action routes to ``bp``."""

    async def action_page(action_id: int, session: Session, problem: str | None = None,
                          status: int = 200, reason: str = "") -> Response:
        row = await state.view.store.action(action_id) if 0 < action_id < 2**63 else None
        if row is None:
            raise RefusedError(404, f"No action has id {action_id}.")
        frozen = await state.view.store.freeze(action_id) if row["kind"] == "freeze" else None
        body = await render_template(
            "ui/action.html", session=session, action=action_item(row, state.wall()),
            freeze=None if frozen is None else freeze_item(frozen, state.wall()),
            may_decide=session.who.may("approver"), problem=problem, reason=reason,
            verb=request.args.get("verb"), reason_max=REASON_MAX)
        return html(body, status)

    @bp.get("/actions/<int:action_id>")
    async def action(action_id: int) -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        return await action_page(action_id, found[1])

    @bp.get("/fragments/actions/<int:action_id>")
    async def action_fragment(action_id: int) -> Response:
        found = state.session()
        if found is None:
            return unauthorized_fragment()
        row = await state.view.store.action(action_id) if 0 < action_id < 2**63 else None
        if row is None:
            raise RefusedError(404, f"No action has id {action_id}.")
        return html(await render_template("ui/_action_status.html",
                                          action=action_item(row, state.wall())))

    @bp.post("/actions/<int:action_id>")
    async def decide_action(action_id: int) -> Response:
        found = state.signed_in()
        fields = await state.form(found)
        session = found[1]
        verb = fields.get("verb")
        reason = fields.get("reason", "").strip()
        if verb not in ("approve", "reject", "thaw"):
            raise RefusedError(400, "Choose Approve, Reject or Thaw.")
        if not session.who.may("approver"):
            raise RefusedError(403, f"The token {session.who.name!r} has the role "
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
