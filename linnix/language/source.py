"""Source text, positions, and the one place where diagnostics are rendered.

A :class:`Span` is a half-open character range ``[start, end)`` in a
:class:`SourceFile`, with 1-based line and column of both ends.  Every AST
node and every :class:`Diagnostic` carries one, so that every message a user
sees can point at the exact text it is about::

    rules/cpu.lnx:7:10: error[E201]: unknown name 'subtre_cpu_pct' (did you mean ...?)
        when subtre_cpu_pct > 50 for 5s
             ^^^^^^^^^^^^^^
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

__all__ = [
    "Diagnostic",
    "Level",
    "SourceFile",
    "Span",
    "diagnostics_to_json",
    "excerpt",
    "render",
    "render_all",
]


@attrs.define(eq=False)
class SourceFile:
    """The text of one ``.lnx`` file and the path it was read from."""

    path: str
    text: str
    _line_starts: list[int] | None = attrs.field(default=None, init=False, repr=False)

    def line_starts(self) -> list[int]:
        """Offsets at which each line begins (computed once)."""
        if self._line_starts is None:
            starts = [0]
            find = self.text.find
            pos = find("\n")
            while pos >= 0:
                starts.append(pos + 1)
                pos = find("\n", pos + 1)
            self._line_starts = starts
        return self._line_starts

    def line_text(self, line: int) -> str:
        """The text of 1-based ``line`` without its newline ('' if out of range)."""
        starts = self.line_starts()
        if not 1 <= line <= len(starts):
            return ""
        begin = starts[line - 1]
        end = self.text.find("\n", begin)
        return self.text[begin : end if end >= 0 else len(self.text)]

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        starts = self.line_starts()
        line = bisect_right(starts, offset)
        return line, offset - starts[line - 1] + 1

    def span(self, start: int, end: int) -> Span:
        """A span over ``[start, end)`` (``end`` kept inside the text)."""
        return Span(self, start, max(start, min(end, len(self.text))))

    def whole(self) -> Span:
        """A zero-length span at the top of the file (for file-level messages)."""
        return Span(self, 0, 0)


class Span:
    """Where a piece of syntax sits: offsets and 1-based line/column of both ends.

    Only the offsets are stored; line and column are computed from them when
    asked for (a binary search over the file's line starts).  Parsing makes a
    span for nearly every node while only diagnostics and generated code ever
    read a line number, so this keeps construction cheap.  Spans are
    immutable and compare by identity.
    """

    __slots__ = ("end", "source", "start")

    source: SourceFile
    start: int
    end: int

    def __init__(self, source: SourceFile, start: int, end: int) -> None:
        _set(self, "source", source)
        _set(self, "start", start)
        _set(self, "end", end)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Span is immutable (cannot set '{name}')")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Span is immutable (cannot delete '{name}')")

    def __reduce__(self) -> tuple[type[Span], tuple[SourceFile, int, int]]:
        return (Span, (self.source, self.start, self.end))  # for copy and pickle

    def __repr__(self) -> str:
        return (f"Span(source={self.source!r}, start={self.start!r}, end={self.end!r}, "
                f"line={self.line!r}, col={self.col!r}, end_line={self.end_line!r}, "
                f"end_col={self.end_col!r})")

    @property
    def line(self) -> int:
        """1-based line of the start."""
        return self.source.position(self.start)[0]

    @property
    def col(self) -> int:
        """1-based column of the start."""
        return self.source.position(self.start)[1]

    @property
    def end_line(self) -> int:
        """1-based line of the end."""
        return self.source.position(self.end)[0]

    @property
    def end_col(self) -> int:
        """1-based column of the end (one past the last character)."""
        return self.source.position(self.end)[1]

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def text(self) -> str:
        """The source text the span covers."""
        return self.source.text[self.start : self.end]

    def where(self) -> str:
        line, col = self.source.position(self.start)
        return f"{self.source.path}:{line}:{col}"

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(self.source, self.start, other.end)


_set = object.__setattr__


class Level(enum.Enum):
    """How serious a diagnostic is.  Errors stop ``run``; warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@attrs.frozen
class Diagnostic:
    """One finding about the source: a code, a level, a message and a span."""

    code: str
    level: Level
    message: str
    span: Span
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.level is Level.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.span.path, self.span.start, self.span.end, self.code)

    def to_json(self) -> dict[str, Any]:
        s = self.span
        return {
            "path": s.path,
            "line": s.line,
            "col": s.col,
            "end_line": s.end_line,
            "end_col": s.end_col,
            "level": self.level.value,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


def _expand_tabs(text: str) -> str:
    return text.replace("\t", "    ")


def excerpt(diag: Diagnostic) -> str | None:
    """Two lines: the source line a diagnostic is about (a window of a very long one)
    and the carets under its span; None when it points at no text (a file that is gone)."""
    s = diag.span
    line = s.source.line_text(s.line)
    if not line and s.start == s.end == 0 and not s.source.text:
        return None
    prefix = _expand_tabs(line[: max(0, s.col - 1)])
    last = len(line) + 1 if s.end_line > s.line else s.end_col
    width = max(1, len(_expand_tabs(line[s.col - 1 : last - 1])))
    shown = _expand_tabs(line)
    if len(shown) > 200:  # keep huge lines readable: show a window around the span
        lo = max(0, len(prefix) - 60)
        shown = shown[lo : lo + 160]
        prefix = prefix[lo:]
        width = min(width, max(1, 160 - len(prefix)))
    return f"{shown}\n{' ' * len(prefix)}{'^' * width}"


def render(diag: Diagnostic) -> str:
    """Render one diagnostic: header, the source line, and carets under the span."""
    s = diag.span
    out = f"{s.where()}: {diag.level.value}[{diag.code}]: {diag.message}"
    lines = excerpt(diag)
    if lines is not None:
        out += "".join(f"\n    {line}" for line in lines.split("\n"))
    if diag.hint:
        out += f"\n    = help: {diag.hint}"
    return out


def render_all(diags: Sequence[Diagnostic], limit: int | None = None) -> str:
    """Render diagnostics in order, capped at ``limit`` with an '... and N more' line."""
    shown = list(diags) if limit is None else list(diags)[:limit]
    parts = [render(d) for d in shown]
    rest = len(diags) - len(shown)
    if rest > 0:
        parts.append(f"... and {rest} more")
    return "\n".join(parts)


def diagnostics_to_json(diags: Iterable[Diagnostic]) -> list[dict[str, Any]]:
    return [d.to_json() for d in diags]
