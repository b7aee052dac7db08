"""Function calls in messages: ``{crashes(exe, 5m)}``, ``{avg(cpu_pct, 1m):.0f}``.

The template keeps a call placeholder's text as its name
(:mod:`linnix.templates`); here that text is parsed as an expression of the
language, judged like one in a condition (the same diagnostics, shown at the
placeholder), and checked against the rule's scope and the format
specification.  The compiler generates the call's value under the
placeholder's name.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..errors import RuleError
from ..names import METRICS, Scope, Type
from . import nodes as n
from .builder import build
from .env import Env
from .grammar import parse
from .infer import Inferrer, Uses
from .source import Diagnostic, Level, SourceFile, Span

__all__ = ["check_call"]

_PREFIX = "rule _: "


def check_call(infer: Inferrer, name: str, spec: str, where: Span, env: Env, scope: object,
               report: Callable[[Diagnostic], None]) -> n.Call | None:
    """The call a placeholder names, or None after reporting (at ``where``) what is wrong."""
    call = _parse(name, where)
    if call is None:
        report(Diagnostic("E308", Level.ERROR, f"'{name}' in a message is not a function "
                          "call such as {crashes(exe, 5m)}", where))
        return None
    found: list[Diagnostic] = []
    saved, infer.report = infer.report, found.append
    uses = Uses()
    try:
        info = infer.infer(call, env, uses)
    finally:
        infer.report = saved
    for d in found:  # the call's own positions are in no file: point at the placeholder
        report(attrs.evolve(d, span=where))
    if info.type is None:
        return None
    foreign = uses.foreign(scope)  # type: ignore[arg-type]
    if foreign is not None:
        read = foreign[0]
        needed = Scope.PROCESS if read.startswith("parent.") else METRICS[read].scope
        report(Diagnostic("E401", Level.ERROR, f"'{name}' reads {read}, a {needed.value} "
                          f"value, but this rule's scope is {scope.value}", where))  # type: ignore[attr-defined]
        return None
    if info.type is Type.NUM:
        problem = _format_problem(spec)
        if problem is not None:
            report(Diagnostic("E308", Level.ERROR, f"invalid format '{spec}' for '{name}': "
                              f"{problem}", where))
            return None
    return call


def _parse(text: str, where: Span) -> n.Call | None:
    """``text`` as one function call, or None when it is not one.  It is parsed on the
    line of the placeholder, so that the code generated for it is found there."""
    source = SourceFile(where.source.path, "\n" * (where.line - 1) + _PREFIX + text)
    try:
        module, problems = build(source, parse(source))
    except RuleError:
        return None
    if problems or len(module.decls) != 1:
        return None
    rule = module.decls[0]
    if not isinstance(rule, n.Rule) or len(rule.clauses) != 1:
        return None
    when = rule.clauses[0]
    if not isinstance(when, n.When) or when.for_ is not None:
        return None
    return when.expr if isinstance(when.expr, n.Call) else None


def _format_problem(spec: str) -> Exception | None:
    """Why a number cannot be formatted with ``spec`` (an int or a float may come)."""
    problem: Exception | None = None
    for sample in (0, 0.0):
        try:
            format(sample, spec)
        except (ValueError, TypeError) as err:
            problem = err
        else:
            return None
    return problem
