"""Signed webhooks, checked by a receiver running the verification code of
docs/alerting.md (read from the document itself, so the two cannot drift apart)."""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio
from support import ROOT

from linnix.config import NotifyConfig, WebhookTarget
from linnix.engine.evaluator import Alert
from linnix.runtime.notify import Notifier
from linnix.runtime.notify.webhook import sign

SECRET = b"0123456789abcdef-webhook"
Verify = Callable[..., bool]


def documented_verify() -> Verify:
    """The ``verify`` function shown in docs/alerting.md."""
    text = (ROOT / "docs" / "alerting.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify(" in b]
    assert len(blocks) == 1, "docs/alerting.md shows one verify function"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "docs/alerting.md", "exec"), namespace)  # the documented code
    found: Verify = namespace["verify"]
    return found


@attrs.define
class Received:
    headers: dict[str, str]
    body: bytes
    accepted: bool


class Receiver:
    """A webhook receiver on loopback (stdlib, in a thread) that runs the documented check."""

    def __init__(self, secret: bytes) -> None:
        verify = documented_verify()
        got: list[Received] = []
        self.got = got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(secret, self.headers.get("X-Linnix-Timestamp", ""),
                            self.headers.get("X-Linnix-Signature", ""), body)
                got.append(Received(dict(self.headers), body, ok))
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?team=ops"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as err:
            return int(err.code)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()


def secret_file(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "webhook.secret"
    path.write_bytes(content + b"\n")
    path.chmod(0o600)
    return str(path)


def alert(state: str, ts: float) -> Alert:
    return Alert(ts=ts, rule="hot", state=state, severity="critical", scope="process", pid=7,
                 comm="burner", start=0.5, message="burner[7] burns", labels={},
                 values={"cpu_pct": 99.0})


async def deliver(url: str, secret: str, alerts: list[Alert]) -> Notifier:
    """Run a notifier with one webhook until it has delivered or refused ``alerts``."""
    config = NotifyConfig(webhook=(WebhookTarget(url, secret),))
    n = Notifier(config, instance="web-1", to_wall=lambda ts: 1.8e9 + ts)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(n.run)
            n(alerts)
            hook = n.webhooks[0]
            while hook.sent + hook.dropped < len(alerts):
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    return n


async def test_the_receiver_verifies_each_signed_transition(receiver: Receiver,
                                                            tmp_path: Path) -> None:
    n = await deliver(receiver.url, secret_file(tmp_path, SECRET),
                      [alert("firing", 1.0), alert("resolved", 2.0)])
    assert n.webhooks[0].sent == 2
    assert [r.accepted for r in receiver.got] == [True, True]
    assert [orjson.loads(r.body)["state"] for r in receiver.got] == ["firing", "resolved"]
    first = receiver.got[0]
    assert abs(int(first.headers["X-Linnix-Timestamp"]) - time.time()) < 60
    assert first.headers["X-Linnix-Signature"] == sign(
        SECRET, first.headers["X-Linnix-Timestamp"], first.body)


async def test_a_wrong_secret_is_refused_and_the_delivery_dropped(receiver: Receiver,
                                                                  tmp_path: Path) -> None:
    n = await deliver(receiver.url, secret_file(tmp_path, b"not-the-secret"),
                      [alert("firing", 1.0)])
    assert [r.accepted for r in receiver.got] == [False]
    assert (n.webhooks[0].sent, n.webhooks[0].dropped) == (0, 1)


async def test_a_tampered_body_or_an_old_timestamp_is_refused(receiver: Receiver,
                                                              tmp_path: Path) -> None:
    await deliver(receiver.url, secret_file(tmp_path, SECRET), [alert("firing", 1.0)])
    genuine = receiver.got[0]
    headers = {k: genuine.headers[k] for k in ("X-Linnix-Timestamp", "X-Linnix-Signature")}
    post = receiver.post
    assert await trio.to_thread.run_sync(post, genuine.body, headers) == 204  # replayed now
    tampered = genuine.body.replace(b'"firing"', b'"resolved"')
    assert await trio.to_thread.run_sync(post, tampered, headers) == 401
    old = str(int(time.time()) - 301)
    resigned = {"X-Linnix-Timestamp": old,
                "X-Linnix-Signature": sign(SECRET, old, genuine.body)}
    assert await trio.to_thread.run_sync(post, genuine.body, resigned) == 401
    assert [r.accepted for r in receiver.got] == [True, True, False, False]


@pytest.mark.parametrize(("timestamp", "signature", "body", "now", "ok"), [
    ("1800000000", None, b"{}", 1800000000.0, True),
    ("1800000000", None, b"{}", 1800000300.0, True),  # five minutes: still fresh
    ("1800000000", None, b"{}", 1800000301.0, False),  # older than five minutes
    ("1800000000", None, b"{}", 1799999699.0, False),  # more than five minutes ahead
    ("1800000000", None, b"{} ", 1800000000.0, False),  # the body changed
    ("1800000001", None, b"{}", 1800000000.0, False),  # the timestamp changed
    ("1800000000", "sha256=00", b"{}", 1800000000.0, False),
    ("1800000000", "", b"{}", 1800000000.0, False),
    ("", None, b"{}", 1800000000.0, False),
    ("-5", None, b"{}", 1800000000.0, False),
    ("1.8e9", None, b"{}", 1800000000.0, False),
    ("\u0661\u0662", None, b"{}", 1800000000.0, False),  # digits, but not ASCII ones
])
def test_the_documented_check(timestamp: str, signature: str | None, body: bytes,
                              now: float, ok: bool) -> None:
    verify = documented_verify()
    if signature is None:
        signature = sign(SECRET, "1800000000", b"{}")
    assert verify(SECRET, timestamp, signature, body, now) is ok
