"""Rule state across a restart: snapshot → new engine → restore, on virtual time.

The old engine's time 0 is Unix time ``WALL`` and boot-time ``BOOT``; a new
engine starts ``down`` seconds after the old one stopped, in the same boot
(its origins both move on by the time that passed) unless a test says not.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from engine_support import core_for, fork, proc, proposals, sample, system, transitions
from hypothesis import given
from hypothesis import strategies as st

from linnix.engine import trace as t
from linnix.engine.core import Core, Output
from linnix.engine.persist import (
    OUTAGE_TOLERANCE_S,
    Clocks,
    Restored,
    SnapshotError,
    load,
    restore,
    save,
)

WALL, BOOT = 1_700_000_000.0, 5_000.0
OLD = Clocks(WALL, BOOT, "boot-1")


def cpu(*points: tuple[float, float]) -> list[t.Event]:
    return [system(ts, cpu_pct=value) for ts, value in points]


def host_rule(clauses: str) -> str:
    return "rule r {\n" + clauses + "\n}\n"


def stopped(rules: str, events: Sequence[t.Event], at: float) -> tuple[bytes, list[Output]]:
    """Run an engine over ``events`` up to ``at``; its snapshot then, and what it produced."""
    core = core_for(rules)
    core.feed(list(events))
    core.run_until(at)
    return save(core.evaluator, OLD, at), core.drain()


def new_clocks(stopped_at: float, down: float, boot_id: str = "boot-1") -> Clocks:
    """A daemon started ``down`` seconds after the old one stopped at ``stopped_at``."""
    later = stopped_at + down
    return Clocks(WALL + later, BOOT + later, boot_id)


def restarted(rules: str, data: bytes, clocks: Clocks, scan: Sequence[t.Event] = (),
              settle: float = 0.0) -> tuple[Core, Restored]:
    """A new engine: the start-up scan at 0, then the snapshot restored (before a tick)."""
    core = core_for(rules)
    core.start(0.0)
    core.feed(list(scan))
    return core, restore(core.evaluator, core.table, load(data), clocks, 0.0, settle)


def rescanned(old: t.Event, clocks: Clocks) -> t.Proc:
    """The start-up scan's record of a process the old engine knew (its start moved to the
    new clock, through the boot-time clock)."""
    assert isinstance(old, t.Fork | t.Proc)
    start = old.ts if isinstance(old, t.Fork) else old.start
    assert start is not None
    return proc(0.0, old.pid, old.ppid, old.comm, start=round(start + BOOT - clocks.boot, 3))


# ---- firing ----------------------------------------------------------------------------

def test_a_firing_host_instance_stays_firing_and_resolves_once() -> None:
    rule = host_rule("when host_cpu_pct > 50\naction kill(target = top(cpu_pct))")
    data, before = stopped(rule, cpu((0.0, 90.0)), 2.0)
    assert transitions(before) == [(0.0, "r", "firing", None)]
    clocks = new_clocks(2.0, 30.0)
    core, done = restarted(rule, data, clocks, settle=1.0)
    ((alert, start),) = done.firing
    assert (alert.rule, alert.state, alert.ts, start) == ("r", "firing", -32.0, None)
    core.feed(cpu((0.2, 95.0), (3.0, 10.0)))
    core.run_until(4.0)
    out = core.drain()
    assert transitions(out) == [(3.0, "r", "resolved", None, "cleared")]  # no firing again
    assert proposals(out) == []


def test_a_firing_process_instance_stays_firing_and_its_action_is_not_proposed_again() -> None:
    rule = "rule r {\n    when cpu_pct > 50\n    action kill\n}\n"
    born = fork(0.5, 300, 1, "hog")
    data, before = stopped(rule, [born, sample(1.0, 300, cpu_pct=90.0)], 3.0)
    assert transitions(before) == [(1.0, "r", "firing", 300)]
    assert len(proposals(before)) == 1
    clocks = new_clocks(3.0, 10.0)
    scan = rescanned(born, clocks)
    core, done = restarted(rule, data, clocks, [scan], settle=2.0)
    ((alert, start),) = done.firing
    assert (alert.pid, alert.start, start) == (300, scan.start, 0.5)  # the incident's start
    core.feed([sample(1.0, 300, cpu_pct=91.0), sample(5.0, 300, cpu_pct=1.0)])
    core.run_until(6.0)
    out = core.drain()
    assert transitions(out) == [(5.0, "r", "resolved", 300, "cleared")]
    assert proposals(out) == []


def test_a_restored_instance_waits_for_samples_before_it_clears() -> None:
    rule = "rule r: cpu_pct > 50\n"
    born = fork(0.5, 300, 1, "hog")
    data, _ = stopped(rule, [born, sample(1.0, 300, cpu_pct=90.0)], 3.0)
    clocks = new_clocks(3.0, 10.0)
    core, _ = restarted(rule, data, clocks, [rescanned(born, clocks)], settle=2.0)
    core.run_until(1.5)  # no sample yet: cpu_pct is unknown, the condition false
    assert core.drain() == []
    core.feed([sample(1.8, 300, cpu_pct=95.0)])
    core.run_until(4.0)
    assert core.drain() == []  # it held until its sample came, and it still holds


def test_without_fresh_samples_a_restored_instance_clears_when_it_has_settled() -> None:
    rule = "rule r: cpu_pct > 50\n"
    born = fork(0.5, 300, 1, "hog")
    data, _ = stopped(rule, [born, sample(1.0, 300, cpu_pct=90.0)], 3.0)
    clocks = new_clocks(3.0, 10.0)
    core, _ = restarted(rule, data, clocks, [rescanned(born, clocks)], settle=2.0)
    core.feed([t.Lost(ts=3.0, count=0)])
    core.run_until(3.0)
    assert transitions(core.drain()) == [(2.0, "r", "resolved", 300, "cleared")]


def test_a_firing_instance_whose_process_is_gone_resolves_as_exited() -> None:
    rule = "rule r: cpu_pct > 50\n"
    born = fork(0.5, 300, 1, "hog")
    data, _ = stopped(rule, [born, sample(1.0, 300, cpu_pct=90.0)], 3.0)
    core, done = restarted(rule, data, new_clocks(3.0, 10.0))
    ((firing, start),) = done.firing
    (ended,) = done.ended
    assert (firing.pid, firing.comm, firing.start, start) == (300, "hog", 0.5, 0.5)
    assert (ended.state, ended.reason, ended.pid, ended.start) == ("resolved", "exited", 300, 0.5)
    assert done.counts["gone"] == 1
    assert core.evaluator.rules[0].instances == {}


def test_a_restored_instance_keeps_its_labels_until_it_resolves() -> None:
    rule = 'rule r {\n    when cpu_pct > 50\n    labels { program = "{comm}", team = "ops" }\n}\n'
    born = fork(0.5, 300, 1, "hog")
    data, before = stopped(rule, [born, sample(1.0, 300, cpu_pct=90.0)], 3.0)
    assert [a.labels for a in before] == [{"program": "hog", "team": "ops"}]
    clocks = new_clocks(3.0, 10.0)
    core, done = restarted(rule, data, clocks, [rescanned(born, clocks)], settle=2.0)
    ((alert, _),) = done.firing
    assert alert.labels == {"program": "hog", "team": "ops"}
    core.feed([t.Exec(ts=1.0, pid=300, comm="other"), sample(1.0, 300, cpu_pct=91.0),
               sample(5.0, 300, cpu_pct=1.0)])
    core.run_until(6.0)
    (resolved,) = core.drain()
    assert resolved.labels == {"program": "hog", "team": "ops"}  # as its firing alert said


def test_a_firing_instance_whose_process_is_gone_resolves_with_its_labels() -> None:
    rule = 'rule r {\n    when cpu_pct > 50\n    labels { program = "{comm}" }\n}\n'
    data, _ = stopped(rule, [fork(0.5, 300, 1, "hog"), sample(1.0, 300, cpu_pct=90.0)], 3.0)
    _, done = restarted(rule, data, new_clocks(3.0, 10.0))
    ((firing, _),) = done.firing
    (ended,) = done.ended
    assert firing.labels == ended.labels == {"program": "hog"}


def test_a_reused_pid_is_not_the_instance_that_fired() -> None:
    rule = "rule r: cpu_pct > 50\n"
    born = fork(0.5, 300, 1, "hog")
    data, _ = stopped(rule, [born, sample(1.0, 300, cpu_pct=90.0)], 3.0)
    clocks = new_clocks(3.0, 10.0)
    reused = proc(0.0, 300, 1, "hog", start=-2.0)  # another process, started since
    _, done = restarted(rule, data, clocks, [reused])
    assert [a.state for a in done.ended] == ["resolved"]


def test_a_process_first_seen_after_it_started_is_still_the_one_that_fired() -> None:
    """A polled fork is stamped when it is seen, later than the start /proc gives: the
    process alive with that pid now, started before, held the pid then: it is the same."""
    rule = "rule r: cpu_pct > 50\n"
    born = fork(2.0, 300, 1, "hog")  # really started at 0.7
    data, _ = stopped(rule, [born, sample(2.0, 300, cpu_pct=90.0)], 3.0)
    clocks = new_clocks(3.0, 10.0)
    scan = proc(0.0, 300, 1, "hog", start=round(0.7 + BOOT - clocks.boot, 3))
    _, done = restarted(rule, data, clocks, [scan])
    assert (done.counts["firing"], done.ended) == (1, [])


def test_after_a_reboot_no_process_is_the_one_that_fired() -> None:
    rule = "rule r: cpu_pct > 50\n"
    born = fork(0.5, 300, 1, "hog")
    data, _ = stopped(rule, [born, sample(1.0, 300, cpu_pct=90.0)], 3.0)
    clocks = new_clocks(3.0, 10.0, boot_id="boot-2")
    _, done = restarted(rule, data, clocks, [rescanned(born, clocks)])
    assert done.counts["gone"] == 1


def test_a_rule_whose_definition_changed_starts_fresh() -> None:
    data, _ = stopped(host_rule("when host_cpu_pct > 50"), cpu((0.0, 90.0)), 2.0)
    changed = host_rule("when host_cpu_pct > 60")
    core, done = restarted(changed, data, new_clocks(2.0, 5.0))
    assert (done.fresh, done.firing) == (["r"], [])
    core.feed(cpu((0.1, 95.0)))
    core.run_until(1.0)
    assert transitions(core.drain()) == [(0.5, "r", "firing", None)]  # a new firing


def test_an_unchanged_rule_keeps_its_state_beside_a_changed_one() -> None:
    rules = host_rule("when host_cpu_pct > 50") + "rule s: host_cpu_pct > 40\n"
    data, _ = stopped(rules, cpu((0.0, 90.0)), 2.0)
    changed = host_rule("when host_cpu_pct > 50") + "rule s: host_cpu_pct > 45\n"
    _, done = restarted(changed, data, new_clocks(2.0, 5.0))
    assert done.fresh == ["s"]
    assert [a.rule for a, _ in done.firing] == ["r"]


def test_after_a_long_outage_pending_and_firing_state_is_not_restored() -> None:
    rule = host_rule("when host_cpu_pct > 50")
    data, _ = stopped(rule, cpu((0.0, 90.0)), 2.0)
    core, done = restarted(rule, data, new_clocks(2.0, OUTAGE_TOLERANCE_S + 1))
    assert (done.firing, done.counts["stale"]) == ([], 1)
    assert core.evaluator.rules[0].instances == {}


# ---- timers ----------------------------------------------------------------------------

def test_a_pending_timer_resumes_without_counting_the_outage() -> None:
    rule = host_rule("when host_cpu_pct > 50 for 10s")
    data, before = stopped(rule, cpu((0.0, 90.0)), 4.0)  # pending since 0: 6s to go
    assert transitions(before) == [(0.0, "r", "pending", None)]
    core, done = restarted(rule, data, new_clocks(4.0, 100.0), settle=1.0)
    assert done.counts["pending"] == 1
    core.feed(cpu((0.5, 90.0), (5.0, 90.0), (6.0, 90.0)))
    core.run_until(7.0)
    assert transitions(core.drain()) == [(6.0, "r", "firing", None)]  # no new pending


def test_a_resumed_pending_instance_ends_silently_when_its_condition_is_false() -> None:
    rule = host_rule("when host_cpu_pct > 50 for 10s")
    data, _ = stopped(rule, cpu((0.0, 90.0)), 4.0)
    core, _ = restarted(rule, data, new_clocks(4.0, 1.0), settle=1.0)
    core.feed(cpu((0.5, 10.0), (1.5, 90.0)))
    core.run_until(2.0)
    # the old instance ended when its sample said false (silently); a new one starts
    assert transitions(core.drain()) == [(1.5, "r", "pending", None)]


def test_a_clear_timer_resumes() -> None:
    rule = host_rule("when host_cpu_pct > 90\nclear when host_cpu_pct < 70 for 4s")
    data, _ = stopped(rule, cpu((0.0, 95.0), (1.0, 50.0)), 3.0)  # clearing since 1: 2s left
    core, _ = restarted(rule, data, new_clocks(3.0, 60.0))
    core.feed(cpu((0.0, 50.0), (3.0, 50.0)))
    core.run_until(3.0)
    assert transitions(core.drain()) == [(2.0, "r", "resolved", None, "cleared")]


def test_a_cooldown_resumes_as_a_deadline() -> None:
    rule = host_rule("when host_cpu_pct > 50\ncooldown 60s")
    data, _ = stopped(rule, cpu((0.0, 90.0), (1.0, 10.0)), 2.0)  # cooling until 61
    core, done = restarted(rule, data, new_clocks(2.0, 20.0))  # new 0 = old 22: until 39
    assert done.counts["cooling"] == 1
    core.feed(cpu((0.5, 90.0), (40.0, 90.0)))
    core.run_until(40.0)
    assert transitions(core.drain()) == [(39.0, "r", "firing", None)]


def test_a_cooldown_over_during_the_outage_is_forgotten() -> None:
    rule = host_rule("when host_cpu_pct > 50\ncooldown 5s")
    data, _ = stopped(rule, cpu((0.0, 90.0), (1.0, 10.0)), 2.0)
    core, done = restarted(rule, data, new_clocks(2.0, 20.0))
    assert done.counts["cooling"] == 0
    assert core.evaluator.rules[0].instances == {}


def test_a_cooldown_of_centuries_is_saved_as_a_time_a_snapshot_may_hold() -> None:
    rule = host_rule("when host_cpu_pct > 50\ncooldown 3000000h")
    data, _ = stopped(rule, cpu((0.0, 90.0), (1.0, 10.0)), 2.0)
    _, done = restarted(rule, data, new_clocks(2.0, 5.0))
    assert done.counts["cooling"] == 1


def test_a_rule_of_any_name_length_is_restored() -> None:
    rule = f"rule {'r' * 1024}: host_cpu_pct > 50\n"  # the longest name there is
    data, _ = stopped(rule, cpu((0.0, 90.0)), 2.0)
    _, done = restarted(rule, data, new_clocks(2.0, 5.0))
    assert done.counts["firing"] == 1


def test_a_snapshot_restores_to_the_same_snapshot() -> None:
    rules = (host_rule("when host_cpu_pct > 50 for 10s") + "rule f: host_cpu_pct > 40\n"
             "rule c {\n    when host_cpu_pct > 95\n    cooldown 1h\n}\n")
    data, _ = stopped(rules, cpu((0.0, 99.0), (1.0, 90.0)), 2.0)
    clocks = new_clocks(2.0, 0.0)
    core, _ = restarted(rules, data, clocks)
    again = save(core.evaluator, clocks, 0.0)
    assert msgspec.json.decode(again) == msgspec.json.decode(data)


# ---- what cannot be restored ------------------------------------------------------------

def test_foreign_data_is_refused_with_a_reason() -> None:
    for data, why in [(b"", "not a snapshot"), (b"{}", "not a snapshot"),
                      (b'{"version": 99, "saved_at": 1, "boot_id": null, "rules": []}',
                       "version 99"), (42, "a int, not a snapshot"),
                      (b"x" * (65 * 1024 * 1024), "larger than any snapshot")]:
        try:
            load(data)
        except SnapshotError as err:
            assert why in str(err)
        else:
            raise AssertionError(f"{data!r:.40} was taken for a snapshot")


SAVED = msgspec.json.decode(stopped(host_rule("when host_cpu_pct > 50"), cpu((0.0, 90.0)),
                                    2.0)[0])


def _mutations() -> st.SearchStrategy[object]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_snapshot_or_refused(data: bytes) -> None:
    _restore_or_refuse(data)


@given(st.sampled_from(["version", "saved_at", "boot_id", "rules"]), _mutations())
def test_a_snapshot_with_any_field_changed_restores_or_is_refused(field: str,
                                                                  value: object) -> None:
    _restore_or_refuse(msgspec.json.encode({**SAVED, field: value}))


@given(st.sampled_from(["state", "pid", "start", "start_boot", "comm", "since", "fired",
                        "clearing", "cooldown_until", "message"]), _mutations())
def test_an_instance_with_any_field_changed_restores_or_is_refused(field: str,
                                                                   value: object) -> None:
    inst = {**SAVED["rules"][0]["instances"][0], field: value}
    rules = [{**SAVED["rules"][0], "instances": [inst]}]
    _restore_or_refuse(msgspec.json.encode({**SAVED, "rules": rules}))


def _restore_or_refuse(data: bytes) -> None:
    rules = host_rule("when host_cpu_pct > 50") + "rule p: cpu_pct > 50\n"
    core = core_for(rules)
    core.start(0.0)
    core.feed([proc(0.0, 300, 1, "x", start=-1.0)])
    try:
        snap = load(data)
    except SnapshotError:
        return
    restore(core.evaluator, core.table, snap, new_clocks(2.0, 1.0), 0.0)
    core.feed(cpu((0.0, 90.0), (3.0, 10.0)))
    core.run_until(3.0)  # and the engine runs on
