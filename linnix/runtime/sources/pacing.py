"""Which processes a sample round reads: every busy one, the idle ones less and less often.

Most processes on a host sleep: their CPU time, memory, descriptors and
threads stay what they were, round after round, and reading them again
costs the sampler most of its time.  :class:`Pacing` keeps, for each
process, how many reads in a row found nothing changed; after
:data:`QUIET_READS` of them the process is read only every 2, 4, 8 ...
rounds, never fewer than once in ``max_gap`` rounds.  A read that finds
something changed brings it back to every round, and so does a wake (an
event concerned the process, or a rule watches it): it is read at the
next round.

Skipping a read loses nothing while the process stays idle: its last
sample (a CPU share of 0, the same memory, descriptors and threads) is what
every skipped read would have said.  What a skip could cost is time: a
process that becomes busy with no event would be seen up to ``max_gap``
rounds late.  The host says when that happens: each round the sampler reads
the host's busy CPU time and used memory anyway, and what the processes read
at the round used since their previous read (with the children each waited for
meanwhile, less what those children's own reads counted) accounts for nearly
all of it.
When the host used more than they account for (:func:`woken`: over
:data:`WAKE_CPU` of one CPU, or :data:`WAKE_MEM_KB` more memory), some
process not read woke up, and every process is read at once
(:meth:`Pacing.rest`).  A false alarm (a child not waited for yet,
interrupts the kernel counts apart) costs a round as it was before pacing,
never a late sample.

A round then costs what its reads cost, not what the host's processes
number: /proc is listed only every ``max_gap`` rounds (to find what no
event announced, and forget what left unannounced); in between, a new
process is read when an event names it (a wake), and a process is forgotten
when its read finds it gone.  With ``max_gap`` 1 every round lists /proc
and reads every process in it.

Pure bookkeeping, no I/O: the sampler (:mod:`.telemetry`) keeps what it
needs of each process in its :class:`Seen` record, lists /proc when
:meth:`Pacing.lists` says so, asks :meth:`Pacing.due` which pids to read,
and tells :meth:`Pacing.found` what each read found.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from typing import NamedTuple

__all__ = ["QUIET_READS", "WAKE_CPU", "WAKE_MEM_KB", "Pacing", "Seen", "Usage",
           "rounds_between", "woken"]

QUIET_READS = 3  # reads in a row finding nothing changed before a process is read less often
# CPU (share of one CPU over a round) and memory growth (kB a round) the host used beyond
# what the processes read at the round account for, past which some process not read woke:
# above the noise of an idle host (the clock-tick rounding of each read, a few ticks a
# round), far below the busy process a CPU rule watches (bench/RESULTS.md measures both)
WAKE_CPU = 0.05
WAKE_MEM_KB = 16 * 1024.0
_NOTHING = object()  # what a process not read yet was found to be: unlike any values


class Seen:
    """What the sampler keeps of one process between its reads."""

    __slots__ = ("at", "child_ticks", "due", "limit", "limit_at", "quiet", "rss_kb", "start",
                 "ticks", "values")

    def __init__(self, start: int) -> None:
        self.start = start  # clock ticks since boot: the same pid later is another process
        self.ticks: int | None = None  # CPU time (clock ticks) at the last read ...
        self.at = 0.0  # ... and when (seconds on the sampler's clock)
        self.child_ticks = 0  # CPU time of the children it had waited for, at the last read
        self.rss_kb = 0.0  # resident memory at the last read
        self.limit: int | None = None  # its soft limit on descriptors ...
        self.limit_at: float | None = None  # ... and when it was read (None: never)
        self.values: Hashable = _NOTHING  # what the last read found
        self.quiet = 0  # reads in a row that found the same
        self.due = 0  # the round of its next read


class Usage(NamedTuple):
    """CPU time (seconds, every CPU together) and the change of used memory (kB) over a
    round: the host's, or what the processes read at it used since their previous read.
    None: not known."""

    cpu_s: float | None
    mem_kb: float | None


def woken(host: Usage, read: Usage, span_s: float) -> str | None:
    """Why some process not read at a round ``span_s`` long must have woken: ``"cpu"``
    or ``"memory"`` when the ``host`` used more than the processes ``read`` account for,
    by more than :data:`WAKE_CPU` or :data:`WAKE_MEM_KB`; None when they account for it
    (or nothing is known)."""
    if host.cpu_s is not None and read.cpu_s is not None and span_s > 0 \
            and host.cpu_s - read.cpu_s > WAKE_CPU * span_s:
        return "cpu"
    if host.mem_kb is not None and read.mem_kb is not None \
            and host.mem_kb - read.mem_kb > WAKE_MEM_KB:
        return "memory"
    return None


def rounds_between(longest_s: float, interval_s: float) -> int:
    """The most rounds between two reads of an idle process: ``longest_s`` (the longest
    time allowed between them) in whole sample intervals, at least 1 (every round)."""
    if interval_s <= 0 or longest_s <= interval_s:
        return 1
    return max(1, int(longest_s / interval_s + 1e-9))


class Pacing:
    """Each process's record and next round.  ``max_gap`` 1: every process every round."""

    def __init__(self, max_gap: int = 1, quiet_reads: int = QUIET_READS) -> None:
        self.max_gap = max(1, max_gap)
        self.quiet_reads = quiet_reads
        self.round = 0
        self.skipped = 0  # reads skipped so far, all rounds (of the processes known then)
        self.seen: dict[int, Seen] = {}
        self._due: dict[int, list[int]] = {}  # round -> pids due then (stale ones skipped)
        self._listed_at: int | None = None  # the round at which /proc was last listed
        self._forget = False
        self._now: set[int] = set()  # the pids read at this round

    @property
    def on(self) -> bool:
        return self.max_gap > 1

    def forget(self) -> None:
        """Every process is read at the next round, and paced afresh from there (what is
        read may have changed).  Safe to call while a round runs in another thread: the
        next round does the forgetting."""
        self._forget = True

    def lists(self, wake: Collection[int] | None) -> bool:
        """Whether the coming round lists /proc (and reads what it finds there)."""
        return (not self.on or wake is None or self._forget or self._listed_at is None
                or self.round + 1 - self._listed_at >= self.max_gap)

    def due(self, listed: list[int] | None, wake: Collection[int] | None = ()) -> list[int]:
        """Start a round: the pids to read, in order.  ``listed``: the processes in /proc
        now, when :meth:`lists` said to list them (else None); ``wake``: processes to read
        whatever their pace, each then read every round until it is quiet again (a pid
        not known is read: it is new); None: every process (too many to name)."""
        self.round += 1
        if self._forget:
            self._forget = False
            self.seen, self._due = {}, {}
        if listed is not None:
            self._listed_at = self.round
            if not self.on:
                self._keep(listed)
                return listed
        bucket = self._due.pop(self.round, [])
        out = set(self._keep(listed) if listed is not None else ())
        seen, r = self.seen, self.round
        out.update(pid for pid in bucket if (s := seen.get(pid)) is not None and s.due == r)
        if wake is None:
            out.update(seen)
        else:
            for pid in wake:
                s = seen.get(pid)
                if s is not None:
                    s.quiet = 0
                out.add(pid)
        self.skipped += len(seen) - len(out & seen.keys())
        self._now = out
        return sorted(out)

    def rest(self, listed: list[int]) -> list[int]:
        """The processes in ``listed`` (/proc now) not read at this round yet, to read at
        once (some process woke: :func:`woken`); those not listed are forgotten."""
        self._listed_at = self.round
        now = self._now
        out = set(self._keep(listed)) - now
        known = [pid for pid in self.seen if pid not in now]
        self.skipped -= len(known)
        out.update(known)
        now.update(out)
        return sorted(out)

    def _keep(self, listed: list[int]) -> list[int]:
        """Forget the processes not listed; the listed ones not known yet (to be read)."""
        seen = self.seen
        kept = self.seen = {pid: s for pid in listed if (s := seen.get(pid)) is not None}
        return [pid for pid in listed if pid not in kept]

    def record(self, pid: int, start: int) -> Seen:
        """The record of the process ``pid`` that started at ``start`` (a new one if the
        pid was another process's)."""
        s = self.seen.get(pid)
        if s is None or s.start != start:
            s = self.seen[pid] = Seen(start)
        return s

    def found(self, pid: int, s: Seen, values: Hashable) -> None:
        """What this round's read of ``pid`` (whose record is ``s``) found: ``values``,
        anything comparable; the process's next round follows from it."""
        if s.values == values:
            s.quiet += 1
        else:
            s.values, s.quiet = values, 0
        if not self.on:
            return
        s.due = due = self.round + self.gap(s.quiet)
        self._due.setdefault(due, []).append(pid)

    def gone(self, pid: int) -> Seen | None:
        """The process ``pid`` is gone (its read found nothing, or its exit was reported):
        forget it; its record, if it had one."""
        return self.seen.pop(pid, None)

    def gap(self, quiet: int) -> int:
        """Rounds to the next read after ``quiet`` reads in a row found nothing changed."""
        if quiet < self.quiet_reads:
            return 1
        return min(self.max_gap, 1 << min(quiet - self.quiet_reads + 1, 16))

    def pace(self, pid: int) -> int | None:
        """Rounds between the reads of ``pid`` now (None: not known)."""
        s = self.seen.get(pid)
        return None if s is None else self.gap(s.quiet)
