"""The command-line client against a served test environment: how a test reaches it and
runs ``linnix`` against it (shared by the tests under tests/cli)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from api_support import Env

from linnix.cli import main


class Daemon:
    """A served test environment and how the CLI reaches it."""

    def __init__(self, env: Env, url: str, state_dir: Path) -> None:
        self.env = env
        self.url = url
        self.state_dir = state_dir

    def token_file(self, name: str) -> str:
        """A token file holding the token named ``name``."""
        path = self.state_dir / f"{name}.token"
        path.write_text(self.env.tokens[name] + "\n")
        path.chmod(0o600)
        return os.fspath(path)

    def notes(self, action: int) -> list[tuple[str, str]]:
        return [(r["actor"], r["detail"]["note"]) for r in self.env.store.audit_log(
            action_id=action) if r["event"] == "action.note"]

    def args(self, *argv: str) -> list[str]:
        return [*argv, "--api", self.url, "--state-dir", os.fspath(self.state_dir)]

    async def run(self, capsys: pytest.CaptureFixture[str], *argv: str,
                  raw: bool = False) -> tuple[int, str, str]:
        """Run ``linnix ARGV`` on a thread (the server keeps running); (status, out, err)."""
        full = list(argv) if raw else self.args(*argv)
        status = await trio.to_thread.run_sync(main, full)
        out, err = capsys.readouterr()
        return status, out, err
