"""Actions, their arguments and targets (E601-E605), and windowed functions."""

from __future__ import annotations

import pytest
from support import diagnostics, only, plan, rule

from linnix.names import ACTIONS, SIGNALS
from linnix.plan import CompiledAction


def actions(text: str) -> list[CompiledAction]:
    return list(rule(text).actions)


def block(clauses: str, condition: str = "cpu_pct > 1") -> str:
    return f"rule r {{\n when {condition}\n {clauses}\n}}"


# ---- valid actions ---------------------------------------------------------------------------


def test_alert_is_implied_and_may_be_written() -> None:
    assert actions("rule r: cpu_pct > 1") == []
    (a,) = actions(block("action alert"))
    assert (a.name, a.targets_process, a.describe()) == ("alert", False, "alert")


@pytest.mark.parametrize(("action", "expected"), [
    ("kill", CompiledAction("kill", True)),
    ("kill(grace = 10s)", CompiledAction("kill", True, grace_s=10.0)),
    ("kill(grace = 0s)", CompiledAction("kill", True, grace_s=0.0)),
    ("kill(signal = SIGKILL)", CompiledAction("kill", True, signal=9)),
    ("kill(signal = 15, grace = 500ms)", CompiledAction("kill", True, grace_s=0.5, signal=15)),
    ("kill_tree", CompiledAction("kill_tree", True)),
    ("kill_tree(grace = 1m)", CompiledAction("kill_tree", True, grace_s=60.0)),
    ("signal(SIGSTOP)", CompiledAction("signal", True, signal=19)),
    ("signal(signal = SIGCONT)", CompiledAction("signal", True, signal=18)),
    ("signal(64)", CompiledAction("signal", True, signal=64)),
    ("renice(10)", CompiledAction("renice", True, nice=10)),
    ("renice(-20)", CompiledAction("renice", True, nice=-20)),
    ("renice(nice = 19)", CompiledAction("renice", True, nice=19)),
    ("analyze", CompiledAction("analyze", False)),
])
def test_action_arguments_are_resolved(action: str, expected: CompiledAction) -> None:
    (a,) = actions(block(f"action {action}"))
    assert a == expected


def test_actions_keep_their_order_and_may_repeat() -> None:
    got = actions(block("action kill(grace = 1s)\n action analyze\n action kill(grace = 2s)"))
    assert [a.describe() for a in got] == ["kill(grace = 1s)", "analyze", "kill(grace = 2s)"]


def test_every_signal_name_is_accepted() -> None:
    for name, number in SIGNALS.items():
        (a,) = actions(block(f"action signal({name})"))
        assert a.signal == number


def test_system_rule_actions_with_a_target() -> None:
    got = actions(block("action kill(target = top(cpu_pct))\n"
                        " action kill_tree(target = top(subtree_rss_mb))\n"
                        " action signal(SIGSTOP, target = top(rss_mb))\n"
                        " action renice(5, target = top(child_forks_per_sec))\n"
                        " action analyze", condition="host_cpu_pct > 90"))
    assert [(a.name, a.target) for a in got] == [
        ("kill", "cpu_pct"), ("kill_tree", "subtree_rss_mb"), ("signal", "rss_mb"),
        ("renice", "child_forks_per_sec"), ("analyze", None)]
    assert got[0].describe() == "kill(target = top(cpu_pct))"
    assert [a.name for a in rule(block("action kill(target = top(fds))",
                                       "host_cpu_pct > 1")).targets] == ["kill"]


def test_process_rule_actions_target_the_instance() -> None:
    (a,) = actions(block("action kill"))
    assert a.target is None and a.targets_process


def test_a_process_rule_may_still_name_a_target() -> None:
    (a,) = actions(block("action kill(target = top(rss_mb))"))
    assert a.target == "rss_mb"


def test_describe_lists_every_argument() -> None:
    (a,) = actions(block("action kill(grace = 1.5s, signal = SIGINT, target = top(fds))"))
    assert a.describe() == "kill(grace = 1.5s, signal = 2, target = top(fds))"
    (a,) = actions(block("action renice(-3)"))
    assert a.describe() == "renice(nice = -3)"


# ---- E601 - E603 -------------------------------------------------------------------------------


def test_e601_unknown_action() -> None:
    d = only(block("action kil"), "E601")
    assert d.message == "unknown action 'kil' (did you mean 'kill'?)"
    assert d.hint == f"one of: {', '.join(ACTIONS)}"
    assert d.span.text == "kil"


@pytest.mark.parametrize(("action", "message"), [
    ("kill(5s)", "'kill' takes no positional argument here"),
    ("alert(1)", "'alert' takes no positional argument here"),
    ("kill(speed = 1)", "'kill' has no argument 'speed'"),
    ("analyze(target = top(cpu_pct))", "'analyze' has no argument 'target'"),
    ("kill(grace = 1s, grace = 2s)", "argument 'grace' given twice"),
    ("signal(SIGFOO)", "unknown signal 'SIGFOO' (did you mean 'SIGSTOP'?)"),
    ("signal(99)", "expected a signal such as SIGTERM or a number 1-64"),
    ("signal(0)", "expected a signal such as SIGTERM or a number 1-64"),
    ("signal(1.5)", "expected a signal such as SIGTERM or a number 1-64"),
    ('kill(signal = "KILL")', "expected a signal such as SIGTERM or a number 1-64"),
    ("signal", "'signal' needs a signal"),
    ("signal(target = top(cpu_pct))", "'signal' needs a signal"),
    ("renice", "'renice' needs a nice"),
    ("renice(30)", "expected a nice value, a whole number from -20 to 19"),
    ("renice(-21)", "expected a nice value, a whole number from -20 to 19"),
    ("renice(1.5)", "expected a nice value, a whole number from -20 to 19"),
    ('renice("x")', "expected a nice value, a whole number from -20 to 19"),
    ("renice(cpu_pct)", "expected a nice value, a whole number from -20 to 19"),
])
def test_e602_bad_arguments(action: str, message: str) -> None:
    d = only(block(f"action {action}"), "E602")
    assert d.message == message


def test_e602_hint_shows_the_signature() -> None:
    assert only(block("action kill(5s)"), "E602").hint == \
        "kill(grace=..., signal=..., target=...)"
    assert only(block("action alert(1)"), "E602").hint == "'alert' takes no arguments"


def test_e602_signal_outside_an_action() -> None:
    d = only("rule r: SIGKILL == 1", "E602")
    assert d.message == "a signal ('SIGKILL') is only valid as an action argument"


@pytest.mark.parametrize("action", ["kill", "kill_tree", "signal(SIGSTOP)", "renice(5)",
                                    "kill(grace = 1s)"])
def test_e603_process_action_in_a_system_rule_needs_a_target(action: str) -> None:
    d = only(block(f"action {action}", condition="host_cpu_pct > 90"), "E603")
    name = action.split("(", maxsplit=1)[0]
    assert d.message == f"'{name}' in a system rule needs a target"
    assert d.hint == f"e.g. action {name}(target = top(cpu_pct))"


def test_alert_and_analyze_need_no_target_in_a_system_rule() -> None:
    got = actions(block("action alert\n action analyze", condition="forks_per_sec > 1"))
    assert [a.targets_process for a in got] == [False, False]


@pytest.mark.parametrize(("target", "message"), [
    ("cpu_pct", "a target must be top(METRIC) or top(METRIC, unless EXPR)"),
    ("top(cpu_pct, rss_mb)", "a target must be top(METRIC) or top(METRIC, unless EXPR)"),
    ("max(cpu_pct, 5s)", "a target must be top(METRIC) or top(METRIC, unless EXPR)"),
    ("top(comm, unless uid == 0)", "top() needs a numeric process metric, not 'comm'"),
    ("top(comm)", "top() needs a numeric process metric, not 'comm'"),
    ("top(host_cpu_pct)", "top() needs a numeric process metric, not 'host_cpu_pct' "
                          "(did you mean 'subtree_cpu_pct'?)"),
    ("top(cpu_pc)", "top() needs a numeric process metric, not 'cpu_pc' "
                    "(did you mean 'cpu_pct'?)"),
    ("top(1)", "top() needs a numeric process metric, not '1'"),
])
def test_e603_bad_targets(target: str, message: str) -> None:
    d = only(block(f"action kill(target = {target})", condition="host_cpu_pct > 1"), "E603")
    assert d.message == message


def test_top_unless_leaves_processes_out() -> None:
    text = ('let shells = ["bash", "sh"]\n'
            + block("action kill(target = top(cpu_pct, unless comm in shells or uid == 0))",
                    condition="host_cpu_pct > 1"))
    (a,) = actions(text)
    # as written: a list or macro by its name, not its expansion (which can be long)
    assert (a.target, a.unless_text) == ("cpu_pct", "comm in shells or uid == 0")
    assert a.describe() == "kill(target = top(cpu_pct, unless comm in shells or uid == 0))"
    assert a.exclude is not None and a.read is not None
    # what the condition reads is sampled, though the rule itself does not read it
    r = rule(block("action kill(target = top(rss_mb, unless cpu_pct > 50))",
                   condition="host_cpu_pct > 1"))
    assert {n.name for n in r.needs} >= {"CPU", "RSS"}


@pytest.mark.parametrize(("target", "code", "message"), [
    ("top(cpu_pct, unless comm)", "E302",
     "the 'unless' of top() must be true or false, got string"),
    ("top(cpu_pct, unless rss_mb + 1)", "E302",
     "the 'unless' of top() must be true or false, got a size in MiB"),
    ("top(cpu_pct, unless subtree_procs > 2)", "E606",
     "the 'unless' of top() reads a subtree metric ('subtree_procs'): it is judged on each "
     "live process, from its own fields only"),
    ("top(cpu_pct, unless avg(cpu_pct, 10s) > 5)", "E606",
     "the 'unless' of top() reads a windowed function ('avg(cpu_pct, 10s)'): it is judged on "
     "each live process, from its own fields only"),
    ("top(cpu_pct, unless nosuch)", "E201", "unknown name 'nosuch'"),
])
def test_bad_top_unless(target: str, code: str, message: str) -> None:
    d = only(block(f"action kill(target = {target})", condition="host_cpu_pct > 1"), code)
    assert d.message == message


@pytest.mark.parametrize("call", ["avg(cpu_pct, unless comm == \"x\")",
                                  "nosuch(cpu_pct, unless comm == \"x\")"])
def test_only_top_takes_unless(call: str) -> None:
    codes = [d.code for d in diagnostics(f"rule r: {call} > 1")]
    assert codes in (["E605"], ["E206"])


def test_e604_top_outside_an_action() -> None:
    d = only("rule r: top(cpu_pct) > 1", "E604")
    assert d.message == "top() is only valid as an action target"
    assert d.hint == "e.g. action kill(target = top(cpu_pct))"


# ---- windowed functions ------------------------------------------------------------------------


@pytest.mark.parametrize("func", ["avg", "min", "max", "delta", "rate"])
def test_windowed_functions(func: str) -> None:
    r = rule(f"rule r: {func}(rss_mb, 1m) > 10MiB")
    assert r.windows == (("rss_mb", 60.0),)
    assert r.cond_text == f"{func}(rss_mb, 60s) > 10"


def test_windowed_function_keeps_the_metric_unit() -> None:
    assert only("rule r: avg(cpu_pct, 10s) > 1GiB", "E301").message.startswith(
        "unit mismatch: 'avg(cpu_pct, 10s)' is a percentage")


@pytest.mark.parametrize(("call", "message"), [
    ("avg(cpu_pct)", "avg() takes a metric and a window, e.g. avg(rss_mb, 10s)"),
    ("rate(cpu_pct, 1s, 2s)", "rate() takes a metric and a window, e.g. rate(rss_mb, 10s)"),
    ("avg(comm, 5s)", "the first argument of a windowed function must be a numeric "
                      "metric name"),
    ("avg(1, 5s)", "the first argument of a windowed function must be a numeric metric name"),
    ("avg(cpu_pct + 1, 5s)", "the first argument of a windowed function must be a numeric "
                             "metric name"),
    ("max(parent.cpu_pct, 5s)", "the first argument of a windowed function must be a "
                                "numeric metric name"),
])
def test_e605_bad_window_calls(call: str, message: str) -> None:
    assert only(f"rule r: {call} > 1", "E605").message == message


def test_e605_let_as_a_window_metric() -> None:
    found = diagnostics('let l = 5\nrule r: avg(l, 5s) > 1')
    assert "E605" in [d.code for d in found]


def test_window_given_by_a_let() -> None:
    assert plan("let w = 30s\nrule r: avg(cpu_pct, w) > 1").windows == {("cpu_pct", 30.0)}
