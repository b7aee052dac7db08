"""``test`` blocks: what the checker makes of them (E7xx, W106) and what the plan carries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import write

from linnix.language.ir import CheckedTest, Expectation
from linnix.language.pipeline import Build, build

RULE = "rule r: cpu_pct > 1\n"


def build_file(tmp_path: Path, text: str, traces: tuple[str, ...] = ("t.jsonl",)) -> Build:
    write(tmp_path, {"x.lnx": text, **{t: "" for t in traces}})
    return build([str(tmp_path / "x.lnx")])


def errors(result: Build) -> list[tuple[str, str]]:
    return [(d.code, d.message) for d in result.diagnostics]


def test_every_statement_is_checked_into_an_expectation(tmp_path: Path) -> None:
    result = build_file(tmp_path, RULE + '''
test "cpu spike is caught" {
    trace "t.jsonl"
    tick 250ms
    expect r firing between 10s and 12s
    expect r resolved between 20 and 23.5s
    expect r pending between 1m and 1m
    expect r firing for pid 300
    expect r never
    expect action kill for pid 301
    expect r fires 2 times
    expect r fires 0 times
}''')
    assert result.diagnostics == []
    assert result.plan is not None
    (t,) = result.plan.tests
    assert isinstance(t, CheckedTest)
    assert (t.title, t.trace, t.tick_s, t.rules) == (
        "cpu spike is caught", str(tmp_path / "t.jsonl"), 0.25, ("r",))
    assert [(e.kind, e.rule, e.state, e.low, e.high, e.pid, e.count, e.action)
            for e in t.expects] == [
        ("between", "r", "firing", 10.0, 12.0, None, None, None),
        ("between", "r", "resolved", 20.0, 23.5, None, None, None),
        ("between", "r", "pending", 60.0, 60.0, None, None, None),
        ("pid", "r", "firing", None, None, 300, None, None),
        ("never", "r", None, None, None, None, None, None),
        ("action", None, None, None, None, 301, None, "kill"),
        ("count", "r", None, None, None, None, 2, None),
        ("count", "r", None, None, None, None, 0, None),
    ]
    assert t.expects[0].text == "expect r firing between 10s and 12s"
    assert isinstance(t.expects[0], Expectation)


def test_trace_is_relative_to_the_file_and_tick_is_optional(tmp_path: Path) -> None:
    write(tmp_path, {"traces/a.jsonl": ""})
    result = build_file(tmp_path, RULE + 'test "t" {\n trace "traces/../traces/a.jsonl"\n'
                        " expect r never\n}", traces=())
    assert result.diagnostics == []
    assert result.plan is not None
    (t,) = result.plan.tests
    assert t.trace == os.path.normpath(str(tmp_path / "traces" / "a.jsonl"))
    assert t.tick_s is None


def test_rules_visible_to_a_test_include_included_files(tmp_path: Path) -> None:
    write(tmp_path, {"lib.lnx": "rule from_lib: cpu_pct > 1\n", "t.jsonl": "",
                     "main.lnx": 'include "lib.lnx"\nrule mine: fds > 1\n'
                                 'test "t" { trace "t.jsonl"\n expect from_lib never }\n'})
    result = build([str(tmp_path / "main.lnx")])
    assert result.diagnostics == []
    assert result.plan is not None
    assert result.plan.tests[0].rules == ("from_lib", "mine")


def test_e701_unknown_rule(tmp_path: Path) -> None:
    result = build_file(tmp_path, RULE + 'test "t" {\n trace "t.jsonl"\n expect rr never\n}')
    assert errors(result) == [("E701", "unknown rule 'rr' (did you mean 'r'?)")]
    assert result.diagnostics[0].span.text == "rr"
    assert result.diagnostics[0].hint is None


def test_e701_rule_defined_in_a_file_not_included(tmp_path: Path) -> None:
    write(tmp_path, {"other.lnx": "rule elsewhere: cpu_pct > 1\n", "t.jsonl": "",
                     "x.lnx": 'test "t" {\n trace "t.jsonl"\n expect elsewhere never\n}'})
    result = build([str(tmp_path)])
    (d,) = result.diagnostics
    assert (d.code, d.hint) == ("E701", "it is defined in a file this one does not include")


def test_e702_test_without_trace(tmp_path: Path) -> None:
    result = build_file(tmp_path, RULE + 'test "no trace" {\n expect r never\n}')
    assert errors(result) == [("E702", "test \"no trace\" has no 'trace'")]


def test_e703_trace_file_not_found(tmp_path: Path) -> None:
    result = build_file(tmp_path, RULE + 'test "t" {\n trace "nope.jsonl"\n expect r never\n}')
    assert errors(result) == [("E703", f"trace file not found: {tmp_path / 'nope.jsonl'}")]
    assert result.diagnostics[0].span.text == '"nope.jsonl"'


def test_e704_empty_interval(tmp_path: Path) -> None:
    result = build_file(tmp_path, RULE + 'test "t" {\n trace "t.jsonl"\n'
                        " expect r firing between 5s and 2s\n}")
    assert errors(result) == [("E704", "empty interval: 5s is after 2s")]


def test_e502_trace_or_tick_twice(tmp_path: Path) -> None:
    result = build_file(tmp_path, RULE + 'test "t" {\n trace "t.jsonl"\n trace "t.jsonl"\n'
                        " tick 1s\n tick 2s\n expect r never\n}")
    assert errors(result) == [("E502", "'trace' given twice in this test"),
                              ("E502", "'tick' given twice in this test")]


@pytest.mark.parametrize(("stmt", "code", "message"), [
    ("expect action kil for pid 1", "E601", "unknown action 'kil' (did you mean 'kill'?)"),
    ("expect r firing for pid 1.5", "E302", "expected a pid, a whole number >= 1"),
    ("expect r firing for pid 0", "E302", "expected a pid, a whole number >= 1"),
    ("expect action kill for pid 0", "E302", "expected a pid, a whole number >= 1"),
    ("expect r fires 1.5 times", "E302", "expected a count, a whole number >= 0"),
    ("expect r firing between 5% and 6s", "E301",
     "a time must be a duration such as 5s, got a percentage"),
    ("expect r firing between nosuch and 6s", "E201", "unknown name 'nosuch'"),
])
def test_bad_expectations(tmp_path: Path, stmt: str, code: str, message: str) -> None:
    result = build_file(tmp_path, RULE + f'test "t" {{\n trace "t.jsonl"\n {stmt}\n}}')
    assert errors(result) == [(code, message)]


def test_w106_test_that_expects_nothing(tmp_path: Path) -> None:
    result = build_file(tmp_path, RULE + 'test "idle" {\n trace "t.jsonl"\n}')
    assert errors(result) == [("W106", 'test "idle" expects nothing')]
    assert result.plan is not None  # a warning only


def test_tick_needs_a_positive_duration(tmp_path: Path) -> None:
    result = build_file(tmp_path, RULE + 'test "t" {\n trace "t.jsonl"\n tick 0ms\n'
                        " expect r never\n}")
    assert errors(result) == [("E304", "tick must be positive")]
    result = build_file(tmp_path, RULE + 'test "t" {\n trace "t.jsonl"\n tick 5\n'
                        " expect r never\n}")
    assert errors(result) == [("E305", "tick needs a unit")]
