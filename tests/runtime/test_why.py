"""``linnix replay --why RULE``: golden files for a rule that fired, one whose pending state
lapsed and one that never came close, as text and as JSON lines; the text of each reason.

``fixtures/golden/why_NAME.txt`` and ``.jsonl`` hold exactly what the command prints.
After an intended change, rewrite them with ``pytest tests/runtime/test_why.py
--update-golden`` and review the diff.
"""

from __future__ import annotations

import json

import pytest
from support import ROOT, compare_golden

from linnix import cli
from linnix.runtime.why import fmt, reason_text

GOLDEN = ROOT / "fixtures" / "golden"

CASES = {
    # cpu_spike fires for pid 3001 at 123s
    "why_fired": ["fixtures/cpu_spike.jsonl", "--why", "cpu_spike", "--pid", "3001",
                  "--from", "121s", "--to", "124s"],
    # 160 forks in a second: pending at 5.5s, lapsed a second later, never fired
    "why_lapsed": ["fixtures/fork_storm_short_burst.jsonl", "--why", "fork_storm",
                   "--from", "4s", "--to", "8s"],
    # a tree at 135% of two CPUs: the CPU part never holds
    "why_never": ["fixtures/runaway_tree_cool.jsonl", "--why", "runaway_tree",
                  "--from", "62s", "--to", "64s"],
}


def run(capsys: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch,
        *args: str) -> bytes:
    monkeypatch.chdir(ROOT)
    status = cli.main(["replay", "--rules", "rules/", *args])
    out, err = capsys.readouterr()
    assert (status, err) == (0, b"")
    return out



@pytest.mark.parametrize("fmt_", ["txt", "jsonl"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_why_matches_the_golden_file(case: str, fmt_: str,
                                     capsysbinary: pytest.CaptureFixture[bytes],
                                     monkeypatch: pytest.MonkeyPatch,
                                     update_golden: bool) -> None:
    extra = ["--format", "jsonl"] if fmt_ == "jsonl" else []
    got = run(capsysbinary, monkeypatch, *CASES[case], *extra)
    compare_golden(got, GOLDEN / f"{case}.{fmt_}", update_golden)


def test_every_why_golden_file_has_its_case() -> None:
    assert sorted(p.name for p in GOLDEN.glob("why_*")) == sorted(
        f"{case}.{ext}" for case in CASES for ext in ("jsonl", "txt"))


def records(case: str) -> list[dict[str, object]]:
    text = (GOLDEN / f"{case}.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_the_goldens_say_what_they_are_for() -> None:
    fired = records("why_fired")
    assert [r["transition"] for r in fired if r.get("transition")] == ["firing"]
    assert fired[-1] == {"type": "why_summary", "rule": "cpu_spike", "ticks": 7, "reported": 7,
                         "fired": 1, "closest": None, "longest_lapse": None}
    lapsed = records("why_lapsed")
    assert [r["state"] for r in lapsed if "lapsed" in r] == ["inactive"]
    assert lapsed[-1]["fired"] == 0 and lapsed[-1]["longest_lapse"] is not None
    never = records("why_never")
    assert all(r["state"] == "inactive" for r in never[:-1])
    closest = never[-1]["closest"]
    assert isinstance(closest, dict) and closest["held"] == 3 and closest["of"] == 4
    text = (GOLDEN / "why_never.txt").read_text()
    assert "avg(subtree_cpu_pct, 1m) 135.5, needs > 80% * ncpu (160)" in text.splitlines()[-1]


@pytest.mark.parametrize(("reason", "text"), [
    ({"kind": "compare", "left_text": "rss_mb", "left": 48.25, "op": ">", "right_text": "50",
      "right": 50.0, "right_literal": True}, "rss_mb 48.25, needs > 50"),
    ({"kind": "compare", "left_text": "x", "left": 1, "op": "<", "right_text": "2 * ncpu",
      "right": 4.0, "right_literal": False}, "x 1, needs < 2 * ncpu (4)"),
    ({"kind": "no_value", "text": "rss_mb > 5", "names": ["rss_mb"]},
     "rss_mb: no value yet (rss_mb > 5)"),
    ({"kind": "false", "text": 'comm in shells', "values": {"comm": "vi"}},
     'comm in shells is false (comm "vi")'),
    ({"kind": "unless", "text": "exempt"}, "unless exempt held"),
    ({"kind": "descendant", "pid": 11, "comm": "cc"},
     "cc[11] below it holds too (the deepest is reported)"),
    ({"kind": "boundary", "pid": 12, "comm": None},
     "its subtree totals stop at ?[12], a wall of its boundary"),
    ({"kind": "cooldown", "until": 12.0}, "cooldown until 12.000s"),
    ({"kind": "max_rate", "limit": 20}, "max_rate: limit 20"),
])
def test_each_reason_reads_plainly(reason: dict[str, object], text: str) -> None:
    assert reason_text(reason) == text


@pytest.mark.parametrize(("value", "text"), [
    (None, "(no value)"), (True, "true"), (3.0, "3"), (2.5, "2.5"), (1 / 3, "0.333333"),
    ("a\"b", '"a\\"b"'), (("sh", "bash"), '["sh", "bash"]'), (7, "7"),
    (float("inf"), "inf"),
])
def test_values_are_written_as_the_language_writes_them(value: object, text: str) -> None:
    assert fmt(value) == text


def test_every_tick_is_looked_at_and_a_plain_replay_skips_quiet_ones() -> None:
    from linnix.language.pipeline import build
    from linnix.language.why import why_parts
    from linnix.runtime.replay import replay
    from linnix.runtime.why import WhyRange, replay_why

    built = build([str(ROOT / "rules")])
    plan = built.require_plan()
    trace = str(ROOT / "fixtures" / "memory_big_stable.jsonl")
    what = WhyRange("memory_leak", why_parts(built.program, plan, "memory_leak"))
    seen: list[float] = []
    result, watch = replay_why(trace, plan, what, lambda r: seen.append(r["ts"]), tick_s=0.5)
    assert not result.core.skip_idle and result.core.after_tick is watch
    assert watch.ticks == result.core.ticks > 100
    plain = replay(trace, plan, lambda batch: None, tick_s=0.5)
    assert plain.core.skip_idle and plain.core.after_tick is None
    assert plain.core.ticks == result.core.ticks
