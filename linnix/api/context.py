"""What the HTTP API may read and do in the daemon: one small protocol.

The API (``linnix/api/app.py``) only ever talks to a :class:`DaemonView`;
the daemon implements it over its live engine, and tests implement it with
fakes.  Records are plain JSON-ready dicts.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..actions import ActionManager
from ..actions.store import AsyncStore

__all__ = ["DaemonView", "Json"]

Json = dict[str, Any]


class DaemonView(Protocol):
    """The daemon as the API sees it."""

    store: AsyncStore  # incidents, actions (read), audit
    actions: ActionManager  # approve / reject
    hub: Any  # linnix.api.stream.StreamHub: publish(kind, data), subscribe(last_id)
    registry: Any  # prometheus_client.CollectorRegistry with every linnix metric

    def ready(self) -> tuple[bool, str]:
        """(True, source name) once the event source is attached; else (False, why not)."""

    async def processes(self) -> list[Json]:
        """Live processes: pid, ppid, comm, exe, cmdline, uid, start, age_s, cpu_pct,
        rss_mb, fds, fd_limit, fd_pct, threads, children (count).  Asynchronous: a
        command line may have to be read from /proc."""

    async def process(self, pid: int) -> Json | None:
        """One live process (same fields), or None."""

    async def graph(self, pid: int) -> Json | None:
        """{"process": {...}, "ancestors": [{...}, ...] nearest first,
        "subtree": {...process fields..., "subtree_cpu_pct", "subtree_rss_mb",
        "subtree_fds" (each null when no member was measured), "subtree_procs",
        "children": [ ...same shape... ]}, "truncated": bool}."""

    def alerts(self) -> list[Json]:
        """Active instances: rule, state (pending|firing), incident_id (a firing one's
        incident once stored, else None), since (engine ts), severity, scope, pid, comm,
        start, message, labels, values."""

    def alert_history(self, limit: int) -> list[Json]:
        """The most recent alert transitions and proposals (replay's JSONL objects),
        newest last; a firing or resolved transition has ``incident_id`` once the
        incident it opened or resolved is stored."""

    def rules(self) -> list[Json]:
        """Loaded rules: name, path, line, scope, severity, enabled, tags, condition,
        for_s, actions, and counts {"pending": n, "firing": n}."""

    async def reload(self, actor: str, note: str | None = None) -> tuple[bool, list[Json]]:
        """Rebuild the rules all-or-nothing; (accepted, diagnostics as JSON objects).
        ``actor`` (a token's name) and ``note`` go to the audit log."""

    async def ask_model(self, incident_id: int) -> bool:
        """Queue the incident for the model of ``[analysis]``, in the background; False
        when no model is configured, or its queue is full (nothing is queued)."""
