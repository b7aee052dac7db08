"""Placeholders in messages and labels: what the checker accepts, refuses and warns about."""

from __future__ import annotations

import pytest
from support import codes, only, rule

# ---- messages --------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [
    "{parent.comm}[{ppid}]",                   # E308 before: the generated messages use it
    "{parent.parent.comm} {parent.parent.pid:d}",
    "{parent.parent.parent.cpu_pct:.1%}",
    "{ancestors}",
    "{cpu_pct:.1%}",
])
def test_message_placeholders_accepted(message: str) -> None:
    assert codes(f'rule r {{ when cpu_pct > 90\n message "{message}" }}') == []


def test_target_in_a_rule_whose_action_targets_a_process() -> None:
    text = ('rule r { when host_cpu_pct > 90\n action kill(target = top(cpu_pct))\n'
            ' message "killing {target.comm}[{target.pid}]" }')
    assert codes(text) == []
    assert rule(text).message.names == ("target.comm", "target.pid")


@pytest.mark.parametrize(("clauses", "message"), [
    ('message "{target.comm}"',
     "'target.comm' in a message: the rule has no action that targets a process"),
    ('action analyze\n message "{target.pid}"',
     "'target.pid' in a message: the rule has no action that targets a process"),
    ('action kill\n message "{target.exe}"',
     "unknown name 'target.exe' in message (a target offers target.pid and target.comm)"),
    ('message "{parent.subtree_procs}"', "unknown name 'parent.subtree_procs' in message"),
    ('message "{parent.comn}"',
     "unknown name 'parent.comn' in message (did you mean 'parent.comm'?)"),
    ('message "{child.comm}"', "unknown name 'child.comm' in message"),
])
def test_e208_message_placeholders(clauses: str, message: str) -> None:
    assert only(f"rule r {{ when cpu_pct > 90\n {clauses} }}", "E208").message == message


def test_e401_parent_in_a_system_rule() -> None:
    d = only('rule r { when host_cpu_pct > 90\n message "{parent.parent.comm}" }', "E401")
    assert d.message == "'parent.parent.comm' is a process field, but this rule's scope is system"
    assert d.span.text == "parent.parent.comm"


# ---- labels ----------------------------------------------------------------------------------


def test_labels_with_placeholders_become_templates() -> None:
    r = rule('rule r { when cpu_pct > 90\n labels { team = "ops", program = "{comm}@{exe}",'
             ' shell = "{parent.comm}", brace = "a{{b}}" } }')
    assert r.labels == {"team": "ops", "program": "{comm}@{exe}", "shell": "{parent.comm}",
                        "brace": "a{b}"}
    assert [(k, t.source) for k, t in r.label_templates] == [
        ("program", "{comm}@{exe}"), ("shell", "{parent.comm}")]


@pytest.mark.parametrize("value", ["{cpu_pct:.0f}", "{state}", "{avg}", "{target.pid}",
                                   "{parent.rss_mb}", "{nosuch}", "{parent.rule}"])
def test_e309_a_label_names_only_what_a_process_is(value: str) -> None:
    d = only(f'rule r {{ when cpu_pct > 90\n action kill\n labels {{ x = "{value}" }} }}',
             "E309")
    name = value[1:-1].partition(":")[0]
    assert d.message.startswith(f"'{name}' in label 'x': a label may name only what a "
                                "process is")
    assert d.span.text == name


@pytest.mark.parametrize("value", ["{pid}", "{ppid:d}", "{cmdline}", "{parent.parent.pid}"])
def test_w111_a_label_per_process(value: str) -> None:
    d = only(f'rule r {{ when cpu_pct > 90\n labels {{ x = "{value}" }} }}', "W111")
    assert d.message.startswith("label 'x' takes '")
    assert d.message.endswith("': one Alertmanager alert group per process")


def test_label_errors_of_templates() -> None:
    assert only('rule r { when cpu_pct > 90\n labels { x = "{comm" } }', "E308")
    assert only('rule r { when host_cpu_pct > 90\n labels { x = "{comm}" } }', "E401")
    assert only('rule r { when cpu_pct > 90\n labels { x = "{comm:d}" } }', "E308")
