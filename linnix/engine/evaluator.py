"""Rule state machines: at each tick, which instances are pending, firing, resolved.

:meth:`Evaluator.step` takes the process table and ``now`` and returns the
transitions (:class:`Alert`) and action proposals (:class:`Proposal`) of that
tick.  It never does I/O and never imports trio.

Only what can have changed is evaluated.  An instance keeps its truth value
until one of its inputs changes: its own fields (the table's change set), its
subtree totals, a rate that is still counting recent events, a window still
moving, or — for rules reading ``age_s``, ``parent.*`` or ``ancestors`` —
every tick.  ``for`` timers and cooldowns are comparisons of times on the few
instances that are not inactive.

States per instance (language.md section 8): inactive → pending → firing →
resolved → inactive.  Subtree rules report the deepest roots: an instance is
suppressed while the condition also holds for one of its descendants (not one
beyond a wall of the rule's boundary, which reads its totals within them).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..names import METRICS, Scope
from ..plan import CompiledAction, CompiledRule, Plan
from . import cgrules
from .cgtable import Cg
from .moving import Moving, rule_window_keys
from .proctable import Proc, ProcTable
from .rulestate import (
    EPS,
    FIRING,
    HISTORY_MAX,
    INACTIVE,
    PENDING,
    Alert,
    Instance,
    Key,
    Proposal,
    RuleState,
    change_groups,
)
from .rulestate import order as _order
from .tally import Tally
from .trail import TRAIL_EVERY_S, Trail, take_point
from .windows import window_metric

__all__ = ["FIRING", "INACTIVE", "PENDING", "Alert", "Evaluator", "Proposal", "RuleState"]

class Evaluator:
    """Evaluates a plan tick by tick over a :class:`ProcTable`."""

    def __init__(self, plan: Plan, history: bool = False, trails: bool = False) -> None:
        self.plan = plan
        self.history = history  # keep each pending instance's values, tick by tick
        self.trails = history and trails  # ... and a firing one's (.trail), for incidents
        self.trails_due = -math.inf  # when a trail's next point is due (all looked at then)
        self.rules = [RuleState.of(r, i, plan.boundary_index(r))
                      for i, r in enumerate(plan.ticked)]
        for state in self.rules:
            state.win_keys = rule_window_keys(state.rule, state.wall)
        self.moving = Moving(plan)  # which processes' windows move, per window key
        self._gone: set[Proc] = set()  # processes that exited since the last tick
        self.alerts: list[Alert] = []
        self.proposals: list[Proposal] = []
        self.tally = Tally(plan)  # count(EXPR) and the event counters (h.tally)

    # ---- plan changes ---------------------------------------------------------------
    def replace_plan(self, plan: Plan, table: ProcTable, now: float) -> list[Alert]:
        """Swap in a new plan; rules whose definition is unchanged keep their state.

        Firing instances of rules that disappear or change resolve (reason
        ``reloaded``); the returned alerts say so.
        """
        old = {s.rule.name: s for s in self.rules}
        out: list[Alert] = []
        self.rules = []
        for i, rule in enumerate(plan.ticked):
            prev = old.pop(rule.name, None)
            if prev is not None and _same(prev.rule, rule):
                prev.rule, prev.index, prev.wall = rule, i, plan.boundary_index(rule)
                prev.win_keys = rule_window_keys(rule, prev.wall)
                self.rules.append(prev)
                continue
            if prev is not None:
                out.extend(self._drop(prev, table, now))
            fresh = RuleState.of(rule, i, plan.boundary_index(rule))
            fresh.win_keys = rule_window_keys(rule, fresh.wall)
            if rule.scope is not Scope.SYSTEM:  # judge every live process once
                table.meta_changed.update(table.live())
            self.rules.append(fresh)
        for gone in old.values():
            out.extend(self._drop(gone, table, now))
        self.plan = plan
        self.moving.replan(plan)  # young processes judged afresh against the new windows
        self.tally.replace(plan)
        return out

    def restart_timers(self, now: float) -> None:
        """Pending instances, and firing ones waiting to clear, count their time again
        from ``now``: what happened before (a gap nobody observed) is not known to hold."""
        for state in self.rules:
            rule = state.rule
            for key, inst in state.instances.items():
                if inst.state == PENDING:
                    inst.since = now
                    state.schedule(key, inst, now + rule.for_s)
                elif inst.state == FIRING and inst.clear_since is not None:
                    inst.clear_since = now
                    state.schedule(key, inst, now + max(rule.clear_for_s,
                                                        rule.keep_firing_for_s))

    def _drop(self, state: RuleState, table: ProcTable, now: float) -> list[Alert]:
        return [self._alert(state, p, table, "resolved", now, "reloaded", inst=inst)
                for p, inst in sorted(state.instances.items(), key=lambda kv: _order(kv[0]))
                if inst.state == FIRING]

    # ---- one tick -----------------------------------------------------------------
    def step(self, table: ProcTable, now: float) -> tuple[list[Alert], list[Proposal]]:
        """Evaluate every rule at ``now``; the table's change marks are then cleared."""
        self.alerts, self.proposals = [], []
        self._gone = set(table.exited)
        self.tally.install(table)  # the core installs it before any event; a bare table now
        self.tally.refresh(table, now)
        self._observe_windows(table, now)
        self.moving.wake(now)
        self.moving.of_age(now, self._gone)
        clock = time.perf_counter
        for state in self.rules:
            started = clock()
            if state.rule.scope is Scope.SYSTEM:
                touched = self._system(state, table, now)
            elif state.rule.scope is Scope.CGROUP:
                touched = self._cgroups(state, table, now)
            else:
                touched = self._processes(state, table, now)
            touched |= state.due(now)
            touched |= state.watch
            if len(touched) > 1:
                for key in sorted(touched, key=_order):
                    self._advance(state, table, key, state.truth(key), now)
            elif touched:
                key = touched.pop()
                self._advance(state, table, key, state.truth(key), now)
            state.durations.add(clock() - started)
        if self.history:
            self._record_history(table, now)
        self.moving.cool(now)
        table.settle(now)
        return self.alerts, self.proposals

    def _record_history(self, table: ProcTable, now: float) -> None:
        trails = self.trails and now >= self.trails_due - EPS  # firing ones' points, too
        if trails:
            self.trails_due = math.inf  # the earliest next point, as they are taken
        for state in self.rules:
            for key, inst in state.instances.items():
                if trails and inst.state == FIRING:
                    self.trails_due = min(self.trails_due, take_point(
                        inst, now, functools.partial(self._values, state, key, table, now)))
                    continue
                if inst.state != PENDING or inst.history is None:
                    continue
                if inst.history[-1][0] < now:
                    inst.history.append((now, self._values(state, key, table, now)))
                if len(inst.history) > HISTORY_MAX:
                    del inst.history[1]

    def _values(self, state: RuleState, key: Key, table: ProcTable,
                now: float) -> dict[str, object]:
        try:
            values = state.rule.values(key, table.host, now)
        except Exception:
            return {}
        return {k: values.get(k) for k in state.rule.inputs}

    def _system(self, state: RuleState, table: ProcTable, now: float) -> set[Key]:
        state.evaluations += 1
        truth = self._eval(state, state.rule.cond, None, table.host, now)
        if truth == state.system_truth:
            return set()
        state.system_truth = truth
        return {None}

    def _processes(self, state: RuleState, table: ProcTable, now: float) -> set[Key]:
        """Refresh truths; the instances whose (effective) truth changed."""
        flips = self._refresh(state, table, now)
        gone = self._gone
        if gone:
            state.true -= gone
            state.effective -= gone
            state.watch -= gone
            for p in sorted(gone.intersection(state.instances), key=_order):
                self._exited(state, table, p, now)
        if state.rule.scope is not Scope.SUBTREE:
            state.effective = state.true
            return flips  # type: ignore[return-value]
        moved = state.wall is not None and table.walls is not None and table.walls.moved
        if not flips and not table.exited and not moved:
            return set()
        effective = self._effective(state)
        changed = effective ^ state.effective
        state.effective = effective
        return changed

    def _cgroups(self, state: RuleState, table: ProcTable, now: float) -> set[Key]:
        """A cgroup rule: refresh truths; the instances whose (effective) truth changed."""
        cond, host, true = state.rule.cond, table.host, state.true
        flips = False
        for cg in table.cgroups.gone:
            if cg in true:
                true.discard(cg)
                flips = True
            state.effective.discard(cg)
            state.watch.discard(cg)
            inst = state.instances.pop(cg, None)
            if inst is not None and inst.state == FIRING:
                self.alerts.append(self._alert(state, cg, table, "resolved", now, "gone",
                                               inst=inst))
        found = cgrules.candidates(state, table.cgroups)
        for cg in found:
            state.evaluations += 1
            if self._eval(state, cond, cg, host, now) != (cg in true):
                (true.discard if cg in true else true.add)(cg)
                flips = True
        if not flips:
            return set()
        effective = cgrules.deepest(true)
        changed = effective ^ state.effective
        state.effective = effective
        return changed

    def _observe_windows(self, table: ProcTable, now: float) -> None:
        metrics = self.plan.window_metrics
        if not metrics:
            return
        host = table.host
        for wm in metrics:
            if wm.scope is Scope.SYSTEM:
                value = wm.read(None, host, now)
                if value is not None:
                    host.observe(wm.name, wm.span_s, now, value)
                continue
            if wm.scope is Scope.CGROUP:  # a cgroup's values change only at its samples
                for cg in table.cgroups.changed:
                    value = wm.read(cg, host, now)
                    if value is not None:
                        cg.observe(wm.name, wm.span_s, now, value)
                continue
            changed = []
            for p in _observed(window_metric(wm.name), table):
                value = wm.read(p, host, now)
                if value is not None and p.observe(wm.name, wm.span_s, now, value):
                    changed.append(p)
            if changed:
                self.moving.observed(wm.name, changed, now)

    def _candidates(self, state: RuleState, table: ProcTable) -> Iterable[Proc]:
        if state.every_tick or (state.host_reads and state.host_moved(table.host)):
            return list(table.live())
        found = table.changed(state.groups)
        moved = self.moving.moved(state.win_keys) if state.windows else ()
        if not (state.rates and table.rate_hot) and not moved:
            return found
        found = set(found)  # the table's union is shared: extend a copy
        if state.rates:
            found |= table.rate_hot
        for procs in moved:
            found |= procs
        return found

    def _refresh(self, state: RuleState, table: ProcTable, now: float) -> set[Proc]:
        """Re-evaluate every instance whose inputs may have changed; return the flips."""
        cond = state.rule.cond
        host = table.host
        true = state.true
        flips: set[Proc] = set()
        candidates = self._candidates(state, table)
        state.evaluations += len(candidates)  # type: ignore[arg-type]
        try:
            for p in candidates:  # change sets never hold exited processes
                if cond(p, host, now):
                    if p not in true:
                        true.add(p)
                        flips.add(p)
                elif p in true:
                    true.discard(p)
                    flips.add(p)
        except Exception:  # a bug in generated code: judge instance by instance
            for p in candidates:
                held = p in true
                if self._eval(state, cond, p, host, now) != held:
                    (true.discard if held else true.add)(p)
                    flips ^= {p}
        return flips

    def _eval(self, state: RuleState, cond: Any, p: Key, host: object, now: float) -> bool:
        try:
            return bool(cond(p, host, now))
        except Exception:  # a bug in generated code must not stop the engine
            state.errors += 1
            return False

    def _effective(self, state: RuleState) -> set[Proc]:
        """The instances whose condition holds, minus suppressed subtree ancestors."""
        if len(state.true) < 2:
            return set(state.true)
        covered: set[Proc] = set()
        k = state.wall
        for p in state.true:
            if k is not None:  # a wall suppresses nothing above it
                node: Proc | None = p
                while node is not None and not node.bounded[k].wall:
                    node = node.parent
                    if node is None or node in covered:
                        break
                    covered.add(node)
                continue
            for node in p.lineage():
                if node in covered:
                    break
                covered.add(node)
        return state.true - covered

    def _exited(self, state: RuleState, table: ProcTable, p: Proc, now: float) -> None:
        inst = state.instances.pop(p, None)
        if inst is not None and inst.state == FIRING:
            with table.as_it_exited(p):  # the message reads what it had as it exited
                alert = self._alert(state, p, table, "resolved", now, "exited", inst=inst)
            self.alerts.append(alert)

    # ---- the state machine ---------------------------------------------------------
    def _advance(self, state: RuleState, table: ProcTable, key: Key, truth: bool,
                 now: float) -> None:
        rule = state.rule
        inst = state.instances.get(key)
        if inst is None:
            if not truth:
                return
            inst = state.instances[key] = Instance()
        if inst.state == INACTIVE:
            if now < inst.cooldown_until - EPS:
                if inst.due is None:
                    state.schedule(key, inst, inst.cooldown_until)
            elif not truth:
                del state.instances[key]
            elif rule.for_s <= 0:
                inst.since = now  # active from this tick: no pending time to count
                self._fire(state, table, key, inst, now)
            else:
                inst.state, inst.since = PENDING, now
                state.schedule(key, inst, now + rule.for_s)
                alert = self._alert(state, key, table, "pending", now, inst=inst)
                if self.history:
                    inst.history = [(now, alert.values)]
                self.alerts.append(alert)
        elif inst.state == PENDING:
            if not truth:
                if now < inst.hold_until - EPS:
                    if inst.due != inst.hold_until:
                        state.schedule(key, inst, inst.hold_until)
                else:
                    del state.instances[key]
            elif now - inst.since >= rule.for_s - EPS:
                self._fire(state, table, key, inst, now)
            elif inst.due is None or inst.due > inst.since + rule.for_s + EPS:
                state.schedule(key, inst, inst.since + rule.for_s)  # a restored one's hold
        else:
            self._firing(state, table, key, inst, truth, now)

    def _firing(self, state: RuleState, table: ProcTable, key: Key, inst: Instance,
                truth: bool, now: float) -> None:
        rule = state.rule
        if rule.clear is not None:
            clear = self._eval(state, rule.clear, key, table.host, now)
        else:
            clear = not truth
        if not clear:
            inst.clear_since = inst.due = None
            return
        if now < inst.hold_until - EPS:  # restored: judged again once samples are in
            if inst.due != inst.hold_until:
                state.schedule(key, inst, inst.hold_until)
            return
        if inst.clear_since is None:
            inst.clear_since = now
        hold = max(rule.clear_for_s, rule.keep_firing_for_s)
        if now - inst.clear_since >= hold - EPS:
            self.alerts.append(self._alert(state, key, table, "resolved", now, "cleared",
                                           inst=inst))
            self._resolved(state, key, inst, now)
        elif inst.due is None:
            state.schedule(key, inst, inst.clear_since + hold)

    def _resolved(self, state: RuleState, key: Key, inst: Instance, now: float) -> None:
        state.watch.discard(key)
        # Inactive again, and judged afresh when the cooldown ends (with no cooldown:
        # at the next tick).  A 'clear when' can resolve an instance whose condition
        # still holds; it must then become pending again, as after a cooldown.
        inst.state, inst.clear_since, inst.labels = INACTIVE, None, None
        inst.cooldown_until = now + state.rule.cooldown_s
        state.schedule(key, inst, inst.cooldown_until)

    def _fire(self, state: RuleState, table: ProcTable, key: Key, inst: Instance,
              now: float) -> None:
        inst.state, inst.clear_since, inst.due, inst.fired_at = FIRING, None, None, now
        if state.rule.clear is not None:
            state.watch.add(key)
        # the targets are chosen first: the firing alert's message may name them
        if type(key) is Cg:
            proposals = cgrules.proposals(state.rule, key, now)
        else:
            proposals = [self._propose(state.rule, action, table, key, now)  # type: ignore[arg-type]
                         for action in state.rule.targets]
        alert = self._alert(state, key, table, "firing", now, inst=inst,
                            target=next((x for x in proposals if x.pid is not None), None))
        inst.message = alert.message
        if self.history:
            past = [h for h in inst.history or () if h[0] < now]
            alert.history = [*past, (now, alert.values)]
            inst.history, inst.trail = None, Trail(now, alert.values) if self.trails else None
            self.trails_due = min(self.trails_due, now + TRAIL_EVERY_S)
        self.alerts.append(alert)
        self.proposals.extend(proposals)

    def _propose(self, rule: CompiledRule, action: CompiledAction, table: ProcTable,
                 p: Proc | None, now: float) -> Proposal:
        target = p
        if action.read is not None:
            target = table.top(action.read, now, action.exclude)
        instance_pid = p.pid if p is not None else None
        instance_start = p.start if p is not None else None
        if target is None:
            return Proposal(now, rule.name, action, None, None, None, instance_pid, "no_target",
                            instance_start, rule.mode_monitor)
        return Proposal(now, rule.name, action, target.pid, target.comm, target.start,
                        instance_pid, "proposed", instance_start, rule.mode_monitor)

    def _alert(self, state: RuleState, p: Key, table: ProcTable | None, kind: str,
               now: float, reason: str | None = None, *, inst: Instance | None = None,
               target: Proposal | None = None) -> Alert:
        """An alert of instance ``p`` (``inst``); ``target``: what its action chose."""
        rule = state.rule
        host = table.host if table is not None else None
        try:
            values = rule.values(p, host, now) if host is not None else {}
        except Exception:
            state.errors += 1
            values = {}
        shown = {k: values.get(k) for k in rule.inputs}
        context = {**values, "rule": rule.name, "severity": rule.severity,
                   "scope": rule.scope.value, "state": kind}
        if target is not None:
            context["target.pid"], context["target.comm"] = target.pid, target.comm
        labels = _labels(rule, inst, kind, context)
        if kind == "resolved" and inst is not None and inst.trail is not None:
            trail, inst.trail = inst.trail.ended(now, shown), None
        else:
            trail = None
        if type(p) is Cg:
            return Alert(ts=now, rule=rule.name, state=kind, severity=rule.severity,
                         scope=rule.scope.value, pid=None, comm=None, start=None,
                         message=rule.message.render(context),
                         labels=cgrules.labels_of(p, dict(labels)), values=shown,
                         reason=reason, cgroup=p.cgroup, trail=trail)
        return Alert(
            ts=now, rule=rule.name, state=kind, severity=rule.severity, scope=rule.scope.value,
            pid=p.pid if p is not None else None, comm=p.comm if p is not None else None,  # type: ignore[union-attr]
            start=p.start if p is not None else None, message=rule.message.render(context),  # type: ignore[union-attr]
            labels=labels,  # type: ignore[arg-type]
            values=shown, reason=reason, proc=p, wall=state.wall,  # type: ignore[arg-type]
            trail=trail)


def _labels(rule: CompiledRule, inst: Instance | None, kind: str,
            context: dict[str, object]) -> Mapping[str, str]:
    """The labels of an alert: those with placeholders are rendered when an episode of
    the instance begins and kept until it resolves, so that Alertmanager sees one alert."""
    if not rule.label_templates:
        return rule.labels
    if inst is not None and inst.labels is not None and kind != "pending":
        return inst.labels
    labels = rule.labels_for(context)
    if inst is not None:
        inst.labels = labels
    return labels


def _observed(metric: str, table: ProcTable) -> Iterable[Proc]:
    """The processes that may hold a new value of a windowed process metric.

    Rates and ages change with no event: a rate drops when its events leave
    the trailing second (the process is then still in ``rate_hot``), an age
    grows every tick.
    """
    changed = table.changed(_observed_groups(metric))
    if not METRICS[metric].time_varying:
        return changed
    if metric == "age_s":
        return list(table.live())
    return changed | table.rate_hot


@functools.cache
def _observed_groups(metric: str) -> frozenset[str]:
    """Change sets whose members may hold a new value of ``metric`` (meta never does)."""
    groups = change_groups(metric) - {"meta"}
    return groups or frozenset({"meta"})


def _same(a: CompiledRule, b: CompiledRule) -> bool:
    """Whether two compilations of a rule evaluate identically (state can carry over)."""
    keys = ("scope", "cond_text", "clear_text", "for_s", "clear_for_s", "keep_firing_for_s",
            "cooldown_s", "severity", "boundary")
    return all(getattr(a, k) == getattr(b, k) for k in keys)
