"""The process tree (``/ui/processes``), one process's page (``/ui/processes/PID``) and
the samples its charts draw (``/ui/processes/PID/history.json``).

The tree is laid out from one synchronous snapshot of the process table
(``DashboardView.process_table``: no /proc read per process) by
:mod:`.proctree`; its sort, filter, how deep it is open and where it starts
(``root``, ``skip``) are in the query string, so that every state of the page
is a link.  What a page lays out is bounded: a collapsed branch's children
(``/ui/processes/PID/children``, PID 0 for the roots) and the siblings past the
bound are fragments htmx fetches when they are asked for; without script, the
same links open the tree from that process.  A process's page is assembled by
:mod:`.procpage`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from quart import Blueprint, render_template, request
from quart.wrappers import Response

from ..api.stream import encode_json
from .procpage import PID_MAX, process_item
from .proctree import (
    DEPTH_MAX,
    FIELDS,
    OPEN_DEPTH,
    QUERY_MAX,
    SORTS,
    Filter,
    Forest,
    Tree,
    build,
    children,
    view,
)
from .web import RefusedError, UiState, html, unauthorized_fragment

__all__ = ["register"]

SORT_LABELS = {"cpu": "CPU", "memory": "memory", "fds": "fds", "pid": "pid", "name": "name"}
FIELD_LABELS = {"name": "Name", "user": "User", "unit": "Unit", "container": "Container"}
_DEPTHS = frozenset({"all", *(str(n) for n in range(DEPTH_MAX + 1))})  # what 'open' may say
_INT_DIGITS = 10  # a pid or a count has at most this many digits (PID_MAX is 2**31)


def _query() -> dict[str, str]:
    """The tree's query string, checked: sort, open and the filter's fields."""
    args = request.args
    sort = args.get("sort", "cpu")
    if sort not in SORTS:
        raise RefusedError(400, f"Sort by one of {', '.join(SORTS)}, not {sort[:40]!r}.")
    depth = args.get("open", str(OPEN_DEPTH))
    if depth not in _DEPTHS:
        raise RefusedError(400, f"'open' is a number of levels from 0 to {DEPTH_MAX}, or "
                                f"'all', not {depth[:40]!r}.")
    query = {"sort": sort, "open": depth,
             "root": str(_number("root", 0, PID_MAX - 1) or ""),
             "skip": str(_number("skip", 0, PID_MAX) or "")}
    for field in FIELDS:
        text = args.get(field, "").strip()
        if len(text) > QUERY_MAX:
            raise RefusedError(400, f"A filter's {field} has at most {QUERY_MAX} characters.")
        query[field] = text
    return query


def _number(name: str, low: int, high: int) -> int:
    """The query's ``name``, a whole number from ``low`` to ``high`` (``low`` if absent)."""
    text = request.args.get(name, "")
    if not text:
        return low
    if not (text.isascii() and text.isdigit() and len(text) <= _INT_DIGITS) \
            or not low <= int(text) <= high:
        raise RefusedError(400, f"'{name}' is a number from {low} to {high:,}, not "
                                f"{text[:40]!r}.")
    return int(text)


def _kept(query: dict[str, str]) -> dict[str, str]:
    """``query`` without its defaults and empty fields, so that links stay short."""
    defaults = {"sort": "cpu", "open": str(OPEN_DEPTH)}
    return {k: v for k, v in query.items() if v and v != defaults.get(k)}


def _href(query: dict[str, str], **change: str) -> str:
    """The tree's link with ``change`` made to ``query``."""
    kept = _kept({**query, **change})
    return "/ui/processes" + (f"?{urlencode(kept)}" if kept else "")


def _counts(tree: Tree) -> dict[str, str | None]:
    """The tree's counts in words ("1 live process", "4 ancestors"; None: none)."""
    ancestors = tree.kept - tree.matched
    hidden = tree.kept - tree.listed
    return {"total": f"{tree.total:,} live process{'' if tree.total == 1 else 'es'}",
            "scope": f"{tree.scope:,} process{'' if tree.scope == 1 else 'es'}",
            "matched": f"{tree.matched:,}",
            "ancestors": f"{ancestors:,} ancestor{'' if ancestors == 1 else 's'}"
                         if ancestors > 0 else None,
            "listed": f"{tree.listed:,}",
            "hidden": f"{hidden:,}" if hidden > 0 else None}


def _links(query: dict[str, str]) -> dict[str, str]:
    """What each row's links add after their own first parameter (``?root=PID``,
    ``?at=N``): the sort, how deep the tree opens and the filter."""
    kept = _kept({k: v for k, v in query.items() if k not in ("root", "skip")})
    tail = urlencode(kept)
    return {"qs": f"&{tail}" if tail else ""}


def _root(forest: Forest, query: dict[str, str]) -> Any:
    """The process the page's tree starts from (None: the roots); 404 if not live."""
    if not query["root"]:
        return None
    node = forest.nodes.get(int(query["root"]))
    if node is None:
        raise _GoneError(int(query["root"]))
    return node


class _GoneError(Exception):
    """The tree was asked to start from a pid no live process has."""

    def __init__(self, pid: int) -> None:
        super().__init__(pid)
        self.pid = pid


class Forests:
    """The forest of the view's last snapshot: built again only when the view hands out
    another list (it hands out the same one while its table has not changed), so that
    a page and the branches opened from it link and sum the table once."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] | None = None
        self._forest: Forest | None = None

    def of(self, rows: list[dict[str, Any]]) -> Forest:
        if rows is not self._rows or self._forest is None:
            self._forest = build(rows)
            self._rows = rows  # held: its identity stays its own while it is compared
        return self._forest


def tree_page(forest: Forest, query: dict[str, str]) -> dict[str, Any]:
    """What the tree's template shows for the snapshot's ``forest`` and the checked
    query."""
    chosen = Filter(**{f: query[f] for f in FIELDS})
    depth = None if query["open"] == "all" else int(query["open"])
    root = _root(forest, query)
    tree = view(forest, query["sort"], chosen, depth, root=root, skip=int(query["skip"] or 0))
    return {
        "tree": tree, "query": query, "filtered": chosen.active(), "said": chosen.said(),
        "counts": _counts(tree), **_links(query),
        "root": root and {"pid": root.pid, "comm": root.proc.get("comm") or "?",
                          "ancestors": [{"pid": a.pid, "comm": a.proc.get("comm") or "?",
                                         "href": _href(query, root=str(a.pid), skip="")}
                                        for a in list(root.lineage())[:DEPTH_MAX]]},
        "whole": _href(query, root="", skip=""),
        "sorts": [{"key": k, "label": SORT_LABELS[k], "href": _href(query, sort=k, skip=""),
                   "current": k == query["sort"]} for k in SORTS],
        "expand": _href(query, open="all", skip=""),
        "collapse": _href(query, open="0", skip=""),
        "clear": _href({"sort": query["sort"], "open": query["open"], "root": query["root"]}),
        "fields": [{"name": f, "label": FIELD_LABELS[f], "value": query[f]} for f in FIELDS],
        "query_max": QUERY_MAX,
    }


def branch(forest: Forest, pid: int, query: dict[str, str], at: int,
           skip: int) -> dict[str, Any]:
    """What a branch's fragment shows: ``pid``'s children (0: the roots) from the
    ``skip``-th on, ``at`` levels below the page's first."""
    parent = forest.nodes.get(pid) if pid else None
    if pid and parent is None:
        raise _GoneError(pid)
    chosen = Filter(**{f: query[f] for f in FIELDS})
    depth = None if query["open"] == "all" else int(query["open"])
    tree = children(forest, parent, query["sort"], chosen, depth, at=at, skip=skip)
    return {"tree": tree, "focus_first": skip > 0, **_links(query)}


def register(bp: Blueprint, state: UiState) -> None:
    """Add the process routes to ``bp``."""
    forests = Forests()

    @bp.get("/processes")
    async def processes() -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        query = _query()
        try:
            data = tree_page(forests.of(state.view.process_table()), query)
        except _GoneError as gone:
            return html(await render_template("ui/process_gone.html", session=found[1],
                                              pid=gone.pid), 404)
        return html(await render_template("ui/processes.html", session=found[1], **data))

    @bp.get("/processes/<int:pid>/children")
    async def branch_fragment(pid: int) -> Response:
        if state.session() is None:
            return unauthorized_fragment()
        query = _query()
        at, skip = _number("at", 0, DEPTH_MAX), _number("skip", 0, PID_MAX)
        try:
            data = branch(forests.of(state.view.process_table()), pid, query, at, skip)
        except _GoneError as gone:
            return html(await render_template("ui/_tree_gone.html", pid=gone.pid), 404)
        return html(await render_template("ui/_tree_rows.html", **data))

    @bp.get("/processes/<int:pid>")
    async def process(pid: int) -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        item = await process_item(state.view, pid, state.wall()) if 0 < pid < PID_MAX \
            else None
        if item is None:
            return html(await render_template("ui/process_gone.html", session=found[1],
                                              pid=pid), 404)
        return html(await render_template("ui/process.html", session=found[1], p=item))

    @bp.get("/processes/<int:pid>/history.json")
    async def history(pid: int) -> Response:
        if state.session() is None:
            return _json({"error": "unauthorized", "detail": "not signed in"}, 401)
        data = state.view.process_history(pid) if 0 < pid < PID_MAX else None
        if data is None:
            return _json({"error": "not_found",
                          "detail": f"no samples of a live process with pid {pid}"}, 404)
        return _json(data)


def _json(data: Any, status: int = 200) -> Response:
    return Response(encode_json(data), status=status, content_type="application/json")
