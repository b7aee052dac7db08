"""``linnix replay --why`` and ``--baseline`` on the command line: bad input is a clear usage
error (exit 2, one line, no traceback); the outputs themselves have golden files
(tests/runtime/test_why.py, tests/runtime/test_baseline.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import ROOT, write
from support import run_cli as run

TRACE = str(ROOT / "fixtures" / "fork_storm_short_burst.jsonl")


@pytest.fixture
def rules(tmp_path: Path) -> str:
    write(tmp_path, {"r.lnx": "rule storm: forks_per_sec > 10 for 1s\n"
                              "rule busy: cpu_pct > 50\n"
                              "rule off {\n    when cpu_pct > 5\n    enabled false\n}\n"})
    return str(tmp_path / "r.lnx")


@pytest.mark.parametrize(("args", "message"), [
    (["--why", "stomr"], "--why: no rule named 'stomr' in these rules (did you mean storm?)"),
    (["--why", "off"], "--why: rule 'off' is disabled: it is never evaluated"),
    (["--why", "storm", "--pid", "7"],
     "--pid: rule 'storm' is about the whole host, not a process"),
    (["--why", "storm", "--baseline", "x.lnx"],
     "--why and --baseline cannot be used together: explain one rule set, or compare two"),
    (["--pid", "7", "--to", "3s"], "--pid, --to only go with --why RULE"),
    (["--from", "3s"], "--from only go with --why RULE"),
    (["--why", "busy", "--from", "5s", "--to", "2s"], "--from (5s) is after --to (2s)"),
    (["--why", "busy", "--from", "soon"],
     "argument --from: 'soon' is not a duration (e.g. 500ms, 30s, 2m)"),
    (["--why", "busy", "--pid", "0"], "argument --pid: '0' must be at least 1"),
    (["--tolerance", "1s"], "--tolerance only goes with --baseline"),
    (["--baseline", "x.lnx", "--tolerance", "-1s"],
     "argument --tolerance: '-1s': a duration cannot be negative"),
])
def test_bad_input_is_a_usage_error(rules: str, args: list[str], message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "replay", TRACE, "--rules", rules, *args)
    assert (status, out) == (2, "")
    assert err == f"linnix: {message}\nrun 'linnix --help' for usage\n"


def test_baseline_needs_the_new_rules_named(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "replay", TRACE, "--baseline", "rules/")
    assert status == 2
    assert err.startswith("linnix: --baseline needs the new rules too: --rules NEW "
                          "--baseline OLD\n")


def test_a_baseline_with_errors_exits_1_with_its_diagnostics(
        tmp_path: Path, rules: str, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"old.lnx": "rule storm: forks_per_sec >\n"})
    status, out, err = run(capsys, "replay", TRACE, "--rules", rules, "--baseline",
                           str(tmp_path / "old.lnx"))
    assert (status, out) == (1, "")
    assert f"{tmp_path / 'old.lnx'}:2:1: error[E100]: unexpected end of file" in err


def test_a_missing_baseline_directory_is_a_usage_error(
        tmp_path: Path, rules: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    status, _, err = run(capsys, "replay", TRACE, "--rules", rules, "--baseline",
                         str(tmp_path / "empty"))
    assert status == 2
    assert err.startswith(f"linnix: {tmp_path / 'empty'}: no .lnx file found")


def test_why_on_a_bad_trace_exits_1_naming_file_and_line(
        tmp_path: Path, rules: str, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write(tmp_path, {"a.jsonl": b'{"ts":1,"kind":"fork"}\n'}) / "a.jsonl"
    status, _, err = run(capsys, "replay", str(trace), "--rules", rules, "--why", "storm")
    assert status == 1
    assert err == f"linnix: {trace}:1: missing required field 'pid'\n"


def test_why_for_a_pid_never_seen_says_so(rules: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "replay", TRACE, "--rules", rules, "--why", "busy",
                         "--pid", "99999")
    assert status == 0
    assert out == "\nwhy busy: no instance to report in 50 tick(s) (no live process 99999)\n"
