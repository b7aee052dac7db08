"""``linnix test``: judging expectations, the precise failure reasons, output and JUnit XML."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from engine_support import no_hang
from support import RULES, write

from linnix import cli
from linnix.engine import trace as t
from linnix.language.pipeline import build
from linnix.runtime.testing import run_test


def storm_trace() -> bytes:
    """A forker (pid 50) creating 20 children a second from 1.0 to 4.0; it is busy at 2.0.

    forks_per_sec is 11 at the tick at 1.5, 20 at 2.0 .. 4.0 and 9 at 4.5.  The host
    CPU alternates 90% / 10% every second from 0 to 11.
    """
    events: list[t.Event] = [t.Proc(ts=0.0, pid=1, ppid=0, comm="init"),
                             t.Proc(ts=0.0, pid=50, ppid=1, comm="forker")]
    events += [t.System(ts=float(s), cpu_pct=90.0 if s % 2 == 0 else 10.0) for s in range(12)]
    events += [t.Fork(ts=round(1.0 + i * 0.05, 3), pid=100 + i, ppid=50, comm="forker")
               for i in range(60)]
    events.append(t.Sample(ts=2.0, pid=50, cpu_pct=90.0))
    events.sort(key=lambda e: e.ts)
    return b'{"kind":"header","version":1}\n' + b"".join(
        t.encode_event(e) + b"\n" for e in events)


RULE_TEXT = """
rule storm {
    when forks_per_sec > 10 for 1s
    severity critical
    action kill(target = top(child_forks_per_sec))
}
rule busy: cpu_pct > 50
rule quiet: fds > 100
rule flap: host_cpu_pct > 50
"""

def project(tmp_path: Path, tests: str, extra: dict[str, str] | None = None) -> Path:
    write(tmp_path, {"storm.jsonl": storm_trace(), "rules.lnx": RULE_TEXT + tests,
                     **(extra or {})})
    return tmp_path / "rules.lnx"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["test", *args])
    out, err = capsys.readouterr()
    return status, out, err


GOOD_TEST = """
test "everything as expected" {
    trace "storm.jsonl"
    expect storm pending between 1.5s and 1.5s
    expect storm firing between 2s and 2.5s
    expect storm resolved between 4.5s and 5s
    expect storm fires 1 times
    expect action kill for pid 50
    expect busy firing for pid 50
    expect quiet never
    expect quiet fires 0 times
    expect flap fires 6 times
}
"""


def test_a_passing_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path, GOOD_TEST)
    status, out, err = run(capsys, str(path))
    assert (status, err) == (0, "")
    assert out == f"PASS  everything as expected  ({path}:11)\n\n1 passed, 0 failed\n"


@pytest.mark.parametrize(("expect", "reason"), [
    ("expect storm firing between 1s and 2s",
     "expected storm firing between 1s and 2s; first firing at 2.5s, for the host"),
    ("expect quiet firing between 1s and 2s",
     "expected quiet firing between 1s and 2s; it was never firing"),
    ("expect busy resolved between 0s and 1s",
     "expected busy resolved between 0s and 1s; it was never resolved"),
    ("expect busy never",
     "expected busy never to fire; it fired 1 time(s), first at 2s, pid 50 (forker)"),
    ("expect storm fires 2 times", "expected storm to fire 2 time(s); it fired 1 (at 2.5s)"),
    ("expect quiet fires 1 times", "expected quiet to fire 1 time(s); it fired 0"),
    ("expect flap fires 5 times",
     "expected flap to fire 5 time(s); it fired 6 (at 0s, 2s, 4s, 6s, 8s ...)"),
    ("expect busy firing for pid 51",
     "expected busy firing for pid 51; it was firing only for pid 50"),
    ("expect quiet firing for pid 51", "expected quiet firing for pid 51; it was never firing"),
    ("expect action kill for pid 51",
     "expected action kill for pid 51; it was proposed for pid 50"),
    ("expect action renice for pid 50",
     "expected action renice for pid 50; no renice was proposed"),
])
def test_failure_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str], expect: str,
                         reason: str) -> None:
    path = project(tmp_path, f'test "t" {{\n    trace "storm.jsonl"\n    {expect}\n}}\n')
    status, out, _ = run(capsys, str(path))
    assert status == 1
    assert out == f"FAIL  t  ({path}:10)\n      {reason}\n\n0 passed, 1 failed\n"


def test_every_failed_expectation_is_reported(tmp_path: Path) -> None:
    path = project(tmp_path, 'test "t" {\n trace "storm.jsonl"\n expect busy never\n'
                             " expect storm fires 1 times\n expect quiet fires 3 times\n}\n")
    result = build([str(path)])
    (test,) = result.tests
    outcome = run_test(test, result.require_plan())
    assert not outcome.passed and outcome.error is None
    assert outcome.failures == [
        "expected busy never to fire; it fired 1 time(s), first at 2s, pid 50 (forker)",
        "expected quiet to fire 3 time(s); it fired 0"]


def test_the_test_tick_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path, 'test "t" {\n trace "storm.jsonl"\n tick 1s\n'
                             " expect storm pending between 2s and 2s\n"
                             " expect storm firing between 3s and 3s\n}\n")
    assert run(capsys, str(path))[0] == 0


def test_a_test_sees_only_the_rules_of_its_file_and_includes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = 'rule lonely: fds > 100\ntest "t" {\n trace "storm.jsonl"\n' \
            " expect lonely never\n expect action kill for pid 50\n}\n"
    path = project(tmp_path, "", {"other.lnx": other})
    status, out, _ = run(capsys, str(path), str(tmp_path / "other.lnx"))
    assert status == 1
    assert "      expected action kill for pid 50; no kill was proposed\n" in out


def test_a_bad_trace_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path, 'test "t" {\n trace "bad.jsonl"\n expect quiet never\n}\n',
                   {"bad.jsonl": '{"ts":0,"kind":"lost","count":1}\n{"ts":1}\n'})
    status, out, _ = run(capsys, str(path))
    assert status == 1
    assert out == (f"FAIL  t  ({path}:10)\n"
                   f"      error: {tmp_path / 'bad.jsonl'}:2: missing required field 'kind'\n"
                   "\n0 passed, 1 failed\n")


@pytest.mark.parametrize("trace", ["", '{"kind":"header","version":1}\n\n'],
                         ids=["empty", "header-only"])
def test_a_trace_without_events_fails_even_never(tmp_path: Path, trace: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path, 'test "t" {\n trace "none.jsonl"\n expect quiet never\n}\n',
                   {"none.jsonl": trace})
    status, out, _ = run(capsys, str(path))
    assert status == 1
    assert out == (f"FAIL  t  ({path}:10)\n"
                   f"      error: {tmp_path / 'none.jsonl'}: the trace holds no event\n"
                   "\n0 passed, 1 failed\n")


def test_a_trace_gone_since_the_check_fails(tmp_path: Path) -> None:
    path = project(tmp_path, 'test "t" {\n trace "gone.jsonl"\n expect quiet never\n}\n',
                   {"gone.jsonl": storm_trace()})
    result = build([str(path)])
    (tmp_path / "gone.jsonl").unlink()
    outcome = run_test(result.tests[0], result.require_plan())
    assert not outcome.passed
    assert outcome.error == f"{tmp_path / 'gone.jsonl'}: cannot open: No such file or directory"


def test_a_deeply_nested_trace_line_is_an_error(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    nested = '{"ts":1,"kind":"lost","count":1,"x":' + "[" * 100_000 + "]" * 100_000 + "}"
    path = project(tmp_path, 'test "t" {\n trace "deep.jsonl"\n expect quiet never\n}\n',
                   {"deep.jsonl": '{"ts":0,"kind":"lost","count":1}\n' + nested + "\n"})
    status, out, _ = run(capsys, str(path))
    assert status == 1
    assert out == (f"FAIL  t  ({path}:10)\n"
                   f"      error: {tmp_path / 'deep.jsonl'}:2: invalid JSON: nested too deeply\n"
                   "\n0 passed, 1 failed\n")


def test_a_trace_with_a_gap_of_ten_million_seconds(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    trace = ('{"ts":0,"kind":"proc","pid":1,"ppid":0,"comm":"init","start":0}\n'
             '{"ts":1,"kind":"sample","pid":1,"cpu_pct":90}\n'
             '{"ts":1e7,"kind":"sample","pid":1,"cpu_pct":10}\n')
    path = project(tmp_path, 'test "t" {\n trace "gap.jsonl"\n expect busy fires 1 times\n'
                   ' expect busy resolved between 9999999s and 10000000s\n}\n',
                   {"gap.jsonl": trace})
    with no_hang(30):
        status, out, _ = run(capsys, str(path))
    assert (status, out.splitlines()[-1]) == (0, "1 passed, 0 failed")


def test_no_test_blocks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path, "")
    assert run(capsys, str(path)) == (0, f"no test blocks found in {path}\n", "")


def test_rule_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"r.lnx": "rule r: cpu_pct >\n"})
    status, out, err = run(capsys, str(tmp_path / "r.lnx"))
    assert (status, out) == (1, "")
    assert "error[E1" in err


def test_junit_xml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tests = ('test "good" {\n trace "storm.jsonl"\n expect quiet never\n}\n'
             'test "bad" {\n trace "storm.jsonl"\n expect busy never\n'
             " expect quiet fires 1 times\n}\n"
             'test "broken" {\n trace "bad.jsonl"\n expect quiet never\n}\n')
    path = project(tmp_path, tests, {"bad.jsonl": "[]\n"})
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    status, out, _ = run(capsys, str(path), "--junit", str(junit))
    assert status == 1
    assert out.endswith("\n1 passed, 2 failed\n")
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root
    assert suite.attrib["name"] == str(path)
    assert {k: suite.attrib[k] for k in ("tests", "failures", "errors")} == {
        "tests": "3", "failures": "1", "errors": "1"}
    cases = {c.attrib["name"]: c for c in suite.iter("testcase")}
    assert list(cases) == ["good", "bad", "broken"]
    assert list(cases["good"]) == []
    (failure,) = cases["bad"]  # one element per testcase, every failed expectation in it
    reasons = ["expected busy never to fire; it fired 1 time(s), first at 2s, pid 50 (forker)",
               "expected quiet to fire 1 time(s); it fired 0"]
    assert (failure.tag, failure.attrib["type"]) == ("failure", "2 failed expectations")
    assert failure.attrib["message"] == "; ".join(reasons)
    assert failure.text == "\n".join(reasons)
    (err,) = cases["broken"]
    assert err.tag == "error"
    assert err.attrib["message"] == f"{tmp_path / 'bad.jsonl'}:1: expected a JSON object, got array"
    assert all(float(c.attrib["time"]) >= 0 for c in cases.values())


def test_junit_to_an_unwritable_place_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path, 'test "t" {\n trace "storm.jsonl"\n expect quiet never\n}\n')
    status, _, err = run(capsys, str(path), "--junit", str(tmp_path / "no" / "dir.xml"))
    assert status == 2
    assert err.startswith(f"linnix: cannot write {tmp_path / 'no' / 'dir.xml'}: ")


def test_the_shipped_rule_tests_pass(capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    status, out, _ = run(capsys, str(RULES), "--junit", str(junit))
    assert status == 0
    blocks = sum(f.read_text().count('\ntest "') for f in Path(RULES).glob("*.lnx"))
    assert blocks >= 30
    assert out.endswith(f"\n{blocks} passed, 0 failed\n")
    assert out.count("PASS  ") == blocks
    suites = ET.parse(junit).getroot()
    assert sum(int(s.attrib["tests"]) for s in suites) == blocks
    assert all(s.attrib["failures"] == s.attrib["errors"] == "0" for s in suites)
