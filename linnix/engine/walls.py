"""Subtree totals within walls: one set per distinct ``boundary`` of the plan.

A rule with ``boundary EXPR`` reads subtree totals in which the subtree of a
process matching EXPR (a wall) is not added to its ancestors'.  The wall's own
totals are complete below it (down to the next walls), so it is an instance of
its own; only what it hands up stops.

These totals are kept like the plain ones (:mod:`linnix.engine.subtree`): a
change is noted on the process where it happens and handed up once per fold,
leaves first, each chain climbed only up to its first wall.  So they stay
exact, incremental and linear in the number of processes on the changed
chains.  A process's membership can change only when it execs or renames
itself (a boundary reads only ``comm``, ``exe``, ``cmdline``, ``uid`` and
``pid``, which the checker enforces): it is judged again then, and a process
that becomes a wall takes its folded totals away from its parent, one that
stops being one adds them; what is noted below it and not yet folded climbs
according to what it is at the fold, so it is counted once either way.

Forks (``subtree_forks_per_sec``, kept only when the plan reads it) are noted
on the forking parent, as (moment it leaves the count, how many) like the
plain counts, and handed up at the fold to every ancestor up to and including
the first wall at or above the parent: a wall counts the forks of its own
subtree and hands none up.  A fork counts for the walls as they were when it
happened: a process whose membership changes while forks are noted that could
climb through it has them folded first (:meth:`Walls.judge`; the plain
counts are folded the same way before a process with children leaves the
tree).  What was already counted stays where it is: the forks of the trailing
second do not move when a process becomes or stops being a wall; they leave
within a second.  New boundaries (a new plan) start with no recent forks; a
plan that only makes the table add up more keeps them.  A process's count
within walls is never above its plain count (its forks are a subset of the
same ones), so the table's ``rate_hot`` set, kept on the plain counts, holds
every process whose count within walls may still fall.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .subtree import add_forks, add_totals, merge_forks, merge_totals
from .windows import ExpiryCounts

if TYPE_CHECKING:
    from .proctable import Proc

__all__ = ["Totals", "Walls", "top_down"]

V = TypeVar("V")


class Totals:
    """A process's subtree totals within the walls of one boundary."""

    __slots__ = ("_sub_cm", "_sub_fd", "_sub_rk", "sub_cpu_pct", "sub_fds", "sub_forks",
                 "sub_procs", "sub_rss_mb", "wall")

    def __init__(self, cm: int = 0, rk: int = 0, fd: int = 0) -> None:
        self._sub_cm, self._sub_rk, self._sub_fd = cm, rk, fd
        self.sub_cpu_pct = cm / 1000.0
        self.sub_rss_mb = rk / 1024.0
        self.sub_fds = fd
        self.sub_procs = 1
        self.sub_forks = ExpiryCounts.EMPTY
        self.wall = False  # whether the boundary holds for the process

    def handed_up(self, sign: int) -> list[int]:
        """What this process adds to its parent's totals (``sign`` -1: takes away)."""
        if self.wall:
            return [0, 0, 0, 0]
        return [sign * self._sub_cm, sign * self._sub_rk, sign * self._sub_fd,
                sign * self.sub_procs]


class Walls:
    """The walls of every boundary of a plan and the totals within them."""

    def __init__(self, texts: Sequence[str], conds: Sequence[Callable[..., Any]],
                 host: object) -> None:
        self.texts = tuple(texts)
        self.conds = tuple(conds)
        self.host = host
        self.unfolded: list[dict[Proc, list[int]]] = [{} for _ in self.conds]
        self.moved: set[Proc] = set()  # processes whose membership changed since settle()
        # forks not yet folded, per boundary: forking parent -> {moment it leaves: how many}
        self.forks: list[dict[Proc, dict[float, int]]] = [{} for _ in self.conds]

    # ---- changes, noted ------------------------------------------------------------
    def new(self, p: Proc) -> None:
        p.bounded = [Totals() for _ in self.conds]

    def judge(self, p: Proc) -> None:
        """Decide again whether ``p`` is a wall of each boundary (it exec'd or renamed)."""
        for k, cond in enumerate(self.conds):
            try:
                wall = bool(cond(p, self.host, 0.0))
            except Exception:  # a bug in generated code: the process stays open
                wall = False
            totals = p.bounded[k]
            if wall == totals.wall:
                continue
            forks = self.forks[k]
            if forks and (p.kids or p in forks):  # they climb through p: as it was
                self._fold_forks(k)
            parent = p.parent
            if parent is not None:  # the folded totals; what is noted climbs at the fold
                self._note(k, parent, totals.handed_up(-1))
            totals.wall = wall
            if parent is not None:
                self._note(k, parent, totals.handed_up(1))
            self.moved.add(p)

    def link(self, child: Proc, parent: Proc, sign: int) -> None:
        """``child`` joins (1) or leaves (-1) ``parent``'s subtree."""
        for k, totals in enumerate(child.bounded):
            if not totals.wall:
                self._note(k, parent, totals.handed_up(sign))

    def own(self, p: Proc, dcm: int, drk: int, dfd: int) -> None:
        """``p``'s own cpu, rss or fds changed by these amounts."""
        for k in range(len(self.conds)):
            self._note(k, p, [dcm, drk, dfd, 0])

    def fork(self, parent: Proc, leaves: float) -> None:
        """``parent`` forked; the fork leaves the trailing second at ``leaves``."""
        for forks in self.forks:
            counts = forks.get(parent)
            if counts is None:
                forks[parent] = {leaves: 1}
            else:
                counts[leaves] = counts.get(leaves, 0) + 1

    def leave(self, p: Proc) -> None:
        """``p``, a leaf, leaves the tree: its noted forks count for it and climb from
        its parent (unless it is a wall), which is what a fold would have done."""
        parent = p.parent
        for k, forks in enumerate(self.forks):
            own = forks.pop(p, None)
            if own is None:
                continue
            add_forks(p.bounded[k], own)  # type: ignore[arg-type]
            if parent is not None and not p.bounded[k].wall:
                above = forks.get(parent)
                forks[parent] = own if above is None else merge_forks(above, own)

    def _note(self, k: int, p: Proc, change: list[int]) -> None:
        noted = self.unfolded[k].get(p)
        if noted is None:
            self.unfolded[k][p] = change
        else:
            merge_totals(noted, change)

    # ---- folding -------------------------------------------------------------------
    def quiet(self) -> bool:
        return not any(self.unfolded)

    def fold(self, mark: Callable[[Proc], None]) -> None:
        """Hand every noted change up to the first wall above it."""
        for k, noted in enumerate(self.unfolded):
            if not noted:
                continue
            self.unfolded[k] = {}

            def apply(node: Proc, change: list[int], k: int = k) -> None:
                add_totals(node.bounded[k], change)  # type: ignore[arg-type]
                if node.alive:
                    mark(node)

            _upward_within(noted, k, apply, merge_totals)

    def fold_forks(self) -> None:
        """Hand every noted fork up to the first wall at or above its parent."""
        for k, forks in enumerate(self.forks):
            if forks:
                self._fold_forks(k)

    def _fold_forks(self, k: int) -> None:
        # No process is marked rate-hot here: the plain fold marks a superset.
        noted, self.forks[k] = self.forks[k], {}

        def apply(node: Proc, counts: dict[float, int]) -> None:
            add_forks(node.bounded[k], counts)  # type: ignore[arg-type]

        _upward_within(noted, k, apply, merge_forks)

    def rebuild(self, procs: Iterable[Proc], sums_only: bool = False) -> None:
        """Every live process's totals, afresh (a new plan): one pass over the tree.

        ``sums_only``: these walls already hold every process, and only what the
        table adds up changed; their fork counts, folded or not, are kept.
        """
        self.unfolded = [{} for _ in self.conds]
        if not sums_only:
            self.forks = [{} for _ in self.conds]
        order = top_down(procs)
        for p in order:
            was = p.bounded
            p.bounded = [Totals(p._cm, p._rk, p._fd) for _ in self.conds]
            if sums_only:
                for totals, old in zip(p.bounded, was, strict=True):
                    totals.sub_forks = old.sub_forks
            for k, cond in enumerate(self.conds):
                try:
                    p.bounded[k].wall = bool(cond(p, self.host, 0.0))
                except Exception:
                    p.bounded[k].wall = False
        for p in reversed(order):  # children before parents
            if p.parent is not None:
                for k, totals in enumerate(p.bounded):
                    if not totals.wall:
                        add_totals(p.parent.bounded[k], totals.handed_up(1))  # type: ignore[arg-type]


def top_down(procs: Iterable[Proc]) -> list[Proc]:
    """The processes of the tree, parents before children."""
    order: list[Proc] = []
    stack = [p for p in procs if p.parent is None]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.kids.values())
    return order


def _upward_within(noted: dict[Proc, V], k: int, apply: Callable[[Proc, V], None],
                   merge: Callable[[V, V], V]) -> None:
    """:func:`linnix.engine.subtree.upward`, with nothing handed up by a wall."""
    waiting = _children_within(noted, k)
    ready = [node for node, n in waiting.items() if n == 0]
    while ready:
        node = ready.pop()
        change = noted.pop(node)
        apply(node, change)
        parent = node.parent
        if parent is None or node.bounded[k].wall:
            continue
        above = noted.get(parent)
        noted[parent] = change if above is None else merge(above, change)
        waiting[parent] -= 1
        if not waiting[parent]:
            ready.append(parent)


def _children_within(noted: dict[Proc, V], k: int) -> dict[Proc, int]:
    """Every process on the chains above noted ones, up to the first wall of each:
    how many of its children hand it a change."""
    waiting: dict[Proc, int] = {}
    for start in noted:
        if start in waiting:
            continue
        waiting[start] = 0
        node = start
        while not node.bounded[k].wall and node.parent is not None:
            parent = node.parent
            found = parent in waiting
            waiting[parent] = waiting.get(parent, 0) + 1
            if found:
                break
            node = parent
    return waiting
