"""``linnix replay --analyze``: each incident of a replay analysed as the daemon's analyst
would when it opens; golden outputs, and the plain replay left as it was."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from analysis_support import shipped_plan
from support import ROOT, compare_golden, without_speed

from linnix import cli
from linnix.errors import StoreError
from linnix.runtime import replayanalyst
from linnix.runtime.replay import Timeline, replay
from linnix.runtime.replayanalyst import ReplayAnalyst, text_analyses

FIXTURES = ROOT / "fixtures"
GOLDEN = FIXTURES / "golden"


def run(capsys: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, bytes, bytes]:
    status = cli.main(["replay", *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize(("rules", "trace", "fmt"), [
    ("rules/", "all_scenarios", "txt"), ("rules/", "fork_storm", "jsonl"),
    ("fixtures/events/events.lnx", "events/crash_loop", "jsonl")])
def test_golden_replays_with_analyses(capsysbinary: pytest.CaptureFixture[bytes], rules: str,
                                      trace: str, fmt: str, update_golden: bool) -> None:
    shape = ["--format", "jsonl"] if fmt == "jsonl" else []
    status, out, err = run(capsysbinary, "--rules", rules, "--analyze", *shape,
                           f"fixtures/{trace}.jsonl")
    assert status == 0, err
    name = trace.rsplit("/", 1)[-1]
    compare_golden(without_speed(out), GOLDEN / f"analysis_replay_{name}.{fmt}", update_golden)


def test_the_text_replay_is_the_plain_one_with_the_analyses_after_it(
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _, out, _ = run(capsysbinary, "--rules", "rules/", "--analyze", "fixtures/runaway_tree.jsonl")
    plain = (GOLDEN / "runaway_tree.txt").read_bytes()
    got = without_speed(out)
    assert got.startswith(plain)
    head, analysis = got[len(plain):].split(b"s: ", 1)
    assert head == b"\nanalyses of 1 incident(s), numbered in the order they opened:\n\n77.500"
    # the same facts as the daemon's analyst finds in the store (tests/analysis/test_render.py)
    assert analysis == (GOLDEN / "analysis_runaway_tree.txt").read_bytes()


@pytest.mark.parametrize("trace", ["fork_storm", "trace", "circuit_breaker"])
def test_jsonl_lines_are_the_plain_ones_plus_incident_and_analysis(
        capsysbinary: pytest.CaptureFixture[bytes], trace: str) -> None:
    _, out, _ = run(capsysbinary, "--rules", "rules/", "--analyze", "--format", "jsonl",
                    f"fixtures/{trace}.jsonl")
    lines = [json.loads(line) for line in without_speed(out).splitlines()]
    plain = [json.loads(line) for line in (GOLDEN / f"{trace}.jsonl").read_bytes().splitlines()]
    firing = [line for line in lines if line.get("state") == "firing"]
    assert firing and [line["incident"] for line in firing] == list(range(1, len(firing) + 1))
    for line in firing:
        assert line["analysis"]["incident"] == line["incident"]
        assert line["analysis"]["rule"] == line["rule"]
    assert [{k: v for k, v in line.items() if k not in ("incident", "analysis")}
            for line in lines] == plain


@pytest.mark.parametrize("other", [["--why", "fork_storm"], ["--baseline", "rules/"]])
def test_analyze_goes_with_a_plain_replay_only(capsysbinary: pytest.CaptureFixture[bytes],
                                               other: list[str]) -> None:
    status, out, err = run(capsysbinary, "--rules", "rules/", "--analyze", *other,
                           "fixtures/fork_storm.jsonl")
    assert (status, out) == (2, b"")
    assert err.decode().startswith(f"linnix: --analyze cannot be used with {other[0]}: ")


def test_past_the_limit_incidents_are_counted_not_analysed(tmp_path: Path) -> None:
    plan = shipped_plan()
    analyst = ReplayAnalyst(plan, limit=2)
    kept = analyst._dir
    out = (tmp_path / "out.txt").open("w")
    try:
        replay(str(FIXTURES / "all_scenarios.jsonl"), plan, analyst.sink(Timeline(out)),
               attach=analyst.attach, history=True)
        text_analyses(analyst, out)
    finally:
        analyst.close()
        out.close()
    assert sorted(analyst.analyses) == [1, 2]
    assert analyst.skipped > 0
    text = (tmp_path / "out.txt").read_text()
    assert f"analyses of {2 + analyst.skipped} incident(s)" in text
    assert text.endswith(f"\n{analyst.skipped} incident(s) after the first 2 were not "
                         "analysed\n")
    assert not os.path.exists(kept)  # its store is gone with it


def test_a_replay_that_opens_nothing_says_so(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    _, out, _ = run(capsysbinary, "--rules", "rules/", "--analyze",
                    "fixtures/fork_storm_under_threshold.jsonl")
    assert out.endswith(b"\nno incident opened: nothing to analyse\n")


def test_a_store_that_cannot_be_made_leaves_no_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    def refuse(path: str, clock: object) -> None:
        raise StoreError(f"cannot open the state database {path}: disk full")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(replayanalyst, "Store", refuse)
    status, out, err = run(capsysbinary, "--rules", "rules/", "--analyze",
                           "fixtures/fork_storm.jsonl")
    assert (status, out) == (1, b"")
    assert err.startswith(b"linnix: cannot open the state database ") and b"disk full" in err
    assert list(tmp_path.iterdir()) == []
