"""Actions through the real daemon: restart safety, refusals, and approval over HTTP.

Each test runs ``linnix run`` (eBPF source, monitor mode) with its own state
directory and API port, and talks to it only over HTTP with the token from the
state directory.  Targets are Python processes started by the test that name
themselves ``lnx-target`` with prctl(PR_SET_NAME) once the daemon watches: the
daemon learns the new name from the rename event.  Needs root and eBPF: skipped
with the reason otherwise, mandatory in CI as root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import live_support
import pytest
from live_support import ROOT, Daemon, free_port, require_ebpf, wait_for

from linnix.procfs import list_pids, read_stat

pytestmark = [pytest.mark.root, pytest.mark.ebpf, pytest.mark.slow]


TARGET_RULE = """
rule target_found {
    when comm == "lnx-target"
    severity critical
    action kill(grace = 2s)
}
"""

# argv: "honour" (SIGTERM ends it) or "ignore"
TARGET = r"""
import ctypes, os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN if sys.argv[1] == "ignore" else signal.SIG_DFL)
ctypes.CDLL(None).prctl(15, b"lnx-target", 0, 0, 0)
print(os.getpid(), flush=True)
while True:
    time.sleep(60)
"""

FINAL = {"succeeded", "failed", "rejected", "expired", "refused", "recorded"}


# ---- helpers --------------------------------------------------------------------------------

def alive(pid: int) -> bool:
    """Running, as opposed to gone or exited and waiting to be reaped."""
    st = read_stat(pid)
    return st is not None and not st.exited


def kernel_thread() -> tuple[int, str] | None:
    """A kernel thread (not kthreadd itself) whose name no other process has."""
    names: dict[str, list[int]] = {}
    threads: list[tuple[int, str]] = []
    for st in filter(None, map(read_stat, list_pids())):
        names.setdefault(st.comm, []).append(st.pid)
        if st.pid > 2 and st.ppid == 2 and st.kernel_thread \
                and re.fullmatch(r"[a-z_]+", st.comm):
            threads.append((st.pid, st.comm))
    return next(((pid, comm) for pid, comm in threads if len(names[comm]) == 1), None)


class Api(live_support.Api):
    """The daemon's API, with the actions' helpers."""

    def actions(self, **query: str) -> list[dict[str, Any]]:
        args = "&".join(f"{k}={v}" for k, v in {"limit": "500", **query}.items())
        return list(self.get(f"/actions?{args}")["actions"])

    def action(self, action_id: int) -> dict[str, Any]:
        return dict(self.get(f"/actions/{action_id}"))

    def settle(self, action_id: int, timeout: float = 30.0) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            row = self.action(action_id)
            return row if row["status"] in FINAL else None

        return wait_for(final, timeout, f"action {action_id} to finish")

    def pending_for(self, pid: int, timeout: float = 30.0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((a for a in self.actions(status="pending") if a["pid"] == pid), None)

        return wait_for(find, timeout, f"a pending action for pid {pid}")


class Lab:
    """Daemons, targets and workloads of one test; all stopped at its end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state = tmp / "state"
        self.daemons: list[Daemon] = []
        self.children: list[subprocess.Popen[str]] = []
        self.demos: list[subprocess.Popen[str]] = []

    def rules(self, text: str) -> str:
        directory = self.tmp / "rules"
        directory.mkdir(exist_ok=True)
        (directory / "test.lnx").write_text(text)
        return str(directory)

    def start(self, rules: str | None = None, protected: list[str] | None = None) -> Api:
        """Start a daemon on the state directory and wait until its API answers."""
        config = self.tmp / "linnix.toml"
        text = f'[api]\nbind = "127.0.0.1:{free_port()}"\n'
        if protected is not None:
            text += f"[actions]\nprotected = {json.dumps(protected)}\n"
        config.write_text(text)
        with contextlib.suppress(FileNotFoundError):
            (self.state / "daemon.json").unlink()  # written anew once the daemon is ready
        daemon = Daemon(self.state, "--source", "ebpf", "--config", str(config),
                        rules=None if rules is None else [rules])
        self.daemons.append(daemon)
        daemon.wait_ready()
        api = Api(self.state)
        wait_for(lambda: api.get("/health"), 10, "the API")
        return api

    def target(self, mode: str = "honour") -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, "-c", TARGET, mode], stdout=subprocess.PIPE,
                             text=True)
        self.children.append(p)
        assert p.stdout is not None
        assert int(p.stdout.readline()) == p.pid
        return p

    def close(self) -> None:
        for p in self.demos:  # SIGTERM: the demo stops its whole workload
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.communicate(timeout=30)
        for p in self.children:
            if p.poll() is None:
                p.kill()
            p.communicate()
        for d in self.daemons:
            d.stop()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require_ebpf()
    lab = Lab(tmp_path)
    yield lab
    lab.close()


# ---- restart --------------------------------------------------------------------------------

def test_a_sigkilled_daemon_keeps_its_pending_action_and_incident(lab: Lab) -> None:
    rules = lab.rules(TARGET_RULE)
    api = lab.start(rules)
    target = lab.target()
    action = api.pending_for(target.pid)
    assert (action["rule"], action["kind"], action["comm"]) == ("target_found", "kill",
                                                                "lnx-target")
    assert action["params"] == {"grace_s": 2.0}
    incident = api.get(f"/incidents/{action['incident_id']}")
    assert incident["resolved_at"] is None
    assert incident["subtree"][0]["pid"] == target.pid
    assert [a["id"] for a in incident["actions"]] == [action["id"]]
    before = api.audit()
    assert {"daemon.started", "incident.opened", "action.proposed"} <= {
        e["event"] for e in before}

    wait_for(lambda: b"target_found" in saved_rule_state(lab.state), 10,
             "the rule state to be saved")  # after the transition, not at shutdown
    first = lab.daemons[0]
    first.signal(signal.SIGKILL)
    first.proc.wait(10)
    assert first.proc.returncode == -signal.SIGKILL
    assert target.poll() is None  # the daemon's end is not the target's

    api = lab.start(rules)
    row = api.action(action["id"])
    assert row["status"] == "pending"
    assert (row["created_at"], row["expires_at"]) == (action["created_at"],
                                                      action["expires_at"])
    kept = api.get(f"/incidents/{action['incident_id']}")  # the instance is still firing
    assert (kept["resolved_at"], kept["resolved_reason"]) == (None, None)
    assert kept["subtree"] == incident["subtree"] and kept["history"] == incident["history"]

    after = api.audit()
    by_id = {e["id"]: e for e in after}
    for entry in before:
        assert by_id.get(entry["id"]) == entry  # every entry from before, unchanged
    newer = [e for e in reversed(after) if e["id"] > max(x["id"] for x in before)]
    restart = [e for e in newer if e["event"] == "daemon.started"]
    assert len(restart) == 1 and restart[0]["detail"]["kept_incidents"] == 1
    assert not [e for e in newer if e["event"] == "incident.resolved"
                and e["incident_id"] == action["incident_id"]]

    status, body = api.post(f"/actions/{action['id']}/approve",
                            {"approver": "alice", "reason": "after the restart"})
    assert status == 200, body
    final = api.settle(action["id"])
    assert final["status"] == "succeeded", final
    assert final["decided_by"] == "admin"  # the token's name; "alice" is a note
    assert final["result"]["detail"] == (f"SIGTERM sent: lnx-target[{target.pid}]; 1 exited "
                                         "within the 2s grace")
    assert target.wait(10) == -signal.SIGTERM
    approvals = [e for e in api.audit(action=str(action["id"]))
                 if e["event"] == "action.approved"]
    assert [(e["actor"], e["detail"]) for e in approvals] == [
        ("admin", {"reason": "after the restart"})]
    closed = wait_for(lambda: (row := api.get(f"/incidents/{action['incident_id']}"))
                      ["resolved_at"] and row, 30, "the incident to resolve")
    assert closed["resolved_reason"] == "exited"  # its process ended: the same incident


def saved_rule_state(state: Path) -> bytes:
    """The rule state the daemon saved last (read-only, beside the running daemon)."""
    try:
        db = sqlite3.connect(f"file:{state / 'linnix.db'}?mode=ro", uri=True)
    except sqlite3.Error:
        return b""
    try:
        row = db.execute("SELECT data FROM rule_state").fetchone()
    except sqlite3.Error:
        return b""
    finally:
        db.close()
    return bytes(row[0]) if row is not None else b""


# ---- identity between proposal and approval -------------------------------------------------

def test_a_target_that_exits_before_approval_expires(lab: Lab) -> None:
    api = lab.start(lab.rules(TARGET_RULE))
    target = lab.target("ignore")
    action = api.pending_for(target.pid)
    target.kill()
    target.wait()
    final = api.settle(action["id"])  # nobody has to decide about a process that is gone
    assert final["status"] == "expired"
    assert final["reason"] == "the target process exited before anyone decided"
    expiry = [e for e in api.audit(action=str(action["id"])) if e["event"] == "action.expired"]
    assert [(e["actor"], e["detail"]) for e in expiry] == [
        ("linnix", {"reason": "the target process exited before anyone decided"})]
    status, body = api.post(f"/actions/{action['id']}/approve",
                            {"approver": "alice", "reason": "too late"})
    assert status == 409 and body["status"] == "expired"
    # the daemon answers to this host's own name, not to a name it was never given
    port = api.base.rsplit(":", 1)[1]
    assert api._call("GET", "/health", host=f"{socket.gethostname()}:{port}")[0] == 200
    status, body = api._call("GET", "/actions", host=f"rebound.example:{port}")
    assert status == 421 and body["error"] == "misdirected_request"


# ---- refusals at proposal -------------------------------------------------------------------

def test_protected_and_kernel_targets_are_refused_at_proposal(lab: Lab) -> None:
    kthread = kernel_thread()
    rules = TARGET_RULE + """
rule kthreadd_found {
    when comm == "kthreadd"
    severity critical
    action kill
}
"""
    if kthread is not None:
        rules += f"""
rule kthread_found {{
    when comm == "{kthread[1]}"
    severity critical
    action kill
}}
"""
    api = lab.start(lab.rules(rules), protected=["lnx-target"])
    target = lab.target()
    expected = {
        "target_found": (target.pid, "'lnx-target' is on the protected list"),
        "kthreadd_found": (2, "pid 2 is never touched (init or the kernel's thread parent)"),
    }
    if kthread is not None:
        expected["kthread_found"] = (kthread[0], f"{kthread[1]}[{kthread[0]}] is a kernel thread")

    def refused() -> dict[str, dict[str, Any]] | None:
        rows = {a["rule"]: a for a in api.actions(status="refused")}
        return rows if set(expected) <= set(rows) else None

    rows = wait_for(refused, 30, f"refusals for {sorted(expected)}")
    for rule, (pid, reason) in expected.items():
        row = api.action(rows[rule]["id"])  # as the API shows one action
        assert (row["pid"], row["status"], row["reason"]) == (pid, "refused", reason), row
        assert row["expires_at"] is None and row["decided_by"] is None
        status, body = api.post(f"/actions/{row['id']}/approve",
                                {"approver": "alice", "reason": "test"})
        assert status == 409 and body["status"] == "refused", body
        assert "a safety guard refused it" in body["detail"]
        audit = [e for e in api.audit(action=str(row["id"])) if e["event"] == "action.refused"]
        assert [e["detail"] for e in audit] == [{"reason": reason, "at": "proposal"}]
    assert api.actions(status="pending") == []
    assert alive(target.pid) and alive(2)
    if kthread is not None:
        assert alive(kthread[0])


# ---- the whole flow, with a demo workload ---------------------------------------------------

def demo_processes() -> list[int]:
    """Running processes of any ``linnix demo`` workload (named lnx-...)."""
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if alive(pid) and (open_comm(pid) or "").startswith("lnx-")]


def test_approving_kill_tree_ends_the_runaway_tree_demo(lab: Lab) -> None:
    # the tree must get its CPU: let any other demo workload on the host end first
    wait_for(lambda: not demo_processes(), 90, "other demo workloads to end")
    api = lab.start()  # the shipped rules
    demo = subprocess.Popen([sys.executable, "-m", "linnix", "demo", "runaway-tree"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(ROOT))
    lab.demos.append(demo)

    def proposal() -> dict[str, Any] | None:
        return next((a for a in api.actions(status="pending")
                     if a["kind"] == "kill_tree" and a["comm"] == "lnx-runaway"), None)

    # the rule needs a minute's averages, then 15 s (runaway_tree in rules/)
    action = wait_for(proposal, 120, "kill_tree to be proposed for lnx-runaway")
    assert action["rule"] == "runaway_tree"
    incident = api.get(f"/incidents/{action['incident_id']}")
    tree = [p["pid"] for p in incident["subtree"]]
    workers = os.cpu_count() or 1  # the demo starts one per CPU
    assert tree[0] == action["pid"] and len(tree) == 1 + workers
    assert {p["comm"] for p in incident["subtree"]} == {"lnx-runaway"}
    assert all(alive(pid) for pid in tree)

    status, body = api.post(f"/actions/{action['id']}/approve",
                            {"approver": "alice", "reason": "test"})
    assert status == 200, body
    final = api.settle(action["id"])
    assert final["status"] == "succeeded", final
    assert final["result"]["detail"].startswith("SIGTERM sent: ")
    assert f"{1 + workers} exited within the 5s grace" in final["result"]["detail"]
    for pid in tree:
        assert f"lnx-runaway[{pid}]" in final["result"]["detail"]
        assert not alive(pid)

    out, err = demo.communicate(timeout=60)
    assert demo.returncode == 0, err
    assert "stopped early" in out  # the workload did not just reach its own end
    assert [pid for pid in demo_processes() if open_comm(pid) == "lnx-runaway"] == []

    approvals = [e for e in api.audit() if e["event"] == "action.approved"
                 and e["action_id"] == action["id"]]
    assert [(e["actor"], e["detail"]) for e in approvals] == [("admin", {"reason": "test"})]


def open_comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None
