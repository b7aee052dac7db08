"""Where this host's cgroups are, which cg_* names it can serve from where, and the cgroups.

The *primary* hierarchy is the one cgroups are listed and identified in: the v2
hierarchy (``/sys/fs/cgroup`` on a v2-only host, ``/sys/fs/cgroup/unified`` on a
hybrid one), else systemd's v1 tracking hierarchy.  A cgroup is its id (the
inode of its directory there, which is also the kernel's cgroup id) and its path
relative to the mount; a v1 controller's files for it are at the same path under
that controller's mount.  Which name is read from which file: :func:`sources`
and docs/cgroups.md.
"""

from __future__ import annotations

import os
from collections import deque

import attrs

from .mounts import MOUNTINFO, Mount, read_mountinfo

__all__ = ["CG_NAMES", "DEPTH_MAX", "PATH_MAX", "WALK_MAX", "Cgroup", "Hierarchy", "Source",
           "Walk", "check_path", "directory", "discover", "from_mounts", "locate", "sources",
           "walk"]

# Every name a cgroup sample carries, in the order docs and doctor list them.
CG_NAMES = ("cg_procs", "cg_cpu_pct", "cg_mem_mb", "cg_mem_max_mb", "cg_mem_pct", "cg_swap_mb",
            "cg_psi_cpu_some", "cg_psi_mem_some", "cg_psi_mem_full", "cg_psi_io_some",
            "cg_oom_kills")
MEMORY_NAMES = ("cg_mem_mb", "cg_mem_max_mb", "cg_mem_pct", "cg_swap_mb", "cg_oom_kills")
PRESSURE = {"cg_psi_cpu_some": "cpu", "cg_psi_mem_some": "memory", "cg_psi_mem_full": "memory",
            "cg_psi_io_some": "io"}
WALK_MAX = 10_000  # cgroups listed under one root at most
DEPTH_MAX = 32  # levels below that root at most
PATH_MAX = 4096  # bytes, as the kernel's own limit
# Where the v2 hierarchy is mounted by systemd: v2-only first, then hybrid.
_V2_PLACES = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
_SYSTEMD = "name=systemd"


@attrs.frozen
class Cgroup:
    """A cgroup: the inode of its directory in the primary hierarchy, and its path there."""

    id: int
    path: str  # "/" is the root; "/system.slice/nginx.service"


@attrs.frozen
class Hierarchy:
    """The mounts found, and where each group of names comes from ("v2", "v1" or None)."""

    v2: str | None = None  # the v2 mount point
    v1: tuple[tuple[str, str], ...] = ()  # (controller, or name=NAME; its mount point)
    cpu: str | None = None  # cg_cpu_pct: v2 cpu.stat or v1 cpuacct.usage
    memory: str | None = None  # the memory names: v2 memory.* or v1 memory controller
    swap: bool = False  # v1 only: swap accounting is on (memory.memsw.* exist)
    pressure: frozenset[str] = frozenset()  # v2 pressure files at the root: cpu, memory, io

    def v1_mount(self, controller: str) -> str | None:
        return next((point for c, point in self.v1 if c == controller), None)

    @property
    def primary(self) -> str | None:
        """The mount cgroups are listed and identified in."""
        if self.v2 is not None:
            return self.v2
        return self.v1_mount(_SYSTEMD) or next((point for _, point in sorted(self.v1)), None)


def _v2_mount(mounts: list[Mount]) -> str | None:
    found = [m.point for m in mounts if m.version == 2]
    return next((p for p in _V2_PLACES if p in found), found[0] if found else None)


def _v1_mounts(mounts: list[Mount]) -> tuple[tuple[str, str], ...]:
    """Each controller's first mount (a controller is in one hierarchy only)."""
    seen: dict[str, str] = {}
    for m in mounts:
        if m.version != 1:
            continue
        for c in sorted(m.controllers) + ([f"name={m.name}"] if m.name else []):
            seen.setdefault(c, m.point)
    return tuple(sorted(seen.items()))


def _read_words(path: str) -> frozenset[str]:
    try:
        with open(path, "rb") as f:
            return frozenset(f.read(4096).decode("ascii", "replace").split())
    except OSError:
        return frozenset()


def from_mounts(mounts: list[Mount]) -> Hierarchy:
    """The hierarchy these mounts make, its root files probed for what it serves."""
    v2, v1 = _v2_mount(mounts), _v1_mounts(mounts)
    h = Hierarchy(v2, v1)
    controllers = _read_words(os.path.join(v2, "cgroup.controllers")) if v2 else frozenset()
    cpu = "v2" if v2 and os.path.exists(os.path.join(v2, "cpu.stat")) else None
    if cpu is None and h.v1_mount("cpuacct"):
        cpu = "v1"
    memory = "v2" if "memory" in controllers else "v1" if h.v1_mount("memory") else None
    memory_v1 = h.v1_mount("memory")
    swap = memory == "v1" and memory_v1 is not None and os.path.exists(
        os.path.join(memory_v1, "memory.memsw.usage_in_bytes"))
    pressure = frozenset(r for r in ("cpu", "memory", "io")
                         if v2 and os.path.exists(os.path.join(v2, f"{r}.pressure")))
    return attrs.evolve(h, cpu=cpu, memory=memory, swap=swap, pressure=pressure)


def discover(mountinfo: str = MOUNTINFO) -> Hierarchy:
    """This host's hierarchy, from /proc/self/mountinfo."""
    return from_mounts(read_mountinfo(mountinfo))


@attrs.frozen
class Source:
    """Where one name comes from on this host: origin "v2", "v1" or None (no value here)."""

    name: str
    origin: str | None
    files: str  # what is read, for people


_V2_FILES = {"cg_procs": "cgroup.procs", "cg_cpu_pct": "cpu.stat usage_usec",
             "cg_mem_mb": "memory.current", "cg_mem_max_mb": "memory.max",
             "cg_mem_pct": "memory.current / memory.max", "cg_swap_mb": "memory.swap.current",
             "cg_psi_cpu_some": "cpu.pressure some avg10",
             "cg_psi_mem_some": "memory.pressure some avg10",
             "cg_psi_mem_full": "memory.pressure full avg10",
             "cg_psi_io_some": "io.pressure some avg10", "cg_oom_kills": "memory.events oom_kill"}
_V1_FILES = {"cg_procs": "cgroup.procs", "cg_cpu_pct": "cpuacct.usage",
             "cg_mem_mb": "memory.usage_in_bytes", "cg_mem_max_mb": "memory.limit_in_bytes",
             "cg_mem_pct": "memory.usage_in_bytes / memory.limit_in_bytes",
             "cg_swap_mb": "memory.memsw.usage_in_bytes - memory.usage_in_bytes",
             "cg_oom_kills": "memory.oom_control oom_kill"}


def _origin(h: Hierarchy, name: str) -> str | None:
    if name == "cg_procs":
        return "v2" if h.v2 else "v1" if h.primary else None
    if name == "cg_cpu_pct":
        return h.cpu
    if name in PRESSURE:
        return "v2" if PRESSURE[name] in h.pressure else None
    if name == "cg_swap_mb" and h.memory == "v1" and not h.swap:
        return None  # v1 without swap accounting: nothing tells a cgroup's swap
    return h.memory


def sources(h: Hierarchy) -> list[Source]:
    """Every cg_* name and where this host reads it."""
    found = []
    for name in CG_NAMES:
        origin = _origin(h, name)
        files = {"v2": _V2_FILES, "v1": _V1_FILES}.get(origin or "", {}).get(name, "")
        found.append(Source(name, origin, files))
    return found


def check_path(path: str) -> str:
    """``path`` if it is a plain absolute cgroup path; ValueError saying why not."""
    if not path.startswith("/"):
        raise ValueError(f"a cgroup path starts with '/': {path!r}")
    if len(path.encode("utf-8", "surrogateescape")) > PATH_MAX or "\0" in path:
        raise ValueError("not a cgroup path (too long or holds a NUL)")
    parts = path.split("/")[1:]
    if path != "/" and any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"a cgroup path has no empty, '.' or '..' parts: {path!r}")
    return path


def directory(mount: str, path: str) -> str:
    """The directory of the cgroup at ``path`` under ``mount``."""
    return mount if path == "/" else mount + check_path(path)


def locate(h: Hierarchy, path: str) -> Cgroup | None:
    """The cgroup at ``path`` now (its id read), or None when there is none."""
    if h.primary is None:
        return None
    try:
        return Cgroup(os.stat(directory(h.primary, path)).st_ino, path)
    except OSError:
        return None


@attrs.frozen
class Walk:
    """The cgroups found under a root, shallowest first; truncated when a bound was reached."""

    cgroups: list[Cgroup]
    truncated: bool


def walk(h: Hierarchy, under: str = "/", max_count: int = WALK_MAX,
         max_depth: int = DEPTH_MAX) -> Walk:
    """``under`` and the cgroups below it, breadth first, at most ``max_count`` of them and
    ``max_depth`` levels down; a cgroup that vanishes while it is listed is left out."""
    if h.primary is None:
        return Walk([], False)
    top = locate(h, under)
    if top is None:
        return Walk([], False)
    found, queue, truncated = [top], deque([(top.path, 0)]), False
    while queue:
        path, depth = queue.popleft()
        try:
            with os.scandir(directory(h.primary, path)) as entries:
                children = [(e.name, e.inode()) for e in entries
                            if e.is_dir(follow_symlinks=False)]
        except OSError:  # gone (ENOENT, ENODEV) or unreadable: nothing below it to list
            continue
        for name, inode in sorted(children):
            if depth + 1 > max_depth or len(found) >= max_count:
                truncated = True
                break
            child = ("" if path == "/" else path) + "/" + name
            found.append(Cgroup(inode, child))
            queue.append((child, depth + 1))
    return Walk(found, truncated)
