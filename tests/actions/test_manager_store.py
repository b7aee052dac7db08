"""ActionManager with a store that fails: every decision is stored whole (the action's
row and its audit record) or not at all, and the manager tracks exactly what is stored.

The failure is a full disk as SQLite reports it, injected with a temporary trigger
on the audit table (see ``fail_audit``); like in the other manager tests, the clock
is trio's autojump clock and /proc is a fake.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import trio
from actions_support import (
    ANALYZE,
    Executions,
    Make,
    fail_audit,
    heal,
    mock_wall,
    running,
)
from proc_support import FakeProc
from trio.testing import MockClock

from linnix.actions import ActionConflictError, ActionPolicy
from linnix.actions.manager import EXITED, RETRY_S

FULL = "database or disk is full"


def stored(h: Any, status: str | None = None) -> list[int]:
    return sorted(r["id"] for r in h.store.actions(status=status, limit=1000))


def events(h: Any, action_id: int) -> list[str]:
    return [event for _, event, _ in h.events(action_id)]


# ---- proposals ------------------------------------------------------------------------------

@pytest.mark.parametrize("action", [None, ANALYZE])
async def test_a_proposal_the_store_cannot_audit_is_not_stored(
        clock: MockClock, make: Make, executions: Executions, action: Any) -> None:
    h = make()
    async with running(h.manager):
        fail_audit(h.store)
        with pytest.raises(sqlite3.IntegrityError, match=FULL):
            await (h.propose(500) if action is None else h.propose(500, action))
        assert stored(h) == [] and h.manager.status == {}  # neither stored nor tracked
        heal(h.store)
        aid = (await h.propose(501))["id"]
        await h.manager.approve(aid, "alice", None)
        row = await h.settle(aid)
    assert row["status"] == "succeeded"
    assert stored(h) == [aid]
    assert events(h, aid) == ["action.proposed", "action.approved", "action.succeeded"]


async def test_a_refusal_is_stored_with_both_its_audit_records_or_not_at_all(
        clock: MockClock, make: Make, proc: FakeProc) -> None:
    proc.add(600, "sshd", 1)
    h = make()
    async with running(h.manager):
        fail_audit(h.store, "NEW.event = 'action.refused'")
        with pytest.raises(sqlite3.IntegrityError):
            await h.propose(600)
        assert stored(h) == [] and h.store.audit_log() == []  # not even 'proposed'
        heal(h.store)
        row = await h.propose(600)
    assert row["status"] == "refused"
    assert events(h, row["id"]) == ["action.proposed", "action.refused"]


async def test_an_auto_approval_the_store_cannot_take_leaves_it_pending_for_a_person(
        clock: MockClock, make: Make, executions: Executions) -> None:
    h = make(ActionPolicy(mode="enforce"))
    told: list[str] = []
    h.manager.outage.say = told.append
    async with running(h.manager):
        fail_audit(h.store, "NEW.event = 'action.approved'")
        row = await h.propose(500)
        assert row["status"] == "pending" and h.manager.status[row["id"]] == "pending"
        heal(h.store)
        await h.manager.approve(row["id"], "alice", "by hand")
        row = await h.settle(row["id"])
    assert (row["status"], row["decided_by"]) == ("succeeded", "alice")
    assert len(executions.calls) == 1
    assert told[0].startswith(f"action {row['id']}: the store failed: {FULL}")


# ---- decisions by people --------------------------------------------------------------------

async def test_an_approval_the_store_cannot_record_changes_nothing(
        clock: MockClock, make: Make, executions: Executions) -> None:
    h = make(ActionPolicy(rate_limit=1))
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        fail_audit(h.store)
        with pytest.raises(sqlite3.IntegrityError, match=FULL):
            await h.manager.approve(aid, "alice", None)
        row = await h.row(aid)
        assert (row["status"], row["decided_by"]) == ("pending", None)
        assert h.manager.status[aid] == "pending"
        assert executions.calls == []
        heal(h.store)
        await h.manager.approve(aid, "bob", None)  # the failed one did not use the rate limit
        row = await h.settle(aid)
    assert (row["status"], row["decided_by"]) == ("succeeded", "bob")
    assert len(executions.calls) == 1
    assert [(a, e) for a, e, _ in h.events(aid)] == [
        ("linnix", "action.proposed"), ("bob", "action.approved"),
        ("linnix", "action.succeeded")]


async def test_a_rejection_the_store_cannot_record_changes_nothing(
        clock: MockClock, make: Make) -> None:
    h = make()
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        fail_audit(h.store)
        with pytest.raises(sqlite3.IntegrityError, match=FULL):
            await h.manager.reject(aid, "alice", "fine")
        assert (await h.row(aid))["status"] == "pending"
        assert h.manager.status[aid] == "pending"
        heal(h.store)
        row = await h.manager.reject(aid, "alice", "fine")
    assert (row["status"], row["decided_by"]) == ("rejected", "alice")
    assert events(h, aid) == ["action.proposed", "action.rejected"]


# ---- what happens in the background -----------------------------------------------------

async def test_an_expiry_the_store_cannot_record_is_written_once_it_can(
        clock: MockClock, make: Make, executions: Executions) -> None:
    told: list[str] = []
    h = make(ActionPolicy(ttl_s=10.0))
    h.manager.outage.say = told.append
    async with running(h.manager):
        first = (await h.propose(500))["id"]
        fail_audit(h.store)
        await trio.sleep(10.0 + 2.5 * RETRY_S)  # due at 10s, tried again at 20s and 30s
        assert (await h.row(first))["status"] == "pending"
        assert h.manager.status[first] == "pending"  # as the store says
        heal(h.store)
        healed = mock_wall()
        await trio.sleep(RETRY_S)
        row = await h.row(first)
        second = (await h.propose(501))["id"]  # the manager still works
        await h.manager.approve(second, "alice", None)
        assert (await h.settle(second))["status"] == "succeeded"
    assert (row["status"], row["reason"]) == ("expired", "nobody decided within 10s")
    assert healed <= row["decided_at"] <= healed + RETRY_S
    assert events(h, first) == ["action.proposed", "action.expired"]
    assert told == [
        f"action {first}: the store failed: {FULL}; what it could not record is written again "
        f"every {RETRY_S:g}s, and an action stays pending until its decision is stored",
        "the store records actions again (3 attempt(s) had failed)"]


async def test_a_result_the_store_cannot_record_is_written_once_it_can(
        clock: MockClock, make: Make, executions: Executions) -> None:
    h = make()
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        fail_audit(h.store, "NEW.event = 'action.succeeded'")
        await h.manager.approve(aid, "alice", None)
        await trio.sleep(2 * RETRY_S)
        assert (await h.row(aid))["status"] == "executing"  # the store has no result yet
        with pytest.raises(ActionConflictError) as err:
            await h.manager.approve(aid, "bob", None)
        assert err.value.status == "succeeded"  # it did run: never again
        heal(h.store)
        row = await h.settle(aid)
    assert row["status"] == "succeeded" and row["result"] == {"detail": "kill done"}
    assert len(executions.calls) == 1
    assert events(h, aid) == ["action.proposed", "action.approved", "action.succeeded"]


# ---- what a restart finds -------------------------------------------------------------------

def pending_row(h: Any, **kw: Any) -> int:
    fields: dict[str, Any] = {
        "incident_id": None, "rule": "r", "kind": "kill", "params": {}, "pid": 500,
        "start_ticks": 1000, "comm": "worker", "exe": None, "status": "pending",
        "mode": "monitor", "expires_at": mock_wall() + 300}
    fields.update(kw)
    return int(h.store.add_action(**fields))


async def test_every_pending_action_in_the_store_is_tracked_or_expired_at_start(
        clock: MockClock, make: Make, proc: FakeProc) -> None:
    h = make(ActionPolicy(ttl_s=300.0))
    alive = pending_row(h)
    gone = pending_row(h, pid=777, start_ticks=5)
    reused = pending_row(h, pid=501, start_ticks=999)  # 501 started at 1001: another process
    unknown = pending_row(h, pid=None, start_ticks=None)
    endless = pending_row(h, expires_at=None)
    many = [pending_row(h, pid=502, start_ticks=1002) for _ in range(1100)]  # more than a page
    async with running(h.manager):
        await trio.sleep(0.001)
        rows = {aid: await h.row(aid) for aid in (alive, gone, reused, unknown, endless)}
        assert set(h.manager.status) == {alive, gone, reused, unknown, endless, *many}
        assert {h.manager.status[aid] for aid in (alive, *many)} == {"pending"}
        await h.manager.approve(many[0], "alice", None)  # decidable: tracked
    assert rows[alive]["status"] == "pending"
    for aid in (gone, reused):
        assert (rows[aid]["status"], rows[aid]["reason"]) == ("expired", EXITED)
    assert (rows[unknown]["status"], rows[unknown]["reason"]) == (
        "expired", "its target process is not known")
    assert (rows[endless]["status"], rows[endless]["reason"]) == ("expired", "it has no deadline")
    assert events(h, gone) == ["action.expired"]
    assert h.manager.counts[("kill", "expired")] == 4  # untracked ones keep their kind too


async def test_a_read_that_fails_while_executing_does_not_stop_the_execution(
        clock: MockClock, make: Make, executions: Executions,
        monkeypatch: pytest.MonkeyPatch) -> None:
    h = make()
    real = h.store.action

    def action(action_id: int) -> dict[str, Any] | None:
        row = real(action_id)
        if row is not None and row["status"] == "executing":  # the stream's read, mid-run
            raise sqlite3.OperationalError("disk I/O error")
        return row

    monkeypatch.setattr(h.store, "action", action)
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        await h.manager.approve(aid, "alice", None)
        await trio.sleep(1.0)
    assert len(executions.calls) == 1
    assert real(aid)["status"] == "succeeded"  # type: ignore[index]
    assert h.manager.status[aid] == "succeeded"


async def test_a_decision_made_through_another_connection_is_a_conflict(
        clock: MockClock, make: Make) -> None:
    h = make()
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        other = make()  # a second connection to the same file
        assert other.store.transition(aid, "pending", "approved", decided_by="bob")
        with pytest.raises(ActionConflictError) as err:
            await h.manager.reject(aid, "alice", None)
        assert err.value.status == "approved"
    assert h.manager.status[aid] == "approved"
    assert (await h.row(aid))["decided_by"] == "bob"
