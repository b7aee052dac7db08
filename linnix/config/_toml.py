"""TOML as the person who wrote the file sees it: lines, keys and values as written.

:mod:`tomllib` parses the file but does not say where a key sits, and its
syntax errors carry their position inside the message.  This module holds
what the configuration needs to point back into the text:

- :class:`Locator` scans the text once more to find the line of every key,
  table header and array element;
- :func:`syntax_error` takes the line and the detail out of a tomllib error;
- :func:`show` and :func:`dotted` write a value or a key back the way it
  would appear in TOML, for messages.

It knows nothing of linnix's own keys; private to :mod:`linnix.config`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import tomllib
from datetime import date, datetime, time

__all__ = ["Key", "Locator", "Part", "dotted", "show", "syntax_error"]

# A key as a path into the parsed data: strings, and ints for array elements.
Part = str | int
Key = tuple[Part, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}#\r\n]+")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\",
            "e": "\x1b"}
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


# ---- writing values and keys back ------------------------------------------------------

def show(value: object) -> str:
    """A value as it would be written in TOML, shortened if long."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, float):
        shown = "nan" if math.isnan(value) else repr(value)
    elif isinstance(value, int):
        shown = str(value)
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, list):
        shown = "[" + ", ".join(show(v) for v in value) + "]"
    elif isinstance(value, datetime | date | time):
        shown = value.isoformat()
    else:
        shown = repr(value)
    return shown if len(shown) <= 60 else shown[:56] + "..." + shown[-1:]


def dotted(key: Key) -> str:
    """``key`` written as a dotted TOML key, array elements as ``[index]``."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if _BARE.fullmatch(part) else show(part)
            out += f".{text}" if out else text
    return out


def syntax_error(err: tomllib.TOMLDecodeError, text: str) -> tuple[int, str]:
    """The line (1-based) of a syntax error in ``text`` and what is wrong there."""
    message = str(err)
    m = _TOML_AT.search(message)
    if m is not None:
        return int(m.group(1)), f"{message[: m.start()]} (column {m.group(2)})"
    e = _TOML_END.search(message)
    line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
    return line, message[: e.start()] + " (at the end of the file)" if e else message


# ---- where keys are -----------------------------------------------------------------

class Locator:
    """The line of each key, table and array element of a TOML text tomllib accepted.

    Keys are tuples of parts (strings, and ints for array elements), as in
    the parsed data.  Only text tomllib has accepted is scanned, so the
    scanner can be simple; should it still be confused, it stops, and the
    keys it did not reach fall back to the line of their table.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Key, int] = {}
        self._aot: dict[Key, int] = {}
        with contextlib.suppress(IndexError, ValueError):
            self._document()

    def line_of(self, key: Key) -> int:
        """Line of ``key``, else of its nearest enclosing table; 0 if none is known."""
        while key:
            found = self.lines.get(key)
            if found is not None:
                return found
            key = key[:-1]
        return 0

    # -- scanning

    def _peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def _advance(self, n: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def _expect(self, token: str) -> None:
        if self._peek(len(token)) != token:
            raise ValueError(f"expected {token!r} at offset {self.pos}")
        self._advance(len(token))

    def _skip(self, *, newlines: bool) -> None:
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t" or (newlines and c in "\r\n"):
                self._advance()
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                break

    def _record(self, key: Key, line: int) -> None:
        for i in range(1, len(key) + 1):
            self.lines.setdefault(key[:i], line)

    def _document(self) -> None:
        table: Key = ()
        while True:
            self._skip(newlines=True)
            if self.pos >= len(self.text):
                return
            line = self.line
            if self._peek(2) == "[[":
                self._advance(2)
                key = self._key()
                self._expect("]]")
                index = self._aot.get(key, -1) + 1
                self._aot[key] = index
                table = (*key, index)
                self._record(table, line)
            elif self._peek() == "[":
                self._advance()
                table = self._key()
                self._expect("]")
                self._record(table, line)
            else:
                key = (*table, *self._key())
                self._record(key, line)
                self._expect("=")
                self._value(key)

    def _key(self) -> Key:
        parts: list[Part] = []
        while True:
            self._skip(newlines=False)
            parts.append(self._simple_key())
            self._skip(newlines=False)
            if self._peek() != ".":
                return tuple(parts)
            self._advance()

    def _simple_key(self) -> str:
        c = self._peek()
        if c == '"':
            return self._basic_string()
        if c == "'":
            end = self.text.index("'", self.pos + 1)
            key = self.text[self.pos + 1 : end]
            self._advance(end + 1 - self.pos)
            return key
        m = _BARE.match(self.text, self.pos)
        if m is None:
            raise ValueError(f"expected a key at offset {self.pos}")
        self._advance(m.end() - self.pos)
        return m.group()

    def _basic_string(self) -> str:
        self._advance()  # the opening quote
        out: list[str] = []
        text = self.text
        while True:
            c = text[self.pos]
            if c == '"':
                self._advance()
                return "".join(out)
            if c == "\\":
                e = text[self.pos + 1]
                if e in "uU":
                    width = 4 if e == "u" else 8
                    out.append(chr(int(text[self.pos + 2 : self.pos + 2 + width], 16)))
                    self._advance(2 + width)
                    continue
                out.append(_ESCAPES.get(e, e))
                self._advance(2)
                continue
            if c == "\n":
                raise ValueError("newline in a basic string")
            out.append(c)
            self._advance()

    def _multiline(self, quote: str) -> None:
        self._advance(3)
        text = self.text
        while True:
            c = text[self.pos]
            if c == "\\" and quote == '"':
                self._advance(2)
            elif text.startswith(quote * 3, self.pos):
                run = 3
                while run < 5 and text.startswith(quote, self.pos + run):
                    run += 1
                self._advance(run)
                return
            else:
                self._advance()

    def _value(self, key: Key) -> None:
        self._skip(newlines=False)
        c = self._peek()
        if c == "{":
            self._advance()
            self._skip(newlines=True)
            if self._peek() == "}":
                self._advance()
                return
            while True:
                self._skip(newlines=True)
                line = self.line
                inner = (*key, *self._key())
                self._record(inner, line)
                self._expect("=")
                self._value(inner)
                self._skip(newlines=True)
                if self._peek() == ",":
                    self._advance()
                    continue
                self._expect("}")
                return
        elif c == "[":
            self._advance()
            index = 0
            while True:
                self._skip(newlines=True)
                if self._peek() == "]":
                    self._advance()
                    return
                self._record((*key, index), self.line)
                self._value((*key, index))
                self._skip(newlines=True)
                if self._peek() == ",":
                    self._advance()
                    index += 1
                    continue
                self._expect("]")
                return
        elif self._peek(3) in ('"""', "'''"):
            self._multiline(c)
        elif c == '"':
            self._basic_string()
        elif c == "'":
            end = self.text.index("'", self.pos + 1)
            self._advance(end + 1 - self.pos)
        else:
            m = _SCALAR.match(self.text, self.pos)
            if m is None:
                raise ValueError(f"expected a value at offset {self.pos}")
            self._advance(m.end() - self.pos)
