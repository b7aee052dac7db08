"""The audit log's hash chain: what it vouches for, what breaks it, retention's anchor, and
the upgrade of a database made before the chain."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linnix.actions.chain import GENESIS, ChainHead, record_hash, verify
from linnix.actions.store import Store
from linnix.errors import StoreError


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    s = Store(str(tmp_path / "linnix.db"), clock=clock)
    yield s
    s.close()


def records(store: Store, n: int, clock: FakeClock | None = None) -> list[int]:
    ids = []
    for i in range(n):
        if clock is not None:
            clock.now += 1.0
        ids.append(store.audit("alice", "action.approved", action_id=i, reason=f"r{i}"))
    return ids


def tamper(store: Store, sql: str, *args: object) -> None:
    """What someone with write access to the file can do: the triggers are no obstacle."""
    db = store.db
    db.execute("DROP TRIGGER audit_append_only")
    db.execute(sql, args)


def where(store: Store) -> tuple[int | None, str | None, int]:
    verdict = store.verify_chain()
    return verdict.broken_at, verdict.problem, verdict.rows


# ---- what holds -------------------------------------------------------------------------------

def test_an_empty_chain_holds_and_starts_from_zeros(store: Store) -> None:
    verdict = store.verify_chain()
    assert verdict.holds and verdict.rows == 0
    assert verdict.anchor == verdict.head == store.chain_head == ChainHead(0, GENESIS, 0)


def test_each_record_is_chained_to_the_one_before(store: Store, clock: FakeClock) -> None:
    ids = records(store, 3, clock)
    rows = store.db.execute("SELECT id, at, actor, event, action_id, incident_id, detail, "
                            "prev, hash FROM audit ORDER BY id").fetchall()
    prev = GENESIS
    for row in rows:
        assert row["prev"] == prev
        assert row["hash"] == record_hash(prev, row["id"], row["at"], row["actor"],
                                          row["event"], row["action_id"], row["incident_id"],
                                          row["detail"])
        prev = row["hash"]
    verdict = store.verify_chain()
    assert verdict.holds and verdict.rows == 3
    assert verdict.head == store.chain_head == ChainHead(ids[-1], prev, 3)


def test_the_hash_covers_every_field_and_the_one_before() -> None:
    base = ("p" * 64, 7, 12.5, "alice", "action.approved", 3, None, '{"reason":"x"}')
    digests = {record_hash(*base)}
    for i, other in enumerate(("q" * 64, 8, 12.25, "bob", "action.rejected", 4, 1, "{}")):
        changed = list(base)
        changed[i] = other
        digests.add(record_hash(*changed))  # type: ignore[arg-type]
    assert len(digests) == 9
    # a time SQLite hands back as 12.0 was written as 12: the same record
    whole = ("p" * 64, 7, 12, "alice", "action.approved", 3, None, "{}")
    assert record_hash(*whole) == record_hash(*whole[:2], 12.0, *whole[3:])  # type: ignore[arg-type]


def test_a_failed_transaction_leaves_the_head_where_it_was(store: Store) -> None:
    records(store, 2)
    before = store.chain_head
    store.db.execute("CREATE TEMP TRIGGER full BEFORE INSERT ON incidents "
                     "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    with pytest.raises(sqlite3.IntegrityError):
        store.open_incident(rule="r", severity="warning", scope="system", pid=None, comm=None,
                            start=None, message="m", labels={}, history=[], subtree=[], host={})
    assert store.chain_head == before == store.verify_chain().head


# ---- what breaks it ---------------------------------------------------------------------------

def test_a_changed_record_breaks_the_chain_where_it_is(store: Store) -> None:
    ids = records(store, 4)
    tamper(store, "UPDATE audit SET actor = 'mallory' WHERE id = ?", ids[1])
    assert where(store) == (ids[1], "its content does not give its hash: it was changed after "
                                    "it was written", 1)


def test_a_removed_record_breaks_the_chain_at_the_next_one(store: Store) -> None:
    ids = records(store, 4)
    store.db.execute("DELETE FROM audit WHERE id = ?", (ids[2],))
    assert where(store) == (ids[3], f"it does not follow the record before it (#{ids[1]}): "
                                    "records between them were removed, or it was inserted", 2)


def test_removing_the_first_records_breaks_the_chain(store: Store) -> None:
    ids = records(store, 3)
    store.db.execute("DELETE FROM audit WHERE id <= ?", (ids[1],))
    assert where(store) == (ids[2], "it does not follow the start of the chain: records "
                                    "between them were removed, or it was inserted", 0)


@pytest.mark.parametrize(("prev", "digest", "problem"), [
    (None, None, "it has no hash: linnix did not write it"),
    ("f" * 64, "e" * 64, "it does not follow the record before it (#{last}): records between "
                         "them were removed, or it was inserted"),
])
def test_a_forged_record_breaks_the_chain(store: Store, prev: str | None, digest: str | None,
                                          problem: str) -> None:
    ids = records(store, 2)
    store.db.execute("INSERT INTO audit (at, actor, event, detail, prev, hash) "
                     "VALUES (1.0, 'alice', 'action.approved', '{}', ?, ?)", (prev, digest))
    broken_at, why, rows = where(store)
    assert (broken_at, why, rows) == (ids[-1] + 1, problem.format(last=ids[-1]), 2)


def test_a_record_forged_with_the_right_hash_after_the_head_is_only_seen_by_its_head(
        store: Store) -> None:
    """Anyone can compute SHA-256: an appended forgery verifies, but the head kept off the
    host is no longer the head."""
    records(store, 2)
    kept = store.chain_head
    head = store.verify_chain().head
    digest = record_hash(head.hash, head.id + 1, 5.0, "mallory", "action.approved", None, None,
                         "{}")
    store.db.execute("INSERT INTO audit (id, at, actor, event, detail, prev, hash) "
                     "VALUES (?, 5.0, 'mallory', 'action.approved', '{}', ?, ?)",
                     (head.id + 1, head.hash, digest))
    verdict = store.verify_chain()
    assert verdict.holds and verdict.head.hash == digest != kept.hash


@given(n=st.integers(min_value=2, max_value=12), data=st.data())
def test_any_removal_or_change_but_of_the_newest_is_found(tmp_path_factory: Any, n: int,
                                                          data: st.DataObject) -> None:
    s = Store(str(tmp_path_factory.mktemp("chain") / "linnix.db"))
    try:
        ids = records(s, n)
        i = data.draw(st.integers(min_value=0, max_value=n - 1))
        if data.draw(st.booleans()) and i < n - 1:
            s.db.execute("DELETE FROM audit WHERE id = ?", (ids[i],))
            expected = ids[i + 1]
        else:
            tamper(s, "UPDATE audit SET detail = '{\"reason\":\"forged\"}' WHERE id = ?", ids[i])
            expected = ids[i]
        assert s.verify_chain().broken_at == expected
    finally:
        s.close()


# ---- retention keeps an anchor ----------------------------------------------------------------

def test_retention_trims_the_oldest_records_and_anchors_the_chain(store: Store) -> None:
    ids = records(store, 10)
    removed = store.retain(max_age=10**9, max_incidents=100, max_audit=4)
    assert removed["audit"] == 6
    last_removed = ids[5]
    verdict = store.verify_chain()
    assert verdict.holds and verdict.rows == 4
    assert verdict.anchor.id == last_removed
    assert store.chain_head == verdict.head == ChainHead(ids[-1], verdict.head.hash, 4)
    assert [r["id"] for r in store.audit_log(limit=100)] == ids[:5:-1]
    more = records(store, 2)  # the chain goes on from there
    assert store.verify_chain().holds and store.chain_head.id == more[-1]
    store.db.execute("DELETE FROM audit WHERE id = ?", (ids[6],))  # the first one kept
    assert where(store)[:2] == (ids[7], (
        f"it does not follow the anchor retention left (#{last_removed}): records between "
        "them were removed, or it was inserted"))


def test_retention_by_age_stops_at_the_first_record_it_keeps(store: Store,
                                                             clock: FakeClock) -> None:
    """A clock stepped back wrote an old time after a new one: that record stays, or the
    chain would have a hole."""
    old = records(store, 2, clock)
    clock.now += 40 * 86400
    young = records(store, 1, clock)
    clock.now -= 80 * 86400  # stepped back
    stepped = records(store, 1, clock)
    clock.now += 80 * 86400
    assert store.retain(max_age=30 * 86400, max_incidents=100, max_audit=100)["audit"] == 2
    assert [r["id"] for r in store.audit_log()] == [*stepped, *young]
    assert store.verify_chain().holds and store.verify_chain().anchor.id == old[-1]


def test_retention_can_trim_every_record(store: Store, clock: FakeClock) -> None:
    ids = records(store, 3, clock)
    clock.now += 10**6
    assert store.retain(max_age=1.0, max_incidents=100, max_audit=100)["audit"] == 3
    verdict = store.verify_chain()
    assert verdict.holds and verdict.rows == 0 and verdict.anchor.id == ids[-1]
    assert store.chain_head == verdict.anchor
    (new,) = records(store, 1)
    assert new == ids[-1] + 1 and store.verify_chain().holds


def test_a_trim_that_fails_leaves_the_anchor(store: Store) -> None:
    records(store, 5)
    store.db.execute("CREATE TEMP TRIGGER refuse BEFORE DELETE ON audit "
                     "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(sqlite3.IntegrityError):
        store.retain(max_age=10**9, max_incidents=100, max_audit=1)
    verdict = store.verify_chain()
    assert verdict.holds and verdict.rows == 5 and verdict.anchor.id == 0


# ---- databases made before the chain ---------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE incidents (id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL,
    severity TEXT NOT NULL, scope TEXT NOT NULL, pid INTEGER, comm TEXT, start REAL,
    opened_at REAL NOT NULL, resolved_at REAL, resolved_reason TEXT, message TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}', history TEXT NOT NULL DEFAULT '[]',
    subtree TEXT NOT NULL DEFAULT '[]', host TEXT NOT NULL DEFAULT '{}');
CREATE TABLE actions (id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER REFERENCES incidents (id) ON DELETE SET NULL, rule TEXT NOT NULL,
    kind TEXT NOT NULL, params TEXT NOT NULL DEFAULT '{}', pid INTEGER, start_ticks INTEGER,
    comm TEXT, exe TEXT, status TEXT NOT NULL, mode TEXT NOT NULL, created_at REAL NOT NULL,
    expires_at REAL, decided_by TEXT, decided_at REAL, reason TEXT, result TEXT,
    finished_at REAL);
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
    actor TEXT NOT NULL, event TEXT NOT NULL, action_id INTEGER, incident_id INTEGER,
    detail TEXT NOT NULL DEFAULT '{}');
CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
INSERT INTO audit (at, actor, event, detail) VALUES (1.0, 'linnix', 'daemon.started', '{}');
INSERT INTO audit (at, actor, event, action_id, detail)
    VALUES (2.0, 'alice', 'action.approved', 1, '{"reason":"stuck"}');
"""


def test_a_database_made_before_the_chain_is_chained_once(tmp_path: Path,
                                                         clock: FakeClock) -> None:
    path = tmp_path / "linnix.db"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.close()
    s = Store(str(path), clock=clock)
    entries = [(e["id"], e["event"], e["detail"]) for e in reversed(s.audit_log())]
    assert entries == [(1, "daemon.started", {}), (2, "action.approved", {"reason": "stuck"}),
                       (3, "audit.chained", {"earlier_records": 2})]
    verdict = s.verify_chain()
    assert verdict.holds and verdict.rows == 3 and s.chain_head == verdict.head
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # the trigger is back
        s.db.execute("UPDATE audit SET actor = 'mallory'")
    s.close()
    again = Store(str(path), clock=clock)  # nothing to do the second time
    assert len(again.audit_log()) == 3 and again.verify_chain().holds
    again.close()


def test_a_database_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "linnix.db"
    Store(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 7")
    db.close()
    with pytest.raises(StoreError) as err:
        Store(str(path))
    assert str(err.value) == (
        f"cannot use the state database {path}: a newer linnix made it (schema version 7; "
        "this one knows 4); run that version, or move the file aside to start empty")


def test_verify_reads_a_plain_connection(store: Store) -> None:
    records(store, 3)
    assert verify(store.db).holds
