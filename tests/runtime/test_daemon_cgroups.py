"""As root: a cgroup rule fires through the daemon for a busy cgroup it samples live, and
``linnix record`` writes the samples of the cgroups of the processes it records."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cgroups_support import fresh_cgroup
from live_support import Daemon, outline
from support import run_linnix

from linnix.engine import trace as t
from linnix.engine.trace import read_trace

pytestmark = pytest.mark.slow


def _firing(daemon: Daemon, path: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for a in daemon.alerts():
            if a.get("rule") == "cg_busy" and a.get("state") == "firing" \
                    and a["labels"].get("cgroup") == path:
                return a
        time.sleep(0.2)
    raise AssertionError(f"cg_busy never fired for {path}: {outline(daemon.alerts())}")


def test_a_busy_cgroup_fires_a_cgroup_rule_with_its_labels(tmp_path: Path) -> None:
    with fresh_cgroup("cgrule.service") as group:  # named as a unit, to be labelled as one
        path = "/" + group.name
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            (group / "cgroup.procs").write_text(str(busy.pid))  # before the daemon's scan
            rules = tmp_path / "cg.lnx"
            rules.write_text(f'rule cg_busy {{\n    when cg_cpu_pct > 50% and cgroup == "{path}"'
                             " for 2s\n    severity warning\n}\n")
            daemon = Daemon(tmp_path / "state", "--source", "poll", rules=[str(rules)])
            try:
                daemon.wait_ready()
                alert = _firing(daemon, path, timeout=45)
            finally:
                daemon.stop()
        finally:
            busy.kill()
            busy.wait()
    assert alert["scope"] == "cgroup" and alert["pid"] is None
    assert alert["labels"]["cgroup"] == path and alert["cgroup"] == path
    assert alert["labels"]["unit"] == group.name
    assert "container" not in alert["labels"]  # none: no label, never an empty one
    assert alert["values"]["cg_cpu_pct"] > 50


def test_record_writes_the_samples_of_the_cgroups_of_live_processes(tmp_path: Path) -> None:
    with fresh_cgroup("record") as group:
        path, inode = "/" + group.name, group.stat().st_ino
        sleeper = subprocess.Popen(["sleep", "60"])
        try:
            (group / "cgroup.procs").write_text(str(sleeper.pid))
            out = tmp_path / "t.jsonl"
            proc = run_linnix("record", str(out), "--duration", "3s", "--source", "poll",
                              "--only-tree", str(sleeper.pid))
        finally:
            sleeper.kill()
            sleeper.wait()
    assert proc.returncode == 0, proc.stderr
    _, events = read_trace(str(out))
    mine = [e for e in events if isinstance(e, t.Cgroup) and e.cgroup == path]
    assert len(mine) >= 2, [e for e in events if isinstance(e, t.Cgroup)]
    assert {e.id for e in mine} == {inode}
    assert all(e.procs == 1 for e in mine)
