"""The daemon's Prometheus metrics, read from the engine's own counters at scrape time."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine_support import core_for, execve, exit_, fork, lost, sample, system
from live_support import require_program
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from support import ROOT

from linnix import __version__
from linnix.actions.store import Store
from linnix.engine.tally import MAX_KEYS
from linnix.language.pipeline import compile_text
from linnix.runtime.metrics import make_registry, rules_hash
from linnix.runtime.notify.delivery import Delivery

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(daemon: Any, build_info: bool = False) -> Samples:
    """Every sample of one scrape, keyed by name and labels (``linnix_build_info``, in
    every scrape, only when asked for)."""
    text = generate_latest(make_registry(lambda: daemon)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if build_info or s.name != "linnix_build_info"}


def test_a_scrape_reads_what_the_engine_counted() -> None:
    core = core_for("rule busy: cpu_pct > 50\nrule idle: cpu_pct < 0\n")
    core.feed([fork(0.0, 10, 1, "burner"), sample(0.2, 10, cpu_pct=90.0), lost(0.3, 4),
               fork(1.0, 11, 1, "other")])
    core.finish()
    engine = SimpleNamespace(kinds={"fork": 2, "sample": 1, "lost": 1}, last_lag=0.125,
                             clock=SimpleNamespace(now=lambda: 1.0), delay=0.0)
    manager = SimpleNamespace(counts={("kill", "pending"): 2, ("renice", "succeeded"): 1})
    got = scrape(SimpleNamespace(core=core, engine=engine, action_manager=manager))
    assert got[("linnix_events_total", (("kind", "fork"),))] == 2
    assert got[("linnix_events_total", (("kind", "lost"),))] == 1
    assert got[("linnix_lost_events_total", ())] == 4
    assert got[("linnix_ticks_total", ())] == core.ticks == 3
    assert got[("linnix_processes", ())] == 2
    assert got[("linnix_tick_lag_seconds", ())] == 0.125
    assert got[("linnix_alerts_total", (("rule", "busy"), ("state", "firing")))] == 1
    assert got[("linnix_alerts_active", (("rule", "busy"), ("state", "firing")))] == 1
    assert got[("linnix_rule_errors_total", (("rule", "idle"),))] == 0
    assert got[("linnix_rule_evaluations_total", (("rule", "busy"),))] >= 1
    assert got[("linnix_actions_total", (("kind", "kill"), ("status", "pending")))] == 2
    assert got[("linnix_actions_total", (("kind", "renice"), ("status", "succeeded")))] == 1


def test_the_tick_lag_is_absent_until_a_tick_has_run() -> None:
    core = core_for("rule busy: cpu_pct > 50\n")
    engine = SimpleNamespace(kinds={}, last_lag=None, clock=SimpleNamespace(now=lambda: 0.0),
                             delay=0.0)
    manager = SimpleNamespace(counts={})
    got = scrape(SimpleNamespace(core=core, engine=engine, action_manager=manager))
    assert ("linnix_tick_lag_seconds", ()) not in got
    assert got[("linnix_ticks_total", ())] == 0


def test_nothing_is_reported_before_the_engine_exists() -> None:
    daemon = SimpleNamespace(core=None, engine=None, action_manager=None)
    assert scrape(daemon) == {}


def test_the_audit_chain_head_is_exported_for_keeping_off_the_host(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "linnix.db"))
    try:
        daemon = SimpleNamespace(core=None, engine=None, action_manager=None,
                                 astore=SimpleNamespace(store=store))
        assert scrape(daemon) == {("linnix_audit_records", (("head", "0" * 64),
                                                            ("head_id", "0"))): 0}
        store.audit("linnix", "daemon.started")
        last = store.audit("alice", "action.approved", action_id=1)
        head = store.verify_chain().head
        assert scrape(daemon) == {
            ("linnix_audit_records", (("head", head.hash), ("head_id", str(last)))): 2}
    finally:
        store.close()



def receivers() -> SimpleNamespace:
    """A notifier with one Alertmanager that took three and one webhook whose queue is full."""
    async def send(batch: Any) -> None:
        raise AssertionError("never sent here")

    am = Delivery[int]("http://am:9093", send, capacity=10)
    am.put([1, 2, 3])
    am.queue.clear()
    am.sent, am.failed = 3, 2
    hook = Delivery[int]("webhook[0] https://hooks.example.org", send, capacity=2)
    hook.put([1, 2, 3])
    return SimpleNamespace(receivers=[am, hook])


def test_notifications_are_counted_by_receiver() -> None:
    daemon = SimpleNamespace(core=None, engine=None, action_manager=None, notifier=receivers())
    am, hook = (("receiver", "http://am:9093"),), (("receiver",
                                                     "webhook[0] https://hooks.example.org"),)
    assert scrape(daemon) == {
        ("linnix_notifications_sent_total", am): 3, ("linnix_notifications_sent_total", hook): 0,
        ("linnix_notifications_failed_total", am): 2,
        ("linnix_notifications_failed_total", hook): 0,
        ("linnix_notifications_dropped_total", am): 0,
        ("linnix_notifications_dropped_total", hook): 1,
        ("linnix_notifications_queue_length", am): 0,
        ("linnix_notifications_queue_length", hook): 2,
    }


def test_no_notification_metric_without_a_receiver() -> None:
    daemon = SimpleNamespace(core=None, engine=None, action_manager=None, notifier=None)
    assert scrape(daemon) == {}


def analyses(open_: bool, model: bool = True) -> SimpleNamespace:
    """The daemon's analyses after a few incidents (``runtime/analyst.py``'s counters)."""
    return SimpleNamespace(
        outcomes={("builtin", "ok"): 4, ("builtin", "dropped"): 1, ("openai", "verified"): 2,
                  ("openai", "timeout"): 1, ("openai", "skipped"): 1},
        dropped_hypotheses=3,
        model=SimpleNamespace(breaker=SimpleNamespace(open=open_)) if model else None)


def test_analyses_are_counted_by_backend_and_outcome_with_the_breaker() -> None:
    daemon = SimpleNamespace(core=None, engine=None, action_manager=None,
                             analyses=analyses(open_=True))
    total = "linnix_analysis_total"
    assert scrape(daemon) == {
        (total, (("backend", "builtin"), ("outcome", "dropped"))): 1,
        (total, (("backend", "builtin"), ("outcome", "ok"))): 4,
        (total, (("backend", "openai"), ("outcome", "skipped"))): 1,
        (total, (("backend", "openai"), ("outcome", "timeout"))): 1,
        (total, (("backend", "openai"), ("outcome", "verified"))): 2,
        ("linnix_analysis_dropped_hypotheses_total", ()): 3,
        ("linnix_analysis_backend_open", ()): 1,
    }
    daemon.analyses = analyses(open_=False)
    assert scrape(daemon)[("linnix_analysis_backend_open", ())] == 0
    daemon.analyses = analyses(open_=False, model=False)  # no model: nothing of one
    assert {name for name, _ in scrape(daemon)} == {total}


def engine_at(now: float, **kw: Any) -> SimpleNamespace:
    """A live engine whose clock reads ``now`` (no delay)."""
    return SimpleNamespace(**{"kinds": {}, "last_lag": None, "delay": 0.0,
                              "clock": SimpleNamespace(now=lambda: now), **kw})


def daemon_of(core: Any, now: float, counts: dict[tuple[str, str], int] | None = None
              ) -> SimpleNamespace:
    return SimpleNamespace(core=core, engine=engine_at(now),
                           action_manager=SimpleNamespace(counts=counts or {}))


def only(got: Samples, name: str) -> Samples:
    return {k: v for k, v in got.items() if k[0] == name}


ALERTING = """\
rule busy { when cpu_pct > 50  severity critical }
rule slow { when cpu_pct > 50  for 10s }
rule tree { when subtree_procs > 2  severity info }
rule never { when cpu_pct < 0 }
"""


def test_linnix_alert_counts_the_instances_of_each_rule_pending_or_firing() -> None:
    core = core_for(ALERTING)
    core.feed([fork(0.0, 10, 1, "a"), fork(0.0, 11, 1, "b"), fork(0.0, 12, 11, "c"),
               fork(0.0, 13, 12, "d"), sample(0.2, 10, cpu_pct=90.0),
               sample(0.2, 11, cpu_pct=80.0), sample(1.0, 12, cpu_pct=1.0)])
    core.finish()
    got = only(scrape(daemon_of(core, 1.0)), "linnix_alert")
    assert got == {
        ("linnix_alert", (("alertname", "busy"), ("scope", "process"),
                          ("severity", "critical"), ("state", "firing"))): 2,
        ("linnix_alert", (("alertname", "slow"), ("scope", "process"),
                          ("severity", "warning"), ("state", "pending"))): 2,
        ("linnix_alert", (("alertname", "tree"), ("scope", "subtree"),
                          ("severity", "info"), ("state", "firing"))): 1,
    }  # 'never' has no instance: no series, as with Prometheus's ALERTS


def test_no_series_is_per_process() -> None:
    core = core_for(ALERTING)
    core.feed([fork(0.0, 10, 1, "a"), sample(0.2, 10, cpu_pct=90.0)])
    core.finish()
    labels = {name for _, pairs in scrape(daemon_of(core, 1.0)) for name, _ in pairs}
    assert labels.isdisjoint({"pid", "comm", "exe", "ppid", "cmdline"})


def test_host_values_are_absent_until_sampled_then_in_base_units() -> None:
    core = core_for("rule r: host_cpu_pct > 90\n")
    assert not [k for k in scrape(daemon_of(core, 0.0)) if k[0].startswith("linnix_host_")]
    core.feed([system(1.0, cpu_pct=25.0, mem_total_kb=8 * 1024 * 1024,
                      mem_available_kb=2 * 1024 * 1024, psi_cpu_some=1.5, psi_io_full=0.0)])
    got = {k: v for k, v in scrape(daemon_of(core, 1.0)).items()
           if k[0].startswith("linnix_host_")}
    pressure = "linnix_host_pressure_avg10_ratio"
    assert got == {
        ("linnix_host_cpu_usage_ratio", ()): 0.25,
        ("linnix_host_memory_used_ratio", ()): 0.75,
        ("linnix_host_memory_available_bytes", ()): 2 * 1024 ** 3,
        ("linnix_host_memory_total_bytes", ()): 8 * 1024 ** 3,
        (pressure, (("kind", "some"), ("resource", "cpu"))): 0.015,
        (pressure, (("kind", "full"), ("resource", "io"))): 0.0,  # measured: a true zero
        ("linnix_host_forks_per_second", ()): 0,
        ("linnix_host_execs_per_second", ()): 0,
        ("linnix_host_exits_per_second", ()): 0,
    }  # memory pressure was not read: absent, not 0


def test_rates_count_the_trailing_second_and_a_scrape_changes_no_tick() -> None:
    core = core_for("rule storm: forks_per_sec >= 3\n", tick=1.0)
    core.feed([fork(0.0, 10, 1), fork(1.2, 11, 1), fork(1.5, 12, 1), fork(1.9, 13, 1),
               execve(1.6, 11, "x"), exit_(1.95, 12)])
    rates = {k[0]: v for k, v in scrape(daemon_of(core, 2.1)).items() if "_per_" in k[0]}
    assert rates == {"linnix_host_forks_per_second": 3, "linnix_host_execs_per_second": 1,
                     "linnix_host_exits_per_second": 1}
    later = {k[0]: v for k, v in scrape(daemon_of(core, 5.0)).items() if "_per_" in k[0]}
    assert later["linnix_host_forks_per_second"] == 0
    core.run_until(2.0)  # the tick at 2.0 still sees the three forks the scrapes did not drop
    assert [(o.rule, o.state) for o in core.drain()] == [("storm", "firing")]


def test_each_rules_time_per_tick_is_a_histogram() -> None:
    core = core_for(ALERTING)
    core.skip_idle = False  # every tick evaluates every rule
    core.feed([fork(0.0, 10, 1, "a"), sample(4.6, 10, cpu_pct=90.0)])
    core.finish()
    got = scrape(daemon_of(core, 5.0))
    name = "linnix_rule_evaluation_duration_seconds"
    for rule in ("busy", "slow", "tree", "never"):
        label = (("rule", rule),)
        buckets = sorted((float(dict(k[1])["le"]), v) for k, v in got.items()
                         if k[0] == f"{name}_bucket" and dict(k[1])["rule"] == rule)
        assert len(buckets) == 18 and buckets[-1] == (float("inf"), core.ticks)
        assert [n for _, n in buckets] == sorted(n for _, n in buckets)
        assert got[(f"{name}_count", label)] == core.ticks == 10
        assert got[(f"{name}_sum", label)] == got[("linnix_rule_evaluation_seconds_total",
                                                   label)] > 0


def test_the_rules_hash_follows_what_the_rules_mean() -> None:
    text = "rule a { when cpu_pct > 50 }\nrule b { when rss_mb > 10  severity info }\n"
    same = rules_hash(compile_text(text, "/etc/linnix/rules/x.lnx"))
    assert same == rules_hash(compile_text("\n\n" + text, "/elsewhere/y.lnx"))
    assert len(same) == 16 and int(same, 16) >= 0
    for changed in (text.replace("50", "60"), text.replace("info", "critical"),
                    text.replace("rule b", "rule c"), text + "rule d: cpu_pct > 1\n"):
        assert rules_hash(compile_text(changed)) != same, changed


def test_the_rules_hash_follows_an_event_rules_trigger_and_flood_control() -> None:
    base = 'rule a {\n on exec\n when comm == "x"\n cooldown 1m\n}\n'
    variants = (base, base.replace("exec", "fork"), base.replace("1m", "1m by uid"),
                base.replace("}", "max_rate 5/s\n}"), base.replace(" on exec\n", ""))
    assert len({rules_hash(compile_text(text)) for text in variants}) == len(variants)


def test_rules_info_changes_on_reload_and_build_info_names_the_version() -> None:
    first = compile_text("rule a: cpu_pct > 50\nrule b: cpu_pct > 60\n")
    core = core_for(first)
    daemon = daemon_of(core, 0.0)
    registry = make_registry(lambda: daemon)

    def info() -> Samples:
        text = generate_latest(registry).decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(text) for s in f.samples
                if s.name.endswith("_info")}

    assert info() == {
        ("linnix_build_info", (("python", platform.python_version()),
                               ("version", __version__))): 1,
        ("linnix_rules_info", (("hash", rules_hash(first)), ("rules", "2"))): 1}
    second = compile_text("rule a: cpu_pct > 55\n")
    core.replace_plan(second)
    assert info()[("linnix_rules_info", (("hash", rules_hash(second)), ("rules", "1")))] == 1


def full_scrape(tmp: Path) -> bytes:
    """Every family at once, filled as on a busy host."""
    core = core_for(ALERTING + 'rule spawned { on exec  when comm == "x" }\n')
    core.feed([fork(0.0, 10, 1, "a"), fork(0.5, 11, 10, "b"), fork(0.6, 12, 11, "c"),
               execve(0.7, 12, "x"), sample(0.8, 10, cpu_pct=90.0), lost(0.9, 2),
               system(1.0, cpu_pct=40.0, mem_total_kb=4096, mem_available_kb=1024,
                      psi_cpu_some=1.0, psi_mem_some=2.0, psi_mem_full=0.5, psi_io_some=3.0,
                      psi_io_full=0.25), sample(12.0, 11, cpu_pct=70.0), exit_(12.5, 12)])
    core.finish()
    store = Store(str(tmp / "linnix.db"))
    try:
        store.audit("linnix", "daemon.started")
        daemon = SimpleNamespace(
            core=core, engine=engine_at(13.0, kinds={"fork": 3, "sample": 2}, last_lag=0.01),
            action_manager=SimpleNamespace(counts={("kill", "pending"): 1,
                                                   ("kill", "expired"): 1}),
            notifier=receivers(), astore=SimpleNamespace(store=store),
            consoles={"stdout": SimpleNamespace(dropped=3)}, analyses=analyses(open_=True))
        return generate_latest(make_registry(lambda: daemon))
    finally:
        store.close()


def test_event_rules_count_their_evaluations_and_what_flood_control_suppressed() -> None:
    core = core_for('rule spawned {\n on exec\n when comm == "x"\n cooldown 1m\n}\n'
                    "rule gone: cpu_pct > 50\n")
    core.feed([fork(0.0, 10, 1, "a"), execve(0.1, 10, "x"), execve(0.2, 10, "x"),
               execve(0.3, 10, "y")])
    got = scrape(daemon_of(core, 1.0))
    assert got[("linnix_event_rule_evaluations_total", (("rule", "spawned"),
                                                        ("trigger", "exec")))] == 3
    assert got[("linnix_event_rule_suppressed_total", (("reason", "cooldown"),
                                                       ("rule", "spawned")))] == 1
    assert got[("linnix_event_rule_suppressed_total", (("reason", "max_rate"),
                                                       ("rule", "spawned")))] == 0
    assert got[("linnix_event_rule_cooldown_evictions_total", (("rule", "spawned"),))] == 0
    assert got[("linnix_event_rule_errors_total", (("rule", "spawned"),))] == 0
    assert got[("linnix_event_rule_cooldown_keys", (("rule", "spawned"),))] == 1  # x's
    assert got[("linnix_alerts_total", (("rule", "spawned"), ("state", "firing")))] == 1
    plain = scrape(daemon_of(core_for("rule gone: cpu_pct > 50\n"), 1.0))
    assert not [name for name, _ in plain if name.startswith("linnix_event_rule")]


def test_a_full_scrape_passes_promtool(tmp_path: Path) -> None:
    """``promtool check metrics`` also lints names, units and help texts."""
    promtool = require_program("promtool", "prometheus")
    text = full_scrape(tmp_path)
    names = {f.name for f in text_string_to_metric_families(text.decode())}
    assert {"linnix_alert", "linnix_host_pressure_avg10_ratio", "linnix_rules_info",
            "linnix_rule_evaluation_duration_seconds", "linnix_actions",
            "linnix_notifications_sent", "linnix_audit_records", "linnix_analysis",
            "linnix_analysis_backend_open"} <= names
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            timeout=60, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), result


def test_every_metric_is_documented(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    families = text_string_to_metric_families(full_scrape(tmp_path).decode())
    scraped = {f.name + ("_total" if f.type == "counter" else "") for f in families}
    assert len(scraped) > 25
    assert {name for name in scraped if f"`{name}`" not in doc} == set()


def test_the_documented_scrape_config_and_alerting_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = require_program("promtool", "prometheus")
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in doc.split("```yaml\n")[1:]]
    (config,) = [b for b in blocks if b.startswith("# prometheus.yml")]
    (rules,) = [b for b in blocks if b.startswith("# rules.yml")]
    for what, text in (("config", config), ("rules", rules)):
        path = tmp_path / f"{what}.yml"
        path.write_text(text)
        result = subprocess.run([promtool, "check", what, str(path)], capture_output=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result


def test_lines_the_terminal_dropped_are_counted_by_stream_and_absent_without_a_console(
        ) -> None:
    daemon = SimpleNamespace(core=None, engine=None, action_manager=None, consoles={
        "stdout": SimpleNamespace(dropped=12), "stderr": SimpleNamespace(dropped=0)})
    assert scrape(daemon) == {
        ("linnix_console_dropped_lines_total", (("stream", "stderr"),)): 0,
        ("linnix_console_dropped_lines_total", (("stream", "stdout"),)): 12}
    daemon.consoles = {}  # a daemon writing to a StringIO: nothing to count
    assert scrape(daemon) == {}


def test_the_pause_switch_is_a_gauge() -> None:
    daemon = SimpleNamespace(core=None, engine=None,
                             action_manager=SimpleNamespace(paused=None))
    assert scrape(daemon) == {("linnix_actions_paused", ()): 0}
    daemon.action_manager.paused = object()  # a Pause
    assert scrape(daemon) == {("linnix_actions_paused", ()): 1}


def test_a_scrape_counts_the_event_counters_evictions() -> None:
    core = core_for("rule restarts: execs(exe, 1m) > 20\n")
    events = [fork(0.0, 1, 0, "init")]
    events += [execve(1.0, 1, "x", exe=f"/tmp/{i}") for i in range(MAX_KEYS + 3)]
    core.feed(events)
    core.finish()
    engine = SimpleNamespace(kinds={}, last_lag=None, clock=SimpleNamespace(now=lambda: 1.0),
                             delay=0.0)
    got = scrape(SimpleNamespace(core=core, engine=engine, action_manager=None))
    assert got[("linnix_count_evictions_total", ())] == 3  # the three oldest exes
