"""Reading /proc: the start-up snapshot, per-process and host telemetry.

Everything here is plain, synchronous file reading that turns what the kernel
exposes into trace events (:mod:`linnix.engine.trace`).  Processes vanish at any
moment; a process that exits while it is being read is skipped, never an
error.  Times are seconds on the daemon's clock (:class:`Clock`): boot time
minus the boot time at which the daemon started.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator

import attrs

from ...engine import trace as t
from ...names import TEXT_MAX

__all__ = [
    "Clock", "HostSampler", "ProcSampler", "ProcStat", "list_pids", "read_argv", "read_stat",
    "snapshot",
]

PROC = "/proc"
HZ = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
# A command line may be megabytes long; rules see TEXT_MAX characters of it.
CMDLINE_READ_MAX = 4 * TEXT_MAX  # bytes: TEXT_MAX characters of UTF-8 at most
FD_LIMIT_TTL_S = 30.0  # re-read a process's soft fd limit this often
_PSI_FIELDS = frozenset(f for f in t.System.__struct_fields__ if f.startswith("psi_"))


class Clock:
    """Seconds since the daemon started, on the boot-time clock the kernel uses."""

    def __init__(self, origin: float | None = None) -> None:
        self.origin = time.clock_gettime(time.CLOCK_BOOTTIME) if origin is None else origin

    def now(self) -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME) - self.origin

    def from_ticks(self, ticks: int) -> float:
        """A /proc start time (clock ticks since boot) on this clock."""
        return ticks / HZ - self.origin


@attrs.frozen
class ProcStat:
    """The fields of /proc/PID/stat that linnix uses."""

    pid: int
    comm: str
    ppid: int
    cpu_ticks: int  # utime + stime
    threads: int
    start_ticks: int
    rss_pages: int
    kernel_thread: bool
    state: str = "R"  # R S D ... ; Z and X have exited already
    pgrp: int = 0  # process group

    @property
    def exited(self) -> bool:
        """A zombie (or dying) process: it has ended, only its entry remains."""
        return self.state in ("Z", "X")


def read_stat(pid: int, root: str = PROC) -> ProcStat | None:
    """Parse /proc/PID/stat; None if the process is gone."""
    try:
        with open(f"{root}/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may contain spaces and parentheses: it ends at the last ')'
    open_at, close_at = data.find(b"("), data.rfind(b")")
    if open_at < 0 or close_at < 0:
        return None
    fields = data[close_at + 2 :].split()
    try:
        flags = int(fields[6])
        return ProcStat(
            pid=pid,
            comm=data[open_at + 1 : close_at].decode("utf-8", "replace"),
            ppid=int(fields[1]),
            cpu_ticks=int(fields[11]) + int(fields[12]),
            threads=int(fields[17]),
            start_ticks=int(fields[19]),
            rss_pages=int(fields[21]),
            kernel_thread=bool(flags & 0x00200000),  # PF_KTHREAD
            state=fields[0].decode("ascii", "replace"),
            pgrp=int(fields[2]),
        )
    except (IndexError, ValueError):
        return None


def list_pids(root: str = PROC) -> list[int]:
    return sorted(int(name) for name in os.listdir(root) if name.isdigit())


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def read_argv(pid: int, root: str = PROC) -> list[str] | None:
    """The arguments of ``pid`` (at most :data:`CMDLINE_READ_MAX` bytes of them)."""
    try:
        with open(f"{root}/{pid}/cmdline", "rb") as f:
            raw = f.read(CMDLINE_READ_MAX).rstrip(b"\0")
    except OSError:
        return None
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0")] if raw else None


def _cmdline(pid: int, root: str = PROC) -> str | None:
    argv = read_argv(pid, root)
    return " ".join(argv) if argv else None


def _uid(pid: int, root: str = PROC) -> int | None:
    try:
        return os.stat(f"{root}/{pid}").st_uid
    except OSError:
        return None


def snapshot(clock: Clock, root: str = PROC, cmdline: bool = True) -> list[t.Proc]:
    """A ``proc`` event for every process alive now (the exited are skipped)."""
    now = round(clock.now(), 6)
    out = []
    for pid in list_pids(root):
        st = read_stat(pid, root)
        if st is None or st.exited:
            continue  # exited (perhaps while we looked)
        out.append(t.Proc(
            ts=max(0.0, now), pid=pid, ppid=st.ppid, comm=st.comm,
            exe=_readlink(f"{root}/{pid}/exe"),
            cmdline=_cmdline(pid, root) if cmdline else None, uid=_uid(pid, root),
            start=round(clock.from_ticks(st.start_ticks), 3)))
    return out


def fd_count(pid: int, root: str = PROC) -> int | None:
    try:
        return len(os.listdir(f"{root}/{pid}/fd"))
    except OSError:
        return None


def fd_soft_limit(pid: int, root: str = PROC) -> int | None:
    try:
        with open(f"{root}/{pid}/limits", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Max open files"):
                    soft = line[26:].split()[0]
                    return None if soft == "unlimited" else int(soft)
    except (OSError, ValueError, IndexError):
        return None
    return None


class ProcSampler:
    """Per-process telemetry: cpu_pct since the previous sample, rss, threads, fds."""

    def __init__(self, clock: Clock, *, fds: bool = True, root: str = PROC) -> None:
        self.clock = clock
        self.fds = fds
        self.root = root
        self._prev: dict[int, tuple[int, int, float]] = {}  # pid -> (start, cpu ticks, t)
        self._limits: dict[tuple[int, int], tuple[int | None, float]] = {}

    def sample(self, pids: Iterable[int] | None = None) -> list[t.Sample]:
        """One Sample per readable process (all of /proc when ``pids`` is None)."""
        root = self.root
        todo = list_pids(root) if pids is None else pids
        out: list[t.Sample] = []
        seen: dict[int, tuple[int, int, float]] = {}
        for pid in todo:
            st = read_stat(pid, root)
            if st is None or st.exited:
                continue  # gone, or a zombie whose exit was already reported
            now = self.clock.now()
            cpu = self._cpu(st, now)
            seen[pid] = (st.start_ticks, st.cpu_ticks, now)
            fds = limit = None
            if self.fds and not st.kernel_thread:
                fds = fd_count(pid, root)
                limit = self._limit(pid, st.start_ticks, now)
            out.append(t.Sample(ts=round(now, 6), pid=pid, cpu_pct=cpu,
                                rss_kb=float(st.rss_pages * PAGE_KB), fds=fds, fd_limit=limit,
                                threads=st.threads, comm=st.comm))
        if pids is None:  # a full round: forget what belongs to processes gone since
            self._prev = seen
            live = {(pid, start) for pid, (start, _, _) in seen.items()}
            self._limits = {k: v for k, v in self._limits.items() if k in live}
        else:
            self._prev = {**self._prev, **seen}
        return out

    def _cpu(self, st: ProcStat, now: float) -> float | None:
        prev = self._prev.get(st.pid)
        if prev is not None and prev[0] == st.start_ticks:
            span = now - prev[2]
            if span <= 0:
                return None
            return round(100.0 * (st.cpu_ticks - prev[1]) / HZ / span, 1)
        age = now - self.clock.from_ticks(st.start_ticks)  # first look: average since start
        if age < 0.05:
            return None
        return round(100.0 * st.cpu_ticks / HZ / age, 1)

    def _limit(self, pid: int, start: int, now: float) -> int | None:
        key = (pid, start)
        cached = self._limits.get(key)
        if cached is None or now - cached[1] > FD_LIMIT_TTL_S:
            cached = (fd_soft_limit(pid, self.root), now)
            self._limits[key] = cached
        return cached[0]


class HostSampler:
    """Host CPU, memory and pressure (PSI avg10)."""

    def __init__(self, clock: Clock, root: str = PROC) -> None:
        self.clock = clock
        self.root = root
        self._cpu: tuple[int, int] | None = None  # (busy, total) jiffies
        self.ncpu = os.cpu_count() or 1

    def sample(self) -> t.System:
        fields: dict[str, float | int | None] = {"cpu_pct": self._cpu_pct(), "ncpu": self.ncpu}
        fields.update(self._memory())
        fields.update(self._pressure())
        return t.System(ts=round(self.clock.now(), 6), **fields)  # type: ignore[arg-type]

    def _cpu_pct(self) -> float | None:
        try:
            with open(f"{self.root}/stat", "rb") as f:
                line = f.readline()
        except OSError:
            return None
        values = [int(x) for x in line.split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        total = sum(values[:8])
        busy = total - idle
        prev, self._cpu = self._cpu, (busy, total)
        if prev is None or total <= prev[1]:
            return None
        return round(100.0 * (busy - prev[0]) / (total - prev[1]), 1)

    def _memory(self) -> Iterator[tuple[str, float]]:
        try:
            with open(f"{self.root}/meminfo", "rb") as f:
                for line in f:
                    if line.startswith(b"MemTotal:"):
                        yield "mem_total_kb", float(line.split()[1])
                    elif line.startswith(b"MemAvailable:"):
                        yield "mem_available_kb", float(line.split()[1])
                        return
        except (OSError, ValueError, IndexError):
            return

    def _pressure(self) -> Iterator[tuple[str, float]]:
        for resource, short in (("cpu", "cpu"), ("memory", "mem"), ("io", "io")):
            try:
                with open(f"{self.root}/pressure/{resource}", "rb") as f:
                    for line in f:
                        kind, _, rest = line.partition(b" ")
                        avg10 = rest.split(b" ", 1)[0]
                        name = f"psi_{short}_{kind.decode()}"
                        if avg10.startswith(b"avg10=") and name in _PSI_FIELDS:
                            yield name, float(avg10[6:])
            except (OSError, ValueError):
                continue
