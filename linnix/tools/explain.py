"""``linnix explain``: the plan in readable form (text or JSON); each rule as
:mod:`linnix.language.explain` words it."""

from __future__ import annotations

from typing import Any

from ..engine.tally import MAX_KEYS
from ..language.explain import rule_lines, secs
from ..names import METRICS, Need
from ..plan import Plan

__all__ = ["explain_json", "explain_text"]


def explain_text(plan: Plan) -> str:
    """Every rule, then what the engine must compute for the plan."""
    out: list[str] = []
    for rule in plan.rules:
        out.extend(rule_lines(rule))
        out.append("")
    if not plan.rules:
        out.append("(no rules)")
        out.append("")
    out.append("engine requirements")
    metrics = sorted(plan.metrics)
    out.append(f"  metrics        {', '.join(metrics) or '(none)'}")
    windows = ", ".join(f"{m} over {secs(w)}" for m, w in sorted(plan.windows))
    out.append(f"  windows        {windows or '(none)'}")
    out.extend(_counting_text(plan))
    out.append(f"  subtree pass   {'yes' if plan.needs_subtree else 'no'}")
    out.append(f"  fd sampling    {'yes' if plan.needs_fds else 'no'}")
    sampled = [need.value for need in Need if need in plan.needs and need not in
               (Need.SUBTREE, Need.FDS)]
    out.append(f"  also sampled   {', '.join(sampled) or '(nothing else)'}")
    by_scope: dict[str, list[str]] = {}
    for rule in plan.active:
        kind = rule.scope.value if rule.trigger is None else f"on {rule.trigger}"
        by_scope.setdefault(kind, []).append(rule.name)
    for scope, names in sorted(by_scope.items()):
        out.append(f"  {scope + ' rules':<14} {', '.join(names)}")
    return "\n".join(out) + "\n"


def _counting_text(plan: Plan) -> list[str]:
    """What the engine counts for the plan (nothing is said when it counts nothing)."""
    lines = []
    if plan.counts:
        terms = ", ".join(c.text for c in plan.counts)
        lines.append(f"  counts         {terms}  (judged again on each process that changes)")
    if plan.event_counters:
        kept = ", ".join(f"{c.kind} by {c.field} over {secs(c.span_s)}"
                         for c in plan.event_counters)
        lines.append(f"  event counts   {kept}  (at most {MAX_KEYS} values each, oldest "
                     "evicted first)")
    return lines


def explain_json(plan: Plan) -> dict[str, Any]:
    rules = []
    for r in plan.rules:
        rules.append({
            "name": r.name, "path": r.path, "line": r.line, "enabled": r.enabled,
            "scope": r.scope.value, "scope_reason": r.scope_reason, "condition": r.cond_text,
            "for_s": r.for_s, "clear": r.clear_text, "clear_for_s": r.clear_for_s,
            "keep_firing_for_s": r.keep_firing_for_s, "cooldown_s": r.cooldown_s,
            "severity": r.severity, "description": r.description, "runbook": r.runbook,
            "labels": dict(r.labels),
            "tags": list(r.tags), "message": r.message.source,
            "actions": [a.describe() for a in r.actions], "mode_monitor": r.mode_monitor,
            "reads": list(r.inputs), "time_varying": r.time_varying,
            "boundary": r.boundary.text if r.boundary is not None else None,
            **({} if r.trigger is None else {
                "on": r.trigger, "cooldown_by": list(r.cooldown_by), "max_rate": r.max_rate,
                "max_rate_per_s": r.max_rate_per_s}),
        })
    return {
        "rules": rules,
        "requirements": {
            "metrics": sorted(plan.metrics),
            "windows": [{"metric": m, "window_s": w} for m, w in sorted(plan.windows)],
            "subtree_pass": plan.needs_subtree,
            "fd_sampling": plan.needs_fds,
            "needs": sorted(need.name.lower() for need in plan.needs),
            "counts": [c.text for c in plan.counts],
            "event_counters": [{"kind": c.kind, "field": c.field, "window_s": c.span_s}
                               for c in plan.event_counters],
        },
        "names": {name: METRICS[name].help for name in sorted(plan.metrics)},
    }
