"""The state directory's order of precedence: flag, environment, config, checkout, default."""

from __future__ import annotations

from pathlib import Path

import pytest

from linnix.config import Config, parse_config, resolve_state_dir

CONFIGURED = '[runtime]\nstate_dir = "/srv/linnix"\n'


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout where `make run` started the daemon: ./state/daemon.json exists."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "daemon.json").write_text("{}", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("linnix.config.paths.os.geteuid", lambda: 0)
    monkeypatch.delenv("LINNIX_STATE_DIR", raising=False)
    return tmp_path


def test_each_source_in_its_order(checkout: Path) -> None:
    configured = parse_config(CONFIGURED, "linnix.toml")
    env = {"LINNIX_STATE_DIR": "/from/env"}
    assert resolve_state_dir("/cli", configured, env) == "/cli"
    assert resolve_state_dir(None, configured, env) == "/from/env"
    assert resolve_state_dir(None, configured, {}) == "/srv/linnix"
    assert resolve_state_dir(None, Config(), {}) == str(checkout / "state")
    (checkout / "state" / "daemon.json").unlink()  # no daemon ever ran here
    assert resolve_state_dir(None, Config(), {}) == "/var/lib/linnix"


def test_a_relative_environment_value_is_taken_from_here(checkout: Path) -> None:
    assert resolve_state_dir(None, Config(), {"LINNIX_STATE_DIR": "st"}) == str(checkout / "st")
    assert resolve_state_dir(None, Config(), {"LINNIX_STATE_DIR": ""}) == str(
        checkout / "state")  # empty: not set


def test_a_state_folder_without_a_daemon_is_not_taken(checkout: Path) -> None:
    (checkout / "state" / "daemon.json").unlink()
    (checkout / "state" / "daemon.json").mkdir()  # not a file
    assert resolve_state_dir(None, Config(), {}) == "/var/lib/linnix"
