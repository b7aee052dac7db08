"""Why one rule did or did not fire: its state and the parts of its condition, tick by tick.

:class:`WhyWatch` is called by :class:`~linnix.engine.core.Core` after each tick
(``Core.after_tick``) and looks at one rule: the value of every name it reads,
whether each part of its condition held (the conjuncts of ``when``, each
``unless``; compiled apart by :mod:`linnix.language.why`), its state with the
``for`` progress, and, while it is quiet, what blocked it.  It records; it
changes nothing in the engine, and the engine pays nothing without it.

Which instances a tick reports: with a pid, that process's; for a system rule,
the host's; otherwise every instance the rule holds (pending, firing, cooling
down) or whose condition holds, at most :data:`SHOWN_MAX` of them, and when
there is none, the live process that came closest (the most parts held).

Event rules (``on exec|exit|fork``, evaluated at events, not ticks) are to call
the watch with the event's time after evaluating one; their flood control
answers in :func:`_rate_limited`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..names import METRICS, Scope
from ..plan import WhyPart
from ..timefmt import seconds
from .core import Core
from .evaluator import Alert
from .proctable import Proc, ProcTable
from .rulestate import EPS, FIRING, PENDING, Instance, RuleState, order

Key = Proc | None  # what --why follows: a process, or the host (never a cgroup rule)

__all__ = ["SHOWN_MAX", "WALK_MAX", "WhyWatch", "part_reason"]

SHOWN_MAX = 10  # instances reported per tick without --pid (the rest are counted)
WALK_MAX = 10_000  # processes looked at below an instance for a boundary's wall
_STATES = {PENDING: "pending", FIRING: "firing"}

Record = dict[str, Any]


class WhyWatch:
    """Records, after each tick in ``[start, end]``, why rule ``name`` is in its state."""

    def __init__(self, core: Core, name: str, parts: tuple[WhyPart, ...],
                 emit: Callable[[Record], None], *, pid: int | None = None,
                 start: float | None = None, end: float | None = None) -> None:
        self.core = core
        self.name = name
        self.parts = parts
        self.emit = emit
        self.pid = pid
        self.start = start
        self.end = end
        self.ticks = 0  # ticks in range
        self.reported = 0  # instances reported, over all ticks
        self.fired = 0  # firing transitions reported
        self.best: Record | None = None  # the closest tick: its parts' accounts
        self._best_score: tuple[float, float, float, float] | None = None
        self.longest_lapse: Record | None = None  # the lapse of the longest pending
        self._last: dict[tuple[int, float | None] | None, Record] = {}

    def __call__(self, now: float) -> None:
        if (self.start is not None and now < self.start - EPS) or (
                self.end is not None and now > self.end + EPS):
            return
        state = next((s for s in self.core.evaluator.rules if s.rule.name == self.name), None)
        if state is None:
            return
        table = self.core.table
        keys, more = self._keys(state, table, now)
        moves = self._transitions(now)
        seen: dict[tuple[int, float | None] | None, Record] = {}
        self.ticks += 1
        for key in keys:
            ident = None if key is None else key.identity()
            record = self._record(state, table, key, now, moves.get(ident))
            self._lapsed(record, self._last.get(ident))
            seen[ident] = record
            self._score(record, key, table.host, now)
            self.reported += 1
            self.emit(record)
        if more:
            self.emit({"type": "why_more", "ts": seconds(now), "rule": self.name, "count": more})
        self._last = seen

    # ---- which instances --------------------------------------------------------------
    def _keys(self, state: RuleState, table: ProcTable, now: float) -> tuple[list[Key], int]:
        if state.rule.scope is Scope.SYSTEM:
            return [None], 0
        if self.pid is not None:
            return [p for p in table.live() if p.pid == self.pid], 0
        held: set[Any] = {k for k in state.instances if k is not None and k.alive} | state.true
        if not held:
            best = max(table.live(), key=lambda p: (self._held(p, table, now),
                                                    [-x for x in order(p)]), default=None)
            return ([] if best is None else [best]), 0
        ranked = sorted(held, key=order)
        return list(ranked[:SHOWN_MAX]), max(0, len(ranked) - SHOWN_MAX)

    def _held(self, p: Key, table: ProcTable, now: float) -> int:
        """How many parts are as the rule needs them (a ``when`` held, an ``unless`` not)."""
        return sum(_holds(part, p, table.host, now) == (part.kind == "when") for part in self.parts)

    def _transitions(self, now: float) -> dict[tuple[int, float | None] | None, str]:
        """The rule's alerts of this tick, by instance (the core's output since the last
        drain, newest last)."""
        out: dict[tuple[int, float | None] | None, str] = {}
        for item in reversed(self.core.output):
            if item.ts < now - EPS:
                break
            if isinstance(item, Alert) and item.rule == self.name:
                ident = None if item.pid is None else (item.pid, item.start)
                out.setdefault(ident, item.state)
        return out

    # ---- one record -------------------------------------------------------------------
    def _record(self, state: RuleState, table: ProcTable, key: Key, now: float,
                moved: str | None) -> Record:
        rule = state.rule
        host = table.host
        try:
            values = rule.values(key, host, now)
        except Exception:  # generated code must not stop the replay
            values = {}
        parts = [{"kind": part.kind, "text": part.text, "held": _holds(part, key, host, now)}
                 for part in self.parts]
        inst = state.instances.get(key)
        record: Record = {
            "type": "why", "ts": seconds(now), "rule": rule.name,
            "pid": None if key is None else key.pid, "comm": None if key is None else key.comm,
            "start": None if key is None else seconds(key.start),
            "values": {k: values.get(k) for k in rule.inputs},
            "when": all(p["held"] for p in parts if p["kind"] == "when"),
            "unless": [p["held"] for p in parts if p["kind"] == "unless"],
            "parts": parts,
            "state": "inactive" if inst is None else _STATES.get(inst.state, "inactive"),
            "transition": moved,
        }
        record.update(_progress(state, inst, now))
        if record["state"] == "inactive":
            record["blocked"] = self._blocked(state, table, key, inst, parts, now)
        if moved == "firing":
            self.fired += 1
        return record

    def _blocked(self, state: RuleState, table: ProcTable, key: Key, inst: Instance | None,
                 parts: list[Record], now: float) -> list[Record]:
        """What kept a quiet instance quiet, most decisive first."""
        if inst is not None and now < inst.cooldown_until - EPS:
            return [{"kind": "cooldown", "until": seconds(inst.cooldown_until)}]
        limited = _rate_limited(state, key, now)
        if limited is not None:
            return [limited]
        out: list[Record] = []
        whole = all(p["held"] == (p["kind"] == "when") for p in parts)
        if whole and key is not None and key not in state.effective:
            below = _holding_descendant(state, key)
            if below is not None:
                out.append({"kind": "descendant", "pid": below.pid, "comm": below.comm})
        failed = []
        for part, shown in zip(self.parts, parts, strict=True):
            if part.kind == "unless" and shown["held"]:
                out.append({"kind": "unless", "text": part.text})
            elif part.kind == "when" and not shown["held"]:
                out.append(part_reason(part, key, table.host, now))
                failed.append(part)
        wall = _wall_below(state, key, failed, table.host, now)
        if wall is not None:
            out.append(wall)
        return out

    def _lapsed(self, record: Record, last: Record | None) -> None:
        """Say so when a pending instance went back to inactive (it never fired)."""
        if last is not None and last["state"] == "pending" and record["state"] == "inactive":
            record["lapsed"] = last["for"]
            longest = self.longest_lapse
            if longest is None or last["for"]["elapsed"] > longest["lapsed"]["elapsed"]:
                self.longest_lapse = record

    def _score(self, record: Record, key: Key, host: object, now: float) -> None:
        """Keep the closest record: the most parts held; among those, the fewest names
        with no value, then the smallest shortfall of its comparisons, then the longest
        pending (the first of equals)."""
        held = sum(p["held"] == (p["kind"] == "when") for p in record["parts"])
        if self._best_score is not None and held < self._best_score[0]:
            return
        accounts = [_account(part, shown["held"], key, host, now)
                    for part, shown in zip(self.parts, record["parts"], strict=True)]
        reasons = [a["reason"] for a in accounts if "reason" in a]
        pending = record.get("for")
        score = (held, -sum(r["kind"] == "no_value" for r in reasons),
                 -sum(_shortfall(r) for r in reasons),
                 pending["elapsed"] if pending is not None else -1.0)
        if self._best_score is not None and score <= self._best_score:
            return
        self._best_score = score
        self.best = {"ts": record["ts"], "pid": record["pid"], "comm": record["comm"],
                     "state": record["state"], "for": pending, "held": held,
                     "of": len(self.parts),
                     "parts": accounts}


def _shortfall(reason: Record) -> float:
    """How far a false comparison is from holding, relative to its bound (0 otherwise)."""
    if reason["kind"] != "compare":
        return 0.0
    left, right = reason["left"], reason["right"]
    if not (isinstance(left, (int, float)) and isinstance(right, (int, float))):
        return 0.0
    return abs(left - right) / max(abs(right), 1e-9)


def _account(part: WhyPart, held: bool, key: Key, host: object, now: float) -> Record:
    """One part at the closest tick: whether it was as the rule needs it, and why not."""
    ok = held == (part.kind == "when")
    out: Record = {"kind": part.kind, "text": part.text, "held": held, "ok": ok}
    if part.kind == "when" and not ok:
        out["reason"] = part_reason(part, key, host, now)
    elif part.op is not None:
        out["left_text"] = part.left_text
        out["left"] = _read(part.left, key, host, now)
    return out


def _holds(part: WhyPart, key: Key, host: object, now: float) -> bool:
    try:
        return bool(part.cond(key, host, now))
    except Exception:  # generated code must not stop the replay: a failure is not a hold
        return False


def _read(getter: Any, key: Key, host: object, now: float) -> object:
    try:
        return getter(key, host, now)
    except Exception:
        return None


def part_reason(part: WhyPart, key: Key, host: object, now: float) -> Record:
    """Why one ``when`` part did not hold: a name with no value, or a comparison with
    the values on each side, or the values the part read."""
    try:
        values = part.values(key, host, now)
    except Exception:
        values = {}
    missing = [k for k, v in values.items() if v is None]
    if part.op is None:
        if missing:
            return {"kind": "no_value", "text": part.text, "names": missing}
        return {"kind": "false", "text": part.text, "values": values}
    left, right = _read(part.left, key, host, now), _read(part.right, key, host, now)
    if left is None or right is None or missing:  # the sides as written, where they can be
        names = [t for t, v in ((part.left_text, left), (part.right_text, right)) if v is None]
        return {"kind": "no_value", "text": part.text, "names": names or missing}
    return {"kind": "compare", "text": part.text, "left_text": part.left_text, "left": left,
            "op": part.op, "right_text": part.right_text, "right": right,
            "right_literal": part.right_literal}


def _progress(state: RuleState, inst: Instance | None, now: float) -> Record:
    """``for`` progress of a pending instance, ``clear`` progress of a firing one."""
    if inst is None:
        return {}
    rule = state.rule
    if inst.state == PENDING:
        return {"for": {"elapsed": seconds(now - inst.since), "of": rule.for_s}}
    if inst.state == FIRING:
        out: Record = {"since": seconds(inst.fired_at)}
        if inst.clear_since is not None:
            hold = max(rule.clear_for_s, rule.keep_firing_for_s)
            out["clearing"] = {"elapsed": seconds(now - inst.clear_since), "of": hold}
        return out
    return {}


def _rate_limited(state: RuleState, key: Key, now: float) -> Record | None:
    """The ``max_rate`` of an event rule that suppressed this match, when there is one.

    Event rules (``on exec|exit|fork``) bring ``max_rate``; their flood control
    should answer here with ``{"kind": "max_rate", ...}``.  Tick rules have none.
    """
    return None


def _holding_descendant(state: RuleState, key: Proc) -> Proc | None:
    """The first process below ``key`` (by pid) whose condition holds too: the deepest
    root reported instead of ``key``."""
    for p in sorted(state.true, key=order):
        if p is not key and any(node is key for node in p.lineage()):
            return p  # type: ignore[no-any-return]
    return None


def _wall_below(state: RuleState, key: Key, failed: list[WhyPart], host: object,
                now: float) -> Record | None:
    """The first wall below an instance, when a part that failed reads its subtree
    totals: what the rule's ``boundary`` kept out of them."""
    if state.rule.boundary is None or key is None or state.wall is None:
        return None
    if not any(_is_subtree(name) for part in failed for name in _names(part, key, host, now)):
        return None
    for i, node in enumerate(key.descendants()):
        if i >= WALK_MAX:
            break
        if node.bounded[state.wall].wall:
            return {"kind": "boundary", "pid": node.pid, "comm": node.comm}
    return None


def _names(part: WhyPart, key: Key, host: object, now: float) -> Iterable[str]:
    try:
        return list(part.values(key, host, now))
    except Exception:
        return []


def _is_subtree(name: str) -> bool:
    """Whether an input (a name or a window term over one) reads subtree totals."""
    inner = name.partition("(")[2].split(",")[0].strip() if "(" in name else name
    metric = METRICS.get(inner)
    return metric is not None and metric.scope is Scope.SUBTREE
