"""Event rules (``on exec|exit|fork|connect|accept|listen``): judged once at each matching
event, at its own time.

:class:`EventRules` is called by the core for every event of a kind some
active event rule waits for.  An exec or a fork is judged after the table
applied it (the new program's fields; the child, whose ``parent`` is the
forker); an exit before, so that the process still has its last known values
and its place in the tree, seen through :class:`Ended` with what the exit
event says.  A network event (connect, accept, listen) is judged after the
table applied it (its rates count it), seen through :class:`Netted` with the
event's address fields.  A match is one alert, ``firing``, with its ``trigger``; there is
no pending and no resolved.  Only the rules whose pre-filter the event passes
(:mod:`.eventindex`) run their condition; every rule still counts the event
among its evaluations.

Flood control, per rule: a cooldown keyed by the rule's ``cooldown ... by``
fields (by default ``exe``, or ``comm`` when the exe is not known), and
``max_rate`` alerts in any span of ``max_rate_per_s`` seconds.  A match that
either stops is counted (``suppressed``), never lost silently.  The cooldown's key
table holds at most :data:`KEYS_MAX` keys: a process picks its own name, so
past that the key that fired longest ago goes (``evicted``, counted when its
cooldown was still running).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from ..plan import CompiledRule, Plan
from . import trace as t
from .eventindex import Index
from .proctable import Proc, ProcTable
from .rulestate import EPS, Alert, Proposal

__all__ = ["KEYS_MAX", "Ended", "EventRules", "EventState", "Netted"]

KEYS_MAX = 10_000  # cooldown keys kept per rule
Applier = Callable[[t.Event, list[Alert | Proposal]], None]
_KINDS: dict[str | None, type] = {"exec": t.Exec, "exit": t.Exit, "fork": t.Fork,
                                  "connect": t.Connect, "accept": t.Accept,
                                  "listen": t.Listen}


class Ended:
    """A process at its exit: its own fields, and those of the exit event."""

    __slots__ = ("crashed", "exit_code", "exit_signal", "failed", "lifetime_s", "proc")

    def __init__(self, proc: Proc, ev: t.Exit) -> None:
        self.proc = proc
        self.exit_code = ev.code if ev.signal is None else None
        self.exit_signal = ev.signal_name()
        self.crashed = ev.crashed()  # linnix.signals: a core-dump signal the program caused
        self.failed = self.crashed or (ev.code is not None and ev.code != 0)
        # to the microsecond, as trace times are: 14.01 - 14.0 is 0.01, not 0.00999...
        self.lifetime_s = None if proc.start is None else round(max(0.0, ev.ts - proc.start), 6)

    def __getattr__(self, name: str) -> Any:  # every other field is the process's own
        return getattr(self.proc, name)


class Netted:
    """A process at a network event: its own fields, and those of the event (a field the
    event does not carry has no value)."""

    __slots__ = ("family", "local_port", "proc", "remote_addr", "remote_port")

    def __init__(self, proc: Proc, ev: t.Connect | t.Accept | t.Listen) -> None:
        self.proc = proc
        self.family = ev.family
        self.remote_addr = None if type(ev) is t.Listen else ev.remote_addr  # type: ignore[union-attr]
        self.remote_port = None if type(ev) is t.Listen else ev.remote_port  # type: ignore[union-attr]
        self.local_port = None if type(ev) is t.Connect else ev.local_port  # type: ignore[union-attr]

    def __getattr__(self, name: str) -> Any:  # every other field is the process's own
        return getattr(self.proc, name)


class EventState:
    """One event rule: its counters and its flood control."""

    def __init__(self, rule: CompiledRule, seen: dict[type, int]) -> None:
        self.rule = rule
        self.matches = 0  # alerts emitted
        self.suppressed: collections.Counter[str] = collections.Counter()  # by reason
        self.evicted = 0  # cooldown keys dropped while their cooldown still ran
        self.errors = 0
        self.judged = 0  # conditions evaluated: its pre-filter let the event through
        # events of its kind judged since it was loaded, counted by kind for all rules
        # at once (a rule its pre-filter passes over costs nothing)
        self._seen = seen
        self._kind = _KINDS[rule.trigger]
        self._base = seen[self._kind]
        self.last: collections.OrderedDict[tuple[object, ...], float] = \
            collections.OrderedDict()  # cooldown key -> when it last fired, oldest first
        self.recent: collections.deque[float] = collections.deque()  # alerts, for max_rate

    @property
    def evaluations(self) -> int:
        """The events it was judged at: every event of its kind with a known process,
        whether or not its pre-filter let the event on to its condition."""
        return self._seen[self._kind] - self._base

    def key(self, p: Any) -> tuple[object, ...]:
        by = self.rule.cooldown_by
        if by:
            return tuple(getattr(p, field) for field in by)
        return ("exe", p.exe) if p.exe is not None else ("comm", p.comm)

    def admit(self, p: Any, now: float) -> bool:
        """Whether a match at ``now`` is alerted (else it is counted as suppressed)."""
        rule = self.rule
        key: tuple[object, ...] | None = None
        if rule.cooldown_s > 0:
            key = self.key(p)
            last = self.last.get(key)
            if last is not None and now < last + rule.cooldown_s - EPS:
                self.suppressed["cooldown"] += 1
                return False
        recent = self.recent
        while recent and recent[0] <= now - rule.max_rate_per_s + EPS:
            recent.popleft()
        if len(recent) >= rule.max_rate:
            self.suppressed["max_rate"] += 1
            return False
        recent.append(now)
        if key is not None:
            self._remember(key, now)
        return True

    def _remember(self, key: tuple[object, ...], now: float) -> None:
        last = self.last
        last.pop(key, None)
        last[key] = now
        if len(last) <= KEYS_MAX:
            return
        cooldown = self.rule.cooldown_s
        while len(last) > KEYS_MAX:
            _, when = last.popitem(last=False)
            if now < when + cooldown - EPS:  # forgotten while it still held
                self.evicted += 1


class EventRules:
    """The active event rules of a plan, by the event kind they wait for."""

    def __init__(self, plan: Plan, seen: dict[type, int] | None = None) -> None:
        # events judged, by kind: every rule's evaluations (kept across reloads); a plain
        # dict, which the interpreter indexes faster than a Counter
        self.seen = dict.fromkeys(_KINDS.values(), 0) if seen is None else seen
        self.states = [EventState(r, self.seen) for r in plan.evented]
        self._bound: tuple[ProcTable, list[Callable[[Any], None]], dict[type, Applier]] | \
            None = None
        self._index()

    def _index(self) -> None:
        self.by_kind: dict[type, list[EventState]] = {}
        for state in self.states:
            self.by_kind.setdefault(_KINDS[state.rule.trigger], []).append(state)
        self.index = {kind: Index(states, [s.rule.prefilter for s in states])
                      for kind, states in self.by_kind.items()}
        self._bound = None

    def replace_plan(self, plan: Plan) -> EventRules:
        """The rules of ``plan``; one whose definition is unchanged keeps its counters and
        its cooldowns."""
        fresh = EventRules(plan, self.seen)
        old = {s.rule.name: s for s in self.states}
        for i, state in enumerate(fresh.states):
            prev = old.get(state.rule.name)
            if prev is not None and _same(prev.rule, state.rule):
                prev.rule = state.rule
                fresh.states[i] = prev
        fresh._index()
        return fresh

    def apply(self, ev: t.Event, table: ProcTable, out: list[Alert | Proposal]) -> None:
        """Apply ``ev`` to the table, judging the rules waiting for it at its time."""
        apply = self.appliers(table).get(type(ev))
        if apply is None:
            table.handlers[type(ev)](ev)
        else:
            apply(ev, out)

    def appliers(self, table: ProcTable) -> dict[type, Applier]:
        """Per kind of event some rule waits for, what applies one to ``table`` and judges
        those rules (made again for a new table, or when a handler changes)."""
        handlers = [table.handlers[kind] for kind in self.index]  # the tally may wrap them
        if self._bound is None or self._bound[0] is not table or self._bound[1] != handlers:
            self._bound = bound = (table, handlers, {kind: self._applier(kind, index, table)
                                                     for kind, index in self.index.items()})
            return bound[2]
        return self._bound[2]

    def _applier(self, kind: type, index: Index[EventState], table: ProcTable) -> Applier:
        if kind is t.Exit:
            return lambda ev, out: self._exit(ev, index, table, out)  # type: ignore[arg-type]
        if kind in t.NET_TYPES:
            return lambda ev, out: self._net(ev, index, table, out)  # type: ignore[arg-type]
        scope = {**index.scope, "_handle": table.handlers[kind], "_get": table.procs.get,
                 "_seen": self.seen, "_kind": kind, "h": table.host, "_every": index.every,
                 "_found": index.cache.get, "_of": index.of, "_fire": self._fire,
                 "_table": table, "Exception": Exception}
        exec(_APPLY.format(mask=index.code), scope)  # the index's code and our own
        return scope["_apply"]  # type: ignore[return-value]

    def _exit(self, ev: t.Exit, index: Index[EventState], table: ProcTable,
              out: list[Alert | Proposal]) -> None:
        p = table.procs.get(ev.pid)
        if p is not None:  # an exit of a process never seen has nothing to judge
            if table.host.tally is not None:  # crashes(exe, W) at this exit counts it
                table.host.tally.observe(ev, p)
            self.seen[t.Exit] += 1
            seen = Ended(p, ev)
            states = index.candidates(seen, table.host, ev.ts)
            if states:
                self._judge(states, seen, p, table, ev.ts, out)
        table.handlers[t.Exit](ev)

    def _net(self, ev: t.Connect | t.Accept | t.Listen, index: Index[EventState],
             table: ProcTable, out: list[Alert | Proposal]) -> None:
        """A network event: applied to the table (so that the rates count it), then judged
        on the process with the event's fields."""
        table.handlers[type(ev)](ev)
        p = table.procs.get(ev.pid)
        if p is None:  # an event of a process never seen has nothing to judge
            return
        self.seen[type(ev)] += 1
        seen = Netted(p, ev)
        states = index.candidates(seen, table.host, ev.ts)
        if states:
            self._judge(states, seen, p, table, ev.ts, out)

    def _judge(self, states: tuple[EventState, ...], seen: Any, p: Proc, table: ProcTable,
               now: float, out: list[Alert | Proposal]) -> None:
        host = table.host
        for state in states:
            state.judged += 1
            rule = state.rule
            try:
                held = rule.cond(seen, host, now)
            except Exception:  # a bug in generated code must not stop the engine
                state.errors += 1
                continue
            if held:
                self._fire(state, seen, p, table, now, out)

    @staticmethod
    def _fire(state: EventState, seen: Any, p: Proc, table: ProcTable, now: float,
              out: list[Alert | Proposal]) -> None:
        """A rule's condition held: its alert and proposals, unless flood control stops it."""
        if state.admit(seen, now):
            state.matches += 1
            rule = state.rule
            out.append(_alert(state, seen, p, table.host, now))
            for action in rule.targets:
                out.append(_propose(rule, action, table, p, now))


# An exec or a fork: applied to the table, then the rules its pre-filters let through
# judged.  One function per kind, with the index's mask inline: at the maximum exec rate
# each call and each lookup of a name saved is a share of the rules' cost per exec.
_APPLY = """
def _apply(ev, out):
    _handle(ev)
    p = _get(ev.pid)
    if p is None:
        return
    _seen[_kind] += 1
    now = ev.ts
    try:
        mask = {mask}
    except Exception:  # a field that cannot be read: the conditions will say
        mask = _every
    if mask:
        states = _found(mask)
        if states is None:
            states = _of(mask)
        for state in states:  # as _judge does
            state.judged += 1
            try:
                held = state.rule.cond(p, h, now)
            except Exception:  # a bug in generated code must not stop the engine
                state.errors += 1
                continue
            if held:
                _fire(state, p, p, _table, now, out)
"""


def _alert(state: EventState, seen: Any, p: Proc, host: Any, now: float) -> Alert:
    rule = state.rule
    try:
        values = rule.values(seen, host, now)
    except Exception:
        state.errors += 1
        values = {}
    context = {**values, "rule": rule.name, "severity": rule.severity,
               "scope": rule.scope.value, "state": "firing"}
    return Alert(ts=now, rule=rule.name, state="firing", severity=rule.severity,
                 scope=rule.scope.value, pid=p.pid, comm=p.comm, start=p.start,
                 message=rule.message.render(context), labels=rule.labels,  # type: ignore[arg-type]
                 values={k: values.get(k) for k in rule.inputs}, trigger=rule.trigger,
                 proc=p)


def _propose(rule: CompiledRule, action: Any, table: ProcTable, p: Proc,
             now: float) -> Proposal:
    """An action of an 'on exec' or 'on fork' rule acts on the event's process, or on the
    target it names (an 'on exit' rule may only name one: the checker sees to it)."""
    target: Proc | None = p
    if action.read is not None:
        target = table.top(action.read, now, action.exclude)
    if target is None:
        return Proposal(now, rule.name, action, None, None, None, p.pid, "no_target",
                        p.start, rule.mode_monitor)
    return Proposal(now, rule.name, action, target.pid, target.comm, target.start, p.pid,
                    "proposed", p.start, rule.mode_monitor)


def _same(a: CompiledRule, b: CompiledRule) -> bool:
    """Whether two compilations of an event rule judge and limit identically."""
    keys = ("trigger", "cond_text", "cooldown_s", "cooldown_by", "max_rate", "max_rate_per_s",
            "prefilter")
    return all(getattr(a, k) == getattr(b, k) for k in keys)
