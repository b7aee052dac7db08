"""Fakes for the cgroup actions' tests: a fake v2 tree on disk (directories with a
cgroup.procs each), primitives that record what they were asked, and proposals."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import trio
from actions_support import Harness
from proc_support import FakeProc

from linnix.actions import ActionManager
from linnix.actions.cgguards import CgroupGuards
from linnix.actions.cgroup import CgroupActions, CgroupTarget, Primitives
from linnix.cgroups.control import Outcome
from linnix.cgroups.hierarchy import Cgroup, Hierarchy
from linnix.plan import CompiledAction

FREEZE = CompiledAction("freeze", False)
KILL_CGROUP = CompiledAction("kill_cgroup", False)
HOG = "/system.slice/hog.service"
OWN = "/system.slice/linnix.service"


class FakeTree:
    """A v2 hierarchy under ``root``: each cgroup a directory, its pids in cgroup.procs,
    and the comm of each pid in the fake /proc."""

    def __init__(self, root: Path, proc: FakeProc) -> None:
        self.root = root
        self.proc = proc
        root.mkdir(parents=True, exist_ok=True)
        (root / "cgroup.procs").write_text("1\n")
        self.hierarchy = Hierarchy(v2=str(root))

    def add(self, path: str, procs: Iterable[tuple[int, str]] = ()) -> CgroupTarget:
        d = self.root / path.lstrip("/")
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.procs").write_text("".join(f"{pid}\n" for pid, _ in procs))
        for pid, comm in procs:
            self.proc.add(pid, comm, 1, start=2000 + pid)
            (self.proc.root / str(pid) / "comm").write_text(comm + "\n")
        return CgroupTarget(path, d.stat().st_ino)

    def guards(self, h: Hierarchy, *, own_cgroup: str | None = OWN,
               protected: frozenset[str] = frozenset()) -> CgroupGuards:
        return CgroupGuards(h, frozenset({"sshd", "systemd"}), {4242}, own_cgroup, protected,
                            root=self.proc.path)


@attrs.define
class FakePrimitives:
    """Records each call as (what, path); a cgroup whose id is in ``recreated`` is another
    one now; ``outcomes`` gives a primitive's answer other than done."""

    calls: list[tuple[str, str]] = attrs.field(factory=list)
    recreated: set[int] = attrs.field(factory=set)
    outcomes: dict[str, Outcome] = attrs.field(factory=dict)

    def _do(self, what: str, cg: Cgroup) -> Outcome:
        self.calls.append((what, cg.path))
        return self.outcomes.get(what, Outcome("done", f"{cg.path} {what} done"))

    def primitives(self) -> Primitives:
        return Primitives(
            freeze=lambda h, cg: self._do("freeze", cg),
            thaw=lambda h, cg: self._do("thaw", cg),
            kill=lambda h, cg: self._do("kill", cg),
            same=lambda h, cg: cg.id not in self.recreated,
            inline=True)

    def of(self, what: str) -> list[str]:
        return [path for w, path in self.calls if w == what]


def manager_kw(tree: FakeTree, fake: FakePrimitives, **guards: Any) -> dict[str, Any]:
    """What a Harness passes its manager for the cgroup actions over ``tree``."""
    return {"hierarchy": tree.hierarchy, "primitives": fake.primitives(),
            "cgroup_guards": lambda h: tree.guards(h, **guards)}


async def propose(h: Harness, action: CompiledAction, target: CgroupTarget | None,
                  rule: str = "hog", monitor_only: bool = False) -> dict[str, Any]:
    return await h.manager.propose(rule=rule, action=action, target=None, incident_id=None,
                                   monitor_only=monitor_only, cgroup=target)


def install(manager: ActionManager, tree: FakeTree, fake: FakePrimitives) -> None:
    """Give a running manager's cgroup side the fake tree and primitives (its TTL thawer
    keeps watching the old one, which holds nothing)."""
    manager.cgroups = CgroupActions(
        manager.store, manager.policy, guards=tree.guards, hierarchy=tree.hierarchy,
        primitives=fake.primitives(), wall=manager.wall)


async def frozen(manager: ActionManager, target: CgroupTarget) -> int:
    """A freeze proposed for ``target``, approved and executed: its action id."""
    row = await manager.propose(rule="hog", action=FREEZE, target=None, incident_id=None,
                                monitor_only=False, cgroup=target)
    await manager.approve(row["id"], "alice", None)
    with trio.fail_after(10):
        while await manager.store.freeze(row["id"]) is None or row["id"] not in (
                manager.cgroups.frozen):
            await trio.sleep(0.01)
    return int(row["id"])
