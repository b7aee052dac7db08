"""The responder: engine outputs become incidents (with their snapshots) and actions.

The engine runs on virtual time over trace events; its outputs go to a real
Responder with a real ActionManager (monitor mode) and a store on a file.  The
guards read a fake /proc that holds the same pids as the trace, so proposals
identify their targets.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from actions_support import InlineStore, inline_argv0, only_incident
from engine_support import execve, exit_, fork, proc, sample, system
from proc_support import FakeProc

from linnix.actions import ActionManager, ActionPolicy, Guards
from linnix.actions.manager import CgroupTarget
from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.engine.evaluator import Alert, Proposal
from linnix.language.pipeline import compile_text
from linnix.plan import CompiledAction
from linnix.procfs import HZ, Clock
from linnix.runtime.responder import SNAPSHOT_MAX, Responder, process_json, subtree_snapshot
from linnix.runtime.view import History

RULES = """
rule hot {
    when cpu_pct > 50 for 2s
    severity critical
    labels { team = "infra" }
    message "{comm}[{pid}] burns {cpu_pct:.0f}%"
    action kill(grace = 1s)
}

rule busy_host {
    when host_cpu_pct > 90
    severity warning
    action kill(target = top(cpu_pct))
    action signal(SIGSTOP, target = top(fds))
}
"""

HOST_KEYS = {"cpu_pct", "ncpu", "mem_total_mb", "mem_available_mb", "mem_used_pct",
             "psi_cpu_some", "psi_mem_some", "psi_mem_full", "psi_io_some", "psi_io_full",
             "procs", "forks_per_sec", "lost_events"}
PROCESS_KEYS = {"pid", "ppid", "comm", "exe", "cmdline", "uid", "user", "cgroup", "unit",
                "container", "start", "age_s", "cpu_pct", "rss_mb", "fds", "fd_limit",
                "fd_pct", "threads", "children", "depth",
                "subtree_cpu_pct", "subtree_rss_mb", "subtree_fds", "subtree_procs"}


class Rig:
    """Engine -> Responder -> ActionManager -> Store, driven by hand."""

    def __init__(self, astore: InlineStore, fake: FakeProc, rules: str = RULES) -> None:
        self.core = Core(compile_text(rules), 0.5, history=True)
        self.store = astore.store
        self.astore = astore
        guards = Guards(frozenset(), frozenset(), own=set(), root=fake.path)
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.manager = ActionManager(self.astore, guards, ActionPolicy(),
                                     publish=self.publish, read_argv0=inline_argv0)
        self.responder = Responder(self.astore, self.manager, lambda: self.core.table,
                                   self.publish, clock=Clock(ORIGIN), proc_root=fake.path)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        self.published.append((kind, data))

    def feed(self, events: list[t.Event], until: float | None = None) -> None:
        """Apply events (and the ticks among them), then hand the outputs over at once,
        as the daemon does right after a tick."""
        self.core.feed(events)
        if until is not None:
            self.core.run_until(until)
        self.responder(self.core.drain())

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.manager.run)
            nursery.start_soon(self.responder.run)
            yield
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    def only_incident(self) -> dict[str, Any]:
        return only_incident(self.store)

    async def handled(self) -> None:
        """Wait until the responder has handled everything queued (a task waiting for a
        worker thread, reading /proc, counts as blocked: wait for the thread too)."""
        with trio.fail_after(10):
            await trio.testing.wait_all_tasks_blocked()
            while self.responder.unhandled:
                await trio.sleep(0.001)
                await trio.testing.wait_all_tasks_blocked()


TREE_PIDS = {1: ("init", 0), 100: ("app", 1), 101: ("worker", 100), 102: ("helper", 101),
             200: ("idle", 1)}
# The engine saw them start at -5.0; the fake /proc says 500 + pid clock ticks.
ORIGIN = 600 / HZ + 5.0


def start_events() -> list[t.Event]:
    return [proc(0.0, pid, ppid, comm, start=-5.0) for pid, (comm, ppid) in TREE_PIDS.items()]


def busy(ts: float, app_cpu: float, host_cpu: float = 40.0) -> list[t.Event]:
    return [sample(ts, 100, cpu_pct=app_cpu, rss_kb=20480.0, threads=4),
            sample(ts, 101, cpu_pct=20.0, rss_kb=10240.0),
            sample(ts, 102, cpu_pct=5.0, rss_kb=1024.0, fds=12),
            system(ts, cpu_pct=host_cpu)]


@pytest.fixture
def fake(tmp_path: Path) -> FakeProc:
    p = FakeProc(tmp_path / "proc")
    for pid, (comm, ppid) in TREE_PIDS.items():
        p.add(pid, comm, ppid, start=500 + pid)
    return p


@pytest.fixture
def rig(astore: InlineStore, fake: FakeProc) -> Rig:
    return Rig(astore, fake)


# ---- process rules --------------------------------------------------------------------------

async def test_a_firing_alert_opens_an_incident_with_its_snapshots(rig: Rig) -> None:
    events = start_events()
    for i in range(5):  # 0.5 .. 2.5: pending at 0.5, firing at 2.5
        events += busy(0.5 + i * 0.5, 60.0 + i)
    async with rig.running():
        rig.feed(events, until=2.5)
        # the table moves on before the responder gets to run: the snapshot must not
        rig.feed([fork(2.6, 103, 102, "late"), *busy(2.7, 99.0)])
        await rig.handled()
        row = rig.only_incident()
    assert (row["rule"], row["severity"], row["scope"]) == ("hot", "critical", "process")
    assert (row["pid"], row["comm"], row["start"]) == (100, "app", -5.0)
    assert row["message"] == "app[100] burns 64%"
    assert row["labels"] == {"team": "infra"}
    assert row["resolved_at"] is None

    # the value history: every tick of the 'for' window, up to the firing one
    assert row["history"] == [{"ts": 0.5 + i * 0.5, "values": {"cpu_pct": 60.0 + i}}
                              for i in range(5)]

    # the subtree as it was when the rule fired: breadth first, with depth and metrics
    subtree = row["subtree"]
    assert [(p["pid"], p["comm"], p["depth"]) for p in subtree] == [
        (100, "app", 0), (101, "worker", 1), (102, "helper", 2)]
    assert all(set(p) == PROCESS_KEYS for p in subtree)
    app, worker, helper = subtree
    assert (app["cpu_pct"], app["rss_mb"], app["threads"], app["children"]) == (64.0, 20.0, 4, 1)
    assert app["age_s"] == 7.5 and app["ppid"] == 1
    assert (worker["cpu_pct"], worker["rss_mb"], worker["ppid"]) == (20.0, 10.0, 100)
    assert (helper["fds"], helper["children"]) == (12, 0)  # pid 103 came later
    # exact totals over each one's subtree, as it was (pid 103 came later)
    assert [(p["subtree_cpu_pct"], p["subtree_rss_mb"], p["subtree_fds"], p["subtree_procs"])
            for p in subtree] == [(89.0, 31.0, 12, 3), (25.0, 11.0, 12, 2), (5.0, 1.0, 12, 1)]

    host = row["host"]
    assert set(host) == HOST_KEYS
    assert host["cpu_pct"] == 40.0
    assert host["procs"] == 5 and host["lost_events"] == 0


async def test_subtree_totals_are_null_where_nothing_was_measured(rig: Rig) -> None:
    """No rule reads a subtree metric, and only pid 100's cpu is sampled."""
    events = start_events()
    for i in range(5):
        events.append(sample(0.5 + i * 0.5, 100, cpu_pct=60.0 + i))
    async with rig.running():
        rig.feed(events, until=2.5)
        await rig.handled()
    row = rig.only_incident()
    assert [(p["pid"], p["subtree_cpu_pct"], p["subtree_rss_mb"], p["subtree_fds"],
             p["subtree_procs"]) for p in row["subtree"]] == [
        (100, 64.0, None, None, 3), (101, None, None, None, 2), (102, None, None, None, 1)]


async def test_command_lines_unknown_to_the_table_are_read_from_proc(rig: Rig,
                                                                    fake: FakeProc) -> None:
    """pid 101 exec'd (no argv): its command line is read from /proc, for the same
    process only; pid 102 now belongs to another process."""
    fake.add(101, "worker", 100, start=601, argv=["/usr/bin/worker", "--jobs", "4"])
    fake.add(102, "other", 1, start=9000, argv=["/usr/bin/other"])
    events: list[t.Event] = [
        proc(0.0, pid, ppid, comm, start=-5.0, cmdline="app --serve" if pid == 100 else None)
        for pid, (comm, ppid) in TREE_PIDS.items()]
    events.append(execve(0.1, 101, "worker", exe="/usr/bin/worker"))
    for i in range(5):
        events += busy(0.5 + i * 0.5, 60.0 + i)
    async with rig.running():
        rig.feed(events, until=2.5)
        await rig.handled()
    row = rig.only_incident()
    assert [(p["pid"], p["cmdline"]) for p in row["subtree"]] == [
        (100, "app --serve"), (101, "/usr/bin/worker --jobs 4"), (102, None)]
    opened = next(d for k, d in rig.published if k == "incident")
    assert opened["subtree"][1]["cmdline"] == "/usr/bin/worker --jobs 4"


async def test_proposals_link_to_their_incident(rig: Rig) -> None:
    events = start_events()
    for i in range(5):
        events += busy(0.5 + i * 0.5, 60.0 + i)
    async with rig.running():
        rig.feed(events, until=2.5)
        await rig.handled()
    row = rig.only_incident()
    (action,) = row["actions"]
    assert action["incident_id"] == row["id"]
    assert (action["rule"], action["kind"], action["params"]) == ("hot", "kill",
                                                                  {"grace_s": 1.0})
    assert (action["pid"], action["comm"], action["start_ticks"]) == (100, "app", 600)
    assert action["status"] == "pending"
    kinds = [k for k, _ in rig.published]
    assert kinds.index("incident") < kinds.index("action")  # opened before it is proposed
    opened = next(d for k, d in rig.published if k == "incident")
    assert opened["id"] == row["id"] and opened["state"] == "opened"
    assert [d["state"] for k, d in rig.published if k == "alert"] == ["pending", "firing"]


async def test_the_executable_recorded_at_exec_reaches_the_guards(rig: Rig,
                                                                 fake: FakeProc) -> None:
    """The engine saw pid 100 started from /usr/sbin/app (protected); /proc now shows the
    file renamed aside.  The proposal carries what the table held when the rule fired."""
    rig.manager.guards = Guards(frozenset(), frozenset({"/usr/sbin/app"}), own=set(),
                                root=fake.path)
    fake.add(100, "app", 1, start=600, exe="/usr/sbin/app.old")
    events: list[t.Event] = [
        proc(0.0, pid, ppid, comm, start=-5.0, exe="/usr/sbin/app" if pid == 100 else None)
        for pid, (comm, ppid) in TREE_PIDS.items()]
    for i in range(5):
        events += busy(0.5 + i * 0.5, 60.0 + i)
    async with rig.running():
        rig.feed(events, until=2.5)
        rig.feed([execve(2.6, 100, "app", exe="/usr/bin/other")])  # before the responder runs
        await rig.handled()
    (action,) = rig.store.actions()
    assert (action["pid"], action["status"]) == (100, "refused")
    assert action["reason"] == ("/usr/sbin/app is on the protected list (the process was "
                                "started from it; it now shows /usr/sbin/app.old)")


@pytest.mark.parametrize(("after", "reason"), [
    ([*busy(3.0, 10.0)], "cleared"),
    ([exit_(3.0, 100)], "exited"),
])
async def test_resolution_closes_the_incident_with_its_reason(rig: Rig, after: list[t.Event],
                                                              reason: str) -> None:
    events = start_events()
    for i in range(5):
        events += busy(0.5 + i * 0.5, 60.0 + i)
    async with rig.running():
        rig.feed(events, until=2.5)
        rig.feed(after, until=3.5)
        await rig.handled()
    (summary,) = rig.store.incidents()
    assert summary["resolved_reason"] == reason
    assert summary["resolved_at"] is not None
    assert rig.responder.open == {}
    resolved = [d for k, d in rig.published if k == "incident" and d["state"] == "resolved"]
    assert resolved == [{"id": summary["id"], "state": "resolved", "reason": reason}]
    events_logged = [e["event"] for e in reversed(rig.store.audit_log())]
    assert events_logged.index("action.proposed") < events_logged.index("incident.resolved")
    (action,) = rig.store.actions()
    assert action["status"] == "pending"  # resolving the incident leaves its action alone


EVENT_RULE = """
rule spawned {
    on exec
    when comm == "sh"
    action kill(grace = 1s)
}
"""


async def test_each_event_match_is_an_incident_closed_at_once_with_its_action(
        astore: InlineStore, fake: FakeProc) -> None:
    rig = Rig(astore, fake, EVENT_RULE)
    fake.add(300, "sh", 100, start=round((ORIGIN + 3.0) * HZ))
    fake.add(301, "sh", 100, start=round((ORIGIN + 4.0) * HZ))
    async with rig.running():
        rig.feed([*start_events(), fork(3.0, 300, 100, "app"), execve(3.0, 300, "sh"),
                  execve(3.5, 300, "sh"),  # the same process again, in the same batch
                  fork(4.0, 301, 100, "app"), execve(4.0, 301, "sh")])
        await rig.handled()
    incidents = sorted(rig.store.incidents(), key=lambda i: i["id"])
    assert [(i["rule"], i["pid"], i["resolved_reason"]) for i in incidents] == [
        ("spawned", 300, "event"), ("spawned", 300, "event"), ("spawned", 301, "event")]
    assert rig.responder.open == {}
    # pid 300's second match counts on the action still pending from its first
    actions = sorted(rig.store.actions(), key=lambda a: a["id"])
    assert [(a["pid"], a["incident_id"]) for a in actions] == [
        (300, incidents[0]["id"]), (301, incidents[2]["id"])]
    states = [(d["state"], d.get("reason")) for k, d in rig.published if k == "incident"]
    # closed after the batch's proposals are in: at once for pid 300's first match, which
    # its second one follows in the same batch
    opened, closed = ("opened", None), ("resolved", "event")
    assert states == [opened, closed, opened, opened, closed, closed]


def fired_twice() -> list[t.Event]:
    """pid 100 fires at 2.5, resolves at 3.0, and fires again at 6.0."""
    events = start_events()
    for i in range(5):
        events += busy(0.5 + i * 0.5, 60.0 + i)
    events += busy(3.0, 10.0)  # resolved
    for i in range(5):
        events += busy(4.0 + i * 0.5, 70.0)  # pending at 4.0, firing at 6.0
    return events


async def test_a_second_firing_opens_a_second_incident_and_counts_on_the_pending_action(
        rig: Rig) -> None:
    """The process is the same one and its action is still pending: nobody is asked
    twice; the action says it was seen again, and the audit log says for which incident."""
    events = fired_twice()
    async with rig.running():
        rig.feed(events, until=6.0)
        await rig.handled()
    second, first = rig.store.incidents()
    assert first["resolved_reason"] == "cleared" and second["resolved_at"] is None
    (action,) = rig.store.actions()
    assert (action["incident_id"], action["status"], action["repeats"]) == (
        first["id"], "pending", 1)
    (repeat,) = rig.store.audit_log(event="action.repeated")
    assert (repeat["action_id"], repeat["incident_id"]) == (action["id"], second["id"])


@pytest.mark.parametrize("history_first", [True, False], ids=["history-first", "responder-first"])
async def test_the_history_links_each_firing_and_resolution_to_its_incident(
        rig: Rig, history_first: bool) -> None:
    """The daemon's history (the dashboard's alerts page) keeps each transition's record;
    the responder adds the id of the incident it opened or resolved, whichever sink ran
    first."""
    history = History()
    sinks = [history, rig.responder] if history_first else [rig.responder, history]
    events = fired_twice()
    async with rig.running():
        rig.core.feed(events)
        rig.core.run_until(6.0)
        batch = rig.core.drain()
        for sink in sinks:
            sink(batch)
        await rig.handled()
    second, first = rig.store.incidents()
    assert [(r["state"], r.get("incident_id")) for r in history.items
            if r["type"] == "alert"] == [
        ("pending", None), ("firing", first["id"]), ("resolved", first["id"]),
        ("pending", None), ("firing", second["id"])]
    # what the stream carried is unchanged: the alert as the engine made it
    assert all("incident_id" not in d for k, d in rig.published if k == "alert")


async def test_a_resolution_without_an_open_incident_is_ignored(rig: Rig) -> None:
    """After a restart the engine may resolve instances of the previous run."""
    stale = Alert(1.0, "hot", "resolved", "critical", "process", 100, "app", -5.0, "m", {}, {},
                  reason="exited")
    async with rig.running():
        rig.responder([stale])
        await rig.handled()
    assert rig.store.incidents() == []
    assert rig.store.audit_log() == []


# ---- system rules -----------------------------------------------------------------------------

async def test_a_system_incident_snapshots_the_busiest_processes(rig: Rig) -> None:
    events = start_events()
    extra: list[t.Event] = [proc(0.0, 300 + n, 1, f"bg{n}", start=-1.0) for n in range(30)]
    extra += [sample(0.5, 300 + n, cpu_pct=float(n % 7)) for n in range(30)]
    async with rig.running():
        rig.feed([*events, *extra, *busy(0.5, 30.0, host_cpu=95.0)], until=0.5)
        await rig.handled()
    row = rig.only_incident()
    assert (row["rule"], row["scope"], row["pid"], row["comm"]) == ("busy_host", "system",
                                                                   None, None)
    busiest = row["subtree"]
    assert len(busiest) == 20
    assert all(p["depth"] == 0 for p in busiest)
    cpus = [p["cpu_pct"] or 0.0 for p in busiest]
    assert cpus == sorted(cpus, reverse=True)
    assert [p["pid"] for p in busiest[:3]] == [100, 101, 306]  # 30%, 20%, 6%
    assert row["host"]["cpu_pct"] == 95.0
    assert row["history"] == [{"ts": 0.5, "values": {"host_cpu_pct": 95.0}}]

    # top(cpu_pct) found the busiest process; top(fds) found one with fds (102)
    by_kind = {a["kind"]: a for a in row["actions"]}
    assert by_kind["kill"]["pid"] == 100 and by_kind["kill"]["status"] == "pending"
    assert by_kind["kill"]["params"] == {"target": "top(cpu_pct)"}
    assert by_kind["signal"]["pid"] == 102 and by_kind["signal"]["params"] == {
        "signal": 19, "target": "top(fds)"}
    assert all(a["incident_id"] == row["id"] for a in row["actions"])


async def test_a_system_rule_without_a_target_records_a_refusal(astore: InlineStore,
                                                                fake: FakeProc) -> None:
    rig = Rig(astore, fake)
    events = [*start_events(), sample(0.5, 100, cpu_pct=30.0), system(0.5, cpu_pct=95.0)]
    async with rig.running():
        rig.feed(events, until=0.5)  # nobody has fds: top(fds) finds no process
        await rig.handled()
    row = rig.only_incident()
    signal_action = next(a for a in row["actions"] if a["kind"] == "signal")
    assert signal_action["status"] == "refused"
    assert signal_action["reason"] == "no live process matched the action's target"
    assert signal_action["pid"] is None and signal_action["incident_id"] == row["id"]


async def test_the_system_incident_resolves_when_the_host_calms_down(rig: Rig) -> None:
    async with rig.running():
        rig.feed([*start_events(), *busy(0.5, 30.0, host_cpu=95.0)], until=0.5)
        rig.feed(busy(1.0, 30.0, host_cpu=20.0), until=1.5)
        await rig.handled()
    (summary,) = rig.store.incidents()
    assert summary["resolved_reason"] == "cleared"


# ---- a store that fails ----------------------------------------------------------------------

async def test_a_failing_store_is_reported_once_and_the_responder_carries_on(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    told: list[str] = []
    rig.responder.outage.say = told.append
    full = [True]

    real = rig.store._write

    def write() -> Any:  # every write of the store goes through one transaction
        if full[0]:
            raise sqlite3.OperationalError("database or disk is full")
        return real()

    monkeypatch.setattr(rig.store, "_write", write)
    async with rig.running():
        rig.feed([*start_events(), *busy(0.5, 30.0, host_cpu=95.0)], until=0.5)
        await rig.handled()  # the incident and its proposals: nothing could be stored
        rig.feed(busy(1.0, 30.0, host_cpu=20.0), until=1.5)
        await rig.handled()
        full[0] = False  # the disk has room again
        rig.feed(busy(2.0, 30.0, host_cpu=96.0), until=2.0)
        await rig.handled()
    failed = rig.responder.failed
    assert failed >= 2  # the opening and the proposal at least
    assert told == [
        "cannot record open in the store: database or disk is full; alerts still reach the "
        "log, alerts.jsonl and the API stream",
        f"recording in the store again ({failed} output(s) could not be recorded)"]
    (incident,) = rig.store.incidents()  # the second firing was stored
    assert incident["resolved_at"] is None


async def test_a_rule_with_a_boundary_records_its_own_totals(astore: InlineStore,
                                                              fake: FakeProc) -> None:
    # 101 (worker) is a wall: app's totals for this rule are its own and nothing below
    rules = ('rule tree {\n when subtree_cpu_pct > 50 and subtree_procs < 2\n'
             ' boundary comm == "worker"\n}\n')
    rig = Rig(astore, fake, rules)
    async with rig.running():
        rig.feed([*start_events(), *busy(0.5, 60.0)], until=0.5)
        await rig.handled()
        row = rig.only_incident()
    assert (row["rule"], row["pid"]) == ("tree", 100)
    app, worker = row["subtree"]  # the wall is listed, what is below it is not
    # (the rule adds up no memory or fds: those were not measured for it)
    assert app["totals"] == {"subtree_cpu_pct": 60.0, "subtree_rss_mb": None,
                             "subtree_fds": None, "subtree_procs": 1}
    assert (worker["pid"], worker["wall"], "totals" in worker) == (101, True, False)
    assert set(app) == PROCESS_KEYS | {"totals"} and set(worker) == PROCESS_KEYS | {"wall"}
    # the plain totals are still the whole subtree's
    assert rig.core.table.procs[100].sub_cpu_pct == 85.0


# ---- the snapshot helper ----------------------------------------------------------------------

def test_subtree_snapshot_is_breadth_first_and_bounded() -> None:
    r"""
    10 ─┬─ 11 ─── 12 ─── 13
        ├─ 20 ─┬─ 21
        │      └─ 22
        └─ 30
    """
    tree = {10: 1, 11: 10, 12: 11, 13: 12, 20: 10, 21: 20, 22: 20, 30: 10}
    core = Core(compile_text("rule r: cpu_pct > 1000"), 0.5)
    core.feed([proc(0.0, 1, 0, "init"),
               *(proc(0.0, pid, ppid, f"p{pid}", start=0.0) for pid, ppid in tree.items())])
    root = core.table.procs[10]
    full = subtree_snapshot(root, 4.0)
    assert [(p["pid"], p["depth"]) for p in full] == [
        (10, 0), (11, 1), (20, 1), (30, 1), (12, 2), (21, 2), (22, 2), (13, 3)]
    assert full[0]["age_s"] == 4.0 and full[0]["children"] == 3
    assert [p["pid"] for p in subtree_snapshot(root, 4.0, limit=4)] == [10, 11, 20, 30]
    assert SNAPSHOT_MAX == 200


def test_process_records_give_times_to_the_microsecond() -> None:
    core = Core(compile_text("rule r: cpu_pct > 1000"), 0.5)
    core.feed([proc(0.0, 1, 0, "init"), proc(0.1, 10, 1, "p10", start=0.1)])
    record = process_json(core.table.procs[10], 0.1 + 0.2)  # 0.30000000000000004
    assert (record["start"], record["age_s"]) == (0.1, 0.2)


async def test_a_cgroup_proposal_reaches_the_manager_with_its_cgroup(rig: Rig) -> None:
    """A cgroup action names no process: its path and id go to the manager instead."""
    seen: list[dict[str, Any]] = []

    class Recorder:
        async def propose(self, **kw: Any) -> dict[str, Any]:
            seen.append(kw)
            return {}

    rig.responder.actions = Recorder()  # type: ignore[assignment]
    cgroup = Proposal(1.0, "hog", CompiledAction("freeze", False), None, None, None, None,
                      cgroup="/system.slice/hog.service", cgroup_id=77)
    process = Proposal(1.0, "hot", CompiledAction("kill", True), 100, "app", 0.0, 100)
    await rig.responder._propose((cgroup, None))
    await rig.responder._propose((process, None))
    assert (seen[0]["target"], seen[0]["cgroup"]) == (
        None, CgroupTarget("/system.slice/hog.service", 77))
    assert "cgroup" not in seen[1] and seen[1]["target"].pid == 100


def cgroup_alert(ts: float, state: str, cgroup: str) -> Alert:
    return Alert(ts, "hog", state, "warning", "cgroup", None, None, None, f"{cgroup} hogs",
                 {"cgroup": cgroup}, {"cg_cpu_pct": 95.0},
                 reason="cleared" if state == "resolved" else None, cgroup=cgroup)


async def test_two_cgroups_firing_one_rule_open_and_resolve_an_incident_each(rig: Rig) -> None:
    """A cgroup rule's instances are its cgroups: each has its own incident, and an
    action proposed for one attaches to that one's."""
    a, b = "/system.slice/a.service", "/system.slice/b.service"
    freeze = CompiledAction("freeze", False)
    async with rig.running():
        rig.responder([cgroup_alert(1.0, "firing", a), cgroup_alert(1.0, "firing", b)])
        await rig.handled()
        rig.responder([Proposal(1.0, "hog", freeze, None, None, None, None, cgroup=b,
                                cgroup_id=2, instance_cgroup=b)])
        await rig.handled()
        rig.responder([cgroup_alert(2.0, "resolved", a)])
        await rig.handled()
    incidents = {row["message"]: row for row in rig.store.incidents()}
    assert set(incidents) == {f"{a} hogs", f"{b} hogs"}
    assert incidents[f"{a} hogs"]["resolved_at"] is not None
    assert incidents[f"{b} hogs"]["resolved_at"] is None
    (action,) = rig.store.actions()
    assert action["incident_id"] == incidents[f"{b} hogs"]["id"]
