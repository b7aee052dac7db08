"""What the evaluator produces, as it leaves the engine: alerts and proposals as JSON."""

from __future__ import annotations

from support import plan

from linnix.engine.rulestate import Alert, Proposal


def test_alerts_and_proposals_give_times_to_the_microsecond() -> None:
    """Tick times are sums of floats: every output (replay, alerts file, stream, API)
    prints them rounded, ``0.3`` and never ``0.30000000000000004``."""
    noisy = 0.1 + 0.2
    alert = Alert(ts=noisy, rule="r", state="firing", severity="warning", scope="process",
                  pid=7, comm="p", start=0.7000000000000001, message="m", labels={}, values={},
                  unix=1_700_000_000.0)
    assert (alert.to_json()["ts"], alert.to_json()["start"]) == (0.3, 0.7)
    assert alert.to_json()["time"] == "2023-11-14T22:13:20.000Z"
    action = plan("rule r { when cpu_pct > 1 action kill }").rules[0].targets[0]
    proposal = Proposal(noisy, "r", action, 7, "p", 0.7000000000000001, 7)
    assert (proposal.to_json()["ts"], proposal.to_json()["start"]) == (0.3, 0.7)
