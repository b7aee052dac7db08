"""What every route of the dashboard owes, checked over the routes the app has (so a page
added later is checked without being named here): without a session a GET is sent to the
sign-in form (or answered 401), and a POST is refused without a session and, with one,
without the session's CSRF token (or with it from another site), changing nothing."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
import trio
from api_support import TOKEN
from quart import Blueprint
from quart_trio import QuartTrio
from ui_support import Browser, UiEnv, fake_app, start_ui

from linnix.ui import routes
from linnix.ui.web import UiState

# the routes open to anyone: sign-in (its form and its POST, which has no session yet:
# tests/ui/test_routes.py checks it is refused from another site), the static files,
# the bare prefix (a redirect to /ui/), and the one-time codes (an API token's request)
PUBLIC = {"ui.static", "ui.bare", "ui.signin_page", "ui.signin", "ui.codes"}
NOT_SIGNED_IN = {"error": "unauthorized", "detail": "not signed in"}
# a form that would change something if a POST took it
FORM = {"verb": "approve", "reason": "no token", "note": "no token"}
_PART = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def ui_routes(app: QuartTrio) -> list[tuple[str, str, str]]:
    """(method, endpoint, rule) of every GET and POST route of the dashboard but the
    public ones."""
    return sorted((method, r.endpoint, r.rule) for r in app.url_map.iter_rules()
                  if r.endpoint.startswith("ui.") and r.endpoint not in PUBLIC
                  for method in ("GET", "POST") if method in (r.methods or ()))


ROUTES = ui_routes(fake_app(None)[1])


def fill(rule: str, samples: dict[str, Any]) -> str:
    """The rule's path with each of its parts given a value: a sample of that name, else
    1 for a number and x for text."""
    def part(m: re.Match[str]) -> str:
        default = "1" if m.group(1) == "int" else "x"
        return str(samples.get(m.group(2), default))
    return _PART.sub(part, rule)


async def get_refusal(browser: Browser, path: str) -> str | None:
    """What is wrong with the answer to a GET of ``path`` without a session (None when
    it is refused: a page sends the browser to the sign-in form, a fragment has htmx do
    so, data is a JSON 401)."""
    status, body, headers = await browser.get(path)
    if status == 303 and headers.get("Location") == "/ui/signin" and not body:
        return None
    if status == 401 and headers.get("HX-Redirect") == "/ui/signin" and not body:
        return None
    if status == 401 and headers.get("Content-Type") == "application/json" \
            and json.loads(body) == NOT_SIGNED_IN:
        return None
    return f"GET {path} without a session: {status} {headers.get('Location')}"


async def post_refusals(ui: UiEnv, path: str) -> list[str]:
    """What is wrong with the answers to POSTs of ``path``: without a session; signed in
    without the CSRF token, with a guessed one, with the right one from another site."""
    problems = []
    status, body, _ = await ui.browser().post(path, FORM)
    if status != 401 or "Not signed in." not in body:
        problems.append(f"POST {path} without a session: {status}")
    browser = ui.browser()
    assert (await browser.sign_in(TOKEN))[0] == 303
    assert (await browser.get("/ui/"))[0] == 200 and browser.csrf
    for csrf, origin, site, why in (
            (None, "http://localhost", "same-origin", "CSRF token"),
            ("guess", "http://localhost", "same-origin", "CSRF token"),
            (browser.csrf, "http://evil.example", "cross-site", "another site")):
        form = FORM if csrf is None else {**FORM, "csrf": csrf}
        status, body, _ = await browser.post(path, form, origin=origin, site=site)
        if status != 403 or why not in html.unescape(body):
            problems.append(f"POST {path} (csrf {csrf}, from {origin}): {status}")
    if (await browser.get("/ui/"))[0] != 200:
        problems.append(f"POST {path} without the CSRF token ended the session")
    return problems


async def _env(tmp_path: Path, nursery: trio.Nursery) -> tuple[UiEnv, dict[str, Any]]:
    """The app over a real store with what each route's POST could change: a pending
    action, an open incident without an analysis, a rule; and the routes' samples (by
    the name of the part of the path they fill)."""
    ui = await start_ui(tmp_path, nursery)
    action = await ui.env.propose()
    incident = ui.env.store.open_incident(
        rule="hot", severity="critical", scope="process", pid=1, comm="init", start=0.0,
        message="hot", labels={}, history=[], subtree=[], host={})
    ui.view.rule_list = [{"name": "hot", "path": "/r.lnx", "line": 1, "scope": "process",
                          "severity": "critical", "enabled": True, "tags": [],
                          "condition": "cpu_pct > 80", "for_s": 0.0, "actions": [],
                          "counts": {"pending": 0, "firing": 0}}]
    pid = min(ui.view.procs)
    return ui, {"action_id": action, "incident_id": incident, "name": "hot", "pid": pid}


def test_the_dashboard_has_routes_to_check() -> None:
    endpoints = {endpoint for _, endpoint, _ in ROUTES}
    assert {"ui.overview", "ui.live_fragment", "ui.host", "ui.decide_action",
            "ui.signout"} <= endpoints
    assert not endpoints & PUBLIC


@pytest.mark.parametrize(("method", "endpoint", "rule"), ROUTES,
                         ids=[f"{m} {rule}" for m, _, rule in ROUTES])
async def test_a_route_needs_a_session_and_a_post_its_csrf_token(
        method: str, endpoint: str, rule: str, tmp_path: Path,
        nursery: trio.Nursery) -> None:
    ui, samples = await _env(tmp_path, nursery)
    path = fill(rule, samples)
    if method == "GET":
        assert await get_refusal(ui.browser(), path) is None
        return
    audited = len(ui.env.store.audit_log(limit=1000))
    assert await post_refusals(ui, path) == []
    # and nothing changed: no decision, reload, analysis or record
    assert ui.env.store.action(samples["action_id"])["status"] == "pending"
    assert ui.env.store.analysis(samples["incident_id"]) is None
    assert ui.view.reloads == [] and ui.view.asked == []
    assert len(ui.env.store.audit_log(limit=1000)) == audited


def _naked(bp: Blueprint, state: UiState) -> None:
    """A page group that forgot the checks."""

    @bp.get("/naked/<int:n>")
    async def naked_page(n: int) -> str:
        return f"page {n}"

    @bp.post("/naked/<int:n>")
    async def naked_form(n: int) -> str:
        return f"done {n}"


async def test_a_page_added_without_the_checks_is_caught(
        tmp_path: Path, nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "PAGES", (*routes.PAGES, _naked))
    ui = await start_ui(tmp_path, nursery)
    found = [(m, rule) for m, endpoint, rule in ui_routes(ui.app) if "naked" in endpoint]
    assert found == [("GET", "/ui/naked/<int:n>"), ("POST", "/ui/naked/<int:n>")]
    assert await get_refusal(ui.browser(), fill(found[0][1], {})) == \
        "GET /ui/naked/1 without a session: 200 None"
    assert len(await post_refusals(ui, "/ui/naked/1")) == 4
