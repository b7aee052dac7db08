"""``linnix run`` with every action paused: the console's lines, /health, the gauge, and
a pause kept across a restart until ``linnix actions resume`` (the /proc polling source:
no root needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from live_support import Api, Daemon, wait_for
from support import run_linnix, write

pytestmark = pytest.mark.slow

PAUSED = re.compile(r"^\S+ PAUSED   actions: every action is paused by admin until \S+: "
                    r"maintenance window \(linnix actions resume\)$", re.M)


def started(state: Path, rules: Path) -> tuple[Daemon, Api]:
    daemon = Daemon(state, "--source", "poll", rules=[str(rules)])
    daemon.wait_ready()
    api = Api(state)
    wait_for(lambda: api.get("/health"), 10, "the API")
    return daemon, api


def test_a_pause_is_shown_and_kept_across_a_restart(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 5000\n"})
    state = tmp_path / "state"
    daemon, api = started(state, rules)
    try:
        assert api.metrics()["linnix_actions_paused"] == 0
        status, body = api.post("/actions/pause", {"reason": "maintenance window",
                                                   "for": "1h"})
        assert status == 200, body
        assert api.get("/health") == {"status": "ok", **body}
        assert api.metrics()["linnix_actions_paused"] == 1
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.stderr
    assert len(PAUSED.findall(daemon.stdout)) == 1, daemon.stdout
    assert (state / "actions-paused.json").exists()

    (state / "daemon.json").unlink()  # written anew once the next daemon is ready
    again, api = started(state, rules)
    try:
        assert api.get("/health") == {"status": "ok", **body}  # the same pause
        assert api.metrics()["linnix_actions_paused"] == 1
        done = run_linnix("actions", "resume", "--reason", "done", "--api", api.base,
                          "--state-dir", str(state))
        assert done.returncode == 0, done.stderr
        assert api.get("/health") == {"status": "ok", "actions": "active"}
        assert api.metrics()["linnix_actions_paused"] == 0
        audited = [(r["actor"], r["event"]) for r in reversed(api.audit())
                   if r["event"].startswith("actions.")]
    finally:
        again.stop()
    assert again.proc.returncode == 0, again.stderr
    assert "in monitor mode; every action is paused; API on" in again.stderr
    assert len(PAUSED.findall(again.stdout)) == 1, again.stdout  # said again at start
    assert re.search(r"^\S+ RESUMED  actions: resumed by admin: done$", again.stdout, re.M)
    assert not (state / "actions-paused.json").exists()
    assert audited == [("admin", "actions.paused"), ("admin", "actions.resumed")]
