"""Expressions back to text: canonical spacing, the fewest parentheses needed.

Used by ``linnix explain`` (conditions after optimisation), by ``linnix fmt``
and by the comments of generated code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import nodes as n

__all__ = ["number", "quote", "to_text"]

# Binding strength, loosest first; an operand binding looser than its parent
# needs parentheses.
_OR, _AND, _NOT, _CMP, _ADD, _MUL, _NEG, _ATOM = range(8)


def number(value: float) -> str:
    """``50`` rather than ``50.0``; full precision otherwise, never in exponent form.

    The text reads back as the same float (``0.00001``, not ``1e-05``, which
    is no number literal of the language).  An infinite value, which only an
    absurdly long literal produces, prints as ``inf``.
    """
    if not math.isfinite(value):
        return repr(value)
    if value == 0:
        return "0"
    text = repr(value)
    if "e" not in text:  # already positional: only a trailing ".0" to drop
        return text[:-2] if text.endswith(".0") else text
    text = format(Decimal(text), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped.replace("\t", "\\t") + '"'


def _strength(e: n.Expr) -> int:
    level = _STRENGTH.get(type(e), _ATOM)
    if level == _ADD and e.op not in "+-":  # type: ignore[union-attr]
        return _MUL
    return level


_STRENGTH: dict[type, int] = {
    n.Or: _OR, n.And: _AND, n.Not: _NOT, n.Compare: _CMP, n.In: _CMP, n.StrOp: _CMP,
    n.Matches: _CMP, n.Glob: _CMP, n.InCidr: _CMP, n.IsPrivate: _CMP, n.Arith: _ADD, n.Neg: _NEG,
}


def _wrap(e: n.Expr, minimum: int) -> str:
    text = to_text(e)
    return f"({text})" if _strength(e) < minimum else text


def to_text(e: n.Expr) -> str:
    """The canonical text of an expression."""
    printer = _PRINTERS.get(type(e))
    return printer(e) if printer is not None else _binary(e)


def _number(e: n.Number) -> str:
    return number(e.value)


def _quantity(e: n.Quantity) -> str:
    return f"{number(e.value)}{e.unit}"


def _string(e: n.String) -> str:
    return quote(e.value)


def _bool(e: n.Bool) -> str:
    return "true" if e.value else "false"


def _list(e: n.List) -> str:
    return "[" + ", ".join([to_text(i) for i in e.items]) + "]"


def _name(e: n.Name) -> str:
    return e.id


def _attr(e: n.Attr) -> str:
    return f"{e.obj}.{e.attr}"


def _call(e: n.Call) -> str:
    unless = "" if e.unless is None else f", unless {to_text(e.unless)}"
    return f"{e.func}(" + ", ".join([to_text(a) for a in e.args]) + unless + ")"


def _signal(e: n.Signal) -> str:
    return e.name


def _or(e: n.Or) -> str:
    return " or ".join([_wrap(i, _AND) for i in e.items])


def _and(e: n.And) -> str:
    return " and ".join([_wrap(i, _NOT) for i in e.items])


def _not(e: n.Not) -> str:
    # "not (a > b)" reads better than the equivalent "not a > b"
    return "not " + _wrap(e.operand, _NEG)


def _neg(e: n.Neg) -> str:
    return "-" + _wrap(e.operand, _NEG)


def _compare(e: n.Compare | n.StrOp) -> str:
    return f"{_wrap(e.left, _ADD)} {e.op} {_wrap(e.right, _ADD)}"


def _in(e: n.In) -> str:
    op = "not in" if e.negated else "in"
    return f"{_wrap(e.left, _ADD)} {op} {_wrap(e.right, _ADD)}"


_PRINTERS: dict[type, Callable[[Any], str]] = {
    n.Number: _number, n.Quantity: _quantity, n.String: _string, n.Bool: _bool,
    n.List: _list, n.Name: _name, n.Attr: _attr, n.Call: _call, n.Signal: _signal,
    n.Or: _or, n.And: _and, n.Not: _not, n.Neg: _neg, n.Compare: _compare,
    n.StrOp: _compare, n.In: _in,
}


def _binary(e: n.Expr) -> str:
    if isinstance(e, n.Compare):
        return f"{_wrap(e.left, _ADD)} {e.op} {_wrap(e.right, _ADD)}"
    if isinstance(e, n.In):
        op = "not in" if e.negated else "in"
        return f"{_wrap(e.left, _ADD)} {op} {_wrap(e.right, _ADD)}"
    if isinstance(e, n.StrOp):
        return f"{_wrap(e.left, _ADD)} {e.op} {_wrap(e.right, _ADD)}"
    if isinstance(e, n.Matches):
        return f"{_wrap(e.left, _ADD)} matches {quote(e.pattern.value)}"
    if isinstance(e, n.Glob):
        return f"{_wrap(e.left, _ADD)} glob {quote(e.pattern.value)}"
    if isinstance(e, n.InCidr):
        return f"{_wrap(e.left, _ADD)} in_cidr {quote(e.cidr.value)}"
    if isinstance(e, n.IsPrivate):
        return f"{_wrap(e.left, _ADD)} is_private"
    if isinstance(e, n.Arith):
        level = _ADD if e.op in "+-" else _MUL
        # left-associative: the right operand needs parentheses at equal strength
        return f"{_wrap(e.left, level)} {e.op} {_wrap(e.right, level + 1)}"
    raise TypeError(f"cannot print {type(e).__name__}")
