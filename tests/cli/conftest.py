"""Fixtures of the command-line client's tests: a served test environment (a real API over
a real store and action manager) and how the CLI reaches it."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from api_support import TOKEN, start_env
from cli_support import Daemon

from linnix.api.server import serve


@pytest.fixture
async def daemon(tmp_path: Path, nursery: trio.Nursery,
                 monkeypatch: pytest.MonkeyPatch) -> Daemon:
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("USER", "tester")
    env = await start_env(tmp_path, nursery)
    state = tmp_path / "state"
    state.mkdir()
    token_file = state / "api.token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    address = await nursery.start(lambda task_status: serve(
        env.app, "127.0.0.1:0", token=TOKEN, task_status=task_status))
    return Daemon(env, f"http://{address}", state)


