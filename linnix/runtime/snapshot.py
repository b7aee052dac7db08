"""What the API and incidents show of processes beyond the table's own fields.

Subtree totals (:class:`SubtreeTotals`) are computed when they are read, by
walking the subtree: the engine keeps its own totals only while a rule reads
them, and only of what the rules read, so those cannot be shown.  Each sum
covers the members that were measured; when none was, the total is None
(JSON null), never 0.

A command line the table does not know (after an exec, when no rule reads
``cmdline``, the live engine does not read it) is read from
``/proc/PID/cmdline`` by :func:`fill_cmdlines`: in worker threads, since a
process can make that read wait, for a bounded time and number of
processes, and only while the pid still belongs to the process the record is
about (its start time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import trio

from ..engine.proctable import Proc
from ..procfs import PROC, Clock, read_cmdline_of

__all__ = ["CMDLINE_READERS", "CMDLINE_READS_MAX", "CMDLINE_WAIT_S", "SubtreeTotals",
           "fill_cmdlines"]

CMDLINE_WAIT_S = 1.0  # how long an answer waits for command lines to be read
CMDLINE_READS_MAX = 1000  # command lines read for one answer at most
CMDLINE_READERS = 2  # threads reading them at most (one stuck read must not take more)

_MB = 1024.0
_Raw = tuple[int | None, int | None, int | None, int]  # milli-%, KiB, fds, processes


def _add(a: int | None, b: int | None) -> int | None:
    return a if b is None else b if a is None else a + b


def _own(p: Proc) -> _Raw:
    """A process's own values, in the integers the sums are kept in (as the engine does)."""
    return (None if p.cpu_pct is None else round(p.cpu_pct * 1000),
            None if p.rss_mb is None else round(p.rss_mb * _MB),
            p.fds, 1)


class SubtreeTotals:
    """Exact subtree totals of a table as it is now; each process is walked once.

    Build one per answer (or per batch of outputs) and drop it: it remembers
    what it computed and does not see later changes.
    """

    def __init__(self) -> None:
        self._memo: dict[Proc, _Raw] = {}

    def of(self, root: Proc) -> dict[str, Any]:
        """``subtree_cpu_pct``, ``subtree_rss_mb``, ``subtree_fds`` (None when no member
        was measured) and ``subtree_procs`` of ``root`` and its descendants."""
        cm, rk, fd, procs = self._raw(root)
        return {"subtree_cpu_pct": None if cm is None else cm / 1000.0,
                "subtree_rss_mb": None if rk is None else rk / _MB,
                "subtree_fds": fd, "subtree_procs": procs}

    def _raw(self, root: Proc) -> _Raw:
        memo = self._memo
        stack: list[tuple[Proc, bool]] = [(root, False)]
        while stack:  # children before parents, without recursion (trees may be deep)
            node, kids_done = stack.pop()
            if node in memo:
                continue
            if not kids_done:
                stack.append((node, True))
                stack.extend((kid, False) for kid in node.kids.values() if kid not in memo)
                continue
            cm, rk, fd, procs = _own(node)
            for kid in node.kids.values():
                kcm, krk, kfd, kprocs = memo[kid]
                cm, rk, fd, procs = _add(cm, kcm), _add(rk, krk), _add(fd, kfd), procs + kprocs
            memo[node] = (cm, rk, fd, procs)
        return memo[root]


async def fill_cmdlines(records: Iterable[dict[str, Any]], clock: Clock | None,
                        limiter: trio.CapacityLimiter, *, root: str = PROC,
                        wait: float = CMDLINE_WAIT_S,
                        at_most: int = CMDLINE_READS_MAX) -> None:
    """Fill in the unknown ``cmdline`` of process records from /proc, where it can be read.

    A record without a start time, or whose pid now belongs to another
    process, keeps None; so does every record still waiting when ``wait``
    has passed or when every reader is stuck.  Without ``clock`` (the
    daemon's, that start times are on) nothing is read.
    """
    if clock is None:
        return
    wanted: dict[tuple[int, float], list[dict[str, Any]]] = {}
    for rec in records:
        if rec.get("cmdline") is None and rec.get("start") is not None:
            key = (rec["pid"], rec["start"])
            if key in wanted or len(wanted) < at_most:
                wanted.setdefault(key, []).append(rec)
    if not wanted or not limiter.available_tokens:
        return
    found: dict[tuple[int, float], str] = {}  # filled by the thread as it goes
    with trio.move_on_after(wait):
        await trio.to_thread.run_sync(_read_all, list(wanted), clock, root, found,
                                      limiter=limiter, abandon_on_cancel=True)
    got = dict(found)  # a thread given up on may still add to ``found``
    for key, recs in wanted.items():
        text = got.get(key)
        if text is not None:
            for rec in recs:
                rec["cmdline"] = text


def _read_all(keys: list[tuple[int, float]], clock: Clock, root: str,
              found: dict[tuple[int, float], str]) -> None:
    """In a worker thread: each command line, noted as soon as it is read."""
    for key in keys:
        try:
            text = read_cmdline_of(key[0], key[1], clock, root)
        except OSError:  # whatever /proc answers, this process stays unknown
            continue
        if text is not None:
            found[key] = text
