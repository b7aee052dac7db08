"""The front end, stage by stage: load → check → optimise → compile.

This is the one place the stages are called in order.  :func:`build` collects
every diagnostic of every stage; it produces a plan only when there is no
error, which is what ``run`` refuses to start on, and what ``replay`` and
``test`` execute.

:func:`check_files` is what ``linnix check`` reports: the same diagnostics and
the same compiled rules, found with a rule at a time in memory, since a
check keeps nothing.  The files are loaded in outline (their rules parsed,
judged and let go), each rule is parsed again when the checker comes to it,
then optimised and compiled with a couple of thousand others, and let go.
The plan of 100,000 small rules (5 MB) takes about 200 MB and their syntax
trees almost as much again; a check of them grows by about 70 MB, mostly
their outlines.  Each rule is parsed twice, which costs time in proportion.
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

__all__ = ["Build", "TagSwitch", "build", "build_program", "check_files", "check_program",
           "compile_text"]

# Rules compiled at once by check_files: enough to amortise what compiling a
# batch costs for the whole file (its generated module spans every line).
_CHECK_BATCH = 2_000


@attrs.frozen
class TagSwitch:
    """Rules switched on and off by their tags, whatever their own ``enabled`` says.

    Applied before rules are optimised and compiled, so that what a plan samples,
    windows and counts is what its active rules read.  A rule with a tag in
    ``disable`` is off even when another of its tags is in ``enable``.
    """

    enable: frozenset[str] = frozenset()
    disable: frozenset[str] = frozenset()

    def apply(self, rules: list[CheckedRule]) -> list[CheckedRule]:
        if not (self.enable or self.disable):
            return rules
        return [attrs.evolve(r, enabled=self.enabled(r)) for r in rules]

    def enabled(self, rule: CheckedRule) -> bool:
        tags = set(rule.tags)
        if tags & self.disable:
            return False
        return rule.enabled or bool(tags & self.enable)

    def unknown(self, rules: Iterable[CheckedRule]) -> list[str]:
        """The tags named here that no rule carries (most likely misspelt)."""
        carried = {t for r in rules for t in r.tags}
        return sorted((self.enable | self.disable) - carried)


NO_SWITCH = TagSwitch()


@attrs.frozen
class Build:
    """The outcome of the front end for one set of files."""

    program: Program
    diagnostics: list[Diagnostic]
    plan: Plan | None
    rules: list[CheckedRule]
    tests: list[CheckedTest]
    # rules compiled (None when there is an error): those of the plan, or the
    # ones check_files compiled without keeping them
    compiled: int | None = None

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


def build_program(program: Program, switch: TagSwitch = NO_SWITCH) -> Build:
    """Check, optimise and compile an already loaded program."""
    with _no_cycle_collection():
        return _build_program(program, switch)


def _build_program(program: Program, switch: TagSwitch = NO_SWITCH) -> Build:
    result = check(program)
    if result.errors:
        return Build(program, result.diagnostics, None, [], result.tests)
    rules, warnings = optimize(switch.apply(result.rules))
    plan = compile_rules(rules, tuple(result.tests))
    diagnostics = sorted([*result.diagnostics, *warnings], key=Diagnostic.sort_key)
    return Build(program, diagnostics, plan, rules, result.tests, len(plan.rules))


def check_files(paths: Iterable[str]) -> Build:
    """Load, check, optimise and compile like :func:`build`, keeping nothing but
    the diagnostics: the result has no plan and no rules, and ``compiled``
    says how many rules compiled (None when there is an error)."""
    with _no_cycle_collection():
        return _check_program(load(paths, outline=True))


def check_program(program: Program) -> Build:
    """:func:`check_files` for an already loaded program (in outline, or not)."""
    with _no_cycle_collection():
        return _check_program(program)


def _check_program(program: Program) -> Build:
    batch = _Batch(enabled=not any(d.is_error for d in program.diagnostics))
    result = check(program, batch.add)
    if result.errors:
        return Build(program, result.diagnostics, None, [], result.tests)
    batch.compile()
    diagnostics = sorted([*result.diagnostics, *batch.warnings], key=Diagnostic.sort_key)
    return Build(program, diagnostics, None, [], result.tests, batch.compiled)


class _Batch:
    """Checked rules, optimised one at a time and compiled a batch at a time,
    then let go (nothing is done once loading has found an error: none of it
    would be reported)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.rules: list[CheckedRule] = []
        self.warnings: list[Diagnostic] = []
        self.compiled = 0

    def add(self, rule: CheckedRule) -> None:
        if not self.enabled:
            return
        rules, warnings = optimize([rule])
        self.rules += rules
        self.warnings += warnings
        if len(self.rules) >= _CHECK_BATCH:
            self.compile()

    def compile(self) -> None:
        if self.rules:
            self.compiled += len(compile_rules(self.rules, register=False).rules)
            self.rules = []
            # The compiled functions and the namespace of their generated module
            # refer to each other, and the cyclic collector is paused: collect
            # what is young, the batch just let go (older objects, examined
            # once, are not examined again).
            gc.collect(0)


def build(paths: Iterable[str], switch: TagSwitch = NO_SWITCH) -> Build:
    """Load files and directories (``*.lnx``, recursively) and build them, with rules
    switched on and off by ``switch``."""
    with _no_cycle_collection():
        return _build_program(load(paths), switch)


def compile_text(text: str, path: str = "<input>") -> Plan:
    """Compile rules given as a string; raise RuleError on any error."""
    with _no_cycle_collection():
        return _build_program(load_text(text, path)).require_plan()
