"""Sampling real cgroups made under a test-only parent in this machine's v2 hierarchy: the
process count, the CPU of a busy loop against the process's own CPU time, the pressure
names, the v1 memory twin on a hybrid host, and a cgroup removed between two rounds."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from cgroups_support import LiveTree, live_tree

from linnix.cgroups.hierarchy import Cgroup, walk
from linnix.cgroups.sample import CgroupSample, Sampler
from linnix.procfs import HZ

pytestmark = [pytest.mark.root, pytest.mark.slow]

BUSY = "while True: pass"
SLEEP = "import time; time.sleep(600)"


@pytest.fixture
def tree() -> Iterator[LiveTree]:
    with live_tree() as made:
        yield made


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def only(sampler: Sampler, cgroups: list[Cgroup], now: float) -> CgroupSample:
    found = sampler.sample(cgroups, now)
    assert len(found) == 1, found
    return found[0]


def test_processes_and_the_cpu_of_a_busy_loop(tree: LiveTree) -> None:
    busy, idle = tree.cgroup("busy"), tree.cgroup("idle")
    loop = tree.start(busy, BUSY)
    for _ in range(3):
        tree.start(idle, SLEEP)
    sampler = Sampler(tree.hierarchy)
    time.sleep(0.2)  # the loop running: past its interpreter's start
    started = time.monotonic()
    first = sampler.sample([busy, idle], started)
    cpu_before = cpu_seconds(loop.pid)
    time.sleep(1.5)
    ended = time.monotonic()
    busy_now, idle_now = sampler.sample([busy, idle], ended)
    used = cpu_seconds(loop.pid) - cpu_before
    assert [s.cg_cpu_pct for s in first] == [None, None]
    assert (busy_now.cg_procs, idle_now.cg_procs) == (1, 3)
    assert busy_now.cg_cpu_pct is not None and idle_now.cg_cpu_pct is not None
    # the cgroup's CPU is its one process's: the same share of the same interval, to the
    # clock tick that /proc counts in and the moments the two were read
    measured = busy_now.cg_cpu_pct / 100 * (ended - started)
    assert abs(measured - used) <= 0.1 + 0.1 * used, (measured, used)
    assert used > 0.1 and idle_now.cg_cpu_pct < 5.0


def test_pressure_and_memory_have_their_values(tree: LiveTree) -> None:
    cg = tree.cgroup("svc")
    twin = tree.twin(cg)
    tree.start(cg, "b = bytearray(64 * 1024 * 1024)\nimport time; time.sleep(600)")
    sample = only(Sampler(tree.hierarchy), [cg], time.monotonic())
    for name in ("cg_psi_cpu_some", "cg_psi_mem_some", "cg_psi_mem_full", "cg_psi_io_some"):
        if tree.hierarchy.pressure:
            assert sample.values()[name] is not None, name
    if twin is not None or tree.hierarchy.memory == "v2":
        deadline = time.monotonic() + 10
        while (sample.cg_mem_mb or 0) < 64 and time.monotonic() < deadline:
            time.sleep(0.05)
            sample = only(Sampler(tree.hierarchy), [cg], time.monotonic())
        assert sample.cg_mem_mb is not None and sample.cg_mem_mb >= 64
        assert sample.cg_mem_max_mb is None and sample.cg_mem_pct is None  # no limit set
        assert sample.cg_oom_kills == 0


def test_without_a_v1_twin_memory_has_no_value(tree: LiveTree) -> None:
    if tree.hierarchy.memory != "v1":
        pytest.skip("memory is not a v1 controller on this host")
    cg = tree.cgroup("svc")
    tree.start(cg, SLEEP)
    sample = only(Sampler(tree.hierarchy), [cg], time.monotonic())
    assert (sample.cg_procs, sample.cg_mem_mb, sample.cg_oom_kills) == (1, None, None)


def test_a_cgroup_removed_between_rounds_is_left_out(tree: LiveTree) -> None:
    gone, stays = tree.cgroup("gone"), tree.cgroup("stays")
    sampler = Sampler(tree.hierarchy)
    assert len(sampler.sample([gone, stays], time.monotonic())) == 2
    tree.rmdir(gone)  # its files are still open in the sampler: ENODEV
    assert [s.path for s in sampler.sample([gone, stays], time.monotonic())] == [stays.path]
    again = tree.mkdir(gone.path)  # created again at the same path: another cgroup
    assert again.id != gone.id
    assert [s.id for s in sampler.sample([gone, stays, again], time.monotonic())] == \
        [stays.id, again.id]
    assert os.path.isdir(f"{tree.hierarchy.v2}{gone.path}")


def test_walk_finds_the_ids_stat_gives(tree: LiveTree) -> None:
    a = tree.cgroup("a")
    b = tree.mkdir(f"{a.path}/b")
    found = walk(tree.hierarchy, tree.parent).cgroups
    assert [c.path for c in found] == [tree.parent, a.path, b.path]
    assert found[1:] == [a, b]  # the directory entry's inode is the cgroup's id
