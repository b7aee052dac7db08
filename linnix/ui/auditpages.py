"""The audit page: the audit log newest first, a page at a time, filtered by who
(the approver: the record's actor), by action and by event; and, on demand, a check
of the log's hash chain.

The filters are the store's (``audit_log``), as ``GET /audit`` uses them; every
record's detail is shown as text (it quotes process names and people's reasons).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from quart import Blueprint, render_template, request
from quart.wrappers import Response

from ..actions.store import ACTION_STATES
from ..api.fields import ACTOR_MAX, ID_MAX, unplain
from ..timefmt import rfc3339
from .sessions import Session
from .web import RefusedError, UiState, html

__all__ = ["AUDIT_PAGE", "EVENTS", "register"]

AUDIT_PAGE = 50  # records on one page
EVENT_MAX = 64  # characters of an event filter (no event is longer)
# the events linnix records, offered as the event filter's suggestions
EVENTS = tuple(sorted({
    *(f"action.{status}" for status in ACTION_STATES), "action.note", "action.repeated",
    "action.freezing", "action.thawed", "action.thaw_failed", "action.auto_approval_withheld",
    "actions.paused", "actions.resumed", "incident.opened", "incident.resolved",
    "rules.reload", "daemon.started", "mode.changed", "guards.unprotected", "store.emptied",
    "audit.chained"}))


def _text(name: str, label: str, limit: int) -> str | None:
    """A text filter: None when not given; plain text of at most ``limit`` characters."""
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    if len(value) > limit:
        raise RefusedError(400, f"The {label} filter has at most {limit} characters.")
    if (found := unplain(value)) is not None:
        raise RefusedError(400, f"The {label} filter must be plain text: it has {found[1]}.")
    return value


def _id(name: str, label: str) -> int | None:
    """An id filter: None when not given; a whole number from 1 to ID_MAX."""
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= ID_MAX:
        raise RefusedError(400, f"The {label} must be a whole number from 1 to {ID_MAX}, "
                                f"not {value[:40]!r}.")
    return int(value)


def filters() -> dict[str, Any]:
    """The request's filters (refused with a 400 page when one is not valid)."""
    return {"actor": _text("actor", "who", ACTOR_MAX), "event": _text("event", "event",
                                                                      EVENT_MAX),
            "action": _id("action", "action id"), "before": _id("before", "record id")}


def _shown(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def audit_item(row: dict[str, Any]) -> dict[str, Any]:
    """One record as its row: its time in RFC 3339, its detail as ``key: value`` texts."""
    stored = row.get("detail")
    detail: dict[str, Any] = stored if isinstance(stored, dict) else {}
    return {"id": row["id"], "time": rfc3339(float(row["at"])), "actor": row["actor"],
            "event": row["event"], "action_id": row.get("action_id"),
            "incident_id": row.get("incident_id"),
            "detail": [(str(k), _shown(v)) for k, v in detail.items()]}


def link(chosen: dict[str, Any], path: str = "/ui/audit", **changes: object) -> str:
    """The address of ``path`` with the chosen filters, changed by ``changes``."""
    query = {k: v for k, v in {**chosen, **changes}.items() if v is not None}
    return path + (f"?{urlencode(query)}" if query else "")


def verdict_item(verdict: Any) -> dict[str, Any]:
    """What :meth:`Store.verify_chain` found, as the page says it."""
    return {"holds": verdict.holds, "rows": verdict.rows, "first": verdict.first_id,
            "head_id": verdict.head.id, "head": verdict.head.hash,
            "broken_at": verdict.broken_at, "problem": verdict.problem}


def register(bp: Blueprint, state: UiState) -> None:
    """Add the audit routes to ``bp``."""
    checking = [False]  # one check of the chain at a time: it reads every record

    async def audit_page(session: Session, verdict: dict[str, Any] | None = None,
                         problem: str | None = None) -> Response:
        chosen = filters()
        rows = await state.view.store.audit_log(
            limit=AUDIT_PAGE, before=chosen["before"], action_id=chosen["action"],
            event=chosen["event"], actor=chosen["actor"])
        where = {k: v for k, v in chosen.items() if k != "before"}
        older = link(where, before=rows[-1]["id"]) if len(rows) == AUDIT_PAGE else None
        return html(await render_template(
            "ui/audit.html", session=session, rows=[audit_item(r) for r in rows],
            chosen=chosen, filtered=any(v is not None for v in where.values()),
            older=older, newest=link(where) if chosen["before"] is not None else None,
            events=EVENTS, actor_max=ACTOR_MAX, event_max=EVENT_MAX, verdict=verdict,
            problem=problem, link=link, where=where,
            verify=link(chosen, "/ui/audit/verify")))  # its answer: the same page

    @bp.get("/audit")
    async def audit() -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        return await audit_page(found[1])

    @bp.post("/audit/verify")
    async def verify() -> Response:
        found = state.signed_in()
        await state.form(found)
        if checking[0]:
            return await audit_page(found[1], problem="A check of the chain is under way; "
                                                      "try again in a moment.")
        checking[0] = True  # the event loop's one thread: no other request is between
        try:
            verdict = await state.view.store.verify_chain()
        finally:
            checking[0] = False
        return await audit_page(found[1], verdict=verdict_item(verdict))
