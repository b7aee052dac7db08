"""Regenerates linnix-schema2.db: a state database as release 0.1.0 (schema version 2) leaves it.

tests/actions/test_database_release.py opens a copy of that file with the current code
and checks that everything in it is still there and usable.  The file stands for what
that release wrote on real hosts, so it stays at schema version 2 for good, whatever the
current version: regenerate it only with a linnix whose SCHEMA_VERSION is 2 (this script
refuses any other), e.g. from a checkout of that release::

    PYTHONPATH=/path/to/linnix-0.1.0 python tests/actions/data/make_schema2.py

It writes through the store what a day of the daemon would: starts, incidents opened
and resolved (one left open, as a SIGKILLed daemon leaves it), actions in every final
status and one still pending that repeated, a person's decisions and notes, a rules
reload, and an hourly retention pass that trimmed the oldest audit records (so the
chain starts from an anchor).  Times come from a fixed clock, so the content is the
same at every run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from linnix.actions.database import SCHEMA_VERSION
from linnix.actions.store import Entry, Store

HERE = Path(__file__).resolve().parent
OUT = HERE / "linnix-schema2.db"
T0 = 1_733_486_400.0  # 2024-12-06 12:00 UTC


class Clock:
    """Wall time that moves only when told to."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def step(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def _incident(store: Store, rule: str, severity: str, scope: str, pid: int | None,
              comm: str | None, message: str, values: dict[str, Any]) -> int:
    now = store.clock()
    return store.open_incident(
        rule=rule, severity=severity, scope=scope, pid=pid, comm=comm,
        start=None if pid is None else 1234.5, message=message, labels={"team": "infra"},
        history=[{"ts": 40.0 + i, "values": values} for i in range(3)],
        subtree=[] if pid is None else [
            {"pid": pid, "ppid": 1, "comm": comm, "depth": 0, "cpu_pct": 97.5,
             "rss_bytes": 104_857_600, "cmdline": f"/usr/bin/{comm} --work"}],
        host={"ts": now, "cpu_pct": 91.0, "mem_used_pct": 42.0, "procs": 312, "ncpu": 2})


def _propose(store: Store, incident: int | None, rule: str, kind: str, pid: int,
             comm: str, params: dict[str, Any], mode: str = "monitor",
             refusal: str | None = None) -> int:
    audit = [Entry("linnix", "action.proposed",
                   {"rule": rule, "kind": kind, "pid": pid, "mode": mode}, incident)]
    if refusal:
        audit.append(Entry("linnix", "action.refused", {"reason": refusal, "at": "proposal"}))
    return store.add_action(
        incident_id=incident, rule=rule, kind=kind, params=params, pid=pid,
        start_ticks=123_450 + pid, comm=comm, exe=f"/usr/bin/{comm}",
        status="refused" if refusal else "pending", mode=mode,
        expires_at=None if refusal else store.clock() + 300.0, reason=refusal, audit=audit)


def _finish(store: Store, action: int, expect: str, status: str, reason: str,
            actor: str = "linnix") -> None:
    fields: dict[str, Any] = {"finished_at": store.clock()}
    if status in ("rejected", "expired"):
        fields.update(decided_by=actor, decided_at=store.clock(), reason=reason)
    else:
        fields["result"] = {"detail": reason}
    assert store.transition(action, expect, status,
                            audit=Entry(actor, f"action.{status}", {"reason": reason}),
                            **fields)


def _approve(store: Store, action: int, who: str, reason: str | None) -> None:
    assert store.transition(action, "pending", "approved",
                            audit=Entry(who, "action.approved", {"reason": reason}),
                            decided_by=who, decided_at=store.clock(), reason=reason)


def fill(store: Store, clock: Clock) -> None:
    """A day of the daemon, in the order it would write it."""
    store.audit("linnix", "daemon.started", mode="monitor", pid=4100, closed_incidents=0)
    storm = _incident(store, "fork_storm", "critical", "system", None, None,
                      "fork storm: 323 processes alive, 80 created in the last second",
                      {"forks_per_sec": 80, "ncpu": 2})
    clock.step(1)
    kill = _propose(store, storm, "fork_storm", "kill", 2000, "forker", {"grace_s": 2.0})
    clock.step(20)
    _approve(store, kill, "alice", "a fork bomb in a test job")
    assert store.transition(kill, "approved", "executing")
    clock.step(2)
    _finish(store, kill, "executing", "succeeded", "SIGTERM sent to forker[2000]; it exited")
    clock.step(30)
    store.resolve_incident(storm, "cleared")

    clock.step(600)
    tree = _incident(store, "runaway_tree", "critical", "subtree", 3100, "make",
                     "make[3100] and 6 descendants kept 190% CPU busy",
                     {"subtree_cpu_pct": 190.0})
    kill_tree = _propose(store, tree, "runaway_tree", "kill_tree", 3100, "make", {})
    clock.step(45)
    store.audit("bob", "action.note", action_id=kill_tree, note="a release build; leave it")
    _finish(store, kill_tree, "pending", "rejected", "a release build", actor="bob")
    clock.step(300)
    store.resolve_incident(tree, "cleared")

    clock.step(900)
    leak = _incident(store, "memory_leak", "warning", "process", 3300, "java",
                     "java[3300] grew 2.1% of memory in 30s", {"rss_growth_pct": 2.1})
    expired = _propose(store, leak, "memory_leak", "kill", 3300, "java", {"grace_s": 5.0})
    clock.step(12)
    _finish(store, expired, "pending", "expired",
            "the target process exited before anyone decided")
    store.resolve_incident(leak, "process exited")

    clock.step(1200)
    breaker = _incident(store, "circuit_breaker", "critical", "system", None, None,
                        "host CPU 97% with CPU pressure 63%", {"cpu_pct": 97.0})
    _propose(store, breaker, "circuit_breaker", "kill", 22, "sshd", {"grace_s": 2.0},
             refusal="sshd is protected (actions.protected_names)")
    failed = _propose(store, breaker, "circuit_breaker", "renice", 3500, "encoder",
                      {"nice": 10}, mode="enforce")
    _approve(store, failed, "linnix", None)
    assert store.transition(failed, "approved", "executing")
    _finish(store, failed, "executing", "failed", "renice failed: Operation not permitted")
    store.add_action(incident_id=breaker, rule="circuit_breaker", kind="analyze", params={},
                     pid=None, start_ticks=None, comm=None, exe=None, status="recorded",
                     mode="monitor", expires_at=None,
                     reason="recorded for analysis; nothing is executed",
                     audit=[Entry("linnix", "action.recorded",
                                  {"rule": "circuit_breaker", "kind": "analyze"}, breaker)])
    clock.step(120)
    store.resolve_incident(breaker, "cleared")

    clock.step(3600)
    trimmed = store.retain(max_age=30 * 86400.0, max_incidents=10_000, max_audit=20)  # hourly
    assert trimmed == {"incidents": 0, "actions": 0, "audit": 3}, trimmed
    store.audit("alice", "rules.reload", accepted=True, paths=["/etc/linnix/rules"], rules=7,
                errors=0, warnings=0, diagnostics=0, reason=None)

    clock.step(1800)
    spike = _incident(store, "cpu_spike", "warning", "process", 3700, "python3",
                      "python3[3700] used 99% of a CPU for a minute", {"cpu_pct": 99.0})
    pending = _propose(store, spike, "cpu_spike", "signal", 3700, "python3", {"signal": 19})
    for _ in range(2):
        clock.step(30)
        assert store.repeat_action(pending, Entry(
            "linnix", "action.repeated", {"rule": "cpu_spike", "kind": "signal"}, spike))
    # and here the daemon was SIGKILLed: the incident open, the action pending


def main() -> int:
    if SCHEMA_VERSION != 2:
        sys.stderr.write(f"make_schema2: this linnix writes schema version {SCHEMA_VERSION}; "
                         "the file must be made by one that writes version 2\n")
        return 1
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    for stale in (out, Path(f"{out}-wal"), Path(f"{out}-shm")):
        stale.unlink(missing_ok=True)
    clock = Clock()
    store = Store(str(out), clock=clock)
    try:
        fill(store, clock)
        assert store.verify_chain().holds
    finally:
        store.close()  # the last connection: the WAL is checkpointed into the file
    os.chmod(out, 0o644)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
