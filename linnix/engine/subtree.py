"""Subtree totals and fork counts, handed up the process tree once per batch.

A change to a process (its cpu, rss or fds, a child joining or leaving, a
fork) counts for the process and every one of its ancestors.  Walking each
change up the chain when it happens is O(depth) per change: quadratic for a
deep chain whose every process is sampled, or which was built by forks.  The
table notes changes on the processes where they happen instead, and
:func:`upward` hands them all up at once: the processes on the chains above
the noted ones form a tree, and each hands its own change plus its
children's to its parent once all of those children have (Kahn's order,
leaves first).  That is O(processes on the changed chains), whatever the
number of changes and however deep the tree.

Forks are counted in a trailing second (``subtree_forks_per_sec``).  Each
fork leaves the count at a known moment, and forks noted in one batch leave
at no more than two or three distinct ticks, so a process's count is kept as
(moment it leaves, how many) pairs (:class:`~linnix.engine.windows.ExpiryCounts`)
and what is handed up per batch is a few pairs, not one timestamp per fork.
The moment is the first tick at which the rate window would have dropped the
fork (:meth:`~linnix.engine.idle.Grid.expiry`, the core's tick grid): counts
are exact at every tick, which is when the engine reads them.  A table with
no tick grid (one used on its own) uses the exact moment (:func:`exact_expiry`)
and is exact at any time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .windows import RATE_WINDOW_S, ExpiryCounts

if TYPE_CHECKING:
    from .proctable import Proc

__all__ = ["add_forks", "add_totals", "exact_expiry", "fork_counts", "upward"]

V = TypeVar("V")


def upward(noted: dict[Proc, V], apply: Callable[[Proc, V], None],
           merge: Callable[[V, V], V]) -> None:
    """Apply each noted change to its process and all its ancestors, each process once.

    ``noted`` is consumed.  A change handed up is applied before anything is
    merged into it.
    """
    waiting = _children_on_chains(noted)
    ready = [node for node, n in waiting.items() if n == 0]
    while ready:
        node = ready.pop()
        change = noted.pop(node)
        apply(node, change)
        parent = node.parent
        if parent is None:
            continue
        above = noted.get(parent)
        noted[parent] = change if above is None else merge(above, change)
        waiting[parent] -= 1
        if not waiting[parent]:
            ready.append(parent)


def _children_on_chains(noted: dict[Proc, V]) -> dict[Proc, int]:
    """Every process on the chains above ``noted`` ones: how many of its children are too.

    Each chain is walked only up to the first process already found, so the
    walk is linear in the number of processes found.
    """
    waiting: dict[Proc, int] = {}
    for start in noted:
        if start in waiting:
            continue
        waiting[start] = 0
        node = start.parent
        while node is not None:
            found = node in waiting
            waiting[node] = waiting.get(node, 0) + 1
            if found:
                break
            node = node.parent
    return waiting


# ---- totals: [milli-percent of cpu, KiB of rss, fds, processes] --------------------------

def add_totals(node: Proc, change: list[int]) -> None:
    dcm, drk, dfd, dprocs = change
    if dcm:
        node._sub_cm += dcm
        node.sub_cpu_pct = node._sub_cm / 1000.0
    if drk:
        node._sub_rk += drk
        node.sub_rss_mb = node._sub_rk / 1024.0
    if dfd:
        node._sub_fd += dfd
        node.sub_fds = node._sub_fd
    if dprocs:
        node.sub_procs += dprocs


def merge_totals(above: list[int], change: list[int]) -> list[int]:
    for i in range(4):
        above[i] += change[i]
    return above


# ---- forks: {moment they leave the count: how many} -------------------------------------

def fork_counts(stamps: list[float], expiry: Callable[[float], float]) -> dict[float, int]:
    counts: dict[float, int] = {}
    for ts in stamps:
        leaves = expiry(ts)
        counts[leaves] = counts.get(leaves, 0) + 1
    return counts


def add_forks(node: Proc, counts: dict[float, int]) -> None:
    window = node.sub_forks
    if window is ExpiryCounts.EMPTY:
        window = node.sub_forks = ExpiryCounts()
    for leaves in sorted(counts):
        window.add(leaves, counts[leaves])


def merge_forks(above: dict[float, int], counts: dict[float, int]) -> dict[float, int]:
    for leaves, n in counts.items():
        above[leaves] = above.get(leaves, 0) + n
    return above


def exact_expiry(ts: float) -> float:
    """The first moment at which a rate window drops an event at ``ts`` (``ts <= now - 1``)."""
    x = ts + RATE_WINDOW_S
    while ts <= math.nextafter(x, -math.inf) - RATE_WINDOW_S:
        x = math.nextafter(x, -math.inf)
    while not ts <= x - RATE_WINDOW_S:
        x = math.nextafter(x, math.inf)
    return x
