"""The host ring: bounded at 15 minutes of samples, a value not measured kept as None."""

from __future__ import annotations

from linnix.engine import trace as t
from linnix.runtime.hostring import SERIES, HostRing


def test_the_ring_holds_fifteen_minutes_at_the_sample_interval() -> None:
    assert HostRing(1.0).size == 900
    assert HostRing(2.0).size == 450
    assert HostRing(0.3).size == 3000


def test_the_oldest_samples_go_first() -> None:
    ring = HostRing(1.0, window_s=3)
    for second in range(5):
        ring.add(1000.0 + second, t.System(ts=float(second), cpu_pct=float(second)))
    series = ring.series()
    assert series["t"] == [1002.0, 1003.0, 1004.0]
    assert series["cpu_pct"] == [2.0, 3.0, 4.0]


def test_columns_keep_what_was_not_measured_as_none() -> None:
    ring = HostRing(1.0)
    ring.add(10.0, t.System(ts=1.0, mem_total_kb=1000.0, mem_available_kb=250.0,
                            psi_io_full=0.5))
    series = ring.series()
    assert set(series) == {"t", *SERIES}
    assert series["cpu_pct"] == [None] and series["psi_cpu_some"] == [None]
    assert series["mem_used_pct"] == [75.0] and series["psi_io_full"] == [0.5]


def test_an_empty_ring_has_empty_columns() -> None:
    assert HostRing(1.0).series() == {"t": [], **{name: [] for name in SERIES}}
