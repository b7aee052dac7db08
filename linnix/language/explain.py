"""One compiled rule in words: what ``linnix explain`` prints for each rule.

The whole plan's explanation (the engine's requirements after the rules) is
``linnix/tools/explain.py``'s; a rule's part is here, where the daemon can
reach it too (the dashboard's rules page shows it beside the rule's text).
"""

from __future__ import annotations

from ..plan import CompiledRule
from ..terminal import printable

__all__ = ["explain_rule", "rule_lines", "secs"]


def secs(value: float) -> str:
    """A duration as explain shows it: 0s, 250ms, 5s."""
    if value == 0:
        return "0s"
    if value < 1:
        return f"{value * 1000:g}ms"
    return f"{value:g}s"


def rule_lines(rule: CompiledRule) -> list[str]:
    """The rule's lines of ``linnix explain``: its name and place, then one clause a line."""
    state = "" if rule.enabled else "  [disabled: checked, never evaluated]"
    lines = [f"rule {rule.name}  ({rule.where}){state}"]
    if rule.description:
        lines.append(f"  description  {rule.description}")
    if rule.runbook:
        lines.append(f"  runbook      {printable(rule.runbook)}")
    reason = "" if rule.scope_reason == "declared" else f"  ({rule.scope_reason})"
    lines.append(f"  scope        {rule.scope.value}{reason}")
    if rule.trigger is not None:
        lines.extend(_event_lines(rule))
        return lines
    lines.append(f"  when         {rule.cond_text}")
    if rule.boundary is not None:
        lines.append(f"  boundary     {rule.boundary.text}  (subtree totals stop at these "
                     "processes)")
    lines.append(f"  for          {secs(rule.for_s)}")
    if rule.clear_text is not None:
        lines.append(f"  clear when   {rule.clear_text}  for {secs(rule.clear_for_s)}")
    else:
        lines.append("  clear when   the condition is false")
    if rule.keep_firing_for_s:
        lines.append(f"  keep firing  {secs(rule.keep_firing_for_s)}")
    if rule.cooldown_s:
        lines.append(f"  cooldown     {secs(rule.cooldown_s)}")
    lines += _outcome_lines(rule)
    if rule.time_varying:
        lines.append("  re-evaluated every tick (reads rates, ages or windows)")
    return lines


def _outcome_lines(rule: CompiledRule) -> list[str]:
    """What any rule ends with: its severity, actions, labels, tags, message and reads."""
    actions = ", ".join(a.describe() for a in rule.actions) or "alert"
    mode = "  (mode monitor: never runs without approval)" if rule.mode_monitor else ""
    lines = [f"  severity     {rule.severity}", f"  actions      {actions}{mode}"]
    if rule.labels:
        labels = ", ".join(f'{k}="{v}"' for k, v in rule.labels.items())
        lines.append(f"  labels       {labels}")
    if rule.tags:
        lines.append(f"  tags         {', '.join(rule.tags)}")
    lines.append(f"  message      {rule.message.source}")
    lines.append(f"  reads        {', '.join(rule.inputs) or '(nothing)'}")
    return lines


def _event_lines(rule: CompiledRule) -> list[str]:
    """An event rule: judged at each of its events, never at ticks; its flood control."""
    lines = [f"  on           {rule.trigger}  (judged once at each {rule.trigger} event, at its "
             "own time; never at ticks)",
             f"  when         {rule.cond_text}"]
    if rule.cooldown_s:
        key = ", ".join(rule.cooldown_by) or "exe (comm when the exe is not known)"
        lines.append(f"  cooldown     {secs(rule.cooldown_s)} by {key}")
    lines.append(f"  max_rate     {rule.max_rate} alert(s) per {secs(rule.max_rate_per_s)}")
    lines += _outcome_lines(rule)
    return lines


def explain_rule(rule: CompiledRule) -> str:
    """:func:`rule_lines` as one text."""
    return "\n".join(rule_lines(rule)) + "\n"
