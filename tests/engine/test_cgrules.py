"""Cgroup rules in the engine: instances per cgroup, for and windows, deepest-cgroup
reporting, a cgroup that goes away, labels, and the freeze/kill_cgroup proposals.

Ticks fall every 500 ms from the first event (0.0 here); an event stamped at or before a
tick is applied before it.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import alerts, core_for, proposals, run
from hypothesis import given, settings
from hypothesis import strategies as st

from linnix.engine import trace as t
from linnix.engine.cgrules import deepest
from linnix.engine.cgtable import Cg
from linnix.engine.core import Core
from linnix.language.pipeline import compile_text

SVC, SLICE = "/system.slice/a.service", "/system.slice"


def cg(ts: float, path: str, cg_id: int, **values: Any) -> t.Cgroup:
    return t.Cgroup(ts=ts, cgroup=path, id=cg_id, **values)


def rows(out: list[Any]) -> list[tuple[Any, ...]]:
    return [(a.ts, a.state, a.cgroup) + ((a.reason,) if a.state == "resolved" else ())
            for a in alerts(out)]


def test_a_for_counts_from_the_first_sample_that_holds() -> None:
    out = run("rule r: cg_cpu_pct > 100% for 1s", [
        cg(0.0, SVC, 11, cpu_pct=50.0), cg(1.0, SVC, 11, cpu_pct=150.0),
        cg(2.0, SVC, 11, cpu_pct=150.0), cg(3.0, SVC, 11, cpu_pct=20.0)])
    assert rows(out) == [(1.0, "pending", SVC), (2.0, "firing", SVC),
                         (3.0, "resolved", SVC, "cleared")]
    assert [a.pid for a in alerts(out)] == [None, None, None]


def test_a_parent_cgroup_is_not_reported_while_a_child_holds_the_condition() -> None:
    events = [cg(0.0, SLICE, 10, cpu_pct=150.0), cg(0.0, SVC, 11, cpu_pct=140.0),
              cg(0.0, "/user.slice", 12, cpu_pct=130.0),
              cg(2.0, SVC, 11, cpu_pct=10.0)]
    out = run("rule r: cg_cpu_pct > 100%", events)
    assert rows(out) == [(0.0, "firing", SVC), (0.0, "firing", "/user.slice"),
                         (2.0, "firing", SLICE), (2.0, "resolved", SVC, "cleared")]


def test_the_deepest_even_with_the_cgroups_between_them_not_sampled() -> None:
    a, b, c = Cg(1, "/a"), Cg(2, "/a/b/c"), Cg(3, "/ab")
    assert deepest({a, b, c}) == {b, c}  # /ab is not below /a
    assert deepest({a}) == {a} and deepest(set()) == set()


def test_a_cgroup_that_goes_away_resolves_and_a_new_one_at_its_path_is_new() -> None:
    out = run("rule r { when cg_mem_pct > 90% action kill_cgroup }", [
        cg(0.0, SVC, 11, mem_mb=95.0, mem_max_mb=100.0),
        t.CgroupGone(ts=1.0, id=11),
        cg(2.0, SVC, 12, mem_mb=99.0, mem_max_mb=100.0)])
    assert rows(out) == [(0.0, "firing", SVC), (1.0, "resolved", SVC, "gone"),
                         (2.0, "firing", SVC)]
    assert [(p.cgroup, p.cgroup_id) for p in proposals(out)] == [(SVC, 11), (SVC, 12)]


def test_freeze_and_kill_cgroup_are_proposed_on_the_cgroup_by_path_and_id() -> None:
    out = run("rule r { when cg_psi_mem_full > 20% for 1s\n action freeze\n"
              " action kill_cgroup }", [
        cg(0.0, SVC, 11, psi_mem_full=30.0), cg(1.0, SVC, 11, psi_mem_full=30.0)])
    acts = proposals(out)
    assert [(p.ts, p.action.name, p.pid, p.cgroup, p.cgroup_id, p.status) for p in acts] == [
        (1.0, "freeze", None, SVC, 11, "proposed"),
        (1.0, "kill_cgroup", None, SVC, 11, "proposed")]
    assert acts[0].to_json()["cgroup_id"] == 11


def test_alerts_carry_the_cgroup_unit_and_container_labels() -> None:
    pod = ("/kubepods.slice/kubepods-pod1.slice/cri-containerd-"
           "3f4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f.scope")
    out = run('rule r { when cg_procs > 0\n labels { team = "web", unit = "mine" } }', [
        cg(0.0, SVC, 11, procs=1), cg(0.0, pod, 12, procs=1)])
    got = {a.cgroup: a.labels for a in alerts(out)}
    assert got[SVC] == {"cgroup": SVC, "unit": "mine", "team": "web"}  # the rule's own wins
    assert got[pod]["container"] == "3f4e5a6b7c8d" and "unit" in got[pod]
    assert alerts(out)[0].to_json()["cgroup"] == SVC


def test_the_default_message_names_the_cgroup() -> None:
    (alert,) = alerts(run("rule r: cg_mem_mb > 10MB", [cg(0.0, SVC, 11, mem_mb=20.0)]))
    assert alert.message == f"{SVC}: cg_mem_mb=20"
    assert alert.values == {"cg_mem_mb": 20.0}


def test_no_value_is_no_match() -> None:
    out = run("rule r: cg_mem_pct > 1%", [cg(0.0, SVC, 11, mem_mb=20.0)])  # no limit
    assert alerts(out) == []


@pytest.mark.parametrize(("rule", "expected"), [
    ("delta(cg_oom_kills, 2s) > 0", [(2.0, "firing", SVC), (4.0, "resolved", SVC, "cleared")]),
    # 300 from 2 s to 3 s: over 100 on average from 2.67 s to 4.33 s
    ("avg(cg_cpu_pct, 2s) > 100%", [(3.0, "firing", SVC), (4.5, "resolved", SVC, "cleared")]),
])
def test_windows_over_cgroup_metrics_move_with_time(rule: str,
                                                    expected: list[tuple[Any, ...]]) -> None:
    events = [cg(0.0, SVC, 11, oom_kills=0, cpu_pct=0.0),
              cg(2.0, SVC, 11, oom_kills=1, cpu_pct=300.0),
              cg(3.0, SVC, 11, oom_kills=1, cpu_pct=0.0)]
    out = run(f"rule r: {rule}", events, until=10.0)
    assert rows(out) == expected


def test_a_long_quiet_gap_is_skipped_not_walked() -> None:
    core = core_for("rule r: cg_cpu_pct > 100% for 1s")
    core.feed([cg(0.0, SVC, 11, cpu_pct=150.0)])
    core.feed([cg(1e9, SVC, 11, cpu_pct=150.0)])
    core.finish()
    assert core.ticks == 2 * 10**9 + 1
    assert [(a.ts, a.state) for a in alerts(core.drain())] == [(0.0, "pending"),
                                                                 (1.0, "firing")]
    assert sum(s.evaluations for s in core.evaluator.rules) < 100


# ---- any stream of cgroup events -------------------------------------------------------------

PATHS = ["/", "/a", "/a/b", "/a/b/c", "/d", "/a/b/c/d/e"]
RULES = """
rule hot { when cg_cpu_pct > 100% and unit != "x.service" for 2s
    action freeze
    action kill_cgroup }
rule full: cg_mem_pct > 90% or cg_psi_mem_full > 20%
rule growing { when delta(cg_oom_kills, 3s) > 0 or avg(cg_swap_mb, 2s) > 5MB
    keep_firing_for 1s
    cooldown 2s }
rule host_too { when cg_procs > 2 and host_cpu_pct > 50%
    keep_firing_for 1s }
"""
maybe = st.one_of(st.none(), st.floats(0, 300, allow_nan=False))
pct = st.one_of(st.none(), st.floats(0, 100, allow_nan=False))
count = st.one_of(st.none(), st.integers(0, 5))


@st.composite
def cgroup_events(draw: st.DrawFn) -> list[t.Event]:
    ts, out = 0.0, []
    for _ in range(draw(st.integers(0, 40))):
        ts += draw(st.sampled_from([0.0, 0.3, 0.5, 1.0, 7.0, 1e6]))
        kind = draw(st.sampled_from(["cgroup", "cgroup", "cgroup", "gone", "system"]))
        cg_id = draw(st.integers(0, 6))
        if kind == "gone":
            out.append(t.CgroupGone(ts=ts, id=cg_id))
        elif kind == "system":
            out.append(t.System(ts=ts, cpu_pct=draw(pct)))
        else:
            out.append(t.Cgroup(
                ts=ts, cgroup=draw(st.sampled_from([*PATHS, "/x.service"])), id=cg_id,
                procs=draw(count), cpu_pct=draw(maybe), mem_mb=draw(maybe),
                mem_max_mb=draw(st.one_of(st.none(), st.sampled_from([0.0, 100.0]))),
                swap_mb=draw(maybe), psi_mem_full=draw(pct), oom_kills=draw(count)))
    return out


def outputs(events: list[t.Event], skip_idle: bool, batch: int) -> list[dict[str, Any]]:
    core = Core(compile_text(RULES), 0.5, skip_idle=skip_idle)
    for i in range(0, len(events), batch):
        core.feed(events[i:i + batch])
    core.finish()
    return [o.to_json() for o in core.drain()]


@given(cgroup_events(), st.integers(1, 7))
@settings(max_examples=150, deadline=None)
def test_any_cgroup_stream_runs_and_skipping_quiet_ticks_changes_nothing(
        events: list[t.Event], batch: int) -> None:
    walked = outputs(events, True, batch)
    if events and events[-1].ts - events[0].ts < 100:  # every tick: only over short spans
        assert walked == outputs(events, False, len(events) or 1)
    for item in walked:  # every instance is a cgroup: named, never a process
        assert item["pid"] is None and item["cgroup"] in [*PATHS, "/x.service"]
