"""The alerts page and the incidents page through the real app: what they list, their
filters (plain text, never a pattern), bounds and paging, empty states that explain
themselves, links to incidents and processes, and refusals of filters they cannot
apply."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import trio
from api_support import TOKEN
from htmltext_support import parse
from hypothesis import example, given
from hypothesis import strategies as st
from ui_support import Browser, UiEnv, fake_app, start_ui

from linnix.actions.store import Store
from linnix.ui.alertdata import HISTORY_SHOWN, INCIDENTS_PAGE

HOSTILE = "<img src=x onerror=alert(1)>"


async def signed_in(ui: UiEnv) -> Browser:
    browser = ui.browser()
    assert (await browser.sign_in(TOKEN))[0] == 303
    return browser


def text(body: str) -> str:
    """The page's text as a reader sees it: tags gone, entities decoded, spaces folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def active(rule: str, state: str, pid: int | None, comm: str | None = "worker",
           incident_id: int | None = None, severity: str = "critical") -> dict[str, Any]:
    return {"rule": rule, "state": state, "severity": severity, "scope": "process",
            "pid": pid, "comm": comm, "start": 1.0, "message": f"{comm}[{pid}] is busy",
            "labels": {"team": "infra"}, "values": {}, "time": "2027-01-15T08:00:00Z",
            "incident_id": incident_id}


def transition(n: int, rule: str = "hot", state: str = "firing", *,
               severity: str = "critical", incident_id: int | None = None,
               comm: str = "worker", pid: int | None = 100) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "alert", "ts": float(n), "rule": rule, "state": state, "severity": severity,
        "scope": "process", "pid": pid, "comm": comm, "start": 1.0,
        "message": f"{comm}[{pid}] burns {n}%", "labels": {"team": "infra"}, "values": {},
        "reason": "cleared" if state == "resolved" else None,
        "time": f"2027-01-15T08:{n // 60 % 60:02d}:{n % 60:02d}Z"}
    if incident_id is not None:
        record["incident_id"] = incident_id
    return record


def proposal(n: int, rule: str = "hot", pid: int = 100) -> dict[str, Any]:
    return {"type": "action", "ts": float(n), "rule": rule, "action": "kill", "pid": pid,
            "comm": "worker", "start": 1.0, "status": "proposed",
            "time": f"2027-01-15T08:00:{n:02d}Z"}


# ---- sessions ---------------------------------------------------------------------------

async def test_the_navigation_links_both_pages(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    _, body, _ = await browser.get("/ui/alerts")
    assert '<a href="/ui/alerts" aria-current="page">Alerts</a>' in body
    assert '<a href="/ui/incidents">Incidents</a>' in body
    _, body, _ = await browser.get("/ui/incidents/12345")  # an incident's page: Incidents
    assert '<a href="/ui/incidents" aria-current="page">Incidents</a>' in body


# ---- alerts -----------------------------------------------------------------------------

async def test_active_alerts_and_history_with_their_links(tmp_path: Path,
                                                        nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    ui.view.active = [active("hot", "firing", 100, incident_id=7),
                      active("slow", "pending", 101, severity="warning"),
                      active("load", "firing", None, comm=None)]
    ui.view.history = [transition(1, state="pending"), transition(2, incident_id=7),
                       proposal(2), transition(3, "hot", "resolved", incident_id=7)]
    browser = await signed_in(ui)
    status, body, _ = await browser.get("/ui/alerts")
    assert status == 200
    active_part, history_part = body.split('id="history-title"')
    assert text(active_part).count("since 2027-01-15T08:00:00Z") == 3
    assert '<a class="incident" href="/ui/incidents/7">Incident 7</a>' in active_part
    assert '<a class="target" href="/ui/processes/100">worker [100]</a>' in active_part
    assert '<span class="target">the host</span>' in active_part  # no pid: no link
    assert "Active: pending and firing (3)" in text(active_part)
    rows = re.findall(r'<li class="transition.*?</li>', history_part, re.S)
    assert [text(r) for r in rows] == [  # newest first
        "2027-01-15T08:00:03Z resolved (cleared) critical hot worker [100] worker[100] burns "
        "3% Incident 7",
        "2027-01-15T08:00:02Z action hot worker [100] kill proposed",
        "2027-01-15T08:00:02Z firing critical hot worker [100] worker[100] burns 2% Incident 7",
        "2027-01-15T08:00:01Z pending critical hot worker [100] worker[100] burns 1%"]
    assert "The daemon keeps the newest 1000 transitions and proposals since it started " \
           "(4 now)." in text(history_part)
    # the list part, as htmx fetches it again, is the same
    status, fragment, _ = await browser.get("/ui/fragments/alerts")
    listed = body.split('data-live-events="alert action incident">')[1].split("</main>")[0]
    assert status == 200 and text(fragment) == text(listed).removesuffix("</div>").strip()


async def test_filters_by_rule_severity_state_and_text(tmp_path: Path,
                                                       nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    ui.view.active = [active("hot", "firing", 100), active("slow", "pending", 101,
                                                           severity="warning")]
    ui.view.history = [transition(1, "hot"), transition(2, "slow", severity="warning",
                                                        comm="Nginx"),
                       proposal(3, "hot"), transition(4, "hot", "resolved")]
    browser = await signed_in(ui)

    async def shown(query: str) -> tuple[list[str], list[str]]:
        status, body, _ = await browser.get(f"/ui/fragments/alerts?{query}")
        assert status == 200, body
        active_part, history_part = body.split('id="history-title"')
        return (re.findall(r'<strong class="rule">([^<]*)</strong>', active_part),
                re.findall(r"<time>([^<]*)</time>", history_part))

    assert await shown("rule=hot") == (["hot"], ["2027-01-15T08:00:04Z",
                                                 "2027-01-15T08:00:03Z",
                                                 "2027-01-15T08:00:01Z"])
    assert await shown("severity=warning") == (["slow"], ["2027-01-15T08:00:02Z"])
    assert await shown("state=action") == ([], ["2027-01-15T08:00:03Z"])
    assert await shown("state=pending") == (["slow"], [])
    assert await shown("q=NGINX") == ([], ["2027-01-15T08:00:02Z"])  # ignoring case
    assert await shown("q=team%3Dinfra&rule=slow") == (["slow"], ["2027-01-15T08:00:02Z"])
    assert await shown("q=kill") == ([], ["2027-01-15T08:00:03Z"])  # a proposal's action
    assert await shown("q=.%2A") == ([], [])  # text, never a pattern
    assert await shown("rule=ho") == ([], [])  # a rule is named whole
    # the page keeps the filters in its form and in what htmx fetches again
    _, body, _ = await browser.get("/ui/alerts?rule=hot&severity=critical&state=firing&q=b%26c")
    assert 'value="hot"' in body and 'value="b&amp;c"' in body
    assert '<option value="critical" selected>' in body
    assert '<option value="firing" selected>' in body
    assert ('hx-get="/ui/fragments/alerts?rule=hot&amp;severity=critical&amp;state=firing'
            '&amp;q=b%26c"') in body
    assert 'href="/ui/alerts" id="filter-clear"' in body


async def test_filters_it_cannot_apply_are_refused_with_the_reason(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    for query, reason in (
            ("state=asleep", "Choose the state among pending, firing, resolved, action"),
            ("severity=%3Cb%3E", "Choose the severity among info, warning, critical"),
            ("q=" + "x" * 201, "The text filter has at most 200 characters."),
            ("rule=" + "r" * 201, "The rule filter has at most 200 characters.")):
        for path in ("/ui/alerts", "/ui/fragments/alerts"):
            status, body, _ = await browser.get(f"{path}?{query}")
            assert status == 400 and reason in html.unescape(body), (path, query)
    status, body, _ = await browser.get("/ui/alerts?severity=%3Cb%3E")
    assert "&#39;&lt;b&gt;&#39;" in body and "<b>" not in body


async def test_the_history_shown_is_bounded_and_says_so(tmp_path: Path,
                                                        nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    ui.view.history = [transition(n, "hot" if n % 2 else "cold") for n in range(1000)]
    browser = await signed_in(ui)
    _, body, _ = await browser.get("/ui/alerts")
    assert body.count('<li class="transition') == HISTORY_SHOWN
    assert f"Showing the newest {HISTORY_SHOWN} of 1000 transitions." in text(body)
    assert "08:16:39Z" in body and "08:13:19Z" not in body  # 999 shown, 799 not
    _, body, _ = await browser.get("/ui/alerts?rule=cold")
    assert f"Showing the newest {HISTORY_SHOWN} of 500 matching transitions." in text(body)


async def test_empty_states_explain_themselves(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    _, body, _ = await browser.get("/ui/alerts")
    assert "No alerts pending or firing; 7 rules loaded." in text(body)
    assert "No alert has changed state since the daemon started" in text(body)
    ui.view.active = [active("hot", "firing", 100)]
    ui.view.history = [transition(1)]
    _, body, _ = await browser.get("/ui/alerts?rule=cold")
    assert "No active alert matches these filters (1 active in all)." in text(body)
    assert "No transition matches these filters, among the 1 the daemon keeps." in text(body)
    ui.view.status["rules"] = 1
    ui.view.active = []
    _, body, _ = await browser.get("/ui/alerts")
    assert "No alerts pending or firing; 1 rule loaded." in text(body)


# ---- incidents --------------------------------------------------------------------------

def open_incident(store: Store, rule: str = "hot", severity: str = "critical",
                  pid: int | None = 100, comm: str | None = "worker",
                  message: str = "worker[100] is busy", scope: str = "process") -> int:
    return store.open_incident(rule=rule, severity=severity, scope=scope, pid=pid,
                               comm=comm, start=1.0, message=message, labels={},
                               history=[], subtree=[], host={})


async def test_incidents_are_listed_newest_first_with_links(tmp_path: Path,
                                                           nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    store = ui.env.store
    first = open_incident(store)
    second = open_incident(store, "load", "warning", None, None, "the host is busy", "system")
    store.resolve_incident(first, "cleared")
    browser = await signed_in(ui)
    status, body, _ = await browser.get("/ui/incidents")
    assert status == 200
    rows = re.findall(r'<li class="incident-row.*?</li>', body, re.S)
    assert len(rows) == 2
    assert f'<a class="incident" href="/ui/incidents/{second}" id="incident-{second}">' \
           f"Incident {second}</a>" in rows[0]
    assert text(rows[0]).startswith(f"Incident {second} warning load the host open opened ")
    assert re.fullmatch(rf"Incident {first} critical hot worker \[100\] resolved \S+Z "
                        r"\(cleared\) opened \S+Z worker\[100\] is busy", text(rows[1]))
    assert 'id="older"' not in body and 'id="newest"' not in body


async def test_incidents_filter_and_page_with_the_before_cursor(tmp_path: Path,
                                                               nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    store = ui.env.store
    ids = [open_incident(store, "hot" if n % 3 else "cold", "critical" if n % 2 else "warning")
           for n in range(2 * INCIDENTS_PAGE + 5)]
    for n in range(0, len(ids), 4):
        store.resolve_incident(ids[n], "cleared")
    browser = await signed_in(ui)

    async def listed(query: str) -> tuple[list[int], str]:
        status, body, _ = await browser.get(f"/ui/incidents{query}")
        assert status == 200, body
        return [int(i) for i in re.findall(r'id="incident-(\d+)"', body)], body

    page, body = await listed("")
    assert page == ids[::-1][:INCIDENTS_PAGE]
    older = re.search(r'href="([^"]+)" id="older"', body)
    assert older is not None and html.unescape(older.group(1)) == \
        f"/ui/incidents?before={page[-1]}"
    page2, body = await listed(f"?before={page[-1]}")
    assert page2 == ids[::-1][INCIDENTS_PAGE:2 * INCIDENTS_PAGE]
    assert 'href="/ui/incidents" id="newest"' in body
    assert f"Older incidents, before {page[-1]}" in text(body)
    assert 'data-live-events' not in body  # an older page is not refreshed by push
    page3, body = await listed(f"?before={page2[-1]}")
    assert page3 == ids[::-1][2 * INCIDENTS_PAGE:] and 'id="older"' not in body

    hot_open = [i for n, i in enumerate(ids) if n % 3 and n % 4][::-1]
    page, body = await listed("?state=open&rule=hot")
    assert page == hot_open[:INCIDENTS_PAGE]
    older = re.search(r'href="([^"]+)" id="older"', body)
    assert older is not None and html.unescape(older.group(1)) == \
        f"/ui/incidents?state=open&rule=hot&before={page[-1]}"
    page, _ = await listed(f"?state=open&rule=hot&before={page[-1]}")
    assert page == hot_open[INCIDENTS_PAGE:]
    page, _ = await listed("?severity=warning&rule=cold")
    assert page == [i for n, i in enumerate(ids) if n % 3 == 0 and n % 2 == 0][::-1]


async def test_incident_empty_states_and_refusals(tmp_path: Path,
                                                  nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    _, body, _ = await browser.get("/ui/incidents")
    assert "No incident recorded: one opens when a rule fires; 7 rules loaded." in text(body)
    open_incident(ui.env.store)
    _, body, _ = await browser.get("/ui/incidents?rule=cold")
    assert "No incident matches these filters." in text(body)
    _, body, _ = await browser.get("/ui/incidents?before=1")
    assert "No older incident." in text(body)
    for query, reason in (("before=x", "'before' is an incident id"),
                          ("before=0", "'before' is an incident id"),
                          ("before=99999999999999999999", "'before' is an incident id"),
                          ("before=%D9%A3", "'before' is an incident id"),  # a digit, not ASCII
                          ("state=closed", "Choose the state among open, all"),
                          ("severity=high", "Choose the severity among info, warning")):
        status, body, _ = await browser.get(f"/ui/incidents?{query}")
        assert status == 400 and reason in html.unescape(body), query
    status, fragment, _ = await browser.get("/ui/fragments/incidents")
    assert status == 200 and 'id="incident-1"' in fragment


# ---- hostile text -----------------------------------------------------------------------

# every element the pages write; anything else would have come from the data
TAGS = {"html", "head", "meta", "title", "link", "script", "body", "a", "header", "form",
        "input", "span", "button", "nav", "ul", "li", "main", "h1", "h2", "p", "label",
        "datalist", "option", "select", "div", "section", "strong", "time", "ol"}


class _Store:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def incidents(self, **_: Any) -> list[dict[str, Any]]:
        return self.rows


STORE = _Store()
VIEW, APP = fake_app(STORE)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


async def _render(comm: str, message: str, rule: str, label: str) -> list[str]:
    VIEW.active = [{**active(rule, "firing", 4242, comm, 9), "message": message,
                    "labels": {label: label}}]
    VIEW.history = [{**transition(1, rule, "resolved", comm=comm, pid=4242, incident_id=9),
                     "message": message, "reason": label},
                    {**proposal(2, rule, 4242), "comm": comm, "action": label},
                    {**transition(3, rule, comm=comm, pid=None), "cgroup": label}]
    VIEW.rule_list = [{"name": rule}]
    STORE.rows = [{"id": 9, "rule": rule, "severity": "critical", "scope": "process",
                   "pid": 4242, "comm": comm, "opened_at": 1.0, "time": "t",
                   "resolved_at": 2.0, "resolved_reason": label, "message": message}]
    browser = Browser(APP, "127.0.0.1")
    assert (await browser.sign_in(TOKEN))[0] == 303
    bodies = []
    for path in ("/ui/alerts", "/ui/incidents"):
        status, body, _ = await browser.get(path)
        assert status == 200, body
        bodies.append(body)
    return bodies


@given(comm=texts, message=texts, rule=texts, label=texts)
@example(comm=HOSTILE, message="<script>alert(1)</script>", rule='"><svg onload=alert(1)>',
         label="' onmouseover='x")
@example(comm="{{ 7*7 }}", message="&lt;b&gt;", rule="</datalist><b>", label="</option>")
def test_hostile_text_is_rendered_as_text(comm: str, message: str, rule: str,
                                          label: str) -> None:
    alerts, incidents = trio.run(_render, comm, message, rule, label)
    for body in (alerts, incidents):
        page = parse(body)
        assert page.tags <= TAGS, page.tags - TAGS
        assert not any(name.startswith("on") for name in page.attributes)
        shown = page.text
        for value in (f"{comm} [4242]", message, rule):
            assert value.strip() in shown or not value.strip()
    assert label.strip() in parse(alerts).text or not label.strip()


def test_the_hostile_name_is_shown_whole_and_never_as_markup() -> None:
    for body in trio.run(_render, HOSTILE, HOSTILE, "r", "l"):
        assert "&lt;img src=x onerror=alert(1)&gt; [4242]" in body
        assert "<img" not in body


_QUERY = st.dictionaries(
    st.sampled_from(["rule", "severity", "state", "q", "before", "x"]) | texts,
    st.sampled_from(["hot", "critical", "open", "firing", "action", "1", "0", "-1", ""])
    | texts, max_size=5)


async def _ask(path: str, query: dict[str, str]) -> tuple[int, str]:
    browser = Browser(APP, "127.0.0.1")
    assert (await browser.sign_in(TOKEN))[0] == 303
    response = await browser.client.get(path, query_string=query)
    return response.status_code, response.headers["Content-Type"]


@given(path=st.sampled_from(["/ui/alerts", "/ui/fragments/alerts", "/ui/incidents",
                             "/ui/fragments/incidents"]), query=_QUERY)
@example(path="/ui/incidents", query={"before": "1" * 30})
@example(path="/ui/alerts", query={"q": "\x00(?:a+)+$"})
def test_any_query_is_answered_or_refused_never_a_crash(path: str,
                                                       query: dict[str, str]) -> None:
    VIEW.active, VIEW.history, STORE.rows = [], [transition(1)], []
    status, kind = trio.run(_ask, path, query)
    assert status in (200, 400) and kind.startswith("text/html")
