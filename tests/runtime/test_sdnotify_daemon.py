"""``linnix run`` under a stand-in for systemd's notify socket: READY once it watches, the
watchdog at the promised pace, the status line, RELOADING and READY around SIGHUP, STOPPING
on SIGTERM (the /proc polling source: no root needed)."""

from __future__ import annotations

import itertools
import os
import select
import signal
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_support import Daemon

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Python 3.11 does not name it
WATCHDOG_S = 4.0  # systemd's WatchdogSec: a ping every 2 s at most, and never 4 s without one


class NotifySocket:
    """systemd's end: datagrams with the kernel's time of arrival (a slow reader here cannot
    bunch them up)."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.got: list[tuple[float, list[str]]] = []

    def receive(self, timeout: float) -> None:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return
        data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16))
        stamp = time.time()
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", raw[:16])
                stamp = sec + nsec / 1e9
        self.got.append((stamp, data.decode().split("\n")))

    def wait_for(self, field: str, timeout: float = 60.0) -> int:
        """The index of the first message after those seen that carries ``field``."""
        start = len(self.got)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in range(start, len(self.got)):
                if field in self.got[i][1]:
                    return i
            self.receive(0.5)
        raise AssertionError(f"no {field} within {timeout}s; got {self.got}")

    def fields(self) -> list[list[str]]:
        return [lines for _, lines in self.got]


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    folder = tempfile.mkdtemp(prefix="lnx-", dir="/tmp")  # sun_path holds 108 bytes
    path = os.path.join(folder, "notify")
    s = NotifySocket(path)
    yield s
    s.sock.close()
    os.unlink(path)
    os.rmdir(folder)


def test_the_daemon_speaks_to_systemd(tmp_path: Path, notify: NotifySocket) -> None:
    daemon = Daemon(tmp_path / "state", "--source", "poll", "--no-api", env={
        "NOTIFY_SOCKET": notify.sock.getsockname(),
        "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6))})
    try:
        ready = notify.wait_for("READY=1")
        daemon.wait_ready()
        status = [f for f in notify.got[ready][1] if f.startswith("STATUS=")]
        assert len(status) == 1 and status[0].startswith("STATUS=watching ")
        assert status[0].endswith(" rules") and " processes, " in status[0]
        for _ in range(4):
            notify.wait_for("WATCHDOG=1", timeout=3 * WATCHDOG_S)
        daemon.signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING=1")
        assert any(f.startswith("MONOTONIC_USEC=") for f in notify.got[reloading][1])
        again = notify.wait_for("READY=1")
        assert again > reloading
        notify.wait_for("WATCHDOG=1", timeout=3 * WATCHDOG_S)  # the reload broke nothing
        daemon.signal(signal.SIGTERM)
        stopping = notify.wait_for("STOPPING=1")
        daemon.proc.wait(30)
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.stderr
    pings = [when for when, lines in notify.got if "WATCHDOG=1" in lines]
    assert len(pings) >= 5
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    # never more often than half the interval (a little slack for the time between the
    # daemon's clock and the kernel's stamp), and never a whole interval without one
    assert min(gaps) >= WATCHDOG_S / 2 - 0.1, gaps
    assert max(gaps) < WATCHDOG_S, gaps
    first = notify.fields()[0]
    assert first[0] == "READY=1"  # nothing before it
    assert stopping == len(notify.got) - 1  # nothing after it

