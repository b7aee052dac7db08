"""Telemetry from /proc: the start-up snapshot, and periodic process and host samples.

Everything here turns what :mod:`linnix.procfs` reads into trace events
(:mod:`linnix.engine.trace`).  :class:`Telemetry` runs the samplers once per
interval on a worker thread (the reads block), reading only what the rules
need.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
from typing import TYPE_CHECKING

import trio

from ...engine import trace as t
from ...names import Need
from ...plan import Plan
from ...procfs import (
    HZ,
    PAGE_KB,
    PROC,
    Clock,
    ProcStat,
    counts_fds_by_size,
    fd_count,
    fd_count_by_size,
    fd_soft_limit,
    list_pids,
    read_cgroup,
    read_cmdline,
    read_exe,
    read_stat,
    read_uid,
    socket_count,
)
from .caps import CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, effective
from .cgroupsamples import CgroupSamples
from .identity import Users
from .pacing import Pacing, Seen, Usage, rounds_between, woken

if TYPE_CHECKING:
    from . import Source

__all__ = ["HostSampler", "ProcSampler", "Telemetry", "snapshot"]

FD_LIMIT_TTL_S = 30.0  # re-read a process's soft fd limit this often
_PSI_FIELDS = frozenset(f for f in t.System.__struct_fields__ if f.startswith("psi_"))


def snapshot(clock: Clock, root: str = PROC, cmdline: bool = True,
             users: Users | None = None) -> list[t.Proc]:
    """A ``proc`` event for every process alive now (the exited are skipped), with its
    cgroup and the name of its uid (from ``users``, else a fresh look at the database)."""
    now = round(clock.now(), 6)
    if users is None:
        users = Users()
    users.check()
    out = []
    for pid in list_pids(root):
        st = read_stat(pid, root)
        if st is None or st.exited:
            continue  # exited (perhaps while we looked)
        uid = read_uid(pid, root)
        out.append(t.Proc(
            ts=max(0.0, now), pid=pid, ppid=st.ppid, comm=st.comm,
            exe=read_exe(pid, root),
            cmdline=read_cmdline(pid, root) if cmdline else None, uid=uid,
            start=round(clock.from_ticks(st.start_ticks), 3),
            cgroup=read_cgroup(pid, root), user=users.name(uid)))
    return out


def lists_every_fd_dir(mask: int | None, root: str = PROC) -> bool:
    """Whether descriptors can be counted by /proc/PID/fd's size: the kernel shows the
    count there, and this process may list every /proc/PID/fd (their owner alone may
    without a capability to override the directory's mode), so the size never counts
    what a listing would be refused.  ``mask``: the effective capabilities (None: unknown)."""
    override = (1 << CAP_DAC_READ_SEARCH) | (1 << CAP_DAC_OVERRIDE)
    return mask is not None and bool(mask & override) and counts_fds_by_size(root)


class ProcSampler:
    """Per-process telemetry: cpu_pct since the previous sample, rss, threads, fds.

    ``max_gap`` (rounds): how long an idle process may go unread (:mod:`.pacing`);
    1 reads every process at every round.  ``woke`` counts the rounds at which the host
    used more than the processes read accounted for, so every process was read.
    """

    def __init__(self, clock: Clock, *, fds: bool = True, root: str = PROC,
                 max_gap: int = 1) -> None:
        self.clock = clock
        self.fds = fds
        self.sockets = False  # count sockets (a rule reads 'sockets'): a readlink per fd
        self.root = root
        self.pacing = Pacing(max_gap)
        self.woke = 0
        self._at: float | None = None  # when the previous round started
        self._fd_count = fd_count_by_size if lists_every_fd_dir(effective(), root) else fd_count

    def sample(self, wake: Collection[int] | None = (),
               host: Usage | None = None, ended: Collection[int] = ()) -> list[t.Sample]:
        """One Sample per process read at this round: those :class:`~.pacing.Pacing` says
        are due (every process in /proc when it is off), ``wake`` handed to it; then every
        other process too if ``host`` (what the host used since the previous round) is
        more than the reads account for (:func:`~.pacing.woken`).  ``ended``: the
        processes whose exit was reported since the previous round."""
        root, pacing = self.root, self.pacing
        since, self._at = self._at, self.clock.now()
        listed = list_pids(root) if pacing.lists(wake) else None
        out: list[t.Sample] = []
        # what the ended processes used until their last reads was counted then; their
        # parents' reads count it again, with the rest, as their children's CPU time
        ticks, kb = self._forget_ended(ended)
        used = self._read(pacing.due(listed, wake), out, since, -ticks, -kb)
        if (pacing.on and host is not None and since is not None
                and woken(host, used, self._at - since) is not None):
            self.woke += 1
            everyone = listed if listed is not None else list_pids(root)  # listed once a round
            self._read(pacing.rest(everyone), out, None)
        return out

    def _forget_ended(self, ended: Collection[int]) -> tuple[int, float]:
        """Forget the processes in ``ended``; the CPU time (clock ticks, its children's
        too) and memory (kB) those that were read had at their last reads."""
        ticks, kb = 0, 0.0
        for pid in ended:
            s = self.pacing.gone(pid)
            if s is not None and s.ticks is not None:
                ticks += s.ticks + s.child_ticks
                kb += s.rss_kb
        return ticks, kb

    def _read(self, pids: list[int], out: list[t.Sample], since: float | None,
              ticks: int = 0, kb: float = 0.0) -> Usage:
        """Read ``pids`` into ``out``; the CPU time and memory they used since their previous
        reads (a process started after ``since`` since its start, one seen first but
        older nothing: what it used before is not this round's), added to ``ticks`` and
        ``kb``.  The CPU time includes that of the children each waited for meanwhile:
        a child that lived less than a round is never read, its parent's read counts it."""
        root, pacing = self.root, self.pacing
        for pid in pids:
            st = read_stat(pid, root)
            if st is None:
                gone = pacing.gone(pid)
                if gone is not None:  # its memory is freed
                    kb -= gone.rss_kb
                continue
            seen = pacing.record(pid, st.start_ticks)
            if st.exited:  # a zombie whose exit was already reported: nothing to sample
                pacing.found(pid, seen, None)
                continue
            rss_kb = float(st.rss_pages * PAGE_KB)
            if seen.ticks is not None:
                ticks += st.cpu_ticks - seen.ticks + st.child_ticks - seen.child_ticks
                kb += rss_kb - seen.rss_kb
            elif since is not None and self.clock.from_ticks(st.start_ticks) >= since - 1 / HZ:
                ticks += st.cpu_ticks + st.child_ticks
                kb += rss_kb
            seen.rss_kb, seen.child_ticks = rss_kb, st.child_ticks
            now = self.clock.now()
            cpu = self._cpu(st, seen, now)
            fds = limit = None
            if self.fds and not st.kernel_thread:
                fds = self._fd_count(pid, root)
                limit = self._limit(pid, seen, now)
            sockets = socket_count(pid, root) if self.sockets and not st.kernel_thread else None
            pacing.found(pid, seen, (st.cpu_ticks, st.rss_pages, st.threads, st.comm, fds, limit,
                                     sockets))
            out.append(t.Sample(ts=round(now, 6), pid=pid, cpu_pct=cpu, rss_kb=rss_kb, fds=fds,
                                fd_limit=limit, threads=st.threads, comm=st.comm,
                                sockets=sockets))
        return Usage(ticks / HZ, kb)

    def _cpu(self, st: ProcStat, seen: Seen, now: float) -> float | None:
        """The CPU share since the previous read (since the start at the first), and
        ``seen`` is now this read."""
        ticks, since = seen.ticks, seen.at
        seen.ticks, seen.at = st.cpu_ticks, now
        if ticks is not None:
            span = now - since
            if span <= 0:
                return None
            return round(100.0 * (st.cpu_ticks - ticks) / HZ / span, 1)
        age = now - self.clock.from_ticks(st.start_ticks)  # first look: average since start
        if age < 0.05:
            return None
        return round(100.0 * st.cpu_ticks / HZ / age, 1)

    def _limit(self, pid: int, seen: Seen, now: float) -> int | None:
        if seen.limit_at is None or now - seen.limit_at > FD_LIMIT_TTL_S:
            seen.limit, seen.limit_at = fd_soft_limit(pid, self.root), now
        return seen.limit


class HostSampler:
    """Host CPU, memory and pressure (PSI avg10)."""

    def __init__(self, clock: Clock, root: str = PROC) -> None:
        self.clock = clock
        self.root = root
        self._cpu: tuple[int, int] | None = None  # (busy, total) jiffies
        self.ncpu = os.cpu_count() or 1
        self._used_kb: float | None = None
        # what the host used since the previous sample: busy CPU time, used memory's change
        self.usage = Usage(None, None)

    def sample(self) -> t.System:
        busy = self._cpu
        fields: dict[str, float | int | None] = {"cpu_pct": self._cpu_pct(), "ncpu": self.ncpu}
        fields.update(self._memory())
        fields.update(self._pressure())
        self.usage = self._usage(busy, fields)
        return t.System(ts=round(self.clock.now(), 6), **fields)  # type: ignore[arg-type]

    def _usage(self, before: tuple[int, int] | None,
               fields: dict[str, float | int | None]) -> Usage:
        """Busy CPU time and used memory's change since the previous sample (None: not
        known), from the previous (busy, total) jiffies ``before`` and this sample's fields."""
        cpu = None
        if fields["cpu_pct"] is not None and before is not None and self._cpu is not None:
            cpu = (self._cpu[0] - before[0]) / HZ
        total, available = fields.get("mem_total_kb"), fields.get("mem_available_kb")
        used = None if total is None or available is None else float(total - available)
        change = None if used is None or self._used_kb is None else used - self._used_kb
        self._used_kb = used
        return Usage(cpu, change)

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


class Telemetry:
    """Per-process and host samples every ``interval`` seconds, only what the plan reads.

    ``idle_max``: the longest an idle process goes unread, in seconds (one interval or
    less: every process at every round).  Which processes are woken at a round (read
    whatever their pace) is asked of :attr:`wake` before it.
    """

    def __init__(self, clock: Clock, plan: Plan, source: Source, interval: float = 1.0,
                 fds: str = "auto", idle_max: float = 0.0) -> None:
        self.clock = clock
        self.source = source
        self.interval = interval
        self.fds_mode = fds
        self.host = HostSampler(clock)
        self.procs = ProcSampler(clock, max_gap=rounds_between(idle_max, interval))
        self.cgroups: CgroupSamples | None = None  # made when a rule reads a cg_* name
        # the pids to read at the next round whatever their pace (None: every process),
        # asked on the trio thread before a round
        self.wake: Callable[[], Collection[int] | None] = lambda: ()
        # the pids whose exit was reported since the last round, asked likewise
        self.ended: Callable[[], Collection[int]] = lambda: ()
        # the cgroup paths of the live processes, read on the trio thread before a round
        self.cgroup_paths: Callable[[], Iterable[str]] = lambda: ()
        self.cgroup_root: str | None = None  # [cgroups] root: every cgroup under it too
        self.configure(plan)
        self.samples = 0
        # each host sample, also handed here on the trio thread (the dashboard's ring)
        self.on_host: Callable[[t.System], None] | None = None
        # awaited before each round takes what to read, and before its batch is sent:
        # what event sources hold is fed first (LiveEngine.settle), so that the round
        # reads the processes those events concern, and follows them
        self.settle: Callable[[], Awaitable[None]] | None = None

    def configure(self, plan: Plan) -> None:
        """Adapt to a (re)loaded plan: sample only what its rules read."""
        self.configure_needs(plan.needs)

    def configure_needs(self, needs: frozenset[Need]) -> None:
        self.per_process = bool(needs & {Need.CPU, Need.RSS, Need.FDS, Need.THREADS,
                                         Need.SOCKETS})
        self.procs.sockets = Need.SOCKETS in needs
        wants_fds = Need.FDS in needs
        self.procs.fds = {"auto": wants_fds, "always": True, "never": False}[self.fds_mode]
        if Need.CGROUP in needs and self.cgroups is None:  # no cost unless a rule reads them
            self.cgroups = CgroupSamples(self.clock)
        elif Need.CGROUP not in needs:
            self.cgroups = None
        self.procs.pacing.forget()  # what is read may have changed: every process again

    def snapshot(self) -> list[t.Proc]:
        return snapshot(self.clock)

    def collect(self, cgroup_paths: Iterable[str] = (), wake: Collection[int] | None = (),
                ended: Collection[int] = ()) -> list[t.Event]:
        """One round of samples (blocking /proc reads: run it in a thread)."""
        batch: list[t.Event] = [self.host.sample()]
        if self.per_process:
            batch.extend(self.procs.sample(wake, self.host.usage, ended))
        cgroups = self.cgroups
        if cgroups is not None:
            batch.extend(cgroups.sample(cgroup_paths, self.cgroup_root))
        lost = self.source.lost_event()
        if lost is not None:
            batch.append(lost)
        self.samples += 1
        return batch

    async def run(self, send: trio.MemorySendChannel[list[t.Event]]) -> None:
        async with send:
            deadline = trio.current_time()
            while True:
                if self.settle is not None:
                    await self.settle()
                paths = list(self.cgroup_paths()) if self.cgroups is not None else []
                wake = self.wake()  # taken each round: what is noted never piles up
                batch = await trio.to_thread.run_sync(self.collect, paths, wake, self.ended())
                if self.on_host is not None and isinstance(batch[0], t.System):
                    self.on_host(batch[0])
                if self.settle is not None:  # the events of the reads' time come first
                    await self.settle()
                await send.send(batch)
                deadline += self.interval
                await trio.sleep_until(max(deadline, trio.current_time()))
