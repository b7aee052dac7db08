"""Percent is a unit: the unit algebra, what rules compile to, and what they fire on.

The four examples of the language reference have golden files beside their
rules in ``fixtures/rules/percent/``: ``percent.explain`` is what ``linnix
explain`` shows of them and ``percent.replay.jsonl`` what ``linnix replay``
prints over ``percent.jsonl`` (rewrite them with ``pytest --update-golden``
after an intended change, and review the diff).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import ROOT, RULES, host, only, process, rule, when, without_speed

from linnix import cli
from linnix.language.pipeline import build
from linnix.language.units import PER_CENT, Combined, combine
from linnix.names import Dim

PERCENT = ROOT / "fixtures" / "rules" / "percent"
PLAIN, PCT, SIZE, DUR = Dim.PLAIN, Dim.PERCENT, Dim.SIZE, Dim.DURATION

# ---- the algebra -----------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "a", "b", "result"), [
    ("*", PCT, SIZE, Combined(SIZE, PER_CENT, 1.0)),      # 50% of a size is a size
    ("*", SIZE, PCT, Combined(SIZE, 1.0, PER_CENT)),
    ("*", PCT, PLAIN, Combined(PCT)),                     # 90% * ncpu: percent points
    ("*", PCT, None, Combined(PCT)),
    ("*", PCT, PCT, Combined(PCT, 1.0, PER_CENT)),        # 50% of 50% is 25%
    ("*", PCT, DUR, Combined(DUR, PER_CENT, 1.0)),
    ("*", None, None, Combined(None)),
    ("/", SIZE, SIZE, Combined(PLAIN)),                   # a ratio
    ("/", PCT, PCT, Combined(PLAIN)),
    ("/", PCT, PLAIN, Combined(PCT)),                     # cpu_pct / ncpu
    ("/", SIZE, PCT, Combined(SIZE, 1.0, PER_CENT)),      # a size over 50% is twice it
    ("/", PLAIN, PCT, Combined(PLAIN, 1.0, PER_CENT)),
    ("/", SIZE, DUR, Combined(None)),                     # MiB per second: no unit of ours
    (">", PLAIN, PCT, Combined(PLAIN, 1.0, PER_CENT)),    # x / y > 50%: > 0.5
    (">", PCT, PLAIN, Combined(PLAIN, PER_CENT, 1.0)),
    (">", PCT, None, Combined(PCT)),                      # cpu_pct > 90: 90%
    (">", PCT, PCT, Combined(PCT)),
])
def test_units_combine(op: str, a: Dim | None, b: Dim | None, result: Combined) -> None:
    assert combine(op, a, b) == result


@pytest.mark.parametrize(("op", "a", "b"), [
    ("*", SIZE, SIZE), ("*", DUR, DUR), ("*", SIZE, DUR), (">", SIZE, PCT), ("+", PCT, PLAIN),
    ("==", DUR, SIZE),
])
def test_impossible_mixes_are_errors(op: str, a: Dim, b: Dim) -> None:
    assert combine(op, a, b).error is not None


def test_a_percentage_meets_only_a_ratio_among_plain_numbers() -> None:
    assert combine(">", PLAIN, PCT, ratio=False).error == "unit mismatch"
    assert combine(">", PLAIN, PCT, ratio=True).error is None


# ---- what rules compile to -------------------------------------------------------------------


@pytest.mark.parametrize(("condition", "text"), [
    # the examples of the language reference
    ("rss_mb > 50% * mem_total_mb", "rss_mb > 0.5 * mem_total_mb"),
    ("rss_mb / mem_total_mb > 50%", "rss_mb / mem_total_mb > 0.5"),
    ("subtree_cpu_pct > 90% * ncpu", "subtree_cpu_pct > 90 * ncpu"),
    ("cpu_pct / ncpu > 50%", "cpu_pct / ncpu > 50"),
    # and their kin
    ("rss_mb > mem_total_mb * 7%", "rss_mb > mem_total_mb * 0.07"),
    ("fds / fd_limit >= 80%", "fds / fd_limit >= 0.8"),
    ("rss_mb > 50% * 1GiB", "rss_mb > 512"),
    ("cpu_pct > 50% * 50%", "cpu_pct > 25"),
    ("rss_mb / 50% > 1GiB", "rss_mb / 0.5 > 1024"),
    ("rss_mb > cpu_pct * mem_total_mb", "rss_mb > cpu_pct / 100 * mem_total_mb"),
    ("rss_mb / mem_total_mb > fd_pct", "rss_mb / mem_total_mb > fd_pct / 100"),
    ("age_s > 10% * 1h", "age_s > 360"),
    ("cpu_pct > 90", "cpu_pct > 90"),                      # a bare number is percent points
    ("cpu_pct * 2 > 90%", "cpu_pct * 2 > 90"),
    ("delta(rss_mb, 1m) / 1m > 2", "delta(rss_mb, 60s) / 60 > 2"),
])
def test_percent_compiles_to(condition: str, text: str) -> None:
    assert rule(f"rule r: {condition}").cond_text == text


def test_a_let_holds_the_quantity() -> None:
    assert rule("let half = 50% * 1GiB\nrule r: rss_mb > half", "r").cond_text == "rss_mb > 512"
    assert rule("let ratio = 512MiB / 1GiB\nrule r: rss_mb / mem_total_mb > ratio",
                "r").cond_text == "rss_mb / mem_total_mb > 0.5"


def test_the_shipped_rules_mean_what_they_meant() -> None:
    plan = build([str(RULES)]).plan
    assert plan is not None
    conditions = {r.name: r.cond_text for r in plan.rules}  # each followed by its unless
    assert conditions["runaway_tree"].startswith(
        "subtree_procs >= 2 and avg(subtree_cpu_pct, 60s) > 80 * ncpu and "
        "max(subtree_forks_per_sec, 60s) < 1")
    assert conditions["memory_leak"].startswith("delta(rss_mb, 30s) > mem_total_mb / 200")
    assert conditions["circuit_breaker"].startswith("host_cpu_pct > 95 and psi_cpu_some > 50")
    assert conditions["fd_exhaustion"].startswith("fd_pct > 90 and fds >= 64")


@given(share=st.integers(1, 99), rss=st.integers(0, 4096), total=st.integers(1, 4096))
def test_half_of_the_memory_is_a_share_of_it(share: int, rss: int, total: int) -> None:
    product = when(f"rss_mb > {share}% * mem_total_mb")
    ratio = when(f"rss_mb / mem_total_mb > {share}%")
    p, h = process(rss_mb=float(rss)), host(mem_total_mb=float(total))
    exact = rss * 100 > share * total
    if rss * 100 != share * total:  # floats may round either way at the boundary itself
        assert product(p, h, 0.0) == exact
        assert ratio(p, h, 0.0) == exact


# ---- mixes that mean nothing -----------------------------------------------------------------


@pytest.mark.parametrize(("condition", "message"), [
    ("rss_mb * mem_total_mb > 1GiB", "cannot multiply a size in MiB by a size in MiB"),
    ("age_s * 2s > 1", "cannot multiply a duration in seconds by a duration in seconds"),
    ("rss_mb > 50%", "unit mismatch: 'rss_mb' is a size in MiB, '50%' is a percentage"),
    ("procs > 5%", "unit mismatch: 'procs' is a plain number, '5%' is a percentage"),
    ("cpu_pct > 90 * ncpu",
     "unit mismatch: 'cpu_pct' is a percentage, '90 * ncpu' is a plain number"),
])
def test_e301_impossible_mixes(condition: str, message: str) -> None:
    assert only(f"rule r: {condition}", "E301").message == message


def test_e301_a_count_against_a_percentage_says_what_to_write() -> None:
    d = only("rule r: cpu_pct > 90 * ncpu", "E301")
    assert d.hint is not None and "'cpu_pct > 90% * ncpu'" in d.hint


# ---- goldens ---------------------------------------------------------------------------------


def _golden(got: str, path: Path, update: bool) -> None:
    if update:
        path.write_text(got, encoding="utf-8")
        return
    assert got == path.read_text(encoding="utf-8")


def test_explain_golden(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                        update_golden: bool) -> None:
    monkeypatch.chdir(ROOT)
    assert cli.main(["explain", "fixtures/rules/percent/percent.lnx"]) == 0
    _golden(capsys.readouterr().out, PERCENT / "percent.explain", update_golden)


def test_replay_golden(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                       update_golden: bool) -> None:
    monkeypatch.chdir(ROOT)
    assert cli.main(["replay", "--rules", "fixtures/rules/percent/percent.lnx", "--format",
                     "jsonl", "fixtures/rules/percent/percent.jsonl"]) == 0
    out = without_speed(capsys.readouterr().out.encode()).decode()
    _golden(out, PERCENT / "percent.replay.jsonl", update_golden)


def test_the_rule_tests_of_the_examples_pass(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert cli.main(["test", "fixtures/rules/percent/"]) == 0
    assert "3 passed, 0 failed" in capsys.readouterr().out
