"""Warnings about comparisons that cannot mean what they say.

A comparison can be well typed and still never hold, or hold for a reason its
author did not intend: ``comm == "a-name-longer-than-15"`` (the kernel keeps
15 characters of a program's name), ``fd_pct > 150`` (a share of a limit is at
most 100%), ``fd_pct > 0.8`` (a fraction written where percent is meant: 0.8%,
not 80%).  :func:`comparison_warnings` finds them in one condition (W112,
W113); the rule still runs.

Only literals are judged: a value that comes from a ``let`` may be meant for
several uses, and the comparison is what the author wrote.
"""

from __future__ import annotations

from ..names import METRICS, Dim
from . import nodes as n
from .source import Diagnostic, Level

__all__ = ["BOUNDED_PERCENT", "COMM_MAX", "comparison_warnings"]

# The kernel's TASK_COMM_LEN is 16 bytes with the terminating NUL; a name decoded
# from at most 15 bytes has at most 15 characters.
COMM_MAX = 15

# Percent names that are a share of a whole, so never above 100 (cpu_pct and
# subtree_cpu_pct are percent of one CPU and may exceed it).
BOUNDED_PERCENT = frozenset({
    "host_cpu_pct", "host_mem_used_pct", "fd_pct",
    "psi_cpu_some", "psi_mem_some", "psi_mem_full", "psi_io_some", "psi_io_full",
})

_FLIPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}
_NEVER_LONGER = ("==", "startswith", "endswith", "contains")


def comparison_warnings(expr: n.Expr) -> list[Diagnostic]:
    """W112 and W113 for the comparisons of condition ``expr`` (through ``and``,
    ``or`` and ``not``)."""
    out: list[Diagnostic] = []
    todo = [expr]
    while todo:  # every rule's conditions pass here: type tests only, until a literal
        e = todo.pop()
        kind = type(e)
        if kind is n.And or kind is n.Or:
            todo += reversed(e.items)  # type: ignore[union-attr]
        elif kind is n.Not:
            todo.append(e.operand)  # type: ignore[union-attr]
        elif kind is n.Compare:
            if type(e.right) is n.String or type(e.left) is n.String:  # type: ignore[union-attr]
                out += _comm_length(e)
            else:
                out += percent_warnings(e)  # type: ignore[arg-type]
        elif kind is n.StrOp or kind is n.In:
            out += _comm_length(e)
    return out


def _field(e: n.Expr) -> str | None:
    """The process field an operand reads (``comm``, ``parent.comm``: ``comm``)."""
    if isinstance(e, n.Name):
        return e.id
    if isinstance(e, n.Attr):
        return e.attr
    return None


def _comm_length(node: n.Expr) -> list[Diagnostic]:
    """A name compared with a literal longer than a process's name can be."""
    if isinstance(node, n.In) and not node.negated and _field(node.left) == "comm":
        items = node.right.items if isinstance(node.right, n.List) else ()
        return [_too_long(node.left, item, item) for item in items
                if isinstance(item, n.String) and len(item.value) > COMM_MAX]
    if not isinstance(node, (n.Compare, n.StrOp)) or node.op not in _NEVER_LONGER:
        return []
    name, literal = node.left, node.right
    if node.op == "==" and isinstance(name, n.String):
        name, literal = literal, name
    if _field(name) != "comm" or not isinstance(literal, n.String):
        return []
    if len(literal.value) <= COMM_MAX:
        return []
    return [_too_long(name, literal, node)]


def _too_long(name: n.Expr, literal: n.String, where: n.Expr) -> Diagnostic:
    said = name.span.text
    return Diagnostic(
        "W112", Level.WARNING,
        f"this never holds: '{said}' is at most {COMM_MAX} characters and "
        f"{_shown(literal.span.text)} has {len(literal.value)}",
        where.span,
        "the kernel keeps the first 15 characters of a program's name; compare "
        f"'exe' or 'cmdline', or write {_quoted(literal.value[:COMM_MAX])}")


def _shown(written: str) -> str:
    """A string literal as written, cut short when long (a literal may hold 64 KiB)."""
    return written if len(written) <= 40 else written[:36] + '..."'


def _quoted(value: str) -> str:
    """``value`` as a string literal of the language (its four escapes)."""
    for raw, escape in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\t", "\\t")):
        value = value.replace(raw, escape)
    return f'"{value}"'


def percent_warnings(node: n.Compare) -> list[Diagnostic]:
    """A 0-100 percent name compared with a literal above 100 (never holds, W112)
    or with a bare fraction such as 0.8 (80% was probably meant, W113)."""
    op, name, literal = node.op, node.left, node.right
    if isinstance(name, (n.Number, n.Quantity)):
        op, name, literal = _FLIPPED[op], literal, name
    field = _field(name)
    if field not in BOUNDED_PERCENT or METRICS[field].dim is not Dim.PERCENT:
        return []
    if isinstance(literal, n.Quantity) and literal.unit == "%":
        value, bare = literal.value, False
    elif isinstance(literal, n.Number):
        value, bare = literal.value, True
    else:
        return []
    if (op == ">" and value >= 100) or (op in (">=", "==") and value > 100):
        return [Diagnostic("W112", Level.WARNING,
                           f"this never holds: '{field}' is at most 100%", node.span)]
    if bare and 0 < value < 1:
        return [Diagnostic("W113", Level.WARNING,
                           f"'{field}' is in percent (0-100): '{node.span.text}' compares with "
                           f"{value:g}%; did you mean {value * 100:g}%?", literal.span,
                           f"write {value * 100:g} for {value * 100:g}%, or {value:g}% "
                           f"if {value:g}% is meant")]
    return []
