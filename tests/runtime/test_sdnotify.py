"""The notify protocol: addresses, READY, the watchdog only from ticks that ran, reloads and
stopping, against a socket standing in for systemd's (no systemd needed)."""

from __future__ import annotations

import itertools
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import compile_text
from linnix.procfs import Clock
from linnix.runtime.live import LiveEngine
from linnix.runtime.sdnotify import STATUS_EVERY_S, Notifier, describe

_names = itertools.count()


class Systemd:
    """A datagram socket where systemd's would be; ``address`` goes in $NOTIFY_SOCKET."""

    def __init__(self, address: str, bind: str | bytes) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind)
        self.sock.setblocking(False)

    def messages(self) -> list[list[str]]:
        """Every datagram received so far, as its lines."""
        got = []
        while True:
            try:
                got.append(self.sock.recv(4096).decode().split("\n"))
            except BlockingIOError:
                return got


@pytest.fixture
def systemd() -> Iterator[Systemd]:
    name = f"linnix-test-{os.getpid()}-{next(_names)}"
    s = Systemd(f"@{name}", f"\0{name}")
    yield s
    s.sock.close()


def env(systemd: Systemd, watchdog_usec: int | None = 30_000_000, **more: str) -> dict[str, str]:
    e = {"NOTIFY_SOCKET": systemd.address, **more}
    if watchdog_usec is not None:
        e["WATCHDOG_USEC"] = str(watchdog_usec)
    return e


def test_without_notify_socket_nothing_is_sent() -> None:
    n = Notifier({})
    assert n.address is None and not n.send("READY=1")
    n.ticked()
    n.stopping()
    n.reloading()
    assert n._sock is None and n.sent == 0


@pytest.mark.parametrize(("value", "address"), [
    ("", None), ("relative/path", None), ("vsock:2:1234", None),
    ("/run/systemd/notify", "/run/systemd/notify"), ("@abstract", "\0abstract")])
def test_the_socket_address(value: str, address: str | None) -> None:
    assert Notifier({"NOTIFY_SOCKET": value}).address == address


def test_a_socket_path_is_reached() -> None:
    folder = tempfile.mkdtemp(prefix="lnx-", dir="/tmp")  # short: sun_path holds 108 bytes
    path = os.path.join(folder, "notify")
    systemd = Systemd(path, path)
    try:
        assert Notifier({"NOTIFY_SOCKET": path}).send("READY=1", "STATUS=hello")
        assert systemd.messages() == [["READY=1", "STATUS=hello"]]
    finally:
        systemd.sock.close()
        os.unlink(path)
        os.rmdir(folder)


def test_a_socket_that_is_gone_costs_nothing(tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert not n.send("READY=1")
    n.ticked()
    assert not n.ready  # READY is tried again at the next tick


@pytest.mark.parametrize(("watchdog", "expected"), [
    ({"WATCHDOG_USEC": "30000000"}, 30.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # another process's
    ({"WATCHDOG_USEC": "0"}, None), ({"WATCHDOG_USEC": "soon"}, None), ({}, None)])
def test_the_watchdog_interval(watchdog: dict[str, str], expected: float | None) -> None:
    n = Notifier(watchdog)
    assert n.watchdog_s == expected
    assert n.every == (expected / 2 if expected is not None else STATUS_EVERY_S)


def test_ready_first_then_the_watchdog_at_most_every_half_interval(systemd: Systemd) -> None:
    now = [100.0]
    n = Notifier(env(systemd, 10_000_000), now=lambda: now[0])
    n.status = lambda: "watching 3 processes, 2 rules"
    for _ in range(41):  # a tick every half second for 20 s
        n.ticked()
        now[0] += 0.5
    got = systemd.messages()
    assert got[0] == ["READY=1", "WATCHDOG=1", "STATUS=watching 3 processes, 2 rules"]
    assert got[1:] == [["WATCHDOG=1"]] * 4  # at 105, 110, 115, 120: the status unchanged


def test_a_changed_status_goes_with_the_next_message(systemd: Systemd) -> None:
    now = [0.0]
    n = Notifier(env(systemd, None), now=lambda: now[0])
    seen = ["watching 3 processes, 2 rules"]
    n.status = lambda: seen[0]
    n.ticked()
    now[0] += STATUS_EVERY_S
    n.ticked()  # no watchdog, nothing new: nothing sent
    seen[0] = "watching 4 processes, 2 rules"
    now[0] += STATUS_EVERY_S
    n.ticked()
    assert systemd.messages() == [["READY=1", "STATUS=watching 3 processes, 2 rules"],
                                  ["STATUS=watching 4 processes, 2 rules"]]


def test_the_status_says_when_every_action_is_paused(systemd: Systemd) -> None:
    now = [0.0]
    n = Notifier(env(systemd, None), now=lambda: now[0])
    core = Core(compile_text("rule busy: cpu_pct > 50\n"), 0.5)
    paused = [False]
    assert n.watch(core, lambda: paused[0]) is None
    n.ticked()
    paused[0] = True
    now[0] += STATUS_EVERY_S
    n.ticked()
    assert systemd.messages() == [["READY=1", "STATUS=watching 0 processes, 1 rules"],
                                  ["STATUS=watching 0 processes, 1 rules, actions paused"]]
    assert describe(core, paused=True) == "watching 0 processes, 1 rules, actions paused"


def test_reload_and_stop(systemd: Systemd) -> None:
    n = Notifier(env(systemd, None))
    n.status = lambda: "watching 1 processes, 1 rules"
    n.reloaded()  # not ready yet: a reload does not make it so
    n.ticked()
    n.reloading()
    n.reloaded()
    n.stopping()
    got = systemd.messages()
    assert got[0] == ["READY=1", "STATUS=watching 1 processes, 1 rules"]
    assert got[1][0] == "RELOADING=1" and got[1][1].startswith("MONOTONIC_USEC=")
    assert int(got[1][1].split("=")[1]) > 0
    assert got[2:] == [["READY=1", "STATUS=watching 1 processes, 1 rules"], ["STOPPING=1"]]


@pytest.mark.parametrize(("tick", "watchdog_usec", "fine"), [
    (0.5, 30_000_000, True), (14.9, 30_000_000, True), (15.0, 30_000_000, False),
    (60.0, 30_000_000, False), (60.0, None, True)])
def test_a_tick_too_slow_for_the_watchdog_is_said(systemd: Systemd, tick: float,
                                                  watchdog_usec: int | None,
                                                  fine: bool) -> None:
    n = Notifier(env(systemd, watchdog_usec))
    problem = n.watch(Core(compile_text(""), tick))
    if fine:
        assert problem is None
    else:
        assert problem == (f"a tick every {tick:g}s cannot keep a 30s watchdog (systemd would "
                           "restart the daemon): make [telemetry] tick shorter than 15s or "
                           "WatchdogSec= longer")


# ---- the engine keeps the watchdog ------------------------------------------------------

class TrioClock(Clock):
    """The boot-time clock, as trio's (mock) clock tells it, until it is ``stuck``."""

    def __init__(self) -> None:
        super().__init__(origin=0.0)
        self.stuck: float | None = None

    def now(self) -> float:
        return trio.current_time() if self.stuck is None else self.stuck


class WedgedEngine(LiveEngine):
    """An engine whose ticks stop completing when ``wedged`` (a tick stuck in a rule): its
    ticker goes on waking up, but no tick comes to an end."""

    wedged: bool = False

    def tick(self) -> None:
        if not self.wedged:
            super().tick()


async def test_no_watchdog_while_the_engine_does_not_tick(autojump_clock: MockClock,
                                                          systemd: Systemd) -> None:
    n = Notifier(env(systemd, 4_000_000), now=trio.current_time)  # a ping every 2 s at most
    core = Core(compile_text("rule busy: forks_per_sec > 100\n"), 0.5)
    clock = TrioClock()
    # no delay: with it, the mock clock's sums can round a due tick just below its time
    engine = WedgedEngine(core, clock, lambda out: None, delay=0.0, on_tick=n.ticked)
    n.watch(core)
    engine.feed([t.Proc(ts=trio.current_time(), pid=1, ppid=0, comm="init", start=0.0)])
    pings: list[float] = []

    def collect() -> None:
        pings.extend(trio.current_time() for m in systemd.messages() if "WATCHDOG=1" in m)

    async def listen() -> None:
        while True:
            await trio.sleep(0.25)
            collect()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.ticker)
        nursery.start_soon(listen)
        await trio.sleep(10.0)
        collect()
        alive = len(pings)
        # stuck ticks see no time pass (a second back: the ticker waits for its next tick)
        engine.wedged, clock.stuck = True, trio.current_time() - 1.0
        await trio.sleep(60.0)  # 15 watchdog intervals: systemd would have restarted it
        assert len(pings) == alive
        engine.wedged, clock.stuck = False, None
        await trio.sleep(10.0)
        nursery.cancel_scope.cancel()
    assert alive >= 4 and len(pings) >= alive + 4
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert min(gaps) >= 2.0 - 0.25  # never more often than half the interval (the listener's
    # quarter second of rounding aside)
    assert describe(core) == "watching 1 processes, 1 rules"
