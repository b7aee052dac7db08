"""The rules page (every loaded rule, filtered by name and tag), one rule's page (its
text as loaded, its explanation, its last firing), and the reload button.

A reload goes through the same code as the API's ``POST /rules/reload``
(``view.reload``, audited under the session's token name) and needs the same role,
admin.  Its outcome is shown on the rules page it answers with: the rules taken,
or the checker's diagnostics and the running rules, which a refused reload keeps.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, render_template, request
from quart.wrappers import Response

from ..api.fields import NOTE_MAX, HttpError, text_field
from .ruledata import DIAGNOSTICS_SHOWN, Filters, reload_outcome, rule_detail, rule_list
from .sessions import Session
from .web import RefusedError, UiState, html

__all__ = ["register"]

RELOAD_NEEDS = "admin"  # as the API's POST /rules/reload (a POST not in its table)


def register(bp: Blueprint, state: UiState) -> None:
    """Add the rules routes to ``bp``."""

    async def rules_page(session: Session, *, outcome: dict[str, Any] | None = None,
                         problem: str | None = None, note: str = "",
                         status: int = 200) -> Response:
        filters = Filters(request.args.get("name"), request.args.get("tag"))
        return html(await render_template(
            "ui/rules.html", session=session, data=rule_list(state.view, filters),
            may_reload=session.who.may(RELOAD_NEEDS), outcome=outcome, problem=problem,
            note=note, note_max=NOTE_MAX, shown_max=DIAGNOSTICS_SHOWN), status)

    @bp.get("/rules")
    async def rules() -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        return await rules_page(found[1])

    @bp.get("/rules/<name>")
    async def rule(name: str) -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        detail = await rule_detail(state.view, name)
        if detail is None:
            raise RefusedError(404, f"No loaded rule is named {name!r}.")
        return html(await render_template("ui/rule.html", session=found[1], rule=detail))

    @bp.post("/rules/reload")
    async def reload() -> Response:
        found = state.signed_in()
        fields = await state.form(found)
        who = found[1].who
        if not who.may(RELOAD_NEEDS):
            raise RefusedError(403, f"The token {who.name!r} has the role {who.role}; "
                                    "reloading the rules needs admin.")
        sent = fields.get("note", "")
        try:  # the note is checked as the API checks one: plain text, one line
            note = text_field({"note": sent}, "note", required=False, limit=NOTE_MAX,
                              single_line=True)
        except HttpError as err:
            return await rules_page(found[1], problem=f"Not reloaded: {err.detail}.",
                                    note=sent[:NOTE_MAX], status=400)
        accepted, diagnostics = await state.view.reload(who.name, note)
        return await rules_page(found[1], outcome=reload_outcome(accepted, diagnostics),
                                status=200 if accepted else 422)
