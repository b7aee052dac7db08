"""The network records of ``bpf/net.c``, built here as the kernel writes them, decoded.

A record is the common head, the syscall's result, the listener's family and port
(accepts) and the raw sockaddr, in a small record (room for an inet or inet6 address) or
a large one (a unix path); a process chooses that sockaddr, its length and a unix path,
so hostile and truncated records must decode to an event or to nothing, never raise, and
every event they give must be valid in a trace.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
from collections.abc import Iterator

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linnix.engine import trace as t
from linnix.names import TEXT_MAX
from linnix.procfs import Clock
from linnix.runtime.sources import bcc
from linnix.runtime.sources.netdecode import (
    EV_ACCEPT,
    EV_CONNECT,
    EV_LISTEN,
    NET_RECORD,
    NET_RECORD_SMALL,
    SA_AT,
    SA_MAX,
    decode_net,
    sockaddr,
)

HEAD = struct.Struct("<QIIII16s")
NET = struct.Struct("<iBBH")  # ret, salen, the listener's family and port
SMALL = NET_RECORD_SMALL - SA_AT  # a small record's room for the address
PAGES = 4


def _inet(addr: str, port: int) -> bytes:
    return (struct.pack("<H", socket.AF_INET) + port.to_bytes(2, "big")
            + socket.inet_pton(socket.AF_INET, addr) + bytes(8))


def _inet6(addr: str, port: int) -> bytes:
    return (struct.pack("<H", socket.AF_INET6) + port.to_bytes(2, "big") + bytes(4)
            + socket.inet_pton(socket.AF_INET6, addr) + bytes(4))


def _unix(path: bytes) -> bytes:
    return struct.pack("<H", socket.AF_UNIX) + path


def _record(kind: int, pid: int, sa: bytes = b"", ret: int = 0, lfamily: int = 0,
            lport: int = 0, salen: int | None = None) -> bytes:
    """A record as the program writes it: small when the address fits (the bytes of sa
    past salen are garbage there)."""
    room = SMALL if len(sa) < SMALL else SA_MAX
    return (HEAD.pack(2_000_000_000, kind, pid, 0, 0, b"")
            + NET.pack(ret, len(sa) if salen is None else salen, lfamily, lport)
            + sa.ljust(room, b"\xaa")[:room])


def _decode(record: bytes) -> t.Event | None:
    kind, pid = struct.unpack_from("<II", record, 8)
    return decode_net(kind, 2.0, pid, record)


def test_a_record_is_as_long_as_the_program_writes_it() -> None:
    # struct ev_net: the head, ret, salen, lfamily, lport, then 32 or 128 bytes of room
    assert NET_RECORD_SMALL == 80 == len(_record(EV_CONNECT, 1, _inet6("::1", 1)))
    assert NET_RECORD == 176 == len(_record(EV_CONNECT, 1, _unix(b"/run/" + b"x" * 30)))


def test_a_connect_carries_its_address_and_its_result() -> None:
    assert _decode(_record(EV_CONNECT, 7, _inet("10.1.2.3", 443))) == t.Connect(
        ts=2.0, pid=7, family="inet", remote_addr="10.1.2.3", remote_port=443)
    # a non-blocking connect under way is made; any other failure is its errno
    assert _decode(_record(EV_CONNECT, 7, _inet("10.1.2.3", 443), ret=-115)) == t.Connect(
        ts=2.0, pid=7, family="inet", remote_addr="10.1.2.3", remote_port=443)
    assert _decode(_record(EV_CONNECT, 7, _inet("127.0.0.1", 1), ret=-111)) == t.Connect(
        ts=2.0, pid=7, family="inet", remote_addr="127.0.0.1", remote_port=1, error=111)
    assert _decode(_record(EV_CONNECT, 8, _inet6("::1", 8080))) == t.Connect(
        ts=2.0, pid=8, family="inet6", remote_addr="::1", remote_port=8080)
    assert _decode(_record(EV_CONNECT, 8, _inet6("::ffff:10.0.0.1", 53))) == t.Connect(
        ts=2.0, pid=8, family="inet6", remote_addr="::ffff:10.0.0.1", remote_port=53)


def test_unix_paths_abstract_names_and_unnamed_sockets() -> None:
    assert sockaddr(_unix(b"/run/app.sock\0junk")) == ("unix", "/run/app.sock", None)
    assert sockaddr(_unix(b"\0abs\0x")) == ("unix", "@abs@x", None)  # every byte is the name
    assert sockaddr(_unix(b"")) == ("unix", None, None)  # unnamed (an accept's peer)
    assert sockaddr(_unix(b"\0")) == ("unix", "@", None)


def test_hostile_unix_paths_are_bounded_text() -> None:
    for path in (b"\xff" * 108, b"\x1b[2J\x07\n\r" * 10, "é".encode() * 54, b"/a\0\xff"):
        family, addr, port = sockaddr(_unix(path)) or ("", None, None)
        assert family == "unix" and port is None and addr is not None
        assert len(addr) <= TEXT_MAX
        ev = _decode(_record(EV_CONNECT, 9, _unix(path)))
        assert isinstance(ev, t.Connect) and ev.remote_addr == addr
        assert msgspec.json.decode(t.encode_event(ev), type=t.Event) == ev


def test_short_or_unknown_addresses() -> None:
    assert sockaddr(b"") is None and sockaddr(b"\x02") is None
    assert sockaddr(struct.pack("<H", socket.AF_NETLINK) + bytes(10)) is None
    assert sockaddr(_inet("1.2.3.4", 80)[:7]) == ("inet", None, None)
    assert sockaddr(_inet6("::1", 80)[:23]) == ("inet6", None, None)
    # a connect of a family not reported (AF_UNSPEC dissolves a UDP association): nothing
    assert _decode(_record(EV_CONNECT, 7, struct.pack("<H", 0) + bytes(14))) is None


def test_an_accept_has_the_peer_and_the_listeners_port() -> None:
    assert _decode(_record(EV_ACCEPT, 5, _inet("192.168.1.9", 51000), ret=4,
                           lfamily=socket.AF_INET, lport=8080)) == t.Accept(
        ts=2.0, pid=5, family="inet", remote_addr="192.168.1.9", remote_port=51000,
        local_port=8080)
    # accept(fd, NULL, NULL): the listener's family, no peer
    assert _decode(_record(EV_ACCEPT, 5, ret=4, lfamily=socket.AF_INET6, lport=22)) == \
        t.Accept(ts=2.0, pid=5, family="inet6", local_port=22)
    # a listener not bound by this process: its port is not known (absent, never 0)
    assert _decode(_record(EV_ACCEPT, 5, _inet("1.2.3.4", 9), ret=4)) == t.Accept(
        ts=2.0, pid=5, family="inet", remote_addr="1.2.3.4", remote_port=9)
    assert _decode(_record(EV_ACCEPT, 5, _unix(b""), ret=4, lfamily=socket.AF_UNIX)) == \
        t.Accept(ts=2.0, pid=5, family="unix")
    assert _decode(_record(EV_ACCEPT, 5, ret=4)) is None  # nothing says which family


def test_a_listen_has_the_address_its_process_bound() -> None:
    assert _decode(_record(EV_LISTEN, 3, _inet("0.0.0.0", 80))) == t.Listen(
        ts=2.0, pid=3, family="inet", local_port=80, local_addr="0.0.0.0")
    assert _decode(_record(EV_LISTEN, 3, _unix(b"/run/x.sock\0"))) == t.Listen(
        ts=2.0, pid=3, family="unix", local_addr="/run/x.sock")
    # bound to port 0: the kernel's choice is not in the bind, so not measured
    assert _decode(_record(EV_LISTEN, 3, _inet6("::", 0))) == t.Listen(
        ts=2.0, pid=3, family="inet6", local_addr="::")
    assert _decode(_record(EV_LISTEN, 3)) is None  # not bound by this process: unknown


def test_truncated_records_and_lengths_past_the_address_give_nothing_false() -> None:
    whole = _record(EV_CONNECT, 7, _inet("10.1.2.3", 443))
    assert decode_net(EV_CONNECT, 2.0, 7, whole) is not None
    for cut in range(NET_RECORD_SMALL):  # too short to hold its fields
        assert decode_net(EV_CONNECT, 2.0, 7, whole[:cut]) is None
    # a length larger than the address room reads the room, no more
    long = _record(EV_CONNECT, 7, _unix(b"/" + b"p" * 200), salen=255)
    ev = _decode(long)
    assert isinstance(ev, t.Connect) and ev.remote_addr == "/" + "p" * (SA_MAX - 3)
    # in a small record, its room: the one byte past this address is the room's last
    short = _record(EV_CONNECT, 7, _unix(b"/" + b"p" * 28), salen=255)
    ev = _decode(short)
    assert isinstance(ev, t.Connect) and ev.remote_addr == "/" + "p" * 28 + "\ufffd"
    assert _decode(_record(99, 7, _inet("10.1.2.3", 443))) is None  # not a network kind
    assert _decode(_record(EV_CONNECT, 0, _inet("10.1.2.3", 443))) is None  # no process


@given(kind=st.sampled_from([EV_CONNECT, EV_ACCEPT, EV_LISTEN, 0, 8]),
       pid=st.integers(0, 2**32 - 1), ret=st.integers(-2**31, 2**31 - 1),
       salen=st.integers(0, 255), lfamily=st.integers(0, 255),
       lport=st.integers(0, 65535), sa=st.binary(max_size=SA_MAX),
       family=st.sampled_from([0, 1, 2, 10, 16, 65535]), cut=st.integers(0, NET_RECORD + 8))
def test_any_record_decodes_to_a_valid_event_or_nothing(
        kind: int, pid: int, ret: int, salen: int, lfamily: int, lport: int, sa: bytes,
        family: int, cut: int) -> None:
    raw = _record(kind, pid, struct.pack("<H", family) + sa, ret, lfamily, lport, salen)
    ev = decode_net(kind, 2.0, pid, raw[:cut])
    if ev is not None:  # valid as a trace line: it round-trips through the decoder
        assert isinstance(ev, t.NET_TYPES)
        assert msgspec.json.decode(t.encode_event(ev), type=t.Event) == ev


@given(kind=st.sampled_from([EV_CONNECT, EV_ACCEPT, EV_LISTEN]),
       salen=st.integers(0, 255), sa=st.binary(max_size=SA_MAX),
       family=st.sampled_from([0, 1, 2, 10]), cut=st.integers(NET_RECORD_SMALL, NET_RECORD))
def test_an_address_decoded_in_place_is_the_one_sockaddr_reads(
        kind: int, salen: int, sa: bytes, family: int, cut: int) -> None:
    # inet addresses are read in place in the record, the others through sockaddr(): the
    # same address either way, of no more bytes than salen and the record's room
    raw = _record(kind, 7, struct.pack("<H", family) + sa, lfamily=2, lport=80, salen=salen)
    ev = decode_net(kind, 2.0, 7, raw[:cut])
    address = sockaddr(raw[SA_AT:SA_AT + min(salen, len(raw[:cut]) - SA_AT)])
    if address is None:
        assert ev is None or (isinstance(ev, t.Accept) and ev.remote_addr is None)
        return
    assert ev is not None
    fields = ((ev.family, ev.local_addr, ev.local_port or None) if isinstance(ev, t.Listen)
              else (ev.family, ev.remote_addr, ev.remote_port))
    assert fields == (address[0], address[1], address[2] or None if kind == EV_LISTEN
                      else address[2])


@pytest.fixture
def ring() -> Iterator[tuple[bcc.RingReader, int]]:
    fd = os.memfd_create("ring")
    os.ftruncate(fd, (2 + 2 * PAGES) * mmap.PAGESIZE)
    reader = bcc.RingReader(fd, PAGES)
    yield reader, fd
    reader.close()
    os.close(fd)


def test_the_ring_reader_decodes_network_records_among_the_others(
        ring: tuple[bcc.RingReader, int]) -> None:
    reader, fd = ring
    records = [_record(EV_LISTEN, 3, _inet("127.0.0.1", 8080)),
               HEAD.pack(2_000_000_000, bcc.EV_FORK, 4, 3, 0, b"srv"),
               _record(EV_CONNECT, 4, _inet("127.0.0.1", 8080), ret=-115),
               _record(EV_ACCEPT, 3, _inet("127.0.0.1", 40000), ret=5,
                       lfamily=socket.AF_INET, lport=8080),
               _record(EV_LISTEN, 3)]  # unknown family: left out
    with mmap.mmap(fd, mmap.PAGESIZE + 2 * reader.size, mmap.MAP_SHARED,
                   offset=mmap.PAGESIZE) as data:
        pos = 0
        for rec in records:
            at = mmap.PAGESIZE + pos
            data[at:at + 8] = struct.pack("<II", len(rec), 0)
            data[at + 8:at + 8 + len(rec)] = rec
            pos += (len(rec) + 8 + 7) & ~7
        data[0:8] = struct.pack("<Q", pos)
    assert reader.drain(Clock(origin=0.0)) == [
        t.Listen(ts=2.0, pid=3, family="inet", local_port=8080, local_addr="127.0.0.1"),
        t.Fork(ts=2.0, pid=4, ppid=3, comm="srv", uid=0),
        t.Connect(ts=2.0, pid=4, family="inet", remote_addr="127.0.0.1", remote_port=8080),
        t.Accept(ts=2.0, pid=3, family="inet", remote_addr="127.0.0.1", remote_port=40000,
                 local_port=8080),
    ]


def test_the_address_texts_kept_are_bounded() -> None:
    from linnix.runtime.sources import netdecode

    for i in range(3 * netdecode._CACHE_MAX):  # a scan of many peers
        addr = socket.inet_ntop(socket.AF_INET, i.to_bytes(4, "big"))
        assert sockaddr(_inet(addr, 80)) == ("inet", addr, 80)
        assert len(netdecode._V4) <= netdecode._CACHE_MAX
    assert sockaddr(_inet6("fe80::1", 22)) == ("inet6", "fe80::1", 22)
    assert sockaddr(_inet6("fe80::1", 23)) == ("inet6", "fe80::1", 23)  # cached text, own port


def test_a_network_record_that_wraps_the_rings_end_is_decoded(
        ring: tuple[bcc.RingReader, int]) -> None:
    reader, fd = ring
    rec = _record(EV_CONNECT, 4, _inet("10.0.0.1", 5432))
    framed = struct.pack("<II", len(rec), 0) + rec
    start = reader.size - 48  # its header and 40 bytes before the end, the rest at the start
    with mmap.mmap(fd, mmap.PAGESIZE + 2 * reader.size, mmap.MAP_SHARED,
                   offset=mmap.PAGESIZE) as data:
        base = mmap.PAGESIZE
        data[base + start:base + reader.size] = framed[:48]
        data[base:base + len(framed) - 48] = framed[48:]
        data[0:8] = struct.pack("<Q", start + ((len(framed) + 7) & ~7))
    reader.consumer[0:8] = struct.pack("<Q", start)
    assert reader.drain(Clock(origin=0.0)) == [
        t.Connect(ts=2.0, pid=4, family="inet", remote_addr="10.0.0.1", remote_port=5432)]


def _framed(records: list[bytes], start: int, size: int, busy: int | None = None,
            discard: int | None = None, shown: int | None = None) -> tuple[bytes, int]:
    """The ring's data area with ``records`` written from ``start`` on, as the kernel
    writes them (each after its 8-byte header, wrapping past the end to the start), and
    the producer's position (after the first ``shown`` records when given: those past it
    are old ones, left from a lap before); record ``busy`` is still being written,
    ``discard`` dropped."""
    area = bytearray(size)
    pos = produced = start
    for i, rec in enumerate(records):
        if i == shown:
            produced = pos
        header = len(rec) | (1 << 31 if i == busy else 0) | (1 << 30 if i == discard else 0)
        for j, byte in enumerate(struct.pack("<II", header, 0) + rec):
            area[(pos + j) % size] = byte
        pos += (len(rec) + 8 + 7) & ~7
    return bytes(area), pos if shown is None else produced


def _drain(records: list[bytes], start: int = 0, origin: float = 0.0, busy: int | None = None,
           discard: int | None = None, limit: int = 1 << 16,
           shown: int | None = None) -> list[t.Event]:
    fd = os.memfd_create("ring")
    try:
        os.ftruncate(fd, (2 + 2 * PAGES) * mmap.PAGESIZE)
        reader = bcc.RingReader(fd, PAGES)
        try:
            area, pos = _framed(records, start, reader.size, busy, discard, shown)
            with mmap.mmap(fd, mmap.PAGESIZE + 2 * reader.size, mmap.MAP_SHARED,
                           offset=mmap.PAGESIZE) as data:
                data[mmap.PAGESIZE:mmap.PAGESIZE + reader.size] = area
                data[0:8] = struct.pack("<Q", pos)
            reader.consumer[0:8] = struct.pack("<Q", start)
            return reader.drain(Clock(origin=origin), limit)
        finally:
            reader.close()
    finally:
        os.close(fd)


def _stamped(record: bytes, stamp: int) -> bytes:
    return struct.pack("<Q", stamp) + record[8:]


# the values the run's own decoding tells apart first (an inet address of 8 bytes or more)
_small = st.builds(
    lambda kind, pid, ret, salen, lfamily, lport, family, sa: _record(
        kind, pid, (struct.pack("<H", family) + sa)[:SMALL - 1], ret, lfamily, lport, salen),
    kind=st.sampled_from([EV_CONNECT, EV_ACCEPT, EV_LISTEN]),
    pid=st.sampled_from([4, 0, 1, 2**32 - 1]), ret=st.sampled_from([0, -115, 5, -111, -2**31]),
    salen=st.sampled_from([16, 8, 0, 28, 7, 2, 1, 31, 255]),
    lfamily=st.sampled_from([2, 0, 10, 1, 77]), lport=st.sampled_from([80, 0, 65535]),
    family=st.sampled_from([2, 10, 1, 0, 16]), sa=st.binary(min_size=SMALL, max_size=SMALL))
# records of another kind or size, which end a run
_others = st.sampled_from([HEAD.pack(0, bcc.EV_FORK, 9, 1, 0, b"f"),
                           _record(EV_CONNECT, 5, _unix(b"/run/" + b"u" * 40))])


@given(small=st.lists(st.tuples(_small, st.integers(0, 2**50)), max_size=12),
       others=st.lists(st.tuples(st.integers(0, 12), _others, st.integers(0, 2**50)),
                       max_size=3),
       start=st.integers(0, PAGES * mmap.PAGESIZE // 8 - 1).map(lambda n: 8 * n),
       origin=st.floats(0, 2**40 / 1e9))
def test_a_run_of_small_records_gives_what_each_record_gives_alone(
        small: list[tuple[bytes, int]], others: list[tuple[int, bytes, int]], start: int,
        origin: float) -> None:
    # small records one after the other are decoded in one pass: the events are those
    # of the records decoded one by one, each at the time a fork of the same stamp gets,
    # wherever the run starts (across the ring's end too)
    records = list(small)
    for at, rec, stamp in others:
        records.insert(at, (rec, stamp))
    recs = [_stamped(rec, stamp) for rec, stamp in records]
    expected: list[t.Event] = []
    for rec in recs:
        kind, pid = struct.unpack_from("<II", rec, 8)
        [fork] = _drain([HEAD.pack(struct.unpack_from("<Q", rec)[0], bcc.EV_FORK, 1, 0, 0,
                                   b"")], origin=origin)
        ev = (t.Fork(ts=fork.ts, pid=9, ppid=1, comm="f", uid=0) if kind == bcc.EV_FORK
              else decode_net(kind, fork.ts, pid, rec))
        if ev is not None:
            expected.append(ev)
    assert _drain(recs, start, origin) == expected


def test_a_run_of_small_records_decoded_in_one_pass() -> None:
    inet = _inet("10.0.0.1", 5432)
    records = [
        _record(EV_CONNECT, 4, inet, ret=-115),  # in progress: made
        _record(EV_CONNECT, 4, inet, ret=-111),  # refused
        _record(EV_CONNECT, 0, inet),  # no process: nothing
        _record(EV_CONNECT, 4, inet, salen=7),  # too short for its address
        _record(EV_CONNECT, 4, _inet6("::1", 443)),
        _record(EV_ACCEPT, 3, _inet("10.0.0.2", 40000), ret=5, lfamily=2, lport=0),
        _record(EV_ACCEPT, 3, ret=6, lfamily=socket.AF_INET, lport=8080),  # no peer asked
        _record(EV_ACCEPT, 3, ret=7, lfamily=77),  # nor a listener known: nothing
        _record(EV_LISTEN, 3, _inet("0.0.0.0", 0)),
    ]
    stamps = [1_000_500 + i for i in range(len(records))]  # the first a tie: rounded up
    assert _drain([_stamped(r, s) for r, s in zip(records, stamps, strict=True)]) == [
        t.Connect(ts=0.001001, pid=4, family="inet", remote_addr="10.0.0.1", remote_port=5432),
        t.Connect(ts=0.001001, pid=4, family="inet", remote_addr="10.0.0.1", remote_port=5432,
                  error=111),
        t.Connect(ts=0.001001, pid=4, family="inet"),
        t.Connect(ts=0.001001, pid=4, family="inet6", remote_addr="::1", remote_port=443),
        t.Accept(ts=0.001001, pid=3, family="inet", remote_addr="10.0.0.2", remote_port=40000),
        t.Accept(ts=0.001001, pid=3, family="inet", local_port=8080),
        t.Listen(ts=0.001001, pid=3, family="inet", local_addr="0.0.0.0"),
    ]
    assert _drain([_stamped(records[0], 1_000_499)]) == [
        t.Connect(ts=0.001, pid=4, family="inet", remote_addr="10.0.0.1", remote_port=5432)]


def test_a_run_ends_where_the_records_written_end() -> None:
    # at a record being written, at the producer's position (old records lie past it),
    # and at the events asked for; a discarded record is skipped
    records = [_record(EV_CONNECT, 4, _inet("10.0.0.1", n)) for n in range(1, 6)]

    def ports(**how: int) -> list[int | None]:
        return [ev.remote_port if isinstance(ev, t.Connect) else None
                for ev in _drain(records, **how)]

    assert ports(discard=1) == [1, 3, 4, 5]
    assert ports(busy=3) == [1, 2, 3]
    assert ports(shown=2) == [1, 2]
    assert ports(limit=2) == [1, 2]
    records.insert(0, HEAD.pack(0, bcc.EV_FORK, 9, 1, 0, b"f"))
    assert ports(limit=3) == [None, 1, 2]
