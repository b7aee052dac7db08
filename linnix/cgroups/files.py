"""Small readers of cgroup files: bytes, no Path or text layer (the sampler's hot loop).

Cgroups vanish at any moment.  A file that does not exist (ENOENT) may simply
belong to a controller not enabled there, but a *core* file (one every cgroup
has, such as ``cgroup.procs``) missing, or any file removed after it was
opened (ENODEV, from kernfs), means the cgroup is gone: :class:`GoneError`."""

from __future__ import annotations

import errno
import os

__all__ = ["CHUNK", "GONE", "READ_MAX", "GoneError", "keyed", "open_dir", "pressure", "read_ints"]

READ_MAX = 4096  # bytes read of a stat, pressure or value file (they are far smaller)
CHUNK = 65536  # bytes per read of cgroup.procs, whose size is bounded only by pid_max
GONE = frozenset({errno.ENOENT, errno.ENODEV})  # errors of a core file once the cgroup is gone
_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # readable: it may be listed


class GoneError(Exception):
    """The cgroup was removed while it was being read."""


def open_dir(path: str, dir_fd: int | None = None) -> int | None:
    """A descriptor of the directory (relative to ``dir_fd`` if given), or None when it does
    not exist or cannot be opened."""
    try:
        return os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None


def read_ints(name: str, dir_fd: int, limit: int) -> list[int] | None:
    """At most ``limit`` numbers of a core list file, one a line (cgroup.procs's pids)."""
    try:
        fd = os.open(name, _FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno in GONE:
            raise GoneError from None
        return None  # unreadable: nothing known
    found: list[int] = []
    rest = b""
    try:
        while len(found) < limit and (chunk := os.read(fd, CHUNK)):
            *lines, rest = (rest + chunk).split(b"\n")
            found += (int(x) for x in lines if x.isdigit())
    except OSError as err:
        if err.errno in GONE:
            raise GoneError from None
        return None
    finally:
        os.close(fd)
    return found[:limit]


def keyed(data: bytes | None, key: bytes) -> int | None:
    """The integer after ``key`` in a "key value" file (cpu.stat, memory.events)."""
    if data is None:
        return None
    at = data.find(key + b" ")
    while at > 0 and data[at - 1:at] != b"\n":  # only at the start of a line
        at = data.find(key + b" ", at + 1)
    if at < 0:
        return None
    end = data.find(b"\n", at)
    value = data[at + len(key) + 1:end if end >= 0 else len(data)]
    return int(value) if value.isdigit() else None


def pressure(data: bytes | None, line: bytes) -> float | None:
    """avg10 of the ``some`` or ``full`` line of a pressure file."""
    if data is None:
        return None
    tag = line + b" avg10="
    at = data.find(tag)
    if at < 0 or (at > 0 and data[at - 1] != 0x0A):  # only at the start of a line
        return None
    start = at + len(tag)
    end = data.find(b" ", start)
    try:
        return float(data[start:end if end >= 0 else len(data)])
    except ValueError:
        return None
