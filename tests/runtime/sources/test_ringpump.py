"""RingPump: the eBPF ring's records as they come, or held until a tick asks for them (a ring
laid out in a memfd, no kernel program)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from ring_support import FakeRing, SlowIdentity, TrioClock, exit_record, fork_record

from linnix.engine import trace as t
from linnix.runtime.sources import ringpump
from linnix.runtime.sources.ringpump import RingPump

PAGES = 16  # 64 KiB: an eighth is 8 KiB, some 150 exits


class Pumped:
    """A pump over a fake ring, running, and the batches it sent with when they came."""

    def __init__(self, pump: RingPump, ring: FakeRing) -> None:
        self.pump, self.ring = pump, ring
        self.got: list[tuple[float, list[t.Event]]] = []

    async def collect(self, receive: trio.MemoryReceiveChannel[list[t.Event]]) -> None:
        async for batch in receive:
            self.got.append((trio.current_time(), batch))

    def exits(self, n: int, first: int = 100) -> None:
        self.ring.append([exit_record(pid, 0, -1) for pid in range(first, first + n)])

    def pids(self) -> list[list[int]]:
        return [[ev.pid for ev in batch] for _, batch in self.got]


@pytest.fixture
async def pumped(request: pytest.FixtureRequest) -> AsyncIterator[Pumped]:
    ring = FakeRing(PAGES)
    identity = getattr(request, "param", None) or SlowIdentity()
    pump = RingPump(ring.reader, TrioClock(), identity, ring.readable)
    pump.rest_max = 1.0
    p = Pumped(pump, ring)
    try:
        async with trio.open_nursery() as nursery:
            send, receive = trio.open_memory_channel[list[t.Event]](16)
            nursery.start_soon(pump.run, send)
            nursery.start_soon(p.collect, receive)
            yield p
            nursery.cancel_scope.cancel()
    finally:
        ring.close()


async def test_records_go_as_they_come_a_rest_apart_when_not_held(
        pumped: Pumped, autojump_clock: object) -> None:
    pumped.exits(2)
    await trio.sleep(0.01)
    pumped.exits(1, first=200)  # during the rest after the first batch
    await trio.sleep(0.1)
    assert pumped.pids() == [[100, 101], [200]]
    (first, _), (second, _) = pumped.got
    assert first <= 0.002 and second - first == pytest.approx(ringpump.BATCH_INTERVAL_S,
                                                             abs=0.002)


async def test_held_records_wait_for_a_flush_and_leave_before_it_returns(
        pumped: Pumped, autojump_clock: object) -> None:
    pumped.pump.hold = lambda: True
    pumped.exits(3)
    await trio.sleep(0.9)
    assert pumped.got == []  # waiting in the ring
    await pumped.pump.flush()
    await trio.sleep(0)  # the collector takes what the flush sent
    assert pumped.pids() == [[100, 101, 102]]
    await trio.sleep(2.0)  # the rest was ended: no second drain of its own
    assert pumped.pump.batches == 1 and pumped.pump.flushes == 1
    await pumped.pump.flush()  # nothing waits: nothing sent
    assert pumped.pump.batches == 1


async def test_held_records_go_after_the_longest_rest_when_nobody_asks(
        pumped: Pumped, autojump_clock: object) -> None:
    pumped.pump.hold = lambda: True
    pumped.exits(2)
    await trio.sleep(3.0)
    assert pumped.pids() == [[100, 101]]
    assert pumped.got[0][0] == pytest.approx(1.0, abs=0.002)  # rest_max after the first


async def test_a_burst_is_not_held_until_a_drain_finds_the_ring_calm(
        pumped: Pumped, autojump_clock: object) -> None:
    pump, size = pumped.pump, pumped.ring.reader.size
    pump.hold = lambda: True
    stride = (len(exit_record(0, 0, -1)) + 8 + 7) & ~7  # an exit's bytes in the ring
    many = size // ringpump.BURST_SHARE // stride + 1
    pumped.exits(many)
    await trio.sleep(1.5)  # held, then drained after the longest rest: it was a burst
    assert pump.batches == 1 and pumped.ring.reader.filled * ringpump.BURST_SHARE > size
    assert not pump.holding()
    pumped.exits(1, first=5000)
    await trio.sleep(0.01)
    assert pump.batches == 2  # at once: the burst may go on
    assert pump.holding()  # that drain found the ring calm again
    pumped.exits(1, first=6000)
    await trio.sleep(0.5)
    assert pump.batches == 2  # held again


@pytest.mark.parametrize("pumped", [SlowIdentity(0.2)], indirect=True)
async def test_a_flush_returns_after_the_batch_of_a_drain_under_way(
        pumped: Pumped, autojump_clock: object) -> None:
    # the run loop drained a fork and waits for its cgroup and user; a flush meanwhile
    # must not let what the caller sends next overtake that batch
    pumped.ring.append([fork_record(300, 1, 1_000_000)])
    await trio.sleep(0.05)  # that drain is under way
    pumped.exits(1, first=301)
    await pumped.pump.flush()
    assert trio.current_time() >= 0.2
    await trio.sleep(0)
    assert pumped.pids() == [[300], [301]]


def test_the_longest_rest_never_lets_a_burst_fill_the_ring() -> None:
    assert ringpump.longest_rest(16 << 20) == ringpump.REST_MAX_S  # the default ring: 16 MiB
    assert ringpump.longest_rest(256 << 10) == pytest.approx((256 << 10) / (16 << 20))
