"""Event rules in the running daemon: an alert is emitted as soon as its event is read, not at
the next tick, and its incident is opened and closed at once (reason ``event``)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from live_support import Api, Daemon, free_port, require_ebpf, wait_for
from support import write

TICK_S = 3600  # a tick an hour: an alert that waited for one would never come in the test


@pytest.mark.slow
def test_an_event_rules_alert_reaches_the_alerts_file_and_the_store_without_a_tick(
        tmp_path: Path) -> None:
    require_ebpf()
    probe = tmp_path / "bin" / "lnx-ev-probe"  # a program nobody else runs
    probe.parent.mkdir()
    shutil.copy("/bin/true", probe)
    rules = write(tmp_path / "rules", {"e.lnx": (
        "rule probe {\n    on exec\n"
        f'    when comm == "{probe.name}"\n'  # the comm comes with the exec event itself
        '    message "{comm}[{pid}]: {cmdline}"\n}\n')})
    config = tmp_path / "linnix.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n'
                      f'[telemetry]\ntick = "{TICK_S}s"\n')
    daemon = Daemon(tmp_path / "state", "--config", str(config), rules=[str(rules)])
    daemon.wait_ready()
    try:
        api = Api(tmp_path / "state")
        wait_for(lambda: api.get("/health"), 10, "the API")
        before = daemon.now()
        subprocess.run([str(probe), "--flag"], check=True, timeout=10)
        started = time.monotonic()
        alert = daemon.wait_alert("probe", "firing", before, timeout=30)
        assert time.monotonic() - started < TICK_S
        assert (alert["trigger"], alert["comm"]) == ("exec", "lnx-ev-probe")
        assert before <= alert["ts"] < before + 30  # the exec's own time
        assert api.metrics()["linnix_ticks_total"] <= 1  # the one at the start, no other
        incident = wait_for(lambda: next(
            (i for i in api.get("/incidents")["incidents"]
             if i["rule"] == "probe" and i["resolved_at"] is not None), None), 30,
            "the event's incident")
        assert (incident["pid"], incident["resolved_reason"]) == (alert["pid"], "event")
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.stderr
