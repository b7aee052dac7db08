"""Incidents, actions and the audit log, in SQLite.

One database file in the state directory, in WAL mode with full synchronous
commits: every change is committed before it is acknowledged, so a SIGKILLed
daemon loses nothing it reported.  The audit table is append-only (a trigger
refuses updates), chained by hashes (:mod:`.chain`); only retention deletes
from it, oldest records first.

A change and its audit record are one transaction: an incident opened or
resolved, an action proposed or moved to another status is stored together
with the audit record that says so, or not at all (a full disk), so nothing
is in the store that its owner does not know about.

:class:`Store` is synchronous; :class:`AsyncStore` runs each call on one
worker thread at a time (``trio.to_thread`` with a limiter of one), so the
trio thread never blocks on the disk.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from ..engine.trail import TRAIL_MAX, thin
from ..errors import StoreError
from ..timefmt import rfc3339
from . import chain
from .database import open_database, open_reader

__all__ = ["ACTION_STATES", "AsyncStore", "Entry", "Store", "TERMINAL_STATES"]

T = TypeVar("T")

ACTION_STATES = ("pending", "approved", "executing", "succeeded", "failed", "rejected",
                 "expired", "refused", "recorded")
TERMINAL_STATES = frozenset({"succeeded", "failed", "rejected", "expired", "refused",
                             "recorded"})

_AUDIT_COLUMNS = "id, at, actor, event, action_id, incident_id, detail"  # as the API shows it
_JSON_COLUMNS = {"labels", "history", "subtree", "host", "params", "detail", "result",
                 "context", "analysis", "trail"}


# an incident's or an action's ``time``: when it began (opened, proposed), in RFC 3339
_BEGAN = ("opened_at", "created_at")


def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    for key in _JSON_COLUMNS & out.keys():
        if out[key] is not None:
            out[key] = json.loads(out[key])
    began = next((out[key] for key in _BEGAN if out.get(key) is not None), None)
    if began is not None:
        out["time"] = rfc3339(began)
    return out


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


@attrs.frozen
class Entry:
    """An audit record written together with the change it records."""

    actor: str
    event: str
    detail: Mapping[str, object] = attrs.field(factory=dict)
    incident_id: int | None = None


class Store:
    """Synchronous access to the database (one connection, guarded by a lock)."""

    # for the operator, once: the daemon says it (the audit log says it too)
    notice: str | None

    def __init__(self, path: str, clock: Callable[[], float] = time.time) -> None:
        db, emptied = open_database(path, clock)
        self._attach(path, clock, db)
        if emptied:
            self.notice = (f"the state database {path} was an empty file: the incidents, "
                           "actions and audit log it held are gone; starting with an empty "
                           "database")
            self.audit("linnix", "store.emptied", path=path)

    @classmethod
    def reader(cls, path: str, since: int, busy_s: float = 5.0) -> Store:
        """A store that can only read ``path`` (of schema version ``since`` or later), beside
        a running daemon or after it: :func:`.database.open_reader`.  Its queries raise
        :class:`sqlite3.Error` like any store's; writing through it fails."""
        store = cls.__new__(cls)
        db = open_reader(path, since, busy_s)
        try:
            store._attach(path, time.time, db)
        except sqlite3.Error as err:
            db.close()
            raise StoreError(f"cannot read the state database {path}: {err}") from None
        return store

    def _attach(self, path: str, clock: Callable[[], float], db: sqlite3.Connection) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self.db = db
        self._head = chain.head(self.db)  # as of the last commit (read by /metrics)
        self._staged: chain.ChainHead | None = None  # the head once this transaction commits
        self.notice = None

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: what is written inside it is committed together, or not at
        all.  IMMEDIATE: the database's write lock is taken at once, so another
        connection cannot slip a change in between what is read and what is written."""
        with self._lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            self._staged = None
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # the first error says more
                        db.execute("ROLLBACK")
                raise
            finally:
                staged, self._staged = self._staged, None
            if staged is not None:
                self._head = staged

    @property
    def chain_head(self) -> chain.ChainHead:
        """The audit chain's head as of the last commit (no I/O: safe from any thread)."""
        return self._head

    def verify_chain(self) -> chain.Verdict:
        """Check the whole audit chain, in one read transaction."""
        with self._lock:
            self.db.execute("BEGIN")
            try:
                return chain.verify(self.db)
            finally:
                self.db.execute("COMMIT")

    def _one(self, sql: str, args: tuple[object, ...] = ()) -> dict[str, Any] | None:
        with self._lock:
            return _row(self.db.execute(sql, args).fetchone())

    def _newest(self, columns: str, table: str, equal: Mapping[str, object | None], *,
                before: int | None, limit: int,
                also: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Rows of ``table``, newest first, at most ``limit``, with ids below ``before``:
        each column of ``equal`` whose value is not None must hold it; ``also`` adds
        conditions of its own."""
        clauses, args = list(also), []
        for column, value in equal.items():
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if before is not None:
            clauses.append("id < ?")
            args.append(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._all(f"SELECT {columns} FROM {table} {where} ORDER BY id DESC LIMIT ?",
                         (*args, limit))

    def _all(self, sql: str, args: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in (_row(x) for x in self.db.execute(sql, args)) if r is not None]

    # ---- audit -----------------------------------------------------------------------
    def audit(self, actor: str, event: str, *, action_id: int | None = None,
              incident_id: int | None = None, **detail: object) -> int:
        """Append one audit record; returns its id."""
        with self._write() as db:
            return self._append(db, Entry(actor, event, detail, incident_id), action_id)

    def _append(self, db: sqlite3.Connection, entry: Entry, action_id: int | None) -> int:
        """Append ``entry``, chained, inside the caller's transaction; its id."""
        before = self._staged or self._head
        self._staged = chain.append(db, self.clock(), entry.actor, entry.event, action_id,
                                    entry.incident_id, _dump(entry.detail), before.rows)
        return self._staged.id

    def audit_log(self, *, limit: int = 100, before: int | None = None,
                  action_id: int | None = None, event: str | None = None,
                  actor: str | None = None) -> list[dict[str, Any]]:
        """Records newest first, those with an id below ``before``; each filter given
        (the action, the event, who: ``actor``) must match exactly."""
        return self._newest(_AUDIT_COLUMNS, "audit",
                            {"event": event, "action_id": action_id, "actor": actor},
                            before=before, limit=limit)

    # ---- incidents -------------------------------------------------------------------
    def open_incident(self, *, rule: str, severity: str, scope: str, pid: int | None,
                      comm: str | None, start: float | None, message: str,
                      labels: Mapping[str, str], history: list[object],
                      subtree: list[object], host: Mapping[str, object],
                      context: Mapping[str, object] | None = None) -> int:
        with self._write() as db:
            incident = int(db.execute(
                "INSERT INTO incidents (rule, severity, scope, pid, comm, start, opened_at, "
                "message, labels, history, subtree, host, context) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rule, severity, scope, pid, comm, start, self.clock(), message, _dump(labels),
                 _dump(history), _dump(subtree), _dump(host),
                 _dump(context or {}))).lastrowid or 0)
            self._append(db, Entry("linnix", "incident.opened", {
                "rule": rule, "pid": pid, "comm": comm, "message": message}, incident), None)
        return incident

    def resolve_incident(self, incident_id: int, reason: str,
                         trail: Sequence[Mapping[str, Any]] = ()) -> None:
        """Resolve an open incident; ``trail``: the values its rule read while it was
        open (the points of :mod:`linnix.engine.trail`, each ``{"at": Unix time,
        "values": {...}}``), kept with what an earlier :meth:`keep_trails` saved
        before them."""
        with self._write() as db:
            if trail:
                self._keep_trail(db, incident_id, trail)
            self._resolve(db, incident_id, reason)

    def keep_trails(self, trails: Mapping[int, Sequence[Mapping[str, Any]]]) -> None:
        """Save the trails so far of incidents still open, in one transaction (a restart
        keeps what was saved: a trail begun again after it follows the saved points)."""
        with self._write() as db:
            for incident_id, trail in trails.items():
                if trail:
                    self._keep_trail(db, incident_id, trail)

    def _keep_trail(self, db: sqlite3.Connection, incident_id: int,
                    trail: Sequence[Mapping[str, Any]]) -> None:
        row = db.execute("SELECT trail FROM incidents WHERE id = ? AND resolved_at IS NULL",
                         (incident_id,)).fetchone()
        if row is None:
            return
        first = trail[0].get("at")
        before = [p for p in json.loads(row[0] or "[]") if isinstance(p, dict)
                  and isinstance(p.get("at"), (int, float)) and isinstance(first, (int, float))
                  and p["at"] < first]
        db.execute("UPDATE incidents SET trail = ? WHERE id = ?",
                   (_dump(thin([*before, *trail], TRAIL_MAX + 1)), incident_id))

    def _resolve(self, db: sqlite3.Connection, incident_id: int, reason: str) -> None:
        changed = db.execute(
            "UPDATE incidents SET resolved_at = ?, resolved_reason = ? "
            "WHERE id = ? AND resolved_at IS NULL",
            (self.clock(), reason, incident_id)).rowcount
        if changed:
            self._append(db, Entry("linnix", "incident.resolved", {"reason": reason},
                                   incident_id), None)

    def incident(self, incident_id: int) -> dict[str, Any] | None:
        found = self._one("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        if found is not None:
            found["actions"] = self._all("SELECT * FROM actions WHERE incident_id = ? "
                                         "ORDER BY id", (incident_id,))
            found["analysis"] = self.analysis(incident_id)
        return found

    # ---- analyses (linnix.analysis) ----------------------------------------------------
    def save_analysis(self, incident_id: int, analysis: Mapping[str, object] | None,
                      error: str | None = None) -> bool:
        """Keep an incident's analysis, or why there is none (replacing an earlier one);
        False if the incident is not there (any more)."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)).fetchone() \
                    is None:
                return False
            db.execute("INSERT OR REPLACE INTO analyses (incident_id, created_at, analysis, "
                       "error) VALUES (?,?,?,?)",
                       (incident_id, self.clock(),
                        None if analysis is None else _dump(analysis), error))
        return True

    def analysis(self, incident_id: int) -> dict[str, Any] | None:
        """{created_at, analysis, error} of an incident, or None: never analysed."""
        found = self._one("SELECT created_at, analysis, error FROM analyses "
                          "WHERE incident_id = ?", (incident_id,))
        if found is not None:
            found["time"] = rfc3339(found["created_at"])
        return found

    def analyses(self, *, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        """The incidents that have an analysis (or its error), newest incident first, with
        incident ids below ``before``: each one's summary, then its analysis (``time``:
        when the analysis was made).  By incident, not by when it was analysed, so that
        paging holds while an old incident is analysed again."""
        rows = self._all(
            "SELECT i.id AS incident_id, i.rule, i.severity, i.scope, i.pid, i.comm, "
            "i.opened_at, i.resolved_at, i.resolved_reason, i.message, a.created_at, "
            "a.analysis, a.error "
            "FROM analyses a JOIN incidents i ON i.id = a.incident_id "
            "WHERE a.incident_id < ? ORDER BY a.incident_id DESC LIMIT ?",
            (before if before is not None else 2**63 - 1, limit))
        for row in rows:
            row["time"] = rfc3339(row["created_at"])
        return rows

    def earlier_incidents(self, rule: str, before: int, limit: int = 50) -> list[dict[str, Any]]:
        """The incidents of ``rule`` opened before incident ``before``, newest first, with
        the executable of the process each was about (``exe``: the snapshot's root)."""
        return self._all(
            "SELECT id, rule, pid, comm, opened_at, resolved_at, message, "
            "json_extract(subtree, '$[0].exe') AS exe FROM incidents "
            "WHERE rule = ? AND id < ? ORDER BY id DESC LIMIT ?", (rule, before, limit))

    def incidents_between(self, since: float, until: float, limit: int = 20,
                          but: int | None = None) -> list[dict[str, Any]]:
        """Incidents opened from ``since`` to ``until`` (wall clock), oldest first."""
        return self._all(
            "SELECT id, rule, severity, pid, comm, opened_at, message FROM incidents "
            "WHERE opened_at >= ? AND opened_at <= ? AND id IS NOT ? ORDER BY id LIMIT ?",
            (since, until, but, limit))

    def incidents(self, *, open_only: bool = False, limit: int = 100,
                  before: int | None = None, rule: str | None = None,
                  severity: str | None = None) -> list[dict[str, Any]]:
        """Incidents, newest first, at most ``limit``, with ids below ``before``; only
        open ones, or only those of ``rule`` or of ``severity``, if asked.  (Retention
        bounds the table, so a filter that few rows match scans at most that many.)"""
        return self._newest("id, rule, severity, scope, pid, comm, opened_at, resolved_at, "
                            "resolved_reason, message", "incidents",
                            {"rule": rule, "severity": severity},
                            also=("resolved_at IS NULL",) if open_only else (),
                            before=before, limit=limit)

    def open_incidents(self) -> list[dict[str, Any]]:
        """Every incident still open: its id and the instance it is about."""
        return self._all("SELECT id, rule, pid, start FROM incidents WHERE resolved_at IS NULL "
                         "ORDER BY id")

    def close_open_incidents(self, reason: str, keep: Collection[int] = ()) -> int:
        """Resolve every incident still open but those in ``keep`` (after a restart: the
        incidents of instances restored firing); how many were resolved."""
        kept = set(keep)
        with self._write() as db:
            rows = [int(r[0]) for r in db.execute(
                "SELECT id FROM incidents WHERE resolved_at IS NULL")]
            rows = [incident for incident in rows if incident not in kept]
            for incident in rows:
                self._resolve(db, incident, reason)
        return len(rows)

    # ---- rule state --------------------------------------------------------------------
    def save_rule_state(self, data: bytes, saved_at: float) -> None:
        """Replace the saved rule state (:mod:`linnix.engine.persist`'s snapshot)."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO rule_state (id, saved_at, data) VALUES (1, ?, ?)",
                       (saved_at, data))

    def load_rule_state(self) -> object:
        """The saved rule state as it is stored (None: none), for the engine to judge."""
        with self._lock:
            row = self.db.execute("SELECT data FROM rule_state WHERE id = 1").fetchone()
        return None if row is None else row[0]

    # ---- actions -----------------------------------------------------------------------
    def add_action(self, *, incident_id: int | None, rule: str, kind: str,
                   params: Mapping[str, object], pid: int | None, start_ticks: int | None,
                   comm: str | None, exe: str | None, status: str, mode: str,
                   expires_at: float | None, reason: str | None = None,
                   audit: Sequence[Entry] = (), cgroup: str | None = None,
                   cgroup_id: int | None = None) -> int:
        """Insert an action and, in the same transaction, the ``audit`` records about it."""
        now = self.clock()
        with self._write() as db:
            action_id = int(db.execute(
                "INSERT INTO actions (incident_id, rule, kind, params, pid, start_ticks, comm, "
                "exe, status, mode, created_at, expires_at, reason, last_seen_at, cgroup, "
                "cgroup_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (incident_id, rule, kind, _dump(params), pid, start_ticks, comm, exe, status,
                 mode, now, expires_at, reason, now, cgroup, cgroup_id)).lastrowid or 0)
            for entry in audit:
                self._append(db, entry, action_id)
        return action_id

    def repeat_action(self, action_id: int, audit: Entry) -> bool:
        """Count one more firing for a pending action, now, audited in the same
        transaction; False if it is not pending any more."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE actions SET repeats = repeats + 1, last_seen_at = ? "
                "WHERE id = ? AND status = 'pending'", (self.clock(), action_id)).rowcount > 0
            if changed:
                self._append(db, audit, action_id)
        return changed

    def action(self, action_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM actions WHERE id = ?", (action_id,))

    def actions(self, *, status: str | None = None, pid: int | None = None, limit: int = 100,
                before: int | None = None) -> list[dict[str, Any]]:
        """Actions, newest first, at most ``limit``: those in ``status`` and those that
        targeted ``pid`` (any process that had it), when given."""
        return self._newest("*", "actions", {"status": status, "pid": pid}, before=before,
                            limit=limit)

    def transition(self, action_id: int, expect: str, status: str, *,
                   audit: Entry | None = None, **fields: object) -> bool:
        """Move an action from ``expect`` to ``status`` (atomically); False if it was not
        in ``expect`` any more.  ``fields`` set other columns (JSON-encoded when needed);
        ``audit`` is appended in the same transaction, when the action moved."""
        sets = ["status = ?"]
        args: list[object] = [status]
        for key, value in fields.items():
            sets.append(f"{key} = ?")
            args.append(_dump(value) if key in _JSON_COLUMNS else value)
        with self._write() as db:
            changed = db.execute(
                f"UPDATE actions SET {', '.join(sets)} WHERE id = ? AND status = ?",
                (*args, action_id, expect)).rowcount > 0
            if changed and audit is not None:
                self._append(db, audit, action_id)
        return changed

    # ---- freezes ----------------------------------------------------------------------
    def add_freeze(self, action_id: int, cgroup: str, cgroup_id: int, thaw_by: float,
                   audit: Entry) -> None:
        """Record that ``action_id`` froze the cgroup, to be thawed by ``thaw_by`` (wall)."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO freezes (action_id, cgroup, cgroup_id, "
                       "frozen_at, thaw_by) VALUES (?,?,?,?,?)",
                       (action_id, cgroup, cgroup_id, self.clock(), thaw_by))
            self._append(db, audit, action_id)

    def end_freeze(self, action_id: int, reason: str, audit: Entry) -> bool:
        """The freeze of ``action_id`` is over (thawed, or its cgroup gone), audited in the
        same transaction; False if it was over already."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE freezes SET thawed_at = ?, thaw_reason = ? "
                "WHERE action_id = ? AND thawed_at IS NULL",
                (self.clock(), reason, action_id)).rowcount > 0
            if changed:
                self._append(db, audit, action_id)
        return changed

    def freeze(self, action_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM freezes WHERE action_id = ?", (action_id,))

    def active_freezes(self) -> list[dict[str, Any]]:
        """Every freeze not undone yet, oldest first."""
        return self._all("SELECT * FROM freezes WHERE thawed_at IS NULL ORDER BY action_id")

    # ---- retention ---------------------------------------------------------------------
    def retain(self, *, max_age: float, max_incidents: int, max_audit: int) -> dict[str, int]:
        """Delete resolved incidents (and their finished actions) older than ``max_age``
        or beyond the newest ``max_incidents``; trim the audit log likewise, from its
        oldest record on (see :func:`.chain.trim`)."""
        edge = self.clock() - max_age
        removed = {"incidents": 0, "actions": 0, "audit": 0}
        with self._write() as db:
            old = [r[0] for r in db.execute(
                "SELECT id FROM incidents WHERE resolved_at IS NOT NULL AND (resolved_at < ?"
                " OR id NOT IN (SELECT id FROM incidents ORDER BY id DESC LIMIT ?))",
                (edge, max_incidents))]
            done = ",".join("?" * len(TERMINAL_STATES))
            for incident in old:
                removed["actions"] += db.execute(
                    f"DELETE FROM actions WHERE incident_id = ? AND status IN ({done})",
                    (incident, *TERMINAL_STATES)).rowcount
                removed["incidents"] += db.execute(
                    "DELETE FROM incidents WHERE id = ?", (incident,)).rowcount
            removed["audit"] = chain.trim(db, edge, max_audit)
            self._staged = chain.head(db)
        return removed


@attrs.define
class AsyncStore:
    """The store from trio: each call runs on a worker thread, one at a time."""

    store: Store
    _limiter: Any = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        import trio

        self._limiter = trio.CapacityLimiter(1)

    async def call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        import trio

        return await trio.to_thread.run_sync(lambda: fn(*args, **kwargs),
                                             limiter=self._limiter)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.store, name)

        async def call(*args: object, **kwargs: object) -> Any:
            return await self.call(method, *args, **kwargs)

        return call
