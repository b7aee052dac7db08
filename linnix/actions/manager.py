"""The lifecycle of actions: proposed, approved or not, executed exactly once.

::

    proposed ─┬─► refused                         (a guard said no)
              └─► pending ─┬─► rejected           (a person said no)
                           ├─► expired            (nobody decided within the TTL, or
                           │                       the target exited meanwhile)
                           └─► approved ─► executing ─┬─► succeeded
                                                      ├─► failed
                                                      └─► refused (a guard, re-checked)

In ``monitor`` mode nothing runs until a person approves it.  In ``enforce``
mode a proposal is approved automatically when every guard passes, unless the
rule says ``mode monitor``, the input is degraded (events were lost within
the degraded window, or time jumped and no fresh sample has come since) or the
rate limit is reached; then it waits for a person like in monitor mode.
Guards run at proposal and again right before execution.  Every step is
written to the audit log with who did it and why.

While every action is paused (:mod:`.pause`), nothing executes: proposals are
still made and marked, a person's approval is refused, enforce mode approves
nothing, and an action approved just before the pause is refused before it runs.

The transition pending → approved is made in one synchronous step on the trio
thread and in the database with ``WHERE status = 'pending'``, so concurrent
approvals execute an action once.

Every decision (a proposal, an approval, a rejection, an expiry, an
execution's result) is one transaction of the store: the action's row and its
audit record, or neither.  The manager claims a decision on the trio thread
first and gives the claim back when the store fails, so what it tracks and
what is stored never part: a decision a person asked for fails with the
store's error and can be asked again; an expiry or a result is written again
every :data:`RETRY_S` seconds until the store takes it.  At start, every
pending action in the store is tracked again, or expired with the reason.

A target has at most one pending action per rule and action: when the rule
fires again for the same process (pid and start time) while one is pending,
the firing is counted on it (``repeats``, ``last_seen_at``, an
``action.repeated`` audit record) instead of asking again.

While an action is pending, its target is watched (:mod:`.watches`): when that
very process exits, the action expires at once with that reason.

Two clocks: the wall clock (``wall``) dates what is stored, for people
(``created_at``, ``expires_at``, ``decided_at``); deadlines and the rate limit
are measured on trio's monotonic clock, so a step of the wall clock (NTP, a
VM resumed) neither shortens nor lengthens a TTL.  After a restart, what was
left of a TTL is all the wall clock can tell.

The cgroup actions (``freeze``, ``kill_cgroup``: :mod:`.cgroup`) follow the same
lifecycle, with a cgroup (path and id) for a target instead of a process.  A
kind listed in ``[actions] auto`` (only reversible ones: ``freeze``) is approved
at once, in monitor mode too, by "linnix (auto)", which the audit log says.
"""

from __future__ import annotations

import contextlib
import heapq
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import trio

from ..cgroups.hierarchy import Hierarchy
from ..errors import Outage
from ..names import ACTIONS
from ..plan import CompiledAction
from .cgguards import CgroupGuards, own_cgroup
from .cgroup import CGROUP_KINDS, CgroupActions, CgroupTarget, Primitives, paired_end
from .executors import EXECUTORS, Outcome
from .guards import Guards, Identity, ReadArgv0, argv0_reader, descendants, identify
from .ledger import RETRY_S, Ledger, Publish, StoreFailure, wait_until_due
from .pause import Pause, PauseFile, PauseSwitch
from .pending import Key, OpenProposals, cgroup_key, key_of, params_of, row_key, undecidable
from .policy import (
    ActionConflictError,
    ActionNotFoundError,
    ActionPolicy,
    ActionsPausedError,
    RateLimitedError,
    Target,
)
from .store import AsyncStore, Entry
from .watches import ExitWatches

__all__ = [
    "ActionConflictError", "ActionManager", "ActionNotFoundError", "ActionPolicy",
    "CgroupTarget", "RETRY_S", "RateLimitedError", "Target", "cgroup_guards",
]

EXITED = "the target process exited before anyone decided"
AUTO = "linnix (auto)"  # who approves what [actions] auto lists


class ActionManager(Ledger):
    """Proposals in, decisions and executions out, everything audited."""

    def __init__(self, store: AsyncStore, guards: Guards, policy: ActionPolicy, *,
                 degraded: Callable[[], str | None] = lambda: None,
                 publish: Publish = lambda kind, data: None,
                 wall: Callable[[], float] = time.time,
                 boot_offset: Callable[[], float] | None = None,
                 on_problem: Callable[[str], None] = lambda message: None,
                 read_argv0: ReadArgv0 | None = None,
                 pause_file: PauseFile | None = None,
                 cgroup_guards: Callable[[Hierarchy], CgroupGuards] | None = None,
                 hierarchy: Hierarchy | None = None,
                 primitives: Primitives | None = None) -> None:
        self.store = store
        self.read_argv0 = read_argv0 or argv0_reader()
        self.guards = guards
        self.policy = policy
        self.degraded = degraded
        self.publish = publish
        self.wall = wall
        self.boot_offset = boot_offset
        self.outage = Outage(on_problem)  # the store failing in the background, said once
        self.status: dict[int, str] = {}  # the truth for pending/approved on this thread
        self._targets: dict[int, Identity] = {}  # pending action -> its target
        self._deadlines: list[tuple[float, int]] = []  # (trio time, action id)
        self._why: dict[int, str] = {}  # why a pending action is due before its TTL
        self._wake = trio.Event()
        self._executions: deque[float] = deque()  # trio times of recent approvals
        self._nursery: trio.Nursery | None = None
        self.counts: dict[tuple[str, str], int] = {}  # (kind, status) -> changes
        self._kinds: dict[int, str] = {}  # action -> its kind, until it is finished
        self._watches = ExitWatches(guards, self._exited)  # pending action -> its exit watch
        self._open = OpenProposals()  # one pending action per rule, action and target
        self._proposing = trio.Lock()  # one proposal at a time: no twin can slip in
        self.switch = PauseSwitch(store, pause_file, publish=publish, wall=wall, say=on_problem)
        self.cgroups = CgroupActions(
            store, policy, guards=cgroup_guards or _default_guards(guards), hierarchy=hierarchy,
            primitives=primitives, wall=wall, say=on_problem)

    # ---- running ---------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Restore pending actions, then expire them on time until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = self._watches.nursery = self.switch.nursery = nursery
                await self.switch.restore()  # before anything can be approved
                await self.cgroups.restore()  # what a crashed run left frozen
                await self._restore()
                nursery.start_soon(self.cgroups.run)
                task_status.started()
                await self._expirer()
        finally:
            await self.cgroups.stop()  # shielded, bounded: a freeze never outlives the agent

    async def _restore(self) -> None:
        """Take over what a previous run left: every action that was being decided or
        run, however many there are."""
        assert self._nursery is not None
        for status, when in (("approved", "before executing it"),
                             ("executing", "while executing it")):
            for row in await self._every(status):  # written in the background, until it is
                self.status[row["id"]], self._kinds[row["id"]] = "failed", row["kind"]
                self._nursery.start_soon(self._settle, row["id"], status, "failed",
                                         f"interrupted: the daemon stopped {when}")
        for row in await self._every("pending"):
            self._adopt(row)
        self._wake.set()

    async def _every(self, status: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page: list[dict[str, Any]] = await self.store.actions(status=status, limit=1000)
        while page:
            rows += page
            page = await self.store.actions(status=status, limit=1000, before=page[-1]["id"])
        return rows

    def _adopt(self, row: dict[str, Any]) -> None:
        """Track a pending action found in the store: until its deadline, or expire it
        at once (with the reason) when it cannot be decided any more."""
        action_id = row["id"]
        self.status[action_id], self._kinds[action_id] = "pending", row["kind"]
        now = trio.current_time()
        why = undecidable(row)
        cgroup = row.get("cgroup_id") is not None
        if why is None and not cgroup and self.guards.still(_identity(row)) is not None:
            why = EXITED  # gone, or its pid holds another process now
        if why is not None:
            self._why[action_id] = why
            heapq.heappush(self._deadlines, (now, action_id))
            return
        left = max(0.0, float(row["expires_at"]) - self.wall())  # the wall's word only
        self._track(action_id, None if cgroup else _identity(row), now + left, row_key(row))

    async def _expirer(self) -> None:
        while True:
            now = trio.current_time()
            while self._deadlines and self._deadlines[0][0] <= now:
                _, action_id = heapq.heappop(self._deadlines)
                if self.status.get(action_id) == "pending":
                    await self._expire(action_id)
            self._wake = trio.Event()
            await wait_until_due(self._deadlines, self._wake)

    async def _expire(self, action_id: int) -> None:
        reason = self._why.get(action_id, f"nobody decided within {self.policy.ttl_s:g}s")
        self._claim(action_id, "expired")
        try:
            await self._finish(action_id, "pending", "expired", reason, actor="linnix")
        except StoreFailure as err:
            self._release(action_id)  # pending in the store: pending here too
            self._why[action_id] = reason
            heapq.heappush(self._deadlines, (trio.current_time() + RETRY_S, action_id))
            self._store_failed(action_id, err)
            return
        self._store_worked()

    # ---- the pause switch (see .pause) ----------------------------------------------
    @property
    def paused(self) -> Pause | None:
        """The pause in force, or None when actions may run."""
        return self.switch.paused

    async def pause(self, by: str, reason: str | None = None, for_s: float | None = None,
                    note: str | None = None) -> Pause:
        return await self.switch.pause(by, reason, for_s, note)

    async def resume(self, by: str, reason: str | None = None,
                     note: str | None = None) -> Pause:
        return await self.switch.resume(by, reason, note)

    # ---- proposals -------------------------------------------------------------------
    async def propose(self, *, rule: str, action: CompiledAction, target: Target | None,
                      incident_id: int | None, monitor_only: bool,
                      cgroup: CgroupTarget | None = None) -> dict[str, Any]:
        """Record a proposal; in enforce mode, approve and execute it when allowed.

        The action and its audit records are stored in one transaction: when the
        store fails, this raises and nothing was proposed."""
        params = params_of(action)
        mode = "monitor" if monitor_only or self.policy.mode != "enforce" else "enforce"
        if action.name in CGROUP_KINDS:
            async with self._proposing:
                return await self._propose_cgroup(rule, action.name, cgroup, incident_id,
                                                  params, mode)
        if not action.targets_process:
            action_id = await self.store.add_action(
                incident_id=incident_id, rule=rule, kind=action.name, params=params, pid=None,
                start_ticks=None, comm=None, exe=None, status="recorded", mode=mode,
                expires_at=None, reason="recorded for analysis; nothing is executed",
                audit=[Entry("linnix", "action.recorded", {"rule": rule, "kind": action.name},
                             incident_id)])
            return await self._emit(action_id)
        async with self._proposing:
            return await self._propose_for(rule, action, target, incident_id, params, mode)

    async def _propose_for(self, rule: str, action: CompiledAction, target: Target | None,
                           incident_id: int | None, params: dict[str, Any],
                           mode: str) -> dict[str, Any]:
        """A proposal for a process: counted on the pending one for the same target, or
        guarded, stored and (in enforce mode) approved when allowed."""
        ident, refusal = self._identify(target)
        key = None
        if refusal is None and ident is not None:
            key = key_of(rule, action.name, params, ident.pid, ident.start_ticks)
            repeated = await self._repeat(key, incident_id)
            if repeated is not None:
                return repeated
            tree = (descendants(ident.pid, self.guards.root) if ACTIONS[action.name].subtree
                    else [])
            refusal = self.guards.check(ident, tree=tree, argv0=await self._argv0(ident, tree),
                                        started_as=target.exe if target else None)
        status = "refused" if refusal else "pending"
        deadline = trio.current_time() + self.policy.ttl_s
        paused = None if refusal else _while_paused(self.paused, mode)
        audit = [Entry("linnix", "action.proposed", {
            "rule": rule, "kind": action.name, "pid": target.pid if target else None,
            "mode": mode, **({"paused": True} if paused else {})}, incident_id)]
        if refusal:
            audit.append(Entry("linnix", "action.refused", {"reason": refusal,
                                                            "at": "proposal"}))
        action_id = await self.store.add_action(
            incident_id=incident_id, rule=rule, kind=action.name, params=params,
            pid=target.pid if target else None, start_ticks=ident.start_ticks if ident else None,
            comm=ident.comm if ident else (target.comm if target else None),
            exe=ident.exe if ident else None, status=status, mode=mode,
            expires_at=None if refusal else self.wall() + self.policy.ttl_s,  # for people
            reason=refusal or paused, audit=audit)
        self._count(action_id, status, action.name)
        if refusal:
            return await self._emit(action_id)
        assert ident is not None and key is not None  # refused above without an identity
        self._track(action_id, ident, deadline, key)
        if mode == "enforce":
            await self._auto_approve(action_id)
        return await self._emit(action_id)

    async def _propose_cgroup(self, rule: str, kind: str, cgroup: CgroupTarget | None,
                              incident_id: int | None, params: dict[str, Any],
                              mode: str) -> dict[str, Any]:
        """A proposal for a cgroup: counted on the pending one for the same cgroup, or
        guarded, stored, and approved at once in enforce mode or when [actions] auto
        lists its kind."""
        key = None if cgroup is None else cgroup_key(rule, kind, params, cgroup.id)
        if key is not None:
            repeated = await self._repeat(key, incident_id)
            if repeated is not None:
                return repeated
            held = (self.cgroups.holding(rule, cgroup.id) if kind == "freeze" and cgroup
                    else None)
            if held is not None:  # frozen already by this rule: one freeze, one thaw
                return await self._emit(held)
        refusal = ("no cgroup was named for the action" if cgroup is None
                   else await self.cgroups.refusal(cgroup))
        auto = mode != "enforce" and kind in self.policy.auto
        status = "refused" if refusal else "pending"
        paused = None if refusal else _while_paused(self.paused, mode)
        audit = [Entry("linnix", "action.proposed", {
            "rule": rule, "kind": kind, "cgroup": cgroup.path if cgroup else None,
            "mode": mode, **({"auto": True} if auto else {}),
            **({"paused": True} if paused else {})}, incident_id)]
        if refusal:
            audit.append(Entry("linnix", "action.refused", {"reason": refusal,
                                                            "at": "proposal"}))
        action_id = await self.store.add_action(
            incident_id=incident_id, rule=rule, kind=kind, params=params, pid=None,
            start_ticks=None, comm=None, exe=None, status=status, mode=mode,
            expires_at=None if refusal else self.wall() + self.policy.ttl_s,
            reason=refusal or paused, audit=audit, cgroup=cgroup.path if cgroup else None,
            cgroup_id=cgroup.id if cgroup else None)
        self._count(action_id, status, kind)
        if refusal:
            return await self._emit(action_id)
        assert cgroup is not None and key is not None
        self._track(action_id, None, trio.current_time() + self.policy.ttl_s, key)
        self.cgroups.proposed(action_id, rule, kind, cgroup)
        if mode == "enforce" or auto:
            await self._auto_approve(action_id, auto=auto)
        return await self._emit(action_id)

    def _track(self, action_id: int, ident: Identity | None, deadline: float,
               key: Key) -> None:
        """From now on the manager answers for this pending action (no await in here);
        ``ident`` is its target process (None for a cgroup)."""
        self.status[action_id], self._kinds[action_id] = "pending", key[1]
        heapq.heappush(self._deadlines, (deadline, action_id))
        self._wake.set()
        if ident is not None:
            self._targets[action_id] = ident
            self._watches.watch(action_id, ident)
        self._open.add(action_id, key)

    async def _argv0(self, ident: Identity, tree: list[Identity]) -> dict[int, str | None]:
        return await self.read_argv0([ident.pid, *(i.pid for i in tree)], self.guards.root)

    async def _repeat(self, key: Key, incident_id: int | None) -> dict[str, Any] | None:
        """Count a firing on the action pending for ``key``: its row, or None if there is
        none (or it was decided meanwhile)."""
        action_id = self._open.get(key)
        if action_id is None or self.status.get(action_id) != "pending":
            return None
        counted = await self.store.repeat_action(action_id, Entry(
            "linnix", "action.repeated", {"rule": key[0], "kind": key[1]}, incident_id))
        if not counted:  # decided through another connection
            return None
        return await self._emit(action_id)

    def _identify(self, target: Target | None) -> tuple[Identity | None, str | None]:
        if target is None:
            return None, "no live process matched the action's target"
        ident = identify(target.pid, self.guards.root)
        if ident is None:
            return None, f"process {target.pid} is gone"
        if target.start is not None and self.boot_offset is not None:
            started = ident.start_ticks / _hz() - self.boot_offset()
            if abs(started - target.start) > 0.5:
                return ident, (f"pid {target.pid} now belongs to another process "
                               f"({ident.comm}): the one the rule fired for is gone")
        return ident, None

    async def _auto_approve(self, action_id: int, auto: bool = False) -> None:
        """Approve in enforce mode (or, ``auto``, as [actions] auto says) when allowed; a
        store that fails leaves the action pending, for a person (said on the operator's
        channel)."""
        withheld = None
        degraded = self.degraded()
        if self.paused is not None:
            withheld = f"actions are paused by {self.paused.by}"
        elif degraded is not None:
            withheld = f"input is degraded: {degraded}"
        elif self._rate_wait() > 0:
            withheld = f"rate limit reached ({self.policy.rate_limit}/min)"
        try:
            if withheld is not None:
                await self.store.audit("linnix", "action.auto_approval_withheld",
                                       action_id=action_id, reason=withheld)
            else:
                await self._approve(action_id, AUTO if auto else "linnix (enforce mode)",
                                    "[actions] auto lists it: a thaw undoes it" if auto
                                    else "every guard passed")
        except StoreFailure as err:
            self._store_failed(action_id, err)

    # ---- decisions ---------------------------------------------------------------------
    async def approve(self, action_id: int, approver: str, reason: str | None) -> dict[str, Any]:
        """A person approves: the action runs now (once), or this raises why not (the
        store's own error when it cannot record the approval: nothing was approved)."""
        await self._pending(action_id)
        if self.paused is not None:
            raise ActionsPausedError(self.paused)
        wait = self._rate_wait()
        if wait > 0:
            raise RateLimitedError(wait)
        await self._approve(action_id, approver, reason)
        return await self._emit(action_id)

    async def reject(self, action_id: int, approver: str, reason: str | None) -> dict[str, Any]:
        await self._pending(action_id)
        self._claim(action_id, "rejected")
        with self._released_on_failure(action_id):
            moved = await self._finish(action_id, "pending", "rejected", reason, actor=approver)
        if not moved:  # decided through another connection
            raise ActionConflictError(action_id, self.status[action_id])
        return await self._emit(action_id)

    async def _pending(self, action_id: int) -> None:
        state = self.status.get(action_id)
        if state == "pending":
            return
        row = await self.store.action(action_id)
        if row is None:
            raise ActionNotFoundError(action_id)
        raise ActionConflictError(action_id, self.status.get(action_id, row["status"]))

    async def _approve(self, action_id: int, approver: str, reason: str | None) -> None:
        if self.status.get(action_id) != "pending":  # lost a race at an await point
            raise ActionConflictError(action_id, self.status.get(action_id, "unknown"))
        self._claim(action_id, "approved")  # no await between the check and this line
        stamp = trio.current_time()
        self._executions.append(stamp)
        try:
            with self._released_on_failure(action_id):
                moved = await self.store.transition(
                    action_id, "pending", "approved",
                    audit=Entry(approver, "action.approved", {"reason": reason}),
                    decided_by=approver, decided_at=self.wall(), reason=reason)
        except BaseException:
            with contextlib.suppress(ValueError):  # nothing was approved: nothing counts
                self._executions.remove(stamp)
            raise
        if not moved:  # decided through another connection: the store knows best
            await self._resync(action_id)
            raise ActionConflictError(action_id, self.status[action_id])
        self._count(action_id, "approved")
        assert self._nursery is not None, "ActionManager.run() is not running"
        self._nursery.start_soon(self._safely, self._execute, action_id)

    def _rate_wait(self) -> float:
        now = trio.current_time()
        while self._executions and self._executions[0] <= now - 60.0:
            self._executions.popleft()
        if len(self._executions) < self.policy.rate_limit:
            return 0.0
        if not self._executions:  # a limit of 0: nothing ever runs
            return 60.0
        return 60.0 - (now - self._executions[0])

    # ---- execution ---------------------------------------------------------------------
    async def _execute(self, action_id: int) -> None:
        self.status[action_id] = "executing"
        try:
            row = await self.store.action(action_id)
            started = row is not None and await self.store.transition(
                action_id, "approved", "executing")
        except StoreFailure as err:  # never act on what the store cannot say it did
            await self._settle(action_id, "approved", "failed",
                               f"not executed: the store failed before it could run: {err}")
            return
        if row is None or not started:
            await self._resync(action_id)
            return
        await self._safely(self._emit, action_id)  # a read that fails must not stop the run
        status, detail = await self._carry_out(row)
        await self._settle(action_id, "executing", status, detail, result={"detail": detail})

    async def _carry_out(self, row: dict[str, Any]) -> tuple[str, str]:
        """Guards again, then the executor: the final status and what happened."""
        if self.paused is not None:  # approved just before the pause: it never starts
            return "refused", f"not executed: actions were paused by {self.paused.by}"
        if row["kind"] in CGROUP_KINDS:
            try:
                return await self.cgroups.execute(row)
            except StoreFailure as err:  # never act on what the store cannot say it did
                return "failed", f"{row['kind']}: the store failed: {err}"
        ident = _identity(row)
        current = identify(ident.pid, self.guards.root)
        refusal = self.guards.still(ident)
        tree: list[Identity] = []
        if refusal is None and current is not None:
            if ACTIONS[row["kind"]].subtree:
                tree = descendants(ident.pid, self.guards.root)
            refusal = self.guards.check(current, tree=tree,
                                        argv0=await self._argv0(current, tree))
        if refusal is not None:
            return "refused", refusal
        try:
            outcome = await self._run(row, ident, tree)
        except OSError as err:  # e.g. EPERM: a failed action, never a crashed daemon
            outcome = Outcome(False, f"{row['kind']} failed: {err.strerror or err}")
        return ("succeeded" if outcome.ok else ("refused" if outcome.refused else "failed"),
                outcome.detail)

    async def _run(self, row: dict[str, Any], ident: Identity,
                   tree: list[Identity]) -> Outcome:
        execute = EXECUTORS.get(row["kind"])
        if execute is None:
            return Outcome(False, f"unknown action kind {row['kind']!r}")
        return await execute(self.guards, ident, tree, row["params"], self.policy.kill_grace_s)

    # ---- freezes ------------------------------------------------------------------------
    async def thaw(self, action_id: int, by: str, reason: str | None) -> dict[str, Any]:
        """A person thaws the freeze ``action_id`` made (NotFrozenError when none is in
        force, ActionNotFoundError when there is no such action)."""
        if await self.store.action(action_id) is None:
            raise ActionNotFoundError(action_id)
        await self.cgroups.thaw(action_id, by, reason or "thawed by hand")
        return await self._emit(action_id)

    def _finished(self, action_id: int, kind: str, status: str) -> None:
        """An action reached its final status: a kill's paired freeze is undone, and a
        freeze still pending that its kill no longer needs expires."""
        if kind not in CGROUP_KINDS or self._nursery is None:
            return
        freeze_id = self.cgroups.paired_freeze(action_id)
        if freeze_id is not None and self.status.get(freeze_id) == "pending":
            self._why[freeze_id] = paired_end(action_id, status)
            heapq.heappush(self._deadlines, (trio.current_time(), freeze_id))
            self._wake.set()
        self._nursery.start_soon(self._safely, self._cgroup_finished, action_id, kind, status)

    async def _cgroup_finished(self, action_id: int, kind: str, status: str) -> None:
        await self.cgroups.finished(action_id, kind, status)

    # ---- targets that exit while pending ------------------------------------------------
    def _exited(self, action_id: int) -> None:
        """The target of ``action_id`` exited: expire it now, if still pending."""
        if self.status.get(action_id) != "pending":
            return  # decided meanwhile
        self._why[action_id] = EXITED  # the expirer writes it, and again if the store fails
        heapq.heappush(self._deadlines, (trio.current_time(), action_id))
        self._wake.set()


def _while_paused(pause: Pause | None, mode: str) -> str | None:
    """How a pending action proposed while actions are paused is marked (its reason)."""
    if pause is None:
        return None
    if mode == "enforce":
        return ("proposed while actions are paused: in enforce mode it would have run by "
                "itself; it runs only if approved once they are resumed")
    return "proposed while actions are paused: it can be approved once they are resumed"


def _default_guards(guards: Guards) -> Callable[[Hierarchy], CgroupGuards]:
    return cgroup_guards(guards)


def cgroup_guards(guards: Guards, protected: frozenset[str] = frozenset()
                  ) -> Callable[[Hierarchy], CgroupGuards]:
    """The cgroup guards that go with the process guards (their names and lineage), with
    the cgroups ``protected`` by name."""
    return lambda h: CgroupGuards(h, guards.names, guards.own, own_cgroup(), protected,
                                  root=guards.root)


def _identity(row: dict[str, Any]) -> Identity:
    """The target of a stored action, as the guards compare it."""
    return Identity(row["pid"], row["start_ticks"], row["comm"] or "?", row["exe"], 0, False)


def _hz() -> int:
    from ..procfs import HZ

    return HZ
