"""Linear-time patterns for ``matches`` and ``glob``: RE2, never backtracking.

The text that rules match against comes from processes (command lines,
paths, names), so any process could otherwise choose an input that makes a
backtracking engine run for minutes.  RE2 takes time linear in the text for
every pattern it accepts; what it cannot do in linear time (look-around,
backreferences, atomic groups, possessive repeats) it refuses, and
:func:`compile_regex` turns that refusal into a :class:`PatternError` that the
checker reports as E306.  Glob patterns are translated to RE2 as well.

Matching goes through the RE2 object of the ``google-re2`` package directly
(its ``re``-like wrapper builds a match object with character offsets, which
costs several times the match itself); ``tests`` check that the fast path is
the one in use, so a change of that package fails loudly.
"""

from __future__ import annotations

import string

import attrs
import re2

__all__ = ["Pattern", "PatternError", "compile_glob", "compile_regex", "glob_to_regex"]

try:  # the package's compiled core; the public wrapper is the fallback
    from re2 import _re2

    _FAST = hasattr(_re2.RE2, "Match") and hasattr(_re2.RE2, "Anchor")
except ImportError:  # pragma: no cover - depends on the installed package
    _FAST = False

@attrs.frozen
class PatternError(Exception):
    """A pattern RE2 refuses: what it says, the fragment it names, and a hint."""

    message: str
    fragment: str | None = None  # the part of the pattern it is about, when known
    hint: str | None = None
    at: int | None = None  # where that part starts in the pattern, when known


# What RE2 refuses that Python's re accepts, by the start of its error text.
_UNSUPPORTED = (
    ("invalid perl operator: (?=", "look-ahead"),
    ("invalid perl operator: (?!", "look-ahead"),
    ("invalid perl operator: (?<=", "look-behind"),
    ("invalid perl operator: (?<!", "look-behind"),
    ("invalid perl operator: (?>", "an atomic group"),
    ("bad repetition operator: *+", "a possessive repeat"),
    ("bad repetition operator: ++", "a possessive repeat"),
    ("bad repetition operator: ?+", "a possessive repeat"),
)
_LINEAR = ("'matches' uses RE2 syntax, which leaves out what cannot run in time linear "
           "in the text")


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refusal on stderr
    options.never_capture = True  # only whether it matches is ever asked
    return options


def _explain(error: str, pattern: str) -> PatternError:
    message, _, fragment = error.partition(": ")
    if message == "missing )":
        at = _unclosed_group(pattern)
        return PatternError("missing ')': a group is never closed",
                            None if at is None else "(", None, at)
    if error == "invalid perl operator: (?P" and "(?P=" in pattern:
        return PatternError("a backreference is not supported", "(?P=", _LINEAR)
    for prefix, what in _UNSUPPORTED:
        if error.startswith(prefix):
            return PatternError(f"{what} is not supported", fragment, _LINEAR)
    if error.startswith("invalid escape sequence: \\") and error[-1:].isdigit():
        return PatternError("a backreference is not supported", fragment, _LINEAR)
    if error == "invalid escape sequence: \\Z":
        return PatternError("'\\Z' is not supported", fragment,
                            "write '\\z' for the end of the text")
    if error.startswith("invalid repetition size"):
        return PatternError(error, fragment, "a repeat count may be at most 1000")
    if error.startswith("pattern too large"):
        return PatternError("the expression is too large", None,
                            "RE2 keeps every compiled expression under 8 MiB; simplify it")
    return PatternError(message if fragment else error, fragment or None)


def _unclosed_group(pattern: str) -> int | None:
    """Where the last '(' that is never closed is, skipping escapes and classes."""
    opened: list[int] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]":  # a ']' first is a member
                i += 1
        elif c == "(":
            opened.append(i)
        elif c == ")" and opened:
            opened.pop()
        i += 1
    return opened[-1] if opened else None


def _compile(pattern: str) -> object:
    try:
        encoded = pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise PatternError("the expression is not valid text") from None
    if _FAST:
        compiled = _re2.RE2(encoded, _options())
        if not compiled.ok():
            raise _explain(compiled.error().decode("utf-8", "replace"), pattern)
        return compiled
    try:  # pragma: no cover - only without the compiled core
        return re2.compile(pattern, _options())
    except re2.error as err:  # pragma: no cover
        raise _explain(str(err.args[0] if err.args else err), pattern) from None


class Pattern:
    """A compiled pattern; :meth:`test` says whether a text matches it."""

    __slots__ = ("_anchor", "_match", "regex", "source", "whole")

    def __init__(self, source: str, regex: str, whole: bool) -> None:
        self.source = source  # as the rule wrote it
        self.regex = regex  # in RE2 syntax
        self.whole = whole  # the whole text must match, not just a part of it
        compiled = _compile(regex)
        if _FAST:
            self._match = compiled.Match  # type: ignore[attr-defined]
            self._anchor = (_re2.RE2.Anchor.ANCHOR_BOTH if whole
                            else _re2.RE2.Anchor.UNANCHORED)
        else:  # pragma: no cover - only without the compiled core
            self._match = compiled.fullmatch if whole else compiled.search  # type: ignore
            self._anchor = None

    def test(self, text: str) -> bool:
        """Whether ``text`` matches; time linear in its length."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: matched as the bytes it would be
            data = text.encode("utf-8", "surrogatepass")
        if self._anchor is None:  # pragma: no cover - only without the compiled core
            return self._match(data) is not None
        return bool(self._match(self._anchor, data, 0, len(data))[0][0] >= 0)

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


def compile_regex(pattern: str) -> Pattern:
    """A test for ``pattern`` anywhere in a text (search semantics).

    Raises :class:`PatternError` for a pattern RE2 refuses.
    """
    return Pattern(pattern, pattern, whole=False)


def compile_glob(pattern: str) -> Pattern:
    """A test for a whole text against a shell-style pattern; every pattern is valid."""
    return Pattern(pattern, glob_to_regex(pattern), whole=True)


def glob_to_regex(pattern: str) -> str:
    """RE2 syntax for a shell-style pattern, with :func:`fnmatch.fnmatchcase`'s meaning.

    ``*`` is any run of characters (``/`` and newlines included), ``?`` one
    character, ``[abc]``, ``[a-z]`` and ``[!abc]`` sets; a ``[`` that is never
    closed is itself.  A set whose every range is reversed matches nothing.
    """
    out = ["(?s)"]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = _set_end(pattern, i)
            if end < 0:
                out.append(r"\[")
            else:
                out.append(_set(pattern[i:end]))
                i = end + 1
        else:
            out.append(_literal(c))
    return "".join(out)


def _set_end(pattern: str, i: int) -> int:
    """The index of the ``]`` closing a set that opens before ``i``; -1 when none does."""
    j = i
    if j < len(pattern) and pattern[j] == "!":
        j += 1
    if j < len(pattern) and pattern[j] == "]":  # a ']' first is a member
        j += 1
    end = pattern.find("]", j)
    return end


def _set(body: str) -> str:
    negate = body.startswith("!")
    if negate:
        body = body[1:]
        if not body:  # '[!]' cannot happen (']' would be a member); kept for clarity
            return "."
    parts, i = [], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            low, high = body[i], body[i + 2]
            if low <= high:
                parts.append(f"{_member(low)}-{_member(high)}")
            i += 3
        else:
            parts.append(_member(body[i]))
            i += 1
    if not parts:  # only reversed ranges: nothing matches, or anything when negated
        return "." if negate else "[^\\x00-\\x{10FFFF}]"
    return ("[^" if negate else "[") + "".join(parts) + "]"


def _member(c: str) -> str:
    """A character inside an RE2 set."""
    return "\\" + c if c in "\\]^-[" else _literal_code(c)


def _literal(c: str) -> str:
    """A character outside a set."""
    return "\\" + c if c in _PUNCTUATION else _literal_code(c)


_PUNCTUATION = frozenset(string.punctuation)


def _literal_code(c: str) -> str:
    return f"\\x{{{ord(c):x}}}" if not c.isprintable() else c
