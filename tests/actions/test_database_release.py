"""A state database made by release 0.1.0 (schema version 2) opens with the current code.

``data/linnix-schema2.db`` was written by that release's store (``data/make_schema2.py``
says how): incidents resolved and one left open, actions in every final status and one
pending that repeated, audit records chained from a retention anchor.  It stays at
version 2 for good; these tests open a copy with the current store, which upgrades it to
whatever :data:`~linnix.actions.database.SCHEMA_VERSION` is now, and check that what the
release wrote is all still there and usable: the chain verifies, the open incident can be
resolved, the pending action decided, and the daemon's next writes chain on.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import run_cli

from linnix.actions.database import SCHEMA_VERSION
from linnix.actions.store import Entry, Store

RELEASE = Path(__file__).resolve().parent / "data" / "linnix-schema2.db"
TABLES = ("incidents", "actions", "audit", "audit_anchor")
NEXT_DAY = 1_733_486_400.0 + 86_400.0  # the release's file was written on the day before
LAST_AUDIT = 28  # the id of the release's newest audit record


def _rows(db: sqlite3.Connection, table: str) -> dict[int, dict[str, Any]]:
    db.row_factory = sqlite3.Row
    return {row["id"]: dict(row) for row in db.execute(f"SELECT * FROM {table}")}


def as_released() -> dict[str, dict[int, dict[str, Any]]]:
    """Every row of the release's file, read without touching it (immutable: no -shm)."""
    db = sqlite3.connect(f"file:{RELEASE}?immutable=1", uri=True)
    try:
        return {table: _rows(db, table) for table in TABLES}
    finally:
        db.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A copy of the release's database, opened (and so upgraded) by the current store."""
    path = tmp_path / "linnix.db"
    shutil.copyfile(RELEASE, path)
    s = Store(str(path), clock=lambda: NEXT_DAY)
    yield s
    s.close()


def test_the_file_is_what_the_release_made() -> None:
    db = sqlite3.connect(f"file:{RELEASE}?immutable=1", uri=True)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        db.close()
    rows = as_released()
    assert {a["status"] for a in rows["actions"].values()} == {
        "succeeded", "rejected", "expired", "refused", "failed", "recorded", "pending"}
    assert [i["rule"] for i in rows["incidents"].values() if i["resolved_at"] is None] == [
        "cpu_spike"]
    assert rows["audit_anchor"][1]["last_id"] == 3  # retention trimmed #1 to #3
    assert min(rows["audit"]) == 4


def test_opening_upgrades_it_to_the_current_version(store: Store) -> None:
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.notice is None  # not taken for an emptied file


def test_every_row_the_release_wrote_is_still_there(store: Store) -> None:
    """Column by column as the release wrote them (an upgrade may add, never change)."""
    for table, rows in as_released().items():
        now = _rows(store.db, table)
        assert set(now) >= set(rows), table
        for row_id, old in rows.items():
            assert {key: now[row_id][key] for key in old} == old, (table, row_id)


def test_the_store_reads_it_as_it_reads_its_own(store: Store) -> None:
    incidents = store.incidents()
    assert [i["rule"] for i in incidents] == [
        "cpu_spike", "circuit_breaker", "memory_leak", "runaway_tree", "fork_storm"]
    breaker = store.incident(4)
    assert breaker is not None
    assert [a["status"] for a in breaker["actions"]] == ["refused", "failed", "recorded"]
    assert breaker["history"][0]["values"] == {"cpu_pct": 97.0}  # JSON columns decode
    assert breaker["actions"][1]["result"] == {"detail": "renice failed: Operation not "
                                                         "permitted"}
    (pending,) = store.actions(status="pending")
    assert (pending["id"], pending["repeats"], pending["params"]) == (7, 2, {"signal": 19})
    assert pending["last_seen_at"] > pending["created_at"]
    released = [e for e in store.audit_log(limit=1000) if e["id"] <= LAST_AUDIT]
    assert [e["id"] for e in released] == list(range(LAST_AUDIT, 3, -1))  # newest first
    events = [e["event"] for e in released]
    assert events[-1] == "action.approved"
    assert released[-1]["actor"] == "alice"
    assert released[-1]["detail"] == {"reason": "a fork bomb in a test job"}
    assert {"action.approved", "action.rejected", "action.note", "action.repeated",
            "rules.reload"} <= set(events)


def test_the_audit_chain_verifies_and_goes_on(store: Store, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    verdict = store.verify_chain()
    assert verdict.holds, verdict.problem
    assert (verdict.anchor.id, verdict.first_id) == (3, 4)
    store.audit("linnix", "daemon.started", mode="monitor", pid=4200, closed_incidents=0)
    assert store.verify_chain().holds
    status, out, _ = run_cli(capsys, "audit", "verify", "--state-dir", str(tmp_path))
    assert status == 0 and ": the chain holds (" in out


def test_the_open_incident_is_resolved_and_the_pending_action_decided(store: Store) -> None:
    assert store.close_open_incidents("the daemon restarted") == 1  # what a start does
    assert (store.incident(5) or {})["resolved_reason"] == "the daemon restarted"
    assert store.transition(7, "pending", "rejected", audit=Entry("alice", "action.rejected",
                                                                  {"reason": "a benchmark"}),
                            decided_by="alice", decided_at=store.clock(), reason="a benchmark")
    assert (store.action(7) or {})["status"] == "rejected"
    assert not store.transition(7, "pending", "approved")  # decided once
    fresh = store.open_incident(rule="fork_storm", severity="critical", scope="system",
                                pid=None, comm=None, start=None, message="again", labels={},
                                history=[], subtree=[], host={})
    assert fresh == 6  # ids go on after the release's
    assert store.retain(max_age=86400.0, max_incidents=100, max_audit=10)["audit"] > 0
    verdict = store.verify_chain()
    assert verdict.holds, verdict.problem
    assert verdict.rows == 10


def test_the_release_incidents_get_an_empty_context_and_take_analyses(store: Store) -> None:
    """Schema version 4: incidents.context ({} for the release's) and the analyses table,
    whose rows go with their incident."""
    assert all(i["context"] == {} for i in (store.incident(n) for n in range(1, 6)) if i)
    assert (store.incident(1) or {})["analysis"] is None  # never analysed
    assert store.save_analysis(1, {"facts": []})
    assert store.save_analysis(2, None, "the analyst failed")
    assert not store.save_analysis(99, {"facts": []})  # no such incident
    got = store.analysis(1)
    assert got is not None and (got["analysis"], got["error"]) == ({"facts": []}, None)
    assert (store.analysis(2) or {})["error"] == "the analyst failed"
    store.retain(max_age=0.0, max_incidents=0, max_audit=1000)  # every resolved incident
    assert store.incident(1) is None
    assert store.db.execute("SELECT count(*) FROM analyses").fetchone()[0] == 0


def test_version_5_adds_the_target_cgroup_and_the_freezes(store: Store) -> None:
    """The release's actions target processes: no cgroup; a freeze can be recorded."""
    assert all(a["cgroup"] is None and a["cgroup_id"] is None
               for a in store.actions(limit=1000))
    assert store.active_freezes() == []
    action = store.add_action(incident_id=None, rule="hog", kind="freeze", params={},
                              pid=None, start_ticks=None, comm=None, exe=None,
                              status="pending", mode="monitor", expires_at=1.0,
                              cgroup="/system.slice/hog.service", cgroup_id=77)
    assert ((store.action(action) or {})["cgroup"], (store.action(action) or {})["cgroup_id"]
            ) == ("/system.slice/hog.service", 77)
    store.add_freeze(action, "/system.slice/hog.service", 77, 2.0,
                     Entry("linnix", "action.freezing", {}))
    assert [f["action_id"] for f in store.active_freezes()] == [action]
    assert store.end_freeze(action, "thawed", Entry("linnix", "action.thawed", {}))
    assert not store.end_freeze(action, "again", Entry("linnix", "action.thawed", {}))
    assert store.active_freezes() == []
    assert store.verify_chain().holds
