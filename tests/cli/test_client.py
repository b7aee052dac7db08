"""The command-line client: linnix actions / incidents / stream against a real server."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from api_support import PID_A, PID_B, TOKEN, Env, start_env
from cgactions_support import HOG, FakePrimitives, FakeTree, frozen, install
from cli_support import Daemon
from support import run_linnix

import linnix.api.client as client_module
from linnix.api.client import (
    ApiClient,
    SseEvent,
    api_url,
    follow,
    parse_sse,
)
from linnix.api.server import serve
from linnix.cli import main
from linnix.cli.views import actions_table, event_line, local_time, table
from linnix.errors import ApiError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- actions ----------------------------------------------------------------------------

async def test_no_pending_actions(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = await daemon.run(capsys, "actions")
    assert (status, out, err) == (0, "no pending actions\n", "")
    status, out, _ = await daemon.run(capsys, "actions", "list", "--status", "all")
    assert out == "no actions\n"
    status, out, _ = await daemon.run(capsys, "actions", "list", "--status", "rejected")
    assert out == "no rejected actions\n"


async def test_from_the_checkout_where_make_run_started_the_daemon(
        daemon: Daemon, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`make run` keeps its state in ./state: the commands find the token there."""
    (daemon.state_dir / "daemon.json").write_text("{}")
    monkeypatch.chdir(daemon.state_dir.parent)
    monkeypatch.delenv("LINNIX_STATE_DIR", raising=False)
    monkeypatch.setattr("linnix.config.paths.os.geteuid", lambda: 0)  # else /var/lib/linnix
    status, out, err = await daemon.run(capsys, "actions", "--api", daemon.url, raw=True)
    assert (status, out, err) == (0, "no pending actions\n", "")
    monkeypatch.setenv("LINNIX_STATE_DIR", "elsewhere")  # the environment comes first
    status, out, err = await daemon.run(capsys, "actions", "--api", daemon.url, raw=True)
    assert status == 1
    assert f"no API token file at {daemon.state_dir.parent}/elsewhere/api.token" in err


async def test_pending_actions_table(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    first = await daemon.env.propose()
    second = await daemon.env.propose(PID_B, "worker", kind="kill_tree")
    status, out, _ = await daemon.run(capsys, "actions", "list")
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 3
    header = lines[0]
    assert header.split() == ["ID", "STATUS", "ACTION", "TARGET", "RULE", "REPEATS", "INCIDENT",
                              "CREATED", "DECISION"]
    assert lines[1].split()[:4] == [str(second), "pending", "kill_tree", f"worker[{PID_B}]"]
    assert lines[2].split()[:4] == [str(first), "pending", "kill", f"python3[{PID_A}]"]
    for column in ("STATUS", "TARGET", "CREATED"):  # aligned columns
        at = header.index(column)
        assert all(line[at - 2:at] == "  " and line[at] != " " for line in lines[1:])
    row = daemon.env.store.action(first)
    assert row is not None
    assert local_time(row["created_at"]) in lines[2]


async def test_a_repeated_action_shows_its_count(daemon: Daemon,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    action = await daemon.env.propose()
    assert await daemon.env.propose() == action  # fired again: counted, not asked again
    assert await daemon.env.propose() == action
    status, out, _ = await daemon.run(capsys, "actions", "list")
    header, line = out.splitlines()
    at = header.index("REPEATS")
    assert line[at:].split()[:2] == ["2", "-"]  # then INCIDENT: none
    status, out, _ = await daemon.run(capsys, "actions", "show", str(action))
    row = daemon.env.store.action(action)
    assert row is not None
    assert (f"repeats:    the rule fired again 2 times, last at "
            f"{local_time(row['last_seen_at'])}\n") in out
    status, out, _ = await daemon.run(capsys, "actions", "list", "--json")
    assert status == 0
    assert [a["repeats"] for a in json.loads(out)] == [2]


async def test_show_an_action(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    action = await daemon.env.propose()
    status, out, _ = await daemon.run(capsys, "actions", "show", str(action))
    assert status == 0
    assert f"action:     {action}\n" in out
    assert "status:     pending\n" in out
    assert f"target:     python3[{PID_A}]\n" in out
    assert "repeats:    0\n" in out
    assert f"linnix actions approve {action}" in out


async def test_approve_then_approve_again(daemon: Daemon,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    action = await daemon.env.propose()
    status, out, err = await daemon.run(capsys, "actions", "approve", str(action),
                                        "--approver", "on call", "--reason", "runaway job",
                                        "--token-file", daemon.token_file("alice"))
    assert (status, err) == (0, "")
    assert out.startswith(f"action {action} approved by alice: kill python3[{PID_A}]")
    await daemon.env.wait_status(action, "succeeded")
    audit = daemon.env.store.audit_log(action_id=action)
    approved = [r for r in audit if r["event"] == "action.approved"]
    assert [(r["actor"], r["detail"]["reason"]) for r in approved] == [("alice", "runaway job")]
    assert daemon.notes(action) == [("alice", "on call")]
    status, out, err = await daemon.run(capsys, "actions", "approve", str(action))
    assert (status, out) == (1, "")
    assert err == f"linnix: action {action} is not pending: it was already approved by alice " \
                  "and executed (succeeded)\n"
    assert "Traceback" not in err


async def test_the_note_is_sudo_user_then_user(daemon: Daemon,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = await daemon.env.propose()
    status, out, _ = await daemon.run(capsys, "actions", "reject", str(first))
    assert status == 0 and "rejected by admin" in out  # the token's name
    assert daemon.notes(first) == [("admin", "tester")]
    monkeypatch.setenv("SUDO_USER", "dana")
    second = await daemon.env.propose(PID_B, "worker")
    status, out, _ = await daemon.run(capsys, "actions", "reject", str(second), "--note",
                                      "flapping")
    assert status == 0 and "rejected by admin" in out
    row = daemon.env.store.action(second)
    assert row is not None and row["decided_by"] == "admin"
    assert daemon.notes(second) == [("admin", "flapping")]


async def test_without_a_user_no_note_is_sent(daemon: Daemon,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USER")
    action = await daemon.env.propose()
    status, out, err = await daemon.run(capsys, "actions", "approve", str(action))
    assert (status, err) == (0, "") and "approved by admin" in out
    assert daemon.notes(action) == []


async def test_a_reader_cannot_approve(daemon: Daemon,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    action = await daemon.env.propose()
    status, out, err = await daemon.run(capsys, "actions", "approve", str(action),
                                        "--token-file", daemon.token_file("rita"))
    assert (status, out) == (1, "")
    assert err == f"linnix: the token 'rita' has the role reader; POST " \
                  f"/actions/{action}/approve needs the role approver or admin\n"
    assert daemon.env.manager.status[action] == "pending"


async def test_unknown_action_says_the_api_detail(daemon: Daemon,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("actions", "show", "999"), ("actions", "approve", "999")):
        status, out, err = await daemon.run(capsys, *argv)
        assert (status, out, err) == (1, "", "linnix: no action has id 999\n")


async def test_a_wrong_token_says_so(daemon: Daemon, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    action = await daemon.env.propose()
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-right-token-at-all\n")
    status, _, err = await daemon.run(capsys, "actions", "approve", str(action),
                                      "--token-file", os.fspath(wrong))
    assert status == 1
    assert err == "linnix: the API refused the token: the token is not valid\n"
    assert daemon.env.manager.status[action] == "pending"


async def test_a_missing_token_file_is_named(daemon: Daemon, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    action = await daemon.env.propose()
    missing = tmp_path / "nowhere" / "api.token"
    status, _, err = await daemon.run(capsys, "actions", "approve", str(action),
                                      "--token-file", os.fspath(missing))
    assert status == 1
    assert os.fspath(missing) in err and "Traceback" not in err


def test_a_fifo_as_the_token_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "api.token"
    os.mkfifo(fifo, 0o600)
    out = run_linnix("actions", "approve", "1", "--api", "http://127.0.0.1:1",
                     "--token-file", os.fspath(fifo), timeout=60)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == f"linnix: the API token file {fifo} is not a regular file\n"


async def test_unreachable_daemon(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    token = tmp_path / "api.token"
    token.write_text(TOKEN)
    for argv in (["actions"], ["actions", "approve", "1", "--approver", "x"],
                 ["incidents", "show", "3"], ["stream"]):
        status = await trio.to_thread.run_sync(main, [*argv, "--api", url,
                                                      "--token-file", os.fspath(token)])
        out, err = capsys.readouterr()
        assert (status, out) == (1, "")
        assert err == f"linnix: cannot reach the linnix API at {url}: is 'linnix run' running?\n"


async def test_the_config_says_where_the_daemon_and_its_token_are(
        daemon: Daemon, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    action = await daemon.env.propose()
    bind = daemon.url.removeprefix("http://")
    config = tmp_path / "linnix.toml"
    config.write_text(f'[runtime]\nstate_dir = "{daemon.state_dir}"\n\n'
                      f'[api]\nbind = "{bind}"\n')
    status, out, err = await daemon.run(capsys, "actions", "approve", str(action), "--config",
                                        os.fspath(config), "--note", "carol", raw=True)
    assert (status, err) == (0, "")
    assert "approved by admin" in out  # with the token of api.token in the state directory
    assert daemon.notes(action) == [("admin", "carol")]


async def test_options_before_the_verb_are_kept(daemon: Daemon,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    await daemon.env.propose()
    status, out, _ = await daemon.run(capsys, "actions", "--api", daemon.url, "--state-dir",
                                      os.fspath(daemon.state_dir), "list", raw=True)
    assert status == 0 and "pending" in out


async def test_reads_send_the_token(daemon: Daemon, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    await daemon.env.propose()
    for argv in (("actions", "list"), ("incidents",)):
        status, _, err = await daemon.run(capsys, *argv)
        assert (status, err) == (0, ""), argv
    missing = tmp_path / "nowhere" / "api.token"
    status, out, err = await daemon.run(capsys, "actions", "list", "--token-file",
                                        os.fspath(missing))
    assert (status, out) == (1, "")
    assert err == f"linnix: the API needs a token: no API token file at {missing}: has " \
                  "'linnix run' started with this state directory? (or pass --token-file)\n"


async def test_reads_without_a_token_where_the_daemon_allows_them(
        tmp_path: Path, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]) -> None:
    env = await start_env(tmp_path, nursery, public_reads=True)
    address = await nursery.start(lambda task_status: serve(
        env.app, "127.0.0.1:0", token=TOKEN, task_status=task_status))
    missing = os.fspath(tmp_path / "nowhere" / "api.token")
    await env.propose()
    status = await trio.to_thread.run_sync(main, ["actions", "--api", f"http://{address}",
                                                  "--token-file", missing])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "") and "pending" in out


async def test_json_output(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    action = await daemon.env.propose()
    status, out, _ = await daemon.run(capsys, "actions", "list", "--json")
    assert status == 0
    assert [row["id"] for row in json.loads(out)] == [action]
    status, out, _ = await daemon.run(capsys, "actions", "show", str(action), "--json")
    assert status == 0
    assert json.loads(out)["status"] == "pending"


# ---- incidents --------------------------------------------------------------------------

def _incident(env: Env, rule: str) -> int:
    return env.store.open_incident(
        rule=rule, severity="critical", scope="process", pid=PID_A, comm="python3", start=1.0,
        message=f"{rule}: cpu at 97%", labels={"team": "infra"},
        history=[{"ts": 1.0, "values": {"cpu_pct": 97.25}}],
        subtree=[{"pid": PID_A, "ppid": 1, "comm": "python3", "cpu_pct": 97.25,
                  "rss_mb": 12.0}], host={})


async def test_incidents(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = await daemon.run(capsys, "incidents")
    assert out == "no incidents\n"
    status, out, _ = await daemon.run(capsys, "incidents", "list", "--open")
    assert out == "no open incidents\n"
    first = _incident(daemon.env, "cpu_spike")
    second = _incident(daemon.env, "memory_leak")
    daemon.env.store.resolve_incident(first, "cleared")
    status, out, _ = await daemon.run(capsys, "incidents", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "SEVERITY", "RULE", "TARGET", "OPENED", "MESSAGE"]
    assert lines[1].split()[:4] == [str(second), "open", "critical", "memory_leak"]
    assert lines[2].split()[:4] == [str(first), "resolved", "critical", "cpu_spike"]
    assert lines[1].endswith("memory_leak: cpu at 97%")
    status, out, _ = await daemon.run(capsys, "incidents", "list", "--open")
    assert len(out.splitlines()) == 2
    status, out, _ = await daemon.run(capsys, "incidents", "show", str(first))
    assert status == 0
    assert "state:    resolved\n" in out
    assert "why:      cleared\n" in out
    assert "values:   cpu_pct=97.2" in out
    assert "processes when it opened:" in out and "python3" in out
    assert out.endswith("actions:\n  none\n")
    status, _, err = await daemon.run(capsys, "incidents", "show", "77")
    assert (status, err) == (1, "linnix: no incident has id 77\n")


async def test_incidents_analyze_and_show_the_analysis(daemon: Daemon,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    incident = _incident(daemon.env, "cpu_spike")
    status, out, _ = await daemon.run(capsys, "incidents", "analyze", str(incident))
    assert status == 0
    assert out.splitlines() == [
        f"analysis of incident {incident} (rule cpu_spike, builtin analyst)",
        "  [F1] condition: the rule's condition held for 0.0s before it fired",
        "  [F2] cpu_pct: 97.25 when it fired",
        f'  [F3] drivers by cpu_pct (total 97.25): "python3"[{PID_A}] 97.25 (100%)',
        f'  [F4] origin: "python3"[{PID_A}]',
        "  [F5] before: no earlier incident of this rule"]
    status, shown, _ = await daemon.run(capsys, "incidents", "show", str(incident))
    assert shown.endswith("actions:\n  none\n\n" + out)
    status, _, err = await daemon.run(capsys, "incidents", "analyze", "77")
    assert (status, err) == (1, "linnix: no incident has id 77\n")


# ---- stream ----------------------------------------------------------------------------

def test_parse_sse() -> None:
    body = (b"retry: 3000\n\n: keep-alive\n\nid: 1\nevent: alert\ndata: {\"a\": 1}\n\n"
            b"id: 2\r\nevent: action\r\ndata: line one\r\ndata: line two\r\n\r\n"
            b"data: no name\n\nid: 3\nevent: alert\n\n")
    events = list(parse_sse(body.splitlines(keepends=True)))
    assert events == [SseEvent("1", "alert", '{"a": 1}'),
                      SseEvent("2", "action", "line one\nline two"),
                      SseEvent("2", "message", "no name")]
    assert events[0].json() == {"a": 1}


class FakeResponse:
    def __init__(self, body: bytes, fail: bool) -> None:
        self.lines: Iterator[bytes] = iter(body.splitlines(keepends=True))
        self.fail = fail
        self.closed = False

    def readline(self) -> bytes:
        line = next(self.lines, b"")
        if not line and self.fail:
            raise ConnectionResetError("reset")
        return line

    def close(self) -> None:
        self.closed = True


class FakeClient:
    """Opens scripted responses, recording the Last-Event-ID of each connection."""

    def __init__(self, script: list[FakeResponse | ApiError]) -> None:
        self.script = script
        self.opened: list[str | None] = []

    def open_stream(self, last_event_id: str | None = None) -> Any:
        self.opened.append(last_event_id)
        step = self.script.pop(0)
        if isinstance(step, ApiError):
            raise step
        return step


def _frame(n: int, kind: str = "alert") -> bytes:
    return f'id: {n}\nevent: {kind}\ndata: {{"n": {n}}}\n\n'.encode()


def test_follow_reconnects_with_the_last_event_id() -> None:
    first = FakeResponse(_frame(1) + _frame(2), fail=True)
    second = FakeResponse(_frame(3), fail=False)
    down = ApiError("cannot reach the linnix API at x: is 'linnix run' running?")
    third = FakeResponse(_frame(4), fail=False)
    fake = FakeClient([first, second, down, third])
    seen: list[str | None] = []
    notices: list[str] = []
    waits: list[float] = []
    follow(fake, lambda e: seen.append(e.id), notice=notices.append,  # type: ignore[arg-type]
           sleep=waits.append, reconnects=3)
    assert seen == ["1", "2", "3", "4"]
    assert fake.opened == [None, "2", "3", "3"]
    assert first.closed and second.closed and third.closed
    assert notices[0] == "the connection was lost; reconnecting in 1s"
    assert notices[1] == "the daemon closed the stream; reconnecting in 1s"
    assert notices[2].startswith("cannot reach the linnix API")
    assert waits == [1.0, 1.0, 2.0]


def test_follow_fails_when_the_first_connection_fails() -> None:
    fake = FakeClient([ApiError("cannot reach")])
    with pytest.raises(ApiError, match="cannot reach"):
        follow(fake, lambda e: None)  # type: ignore[arg-type]


def test_follow_gives_up_on_an_api_error() -> None:
    fake = FakeClient([FakeResponse(_frame(1), fail=True), ApiError("bad", status=400)])
    with pytest.raises(ApiError, match="bad"):
        follow(fake, lambda e: None, sleep=lambda s: None)  # type: ignore[arg-type]


def test_ctrl_c_exits_130_quietly(monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(client_module, "follow", interrupted)
    assert main(["stream", "--api", "http://127.0.0.1:1"]) == 130
    assert capsys.readouterr() == ("", "")


def test_stream_prints_one_line_per_alert_and_action(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    events = [
        SseEvent("1", "alert", '{"rule": "cpu_spike", "state": "firing", "pid": 42, '
                               '"comm": "python3", "message": "cpu at 97%"}'),
        SseEvent("2", "process", '{"pid": 42}'),
        SseEvent("3", "action", '{"id": 7, "kind": "kill", "status": "pending", "pid": 42, '
                                '"comm": "python3", "rule": "cpu_spike", "params": {}}'),
        SseEvent("4", "incident", '{"id": 1, "state": "opened"}'),
    ]

    def fake_follow(client: object, on_event: Any, **kwargs: object) -> None:
        for event in events:
            on_event(event)
        raise KeyboardInterrupt

    monkeypatch.setattr(client_module, "follow", fake_follow)
    assert main(["stream", "--api", "http://127.0.0.1:1"]) == 130
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2 and err == ""
    assert "alert" in lines[0] and "firing" in lines[0] and "python3[42]" in lines[0]
    assert lines[0].endswith("cpu at 97%")
    assert "#7 kill python3[42]" in lines[1] and "linnix actions approve 7" in lines[1]


async def test_the_real_stream_is_read_and_resumed(daemon: Daemon) -> None:
    hub = daemon.env.hub
    hub.publish("alert", {"rule": "r", "state": "firing", "pid": 1, "comm": "a"})
    hub.publish("alert", {"rule": "r", "state": "resolved", "pid": 1, "comm": "a"})
    api = ApiClient(daemon.url, TOKEN)

    def read(last: str | None, n: int) -> list[SseEvent]:
        response = api.open_stream(last)
        try:
            got = []
            for event in parse_sse(iter(response.readline, b"")):
                got.append(event)
                if len(got) == n:
                    return got
            return got
        finally:
            response.close()

    first = await trio.to_thread.run_sync(read, "0", 2)
    assert [(e.id, e.event) for e in first] == [("1", "alert"), ("2", "alert")]
    hub.publish("alert", {"rule": "r", "state": "pending", "pid": 1, "comm": "a"})
    again = await trio.to_thread.run_sync(read, "2", 1)
    assert [(e.id, e.json()["state"]) for e in again] == [("3", "pending")]


def test_event_lines() -> None:
    reset = SseEvent("5", "reset", '{"reason": "events were missed: gone"}')
    line = event_line(reset, now=0.0)
    assert line is not None and "missed" in line
    done = SseEvent("6", "action", '{"id": 3, "kind": "renice", "params": {"nice": 10}, '
                                   '"status": "succeeded", "pid": 9, "comm": "x", "rule": "r", '
                                   '"result": {"detail": "x[9] reniced to 10"}}')
    line = event_line(done, now=0.0)
    assert line is not None
    assert "#3 renice(nice=10) x[9]" in line and line.endswith(": x[9] reniced to 10")
    assert event_line(SseEvent("7", "alert", "not json"), now=0.0) is None
    first = SseEvent("8", "action", '{"id": 4, "kind": "kill", "status": "pending", "pid": 9, '
                                    '"comm": "x", "rule": "r", "repeats": 0}')
    assert (event_line(first, now=0.0) or "").endswith("rule r  (linnix actions approve 4)")
    again = SseEvent("9", "action", '{"id": 4, "kind": "kill", "status": "pending", "pid": 9, '
                                    '"comm": "x", "rule": "r", "repeats": 3, '
                                    '"last_seen_at": 0}')
    assert (event_line(again, now=0.0) or "").endswith(
        f"rule r  (the rule fired again 3 times, last at {local_time(0)})")


# ---- helpers -------------------------------------------------------------------------------

def test_api_url_from_the_bind() -> None:
    assert api_url("127.0.0.1:9333") == "http://127.0.0.1:9333"
    assert api_url("0.0.0.0:9333") == "http://127.0.0.1:9333"
    assert api_url("[::]:9333") == "http://[::1]:9333"
    assert api_url("[::1]:80") == "http://[::1]:80"
    assert api_url("localhost:1") == "http://localhost:1"


def test_table_aligns_columns() -> None:
    text = table(("A", "LONGER", "LAST"), [(1, "x", "tail text"), (22, None, "t")])
    assert text == ("A   LONGER  LAST\n"
                    "1   x       tail text\n"
                    "22  -       t\n")
    assert actions_table([], "pending") == "no pending actions\n"
    assert actions_table([], None) == "no actions\n"


def test_local_time_is_iso_with_the_offset() -> None:
    text = local_time(0)
    assert text[:4] in ("1969", "1970") and ("+" in text[10:] or "-" in text[10:])
    assert local_time(None) == "-"


def test_api_urls_are_checked() -> None:
    assert ApiClient("127.0.0.1:9333").base_url == "http://127.0.0.1:9333"
    assert ApiClient("http://[::1]:9333/").base_url == "http://[::1]:9333"
    for bad in ("ftp://host:1", "http://host:port", "http://"):
        with pytest.raises(ApiError, match="invalid API URL"):
            ApiClient(bad)


async def test_thaw_a_freeze_then_again(daemon: Daemon, capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    tree, fake = FakeTree(tmp_path / "cg", daemon.env.proc), FakePrimitives()
    install(daemon.env.manager, tree, fake)
    action = await frozen(daemon.env.manager, tree.add(HOG, [(700, "hog")]))
    status, out, err = await daemon.run(capsys, "actions", "thaw", str(action), "--reason",
                                        "false alarm", "--token-file",
                                        daemon.token_file("alice"))
    assert (status, out, err) == (0, f"action {action}: {HOG} thawed\n", "")
    assert fake.of("thaw") == [HOG]
    status, out, err = await daemon.run(capsys, "actions", "thaw", str(action))
    assert (status, out) == (1, "")
    assert err == (f"linnix: action {action} holds no active freeze: it was thawed already "
                   "(false alarm)\n")
    status, out, err = await daemon.run(capsys, "actions", "thaw", "x")
    assert status == 2 and "Traceback" not in err


def test_a_cgroup_action_shows_its_cgroup_as_target() -> None:
    row = {"id": 3, "status": "pending", "kind": "freeze", "params": {}, "pid": None,
           "comm": None, "cgroup": "/system.slice/hog\x1b[2J.service", "rule": "hog",
           "repeats": 0, "created_at": 0.0}
    line = actions_table([row], "pending").splitlines()[1]
    assert line.split()[:4] == ["3", "pending", "freeze", "/system.slice/hog\\x1b[2J.service"]
