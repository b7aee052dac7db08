"""The ``analyze`` action: analyses made in the background, failures kept on the incident."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from analysis_support import FIXTURES, InlineStore, replay_into, store_at

from linnix.actions.store import AsyncStore, Store
from linnix.language.pipeline import compile_text
from linnix.runtime.analyst import Analyses

RULES = """
rule hot {
    when cpu_pct > 80% for 2s
    runbook "https://runbooks.example/hot"
    action analyze
    action renice(10)
}
"""


def stored(store: Store) -> list[dict[str, Any]]:
    return [i for i in (store.incident(r["id"]) for r in reversed(store.incidents())) if i]


async def test_an_analyze_rule_stores_the_built_in_analysis(tmp_path: Path) -> None:
    store = store_at(tmp_path / "linnix.db")
    try:
        await replay_into(store, FIXTURES / "runaway_tree.jsonl", compile_text(RULES))
        incidents = stored(store)
    finally:
        store.close()
    assert incidents and all(i["rule"] == "hot" for i in incidents)
    for incident in incidents:
        assert [a["kind"] for a in incident["actions"]] == ["renice"]
        analysis = incident["analysis"]
        assert analysis["error"] is None
        facts = analysis["analysis"]["facts"]
        assert analysis["analysis"]["incident"] == incident["id"]
        assert facts[0] == {"id": "F1", "kind": "condition", "condition": "cpu_pct > 80",
                            "held_since": incident["history"][0]["ts"],
                            "fired_at": incident["history"][-1]["ts"],
                            "held_s": pytest.approx(2.0)}
        assert facts[-1] == {"id": f"F{len(facts)}", "kind": "runbook",
                             "text": "https://runbooks.example/hot"}  # the rule's, as written


def failing(store: Store, incident_id: int) -> dict[str, Any]:
    raise RuntimeError("the analyst broke")


async def test_a_failing_analyst_is_recorded_and_stops_nothing(tmp_path: Path) -> None:
    store = store_at(tmp_path / "linnix.db")
    try:
        await replay_into(store, FIXTURES / "runaway_tree.jsonl", compile_text(RULES),
                          analyses=lambda s: Analyses(s, failing))
        incidents = stored(store)
    finally:
        store.close()
    assert incidents
    for incident in incidents:  # the incident, both actions, and the analysis's error
        assert [a["kind"] for a in incident["actions"]] == ["renice"]
        assert incident["analysis"]["analysis"] is None
        assert incident["analysis"]["error"] == ("the analyst failed: RuntimeError: the "
                                                 "analyst broke")


def one_incident(tmp_path: Path) -> tuple[Store, AsyncStore, int]:
    store = Store(str(tmp_path / "linnix.db"))
    incident = store.open_incident(rule="hot", severity="warning", scope="process", pid=5,
                                   comm="app", start=0.0, message="hot", labels={},
                                   history=[], subtree=[], host={})
    return store, InlineStore(store), incident


async def test_an_analysis_taking_too_long_is_given_up(tmp_path: Path,
                                                       autojump_clock: Any) -> None:
    store, astore, incident = one_incident(tmp_path)
    release = threading.Event()

    def stuck(s: Store, incident_id: int) -> dict[str, Any]:
        release.wait(30)
        return {"facts": []}

    analyses = Analyses(astore, stuck, timeout_s=5.0)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(analyses.run)
            await analyses.submit(incident)
            with trio.fail_after(60):
                while analyses.done == 0:
                    await trio.sleep(1)
            nursery.cancel_scope.cancel()
        got = store.analysis(incident)
        assert got is not None and got["analysis"] is None
        assert got["error"] == "the analysis took longer than 5s"
    finally:
        release.set()
        store.close()


async def test_a_full_queue_says_so_on_the_incident(tmp_path: Path) -> None:
    store, astore, incident = one_incident(tmp_path)
    analyses = Analyses(astore, queue_max=1)  # not running: the first waits, the next can't
    try:
        await analyses.submit(incident)
        await analyses.submit(incident)
        got = store.analysis(incident)
        assert got is not None and got["error"] == ("not analysed: too many analyses were "
                                                    "waiting already")
        assert analyses.failed == 1
    finally:
        store.close()
