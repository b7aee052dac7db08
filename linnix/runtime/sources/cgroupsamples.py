"""Cgroup samples as trace events: the cg_* values of the cgroups live processes are in.

:class:`CgroupSamples` turns a round of :class:`~linnix.cgroups.sample.Sampler`
into ``cgroup`` events, and a cgroup sampled in the previous round but not in
this one (removed, or no process left in it) into a ``cgroup_gone``.  Its reads
block: :class:`~linnix.runtime.sources.telemetry.Telemetry` calls it in its
worker thread, with the cgroup paths of the live processes gathered beforehand
on the trio thread.  How many cgroups a round reads is bounded by
:data:`ROUND_MAX`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ...cgroups.hierarchy import Cgroup, Hierarchy, discover, locate, walk
from ...cgroups.sample import CgroupSample, Sampler, raise_fd_limit
from ...engine import trace as t
from ...procfs import Clock

__all__ = ["ROUND_MAX", "CgroupSamples"]

ROUND_MAX = 2048  # cgroups sampled in one round at most (the shallowest paths first)


class CgroupSamples:
    """Round after round: the cgroups of ``paths`` (v2 paths), sampled, as events."""

    def __init__(self, clock: Clock, hierarchy: Hierarchy | None = None) -> None:
        self.clock = clock
        self.h = discover() if hierarchy is None else hierarchy
        raise_fd_limit()  # before the sampler sizes its budget of kept files from it
        self.sampler = Sampler(self.h)
        self._last: set[int] = set()  # the ids sampled in the previous round

    def sample(self, paths: Iterable[str], root: str | None = None) -> list[t.Event]:
        """A round: the cgroups at ``paths``, and every one under ``root`` (if given)."""
        chosen: dict[int, Cgroup] = {}
        for path in sorted(set(paths), key=lambda p: (p.count("/"), p))[:ROUND_MAX]:
            cg = locate(self.h, path)
            if cg is not None:
                chosen[cg.id] = cg
        if root is not None:  # listed breadth first, bounded by the hierarchy's walk
            for cg in walk(self.h, root).cgroups:
                if len(chosen) >= ROUND_MAX:
                    break
                chosen.setdefault(cg.id, cg)
        found = self.sampler.sample(chosen.values(), time.monotonic())
        ts = max(0.0, round(self.clock.now(), 6))
        out: list[t.Event] = [_event(ts, s) for s in found]
        now = {s.id for s in found}
        out += [t.CgroupGone(ts=ts, id=cg_id) for cg_id in sorted(self._last - now)]
        self._last = now
        return out

    def close(self) -> None:
        self.sampler.close()


def _event(ts: float, s: CgroupSample) -> t.Cgroup:
    return t.Cgroup(ts=ts, cgroup=s.path, id=s.id, procs=s.cg_procs, cpu_pct=s.cg_cpu_pct,
                    mem_mb=s.cg_mem_mb, mem_max_mb=s.cg_mem_max_mb, swap_mb=s.cg_swap_mb,
                    psi_cpu_some=s.cg_psi_cpu_some, psi_mem_some=s.cg_psi_mem_some,
                    psi_mem_full=s.cg_psi_mem_full, psi_io_some=s.cg_psi_io_some,
                    oom_kills=s.cg_oom_kills)
