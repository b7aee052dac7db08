"""The ``analyze`` action: incidents analysed in the background, never in the way.

The responder hands an incident's id over (:meth:`Analyses.submit`) once the
incident and its actions are stored; ``concurrency`` tasks take them from a
bounded queue and run the built-in analyst on a worker thread, one at a time,
for at most ``timeout_s``.  With a model backend (:mod:`.modelclient`), the
built-in analysis is stored at once, marked as waiting for the model, and
then again with the model's part beside it, whatever the model did.  Whatever
happens (a full queue, an analyst that fails or takes too long, a model that
fails, stalls or is held back by its breaker) is written on the incident and
counted by backend and outcome (:attr:`Analyses.outcomes`); nothing is raised,
so alerts and actions go on as if no analysis had been asked for.  The
analyst reads the store only: its result is stored and shown, and never
reaches the action manager.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import trio

from ..actions.store import AsyncStore, Store
from ..analysis import analyze_stored
from ..analysis.model import BACKEND
from .modelclient import ModelClient

__all__ = ["QUEUE_MAX", "TIMEOUT_S", "Analyses", "analyses_for"]

QUEUE_MAX = 32  # incidents waiting for their analysis
TIMEOUT_S = 10.0  # for one analysis (the built-in one takes milliseconds)

Analyst = Callable[[Store, int], dict[str, Any] | None]


class Analyses:
    """A bounded queue of incidents to analyse and the task that works through it."""

    def __init__(self, store: AsyncStore, analyst: Analyst = analyze_stored,
                 queue_max: int = QUEUE_MAX, timeout_s: float = TIMEOUT_S,
                 on_problem: Callable[[str], None] = lambda message: None,
                 model: ModelClient | None = None, concurrency: int = 1) -> None:
        self.store = store
        self.analyst = analyst
        self.timeout_s = timeout_s
        self.on_problem = on_problem
        self.model = model  # None: the built-in analyst only, and no connection ever
        self.concurrency = concurrency
        self.done = 0  # analyses (or their errors) stored
        self.failed = 0  # analyses that could not be made (their error is stored)
        # (backend, outcome) -> how many: builtin ok|failed|dropped; openai: OUTCOMES
        self.outcomes: dict[tuple[str, str], int] = {}
        self.dropped_hypotheses = 0  # the model's hypotheses citing no fact, or unknown ones
        self._send, self._receive = trio.open_memory_channel[int](queue_max)
        self._limiter = trio.CapacityLimiter(1)

    async def submit(self, incident_id: int) -> None:
        """Queue an incident; if the queue is full, say so on the incident at once."""
        if not self.queue(incident_id):
            self._count("builtin", "dropped")
            await self._record(incident_id, None, "not analysed: too many analyses were "
                               "waiting already")

    def queue(self, incident_id: int) -> bool:
        """Queue an incident if there is room (False: the queue is full)."""
        try:
            self._send.send_nowait(incident_id)
        except trio.WouldBlock:
            return False
        return True

    async def run(self) -> None:
        """Analyse queued incidents until cancelled, ``concurrency`` at a time."""
        async with trio.open_nursery() as nursery:
            for _ in range(self.concurrency):
                nursery.start_soon(self._work)

    async def _work(self) -> None:
        async for incident_id in self._receive:
            analysis, error = await self._analyse(incident_id)
            self._count("builtin", "failed" if analysis is None else "ok")
            if analysis is None or self.model is None:
                await self._record(incident_id, analysis, error)
                continue
            waiting = {"backend": BACKEND, "model": self.model.model, "pending": True}
            await self._record(incident_id, {**analysis, "model": waiting}, None)
            part, outcome = await self.model.ask(analysis)
            self._count(BACKEND, outcome)
            self.dropped_hypotheses += part.get("dropped", 0)
            await self._record(incident_id, {**analysis, "model": part}, None)

    def _count(self, backend: str, outcome: str) -> None:
        key = (backend, outcome)
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    async def _analyse(self, incident_id: int) -> tuple[dict[str, Any] | None, str | None]:
        store = self.store.store
        with trio.move_on_after(self.timeout_s):
            try:
                result = await trio.to_thread.run_sync(
                    self.analyst, store, incident_id, limiter=self._limiter,
                    abandon_on_cancel=True)
            except Exception as err:  # an analyst's failure is the incident's, not ours
                return None, f"the analyst failed: {type(err).__name__}: {err}"
            if result is None:
                return None, "the incident is not in the store"
            return result, None
        return None, f"the analysis took longer than {self.timeout_s:g}s"

    async def _record(self, incident_id: int, analysis: dict[str, Any] | None,
                      error: str | None) -> None:
        if error is not None:
            self.failed += 1
        try:
            await self.store.save_analysis(incident_id, analysis, error)
        except (sqlite3.Error, OSError) as err:
            self.on_problem(f"cannot store the analysis of incident {incident_id}: {err}")
            return
        self.done += 1


def analyses_for(config: Any, store: AsyncStore,
                 on_problem: Callable[[str], None]) -> Analyses:
    """The analyses ``[analysis]`` asks for (``config``: its AnalysisConfig)."""
    model = ModelClient(config) if config.backend == BACKEND else None
    return Analyses(store, queue_max=config.queue_size, on_problem=on_problem, model=model,
                    concurrency=config.concurrency if model is not None else 1)
