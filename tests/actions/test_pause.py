"""The pause switch's file in the state directory, and a pause kept across a restart of
the action manager (on the autojump clock)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import trio
from actions_support import Executions, Make, mock_wall, running
from trio.testing import MockClock

from linnix.actions import ActionPolicy
from linnix.actions.pause import ENDED, PAUSE_FILE, Pause, PauseFile, status_json


def test_a_pause_is_saved_whole_and_read_back(tmp_path: Path) -> None:
    f = PauseFile(os.fspath(tmp_path / PAUSE_FILE))
    assert f.load() is None
    os.umask(0o077)
    try:
        f.save(Pause(1000.5, "alice", "maintenance", 2800.5))
    finally:
        os.umask(0o022)
    assert stat.S_IMODE(os.stat(f.path).st_mode) == 0o640
    assert f.load() == Pause(1000.5, "alice", "maintenance", 2800.5)
    f.save(Pause(1000.0, "bob"))
    assert f.load() == Pause(1000.0, "bob", None, None)
    assert sorted(os.listdir(tmp_path)) == [PAUSE_FILE]  # no temporary file left
    f.clear()
    f.clear()
    assert f.load() is None


@pytest.mark.parametrize(("content", "why"), [
    (b"paused", "it is not JSON"),
    (b"[1]", "it is not a JSON object"),
    (b'{"since": 1, "by": ""}', "'by' and 'reason' must be text"),
    (b'{"since": 1, "by": "a", "reason": 3}', "'by' and 'reason' must be text"),
    (b'{"since": -1, "by": "a"}', "'since' and 'until' must be times"),
    (b'{"since": NaN, "by": "a"}', "'since' and 'until' must be times"),
    (b'{"since": 1, "until": true, "by": "a"}', "'since' and 'until' must be times"),
    (b" " * (64 * 1024 + 1), "it is larger than 65536 bytes"),
])
def test_a_file_that_holds_no_pause_is_an_error(tmp_path: Path, content: bytes,
                                                why: str) -> None:
    path = tmp_path / PAUSE_FILE
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        PauseFile(os.fspath(path)).load()
    assert str(err.value) == why


def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / PAUSE_FILE
    os.mkfifo(path)
    with pytest.raises(ValueError, match="not a regular file"):
        PauseFile(os.fspath(path)).load()


def test_status_json() -> None:
    assert status_json(None) == {"actions": "active"}
    assert status_json(Pause(1.0, "alice", "why", 2.0)) == {
        "actions": "paused", "paused": {"since": 1.0, "until": 2.0, "reason": "why",
                                        "by": "alice"}}


async def test_a_pause_survives_a_restart_with_what_is_left_of_it(
        clock: MockClock, make: Make, executions: Executions, tmp_path: Path) -> None:
    file = PauseFile(os.fspath(tmp_path / PAUSE_FILE))
    first = make(ActionPolicy(mode="enforce", ttl_s=3600.0), pause_file=file)
    start = mock_wall()
    async with running(first.manager):
        await first.manager.pause("alice", "window", 1800.0)
    await trio.sleep(600.0)  # the daemon is down for ten minutes
    second = make(ActionPolicy(mode="enforce", ttl_s=3600.0), pause_file=file)
    async with running(second.manager):
        assert second.manager.paused == Pause(start, "alice", "window", start + 1800.0)
        assert second.pauses()[0]["actions"] == "paused"  # said at start
        row = await second.propose(500)
        await trio.sleep(1199.0)
        assert (await second.row(row["id"]))["status"] == "pending"
        await trio.sleep(2.0)
        assert second.manager.paused is None
        assert file.load() is None
        await trio.sleep(60.0)
        assert (await second.row(row["id"]))["status"] == "pending"
    assert executions.calls == []  # proposed while paused: never run by itself
    assert [(who, event) for who, event, _ in second.audit("actions.paused",
                                                           "actions.resumed")] == [
        ("alice", "actions.paused"), ("linnix", "actions.resumed")]


async def test_a_pause_that_ended_while_stopped_ends_at_start(
        clock: MockClock, make: Make, executions: Executions, tmp_path: Path) -> None:
    file = PauseFile(os.fspath(tmp_path / PAUSE_FILE))
    first = make(pause_file=file)
    async with running(first.manager):
        await first.manager.pause("alice", None, 60.0)
    await trio.sleep(120.0)
    second = make(pause_file=file)
    async with running(second.manager):
        await trio.sleep(0)
        assert second.manager.paused is None
    assert second.audit("actions.resumed")[0][:2] == ("linnix", "actions.resumed")
    assert second.audit("actions.resumed")[0][2]["reason"] == ENDED
    assert file.load() is None


async def test_an_unreadable_pause_keeps_actions_paused(
        clock: MockClock, make: Make, executions: Executions, tmp_path: Path) -> None:
    path = tmp_path / PAUSE_FILE
    path.write_text("{")
    h = make(ActionPolicy(mode="enforce"), pause_file=PauseFile(os.fspath(path)))
    async with running(h.manager):
        assert h.manager.paused is not None and h.manager.paused.until is None
        await h.propose(500)
        await trio.sleep(5.0)
    assert executions.calls == []
    why = f"the saved pause ({path}) cannot be read: it is not JSON; paused until resumed"
    assert h.manager.paused.by == "linnix" and h.manager.paused.reason == why
    assert h.audit("actions.paused") == [("linnix", "actions.paused",
                                          {"reason": why, "until": None})]
    assert PauseFile(os.fspath(path)).load() == h.manager.paused  # read at the next start


async def test_a_pause_that_cannot_be_saved_does_not_happen(
        clock: MockClock, make: Make, executions: Executions, tmp_path: Path) -> None:
    h = make(pause_file=PauseFile(os.fspath(tmp_path / "missing" / PAUSE_FILE)))
    async with running(h.manager):
        with pytest.raises(FileNotFoundError):
            await h.manager.pause("alice")
        assert h.manager.paused is None
    assert h.audit("actions.paused") == []
