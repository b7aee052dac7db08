"""The daemon scraped by the real Prometheus (Debian's prometheus) on loopback.

Prometheus scrapes the daemon's ``/metrics`` every second; a rule fires on a
process the test starts, and Prometheus's own query API must show the target
up and ``linnix_alert`` holding the firing alert, with linnix's build and rule
set beside it.  No root needed (the daemon polls /proc).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_support import Api, Daemon, wait_for
from prometheus_support import Service, named_process

from linnix import __version__

COMM = "lnx-prom-test"
RULE = f"""\
rule lnx_prom {{
    when comm == "{COMM}"
    severity critical
}}
"""

pytestmark = pytest.mark.slow


class Prometheus(Service):
    """``prometheus`` scraping one target every second, its storage in the test's
    directory."""

    binary, package, name = "prometheus", "prometheus", "prometheus"

    def __init__(self, tmp: Path, target: str) -> None:
        super().__init__(tmp)
        self.config = tmp / "prometheus.yml"
        self.config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: linnix\n"
            f"    static_configs:\n      - targets: ['{target}']\n")

    def arguments(self, storage: Path) -> list[str]:
        return [f"--config.file={self.config}", f"--storage.tsdb.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.port}"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector: each series' labels and value."""
        answer = self.get(f"/api/v1/query?query={urllib.parse.quote(expr)}")
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    rules = tmp_path / "prom.lnx"
    rules.write_text(RULE)
    running = Daemon(tmp_path / "state", "--source", "poll", rules=[str(rules)])
    running.wait_ready()
    yield running
    running.stop()


@pytest.fixture
def prometheus(tmp_path: Path, daemon: Daemon) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path, Api(daemon.state).base.removeprefix("http://"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_prometheus_scrapes_the_daemon_and_sees_the_alert_fire(
        tmp_path: Path, daemon: Daemon, prometheus: Prometheus) -> None:
    proc = named_process(tmp_path, COMM)
    try:
        up = wait_for(lambda: [s for s in prometheus.query('up{job="linnix"}')
                               if s["value"][1] == "1"], 60, "the daemon's target to be up")
        assert len(up) == 1
        firing = wait_for(lambda: prometheus.query(
            'linnix_alert{alertname="lnx_prom",state="firing"}'), 60,
            "linnix_alert to hold the firing alert")
    finally:
        proc.kill()
        proc.wait()
    (series,) = firing
    assert {k: v for k, v in series["metric"].items() if k not in ("instance",)} == {
        "__name__": "linnix_alert", "job": "linnix", "alertname": "lnx_prom",
        "severity": "critical", "state": "firing", "scope": "process"}
    assert series["value"][1] == "1"  # one process of that name
    (build,) = prometheus.query("linnix_build_info")
    assert build["metric"]["version"] == __version__
    (rules,) = prometheus.query("linnix_rules_info")
    assert rules["metric"]["rules"] == "1" and len(rules["metric"]["hash"]) == 16
