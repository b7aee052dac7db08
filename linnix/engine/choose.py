"""Choosing an action's target: ``top(METRIC)`` and ``top(METRIC, unless EXPR)``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .proctable import Proc

__all__ = ["top"]


def top(procs: Iterable[Proc], host: object, read: Any, now: float,
        exclude: Any = None) -> Proc | None:
    """The process with the largest value read (ties: lowest pid), or None.

    Only a positive value counts: a process that forked nothing in the last
    second is not the top forker, even when nobody forked, so then there is
    no target rather than an arbitrary one.  ``exclude`` (``top(M, unless
    EXPR)``) leaves out the processes for which it holds; one for which it
    cannot be judged (it raised) is left out too, since a target must be known
    to be allowed.
    """
    best: Proc | None = None
    best_value = 0.0
    for p in procs:  # one pass; no need to sort the pids for the ties
        value = read(p, host, now)
        if value is None or value <= 0 \
                or (exclude is not None and _excluded(exclude, p, host, now)):
            continue
        if best is None or value > best_value or (value == best_value and p.pid < best.pid):
            best, best_value = p, value
    return best


def _excluded(exclude: Any, p: Proc, host: object, now: float) -> bool:
    try:
        return bool(exclude(p, host, now))
    except Exception:  # a bug in generated code must not choose a target
        return True
