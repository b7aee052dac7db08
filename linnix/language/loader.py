"""Find ``.lnx`` files, read them safely, parse them and follow their includes.

A file is loaded once however often it is named or included.  What a file can
see is itself and, transitively, what it includes.  Files that cannot be read
or parsed are reported (E1xx) and recorded as broken so that the checker skips
files that depend on them instead of drowning the real error in follow-ups.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator

import attrs

from ..errors import RuleSyntaxError, UsageError
from . import nodes as n
from .builder import build
from .grammar import parse
from .source import Diagnostic, Level, SourceFile, Span

__all__ = ["MAX_FILE_BYTES", "Program", "discover", "load", "load_text", "read_text"]

MAX_FILE_BYTES = 16 * 1024 * 1024


@attrs.define
class Program:
    """Every module loaded together, in load order, with their include graph."""

    modules: dict[str, n.Module] = attrs.field(factory=dict)
    sources: dict[str, SourceFile] = attrs.field(factory=dict)
    includes: dict[str, list[str]] = attrs.field(factory=dict)
    roots: list[str] = attrs.field(factory=list)
    broken: set[str] = attrs.field(factory=set)
    # files with syntax errors whose other declarations were kept: the names
    # the declarations left out would have defined
    lost: dict[str, frozenset[str]] = attrs.field(factory=dict)
    diagnostics: list[Diagnostic] = attrs.field(factory=list)

    def visible(self, path: str) -> list[str]:
        """The module itself, then everything it includes (depth first, once)."""
        seen: list[str] = []
        stack = [path]
        while stack:
            p = stack.pop()
            if p in seen:
                continue
            seen.append(p)
            stack.extend(reversed(self.includes.get(p, [])))
        return seen

    def depends_on_broken(self, path: str) -> bool:
        """Whether ``path`` or a file it includes failed to load (a file with
        syntax errors counts for the files including it, not for itself)."""
        return any(p in self.broken and not (p == path and p in self.lost)
                   for p in self.visible(path))


def discover(paths: Iterable[str]) -> list[str]:
    """Expand directories into their ``*.lnx`` files (recursive, sorted)."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found.extend(_walk(path))
        elif os.path.exists(path):
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    return found


def _walk(top: str) -> Iterator[str]:
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".lnx"):
                yield os.path.join(root, name)


UTF8_BOM = b"\xef\xbb\xbf"


def read_text(path: str, at: Span | None = None) -> tuple[str | None, Diagnostic | None]:
    """The UTF-8 text of a file, or None and the diagnostic (E110/E112/E113) saying why not.

    ``at`` is where the file was named (an include), for the diagnostic's position.
    Only regular files are read: a FIFO, a device or a socket named ``*.lnx`` is
    refused, never waited on (opening a FIFO for reading blocks until a writer
    comes, and reading a device may never end).
    """
    def fail(code: str, message: str, span: Span | None = None) -> tuple[None, Diagnostic]:
        where = span or at or SourceFile(path, "").whole()
        return None, Diagnostic(code, Level.ERROR, message, where)

    try:
        # stat first: a device is never opened (opening some has effects of its own);
        # O_NONBLOCK: should the path be swapped for a FIFO meanwhile, the open still
        # returns at once, and fstat says what was really opened
        if not stat.S_ISREG(os.stat(path).st_mode):
            return fail("E110", f"cannot read '{path}': not a regular file")
        with open(path, "rb", opener=_open_nonblocking) as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                return fail("E110", f"cannot read '{path}': not a regular file")
            if info.st_size > MAX_FILE_BYTES:
                return fail("E113", f"file too large ({info.st_size} bytes; the limit is "
                                    f"{MAX_FILE_BYTES})")
            data = f.read(MAX_FILE_BYTES + 1)  # bounded even if it grows meanwhile
    except OSError as e:
        return fail("E110", f"cannot read '{path}': {e.strerror or e}")
    if len(data) > MAX_FILE_BYTES:
        return fail("E113", f"file too large (it grew past the limit of {MAX_FILE_BYTES} "
                            "bytes while it was read)")
    data = data.removeprefix(UTF8_BOM)  # what some editors put first: not part of the text
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        text = data[: e.start].decode("utf-8", "replace")
        src = SourceFile(path, text)
        return fail("E112", f"not UTF-8 text (byte 0x{data[e.start]:02x} cannot be decoded)",
                    src.span(len(text), len(text)))


def _open_nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY)


def _key(path: str) -> str:
    return os.path.normpath(path)


class _Loader:
    def __init__(self, outline: bool = False) -> None:
        self.program = Program()
        self.outline = outline  # rules kept as outlines (grammar.parse)
        self._real: dict[str, str] = {}  # realpath -> key of the first load

    def read(self, path: str, at: Span | None) -> str | None:
        """Load one file (once); returns its key, or None when unreadable."""
        real = os.path.realpath(path)
        if real in self._real:
            return self._real[real]
        key = _key(path)
        self._real[real] = key
        text = self._read_text(key, at)
        if text is None:
            self.program.broken.add(key)
            return key
        self.load_text(key, text)
        return key

    def _read_text(self, key: str, at: Span | None) -> str | None:
        text, problem = read_text(key, at)
        if problem is not None:
            self.program.diagnostics.append(problem)
        return text

    def load_text(self, key: str, text: str) -> None:
        source = SourceFile(key, text)
        prog = self.program
        prog.sources[key] = source
        tree: object
        try:
            tree = parse(source, outline=self.outline)
        except RuleSyntaxError as err:
            prog.diagnostics.extend(err.diagnostics)
            prog.broken.add(key)
            if err.partial is None:
                return
            # the declarations that parsed are still checked (not those of
            # files including this one, which may need what was lost)
            tree = err.partial
            prog.lost[key] = err.lost
        module, problems = build(source, tree)
        prog.modules[key] = module
        prog.diagnostics.extend(problems)
        prog.includes[key] = []
        for decl in module.decls:
            if isinstance(decl, n.Include):
                self._include(key, decl)

    def _include(self, key: str, decl: n.Include) -> None:
        target = os.path.join(os.path.dirname(key), decl.path.value)
        if os.path.isdir(target) or not os.path.exists(target):
            # anything else that is not a regular file is refused when it is read
            reason = "is a directory" if os.path.isdir(target) else "no such file"
            self.program.diagnostics.append(Diagnostic(
                "E110", Level.ERROR, f"cannot include '{decl.path.value}': {reason}",
                decl.path.span))
            return
        inc = self.read(target, decl.path.span)
        if inc is None:
            return
        self.program.includes[key].append(inc)
        cycle = self._cycle(inc, key)
        if cycle:
            chain = " -> ".join([key, *cycle])
            self.program.diagnostics.append(Diagnostic(
                "E111", Level.ERROR, f"include cycle: {chain}", decl.path.span))
            self.program.includes[key].remove(inc)

    def _cycle(self, start: str, goal: str) -> list[str] | None:
        """A path of includes from ``start`` back to ``goal``, if one exists."""
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, trail = stack.pop()
            if node == goal:
                return trail
            if node in seen:
                continue
            seen.add(node)
            for nxt in self.program.includes.get(node, []):
                stack.append((nxt, [*trail, nxt]))
        return None


def load(paths: Iterable[str], *, outline: bool = False) -> Program:
    """Load the given files (directories expanded) and everything they include
    (with ``outline``, their rules as outlines)."""
    loader = _Loader(outline)
    for path in discover(paths):
        key = loader.read(path, None)
        if key is not None and key not in loader.program.roots:
            loader.program.roots.append(key)
    return loader.program


def load_text(text: str, path: str = "<input>", *, outline: bool = False) -> Program:
    """Load rules from a string (includes resolve relative to ``path``)."""
    loader = _Loader(outline)
    loader.load_text(_key(path), text)
    loader.program.roots.append(_key(path))
    return loader.program
