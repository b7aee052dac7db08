"""What a file can see: its ``let`` constants and ``macro`` definitions.

One :class:`Env` per loaded file holds the declarations of that file and of
everything it includes.  Constants are stored already evaluated (a
:class:`Const`: value, type, dimension), so later stages never re-evaluate
them.
"""

from __future__ import annotations

import attrs

from ..names import Dim, Type
from . import nodes as n

__all__ = ["Const", "ConstValue", "Env"]

ConstValue = float | str | bool | tuple[object, ...]


@attrs.frozen
class Const:
    """An evaluated constant: numbers are already in their dimension's base unit."""

    value: ConstValue
    type: Type
    dim: Dim | None = None  # None: a bare number, takes the unit of its partner


@attrs.define
class Env:
    """The lets and macros visible in one file."""

    path: str
    lets: dict[str, n.Let] = attrs.field(factory=dict)
    macros: dict[str, n.Macro] = attrs.field(factory=dict)
    consts: dict[str, Const | None] = attrs.field(factory=dict)  # None: invalid let
    # names defined by declarations a syntax error left out: never reported unknown
    lost: frozenset[str] = frozenset()
    # every file's environment, shared by all of them, to find where a name lives
    registry: dict[str, Env] = attrs.field(factory=dict, repr=False)

    def lookup(self, name: str) -> n.Let | n.Macro | None:
        return self.lets.get(name) or self.macros.get(name)

    def home_of(self, decl: n.Let | n.Macro) -> Env:
        """The environment of the file that defines ``decl``."""
        return self.registry.get(decl.span.path, self)

    def names(self) -> list[str]:
        return [*self.lets, *self.macros]
