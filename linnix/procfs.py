"""Reading /proc: plain readers of what the kernel shows of each process, and its clock.

Shared by the live sources and telemetry (:mod:`linnix.runtime.sources`), the
safety guards and executors (:mod:`linnix.actions`) and the demos.  Processes
vanish at any moment: a process that exits while it is being read gives
None, never an error.  Times are seconds on the daemon's :class:`Clock`: boot
time minus the boot time at which the daemon started, the time base of
eBPF timestamps too.
"""

from __future__ import annotations

import os
import time

import attrs

from .cgroups.paths import cgroup_of
from .names import TEXT_MAX

__all__ = [
    "CGROUP_READ_MAX", "CMDLINE_READ_MAX", "HZ", "PAGE_KB", "PROC", "START_TOLERANCE_S", "Clock",
    "STAT_READ_MAX", "ProcStat", "counts_fds_by_size", "fd_count", "fd_count_by_size",
    "fd_soft_limit", "list_pids", "read_argv", "read_cgroup",
    "read_cmdline", "read_cmdline_of", "read_exe", "read_stat", "read_uid",
]

PROC = "/proc"
HZ = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
# A command line may be megabytes long; rules see TEXT_MAX characters of it.
CMDLINE_READ_MAX = 4 * TEXT_MAX  # bytes: TEXT_MAX characters of UTF-8 at most
# /proc/PID/cgroup: a line per hierarchy (a dozen on a hybrid host), each path at most
# a page; the unified hierarchy's 0:: line comes last.
CGROUP_READ_MAX = 64 * 1024
# /proc/PID/stat: 52 numbers after a command name of at most 64 bytes
STAT_READ_MAX = 16 * 1024
# How far a start time on the daemon's clock (an event's time, maybe clamped) may be from
# the one /proc shows (in clock ticks) for both to be the same process.
START_TOLERANCE_S = 0.5


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
    child_ticks: int = 0  # cutime + cstime: of the children it has waited for

    @property
    def exited(self) -> bool:
        """A zombie (or dying) process: it has ended, only its entry remains."""
        return self.state in ("Z", "X")


def read_stat(pid: int, root: str = PROC) -> ProcStat | None:
    """Parse /proc/PID/stat; None if the process is gone."""
    try:  # unbuffered, one read: the sampler reads this for every process it samples
        fd = os.open(f"{root}/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    try:
        data = os.read(fd, STAT_READ_MAX)
    except (ProcessLookupError, FileNotFoundError):
        return None
    finally:
        os.close(fd)
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
            child_ticks=int(fields[13]) + int(fields[14]),
        )
    except (IndexError, ValueError):
        return None


def list_pids(root: str = PROC) -> list[int]:
    return sorted(int(name) for name in os.listdir(root) if name.isdigit())


def read_exe(pid: int, root: str = PROC) -> str | None:
    """The path of the executable of ``pid``."""
    try:
        return os.readlink(f"{root}/{pid}/exe")
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


def read_cmdline(pid: int, root: str = PROC) -> str | None:
    argv = read_argv(pid, root)
    return " ".join(argv) if argv else None


def read_cmdline_of(pid: int, start: float, clock: Clock, root: str = PROC) -> str | None:
    """The command line of ``pid`` if it is still the process that started at ``start``
    (seconds on ``clock``), cut to :data:`~linnix.names.TEXT_MAX` characters; else None.

    The start time is read before and after the arguments: a pid reused in
    between gives None, never another process's command line.
    """
    before = read_stat(pid, root)
    if before is None or before.exited:
        return None
    if abs(clock.from_ticks(before.start_ticks) - start) > START_TOLERANCE_S:
        return None
    argv = read_argv(pid, root)
    after = read_stat(pid, root)
    if not argv or after is None or after.start_ticks != before.start_ticks:
        return None
    return " ".join(argv)[:TEXT_MAX]


def read_cgroup(pid: int, root: str = PROC) -> str | None:
    """The cgroup v2 path of ``pid`` (cut to :data:`~linnix.names.TEXT_MAX`), or None.

    None when the process is gone, or has no v2 line (a v1-only host) within
    the first :data:`CGROUP_READ_MAX` bytes.
    """
    try:
        with open(f"{root}/{pid}/cgroup", "rb") as f:
            raw = f.read(CGROUP_READ_MAX)
    except OSError:
        return None
    if len(raw) == CGROUP_READ_MAX:  # the last line may be cut short: never a wrong path
        raw = raw[:raw.rfind(b"\n") + 1]
    path = cgroup_of(raw.decode("utf-8", "replace"))
    return None if path is None else path[:TEXT_MAX]


def read_uid(pid: int, root: str = PROC) -> int | None:
    try:
        return os.stat(f"{root}/{pid}").st_uid
    except OSError:
        return None


def fd_count(pid: int, root: str = PROC) -> int | None:
    try:
        return len(os.listdir(f"{root}/{pid}/fd"))
    except OSError:
        return None


def socket_count(pid: int, root: str = PROC) -> int | None:
    """Open sockets of ``pid``: links in /proc/PID/fd that read ``socket:[INODE]``.

    A descriptor closed between the listing and its link being read is not counted.
    """
    path = f"{root}/{pid}/fd"
    try:
        names = os.listdir(path)
    except OSError:
        return None
    count = 0
    for name in names:
        try:
            if os.readlink(f"{path}/{name}").startswith("socket:"):
                count += 1
        except OSError:  # closed meanwhile
            continue
    return count


def fd_count_by_size(pid: int, root: str = PROC) -> int | None:
    """:func:`fd_count` in one ``stat``: since Linux 6.2 the size of /proc/PID/fd is the
    count.  It answers where listing would be refused, so only a reader allowed to list
    every process's descriptors may use it (see :func:`counts_fds_by_size`)."""
    try:
        return os.stat(f"{root}/{pid}/fd").st_size
    except OSError:
        return None


def counts_fds_by_size(root: str = PROC) -> bool:
    """Whether this kernel's /proc shows the descriptor count as /proc/PID/fd's size."""
    if root != PROC:
        return False
    try:
        return os.stat(f"{root}/self/fd").st_size > 0  # this process holds descriptors
    except OSError:
        return False


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
