"""``linnix replay`` on the command line (run in-process): exit codes, options, summaries."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support import ROOT, without_speed, write
from support import run_cli as run

from linnix.engine import trace as t
from linnix.engine.core import Output
from linnix.errors import TraceError
from linnix.language.pipeline import build
from linnix.runtime.replay import replay, summary_json

HEADER = b'{"kind":"header","version":1,"ncpu":2}\n'


def lines(*events: t.Event) -> bytes:
    return b"".join(t.encode_event(ev) + b"\n" for ev in events)


STORM = lines(t.Proc(ts=0.0, pid=1, ppid=0, comm="init"),
              *(t.Fork(ts=1.0 + i * 0.05, pid=100 + i, ppid=1, comm="init") for i in range(15)),
              t.Lost(ts=5.0, count=0))


def jsonl(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def rules(tmp_path: Path) -> str:
    write(tmp_path, {"r.lnx": "rule storm: forks_per_sec > 10\n"
                              "rule busy: cpu_pct > 50\n"})
    return str(tmp_path / "r.lnx")


# ---- exit codes ------------------------------------------------------------------------------

def test_ok(tmp_path: Path, rules: str, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write(tmp_path, {"a.jsonl": HEADER + STORM}) / "a.jsonl"
    status, out, err = run(capsys, "replay", "--rules", rules, str(trace))
    assert status == 0 and err == ""
    timeline = out.splitlines()
    assert timeline[0] == (
        "     1.500s  FIRING    storm              warning  host                   "
        "forks_per_sec=11")
    assert timeline[1] == (
        "     2.500s  RESOLVED  storm              warning  host                   "
        "forks_per_sec=4")
    # the two rates, named apart: events per second of trace, and the replay's speed
    assert timeline[3] == "17 events over 5s of trace (trace rate 3.4 events/s), 11 ticks"
    assert re.fullmatch(r"replayed in \d+\.\d\ds \(replay speed [\d,]+ events/s\)",
                        timeline[4]), timeline[4]
    assert timeline[5:] == ["  storm                1 firing, 0 pending, 1 resolved"]


def test_no_alerts(tmp_path: Path, rules: str, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write(tmp_path, {"a.jsonl": lines(t.Lost(ts=0.0, count=0))}) / "a.jsonl"
    status, out, _ = run(capsys, "replay", "--rules", rules, str(trace))
    assert status == 0
    assert out.splitlines()[:2] == ["(no alerts)", ""]
    assert out.splitlines()[-1] == "no rule fired"


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_a_bad_trace_exits_1_naming_file_and_line(tmp_path: Path, rules: str, fmt: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    trace = write(tmp_path, {"a.jsonl": HEADER + STORM + b'{"ts":9,"kind":"fork"}\n'}) / "a.jsonl"
    status, _, err = run(capsys, "replay", "--format", fmt, "--rules", rules, str(trace))
    assert status == 1
    assert err == f"linnix: {trace}:19: missing required field 'pid'\n"


def test_a_missing_trace_exits_1(tmp_path: Path, rules: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "replay", "--rules", rules, str(tmp_path / "nope.jsonl"))
    assert (status, out) == (1, "")
    assert err == f"linnix: {tmp_path / 'nope.jsonl'}: cannot open: No such file or directory\n"


def test_an_empty_trace_says_so(tmp_path: Path, rules: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    trace = write(tmp_path, {"empty.jsonl": b""})
    status, out, _ = run(capsys, "replay", "--rules", rules, str(trace / "empty.jsonl"))
    assert status == 0
    assert out.startswith("(no alerts)\n\n0 events over 0s of trace, 0 ticks\nreplayed in ")
    assert out.endswith("\nthe trace holds no events: nothing was evaluated\n")


def test_without_rules_and_without_a_rules_directory_the_shipped_rules_replay(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    trace = str(ROOT / "fixtures" / "fork_storm.jsonl")
    status, shipped, _ = run(capsys, "replay", "--format", "jsonl", "--rules",
                             str(ROOT / "rules"), trace)
    assert status == 0 and "fork_storm" in shipped
    monkeypatch.chdir(tmp_path)  # no rules/ here
    status, out, _ = run(capsys, "replay", "--format", "jsonl", trace)
    assert status == 0
    assert without_speed(out.encode()) == without_speed(shipped.encode())


def test_without_rules_a_rules_directory_here_is_used(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "quiet.lnx").write_text(
        'rule quiet {\n    when procs > 1000000\n    message "never"\n}\n')
    monkeypatch.chdir(tmp_path)
    status, out, _ = run(capsys, "replay", str(ROOT / "fixtures" / "fork_storm.jsonl"))
    assert status == 0
    assert out.startswith("(no alerts)\n")


def test_a_corrupt_gz_trace_exits_1(tmp_path: Path, rules: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    import gzip

    packed = gzip.compress(STORM * 50, mtime=0)
    trace = write(tmp_path, {"a.jsonl.gz": packed[:10] + b"\x00" * 40 + packed[50:]})
    status, _, err = run(capsys, "replay", "--rules", rules, str(trace / "a.jsonl.gz"))
    assert status == 1
    assert err.startswith(f"linnix: {trace / 'a.jsonl.gz'}: cannot read: ")
    assert "internal error" not in err


def test_bad_rules_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"r.lnx": "rule r: cpu_pctt > 1\n", "a.jsonl": STORM})
    status, out, err = run(capsys, "replay", "--rules", str(tmp_path / "r.lnx"),
                           str(tmp_path / "a.jsonl"))
    assert (status, out) == (1, "")
    assert "error[E201]: unknown name 'cpu_pctt' (did you mean 'cpu_pct'?)" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--tick", "0"], "argument --tick: '0' must be longer than zero"),
    (["--tick", "0ms"], "argument --tick: '0ms' must be longer than zero"),
    (["--tick", "abc"], "argument --tick: 'abc' is not a duration (e.g. 500ms, 30s, 2m)"),
    (["--until", "5x"], "argument --until: '5x' is not a duration (units: ms, s, m, h)"),
    (["--format", "xml"], "argument --format: invalid choice: 'xml' (choose from 'text', "
                          "'jsonl')"),
])
def test_usage_errors_exit_2(args: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "replay", *args, "x.jsonl")
    assert (status, out) == (2, "")
    assert err == f"linnix: {message}\nrun 'linnix --help' for usage\n"


def test_the_trace_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "replay")
    assert status == 2
    assert err.startswith("linnix: the following arguments are required: TRACE\n")


# ---- options --------------------------------------------------------------------------------

def test_until_stops_the_replay(monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    status, out, _ = run(capsys, "replay", "--format", "jsonl", "--rules", "rules/",
                         "--until", "10s", "fixtures/fork_storm.jsonl")
    assert status == 0
    *items, summary = jsonl(out)
    assert [(i["ts"], i.get("state", i["type"])) for i in items] == [
        (7.0, "pending"), (9.0, "firing"), (9.0, "action")]
    assert (summary["until"], summary["trace_seconds"], summary["ticks"]) == (10.0, 10.0, 21)
    assert summary["alerts"] == {"fork_storm": {"pending": 1, "firing": 1, "resolved": 0}}
    full = jsonl(run(capsys, "replay", "--format", "jsonl", "--rules", "rules/",
                     "fixtures/fork_storm.jsonl")[1])
    assert summary["events"] < full[-1]["events"]
    assert full[-1]["until"] is None


def test_rules_may_be_given_more_than_once(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    status, out, _ = run(capsys, "replay", "--format", "jsonl", "--rules",
                         "rules/fork_storm.lnx", "--rules", "rules/fd_exhaustion.lnx",
                         "fixtures/trace.jsonl")
    assert status == 0
    summary = jsonl(out)[-1]
    assert sorted(summary["alerts"]) == ["fd_exhaustion", "fork_storm"]


def test_the_default_rules_are_rules_dir(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    out = run(capsys, "replay", "--format", "jsonl", "fixtures/trace.jsonl")[1]
    assert len(jsonl(out)[-1]["alerts"]) == 7


def test_tick_sets_the_evaluation_interval(tmp_path: Path, rules: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    trace = write(tmp_path, {"a.jsonl": STORM}) / "a.jsonl"
    out = run(capsys, "replay", "--format", "jsonl", "--tick", "2s", "--rules", rules,
              str(trace))[1]
    items = jsonl(out)
    assert [(i["ts"], i["state"]) for i in items[:-1]] == [(2.0, "firing"), (4.0, "resolved")]
    assert items[-1]["ticks"] == 3


def test_skip_invalid_counts_in_both_summaries(tmp_path: Path, rules: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    good = STORM.splitlines(keepends=True)
    bad = (HEADER + good[0] + b"{not json}\n" + b"".join(good[1:])
           + b'{"ts":9,"kind":"nope"}\n' + lines(t.Sample(ts=9.0, pid=4242, cpu_pct=1.0)))
    trace = write(tmp_path, {"a.jsonl": bad}) / "a.jsonl"
    status, out, err = run(capsys, "replay", "--skip-invalid", "--format", "jsonl",
                           "--rules", rules, str(trace))
    assert status == 0
    summary = jsonl(out)[-1]
    assert (summary["invalid_lines_skipped"], summary["orphan_events"], summary["events"]) == (
        2, 1, 18)
    assert f"2 invalid line(s) skipped; first: {trace}:3: invalid JSON: " in err
    assert "1 event(s) for pids never announced (attached to pid 1)" in err
    status, out, _ = run(capsys, "replay", "--skip-invalid", "--rules", rules, str(trace))
    assert status == 0
    assert f"\n2 invalid line(s) skipped; first: {trace}:3: invalid JSON: " in out
    assert run(capsys, "replay", "--rules", rules, str(trace))[0] == 1


def test_summary_json_fields(tmp_path: Path, rules: str) -> None:
    trace = write(tmp_path, {"a.jsonl": STORM}) / "a.jsonl"
    plan = build([rules]).require_plan()
    seen: list[Output] = []
    result = replay(str(trace), plan, seen.extend)
    assert len(seen) == 2
    got = summary_json(result)
    speed = got.pop("replay_events_per_s")  # events per second of wall-clock time
    assert speed is None or speed == round(17 / result.wall_s, 1)
    assert got == {
        "type": "summary", "events": 17, "ticks": 11, "trace_seconds": 5.0,
        "trace_events_per_s": 3.4, "alerts": {"storm": {"pending": 0, "firing": 1, "resolved": 1}},
        "actions_proposed": 0, "invalid_lines_skipped": 0, "orphan_events": 0,
        "rule_errors": {}, "until": None}


def test_replay_raises_trace_errors(tmp_path: Path, rules: str) -> None:
    trace = write(tmp_path, {"a.jsonl": STORM + b"[]\n"}) / "a.jsonl"
    plan = build([rules]).require_plan()
    with pytest.raises(TraceError, match=r"a\.jsonl:18: expected a JSON object, got array$"):
        replay(str(trace), plan, lambda batch: None)


def test_the_header_reaches_the_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"r.lnx": "rule r: ncpu == 2\n",
                     "a.jsonl": HEADER + lines(t.Lost(ts=0.0, count=0), t.Lost(ts=1.0, count=0))})
    out = run(capsys, "replay", "--format", "jsonl", "--rules", str(tmp_path / "r.lnx"),
              str(tmp_path / "a.jsonl"))[1]
    # applied before the first tick, though no output had been produced yet
    assert [(i["ts"], i["state"]) for i in jsonl(out)[:-1]] == [(0.0, "firing")]


# ---- times to the microsecond ---------------------------------------------------------------

# With a 100ms tick from 0.1s, the third tick falls at 0.1 + 2 * 0.1 = 0.30000000000000004 (and
# the seventh at 0.7000000000000001): every output must print them as 0.3 and 0.7.
HOT = lines(t.Proc(ts=0.1, pid=1, ppid=0, comm="init", start=0.0),
            t.Proc(ts=0.1, pid=50, ppid=1, comm="hog", start=0.1),
            t.Sample(ts=0.25, pid=50, cpu_pct=90.0),
            t.Sample(ts=1.0, pid=50, cpu_pct=20.0),
            t.Lost(ts=1.25, count=0))
HOT_RULES = {"hot.lnx": "rule hot: cpu_pct > 50 for 400ms\n",
             "slow.lnx": "rule hot: cpu_pct > 50 for 600ms\n"}


def test_every_time_of_a_jsonl_replay_is_rounded_to_the_microsecond(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = write(tmp_path, {"hot.jsonl": HOT, **HOT_RULES})
    status, out, _ = run(capsys, "replay", "--format", "jsonl", "--tick", "100ms",
                         "--rules", str(where / "hot.lnx"), str(where / "hot.jsonl"))
    assert status == 0
    assert [(i["state"], i["ts"], i["start"]) for i in jsonl(out)[:-1]] == [
        ("pending", 0.3, 0.1), ("firing", 0.7, 0.1), ("resolved", 1.0, 0.1)]
    assert '"ts":0.3,' in out and "0000" not in out and "9999" not in out


def test_every_time_of_why_and_baseline_is_rounded_to_the_microsecond(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = write(tmp_path, {"hot.jsonl": HOT, **HOT_RULES})
    trace, hot = str(where / "hot.jsonl"), str(where / "hot.lnx")
    for fmt in ("jsonl", "text"):
        status, out, _ = run(capsys, "replay", "--format", fmt, "--tick", "100ms", "--rules",
                             hot, trace, "--why", "hot", "--to", "0.8s")
        assert status == 0
        assert "0000" not in out and "9999" not in out, out
    records = jsonl(run(capsys, "replay", "--format", "jsonl", "--tick", "100ms", "--rules",
                        hot, trace, "--why", "hot", "--to", "0.8s")[1])
    assert [r["ts"] for r in records[:-1]] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert records[-2]["since"] == 0.7
    status, out, _ = run(capsys, "replay", "--format", "jsonl", "--tick", "100ms", "--rules",
                         hot, "--baseline", str(where / "slow.lnx"), trace, "--tolerance", "0s")
    assert status == 1
    moved = [r for r in jsonl(out) if r["type"] == "moved"]
    assert [(r["old_ts"], r["new_ts"], r["delta_s"]) for r in moved] == [(0.9, 0.7, -0.2)]
