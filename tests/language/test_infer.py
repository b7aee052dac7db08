"""Units and types: literal conversion, mismatches, durations, regexes and templates."""

from __future__ import annotations

import pytest
from support import diagnostics, only, process, rule, when

from linnix.names import UNITS, Dim

# ---- conversion of unit literals -----------------------------------------------------------


@pytest.mark.parametrize(("condition", "text"), [
    ("rss_mb > 1GiB", "rss_mb > 1024"),
    ("rss_mb > 1.5GiB", "rss_mb > 1536"),
    ("rss_mb > 512MiB", "rss_mb > 512"),
    ("rss_mb > 1024KiB", "rss_mb > 1"),
    ("rss_mb > 50MB", "rss_mb > 47.6837158203125"),
    ("rss_mb > 1GB", "rss_mb > 953.67431640625"),
    ("rss_mb > 1KB", "rss_mb > 0.00095367431640625"),
    ("age_s > 5m", "age_s > 300"),
    ("age_s > 2h", "age_s > 7200"),
    ("age_s > 1500ms", "age_s > 1.5"),
    ("age_s > 30s", "age_s > 30"),
    ("cpu_pct > 90%", "cpu_pct > 90"),
    ("host_mem_used_pct >= 99.5%", "host_mem_used_pct >= 99.5"),
    ("cpu_pct > 90", "cpu_pct > 90"),          # a bare number takes its partner's unit
    ("rss_mb > 1GiB / 2", "rss_mb > 512"),
    ("cpu_pct > 5 * 10%", "cpu_pct > 50"),
    ("mem_available_mb < 1GiB - 24MiB", "mem_available_mb < 1000"),
])
def test_unit_literals_are_converted_to_the_metric_unit(condition: str, text: str) -> None:
    assert rule(f"rule r: {condition}").cond_text == text


def test_converted_literals_decide_at_run_time() -> None:
    cond = when("rss_mb > 1GiB")
    assert cond(process(rss_mb=1025.0), None, 0.0)
    assert not cond(process(rss_mb=1023.0), None, 0.0)
    cond = when("rss_mb > 50MB")
    assert cond(process(rss_mb=47.7), None, 0.0)
    assert not cond(process(rss_mb=47.68), None, 0.0)
    cond = when("age_s > 5m")
    assert cond(process(age_s=301.0), None, 0.0)
    assert not cond(process(age_s=299.0), None, 0.0)


def test_unit_table() -> None:
    assert {u: (UNITS[u].dim, UNITS[u].factor) for u in ("s", "m", "MiB", "%")} == {
        "s": (Dim.DURATION, 1.0), "m": (Dim.DURATION, 60.0), "MiB": (Dim.SIZE, 1.0),
        "%": (Dim.PERCENT, 1.0)}
    assert UNITS["MB"].factor == pytest.approx(1e6 / 2**20)


def test_durations_in_clauses_are_seconds() -> None:
    r = rule("rule r {\n when cpu_pct > 1 for 1500ms\n clear when cpu_pct < 1 for 2m\n"
             " keep_firing_for 1h\n cooldown 0.5s }")
    assert (r.for_s, r.clear_for_s, r.keep_firing_for_s, r.cooldown_s) == (1.5, 120.0,
                                                                         3600.0, 0.5)


def test_duration_given_by_a_let() -> None:
    assert rule("let hold = 2m\nrule r: cpu_pct > 1 for hold").for_s == 120.0


def test_zero_is_allowed_for_keep_firing_for_and_cooldown() -> None:
    r = rule("rule r { when cpu_pct > 1\n keep_firing_for 0s\n cooldown 0ms }")
    assert (r.keep_firing_for_s, r.cooldown_s) == (0.0, 0.0)


# ---- E301: unit mismatch ---------------------------------------------------------------------


def test_e301_compare_with_the_wrong_unit() -> None:
    d = only("rule r: cpu_pct > 2s", "E301")
    assert d.message == ("unit mismatch: 'cpu_pct' is a percentage, '2s' is a duration "
                         "in seconds")
    assert d.span.text == "cpu_pct > 2s"


@pytest.mark.parametrize("condition", [
    "rss_mb > 5%", "age_s > 1GiB", "fd_pct > 10MB", "rss_mb > 5m",
    "avg(rss_mb, 10s) > 2s", "host_cpu_pct > 1KB",
])
def test_e301_mismatches(condition: str) -> None:
    assert only(f"rule r: {condition}", "E301").message.startswith("unit mismatch: ")


def test_e301_arithmetic_mixing_units() -> None:
    d = only("rule r: rss_mb + 5s > 1", "E301")
    assert d.message == ("cannot combine a size in MiB and a duration in seconds with '+'")


def test_e301_list_mixing_units() -> None:
    assert only("rule r: rss_mb in [1MB, 5s]", "E301").message == "list items mix units"


def test_e301_in_against_a_list_of_another_unit() -> None:
    d = only("rule r: rss_mb in [1s, 5s]", "E301")
    assert d.message == ("unit mismatch: 'rss_mb' is a size in MiB, but each list item is "
                         "a duration in seconds")


def test_e301_duration_of_the_wrong_kind() -> None:
    d = only("rule r: cpu_pct > 1 for 5%", "E301")
    assert d.message == "'for' must be a duration such as 5s, got a percentage"
    d = only("rule r: avg(cpu_pct, 1GiB) > 1", "E301")
    assert d.message == "a window must be a duration such as 5s, got a size in MiB"


# ---- E302: types ---------------------------------------------------------------------------


@pytest.mark.parametrize(("condition", "message"), [
    ("comm == 1", "cannot compare a string with a number"),
    ('comm < "a"', "'<' needs numbers, not strings"),
    ('comm in "abc"', "the right side of 'in' must be a list, got a string"),
    ('cpu_pct in ["a"]', "cannot look for a number in a list of strings"),
    ("not cpu_pct", "the operand of 'not' must be a bool, got a number"),
    ("cpu_pct and true", "an operand of 'and' must be a bool, got a number"),
    ("true or fds", "an operand of 'or' must be a bool, got a number"),
    ("comm + 1 > 2", "the left side of '+' must be a number, got a string"),
    ("1 * comm > 2", "the right side of '*' must be a number, got a string"),
    ('-comm == "x"', "the operand of '-' must be a number, got a string"),
    ('[1, "a"] == [1]', "list items must share one type: found number and string"),
    ("comm in [comm]", "list items must be constants"),
    ("comm startswith 1", "the right side of 'startswith' must be a string, got a number"),
    ('fds endswith "x"', "the left side of 'endswith' must be a string, got a number"),
    ('cpu_pct matches "x"', "the left side of 'matches' must be a string, got a number"),
    ('cpu_pct glob "x"', "the left side of 'glob' must be a string, got a number"),
    ("[[1]] == []", "a list cannot hold a list of numbers"),
    ('ancestors == "bash"', "cannot compare a list of strings with a string"),
    ("cpu_pct", "the 'when' condition must be true or false, got a percentage"),
    ('"x"', "the 'when' condition must be true or false, got string"),
    ("rss_mb + 1", "the 'when' condition must be true or false, got a size in MiB"),
    ("1 + 1", "the 'when' condition must be true or false, got a bare number"),
])
def test_e302_type_errors(condition: str, message: str) -> None:
    assert only(f"rule r: {condition}", "E302").message == message


def test_e302_unless_and_clear_must_be_conditions() -> None:
    found = diagnostics("rule r { when cpu_pct > 1\n unless comm\n clear when fds }")
    assert [(d.code, d.message) for d in found] == [
        ("E302", "an 'unless' condition must be true or false, got string"),
        ("E302", "the 'clear when' condition must be true or false, got a plain number")]


def test_e302_let_must_be_constant() -> None:
    found = [d for d in diagnostics("let x = cpu_pct > 1\nrule r: x") if d.code == "E302"]
    assert [d.message for d in found] == ["a let needs a constant value, but it reads 'cpu_pct'"]
    assert found[0].hint == "use 'macro' for expressions over metrics"


def test_e302_let_without_a_value() -> None:
    d = only("let x = 1/0\nrule r: cpu_pct > x", "E302")
    assert d.message == ("a let needs a constant value, but it has none "
                         "(it divides by zero or overflows)")
    assert only("let x = -(10 / (5 - 5))\nrule r: cpu_pct > x", "E302").span.text == \
        "-(10 / (5 - 5))"


def test_e302_list_item_without_a_value() -> None:
    d = only("rule r: cpu_pct in [1, 1/0]", "E302")
    assert d.message == "this list item has no value (it divides by zero or overflows)"
    assert d.span.text == "1/0"


def test_e302_enabled_must_be_a_bool() -> None:
    assert only('rule r { when cpu_pct > 1\n enabled "yes" }', "E302").message == \
        "'enabled' takes true or false"


# ---- E303: unknown unit --------------------------------------------------------------------


def test_e303_unknown_unit_with_suggestion() -> None:
    d = only("rule r: age_s > 5min", "E303")
    assert d.message == "unknown unit 'min' (known units: ms s m h KB MB GB KiB MiB GiB %)"
    assert d.hint == "did you mean 'm'?"
    assert d.span.text == "5min"


@pytest.mark.parametrize(("unit", "meant"), [
    ("gib", "GiB"), ("kb", "KB"), ("S", "s"), ("MS", "ms"), ("secs", "s"), ("minutes", "m"),
    ("hr", "h"), ("percent", "%"), ("Mib", "MiB"),
])
def test_e303_units_are_case_sensitive_and_suggested(unit: str, meant: str) -> None:
    assert only(f"rule r: rss_mb > 1{unit}", "E303").hint == f"did you mean '{meant}'?"


def test_e303_without_a_suggestion() -> None:
    assert only("rule r: rss_mb > 1zz", "E303").hint is None


# ---- E304 / E305: durations ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("rule r: cpu_pct > 1 for 0s", "'for' must be positive"),
    ("let d = -5s\nrule r: cpu_pct > 1 for d", "'for' must be positive"),
    ("rule r { when cpu_pct > 1\n clear when cpu_pct < 1 for 0ms }",
     "'clear when ... for' must be positive"),
    ("rule r: avg(cpu_pct, 0s) > 1", "a window must be positive"),
    ("rule r: avg(cpu_pct, -1s) > 1", "a window must be positive"),
    ("let d = -1s\nrule r { when cpu_pct > 1\n cooldown d }", "cooldown must be zero or positive"),
    ("let d = -1s\nrule r { when cpu_pct > 1\n keep_firing_for d }",
     "keep_firing_for must be zero or positive"),
    ('test "t" { trace "x"\n tick 0s }', "tick must be positive"),
    ("rule r: avg(cpu_pct, 10s / 0) > 1",
     "a window has no value (it divides by zero or overflows)"),
    ("rule r { when cpu_pct > 1\n action kill(grace = 1s / 0) }",
     "the grace period has no value (it divides by zero or overflows)"),
])
def test_e304_durations_must_be_positive(text: str, message: str) -> None:
    found = [d for d in diagnostics(text) if d.code == "E304"]
    assert [d.message for d in found] == [message]


@pytest.mark.parametrize(("text", "what"), [
    ("rule r: cpu_pct > 1 for 5", "'for'"),
    ("rule r: avg(cpu_pct, 5) > 1", "a window"),
    ("rule r { when cpu_pct > 1\n cooldown 30 }", "cooldown"),
    ("rule r { when cpu_pct > 1\n action kill(grace = 10) }", "the grace period"),
])
def test_e305_duration_without_unit(text: str, what: str) -> None:
    d = only(text, "E305")
    assert d.message == f"{what} needs a unit"
    assert d.hint is not None and d.hint.startswith("write e.g. ")


# ---- E306: regular expressions ---------------------------------------------------------------


def test_e306_invalid_regex_points_into_the_string() -> None:
    d = only('rule r: comm matches "a(b"', "E306")
    assert d.message == "invalid regular expression: missing ')': a group is never closed"
    assert (d.span.col, d.span.text) == (24, "(")


def test_e306_invalid_regex_with_escapes_points_at_the_string() -> None:
    d = only('rule r: comm matches "\\\\d("', "E306")
    assert d.span.text == '"\\\\d("'


@pytest.mark.parametrize("pattern", ["[z-a]", "*", "a{1000}{1000}{1000}", "[[:foo:]]",
                                     "(((a{100}){100}){100}){100}"])
def test_e306_any_regex_the_linear_engine_refuses(pattern: str) -> None:
    assert only(f'rule r: comm matches "{pattern}"', "E306").message.startswith(
        "invalid regular expression: ")


@pytest.mark.parametrize(("pattern", "what", "at"), [
    ("(?<=x)y", "look-behind is not supported", "(?<="),
    ("(?<!x)y", "look-behind is not supported", "(?<!"),
    ("x(?=y)", "look-ahead is not supported", "(?="),
    ("x(?!y)", "look-ahead is not supported", "(?!"),
    ("(?>ab)c", "an atomic group is not supported", "(?>"),
    ("a*+b", "a possessive repeat is not supported", "*+"),
    ("(?P<x>a)(?P=x)", "a backreference is not supported", "(?P="),
])
def test_e306_what_cannot_run_in_linear_time_is_refused_with_a_reason(
        pattern: str, what: str, at: str) -> None:
    d = only(f'rule r: cmdline matches "{pattern}"', "E306")
    assert d.message == f"invalid regular expression: {what}"
    assert d.span.text == at
    assert d.hint is not None and "linear" in d.hint


def test_e306_backreference_and_python_end_anchor() -> None:
    d = only('rule r: cmdline matches "(a)\\\\1"', "E306")
    assert d.message == "invalid regular expression: a backreference is not supported"
    d = only('rule r: cmdline matches "a\\\\Z"', "E306")
    assert d.message == "invalid regular expression: '\\Z' is not supported"
    assert d.hint == "write '\\z' for the end of the text"


def test_a_pattern_that_backtracks_exponentially_elsewhere_is_accepted() -> None:
    # RE2 runs it in linear time: there is nothing to refuse
    assert diagnostics('rule r: cmdline matches "(a+)+$"') == []


def test_refusals_are_not_printed_by_the_regex_engine(capfd: pytest.CaptureFixture[str]) -> None:
    only('rule r: cmdline matches "(?<=x)y"', "E306")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_glob_patterns_are_never_invalid() -> None:
    for pattern in ["[", "[!]", "[z-a]", "*" * 200, "a[]b]c"]:
        assert diagnostics(f'rule r: exe glob "{pattern}"') == []


# ---- E308: message templates -----------------------------------------------------------------


@pytest.mark.parametrize(("template", "message", "at"), [
    ("{comm!r}", "conversion '!r' is not supported", "c"),
    ("{cpu_pct:q}", "invalid format 'q' for 'cpu_pct': Unknown format code 'q' for object "
                    "of type 'float'", "cpu_pct"),
    ("{comm:.2f}", "invalid format '.2f' for 'comm': Unknown format code 'f' for object "
                   "of type 'str'", "comm"),
    ("a } b", "invalid message template: Single '}' encountered in format string", "}"),
    ("a { b", "invalid message template: expected '}' before end of string", "{"),
    ("{}", "placeholder '{}' must be a plain name", "}"),
    ("{a..b}", "placeholder 'a..b' must be a plain name", "a..b"),
    ("{0}", "placeholder '0' must be a plain name", "0"),
])
def test_e308_template_errors(template: str, message: str, at: str) -> None:
    d = only(f'rule r {{ when cpu_pct > 1\n message "{template}" }}', "E308")
    assert d.message == message
    assert d.span.text == at


def test_template_escaped_braces_and_specs_are_fine() -> None:
    r = rule('rule r { when cpu_pct > 1\n message "{{literal}} {cpu_pct:>8.1f}% {comm:>10}" }')
    assert r.message.names == ("cpu_pct", "comm")
    assert r.message.render({"cpu_pct": 95.25, "comm": "x"}) == "{literal}     95.2%          x"


def test_template_renders_missing_values_as_n_a() -> None:
    r = rule('rule r { when cpu_pct > 1\n message "{comm}: {cpu_pct:.0f}" }')
    assert r.message.render({"comm": None}) == "n/a: n/a"
