"""Sampling cgroups: the cg_* values of each, read from its files in one pass.

:class:`Sampler` is synchronous (the runtime calls it in a thread).  Between
rounds it keeps each sampled cgroup's files open (:mod:`.handles`: a round is
then one ``pread`` per file) and its last CPU usage, to turn ``cpu.stat``'s
counter into ``cg_cpu_pct`` (percent of one CPU between two samples); both
are dropped for a cgroup not sampled in a round.  A name whose file is
missing or unreadable has no value (None), never 0.  A cgroup that vanishes
while it is read, or whose directory is no longer the one its id names
(removed and created again at the same path), is left out of the round.
``cgroup.procs`` is read last, so a cgroup gone at any point before is
noticed there."""

from __future__ import annotations

import resource
from collections.abc import Iterable

import attrs

from .files import GoneError, keyed, pressure
from .handles import Handles, Want
from .hierarchy import Cgroup, Hierarchy

__all__ = ["FD_WANTED", "UNLIMITED_V1", "CgroupSample", "Sampler", "raise_fd_limit"]

_MIB = 1024.0 * 1024.0
# v1 shows "no limit" as the largest page-aligned long (9223372036854771712 with 4 KiB
# pages, less with larger pages); no real limit comes near 2^62 bytes.
UNLIMITED_V1 = 1 << 62


@attrs.frozen
class CgroupSample:
    """One cgroup's values at one time; None where a value was not measured."""

    id: int
    path: str
    cg_procs: int | None = None
    cg_cpu_pct: float | None = None
    cg_mem_mb: float | None = None
    cg_mem_max_mb: float | None = None
    cg_mem_pct: float | None = None
    cg_swap_mb: float | None = None
    cg_psi_cpu_some: float | None = None
    cg_psi_mem_some: float | None = None
    cg_psi_mem_full: float | None = None
    cg_psi_io_some: float | None = None
    cg_oom_kills: int | None = None

    def values(self) -> dict[str, float | int | None]:
        """The cg_* names and their values."""
        return {k: v for k, v in attrs.asdict(self).items() if k.startswith("cg_")}


@attrs.define
class _Memory:
    current: int | None = None  # bytes
    limit: int | None = None  # bytes; None when there is none
    swap: int | None = None  # bytes
    oom_kills: int | None = None


def _mib(value: int | None) -> float | None:
    return None if value is None else value / _MIB


def _number(data: bytes | None) -> int | None:
    value = data.strip() if data is not None else b""
    return int(value) if value.isdigit() else None


_V2_MEMORY = ("memory.current", "memory.max", "memory.swap.current", "memory.events")
_V1_MEMORY = ("memory.usage_in_bytes", "memory.limit_in_bytes", "memory.oom_control",
              "memory.memsw.usage_in_bytes")


def _v2_memory(data: list[bytes | None]) -> _Memory:
    current, limit, swap, events = data
    return _Memory(
        current=_number(current),
        limit=None if limit is None or limit.strip() == b"max" else _number(limit),
        swap=_number(swap), oom_kills=keyed(events, b"oom_kill"))


def _v1_memory(data: list[bytes | None]) -> _Memory:
    """The v1 memory controller's files at the same path (none when it has no such cgroup:
    systemd mirrors its units there, not everyone does)."""
    usage, limit, total = _number(data[0]), _number(data[1]), _number(data[3])
    return _Memory(
        current=usage,
        limit=None if limit is None or limit >= UNLIMITED_V1 else limit,
        swap=None if total is None or usage is None else max(total - usage, 0),
        oom_kills=keyed(data[2], b"oom_kill"))


@attrs.frozen
class _Layout:
    """Which files a round reads, and where each group sits in the flat list."""

    want: Want
    cpu: tuple[int, str] | None  # (position, "v2" | "v1")
    pressure: tuple[int, int, int]  # positions of cpu, memory, io pressure; -1: not read
    memory: tuple[int, int, str] | None  # (first position, how many files, "v2" | "v1")
    procs: int


def _layout(h: Hierarchy) -> _Layout:
    """The directories and files to read on this host, in one flat order."""
    assert h.primary is not None
    names: list[str] = []
    cpu = memory = None
    if h.cpu == "v2":
        cpu = (len(names), "v2")
        names.append("cpu.stat")
    pressure = []
    for resource_name in ("cpu", "memory", "io"):
        pressure.append(len(names) if resource_name in h.pressure else -1)
        if resource_name in h.pressure:
            names.append(f"{resource_name}.pressure")
    if h.memory == "v2":
        memory = (len(names), len(_V2_MEMORY), "v2")
        names += _V2_MEMORY
    procs = len(names)
    names.append("cgroup.procs")
    want: list[tuple[str, tuple[str, ...]]] = [(h.primary, tuple(names))]
    count = len(names)
    if h.memory == "v1" and (mount := h.v1_mount("memory")):
        v1 = _V1_MEMORY if h.swap else _V1_MEMORY[:3]  # memsw: only with swap accounting
        memory = (count, len(v1), "v1")
        want.append((mount, v1))
        count += len(v1)
    if h.cpu == "v1" and (mount := h.v1_mount("cpuacct")):
        cpu = (count, "v1")
        want.append((mount, ("cpuacct.usage",)))
    p0, p1, p2 = pressure
    return _Layout(tuple(want), cpu, (p0, p1, p2), memory, procs)


def _fd_budget() -> int:
    """Half the descriptors this process may open: the rest is the daemon's (about 11 are
    kept per cgroup on a hybrid host, so a daemon sampling 500 cgroups needs a soft
    RLIMIT_NOFILE of 11,000 or more to keep them all open)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(0, (soft if soft != resource.RLIM_INFINITY else 1 << 20) // 2)


FD_WANTED = 65536  # what raise_fd_limit asks for: the unit's LimitNOFILE


def raise_fd_limit(want: int = FD_WANTED) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``want`` (never past the hard limit, never
    lower); the soft limit now.  A shell's 1,024 keeps the files of only some 46 cgroups
    open, and every other cgroup's files are opened again at each round."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return soft
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError):  # refused: the budget stays what it was
            return soft
        return target
    return soft


class Sampler:
    """Samples cgroups of one hierarchy, round after round, their files kept open between
    rounds up to ``max_open`` descriptors (beyond that, opened and closed each round)."""

    def __init__(self, hierarchy: Hierarchy, max_open: int | None = None) -> None:
        self.h = hierarchy
        self.max_open = _fd_budget() if max_open is None else max_open
        self._layout = _layout(hierarchy) if hierarchy.primary is not None else None
        self._open: dict[int, Handles] = {}
        self._last: dict[int, tuple[int, float]] = {}  # id: (CPU usage µs, when)

    def sample(self, cgroups: Iterable[Cgroup], now: float) -> list[CgroupSample]:
        """A sample of each cgroup still there, in the order given; ``now`` is seconds on
        any monotonic clock, the same one each round."""
        layout = self._layout
        if layout is None:
            return []
        last, self._last = self._last, {}
        kept, self._open = self._open, {}
        held = 0
        found = []
        try:
            for cg in cgroups:
                handles = kept.pop(cg.id, None)
                try:
                    if handles is None or handles.cg != cg:  # new (or its path changed)
                        if handles is not None:
                            handles.close()
                            handles = None
                        handles = Handles(cg, layout.want)
                    else:
                        handles.refresh()
                    data = handles.read_all(layout.procs)  # procs last: GoneError if gone
                except GoneError:
                    if handles is not None:
                        handles.close()
                    continue
                found.append(self._sample(cg, data, now, last.get(cg.id)))
                if cg.id in self._open or held + handles.held > self.max_open:
                    handles.close()  # over the budget (or sampled twice): not kept
                else:
                    self._open[cg.id] = handles
                    held += handles.held
        finally:
            for handles in kept.values():  # not sampled this round: forgotten
                handles.close()
        return found

    def close(self) -> None:
        """Close every file kept open."""
        for handles in self._open.values():
            handles.close()
        self._open.clear()

    def _sample(self, cg: Cgroup, data: list[bytes | None], now: float,
                before: tuple[int, float] | None) -> CgroupSample:
        layout = self._layout
        assert layout is not None
        usec = None
        if layout.cpu is not None and layout.cpu[1] == "v2":
            usec = keyed(data[layout.cpu[0]], b"usage_usec")
        elif layout.cpu is not None:
            ns = _number(data[layout.cpu[0]])
            usec = None if ns is None else ns // 1000
        if layout.memory is None:
            memory = _Memory()
        else:
            at, count, origin = layout.memory
            mine = data[at:at + count] + [None] * (4 - count)  # memsw absent: no swap value
            memory = _v2_memory(mine) if origin == "v2" else _v1_memory(mine)
        procs = data[layout.procs]
        if usec is not None:
            self._last[cg.id] = (usec, now)
        i_cpu, i_mem, i_io = layout.pressure
        p_cpu = data[i_cpu] if i_cpu >= 0 else None
        p_mem = data[i_mem] if i_mem >= 0 else None
        p_io = data[i_io] if i_io >= 0 else None
        return CgroupSample(
            cg.id, cg.path, cg_procs=None if procs is None else procs.count(b"\n"),
            cg_cpu_pct=_cpu_pct(before, usec, now),
            cg_mem_mb=_mib(memory.current), cg_mem_max_mb=_mib(memory.limit),
            cg_mem_pct=_percent(memory.current, memory.limit), cg_swap_mb=_mib(memory.swap),
            cg_psi_cpu_some=pressure(p_cpu, b"some"), cg_psi_mem_some=pressure(p_mem, b"some"),
            cg_psi_mem_full=pressure(p_mem, b"full"), cg_psi_io_some=pressure(p_io, b"some"),
            cg_oom_kills=memory.oom_kills)


def _cpu_pct(before: tuple[int, float] | None, usec: int | None, now: float) -> float | None:
    """Percent of one CPU used between the last sample and this one."""
    if before is None or usec is None:
        return None
    used, elapsed = usec - before[0], now - before[1]
    if used < 0 or elapsed <= 0:
        return None
    return used / 1e6 / elapsed * 100.0


def _percent(current: int | None, limit: int | None) -> float | None:
    if current is None or limit is None or limit <= 0:
        return None
    return current / limit * 100.0
