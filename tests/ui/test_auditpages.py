"""The audit page through the real app over a real store: newest first, a page at a
time, filtered by who, event and action; the chain checked on demand; bad filters
refused in words; hostile text stays text."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import trio
from api_support import TOKEN
from htmltext_support import TEMPLATE_TAGS, parse
from hypothesis import example, given
from hypothesis import strategies as st
from ui_support import Browser, UiEnv, fake_app, start_ui

from linnix.ui.auditpages import AUDIT_PAGE

HOSTILE = "<img src=x onerror=alert(1)>"
_ROW = re.compile(r'<tr id="audit-(\d+)">')


async def signed_in(ui: UiEnv, token: str = TOKEN) -> Browser:
    browser = ui.browser()
    assert (await browser.sign_in(token))[0] == 303
    return browser


async def shown(browser: Browser, query: str = "") -> tuple[list[int], str]:
    """The ids of the records the page lists, in order, and the page."""
    status, body, _ = await browser.get(f"/ui/audit{query}")
    assert status == 200, body
    return [int(x) for x in _ROW.findall(body)], body


async def test_records_are_listed_newest_first_with_links(tmp_path: Path,
                                                          nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    store = ui.env.store
    first = store.audit("alice", "action.approved", action_id=7, reason=f"kill {HOSTILE}")
    second = store.audit("linnix", "incident.opened", incident_id=3, rule="r", pid=42)
    browser = await signed_in(ui)
    ids, body = await shown(browser)
    assert ids[:2] == [second, first]
    assert '<a href="/ui/audit" aria-current="page">Audit</a>' in body
    assert '<a href="/ui/actions/7">Action 7</a>' in body
    assert '<a href="/ui/incidents/3">Incident 3</a>' in body
    assert '<span class="key">reason:</span> kill &lt;img src=x onerror=alert(1)&gt;' in body
    assert '<span class="key">pid:</span> 42</span>' in body  # a number as JSON
    assert '<a href="/ui/audit?actor=alice" aria-label="Only the records of alice">alice</a>' \
        in body
    assert re.search(r"<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z</time>", body)


async def test_the_log_filters_by_who_event_and_action(tmp_path: Path,
                                                       nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    store = ui.env.store
    made = [store.audit(actor, event, action_id=action) for actor, event, action in (
        ("alice", "action.approved", 1), ("bob", "action.rejected", 2),
        ("alice", "action.rejected", 3), ("alice", "action.note", 3))]
    browser = await signed_in(ui)
    assert (await shown(browser, "?actor=alice"))[0] == [made[3], made[2], made[0]]
    assert (await shown(browser, "?actor=alice&event=action.rejected"))[0] == [made[2]]
    ids, body = await shown(browser, "?action=3&actor=+alice+")  # spaces around: trimmed
    assert ids == [made[3], made[2]]
    assert 'value="alice"' in body and "(filtered)" in body
    # a record's who and event narrow the filters the page has
    assert '<a href="/ui/audit?actor=alice&amp;action=3" aria-label="Only the records of ' \
           'alice">' in body
    assert '<a href="/ui/audit?actor=alice&amp;event=action.note&amp;action=3"' in body
    ids, body = await shown(browser, "?actor=carol&event=action.approved")
    assert ids == []
    assert "No record matches who “carol” the event “action.approved”" in html.unescape(body)


async def test_the_log_is_paged_with_an_older_link(tmp_path: Path,
                                                   nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    made = [ui.env.store.audit("bob", "action.note", n=i) for i in range(AUDIT_PAGE + 5)]
    browser = await signed_in(ui)
    ids, body = await shown(browser, "?actor=bob")
    assert ids == made[::-1][:AUDIT_PAGE]
    older = re.search(r'<a href="([^"]+)" id="audit-older"', body)
    assert older is not None
    assert html.unescape(older.group(1)) == f"/ui/audit?actor=bob&before={made[5]}"
    ids, body = await shown(browser, html.unescape(older.group(1)).removeprefix("/ui/audit"))
    assert ids == made[4::-1] and 'id="audit-older"' not in body
    assert '<a href="/ui/audit?actor=bob" id="audit-newest">Newest</a>' in body
    ids, body = await shown(browser, f"?actor=bob&before={made[0]}")
    assert ids == [] and "No older record matches the filters." in body


async def test_a_bad_filter_is_refused_in_words(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    for query, words in (("action=x", "The action id must be a whole number from 1 to "),
                         ("action=0", "The action id must be a whole number"),
                         ("before=99999999999999999999", "The record id must be a whole"),
                         ("actor=" + "a" * 129, "The who filter has at most 128 characters."),
                         ("event=a%00b", "The event filter must be plain text: it has the "
                                         "control character U+0000.")):
        status, body, _ = await browser.get(f"/ui/audit?{query}")
        assert status == 400, query
        assert words in html.unescape(body), query


async def test_the_chain_is_checked_on_demand(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    store = ui.env.store
    made = [store.audit("alice", "action.note", n=i) for i in range(3)]
    browser = await signed_in(ui, ui.env.tokens["rita"])  # a reader may check it
    _, body = await shown(browser)
    assert 'id="chain-verdict"' not in body
    status, body, _ = await browser.with_csrf("/ui/audit/verify", {})
    assert status == 200
    head = store.chain_head
    assert (f"The chain holds: {head.rows} records checked, #1 to #{head.id}. Head: "
            f'<code class="hash">{head.hash}</code>') in body
    store.db.execute("DELETE FROM audit WHERE id = ?", (made[1],))  # a record removed
    _, body = await shown(browser, "?actor=alice")  # the check answers with the same page
    assert '<form method="post" action="/ui/audit/verify?actor=alice" class="verify">' in body
    status, body, _ = await browser.with_csrf("/ui/audit/verify?actor=alice", {})
    assert _ROW.findall(body) == [str(made[2]), str(made[0])] and 'value="alice"' in body
    assert f"The chain breaks at record #{made[2]}: it does not follow the record before " \
           f"it (#{made[0]})" in body


# ---- hostile text -----------------------------------------------------------------------

class _Store:
    """The store's read the audit page makes."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def audit_log(self, **query: Any) -> list[dict[str, Any]]:
        return self.rows


VIEW, APP = fake_app(_Store())
BROWSER = Browser(APP, "127.0.0.1")
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


async def _render(actor: str, event: str, value: str) -> str:
    VIEW.store.rows = [{"id": 5, "at": 1.8e9, "actor": actor, "event": event,
                        "action_id": 2, "incident_id": None,
                        "detail": {value: value, "n": [value, 1]}}]
    if BROWSER.csrf is None:
        assert (await BROWSER.sign_in(TOKEN))[0] == 303
    status, body, _ = await BROWSER.get("/ui/audit")
    assert status == 200, body
    return body


@given(actor=texts, event=texts, value=texts)
@example(actor=HOSTILE, event="<script>alert(1)</script>", value='"><svg onload=alert(1)>')
@example(actor="{{ 7*7 }}", event="&lt;b&gt;", value="' onmouseover='x")
def test_hostile_text_is_rendered_as_text(actor: str, event: str, value: str) -> None:
    body = trio.run(_render, actor, event, value)
    page = parse(body)
    assert page.tags <= TEMPLATE_TAGS, page.tags - TEMPLATE_TAGS
    assert not any(name.startswith("on") for name in page.attributes)
    for text in (actor, event, f"{value}: {value}"):
        assert text.strip() in page.text
