"""The live view behind the API: real process data, through the real app.

The engine runs over trace events; the view reads its table, and a fake
/proc holds what the kernel would show of the same processes.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from api_support import AUTH, MAX_BODY, TOKEN
from engine_support import execve, exit_, fork, proc, sample
from proc_support import FakeProc
from prometheus_client import CollectorRegistry
from support import write

from linnix.actions.store import AsyncStore, Store
from linnix.api.app import create_app
from linnix.api.stream import StreamHub
from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.explain import explain_rule
from linnix.language.pipeline import compile_text
from linnix.procfs import HZ, Clock
from linnix.runtime import daemon as d
from linnix.runtime import view as view_module
from linnix.runtime.live import LiveEngine
from linnix.runtime.responder import subtree_snapshot
from linnix.runtime.view import History, LiveView
from linnix.tools.explain import explain_text

ORIGIN = 600 / HZ - 1.0  # a process started at 600 clock ticks started at 1.0 on this clock

NO_SUBTREE_RULE = "rule hot: cpu_pct > 1000"
SESSION = "/user.slice/user-1000.slice/session-3.scope"
CONTAINER = "/system.slice/docker-" + "0123456789abcdef" * 4 + ".scope"
SUBTREE_RULE = "rule big: subtree_rss_mb > 100000"

#  1 init ── 50 bash "bash /dev/fd/3" ─┬─ 100: forked at 1.0, exec'd /tmp/x (no argv)
#                                      └─ 101 worker (never measured)
EVENTS: list[t.Event] = [
    proc(0.0, 1, 0, "init", start=-100.0, cmdline="init"),
    proc(0.0, 50, 1, "bash", exe="/usr/bin/bash", cmdline="bash /dev/fd/3", start=-50.0,
         uid=1000, user="alice", cgroup=SESSION),
    fork(1.0, 100, 50, "bash"), execve(1.1, 100, "x", exe="/tmp/x", cgroup=CONTAINER),
    fork(1.2, 101, 50, "bash"),
    sample(1.5, 50, cpu_pct=2.0, rss_kb=4096.0, fds=4),
    sample(1.5, 100, cpu_pct=97.8, rss_kb=2048.0),
]


def view_over(rules: str, fake: FakeProc, extra: list[t.Event] | None = None) -> LiveView:
    core = Core(compile_text(rules), 0.5, recent_network=True)  # as the daemon makes it
    core.feed([*EVENTS, *(extra or [])])
    daemon = SimpleNamespace(
        core=core, engine=SimpleNamespace(clock=Clock(ORIGIN)), astore=None,
        action_manager=None, hub=StreamHub(backlog=10, queue=10), registry=CollectorRegistry(),
        not_ready=None, source=None, opts=SimpleNamespace(sample_interval=1.0), telemetry=None)
    view = LiveView(daemon)  # type: ignore[arg-type]
    view.proc_root = fake.path
    return view


async def get(view: LiveView, path: str) -> Any:
    app = create_app(view, token=TOKEN, max_body=MAX_BODY)  # type: ignore[arg-type]
    response = await app.test_client().get(path, headers=AUTH)
    assert response.status_code == 200
    return orjson.loads(await response.get_data())


@pytest.fixture
def fake(tmp_path: Path) -> FakeProc:
    fake = FakeProc(tmp_path / "proc")
    fake.add(100, "x", 50, start=600, argv=["/tmp/x", "120"])  # started at 1.0
    return fake


async def test_an_execd_process_shows_its_own_command_line(fake: FakeProc) -> None:
    view = view_over(NO_SUBTREE_RULE, fake)
    one = await get(view, "/processes/100")
    assert (one["comm"], one["exe"], one["cmdline"]) == ("x", "/tmp/x", "/tmp/x 120")
    listed = {p["pid"]: p for p in (await get(view, "/processes"))["processes"]}
    assert listed[100]["cmdline"] == "/tmp/x 120"
    assert listed[50]["cmdline"] == "bash /dev/fd/3"  # known: not read again
    graph = await get(view, "/graph/50")
    assert [(k["pid"], k["cmdline"]) for k in graph["subtree"]["children"]] == [
        (100, "/tmp/x 120"), (101, "bash /dev/fd/3")]  # 101 forked and never exec'd


async def test_processes_graph_and_incidents_show_cgroup_unit_container_and_user(
        fake: FakeProc) -> None:
    view = view_over(NO_SUBTREE_RULE, fake)

    def cg(record: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(record[k] for k in ("cgroup", "unit", "container", "user"))

    moved = (CONTAINER, f"docker-{'0123456789abcdef' * 4}.scope", "0123456789ab", "alice")
    assert cg(await get(view, "/processes/100")) == moved
    listed = {p["pid"]: cg(p) for p in (await get(view, "/processes"))["processes"]}
    assert listed == {1: (None, None, None, None), 50: (SESSION, "session-3.scope", None, "alice"),
                      100: moved, 101: (SESSION, "session-3.scope", None, "alice")}
    graph = await get(view, "/graph/100")
    assert cg(graph["process"]) == moved
    assert [cg(a) for a in graph["ancestors"]] == [listed[50], listed[1]]
    assert cg(graph["subtree"]) == moved
    table = view.daemon.core.table
    incident = subtree_snapshot(table.procs[50], 2.0)
    assert [(p["pid"], cg(p)) for p in incident] == [(pid, listed[pid]) for pid in (50, 100, 101)]


async def test_a_command_line_of_another_process_is_not_shown(fake: FakeProc) -> None:
    fake.add(100, "y", 1, start=900, argv=["/usr/bin/y"])  # pid 100 reused since
    view = view_over(NO_SUBTREE_RULE, fake)
    assert (await get(view, "/processes/100"))["cmdline"] is None
    fake.remove(100)  # gone
    assert (await get(view, "/processes/100"))["cmdline"] is None


@pytest.mark.parametrize("rules", [NO_SUBTREE_RULE, SUBTREE_RULE],
                         ids=["no-rule-reads-them", "a-rule-reads-them"])
async def test_subtree_totals_are_exact_and_null_when_unmeasured(rules: str,
                                                                 fake: FakeProc) -> None:
    graph = await get(view_over(rules, fake), "/graph/50")
    root = graph["subtree"]
    assert {k: root[k] for k in root if k.startswith("subtree_")} == {
        "subtree_cpu_pct": 99.8, "subtree_rss_mb": 6.0, "subtree_fds": 4, "subtree_procs": 3}
    x, worker = root["children"]
    assert {k: x[k] for k in x if k.startswith("subtree_")} == {
        "subtree_cpu_pct": 97.8, "subtree_rss_mb": 2.0, "subtree_fds": None,
        "subtree_procs": 1}
    assert {k: worker[k] for k in worker if k.startswith("subtree_")} == {
        "subtree_cpu_pct": None, "subtree_rss_mb": None, "subtree_fds": None,
        "subtree_procs": 1}
    init = await get(view_over(rules, fake), "/graph/1")
    assert init["subtree"]["subtree_procs"] == 4
    assert init["subtree"]["subtree_rss_mb"] == 6.0


def test_active_alerts_give_times_to_the_microsecond(fake: FakeProc) -> None:
    core = Core(compile_text("rule hot: cpu_pct > 50 for 200ms"), 0.1)
    core.feed([proc(0.1, 1, 0, "init", start=0.1), sample(0.25, 1, cpu_pct=90.0),
               sample(0.65, 1, cpu_pct=90.0)])  # pending at the tick 0.1 + 2 * 0.1
    view = view_over(NO_SUBTREE_RULE, fake)
    view.daemon.core = core
    [alert] = view.alerts()
    assert (alert["since"], alert["start"]) == (0.3, 0.1)


def test_an_alert_that_fired_at_once_says_since_when(fake: FakeProc) -> None:
    """A rule with no `for` fires at the tick the condition first holds: that is its since."""
    core = Core(compile_text("rule hot: cpu_pct > 50"), 0.1)
    core.feed([proc(0.1, 1, 0, "init", start=0.1), sample(0.25, 1, cpu_pct=90.0),
               sample(0.65, 1, cpu_pct=90.0)])
    view = view_over(NO_SUBTREE_RULE, fake)
    view.daemon.core = core
    [alert] = view.alerts()
    assert alert["state"] == "firing"
    assert alert["since"] == 0.3 and alert["since"] != 0.0


def test_a_firing_alert_names_its_incident_once_stored(fake: FakeProc) -> None:
    """The responder's open incidents, by instance: a firing alert links to its incident
    (the dashboard's alerts page); a pending one, or one whose incident is not stored
    yet, has none."""
    core = Core(compile_text("rule hot: cpu_pct > 50\nrule slow: cpu_pct > 50 for 10s"),
                0.1)
    core.feed([proc(0.1, 1, 0, "init", start=0.1), sample(0.25, 1, cpu_pct=90.0),
               sample(0.65, 1, cpu_pct=90.0)])
    view = view_over(NO_SUBTREE_RULE, fake)
    view.daemon.core = core
    alerts = {a["rule"]: a for a in view.alerts()}
    assert (alerts["hot"]["state"], alerts["hot"]["incident_id"]) == ("firing", None)
    view.daemon.responder = SimpleNamespace(open={("hot", 1, 0.1, None): 7,
                                                  ("slow", 1, 0.1, None): 8})
    alerts = {a["rule"]: a for a in view.alerts()}
    assert alerts["hot"]["incident_id"] == 7
    assert (alerts["slow"]["state"], alerts["slow"]["incident_id"]) == ("pending", None)


def test_the_dashboard_status_counts_what_the_engine_saw(fake: FakeProc) -> None:
    view = view_over(NO_SUBTREE_RULE, fake)
    manager = SimpleNamespace(policy=SimpleNamespace(mode="enforce"), paused=None)
    view.actions = manager  # type: ignore[assignment]
    status = view.dashboard_status()
    assert status == {"mode": "enforce", "source": None, "events": len(EVENTS), "lost": 0,
                      "processes": 4, "rules": 1, "paused": {"actions": "active"}}


def test_the_process_table_is_the_engines_table_without_reading_proc(
        fake: FakeProc) -> None:
    view = view_over(NO_SUBTREE_RULE, fake)
    fake.remove(100)  # nothing of /proc is read: the table alone answers
    rows = {r["pid"]: r for r in view.process_table()}
    assert set(rows) == {1, 50, 100, 101}
    assert rows[100] == {"pid": 100, "ppid": 50, "comm": "x", "uid": 1000, "user": "alice",
                         "unit": f"docker-{'0123456789abcdef' * 4}.scope",
                         "container": "0123456789ab", "cpu_pct": 97.8, "rss_mb": 2.0,
                         "fds": None}
    assert rows[50]["unit"] == "session-3.scope" and rows[50]["fds"] == 4
    assert rows[101]["cpu_pct"] is None and rows[101]["rss_mb"] is None  # never measured
    assert rows[1]["user"] is None and rows[1]["unit"] is None
    view.daemon.core = None  # not started yet
    assert view.process_table() == []


def test_the_process_table_is_read_again_once_the_engine_moves(fake: FakeProc) -> None:
    view = view_over(NO_SUBTREE_RULE, fake)
    rows = view.process_table()
    assert view.process_table() is rows  # nothing applied since: the same snapshot
    view.daemon.core.table.events += 1  # an event applied
    again = view.process_table()
    assert again is not rows and again == rows
    view.daemon.core.ticks += 1  # a tick (it may reap the exited)
    assert view.process_table() is not again


def test_the_view_keeps_the_host_samples_the_telemetry_hands_it(fake: FakeProc) -> None:
    telemetry = SimpleNamespace(on_host=None)
    core = Core(compile_text(NO_SUBTREE_RULE), 0.5)
    daemon = SimpleNamespace(core=core, engine=None, astore=None, action_manager=None,
                             hub=None, registry=None, not_ready=None, source=None,
                             opts=SimpleNamespace(sample_interval=2.0), telemetry=telemetry)
    view = LiveView(daemon)  # type: ignore[arg-type]
    assert view.host_ring.size == 450
    assert telemetry.on_host is not None
    telemetry.on_host(t.System(ts=1.0, cpu_pct=42.0))
    assert view.host_history()["cpu_pct"] == [42.0]


NET_EVENTS: list[t.Event] = [
    t.Listen(ts=1.6, pid=100, family="inet", local_port=8080, local_addr="0.0.0.0"),
    t.Connect(ts=1.7, pid=100, family="inet6", remote_addr="2001:db8::1", remote_port=443),
    t.Accept(ts=1.8, pid=100, family="inet", remote_addr="192.0.2.4", remote_port=50000,
             local_port=8080),
]


async def test_a_process_shows_its_last_network_events_while_they_are_captured(
        fake: FakeProc) -> None:
    view = view_over('rule r on connect: comm == "nc"', fake, NET_EVENTS)
    one = await get(view, "/processes/100")
    assert one["connections"] == [
        {"ts": 1.6, "kind": "listen", "family": "inet", "addr": "0.0.0.0", "port": 8080},
        {"ts": 1.7, "kind": "connect", "family": "inet6", "addr": "2001:db8::1", "port": 443},
        {"ts": 1.8, "kind": "accept", "family": "inet", "addr": "192.0.2.4", "port": 50000},
    ]
    assert (await get(view, "/processes/50"))["connections"] == []  # captured: none yet
    listed = {p["pid"]: p for p in (await get(view, "/processes"))["processes"]}
    assert "connections" not in listed[100]  # the list stays as it was


async def test_no_network_event_is_kept_while_no_rule_needs_them(fake: FakeProc) -> None:
    view = view_over(NO_SUBTREE_RULE, fake, NET_EVENTS)
    assert (await get(view, "/processes/100"))["connections"] is None  # not captured
    core = view.daemon.core
    core.replace_plan(compile_text("rule r: connects_per_sec > 100"))  # a reload turns it on
    core.feed([t.Connect(ts=2.0, pid=100, family="inet", remote_addr="10.0.0.1",
                         remote_port=22)])
    assert [c["ts"] for c in (await get(view, "/processes/100"))["connections"]] == [2.0]
    core.replace_plan(compile_text(NO_SUBTREE_RULE))  # and off: what was kept is forgotten
    assert core.table.procs[100].net.recent is None
    assert (await get(view, "/processes/100"))["connections"] is None


# ---- reloads -----------------------------------------------------------------------------

RULE_A = "# its comment\nrule a {\n    when cpu_pct > 50   # busy\n    severity warning\n}\n"


def reloadable(rules: Path, state: Path) -> LiveView:
    """The view of a daemon whose engine and store are built, not running: reloads work."""
    daemon = d.Daemon(d.DaemonOptions(rules=[str(rules)], state_dir=str(state)),
                      out=io.StringIO(), err=io.StringIO())
    daemon.core = core = Core(daemon.build().require_plan(), 0.5)
    daemon.engine = LiveEngine(core, Clock(), lambda out: None)
    state.mkdir(exist_ok=True)
    daemon.astore = AsyncStore(Store(str(state / "linnix.db")))
    daemon.history = History()
    return LiveView(daemon)


async def test_a_refused_reload_shows_the_line_and_carets_check_shows(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": RULE_A})
    view = reloadable(rules, tmp_path / "state")
    write(rules, {"b.lnx": "rule b: nosuch > 1\n"})
    ok, diagnostics = await view.reload("api")
    assert not ok and [r.name for r in view.daemon.core.plan.rules] == ["a"]  # type: ignore[union-attr]
    [found] = diagnostics
    assert (found["code"], found["line"], found["col"]) == ("E201", 1, 9)
    assert found["excerpt"] == "rule b: nosuch > 1\n        ^^^^^^"
    (rules / "a.lnx").unlink()
    (rules / "b.lnx").unlink()
    ok, diagnostics = await view.reload("api")
    assert not ok and [x["excerpt"] for x in diagnostics] == [None]  # no text to point at


# ---- the dashboard's reads of the rules -------------------------------------------------

async def test_a_rule_shows_its_text_as_loaded_and_its_explanation(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": RULE_A})
    view = reloadable(rules, tmp_path / "state")
    shown = view.rule_source("a")
    assert shown is not None
    plan = view.daemon.core.plan  # type: ignore[union-attr]
    assert shown == {"name": "a", "path": str(rules / "a.lnx"), "line": 2,
                     "source": RULE_A.removeprefix("# its comment\n").rstrip("\n"),
                     "explain": explain_rule(plan.rules[0])}
    assert shown["explain"] in explain_text(plan)  # what `linnix explain` says of it
    assert view.rule_source("nosuch") is None
    # an edited file changes nothing the running rule shows, until a reload takes it
    write(rules, {"a.lnx": "rule a: cpu_pct > 90\n"})
    assert view.rule_source("a") == shown
    assert (await view.reload("api"))[0]
    again = view.rule_source("a")
    assert again is not None and again["source"] == "rule a: cpu_pct > 90"
    assert "when         cpu_pct > 90" in again["explain"] and again["line"] == 1


def test_no_rule_is_shown_before_the_engine_runs(fake: FakeProc) -> None:
    view = view_over(NO_SUBTREE_RULE, fake)
    view.daemon.core = None
    assert view.rule_source("hot") is None


def test_each_rule_keeps_its_newest_firing_since_the_start(fake: FakeProc) -> None:
    core = Core(compile_text("rule hot: cpu_pct > 50\nrule cold: cpu_pct < 0"), 0.1)
    history = History(size=1)
    core.feed([proc(0.1, 1, 0, "init", start=0.1), sample(0.25, 1, cpu_pct=90.0),
               sample(0.65, 1, cpu_pct=90.0)])  # fires at 0.3
    history(core.drain())
    core.feed([sample(0.9, 1, cpu_pct=10.0), sample(1.5, 1, cpu_pct=11.0)])
    history(core.drain())
    assert [x["state"] for x in history.items] == ["resolved"]  # the ring let the firing go
    view = view_over(NO_SUBTREE_RULE, fake)
    view.daemon.history = history
    assert view.last_firings() == {"hot": {
        "time": None, "ts": 0.3, "pid": 1, "comm": "init", "start": 0.1, "cgroup": None,
        "severity": "warning", "message": "init[1]: cpu_pct=90"}}
class AtClock(Clock):
    """The engine's clock, stopped at ``at``."""

    def __init__(self, at: float) -> None:
        super().__init__(origin=ORIGIN)
        self.at = at

    def now(self) -> float:
        return self.at


def live_view(fake: FakeProc, telemetry: Any = None) -> LiveView:
    """The view over a live engine (at engine time 3.0, Unix time WALL + 3.0)."""
    view = view_over(NO_SUBTREE_RULE, fake)
    view.daemon.engine = LiveEngine(view.daemon.core, AtClock(3.0), lambda out: None)
    view.daemon.telemetry = telemetry
    return LiveView(view.daemon)  # the daemon makes the view once its engine exists


WALL = 1_800_000_000.0
NO_HISTORY = {"t": [], "cpu_pct": [], "rss_mb": [], "fds": [], "resolution_s": 1.0}


def test_a_process_history_holds_each_round_the_engine_applied(
        fake: FakeProc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view_module.time, "time", lambda: WALL + 3.0)
    view = live_view(fake)
    assert view.process_history(100) == NO_HISTORY  # live: no round since the view began
    engine = view.daemon.engine
    for ts, cpu in ((2.0, 50.0), (3.0, 60.0)):
        engine.feed([t.System(ts=ts), sample(ts, 100, cpu_pct=cpu, rss_kb=2048.0)])
    engine.feed([fork(3.0, 102, 50, "bash")])  # not a round of samples: nothing recorded
    assert view.process_history(100) == {
        "t": [WALL + 2.0, WALL + 3.0], "cpu_pct": [50.0, 60.0], "rss_mb": [2.0, 2.0],
        "fds": [None, None], "resolution_s": 1.0}
    assert view.process_history(50)["fds"] == [4, 4]  # sampled before the view began
    assert view.process_history(102) == NO_HISTORY
    assert view.process_history(4242) is None  # no such process
    engine.feed([exit_(3.0, 100)])
    assert view.process_history(100) is None  # gone: no history either
    engine.feed([t.System(ts=3.0)])
    assert 100 not in view.proc_ring.rings  # and its ring freed at the next round


def test_a_process_history_leaves_what_the_sampler_does_not_measure_as_none(
        fake: FakeProc) -> None:
    telemetry = SimpleNamespace(per_process=True, procs=SimpleNamespace(fds=False),
                                on_host=None)
    view = live_view(fake, telemetry)
    view.daemon.engine.feed([t.System(ts=2.0), sample(2.0, 50, cpu_pct=1.0, fds=9)])
    telemetry.per_process = False  # a reload left no rule reading a process's values
    view.daemon.engine.feed([t.System(ts=3.0)])
    history = view.process_history(50)
    assert (history["cpu_pct"], history["rss_mb"], history["fds"]) == (
        [1.0, None], [4.0, None], [None, None])
