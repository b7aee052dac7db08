"""Checks of conditions judged on one process at a time, apart from the rule's own.

Two clauses name processes by a condition rather than by the rule's instance:
``top(METRIC, unless EXPR)`` leaves out of an action's choice the processes for
which EXPR holds, and ``boundary EXPR`` makes walls of the processes for which
it holds.  Both are true or false for each process on its own, so neither may
read a subtree total or a window.  A boundary is stricter: the engine keeps one
set of subtree totals per distinct boundary and moves a process's subtree only
when its membership changes, so membership may depend only on what changes
with an event of the process itself (its name, program, command line, user).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ..names import COUNTING_FUNCTIONS, METRICS, Scope, Type, suggest
from . import nodes as n
from .counting import first_call
from .infer import Uses, describe_dim

if TYPE_CHECKING:
    from .checker import _Checker
    from .env import Env

__all__ = ["BOUNDARY_FIELDS", "FAIL", "Target", "check_boundaries", "check_target"]

FAIL = object()  # what a check returns after reporting an error

# What a boundary may read: the fields a process changes only at fork, exec or
# rename (an event of its own), so the engine knows when membership can change.
BOUNDARY_FIELDS = ("comm", "exe", "cmdline", "uid", "pid")


@attrs.frozen
class Target:
    """A checked ``top(METRIC[, unless EXPR])``."""

    metric: str
    unless: n.Expr | None
    unless_text: str | None = None  # as written (a macro's name, not its expansion)


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
    text = " ".join(e.unless.span.text.split()) if e.unless is not None else None
    return Target(metric, unless, text)  # type: ignore[arg-type]


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
    if metric is None or not metric.numeric or metric.scope in (Scope.SYSTEM, Scope.CGROUP):
        name = arg.id if isinstance(arg, n.Name) else arg.span.text
        procs = [m.name for m in METRICS.values()
                 if m.numeric and m.scope not in (Scope.SYSTEM, Scope.CGROUP)]
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


# ---- boundaries ---------------------------------------------------------------------

def check_boundaries(ck: _Checker, rule: n.Rule, clauses: list[n.Boundary], env: Env,
                     scope: Scope) -> tuple[n.Expr, ...] | None:
    """The conditions of a rule's ``boundary`` clauses (None after an error).

    Every subtree metric the rule reads, shows or holds in a window is then
    read within its walls (the compiler's ``BOUNDED``): nothing else to check.
    """
    exprs = [_boundary(ck, c.expr, env) for c in clauses]
    if any(e is None for e in exprs):
        return None
    if clauses and scope is not Scope.SUBTREE:
        ck.error("E607", f"'boundary' in rule '{rule.name}', which is not a subtree rule "
                 f"(its scope is {scope.value})", clauses[0].span,
                 "a boundary stops subtree totals; the rule must read a subtree metric")
        return None
    return tuple(e for e in exprs if e is not None)


def _boundary(ck: _Checker, e: n.Expr, env: Env) -> n.Expr | None:
    uses = _condition(ck, e, env, "a 'boundary'", "e.g. boundary comm in shells")
    if uses is None:
        return None
    read = [(name, span) for name, span in uses.metrics.items()
            if name not in BOUNDARY_FIELDS]
    read += [(span.text, span) for span in uses.parent.values()]  # parent.parent.comm
    read += [(span.text, span) for span in uses.windows.values()]
    call = first_call(e)  # count() and the event counters move with other processes
    if call is not None and call.func in COUNTING_FUNCTIONS:
        read.append((f"{call.func}()", call.span))
    if read:
        name, span = min(read, key=lambda item: item[1].start)
        fields = ", ".join(BOUNDARY_FIELDS[:-1]) + f" and {BOUNDARY_FIELDS[-1]}"
        ck.error("E608", f"a 'boundary' may read only {fields}, not '{name}'", span,
                 "what a process is, which changes only when it execs or renames itself")
        return None
    return e
