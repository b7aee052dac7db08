"""The notifier inside ``linnix run``: a receiver that never answers cannot hold up
the engine or the shutdown, and a webhook's secret file is checked at the start."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_support import Daemon, free_port
from support import run_linnix

COMM = "lnx-nt-test"
RULE = f'rule lnx_nt {{\n    when comm == "{COMM}"\n    message "{{comm}} runs"\n}}\n'

pytestmark = pytest.mark.slow


@pytest.fixture
def silent_receiver() -> Iterator[int]:
    """A port that takes connections (into its backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def write_config(tmp_path: Path, port: int, secret: Path) -> Path:
    config = tmp_path / "linnix.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n\n[notify]\ntimeout = "60s"\n\n'
                      f'[[notify.webhook]]\nurl = "http://127.0.0.1:{port}/hook"\n'
                      f'secret_file = "{secret}"\n')
    return config


def secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / "webhook.secret"
    secret.write_text("k3y\n")
    secret.chmod(0o600)
    return secret


def test_a_receiver_that_never_answers_holds_up_neither_alerts_nor_shutdown(
        tmp_path: Path, silent_receiver: int) -> None:
    rules = tmp_path / "nt.lnx"
    rules.write_text(RULE)
    config = write_config(tmp_path, silent_receiver, secret_file(tmp_path))
    daemon = Daemon(tmp_path / "state", "--source", "poll", "--config", str(config),
                    rules=[str(rules)])
    program = tmp_path / COMM
    shutil.copy("/bin/sleep", program)
    proc = None
    try:
        daemon.wait_ready()
        proc = subprocess.Popen([str(program), "120"])
        since = daemon.now() - 1
        daemon.wait_alert("lnx_nt", "firing", since, timeout=30)  # the engine went on
        proc.kill()
        proc.wait()
        daemon.wait_alert("lnx_nt", "resolved", since, timeout=30)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        daemon.stop(timeout=30)
    assert daemon.proc.returncode == 0, daemon.stderr  # it stopped by itself, not killed
    assert "notification(s) could not be sent before stopping" in daemon.stderr


def test_a_webhook_secret_others_can_read_stops_the_start(tmp_path: Path) -> None:
    secret = secret_file(tmp_path)
    secret.chmod(0o644)
    config = write_config(tmp_path, 9, secret)
    result = run_linnix("run", "--config", str(config), "--state-dir", str(tmp_path / "s"),
                        "--source", "poll")
    assert result.returncode == 2
    assert result.stderr.startswith(f"linnix: {config}:9: notify.webhook[0].secret_file: the "
                                    f"secret file {secret} has mode 0644"), result.stderr
    assert "Traceback" not in result.stderr
