"""Text for a terminal: what a process controls is shown, never obeyed.

A process chooses its own name and command line, and both reach the lines an
operator reads.  A name such as ``"\\x1b[1A\\x1b[2K"`` would move the cursor
and erase the line above (an alert, say); a right-to-left override would make
``evil\\u202egnp.exe`` read as something else.  :func:`printable` writes every
control and format character as an escape (``\\x1b``, ``\\u202e``), so the
text is shown as data.  JSON outputs (``alerts.jsonl``, the API, ``--json``)
are not changed: JSON has escapes of its own and a JSON reader gets the text
exactly.

:func:`write_safely` makes a write that the stream's encoding cannot express
(a process name in Cyrillic on a terminal set to ASCII) write escapes instead
of raising, so one odd character never stops the output for good;
:func:`encode_safely` does the same for text written as bytes.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["TextOut", "encode_safely", "printable", "printable_lines", "write_safely"]


class TextOut(Protocol):
    """Where text for a person goes: a text stream, or the daemon's console."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


def printable(text: str) -> str:
    """``text`` with every control, format and separator character escaped (space stays)."""
    if text.isprintable():  # the usual case, decided in C
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def printable_lines(text: str) -> list[str]:
    """The lines of ``text``, each made :func:`printable` (a lone ``\\r`` is escaped too)."""
    return [printable(line) for line in text.split("\n")]


def _escape(c: str) -> str:
    code = ord(c)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def encode_safely(text: str, encoding: str) -> bytes:
    """``text`` in ``encoding``; what the encoding cannot express is written as backslash
    escapes."""
    return text.encode(encoding, "backslashreplace")


def write_safely(out: TextOut, text: str) -> None:
    """Write ``text``; what the stream cannot encode is written as backslash escapes.

    Errors of the stream itself (a closed pipe, a full disk) are the caller's.
    """
    try:
        out.write(text)
    except UnicodeEncodeError:  # the whole text was refused: nothing was written yet
        encoding = getattr(out, "encoding", None) or "ascii"
        out.write(encode_safely(text, encoding).decode(encoding, "replace"))
