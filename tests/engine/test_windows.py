"""Values over time: rate and sum windows stay bounded whether or not anyone reads them."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from linnix.engine.windows import RateWindow, StepBuffer, SumWindow


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


class _Reference:
    """The step functions as first written: every read copies the steps in effect
    (kept here to hold the faster ones to the same results, to the last bit)."""

    def __init__(self, buf: StepBuffer) -> None:
        self.buf = buf

    def since(self, now: float, window: float) -> list[tuple[float, float]] | None:
        edge = now - window
        if self.buf.first > edge:
            return None
        steps = self.buf.steps
        i = 0
        while i + 1 < len(steps) and steps[i + 1][0] <= edge:
            i += 1
        return [(edge, steps[i][1])] + [s for s in list(steps)[i + 1:] if s[0] <= now]

    def at(self, when: float) -> float:
        value = self.buf.steps[0][1]
        for ts, v in self.buf.steps:
            if ts > when:
                break
            value = v
        return value

    def delta(self, now: float, window: float) -> float | None:
        edge = now - window
        if self.buf.first > edge:
            return None
        then = self.buf.steps[0][1]
        for ts, v in self.buf.steps:
            if ts > edge:
                break
            then = v
        return self.at(now) - then

    def avg(self, now: float, window: float) -> float | None:
        span = self.since(now, window)
        if span is None:
            return None
        total = 0.0
        for (t0, v), (t1, _) in zip(span, [*span[1:], (now, 0.0)], strict=True):
            total += v * (t1 - t0)
        return total / window


_values = st.one_of(st.integers(0, 3).map(float), st.floats(0, 1e6, allow_nan=False))


@given(first=_values,
       steps=st.lists(st.tuples(st.sampled_from([0.25, 0.5, 1.0, 7.5]), _values,
                                st.booleans()), max_size=120),
       window=st.sampled_from([0.5, 1.0, 30.0, 60.0]),
       span=st.sampled_from([30.0, 60.0, 90.0]))
def test_window_functions_give_what_the_steps_in_effect_give(
        first: float, steps: list[tuple[float, float, bool]], window: float,
        span: float) -> None:
    """avg, delta, min and max, read at every tick as observations come in, equal
    (bit for bit) what a plain pass over the copied steps in effect gives."""
    now = 0.0
    buf = StepBuffer(max(span, window), now, first)
    ref = _Reference(buf)
    for gap, value, observe in steps:
        now += gap
        if observe:
            buf.push(now, value)
        for when in (now - 0.3, now, now + 0.25):  # before the observation, at it, later
            assert buf.at(when) == ref.at(when)
            assert buf.delta(when, window) == ref.delta(when, window)
            assert buf.avg(when, window) == ref.avg(when, window)
            span_in = ref.since(when, window)
            assert buf.min(when, window) == (None if span_in is None
                                            else min(v for _, v in span_in))
            assert buf.max(when, window) == (None if span_in is None
                                            else max(v for _, v in span_in))


def test_an_average_adds_its_steps_in_order_as_a_loop_does() -> None:
    """A minute of CPU values changing every second, read between two samples: the
    average is the loop's to the last bit, where a sum that compensates its rounding
    errors (``math.fsum``, ``sum`` from Python 3.12) gives another value."""
    values = [100 / (k % 3 + 3) + k / 3 for k in range(120)]
    buf = StepBuffer(60.0, 0.3, values[0])
    for k, value in enumerate(values[1:], 1):
        buf.push(0.3 + k, value)
    now, window = 120.8, 60.0
    edge = now - window
    span = _Reference(buf).since(now, window)
    assert span is not None
    areas = [v * (t1 - t0) for (t0, v), (t1, _) in
             zip(span, [*span[1:], (now, 0.0)], strict=True)]
    looped = 0.0
    for area in areas:
        looped += area
    assert math.fsum(areas) != looped  # the order matters for these steps
    assert buf.avg(now, window) == looped / window
    assert span[0][0] == edge
