"""The layout draws the architecture: which package may import which.

Every import of every module under ``linnix/`` (at the top of a module or
inside a function) is read with :mod:`ast` and checked against the table
below; imports under ``if TYPE_CHECKING:`` are only for the type checker and
are not counted.  docs/architecture.md explains the table.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT

PACKAGE = ROOT / "linnix"
SUBJECTS = ("language", "engine", "runtime", "actions", "api", "config", "cli", "tools",
            "cgroups", "analysis", "ui")

# What each part of linnix may import from linnix itself ("top" is the shared vocabulary
# at the top level: errors, names, plan, templates, procfs, terminal, timefmt, signals,
# shipped).
ALLOWED: dict[str, frozenset[str]] = {
    "top": frozenset({"top"}),
    "language": frozenset({"top"}),
    "engine": frozenset({"top"}),
    "cgroups": frozenset({"top"}),
    "actions": frozenset({"top", "engine", "cgroups"}),
    "config": frozenset({"top"}),
    "analysis": frozenset({"top", "engine", "actions"}),
    "api": frozenset({"top", "actions", "config", "analysis"}),
    # the dashboard: pages over the API's view and helpers, never the engine itself
    "ui": frozenset({"top", "actions", "config", "analysis", "api"}),
    "runtime": frozenset({"top", "language", "engine", "actions", "api", "config", "cgroups",
                          "analysis", "ui"}),
    "tools": frozenset({"top", "language", "engine", "runtime", "actions", "config",
                        "cgroups", "analysis"}),
    "cli": frozenset({"top", *SUBJECTS}),
}
# Pure vocabulary kept beside its subject: reading a cgroup path (the unit and container it
# names) is what the engine's process records need; the rest of cgroups/ reads and writes files.
VOCABULARY = frozenset({"linnix.cgroups.paths"})
# The package's own face: ``linnix`` re-exports the pipeline, ``python -m linnix`` runs the CLI.
EXCEPTIONS = {("linnix", "language"), ("linnix.__main__", "cli")}
# Third-party packages that only some parts may use.
RESTRICTED = {
    "trio": frozenset({"runtime", "actions", "api", "cli", "tools"}),
    "quart": frozenset({"api", "ui"}),
    "quart_trio": frozenset({"api"}),
    "hypercorn": frozenset({"api"}),
    "werkzeug": frozenset({"api", "ui"}),
    "prometheus_client": frozenset({"api", "runtime"}),
    "bcc": frozenset({"runtime", "tools"}),
}


# The analyst and what runs it (a model's answer included) never reach what proposes,
# approves, rejects or executes an action: not by an import of their own, nor through any
# module they import (the edges written in the code, followed to the end).
ANALYSTS = ("linnix.analysis", "linnix.runtime.analyst", "linnix.runtime.modelclient")
ACTING = frozenset({"linnix.actions.manager", "linnix.actions.executors",
                    "linnix.actions.cgroup", "linnix.actions.pending", "linnix.actions.pause",
                    "linnix.actions.watches", "linnix.runtime.responder", "linnix.api.app",
                    "linnix.api.client"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str:
    if module in VOCABULARY:
        return "top"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBJECTS else "top"


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
                and node.test.id == "TYPE_CHECKING":
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports(module: str, source: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``."""
    tree = ast.parse(source)
    skip = _type_checking_only(tree)
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None
                yield node.lineno, node.module
                continue
            anchor = base[:len(base) - (node.level - 1)]
            if node.module is not None:
                yield node.lineno, ".".join([*anchor, node.module])
            else:  # from . import x: each name may be a module
                for alias in node.names:
                    yield node.lineno, ".".join([*anchor, alias.name])


def violations(module: str, source: str, is_package: bool) -> list[str]:
    """What ``module`` imports that its part of linnix may not."""
    part = part_of(module)
    found = []
    for line, target in imports(module, source, is_package):
        root = target.split(".")[0]
        if root == "linnix":
            other = part_of(target)
            if other != part and other not in ALLOWED[part] \
                    and (module, other) not in EXCEPTIONS:
                found.append(f"{module}:{line} imports {target} ({part} may not import {other})")
        elif root in RESTRICTED and part not in RESTRICTED[root]:
            found.append(f"{module}:{line} imports {target} (only {sorted(RESTRICTED[root])} "
                         "may)")
    return found


def test_every_import_follows_the_layering() -> None:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        problems += violations(module_name(path), path.read_text(encoding="utf-8"),
                               path.name == "__init__.py")
    assert problems == []


def import_graph() -> dict[str, set[str]]:
    """Each module of linnix and the modules of linnix it imports (a name imported from a
    module counts as that module unless it is a module itself)."""
    sources = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in sources.items():
        found = imports(module, path.read_text(encoding="utf-8"), path.name == "__init__.py")
        graph[module] = {t if t in sources else t.rpartition(".")[0] for _, t in found
                         if t.split(".")[0] == "linnix"}
    return graph


def acting_paths(graph: dict[str, set[str]], start: str) -> list[list[str]]:
    """Import chains from ``start`` to a module of ACTING."""
    paths, seen, todo = [], {start}, [[start]]
    while todo:
        path = todo.pop()
        for target in sorted(graph.get(path[-1], set())):
            if target in ACTING:
                paths.append([*path, target])
            elif target not in seen:
                seen.add(target)
                todo.append([*path, target])
    return paths


def test_no_analyst_module_reaches_the_actions() -> None:
    graph = import_graph()
    analysts = [m for m in graph if m.startswith(ANALYSTS)]
    assert {"linnix.analysis.model", "linnix.runtime.modelclient"} <= set(analysts)
    assert [p for m in sorted(analysts) for p in acting_paths(graph, m)] == []


def test_an_analyst_reaching_the_actions_is_caught() -> None:
    graph = {"linnix.analysis.x": {"linnix.analysis.y"}, "linnix.analysis.y": {"linnix.top"},
             "linnix.top": {"linnix.actions.manager"}}
    assert acting_paths(graph, "linnix.analysis.x") == [
        ["linnix.analysis.x", "linnix.analysis.y", "linnix.top", "linnix.actions.manager"]]
    assert import_graph()["linnix.runtime.responder"] >= {"linnix.runtime.analyst"}


@pytest.mark.parametrize(("module", "source"), [
    ("linnix.engine.core", "from ..runtime import live\n"),
    ("linnix.engine.core", "import trio\n"),
    ("linnix.language.checker", "def f():\n    from linnix.engine.core import Core\n"),
    ("linnix.api.app", "from ..runtime.daemon import Daemon\n"),
    ("linnix.actions.guards", "from ..runtime.sources import telemetry\n"),
    ("linnix.names", "from .language import nodes\n"),
    ("linnix.tools.fmt", "from ..cli import main\n"),
    ("linnix.cgroups.sample", "import trio\n"),
    ("linnix.cgroups.control", "from ..actions import guards\n"),
    ("linnix.engine.core", "from ..cgroups import sample\n"),
])
def test_a_forbidden_import_is_caught(module: str, source: str) -> None:
    assert violations(module, source, is_package=False)


def test_type_checking_imports_and_allowed_ones_pass() -> None:
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
              "    from .language.source import Diagnostic\nfrom .names import METRICS\n")
    assert violations("linnix.errors", source, is_package=False) == []
    assert violations("linnix.runtime.daemon", "from ..engine.core import Core\n", False) == []
