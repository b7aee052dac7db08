"""Which processes the sampler reads at once: those events concern, those rules watch."""

from __future__ import annotations

import pytest

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import compile_text
from linnix.procfs import Clock
from linnix.runtime import wakes as wakes_module
from linnix.runtime.live import LiveEngine
from linnix.runtime.wakes import Wakes


class FixedClock(Clock):
    def __init__(self) -> None:
        super().__init__(origin=0.0)

    def now(self) -> float:
        return 0.0


SCAN = [t.Proc(ts=1.0, pid=1, ppid=0, comm="init", start=0.0),
        t.Proc(ts=1.0, pid=10, ppid=1, comm="sh", start=0.5),
        t.Proc(ts=1.0, pid=20, ppid=10, comm="job", start=0.6),
        t.Proc(ts=1.0, pid=30, ppid=1, comm="web", start=0.7)]


def live(rules: str = "rule r: cpu_pct > 50\n") -> tuple[LiveEngine, Wakes]:
    core = Core(compile_text(rules), 0.5)
    engine = LiveEngine(core, FixedClock(), lambda out: None)
    engine.feed(list(SCAN))
    engine.wakes = wakes = Wakes(core)
    return engine, wakes


def test_the_processes_events_concern_are_woken_each_round_afresh() -> None:
    engine, wakes = live()
    assert wakes.take() == set()  # the scan is read anyway: every process is new to it
    engine.feed([t.Sample(ts=2.0, pid=30, cpu_pct=1.0),  # a sample concerns nobody
                 t.Exit(ts=2.1, pid=20, code=0),  # gone: its parent reaps it
                 t.Fork(ts=2.2, pid=40, ppid=30, comm="web"),
                 t.Exec(ts=2.3, pid=40, comm="cgi")])
    assert 20 not in engine.core.table.procs  # applied after it was noted
    assert wakes.take() == {10, 30, 40}
    assert wakes.take() == set()
    engine.feed([t.Connect(ts=3.0, pid=30, family="inet", remote_addr="10.0.0.1",
                           remote_port=80),
                 t.Fork(ts=3.1, pid=50, ppid=1, comm="x"), t.Exit(ts=3.2, pid=50),
                 t.Exit(ts=3.3, pid=999)])  # unknown to the table: nobody
    assert wakes.take() == {1, 30}  # 50 was gone before the round: nothing to read


def test_the_exits_since_the_last_round_are_handed_to_the_sampler_once() -> None:
    engine, wakes = live()
    engine.feed([t.Fork(ts=2.0, pid=40, ppid=30, comm="web"), t.Exit(ts=2.1, pid=40),
                 t.Exit(ts=2.2, pid=20, code=0), t.Sample(ts=2.3, pid=30, cpu_pct=1.0)])
    assert wakes.take_ended() == {40, 20}  # the sampler forgets them (and what they used)
    assert wakes.take_ended() == set()


def test_every_process_a_rule_has_an_instance_of_is_woken() -> None:
    engine, wakes = live("rule r: cpu_pct > 50 for 10s\n")
    engine.feed([t.Sample(ts=2.0, pid=30, cpu_pct=90.0), t.Sample(ts=2.0, pid=20, cpu_pct=5.0)])
    engine.core.run_until(3.0)  # pending for 30
    assert wakes.take() == {30}
    assert wakes.take() == {30}  # for as long as the instance lasts
    engine.feed([t.Sample(ts=3.5, pid=30, cpu_pct=1.0)])
    engine.core.run_until(4.0)
    assert wakes.take() == set()


def test_past_the_bound_every_process_is_read_and_nothing_more_is_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wakes_module, "WOKEN_MAX", 4)
    engine, wakes = live()
    engine.feed([t.Fork(ts=2.0 + i / 100, pid=100 + i, ppid=1, comm="x") for i in range(3)])
    assert wakes.take() == {1, 100, 101, 102}  # four: at the bound
    engine.feed([t.Fork(ts=3.0 + i / 100, pid=200 + i, ppid=1, comm="x") for i in range(4)])
    assert wakes.woken == set() and wakes.everyone  # five: past it
    engine.feed([t.Fork(ts=4.0, pid=300, ppid=1, comm="x")])
    assert wakes.woken == set()  # not kept: every process is read anyway
    assert wakes.take() is None
    assert wakes.take() == set()


def test_the_sampler_is_told_what_the_engine_saw_only_when_it_paces() -> None:
    from linnix.runtime.sources.telemetry import Telemetry
    from linnix.runtime.wakes import wire

    class Quiet:
        def lost_event(self) -> None:
            return None

    engine, _ = live()
    engine.wakes = None
    plan = engine.core.plan
    every = Telemetry(Clock(), plan, Quiet(), 1.0)  # type: ignore[arg-type]
    assert wire(engine, every) is None and engine.wakes is None
    paced = Telemetry(Clock(), plan, Quiet(), 1.0, idle_max=8.0)  # type: ignore[arg-type]
    assert wire(engine, paced) is engine.wakes is not None
    engine.feed([t.Exec(ts=2.0, pid=30, comm="web2")])
    assert paced.wake() == {30}
    assert paced.wake() == set()
