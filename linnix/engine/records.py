"""The record the process table keeps for each process: :class:`Proc` (the host's is
:class:`~linnix.engine.host.Host`).

Plain attribute holders (slots), kept up to date by
:class:`~linnix.engine.proctable.ProcTable` and read by the compiled rules
(``P.`` in :mod:`linnix.names`).  Apart from the table so that
neither module grows past what one reads at once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..cgroups.paths import container_of, unit_of
from .walls import Totals

if TYPE_CHECKING:
    from .net import NetState
from .windows import ExpiryCounts, RateWindow, Windowed

__all__ = ["NO_TOTALS", "Proc"]

NO_TOTALS: list[Totals] = []  # shared, never changed: a table with no boundary


class Proc(Windowed):
    """One process, from its fork (or the start-up scan) to its exit."""

    __slots__ = (
        "_cm", "_fd", "_rk", "_sub_cm", "_sub_fd", "_sub_rk", "alive", "bounded", "cgroup",
        "child_forks", "child_short_jobs", "cmdline", "comm", "container", "cpu_pct", "exe",
        "fd_limit", "fd_pct", "fds", "kids", "last_sample", "net", "parent", "pid", "ppid",
        "rss_mb", "sockets", "start", "sub_cpu_pct", "sub_fds", "sub_forks", "sub_procs",
        "sub_rss_mb", "threads", "uid", "unit", "user",
    )

    def __init__(self, pid: int, ppid: int, comm: str | None, start: float | None) -> None:
        super().__init__()
        self.pid = pid
        self.ppid = ppid
        self.comm = comm
        self.start = start
        self.exe: str | None = None
        self.cmdline: str | None = None
        self.uid: int | None = None
        self.user: str | None = None  # the name of uid, as the source knew it
        self.cgroup: str | None = None  # its cgroup v2 path; unit and container follow from it
        self.unit: str | None = None
        self.container: str | None = None
        self.cpu_pct: float | None = None
        self.rss_mb: float | None = None
        self.fds: int | None = None
        self.fd_limit: int | None = None
        self.fd_pct: float | None = None
        self.threads: int | None = None
        self.sockets: int | None = None
        self.net: NetState | None = None  # from its first network event on (linnix.engine.net)
        self.parent: Proc | None = None
        self.kids: dict[int, Proc] = {}
        self.last_sample: tuple[object, ...] | None = None
        self.child_forks = RateWindow.EMPTY
        self.child_short_jobs = RateWindow.EMPTY
        self.sub_forks = ExpiryCounts.EMPTY
        self.alive = True
        # own contribution and subtree totals, in integers so sums stay exact
        self._cm = self._rk = self._fd = 0
        self._sub_cm = self._sub_rk = self._sub_fd = 0
        self.sub_cpu_pct = 0.0
        self.sub_rss_mb = 0.0
        self.sub_fds = 0
        self.sub_procs = 1
        self.bounded = NO_TOTALS  # within the plan's boundaries (linnix.engine.walls)

    def __repr__(self) -> str:
        return f"<Proc {self.comm}[{self.pid}] start={self.start}>"

    @property
    def children(self) -> int:
        return len(self.kids)

    def age(self, now: float) -> float | None:
        return None if self.start is None else max(0.0, now - self.start)

    # ---- network names (linnix.engine.net): zero when it never had such an event ------
    def connects_per_sec(self, now: float) -> int:
        net = self.net
        return 0 if net is None else net.connects.count(now)

    def accepts_per_sec(self, now: float) -> int:
        net = self.net
        return 0 if net is None else net.accepts.count(now)

    def sub_connects_per_sec(self, now: float) -> int:
        net = self.net
        return 0 if net is None else net.sub_connects.count(now)

    def listen_ports(self) -> tuple[int, ...]:
        net = self.net
        return () if net is None else net.ports

    def ancestors(self) -> tuple[str, ...]:
        """Command names of the ancestors, nearest first (unknown names skipped)."""
        out = []
        node = self.parent
        while node is not None:
            if node.comm is not None:
                out.append(node.comm)
            node = node.parent
        return tuple(out)

    def lineage(self, inclusive: bool = False) -> Iterator[Proc]:
        """The ancestors, nearest first (starting with itself when ``inclusive``)."""
        node = self if inclusive else self.parent
        while node is not None:
            yield node
            node = node.parent

    def descendants(self) -> Iterator[Proc]:
        """Every process below this one (depth first, children by pid)."""
        stack = [self.kids[pid] for pid in sorted(self.kids, reverse=True)]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.kids[pid] for pid in sorted(node.kids, reverse=True))

    def identity(self) -> tuple[int, float | None]:
        return (self.pid, self.start)

    def place(self, cgroup: str | None) -> None:
        """Put the process in ``cgroup`` (a v2 path), with the unit and container it names."""
        self.cgroup = cgroup
        self.unit, self.container = (None, None) if cgroup is None else _names(cgroup)


@functools.lru_cache(maxsize=1024)
def _names(cgroup: str) -> tuple[str | None, str | None]:
    """The unit and container of a path; cached, as a service's processes share one."""
    return unit_of(cgroup), container_of(cgroup)
