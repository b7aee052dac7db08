"""Moving a BPF ring buffer's records to the engine: as they come, or when a tick needs them.

Records wait whole in the ring buffer until they are drained.  Each drain costs a
pass of the event loop, and right after a sleep that pass costs far more than the
few events a hundred forks a second bring (``bench/wakecost.py``).  So while no
rule waits for an event as it happens (:attr:`RingPump.hold`), the first record
after a drain starts a rest, and the records stay in the ring until the engine
asks for them (:meth:`RingPump.flush`: before each tick, and before each round
of samples) or :data:`REST_MAX_S` has passed.  A tick still has every event
stamped before it: the engine asks on the same loop, before the tick runs.

A drain that found more than an eighth of the ring filled ends holding until one
finds less: a burst must not fill the ring meanwhile.  While an event rule is
loaded, the records go as they come, at most :data:`BATCH_INTERVAL_S` apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from ...engine import trace as t
from ...procfs import Clock
from .identity import Identity

if TYPE_CHECKING:
    from .bcc import RingReader

__all__ = ["BATCH_INTERVAL_S", "REST_MAX_S", "RingPump", "longest_rest"]

BATCH_INTERVAL_S = 0.025  # records as they come: a rest after each batch, so one wake-up each
REST_MAX_S = 1.0  # records held: at most this long, whoever asks for them ...
BURST_BYTES_S = 16 << 20  # ... and never so long that records at this rate would fill the ring
BURST_SHARE = 8  # a drain that found more than this share of the ring filled: no holding
FLUSH_PASSES = 4  # a flush drains at most this many times (a drain reads at most 65,536)


def longest_rest(size: int) -> float:
    """How long records may wait in a ring of ``size`` bytes: :data:`REST_MAX_S`, or less
    when records coming at :data:`BURST_BYTES_S` would fill it sooner."""
    return min(REST_MAX_S, size / BURST_BYTES_S)


class RingPump:
    """Drains ``reader`` into batches of events, completed (exec paths, cgroups, users)."""

    def __init__(self, reader: RingReader, clock: Clock, identity: Identity,
                 wait: Callable[[], Awaitable[None]]) -> None:
        self.reader = reader
        self.clock = clock
        self.identity = identity
        self.wait = wait  # until records are there to read (the ring's fd is readable)
        # whether records may wait in the ring until flush(): set by whoever feeds an
        # engine (the daemon: while no event rule is loaded); unset, they never wait
        self.hold: Callable[[], bool] | None = None
        self.rest_max = longest_rest(reader.size)
        self.batches = 0
        self.flushes = 0  # drains a flush made that found records
        self._lock = trio.Lock()  # one drain at a time: batches leave in the ring's order
        self._send: trio.MemorySendChannel[list[t.Event]] | None = None
        self._rest: trio.CancelScope | None = None
        self._flushed = False  # the rest under way was ended by a flush, which drained

    def holding(self) -> bool:
        """Whether records wait for :meth:`flush` now."""
        reader = self.reader
        return (self.hold is not None and self.hold()
                and reader.filled * BURST_SHARE <= reader.size)

    async def run(self, send: trio.MemorySendChannel[list[t.Event]]) -> None:
        """Send batches until cancelled: after each wake-up, at once and then a rest of
        :data:`BATCH_INTERVAL_S`; or, while :meth:`holding`, when asked or after
        :attr:`rest_max`."""
        async with send:
            self._send = send
            try:
                while True:
                    await self.wait()
                    if not self.holding():
                        await self._drain(send)
                        await trio.sleep(BATCH_INTERVAL_S)
                        continue
                    self._flushed = False
                    with trio.move_on_after(self.rest_max) as rest:
                        self._rest = rest
                        await trio.sleep_forever()
                    self._rest = None
                    if not self._flushed:
                        await self._drain(send)
            finally:
                self._send = None

    async def flush(self) -> None:
        """Send what waits in the ring now, before what the caller sends next (a tick, a
        round of samples): records the kernel wrote up to now come before it."""
        send = self._send
        if send is None or (not self._lock.locked() and not self.reader.waiting()):
            return  # nothing waits and no drain is under way: before each tick, mostly
        if self._rest is not None:
            self._flushed = True
            self._rest.cancel()
        # a drain under way sends its batch first; then what is left, in a few passes
        for _ in range(FLUSH_PASSES):
            if await self._drain(send):
                self.flushes += 1
            if not self.reader.waiting():
                return

    async def _drain(self, send: trio.MemorySendChannel[list[t.Event]]) -> bool:
        """One drain, its batch sent; whether it had any events."""
        async with self._lock:
            reader = self.reader
            batch = reader.drain(self.clock)
            relative = reader.take_relative()
            if relative:  # rare (./x): /proc links and a stat, off the event loop
                await trio.to_thread.run_sync(reader.resolve, relative)
            if batch:
                # cgroups and users, off the loop: only forks and execs need them
                await self.identity.enrich(reader.procs)
                self.batches += 1
                await send.send(batch)
            return bool(batch)
