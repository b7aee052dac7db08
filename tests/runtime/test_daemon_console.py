"""A daemon whose stdout nobody reads goes on: the engine, the alerts file, the API and the
stream keep working, the lines the terminal could not take are counted (and told of when it
reads again), and SIGTERM still stops it.  As root with eBPF: an event rule fires on every
exec of a test program, which makes alerts as fast as the test can start programs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from live_support import Api, Daemon, free_port, require_ebpf, wait_for
from support import write

from linnix.api.client import ApiClient, parse_sse

EXECS = 1500  # lines of some 500 bytes: 750 kB, past the pipe (64 kB) and the queue (256 kB)
ARG = "a" * 400
STOP_S = 30  # SIGTERM to exit: a second for the terminal at most, the rest is slack for load


def _spawn(program: str, *args: str) -> int:
    pid = os.posix_spawn(program, [program, *args], {})
    os.waitpid(pid, 0)
    return pid


def _fired(daemon: Daemon) -> list[dict[str, Any]]:
    return [a for a in daemon.alerts() if a.get("type") == "alert" and a.get("rule") == "probe"]


def _dropped(api: Api) -> float:
    """``linnix_console_dropped_lines_total`` of stdout, from /metrics."""
    status, data = api._raw("GET", "/metrics")
    assert status == 200
    for line in data.decode().splitlines():
        name, _, value = line.rpartition(" ")
        if name == 'linnix_console_dropped_lines_total{stream="stdout"}':
            return float(value)
    raise AssertionError("no linnix_console_dropped_lines_total for stdout")


def _next_alert_on_stream(api: Api, probe: Path) -> tuple[int, dict[str, Any]]:
    """Start ``probe`` while following /stream; its pid and its alert as the stream gave it."""
    client = ApiClient(api.base, api.token)
    response = client.open_stream()
    try:
        pid = _spawn(str(probe), "last")
        for event in parse_sse(iter(response.readline, b"")):
            data = event.json()
            if event.event == "alert" and isinstance(data, dict) and data.get("pid") == pid:
                return pid, data
        raise AssertionError("the stream ended before the alert came")
    finally:
        response.close()


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.slow
def test_a_stdout_nobody_reads_stops_neither_alerts_nor_the_api_nor_a_sigterm(
        tmp_path: Path) -> None:
    require_ebpf()
    probe = tmp_path / "lnx-console-probe"  # a program nobody else runs
    shutil.copy("/bin/true", probe)
    rules = write(tmp_path / "rules", {"e.lnx": (
        "rule probe {\n    on exec\n"
        f'    when exe == "{probe}"\n'
        "    max_rate 100000/s\n"  # no cooldown: every exec alerts
        '    message "{exe} ran: {cmdline}"\n}\n')})
    config = tmp_path / "linnix.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n')
    # stdout is a pipe that nobody reads until the daemon has stopped
    daemon = Daemon(tmp_path / "state", "--config", str(config), "--source", "ebpf",
                    rules=[str(rules)])
    try:
        daemon.wait_ready()
        api = Api(tmp_path / "state")
        wait_for(lambda: api.get("/health"), 10, "the API")
        for i in range(EXECS):
            _spawn(str(probe), str(i), ARG)
        # the old daemon stopped at its first write to the full pipe, and with it the engine
        wait_for(lambda: len(_fired(daemon)) >= EXECS, 120, f"{EXECS} alerts")
        assert api.get("/healthz")["status"] == "ok"
        assert _dropped(api) > 0  # so the pipe is full
        pid, alert = _next_alert_on_stream(api, probe)
        assert (alert["rule"], alert["state"]) == ("probe", "firing")
        wait_for(lambda: [a for a in _fired(daemon) if a["pid"] == pid], 30, "its record")
        assert api.metrics()["linnix_lost_events_total"] == 0
    finally:
        took = daemon.stop(timeout=STOP_S)  # the pipe is as full as ever: nobody read it
    assert daemon.proc.returncode == 0, daemon.stderr  # neither killed nor aborted
    assert took < STOP_S
    assert len(_fired(daemon)) == EXECS + 1
    assert "linnix: stopped after " in daemon.stderr  # stderr had room: its last line came
    assert "Traceback" not in daemon.stderr
    shown = daemon.stdout.split("\n")[:-1]  # the first 64 kB, then nothing: whole lines
    assert shown and all(" FIRING   probe " in line for line in shown)
