"""Event rules in the front end (``linnix/language/events.py``): their two forms, what the
plan receives, and the checks (each code's example is in test_checker_codes.py; every
message in fixtures/rules/bad/events.expected)."""

from __future__ import annotations

import pytest
from support import codes

from linnix.language.pipeline import compile_text
from linnix.names import Scope


def test_both_forms_make_an_event_rule_of_process_scope() -> None:
    plan = compile_text('rule a on exec: comm == "sh"\n'
                        'rule b {\n on fork\n when parent.comm == "nginx"\n}\n'
                        "rule c: cpu_pct > 90\n")
    a, b, c = plan.rules
    assert (a.trigger, b.trigger, c.trigger) == ("exec", "fork", None)
    assert (a.scope, a.scope_reason) == (Scope.PROCESS, "event rule: on exec")
    assert [r.name for r in plan.evented] == ["a", "b"]
    assert [r.name for r in plan.ticked] == ["c"]
    assert (a.max_rate, a.max_rate_per_s, a.cooldown_by, a.cooldown_s) == (20, 1.0, (), 0.0)


def test_a_rule_reading_only_system_names_is_still_judged_on_the_events_process() -> None:
    (rule,) = compile_text("rule r on exec: host_cpu_pct > 90\n").rules
    assert rule.scope is Scope.PROCESS


def test_flood_control_reaches_the_plan() -> None:
    (rule,) = compile_text("rule r {\n on exit\n when crashed\n cooldown 5m by exe, uid\n"
                           " max_rate 100/m\n}\n").rules
    assert (rule.cooldown_s, rule.cooldown_by, rule.max_rate, rule.max_rate_per_s) == (
        300.0, ("exe", "uid"), 100, 60.0)


@pytest.mark.parametrize("name", ["exit_code", "exit_signal", "crashed", "failed",
                                  "lifetime_s"])
def test_the_names_of_an_exit_are_refused_elsewhere(name: str) -> None:
    condition = name if name in ("crashed", "failed") else f"{name} == {name}"
    assert codes(f"rule r: {condition}\n") == ["E513"]
    assert codes(f"rule r on exec: {condition}\n") == ["E513"]
    assert codes(f"rule r on exit: {condition}\n") == []
    message = f'rule r {{\n on fork\n when true\n message "{{{name}}}"\n}}\n'
    assert codes(message) == ["E513"]


@pytest.mark.parametrize("clause", ["max_rate 0/s", "max_rate 1.5/s", "max_rate 5*s",
                                    "max_rate 5/d", "cooldown 1m by pid",
                                    "cooldown 1m by comm, comm"])
def test_bad_flood_control_is_refused(clause: str) -> None:
    assert codes(f"rule r {{\n on exec\n when true\n {clause}\n}}\n") == ["E515"]


@pytest.mark.parametrize(("trigger", "key", "ok"), [
    ("connect", "remote_addr", True), ("connect", "remote_port", True),
    ("accept", "local_port", True), ("listen", "local_port", True),
    ("listen", "family", True), ("connect", "exe, remote_addr", True),
    ("listen", "remote_addr", False), ("connect", "local_port", False),
    ("exec", "remote_addr", False), ("exit", "family", False),
])
def test_a_network_field_keys_a_cooldown_only_where_the_event_carries_it(
        trigger: str, key: str, ok: bool) -> None:
    text = f"rule r {{\n on {trigger}\n when uid == 0\n cooldown 1m by {key}\n}}\n"
    assert codes(text) == ([] if ok else ["E515"])
    if ok:
        (rule,) = compile_text(text).rules
        assert rule.cooldown_by == tuple(key.split(", "))


@pytest.mark.parametrize("clause", ["for 1s", "clear when true", "keep_firing_for 1s",
                                    "scope subtree", "scope system"])
def test_what_only_a_rule_judged_at_ticks_may_have(clause: str) -> None:
    text = (f"rule r {{\n on exec\n when true {clause}\n}}\n" if clause.startswith("for")
            else f"rule r {{\n on exec\n when true\n {clause}\n}}\n")
    assert codes(text) in (["E511"], ["E512"])


def test_on_is_given_once() -> None:
    assert codes("rule r {\n on exec\n on exit\n when true\n}\n") == ["E502"]


@pytest.mark.parametrize("trigger", ["exec", "fork"])
def test_sampled_metrics_warn_only_at_an_exec(trigger: str) -> None:
    found = codes(f"rule r on {trigger}: rss_mb > 100 or threads > 5\n")
    assert found == (["W110", "W110"] if trigger == "exec" else [])


def test_sockets_are_sampled_too_and_warn_at_an_exec() -> None:
    assert codes("rule r on exec: sockets > 100\n") == ["W110"]
    assert codes("rule r on connect: sockets > 100\n") == []
