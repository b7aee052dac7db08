"""The built-in analyst's facts, from incidents the shipped rules open on fixture traces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from analysis_support import FIXTURES, RUNBOOK, incident_of, replay_into, shipped_plan, store_at

from linnix.actions.store import Store
from linnix.analysis import analyze, analyze_stored
from linnix.analysis.facts import load_metric


async def analysed(tmp_path: Path, trace: str, rule: str,
                   runbooks: dict[str, str] | None = None) -> dict[str, Any]:
    store = store_at(tmp_path / "linnix.db")
    try:
        await replay_into(store, FIXTURES / f"{trace}.jsonl", shipped_plan(), runbooks)
        result = analyze_stored(store, incident_of(store, rule)["id"])
    finally:
        store.close()
    assert result is not None
    return result


def facts(analysis: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in analysis["facts"] if f["kind"] == kind]


async def test_a_fork_storm_names_the_forker_as_its_driver(tmp_path: Path) -> None:
    a = await analysed(tmp_path, "fork_storm", "fork_storm", {"fork_storm": RUNBOOK})
    (drivers,) = facts(a, "drivers")
    assert drivers["metric"] == "forks_per_sec"
    top = drivers["top"][0]
    assert (top["pid"], top["comm"], top["share"]) == (2000, "forker", 1.0)
    assert facts(a, "runbook") == [{"id": a["facts"][-1]["id"], "kind": "runbook",
                                    "text": RUNBOOK}]
    (cond,) = facts(a, "condition")
    assert cond["condition"] == "delta(procs, 5s) > 100 + 10 * ncpu"
    assert cond["held_s"] == pytest.approx(2.0)
    delta = next(f for f in facts(a, "trajectory") if f["name"] == "delta(procs, 5s)")
    assert delta["peak"]["value"] == delta["last"]["value"] > delta["first"]["value"]
    assert [f["id"] for f in a["facts"]] == [f"F{n}" for n in range(1, len(a["facts"]) + 1)]


async def test_a_runaway_tree_names_its_busiest_branch_and_where_it_came_from(
        tmp_path: Path) -> None:
    a = await analysed(tmp_path, "runaway_tree", "runaway_tree")
    (drivers,) = facts(a, "drivers")
    assert drivers["metric"] == "cpu_pct"
    assert [p["pid"] for p in drivers["top"]][:2] == [5001, 5002]  # 90% each, pid order
    assert drivers["top"][0]["share"] == pytest.approx(90.0 / 180.5)
    (branch,) = facts(a, "branch")
    assert (branch["pid"], branch["metric"]) == (5001, "subtree_cpu_pct")
    (origin,) = facts(a, "origin")
    assert [p["pid"] for p in origin["chain"]] == [5000, 300, 250, 1]
    assert origin["chain"][0]["cmdline"] == "stress"
    (before,) = facts(a, "before")
    assert (before["exe"], before["count"]) == ("/usr/bin/stress", 0)
    assert facts(a, "runbook") == []  # the rule has none


async def test_a_memory_leak_names_the_leaking_process_by_its_resident_memory(
        tmp_path: Path) -> None:
    a = await analysed(tmp_path, "memory_leak", "memory_leak")
    assert a["metric"] == "rss_mb"
    assert [f["kind"] for f in a["facts"]] == ["condition", *["trajectory"] * 4, "drivers",
                                               "origin", "host", "before"]
    (cond,) = facts(a, "condition")
    assert cond["held_s"] == pytest.approx(90.0)
    delta = next(f for f in facts(a, "trajectory") if f["name"] == "delta(rss_mb, 30s)")
    assert (delta["samples"], delta["last"]["value"]) == (121, 180)
    (drivers,) = facts(a, "drivers")
    assert drivers["metric"] == "rss_mb" and drivers["total"] == pytest.approx(784.0)
    assert [(p["pid"], p["comm"], p["share"]) for p in drivers["top"]] == [
        (7000, "leaky", 1.0)]
    (origin,) = facts(a, "origin")
    assert [p["pid"] for p in origin["chain"]] == [7000, 1]
    (before,) = facts(a, "before")
    assert (before["exe"], before["count"]) == ("/usr/local/bin/leaky", 0)


async def test_a_circuit_breaker_names_the_host_s_busiest_processes(tmp_path: Path) -> None:
    a = await analysed(tmp_path, "circuit_breaker", "circuit_breaker")
    assert (a["scope"], a["metric"]) == ("system", "cpu_pct")
    # the host as a whole: no branch, no origin, and earlier incidents of any executable
    assert [f["kind"] for f in a["facts"]] == ["condition", "trajectory", "trajectory",
                                               "drivers", "host", "before"]
    (cond,) = facts(a, "condition")
    assert cond["condition"] == "host_cpu_pct > 95 and psi_cpu_some > 50"
    assert cond["held_s"] == pytest.approx(60.0)
    (drivers,) = facts(a, "drivers")
    assert drivers["metric"] == "cpu_pct"
    assert [p["pid"] for p in drivers["top"]] == [9000, 210, 1, 300]
    assert drivers["top"][0]["comm"] == "hog"
    assert drivers["top"][0]["share"] == pytest.approx(180.0 / drivers["total"])
    (host,) = facts(a, "host")
    assert (host["cpu_pct"], host["psi_cpu_some"]) == (97, 60)
    (before,) = facts(a, "before")
    assert (before["exe"], before["count"]) == (None, 0)


def test_what_was_not_kept_is_left_out_and_not_measured_stays_null() -> None:
    incident = {"id": 3, "rule": "r", "scope": "process", "message": "m",
                "history": [{"ts": 1.0, "values": {"cpu_pct": None}}],
                "subtree": [{"pid": 9, "comm": "x", "exe": None, "cpu_pct": None,
                             "depth": 0}],
                "host": {"cpu_pct": None}, "context": {}}
    a = analyze(incident)
    kinds = [f["kind"] for f in a["facts"]]
    assert kinds == ["condition", "trajectory", "origin", "before"]  # no drivers, no host
    (trajectory,) = facts(a, "trajectory")
    assert trajectory["peak"] is None and trajectory["last"]["value"] is None


def test_earlier_incidents_count_only_for_the_same_executable(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "linnix.db"))
    try:
        def open_one(exe: str) -> int:
            return store.open_incident(
                rule="hot", severity="warning", scope="process", pid=5, comm="app", start=0.0,
                message="hot", labels={}, history=[], host={},
                subtree=[{"pid": 5, "comm": "app", "exe": exe, "depth": 0}])
        first, _, _, last = (open_one(exe) for exe in ("/bin/a", "/bin/b", "/bin/a", "/bin/a"))
        a = analyze_stored(store, last)
        assert a is not None
        (before,) = facts(a, "before")
        assert (before["exe"], before["count"]) == ("/bin/a", 2)
        assert [i["id"] for i in before["incidents"]] == [3, first]  # newest first
        (alerts,) = facts(a, "alerts")  # the others were opened in the same minute
        assert [i["id"] for i in alerts["incidents"]] == [1, 2, 3]
        assert analyze_stored(store, 99) is None
    finally:
        store.close()


@pytest.mark.parametrize(("names", "metric"), [
    (["delta(procs, 5s)", "forks_per_sec", "ncpu"], "forks"),
    (["subtree_procs", "avg(subtree_cpu_pct, 60s)", "max(subtree_forks_per_sec, 60s)"],
     "cpu_pct"),
    (["delta(rss_mb, 30s)", "mem_total_mb"], "rss_mb"),
    (["fd_pct", "fds"], "fds"),
    (["pid"], "cpu_pct"),
])
def test_the_load_is_read_from_the_condition_names(names: list[str], metric: str) -> None:
    assert load_metric(names) == metric
