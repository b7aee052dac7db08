"""The dashboard's routes through the real app: sign-in, sessions, CSRF, the overview,
deciding on an action, one-time codes, and the headers of every answer."""

from __future__ import annotations

import html
from pathlib import Path

import trio
from api_support import AUTH, TOKEN
from ui_support import Browser, UiEnv, start_ui

from linnix.api.tokens import revoke_token
from linnix.ui.security import CSP


async def signed_in(ui: UiEnv, token: str = TOKEN) -> Browser:
    browser = ui.browser()
    status, _, _ = await browser.sign_in(token)
    assert status == 303
    status, body, _ = await browser.get("/ui/")
    assert status == 200, body
    return browser


async def test_the_bare_prefix_and_the_sign_in_form(tmp_path: Path,
                                                   nursery: trio.Nursery) -> None:
    """(Every other route without a session: tests/ui/test_routes_common.py.)"""
    ui = await start_ui(tmp_path, nursery)
    browser = ui.browser()
    status, _, headers = await browser.get("/ui")
    assert (status, headers["Location"]) == (308, "/ui/")
    status, body, _ = await browser.get("/ui/signin")
    assert status == 200 and 'name="token"' in body and 'type="password"' in body


async def test_signing_in_sets_a_strict_http_only_cookie(tmp_path: Path,
                                                        nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = ui.browser()
    status, _, headers = await browser.sign_in(TOKEN)
    assert (status, headers["Location"]) == (303, "/ui/")
    cookie = headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/ui/" in cookie
    assert "secure" not in attributes  # plain HTTP: a Secure cookie would never come back
    assert TOKEN not in cookie
    status, body, _ = await browser.get("/ui/")
    assert status == 200 and "Signed in as admin (admin)" in body


async def test_the_cookie_is_secure_over_tls(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    client = ui.app.test_client()
    response = await client.post("/ui/signin", form={"token": TOKEN},
                                 scope_base={"scheme": "https"},
                                 headers={"Origin": "https://localhost"})
    assert response.status_code == 303
    assert "Secure" in response.headers["Set-Cookie"]


async def test_a_wrong_token_is_refused_then_rate_limited(tmp_path: Path,
                                                          nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = ui.browser()
    for _ in range(5):
        status, body, headers = await browser.sign_in("not-the-token-at-all")
        assert status == 401 and "That token is not valid" in body
        assert "Set-Cookie" not in headers
    status, body, headers = await browser.sign_in(TOKEN)  # even the right one, for now
    assert status == 429 and "Too many wrong tokens" in body
    assert headers["Retry-After"] == "60"
    other = ui.browser("127.0.0.2")  # another client is not held back
    assert (await other.sign_in(TOKEN))[0] == 303
    ui.clock.advance(60)
    assert (await browser.sign_in(TOKEN))[0] == 303


async def test_sign_out_ends_the_session(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    cookie = browser.client.cookie_jar
    status, _, headers = await browser.with_csrf("/ui/signout", {})
    assert (status, headers["Location"]) == (303, "/ui/signin?out=1")
    assert cookie is browser.client.cookie_jar
    status, _, _ = await browser.get("/ui/")
    assert status == 303


async def test_a_refusal_is_worded_for_people(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    status, body, _ = await browser.post("/ui/signout", {})
    assert status == 403 and "<title>Refused · linnix</title>" in body
    assert "Refused: the form did not carry this session's CSRF token." in html.unescape(body)
    status, body, _ = await browser.post("/ui/signout", {"csrf": browser.csrf or ""},
                                         origin="http://evil.example", site=None)
    assert status == 403 and "RefusedError" not in body  # the exception's name is no word


async def test_a_form_from_another_site_is_refused(tmp_path: Path,
                                                   nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    status, body, _ = await browser.post("/ui/signout", {"csrf": browser.csrf or ""},
                                         origin="http://evil.example", site=None)
    assert status == 403 and "evil.example" in html.unescape(body)
    status, _, _ = await browser.post("/ui/signin", {"token": TOKEN}, site="cross-site")
    assert status == 403


async def test_a_revoked_token_ends_its_sessions(tmp_path: Path,
                                                 nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui, ui.env.tokens["alice"])
    revoke_token(ui.env.book.path or "", "alice")
    ui.env.book._stamp = None  # read the file again now, as the watcher would
    assert await ui.env.book.refresh()
    assert (await browser.get("/ui/"))[0] == 303


async def test_a_session_ends_when_idle(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    ui.clock.advance(29 * 60)
    assert (await browser.get("/ui/"))[0] == 200
    ui.clock.advance(30 * 60)
    assert (await browser.get("/ui/"))[0] == 303


async def test_approve_with_a_reason_through_the_action_manager(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    action_id = await ui.env.propose()
    browser = await signed_in(ui, ui.env.tokens["alice"])
    status, body, _ = await browser.get(f"/ui/actions/{action_id}?verb=approve")
    assert status == 200 and 'name="reason"' in body and "pending" in body
    status, body, _ = await browser.with_csrf(f"/ui/actions/{action_id}",
                                              {"verb": "approve", "reason": ""})
    assert status == 400 and "Say why" in body  # a reason is asked for
    assert ui.env.manager.executed == []
    status, _, headers = await browser.with_csrf(
        f"/ui/actions/{action_id}", {"verb": "approve", "reason": "it is stuck"})
    assert (status, headers["Location"]) == (303, f"/ui/actions/{action_id}")
    row = await ui.env.wait_status(action_id, "succeeded")
    assert row["decided_by"] == "alice"
    assert ui.env.manager.executed == [action_id]
    audit = [e for e in ui.env.store.audit_log(limit=50, action_id=action_id)
             if e["event"] == "action.approved"]
    assert audit and audit[0]["actor"] == "alice"
    assert audit[0]["detail"]["reason"] == "it is stuck"
    status, body, _ = await browser.get(f"/ui/fragments/actions/{action_id}")
    assert status == 200 and 'id="status-value">succeeded<' in body
    assert "hx-trigger" not in body  # final: the page stops asking


async def test_reject_and_deciding_twice(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    action_id = await ui.env.propose()
    browser = await signed_in(ui, ui.env.tokens["bob"])
    await browser.get(f"/ui/actions/{action_id}")
    status, _, _ = await browser.with_csrf(f"/ui/actions/{action_id}",
                                           {"verb": "reject", "reason": "expected load"})
    assert status == 303
    assert ui.env.store.action(action_id)["status"] == "rejected"
    status, body, _ = await browser.with_csrf(f"/ui/actions/{action_id}",
                                              {"verb": "approve", "reason": "changed my mind"})
    # the API's words for the same refusal
    assert status == 409 and "it was already rejected by bob" in html.unescape(body)


async def test_a_reader_may_look_but_not_decide(tmp_path: Path,
                                                nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    action_id = await ui.env.propose()
    browser = await signed_in(ui, ui.env.tokens["rita"])
    status, body, _ = await browser.get(f"/ui/actions/{action_id}")
    assert status == 200 and 'name="reason"' not in body
    status, body, _ = await browser.with_csrf(f"/ui/actions/{action_id}",
                                              {"verb": "approve", "reason": "x"})
    assert status == 403 and "approver" in body
    assert ui.env.store.action(action_id)["status"] == "pending"


async def test_the_overview_says_what_it_shows(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    ui.view.status["lost"] = None  # not measured
    browser = await signed_in(ui)
    _, body, _ = await browser.get("/ui/")
    assert 'id="mode">MONITOR mode<' in body
    assert "No alerts firing; 7 rules loaded." in body
    assert "No action waits for approval." in body
    assert 'id="count-lost">—<' in body and 'id="host-cpu_pct">—<' in body
    assert 'id="count-events">1,234<' in body
    action_id = await ui.env.propose(comm="python3")
    ui.wall.now = ui.env.store.action(action_id)["expires_at"] - 185.2
    ui.view.status["mode"] = "enforce"
    ui.view.active = [{"rule": "cpu_spike", "state": "firing", "severity": "critical",
                       "pid": 5_000_001, "comm": "python3", "message": "hot", "time": "t"}]
    _, body, _ = await browser.get("/ui/fragments/live")
    assert 'id="mode">ENFORCE mode<' in body
    assert "cpu_spike" in body and "python3 [5000001]" in body
    assert f'href="/ui/actions/{action_id}?verb=approve"' in body
    assert "3m 06s left" in body  # by the wall clock, as the deadline is


async def test_host_json_is_the_ring(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    ui.view.host = {"t": [1.0, 2.0], "cpu_pct": [None, 3.5]}
    browser = await signed_in(ui)
    client = browser.client
    response = await client.get("/ui/host.json")
    assert response.status_code == 200
    assert await response.get_json() == {"t": [1.0, 2.0], "cpu_pct": [None, 3.5]}


async def test_a_one_time_code_signs_in_once(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    client = ui.app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
        response = await client.post("/ui/codes", headers=headers)
        assert response.status_code == 401
    response = await client.post("/ui/codes", headers=ui.env.auth("alice"))
    answer = await response.get_json()
    assert response.status_code == 200 and answer["name"] == "alice"
    assert answer["expires_in"] == 60 and answer["path"] == f"/ui/signin?code={answer['code']}"
    browser = ui.browser()
    status, body, _ = await browser.get(answer["path"])
    assert status == 200 and f'value="{answer["code"]}"' in body
    status, _, _ = await browser.post("/ui/signin", {"code": answer["code"]})
    assert status == 303
    _, body, _ = await browser.get("/ui/")
    assert "Signed in as alice (approver)" in body
    again = ui.browser("127.0.0.3")
    status, body, _ = await again.post("/ui/signin", {"code": answer["code"]})
    assert status == 401 and "expired or was used already" in body


async def test_a_code_expires_after_a_minute(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    response = await ui.app.test_client().post("/ui/codes", headers=AUTH)
    code = (await response.get_json())["code"]
    ui.clock.advance(60)
    status, _, _ = await ui.browser().post("/ui/signin", {"code": code})
    assert status == 401


async def test_every_ui_answer_has_the_security_headers(tmp_path: Path,
                                                        nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    for path in ("/ui/", "/ui/signin", "/ui/fragments/live", "/ui/host.json",
                 "/ui/static/dash.css", "/ui/static/vendor/htmx.min.js", "/ui/nothing",
                 "/ui/actions/99"):
        _, _, headers = await browser.get(path)
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        expected = "no-cache" if path.startswith("/ui/static/") else "no-store"
        assert headers["Cache-Control"] == expected, path
    response = await ui.app.test_client().get("/alerts", headers=AUTH)
    assert response.status_code == 200  # the API's own answers: unchanged
    assert "Content-Security-Policy" not in response.headers


async def test_the_api_still_needs_its_token(tmp_path: Path, nursery: trio.Nursery) -> None:
    ui = await start_ui(tmp_path, nursery)
    browser = await signed_in(ui)
    status, _, _ = await browser.get("/alerts")  # a session cookie is not a token
    assert status == 401


def test_the_navigation_marks_the_page_it_is_on() -> None:
    from linnix.ui.nav import NAV, current

    assert ("Overview", "/ui/") in NAV
    assert current("/ui/") == "/ui/"
    assert current("/ui/actions/3") == "/ui/"  # no page of its own in the navigation
    assert current("/elsewhere") is None
