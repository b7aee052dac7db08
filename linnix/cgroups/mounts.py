"""The cgroup mounts of this host, from /proc/self/mountinfo.

mountinfo is written by the kernel, but mount points are paths (octal-escaped
by the kernel: ``\\040`` for a space) and a host may have thousands of mounts:
the file is read up to :data:`MOUNTINFO_MAX` bytes, split on whitespace only,
and a line that does not have the expected shape is skipped, never an error.
"""

from __future__ import annotations

import attrs

__all__ = ["MOUNTINFO", "MOUNTINFO_MAX", "V1_CONTROLLERS", "Mount", "parse_mountinfo",
           "read_mountinfo"]

MOUNTINFO = "/proc/self/mountinfo"
MOUNTINFO_MAX = 8 * 1024 * 1024  # bytes; far more than a host with 10,000 mounts writes
# The controllers a v1 hierarchy can carry; any other super option (rw, nsdelegate,
# clone_children, release_agent=...) is not a controller.
V1_CONTROLLERS = frozenset({
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "misc",
    "net_cls", "net_prio", "perf_event", "pids", "rdma",
})


@attrs.frozen
class Mount:
    """One cgroup mount: where, which version, what it carries."""

    point: str  # where it is mounted
    root: str  # the cgroup of the hierarchy mounted there ("/" unless in a cgroup namespace)
    version: int  # 1 or 2
    controllers: frozenset[str] = frozenset()  # v1: its controllers; v2: empty here
    name: str | None = None  # v1: the name= option (systemd's tracking hierarchy)


def _unescape(field: str) -> str:
    """The kernel's octal escapes (space, tab, newline, backslash) undone."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        chunk = field[i + 1:i + 4]
        if field[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _parse_line(line: str) -> Mount | None:
    fields = line.split()
    try:
        dash = fields.index("-", 6)  # optional fields end at a lone "-"
    except ValueError:
        return None
    if len(fields) < dash + 4:
        return None
    fstype, options = fields[dash + 1], fields[dash + 3].split(",")
    root, point = _unescape(fields[3]), _unescape(fields[4])
    if fstype == "cgroup2":
        return Mount(point, root, 2)
    if fstype != "cgroup":
        return None
    names = [o[5:] for o in options if o.startswith("name=")]
    return Mount(point, root, 1, frozenset(o for o in options if o in V1_CONTROLLERS),
                 names[0] if names else None)


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup mounts in mountinfo's text, in its order."""
    return [m for m in map(_parse_line, text.splitlines()) if m is not None]


def read_mountinfo(path: str = MOUNTINFO) -> list[Mount]:
    """This process's cgroup mounts; none when mountinfo cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read(MOUNTINFO_MAX)
    except OSError:
        return []
    return parse_mountinfo(data.decode("utf-8", "replace"))
