"""The process tree (``/ui/processes``), one process's page (``/ui/processes/PID``) and
the samples its charts draw (``/ui/processes/PID/history.json``).

The tree is laid out from one synchronous snapshot of the process table
(``DashboardView.process_table``: no /proc read per process) by
:mod:`.proctree`; its sort, filter and how deep it is open are in the query
string, so that every state of the page is a link.  A process's page is
assembled by :mod:`.procpage`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from quart import Blueprint, render_template, request
from quart.wrappers import Response

from ..api.stream import encode_json
from .procpage import PID_MAX, process_item
from .proctree import DEPTH_MAX, FIELDS, OPEN_DEPTH, QUERY_MAX, SORTS, Filter, Tree, build, view
from .web import RefusedError, UiState, html

__all__ = ["register"]

SORT_LABELS = {"cpu": "CPU", "memory": "memory", "fds": "fds", "pid": "pid", "name": "name"}
FIELD_LABELS = {"name": "Name", "user": "User", "unit": "Unit", "container": "Container"}
_DEPTHS = frozenset({"all", *(str(n) for n in range(DEPTH_MAX + 1))})  # what 'open' may say


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
    query = {"sort": sort, "open": depth}
    for field in FIELDS:
        text = args.get(field, "").strip()
        if len(text) > QUERY_MAX:
            raise RefusedError(400, f"A filter's {field} has at most {QUERY_MAX} characters.")
        query[field] = text
    return query


def _href(query: dict[str, str], **change: str) -> str:
    """The tree's link with ``change`` made to ``query`` (defaults and empty fields left
    out, so that links stay short)."""
    merged = {**query, **change}
    defaults = {"sort": "cpu", "open": str(OPEN_DEPTH)}
    kept = {k: v for k, v in merged.items() if v and v != defaults.get(k)}
    return "/ui/processes" + (f"?{urlencode(kept)}" if kept else "")


def _counts(tree: Tree) -> dict[str, str | None]:
    """The tree's counts in words ("1 live process", "4 ancestors"; None: none)."""
    ancestors = tree.shown - tree.matched
    return {"total": f"{tree.total:,} live process{'' if tree.total == 1 else 'es'}",
            "matched": f"{tree.matched:,}",
            "ancestors": f"{ancestors:,} ancestor{'' if ancestors == 1 else 's'}"
                         if ancestors > 0 else None,
            "hidden": f"{tree.hidden:,}" if tree.hidden else None}


def tree_page(rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """What the tree's template shows for the snapshot ``rows`` and the checked query."""
    chosen = Filter(**{f: query[f] for f in FIELDS})
    depth = None if query["open"] == "all" else int(query["open"])
    tree = view(build(rows), query["sort"], chosen, depth)
    return {
        "tree": tree, "query": query, "filtered": chosen.active(), "said": chosen.said(),
        "counts": _counts(tree),
        "sorts": [{"key": k, "label": SORT_LABELS[k], "href": _href(query, sort=k),
                   "current": k == query["sort"]} for k in SORTS],
        "expand": _href(query, open="all"), "collapse": _href(query, open="0"),
        "clear": _href({"sort": query["sort"], "open": query["open"]}),
        "fields": [{"name": f, "label": FIELD_LABELS[f], "value": query[f]} for f in FIELDS],
        "query_max": QUERY_MAX,
    }


def register(bp: Blueprint, state: UiState) -> None:
    """Add the process routes to ``bp``."""

    @bp.get("/processes")
    async def processes() -> Response:
        found = state.page_or_signin()
        if isinstance(found, Response):
            return found
        data = tree_page(state.view.process_table(), _query())
        return html(await render_template("ui/processes.html", session=found[1], **data))

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
