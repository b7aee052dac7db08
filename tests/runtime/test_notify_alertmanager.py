"""The daemon against the real Alertmanager (Debian's prometheus-alertmanager) on loopback.

A rule fires on a process the test starts; Alertmanager's own API must show the
alert with linnix's labels and annotations, and when the process ends,
Alertmanager must consider it resolved: gone from its active alerts, and
notified as resolved (with ``endsAt`` in the past) to the webhook receiver its
configuration names, a small server in the test.  A second test stops
Alertmanager while the alert fires and starts a fresh one: the re-sending
restores the alert.  Neither needs root (the daemon polls /proc).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from live_support import Api, Daemon, free_port, wait_for
from prometheus_client.parser import text_string_to_metric_families
from prometheus_support import Service, named_process

BINARY = "prometheus-alertmanager"
COMM = "lnx-am-test"
RULE = f"""\
rule lnx_am {{
    description "the test's process runs"
    when comm == "{COMM}"
    severity critical
    labels {{ team = "qa" }}
    message "{{comm}} runs"
}}
"""

pytestmark = pytest.mark.slow


class Notifications:
    """The webhook receiver Alertmanager notifies (what Alertmanager itself decided)."""

    def __init__(self) -> None:
        got: list[dict[str, Any]] = []
        self.got = got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class Alertmanager(Service):
    """``prometheus-alertmanager`` on a loopback port, clustering off."""

    binary, package, name = BINARY, BINARY, "am"

    def __init__(self, tmp: Path, notify_url: str) -> None:
        super().__init__(tmp)
        self.config = tmp / "alertmanager.yml"
        self.config.write_text(
            "route:\n  receiver: test\n  group_by: ['...']\n  group_wait: 0s\n"
            "  group_interval: 1s\n  repeat_interval: 1h\n"
            f"receivers:\n  - name: test\n    webhook_configs:\n      - url: {notify_url}\n"
            "        send_resolved: true\n")

    def arguments(self, storage: Path) -> list[str]:
        return [f"--config.file={self.config}", f"--storage.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="]

    def alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's active alerts (its API leaves out those resolved)."""
        found: list[dict[str, Any]] = self.get("/api/v2/alerts")
        return found


@pytest.fixture
def notifications() -> Iterator[Notifications]:
    n = Notifications()
    yield n
    n.close()


@pytest.fixture
def alertmanager(tmp_path: Path, notifications: Notifications) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path, notifications.url)
    am.start()
    yield am
    am.stop()


def start_daemon(tmp_path: Path, am: Alertmanager, resend: str) -> Daemon:
    rules = tmp_path / "am.lnx"
    rules.write_text(RULE)
    config = tmp_path / "linnix.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n\n[notify]\n'
                      f'resend_interval = "{resend}"\ntimeout = "2s"\n\n'
                      f'[[notify.alertmanager]]\nurl = "{am.url}"\n')
    daemon = Daemon(tmp_path / "state", "--source", "poll", "--config", str(config),
                    rules=[str(rules)])
    daemon.wait_ready()
    return daemon


def start_process(tmp_path: Path) -> subprocess.Popen[bytes]:
    return named_process(tmp_path, COMM)


def ours(alerts: list[dict[str, Any]], pid: int) -> dict[str, Any] | None:
    return next((a for a in alerts if a["labels"].get("alertname") == "lnx_am"
                 and a["labels"].get("pid") == str(pid)), None)


def notification_counts(daemon: Daemon, receiver: str) -> dict[str, float]:
    """The daemon's notification counters of ``receiver``, from its /metrics."""
    status, data = Api(daemon.state)._raw("GET", "/metrics")
    assert status == 200
    return {s.name.removeprefix("linnix_notifications_").removesuffix("_total"): s.value
            for family in text_string_to_metric_families(data.decode())
            for s in family.samples
            if s.name.startswith("linnix_notifications_") and s.name.endswith("_total")
            and s.labels == {"receiver": receiver}}


def instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def test_an_alert_reaches_alertmanager_and_resolves_there(
        tmp_path: Path, alertmanager: Alertmanager, notifications: Notifications) -> None:
    daemon = start_daemon(tmp_path, alertmanager, "60s")
    proc = start_process(tmp_path)
    try:
        before = time.time()
        shown = wait_for(lambda: ours(alertmanager.alerts(), proc.pid), 30,
                         "the alert in Alertmanager")
        assert shown["labels"] == {
            "alertname": "lnx_am", "severity": "critical", "instance": socket.gethostname(),
            "scope": "process", "pid": str(proc.pid), "comm": COMM, "team": "qa"}
        assert shown["annotations"] == {"summary": f"{COMM} runs",
                                        "description": "the test's process runs"}
        assert shown["status"]["state"] == "active"
        api = Api(daemon.state).base
        assert shown["generatorURL"] == f"{api}/alerts?rule=lnx_am"
        starts, ends = instant(shown["startsAt"]), instant(shown["endsAt"])
        assert before - 30 < starts <= time.time()
        assert ends - starts == pytest.approx(240, abs=30)  # four resend intervals ahead

        proc.terminate()
        proc.wait()
        wait_for(lambda: ours(alertmanager.alerts(), proc.pid) is None, 30,
                 "Alertmanager to resolve the alert")
        resolved = wait_for(lambda: next(
            (a for n in notifications.got for a in n["alerts"] if n["status"] == "resolved"
             and a["labels"].get("pid") == str(proc.pid)), None), 30,
            "Alertmanager's resolved notification")
        assert resolved["status"] == "resolved"
        assert instant(resolved["startsAt"]) == pytest.approx(starts, abs=0.002)
        assert starts < instant(resolved["endsAt"]) <= time.time()
        counts = notification_counts(daemon, alertmanager.url)
        assert counts["sent"] >= 2 and counts["failed"] == counts["dropped"] == 0, counts
    finally:
        proc.kill()
        proc.wait()
        daemon.stop()
    assert "cannot send alerts" not in daemon.stderr, daemon.stderr


def test_a_restarted_alertmanager_gets_the_alert_back_from_the_resend(
        tmp_path: Path, alertmanager: Alertmanager) -> None:
    daemon = start_daemon(tmp_path, alertmanager, "1s")
    proc = start_process(tmp_path)
    try:
        first = wait_for(lambda: ours(alertmanager.alerts(), proc.pid), 30,
                         "the alert in Alertmanager")
        alertmanager.stop()
        time.sleep(1.5)  # a resend or two meet no Alertmanager
        alertmanager.start()  # with empty storage: it knows of no alert
        again = wait_for(lambda: ours(alertmanager.alerts(), proc.pid), 15,
                         "the alert back in the restarted Alertmanager")
        assert again["labels"] == first["labels"]
        assert again["startsAt"] == first["startsAt"]  # the same alert, firing since then
    finally:
        proc.kill()
        proc.wait()
        daemon.stop()
