"""Helpers shared by the engine, replay and test-runner tests.

Events are built as the typed trace structs (``fork(1.0, 100, 1)``), rules are
compiled from text, and :func:`run` drives a :class:`~linnix.engine.core.Core` over
the events on virtual time, returning every alert and proposal in order.
Transitions are compared as compact tuples (:func:`transitions`) so a test
states its expected timeline in a few lines.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from linnix.engine import trace as t
from linnix.engine.core import Core, Output
from linnix.engine.evaluator import Alert, Proposal
from linnix.engine.proctable import ProcTable
from linnix.language.pipeline import compile_text
from linnix.plan import CompiledRule, Plan

__all__ = [
    "alerts", "core_for", "execve", "exit_", "fork", "lost", "no_hang", "only_rule", "proc",
    "proposals", "run", "sample", "system", "table_of", "transitions",
]


# ---- events ------------------------------------------------------------------------

def proc(ts: float, pid: int, ppid: int, comm: str = "p", **kw: Any) -> t.Proc:
    return t.Proc(ts=ts, pid=pid, ppid=ppid, comm=comm, **kw)


def fork(ts: float, pid: int, ppid: int, comm: str = "p", **kw: Any) -> t.Fork:
    return t.Fork(ts=ts, pid=pid, ppid=ppid, comm=comm, **kw)


def execve(ts: float, pid: int, comm: str, **kw: Any) -> t.Exec:
    return t.Exec(ts=ts, pid=pid, comm=comm, **kw)


def exit_(ts: float, pid: int, **kw: Any) -> t.Exit:
    return t.Exit(ts=ts, pid=pid, **kw)


def sample(ts: float, pid: int, **kw: Any) -> t.Sample:
    return t.Sample(ts=ts, pid=pid, **kw)


def system(ts: float, **kw: Any) -> t.System:
    return t.System(ts=ts, **kw)


def lost(ts: float, count: int) -> t.Lost:
    return t.Lost(ts=ts, count=count)


def table_of(events: Iterable[t.Event], **kw: Any) -> ProcTable:
    """A process table with ``events`` applied (no ticks)."""
    table = ProcTable(**kw)
    for ev in events:
        table.apply(ev)
    return table


# ---- running rules -------------------------------------------------------------------

def core_for(rules: str | Plan, tick: float = 0.5) -> Core:
    plan = compile_text(rules) if isinstance(rules, str) else rules
    return Core(plan, tick)


def run(rules: str | Plan, events: Sequence[t.Event], *, until: float | None = None,
        tick: float = 0.5, header: t.Header | None = None) -> list[Output]:
    """Feed ``events`` in one batch, tick up to the last event (or ``until``), drain."""
    core = core_for(rules, tick)
    if header is not None:
        core.header(header)
    core.feed(list(events))
    core.finish()
    if until is not None:
        core.run_until(until)
    return core.drain()


def alerts(out: Iterable[Output]) -> list[Alert]:
    return [o for o in out if isinstance(o, Alert)]


def proposals(out: Iterable[Output]) -> list[Proposal]:
    return [o for o in out if isinstance(o, Proposal)]


def transitions(out: Iterable[Output]) -> list[tuple[Any, ...]]:
    """Alerts as ``(ts, rule, state, pid)`` (plus the reason of a resolution)."""
    rows: list[tuple[Any, ...]] = []
    for a in alerts(out):
        row: tuple[Any, ...] = (a.ts, a.rule, a.state, a.pid)
        if a.state == "resolved":
            row += (a.reason,)
        rows.append(row)
    return rows


def only_rule(plan: Plan) -> CompiledRule:
    (rule,) = plan.rules
    return rule


@contextlib.contextmanager
def no_hang(seconds: int = 30) -> Iterator[None]:
    """Turn a hang (say, a cycle in the process tree walked forever) into a failure."""
    def fail(signum: int, frame: object) -> None:
        raise AssertionError(f"no result after {seconds}s: the engine hung")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
