"""systemd's notify protocol, without a library: ``READY=1``, ``WATCHDOG=1`` and friends.

systemd passes ``$NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket)
to a ``Type=notify`` service; each message is one datagram of ``KEY=value``
lines.  With no such variable every call does nothing, so the daemon runs the
same outside systemd.

The watchdog is kept only by the engine: :meth:`Notifier.ticked` is called
after each tick the engine really ran, and pings at most every half of
``$WATCHDOG_USEC``.  No timer of its own pings: a wedged engine stops the
pings, and systemd restarts the service.  Sending never blocks (a datagram
that does not fit is dropped, as systemd would drop a late one).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Mapping

from ..engine.core import Core

__all__ = ["Notifier", "describe"]

STATUS_EVERY_S = 10.0  # how often the status line is refreshed when there is no watchdog


def describe(core: Core, paused: bool = False) -> str:
    """The status line systemd shows: what the engine watches, and whether every action
    is paused."""
    return (f"watching {len(core.table.procs)} processes, "
            f"{len(core.plan.active)} rules{', actions paused' if paused else ''}")


def _address(value: str | None) -> str | None:
    """The socket address of ``$NOTIFY_SOCKET``; None when unset or not a Unix socket."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]  # the abstract namespace
    return value if value.startswith("/") else None


def _watchdog(environ: Mapping[str, str]) -> float | None:
    """The watchdog interval in seconds, if systemd asked for one for this process."""
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (the one that started us)
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None


class Notifier:
    """Tells systemd how the daemon is doing; does nothing outside a notify service."""

    def __init__(self, environ: Mapping[str, str] = os.environ,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.address = _address(environ.get("NOTIFY_SOCKET"))
        self.watchdog_s = _watchdog(environ)
        self.every = self.watchdog_s / 2 if self.watchdog_s is not None else STATUS_EVERY_S
        self.now = now
        self.status: Callable[[], str] | None = None
        self.ready = False
        self.last: float = 0.0
        self.shown: str | None = None
        self.sent = 0  # datagrams sent, for tests and curiosity
        self._sock: socket.socket | None = None

    def watch(self, core: Core, paused: Callable[[], bool] = lambda: False) -> str | None:
        """Report what ``core`` watches (and whether actions are ``paused``) in the status
        line; say why its ticks cannot keep the watchdog, if they cannot (None when they
        can)."""
        self.status = lambda: describe(core, paused())
        # a ping goes at the first tick a half interval after the last: up to a tick late
        if self.watchdog_s is None or core.tick_s < self.watchdog_s / 2:
            return None
        return (f"a tick every {core.tick_s:g}s cannot keep a {self.watchdog_s:g}s watchdog "
                f"(systemd would restart the daemon): make [telemetry] tick shorter than "
                f"{self.watchdog_s / 2:g}s or WatchdogSec= longer")

    def send(self, *fields: str) -> bool:
        """One datagram of ``fields``; False when it could not be sent (or nowhere to)."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(fields).encode("utf-8", "replace"), self.address)
        except OSError:
            return False  # systemd gone or its queue full: the next message tries again
        self.sent += 1
        return True

    def ticked(self) -> None:
        """After a tick the engine ran: READY the first time, then the watchdog and the
        status line, at most every ``every`` seconds."""
        if self.address is None:
            return
        now = self.now()
        if self.ready and now - self.last < self.every:
            return
        fields = ["WATCHDOG=1"] if self.watchdog_s is not None else []
        if not self.ready:
            fields.insert(0, "READY=1")
        status = self._status()
        if status is not None:
            fields.append(status)
        if not fields:  # no watchdog, and the status line has not changed
            self.last = now
        elif self.send(*fields):
            self.ready, self.last = True, now
            if status is not None:
                self.shown = status

    def _status(self) -> str | None:
        """``STATUS=...`` when the line changed since it was last shown."""
        if self.status is None:
            return None
        line = "STATUS=" + self.status()
        return line if line != self.shown else None

    def reloading(self) -> None:
        """Rules are being reloaded (systemd wants the monotonic time with it)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def reloaded(self) -> None:
        """The reload is over, whatever came of it: ready again."""
        if self.ready:
            self.shown = None
            self.send("READY=1", *filter(None, [self._status()]))

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
