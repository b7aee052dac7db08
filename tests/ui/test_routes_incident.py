"""The dashboard's incident page through the real app: the summary, the analysis's facts
and the model's part labelled, "Analyse now", and what it says without an analysis; the
rule's source, the values its condition read (and their JSON), the subtree snapshot, the
timeline; and the overview's link from a firing alert."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import trio
from api_support import PID_A, PID_B, TOKEN
from ui_support import Browser, UiEnv, start_ui

from linnix.actions import Target
from linnix.actions.store import Store
from linnix.analysis import analyze_stored
from linnix.analysis.render import fact_lines
from linnix.plan import CompiledAction
from linnix.timefmt import rfc3339
from linnix.ui.incidentdata import SUBTREE_SHOWN
from linnix.ui.security import CSP

# a model's part of each kind, as linnix.analysis.model stores them
PARTS = {
    "verified": {"verified": True, "summary": "app spins in a loop",
                 "hypotheses": [{"hypothesis": "a busy loop", "facts": ["F1"]}],
                 "dropped": 1},
    "unverified": {"verified": False, "problem": "the answer is not JSON",
                   "text": "It is **probably** <b>app</b>"},
    "failed": {"verified": False, "error": "no answer within 30s"},
    "pending": {"pending": True},
}


def open_incident(store: Store, comm: str = "app") -> int:
    proc = {"pid": PID_A, "comm": comm, "exe": f"/usr/bin/{comm}", "cmdline": f"{comm} -x",
            "cpu_pct": 99.0, "depth": 0, "subtree_cpu_pct": 99.0}
    return store.open_incident(rule="hot", severity="critical", scope="process", pid=PID_A,
                               comm=comm, start=0.0, message=f"{comm} is hot", labels={},
                               history=[{"ts": 1.0, "values": {"cpu_pct": 99.0}}],
                               subtree=[proc], host={},
                               context={"condition": "cpu_pct > 80",
                                        "runbook": "restart it"})


async def signed_in(ui: UiEnv, name: str | None = None) -> Browser:
    """A browser signed in with the token named ``name`` (the admin's without one)."""
    browser = ui.browser()
    status, _, _ = await browser.sign_in(ui.env.tokens[name] if name else TOKEN)
    assert status == 303
    return browser


async def test_an_unknown_incident_is_a_404_page(tmp_path: Path,
                                                 nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    for number in (99, 0, 2**63, 10**30):
        status, body, headers = await browser.get(f"/ui/incidents/{number}")
        assert status == 404, number
        assert f'id="refused">No incident has id {number}.<' in body
        assert headers["Content-Security-Policy"] == CSP
        assert headers["Cache-Control"] == "no-store"
    await browser.get("/ui/")  # a page with the CSRF token
    status, body, _ = await browser.with_csrf("/ui/incidents/99/analyze", {})
    assert status == 404 and "no incident has id 99" in body


async def test_the_summary_and_no_analysis_yet(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    incident = open_incident(ui.env.store)
    row = ui.env.store.incident(incident)
    assert row is not None
    browser = await signed_in(ui)
    status, body, headers = await browser.get(f"/ui/incidents/{incident}")
    assert status == 200 and headers["Content-Security-Policy"] == CSP
    assert f"Incident {incident}: " in body and '<span class="rule">hot</span>' in body
    assert 'id="incident-state">open<' in body
    assert (f'id="incident-target"><a href="/ui/processes/{PID_A}">app [{PID_A}]</a><'
            in body)
    assert 'id="incident-exe">/usr/bin/app<' in body
    assert f'id="incident-opened">{rfc3339(row["opened_at"])}<' in body
    assert 'id="incident-message">app is hot<' in body
    assert "incident-resolved" not in body
    assert ("No analysis: the rule has no <code>analyze</code> action; <code>linnix "
            f"incidents analyze {incident}</code> makes one.") in body
    assert 'id="analyze">Analyse now<' in body  # the admin may
    reader = await signed_in(ui, "rita")
    _, body, _ = await reader.get(f"/ui/incidents/{incident}")
    assert "No analysis" in body and 'id="analyze"' not in body
    ui.env.store.resolve_incident(incident, "cleared")
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    resolved = ui.env.store.incident(incident)
    assert resolved is not None
    assert 'id="incident-state">resolved<' in body
    assert f'id="incident-resolved">{rfc3339(resolved["resolved_at"])}: cleared<' in body


async def test_analyse_now_stores_the_analysis_and_asks_the_model(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    incident = open_incident(ui.env.store)
    ui.view.model = True
    browser = await signed_in(ui, "alice")
    await browser.get(f"/ui/incidents/{incident}")
    status, _, headers = await browser.with_csrf(f"/ui/incidents/{incident}/analyze", {})
    assert (status, headers["Location"]) == (303, f"/ui/incidents/{incident}")
    stored = ui.env.store.analysis(incident)
    assert stored is not None and stored["analysis"] == analyze_stored(ui.env.store, incident)
    assert ui.view.asked == [incident]  # as POST /incidents/{id}/analyze does
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    facts = stored["analysis"]["facts"]
    assert len(facts) >= 2
    for number, fact in enumerate(facts, 1):
        assert f'<li id="fact-{number}"><strong class="fact-id">{fact["id"]}</strong>' in body
    shown = html.unescape(body)
    assert 'condition: "cpu_pct > 80" held for 0.0s before it fired' in shown
    assert 'runbook: "restart it"' in shown
    assert all(line in shown for _, line in fact_lines(stored["analysis"]))
    assert "No analysis" not in body and "analysis-model" not in body
    assert 'id="analyze">Analyse again<' in body
    reader = await signed_in(ui, "rita")
    await reader.get(f"/ui/incidents/{incident}")  # its own CSRF token: the role refuses
    status, body, _ = await reader.with_csrf(f"/ui/incidents/{incident}/analyze", {})
    assert status == 403 and "analysing needs approver or admin" in body
    assert ui.view.asked == [incident]


async def test_the_models_part_is_labelled(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    store = ui.env.store
    incident = open_incident(store)
    built = analyze_stored(store, incident)
    assert built is not None
    browser = await signed_in(ui)
    for state, part in PARTS.items():
        model = {"backend": "openai", "model": "fake-7b", **part}
        assert store.save_analysis(incident, {**built, "model": model})
        status, body, _ = await browser.get(f"/ui/incidents/{incident}")
        assert status == 200
        assert f'class="model model-{state}"' in body
        assert f'id="model-state">model: {state}<' in body
        assert "model fake-7b (openai)" in body
        assert '<strong class="fact-id">F1</strong>' in body  # the facts stay beside it
    # the last one stored was pending; the unverified answer's words stay text
    store.save_analysis(incident, {**built, "model": {"backend": "openai", "model": "m",
                                                      **PARTS["unverified"]}})
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    assert "<b>app</b>" not in body
    assert "<li>&#34;It is **probably** &lt;b&gt;app&lt;/b&gt;&#34;</li>" in body
    assert "UNVERIFIED" in body


async def test_an_analysis_that_could_not_be_made_says_why(tmp_path: Path,
                                                          nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    incident = open_incident(ui.env.store)
    ui.env.store.save_analysis(incident, None, "the store was locked")
    browser = await signed_in(ui)
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    assert 'id="analysis-error">The analysis could not be made (' in body
    assert "): the store was locked</p>" in body
    assert "No analysis:" not in body


async def test_an_action_page_links_to_its_incident(tmp_path: Path,
                                                    nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    incident = open_incident(ui.env.store)
    row = await ui.env.manager.propose(
        rule="hot", action=CompiledAction("kill", True), target=Target(PID_A, "python3", None),
        incident_id=incident, monitor_only=False)
    browser = await signed_in(ui)
    _, body, _ = await browser.get(f"/ui/actions/{row['id']}")
    assert f'<a href="/ui/incidents/{incident}" id="action-incident">' in body
    other = await ui.env.propose(pid=PID_B, comm="worker")  # no incident: no link
    _, body, _ = await browser.get(f"/ui/actions/{other}")
    assert "action-incident" not in body
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    assert f'<a href="/ui/actions/{row["id"]}">Action {row["id"]}: kill</a>' in body


# ---- the rule, the values, the subtree, the timeline ---------------------------------------

SOURCE = 'rule hot {\n    when cpu_pct > 80 for 2s\n    severity critical\n}'


def open_full_incident(store: Store, processes: int = 3) -> int:
    """An incident whose history has three ticks (pending at 1.0, firing at 3.0) and
    whose snapshot has ``processes`` processes, a chain below the first."""
    subtree = [{"pid": PID_A + i, "comm": f"p{i}", "depth": i, "cpu_pct": 10.0 * i,
                "rss_mb": 1.5 * i, "fds": i, "subtree_cpu_pct": None,
                "subtree_procs": processes + 5 if i == 0 else None}
               for i in range(processes)]
    subtree[0]["comm"] = "app"
    return store.open_incident(
        rule="hot", severity="critical", scope="process", pid=PID_A, comm="app", start=0.0,
        message="app is hot", labels={},
        history=[{"ts": ts, "values": {"cpu_pct": cpu, "comm": "app", "pid": PID_A}}
                 for ts, cpu in ((1.0, 85.0), (2.0, 90.0), (3.0, 95.0))],
        subtree=subtree, host={}, context={"condition": "cpu_pct > 80"})


async def test_the_rules_source_is_shown_or_said_gone(tmp_path: Path,
                                                      nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    incident = open_full_incident(ui.env.store)
    browser = await signed_in(ui)
    ui.view.sources["hot"] = {"name": "hot", "path": "/etc/linnix/rules/hot.lnx", "line": 3,
                              "source": SOURCE, "explain": "hot: fires when <cpu> > 80"}
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    assert 'id="source-where">/etc/linnix/rules/hot.lnx:3<' in body
    shown = SOURCE.replace(">", "&gt;")
    assert f'id="rule-source" tabindex="0" aria-label="The source of rule hot">{shown}</pre>' \
        in body
    assert 'id="rule-explain" tabindex="0">hot: fires when &lt;cpu&gt; &gt; 80</pre>' in body
    assert 'id="incident-condition">cpu_pct &gt; 80<' in body  # as it was when it fired
    assert "source-none" not in body and "source-unreadable" not in body
    ui.view.sources["hot"] = {**ui.view.sources["hot"], "source": None, "explain": None}
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    assert 'id="source-unreadable">Its file can no longer be read.<' in body
    assert "rule-source" not in body and "rule-explain" not in body
    del ui.view.sources["hot"]
    ui.view.rule_list = [{"name": "hot", "path": "/etc/linnix/rules/hot.lnx", "line": 3}]
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    assert 'id="source-where">/etc/linnix/rules/hot.lnx:3<' in body  # listed, no source
    assert 'id="source-unavailable">The daemon does not give the rule\'s text here' in body
    ui.view.rule_list = []
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    assert ('id="source-none">The rule hot is no longer loaded: there is no source to '
            "show.<") in body
    assert 'id="incident-condition">cpu_pct &gt; 80<' in body  # the incident kept it


async def test_the_values_json_places_every_point(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    store = ui.env.store
    incident = open_full_incident(store)
    row = store.incident(incident)
    assert row is not None
    opened = row["opened_at"]
    path = f"/ui/incidents/{incident}/values.json"
    browser = await signed_in(ui)
    status, body, headers = await browser.get(path)
    assert status == 200 and headers["Content-Type"] == "application/json"
    data = json.loads(body)
    # open, nothing saved while open yet: the history, placed from the opening
    assert data == {"t": [opened - 2.0, opened - 1.0, opened], "opened": opened,
                    "resolved": None,
                    "names": {"cpu_pct": {"unit": "%", "before": [85.0, 90.0, 95.0],
                                          "open": [None, None, 95.0]}}}
    # saved while open: it begins with the firing, a moment before the store opened it
    fired = opened - 0.05
    trail = [{"at": fired, "values": {"cpu_pct": 95.0, "comm": "app"}},
             {"at": fired + 1.0, "values": {"cpu_pct": None, "comm": "app"}}]
    store.keep_trails({incident: trail})
    data = json.loads((await browser.get(path))[1])
    assert data["t"] == [fired - 2.0, fired - 1.0, fired, fired + 1.0]  # placed from it
    assert data["opened"] == fired
    assert data["names"]["cpu_pct"] == {"unit": "%", "before": [85.0, 90.0, 95.0, None],
                                        "open": [None, None, 95.0, None]}
    store.resolve_incident(incident, "cleared", [*trail, {"at": fired + 2.0, "values": {}}])
    resolved = store.incident(incident)
    assert resolved is not None
    data = json.loads((await browser.get(path))[1])
    assert data["t"] == [fired - 2.0, fired - 1.0, fired, fired + 1.0, fired + 2.0]
    assert data["resolved"] == resolved["resolved_at"]
    # a restart lost the firing's point (nothing was saved): placed from the opening
    other = open_full_incident(store)
    row = store.incident(other)
    assert row is not None
    later = [{"at": row["opened_at"] + 9.0, "values": {"cpu_pct": 20.0, "comm": "app"}}]
    store.resolve_incident(other, "cleared", later)
    data = json.loads((await browser.get(f"/ui/incidents/{other}/values.json"))[1])
    opened = row["opened_at"]
    assert data["t"] == [opened - 2.0, opened - 1.0, opened, opened + 9.0]
    assert data["names"]["cpu_pct"] == {"unit": "%", "before": [85.0, 90.0, 95.0, None],
                                        "open": [None, None, 95.0, 20.0]}
    for number in (99, 0):
        status, body, _ = await browser.get(f"/ui/incidents/{number}/values.json")
        assert status == 404 and json.loads(body)["error"] == "not_found"


async def test_a_chart_per_number_the_condition_read_and_the_rest_as_text(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    incident = open_full_incident(ui.env.store)
    browser = await signed_in(ui)
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    assert '<script src="/ui/static/charts.js" defer></script>' in body
    assert (f'data-values-url="/ui/incidents/{incident}/values.json" '
            'data-values-every="30"') in body  # open: fetched again
    assert ('<figure class="chart" data-values="cpu_pct" role="img" aria-label="Chart: '
            "cpu_pct (%) over the incident's window: 95.0% when it opened, 95.0% at the "
            'highest, 95.0% last">') in body
    assert '<p class="help">When it opened 95.0%; highest 95.0%; last 95.0%.</p>' in body
    assert body.count("<figure") == 1  # pid is a number that names, comm is text
    texts = body[body.index('id="values-texts"'):]
    assert '<dt>comm</dt><dd><span class="value">app</span></dd>' in texts
    assert f'<dt>pid</dt><dd><span class="value">{PID_A}</span></dd>' in texts
    assert "3 point(s) from " in body and ": 2 while it was pending (one a tick); none " \
        "saved yet from while it is open (every 30 s, and when it resolves)." in body
    ui.env.store.resolve_incident(incident, "cleared")
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    assert 'data-values-every="0"' in body  # resolved: drawn once
    assert "; none kept from while it was open." in body
    bare = ui.env.store.open_incident(
        rule="hot", severity="critical", scope="system", pid=None, comm=None, start=None,
        message="m", labels={}, history=[], subtree=[], host={})
    _, body, _ = await browser.get(f"/ui/incidents/{bare}")
    assert 'id="values-none">No values were recorded for this incident.<' in body
    assert "data-values-url" not in body
    assert 'id="subtree-none">No process snapshot was kept for this incident.<' in body


async def test_the_subtree_snapshot_is_a_bounded_tree(tmp_path: Path,
                                                      nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    incident = open_full_incident(ui.env.store, processes=60)
    browser = await signed_in(ui)
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    table = body[body.index('id="subtree"'):body.index("</table>")]
    assert table.count("<tr>") == 1 + SUBTREE_SHOWN  # the header, then 50 processes
    assert ('<tr><th scope="row" class="target depth-0"><span class="visually-hidden">'
            f"level 0: </span>app [{PID_A}]</th><td>0.0%</td><td>0.0 MiB</td><td>0</td>"
            "<td>—</td></tr>") in table  # not measured: a dash, never 0
    assert (f'class="target depth-2"><span class="visually-hidden">level 2: </span>p2 '
            f"[{PID_A + 2}]</th><td>20.0%</td><td>3.0 MiB</td><td>2</td>") in table
    assert 'depth-8"><span class="visually-hidden">level 9: </span>p9 [' in table
    assert f"p{SUBTREE_SHOWN} [" not in table
    # 10 more in the snapshot, and 5 more that the root's subtree held beyond it
    assert 'id="subtree-more">and 15 more not listed.<' in body
    assert ">The process and its subtree when it opened<" in body


async def test_the_timeline_in_time_order_with_a_decided_action(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    store = ui.env.store
    incident = open_full_incident(store)
    ui.env.proc.add(PID_A, "app")
    row = await ui.env.manager.propose(
        rule="hot", action=CompiledAction("kill", True), target=Target(PID_A, "app", None),
        incident_id=incident, monitor_only=False)
    browser = await signed_in(ui, "alice")
    await browser.get(f"/ui/actions/{row['id']}")
    status, _, _ = await browser.with_csrf(f"/ui/actions/{row['id']}",
                                           {"verb": "approve", "reason": "it <is> stuck"})
    assert status == 303
    await ui.env.wait_status(row["id"], "succeeded")
    await browser.get(f"/ui/incidents/{incident}")
    assert (await browser.with_csrf(f"/ui/incidents/{incident}/analyze", {}))[0] == 303
    store.resolve_incident(incident, "exited")
    _, body, _ = await browser.get(f"/ui/incidents/{incident}")
    timeline = body[body.index('<ol class="timeline" id="timeline">'):body.index("</ol>")]
    steps = [html.unescape(re.sub(r"<[^>]+>", "", li)).strip().split(" ", 1)
             for li in timeline.split("</li>")[:-1]]
    times = [when for when, _ in steps]
    assert times == sorted(times)
    name = f"action {row['id']} (kill)"
    assert [what.strip() for _, what in steps] == [
        "pending: the condition began to hold",
        "firing: the incident openedapp is hot",
        f"{name}: proposed by linnix",
        f"{name}: approved by aliceit <is> stuck",
        f"{name}: succeeded by linnixkill done to app[5000001]",
        "analysed",
        "resolvedexited"]
    assert '<span class="who">by alice</span><span class="why">it &lt;is&gt; stuck</span>' \
        in timeline


async def test_a_firing_alert_links_to_the_incident_the_view_names(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    """The overview links a firing alert to its incident by the alert's ``incident_id``
    (the responder's, which the view gives), whatever else is open in the store: an open
    incident of the same rule, pid and start that the alert does not name (left by an
    earlier run) is not its; nor is one once the view names none (resolved)."""
    ui = await start_ui(tmp_path, nursery)
    incident = open_full_incident(ui.env.store)
    open_incident(ui.env.store)  # hot, PID_A, start 0.0 too, newer: not the one named
    alert = {"rule": "hot", "state": "firing", "severity": "critical", "pid": PID_A,
             "comm": "app", "start": 0.0, "message": "app is hot", "time": "t",
             "incident_id": incident}
    ui.view.active = [alert, {**alert, "pid": PID_B, "comm": "other", "incident_id": None},
                      {**alert, "state": "pending", "incident_id": None}]
    browser = await signed_in(ui)
    _, body, _ = await browser.get("/ui/fragments/live")
    links = re.findall(r'<a class="incident" href="/ui/incidents/(\d+)">Incident (\d+)</a>',
                       body)
    assert links == [(str(incident), str(incident))]
    ui.view.active = [{**alert, "incident_id": None}]
    _, body, _ = await browser.get("/ui/fragments/live")
    assert 'class="incident"' not in body
