"""The host record: host-wide values a system rule reads (``H.`` in the registry's code).

It holds the latest system sample and the host's event rates; the process
table (:mod:`.proctable`) keeps it up to date from events, as it does its
processes.
"""

from __future__ import annotations

from typing import Any

from .windows import RateWindow, SumWindow, Windowed

__all__ = ["Host"]


class Host(Windowed):
    """Host-wide values: the latest system sample and event rates."""

    __slots__ = (
        "cpu_pct", "execs", "exits", "forks", "lost", "mem_available_mb", "mem_total_mb",
        "mem_used_pct", "ncpu", "procs", "psi_cpu_some", "psi_io_full", "psi_io_some",
        "psi_mem_full", "psi_mem_some", "short_jobs", "tally",
    )

    def __init__(self) -> None:
        super().__init__()
        self.cpu_pct: float | None = None
        self.ncpu: int | None = None
        self.mem_total_mb: float | None = None
        self.mem_available_mb: float | None = None
        self.mem_used_pct: float | None = None
        self.psi_cpu_some: float | None = None
        self.psi_mem_some: float | None = None
        self.psi_mem_full: float | None = None
        self.psi_io_some: float | None = None
        self.psi_io_full: float | None = None
        self.procs = 0
        self.forks = RateWindow()
        self.execs = RateWindow()
        self.exits = RateWindow()
        self.short_jobs = RateWindow()
        self.lost = SumWindow(60.0)
        self.tally: Any = None  # the engine's counts (engine/tally.py), installed by it
