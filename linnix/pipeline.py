"""The front end, stage by stage: load → check → optimise → compile.

This is the one place the stages are called in order.  :func:`build` collects
every diagnostic of every stage; it produces a plan only when there is no
error, which is what ``check`` reports, what ``run`` refuses to start on, and
what ``replay`` and ``test`` execute.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from .checker import CheckedRule, CheckedTest, check
from .compiler import compile_rules
from .errors import RuleError
from .loader import Program, load, load_text
from .optimizer import optimize
from .plan import Plan
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


def build_program(program: Program) -> Build:
    """Check, optimise and compile an already loaded program."""
    result = check(program)
    if result.errors:
        return Build(program, result.diagnostics, None, [], result.tests)
    rules, warnings = optimize(result.rules)
    plan = compile_rules(rules, tuple(result.tests))
    diagnostics = sorted([*result.diagnostics, *warnings], key=Diagnostic.sort_key)
    return Build(program, diagnostics, plan, rules, result.tests)


def build(paths: Iterable[str]) -> Build:
    """Load files and directories (``*.lnx``, recursively) and build them."""
    return build_program(load(paths))


def compile_text(text: str, path: str = "<input>") -> Plan:
    """Compile rules given as a string; raise RuleError on any error."""
    return build_program(load_text(text, path)).require_plan()
