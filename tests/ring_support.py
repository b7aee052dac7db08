"""A BPF ring buffer laid out in a memfd, written as the kernel program writes it."""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Sequence

import trio

from linnix.engine import trace as t
from linnix.procfs import Clock
from linnix.runtime.sources import bcc
from linnix.runtime.sources.identity import Identity

HEAD = struct.Struct("<QIIII16s")  # ts_ns, kind, pid, ppid, uid, comm


def record_head(kind: int, pid: int, comm: bytes = b"x", ppid: int = 0,
                ts_ns: int = 1_500_000_000) -> bytes:
    return HEAD.pack(ts_ns, kind, pid, ppid, 0, comm)


def exit_record(pid: int, code: int, sig: int, ts_ns: int = 1_500_000_000) -> bytes:
    return record_head(bcc.EV_EXIT, pid, ts_ns=ts_ns) + struct.pack("<ii", code, sig)


def fork_record(pid: int, ppid: int, ts_ns: int) -> bytes:
    return record_head(bcc.EV_FORK, pid, b"w", ppid=ppid, ts_ns=ts_ns)


def write_records(fd: int, size: int, start: int, records: list[bytes]) -> int:
    """Write ``records`` into the ring of ``size`` bytes laid out in ``fd`` from position
    ``start`` on, each wrapping past the data's end as the kernel writes it (into the second
    mapping of the same pages, that is: the start), and move the producer past them; the
    producer's new position."""
    page = mmap.PAGESIZE
    with mmap.mmap(fd, page + size, mmap.MAP_SHARED, offset=page) as data:
        pos = start
        for rec in records:
            raw = struct.pack("<II", len(rec), 0) + rec
            off = pos % size
            first = raw[:size - off]
            data[page + off:page + off + len(first)] = first
            data[page:page + len(raw) - len(first)] = raw[len(first):]
            pos += (len(raw) + 7) & ~7
        data[0:8] = struct.pack("<Q", pos)
    return pos


class FakeRing:
    """A memfd shaped like a BPF ring buffer (consumer page, producer page, data) and a
    :class:`~linnix.runtime.sources.bcc.RingReader` over it."""

    def __init__(self, pages: int) -> None:
        self.fd = os.memfd_create("ring")
        os.ftruncate(self.fd, (2 + 2 * pages) * mmap.PAGESIZE)
        self.reader = bcc.RingReader(self.fd, pages)
        self.pos = 0  # the producer's position

    def append(self, records: list[bytes]) -> None:
        """Write ``records`` after those written before, as the kernel does (wrapping)."""
        self.pos = write_records(self.fd, self.reader.size, self.pos, records)

    async def readable(self) -> None:
        """Until records wait (as the ring's fd becomes readable)."""
        while not self.reader.waiting():
            await trio.sleep(0.001)

    def close(self) -> None:
        self.reader.close()
        os.close(self.fd)


class TrioClock(Clock):
    """The daemon's clock, on trio's (autojump) clock."""

    def __init__(self) -> None:
        super().__init__(origin=0.0)

    def now(self) -> float:
        return trio.current_time()


class SlowIdentity(Identity):
    """Completing forks and execs takes ``delay`` seconds on the test's clock (no thread,
    whose real time autojump_clock would count as idle)."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay

    async def enrich(self, batch: Sequence[t.Event]) -> None:
        if batch:
            await trio.sleep(self.delay)
