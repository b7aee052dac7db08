"""How long each rule's part of a tick took, counted into fixed buckets.

The evaluator times every rule at every tick it runs; ``/metrics`` exports
those times as a histogram.  Counting one is a bisection over a short tuple
and a list increment, so the engine's hot path stays cheap; the cumulative
form a histogram is published in is built only when someone asks.
"""

from __future__ import annotations

from bisect import bisect_left

__all__ = ["BOUNDS", "Durations"]

# Upper bounds in seconds: a rule's part of a tick takes microseconds when little
# changed and milliseconds over thousands of processes.
BOUNDS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
          1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25)


class Durations:
    """Times in buckets: ``counts[i]`` holds those in ``(BOUNDS[i-1], BOUNDS[i]]``, the last
    one those above every bound; ``seconds`` is their sum."""

    __slots__ = ("counts", "seconds")

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)
        self.seconds = 0.0

    def add(self, spent: float) -> None:
        self.seconds += spent
        self.counts[bisect_left(BOUNDS, spent)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, times at most that), ending with infinity and the total."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*BOUNDS, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out
