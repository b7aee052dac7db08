"""The cgroup actions on real cgroups, as root: the action manager with the real
primitives, the real guards and a threaded store, on cgroups made under a test-only
parent of this machine's v2 hierarchy (removed afterwards, whatever happens).

A frozen process's CPU time stops growing and grows again once thawed (by
freeze_ttl, or when the paired kill is rejected); an approved kill_cgroup leaves no
process, those forked during the kill included; a kill approved after its cgroup was
removed and created again at the same path is refused; and a freeze held by an agent
that is SIGKILLed is thawed when the agent starts again on the same state (the
manager and store, in a child process, since the rule side of cgroup actions is not
wired to the daemon here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from cgroups_support import BUSY, FORKER, LiveTree, cpu_ticks, live_tree
from live_support import wait_for

from linnix.actions import ActionManager, ActionPolicy, Guards
from linnix.actions.cgroup import RECREATED, CgroupTarget
from linnix.actions.store import TERMINAL_STATES, AsyncStore, Store
from linnix.cgroups.hierarchy import Cgroup
from linnix.plan import CompiledAction
from linnix.procfs import HZ

pytestmark = [pytest.mark.root, pytest.mark.slow]

FREEZE = CompiledAction("freeze", False)
KILL_CGROUP = CompiledAction("kill_cgroup", False)
# an agent holding a freeze, until it is killed: prints "frozen ID" once it holds it
AGENT = """
import sys, trio
from linnix.actions import ActionManager, ActionPolicy, Guards
from linnix.actions.cgroup import CgroupTarget
from linnix.actions.store import AsyncStore, Store
from linnix.plan import CompiledAction

async def main():
    manager = ActionManager(AsyncStore(Store(sys.argv[1])), Guards(frozenset(), frozenset()),
                            ActionPolicy(auto=frozenset({"freeze"})))
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        row = await manager.propose(rule="hog", action=CompiledAction("freeze", False),
                                    target=None, incident_id=None, monitor_only=False,
                                    cgroup=CgroupTarget(sys.argv[2], int(sys.argv[3])))
        while row["id"] not in manager.cgroups.frozen:
            await trio.sleep(0.05)
        print("frozen", row["id"], flush=True)
        await trio.sleep(600)

trio.run(main)
"""


@pytest.fixture
def tree() -> Iterator[LiveTree]:
    with live_tree() as made:
        yield made



def frozen(tree: LiveTree, cg: Cgroup) -> bool:
    with open(f"{tree.hierarchy.v2}{cg.path}/cgroup.events") as f:
        return "frozen 1" in f.read().split("\n")


def stops(tree: LiveTree, cg: Cgroup, pid: int) -> None:
    """The cgroup is frozen and the process in it uses no CPU time."""
    assert frozen(tree, cg)
    at = cpu_ticks(pid)
    time.sleep(0.3)  # a running loop would use about 30 ticks of it
    assert cpu_ticks(pid) == at


def runs(pid: int) -> None:
    at = cpu_ticks(pid)
    wait_for(lambda: cpu_ticks(pid) > at + HZ // 10, 10, "the loop to run again")


class Live:
    """A manager over a threaded store, the real primitives and guards."""

    def __init__(self, path: Path, policy: ActionPolicy) -> None:
        self.store = Store(str(path))
        self.manager = ActionManager(AsyncStore(self.store), Guards(frozenset(), frozenset()),
                                     policy)

    async def propose(self, action: CompiledAction, cg: Cgroup) -> dict[str, Any]:
        return await self.manager.propose(rule="hog", action=action, target=None,
                                          incident_id=None, monitor_only=False,
                                          cgroup=CgroupTarget(cg.path, cg.id))

    async def settle(self, action_id: int) -> dict[str, Any]:
        with trio.fail_after(30):
            while True:
                row = self.store.action(action_id)
                assert row is not None
                if row["status"] in TERMINAL_STATES:
                    return row
                await trio.sleep(0.02)

    async def thawed(self, action_id: int) -> dict[str, Any]:
        with trio.fail_after(30):
            while (row := self.store.freeze(action_id)) is None or row["thawed_at"] is None:
                await trio.sleep(0.02)
        return row


@asynccontextmanager
async def running(tmp_path: Path, policy: ActionPolicy) -> AsyncIterator[Live]:
    live = Live(tmp_path / "linnix.db", policy)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(live.manager.run)
            yield live
            nursery.cancel_scope.cancel()
    finally:
        live.store.close()


async def test_an_auto_freeze_stops_the_cgroup_until_freeze_ttl(tree: LiveTree,
                                                                tmp_path: Path) -> None:
    cg = tree.cgroup("svc")
    loop = tree.start(cg, BUSY)
    wait_for(lambda: cpu_ticks(loop.pid) > 0, 10, "the loop to run")
    policy = ActionPolicy(ttl_s=60.0, auto=frozenset({"freeze"}), freeze_ttl_s=2.0)
    async with running(tmp_path, policy) as live:
        row = await live.propose(FREEZE, cg)
        assert (await live.settle(row["id"]))["status"] == "succeeded"
        await trio.to_thread.run_sync(stops, tree, cg, loop.pid)
        done = await live.thawed(row["id"])
        assert done["thaw_reason"] == "freeze_ttl: frozen for 2s"
        assert not frozen(tree, cg)
        await trio.to_thread.run_sync(runs, loop.pid)


async def test_rejecting_the_kill_thaws_the_freeze(tree: LiveTree, tmp_path: Path) -> None:
    cg = tree.cgroup("svc")
    loop = tree.start(cg, BUSY)
    wait_for(lambda: cpu_ticks(loop.pid) > 0, 10, "the loop to run")
    async with running(tmp_path, ActionPolicy(ttl_s=60.0, auto=frozenset({"freeze"}))) as live:
        freeze = await live.propose(FREEZE, cg)
        kill = await live.propose(KILL_CGROUP, cg)
        await live.settle(freeze["id"])
        await trio.to_thread.run_sync(stops, tree, cg, loop.pid)
        await live.manager.reject(kill["id"], "alice", "a benchmark")
        await live.thawed(freeze["id"])
        await trio.to_thread.run_sync(runs, loop.pid)
    assert loop.poll() is None  # rejected: never killed


async def test_an_approved_kill_leaves_no_process_even_what_forks(tree: LiveTree,
                                                                  tmp_path: Path) -> None:
    cg = tree.cgroup("svc")
    inner = tree.mkdir(f"{cg.path}/inner")
    forker = tree.start(cg, FORKER)
    nested = tree.start(inner, BUSY)
    wait_for(lambda: len(tree.pids(cg)) > 20, 20, "the forker's children")
    async with running(tmp_path, ActionPolicy(ttl_s=60.0, auto=frozenset({"freeze"}))) as live:
        freeze = await live.propose(FREEZE, cg)
        kill = await live.propose(KILL_CGROUP, cg)
        await live.settle(freeze["id"])
        await live.manager.approve(kill["id"], "alice", "kill it")
        row = await live.settle(kill["id"])
        assert row["status"] == "succeeded", row
        assert tree.pids(cg) + tree.pids(inner) == []
        assert (await live.thawed(freeze["id"]))["thaw_reason"] == (
            f"the paired kill_cgroup (action {kill['id']}) succeeded")
    forker.wait(10)
    nested.wait(10)
    assert (forker.returncode, nested.returncode) == (-9, -9)


async def test_a_kill_approved_after_the_cgroup_was_recreated_is_refused(
        tree: LiveTree, tmp_path: Path) -> None:
    old = tree.cgroup("svc")
    async with running(tmp_path, ActionPolicy(ttl_s=60.0)) as live:
        kill = await live.propose(KILL_CGROUP, old)
        assert kill["status"] == "pending"
        tree.rmdir(old)
        new = tree.mkdir(old.path)  # systemd restarting the unit
        loop = tree.start(new, BUSY)
        await live.manager.approve(kill["id"], "alice", None)
        row = await live.settle(kill["id"])
    assert (row["status"], row["result"]) == ("refused", {"detail": RECREATED})
    assert loop.poll() is None and tree.pids(new) == [loop.pid]


async def test_a_freeze_left_by_a_killed_agent_is_thawed_at_its_next_start(
        tree: LiveTree, tmp_path: Path) -> None:
    cg = tree.cgroup("svc")
    loop = tree.start(cg, BUSY)
    wait_for(lambda: cpu_ticks(loop.pid) > 0, 10, "the loop to run")
    db = tmp_path / "linnix.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    agent = subprocess.Popen([sys.executable, "-c", AGENT, str(db), cg.path, str(cg.id)],
                             stdout=subprocess.PIPE, env=env)
    try:
        assert agent.stdout is not None
        line = await trio.to_thread.run_sync(agent.stdout.readline)
        assert line.startswith(b"frozen "), line
        action_id = int(line.split()[1])
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(10)
    stops(tree, cg, loop.pid)  # nobody thawed it
    async with running(tmp_path, ActionPolicy(ttl_s=60.0)) as live:
        done = await live.thawed(action_id)
        assert done["thaw_reason"] == "thawed at start: the agent stopped while it held it"
        assert not frozen(tree, cg)
        await trio.to_thread.run_sync(runs, loop.pid)
