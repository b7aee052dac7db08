"""Values over time: rate and sum windows stay bounded whether or not anyone reads them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from linnix.engine.windows import RateWindow, SumWindow


def test_a_rate_window_nobody_reads_holds_one_second_of_events() -> None:
    window = RateWindow()
    for i in range(100_000):  # 1,000 events a second for 100 s, never read
        window.add(i / 1000)
    assert len(window) == 1000
    assert window.count(99.999) == 1000


def test_a_sum_window_nobody_reads_holds_its_span() -> None:
    window = SumWindow(60.0)
    for i in range(10_000):  # a count every 0.1 s for 1,000 s, never read
        window.add(i / 10, 2)
    assert window.first() == 940.0
    assert window.total(999.9) == 2 * 600


@given(steps=st.lists(st.tuples(st.floats(0, 3, allow_nan=False), st.booleans()), max_size=80))
def test_dropping_on_add_never_changes_a_count(steps: list[tuple[float, bool]]) -> None:
    """Events in time order, reads at or after the last event (the engine's order)."""
    window, added, now = RateWindow(), [], 0.0
    for gap, read in steps:
        now += gap
        if read:
            assert window.count(now) == sum(1 for t in added if now - 1 < t <= now)
        else:
            window.add(now)
            added.append(now)


@given(steps=st.lists(st.tuples(st.floats(0, 3, allow_nan=False),
                                st.floats(0, 3, allow_nan=False)), max_size=80))
def test_a_peek_counts_that_second_and_changes_no_later_count(
        steps: list[tuple[float, float]]) -> None:
    """A scrape peeks at a time of its own (at or after the last event), even later than
    a tick still to run: the tick's count must be what it would have been without it."""
    window, added, now = RateWindow(), [], 0.0
    for gap, ahead in steps:
        now += gap
        window.add(now)
        added.append(now)
        at = now + ahead
        assert window.peek(at) == sum(1 for t in added if at - 1 < t <= at)
        assert window.count(now) == sum(1 for t in added if now - 1 < t <= now)
