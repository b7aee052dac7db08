"""Rules switched on and off by their tags (``[rules] enabled_tags`` / ``disabled_tags``).

The switch is applied before rules are compiled, so a plan samples, windows and needs
only what its active rules read: a rule switched on by its tag brings what it reads
(the network capture for the shipped network rules), one switched off takes it away.
"""

from __future__ import annotations

from support import RULES

from linnix.language.loader import load_text
from linnix.language.pipeline import TagSwitch, build, build_program
from linnix.plan import Need, Plan, needs_network

TEXT = """
rule quiet_fds {
    when fds > 100
    tags ["noisy"]
}
rule flood {
    when connects_per_sec > 10
    tags ["network", "experimental"]
    enabled false
}
rule plain: cpu_pct > 90
"""


def plan_of(switch: TagSwitch) -> Plan:
    return build_program(load_text(TEXT, "t.lnx"), switch).require_plan()


def active(switch: TagSwitch) -> list[str]:
    return [r.name for r in plan_of(switch).active]


def test_without_a_switch_each_rule_keeps_its_own_enabled() -> None:
    assert active(TagSwitch()) == ["quiet_fds", "plain"]
    assert [r.name for r in build_program(load_text(TEXT, "t.lnx")).require_plan().active] \
        == ["quiet_fds", "plain"]


def test_an_enabled_tag_switches_on_a_rule_that_says_enabled_false() -> None:
    assert active(TagSwitch(enable=frozenset({"network"}))) == ["quiet_fds", "flood", "plain"]


def test_a_disabled_tag_wins_over_an_enabled_one() -> None:
    switch = TagSwitch(enable=frozenset({"network"}), disable=frozenset({"experimental"}))
    assert active(switch) == ["quiet_fds", "plain"]
    assert active(TagSwitch(disable=frozenset({"noisy"}))) == ["plain"]


def test_what_the_plan_reads_follows_the_switched_rules() -> None:
    off = plan_of(TagSwitch())
    assert Need.NETWORK not in off.needs and not needs_network(off)
    on = plan_of(TagSwitch(enable=frozenset({"network"})))
    assert needs_network(on)
    # a rule switched off by its tag no longer makes the sampler count descriptors
    assert "fds" in plan_of(TagSwitch()).metrics
    assert "fds" not in plan_of(TagSwitch(disable=frozenset({"noisy"}))).metrics


def test_tags_no_rule_carries_are_named() -> None:
    rules = build_program(load_text(TEXT, "t.lnx")).rules
    switch = TagSwitch(enable=frozenset({"netwrok", "network"}), disable=frozenset({"nosiy"}))
    assert switch.unknown(rules) == ["netwrok", "nosiy"]
    assert TagSwitch(enable=frozenset({"network"})).unknown(rules) == []


def test_the_shipped_network_rules_are_switched_on_by_their_tag() -> None:
    names = {"reverse_shell", "late_listener", "connect_flood"}
    shipped = build([str(RULES)]).require_plan()
    assert not names & {r.name for r in shipped.active} and not needs_network(shipped)
    switched = build([str(RULES)], TagSwitch(enable=frozenset({"network"}))).require_plan()
    assert names <= {r.name for r in switched.active} and needs_network(switched)
