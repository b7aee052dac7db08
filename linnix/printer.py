"""Expressions back to text: canonical spacing, the fewest parentheses needed.

Used by ``linnix explain`` (conditions after optimisation), by ``linnix fmt``
and by the comments of generated code.
"""

from __future__ import annotations

from . import nodes as n

__all__ = ["number", "quote", "to_text"]

# Binding strength, loosest first; an operand binding looser than its parent
# needs parentheses.
_OR, _AND, _NOT, _CMP, _ADD, _MUL, _NEG, _ATOM = range(8)


def number(value: float) -> str:
    """``50`` rather than ``50.0``; full precision otherwise."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped.replace("\t", "\\t") + '"'


def _strength(e: n.Expr) -> int:
    if isinstance(e, n.Or):
        return _OR
    if isinstance(e, n.And):
        return _AND
    if isinstance(e, n.Not):
        return _NOT
    if isinstance(e, (n.Compare, n.In, n.StrOp, n.Matches, n.Glob)):
        return _CMP
    if isinstance(e, n.Arith):
        return _ADD if e.op in "+-" else _MUL
    if isinstance(e, n.Neg):
        return _NEG
    return _ATOM


def _wrap(e: n.Expr, minimum: int) -> str:
    text = to_text(e)
    return f"({text})" if _strength(e) < minimum else text


def to_text(e: n.Expr) -> str:
    """The canonical text of an expression."""
    if isinstance(e, n.Number):
        return number(e.value)
    if isinstance(e, n.Quantity):
        return f"{number(e.value)}{e.unit}"
    if isinstance(e, n.String):
        return quote(e.value)
    if isinstance(e, n.Bool):
        return "true" if e.value else "false"
    if isinstance(e, n.List):
        return "[" + ", ".join(to_text(i) for i in e.items) + "]"
    if isinstance(e, n.Name):
        return e.id
    if isinstance(e, n.Attr):
        return f"{e.obj}.{e.attr}"
    if isinstance(e, n.Call):
        return f"{e.func}(" + ", ".join(to_text(a) for a in e.args) + ")"
    if isinstance(e, n.Signal):
        return e.name
    if isinstance(e, n.Or):
        return " or ".join(_wrap(i, _AND) for i in e.items)
    if isinstance(e, n.And):
        return " and ".join(_wrap(i, _NOT) for i in e.items)
    if isinstance(e, n.Not):
        # "not (a > b)" reads better than the equivalent "not a > b"
        return "not " + _wrap(e.operand, _NEG)
    if isinstance(e, n.Neg):
        return "-" + _wrap(e.operand, _NEG)
    return _binary(e)


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
    if isinstance(e, n.Arith):
        level = _ADD if e.op in "+-" else _MUL
        # left-associative: the right operand needs parentheses at equal strength
        return f"{_wrap(e.left, level)} {e.op} {_wrap(e.right, level + 1)}"
    raise TypeError(f"cannot print {type(e).__name__}")
