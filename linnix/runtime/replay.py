"""Replay a recorded trace through the engine on the trace's own clock.

:func:`replay` reads the trace in batches and feeds them to the same engine
core the daemon runs; time is the events' own, so ticks run as the events
pass them.  Every result goes to a sink.  Nothing is ever executed: actions
are only proposed.  The output is a deterministic function of the trace and
the rules, but for the replay speed the summaries report.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO, TextIO

import attrs

from ..engine import trace as t
from ..engine.core import DEFAULT_TICK_S, Core, Output
from ..engine.evaluator import Alert, Proposal
from ..errors import TraceError
from ..plan import Plan
from ..terminal import printable
from ..timefmt import seconds

__all__ = ["ReplayResult", "Timeline", "replay", "summary_json"]

PROGRESS_MIN_BYTES = 20 * 1024 * 1024  # show progress for traces at least this big


@attrs.define
class ReplayResult:
    """What a replay did, for the summary."""

    core: Core
    reader: t.TraceReader
    wall_s: float
    stopped_at: float | None = None  # --until cut the trace here

    @property
    def events(self) -> int:
        return self.core.table.events


def replay(path: str, plan: Plan, sink: Callable[[Sequence[Output]], None], *,
           tick_s: float = DEFAULT_TICK_S, skip_invalid: bool = False,
           until: float | None = None, progress: TextIO | None = None,
           watch: Callable[[Core], None] | None = None,
           attach: Callable[[Core], None] | None = None, history: bool = False) -> ReplayResult:
    """Replay one trace file; raise TraceError for invalid input (unless skipped).

    What the engine produced before an invalid line, and at the ticks up to
    it, reaches ``sink`` before the error is raised.  ``watch`` is given the
    core before the first event (``replay --why`` hooks its ticks there); it
    runs every tick, none skipped as quiet, so that each one can be looked at.
    ``attach`` is given it too, but quiet ticks are still skipped (``replay
    --analyze``: nothing fires at them); ``history`` keeps the values that led
    to each alert, as the daemon does.
    """
    reader = t.TraceReader(path, skip_invalid)
    core = Core(plan, tick_s, history=history, skip_idle=watch is None)
    for hook in (watch, attach):
        if hook is not None:
            hook(core)
    meter = _Progress(path, reader, progress)
    started = time.perf_counter()
    failure: BaseException | None = None
    with _relaxed_gc(), t.open_trace(path) as stream:
        try:
            _feed(reader, stream, core, sink, until, meter.tick)
        except (TraceError, OSError, EOFError, zlib.error) as err:  # zlib: a corrupt .gz
            failure = err
        core.finish()
        _flush(core, sink)
    meter.done()
    if failure is not None:
        if isinstance(failure, TraceError):
            raise failure
        raise TraceError(path, reader.lines, f"cannot read: {failure}")
    return ReplayResult(core, reader, time.perf_counter() - started, until)


def _feed(reader: t.TraceReader, stream: BinaryIO, core: Core,
          sink: Callable[[Sequence[Output]], None], until: float | None,
          on_batch: Callable[[], None]) -> None:
    """Every batch of the trace (up to ``until``) through the engine, in order."""
    first = True
    for batch in reader.batches(stream):
        if first:  # the header is read with the first batch: apply it before that
            first = False
            if reader.header is not None:
                core.header(reader.header)
        if until is not None and batch[-1].ts > until:
            head = [ev for ev in batch if ev.ts <= until]
            if head:
                core.feed(head)
                _flush(core, sink)
            return
        core.feed(batch)
        _flush(core, sink)
        on_batch()


def _flush(core: Core, sink: Callable[[Sequence[Output]], None]) -> None:
    out = core.drain()
    if out:
        sink(out)


@contextlib.contextmanager
def _relaxed_gc() -> Iterator[None]:
    """Collect cycles less often while replaying.

    A replay allocates millions of short-lived objects and few cycles; the
    objects that exist before it (modules, the compiled rules) live on, so they
    are frozen out of the collector's scans for its duration.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


class _Progress:
    """A one-line progress meter on a terminal, for big traces only."""

    def __init__(self, path: str, reader: t.TraceReader, out: TextIO | None) -> None:
        self.reader = reader
        self.out = out
        self.size = 0
        self.last = 0.0
        if out is not None:
            try:
                self.size = os.path.getsize(path)
            except OSError:
                self.out = None
            if self.size < PROGRESS_MIN_BYTES:
                self.out = None

    def tick(self) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        r = self.reader
        share = "" if r.path.endswith(".gz") else f"{100 * r.bytes_read / self.size:3.0f}%  "
        self.out.write(f"\rreplaying {os.path.basename(r.path)}: {share}"
                       f"{r.events + 0:,} events")
        self.out.flush()

    def done(self) -> None:
        if self.out is not None and self.last:
            self.out.write("\r\033[K")
            self.out.flush()


def summary_json(result: ReplayResult) -> dict[str, Any]:
    """The summary: counts, the trace's own event rate (events per second of trace) and
    the replay's speed (events per second of wall-clock time, the only value that
    depends on the machine)."""
    core, reader = result.core, result.reader
    alerts: dict[str, dict[str, int]] = {}
    for (rule, state), n in sorted(core.alert_counts.items()):
        alerts.setdefault(rule, {"pending": 0, "firing": 0, "resolved": 0})[state] = n
    span = 0.0
    if core.first_ts is not None and core.last_ts is not None:
        span = core.last_ts - core.first_ts
    errors = {s.rule.name: s.errors for s in core.evaluator.rules if s.errors}
    errors.update((s.rule.name, s.errors) for s in core.events.states if s.errors)
    out: dict[str, Any] = {
        "type": "summary",
        "events": result.events,
        "ticks": core.ticks,  # of the schedule: skipped quiet ticks count as run
        "trace_seconds": seconds(span),
        "trace_events_per_s": round(result.events / span, 3) if span > 0 else None,
        "replay_events_per_s": _replay_speed(result),
        "alerts": alerts,
        "actions_proposed": core.proposal_count,
        "invalid_lines_skipped": reader.invalid,
        "orphan_events": core.table.orphans,
        "rule_errors": errors,
        "until": seconds(result.stopped_at),
    }
    if core.events.states:  # only with event rules: other summaries stay as they were
        out["event_rules"] = event_rules_json(core)
    return out


def _replay_speed(result: ReplayResult) -> float | None:
    """Events replayed per second of wall-clock time; None when too quick to measure."""
    return round(result.events / result.wall_s, 1) if result.wall_s > 0 else None


def event_rules_json(core: Core) -> dict[str, dict[str, Any]]:
    """Per event rule: its trigger, alerts, and the matches flood control suppressed."""
    return {s.rule.name: {"trigger": s.rule.trigger, "alerts": s.matches,
                          "suppressed": {"cooldown": s.suppressed["cooldown"],
                                         "max_rate": s.suppressed["max_rate"]},
                          "cooldown_keys_evicted": s.evicted}
            for s in sorted(core.events.states, key=lambda s: s.rule.name)}


# ---- text output ------------------------------------------------------------------

def _who(pid: int | None, comm: str | None, cgroup: str | None = None) -> str:
    if cgroup is not None:  # a cgroup rule's instance
        return cgroup
    if pid is None:
        return "host"
    return f"{comm or '?'}[{pid}]"


class Timeline:
    """Readable, aligned lines for alerts and proposals."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.lines = 0

    def __call__(self, batch: Sequence[Output]) -> None:
        write = self.out.write
        for item in batch:
            self.lines += 1
            if isinstance(item, Alert):
                why = f" ({item.reason})" if item.reason and item.reason != "cleared" else ""
                if item.trigger is not None:
                    why = f" (on {item.trigger})"
                write(printable(f"{item.ts:10.3f}s  {item.state.upper():<9} {item.rule:<18} "
                                f"{item.severity:<8} {_who(item.pid, item.comm, item.cgroup):<22} "
                                f"{item.message}{why}") + "\n")
            elif isinstance(item, Proposal):
                target = _who(item.pid, item.comm) if item.pid is not None else "no live target"
                if item.cgroup is not None:  # a cgroup action's: the cgroup, by path and id
                    target = f"{item.cgroup} (id {item.cgroup_id})"
                write(printable(f"{item.ts:10.3f}s  {'ACTION':<9} {item.rule:<18} "
                                f"{item.action.describe():<8} -> {target} ({item.status})")
                      + "\n")


def _rate(name: str, value: float | None, shape: str) -> str:
    """`` (trace rate 20.092 events/s)``; nothing for a rate that was not measured."""
    return "" if value is None else f" ({name} {shape.format(value)} events/s)"


def text_summary(result: ReplayResult, out: TextIO) -> None:
    s = summary_json(result)
    core = result.core
    out.write(f"\n{s['events']:,} events over {s['trace_seconds']:g}s of trace"
              f"{_rate('trace rate', s['trace_events_per_s'], '{:,}')}, "
              f"{s['ticks']:,} ticks\n")
    out.write(f"replayed in {result.wall_s:.2f}s"
              f"{_rate('replay speed', s['replay_events_per_s'], '{:,.0f}')}\n")
    if not s["events"]:
        out.write("the trace holds no events: nothing was evaluated\n")
    elif not s["alerts"]:
        out.write("no rule fired\n")
    firing = Counter({rule: c["firing"] for rule, c in s["alerts"].items()})
    evented = s.get("event_rules", {})
    for rule, counts in s["alerts"].items():
        if rule in evented:
            continue
        out.write(f"  {rule:<20} {firing[rule]} firing, {counts['pending']} pending, "
                  f"{counts['resolved']} resolved\n")
    for rule, e in evented.items():
        quiet = sum(e["suppressed"].values())
        if e["alerts"] or quiet:
            held = ", ".join(f"{why} {n}" for why, n in e["suppressed"].items() if n)
            out.write(f"  {rule:<20} {e['alerts']} firing (on {e['trigger']}), {quiet} "
                      f"suppressed{f' ({held})' if held else ''}\n")
        if e["cooldown_keys_evicted"]:
            out.write(f"  {rule:<20} {e['cooldown_keys_evicted']} cooldown key(s) evicted "
                      "while their cooldown ran\n")
    active = [st.rule.name for st in core.evaluator.rules if st.counts()["firing"]]
    if active:
        out.write(f"still firing at the end: {', '.join(active)}\n")
    if s["actions_proposed"]:
        out.write(f"{s['actions_proposed']} action(s) proposed (replay never executes)\n")
    if s["invalid_lines_skipped"]:
        out.write(f"{s['invalid_lines_skipped']} invalid line(s) skipped; first: "
                  f"{printable(str(result.reader.first_error))}\n")
    if s["orphan_events"]:
        out.write(f"{s['orphan_events']} event(s) for pids never announced "
                  "(attached to pid 1)\n")
    for rule, n in s["rule_errors"].items():
        out.write(f"rule {rule}: {n} evaluation error(s)\n")



