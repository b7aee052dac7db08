"""Golden files: ``linnix replay`` output for every fixture trace with the shipped rules.

``fixtures/golden/NAME.jsonl`` holds exactly what ``linnix replay --format
jsonl fixtures/NAME.jsonl`` prints on stdout (alerts, proposals, summary), but
for the summary's replay speed, shown as null; ``fixtures/golden/NAME.txt``
holds the text timeline and summary of two of them, minus the line reporting
the wall-clock replay speed (``support.without_speed``).  After an
intended change, rewrite them with ``pytest tests/test_replay_golden.py
--update-golden`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import ROOT, compare_golden, without_speed

from linnix import cli

FIXTURES = ROOT / "fixtures"
GOLDEN = FIXTURES / "golden"
TRACES = sorted(FIXTURES.glob("*.jsonl"))
TEXT_TRACES = ["fork_storm", "runaway_tree"]


def replay(capsys: pytest.CaptureFixture[bytes], *args: str) -> bytes:
    status = cli.main(["replay", "--rules", "rules/", *args])
    out, err = capsys.readouterr()
    assert status == 0, err.decode()
    return out


def test_there_are_traces() -> None:
    assert len(TRACES) >= 20


@pytest.mark.parametrize("trace", TRACES, ids=lambda p: p.stem)
def test_jsonl_replay_matches_the_golden_file(trace: Path,
                                              capsysbinary: pytest.CaptureFixture[bytes],
                                              monkeypatch: pytest.MonkeyPatch,
                                              update_golden: bool) -> None:
    monkeypatch.chdir(ROOT)
    raw = replay(capsysbinary, "--format", "jsonl", f"fixtures/{trace.name}")
    *items, summary = [json.loads(line) for line in raw.splitlines()]
    assert summary["type"] == "summary"
    speed = summary["replay_events_per_s"]  # the one value the golden file cannot hold
    assert speed is None or speed > 0
    got = without_speed(raw)
    assert summary["invalid_lines_skipped"] == 0
    assert {item["type"] for item in items} <= {"alert", "action"}
    compare_golden(got, GOLDEN / trace.name, update_golden)


@pytest.mark.parametrize("name", TEXT_TRACES)
def test_text_replay_matches_the_golden_file(name: str, capsysbinary: pytest.CaptureFixture[bytes],
                                             monkeypatch: pytest.MonkeyPatch,
                                             update_golden: bool) -> None:
    monkeypatch.chdir(ROOT)
    got = without_speed(replay(capsysbinary, f"fixtures/{name}.jsonl"))
    compare_golden(got, GOLDEN / f"{name}.txt", update_golden)


# golden files of other replay options, with tests of their own (tests/runtime/test_why.py,
# tests/runtime/test_baseline.py), and the analyses of incidents (tests/analysis/test_render.py)
OTHERS = ("why_", "baseline_", "analysis_")


def test_every_golden_file_has_its_trace() -> None:
    names = {p.name for p in TRACES} | {f"{n}.txt" for n in TEXT_TRACES}
    assert {p.name for p in GOLDEN.iterdir() if not p.name.startswith(OTHERS)} == names


def test_golden_files_show_what_the_rule_tests_expect() -> None:
    """A spot check that the golden files are not just any output."""
    lines = (GOLDEN / "fork_storm.jsonl").read_bytes().splitlines()
    items = [json.loads(line) for line in lines]
    assert [(i["ts"], i.get("state") or i["action"], i["pid"]) for i in items[:-1]] == [
        (7.0, "pending", None), (9.0, "firing", None), (9.0, "kill", 2000),
        (43.0, "resolved", None)]
    assert items[-1]["alerts"] == {"fork_storm": {"pending": 1, "firing": 1, "resolved": 1}}


@pytest.mark.parametrize("fmt", ["jsonl", "text"])
def test_replaying_twice_gives_the_same_bytes(fmt: str, capsysbinary: pytest.CaptureFixture[bytes],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    runs = [replay(capsysbinary, "--format", fmt, "fixtures/trace.jsonl") for _ in range(2)]
    runs = [without_speed(r) for r in runs]
    assert runs[0] == runs[1]
    assert runs[0].count(b"FIRING" if fmt == "text" else b'"state":"firing"') >= 7
