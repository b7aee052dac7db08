"""The action manager under test: a harness (store, guards, manager), executors that only
record, and the clocks of a trio run.  Shared by the tests of ``linnix.actions.manager``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
import trio
from proc_support import PF_KTHREAD, FakeProc

import linnix.actions.executors as executors_module
from linnix.actions import ActionManager, ActionPolicy, Guards, Target
from linnix.actions.executors import Outcome
from linnix.actions.guards import argv0s
from linnix.actions.pause import PauseFile
from linnix.actions.store import TERMINAL_STATES, AsyncStore, Store
from linnix.plan import CompiledAction

T = TypeVar("T")

KILL = CompiledAction("kill", True, grace_s=2.0)
KILL_TREE = CompiledAction("kill_tree", True)
STOP = CompiledAction("signal", True, signal=19)
RENICE = CompiledAction("renice", True, nice=10)
ANALYZE = CompiledAction("analyze", False)
LIFECYCLE = ["pending", "approved", "executing"]


@attrs.define
class InlineStore(AsyncStore):
    """The store called on the trio thread itself (each call still a checkpoint): when
    every task is blocked, every queued call has been made.  ``calls`` lists each call's
    method name and positional arguments, in order."""

    calls: list[tuple[str, tuple[object, ...]]] = attrs.field(factory=list)

    async def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        await trio.lowlevel.checkpoint()
        self.calls.append((fn.__name__, args))
        return fn(*args, **kwargs)


def only_incident(store: Store) -> dict[str, Any]:
    """The one incident in the store, whole."""
    (summary,) = store.incidents()
    row = store.incident(summary["id"])
    assert row is not None
    return row


async def inline_argv0(pids: list[int], root: str) -> dict[int, str | None]:
    """The guards' reads of argv[0] on the trio thread: a worker thread would let the
    autojump clock leap over their time limit."""
    await trio.lowlevel.checkpoint()
    return argv0s(pids, root)


class Executions:
    """Stands in for the executors: records each call and succeeds."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.fail: BaseException | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for kind in ("kill", "kill_tree", "send_signal", "renice"):
            monkeypatch.setattr(executors_module, kind, self._fake(kind))

    def _fake(self, kind: str) -> Callable[..., Any]:
        async def run(guards: Guards, target: Any, *args: Any, **kw: Any) -> Outcome:
            await trio.lowlevel.checkpoint()
            self.calls.append((kind, target, {"args": args, **kw}))
            if self.fail is not None:
                raise self.fail
            return Outcome(True, f"{kind} done")
        return run


class Harness:
    """A store on a file, guards and a manager; ``published`` collects what it emits."""

    def __init__(self, path: Path, proc_root: str, policy: ActionPolicy, *,
                 wall: Callable[[], float], inline: bool = True,
                 degraded: Callable[[], str | None] = lambda: None,
                 guards: Guards | None = None,
                 boot_offset: Callable[[], float] | None = None,
                 pause_file: PauseFile | None = None, **extra: Any) -> None:
        self.path = path
        self.store = Store(str(path), clock=wall)
        self.astore = InlineStore(self.store) if inline else AsyncStore(self.store)
        self.guards = guards or Guards(frozenset({"sshd"}), frozenset({"/usr/sbin/sshd"}),
                                       own={4242}, root=proc_root)
        self.published: list[dict[str, Any]] = []
        self.manager = ActionManager(
            self.astore, self.guards, policy, degraded=degraded, wall=wall,
            publish=lambda kind, row: self.published.append(dict(row, _kind=kind)),
            boot_offset=boot_offset, read_argv0=inline_argv0 if inline else None,
            pause_file=pause_file, **extra)

    async def propose(self, pid: int | None, action: CompiledAction = KILL, *,
                      monitor_only: bool = False, start: float | None = None,
                      incident_id: int | None = None, exe: str | None = None
                      ) -> dict[str, Any]:
        target = None if pid is None else Target(pid, "worker", start, exe)
        return await self.manager.propose(rule="r", action=action, target=target,
                                          incident_id=incident_id, monitor_only=monitor_only)

    async def settle(self, action_id: int, timeout: float = 20.0) -> dict[str, Any]:
        """The action's row once it reaches a final status."""
        with trio.fail_after(timeout):
            while True:
                row: dict[str, Any] | None = await self.astore.action(action_id)
                assert row is not None
                if row["status"] in TERMINAL_STATES:
                    return row
                await trio.sleep(0.01)

    async def row(self, action_id: int) -> dict[str, Any]:
        row: dict[str, Any] | None = await self.astore.action(action_id)
        assert row is not None
        return row

    def events(self, action_id: int) -> list[tuple[str, str, dict[str, Any]]]:
        """(actor, event, detail) of the action's audit entries, oldest first."""
        return [(e["actor"], e["event"], e["detail"])
                for e in reversed(self.store.audit_log(action_id=action_id, limit=1000))]

    def statuses(self, action_id: int) -> list[str]:
        return [r["status"] for r in self.published
                if r["_kind"] == "action" and r["id"] == action_id]

    def pauses(self) -> list[dict[str, Any]]:
        """What the manager published about its pause switch, in order."""
        return [{k: v for k, v in r.items() if k != "_kind"} for r in self.published
                if r["_kind"] == "pause"]

    def audit(self, *events: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(actor, event, detail) of the audit records of these events, oldest first."""
        return [(e["actor"], e["event"], e["detail"])
                for e in reversed(self.store.audit_log(limit=1000)) if e["event"] in events]


Make = Callable[..., Harness]


@asynccontextmanager
async def running(manager: ActionManager) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        await nursery.start(manager.run)
        yield
        nursery.cancel_scope.cancel()


def mock_wall() -> float:
    return 1_000_000.0 + trio.current_time()


class SteppedWall:
    """The wall clock of the trio run, plus steps (NTP, a VM resumed)."""

    def __init__(self) -> None:
        self.step = 0.0

    def __call__(self) -> float:
        return mock_wall() + self.step


def fake_proc(root: Path) -> FakeProc:
    """init, kthreadd and three workers (pids 500, 501, 502)."""
    p = FakeProc(root)
    p.add(1, "init", 0, start=1)
    p.add(2, "kthreadd", 0, start=1, flags=PF_KTHREAD)
    p.add(500, "worker", 1, start=1000, exe="/usr/bin/worker")
    p.add(501, "worker", 1, start=1001, exe="/usr/bin/worker")
    p.add(502, "worker", 1, start=1002, exe="/usr/bin/worker")
    return p


@contextmanager
def harnesses(path: Path, proc: FakeProc) -> Iterator[Make]:
    """Harnesses on one database file with a fake /proc, on the wall clock of the trio
    run unless told otherwise; closed afterwards."""
    made: list[Harness] = []

    def build(policy: ActionPolicy | None = None, **kw: Any) -> Harness:
        kw.setdefault("wall", mock_wall)
        h = Harness(path, proc.path, policy or ActionPolicy(), **kw)
        made.append(h)
        return h

    yield build
    for h in made:
        h.store.close()


def fail_audit(store: Store, when: str = "1") -> None:
    """Make every audit insert (for which ``when`` holds) fail, as a full disk would."""
    store.db.execute("CREATE TEMP TRIGGER fail_audit BEFORE INSERT ON audit "
                     f"WHEN {when} BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")


def heal(store: Store) -> None:
    """The disk has room again."""
    store.db.execute("DROP TRIGGER temp.fail_audit")
