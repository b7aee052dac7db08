"""The checker: names, lets and macros, scopes, rule clauses and their defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import build_text, codes, diagnostics, only, rule, write

from linnix.language.checker import check
from linnix.language.loader import load_text
from linnix.language.pipeline import build
from linnix.names import Scope


def checked(text: str) -> list:  # type: ignore[type-arg]
    result = check(load_text(text, "t.lnx"))
    assert result.errors == [], [(d.code, d.message) for d in result.errors]
    return result.rules


# ---- defaults and clause values ------------------------------------------------------


def test_one_line_rule_takes_every_default() -> None:
    (r,) = checked("rule cpu_hog: cpu_pct > 90")
    assert (r.for_s, r.clear, r.clear_for_s, r.keep_firing_for_s, r.cooldown_s) == (
        0.0, None, 0.0, 0.0, 0.0)
    assert (r.severity, r.description, r.labels, r.tags, r.message) == (
        "warning", None, (), (), None)
    assert (r.actions, r.mode_monitor, r.enabled, r.unless) == ((), False, True, ())
    assert r.runbook is None


def test_block_rule_clause_values() -> None:
    (r,) = checked('''
        rule spike {
            description "A subtree burns CPU"
            runbook "https://runbooks.example/spike"
            when subtree_cpu_pct > 50 for 5s
            unless comm == "a"
            unless comm == "b"
            clear when subtree_cpu_pct < 20 for 500ms
            keep_firing_for 1m
            scope subtree
            severity critical
            cooldown 2h
            labels { team = "platform", tier = "1" }
            tags ["noisy", "cpu"]
            message "{comm}: {subtree_cpu_pct:.0f}%"
            action kill(grace = 10s)
            action analyze
            mode monitor
            enabled false
        }''')
    assert r.description == "A subtree burns CPU"
    assert r.runbook == "https://runbooks.example/spike"
    assert (r.for_s, r.clear_for_s, r.keep_firing_for_s, r.cooldown_s) == (
        5.0, 0.5, 60.0, 7200.0)
    assert len(r.unless) == 2 and r.clear is not None
    assert (r.scope, r.scope_reason, r.severity) == (Scope.SUBTREE, "declared", "critical")
    assert r.labels == (("team", "platform"), ("tier", "1"))
    assert r.tags == ("noisy", "cpu")
    assert r.message is not None and r.message.names == ("comm", "subtree_cpu_pct")
    assert [(a.name, a.grace_s) for a in r.actions] == [("kill", 10.0), ("analyze", None)]
    assert r.mode_monitor and not r.enabled


@pytest.mark.parametrize("severity", ["info", "warning", "critical"])
def test_every_severity(severity: str) -> None:
    assert rule(f"rule r {{ when cpu_pct > 1\n severity {severity} }}").severity == severity


def test_enabled_takes_a_constant_bool() -> None:
    assert rule("let on = true\nrule r { when cpu_pct > 1\n enabled on }").enabled
    assert not rule("rule r { when cpu_pct > 1\n enabled 1 > 2 }").enabled


# ---- scopes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("condition", "scope", "reason"), [
    ("host_cpu_pct > 90", Scope.SYSTEM, "inferred: reads only system names"),
    ("forks_per_sec > 1 and 1 < 2", Scope.SYSTEM, "inferred: reads only system names"),
    ("cpu_pct > 90", Scope.PROCESS, "inferred: reads cpu_pct"),
    ("host_cpu_pct > 1 and rss_mb > 1", Scope.PROCESS, "inferred: reads rss_mb"),
    ('parent.comm == "sh"', Scope.PROCESS, "inferred: reads parent.comm"),
    ('"cron" in ancestors', Scope.PROCESS, "inferred: reads ancestors"),
    ("avg(cpu_pct, 10s) > 1", Scope.PROCESS, "inferred: reads cpu_pct"),
    ("avg(host_cpu_pct, 10s) > 1", Scope.SYSTEM, "inferred: reads only system names"),
    ("subtree_procs > 2", Scope.SUBTREE, "inferred: reads subtree_procs"),
    ("cpu_pct > 1 and subtree_fds > 1", Scope.SUBTREE, "inferred: reads subtree_fds"),
])
def test_scope_inference(condition: str, scope: Scope, reason: str) -> None:
    (r,) = checked(f"rule r: {condition}")
    assert (r.scope, r.scope_reason) == (scope, reason)


def test_scope_is_inferred_through_macros_and_unless() -> None:
    (r,) = checked("macro big = subtree_rss_mb > 1GiB\n"
                   "rule r { when host_cpu_pct > 1\n unless big }")
    assert (r.scope, r.scope_reason) == (Scope.SUBTREE, "inferred: reads subtree_rss_mb")
    (r,) = checked("rule r { when host_cpu_pct > 1\n clear when cpu_pct < 1 }")
    assert r.scope is Scope.PROCESS


@pytest.mark.parametrize(("declared", "condition"), [
    ("system", "host_cpu_pct > 1"),
    ("process", "host_cpu_pct > 1"),   # a system name is the same for every instance
    ("process", "cpu_pct > 1"),
    ("subtree", "cpu_pct > 1"),        # a process field of the subtree's root
    ("subtree", "host_cpu_pct > 1"),
])
def test_explicit_scope_may_be_wider_than_needed(declared: str, condition: str) -> None:
    (r,) = checked(f"rule r {{ when {condition}\n scope {declared} }}")
    assert (r.scope, r.scope_reason) == (Scope(declared), "declared")


def test_e401_subtree_metric_in_a_process_rule() -> None:
    d = only("rule r {\n when subtree_cpu_pct > 50\n scope process\n}", "E401")
    assert d.message == ("'subtree_cpu_pct' is a subtree metric, but rule 'r' is declared "
                         "'scope process'")
    assert (d.span.line, d.span.text) == (2, "subtree_cpu_pct")


def test_e401_process_field_in_a_system_rule() -> None:
    d = only('rule r {\n when parent.comm == "x"\n scope system\n}', "E401")
    assert "'parent.comm' is a process field" in d.message


def test_e401_message_placeholder_outside_the_scope() -> None:
    d = only('rule r { when host_cpu_pct > 1\n message "{comm}" }', "E401")
    assert d.message == "'comm' is a process field, but this rule's scope is system"
    assert d.span.text == "comm"
    d = only('rule r { when cpu_pct > 1\n message "{subtree_procs}" }', "E401")
    assert "subtree metric" in d.message


def test_e402_unknown_scope() -> None:
    d = only("rule r { when cpu_pct > 1\n scope tree }", "E402")
    assert d.message == "unknown scope 'tree' (did you mean 'subtree'?)"
    assert d.hint == "one of: system, process, subtree, cgroup"


# ---- names -------------------------------------------------------------------------------


def test_e201_unknown_name_with_suggestion() -> None:
    d = only("rule r: subtre_cpu_pct > 50", "E201")
    assert d.message == "unknown name 'subtre_cpu_pct' (did you mean 'subtree_cpu_pct'?)"
    assert (d.span.line, d.span.col, d.span.text) == (1, 9, "subtre_cpu_pct")


def test_e201_suggests_lets_and_macros_too() -> None:
    found = diagnostics('let protected = ["a"]\nrule r: comm in protectd')
    (d,) = [d for d in found if d.code == "E201"]
    assert "(did you mean 'protected'?)" in d.message


def test_e201_without_a_close_name() -> None:
    assert only("rule r: zzzzqqq > 1", "E201").message == "unknown name 'zzzzqqq'"


def test_e201_dotted_name_other_than_parent() -> None:
    d = only("rule r: child.cpu_pct > 1", "E201")
    assert d.message == "unknown name 'child.cpu_pct'"
    assert d.hint is not None and "parent.NAME" in d.hint


def test_e201_unknown_window_metric() -> None:
    assert "unknown name 'cpu'" in only("rule r: avg(cpu, 5s) > 1", "E201").message


def test_e202_duplicate_rule_in_one_file() -> None:
    d = only("rule r: cpu_pct > 1\nrule r: cpu_pct > 2", "E202")
    assert d.message == "duplicate rule 'r' (first defined at t.lnx:1:6)"
    assert d.span.line == 2


def test_e202_duplicate_rule_across_files(tmp_path: Path) -> None:
    write(tmp_path, {"a.lnx": "rule r: cpu_pct > 1\n", "b.lnx": "rule r: cpu_pct > 2\n"})
    (d,) = build([str(tmp_path)]).diagnostics
    assert d.code == "E202" and d.span.path.endswith("b.lnx")
    assert f"first defined at {tmp_path / 'a.lnx'}:1:6" in d.message


def test_e203_name_defined_twice_in_one_file() -> None:
    d = only("let a = 1\nmacro a = cpu_pct > 1\nrule r: cpu_pct > a", "E203")
    assert d.message == "'a' is already defined at t.lnx:1:5"
    assert d.span.line == 2


def test_e203_name_defined_in_two_included_files(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.lnx": 'include "a.lnx"\ninclude "b.lnx"\nrule r: cpu_pct > limit\n',
        "a.lnx": "let limit = 1\n",
        "b.lnx": "let limit = 2\n",
    })
    result = build([str(tmp_path / "main.lnx")])
    (d,) = result.errors
    assert d.code == "E203"
    assert d.message == (f"'limit' is defined both at {tmp_path / 'a.lnx'}:1:5 and at "
                         f"{tmp_path / 'b.lnx'}:1:5 (both visible in {tmp_path / 'main.lnx'})")


def test_separate_files_may_reuse_a_name(tmp_path: Path) -> None:
    write(tmp_path, {"a.lnx": "let limit = 1\nrule a: cpu_pct > limit\n",
                     "b.lnx": "let limit = 2\nrule b: cpu_pct > limit\n"})
    result = build([str(tmp_path)])
    assert result.diagnostics == []
    assert result.plan is not None
    assert [r.cond_text for r in result.plan.rules] == ["cpu_pct > 1", "cpu_pct > 2"]


def test_e204_let_or_macro_may_not_shadow_a_metric() -> None:
    found = diagnostics("let cpu_pct = 1\nmacro comm = true\nrule r: cpu_pct > 1")
    e204 = [d for d in found if d.code == "E204"]
    assert [d.message for d in e204] == [
        "'cpu_pct' is a metric; a let may not shadow it",
        "'comm' is a metric; a macro may not shadow it"]


def test_e205_macro_recursion() -> None:
    d = only("macro m = m and cpu_pct > 1\nrule r: m", "E205")
    assert d.message == "macro 'm' refers to itself (m -> m)"


def test_e205_mutual_recursion_of_macros() -> None:
    found = [d for d in diagnostics("macro a = b\nmacro b = a\nrule r: a") if d.code == "E205"]
    assert found and "a -> b -> a" in found[0].message


def test_e205_let_defined_in_terms_of_itself() -> None:
    d = only("let a = b\nlet b = a\nrule r: cpu_pct > a", "E205")
    assert d.message == "'a' is defined in terms of itself (a -> b -> a)"


def test_e206_function_used_as_a_name() -> None:
    d = only("rule r: avg > 1", "E206")
    assert d.message == "'avg' is a function; call it as avg(...)"


def test_e206_unknown_function() -> None:
    d = only("rule r: avgg(cpu_pct, 5s) > 1", "E206")
    assert d.message == "unknown function 'avgg' (did you mean 'avg'?)"
    assert d.span.text == "avgg"


def test_e207_parent_field() -> None:
    assert only("rule r: parent.nosuch > 1", "E207").message == "'parent.nosuch': unknown"
    d = only("rule r: parent.subtree_cpu_pct > 1", "E207")
    assert d.message == ("'parent.subtree_cpu_pct': not a process field "
                         "(did you mean 'parent.cpu_pct'?)")
    assert "not a process field" in only("rule r: parent.procs > 1", "E207").message


def test_e208_unknown_name_in_message() -> None:
    d = only('rule r { when cpu_pct > 1\n message "at {cpu_pcnt}" }', "E208")
    assert d.message == "unknown name 'cpu_pcnt' in message (did you mean 'cpu_pct'?)"
    assert (d.span.line, d.span.text) == (2, "cpu_pcnt")


def test_message_may_use_names_in_scope_and_template_extras() -> None:
    r = rule('rule r { when cpu_pct > 1\n message "{rule} {severity} {scope} {state} '
             '{host_cpu_pct} {comm} {pid:.0f}" }')
    assert r.message.names == ("rule", "severity", "scope", "state", "host_cpu_pct",
                               "comm", "pid")


# ---- lets and macros ---------------------------------------------------------------------


def test_let_values_of_every_type() -> None:
    b = build_text('''
        let n = 5
        let q = 1GiB
        let s = "x"
        let t = true
        let l = ["a", "b"]
        let nums = [1, 2]
        let e = []
        rule r: rss_mb > q and fds > n and comm == s and t and comm in l and fds in nums
            and comm not in e
    ''')
    assert b.diagnostics == []
    assert b.plan is not None
    assert b.plan.rules[0].cond_text == (
        'rss_mb > 1024 and fds > 5 and comm == "x" and comm in ["a", "b"] and fds in [1, 2]')


def test_let_may_use_earlier_lets_and_arithmetic() -> None:
    assert rule("let a = 10\nlet b = a * 2 + 1\nrule r: fds > b").cond_text == "fds > 21"


def test_macros_expand_with_metrics() -> None:
    r = rule('macro interactive = comm in ["bash", "zsh"]\n'
             "macro hot = cpu_pct > 90 and not interactive\nrule r: hot")
    assert r.cond_text == 'cpu_pct > 90 and not (comm in ["bash", "zsh"])'


def test_a_macro_sees_the_names_of_the_file_that_defines_it(tmp_path: Path) -> None:
    write(tmp_path, {
        "lib.lnx": "let limit = 90\nmacro hot = cpu_pct > limit\n",
        "main.lnx": 'include "lib.lnx"\nrule r: hot\n',
    })
    result = build([str(tmp_path / "main.lnx")])
    assert result.diagnostics == []
    assert result.plan is not None and result.plan.rules[0].cond_text == "cpu_pct > 90"


def test_names_are_not_visible_without_an_include(tmp_path: Path) -> None:
    write(tmp_path, {"lib.lnx": "let limit = 90\nrule uses: cpu_pct > limit\n",
                     "main.lnx": "rule r: cpu_pct > limit\n"})
    result = build([str(tmp_path)])
    assert [(d.code, d.span.path.endswith("main.lnx")) for d in result.diagnostics] == [
        ("E201", True)]


def test_w101_unused_let_and_w102_unused_macro() -> None:
    found = diagnostics("let l = 1\nmacro m = cpu_pct > 1\nrule r: host_cpu_pct > 1")
    assert [(d.code, d.level.value, d.message) for d in found] == [
        ("W101", "warning", "let 'l' is never used"),
        ("W102", "warning", "macro 'm' is never used")]
    assert build_text("let l = 1").plan is not None  # warnings do not stop the build


def test_names_used_only_in_an_included_file_count_as_used(tmp_path: Path) -> None:
    write(tmp_path, {"lib.lnx": "let limit = 90\n",
                     "main.lnx": 'include "lib.lnx"\nrule r: cpu_pct > limit\n'})
    assert build([str(tmp_path)]).diagnostics == []


# ---- clause structure --------------------------------------------------------------------


def test_e501_rule_without_when() -> None:
    d = only('rule r { description "x" }', "E501")
    assert d.message == "rule 'r' has no 'when' condition"
    assert d.span.text == "r"


@pytest.mark.parametrize("clause", [
    'description "b"', "when cpu_pct > 2", "clear when cpu_pct < 1", "keep_firing_for 1s",
    "scope process", "severity info", "cooldown 1s", 'labels { a = "b" }', 'tags ["t"]',
    'message "m"', "mode monitor", "enabled true",
])
def test_e502_single_clause_given_twice(clause: str) -> None:
    head = "rule r {\n" if clause.startswith("when") else "rule r {\n when cpu_pct > 1\n"
    text = f"{head} {clause}\n {clause}\n}}"
    first = head.count("\n") + 1
    found = [d for d in diagnostics(text) if d.code == "E502"]
    assert len(found) == 1
    assert found[0].span.line == first + 1
    word = clause.split(maxsplit=1)[0] if not clause.startswith("clear") else "clear when"
    assert found[0].message == f"'{word}' given twice in rule 'r' (first at t.lnx:{first}:2)"


def test_unless_and_action_may_repeat() -> None:
    r = rule("rule r { when cpu_pct > 1\n unless comm == \"a\"\n unless comm == \"b\"\n"
             " action kill\n action analyze }")
    assert [a.name for a in r.actions] == ["kill", "analyze"]


def test_e503_unknown_severity_and_mode() -> None:
    found = diagnostics("rule r { when cpu_pct > 1\n severity warn\n mode enforce }")
    assert [(d.code, d.message, d.hint) for d in found] == [
        ("E503", "unknown severity 'warn' (did you mean 'warning'?)",
         "one of: info, warning, critical"),
        ("E503", "unknown mode 'enforce'", "one of: monitor")]


def test_e506_label_given_twice() -> None:
    d = only('rule r { when cpu_pct > 1\n labels { a = "x", b = "y", a = "z" } }', "E506")
    assert d.message == "label 'a' given twice"
    assert d.span.text == 'a = "z"'


def test_errors_in_one_rule_do_not_hide_another_rules_errors() -> None:
    assert codes("rule a: nosuch > 1\nrule b: cpu_pct > 2s\nrule c: cpu_pct > 1") == [
        "E201", "E301"]


# ---- cgroup rules ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "reason"), [
    ("rule r: cg_mem_pct > 90% and unit == \"a.service\"", "inferred: reads cg_mem_pct"),
    ("rule r: container == \"3f4e5a6b7c8d\" and cg_procs > 1 and host_cpu_pct > 5",
     "inferred: reads cg_procs"),
    ("rule r { when unit == \"a.service\" and cgroup != \"/\"\n scope cgroup }", "declared"),
])
def test_a_rule_reading_a_cgroup_metric_is_a_cgroup_rule(text: str, reason: str) -> None:
    r = rule(text)
    assert (r.scope, r.scope_reason) == (Scope.CGROUP, reason)


@pytest.mark.parametrize("text", [
    "rule r: cg_procs > 1 and comm == \"x\"",
    "rule r: cg_procs > 1 and subtree_procs > 1",
    "rule r: cg_procs > 1 and ancestors == [\"x\"]",
    "rule r: cg_procs > 1 and avg(rss_mb, 1m) > 1",
    "rule r { when cg_procs > 1\n clear when cpu_pct < 1 }",
])
def test_a_process_name_anywhere_in_a_cgroup_rule_is_e403(text: str) -> None:
    assert codes(text) == ["E403"]


@pytest.mark.parametrize(("text", "code"), [
    ("rule r { when cg_procs > 1\n action freeze\n action kill_cgroup\n action analyze }", None),
    ("rule r { when cg_procs > 1\n action kill_tree }", "E609"),
    ("rule r { when cg_procs > 1\n action kill(target = top(cpu_pct)) }", "E609"),
    ("rule r { when host_cpu_pct > 1\n action kill_cgroup }", "E609"),
    ("rule r { when subtree_procs > 1\n action freeze }", "E609"),
    ("rule r { when host_cpu_pct > 1\n action kill(target = top(cg_cpu_pct)) }", "E603"),
    ("rule r: count(cg_procs > 1) > 1", "E620"),
    ("rule r { when cg_procs > 1\n message \"{parent.comm}\" }", "E401"),
    ("rule r { when cg_procs > 1\n message \"{unit} {cg_mem_mb:.0f} {container}\" }", None),
    ("rule r { when cpu_pct > 1\n message \"{cg_mem_mb}\" }", "E401"),
    ("rule r { when cpu_pct > 1\n message \"{avg(cg_mem_mb, 1m)}\" }", "E401"),
])
def test_actions_and_placeholders_of_the_other_kind_are_refused(text: str,
                                                               code: str | None) -> None:
    assert codes(text) == ([] if code is None else [code])


def test_cgroup_actions_compile_as_cgroup_targets() -> None:
    r = rule("rule r { when cg_procs > 1\n action freeze\n action kill_cgroup }")
    assert [(a.name, a.targets_cgroup, a.targets_process) for a in r.actions] == [
        ("freeze", True, False), ("kill_cgroup", True, False)]
    assert r.cgroup_targets == r.actions and r.targets == ()
