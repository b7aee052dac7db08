"""The front end, stage by stage: load → check → optimise → compile.

This is the one place the stages are called in order.  :func:`build` collects
every diagnostic of every stage; it produces a plan only when there is no
error, which is what ``check`` reports, what ``run`` refuses to start on, and
what ``replay`` and ``test`` execute.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator

import attrs

from ..errors import RuleError
from ..plan import Plan
from .checker import check
from .compiler import compile_rules
from .ir import CheckedRule, CheckedTest
from .loader import Program, load, load_text
from .optimizer import optimize
from .source import Diagnostic

__all__ = ["Build", "build", "build_program", "compile_text"]


@attrs.frozen
class Build:
    """The outcome of the front end for one set of files."""

    program: Program
    diagnostics: list[Diagnostic]
    plan: Plan | None
    rules: list[CheckedRule]
    tests: list[CheckedTest]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def require_plan(self) -> Plan:
        """The plan, or RuleError with every error when there is none."""
        if self.plan is None:
            raise RuleError(self.errors)
        return self.plan


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while the front end runs.

    The front end allocates hundreds of thousands of small, acyclic objects
    (tokens, nodes, spans) that reference counting frees; the cyclic
    collector finds nothing among them but, triggered by the allocations
    alone, used to take about 40% of the time of a large compile.

    Every object allocated meanwhile is still in the youngest generation when
    the collector is enabled again, so the first young collection afterwards
    would walk all of them (the whole AST and plan: most of a second for ten
    thousand rules) only to promote them.  They are moved to the oldest
    generation instead (``freeze`` then ``unfreeze``), where, like any
    long-lived object, they are examined by full collections only.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        gc.enable()


def build_program(program: Program) -> Build:
    """Check, optimise and compile an already loaded program."""
    with _no_cycle_collection():
        return _build_program(program)


def _build_program(program: Program) -> Build:
    result = check(program)
    if result.errors:
        return Build(program, result.diagnostics, None, [], result.tests)
    rules, warnings = optimize(result.rules)
    plan = compile_rules(rules, tuple(result.tests))
    diagnostics = sorted([*result.diagnostics, *warnings], key=Diagnostic.sort_key)
    return Build(program, diagnostics, plan, rules, result.tests)


def build(paths: Iterable[str]) -> Build:
    """Load files and directories (``*.lnx``, recursively) and build them."""
    with _no_cycle_collection():
        return _build_program(load(paths))


def compile_text(text: str, path: str = "<input>") -> Plan:
    """Compile rules given as a string; raise RuleError on any error."""
    with _no_cycle_collection():
        return _build_program(load_text(text, path)).require_plan()
