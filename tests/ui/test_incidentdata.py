"""An incident page's data: units, the values' columns (what is charted, what is text,
what was not measured), the bounded subtree; and hostile text (process names, messages,
rule source, explain's diagnostics, reasons, names read) rendered into the page and its
values.json by the real app stays text."""

from __future__ import annotations

import json
import math
from typing import Any

import trio
from api_support import TOKEN
from htmltext_support import parse
from hypothesis import example, given
from hypothesis import strategies as st
from ui_support import Browser, fake_app

from linnix.ui.incidentdata import subtree_item, unit_of, values_item, values_json

HOSTILE = "<img src=x onerror=alert(1)>"
# every element the templates write; anything else came from the data
TAGS = {"section", "strong", "span", "dl", "div", "dt", "dd", "h1", "h2", "ul", "li", "p",
        "time", "a", "form", "input", "label", "textarea", "button", "code", "main",
        "header", "nav", "body", "html", "head", "meta", "title", "link", "script", "ol",
        "table", "thead", "tbody", "tr", "th", "td", "pre", "figure", "figcaption",
        "details", "summary"}


def test_each_name_has_the_unit_of_its_metric() -> None:
    assert [unit_of(n) for n in ("cpu_pct", "avg(cpu_pct, 60s)", "rss_mb", "age_s",
                                 "parent.parent.cpu_pct", "max(subtree_rss_mb, 5m)",
                                 "count(cpu_pct > 5)", "fds", "no_such_name", "comm")] == [
        "%", "%", "MiB", "s", "%", "MiB", "", "", "", ""]


def test_what_is_charted_what_is_text_and_what_was_not_measured() -> None:
    row = {"opened_at": 100.0, "resolved_at": None,
           "history": [{"ts": 5.0, "values": {"fds": 3, "ok": True, "x": "a"}},
                       {"ts": 6.0, "values": {"fds": float("nan"), "ok": False, "x": "b"}},
                       "not a point", {"ts": "7", "values": {}},
                       {"ts": 7.0, "values": {"fds": None, "ok": True, "x": None}}]}
    data = values_json(row)
    assert data == {"t": [98.0, 99.0, 100.0], "opened": 100.0, "resolved": None,
                    "names": {"fds": {"unit": "", "before": [3.0, None, None],
                                      "open": [None, None, None]}}}
    item = values_item(row)
    assert [c["name"] for c in item["charts"]] == ["fds"]
    assert item["charts"][0] == {"name": "fds", "unit": "", "opened": "3.0",
                                      "highest": "3.0", "last": "3.0"}
    assert item["texts"] == [{"name": "ok", "shown": ["True", "False"], "more": 0},
                             {"name": "x", "shown": ["a", "b", "—"], "more": 0}]
    assert (item["points"], item["before"], item["trail"]) == (3, 2, False)
    assert values_json({"opened_at": 1.0}) == {"t": [], "opened": 1.0, "resolved": None,
                                               "names": {}}


def test_the_subtree_is_bounded_and_a_dash_where_nothing_was_measured() -> None:
    procs: list[Any] = [{"pid": i, "comm": f"p{i}", "depth": i % 12} for i in range(80)]
    item = subtree_item({"pid": 0, "subtree": [*procs, "junk"]})
    assert item["tree"] is True and len(item["rows"]) == 50 and item["more"] == 30
    assert item["rows"][11] == {"process": "p11 [11]", "depth": 11, "indent": 8, "cpu": "—",
                                "memory": "—", "fds": "—", "subtree_cpu": "—",
                                "wall": False}
    busiest = subtree_item({"pid": None, "subtree": procs[:3]})
    assert busiest["tree"] is False and busiest["more"] == 0


class _Store:
    """The reads the incident page makes of the store."""

    def __init__(self) -> None:
        self.row: dict[str, Any] = {}
        self.audit: list[dict[str, Any]] = []

    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        return self.row if incident_id == 9 else None

    async def audit_log(self, **query: Any) -> list[dict[str, Any]]:
        return self.audit

    async def actions(self, **query: Any) -> list[dict[str, Any]]:
        return []


STORE = _Store()
VIEW, APP = fake_app(STORE)


def _row(comm: str, text: str, name: str) -> dict[str, Any]:
    """An incident whose process, message, reasons, values and names read are hostile."""
    values = {name: 5.0, "comm": comm, "note": text}
    return {
        "id": 9, "rule": "r", "severity": "critical", "scope": "process", "pid": 1,
        "comm": comm, "opened_at": 1000.0, "time": "t", "resolved_at": 1010.0,
        "resolved_reason": text, "message": text, "labels": {},
        "history": [{"ts": 1.0, "values": values}, {"ts": 2.0, "values": values}],
        "trail": [{"at": 1001.0, "values": values}],
        "subtree": [{"pid": 1, "comm": comm, "depth": 0, "cpu_pct": 1.0},
                    {"pid": 2, "comm": text, "depth": 1}],
        "host": {}, "context": {"condition": text},
        "actions": [{"id": 7, "kind": "kill", "status": "rejected", "created_at": 1002.0}],
        "analysis": {"created_at": 1003.0, "analysis": None, "error": text}}


async def _render(comm: str, text: str, name: str) -> tuple[str, Any]:
    STORE.row = _row(comm, text, name)
    STORE.audit = [{"id": 2, "at": 1004.0, "actor": comm, "event": f"action.{text}",
                    "action_id": 7, "detail": {"reason": text}},
                   {"id": 1, "at": 1002.0, "actor": "linnix", "event": "action.proposed",
                    "action_id": 7, "detail": {}}]
    VIEW.sources = {"r": {"name": "r", "path": text, "line": 1, "source": text,
                          "explain": text}}
    browser = Browser(APP, "127.0.0.1")
    assert (await browser.sign_in(TOKEN))[0] == 303
    status, body, _ = await browser.get("/ui/incidents/9")
    assert status == 200, body
    status, data, _ = await browser.get("/ui/incidents/9/values.json")
    assert status == 200, data
    return body, json.loads(data)


texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@given(comm=texts, text=texts, name=texts)
@example(comm=HOSTILE, text="<script>alert(1)</script>", name='"><svg onload=alert(1)>')
@example(comm="{{ 7*7 }}", text="&lt;b&gt;", name="' onmouseover='x")
def test_hostile_text_on_the_incident_page_stays_text(comm: str, text: str,
                                                      name: str) -> None:
    body, data = trio.run(_render, comm, text, name)
    page = parse(body)
    assert page.tags <= TAGS, page.tags - TAGS
    assert not any(attr.startswith("on") for attr in page.attributes)
    shown = page.text
    for value in (f"{comm} [1]", f"{text} [2]", text):
        assert value.strip() in shown or not value.strip()
    if name not in ("comm", "note"):  # the hostile name read is a number: charted
        assert ("data-values", name) in page.pairs
        assert data["names"][name] == {"unit": unit_of(name), "before": [5.0, 5.0, None],
                                       "open": [None, 5.0, 5.0]}
    assert not math.isnan(sum(data["t"]))
