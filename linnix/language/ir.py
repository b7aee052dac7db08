"""The checked form of rules and tests: what the checker hands to the later stages.

:func:`linnix.language.checker.check` turns each valid rule into a
:class:`CheckedRule` (clauses resolved, defaults filled in, scope decided,
durations in seconds) and each valid test block into a :class:`CheckedTest`.
The optimiser rewrites the conditions of checked rules into new ones, the
compiler generates code from them, and the test runner
(:mod:`linnix.runtime.testing`) replays traces against checked tests.  None of
them needs the checker itself, only these classes.
"""

from __future__ import annotations

import attrs

from ..names import ACTIONS, Scope
from ..templates import Template
from . import nodes as n
from .env import Env
from .infer import Uses
from .source import Span

__all__ = ["CheckedAction", "CheckedRule", "CheckedTest", "EventSpec", "Expectation"]


@attrs.frozen
class CheckedAction:
    """An action with its arguments resolved: grace in seconds, signal number, target."""

    name: str
    span: Span
    grace_s: float | None = None
    signal: int | None = None
    nice: int | None = None
    target: str | None = None  # metric of top(...), or None for the instance itself
    target_unless: n.Expr | None = None  # top(M, unless EXPR): the processes left out
    unless_text: str | None = None  # that EXPR as written, for people to read

    @property
    def targets_process(self) -> bool:
        return ACTIONS[self.name].targets_process


@attrs.frozen
class CheckedRule:
    """A rule whose clauses are valid, with defaults filled in and scope decided."""

    name: str
    span: Span
    env: Env
    scope: Scope
    scope_reason: str
    when: n.Expr
    unless: tuple[n.Expr, ...]
    for_s: float
    clear: n.Expr | None
    clear_for_s: float
    keep_firing_for_s: float
    cooldown_s: float
    severity: str
    description: str | None
    labels: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]
    message: Template | None
    actions: tuple[CheckedAction, ...]
    mode_monitor: bool
    enabled: bool
    uses: Uses
    boundary: tuple[n.Expr, ...] = ()  # 'boundary' clauses: a process for which one holds is a wall
    message_calls: tuple[tuple[str, n.Call], ...] = ()  # {f(...)} in the message, by its text
    # the labels with placeholders, rendered per instance (labels holds them as written)
    label_templates: tuple[tuple[str, Template], ...] = ()
    event: EventSpec | None = None  # 'on exec|exit|fork': an event rule
    runbook: str | None = None  # 'runbook "..."': what to do, shown with its incidents


@attrs.frozen
class EventSpec:
    """What makes a rule an event rule: its trigger and its flood control."""

    trigger: str  # exec | exit | fork
    cooldown_by: tuple[str, ...] = ()  # the cooldown's key (empty: exe, or comm)
    max_rate: int = 20  # alerts at most ...
    per_s: float = 1.0  # ... in any such span of time


@attrs.frozen
class Expectation:
    """One ``expect`` line of a test."""

    kind: str  # between | pid | never | count | action
    span: Span
    rule: str | None = None
    state: str | None = None
    low: float | None = None
    high: float | None = None
    pid: int | None = None
    count: int | None = None
    action: str | None = None

    @property
    def text(self) -> str:
        return " ".join(self.span.text.split())


@attrs.frozen
class CheckedTest:
    """A test block: its trace (path resolved), tick, expectations and visible rules."""

    title: str
    span: Span
    trace: str
    tick_s: float | None
    expects: tuple[Expectation, ...]
    rules: tuple[str, ...]
