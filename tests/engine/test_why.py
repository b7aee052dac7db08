"""``WhyWatch``: one rule's state, its parts and what blocked it, tick by tick."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine_support import exit_, fork, proc, sample

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.engine.why import SHOWN_MAX, WhyWatch
from linnix.language.loader import load_text
from linnix.language.pipeline import build_program
from linnix.language.why import why_parts

Record = dict[str, Any]


def watch(rules: str, events: Sequence[t.Event], name: str, **kw: Any
          ) -> tuple[WhyWatch, list[Record]]:
    """Run ``events`` through ``rules`` (every tick), watching rule ``name``."""
    program = load_text(rules, "<why>")
    plan = build_program(program).require_plan()
    core = Core(plan, 0.5, skip_idle=False)
    records: list[Record] = []
    w = WhyWatch(core, name, why_parts(program, plan, name), records.append, **kw)
    core.after_tick = w
    core.feed(list(events))
    core.finish()
    return w, records


def at(records: list[Record], ts: float, pid: int | None = None) -> Record:
    found = [r for r in records if r["ts"] == ts and (pid is None or r["pid"] == pid)]
    assert len(found) == 1, found
    return found[0]


HOT = [proc(0.0, 1, 0, "init"), proc(0.0, 10, 1, "yes"), sample(1.0, 10, cpu_pct=80.0),
       sample(2.0, 10, cpu_pct=10.0), sample(3.0, 10, cpu_pct=12.0)]


def test_pending_progress_then_a_lapse_with_the_comparison_that_failed() -> None:
    w, records = watch("rule hot: cpu_pct > 50 for 2s\n", HOT, "hot", pid=10)
    assert [r["ts"] for r in records] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    first = at(records, 1.0)
    assert (first["state"], first["transition"], first["for"]) == (
        "pending", "pending", {"elapsed": 0.0, "of": 2.0})
    assert at(records, 1.5)["for"] == {"elapsed": 0.5, "of": 2.0}
    assert at(records, 1.5)["values"] == {"cpu_pct": 80.0}
    lapsed = at(records, 2.0)
    assert lapsed["state"] == "inactive" and lapsed["lapsed"] == {"elapsed": 0.5, "of": 2.0}
    assert lapsed["blocked"] == [{
        "kind": "compare", "text": "cpu_pct > 50", "left_text": "cpu_pct", "left": 10.0,
        "op": ">", "right_text": "50", "right": 50.0, "right_literal": True}]
    assert "lapsed" not in at(records, 2.5)  # only at the tick it lapsed
    assert w.fired == 0 and w.ticks == 7
    assert w.longest_lapse is lapsed


def test_a_name_with_no_value_yet_is_the_reason() -> None:
    _, records = watch("rule big: rss_mb > 100\n", HOT[:2], "big", pid=10)
    assert records[0]["blocked"] == [{"kind": "no_value", "text": "rss_mb > 100",
                                      "names": ["rss_mb"]}]
    assert records[0]["values"] == {"rss_mb": None}


def test_an_unless_that_held() -> None:
    rules = 'rule hot {\n    when cpu_pct > 50\n    unless comm == "yes"\n}\n'
    _, records = watch(rules, HOT, "hot", pid=10)
    r = at(records, 1.0)
    assert (r["when"], r["unless"], r["state"]) == (True, [True], "inactive")
    assert r["blocked"] == [{"kind": "unless", "text": 'comm == "yes"'}]
    assert [p["held"] for p in r["parts"]] == [True, True]


def test_a_cooldown_blocks_and_says_until_when() -> None:
    events = [*HOT[:3], sample(2.0, 10, cpu_pct=10.0), sample(3.0, 10, cpu_pct=90.0)]
    rules = "rule hot {\n    when cpu_pct > 50\n    cooldown 10s\n}\n"
    w, records = watch(rules, events, "hot", pid=10)
    assert at(records, 1.0)["transition"] == "firing" and w.fired == 1
    assert at(records, 2.0)["transition"] == "resolved"
    assert at(records, 3.0)["blocked"] == [{"kind": "cooldown", "until": 12.0}]


def test_a_subtree_ancestor_is_blocked_by_its_holding_descendant() -> None:
    events = [proc(0.0, 1, 0, "init"), proc(0.0, 10, 1, "make"), fork(0.0, 11, 10, "cc"),
              sample(1.0, 11, cpu_pct=80.0)]
    _, records = watch("rule tree: subtree_cpu_pct > 50\n", events, "tree", pid=10)
    r = at(records, 1.0)
    assert r["when"] is True and r["state"] == "inactive"
    assert r["blocked"] == [{"kind": "descendant", "pid": 11, "comm": "cc"}]


def test_a_boundary_names_the_wall_that_kept_totals_out() -> None:
    events = [proc(0.0, 1, 0, "init"), proc(0.0, 10, 1, "tmux"), fork(0.0, 11, 10, "sh"),
              sample(1.0, 11, cpu_pct=80.0)]
    rules = "rule tree {\n    when subtree_cpu_pct > 50\n    boundary comm == \"sh\"\n}\n"
    _, records = watch(rules, events, "tree", pid=10)
    r = at(records, 1.0)
    assert r["values"] == {"subtree_cpu_pct": 0.0}
    assert r["blocked"][-1] == {"kind": "boundary", "pid": 11, "comm": "sh"}


def test_a_system_rule_reports_the_host_and_its_closest_tick() -> None:
    events = [proc(0.0, 1, 0, "init"), *(fork(1.0 + i * 0.1, 100 + i, 1, "w") for i in range(4)),
              t.Lost(ts=2.0, count=0)]
    w, records = watch("rule storm: forks_per_sec > 10 and procs > 2\n", events, "storm")
    assert {r["pid"] for r in records} == {None}
    assert w.best is not None and w.best["held"] == 1 and w.best["of"] == 2
    best = w.best["parts"]
    assert best[0]["reason"]["kind"] == "compare" and best[0]["reason"]["left"] == 4
    assert best[1] == {"kind": "when", "text": "procs > 2", "held": True, "ok": True,
                       "left_text": "procs", "left": 5}
    assert w.best["ts"] == 1.5  # the first tick with all four forks counted


def test_without_a_pid_the_instances_shown_are_capped_and_the_rest_counted() -> None:
    n = SHOWN_MAX + 3
    events = [proc(0.0, 1, 0, "init"), *(proc(0.0, 100 + i, 1, "w") for i in range(n))]
    _, records = watch('rule w: comm == "w" for 10s\n', events, "w")
    assert [r["pid"] for r in records if r["type"] == "why"] == list(range(100, 110))
    assert records[-1] == {"type": "why_more", "ts": 0.0, "rule": "w", "count": 3}


def test_with_nothing_held_the_closest_live_process_is_shown() -> None:
    events = [proc(0.0, 1, 0, "init"), proc(0.0, 10, 1, "a"), proc(0.0, 11, 1, "b")]
    _, records = watch('rule r: comm == "b" and cpu_pct > 50\n', events, "r")
    assert [r["pid"] for r in records] == [11]


def test_the_range_limits_the_ticks_reported() -> None:
    w, records = watch("rule hot: cpu_pct > 50 for 2s\n", HOT, "hot", pid=10, start=1.0,
                       end=2.0)
    assert [r["ts"] for r in records] == [1.0, 1.5, 2.0] and w.ticks == 3


def test_an_exited_pid_is_no_longer_reported() -> None:
    events = [*HOT[:3], exit_(1.2, 10)]
    _, records = watch("rule hot: cpu_pct > 50 for 2s\n", events, "hot", pid=10)
    assert [r["ts"] for r in records] == [0.0, 0.5, 1.0]
