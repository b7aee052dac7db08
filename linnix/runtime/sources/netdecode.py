"""Decoding the network records of the eBPF program (``bpf/net.c``) into trace events.

A record is the common head (time, kind, process; its name, parent and user are
not filled), the syscall's result, what is known of the listening socket (for an
accept), and the ``sockaddr`` as the caller gave it (connect, bind) or got it
(accept), raw: the family, port and address are read from it here rather than in
the kernel.  The kernel sends a small record (room for an inet or inet6 address)
unless the address needs more (a unix path): the room is the record's length.
Everything in it is hostile (a process chooses its sockaddr, its length and a
unix socket's path), so every length is checked against the record and the
structure, a short or unknown address gives an event without one, and a record
too short to hold its fields, or of a family that is not reported, gives nothing.
The fields and an inet address (most records) are read in place in the ring's
memory: this runs once per connect and accept (bench/RESULTS.md, issue 17).  A run
of small records one after the other in the ring (what a busy host's connects and
accepts leave) is decoded by :func:`decode_small_run`, every record's ring header,
head, fields and inet address in one unpack: the per-record calls and slices of
:func:`decode_net` cost as much as the rest of the event.
"""

from __future__ import annotations

import mmap
import socket
import struct
from typing import Literal

from ...engine import trace as t
from ...names import TEXT_MAX

__all__ = ["EV_ACCEPT", "EV_CONNECT", "EV_LISTEN", "NET_KINDS", "NET_RECORD",
           "NET_RECORD_SMALL", "SA_AT", "SA_MAX", "SMALL_STRIDE", "decode_net",
           "decode_small_run", "sockaddr"]

EV_CONNECT, EV_ACCEPT, EV_LISTEN = 5, 6, 7
NET_KINDS = frozenset((EV_CONNECT, EV_ACCEPT, EV_LISTEN))
HEAD_SIZE = 40  # struct ev_head: ts, kind, pid, ppid, uid, comm[16]
# ret, salen, the listening socket's family and port (host order), then the address's
# family (host order; not one when salen is below 2)
_FIELDS = struct.Struct("<iBBHH")
SA_AT = HEAD_SIZE + 8  # where the sockaddr starts
SA_MAX = 128  # NET_SA_MAX in bpf/net.c: a large record's room
NET_RECORD = SA_AT + SA_MAX  # a whole large record, without the ring buffer's header
NET_RECORD_SMALL = SA_AT + 32  # NET_RECORD_SMALL in bpf/net.c
# A small record where it sits in the ring: the ring's 8-byte header (its length, with
# the busy and discard bits), then ts, kind and pid of the head (ppid, uid and comm are
# not filled), ret, salen, the listener's family and port, and the first 8 bytes of the
# address (family, port in network order, an inet address), padded to the next record
_SMALL = struct.Struct("<I4xQII24xiBBHHBB4s24x")
SMALL_STRIDE = _SMALL.size  # from one small record's header to the next one's
EINPROGRESS = 115  # a non-blocking connect under way: made, as far as the process knows
_AF_INET = int(socket.AF_INET)
_FAMILIES: dict[int, Literal["inet", "inet6", "unix"]] = {
    socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix"}

Family = Literal["inet", "inet6", "unix"]
Address = tuple[Family, str | None, int | None]  # family, address, port


def sockaddr(raw: bytes) -> Address | None:
    """The family, address and port of a raw ``sockaddr`` (None: no reported family).

    An address too short for its family has no address or port; a unix socket's
    path is text (an abstract name starts with ``@``, its NULs shown as ``@`` too),
    cut at its first NUL otherwise; an unnamed unix socket has no address.
    """
    size = len(raw)
    if size < 2:
        return None
    family = raw[0] | raw[1] << 8  # sa_family_t, host order (little-endian)
    if family == socket.AF_INET:
        if size < 8:
            return "inet", None, None
        return "inet", _text(_V4, socket.AF_INET, raw[4:8]), raw[2] << 8 | raw[3]
    if family == socket.AF_INET6:
        if size < 24:
            return "inet6", None, None
        return "inet6", _text(_V6, socket.AF_INET6, raw[8:24]), raw[2] << 8 | raw[3]
    if family == socket.AF_UNIX:
        return "unix", _unix_path(raw[2:]), None
    return None


# Addresses as text, by their bytes: a busy host talks to few peers over and over, and
# formatting one costs more than the rest of its event.  Bounded: emptied when full.
_V4: dict[bytes, str] = {}
_V6: dict[bytes, str] = {}
_CACHE_MAX = 4096


def _text(cache: dict[bytes, str], family: int, packed: bytes) -> str:
    text = cache.get(packed)
    if text is None:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        text = cache[packed] = socket.inet_ntop(family, packed)
    return text


def _unix_path(path: bytes) -> str | None:
    if path[:1] == b"\0":  # abstract: every byte of the given length is the name
        path = b"@" + path[1:].replace(b"\0", b"@")
    else:
        path = path.split(b"\0", 1)[0]
    if not path:
        return None
    return path.decode("utf-8", "replace")[:TEXT_MAX]


def decode_net(kind: int, ts: float, pid: int, data: bytes | mmap.mmap, at: int = 0,
               length: int | None = None) -> t.Event | None:
    """The event of the network record of ``length`` bytes (head included; the rest of
    ``data`` when None) at ``at`` in ``data``, or None when it has none."""
    if length is None:
        length = len(data) - at
    if length < NET_RECORD_SMALL or pid <= 0:
        return None
    ret, salen, lfamily, lport, family = _FIELDS.unpack_from(data, at + HEAD_SIZE)
    sa = at + SA_AT
    address: Address | None
    if salen >= 8 and family == _AF_INET:  # most records: read in place, no copy of sa
        packed = data[sa + 4:sa + 8]
        address = ("inet", _V4.get(packed) or _text(_V4, _AF_INET, packed),
                   data[sa + 2] << 8 | data[sa + 3])
    elif salen < 2:  # none (an accept that asked for no peer address)
        address = None
    else:  # no longer than it says, than the record's room, or than SA_MAX
        address = sockaddr(data[sa:sa + min(salen, length - SA_AT, SA_MAX)])
    if kind == EV_CONNECT:
        if address is None:
            return None
        name, addr, port = address
        error = -ret if ret < 0 and ret != -EINPROGRESS else None
        # by position (the order of the fields in engine/trace.py): keywords, or *address,
        # cost more
        return t.Connect(ts, pid, name, addr, port, error)
    if kind == EV_ACCEPT:
        if address is None:  # no peer address asked for: the listener's family, if known
            local = _FAMILIES.get(lfamily)
            if local is None:
                return None  # nor was the listener bound by this process
            return t.Accept(ts, pid, local, None, None, lport or None)
        name, addr, port = address
        return t.Accept(ts, pid, name, addr, port, lport or None)
    if kind == EV_LISTEN:
        if address is None:
            return None  # not bound by this process since the capture began: family unknown
        name, addr, port = address
        # port 0: bound to whatever port the kernel picks, which the bind does not say
        return t.Listen(ts=ts, pid=pid, family=name, local_port=port or None,
                        local_addr=addr)
    return None


def decode_small_run(data: mmap.mmap | bytes, at: int, count: int, origin_ns: int,
                     out: list[t.Event]) -> int:
    """Decode the small network records one after the other from ``at`` in ``data``
    (each from its ring header on; at most ``count``, which must fit in ``data``),
    appending their events to ``out``; return how many were taken: the run ends at the
    first record that is not a complete small network record (being written, discarded,
    of another kind or size), which is left to the caller.  An event's time is its stamp
    less ``origin_ns``, in whole microseconds (ties up), as :mod:`.bcc` gives every event.
    """
    if count <= 0:
        return 0
    taken = 0
    start = origin_ns - 500  # ties up: (ts_ns - origin_ns + 500) // 1000, one step less
    append = out.append
    v4 = _V4
    view = memoryview(data)[at:at + count * SMALL_STRIDE]
    for (header, ts_ns, kind, pid, ret, salen, lfamily, lport, family, high, low,
         packed) in _SMALL.iter_unpack(view):
        if header != NET_RECORD_SMALL or kind not in NET_KINDS:
            break  # the busy and discard bits are in the header: neither is set here
        taken += 1
        if not pid:
            continue
        ts = (ts_ns - start) // 1000 / 1e6
        if salen >= 8 and family == _AF_INET and kind != EV_LISTEN:  # most records
            addr = v4.get(packed) or _text(v4, _AF_INET, packed)
            if kind == EV_CONNECT:
                append(t.Connect(ts, pid, "inet", addr, high << 8 | low,
                                 -ret if ret < 0 and ret != -EINPROGRESS else None))
            else:
                append(t.Accept(ts, pid, "inet", addr, high << 8 | low, lport or None))
            continue
        if salen < 2 and kind == EV_ACCEPT:  # no peer asked for (connloop's accepts)
            local = _FAMILIES.get(lfamily)
            if local is not None:
                append(t.Accept(ts, pid, local, None, None, lport or None))
            continue
        ev = decode_net(kind, ts, pid, data, at + (taken - 1) * SMALL_STRIDE + 8,
                        NET_RECORD_SMALL)
        if ev is not None:
            append(ev)
    return taken
