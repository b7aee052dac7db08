"""``linnix replay --why RULE``: one rule's account of itself, tick by tick, then a summary.

The replay is the ordinary one (:func:`linnix.runtime.replay.replay`), every
tick run, with a :class:`~linnix.engine.why.WhyWatch` looking at the rule
after each.  Its records are printed as they come: as text for people, or as
JSON lines (``--format jsonl``), the summary last.  The summary says how often
the rule fired in the range, and when it never did, the tick at which most of
its condition held together and what was missing then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, TextIO

import orjson

from ..engine.core import Core, Output
from ..engine.why import WhyWatch
from ..plan import Plan, WhyPart
from ..terminal import printable
from .replay import ReplayResult, replay

__all__ = ["WhyRange", "fmt", "jsonl_writer", "reason_text", "replay_why", "summary_json",
           "text_record", "text_summary", "text_writer"]

Record = dict[str, Any]


class WhyRange:
    """What to look at: the rule, its parts, a pid and a time range (None: all)."""

    def __init__(self, rule: str, parts: tuple[WhyPart, ...], pid: int | None = None,
                 start: float | None = None, end: float | None = None) -> None:
        self.rule = rule
        self.parts = parts
        self.pid = pid
        self.start = start
        self.end = end


def replay_why(path: str, plan: Plan, what: WhyRange, emit: Callable[[Record], None], *,
               tick_s: float, skip_invalid: bool = False, until: float | None = None,
               progress: TextIO | None = None) -> tuple[ReplayResult, WhyWatch]:
    """Replay ``path`` and hand each of the rule's records to ``emit``."""
    watches: list[WhyWatch] = []

    def attach(core: Core) -> None:
        watch = WhyWatch(core, what.rule, what.parts, emit, pid=what.pid, start=what.start,
                         end=what.end)
        core.after_tick = watch
        watches.append(watch)

    def ignore(batch: Sequence[Output]) -> None:
        """The alerts themselves are in the records (their transitions)."""

    result = replay(path, plan, ignore, tick_s=tick_s, skip_invalid=skip_invalid,
                    until=until, progress=progress, watch=attach)
    return result, watches[0]


def jsonl_writer(out: BinaryIO) -> Callable[[Record], None]:
    """Each record as one JSON line on ``out``."""
    dumps = orjson.dumps

    def emit(record: Record) -> None:
        out.write(dumps(record) + b"\n")

    return emit


def summary_json(watch: WhyWatch) -> Record:
    """The summary as an object: the closest tick and longest lapse only if it never fired."""
    quiet = not watch.fired
    return {"type": "why_summary", "rule": watch.name, "ticks": watch.ticks,
            "reported": watch.reported, "fired": watch.fired,
            "closest": watch.best if quiet else None,
            "longest_lapse": watch.longest_lapse if quiet else None}


# ---- text ---------------------------------------------------------------------------

def text_writer(out: TextIO) -> Callable[[Record], None]:
    """Each record as a few readable lines on ``out``."""
    def emit(record: Record) -> None:
        out.write(text_record(record))

    return emit


_INDENT = " " * 13


def text_record(record: Record) -> str:
    """A record as a few readable lines: who and state; the parts; the values; what
    blocked it."""
    if record["type"] == "why_more":
        return f"{_INDENT}... and {record['count']} more instance(s) (--pid shows one)\n"
    who = "host" if record["pid"] is None else f"{record['comm'] or '?'}[{record['pid']}]"
    lines = [f"{record['ts']:10.3f}s  {who:<22} {_state(record)}"]
    parts = [f"{'' if p['kind'] == 'when' else 'unless '}{p['text']}: "
             f"{'held' if p['held'] else 'no'}" for p in record["parts"]]
    lines.append(_INDENT + "; ".join(parts))
    if record["values"]:
        lines.append(_INDENT + ", ".join(f"{k}={fmt(v)}" for k, v in record["values"].items()))
    blocked = record.get("blocked")
    if blocked:
        lines.append(_INDENT + "blocked: " + "; ".join(reason_text(r) for r in blocked))
    return "".join(printable(line) + "\n" for line in lines)


def _state(record: Record) -> str:
    state, moved = record["state"], record["transition"]
    if state == "pending":
        done = record["for"]
        text = f"pending {fmt(done['elapsed'])}s of {fmt(done['of'])}s"
        return text + (" (now)" if moved == "pending" else "")
    if state == "firing":
        if moved == "firing":
            return "FIRING (now)"
        text = f"firing since {record['since']:.3f}s"
        clearing = record.get("clearing")
        if clearing is not None:
            text += f", clearing {fmt(clearing['elapsed'])}s of {fmt(clearing['of'])}s"
        return text
    text = "RESOLVED (now)" if moved == "resolved" else "quiet"
    lapsed = record.get("lapsed")
    if lapsed is not None:
        text += f" (lapsed after pending {fmt(lapsed['elapsed'])}s of {fmt(lapsed['of'])}s)"
    return text


def reason_text(reason: Record) -> str:
    """One blocking reason, for people."""
    kind = reason["kind"]
    if kind == "compare":
        text = f"{reason['left_text']} {fmt(reason['left'])}, needs {reason['op']} " \
               f"{reason['right_text']}"
        return text if reason["right_literal"] else text + f" ({fmt(reason['right'])})"
    if kind == "no_value":
        return f"{', '.join(reason['names'])}: no value yet ({reason['text']})"
    if kind == "false":
        shown = ", ".join(f"{k} {fmt(v)}" for k, v in reason["values"].items())
        return f"{reason['text']} is false" + (f" ({shown})" if shown else "")
    if kind == "unless":
        return f"unless {reason['text']} held"
    if kind == "descendant":
        return f"{reason['comm'] or '?'}[{reason['pid']}] below it holds too " \
               "(the deepest is reported)"
    if kind == "boundary":
        return f"its subtree totals stop at {reason['comm'] or '?'}[{reason['pid']}], " \
               "a wall of its boundary"
    if kind == "cooldown":
        return f"cooldown until {reason['until']:.3f}s"
    return f"{kind}: " + ", ".join(f"{k} {fmt(v)}" for k, v in reason.items() if k != "kind")


def fmt(value: object) -> str:
    """A value as the rule language writes it."""
    if value is None:
        return "(no value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, (tuple, list, frozenset, set)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def text_summary(watch: WhyWatch, out: TextIO) -> None:
    """How often the rule fired; when never, the closest tick and what was missing."""
    name = watch.name
    if not watch.ticks:
        out.write(f"\nwhy {name}: no tick in range\n")
        return
    if not watch.reported:
        alive = "" if watch.pid is None else f" (no live process {watch.pid})"
        out.write(f"\nwhy {name}: no instance to report in {watch.ticks} tick(s){alive}\n")
        return
    if watch.fired:
        out.write(f"\nwhy {name}: fired {watch.fired} time(s) in {watch.ticks} tick(s)\n")
        return
    out.write(f"\nwhy {name}: never fired in {watch.ticks} tick(s)\n")
    best = watch.best
    if best is None:  # ticks with no instance to look at (no live process)
        return
    who = "" if best["pid"] is None else f", {best['comm'] or '?'}[{best['pid']}]"
    accounts = "; ".join(_account_text(a) for a in best["parts"])
    pending = best["for"]
    state = "" if pending is None else \
        f", pending {fmt(pending['elapsed'])}s of {fmt(pending['of'])}s"
    out.write(printable(f"closest at {best['ts']:.3f}s{who} ({best['held']} of "
                        f"{best['of']} parts held{state}): {accounts}") + "\n")
    lapse = watch.longest_lapse
    if lapse is not None:
        done = lapse["lapsed"]
        who = "" if lapse["pid"] is None else f", {lapse['comm'] or '?'}[{lapse['pid']}]"
        reasons = "; ".join(reason_text(r) for r in lapse.get("blocked", ()))
        out.write(printable(f"longest pending {fmt(done['elapsed'])}s of {fmt(done['of'])}s"
                            f"{who}, lapsed at {lapse['ts']:.3f}s: {reasons}") + "\n")


def _account_text(account: Record) -> str:
    if account["kind"] == "unless":
        return f"unless {account['text']} {'held' if account['held'] else 'ok'}"
    if not account["ok"]:
        return reason_text(account["reason"])
    if "left_text" in account:
        return f"{account['left_text']} {fmt(account['left'])} ok"
    return f"{account['text']} ok"
