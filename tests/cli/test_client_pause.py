"""linnix actions pause / resume / status against a served API, the notice of
``linnix actions`` while paused, and the stream's line for a pause."""

from __future__ import annotations

import pytest
from api_support import PID_A
from cli_support import Daemon
from live_support import free_port

from linnix.api.client import SseEvent
from linnix.cli.views import event_line, local_time


async def test_pause_status_resume(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = await daemon.run(capsys, "actions", "pause", "--reason", "db failover",
                                        "--for", "30m")
    assert (status, err) == (0, "")
    pause = daemon.env.manager.paused
    assert pause is not None and pause.until == pause.since + 1800.0
    assert (pause.by, pause.reason) == ("admin", "db failover")
    expected = (f"actions: paused: nothing executes\n"
                f"by:      admin\n"
                f"since:   {local_time(pause.since)}\n"
                f"until:   {local_time(pause.until)}\n"
                f"reason:  db failover\n"
                "\nresume with: linnix actions resume\n")
    assert out == expected
    status, out, err = await daemon.run(capsys, "actions", "status")
    assert (status, out, err) == (0, expected, "")
    status, out, err = await daemon.run(capsys, "actions", "resume", "--reason", "fixed")
    assert (status, err) == (0, "")
    assert out == ("actions:       active (resumed)\n"
                   "was paused by: admin\n"
                   f"since:         {local_time(pause.since)}\n")
    status, out, _ = await daemon.run(capsys, "actions", "status")
    assert out == "actions: active\n"
    paused, resumed = (r for r in reversed(daemon.env.store.audit_log())
                       if r["event"].startswith("actions."))
    assert (paused["actor"], paused["detail"]["note"], paused["detail"]["for_s"]) == (
        "admin", "tester", 1800.0)
    assert (resumed["actor"], resumed["detail"]["reason"], resumed["detail"]["note"]) == (
        "admin", "fixed", "tester")


async def test_the_json_of_the_switch(daemon: Daemon,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = await daemon.run(capsys, "actions", "pause", "--json")
    assert status == 0
    pause = daemon.env.manager.paused
    assert pause is not None
    assert out == ('{\n  "actions": "paused",\n  "paused": {\n    "by": "admin",\n'
                   f'    "reason": null,\n    "since": {pause.since},\n'
                   '    "until": null\n  }\n}\n')
    status, out, _ = await daemon.run(capsys, "actions", "status", "--json")
    assert '"actions": "paused"' in out and '"status"' not in out


async def test_the_list_says_that_actions_are_paused(daemon: Daemon,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    await daemon.env.propose(PID_A)
    status, out, err = await daemon.run(capsys, "actions")
    assert (status, err) == (0, "")
    table = out
    await daemon.run(capsys, "actions", "pause", "--reason", "window")
    pause = daemon.env.manager.paused
    assert pause is not None
    status, out, err = await daemon.run(capsys, "actions")
    assert (status, out) == (0, table)  # the table is the same: the notice is beside it
    assert err == (f"linnix: every action is paused by admin since {local_time(pause.since)} "
                   "until resumed (window): nothing executes; 'linnix actions resume' "
                   "resumes them\n")
    status, _, err = await daemon.run(capsys, "actions", "list", "--json")
    assert (status, err) == (0, "")


async def test_approving_while_paused_says_why_not(daemon: Daemon,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    action = await daemon.env.propose(PID_A)
    await daemon.run(capsys, "actions", "pause")
    status, out, err = await daemon.run(capsys, "actions", "approve", str(action))
    assert (status, out) == (1, "")
    assert err.startswith(f"linnix: action {action} cannot be approved: every action is "
                          "paused by admin since ")
    assert err.endswith("; resume them first (POST /actions/resume)\n")


async def test_resuming_what_is_not_paused_fails(daemon: Daemon,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = await daemon.run(capsys, "actions", "resume")
    assert (status, out, err) == (
        1, "", "linnix: actions are not paused: there is nothing to resume\n")


@pytest.mark.parametrize(("length", "why"), [
    ("soon", "argument --for: 'soon' is not a duration (e.g. 500ms, 30s, 2m)"),
    ("0", "argument --for: '0' must be longer than zero"),
    ("31d", "argument --for: '31d' is longer than 30 days; leave --for out to pause until "
            "resumed"),
])
async def test_a_bad_duration_is_a_usage_error(daemon: Daemon,
                                               capsys: pytest.CaptureFixture[str],
                                               length: str, why: str) -> None:
    status, out, err = await daemon.run(capsys, "actions", "pause", "--for", length)
    assert (status, out) == (2, "")
    assert err == f"linnix: {why}\nrun 'linnix --help' for usage\n"
    assert daemon.env.manager.paused is None


async def test_a_reader_cannot_pause(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = await daemon.run(capsys, "actions", "pause", "--token-file",
                                        daemon.token_file("rita"))
    assert (status, out) == (1, "")
    assert err == ("linnix: the token 'rita' has the role reader; POST /actions/pause needs "
                   "the role approver or admin\n")
    status, _, _ = await daemon.run(capsys, "actions", "pause", "--token-file",
                                    daemon.token_file("alice"))
    assert status == 0
    assert daemon.env.manager.paused is not None and daemon.env.manager.paused.by == "alice"


async def test_no_daemon_running(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    for verb in ("pause", "resume", "status"):
        status, out, err = await daemon.run(
            capsys, "actions", verb, "--api", f"http://127.0.0.1:{free_port()}",
            "--state-dir", str(daemon.state_dir), raw=True)
        assert (status, out) == (1, "")
        assert err.startswith("linnix: cannot reach the linnix API at http://127.0.0.1:")
        assert err.endswith(": is 'linnix run' running?\n")


def test_the_stream_line_of_a_pause() -> None:
    paused = SseEvent("3", "pause", '{"actions": "paused", "paused": {"since": 0, '
                                    '"until": null, "reason": "window", "by": "alice"}}')
    assert event_line(paused, now=0.0) == (f"{local_time(0.0)}  actions paused    by alice "
                                           "until resumed (window)")
    resumed = SseEvent("4", "pause", '{"actions": "active", "resumed": {"by": "linnix", '
                                     '"reason": null, "since": 0, "until": 60}}')
    assert event_line(resumed, now=0.0) == f"{local_time(0.0)}  actions resumed   by linnix"
