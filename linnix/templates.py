"""Message templates: ``"{comm}[{pid}] at {cpu_pct:.0f}%"``.

:func:`parse_template` splits a template into literal text and placeholders
once, at compile time; :meth:`Template.render` fills it at run time.  A
placeholder whose name has no value renders as ``n/a`` rather than failing.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping

import attrs

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
        if not name or not name.isidentifier():
            shown = name or "{}"
            raise TemplateError(f"placeholder '{shown}' must be a plain name", name_at,
                                max(1, len(name)))
        parts.append(Part(literal, name, spec or "", name_at))
        pos = name_at + len(name) + (len(spec) + 1 if spec else 0) + 1
    return Template(text, tuple(parts))


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
