"""``linnix replay TRACE --rules NEW --baseline OLD``: what a rule change changes.

The trace is replayed twice, once with each rule set, and their alerts and
proposed actions are matched: an alert by rule, state and instance (pid and
start), an action by rule, action and the instance that fired it.  Items of
one key are paired in time order (the first with the first); what is left
over is only in NEW or only in OLD, and a pair whose times differ by more
than the tolerance moved.  Nothing else (messages, values, targets) is
compared: the question is whether the change fires where and when it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

import attrs

from ..engine.core import Output
from ..engine.evaluator import Alert, Proposal
from ..plan import Plan
from ..terminal import printable
from ..timefmt import seconds
from .replay import replay

__all__ = ["Diff", "compare", "diff_json", "diff_text", "run_both"]

Key = tuple[str, str, str, int | None, float | None, str | None]


@attrs.frozen
class Item:
    """An alert or an action, reduced to what is matched and shown."""

    key: Key  # (type, rule, state or action, instance pid, instance start)
    ts: float
    comm: str | None
    json: dict[str, Any] = attrs.field(eq=False)


@attrs.define
class Diff:
    """The outcome: items only in NEW, only in OLD, moved (old, new) and matched."""

    only_new: list[Item] = attrs.field(factory=list)
    only_old: list[Item] = attrs.field(factory=list)
    moved: list[tuple[Item, Item]] = attrs.field(factory=list)
    matched: int = 0
    tolerance_s: float = 1.0

    @property
    def differs(self) -> bool:
        return bool(self.only_new or self.only_old or self.moved)


def _item(out: Output) -> Item:
    if isinstance(out, Alert):
        key: Key = ("alert", out.rule, out.state, out.pid, out.start, out.cgroup)
        return Item(key, out.ts, out.comm, out.to_json())
    assert isinstance(out, Proposal)
    key = ("action", out.rule, out.action.name, out.instance_pid, out.instance_start,
           out.instance_cgroup)
    return Item(key, out.ts, None, out.to_json())


def run_both(path: str, new: Plan, old: Plan, *, tick_s: float, skip_invalid: bool = False,
             until: float | None = None) -> tuple[list[Item], list[Item]]:
    """The items of the trace under each rule set (NEW's, then OLD's)."""
    sides: list[list[Item]] = []
    for plan in (new, old):
        items: list[Item] = []

        def sink(batch: Sequence[Output], items: list[Item] = items) -> None:
            items.extend(_item(out) for out in batch)

        replay(path, plan, sink, tick_s=tick_s, skip_invalid=skip_invalid, until=until)
        sides.append(items)
    return sides[0], sides[1]


def compare(new: list[Item], old: list[Item], tolerance_s: float) -> Diff:
    """Pair the items of each key in time order; the rest are only on one side."""
    diff = Diff(tolerance_s=tolerance_s)
    by_key: dict[Key, tuple[list[Item], list[Item]]] = {}
    for item in new:
        by_key.setdefault(item.key, ([], []))[0].append(item)
    for item in old:
        by_key.setdefault(item.key, ([], []))[1].append(item)
    for news, olds in by_key.values():
        for n, o in zip(news, olds, strict=False):
            if abs(n.ts - o.ts) > tolerance_s + 1e-9:
                diff.moved.append((o, n))
            else:
                diff.matched += 1
        diff.only_new.extend(news[len(olds):])
        diff.only_old.extend(olds[len(news):])
    diff.only_new.sort(key=_order)
    diff.only_old.sort(key=_order)
    diff.moved.sort(key=lambda pair: _order(pair[1]))
    return diff


def _order(item: Item) -> tuple[float, str, bool, str, int, float, str]:
    """By time, rule, an alert before the action it proposed, instance."""
    kind, rule, what, pid, start, cgroup = item.key
    return (item.ts, rule, kind == "action", what, -1 if pid is None else pid,
            -1.0 if start is None else start, cgroup or "")


def diff_json(diff: Diff) -> list[dict[str, Any]]:
    """The differences as JSON objects, then a summary."""
    out: list[dict[str, Any]] = [{"type": "only_new", "item": i.json} for i in diff.only_new]
    out += [{"type": "only_old", "item": i.json} for i in diff.only_old]
    out += [{"type": "moved", "old_ts": seconds(o.ts), "new_ts": seconds(n.ts),
             "delta_s": seconds(n.ts - o.ts), "item": n.json} for o, n in diff.moved]
    out.append({"type": "baseline_summary", "only_new": len(diff.only_new),
                "only_old": len(diff.only_old), "moved": len(diff.moved),
                "matched": diff.matched, "tolerance_s": seconds(diff.tolerance_s),
                "differs": diff.differs})
    return out


def _what(item: Item) -> str:
    kind, rule, what, pid, _, cgroup = item.key
    who = (cgroup or "host") if pid is None else f"{item.comm or '?'}[{pid}]" \
        if kind == "alert" else f"[{pid}]"
    label = what.upper() if kind == "alert" else f"ACTION {what}"
    return f"{label:<9} {rule:<18} {who}"


def diff_text(diff: Diff, out: TextIO) -> None:
    """``+`` only in NEW, ``-`` only in OLD, ``~`` moved; then a line of counts."""
    for item in diff.only_new:
        out.write(printable(f"+ {item.ts:10.3f}s  {_what(item)}") + "\n")
    for item in diff.only_old:
        out.write(printable(f"- {item.ts:10.3f}s  {_what(item)}") + "\n")
    for o, n in diff.moved:
        out.write(printable(f"~ {n.ts:10.3f}s  {_what(n)}  (was {o.ts:.3f}s, "
                            f"{n.ts - o.ts:+.3f}s)") + "\n")
    tol = f"{diff.tolerance_s:g}s"
    if not diff.differs:
        out.write(f"no difference: {diff.matched} alert(s) and action(s) match "
                  f"(tolerance {tol})\n")
        return
    out.write(f"\n{len(diff.only_new)} only in NEW, {len(diff.only_old)} only in OLD, "
              f"{len(diff.moved)} moved by more than {tol}, {diff.matched} matched\n")
