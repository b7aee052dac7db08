"""The shipped network rules (rules/network.lnx), switched on, replayed over their
fixtures: each fires on its own trace and stays quiet on its near miss, and none fires
on any other fixture (the healthy work the rest of the pack is tested on)."""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import pytest
from support import ROOT

from linnix.engine.core import Output
from linnix.engine.evaluator import Alert
from linnix.language.pipeline import build
from linnix.plan import Plan, needs_network
from linnix.runtime.replay import replay

FIXTURES = ROOT / "fixtures"
NETWORK = ("reverse_shell", "late_listener", "connect_flood")


@functools.cache
def pack(enabled: bool = True) -> Plan:
    """The shipped network rules, switched on as a person would (a copy of the file with
    'enabled true'), or as shipped."""
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp)
        for name in ("network.lnx", "common.lnx"):
            shutil.copy(ROOT / "rules" / name, rules / name)
        text = (rules / "network.lnx").read_text()
        assert text.count("enabled false") == len(NETWORK)
        if enabled:
            (rules / "network.lnx").write_text(text.replace("enabled false", "enabled true"))
        result = build([str(rules)])
    assert result.plan is not None, [d.message for d in result.errors]
    return result.plan


def fired(trace: Path, plan: Plan) -> list[tuple[float, str, int | None, str]]:
    """The network rules' firing alerts: (ts, rule, pid, message)."""
    out: list[Output] = []
    replay(str(trace), plan, out.extend)
    return [(a.ts, a.rule, a.pid, a.message) for a in out
            if isinstance(a, Alert) and a.rule in NETWORK and a.state == "firing"]


def test_the_network_rules_are_shipped_disabled_and_tagged() -> None:
    shipped = pack(enabled=False)
    rules = {r.name: r for r in shipped.rules if r.name in NETWORK}
    assert set(rules) == set(NETWORK)
    assert all(not r.enabled and "network" in r.tags for r in rules.values())
    assert not needs_network(shipped)  # the capture stays off for the pack as shipped
    assert needs_network(pack())


@pytest.mark.parametrize(("name", "expected"), [
    ("reverse_shell", [(5.02, "reverse_shell", 5201,
                        "bash[5201], started by a web server, connects to 203.0.113.50:4444")]),
    ("late_listener", [(200.0, "late_listener", 600,
                        "node[600] listens on port 31337, 200s after it started")]),
    # three workers at 200 a second: their parent's tree passes 500 in its first second
    # (judged at the tick of 6.0, when the trailing second holds 600 and more)
    ("connect_flood", [(6.0, "connect_flood", 7000,
                        "python3[7000] and its children connect 600 times a second")]),
])
def test_each_network_rule_fires_on_its_trace(name: str,
                                              expected: list[tuple[float, str, int, str]]
                                              ) -> None:
    assert fired(FIXTURES / f"network_{name}.jsonl", pack()) == expected


@pytest.mark.parametrize("name", NETWORK)
def test_each_network_rule_is_quiet_on_its_near_miss(name: str) -> None:
    assert fired(FIXTURES / f"network_{name}_near.jsonl", pack()) == []


@pytest.mark.parametrize("trace", sorted(p for p in FIXTURES.glob("*.jsonl")
                                         if not p.name.startswith("network_")),
                         ids=lambda p: p.stem)
def test_no_network_rule_fires_on_the_other_fixtures(trace: Path) -> None:
    assert fired(trace, pack()) == []
