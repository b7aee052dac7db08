"""The responder keeps an incident's trail: the values its rule read while it was open,
saved every TRAIL_SAVE_S seconds while it is open and when it resolves, in Unix time."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from actions_support import InlineStore, only_incident
from engine_support import system

from linnix.engine.core import Core
from linnix.engine.trail import firing_trails
from linnix.language.pipeline import compile_text
from linnix.runtime.responder import TRAIL_SAVE_S, Responder

WALL = 1_800_000_000.0  # Unix time at the engine's time 0
RULE = "rule hot {\n    when host_cpu_pct > 50 for 1s\n    severity warning\n}\n"


class Rig:
    """A core with one host rule and a responder over the store (no action manager)."""

    def __init__(self, astore: InlineStore) -> None:
        self.core = Core(compile_text(RULE), 0.5, history=True, trails=True)
        self.store = astore.store
        self.astore = astore
        self.responder = Responder(
            self.astore, None, lambda: self.core.table,  # type: ignore[arg-type]
            lambda kind, data: None, trails=lambda: firing_trails(self.core.evaluator.rules),
            wall_offset=lambda: WALL)

    def cpu(self, *points: tuple[float, float]) -> None:
        """Host CPU samples, the ticks among them, and the outputs handed over."""
        self.core.feed([system(ts, cpu_pct=value) for ts, value in points])
        self.core.finish()
        self.responder(self.core.drain())

    def incident(self) -> dict[str, Any]:
        return only_incident(self.store)

    def writes(self) -> list[Any]:
        """The trails handed to the store to keep, each call's."""
        return [args[0] for name, args in self.astore.calls if name == "keep_trails"]


@pytest.fixture
def rig(astore: InlineStore) -> Rig:
    return Rig(astore)


def at(*points: tuple[float, float]) -> list[dict[str, Any]]:
    return [{"at": WALL + ts, "values": {"host_cpu_pct": v}} for ts, v in points]


async def test_the_trail_is_saved_while_open_and_when_it_resolves(
        rig: Rig, autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.responder.run)
        rig.cpu((0.0, 90.0), (2.0, 95.0), (3.0, 97.0))  # pending at 0, firing at 1
        await trio.testing.wait_all_tasks_blocked()
        opened = rig.incident()
        assert opened["history"] == [{"ts": ts, "values": {"host_cpu_pct": 90.0}}
                                     for ts in (0.0, 0.5, 1.0)]  # as before: up to firing
        assert opened["trail"] == []  # nothing saved yet
        await trio.sleep(TRAIL_SAVE_S)
        await trio.testing.wait_all_tasks_blocked()
        assert rig.incident()["trail"] == at((1.0, 90.0), (2.0, 95.0), (3.0, 97.0))
        await trio.sleep(TRAIL_SAVE_S)  # nothing new: not written again
        await trio.testing.wait_all_tasks_blocked()
        assert len(rig.writes()) == 1
        rig.cpu((4.0, 98.0), (5.5, 10.0))  # resolved at 5.5
        await trio.testing.wait_all_tasks_blocked()
        row = rig.incident()
        assert row["resolved_reason"] == "cleared"
        assert row["trail"] == at((1.0, 90.0), (2.0, 95.0), (3.0, 97.0), (4.0, 98.0),
                                  (5.0, 98.0), (5.5, 10.0))
        await trio.sleep(TRAIL_SAVE_S)  # resolved: nothing more to save
        await trio.testing.wait_all_tasks_blocked()
        assert len(rig.writes()) == 1
        nursery.cancel_scope.cancel()


async def test_a_resolution_after_a_save_was_queued_keeps_the_final_trail(rig: Rig) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.responder.run)
        rig.cpu((0.0, 90.0), (2.0, 95.0))
        rig.responder.save_trails()  # queued behind the opening, ahead of the resolution
        rig.cpu((3.0, 10.0))
        await trio.testing.wait_all_tasks_blocked()
        (saved,) = rig.writes()
        assert list(saved.values()) == [at((1.0, 90.0), (2.0, 95.0))]
        assert rig.incident()["trail"] == at((1.0, 90.0), (2.0, 95.0), (3.0, 10.0))
        nursery.cancel_scope.cancel()


async def test_a_resolved_alert_is_placed_by_its_own_wall_time(rig: Rig) -> None:
    """Live, each output carries the Unix time of its ts: the trail is placed by it."""
    rig.core.feed([system(ts, cpu_pct=v) for ts, v in ((0.0, 90.0), (2.0, 10.0))])
    rig.core.finish()
    out = rig.core.drain()
    for item in out:
        item.unix = WALL + 100.0 + item.ts
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rig.responder.run)
        rig.responder(out)
        await trio.testing.wait_all_tasks_blocked()
        assert rig.incident()["trail"] == [
            {"at": WALL + 100.0 + ts, "values": {"host_cpu_pct": v}}
            for ts, v in ((1.0, 90.0), (2.0, 10.0))]
        nursery.cancel_scope.cancel()
