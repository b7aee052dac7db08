"""Compile optimised rules into a :class:`~linnix.plan.Plan` of generated Python.

Each ``.lnx`` file becomes one generated module of lambdas, one per condition,
each placed on the same line number as the clause it implements, so a
traceback from a condition names the ``.lnx`` line (``<lnx rules/cpu.lnx>``,
line 7) and shows the generated line with the original clause in a comment.
The source is deterministic, registered in :mod:`linecache`, dumpable via
``Plan.generated``, and runs with no builtins: only the helpers below are
reachable.  Conditions never raise for missing inputs: a comparison with a
missing value is false, arithmetic with one has no value.
"""

from __future__ import annotations

import fnmatch
import linecache
import re
from collections.abc import Iterable

from . import nodes as n
from .checker import CheckedAction, CheckedRule
from .names import METRICS, Need, Scope
from .plan import CompiledAction, CompiledRule, Plan, WindowMetric
from .printer import to_text
from .templates import Part, Template

__all__ = ["compile_rules", "default_message", "module_name"]

_PLACEHOLDER = re.compile(r"\b(P|H|NOW)\b")
_SIMPLE = re.compile(r"-?[0-9.e+-]+|'[^'\\]*'|[A-Za-z_][A-Za-z0-9_.]*")


def module_name(path: str) -> str:
    """The pseudo file name generated code for ``path`` is registered under."""
    return f"<lnx {path}>"


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


class _Module:
    """The generated source of one .lnx file, lines aligned with the original."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[int, str] = {}
        self.overflow: list[str] = []
        self.globals: dict[str, object] = {"__builtins__": {}, "_div": _div}
        self._consts: dict[tuple[str, object], str] = {}

    def const(self, kind: str, value: object) -> str:
        """A global holding a compile-time constant (regex, set); shared when equal."""
        key = (kind, value)
        name = self._consts.get(key)
        if name is None:
            name = f"_{kind}{len(self._consts)}"
            self._consts[key] = name
            if kind == "re":
                self.globals[name] = re.compile(str(value))
            elif kind == "glob":
                self.globals[name] = re.compile(fnmatch.translate(str(value)))
            else:
                assert isinstance(value, tuple)
                self.globals[name] = frozenset(value)
        return name

    def put(self, line: int, code: str) -> None:
        if line in self.lines:
            self.overflow.append(code)
        else:
            self.lines[line] = code

    def source(self) -> str:
        last = max(self.lines, default=0)
        body = [self.lines.get(i, "") for i in range(1, last + 1)]
        return "\n".join([*body, *self.overflow]) + "\n"


class _Gen:
    """Python source for one expression; ``may_be_none`` tracks missing values."""

    def __init__(self, module: _Module) -> None:
        self.module = module
        self.temps = 0

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def gen(self, e: n.Expr, proc: str = "p") -> tuple[str, bool]:
        method = getattr(self, f"gen_{type(e).__name__}", None)
        if method is None:
            raise TypeError(f"no code generation for {type(e).__name__}")
        return method(e, proc)  # type: ignore[no-any-return]

    def gen_Number(self, e: n.Number, proc: str) -> tuple[str, bool]:
        return repr(float(e.value)), False

    def gen_String(self, e: n.String, proc: str) -> tuple[str, bool]:
        return repr(e.value), False

    def gen_Bool(self, e: n.Bool, proc: str) -> tuple[str, bool]:
        return repr(e.value), False

    def gen_List(self, e: n.List, proc: str) -> tuple[str, bool]:
        values = tuple(sorted({i.value for i in e.items}, key=repr))  # type: ignore[union-attr]
        return self.module.const("set", values), False

    def gen_Name(self, e: n.Name, proc: str) -> tuple[str, bool]:
        metric = METRICS[e.id]
        return access(metric.code, proc), metric.optional

    def gen_Attr(self, e: n.Attr, proc: str) -> tuple[str, bool]:
        parent = self.temp()
        inner = access(METRICS[e.attr].code, parent)
        return f"(None if ({parent} := {proc}.parent) is None else {inner})", True

    def gen_Call(self, e: n.Call, proc: str) -> tuple[str, bool]:
        metric = METRICS[e.args[0].id]  # type: ignore[union-attr]
        window = e.args[1]
        assert isinstance(window, n.Quantity) and window.unit == "s"
        owner = "h" if metric.scope is Scope.SYSTEM else proc
        return f"{owner}.win_{e.func}({metric.name!r}, {float(window.value)!r}, now)", True

    def _guard(self, parts: list[tuple[str, bool]], expr: str, none: str) -> str:
        """``expr`` over temporaries, short-circuiting to ``none`` on a missing part."""
        names: list[str] = []
        present: list[str] = []
        for code, optional in parts:
            if optional:
                t = self.temp()
                present.append(f"({t} := {code}) is not None")
                names.append(t)
            else:
                names.append(code if _SIMPLE.fullmatch(code) else f"({code})")
        body = expr.format(*names)
        if not present:
            return f"({body})"
        if none == "None":
            return f"({body} if {' and '.join(present)} else None)"
        return f"({' and '.join(present)} and {body})"

    def gen_Arith(self, e: n.Arith, proc: str) -> tuple[str, bool]:
        left, right = self.gen(e.left, proc), self.gen(e.right, proc)
        if e.op == "/":
            return f"_div({left[0]}, {right[0]})", True
        code = self._guard([left, right], "{} " + e.op + " {}", "None")
        return code, left[1] or right[1]

    def gen_Neg(self, e: n.Neg, proc: str) -> tuple[str, bool]:
        inner = self.gen(e.operand, proc)
        return self._guard([inner], "-{}", "None"), inner[1]

    def gen_Compare(self, e: n.Compare, proc: str) -> tuple[str, bool]:
        parts = [self.gen(e.left, proc), self.gen(e.right, proc)]
        return self._guard(parts, "{} " + e.op + " {}", "False"), False

    def gen_In(self, e: n.In, proc: str) -> tuple[str, bool]:
        op = "not in" if e.negated else "in"
        parts = [self.gen(e.left, proc), self.gen(e.right, proc)]
        return self._guard(parts, "{} " + op + " {}", "False"), False

    def gen_StrOp(self, e: n.StrOp, proc: str) -> tuple[str, bool]:
        parts = [self.gen(e.left, proc), self.gen(e.right, proc)]
        template = "({1} in {0})" if e.op == "contains" else "{}." + e.op + "({})"
        return self._guard(parts, template, "False"), False

    def gen_Matches(self, e: n.Matches, proc: str) -> tuple[str, bool]:
        rx = self.module.const("re", e.pattern.value)
        part = self.gen(e.left, proc)
        return self._guard([part], rx + ".search({}) is not None", "False"), False

    def gen_Glob(self, e: n.Glob, proc: str) -> tuple[str, bool]:
        rx = self.module.const("glob", e.pattern.value)
        part = self.gen(e.left, proc)
        return self._guard([part], rx + ".match({}) is not None", "False"), False

    def gen_Not(self, e: n.Not, proc: str) -> tuple[str, bool]:
        return f"(not {self.gen(e.operand, proc)[0]})", False

    def gen_And(self, e: n.And, proc: str) -> tuple[str, bool]:
        return "(" + " and ".join(self.gen(i, proc)[0] for i in e.items) + ")", False

    def gen_Or(self, e: n.Or, proc: str) -> tuple[str, bool]:
        return "(" + " or ".join(self.gen(i, proc)[0] for i in e.items) + ")", False


def access(template: str, proc: str) -> str:
    """Substitute the record variables into a registry code template."""
    table = {"P": proc, "H": "h", "NOW": "now"}
    return _PLACEHOLDER.sub(lambda m: table[m.group(1)], template)


# ---- inputs and requirements ------------------------------------------------------

def _inputs(exprs: Iterable[n.Expr]) -> dict[str, n.Expr]:
    """Every name, parent field and window term the expressions read, in order."""
    found: dict[str, n.Expr] = {}
    stack = list(exprs)[::-1]
    while stack:
        e = stack.pop()
        if isinstance(e, n.Name):
            found.setdefault(e.id, e)
        elif isinstance(e, n.Attr):
            found.setdefault(f"{e.obj}.{e.attr}", e)
        elif isinstance(e, n.Call):
            found.setdefault(to_text(e), e)
        else:
            stack.extend(reversed(n.children(e)))  # type: ignore[arg-type]
    return found


def _needs(names: Iterable[str]) -> frozenset[Need]:
    needs: set[Need] = set()
    for name in names:
        metric = METRICS.get(name.removeprefix("parent."))
        if metric is not None:
            needs |= metric.needs
    return frozenset(needs)


def default_message(rule: CheckedRule, inputs: Iterable[str]) -> Template:
    """``comm[pid]: name=value, ...`` over everything the condition reads."""
    parts: list[Part] = []
    text = ""
    if rule.scope is not Scope.SYSTEM:
        parts += [Part("", "comm", "", 0), Part("[", "pid", "", 0)]
        text = "]: "
    for name in inputs:
        metric = METRICS.get(name.removeprefix("parent."))
        numeric = metric is None or metric.numeric  # window terms are numbers
        parts.append(Part(text + f"{name}=", name, ".6g" if numeric else "", 0))
        text = ", "
    if not parts:
        parts.append(Part("", "rule", "", 0))
    source = "".join(f"{p.text}{{{p.name}{':' + p.spec if p.spec else ''}}}" for p in parts)
    return Template(source, tuple(parts))


# ---- compilation ------------------------------------------------------------------

def _lambda(gen: _Gen, expr: n.Expr, comment: str) -> str:
    gen.temps = 0
    code, _ = gen.gen(expr)
    return f"lambda p, h, now: {code}  # {comment}"


def _values_lambda(gen: _Gen, inputs: dict[str, n.Expr], extra: Iterable[str]) -> str:
    gen.temps = 0
    items = [f"{name!r}: {gen.gen(expr)[0]}" for name, expr in inputs.items()]
    for name in extra:
        if name not in inputs and name in METRICS:
            items.append(f"{name!r}: {access(METRICS[name].code, 'p')}")
    return "lambda p, h, now: {" + ", ".join(items) + "}"


def _compile_file(path: str, rules: list[CheckedRule]) -> tuple[list[CompiledRule], str]:
    module = _Module(path)
    gen = _Gen(module)
    slots: list[tuple[CheckedRule, dict[str, str], dict[str, n.Expr], Template]] = []
    for rule in rules:
        names = {"cond": f"cond_{rule.name}", "values": f"values_{rule.name}"}
        line = rule.when.span.line
        module.put(line, f"{names['cond']} = " + _lambda(
            gen, rule.when, f"{path}:{line}: {_one_line(to_text(rule.when))}"))
        if rule.clear is not None:
            names["clear"] = f"clear_{rule.name}"
            cl = rule.clear.span.line
            module.put(cl, f"{names['clear']} = " + _lambda(
                gen, rule.clear, f"{path}:{cl}: {_one_line(to_text(rule.clear))}"))
        inputs = _inputs([rule.when, *([rule.clear] if rule.clear is not None else [])])
        message = rule.message or default_message(rule, inputs)
        values = _values_lambda(gen, inputs, message.names)
        module.put(rule.span.line, f"{names['values']} = {values}")
        slots.append((rule, names, inputs, message))
    source = module.source()
    filename = module_name(path)
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = dict(module.globals)
    exec(code, namespace)
    out = [_assemble(rule, names, inputs, message, namespace)
           for rule, names, inputs, message in slots]
    return out, source


def _assemble(rule: CheckedRule, names: dict[str, str], inputs: dict[str, n.Expr],
              message: Template, ns: dict[str, object]) -> CompiledRule:
    read = [*inputs, *message.names, *(a.target for a in rule.actions if a.target)]
    windows = tuple(sorted(_window_of(e) for e in inputs.values() if isinstance(e, n.Call)))
    time_varying = any(
        isinstance(e, n.Call) or (isinstance(e, n.Name) and METRICS[e.id].time_varying)
        or (isinstance(e, n.Attr) and METRICS[e.attr].time_varying)
        for e in inputs.values())
    return CompiledRule(
        name=rule.name, path=rule.span.path, line=rule.span.line, scope=rule.scope,
        scope_reason=rule.scope_reason, severity=rule.severity, description=rule.description,
        labels=dict(rule.labels), tags=rule.tags, message=message,
        actions=tuple(_action(a) for a in rule.actions), mode_monitor=rule.mode_monitor,
        enabled=rule.enabled, for_s=rule.for_s, clear_for_s=rule.clear_for_s,
        keep_firing_for_s=rule.keep_firing_for_s, cooldown_s=rule.cooldown_s,
        cond=ns[names["cond"]],  # type: ignore[arg-type]
        clear=ns.get(names.get("clear", "")),  # type: ignore[arg-type]
        values=ns[names["values"]],  # type: ignore[arg-type]
        cond_text=to_text(rule.when),
        clear_text=to_text(rule.clear) if rule.clear is not None else None,
        inputs=tuple(inputs), windows=windows,
        needs=_needs(name for name in read if "(" not in name)
        | _window_needs(windows),
        time_varying=time_varying)


def _window_of(call: n.Call) -> tuple[str, float]:
    metric, window = call.args
    assert isinstance(metric, n.Name) and isinstance(window, n.Quantity)
    return metric.id, window.value


def _window_needs(windows: Iterable[tuple[str, float]]) -> frozenset[Need]:
    return _needs(name for name, _ in windows)


def _action(a: CheckedAction) -> CompiledAction:
    return CompiledAction(a.name, a.targets_process, a.grace_s, a.signal, a.nice, a.target)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 100 else text[:97] + "..."


def _window_metrics(rules: Iterable[CompiledRule]) -> tuple[WindowMetric, ...]:
    spans: dict[str, float] = {}
    for rule in rules:
        for name, window in rule.windows:
            spans[name] = max(spans.get(name, 0.0), window)
    out = []
    for name in sorted(spans):
        metric = METRICS[name]
        proc = "p" if metric.scope is not Scope.SYSTEM else "None"
        read = eval(f"lambda p, h, now: {access(metric.code, proc)}",
                    {"__builtins__": {}})
        out.append(WindowMetric(name, metric.scope, spans[name], read))
    return tuple(out)


def compile_rules(rules: list[CheckedRule], tests: tuple[object, ...] = ()) -> Plan:
    """Generate, compile and assemble the plan for optimised, checked rules."""
    by_file: dict[str, list[CheckedRule]] = {}
    for rule in rules:
        by_file.setdefault(rule.span.path, []).append(rule)
    compiled: list[CompiledRule] = []
    generated: dict[str, str] = {}
    for path, file_rules in by_file.items():
        out, source = _compile_file(path, file_rules)
        compiled.extend(out)
        generated[path] = source
    active = [r for r in compiled if r.enabled]
    metrics = frozenset(
        name.removeprefix("parent.") for r in active
        for name in (*r.inputs, *r.message.names, *(a.target for a in r.actions if a.target))
        if name.removeprefix("parent.") in METRICS
    ) | frozenset(w for r in active for w, _ in r.windows)
    needs = frozenset(need for r in active for need in r.needs)
    windows = frozenset(w for r in active for w in r.windows)
    return Plan(tuple(compiled), metrics, windows, _window_metrics(active), needs,
                tuple(tests), generated)

