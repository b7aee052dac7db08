"""Ticks and rounds of samples after the events the eBPF ring holds (LiveEngine.settle): the
engine, the ring's pump over a memfd and the telemetry's loop, on trio's autojump clock."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
import trio
from ring_support import FakeRing, SlowIdentity, TrioClock, fork_record

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import compile_text
from linnix.runtime.live import LiveEngine, Mark
from linnix.runtime.sources.ringpump import RingPump
from linnix.runtime.sources.telemetry import Telemetry

PLAN = compile_text("rule storm: forks_per_sec > 100000\n")
FORK_EVERY_S = 0.01
READ_S = 0.03  # how long a round of samples takes to read


class NoLoss:
    def lost_event(self) -> None:
        return None


class Host:
    """The pieces the daemon wires, and what each tick found applied."""

    def __init__(self) -> None:
        self.clock = TrioClock()
        self.ring = FakeRing(64)
        self.pump = RingPump(self.ring.reader, self.clock, SlowIdentity(), self.ring.readable)
        self.pump.hold = lambda: True
        self.pump.rest_max = 1.0  # as the default ring of 16 MiB allows
        self.core = Core(PLAN, 0.5)
        self.engine = LiveEngine(self.core, self.clock, lambda out: None)
        self.telemetry = Telemetry(self.clock, PLAN, NoLoss(), 1.0)  # type: ignore[arg-type]
        self.telemetry.collect = self._collect  # type: ignore[method-assign]
        self.written: list[float] = []  # the forks' times, as the reader rounds them
        self.applied: list[float] = []
        self.ticks: list[tuple[float, int, int]] = []  # tick, forks applied, forks before it
        table = self.core.table
        fork = table.handlers[t.Fork]
        table.handlers[t.Fork] = lambda ev: (self.applied.append(ev.ts), fork(ev))
        self.core.after_tick = self._ticked

    def _collect(self, *args: Any) -> list[t.Event]:
        return [t.System(ts=round(self.clock.now(), 6), cpu_pct=1.0)]

    def _ticked(self, now: float) -> None:
        before = sum(1 for ts in self.written if ts <= now)
        self.ticks.append((now, len(self.applied), before))

    async def kernel(self) -> None:
        """A fork every 10 ms, written to the ring as the kernel program writes it."""
        pid = 1000
        await trio.sleep(0.003)  # never at a tick's time exactly
        while True:
            ns = round(trio.current_time() * 1e9)
            self.ring.append([fork_record(pid, 1, ns)])
            self.written.append((ns + 500) // 1000 / 1e6)
            pid += 1
            await trio.sleep(FORK_EVERY_S)


async def _reads(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A round's reads: stamped when they begin, handed back READ_S later."""
    out = fn(*args)
    await trio.sleep(READ_S)
    return out


async def run_host(host: Host, phase: float, seconds: float, *, settle: bool = True) -> None:
    engine = host.engine
    engine.feed([t.System(ts=0.0, cpu_pct=1.0)])  # ticks at 0, 0.5, 1, ...
    engine.catch_up = host.pump.flush
    async with trio.open_nursery() as nursery:
        send, receive = trio.open_memory_channel[list[t.Event]](256)
        nursery.start_soon(host.pump.run, send.clone())
        nursery.start_soon(host.kernel)
        nursery.start_soon(engine.ticker, send.clone())
        if settle:
            host.telemetry.settle = functools.partial(engine.settle, send.clone())

        async def samples(out: trio.MemorySendChannel[list[t.Event]]) -> None:
            await trio.sleep(phase)
            await host.telemetry.run(out)

        nursery.start_soon(samples, send.clone())
        send.close()
        nursery.start_soon(engine.consume, receive)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()
    host.ring.close()


@pytest.mark.parametrize("phase", [0.0, 0.01, 0.02, 0.035, 0.047, 0.05, 0.053, 0.1, 0.26, 0.48,
                                   0.5, 0.73])
async def test_every_tick_has_every_event_stamped_before_it_whatever_the_rounds_phase(
        phase: float, autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trio.to_thread, "run_sync", _reads)  # the rounds only
    host = Host()
    await run_host(host, phase, 6.0)
    assert len(host.ticks) >= 11
    assert [(tick, applied) for tick, applied, _ in host.ticks] == \
        [(tick, before) for tick, _, before in host.ticks]
    assert host.engine.clamped <= len(host.ticks)  # only samples stamped before a flush's
    assert host.pump.batches <= 3 * len(host.ticks)  # held: about a batch a tick or round


async def test_the_rounds_wait_for_the_held_events_to_be_fed(
        autojump_clock: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # without settling first, a round read after a tick's time but fed before the events
    # held for that tick runs the tick without them: the test above would fail
    monkeypatch.setattr(trio.to_thread, "run_sync", _reads)  # the rounds only
    host = Host()
    await run_host(host, 0.01, 6.0, settle=False)
    assert any(applied < before for _, applied, before in host.ticks)


async def test_a_mark_is_reached_after_the_batches_sent_before_it(
        autojump_clock: object) -> None:
    core = Core(PLAN, 0.5)
    order: list[str] = []
    engine = LiveEngine(core, TrioClock(), lambda out: None)
    core.after_tick = lambda now: order.append(f"tick {now:g}")
    fork = core.table.handlers[t.Fork]
    core.table.handlers[t.Fork] = lambda ev: (order.append(f"fork {ev.ts:g}"), fork(ev))
    send, receive = trio.open_memory_channel[list[t.Event]](8)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.consume, receive)
        await send.send([t.System(ts=0.0, cpu_pct=1.0)])
        await trio.sleep(0.6)
        await send.send([t.Fork(ts=0.4, pid=5, ppid=1, comm="a")])
        mark = Mark()
        await send.send(mark)
        await mark.reached.wait()
        assert order == ["tick 0", "fork 0.4"]  # fed; no tick at 0.5: the mark asked for none
        await engine.settle(send, tick=True)
        assert order == ["tick 0", "fork 0.4", "tick 0.5"]
        nursery.cancel_scope.cancel()
