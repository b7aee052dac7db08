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
