"""Subtree fork counts, folded lazily, equal the plain definition at every tick.

``subtree_forks_per_sec`` of a process is the number of forks in the
trailing second by it or by any process that was below it when the fork
happened.  The reference here applies that definition literally: at each
fork, the fork's time is added to every process on the parent's lineage
(as the table did before forks were folded); the count at a tick T is the
number of those times with ``not ts <= T - 1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pytest
from engine_support import exit_, fork, no_hang, proc
from hypothesis import given
from hypothesis import strategies as st

from linnix.engine import trace as t
from linnix.engine import windows
from linnix.engine.core import Core
from linnix.engine.proctable import Proc, ProcTable
from linnix.engine.subtree import exact_expiry
from linnix.engine.windows import RATE_WINDOW_S, ExpiryCounts
from linnix.language.pipeline import compile_text

PLAN = compile_text("rule storm: subtree_forks_per_sec > 3\n")
STEPS = (0.0, 0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 1.0, 2.5)


@st.composite
def trees(draw: st.DrawFn) -> list[t.Event]:
    """Forks and exits over a small pool of pids: deep chains, re-parenting, pid reuse,
    processes announced before their parent (they wait for it)."""
    ts = 0.0
    events: list[t.Event] = [proc(0.0, 1, 0, "init", start=0.0)]
    for _ in range(draw(st.integers(1, 60))):
        ts = round(ts + draw(st.sampled_from(STEPS)), 6)
        pid = draw(st.integers(2, 12))
        kind = draw(st.sampled_from(["fork", "fork", "fork", "exit", "proc"]))
        if kind == "fork":
            events.append(fork(ts, pid, draw(st.integers(1, 12))))
        elif kind == "exit":
            events.append(exit_(ts, pid))
        else:
            events.append(proc(ts, pid, draw(st.integers(0, 12)), start=ts))
    return events


class Reference:
    """The plain definition: each fork's time on every process of its lineage, at once."""

    def __init__(self) -> None:
        self.table = ProcTable(subtree=True, subtree_forks=True)
        self.times: dict[Proc, list[float]] = {}

    def apply(self, ev: t.Event) -> None:
        self.table.apply(ev)
        if type(ev) is t.Fork:
            parent = self.table.procs[ev.pid].parent
            for node in parent.lineage(inclusive=True) if parent is not None else ():
                self.times.setdefault(node, []).append(ev.ts)

    def counts(self, now: float) -> dict[tuple[int, float | None], int]:
        return {p.identity(): sum(1 for ts in self.times.get(p, ()) if not ts <= now - 1.0)
                for p in self.table.live()}


def counts_at_ticks(events: list[t.Event], tick: float) -> list[tuple[float, dict[
        tuple[int, float | None], int]]]:
    core = Core(PLAN, tick)
    seen: list[tuple[float, dict[tuple[int, float | None], int]]] = []
    step = core.evaluator.step

    def recording(table: ProcTable, now: float) -> object:
        seen.append((now, {p.identity(): p.sub_forks.count(now) for p in table.live()}))
        return step(table, now)

    core.evaluator.step = recording  # type: ignore[method-assign]
    with no_hang(30):
        core.feed(events)
        core.finish()
    return seen


def replayed(events: Iterable[t.Event], ticks: list[float]) -> list[dict[
        tuple[int, float | None], int]]:
    ref = Reference()
    pending = list(events)
    out = []
    for now in ticks:
        while pending and pending[0].ts <= now:
            ref.apply(pending.pop(0))
        out.append(ref.counts(now))
    return out


@given(trees(), st.sampled_from([0.5, 0.3, 1.0, 0.25]))
def test_fork_counts_folded_per_batch_are_the_definition_at_every_tick(
        events: list[t.Event], tick: float) -> None:
    seen = counts_at_ticks(events, tick)
    assert [c for _, c in seen] == replayed(events, [now for now, _ in seen])


def test_a_deep_chain_built_by_forks_counts_each_fork_at_every_ancestor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Recording each fork in the window of each ancestor would be ~4.5 million
    # entries for this chain: the work must stay linear in the number of processes.
    added = [0]
    for cls in (windows.RateWindow, windows.ExpiryCounts):
        add = cls.add

        def counting(self: object, *args: object, add: Any = add) -> None:
            added[0] += 1
            add(self, *args)

        monkeypatch.setattr(cls, "add", counting)
    depth = 3000
    events: list[t.Event] = [proc(0.0, 1, 0, "init", start=0.0)]
    events += [fork(0.25, pid, pid - 1) for pid in range(2, depth + 2)]
    events.append(t.Lost(ts=0.6, count=0))
    seen = counts_at_ticks(events, 0.5)
    assert added[0] <= 4 * depth  # the host's count, the parent's, one entry per ancestor
    at_half = dict(seen)[0.5]
    # pid k has every fork below it: depth - k + 2 of them; the last one none
    assert at_half == {(pid, 0.0 if pid == 1 else 0.25): depth + 1 - pid
                       for pid in range(1, depth + 2)}


def test_the_exact_moment_a_fork_leaves_the_window() -> None:
    for ts in (0.0, 0.1, 0.3, 1e9 + 0.7, 12345.678):
        leaves = exact_expiry(ts)  # the smallest time at which 'ts <= now - 1' holds
        assert ts <= leaves - RATE_WINDOW_S
        assert not ts <= math.nextafter(leaves, -math.inf) - RATE_WINDOW_S


def test_expiry_counts_leave_in_order_whatever_the_order_they_came_in() -> None:
    counts = ExpiryCounts()
    for leaves, n in ((2.0, 1), (3.0, 2), (3.0, 1), (2.5, 4), (1.0, 1)):
        counts.add(leaves, n)
    assert [counts.count(now) for now in (0.5, 1.0, 2.0, 2.5, 2.9, 3.0)] == [9, 8, 7, 3, 3, 0]
