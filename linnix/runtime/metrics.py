"""Prometheus metrics of the daemon, read from the engine's own counters at scrape time.

Nothing is counted twice and the hot path pays almost nothing: the engine
already keeps these numbers (a rule's time per tick goes into a bucket of
:mod:`linnix.engine.durations`); :class:`EngineCollector` turns them into
metric families when ``/metrics`` is scraped, on the trio thread like the
engine itself.  The audit log's chain head comes from the store's memory, not
from the disk.  There is no series per process: a process label would make a
new series for every pid.  ``docs/metrics.md`` documents every family.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

from .. import __version__
from ..plan import CompiledRule, Plan

__all__ = ["EngineCollector", "make_registry", "rules_hash"]

MIB = 1024 * 1024
# (resource label, kind label, the host attribute): PSI as the engine reads it, avg10
PRESSURE = (("cpu", "some", "psi_cpu_some"), ("memory", "some", "psi_mem_some"),
            ("memory", "full", "psi_mem_full"), ("io", "some", "psi_io_some"),
            ("io", "full", "psi_io_full"))
RATES = (("forks", "Processes created"), ("execs", "Program executions"),
         ("exits", "Processes that ended"))


class EngineCollector(Collector):
    """Reads a live daemon's counters (``daemon`` is duck-typed: see ``collect``)."""

    def __init__(self, daemon: Callable[[], Any]) -> None:
        self.daemon = daemon
        self._hashed: tuple[Plan, str] | None = None  # the plan last hashed, and its hash

    def collect(self) -> Iterator[Any]:
        d = self.daemon()
        yield _build_info()
        yield from _audit(getattr(d, "astore", None))
        yield from _notifications(getattr(d, "notifier", None))
        yield from _analyses(getattr(d, "analyses", None))
        yield from _paused(getattr(d, "action_manager", None))
        yield from _consoles(getattr(d, "consoles", None))
        core, engine, actions = d.core, d.engine, d.action_manager
        if core is None:
            return
        yield self._rules_info(core.plan)
        yield from _engine(core, engine)
        yield from _host(core.table.host, _now(core, engine))
        yield from _rules(core.evaluator.rules)
        yield from _alerts(core)
        yield from _event_rules(core.events.states)
        acts = CounterMetricFamily("linnix_actions", "Action state changes, by kind and status",
                                   labels=["kind", "status"])
        for (kind, status), n in sorted((actions.counts if actions is not None else {}).items()):
            acts.add_metric([kind, status], n)
        yield acts

    def _rules_info(self, plan: Plan) -> GaugeMetricFamily:
        if self._hashed is None or self._hashed[0] is not plan:  # hashed once per plan
            self._hashed = (plan, rules_hash(plan))
        info = GaugeMetricFamily(
            "linnix_rules_info", "The rule set in use: hash identifies what its rules mean "
            "(it changes when a reload changes them), rules counts the active ones",
            labels=["hash", "rules"])
        info.add_metric([self._hashed[1], str(len(plan.active))], 1)
        return info


def rules_hash(plan: Plan) -> str:
    """The first 16 hex digits of the SHA-256 of every rule of ``plan``, in order: what it
    means (see :func:`_meaning`), not where it was written."""
    digest = hashlib.sha256()
    for rule in plan.rules:
        digest.update(json.dumps(_meaning(rule), sort_keys=True).encode() + b"\n")
    return digest.hexdigest()[:16]


def _meaning(rule: CompiledRule) -> dict[str, Any]:
    """A rule as text, without its file, line or anything compiled from the rest."""
    return {
        "name": rule.name, "enabled": rule.enabled, "scope": rule.scope.value,
        "severity": rule.severity, "description": rule.description,
        "labels": dict(rule.labels), "tags": list(rule.tags), "message": rule.message.source,
        "actions": [a.describe() for a in rule.actions], "monitor": rule.mode_monitor,
        "when": rule.cond_text, "clear": rule.clear_text, "for": rule.for_s,
        "clear_for": rule.clear_for_s, "keep_firing_for": rule.keep_firing_for_s,
        "cooldown": rule.cooldown_s,
        "boundary": rule.boundary.text if rule.boundary is not None else None,
        **({} if rule.trigger is None else {
            "on": rule.trigger, "cooldown_by": list(rule.cooldown_by),
            "max_rate": [rule.max_rate, rule.max_rate_per_s]}),
    }


def _build_info() -> GaugeMetricFamily:
    info = GaugeMetricFamily("linnix_build_info", "The linnix version and the Python running it",
                             labels=["version", "python"])
    info.add_metric([__version__, platform.python_version()], 1)
    return info


def _engine(core: Any, engine: Any) -> Iterator[Any]:
    """Events, ticks and the process table."""
    events = CounterMetricFamily("linnix_events", "Events applied by the engine, by kind",
                                 labels=["kind"])
    for kind, n in sorted((engine.kinds if engine is not None else {}).items()):
        events.add_metric([kind], n)
    yield events
    yield CounterMetricFamily("linnix_lost_events",
                              "Events the kernel could not deliver (ring buffer full)",
                              value=core.table.lost_total)
    yield CounterMetricFamily("linnix_ticks", "Engine evaluation ticks", value=core.ticks)
    yield CounterMetricFamily("linnix_count_evictions",
                              "Keys (or event times) the execs/exits/crashes counters dropped "
                              "to stay bounded", value=core.evaluator.tally.evictions)
    yield GaugeMetricFamily("linnix_processes", "Live processes in the process table",
                            value=len(core.table.procs))
    lag = engine.last_lag if engine is not None else None
    if lag is not None:  # no tick has run yet: nothing was measured
        yield GaugeMetricFamily("linnix_tick_lag_seconds",
                                "How late the most recent tick ran after its due time",
                                value=lag)


def _now(core: Any, engine: Any) -> float | None:
    """The engine's present (None before its first event): rates are counted up to it, or
    up to the latest event when that came later (a window forgets what is a second older
    than its latest event)."""
    if engine is None or core.last_ts is None:
        return None
    return max(float(engine.clock.now() - engine.delay), float(core.last_ts))


def _host(host: Any, now: float | None) -> Iterator[Any]:
    """The host's latest sample in base units; a value not sampled yet is left out."""
    scaled = (("linnix_host_cpu_usage_ratio", "CPU in use over all CPUs, 0-1",
               host.cpu_pct, 0.01),
              ("linnix_host_memory_used_ratio", "Memory in use (total less available), 0-1",
               host.mem_used_pct, 0.01),
              ("linnix_host_memory_available_bytes", "Memory available for new work",
               host.mem_available_mb, MIB),
              ("linnix_host_memory_total_bytes", "Total memory", host.mem_total_mb, MIB))
    for name, doc, value, scale in scaled:
        if value is not None:
            yield GaugeMetricFamily(name, doc, value=value * scale)
    pressure = GaugeMetricFamily(
        "linnix_host_pressure_avg10_ratio",
        "Pressure stall information: share of the last 10 s in which some (or all) tasks "
        "waited for the resource, 0-1", labels=["resource", "kind"])
    for resource, kind, attribute in PRESSURE:
        value = getattr(host, attribute)
        if value is not None:
            pressure.add_metric([resource, kind], value / 100)
    if pressure.samples:
        yield pressure
    if now is None:
        return
    for attribute, what in RATES:
        yield GaugeMetricFamily(f"linnix_host_{attribute}_per_second",
                                f"{what} in the trailing second",
                                value=getattr(host, attribute).peek(now))


def _rules(states: Any) -> Iterator[Any]:
    """Per rule: evaluations, errors, time, and its instances pending or firing."""
    evals = CounterMetricFamily("linnix_rule_evaluations",
                                "Condition evaluations, by rule", labels=["rule"])
    seconds = CounterMetricFamily("linnix_rule_evaluation_seconds",
                                  "Time spent evaluating each rule (the histogram's sum)",
                                  labels=["rule"])
    durations = HistogramMetricFamily(
        "linnix_rule_evaluation_duration_seconds",
        "Time each rule took at each tick it was evaluated at", labels=["rule"])
    errors = CounterMetricFamily("linnix_rule_errors",
                                 "Evaluation errors, by rule", labels=["rule"])
    active = GaugeMetricFamily("linnix_alerts_active", "Instances pending or firing",
                               labels=["rule", "state"])
    for state in states:
        name, timed = state.rule.name, state.durations
        evals.add_metric([name], state.evaluations)
        seconds.add_metric([name], timed.seconds)
        durations.add_metric([name], [(_le(bound), n)
                                      for bound, n in timed.cumulative()],
                             sum_value=timed.seconds)
        errors.add_metric([name], state.errors)
        for kind, n in state.counts().items():
            active.add_metric([name, kind], n)
    yield from (evals, seconds, durations, errors, active)


def _le(bound: float) -> str:
    """A bucket's upper bound as the exposition format writes it."""
    return "+Inf" if math.isinf(bound) else repr(bound)


def _alerts(core: Any) -> Iterator[Any]:
    """Transitions so far, and the alerts active now in the form of Prometheus's ALERTS."""
    alerts = CounterMetricFamily("linnix_alerts", "Alert transitions, by rule and state",
                                 labels=["rule", "state"])
    for (rule, state_name), n in sorted(core.alert_counts.items()):
        alerts.add_metric([rule, state_name], n)
    yield alerts
    now = GaugeMetricFamily(
        "linnix_alert", "Instances of each rule pending or firing now (a rule over processes "
        "has one per process); absent when there is none",
        labels=["alertname", "severity", "state", "scope"])
    for state in core.evaluator.rules:
        rule = state.rule
        for state_name, n in state.counts().items():
            if n:
                now.add_metric([rule.name, rule.severity, state_name, rule.scope.value], n)
    yield now


def _event_rules(states: Any) -> Iterator[Any]:
    """Per event rule: its evaluations and errors, the matches its flood control
    suppressed (by reason), the cooldown keys evicted while their cooldown ran and the
    size of its cooldown key table."""
    if not states:
        return
    evals = CounterMetricFamily("linnix_event_rule_evaluations",
                                "Event rule evaluations (one per matching event), by rule",
                                labels=["rule", "trigger"])
    errors = CounterMetricFamily("linnix_event_rule_errors", "Event rule evaluation errors",
                                 labels=["rule"])
    quiet = CounterMetricFamily(
        "linnix_event_rule_suppressed", "Matches of an event rule that were not alerted, by "
        "reason (cooldown, max_rate)", labels=["rule", "reason"])
    evicted = CounterMetricFamily(
        "linnix_event_rule_cooldown_evictions", "Cooldown keys an event rule forgot while "
        "their cooldown still ran (its key table was full)", labels=["rule"])
    keys = GaugeMetricFamily(
        "linnix_event_rule_cooldown_keys", "Keys in an event rule's cooldown table now "
        "(bounded: the memory names chosen by processes can take)", labels=["rule"])
    for state in states:
        name = state.rule.name
        evals.add_metric([name, state.rule.trigger], state.evaluations)
        errors.add_metric([name], state.errors)
        for reason in ("cooldown", "max_rate"):
            quiet.add_metric([name, reason], state.suppressed[reason])
        evicted.add_metric([name], state.evicted)
        keys.add_metric([name], len(state.last))
    yield from (evals, errors, quiet, evicted, keys)


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


def _consoles(consoles: Any) -> Iterator[Any]:
    """Lines the daemon's stdout and stderr dropped (``runtime/console.py``); none for a
    stream without a console."""
    if not consoles:
        return
    family = CounterMetricFamily(
        "linnix_console_dropped_lines", "Lines not written to the daemon's stdout or stderr: "
        "the reader did not keep up, or went away", labels=["stream"])
    for name, console in sorted(consoles.items()):
        family.add_metric([name], console.dropped)
    yield family


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


def _analyses(analyses: Any) -> Iterator[Any]:
    """Analyses by backend and outcome, the model's dropped hypotheses, its breaker."""
    if analyses is None:
        return
    total = CounterMetricFamily(
        "linnix_analysis", "Incident analyses by backend (builtin, or the model's: openai) and "
        "outcome (builtin: ok, failed, dropped; a model: verified, unverified, failed, "
        "timeout, skipped)", labels=["backend", "outcome"])
    for (backend, outcome), n in sorted(analyses.outcomes.items()):
        total.add_metric([backend, outcome], n)
    yield total
    model = analyses.model
    if model is None:  # no model: nothing of one to say
        return
    yield CounterMetricFamily(
        "linnix_analysis_dropped_hypotheses", "Hypotheses of the model dropped because they "
        "cited no fact, or facts not in the analysis", value=analyses.dropped_hypotheses)
    yield GaugeMetricFamily(
        "linnix_analysis_backend_open", "1 while the model is not asked (its breaker is open "
        "after consecutive failures), else 0", value=1 if model.breaker.open else 0)


def make_registry(daemon: Callable[[], Any]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(EngineCollector(daemon))
    return registry
