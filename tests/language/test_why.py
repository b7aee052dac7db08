"""The parts of a rule's condition compiled apart for ``replay --why``."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linnix.engine.proctable import Proc, ProcTable
from linnix.errors import UsageError
from linnix.language.loader import load_text
from linnix.language.pipeline import build_program
from linnix.language.why import why_parts
from linnix.plan import Plan, WhyPart

RULES = """\
let shells = ["sh", "bash"]
rule hot {
    when cpu_pct > 50% and rss_mb >= 2 * 64MiB and comm in shells for 5s
    unless comm == "bash"
    unless pid < 100
}
rule off {
    when cpu_pct > 50
    enabled false
}
"""


@functools.cache
def parts_of(rules: str, name: str) -> tuple[Plan, tuple[WhyPart, ...]]:
    program = load_text(rules, "<why>")
    plan = build_program(program).require_plan()
    return plan, why_parts(program, plan, name)


def test_each_conjunct_and_each_unless_is_a_part_as_written() -> None:
    _, parts = parts_of(RULES, "hot")
    assert [(p.kind, p.text) for p in parts] == [
        ("when", "cpu_pct > 50%"), ("when", "rss_mb >= 2 * 64MiB"), ("when", "comm in shells"),
        ("unless", 'comm == "bash"'), ("unless", "pid < 100")]
    size = parts[1]
    assert (size.op, size.left_text, size.right_text, size.right_literal) == (
        ">=", "rss_mb", "2 * 64MiB", False)
    assert parts[0].right_literal and parts[2].op is None


def test_a_part_reads_its_values_and_its_sides() -> None:
    _, parts = parts_of(RULES, "hot")
    p = Proc(200, 1, "sh", 0.0)
    p.rss_mb = 100.0
    host = ProcTable().host
    size = parts[1]
    assert size.cond(p, host, 0.0) is False
    assert size.values(p, host, 0.0) == {"rss_mb": 100.0}
    assert size.left is not None and size.right is not None
    assert (size.left(p, host, 0.0), size.right(p, host, 0.0)) == (100.0, 128.0)
    assert parts[0].values(p, host, 0.0) == {"cpu_pct": None}
    assert parts[2].cond(p, host, 0.0) is True


@given(cpu=st.one_of(st.none(), st.floats(0, 400)), rss=st.one_of(st.none(), st.floats(0, 500)),
       comm=st.sampled_from(["sh", "bash", "zsh"]), pid=st.integers(1, 300))
def test_the_parts_together_hold_exactly_when_the_rule_does(cpu: float | None,
                                                             rss: float | None, comm: str,
                                                             pid: int) -> None:
    plan, parts = parts_of(RULES, "hot")
    rule = plan.rule("hot")
    assert rule is not None
    p = Proc(pid, 1, comm, 0.0)
    p.cpu_pct, p.rss_mb = cpu, rss
    host = ProcTable().host
    whens = all(x.cond(p, host, 0.0) for x in parts if x.kind == "when")
    unless = any(x.cond(p, host, 0.0) for x in parts if x.kind == "unless")
    assert bool(rule.cond(p, host, 0.0)) == (whens and not unless)


def test_an_unknown_rule_is_a_usage_error_with_a_suggestion() -> None:
    with pytest.raises(UsageError, match=r"no rule named 'hott' in these rules "
                                         r"\(did you mean hot\?\)"):
        parts_of(RULES, "hott")
    with pytest.raises(UsageError, match=r"no rule named 'zzz' in these rules$"):
        parts_of(RULES, "zzz")


def test_a_disabled_rule_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="rule 'off' is disabled"):
        parts_of(RULES, "off")
