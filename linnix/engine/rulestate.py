"""What the evaluator keeps and produces: rule state, instances, alerts, proposals.

:class:`RuleState` holds one rule's instances (:class:`Instance`: inactive,
pending or firing, with its since-time, cooldown and clear timer) and what the
rule reacts to; :class:`Alert` and :class:`Proposal` are what a tick produces.
The state machine that moves instances is :mod:`.evaluator`'s.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..names import COUNTING_FUNCTIONS, METRICS, Need, Scope
from ..plan import CompiledAction, CompiledRule
from ..timefmt import rfc3339, seconds
from .cgtable import Cg
from .durations import Durations
from .proctable import Proc

if TYPE_CHECKING:
    from .trail import Trail

__all__ = ["EPS", "FIRING", "HISTORY_MAX", "INACTIVE", "PENDING", "Alert", "Instance", "Key",
           "Proposal", "RuleState", "change_groups", "order"]

EPS = 1e-9  # tick times are sums of floats; compare durations with a little slack

INACTIVE, PENDING, FIRING = 0, 1, 2
_STATE_NAMES = {PENDING: "pending", FIRING: "firing"}


# What tells one instance of a rule from another, outside the engine (incidents, their
# trails, Alertmanager): the rule, and the process's pid and start (a pid is reused, its
# start is not), or the cgroup's path, or neither for the host's instance.
InstanceKey = tuple[str, "int | None", "float | None", "str | None"]


@attrs.define  # not frozen: a frozen attrs class is slow to construct, and alerts are many
class Alert:
    """One transition of one instance of one rule."""

    ts: float
    rule: str
    state: str  # pending | firing | resolved
    severity: str
    scope: str
    pid: int | None
    comm: str | None
    start: float | None
    message: str
    labels: dict[str, str]
    values: dict[str, object]
    reason: str | None = None  # for resolved: cleared | exited | reloaded
    trigger: str | None = None  # an event rule's alert: the event (exec | exit | fork)
    cgroup: str | None = None  # a cgroup rule's alert: the cgroup's path
    # for in-process consumers (incidents), never serialised:
    proc: Proc | None = attrs.field(default=None, repr=False, eq=False)
    history: list[tuple[float, dict[str, object]]] | None = attrs.field(
        default=None, repr=False, eq=False)  # firing: the values across the 'for' window
    trail: list[tuple[float, dict[str, object]]] | None = attrs.field(
        default=None, repr=False, eq=False)  # resolved: the values while it fired (.trail)
    wall: int | None = attrs.field(default=None, repr=False, eq=False)  # the rule's totals
    unix: float | None = attrs.field(default=None, repr=False, eq=False)  # set live: ts's time
    # live: its JSON as the daemon's history keeps it (json_record); never copied by evolve
    record: dict[str, Any] | None = attrs.field(default=None, init=False, repr=False,
                                                eq=False)

    @property
    def instance(self) -> InstanceKey:
        return self.rule, self.pid, self.start, self.cgroup

    def json_record(self) -> dict[str, Any]:
        """Its :meth:`to_json`, made once and shared: the daemon's history keeps it, and
        the responder adds ``incident_id`` once the incident the transition opened (or
        resolved) is stored."""
        if self.record is None:
            self.record = self.to_json()
        return self.record

    def to_json(self) -> dict[str, Any]:
        out = {
            "type": "alert", "ts": seconds(self.ts), "rule": self.rule, "state": self.state,
            "severity": self.severity, "scope": self.scope, "pid": self.pid,
            "comm": self.comm, "start": seconds(self.start), "message": self.message,
            "labels": self.labels, "values": self.values, "reason": self.reason,
        }
        if self.unix is not None:  # live: the wall clock's time (replay has only ts)
            out["time"] = rfc3339(self.unix)
        if self.trigger is not None:  # only event rules' alerts have one
            out["trigger"] = self.trigger
        if self.cgroup is not None:  # only cgroup rules' alerts have one
            out["cgroup"] = self.cgroup
        return out


@attrs.define
class Proposal:
    """An action proposed when an instance fired: on a process, or on a cgroup."""

    ts: float
    rule: str
    action: CompiledAction
    pid: int | None
    comm: str | None
    start: float | None
    instance_pid: int | None
    status: str = "proposed"  # or no_target when top() found no live process
    instance_start: float | None = None
    monitor_only: bool = False  # the rule says 'mode monitor'
    # a cgroup action's target: the v2 path under the hierarchy's root and its id (the
    # directory's inode, so that a cgroup re-created at the same path is told apart)
    cgroup: str | None = None
    cgroup_id: int | None = None
    instance_cgroup: str | None = None  # a cgroup rule's: the instance's cgroup (its path)
    unix: float | None = attrs.field(default=None, repr=False, eq=False)  # set live: ts's time

    @property
    def instance(self) -> InstanceKey:
        """The instance whose firing proposed it (as :attr:`Alert.instance` says)."""
        return self.rule, self.instance_pid, self.instance_start, self.instance_cgroup

    def to_json(self) -> dict[str, Any]:
        out = {
            "type": "action", "ts": seconds(self.ts), "rule": self.rule,
            "action": self.action.name, "pid": self.pid, "comm": self.comm,
            "start": seconds(self.start), "status": self.status,
        }
        if self.cgroup is not None:
            out["cgroup"], out["cgroup_id"] = self.cgroup, self.cgroup_id
        if self.unix is not None:
            out["time"] = rfc3339(self.unix)
        return out


HISTORY_MAX = 120  # values kept per pending instance (the first, then the latest)


class Instance:
    """One instance of a rule: its state and its timers."""

    __slots__ = ("clear_since", "cooldown_until", "due", "fired_at", "history", "hold_until",
                 "labels", "message", "since", "state", "trail")

    def __init__(self) -> None:
        self.state = INACTIVE
        self.since = 0.0
        self.fired_at: float | None = None  # when it last fired
        self.message: str | None = None  # ... and what it said then
        self.labels: Mapping[str, str] | None = None  # rendered labels of this episode
        self.clear_since: float | None = None
        self.cooldown_until = float("-inf")
        self.due: float | None = None  # when a timer (for, keep-firing, cooldown) expires
        self.history: list[tuple[float, dict[str, object]]] | None = None
        self.trail: Trail | None = None  # firing, with history on: its values since
        # restored after a restart: until then a false condition neither ends a pending
        # instance nor starts clearing a firing one (the samples it needs are not in yet)
        self.hold_until = float("-inf")


Key = Proc | Cg | None  # None: the one instance of a system rule; Cg: of a cgroup rule


@attrs.define
class RuleState:
    """The runtime state of one rule: its instances and what it reacts to."""

    rule: CompiledRule
    index: int
    instances: dict[Key, Instance] = attrs.field(factory=dict)
    true: set[Any] = attrs.field(factory=set)  # instances (Proc, Cg) whose condition holds
    effective: set[Any] = attrs.field(factory=set)  # ... and are not suppressed
    system_truth: bool = False
    timers: list[tuple[float, int, Key, Instance]] = attrs.field(factory=list)
    watch: set[Key] = attrs.field(factory=set)  # firing, with a 'clear when' to evaluate
    groups: frozenset[str] = frozenset({"meta"})  # change sets that can alter the truth
    every_tick: bool = False  # reads age_s, parent.*, ancestors or a host value that moves
    # host values it reads that change only at events (ncpu, mem_total_mb): every
    # instance is judged again at a tick where one of them differs from the last tick's
    host_reads: tuple[str, ...] = ()
    host_seen: tuple[object, ...] | None = None
    wall: int | None = None  # where the table keeps the totals within its boundary's walls
    rates: bool = False
    windows: bool = False
    win_keys: tuple[str, ...] = ()  # the window keys it reads (set by the evaluator)
    errors: int = 0
    evaluations: int = 0
    durations: Durations = attrs.field(factory=Durations)  # its part of each tick, timed
    _seq: int = 0

    @classmethod
    def of(cls, rule: CompiledRule, index: int, wall: int | None = None) -> RuleState:
        state = cls(rule, index, wall=wall)
        groups = {"meta"}
        for name in rule.inputs:
            if "(" in name:
                if name.partition("(")[0] in COUNTING_FUNCTIONS:  # a count moves for all
                    state.every_tick = True
                else:
                    state.windows = True
                continue
            if name.startswith("parent.") or name in ("ancestors", "age_s"):
                state.every_tick = True
                continue
            metric = METRICS[name]
            if metric.scope is Scope.SYSTEM:
                attr = _host_attribute(metric.code) if not metric.time_varying else None
                if attr is None:
                    state.every_tick = True
                elif attr not in state.host_reads:
                    state.host_reads += (attr,)
            elif metric.time_varying:
                state.rates = True
            groups |= change_groups(name)
        state.groups = frozenset(groups)
        return state

    def host_moved(self, host: object) -> bool:
        """Whether a host value the rule reads differs from the last time this was asked."""
        seen = tuple(getattr(host, attr) for attr in self.host_reads)
        if seen == self.host_seen:
            return False
        self.host_seen = seen
        return True

    def truth(self, key: Key) -> bool:
        return self.system_truth if key is None else key in self.effective

    def schedule(self, key: Key, inst: Instance, when: float) -> None:
        inst.due = when
        self._seq += 1
        heapq.heappush(self.timers, (when, self._seq, key, inst))

    def due(self, now: float) -> set[Key]:
        """Instances whose timer has expired by ``now`` (stale timers are skipped)."""
        out: set[Key] = set()
        timers = self.timers
        while timers and timers[0][0] <= now + EPS:
            when, _, key, inst = heapq.heappop(timers)
            if self.instances.get(key) is inst and inst.due == when:
                inst.due = None
                out.add(key)
        return out

    def counts(self) -> dict[str, int]:
        pending = sum(1 for i in self.instances.values() if i.state == PENDING)
        firing = sum(1 for i in self.instances.values() if i.state == FIRING)
        return {"pending": pending, "firing": firing}


def order(p: Key) -> tuple[int, float]:
    """Instances in a stable order: the host first, then by pid and start."""
    if p is None:
        return (-1, 0.0)
    if type(p) is Cg:
        return (p.id, 0.0)
    return (p.pid, p.start if p.start is not None else -1.0)  # type: ignore[union-attr]


_GROUP_OF_NEED = {Need.CPU: "cpu", Need.RSS: "rss", Need.FDS: "fds", Need.THREADS: "threads"}


@functools.cache
def change_groups(metric: str) -> frozenset[str]:
    """The table's change sets whose members may have a new value of ``metric``."""
    m = METRICS[metric]
    if m.scope is Scope.SUBTREE:
        return frozenset({"sub", "meta"})
    groups = {_GROUP_OF_NEED[n] for n in m.needs if n in _GROUP_OF_NEED}
    return frozenset(groups or {"meta"}) | {"meta"}


def _host_attribute(code: str) -> str | None:
    """The attribute of the host record a metric's code reads (``H.ncpu``: ``ncpu``),
    or None when the code computes something else."""
    attr = code.removeprefix("H.")
    return attr if attr != code and attr.isidentifier() else None
