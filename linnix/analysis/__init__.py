"""Incident analysis: the built-in analyst (offline, deterministic) and its renderings.

:mod:`.facts` turns a stored incident into numbered facts, :mod:`.render` says
them as text and Markdown; :func:`analyze_stored` looks up what the facts need
in the store (synchronously: the runtime calls it on a worker thread);
:func:`analyze_file` does the same reading a state database only (``linnix analyze``).
:mod:`.model` builds what a model backend is asked about the facts and judges
its answer (the runtime does the network: :mod:`linnix.runtime.modelclient`);
:mod:`.modeltext` says the model's part after the facts.  Nothing here
proposes, approves or changes an action: an analysis is only ever stored and
shown (``tests/test_layering.py`` checks that no analyst module reaches the
actions).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..actions.store import Store
from ..errors import StoreError
from .facts import ANALYST, VERSION, analyze
from .render import markdown, md_code, md_escape, text

__all__ = ["ANALYST", "SINCE_SCHEMA", "VERSION", "WINDOW_S", "analyze", "analyze_file",
           "analyze_stored", "markdown", "md_code", "md_escape", "text"]

WINDOW_S = 60.0  # other incidents this long before the condition held, or after it fired
ID_MAX = 2**63 - 1  # SQLite's largest integer
SINCE_SCHEMA = 4  # the store's schema version from which incidents keep what facts read


def analyze_stored(store: Store, incident_id: int) -> dict[str, Any] | None:
    """The analysis of a stored incident (None: there is no such incident)."""
    incident = store.incident(incident_id)
    if incident is None:
        return None
    earlier = store.earlier_incidents(incident["rule"], incident_id)
    opened = float(incident["opened_at"])
    history = incident.get("history") or []
    held = 0.0
    if len(history) > 1 and all(isinstance(h.get("ts"), (int, float))
                                for h in (history[0], history[-1])):
        held = max(0.0, history[-1]["ts"] - history[0]["ts"])
    until = incident.get("resolved_at") or opened + WINDOW_S
    nearby = store.incidents_between(opened - held - WINDOW_S, float(until), but=incident_id)
    return analyze(incident, earlier, nearby)


def analyze_file(path: str, incident_id: int, busy_s: float = 5.0) -> dict[str, Any] | None:
    """:func:`analyze_stored` over the state database at ``path``, opened read-only (the
    daemon may be running) and read in one snapshot; nothing is written."""
    if incident_id > ID_MAX:  # SQLite could not even compare it
        return None
    store = Store.reader(path, SINCE_SCHEMA, busy_s)
    try:
        store.db.execute("BEGIN")  # the look-ups see one state of the database
        try:
            return analyze_stored(store, incident_id)
        finally:
            store.db.execute("COMMIT")
    except sqlite3.Error as err:  # locked past busy_s, or damaged
        raise StoreError(f"cannot read the state database {path}: {err}") from None
    finally:
        store.close()
