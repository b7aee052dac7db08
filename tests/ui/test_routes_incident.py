"""The dashboard's incident page through the real app: the summary, the analysis's facts
and the model's part labelled, "Analyse now", and what it says without an analysis."""

from __future__ import annotations

import html
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


async def test_the_page_without_a_session_goes_to_sign_in(tmp_path: Path,
                                                          nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    incident = open_incident(ui.env.store)
    browser = ui.browser()
    status, _, headers = await browser.get(f"/ui/incidents/{incident}")
    assert (status, headers["Location"]) == (303, "/ui/signin")
    status, body, _ = await browser.post(f"/ui/incidents/{incident}/analyze", {})
    assert status == 401 and "Not signed in." in body
    assert ui.env.store.analysis(incident) is None


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
    status, body, _ = await browser.post(f"/ui/incidents/{incident}/analyze", {})
    assert status == 403 and "CSRF" in body
    assert ui.env.store.analysis(incident) is None and ui.view.asked == []
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
