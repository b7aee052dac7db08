"""The unit algebra of expressions: what ``*``, ``/`` and comparisons do with units.

One table, read by the checker (:mod:`linnix.language.infer`: the result's
dimension, or why the mix is impossible) and by the optimiser
(:mod:`linnix.language.optimizer`: where a percentage becomes a fraction).

A percentage is kept in percent points (``cpu_pct`` 90 is 90, ``50%`` is 50),
so ``cpu_pct > 90%`` compiles to ``cpu_pct > 90``.  Where a percentage meets
something that is not a percentage, it is a quantity N/100: ``50% * rss_mb``
is ``0.5 * rss_mb``; ``rss_mb / mem_total_mb > 50%`` is ``> 0.5``.  A side
that must be read as a fraction is divided by :data:`PER_CENT`.

A bare number (no unit) takes the unit of what it meets in a sum or a
comparison (``cpu_pct > 90`` is ``> 90%``) and is a plain factor in a product
or a quotient (``cpu_pct * 2`` is a percentage).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..names import METRICS, UNITS, Dim
from . import nodes as n
from .env import Env

__all__ = ["PER_CENT", "Combined", "combine", "dim_of"]

PER_CENT = 100.0  # percent points over this are a fraction
_PHYSICAL = (Dim.SIZE, Dim.DURATION)


@attrs.frozen
class Combined:
    """The result of ``left OP right``: its dimension, and what each side is divided
    by (1.0, or :data:`PER_CENT` for a percentage read as a fraction).  ``error``
    says why the mix is impossible (then the rest means nothing)."""

    dim: Dim | None
    left: float = 1.0
    right: float = 1.0
    error: str | None = None


def combine(op: str, a: Dim | None, b: Dim | None, *, ratio: bool = True) -> Combined:
    """``a OP b`` for an arithmetic operator or a comparison (``>``, ``==``, ...).

    ``ratio``: whether the plain side of a comparison is a ratio (a quotient,
    ``rss_mb / mem_total_mb``); a percentage is compared with a plain number
    only then: in ``procs > 5%`` or ``cpu_pct > 90 * ncpu`` a count was meant
    to be compared with percent points, or was not meant at all.
    """
    if op == "*":
        return _product(a, b)
    if op == "/":
        return _quotient(a, b)
    return _same(op, a, b, ratio)


def _same(op: str, a: Dim | None, b: Dim | None, ratio: bool) -> Combined:
    """``+``, ``-`` and comparisons: both sides in one unit."""
    if a is None or b is None or a is b:
        return Combined(a or b)
    comparison = op not in "+-"
    if comparison and {a, b} == {Dim.PLAIN, Dim.PERCENT} and ratio:
        # the percentage becomes a fraction: x / y > 50% is x / y > 0.5
        return Combined(Dim.PLAIN, *((PER_CENT, 1.0) if a is Dim.PERCENT else (1.0, PER_CENT)))
    if comparison:
        return Combined(None, error="unit mismatch")
    return Combined(None, error=f"cannot combine {a.value} and {b.value} with '{op}'")


def _product(a: Dim | None, b: Dim | None) -> Combined:
    if a is None or b is None:
        return Combined(a or b)
    if a in _PHYSICAL and b in _PHYSICAL:
        return Combined(None, error=f"cannot multiply {a.value} by {b.value}")
    if a in _PHYSICAL or b in _PHYSICAL:  # percent x size = size, 50% of it
        physical = a if a in _PHYSICAL else b
        return Combined(physical, _divisor(a), _divisor(b))
    if a is Dim.PERCENT and b is Dim.PERCENT:  # 50% of 50% is 25%
        return Combined(Dim.PERCENT, 1.0, PER_CENT)
    return Combined(Dim.PERCENT if Dim.PERCENT in (a, b) else Dim.PLAIN)


def _quotient(a: Dim | None, b: Dim | None) -> Combined:
    if a is None and b is None:
        return Combined(None)
    if a is b:
        return Combined(Dim.PLAIN)  # size / size, percent / percent: a ratio
    if b in _PHYSICAL:  # a rate (MiB per second): a unit of no name, a bare number
        return Combined(None)
    if a in _PHYSICAL:  # size / 50% is twice the size
        return Combined(a, 1.0, _divisor(b))
    if b is Dim.PERCENT:  # a plain number over a percentage: over the fraction
        return Combined(Dim.PLAIN, 1.0, PER_CENT)
    return Combined(a or b)  # percent / plain = percent


def _divisor(dim: Dim | None) -> float:
    return PER_CENT if dim is Dim.PERCENT else 1.0


def dim_of(e: n.Expr, env: Env, memo: dict[int, Dim | None]) -> Dim | None:
    """The dimension of a checked expression (``memo``: by node, for this walk)."""
    key = id(e)
    if key in memo:
        return memo[key]
    reader = _DIMS.get(type(e))
    dim = reader(e, env, memo) if reader is not None else None
    memo[key] = dim
    return dim


def _dim_name(e: n.Name, env: Env, memo: dict[int, Dim | None]) -> Dim | None:
    if e.id in env.lets:
        const = env.consts.get(e.id)
        return const.dim if const is not None else None
    if e.id in env.macros:
        decl = env.macros[e.id]
        return dim_of(decl.expr, env.home_of(decl), memo)
    metric = METRICS.get(e.id)
    return metric.dim if metric is not None and metric.numeric else None


def _dim_arith(e: n.Arith, env: Env, memo: dict[int, Dim | None]) -> Dim | None:
    return combine(e.op, dim_of(e.left, env, memo), dim_of(e.right, env, memo)).dim


def _metric_dim(name: str) -> Dim | None:
    metric = METRICS.get(name)
    return metric.dim if metric is not None and metric.numeric else None


_DIMS: dict[type, Callable[..., Dim | None]] = {
    n.Quantity: lambda e, env, memo: UNITS[e.unit].dim,
    n.Name: _dim_name,
    n.Attr: lambda e, env, memo: _metric_dim(e.attr),
    n.Call: lambda e, env, memo: _metric_dim(getattr(e.args[0], "id", "")),
    n.Neg: lambda e, env, memo: dim_of(e.operand, env, memo),
    n.Arith: _dim_arith,
}
