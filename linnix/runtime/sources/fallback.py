"""Event sources for hosts where eBPF cannot run.

* :class:`NetlinkSource`: the kernel's process-events connector (needs
  CAP_NET_ADMIN, usually root).  Every fork, exec and exit is reported, so
  fidelity equals eBPF's; names and paths are read from /proc right after the
  event, so a process gone by then keeps its parent's name.
* :class:`PollSource`: compares successive listings of /proc (any user).
  Processes living shorter than the poll interval are never seen, so rates
  (forks, short jobs) are undercounted: rules that depend on them are less
  reliable in this mode.
"""

from __future__ import annotations

import os
import socket
import struct

import trio

from ...engine import trace as t
from ...procfs import Clock, list_pids, read_cgroup, read_stat
from .identity import Identity
from .ringpump import BATCH_INTERVAL_S

__all__ = ["NetlinkSource", "NetlinkUnavailableError", "PollSource"]

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000
NLMSG_DONE = 3

_NLMSG = struct.Struct("=IHHII")
_CNMSG = struct.Struct("=IIIIHH")
_EVENT_HEAD = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
_FOUR = struct.Struct("=IIII")
_TWO = struct.Struct("=II")


class NetlinkUnavailableError(Exception):
    """The process-events connector cannot be used here."""


def _comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n").decode("utf-8", "replace")
    except OSError:
        return None


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


class NetlinkSource:
    """fork / exec / exit from the kernel's process-events connector."""

    name = "netlink"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
            sock.bind((os.getpid(), CN_IDX_PROC))
            payload = struct.pack("=I", PROC_CN_MCAST_LISTEN)
            cn = _CNMSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
            msg = _NLMSG.pack(_NLMSG.size + len(cn), NLMSG_DONE, 0, 0, os.getpid()) + cn
            sock.send(msg)
        except OSError as err:
            raise NetlinkUnavailableError(
                f"process-events connector: {err.strerror or err}") from None
        sock.setblocking(False)
        self.sock = sock
        # the connector stamps events with the monotonic clock
        self._mono_offset = (self.clock.now() + self.clock.origin) - _monotonic()
        self.comms: dict[int, str] = {}
        self.identity = Identity()

    def _ts(self, ns: int) -> float:
        return round(ns / 1e9 + self._mono_offset - self.clock.origin, 6)

    def parse(self, data: bytes) -> list[t.Event]:
        out: list[t.Event] = []
        offset = 0
        while offset + _NLMSG.size <= len(data):
            length = _NLMSG.unpack_from(data, offset)[0]
            if length < _NLMSG.size:
                break
            at = offset + _NLMSG.size + _CNMSG.size
            if at + _EVENT_HEAD.size <= offset + length:
                event = self._event(data, at)
                if event is not None:
                    out.append(event)
            offset += (length + 3) & ~3
        return out

    def _event(self, data: bytes, at: int) -> t.Event | None:
        what, _cpu, ns = _EVENT_HEAD.unpack_from(data, at)
        body = at + _EVENT_HEAD.size
        ts = max(0.0, self._ts(ns))
        if what == PROC_EVENT_FORK:
            _ppid, ptgid, cpid, ctgid = _FOUR.unpack_from(data, body)
            if cpid != ctgid:
                return None  # a new thread
            comm = _comm(ctgid) or self.comms.get(ptgid) or "?"
            self.comms[ctgid] = comm
            return t.Fork(ts=ts, pid=ctgid, ppid=ptgid, comm=comm)
        if what == PROC_EVENT_EXEC:
            pid, tgid = _TWO.unpack_from(data, body)
            comm = _comm(tgid) or self.comms.get(tgid) or "?"
            self.comms[tgid] = comm
            return t.Exec(ts=ts, pid=tgid, comm=comm, exe=_exe(tgid))
        if what == PROC_EVENT_EXIT:
            pid, tgid, code, _signal = _FOUR.unpack_from(data, body)
            if pid != tgid:
                return None  # a thread ended
            self.comms.pop(tgid, None)
            return t.Exit(ts=ts, pid=tgid, code=code >> 8 if not code & 0x7F else None,
                          signal=code & 0x7F or None)
        return None

    async def run(self, send: trio.MemorySendChannel[list[t.Event]]) -> None:
        async with send:
            while True:
                await trio.lowlevel.wait_readable(self.sock)
                batch: list[t.Event] = []
                while True:
                    try:
                        data = self.sock.recv(65536)
                    except BlockingIOError:
                        break
                    except OSError:  # ENOBUFS: the kernel dropped messages
                        batch.append(t.Lost(ts=round(self.clock.now(), 6), count=1))
                        continue
                    batch.extend(self.parse(data))
                if batch:
                    await self.identity.enrich(batch)  # cgroups and users, off the loop
                    await send.send(batch)
                await trio.sleep(BATCH_INTERVAL_S)  # batch wake-ups on a busy host

    def lost_event(self) -> t.Lost | None:
        return None

    def close(self) -> None:
        self.sock.close()


def _monotonic() -> float:
    import time

    return time.clock_gettime(time.CLOCK_MONOTONIC)


class PollSource:
    """fork / exec / exit inferred from successive /proc listings."""

    name = "poll"

    def __init__(self, clock: Clock, interval: float = 0.5, root: str = "/proc") -> None:
        self.clock = clock
        self.interval = interval
        self.root = root
        # pid -> (start ticks, comm) as of the previous listing; the first
        # listing is the baseline (the daemon's start-up scan reports those)
        self.seen: dict[int, tuple[int, str]] = {}
        self.poll()

    def poll(self) -> list[t.Event]:
        now = round(self.clock.now(), 6)
        current: dict[int, tuple[int, str]] = {}
        out: list[t.Event] = []
        for pid in list_pids(self.root):
            st = read_stat(pid, self.root)
            if st is None or st.exited:
                continue
            current[pid] = (st.start_ticks, st.comm)
            before = self.seen.get(pid)
            if before is None or before[0] != st.start_ticks:
                if before is not None:
                    out.append(t.Exit(ts=now, pid=pid))
                born = round(max(0.0, self.clock.from_ticks(st.start_ticks)), 6)
                # seen only now, perhaps after an exec into a cgroup of its own
                out.append(t.Fork(ts=born, pid=pid, ppid=st.ppid, comm=st.comm,
                                  cgroup=read_cgroup(pid, self.root)))
            elif before[1] != st.comm:
                out.append(t.Exec(ts=now, pid=pid, comm=st.comm, exe=_exe(pid),
                                  cgroup=read_cgroup(pid, self.root)))
        for pid in self.seen.keys() - current.keys():
            out.append(t.Exit(ts=now, pid=pid))
        self.seen = current
        out.sort(key=_order)
        return out

    async def run(self, send: trio.MemorySendChannel[list[t.Event]]) -> None:
        async with send:
            while True:
                # a listing of /proc reads a file per process: thousands of reads on a
                # busy host, which the event loop must not wait for
                batch = await trio.to_thread.run_sync(self.poll)
                if batch:
                    await send.send(batch)
                await trio.sleep(self.interval)

    def lost_event(self) -> t.Lost | None:
        return None

    def close(self) -> None:
        pass


def _order(ev: t.Event) -> tuple[int, int]:
    # exits of reused pids before the forks that reuse them; parents before children
    return (0 if isinstance(ev, t.Exit) else 1, getattr(ev, "pid", 0))
