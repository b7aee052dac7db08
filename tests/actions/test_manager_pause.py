"""ActionManager while every action is paused: nothing executes, proposals are still made
and marked, approvals are refused, TTLs run on, and a pause for a while ends by itself
(on the autojump clock)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from actions_support import Executions, Make, fail_audit, heal, mock_wall, running
from trio.testing import MockClock

from linnix.actions import ActionPolicy, ActionsPausedError, NotPausedError
from linnix.actions.pause import ENDED, Pause

ENFORCE = ActionPolicy(mode="enforce", ttl_s=300.0)
WITHHELD = "action.auto_approval_withheld"


async def test_enforce_mode_executes_nothing_while_paused(clock: MockClock, make: Make,
                                                          executions: Executions) -> None:
    h = make(ENFORCE)
    async with running(h.manager):
        await h.manager.pause("alice", "maintenance")
        row = await h.propose(500)
        await trio.sleep(10.0)
        assert (await h.row(row["id"]))["status"] == "pending"
        assert executions.calls == []
        await h.manager.resume("alice", "done")
        await trio.sleep(10.0)
        assert (await h.row(row["id"]))["status"] == "pending"  # resuming approves nothing
        assert executions.calls == []
    assert row["status"] == "pending" and row["mode"] == "enforce"
    assert row["reason"] == ("proposed while actions are paused: in enforce mode it would have "
                             "run by itself; it runs only if approved once they are resumed")
    assert h.events(row["id"]) == [
        ("linnix", "action.proposed", {"rule": "r", "kind": "kill", "pid": 500,
                                       "mode": "enforce", "paused": True}),
        ("linnix", WITHHELD, {"reason": "actions are paused by alice"})]


async def test_a_proposal_in_monitor_mode_is_marked_too(clock: MockClock, make: Make,
                                                        executions: Executions) -> None:
    h = make(ActionPolicy(mode="monitor"))
    async with running(h.manager):
        await h.manager.pause("alice")
        paused = await h.propose(500)
        await h.manager.resume("alice")
        after = await h.propose(501)
    assert paused["reason"] == ("proposed while actions are paused: it can be approved once "
                                "they are resumed")
    assert after["reason"] is None
    assert h.events(after["id"])[0][2] == {"rule": "r", "kind": "kill", "pid": 501,
                                           "mode": "monitor"}


async def test_approving_while_paused_is_refused_and_works_after_resume(
        clock: MockClock, make: Make, executions: Executions) -> None:
    h = make()
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        pause = await h.manager.pause("alice", "incident 42")
        with pytest.raises(ActionsPausedError) as err:
            await h.manager.approve(aid, "bob", None)
        assert err.value.pause == pause
        assert (await h.row(aid))["status"] == "pending"
        await h.manager.resume("alice")
        await h.manager.approve(aid, "bob", "now")
        row = await h.settle(aid)
    assert row["status"] == "succeeded"
    assert [kind for kind, _, _ in executions.calls] == ["kill"]


async def test_rejecting_while_paused_is_allowed(clock: MockClock, make: Make,
                                                 executions: Executions) -> None:
    h = make()
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        await h.manager.pause("alice")
        row = await h.manager.reject(aid, "bob", "not needed")
    assert row["status"] == "rejected"


async def test_pending_actions_still_expire_while_paused(clock: MockClock, make: Make,
                                                         executions: Executions) -> None:
    h = make(ActionPolicy(ttl_s=60.0))
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        await h.manager.pause("alice")
        await trio.sleep(61.0)
        row = await h.row(aid)
        assert h.manager.paused is not None
    assert (row["status"], row["reason"]) == ("expired", "nobody decided within 60s")


async def test_an_action_approved_just_before_the_pause_never_starts(
        clock: MockClock, make: Make, executions: Executions,
        monkeypatch: pytest.MonkeyPatch) -> None:
    h = make()
    real = h.store.transition

    def transition(action_id: int, expect: str, status: str, **kw: Any) -> bool:
        if status == "executing":  # the pause arrives between approval and execution
            h.manager.switch.paused = Pause(mock_wall(), "alice", "stop")
        return real(action_id, expect, status, **kw)

    monkeypatch.setattr(h.store, "transition", transition)
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        await h.manager.approve(aid, "bob", None)
        row = await h.settle(aid)
    assert (row["status"], row["result"]) == (
        "refused", {"detail": "not executed: actions were paused by alice"})
    assert executions.calls == []


async def test_a_pause_for_a_while_ends_by_itself(clock: MockClock, make: Make,
                                                  executions: Executions) -> None:
    h = make(ENFORCE)
    async with running(h.manager):
        start = mock_wall()
        pause = await h.manager.pause("alice", "window", 1800.0, note="ops")
        assert pause == Pause(start, "alice", "window", start + 1800.0)
        await trio.sleep(1799.0)
        assert h.manager.paused == pause
        await trio.sleep(2.0)
        assert h.manager.paused is None
        row = await h.propose(500)  # enforce mode works again
        done = await h.settle(row["id"])
    assert done["status"] == "succeeded"
    assert h.audit("actions.paused", "actions.resumed") == [
        ("alice", "actions.paused", {"reason": "window", "until": start + 1800.0,
                                     "for_s": 1800.0, "note": "ops"}),
        ("linnix", "actions.resumed", {"reason": ENDED, "since": start, "paused_by": "alice"})]
    assert h.pauses() == [
        {"actions": "paused", "paused": {"since": start, "until": start + 1800.0,
                                         "reason": "window", "by": "alice"}},
        {"actions": "active", "resumed": {"by": "linnix", "reason": ENDED, "since": start,
                                          "until": start + 1800.0}}]


async def test_pausing_again_sets_a_new_end(clock: MockClock, make: Make,
                                            executions: Executions) -> None:
    h = make()
    async with running(h.manager):
        start = mock_wall()
        await h.manager.pause("alice", "short", 600.0)
        await trio.sleep(300.0)
        again = await h.manager.pause("bob", "longer", 3600.0)
        await trio.sleep(600.0)  # past the first end
        assert h.manager.paused == again
        await trio.sleep(3001.0)  # past the second
        assert h.manager.paused is None
    assert again == Pause(start, "bob", "longer", start + 3900.0)  # paused since the first
    (_, _, first), (_, _, second), (who, _, _) = h.audit("actions.paused", "actions.resumed")
    assert "replaces" not in first
    assert second["replaces"] == {"by": "alice", "reason": "short", "until": start + 600.0}
    assert who == "linnix"


async def test_a_pause_until_resumed_lasts(clock: MockClock, make: Make,
                                           executions: Executions) -> None:
    h = make()
    async with running(h.manager):
        await h.manager.pause("alice")
        await trio.sleep(86400.0 * 365)
        assert h.manager.paused is not None
        ended = await h.manager.resume("bob", "over")
        with pytest.raises(NotPausedError):
            await h.manager.resume("bob")
    assert ended.by == "alice"
    assert h.audit("actions.resumed")[0][:2] == ("bob", "actions.resumed")


async def test_a_resume_that_cannot_be_audited_leaves_actions_paused(
        clock: MockClock, make: Make, executions: Executions) -> None:
    h = make()
    async with running(h.manager):
        await h.manager.pause("alice")
        fail_audit(h.store)
        with pytest.raises(Exception, match="disk is full"):
            await h.manager.resume("bob")
        assert h.manager.paused is not None
        with pytest.raises(Exception, match="disk is full"):
            await h.manager.pause("bob", "again")
        assert h.manager.paused is not None and h.manager.paused.by == "alice"
        heal(h.store)
        await h.manager.resume("bob")
        fail_audit(h.store)
        with pytest.raises(Exception, match="disk is full"):
            await h.manager.pause("carol")
        assert h.manager.paused is None  # a pause that was not audited did not happen
