"""Actions: proposals, safety guards, executors (through pidfds) and their lifecycle."""

from .guards import Guards, Identity, identify
from .manager import ActionManager
from .policy import (
    ActionConflictError,
    ActionNotFoundError,
    ActionPolicy,
    ActionsPausedError,
    NotFrozenError,
    NotPausedError,
    RateLimitedError,
    Target,
)

__all__ = [
    "ActionConflictError", "ActionManager", "ActionNotFoundError", "ActionPolicy",
    "ActionsPausedError", "Guards", "Identity", "NotFrozenError", "NotPausedError",
    "RateLimitedError", "Target", "identify",
]
