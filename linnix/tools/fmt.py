"""``linnix fmt``: the canonical layout of ``.lnx`` files, comments kept.

The layout is a function of the syntax tree: one declaration or clause per
line, blocks indented by four spaces, expressions spaced and parenthesised as
:func:`linnix.language.printer.to_text` prints them.  Clause order, unit literals and
the one-line/block form of each rule are kept as written; a ``let`` list too
long for one line is laid out one item per line.

The grammar drops comments, so they are recovered from the source text and
attached to the output lines: a comment on a line of its own goes before the
declaration or clause that follows it (inside a block, before the closing
brace if nothing follows), a comment after code stays at the end of that
line, and a comment inside a construct that spans several lines moves above
it.  At most one blank line is kept wherever the source had blank lines, and
block declarations are set apart by one.

Formatting never changes meaning: :func:`format_text` parses its own output
and refuses (leaving the file alone) unless the tree is the one it started
from.  It is idempotent: formatting formatted text changes nothing.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import os
import stat
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from ..errors import LinnixError, RuleError, RuleSyntaxError
from ..language import nodes as n
from ..language.printer import quote, to_text
from ..language.source import Diagnostic, SourceFile, Span, render_all

__all__ = ["INDENT", "MAX_WIDTH", "Comment", "find_comments", "format_paths", "format_text",
           "write_atomically"]

INDENT = "    "
MAX_WIDTH = 100  # a let list longer than this is laid out one item per line


@attrs.frozen
class Comment:
    """A ``#`` comment: where it starts, its text (trailing blanks removed), its placement."""

    start: int
    line: int
    text: str
    own_line: bool  # nothing but blanks before it on its line


def find_comments(text: str) -> list[Comment]:
    """Every comment of a source text that parses, in order (``#`` in strings is no comment)."""
    out: list[Comment] = []
    offset = 0
    for number, line in enumerate(text.split("\n"), start=1):
        at = _comment_start(line)
        if at is not None:
            out.append(Comment(offset + at, number, line[at:].rstrip(),
                               not line[:at].strip()))
        offset += len(line) + 1
    return out


def _comment_start(line: str) -> int | None:
    """Where the comment of one line begins; strings never span lines."""
    in_string = False
    i = 0
    while i < len(line):
        ch = line[i]
        if in_string and ch == "\\":
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
        elif ch == "#" and not in_string:
            return i
        i += 1
    return None


# ---- lines --------------------------------------------------------------------------

@attrs.define
class _Line:
    """One output line and the source range it stands for (its anchor)."""

    depth: int
    text: str
    start: int
    end: int
    group: int  # index of the top-level declaration it belongs to
    opening: bool = False
    closing: bool = False
    leading: list[Comment] = attrs.field(factory=list)
    trailing: Comment | None = None


def _condition(expr: n.Expr, for_: n.Expr | None) -> str:
    return to_text(expr) + (f" for {to_text(for_)}" if for_ is not None else "")


def _arg(a: n.Expr | n.Kwarg) -> str:
    return f"{a.name} = {to_text(a.value)}" if isinstance(a, n.Kwarg) else to_text(a)


def _action(c: n.Action) -> str:
    args = f"({', '.join(_arg(a) for a in c.args)})" if c.args else ""
    return f"action {c.name}{args}"


def _labels(c: n.Labels) -> str:
    if not c.items:
        return "labels {}"
    return "labels { " + ", ".join(f"{i.key} = {quote(i.value.value)}" for i in c.items) + " }"


_Statement = n.Clause | n.Trace | n.Tick | n.Expect
_STATEMENTS: dict[type, Callable[[Any], str]] = {
    n.Description: lambda c: f"description {quote(c.text.value)}",
    n.Runbook: lambda c: f"runbook {quote(c.text.value)}",
    n.When: lambda c: "when " + _condition(c.expr, c.for_),
    n.Unless: lambda c: f"unless {to_text(c.expr)}",
    n.Boundary: lambda c: f"boundary {to_text(c.expr)}",
    n.Clear: lambda c: "clear when " + _condition(c.expr, c.for_),
    n.KeepFiringFor: lambda c: f"keep_firing_for {to_text(c.duration)}",
    n.ScopeClause: lambda c: f"scope {c.name}",
    n.Severity: lambda c: f"severity {c.name}",
    n.Cooldown: lambda c: f"cooldown {to_text(c.duration)}" + (
        f" by {', '.join(c.by)}" if c.by else ""),
    n.On: lambda c: f"on {c.trigger}",
    n.MaxRate: lambda c: f"max_rate {to_text(n.Number(c.rate, c.span))}{c.op}{c.per}",
    n.Labels: _labels,
    n.Tags: lambda c: "tags [" + ", ".join(quote(t.value) for t in c.items) + "]",
    n.Message: lambda c: f"message {quote(c.template.value)}",
    n.Action: _action,
    n.Mode: lambda c: f"mode {c.name}",
    n.Enabled: lambda c: f"enabled {to_text(c.value)}",
    n.Trace: lambda s: f"trace {quote(s.path.value)}",
    n.Tick: lambda s: f"tick {to_text(s.duration)}",
    n.ExpectBetween: lambda s: (f"expect {s.rule} {s.state} between {to_text(s.low)} "
                                f"and {to_text(s.high)}"),
    n.ExpectPid: lambda s: f"expect {s.rule} {s.state} for pid {to_text(s.pid)}",
    n.ExpectNever: lambda s: f"expect {s.rule} never",
    n.ExpectCount: lambda s: f"expect {s.rule} fires {to_text(s.count)} times",
    n.ExpectAction: lambda s: f"expect action {s.action} for pid {to_text(s.pid)}",
}


class _Layout:
    """The output lines of one module, each anchored to the source it came from."""

    def __init__(self, source: SourceFile, comments: Sequence[Comment]) -> None:
        self.text = source.text
        self.comment_at = {c.start: c for c in comments}
        self.lines: list[_Line] = []
        self.group = 0

    def add(self, depth: int, text: str, start: int, end: int, *, opening: bool = False,
            closing: bool = False) -> None:
        self.lines.append(_Line(depth, text, start, end, self.group, opening, closing))

    def find(self, char: str, pos: int) -> int:
        """The next ``char`` at or after ``pos`` that is not inside a comment."""
        while self.text[pos] != char:
            comment = self.comment_at.get(pos)
            pos = pos + len(comment.text) if comment is not None else pos + 1
        return pos

    def module(self, module: n.Module) -> list[_Line]:
        for self.group, decl in enumerate(module.decls):
            self.decl(decl)
        return self.lines

    def decl(self, d: n.Decl) -> None:
        s = d.span
        if isinstance(d, n.Include):
            self.add(0, f"include {quote(d.path.value)}", s.start, s.end)
        elif isinstance(d, n.Let):
            self.let(d)
        elif isinstance(d, n.Macro):
            self.add(0, f"macro {d.name} = {to_text(d.expr)}", s.start, s.end)
        elif isinstance(d, n.Rule) and d.one_line:
            *on, when = d.clauses
            assert isinstance(when, n.When)
            head = "".join(f" on {c.trigger}" for c in on if isinstance(c, n.On))
            self.add(0, f"rule {d.name}{head}: {_condition(when.expr, when.for_)}", s.start,
                     s.end)
        elif isinstance(d, n.Rule):
            self.block(f"rule {d.name}", d.span, d.name_span.end, d.clauses)
        else:
            assert isinstance(d, n.Test)  # fmt parses rules in full, never in outline
            self.block(f"test {quote(d.title.value)}", d.span, d.title.span.end, d.stmts)

    def block(self, head: str, span: Span, after: int, body: Sequence[_Statement]) -> None:
        brace = self.find("{", after)
        self.add(0, f"{head} {{", span.start, brace + 1, opening=True)
        for item in body:
            self.add(1, _STATEMENTS[type(item)](item), item.span.start, item.span.end)
        self.add(0, "}", span.end - 1, span.end, closing=True)

    def let(self, d: n.Let) -> None:
        s, value = d.span, d.value
        text = f"let {d.name} = {to_text(value)}"
        if len(text) <= MAX_WIDTH or not isinstance(value, n.List) or not value.items:
            self.add(0, text, s.start, s.end)
            return
        self.add(0, f"let {d.name} = [", s.start, value.span.start + 1, opening=True)
        for item in value.items:
            self.add(1, to_text(item) + ",", item.span.start, item.span.end)
        self.add(0, "]", value.span.end - 1, value.span.end, closing=True)


# ---- comments and blank lines -------------------------------------------------------

def _attach(lines: list[_Line], comments: Sequence[Comment], source: SourceFile) -> list[Comment]:
    """Give every comment to an output line; return those left for the end of the file."""
    starts = [line.start for line in lines]
    tail: list[Comment] = []
    for c in comments:
        i = bisect.bisect_right(starts, c.start) - 1
        here = lines[i] if i >= 0 else None
        if here is not None and c.start < here.end:
            here.leading.append(c)  # inside a construct that the layout puts on one line
        elif (here is not None and not c.own_line and here.trailing is None
              and source.position(here.end - 1)[0] == c.line):
            here.trailing = c
        elif i + 1 < len(lines):
            lines[i + 1].leading.append(c)
        else:
            tail.append(c)
    return tail


_TAIL = -1  # the group of the comments after the last declaration


@attrs.frozen
class _Out:
    """A physical output line, with the source lines it came from."""

    text: str
    first: int
    last: int
    group: int
    opening: bool = False
    closing: bool = False


def _physical(lines: list[_Line], tail: list[Comment], source: SourceFile) -> Iterator[_Out]:
    for line in lines:
        pad = INDENT * (line.depth + (1 if line.closing else 0))
        for c in line.leading:
            yield _Out(pad + c.text, c.line, c.line, line.group)
        text = INDENT * line.depth + line.text
        if line.trailing is not None:
            text += "  " + line.trailing.text
        first = source.position(line.start)[0]
        last = source.position(max(line.start, line.end - 1))[0]
        if line.trailing is not None:
            last = line.trailing.line
        yield _Out(text, first, last, line.group, line.opening, line.closing)
    for c in tail:
        yield _Out(c.text, c.line, c.line, _TAIL)


def _join(outs: Iterator[_Out], source: SourceFile, multi_line: set[int]) -> str:
    """The output text, with blank lines where the source had some (one at most) and
    between two declarations of which one spans several lines; never just inside a block."""
    blank = [0]
    for line in source.text.split("\n"):
        blank.append(blank[-1] + (not line.strip()))
    text: list[str] = []
    prev: _Out | None = None
    for out in outs:
        if prev is not None and not prev.opening and not out.closing:
            had_blank = blank[out.first - 1] > blank[prev.last]
            apart = (out.group != prev.group and min(out.group, prev.group) >= 0
                     and bool({out.group, prev.group} & multi_line))
            if had_blank or apart:
                text.append("")
        text.append(out.text)
        prev = out
    return "\n".join(text) + "\n" if text else ""


# ---- entry points -------------------------------------------------------------------

def _parse(source: SourceFile) -> n.Module:
    """The module of a source text; RuleSyntaxError for anything the builder reports."""
    from ..language.builder import build
    from ..language.grammar import parse

    module, problems = build(source, parse(source))
    if problems:
        raise RuleSyntaxError(problems)
    return module


def format_text(text: str, path: str = "<input>") -> str:
    """The canonical text of one ``.lnx`` file.

    Raises RuleSyntaxError (with every diagnostic) when the text does not
    parse, and LinnixError in the unexpected case that the formatted text
    would not mean the same as the original.
    """
    source = SourceFile(path, text)
    module = _parse(source)
    comments = find_comments(text)
    lines = _Layout(source, comments).module(module)
    tail = _attach(lines, comments, source)
    # declarations laid out on more than one line (counted in one pass: counting
    # each group in the list of all made 100,000 one-line rules take minutes)
    multi_line = {g for g, count in Counter(line.group for line in lines).items() if count > 1}
    result = _join(_physical(lines, tail, source), source, multi_line)
    _verify(module, comments, result, path)
    return result


def _verify(module: n.Module, comments: Sequence[Comment], result: str, path: str) -> None:
    try:
        again = _parse(SourceFile(path, result))
    except RuleError:
        again = None
    same_comments = [c.text for c in find_comments(result)] == [c.text for c in comments]
    if again != module or not same_comments:
        raise LinnixError(f"{path}: cannot be formatted without changing its meaning; "
                          "left unchanged")


# ---- the command --------------------------------------------------------------------

def format_paths(paths: Sequence[str], *, check: bool = False, diff: bool = False) -> int:
    """Format every ``.lnx`` file under ``paths``; the exit status of ``linnix fmt``.

    1 on a file that cannot be formatted, or with ``check`` or ``diff`` on a file
    that would change (as ``diff`` itself does when the files differ).  ``check``
    and ``diff`` change nothing: ``check`` lists the files that would change,
    ``diff`` prints the changes as a unified diff.
    """
    from ..language.loader import discover

    seen: set[str] = set()
    changed = failed = unchanged = 0
    listing = sys.stderr if diff else sys.stdout
    for path in discover(paths):
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        old, new = _format_file(path)
        if new is None:
            failed += 1
        elif new == old:
            unchanged += 1
        else:
            changed += 1
            if diff:
                sys.stdout.write(_unified_diff(path, old, new))
            if check:
                listing.write(f"would reformat {path}\n")
            elif not diff:
                failed += not _write_or_report(path, new)
    _summary(changed, unchanged, failed, dry=check or diff)
    return 1 if failed or ((check or diff) and changed) else 0


def _format_file(path: str) -> tuple[str, str | None]:
    """The file's text and its formatted text (None after reporting why not)."""
    from ..language.loader import read_text

    text, problem = read_text(path)
    if text is None:
        _report([problem] if problem is not None else [])
        return "", None
    try:
        return text, format_text(text, path)
    except RuleError as err:
        _report(err.diagnostics)
    except LinnixError as err:
        sys.stderr.write(f"linnix: {err}\n")
    return text, None


def _report(diags: Sequence[Diagnostic]) -> None:
    if diags:
        sys.stderr.write(render_all(diags, 100) + "\n")


def _write_or_report(path: str, text: str) -> bool:
    try:
        write_atomically(path, text)
    except OSError as err:
        sys.stderr.write(f"linnix: cannot write '{path}': {err.strerror or err}\n")
        return False
    sys.stdout.write(f"reformatted {path}\n")
    return True


def write_atomically(path: str, text: str) -> None:
    """Replace a file's content in one step: a temporary file beside it, then a rename."""
    target = os.path.realpath(path)
    mode = stat.S_IMODE(os.stat(target).st_mode)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp",
                               dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _unified_diff(path: str, old: str, new: str) -> str:
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=f"a/{path}", tofile=f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


def _summary(changed: int, unchanged: int, failed: int, *, dry: bool) -> None:
    def files(k: int) -> str:
        return f"{k} file{'s' * (k != 1)}"

    verb = "would be reformatted" if dry else "reformatted"
    parts = [f"{files(changed)} {verb}", f"{files(unchanged)} unchanged"]
    if failed:
        parts.append(f"{files(failed)} failed")
    sys.stderr.write(f"fmt: {', '.join(parts)}\n")
