"""Fuzzing the dashboard's requests: whatever a browser (or anything else) sends to
/ui/, the answer is never a 500, and an action changes only through a form that carried
the session's CSRF token."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import quote

import attrs
import trio
from api_support import TOKEN
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ui_support import start_ui

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
# a header's value as it can come over HTTP: a line break would end the header
_HEADER_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"),
                       max_size=30)
_PATHS = st.sampled_from([
    "/ui/", "/ui", "/ui/signin", "/ui/signout", "/ui/codes", "/ui/host.json",
    "/ui/fragments/live", "/ui/actions/1", "/ui/actions/0", "/ui/actions/99",
    "/ui/actions/99999999999999999999", "/ui/fragments/actions/1", "/ui/static/charts.js",
    "/ui/static/../routes.py", "/ui/incidents/1", "/ui/incidents/1/analyze",
    "/ui/incidents/99999999999999999999", "/ui/processes", "/ui/processes/1",
    "/ui/processes/99999999999999999999", "/ui/processes/1/history.json",
    "/ui/processes?sort=pid&open=all&name=x"]) | _TEXT.map(lambda s: "/ui/" + s) \
    | _TEXT.map(lambda s: "/ui/processes?" + quote(s, safe="=&")) \
    | _TEXT.map(lambda s: "/ui/processes/1/children?" + quote(s, safe="=&"))  # as sent
_FIELDS = st.dictionaries(st.sampled_from(["token", "code", "csrf", "verb", "reason"]) | _TEXT,
                          st.sampled_from(["approve", "reject", TOKEN, ""]) | _TEXT,
                          max_size=4)
_HEADERS = st.fixed_dictionaries({}, optional={
    "Origin": st.sampled_from(["http://localhost", "null", "http://evil"]) | _HEADER_TEXT,
    "Sec-Fetch-Site": st.sampled_from(["same-origin", "cross-site", "none"]) | _HEADER_TEXT,
    "Authorization": st.sampled_from([f"Bearer {TOKEN}", "Bearer x"]) | _HEADER_TEXT})


@attrs.frozen
class Attempt:
    signed_in: bool
    with_csrf: bool
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]


ATTEMPTS = st.builds(Attempt, st.booleans(), st.booleans(), st.sampled_from(["GET", "POST"]),
                     _PATHS, _FIELDS, _HEADERS)


async def _exchange(tmp: Path, attempt: Attempt) -> tuple[int, str, str, str]:
    """(status, content type, the action's status after, the CSRF token sent or "")."""
    async with trio.open_nursery() as nursery:
        ui = await start_ui(tmp, nursery)
        action_id = await ui.env.propose()
        assert action_id == 1
        browser = ui.browser()
        if attempt.signed_in:
            await browser.sign_in(TOKEN)
            await browser.get("/ui/")
        form = dict(attempt.form)
        if attempt.with_csrf and browser.csrf:
            form["csrf"] = browser.csrf
        headers = {k: v.encode("utf-8", "replace").decode("latin-1")
                   for k, v in attempt.headers.items()}
        with trio.fail_after(10):
            response = await browser.client.open(attempt.path, method=attempt.method,
                                                  form=form if attempt.method == "POST"
                                                  else None, headers=headers)
            await response.get_data()
        await trio.sleep(0)
        status = ui.env.store.action(action_id)["status"]
        sent = form.get("csrf", "") if browser.csrf and form.get("csrf") == browser.csrf else ""
        nursery.cancel_scope.cancel()
    return response.status_code, response.mimetype or "", status, sent


@settings(max_examples=25)  # each starts a store and a manager of its own
@given(attempt=ATTEMPTS)
@example(attempt=Attempt(True, True, "POST", "/ui/actions/1",
                         {"verb": "approve", "reason": "ok"}, {}))
@example(attempt=Attempt(True, False, "POST", "/ui/actions/1",
                         {"verb": "approve", "reason": "ok"}, {}))
@example(attempt=Attempt(True, True, "POST", "/ui/actions/1",
                         {"verb": "reject", "reason": "x" * 5000}, {"Origin": "null"}))
@example(attempt=Attempt(True, False, "GET", "/ui/processes?open=%C2%B2&name=%00", {}, {}))
def test_no_request_fails_and_only_a_csrf_form_decides(attempt: Attempt) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        status, kind, action, csrf = trio.run(_exchange, Path(tmp), attempt)
    assert status < 500, (status, attempt)
    if status >= 400:
        assert kind in ("text/html", "application/json", ""), kind
    if action != "pending":  # decided: only by a signed-in form with its token
        assert attempt.signed_in and csrf and attempt.method == "POST"
