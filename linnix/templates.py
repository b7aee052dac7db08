"""Message templates: ``"{comm}[{pid}] at {cpu_pct:.0f}%"``.

:func:`parse_template` splits a template into literal text and placeholders
once, at compile time; :meth:`Template.render` fills it at run time.  A
placeholder whose name has no value renders as ``n/a`` rather than failing.

A placeholder names a value (``pid``), a field of an ancestor
(``parent.parent.comm``) or of an action's target (``target.pid``).  A list
renders as ``a, b, c``.  The ``%`` format of a name in percent points
(``cpu_pct``, ``psi_*``) prints the percentage it holds: ``{cpu_pct:.1%}`` of
80 is ``80.0%``, not the ``8000.0%`` of Python's ``%``, which multiplies a
fraction by 100.
"""

from __future__ import annotations

import math
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
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as err:
        raise TemplateError(f"invalid message template: {err}", _brace_offset(text)) from None
    parts: list[Part] = []
    pos = 0
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
    return Template(text, tuple(parts))


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
