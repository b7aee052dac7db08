"""What the action manager is given and what it answers with: its policy, the target of
a proposal, and the errors a decision can end in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from .pause import Pause

__all__ = [
    "ActionConflictError", "ActionNotFoundError", "ActionPolicy", "ActionsPausedError",
    "NotPausedError", "RateLimitedError", "Target",
]


class ActionNotFoundError(LookupError):
    """No action has this id."""


class ActionConflictError(Exception):
    """The action is not pending (already decided, expired or executed)."""

    def __init__(self, action_id: int, status: str) -> None:
        super().__init__(f"action {action_id} is {status}, not pending")
        self.status = status


class RateLimitedError(Exception):
    """Executing now would exceed the rate limit."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit reached; retry in {retry_after:.0f}s")
        self.retry_after = retry_after


class ActionsPausedError(Exception):
    """Every action is paused: nothing may be approved until they are resumed."""

    def __init__(self, pause: Pause) -> None:
        super().__init__(f"actions are paused by {pause.by}")
        self.pause = pause


class NotPausedError(Exception):
    """Actions are not paused: there is nothing to resume."""

    def __init__(self) -> None:
        super().__init__("actions are not paused")


@attrs.frozen
class ActionPolicy:
    """What the configuration says about actions."""

    mode: str = "monitor"  # or enforce
    ttl_s: float = 300.0
    rate_limit: int = 6  # executions per minute
    kill_grace_s: float = 5.0
    degraded_window_s: float = 60.0


@attrs.frozen
class Target:
    """A process an action was proposed for, as the engine knew it."""

    pid: int
    comm: str | None
    start: float | None  # engine clock
    exe: str | None = None  # the executable it was started from, recorded at exec
