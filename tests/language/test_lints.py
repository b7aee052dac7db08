"""Warnings about comparisons that cannot mean what they say (W112, W113)."""

from __future__ import annotations

import pytest
from support import build_text, diagnostics, only

from linnix.language.lints import BOUNDED_PERCENT, COMM_MAX
from linnix.names import METRICS, Dim

LONG = "a-name-longer-than-15"  # 21 characters


# ---- W112: comm is at most 15 characters ---------------------------------------------------


def test_w110_comm_equal_to_a_longer_string() -> None:
    d = only(f'rule r: comm == "{LONG}"', "W112")
    assert d.message == (f"this never holds: 'comm' is at most 15 characters and \"{LONG}\" "
                         "has 21")
    assert d.span.text == f'comm == "{LONG}"'
    assert d.hint is not None and '"a-name-longer-t"' in d.hint
    assert build_text(f'rule r: comm == "{LONG}"').plan is not None  # a warning: it still runs


@pytest.mark.parametrize(("text", "where"), [
    (f'"{LONG}" == comm', f'"{LONG}" == comm'),
    (f'comm startswith "{LONG}"', None), (f'comm endswith "{LONG}"', None),
    (f'comm contains "{LONG}"', None), (f'parent.comm == "{LONG}"', None),
    (f'cpu_pct > 1 and not (comm == "{LONG}")', f'comm == "{LONG}"'),
    (f'cpu_pct > 1 or comm == "{LONG}"', f'comm == "{LONG}"'),
])
def test_w110_every_comparison_of_comm_with_a_longer_string(text: str, where: str | None) -> None:
    assert only(f"rule r: {text}", "W112").span.text == (where or text)


def test_w110_each_item_of_a_list_that_is_too_long() -> None:
    found = diagnostics(f'rule r: comm in ["bash", "{LONG}", "{LONG}x"]')
    assert [(d.code, d.span.text) for d in found] == [("W112", f'"{LONG}"'),
                                                      ("W112", f'"{LONG}x"')]


@pytest.mark.parametrize("text", [
    'comm == "exactly-15-char"', f'comm != "{LONG}"', f'comm not in ["{LONG}"]',
    f'exe == "/usr/bin/{LONG}"', f'cmdline contains "{LONG}"', f'comm matches "{LONG}"',
])
def test_no_w110_where_the_comparison_can_hold_or_says_nothing(text: str) -> None:
    assert diagnostics(f"rule r: {text}") == []


def test_w110_counts_characters_not_bytes() -> None:
    # 15 characters of two bytes each: a name decoded from 15 bytes never has them,
    # but the warning claims only what holds whatever the decoding
    assert len("é" * COMM_MAX) == COMM_MAX
    assert diagnostics(f'rule r: comm == "{"é" * COMM_MAX}"') == []


def test_w110_a_let_is_not_judged() -> None:
    assert diagnostics(f'let n = "{LONG}"\nrule r: comm == n') == []


def test_w110_in_a_macro_is_reported_once_where_it_is_defined() -> None:
    found = diagnostics(f'macro m = comm == "{LONG}"\nrule a: m and cpu_pct > 1\nrule b: m')
    assert [(d.code, d.span.line) for d in found] == [("W112", 1)]


# ---- W112 and W113: percent names that are a share of a whole -----------------------------------


@pytest.mark.parametrize("text", [
    "fd_pct > 150", "fd_pct > 100", "fd_pct >= 101", "fd_pct == 150", "100 < host_cpu_pct",
    "host_mem_used_pct > 150%", "psi_io_some > 200",
])
def test_w110_a_percent_above_100(text: str) -> None:
    d = only(f"rule r: {text}", "W112")
    name = next(n for n in BOUNDED_PERCENT if n in text)
    assert d.message == f"this never holds: '{name}' is at most 100%"
    assert d.span.text == text


@pytest.mark.parametrize("text", [
    "fd_pct >= 100", "fd_pct < 150", "cpu_pct > 150", "subtree_cpu_pct > 400",
    "fd_pct > 80", "fd_pct > 0.8%", "fd_pct > 1", "fd_pct > 0", "host_cpu_pct < 0.5%",
])
def test_no_percent_warning(text: str) -> None:
    assert diagnostics(f"rule r: {text}") == []


def test_w111_a_fraction_where_percent_is_meant() -> None:
    d = only("rule r: fd_pct > 0.8", "W113")
    assert d.message == ("'fd_pct' is in percent (0-100): 'fd_pct > 0.8' compares with 0.8%; "
                         "did you mean 80%?")
    assert d.span.text == "0.8"
    assert d.hint == "write 80 for 80%, or 0.8% if 0.8% is meant"


def test_w111_either_side() -> None:
    assert only("rule r: 0.25 < psi_cpu_some", "W113").message.endswith("did you mean 25%?")


def test_bounded_percent_names_are_percent_names_of_the_registry() -> None:
    for name in BOUNDED_PERCENT:
        assert METRICS[name].dim is Dim.PERCENT, name
    # a percent of one CPU may exceed 100: never judged as a share
    assert "cpu_pct" not in BOUNDED_PERCENT and "subtree_cpu_pct" not in BOUNDED_PERCENT
    assert "may exceed 100" in METRICS["cpu_pct"].help


def test_w110_shows_the_literal_as_written_and_cut_short() -> None:
    d = only('rule r: comm == "tab\\there-and-more"', "W112")
    assert '"tab\\there-and-more" has 17' in d.message
    assert d.hint is not None and d.hint.endswith('write "tab\\there-and-mo"')
    long = "x" * 70_000
    d = only(f'rule r: comm == "{long[:65_000]}"', "W112")
    assert len(d.message) < 120 and '..."' in d.message
