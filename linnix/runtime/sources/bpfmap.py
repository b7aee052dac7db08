"""Reading a BPF map by its file descriptor, through the ``bpf`` system call alone.

The eBPF program is compiled and loaded in a short-lived child process (see
:mod:`.bcc`), so the daemon never maps BCC and LLVM; what it still reads from
the kernel besides the ring buffer is one per-CPU counter (events lost), and
this module reads it with ``BPF_MAP_LOOKUP_ELEM`` (and :func:`bpf_call` lets the
network capture empty a table by its keys).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform

__all__ = ["bpf_call", "possible_cpus", "read_percpu_u64"]

# __NR_bpf, by machine (the numbers of asm/unistd.h)
_NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "ppc64": 361,
           "s390x": 351, "armv7l": 386, "armv6l": 386, "i686": 357, "i386": 357}
_MAP_LOOKUP_ELEM = 1
POSSIBLE = "/sys/devices/system/cpu/possible"


class _LookupAttr(ctypes.Structure):
    """The part of ``union bpf_attr`` a map lookup reads."""

    _fields_ = [("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32),
                ("key", ctypes.c_uint64), ("value", ctypes.c_uint64),
                ("flags", ctypes.c_uint64)]


def possible_cpus(path: str = POSSIBLE) -> int:
    """How many CPUs the kernel may bring up: the slots of a per-CPU map ("0-3,6" is 7)."""
    with open(path, encoding="ascii") as f:
        text = f.read().strip()
    count = 0
    for part in text.split(","):
        first, _, last = part.partition("-")
        count = max(count, int(last or first) + 1)
    return count


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def read_percpu_u64(fd: int, key: int, cpus: int) -> list[int]:
    """The ``u64`` of every CPU at ``key`` in the per-CPU array map ``fd``."""
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        raise OSError(f"the bpf system call's number on {platform.machine()} is not known")
    values = (ctypes.c_uint64 * cpus)()
    k = ctypes.c_uint32(key)
    attr = _LookupAttr(map_fd=fd, key=ctypes.addressof(k), value=ctypes.addressof(values))
    if _libc.syscall(nr, _MAP_LOOKUP_ELEM, ctypes.byref(attr), ctypes.sizeof(attr)) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return list(values)


def bpf_call(cmd: int, fd: int, key: ctypes.Array[ctypes.c_char] | None,
             value: ctypes.Array[ctypes.c_char] | None) -> bool:
    """One map command (``BPF_MAP_DELETE_ELEM``, ``BPF_MAP_GET_NEXT_KEY``...) on map ``fd``
    with the buffers ``key`` and ``value`` (the next key, for GET_NEXT_KEY); False when the
    key is not there (ENOENT), an OSError for any other failure."""
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        raise OSError(f"the bpf system call's number on {platform.machine()} is not known")
    attr = _LookupAttr(map_fd=fd, key=0 if key is None else ctypes.addressof(key),
                       value=0 if value is None else ctypes.addressof(value))
    if _libc.syscall(nr, cmd, ctypes.byref(attr), ctypes.sizeof(attr)) < 0:
        err = ctypes.get_errno()
        if err == errno.ENOENT:
            return False
        raise OSError(err, os.strerror(err))
    return True
