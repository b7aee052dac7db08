"""The per-process ring: 15 minutes at the sample interval, compact, freed at exit, bounded."""

from __future__ import annotations

import math
import os
import tracemalloc
from collections.abc import Callable, Iterable, Sequence

from engine_support import exit_, fork, proc, sample, table_of
from hypothesis import given
from hypothesis import strategies as st

from linnix.engine.proctable import ProcTable
from linnix.engine.records import Proc
from linnix.runtime.procring import COLUMNS, ProcRing

WALL0 = 1_800_000_000.0

Values = tuple[float | None, float | None, int | None]  # cpu_pct, rss_kb, fds


def table() -> ProcTable:
    return table_of([proc(0.0, 1, 0, "init", start=-100.0),
                     proc(0.0, 50, 1, "bash", start=-50.0)])


def rounds(ring: ProcRing, tab: ProcTable, values: Iterable[Values], pid: int = 50,
           start: int = 0) -> None:
    """One round per item: ``pid`` sampled with those values, then recorded."""
    for i, (cpu, rss, fds) in enumerate(values, start=start):
        tab.apply(sample(float(i + 1), pid, cpu_pct=cpu, rss_kb=rss, fds=fds))
        ring.record(WALL0 + i, tab.procs)


def columns(ring: ProcRing, p: Proc) -> list[tuple[object, ...]]:
    out = ring.history(p)
    return list(zip(out["t"], *(out[name] for name in COLUMNS), strict=True))


def test_the_ring_holds_fifteen_minutes_at_the_sample_interval() -> None:
    assert ProcRing(1.0).size == 900
    assert ProcRing(2.0).size == 450
    assert ProcRing(0.5).size == 1800


def test_the_oldest_rounds_go_first() -> None:
    tab, ring = table(), ProcRing(1.0, window_s=3)
    rounds(ring, tab, [(float(i), 4096.0 * (i + 1), i) for i in range(5)])
    assert columns(ring, tab.procs[50]) == [
        (WALL0 + 2, 2.0, 12.0, 2), (WALL0 + 3, 3.0, 16.0, 3), (WALL0 + 4, 4.0, 20.0, 4)]
    assert ring.history(tab.procs[50])["resolution_s"] == 1.0


def test_a_value_not_measured_stays_none() -> None:
    tab, ring = table(), ProcRing(1.0)
    rounds(ring, tab, [(None, 2048.0, None), (12.5, 2048.0, None)])
    assert columns(ring, tab.procs[50]) == [(WALL0, None, 2.0, None), (WALL0 + 1, 12.5, 2.0, None)]
    assert columns(ring, tab.procs[1]) == [(WALL0, None, None, None), (WALL0 + 1, None, None, None)]


def test_what_the_sampler_no_longer_measures_is_none_though_the_table_keeps_it() -> None:
    tab, ring = table(), ProcRing(1.0)
    rounds(ring, tab, [(5.0, 1024.0, 7)])
    ring.record(WALL0 + 1, tab.procs, (True, True, False))  # a reload stopped counting fds
    ring.record(WALL0 + 2, tab.procs, (False, False, False))  # and then sampling at all
    ring.record(WALL0 + 3, tab.procs)  # on again: the table's values are what it has
    assert [v[1:] for v in columns(ring, tab.procs[50])] == [
        (5.0, 1.0, 7), (5.0, 1.0, None), (None, None, None), (5.0, 1.0, 7)]


def test_an_idle_process_costs_one_point_however_long_it_lives() -> None:
    tab, ring = table(), ProcRing(1.0, window_s=60)
    rounds(ring, tab, [(0.0, 4096.0, 3)] * 200)
    assert ring.points == 2  # init's and bash's
    history = ring.history(tab.procs[50])
    assert len(history["t"]) == 60 and set(history["cpu_pct"]) == {0.0}
    assert history["t"][0] == WALL0 + 140 and history["t"][-1] == WALL0 + 199


def test_a_busy_ring_stays_within_its_window() -> None:
    tab, ring = table(), ProcRing(1.0, window_s=100)
    rounds(ring, tab, [(float(i % 7), 4096.0, 3) for i in range(1000)])
    assert ring.points <= 1 + 100 + 33  # init's, the window's and the 32 dropped at once
    assert [v[1] for v in columns(ring, tab.procs[50])] == [float(i % 7) for i in range(900, 1000)]


def test_an_exit_frees_the_ring_at_the_next_round() -> None:
    tab, ring = table(), ProcRing(1.0)
    rounds(ring, tab, [(float(i), 4096.0, 3) for i in range(10)])
    bash = tab.procs[50]
    assert ring.points == 11
    tab.apply(exit_(11.0, 50))
    ring.record(WALL0 + 10, tab.procs)
    assert set(ring.rings) == {1} and ring.points == 1
    assert columns(ring, bash) == []


def test_a_pid_used_again_starts_a_fresh_ring() -> None:
    tab, ring = table(), ProcRing(1.0)
    rounds(ring, tab, [(90.0, 4096.0, 3)] * 3)
    tab.apply(exit_(3.5, 50))
    tab.apply(fork(3.6, 50, 1, "new"))  # between two rounds: the ring never saw the exit
    fresh = tab.procs[50]
    assert columns(ring, fresh) == []  # no round since it started
    rounds(ring, tab, [(1.0, 8192.0, 4)], start=3)
    assert columns(ring, fresh) == [(WALL0 + 3, 1.0, 8.0, 4)]
    assert ring.points == 2


def test_values_past_what_a_point_holds_are_kept_at_its_limit_never_raised() -> None:
    tab, ring = table(), ProcRing(1.0)
    p = tab.procs[50]
    for i, (cpu, rss) in enumerate([(math.nan, math.inf), (-1.0, -5.0), (1e300, 1e300)]):
        p.cpu_pct, p.rss_mb, p.last_sample = cpu, rss, (i,)
        ring.record(WALL0 + i, tab.procs)
    cpu_col = ring.history(p)["cpu_pct"]
    assert cpu_col[0] is None and cpu_col[1] == 0.0 and cpu_col[2] == (2**32 - 2) / 100


@given(st.lists(st.tuples(
    st.none() | st.integers(0, 10**6).map(lambda n: n / 10),  # the sampler's 0.1 %
    st.none() | st.integers(0, 2**30 - 1).map(lambda n: 4.0 * n),  # pages of 4 KiB
    st.none() | st.integers(0, 2**31)), min_size=1, max_size=30))
def test_the_window_shows_each_round_as_it_was_sampled(values: list[Values]) -> None:
    tab, ring = table(), ProcRing(1.0, window_s=16)
    rounds(ring, tab, values)
    expected, held = [], (None, None, None)
    for cpu, rss, fds in values:  # a sample leaves what it did not measure as it was
        held = (cpu if cpu is not None else held[0], rss if rss is not None else held[1],
                fds if fds is not None else held[2])
        expected.append((held[0], None if held[1] is None else held[1] / 1024, held[2]))
    got = columns(ring, tab.procs[50])
    assert [v[1:] for v in got] == expected[-16:]
    assert [v[0] for v in got] == [WALL0 + i for i in range(len(values))][-16:]


# ---- the budget ------------------------------------------------------------------------

def busy_table(count: int) -> ProcTable:
    return table_of([proc(0.0, 1000 + i, 0, "w", start=-1.0) for i in range(count)])


def busy_rounds(ring: ProcRing, tab: ProcTable, first: int, last: int,
                pids: Sequence[int] | None = None) -> None:
    """Every process (of ``pids``) changes at every round: its CPU is the round's number."""
    for r in range(first, last):
        for pid in pids if pids is not None else list(tab.procs):
            tab.apply(sample(float(r), pid, cpu_pct=float(r), rss_kb=4096.0, fds=3))
        ring.record(WALL0 + r, tab.procs)


def test_past_the_budget_the_fullest_rings_keep_every_other_round() -> None:
    tab = busy_table(10)
    ring = ProcRing(1.0, window_s=100, budget=600)
    for r in range(300):
        busy_rounds(ring, tab, r, r + 1)
        assert ring.points <= 600
    history = ring.history(tab.procs[1000])
    step = history["resolution_s"]
    assert step in (2.0, 4.0)  # 10 rings of 100 rounds in 600 points
    cpu = history["cpu_pct"]
    assert len(cpu) == 100 and history["t"] == [WALL0 + r for r in range(200, 300)]
    # each value is the one sampled at the last round kept, less than a step before
    assert all(r - step < v <= r for v, r in zip(cpu, range(200, 300), strict=True))
    assert all(cpu[i] == 200 + i for i in range(100) if (200 + i) % int(step) == 0)


def test_under_a_quarter_of_the_budget_every_ring_records_each_round_again() -> None:
    tab = busy_table(10)
    ring = ProcRing(1.0, window_s=100, budget=600)
    busy_rounds(ring, tab, 0, 200)
    assert ring.history(tab.procs[1000])["resolution_s"] > 1.0
    for pid in range(1001, 1010):
        tab.apply(exit_(200.0, pid))
    busy_rounds(ring, tab, 200, 300, pids=[1000])  # one busy ring left: under 150 points
    # each round from 201 on (round 200 freed the others); the window starts at 200
    history = ring.history(tab.procs[1000])
    assert history["resolution_s"] > 1.0
    assert history["cpu_pct"][1:] == [float(r) for r in range(201, 300)]
    busy_rounds(ring, tab, 300, 301, pids=[1000])  # the window starts at 201: fine throughout
    assert ring.history(tab.procs[1000])["resolution_s"] == 1.0


@given(st.lists(st.integers(0, 3), min_size=1, max_size=120), st.integers(4, 40))
def test_a_thinned_ring_shows_values_sampled_within_its_resolution(
        cpus: list[int], budget: int) -> None:
    tab, ring = table(), ProcRing(1.0, window_s=32, budget=budget)
    rounds(ring, tab, [(float(cpu), 4096.0, 3) for cpu in cpus])
    history = ring.history(tab.procs[50])
    held = int(history["resolution_s"])
    first = len(cpus) - len(history["t"])
    for i, shown in enumerate(history["cpu_pct"], start=first):
        assert shown in cpus[max(0, i - held + 1):i + 1]


def traced_bytes(build: Callable[[], object]) -> int:
    """What procring.py allocated and still holds once ``build()`` returned."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        kept = build()
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, os.path.join("*", "linnix", "runtime", "procring.py"))])
    finally:
        if not tracing:
            tracemalloc.stop()
    del kept
    return sum(stat.size for stat in snap.statistics("filename"))


def test_an_idle_process_costs_a_few_hundred_bytes() -> None:
    tab = busy_table(1000)
    busy_rounds(ProcRing(1.0), tab, 0, 1)  # every process sampled once

    def build() -> ProcRing:
        ring = ProcRing(1.0, window_s=50)
        for r in range(100):
            ring.record(WALL0 + r, tab.procs)
        return ring

    assert traced_bytes(build) <= 1000 * 300


def test_busy_rings_stay_within_their_budget_in_memory() -> None:
    tab = busy_table(100)
    procs = list(tab.procs.values())
    samples = [(float(r),) for r in range(150)]  # made before tracing: the table's, not the ring's

    def build() -> ProcRing:
        ring = ProcRing(1.0, window_s=100, budget=2500)
        for r, raw in enumerate(samples):
            for p in procs:  # as the table applies a sample that changes the CPU
                p.cpu_pct, p.last_sample = raw[0], raw
            ring.record(WALL0 + r, tab.procs)
            assert ring.points <= 2500
        return ring

    # 16 bytes a point and an array's spare room, and some 250 bytes a process
    assert traced_bytes(build) <= 2500 * 16 * 1.2 + 100 * 250
