"""The eBPF event source: fork, exec and exit from kernel tracepoints through BCC.

The distribution's BCC bindings (``python3-bpfcc``) are imported lazily, only
here, and only by the short-lived child process that compiles and loads the
program (:mod:`.bpfload`): the daemon holds the loaded program by file
descriptors and never maps the compiler.  The program (``bpf/linnix.c``, linked into this package as
``linnix.bpf.c``) writes one BPF ring buffer; instead of BCC's per-record Python
callback, this module maps the ring buffer's memory and parses every available
record in one pass each time the map's file descriptor becomes readable
(``trio.lowlevel.wait_readable``): no polling thread, and a batch per wake-up;
while no rule waits for an event as it happens, the records wait in the ring
until the engine's next tick or round of samples asks for them (:mod:`.ringpump`).
Failed reservations in the kernel are counted there and reported as ``lost``
events.

Each field comes from the kernel at the event: an exec carries the argv its
syscall was given (bounded, cut marked), an exit its code or fatal signal.
Only a relative exec path (``./x``) is completed here, by :mod:`.exe`.
Connect, accept and listen records share the ring buffer: :mod:`.netdecode`
decodes them, and :mod:`.netcap` attaches their programs only when asked.
"""

from __future__ import annotations

import contextlib
import importlib.util
import mmap
import os
import struct
import sys
from importlib import resources
from typing import Any

import trio

from ...engine import trace as t
from ...procfs import Clock
from .bpfattach import FdPrograms
from .bpfload import LoadError, load_program
from .bpfmap import possible_cpus, read_percpu_u64
from .caps import capture_problem, effective
from .exe import FD_PATH as _FD_PATH
from .exe import Parents, absolute_exe
from .identity import Identity
from .netcap import NetCapture, net_cflags
from .netdecode import NET_KINDS, NET_RECORD_SMALL, SMALL_STRIDE, decode_net, decode_small_run
from .ringpump import RingPump

__all__ = ["TRACEPOINT_PARTS", "BpfSource", "BpfUnavailableError", "RingReader", "find_bcc",
           "import_bcc", "optional_parts", "program_cflags", "tracefs_dir"]

EV_FORK, EV_EXEC, EV_EXIT, EV_RENAME = 1, 2, 3, 4
_HEAD = struct.Struct("<QIIII16s")
_FILENAME_LEN = 256
_ARGV_HEAD = struct.Struct("<HHI")  # argc, flags, bytes of argv that follow
_EXIT = struct.Struct("<ii")  # code, signal: -1 when unknown
_EXEC_ARGV = _HEAD.size + _FILENAME_LEN + _ARGV_HEAD.size  # where the argv bytes start
ARGV_KNOWN, ARGV_CUT = 1, 2
ARGV_BYTES = 2048  # as in linnix.bpf.c: what one record's argv holds at most
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_BUSY, _DISCARD = 1 << 31, 1 << 30
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
# Optional parts of the program, each compiled in when its tracepoints have these
# fields: the define, what it gives, and the (event, field) pairs it reads.
TRACEPOINT_PARTS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("HAVE_SYSCALLS", "argv and exit codes", (
        ("syscalls/sys_enter_execve", "argv"), ("syscalls/sys_enter_exit_group", "error_code"),
        ("syscalls/sys_enter_exit", "error_code"))),
    ("HAVE_EXECVEAT", "argv of execveat", (("syscalls/sys_enter_execveat", "argv"),)),
    ("HAVE_SIGNAL", "fatal signals", (
        ("signal/signal_generate", "result"), ("signal/signal_deliver", "sa_handler"))),
    ("HAVE_PRCTL", "renames (prctl)", (("syscalls/sys_enter_prctl", "option"),)),
)


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


def find_bcc() -> None:
    """Raises :class:`BpfUnavailableError` unless the distribution's bcc module is there.

    Only looked for: the loader's child process imports it (see :mod:`.bpfload`).
    """
    if importlib.util.find_spec("bcc") is None and not os.path.isdir(
            os.path.join(DIST_PACKAGES, "bcc")):
        raise BpfUnavailableError("BCC's Python bindings are not installed "
                                  "(apt-get install python3-bpfcc)")


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


def optional_parts(tracefs: str) -> list[tuple[str, str, bool]]:
    """Each optional part of the program: its define, what it gives, whether it can load."""
    return [(flag, gives, all(_has_field(tracefs, event, field) for event, field in needs))
            for flag, gives, needs in TRACEPOINT_PARTS]


def program_cflags(ring_pages: int) -> list[str]:
    """The defines the program is compiled with here, or why it cannot be."""
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
    cflags += [f"-D{flag}" for flag, _gives, present in optional_parts(tracefs) if present]
    return cflags + net_cflags(tracefs)


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
        # producer page, then the data area once: the kernel maps it twice in a row so that
        # a record can run past the end, but twice would count it twice in the resident
        # memory (32 MiB for the default 16); the rare record that wraps is stitched
        self.data = mmap.mmap(fd, self.page + self.size, mmap.MAP_SHARED,
                              mmap.PROT_READ, offset=self.page)
        # raw 16-byte command names -> text: a fork storm repeats one name
        self._names: dict[bytes, str] = {}
        self.parents = Parents()  # for relative exec paths
        # execs of this drain whose exe is to complete, with their parent as it was then
        # (a process that lives a millisecond has exited, and been forgotten, by the end)
        self.relative: list[tuple[t.Exec, int | None]] = []
        # the forks and execs of the last drain, in order: all that Identity completes,
        # kept here so that it need not look at every connect, accept and exit again
        self.procs: list[t.Event] = []
        self.filled = 0  # bytes waiting when the last drain began

    def waiting(self) -> int:
        """Bytes of records waiting now (some may still be being written)."""
        return int(_U64.unpack_from(self.data, 0)[0] - _U64.unpack_from(self.consumer, 0)[0])

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
        data, base, mask, size = self.data, self.page, self.mask, self.size
        cpos = _U64.unpack_from(self.consumer, 0)[0]
        ppos = _U64.unpack_from(data, 0)[0]
        self.filled = ppos - cpos
        out: list[t.Event] = []
        procs: list[t.Event] = []
        self.procs = procs
        num, den = clock.origin.as_integer_ratio()  # the origin to the nanosecond, exactly
        origin_ns = (num * 1_000_000_000 + den // 2) // den
        head = _HEAD.unpack_from
        names = self._names
        parents = self.parents.parents
        while cpos < ppos and len(out) < limit:
            off = cpos & mask
            at = base + off
            header = _U32.unpack_from(data, at)[0]  # 8-aligned: never wraps
            if header == NET_RECORD_SMALL:  # a run of connects and accepts: in one pass
                taken = decode_small_run(
                    data, at, min(ppos - cpos, size - off, (limit - len(out)) * SMALL_STRIDE)
                    // SMALL_STRIDE, origin_ns, out)
                if taken:
                    cpos += taken * SMALL_STRIDE
                    continue
            if header & _BUSY:
                break  # the producer is still writing this record
            length = header & ~(_BUSY | _DISCARD)
            if not header & _DISCARD:
                buf: bytes | mmap.mmap = data
                if off + 8 + length > size:  # runs past the end: the rest is at the start
                    buf, at = self._stitch(off, length), 0
                ts_ns, kind, pid, ppid, uid, comm = head(buf, at + 8)
                # whole microseconds from the origin, in integers (ties up): round(x, 6)
                # costs as much as decoding the rest of a connect event
                ts = (ts_ns - origin_ns + 500) // 1000 / 1e6
                if kind == EV_FORK:
                    text = names.get(comm)
                    if text is None:
                        text = self._name(comm)
                    ev: t.Event = t.Fork(ts=ts, pid=pid, ppid=ppid, comm=text, uid=uid)
                    out.append(ev)
                    procs.append(ev)
                    parents[pid] = ppid
                elif kind == EV_EXEC:
                    ev = self._exec(buf, at + 8, length, ts, pid, comm)
                    out.append(ev)
                    procs.append(ev)
                elif kind == EV_EXIT:
                    code, sig = _EXIT.unpack_from(buf, at + 8 + _HEAD.size)
                    out.append(t.Exit(ts=ts, pid=pid, code=None if code < 0 else code,
                                      signal=None if sig < 0 else sig))
                    parents.pop(pid, None)
                elif kind == EV_RENAME:  # a sample carrying only the new name
                    out.append(t.Sample(ts=ts, pid=pid, comm=_cstr(comm)))
                elif kind in NET_KINDS:  # connect, accept, listen (netdecode)
                    net = decode_net(kind, ts, pid, buf, at + 8, length)
                    if net is not None:
                        out.append(net)
            cpos += (length + 8 + 7) & ~7
        _U64.pack_into(self.consumer, 0, cpos)
        if len(parents) > self.parents.limit:
            self.parents.trim()
        return out

    def _stitch(self, off: int, length: int) -> bytes:
        """The record at ``off`` (its 8-byte header and ``length`` bytes) that wraps."""
        data, base, size = self.data, self.page, self.size
        return data[base + off:base + size] + data[base:base + off + 8 + length - size]

    def _exec(self, data: bytes | mmap.mmap, at: int, size: int, ts: float, pid: int,
              comm: bytes) -> t.Exec:
        """An exec record of ``size`` bytes at ``at`` in ``data``: its path, and its
        syscall's argv."""
        name_at = at + _HEAD.size
        end = data.find(b"\0", name_at, name_at + _FILENAME_LEN)
        filename = data[name_at:name_at + _FILENAME_LEN if end < 0 else end].decode(
            "utf-8", "replace")
        argc, flags, length = _ARGV_HEAD.unpack_from(data, name_at + _FILENAME_LEN)
        argv: list[str] | None = None
        if flags & ARGV_KNOWN:
            start = at + _EXEC_ARGV
            raw = data[start:start + max(0, min(length, ARGV_BYTES, size - _EXEC_ARGV))]
            # each argument ends with a NUL; decoded as /proc/PID/cmdline is (procfs), in
            # one pass: a NUL never belongs to a multi-byte sequence, so the split is the same
            argv = raw.decode("utf-8", "replace").split("\0")[:argc]
        ev = t.Exec(ts=ts, pid=pid, comm=self._name(comm), exe=filename, argv=argv,
                    argv_truncated=argv is not None and bool(flags & ARGV_CUT))
        if filename[:1] != "/" or filename.startswith(_FD_PATH):  # exe.needs_resolving
            self.relative.append((ev, self.parents.get(pid)))
        return ev

    @staticmethod
    def resolve(execs: list[tuple[t.Exec, int | None]], proc: str = "/proc") -> None:
        """Complete relative exec paths (see :mod:`.exe`); reads /proc and stats a file."""
        for ev, ppid in execs:
            ev.exe = absolute_exe(ev.exe or "", ev.pid, ppid, proc)

    def take_relative(self) -> list[tuple[t.Exec, int | None]]:
        taken, self.relative = self.relative, []
        return taken


class BpfSource:
    """Loads the program, reads its ring buffer, reports lost events."""

    name = "ebpf"

    def __init__(self, clock: Clock, ring_pages: int = 4096, network: bool = False) -> None:
        if ring_pages & (ring_pages - 1):
            raise ValueError("ring buffer pages must be a power of two")
        problem = capture_problem(effective(), os.geteuid())
        if problem is not None:
            raise BpfUnavailableError(problem)
        find_bcc()
        tracefs = tracefs_dir() or ""  # program_cflags says why when there is none
        self.clock = clock
        self.ring_pages = ring_pages
        try:  # in a child process: this one never maps BCC and LLVM (see .bpfload)
            self.loaded = load_program(program_cflags(ring_pages))
        except LoadError as err:
            raise BpfUnavailableError(str(err)) from None
        self.fd: int = self.loaded.maps["events"]
        self.programs = self.loaded.programs  # name -> program fd (their run statistics)
        try:
            self.reader = RingReader(self.fd, ring_pages)
        except OSError as err:
            self.loaded.close()
            raise BpfUnavailableError(f"the ring buffer cannot be mapped: {err}") from None
        self._cpus = possible_cpus()
        self._lost_seen = 0
        self.identity = Identity()
        self.pump = RingPump(self.reader, clock, self.identity,
                             lambda: trio.lowlevel.wait_readable(self.fd))
        self.net = NetCapture(FdPrograms(self.loaded, tracefs), tracefs)  # when asked: network
        if network:
            try:
                self.net.attach()
            except Exception as err:
                self.close()
                raise BpfUnavailableError(f"network capture did not attach: {err}") from None

    def lost_total(self) -> int:
        """Events the kernel could not deliver since the program was loaded."""
        return sum(read_percpu_u64(self.loaded.maps["lost"], 0, self._cpus))

    def lost_event(self) -> t.Lost | None:
        """A ``lost`` event for drops since the last call, or None."""
        total = self.lost_total()
        new, self._lost_seen = total - self._lost_seen, total
        return t.Lost(ts=round(self.clock.now(), 6), count=new) if new > 0 else None

    def drain(self) -> list[t.Event]:
        """Every record available now, exec paths, cgroups and users completed (on this
        thread)."""
        batch = self.reader.drain(self.clock)
        self.reader.resolve(self.reader.take_relative())
        self.identity.fill(self.reader.procs)
        return batch

    async def run(self, send: trio.MemorySendChannel[list[t.Event]]) -> None:
        """Send batches until cancelled (:class:`~.ringpump.RingPump`: as records come, or
        held in the ring until :meth:`~.ringpump.RingPump.flush`)."""
        await self.pump.run(send)

    def close(self) -> None:
        self.net.detach()
        self.reader.close()
        self.loaded.close()  # the last descriptors: the kernel detaches and frees it all


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
