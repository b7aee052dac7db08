"""Compiled conditions, called on fake process and host records.

``cond(p, h, now)``: ``p`` is the process record (None for system rules), ``h``
the host record, ``now`` the evaluation time.  A missing input (an attribute
that is None) makes any comparison with it false, and nothing ever raises.
"""

from __future__ import annotations

import linecache
import traceback
from types import SimpleNamespace
from typing import Any

import pytest
from support import codes, host, only, plan, process, rule, when

from linnix.language.compiler import module_name
from linnix.language.loader import load_text
from linnix.language.pipeline import check_program, compile_text
from linnix.names import EXIT_NAMES, METRICS, NET_NAMES, Scope, Type

H = host()


def holds(condition: str, p: Any = None, h: Any = H, now: float = 100.0, extra: str = "") -> bool:
    result = when(condition, extra=extra)(p, h, now)
    assert isinstance(result, bool)
    return result


# ---- every name of the registry -----------------------------------------------------------


def _condition_for(name: str) -> tuple[str, object, object]:
    """A condition over ``name``, a value that satisfies it, and one that does not."""
    m = METRICS[name]
    if m.type is Type.STR:
        return f'{name} == "x"', "x", "y"
    if m.type is Type.STR_LIST:
        return f'"x" in {name}', ["a", "x"], ["a"]
    if m.type is Type.NUM_LIST:
        return f"11 in {name}", [1, 11], [1]
    if m.type is Type.BOOL:
        return name, True, False
    return f"{name} > 10", 11, 9


def _on(name: str) -> str:
    """The event a rule reading ``name`` must wait for (the names of an exit, or of a
    network event)."""
    if name in NET_NAMES:
        return NET_NAMES[name][-1]
    return "exit" if name in EXIT_NAMES else ""


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_reads_what_the_registry_says(name: str) -> None:
    condition, yes, no = _condition_for(name)
    scope = METRICS[name].scope
    cond = when(condition, on=_on(name))
    if scope is Scope.SYSTEM:
        assert cond(None, host(**{name: yes}), 0.0) is True
        assert cond(None, host(**{name: no}), 0.0) is False
    else:
        assert cond(process(**{name: yes}), H, 0.0) is True
        assert cond(process(**{name: no}), H, 0.0) is False


@pytest.mark.parametrize("name", sorted(n for n, m in METRICS.items() if m.optional))
def test_a_missing_value_makes_every_comparison_false(name: str) -> None:
    m = METRICS[name]
    record = host() if m.scope is Scope.SYSTEM else None
    p = None if m.scope is Scope.SYSTEM else process()
    h = record if record is not None else H
    conditions = ([f'{name} == "x"', f'{name} != "x"', f'{name} startswith ""',
                   f'{name} matches ""', f'{name} glob "*"', f'{name} in ["x"]',
                   f'{name} not in ["x"]']
                  if m.type is Type.STR else
                  [f"{name} > 0", f"{name} < 0", f"{name} == 0", f"{name} != 0",
                   f"{name} >= 0", f"{name} <= 0", f"{name} + 1 > 0", f"-{name} < 1",
                   f"{name} * 2 != 1", f"{name} / 2 != 1", f"2 / {name} != 1",
                   f"{name} in [1, 2]", f"{name} not in [1, 2]"])
    for condition in conditions:
        assert when(condition, on=_on(name))(p, h, 100.0) is False, condition


@pytest.mark.parametrize("name", sorted(n for n, m in METRICS.items()
                                        if m.scope is Scope.PROCESS and m.numeric
                                        and n not in EXIT_NAMES and n not in NET_NAMES))
def test_parent_fields(name: str) -> None:
    cond = when(f"parent.{name} > 10")
    assert cond(process(parent=process(**{name: 11})), H, 0.0) is True
    assert cond(process(parent=process(**{name: 9})), H, 0.0) is False
    assert cond(process(parent=None), H, 0.0) is False  # pid 1 has no parent


# ---- operators ------------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "below", "equal", "above"), [
    (">", False, False, True), (">=", False, True, True), ("<", True, False, False),
    ("<=", True, True, False), ("==", False, True, False), ("!=", True, False, True),
])
def test_comparison_operators(op: str, below: bool, equal: bool, above: bool) -> None:
    cond = when(f"cpu_pct {op} 50")
    assert [cond(process(cpu_pct=v), H, 0.0) for v in (49.9, 50.0, 50.1)] == [
        below, equal, above]


def test_boolean_operators_and_precedence() -> None:
    cond = when("cpu_pct > 90 or rss_mb > 100 and not fds > 10")
    assert cond(process(cpu_pct=95.0), H, 0.0)
    assert cond(process(cpu_pct=1.0, rss_mb=200.0, fds=5), H, 0.0)
    assert not cond(process(cpu_pct=1.0, rss_mb=200.0, fds=50), H, 0.0)
    assert not cond(process(cpu_pct=1.0, rss_mb=1.0, fds=5), H, 0.0)


def test_arithmetic() -> None:
    assert holds("rss_mb + 10 * 2 == 30", process(rss_mb=10.0))
    assert holds("(rss_mb + 10) * 2 == 40", process(rss_mb=10.0))
    assert holds("rss_mb - 4 - 3 == 3", process(rss_mb=10.0))
    assert holds("rss_mb / 4 / 5 == 0.5", process(rss_mb=10.0))
    assert holds("-rss_mb == -10", process(rss_mb=10.0))
    assert holds("rss_mb * -1 < 0", process(rss_mb=10.0))
    assert holds("fds / fd_limit * 100 > 50", process(fds=60, fd_limit=100))


def test_division_by_zero_has_no_value() -> None:
    p = process(rss_mb=10.0, fds=0)
    assert holds("rss_mb / fds > 1", p) is False
    assert holds("rss_mb / fds < 1", p) is False
    assert holds("rss_mb / fds == 0", p) is False
    assert holds("rss_mb / fds + 1 > 0", p) is False
    assert holds("rss_mb / fds in [0, 1]", p) is False
    assert holds("rss_mb / fds not in [0, 1]", p) is False
    # the comparison is false, so its negation holds
    assert holds("not (rss_mb / fds > 1)", p) is True
    assert holds("rss_mb / fds > 1", process(rss_mb=10.0, fds=2)) is True


def test_missing_values_inside_larger_expressions() -> None:
    p = process(cpu_pct=None, rss_mb=5.0)
    assert holds("cpu_pct > 1 or rss_mb > 1", p) is True
    assert holds("cpu_pct > 1 and rss_mb > 1", p) is False
    assert holds("not (cpu_pct > 1)", p) is True
    assert holds("rss_mb + rss_mb * cpu_pct > 0", p) is False
    assert holds("rss_mb > parent.rss_mb", process(rss_mb=5.0, parent=process())) is False


def test_in_and_not_in() -> None:
    cond = when('comm in ["bash", "zsh"]')
    assert cond(process(comm="zsh"), H, 0.0) and not cond(process(comm="fish"), H, 0.0)
    cond = when('comm not in ["bash", "zsh"]')
    assert cond(process(comm="fish"), H, 0.0) and not cond(process(comm="bash"), H, 0.0)
    assert holds("fds in [1, 2, 3]", process(fds=2))
    assert holds("cpu_pct in [50%, 60%]", process(cpu_pct=60.0))
    cond = when('"cron" in ancestors')
    assert cond(process(ancestors=["sh", "cron", "systemd"]), H, 0.0)
    assert not cond(process(ancestors=["sh", "systemd"]), H, 0.0)
    assert not cond(process(ancestors=[]), H, 0.0)
    assert holds('"cron" not in ancestors', process(ancestors=["sh"]))
    assert holds("parent.comm in names", process(parent=process(comm="make")),
                 extra='let names = ["make", "ninja"]')


def test_list_equality_compares_items_in_order() -> None:
    cond = when('ancestors == ["sh", "cron"]')
    assert cond(process(ancestors=["sh", "cron"]), H, 0.0) is True
    assert cond(process(ancestors=("sh", "cron")), H, 0.0) is True
    assert cond(process(ancestors=["cron", "sh"]), H, 0.0) is False
    assert cond(process(ancestors=["sh", "cron", "init"]), H, 0.0) is False
    cond = when("ancestors != chain", extra='let chain = ["sh"]')
    assert cond(process(ancestors=["sh"]), H, 0.0) is False
    assert cond(process(ancestors=["bash"]), H, 0.0) is True
    cond = when("parent.ancestors == []")
    assert cond(process(parent=process(ancestors=[])), H, 0.0) is True
    assert cond(process(parent=None), H, 0.0) is False  # no parent: no value
    assert rule('rule r: ["a", "b"] == ["a", "b"]').cond(None, H, 0.0) is True
    assert rule('rule r: ["a", "b"] == ["b", "a"]').cond(None, H, 0.0) is False


def test_string_operators() -> None:
    p = process(comm="python3", exe="/usr/bin/python3.11", cmdline="python3 -m http.server")
    assert holds('comm startswith "py"', p) and not holds('comm startswith "3"', p)
    assert holds('exe endswith "3.11"', p) and not holds('exe endswith "/usr"', p)
    assert holds('cmdline contains "http"', p) and not holds('cmdline contains "ftp"', p)
    assert holds('comm contains ""', p)


def test_matches_is_a_regex_search() -> None:
    p = process(comm="kworker/0:1")
    assert holds('comm matches "worker"', p)            # anywhere, not anchored
    assert holds('comm matches "^k[a-z]+/[0-9]+"', p)
    assert not holds('comm matches "^worker"', p)
    assert not holds('comm matches "KWORKER"', p)        # case-sensitive
    assert holds('comm matches "(?i)KWORKER"', p)
    assert holds('comm matches "\\\\d:\\\\d$"', p)         # "\\d" in .lnx is the regex \d


@pytest.mark.timeout(10)
def test_matches_takes_linear_time_on_a_hostile_text() -> None:
    # a backtracking engine needs about 2**n steps for n 'a's followed by '!'
    p = process(cmdline="a" * 200 + "!")
    assert not holds('cmdline matches "(a+)+$"', p)
    assert not holds('cmdline matches "^(a|aa)+$"', p)


def test_matches_reads_text_a_process_could_not_encode() -> None:
    assert holds('cmdline matches "x"', process(cmdline="\udc80x"))
    assert holds('cmdline glob "*x"', process(cmdline="\udc80x"))


def test_glob_matches_the_whole_string() -> None:
    p = process(exe="/usr/local/bin/node")
    assert holds('exe glob "/usr/*/node"', p)
    assert holds('exe glob "*node"', p)
    assert not holds('exe glob "*nod"', p)
    assert not holds('exe glob "/usr"', p)
    assert holds('exe glob "/usr/local/bin/[mn]ode"', p)
    assert holds('exe glob "/usr/local/bin/nod?"', p)


def test_regex_and_glob_are_compiled_once() -> None:
    from linnix.language.regex import Pattern

    r = rule('rule r: comm matches "^a" or exe glob "*b" or cmdline matches "^a"')
    compiled = [v.__self__ for v in r.cond.__globals__.values()
                if isinstance(getattr(v, "__self__", None), Pattern)]
    assert sorted((p.source, p.regex) for p in compiled) == [("*b", "(?s).*b"), ("^a", "^a")]


# ---- time, rates, windows ---------------------------------------------------------------------


def test_age_and_rates_are_read_at_now() -> None:
    seen: list[float] = []
    p = process()
    p.age = lambda now: seen.append(now) or now - 1000.0
    assert holds("age_s > 5m", p, now=1400.0) is True
    assert holds("age_s > 5m", p, now=1200.0) is False
    assert seen == [1400.0, 1200.0]
    h = host()
    h.forks = SimpleNamespace(count=lambda now: 50 if now > 10 else 0)
    assert holds("forks_per_sec > 10", None, h, now=11.0)
    assert not holds("forks_per_sec > 10", None, h, now=9.0)


def test_windowed_functions_ask_the_record_for_the_window() -> None:
    calls: list[tuple[str, str, float, float]] = []
    p = process(calls=calls, windows={("avg", "cpu_pct", 10.0): 70.0,
                                      ("delta", "rss_mb", 60.0): 200.0})
    cond = when("avg(cpu_pct, 10s) > 50 and delta(rss_mb, 1m) > 100MiB")
    assert cond(p, H, 42.0) is True
    assert calls == [("avg", "cpu_pct", 10.0, 42.0), ("delta", "rss_mb", 60.0, 42.0)]


@pytest.mark.parametrize("func", ["avg", "min", "max", "delta", "rate"])
def test_a_window_not_yet_observed_has_no_value(func: str) -> None:
    cond = when(f"{func}(cpu_pct, 10s) > 1")
    assert cond(process(windows={}), H, 0.0) is False
    assert cond(process(windows={(func, "cpu_pct", 10.0): 2.0}), H, 0.0) is True
    assert when(f"not ({func}(cpu_pct, 10s) > 1)")(process(), H, 0.0) is True


def test_windows_over_system_metrics_ask_the_host() -> None:
    calls: list[tuple[str, str, float, float]] = []
    h = host(calls=calls, windows={("rate", "forks_per_sec", 5.0): 3.0})
    assert holds("rate(forks_per_sec, 5s) > 2", None, h, now=7.0)
    assert calls == [("rate", "forks_per_sec", 5.0, 7.0)]


def test_system_names_in_process_rules_read_the_host() -> None:
    cond = when("cpu_pct > 50 and host_cpu_pct > 90")
    assert cond(process(cpu_pct=60.0), host(host_cpu_pct=95.0), 0.0)
    assert not cond(process(cpu_pct=60.0), host(host_cpu_pct=50.0), 0.0)


def test_subtree_metrics() -> None:
    r = rule("rule r: subtree_cpu_pct > 90 and subtree_procs >= 2 and comm == \"make\"")
    assert r.scope is Scope.SUBTREE
    assert r.cond(process(subtree_cpu_pct=120.0, subtree_procs=3, comm="make"), H, 0.0)
    assert not r.cond(process(subtree_cpu_pct=120.0, subtree_procs=1, comm="make"), H, 0.0)


def test_system_rules_take_no_process() -> None:
    r = rule("rule r: host_cpu_pct > 90% and psi_cpu_some > 40")
    assert r.scope is Scope.SYSTEM
    assert r.cond(None, host(host_cpu_pct=95.0, psi_cpu_some=50.0), 0.0) is True
    assert r.cond(None, host(host_cpu_pct=95.0, psi_cpu_some=None), 0.0) is False


def test_constant_conditions() -> None:
    assert rule("rule r: 2 > 1").cond(None, H, 0.0) is True
    assert rule("rule r: 1 > 2").cond(None, H, 0.0) is False


# ---- values, messages, clear ------------------------------------------------------------------


def test_values_report_every_input_and_message_name() -> None:
    r = rule('rule r {\n when cpu_pct > 50 and avg(rss_mb, 10s) > 1\n'
             ' message "{comm}[{pid}] {threads} threads" }')
    p = process(cpu_pct=60.0, comm="x", pid=7, threads=3,
                windows={("avg", "rss_mb", 10.0): 5.0})
    assert r.values(p, H, 0.0) == {"cpu_pct": 60.0, "avg(rss_mb, 10s)": 5.0, "comm": "x",
                                   "pid": 7, "threads": 3}
    assert r.message.render(r.values(p, H, 0.0)) == "x[7] 3 threads"


def test_default_message_lists_what_the_condition_reads() -> None:
    r = rule("rule r: cpu_pct > 50 and parent.comm == \"sh\"")
    assert r.message.source == "{comm}[{pid}]: cpu_pct={cpu_pct:.6g}, parent.comm={parent.comm}"
    values = r.values(process(cpu_pct=60.5, comm="x", pid=7, parent=process(comm="sh")), H, 0)
    assert r.message.render(values) == "x[7]: cpu_pct=60.5, parent.comm=sh"
    s = rule("rule s: forks_per_sec > 10")
    assert s.message.source == "forks_per_sec={forks_per_sec:.6g}"
    assert rule("rule t: 2 > 1").message.source == "{rule}"


def test_clear_condition_is_compiled() -> None:
    r = rule("rule r {\n when cpu_pct > 90\n clear when cpu_pct < 20 for 5s\n}")
    assert r.clear is not None and r.clear_text == "cpu_pct < 20" and r.clear_for_s == 5.0
    assert r.clear(process(cpu_pct=10.0), H, 0.0) is True
    assert r.clear(process(cpu_pct=None), H, 0.0) is False
    assert rule("rule r: cpu_pct > 1").clear is None


# ---- the generated code -----------------------------------------------------------------------


def test_generated_code_is_deterministic() -> None:
    text = 'rule a: comm matches "x" and fds > 1\nrule b: comm in ["b", "a"]\n'
    assert compile_text(text, "t.lnx").generated == compile_text(text, "t.lnx").generated


def test_generated_code_has_no_builtins() -> None:
    r = rule("rule r: cpu_pct > 1")
    assert r.cond.__globals__["__builtins__"] == {}


def test_a_failing_condition_points_at_the_lnx_line() -> None:
    p = plan("# header\n\nrule quiet: fds > 1\nrule r {\n  description \"d\"\n"
             "  when cpu_pct > 90 for 5s\n}\n", "rules/x.lnx")
    r = p.rule("r")
    assert r is not None

    class Broken:
        @property
        def cpu_pct(self) -> float:
            raise RuntimeError("sampler bug")

    with pytest.raises(RuntimeError) as info:
        r.cond(Broken(), H, 0.0)
    frame = traceback.extract_tb(info.value.__traceback__)[-2]
    assert (frame.filename, frame.lineno) == (module_name("rules/x.lnx"), 6)
    assert "cpu_pct > 90" in (frame.line or "")
    assert "rules/x.lnx:6: cpu_pct > 90" in linecache.getline(module_name("rules/x.lnx"), 6)


def test_rules_compiled_to_see_that_they_compile_leave_linecache_alone() -> None:
    # `linnix check` compiles rules in batches and keeps none: the source of a
    # batch would replace that of a plan in use in the same process
    linecache.cache.pop(module_name("rules/quiet.lnx"), None)  # an earlier test's plan
    checked = check_program(load_text("rule r: cpu_pct > 1\n", "rules/quiet.lnx",
                                      outline=True))
    assert checked.compiled == 1
    assert module_name("rules/quiet.lnx") not in linecache.cache
    p = compile_text("rule r: cpu_pct > 1\n", "rules/quiet.lnx")
    assert p.rules and module_name("rules/quiet.lnx") in linecache.cache


@pytest.mark.parametrize("padding", [0, 499, 500, 1234])
def test_line_numbers_hold_however_long_the_file(padding: int) -> None:
    text = "#\n" * padding + "rule a: fds > 1\nrule b: cpu_pct > 90 rule c: rss_mb > 1\n"
    p = plan(text, "long.lnx")

    class Broken:
        @property
        def cpu_pct(self) -> float:
            raise RuntimeError("sampler bug")

        @property
        def fds(self) -> float:
            raise RuntimeError("sampler bug")

    for name, line in (("a", padding + 1), ("b", padding + 2)):
        r = p.rule(name)
        assert r is not None
        with pytest.raises(RuntimeError) as info:
            r.cond(Broken(), H, 0.0)
        frame = traceback.extract_tb(info.value.__traceback__)[-2]
        assert (frame.filename, frame.lineno) == (module_name("long.lnx"), line)
    c = p.rule("c")
    assert c is not None and c.cond(process(rss_mb=2.0), H, 0.0) is True


def test_rules_sharing_a_line_still_compile() -> None:
    p = plan("rule a: cpu_pct > 1 rule b: fds > 2 rule c { when rss_mb > 3 }")
    assert [r.cond(process(cpu_pct=2.0, fds=3, rss_mb=4.0), H, 0.0) for r in p.rules] == [
        True, True, True]
    assert [r.cond(process(cpu_pct=0.0, fds=0, rss_mb=0.0), H, 0.0) for r in p.rules] == [
        False, False, False]


def test_each_file_gets_its_own_generated_module(tmp_path: Any) -> None:
    from support import write

    from linnix.language.pipeline import build

    write(tmp_path, {"a.lnx": "rule a: cpu_pct > 1\n", "b.lnx": "rule b: fds > 1\n"})
    result = build([str(tmp_path)])
    assert result.plan is not None
    assert sorted(result.plan.generated) == [str(tmp_path / "a.lnx"), str(tmp_path / "b.lnx")]
    assert [r.path for r in result.plan.rules] == sorted(result.plan.generated)


@pytest.mark.parametrize(("spec", "value", "text"), [
    ("d", 7, "7"), ("d", 61.6, "62"), ("x", 255, "ff"), (">4d", 3.2, "   3"),
    (".1f", 7, "7.0"), (".0f", 61.6, "62"), ("", 61.6, "61.6"),
])
def test_a_number_formats_as_an_int_or_a_float(spec: str, value: float, text: str) -> None:
    r = rule(f'rule r {{ when cpu_pct > 50\n message "{{cpu_pct:{spec}}}" }}')
    assert r.message.render({"cpu_pct": value}) == text


def test_integer_formats_are_accepted_for_numbers_not_for_strings() -> None:
    assert codes('rule r { when cpu_pct > 50\n message "{pid:d} {fds:x} {cpu_pct:d}" }') == []
    bad = only('rule r { when cpu_pct > 50\n message "{comm:d}" }', "E308")
    assert bad.message == ("invalid format 'd' for 'comm': Unknown format code 'd' for "
                           "object of type 'str'")
    bad = only('rule r { when cpu_pct > 50\n message "{pid:.q}" }', "E308")
    assert bad.message == "invalid format '.q' for 'pid': Format specifier missing precision"


# ---- the rule's text, as loaded ----------------------------------------------------------


def test_a_compiled_rule_keeps_its_text_as_written() -> None:
    text = ('# a comment before it is not its\nrule hot: cpu_pct > 90\n\nrule big {\n'
            '    when rss_mb > 10 for 5s   # why: a leak\n    severity warning\n}\n')
    hot, big = compile_text(text, "r.lnx").rules
    assert (hot.source, hot.line) == ("rule hot: cpu_pct > 90", 2)
    assert big.source == ("rule big {\n    when rss_mb > 10 for 5s   # why: a leak\n"
                          "    severity warning\n}")
    assert big.line == 4
