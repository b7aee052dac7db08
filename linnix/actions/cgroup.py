"""The cgroup actions, ``freeze`` and ``kill_cgroup``: guards, execution, and every freeze
until it is undone.

A cgroup is named by its path and its id (the inode of its directory): both are
stored with the action, and the id is checked again before anything is done
(:func:`linnix.cgroups.control.same_cgroup`), so a unit that systemd restarted
at the same path since the proposal is never touched ("the cgroup was re-created
since the proposal").  The primitives run in a thread (they wait on the kernel).

A freeze never outlives the decision about it.  Each one is recorded in the
store when it is made and thawed:

* after ``[actions] freeze_ttl`` (at most the action TTL) at the latest;
* when the ``kill_cgroup`` proposed with it (the same rule, the same cgroup:
  ``action freeze`` then ``action kill_cgroup``) is decided and done with, however
  it ended: rejected, expired, refused, failed or executed (an emptied cgroup
  is thawed too, so that what systemd starts in it again does not freeze);
* when a person thaws it (``POST /actions/{id}/thaw``);
* when the agent stops (within :data:`THAW_AT_STOP_S`), and at the next start
  for whatever a crashed or killed agent left frozen.

Kills are limited per unit (the cgroup's path outside units): at most
``[actions] cgroup_kills_per_unit`` in :data:`KILL_WINDOW_S`; the one over the
limit is refused (and so audited).
"""

from __future__ import annotations

import heapq
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import trio

from ..cgroups import control
from ..cgroups.hierarchy import Cgroup, Hierarchy, discover
from ..cgroups.paths import unit_of
from ..names import ACTIONS
from .cgguards import CgroupGuards
from .ledger import wait_until_due
from .policy import ActionPolicy, NotFrozenError
from .store import AsyncStore, Entry

__all__ = ["CGROUP_KINDS", "KILL_WINDOW_S", "REVERSIBLE", "RECREATED", "THAW_AT_STOP_S",
           "CgroupActions", "CgroupTarget", "Primitives", "paired_end"]

T = TypeVar("T")


def paired_end(kill_id: int, status: str) -> str:
    """Why a freeze ends with its paired kill: "... was rejected", "... succeeded"."""
    verb = status if status in ("succeeded", "failed") else f"was {status}"
    return f"the paired kill_cgroup (action {kill_id}) {verb}"

CGROUP_KINDS = frozenset(name for name, spec in ACTIONS.items() if spec.targets_cgroup)
REVERSIBLE = frozenset(n for n, spec in ACTIONS.items() if spec.reversible)  # [actions] auto
KILL_WINDOW_S = 600.0  # cgroup_kills_per_unit counts the kills of this window
THAW_AT_STOP_S = 10.0  # what a stopping agent spends thawing, at most
RECREATED = "the cgroup was re-created since the proposal"


@attrs.frozen
class CgroupTarget:
    """The cgroup a cgroup action was proposed for: path and id (its directory's inode)."""

    path: str
    id: int


@attrs.frozen
class Primitives:
    """The cgroup primitives used (:mod:`linnix.cgroups.control`; tests give fakes)."""

    freeze: Callable[[Hierarchy, Cgroup], control.Outcome] = control.freeze
    thaw: Callable[[Hierarchy, Cgroup], control.Outcome] = control.thaw
    kill: Callable[[Hierarchy, Cgroup], control.Outcome] = control.kill
    same: Callable[[Hierarchy, Cgroup], bool] = control.same_cgroup
    # run in a worker thread (they wait on the kernel); False only for fakes that do not
    inline: bool = False


@attrs.define
class _Freeze:
    action_id: int
    cgroup: Cgroup
    deadline: float  # trio time


class CgroupActions:
    """The cgroup side of one action manager."""

    def __init__(self, store: AsyncStore, policy: ActionPolicy, *,
                 guards: Callable[[Hierarchy], CgroupGuards],
                 hierarchy: Hierarchy | None = None,
                 primitives: Primitives | None = None,
                 wall: Callable[[], float],
                 say: Callable[[str], None] = lambda message: None) -> None:
        self.store = store
        self.policy = policy
        self._make_guards = guards
        self._hierarchy = hierarchy
        self._guards: CgroupGuards | None = None
        self.primitives = primitives or Primitives()
        self.wall = wall
        self.say = say
        self.frozen: dict[int, _Freeze] = {}  # freeze action -> its freeze in force
        self._deadlines: list[tuple[float, int]] = []  # (trio time, freeze action)
        self._wake = trio.Event()
        self._freezes: dict[tuple[str, int], int] = {}  # (rule, cgroup id) -> freeze action
        self._pairs: dict[int, int] = {}  # kill action -> the freeze proposed with it
        self._decided: set[int] = set()  # freezes whose paired kill is done with
        self._kills: dict[str, deque[float]] = {}  # unit -> trio times of its kills

    # ---- set-up ---------------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread (abandoned if cancelled: a stopping agent does
        not wait past its bound), or inline for fakes."""
        if self.primitives.inline:
            return fn(*args)
        return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)

    async def _ready(self) -> tuple[Hierarchy, CgroupGuards]:
        """The hierarchy and the guards, found once (in a thread: they read files)."""
        if self._hierarchy is None:
            self._hierarchy = await self._call(discover)
        h = self._hierarchy
        guards = self._guards
        if guards is None:
            guards = self._guards = await self._call(self._make_guards, h)
        return h, guards

    # ---- proposals --------------------------------------------------------------------
    async def refusal(self, target: CgroupTarget) -> str | None:
        """Why the cgroup may not be touched at all, at proposal."""
        h, guards = await self._ready()
        cg = Cgroup(target.id, target.path)
        same = await self._call(self.primitives.same, h, cg)
        if not same:
            return "the cgroup was removed or re-created since the rule fired"
        return await self._call(guards.check, target.path)

    def proposed(self, action_id: int, rule: str, kind: str, target: CgroupTarget) -> None:
        """Pair a kill with the freeze the same rule proposed for the same cgroup."""
        key = (rule, target.id)
        if kind == "freeze":
            self._freezes[key] = action_id
            return
        freeze_id = self._freezes.get(key)  # kept until that freeze is done with
        if freeze_id is not None:
            self._pairs[action_id] = freeze_id

    def holding(self, rule: str, cgroup_id: int) -> int | None:
        """The freeze in force that ``rule`` made on the cgroup, if there is one: the rule
        firing again for it proposes no second freeze."""
        freeze_id = self._freezes.get((rule, cgroup_id))
        return freeze_id if freeze_id in self.frozen else None

    def paired_freeze(self, kill_id: int) -> int | None:
        return self._pairs.get(kill_id)

    # ---- execution --------------------------------------------------------------------
    async def execute(self, row: dict[str, Any]) -> tuple[str, str]:
        """Guards and identity again, the rate limit, then the primitive: (status, detail)."""
        if row["cgroup"] is None or row["cgroup_id"] is None:
            return "failed", "the action names no cgroup"
        h, guards = await self._ready()
        cg = Cgroup(int(row["cgroup_id"]), str(row["cgroup"]))
        if not await self._call(self.primitives.same, h, cg):
            return "refused", RECREATED
        refusal = await self._call(guards.check, cg.path)
        if refusal is not None:
            return "refused", refusal
        if row["kind"] == "freeze":
            return await self._freeze(row["id"], h, cg)
        if row["kind"] == "kill_cgroup":
            return await self._kill(h, cg)
        return "failed", f"unknown cgroup action {row['kind']!r}"

    async def _freeze(self, action_id: int, h: Hierarchy, cg: Cgroup) -> tuple[str, str]:
        for_s = self.policy.freeze_for_s
        # recorded before it is made: a crash right after the write must leave a record
        await self.store.add_freeze(action_id, cg.path, cg.id, self.wall() + for_s, Entry(
            "linnix", "action.freezing", {"cgroup": cg.path, "thaw_within_s": for_s}))
        outcome = await self._call(self.primitives.freeze, h, cg)
        if outcome.status == "timeout":  # partly frozen, perhaps: kept, and thawed in time
            pass
        elif not outcome.ok:
            await self.store.end_freeze(action_id, outcome.detail, Entry(
                "linnix", "action.thawed", {"reason": f"not frozen: {outcome.detail}"}))
            return ("refused" if outcome.status == "refused" else "failed"), outcome.detail
        self.frozen[action_id] = _Freeze(action_id, cg, trio.current_time() + for_s)
        heapq.heappush(self._deadlines, (trio.current_time() + for_s, action_id))
        self._wake.set()
        if action_id in self._decided:  # its kill was decided while it was being made
            await self.thaw(action_id, "linnix", "the paired kill_cgroup was decided meanwhile")
        return ("succeeded" if outcome.ok else "failed"), (
            f"{outcome.detail}; thawed within {for_s:g}s at the latest")

    async def _kill(self, h: Hierarchy, cg: Cgroup) -> tuple[str, str]:
        unit = unit_of(cg.path) or cg.path
        now = trio.current_time()
        for name in list(self._kills):  # old kills forgotten: bounded by the live units
            times = self._kills[name]
            while times and times[0] <= now - KILL_WINDOW_S:
                times.popleft()
            if not times:
                del self._kills[name]
        done = self._kills.setdefault(unit, deque())
        if len(done) >= self.policy.cgroup_kills_per_unit:
            return "refused", (f"{len(done)} kill(s) of {unit} within {KILL_WINDOW_S:g}s "
                               "already: the limit of [actions] cgroup_kills_per_unit")
        done.append(now)
        outcome = await self._call(self.primitives.kill, h, cg)
        status = "succeeded" if outcome.ok else ("refused" if outcome.status == "refused"
                                                 else "failed")
        return status, outcome.detail

    # ---- decisions about a pair ------------------------------------------------------
    async def finished(self, action_id: int, kind: str, status: str) -> None:
        """An action is done with: a kill's paired freeze thaws (``kill_cgroup``), a freeze
        that did not freeze is forgotten (one that did is, once thawed)."""
        if kind == "freeze":
            if status != "succeeded":
                self._forget_proposal(action_id)
            return
        freeze_id = self._pairs.pop(action_id, None)
        if freeze_id is None:
            return
        self._decided.add(freeze_id)
        if freeze_id in self.frozen:
            await self.thaw(freeze_id, "linnix",
                            paired_end(action_id, status))

    def _forget_proposal(self, freeze_id: int) -> None:
        self._decided.discard(freeze_id)
        for key, value in list(self._freezes.items()):
            if value == freeze_id:
                del self._freezes[key]

    # ---- thawing ----------------------------------------------------------------------
    async def thaw(self, action_id: int, actor: str, reason: str) -> dict[str, Any]:
        """Thaw the freeze ``action_id`` made; NotFrozenError when none is in force."""
        held = self.frozen.pop(action_id, None)
        if held is None:
            stored = await self.store.freeze(action_id)
            why = ("it never froze anything" if stored is None else
                   f"it was thawed already ({stored['thaw_reason']})")
            raise NotFrozenError(action_id, why)
        self._forget_proposal(action_id)
        h, _ = await self._ready()
        return await self._thaw(h, action_id, held.cgroup, actor, reason)

    async def _thaw(self, h: Hierarchy, action_id: int, cg: Cgroup, actor: str,
                    reason: str) -> dict[str, Any]:
        outcome = await self._call(self.primitives.thaw, h, cg)
        detail = {"reason": reason, "cgroup": cg.path, "outcome": outcome.status,
                  "detail": outcome.detail}
        try:
            if outcome.ok or outcome.status in ("gone", "refused"):  # nothing frozen is left
                await self.store.end_freeze(action_id, reason,
                                            Entry(actor, "action.thawed", detail))
                return detail
            await self.store.audit(actor, "action.thaw_failed", action_id=action_id, **detail)
        except (sqlite3.Error, OSError) as err:  # thawed all the same; the next start sees it
            self.say(f"action {action_id}: {cg.path}: {outcome.detail}, but the store failed "
                     f"to record it: {err}")
            return detail
        # still frozen, perhaps: kept in the store, to be tried again at the next start
        self.say(f"action {action_id}: cannot thaw {cg.path}: {outcome.detail}; it is "
                 "thawed at the next start, or by hand (echo 0 > cgroup.freeze)")
        return detail

    async def restore(self) -> None:
        """Thaw what an earlier run froze and did not thaw (a crash, a SIGKILL, an upgrade)."""
        left = await self.store.active_freezes()
        if not left:
            return
        h, _ = await self._ready()
        for row in left:
            await self._thaw(h, row["action_id"], Cgroup(row["cgroup_id"], row["cgroup"]),
                             "linnix", "thawed at start: the agent stopped while it held it")

    async def run(self) -> None:
        """Thaw each freeze when its time is up (until cancelled)."""
        while True:
            now = trio.current_time()
            while self._deadlines and self._deadlines[0][0] <= now:
                _, action_id = heapq.heappop(self._deadlines)
                if action_id in self.frozen:
                    await self.thaw(action_id, "linnix",
                                    f"freeze_ttl: frozen for {self.policy.freeze_for_s:g}s")
            self._wake = trio.Event()
            await wait_until_due(self._deadlines, self._wake)

    async def stop(self) -> None:
        """Thaw every freeze in force, within THAW_AT_STOP_S (the next start does the rest)."""
        if not self.frozen or self._hierarchy is None:
            return
        with trio.move_on_after(THAW_AT_STOP_S) as scope:
            scope.shield = True
            for action_id in list(self.frozen):
                held = self.frozen.pop(action_id)
                await self._thaw(self._hierarchy, action_id, held.cgroup, "linnix",
                                 "thawed as the agent stopped")
