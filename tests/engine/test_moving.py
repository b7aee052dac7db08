"""Which processes' windows move: hot and young processes are kept per window key.

Ticks fall every 500 ms from 0.0; a sample at a tick's time is applied before it.
"""

from __future__ import annotations

from engine_support import fork, sample, transitions

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import compile_text

TWO_RULES = """
rule busy {
    when avg(cpu_pct, 10s) > 95
}
rule grows {
    when delta(rss_mb, 10s) > 1
}
"""


def _busy_then_growing(until: int) -> list[t.Event]:
    """pid 2: its CPU changes every second (its average moves at every tick); its
    memory holds still until 30 s, then doubles (4 MiB to 8 MiB) and holds again."""
    events: list[t.Event] = [fork(0.0, 2, 1)]
    for s in range(until + 1):
        rss = 4096.0 if s < 30 else 8192.0
        events.append(sample(float(s), 2, cpu_pct=40.0 if s % 2 else 60.0, rss_kb=rss))
    return events


def _evaluations(core: Core) -> dict[str, int]:
    return {s.rule.name: s.evaluations for s in core.evaluator.rules}


def test_a_process_hot_for_one_rules_average_is_not_judged_by_another() -> None:
    core = Core(compile_text(TWO_RULES), 0.5)
    events = _busy_then_growing(45)
    core.feed(events[:17])  # up to the sample at 15 s: every window has a value
    before = _evaluations(core)
    core.feed(events[17:31])  # the ticks from 15.5 s to 29.0 s: only its CPU moves
    after = _evaluations(core)
    assert after["busy"] - before["busy"] == 28  # its average moved at each of the 28
    assert after["grows"] == before["grows"]  # its memory's window did not move
    assert core.evaluator.moving.hot == {"cpu_pct": {core.table.procs[2]}}


def test_a_process_hot_for_another_rule_still_fires_when_its_own_window_moves() -> None:
    core = Core(compile_text(TWO_RULES), 0.5)
    core.feed(_busy_then_growing(45))
    core.finish()
    # fires when its memory doubles; resolves when the old value leaves its window
    # (a wake-up at 30 + 10 s: nothing of it is observed then)
    assert transitions(core.drain()) == [(30.0, "grows", "firing", 2),
                                         (40.0, "grows", "resolved", 2, "cleared")]


def test_a_young_process_is_judged_at_the_tick_its_window_comes_of_age() -> None:
    """A reload shortens a window: the process, observed once at 0.5 s and never
    again, comes of age at 5.5 s with no observation and no wake-up due then."""
    core = Core(compile_text("rule slow {\n    when avg(cpu_pct, 20s) > 50\n}\n"), 0.5)
    core.feed([fork(0.0, 2, 1), sample(0.5, 2, cpu_pct=90.0), sample(1.0, 2, rss_kb=1.0)])
    core.replace_plan(compile_text("rule quick {\n    when avg(cpu_pct, 5s) > 50\n}\n"))
    core.feed([sample(float(s), 2, rss_kb=1.0) for s in range(2, 9)])
    assert core.evaluator.moving.young == {"cpu_pct": {}}
    assert transitions(core.drain()) == [(5.5, "quick", "firing", 2)]


def _reloaded(tick: float, k: int, window: str, everyone: bool) -> list[tuple[object, ...]]:
    """pid 2 observed once, at tick ``k``; its window then shortened by a reload."""
    core = Core(compile_text("rule slow {\n    when avg(cpu_pct, 20s) > 50\n}\n"), tick)
    sampled = k * tick - tick / 2
    core.feed([fork(0.0, 2, 1), sample(sampled, 2, cpu_pct=90.0),
               sample(sampled + tick, 2, rss_kb=1.0)])
    core.replace_plan(compile_text(f"rule quick {{\n    when avg(cpu_pct, {window}) > 50\n}}\n"))
    for state in core.evaluator.rules:
        state.every_tick = everyone  # the reference: judged at every tick
    core.feed([sample(sampled + tick + i * tick / 2, 2, rss_kb=1.0) for i in range(1, 40)])
    return transitions(core.drain())


def test_a_young_process_comes_of_age_at_the_tick_its_window_first_reads_a_value() -> None:
    """Tick times and window edges are sums of floats (0.1 * 24 + 0.7 is more than
    0.1 * 31, whose window of 0.7 s reaches back to 0.1 * 24): the tick found is the
    first one at which the window itself has a value, neither earlier nor later."""
    for tick, k, window in ((0.1, 24, "0.7s"), (0.1, 6, "0.3s"), (0.1, 12, "0.6s"),
                            (0.5, 1, "5s")):
        expected = _reloaded(tick, k, window, everyone=True)
        assert len(expected) == 1
        assert _reloaded(tick, k, window, everyone=False) == expected


def test_a_young_process_observed_at_every_tick_waits_once_in_the_heap() -> None:
    """Observed again, it is hot for that tick and young after it: its age is the same,
    so the heap keeps its one entry rather than one per observation."""
    core = Core(compile_text("rule busy {\n    when avg(cpu_pct, 1m) > 95\n}\n"), 0.5)
    core.feed([fork(0.0, 2, 1), fork(0.0, 3, 1)]
              + [sample(s / 2, pid, cpu_pct=float(s % 7)) for s in range(60) for pid in (2, 3)])
    moving = core.evaluator.moving
    assert set(moving.young["cpu_pct"]) == {core.table.procs[2], core.table.procs[3]}
    assert len(moving.ages) == 2


def _growing(everyone: bool) -> list[tuple[object, ...]]:
    """pid 2's memory grows each second from 26.742816 s; ticks from 0.242816 s."""
    core = Core(compile_text("rule grows {\n    when delta(rss_mb, 30s) > 1\n}\n"), 0.5)
    for state in core.evaluator.rules:
        state.every_tick = everyone  # the reference: judged at every tick
    core.feed([fork(0.242816, 2, 1)]
              + [sample(round(26.742816 + s, 6), 2, rss_kb=100_000.0 + 6144 * s)
                 for s in range(40)])
    return transitions(core.drain())


def test_a_window_judged_a_tick_after_its_wake_up_by_float_rounding() -> None:
    """The wake-up at 26.742816 + 30 falls at the tick 56.742816, where the window
    (56.742816 - 30 < 26.742816) has no value yet; it has one at the next tick, when
    nothing of the process is observed: it is judged then all the same."""
    expected = _growing(everyone=True)
    assert expected[0] == (57.242816, "grows", "firing", 2)
    assert _growing(everyone=False) == expected
