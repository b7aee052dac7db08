"""The counting functions in the front end (linnix/language/counting.py and the compiler).

``count(EXPR)`` is a system value whose condition may use lets and macros;
the event counters read the instance's field, so they make a process rule;
the plan carries each distinct count once and each counter with its longest
window; what a count reads is sampled.
"""

from __future__ import annotations

from support import only, plan, rule

from linnix.names import Need, Scope

SHELLS = 'let shells = ["bash", "sh"]\nmacro web = comm in ["nginx", "httpd"]\n'


def test_count_is_a_system_value_and_its_condition_may_use_lets_and_macros() -> None:
    r = rule(SHELLS + "rule r: count(comm in shells) > count(web)\n", "r")
    assert r.scope is Scope.SYSTEM
    p = plan(SHELLS + "rule r: count(comm in shells) > count(web)\n")
    assert [c.text for c in p.counts] == ['count(comm in ["bash", "sh"])',
                                          'count(comm in ["nginx", "httpd"])']
    assert sorted(r.inputs) == [c.text for c in p.counts]  # lets and macros expanded
    assert [c.inputs for c in p.counts] == [("comm",), ("comm",)]


def test_the_same_count_in_two_rules_is_kept_once() -> None:
    p = plan('rule a: count(comm == "x") > 1\nrule b: count(comm == "x") == 0 for 5s\n')
    assert [c.text for c in p.counts] == ['count(comm == "x")']


def test_what_a_count_reads_is_sampled() -> None:
    p = plan("rule r: count(cpu_pct > 50 and cmdline contains \"-jar\") > 3\n")
    assert p.rules[0].needs == frozenset({Need.CPU, Need.CMDLINE})
    assert p.rules[0].time_varying is False  # a count moves only when processes change


def test_an_event_counter_makes_a_process_rule_with_its_longest_window() -> None:
    p = plan("rule a: execs(exe, 1m) > 20\nrule b: execs(exe, 5m) > 50 and crashes(uid, 10s) > 1\n")
    assert [r.scope for r in p.rules] == [Scope.PROCESS, Scope.PROCESS]
    assert p.rules[0].scope_reason == "inferred: reads exe"
    assert p.rules[0].time_varying is True  # its window slides with no event
    assert [(c.kind, c.field, c.span_s) for c in p.event_counters] == [
        ("crashes", "uid", 10.0), ("execs", "exe", 300.0)]


def test_a_disabled_rule_counts_nothing() -> None:
    p = plan('rule r { when count(comm == "x") > 1 and execs(exe, 1m) > 1\n enabled false }\n')
    assert p.counts == () and p.event_counters == ()


def test_count_is_a_function_not_a_name() -> None:
    assert only("rule r: count > 1\n", "E206").message == \
        "'count' is a function; call it as count(...)"


def test_a_count_condition_over_an_unknown_name_says_so() -> None:
    d = only('rule r: count(comn == "x") > 1\n', "E201")
    assert d.message == "unknown name 'comn' (did you mean 'comm'?)"
