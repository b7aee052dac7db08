"""The rules' state kept across a restart of the daemon (issue 11).

:class:`StateKeeper` is a sink of the live engine: a batch with a transition
(pending, firing, resolved) marks the state changed, and its task saves the
engine's snapshot (:mod:`linnix.engine.persist`) to the store's ``rule_state``
row, at most once every :data:`SAVE_EVERY_S` however many transitions come (a
tick alone saves nothing).  At shutdown it is saved once more, whatever it is.

At the start, before the first tick, :meth:`StateKeeper.resume` restores the
snapshot: firing instances stay firing (their open incidents stay open and
theirs, Alertmanager hears of them again with their first ``startsAt``),
``for`` timers and cooldowns resume, event rules' cooldowns and ``max_rate``
windows too (a restart does not alert again on a flood they held back).  A
snapshot that cannot be read is said and ignored: the rules start afresh, as
they did before there was one.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from ..engine.core import Core, Output
from ..engine.evaluator import Alert
from ..engine.persist import Clocks, Restored, SnapshotError, load, restore, save
from ..errors import Outage
from ..procfs import Clock

__all__ = ["BOOT_ID", "SAVE_EVERY_S", "Resumed", "StateKeeper", "settle_time"]

SAVE_EVERY_S = 1.0  # a burst of transitions is one save; a crash loses at most this much
BOOT_ID = "/proc/sys/kernel/random/boot_id"  # another boot: no process is the same


def settle_time(sample_interval: float) -> float:
    """How long a restored instance's false condition is not believed: until samples are
    in (a CPU share needs two of them)."""
    return max(2.0, 3 * sample_interval)


@attrs.define
class Resumed:
    """What the start made of the saved state."""

    restored: Restored | None = None
    incidents: list[int] = attrs.field(factory=list)  # open incidents that stay open

    def summary(self) -> dict[str, Any]:
        """For the audit record of the start."""
        if self.restored is None:
            return {"restored": None}
        return {"restored": dict(sorted(self.restored.counts.items())),
                "fresh_rules": self.restored.fresh, "kept_incidents": len(self.incidents)}


class StateKeeper:
    """Saves the engine's rule state on transitions and at shutdown; restores it at start."""

    def __init__(self, core: Core, store: Any, clock: Clock, settle_s: float,
                 say: Callable[[str], None] = lambda message: None,
                 boot_id: str = BOOT_ID, wall: Callable[[], float] = time.time) -> None:
        self.core = core
        self.store = store  # an AsyncStore
        self.clock = clock
        self.wall = wall
        self.settle_s = settle_s
        self.say = say
        self.boot_id_path = boot_id
        self.clocks: Clocks | None = None  # known once resumed: nothing is saved before
        self.saves = 0
        self.outage = Outage(say)
        self._dirty = trio.Event()

    # ---- the sink -------------------------------------------------------------------
    def __call__(self, batch: Sequence[Output]) -> None:
        if any(isinstance(item, Alert) for item in batch):
            self._dirty.set()

    # ---- saving ---------------------------------------------------------------------
    def _snapshot(self) -> tuple[bytes, float]:
        assert self.clocks is not None
        now = self.clock.now()
        return save(self.core.evaluator, self.clocks, now, self.core.events), self.clocks.wall + now

    async def run(self) -> None:
        """Save after each transition, at most once every :data:`SAVE_EVERY_S`."""
        while True:
            await self._dirty.wait()
            self._dirty = trio.Event()
            if self.clocks is not None:
                data, saved_at = self._snapshot()
                try:
                    await self.store.save_rule_state(data, saved_at)
                except (sqlite3.Error, OSError) as err:
                    self._failed(err)
                else:
                    self._saved()
            await trio.sleep(SAVE_EVERY_S)

    def save_now(self) -> None:
        """The last save, at shutdown (the store's own thread is idle by then)."""
        if self.clocks is None:
            return  # never resumed: what is saved is still the state to restore
        data, saved_at = self._snapshot()
        try:
            self.store.store.save_rule_state(data, saved_at)
        except (sqlite3.Error, OSError) as err:
            self._failed(err)
        else:
            self.saves += 1

    def _failed(self, err: Exception) -> None:
        self.outage.failed(f"cannot save the rules' state: {err}; after a restart they "
                           "would start from an older state", 1)

    def _saved(self) -> None:
        self.saves += 1
        self.outage.worked("saving the rules' state again")

    # ---- restoring ------------------------------------------------------------------
    async def resume(self, responder: Any, notifier: Any) -> Resumed:
        """Restore the saved state into the engine, before its first tick; tell the
        responder which open incidents are still theirs and the notifier what fires."""
        boot_id = await trio.to_thread.run_sync(_read_boot_id, self.boot_id_path)
        now = self.core.next_tick if self.core.first_ts is not None else self.clock.now()
        self.clocks = Clocks(self.wall() - self.clock.now(), self.clock.origin, boot_id)
        try:
            data = await self.store.load_rule_state()
            if data is None:
                return Resumed()  # nothing saved yet: the first start
            snap = load(data)
        except SnapshotError as err:
            self.say(f"the saved rule state is ignored ({err}); the rules start afresh")
            return Resumed()
        except sqlite3.Error as err:
            self.say(f"cannot read the saved rule state ({err}); the rules start afresh")
            return Resumed()
        restored = restore(self.core.evaluator, self.core.table, snap, self.clocks, now,
                           self.settle_s, self.core.events)
        opened = {(r["rule"], r["pid"], r["start"]): int(r["id"])
                  for r in await self.store.open_incidents()}  # the newest one last: kept
        kept = {}
        for alert, start in restored.firing:
            incident = opened.get((alert.rule, alert.pid, start))
            if incident is not None:  # restored instances are processes' and the host's
                kept[alert.instance] = incident
        responder.open.update(kept)
        if notifier is not None:
            notifier.restore([alert for alert, _ in restored.firing])
        self._tell(restored)
        return Resumed(restored, sorted(kept.values()))

    def _tell(self, restored: Restored) -> None:
        counts = restored.counts
        if not (counts or restored.fresh):
            return
        fresh = f"; changed since, starting afresh: {', '.join(restored.fresh)}" \
            if restored.fresh else ""
        self.say(f"rule state restored (saved {restored.outage_s:,.0f}s before this start): "
                 f"{counts['firing']} firing, {counts['pending']} pending, {counts['cooling']} "
                 f"cooling down; {counts['gone']} whose process is gone, {counts['stale']} "
                 f"too old to carry on{_events(counts)}{fresh}")


def _events(counts: Counter[str]) -> str:
    """The event rules' part of the start's message (none when nothing was restored)."""
    keys, rate = counts["event_cooldowns"], counts["event_rate"]
    if not (keys or rate):
        return ""
    return f"; event rules: {keys} cooldown key(s), {rate} alert(s) within max_rate"


def _read_boot_id(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read(64).strip() or None
    except (OSError, ValueError):
        return None
