"""The process tree as the dashboard shows it, from one snapshot of the process table.

Pure and synchronous: :func:`build` links the snapshot's rows into a forest by
``ppid`` and computes every subtree's totals in one pass, children before
parents (each process is summed once, whatever the number of rows shown);
:func:`view` sorts siblings, keeps what a filter matches (with its ancestors,
so the tree stays a tree) and lays the forest out as a flat list of rows for a
template that never recurses (a chain of thousands of processes nests no
deeper than :data:`DEPTH_MAX`: a deeper branch is a tree of its own).

What one answer lays out is bounded, whatever the table holds: the levels open
at first (:data:`OPEN_DEPTH`), at most :data:`CHILDREN_MAX` children of one
parent and :data:`ROWS_MAX` processes in all; a collapsed branch's children
(:func:`children`) and the siblings past the bound ("N more…") are fetched when
asked for.  Linking the snapshot and summing its subtrees is one pass over it;
sorting and formatting are done only for what is laid out.

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

__all__ = ["CHILDREN_MAX", "DEPTH_MAX", "FIELDS", "OPEN_DEPTH", "QUERY_MAX", "ROWS_MAX",
           "SORTS", "Filter", "Forest", "Node", "Tree", "build", "children", "row", "user",
           "view", "where"]

DEPTH_MAX = 48  # levels of nesting in one page; a deeper branch opens a tree of its own
OPEN_DEPTH = 2  # levels open by default (the rest collapsed, fetched when opened)
CHILDREN_MAX = 50  # children of one parent laid out at once; "N more…" fetches the next
ROWS_MAX = 200  # processes laid out in one answer (a page or a branch opened) at most
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
        return self.matcher()(proc)

    def matcher(self) -> Callable[[Mapping[str, Any]], bool]:
        """:meth:`matches` with the fields' text folded once (a filter is matched
        against every process of the snapshot)."""
        tests = [(_KEYS[f], getattr(self, f).casefold()) for f in FIELDS if getattr(self, f)]

        def match(proc: Mapping[str, Any]) -> bool:
            return all(any(_holds(proc.get(k), needle) for k in keys) for keys, needle in tests)

        return match

    def said(self) -> str:
        """The filter in words: ``name “x”, user “y”``."""
        return ", ".join(f"{f} “{getattr(self, f)}”" for f in FIELDS if getattr(self, f))


# the record's keys each filter field looks in (user: the name or the uid's number)
_KEYS = {"name": ("comm",), "user": ("user", "uid"), "unit": ("unit",),
         "container": ("container",)}


def _holds(value: Any, folded: str) -> bool:
    return value is not None and folded in str(value).casefold()


@attrs.frozen
class Tree:
    """One answer's part of the tree, as the page (or a fragment) lays it out."""

    # each with "kind": "open" (its children follow, then a "close"), "closed" (a branch
    # whose children are fetched when it is opened), "leaf", "more" (siblings not laid
    # out: ``count`` of them from ``skip`` on, under ``parent``, 0 for the roots) or "close"
    rows: list[dict[str, Any]]
    total: int  # live processes in the snapshot
    scope: int  # processes in the part asked for (the table, or the root's subtree)
    kept: int  # of those, a filter's matches and their ancestors (all of them without one)
    matched: int  # processes a filter matched (all of them without one)
    listed: int  # processes laid out in rows


def view(forest: Forest, sort: str = "cpu", chosen: Filter | None = None,
         open_depth: int | None = OPEN_DEPTH, *, root: Node | None = None,
         skip: int = 0) -> Tree:
    """A page's tree: ``forest``'s roots (or ``root`` alone), siblings ordered by
    ``sort`` (a key of :data:`SORTS`), only what ``chosen`` matches and their ancestors,
    branches open to ``open_depth`` levels below the first (None: all; every branch is
    open while a filter is on), at most :data:`CHILDREN_MAX` children of a parent and
    :data:`ROWS_MAX` processes in all; ``skip`` children of the first level (the roots,
    or ``root``'s) are left to earlier pages."""
    scope = _Scope(forest, chosen, root)
    lay = _Layout(scope, sort, None if scope.wanted is not None else open_depth)
    if root is None:
        lay.siblings(lay.kids(forest.roots), 0, 0, skip)
    elif scope.has(root):
        lay.node(root, 0, skip)
    return scope.tree(lay)


def children(forest: Forest, parent: Node | None, sort: str = "cpu",
             chosen: Filter | None = None, open_depth: int | None = OPEN_DEPTH, *,
             at: int = 1, skip: int = 0) -> Tree:
    """A fragment's rows: ``parent``'s children (None: the roots) from the ``skip``-th
    on, at ``at`` levels below the page's first, laid out as :func:`view` lays out a
    page (bounded the same way)."""
    scope = _Scope(forest, chosen, parent)
    lay = _Layout(scope, sort, None if scope.wanted is not None else open_depth)
    kids = forest.roots if parent is None else parent.kids
    if parent is None or scope.has(parent):
        lay.siblings(lay.kids(kids), 0 if parent is None else parent.pid, at, skip)
    return scope.tree(lay)


class _Scope:
    """The processes an answer may list: those under ``top`` (all without one), and of
    them, while a filter is on, its matches and their ancestors up to ``top``."""

    def __init__(self, forest: Forest, chosen: Filter | None, top: Node | None) -> None:
        self.forest = forest
        self.top = top
        self.wanted = chosen if chosen is not None and chosen.active() else None
        self.size = len(forest.nodes) if top is None else top.procs
        self.kept: set[int] | None = None
        self.below: dict[int, int] = {}
        self.matched = self.size
        self.match = self.wanted.matcher() if self.wanted is not None else None
        if self.wanted is not None:
            self._filter(self.wanted, forest.order if top is None else _subtree(top))

    def _filter(self, wanted: Filter, nodes: list[Node]) -> None:
        kept: set[int] = set()
        matched = 0
        match = wanted.matcher()
        for node in nodes:
            if not match(node.proc):
                continue
            matched += 1
            up: Node | None = node
            while up is not None and up.pid not in kept:  # each ancestor added once
                kept.add(up.pid)
                up = None if up is self.top else up.parent
        below = dict.fromkeys(kept, 0)
        for node in reversed(nodes):  # children before parents
            parent = node.parent
            if node.pid in kept and parent is not None and parent.pid in below:
                below[parent.pid] += below[node.pid] + 1
        self.kept, self.below, self.matched = kept, below, matched

    def has(self, node: Node) -> bool:
        return self.kept is None or node.pid in self.kept

    def under(self, node: Node) -> int:
        """How many listed processes are below ``node``."""
        return node.procs - 1 if self.kept is None else self.below.get(node.pid, 0)

    def tree(self, lay: _Layout) -> Tree:
        return Tree(lay.rows, len(self.forest.nodes), self.size,
                    self.size if self.kept is None else len(self.kept), self.matched,
                    lay.listed)


def _subtree(top: Node) -> list[Node]:
    """``top`` and its descendants, each parent before its children (no recursion)."""
    out: list[Node] = []
    stack = [top]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(node.kids)
    return out


class _Layout:
    """Which processes one answer lays out, then their rows.

    Chosen breadth first, so that every level open shows its processes before any
    goes deeper: a list of siblings is cut at :data:`CHILDREN_MAX`, the whole at
    :data:`ROWS_MAX` processes, and what is cut is said by a "more" row; a branch
    that could be open but has none of its children laid out is collapsed.  Only the
    children of a branch laid out open are sorted; of a collapsed branch nothing is
    looked at but its count.  The rows are then written depth first, without
    recursion."""

    def __init__(self, scope: _Scope, sort: str, open_depth: int | None) -> None:
        self.scope = scope
        self.key = SORTS[sort]
        self.open_depth = open_depth
        self.rows: list[dict[str, Any]] = []
        self.listed = 0
        # pid: its children in order, and the first and the end of those laid out (an
        # open branch)
        self._kids: dict[int, tuple[list[Node], int, int]] = {}

    def kids(self, nodes: list[Node]) -> list[Node]:
        """Those of ``nodes`` (siblings) the scope keeps, in the sort's order."""
        has = self.scope.has
        return sorted((n for n in nodes if has(n)), key=self.key)

    def node(self, top: Node, rel: int, skip: int) -> None:
        """``top``'s row and, if it is open, its children from the ``skip``-th on."""
        self._plan([top], 0, 1, rel, skip)
        self._write([top], 0, 1, 0, rel)

    def siblings(self, nodes: list[Node], parent: int, rel: int, skip: int) -> None:
        """``nodes`` (sorted, under ``parent``: 0 for the roots) from the ``skip``-th on."""
        end = min(skip + CHILDREN_MAX, len(nodes))
        end = self._plan(nodes, skip, end, rel, 0)
        self._write(nodes, skip, end, parent, rel)

    def _opens(self, node: Node, rel: int) -> bool:
        return rel < DEPTH_MAX and (self.open_depth is None or rel < self.open_depth) \
            and self.scope.under(node) > 0

    def _plan(self, first: list[Node], start: int, end: int, rel: int, skip: int) -> int:
        """Choose, breadth first, what is laid out from ``first[start:end]`` down; the
        end of the first level laid out.  ``skip``: children of the first node left
        out (a rooted page's next siblings)."""
        end = start + min(end - start, ROWS_MAX)
        self.listed = end - start
        level = [(n, rel) for n in first[start:end]]
        while level and self.listed < ROWS_MAX:
            below: list[tuple[Node, int]] = []
            for node, depth in level:
                if not self._opens(node, depth) or self.listed >= ROWS_MAX:
                    continue
                kids = self.kids(node.kids)
                shown = max(0, min(len(kids) - skip, CHILDREN_MAX, ROWS_MAX - self.listed))
                if shown:
                    self._kids[node.pid] = (kids, skip, skip + shown)
                self.listed += shown
                below.extend((k, depth + 1) for k in kids[skip:skip + shown])
                skip = 0  # only the first node's
            level = below
        return end

    def _write(self, first: list[Node], start: int, end: int, parent: int, rel: int) -> None:
        rows, scope, plan = self.rows, self.scope, self._kids
        # a frame: [siblings, next index, end, their parent's pid, their depth]
        frames: list[list[Any]] = [[first, start, end, parent, rel]]
        while frames:
            frame = frames[-1]
            nodes, i, end, parent, rel = frame
            if i >= end:
                if end < len(nodes):
                    rows.append({"kind": "more", "parent": parent, "skip": end,
                                 "count": f"{len(nodes) - end:,}", "at": rel})
                frames.pop()
                if frames:
                    rows.append({"kind": "close"})
                continue
            frame[1] = i + 1
            node = nodes[i]
            below = scope.under(node)
            laid = plan.get(node.pid)
            kind = "open" if laid else "closed" if below and rel < DEPTH_MAX else "leaf"
            match = scope.match is not None and scope.match(node.proc)
            rows.append(row(node, kind, rel, below, match))
            if laid:
                frames.append([laid[0], laid[1], laid[2], node.pid, rel + 1])


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


def row(node: Node, kind: str, rel: int, below: int, match: bool) -> dict[str, Any]:
    """One process's row: its own and its subtree's values, formatted ("—": not
    measured, as :func:`~linnix.ui.pages.measured` says it); ``rel``: its depth below
    the answer's first level."""
    proc = node.proc
    return {"kind": kind, "pid": node.pid, "comm": proc.get("comm") or "?",
            "user": user(proc), "where": where(proc), "match": match,
            "below": f"{below:,}" if below else None, "at": rel,
            "cpu": _pct(proc.get("cpu_pct")), "rss": _mb(proc.get("rss_mb")),
            "fds": _count(proc.get("fds")), "sub_cpu": _pct(node.cpu),
            "sub_rss": _mb(node.rss), "sub_fds": _count(node.fds)}
