"""ActionManager: the lifecycle of actions, guards at proposal and execution, enforce
mode, expiry and restore after a restart.

Most tests run on trio's autojump clock with the manager's wall clock tied to it,
against a fake /proc and with the executors replaced by recorders (a fake /proc
must never lead to a real pid being signalled).  The store then runs inline on
the trio thread: a worker thread would let the autojump clock leap over a
deadline while the disk is busy.  The tests that execute against real processes
use the real clock, the real executors and the threaded :class:`AsyncStore`.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from actions_support import (
    ANALYZE,
    KILL,
    KILL_TREE,
    LIFECYCLE,
    RENICE,
    STOP,
    Executions,
    Harness,
    Make,
    SteppedWall,
    mock_wall,
    running,
)
from proc_support import CHILD, PF_KTHREAD, FakeProc, read_line
from trio.testing import MockClock

import linnix.actions.executors as executors_module
import linnix.actions.guards as guards_module
from linnix.actions import (
    ActionConflictError,
    ActionNotFoundError,
    ActionPolicy,
    Guards,
    Identity,
    RateLimitedError,
)
from linnix.actions.executors import Outcome
from linnix.actions.executors import kill as real_kill
from linnix.actions.guards import argv0_reader
from linnix.plan import CompiledAction
from linnix.procfs import HZ

# ---- monitor mode, approve, reject ----------------------------------------------------------

async def test_monitor_mode_leaves_proposals_pending(clock: MockClock, make: Make,
                                                     executions: Executions) -> None:
    h = make(ActionPolicy(mode="monitor", ttl_s=300.0))
    async with running(h.manager):
        row = await h.propose(500)
        assert row["status"] == "pending" and row["mode"] == "monitor"
        assert row["expires_at"] == pytest.approx(mock_wall() + 300.0)
        assert (row["pid"], row["start_ticks"], row["comm"], row["exe"]) == (
            500, 1000, "worker", "/usr/bin/worker")
        assert row["params"] == {"grace_s": 2.0}
        await trio.sleep(299.0)
        assert (await h.row(row["id"]))["status"] == "pending"
    assert executions.calls == []
    assert h.events(row["id"]) == [("linnix", "action.proposed", {
        "rule": "r", "kind": "kill", "pid": 500, "mode": "monitor"})]
    assert h.statuses(row["id"]) == ["pending"]
    assert h.manager.counts == {("kill", "pending"): 1}


@pytest.mark.parametrize(("action", "call"), [
    (KILL, ("kill", {"args": (), "grace": 2.0, "signum": 15})),
    (CompiledAction("kill", True, signal=9), ("kill", {"args": (), "grace": 5.0, "signum": 9})),
    (STOP, ("send_signal", {"args": (19,)})),
    (RENICE, ("renice", {"args": (10,)})),
])
async def test_approve_executes_exactly_once(clock: MockClock, make: Make,
                                             executions: Executions, action: CompiledAction,
                                             call: tuple[str, dict[str, Any]]) -> None:
    h = make()
    async with running(h.manager):
        aid = (await h.propose(500, action))["id"]
        row = await h.manager.approve(aid, "alice", "it is stuck")
        assert row["status"] in ("approved", "executing")
        row = await h.settle(aid)
        for verb in (h.manager.approve, h.manager.reject):
            with pytest.raises(ActionConflictError) as err:
                await verb(aid, "bob", None)
            assert err.value.status == "succeeded"
    assert row["status"] == "succeeded"
    assert (row["decided_by"], row["reason"]) == ("alice", "it is stuck")
    assert row["result"] == {"detail": f"{call[0]} done"}
    assert row["finished_at"] >= row["decided_at"]
    ((kind, target, args),) = executions.calls
    assert (kind, args) == call
    assert isinstance(target, Identity) and (target.pid, target.start_ticks) == (500, 1000)
    assert [(actor, event) for actor, event, _ in h.events(aid)] == [
        ("linnix", "action.proposed"), ("alice", "action.approved"),
        ("linnix", "action.succeeded")]
    assert h.events(aid)[1][2] == {"reason": "it is stuck"}
    seen = h.statuses(aid)
    assert seen[0] == "pending" and seen[-1] == "succeeded"
    assert [LIFECYCLE.index(s) for s in seen[:-1]] == sorted(LIFECYCLE.index(s)
                                                             for s in seen[:-1])
    assert h.manager.counts == {(action.name, status): 1
                                for status in ("pending", "approved", "succeeded")}


async def test_reject(clock: MockClock, make: Make, executions: Executions) -> None:
    h = make(ActionPolicy(ttl_s=60.0))
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        row = await h.manager.reject(aid, "bob", "expected load")
        assert row["status"] == "rejected"
        assert (row["decided_by"], row["reason"]) == ("bob", "expected load")
        assert row["decided_at"] == pytest.approx(mock_wall())
        for verb in (h.manager.approve, h.manager.reject):
            with pytest.raises(ActionConflictError) as err:
                await verb(aid, "carol", None)
            assert err.value.status == "rejected"
        await trio.sleep(120.0)  # past its deadline: a decided action does not expire
        assert (await h.row(aid))["status"] == "rejected"
    assert executions.calls == []
    assert [(a, e) for a, e, _ in h.events(aid)] == [
        ("linnix", "action.proposed"), ("bob", "action.rejected")]


async def test_an_unknown_action_is_not_found(clock: MockClock, make: Make) -> None:
    h = make()
    async with running(h.manager):
        with pytest.raises(ActionNotFoundError):
            await h.manager.approve(12345, "alice", None)
        with pytest.raises(ActionNotFoundError):
            await h.manager.reject(12345, "alice", None)


async def test_approving_after_expiry_conflicts(clock: MockClock, make: Make,
                                                executions: Executions) -> None:
    h = make(ActionPolicy(ttl_s=30.0))
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        await trio.sleep(31.0)
        with pytest.raises(ActionConflictError) as err:
            await h.manager.approve(aid, "alice", None)
        assert err.value.status == "expired"
        assert str(err.value) == f"action {aid} is expired, not pending"
    assert executions.calls == []


async def test_approve_and_reject_race(clock: MockClock, make: Make,
                                       executions: Executions) -> None:
    h = make()
    outcomes: dict[str, object] = {}
    async with running(h.manager):
        aid = (await h.propose(500))["id"]

        async def decide(verb: str) -> None:
            try:
                fn = h.manager.approve if verb == "approve" else h.manager.reject
                outcomes[verb] = await fn(aid, verb, None)
            except ActionConflictError as err:
                outcomes[verb] = err

        async with trio.open_nursery() as nursery:
            nursery.start_soon(decide, "approve")
            nursery.start_soon(decide, "reject")
        final = await h.settle(aid)
    errors = [v for v in outcomes.values() if isinstance(v, ActionConflictError)]
    assert len(errors) == 1
    winner = next(k for k, v in outcomes.items() if not isinstance(v, ActionConflictError))
    assert final["decided_by"] == winner
    assert final["status"] == ("succeeded" if winner == "approve" else "rejected")
    assert len(executions.calls) == (1 if winner == "approve" else 0)


# ---- expiry ---------------------------------------------------------------------------------

async def test_ttl_expiry_happens_on_time_and_is_audited(clock: MockClock, make: Make,
                                                         executions: Executions) -> None:
    h = make(ActionPolicy(ttl_s=300.0))
    async with running(h.manager):
        first = await h.propose(500)
        await trio.sleep(100.0)
        second = await h.propose(501)
        assert second["expires_at"] - first["expires_at"] == pytest.approx(100.0)
        await trio.sleep(first["expires_at"] - mock_wall() - 0.001)
        assert (await h.row(first["id"]))["status"] == "pending"  # not a moment early
        await trio.sleep(0.002)
        row = await h.row(first["id"])
        assert row["status"] == "expired"
        assert row["decided_at"] == pytest.approx(row["expires_at"], abs=1e-6)  # on time
        assert row["decided_by"] == "linnix"
        assert row["reason"] == "nobody decided within 300s"
        assert (await h.row(second["id"]))["status"] == "pending"
        await trio.sleep(second["expires_at"] - mock_wall() + 0.001)
        row2 = await h.row(second["id"])
        assert row2["status"] == "expired"
        assert row2["decided_at"] == pytest.approx(row2["expires_at"], abs=1e-6)
    assert h.events(first["id"])[-1] == ("linnix", "action.expired",
                                         {"reason": "nobody decided within 300s"})
    assert h.statuses(first["id"]) == ["pending", "expired"]
    assert executions.calls == []


async def test_many_deadlines_expire_in_order(clock: MockClock, make: Make) -> None:
    h = make(ActionPolicy(ttl_s=10.0))
    async with running(h.manager):
        ids = []
        for pid in (500, 501, 502):
            ids.append((await h.propose(pid))["id"])
            await trio.sleep(3.0)
        await trio.sleep(20.0)
    rows = [h.store.action(i) for i in ids]
    assert all(r is not None and r["status"] == "expired" for r in rows)
    for r in rows:
        assert r is not None and r["decided_at"] == pytest.approx(r["expires_at"], abs=1e-6)


@pytest.mark.parametrize("step", [3600.0, -3600.0])
async def test_a_wall_clock_step_neither_shortens_nor_lengthens_a_ttl(
        clock: MockClock, make: Make, step: float) -> None:
    wall = SteppedWall()
    h = make(ActionPolicy(ttl_s=300.0), wall=wall)
    async with running(h.manager):
        proposed = trio.current_time()
        row = await h.propose(500)
        await trio.sleep(10.0)
        wall.step = step
        await h.propose(501)  # the expirer looks at its deadlines again
        await trio.sleep(289.0)
        assert (await h.row(row["id"]))["status"] == "pending"  # 299s on the monotonic clock
        await trio.sleep(2.0)
        expired = await h.row(row["id"])
        assert expired["status"] == "expired"
        assert h.manager.status[row["id"]] == "expired"
    assert trio.current_time() - proposed == pytest.approx(301.0, abs=0.01)
    assert expired["reason"] == "nobody decided within 300s"
    assert expired["expires_at"] == pytest.approx(row["created_at"] + 300.0)  # as first said
    assert expired["decided_at"] == pytest.approx(row["created_at"] + 300.0 + step, abs=0.01)


async def test_a_wall_clock_step_back_does_not_stretch_the_rate_limit(
        clock: MockClock, make: Make, executions: Executions) -> None:
    wall = SteppedWall()
    h = make(ActionPolicy(rate_limit=1, ttl_s=3600.0), wall=wall)
    async with running(h.manager):
        first = (await h.propose(500))["id"]
        second = (await h.propose(501))["id"]
        await h.manager.approve(first, "alice", None)
        wall.step = -3600.0  # the wall clock goes back an hour
        with pytest.raises(RateLimitedError) as err:
            await h.manager.approve(second, "alice", None)
        assert err.value.retry_after == pytest.approx(60.0, abs=0.01)
        await trio.sleep(60.0)
        await h.manager.approve(second, "alice", None)
        assert (await h.settle(second))["status"] == "succeeded"
    assert len(executions.calls) == 2


# ---- the concurrent-approve race, for real --------------------------------------------------

@pytest.fixture
def child() -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(mode: str = "honour") -> subprocess.Popen[str]:
        import sys

        p = subprocess.Popen([sys.executable, "-c", CHILD, "lnx-target", mode],
                             stdout=subprocess.PIPE, text=True)
        started.append(p)
        assert int(read_line(p.stdout)) == p.pid
        return p

    yield start
    for p in started:
        p.kill()
        p.wait()
        assert p.stdout is not None
        p.stdout.close()


@pytest.fixture
def make_real(tmp_path: Path) -> Iterator[Callable[[ActionPolicy], Harness]]:
    """Harnesses on the real clock, real /proc, real executors and the threaded store."""
    made: list[Harness] = []

    def build(policy: ActionPolicy) -> Harness:
        h = Harness(tmp_path / "real.db", "/proc", policy, wall=time.time, inline=False,
                    guards=Guards(frozenset({"sshd"}), frozenset()))
        made.append(h)
        return h

    yield build
    for h in made:
        h.store.close()


async def test_concurrent_approvals_execute_once(make_real: Any, child: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    h = make_real(ActionPolicy())
    target = child()
    calls: list[Identity] = []

    async def counted(guards: Guards, ident: Identity, **kw: Any) -> Outcome:
        calls.append(ident)
        return await real_kill(guards, ident, **kw)

    monkeypatch.setattr(executors_module, "kill", counted)
    results: list[object] = []
    async with running(h.manager):
        aid = (await h.propose(target.pid))["id"]

        async def approve(who: str) -> None:
            try:
                results.append(await h.manager.approve(aid, who, None))
            except ActionConflictError as err:
                results.append(err)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(approve, "alice")
            nursery.start_soon(approve, "bob")
        row = await h.settle(aid)
    conflicts = [r for r in results if isinstance(r, ActionConflictError)]
    assert len(results) == 2 and len(conflicts) == 1
    assert conflicts[0].status in ("approved", "executing", "succeeded")
    assert row["status"] == "succeeded", row
    assert len(calls) == 1
    assert target.wait(5) == -signal.SIGTERM
    approved = [e for e in h.events(aid) if e[1] == "action.approved"]
    assert len(approved) == 1 and approved[0][0] == row["decided_by"]


async def test_approve_kills_a_real_process(make_real: Any, child: Any) -> None:
    h = make_real(ActionPolicy())
    target = child("ignore")
    async with running(h.manager):
        aid = (await h.propose(target.pid, CompiledAction("kill", True, grace_s=0.3)))["id"]
        await h.manager.approve(aid, "alice", None)
        row = await h.settle(aid)
    assert row["status"] == "succeeded"
    assert row["result"]["detail"] == (
        f"SIGTERM sent: lnx-target[{target.pid}]; 0 exited within the 0.3s grace; "
        "1 killed with SIGKILL after it")
    assert target.wait(5) == -signal.SIGKILL


async def test_a_real_process_gone_before_approval_is_refused(make_real: Any,
                                                              child: Any) -> None:
    h = make_real(ActionPolicy())
    target = child()
    async with running(h.manager):
        aid = (await h.propose(target.pid))["id"]
        target.kill()
        target.wait()
        await h.manager.approve(aid, "alice", None)
        row = await h.settle(aid)
    assert row["status"] == "refused"
    assert row["result"] == {"detail": f"process {target.pid} is gone"}


async def test_a_target_that_exits_while_pending_expires_at_once(make_real: Any,
                                                                  child: Any) -> None:
    h = make_real(ActionPolicy())
    target = child()
    async with running(h.manager):
        aid = (await h.propose(target.pid))["id"]
        await trio.sleep(0.05)
        assert (await h.row(aid))["status"] == "pending"  # alive: nothing happens
        target.kill()
        target.wait()
        row = await h.settle(aid, timeout=5.0)
        with pytest.raises(ActionConflictError) as err:
            await h.manager.approve(aid, "alice", None)
    assert err.value.status == "expired"
    assert row["status"] == "expired"
    assert row["reason"] == "the target process exited before anyone decided"
    assert [(a, e) for a, e, _ in h.events(aid)] == [
        ("linnix", "action.proposed"), ("linnix", "action.expired")]
    assert h.statuses(aid) == ["pending", "expired"]


async def test_a_decided_action_is_no_longer_watched(make_real: Any, child: Any) -> None:
    h = make_real(ActionPolicy())
    first, second = child(), child()
    async with running(h.manager):
        rejected = (await h.propose(first.pid))["id"]
        killed = (await h.propose(second.pid, CompiledAction("kill", True, grace_s=1.0)))["id"]
        await h.manager.reject(rejected, "alice", "it is fine")
        await h.manager.approve(killed, "bob", None)
        row = await h.settle(killed)
        first.kill()
        first.wait()
        await trio.sleep(0.1)
        assert len(h.manager._watches) == 0
    assert row["status"] == "succeeded"  # its own kill did not expire it on the way
    assert (await h.row(rejected))["status"] == "rejected"
    assert [e for _, e, _ in h.events(rejected)] == ["action.proposed", "action.rejected"]


async def test_a_pending_target_that_exited_while_stopped_expires_on_restart(
        make_real: Any, child: Any) -> None:
    first = make_real(ActionPolicy())
    target = child()
    async with running(first.manager):
        aid = (await first.propose(target.pid))["id"]
    first.store.close()
    target.kill()
    target.wait()  # gone while no daemon ran
    second = make_real(ActionPolicy())
    async with running(second.manager):
        row = await second.settle(aid, timeout=5.0)
    assert row["status"] == "expired"
    assert row["reason"] == "the target process exited before anyone decided"


async def test_enforce_mode_kills_a_real_process(make_real: Any, child: Any) -> None:
    h = make_real(ActionPolicy(mode="enforce"))
    target = child()
    async with running(h.manager):
        row = await h.propose(target.pid)
        assert row["mode"] == "enforce"
        row = await h.settle(row["id"])
    assert row["status"] == "succeeded"
    assert row["decided_by"] == "linnix (enforce mode)"
    assert target.wait(5) == -signal.SIGTERM


# ---- enforce mode ---------------------------------------------------------------------------

async def test_enforce_mode_auto_approves_when_the_guards_pass(
        clock: MockClock, make: Make, executions: Executions) -> None:
    h = make(ActionPolicy(mode="enforce"))
    async with running(h.manager):
        row = await h.propose(500)
        assert row["mode"] == "enforce" and row["status"] in ("approved", "executing")
        row = await h.settle(row["id"])
    assert row["status"] == "succeeded"
    assert (row["decided_by"], row["reason"]) == ("linnix (enforce mode)",
                                                 "every guard passed")
    assert len(executions.calls) == 1
    assert [(a, e) for a, e, _ in h.events(row["id"])] == [
        ("linnix", "action.proposed"), ("linnix (enforce mode)", "action.approved"),
        ("linnix", "action.succeeded")]


async def test_enforce_mode_respects_a_monitor_only_rule(clock: MockClock, make: Make,
                                                         executions: Executions) -> None:
    h = make(ActionPolicy(mode="enforce"))
    async with running(h.manager):
        row = await h.propose(500, monitor_only=True)
        await trio.sleep(10.0)
        row = await h.row(row["id"])
    assert (row["status"], row["mode"]) == ("pending", "monitor")
    assert executions.calls == []
    assert [e for _, e, _ in h.events(row["id"])] == ["action.proposed"]


async def test_enforce_mode_waits_for_a_person_while_degraded(
        clock: MockClock, make: Make, executions: Executions) -> None:
    degraded = [True]
    h = make(ActionPolicy(mode="enforce"),
             degraded=lambda: "events were lost recently" if degraded[0] else None)
    async with running(h.manager):
        row = await h.propose(500)
        assert (row["status"], row["mode"]) == ("pending", "enforce")
        degraded[0] = False
        await trio.sleep(10.0)
        assert (await h.row(row["id"]))["status"] == "pending"  # no late auto-approval
        await h.manager.approve(row["id"], "alice", "checked by hand")
        row = await h.settle(row["id"])
    assert row["status"] == "succeeded" and row["decided_by"] == "alice"
    assert len(executions.calls) == 1
    assert h.events(row["id"])[1] == ("linnix", "action.auto_approval_withheld", {
        "reason": "input is degraded: events were lost recently"})


async def test_enforce_mode_rate_limit(clock: MockClock, make: Make,
                                       executions: Executions) -> None:
    h = make(ActionPolicy(mode="enforce", rate_limit=2))
    async with running(h.manager):
        first = await h.propose(500)
        started = mock_wall()
        second = await h.propose(501)
        third = await h.propose(502)
        assert third["status"] == "pending"
        for r in (first, second):
            assert (await h.settle(r["id"]))["status"] == "succeeded"
        assert h.events(third["id"])[-1] == ("linnix", "action.auto_approval_withheld", {
            "reason": "rate limit reached (2/min)"})
        with pytest.raises(RateLimitedError) as err:  # a person is limited too
            await h.manager.approve(third["id"], "alice", None)
        assert err.value.retry_after == pytest.approx(60.0 - (mock_wall() - started))
        assert (await h.row(third["id"]))["status"] == "pending"  # still decidable
        await trio.sleep(err.value.retry_after)
        await h.manager.approve(third["id"], "alice", None)
        assert (await h.settle(third["id"]))["status"] == "succeeded"
    assert len(executions.calls) == 3


async def test_the_rate_limit_counts_approvals_by_people(clock: MockClock, make: Make,
                                                         executions: Executions) -> None:
    h = make(ActionPolicy(mode="monitor", rate_limit=1))
    async with running(h.manager):
        a = (await h.propose(500))["id"]
        b = (await h.propose(501))["id"]
        await h.manager.approve(a, "alice", None)
        with pytest.raises(RateLimitedError):
            await h.manager.approve(b, "alice", None)
        await h.manager.reject(b, "alice", "later")  # rejecting is never limited
        assert (await h.settle(a))["status"] == "succeeded"
    assert len(executions.calls) == 1


async def test_a_rate_limit_of_zero_lets_nothing_run(clock: MockClock, make: Make,
                                                     executions: Executions) -> None:
    h = make(ActionPolicy(mode="enforce", rate_limit=0))
    async with running(h.manager):
        row = await h.propose(500)
        assert row["status"] == "pending"
        with pytest.raises(RateLimitedError) as err:
            await h.manager.approve(row["id"], "alice", None)
        assert err.value.retry_after == 60.0
    assert executions.calls == []
    assert h.events(row["id"])[-1][1] == "action.auto_approval_withheld"


# ---- guards at proposal ---------------------------------------------------------------------

@pytest.mark.parametrize(("setup", "pid", "action", "reason"), [
    (lambda p: p.add(600, "sshd", 1), 600, KILL, "'sshd' is on the protected list"),
    (lambda p: p.add(600, "renamed", 1, exe="/usr/sbin/sshd"), 600, KILL,
     "/usr/sbin/sshd is on the protected list"),
    (lambda p: p.add(600, "session", 1, exe="/usr/sbin/sshd (deleted)"), 600, STOP,
     "/usr/sbin/sshd is on the protected list (the process runs it; the file was replaced or "
     "removed since it started)"),
    (lambda p: p.add(600, "kworker/0:1", 2, flags=PF_KTHREAD), 600, KILL,
     "kworker/0:1[600] is a kernel thread"),
    (lambda p: None, 2, KILL, "pid 2 is never touched (init or the kernel's thread parent)"),
    (lambda p: None, 1, STOP, "pid 1 is never touched (init or the kernel's thread parent)"),
    (lambda p: p.add(4242, "linnix", 1), 4242, KILL,
     "linnix[4242] is linnix itself or one of its ancestors"),
    (lambda p: None, 999, KILL, "process 999 is gone"),
    (lambda p: None, None, KILL, "no live process matched the action's target"),
    (lambda p: p.add(600, "runaway", 1).add(601, "sshd", 600), 600, KILL_TREE,
     "its subtree contains sshd[601]: 'sshd' is on the protected list"),
    (lambda p: p.add(600, "tmux: server", 1), 600, KILL, "'tmux: server' is on the protected list"),
    (lambda p: p.add(600, "bash", 1, tty=34816), 600, KILL,
     "bash[600] leads a session with a terminal (an interactive shell or login)"),
    (lambda p: p.add(600, "bash", 1, argv=["-bash"]), 600, STOP,
     "bash[600] is a login shell (argv[0] is '-bash')"),
])
async def test_guards_refuse_at_proposal(clock: MockClock, make: Make, proc: FakeProc,
                                         executions: Executions, setup: Any, pid: int | None,
                                         action: CompiledAction, reason: str) -> None:
    setup(proc)
    h = make(ActionPolicy(mode="enforce"))  # enforce: a refusal must not be auto-approved
    async with running(h.manager):
        row = await h.propose(pid, action)
        assert (row["status"], row["reason"], row["expires_at"]) == ("refused", reason, None)
        with pytest.raises(ActionConflictError) as err:
            await h.manager.approve(row["id"], "alice", None)
        assert err.value.status == "refused"
    assert executions.calls == []
    assert [(e, d) for _, e, d in h.events(row["id"])][1:] == [
        ("action.refused", {"reason": reason, "at": "proposal"})]
    assert h.manager.counts == {(action.name, "refused"): 1}


async def test_a_command_line_that_cannot_be_read_in_time_is_refused(
        clock: MockClock, make: Make, executions: Executions,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading /proc/PID/cmdline can block while the process keeps its memory map locked:
    the read runs on a worker thread, the loop goes on, and after ARGV_WAIT_S the guards
    refuse what they could not check."""
    release = threading.Event()

    def stuck(pids: list[int], root: str) -> dict[int, str | None]:
        release.wait(30)
        return {}

    monkeypatch.setattr(guards_module, "argv0s", stuck)
    h = make(ActionPolicy(mode="enforce"))
    h.manager.read_argv0 = argv0_reader()  # the daemon's: worker threads, a time limit
    try:
        async with running(h.manager):
            before = trio.current_time()
            row = await h.propose(500)
            waited = trio.current_time() - before
    finally:
        release.set()
    assert (row["status"], row["reason"]) == (
        "refused", "worker[500]: its command line could not be read in time, so it may be a "
        "login shell")
    assert waited == pytest.approx(guards_module.ARGV_WAIT_S)
    assert executions.calls == []


async def test_the_executable_the_engine_saw_at_exec_is_guarded(
        clock: MockClock, make: Make, proc: FakeProc, executions: Executions) -> None:
    """/proc shows where the binary was renamed to; the engine recorded what the process
    was started from, and the proposal carries it to the guards."""
    proc.add(600, "server", 1, exe="/usr/sbin/sshd.dpkg-old")
    h = make()
    async with running(h.manager):
        row = await h.propose(600, exe="/usr/sbin/sshd")
        other = await h.propose(600, exe="/usr/sbin/sshd.dpkg-old")
    assert (row["status"], row["reason"]) == ("refused", (
        "/usr/sbin/sshd is on the protected list (the process was started from it; it now "
        "shows /usr/sbin/sshd.dpkg-old)"))
    assert other["status"] == "pending"  # the same process, started from elsewhere
    assert executions.calls == []


async def test_the_engines_start_time_must_match(clock: MockClock, make: Make, proc: FakeProc,
                                                 executions: Executions) -> None:
    """The engine saw the process start at ``Target.start`` (its clock); a different
    start in /proc means the pid was reused before the proposal."""
    h = make(boot_offset=lambda: 2.0)
    async with running(h.manager):
        started = 1000 / HZ - 2.0  # pid 500's start on the engine's clock
        ok = await h.propose(500, start=started + 0.2)
        reused = await h.propose(500, start=started + 5.0)
    assert ok["status"] == "pending"
    assert reused["status"] == "refused"
    assert reused["reason"] == ("pid 500 now belongs to another process (worker): the one the "
                                "rule fired for is gone")


# ---- guards at execution --------------------------------------------------------------------

@pytest.mark.parametrize(("change", "action", "reason"), [
    (lambda p: p.add(500, "worker", 1, start=5000), KILL,
     "pid 500 now belongs to another process (worker, started later): the original is gone"),
    (lambda p: p.remove(500), KILL, "process 500 is gone"),
    (lambda p: p.add(500, "sshd", 1, start=1000), RENICE, "'sshd' is on the protected list"),
    (lambda p: p.add(700, "sshd", 500), KILL_TREE,
     "its subtree contains sshd[700]: 'sshd' is on the protected list"),
    # it exec'd sshd after the proposal, and sshd was upgraded since
    (lambda p: p.add(500, "worker", 1, start=1000, tty=34816), KILL,
     "worker[500] leads a session with a terminal (an interactive shell or login)"),
    (lambda p: p.add(500, "server", 1, start=1000, exe="/usr/sbin/sshd (deleted)"),
     KILL, "/usr/sbin/sshd is on the protected list (the process runs it; the file was "
     "replaced or removed since it started)"),
])
async def test_guards_refuse_at_execution(clock: MockClock, make: Make, proc: FakeProc,
                                          executions: Executions, change: Any,
                                          action: CompiledAction, reason: str) -> None:
    h = make()
    async with running(h.manager):
        aid = (await h.propose(500, action))["id"]
        change(proc)  # between the proposal and the approval
        await h.manager.approve(aid, "alice", "go")
        row = await h.settle(aid)
    assert row["status"] == "refused"
    assert row["result"] == {"detail": reason}
    assert (row["decided_by"], row["reason"]) == ("alice", "go")
    assert executions.calls == []
    assert [(a, e) for a, e, _ in h.events(aid)] == [
        ("linnix", "action.proposed"), ("alice", "action.approved"),
        ("linnix", "action.refused")]
    assert h.events(aid)[-1][2] == {"reason": reason}


async def test_an_executor_refusal_is_recorded_as_refused(clock: MockClock, make: Make,
                                                          executions: Executions,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The executor re-checks identity once it holds the pidfd: a reuse seen only
    then is a refusal too."""
    async def late(guards: Guards, ident: Identity, **kw: Any) -> Outcome:
        await trio.lowlevel.checkpoint()
        return Outcome(False, "pid 500 now belongs to another process", refused=True)

    monkeypatch.setattr(executors_module, "kill", late)
    h = make()
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        await h.manager.approve(aid, "alice", None)
        row = await h.settle(aid)
    assert row["status"] == "refused"


async def test_an_executor_error_fails_the_action_not_the_manager(
        clock: MockClock, make: Make, executions: Executions) -> None:
    h = make()
    executions.fail = PermissionError(1, "Operation not permitted")
    async with running(h.manager):
        aid = (await h.propose(500))["id"]
        await h.manager.approve(aid, "alice", None)
        row = await h.settle(aid)
        assert row["status"] == "failed"
        assert row["result"] == {"detail": "kill failed: Operation not permitted"}
        executions.fail = None  # the manager still works
        other = (await h.propose(501))["id"]
        await h.manager.approve(other, "alice", None)
        assert (await h.settle(other))["status"] == "succeeded"


# ---- analyze --------------------------------------------------------------------------------

async def test_analyze_is_recorded_never_executed(clock: MockClock, make: Make,
                                                  executions: Executions) -> None:
    h = make(ActionPolicy(mode="enforce", ttl_s=60.0))
    async with running(h.manager):
        row = await h.propose(500, ANALYZE, incident_id=None)
        assert row["status"] == "recorded"
        assert row["reason"] == "recorded for analysis; nothing is executed"
        assert (row["pid"], row["expires_at"], row["mode"]) == (None, None, "enforce")
        with pytest.raises(ActionConflictError) as err:
            await h.manager.approve(row["id"], "alice", None)
        assert err.value.status == "recorded"
        await trio.sleep(120.0)
        assert (await h.row(row["id"]))["status"] == "recorded"
    assert executions.calls == []
    assert [e for _, e, _ in h.events(row["id"])] == ["action.recorded"]


# ---- restore after a restart ----------------------------------------------------------------

async def test_pending_actions_survive_a_restart_and_keep_their_deadline(
        clock: MockClock, make: Make, executions: Executions) -> None:
    first = make(ActionPolicy(ttl_s=300.0))
    async with running(first.manager):
        a = await first.propose(500)
        b = await first.propose(501)
        await trio.sleep(100.0)
    first.store.close()  # the daemon stops; a new one opens the same file
    second = make(ActionPolicy(ttl_s=300.0))
    async with running(second.manager):
        assert (await second.row(a["id"]))["status"] == "pending"
        await second.manager.approve(b["id"], "alice", None)  # decidable after the restart
        assert (await second.settle(b["id"]))["status"] == "succeeded"
        await trio.sleep(a["expires_at"] - mock_wall() - 0.001)
        assert (await second.row(a["id"]))["status"] == "pending"
        await trio.sleep(0.002)
        row = await second.row(a["id"])
    assert row["status"] == "expired"
    assert row["expires_at"] == a["expires_at"]  # the original deadline, not a new TTL
    assert row["decided_at"] == pytest.approx(a["expires_at"], abs=1e-6)
    assert [c[1].pid for c in executions.calls] == [501]
    assert second.manager.counts == {  # the kind of a restored action is the stored one
        ("kill", "approved"): 1, ("kill", "succeeded"): 1, ("kill", "expired"): 1}


async def test_a_deadline_that_passed_while_stopped_expires_at_once(
        clock: MockClock, make: Make) -> None:
    first = make(ActionPolicy(ttl_s=30.0))
    async with running(first.manager):
        aid = (await first.propose(500))["id"]
    first.store.close()
    await trio.sleep(100.0)  # the daemon was down for longer than the TTL
    second = make(ActionPolicy(ttl_s=30.0))
    restarted = mock_wall()
    async with running(second.manager):
        await trio.sleep(0.001)
        row = await second.row(aid)
    assert row["status"] == "expired"
    assert row["decided_at"] == pytest.approx(restarted, abs=0.01)  # as soon as it starts


async def test_interrupted_actions_fail_after_a_restart(clock: MockClock, make: Make,
                                                        executions: Executions) -> None:
    h = make()
    common: dict[str, Any] = {
        "incident_id": None, "rule": "r", "kind": "kill", "params": {}, "pid": 500,
        "start_ticks": 1000, "comm": "worker", "exe": None, "mode": "monitor",
        "expires_at": mock_wall() + 300}
    approved = h.store.add_action(status="approved", **common)
    executing = h.store.add_action(status="executing", **common)
    async with running(h.manager):
        rows = {k: await h.row(v) for k, v in (("approved", approved),
                                                ("executing", executing))}
        with pytest.raises(ActionConflictError) as err:
            await h.manager.approve(approved, "alice", None)
        assert err.value.status == "failed"
    assert rows["approved"]["status"] == "failed"
    assert rows["approved"]["result"] == {
        "detail": "interrupted: the daemon stopped before executing it"}
    assert rows["executing"]["status"] == "failed"
    assert rows["executing"]["result"] == {
        "detail": "interrupted: the daemon stopped while executing it"}
    assert h.events(approved) == [("linnix", "action.failed", {
        "reason": "interrupted: the daemon stopped before executing it"})]
    assert executions.calls == []  # never run again
    assert h.manager.counts == {("kill", "failed"): 2}
