"""Attaching a loaded tracepoint program by its descriptor, without BCC.

The loader's child (:mod:`.bpfload`) compiles the network programs with the
others but attaches none of them: the daemon does, when its rules ask, with
``perf_event_open`` on the tracepoint's id and the ``PERF_EVENT_IOC_SET_BPF``
and ``PERF_EVENT_IOC_ENABLE`` ioctls (what BCC itself does), and detaches a
program by closing that perf event.  :class:`FdPrograms` offers
:class:`~.netcap.NetCapture` the three things it asks of a loaded program.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import platform

from .bpfload import Loaded
from .bpfmap import bpf_call

__all__ = ["FdPrograms", "open_tracepoint"]

# __NR_perf_event_open, by machine (asm/unistd.h)
_NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "ppc64le": 319,
                       "ppc64": 319, "s390x": 331, "armv7l": 364, "armv6l": 364,
                       "i686": 336, "i386": 336}
_PERF_TYPE_TRACEPOINT = 2
_PERF_FLAG_FD_CLOEXEC = 8
_PERF_EVENT_IOC_ENABLE = 0x2400
_PERF_EVENT_IOC_SET_BPF = 0x40042408
_MAP_DELETE_ELEM = 3
_MAP_GET_NEXT_KEY = 4
_CLEAR_MAX = 1 << 16  # keys deleted at most by one clear (the tables hold 4,096)


class _PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` up to ``config2`` (its size tells the kernel which)."""

    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32),
                ("config", ctypes.c_uint64), ("sample_period", ctypes.c_uint64),
                ("sample_type", ctypes.c_uint64), ("read_format", ctypes.c_uint64),
                ("flags", ctypes.c_uint64), ("wakeup_events", ctypes.c_uint32),
                ("bp_type", ctypes.c_uint32), ("config1", ctypes.c_uint64),
                ("config2", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


def open_tracepoint(tracefs: str, tracepoint: str, prog_fd: int) -> int:
    """A perf event on ``tracepoint`` ("syscalls:sys_enter_connect") running the program
    ``prog_fd``, enabled; closing it detaches the program."""
    nr = _NR_PERF_EVENT_OPEN.get(platform.machine())
    if nr is None:
        raise OSError(f"perf_event_open's number on {platform.machine()} is not known")
    category, _, event = tracepoint.partition(":")
    with open(os.path.join(tracefs, "events", category, event, "id"), encoding="ascii") as f:
        tp_id = int(f.read())
    attr = _PerfEventAttr(type=_PERF_TYPE_TRACEPOINT, size=ctypes.sizeof(_PerfEventAttr),
                          config=tp_id, sample_period=1, wakeup_events=1)
    fd = _libc.syscall(nr, ctypes.byref(attr), -1, 0, -1, _PERF_FLAG_FD_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot attach {tracepoint}: {os.strerror(err)}")
    try:
        fcntl.ioctl(fd, _PERF_EVENT_IOC_SET_BPF, prog_fd)
        fcntl.ioctl(fd, _PERF_EVENT_IOC_ENABLE, 0)
    except OSError as err:
        os.close(fd)
        raise OSError(err.errno, f"cannot attach {tracepoint}: {err.strerror}") from None
    return int(fd)


class _Table:
    """A hash map by its descriptor, emptied key by key."""

    def __init__(self, fd: int, key_size: int) -> None:
        self.fd = fd
        self.key_size = key_size

    def clear(self) -> None:
        key = ctypes.create_string_buffer(self.key_size)
        for _ in range(_CLEAR_MAX):
            # the first key each time: the one just deleted has no successor to ask for
            if not bpf_call(_MAP_GET_NEXT_KEY, self.fd, None, key):
                return
            bpf_call(_MAP_DELETE_ELEM, self.fd, key, None)


class FdPrograms:
    """The loaded programs by descriptor, attached and detached one tracepoint at a time."""

    def __init__(self, loaded: Loaded, tracefs: str) -> None:
        self.loaded = loaded
        self.tracefs = tracefs
        self.events: dict[bytes, int] = {}  # tracepoint -> its perf event

    def attach_tracepoint(self, tp: bytes, fn_name: bytes) -> None:
        prog = self.loaded.programs.get(fn_name.decode())
        if prog is None:
            raise OSError(f"the program {fn_name.decode()} was not loaded")
        self.events[tp] = open_tracepoint(self.tracefs, tp.decode(), prog)

    def detach_tracepoint(self, tp: bytes) -> None:
        fd = self.events.pop(tp, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __getitem__(self, name: bytes) -> _Table:
        return _Table(self.loaded.maps[name.decode()], 4)  # netpending: by thread id (u32)
