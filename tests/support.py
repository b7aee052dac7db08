"""Helpers shared by the front-end tests: building rule text, fake records, AST shapes.

Fake records are built from the registry (``linnix.names.METRICS``): each
metric's ``code`` template says which attribute or method of the process (``P``)
or host (``H``) record holds it, so ``process(cpu_pct=95)`` sets whatever the
compiled code for ``cpu_pct`` reads.  A metric that is not given is absent: its
attribute is None (optional metrics) or a neutral value (metrics the registry
promises are always present, such as counts).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs

from linnix.language import nodes as n
from linnix.language.loader import load_text
from linnix.language.pipeline import Build, build_program
from linnix.language.source import Diagnostic
from linnix.names import METRICS, Scope, Type
from linnix.plan import CompiledRule, Plan

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"

# P.attr | P.attr(NOW) | P.attr() | P.attr.method(NOW)
_CODE = re.compile(r"(P|H)\.(\w+)(?:\.(\w+))?(\((?:NOW)?\))?")

WindowTable = Mapping[tuple[str, str, float], float | None]


def _reader(value: object, takes_now: bool) -> Callable[..., object]:
    if takes_now:
        return lambda now: value
    return lambda: value


def _install(record: SimpleNamespace, metric: str, value: object) -> None:
    code = METRICS[metric].code
    m = _CODE.fullmatch(code)
    assert m is not None, f"unexpected code template {code!r} for {metric}"
    _, attr, method, call = m.groups()
    if method is not None:
        setattr(record, attr, SimpleNamespace(**{method: _reader(value, True)}))
    elif call is not None:
        setattr(record, attr, _reader(value, "NOW" in call))
    else:
        setattr(record, attr, value)


def _absent(metric: str) -> object:
    """What a record holds for a metric nobody set."""
    m = METRICS[metric]
    if m.optional:
        return None
    return [] if m.type is Type.STR_LIST else 0


def _windows(record: SimpleNamespace, table: WindowTable | None,
             calls: list[tuple[str, str, float, float]] | None) -> None:
    table = dict(table or {})
    for func in ("avg", "min", "max", "delta", "rate"):
        def win(metric: str, window_s: float, now: float, func: str = func) -> object:
            if calls is not None:
                calls.append((func, metric, window_s, now))
            return table.get((func, metric, window_s))
        setattr(record, f"win_{func}", win)


def process(*, parent: Any = None, windows: WindowTable | None = None,
            calls: list[tuple[str, str, float, float]] | None = None,
            **metrics: object) -> SimpleNamespace:
    """A fake process record: ``process(comm="bash", cpu_pct=95, parent=process(...))``."""
    record = SimpleNamespace(parent=parent)
    for name, metric in METRICS.items():
        if metric.scope is not Scope.SYSTEM:
            _install(record, name, metrics.pop(name) if name in metrics else _absent(name))
    assert not metrics, f"not process metrics: {sorted(metrics)}"
    _windows(record, windows, calls)
    record.bounded = _Unbounded(record)
    return record


class _Unbounded:
    """A fake record's subtree totals within any boundary (``p.bounded[k]``): its own."""

    def __init__(self, record: SimpleNamespace) -> None:
        self.record = record

    def __getitem__(self, k: int) -> SimpleNamespace:
        return self.record


def host(*, windows: WindowTable | None = None,
         calls: list[tuple[str, str, float, float]] | None = None,
         **metrics: object) -> SimpleNamespace:
    """A fake host record: ``host(host_cpu_pct=95, forks_per_sec=3)``."""
    record = SimpleNamespace()
    for name, metric in METRICS.items():
        if metric.scope is Scope.SYSTEM:
            _install(record, name, metrics.pop(name) if name in metrics else _absent(name))
    assert not metrics, f"not system metrics: {sorted(metrics)}"
    _windows(record, windows, calls)
    return record


# ---- building ------------------------------------------------------------------------

def build_text(text: str, path: str = "t.lnx") -> Build:
    return build_program(load_text(text, path))


def diagnostics(text: str, path: str = "t.lnx") -> list[Diagnostic]:
    return build_text(text, path).diagnostics


def codes(text: str, path: str = "t.lnx") -> list[str]:
    return [d.code for d in diagnostics(text, path)]


def only(text: str, code: str, path: str = "t.lnx") -> Diagnostic:
    """The one diagnostic of ``text``, which must have ``code``."""
    found = diagnostics(text, path)
    assert [d.code for d in found] == [code], [(d.code, d.message) for d in found]
    return found[0]


def plan(text: str, path: str = "t.lnx") -> Plan:
    result = build_text(text, path)
    assert result.plan is not None, [(d.code, d.message) for d in result.errors]
    return result.plan


def rule(text: str, name: str | None = None) -> CompiledRule:
    """The compiled rule ``name`` (or the only rule) of ``text``."""
    p = plan(text)
    if name is None:
        assert len(p.rules) == 1
        return p.rules[0]
    found = p.rule(name)
    assert found is not None
    return found


def when(condition: str, *, extra: str = "", on: str = "") -> Callable[..., bool]:
    """The compiled condition of ``rule r: CONDITION`` (``rule r on ON: ...`` with ``on``)."""
    head = f"rule r on {on}" if on else "rule r"
    return rule(f"{extra}\n{head}: {condition}\n", "r").cond


def write(directory: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write files (text or bytes) under ``directory``; returns the directory."""
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory


# ---- AST shapes ----------------------------------------------------------------------

def sexp(node: object) -> str:
    """A node as a compact S-expression without spans: ``(Compare > (Name x) (Number 1))``."""
    if isinstance(node, tuple):
        return "[" + " ".join(sexp(x) for x in node) + "]"
    if isinstance(node, float):
        return f"{node:g}"
    if not attrs.has(type(node)):
        return str(node)
    parts = [type(node).__name__]
    for field in attrs.fields(type(node)):  # type: ignore[arg-type]
        if not field.name.endswith("span"):
            parts.append(sexp(getattr(node, field.name)))
    return "(" + " ".join(parts) + ")"


def decls(text: str, path: str = "t.lnx") -> tuple[Any, ...]:
    """The declarations of one file, as built (no checking; includes are not required)."""
    program = load_text(text, path)
    problems = [(d.code, d.message) for d in program.diagnostics if d.code != "E110"]
    assert not problems, problems
    return program.modules[os.path.normpath(path)].decls


def expr(text: str) -> n.Expr:
    """The expression of ``rule r: TEXT``, as built."""
    (r,) = decls(f"rule r: {text}")
    assert isinstance(r, n.Rule)
    clause = r.clauses[0]
    assert isinstance(clause, n.When)
    return clause.expr


def shape(text: str) -> str:
    return sexp(expr(text))


def check_spans(diags: Iterable[Diagnostic]) -> None:
    """Every span lies inside its source and its line/column agree with its offsets."""
    for d in diags:
        s = d.span
        text = s.source.text
        assert 0 <= s.start <= s.end <= len(text), (d.code, s.start, s.end, len(text))
        assert (s.line, s.col) == s.source.position(s.start), (d.code, s.line, s.col)
        assert (s.end_line, s.end_col) == s.source.position(s.end), (d.code, s.end_line)


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``linnix ARGV`` in this process: (exit status, stdout, stderr)."""
    from linnix import cli

    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def run_linnix(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``linnix ARGV`` as a separate process, its output captured; never raises on failure."""
    return subprocess.run([sys.executable, "-m", "linnix", *argv], capture_output=True,
                          text=True, timeout=timeout, check=False)


def emitted_codes() -> set[str]:
    """Every diagnostic code written in the front end's sources (the language package and
    the shared vocabulary it reads)."""
    import re

    paths = [*(ROOT / "linnix" / "language").glob("*.py"),
             *(ROOT / "linnix" / f"{name}.py" for name in ("templates", "plan", "names"))]
    found: set[str] = set()
    for path in paths:
        found |= set(re.findall(r'"([EW]\d{3})"', path.read_text(encoding="utf-8")))
    return found


def compare_golden(got: bytes, golden: Path, update: bool) -> None:
    """``got`` equals the golden file; with ``--update-golden`` it becomes the file."""
    if update:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(got)
        return
    assert golden.exists(), f"{golden} is missing; run pytest --update-golden"
    assert got == golden.read_bytes()


_SPEED = re.compile(rb'"replay_events_per_s":(?:null|[-+.e0-9]+)')


def without_speed(out: bytes) -> bytes:
    """Replay output minus what depends on the machine, the replay speed: the text
    summary's ``replayed in`` line is left out, the JSONL summary's value shown as null."""
    lines = out.splitlines(keepends=True)
    speed = [line for line in lines if line.startswith(b"replayed in ")]
    assert len(speed) <= 1, lines
    kept = b"".join(line for line in lines if line not in speed)
    return _SPEED.sub(b'"replay_events_per_s":null', kept)
