"""Deciding on a proposed action: approve, reject or thaw, with the errors people read.

The API's ``POST /actions/<id>/approve|reject|thaw`` and the dashboard's forms
both go through :func:`decide`, so that a decision made in a browser is the
same decision, refused for the same reasons in the same words, as one made
with ``curl`` or ``linnix actions approve``.  A refusal is an
:class:`~linnix.api.fields.HttpError` (status, short error, detail).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, NoReturn

from ..actions import (
    ActionConflictError,
    ActionNotFoundError,
    ActionsPausedError,
    NotFrozenError,
    RateLimitedError,
)
from ..actions.pause import Pause
from .context import DaemonView
from .fields import check_id, fail

__all__ = ["VERBS", "decide"]

VERBS = ("approve", "reject", "thaw")

# Why an action that is not pending cannot be decided on, by its status ({by}: who decided).
_NOT_PENDING = {
    "approved": "it was already approved{by}",
    "executing": "it was already approved{by} and is executing",
    "succeeded": "it was already approved{by} and executed (succeeded)",
    "failed": "it was already approved{by} and executed (failed)",
    "rejected": "it was already rejected{by}",
    "expired": "it expired: {why}",
    "refused": "a safety guard refused it",
    "recorded": "it was only recorded; it never executes",
}


async def decide(view: DaemonView, action_id: int, verb: str, who: str,
                 reason: str | None) -> dict[str, Any]:
    """``verb`` (one of :data:`VERBS`) action ``action_id`` as ``who``; the action's row
    after it.  Raises :class:`~linnix.api.fields.HttpError` when it cannot be done."""
    check_id(action_id, "action")
    manager = view.actions
    try:
        if verb == "approve":
            return await manager.approve(action_id, who, reason)
        if verb == "thaw":
            return await manager.thaw(action_id, who, reason)
        return await manager.reject(action_id, who, reason)
    except ActionNotFoundError:
        fail(404, "not found", f"no action has id {action_id}")
    except NotFrozenError as err:
        fail(409, "conflict", str(err))
    except ActionConflictError as err:
        await _conflict(view, action_id, err.status)
    except ActionsPausedError as err:
        fail(409, "conflict", f"action {action_id} cannot be approved: {_paused(err.pause)}"
             "; resume them first (POST /actions/resume)",
             extra={"paused": err.pause.to_json()})
    except RateLimitedError as err:
        wait = max(1, math.ceil(err.retry_after))
        fail(429, "rate limited",
             f"the action rate limit is reached; retry in {wait}s",
             headers={"Retry-After": str(wait)}, extra={"retry_after": wait})


def _paused(pause: Pause) -> str:
    """A pause in a sentence: by whom, since and until when (UTC), why."""
    def utc(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")

    until = f" until {utc(pause.until)}" if pause.until is not None else ""
    why = f" ({pause.reason})" if pause.reason else ""
    return f"every action is paused by {pause.by} since {utc(pause.since)}{until}{why}"


async def _conflict(view: DaemonView, action_id: int, status: str) -> NoReturn:
    row = await view.store.action(action_id)
    decided_by = row.get("decided_by") if row is not None else None
    by = f" by {decided_by}" if decided_by else ""
    # the store says why it expired: no decision in time, or the target exited
    reason = ((row.get("reason") if row is not None else None)
              or "nobody decided before its deadline")
    why = _NOT_PENDING.get(status, "its status is {status}").format(by=by, status=status,
                                                                     why=reason)
    fail(409, "conflict", f"action {action_id} is not pending: {why}",
         extra={"status": status})
