"""The notifier on trio's autojump clock, against a fake transport: what is sent, when,
to whom; resends, resolves, the bounded queue, the backoff and the shutdown flush."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio
from trio.testing import MockClock

from linnix.config import AlertmanagerTarget, NotifyConfig, WebhookTarget
from linnix.engine.evaluator import Alert
from linnix.runtime.notify import FLUSH_S, Notifier, api_base, webhook_name
from linnix.runtime.notify.alertmanager import EVENT_ENDS_S, labels_of, rfc3339
from linnix.runtime.notify.delivery import BACKOFF_MAX_S, Delivery
from linnix.runtime.notify.http import Endpoint, TransportError

WALL0 = 1_800_000_000.0  # the Unix time when the trio clock reads 0
AM1, AM2 = "http://am1:9093", "http://am2:9093"


@pytest.fixture
def clock(autojump_clock: MockClock) -> MockClock:
    return autojump_clock


def wall() -> float:
    return WALL0 + trio.current_time()


@attrs.define
class Call:
    at: float  # trio time
    url: str
    body: Any
    headers: dict[str, str]


@attrs.define
class FakeTransport:
    """Records each POST; answers ``status`` (or raises, or hangs) as told."""

    calls: list[Call] = attrs.field(factory=list)
    answer: Callable[[Call], int] = lambda call: 200
    hang: bool = False

    async def __call__(self, endpoint: Endpoint, body: bytes,
                       headers: tuple[tuple[str, str], ...], timeout: float) -> int:
        scheme = "https" if endpoint.tls else "http"
        call = Call(trio.current_time(), f"{scheme}://{endpoint.authority}{endpoint.target}",
                    orjson.loads(body), dict(headers))
        self.calls.append(call)
        if self.hang:
            await trio.sleep_forever()
        return self.answer(call)

    def to(self, url: str) -> list[Call]:
        return [c for c in self.calls if c.url.startswith(url)]


def alert(state: str, ts: float, *, rule: str = "hot", pid: int | None = 42,
          start: float | None = 1.0, scope: str = "process",
          labels: dict[str, str] | None = None) -> Alert:
    return Alert(ts=ts, rule=rule, state=state, severity="critical", scope=scope, pid=pid,
                 comm="burner" if pid is not None else None, start=start,
                 message=f"burner[{pid}] burns", labels=labels or {"team": "infra"},
                 values={"cpu_pct": 97.0})


def notifier(transport: FakeTransport, *, resend: float = 60.0, queue: int = 100,
             alertmanagers: tuple[str, ...] = (AM1, AM2),
             webhooks: tuple[WebhookTarget, ...] = (),
             said: list[str] | None = None) -> Notifier:
    config = NotifyConfig(alertmanager=tuple(AlertmanagerTarget(u) for u in alertmanagers),
                          webhook=webhooks, resend_interval=resend, queue_size=queue)
    return Notifier(config, instance="web-1", to_wall=lambda ts: WALL0 + ts,
                    describe={"hot": "A process burns CPU"}.get,
                    api=lambda: "127.0.0.1:9333", wall_now=wall,
                    say=(said.append if said is not None else lambda m: None),
                    transport=transport)


@attrs.define
class Running:
    """A notifier's task: started (its secrets read), and stopped on demand."""

    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)

    async def stop(self) -> None:
        self.scope.cancel()
        await self.done.wait()


@pytest.fixture
def running(nursery: trio.Nursery) -> Callable[[Notifier], Any]:
    async def start(n: Notifier) -> Running:
        task = Running()

        async def run(task_status: trio.TaskStatus[None]) -> None:
            try:
                with task.scope:
                    await n.run(task_status=task_status)
            finally:
                task.done.set()

        await nursery.start(run)
        return task

    return start


# ---- what Alertmanager gets ------------------------------------------------------------

async def test_a_firing_alert_goes_to_every_alertmanager_as_prometheus_sends_it(
        clock: MockClock, running: Any) -> None:
    fake = FakeTransport()
    n = notifier(fake)
    await running(n)
    await trio.sleep(5)
    n([alert("firing", 5.0)])
    await trio.sleep(1)
    expected = [{
        "labels": {"team": "infra", "alertname": "hot", "severity": "critical",
                   "instance": "web-1", "scope": "process", "pid": "42", "comm": "burner"},
        "annotations": {"summary": "burner[42] burns", "description": "A process burns CPU"},
        "startsAt": rfc3339(WALL0 + 5.0),
        "generatorURL": "http://127.0.0.1:9333/alerts?rule=hot",
        "endsAt": rfc3339(WALL0 + 5.0 + 240.0),
    }]
    assert sorted([(c.at, c.url, c.body) for c in fake.calls], key=lambda c: c[1]) == [
        (5.0, f"{AM1}/api/v2/alerts", expected), (5.0, f"{AM2}/api/v2/alerts", expected)]
    assert rfc3339(WALL0 + 5.0) == "2027-01-15T08:00:05.000Z"


def test_host_alerts_carry_no_process_labels_and_linnix_labels_win() -> None:
    host = alert("firing", 0.0, pid=None, start=None, scope="system",
                 labels={"instance": "spoof", "team": "db", "run-book": "x", "9": "y"})
    assert labels_of(host, "web-1") == {
        "instance": "web-1", "team": "db", "run_book": "x", "_9": "y", "alertname": "hot",
        "severity": "critical", "scope": "system"}


async def test_pending_alerts_and_proposals_are_never_sent(clock: MockClock,
                                                           running: Any) -> None:
    fake = FakeTransport()
    n = notifier(fake, webhooks=())
    await running(n)
    proposal = attrs.make_class("P", [])()  # anything that is not an Alert
    n([alert("pending", 1.0), proposal])  # type: ignore[list-item]
    n([alert("resolved", 2.0)])  # never seen firing (it fired before a restart)
    await trio.sleep(600)
    assert fake.calls == []


async def test_a_firing_alert_is_sent_again_every_resend_interval_until_it_resolves(
        clock: MockClock, running: Any) -> None:
    fake = FakeTransport()
    n = notifier(fake, alertmanagers=(AM1,))
    await running(n)
    await trio.sleep(10)
    n([alert("firing", 10.0)])
    await trio.sleep(125)  # t = 135
    n([alert("resolved", 135.0)])
    await trio.sleep(300)
    sent = [(c.at, c.body[0]["startsAt"], c.body[0]["endsAt"]) for c in fake.calls]
    assert sent == [
        (10.0, rfc3339(WALL0 + 10), rfc3339(WALL0 + 10 + 240)),
        (70.0, rfc3339(WALL0 + 10), rfc3339(WALL0 + 70 + 240)),
        (130.0, rfc3339(WALL0 + 10), rfc3339(WALL0 + 130 + 240)),
        (135.0, rfc3339(WALL0 + 10), rfc3339(WALL0 + 135)),  # resolved: ends when it did
    ]


async def test_an_event_rules_alert_is_sent_once_with_a_short_end(clock: MockClock,
                                                                   running: Any) -> None:
    fake = FakeTransport()
    n = notifier(fake, alertmanagers=(AM1,), resend=60.0)
    await running(n)
    await trio.sleep(10)
    n([attrs.evolve(alert("firing", 10.0, rule="web_shell"), trigger="exec")])
    await trio.sleep(3600)
    sent = [(c.at, c.body[0]["labels"]["alertname"], c.body[0]["startsAt"],
             c.body[0]["endsAt"]) for c in fake.calls]
    assert sent == [(10.0, "web_shell", rfc3339(WALL0 + 10),
                     rfc3339(WALL0 + 10 + EVENT_ENDS_S))]  # never resent, never resolved
    assert n.book.firing == {}  # nothing kept per event: a flood of them costs no memory


async def test_an_alert_still_firing_after_a_restart_is_resent_with_its_first_start(
        clock: MockClock, running: Any, secret: Path) -> None:
    fake = FakeTransport()
    hook = WebhookTarget("https://hooks.example.org/linnix", str(secret))
    n = notifier(fake, alertmanagers=(AM1,), webhooks=(hook,))
    n.restore([alert("firing", -100.0)])  # fired 100s before this daemon's clock began
    await running(n)
    await trio.sleep(61)
    n([alert("resolved", 61.0)])
    await trio.sleep(1)
    sent = [(c.at, c.body[0]["startsAt"], c.body[0]["endsAt"]) for c in fake.to(AM1)]
    assert sent == [
        (0.0, rfc3339(WALL0 - 100), rfc3339(WALL0 + 240)),  # at once, as it first was
        (60.0, rfc3339(WALL0 - 100), rfc3339(WALL0 + 60 + 240)),  # in the resend set
        (61.0, rfc3339(WALL0 - 100), rfc3339(WALL0 + 61)),  # and resolved once
    ]
    # a webhook heard the firing transition before the restart; a restore is none
    assert [c.body["state"] for c in fake.to(hook.url)] == ["resolved"]


async def test_instances_are_resent_each_on_its_own_schedule(clock: MockClock,
                                                             running: Any) -> None:
    fake = FakeTransport()
    n = notifier(fake, alertmanagers=(AM1,), resend=2.0)
    await running(n)
    n([alert("firing", 0.0, pid=1)])
    await trio.sleep(0.5)
    n([alert("firing", 0.5, pid=2), alert("firing", 0.5, pid=3)])
    await trio.sleep(1.0)  # t = 1.5
    n([alert("resolved", 1.5, pid=2)])
    await trio.sleep(3.1)  # t = 4.6
    sent = [(c.at, [(b["labels"]["pid"], b["endsAt"]) for b in c.body]) for c in fake.calls]
    assert sent == [
        (0.0, [("1", rfc3339(WALL0 + 8))]),
        (0.5, [("2", rfc3339(WALL0 + 8.5)), ("3", rfc3339(WALL0 + 8.5))]),
        (1.5, [("2", rfc3339(WALL0 + 1.5))]),
        (2.0, [("1", rfc3339(WALL0 + 10))]),
        (2.5, [("3", rfc3339(WALL0 + 10.5))]),
        (4.0, [("1", rfc3339(WALL0 + 12))]),
        (4.5, [("3", rfc3339(WALL0 + 12.5))]),
    ]


def test_the_generator_url_names_the_api_and_a_wildcard_bind_the_host() -> None:
    assert api_base("127.0.0.1:9333", "web-1") == "http://127.0.0.1:9333"
    assert api_base("0.0.0.0:9333", "web-1") == "http://web-1:9333"
    assert api_base("[::]:9333", "web-1") == "http://web-1:9333"
    assert api_base("[::1]:9333", "web-1") == "http://[::1]:9333"
    assert api_base(None, "web-1") is None


# ---- the queue --------------------------------------------------------------------------

async def _never(batch: Any) -> None:
    raise AssertionError("not sent in this test")


def test_a_full_queue_drops_the_oldest_and_counts_it() -> None:
    d: Delivery[int] = Delivery("r", _never, capacity=3)
    d.put([1, 2])
    d.put([3, 4, 5])
    assert (list(d.queue), d.dropped, d.waiting) == ([3, 4, 5], 2, 3)


async def test_a_notifier_queue_is_bounded_per_receiver(clock: MockClock) -> None:
    n = notifier(FakeTransport(), queue=4)  # not running: nothing leaves the queues
    for pid in range(10):
        n([alert("firing", 0.0, pid=pid)])
    for d in n.alertmanagers:
        assert [b["labels"]["pid"] for b in d.queue] == ["6", "7", "8", "9"]
        assert d.dropped == 6


async def test_failed_tries_back_off_exponentially_up_to_the_cap(clock: MockClock,
                                                                 running: Any) -> None:
    said: list[str] = []
    fake = FakeTransport(answer=lambda call: 503 if len(fake.calls) <= 9 else 200)
    n = notifier(fake, alertmanagers=(AM1,), said=said)
    await running(n)
    n([alert("firing", 0.0)])
    await trio.sleep(150)
    times = [c.at for c in fake.calls]
    assert times == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 61.5, 91.5, 121.5, 121.5]
    assert BACKOFF_MAX_S == 30
    # the resends of 60 s and 120 s waited behind the failing batch, and went together
    assert [len(c.body) for c in fake.calls[-2:]] == [1, 2]
    d = n.alertmanagers[0]
    assert (d.failed, d.sent, d.waiting) == (9, 3, 0)
    assert said == [f"cannot send alerts to {AM1}: it answered 503; trying again (they wait "
                    "in a queue meanwhile)", f"sending alerts to {AM1} again"]


async def test_a_refused_batch_is_dropped_and_what_follows_is_sent(clock: MockClock,
                                                                   running: Any) -> None:
    said: list[str] = []
    fake = FakeTransport(answer=lambda call: 400 if call.body[0]["labels"]["pid"] == "1"
                         else 200)
    n = notifier(fake, alertmanagers=(AM1,), said=said)
    await running(n)
    n([alert("firing", 0.0, pid=1)])
    await trio.sleep(0.1)
    n([alert("firing", 0.1, pid=2)])
    await trio.sleep(0.1)
    d = n.alertmanagers[0]
    assert [c.at for c in fake.calls] == [0.0, 0.1]
    assert (d.sent, d.failed, d.dropped) == (1, 0, 1)
    assert said == [f"{AM1} refused 1 notification(s), which are dropped: it answered 400"]


async def test_what_comes_after_a_failing_batch_waits_behind_it(clock: MockClock,
                                                                running: Any) -> None:
    down = True
    fake = FakeTransport(answer=lambda call: 502 if down else 200)
    n = notifier(fake, alertmanagers=(AM1,))
    await running(n)
    n([alert("firing", 0.0, pid=1)])
    await trio.sleep(0.1)
    n([alert("firing", 0.1, pid=2), alert("resolved", 0.1, pid=1)])
    await trio.sleep(1)
    down = False
    await trio.sleep(5)
    ok = [[(b["labels"]["pid"], b["endsAt"]) for b in c.body] for c in fake.calls[-2:]]
    assert ok == [[("1", rfc3339(WALL0 + 240))],
                  [("2", rfc3339(WALL0 + 0.1 + 240)), ("1", rfc3339(WALL0 + 0.1))]]


async def test_an_unreachable_receiver_is_a_failure_that_is_retried(clock: MockClock,
                                                                    running: Any) -> None:
    def refuse(call: Call) -> int:
        if len(fake.calls) == 1:
            raise TransportError("connection refused")
        return 200

    fake = FakeTransport(answer=refuse)
    n = notifier(fake, alertmanagers=(AM1,))
    await running(n)
    n([alert("firing", 0.0)])
    await trio.sleep(1)
    d = n.alertmanagers[0]
    assert [c.at for c in fake.calls] == [0.0, 0.5]
    assert (d.failed, d.sent) == (1, 1)


# ---- shutdown ---------------------------------------------------------------------------

async def test_shutdown_flushes_what_is_queued_once(clock: MockClock, running: Any) -> None:
    down = True
    fake = FakeTransport(answer=lambda call: 503 if down else 200)
    n = notifier(fake, alertmanagers=(AM1,))
    task = await running(n)
    n([alert("firing", 0.0, pid=1)])
    await trio.sleep(0.2)  # the first try failed; the next is 0.3 s away
    n([alert("firing", 0.2, pid=2)])
    down = False
    before = trio.current_time()
    await task.stop()
    d = n.alertmanagers[0]
    assert (d.sent, d.waiting, d.dropped) == (2, 0, 0)
    assert [c.at for c in fake.calls] == [0.0, before, before]


async def test_shutdown_never_waits_more_than_the_flush_bound(clock: MockClock,
                                                              nursery: trio.Nursery) -> None:
    said: list[str] = []
    fake = FakeTransport(hang=True)  # a receiver that accepts and never answers
    n = notifier(fake, said=said)
    n([alert("firing", 0.0, pid=1), alert("firing", 0.0, pid=2)])
    with trio.move_on_after(5):
        await n.run()
    assert trio.current_time() == 5 + FLUSH_S
    assert [d.dropped for d in n.alertmanagers] == [2, 2]
    assert [d.waiting for d in n.alertmanagers] == [0, 0]
    assert said == ["4 notification(s) could not be sent before stopping"]


# ---- webhooks ---------------------------------------------------------------------------

@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "webhook.secret"
    path.write_bytes(b"k3y\n")
    path.chmod(0o600)
    return path


async def test_each_transition_is_posted_to_a_webhook_signed(clock: MockClock, running: Any,
                                                             secret: Path) -> None:
    from linnix.runtime.notify.webhook import sign

    fake = FakeTransport()
    hook = WebhookTarget("https://hooks.example.org/linnix?token=abc", str(secret))
    n = notifier(fake, alertmanagers=(), webhooks=(hook,))
    await running(n)
    await trio.sleep(3)
    n([alert("pending", 3.0), alert("firing", 3.0)])
    n([alert("resolved", 4.0)])
    await trio.sleep(1)
    assert [c.url for c in fake.calls] == [hook.url] * 2
    for call, state in zip(fake.calls, ("firing", "resolved"), strict=True):
        body = orjson.dumps(call.body)
        stamp = call.headers["X-Linnix-Timestamp"]
        assert stamp == str(int(WALL0 + 3))
        assert call.headers["X-Linnix-Signature"] == sign(b"k3y", stamp, body)
        record = call.body
        assert set(record) == {"type", "ts", "rule", "state", "severity", "scope", "pid",
                               "comm", "start", "message", "labels", "values", "reason",
                               "time"}  # a line of alerts.jsonl
        assert (record["type"], record["state"]) == ("alert", state)
    assert webhook_name(0, hook.url) == "webhook[0] https://hooks.example.org"
    assert n.webhooks[0].receiver == "webhook[0] https://hooks.example.org"


async def test_a_webhook_retry_is_signed_anew(clock: MockClock, running: Any,
                                              secret: Path) -> None:
    fake = FakeTransport(answer=lambda call: 500 if len(fake.calls) < 4 else 204)
    n = notifier(fake, alertmanagers=(), webhooks=(WebhookTarget("http://h", str(secret)),))
    await running(n)
    await trio.sleep(10)
    n([alert("firing", 10.0)])
    await trio.sleep(10)
    assert [c.headers["X-Linnix-Timestamp"] for c in fake.calls] == [
        str(int(WALL0 + t)) for t in (10, 10.5, 11.5, 13.5)]
    assert n.webhooks[0].sent == 1


async def test_a_secret_gone_bad_since_the_config_was_read_stops_the_start(
        secret: Path) -> None:
    from linnix.errors import ConfigError

    secret.chmod(0o644)
    n = notifier(FakeTransport(), webhooks=(WebhookTarget("http://h", str(secret)),))
    with pytest.raises(ConfigError, match=r"notify.webhook http://h: the secret file .* has "
                                          r"mode 0644"):
        await n.run()


def test_each_cgroup_of_a_cgroup_rule_is_its_own_instance_in_the_book() -> None:
    """Two cgroups firing the same rule are two alerts for Alertmanager: one resolving
    leaves the other firing and re-sent."""
    from linnix.runtime.notify.alertmanager import Book, instance_key

    def alert(cgroup: str, state: str) -> Alert:
        return Alert(1.0, "hog", state, "warning", "cgroup", None, None, None, cgroup,
                     {"cgroup": cgroup}, {}, cgroup=cgroup)

    book = Book(resend=60.0)
    for cgroup in ("/a.slice", "/b.slice"):
        book.fire(instance_key(alert(cgroup, "firing")), {"cgroup": cgroup}, 0.0)
    assert book.resolve(instance_key(alert("/a.slice", "resolved"))) == {"cgroup": "/a.slice"}
    assert book.due(60.0) == [{"cgroup": "/b.slice"}]
