"""The process tree as the dashboard shows it, from one snapshot of the process table.

Pure and synchronous: :func:`build` links the snapshot's rows into a forest by
``ppid`` and computes every subtree's totals in one pass, children before
parents (each process is summed once, whatever the number of rows shown);
:func:`view` sorts siblings, keeps what a filter matches (with its ancestors,
so the tree stays a tree) and lays the forest out as a flat list of rows for a
template that never recurses (a chain of thousands of processes nests no
deeper than :data:`DEPTH_MAX`).

The snapshot is hostile input like everything a process controls: a ``ppid``
that closes a cycle is cut where the walk meets it, a filter is matched as
plain text (case-insensitive substring, never a pattern), and nothing is
recursive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from .pages import NOT_MEASURED

__all__ = ["DEPTH_MAX", "FIELDS", "OPEN_DEPTH", "QUERY_MAX", "SORTS", "Filter", "Forest",
           "Node", "Tree", "build", "row", "user", "view", "where"]

DEPTH_MAX = 48  # levels of nesting shown; a process deeper is listed at this level
OPEN_DEPTH = 2  # levels open by default (the rest are collapsed, and counted)
QUERY_MAX = 200  # characters of one filter field
FIELDS = ("name", "user", "unit", "container")  # what a filter may match

_N = TypeVar("_N", int, float)


def _add(a: _N | None, b: _N | None) -> _N | None:
    return a if b is None else b if a is None else a + b


class Node:
    """One process and, once :func:`build` has summed them, its subtree's totals."""

    __slots__ = ("cpu", "depth", "fds", "kids", "parent", "pid", "proc", "procs", "rss")

    def __init__(self, proc: Mapping[str, Any]) -> None:
        self.proc = proc
        self.pid: int = proc["pid"]
        self.kids: list[Node] = []
        self.parent: Node | None = None
        self.depth = 0
        # the subtree's totals (None: no member measured), and its number of processes
        self.cpu: float | None = proc.get("cpu_pct")
        self.rss: float | None = proc.get("rss_mb")
        self.fds: int | None = proc.get("fds")
        self.procs = 1

    def lineage(self) -> Iterable[Node]:
        """The ancestors, nearest first."""
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


# sort keys: busiest subtrees first (not measured last), or by pid or name
_Key = Callable[["Node"], tuple[Any, ...]]
SORTS: dict[str, _Key] = {
    "cpu": lambda n: (n.cpu is None, -(n.cpu or 0.0), n.pid),
    "memory": lambda n: (n.rss is None, -(n.rss or 0.0), n.pid),
    "fds": lambda n: (n.fds is None, -(n.fds or 0), n.pid),
    "pid": lambda n: (n.pid,),
    "name": lambda n: ((n.proc.get("comm") or "").casefold(), n.pid),
}


@attrs.frozen
class Forest:
    """The linked snapshot: its roots, every node by pid, and the walk's order (each
    parent before its children)."""

    roots: list[Node]
    nodes: dict[int, Node]
    order: list[Node]


def build(rows: Iterable[Mapping[str, Any]]) -> Forest:
    """Link ``rows`` (the view's ``process_table()``) by ppid and sum every subtree."""
    nodes: dict[int, Node] = {}
    for proc in rows:
        nodes[proc["pid"]] = Node(proc)
    kids: dict[int, list[Node]] = {}
    roots: list[Node] = []
    for node in nodes.values():
        ppid = node.proc.get("ppid")
        if ppid in nodes and ppid != node.pid:
            kids.setdefault(ppid, []).append(node)
        else:
            roots.append(node)
    order: list[Node] = []
    seen: set[int] = set()
    _walk(roots, kids, seen, order)
    if len(seen) < len(nodes):  # rows whose ppids close a cycle: cut it at the lowest pid
        for pid in sorted(set(nodes) - seen):
            if pid not in seen:
                roots.append(nodes[pid])
                _walk([nodes[pid]], kids, seen, order)
    for node in reversed(order):  # children before parents: each subtree summed once
        parent = node.parent
        if parent is not None:
            parent.cpu = _add(parent.cpu, node.cpu)
            parent.rss = _add(parent.rss, node.rss)
            parent.fds = _add(parent.fds, node.fds)
            parent.procs += node.procs
    return Forest(roots, nodes, order)


def _walk(starts: list[Node], kids: dict[int, list[Node]], seen: set[int],
          order: list[Node]) -> None:
    """Depth first from ``starts``, without recursion: link each node to the parent it
    was reached from (a node already reached is not linked again: no cycle, no
    process counted twice)."""
    stack = list(reversed(starts))
    for node in starts:
        seen.add(node.pid)
    while stack:
        node = stack.pop()
        order.append(node)
        for kid in kids.get(node.pid, ()):
            if kid.pid not in seen:
                seen.add(kid.pid)
                kid.parent = node
                kid.depth = node.depth + 1
                node.kids.append(kid)
                stack.append(kid)


@attrs.frozen
class Filter:
    """What the tree's form asks for: each field a case-insensitive piece of text that
    the process's value must contain (an empty field matches everything)."""

    name: str = ""
    user: str = ""
    unit: str = ""
    container: str = ""

    def active(self) -> bool:
        return any(getattr(self, f) for f in FIELDS)

    def matches(self, proc: Mapping[str, Any]) -> bool:
        return all(_has(value, needle) for value, needle in (
            ((proc.get("comm"),), self.name),
            ((proc.get("user"), proc.get("uid")), self.user),
            ((proc.get("unit"),), self.unit),
            ((proc.get("container"),), self.container)))

    def said(self) -> str:
        """The filter in words: ``name “x”, user “y”``."""
        return ", ".join(f"{f} “{getattr(self, f)}”" for f in FIELDS if getattr(self, f))


def _has(values: tuple[Any, ...], needle: str) -> bool:
    if not needle:
        return True
    folded = needle.casefold()
    return any(v is not None and folded in str(v).casefold() for v in values)


@attrs.frozen
class Tree:
    """The tree as the page lays it out."""

    rows: list[dict[str, Any]]  # each with "kind": "open" (has kids), "leaf" or "close"
    total: int  # live processes in the snapshot
    shown: int  # processes listed (a filter's matches and their ancestors)
    matched: int  # processes a filter matched (all of them without one)
    hidden: int  # processes listed inside a collapsed branch


def view(forest: Forest, sort: str = "cpu", chosen: Filter | None = None,
         open_depth: int | None = OPEN_DEPTH) -> Tree:
    """``forest`` laid out: siblings ordered by ``sort`` (a key of :data:`SORTS`), only
    what ``chosen`` matches and their ancestors, branches open to ``open_depth`` levels
    (None: all; every branch is open while a filter is on)."""
    wanted = chosen if chosen is not None and chosen.active() else None
    kept, matched = _kept(forest, wanted)
    below = _below(forest, kept)
    depth_open = None if wanted is not None else open_depth
    key = SORTS[sort]
    rows: list[dict[str, Any]] = []
    hidden = 0
    closed_at: int | None = None  # the depth of the collapsed branch being laid out
    # (node, closing): a node's row, then the close of its branch after its descendants
    stack: list[tuple[Node, bool]] = [(n, False) for n in sorted(
        (r for r in forest.roots if kept is None or r.pid in kept), key=key, reverse=True)]
    while stack:
        node, closing = stack.pop()
        if closing:
            rows.append({"kind": "close"})
            if closed_at == node.depth:
                closed_at = None
            continue
        kids = [k for k in node.kids if kept is None or k.pid in kept]
        nests = bool(kids) and node.depth < DEPTH_MAX
        is_open = depth_open is None or node.depth < depth_open
        shown_below = below.get(node.pid, 0)
        if nests and not is_open and closed_at is None:
            closed_at = node.depth
            hidden += shown_below
        match = wanted is not None and wanted.matches(node.proc)
        rows.append(row(node, "open" if nests else "leaf", is_open, shown_below, match))
        if nests:
            stack.append((node, True))
        stack.extend((k, False) for k in sorted(kids, key=key, reverse=True))
    return Tree(rows, len(forest.nodes), len(kept) if kept is not None else len(forest.nodes),
                matched, hidden)


def _kept(forest: Forest, wanted: Filter | None) -> tuple[set[int] | None, int]:
    """The pids a filter keeps (its matches and their ancestors; None: every one) and
    the number it matched."""
    if wanted is None:
        return None, len(forest.nodes)
    kept: set[int] = set()
    matched = 0
    for node in forest.order:
        if not wanted.matches(node.proc):
            continue
        matched += 1
        up: Node | None = node
        while up is not None and up.pid not in kept:  # each ancestor added once
            kept.add(up.pid)
            up = up.parent
    return kept, matched


def _below(forest: Forest, kept: set[int] | None) -> dict[int, int]:
    """How many listed processes are below each listed one."""
    if kept is None:
        return {n.pid: n.procs - 1 for n in forest.order}
    counts = dict.fromkeys(kept, 0)
    for node in reversed(forest.order):
        parent = node.parent
        if node.pid in kept and parent is not None:
            counts[parent.pid] += counts[node.pid] + 1
    return counts


def where(proc: Mapping[str, Any]) -> str:
    """Where a process runs: its container, else its systemd unit, else "—"."""
    container, unit = proc.get("container"), proc.get("unit")
    if container:
        return f"container {container}"
    return str(unit) if unit else NOT_MEASURED


def user(proc: Mapping[str, Any]) -> str:
    """The user's name, else the uid's number, else "—"."""
    name, uid = proc.get("user"), proc.get("uid")
    if name:
        return str(name)
    return NOT_MEASURED if uid is None else f"uid {uid}"


def _pct(value: float | None) -> str:
    # measured()'s format, inlined: the tree formats six values for each of thousands
    return NOT_MEASURED if value is None or not math.isfinite(value) else f"{value:,.1f}%"


def _mb(value: float | None) -> str:
    return NOT_MEASURED if value is None or not math.isfinite(value) else f"{value:,.1f} MB"


def _count(value: int | None) -> str:
    return NOT_MEASURED if value is None else f"{value:,}"


def row(node: Node, kind: str, is_open: bool, below: int, match: bool) -> dict[str, Any]:
    """One process's row: its own and its subtree's values, formatted ("—": not
    measured, as :func:`~linnix.ui.pages.measured` says it)."""
    proc = node.proc
    parent = node.parent
    return {"kind": kind, "open": is_open, "pid": node.pid, "comm": proc.get("comm") or "?",
            "user": user(proc), "where": where(proc), "match": match,
            "below": f"{below:,}" if below else None,
            "deep": node.depth > DEPTH_MAX, "ppid": parent.pid if parent is not None else None,
            "cpu": _pct(proc.get("cpu_pct")), "rss": _mb(proc.get("rss_mb")),
            "fds": _count(proc.get("fds")), "sub_cpu": _pct(node.cpu),
            "sub_rss": _mb(node.rss), "sub_fds": _count(node.fds)}
