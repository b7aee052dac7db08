"""``linnix explain``: what it shows of a rule with a boundary."""

from __future__ import annotations

from linnix.language.pipeline import compile_text
from linnix.tools.explain import explain_json, explain_text

RULES = """
rule tree {
    when subtree_cpu_pct > 90
    boundary comm in ["bash", "tmux: server"]
}
rule plain: subtree_cpu_pct > 90
"""


def test_explain_shows_the_walls_of_a_rule() -> None:
    plan = compile_text(RULES)
    text = explain_text(plan)
    assert ('  boundary     comm in ["bash", "tmux: server"]  (subtree totals stop at these '
            'processes)\n') in text
    assert text.count("  boundary  ") == 1  # the plain rule has none
    tree, plain = explain_json(plan)["rules"]
    assert tree["boundary"] == 'comm in ["bash", "tmux: server"]'
    assert plain["boundary"] is None


COUNTING = """
rule sshd_missing: count(comm == "sshd") == 0 for 30s
rule crash_loop: crashes(exe, 5m) >= 3 and execs(exe, 1m) > 3
"""


def test_explain_shows_what_is_counted() -> None:
    plan = compile_text(COUNTING)
    text = explain_text(plan)
    assert ('  counts         count(comm == "sshd")  (judged again on each process that '
            'changes)\n') in text
    assert ("  event counts   crashes by exe over 300s, execs by exe over 60s  (at most 4096 "
            "values each, oldest evicted first)\n") in text
    requirements = explain_json(plan)["requirements"]
    assert requirements["counts"] == ['count(comm == "sshd")']
    assert requirements["event_counters"] == [
        {"kind": "crashes", "field": "exe", "window_s": 300.0},
        {"kind": "execs", "field": "exe", "window_s": 60.0}]


def test_explain_says_nothing_of_counts_when_nothing_is_counted() -> None:
    text = explain_text(compile_text(RULES))
    assert "counts " not in text and "event counts" not in text
