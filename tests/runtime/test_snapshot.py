"""Subtree totals computed when read, and command lines read from /proc, bounded."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from engine_support import proc, sample, table_of
from proc_support import FakeProc
from trio.testing import MockClock

from linnix.engine import trace as t
from linnix.procfs import HZ, Clock
from linnix.runtime.snapshot import SubtreeTotals, fill_cmdlines

ORIGIN = 600 / HZ - 1.0  # a process started at 600 ticks started at 1.0 on this clock

# 10 ─┬─ 11 ─── 13
#     └─ 12
TREE = [proc(0.0, 10, 1, "a", start=0.0), proc(0.0, 11, 10, "b", start=0.0),
        proc(0.0, 12, 10, "c", start=0.0), proc(0.0, 13, 11, "d", start=0.0)]
SAMPLES = [sample(1.0, 10, cpu_pct=10.0, rss_kb=1024.0), sample(1.0, 11, cpu_pct=20.5),
           sample(1.0, 13, fds=7)]  # 12: never measured


@pytest.mark.parametrize("subtree", [False, True], ids=["engine-sums-nothing", "engine-sums"])
def test_totals_sum_what_was_measured_and_are_null_when_nothing_was(subtree: bool) -> None:
    table = table_of([*TREE, *SAMPLES], subtree=subtree)
    totals = SubtreeTotals()
    assert totals.of(table.procs[10]) == {"subtree_cpu_pct": 30.5, "subtree_rss_mb": 1.0,
                                          "subtree_fds": 7, "subtree_procs": 4}
    assert totals.of(table.procs[11]) == {"subtree_cpu_pct": 20.5, "subtree_rss_mb": None,
                                          "subtree_fds": 7, "subtree_procs": 2}
    assert totals.of(table.procs[12]) == {"subtree_cpu_pct": None, "subtree_rss_mb": None,
                                          "subtree_fds": None, "subtree_procs": 1}


def test_totals_of_a_deep_chain() -> None:
    chain: list[t.Event] = [proc(0.0, 2, 1, "p", start=0.0)]
    chain += [proc(0.0, pid, pid - 1, "p", start=0.0) for pid in range(3, 5003)]
    chain += [sample(1.0, pid, cpu_pct=0.001) for pid in range(2, 5003)]
    table = table_of(chain, subtree=False)
    got = SubtreeTotals().of(table.procs[2])
    assert (got["subtree_procs"], got["subtree_cpu_pct"]) == (5001, 5.001)  # in integers


# ---- command lines -------------------------------------------------------------------------

def record(pid: int, start: float | None = 1.0, cmdline: str | None = None) -> dict[str, Any]:
    return {"pid": pid, "start": start, "cmdline": cmdline}


@pytest.fixture
def fake(tmp_path: Path) -> FakeProc:
    fake = FakeProc(tmp_path / "proc")
    for pid in (100, 101, 102):
        fake.add(pid, "x", start=600, argv=[f"/bin/x{pid}", "-v"])
    return fake


async def test_unknown_command_lines_are_read_and_known_ones_kept(fake: FakeProc) -> None:
    recs = [record(100), record(101, cmdline="kept"), record(102, start=None), record(103),
            record(100)]  # the same process twice (a graph's root and its node)
    await fill_cmdlines(recs, Clock(ORIGIN), trio.CapacityLimiter(1), root=fake.path)
    assert [r["cmdline"] for r in recs] == ["/bin/x100 -v", "kept", None, None,
                                            "/bin/x100 -v"]


async def test_nothing_is_read_without_the_daemons_clock(fake: FakeProc) -> None:
    recs = [record(100)]
    await fill_cmdlines(recs, None, trio.CapacityLimiter(1), root=fake.path)
    assert recs[0]["cmdline"] is None


async def test_at_most_so_many_processes_are_read(fake: FakeProc) -> None:
    recs = [record(100), record(101), record(102)]
    await fill_cmdlines(recs, Clock(ORIGIN), trio.CapacityLimiter(1), root=fake.path,
                        at_most=2)
    assert [r["cmdline"] for r in recs] == ["/bin/x100 -v", "/bin/x101 -v", None]


@pytest.fixture
def stuck(fake: FakeProc) -> Iterator[str]:
    """pid 100's command line is a FIFO nobody writes to: reading it waits for ever."""
    path = os.path.join(fake.path, "100", "cmdline")
    os.unlink(path)
    os.mkfifo(path)
    yield path
    # let the reader given up on finish: a writer comes and goes (OSError: none waits)
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


async def test_a_read_that_never_ends_costs_the_answer_its_wait_only(
        fake: FakeProc, stuck: str, autojump_clock: MockClock) -> None:
    limiter = trio.CapacityLimiter(1)
    recs = [record(100), record(101)]
    started = trio.current_time()
    await fill_cmdlines(recs, Clock(ORIGIN), limiter, root=fake.path, wait=1.0)
    assert trio.current_time() - started == pytest.approx(1.0)
    assert [r["cmdline"] for r in recs] == [None, None]
    # the only reader is stuck: the next answer does not wait at all, and reads nothing
    later = [record(101)]
    started = trio.current_time()
    await fill_cmdlines(later, Clock(ORIGIN), limiter, root=fake.path, wait=1.0)
    assert trio.current_time() == started
    assert later[0]["cmdline"] is None
