"""What the action manager is given and what it answers with: its policy, the target of
a proposal, and the errors a decision can end in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from .pause import Pause

__all__ = [
    "ActionConflictError", "ActionNotFoundError", "ActionPolicy", "ActionsPausedError",
    "NotFrozenError", "NotPausedError", "RateLimitedError", "Target",
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


class NotFrozenError(Exception):
    """The action holds no freeze in force: there is nothing to thaw."""

    def __init__(self, action_id: int, why: str) -> None:
        super().__init__(f"action {action_id} holds no active freeze: {why}")


@attrs.frozen
class ActionPolicy:
    """What the configuration says about actions."""

    mode: str = "monitor"  # or enforce
    ttl_s: float = 300.0
    rate_limit: int = 6  # executions per minute
    kill_grace_s: float = 5.0
    degraded_window_s: float = 60.0
    auto: frozenset[str] = frozenset()  # reversible kinds run without approval
    freeze_ttl_s: float | None = None  # a freeze thaws after this at the latest; None: ttl_s
    cgroup_kills_per_unit: int = 3  # kill_cgroup executions per unit per KILL_WINDOW_S

    @property
    def freeze_for_s(self) -> float:
        """How long a freeze may last at most (never longer than a decision may take)."""
        return self.ttl_s if self.freeze_ttl_s is None else min(self.freeze_ttl_s, self.ttl_s)


@attrs.frozen
class Target:
    """A process an action was proposed for, as the engine knew it."""

    pid: int
    comm: str | None
    start: float | None  # engine clock
    exe: str | None = None  # the executable it was started from, recorded at exec
