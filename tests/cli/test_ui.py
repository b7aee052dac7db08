"""``linnix ui``: a one-time sign-in link from a served dashboard."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import trio
from api_support import TOKEN
from ui_support import start_ui

from linnix.api.server import serve
from linnix.cli import main


async def _served(tmp_path: Path, nursery: trio.Nursery, app: object) -> tuple[str, Path]:
    state = tmp_path / "state"
    state.mkdir()
    (state / "api.token").write_text(TOKEN + "\n")
    (state / "api.token").chmod(0o600)
    address = await nursery.start(lambda task_status: serve(
        app, "127.0.0.1:0", token=TOKEN, task_status=task_status))
    return f"http://{address}", state


async def _linnix(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = await trio.to_thread.run_sync(main, list(argv))
    out, err = capsys.readouterr()
    return status, out, err


async def test_the_link_signs_in_once(tmp_path: Path, nursery: trio.Nursery,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    ui = await start_ui(tmp_path, nursery)
    url, state = await _served(tmp_path, nursery, ui.app)
    status, out, err = await _linnix(capsys, "ui", "--api", url, "--state-dir",
                                     os.fspath(state))
    assert (status, err) == (0, "")
    link, note = out.splitlines()
    assert link.startswith(f"{url}/ui/signin?code=")
    assert TOKEN not in link
    assert note == "Open it within 60s to sign in as admin; it works once."
    code = parse_qs(urlsplit(link).query)["code"][0]
    browser = ui.browser()
    assert (await browser.post("/ui/signin", {"code": code}))[0] == 303
    assert (await browser.get("/ui/"))[0] == 200
    assert (await ui.browser().post("/ui/signin", {"code": code}))[0] == 401


async def test_json_names_the_link(tmp_path: Path, nursery: trio.Nursery,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    ui = await start_ui(tmp_path, nursery)
    url, state = await _served(tmp_path, nursery, ui.app)
    status, out, _ = await _linnix(capsys, "ui", "--json", "--api", url, "--state-dir",
                                   os.fspath(state))
    answer = json.loads(out)
    assert status == 0 and answer["url"] == url + answer["path"]
    assert answer["expires_in"] == 60 and answer["name"] == "admin"


async def test_a_wrong_token_is_a_clear_error(tmp_path: Path, nursery: trio.Nursery,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    ui = await start_ui(tmp_path, nursery)
    url, state = await _served(tmp_path, nursery, ui.app)
    (state / "api.token").write_text("not-the-right-token-at-all\n")
    status, out, err = await _linnix(capsys, "ui", "--api", url, "--state-dir",
                                     os.fspath(state))
    assert (status, out) == (1, "")
    assert err.startswith("linnix: ") and "token" in err and "Traceback" not in err


async def test_a_daemon_without_the_dashboard_says_so(tmp_path: Path, nursery: trio.Nursery,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    ui = await start_ui(tmp_path, nursery)
    url, state = await _served(tmp_path, nursery, ui.env.app)  # the API alone
    status, out, err = await _linnix(capsys, "ui", "--api", url, "--state-dir",
                                     os.fspath(state))
    assert (status, out) == (1, "")
    assert err.startswith("linnix: ") and "/ui/codes" in err
