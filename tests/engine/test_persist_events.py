"""Event rules' flood control across a restart: cooldown keys and ``max_rate`` windows are
saved with the rules' state and restored as deadlines, on virtual time.

As in test_persist.py, the old engine's time 0 is Unix time ``WALL`` and boot time
``BOOT``; a new engine starts ``down`` seconds after the old one stopped.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from engine_support import alerts, core_for, execve, proc
from hypothesis import given
from hypothesis import strategies as st

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.engine.persist import Clocks, Restored, SnapshotError, load, restore, save

WALL, BOOT = 1_700_000_000.0, 5_000.0
OLD = Clocks(WALL, BOOT, "boot-1")
BASE: list[t.Event] = [proc(0.0, 1, 0, "init", exe="/sbin/init", start=0.0),
                       proc(0.0, 100, 1, "sh", exe="/bin/sh", start=0.0)]
FLOOD = ('rule tmp_exec {\n on exec\n when exe startswith "/tmp/"\n cooldown 1h by exe\n'
         ' max_rate 1000/s\n}\n')


def run_of(*exes: tuple[float, str]) -> list[t.Event]:
    """Execs of pid 100, each at its time with its program."""
    return [execve(ts, 100, exe.rsplit("/", 1)[-1], exe=exe) for ts, exe in exes]


def stopped(rules: str, events: Sequence[t.Event], at: float) -> tuple[bytes, Core]:
    core = core_for(rules)
    core.feed([*BASE, *events])
    core.run_until(at)
    return save(core.evaluator, OLD, at, core.events), core


def restarted(rules: str, data: bytes, stopped_at: float, down: float) -> tuple[Core, Restored]:
    later = stopped_at + down
    core = core_for(rules)
    core.start(0.0)
    core.feed(BASE)
    return core, restore(core.evaluator, core.table, load(data),
                         Clocks(WALL + later, BOOT + later, "boot-1"), 0.0, events=core.events)


def fired(core: Core, events: Sequence[t.Event]) -> list[tuple[float, str | None]]:
    core.feed(list(events))
    return [(a.ts, a.values.get("exe") if a.values else None) for a in alerts(core.drain())]


def test_a_flood_held_back_before_a_restart_stays_held_back_after_it() -> None:
    data, old = stopped(FLOOD, run_of((1.0, "/tmp/x"), (2.0, "/tmp/x")), 3.0)
    assert dict(old.events.states[0].suppressed) == {"cooldown": 1}
    core, done = restarted(FLOOD, data, 3.0, 10.0)
    assert done.counts["event_cooldowns"] == 1
    assert [ts for ts, _ in fired(core, run_of((0.5, "/tmp/x"), (0.6, "/tmp/y")))] == [0.6]
    assert dict(core.events.states[0].suppressed) == {"cooldown": 1}  # /tmp/x, still cooling


def test_a_cooldown_that_ran_out_while_the_agent_was_down_is_dropped() -> None:
    rule = FLOOD.replace("cooldown 1h", "cooldown 5s")
    data, _ = stopped(rule, run_of((1.0, "/tmp/x")), 3.0)  # held until 6; back at 13
    core, done = restarted(rule, data, 3.0, 10.0)
    assert (done.counts["event_cooldowns"], core.events.states[0].last) == (0, {})
    assert len(fired(core, run_of((0.5, "/tmp/x")))) == 1


def test_a_cooldown_resumes_as_a_deadline() -> None:
    rule = FLOOD.replace("cooldown 1h", "cooldown 60s")
    data, _ = stopped(rule, run_of((1.0, "/tmp/x")), 3.0)  # held until old 61 = new 48
    core, _ = restarted(rule, data, 3.0, 10.0)
    assert [ts for ts, _ in fired(core, run_of((47.5, "/tmp/x"), (48.5, "/tmp/x")))] == [48.5]


def test_alerts_within_the_max_rate_span_still_count_after_a_restart() -> None:
    rule = 'rule r {\n on exec\n when exe startswith "/tmp/"\n max_rate 2/m\n}\n'
    data, _ = stopped(rule, run_of((1.0, "/tmp/a"), (2.0, "/tmp/b")), 3.0)
    core, done = restarted(rule, data, 3.0, 10.0)  # they count until old 61, 62: new 48, 49
    assert done.counts["event_rate"] == 2
    got = fired(core, run_of((0.5, "/tmp/c"), (48.5, "/tmp/d"), (48.6, "/tmp/e")))
    assert [ts for ts, _ in got] == [48.5]
    assert dict(core.events.states[0].suppressed) == {"max_rate": 2}


def test_an_event_rule_whose_definition_changed_starts_fresh() -> None:
    data, _ = stopped(FLOOD, run_of((1.0, "/tmp/x")), 3.0)
    changed = FLOOD.replace("by exe", "by comm")
    core, done = restarted(changed, data, 3.0, 1.0)
    assert done.fresh == ["tmp_exec"] and done.counts["event_cooldowns"] == 0
    assert len(fired(core, run_of((0.5, "/tmp/x")))) == 1


def test_keys_seen_since_the_start_stay_the_newest() -> None:
    data, _ = stopped(FLOOD, run_of((1.0, "/tmp/x"), (2.0, "/tmp/y")), 3.0)
    core = core_for(FLOOD)
    core.start(0.0)
    core.feed([*BASE, *run_of((0.1, "/tmp/y"))])  # fired again before the restore
    restore(core.evaluator, core.table, load(data), Clocks(WALL + 4.0, BOOT + 4.0, "boot-1"),
            0.2, events=core.events)
    assert list(core.events.states[0].last.items()) == [
        (("/tmp/x",), -3.0), (("/tmp/y",), 0.1)]


def test_a_snapshot_without_event_rules_is_as_it_was() -> None:
    data, _ = stopped("rule r: host_cpu_pct > 50\n", [], 1.0)
    assert b"events" not in data


def test_event_state_restores_to_the_same_snapshot() -> None:
    data, _ = stopped(FLOOD, run_of((1.0, "/tmp/x"), (2.0, "/tmp/y")), 3.0)
    core, _ = restarted(FLOOD, data, 3.0, 0.0)
    again = save(core.evaluator, Clocks(WALL + 3.0, BOOT + 3.0, "boot-1"), 0.0, core.events)
    assert msgspec.json.decode(again) == msgspec.json.decode(data)


# ---- what cannot be restored --------------------------------------------------------------

SAVED = msgspec.json.decode(stopped(FLOOD, run_of((1.0, "/tmp/x"), (2.0, "/tmp/y")), 3.0)[0])


def _mutations() -> st.SearchStrategy[object]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@given(st.sampled_from(["name", "digest", "cooldowns", "recent"]), _mutations())
def test_an_event_rule_with_any_field_changed_restores_or_is_refused(field: str,
                                                                     value: object) -> None:
    events = [{**SAVED["events"][0], field: value}]
    _restore_or_refuse(msgspec.json.encode({**SAVED, "events": events}))


@given(st.sampled_from(["key", "last"]), _mutations())
def test_a_cooldown_with_any_field_changed_restores_or_is_refused(field: str,
                                                                  value: object) -> None:
    saved = SAVED["events"][0]
    cooldowns = [{**saved["cooldowns"][0], field: value}]
    _restore_or_refuse(msgspec.json.encode({**SAVED, "events": [{**saved,
                                                                 "cooldowns": cooldowns}]}))


def _restore_or_refuse(data: bytes) -> None:
    core = core_for(FLOOD)
    core.start(0.0)
    core.feed(BASE)
    try:
        snap = load(data)
    except SnapshotError:
        return
    restore(core.evaluator, core.table, snap, Clocks(WALL + 4.0, BOOT + 4.0, "boot-1"), 0.0,
            events=core.events)
    core.feed(run_of((0.5, "/tmp/x"), (0.6, "/tmp/z")))  # and the engine runs on


def test_a_key_a_snapshot_could_not_load_again_is_left_out_not_the_snapshot() -> None:
    _, core = stopped(FLOOD, run_of((1.0, "/tmp/x")), 3.0)
    core.events.states[0].last[(True,)] = 2.0  # no field is a bool: never loadable as one
    core.events.states[0].last[("x" * 5000,)] = 2.0  # longer than any text is kept
    snap = load(save(core.evaluator, OLD, 3.0, core.events))
    assert [c.key for c in snap.events[0].cooldowns] == [["/tmp/x"]]
