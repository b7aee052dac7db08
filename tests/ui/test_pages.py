"""Hostile text stays text: process names, messages and paths from the daemon, and an
analysis's facts and model's words, rendered into the overview's live part, an action's
page and an incident's page by the real app and templates, come out as the same text
and never as markup."""

from __future__ import annotations

from typing import Any

import trio
from api_support import TOKEN
from htmltext_support import parse
from hypothesis import example, given
from hypothesis import strategies as st
from ui_support import Browser, fake_app

from linnix.analysis import analyze
from linnix.ui.pages import measured, number, time_left

# every element and attribute the templates write; anything else came from the data
TAGS = {"section", "strong", "span", "dl", "div", "dt", "dd", "h1", "h2", "ul", "li", "p",
        "time", "a", "form", "input", "label", "textarea", "button", "code", "main",
        "header", "nav", "body", "html", "head", "meta", "title", "link", "script",
        "ol", "table", "thead", "tbody", "tr", "th", "td", "pre", "figure", "figcaption",
        "details", "summary"}
HOSTILE = "<img src=x onerror=alert(1)>"


class _Store:
    """The reads the pages make of the store."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.incidents: dict[int, dict[str, Any]] = {}
        self.freezes: list[dict[str, Any]] = []

    async def actions(self, status: str | None = None, limit: int = 100,
                      before: int | None = None) -> list[dict[str, Any]]:
        return self.rows

    async def action(self, action_id: int) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["id"] == action_id), None)

    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        return self.incidents.get(incident_id)

    async def active_freezes(self) -> list[dict[str, Any]]:
        return self.freezes

    async def freeze(self, action_id: int) -> dict[str, Any] | None:
        return next((f for f in self.freezes if f["action_id"] == action_id), None)

    async def audit_log(self, **query: Any) -> list[dict[str, Any]]:
        return []


STORE = _Store()
VIEW, APP = fake_app(STORE)

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def _incident(comm: str, message: str, exe: str) -> dict[str, Any]:
    """An incident about the hostile process, its analysis's facts quoting the hostile
    text (its origin, its runbook) and a model's part whose words are the hostile text."""
    proc = {"pid": 4242, "comm": comm, "exe": exe, "cmdline": message, "user": comm,
            "cpu_pct": 99.0, "depth": 0, "subtree_cpu_pct": 99.0}
    row: dict[str, Any] = {
        "id": 9, "rule": "r", "severity": "critical", "scope": "process", "pid": 4242,
        "comm": comm, "opened_at": 1.0, "time": "t", "resolved_at": 2.0,
        "resolved_reason": message, "message": message, "labels": {},
        "history": [{"ts": 1.0, "values": {"cpu_pct": 99.0, "comm": comm}}],
        "subtree": [proc], "host": {}, "context": {"condition": message, "runbook": message},
        "actions": [{"id": 7, "kind": "kill", "status": "pending"}]}
    model = {"backend": comm, "model": message, "verified": True, "summary": message,
             "hypotheses": [{"hypothesis": comm, "facts": ["F1", exe]}]}
    row["analysis"] = {"time": "t", "error": None, "analysis": {**analyze(row), "model": model}}
    return row


async def _render(comm: str, message: str, exe: str) -> list[str]:
    VIEW.active = [{"rule": "r", "state": "firing", "severity": "critical", "pid": 4242,
                    "comm": comm, "message": message, "time": "now", "incident_id": 9}]
    STORE.rows = [{"id": 7, "kind": "kill", "rule": "r", "status": "pending", "pid": 4242,
                   "comm": comm, "exe": exe, "time": "t", "expires_at": None,
                   "reason": message, "decided_by": None, "incident_id": 9}]
    STORE.incidents = {9: _incident(comm, message, exe)}
    STORE.freezes = [{"action_id": 8, "cgroup": f"/{comm}.scope", "frozen_at": 1.0,
                      "thaw_by": 2e9, "thawed_at": None, "thaw_reason": None}]
    browser = Browser(APP, "127.0.0.1")
    assert (await browser.sign_in(TOKEN))[0] == 303
    bodies = []
    for path in ("/ui/fragments/live", "/ui/actions/7", "/ui/incidents/9"):
        status, body, _ = await browser.get(path)
        assert status == 200, body
        bodies.append(body)
    return bodies


@given(comm=texts, message=texts, exe=texts)
@example(comm=HOSTILE, message="<script>alert(1)</script>", exe='"><svg onload=alert(1)>')
@example(comm="{{ 7*7 }}", message="&lt;b&gt;", exe="' onmouseover='x")
def test_hostile_text_is_rendered_as_text(comm: str, message: str, exe: str) -> None:
    for body in trio.run(_render, comm, message, exe):
        page = parse(body)
        assert page.tags <= TAGS, page.tags - TAGS
        assert not any(name.startswith("on") for name in page.attributes)
        text = page.text
        for value in (f"{comm} [4242]", message):
            assert value.strip() in text or not value.strip()


def test_the_hostile_name_is_shown_whole() -> None:
    for body in trio.run(_render, HOSTILE, "m", "/x"):
        assert "&lt;img src=x onerror=alert(1)&gt; [4242]" in body
        assert "<img" not in body


def test_the_incident_page_shows_hostile_analysis_text_as_text() -> None:
    body = trio.run(_render, HOSTILE, "<script>alert(2)</script>", "/x")[2]
    page = parse(body)
    assert page.tags <= TAGS and "script" not in parse(body.split("</head>")[1]).tags
    text = page.text
    assert 'origin: "<img src=x onerror=alert(1)>"[4242]' in text  # a fact's value
    assert 'runbook: "<script>alert(2)</script>"' in text
    assert 'summary: "<script>alert(2)</script>"' in text  # the model's words
    assert "model: verified" in text
    assert "<script>alert(2)" not in body and "<img" not in body


def test_a_value_not_measured_is_a_dash_never_zero() -> None:
    assert measured(None, "%") == "—" and measured(float("nan")) == "—"
    assert measured(0.0, "%") == "0.0%" and measured(12.345, " MB", 2) == "12.35 MB"
    assert number(None) == "—" and number(0) == "0" and number(1234567) == "1,234,567"


def test_time_left_in_words() -> None:
    assert time_left(None, 0) == "no deadline"
    assert time_left(100.0, 100.0) == "expiring now"
    assert time_left(100.0, 40.5) == "1m 00s left"
    assert time_left(100.0, 91.0) == "9s left"
