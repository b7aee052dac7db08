"""Placeholders in messages: what the checker accepts and refuses."""

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
