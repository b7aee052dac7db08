"""Message templates: ``"{comm}[{pid}] at {cpu_pct:.0f}%"``.

:func:`parse_template` splits a template into literal text and placeholders
once, at compile time; :meth:`Template.render` fills it at run time.  A
placeholder whose name has no value renders as ``n/a`` rather than failing.

A placeholder names a value (``pid``), a field of an ancestor
(``parent.parent.comm``) or of an action's target (``target.pid``), or is a
function call, ``{crashes(exe, 5m)}`` or ``{count(comm == "sshd"):d}``: its
name is then the call's text, which the checker parses as an expression.  A
list renders as ``a, b, c``.  The ``%`` format of a name in percent points
(``cpu_pct``, ``psi_*``) prints the percentage it holds: ``{cpu_pct:.1%}`` of
80 is ``80.0%``, not the ``8000.0%`` of Python's ``%``, which multiplies a
fraction by 100.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping

import attrs

from .names import METRICS, Dim

__all__ = ["Part", "Template", "TemplateError", "parse_template"]


class TemplateError(ValueError):
    """A malformed template; ``offset`` is where in the template text."""

    def __init__(self, message: str, offset: int, length: int = 1) -> None:
        super().__init__(message)
        self.offset = offset
        self.length = length


@attrs.frozen
class Part:
    """Literal text followed by an optional placeholder ``{name:spec}``."""

    text: str
    name: str | None
    spec: str
    offset: int  # of the placeholder's name within the template text
    # what the value is divided by before it is formatted: 100 for a name in percent
    # points under the '%' format, which multiplies by 100 again
    divisor: float = 1.0


@attrs.frozen
class Template:
    """A parsed template."""

    source: str
    parts: tuple[Part, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if p.name is not None)

    def render(self, values: Mapping[str, object]) -> str:
        out: list[str] = []
        for part in self.parts:
            out.append(part.text)
            if part.name is None:
                continue
            value = values.get(part.name)
            if value is None:
                out.append("n/a")
                continue
            if isinstance(value, (tuple, list)):  # ancestors: "bash, sshd, systemd"
                value = ", ".join(str(item) for item in value)
            elif part.divisor != 1.0 and isinstance(value, (int, float)):
                value = value / part.divisor
            try:
                out.append(format(value, part.spec))
                continue
            except (ValueError, TypeError):
                pass
            if isinstance(value, float) and math.isfinite(value):
                try:  # an integer specification ('d', 'x', ...) given a float
                    out.append(format(round(value), part.spec))
                    continue
                except (ValueError, TypeError):
                    pass
            out.append(str(value))
        return "".join(out)


def parse_template(text: str) -> Template:
    """Split ``text``; raise TemplateError for malformed braces or placeholders."""
    parts: list[Part] = []
    pos = 0
    for start, name, spec, end in _calls(text):
        before = _parse_plain(text[pos:start], pos)
        literal = ""
        if before and before[-1].name is None:  # the text before the call is its literal
            literal = before.pop().text
        parts += [*before, Part(literal, name, spec, start + 1)]
        pos = end
    if pos == 0:
        return Template(text, tuple(_parse_plain(text, 0)))
    parts += _parse_plain(text[pos:], pos)
    return Template(text, tuple(parts))


# the start of a function call placeholder: '{' then a name and '(' (not after '{{')
_CALL_START = re.compile(r"\{[a-z_][a-z0-9_]*\(")


def _calls(text: str) -> list[tuple[int, str, str, int]]:
    """The function call placeholders of ``text``: (where its '{' is, the call's text, its
    format specification, just after its '}').

    A call may hold anything an expression holds (``!=``, ``:`` in a string,
    brackets), which the standard placeholder syntax cannot: it ends at the
    ')' that closes its '(' outside double-quoted strings, then an optional
    ``:spec`` and '}'.
    """
    out: list[tuple[int, str, str, int]] = []
    i = 0
    while (m := _CALL_START.search(text, i)) is not None:
        start = m.start()
        if _escaped_brace(text, start):
            i = start + 1
            continue
        close = _closing(text, m.end())
        if close is None:
            raise TemplateError("a function call in the message is never closed", start + 1,
                                max(1, len(text) - start - 1))
        brace = text.find("}", close)
        between = text[close + 1:brace] if brace >= 0 else text[close + 1:]
        if brace < 0 or (between and not between.startswith(":")) or "{" in between:
            raise TemplateError("a function call in a message ends with '}' or ':spec}'",
                                close + 1)
        out.append((start, text[start + 1:close + 1], between[1:], brace + 1))
        i = brace + 1
    return out


def _escaped_brace(text: str, at: int) -> bool:
    """Whether the '{' at ``at`` is the second of a literal '{{'."""
    run = 0
    while at - run - 1 >= 0 and text[at - run - 1] == "{":
        run += 1
    return run % 2 == 1


def _closing(text: str, i: int) -> int | None:
    """Where the ')' closing the '(' just before ``i`` is (None if it is not)."""
    depth, quoted, escaped = 1, False, False
    for j in range(i, len(text)):
        ch = text[j]
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return j
    return None


def _parse_plain(text: str, base: int) -> list[Part]:
    """The parts of a template with no function call; offsets from ``base``."""
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as err:
        raise TemplateError(f"invalid message template: {err}",
                            base + _brace_offset(text)) from None
    parts: list[Part] = []
    pos = base
    for literal, name, spec, conversion in pieces:
        pos += len(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            parts.append(Part(literal, None, "", pos))
            continue
        name_at = pos + 1
        if conversion:
            raise TemplateError(f"conversion '!{conversion}' is not supported", name_at)
        if not name or not all(word.isidentifier() for word in name.split(".")):
            shown = name or "{}"
            raise TemplateError(f"placeholder '{shown}' must be a plain name", name_at,
                                max(1, len(name)))
        parts.append(Part(literal, name, spec or "", name_at, _divisor(name, spec or "")))
        pos = name_at + len(name) + (len(spec) + 1 if spec else 0) + 1
    return parts


def _divisor(name: str, spec: str) -> float:
    """100 for a name in percent points under the ``%`` format, else 1."""
    if not spec.endswith("%"):
        return 1.0
    field = name.rpartition(".")[2]  # parent.cpu_pct, target.cpu_pct: the field's unit
    metric = METRICS.get(field)
    return 100.0 if metric is not None and metric.dim is Dim.PERCENT else 1.0


def _brace_offset(text: str) -> int:
    depth = 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
    return max(0, text.rfind("{"))
