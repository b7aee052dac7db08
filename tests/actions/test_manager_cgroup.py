"""ActionManager with the cgroup actions: freeze and kill_cgroup over a fake cgroup tree
and recording primitives, on the autojump clock (see test_manager.py): approval, the
auto policy, pairing, thaws (TTL, reject, expiry, kill, by hand, at stop and at start),
re-created cgroups and the rate limit of kills per unit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
from actions_support import Make, running
from cgactions_support import (
    FREEZE,
    HOG,
    KILL_CGROUP,
    FakePrimitives,
    FakeTree,
    manager_kw,
    propose,
)
from proc_support import FakeProc
from trio.testing import MockClock

from linnix.actions import ActionPolicy
from linnix.actions.cgroup import RECREATED
from linnix.actions.policy import NotFrozenError
from linnix.cgroups.control import Outcome

AUTO = ActionPolicy(mode="monitor", ttl_s=300.0, auto=frozenset({"freeze"}))


@pytest.fixture
def tree(tmp_path: Path, proc: FakeProc) -> FakeTree:
    return FakeTree(tmp_path / "cg", proc)


@pytest.fixture
def fake() -> FakePrimitives:
    return FakePrimitives()


async def test_a_freeze_waits_for_approval_in_monitor_mode(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(ActionPolicy(mode="monitor", ttl_s=300.0), **manager_kw(tree, fake))
    async with running(h.manager):
        row = await propose(h, FREEZE, hog)
        assert (row["status"], row["cgroup"], row["cgroup_id"], row["pid"]) == (
            "pending", HOG, hog.id, None)
        await trio.sleep(10.0)
        assert fake.calls == []
        await h.manager.approve(row["id"], "alice", "contain it")
        assert (await h.settle(row["id"]))["status"] == "succeeded"
    assert fake.of("freeze") == [HOG]
    assert [f["action_id"] for f in h.store.active_freezes()] == []  # thawed at stop


async def test_auto_freezes_at_once_in_monitor_mode_and_says_so(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(AUTO, **manager_kw(tree, fake))
    async with running(h.manager):
        row = await propose(h, FREEZE, hog)
        done = await h.settle(row["id"])
        assert done["status"] == "succeeded" and done["mode"] == "monitor"
        assert [f["action_id"] for f in h.store.active_freezes()] == [row["id"]]
        kill = await propose(h, KILL_CGROUP, hog)  # never auto: it waits for a person
        await trio.sleep(1.0)
        assert (await h.row(kill["id"]))["status"] == "pending"
    events = h.events(row["id"])
    assert events[0][2]["auto"] is True
    assert ("linnix (auto)", "action.approved",
            {"reason": "[actions] auto lists it: a thaw undoes it"}) in events
    assert fake.of("freeze") == [HOG] and fake.of("kill") == []


async def test_the_freeze_thaws_when_its_kill_is_rejected(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(AUTO, **manager_kw(tree, fake))
    async with running(h.manager):
        freeze = await propose(h, FREEZE, hog)
        kill = await propose(h, KILL_CGROUP, hog)
        await h.settle(freeze["id"])
        assert fake.of("thaw") == []
        await h.manager.reject(kill["id"], "alice", "a benchmark")
        await trio.sleep(0.1)
        assert fake.of("thaw") == [HOG]
        assert h.store.active_freezes() == []
        (thawed,) = [e for e in h.events(freeze["id"]) if e[1] == "action.thawed"]
        assert thawed[2]["reason"] == f"the paired kill_cgroup (action {kill['id']}) was rejected"
        with pytest.raises(NotFrozenError, match="thawed already"):
            await h.manager.thaw(freeze["id"], "bob", None)


async def test_the_freeze_thaws_when_its_kill_expires(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(ActionPolicy(mode="monitor", ttl_s=300.0), **manager_kw(tree, fake))
    async with running(h.manager):
        freeze = await propose(h, FREEZE, hog)
        kill = await propose(h, KILL_CGROUP, hog)
        await trio.sleep(100.0)  # approved late: its own TTL would thaw it at 400s
        await h.manager.approve(freeze["id"], "alice", None)
        await trio.sleep(199.0)
        assert fake.of("freeze") == [HOG] and fake.of("thaw") == []
        await trio.sleep(2.0)
        assert (await h.row(kill["id"]))["status"] == "expired"
        assert fake.of("thaw") == [HOG]
    assert h.store.freeze(freeze["id"])["thaw_reason"] == (  # type: ignore[index]
        f"the paired kill_cgroup (action {kill['id']}) was expired")


async def test_the_kill_runs_after_approval_then_the_emptied_cgroup_thaws(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(AUTO, **manager_kw(tree, fake))
    async with running(h.manager):
        await propose(h, FREEZE, hog)
        kill = await propose(h, KILL_CGROUP, hog)
        await h.manager.approve(kill["id"], "alice", "kill it")
        assert (await h.settle(kill["id"]))["status"] == "succeeded"
        await trio.sleep(0.1)
    assert fake.calls == [("freeze", HOG), ("kill", HOG), ("thaw", HOG)]


async def test_a_freeze_thaws_after_freeze_ttl_at_the_latest(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    policy = ActionPolicy(mode="monitor", ttl_s=300.0, auto=frozenset({"freeze"}),
                          freeze_ttl_s=60.0)
    h = make(policy, **manager_kw(tree, fake))
    async with running(h.manager):
        freeze = await propose(h, FREEZE, hog)
        kill = await propose(h, KILL_CGROUP, hog)
        await trio.sleep(59.0)
        assert fake.of("thaw") == []
        await trio.sleep(2.0)
        assert fake.of("thaw") == [HOG]
        assert (await h.row(kill["id"]))["status"] == "pending"  # the kill still waits
    assert h.store.freeze(freeze["id"])["thaw_reason"] == (  # type: ignore[index]
        "freeze_ttl: frozen for 60s")


async def test_a_pending_freeze_expires_with_its_rejected_kill(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(ActionPolicy(mode="monitor", ttl_s=300.0), **manager_kw(tree, fake))
    async with running(h.manager):
        freeze = await propose(h, FREEZE, hog)
        kill = await propose(h, KILL_CGROUP, hog)
        await h.manager.reject(kill["id"], "alice", None)
        await trio.sleep(0.1)
        row = await h.row(freeze["id"])
        assert (row["status"], row["reason"]) == (
            "expired", f"the paired kill_cgroup (action {kill['id']}) was rejected")
    assert fake.calls == []


async def test_thaw_by_hand_and_a_clear_error_when_nothing_is_frozen(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(AUTO, **manager_kw(tree, fake))
    async with running(h.manager):
        freeze = await propose(h, FREEZE, hog)
        await h.settle(freeze["id"])
        row = await h.manager.thaw(freeze["id"], "alice", "false alarm")
        assert row["id"] == freeze["id"]
        assert fake.of("thaw") == [HOG]
        with pytest.raises(NotFrozenError, match="thawed already \\(false alarm\\)"):
            await h.manager.thaw(freeze["id"], "alice", None)
        kill = await propose(h, KILL_CGROUP, hog)
        with pytest.raises(NotFrozenError, match="never froze anything"):
            await h.manager.thaw(kill["id"], "alice", None)
    assert ("alice", "action.thawed") in [(a, e) for a, e, _ in h.events(freeze["id"])]


async def test_a_stopping_agent_thaws_and_a_starting_one_thaws_what_was_left(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    first = make(AUTO, **manager_kw(tree, fake))
    async with running(first.manager):
        freeze = await propose(first, FREEZE, hog)
        await first.settle(freeze["id"])
    assert fake.of("thaw") == [HOG]  # at stop
    # a crash: the record says frozen, nobody thawed it
    first.store.db.execute("UPDATE freezes SET thawed_at = NULL, thaw_reason = NULL")
    fake.calls.clear()
    second = make(AUTO, **manager_kw(tree, fake))
    async with running(second.manager):
        assert fake.of("thaw") == [HOG]
        assert second.store.active_freezes() == []
    (thawed,) = [e for e in second.events(freeze["id"]) if e[1] == "action.thawed"][-1:]
    assert thawed[2]["reason"] == "thawed at start: the agent stopped while it held it"


async def test_a_failed_thaw_is_kept_for_the_next_start(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    said: list[str] = []
    h = make(AUTO, on_problem=said.append, **manager_kw(tree, fake))
    fake.outcomes["thaw"] = Outcome("failed", f"{HOG}: Permission denied")
    async with running(h.manager):
        freeze = await propose(h, FREEZE, hog)
        await h.settle(freeze["id"])
    assert [f["action_id"] for f in h.store.active_freezes()] == [freeze["id"]]
    assert any("cannot thaw" in s for s in said)
    assert "action.thaw_failed" in [e for _, e, _ in h.events(freeze["id"])]


async def test_a_cgroup_recreated_since_the_proposal_is_refused(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(ActionPolicy(mode="monitor", ttl_s=300.0), **manager_kw(tree, fake))
    async with running(h.manager):
        kill = await propose(h, KILL_CGROUP, hog)
        fake.recreated.add(hog.id)
        await h.manager.approve(kill["id"], "alice", None)
        row = await h.settle(kill["id"])
        assert (row["status"], row["result"]) == ("refused", {"detail": RECREATED})
        gone = await propose(h, KILL_CGROUP, hog, rule="other")
        assert (gone["status"], gone["reason"]) == (
            "refused", "the cgroup was removed or re-created since the rule fired")
    assert fake.of("kill") == []


async def test_kills_per_unit_are_limited_and_the_refusal_audited(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    first = tree.add(HOG, [(700, "hog")])
    inner = tree.add(HOG + "/worker", [(701, "hog")])  # the same unit
    other = tree.add("/system.slice/other.service", [(702, "other")])
    policy = ActionPolicy(mode="enforce", ttl_s=300.0, cgroup_kills_per_unit=1)
    h = make(policy, **manager_kw(tree, fake))
    async with running(h.manager):
        a = await h.settle((await propose(h, KILL_CGROUP, first))["id"])
        b = await h.settle((await propose(h, KILL_CGROUP, inner))["id"])
        c = await h.settle((await propose(h, KILL_CGROUP, other))["id"])
        await trio.sleep(601.0)
        d = await h.settle((await propose(h, KILL_CGROUP, inner, rule="later"))["id"])
    assert [r["status"] for r in (a, b, c, d)] == ["succeeded", "refused", "succeeded",
                                                   "succeeded"]
    assert b["result"]["detail"] == ("1 kill(s) of hog.service within 600s already: the "
                                     "limit of [actions] cgroup_kills_per_unit")
    assert ("linnix", "action.refused", {"reason": b["result"]["detail"]}) in h.events(b["id"])
    assert fake.of("kill") == [HOG, "/system.slice/other.service", HOG + "/worker"]


@pytest.mark.parametrize(("path", "procs", "why"), [
    ("/system.slice", [], "holds linnix itself"),
    ("/system.slice/linnix.service", [], "holds linnix itself"),
    ("/init.scope", [(1, "init")], "init.scope is pid 1's"),
    ("/user.slice", [], "user.slice holds every user's sessions"),
    ("/user.slice/user-1000.slice/session-3.scope", [], "is a login session"),
    ("/system.slice/ssh.service", [(710, "sshd")], "holds sshd[710]"),
    ("/system.slice/postgresql.service", [], "'postgresql.service' is on the protected list"),
    ("/system.slice/agent.service", [(4242, "python3")], "holds linnix or one of its"),
])
async def test_guards_refuse_at_proposal(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives, path: str,
        procs: list[tuple[int, str]], why: str) -> None:
    target = tree.add(path, procs)
    h = make(AUTO, **manager_kw(tree, fake, protected=frozenset({"postgresql.service"})))
    async with running(h.manager):
        row = await propose(h, FREEZE, target)
    assert row["status"] == "refused" and why in row["reason"]
    assert ("linnix", "action.refused", {"reason": row["reason"], "at": "proposal"}) in (
        h.events(row["id"]))
    assert fake.calls == []


async def test_guards_refuse_again_before_execution(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(ActionPolicy(mode="monitor", ttl_s=300.0), **manager_kw(tree, fake))
    async with running(h.manager):
        kill = await propose(h, KILL_CGROUP, hog)
        tree.add(HOG, [(700, "hog"), (711, "sshd")])  # an sshd moved in meanwhile
        await h.manager.approve(kill["id"], "alice", None)
        row = await h.settle(kill["id"])
    assert row["status"] == "refused" and "holds sshd[711]" in row["result"]["detail"]
    assert fake.calls == []


async def test_the_root_and_an_unknown_own_cgroup_are_refused(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(AUTO, **manager_kw(tree, fake, own_cgroup=None))
    async with running(h.manager):
        row = await propose(h, FREEZE, hog)
        root = await propose(h, FREEZE, tree.add("/"), rule="root")
    assert row["reason"] == "linnix cannot tell its own cgroup, so it cannot keep clear of it"
    assert root["reason"] == "never the root cgroup"


async def test_a_cgroup_rule_firing_again_is_counted_on_the_pending_action(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(ActionPolicy(mode="monitor", ttl_s=300.0), **manager_kw(tree, fake))
    async with running(h.manager):
        first = await propose(h, KILL_CGROUP, hog)
        again = await propose(h, KILL_CGROUP, hog)
    assert again["id"] == first["id"] and again["repeats"] == 1


async def test_a_pending_cgroup_action_is_tracked_again_after_a_restart(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    first = make(ActionPolicy(mode="monitor", ttl_s=300.0), **manager_kw(tree, fake))
    async with running(first.manager):
        kill = await propose(first, KILL_CGROUP, hog)
    second = make(ActionPolicy(mode="monitor", ttl_s=300.0), **manager_kw(tree, fake))
    async with running(second.manager):
        assert (await second.row(kill["id"]))["status"] == "pending"
        await second.manager.approve(kill["id"], "alice", None)
        assert (await second.settle(kill["id"]))["status"] == "succeeded"
    assert fake.of("kill") == [HOG]


async def test_a_store_that_fails_before_a_freeze_means_no_freeze(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives,
        monkeypatch: pytest.MonkeyPatch) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(ActionPolicy(mode="monitor", ttl_s=300.0), **manager_kw(tree, fake))

    def full(*_args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    async with running(h.manager):
        row = await propose(h, FREEZE, hog)
        monkeypatch.setattr(h.store, "add_freeze", full)
        await h.manager.approve(row["id"], "alice", None)
        done = await h.settle(row["id"])
    assert (done["status"], done["result"]) == (
        "failed", {"detail": "freeze: the store failed: database or disk is full"})
    assert fake.calls == []


async def test_a_kill_proposed_after_its_freeze_ran_is_paired_with_it(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(AUTO, **manager_kw(tree, fake))
    async with running(h.manager):
        freeze = await propose(h, FREEZE, hog)
        assert (await h.settle(freeze["id"]))["status"] == "succeeded"
        await trio.sleep(1.0)  # the freeze is done with long before the kill is proposed
        kill = await propose(h, KILL_CGROUP, hog)
        await h.manager.reject(kill["id"], "alice", None)
        await trio.sleep(0.1)
        assert fake.of("thaw") == [HOG]
    assert h.store.freeze(freeze["id"])["thaw_reason"] == (  # type: ignore[index]
        f"the paired kill_cgroup (action {kill['id']}) was rejected")


async def test_a_rule_firing_again_while_its_freeze_holds_freezes_nothing_more(
        clock: MockClock, make: Make, tree: FakeTree, fake: FakePrimitives) -> None:
    hog = tree.add(HOG, [(700, "hog")])
    h = make(AUTO, **manager_kw(tree, fake))
    async with running(h.manager):
        freeze = await propose(h, FREEZE, hog)
        await h.settle(freeze["id"])
        again = await propose(h, FREEZE, hog)
        assert again["id"] == freeze["id"]
        other = await propose(h, FREEZE, hog, rule="other")  # another rule's own freeze
        assert other["id"] != freeze["id"]
        await h.settle(other["id"])
        await h.manager.thaw(freeze["id"], "alice", None)
        third = await propose(h, FREEZE, hog)  # thawed: the rule may freeze again
        assert third["id"] not in (freeze["id"], other["id"])
        await h.settle(third["id"])
        assert fake.calls == [("freeze", HOG), ("freeze", HOG), ("thaw", HOG), ("freeze", HOG)]
