"""The host's recent samples, for the dashboard's charts: one bounded ring.

The telemetry hands every host sample (a :class:`~linnix.engine.trace.System`
event) to :meth:`HostRing.add` on the trio thread; the ring keeps the last
``WINDOW_S`` seconds of them at the sampling interval, so its size is fixed
when it is made (900 points at one sample a second: about 270 KiB measured with
tracemalloc, every value set).
A value a sample did not measure stays None, and the charts leave a gap.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from ..engine import trace as t

__all__ = ["SERIES", "WINDOW_S", "HostRing"]

WINDOW_S = 15 * 60.0  # what the overview's charts show
# the columns of each point after its time, in this order
SERIES = ("cpu_pct", "mem_used_pct", "psi_cpu_some", "psi_mem_some", "psi_mem_full",
          "psi_io_some", "psi_io_full")
_Point = tuple[float | None, ...]  # (Unix time, *SERIES)


def _mem_used_pct(ev: t.System) -> float | None:
    total, available = ev.mem_total_kb, ev.mem_available_kb
    if not total or available is None:
        return None
    return round(max(0.0, 100.0 * (1.0 - available / total)), 2)


class HostRing:
    """The host samples of the last ``window_s`` seconds at ``interval`` seconds apart."""

    def __init__(self, interval: float, window_s: float = WINDOW_S) -> None:
        self.size = max(1, math.ceil(window_s / max(interval, 0.001)))
        self.points: deque[_Point] = deque(maxlen=self.size)

    def add(self, wall: float, ev: t.System) -> None:
        """Keep ``ev``, sampled at Unix time ``wall``."""
        self.points.append((wall, ev.cpu_pct, _mem_used_pct(ev), ev.psi_cpu_some,
                            ev.psi_mem_some, ev.psi_mem_full, ev.psi_io_some, ev.psi_io_full))

    def series(self) -> dict[str, Any]:
        """Columns: ``t`` (Unix seconds) and one list per name of :data:`SERIES`."""
        columns = list(zip(*self.points, strict=True)) if self.points else [()] * 8
        out: dict[str, Any] = {"t": list(columns[0])}
        for name, column in zip(SERIES, columns[1:], strict=True):
            out[name] = list(column)
        return out
