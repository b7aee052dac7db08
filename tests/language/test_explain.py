"""One rule in words: the part of ``linnix explain`` the dashboard shows beside a rule."""

from __future__ import annotations

from linnix.language.explain import explain_rule, secs
from linnix.language.pipeline import compile_text
from linnix.tools.explain import explain_text

RULES = """
rule hot {
    when cpu_pct > 90 for 30s
    severity warning
    tags ["cpu"]
}
rule spawned {
    on exec
    when comm == "nc"
    cooldown 250ms
}
"""


def test_each_rule_is_worded_as_linnix_explain_words_it() -> None:
    plan = compile_text(RULES, "r.lnx")
    hot, spawned = (explain_rule(r) for r in plan.rules)
    assert explain_text(plan).startswith(f"{hot}\n{spawned}\n")
    assert hot.startswith("rule hot  (r.lnx:2)\n  scope        process")
    assert "  for          30s\n" in hot and "  tags         cpu\n" in hot
    assert "  on           exec  (judged once at each exec event" in spawned
    assert "  cooldown     250ms by exe (comm when the exe is not known)\n" in spawned


def test_durations_in_words() -> None:
    assert [secs(0), secs(0.25), secs(5.0), secs(90)] == ["0s", "250ms", "5s", "90s"]
