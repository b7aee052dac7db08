"""``linnix replay`` of the counting fixtures (fixtures/counting/): counts and event counters.

* ``count(comm == "sshd") == 0 for 30s`` goes pending when sshd exits, fires
  30 s later and resolves when sshd is started again;
* ``execs(exe, 1m) > 20`` fires on a binary restarted every 2 s and never on
  a steady service nor on one started every 10 s;
* ``crashes(exe, 5m) >= 3`` fires on the fourth start of a binary that died of
  SIGSEGV three times, beside a host value too, and never on ``grep`` exiting
  1 nor ``yes`` killed by SIGPIPE; function calls in its message are filled.

The traces are written by fixtures/counting/generate.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_support import no_hang
from support import ROOT

from linnix import cli

HERE = ROOT / "fixtures" / "counting"


def replay(capsys: pytest.CaptureFixture[str], trace: str) -> list[dict[str, Any]]:
    with no_hang(60):
        status = cli.main(["replay", "--rules", str(HERE / "counting.lnx"), "--format",
                           "jsonl", str(HERE / trace)])
    out, err = capsys.readouterr()
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def transitions(rows: list[dict[str, Any]], rule: str) -> list[tuple[Any, ...]]:
    return [(r["ts"], r["state"], r["pid"], r["reason"]) for r in rows
            if r["type"] == "alert" and r["rule"] == rule]


def test_sshd_missing_fires_after_sshd_exits_and_resolves_when_it_returns(
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = replay(capsys, "sshd_gone.jsonl")
    assert transitions(rows, "sshd_missing") == [
        (10.0, "pending", None, None),  # the exit at 10 s
        (40.0, "firing", None, None),  # 30 s later
        (70.0, "resolved", None, "cleared"),  # sshd started again at 70 s
    ]
    firing = next(r for r in rows if r["type"] == "alert" and r["state"] == "firing")
    assert firing["values"] == {'count(comm == "sshd")': 0}


def test_a_restart_loop_fires_and_a_steady_service_does_not(
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = replay(capsys, "restart_loop.jsonl")
    fired = [(ts, pid) for ts, state, pid, _ in transitions(rows, "restart_loop")
             if state == "firing"]
    # flaky starts at 1, 3, 5, ...: its 21st exec in a minute is at 41 s (pid 1020), and
    # each later instance starts with more than 20 in the last minute
    assert fired == [(41.0 + 2 * i, 1020 + i) for i in range(10)]
    alerted = {r["comm"] for r in rows if r["type"] == "alert" and r["rule"] == "restart_loop"}
    assert alerted == {"flaky"}  # never steady (one exec), never backup (6 a minute)
    first = next(r for r in rows if r["type"] == "alert" and r["rule"] == "restart_loop")
    assert first["values"] == {"execs(exe, 60s)": 21}
    assert first["message"] == "/usr/bin/flaky started 21 times in a minute"


def test_a_crash_loop_fires_and_failures_or_sigpipe_do_not(
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = replay(capsys, "crash_loop.jsonl")
    # crasher starts at 5, 15, 25, 35 and dies of SIGSEGV 2 s later: its fourth instance
    # starts with three crashes in the window
    expected = [(35.0, "firing", 403, None), (37.0, "resolved", 403, "exited")]
    assert transitions(rows, "crash_loop") == expected
    assert transitions(rows, "crash_loop_on_a_busy_host") == expected
    fired = next(r for r in rows if r["type"] == "alert" and r["rule"] == "crash_loop")
    assert fired["message"] == ("/opt/app/crasher crashed 3 times in 5 minutes; "
                                "1 running")
    assert fired["values"] == {"crashes(exe, 300s)": 3}
    # grep (exit 1) and yes (SIGPIPE) exited four times each: exits, not crashes
    exits = {(r["comm"], r["ts"]) for r in rows
             if r["type"] == "alert" and r["rule"] == "repeated_exits"}
    assert exits == {("grep", 50.0), ("yes", 50.0)}
