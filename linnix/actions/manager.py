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
the degraded window) or the rate limit is reached; then it waits for a
person like in monitor mode.  Guards run at proposal and again right before
execution.  Every step is written to the audit log with who did it and why.

The transition pending → approved is made in one synchronous step on the trio
thread and in the database with ``WHERE status = 'pending'``, so concurrent
approvals execute an action once.

While an action is pending, a pidfd of its target is watched: when that very
process exits, the action expires at once with that reason, so nobody is
asked to decide about a process that is gone (and a pid reused meanwhile can
never inherit the proposal).

Two clocks: the wall clock (``wall``) dates what is stored, for people
(``created_at``, ``expires_at``, ``decided_at``); deadlines and the rate limit
are measured on trio's monotonic clock, so a step of the wall clock (NTP, a
VM resumed) neither shortens nor lengthens a TTL.  After a restart, what was
left of a TTL is all the wall clock can tell.
"""

from __future__ import annotations

import heapq
import os
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from ..names import ACTIONS
from ..plan import CompiledAction
from ..procfs import PROC
from .executors import EXECUTORS, Outcome
from .guards import Guards, Identity, descendants, identify
from .store import AsyncStore

__all__ = [
    "ActionConflictError", "ActionManager", "ActionNotFoundError", "ActionPolicy",
    "RateLimitedError", "Target",
]


class ActionNotFoundError(LookupError):
    """No action has this id."""


class ActionConflictError(Exception):
    """The action is not pending (already decided, expired or executed)."""

    def __init__(self, action_id: int, status: str) -> None:
        super().__init__(f"action {action_id} is {status}, not pending")
        self.status = status


class RateLimitedError(Exception):
    """Executing now would exceed the rate limit."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limit reached; retry in {retry_after:.0f}s")
        self.retry_after = retry_after


@attrs.frozen
class ActionPolicy:
    """What the configuration says about actions."""

    mode: str = "monitor"  # or enforce
    ttl_s: float = 300.0
    rate_limit: int = 6  # executions per minute
    kill_grace_s: float = 5.0
    degraded_window_s: float = 60.0


@attrs.frozen
class Target:
    """A process an action was proposed for, as the engine knew it."""

    pid: int
    comm: str | None
    start: float | None  # engine clock
    exe: str | None = None  # the executable it was started from, recorded at exec

Publish = Callable[[str, dict[str, Any]], None]


class ActionManager:
    """Proposals in, decisions and executions out, everything audited."""

    def __init__(self, store: AsyncStore, guards: Guards, policy: ActionPolicy, *,
                 degraded: Callable[[], bool] = lambda: False,
                 publish: Publish = lambda kind, data: None,
                 wall: Callable[[], float] = time.time,
                 boot_offset: Callable[[], float] | None = None,
                 on_problem: Callable[[str], None] = lambda message: None) -> None:
        self.store = store
        self.on_problem = on_problem
        self.guards = guards
        self.policy = policy
        self.degraded = degraded
        self.publish = publish
        self.wall = wall
        self.boot_offset = boot_offset
        self.status: dict[int, str] = {}  # the truth for pending/approved on this thread
        self._deadlines: list[tuple[float, int]] = []  # (trio time, action id)
        self._wake = trio.Event()
        self._executions: deque[float] = deque()  # trio times of recent approvals
        self._nursery: trio.Nursery | None = None
        self.counts: dict[str, int] = {}
        self._watches: dict[int, trio.CancelScope] = {}  # pending action -> its exit watch

    # ---- running ---------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Restore pending actions, then expire them on time until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._restore()
            task_status.started()
            await self._expirer()

    async def _restore(self) -> None:
        for row in await self.store.actions(status="approved", limit=10_000):
            await self._finish(row["id"], "approved", "failed",
                               "interrupted: the daemon stopped before executing it")
        for row in await self.store.actions(status="executing", limit=10_000):
            await self._finish(row["id"], "executing", "failed",
                               "interrupted: the daemon stopped while executing it")
        for row in await self.store.actions(status="pending", limit=10_000):
            self.status[row["id"]] = "pending"
            left = max(0.0, float(row["expires_at"]) - self.wall())  # the wall's word only
            heapq.heappush(self._deadlines, (trio.current_time() + left, row["id"]))
            self._watch(row["id"], _identity(row))
        self._wake.set()

    async def _expirer(self) -> None:
        while True:
            now = trio.current_time()
            while self._deadlines and self._deadlines[0][0] <= now:
                _, action_id = heapq.heappop(self._deadlines)
                if self.status.get(action_id) == "pending":
                    self.status[action_id] = "expired"
                    await self._safely(self._finish, action_id, "pending", "expired",
                                       f"nobody decided within {self.policy.ttl_s:g}s",
                                       actor="linnix")
            self._wake = trio.Event()
            if self._deadlines:
                with trio.move_on_at(self._deadlines[0][0]):
                    await self._wake.wait()
            else:
                await self._wake.wait()

    # ---- proposals -------------------------------------------------------------------
    async def propose(self, *, rule: str, action: CompiledAction, target: Target | None,
                      incident_id: int | None, monitor_only: bool) -> dict[str, Any]:
        """Record a proposal; in enforce mode, approve and execute it when allowed."""
        params = _params(action)
        mode = "monitor" if monitor_only or self.policy.mode != "enforce" else "enforce"
        if not action.targets_process:
            action_id = await self.store.add_action(
                incident_id=incident_id, rule=rule, kind=action.name, params=params, pid=None,
                start_ticks=None, comm=None, exe=None, status="recorded", mode=mode,
                expires_at=None, reason="recorded for analysis; nothing is executed")
            await self.store.audit("linnix", "action.recorded", action_id=action_id,
                                   incident_id=incident_id, rule=rule, kind=action.name)
            return await self._emit(action_id)
        ident, refusal = self._identify(target)
        if refusal is None and ident is not None:
            tree = (descendants(ident.pid, self.guards.root) if ACTIONS[action.name].subtree
                    else [])
            refusal = self.guards.check(ident, tree=tree,
                                        started_as=target.exe if target else None)
        status = "refused" if refusal else "pending"
        deadline = trio.current_time() + self.policy.ttl_s
        expires = None if refusal else self.wall() + self.policy.ttl_s  # for people
        action_id = await self.store.add_action(
            incident_id=incident_id, rule=rule, kind=action.name, params=params,
            pid=target.pid if target else None, start_ticks=ident.start_ticks if ident else None,
            comm=ident.comm if ident else (target.comm if target else None),
            exe=ident.exe if ident else None, status=status, mode=mode, expires_at=expires,
            reason=refusal)
        await self.store.audit("linnix", "action.proposed", action_id=action_id,
                               incident_id=incident_id, rule=rule, kind=action.name,
                               pid=target.pid if target else None, mode=mode)
        self._count(status)
        if refusal:
            await self.store.audit("linnix", "action.refused", action_id=action_id,
                                   reason=refusal, at="proposal")
            return await self._emit(action_id)
        self.status[action_id] = "pending"
        heapq.heappush(self._deadlines, (deadline, action_id))
        self._wake.set()
        assert ident is not None  # a target without an identity is refused above
        self._watch(action_id, ident)
        if mode == "enforce":
            await self._auto_approve(action_id)
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

    async def _auto_approve(self, action_id: int) -> None:
        if self.degraded():
            await self.store.audit("linnix", "action.auto_approval_withheld",
                                   action_id=action_id,
                                   reason="input is degraded: events were lost recently")
            return
        wait = self._rate_wait()
        if wait > 0:
            await self.store.audit("linnix", "action.auto_approval_withheld",
                                   action_id=action_id,
                                   reason=f"rate limit reached ({self.policy.rate_limit}/min)")
            return
        await self._approve(action_id, "linnix (enforce mode)", "every guard passed")

    # ---- decisions ---------------------------------------------------------------------
    async def approve(self, action_id: int, approver: str, reason: str | None) -> dict[str, Any]:
        """A person approves: the action runs now (once), or this raises why not."""
        await self._pending(action_id)
        wait = self._rate_wait()
        if wait > 0:
            raise RateLimitedError(wait)
        await self._approve(action_id, approver, reason)
        return await self._emit(action_id)

    async def reject(self, action_id: int, approver: str, reason: str | None) -> dict[str, Any]:
        await self._pending(action_id)
        self.status[action_id] = "rejected"
        await self._finish(action_id, "pending", "rejected", reason, actor=approver)
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
        self.status[action_id] = "approved"  # no await between the check and this line
        self._unwatch(action_id)
        self._executions.append(trio.current_time())
        ok = await self.store.transition(action_id, "pending", "approved", decided_by=approver,
                                         decided_at=self.wall(), reason=reason)
        if not ok:
            return
        await self.store.audit(approver, "action.approved", action_id=action_id, reason=reason)
        self._count("approved")
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
        row = await self.store.action(action_id)
        assert row is not None
        self.status[action_id] = "executing"
        await self.store.transition(action_id, "approved", "executing")
        await self._emit(action_id)
        ident = _identity(row)
        current = identify(ident.pid, self.guards.root)
        refusal = self.guards.still(ident)
        tree: list[Identity] = []
        if refusal is None and current is not None:
            if ACTIONS[row["kind"]].subtree:
                tree = descendants(ident.pid, self.guards.root)
            refusal = self.guards.check(current, tree=tree)
        if refusal is not None:
            await self._finish(action_id, "executing", "refused", refusal, actor="linnix")
            return
        try:
            outcome = await self._run(row, ident, tree)
        except OSError as err:  # e.g. EPERM: a failed action, never a crashed daemon
            outcome = Outcome(False, f"{row['kind']} failed: {err.strerror or err}")
        status = "succeeded" if outcome.ok else ("refused" if outcome.refused else "failed")
        await self._finish(action_id, "executing", status, outcome.detail, actor="linnix",
                           result={"detail": outcome.detail})

    async def _run(self, row: dict[str, Any], ident: Identity,
                   tree: list[Identity]) -> Outcome:
        execute = EXECUTORS.get(row["kind"])
        if execute is None:
            return Outcome(False, f"unknown action kind {row['kind']!r}")
        return await execute(self.guards, ident, tree, row["params"], self.policy.kill_grace_s)

    async def _finish(self, action_id: int, expect: str, status: str, reason: str | None,
                      actor: str = "linnix", result: dict[str, Any] | None = None) -> None:
        self.status[action_id] = status
        self._unwatch(action_id)
        fields: dict[str, Any] = {"finished_at": self.wall()}
        if status in ("rejected", "expired"):
            fields.update(decided_by=actor, decided_at=self.wall(), reason=reason)
        else:
            fields["result"] = result or {"detail": reason}
        if await self.store.transition(action_id, expect, status, **fields):
            await self.store.audit(actor, f"action.{status}", action_id=action_id, reason=reason)
            self._count(status)
        await self._emit(action_id)

    async def _safely(self, step: Callable[..., Awaitable[None]], action_id: int,
                      *args: Any, **kwargs: Any) -> None:
        """Run a step of a background task; a store that fails (a full disk) is
        reported, never the end of the manager and the daemon with it."""
        try:
            await step(action_id, *args, **kwargs)
        except (sqlite3.Error, OSError) as err:
            self.on_problem(f"action {action_id}: the store failed: {err}; its record may "
                            "lag behind until the store works again")

    # ---- targets that exit while pending ------------------------------------------------
    def _watch(self, action_id: int, ident: Identity) -> None:
        """Expire ``action_id`` as soon as its target exits (real processes only)."""
        if self.guards.root != PROC or self._nursery is None:
            return
        try:
            fd: int | None = os.pidfd_open(ident.pid)
        except OSError:
            fd = None  # gone already
        if fd is not None and self.guards.still(ident) is not None:
            os.close(fd)  # the pid holds another process (or a zombie) now
            fd = None
        scope = trio.CancelScope()
        self._watches[action_id] = scope
        self._nursery.start_soon(self._watch_exit, action_id, fd, scope)

    def _unwatch(self, action_id: int) -> None:
        scope = self._watches.pop(action_id, None)
        if scope is not None:
            scope.cancel()

    async def _watch_exit(self, action_id: int, fd: int | None,
                          scope: trio.CancelScope) -> None:
        try:
            with scope:
                if fd is not None:
                    await trio.lowlevel.wait_readable(fd)  # readable once it has exited
        finally:
            if self._watches.get(action_id) is scope:
                del self._watches[action_id]
            if fd is not None:
                os.close(fd)
        if scope.cancelled_caught or self.status.get(action_id) != "pending":
            return  # decided meanwhile
        self.status[action_id] = "expired"
        await self._safely(self._finish, action_id, "pending", "expired",
                           "the target process exited before anyone decided", actor="linnix")

    async def _emit(self, action_id: int) -> dict[str, Any]:
        row: dict[str, Any] | None = await self.store.action(action_id)
        assert row is not None
        self.publish("action", row)
        return row

    def _count(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


def _identity(row: dict[str, Any]) -> Identity:
    """The target of a stored action, as the guards compare it."""
    return Identity(row["pid"], row["start_ticks"], row["comm"] or "?", row["exe"], 0, False)


def _params(action: CompiledAction) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if action.grace_s is not None:
        out["grace_s"] = action.grace_s
    if action.signal is not None:
        out["signal"] = action.signal
    if action.nice is not None:
        out["nice"] = action.nice
    if action.target is not None:
        out["target"] = f"top({action.target})"
    return out


def _hz() -> int:
    from ..procfs import HZ

    return HZ

