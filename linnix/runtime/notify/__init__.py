"""Alerts delivered to Alertmanager and to signed webhooks (``[notify]`` of linnix.toml).

:class:`Notifier` is a sink of the live engine, like the terminal and
``alerts.jsonl``: it is called with each batch of transitions, on the trio
thread, and only queues (:mod:`.delivery`); its task (:meth:`Notifier.run`)
sends, retries, and re-sends firing alerts to Alertmanager as Prometheus does
(:mod:`.alertmanager`).  Webhooks get each transition signed
(:mod:`.webhook`).  All of it goes over :mod:`.http`, one POST per connection.

At shutdown whatever is still queued gets one last try, bounded to
``FLUSH_S`` in all; what is left then is dropped and counted.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import orjson
import trio

from ...config import NotifyConfig, SecretFileError, read_secret
from ...engine.core import Output
from ...engine.evaluator import Alert
from ...errors import ConfigError
from ...timefmt import stamp
from . import alertmanager as am
from . import webhook as wh
from .delivery import Delivery
from .http import post

__all__ = ["FLUSH_S", "Notifier", "api_base", "notifier_for"]

FLUSH_S = 1.0  # the last try at shutdown, for every receiver together
AM_BATCH = 64  # alerts in one request to Alertmanager


class Notifier:
    """Queues each firing and resolved transition for every configured receiver.

    ``to_wall`` turns an engine time into a Unix time; ``describe`` gives a
    rule's description; ``api`` the address the daemon's API listens on (for
    ``generatorURL``), None when it has none.
    """

    def __init__(self, config: NotifyConfig, *, instance: str,
                 to_wall: Callable[[float], float],
                 describe: Callable[[str], str | None] = lambda rule: None,
                 api: Callable[[], str | None] = lambda: None,
                 wall_now: Callable[[], float] = time.time,
                 say: Callable[[str], None] = lambda message: None,
                 transport: Callable[..., Any] = post, flush_s: float = FLUSH_S) -> None:
        self.config = config
        self.instance = instance
        self.to_wall, self.describe, self.api = to_wall, describe, api
        self.wall_now, self.say, self.flush_s = wall_now, say, flush_s
        self.book = am.Book(config.resend_interval)
        size, timeout = config.queue_size, config.timeout
        self.alertmanagers: list[Delivery[dict[str, Any]]] = [
            Delivery(t.url, am.sender(t.url, timeout, transport), capacity=size,
                     batch=AM_BATCH, say=say) for t in config.alertmanager]
        self._secrets: list[bytes] = []
        self.webhooks: list[Delivery[bytes]] = [
            Delivery(webhook_name(i, t.url),
                     wh.sender(t.url, timeout, partial(self._secret_of, i), wall_now,
                               transport), capacity=size, say=say)
            for i, t in enumerate(config.webhook)]
        self._changed = trio.Event()

    def _secret_of(self, index: int) -> bytes:
        return self._secrets[index]  # read when the task starts, before any delivery

    @property
    def receivers(self) -> list[Delivery[Any]]:
        return [*self.alertmanagers, *self.webhooks]

    # ---- the sink (on the trio thread, never waits) ----------------------------------
    def __call__(self, batch: Sequence[Output]) -> None:
        for item in batch:
            if not isinstance(item, Alert) or item.state not in ("firing", "resolved"):
                continue  # a pending instance may never fire: it is not an alert yet
            if self.webhooks:
                record = item.to_json()
                record.setdefault("time", stamp())  # as alerts.jsonl has it
                body = orjson.dumps(record)
                for delivery in self.webhooks:
                    delivery.put([body])
            if self.alertmanagers:
                self._to_alertmanager(item)

    def restore(self, alerts: Sequence[Alert]) -> None:
        """Instances still firing after a restart (no transition: webhooks heard of them):
        Alertmanager gets them again now, their ``startsAt`` the time they first fired,
        and again every resend interval, as any firing alert."""
        if self.alertmanagers:
            for alert in alerts:
                self._to_alertmanager(alert)

    def _to_alertmanager(self, alert: Alert) -> None:
        key = am.instance_key(alert)
        if alert.state == "firing":
            starts = self.to_wall(alert.ts)
            body = am.payload(alert, instance=self.instance, starts=starts,
                              description=self.describe(alert.rule),
                              generator=self._generator(alert.rule))
            if alert.trigger is not None:  # an event: sent once, it never resolves
                self._send([body], starts + am.EVENT_ENDS_S)
                return
            self.book.fire(key, body, trio.current_time())
            self._changed.set()
            self._send([body], self._valid_until())
            return
        known = self.book.resolve(key)
        if known is not None:  # resolved: sent once more, ending when it resolved
            self._send([known], self.to_wall(alert.ts))

    def _valid_until(self) -> float:
        return self.wall_now() + am.VALID_FOR * self.book.resend

    def _send(self, bodies: list[dict[str, Any]], ends: float) -> None:
        sent = [{**body, "endsAt": am.rfc3339(ends)} for body in bodies]
        for delivery in self.alertmanagers:
            delivery.put(sent)

    def _generator(self, rule: str) -> str | None:
        base = api_base(self.api(), self.instance)
        return None if base is None else f"{base}/alerts?rule={urllib.parse.quote(rule)}"

    # ---- the task -------------------------------------------------------------------
    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read the webhooks' secrets, then deliver until cancelled; then flush."""
        self._secrets = [await trio.to_thread.run_sync(_secret, t.url, t.secret_file)
                         for t in self.config.webhook]
        try:
            async with trio.open_nursery() as nursery:
                for delivery in self.receivers:
                    nursery.start_soon(delivery.run)
                if self.alertmanagers:
                    nursery.start_soon(self._resend)
                task_status.started()
        finally:
            await self._flush()

    async def _resend(self) -> None:
        """Send each firing alert again when its resend interval has passed."""
        while True:
            due = self.book.next_due()
            if due is None:
                await self._changed.wait()
                self._changed = trio.Event()
                continue
            await trio.sleep_until(due)
            bodies = self.book.due(trio.current_time())
            if bodies:
                self._send(bodies, self._valid_until())

    async def _flush(self) -> None:
        """One last try for what is queued, ``flush_s`` at most, even when cancelled."""
        with trio.move_on_after(self.flush_s, shield=True):
            async with trio.open_nursery() as nursery:
                for delivery in self.receivers:
                    if delivery.waiting:
                        nursery.start_soon(delivery.flush)
        left = sum(delivery.abandon() for delivery in self.receivers)
        if left:
            self.say(f"{left:,} notification(s) could not be sent before stopping")


def _secret(url: str, path: str) -> bytes:
    try:
        return read_secret(path)
    except SecretFileError as err:  # it was fine when the configuration was read
        raise ConfigError(f"notify.webhook {url}: {err}") from None


def webhook_name(index: int, url: str) -> str:
    """The ``receiver`` label of a webhook: its place and its origin only, since a
    webhook's path or query often holds a secret of its own and /metrics is public."""
    parts = urllib.parse.urlsplit(url)
    return f"webhook[{index}] {parts.scheme}://{parts.netloc}"


def api_base(address: str | None, host: str) -> str | None:
    """``http://host:port`` of the API listening on ``address``; a wildcard address
    (listening on every interface) is reached by this host's name."""
    if address is None:
        return None
    bound, _, port = address.rpartition(":")
    if bound in ("0.0.0.0", "[::]", "::", ""):
        bound = host
    return f"http://{bound}:{port}"


def notifier_for(daemon: Any, config: NotifyConfig, clock: Any) -> Notifier | None:
    """The notifier of a live daemon, None when nothing is configured."""
    if not (config.alertmanager or config.webhook):
        return None
    seen: list[Any] = [None, {}]  # the plan last read, and its rules' descriptions

    def describe(rule: str) -> str | None:
        plan = daemon.core.plan  # replaced at each reload
        if plan is not seen[0]:
            seen[:] = [plan, {r.name: r.description for r in plan.rules}]
        found: str | None = seen[1].get(rule)
        return found

    return Notifier(config, instance=socket.gethostname(),
                    to_wall=lambda ts: time.time() - (clock.now() - ts), describe=describe,
                    api=lambda: daemon.api_address, say=daemon.say)
