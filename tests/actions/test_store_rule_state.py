"""The rules' state in the store (schema version 3), and the incidents a restart keeps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from linnix.actions.database import SCHEMA_VERSION
from linnix.actions.store import Store

INCIDENT = {"rule": "r", "severity": "warning", "scope": "process", "pid": 100,
            "comm": "worker", "start": 12.5, "message": "m", "labels": {}, "history": [],
            "subtree": [], "host": {}}


def test_rule_state_is_saved_replaced_and_read_back_as_stored(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "linnix.db"))
    try:
        assert store.load_rule_state() is None
        store.save_rule_state(b'{"first": 1}', 10.0)
        store.save_rule_state(b'{"second": 2}', 20.0)
        assert store.load_rule_state() == b'{"second": 2}'
        row = store.db.execute("SELECT count(*), max(saved_at) FROM rule_state").fetchone()
        assert tuple(row) == (1, 20.0)
    finally:
        store.close()


def test_rule_state_of_another_type_is_handed_over_as_it_is(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "linnix.db"))
    try:
        store.db.execute("INSERT INTO rule_state (id, saved_at, data) VALUES (1, 0, 42)")
        assert store.load_rule_state() == 42  # the engine's loader refuses it, with a reason
    finally:
        store.close()


def test_a_version_2_database_gets_the_rule_state_table(tmp_path: Path) -> None:
    """What a schema-2 release left (no rule_state table) is upgraded in place, stepwise,
    and keeps what it held."""
    path = str(tmp_path / "linnix.db")
    old = Store(path)
    kept = old.open_incident(**INCIDENT)  # type: ignore[arg-type]
    old.db.execute("DROP TABLE rule_state")
    old.db.execute("PRAGMA user_version = 2")
    old.close()
    new = Store(path)
    try:
        assert new.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert new.load_rule_state() is None
        new.save_rule_state(b"{}", 1.0)
        assert [i["id"] for i in new.incidents(open_only=True)] == [kept]
        assert new.verify_chain().holds
    finally:
        new.close()


def test_rule_state_has_one_row_only(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "linnix.db"))
    try:
        with pytest.raises(sqlite3.IntegrityError):
            store.db.execute("INSERT INTO rule_state (id, saved_at, data) VALUES (2, 0, x'')")
    finally:
        store.close()


def test_a_restart_closes_the_open_incidents_it_does_not_keep(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "linnix.db"))
    try:
        restored, gone = (store.open_incident(**INCIDENT),  # type: ignore[arg-type]
                          store.open_incident(**INCIDENT))  # type: ignore[arg-type]
        assert [(i["id"], i["rule"], i["pid"], i["start"]) for i in store.open_incidents()] \
            == [(restored, "r", 100, 12.5), (gone, "r", 100, 12.5)]
        assert store.close_open_incidents("the daemon restarted", keep=[restored]) == 1
        assert [i["id"] for i in store.open_incidents()] == [restored]
        row = store.incident(gone)
        assert row is not None and row["resolved_reason"] == "the daemon restarted"
    finally:
        store.close()
