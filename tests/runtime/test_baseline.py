"""``linnix replay --rules NEW --baseline OLD``: matching two rule sets' alerts and actions.

``fixtures/golden/baseline_fork_storm.txt`` and ``.jsonl`` hold exactly what the
command prints for ``fixtures/rules/baseline/new`` against ``.../old`` on
``fixtures/fork_storm.jsonl``: one rule moved later, one earlier, one removed, one
added.  After an intended change, rewrite them with ``pytest
tests/runtime/test_baseline.py --update-golden`` and review the diff.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import ROOT

from linnix import cli
from linnix.runtime.baseline import Item, compare, diff_json

GOLDEN = ROOT / "fixtures" / "golden"
BASE = "fixtures/rules/baseline"


def run(capsys: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch,
        *args: str) -> tuple[int, bytes]:
    monkeypatch.chdir(ROOT)
    status = cli.main(["replay", "fixtures/fork_storm.jsonl", *args])
    out, err = capsys.readouterr()
    assert err == b""
    return status, out


@pytest.mark.parametrize("fmt", ["txt", "jsonl"])
def test_a_rule_change_exits_1_with_the_golden_diff(fmt: str,
                                                    capsysbinary: pytest.CaptureFixture[bytes],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    update_golden: bool) -> None:
    extra = ["--format", "jsonl"] if fmt == "jsonl" else []
    status, got = run(capsysbinary, monkeypatch, "--rules", f"{BASE}/new",
                      "--baseline", f"{BASE}/old", *extra)
    assert status == 1
    golden = GOLDEN / f"baseline_fork_storm.{fmt}"
    if update_golden:
        golden.write_bytes(got)
        return
    assert got == golden.read_bytes()


def test_the_golden_diff_holds_each_kind_of_difference() -> None:
    lines = [json.loads(x) for x in (GOLDEN / "baseline_fork_storm.jsonl").read_text()
             .splitlines()]
    kinds = {(x["type"], x["item"]["rule"], x["item"]["state"]) for x in lines[:-1]}
    assert ("only_new", "forking", "firing") in kinds
    assert ("only_old", "huge", "firing") in kinds
    assert ("moved", "storm", "firing") in kinds
    moved = {x["item"]["rule"]: x["delta_s"] for x in lines if x["type"] == "moved"
             and x["item"]["state"] == "firing"}
    assert moved == {"storm": 2.0, "crowd": -1.5}
    assert lines[-1] == {"type": "baseline_summary", "only_new": 2, "only_old": 3,
                         "moved": 3, "matched": 2, "tolerance_s": 1.0, "differs": True}


def test_identical_rule_sets_exit_0(capsysbinary: pytest.CaptureFixture[bytes],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    status, out = run(capsysbinary, monkeypatch, "--rules", "rules/", "--baseline", "rules/")
    assert status == 0
    assert out == b"no difference: 4 alert(s) and action(s) match (tolerance 1s)\n"


def test_a_wide_tolerance_matches_what_moved(capsysbinary: pytest.CaptureFixture[bytes],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    status, out = run(capsysbinary, monkeypatch, "--rules", f"{BASE}/new", "--baseline",
                      f"{BASE}/old", "--tolerance", "2s", "--format", "jsonl")
    assert status == 1
    assert json.loads(out.splitlines()[-1])["moved"] == 0


def item(ts: float, rule: str = "r", state: str = "firing", pid: int | None = 7) -> Item:
    return Item(("alert", rule, state, pid, 1.0 if pid else None, None), ts, "p", {"ts": ts})


def test_items_of_one_instance_pair_in_time_order() -> None:
    diff = compare([item(1.0), item(5.0), item(9.0)], [item(1.2), item(7.0)], 1.0)
    assert diff.matched == 1 and [(o.ts, n.ts) for o, n in diff.moved] == [(7.0, 5.0)]
    assert [i.ts for i in diff.only_new] == [9.0] and diff.only_old == []


def test_instances_and_states_never_match_each_other() -> None:
    diff = compare([item(1.0, pid=8), item(2.0, state="pending")], [item(1.0), item(2.0)], 1.0)
    assert diff.matched == 0 and len(diff.only_new) == 2 and len(diff.only_old) == 2


_TIMES = st.lists(st.floats(0, 1000, allow_nan=False), max_size=8)


@given(new=_TIMES, old=_TIMES, tolerance=st.floats(0, 10))
def test_comparing_the_other_way_swaps_the_sides(new: list[float], old: list[float],
                                                 tolerance: float) -> None:
    a = compare([item(t) for t in sorted(new)], [item(t) for t in sorted(old)], tolerance)
    b = compare([item(t) for t in sorted(old)], [item(t) for t in sorted(new)], tolerance)
    assert [i.ts for i in a.only_new] == [i.ts for i in b.only_old]
    assert [i.ts for i in a.only_old] == [i.ts for i in b.only_new]
    assert a.matched == b.matched and len(a.moved) == len(b.moved)
    assert a.matched + len(a.moved) + len(a.only_new) == len(new)
    assert diff_json(a)[-1]["differs"] == (a.matched != len(new) or len(new) != len(old))


@given(times=_TIMES)
def test_a_rule_set_against_itself_has_no_difference(times: list[float]) -> None:
    items = [item(t) for t in sorted(times)]
    diff = compare(items, list(items), 0.0)
    assert not diff.differs and diff.matched == len(times)

