"""The daemon's Prometheus metrics, read from the engine's own counters at scrape time."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from engine_support import core_for, fork, lost, sample
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from linnix.actions.store import Store
from linnix.runtime.metrics import make_registry
from linnix.runtime.notify.delivery import Delivery


def scrape(daemon: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, keyed by name and labels."""
    text = generate_latest(make_registry(lambda: daemon)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_scrape_reads_what_the_engine_counted() -> None:
    core = core_for("rule busy: cpu_pct > 50\nrule idle: cpu_pct < 0\n")
    core.feed([fork(0.0, 10, 1, "burner"), sample(0.2, 10, cpu_pct=90.0), lost(0.3, 4),
               fork(1.0, 11, 1, "other")])
    core.finish()
    engine = SimpleNamespace(kinds={"fork": 2, "sample": 1, "lost": 1}, last_lag=0.125)
    manager = SimpleNamespace(counts={"pending": 2, "succeeded": 1})
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
    assert got[("linnix_actions_total", (("status", "pending"),))] == 2


def test_the_tick_lag_is_absent_until_a_tick_has_run() -> None:
    core = core_for("rule busy: cpu_pct > 50\n")
    engine = SimpleNamespace(kinds={}, last_lag=None)
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


def test_the_pause_switch_is_a_gauge() -> None:
    daemon = SimpleNamespace(core=None, engine=None,
                             action_manager=SimpleNamespace(paused=None))
    assert scrape(daemon) == {("linnix_actions_paused", ()): 0}
    daemon.action_manager.paused = object()  # a Pause
    assert scrape(daemon) == {("linnix_actions_paused", ()): 1}
