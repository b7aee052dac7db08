"""A firing instance's trail: its values while it fires, one point a second and then
thinned, carried by its resolved alert; the same whether quiet ticks are skipped or not."""

from __future__ import annotations

from collections.abc import Sequence

from engine_support import alerts, sample, system
from hypothesis import given
from hypothesis import strategies as st

from linnix.engine import trace as t
from linnix.engine.core import Core, Output
from linnix.engine.persist import Clocks, load, restore, save
from linnix.engine.trail import TRAIL_EVERY_S, TRAIL_MAX, Trail, firing_trails, thin
from linnix.language.pipeline import compile_text

HOST = "rule r {\n    when host_cpu_pct > 50 for 1s\n}\n"
PROC = "rule p {\n    when cpu_pct > 50\n}\n"


def cpu(*points: tuple[float, float]) -> list[t.Event]:
    return [system(ts, cpu_pct=value) for ts, value in points]


def replay(rules: str, events: Sequence[t.Event], *, until: float, history: bool = True,
           skip: bool = True, trails: bool = True) -> tuple[Core, list[Output]]:
    core = Core(compile_text(rules), 0.5, history=history, skip_idle=skip, trails=trails)
    core.feed(list(events))
    core.finish()
    core.run_until(until)
    return core, core.drain()


@given(st.lists(st.integers(), max_size=600), st.integers(3, 50))
def test_thinning_keeps_the_first_and_the_last_in_order(points: list[int], limit: int) -> None:
    kept = thin(list(enumerate(points)), limit)
    assert len(kept) <= limit
    assert kept == sorted(kept) and set(kept) <= set(enumerate(points))
    if points:
        assert kept[0] == (0, points[0]) and kept[-1] == (len(points) - 1, points[-1])
    if len(points) <= limit:
        assert kept == list(enumerate(points))


def test_a_trail_takes_a_point_a_second_then_thins_and_spaces_them_out() -> None:
    trail = Trail(10.0, {"v": 0})
    now = 10.0
    while len(trail.points) < TRAIL_MAX:
        now += 0.5
        trail.record(now, lambda: {"v": 1})
    assert trail.every == TRAIL_EVERY_S
    assert [ts for ts, _ in trail.points[:3]] == [10.0, 11.0, 12.0]
    assert trail.points[-1][0] == 10.0 + (TRAIL_MAX - 1) * TRAIL_EVERY_S
    while trail.every == TRAIL_EVERY_S:
        now += 0.5
        trail.record(now, lambda: {"v": 1})
    # one point too many: every other one went, the first and the latest stayed
    assert len(trail.points) == TRAIL_MAX // 2 + 1 and trail.every == 2 * TRAIL_EVERY_S
    assert trail.points[0] == (10.0, {"v": 0}) and trail.points[-1][0] == now
    assert trail.due == now + 2 * TRAIL_EVERY_S
    for _ in range(20_000):  # hours more: the trail stays bounded and covers it all
        now += 0.5
        trail.record(now, lambda: {"v": 1})
    assert len(trail.points) <= TRAIL_MAX and trail.points[0][0] == 10.0
    assert now - trail.points[-1][0] < trail.every
    ended = trail.ended(now + 0.5, {"v": "last"})
    assert ended[-1] == (now + 0.5, {"v": "last"}) and ended[:-1] == trail.points


def test_the_resolved_alert_carries_the_values_while_it_fired() -> None:
    events = cpu((0.0, 90.0), (2.0, 95.0), (3.0, 97.0), (4.0, 10.0))
    _, out = replay(HOST, events, until=5.0)
    pending, firing, resolved = alerts(out)
    assert (firing.state, firing.ts, resolved.state, resolved.ts) == ("firing", 1.0,
                                                                       "resolved", 4.0)
    assert firing.history == [(0.0, {"host_cpu_pct": 90.0}), (0.5, {"host_cpu_pct": 90.0}),
                              (1.0, {"host_cpu_pct": 90.0})]  # as before: up to the firing
    assert firing.trail is None and pending.trail is None
    assert resolved.trail == [(1.0, {"host_cpu_pct": 90.0}), (2.0, {"host_cpu_pct": 95.0}),
                              (3.0, {"host_cpu_pct": 97.0}), (4.0, {"host_cpu_pct": 10.0})]


def test_no_trail_unless_asked_for_with_the_history() -> None:
    """replay --analyze keeps the history, not the trails (its incidents do not)."""
    events = cpu((0.0, 90.0), (2.0, 95.0), (4.0, 10.0))
    for history, trails in ((False, False), (False, True), (True, False)):
        core, out = replay(HOST, events, until=5.0, history=history, trails=trails)
        assert [a.trail for a in alerts(out)] == [None, None, None]
        assert [a.history is not None for a in alerts(out)] == [False, history, False]
        assert all(i.trail is None for s in core.evaluator.rules
                   for i in s.instances.values())


def test_an_exited_process_resolves_with_its_trail() -> None:
    events: list[t.Event] = [t.Proc(ts=0.0, pid=7, ppid=1, comm="hot", start=0.0),
                             sample(0.0, 7, cpu_pct=80.0), sample(1.0, 7, cpu_pct=85.0),
                             t.Exit(ts=1.7, pid=7)]
    _, out = replay(PROC, events, until=3.0)
    _, resolved = alerts(out)
    assert resolved.reason == "exited"
    assert resolved.trail == [(0.0, {"cpu_pct": 80.0}),
                              (1.0, {"cpu_pct": 85.0}),
                              (2.0, {"cpu_pct": 85.0})]


def test_the_trails_of_firing_instances_so_far_by_rule_pid_and_start() -> None:
    events: list[t.Event] = [t.Proc(ts=0.0, pid=7, ppid=1, comm="hot", start=0.25),
                             sample(0.0, 7, cpu_pct=80.0), *cpu((0.0, 90.0), (3.2, 90.0))]
    core, _ = replay(HOST + PROC, events, until=3.0)
    trails = firing_trails(core.evaluator.rules)
    assert trails == {
        ("r", None, None, None): [(1.0, {"host_cpu_pct": 90.0}),
                                  (2.0, {"host_cpu_pct": 90.0}),
                                  (3.0, {"host_cpu_pct": 90.0})],
        ("p", 7, 0.25, None): [(0.0, {"cpu_pct": 80.0}),
                               (1.0, {"cpu_pct": 80.0}),
                               (2.0, {"cpu_pct": 80.0}),
                               (3.0, {"cpu_pct": 80.0})]}
    assert core.evaluator.trails_due == 4.0
    trails[("r", None, None, None)].clear()  # a copy: the instance's trail is its own
    assert len(firing_trails(core.evaluator.rules)[("r", None, None, None)]) == 3


def test_a_firing_instance_restored_by_a_restart_begins_its_trail_at_once() -> None:
    """Its trail is begun again after a restart (the store keeps what was saved before
    it), at the first tick, which idle skipping does not skip."""
    old = Core(compile_text(HOST), 0.5, history=True, trails=True)
    old.feed(cpu((0.0, 90.0)))
    old.run_until(3.0)
    data = save(old.evaluator, Clocks(1e9, 5000.0, "b"), 3.0)
    for skip in (True, False):
        core = Core(compile_text(HOST), 0.5, history=True, trails=True, skip_idle=skip)
        core.start(0.0)
        restored = restore(core.evaluator, core.table, load(data), Clocks(1e9 + 13, 5013.0, "b"),
                           0.0)
        assert len(restored.firing) == 1
        core.feed(cpu((0.0, 95.0), (4.2, 96.0), (7.0, 10.0)))
        core.run_until(8.0)
        (resolved,) = alerts(core.drain())
        assert resolved.trail == [(0.0, {"host_cpu_pct": 95.0}), (1.0, {"host_cpu_pct": 95.0}),
                                  (2.0, {"host_cpu_pct": 95.0}), (3.0, {"host_cpu_pct": 95.0}),
                                  (4.0, {"host_cpu_pct": 95.0}), (5.0, {"host_cpu_pct": 96.0}),
                                  (6.0, {"host_cpu_pct": 96.0}), (7.0, {"host_cpu_pct": 10.0})]
