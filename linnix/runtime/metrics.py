"""Prometheus metrics of the daemon, read from the engine's own counters at scrape time.

Nothing is counted twice and the hot path pays nothing: the engine already
keeps these numbers; :class:`EngineCollector` turns them into metric families
when ``/metrics`` is scraped.  The audit log's chain head comes from the store's
memory, not from the disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["EngineCollector", "make_registry"]


class EngineCollector(Collector):
    """Reads a live daemon's counters (``daemon`` is duck-typed: see ``collect``)."""

    def __init__(self, daemon: Callable[[], Any]) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Any]:
        d = self.daemon()
        yield from _audit(getattr(d, "astore", None))
        yield from _notifications(getattr(d, "notifier", None))
        yield from _paused(getattr(d, "action_manager", None))
        core, engine, actions = d.core, d.engine, d.action_manager
        if core is None:
            return
        events = CounterMetricFamily("linnix_events", "Events applied by the engine, by kind",
                                     labels=["kind"])
        for kind, n in sorted((engine.kinds if engine is not None else {}).items()):
            events.add_metric([kind], n)
        yield events
        yield CounterMetricFamily("linnix_lost_events",
                                  "Events the kernel could not deliver (ring buffer full)",
                                  value=core.table.lost_total)
        yield CounterMetricFamily("linnix_ticks", "Engine evaluation ticks", value=core.ticks)
        yield GaugeMetricFamily("linnix_processes", "Live processes in the process table",
                                value=len(core.table.procs))
        lag = engine.last_lag if engine is not None else None
        if lag is not None:  # no tick has run yet: nothing was measured
            yield GaugeMetricFamily("linnix_tick_lag_seconds",
                                    "How late the most recent tick ran after its due time",
                                    value=lag)
        evals = CounterMetricFamily("linnix_rule_evaluations",
                                    "Condition evaluations, by rule", labels=["rule"])
        seconds = CounterMetricFamily("linnix_rule_evaluation_seconds",
                                      "Time spent evaluating each rule", labels=["rule"])
        errors = CounterMetricFamily("linnix_rule_errors",
                                     "Evaluation errors, by rule", labels=["rule"])
        active = GaugeMetricFamily("linnix_alerts_active", "Instances pending or firing",
                                   labels=["rule", "state"])
        for state in core.evaluator.rules:
            name = state.rule.name
            evals.add_metric([name], state.evaluations)
            seconds.add_metric([name], state.seconds)
            errors.add_metric([name], state.errors)
            for kind, n in state.counts().items():
                active.add_metric([name, kind], n)
        yield from (evals, seconds, errors, active)
        alerts = CounterMetricFamily("linnix_alerts", "Alert transitions, by rule and state",
                                     labels=["rule", "state"])
        for (rule, state_name), n in sorted(core.alert_counts.items()):
            alerts.add_metric([rule, state_name], n)
        yield alerts
        acts = CounterMetricFamily("linnix_actions", "Action state changes, by status",
                                   labels=["status"])
        for status, n in sorted((actions.counts if actions is not None else {}).items()):
            acts.add_metric([status], n)
        yield acts


def _audit(astore: Any) -> Iterator[Any]:
    """The audit log's chain head: its hash as a label, so that a scraper keeps it off the
    host (``linnix audit verify --head HASH`` checks the log against it)."""
    if astore is None:
        return
    head = astore.store.chain_head  # held in memory: a scrape never waits for the disk
    chain = GaugeMetricFamily(
        "linnix_audit_records",
        "Records in the audit log's hash chain; head is the newest one's hash (the anchor "
        "left by retention when there is none) and head_id its id",
        labels=["head", "head_id"])
    chain.add_metric([head.hash, str(head.id)], head.rows)
    yield chain


def _paused(manager: Any) -> Iterator[Any]:
    """1 while every action is paused (``linnix actions pause``), else 0."""
    if manager is None:
        return
    paused = getattr(manager, "paused", None)  # duck-typed, like the daemon
    yield GaugeMetricFamily("linnix_actions_paused",
                            "1 while every action is paused (linnix actions pause), else 0",
                            value=0 if paused is None else 1)


def _notifications(notifier: Any) -> Iterator[Any]:
    """Per receiver of ``[notify]``: what was sent, failed, dropped, and is waiting."""
    if notifier is None:
        return
    families = (
        (CounterMetricFamily, "linnix_notifications_sent",
         "Notifications a receiver accepted (alerts for Alertmanager, transitions for a "
         "webhook)", "sent"),
        (CounterMetricFamily, "linnix_notifications_failed",
         "Notifications in tries that failed (counted again at each try)", "failed"),
        (CounterMetricFamily, "linnix_notifications_dropped",
         "Notifications given up: the queue was full, the receiver refused them, or the "
         "daemon stopped", "dropped"),
        (GaugeMetricFamily, "linnix_notifications_queue_length",
         "Notifications waiting to be sent", "waiting"),
    )
    for kind, name, doc, attribute in families:
        family = kind(name, doc, labels=["receiver"])
        for delivery in notifier.receivers:
            family.add_metric([delivery.receiver], getattr(delivery, attribute))
        yield family


def make_registry(daemon: Callable[[], Any]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(EngineCollector(daemon))
    return registry
