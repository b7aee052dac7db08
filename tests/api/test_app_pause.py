"""POST /actions/pause and /actions/resume, /health while paused, and approving while
paused: roles, answers, errors and the audit records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from api_support import AUTH, Env, assert_error, call, start_env


@pytest.fixture
async def env(tmp_path: Path, nursery: trio.Nursery) -> Env:
    return await start_env(tmp_path, nursery)


def audit(env: Env, event: str) -> list[tuple[str, dict[str, Any]]]:
    return [(r["actor"], r["detail"]) for r in reversed(env.store.audit_log(event=event))]


async def test_pause_then_resume(env: Env) -> None:
    status, body, _ = await call(env, "POST", "/actions/pause", headers=env.auth("alice"),
                                 auth=False, body={"reason": "maintenance", "for": "30m",
                                                   "note": "on call"})
    assert status == 200
    paused = body["paused"]
    assert body == {"actions": "paused", "paused": {
        "since": paused["since"], "until": paused["since"] + 1800.0, "reason": "maintenance",
        "by": "alice"}}
    assert env.manager.paused is not None
    status, health, _ = await call(env, "GET", "/health", auth=False)
    assert (status, health) == (200, {"status": "ok", **body})
    status, body, _ = await call(env, "POST", "/actions/resume", headers=env.auth("bob"),
                                 auth=False, body={"reason": "done"})
    assert (status, body) == (200, {"actions": "active", "resumed": paused})
    status, health, _ = await call(env, "GET", "/health", auth=False)
    assert health == {"status": "ok", "actions": "active"}
    assert audit(env, "actions.paused") == [("alice", {
        "reason": "maintenance", "until": paused["until"], "for_s": 1800.0, "note": "on call"})]
    assert audit(env, "actions.resumed") == [("bob", {
        "reason": "done", "since": paused["since"], "paused_by": "alice"})]


async def test_pause_without_a_body_lasts_until_resumed(env: Env) -> None:
    status, body, _ = await call(env, "POST", "/actions/pause")
    assert status == 200
    assert (body["paused"]["by"], body["paused"]["until"], body["paused"]["reason"]) == (
        "admin", None, None)
    status, body, _ = await call(env, "POST", "/actions/pause", body={"for": 60})
    assert body["paused"]["until"] == pytest.approx(body["paused"]["since"] + 60.0, abs=5.0)


@pytest.mark.parametrize("path", ["/actions/pause", "/actions/resume"])
async def test_a_reader_may_not_pause_or_resume(env: Env, path: str) -> None:
    status, body, _ = await call(env, "POST", path, headers=env.auth("rita"), auth=False)
    assert status == 403
    assert_error(body, "forbidden")
    assert body["detail"] == (f"the token 'rita' has the role reader; POST {path} needs the "
                              "role approver or admin")
    status, body, _ = await call(env, "POST", path, auth=False)
    assert status == 401
    assert env.manager.paused is None
    assert env.store.audit_log(event="actions.paused") == []


async def test_approving_while_paused_is_a_conflict(env: Env) -> None:
    action = await env.propose()
    await call(env, "POST", "/actions/pause", body={"reason": "incident 7"})
    pause = env.manager.paused
    assert pause is not None
    status, body, _ = await call(env, "POST", f"/actions/{action}/approve",
                                 headers=env.auth("alice"), auth=False)
    assert status == 409
    assert_error(body, "conflict")
    assert body["paused"] == pause.to_json()
    assert body["detail"].startswith(f"action {action} cannot be approved: every action is "
                                     "paused by admin since ")
    assert body["detail"].endswith(" (incident 7); resume them first (POST /actions/resume)")
    assert env.store.action(action)["status"] == "pending"
    assert env.manager.executed == []
    await call(env, "POST", "/actions/resume")
    status, body, _ = await call(env, "POST", f"/actions/{action}/approve")
    assert status == 200
    await env.wait_status(action, "succeeded")
    assert env.manager.executed == [action]


async def test_resuming_what_is_not_paused_is_a_conflict(env: Env) -> None:
    status, body, _ = await call(env, "POST", "/actions/resume")
    assert status == 409
    assert_error(body, "conflict")
    assert body["detail"] == "actions are not paused: there is nothing to resume"
    assert body["actions"] == "active"


@pytest.mark.parametrize(("body", "detail"), [
    ({"for": "0"}, "'for' must be longer than zero and at most 30 days"),
    ({"for": -5}, "'for' must be longer than zero and at most 30 days"),
    ({"for": "31d"}, "'for' must be longer than zero and at most 30 days"),
    ({"for": 1e300}, "'for' must be longer than zero and at most 30 days"),
    ({"for": "soon"}, "'for': 'soon' is not a duration (e.g. 500ms, 30s, 2m)"),
    ({"for": "1" + " " * 40}, "'for' must be a duration such as \"30m\" or a number of seconds"),
    ({"for": True}, "'for' must be a duration such as \"30m\" or a number of seconds"),
    ({"for": [30]}, "'for' must be a duration such as \"30m\" or a number of seconds"),
    ({"until": 5}, "unknown field 'until'; the fields are reason, for, note"),
    ({"reason": "a\x1b[2Jb"}, "'reason' must be plain text: it has the control character "
                              "U+001B at character 2"),
    ({"reason": 5}, "'reason' must be a string"),
])
async def test_a_bad_pause_is_refused(env: Env, body: dict[str, Any], detail: str) -> None:
    status, answer, _ = await call(env, "POST", "/actions/pause", body=body)
    assert status == 400
    assert answer["detail"] == detail
    assert env.manager.paused is None


async def test_a_bad_resume_is_refused(env: Env) -> None:
    await call(env, "POST", "/actions/pause")
    status, answer, _ = await call(env, "POST", "/actions/resume", body={"for": "1m"})
    assert (status, answer["detail"]) == (400, "unknown field 'for'; the fields are reason, "
                                               "note")
    status, answer, _ = await call(env, "POST", "/actions/resume", raw=b"[",
                                   headers={**AUTH, "Content-Type": "application/json"})
    assert status == 400
    assert env.manager.paused is not None
