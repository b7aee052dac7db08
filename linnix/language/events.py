"""The checks of event rules: ``on exec|exit|fork|connect|accept|listen``, their flood
control, and the names only an ``on exit`` rule, or a network event rule, may read.

:func:`check_event` runs for every rule, before its message and actions are
checked (an event rule's scope is ``process`` whatever it reads);
:func:`check_event_actions` after them.  Both report through the checker's
``error``/``warn`` and never raise.
"""

from __future__ import annotations

from typing import Protocol

from ..names import EXIT_NAMES, METRICS, NET_NAMES, TRIGGERS, Need, Scope, suggest
from ..templates import Template
from . import nodes as n
from .infer import Uses
from .ir import CheckedAction, EventSpec
from .messages import in_string
from .source import Span

__all__ = ["COOLDOWN_KEYS", "NET_COOLDOWN_KEYS", "check_event", "check_event_actions"]

# What a cooldown may be keyed by: fields a process has from its first event on, and in a
# network event rule the event's own fields that it carries (NET_NAMES says which).
COOLDOWN_KEYS = ("exe", "comm", "uid", "cmdline", "ppid")
NET_COOLDOWN_KEYS = ("remote_addr", "remote_port", "local_port", "family")
# Per-process values the sampler measures: none has a value yet at an exec.
_SAMPLED = frozenset({Need.CPU, Need.RSS, Need.FDS, Need.THREADS, Need.SOCKETS})
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}
_TICK_ONLY = {n.KeepFiringFor: "keep_firing_for", n.Clear: "clear when"}


class _Reporter(Protocol):
    def error(self, code: str, msg: str, span: Span, hint: str | None = None) -> None: ...
    def warn(self, code: str, msg: str, span: Span, hint: str | None = None) -> None: ...


def check_event(ck: _Reporter, rule: n.Rule, uses: Uses,
                scope_clause: n.Clause | None) -> EventSpec | None:
    """The rule's event spec (None: a rule evaluated at ticks), its errors reported."""
    on = next((c for c in rule.clauses if isinstance(c, n.On)), None)
    flood: list[n.Clause] = [c for c in rule.clauses if isinstance(c, n.MaxRate)
                             or (isinstance(c, n.Cooldown) and c.by)]
    if on is None:
        for clause in flood:
            what = "max_rate" if isinstance(clause, n.MaxRate) else "cooldown ... by"
            ck.error("E515", f"'{what}' in rule '{rule.name}', which is not an event rule",
                     clause.span, "add 'on exec', 'on exit' or 'on fork'")
        _exit_names(ck, rule, uses, None)
        _net_names(ck, uses, None)
        return None
    if on.trigger not in TRIGGERS:
        guess = suggest(on.trigger, TRIGGERS)
        tail = f" (did you mean '{guess}'?)" if guess else ""
        ck.error("E510", f"unknown event '{on.trigger}'{tail}", on.span,
                 f"one of: {', '.join(TRIGGERS)}")
        return None
    _tick_only(ck, rule)
    _scope(ck, rule, uses, scope_clause)
    _exit_names(ck, rule, uses, on.trigger)
    _net_names(ck, uses, on.trigger)
    if on.trigger == "exec":
        _sampled(ck, rule, uses)
    spec = EventSpec(on.trigger)
    for clause in rule.clauses:
        if isinstance(clause, n.Cooldown) and clause.by:
            spec = EventSpec(spec.trigger, _keys(ck, clause, on.trigger), spec.max_rate,
                             spec.per_s)
        elif isinstance(clause, n.MaxRate):
            spec = _max_rate(ck, clause, spec)
    return spec


def _tick_only(ck: _Reporter, rule: n.Rule) -> None:
    """``for``, ``clear when`` and ``keep_firing_for`` speak of time an event does not have."""
    for clause in rule.clauses:
        if isinstance(clause, n.When) and clause.for_ is not None:
            ck.error("E511", f"'for' in event rule '{rule.name}': it is judged once, at the "
                     "event", clause.for_.span, "remove 'for', or drop 'on' to judge it at ticks")
        what = _TICK_ONLY.get(type(clause))
        if what is not None:
            ck.error("E511", f"'{what}' in event rule '{rule.name}': an event rule never "
                     "resolves", clause.span)


def _scope(ck: _Reporter, rule: n.Rule, uses: Uses, clause: n.Clause | None) -> None:
    if isinstance(clause, n.ScopeClause) and clause.name != Scope.PROCESS.value:
        ck.error("E512", f"'scope {clause.name}' in event rule '{rule.name}': an event "
                 "rule's instance is the event's process", clause.span, "scope process")
        return
    needed, name, span = uses.scope_needed()
    if needed in (Scope.SUBTREE, Scope.CGROUP) and span is not None:
        kind = "a subtree metric" if needed is Scope.SUBTREE else "a cgroup metric"
        ck.error("E512", f"'{name}' is {kind}, but event rule '{rule.name}' is "
                 "judged on the event's process only", span)


def _exit_names(ck: _Reporter, rule: n.Rule, uses: Uses, trigger: str | None) -> None:
    if trigger == "exit":
        for name, span in uses.parent.items():
            if name in EXIT_NAMES:
                ck.error("E513", f"'parent.{name}': the parent has not exited", span)
        return
    where = f"'on {trigger}'" if trigger else "a rule judged at ticks"
    for name, span in uses.metrics.items():
        if name in EXIT_NAMES:
            ck.error("E513", f"'{name}' is known only in an 'on exit' rule, not in {where}",
                     span, "write the rule with 'on exit'")
    for name, span in uses.parent.items():
        if name in EXIT_NAMES:
            ck.error("E513", f"'parent.{name}': the parent has not exited", span)


def _net_names(ck: _Reporter, uses: Uses, trigger: str | None) -> None:
    """The names of a network event only in a rule judged at an event that has them."""
    for name, span in uses.metrics.items():
        events = NET_NAMES.get(name)
        if events is not None and trigger not in events:
            where = f"'on {trigger}'" if trigger else "a rule judged at ticks"
            ck.error("E516", f"'{name}' is known only in an 'on {'|'.join(events)}' rule, "
                     f"not in {where}", span, f"write the rule with 'on {events[0]}'")
    for name, span in uses.parent.items():
        if name in NET_NAMES:
            ck.error("E516", f"'parent.{name}': the event is the process's own, not its "
                     "parent's", span)


def _sampled(ck: _Reporter, rule: n.Rule, uses: Uses) -> None:
    for name, span in uses.metrics.items():
        if METRICS[name].needs & _SAMPLED:
            ck.warn("W110", f"'{name}' has no value yet at an exec: 'on exec' rule "
                    f"'{rule.name}' reads it before the process was ever sampled", span,
                    "judge it at ticks (drop 'on exec'), or at 'on exit'")


def _keys(ck: _Reporter, clause: n.Cooldown, trigger: str) -> tuple[str, ...]:
    allowed = (*COOLDOWN_KEYS, *(k for k in NET_COOLDOWN_KEYS if trigger in NET_NAMES[k]))
    keys: list[str] = []
    for key in clause.by:
        if key in NET_COOLDOWN_KEYS and key not in allowed:
            events = "|".join(NET_NAMES[key])
            ck.error("E515", f"a cooldown keyed by '{key}' needs an event that has it: "
                     f"'on {events}', not 'on {trigger}'", clause.span,
                     f"one or more of: {', '.join(allowed)}")
        elif key not in allowed:
            guess = suggest(key, allowed)
            tail = f" (did you mean '{guess}'?)" if guess else ""
            ck.error("E515", f"a cooldown cannot be keyed by '{key}'{tail}", clause.span,
                     f"one or more of: {', '.join(allowed)}")
        elif key in keys:
            ck.error("E515", f"'{key}' given twice in the cooldown's key", clause.span)
        else:
            keys.append(key)
    return tuple(keys)


def _max_rate(ck: _Reporter, clause: n.MaxRate, spec: EventSpec) -> EventSpec:
    per = _PER.get(clause.per)
    count = clause.rate
    if clause.op != "/" or per is None or count != int(count) or count < 1:
        ck.error("E515", "max_rate takes a whole number of alerts per s, m or h",
                 clause.span, "e.g. 'max_rate 20/s' or 'max_rate 100/m'")
        return spec
    return EventSpec(spec.trigger, spec.cooldown_by, int(count), per)


def check_event_actions(ck: _Reporter, rule: n.Rule, spec: EventSpec | None,
                        actions: tuple[CheckedAction | None, ...],
                        message: Template | None, clause: n.Clause | None) -> None:
    """An 'on exit' rule's action cannot target the process that is gone; a message reads
    the names of an exit only in an 'on exit' rule."""
    trigger = spec.trigger if spec is not None else None
    if message is not None and isinstance(clause, n.Message):
        _message_names(ck, message, clause, trigger)
    if trigger != "exit":
        return
    for a, written in zip(actions, [c for c in rule.clauses if isinstance(c, n.Action)],
                          strict=True):
        if a is not None and a.targets_process and a.target is None:
            ck.error("E514", f"'{a.name}' in 'on exit' rule '{rule.name}' would act on the "
                     "process that has just exited", written.span,
                     "name a live target, e.g. target = top(cpu_pct)")


def _message_names(ck: _Reporter, message: Template, clause: n.Message,
                   trigger: str | None) -> None:
    """A message reads the names of an event only in a rule judged at such an event."""
    where = f"'on {trigger}'" if trigger else "a rule judged at ticks"
    for part in message.parts:
        events = NET_NAMES.get(part.name) if part.name is not None else None
        if part.name is not None and events is not None and trigger not in events:
            ck.error("E516", f"'{part.name}' is known only in an 'on {'|'.join(events)}' "
                     f"rule, not in {where}", in_string(clause.template, part.offset,
                                                        len(part.name)))
    if trigger != "exit":
        for part in message.parts:
            if part.name in EXIT_NAMES:
                where = f"'on {trigger}'" if trigger else "a rule judged at ticks"
                ck.error("E513", f"'{part.name}' is known only in an 'on exit' rule, not in "
                         f"{where}", in_string(clause.template, part.offset,
                                                  len(part.name)))

