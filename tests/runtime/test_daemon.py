"""The daemon's lifecycle and reloads: in this process (no kernel), and as ``linnix run``."""

from __future__ import annotations

import io
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from live_support import Api, Daemon, free_port, outline, wait_for
from support import write

from linnix.actions.store import AsyncStore, Store
from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import Build
from linnix.procfs import Clock
from linnix.runtime import daemon as d
from linnix.runtime.live import LiveEngine
from linnix.runtime.view import LiveView

WAIT_S = 30.0  # how long a gated build waits before the test gives up on it


def in_process(rules: Path, state: Path) -> d.Daemon:
    """A daemon whose engine and store are built but not running: reloads work, nothing is
    watched."""
    daemon = d.Daemon(d.DaemonOptions(rules=[str(rules)], state_dir=str(state)),
                      out=io.StringIO(), err=io.StringIO())
    daemon.core = core = Core(daemon.build().require_plan(), 0.5)
    daemon.engine = LiveEngine(core, Clock(), lambda out: None)
    state.mkdir(exist_ok=True)
    daemon.astore = AsyncStore(Store(str(state / "linnix.db")))
    return daemon


def said(daemon: d.Daemon) -> str:
    assert isinstance(daemon.err, io.StringIO)
    return daemon.err.getvalue()


async def reloads_audited(daemon: d.Daemon) -> list[tuple[str, dict[str, object]]]:
    rows = await daemon.astore.audit_log(event="rules.reload")
    return [(row["actor"], row["detail"]) for row in reversed(rows)]


def rule_names(daemon: d.Daemon) -> list[str]:
    assert daemon.core is not None
    return [r.name for r in daemon.core.plan.rules]


class Gate:
    """Wraps ``daemon.build`` so that a test decides when each build may finish."""

    def __init__(self, daemon: d.Daemon) -> None:
        self.real = daemon.build
        self.entered = threading.Semaphore(0)
        self.release = threading.Semaphore(0)
        self.threads: list[threading.Thread] = []
        self.inside = self.most_inside = 0
        self.lock = threading.Lock()
        daemon.build = self  # type: ignore[method-assign]

    def __call__(self) -> Build:
        with self.lock:
            self.threads.append(threading.current_thread())
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.release()
        self.release.acquire(timeout=WAIT_S)
        with self.lock:
            self.inside -= 1
        return self.real()


async def test_a_reload_builds_in_a_worker_thread_while_the_loop_goes_on(
        tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 1\n"})
    daemon = in_process(rules, tmp_path / "state")
    write(rules, {"b.lnx": "rule b: rss_mb > 1\n"})
    gate = Gate(daemon)
    answers: list[object] = []

    async def reload() -> None:
        answers.append(await daemon.reload("api"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reload)
        await trio.to_thread.run_sync(gate.entered.acquire)
        # the loop runs this while the build is under way; the running rules are untouched
        assert answers == [] and rule_names(daemon) == ["a"]
        gate.release.release()
    assert gate.threads and threading.main_thread() not in gate.threads
    assert answers == [(True, [])]
    assert rule_names(daemon) == ["a", "b"]  # swapped in once built


async def test_reloads_run_one_at_a_time_in_order(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 1\n"})
    daemon = in_process(rules, tmp_path / "state")
    gate = Gate(daemon)
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(daemon.reload, "api")
        for _ in range(3):
            await trio.to_thread.run_sync(gate.entered.acquire)
            gate.release.release()
    assert len(gate.threads) == 3 and gate.most_inside == 1


async def test_a_shutdown_does_not_wait_for_a_build_in_progress(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 1\n"})
    daemon = in_process(rules, tmp_path / "state")
    gate = Gate(daemon)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(daemon.reload, "api")
            await trio.to_thread.run_sync(gate.entered.acquire)
            scope.cancel()  # the build still waits: the cancellation must not
    assert scope.cancelled_caught and gate.inside == 1
    gate.release.release()


async def test_every_reload_is_audited_with_who_asked_and_what_came_of_it(
        tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 1\n"})
    daemon = in_process(rules, tmp_path / "state")
    write(rules, {"b.lnx": "rule b: rss_mb > 1\nlet unused = 1\n"})
    assert (await daemon.reload("SIGHUP"))[0]
    write(rules, {"b.lnx": "rule b: nosuch > 1\n"})
    assert not (await LiveView(daemon).reload("alice"))[0]  # the API's way in
    common = {"paths": [str(rules)], "diagnostics": 1}
    assert await reloads_audited(daemon) == [
        ("SIGHUP", {**common, "accepted": True, "rules": 2, "errors": 0, "warnings": 1,
                    "reason": None}),
        ("alice", {**common, "accepted": False, "rules": None, "errors": 1, "warnings": 0,
                   "reason": "unknown name 'nosuch'"}),
    ]


async def test_a_reload_of_a_removed_folder_names_it(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 1\n"})
    daemon = in_process(rules, tmp_path / "state")
    shutil.rmtree(rules)
    ok, diagnostics = await LiveView(daemon).reload("api")
    assert not ok
    assert [(x["path"], x["line"], x["code"], x["level"], x["message"]) for x in diagnostics] == [
        (str(rules), 1, "E110", "error", f"cannot read '{rules}': no such file or directory")]
    assert rule_names(daemon) == ["a"]  # still running
    assert f"linnix: {rules}:1:1: error[E110]: cannot read '{rules}'" in said(daemon)


async def test_a_reload_that_would_watch_nothing_is_refused(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 1\n"})
    daemon = in_process(rules, tmp_path / "state")
    (rules / "a.lnx").unlink()  # the folder is empty
    ok, diagnostics = await LiveView(daemon).reload("api")
    assert not ok
    assert [(x["path"], x["code"], x["message"], x["hint"]) for x in diagnostics] == [
        (str(rules), "E110", f"no active rule in '{rules}': a reload that would leave nothing "
         "watched is refused", "to watch nothing, stop the daemon")]
    assert rule_names(daemon) == ["a"]
    assert "reload rejected: 1 error(s); keeping the running rules" in said(daemon)


async def test_a_reload_whose_every_rule_is_disabled_is_refused(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 1\n"})
    daemon = in_process(rules, tmp_path / "state")
    daemon.opts.disabled_tags = frozenset({"noisy"})
    write(rules, {"a.lnx": 'rule a { when cpu_pct > 1\n tags ["noisy"] }\n'})
    ok, diagnostics = await daemon.reload("api")
    assert not ok and [x.code for x in diagnostics] == ["E110"]
    write(rules, {"b.lnx": "rule b: rss_mb > 1\n"})  # one rule left to watch: accepted
    assert await daemon.reload("api") == (True, [])
    assert rule_names(daemon) == ["a", "b"]


async def test_rules_switched_on_by_their_tag_stay_on_across_a_reload(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 1\n",
                                       "b.lnx": 'rule b { when rss_mb > 1\n tags ["extra"]\n'
                                                ' enabled false }\n'})
    daemon = in_process(rules, tmp_path / "state")
    assert daemon.core is not None
    assert [r.name for r in daemon.core.plan.active] == ["a"]
    daemon.opts.enabled_tags = frozenset({"extra"})
    assert await daemon.reload("api") == (True, [])
    assert [r.name for r in daemon.core.plan.active] == ["a", "b"]
    daemon.opts.disabled_tags = frozenset({"extra"})  # off wins over on
    assert await daemon.reload("api") == (True, [])
    assert [r.name for r in daemon.core.plan.active] == ["a"]


def test_a_tag_no_rule_carries_is_reported_at_start(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": 'rule a { when cpu_pct > 99\n tags ["x"] }\n'})
    daemon = d.Daemon(d.DaemonOptions(rules=[str(rules)], state_dir=str(tmp_path / "state"),
                                      source="poll", api=False, duration=0.01,
                                      enabled_tags=frozenset({"netwrok", "x"})),
                      out=io.StringIO(), err=io.StringIO())
    assert daemon.run() == 0
    assert "linnix: no loaded rule carries the tag(s) 'netwrok' named by [rules] " \
           "enabled_tags/disabled_tags or --enable-tag/--disable-tag\n" in said(daemon)


def test_no_action_runs_by_itself_while_the_input_is_stale_after_a_gap(
        tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 1\n"})
    daemon = in_process(rules, tmp_path / "state")
    assert daemon.engine is not None
    policy = SimpleNamespace(degraded_window_s=60.0)  # no event was lost
    assert daemon._degraded(daemon.engine.clock, policy) is None
    daemon.engine.stale_since = 100.0  # a gap was seen; no fresh sample yet
    assert daemon._degraded(daemon.engine.clock, policy) == (
        "time jumped and no fresh sample has come since")


def test_the_view_keeps_each_process_s_rounds_of_samples_from_the_daemon_s_engine(
        tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 1\n"})
    daemon = in_process(rules, tmp_path / "state")
    view = LiveView(daemon)  # as the daemon makes it when the API starts
    engine = daemon.engine
    assert engine is not None
    now = engine.clock.now()
    engine.feed([t.Proc(ts=now, pid=4242, ppid=1, comm="w", start=now - 5.0)])
    for cpu in (12.5, 25.0):
        engine.feed([t.System(ts=now), t.Sample(ts=now, pid=4242, cpu_pct=cpu, rss_kb=1024.0,
                                                fds=5)])
    history = view.process_history(4242)
    assert history is not None and len(history["t"]) == 2
    assert (history["cpu_pct"], history["rss_mb"], history["fds"]) == (
        [12.5, 25.0], [1.0, 1.0], [5, 5])
    assert view.proc_ring.size == 900  # 15 minutes at the daemon's sample interval


# ---- as ``linnix run`` ---------------------------------------------------------------------

def started(tmp_path: Path, rules: Path, *args: str) -> tuple[Daemon, Api]:
    daemon = Daemon(tmp_path / "state", "--source", "poll", *args, rules=[str(rules)])
    daemon.wait_ready()
    api = Api(tmp_path / "state")
    wait_for(lambda: api.get("/health"), 10, "the API")
    return daemon, api


def reloads_of(api: Api) -> list[dict[str, Any]]:
    return [row for row in api.audit() if row["event"] == "rules.reload"]


@pytest.mark.slow
def test_a_fifo_in_the_rules_folder_never_stops_the_daemon(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 5000 for 5s\n"})
    daemon, api = started(tmp_path, rules)
    try:
        os.mkfifo(rules / "fifo.lnx")  # nobody writes to it
        ticks = api.metrics()["linnix_ticks_total"]
        status, body = api.post("/rules/reload", {})
        assert status == 422, body
        (diagnostic,) = body["diagnostics"]
        assert diagnostic["path"] == str(rules / "fifo.lnx")
        assert diagnostic["message"].endswith("fifo.lnx': not a regular file")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: len(reloads_of(api)) == 2, 30, "the SIGHUP reload")
        reloads = reloads_of(api)
        assert [(r["actor"], r["detail"]["accepted"]) for r in reloads] == [
            ("SIGHUP", False), ("admin", False)]
        # the engine keeps ticking on time: neither reload stalled the loop
        wait_for(lambda: api.metrics()["linnix_ticks_total"] > ticks + 4, 30, "more ticks")
        assert api.metrics()["linnix_tick_lag_seconds"] < 1.0
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.stderr
    assert daemon.stderr.count("not a regular file") == 2


def modes(state: Path) -> dict[str, str]:
    """The permission bits of the state directory and of everything in it, by name."""
    found = {".": oct(state.stat().st_mode & 0o7777)}
    for path in state.rglob("*"):
        found[str(path.relative_to(state))] = oct(path.lstat().st_mode & 0o7777)
    return found


@pytest.mark.slow
def test_what_the_daemon_creates_is_private_whatever_the_umask(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 5000\n"})
    state = tmp_path / "new" / "state"  # neither exists yet
    config = tmp_path / "linnix.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n')
    daemon = Daemon(state, "--source", "poll", "--config", str(config), rules=[str(rules)],
                    umask=0)
    try:
        daemon.wait_ready()
        api = Api(state)
        wait_for(lambda: api.get("/health"), 10, "the API")
        running = modes(state)
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0, daemon.stderr
    private = {"api.token": "0o600"}
    expected = {name: private.get(name, "0o640") for name in running if name != "."}
    assert running == {".": "0o750", **expected}
    assert {"alerts.jsonl", "daemon.json", "linnix.db", "linnix.db-wal"} <= running.keys()
    assert modes(state).items() <= {**running, **expected}.items()  # and nothing else later
    assert oct((tmp_path / "new").stat().st_mode & 0o7777) == "0o755"


@pytest.mark.slow
def test_a_daemon_whose_stderr_reader_went_away_reloads_and_stops_cleanly(
        tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 5000\n"})
    daemon, api = started(tmp_path, rules)
    try:
        daemon.close_stderr()
        daemon.signal(signal.SIGHUP)  # says "SIGHUP: reloading rules", "reloaded: ..."
        (reload,) = wait_for(lambda: reloads_of(api), 30, "the SIGHUP reload")
        assert (reload["actor"], reload["detail"]["accepted"]) == ("SIGHUP", True)
        assert api.get("/health") and daemon.proc.poll() is None
    finally:
        took = daemon.stop()
    assert daemon.proc.returncode == 0
    assert took < 5.0, f"took {took:.1f}s to stop"


def test_the_outline_of_the_alerts_file_shows_proposals_too() -> None:
    # it is what a test that waited in vain for an alert prints: it must not fail itself
    assert outline([
        {"type": "alert", "ts": 1.5, "rule": "tree", "state": "firing", "pid": 7},
        {"type": "action", "ts": 1.5, "rule": "tree", "action": "kill_tree", "pid": 7},
    ]) == [(1.5, "tree", "firing"), (1.5, "tree", "kill_tree")]


# ---- the built-in protected names ------------------------------------------------------------

def test_unprotecting_a_name_that_is_not_built_in_stops_the_start(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 5000\n"})
    config = tmp_path / "linnix.toml"
    config.write_text('[actions]\nunprotect = ["sshd", "sshd2"]\n')
    daemon = Daemon(tmp_path / "state", "--source", "poll", "--config", str(config),
                    rules=[str(rules)])
    assert daemon.proc.wait(60) == 2  # a configuration error, as every other
    daemon.collect()
    assert daemon.stderr.startswith(
        "linnix: actions.unprotect: 'sshd2' is not on the built-in protected list (systemd, ")
    assert "Traceback" not in daemon.stderr
    assert not (tmp_path / "state").exists()  # refused before anything was made


@pytest.mark.slow
def test_an_unprotected_built_in_name_is_said_at_start_and_audited(tmp_path: Path) -> None:
    rules = write(tmp_path / "rules", {"a.lnx": "rule a: cpu_pct > 5000\n"})
    config = tmp_path / "linnix.toml"
    config.write_text(f'[api]\nbind = "127.0.0.1:{free_port()}"\n'
                      '[actions]\nunprotect = ["screen", "conmon"]\n')
    daemon = Daemon(tmp_path / "state", "--source", "poll", "--config", str(config),
                    rules=[str(rules)])
    try:
        daemon.wait_ready()
        api = Api(tmp_path / "state")
        wait_for(lambda: api.get("/health"), 10, "the API")
        audited = [r["detail"] for r in api.audit() if r["event"] == "guards.unprotected"]
    finally:
        daemon.stop()
    assert audited == [{"names": ["conmon", "screen"]}]
    assert ("linnix: actions.unprotect: conmon, screen lose(s) the built-in protection: rules "
            "may act on them\n") in daemon.stderr


# ---- the terminal ----------------------------------------------------------------------------

def test_the_managers_action_events_reach_the_stream_and_the_terminal(tmp_path: Path) -> None:
    from linnix.api.stream import StreamHub
    from linnix.runtime.live import AlertLog

    out = io.StringIO()
    daemon = d.Daemon(d.DaemonOptions(rules=[], state_dir=str(tmp_path)), out=out)
    daemon.console = AlertLog(out)
    hub = StreamHub()
    publish = daemon._publish(hub)
    refused = {"id": 3, "rule": "r", "kind": "kill", "params": {}, "pid": 9, "comm": "bash",
               "status": "refused", "reason": "'sshd' is on the protected list"}
    publish("action", refused)
    publish("incident", {"id": 1, "state": "opened"})  # the stream's only
    assert out.getvalue().endswith(
        " REFUSED  r kill -> bash[9]: action #3 refused: 'sshd' is on the protected list\n")
    assert out.getvalue().count("\n") == 1
    assert [e.kind for e in hub._replay(0)] == ["action", "incident"]


def test_every_event_on_the_stream_says_when_it_happened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from linnix.api.stream import StreamHub

    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.25)
    daemon = d.Daemon(d.DaemonOptions(rules=[], state_dir=str(tmp_path)), out=io.StringIO())
    hub = StreamHub()
    publish = daemon._publish(hub)
    publish("incident", {"id": 1, "state": "resolved", "reason": "cleared"})
    publish("pause", {"actions": "active"})
    publish("alert", {"type": "alert", "ts": 3.0, "time": "2027-01-15T08:00:03.000Z"})
    times = [e.data["time"] for e in hub._replay(0)]
    # the manager's and the responder's events happen now; an alert keeps its transition's
    assert times == ["2027-01-15T08:00:00.250Z", "2027-01-15T08:00:00.250Z",
                     "2027-01-15T08:00:03.000Z"]

