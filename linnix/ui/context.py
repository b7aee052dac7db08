"""What the dashboard reads from the daemon: the API's view and a few more reads.

:class:`DashboardView` is the API's :class:`~linnix.api.context.DaemonView`
with what only the dashboard needs; the daemon implements it in
``linnix/runtime/view.py`` and the tests with fakes.
"""

from __future__ import annotations

from typing import Protocol

from ..api.context import DaemonView, Json

__all__ = ["DashboardView"]


class DashboardView(DaemonView, Protocol):
    """The daemon as the dashboard sees it."""

    def dashboard_status(self) -> Json:
        """mode ("monitor" or "enforce"), source (the capture source's name, or None),
        events and lost (counts since the start, None when not measured), processes
        (live now), rules (loaded and active), paused (``actions.pause.status_json``)."""

    def host_history(self) -> Json:
        """The host ring's columns: ``t`` (Unix seconds) and one list per series
        (``runtime.hostring.SERIES``), a value not measured as None."""

    def process_table(self) -> list[Json]:
        """Every live process as the engine's table has it now, read at once and without
        reading /proc (cheap enough for each request of the process tree): ``pid``,
        ``ppid``, ``comm``, ``uid``, ``user``, ``unit``, ``container``, ``cpu_pct``,
        ``rss_mb``, ``fds``; each None when not known or not measured.  The same list
        may be handed out again while the table has not changed: read it, never
        change it."""

    def process_history(self, pid: int) -> Json | None:
        """The live process's recent samples for its charts: ``t`` (Unix seconds),
        ``cpu_pct``, ``rss_mb`` and ``fds``, one list each, a value not measured as
        None; None when no live process has ``pid``."""

    def rule_source(self, name: str) -> Json | None:
        """A loaded rule as written: ``name``, ``path``, ``line``, ``source`` (the rule's
        text, from ``rule`` to its closing brace, as its file was read when the running
        rules were built: an edited file shows at the next reload; None if not known)
        and ``explain`` (what ``linnix explain`` says of it); None when no loaded rule
        has that name."""

    def last_firings(self) -> Json:
        """By rule name, its newest firing since the daemon started: ``time`` (RFC 3339),
        ``ts``, ``pid``, ``comm`` and ``start`` (None but for a process rule's),
        ``cgroup`` (a cgroup rule's), ``severity``, ``message``; a rule that has not
        fired since the start is absent."""
