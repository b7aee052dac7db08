"""The cgroups the engine knows, from ``cgroup`` samples: the instances of cgroup rules.

A cgroup is keyed by its id (the directory's inode, as the trace gives it),
not by its path: a unit that systemd restarts comes back at the same path as
a new directory, a new id, and a new instance.  Its parent is derived from the
path (``/a/b`` is below ``/a``), whether or not the parent is sampled: that is
all deepest-cgroup reporting needs.

Each sample is whole (:class:`~linnix.engine.trace.Cgroup`): an absent value
is no value.  The table holds at most :data:`CGROUPS_MAX` cgroups; the samples
of more are counted in :attr:`CgTable.dropped` and otherwise ignored, so that a
hostile trace cannot make it grow without bound.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import trace as t
from .records import _names
from .windows import Windowed

__all__ = ["CGROUPS_MAX", "Cg", "CgTable", "ancestors_of"]

CGROUPS_MAX = 65536

# the values a sample carries, in the record's names (the rules' cg_* names)
_VALUES = ("procs", "cpu_pct", "mem_mb", "mem_max_mb", "swap_mb", "psi_cpu_some",
           "psi_mem_some", "psi_mem_full", "psi_io_some", "oom_kills")


class Cg(Windowed):
    """One cgroup: its path, unit and container, and its latest sample (``cg_*``)."""

    __slots__ = ("alive", "cg_cpu_pct", "cg_mem_max_mb", "cg_mem_mb", "cg_mem_pct",
                 "cg_oom_kills", "cg_procs", "cg_psi_cpu_some", "cg_psi_io_some",
                 "cg_psi_mem_full", "cg_psi_mem_some", "cg_swap_mb", "cgroup", "container",
                 "id", "unit")

    def __init__(self, cg_id: int, path: str) -> None:
        super().__init__()
        self.id = cg_id
        self.alive = True
        self.cgroup = path
        self.unit, self.container = _names(path)
        self.cg_procs: int | None = None
        self.cg_cpu_pct: float | None = None
        self.cg_mem_mb: float | None = None
        self.cg_mem_max_mb: float | None = None
        self.cg_mem_pct: float | None = None
        self.cg_swap_mb: float | None = None
        self.cg_psi_cpu_some: float | None = None
        self.cg_psi_mem_some: float | None = None
        self.cg_psi_mem_full: float | None = None
        self.cg_psi_io_some: float | None = None
        self.cg_oom_kills: int | None = None

    def __repr__(self) -> str:
        return f"<Cg {self.cgroup} id={self.id}>"

    def take(self, ev: t.Cgroup) -> None:
        """The values of a sample (absent ones: no value)."""
        for name in _VALUES:
            setattr(self, "cg_" + name, getattr(ev, name))
        if ev.cgroup != self.cgroup:  # renamed (or moved) in place: same directory
            self.cgroup = ev.cgroup
            self.unit, self.container = _names(ev.cgroup)
        used, limit = self.cg_mem_mb, self.cg_mem_max_mb
        self.cg_mem_pct = None if used is None or not limit else used / limit * 100.0


def ancestors_of(path: str) -> Iterator[str]:
    """The paths above ``path``, nearest first, the root ``/`` last."""
    while path not in ("", "/"):
        path = path.rsplit("/", 1)[0] or "/"
        yield path


class CgTable:
    """Live cgroups by id, and what changed since the last tick."""

    def __init__(self) -> None:
        self.by_id: dict[int, Cg] = {}
        self.changed: set[Cg] = set()  # sampled since the last tick
        self.gone: list[Cg] = []  # removed since the last tick
        self.dropped = 0  # samples of cgroups beyond CGROUPS_MAX

    def sample(self, ev: t.Cgroup) -> None:
        cg = self.by_id.get(ev.id)
        if cg is None:
            if len(self.by_id) >= CGROUPS_MAX:
                self.dropped += 1
                return
            cg = self.by_id[ev.id] = Cg(ev.id, ev.cgroup)
        cg.take(ev)
        self.changed.add(cg)

    def remove(self, ev: t.CgroupGone) -> None:
        cg = self.by_id.pop(ev.id, None)
        if cg is not None:
            cg.alive = False
            self.changed.discard(cg)
            self.gone.append(cg)

    def live(self) -> Iterator[Cg]:
        return iter(self.by_id.values())

    def quiet(self) -> bool:
        return not (self.changed or self.gone)

    def settle(self) -> None:
        self.changed.clear()
        self.gone.clear()

    def __len__(self) -> int:
        return len(self.by_id)
