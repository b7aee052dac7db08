"""Checks of the text a rule sends: its message and its labels, with their placeholders.

A placeholder names a value of the rule's scope (``{cpu_pct:.0f}``), a field of
an ancestor (``{parent.comm}``, ``{parent.parent.pid}``), one of
:data:`~linnix.names.TEMPLATE_EXTRAS` (``{rule}``), or, in the message of a rule
whose action targets a process, the process the action chose
(``{target.pid}``, ``{target.comm}``).

A label is part of what identifies an alert in Alertmanager, so it may only
name what a process *is* (:data:`LABEL_NAMES`, and the same fields of an
ancestor): a measured value would change while the alert lasts and make each
new value another alert (E309).  A label rendered per process (``{pid}``)
makes one alert group per process: allowed, with a warning (W111).  Labels
are rendered when an instance's episode begins and kept until it resolves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..names import (
    ACTIONS,
    METRICS,
    TEMPLATE_EXTRAS,
    Scope,
    Type,
    is_ancestry,
    readable,
    suggest,
)
from ..templates import Template, TemplateError, parse_template
from . import nodes as n
from .infer import kind_of
from .placeholders import check_call
from .source import Span

if TYPE_CHECKING:
    from .checker import _Checker
    from .env import Env

__all__ = ["LABEL_NAMES", "TARGET_FIELDS", "check_labels", "check_message", "in_string",
           "targets_process"]

# What an action's target offers a message: the process it chose.
TARGET_FIELDS = ("pid", "comm")
# What a label may name: what a process is, which stays the same while an alert lasts.
LABEL_NAMES = ("rule", "severity", "scope", "comm", "exe", "uid", "user", "cgroup", "unit",
               "container", "pid", "ppid", "cmdline")
# ... of which these are different for every process: one alert group each.
_PER_PROCESS = ("pid", "ppid", "cmdline")


def targets_process(rule: n.Rule) -> bool:
    """Whether an action of the rule targets a process (its message may read target.*)."""
    return any(isinstance(c, n.Action) and c.name in ACTIONS and ACTIONS[c.name].targets_process
               for c in rule.clauses)


def check_message(ck: _Checker, clause: n.Clause | None, scope: Scope, targeted: bool,
                  env: Env) -> tuple[Template | None, tuple[tuple[str, n.Call], ...]]:
    """The message's template, or None (with the errors reported); and its function
    calls (``{crashes(exe, 5m)}``) by placeholder name."""
    if not isinstance(clause, n.Message):
        return None, ()
    literal = clause.template
    key = (literal.value, scope, targeted)
    known = ck.messages.get(key)
    if known is not None:  # the same text in the same scope: the same (valid) template
        return known, ()
    template = _parse(ck, literal)
    if template is None:
        return None, ()
    reported = len(ck.diags)
    calls: dict[str, n.Call] = {}
    for part in template.parts:
        if part.name is not None and "(" in part.name:  # a call reads lets: not cached
            where = in_string(literal, part.offset, len(part.name))
            call = check_call(ck.infer, part.name, part.spec, where, env, scope,
                              ck.diags.append)
            calls.update({part.name: call} if call is not None else {})
        elif part.name is not None:
            _placeholder(ck, literal, part.name, part.spec, part.offset, scope, targeted)
    if len(ck.diags) == reported and not calls:
        ck.messages[key] = template
    return template, tuple(calls.items())


def check_labels(ck: _Checker, clause: n.Clause | None, scope: Scope
                 ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, Template], ...]]:
    """The labels as written (key, text) and those with placeholders as templates."""
    out: dict[str, str] = {}
    templates: list[tuple[str, Template]] = []
    for label in getattr(clause, "items", ()):
        if label.key in out:
            ck.error("E506", f"label '{label.key}' given twice", label.span)
        template = _parse(ck, label.value)
        if template is None:
            continue
        out[label.key] = label.value.value
        if template.names:
            if _label_names(ck, label, template, scope):
                templates.append((label.key, template))
        else:  # plain text ("{{" is a brace, as in a message)
            out[label.key] = template.render({})
    return tuple(out.items()), tuple(templates)


def _parse(ck: _Checker, literal: n.String) -> Template | None:
    try:
        return parse_template(literal.value)
    except TemplateError as err:
        ck.error("E308", str(err), in_string(literal, err.offset, err.length))
        return None


def _label_names(ck: _Checker, label: n.Label, template: Template, scope: Scope) -> bool:
    reported = len(ck.diags)
    for part in template.parts:
        name = part.name
        if name is None:
            continue
        where = in_string(label.value, part.offset, len(name))
        field = name.rpartition(".")[2] if is_ancestry(name.rpartition(".")[0]) else name
        if field not in LABEL_NAMES or (field != name and field not in METRICS):
            ck.error("E309", f"'{name}' in label '{label.key}': a label may name only what a "
                     f"process is ({', '.join(LABEL_NAMES)}, and parent.NAME of those)",
                     where, "a label that changes while the alert lasts makes each value "
                     "another alert; put measured values in the message")
            continue
        _placeholder(ck, label.value, name, part.spec, part.offset, scope, False)
        if field in _PER_PROCESS:
            ck.warn("W111", f"label '{label.key}' takes '{name}': one Alertmanager alert group "
                    "per process", where,
                    "every alert of a process rule is already labelled with its pid and comm")
    return not any(d.is_error for d in ck.diags[reported:])


def in_string(literal: n.String, offset: int, length: int) -> Span:
    """Where a placeholder is in its string (the whole string when escapes shift it)."""
    span = literal.span
    if "\\" in span.text:
        return span
    start = span.start + 1 + offset
    return span.source.span(start, start + length)


def _placeholder(ck: _Checker, literal: n.String, name: str, spec: str, offset: int,
                 scope: Scope, targeted: bool) -> None:
    where = in_string(literal, offset, len(name))
    value_type = _type_of(ck, name, where, scope, targeted)
    if value_type is None:
        return
    # A number is an int or a float at run time (pid, fds / cpu_pct): a
    # specification either accepts is valid (the template rounds a float
    # for an integer specification such as 'd').  A list renders as a string.
    samples: tuple[object, ...] = {Type.NUM: (0, 0.0)}.get(value_type, ("",))
    problem: Exception | None = None
    for sample in samples:
        try:
            format(sample, spec)
        except (ValueError, TypeError) as err:
            problem = err
        else:
            return
    ck.error("E308", f"invalid format '{spec}' for '{name}': {problem}", where)


def _type_of(ck: _Checker, name: str, where: Span, scope: Scope, targeted: bool) -> Type | None:
    """The type of a placeholder's value, or None after reporting why it has none."""
    if name in TEMPLATE_EXTRAS:
        return TEMPLATE_EXTRAS[name]
    owner, _, field = name.rpartition(".")
    if owner == "target":
        return _target_field(ck, name, field, where, targeted)
    if owner and not is_ancestry(owner):
        ck.error("E208", f"unknown name '{name}' in message", where,
                 "'parent.NAME' (or 'parent.parent.NAME', ...) names a field of an ancestor")
        return None
    metric = METRICS.get(field if owner else name)
    if metric is None or (owner and metric.scope is not Scope.PROCESS):
        names = [*METRICS, *TEMPLATE_EXTRAS]
        guess = suggest(name, names) if not owner else (
            suggest(field, [m for m in METRICS if METRICS[m].scope is Scope.PROCESS]))
        tail = f" (did you mean '{f'{owner}.' if owner else ''}{guess}'?)" if guess else ""
        ck.error("E208", f"unknown name '{name}' in message{tail}", where)
        return None
    if not readable(scope, name if owner else metric.name):
        ck.error("E401", f"'{name}' is {kind_of(name)}, but this rule's scope is "
                 f"{scope.value}", where)
        return None
    return metric.type


def _target_field(ck: _Checker, name: str, field: str, where: Span,
                  targeted: bool) -> Type | None:
    if not targeted:
        ck.error("E208", f"'{name}' in a message: the rule has no action that targets a "
                 "process", where, "target.pid and target.comm name the process an action "
                 "such as kill chose")
        return None
    if field not in TARGET_FIELDS:
        ck.error("E208", f"unknown name '{name}' in message (a target offers "
                 f"{' and '.join(f'target.{f}' for f in TARGET_FIELDS)})", where)
        return None
    return METRICS[field].type
