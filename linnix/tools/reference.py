"""The reference of the rule language's names, generated from :mod:`linnix.names`.

:func:`render` turns the registry (metrics and fields, windowed functions,
units, actions, signals, template names) into Markdown tables.  The output is
kept in two places, ``docs/reference.md`` and the section of ``README.md``
between ``<!-- reference:start -->`` and ``<!-- reference:end -->``; a test
fails when either differs from what the registry says.  Regenerate both with::

    python -m linnix.tools.reference --write      (or: make docs)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..language.printer import number
from ..names import (
    ACTIONS,
    COUNTED_FIELDS,
    COUNTING_FUNCTIONS,
    FUNCTIONS,
    METRICS,
    SIGNALS,
    TEMPLATE_EXTRAS,
    UNITS,
    WINDOW_FUNCTIONS,
    Dim,
    Metric,
    Param,
)

__all__ = [
    "README_END",
    "README_START",
    "document",
    "main",
    "readme_with_reference",
    "render",
]

README_START = "<!-- reference:start -->"
README_END = "<!-- reference:end -->"
_GENERATED = ("<!-- Generated from linnix/names.py by `python -m linnix.tools.reference --write` "
              "(make docs); do not edit by hand. -->")
_BYTES_PER_MIB = 1024 * 1024
_PLACEHOLDER = {"duration": "DURATION", "signal": "SIGNAL", "int": "NUMBER",
                "target": "top(METRIC[, unless EXPR])"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return out


def _base_unit(dim: Dim) -> str:
    """The suffix whose factor is 1: the unit a metric of that dimension is kept in."""
    return next(u.suffix for u in UNITS.values() if u.dim is dim and u.factor == 1.0)


def _unit(m: Metric) -> str:
    if not m.numeric or m.dim is Dim.PLAIN:
        return "-"
    return _base_unit(m.dim)


def _metrics() -> list[str]:
    rows = [(f"`{m.name}`", m.scope.value, m.type.value, _unit(m), m.help, m.computed,
             "yes" if m.optional else "no") for m in METRICS.values()]
    return _table(("name", "scope", "type", "unit", "meaning", "how it is computed",
                   "can lack a value"), rows)


def _functions() -> list[str]:
    windowed = [(f"`{name}(M, W)`", meaning) for name, meaning in WINDOW_FUNCTIONS.items()]
    counting = [(f"`{_COUNTING_ARGS.get(name, name + '(FIELD, W)')}`", meaning)
                for name, meaning in COUNTING_FUNCTIONS.items()]
    others = [(f"`{name}(M)`", meaning) for name, meaning in FUNCTIONS.items()
              if name not in WINDOW_FUNCTIONS and name not in COUNTING_FUNCTIONS]
    return [*_table(("function", "value"), windowed), "", "Counting functions (`FIELD` is "
            f"one of {', '.join(f'`{f}`' for f in COUNTED_FIELDS)}; a counting function "
            "may also be a placeholder of a message, e.g. `{crashes(exe, 5m)}`):", "",
            *_table(("function", "value"), counting), "", "Other functions:", "",
            *_table(("function", "value"), others)]


_COUNTING_ARGS = {"count": "count(EXPR)"}


def _equals(suffix: str) -> str:
    unit = UNITS[suffix]
    if unit.dim is Dim.SIZE:
        return f"{number(round(unit.factor * _BYTES_PER_MIB))} bytes"
    return f"{number(unit.factor)} {_base_unit(unit.dim)}"


def _units() -> list[str]:
    rows = [(f"`{u.suffix}`", u.dim.name.lower(), _equals(u.suffix)) for u in UNITS.values()]
    return _table(("suffix", "dimension", "equals"), rows)


def _param(p: Param) -> str:
    if p.positional:
        return f"`{p.name.upper()}` (required, first)"
    return f"`{p.name} = {_PLACEHOLDER.get(p.kind, p.kind.upper())}` (optional)"


def _actions() -> list[str]:
    rows = [(f"`{a.name}`", "yes" if a.targets_process else "no",
             ", ".join(_param(p) for p in a.params) or "none", a.help)
            for a in ACTIONS.values()]
    return _table(("action", "acts on a process", "arguments", "what it does"), rows)


def _signals() -> list[str]:
    return _table(("signal", "number"), ((f"`{s}`", str(k)) for s, k in SIGNALS.items()))


def _template_names() -> list[str]:
    return _table(("name", "type"), ((f"`{k}`", t.value) for k, t in TEMPLATE_EXTRAS.items()))


_METRICS_INTRO = (
    "A `system` name has one value for the host and may be used in any rule. A `process` field "
    "has one value per process and may be used in process and subtree rules (in a subtree rule "
    "it is the field of the subtree's root). A `subtree` metric aggregates a process and its "
    "descendants and may be used only in subtree rules. A process field of the parent is read as "
    "`parent.NAME` (e.g. `parent.comm`), of the grandparent as `parent.parent.NAME`, and so on. "
    "A `cgroup` metric has one value per cgroup and may be used only in cgroup rules, which "
    "read the cgroup's own `cgroup`, `unit` and `container` too, and no other process field. "
    "Numbers are kept in the unit shown; a literal with another unit of the same dimension is "
    "converted to it, and a percentage that meets another unit is a fraction (`50%` is 0.5).")
_FUNCTIONS_INTRO = ("`M` is a numeric metric name and `W` a duration, e.g. `avg(rss_mb, 30s)`; "
                    "a window function has no value until the instance has been observed for W.")
_ACTIONS_INTRO = ("`alert` is always implied. An action that acts on a process targets the rule "
                  "instance's own process; in a system rule it needs `target = top(METRIC)`.")


def render(level: int = 2) -> str:
    """Every table of the reference, under headings of the given Markdown level."""
    h = "#" * level
    lines = [
        _GENERATED, "",
        f"{h} Metrics and fields", "", _METRICS_INTRO, "", *_metrics(), "",
        f"{h} Functions", "", _FUNCTIONS_INTRO, "", *_functions(), "",
        f"{h} Units", "", "A bare number takes the unit of what it is compared with.", "",
        *_units(), "",
        f"{h} Actions", "", _ACTIONS_INTRO, "", *_actions(), "",
        f"{h} Signals", "", *_signals(), "",
        f"{h} Extra names in message templates", "",
        "Besides the metrics and fields in the rule's scope, a `message` template may use:", "",
        *_template_names(),
    ]
    return "\n".join(lines) + "\n"


def document() -> str:
    """The whole of ``docs/reference.md``."""
    return ("# linnix reference\n\nThe names, functions, units, actions and signals the "
            "`.lnx` language knows. The language itself is described in "
            "[language.md](language.md).\n\n" + render(2))


def readme_with_reference(readme: str) -> str:
    """``readme`` with the text between the reference markers replaced by :func:`render`."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the markers {README_START} ... {README_END}")
    head = readme[: start + len(README_START)]
    return f"{head}\n{render(3)}{readme[end:]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m linnix.tools.reference",
                                     description="Print or write the generated reference.")
    parser.add_argument("--write", action="store_true",
                        help="update docs/reference.md and README.md under --root")
    parser.add_argument("--root", type=Path, default=Path.cwd(),
                        help="the project directory (default: the current directory)")
    args = parser.parse_args(argv)
    if not args.write:
        sys.stdout.write(document())
        return 0
    readme = args.root / "README.md"
    if not readme.is_file():
        sys.stderr.write(f"{readme}: not found; run from the project directory or give --root\n")
        return 2
    (args.root / "docs").mkdir(exist_ok=True)
    _update(args.root / "docs" / "reference.md", document())
    try:
        _update(readme, readme_with_reference(readme.read_text(encoding="utf-8")))
    except ValueError as err:
        sys.stderr.write(f"{err}\n")
        return 1
    return 0


def _update(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {path}\n")


if __name__ == "__main__":
    raise SystemExit(main())
