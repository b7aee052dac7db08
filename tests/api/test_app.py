"""The HTTP API through Quart's test client: every route and every error status."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import trio
from api_support import (
    AUTH,
    MAX_BODY,
    PID_A,
    PID_B,
    PID_C,
    TOKEN,
    Env,
    assert_error,
    call,
    light_view,
    start_env,
)
from cgactions_support import HOG, FakePrimitives, FakeTree, frozen, install
from prometheus_client.parser import text_string_to_metric_families

from linnix.api.app import METRICS_CONTENT_TYPE, PUBLIC_ROUTES, create_app, host_allowed
from linnix.api.openapi import openapi_document
from linnix.runtime.metrics import EngineCollector
from linnix.runtime.notify.delivery import Delivery


@pytest.fixture
async def env(tmp_path: Path, nursery: trio.Nursery) -> Env:
    return await start_env(tmp_path, nursery)


# ---- health, readiness, metrics, openapi ---------------------------------------------------

async def test_health_is_always_ok(env: Env) -> None:
    env.view.is_ready = (False, "the event source is starting")
    status, body, _ = await call(env, "GET", "/health")
    assert (status, body) == (200, {"status": "ok", "actions": "active"})


async def test_ready_names_the_source_or_says_why_not(env: Env) -> None:
    status, body, _ = await call(env, "GET", "/ready")
    assert (status, body) == (200, {"status": "ready", "source": "fake"})
    env.view.is_ready = (False, "the event source is starting")
    status, body, _ = await call(env, "GET", "/ready")
    assert status == 503
    assert body == {"error": "not ready", "detail": "the event source is starting"}


@pytest.mark.parametrize(("alias", "of"), [("/healthz", "/health"), ("/livez", "/health"),
                                           ("/readyz", "/ready")])
async def test_the_kubernetes_probe_names_answer_as_health_and_ready(
        env: Env, alias: str, of: str) -> None:
    for is_ready in ((True, "fake"), (False, "the event source is starting")):
        env.view.is_ready = is_ready
        assert (await call(env, "GET", alias, auth=False))[:2] == \
            (await call(env, "GET", of, auth=False))[:2]
    status, _, _ = await call(env, "GET", alias, auth=False)
    assert status == (200 if of == "/health" else 503)


async def test_metrics_count_requests_by_route_template(env: Env) -> None:
    await call(env, "GET", f"/processes/{PID_A}")
    await call(env, "GET", "/processes/1")
    await call(env, "GET", "/no/such/route")
    status, text, headers = await call(env, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"] == METRICS_CONTENT_TYPE
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text.decode())
               for s in family.samples}
    key = ("linnix_api_requests_total",
           (("method", "GET"), ("route", "/processes/<int:pid>"), ("status", "200")))
    assert samples[key] == 1
    key404 = ("linnix_api_requests_total",
              (("method", "GET"), ("route", "/processes/<int:pid>"), ("status", "404")))
    assert samples[key404] == 1
    unmatched = ("linnix_api_requests_total",
                 (("method", "GET"), ("route", "unmatched"), ("status", "404")))
    assert samples[unmatched] == 1
    assert samples[("linnix_api_sse_clients", ())] == 0
    assert samples[("linnix_api_sse_dropped_clients_total", ())] == 0


async def test_metrics_pass_promtool_or_the_parser(env: Env) -> None:
    notifier = SimpleNamespace(receivers=[Delivery[int]("http://am:9093", _unsent, capacity=1),
                                          Delivery[int]("webhook[0] https://h", _unsent,
                                                        capacity=1)])
    env.view.registry.register(EngineCollector(lambda: SimpleNamespace(
        core=None, engine=None, action_manager=None, notifier=notifier)))
    await call(env, "GET", "/health")
    await call(env, "POST", "/rules/reload")  # 401
    _, text, _ = await call(env, "GET", "/metrics")
    families = list(text_string_to_metric_families(text.decode()))
    assert {f.name for f in families} >= {"linnix_api_requests", "linnix_api_sse_clients",
                                          "linnix_api_sse_dropped_clients",
                                          "linnix_notifications_sent",
                                          "linnix_notifications_failed",
                                          "linnix_notifications_dropped",
                                          "linnix_notifications_queue_length"}
    for family in families:
        assert family.documentation, family.name
        assert family.type in ("counter", "gauge"), family.name
    promtool = shutil.which("promtool")
    if promtool is None:
        return
    result = await trio.run_process([promtool, "check", "metrics"], stdin=text,
                                    capture_stdout=True, capture_stderr=True, check=False)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


async def _unsent(batch: Any) -> None:
    raise AssertionError("nothing is sent in this test")


async def test_the_app_can_be_rebuilt_on_the_same_registry(env: Env) -> None:
    again = create_app(env.view, token=TOKEN, max_body=MAX_BODY)  # type: ignore[arg-type]
    response = await again.test_client().get("/metrics")
    assert response.status_code == 200


def _routes(app: Any) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add((method.lower(), path))
    return out


async def test_openapi_describes_exactly_the_routes(env: Env) -> None:
    status, doc, _ = await call(env, "GET", "/openapi.json")
    assert status == 200
    assert doc == openapi_document()
    assert doc["openapi"].startswith("3.1")
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert documented == _routes(env.app)


async def test_openapi_references_resolve_and_post_routes_need_the_token() -> None:
    doc = openapi_document()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict), ref
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "500" in op["responses"], (method, path)
            if path not in PUBLIC_ROUTES:
                assert op["security"] == [{"bearer": []}], path
                assert "401" in op["responses"], path
            for parameter in op.get("parameters", []):
                target = doc["components"]["parameters"][parameter["$ref"].split("/")[-1]]
                if target["in"] == "path":
                    assert "{" + target["name"] + "}" in path


# ---- processes ---------------------------------------------------------------------------

async def test_processes(env: Env) -> None:
    status, body, _ = await call(env, "GET", "/processes")
    assert status == 200
    assert body["count"] == 2
    assert [p["pid"] for p in body["processes"]] == [PID_A, PID_B]
    status, body, _ = await call(env, "GET", f"/processes/{PID_B}")
    assert (status, body["comm"], body["ppid"]) == (200, "worker", PID_A)
    status, body, _ = await call(env, "GET", f"/processes/{PID_C}")
    assert status == 404
    assert_error(body, "not found")
    assert str(PID_C) in body["detail"]


async def test_graph(env: Env) -> None:
    status, body, _ = await call(env, "GET", f"/graph/{PID_A}")
    assert status == 200
    assert body["process"]["pid"] == PID_A
    assert [k["pid"] for k in body["subtree"]["children"]] == [PID_B]
    status, body, _ = await call(env, "GET", f"/graph/{PID_C}")
    assert status == 404
    assert_error(body, "not found")


async def test_a_path_parameter_that_is_not_a_number_is_404(env: Env) -> None:
    status, body, _ = await call(env, "GET", "/processes/abc")
    assert status == 404
    assert_error(body, "not found")


# ---- alerts and rules --------------------------------------------------------------------

async def test_alerts_active_and_history(env: Env) -> None:
    env.view.active = [{"rule": "cpu_spike", "state": "firing", "pid": PID_A}]
    env.view.history = [{"type": "alert", "ts": float(i), "rule": "r", "state": "pending"}
                        for i in range(5)]
    status, body, _ = await call(env, "GET", "/alerts")
    assert (status, body) == (200, {"alerts": env.view.active})
    status, body, _ = await call(env, "GET", "/alerts?history=1&limit=2")
    assert status == 200
    assert [h["ts"] for h in body["history"]] == [3.0, 4.0]
    status, body, _ = await call(env, "GET", "/alerts?history=maybe")
    assert status == 400
    assert_error(body, "bad request")
    status, body, _ = await call(env, "GET", "/alerts?limit=abc")
    assert status == 400
    assert "limit" in body["detail"]


async def test_rules(env: Env) -> None:
    env.view.rule_list = [{"name": "cpu_spike", "enabled": True}]
    status, body, _ = await call(env, "GET", "/rules")
    assert (status, body) == (200, {"rules": [{"name": "cpu_spike", "enabled": True}]})


async def test_reload_accepted(env: Env) -> None:
    warning = {"level": "warning", "code": "W101", "message": "unused"}
    env.view.reload_answer = (True, [warning])
    status, body, _ = await call(env, "POST", "/rules/reload", headers=AUTH)
    assert (status, body) == (200, {"reloaded": True, "warnings": [warning]})
    status, body, _ = await call(env, "POST", "/rules/reload", headers=AUTH,
                                 body={"actor": "alice"})
    assert status == 200
    status, body, _ = await call(env, "POST", "/rules/reload", headers=AUTH,
                                 body={"note": "after the fix"})
    assert status == 200
    # the token's name is who reloaded; what the request says is a note
    assert env.view.reloads == [("admin", None), ("admin", "alice"), ("admin", "after the fix")]


async def test_reload_rejected_is_422_with_diagnostics(env: Env) -> None:
    error = {"level": "error", "code": "E201", "message": "unknown field 'cpu'"}
    env.view.reload_answer = (False, [error])
    status, body, _ = await call(env, "POST", "/rules/reload", headers=AUTH)
    assert status == 422
    assert_error(body, "reload rejected")
    assert body["diagnostics"] == [error]
    assert "1 error" in body["detail"] and "kept" in body["detail"]


@pytest.mark.parametrize("field", ["actor", "note"])
async def test_reload_refuses_a_note_that_is_not_plain_text(env: Env, field: str) -> None:
    status, body, _ = await call(env, "POST", "/rules/reload", body={field: "eve\u202eevA"})
    assert status == 400
    assert body["detail"] == f"'{field}' must be plain text: it has U+202E RIGHT-TO-LEFT " \
                             "OVERRIDE at character 4"
    assert env.view.reloads == []


async def test_reload_rejects_unknown_fields(env: Env) -> None:
    status, body, _ = await call(env, "POST", "/rules/reload", headers=AUTH,
                                 body={"who": "alice"})
    assert status == 400
    assert "who" in body["detail"]
    assert env.view.reloads == []


# ---- incidents ---------------------------------------------------------------------------

def _incident(env: Env, rule: str = "cpu_spike") -> int:
    return env.store.open_incident(rule=rule, severity="warning", scope="process", pid=PID_A,
                                   comm="python3", start=1.0, message=f"{rule} fired",
                                   labels={"team": "infra"}, history=[], subtree=[], host={})


async def test_incidents_list_open_and_paging(env: Env) -> None:
    ids = [_incident(env, f"rule{i}") for i in range(5)]
    env.store.resolve_incident(ids[0], "cleared")
    status, body, _ = await call(env, "GET", "/incidents")
    assert status == 200
    assert [i["id"] for i in body["incidents"]] == ids[::-1]
    assert body["next_before"] is None
    status, body, _ = await call(env, "GET", "/incidents?open=1")
    assert [i["id"] for i in body["incidents"]] == ids[:0:-1]
    status, body, _ = await call(env, "GET", "/incidents?limit=2")
    assert [i["id"] for i in body["incidents"]] == [ids[4], ids[3]]
    assert body["next_before"] == ids[3]
    status, body, _ = await call(env, "GET", f"/incidents?limit=2&before={ids[3]}")
    assert [i["id"] for i in body["incidents"]] == [ids[2], ids[1]]
    for bad in ("limit=0", "limit=1001", "before=x", "before=-3", "open=2"):
        status, body, _ = await call(env, "GET", f"/incidents?{bad}")
        assert status == 400, bad
        assert_error(body, "bad request")


async def test_incident_by_id(env: Env) -> None:
    incident = _incident(env)
    status, body, _ = await call(env, "GET", f"/incidents/{incident}")
    assert status == 200
    assert (body["id"], body["labels"], body["actions"]) == (incident, {"team": "infra"}, [])
    for missing in (incident + 1, 2**70):
        status, body, _ = await call(env, "GET", f"/incidents/{missing}")
        assert status == 404
        assert_error(body, "not found")


# ---- actions: reads ----------------------------------------------------------------------

async def test_actions_list_filter_and_show(env: Env) -> None:
    first = await env.propose()
    second = await env.propose(PID_B, "worker")
    status, body, _ = await call(env, "GET", "/actions")
    assert status == 200
    assert [a["id"] for a in body["actions"]] == [second, first]
    status, body, _ = await call(env, "GET", "/actions?status=pending&limit=1")
    assert [a["id"] for a in body["actions"]] == [second]
    assert body["next_before"] == second
    status, body, _ = await call(env, "GET", "/actions?status=rejected")
    assert body["actions"] == []
    status, body, _ = await call(env, "GET", "/actions?status=bogus")
    assert status == 400
    assert "status" in body["detail"]
    status, body, _ = await call(env, "GET", f"/actions/{first}")
    assert (status, body["id"], body["status"], body["pid"]) == (200, first, "pending", PID_A)
    status, body, _ = await call(env, "GET", f"/actions/{second + 10}")
    assert status == 404
    assert_error(body, "not found")


# ---- actions: decisions --------------------------------------------------------------------

async def test_approve_executes_once_and_is_audited(env: Env) -> None:
    action = await env.propose()
    status, body, _ = await call(env, "POST", f"/actions/{action}/approve",
                                 headers=env.auth("alice"),
                                 body={"approver": "on call", "reason": "runaway"})
    assert status == 200
    assert body["id"] == action
    assert body["status"] in ("approved", "executing", "succeeded")
    done = await env.wait_status(action, "succeeded")
    assert done["decided_by"] == "alice"  # the token's name, whatever the body says
    assert env.manager.executed == [action]
    status, body, _ = await call(env, "GET", f"/audit?action={action}")
    assert status == 200
    events = [r["event"] for r in body["audit"]]
    assert events.count("action.approved") == 1
    approved = next(r for r in body["audit"] if r["event"] == "action.approved")
    assert (approved["actor"], approved["detail"]["reason"]) == ("alice", "runaway")
    noted = next(r for r in body["audit"] if r["event"] == "action.note")
    assert (noted["actor"], noted["detail"]) == ("alice", {"note": "on call"})


async def test_the_audit_log_filters_by_who_decided(env: Env) -> None:
    ids = {}
    for name, verb in (("alice", "approve"), ("bob", "reject"), ("alice", "reject")):
        ids[name, verb] = action = await env.propose()
        status, _, _ = await call(env, "POST", f"/actions/{action}/{verb}",
                                  headers=env.auth(name), body={"reason": "why"})
        assert status == 200
    status, body, _ = await call(env, "GET", "/audit?actor=alice")
    assert status == 200 and {r["actor"] for r in body["audit"]} == {"alice"}
    assert {(r["event"], r["action_id"]) for r in body["audit"]} >= {
        ("action.approved", ids["alice", "approve"]),
        ("action.rejected", ids["alice", "reject"])}
    status, body, _ = await call(env, "GET", f"/audit?actor=bob&action={ids['bob', 'reject']}")
    assert [r["event"] for r in body["audit"]] == ["action.rejected"]
    status, body, _ = await call(env, "GET", "/audit?actor=")  # empty: no filter
    assert {r["actor"] for r in body["audit"]} >= {"alice", "bob", "linnix"}
    for bad in ("actor=" + "a" * 129, "actor=al%00ice", "actor=%E2%80%AEecila"):
        status, body, _ = await call(env, "GET", f"/audit?{bad}")
        assert status == 400, bad
        assert_error(body, "bad request")
        assert "'actor'" in body["detail"]


@pytest.mark.parametrize("raw", [b"", b"{}", b'{"note": "  "}', b'{"approver": null}'])
async def test_a_decision_needs_no_body(env: Env, raw: bytes) -> None:
    action = await env.propose()
    status, body, _ = await call(env, "POST", f"/actions/{action}/reject",
                                 headers=env.auth("bob"), raw=raw)
    assert (status, body["status"], body["decided_by"]) == (200, "rejected", "bob")
    assert [r["event"] for r in env.store.audit_log(action_id=action)
            if r["event"] == "action.note"] == []


async def test_roles(env: Env) -> None:
    action = await env.propose()
    for path in (f"/actions/{action}/approve", f"/actions/{action}/reject"):
        status, body, _ = await call(env, "POST", path, headers=env.auth("rita"), body={})
        assert status == 403
        assert_error(body, "forbidden")
        assert body["detail"] == f"the token 'rita' has the role reader; POST {path} needs " \
                                 "the role approver or admin"
    status, body, _ = await call(env, "POST", "/rules/reload", headers=env.auth("alice"))
    assert (status, body["detail"]) == (403, "the token 'alice' has the role approver; "
                                             "POST /rules/reload needs the role admin")
    assert env.manager.status[action] == "pending" and env.view.reloads == []
    for name in ("rita", "alice"):  # every role reads
        status, _, _ = await call(env, "GET", f"/actions/{action}", headers=env.auth(name))
        assert status == 200
    status, body, _ = await call(env, "POST", f"/actions/{action}/approve",
                                 headers=env.auth("alice"))
    assert (status, body["decided_by"]) == (200, "alice")


async def test_reject(env: Env) -> None:
    action = await env.propose()
    status, body, _ = await call(env, "POST", f"/actions/{action}/reject",
                                 headers=env.auth("bob"), body={"approver": "robert"})
    assert status == 200
    assert (body["status"], body["decided_by"]) == ("rejected", "bob")
    assert env.manager.executed == []


async def test_deciding_twice_is_409_naming_the_status(env: Env) -> None:
    action = await env.propose()
    await call(env, "POST", f"/actions/{action}/reject", headers=env.auth("bob"))
    for verb in ("approve", "reject"):
        status, body, _ = await call(env, "POST", f"/actions/{action}/{verb}",
                                     headers=env.auth("alice"))
        assert status == 409
        assert_error(body, "conflict")
        assert body["status"] == "rejected"
        assert body["detail"] == f"action {action} is not pending: it was already rejected by bob"


async def test_approving_an_approved_action_is_409(env: Env) -> None:
    action = await env.propose()
    await call(env, "POST", f"/actions/{action}/approve", headers=env.auth("alice"))
    await env.wait_status(action, "succeeded")
    status, body, _ = await call(env, "POST", f"/actions/{action}/approve",
                                 headers=env.auth("carol"))
    assert status == 409
    assert body["status"] == "succeeded"
    assert "already approved by alice" in body["detail"]
    assert env.manager.executed == [action]


@pytest.mark.parametrize("stored", ["expired", "refused", "recorded"])
async def test_actions_that_were_never_pending_any_more_are_409(env: Env, stored: str) -> None:
    action = env.store.add_action(incident_id=None, rule="r", kind="kill", params={},
                                  pid=PID_A, start_ticks=1000, comm="python3", exe=None,
                                  status=stored, mode="monitor", expires_at=None)
    status, body, _ = await call(env, "POST", f"/actions/{action}/approve", headers=AUTH,
                                 body={"approver": "alice"})
    assert status == 409
    assert body["status"] == stored
    assert body["detail"].startswith(f"action {action} is not pending: ")


@pytest.mark.parametrize(("reason", "why"), [
    ("the target process exited before anyone decided",
     "the target process exited before anyone decided"),
    ("nobody decided within 300s", "nobody decided within 300s"),
    (None, "nobody decided before its deadline"),  # a record from before reasons
])
async def test_an_expired_action_is_409_saying_why_it_expired(env: Env, reason: str | None,
                                                              why: str) -> None:
    action = env.store.add_action(incident_id=None, rule="r", kind="kill", params={},
                                  pid=PID_A, start_ticks=1000, comm="python3", exe=None,
                                  status="expired", mode="monitor", expires_at=None,
                                  reason=reason)
    status, body, _ = await call(env, "POST", f"/actions/{action}/approve", body={})
    assert (status, body["status"]) == (409, "expired")
    assert body["detail"] == f"action {action} is not pending: it expired: {why}"


async def test_concurrent_approvals_execute_once(env: Env) -> None:
    action = await env.propose()
    statuses: list[int] = []

    async def approve(who: str) -> None:
        status, _, _ = await call(env, "POST", f"/actions/{action}/approve",
                                  headers=env.auth(who))
        statuses.append(status)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(approve, "alice")
        nursery.start_soon(approve, "bob")
    assert sorted(statuses) == [200, 409]
    await env.wait_status(action, "succeeded")
    assert env.manager.executed == [action]
    audit = env.store.audit_log(action_id=action)
    assert [r["event"] for r in audit].count("action.approved") == 1


async def test_unknown_action_is_404(env: Env) -> None:
    for verb in ("approve", "reject"):
        status, body, _ = await call(env, "POST", f"/actions/999/{verb}", headers=AUTH,
                                     body={"approver": "alice"})
        assert status == 404
        assert_error(body, "not found")
        assert "999" in body["detail"]


async def test_rate_limit_is_429_with_retry_after(tmp_path: Path, nursery: trio.Nursery) -> None:
    env = await start_env(tmp_path, nursery, rate_limit=1)
    first = await env.propose()
    second = await env.propose(PID_B, "worker")
    status, _, _ = await call(env, "POST", f"/actions/{first}/approve", headers=AUTH,
                              body={"approver": "alice"})
    assert status == 200
    status, body, headers = await call(env, "POST", f"/actions/{second}/approve",
                                       headers=AUTH, body={"approver": "alice"})
    assert status == 429
    assert_error(body, "rate limited")
    retry = int(headers["Retry-After"])
    assert 1 <= retry <= 60
    assert body["retry_after"] == retry
    status, body, _ = await call(env, "GET", f"/actions/{second}")
    assert body["status"] == "pending"


@pytest.mark.parametrize(("raw", "word"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"alice"', "JSON object"),
    (b'{"approver": 7}', "must be a string"),
    (b'{"note": 7}', "must be a string"),
    (b'{"approver": "' + b"a" * 129 + b'"}', "longer than 128"),
    (b'{"note": "a", "approver": "b"}', "not both"),
    (b'{"approver": "al\\nice"}', "it has the control character U+000A at character 3"),
    (b'{"note": "  al\\u202eecila"}', "'note' must be plain text: it has U+202E RIGHT-TO-LEFT "
                                      "OVERRIDE at character 5"),
    (b'{"note": "\\u2066x"}', "U+2066 LEFT-TO-RIGHT ISOLATE at character 1"),
    (b'{"note": "a\\u200fb"}', "U+200F RIGHT-TO-LEFT MARK at character 2"),
    (b'{"note": "ops\\u001b[31m"}', "the control character U+001B at character 4"),
    (b'{"note": "ops\\u009b31m"}', "the control character U+009B at character 4"),
    (b'{"note": "a\\u2028b"}', "U+2028 LINE SEPARATOR at character 2"),
    (b'{"reason": "two\\nlines, \\u202eok"}', "'reason' must be plain text: it has U+202E "
                                              "RIGHT-TO-LEFT OVERRIDE at character 12"),
    (b'{"approver": "alice", "reason": 5}', "'reason' must be a string"),
    (b'{"approver": "alice", "reason": "' + b"r" * 1025 + b'"}', "longer than 1024"),
    (b'{"approver": "alice", "aprover": "x"}', "unknown field 'aprover'"),
])
async def test_invalid_decisions_are_400(env: Env, raw: bytes, word: str) -> None:
    action = await env.propose()
    status, body, _ = await call(env, "POST", f"/actions/{action}/approve", headers=AUTH,
                                 raw=raw)
    assert status == 400
    assert_error(body, "bad request")
    assert word in body["detail"]
    assert env.manager.status[action] == "pending"


async def test_limits_of_decision_fields_are_inclusive(env: Env) -> None:
    action = await env.propose()
    status, body, _ = await call(env, "POST", f"/actions/{action}/reject", headers=AUTH,
                                 body={"approver": "a" * 128, "reason": "line 1\nline 2"})
    assert status == 200
    assert body["reason"] == "line 1\nline 2"


async def test_a_body_over_the_limit_is_413(env: Env) -> None:
    action = await env.propose()
    big = {"approver": "alice", "reason": "x" * (MAX_BODY + 10)}
    status, body, _ = await call(env, "POST", f"/actions/{action}/approve", headers=AUTH,
                                 body=big)
    assert status == 413
    assert_error(body, "payload too large")
    assert str(MAX_BODY) in body["detail"]
    assert env.manager.status[action] == "pending"


# ---- authentication ------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "invalid"), [
    ({}, False),
    ({"Authorization": "Bearer wrong-token-0123456789"}, True),
    ({"Authorization": f"Bearer {TOKEN}x"}, True),
    ({"Authorization": f"Basic {TOKEN}"}, False),
    ({"Authorization": "Bearer"}, False),
    ({"Authorization": "Bearer tökén"}, True),
])
async def test_posts_without_the_right_token_are_401(env: Env, headers: dict[str, str],
                                                     invalid: bool) -> None:
    action = await env.propose()
    for path in (f"/actions/{action}/approve", f"/actions/{action}/reject", "/rules/reload"):
        status, body, got = await call(env, "POST", path, headers=headers, auth=False,
                                       body={"approver": "mallory"})
        assert status == 401, path
        assert_error(body, "unauthorized")
        assert got["WWW-Authenticate"].startswith("Bearer")
        assert ('error="invalid_token"' in got["WWW-Authenticate"]) == invalid
    assert env.manager.status[action] == "pending"
    assert env.view.reloads == []


def _concrete(path: str) -> str:
    return path.format(pid=PID_A, incident_id=1, action_id=1)


async def test_every_route_but_health_ready_and_metrics_needs_the_token(env: Env) -> None:
    public = set()
    for method, path in sorted(_routes(env.app)):
        status, body, _ = await call(env, method.upper(), _concrete(path), auth=False,
                                     body={"approver": "x"} if method == "post" else None)
        if status == 401:
            assert_error(body, "unauthorized")
        else:
            public.add(path)
    assert public == {"/health", "/healthz", "/livez", "/ready", "/readyz", "/metrics"}
    assert public == PUBLIC_ROUTES
    doc = openapi_document()
    assert {path for path, item in doc["paths"].items()
            if item.get("get", {}).get("security") == []} == public


async def test_with_public_reads_gets_need_no_token(env: Env) -> None:
    app = create_app(env.view, token=TOKEN, max_body=MAX_BODY,  # type: ignore[arg-type]
                     public_reads=True)
    client = app.test_client()
    for method, path in _routes(app):
        if method == "get" and path != "/stream":
            response = await client.get(_concrete(path))
            assert response.status_code in (200, 404), path
    response = await client.post("/rules/reload", json={})
    assert response.status_code == 401


async def test_without_a_token_only_the_public_routes_are_served(env: Env) -> None:
    app = create_app(env.view, token="", max_body=MAX_BODY)  # type: ignore[arg-type]
    action = await env.propose()
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
        response = await app.test_client().post(f"/actions/{action}/approve", headers=headers,
                                                json={"approver": "x"})
        assert response.status_code == 401
        response = await app.test_client().get("/processes", headers=headers)
        assert response.status_code == 401
    response = await app.test_client().get("/health")
    assert response.status_code == 200


# ---- other errors --------------------------------------------------------------------------

async def test_unknown_route_is_404_json(env: Env) -> None:
    for method in ("GET", "POST"):
        status, body, _ = await call(env, method, "/nowhere", auth=False)
        assert status == 404
        assert_error(body, "not found")
        assert "/nowhere" in body["detail"]


async def test_wrong_method_is_405_with_allow(env: Env) -> None:
    status, body, headers = await call(env, "POST", "/health", headers=AUTH)
    assert status == 405
    assert_error(body, "method not allowed")
    assert "GET" in headers["Allow"]
    status, body, headers = await call(env, "GET", "/actions/1/approve")
    assert status == 405
    assert "POST" in body["detail"]
    status, body, headers = await call(env, "DELETE", "/actions/1", headers=AUTH)
    assert status == 405


async def test_an_internal_error_is_500_without_a_traceback(
        env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.view.fail_with = RuntimeError("secret internals at /etc/linnix")
    status, body, _ = await call(env, "GET", "/processes")
    assert status == 500
    assert_error(body, "internal error")
    text = orjson.dumps(body).decode()
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert any("secret internals" in str(r.exc_info) for r in caplog.records)


async def test_light_view_serves_reads() -> None:
    view = light_view()
    app = create_app(view, token=TOKEN, max_body=MAX_BODY)  # type: ignore[arg-type]
    response = await app.test_client().get("/processes", headers=AUTH)
    assert response.status_code == 200


# ---- the Host header (DNS rebinding) ---------------------------------------------------

@pytest.mark.parametrize("header", [
    None, "127.0.0.1", "127.0.0.1:9333", "localhost", "LOCALHOST:9333", "[::1]:9333", "[::1]",
    "10.1.2.3:80", "linnix.internal", "Linnix.Internal:8080",
])
def test_hosts_that_name_the_api(header: str | None) -> None:
    assert host_allowed(header, frozenset({"linnix.internal"}))


@pytest.mark.parametrize("header", [
    "evil.example", "evil.example:9333", "127.0.0.1.evil.example", "localhost.evil.example",
    "[::1", "[evil]:9333", "linnix.internal.evil", "",
])
def test_hosts_that_do_not(header: str) -> None:
    assert not host_allowed(header, frozenset({"linnix.internal"}))


async def test_a_rebound_name_is_refused_before_anything_is_read(env: Env) -> None:
    status, body, _ = await call(env, "GET", "/processes", headers={"Host": "evil.example:9333"})
    assert status == 421
    assert_error(body, "misdirected_request")
    assert "api.allowed_hosts" in body["detail"]
    # and before the token is looked at: a page cannot probe for it either
    status, body, _ = await call(env, "POST", "/rules/reload", body={},
                                 headers={"Host": "evil.example", **AUTH})
    assert status == 421
    status, _, _ = await call(env, "GET", "/processes", headers={"Host": "127.0.0.1:9333"})
    assert status == 200


@pytest.mark.parametrize("host", [".", "a..b", "x" * 64 + ".example", "127.0.0.1..:9333"])
async def test_a_name_routing_cannot_encode_is_421_not_a_crash(env: Env, host: str,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    status, body, _ = await call(env, "GET", "/health", headers={"Host": host})
    assert status == 421
    assert_error(body, "misdirected_request")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_configured_names_are_served() -> None:
    app = create_app(light_view(), token=TOKEN, max_body=MAX_BODY,  # type: ignore[arg-type]
                     allowed_hosts=["Linnix.Internal"])
    client = app.test_client()
    response = await client.get("/health", headers={"Host": "linnix.internal:9333"})
    assert response.status_code == 200
    response = await client.get("/health", headers={"Host": "other.internal:9333"})
    assert response.status_code == 421



async def test_a_repeated_firing_shows_as_a_count_on_one_action(env: Env) -> None:
    """The same rule firing again for the same process while its action is pending: one
    action, its repeats counted, in every answer and on the stream; the record has exactly
    the fields the OpenAPI document describes."""
    first = await env.propose()
    again = await env.propose()
    assert again == first
    status, body, _ = await call(env, "GET", f"/actions/{first}")
    assert (status, body["repeats"]) == (200, 1)
    assert body["last_seen_at"] >= body["created_at"]
    assert set(body) == set(openapi_document()["components"]["schemas"]["Action"]["properties"])
    status, listed, _ = await call(env, "GET", "/actions?status=pending")
    assert [(a["id"], a["repeats"]) for a in listed["actions"]] == [(first, 1)]
    with trio.fail_after(10), env.hub.subscribe(0) as client:  # /stream's backlog
        seen = [(await client.receive()).data for _ in range(2)]
    assert [(row["id"], row["status"], row["repeats"]) for row in seen] == [
        (first, "pending", 0), (first, "pending", 1)]


# ---- actions: thaw -------------------------------------------------------------------------

async def test_thaw_a_freeze_then_again_is_409(env: Env, tmp_path: Path) -> None:
    tree, fake = FakeTree(tmp_path / "cg", env.proc), FakePrimitives()
    install(env.manager, tree, fake)
    action = await frozen(env.manager, tree.add(HOG, [(700, "hog")]))
    path = f"/actions/{action}/thaw"
    status, body, _ = await call(env, "POST", path, headers=env.auth("rita"), body={})
    assert (status, body["detail"]) == (403, f"the token 'rita' has the role reader; POST "
                                             f"{path} needs the role approver or admin")
    status, body, _ = await call(env, "POST", path, headers=env.auth("alice"),
                                 body={"reason": "false alarm", "note": "on call"})
    assert (status, body["id"], body["kind"], body["cgroup"]) == (200, action, "freeze", HOG)
    assert fake.of("thaw") == [HOG]
    thawed = [r for r in env.store.audit_log(action_id=action) if r["event"] == "action.thawed"]
    assert [(r["actor"], r["detail"]["reason"]) for r in thawed] == [("alice", "false alarm")]
    status, body, _ = await call(env, "POST", path, headers=env.auth("alice"))
    assert status == 409
    assert_error(body, "conflict")
    assert body["detail"] == (f"action {action} holds no active freeze: it was thawed already "
                              "(false alarm)")
    status, body, _ = await call(env, "POST", f"/actions/{action + 100}/thaw")
    assert status == 404
    assert fake.of("thaw") == [HOG]
