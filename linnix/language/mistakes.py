"""What a syntax error says when the mistake is a common one, and which tokens it
lists as expected.

A newcomer writes ``=`` for ``==``, ``&&`` for ``and``, ``'java'`` for
``"java"`` or ``Critical`` for ``critical``, or leaves a ``{`` open: the parser
only sees a token or a character it cannot take.  These functions recognise
those mistakes from the text at the error and the terminals the parser would
have taken there, and give the diagnostic that names the fix (E107, E108, E109,
E114).  :func:`expected` turns a set of terminals into a short list, the most
likely first.

Everything here reads text and terminal names only; :mod:`linnix.language.grammar`
decides when to ask.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .source import Diagnostic, Level, SourceFile

__all__ = ["MAX_EXPECTED", "TOP_LEVEL", "character_mistake", "expected", "open_brace",
           "token_mistake"]

MAX_EXPECTED = 5

# Terminals in the order a list of expected tokens shows them: what most often
# comes next where each can come (after a rule's name, after an operand, an
# operand, a closing bracket, a clause, the next declaration; '(' after a name
# begins a call, seldom what was meant).  A terminal not
# listed here comes after these, alphabetically.
_RANK = {name: i for i, name in enumerate((
    "COLON", "LBRACE",
    "COMP_OP", "AND", "OR",
    "NAME", "NUMBER", "STRING", "QUANTITY",
    "RBRACE", "RPAR", "RSQB", "COMMA", "EQUAL",
    "WHEN", "MESSAGE", "SEVERITY", "ACTION", "FOR",
    "IN", "NOT", "STR_OP", "MATCHES", "GLOB", "ADD_OP", "MUL_OP", "LPAR", "MINUS", "LSQB",
    "TRUE", "FALSE", "SIGNAL", "DOT",
    "UNLESS", "CLEAR", "BOUNDARY", "DESCRIPTION", "LABELS", "TAGS", "SCOPE", "COOLDOWN",
    "KEEP_FIRING_FOR", "MODE", "ENABLED", "RUNBOOK",
    "TRACE", "TICK", "EXPECT", "STATE", "NEVER", "FIRES", "TIMES", "BETWEEN", "PID",
    "RULE", "LET", "MACRO", "INCLUDE", "TEST", "$END",
))}

# What another language spells differently: the character and what linnix writes.
_OPERATORS = {"&": "and", "|": "or", "!": "not"}
_TOP_LEVEL_TOKENS = frozenset({"RULE", "LET", "MACRO", "INCLUDE", "TEST", "$END"})
_WORD = re.compile(r"[A-Za-z0-9_]*")
_WORD_CHAR = re.compile(r"[A-Za-z0-9_]")


def expected(terminals: Iterable[str], describe: Callable[[str], str]) -> str:
    """At most :data:`MAX_EXPECTED` of ``terminals``, the most likely first, each
    as ``describe`` shows it (two terminals shown alike are shown once)."""
    ranked = sorted(terminals, key=lambda t: (_RANK.get(t, len(_RANK)), t))
    shown: list[str] = []
    for name in ranked:
        text = describe(name)
        if text not in shown:
            shown.append(text)
    if len(shown) > MAX_EXPECTED:
        return ", ".join(shown[:MAX_EXPECTED]) + ", ..."
    return ", ".join(shown)


def character_mistake(source: SourceFile, pos: int) -> Diagnostic | None:
    """The diagnostic for a character no token starts with, when it is a common
    mistake: an operator of another language, a single quote, a capital letter."""
    text = source.text
    ch = text[pos] if pos < len(text) else ""
    if ch in _OPERATORS:
        end = pos + 2 if text.startswith(ch * 2, pos) and ch != "!" else pos + 1
        word = _OPERATORS[ch]
        return Diagnostic("E108", Level.ERROR,
                          f"unexpected '{text[pos:end]}'; did you mean '{word}'?",
                          source.span(pos, end), f"linnix writes '{word}' in words")
    if ch == "'":
        close = text.find("'", pos + 1, _line_end(text, pos))
        end = _line_end(text, pos) if close < 0 else close + 1
        inner = text[pos + 1 : end - 1 if close >= 0 else end]
        return Diagnostic("E109", Level.ERROR, "strings use double quotes",
                          source.span(pos, end), f'write "{inner}"' if close >= 0 else None)
    if "A" <= ch <= "Z":
        start = pos
        while start > 0 and _WORD_CHAR.match(text, start - 1):
            start -= 1
        end = _WORD.match(text, pos).end()  # type: ignore[union-attr]
        word = text[start:end]
        return Diagnostic("E114", Level.ERROR, f"names are lower case: '{word}'",
                          source.span(start, end), f"write '{_snake(word)}'")
    return None


def token_mistake(source: SourceFile, kind: str, pos: int, end: int,
                  accepted: frozenset[str] | None) -> Diagnostic | None:
    """The diagnostic for a token that cannot come here, when it is a common
    mistake: ``=`` where a comparison could come (E108), or the next
    declaration (or the end of the file) where a ``{`` is still open (E107)."""
    if kind == "EQUAL" and (accepted is None or "COMP_OP" in accepted):
        return Diagnostic("E108", Level.ERROR, "unexpected '='; did you mean '=='?",
                          source.span(pos, end), "'=' gives a value (in let, labels and "
                          "action arguments); '==' compares")
    if kind in _TOP_LEVEL_TOKENS and (accepted is None or "RBRACE" in accepted):
        brace = open_brace(source.text, _declaration_start(source.text, pos), pos)
        if brace is not None:
            line = source.position(pos)[0]
            where = ("the end of the file" if kind == "$END"
                     else f"'{source.text[pos:end]}' at line {line}")
            return Diagnostic("E107", Level.ERROR, "'{' is never closed",
                              source.span(brace, brace + 1), f"add '}}' before {where}")
    return None


def open_brace(text: str, begin: int, end: int) -> int | None:
    """The offset of the last ``{`` in ``text[begin:end]`` that no ``}`` closes
    there (strings and comments skipped), or None."""
    opened: list[int] = []
    i = begin
    while i < end:
        ch = text[i]
        if ch == '"':
            i = _string_end(text, i, end)
            continue
        if ch == "#":
            i = _line_end(text, i)
            continue
        if ch == "{":
            opened.append(i)
        elif ch == "}" and opened:
            opened.pop()
        i += 1
    return opened[-1] if opened else None


# A line where a top-level declaration begins (where the parser resumes after an error).
TOP_LEVEL = re.compile(r"^[ \t]*(rule|let|macro|include|test)\b", re.MULTILINE)


def _declaration_start(text: str, pos: int) -> int:
    """Where the last top-level declaration that begins before ``pos`` begins
    (the same lines the parser resumes at), or 0: searched backwards, line by
    line, so that it costs what the declaration does, not the file."""
    line = text.rfind("\n", 0, pos) + 1
    m = TOP_LEVEL.match(text, line)
    if m is not None and m.start(1) < pos:
        return line
    while line > 0:
        line = text.rfind("\n", 0, line - 1) + 1
        if TOP_LEVEL.match(text, line):
            return line
    return 0


def _string_end(text: str, start: int, end: int) -> int:
    """One past the closing quote of the string at ``start`` (or its line's end)."""
    i = start + 1
    stop = min(end, _line_end(text, start))
    while i < stop:
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return stop


def _snake(word: str) -> str:
    """``cpuPct`` as linnix spells it: ``cpu_pct``; ``Critical``: ``critical``."""
    return _HUMP.sub("_", word).lower()


_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end
