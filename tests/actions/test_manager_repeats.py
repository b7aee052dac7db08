"""ActionManager: one pending action per rule, action and target process.

A rule that fires again for the same process while its action is pending is
counted on that action (``repeats``, ``last_seen_at``, an ``action.repeated``
audit record) instead of asking again.  Trio's autojump clock drives the
manager and its wall clock, against a fake /proc, with recording executors.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from actions_support import (
    KILL,
    STOP,
    Executions,
    Make,
    fail_audit,
    heal,
    mock_wall,
    running,
)
from proc_support import FakeProc
from trio.testing import MockClock

from linnix.actions import ActionPolicy, Target
from linnix.plan import CompiledAction


async def fire(h: Any, pid: int = 500, rule: str = "r", action: CompiledAction = KILL,
               incident_id: int | None = None) -> dict[str, Any]:
    result: dict[str, Any] = await h.manager.propose(
        rule=rule, action=action, target=Target(pid, "worker", None), incident_id=incident_id,
        monitor_only=False)
    return result


def incident(h: Any) -> int:
    opened: int = h.store.open_incident(
        rule="r", severity="critical", scope="process", pid=500, comm="worker", start=1.0,
        message="m", labels={}, history=[], subtree=[], host={})
    return opened


async def test_a_firing_that_repeats_while_pending_is_counted_on_the_action(
        clock: MockClock, make: Make, executions: Executions) -> None:
    h = make(ActionPolicy(ttl_s=300.0))
    one, two, three = incident(h), incident(h), incident(h)
    async with running(h.manager):
        first = await fire(h, incident_id=one)
        await trio.sleep(10.0)
        second = await fire(h, incident_id=two)
        await trio.sleep(5.0)
        third = await fire(h, incident_id=three)
        seen_at = mock_wall()
    assert first["id"] == second["id"] == third["id"]
    assert (third["status"], third["repeats"], third["incident_id"]) == ("pending", 2, one)
    assert third["last_seen_at"] == pytest.approx(seen_at)
    assert (third["created_at"], third["expires_at"]) == (first["created_at"],
                                                          first["expires_at"])  # same TTL
    assert len(h.store.actions()) == 1
    assert [(e, d) for _, e, d in h.events(first["id"])] == [
        ("action.proposed", {"rule": "r", "kind": "kill", "pid": 500, "mode": "monitor"}),
        ("action.repeated", {"rule": "r", "kind": "kill"}),
        ("action.repeated", {"rule": "r", "kind": "kill"})]
    repeats = h.store.audit_log(event="action.repeated")
    assert [e["incident_id"] for e in reversed(repeats)] == [two, three]
    assert [(r["status"], r["repeats"]) for r in h.published] == [
        ("pending", 0), ("pending", 1), ("pending", 2)]
    assert h.manager.counts == {("kill", "pending"): 1}
    assert executions.calls == []


@pytest.mark.parametrize("other", [
    {"pid": 501},  # another process
    {"rule": "other"},  # another rule
    {"action": STOP},  # another action of the rule
    {"action": CompiledAction("kill", True, grace_s=9.0)},  # the same, other parameters
])
async def test_another_target_rule_or_action_is_a_proposal_of_its_own(
        clock: MockClock, make: Make, executions: Executions, other: dict[str, Any]) -> None:
    h = make()
    async with running(h.manager):
        first = await fire(h)
        second = await fire(h, **other)
    assert first["id"] != second["id"]
    assert (second["status"], second["repeats"]) == ("pending", 0)


async def test_a_pid_reused_by_another_process_is_a_proposal_of_its_own(
        clock: MockClock, make: Make, proc: FakeProc, executions: Executions) -> None:
    h = make()
    async with running(h.manager):
        first = await fire(h)
        proc.add(500, "worker", 1, start=7000)  # the same pid, started later
        second = await fire(h)
    assert first["id"] != second["id"]
    assert (second["start_ticks"], second["repeats"]) == (7000, 0)


@pytest.mark.parametrize("decide", ["reject", "expire"])
async def test_once_decided_a_new_firing_asks_again(clock: MockClock, make: Make,
                                                    executions: Executions,
                                                    decide: str) -> None:
    h = make(ActionPolicy(ttl_s=60.0))
    async with running(h.manager):
        first = await fire(h)
        if decide == "reject":
            await h.manager.reject(first["id"], "alice", None)
        else:
            await trio.sleep(61.0)
        second = await fire(h)
    assert second["id"] != first["id"]
    assert (second["status"], second["repeats"]) == ("pending", 0)
    assert (await h.row(first["id"]))["repeats"] == 0


async def test_an_action_approved_is_not_repeated(clock: MockClock, make: Make,
                                                  executions: Executions) -> None:
    """Once approved it runs; a firing after that is about what happens next."""
    h = make()
    async with running(h.manager):
        first = await fire(h)
        await h.manager.approve(first["id"], "alice", None)
        second = await fire(h)
        await h.settle(first["id"])
    assert second["id"] != first["id"] and second["status"] == "pending"


async def test_in_enforce_mode_a_repeat_never_runs_the_action_twice(
        clock: MockClock, make: Make, executions: Executions) -> None:
    """Withheld (the input is degraded): it waits for a person, and repeats count on it."""
    h = make(ActionPolicy(mode="enforce"), degraded=lambda: "events were lost recently")
    async with running(h.manager):
        first = await fire(h)
        again = await fire(h)
        await h.manager.approve(first["id"], "alice", None)
        final = await h.settle(first["id"])
    assert again["id"] == first["id"] and again["repeats"] == 1
    assert final["status"] == "succeeded" and len(executions.calls) == 1


async def test_a_pending_action_restored_after_a_restart_takes_the_repeats(
        clock: MockClock, make: Make, executions: Executions) -> None:
    before = make()
    async with running(before.manager):
        first = await fire(before)
    after = make()
    async with running(after.manager):
        again = await fire(after)
    assert again["id"] == first["id"] and again["repeats"] == 1


async def test_a_repeat_the_store_cannot_record_raises_and_counts_nothing(
        clock: MockClock, make: Make, executions: Executions) -> None:
    h = make()
    async with running(h.manager):
        first = await fire(h)
        fail_audit(h.store)
        with pytest.raises(Exception, match="database or disk is full"):
            await fire(h)
        assert (await h.row(first["id"]))["repeats"] == 0
        heal(h.store)
        again = await fire(h)
    assert again["id"] == first["id"] and again["repeats"] == 1
