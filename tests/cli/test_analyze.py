"""``linnix analyze INCIDENT``: the built-in analysis of a stored incident, offline and
read-only, as text, Markdown or JSON; clear errors for what it cannot read."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from analysis_support import FIXTURES, RUNBOOK, incident_of, replay_into, shipped_plan, store_at
from support import run_cli as run

from linnix.actions.store import Store
from linnix.analysis import analyze_stored
from linnix.cli import analyze as analyze_cli

GOLDEN = FIXTURES / "golden"


@pytest.fixture
async def state(tmp_path: Path) -> Path:
    """A state directory whose store holds the fork storm's incident, as the daemon keeps it."""
    store = store_at(tmp_path / "linnix.db")
    try:
        await replay_into(store, FIXTURES / "fork_storm.jsonl", shipped_plan(),
                          {"fork_storm": RUNBOOK})
        assert incident_of(store, "fork_storm")["id"] == 1
    finally:
        store.close()
    return tmp_path


def digest(state: Path) -> str:
    """The database and its log (not -shm, the readers' shared index, which readers mark)."""
    files = [state / "linnix.db", state / "linnix.db-wal"]
    return hashlib.sha256(b"".join(p.read_bytes() for p in files if p.exists())).hexdigest()


@pytest.mark.parametrize(("fmt", "golden"), [("text", "txt"), ("markdown", "md")])
async def test_it_prints_the_analysis_the_daemon_would_make(
        state: Path, fmt: str, golden: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = digest(state)
    args = ["--format", fmt] if fmt != "text" else []
    status, out, err = run(capsys, "analyze", "1", "--state-dir", str(state), *args)
    assert (status, err) == (0, "")
    assert out == (GOLDEN / f"analysis_fork_storm.{golden}").read_text()
    assert digest(state) == before  # read-only: nothing written
    store = Store(str(state / "linnix.db"))
    try:
        assert store.analysis(1) is None
    finally:
        store.close()


async def test_json_is_the_analysis_object(state: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "analyze", "--format", "json", "--state-dir", str(state), "1")
    assert status == 0
    store = Store(str(state / "linnix.db"))
    try:
        assert json.loads(out) == analyze_stored(store, 1)
    finally:
        store.close()
    assert [f["kind"] for f in json.loads(out)["facts"]][-1] == "runbook"


@pytest.mark.parametrize("incident", ["2", "99", str(2**70)])
async def test_an_unknown_incident_is_a_failure_not_a_traceback(
        state: Path, incident: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "analyze", incident, "--state-dir", str(state))
    assert (status, out) == (1, "")
    assert err == f"linnix: no incident has id {incident} in {state / 'linnix.db'}\n"


@pytest.mark.parametrize("incident", ["x", "0", "-1", ""])
async def test_a_bad_incident_id_is_a_usage_error(state: Path, incident: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "analyze", incident, "--state-dir", str(state))
    assert (status, out) == (2, "")
    assert err.startswith("linnix: argument INCIDENT: ")


def test_without_a_store_it_says_where_it_looked(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "analyze", "1", "--state-dir", str(tmp_path))
    assert (status, out) == (1, "")
    assert err == (f"linnix: there is no state database at {tmp_path / 'linnix.db'}: has the "
                   "daemon run with this state directory?\n")
    assert not (tmp_path / "linnix.db").exists()  # not created either
    (tmp_path / "linnix.db").mkdir()
    status, _, err = run(capsys, "analyze", "1", "--state-dir", str(tmp_path))
    assert status == 1 and "it is a directory" in err


def _set_version(state: Path, version: int) -> None:
    db = sqlite3.connect(state / "linnix.db")
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


@pytest.mark.parametrize(("version", "says"), [
    (99, "was made by a newer linnix (schema version 99; this one reads up to "),
    (3, "was made by an older linnix (schema version 3; this needs 4): the daemon upgrades "
        "it when it next starts")])
async def test_a_store_of_another_schema_is_refused(state: Path, version: int, says: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _set_version(state, version)
    status, out, err = run(capsys, "analyze", "1", "--state-dir", str(state))
    assert (status, out) == (1, "")
    assert err.startswith(f"linnix: the state database {state / 'linnix.db'} ") and says in err


def test_an_empty_store_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "linnix.db").write_bytes(b"")
    status, _, err = run(capsys, "analyze", "1", "--state-dir", str(tmp_path))
    assert status == 1
    assert err == (f"linnix: the state database {tmp_path / 'linnix.db'} is empty: the daemon "
                   "has stored nothing in it\n")


async def test_a_locked_store_is_a_failure_after_a_wait(
        state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyze_cli, "BUSY_S", 0.05)
    holder = sqlite3.connect(state / "linnix.db", isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        status, out, err = run(capsys, "analyze", "1", "--state-dir", str(state))
    finally:
        holder.close()
    assert (status, out) == (1, "")
    assert err == (f"linnix: cannot read the state database {state / 'linnix.db'}: database "
                   "is locked\n")
