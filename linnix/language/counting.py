"""Inference of the counting functions: ``count(EXPR)`` and ``execs/exits/crashes(FIELD, W)``.

``count(EXPR)`` is a system value: EXPR is judged on each live process alone,
so it may read that process's fields (its own, its parent's, its ancestors')
and constants, never a host value, a subtree total or another function.  The
event counters read the instance's FIELD (so a rule using them is a process
rule) and a constant window.
"""

from __future__ import annotations

from ..names import COUNTED_FIELDS, METRICS, Dim, Scope, Type
from . import nodes as n
from .env import Env
from .infer import Inferrer, Info, Uses

__all__ = ["first_call", "infer_counting"]


def infer_counting(inf: Inferrer, e: n.Call, env: Env, uses: Uses) -> Info:
    """The value of a call to one of ``names.COUNTING_FUNCTIONS`` (a number), or a bad
    Info after reporting what is wrong with it."""
    if e.func == "count":
        return _count(inf, e, env)
    return _events(inf, e, env, uses)


def _count(inf: Inferrer, e: n.Call, env: Env) -> Info:
    if len(e.args) != 1:
        return inf.error("E605", 'count() takes one condition over process fields, '
                         'e.g. count(comm == "sshd")', e.span)
    inner = Uses()  # not the rule's: what EXPR reads does not make the rule a process rule
    info = inf.infer(e.args[0], env, inner)
    if not inf._need(e.args[0], info, Type.BOOL, "the condition of count()"):
        return Info(None)
    call = first_call(e.args[0])
    if call is not None:
        return inf.error("E620", f"count() cannot contain {call.func}(): its condition is "
                         "judged on each process, from its own fields", call.span)
    for name, span in inner.metrics.items():
        scope = METRICS[name].scope
        if scope is not Scope.PROCESS:
            what = {Scope.SYSTEM: "a system value", Scope.CGROUP: "a cgroup metric"}.get(
                scope, "a subtree metric")
            return inf.error("E620", f"count() counts processes: '{name}' is {what}; its "
                             "condition reads process fields only", span)
    return Info(Type.NUM, Dim.PLAIN)


def _events(inf: Inferrer, e: n.Call, env: Env, uses: Uses) -> Info:
    if len(e.args) != 2:
        return inf.error("E605", f"{e.func}() takes a field and a window, "
                         f"e.g. {e.func}(exe, 5m)", e.span)
    field, window = e.args
    if not (isinstance(field, n.Name) and field.id in COUNTED_FIELDS):
        return inf.error("E621", f"the first argument of {e.func}() is the field that groups "
                         f"the events: one of {', '.join(COUNTED_FIELDS)}", field.span)
    if inf.duration(window, env, allow_zero=False, what="a window") is None:
        return Info(None)
    uses.metrics.setdefault(field.id, field.span)  # the instance's own field: a process rule
    return Info(Type.NUM, Dim.PLAIN)


def first_call(e: object) -> n.Call | None:
    """The first function call inside ``e``, if any."""
    stack: list[object] = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, n.Call):
            return node
        stack.extend(reversed(n.children(node)))
    return None
