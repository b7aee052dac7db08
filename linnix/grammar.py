"""Build the LALR parser once and turn Lark's errors into diagnostics.

The grammar ships inside the package (``linnix/linnix.lark``).  Building the
LALR tables takes longer than checking a whole rule pack, so the built parser
is cached on disk (keyed by a hash of the grammar and the Lark version) and
in memory.  :func:`parse` returns Lark's tree or raises
:class:`~linnix.errors.RuleSyntaxError` holding every syntax error it could
find: after an error, parsing resumes at the next top-level declaration.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
from importlib import resources
from typing import TYPE_CHECKING

from .errors import RuleSyntaxError
from .source import Diagnostic, Level, SourceFile

if TYPE_CHECKING:
    import lark

__all__ = ["grammar_text", "parse", "parser"]

MAX_SYNTAX_ERRORS = 20

_FRIENDLY = {
    "NAME": "a name",
    "NUMBER": "a number",
    "QUANTITY": "a number with a unit",
    "STRING": "a string",
    "SIGNAL": "a signal name",
    "COMP_OP": "a comparison",
    "STR_OP": "'startswith', 'endswith' or 'contains'",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*' or '/'",
    "STATE": "'firing', 'resolved' or 'pending'",
    "TIMES": "'times'",
    "$END": "end of file",
}
_TOP_LEVEL = re.compile(r"^[ \t]*(rule|let|macro|include|test)\b", re.MULTILINE)


def grammar_text() -> str:
    """The grammar, read from the installed package."""
    return resources.files("linnix").joinpath("linnix.lark").read_text(encoding="utf-8")


def _cache_path(text: str) -> str:
    import lark

    key = hashlib.sha256(f"{lark.__version__}\0{text}".encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(tempfile.gettempdir())
    return os.path.join(base, f"linnix-grammar-{os.getuid()}-{key}.cache")


@functools.cache
def parser() -> lark.Lark:
    """The LALR parser (positions on), built or loaded from the disk cache once."""
    import lark

    text = grammar_text()
    options = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": True}
    path = _cache_path(text)
    try:
        with open(path, "rb") as f:
            return lark.Lark.load(f)
    except Exception:  # absent, unreadable or stale cache: build afresh
        pass
    built = lark.Lark(text, **options)
    try:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            built.save(f)
        os.replace(tmp, path)  # atomic: concurrent readers never see half a file
    except OSError:
        pass
    return built


def _describe(names: object) -> str:
    p = parser()
    shown: list[str] = []
    for name in sorted(names):  # type: ignore[call-overload]
        if name in _FRIENDLY:
            shown.append(_FRIENDLY[name])
            continue
        try:
            pattern = p.get_terminal(name).pattern
        except KeyError:
            shown.append(name.lower())
            continue
        shown.append(f"'{pattern.value}'")
    unique = sorted(set(shown))
    if len(unique) > 8:
        return ", ".join(unique[:8]) + ", ..."
    return ", ".join(unique)


def _error_diagnostic(source: SourceFile, err: Exception) -> tuple[Diagnostic, int]:
    """A diagnostic for one Lark error and the offset where the error sits."""
    import lark

    if isinstance(err, lark.UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        ch = source.text[pos] if pos < len(source.text) else ""
        if ch == '"':
            msg, end = "unterminated string", source.text.find("\n", pos)
            end = len(source.text) if end < 0 else end
            return Diagnostic("E102", Level.ERROR, msg, source.span(pos, end)), pos
        shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}" if ch else "end of file"
        msg = f"unexpected character {shown}"
        if err.allowed:
            msg += f"; expected {_describe(err.allowed)}"
        return Diagnostic("E101", Level.ERROR, msg, source.span(pos, pos + 1)), pos
    if isinstance(err, lark.UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            pos = len(source.text)
            found = "end of file"
        else:
            pos = tok.start_pos or 0
            found = f"'{tok.value}'"
        msg = f"unexpected {found}; expected {_describe(err.expected)}"
        end = pos + len(str(tok.value)) if tok.type != "$END" else pos
        return Diagnostic("E100", Level.ERROR, msg, source.span(pos, end)), pos
    if isinstance(err, lark.UnexpectedEOF):
        pos = len(source.text)
        msg = f"unexpected end of file; expected {_describe(err.expected)}"
        return Diagnostic("E100", Level.ERROR, msg, source.span(pos, pos)), pos
    raise err


def _blank(text: str, start: int, end: int) -> str:
    """Replace text[start:end] by spaces, keeping newlines (so positions hold)."""
    middle = "".join(c if c == "\n" else " " for c in text[start:end])
    return text[:start] + middle + text[end:]


def parse(source: SourceFile) -> lark.Tree[lark.Token]:
    """Parse one file; raise RuleSyntaxError with every syntax error found."""
    import lark

    text = source.text
    diags: list[Diagnostic] = []
    while True:
        try:
            tree = parser().parse(text)
        except lark.exceptions.UnexpectedInput as err:
            diag, pos = _error_diagnostic(source, err)
            diags.append(diag)
            if len(diags) >= MAX_SYNTAX_ERRORS:
                break
            starts = [m.start() for m in _TOP_LEVEL.finditer(text)]
            begin = max((s for s in starts if s <= pos), default=0)
            line_end = text.find("\n", pos)
            after = [s for s in starts if s > max(pos, line_end)]
            end = after[0] if after else len(text)
            blanked = _blank(text, begin, end)
            if blanked == text:
                break
            text = blanked
            continue
        if diags:
            break
        return tree
    raise RuleSyntaxError(diags)
