"""An incident's trail in the store: the values its rule read while it was open, saved
while it is open and when it resolves, kept across a restart, bounded; and the upgrade
of a database made before there was one."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from linnix.actions.database import SCHEMA_VERSION
from linnix.actions.store import Store
from linnix.engine.trail import TRAIL_MAX

WALL = 1_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(str(tmp_path / "linnix.db"), clock=lambda: WALL)
    yield s
    s.close()


def incident(store: Store) -> int:
    return store.open_incident(
        rule="r", severity="critical", scope="process", pid=100, comm="worker", start=12.5,
        message="worker[100] is busy", labels={},
        history=[{"ts": 1.0, "values": {"cpu_pct": 95.0}}], subtree=[], host={})


def points(*times: float) -> list[dict[str, Any]]:
    return [{"at": WALL + ts, "values": {"cpu_pct": ts * 10}} for ts in times]


def trail_of(store: Store, incident_id: int) -> list[dict[str, Any]]:
    row = store.incident(incident_id)
    assert row is not None
    return list(row["trail"])


def test_an_incident_opens_with_no_trail_and_resolves_with_one(store: Store) -> None:
    iid = incident(store)
    assert trail_of(store, iid) == []
    store.resolve_incident(iid, "cleared", points(1.0, 2.0, 3.0))
    row = store.incident(iid)
    assert row is not None and row["resolved_reason"] == "cleared"
    assert row["trail"] == points(1.0, 2.0, 3.0)
    other = incident(store)
    store.resolve_incident(other, "the daemon restarted")  # nothing recorded: none kept
    assert trail_of(store, other) == []


def test_the_trail_so_far_is_saved_while_open_and_replaced_as_it_grows(store: Store) -> None:
    first, second, done = incident(store), incident(store), incident(store)
    store.resolve_incident(done, "cleared", points(1.0))
    store.keep_trails({first: points(1.0, 2.0), second: points(5.0), done: points(9.0)})
    assert trail_of(store, first) == points(1.0, 2.0)
    assert trail_of(store, second) == points(5.0)
    assert trail_of(store, done) == points(1.0)  # resolved: its trail is final
    store.keep_trails({first: points(1.0, 2.0, 4.0, 8.0), second: []})
    assert trail_of(store, first) == points(1.0, 2.0, 4.0, 8.0)  # thinned points replace
    assert trail_of(store, second) == points(5.0)
    store.resolve_incident(first, "cleared", points(1.0, 2.0, 4.0, 8.0, 9.0))
    assert trail_of(store, first) == points(1.0, 2.0, 4.0, 8.0, 9.0)


def test_a_trail_begun_again_after_a_restart_follows_what_was_saved(store: Store) -> None:
    iid = incident(store)
    store.keep_trails({iid: points(1.0, 2.0, 3.0)})
    # the daemon restarted at 2.5: the instance, restored firing, began a new trail
    store.resolve_incident(iid, "cleared", points(2.5, 3.5))
    assert trail_of(store, iid) == points(1.0, 2.0, 2.5, 3.5)


def test_a_merged_trail_stays_bounded(store: Store) -> None:
    iid = incident(store)
    store.keep_trails({iid: points(*range(TRAIL_MAX))})
    store.resolve_incident(iid, "cleared", points(*range(TRAIL_MAX, 2 * TRAIL_MAX)))
    kept = trail_of(store, iid)
    assert len(kept) <= TRAIL_MAX + 1
    assert kept[0] == points(0)[0] and kept[-1] == points(2 * TRAIL_MAX - 1)[0]
    assert [p["at"] for p in kept] == sorted(p["at"] for p in kept)


def test_the_trail_is_written_with_the_resolution_or_not_at_all(store: Store) -> None:
    iid = incident(store)
    store.keep_trails({iid: points(1.0)})
    store.db.execute("CREATE TEMP TRIGGER full BEFORE INSERT ON audit "
                     "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    with pytest.raises(sqlite3.IntegrityError, match="full"):
        store.resolve_incident(iid, "cleared", points(1.0, 2.0))
    row = store.incident(iid)
    assert row is not None and row["resolved_at"] is None and row["trail"] == points(1.0)


def test_a_version_5_database_gets_an_empty_trail_for_each_incident(tmp_path: Path) -> None:
    path = str(tmp_path / "linnix.db")
    old = Store(path, clock=lambda: WALL)
    iid = incident(old)
    old.db.execute("ALTER TABLE incidents DROP COLUMN trail")
    old.db.execute("PRAGMA user_version = 5")
    old.close()
    new = Store(path, clock=lambda: WALL)
    try:
        assert new.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
        row = new.incident(iid)
        assert row is not None and row["trail"] == []
        assert row["history"] == [{"ts": 1.0, "values": {"cpu_pct": 95.0}}]
        new.resolve_incident(iid, "cleared", points(1.0, 2.0))
        assert trail_of(new, iid) == points(1.0, 2.0)
        assert new.verify_chain().holds
    finally:
        new.close()
