"""The trio shell around the synchronous core: channels, clock, shutdown.

Sources send *batches* of events over a memory channel (one channel message
per event would cost more than evaluating it).  The engine task applies them
to the :class:`~linnix.engine.core.Core` and hands every result to a sink.

The clock is injected.  With :class:`VirtualClock` (replay, tests) time is
the trace's: ticks run as event timestamps pass them.  With
:class:`RealClock` (the daemon) a ticker task wakes at ``start + k * tick`` on
trio's clock — which tests replace with ``autojump_clock`` — and events are
stamped by their source on the same time base.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import trio

from . import trace as t
from .core import Core, Output

__all__ = ["Clock", "RealClock", "Sink", "VirtualClock", "run_engine"]

Sink = Callable[[Sequence[Output]], None]


@attrs.define
class VirtualClock:
    """Time comes from the events themselves."""


@attrs.define
class RealClock:
    """Time is trio's clock, counted from ``origin`` (seconds since the engine started)."""

    origin: float = attrs.field(factory=trio.current_time)

    def now(self) -> float:
        return trio.current_time() - self.origin


Clock = VirtualClock | RealClock


async def run_engine(core: Core, receive: trio.MemoryReceiveChannel[list[t.Event]],
                     sink: Sink, clock: Clock | None = None,
                     on_tick: Callable[[Core], None] | None = None) -> None:
    """Consume event batches until the channel closes, ticking by ``clock``."""
    clock = clock or VirtualClock()
    if isinstance(clock, VirtualClock):
        async with receive:
            async for batch in receive:
                core.feed(batch)
                _flush(core, sink)
        core.finish()
        _flush(core, sink)
        return
    core.start(clock.now())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_ticker, core, clock, sink, on_tick)
        async with receive:
            async for batch in receive:
                core.apply(batch)
        nursery.cancel_scope.cancel()


async def _ticker(core: Core, clock: RealClock, sink: Sink,
                  on_tick: Callable[[Core], None] | None) -> None:
    while True:
        await trio.sleep_until(clock.origin + core.next_tick)
        core.run_until(clock.now())
        _flush(core, sink)
        if on_tick is not None:
            on_tick(core)


def _flush(core: Core, sink: Sink) -> None:
    out = core.drain()
    if out:
        sink(out)
