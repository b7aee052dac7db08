"""Opening the state database: the path first, then the connection and the schema.

A path that cannot hold the database (a directory, a dangling symbolic link, a
device) is refused with a :class:`~linnix.errors.StoreError` that names it and
says what to do, never an error SQLite makes of it.  A database file that
exists but is empty (zero bytes: truncated by a full disk, or by hand) opens as
a new database, as SQLite would open it, but :func:`open_database` says so,
so that losing what it held is announced instead of passing in silence.
"""

from __future__ import annotations

import os
import sqlite3
import stat

from ..errors import StoreError

__all__ = ["SCHEMA", "open_database"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    scope           TEXT NOT NULL,
    pid             INTEGER,
    comm            TEXT,
    start           REAL,
    opened_at       REAL NOT NULL,
    resolved_at     REAL,
    resolved_reason TEXT,
    message         TEXT NOT NULL,
    labels          TEXT NOT NULL DEFAULT '{}',
    history         TEXT NOT NULL DEFAULT '[]',
    subtree         TEXT NOT NULL DEFAULT '[]',
    host            TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (resolved_at);
CREATE TABLE IF NOT EXISTS actions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER REFERENCES incidents (id) ON DELETE SET NULL,
    rule         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    params       TEXT NOT NULL DEFAULT '{}',
    pid          INTEGER,
    start_ticks  INTEGER,
    comm         TEXT,
    exe          TEXT,
    status       TEXT NOT NULL,
    mode         TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL,
    decided_by   TEXT,
    decided_at   REAL,
    reason       TEXT,
    result       TEXT,
    finished_at  REAL
);
CREATE INDEX IF NOT EXISTS actions_status ON actions (status);
CREATE TABLE IF NOT EXISTS audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          REAL NOT NULL,
    actor       TEXT NOT NULL,
    event       TEXT NOT NULL,
    action_id   INTEGER,
    incident_id INTEGER,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER IF NOT EXISTS audit_append_only BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
"""


def open_database(path: str) -> tuple[sqlite3.Connection, bool]:
    """The connection, schema in place; and whether the file existed but was empty."""
    existed = _check_path(path)
    if not existed:
        _create(path)
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as err:
        raise StoreError(f"cannot open the state database {path}: {err} (check that this user "
                         "can write it and its directory, and that its file system is not "
                         "read-only)") from None
    try:
        db.row_factory = sqlite3.Row
        emptied = existed and _holds_nothing(db)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)
    except sqlite3.Error as err:
        db.close()
        raise StoreError(f"cannot use the state database {path}: {err} (move it aside to "
                         "start with an empty one; incidents, actions and the audit log "
                         "in it would not be seen)") from None
    return db, emptied


DATABASE_MODE = 0o640  # SQLite gives its journal and WAL files the database's mode


def _create(path: str) -> None:
    """An empty database file of mode 0640, whatever the umask (a lost race is fine)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, DATABASE_MODE)
    except FileExistsError:
        return
    except OSError as err:
        raise StoreError(f"cannot create the state database {path}: {err.strerror} (check that "
                         "this user can write its directory)") from None
    try:
        os.fchmod(fd, DATABASE_MODE)  # a umask such as 077 took the group's read bit
    finally:
        os.close(fd)


def _check_path(path: str) -> bool:
    """Refuse a path that cannot be a database file; whether a file is there already."""
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        return False  # a new database
    except OSError as err:
        raise StoreError(f"cannot use the state database {path}: {err.strerror}") from None
    if stat.S_ISLNK(link.st_mode) and not os.path.exists(path):
        target = os.readlink(path)
        raise StoreError(
            f"cannot use the state database {path}: it is a symbolic link to {target}, which "
            "does not exist (is its file system mounted?); restore it, or remove the link to "
            "start with an empty database")
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise StoreError(
            f"cannot use the state database {path}: it is a directory; move it aside to "
            "start with an empty database, or choose another state directory")
    if not stat.S_ISREG(mode):
        raise StoreError(
            f"cannot use the state database {path}: it is not a regular file; move it aside "
            "to start with an empty database, or choose another state directory")
    return True


def _holds_nothing(db: sqlite3.Connection) -> bool:
    """An existing file without a single table: empty (what SQLite opens as new)."""
    return int(db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]) == 0
