"""A rule's time per tick, counted into the buckets of its histogram."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from linnix.engine.durations import BOUNDS, Durations


def test_a_time_goes_to_the_first_bucket_whose_bound_holds_it() -> None:
    timed = Durations()
    for spent in (0.0, 1e-6, 1.5e-6, 0.003, 0.25, 7.0):
        timed.add(spent)
    got = dict(timed.cumulative())
    assert got[1e-6] == 2  # a bound holds a time equal to it (Prometheus's "le")
    assert got[2.5e-6] == 3
    assert got[2.5e-3] == 3 and got[5e-3] == 4
    assert got[0.1] == 4 and got[0.25] == 5
    assert got[math.inf] == timed.total == 6
    assert timed.seconds == 0.0 + 1e-6 + 1.5e-6 + 0.003 + 0.25 + 7.0


@given(st.lists(st.floats(0, 1, allow_nan=False), max_size=50))
def test_the_cumulative_counts_are_those_at_most_each_bound(times: list[float]) -> None:
    timed = Durations()
    for spent in times:
        timed.add(spent)
    assert timed.cumulative() == [(bound, sum(1 for t in times if t <= bound))
                                  for bound in (*BOUNDS, math.inf)]
