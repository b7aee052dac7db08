"""The audit log's hash chain: each record carries the hash of the one before it.

A record's ``hash`` is SHA-256 over the previous record's hash and the record's
canonical content (its id, time, actor, event, action, incident and detail, as
stored); ``prev`` repeats the previous hash, so that a break can be told apart:
a record whose content no longer gives its hash was changed, one whose ``prev``
is not the hash before it follows a gap (records removed) or was inserted.
The first record follows the *anchor*: all zeros in a new database, and the
hash of the last record removed once retention has trimmed the oldest ones.

The chain makes tampering evident, not impossible: whoever can write the file
can rebuild the whole chain.  What gives it teeth is a copy of the head (the
newest hash, on ``/metrics``) kept off the host: a rebuilt or cut chain no
longer contains it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

import attrs

__all__ = ["GENESIS", "ChainHead", "Verdict", "anchor", "append", "head", "record_hash", "trim",
           "verify"]

GENESIS = "0" * 64  # the anchor of a chain nothing was ever trimmed from
MALFORMED = "an anchor that is not one"  # never a hash, so nothing verifies after it


@attrs.frozen
class ChainHead:
    """The newest record's id and hash (the anchor's, when there is none), and how
    many records the chain holds after the anchor."""

    id: int
    hash: str
    rows: int


@attrs.frozen
class Verdict:
    """What :func:`verify` found."""

    rows: int  # records checked (all of them when the chain holds)
    head: ChainHead
    anchor: ChainHead  # rows: 0
    broken_at: int | None = None  # the id of the first record that does not verify
    problem: str | None = None  # why
    first_id: int | None = None  # the first record checked, if any

    @property
    def holds(self) -> bool:
        return self.broken_at is None


def record_hash(prev: str, row_id: int, at: float, actor: str, event: str,
                action_id: int | None, incident_id: int | None, detail: str) -> str:
    """The hash of one record: ``detail`` is its JSON text as stored."""
    content = json.dumps([row_id, float(at), actor, event, action_id, incident_id, detail],
                         ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev}\n{content}".encode("ascii")).hexdigest()


def anchor(db: sqlite3.Connection) -> ChainHead:
    """Where the chain starts: the last record retention removed (id 0, all zeros: none)."""
    found = db.execute("SELECT last_id, hash FROM audit_anchor WHERE id = 1").fetchone()
    if found is None:
        return ChainHead(0, GENESIS, 0)
    last_id, digest = found
    if not isinstance(last_id, int) or not isinstance(digest, str):
        return ChainHead(0, MALFORMED, 0)  # changed by hand: no record can follow it
    return ChainHead(last_id, digest, 0)


def head(db: sqlite3.Connection) -> ChainHead:
    """The chain's head as stored now (one count of the records: at start only)."""
    rows = int(db.execute("SELECT count(*) FROM audit").fetchone()[0])
    last = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    if last is None:
        return anchor(db)
    return ChainHead(int(last[0]), str(last[1]), rows)


def append(db: sqlite3.Connection, at: float, actor: str, event: str,
           action_id: int | None, incident_id: int | None, detail: str,
           rows_before: int) -> ChainHead:
    """Insert one record, chained to the newest (inside the caller's transaction, which
    must hold the write lock: BEGIN IMMEDIATE); the new head."""
    last = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    before = ChainHead(int(last[0]), str(last[1]), 0) if last is not None else anchor(db)
    seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
    row_id = max(before.id, int(seq[0]) if seq is not None else 0) + 1  # never an id again
    digest = record_hash(before.hash, row_id, at, actor, event, action_id, incident_id, detail)
    db.execute("INSERT INTO audit (id, at, actor, event, action_id, incident_id, detail, prev, "
               "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (row_id, float(at), actor, event, action_id, incident_id, detail, before.hash,
                digest))
    return ChainHead(row_id, digest, rows_before + 1)


def trim(db: sqlite3.Connection, edge: float, keep: int) -> int:
    """Remove the oldest records: those before the first one written at or after
    ``edge``, and those beyond the newest ``keep``; never one after a record that stays
    (a clock stepped back cannot cut a hole in the chain).  The last one removed
    becomes the anchor.  Inside the caller's write transaction; how many went."""
    beyond = db.execute("SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?",
                        (keep,)).fetchone()
    young = db.execute("SELECT min(id) FROM audit WHERE at >= ?", (edge,)).fetchone()[0]
    if young is None:  # every record is older than the edge
        young = int(db.execute("SELECT coalesce(max(id), 0) FROM audit").fetchone()[0]) + 1
    cut = max(int(beyond[0]) if beyond is not None else 0, int(young) - 1)
    last = db.execute("SELECT id, hash FROM audit WHERE id <= ? ORDER BY id DESC LIMIT 1",
                      (cut,)).fetchone()
    if last is None:
        return 0
    db.execute("UPDATE audit_anchor SET last_id = ?, hash = ? WHERE id = 1",
               (int(last[0]), last[1]))
    return int(db.execute("DELETE FROM audit WHERE id <= ?", (int(last[0]),)).rowcount)


def verify(db: sqlite3.Connection) -> Verdict:
    """Walk the chain from its anchor, oldest first (one record in memory at a time)."""
    start = anchor(db)
    expected, last_id, rows, first = start.hash, start.id, 0, None
    cursor = db.execute("SELECT id, at, actor, event, action_id, incident_id, detail, prev, "
                        "hash FROM audit ORDER BY id")
    for row_id, at, actor, event, action_id, incident_id, detail, prev, digest in cursor:
        problem = _problem(row_id, last_id, start, expected, prev, digest,
                           (at, actor, event, action_id, incident_id, detail))
        if problem is not None:
            cursor.close()
            return Verdict(rows, ChainHead(last_id, expected, rows), start, row_id, problem,
                           first)
        expected, last_id, rows = digest, row_id, rows + 1
        first = row_id if first is None else first
    return Verdict(rows, ChainHead(last_id, expected, rows), start, first_id=first)


def _problem(row_id: int, last_id: int, start: ChainHead, expected: str, prev: str | None,
             digest: str | None, content: tuple[Any, ...]) -> str | None:
    """Why record ``row_id`` does not continue the chain, or None."""
    if digest is None or prev is None:
        return "it has no hash: linnix did not write it"
    if row_id <= start.id:
        return (f"it comes before the anchor retention left (#{start.id}): it was inserted "
                "after the oldest records were trimmed")
    if prev != expected:
        after = f"the record before it (#{last_id})" if last_id != start.id else (
            "the start of the chain" if start.hash == GENESIS else
            f"the anchor retention left (#{start.id})")
        return (f"it does not follow {after}: records between them were removed, or it "
                "was inserted")
    try:
        again = record_hash(prev, row_id, *content)
    except (TypeError, ValueError):  # a value of a type linnix never writes there
        again = None
    if again != digest:
        return "its content does not give its hash: it was changed after it was written"
    return None
