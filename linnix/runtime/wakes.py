"""Which processes the sampler reads at its next round, whatever their pace.

The sampler reads an idle process less and less often, and lists /proc only
now and then (:mod:`linnix.runtime.sources.pacing`).  A process an event
concerns has run, so it is read at the next round: a new one, one that
exec'd, forked, connected, accepted or listened, and the parent of each exit
(it is woken to reap its child).  A process that exits before the round is
not (there is nothing left to read: a fork loop's children never cost a
read).  So is every process a rule has an instance of (pending, firing or
cooling down): the rule is waiting for its values to change.

:class:`Wakes` notes them as the live engine takes in each batch, on the trio
thread; :meth:`Wakes.take`, on the same thread before a sample round, hands
them over and starts afresh.  The set is bounded: past :data:`WOKEN_MAX` pids
between two rounds (a fork storm), the next round reads every process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..engine import trace as t
from ..engine.core import Core
from ..engine.records import Proc
from .live import LiveEngine
from .sources.telemetry import Telemetry

__all__ = ["WOKEN_MAX", "Wakes", "wire"]

WOKEN_MAX = 65_536  # pids noted between two rounds at most; past it, every process
_CONCERNING = frozenset({t.Fork, t.Exec, t.Exit, t.Connect, t.Accept, t.Listen})


class Wakes:
    """The pids events concerned since the last round, and those rules watch."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.woken: set[int] = set()
        self.everyone = False  # more than WOKEN_MAX: every process at the next round
        self.ended: set[int] = set()  # the pids that exited (noted while fewer than WOKEN_MAX)

    def note(self, batch: Sequence[t.Event], procs: Mapping[int, Proc]) -> None:
        """The processes ``batch``'s events concern, looked up in ``procs`` (the table
        before it applies them: an exiting process's parent is still there)."""
        ended = self.ended if len(self.ended) < WOKEN_MAX else None
        if self.everyone:
            if ended is not None:
                ended.update(ev.pid for ev in batch if type(ev) is t.Exit)
            return
        woken = self.woken
        for ev in batch:
            cls = type(ev)
            if cls not in _CONCERNING:
                continue
            if cls is t.Exit:
                if ended is not None:
                    ended.add(ev.pid)  # type: ignore[union-attr]
                woken.discard(ev.pid)  # type: ignore[union-attr]
                p = procs.get(ev.pid)  # type: ignore[union-attr]
                if p is not None:
                    woken.add(p.ppid)
                continue
            woken.add(ev.pid)  # type: ignore[union-attr]
            if cls is t.Fork:
                woken.add(ev.ppid)  # type: ignore[union-attr]
        if len(woken) > WOKEN_MAX:  # bounded: too many to name is every process
            woken.clear()
            self.everyone = True

    def take_ended(self) -> set[int]:
        """The pids that exited since the last call (the sampler forgets them, and what
        their parents' reads count of them again)."""
        ended, self.ended = self.ended, set()
        return ended

    def take(self) -> set[int] | None:
        """The pids to read at the next round (None: every process); noting starts afresh."""
        woken, everyone = self.woken, self.everyone
        self.woken, self.everyone = set(), False
        if everyone:
            return None
        for state in self.core.evaluator.rules:  # a rule waits for these to change
            woken.update(key.pid for key in state.instances if type(key) is Proc)
        return woken


def wire(engine: LiveEngine, telemetry: Telemetry) -> Wakes | None:
    """Let ``telemetry`` wake what ``engine``'s batches concern, when it paces idle
    processes (else nothing is noted: every process is read at every round anyway)."""
    if not telemetry.procs.pacing.on:
        return None
    engine.wakes = wakes = Wakes(engine.core)
    telemetry.wake, telemetry.ended = wakes.take, wakes.take_ended
    return wakes
