"""How a regular expression can start: the characters its matches begin with.

The parser's fast path (:mod:`linnix.language._lark`) skips whitespace and
comments before each token in the token's own match, which is exact only when
no terminal can start like ignored text; this module tells, from the parse
tree Python's ``re._parser`` makes of a pattern.  It relies on
``re._parser.parse(regexp).data``: (op, argument) pairs, ops named
``LITERAL``, ``IN`` (``LITERAL`` and ``RANGE`` items), ``MAX_REPEAT``,
``MIN_REPEAT``, ``POSSESSIVE_REPEAT`` ((low, high, items)), ``SUBPATTERN``
((group, add flags, del flags, items)), ``ATOMIC_GROUP``, ``BRANCH`` ((None,
alternatives)) and ``AT``; ``tests/language/test_lark.py`` checks them.
Anything else makes the answer "unknown".
"""

from __future__ import annotations

import importlib
import re
from typing import Any

__all__ = ["first_chars"]


def first_chars(regexp: str) -> set[str] | None:
    """The characters a match of ``regexp`` can start with; None if unknown or
    if it can match the empty string."""
    try:
        parser = importlib.import_module("re._parser")
        parsed = parser.parse(regexp)
    except (ImportError, re.error):
        return None
    first, nullable = _first_of_seq(list(parsed.data))
    return None if first is None or nullable else first


_MAX_RANGE = 4096


def _first_of_seq(items: list[Any]) -> tuple[set[str] | None, bool]:
    out: set[str] = set()
    for op, arg in items:
        name = str(op)
        chars: set[str] | None
        if name == "LITERAL":
            chars, nullable = {chr(arg)}, False
        elif name == "IN":
            chars, nullable = _first_of_class(arg), False
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, sub = arg
            chars, inner = _first_of_seq(list(sub))
            nullable = low == 0 or inner
        elif name == "SUBPATTERN":
            _group, add_flags, _del_flags, sub = arg
            if add_flags & re.IGNORECASE:
                return None, False
            chars, nullable = _first_of_seq(list(sub))
        elif name == "ATOMIC_GROUP":
            chars, nullable = _first_of_seq(list(arg))
        elif name == "BRANCH":
            chars, nullable = set(), False
            for alternative in arg[1]:
                more, empty = _first_of_seq(list(alternative))
                if more is None:
                    return None, False
                chars |= more
                nullable = nullable or empty
        elif name == "AT":
            chars, nullable = set(), True
        else:
            return None, False
        if chars is None:
            return None, False
        out |= chars
        if not nullable:
            return out, False
    return out, True


def _first_of_class(items: list[Any]) -> set[str] | None:
    chars: set[str] = set()
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            chars.add(chr(arg))
        elif name == "RANGE" and arg[1] - arg[0] <= _MAX_RANGE:
            chars.update(chr(c) for c in range(arg[0], arg[1] + 1))
        else:
            return None
    return chars

