"""Rewrite checked rules into their simplest equivalent form.

In order: lets and macros are expanded, unit literals become numbers in their
dimension's base unit (``1GiB`` → ``1024``, ``5m`` → ``300``), a percentage
that meets another unit becomes a fraction (``50% * rss_mb`` → ``0.5 * rss_mb``,
:mod:`linnix.language.units`), every
``unless U`` is folded into the condition as ``and not (U)``, and constants are
folded.  The result is what the compiler generates code for and what
``linnix explain`` prints.  Folding also reveals rules that can never fire
(W103) or always hold (W105), and ``clear when`` conditions that the ``when``
condition already implies (W104).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from ..names import UNITS, Dim
from . import nodes as n
from .env import Const, Env
from .ir import CheckedAction, CheckedRule
from .printer import to_text
from .source import Diagnostic, Level, Span
from .units import combine, dim_of

__all__ = ["optimize", "simplify"]


def optimize(rules: list[CheckedRule]) -> tuple[list[CheckedRule], list[Diagnostic]]:
    """The rules with optimised conditions, and the warnings optimisation found."""
    out: list[CheckedRule] = []
    warnings: list[Diagnostic] = []
    # what attrs.evolve does, with the fields looked up once
    fields = [(f.name, f.alias or f.name) for f in attrs.fields(CheckedRule) if f.init]
    for rule in rules:
        cond = _fold_unless(rule)
        clear = simplify(rule.clear, rule.env) if rule.clear is not None else None
        changes: dict[str, Any] = {"when": cond, "unless": (), "clear": clear,
                                   "actions": tuple(_action(a, rule.env) for a in rule.actions),
                                   "boundary": tuple(simplify(b, rule.env) for b in rule.boundary),
                                   "message_calls": tuple((k, simplify(c, rule.env))
                                                          for k, c in rule.message_calls)}
        out.append(CheckedRule(**{alias: changes[alias] if alias in changes
                                  else getattr(rule, name) for name, alias in fields}))
        warnings.extend(_warnings(rule, cond, clear))
    return out, warnings


def _action(action: CheckedAction, env: Env) -> CheckedAction:
    """The action with the condition of ``top(M, unless EXPR)`` simplified."""
    if action.target_unless is None:
        return action
    return attrs.evolve(action, target_unless=simplify(action.target_unless, env))


def _fold_unless(rule: CheckedRule) -> n.Expr:
    when = rule.when
    if rule.unless:
        span = rule.when.span
        when = n.And((when, *(n.Not(u, u.span) for u in rule.unless)), span)
    return simplify(when, rule.env)


def simplify(e: n.Expr, env: Env) -> n.Expr:
    """Expand names, normalise units and fold constants in one expression."""
    return _Simplifier(env).visit(e)


class _Simplifier:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.dims: dict[int, Dim | None] = {}  # by node: units.dim_of's memo

    def visit(self, e: n.Expr) -> n.Expr:
        method = _VISITORS.get(type(e))
        return e if method is None else method(self, e)

    def visit_Quantity(self, e: n.Quantity) -> n.Expr:
        return n.Number(e.value * UNITS[e.unit].factor, e.span)

    def visit_Name(self, e: n.Name) -> n.Expr:
        if e.id in self.env.lets:
            const = self.env.consts[e.id]
            assert const is not None  # the checker rejected rules using invalid lets
            return _literal(const, e)
        if e.id in self.env.macros:
            decl = self.env.macros[e.id]
            # a macro sees the names of the file it is defined in
            return _Simplifier(self.env.home_of(decl)).visit(decl.expr)
        return e

    def visit_List(self, e: n.List) -> n.Expr:
        return n.List(tuple([self.visit(i) for i in e.items]), e.span)

    def visit_Call(self, e: n.Call) -> n.Expr:
        """A windowed call keeps its window as a duration in seconds: ``delta(m, 10s)``
        (and ``execs(exe, 60s)``); the condition of ``count()`` is simplified in place."""
        if e.func == "count":
            return n.Call(e.func, (self.visit(e.args[0]),), e.span, e.func_span)
        metric, window = e.args
        seconds = self.visit(window)
        assert isinstance(seconds, n.Number)  # the checker accepts constant durations only
        return n.Call(e.func, (metric, n.Quantity(seconds.value, "s", window.span)), e.span,
                      e.func_span)

    def visit_Neg(self, e: n.Neg) -> n.Expr:
        inner = self.visit(e.operand)
        if isinstance(inner, n.Number):
            return n.Number(-inner.value, e.span)
        if isinstance(inner, n.Neg):
            return inner.operand
        return n.Neg(inner, e.span)

    def visit_Arith(self, e: n.Arith) -> n.Expr:
        left, right = self._in_one_unit(e.op, e.left, e.right)
        if isinstance(left, n.Number) and isinstance(right, n.Number):
            value = _arith(e.op, left.value, right.value)
            if value is not None:
                return n.Number(value, e.span)
        return n.Arith(e.op, left, right, e.span)

    def _in_one_unit(self, op: str, a: n.Expr, b: n.Expr) -> tuple[n.Expr, n.Expr]:
        """Both sides simplified, a percentage that meets another unit as a fraction."""
        left, right = self.visit(a), self.visit(b)
        if op in "+-":
            return left, right
        combined = combine(op, dim_of(a, self.env, self.dims), dim_of(b, self.env, self.dims))
        return _divided(left, combined.left), _divided(right, combined.right)

    def visit_Compare(self, e: n.Compare) -> n.Expr:
        left, right = self._in_one_unit(e.op, e.left, e.right)
        lc, rc = _const_of(left), _const_of(right)
        if lc is not _NO and rc is not _NO:
            return n.Bool(_compare(e.op, lc, rc), e.span)
        if _no_value(left) or _no_value(right):
            return n.Bool(False, e.span)  # a comparison with no value is false
        return n.Compare(e.op, left, right, e.span)

    def visit_In(self, e: n.In) -> n.Expr:
        left, right = self.visit(e.left), self.visit(e.right)
        lc, rc = _const_of(left), _const_of(right)
        if lc is not _NO and isinstance(rc, tuple):
            return n.Bool((lc in rc) != e.negated, e.span)
        if isinstance(rc, tuple) and not rc:
            return n.Bool(e.negated, e.span)
        return n.In(left, right, e.negated, e.span)

    def visit_StrOp(self, e: n.StrOp) -> n.Expr:
        left, right = self.visit(e.left), self.visit(e.right)
        lc, rc = _const_of(left), _const_of(right)
        if isinstance(lc, str) and isinstance(rc, str):
            value = {"startswith": lc.startswith, "endswith": lc.endswith,
                     "contains": lc.__contains__}[e.op](rc)
            return n.Bool(value, e.span)
        return n.StrOp(e.op, left, right, e.span)

    def visit_Matches(self, e: n.Matches) -> n.Expr:
        return n.Matches(self.visit(e.left), e.pattern, e.span)

    def visit_Glob(self, e: n.Glob) -> n.Expr:
        return n.Glob(self.visit(e.left), e.pattern, e.span)

    def visit_InCidr(self, e: n.InCidr) -> n.Expr:
        return n.InCidr(self.visit(e.left), e.cidr, e.span)

    def visit_IsPrivate(self, e: n.IsPrivate) -> n.Expr:
        return n.IsPrivate(self.visit(e.left), e.span)

    def visit_Not(self, e: n.Not) -> n.Expr:
        inner = self.visit(e.operand)
        if isinstance(inner, n.Bool):
            return n.Bool(not inner.value, e.span)
        if isinstance(inner, n.Not):
            return inner.operand
        return n.Not(inner, e.span)

    def visit_And(self, e: n.And) -> n.Expr:
        return self._chain(e, n.And, absorbing=False)

    def visit_Or(self, e: n.Or) -> n.Expr:
        return self._chain(e, n.Or, absorbing=True)

    def _chain(self, e: n.And | n.Or, cls: type[n.And] | type[n.Or], absorbing: bool) -> n.Expr:
        items: list[n.Expr] = []
        for raw in e.items:
            item = self.visit(raw)
            if isinstance(item, n.Bool):
                if item.value is absorbing:
                    return n.Bool(absorbing, e.span)
                continue  # the identity element drops out
            items.extend(item.items if isinstance(item, cls) else (item,))
        if not items:
            return n.Bool(not absorbing, e.span)
        if len(items) == 1:
            return items[0]
        return cls(tuple(items), e.span)


# visit_<Node> of _Simplifier by node class; other nodes are kept as they are
_VISITORS: dict[type, Callable[[_Simplifier, Any], n.Expr]] = {
    getattr(n, name.removeprefix("visit_")): method
    for name, method in vars(_Simplifier).items() if name.startswith("visit_")
}

_NO = object()


def _divided(e: n.Expr, divisor: float) -> n.Expr:
    """``e / divisor`` (a percentage as a fraction), folded when ``e`` is a number."""
    if divisor == 1.0:
        return e
    if isinstance(e, n.Number):
        return n.Number(e.value / divisor, e.span)
    return n.Arith("/", e, n.Number(divisor, e.span), e.span)


def _literal(const: Const, at: n.Name) -> n.Expr:
    return _literal_of(const.value, at.span)


def _literal_of(value: object, span: Span) -> n.Expr:
    if isinstance(value, bool):
        return n.Bool(value, span)
    if isinstance(value, float):
        return n.Number(value, span)
    if isinstance(value, str):
        return n.String(value, span)
    return n.List(tuple([_literal_of(v, span) for v in value]), span)  # type: ignore[attr-defined]


def _const_of(e: n.Expr) -> object:
    if isinstance(e, (n.Number, n.String, n.Bool)):
        return e.value
    if isinstance(e, n.List) and all(isinstance(i, (n.Number, n.String, n.Bool))
                                     for i in e.items):
        return tuple(i.value for i in e.items)  # type: ignore[union-attr]
    return _NO


def _no_value(e: n.Expr) -> bool:
    """An arithmetic result that is known to have no value (division by zero)."""
    return isinstance(e, n.Arith) and e.op == "/" and isinstance(e.right, n.Number) \
        and e.right.value == 0


def _arith(op: str, a: float, b: float) -> float | None:
    if op == "/":
        return None if b == 0 else a / b
    value = a + b if op == "+" else a - b if op == "-" else a * b
    return value if math.isfinite(value) else None


def _compare(op: str, a: object, b: object) -> bool:
    table: dict[str, Callable[[object, object], bool]] = {
        "==": lambda x, y: x == y, "!=": lambda x, y: x != y,
        "<": lambda x, y: x < y, "<=": lambda x, y: x <= y,  # type: ignore[operator]
        ">": lambda x, y: x > y, ">=": lambda x, y: x >= y,  # type: ignore[operator]
    }
    return table[op](a, b)


# ---- warnings ----------------------------------------------------------------------

def _warnings(rule: CheckedRule, cond: n.Expr, clear: n.Expr | None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if not rule.enabled:
        return out
    span = rule.when.span
    if isinstance(cond, n.Bool) or _contradiction(cond):
        never = not (isinstance(cond, n.Bool) and cond.value)
        if never:
            out.append(Diagnostic("W103", Level.WARNING,
                                  f"rule '{rule.name}' can never fire: its condition is "
                                  "always false", span))
        else:
            out.append(Diagnostic("W105", Level.WARNING,
                                  f"rule '{rule.name}' fires unconditionally: its condition "
                                  "is always true", span))
    if clear is not None and rule.clear is not None and _implies(cond, clear):
        out.append(Diagnostic("W104", Level.WARNING,
                              f"'clear when {to_text(clear)}' holds whenever the rule's "
                              "condition does, so the rule would resolve as soon as it fires",
                              rule.clear.span))
    return out


Interval = tuple[float, bool, float, bool]  # low, low_inclusive, high, high_inclusive
_EVERYTHING: Interval = (-math.inf, False, math.inf, False)


def _atom_interval(e: n.Expr) -> tuple[str, Interval] | None:
    """``term OP number`` as (term text, the interval of term values that satisfy it)."""
    if not isinstance(e, n.Compare) or e.op in ("!=",):
        return None
    op, term, num = e.op, e.left, e.right
    if isinstance(term, n.Number) and not isinstance(num, n.Number):
        term, num = num, term
        op = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}[op]
    if not isinstance(num, n.Number) or isinstance(term, n.Number):
        return None
    v = num.value
    table: dict[str, Interval] = {
        ">": (v, False, math.inf, False), ">=": (v, True, math.inf, False),
        "<": (-math.inf, False, v, False), "<=": (-math.inf, False, v, True),
        "==": (v, True, v, True),
    }
    return to_text(term), table[op]


def _intersect(a: Interval, b: Interval) -> Interval:
    lo = max((a[0], not a[1]), (b[0], not b[1]))
    hi = min((a[2], a[3]), (b[2], b[3]))
    return (lo[0], not lo[1], hi[0], hi[1])


def _empty(i: Interval) -> bool:
    return i[0] > i[2] or (i[0] == i[2] and not (i[1] and i[3]))


def _inside(small: Interval, big: Interval) -> bool:
    lo_ok = small[0] > big[0] or (small[0] == big[0] and (big[1] or not small[1]))
    hi_ok = small[2] < big[2] or (small[2] == big[2] and (big[3] or not small[3]))
    return lo_ok and hi_ok


def _conjuncts(e: n.Expr) -> dict[str, Interval]:
    """Per term, the interval that a conjunction of comparisons confines it to."""
    items = e.items if isinstance(e, n.And) else (e,)
    bounds: dict[str, Interval] = {}
    for item in items:
        atom = _atom_interval(item)
        if atom is not None:
            term, interval = atom
            bounds[term] = _intersect(bounds.get(term, _EVERYTHING), interval)
    return bounds


def _contradiction(cond: n.Expr) -> bool:
    return any(_empty(i) for i in _conjuncts(cond).values())


def _implies(when: n.Expr, clear: n.Expr) -> bool:
    """Whether ``when`` being true guarantees ``clear`` is true (sound, not complete)."""
    if to_text(when) == to_text(clear):
        return True
    have = _conjuncts(when)
    clear_items = clear.items if isinstance(clear, n.And) else (clear,)
    for item in clear_items:
        atom = _atom_interval(item)
        if atom is None:
            if not any(to_text(item) == to_text(w) for w in
                       (when.items if isinstance(when, n.And) else (when,))):
                return False
            continue
        term, interval = atom
        if term not in have or not _inside(have[term], interval):
            return False
    return True
