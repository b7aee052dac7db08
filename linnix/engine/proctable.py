"""The process table: tree, identities, metrics and what changed since the last tick.

Synchronous and free of I/O: events go in through :meth:`ProcTable.apply`,
the evaluator reads :class:`Proc` and :class:`~.host.Host` records and the
change sets.  Identity is ``(pid, start)``: a fork of a pid that is still in the
table ends the old process first (its exit was lost), so a reused pid is
always a new :class:`Proc` object and a new rule instance.

Subtree aggregates are kept exact and incremental, in integers
(milli-percent, KiB), so the sums never drift and do not depend on the order
of operations.  A change is noted on the process where it happens and
:meth:`ProcTable.fold` hands every noted change up the tree at once
(:mod:`linnix.engine.subtree`: O(processes on the changed chains), not
O(depth) per change); the core folds before every tick and after every batch,
:meth:`ProcTable.apply` after every event.  None of this runs when no rule
reads a subtree metric.

What is noted stays correct while the tree changes before a fold: the totals
a process hands up are the folded ones (``_sub_*``), and changes noted inside
a subtree that moves travel up its new ancestors at the fold, where they have
never been counted; the old ancestors get the folded totals taken away.  A
fork counts for the ancestors it had when it happened, so noted forks are
folded before a process with children leaves the tree (a leaf hands its own
to its parent).  Rules with a ``boundary`` read totals kept the same way but
stopped at walls (:mod:`linnix.engine.walls`, ``Proc.bounded``).

The records themselves, :class:`Proc` and :class:`Host`, are in
:mod:`linnix.engine.records` (and importable from here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from ..names import TEXT_MAX
from . import trace as t
from .cgtable import CgTable
from .choose import top
from .host import Host
from .net import Net
from .records import NO_TOTALS, Proc
from .subtree import (
    add_forks,
    add_totals,
    exact_expiry,
    fork_counts,
    merge_forks,
    merge_totals,
    upward,
)
from .walls import Walls, top_down
from .windows import RateWindow

__all__ = ["Host", "Proc", "ProcTable", "SHORT_JOB_S"]

SHORT_JOB_S = 1.0  # a process that exits sooner than this after it started is a short job
_MB = 1024.0


class ProcTable:
    """Live processes by pid, the host record, and the changes since the last tick."""

    def __init__(self, *, subtree: bool = True, subtree_forks: bool = False,
                 subtree_connects: bool = False,
                 sums: frozenset[str] = frozenset({"cpu", "rss", "fds"})) -> None:
        self.procs: dict[int, Proc] = {}
        self.host = Host()
        self.subtree = subtree
        self.subtree_forks = subtree_forks and subtree
        # which values are summed over subtrees (process counts always are)
        self.sum_cpu = subtree and "cpu" in sums
        self.sum_rss = subtree and "rss" in sums
        self.sum_fds = subtree and "fds" in sums
        # What changed since the last tick, by group, so that a rule reading only
        # fds is not re-evaluated because a cpu value moved.
        self.cpu_changed: set[Proc] = set()
        self.rss_changed: set[Proc] = set()
        self.fds_changed: set[Proc] = set()
        self.threads_changed: set[Proc] = set()
        self.meta_changed: set[Proc] = set()  # new, exec'd, re-parented, children changed
        self.sub_changed: set[Proc] = set()
        self._sets = (self.cpu_changed, self.rss_changed, self.fds_changed,
                      self.threads_changed, self.meta_changed, self.sub_changed)
        self._unions: dict[frozenset[str], set[Proc]] = {}
        self._groups = {"cpu": self.cpu_changed, "rss": self.rss_changed,
                        "fds": self.fds_changed, "threads": self.threads_changed,
                        "meta": self.meta_changed, "sub": self.sub_changed}
        self.rate_hot: set[Proc] = set()
        self.exited: list[Proc] = []
        self.exit_parents: dict[Proc, Proc] = {}  # of those: the parent each had as it exited
        self.orphans = 0  # events for pids never announced
        self.lost_total = 0  # events the source reported lost, ever
        self.last_lost_ts: float | None = None
        self.events = 0
        self._waiting: dict[int, list[Proc]] = {}  # ppid -> procs whose parent is unknown
        # subtree changes not yet folded: process -> [cpu, rss, fds, procs] to add to it
        # and to each of its ancestors; forks by their parent, with their times
        self._unfolded: dict[Proc, list[int]] = {}
        self._forks: dict[Proc, list[float]] = {}
        # when a fork leaves subtree_forks_per_sec: the core's tick grid, else exactly
        self.expiry: Callable[[float], float] = exact_expiry
        self.walls: Walls | None = None  # totals within the plan's boundaries, if any
        self.cgroups = CgTable()  # the instances of cgroup rules
        self.net = Net(self.procs, self.rate_hot, self.meta_changed, lambda: self.expiry)
        self.net.subtree = subtree_connects and subtree
        self.handlers: dict[type, Callable[[Any], None]] = {
            t.Proc: self._proc, t.Fork: self._fork, t.Exec: self._exec, t.Exit: self._exit,
            t.Sample: self._sample, t.System: self._system, t.Lost: self._lost,
            t.Cgroup: self.cgroups.sample, t.CgroupGone: self.cgroups.remove,
            t.Connect: self.net.connect, t.Accept: self.net.accept, t.Listen: self.net.listen,
        }

    # ---- events ------------------------------------------------------------------
    def apply(self, ev: t.Event) -> None:
        """Apply one event (subtree totals are exact on return)."""
        self.events += 1
        self.handlers[type(ev)](ev)
        self.fold()

    def header(self, header: t.Header) -> None:
        if header.ncpu is not None:
            self.host.ncpu = header.ncpu
        if header.mem_total_kb is not None:
            self.host.mem_total_mb = header.mem_total_kb / _MB

    def _proc(self, ev: t.Proc) -> None:
        old = self.procs.get(ev.pid)
        if old is not None:
            self._end(old, ev.ts, short=False)
        p = self._add(ev.pid, ev.ppid, _clip(ev.comm), ev.start)
        p.exe, p.cmdline, p.uid, p.user = _clip(ev.exe), _clip(ev.cmdline), ev.uid, ev.user
        p.place(_clip(ev.cgroup))
        if self.walls is not None:
            self.walls.judge(p)

    def _fork(self, ev: t.Fork) -> None:
        old = self.procs.get(ev.pid)
        if old is not None:  # the old process's exit was lost: it is gone now
            self._end(old, ev.ts, short=False)
        p = self._add(ev.pid, ev.ppid, _clip(ev.comm), ev.ts)
        p.uid, p.user = ev.uid, ev.user
        p.place(_clip(ev.cgroup))
        parent = p.parent
        if parent is not None:
            _inherit(p, parent)
            parent.child_forks = self._bump(parent, parent.child_forks, ev.ts)
            if self.subtree_forks:
                self._forks.setdefault(parent, []).append(ev.ts)
                if self.walls is not None:
                    self.walls.fork(parent, self.expiry(ev.ts))
        self.host.forks.add(ev.ts)
        if self.walls is not None:
            self.walls.judge(p)

    def _exec(self, ev: t.Exec) -> None:
        comm = _clip(ev.comm)
        p = self.procs.get(ev.pid) or self._orphan(ev.pid, ev.ts, comm)
        # A new image: what the event does not say about it is unknown, never the old
        # image's (a fork copied the parent's exe and cmdline, right until this exec).
        p.comm = comm
        p.exe = _clip(ev.exe)
        p.cmdline = _clip(ev.cmdline())
        if ev.cgroup is not None:  # else where it was: an exec moves no process
            p.place(_clip(ev.cgroup))
        self.meta_changed.add(p)
        self.host.execs.add(ev.ts)
        if self.walls is not None:
            self.walls.judge(p)

    def _exit(self, ev: t.Exit) -> None:
        p = self.procs.get(ev.pid)
        if p is None:
            self.orphans += 1
            return
        self._end(p, ev.ts, short=True)

    def _sample(self, ev: t.Sample) -> None:
        p = self.procs.get(ev.pid) or self._orphan(ev.pid, ev.ts, None)
        raw = (ev.cpu_pct, ev.rss_kb, ev.fds, ev.fd_limit, ev.threads, ev.comm, ev.sockets)
        if raw == p.last_sample:
            return  # the usual case on a quiet host: nothing moved
        p.last_sample = raw
        cpu, rss, fds, limit, threads, comm, sockets = raw
        if sockets is not None and sockets != p.sockets:
            p.sockets = sockets
            self.meta_changed.add(p)
        if comm is not None and comm != p.comm:  # renamed itself without an exec
            p.comm = _clip(comm)
            self.meta_changed.add(p)
            if self.walls is not None:
                self.walls.judge(p)
        moved = False  # whether a value summed over subtrees changed
        if cpu is not None and cpu != p.cpu_pct:
            p.cpu_pct = cpu
            self.cpu_changed.add(p)
            moved = self.sum_cpu
        if rss is not None:
            rss /= _MB
            if rss != p.rss_mb:
                p.rss_mb = rss
                self.rss_changed.add(p)
                moved = moved or self.sum_rss
        if (fds is not None and fds != p.fds) or (limit is not None and limit != p.fd_limit):
            if fds is not None:
                p.fds = fds
                moved = moved or self.sum_fds
            if limit is not None:
                p.fd_limit = limit
            fds, limit = p.fds, p.fd_limit
            p.fd_pct = fds * 100.0 / limit if fds is not None and limit else None
            self.fds_changed.add(p)
        if threads is not None and threads != p.threads:
            p.threads = threads
            self.threads_changed.add(p)
        if moved:
            self._account(p)

    def _system(self, ev: t.System) -> None:
        h = self.host
        for name in ("cpu_pct", "psi_cpu_some", "psi_mem_some", "psi_mem_full",
                     "psi_io_some", "psi_io_full"):
            value = getattr(ev, name)
            if value is not None:
                setattr(h, name, value)
        if ev.ncpu is not None:
            h.ncpu = ev.ncpu
        if ev.mem_total_kb is not None:
            h.mem_total_mb = ev.mem_total_kb / _MB
        if ev.mem_available_kb is not None:
            h.mem_available_mb = ev.mem_available_kb / _MB
        if h.mem_total_mb and h.mem_available_mb is not None:
            h.mem_used_pct = max(0.0, 100.0 * (1.0 - h.mem_available_mb / h.mem_total_mb))

    def _lost(self, ev: t.Lost) -> None:
        self.host.lost.add(ev.ts, ev.count)
        self.lost_total += ev.count
        if ev.count:
            self.last_lost_ts = ev.ts

    # ---- tree maintenance -----------------------------------------------------------
    def _add(self, pid: int, ppid: int, comm: str | None, start: float | None) -> Proc:
        p = Proc(pid, ppid, comm, start)
        if self.walls is not None:
            self.walls.new(p)
        self.procs[pid] = p
        self.host.procs = len(self.procs)
        parent = self.procs.get(ppid) if ppid != pid else None
        if parent is not None:
            self._link(p, parent)
        elif ppid > 0:
            self._waiting.setdefault(ppid, []).append(p)
        waiting = self._waiting.pop(pid, ())
        if waiting and self._forks:  # they count for the ancestors they had
            self._fold_forks()
        for child in waiting:
            if child.alive and child.parent is None and not _below(p, child):
                self._link(child, p)
        self.meta_changed.add(p)
        if self.subtree:  # its subtree totals are new values (windows must see them)
            self.sub_changed.add(p)
        return p

    def _orphan(self, pid: int, ts: float, comm: str | None) -> Proc:
        """A pid never announced: create it as a child of pid 1 and count it."""
        self.orphans += 1
        p = self._add(pid, 1 if pid != 1 else 0, comm, None)
        if self.walls is not None:
            self.walls.judge(p)
        return p

    def _link(self, child: Proc, parent: Proc) -> None:
        child.parent = parent
        child.ppid = parent.pid
        parent.kids[child.pid] = child
        self.meta_changed.add(parent)  # its 'children' count changed
        if self.subtree:
            self._propagate(parent, child._sub_cm, child._sub_rk, child._sub_fd,
                            child.sub_procs)
        if self.walls is not None:
            self.walls.link(child, parent, 1)

    def _unlink(self, child: Proc) -> None:
        parent = child.parent
        if parent is None:
            return
        parent.kids.pop(child.pid, None)
        self.meta_changed.add(parent)
        if self.subtree:
            self._propagate(parent, -child._sub_cm, -child._sub_rk, -child._sub_fd,
                            -child.sub_procs)
        if self.walls is not None:
            self.walls.link(child, parent, -1)
        child.parent = None

    def _end(self, p: Proc, ts: float, *, short: bool) -> None:
        """Remove an exited process; its children move to pid 1 (or become roots)."""
        parent = p.parent
        if self._forks:
            self._forks_before_leaving(p)
        if self.net.pending:  # its connects count for the ancestors it has now
            self.net.fold()
        self._unlink(p)
        del self.procs[p.pid]
        self.host.procs = len(self.procs)
        p.alive = False
        adopter = self.procs.get(1)
        for kid in list(p.kids.values()):
            p.kids.pop(kid.pid)
            if self.subtree:
                self._propagate(p, -kid._sub_cm, -kid._sub_rk, -kid._sub_fd, -kid.sub_procs)
            if self.walls is not None:
                self.walls.link(kid, p, -1)
            kid.parent = None
            if adopter is not None and not _below(adopter, kid):
                self._link(kid, adopter)
            else:
                kid.ppid = 0
            self.meta_changed.add(kid)
        for changed in self._sets:
            changed.discard(p)
        self.rate_hot.discard(p)
        self.exited.append(p)
        if parent is not None:
            self.exit_parents[p] = parent
        self.host.exits.add(ts)
        if short and p.start is not None and ts - p.start < SHORT_JOB_S:
            self.host.short_jobs.add(ts)
            if parent is not None and parent.alive:
                parent.child_short_jobs = self._bump(parent, parent.child_short_jobs, ts)

    def _bump(self, p: Proc, window: RateWindow, ts: float) -> RateWindow:
        """Record an event in one of ``p``'s rate windows (creating it on first use)."""
        if window is RateWindow.EMPTY:
            window = RateWindow()
        window.add(ts)
        self.rate_hot.add(p)
        return window

    def _account(self, p: Proc) -> None:
        """Fold a change of ``p``'s own cpu/rss/fds into the subtree totals."""
        dcm = drk = dfd = 0
        if self.sum_cpu:
            cm = round((p.cpu_pct or 0.0) * 1000)
            dcm, p._cm = cm - p._cm, cm
        if self.sum_rss:
            rk = round((p.rss_mb or 0.0) * _MB)
            drk, p._rk = rk - p._rk, rk
        if self.sum_fds:
            fd = p.fds or 0
            dfd, p._fd = fd - p._fd, fd
        if dcm or drk or dfd:
            self._propagate(p, dcm, drk, dfd, 0)
            if self.walls is not None:
                self.walls.own(p, dcm, drk, dfd)

    def _propagate(self, start: Proc, dcm: int, drk: int, dfd: int, dprocs: int) -> None:
        """Note a change of the totals of ``start`` and its ancestors (see :meth:`fold`)."""
        noted = self._unfolded.get(start)
        if noted is None:
            self._unfolded[start] = [dcm, drk, dfd, dprocs]
        else:
            noted[0] += dcm
            noted[1] += drk
            noted[2] += dfd
            noted[3] += dprocs

    def fold(self) -> None:
        """Hand the noted changes up the tree: every ancestor once.

        Every process whose totals were touched is marked in ``sub_changed``;
        every one whose fork count grew is rate-hot.
        """
        if self._unfolded:
            noted, self._unfolded = self._unfolded, {}
            mark = self.sub_changed.add

            def apply(node: Proc, change: list[int]) -> None:
                # An exited process is no rule's candidate any more, and keeps the totals
                # it last had (for the message of its exit), not those left once its
                # children were handed to pid 1.
                if node.alive:
                    add_totals(node, change)
                    mark(node)

            upward(noted, apply, merge_totals)
        if self.walls is not None:
            self.walls.fold(self.sub_changed.add)
        if self._forks:
            self._fold_forks()
        if self.net.pending:
            self.net.fold()

    def _fold_forks(self) -> None:
        expiry = self.expiry
        noted = {p: fork_counts(stamps, expiry) for p, stamps in self._forks.items()}
        self._forks = {}
        hot = self.rate_hot.add

        def apply(node: Proc, counts: dict[float, int]) -> None:
            add_forks(node, counts)
            if node.alive:
                hot(node)

        upward(noted, apply, merge_forks)
        if self.walls is not None:
            self.walls.fold_forks()

    def _forks_before_leaving(self, p: Proc) -> None:
        """Forks noted below ``p`` count for the ancestors it has now: fold them first."""
        if p.kids:
            self._fold_forks()
            return
        own = self._forks.pop(p, None)  # a leaf: only its own, handed to its parent
        if own:
            add_forks(p, fork_counts(own, self.expiry))
            if p.parent is not None:
                self._forks.setdefault(p.parent, []).extend(own)
            if self.walls is not None:
                self.walls.leave(p)

    def set_boundaries(self, texts: tuple[str, ...], conds: tuple[Callable[..., Any], ...]
                       ) -> None:
        """Keep subtree totals within these boundaries' walls (none: stop keeping any)."""
        if self.walls is not None and self.walls.texts == texts:
            self.walls.conds = conds  # the same walls, compiled again
            return
        self.walls = Walls(texts, conds, self.host) if texts else None
        if self.walls is not None:
            self.walls.rebuild(self.procs.values())
        else:
            for p in self.procs.values():
                p.bounded = NO_TOTALS
        self.sub_changed.update(self.procs.values())

    def enable_subtree(self, sums: frozenset[str] = frozenset({"cpu", "rss", "fds"})) -> None:
        """Start maintaining subtree totals: one pass over the whole tree."""
        self.subtree = True
        self.sum_cpu, self.sum_rss, self.sum_fds = ("cpu" in sums, "rss" in sums,
                                                    "fds" in sums)
        self._unfolded.clear()  # every total is computed afresh below
        order = top_down(self.procs.values())
        for p in order:
            p._cm = round((p.cpu_pct or 0.0) * 1000) if self.sum_cpu else 0
            p._rk = round((p.rss_mb or 0.0) * _MB) if self.sum_rss else 0
            p._fd = (p.fds or 0) if self.sum_fds else 0
            p._sub_cm, p._sub_rk, p._sub_fd, p.sub_procs = p._cm, p._rk, p._fd, 1
        for p in reversed(order):  # children before parents
            parent = p.parent
            if parent is not None:
                parent._sub_cm += p._sub_cm
                parent._sub_rk += p._sub_rk
                parent._sub_fd += p._sub_fd
                parent.sub_procs += p.sub_procs
        for p in order:
            p.sub_cpu_pct = p._sub_cm / 1000.0
            p.sub_rss_mb = p._sub_rk / _MB
            p.sub_fds = p._sub_fd
            self.sub_changed.add(p)
        if self.walls is not None:  # the own values it adds up may have changed
            self.walls.rebuild(self.procs.values(), sums_only=True)

    # ---- ticks -------------------------------------------------------------------------

    def quiet(self) -> bool:
        """Whether nothing happened since the last :meth:`settle` (no event applied)."""
        return not (self._unfolded or self._forks or self.net.pending or self.exited
                    or any(self._sets)
                    or (self.walls is not None and not self.walls.quiet())
                    or not self.cgroups.quiet())

    def changed(self, groups: frozenset[str]) -> set[Proc]:
        """Processes changed in any of ``groups`` (cpu rss fds threads meta sub).

        The result is shared by every caller asking for the same groups until
        the next :meth:`settle`: do not modify it.
        """
        out = self._unions.get(groups)
        if out is None:
            sets = self._groups
            out = set()
            for group in groups:
                out |= sets[group]
            self._unions[groups] = out
        return out

    def settle(self, now: float) -> None:
        """Forget change marks after a tick; drop processes whose rates went quiet."""
        for changed in self._sets:
            changed.clear()
        self._unions.clear()
        self.exited.clear()
        self.exit_parents.clear()
        self.cgroups.settle()
        if self.walls is not None:
            self.walls.moved.clear()
        quiet = [p for p in self.rate_hot if not (
            p.child_forks.count(now) or p.child_short_jobs.count(now) or p.sub_forks.count(now)
            or (p.net is not None and p.net.busy(now)))]
        self.rate_hot.difference_update(quiet)

    @contextlib.contextmanager
    def as_it_exited(self, p: Proc) -> Iterator[Proc]:
        """``p``, exited since the last tick, linked for a while to the parent it had as it
        exited (each exited ancestor too), so that a message about its exit reads what it
        last had (``parent.*``, ``ancestors``).  No live process links to an exited one."""
        linked = []
        node = p
        while not node.alive and node.parent is None:
            above = self.exit_parents.get(node)
            if above is None:
                break
            node.parent = above
            linked.append(node)
            node = above
        try:
            yield p
        finally:
            for node in linked:
                node.parent = None

    def live(self) -> Iterator[Proc]:
        return iter(self.procs.values())

    def top(self, read: object, now: float, exclude: object = None) -> Proc | None:
        """The live process with the largest value (see :func:`~linnix.engine.choose.top`)."""
        return top(self.procs.values(), self.host, read, now, exclude)


def _inherit(child: Proc, parent: Proc) -> None:
    """What a forked child has of its parent's until it execs, or the event says otherwise.

    The kernel starts a child in its parent's cgroup and with its uid; the
    name of the uid is the parent's only when the uid is.
    """
    child.exe, child.cmdline = parent.exe, parent.cmdline
    if child.uid is None:
        child.uid = parent.uid
    if child.user is None and child.uid == parent.uid:
        child.user = parent.user
    if child.cgroup is None:
        child.cgroup, child.unit, child.container = parent.cgroup, parent.unit, parent.container


def _below(node: Proc, root: Proc) -> bool:
    """Whether ``node`` is ``root`` or one of its descendants.

    Linking ``root`` under such a node would close a cycle in the tree (a
    trace may claim that pid 1 has a parent, or two processes may name each
    other as parent); the link is then not made and ``root`` stays a root.
    """
    return any(n is root for n in node.lineage(inclusive=True))


def _clip(text: str | None) -> str | None:
    """``text`` cut to :data:`~linnix.names.TEXT_MAX` characters."""
    return text[:TEXT_MAX] if text is not None and len(text) > TEXT_MAX else text
