"""The SQLite store: schema, incidents, actions, the append-only audit log, retention."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from support import ROOT

from linnix.actions.database import SCHEMA_VERSION
from linnix.actions.store import ACTION_STATES, TERMINAL_STATES, AsyncStore, Entry, Store
from linnix.errors import StoreError


class FakeClock:
    """Wall time that moves only when told to."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Any:
    s = Store(str(tmp_path / "linnix.db"), clock=clock)
    yield s
    s.close()


def incident(store: Store, rule: str = "r", **kw: Any) -> int:
    fields: dict[str, Any] = {
        "rule": rule, "severity": "critical", "scope": "process", "pid": 100, "comm": "worker",
        "start": 12.5, "message": "worker[100] is busy", "labels": {"team": "infra"},
        "history": [{"ts": 1.0, "values": {"cpu_pct": 95.0}}],
        "subtree": [{"pid": 100, "depth": 0}], "host": {"cpu_pct": 50.0},
    }
    fields.update(kw)
    return store.open_incident(**fields)


def action(store: Store, incident_id: int | None = None, status: str = "pending",
           **kw: Any) -> int:
    fields: dict[str, Any] = {
        "incident_id": incident_id, "rule": "r", "kind": "kill", "params": {"grace_s": 2.0},
        "pid": 100, "start_ticks": 4242, "comm": "worker", "exe": "/usr/bin/worker",
        "status": status, "mode": "monitor", "expires_at": store.clock() + 300.0,
    }
    fields.update(kw)
    return store.add_action(**fields)


# ---- schema ---------------------------------------------------------------------------------

def test_schema_tables_columns_and_pragmas(store: Store) -> None:
    tables = {r[0] for r in store.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"incidents", "actions", "audit", "audit_anchor", "rule_state", "analyses"} <= tables

    def columns(table: str) -> set[str]:
        return {r[1] for r in store.db.execute(f"PRAGMA table_info({table})")}

    assert columns("incidents") == {
        "id", "rule", "severity", "scope", "pid", "comm", "start", "opened_at", "resolved_at",
        "resolved_reason", "message", "labels", "history", "subtree", "host", "context",
        "trail"}
    assert columns("actions") == {
        "id", "incident_id", "rule", "kind", "params", "pid", "start_ticks", "comm", "exe",
        "status", "mode", "created_at", "expires_at", "decided_by", "decided_at", "reason",
        "result", "finished_at", "repeats", "last_seen_at", "cgroup", "cgroup_id"}
    assert columns("freezes") == {"action_id", "cgroup", "cgroup_id", "frozen_at", "thaw_by",
                                  "thawed_at", "thaw_reason"}
    assert columns("audit") == {"id", "at", "actor", "event", "action_id", "incident_id",
                                "detail", "prev", "hash"}
    assert columns("audit_anchor") == {"id", "last_id", "hash"}
    assert columns("rule_state") == {"id", "saved_at", "data"}
    assert columns("analyses") == {"incident_id", "created_at", "analysis", "error"}
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    triggers = {r[0] for r in store.db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert "audit_append_only" in triggers
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert set(TERMINAL_STATES) < set(ACTION_STATES)
    assert {"pending", "approved", "executing"} == set(ACTION_STATES) - TERMINAL_STATES


def test_opening_an_existing_database_again_keeps_its_schema(tmp_path: Path) -> None:
    path = str(tmp_path / "linnix.db")
    Store(path).close()
    again = Store(path)  # CREATE ... IF NOT EXISTS: no error, nothing lost
    assert again.incidents() == []
    again.close()


def test_a_version_1_database_gets_the_repeat_columns(tmp_path: Path,
                                                      clock: FakeClock) -> None:
    """Upgraded in place: an action already there was seen once, when it was created."""
    path = str(tmp_path / "linnix.db")
    old = Store(path, clock=clock)
    aid = action(old)
    old.db.execute("ALTER TABLE actions DROP COLUMN repeats")
    old.db.execute("ALTER TABLE actions DROP COLUMN last_seen_at")
    old.db.execute("PRAGMA user_version = 1")
    old.close()
    clock.now += 50
    new = Store(path, clock=clock)
    try:
        row = new.action(aid)
        assert row is not None
        assert (row["repeats"], row["last_seen_at"]) == (0, row["created_at"])
        assert new.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert new.repeat_action(aid, Entry("linnix", "action.repeated"))
        assert (new.action(aid) or {})["repeats"] == 1
        assert new.verify_chain().holds
    finally:
        new.close()


# ---- incidents ------------------------------------------------------------------------------

def test_open_incident_stores_every_field_and_is_audited(store: Store, clock: FakeClock) -> None:
    iid = incident(store)
    row = store.incident(iid)
    assert row is not None
    assert row["rule"] == "r" and row["severity"] == "critical" and row["scope"] == "process"
    assert (row["pid"], row["comm"], row["start"]) == (100, "worker", 12.5)
    assert row["opened_at"] == clock.now
    assert row["resolved_at"] is None and row["resolved_reason"] is None
    assert row["labels"] == {"team": "infra"}  # JSON columns come back decoded
    assert row["history"] == [{"ts": 1.0, "values": {"cpu_pct": 95.0}}]
    assert row["subtree"] == [{"pid": 100, "depth": 0}]
    assert row["host"] == {"cpu_pct": 50.0}
    assert row["actions"] == []
    (entry,) = store.audit_log()
    assert (entry["actor"], entry["event"], entry["incident_id"]) == (
        "linnix", "incident.opened", iid)
    assert entry["detail"] == {"rule": "r", "pid": 100, "comm": "worker",
                               "message": "worker[100] is busy"}


def test_an_incident_is_resolved_once(store: Store, clock: FakeClock) -> None:
    iid = incident(store)
    clock.now += 10
    store.resolve_incident(iid, "cleared")
    clock.now += 10
    store.resolve_incident(iid, "exited")  # too late: it is resolved already
    row = store.incident(iid)
    assert row is not None
    assert row["resolved_reason"] == "cleared"
    assert row["resolved_at"] == clock.now - 10
    resolved = store.audit_log(event="incident.resolved")
    assert len(resolved) == 1
    assert resolved[0]["detail"] == {"reason": "cleared"}


def test_incident_lists_its_actions_and_open_only_filters(store: Store) -> None:
    first = incident(store)
    second = incident(store, rule="other")
    a1 = action(store, first)
    a2 = action(store, first, kind="kill_tree")
    action(store, second)
    row = store.incident(first)
    assert row is not None
    assert [a["id"] for a in row["actions"]] == [a1, a2]
    assert row["actions"][0]["params"] == {"grace_s": 2.0}
    store.resolve_incident(first, "cleared")
    assert [i["id"] for i in store.incidents(open_only=True)] == [second]
    assert [i["id"] for i in store.incidents()] == [second, first]  # newest first
    assert store.incident(9999) is None


def test_incidents_filter_by_rule_and_severity_and_page_with_before(store: Store) -> None:
    ids = [incident(store, rule=rule, severity=severity) for rule, severity in (
        ("hot", "critical"), ("cold", "warning"), ("hot", "warning"), ("hot", "critical"),
        ("hot", "critical"))]
    store.resolve_incident(ids[3], "cleared")
    assert [i["id"] for i in store.incidents(rule="hot")] == [ids[4], ids[3], ids[2], ids[0]]
    assert [i["id"] for i in store.incidents(severity="warning")] == [ids[2], ids[1]]
    assert [i["id"] for i in store.incidents(rule="hot", severity="critical")] == [
        ids[4], ids[3], ids[0]]
    assert [i["id"] for i in store.incidents(rule="hot", severity="critical",
                                             open_only=True)] == [ids[4], ids[0]]
    page = store.incidents(rule="hot", limit=2)
    assert [i["id"] for i in page] == [ids[4], ids[3]]
    assert [i["id"] for i in store.incidents(rule="hot", limit=2, before=page[-1]["id"])] == [
        ids[2], ids[0]]
    assert store.incidents(rule="HOT") == [] and store.incidents(rule="'; --") == []


def test_close_open_incidents(store: Store) -> None:
    done = incident(store)
    store.resolve_incident(done, "cleared")
    still = [incident(store), incident(store)]
    assert store.close_open_incidents("the daemon restarted") == 2
    assert store.incidents(open_only=True) == []
    for iid in still:
        row = store.incident(iid)
        assert row is not None and row["resolved_reason"] == "the daemon restarted"
    row = store.incident(done)
    assert row is not None and row["resolved_reason"] == "cleared"  # left alone
    assert store.close_open_incidents("again") == 0


# ---- actions --------------------------------------------------------------------------------

def test_add_action_and_read_it_back(store: Store, clock: FakeClock) -> None:
    aid = action(store, reason=None)
    row = store.action(aid)
    assert row is not None
    assert row["status"] == "pending" and row["mode"] == "monitor"
    assert row["params"] == {"grace_s": 2.0}
    assert (row["pid"], row["start_ticks"], row["comm"], row["exe"]) == (
        100, 4242, "worker", "/usr/bin/worker")
    assert row["created_at"] == clock.now and row["expires_at"] == clock.now + 300
    assert row["result"] is None and row["decided_by"] is None
    assert store.action(aid + 1) is None


def test_a_repeat_counts_on_a_pending_action_only(store: Store, clock: FakeClock) -> None:
    aid = action(store)
    first = store.action(aid) or {}
    assert (first["repeats"], first["last_seen_at"]) == (0, first["created_at"])
    clock.now += 30
    assert store.repeat_action(aid, Entry("linnix", "action.repeated", {"rule": "r"}, 7))
    row = store.action(aid) or {}
    assert (row["repeats"], row["last_seen_at"], row["created_at"]) == (
        1, clock.now, first["created_at"])
    (entry,) = store.audit_log(event="action.repeated")
    assert (entry["action_id"], entry["incident_id"], entry["detail"]) == (aid, 7, {"rule": "r"})
    assert store.transition(aid, "pending", "rejected")
    assert not store.repeat_action(aid, Entry("linnix", "action.repeated"))
    assert (store.action(aid) or {})["repeats"] == 1
    assert len(store.audit_log(event="action.repeated")) == 1  # nothing counted, nothing said


def test_transition_only_from_the_expected_status(store: Store) -> None:
    aid = action(store)
    assert not store.transition(aid, "approved", "executing")  # it is not approved
    assert store.action(aid)["status"] == "pending"  # type: ignore[index]
    assert store.transition(aid, "pending", "approved", decided_by="alice", decided_at=5.0,
                            reason="looks stuck")
    assert not store.transition(aid, "pending", "rejected")  # no longer pending
    assert store.transition(aid, "approved", "executing")
    assert store.transition(aid, "executing", "succeeded", result={"detail": "done", "n": 1},
                            finished_at=6.0)
    row = store.action(aid)
    assert row is not None
    assert row["status"] == "succeeded"
    assert (row["decided_by"], row["decided_at"], row["reason"]) == ("alice", 5.0,
                                                                      "looks stuck")
    assert row["result"] == {"detail": "done", "n": 1}  # JSON-encoded on the way in
    assert row["finished_at"] == 6.0
    assert not store.transition(9999, "pending", "approved")


def test_concurrent_transitions_have_exactly_one_winner(store: Store, tmp_path: Path) -> None:
    """Threads on one connection and a second connection to the same file race for
    pending -> approved: each action is won exactly once."""
    other = Store(store.path)
    ids = [action(store) for _ in range(40)]
    wins: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def racer(s: Store, name: str) -> None:
        barrier.wait()
        for aid in ids:
            if s.transition(aid, "pending", "approved", decided_by=name):
                with lock:
                    wins.append((name, aid))

    threads = [threading.Thread(target=racer, args=(s, f"{n}-{i}"))
               for i, (s, n) in enumerate([(store, "a"), (store, "b"), (other, "c"),
                                           (other, "d")])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert sorted(aid for _, aid in wins) == ids
    for name, aid in wins:
        assert store.action(aid)["decided_by"] == name  # type: ignore[index]


def test_actions_filter_by_status_and_page(store: Store) -> None:
    ids = [action(store) for _ in range(7)]
    for aid in ids[:3]:
        store.transition(aid, "pending", "rejected")
    assert [a["id"] for a in store.actions(status="rejected")] == ids[2::-1]
    assert [a["id"] for a in store.actions(status="pending")] == ids[:2:-1]
    page1 = store.actions(limit=3)
    page2 = store.actions(limit=3, before=page1[-1]["id"])
    page3 = store.actions(limit=3, before=page2[-1]["id"])
    assert [a["id"] for a in page1 + page2 + page3] == ids[::-1]
    assert len(page3) == 1


def test_actions_filter_by_pid_newest_first_and_bounded(store: Store) -> None:
    ids = [action(store, pid=pid) for pid in (100, 200, 100, 100, None)]
    assert [a["id"] for a in store.actions(pid=100)] == [ids[3], ids[2], ids[0]]
    assert [a["id"] for a in store.actions(pid=100, limit=2)] == [ids[3], ids[2]]
    assert [a["id"] for a in store.actions(pid=200)] == [ids[1]]
    assert store.actions(pid=300) == []
    store.transition(ids[2], "pending", "rejected")
    assert [a["id"] for a in store.actions(pid=100, status="pending")] == [ids[3], ids[0]]
    assert [a["id"] for a in store.actions(pid=100, before=ids[3])] == [ids[2], ids[0]]
    # an index finds them: the query does not scan every action ever kept
    plan = " ".join(str(tuple(r)) for r in store.db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM actions WHERE pid = ? ORDER BY id DESC LIMIT ?",
        (100, 5)))
    assert "actions_pid" in plan, plan


# the filters the API and the dashboard page by, each found by an index rather than a scan
# of every row kept: (index, a query as the store makes it, its arguments)
FILTERS = [
    ("actions_pid", "SELECT * FROM actions WHERE pid = ? ORDER BY id DESC LIMIT ?", (100, 5)),
    ("actions_incident", "SELECT * FROM actions WHERE incident_id = ? ORDER BY id", (7,)),
    ("incidents_rule", "SELECT id FROM incidents WHERE rule = ? AND id < ? "
     "ORDER BY id DESC LIMIT ?", ("r", 50, 5)),
    ("audit_actor", "SELECT * FROM audit WHERE actor = ? ORDER BY id DESC LIMIT ?", ("ann", 5)),
]


@pytest.mark.parametrize(("index", "query", "args"), FILTERS, ids=[f[0] for f in FILTERS])
def test_a_filtered_page_is_found_by_an_index(store: Store, index: str, query: str,
                                              args: tuple[object, ...]) -> None:
    plan = " ".join(str(tuple(r)) for r in store.db.execute(f"EXPLAIN QUERY PLAN {query}", args))
    assert index in plan, plan


@pytest.mark.parametrize("index", [f[0] for f in FILTERS])
def test_a_database_made_before_an_index_gets_it(tmp_path: Path, index: str) -> None:
    path = str(tmp_path / "linnix.db")
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"DROP INDEX {index}")
    db.close()
    again = Store(path)
    names = {r[0] for r in again.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    again.close()
    assert index in names


# ---- the audit log --------------------------------------------------------------------------

def test_the_audit_log_is_append_only(store: Store) -> None:
    aid = store.audit("alice", "action.approved", action_id=3, reason="stuck")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE audit SET actor = 'mallory' WHERE id = ?", (aid,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE audit SET detail = '{}'")
    (entry,) = store.audit_log()
    assert entry["actor"] == "alice" and entry["detail"] == {"reason": "stuck"}


def test_audit_log_pages_newest_first_and_filters(store: Store, clock: FakeClock) -> None:
    ids = []
    for i in range(25):
        clock.now += 1
        ids.append(store.audit("linnix", "action.proposed" if i % 2 else "action.approved",
                               action_id=i % 3, n=i))
    seen: list[int] = []
    before = None
    while True:
        page = store.audit_log(limit=10, before=before)
        if not page:
            break
        assert [e["id"] for e in page] == sorted((e["id"] for e in page), reverse=True)
        seen += [e["id"] for e in page]
        before = page[-1]["id"]
    assert seen == ids[::-1]  # every entry exactly once, newest first
    approved = store.audit_log(event="action.approved", limit=100)
    assert [e["detail"]["n"] for e in approved] == list(range(24, -1, -2))
    by_action = store.audit_log(action_id=1, limit=100)
    assert {e["action_id"] for e in by_action} == {1} and len(by_action) == 8
    both = store.audit_log(action_id=1, event="action.proposed", limit=100)
    assert [e["detail"]["n"] for e in both] == [19, 13, 7, 1]
    assert store.audit_log(limit=3, before=ids[2]) == store.audit_log(limit=100)[-2:]


def test_audit_log_filters_by_who(store: Store) -> None:
    for actor in ("alice", "linnix", "bob", "alice", "Alice"):
        store.audit(actor, "action.approved", action_id=1, by=actor)
    mine = store.audit_log(actor="alice")
    assert [e["actor"] for e in mine] == ["alice", "alice"]  # exactly: not Alice
    assert store.audit_log(actor="alice", limit=1, before=mine[0]["id"]) == mine[1:]
    assert store.audit_log(actor="alice", event="action.proposed") == []
    assert store.audit_log(actor="nobody") == []


# ---- one transaction per change -------------------------------------------------------------

def full_disk_on_audit(store: Store) -> None:
    """Every audit insert fails, as it would on a full disk."""
    store.db.execute("CREATE TEMP TRIGGER full BEFORE INSERT ON audit "
                     "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")


def test_an_incident_is_stored_with_its_audit_record_or_not_at_all(store: Store) -> None:
    kept = incident(store)
    full_disk_on_audit(store)
    with pytest.raises(sqlite3.IntegrityError, match="full"):
        incident(store)
    with pytest.raises(sqlite3.IntegrityError, match="full"):
        store.resolve_incident(kept, "cleared")
    with pytest.raises(sqlite3.IntegrityError, match="full"):
        store.close_open_incidents("the daemon restarted")
    assert not store.db.in_transaction
    assert [i["id"] for i in store.incidents()] == [kept]  # no incident without its record
    assert store.incidents(open_only=True) != []  # and none resolved without one
    store.db.execute("DROP TRIGGER temp.full")
    store.resolve_incident(kept, "cleared")
    assert [e["event"] for e in store.audit_log()] == ["incident.resolved", "incident.opened"]


def test_an_action_and_its_audit_records_are_one_transaction(store: Store) -> None:
    proposed = Entry("linnix", "action.proposed", {"rule": "r"}, incident_id=None)
    refused = Entry("linnix", "action.refused", {"reason": "no"})
    aid = action(store, status="refused", audit=[proposed, refused])
    assert [(e["event"], e["action_id"], e["detail"]) for e in store.audit_log()] == [
        ("action.refused", aid, {"reason": "no"}), ("action.proposed", aid, {"rule": "r"})]
    pending = action(store)
    full_disk_on_audit(store)
    with pytest.raises(sqlite3.IntegrityError):
        action(store, audit=[proposed])
    approved = Entry("alice", "action.approved", {"reason": None})
    with pytest.raises(sqlite3.IntegrityError):
        store.transition(pending, "pending", "approved", audit=approved, decided_by="alice")
    assert [a["id"] for a in store.actions()] == [pending, aid]
    row = store.action(pending)
    assert row is not None and (row["status"], row["decided_by"]) == ("pending", None)
    store.db.execute("DROP TRIGGER temp.full")
    assert not store.transition(pending, "approved", "executing", audit=approved)  # no move,
    assert store.audit_log(action_id=pending) == []  # no record
    assert store.transition(pending, "pending", "approved", audit=approved, decided_by="alice")
    assert [e["actor"] for e in store.audit_log(action_id=pending)] == ["alice"]


# ---- retention ------------------------------------------------------------------------------

def test_retention_by_age(store: Store, clock: FakeClock) -> None:
    old = incident(store)
    old_done = action(store, old, status="succeeded")
    old_pending = action(store, old)  # still waiting for a person: never deleted
    store.resolve_incident(old, "cleared")
    still_open = incident(store)  # open incidents are never deleted, however old
    clock.now += 100 * 86400
    recent = incident(store)
    store.resolve_incident(recent, "cleared")
    recent_done = action(store, recent, status="failed")
    removed = store.retain(max_age=30 * 86400, max_incidents=1000, max_audit=1000)
    assert removed["incidents"] == 1 and removed["actions"] == 1
    assert store.incident(old) is None
    assert store.action(old_done) is None
    kept = store.action(old_pending)
    assert kept is not None and kept["status"] == "pending"
    assert kept["incident_id"] is None  # the foreign key lets go of the deleted incident
    assert store.incident(still_open) is not None
    assert store.incident(recent) is not None and store.action(recent_done) is not None
    # the audit entries of 100 days ago went too; the recent ones stayed
    assert removed["audit"] == 3  # opened old, resolved old, opened still_open
    assert {e["incident_id"] for e in store.audit_log(limit=100)} == {recent}


def test_retention_by_count(store: Store) -> None:
    ids = []
    for _ in range(6):
        iid = incident(store)
        store.resolve_incident(iid, "cleared")
        ids.append(iid)
    pending = action(store, ids[0])
    rejected = action(store, ids[0], status="rejected")
    open_old = ids[1]
    store.db.execute("UPDATE incidents SET resolved_at = NULL WHERE id = ?", (open_old,))
    removed = store.retain(max_age=10**9, max_incidents=2, max_audit=5)
    remaining = [i["id"] for i in store.incidents(limit=100)]
    assert remaining == [ids[5], ids[4], open_old]  # the newest 2, and the open one
    assert removed["incidents"] == 3
    assert store.action(pending) is not None  # pending actions are never deleted
    assert store.action(rejected) is None
    assert len(store.audit_log(limit=100)) == 5
    assert removed["audit"] == 12 - 5


def test_retention_that_fails_changes_nothing(store: Store, clock: FakeClock) -> None:
    iid = incident(store)
    store.resolve_incident(iid, "cleared")
    done = action(store, iid, status="succeeded")
    clock.now += 10**6
    # the audit trim comes last: make it fail after incidents and actions were deleted
    store.db.execute("CREATE TEMP TRIGGER refuse BEFORE DELETE ON audit "
                     "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.retain(max_age=1.0, max_incidents=1000, max_audit=1000)
    assert not store.db.in_transaction
    assert store.incident(iid) is not None and store.action(done) is not None  # rolled back


# ---- durability -----------------------------------------------------------------------------

def test_data_survives_closing_and_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "linnix.db")
    s = Store(path)
    iid = incident(s)
    aid = action(s, iid)
    s.transition(aid, "pending", "approved", decided_by="alice")
    s.close()
    again = Store(path)
    row = again.incident(iid)
    assert row is not None and row["labels"] == {"team": "infra"}
    assert [a["id"] for a in row["actions"]] == [aid]
    assert again.action(aid)["decided_by"] == "alice"  # type: ignore[index]
    assert [e["event"] for e in again.audit_log()] == ["incident.opened"]
    again.close()


def test_data_survives_a_sigkilled_writer(tmp_path: Path) -> None:
    """Every call commits before it returns: a process SIGKILLed right after loses nothing."""
    path = str(tmp_path / "linnix.db")
    script = (
        "import os, signal, sys\n"
        "from linnix.actions.store import Store\n"
        "s = Store(sys.argv[1])\n"
        "i = s.open_incident(rule='r', severity='critical', scope='process', pid=7,\n"
        "                    comm='c', start=1.0, message='m', labels={}, history=[],\n"
        "                    subtree=[], host={})\n"
        "a = s.add_action(incident_id=i, rule='r', kind='kill', params={}, pid=7,\n"
        "                 start_ticks=1, comm='c', exe=None, status='pending', mode='monitor',\n"
        "                 expires_at=123.0)\n"
        "s.audit('alice', 'action.approved', action_id=a)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, path], cwd=str(ROOT), check=False,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    s = Store(path)
    (inc,) = s.incidents()
    (act,) = s.actions()
    assert inc["rule"] == "r" and inc["resolved_at"] is None
    assert act["status"] == "pending" and act["expires_at"] == 123.0
    assert [e["event"] for e in s.audit_log()] == ["action.approved", "incident.opened"]
    s.close()


# ---- AsyncStore -----------------------------------------------------------------------------

async def test_async_store_runs_calls_on_a_worker_thread(store: Store) -> None:
    astore = AsyncStore(store)
    threads: list[int] = []
    original = store._append

    def append(*args: Any, **kw: Any) -> int:
        threads.append(threading.get_ident())
        return original(*args, **kw)

    store._append = append  # type: ignore[method-assign]
    iid = await astore.open_incident(rule="r", severity="warning", scope="system", pid=None,
                                     comm=None, start=None, message="m", labels={},
                                     history=[], subtree=[], host={})
    assert threads and threading.get_ident() not in threads
    row = await astore.incident(iid)
    assert row is not None and row["scope"] == "system"
    async with trio.open_nursery() as nursery:  # one call at a time, none lost
        for n in range(20):
            nursery.start_soon(partial(astore.audit, "linnix", "x", n=n))
    assert len(await astore.audit_log(event="x", limit=100)) == 20
    with pytest.raises(AttributeError):
        astore.no_such_method  # noqa: B018


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "linnix.db"
    path.write_bytes(b"not a database, just bytes " * 200)
    with pytest.raises(StoreError) as err:
        Store(str(path))
    assert str(err.value) == (
        f"cannot use the state database {path}: file is not a database (move it aside to "
        "start with an empty one; incidents, actions and the audit log in it would not be "
        "seen)")
    assert path.read_bytes().startswith(b"not a database")  # left as it was


# ---- paths that cannot hold a database ------------------------------------------------------

def test_a_directory_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "linnix.db"
    path.mkdir()
    with pytest.raises(StoreError) as err:
        Store(str(path))
    assert str(err.value) == (
        f"cannot use the state database {path}: it is a directory; move it aside to start "
        "with an empty database, or choose another state directory")
    assert path.is_dir() and list(path.iterdir()) == []  # left as it was


@pytest.mark.parametrize("where", ["missing-directory/linnix.db", "linnix-elsewhere.db"])
def test_a_dangling_symbolic_link_is_refused(tmp_path: Path, where: str) -> None:
    """Whether or not SQLite could create its target: a link to nothing may be a
    file system that is not mounted, and an empty database would hide that."""
    path = tmp_path / "linnix.db"
    target = tmp_path / where
    path.symlink_to(target)
    with pytest.raises(StoreError) as err:
        Store(str(path))
    assert str(err.value) == (
        f"cannot use the state database {path}: it is a symbolic link to {target}, which does "
        "not exist (is its file system mounted?); restore it, or remove the link to start with "
        "an empty database")
    assert not target.exists()


def test_a_link_to_an_existing_database_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    Store(str(real)).close()
    (tmp_path / "linnix.db").symlink_to(real)
    s = Store(str(tmp_path / "linnix.db"))
    assert s.notice is None
    s.close()


def test_a_special_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "linnix.db"
    os.mkfifo(path)
    with pytest.raises(StoreError, match="it is not a regular file; move it aside"):
        Store(str(path))


def test_a_path_sqlite_cannot_open_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "no-such-directory" / "linnix.db"
    with pytest.raises(StoreError) as err:
        Store(str(path))
    assert str(err.value) == (
        f"cannot open the state database {path}: unable to open database file (check that "
        "this user can write it and its directory, and that its file system is not read-only)")


def test_an_emptied_database_is_announced_once(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "linnix.db"
    path.write_bytes(b"")  # truncated: whatever it held is gone
    s = Store(str(path), clock=clock)
    assert s.notice == (
        f"the state database {path} was an empty file: the incidents, actions and audit log it "
        "held are gone; starting with an empty database")
    (entry,) = s.audit_log()
    assert (entry["actor"], entry["event"], entry["detail"], entry["at"]) == (
        "linnix", "store.emptied", {"path": str(path)}, clock.now)
    s.close()
    again = Store(str(path))  # it holds a database now
    assert again.notice is None and len(again.audit_log()) == 1
    again.close()


def test_a_new_database_is_not_announced(tmp_path: Path) -> None:
    s = Store(str(tmp_path / "linnix.db"))
    assert s.notice is None and s.audit_log() == []
    s.close()




def test_incidents_and_actions_say_when_they_began_in_rfc3339(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "t.db"), clock=lambda: 1_800_000_000.125)
    incident = store.open_incident(rule="r", severity="warning", scope="process", pid=1,
                                   comm="a", start=0.0, message="m", labels={}, history=[],
                                   subtree=[], host={})
    action = store.add_action(incident_id=incident, rule="r", kind="kill", params={}, pid=1,
                              start_ticks=5, comm="a", exe=None, status="pending",
                              mode="monitor", expires_at=None)
    when = "2027-01-15T08:00:00.125Z"
    assert store.incident(incident)["time"] == when
    assert store.action(action)["time"] == when
    assert [row["time"] for row in store.incidents()] == [when]
    assert [row["time"] for row in store.actions()] == [when]


def test_a_reader_reads_beside_a_writer_and_cannot_write(store: Store) -> None:
    first = incident(store)
    reader = Store.reader(store.path, SCHEMA_VERSION)
    try:
        assert reader.incident(first)["rule"] == "r"  # type: ignore[index]
        second = incident(store)
        assert [i["id"] for i in reader.incidents()] == [second, first]  # sees new commits
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.save_analysis(first, {"facts": []})
    finally:
        reader.close()
    assert store.analysis(first) is None


def test_analyses_are_listed_by_incident_newest_first(store: Store, clock: FakeClock) -> None:
    ids = [incident(store, f"r{n}") for n in range(3)]
    store.save_analysis(ids[1], {"facts": []})
    clock.now += 5
    store.save_analysis(ids[0], None, "too slow")  # analysed last, listed last: by incident
    rows = store.analyses()
    assert [(r["incident_id"], r["rule"], r["error"]) for r in rows] == [
        (ids[1], "r1", None), (ids[0], "r0", "too slow")]
    assert rows[1]["created_at"] == clock.now and rows[1]["time"].endswith("Z")
    assert [r["incident_id"] for r in store.analyses(limit=1)] == [ids[1]]
    assert store.analyses(before=ids[0]) == []
