"""GET /incidents/{id}/analysis (JSON or Markdown), POST /incidents/{id}/analyze and GET
/insights."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from api_support import Env, assert_error, call, start_env

from linnix.api.openapi import openapi_document


@pytest.fixture
async def env(tmp_path: Path, nursery: trio.Nursery) -> Env:
    return await start_env(tmp_path, nursery)


def _incident(env: Env, comm: str = "python3") -> int:
    proc = {"pid": 4242, "comm": comm, "exe": "/usr/bin/python3", "cmdline": "[x](y)",
            "cpu_pct": 97.0, "depth": 0}
    return env.store.open_incident(
        rule="cpu_spike", severity="warning", scope="process", pid=4242, comm=comm, start=1.0,
        message=f"{comm} burns", labels={}, host={"cpu_pct": 99.0},
        history=[{"ts": 1.0, "values": {"cpu_pct": 97.0}}], subtree=[proc],
        context={"condition": "cpu_pct > 90", "runbook": "restart it"})


async def test_an_incident_is_analysed_on_demand_and_shown(env: Env) -> None:
    incident = _incident(env, "**bold**")
    status, body, _ = await call(env, "GET", f"/incidents/{incident}/analysis")
    assert status == 404
    assert_error(body, "not found")
    assert "has not been analysed" in body["detail"]

    status, body, _ = await call(env, "POST", f"/incidents/{incident}/analyze",
                                 headers=env.auth("alice"))
    assert status == 200 and body["error"] is None
    facts = body["analysis"]["facts"]
    assert [f["kind"] for f in facts] == ["condition", "trajectory", "drivers", "origin",
                                         "host", "before", "runbook"]
    assert facts[2]["top"][0]["comm"] == "**bold**"

    status, again, _ = await call(env, "GET", f"/incidents/{incident}/analysis?format=json")
    assert (status, again["analysis"]) == (200, body["analysis"])
    status, whole, _ = await call(env, "GET", f"/incidents/{incident}")
    assert whole["analysis"]["analysis"] == body["analysis"]

    status, document, headers = await call(env, "GET",
                                           f"/incidents/{incident}/analysis?format=markdown")
    assert status == 200 and headers["Content-Type"] == "text/markdown; charset=utf-8"
    text = document.decode()
    assert "- **F3** drivers by cpu_pct (total 97): ` **bold** `[4242] 97 (100%)" in text
    assert "` [x](y) `" in text and "` restart it `" in text


async def test_bad_requests_and_roles(env: Env) -> None:
    incident = _incident(env)
    status, body, _ = await call(env, "GET", f"/incidents/{incident}/analysis?format=html")
    assert status == 400
    assert_error(body, "bad request")
    for missing in (incident + 1, 2**70):
        status, body, _ = await call(env, "GET", f"/incidents/{missing}/analysis")
        assert status == 404
        status, body, _ = await call(env, "POST", f"/incidents/{missing}/analyze")
        assert status == 404
        assert_error(body, "not found")
    status, body, _ = await call(env, "POST", f"/incidents/{incident}/analyze",
                                 headers=env.auth("rita"))
    assert status == 403
    assert body["detail"] == (f"the token 'rita' has the role reader; POST /incidents/"
                              f"{incident}/analyze needs the role approver or admin")


async def test_a_failed_analysis_says_why_in_markdown(env: Env) -> None:
    incident = _incident(env)
    env.store.save_analysis(incident, None, "the analysis took longer than 10s")
    status, document, _ = await call(env, "GET",
                                     f"/incidents/{incident}/analysis?format=markdown")
    assert status == 200
    assert document.decode() == (f"Incident {incident} could not be analysed: the analysis "
                                 "took longer than 10s\n")


# ---- GET /insights --------------------------------------------------------------------------

async def test_insights_are_empty_until_an_incident_is_analysed(env: Env) -> None:
    _incident(env)  # an incident, but no analysis yet
    status, body, _ = await call(env, "GET", "/insights")
    assert (status, body) == (200, {"insights": [], "next_before": None})


async def test_insights_list_analyses_newest_incident_first_and_page(env: Env) -> None:
    ids = [_incident(env, comm) for comm in ("a", "b", "c", "d")]
    for incident in ids[:3]:
        await call(env, "POST", f"/incidents/{incident}/analyze", headers=env.auth("alice"))
    env.store.save_analysis(ids[3], None, "the analysis took longer than 10s")
    await call(env, "POST", f"/incidents/{ids[0]}/analyze", headers=env.auth("alice"))
    status, body, _ = await call(env, "GET", "/insights")
    assert status == 200 and body["next_before"] is None
    # by incident, newest first: analysing the oldest again does not move it up
    assert [i["incident_id"] for i in body["insights"]] == ids[::-1]
    failed, newest = body["insights"][0], body["insights"][1]
    assert (failed["analysis"], failed["error"]) == (None, "the analysis took longer than 10s")
    assert newest["error"] is None and newest["comm"] == "c"
    assert newest["analysis"]["facts"][2]["top"][0]["comm"] == "c"
    assert newest["analysis"] == (await call(
        env, "GET", f"/incidents/{ids[2]}/analysis"))[1]["analysis"]
    assert newest["time"] == env.store.analysis(ids[2])["time"]  # when it was analysed
    documented = openapi_document()["components"]["schemas"]
    shapes = documented["Insight"]["allOf"][1]["properties"].keys() \
        | documented["Analysis"]["properties"].keys()
    assert set(newest) == shapes

    status, body, _ = await call(env, "GET", "/insights?limit=2")
    assert [i["incident_id"] for i in body["insights"]] == [ids[3], ids[2]]
    assert body["next_before"] == ids[2]
    status, body, _ = await call(env, "GET", f"/insights?limit=2&before={ids[2]}")
    assert [i["incident_id"] for i in body["insights"]] == [ids[1], ids[0]]
    assert body["next_before"] == ids[0]
    status, body, _ = await call(env, "GET", f"/insights?limit=2&before={ids[0]}")
    assert body == {"insights": [], "next_before": None}


async def test_insights_check_their_parameters_and_need_a_token(env: Env) -> None:
    for bad in ("limit=0", "limit=1001", "before=x", "before=-3", "before=0"):
        status, body, _ = await call(env, "GET", f"/insights?{bad}")
        assert status == 400, bad
        assert_error(body, "bad request")
    status, body, _ = await call(env, "GET", "/insights", auth=False)
    assert status == 401
    assert_error(body, "unauthorized")
    status, body, _ = await call(env, "GET", "/insights", headers=env.auth("rita"))
    assert status == 200  # a reader may read them


async def test_analysing_again_asks_the_configured_model_too(env: Env) -> None:
    incident = _incident(env)
    status, body, _ = await call(env, "POST", f"/incidents/{incident}/analyze",
                                 headers=env.auth("alice"))
    assert status == 200 and env.view.asked == []  # no model: the built-in analysis only
    env.view.model = True
    status, again, _ = await call(env, "POST", f"/incidents/{incident}/analyze",
                                  headers=env.auth("alice"))
    assert status == 200 and again["analysis"] == body["analysis"]
    assert env.view.asked == [incident]  # the model's part comes in the background
