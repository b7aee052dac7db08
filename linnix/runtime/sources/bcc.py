"""The eBPF event source: fork, exec and exit from kernel tracepoints through BCC.

The distribution's BCC bindings (``python3-bpfcc``) are imported lazily, only
here.  The program (``bpf/linnix.c``) writes one BPF ring buffer; instead of
BCC's per-record Python callback, this module maps the ring buffer's memory
and parses every available record in one pass each time the map's file
descriptor becomes readable (``trio.lowlevel.wait_readable``): no polling
thread, and a batch per wake-up.  Failed reservations in the kernel are
counted there and reported as ``lost`` events.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import sys
from importlib import resources
from typing import Any

import trio

from ...engine import trace as t
from ...procfs import Clock
from .caps import capture_problem, effective

__all__ = ["BpfUnavailableError", "BpfSource", "RingReader", "import_bcc", "tracefs_dir"]

EV_FORK, EV_EXEC, EV_EXIT, EV_RENAME = 1, 2, 3, 4
_HEAD = struct.Struct("<QIIII16s")
_FILENAME = struct.Struct("128s")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_BUSY, _DISCARD = 1 << 31, 1 << 30
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
BATCH_INTERVAL_S = 0.025
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


class BpfUnavailableError(Exception):
    """eBPF capture cannot run here; the message says why and how to fix it."""


def import_bcc() -> Any:
    """The distribution's bcc module (never the unrelated PyPI package of that name)."""
    try:
        import bcc
    except ImportError:
        if os.path.isdir(os.path.join(DIST_PACKAGES, "bcc")) and DIST_PACKAGES not in sys.path:
            sys.path.append(DIST_PACKAGES)
            try:
                import bcc
            except ImportError as err:
                raise BpfUnavailableError(
                    f"BCC is installed but cannot be imported: {err}") from None
        else:
            raise BpfUnavailableError("BCC's Python bindings are not installed "
                                 "(apt-get install python3-bpfcc)") from None
    if not hasattr(bcc, "BPF"):
        raise BpfUnavailableError("the 'bcc' module found is not BCC (pip's 'bcc' package is "
                             "unrelated: pip uninstall bcc; apt-get install python3-bpfcc)")
    return bcc


def tracefs_dir() -> str | None:
    """Where tracefs is mounted, mounting it (as root) if it is not."""
    for path in TRACEFS:
        if os.path.isdir(os.path.join(path, "events")):
            return path
    if os.geteuid() == 0 and os.path.isdir(TRACEFS[0]):
        with contextlib.suppress(OSError):
            os.system(f"mount -t tracefs tracefs {TRACEFS[0]} 2>/dev/null")
        if os.path.isdir(os.path.join(TRACEFS[0], "events")):
            return TRACEFS[0]
    return None


def _has_field(tracefs: str, event: str, field: str) -> bool:
    try:
        with open(os.path.join(tracefs, "events", event, "format"), encoding="ascii") as f:
            return any(f" {field};" in line for line in f)
    except OSError:
        return False


def program_source() -> str:
    return resources.files("linnix.runtime.sources").joinpath("linnix.bpf.c").read_text("utf-8")


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


class RingReader:
    """Parses records straight from a BPF ring buffer's memory map."""

    def __init__(self, fd: int, pages: int) -> None:
        self.page = mmap.PAGESIZE
        self.size = pages * self.page
        self.mask = self.size - 1
        self.consumer = mmap.mmap(fd, self.page, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        # producer page, then the data area mapped twice so records can wrap
        self.data = mmap.mmap(fd, self.page + 2 * self.size, mmap.MAP_SHARED,
                              mmap.PROT_READ, offset=self.page)
        # raw 16-byte command names -> text: a fork storm repeats one name
        self._names: dict[bytes, str] = {}

    def _name(self, raw: bytes) -> str:
        text = self._names.get(raw)
        if text is None:
            if len(self._names) >= 4096:  # bounded: names are as many as programs run
                self._names.clear()
            text = self._names[raw] = _cstr(raw)
        return text

    def close(self) -> None:
        self.consumer.close()
        self.data.close()

    def drain(self, clock: Clock, limit: int = 1 << 16) -> list[t.Event]:
        """Every complete record available now (at most ``limit``), as events."""
        data, base, mask = self.data, self.page, self.mask
        cpos = _U64.unpack_from(self.consumer, 0)[0]
        ppos = _U64.unpack_from(data, 0)[0]
        out: list[t.Event] = []
        origin = clock.origin
        head = _HEAD.unpack_from
        names = self._names
        while cpos < ppos and len(out) < limit:
            at = base + (cpos & mask)
            header = _U32.unpack_from(data, at)[0]
            if header & _BUSY:
                break  # the producer is still writing this record
            length = header & ~(_BUSY | _DISCARD)
            if not header & _DISCARD:
                ts_ns, kind, pid, ppid, uid, comm = head(data, at + 8)
                ts = round(ts_ns / 1e9 - origin, 6)
                if kind == EV_FORK:
                    text = names.get(comm)
                    if text is None:
                        text = self._name(comm)
                    out.append(t.Fork(ts=ts, pid=pid, ppid=ppid, comm=text, uid=uid))
                elif kind == EV_EXEC:
                    name = _FILENAME.unpack_from(data, at + 8 + _HEAD.size)[0]
                    out.append(t.Exec(ts=ts, pid=pid, comm=self._name(comm), exe=_cstr(name)))
                elif kind == EV_EXIT:
                    out.append(t.Exit(ts=ts, pid=pid))
                elif kind == EV_RENAME:  # a sample carrying only the new name
                    out.append(t.Sample(ts=ts, pid=pid, comm=_cstr(comm)))
            cpos += (length + 8 + 7) & ~7
        _U64.pack_into(self.consumer, 0, cpos)
        return out


class BpfSource:
    """Loads the program, reads its ring buffer, reports lost events."""

    name = "ebpf"

    def __init__(self, clock: Clock, ring_pages: int = 4096) -> None:
        if ring_pages & (ring_pages - 1):
            raise ValueError("ring buffer pages must be a power of two")
        problem = capture_problem(effective(), os.geteuid())
        if problem is not None:
            raise BpfUnavailableError(problem)
        bcc = import_bcc()
        tracefs = tracefs_dir()
        if tracefs is None:
            raise BpfUnavailableError("tracefs is not mounted "
                                 "(mount -t tracefs tracefs /sys/kernel/tracing)")
        release = os.uname().release
        if not os.path.isdir(f"/lib/modules/{release}/build"):
            raise BpfUnavailableError(f"no kernel headers at /lib/modules/{release}/build "
                                 "(make setup links the distribution's headers there)")
        cflags = [f"-DRINGBUF_PAGES={ring_pages}", "-Wno-macro-redefined"]
        if _has_field(tracefs, "sched/sched_process_exit", "group_dead"):
            cflags.append("-DHAVE_GROUP_DEAD")
        if _has_field(tracefs, "syscalls/sys_enter_prctl", "option"):
            cflags.append("-DHAVE_PRCTL")
        self.clock = clock
        self.ring_pages = ring_pages
        try:
            with _quiet_stderr():
                self.bpf = bcc.BPF(text=program_source().encode(), cflags=cflags)
        except Exception as err:
            raise BpfUnavailableError(f"the eBPF program did not load: {err}") from None
        table = self.bpf[b"events"]
        self.fd: int = table.map_fd
        self.reader = RingReader(self.fd, ring_pages)
        self._lost_table = self.bpf[b"lost"]
        self._lost_seen = 0
        self.batches = 0

    def lost_total(self) -> int:
        """Events the kernel could not deliver since the program was loaded."""
        values = self._lost_table[self._lost_table.Key(0)]
        return int(sum(values))

    def lost_event(self) -> t.Lost | None:
        """A ``lost`` event for drops since the last call, or None."""
        total = self.lost_total()
        new, self._lost_seen = total - self._lost_seen, total
        return t.Lost(ts=round(self.clock.now(), 6), count=new) if new > 0 else None

    def drain(self) -> list[t.Event]:
        return self.reader.drain(self.clock)

    async def run(self, send: trio.MemorySendChannel[list[t.Event]]) -> None:
        """Forward batches until cancelled.

        After each batch the source rests for ``BATCH_INTERVAL_S``: events pile
        up in the ring buffer meanwhile, so a busy host costs one wake-up per
        interval instead of one per event (the ring holds far more than an
        interval's worth at the highest fork rates measured).
        """
        async with send:
            while True:
                await trio.lowlevel.wait_readable(self.fd)
                batch = self.drain()
                if batch:
                    self.batches += 1
                    await send.send(batch)
                await trio.sleep(BATCH_INTERVAL_S)

    def close(self) -> None:
        self.reader.close()
        with contextlib.suppress(Exception):
            self.bpf.cleanup()


@contextlib.contextmanager
def _quiet_stderr() -> Any:
    """Silence clang's warnings about kernel headers while the program compiles."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
