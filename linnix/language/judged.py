"""Checks of conditions judged on one process at a time, apart from the rule's own.

``top(METRIC, unless EXPR)`` leaves out of an action's choice the processes for
which EXPR holds.  EXPR is true or false for each process on its own, so it
may not read a subtree total or a window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ..names import METRICS, Scope, Type, suggest
from . import nodes as n
from .infer import Uses, describe_dim

if TYPE_CHECKING:
    from .checker import _Checker
    from .env import Env

__all__ = ["FAIL", "Target", "check_target"]

FAIL = object()  # what a check returns after reporting an error

@attrs.frozen
class Target:
    """A checked ``top(METRIC[, unless EXPR])``."""

    metric: str
    unless: n.Expr | None


def check_target(ck: _Checker, e: n.Expr, env: Env) -> object:
    """The ``target`` argument of an action: a :class:`Target`, or :data:`FAIL`."""
    if not (isinstance(e, n.Call) and e.func == "top" and len(e.args) == 1):
        ck.error("E603", "a target must be top(METRIC) or top(METRIC, unless EXPR)",
                 e.span, "e.g. target = top(cpu_pct, unless comm in shells)")
        return FAIL
    metric = _top_metric(ck, e.args[0])
    unless = _top_unless(ck, e.unless, env) if e.unless is not None else None
    if metric is None or unless is FAIL:
        return FAIL
    return Target(metric, unless)  # type: ignore[arg-type]


def _top_unless(ck: _Checker, e: n.Expr, env: Env) -> object:
    """The condition of ``top(M, unless EXPR)``: true or false for each process."""
    uses = _condition(ck, e, env, "the 'unless' of top()",
                      "e.g. top(cpu_pct, unless comm in shells)")
    if uses is None:
        return FAIL
    subtree = [(name, span) for name, span in uses.metrics.items()
               if METRICS[name].scope is Scope.SUBTREE]
    if subtree or uses.windows:
        name, span = subtree[0] if subtree else next(
            (s.text, s) for s in uses.windows.values())
        what = "a subtree metric" if subtree else "a windowed function"
        ck.error("E606", f"the 'unless' of top() reads {what} ('{name}'): it is "
                 "judged on each live process, from its own fields only", span,
                 "use process fields such as comm, exe, uid or cpu_pct")
        return FAIL
    return e


def _top_metric(ck: _Checker, arg: n.Expr) -> str | None:
    metric = METRICS.get(arg.id) if isinstance(arg, n.Name) else None
    if metric is None or not metric.numeric or metric.scope is Scope.SYSTEM:
        name = arg.id if isinstance(arg, n.Name) else arg.span.text
        procs = [m.name for m in METRICS.values()
                 if m.numeric and m.scope is not Scope.SYSTEM]
        guess = suggest(name, procs)
        tail = f" (did you mean '{guess}'?)" if guess else ""
        ck.error("E603", f"top() needs a numeric process metric, not '{name}'{tail}",
                 arg.span)
        return None
    return metric.name


def _condition(ck: _Checker, e: n.Expr, env: Env, role: str, hint: str) -> Uses | None:
    """What ``e`` reads, if it is true or false (else None, reported)."""
    uses = Uses()
    info = ck.infer.infer(e, env, uses)
    if info.type is None:
        return None
    if info.type is not Type.BOOL:
        what = describe_dim(info.dim) if info.type is Type.NUM else info.type.value
        ck.error("E302", f"{role} must be true or false, got {what}", e.span, hint)
        return None
    return uses
