"""Pre-filters of event rules (``linnix/language/prefilter.py``): the keys derived from a
condition, the fallbacks, and the text every match of a regular expression contains."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linnix.language.pipeline import compile_text
from linnix.language.prefilter import required_literal
from linnix.language.regex import PatternError, compile_regex

Keys = frozenset[tuple[str, str, str | float]] | None


def keys(when: str, trigger: str = "exec") -> Keys:
    plan = compile_text(f"rule r {{\n on {trigger}\n when {when}\n}}\n")
    (rule,) = plan.rules
    if rule.prefilter is None:
        return None
    return frozenset((k.field, k.how, k.value) for k in rule.prefilter)


@pytest.mark.parametrize(("when", "expected"), [
    ('comm == "nc"', {("comm", "is", "nc")}),
    ('"nc" == comm', {("comm", "is", "nc")}),
    ('comm in ["nc", "ncat"]', {("comm", "is", "nc"), ("comm", "is", "ncat")}),
    ('exe startswith "/tmp/"', {("exe", "prefix", "/tmp/")}),
    ('exe endswith "/xmrig"', {("exe", "suffix", "/xmrig")}),
    ('cmdline contains "base64 -d"', {("cmdline", "contains", "base64 -d")}),
    ('exe glob "/var/tmp/*"', {("exe", "prefix", "/var/tmp/")}),
    ('exe glob "*/xmrig"', {("exe", "suffix", "/xmrig")}),
    ('exe glob "/bin/sh"', {("exe", "is", "/bin/sh")}),
    ('cmdline matches "curl .*\\\\| *sh"', {("cmdline", "contains", "curl ")}),
    ('parent.comm == "nginx"', {("parent.comm", "is", "nginx")}),
    ("uid == 0", {("uid", "is", 0.0)}),  # a number field compared for equality
    ("ppid in [1, 2]", {("ppid", "is", 1.0), ("ppid", "is", 2.0)}),
    ('parent.parent.exe startswith "/opt/"', {("parent.parent.exe", "prefix", "/opt/")}),
    # a conjunction: any conjunct's keys; exact values and the process's own fields first
    ('uid > 0 and comm == "sh"', {("comm", "is", "sh")}),
    ('exe startswith "/tmp/" and comm in ["a", "b"]', {("comm", "is", "a"), ("comm", "is", "b")}),
    ('parent.comm == "nginx" and comm in ["a", "b"]', {("comm", "is", "a"), ("comm", "is", "b")}),
    # a disjunction: every branch's keys, over any fields
    ('comm == "xmrig" or exe endswith "/xmrig"', {("comm", "is", "xmrig"),
                                                  ("exe", "suffix", "/xmrig")}),
    # unless is folded in as 'and not': the when's keys stay
    ('comm == "sh" unless parent.comm == "bash"', {("comm", "is", "sh")}),
])
def test_a_condition_gives_the_keys_it_needs(when: str,
                                            expected: set[tuple[str, str, object]]) -> None:
    assert keys(when) == frozenset(expected)


@pytest.mark.parametrize("when", [
    'comm != "sh"', 'not (comm == "sh")', 'comm not in ["a", "b"]', "uid >= 0", "uid != 0",
    'comm == "sh" or uid > 0',  # a branch with none: any event may do
    "cpu_pct + 1 == 2",
    '"nginx" in ancestors', 'exe glob "*"', 'exe glob "[ab]*"', 'comm == parent.comm',
    'cmdline matches "a|b"', 'cmdline matches "(?i)curl"', "true",
])
def test_what_gives_no_keys_is_judged_at_every_event(when: str) -> None:
    assert keys(when) is None


def test_exit_names_and_rules_judged_at_ticks() -> None:
    assert keys('exit_signal == "SIGKILL"', "exit") == {("exit_signal", "is", "SIGKILL")}
    assert keys("exit_code == 137", "exit") == {("exit_code", "is", 137.0)}


def test_the_fields_of_network_events() -> None:
    assert keys("remote_port == 4444", "connect") == {("remote_port", "is", 4444.0)}
    assert keys("local_port in [80, 443]", "accept") == {("local_port", "is", 80.0),
                                                          ("local_port", "is", 443.0)}
    assert keys('family == "unix" and local_port > 1', "listen") == {("family", "is", "unix")}
    assert keys('remote_addr in_cidr "10.0.0.0/8"', "connect") is None  # a range: no key
    assert keys('remote_addr == "10.0.0.1" and remote_addr is_private', "connect") == {
        ("remote_addr", "is", "10.0.0.1")}
    (rule,) = compile_text('rule r: comm == "sh"').rules
    assert rule.prefilter is None  # only event rules are judged at events


@pytest.mark.parametrize(("pattern", "literal"), [
    ("curl .*\\| *sh", "curl "), ("abc", "abc"), ("ab*c", "a"), ("ab?", "a"), ("ab{2}", "a"),
    ("ab+", "ab"), ("^abc", ""), ("a|b", ""), ("x[|]y", ""), ("(?i)abc", ""), (".abc", ""),
    ("abc\\d", "abc"), ("", ""),
])
def test_the_text_every_match_contains(pattern: str, literal: str) -> None:
    assert required_literal(pattern) == literal


PIECES = ["a", "b", "c", " ", "-", "/", ".", "*", "+", "?", "|", "(", ")", "[a-c]", "\\|",
          "{2}", "^", "$", "\\d", "(?i)", "A"]


@given(st.lists(st.sampled_from(PIECES), max_size=8).map("".join),
       st.lists(st.text("abcABC -/|1", max_size=12), min_size=1, max_size=8))
def test_every_match_contains_the_required_text(pattern: str, texts: list[str]) -> None:
    try:
        rx = compile_regex(pattern)
    except PatternError:
        return
    literal = required_literal(pattern)
    for text in texts:
        if rx.test(text):
            assert literal in text
