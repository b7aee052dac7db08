"""``linnix replay`` given hostile traces: a clear error naming the line, or skipped and counted.

Each case is run through the command itself (``cli.main``), so the error a
person sees is the one checked, and under :func:`no_hang`, so that a trace
that would keep the engine busy for ever fails the test instead of stalling
the suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_support import no_hang
from support import RULES

from linnix import cli

PROC = b'{"ts":0.0,"kind":"proc","pid":1,"ppid":0,"comm":"init","start":0.0}'
LOST = b'{"ts":2.0,"kind":"lost","count":0}'


def replay(tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[bytes],
           *args: str, rules: Path = RULES) -> tuple[int, str, str, Path]:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with no_hang(30):
        status = cli.main(["replay", "--rules", str(rules), "--format", "jsonl", *args,
                           str(path)])
    out, err = capsys.readouterr()
    return status, out, err, path


def summary(out: str) -> dict[str, object]:
    last: dict[str, object] = json.loads(out.splitlines()[-1])
    assert last["type"] == "summary"
    return last


def test_a_time_beyond_the_range_is_an_error_not_a_hang(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [PROC, b'{"ts":1e300,"kind":"sample","pid":1,"cpu_pct":5.0}', LOST]
    status, _, err, path = replay(tmp_path, capsys, lines)
    assert status == 1
    assert err == f"linnix: {path}:2: field 'ts': expected float <= 10000000000.0\n"


def test_a_time_beyond_the_range_is_skipped_and_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [PROC, b'{"ts":1e300,"kind":"sample","pid":1,"cpu_pct":5.0}',
             b'{"ts":2.0,"kind":"sample","pid":1,"cpu_pct":5.0}']
    status, out, err, path = replay(tmp_path, capsys, lines, "--skip-invalid")
    assert status == 0, err
    s = summary(out)
    assert (s["events"], s["invalid_lines_skipped"], s["trace_seconds"]) == (2, 1, 2.0)
    assert f"first: {path}:2: field 'ts'" in err


NESTED = b'{"ts":1.0,"kind":"lost","count":1,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def test_deeply_nested_json_is_an_error_naming_the_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err, path = replay(tmp_path, capsys, [PROC, NESTED, LOST])
    assert status == 1
    assert err == f"linnix: {path}:2: invalid JSON: nested too deeply\n"


def test_deeply_nested_json_is_skipped_and_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err, path = replay(tmp_path, capsys, [PROC, b"[" * 100_000, NESTED, LOST],
                                    "--skip-invalid")
    assert status == 0, err
    s = summary(out)
    assert (s["events"], s["invalid_lines_skipped"]) == (2, 2)
    assert f"first: {path}:2: invalid JSON: nested too deeply" in err


def test_a_gap_of_ten_million_seconds_replays_at_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [PROC, b'{"ts":0.0,"kind":"proc","pid":300,"ppid":1,"comm":"spin","start":0.0}',
             b'{"ts":1.0,"kind":"sample","pid":300,"cpu_pct":95.0}',
             b'{"ts":1e7,"kind":"sample","pid":300,"cpu_pct":1.0}']
    rules = tmp_path / "spike.lnx"
    rules.write_text("rule cpu_spike: cpu_pct > 50 for 5s\n")
    status, out, err, _ = replay(tmp_path, capsys, lines, rules=rules)  # under no_hang
    assert status == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["ts"], r["rule"], r["state"]) for r in rows[:-1]] == [
        (1.0, "cpu_spike", "pending"), (6.0, "cpu_spike", "firing"),
        (1e7, "cpu_spike", "resolved")]
    s = summary(out)
    assert (s["events"], s["ticks"], s["trace_seconds"]) == (4, 2 * 10**7 + 1, 1e7)
