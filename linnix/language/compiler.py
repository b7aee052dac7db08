"""Compile optimised rules into a :class:`~linnix.plan.Plan` of generated Python.

Each ``.lnx`` file becomes one generated module of lambdas, one per condition,
each placed on the same line number as the clause it implements, so a
traceback from a condition names the ``.lnx`` line (``<lnx rules/cpu.lnx>``,
line 7) and shows the generated line with the original clause in a comment.
The source is deterministic, registered in :mod:`linecache` and dumpable via
``Plan.generated``.

This module decides what is generated for each rule (its conditions, the values
its message and the engine read, what it needs collected) and assembles the
compiled rules into the plan; the Python of each expression, the generated
module and how it is compiled are :mod:`linnix.language.codegen`'s.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Iterable
from types import CodeType, FunctionType
from typing import Any

from ..names import (
    ACTIONS,
    COUNTING_FUNCTIONS,
    METRICS,
    NET_TRIGGERS,
    WINDOW_FUNCTIONS,
    Need,
    Scope,
    field_of,
    is_ancestry,
)
from ..plan import (
    Boundary,
    CompiledAction,
    CompiledRule,
    Condition,
    CountTerm,
    EventCounter,
    Getter,
    Plan,
    WindowMetric,
)
from ..templates import Part, Template
from . import nodes as n
from .codegen import BOUNDED, ExprGen, GeneratedModule, access, exec_in_chunks, window_key
from .ir import CheckedAction, CheckedRule
from .prefilter import prefilter
from .printer import to_text
from .source import Span

__all__ = ["access", "boundary_text", "compile_rules", "default_message", "getter",
           "module_name"]


def module_name(path: str) -> str:
    """The pseudo file name generated code for ``path`` is registered under."""
    return f"<lnx {path}>"


# ---- inputs and requirements ------------------------------------------------------

def _inputs(exprs: Iterable[n.Expr]) -> dict[str, n.Expr]:
    """Every name, parent field and window term the expressions read, in order."""
    found: dict[str, n.Expr] = {}
    stack = list(exprs)[::-1]
    while stack:
        e = stack.pop()
        kind = type(e)
        if kind is n.Name:
            if e.id not in found:  # type: ignore[union-attr]
                found[e.id] = e  # type: ignore[union-attr]
        elif kind is n.Attr:
            key = f"{e.obj}.{e.attr}"  # type: ignore[union-attr]
            if key not in found:
                found[key] = e
        elif kind is n.Call:
            found.setdefault(to_text(e), e)
        else:
            parts = _PARTS.get(kind)
            kids = parts(e) if parts is not None else n.children(e)
            if kids:
                stack.extend(reversed(kids))  # type: ignore[arg-type]
    return found


def _pair(e: Any) -> tuple[n.Expr, ...]:
    return (e.left, e.right)


# the sub-expressions of each kind of node, in the order nodes.children gives them
# (leaves have none; the pattern of 'matches' and 'glob' is a string)
_PARTS: dict[type, Callable[[Any], tuple[object, ...]]] = {
    n.Compare: _pair, n.In: _pair, n.StrOp: _pair, n.Arith: _pair,
    n.Matches: lambda e: (e.left, e.pattern), n.Glob: lambda e: (e.left, e.pattern),
    n.InCidr: lambda e: (e.left, e.cidr), n.IsPrivate: lambda e: (e.left,),
    n.Not: lambda e: (e.operand,), n.Neg: lambda e: (e.operand,),
    n.And: lambda e: e.items, n.Or: lambda e: e.items, n.List: lambda e: e.items,
    n.Number: lambda e: (), n.Quantity: lambda e: (), n.String: lambda e: (),
    n.Bool: lambda e: (), n.Signal: lambda e: (),
}


_NETWORK = frozenset({Need.NETWORK})  # what a network event rule needs, whatever it reads


def _needs(names: Iterable[str]) -> frozenset[Need]:
    needs: set[Need] = set()
    for name in names:
        metric = METRICS.get(field_of(name))
        if metric is not None:
            needs.update(metric.needs)
    return frozenset(needs)


def default_message(rule: CheckedRule, inputs: Iterable[str]) -> Template:
    """``comm[pid]: name=value, ...`` over everything the condition reads."""
    names = tuple(inputs)
    key = (rule.scope.value, names)
    template = _DEFAULT_MESSAGES.get(key)
    if template is None:
        template = _DEFAULT_MESSAGES[key] = _default_message(rule, names)
        if len(_DEFAULT_MESSAGES) > _MAX_DEFAULT_MESSAGES:
            _DEFAULT_MESSAGES.pop(next(iter(_DEFAULT_MESSAGES)))
    return template


# Default messages already made (a Template is immutable, so rules that read the
# same names in the same scope share one), oldest first.
_DEFAULT_MESSAGES: dict[tuple[str, tuple[str, ...]], Template] = {}
_MAX_DEFAULT_MESSAGES = 4096


def _default_message(rule: CheckedRule, inputs: Iterable[str]) -> Template:
    parts: list[Part] = []
    text = ""
    if rule.scope is Scope.CGROUP:  # its instance is a cgroup: named by its path
        parts.append(Part("", "cgroup", "", 0))
        text = ": "
    elif rule.scope is not Scope.SYSTEM:
        parts += [Part("", "comm", "", 0), Part("[", "pid", "", 0)]
        text = "]: "
    for name in inputs:
        metric = METRICS.get(field_of(name))
        numeric = metric is None or metric.numeric  # window terms are numbers
        parts.append(Part(text + f"{name}=", name, ".6g" if numeric else "", 0))
        text = ", "
    if not parts:
        parts.append(Part("", "rule", "", 0))
    source = "".join(f"{p.text}{{{p.name}{':' + p.spec if p.spec else ''}}}" for p in parts)
    return Template(source, tuple(parts))


# ---- compilation ------------------------------------------------------------------

def _lambda(gen: ExprGen, expr: n.Expr) -> str:
    gen.temps = 0
    code, _ = gen.gen(expr)
    return f"lambda p, h, now: {code}"


def _values_lambda(gen: ExprGen, inputs: dict[str, n.Expr], extra: Iterable[str],
                   calls: dict[str, n.Expr], span: Span) -> str:
    """What an alert shows: the inputs, and the other values its message and labels
    name (``parent.parent.comm`` too, and ``{f(...)}`` as the message writes it;
    ``target.*`` is the evaluator's)."""
    gen.temps = 0
    items = [f"{name!r}: {gen.gen(expr)[0]}" for name, expr in inputs.items()]
    seen = set(inputs)
    for name in extra:
        if name in seen:
            continue
        seen.add(name)
        if name in calls:  # {f(...)}: as the message writes it
            items.append(f"{name!r}: {gen.gen(calls[name])[0]}")
            continue
        owner, _, field = name.rpartition(".")
        if owner == "" and name in METRICS:
            items.append(f"{name!r}: {gen.read(name)}")
        elif is_ancestry(owner) and field in METRICS:
            items.append(f"{name!r}: {gen.gen(n.Attr(owner, field, span))[0]}")
    return "lambda p, h, now: {" + ", ".join(items) + "}"


def _walls(module: GeneratedModule, gen: ExprGen, rule: CheckedRule, walls: dict[str, int],
           names: dict[str, str], path: str) -> int | None:
    """Generate the rule's boundary condition; the index of its totals in the table."""
    text = boundary_text(rule)
    if text is None:
        return None
    names["wall"] = f"wall_{rule.name}"
    line = rule.boundary[0].span.line
    walls_expr = rule.boundary[0] if len(rule.boundary) == 1 else n.Or(
        rule.boundary, rule.boundary[0].span)
    module.put_lambda(line, names["wall"], _lambda(gen, walls_expr),
                      f"{path}:{line}: boundary {_one_line(text)}")
    return walls[text]


def boundary_text(rule: CheckedRule) -> str | None:
    """The rule's walls as one condition: the same text for the same walls, in any order."""
    if not rule.boundary:
        return None
    texts = sorted({to_text(b) for b in rule.boundary})
    return texts[0] if len(texts) == 1 else " or ".join(f"({t})" for t in texts)


def _compile_file(path: str, rules: list[CheckedRule], walls: dict[str, int],
                  register: bool = True) -> tuple[list[CompiledRule], str, _Counting]:
    module = GeneratedModule(path)
    gen = ExprGen(module)
    slots: list[tuple[CheckedRule, dict[str, str], dict[str, n.Expr], Template,
                      tuple[str, ...], int, str, str | None]] = []
    for rule in rules:
        names = {"cond": f"cond_{rule.name}", "values": f"values_{rule.name}"}
        gen.bounded = _walls(module, gen, rule, walls, names, path)
        line = rule.when.span.line
        cond_text = to_text(rule.when)
        module.put_lambda(line, names["cond"], _lambda(gen, rule.when),
                          f"{path}:{line}: {_one_line(cond_text)}")
        clear_text = None
        if rule.clear is not None:
            names["clear"] = f"clear_{rule.name}"
            cl = rule.clear.span.line
            clear_text = to_text(rule.clear)
            module.put_lambda(cl, names["clear"], _lambda(gen, rule.clear),
                              f"{path}:{cl}: {_one_line(clear_text)}")
        inputs = _inputs([rule.when, *([rule.clear] if rule.clear is not None else [])])
        message = rule.message or default_message(rule, inputs)
        message_names = message.names
        label_names = tuple(name for _, t in rule.label_templates for name in t.names)
        values = _values_lambda(gen, inputs, (*message_names, *label_names),
                                dict(rule.message_calls), rule.span)
        gen.bounded = None
        rule_line = rule.span.line
        module.put_lambda(rule_line, names["values"], values)
        for i, action in enumerate(rule.actions):
            if action.target_unless is not None:
                names[f"target{i}"] = f"target_{rule.name}_{i}"
                al = action.span.line
                module.put_lambda(al, names[f"target{i}"], _lambda(gen, action.target_unless),
                                  f"{path}:{al}: {_one_line(to_text(action.target_unless))}")
        slots.append((rule, names, inputs, message, message_names, rule_line, cond_text,
                      clear_text))
    source = module.source()
    filename = module_name(path)
    if register:
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = dict(module.globals)
    exec_in_chunks(module.compiled_source() if module.copies else source, filename,
                    namespace)
    module.make_copies(namespace)
    out = [_assemble(rule, names, inputs, message, message_names, line, namespace, cond_text,
                     clear_text)
           for rule, names, inputs, message, message_names, line, cond_text, clear_text
           in slots]
    counting = _counting([{**inputs, **_message_inputs(rule)}
                          for rule, _, inputs, *_ in slots if rule.enabled],
                         module.counts, namespace)
    return out, source, counting


def _assemble(rule: CheckedRule, names: dict[str, str], inputs: dict[str, n.Expr],
              message: Template, message_names: tuple[str, ...], line: int,
              ns: dict[str, object], cond_text: str, clear_text: str | None) -> CompiledRule:
    excluding = [a.target_unless for a in rule.actions if a.target_unless is not None]
    read = [*inputs, *message_names, *[a.target for a in rule.actions if a.target],
            *(name for _, t in rule.label_templates for name in t.names),
            *(_inputs(excluding) if excluding else ()), *_inputs(rule.boundary)]
    every = {**inputs, **_message_inputs(rule)}
    calls = [e for e in every.values() if _called(e, WINDOW_FUNCTIONS)]
    windows = tuple(sorted([_window_of(e) for e in calls])) if calls else ()  # type: ignore[arg-type]
    # a window, or an event counter, moves as time passes
    time_varying = any(_called(e, WINDOW_FUNCTIONS) or (_called(e, COUNTING_FUNCTIONS)
                       and e.func != "count") for e in inputs.values())  # type: ignore[union-attr]
    read += [name for e in every.values() if _called(e, ("count",))  # what count(EXPR) needs
             for name in _inputs([e.args[0]])]  # type: ignore[union-attr]
    if not time_varying:
        for e in inputs.values():
            kind = type(e)
            if ((kind is n.Name and METRICS[e.id].time_varying)  # type: ignore[union-attr]
                    or (kind is n.Attr and METRICS[e.attr].time_varying)):  # type: ignore[union-attr]
                time_varying = True
                break
    return CompiledRule(
        name=rule.name, path=rule.span.path, line=line, scope=rule.scope,
        scope_reason=rule.scope_reason, severity=rule.severity, description=rule.description,
        labels=dict(rule.labels), label_templates=rule.label_templates, tags=rule.tags,
        message=message,
        actions=tuple(_action(a, ns.get(names.get(f"target{i}", "")))  # type: ignore[arg-type]
                      for i, a in enumerate(rule.actions)),
        mode_monitor=rule.mode_monitor,
        enabled=rule.enabled, for_s=rule.for_s, clear_for_s=rule.clear_for_s,
        keep_firing_for_s=rule.keep_firing_for_s, cooldown_s=rule.cooldown_s,
        cond=ns[names["cond"]],  # type: ignore[arg-type]
        clear=ns.get(names.get("clear", "")),  # type: ignore[arg-type]
        values=ns[names["values"]],  # type: ignore[arg-type]
        cond_text=cond_text, clear_text=clear_text,
        inputs=tuple(inputs), windows=windows,
        needs=_needs([name for name in read if "(" not in name])
        | (_window_needs(windows) if windows else frozenset())
        | (_NETWORK if rule.event is not None and rule.event.trigger in NET_TRIGGERS
           else frozenset()),
        time_varying=time_varying, boundary=_boundary_of(rule, names, ns),
        runbook=rule.runbook, source=rule.span.text, **_event_of(rule))


def _event_of(rule: CheckedRule) -> dict[str, Any]:
    """An event rule's trigger, flood control and pre-filter, as CompiledRule's fields."""
    event = rule.event
    if event is None:
        return {}
    return {"trigger": event.trigger, "cooldown_by": event.cooldown_by,
            "max_rate": event.max_rate, "max_rate_per_s": event.per_s,
            "prefilter": prefilter(rule.when)}


def _boundary_of(rule: CheckedRule, names: dict[str, str],
                 ns: dict[str, object]) -> Boundary | None:
    text = boundary_text(rule)
    if text is None:
        return None
    return Boundary(text, ns[names["wall"]])  # type: ignore[arg-type]


def _called(e: n.Expr, functions: Iterable[str]) -> bool:
    """Whether ``e`` is a call to one of ``functions``."""
    return isinstance(e, n.Call) and e.func in functions


def _message_inputs(rule: CheckedRule) -> dict[str, n.Expr]:
    """The calls in a rule's message: read when it is rendered, so their windows are kept
    and their counts made, but not inputs of the condition."""
    return _inputs([call for _, call in rule.message_calls]) if rule.message_calls else {}


# what a file's rules count: count(EXPR) terms by text, event counters by (kind, field)
_Counting = tuple[dict[str, CountTerm], dict[tuple[str, str], float]]


def _counting(inputs: list[dict[str, n.Expr]], terms: dict[str, tuple[str, n.Expr]],
              ns: dict[str, object]) -> _Counting:
    """The count(EXPR) terms and the event counters (with their longest window) read by
    the enabled rules whose ``inputs`` are given."""
    counts: dict[str, CountTerm] = {}
    counters: dict[tuple[str, str], float] = {}
    for found in inputs:
        for text, e in found.items():
            if not _called(e, COUNTING_FUNCTIONS):
                continue
            assert isinstance(e, n.Call)
            if e.func == "count":
                name, expr = terms[text]
                counts[text] = CountTerm(text, ns[name], tuple(_inputs([expr])))  # type: ignore[arg-type]
                continue
            field, window = e.args
            assert isinstance(field, n.Name) and isinstance(window, n.Quantity)
            key = (e.func, field.id)
            counters[key] = max(counters.get(key, 0.0), float(window.value))
    return counts, counters


def _window_of(call: n.Call) -> tuple[str, float]:
    metric, window = call.args
    assert isinstance(metric, n.Name) and isinstance(window, n.Quantity)
    return metric.id, window.value


def _window_needs(windows: Iterable[tuple[str, float]]) -> frozenset[Need]:
    return _needs(name for name, _ in windows)


def _action(a: CheckedAction, exclude: Condition | None) -> CompiledAction:
    """The action as the engine proposes it; ``exclude``: the compiled ``unless`` of
    ``top(M, unless EXPR)``."""
    read = getter(a.target) if a.target is not None else None
    unless = None if a.target_unless is None else a.unless_text or to_text(a.target_unless)
    return CompiledAction(a.name, a.targets_process, a.grace_s, a.signal, a.nice, a.target,
                          read, unless, exclude, targets_cgroup=ACTIONS[a.name].targets_cgroup)


def getter(metric: str) -> Getter:
    """A function reading one metric of a process (or the host): ``(p, h, now) -> value``."""
    m = METRICS[metric]
    proc = "p" if m.scope is not Scope.SYSTEM else "None"
    return _reader(f"lambda p, h, now: {access(m.code, proc)}")


def _reader(source: str) -> Getter:
    """A new function from the source of a lambda, run with no builtins (each lambda
    is compiled once)."""
    code = _READERS.get(source)
    if code is None:
        made = eval(source, {"__builtins__": {}})
        code = _READERS[source] = made.__code__
    return FunctionType(code, {"__builtins__": {}})


_READERS: dict[str, CodeType] = {}  # lambda source -> its code


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 100 else text[:97] + "..."


def _window_metrics(rules: Iterable[CompiledRule], walls: dict[str, int]
                    ) -> tuple[WindowMetric, ...]:
    """What the engine must remember, by window key: a rule with a boundary keeps its
    windows of subtree metrics apart, read within its walls."""
    spans: dict[tuple[str, int | None], float] = {}
    for rule in rules:
        k = walls[rule.boundary.text] if rule.boundary is not None else None
        for name, window in rule.windows:
            key = (name, k if name in BOUNDED else None)
            spans[key] = max(spans.get(key, 0.0), window)
    out = []
    for name, k in sorted(spans, key=lambda key: window_key(*key)):
        metric = METRICS[name]
        proc = "p" if metric.scope is not Scope.SYSTEM else "None"
        owner = proc if k is None else f"p.bounded[{k}]"
        read = _reader(f"lambda p, h, now: {access(metric.code, owner)}")
        out.append(WindowMetric(window_key(name, k), metric.scope, spans[name, k], read))
    return tuple(out)


def compile_rules(rules: list[CheckedRule], tests: tuple[object, ...] = (), *,
                  register: bool = True) -> Plan:
    """Generate, compile and assemble the plan for optimised, checked rules.

    ``register``: put the generated source in :mod:`linecache` for tracebacks
    (not for rules compiled only to see that they compile).
    """
    by_file: dict[str, list[CheckedRule]] = {}
    for rule in rules:
        by_file.setdefault(rule.span.path, []).append(rule)
    compiled: list[CompiledRule] = []
    generated: dict[str, str] = {}
    counts: dict[str, CountTerm] = {}
    counters: dict[tuple[str, str], float] = {}
    # one set of totals per distinct boundary, numbered in the order of their text
    texts = sorted({t for t in map(boundary_text, rules) if t is not None})
    walls = {text: i for i, text in enumerate(texts)}
    for path, file_rules in by_file.items():
        out, source, (file_counts, file_counters) = _compile_file(path, file_rules, walls,
                                                                   register)
        for text, term in file_counts.items():
            counts.setdefault(text, term)
        for key, span in file_counters.items():
            counters[key] = max(counters.get(key, 0.0), span)
        compiled.extend(out)
        generated[path] = source
    active = [r for r in compiled if r.enabled]
    metrics = frozenset(
        field for r in active
        for name in (*r.inputs, *r.message.names, *(a.target for a in r.actions if a.target),
                     *(name for _, t in r.label_templates for name in t.names))
        if (field := field_of(name)) in METRICS
    ) | frozenset(w for r in active for w, _ in r.windows)
    needs = frozenset(need for r in active for need in r.needs)
    windows = frozenset(w for r in active for w in r.windows)
    boundaries = {r.boundary.text: r.boundary for r in compiled if r.boundary is not None}
    return Plan(tuple(compiled), metrics, windows, _window_metrics(active, walls), needs,
                tuple(tests), generated, tuple(boundaries[t] for t in texts),
                tuple(counts[t] for t in sorted(counts)),
                tuple(EventCounter(k, f, counters[k, f]) for k, f in sorted(counters)))

