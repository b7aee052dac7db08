"""Event rules in the engine (``linnix/engine/events.py``): judged at each matching event, at
its own time, never at ticks; the names of an exit; flood control with bounded key tables."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from engine_support import alerts, core_for, execve, exit_, fork, proc, proposals, run, sample

from linnix.engine import events as ev
from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import compile_text

BASE: list[t.Event] = [
    proc(0.0, 1, 0, "init", exe="/sbin/init", uid=0, start=0.0),
    proc(0.0, 100, 1, "nginx", exe="/usr/sbin/nginx", uid=33, start=0.0),
]


def test_an_exec_rule_fires_at_the_exec_not_at_a_tick() -> None:
    out = run('rule sh on exec: comm == "sh" and parent.comm == "nginx"',
              [*BASE, fork(1.2, 200, 100, "nginx"), execve(1.21, 200, "sh", argv=["sh", "-c"]),
               exit_(1.26, 200, code=0)], tick=10.0)
    (a,) = alerts(out)
    assert (a.ts, a.rule, a.state, a.trigger, a.pid, a.start) == (1.21, "sh", "firing", "exec",
                                                                  200, 1.2)
    assert a.values == {"comm": "sh", "parent.comm": "nginx"}
    assert a.to_json()["trigger"] == "exec"


def test_a_tick_rule_never_sees_a_process_that_lived_between_ticks() -> None:
    out = run('rule sh: comm == "sh"', [*BASE, fork(1.2, 200, 100, "nginx"),
                                        execve(1.21, 200, "sh"), exit_(1.26, 200, code=0)],
              tick=10.0)
    assert alerts(out) == []


def test_a_fork_rule_judges_the_child_and_its_forker() -> None:
    out = run('rule f on fork: parent.comm == "nginx"',
              [*BASE, fork(2.0, 200, 100, "nginx"), fork(3.0, 300, 1, "init")])
    assert [(a.ts, a.pid, a.trigger) for a in alerts(out)] == [(2.0, 200, "fork")]


@pytest.mark.parametrize(("code", "signal", "values"), [
    (0, None, (0, None, False, False)),
    (1, None, (1, None, False, True)),
    (None, 11, (None, "SIGSEGV", True, True)),
    (None, 13, (None, "SIGPIPE", False, False)),  # a pipeline's SIGPIPE is no crash
    (None, 9, (None, "SIGKILL", False, False)),
    (None, 6, (None, "SIGABRT", True, True)),
    (None, 40, (None, "SIGRTMIN+6", False, False)),
    (None, None, (None, None, False, False)),  # a trace that says nothing of it
])
def test_the_names_of_an_exit(code: int | None, signal: int | None,
                              values: tuple[object, ...]) -> None:
    rule = ('rule e on exit: lifetime_s >= 0 or exit_code == 0 or exit_signal == "" '
            "or crashed or failed")
    out = run(rule, [*BASE, fork(1.0, 200, 100, "nginx"), execve(1.5, 200, "w", exe="/w"),
                     exit_(3.25, 200, code=code, signal=signal)])
    (a,) = alerts(out)
    assert (a.ts, a.pid, a.comm, a.start, a.trigger) == (3.25, 200, "w", 1.0, "exit")
    got = a.values
    assert (got["exit_code"], got["exit_signal"], got["crashed"], got["failed"],
            got["lifetime_s"]) == (*values, 2.25)
    assert a.proc is not None and not a.proc.alive  # the process itself, gone


def test_an_exit_rule_sees_the_last_known_values_and_the_parent() -> None:
    out = run('rule e on exit: cpu_pct > 50 and parent.comm == "nginx"',
              [*BASE, fork(1.0, 200, 100, "nginx"), sample(2.0, 200, cpu_pct=90.0),
               exit_(2.5, 200, signal=11)])
    assert [(a.ts, a.pid) for a in alerts(out)] == [(2.5, 200)]


def test_an_exit_of_a_process_never_seen_is_not_judged() -> None:
    assert alerts(run("rule e on exit: not crashed", [*BASE, exit_(1.0, 999, code=0)])) == []


CRASH = """
rule crash_loop {
    on exit
    when crashed and lifetime_s < 10s
    cooldown 1m
}
"""


def crashes(times: list[float], exe: str = "/opt/w", first_pid: int = 200) -> list[t.Event]:
    out: list[t.Event] = []
    for i, ts in enumerate(times):
        pid = first_pid + i
        out += [fork(ts, pid, 1, "init"), execve(ts + 0.001, pid, "w", exe=exe),
                exit_(ts + 1.0, pid, signal=11)]
    return out


def test_a_cooldown_keeps_one_alert_per_exe_and_counts_the_rest() -> None:
    core = core_for(CRASH)
    core.feed([*BASE, *crashes([1.0, 20.0, 40.0]), *crashes([5.0], exe="/opt/other",
                                                            first_pid=300)])
    core.finish()
    fired = alerts(core.drain())
    assert [(a.ts, a.pid) for a in fired] == [(2.0, 200), (6.0, 300)]
    (state,) = core.events.states
    assert (state.matches, dict(state.suppressed), state.evicted) == (2, {"cooldown": 2}, 0)


def test_a_cooldown_ends() -> None:
    fired = alerts(run(CRASH, [*BASE, *crashes([1.0, 62.0])]))
    assert [a.ts for a in fired] == [2.0, 63.0]


def test_a_cooldown_key_names_its_fields_and_defaults_to_comm_without_an_exe() -> None:
    rule = """rule r {
        on exec
        when true
        cooldown 1h by comm, uid
    }"""
    events = [*BASE, fork(1.0, 200, 1, "init", uid=5), execve(1.1, 200, "a"),
              fork(2.0, 201, 1, "init", uid=6), execve(2.1, 201, "a"),
              fork(3.0, 202, 1, "init", uid=5), execve(3.1, 202, "a")]
    assert [a.pid for a in alerts(run(rule, events))] == [200, 201]
    plain = "rule r {\n on exec\n when true\n cooldown 1h\n}"
    assert [a.pid for a in alerts(run(plain, events))] == [200]  # comm 'a': one key


def test_max_rate_caps_the_alerts_and_counts_the_rest() -> None:
    rule = "rule r {\n on exec\n when true\n max_rate 2/s\n}"
    events = [*BASE, *[execve(1.0 + i * 0.1, 100, "x") for i in range(5)],
              execve(2.05, 100, "x")]
    core = core_for(rule)
    core.feed(events)
    assert [a.ts for a in alerts(core.drain())] == [1.0, 1.1, 2.05]
    assert dict(core.events.states[0].suppressed) == {"max_rate": 3}


def test_the_default_max_rate_is_20_per_second() -> None:
    events = [*BASE, *[execve(1.0 + i * 0.001, 100, "x") for i in range(50)]]
    assert len(alerts(run("rule r on exec: true", events))) == 20


def test_the_cooldown_table_is_bounded_and_counts_evictions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ev, "KEYS_MAX", 3)
    rule = "rule r {\n on exec\n when true\n cooldown 1h\n max_rate 1000/s\n}"
    events = [*BASE, *[execve(1.0 + i, 100, f"n{i}", exe=f"/tmp/n{i}") for i in range(6)],
              execve(10.0, 100, "n0", exe="/tmp/n0")]  # forgotten: alerted again
    core = core_for(rule)
    core.feed(events)
    assert len(alerts(core.drain())) == 7
    state = core.events.states[0]
    assert (len(state.last), state.evicted) == (3, 4)


def test_expired_keys_leave_the_table_without_counting_as_evictions(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ev, "KEYS_MAX", 2)
    rule = "rule r {\n on exec\n when true\n cooldown 1s\n}"
    events = [*BASE, *[execve(1.0 + 2 * i, 100, f"n{i}", exe=f"/n{i}") for i in range(5)]]
    core = core_for(rule)
    core.feed(events)
    assert len(alerts(core.drain())) == 5
    assert core.events.states[0].evicted == 0


def test_an_exec_rule_proposes_its_action_on_the_process_after_the_alert() -> None:
    out = run('rule r {\n on exec\n when exe startswith "/tmp/"\n action kill\n}',
              [*BASE, fork(1.0, 200, 100, "nginx"), execve(1.1, 200, "x", exe="/tmp/x")])
    assert [type(o).__name__ for o in out] == ["Alert", "Proposal"]
    (p,) = proposals(out)
    assert (p.ts, p.pid, p.instance_pid, p.instance_start, p.status) == (1.1, 200, 200, 1.0,
                                                                         "proposed")


def test_an_exit_rule_may_target_a_live_process() -> None:
    out = run('rule r {\n on exit\n when crashed\n action kill(target = top(cpu_pct))\n}',
              [*BASE, sample(0.5, 100, cpu_pct=30.0), fork(1.0, 200, 1, "init"),
               exit_(1.5, 200, signal=11)])
    (p,) = proposals(out)
    assert (p.pid, p.instance_pid) == (100, 200)


def test_event_rules_have_no_pending_and_no_resolved_and_count_in_the_summary() -> None:
    core = core_for("rule r on exec: true", tick=0.1)
    core.feed([*BASE, execve(1.0, 100, "a"), execve(5.0, 100, "b")])
    core.finish()
    assert {a.state for a in alerts(core.drain())} == {"firing"}
    assert core.alert_counts == {("r", "firing"): 2}
    assert core.evaluator.rules == []  # nothing judged at ticks


def test_an_error_in_a_condition_is_counted_not_raised() -> None:
    core = core_for("rule r on exec: true")
    state = core.events.states[0]

    def broken(p: object, h: object, now: float) -> bool:
        raise ZeroDivisionError

    state.rule = attrs.evolve(state.rule, cond=broken)
    core.feed([*BASE, execve(1.0, 100, "a")])
    assert (alerts(core.drain()), state.errors) == ([], 1)


def test_a_reload_keeps_an_unchanged_event_rules_cooldown() -> None:
    core = core_for(CRASH)
    core.feed([*BASE, *crashes([1.0])])
    core.replace_plan(compile_text(CRASH + '\nrule other on exec: comm == "zz"'))
    core.feed(crashes([10.0], first_pid=300))
    core.finish()
    assert [a.ts for a in alerts(core.drain())] == [2.0]
    assert core.events.states[0].suppressed["cooldown"] == 1


def test_an_ordinary_rule_beside_event_rules_still_runs_at_ticks() -> None:
    core: Core = core_for('rule hot: cpu_pct > 50\nrule r on exec: comm == "x"')
    core.feed([*BASE, sample(1.0, 100, cpu_pct=90.0), execve(1.2, 100, "x")])
    core.finish()
    assert [(a.rule, a.state, a.ts) for a in alerts(core.drain())] == [
        ("hot", "firing", 1.0), ("r", "firing", 1.2)]


def test_an_exit_rule_counts_the_crash_it_is_judged_at() -> None:
    """crashes(exe, W) in an 'on exit' rule includes the exit being judged: the third
    crash in the window reads 3, and fires there, not at the next one."""
    events = [*BASE]
    for i, ts in enumerate((1.0, 2.0, 3.0, 4.0)):
        pid = 300 + i
        events += [fork(ts, pid, 1, "sh"), execve(ts + 0.01, pid, "svc", exe="/usr/bin/svc"),
                   exit_(ts + 0.5, pid, signal=11)]
    out = run("rule crash_loop on exit: crashes(exe, 1m) >= 3", events, tick=10.0)
    assert [(a.ts, a.pid, a.values) for a in alerts(out)] == [
        (3.5, 302, {"crashes(exe, 60s)": 3}), (4.5, 303, {"crashes(exe, 60s)": 4})]


def test_a_rule_is_judged_only_at_the_events_its_prefilter_lets_through() -> None:
    """'comm == "sh"' is looked up by comm: an exec of anything else never runs the
    condition, yet counts as an evaluation, as it did when every exec ran it."""
    core = core_for('rule r on exec: comm == "sh"\nrule other on exec: uid > 100000')
    state = core.events.states[0]
    judged: list[str] = []
    cond = state.rule.cond

    def recording(p: Any, h: object, now: float) -> bool:
        judged.append(p.comm)
        return cond(p, h, now)

    state.rule = attrs.evolve(state.rule, cond=recording)
    core.feed([*BASE, execve(1.0, 100, "a"), execve(2.0, 100, "sh"), execve(3.0, 100, "b")])
    assert [a.ts for a in alerts(core.drain())] == [2.0]
    assert (judged, state.judged, state.evaluations) == (["sh"], 1, 3)
    assert core.events.states[1].judged == 3  # no pre-filter: judged at every exec
    core.replace_plan(compile_text('rule r on exec: comm == "sh"'))  # unchanged: kept
    core.feed([execve(4.0, 100, "c")])
    assert core.events.states[0].evaluations == 4


def test_a_field_the_index_cannot_read_at_an_exec_lets_every_rule_be_judged() -> None:
    """The index's mask, put inline in the function that applies an exec, falls back to
    every rule of the kind when it raises: their conditions decide, none is skipped."""
    core = core_for('rule r on exec: comm == "sh"\nrule q on exec: exe startswith "/tmp/"')
    index = core.events.index[t.Exec]
    index.code = "1 // (p.pid - p.pid)"  # a key that raises at every exec
    core.feed([*BASE, execve(1.0, 100, "sh"), execve(2.0, 100, "a", exe="/tmp/a")])
    assert [(a.rule, a.ts) for a in alerts(core.drain())] == [("r", 1.0), ("q", 2.0)]
    assert [s.judged for s in core.events.states] == [2, 2]


def test_a_fork_rule_is_judged_through_the_same_index() -> None:
    core = core_for('rule f on fork: comm == "nginx"\nrule g on fork: comm == "sh"')
    core.feed([*BASE, fork(2.0, 200, 100, "nginx"), fork(3.0, 300, 1, "init")])
    assert [(a.rule, a.pid) for a in alerts(core.drain())] == [("f", 200)]
    assert [(s.judged, s.evaluations) for s in core.events.states] == [(1, 2), (0, 2)]


def test_an_exec_handler_wrapped_after_the_rules_were_bound_is_the_one_called() -> None:
    """The function that applies an exec holds the table's handler: when the handler
    changes (the tally wraps it for a counter), the function is made again."""
    core = core_for('rule r on exec: comm == "sh"')
    core.feed(list(BASE))
    table, applied = core.table, []
    plain = table.handlers[t.Exec]

    def wrapped(e: t.Event) -> None:
        applied.append(e.ts)
        plain(e)

    table.handlers[t.Exec] = wrapped
    core.feed([execve(1.0, 100, "sh")])
    assert applied == [1.0]
    assert [a.rule for a in alerts(core.drain())] == ["r"]
