"""The state keeper on trio's autojump clock: when it saves, what a start restores, and
what it makes of a saved state it cannot read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from engine_support import core_for, fork, sample, system
from trio.testing import MockClock

from linnix.actions.store import Store
from linnix.engine.core import Core
from linnix.engine.evaluator import Alert
from linnix.engine.persist import load
from linnix.runtime.keeper import SAVE_EVERY_S, StateKeeper

RULE = "rule hot: cpu_pct > 50\n"


WALL0, BOOT0 = 1_800_000_000.0, 9_000.0  # Unix and boot time when trio's clock reads 0


class FakeClock:
    """The clock of a daemon started when trio's clock read ``started``."""

    def __init__(self, started: float = 0.0) -> None:
        self.started = started
        self.origin = BOOT0 + started

    def now(self) -> float:
        return trio.current_time() - self.started


def wall() -> float:
    return WALL0 + trio.current_time()


class FakeResponder:
    def __init__(self) -> None:
        self.open: dict[Any, int] = {}


class FakeNotifier:
    def __init__(self) -> None:
        self.restored: list[Alert] = []

    def restore(self, alerts: list[Alert]) -> None:
        self.restored.extend(alerts)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(str(tmp_path / "linnix.db"))
    yield s
    s.close()


class InlineStore:
    """The store's async calls made on the trio thread: on the autojump clock a worker
    thread would let virtual time jump while it works."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.saves: list[float] = []  # trio times of each save

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if name == "save_rule_state":
                self.saves.append(trio.current_time())
            return method(*args, **kwargs)

        return call


def keeper(core: Core, store: Store, tmp_path: Path, started: float = 0.0,
           said: list[str] | None = None) -> StateKeeper:
    path = tmp_path / "boot_id"
    path.write_text("b-1\n")
    return StateKeeper(core, InlineStore(store), FakeClock(started), 2.0, boot_id=str(path),
                       say=(said if said is not None else []).append, wall=wall)


def firing_core() -> Core:
    core = core_for(RULE)
    core.feed([fork(0.0, 300, 1, "hog"), sample(1.0, 300, cpu_pct=90.0)])
    core.run_until(1.0)
    return core


async def test_transitions_are_saved_at_most_once_a_second_and_ticks_never(
        autojump_clock: MockClock, store: Store, tmp_path: Path) -> None:
    core = firing_core()
    said: list[str] = []
    k = keeper(core, store, tmp_path, said=said)
    assert (await k.resume(FakeResponder(), None)).summary() == {"restored": None}
    assert said == []  # nothing saved yet: a first start, nothing to say
    async with trio.open_nursery() as nursery:
        nursery.start_soon(k.run)
        k([])  # a tick with nothing to say
        await trio.sleep(5)
        assert (k.saves, store.load_rule_state()) == (0, None)
        alerts = [o for o in core.drain() if isinstance(o, Alert)]
        for _ in range(5):  # a burst of transitions: one save, then one more after it
            k(alerts)
            await trio.sleep(0.1)
        await trio.sleep(SAVE_EVERY_S * 3)
        nursery.cancel_scope.cancel()
    assert k.store.saves == [5.0, 5.0 + SAVE_EVERY_S]
    assert k.saves == 2
    snap = load(store.load_rule_state())
    assert [(r.name, [(i.state, i.pid) for i in r.instances]) for r in snap.rules] == [
        ("hot", [("firing", 300)])]


def test_nothing_is_saved_at_shutdown_by_a_keeper_that_never_resumed(store: Store,
                                                                    tmp_path: Path) -> None:
    store.save_rule_state(b"what the last run saved", 1.0)
    keeper(core_for(RULE), store, tmp_path).save_now()  # the start failed before resuming
    assert store.load_rule_state() == b"what the last run saved"


async def test_a_start_restores_the_state_saved_at_shutdown(
        autojump_clock: MockClock, store: Store, tmp_path: Path) -> None:
    old = firing_core()
    incident = store.open_incident(rule="hot", severity="warning", scope="process", pid=300,
                                   comm="hog", start=0.0, message="m", labels={}, history=[],
                                   subtree=[], host={})
    before = keeper(old, store, tmp_path)
    await before.resume(FakeResponder(), None)
    await trio.sleep(30)
    before.save_now()

    new = core_for(RULE)  # 30s later, same boot: the process started 30s before its clock
    new.feed([system(0.0), *_scan(300, -30.0)])
    said: list[str] = []
    after = keeper(new, store, tmp_path, started=30.0, said=said)
    responder, notifier = FakeResponder(), FakeNotifier()
    resumed = await after.resume(responder, notifier)
    assert resumed.incidents == [incident]
    assert responder.open == {("hot", 300, -30.0, None): incident}  # keyed as it will resolve
    assert [(a.rule, a.state, a.pid, a.ts) for a in notifier.restored] == [
        ("hot", "firing", 300, -29.0)]
    assert resumed.summary() == {"restored": {"firing": 1}, "fresh_rules": [],
                                 "kept_incidents": 1}
    assert any("1 firing, 0 pending" in line for line in said)


async def test_an_unreadable_saved_state_is_said_and_the_rules_start_afresh(
        autojump_clock: MockClock, store: Store, tmp_path: Path) -> None:
    store.save_rule_state(b"\x00garbage", 1.0)
    core = core_for(RULE)
    core.feed(_scan(300, -1.0))
    said: list[str] = []
    resumed = await keeper(core, store, tmp_path, said=said).resume(FakeResponder(),
                                                                    FakeNotifier())
    assert resumed.summary() == {"restored": None}
    assert len(said) == 1 and said[0].startswith("the saved rule state is ignored (not a "
                                                 "snapshot: ")
    assert said[0].endswith("); the rules start afresh")
    assert core.evaluator.rules[0].instances == {}


def _scan(pid: int, start: float) -> list[Any]:
    from linnix.engine import trace as t

    return [t.Proc(ts=0.0, pid=pid, ppid=1, comm="hog", start=start)]
