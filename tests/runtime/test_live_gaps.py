"""LiveEngine across a gap in time (a suspend, a paused VM, a clock step), on a fake clock."""

from __future__ import annotations

from engine_support import fork, proc, sample, system, transitions
from hypothesis import given
from hypothesis import strategies as st

from linnix.engine import trace as t
from linnix.engine.core import Core, Output
from linnix.language.pipeline import compile_text
from linnix.procfs import Clock
from linnix.runtime.live import LiveEngine

BUSY = "rule busy: cpu_pct > 50 for 5s\n"


class FakeClock(Clock):
    def __init__(self, now: float = 0.0) -> None:
        super().__init__(origin=0.0)
        self.at = now

    def now(self) -> float:
        return self.at


class Live:
    """A live engine on a fake clock, with what it produced and what it said."""

    def __init__(self, rules: str = BUSY, tick: float = 0.5) -> None:
        self.out: list[Output] = []
        self.said: list[str] = []
        self.clock = FakeClock()
        self.engine = LiveEngine(Core(compile_text(rules), tick), self.clock, self.out.extend,
                                 say=self.said.append)

    def at(self, now: float) -> Live:
        self.clock.at = now
        return self

    def tick(self, now: float) -> None:
        self.at(now).engine.tick()

    def tick_until(self, end: float) -> None:
        """Tick as the ticker does, every half second of the clock up to ``end``."""
        now = self.clock.at
        while now < end:
            now = min(end, now + 0.5)
            self.tick(now)

    def feed(self, now: float, *events: t.Event) -> None:
        self.at(now).engine.feed(list(events))

    @property
    def ticks(self) -> int:
        return self.engine.core.ticks


def pending_at_10_5() -> Live:
    """Process 100 busy since 10.2: pending from the tick at 10.5, due to fire at 15.5."""
    live = Live()
    live.feed(10.3, proc(10.0, 100, 1, "burner", start=9.0), system(10.2, cpu_pct=90.0),
              sample(10.2, 100, cpu_pct=90.0))
    live.tick(11.0)
    assert transitions(live.out) == [(10.5, "busy", "pending", 100)]
    return live


def test_a_jump_skips_the_missed_ticks_and_completes_no_for() -> None:
    live = pending_at_10_5()
    ticks = live.ticks
    live.tick(3610.0)  # an hour of suspend: 7,200 ticks were due
    assert live.ticks == ticks  # none of them ran
    assert live.engine.core.next_tick == 3610.0  # the schedule resumes from now, on its grid
    assert transitions(live.out) == [(10.5, "busy", "pending", 100)]  # no firing
    assert live.engine.degraded and live.engine.gaps == 1
    assert live.said == [
        "the clock jumped 3,599s past the next tick (a suspend, a paused VM or a clock step): "
        "7,198 missed tick(s) skipped; rules wait for fresh samples and no action runs by "
        "itself until they come"]


def test_until_fresh_samples_come_no_tick_runs_and_it_is_said_once() -> None:
    live = pending_at_10_5()
    live.tick(3610.0)
    ticks = live.ticks
    live.feed(3610.5, fork(3610.4, 101, 100, "child"))  # events are applied ...
    live.tick(3611.0)
    live.tick(3612.0)
    assert live.ticks == ticks  # ... but no tick judges the old samples
    assert 101 in live.engine.core.table.procs
    assert live.engine.degraded and len(live.said) == 1


def test_after_fresh_samples_a_for_counts_from_them() -> None:
    live = pending_at_10_5()
    live.tick(3610.0)
    live.feed(3611.3, system(3611.2, cpu_pct=90.0), sample(3611.2, 100, cpu_pct=90.0))
    assert not live.engine.degraded
    live.tick_until(3616.0)  # ticks up to 3615.5: the condition held 4.3s of fresh time
    assert transitions(live.out) == [(10.5, "busy", "pending", 100)]
    live.tick_until(3616.6)
    assert transitions(live.out)[1:] == [(3616.5, "busy", "firing", 100)]
    assert len(live.said) == 1


def test_fresh_samples_that_clear_the_condition_end_the_pending_instance() -> None:
    live = pending_at_10_5()
    live.tick(3610.0)
    live.feed(3611.3, system(3611.2, cpu_pct=5.0), sample(3611.2, 100, cpu_pct=5.0))
    live.tick_until(3630.0)
    assert transitions(live.out) == [(10.5, "busy", "pending", 100)]
    assert live.engine.core.evaluator.rules[0].counts() == {"pending": 0, "firing": 0}


def test_a_sample_taken_before_the_gap_is_not_fresh() -> None:
    live = pending_at_10_5()
    live.tick(3610.0)
    live.feed(3610.1, system(10.8, cpu_pct=90.0), sample(10.8, 100, cpu_pct=90.0))
    assert live.engine.degraded  # delivered late, stamped before the gap


def test_a_batch_can_be_the_first_to_see_the_gap() -> None:
    live = pending_at_10_5()
    ticks = live.ticks
    live.feed(3610.1, fork(3610.05, 101, 100, "child"))
    assert live.ticks == ticks and live.engine.degraded
    assert live.engine.core.table.procs[101].start == 3610.05
    assert transitions(live.out) == [(10.5, "busy", "pending", 100)]


def test_without_fresh_samples_evaluation_resumes_after_a_while() -> None:
    live = pending_at_10_5()
    live.engine.fresh_within = 10.0
    live.tick(3610.0)
    live.tick(3619.9)
    assert live.engine.degraded
    live.tick(3620.1)
    assert not live.engine.degraded
    assert live.said[1:] == ["no fresh sample 10s after the gap; evaluating again on what "
                             "there is"]
    live.tick_until(3626.0)  # the 'for' counts again from 3620.05: it fires 5s later
    assert transitions(live.out)[1:] == [(3625.5, "busy", "firing", 100)]


def test_a_late_tick_short_of_a_gap_runs_every_tick_as_before() -> None:
    live = pending_at_10_5()
    live.tick(15.9)  # 4.85s late: a busy machine, not a gap
    assert transitions(live.out)[1:] == [(15.5, "busy", "firing", 100)]
    assert not live.engine.degraded and live.said == []


def test_a_firing_instance_waiting_to_clear_counts_again_after_the_gap() -> None:
    live = Live("rule busy { when cpu_pct > 50 for 1s\n keep_firing_for 5s }\n")
    live.feed(10.3, proc(10.0, 100, 1, "burner", start=9.0), sample(10.2, 100, cpu_pct=90.0))
    live.tick_until(12.0)
    live.feed(12.2, system(12.1, cpu_pct=1.0), sample(12.1, 100, cpu_pct=1.0))
    live.tick_until(13.0)  # clearing since the tick at 12.5; would resolve at 17.5
    live.tick(3610.0)
    live.feed(3611.3, system(3611.2, cpu_pct=1.0), sample(3611.2, 100, cpu_pct=1.0))
    live.tick_until(3616.0)
    assert [row[2] for row in transitions(live.out)] == ["pending", "firing"]
    live.tick_until(3616.6)
    assert transitions(live.out)[2:] == [(3616.5, "busy", "resolved", 100, "cleared")]


@given(first=st.floats(0.0, 1e6), tick=st.sampled_from([0.1, 0.25, 0.5, 1.0, 2.0, 10.0]),
       away=st.floats(30.0, 1e7))
def test_after_any_gap_the_next_tick_is_the_first_of_the_grid_after_now(
        first: float, tick: float, away: float) -> None:
    live = Live(tick=tick)
    live.feed(first, proc(first, 100, 1, "p", start=0.0))
    live.tick(first + tick + live.engine.delay)  # two ticks ran
    ticks = live.ticks
    live.tick(first + tick + away + live.engine.delay)
    core, now = live.engine.core, live.clock.at - live.engine.delay  # the engine's "now"
    assert live.ticks == ticks and live.engine.degraded
    assert core.next_tick > now >= core.next_tick - tick - 1e-6 * max(1.0, now)
    k = round((core.next_tick - first) / tick)
    assert abs(core.next_tick - (first + k * tick)) <= 1e-9 * max(1.0, now)
