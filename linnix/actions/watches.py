"""The targets of pending actions, watched through pidfds until they exit.

While an action is pending, a pidfd of its target is watched: when that very
process exits, the manager is told at once (and expires the action with that
reason), so nobody is asked to decide about a process that is gone, and a pid
reused meanwhile can never inherit the proposal.  Only real processes are
watched: under a fake /proc (tests) nothing is.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import trio

from ..procfs import PROC
from .guards import Guards, Identity

__all__ = ["ExitWatches"]


class ExitWatches:
    """One watch per pending action; ``exited(action_id)`` is called when its target exits
    (never after :meth:`unwatch`)."""

    def __init__(self, guards: Guards, exited: Callable[[int], None]) -> None:
        self.guards = guards
        self.exited = exited
        self.nursery: trio.Nursery | None = None  # the manager's, once it runs
        self._scopes: dict[int, trio.CancelScope] = {}

    def __len__(self) -> int:
        return len(self._scopes)

    def watch(self, action_id: int, ident: Identity) -> None:
        """Tell when ``ident`` exits (real processes only, once the manager runs)."""
        if self.guards.root != PROC or self.nursery is None:
            return
        try:
            fd: int | None = os.pidfd_open(ident.pid)
        except OSError:
            fd = None  # gone already
        if fd is not None and self.guards.still(ident) is not None:
            os.close(fd)  # the pid holds another process (or a zombie) now
            fd = None
        scope = trio.CancelScope()
        self._scopes[action_id] = scope
        self.nursery.start_soon(self._wait, action_id, fd, scope)

    def unwatch(self, action_id: int) -> None:
        scope = self._scopes.pop(action_id, None)
        if scope is not None:
            scope.cancel()

    async def _wait(self, action_id: int, fd: int | None, scope: trio.CancelScope) -> None:
        try:
            with scope:
                if fd is not None:
                    await trio.lowlevel.wait_readable(fd)  # readable once it has exited
        finally:
            if self._scopes.get(action_id) is scope:
                del self._scopes[action_id]
            if fd is not None:
                os.close(fd)
        if not scope.cancelled_caught:
            self.exited(action_id)
