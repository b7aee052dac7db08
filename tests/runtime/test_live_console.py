"""The daemon's terminal (AlertLog): alerts that fire or resolve, and each action's real
status as the action manager reports it, line by line.

Times are fixed and shown in UTC, so each line is compared whole.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from actions_support import KILL, Executions, Harness, fake_proc, harnesses, running
from trio.testing import MockClock

from linnix.actions import ActionPolicy
from linnix.engine.evaluator import Alert, Proposal
from linnix.runtime.live import AlertLog

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00+0000
STAMP = "2027-01-15T08:00:00+0000"


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Local time is UTC while a test runs."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def console(verbose: bool = False) -> tuple[AlertLog, io.StringIO]:
    out = io.StringIO()
    return AlertLog(out, verbose=verbose, now=lambda: NOW), out


def alert(state: str, reason: str | None = None) -> Alert:
    return Alert(ts=1.0, rule="fork_storm", state=state, severity="critical",
                 scope="process", pid=42, comm="bash", start=0.0, message="bash[42] forks",
                 labels={}, values={}, reason=reason)


def row(status: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 7, "rule": "fork_storm", "kind": "kill", "params": {"grace_s": 2.0},
        "pid": 42, "comm": "bash", "status": status, "expires_at": NOW + 300,
        "decided_by": None, "reason": None, "result": None, "repeats": 0}
    base.update(kw)
    return base


def lines(out: io.StringIO) -> list[str]:
    return [line.removeprefix(STAMP + " ") for line in out.getvalue().splitlines()]


# ---- alerts ---------------------------------------------------------------------------------

def test_firing_and_resolved_alerts_are_shown_pending_ones_only_when_verbose() -> None:
    proposal = Proposal(1.0, "fork_storm", KILL, 42, "bash", 0.0, 42, 0.0)
    batch = [alert("pending"), alert("firing"), proposal, alert("resolved", "exited")]
    quiet, out = console()
    quiet(batch)
    assert lines(out) == [
        "FIRING   fork_storm critical bash[42]: bash[42] forks",
        "RESOLVED fork_storm critical bash[42]: bash[42] forks (exited)"]
    loud, out = console(verbose=True)
    loud(batch)
    assert lines(out) == [
        "PENDING  fork_storm critical bash[42]: bash[42] forks",
        "FIRING   fork_storm critical bash[42]: bash[42] forks",
        "RESOLVED fork_storm critical bash[42]: bash[42] forks (exited)"]
    assert out.getvalue().startswith(STAMP + " PENDING ")


# ---- actions, as the manager reports them ---------------------------------------------------

KILL_LINE = "fork_storm kill(grace_s=2.0) -> bash[42]: action #7"


def test_an_action_approved_by_a_person_and_carried_out() -> None:
    log, out = console()
    log.action(row("pending"))
    log.action(row("approved", decided_by="alice", reason="runaway"))
    log.action(row("executing", decided_by="alice"))
    log.action(row("executing", decided_by="alice"))  # published twice: said once
    log.action(row("approved", decided_by="alice"))  # late: said already
    log.action(row("succeeded", decided_by="alice", result={"detail": "bash[42] killed"}))
    assert lines(out) == [
        f"PROPOSED {KILL_LINE} awaits approval until 2027-01-15T08:05:00+0000 "
        "(linnix actions approve 7)",
        f"APPROVED {KILL_LINE} approved by alice: runaway",
        f"EXECUTING {KILL_LINE} executing",
        f"SUCCEEDED {KILL_LINE} bash[42] killed"]


def test_in_enforce_mode_the_console_says_it_ran_never_that_it_was_proposed() -> None:
    log, out = console()
    log.action(row("executing", decided_by="linnix (enforce mode)",
                   reason="every guard passed"))  # the approval's own event came late
    log.action(row("failed", decided_by="linnix (enforce mode)",
                   result={"detail": "kill failed: Operation not permitted"}))
    assert lines(out) == [
        f"APPROVED {KILL_LINE} approved by linnix (enforce mode): every guard passed",
        f"EXECUTING {KILL_LINE} executing",
        f"FAILED   {KILL_LINE} kill failed: Operation not permitted"]


@pytest.mark.parametrize(("event", "line"), [
    (row("refused", reason="bash[42] leads a session with a terminal (an interactive shell "
                           "or login)", expires_at=None),
     f"REFUSED  {KILL_LINE} refused: bash[42] leads a session with a terminal (an "
     "interactive shell or login)"),
    (row("expired", decided_by="linnix", reason="nobody decided within 300s"),
     f"EXPIRED  {KILL_LINE} expired: nobody decided within 300s"),
    (row("expired", decided_by="linnix",
         reason="the target process exited before anyone decided"),
     f"EXPIRED  {KILL_LINE} expired: the target process exited before anyone decided"),
    (row("rejected", decided_by="bob", reason="it is the build"),
     f"REJECTED {KILL_LINE} rejected by bob: it is the build"),
    (row("refused", decided_by="alice", result={"detail": "process 42 is gone"}),
     f"APPROVED {KILL_LINE} approved by alice"),  # refused at execution: approved first
    (row("recorded", kind="analyze", params={}, pid=None, comm=None,
         reason="recorded for analysis; nothing is executed"),
     "RECORDED fork_storm analyze: action #7 recorded for analysis; nothing is executed"),
])
def test_each_final_status_says_why(event: dict[str, Any], line: str) -> None:
    log, out = console()
    log.action(event)
    assert lines(out)[0] == line


def test_repeats_of_a_pending_action_are_shown_only_when_verbose() -> None:
    for verbose, expected in ((False, []), (True, [
            f"REPEATED {KILL_LINE} fired again (1 in all), still awaiting approval",
            f"REPEATED {KILL_LINE} fired again (2 in all), still awaiting approval"])):
        log, out = console(verbose)
        log.action(row("pending"))
        log.action(row("pending", repeats=1))
        log.action(row("pending", repeats=2))
        assert lines(out)[1:] == expected


def test_what_a_process_wrote_is_shown_as_data() -> None:
    log, out = console()
    log.action(row("refused", comm="\x1b[2Jx\nFIRING", reason="'\x1b[2Jx' is a login shell"))
    text = out.getvalue()
    assert text.count("\n") == 1 and "\x1b" not in text
    assert "\\x1b[2Jx\\x0aFIRING[42]" in text


async def test_the_lines_of_a_real_lifecycle(autojump_clock: MockClock, tmp_path: Path,
                                             executions: Executions) -> None:
    """The action manager's own events, in the order it published them."""
    proc = fake_proc(tmp_path / "proc")
    proc.add(600, "sshd", 1)
    with harnesses(tmp_path / "linnix.db", proc) as make:
        h: Harness = make(ActionPolicy(ttl_s=60.0))
        async with running(h.manager):
            approved = await h.propose(500)
            await h.propose(500)  # fired again: counted
            await h.manager.approve(approved["id"], "alice", None)
            await h.settle(approved["id"])
            expiring = await h.propose(501)
            await h.propose(600)  # sshd
            await trio.sleep(61.0)
    log, out = console()
    for published in h.published:
        log.action(published)
    worker = "r kill(grace_s=2.0) -> worker[{pid}]: action #{id}"
    first, second = worker.format(pid=500, id=1), worker.format(pid=501, id=2)
    assert [line.split(": action #")[0].split(" ")[0] for line in lines(out)] == [
        "PROPOSED", "APPROVED", "EXECUTING", "SUCCEEDED", "PROPOSED", "REFUSED", "EXPIRED"]
    assert lines(out)[1:4] == [f"APPROVED {first} approved by alice",
                               f"EXECUTING {first} executing",
                               f"SUCCEEDED {first} kill done"]
    assert lines(out)[5:] == [
        "REFUSED  r kill(grace_s=2.0) -> sshd[600]: action #3 refused: 'sshd' is on the "
        "protected list",
        f"EXPIRED  {second} expired: nobody decided within 60s"]
    assert expiring["id"] == 2


# ---- the pause switch -----------------------------------------------------------------------

def test_a_pause_and_a_resume_are_one_line_each() -> None:
    log, out = console()
    log.pause({"actions": "paused", "paused": {"since": NOW, "until": NOW + 1800,
                                               "reason": "db failover", "by": "alice"}})
    log.pause({"actions": "paused", "paused": {"since": NOW, "until": None, "reason": None,
                                               "by": "bob"}})
    log.pause({"actions": "active", "resumed": {"by": "carol", "reason": "over",
                                                "since": NOW, "until": None}})
    log.pause({"actions": "active", "resumed": {"by": "linnix", "reason": None}})
    assert lines(out) == [
        "PAUSED   actions: every action is paused by alice until 2027-01-15T08:30:00+0000: "
        "db failover (linnix actions resume)",
        "PAUSED   actions: every action is paused by bob until resumed (linnix actions resume)",
        "RESUMED  actions: resumed by carol: over",
        "RESUMED  actions: resumed by linnix"]


def test_a_pause_reason_is_shown_as_data() -> None:
    log, out = console()
    log.pause({"actions": "paused", "paused": {"since": NOW, "until": None,
                                               "reason": "x\x1b[2J\nFIRING", "by": "a"}})
    assert out.getvalue().count("\n") == 1 and "\x1b" not in out.getvalue()


async def test_the_lines_of_a_pause_in_enforce_mode(autojump_clock: MockClock, tmp_path: Path,
                                                    executions: Executions) -> None:
    """A pause for an hour, a proposal meanwhile, the pause's end: as published."""
    with harnesses(tmp_path / "linnix.db", fake_proc(tmp_path / "proc")) as make:
        h: Harness = make(ActionPolicy(mode="enforce", ttl_s=7200.0))
        async with running(h.manager):
            await h.manager.pause("alice", "maintenance", 3600.0)
            await h.propose(500)
            await trio.sleep(3601.0)
    log, out = console()
    for published in h.published:
        (log.pause if published["_kind"] == "pause" else log.action)(published)
    assert lines(out) == [  # the harness's wall clock starts at 1970-01-12T13:46:40Z
        "PAUSED   actions: every action is paused by alice until 1970-01-12T14:46:40+0000: "
        "maintenance (linnix actions resume)",
        "PROPOSED r kill(grace_s=2.0) -> worker[500]: action #1 awaits approval until "
        "1970-01-12T15:46:40+0000; proposed while actions are paused: in enforce mode it "
        "would have run by itself; it runs only if approved once they are resumed",
        "RESUMED  actions: resumed by linnix: the time the pause was set for has passed"]
    assert executions.calls == []


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> Executions:
    e = Executions()
    e.install(monkeypatch)
    return e
