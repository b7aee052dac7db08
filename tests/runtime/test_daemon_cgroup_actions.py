"""As root, the whole cgroup response in the real daemon: a ``scope cgroup`` rule fires
for a busy loop in a fresh cgroup, its ``freeze`` holds the cgroup (without approval only
when ``[actions] auto`` lists it), its ``kill_cgroup`` waits for a decision over the API,
and every freeze is thawed when the decision is made, or when a daemon that was SIGKILLed
while holding one starts again on the same state directory."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cgroups_support import fresh_cgroup
from live_support import Api, Daemon, free_port, wait_for

from linnix.procfs import HZ

pytestmark = [pytest.mark.root, pytest.mark.slow]

RULE = "cg_hog"


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def freeze_file(group: Path) -> str:
    return (group / "cgroup.freeze").read_text().strip()


def stopped(group: Path, pid: int) -> None:
    """The cgroup is frozen and its loop uses no CPU time."""
    wait_for(lambda: "frozen 1" in (group / "cgroup.events").read_text().splitlines(),
             10, "the cgroup to be frozen")
    assert freeze_file(group) == "1"
    at = cpu_ticks(pid)
    time.sleep(0.3)  # a running loop would use about 30 ticks of it
    assert cpu_ticks(pid) == at


def runs(group: Path, pid: int) -> None:
    """The cgroup is thawed and its loop uses CPU time again."""
    assert freeze_file(group) == "0"
    at = cpu_ticks(pid)
    wait_for(lambda: cpu_ticks(pid) > at + HZ // 10, 10, "the loop to run again")


@contextmanager
def hog(name: str) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A busy loop in a fresh cgroup named like a unit; killed and removed afterwards."""
    with fresh_cgroup(name) as group:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            (group / "cgroup.procs").write_text(str(busy.pid))
            yield group, busy
        finally:
            busy.kill()
            busy.wait()


def start(tmp_path: Path, group: Path, auto: bool) -> Daemon:
    """The daemon in monitor mode with one rule that freezes, then kills, the busy cgroup."""
    rules = tmp_path / "cg.lnx"
    rules.write_text(f'rule {RULE} {{\n    when cg_cpu_pct > 50% and cgroup == "/{group.name}"'
                     " for 2s\n    severity critical\n    action freeze\n"
                     "    action kill_cgroup\n}\n")
    kinds = '["freeze"]' if auto else "[]"
    config = tmp_path / "linnix.toml"
    config.write_text(f'[runtime]\nmode = "monitor"\n[api]\nbind = "127.0.0.1:{free_port()}"\n'
                      '[telemetry]\nsample_interval = "0.5s"\ntick = "0.25s"\n'
                      f"[actions]\nauto = {kinds}\n")
    return Daemon(tmp_path / "state", "--source", "poll", "--config", str(config),
                  rules=[str(rules)])


def proposals(api: Api) -> dict[str, dict[str, Any]]:
    """The rule's actions by kind (the newest of each)."""
    found: dict[str, dict[str, Any]] = {}
    for row in reversed(api.get("/actions?limit=100")["actions"]):
        if row["rule"] == RULE:
            found[row["kind"]] = row
    return found


def both(api: Api) -> dict[str, dict[str, Any]] | None:
    rows = proposals(api)
    return rows if {"freeze", "kill_cgroup"} <= rows.keys() else None


def status(api: Api, action_id: int, want: str) -> dict[str, Any]:
    """The action once its status is ``want``; fails with the row as it is after 15 s."""
    deadline = time.monotonic() + 15
    while (row := api.get(f"/actions/{action_id}"))["status"] != want:
        assert time.monotonic() < deadline, (want, row, api.audit(action=str(action_id)))
        time.sleep(0.1)
    return dict(row)


def thawed(api: Api, action_id: int) -> dict[str, Any]:
    """The detail of the audit record of the thaw of the freeze ``action_id``."""
    def find() -> dict[str, Any] | None:
        return next((r for r in api.audit(action=str(action_id))
                     if r["event"] == "action.thawed"), None)
    return dict(wait_for(find, 15, f"the thaw of action {action_id}")["detail"])


def test_auto_freeze_holds_the_cgroup_and_an_approved_kill_empties_it(tmp_path: Path) -> None:
    with hog("cgauto-hog.service") as (group, busy):
        daemon = start(tmp_path, group, auto=True)
        try:
            daemon.wait_ready()
            api = Api(daemon.state)
            rows = wait_for(lambda: both(api), 45, "the freeze and the kill proposals")
            freeze, kill = rows["freeze"], rows["kill_cgroup"]
            status(api, freeze["id"], "succeeded")  # without approval: auto lists it
            stopped(group, busy.pid)
            assert kill["status"] == "pending" and kill["cgroup"] == f"/{group.name}"
            code, body = api.post(f"/actions/{kill['id']}/approve", {})
            assert code == 200, body
            status(api, kill["id"], "succeeded")
            busy.wait(timeout=15)
            assert (group / "cgroup.procs").read_text().split() == []
            why = thawed(api, freeze["id"])
            assert why["reason"] == f"the paired kill_cgroup (action {kill['id']}) succeeded"
            assert freeze_file(group) == "0"
        finally:
            daemon.stop()
    assert busy.returncode is not None and busy.returncode < 0  # killed by a signal


def test_without_auto_both_wait_and_a_rejected_kill_leaves_it_running(tmp_path: Path) -> None:
    with hog("cgask-hog.service") as (group, busy):
        daemon = start(tmp_path, group, auto=False)
        try:
            daemon.wait_ready()
            api = Api(daemon.state)
            rows = wait_for(lambda: both(api), 45, "the freeze and the kill proposals")
            assert rows["freeze"]["status"] == "pending"
            assert rows["kill_cgroup"]["status"] == "pending"
            assert rows["kill_cgroup"]["cgroup"] == f"/{group.name}"
            runs(group, busy.pid)  # nothing ran without approval
            code, body = api.post(f"/actions/{rows['kill_cgroup']['id']}/reject", {})
            assert code == 200, body
            status(api, rows["kill_cgroup"]["id"], "rejected")
            status(api, rows["freeze"]["id"], "expired")  # never outlives the decision
            assert busy.poll() is None
            runs(group, busy.pid)
        finally:
            daemon.stop()


def test_a_freeze_held_by_a_sigkilled_daemon_is_thawed_when_it_starts(tmp_path: Path) -> None:
    with hog("cgcrash-hog.service") as (group, busy):
        daemon = start(tmp_path, group, auto=True)
        try:
            daemon.wait_ready()
            api = Api(daemon.state)
            rows = wait_for(lambda: both(api), 45, "the freeze and the kill proposals")
            status(api, rows["freeze"]["id"], "succeeded")
            stopped(group, busy.pid)
        finally:
            daemon.proc.kill()  # SIGKILL: no chance to thaw on the way out
            daemon.collect()
        stopped(group, busy.pid)  # the freeze outlives the agent that made it
        (daemon.state / "daemon.json").unlink(missing_ok=True)  # else ready at once
        restarted = start(tmp_path, group, auto=False)  # no auto: it must not freeze again
        try:
            restarted.wait_ready()
            why = thawed(Api(restarted.state), rows["freeze"]["id"])
            assert why["reason"].startswith("thawed at start"), why
            runs(group, busy.pid)
        finally:
            restarted.stop()
