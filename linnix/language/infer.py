"""Type, unit and scope inference for expressions, reporting what is wrong.

:class:`Inferrer` walks one expression and returns an :class:`Info` (type,
dimension, constant value if known), while recording in a :class:`Uses` which
metrics, parent fields and windows the expression reads; the checker derives a
rule's scope and the compiler its requirements from that record.  After an
error the result's type is ``None`` so that one mistake yields one message.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from ..names import (
    COUNTING_FUNCTIONS,
    FUNCTIONS,
    METRICS,
    UNITS,
    WINDOW_FUNCTIONS,
    Dim,
    Metric,
    Scope,
    Type,
    is_ancestry,
    readable,
    suggest,
)
from . import nodes as n
from .env import Const, ConstValue, Env
from .literals import fragment_span, parse_network
from .regex import PatternError, compile_regex
from .source import Diagnostic, Level, Span
from .units import combine

__all__ = ["Info", "Inferrer", "Uses", "describe_dim", "rank"]

_NO = object()  # "not a constant"
_NONE_WHY = "it divides by zero or overflows"


@attrs.frozen
class Info:
    """What an expression is: type (None after an error), dimension, constant value."""

    type: Type | None
    dim: Dim | None = None
    const: object = _NO
    ratio: bool = False  # a plain number that is a quotient (rss_mb / mem_total_mb)

    @property
    def is_const(self) -> bool:
        return self.const is not _NO


_BAD = Info(None)


@attrs.define
class Uses:
    """Everything an expression reads, with where it was first read."""

    metrics: dict[str, Span] = attrs.field(factory=dict)
    parent: dict[str, Span] = attrs.field(factory=dict)
    windows: dict[tuple[str, float], Span] = attrs.field(factory=dict)

    def merge(self, other: Uses) -> None:
        for name, span in other.metrics.items():
            self.metrics.setdefault(name, span)
        for name, span in other.parent.items():
            self.parent.setdefault(name, span)
        for key, span in other.windows.items():
            self.windows.setdefault(key, span)

    def scope_needed(self) -> tuple[Scope, str | None, Span | None]:
        """The narrowest scope these uses need, and the name (and span) that needs it."""
        best: tuple[Scope, str | None, Span | None] = (Scope.SYSTEM, None, None)
        best_rank = rank(Scope.SYSTEM)
        for name, span in self.metrics.items():
            scope = METRICS[name].scope
            scope_rank = rank(scope)
            if scope_rank > best_rank:
                best, best_rank = (scope, name, span), scope_rank
        if self.parent and best[0] is Scope.SYSTEM:
            name, span = next(iter(self.parent.items()))
            best = (Scope.PROCESS, f"parent.{name}", span)
        return best

    def foreign(self, scope: Scope) -> tuple[str, Span] | None:
        """The first name read that a rule of ``scope`` cannot read, and where."""
        for name, span in self.metrics.items():
            if not readable(scope, name):
                return name, span
        for name, span in self.parent.items():
            if not readable(scope, f"parent.{name}"):
                return f"parent.{name}", span
        return None


def kind_of(name: str) -> str:
    """What a name is, for a message: 'a process field', 'a cgroup metric', ..."""
    scope = Scope.PROCESS if name.startswith("parent.") else METRICS[name].scope
    return {Scope.SUBTREE: "a subtree metric", Scope.CGROUP: "a cgroup metric",
            Scope.SYSTEM: "a system value"}.get(scope, "a process field")


def rank(scope: Scope) -> int:
    """``scope.rank``, without hashing the enum (a Python-level hash) each time."""
    return _RANKS[id(scope)]


_RANKS = {id(scope): scope.rank for scope in Scope}


def describe_dim(dim: Dim | None) -> str:
    return "a bare number" if dim is None else dim.value


@attrs.define
class _MacroResult:
    info: Info
    uses: Uses


class Inferrer:
    """Infer expressions of one rule set; ``report`` receives every diagnostic."""

    def __init__(self, report: Callable[[Diagnostic], None]) -> None:
        self.report = report
        self.used: set[tuple[str, str]] = set()  # (defining path, let/macro name)
        self._macros: dict[int, _MacroResult] = {}
        self._lets: dict[int, Const | None] = {}
        self._active: list[str] = []

    # ---- entry points ------------------------------------------------------------
    def infer(self, expr: n.Expr, env: Env, uses: Uses) -> Info:
        method = _VISITORS.get(type(expr))
        if method is None:
            raise TypeError(f"no inference for {type(expr).__name__}")
        return method(self, expr, env, uses)

    def let_value(self, decl: n.Let, env: Env) -> Const | None:
        """A let's value, evaluated once in the file that defines it."""
        key = id(decl)
        if key in self._lets:
            return self._lets[key]
        if decl.name in self._active:
            chain = " -> ".join([*self._active[self._active.index(decl.name):], decl.name])
            self.error("E205", f"'{decl.name}' is defined in terms of itself ({chain})",
                       decl.name_span)
            return None
        self._active.append(decl.name)
        try:
            value = self._const(decl.value, env.home_of(decl))
        finally:
            self._active.pop()
        self._lets[key] = value
        return value

    def _const(self, expr: n.Expr, env: Env) -> Const | None:
        uses = Uses()
        info = self.infer(expr, env, uses)
        if info.type is None:
            return None
        if not info.is_const:
            names = [*uses.metrics, *(f"parent.{p}" for p in uses.parent)]
            what = f"it reads '{names[0]}'" if names else "it is not constant"
            self.error("E302", f"a let needs a constant value, but {what}", expr.span,
                       hint="use 'macro' for expressions over metrics")
            return None
        if info.const is None:
            self.error("E302", f"a let needs a constant value, but it has none ({_NONE_WHY})",
                       expr.span)
            return None
        return Const(info.const, info.type, info.dim)  # type: ignore[arg-type]

    def macro(self, decl: n.Macro, env: Env) -> _MacroResult:
        """Check a macro body once, in the environment where it is defined."""
        key = id(decl)
        if key in self._macros:
            return self._macros[key]
        if decl.name in self._active:
            chain = " -> ".join([*self._active[self._active.index(decl.name):], decl.name])
            self.error("E205", f"macro '{decl.name}' refers to itself ({chain})", decl.name_span)
            return _MacroResult(_BAD, Uses())
        self._active.append(decl.name)
        uses = Uses()
        try:
            info = self.infer(decl.expr, env, uses)
        finally:
            self._active.pop()
        result = _MacroResult(info, uses)
        self._macros[key] = result
        return result

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> Info:
        self.report(Diagnostic(code, Level.ERROR, message, span, hint))
        return _BAD

    # ---- literals --------------------------------------------------------------
    def visit_Number(self, e: n.Number, env: Env, uses: Uses) -> Info:
        return Info(Type.NUM, None, e.value)

    def visit_Quantity(self, e: n.Quantity, env: Env, uses: Uses) -> Info:
        unit = UNITS.get(e.unit)
        if unit is None:
            guess = _unit_guess(e.unit)
            hint = f"did you mean '{guess}'?" if guess else None
            known = " ".join(UNITS)
            return self.error("E303", f"unknown unit '{e.unit}' (known units: {known})",
                              e.span, hint)
        value = e.value * unit.factor
        if not math.isfinite(value):
            return self.error("E104", f"number too large in {unit.dim.value}", e.span)
        return Info(Type.NUM, unit.dim, value)

    def visit_String(self, e: n.String, env: Env, uses: Uses) -> Info:
        return Info(Type.STR, None, e.value)

    def visit_Bool(self, e: n.Bool, env: Env, uses: Uses) -> Info:
        return Info(Type.BOOL, None, e.value)

    def visit_Signal(self, e: n.Signal, env: Env, uses: Uses) -> Info:
        return self.error("E602", f"a signal ('{e.name}') is only valid as an action argument",
                          e.span)

    def visit_List(self, e: n.List, env: Env, uses: Uses) -> Info:
        infos = [self.infer(item, env, uses) for item in e.items]
        if any(i.type is None for i in infos):
            return _BAD
        if not infos:
            return Info(Type.STR_LIST, None, ())
        first = infos[0]
        for item, info in zip(e.items, infos, strict=True):
            if info.type is not first.type:
                return self.error("E302", f"list items must share one type: found "
                                  f"{first.type.value} and {info.type.value}", item.span)  # type: ignore[union-attr]
            if not info.is_const:
                return self.error("E302", "list items must be constants", item.span)
            if info.const is None:
                return self.error("E302", f"this list item has no value ({_NONE_WHY})",
                                  item.span)
        list_type = Type.list_of(first.type)  # type: ignore[arg-type]
        if list_type is None:
            return self.error("E302", f"a list cannot hold {_article(first.type)}", e.span)  # type: ignore[arg-type]
        dims = {i.dim for i in infos if i.dim is not None}
        if len(dims) > 1:
            return self.error("E301", "list items mix units", e.span)
        return Info(list_type, next(iter(dims), None), tuple(i.const for i in infos))

    # ---- names -----------------------------------------------------------------
    def visit_Name(self, e: n.Name, env: Env, uses: Uses) -> Info:
        if e.id in env.lets:
            decl = env.lets[e.id]
            self.used.add((decl.span.path, e.id))
            c = self.let_value(decl, env)
            return _BAD if c is None else Info(c.type, c.dim, c.value)
        if e.id in env.macros:
            mdecl = env.macros[e.id]
            self.used.add((mdecl.span.path, e.id))
            result = self.macro(mdecl, env.home_of(mdecl))
            uses.merge(result.uses)
            return result.info
        metric = METRICS.get(e.id)
        if metric is not None:
            uses.metrics.setdefault(e.id, e.span)
            return _metric_info(metric)
        if e.id in FUNCTIONS:
            return self.error("E206", f"'{e.id}' is a function; call it as {e.id}(...)",
                              e.span)
        return self.unknown(e.id, e.span, env)

    def unknown(self, name: str, span: Span, env: Env) -> Info:
        if name in env.lost:  # its definition had a syntax error, reported already
            return _BAD
        guess = suggest(name, [*METRICS, *env.names()])
        tail = f" (did you mean '{guess}'?)" if guess else ""
        return self.error("E201", f"unknown name '{name}'{tail}", span)

    def visit_Attr(self, e: n.Attr, env: Env, uses: Uses) -> Info:
        if not is_ancestry(e.obj):
            return self.error("E201", f"unknown name '{e.obj}.{e.attr}'", e.span,
                              "only 'parent.NAME' (or 'parent.parent.NAME', ...) reads a "
                              "field of another process")
        metric = METRICS.get(e.attr)
        if metric is None or metric.scope is not Scope.PROCESS:
            fields = [m.name for m in METRICS.values() if m.scope is Scope.PROCESS]
            guess = suggest(e.attr, fields)
            tail = f" (did you mean '{e.obj}.{guess}'?)" if guess else ""
            what = "not a process field" if metric else "unknown"
            return self.error("E207", f"'{e.obj}.{e.attr}': {what}{tail}", e.span)
        uses.parent.setdefault(e.attr, e.span)
        return _metric_info(metric)

    def visit_Call(self, e: n.Call, env: Env, uses: Uses) -> Info:
        if e.func == "top":
            return self.error("E604", "top() is only valid as an action target", e.span,
                              "e.g. action kill(target = top(cpu_pct))")
        if e.func in COUNTING_FUNCTIONS:
            from .counting import infer_counting  # it builds on this module
            return infer_counting(self, e, env, uses)
        if e.func not in WINDOW_FUNCTIONS:
            guess = suggest(e.func, FUNCTIONS)
            tail = f" (did you mean '{guess}'?)" if guess else ""
            return self.error("E206", f"unknown function '{e.func}'{tail}", e.func_span)
        if len(e.args) != 2:
            return self.error("E605", f"{e.func}() takes a metric and a window, "
                              f"e.g. {e.func}(rss_mb, 10s)", e.span)
        metric = self.window_metric(e.args[0], env)
        window = self.duration(e.args[1], env, allow_zero=False, what="a window")
        if metric is None or window is None:
            return _BAD
        uses.metrics.setdefault(metric.name, e.args[0].span)
        uses.windows.setdefault((metric.name, window), e.span)
        return Info(Type.NUM, metric.dim)

    def window_metric(self, arg: n.Expr, env: Env) -> Metric | None:
        if isinstance(arg, n.Name) and arg.id in METRICS and METRICS[arg.id].numeric:
            return METRICS[arg.id]
        if isinstance(arg, n.Name) and arg.id not in METRICS and env.lookup(arg.id) is None:
            self.unknown(arg.id, arg.span, env)
            return None
        self.error("E605", "the first argument of a windowed function must be a numeric "
                   "metric name", arg.span)
        return None

    def duration(self, e: n.Expr, env: Env, *, allow_zero: bool, what: str) -> float | None:
        """A constant duration in seconds, or None after reporting why not."""
        if isinstance(e, n.Number):
            self.error("E305", f"{what} needs a unit", e.span,
                       f"write e.g. {_fmt(e.value)}s or {_fmt(e.value)}ms")
            return None
        info = self.infer(e, env, Uses())
        if info.type is None:
            return None
        if info.type is not Type.NUM or not info.is_const or info.dim is not Dim.DURATION:
            got = describe_dim(info.dim) if info.type is Type.NUM else info.type.value
            self.error("E301", f"{what} must be a duration such as 5s, got {got}", e.span)
            return None
        if info.const is None:
            self.error("E304", f"{what} has no value ({_NONE_WHY})", e.span)
            return None
        value = float(info.const)  # type: ignore[arg-type]
        if value < 0 or (value == 0 and not allow_zero):
            self.error("E304", f"{what} must be {'zero or ' if allow_zero else ''}positive",
                       e.span)
            return None
        return value

    # ---- operators -------------------------------------------------------------
    def _need(self, e: n.Expr, info: Info, want: Type, role: str) -> bool:
        if info.type is None:
            return False
        if info.type is not want:
            self.error("E302", f"{role} must be {_article(want)}, got {_article(info.type)}",
                       e.span)
            return False
        return True

    def visit_Arith(self, e: n.Arith, env: Env, uses: Uses) -> Info:
        left, right = self.infer(e.left, env, uses), self.infer(e.right, env, uses)
        ok = self._need(e.left, left, Type.NUM, f"the left side of '{e.op}'")
        ok = self._need(e.right, right, Type.NUM, f"the right side of '{e.op}'") and ok
        if not ok:
            return _BAD
        combined = combine(e.op, left.dim, right.dim)
        if combined.error is not None:
            return self.error("E301", combined.error, e.span)
        const: object = _NO
        if left.is_const and right.is_const:
            const = _fold(e.op, _scaled(left.const, combined.left),
                          _scaled(right.const, combined.right))
        ratio = combined.dim is Dim.PLAIN and (e.op == "/" or left.ratio or right.ratio)
        return Info(Type.NUM, combined.dim, const, ratio)

    def visit_Neg(self, e: n.Neg, env: Env, uses: Uses) -> Info:
        info = self.infer(e.operand, env, uses)
        if not self._need(e.operand, info, Type.NUM, "the operand of '-'"):
            return _BAD
        const = info.const if info.const is None or not info.is_const else -info.const  # type: ignore[operator]
        return Info(Type.NUM, info.dim, const, info.ratio)

    def visit_Compare(self, e: n.Compare, env: Env, uses: Uses) -> Info:
        left, right = self.infer(e.left, env, uses), self.infer(e.right, env, uses)
        if left.type is None or right.type is None:
            return _BAD
        if left.type is not right.type:
            return self.error("E302", f"cannot compare {_article(left.type)} with "
                              f"{_article(right.type)}", e.span)
        if e.op not in ("==", "!=") and left.type is not Type.NUM:
            return self.error("E302", f"'{e.op}' needs numbers, not {left.type.value}s",
                              e.span)
        scales = (1.0, 1.0)
        if left.type is Type.NUM and left.dim and right.dim and left.dim is not right.dim:
            plain = left if left.dim is Dim.PLAIN else right
            combined = combine(e.op, left.dim, right.dim, ratio=plain.ratio)
            if combined.error is not None:
                return self.error("E301", f"unit mismatch: {_said(e.left)} is {left.dim.value}, "
                                  f"{_said(e.right)} is {right.dim.value}", e.span,
                                  _mismatch_hint(left.dim, right.dim))
            scales = (combined.left, combined.right)
        const: object = _NO
        if left.is_const and right.is_const:
            const = _compare(e.op, _scaled(left.const, scales[0]),
                             _scaled(right.const, scales[1]))
        return _bool_info(const)

    def visit_In(self, e: n.In, env: Env, uses: Uses) -> Info:
        left, right = self.infer(e.left, env, uses), self.infer(e.right, env, uses)
        if left.type is None or right.type is None:
            return _BAD
        element = right.type.element
        if element is None:
            return self.error("E302", f"the right side of 'in' must be a list, got "
                              f"{_article(right.type)}", e.right.span)
        empty = right.is_const and not right.const
        if not empty and left.type is not element:
            return self.error("E302", f"cannot look for {_article(left.type)} in a "
                              f"{right.type.value}", e.span)
        if left.dim and right.dim and left.dim is not right.dim:
            return self.error("E301", f"unit mismatch: {_said(e.left)} is {left.dim.value}, "
                              f"but each list item is {right.dim.value}", e.span)
        const: object = _NO
        if left.is_const and right.is_const:
            # like every comparison, 'in' and 'not in' are false without a value
            const = left.const is not None and (left.const in right.const) != e.negated  # type: ignore[operator]
        return _bool_info(const)

    def visit_StrOp(self, e: n.StrOp, env: Env, uses: Uses) -> Info:
        left, right = self.infer(e.left, env, uses), self.infer(e.right, env, uses)
        ok = self._need(e.left, left, Type.STR, f"the left side of '{e.op}'")
        ok = self._need(e.right, right, Type.STR, f"the right side of '{e.op}'") and ok
        if not ok:
            return _BAD
        const: object = _NO
        if left.is_const and right.is_const:
            a, b = str(left.const), str(right.const)
            const = {"startswith": a.startswith, "endswith": a.endswith,
                     "contains": a.__contains__}[e.op](b)
        return _bool_info(const)

    def visit_Matches(self, e: n.Matches, env: Env, uses: Uses) -> Info:
        left = self.infer(e.left, env, uses)
        try:
            compile_regex(e.pattern.value)
        except PatternError as err:
            return self.error("E306", f"invalid regular expression: {err.message}",
                              fragment_span(e.pattern, err), err.hint)
        if not self._need(e.left, left, Type.STR, "the left side of 'matches'"):
            return _BAD
        return _BOOL

    def visit_Glob(self, e: n.Glob, env: Env, uses: Uses) -> Info:
        left = self.infer(e.left, env, uses)
        if not self._need(e.left, left, Type.STR, "the left side of 'glob'"):
            return _BAD
        return _BOOL

    def visit_InCidr(self, e: n.InCidr, env: Env, uses: Uses) -> Info:
        left = self.infer(e.left, env, uses)
        try:
            parse_network(e.cidr.value)
        except ValueError as err:
            return self.error("E307", f"invalid CIDR: {err}", e.cidr.span,
                              'a network such as "10.0.0.0/8" or "fd00::/8"')
        return _BOOL if self._need(e.left, left, Type.STR, "the left side of 'in_cidr'") else _BAD

    def visit_IsPrivate(self, e: n.IsPrivate, env: Env, uses: Uses) -> Info:
        left = self.infer(e.left, env, uses)
        ok = self._need(e.left, left, Type.STR, "the left side of 'is_private'")
        return _BOOL if ok else _BAD

    def visit_Not(self, e: n.Not, env: Env, uses: Uses) -> Info:
        info = self.infer(e.operand, env, uses)
        if not self._need(e.operand, info, Type.BOOL, "the operand of 'not'"):
            return _BAD
        return _bool_info((not info.const) if info.is_const else _NO)

    def _bool_chain(self, items: tuple[n.Expr, ...], env: Env, uses: Uses, op: str) -> Info:
        infos = [self.infer(item, env, uses) for item in items]
        ok = all([self._need(item, info, Type.BOOL, f"an operand of '{op}'")
                  for item, info in zip(items, infos, strict=True)])
        if not ok:
            return _BAD
        if all(i.is_const for i in infos):
            values = [bool(i.const) for i in infos]
            return _bool_info(all(values) if op == "and" else any(values))
        return _BOOL

    def visit_And(self, e: n.And, env: Env, uses: Uses) -> Info:
        return self._bool_chain(e.items, env, uses, "and")

    def visit_Or(self, e: n.Or, env: Env, uses: Uses) -> Info:
        return self._bool_chain(e.items, env, uses, "or")


# visit_<Node> of Inferrer by node class
_VISITORS: dict[type, Callable[[Inferrer, Any, Env, Uses], Info]] = {
    getattr(n, name.removeprefix("visit_")): method
    for name, method in vars(Inferrer).items() if name.startswith("visit_")
}

_BOOL = Info(Type.BOOL)
_BOOLS = {True: Info(Type.BOOL, None, True), False: Info(Type.BOOL, None, False)}


def _bool_info(const: object) -> Info:
    """What a boolean expression is (Info is immutable, so the common ones are shared)."""
    if const is _NO:
        return _BOOL
    if const is True or const is False:
        return _BOOLS[const]
    return Info(Type.BOOL, None, const)


def _metric_info(metric: Metric) -> Info:
    """What reading ``metric`` is (one shared Info per metric)."""
    known = _METRIC_INFO.get(metric.name)
    if known is None or known[0] is not metric:
        info = Info(metric.type, metric.dim if metric.numeric else None)
        known = _METRIC_INFO[metric.name] = (metric, info)
    return known[1]


_METRIC_INFO: dict[str, tuple[Metric, Info]] = {}


def _fold(op: str, a: object, b: object) -> object:
    """Constant arithmetic; None (no value) for a missing operand, x/0 or overflow."""
    if a is None or b is None:
        return None
    x, y = float(a), float(b)  # type: ignore[arg-type]
    if op == "/":
        value = None if y == 0 else x / y
    else:
        value = x + y if op == "+" else x - y if op == "-" else x * y
    return value if value is not None and math.isfinite(value) else None


def _scaled(value: object, divisor: float) -> object:
    """A constant number in another unit (a percentage as a fraction: ``/ 100``)."""
    if divisor == 1.0 or value is None:
        return value
    return float(value) / divisor  # type: ignore[arg-type]


def _compare(op: str, a: object, b: object) -> bool:
    if a is None or b is None:
        return False
    ops: dict[str, Callable[[ConstValue, ConstValue], bool]] = {
        "==": lambda x, y: x == y, "!=": lambda x, y: x != y,
        "<": lambda x, y: x < y, "<=": lambda x, y: x <= y,  # type: ignore[operator]
        ">": lambda x, y: x > y, ">=": lambda x, y: x >= y,  # type: ignore[operator]
    }
    return ops[op](a, b)  # type: ignore[arg-type]


# Words people write for a unit, singular and lower case: "5min" -> did you mean "m"?
_UNIT_WORDS = {
    "sec": "s", "second": "s", "min": "m", "minute": "m", "hr": "h", "hour": "h",
    "msec": "ms", "milli": "ms", "millisecond": "ms", "pct": "%", "percent": "%",
}


def _unit_guess(unit: str) -> str | None:
    """The unit meant by an unknown suffix: another case ("gib"), a word ("min"), or close."""
    folded = unit.lower()
    for known in UNITS:
        if known.lower() == folded:
            return known
    word = _UNIT_WORDS.get(folded) or _UNIT_WORDS.get(folded.rstrip("s"))
    return word or suggest(unit, UNITS)


def _mismatch_hint(a: Dim, b: Dim) -> str | None:
    """What a percentage compared with a plain number that is no ratio meant."""
    if {a, b} != {Dim.PLAIN, Dim.PERCENT}:
        return None
    return ("a percentage compares with a ratio ('rss_mb / mem_total_mb > 50%'), not with a "
            "count: for a percentage of a count write e.g. 'cpu_pct > 90% * ncpu'")


def _article(t: Type) -> str:
    word = t.value
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _said(e: n.Expr) -> str:
    text = e.span.text
    return f"'{text}'" if len(text) <= 40 else "the left side"


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
