"""Freezing, thawing and killing real cgroups made under a test-only parent in this
machine's v2 hierarchy: a frozen process's CPU time stops growing, a thawed one's grows
again, a kill leaves nothing (processes forked during it and those in child cgroups too),
and a cgroup removed and created again at its path is refused."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from cgroups_support import BUSY, FORKER, LiveTree, cpu_ticks, live_tree
from live_support import wait_for

from linnix.cgroups.control import freeze, kill, same_cgroup, thaw
from linnix.procfs import HZ

pytestmark = [pytest.mark.root, pytest.mark.slow]



@pytest.fixture
def tree() -> Iterator[LiveTree]:
    with live_tree() as made:
        yield made



def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False


def test_freeze_stops_the_processes_and_thaw_starts_them(tree: LiveTree) -> None:
    cg = tree.cgroup("svc")
    loop = tree.start(cg, BUSY)
    wait_for(lambda: cpu_ticks(loop.pid) > 0, 10, "the loop to run")
    outcome = freeze(tree.hierarchy, cg)
    assert (outcome.status, outcome.detail) == ("done", f"{cg.path} frozen")
    frozen_at = cpu_ticks(loop.pid)
    time.sleep(0.5)  # a running loop would use about 50 ticks of it
    assert cpu_ticks(loop.pid) == frozen_at
    assert thaw(tree.hierarchy, cg).ok
    wait_for(lambda: cpu_ticks(loop.pid) > frozen_at + HZ // 10, 10, "the loop to run again")


@pytest.mark.parametrize("use_cgroup_kill", [True, False], ids=["cgroup.kill", "signals"])
def test_kill_leaves_nothing_even_what_forks_meanwhile(tree: LiveTree,
                                                        use_cgroup_kill: bool) -> None:
    cg = tree.cgroup("svc")
    inner = tree.mkdir(f"{cg.path}/inner")
    forker = tree.start(cg, FORKER)
    nested = tree.start(inner, BUSY)
    wait_for(lambda: len(tree.pids(cg)) > 20, 20, "the forker's children")
    outcome = kill(tree.hierarchy, cg, timeout=20, use_cgroup_kill=use_cgroup_kill)
    assert outcome.ok, outcome
    seen = tree.pids(cg) + tree.pids(inner)
    assert seen == []
    forker.wait(10)
    nested.wait(10)
    assert (forker.returncode, nested.returncode) == (-9, -9)
    if not use_cgroup_kill:
        assert outcome.signalled is not None and outcome.signalled > 20


def test_kill_waits_for_every_process_to_be_gone(tree: LiveTree) -> None:
    cg = tree.cgroup("svc")
    children = [tree.start(cg, BUSY) for _ in range(3)]
    assert kill(tree.hierarchy, cg).ok
    assert tree.pids(cg) == []
    for p in children:
        p.wait(10)
        assert not alive(p.pid)


def test_a_cgroup_recreated_at_its_path_is_refused(tree: LiveTree) -> None:
    old = tree.cgroup("svc")
    tree.rmdir(old)
    new = tree.mkdir(old.path)  # systemd restarting the unit
    survivor = tree.start(new, BUSY)
    assert not same_cgroup(tree.hierarchy, old) and same_cgroup(tree.hierarchy, new)
    for act in (kill, freeze):
        outcome = act(tree.hierarchy, old)
        assert outcome.status == "refused" and "another cgroup now" in outcome.detail
    time.sleep(0.1)
    assert alive(survivor.pid) and tree.pids(new) == [survivor.pid]
    with open(f"{tree.hierarchy.v2}{new.path}/cgroup.freeze") as f:
        assert f.read().strip() == "0"
    assert os.path.isdir(f"{tree.hierarchy.v2}{new.path}")


@pytest.mark.parametrize("use_cgroup_kill", [True, False], ids=["cgroup.kill", "signals"])
def test_a_frozen_cgroup_can_be_killed(tree: LiveTree, use_cgroup_kill: bool) -> None:
    cg = tree.cgroup("svc")  # the freeze-then-kill of a rule with both actions
    children = [tree.start(cg, BUSY) for _ in range(2)]
    assert freeze(tree.hierarchy, cg).ok
    assert kill(tree.hierarchy, cg, use_cgroup_kill=use_cgroup_kill).ok
    assert tree.pids(cg) == []
    for p in children:
        assert p.wait(10) == -9
