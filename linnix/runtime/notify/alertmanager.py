"""Alerts as Alertmanager receives them from Prometheus, and when to send them again.

An alert is identified by its labels: ``alertname`` (the rule), ``severity``,
``instance`` (this host), ``scope``, the rule's own ``labels { }``, and ``pid``
and ``comm`` for process and subtree rules.  The message is the ``summary``
annotation and the rule's description, when it has one, the ``description``.

While an instance fires it is sent again every ``resend`` seconds, each time
saying it lasts until ``4 * resend`` from then: should the daemon stop
sending (it stopped, or cannot reach Alertmanager), Alertmanager resolves
the alert by itself.  When the instance resolves it is sent once more with
``endsAt`` the time it resolved.  Pending instances are never sent.  An event
rule's alert (``on exec``, ...) is sent once, ending ``EVENT_ENDS_S`` after it fired.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ...engine.evaluator import Alert
from ...engine.rulestate import InstanceKey
from ...timefmt import rfc3339
from .delivery import SendFailedError, SendRefusedError
from .http import Endpoint, TransportError, post

__all__ = ["API_PATH", "EVENT_ENDS_S", "Book", "instance_key", "labels_of", "payload",
           "rfc3339"]

API_PATH = "/api/v2/alerts"
VALID_FOR = 4  # an alert sent lasts this many resend intervals, as Prometheus has it
# An event rule's alert is sent once and lasts this long: past Alertmanager's usual
# group_wait and group_interval, so that it is notified firing before it ends.
EVENT_ENDS_S = 300.0
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_]")

Key = InstanceKey


def instance_key(alert: Alert) -> Key:
    """What tells one instance of a rule from another (a pid is reused, its start is not;
    a cgroup's instance is its path)."""
    return alert.instance


def _label_name(name: str) -> str:
    """A rule's label key as a label name Alertmanager accepts."""
    if _LABEL_NAME.fullmatch(name):
        return name
    fixed = _NOT_IN_NAME.sub("_", name)
    return fixed if _LABEL_NAME.fullmatch(fixed) else f"_{fixed}"


def labels_of(alert: Alert, instance: str) -> dict[str, str]:
    """The alert's labels; linnix's own take precedence over a rule's of the same name."""
    labels = {_label_name(k): v for k, v in alert.labels.items() if v != ""}
    labels.update(alertname=alert.rule, severity=alert.severity, instance=instance,
                  scope=alert.scope)
    if alert.scope != "system" and alert.pid is not None:
        labels["pid"] = str(alert.pid)
        if alert.comm:
            labels["comm"] = alert.comm
    return labels


def payload(alert: Alert, *, instance: str, starts: float, description: str | None,
            generator: str | None) -> dict[str, Any]:
    """The alert as Alertmanager's API takes it, without ``endsAt`` (set when sent)."""
    annotations = {"summary": alert.message}
    if description:
        annotations["description"] = description
    out: dict[str, Any] = {"labels": labels_of(alert, instance), "annotations": annotations,
                           "startsAt": rfc3339(starts)}
    if generator is not None:
        out["generatorURL"] = generator
    return out


class _Firing:
    __slots__ = ("due", "payload")

    def __init__(self, body: dict[str, Any], due: float) -> None:
        self.payload = body
        self.due = due


class Book:
    """The instances firing now, in the order they are due to be sent again.

    Every instance is due ``resend`` seconds after it was last sent, so the
    order in which they were last sent is the order they are due in: the
    dictionary keeps it, and the next one due is always the first.
    """

    def __init__(self, resend: float) -> None:
        self.resend = resend
        self.firing: dict[Key, _Firing] = {}

    def fire(self, key: Key, body: dict[str, Any], now: float) -> None:
        self.firing.pop(key, None)
        self.firing[key] = _Firing(body, now + self.resend)

    def resolve(self, key: Key) -> dict[str, Any] | None:
        """The payload of a firing instance that resolved (None if it was not firing)."""
        found = self.firing.pop(key, None)
        return found.payload if found is not None else None

    def next_due(self) -> float | None:
        first = next(iter(self.firing.values()), None)
        return first.due if first is not None else None

    def due(self, now: float) -> list[dict[str, Any]]:
        """The payloads due to be sent again at ``now``; each is next due a resend later."""
        keys = []
        for key, item in self.firing.items():
            if item.due > now:
                break
            keys.append(key)
        out = []
        for key in keys:
            item = self.firing.pop(key)
            item.due = now + self.resend
            self.firing[key] = item
            out.append(item.payload)
        return out


def sender(url: str, timeout: float,
           transport: Callable[..., Any] = post) -> Callable[[Any], Any]:
    """A Delivery's ``send``: a batch of alerts, POSTed as one JSON list."""
    endpoint = Endpoint.parse(url, API_PATH)

    async def send(batch: list[Mapping[str, Any]]) -> None:
        try:
            status = await transport(endpoint, orjson.dumps(batch), (), timeout)
        except TransportError as err:
            raise SendFailedError(str(err)) from None
        judge(status)

    return send


def judge(status: int) -> None:
    """Raise what an answer of ``status`` means for a delivery (nothing for a 2xx)."""
    if 200 <= status < 300:
        return
    if status >= 500 or status in (408, 429):
        raise SendFailedError(f"it answered {status}")
    raise SendRefusedError(f"it answered {status}")
