"""The optimiser: expansion, unless folding, constant folding and the warnings it finds."""

from __future__ import annotations

import pytest
from support import build_text, diagnostics, only, process, rule

from linnix.language import nodes as n
from linnix.language.checker import check
from linnix.language.loader import load_text
from linnix.language.optimizer import optimize


def optimised(text: str) -> list:  # type: ignore[type-arg]
    result = check(load_text(text, "t.lnx"))
    assert result.errors == []
    rules, _ = optimize(result.rules)
    return rules


# ---- unless ------------------------------------------------------------------------------


def test_unless_folds_into_the_condition() -> None:
    (r,) = optimised('rule r {\n when cpu_pct > 90\n unless comm == "a"\n'
                     ' unless comm in ["b", "c"] or fds > 10\n}')
    assert r.unless == ()
    assert isinstance(r.when, n.And)
    assert rule('rule r {\n when cpu_pct > 90\n unless comm == "a"\n'
                ' unless comm in ["b", "c"] or fds > 10\n}').cond_text == (
        'cpu_pct > 90 and not (comm == "a") and not (comm in ["b", "c"] or fds > 10)')


def test_unless_decides_at_run_time() -> None:
    cond = rule('rule r {\n when cpu_pct > 90\n unless comm == "sshd"\n}').cond
    assert cond(process(cpu_pct=95.0, comm="bash"), None, 0.0)
    assert not cond(process(cpu_pct=95.0, comm="sshd"), None, 0.0)
    assert not cond(process(cpu_pct=5.0, comm="bash"), None, 0.0)


def test_unless_with_a_macro_and_a_let() -> None:
    text = ('let protected = ["systemd", "sshd"]\nmacro interactive = comm in ["bash"]\n'
            "rule r {\n when cpu_pct > 90\n unless comm in protected or interactive\n}")
    r = rule(text, "r")
    assert r.cond_text == ('cpu_pct > 90 and not (comm in ["systemd", "sshd"] '
                           'or comm in ["bash"])')
    assert r.cond(process(cpu_pct=95.0, comm="python"), None, 0.0)
    for comm in ("systemd", "sshd", "bash"):
        assert not r.cond(process(cpu_pct=95.0, comm=comm), None, 0.0)


def test_unless_that_always_holds_makes_the_rule_dead() -> None:
    d = only("rule r {\n when cpu_pct > 1\n unless true\n}", "W103")
    assert d.span.text == "cpu_pct > 1"


# ---- constant folding --------------------------------------------------------------------


@pytest.mark.parametrize(("condition", "text"), [
    ("cpu_pct > 1 and true", "cpu_pct > 1"),
    ("cpu_pct > 1 or false", "cpu_pct > 1"),
    ("not not (cpu_pct > 1)", "cpu_pct > 1"),
    ("not (not (not (cpu_pct > 1)))", "not (cpu_pct > 1)"),
    ('"abc" startswith "a" and cpu_pct > 1', "cpu_pct > 1"),
    ('"abc" endswith "c" and "abc" contains "b" and cpu_pct > 1', "cpu_pct > 1"),
    ('"a" in ["a", "b"] and "z" not in ["a"] and cpu_pct > 1', "cpu_pct > 1"),
    ("cpu_pct > 10 * 9", "cpu_pct > 90"),
    ("cpu_pct > (100 - 10) / 2", "cpu_pct > 45"),
    ("cpu_pct > -(-(5))", "cpu_pct > 5"),
    ("cpu_pct > --5", "cpu_pct > 5"),
    ("-cpu_pct < -5", "-cpu_pct < -5"),
    ("(cpu_pct > 1 and fds > 2) and (rss_mb > 3 and threads > 4)",
     "cpu_pct > 1 and fds > 2 and rss_mb > 3 and threads > 4"),
    ("cpu_pct > 1 or (fds > 2 or false)", "cpu_pct > 1 or fds > 2"),
    ("1 < 2 and 3 >= 3 and 4 != 5 and 4 == 4 and 1 <= 1 and 2 > 1 and cpu_pct > 0",
     "cpu_pct > 0"),
])
def test_constant_folding(condition: str, text: str) -> None:
    assert rule(f"rule r: {condition}").cond_text == text


def test_lets_and_macros_are_expanded() -> None:
    r = rule("let limit = 80%\nlet names = [\"a\"]\nmacro busy = cpu_pct > limit\n"
             "rule r: busy and comm in names", "r")
    assert r.cond_text == 'cpu_pct > 80 and comm in ["a"]'
    assert r.inputs == ("cpu_pct", "comm")


def test_windows_are_normalised_to_seconds() -> None:
    assert rule("rule r: avg(cpu_pct, 2m) > 1 and max(fds, 500ms) > 2").cond_text == (
        "avg(cpu_pct, 120s) > 1 and max(fds, 0.5s) > 2")


def test_clear_is_simplified_too() -> None:
    r = rule("let low = 10%\nrule r {\n when cpu_pct > 90\n clear when cpu_pct < low and true\n}",
             "r")
    assert r.clear_text == "cpu_pct < 10"
    assert r.clear is not None
    assert r.clear(process(cpu_pct=5.0), None, 0.0)
    assert not r.clear(process(cpu_pct=50.0), None, 0.0)


# ---- W103 / W105: constant conditions -------------------------------------------------------


@pytest.mark.parametrize("condition", [
    "1 > 2",
    "cpu_pct > 5 and cpu_pct < 3",
    "90 < cpu_pct and cpu_pct <= 90",
    "cpu_pct == 5 and cpu_pct == 6",
    "cpu_pct > 1 and fds > 1/0",      # division by zero has no value: false
    "comm in []",
    "false",
    "cpu_pct > 1 and false",
])
def test_w103_condition_that_can_never_hold(condition: str) -> None:
    d = only(f"rule r: {condition}", "W103")
    assert d.message == "rule 'r' can never fire: its condition is always false"
    assert d.span.text == condition


@pytest.mark.parametrize("condition", ["2 > 1", "cpu_pct > 1 or true", "comm not in []",
                                       "true", "not false"])
def test_w105_condition_that_always_holds(condition: str) -> None:
    d = only(f"rule r: {condition}", "W105")
    assert d.message == "rule 'r' fires unconditionally: its condition is always true"


@pytest.mark.parametrize("condition", [
    "cpu_pct >= 5 and cpu_pct <= 5", "cpu_pct > 5 and fds < 3", "cpu_pct > 5 or cpu_pct < 3",
    "cpu_pct != 5 and cpu_pct == 5",   # the analysis is sound, not complete
])
def test_no_warning_for_satisfiable_conditions(condition: str) -> None:
    assert diagnostics(f"rule r: {condition}") == []


def test_disabled_rules_do_not_warn() -> None:
    assert diagnostics("rule r {\n when 1 > 2\n enabled false\n}") == []
    assert diagnostics("rule r {\n when true\n enabled false\n}") == []


# ---- W104: clear implied by when ----------------------------------------------------------


@pytest.mark.parametrize(("when", "clear"), [
    ("cpu_pct > 90", "cpu_pct > 80"),
    ("cpu_pct > 90", "cpu_pct > 90"),
    ("cpu_pct > 90", "cpu_pct >= 90"),
    ("cpu_pct > 90 and fds > 5", "fds > 1"),
    ('cpu_pct > 90 and comm == "x"', 'comm == "x"'),
    ("cpu_pct == 95", "cpu_pct < 100"),
])
def test_w104_clear_implied_by_when(when: str, clear: str) -> None:
    d = only(f"rule r {{\n when {when}\n clear when {clear}\n}}", "W104")
    assert d.message == (f"'clear when {clear}' holds whenever the rule's condition does, "
                         "so the rule would resolve as soon as it fires")
    assert d.span.line == 3 and d.span.text == clear


@pytest.mark.parametrize(("when", "clear"), [
    ("cpu_pct > 90", "cpu_pct < 80"),
    ("cpu_pct > 90", "cpu_pct > 95"),
    ("cpu_pct >= 90", "cpu_pct > 90"),
    ("cpu_pct > 90", "fds > 1"),
    ("cpu_pct > 90", 'comm == "x"'),
])
def test_real_hysteresis_does_not_warn(when: str, clear: str) -> None:
    assert diagnostics(f"rule r {{\n when {when}\n clear when {clear}\n}}") == []


def test_warnings_come_only_when_there_is_no_error() -> None:
    # the optimiser runs only on a valid program
    assert [d.code for d in diagnostics("rule a: 1 > 2\nrule b: nosuch > 1")] == ["E201"]
    assert build_text("rule a: 1 > 2").plan is not None
