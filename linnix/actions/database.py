"""Opening the state database: the path first, then the connection and the schema.

A path that cannot hold the database (a directory, a dangling symbolic link, a
device) is refused with a :class:`~linnix.errors.StoreError` that names it and
says what to do, never an error SQLite makes of it.  A database file that
exists but is empty (zero bytes: truncated by a full disk, or by hand) opens as
a new database, as SQLite would open it, but :func:`open_database` says so,
so that losing what it held is announced instead of passing in silence.

The schema has a version (``PRAGMA user_version``).  Version 1 chains the
audit log (see :mod:`.chain`): a database made before it gets the chain's
columns and its anchor, and its records are chained in order, all in one
transaction, with an ``audit.chained`` record saying how many there were (the
chain vouches for them from then on, not before).  Version 2 counts the
repeats of a pending action (the same rule firing again for the same
process): ``repeats`` (0 for an action of an older database) and
``last_seen_at`` (its creation time until it repeats).  Version 3 keeps the
rules' state across a restart (``rule_state``: one row, the engine's snapshot,
:mod:`linnix.engine.persist`).  Version 4 keeps what the analyst reads and
writes (:mod:`linnix.analysis`): ``incidents.context`` (the firing process's
ancestors, the host's busiest forkers and the rule's runbook, ``{}`` for an
incident of an older database) and ``analyses`` (one row per incident: the
analysis, or why it could not be made).
Version 5 adds the cgroup actions: an action's
target cgroup (``cgroup``, its path, and ``cgroup_id``, its directory's inode; null
for the actions of an older database, which all target processes) and ``freezes``,
every freeze made and when it was undone, so that a freeze left by a daemon that
stopped without thawing is thawed at the next start.  Version 6 keeps the values an
incident's rule read while it was open (``incidents.trail``: points of Unix time
and values, ``[]`` for an incident of an older database; :mod:`linnix.engine.trail`).
A database of a newer version is refused rather than misread.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable

from ..errors import StoreError
from . import chain

__all__ = ["SCHEMA", "SCHEMA_VERSION", "open_database", "open_reader", "open_readonly"]

SCHEMA_VERSION = 6

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
CREATE INDEX IF NOT EXISTS incidents_rule ON incidents (rule);
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
    finished_at  REAL,
    repeats      INTEGER NOT NULL DEFAULT 0,
    last_seen_at REAL,
    cgroup       TEXT,
    cgroup_id    INTEGER
);
CREATE INDEX IF NOT EXISTS actions_status ON actions (status);
CREATE INDEX IF NOT EXISTS actions_pid ON actions (pid);
CREATE INDEX IF NOT EXISTS actions_incident ON actions (incident_id);
CREATE TABLE IF NOT EXISTS audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          REAL NOT NULL,
    actor       TEXT NOT NULL,
    event       TEXT NOT NULL,
    action_id   INTEGER,
    incident_id INTEGER,
    detail      TEXT NOT NULL DEFAULT '{}',
    prev        TEXT,
    hash        TEXT
);
CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor);
CREATE TRIGGER IF NOT EXISTS audit_append_only BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
"""

APPEND_ONLY = ("CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit "
               "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")

# where the chain starts: the last record retention removed (id 0 and all zeros: none)
ANCHOR = ("CREATE TABLE IF NOT EXISTS audit_anchor (id INTEGER PRIMARY KEY CHECK (id = 1), "
          "last_id INTEGER NOT NULL, hash TEXT NOT NULL)")

# version 3: the rules' state as the daemon last saved it (one row, replaced at each save)
RULE_STATE = ("CREATE TABLE IF NOT EXISTS rule_state (id INTEGER PRIMARY KEY CHECK (id = 1), "
              "saved_at REAL NOT NULL, data BLOB NOT NULL)")

# version 4: an incident's analysis (or the error that stopped it), deleted with it
ANALYSES = ("CREATE TABLE IF NOT EXISTS analyses (incident_id INTEGER PRIMARY KEY "
            "REFERENCES incidents (id) ON DELETE CASCADE, created_at REAL NOT NULL, "
            "analysis TEXT, error TEXT)")

# version 5: each freeze a cgroup action made, until it is thawed (thawed_at set)
FREEZES = ("CREATE TABLE IF NOT EXISTS freezes (action_id INTEGER PRIMARY KEY, "
           "cgroup TEXT NOT NULL, cgroup_id INTEGER NOT NULL, frozen_at REAL NOT NULL, "
           "thaw_by REAL NOT NULL, thawed_at REAL, thaw_reason TEXT)")


def open_database(path: str, clock: Callable[[], float]) -> tuple[sqlite3.Connection, bool]:
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
        _upgrade(db, path, clock)
    except sqlite3.Error as err:
        db.close()
        raise StoreError(f"cannot use the state database {path}: {err} (move it aside to "
                         "start with an empty one; incidents, actions and the audit log "
                         "in it would not be seen)") from None
    except BaseException:
        db.close()
        raise
    return db, emptied


DATABASE_MODE = 0o640  # SQLite gives its journal and WAL files the database's mode


def _create(path: str) -> None:
    """An empty database file of mode 0640, whatever the umask (a lost race is fine)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, DATABASE_MODE)
    except OSError:  # there already, or cannot be: SQLite's own open says which
        return
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


def _upgrade(db: sqlite3.Connection, path: str, clock: Callable[[], float]) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION` (one transaction; nothing if it is)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(f"cannot use the state database {path}: a newer linnix made it "
                             f"(schema version {version}; this one knows {SCHEMA_VERSION}); "
                             "run that version, or move the file aside to start empty")
        if version < 1:
            _chain_the_audit_log(db, clock)
        if version < 2:
            _count_repeats(db)
        if version < 3:
            db.execute(RULE_STATE)
        if version < 4:
            _keep_analyses(db)
        if version < 5:
            _target_cgroups(db)
        if version < 6:
            _keep_trails(db)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _chain_the_audit_log(db: sqlite3.Connection, clock: Callable[[], float]) -> None:
    """Version 1: the chain's columns and anchor; the records already there chained."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(audit)")}
    for column in ("prev", "hash"):
        if column not in columns:
            db.execute(f"ALTER TABLE audit ADD COLUMN {column} TEXT")
    db.execute(ANCHOR)
    db.execute("INSERT OR IGNORE INTO audit_anchor (id, last_id, hash) VALUES (1, 0, ?)",
               (chain.GENESIS,))
    db.execute("DROP TRIGGER IF EXISTS audit_append_only")  # hashes are written in place
    earlier, prev, last = 0, chain.GENESIS, 0
    while batch := db.execute(
            "SELECT id, at, actor, event, action_id, incident_id, detail FROM audit "
            "WHERE id > ? ORDER BY id LIMIT 1000", (last,)).fetchall():
        for row_id, at, actor, event, action_id, incident_id, detail in batch:
            digest = chain.record_hash(prev, row_id, at, actor, event, action_id, incident_id,
                                       detail)
            db.execute("UPDATE audit SET prev = ?, hash = ? WHERE id = ?",
                       (prev, digest, row_id))
            earlier, prev, last = earlier + 1, digest, row_id
    db.execute(APPEND_ONLY)
    if earlier:
        chain.append(db, clock(), "linnix", "audit.chained", None, None,
                     json.dumps({"earlier_records": earlier}, separators=(",", ":")), earlier)


def _count_repeats(db: sqlite3.Connection) -> None:
    """Version 2: the repeats of an action and when it was last seen (at its creation,
    as far as an older database can tell)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(actions)")}
    if "repeats" not in columns:
        db.execute("ALTER TABLE actions ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0")
    if "last_seen_at" not in columns:
        db.execute("ALTER TABLE actions ADD COLUMN last_seen_at REAL")
    db.execute("UPDATE actions SET last_seen_at = created_at WHERE last_seen_at IS NULL")


def _keep_analyses(db: sqlite3.Connection) -> None:
    """Version 4: the incident's context for the analyst, and the analyses table."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(incidents)")}
    if "context" not in columns:
        db.execute("ALTER TABLE incidents ADD COLUMN context TEXT NOT NULL DEFAULT '{}'")
    db.execute(ANALYSES)

def _target_cgroups(db: sqlite3.Connection) -> None:
    """Version 4: an action's target cgroup (none for an older action) and the freezes."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(actions)")}
    if "cgroup" not in columns:
        db.execute("ALTER TABLE actions ADD COLUMN cgroup TEXT")
    if "cgroup_id" not in columns:
        db.execute("ALTER TABLE actions ADD COLUMN cgroup_id INTEGER")
    db.execute(FREEZES)


def _keep_trails(db: sqlite3.Connection) -> None:
    """Version 6: the values an incident's rule read while it was open."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(incidents)")}
    if "trail" not in columns:
        db.execute("ALTER TABLE incidents ADD COLUMN trail TEXT NOT NULL DEFAULT '[]'")


def open_readonly(path: str) -> sqlite3.Connection:
    """A connection that can only read the database at ``path`` (which must exist)."""
    if not _check_path(path):
        raise StoreError(f"there is no state database at {path}: has the daemon run with "
                         "this state directory?")
    try:
        db = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True,
                             isolation_level=None)
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the state database {path}: {err}") from None
    if version < 1:
        empty = _holds_nothing(db)
        db.close()
        if empty:
            raise StoreError(f"the state database {path} is empty: it holds no audit log")
        raise StoreError(f"the audit log in {path} has no hash chain yet: an older linnix "
                         "made it, and the daemon chains it when it next starts")
    return db


def open_reader(path: str, since: int, busy_s: float = 5.0) -> sqlite3.Connection:
    """A connection that can only read the database at ``path``, which must exist and be
    of a schema from version ``since`` up to this linnix's (rows as :class:`sqlite3.Row`;
    a write lock held elsewhere is waited for ``busy_s`` seconds at each query)."""
    if not _check_path(path):
        raise StoreError(f"there is no state database at {path}: has the daemon run with "
                         "this state directory?")
    try:
        db = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True, timeout=busy_s,
                             isolation_level=None, check_same_thread=False)
    except sqlite3.Error as err:
        raise StoreError(f"cannot read the state database {path}: {err}") from None
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        empty = version == 0 and _holds_nothing(db)
    except sqlite3.Error as err:
        db.close()
        raise StoreError(f"cannot read the state database {path}: {err}") from None
    problem = None
    if empty:
        problem = f"the state database {path} is empty: the daemon has stored nothing in it"
    elif version > SCHEMA_VERSION:
        problem = (f"the state database {path} was made by a newer linnix (schema version "
                   f"{version}; this one reads up to {SCHEMA_VERSION}): use that linnix")
    elif version < since:
        problem = (f"the state database {path} was made by an older linnix (schema version "
                   f"{version}; this needs {since}): the daemon upgrades it when it next "
                   "starts")
    if problem is not None:
        db.close()
        raise StoreError(problem)
    db.row_factory = sqlite3.Row
    return db


def _uri_path(path: str) -> str:
    """``path`` as the path of a file: URI (absolute, with ? and # escaped)."""
    from urllib.parse import quote

    return quote(os.path.abspath(path))

