"""Rule state machines: every path with its exact transition times.

Ticks fall every 500 ms from the first event (0.0 here unless said
otherwise); an event stamped at or before a tick is applied before it.
"""

from __future__ import annotations

import pytest
from engine_support import (
    alerts,
    core_for,
    exit_,
    fork,
    proc,
    proposals,
    run,
    sample,
    system,
    transitions,
)

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import compile_text


def cpu(*points: tuple[float, float]) -> list[t.Event]:
    """Host CPU samples: (ts, value) pairs."""
    return [system(ts, cpu_pct=value) for ts, value in points]


def host_rule(clauses: str) -> str:
    return "rule r {\n" + clauses + "\n}\n"


# ---- tick schedule ----------------------------------------------------------------------

def test_ticks_fall_at_first_ts_plus_k_ticks_and_events_at_a_tick_come_first() -> None:
    rule = "rule r: host_cpu_pct > 50\n"
    out = run(rule, cpu((0.3, 10.0), (1.3, 90.0), (1.4, 10.0), (2.3, 90.0)), until=3.0)
    # ticks at 0.3, 0.8, 1.3, 1.8, 2.3, 2.8; the sample at 1.3 is seen by the tick at 1.3
    assert transitions(out) == [(1.3, "r", "firing", None),
                                (1.8, "r", "resolved", None, "cleared"),
                                (2.3, "r", "firing", None)]


def test_finish_runs_the_ticks_up_to_the_last_event_only() -> None:
    core = core_for("rule r: host_cpu_pct > 50\n")
    core.feed(cpu((0.0, 90.0), (1.2, 10.0)))
    assert core.ticks == 3  # 0.0, 0.5, 1.0: a tick waits until an event passes it
    core.finish()
    assert core.ticks == 3  # the next tick (1.5) is after the last event
    core.feed(cpu((1.5, 10.0)))
    core.finish()
    assert core.ticks == 4
    assert transitions(core.drain()) == [(0.0, "r", "firing", None),
                                         (1.5, "r", "resolved", None, "cleared")]


def test_tick_must_be_positive() -> None:
    with pytest.raises(ValueError, match="tick must be positive"):
        Core(compile_text("rule r: procs > 1\n"), 0.0)


def test_durations_survive_float_tick_arithmetic() -> None:
    # ticks are 0.1 * k; 4.3 - 3.3 computed that way is a hair under one second
    assert 43 * 0.1 - 33 * 0.1 < 1.0
    out = run(host_rule("when host_cpu_pct > 50 for 1s"),
              cpu((0.0, 10.0), (3.3, 90.0)), until=5.0, tick=0.1)
    ((ts0, *_), (ts1, *_)) = transitions(out)
    assert (ts0, ts1) == (33 * 0.1, 43 * 0.1)


# ---- for ------------------------------------------------------------------------------

def test_for_goes_pending_then_fires_then_resolves() -> None:
    out = run(host_rule("when host_cpu_pct > 50 for 2s"),
              cpu((0.0, 10.0), (1.0, 90.0), (5.0, 10.0)), until=6.0)
    assert transitions(out) == [(1.0, "r", "pending", None), (3.0, "r", "firing", None),
                                (5.0, "r", "resolved", None, "cleared")]


def test_for_fires_at_the_first_tick_after_the_duration() -> None:
    out = run(host_rule("when host_cpu_pct > 50 for 1200ms"),
              cpu((0.0, 10.0), (1.0, 90.0)), until=4.0)
    assert transitions(out) == [(1.0, "r", "pending", None), (2.5, "r", "firing", None)]


def test_pending_returns_to_inactive_silently_and_starts_over() -> None:
    out = run(host_rule("when host_cpu_pct > 50 for 2s"),
              cpu((0.0, 10.0), (1.0, 90.0), (2.0, 10.0), (3.0, 90.0)), until=6.0)
    # the timer of the first pending (due at 3.0) must not fire the second one early
    assert transitions(out) == [(1.0, "r", "pending", None), (3.0, "r", "pending", None),
                                (5.0, "r", "firing", None)]


def test_for_zero_fires_at_once_with_no_pending() -> None:
    out = run("rule r: host_cpu_pct > 50\n", cpu((0.0, 10.0), (1.0, 90.0), (2.0, 10.0)))
    assert transitions(out) == [(1.0, "r", "firing", None),
                                (2.0, "r", "resolved", None, "cleared")]


# ---- clearing ---------------------------------------------------------------------------

def test_clear_when_gives_hysteresis() -> None:
    out = run(host_rule("when host_cpu_pct > 90\nclear when host_cpu_pct < 70"),
              cpu((0.0, 10.0), (1.0, 95.0), (2.0, 80.0), (3.0, 60.0)), until=4.0)
    # at 80 the condition is false but the clear condition is not: still firing
    assert transitions(out) == [(1.0, "r", "firing", None),
                                (3.0, "r", "resolved", None, "cleared")]


def test_clear_when_for_must_hold_without_interruption() -> None:
    out = run(host_rule("when host_cpu_pct > 90\nclear when host_cpu_pct < 70 for 1s"),
              cpu((0.0, 95.0), (2.0, 60.0), (2.5, 75.0), (3.0, 60.0)), until=6.0)
    assert transitions(out) == [(0.0, "r", "firing", None),
                                (4.0, "r", "resolved", None, "cleared")]


def test_an_instance_cleared_while_its_condition_holds_becomes_pending_again() -> None:
    out = run(host_rule("when host_cpu_pct > 50 for 1s\nclear when psi_cpu_some < 5"),
              [system(0.0, cpu_pct=90.0, psi_cpu_some=10.0), system(2.0, psi_cpu_some=1.0),
               system(3.0, psi_cpu_some=10.0)], until=6.0)
    assert transitions(out) == [(0.0, "r", "pending", None), (1.0, "r", "firing", None),
                                (2.0, "r", "resolved", None, "cleared"),
                                (2.5, "r", "pending", None), (3.5, "r", "firing", None)]


def test_keep_firing_for_delays_the_resolution() -> None:
    out = run(host_rule("when host_cpu_pct > 50\nkeep_firing_for 2s"),
              cpu((0.0, 90.0), (1.0, 10.0)), until=5.0)
    assert transitions(out) == [(0.0, "r", "firing", None),
                                (3.0, "r", "resolved", None, "cleared")]


def test_keep_firing_for_starts_over_when_the_condition_returns() -> None:
    out = run(host_rule("when host_cpu_pct > 50\nkeep_firing_for 2s"),
              cpu((0.0, 90.0), (1.0, 10.0), (2.0, 90.0), (2.5, 10.0)), until=6.0)
    assert transitions(out) == [(0.0, "r", "firing", None),
                                (4.5, "r", "resolved", None, "cleared")]


def test_keep_firing_for_and_clear_for_wait_for_the_longer() -> None:
    out = run(host_rule("when host_cpu_pct > 90\nclear when host_cpu_pct < 70 for 1s\n"
                        "keep_firing_for 3s"),
              cpu((0.0, 95.0), (1.0, 60.0)), until=6.0)
    assert transitions(out) == [(0.0, "r", "firing", None),
                                (4.0, "r", "resolved", None, "cleared")]


# ---- cooldown ---------------------------------------------------------------------------

def test_cooldown_blocks_firing_then_fires_when_it_ends() -> None:
    out = run(host_rule("when host_cpu_pct > 50\ncooldown 3s"),
              cpu((0.0, 90.0), (1.0, 10.0), (2.0, 90.0)), until=6.0)
    assert transitions(out) == [(0.0, "r", "firing", None),
                                (1.0, "r", "resolved", None, "cleared"),
                                (4.0, "r", "firing", None)]


def test_pending_starts_after_the_cooldown() -> None:
    out = run(host_rule("when host_cpu_pct > 50 for 1s\ncooldown 3s"),
              cpu((0.0, 90.0), (1.5, 10.0), (2.0, 90.0)), until=7.0)
    assert transitions(out) == [(0.0, "r", "pending", None), (1.0, "r", "firing", None),
                                (1.5, "r", "resolved", None, "cleared"),
                                (4.5, "r", "pending", None), (5.5, "r", "firing", None)]


def test_after_the_cooldown_a_false_condition_stays_inactive() -> None:
    out = run(host_rule("when host_cpu_pct > 50\ncooldown 2s"),
              cpu((0.0, 90.0), (1.0, 10.0), (2.0, 90.0), (2.5, 10.0), (4.0, 90.0)),
              until=5.0)
    assert transitions(out) == [(0.0, "r", "firing", None),
                                (1.0, "r", "resolved", None, "cleared"),
                                (4.0, "r", "firing", None)]


# ---- processes: exit and pid reuse ----------------------------------------------------

BASE: list[t.Event] = [proc(0.0, 1, 0, "init", start=0.0), fork(0.5, 100, 1, "spin")]


def test_exit_resolves_a_firing_instance_with_reason_exited() -> None:
    out = run("rule r: cpu_pct > 50\n",
              [*BASE, sample(1.0, 100, cpu_pct=90.0), exit_(2.2, 100)], until=3.0)
    assert transitions(out) == [(1.0, "r", "firing", 100),
                                (2.5, "r", "resolved", 100, "exited")]
    resolved = alerts(out)[-1]
    assert (resolved.comm, resolved.start, resolved.values) == ("spin", 0.5, {"cpu_pct": 90.0})


@pytest.mark.parametrize("order", ["child first", "parent first"])
def test_the_message_of_an_exit_keeps_what_the_process_last_had(order: str) -> None:
    """The resolution an exit causes reads the lineage and subtree the process had when it
    exited, not those of a process already out of the tree (no parent, no children)."""
    rule = ('rule r {\n    when subtree_cpu_pct > 50\n    message "{comm} under {parent.comm} '
            '({ancestors}), {subtree_procs} processes at {subtree_cpu_pct:.0f}%"\n}\n')
    tree = [proc(0.0, 1, 0, "init", start=0.0), fork(0.5, 10, 1, "sh"),
            fork(0.5, 100, 10, "spin"), fork(0.5, 101, 100, "kid"),
            sample(1.0, 100, cpu_pct=90.0)]
    # the shell exiting first re-parents spin to init: that is then what spin last had
    gone = [exit_(2.1, 100), exit_(2.2, 10)] if order == "child first" else \
        [exit_(2.1, 10), exit_(2.2, 100)]
    out = run(rule, [*tree, *gone], until=3.0)
    assert transitions(out) == [(1.0, "r", "firing", 100),
                                (2.5, "r", "resolved", 100, "exited")]
    fired, resolved = alerts(out)
    assert fired.message == "spin under sh (sh, init), 2 processes at 90%"
    assert resolved.message == ("spin under sh (sh, init), 2 processes at 90%"
                                if order == "child first"
                                else "spin under init (init), 2 processes at 90%")
    assert resolved.values == {"subtree_cpu_pct": 90.0}
    assert resolved.proc is not None and resolved.proc.parent is None  # linked only for it


def test_exit_makes_a_pending_instance_vanish() -> None:
    out = run("rule r: cpu_pct > 50 for 5s\n",
              [*BASE, sample(1.0, 100, cpu_pct=90.0), exit_(2.2, 100)], until=8.0)
    assert transitions(out) == [(1.0, "r", "pending", 100)]


def test_a_reused_pid_is_a_new_instance() -> None:
    out = run("rule r: cpu_pct > 50 for 2s\n",
              [*BASE, sample(1.0, 100, cpu_pct=90.0), fork(2.2, 100, 1, "spin"),
               sample(2.2, 100, cpu_pct=90.0)], until=6.0)
    # the new process does not inherit the old one's pending time
    assert [(a.ts, a.state, a.pid, a.start) for a in alerts(out)] == [
        (1.0, "pending", 100, 0.5), (2.5, "pending", 100, 2.2), (4.5, "firing", 100, 2.2)]


def test_a_reused_pid_resolves_the_old_firing_instance() -> None:
    out = run("rule r: cpu_pct > 50\n",
              [*BASE, sample(1.0, 100, cpu_pct=90.0), exit_(2.1, 100),
               fork(2.2, 100, 1, "spin"), sample(2.2, 100, cpu_pct=90.0)], until=3.0)
    assert [(a.ts, a.state, a.start, a.reason) for a in alerts(out)] == [
        (1.0, "firing", 0.5, None), (2.5, "resolved", 0.5, "exited"),
        (2.5, "firing", 2.2, None)]


def test_system_rules_have_no_process() -> None:
    (a,) = run("rule r: host_cpu_pct > 50\n", cpu((0.0, 90.0)))
    assert a.to_json() == {
        "type": "alert", "ts": 0.0, "rule": "r", "state": "firing", "severity": "warning",
        "scope": "system", "pid": None, "comm": None, "start": None,
        "message": "host_cpu_pct=90", "labels": {}, "values": {"host_cpu_pct": 90.0},
        "reason": None}


def test_instances_of_a_process_rule_are_independent_and_ordered_by_pid() -> None:
    out = run("rule r: cpu_pct > 50\n",
              [*BASE, fork(0.5, 90, 1), sample(1.0, 100, cpu_pct=90.0),
               sample(1.0, 90, cpu_pct=90.0), sample(2.0, 100, cpu_pct=1.0)])
    assert transitions(out) == [(1.0, "r", "firing", 90), (1.0, "r", "firing", 100),
                                (2.0, "r", "resolved", 100, "cleared")]


# ---- subtree rules: deepest roots --------------------------------------------------------

CHAIN: list[t.Event] = [proc(0.0, 1, 0, "init", start=0.0), fork(0.0, 100, 1, "a"),
                        fork(0.0, 200, 100, "b"), fork(0.0, 300, 200, "c")]
SUBTREE = "rule r: subtree_cpu_pct > 50 for 1s\n"


def test_only_the_deepest_true_root_reports_and_its_ancestor_takes_over_after_exit() -> None:
    out = run(SUBTREE, [*CHAIN, sample(1.0, 200, cpu_pct=60.0), sample(1.0, 300, cpu_pct=60.0),
                        exit_(3.2, 300)], until=6.0)
    assert transitions(out) == [(1.0, "r", "pending", 300), (2.0, "r", "firing", 300),
                                (3.5, "r", "resolved", 300, "exited"),
                                (3.5, "r", "pending", 200), (4.5, "r", "firing", 200)]
    assert [a.values for a in alerts(out)] == [{"subtree_cpu_pct": 60.0}] * 3 + [
        {"subtree_cpu_pct": 60.0}] * 2


def test_a_pending_ancestor_is_suppressed_silently_when_a_descendant_turns_true() -> None:
    out = run(SUBTREE, [*CHAIN, sample(1.0, 200, cpu_pct=60.0), sample(1.5, 300, cpu_pct=60.0)],
              until=4.0)
    assert transitions(out) == [(1.0, "r", "pending", 200), (1.5, "r", "pending", 300),
                                (2.5, "r", "firing", 300)]


def test_siblings_report_separately_and_their_ancestors_never() -> None:
    out = run("rule r: subtree_cpu_pct > 50\n",
              [*CHAIN, fork(0.0, 201, 100, "d"), sample(1.0, 300, cpu_pct=60.0),
               sample(1.0, 201, cpu_pct=60.0)])
    assert transitions(out) == [(1.0, "r", "firing", 201), (1.0, "r", "firing", 300)]


def test_in_a_deep_chain_the_deepest_process_over_the_threshold_is_reported() -> None:
    # 3000 processes in a line; the bottom ten use 6 % each, so every process from the
    # ninth above the bottom up to pid 1 has more than 50 % in its subtree: only that
    # ninth is reported, until the bottom one exits and the tenth takes over
    depth = 3000
    bottom = depth + 1
    events: list[t.Event] = [proc(0.0, 1, 0, "init", start=0.0)]
    events += [fork(0.0, pid, pid - 1, "sh") for pid in range(2, bottom + 1)]
    events += [sample(1.0, pid, cpu_pct=6.0) for pid in range(bottom - 9, bottom + 1)]
    core = core_for(SUBTREE)
    core.feed([*events, exit_(3.2, bottom)])
    core.run_until(6.0)
    out = core.drain()
    assert transitions(out) == [(1.0, "r", "pending", bottom - 8),
                                (2.0, "r", "firing", bottom - 8),
                                (3.5, "r", "pending", bottom - 9),  # by pid within a tick
                                (3.5, "r", "resolved", bottom - 8, "cleared"),
                                (4.5, "r", "firing", bottom - 9)]
    assert [a.values["subtree_cpu_pct"] for a in alerts(out)] == [54.0, 54.0, 54.0, 48.0,
                                                                  54.0]
    assert core.table.procs[1].sub_procs == depth


# ---- actions ------------------------------------------------------------------------------

TOP = """
rule r {
    when host_cpu_pct > 90
    severity critical
    action kill(target = top(cpu_pct))
}
"""


def test_action_target_is_the_top_process_ties_to_the_lowest_pid() -> None:
    out = run(TOP, [*BASE, fork(0.5, 300, 1, "x"), fork(0.5, 200, 1, "y"),
                    sample(0.5, 300, cpu_pct=50.0), sample(0.5, 200, cpu_pct=50.0),
                    sample(0.5, 100, cpu_pct=10.0), *cpu((1.0, 95.0), (2.0, 10.0), (3.0, 95.0))])
    got = [(p.ts, p.pid, p.comm, p.start, p.status, p.instance_pid) for p in proposals(out)]
    assert got == [(1.0, 200, "y", 0.5, "proposed", None), (3.0, 200, "y", 0.5, "proposed", None)]
    # one proposal per firing, right after the tick's alerts
    assert [type(o).__name__ for o in out] == ["Alert", "Proposal", "Alert", "Alert", "Proposal"]
    assert proposals(out)[0].to_json() == {
        "type": "action", "ts": 1.0, "rule": "r", "action": "kill", "pid": 200, "comm": "y",
        "start": 0.5, "status": "proposed"}


def test_no_live_target_gives_no_target() -> None:
    out = run(TOP, [*BASE, *cpu((1.0, 95.0))])  # nothing has a cpu_pct yet
    (p,) = proposals(out)
    assert (p.pid, p.comm, p.start, p.status) == (None, None, None, "no_target")


TOP_UNLESS = """
let shells = ["bash", "tmux: server"]
rule r {
    when host_cpu_pct > 90
    action kill(target = top(cpu_pct, unless comm in shells))
}
"""


def test_top_unless_targets_the_busiest_process_left_in() -> None:
    events = [*BASE, fork(0.5, 200, 1, "tmux: server"), fork(0.5, 300, 200, "bash"),
              fork(0.5, 400, 300, "python3"), sample(0.5, 200, cpu_pct=99.0),
              sample(0.5, 300, cpu_pct=98.0), sample(0.5, 400, cpu_pct=60.0),
              sample(0.5, 100, cpu_pct=10.0), *cpu((1.0, 95.0))]
    (p,) = proposals(run(TOP_UNLESS, events))
    assert (p.pid, p.comm, p.status) == (400, "python3", "proposed")
    # without 'unless', the same tree gives the tmux server
    (p,) = proposals(run(TOP, events))
    assert (p.pid, p.comm) == (200, "tmux: server")
    # the process is judged as it is when the rule fires: python3 exec'd a shell
    (p,) = proposals(run(TOP_UNLESS, [*events[:-1], t.Exec(0.9, 400, "bash"),
                                      *cpu((1.0, 95.0))]))
    assert (p.pid, p.comm) == (100, "spin")


def test_top_unless_with_every_candidate_left_out_gives_no_target() -> None:
    events = [*BASE, fork(0.5, 300, 1, "bash"), sample(0.5, 300, cpu_pct=99.0),
              *cpu((1.0, 95.0))]  # 'spin' (100) has no cpu_pct: no candidate either
    (p,) = proposals(run(TOP_UNLESS, events))
    assert (p.pid, p.comm, p.start, p.status) == (None, None, None, "no_target")


def test_a_process_rule_acts_on_its_own_process_once_per_firing() -> None:
    out = run("rule r {\n when cpu_pct > 50 for 1s\n action kill\n action renice(5)\n}\n",
              [*BASE, sample(1.0, 100, cpu_pct=90.0), sample(4.0, 100, cpu_pct=1.0)],
              until=5.0)
    assert [(p.ts, p.action.name, p.pid, p.instance_pid) for p in proposals(out)] == [
        (2.0, "kill", 100, 100), (2.0, "renice", 100, 100)]


def test_alert_only_rules_propose_nothing() -> None:
    out = run("rule r {\n when host_cpu_pct > 90\n action analyze\n}\n", cpu((0.0, 95.0)))
    assert proposals(out) == []


# ---- what an alert carries ---------------------------------------------------------------

def test_message_labels_and_values() -> None:
    rules = """
    rule r {
        when cpu_pct > 50 and comm != "init" for 1s
        unless rss_mb > 1GiB
        clear when threads > 100 or cpu_pct < 10
        severity critical
        labels { team = "web", tier = "1" }
        message "{comm}[{pid}] at {cpu_pct:.1f}% ({rule} {state}, {severity}/{scope})"
    }
    """
    out = run(rules, [*BASE, sample(1.0, 100, cpu_pct=87.25, rss_kb=2048, threads=4),
                      sample(3.0, 100, cpu_pct=5.0)])
    assert [a.message for a in alerts(out)] == [
        "spin[100] at 87.2% (r pending, critical/process)",
        "spin[100] at 87.2% (r firing, critical/process)",
        "spin[100] at 5.0% (r resolved, critical/process)"]
    assert all(a.labels == {"team": "web", "tier": "1"} for a in alerts(out))
    assert alerts(out)[0].values == {"cpu_pct": 87.25, "comm": "spin", "rss_mb": 2.0, "threads": 4}
    assert list(alerts(out)[0].values) == ["cpu_pct", "comm", "rss_mb", "threads"]
    assert alerts(out)[2].values["cpu_pct"] == 5.0


def test_values_show_missing_names_as_none() -> None:
    out = run("rule r: cpu_pct > 50 or fds > 10\n", [*BASE, sample(1.0, 100, cpu_pct=90.0)])
    assert alerts(out)[0].values == {"cpu_pct": 90.0, "fds": None}


# ---- reloading -----------------------------------------------------------------------------

RULES_V1 = """
rule same: host_cpu_pct > 50
rule changed: host_cpu_pct > 50
rule removed: host_cpu_pct > 50
"""
RULES_V2 = """
rule same {
    when host_cpu_pct > 50
    message "new text, same rule"
}
rule changed: host_cpu_pct > 60
rule added: host_cpu_pct > 50
"""


def test_replace_plan_keeps_unchanged_rules_and_resolves_changed_ones() -> None:
    core = core_for(RULES_V1)
    core.feed(cpu((0.0, 90.0), (1.0, 90.0)))
    core.finish()
    assert transitions(core.drain()) == [(0.0, "same", "firing", None),
                                         (0.0, "changed", "firing", None),
                                         (0.0, "removed", "firing", None)]
    reloaded = core.replace_plan(compile_text(RULES_V2))
    assert transitions(reloaded) == [(1.0, "changed", "resolved", None, "reloaded"),
                                     (1.0, "removed", "resolved", None, "reloaded")]
    core.feed(cpu((1.5, 90.0), (2.0, 10.0)))
    core.finish()
    # 'same' stays firing without a new transition; the others start from scratch
    out = core.drain()
    assert transitions(out) == [(1.5, "changed", "firing", None),
                                (1.5, "added", "firing", None),
                                (2.0, "same", "resolved", None, "cleared"),
                                (2.0, "changed", "resolved", None, "cleared"),
                                (2.0, "added", "resolved", None, "cleared")]
    assert alerts(out)[2].message == "new text, same rule"


def test_replace_plan_turns_on_subtree_sums_for_new_subtree_rules() -> None:
    core = core_for("rule r: cpu_pct > 1000\n")
    assert not core.table.subtree
    core.feed([*CHAIN, sample(0.5, 300, cpu_pct=60.0)])
    core.replace_plan(compile_text("rule s: subtree_cpu_pct > 50\n"))
    core.feed([sample(1.0, 200, cpu_pct=1.0)])  # runs the tick at 0.5, under the new plan
    core.finish()
    assert transitions(core.drain()) == [(0.5, "s", "firing", 300)]
    assert core.table.procs[1].sub_cpu_pct == 61.0
