"""Rule state across a restart of the real daemon: a firing instance stays firing.

``linnix run`` (the polling source) watches a process the test starts; its rule
fires and proposes an action.  The daemon is stopped with SIGTERM and started
again on the same state directory: the alert is still firing, with no second
firing transition and no second proposal, its incident is the same and still
open, and Alertmanager (a recording stand-in) hears of it again with its first
``startsAt``.  When the process ends, it resolves once.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_support import Api, Daemon, free_port, require_root, wait_for

pytestmark = pytest.mark.slow

COMM = "lnx-rs-test"
RULE = f"""
rule lnx_rs {{
    when comm == "{COMM}"
    severity critical
    action kill(grace = 2s)
}}
"""


class Receiver(http.server.ThreadingHTTPServer):
    """Records the alerts POSTed to it, as Alertmanager's API would take them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[list[dict[str, Any]]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def alerts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [a for batch in self.posts for a in batch
                    if a["labels"].get("alertname") == "lnx_rs"]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.posts.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def start(tmp_path: Path, receiver: Receiver) -> tuple[Daemon, Api]:
    config = tmp_path / "linnix.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n\n[notify]\n'
                      f'resend_interval = "1h"\n\n[[notify.alertmanager]]\n'
                      f'url = "{receiver.url}"\n')
    state = tmp_path / "state"
    (state / "daemon.json").unlink(missing_ok=True)  # written anew once it is ready
    daemon = Daemon(state, "--source", "poll", "--config", str(config),
                    rules=[str(tmp_path / "rs.lnx")])
    daemon.wait_ready()
    api = Api(state)
    wait_for(lambda: api.get("/health"), 10, "the API")
    return daemon, api


def mine(daemon: Daemon, state: str) -> list[dict[str, Any]]:
    return [a for a in daemon.alerts() if a.get("type") == "alert"
            and a.get("rule") == "lnx_rs" and a.get("state") == state]


def test_a_firing_instance_survives_a_restart_and_resolves_once(tmp_path: Path,
                                                                receiver: Receiver) -> None:
    require_root()  # kill(...) targets: the action manager checks them as root does
    (tmp_path / "rs.lnx").write_text(RULE)
    program = tmp_path / COMM
    shutil.copy("/bin/sleep", program)
    first, api = start(tmp_path, receiver)
    target = subprocess.Popen([str(program), "300"])
    daemons = [first]
    try:
        fired = first.wait_alert("lnx_rs", "firing", -1e9, timeout=30)
        assert fired["pid"] == target.pid
        action = wait_for(lambda: next(iter(api.get("/actions?limit=10")["actions"]), None),
                          30, "the proposal")
        incident = action["incident_id"]
        assert incident is not None
        sent = wait_for(receiver.alerts, 30, "Alertmanager to hear of it")
        starts = sent[0]["startsAt"]
        assert first.stop(timeout=30) < 30 and first.proc.returncode == 0, first.stderr

        heard = len(receiver.alerts())
        second, api = start(tmp_path, receiver)
        daemons.append(second)
        again = wait_for(lambda: receiver.alerts()[heard:], 30, "the restored alert")
        assert [(a["startsAt"], a["labels"]["pid"]) for a in again] == [(starts,
                                                                         str(target.pid))]
        firing = [a for a in api.get("/alerts")["alerts"] if a["rule"] == "lnx_rs"]
        assert [(a["state"], a["pid"]) for a in firing] == [("firing", target.pid)]
        row = api.get(f"/incidents/{incident}")
        assert row["resolved_at"] is None  # the same incident, still open
        assert [a["id"] for a in api.get("/actions?limit=10")["actions"]] == [action["id"]]
        started = api.audit(event="daemon.started")[0]["detail"]
        assert (started["closed_incidents"], started["kept_incidents"]) == (0, 1)
        assert started["restored"] == {"firing": 1}

        target.kill()
        target.wait()
        second.wait_alert("lnx_rs", "resolved", -1e9, timeout=30)
        closed = wait_for(lambda: (r := api.get(f"/incidents/{incident}"))["resolved_at"]
                          and r, 30, "the incident to resolve")
        assert closed["resolved_reason"] == "exited"
        restored, resolved = wait_for(lambda: receiver.alerts()[heard:][1:] and
                                      receiver.alerts()[heard:], 30, "the resolved alert")
        assert resolved["startsAt"] == starts
        assert resolved["endsAt"] < restored["endsAt"]  # it ended, no longer 4h ahead
        assert len(mine(second, "firing")) == 1  # alerts.jsonl holds both runs: fired once
        assert len(mine(second, "resolved")) == 1
        assert [a["id"] for a in api.get("/actions?limit=10")["actions"]] == [action["id"]]
    finally:
        target.kill()
        target.wait()
        for daemon in daemons:
            daemon.stop(timeout=30)
    assert "rule state restored" in daemons[-1].stderr
