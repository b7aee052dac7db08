"""``linnix explain``: what it shows of a rule with a boundary, and of event rules."""

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


EVENTS = """
rule tmp_binary on exec: exe startswith "/tmp/"
rule crash_loop {
    on exit
    when crashed and lifetime_s < 10s
    cooldown 5m by exe, uid
    max_rate 5/s
}
"""


def test_explain_shows_event_rules_with_their_trigger() -> None:
    plan = compile_text(EVENTS)
    text = explain_text(plan)
    assert ("  on           exec  (judged once at each exec event, at its own time; never at "
            "ticks)\n") in text
    assert "  cooldown     300s by exe, uid\n" in text
    assert "  max_rate     5 alert(s) per 1s\n" in text
    assert "  max_rate     20 alert(s) per 1s\n" in text  # the default
    assert "  for  " not in text and "clear when" not in text  # they have neither
    assert "  on exec rules  tmp_binary\n" in text and "  on exit rules  crash_loop\n" in text
    tmp, crash = explain_json(plan)["rules"]
    assert (tmp["on"], tmp["cooldown_by"], tmp["max_rate"]) == ("exec", [], 20)
    assert (crash["on"], crash["cooldown_by"], crash["max_rate_per_s"]) == (
        "exit", ["exe", "uid"], 1.0)
    assert "on" not in explain_json(compile_text(RULES))["rules"][0]


def test_explain_shows_the_runbook_as_data() -> None:
    plan = compile_text('rule hot {\n    when cpu_pct > 90\n'
                        '    runbook "https://runbooks.example/hot: see [the] *notes*"\n}\n'
                        "rule cold: cpu_pct < 1\n")
    text = explain_text(plan)
    assert "  runbook      https://runbooks.example/hot: see [the] *notes*\n" in text
    assert text.count("  runbook  ") == 1  # a rule without one shows none
    hot, cold = explain_json(plan)["rules"]
    assert (hot["runbook"], cold["runbook"]) == (
        "https://runbooks.example/hot: see [the] *notes*", None)


def test_explain_says_when_network_events_are_captured() -> None:
    text = explain_text(compile_text('rule c on connect: remote_addr in_cidr "10.0.0.0/8"'))
    assert "  on           connect  (judged once at each connect event" in text
    assert "  when         remote_addr in_cidr \"10.0.0.0/8\"\n" in text
    assert "  also sampled   network events (connect, accept, listen)\n" in text
    assert "  on connect rules c\n" in text
    plain = explain_text(compile_text('rule c on exec: comm == "nc"'))
    assert "network events" not in plain
