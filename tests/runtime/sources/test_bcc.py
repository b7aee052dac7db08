"""The eBPF source's record parser, on a ring buffer laid out in a memfd (no kernel program).

The records are built here as ``linnix.bpf.c`` writes them: exits carry the
code or the signal (-1 for unknown), execs the argv the syscall was given,
bounded and marked when cut.  Hostile bytes decode safely.
"""

from __future__ import annotations

import math
import mmap
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ring_support import HEAD, FakeRing, write_records
from ring_support import exit_record as _exit
from ring_support import record_head as _head

from linnix.engine import trace as t
from linnix.procfs import Clock
from linnix.runtime.sources import bcc

PAGES = 4


def _exec(pid: int, filename: bytes, args: list[bytes] | None, cut: bool = False) -> bytes:
    body = _head(bcc.EV_EXEC, pid, b"x") + filename.ljust(256, b"\0")
    if args is None:
        return body + struct.pack("<HHI", 0, 0, 0)
    raw = b"".join(a + b"\0" for a in args)
    flags = bcc.ARGV_KNOWN | (bcc.ARGV_CUT if cut else 0)
    return body + struct.pack("<HHI", len(args), flags, len(raw)) + raw


@pytest.fixture
def ring() -> Iterator[tuple[bcc.RingReader, int]]:
    """A reader over a memfd shaped like a BPF ring buffer: consumer, producer, data."""
    fake = FakeRing(PAGES)
    yield fake.reader, fake.fd
    fake.close()


def _write(reader: bcc.RingReader, fd: int, records: list[bytes]) -> None:
    write_records(fd, reader.size, 0, records)


def _write_at(reader: bcc.RingReader, fd: int, start: int, records: list[bytes]) -> None:
    """Records from position ``start`` on, the consumer there too."""
    write_records(fd, reader.size, start, records)
    with mmap.mmap(fd, mmap.PAGESIZE, mmap.MAP_SHARED, offset=0) as consumer:
        consumer[0:8] = struct.pack("<Q", start)


@pytest.mark.parametrize("laps", [0, 3])
@pytest.mark.parametrize("before_end", [
    56 + 16,  # the fork's header and 8 bytes of it are the last 16 bytes: the rest at the start
    56 + 48,  # the fork ends exactly at the end, the exec starts at the start
    56 + 48 + 64,  # the exec starts 64 bytes before the end and runs on at the start
])
def test_a_record_that_runs_past_the_end_is_read_whole(ring: tuple[bcc.RingReader, int],
                                                       laps: int, before_end: int) -> None:
    reader, fd = ring
    argv = [b"grep", b"-q", b"x" * 300]
    start = laps * reader.size + reader.size - before_end  # an exit of 56 bytes first
    _write_at(reader, fd, start, [_exit(9, 0, -1), _head(bcc.EV_FORK, 30, b"sh", ppid=1),
                                  _exec(30, b"/usr/bin/grep", argv), _exit(30, 1, -1)])
    events = reader.drain(Clock(origin=0.0))
    assert events == [
        t.Exit(ts=1.5, pid=9, code=0), t.Fork(ts=1.5, pid=30, ppid=1, comm="sh", uid=0),
        t.Exec(ts=1.5, pid=30, comm="x", exe="/usr/bin/grep", argv=["grep", "-q", "x" * 300]),
        t.Exit(ts=1.5, pid=30, code=1)]
    with mmap.mmap(fd, mmap.PAGESIZE, mmap.MAP_SHARED, offset=0) as consumer:
        assert struct.unpack("<Q", consumer[0:8])[0] > (laps + 1) * reader.size  # all read


def test_a_drain_keeps_its_forks_and_execs_apart_for_identity(
        ring: tuple[bcc.RingReader, int]) -> None:
    # Identity completes forks (users) and execs (cgroups) only: the drain hands it those,
    # in order, so that it never walks the connects, accepts and exits of a busy host
    reader, fd = ring
    _write(reader, fd, [_head(bcc.EV_FORK, 20, b"sh", ppid=1), _exit(19, 0, -1),
                        _exec(20, b"/bin/true", [b"true"]), _head(bcc.EV_FORK, 21, ppid=20)])
    events = reader.drain(Clock(origin=0.0))
    assert reader.procs == [events[0], events[2], events[3]]
    assert [type(ev) for ev in reader.procs] == [t.Fork, t.Exec, t.Fork]
    _write(reader, fd, [_exit(20, 0, -1)])
    reader.drain(Clock(origin=0.0))
    assert reader.procs == []  # the last drain's only


def test_an_exit_carries_its_code_or_its_signal(ring: tuple[bcc.RingReader, int]) -> None:
    reader, fd = ring
    _write(reader, fd, [_exit(10, 1, -1), _exit(11, -1, 11), _exit(12, -1, -1),
                        _exit(13, 0, -1)])
    events = reader.drain(Clock(origin=0.0))
    assert events == [t.Exit(ts=1.5, pid=10, code=1), t.Exit(ts=1.5, pid=11, signal=11),
                      t.Exit(ts=1.5, pid=12), t.Exit(ts=1.5, pid=13, code=0)]
    assert [(e.signal_name(), e.crashed()) for e in events if isinstance(e, t.Exit)] == [
        (None, False), ("SIGSEGV", True), (None, False), (None, False)]


def test_an_exec_carries_the_argv_of_its_syscall(ring: tuple[bcc.RingReader, int]) -> None:
    reader, fd = ring
    _write(reader, fd, [
        _exec(20, b"/usr/bin/grep", [b"grep", b"-q", b"a b", b""]),
        _exec(21, b"/usr/bin/env", None),  # exec'd by the kernel: argv unknown
        _exec(22, b"/bin/true", [b"true", b"\xff\xfe\x1b[2J", "é".encode()]),
        _exec(23, b"/bin/true", [b"true", b"y" * 2000, b"y" * 39], cut=True),
        _exec(24, b"/bin/true", []),
    ])
    events = reader.drain(Clock(origin=0.0))
    assert [(e.pid, e.exe, e.argv, e.argv_truncated) for e in events
            if isinstance(e, t.Exec)] == [
        (20, "/usr/bin/grep", ["grep", "-q", "a b", ""], False),
        (21, "/usr/bin/env", None, False),
        # hostile bytes: decoded as /proc/PID/cmdline is, escapes kept as data
        (22, "/bin/true", ["true", "\ufffd\ufffd\x1b[2J", "é"], False),
        (23, "/bin/true", ["true", "y" * 2000, "y" * 39], True),
        (24, "/bin/true", [], False),
    ]
    assert reader.take_relative() == []


def test_a_cut_argv_shows_in_the_command_line(ring: tuple[bcc.RingReader, int]) -> None:
    reader, fd = ring
    _write(reader, fd, [_exec(23, b"/bin/true", [b"true", b"yy"], cut=True)])
    (ev,) = reader.drain(Clock(origin=0.0))
    assert isinstance(ev, t.Exec) and ev.cmdline() == "true yy ..."
    assert t.Exec(ts=0.0, pid=1, comm="a", argv=["a", "b"]).cmdline() == "a b"
    assert t.Exec(ts=0.0, pid=1, comm="a").cmdline() is None


def test_argv_bytes_past_the_bound_are_never_read(ring: tuple[bcc.RingReader, int]) -> None:
    """A length field larger than the program ever writes reads ARGV_BYTES at most."""
    reader, fd = ring
    rec = bytearray(_exec(30, b"/bin/true", [b"a" * 3000]))
    struct.pack_into("<I", rec, HEAD.size + 256 + 4, 1 << 30)
    _write(reader, fd, [bytes(rec)])
    (ev,) = reader.drain(Clock(origin=0.0))
    assert isinstance(ev, t.Exec) and ev.argv == ["a" * bcc.ARGV_BYTES]


def test_argv_never_reads_past_its_record(ring: tuple[bcc.RingReader, int]) -> None:
    reader, fd = ring
    rec = _exec(31, b"/bin/true", [b"abc", b"defgh"])
    short = rec[:-6]  # the record ends before the bytes its length field promises
    _write(reader, fd, [short, _exit(31, 0, -1)])
    ev, after = reader.drain(Clock(origin=0.0))
    assert isinstance(ev, t.Exec) and ev.argv == ["abc", ""]  # the 4 bytes there, no more
    assert after == t.Exit(ts=1.5, pid=31, code=0)


def test_relative_paths_are_completed_from_the_working_directory(
        ring: tuple[bcc.RingReader, int], tmp_path: Path) -> None:
    reader, fd = ring
    proc = tmp_path / "proc"
    work = tmp_path / "work"
    work.mkdir()
    (work / "x").write_text("")
    (proc / "100").mkdir(parents=True)
    (proc / "100" / "cwd").symlink_to(work)  # the parent, still alive; the child is gone
    _write(reader, fd, [_head(bcc.EV_FORK, 101, b"sh", ppid=100),
                        _exec(101, b"./x", [b"./x"]), _exit(101, 0, -1),  # gone at once
                        _exec(102, b"./x", [b"./x"])])
    events = reader.drain(Clock(origin=0.0))
    relative = reader.take_relative()
    assert [(e.pid, ppid) for e, ppid in relative] == [(101, 100), (102, None)]
    reader.resolve(relative, str(proc))
    assert [(e.pid, e.exe) for e in events if isinstance(e, t.Exec)] == [
        (101, str(work / "x")), (102, None)]  # 102's parent is not known: unknown, not ./x
    assert reader.take_relative() == []


def test_a_record_being_written_is_left_for_the_next_drain(
        ring: tuple[bcc.RingReader, int]) -> None:
    reader, fd = ring
    _write(reader, fd, [_exit(10, 0, -1)])
    with mmap.mmap(fd, mmap.PAGESIZE + 2 * reader.size, mmap.MAP_SHARED,
                   offset=mmap.PAGESIZE) as data:
        data[mmap.PAGESIZE:mmap.PAGESIZE + 4] = struct.pack("<I", 56 | (1 << 31))  # busy
        assert reader.drain(Clock(origin=0.0)) == []
        data[mmap.PAGESIZE:mmap.PAGESIZE + 4] = struct.pack("<I", 48)
    assert reader.drain(Clock(origin=0.0)) == [t.Exit(ts=1.5, pid=10, code=0)]


@given(stamp=st.integers(0, 2**59), origin=st.floats(0, 2**59 / 1e9))
def test_an_events_time_is_its_stamp_from_the_origin_in_whole_microseconds(
        stamp: int, origin: float) -> None:
    fake = FakeRing(PAGES)
    try:
        _write(fake.reader, fake.fd, [HEAD.pack(stamp, bcc.EV_FORK, 2, 1, 0, b"x")])
        [ev] = fake.reader.drain(Clock(origin=origin))
    finally:
        fake.close()
    # the kernel's nanoseconds less the origin (taken to the nanosecond), rounded to the
    # microsecond, as near as a float comes to that
    exact = Fraction(stamp, 10**9) - Fraction(origin)
    slack = Fraction(1, 2 * 10**6) + Fraction(1, 2 * 10**9) + Fraction(math.ulp(ev.ts))
    assert abs(Fraction(ev.ts) - exact) <= slack
    assert round(ev.ts, 6) == ev.ts  # a whole number of microseconds, as before
