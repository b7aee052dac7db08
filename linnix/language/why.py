"""The parts of one rule's condition, compiled apart, for ``linnix replay --why``.

The engine evaluates a rule's condition as one generated function, its
``unless`` clauses folded in: fast, and silent about which part failed.  To
say why a rule did not fire, each conjunct of ``when`` and each ``unless`` is
compiled on its own here, with a function reading the names it uses and, for
a comparison, one for each side.  This is only done for the rule asked about,
only when asked: the plan the engine runs is unchanged and pays nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ..errors import UsageError
from ..names import METRICS, Scope
from ..plan import CompiledRule, Getter, Plan, WhyPart
from . import nodes as n
from .checker import check
from .codegen import ExprGen, GeneratedModule
from .compiler import _inputs, _values_lambda
from .ir import CheckedRule
from .loader import Program
from .optimizer import simplify
from .printer import to_text

__all__ = ["why_parts", "why_rule"]

_LITERALS = (n.Number, n.Quantity, n.String, n.Bool, n.List, n.Signal)


def why_rule(plan: Plan, name: str) -> CompiledRule:
    """The enabled rule ``name`` of ``plan``; a usage error naming the rules otherwise."""
    rule = plan.rule(name)
    if rule is None:
        close = difflib.get_close_matches(name, sorted(r.name for r in plan.rules), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(f"--why: no rule named '{name}' in these rules{hint}")
    if not rule.enabled:
        raise UsageError(f"--why: rule '{name}' is disabled: it is never evaluated")
    if rule.scope is Scope.CGROUP:  # its instances are cgroups: --why follows processes
        raise UsageError(f"--why: rule '{name}' is a cgroup rule; --why explains process "
                         "and system rules only (replay --format jsonl shows its values)")
    return rule


def why_parts(program: Program, plan: Plan, name: str) -> tuple[WhyPart, ...]:
    """The parts of rule ``name``'s condition, each compiled on its own."""
    compiled = why_rule(plan, name)
    checked = next((r for r in check(program).rules if r.name == name), None)
    if checked is None:  # the plan was built from this program: it has the rule
        raise UsageError(f"--why: rule '{name}' could not be checked again")
    module = GeneratedModule(compiled.path)
    gen = ExprGen(module)
    gen.bounded = plan.boundary_index(compiled)
    sources = [*(("when", e) for e in _conjuncts(checked.when)),
               *(("unless", e) for e in checked.unless)]
    return tuple(_part(gen, module, checked, kind, e) for kind, e in sources)


def _conjuncts(e: n.Expr) -> Iterable[n.Expr]:
    """The top-level operands of an ``and`` (the expression itself otherwise)."""
    if isinstance(e, n.And):
        for item in e.items:
            yield from _conjuncts(item)
    else:
        yield e


def _part(gen: ExprGen, module: GeneratedModule, rule: CheckedRule, kind: str,
          written: n.Expr) -> WhyPart:
    expr = simplify(written, rule.env)
    cond = _function(gen, module, f"lambda p, h, now: not not ({gen.gen(expr)[0]})")
    gen.temps = 0
    values = _function(gen, module, _values_lambda(gen, _readable(_inputs([expr])), (), {},
                                                     written.span))
    if not (isinstance(expr, n.Compare) and isinstance(written, n.Compare)):
        return WhyPart(kind, to_text(written), cond, values)
    return WhyPart(kind, to_text(written), cond, values, op=written.op,
                   left_text=to_text(written.left), right_text=to_text(written.right),
                   left=_side(gen, module, expr.left), right=_side(gen, module, expr.right),
                   right_literal=isinstance(written.right, _LITERALS))


def _readable(inputs: dict[str, n.Expr]) -> dict[str, n.Expr]:
    """The inputs that are names, parent fields or window terms (all of them are)."""
    return {k: e for k, e in inputs.items()
            if "(" in k or k.removeprefix("parent.") in METRICS}


def _side(gen: ExprGen, module: GeneratedModule, e: n.Expr) -> Getter:
    gen.temps = 0
    return _function(gen, module, f"lambda p, h, now: {gen.gen(e)[0]}")


def _function(gen: ExprGen, module: GeneratedModule, source: str) -> Getter:
    """A function from the source of a lambda, among the module's constants (regexes,
    sets), with no builtins, like the engine's own."""
    namespace = dict(module.globals)
    return eval(source, namespace)  # type: ignore[no-any-return]
