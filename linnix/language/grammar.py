"""Build the LALR parser once, parse with it, and turn Lark's errors into diagnostics.

The grammar ships inside the package (``linnix/linnix.lark``).  Building the
LALR tables takes longer than checking a whole rule pack, so the built parser
is cached on disk (keyed by a hash of the grammar and the Lark version) and
in memory.

:func:`parse` runs Lark's LALR parse table over the tokens of a file and builds the
AST (:mod:`linnix.language.builder`) as the parser reduces, so no parse tree is built
and walked a second time.  The lexer, the driver of the table and the parser's
callbacks of that fast path are our own, derived from the Lark parser itself so
that they cannot drift from it (:mod:`linnix.language._lark`, which holds
everything taken from Lark's internals, and :mod:`linnix.language._lalr`; this
module uses Lark's public API only).

Line and column numbers are computed from offsets only when a diagnostic or
the compiler asks (:class:`~linnix.language.source.Span`).

A syntax error is found where Lark finds it (the fast path raises the error
Lark's own parse raises there), and said as :mod:`linnix.language.mistakes`
says it: a common mistake named with its fix, else the tokens the parser
would really have taken there (from the parse table, not Lark's list, which
holds what LALR merged in).  :class:`~linnix.errors.RuleSyntaxError` holds
every syntax error found, parsing resuming at the next top-level declaration
after each (a declaration left unfinished, whose parse swallowed the next
line's keyword as a name, ends at that line), and the tree of the
declarations that did parse, which are still checked.  Resuming, the fast
path builds nothing and starts at the declaration the error was in, not at
the top of the file, so that a file with errors takes time and memory in
proportion to its size, as a good one does.  Input nested deeper than the parser's stack allows
(:data:`~linnix.language._lark.MAX_STACK`) is reported like a syntax error
(E105) rather than taking memory without end.  When the fast path cannot
serve the parser at all, Lark parses alone (contextual lexer, positions, a
parse tree), resuming after each error by parsing the whole file again.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import os
import re
import tempfile
from importlib import resources
from typing import TYPE_CHECKING, NoReturn

from ..errors import RuleSyntaxError
from ._lark import (
    MAX_STACK,
    FastParser,
    StoppedError,
    TooDeepError,
    UnsupportedError,
    terminal_literal,
)
from .mistakes import TOP_LEVEL, character_mistake, expected, token_mistake
from .source import Diagnostic, Level, SourceFile

if TYPE_CHECKING:
    from collections.abc import Callable

    import lark

    from . import nodes

__all__ = ["declaration_parser", "grammar_text", "parse", "parser"]

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
_TOP_LEVEL = TOP_LEVEL
_DEFINES = re.compile(r"^[ \t]*(rule|let|macro)[ \t]+([a-z_][a-z0-9_]*)", re.MULTILINE)


def grammar_text() -> str:
    """The grammar, read from the installed package."""
    return resources.files("linnix.language").joinpath("linnix.lark").read_text(encoding="utf-8")


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
        os.makedirs(os.path.dirname(path), exist_ok=True)  # XDG_CACHE_HOME may not exist yet
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            built.save(f)
        os.replace(tmp, path)  # atomic: concurrent readers never see half a file
    except OSError:
        pass
    return built


def _describe(names: object) -> str:
    """A short list of the terminals ``names``, the most likely first."""
    return expected(names, _terminal_text)  # type: ignore[arg-type]


def _terminal_text(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        return f"'{terminal_literal(parser(), name)}'"
    except KeyError:
        return name.lower()


def _error_diagnostic(source: SourceFile, err: Exception,
                      accepted: frozenset[str] | None = None) -> tuple[Diagnostic, int]:
    """A diagnostic for one Lark error (or the fast path's depth limit) and the
    offset where the error sits; ``accepted``, when known, is exactly what the
    parser would have taken there (else Lark's own list is shown)."""
    import lark

    if isinstance(err, TooDeepError):
        msg = f"expression nested too deeply (the parser's limit is {MAX_STACK} levels)"
        return Diagnostic("E105", Level.ERROR, msg, source.span(err.pos, err.pos + 1)), err.pos
    if isinstance(err, lark.UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        ch = source.text[pos] if pos < len(source.text) else ""
        if ch == '"':
            msg, end = "unterminated string", source.text.find("\n", pos)
            end = len(source.text) if end < 0 else end
            return Diagnostic("E102", Level.ERROR, msg, source.span(pos, end)), pos
        mistake = character_mistake(source, pos)
        if mistake is not None:
            return mistake, pos
        shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}" if ch else "end of file"
        msg = f"unexpected character {shown}"
        if accepted or err.allowed:
            msg += f"; expected {_describe(accepted or err.allowed)}"
        return Diagnostic("E101", Level.ERROR, msg, source.span(pos, pos + 1)), pos
    if isinstance(err, lark.UnexpectedToken):
        tok = err.token
        if tok.type == "$END":
            pos = len(source.text)
            found = "end of file"
        else:
            pos = tok.start_pos or 0
            found = f"'{tok.value}'"
        end = pos + len(str(tok.value)) if tok.type != "$END" else pos
        mistake = token_mistake(source, tok.type, pos, end, accepted)
        if mistake is not None:
            return mistake, mistake.span.start
        msg = f"unexpected {found}; expected {_describe(accepted or err.expected)}"
        return Diagnostic("E100", Level.ERROR, msg, source.span(pos, end)), pos
    if isinstance(err, lark.UnexpectedEOF):
        pos = len(source.text)
        msg = f"unexpected end of file; expected {_describe(accepted or err.expected)}"
        return Diagnostic("E100", Level.ERROR, msg, source.span(pos, pos)), pos
    raise err


def _blank(text: str, start: int, end: int) -> str:
    """Replace text[start:end] by spaces, keeping newlines (so positions hold)."""
    middle = "\n".join(" " * len(line) for line in text[start:end].split("\n"))
    return text[:start] + middle + text[end:]


def parse(source: SourceFile, *, outline: bool = False) -> lark.Tree[lark.Token]:
    """Parse one file; raise RuleSyntaxError with every syntax error found.

    The tree returned has data ``"start"``; :func:`linnix.language.builder.build` turns
    it into the module (already built while parsing, on the fast path).  With
    ``outline``, the fast path keeps each rule as a
    :class:`~linnix.language.nodes.RuleOutline` (see :func:`declaration_parser`).
    """
    fast = _fast(parser())
    if fast is not None:
        try:
            return fast.parse(source, outline=outline)
        except StoppedError as stop:
            _recover(fast, source, stop, outline)
        except UnsupportedError:
            pass
    return _parse_with_lark(source)


def declaration_parser(source: SourceFile) -> Callable[[int, int], nodes.Decl]:
    """A function that parses a declaration of ``source`` again, in full, from
    the span of its outline: that of a file :func:`parse` parsed in outline."""
    fast = _fast(parser())
    assert fast is not None  # only the fast path makes outlines
    return fast.declaration_parser(source)


def _recover(fast: FastParser, source: SourceFile, stop: StoppedError,
             outline: bool) -> NoReturn:
    """Raise RuleSyntaxError with the error the fast path stopped at and every
    later one, found as :func:`_parse_with_lark` finds them, and the tree of
    the declarations left (see :func:`_partial`).

    Parsing the text with the error's region blanked from the top (what
    Lark's recovery does) goes exactly as parsing it from the beginning of a
    declaration at or before the region, since declarations parse alone:
    the one the error was in, or the last one begun before the region.
    """
    text = source.text
    diags: list[Diagnostic] = []
    starts = [m.start() for m in _TOP_LEVEL.finditer(text)]
    while True:
        pos = _error_pos(stop.error, text)
        swallowed = _swallowed(source, text, starts, pos)
        if swallowed is not None:
            diag, begin, end = swallowed
        else:
            accepted = _expected_at(text, min(stop.declaration, pos), pos)
            diag, pos = _error_diagnostic(source, stop.error, accepted)
            begin, end = _region(text, starts, pos)
        diags.append(diag)
        if len(diags) >= MAX_SYNTAX_ERRORS:
            raise RuleSyntaxError(diags)
        blanked = _blank(text, begin, end)
        if blanked == text:
            raise RuleSyntaxError(diags)
        text = blanked
        del starts[bisect.bisect_left(starts, begin) : bisect.bisect_left(starts, end)]
        done = stop.finished
        at = stop.declaration
        if at > begin:  # the declaration in progress at the region began before it
            i = bisect.bisect_right(done, begin)
            at = done[i - 1] if i else 0
        try:
            fast.recognize(text, at)
        except StoppedError as again:
            stop = again
            continue
        break
    _partial(diags, source.text, text, lambda: fast.parse(source, outline=outline, text=text))


def _partial(diags: list[Diagnostic], original: str, blanked: str,
             rest: lark.Tree[lark.Token] | Callable[[], lark.Tree[lark.Token]]) -> NoReturn:
    """Raise RuleSyntaxError with ``diags``, the tree of what is left of the
    file once every error's region is blanked (``rest``, or what it parses:
    the blanked text, which parses) and the names the blanked declarations
    would have defined."""
    if callable(rest):
        try:
            rest = rest()
        except (StoppedError, UnsupportedError):  # not expected: the text parses
            raise RuleSyntaxError(diags) from None
    raise RuleSyntaxError(diags, rest, lost_names(original, blanked))


def lost_names(original: str, blanked: str) -> frozenset[str]:
    """The names declared (``rule``, ``let``, ``macro``) at the top-level lines of
    ``original`` that ``blanked`` has blanked."""
    return frozenset(m.group(2) for m in _DEFINES.finditer(original)
                     if not blanked[m.start(): m.end()].strip())


def _error_pos(err: Exception, text: str) -> int:
    """Where Lark's error (or the fast path's depth limit: -1) sits in ``text``."""
    if isinstance(err, TooDeepError):
        return -1
    token = getattr(err, "token", None)
    if token is None:
        return int(getattr(err, "pos_in_stream", None) or 0)
    return len(text) if token.type == "$END" else int(token.start_pos or 0)


def _expected_at(text: str, begin: int, pos: int) -> frozenset[str] | None:
    """What the parser would take at ``pos`` of ``text``, parsing from ``begin``
    (where a declaration begins; ``text`` parses up to ``pos``), or None when
    that cannot be told (the fast path cannot serve the parser; ``pos`` is -1)."""
    fast = _fast(parser())
    if fast is None or pos < 0:
        return None
    try:
        return fast.expected(text, begin, pos)
    except (StoppedError, UnsupportedError):  # not expected: the text parses to there
        return None


def _swallowed(source: SourceFile, text: str, starts: list[int], pos: int
               ) -> tuple[Diagnostic, int, int] | None:
    """The error, and the region to blank, when the declaration before the
    top-level line the error at ``pos`` is on is unfinished, so that the
    parser read that line's keyword as a name (``rule a: cpu_pct >`` then
    ``rule b: ...`` is ``cpu_pct > rule``): the error is reported at the
    keyword, and the next declaration is kept."""
    i = bisect.bisect_right(starts, pos)
    if pos < 0 or i < 2:
        return None
    before, line = starts[i - 2], starts[i - 1]
    accepted = _expected_at(text, before, line)
    m = _TOP_LEVEL.match(text, line)
    if not accepted or "$END" in accepted or m is None:  # finished: the error is later
        return None
    begin, end = m.span(1)
    word = m.group(1)
    diag = token_mistake(source, word.upper(), begin, end, accepted) or Diagnostic(
        "E100", Level.ERROR, f"unexpected '{word}'; expected {_describe(accepted)}",
        source.span(begin, end))
    return diag, before, line


def _region(text: str, starts: list[int], pos: int) -> tuple[int, int]:
    """What is blanked after an error at ``pos``: from the last top-level
    declaration line at or before it to the first one after its line."""
    i = bisect.bisect_right(starts, pos)
    begin = starts[i - 1] if i else 0
    line_end = text.find("\n", pos)
    j = bisect.bisect_right(starts, max(pos, line_end))
    end = starts[j] if j < len(starts) else len(text)
    return begin, end


def _parse_with_lark(source: SourceFile) -> lark.Tree[lark.Token]:
    """Lark's own parse (tree with positions), resuming after each syntax error."""
    import lark

    text = source.text
    diags: list[Diagnostic] = []
    # Offsets of the top-level declarations, found once: blanking [begin, end)
    # removes exactly the ones inside it (both ends are line starts) and moves
    # no other, so the list is kept up to date instead of searched again.
    starts = [m.start() for m in _TOP_LEVEL.finditer(text)]
    while True:
        try:
            tree = parser().parse(text)
        except lark.exceptions.UnexpectedInput as err:
            pos = _error_pos(err, text)
            swallowed = _swallowed(source, text, starts, pos)
            if swallowed is not None:
                diag, begin, end = swallowed
            else:
                # the text parses up to the error: from the top, what comes there
                diag, pos = _error_diagnostic(source, err, _expected_at(text, 0, pos))
                begin, end = _region(text, starts, pos)
            diags.append(diag)
            if len(diags) >= MAX_SYNTAX_ERRORS:
                break
            blanked = _blank(text, begin, end)
            if blanked == text:
                break
            text = blanked
            del starts[bisect.bisect_left(starts, begin) : bisect.bisect_left(starts, end)]
            continue
        if diags:
            _partial(diags, source.text, text, tree)
        return tree
    raise RuleSyntaxError(diags)


@functools.lru_cache(maxsize=2)
def _fast(p: lark.Lark) -> FastParser | None:
    """The fast path for parser ``p``, or None when it cannot serve this parser."""
    try:
        return FastParser(p)
    except Exception:  # a parser this code does not understand: Lark parses alone
        return None
