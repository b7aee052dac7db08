"""Semantic checks: every error and warning of a loaded program, as data.

:func:`check` walks every file of a :class:`~linnix.language.loader.Program` and
returns a :class:`CheckResult`: the diagnostics, and for each valid rule and
test a resolved description (:class:`~linnix.language.ir.CheckedRule`,
:class:`~linnix.language.ir.CheckedTest`) that the optimiser and compiler
consume.  It never raises for bad input; files that failed to load, and files
that include them, are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from ..names import ACTIONS, METRICS, SIGNALS, Scope, Type, suggest
from ..templates import Template
from . import nodes as n
from .env import Env
from .events import check_event, check_event_actions
from .grammar import declaration_parser
from .infer import Inferrer, Uses, describe_dim, kind_of
from .infer import rank as _rank
from .ir import CheckedAction, CheckedRule, CheckedTest, Expectation
from .judged import FAIL, Target, check_boundaries, check_target
from .lints import comparison_warnings
from .loader import Program
from .messages import check_labels, check_message, targets_process
from .source import Diagnostic, Level, Span

__all__ = ["CheckResult", "check"]

SEVERITIES = ("info", "warning", "critical")
MODES = ("monitor",)
_SINGLE = {
    n.Description: "description", n.When: "when", n.Clear: "clear when",
    n.KeepFiringFor: "keep_firing_for", n.ScopeClause: "scope", n.Severity: "severity",
    n.Cooldown: "cooldown", n.Labels: "labels", n.Tags: "tags", n.Message: "message",
    n.Mode: "mode", n.Enabled: "enabled", n.On: "on", n.MaxRate: "max_rate",
    n.Runbook: "runbook",
}


@attrs.define
class CheckResult:
    """Diagnostics plus the checked rules and tests (only meaningful without errors)."""

    program: Program
    diagnostics: list[Diagnostic]
    rules: list[CheckedRule]
    tests: list[CheckedTest]

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]


class _Checker:
    def __init__(self, program: Program,
                 emit: Callable[[CheckedRule], None] | None = None) -> None:
        self.program = program
        self.diags: list[Diagnostic] = []
        self.infer = Inferrer(self.diags.append)
        self.envs: dict[str, Env] = {}
        self.own: dict[str, list[n.Let | n.Macro]] = {}
        self.clashes: set[tuple[str, str]] = set()
        self.rule_spans: dict[str, Span] = {}
        self.rules: list[CheckedRule] = []
        self.emit = emit
        self.tests: list[CheckedTest] = []
        # message templates found valid, by (text, scope): a Template is immutable
        # (and whether the rule's action targets a process, which its message may read)
        self.messages: dict[tuple[str, Scope, bool], Template] = {}
        self._counted = 0  # diagnostics already looked at by error_count()
        self._errors = 0  # errors among them

    # ---- reporting -------------------------------------------------------------
    def error(self, code: str, msg: str, span: Span, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, Level.ERROR, msg, span, hint))

    def warn(self, code: str, msg: str, span: Span, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, Level.WARNING, msg, span, hint))

    # ---- program -----------------------------------------------------------------
    def run(self) -> None:
        usable = [p for p in self.program.modules if not self.program.depends_on_broken(p)]
        for path in usable:
            self._declare(path)
        for path in usable:
            self._env(path)
        self._consts()
        for path in usable:
            for rule in self._rules_of(path):
                self._rule(rule, self.envs[path])
        for path in usable:
            for decl in self.program.modules[path].decls:
                if isinstance(decl, n.Test):
                    self._test(decl, path)
        self._unused(usable)

    def _rules_of(self, path: str) -> Iterator[n.Rule]:
        """The rules of one file in order, each outline parsed again in its turn."""
        again = None
        for decl in self.program.modules[path].decls:
            if isinstance(decl, n.RuleOutline):
                if again is None:
                    again = declaration_parser(self.program.sources[path])
                full = again(decl.span.start, decl.span.end)
                assert isinstance(full, n.Rule)
                yield full
            elif isinstance(decl, n.Rule):
                yield decl

    def _declare(self, path: str) -> None:
        """Register rule names (unique across everything) and file-local names."""
        env = self.envs.setdefault(path, Env(path, registry=self.envs,
                                             lost=self.program.lost.get(path, frozenset())))
        for decl in self.program.modules[path].decls:
            if isinstance(decl, (n.Rule, n.RuleOutline)):
                first = self.rule_spans.get(decl.name)
                if first is not None:
                    self.error("E202", f"duplicate rule '{decl.name}' (first defined at "
                               f"{first.where()})", decl.name_span)
                else:
                    self.rule_spans[decl.name] = decl.name_span
            elif isinstance(decl, (n.Let, n.Macro)):
                self._declare_name(env, decl)

    def _declare_name(self, env: Env, decl: n.Let | n.Macro) -> None:
        if decl.name in METRICS:
            self.error("E204", f"'{decl.name}' is a metric; a {type(decl).__name__.lower()} "
                       "may not shadow it", decl.name_span)
            return
        other = env.lookup(decl.name)
        if other is not None:
            self.error("E203", f"'{decl.name}' is already defined at {other.name_span.where()}",
                       decl.name_span)
            return
        if isinstance(decl, n.Let):
            env.lets[decl.name] = decl
        else:
            env.macros[decl.name] = decl
        self.own.setdefault(env.path, []).append(decl)

    def _env(self, path: str) -> None:
        """Add what ``path`` includes to its environment; report names defined twice."""
        env = self.envs[path]
        for inc in self.program.visible(path)[1:]:
            for decl in self.own.get(inc, ()):
                mine = env.lookup(decl.name)
                if mine is None:
                    table: dict[str, Any] = env.lets if isinstance(decl, n.Let) else env.macros
                    table[decl.name] = decl
                elif mine is not decl and (path, decl.name) not in self.clashes:
                    self.clashes.add((path, decl.name))
                    self.error("E203", f"'{decl.name}' is defined both at "
                               f"{mine.name_span.where()} and at {decl.name_span.where()} "
                               f"(both visible in {path})", mine.name_span)

    def _consts(self) -> None:
        """Evaluate every let, and check every macro body once where it is defined."""
        for env in self.envs.values():
            for name, decl in env.lets.items():
                env.consts[name] = self.infer.let_value(decl, env)
        for path, decls in self.own.items():
            for macro in decls:
                if isinstance(macro, n.Macro):
                    self.infer.macro(macro, self.envs[path])
                    self.diags += comparison_warnings(macro.expr)

    # ---- rules -------------------------------------------------------------------
    def _rule(self, rule: n.Rule, env: Env) -> None:
        before = self.error_count()
        clauses = self._clauses(rule)
        when = clauses.get(n.When)
        if when is None:
            self.error("E501", f"rule '{rule.name}' has no 'when' condition", rule.name_span)
            return
        assert isinstance(when, n.When)
        uses = Uses()
        self._condition(when.expr, env, uses, "the 'when' condition")
        unless = [c for c in rule.clauses if isinstance(c, n.Unless)]
        for u in unless:
            self._condition(u.expr, env, uses, "an 'unless' condition")
        clear = clauses.get(n.Clear)
        if isinstance(clear, n.Clear):
            self._condition(clear.expr, env, uses, "the 'clear when' condition")
        for_s = self._dur(when.for_, env, "'for'", allow_zero=False)
        clear_for = self._dur(clear.for_ if isinstance(clear, n.Clear) else None, env,
                              "'clear when ... for'", allow_zero=False)
        keep = self._dur(getattr(clauses.get(n.KeepFiringFor), "duration", None), env,
                         "keep_firing_for", allow_zero=True)
        cooldown = self._dur(getattr(clauses.get(n.Cooldown), "duration", None), env,
                             "cooldown", allow_zero=True)
        event = check_event(self, rule, uses, clauses.get(n.ScopeClause))
        scope, reason = ((Scope.PROCESS, f"event rule: on {event.trigger}") if event
                         else self._scope(rule, clauses.get(n.ScopeClause), uses))
        severity = self._choice(clauses.get(n.Severity), SEVERITIES, "severity", "warning")
        mode = self._choice(clauses.get(n.Mode), MODES, "mode", None)
        enabled = self._enabled(clauses.get(n.Enabled), env)
        labels, label_templates = check_labels(self, clauses.get(n.Labels), scope)
        tags = tuple(t.value for t in getattr(clauses.get(n.Tags), "items", ()))
        message, calls = check_message(self, clauses.get(n.Message), scope,
                                       targets_process(rule), env)
        walls = check_boundaries(self, rule, [c for c in rule.clauses
                                              if isinstance(c, n.Boundary)], env, scope)
        actions = tuple(self._action(a, env, scope)
                        for a in rule.clauses if isinstance(a, n.Action))
        check_event_actions(self, rule, event, actions, message, clauses.get(n.Message))
        if self.error_count() > before or any(a is None for a in actions):
            return
        desc, runbook = clauses.get(n.Description), clauses.get(n.Runbook)
        checked = CheckedRule(
            name=rule.name, span=rule.span, env=env, scope=scope, scope_reason=reason,
            when=when.expr, unless=tuple(u.expr for u in unless), for_s=for_s or 0.0,
            clear=clear.expr if isinstance(clear, n.Clear) else None,
            clear_for_s=clear_for or 0.0, keep_firing_for_s=keep or 0.0,
            cooldown_s=cooldown or 0.0, severity=severity or "warning",
            description=desc.text.value if isinstance(desc, n.Description) else None,
            labels=labels, label_templates=label_templates, tags=tags, message=message,
            message_calls=calls,
            actions=tuple(a for a in actions if a is not None),
            mode_monitor=mode == "monitor", enabled=enabled, uses=uses, boundary=walls or (),
            event=event,
            runbook=runbook.text.value if isinstance(runbook, n.Runbook) else None)
        if self.emit is None:
            self.rules.append(checked)
        elif self.error_count() == 0:  # a rule the stages after this one will see
            self.emit(checked)

    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diags if d.is_error]

    def error_count(self) -> int:
        """How many errors have been reported so far (counted incrementally)."""
        diags = self.diags
        if self._counted < len(diags):
            self._errors += sum(1 for d in diags[self._counted:] if d.is_error)
            self._counted = len(diags)
        return self._errors

    def _clauses(self, rule: n.Rule) -> dict[type, n.Clause]:
        seen: dict[type, n.Clause] = {}
        for clause in rule.clauses:
            kind = type(clause)
            if kind not in _SINGLE:
                continue
            if kind in seen:
                self.error("E502", f"'{_SINGLE[kind]}' given twice in rule '{rule.name}' "
                           f"(first at {seen[kind].span.where()})", clause.span)
                continue
            seen[kind] = clause
        return seen

    def _condition(self, expr: n.Expr, env: Env, uses: Uses, role: str) -> None:
        info = self.infer.infer(expr, env, uses)
        self.diags += comparison_warnings(expr)
        if info.type is not None and info.type is not Type.BOOL:
            what = describe_dim(info.dim) if info.type is Type.NUM else info.type.value
            self.error("E302", f"{role} must be true or false, got {what}", expr.span,
                       "compare it, e.g. 'cpu_pct > 90'")

    def _dur(self, e: n.Expr | None, env: Env, what: str, *, allow_zero: bool) -> float | None:
        if e is None:
            return None
        return self.infer.duration(e, env, allow_zero=allow_zero, what=what)

    def _scope(self, rule: n.Rule, clause: n.Clause | None, uses: Uses) -> tuple[Scope, str]:
        needed, name, span = uses.scope_needed()
        if not isinstance(clause, n.ScopeClause):
            if needed is Scope.CGROUP:
                self._mixed(rule, uses, name)
            reason = f"inferred: reads {name}" if name else "inferred: reads only system names"
            return needed, reason
        try:
            declared = Scope(clause.name)
        except ValueError:
            guess = suggest(clause.name, [s.value for s in Scope])
            tail = f" (did you mean '{guess}'?)" if guess else ""
            self.error("E402", f"unknown scope '{clause.name}'{tail}", clause.span,
                       "one of: system, process, subtree, cgroup")
            return needed, "declared"
        if Scope.CGROUP in (needed, declared):  # apart from the others: no rank to compare
            if needed is Scope.CGROUP and declared is Scope.CGROUP:
                self._mixed(rule, uses, name)
            elif (found := uses.foreign(declared)) is not None:
                self.error("E401", f"'{found[0]}' is {kind_of(found[0])}, but rule "
                           f"'{rule.name}' is declared 'scope {declared.value}'", found[1])
            return declared, "declared"
        if _rank(needed) > _rank(declared) and span is not None:
            kind = "a subtree metric" if needed is Scope.SUBTREE else "a process field"
            self.error("E401", f"'{name}' is {kind}, but rule '{rule.name}' is declared "
                       f"'scope {declared.value}'", span)
        return declared, "declared"

    def _mixed(self, rule: n.Rule, uses: Uses, cg_name: str | None) -> None:
        """E403 at the first name a cgroup rule (one reading ``cg_name``) cannot read."""
        found = uses.foreign(Scope.CGROUP)
        if found is not None:
            self.error("E403", f"'{found[0]}' is {kind_of(found[0])}, but rule '{rule.name}' "
                       f"reads '{cg_name}', a cgroup metric: a rule is about processes or "
                       "about cgroups, not both", found[1],
                       "a cgroup rule reads cg_* names, cgroup, unit, container and host "
                       "values")

    def _choice(self, clause: n.Clause | None, allowed: tuple[str, ...], what: str,
                default: str | None) -> str | None:
        if not isinstance(clause, (n.Severity, n.Mode)):
            return default
        value = clause.name
        if value in allowed:
            return value
        guess = suggest(value, allowed)
        tail = f" (did you mean '{guess}'?)" if guess else ""
        self.error("E503", f"unknown {what} '{value}'{tail}", clause.span,
                   f"one of: {', '.join(allowed)}")
        return default

    def _enabled(self, clause: n.Clause | None, env: Env) -> bool:
        if not isinstance(clause, n.Enabled):
            return True
        info = self.infer.infer(clause.value, env, Uses())
        if info.type is Type.BOOL and info.is_const:
            return bool(info.const)
        if info.type is not None:
            self.error("E302", "'enabled' takes true or false", clause.value.span)
        return True

    # ---- actions -----------------------------------------------------------------
    def _action(self, a: n.Action, env: Env, scope: Scope) -> CheckedAction | None:
        spec = ACTIONS.get(a.name)
        if spec is None:
            guess = suggest(a.name, ACTIONS)
            tail = f" (did you mean '{guess}'?)" if guess else ""
            self.error("E601", f"unknown action '{a.name}'{tail}", a.name_span,
                       f"one of: {', '.join(ACTIONS)}")
            return None
        values: dict[str, n.Expr] = {}
        positional = [p for p in spec.params if p.positional]
        ok = True
        for i, arg in enumerate(a.args):
            if isinstance(arg, n.Kwarg):
                name, value, span = arg.name, arg.value, arg.span
            elif i < len(positional):
                name, value, span = positional[i].name, arg, arg.span
            else:
                self.error("E602", f"'{a.name}' takes no positional argument here", arg.span,
                           self._signature(a.name))
                ok = False
                continue
            if spec.param(name) is None:
                self.error("E602", f"'{a.name}' has no argument '{name}'", span,
                           self._signature(a.name))
                ok = False
            elif name in values:
                self.error("E602", f"argument '{name}' given twice", span)
                ok = False
            else:
                values[name] = value
        resolved = {k: self._arg(spec.param(k).kind, v, env) for k, v in values.items()}  # type: ignore[union-attr]
        if not ok or any(v is _FAIL for v in resolved.values()):
            return None
        for p in positional:
            if p.name not in resolved:
                self.error("E602", f"'{a.name}' needs a {p.name}", a.span,
                           self._signature(a.name))
                return None
        if not self._fits(a, spec.targets_process, spec.targets_cgroup, scope):
            return None
        if spec.targets_process and scope is Scope.SYSTEM and "target" not in resolved:
            self.error("E603", f"'{a.name}' in a system rule needs a target", a.span,
                       f"e.g. action {a.name}(target = top(cpu_pct))")
            return None
        target = resolved.get("target")
        assert target is None or isinstance(target, Target)
        return CheckedAction(a.name, a.span, grace_s=resolved.get("grace"),  # type: ignore[arg-type]
                             signal=resolved.get("signal"), nice=resolved.get("nice"),  # type: ignore[arg-type]
                             target=target.metric if target is not None else None,
                             target_unless=target.unless if target is not None else None,
                             unless_text=target.unless_text if target is not None else None)

    def _fits(self, a: n.Action, on_process: bool, on_cgroup: bool, scope: Scope) -> bool:
        """E609 for an action on a cgroup outside a cgroup rule, and the reverse."""
        if on_cgroup and scope is not Scope.CGROUP:
            self.error("E609", f"'{a.name}' acts on a cgroup, but this rule's instances are "
                       f"{'the host' if scope is Scope.SYSTEM else 'processes'} (scope "
                       f"{scope.value})", a.span, "a rule that reads a cg_* name (or says "
                       "'scope cgroup') is a cgroup rule")
            return False
        if on_process and scope is Scope.CGROUP:
            self.error("E609", f"'{a.name}' acts on a process, but this rule's instances are "
                       "cgroups (scope cgroup)", a.span,
                       "a cgroup rule may take freeze, kill_cgroup, analyze or alert")
            return False
        return True

    def _signature(self, action: str) -> str:
        spec = ACTIONS[action]
        args = ", ".join(f"{p.name}=..." for p in spec.params)
        return f"{action}({args})" if args else f"'{action}' takes no arguments"

    def _arg(self, kind: str, e: n.Expr, env: Env) -> object:
        handler: Callable[[n.Expr, Env], object] = getattr(self, f"_arg_{kind}")
        return handler(e, env)

    def _arg_duration(self, e: n.Expr, env: Env) -> object:
        value = self.infer.duration(e, env, allow_zero=True, what="the grace period")
        return _FAIL if value is None else value

    def _arg_signal(self, e: n.Expr, env: Env) -> object:
        if isinstance(e, n.Signal):
            if e.name in SIGNALS:
                return SIGNALS[e.name]
            guess = suggest(e.name, SIGNALS)
            tail = f" (did you mean '{guess}'?)" if guess else ""
            self.error("E602", f"unknown signal '{e.name}'{tail}", e.span)
            return _FAIL
        if isinstance(e, n.Number) and e.value == int(e.value) and 1 <= e.value <= 64:
            return int(e.value)
        self.error("E602", "expected a signal such as SIGTERM or a number 1-64", e.span)
        return _FAIL

    def _arg_int(self, e: n.Expr, env: Env) -> object:
        info = self.infer.infer(e, env, Uses())
        value = info.const if info.is_const and info.type is Type.NUM else None
        if isinstance(value, float) and value == int(value) and -20 <= value <= 19:
            return int(value)
        if info.type is not None:
            self.error("E602", "expected a nice value, a whole number from -20 to 19", e.span)
        return _FAIL

    def _arg_target(self, e: n.Expr, env: Env) -> object:
        return check_target(self, e, env)

    # ---- tests -------------------------------------------------------------------
    def _test(self, test: n.Test, path: str) -> None:
        before = self.error_count()
        visible = self._visible_rules(path)
        traces = [s for s in test.stmts if isinstance(s, n.Trace)]
        ticks = [s for s in test.stmts if isinstance(s, n.Tick)]
        extras: list[n.Trace | n.Tick] = [*traces[1:], *ticks[1:]]
        for extra in extras:
            word = "trace" if isinstance(extra, n.Trace) else "tick"
            self.error("E502", f"'{word}' given twice in this test", extra.span)
        trace = ""
        if not traces:
            self.error("E702", f"test \"{test.title.value}\" has no 'trace'", test.title.span)
        else:
            trace = os.path.normpath(os.path.join(os.path.dirname(path), traces[0].path.value))
            if not os.path.isfile(trace):
                self.error("E703", f"trace file not found: {trace}", traces[0].path.span)
        env = self.envs[path]
        tick = self._dur(ticks[0].duration, env, "tick", allow_zero=False) if ticks else None
        expects = [self._expect(s, env, visible) for s in test.stmts
                   if not isinstance(s, (n.Trace, n.Tick))]
        if not expects:
            self.warn("W106", f"test \"{test.title.value}\" expects nothing", test.title.span)
        if self.error_count() > before:
            return
        self.tests.append(CheckedTest(test.title.value, test.span, trace, tick,
                                      tuple(e for e in expects if e is not None),
                                      tuple(sorted(visible))))

    def _visible_rules(self, path: str) -> set[str]:
        names: set[str] = set()
        for p in self.program.visible(path):
            module = self.program.modules.get(p)
            if module is not None:
                names.update(d.name for d in module.decls
                             if isinstance(d, (n.Rule, n.RuleOutline)))
        return names

    def _expect(self, s: n.Expect, env: Env, visible: set[str]) -> Expectation | None:
        if isinstance(s, n.ExpectAction):
            if s.action not in ACTIONS:
                guess = suggest(s.action, ACTIONS)
                tail = f" (did you mean '{guess}'?)" if guess else ""
                self.error("E601", f"unknown action '{s.action}'{tail}", s.rule_span)
                return None
            pid = self._whole(s.pid, 1, "a pid")
            return None if pid is None else Expectation("action", s.span, action=s.action,
                                                        pid=pid)
        if s.rule not in visible:
            if s.rule in env.lost:  # its definition had a syntax error, reported already
                return None
            guess = suggest(s.rule, visible)
            tail = f" (did you mean '{guess}'?)" if guess else ""
            hint = None if s.rule not in self.rule_spans else (
                "it is defined in a file this one does not include")
            self.error("E701", f"unknown rule '{s.rule}'{tail}", s.rule_span, hint)
            return None
        if isinstance(s, n.ExpectNever):
            return Expectation("never", s.span, rule=s.rule)
        if isinstance(s, n.ExpectCount):
            count = self._whole(s.count, 0, "a count")
            return None if count is None else Expectation("count", s.span, rule=s.rule,
                                                          count=count)
        if isinstance(s, n.ExpectPid):
            pid = self._whole(s.pid, 1, "a pid")
            return None if pid is None else Expectation("pid", s.span, rule=s.rule,
                                                        state=s.state, pid=pid)
        low, high = self._when(s.low, env), self._when(s.high, env)
        if low is None or high is None:
            return None
        if low > high:
            self.error("E704", f"empty interval: {low:g}s is after {high:g}s", s.span)
            return None
        return Expectation("between", s.span, rule=s.rule, state=s.state, low=low, high=high)

    def _when(self, e: n.Expr, env: Env) -> float | None:
        if isinstance(e, n.Number):
            return e.value  # a bare number in a test is seconds into the trace
        return self.infer.duration(e, env, allow_zero=True, what="a time")

    def _whole(self, num: n.Number, low: int, what: str) -> int | None:
        if num.value != int(num.value) or num.value < low:
            self.error("E302", f"expected {what}, a whole number >= {low}", num.span)
            return None
        return int(num.value)

    # ---- warnings ----------------------------------------------------------------
    def _unused(self, usable: list[str]) -> None:
        for path in usable:
            if path in self.program.lost:  # what a syntax error left out may use them
                continue
            # only declarations that took effect: one refused by E203/E204 is
            # reported once, not again as unused
            for decl in self.own.get(path, ()):
                if (path, decl.name) not in self.infer.used:
                    kind = "let" if isinstance(decl, n.Let) else "macro"
                    code = "W101" if kind == "let" else "W102"
                    self.warn(code, f"{kind} '{decl.name}' is never used", decl.name_span)


_FAIL = FAIL


def check(program: Program, emit: Callable[[CheckedRule], None] | None = None
          ) -> CheckResult:
    """Check a loaded program; never raises for bad input.

    Given ``emit``, each valid rule is handed to it as soon as it is checked
    instead of being kept in the result, so that the rules of a program need
    not all be in memory at once (with the outlines of a program loaded in
    outline, only the rule being checked is); once an error is found, the
    rest are not (the later stages never see the rules of a program with an
    error, which may not even hold together: a macro defined in terms of
    itself).  Every error found before rules are checked is about names and
    constants, so a rule emitted before the first error is whole.
    """
    checker = _Checker(program, emit)
    checker.run()
    diags = sorted([*program.diagnostics, *checker.diags], key=Diagnostic.sort_key)
    return CheckResult(program, diags, checker.rules, checker.tests)

