"""linnix token add / list / revoke, and the daemon's API following what they change."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import trio
from api_support import inline, start_env

from linnix.api.tokens import read_tokens
from linnix.cli import main


def token(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["token", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_add_prints_the_token_once_and_keeps_its_digest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = os.fspath(tmp_path / "state")
    status, out, err = token(capsys, "add", "ci", "--role", "reader", "--state-dir", state)
    path = os.path.join(state, "api.tokens")
    assert status == 0
    secret = out.strip()
    assert out == secret + "\n" and secret.startswith("lnx_")
    assert err == f"linnix: added the reader token 'ci' to {path}; it is shown only this once\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret not in Path(path).read_text()
    assert [(t.name, t.role) for t in read_tokens(path)] == [("ci", "reader")]


def test_list_shows_names_roles_and_dates_never_secrets(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    state = os.fspath(tmp_path)
    status, out, _ = token(capsys, "list", "--state-dir", state)
    assert (status, out) == (0, "NAME   ROLE   CREATED\n"
                                "admin  admin  -        the token in api.token\n"
                                "no named tokens yet: 'linnix token add NAME --role ROLE' "
                                "makes one\n")
    _, secret, _ = token(capsys, "--state-dir", state, "add", "ops", "--role", "approver")
    status, out, _ = token(capsys, "list", "--state-dir", state)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "CREATED"]
    assert lines[2].split()[:2] == ["ops", "approver"] and len(lines) == 3
    digest = read_tokens(os.path.join(state, "api.tokens"))[0].sha256
    assert secret.strip() not in out and digest not in out
    status, out, _ = token(capsys, "list", "--json", "--state-dir", state)
    listed = json.loads(out)
    assert [(t["name"], t["role"]) for t in listed] == [("admin", "admin"),
                                                          ("ops", "approver")]
    assert set(listed[1]) == {"name", "role", "created"}


def test_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = os.fspath(tmp_path)
    token(capsys, "add", "ci", "--role", "reader", "--state-dir", state)
    status, out, err = token(capsys, "revoke", "ci", "--state-dir", state)
    assert (status, out, err) == (0, "", "linnix: revoked the token 'ci'\n")
    status, out, err = token(capsys, "revoke", "ci", "--state-dir", state)
    assert (status, out) == (1, "")
    assert err == "linnix: no token is named 'ci' ('linnix token list' lists them)\n"


@pytest.mark.parametrize(("argv", "status", "says"), [
    (("add", "a b", "--role", "reader"), 2, "a token name may hold only"),
    (("add", "admin", "--role", "reader"), 2, "'admin' is the name of the token in api.token"),
    (("add", "ci"), 2, "--role"),
    (("add", "ci", "--role", "root"), 2, "invalid choice: 'root'"),
    (("revoke", "admin"), 2, "stop the daemon, delete that file"),
])
def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    argv: tuple[str, ...], status: int, says: str) -> None:
    got, out, err = token(capsys, *argv, "--state-dir", os.fspath(tmp_path))
    assert (got, out) == (status, "")
    assert err.startswith("linnix: ") and says in err and "Traceback" not in err


def test_a_damaged_file_is_a_clear_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "api.tokens"
    path.write_text("{")
    path.chmod(0o600)
    for argv in (("list",), ("add", "ci", "--role", "reader"), ("revoke", "ci")):
        status, out, err = token(capsys, *argv, "--state-dir", os.fspath(tmp_path))
        assert (status, out) == (1, "")
        assert err == f"linnix: the API tokens file {path} is damaged: it is not what " \
                      "'linnix token' writes; fix or delete it\n"
    assert path.read_text() == "{"


async def test_the_api_follows_added_and_revoked_tokens(
        tmp_path: Path, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]) -> None:
    env = await start_env(tmp_path, nursery)  # its tokens file is tmp_path/api.tokens
    action = await env.propose()
    client = env.app.test_client()
    _, out, _ = token(capsys, "add", "dave", "--role", "approver", "--state-dir",
                      os.fspath(tmp_path))
    headers = {"Authorization": f"Bearer {out.strip()}"}
    assert await env.book.refresh(inline)  # what the daemon's watch does every second
    response = await client.get(f"/actions/{action}", headers=headers)
    assert response.status_code == 200
    token(capsys, "revoke", "dave", "--state-dir", os.fspath(tmp_path))
    assert await env.book.refresh(inline)
    response = await client.post(f"/actions/{action}/approve", headers=headers, json={})
    assert response.status_code == 401
    assert env.manager.status[action] == "pending"
