"""The compiled artefact the engine executes: rules by scope and what they require.

A :class:`Plan` is immutable.  Its requirements are exact: the engine keeps
window buffers only for :attr:`Plan.windows`, runs the subtree pass only when
:attr:`Plan.needs_subtree`, and the live sampler reads file descriptors only
when :attr:`Plan.needs_fds` (only enabled rules count).  :func:`needs_network`
says whether the live source must capture network events for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .names import NET_TRIGGERS, Need, Scope
from .templates import Template

__all__ = [
    "LABEL_MAX", "Boundary", "CompiledAction", "CompiledRule", "Condition", "FilterKey",
    "Getter", "Plan", "ValuesGetter", "WhyPart", "WindowMetric", "needs_network",
]

# (process record or None, host record, now) -> truth / values / one value
Condition = Callable[[Any, Any, float], bool]
ValuesGetter = Callable[[Any, Any, float], dict[str, object]]
Getter = Callable[[Any, Any, float], Any]

# The longest label value a placeholder renders, in characters (a command line is
# chosen by the process; Alertmanager keeps every label of every alert).
LABEL_MAX = 256


@attrs.frozen
class CompiledAction:
    """An action as the engine proposes it."""

    name: str
    targets_process: bool
    grace_s: float | None = None
    signal: int | None = None
    nice: int | None = None
    target: str | None = None  # metric for top(...); None: the instance's own process
    read: Getter | None = attrs.field(default=None, eq=False, repr=False)  # reads target
    unless_text: str | None = None  # top(M, unless EXPR): the processes left out
    exclude: Condition | None = attrs.field(default=None, eq=False, repr=False)
    targets_cgroup: bool = False  # freeze, kill_cgroup: on the instance's cgroup

    def describe(self) -> str:
        args = []
        if self.grace_s is not None:
            args.append(f"grace = {self.grace_s:g}s")
        if self.signal is not None:
            args.append(f"signal = {self.signal}")
        if self.nice is not None:
            args.append(f"nice = {self.nice}")
        if self.target is not None:
            unless = "" if self.unless_text is None else f", unless {self.unless_text}"
            args.append(f"target = top({self.target}{unless})")
        return f"{self.name}({', '.join(args)})" if args else self.name


@attrs.frozen
class Boundary:
    """The walls of subtree rules: one set of subtree totals is kept per distinct text."""

    text: str
    wall: Condition = attrs.field(eq=False, repr=False)  # (process, host, now) -> a wall?


@attrs.frozen
class FilterKey:
    """One way an event can pass an event rule's pre-filter: the text ``field`` reads is
    ``value`` (``how`` is ``is``), starts with it (``prefix``), ends with it (``suffix``)
    or contains it (``contains``).

    A rule with a pre-filter can hold only at an event that passes one of its keys, so
    the engine judges its condition only then; the condition still decides.
    """

    field: str  # as the rule writes it: comm, exe, parent.comm
    how: str  # is | prefix | suffix | contains
    value: str | float  # a number only for ``is``, on a number field (uid == 0)
    code: str  # the Python expression reading the field of process ``p`` (None: no value)


@attrs.frozen
class CompiledRule:
    """One rule, ready to evaluate."""

    name: str
    path: str
    line: int
    scope: Scope
    scope_reason: str
    severity: str
    description: str | None
    labels: Mapping[str, str]
    tags: tuple[str, ...]
    message: Template
    actions: tuple[CompiledAction, ...]
    mode_monitor: bool
    enabled: bool
    for_s: float
    clear_for_s: float
    keep_firing_for_s: float
    cooldown_s: float
    cond: Condition
    clear: Condition | None
    values: ValuesGetter
    cond_text: str
    clear_text: str | None
    inputs: tuple[str, ...]
    windows: tuple[tuple[str, float], ...]
    needs: frozenset[Need]
    time_varying: bool
    boundary: Boundary | None = None  # its subtree totals stop at these walls
    # labels whose value has placeholders ({comm}): rendered for each instance
    label_templates: tuple[tuple[str, Template], ...] = ()
    trigger: str | None = None  # exec | exit | fork: an event rule, judged at each such event
    cooldown_by: tuple[str, ...] = ()  # an event rule's cooldown key (empty: exe, or comm)
    max_rate: int = 20  # an event rule's alerts at most, ...
    max_rate_per_s: float = 1.0  # ... in any span of this many seconds
    # an event rule's pre-filter (None: every event of its kind is judged)
    prefilter: tuple[FilterKey, ...] | None = None
    runbook: str | None = None  # what to do when it fires (text or a link), kept as data
    # the rule as written, from 'rule' to its end, as its file read when the plan was built
    # (an edited file changes it at the next build, never under a running plan)
    source: str | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def labels_for(self, context: Mapping[str, object]) -> dict[str, str]:
        """The labels of an alert of the instance whose values are ``context``."""
        labels = dict(self.labels)
        for key, template in self.label_templates:
            labels[key] = template.render(context)[:LABEL_MAX]
        return labels

    @property
    def targets(self) -> tuple[CompiledAction, ...]:
        """The actions that act on a process."""
        return tuple(a for a in self.actions if a.targets_process)

    @property
    def cgroup_targets(self) -> tuple[CompiledAction, ...]:
        """The actions that act on the instance's cgroup (a cgroup rule's)."""
        return tuple(a for a in self.actions if a.targets_cgroup)


@attrs.frozen
class WindowMetric:
    """A metric the engine must remember over time, for at most ``span_s`` seconds."""

    name: str
    scope: Scope
    span_s: float
    read: Getter


@attrs.frozen
class CountTerm:
    """A ``count(EXPR)`` of the plan: the engine keeps the set of live processes for which
    ``cond`` holds, and generated code reads its size by ``text`` (EXPR as printed)."""

    text: str
    cond: Condition
    inputs: tuple[str, ...]  # what EXPR reads: which changes make a process judged again


@attrs.frozen
class EventCounter:
    """The ``kind`` events (execs, exits, crashes) the engine counts by ``field``, kept for
    the longest window the plan reads (``span_s``)."""

    kind: str
    field: str
    span_s: float


@attrs.frozen
class Plan:
    """Everything the engine needs to evaluate a rule set."""

    rules: tuple[CompiledRule, ...]
    metrics: frozenset[str]
    windows: frozenset[tuple[str, float]]
    window_metrics: tuple[WindowMetric, ...]
    needs: frozenset[Need]
    tests: tuple[Any, ...] = ()
    generated: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    # distinct boundaries; a rule reads the totals of its own, at its index here
    boundaries: tuple[Boundary, ...] = ()
    counts: tuple[CountTerm, ...] = ()  # count(EXPR), by text
    event_counters: tuple[EventCounter, ...] = ()  # execs/exits/crashes(FIELD, W)

    @property
    def active(self) -> tuple[CompiledRule, ...]:
        return tuple(r for r in self.rules if r.enabled)

    @property
    def ticked(self) -> tuple[CompiledRule, ...]:
        """The active rules judged at ticks."""
        return tuple(r for r in self.rules if r.enabled and r.trigger is None)

    @property
    def evented(self) -> tuple[CompiledRule, ...]:
        """The active event rules (``on exec|exit|fork``), judged at their events."""
        return tuple(r for r in self.rules if r.enabled and r.trigger is not None)

    def by_scope(self, scope: Scope) -> tuple[CompiledRule, ...]:
        return tuple(r for r in self.active if r.scope is scope)

    def rule(self, name: str) -> CompiledRule | None:
        return next((r for r in self.rules if r.name == name), None)

    def boundary_index(self, rule: CompiledRule) -> int | None:
        """Where the table keeps the totals within ``rule``'s walls (None: no boundary)."""
        if rule.boundary is None:
            return None
        return next(i for i, b in enumerate(self.boundaries) if b.text == rule.boundary.text)

    @property
    def needs_subtree(self) -> bool:
        return Need.SUBTREE in self.needs

    @property
    def needs_fds(self) -> bool:
        return Need.FDS in self.needs

    @property
    def needs_sockets(self) -> bool:
        """Whether the sampler must count each process's open sockets (``sockets``)."""
        return Need.SOCKETS in self.needs


def needs_network(plan: Plan) -> bool:
    """Whether the plan's active rules need network events: one is ``on connect``,
    ``on accept`` or ``on listen``, or reads a name made of them (``connects_per_sec``,
    ``accepts_per_sec``, ``listen_ports``, ``subtree_connects_per_sec``, ``remote_addr``,
    ``remote_port``, ``local_port``, ``family``: the registry's :data:`Need.NETWORK`, which
    the compiler gives every network event rule as well)."""
    return Need.NETWORK in plan.needs or any(r.trigger in NET_TRIGGERS for r in plan.active)


@attrs.frozen
class WhyPart:
    """One part of a rule's condition, compiled apart for ``replay --why``: a conjunct of
    its ``when`` or one of its ``unless`` (never used by the engine's own evaluation)."""

    kind: str  # "when" | "unless"
    text: str  # as written in the rule
    cond: Condition = attrs.field(eq=False, repr=False)
    values: ValuesGetter = attrs.field(eq=False, repr=False)  # the names it reads
    op: str | None = None  # a comparison: its operator, and its two sides
    left_text: str | None = None
    right_text: str | None = None
    left: Getter | None = attrs.field(default=None, eq=False, repr=False)
    right: Getter | None = attrs.field(default=None, eq=False, repr=False)
    right_literal: bool = False  # the right side is a constant as written (no value shown)
