"""The manager's bookkeeping of each action: its status on the trio thread, and the
store's record of every decision and outcome, kept in step.

A decision is claimed on the trio thread first (:meth:`Ledger._claim`) and given
back when the store fails (:meth:`Ledger._release`); an outcome that has happened
is written again every :data:`RETRY_S` seconds until the store takes it
(:meth:`Ledger._settle`).  :class:`~linnix.actions.manager.ActionManager` builds on it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import trio

from ..errors import Outage
from .guards import Identity
from .pending import OpenProposals
from .store import AsyncStore, Entry
from .watches import ExitWatches

__all__ = ["RETRY_S", "Ledger", "Publish", "StoreFailure", "wait_until_due"]

RETRY_S = 10.0  # how soon an expiry or a result the store refused is written again
StoreFailure = (sqlite3.Error, OSError)  # a full disk, a damaged or locked database

Publish = Callable[[str, dict[str, Any]], None]


class Ledger:
    """Each action's status here and in the store; set up by the manager."""

    store: AsyncStore
    publish: Publish
    wall: Callable[[], float]
    outage: Outage
    status: dict[int, str]  # the truth for pending/approved on this thread
    counts: dict[tuple[str, str], int]  # (kind, status) -> changes
    _targets: dict[int, Identity]
    _why: dict[int, str]
    _kinds: dict[int, str]
    _watches: ExitWatches
    _open: OpenProposals

    def _finished(self, action_id: int, kind: str, status: str) -> None:
        """Told when an action reaches its final status (the manager's hook)."""

    def _claim(self, action_id: int, status: str) -> None:
        """Decide on the trio thread, before the store is asked (no await in here)."""
        self.status[action_id] = status
        self._watches.unwatch(action_id)
        self._open.claimed(action_id)

    def _release(self, action_id: int) -> None:
        """The store did not take a claimed decision: the action is pending again."""
        self.status[action_id] = "pending"
        ident = self._targets.get(action_id)
        if ident is not None:
            self._watches.watch(action_id, ident)
        self._open.released(action_id)

    @contextlib.contextmanager
    def _released_on_failure(self, action_id: int) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self._release(action_id)
            raise

    async def _resync(self, action_id: int) -> None:
        row = await self.store.action(action_id)
        self.status[action_id] = row["status"] if row is not None else "unknown"

    async def _settle(self, action_id: int, expect: str, status: str, reason: str,
                      result: dict[str, Any] | None = None) -> None:
        """Record an outcome that has happened whatever the store says: written again
        every RETRY_S seconds until the store takes it (or the daemon stops)."""
        self.status[action_id] = status
        while True:
            try:
                await self._finish(action_id, expect, status, reason, result=result)
            except StoreFailure as err:
                self._store_failed(action_id, err)
                await trio.sleep(RETRY_S)
                continue
            self._store_worked()
            return

    async def _finish(self, action_id: int, expect: str, status: str, reason: str | None,
                      actor: str = "linnix", result: dict[str, Any] | None = None) -> bool:
        """Move the action and audit it, in one transaction; then tell the stream.
        False if the store had it in another status (which the manager takes)."""
        fields: dict[str, Any] = {"finished_at": self.wall()}
        if status in ("rejected", "expired"):
            fields.update(decided_by=actor, decided_at=self.wall(), reason=reason)
        else:
            fields["result"] = result or {"detail": reason}
        moved: bool = await self.store.transition(
            action_id, expect, status, audit=Entry(actor, f"action.{status}", {"reason": reason}),
            **fields)
        if moved:
            self.status[action_id] = status
            self._targets.pop(action_id, None)
            self._why.pop(action_id, None)
            self._open.closed(action_id)
            self._count(action_id, status)
            self._finished(action_id, self._kinds.pop(action_id, "unknown"), status)
        else:  # moved meanwhile through another connection
            await self._resync(action_id)
        await self._safely(self._emit, action_id)
        return moved

    async def _safely(self, step: Callable[..., Awaitable[Any]], action_id: int,
                      *args: Any, **kwargs: Any) -> None:
        """Run a step of a background task; a store that fails (a full disk) is
        reported, never the end of the manager and the daemon with it."""
        try:
            await step(action_id, *args, **kwargs)
        except StoreFailure as err:
            self._store_failed(action_id, err)

    def _store_failed(self, action_id: int, err: BaseException) -> None:
        self.outage.failed(f"action {action_id}: the store failed: {err}; what it could not "
                           f"record is written again every {RETRY_S:g}s, and an action stays "
                           "pending until its decision is stored")

    def _store_worked(self) -> None:
        self.outage.worked("the store records actions again ({lost:,} attempt(s) had failed)")

    async def _emit(self, action_id: int) -> dict[str, Any]:
        row: dict[str, Any] | None = await self.store.action(action_id)
        assert row is not None
        self.publish("action", row)
        return row

    def _count(self, action_id: int, status: str, kind: str | None = None) -> None:
        key = (kind or self._kinds.get(action_id, "unknown"), status)
        self.counts[key] = self.counts.get(key, 0) + 1


async def wait_until_due(deadlines: list[tuple[float, int]], wake: trio.Event) -> None:
    """Until the earliest of ``deadlines`` (a heap of (trio time, id)) or until ``wake``
    is set, whichever comes first: the loops that act on deadlines sleep here."""
    if deadlines:
        with trio.move_on_at(deadlines[0][0]):
            await wake.wait()
    else:
        await wake.wait()
