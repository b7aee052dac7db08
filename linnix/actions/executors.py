"""Carrying out actions on processes, safely, through pidfds.

Each target is opened as a pidfd *first*, then its identity is checked
against /proc, then it is signalled through the pidfd: a pid reused between
the check and the signal can never be hit, because the pidfd still refers to
the original process (which, if gone, makes the signal fail harmlessly).
``kill`` sends SIGTERM, waits for the grace period (the pidfd becomes
readable when the process exits) and sends SIGKILL if it is still alive.
``kill_tree`` does the same for a whole subtree, deepest first.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import trio

from .guards import Guards, Identity

__all__ = ["EXECUTORS", "Executor", "Outcome", "kill", "kill_tree", "renice", "send_signal",
           "signal_name"]


@attrs.frozen
class Outcome:
    """How an execution ended: succeeded or failed, and what happened."""

    ok: bool
    detail: str
    refused: bool = False  # a guard stopped it right before it would have acted


class _Target:
    """An open pidfd whose identity was verified."""

    def __init__(self, ident: Identity, fd: int) -> None:
        self.ident = ident
        self.fd = fd

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def signal(self, signum: int) -> bool:
        """False if the process had already exited."""
        try:
            signal.pidfd_send_signal(self.fd, signum)
        except ProcessLookupError:
            return False
        return True

    def exited(self) -> bool:
        import select

        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        return bool(poller.poll(0))


def _open(guards: Guards, ident: Identity) -> _Target | str:
    """A verified pidfd for ``ident``, or the reason it cannot be had."""
    try:
        fd = os.pidfd_open(ident.pid)
    except ProcessLookupError:
        return f"process {ident.pid} is gone"
    except OSError as err:
        return f"cannot open process {ident.pid}: {err.strerror}"
    reason = guards.still(ident)  # checked after the pidfd is held: no race with reuse
    if reason is not None:
        os.close(fd)
        return reason
    return _Target(ident, fd)


async def _wait_exit(targets: Sequence[_Target], grace: float) -> list[_Target]:
    """Wait up to ``grace`` seconds; the targets still alive afterwards."""
    alive = [t for t in targets if not t.exited()]
    with trio.move_on_after(grace):
        while alive:
            await trio.lowlevel.wait_readable(alive[0].fd)
            alive = [t for t in alive if not t.exited()]
    return [t for t in alive if not t.exited()]  # others may have exited while waiting


async def kill(guards: Guards, ident: Identity, *, grace: float = 5.0,
               signum: int = signal.SIGTERM) -> Outcome:
    opened = _open(guards, ident)
    if isinstance(opened, str):
        return Outcome(False, opened, refused="belongs to another" in opened)
    return await _terminate([opened], [], grace, signum)


async def kill_tree(guards: Guards, idents: Sequence[Identity], *, grace: float = 5.0,
                    signum: int = signal.SIGTERM) -> Outcome:
    """Signal every process (given deepest first), then SIGKILL what survives the grace.

    The root is the last one given; if it cannot be opened (gone or reused) the
    whole action fails, since the tree it stood for no longer exists.
    """
    root = _open(guards, idents[-1])
    if isinstance(root, str):
        return Outcome(False, root, refused="belongs to another" in root)
    targets: list[_Target] = []
    gone: list[str] = []
    for ident in idents[:-1]:
        opened = _open(guards, ident)
        if isinstance(opened, str):
            gone.append(opened)  # a descendant that ended meanwhile
        else:
            targets.append(opened)
    return await _terminate([*targets, root], gone, grace, signum)


async def _terminate(targets: list[_Target], gone: list[str], grace: float,
                     signum: int) -> Outcome:
    """Send ``signum``; after ``grace``, SIGKILL the survivors; report what happened."""
    try:
        sent = [t for t in targets if t.signal(signum)]
        name = signal_name(signum)
        if not sent:
            return Outcome(False, "every target had already exited")
        if signum == signal.SIGKILL:
            return Outcome(True, _describe(sent, f"{name} sent", gone))
        survivors = await _wait_exit(sent, grace)
        for t in survivors:
            t.signal(signal.SIGKILL)
        remaining = await _wait_exit(survivors, 1.0)
        detail = _describe(sent, f"{name} sent", gone)
        detail += f"; {len(sent) - len(survivors)} exited within the {grace:g}s grace"
        if survivors:
            detail += f"; {len(survivors) - len(remaining)} killed with SIGKILL after it"
        if remaining:
            stuck = ", ".join(f"{t.ident.comm}[{t.ident.pid}]" for t in remaining)
            return Outcome(False, f"{detail}; still alive after SIGKILL: {stuck}")
        return Outcome(True, detail)
    finally:
        for t in targets:
            t.close()


def signal_name(signum: int) -> str:
    """``SIGTERM``; real-time signals without a name of their own as ``SIGRTMIN+6``."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        if signal.SIGRTMIN < signum < signal.SIGRTMAX:
            return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
        return f"signal {signum}"


def _describe(sent: Sequence[_Target], what: str, gone: Sequence[str]) -> str:
    names = ", ".join(f"{t.ident.comm}[{t.ident.pid}]" for t in sent[:10])
    more = f" and {len(sent) - 10} more" if len(sent) > 10 else ""
    text = f"{what}: {names}{more}"
    if gone:
        text += f" ({len(gone)} already gone)"
    return text


async def send_signal(guards: Guards, ident: Identity, signum: int) -> Outcome:
    opened = _open(guards, ident)
    if isinstance(opened, str):
        return Outcome(False, opened, refused="belongs to another" in opened)
    try:
        if not opened.signal(signum):
            return Outcome(False, f"process {ident.pid} exited first")
        return Outcome(True, f"{signal_name(signum)} sent to {ident.comm}[{ident.pid}]")
    finally:
        opened.close()


async def renice(guards: Guards, ident: Identity, nice: int) -> Outcome:
    # setpriority has no pidfd form: the identity is checked through the pidfd just
    # before, which leaves a window of microseconds for the pid to be reused
    opened = _open(guards, ident)
    if isinstance(opened, str):
        return Outcome(False, opened, refused="belongs to another" in opened)
    try:
        os.setpriority(os.PRIO_PROCESS, ident.pid, nice)
    except OSError as err:
        return Outcome(False, f"renice failed: {err.strerror}")
    finally:
        opened.close()
    return Outcome(True, f"{ident.comm}[{ident.pid}] reniced to {nice}")


# ---- by action kind ------------------------------------------------------------------
# An executor carries out one stored action: its target (and, for an action on a
# subtree, the target's descendants), its parameters, and the configured default
# grace period.  Every process-targeting action of the registry has one; a test
# checks that the two agree.
Executor = Callable[[Guards, Identity, Sequence[Identity], Mapping[str, Any], float],
                    Awaitable[Outcome]]


async def _kill(guards: Guards, ident: Identity, tree: Sequence[Identity],
                params: Mapping[str, Any], grace: float) -> Outcome:
    return await kill(guards, ident, grace=params.get("grace_s", grace),
                      signum=params.get("signal", signal.SIGTERM))


async def _kill_tree(guards: Guards, ident: Identity, tree: Sequence[Identity],
                     params: Mapping[str, Any], grace: float) -> Outcome:
    return await kill_tree(guards, [*tree, ident], grace=params.get("grace_s", grace),
                           signum=params.get("signal", signal.SIGTERM))


async def _signal(guards: Guards, ident: Identity, tree: Sequence[Identity],
                  params: Mapping[str, Any], grace: float) -> Outcome:
    return await send_signal(guards, ident, params["signal"])


async def _renice(guards: Guards, ident: Identity, tree: Sequence[Identity],
                  params: Mapping[str, Any], grace: float) -> Outcome:
    return await renice(guards, ident, params["nice"])


EXECUTORS: Mapping[str, Executor] = {
    "kill": _kill, "kill_tree": _kill_tree, "signal": _signal, "renice": _renice,
}
