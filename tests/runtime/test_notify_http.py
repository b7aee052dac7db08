"""The notifier's HTTP client against a small trio server on loopback: the request it
sends, the answers it reads, and every way a receiver can fail to answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from trio.testing import MockClock

from linnix.runtime.notify.http import HEADERS_MAX_BYTES, Endpoint, TransportError, post

Handler = Callable[[trio.SocketStream], Awaitable[None]]


async def serve(nursery: trio.Nursery, handler: Handler) -> int:
    """Serve ``handler`` on a loopback port; the port."""
    listeners: list[Any] = await nursery.start(
        partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return int(listeners[0].socket.getsockname()[1])


async def read_request(stream: trio.SocketStream) -> bytes:
    """Everything the client sends (it sends the whole request, then waits)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += await stream.receive_some(65536)
    return head + b"\r\n\r\n" + body


def answering(raw: bytes, seen: list[bytes] | None = None) -> Handler:
    async def handler(stream: trio.SocketStream) -> None:
        request = await read_request(stream)
        if seen is not None:
            seen.append(request)
        await stream.send_all(raw)

    return handler


def test_endpoints_from_urls() -> None:
    assert Endpoint.parse("http://am:9093", "/api/v2/alerts") == Endpoint(
        False, "am", 9093, "/api/v2/alerts", "am:9093")
    assert Endpoint.parse("https://am.example.org/prefix/", "/api/v2/alerts") == Endpoint(
        True, "am.example.org", 443, "/prefix/api/v2/alerts", "am.example.org")
    assert Endpoint.parse("http://[::1]/hook?team=ops") == Endpoint(
        False, "::1", 80, "/hook?team=ops", "[::1]")
    assert Endpoint.parse("http://h") == Endpoint(False, "h", 80, "/", "h")


async def test_a_post_sends_the_body_and_reads_the_status(nursery: trio.Nursery) -> None:
    seen: list[bytes] = []
    port = await serve(nursery, answering(b"HTTP/1.1 100 Continue\r\n\r\n"
                                          b"HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\n"
                                          b"hello", seen))
    endpoint = Endpoint.parse(f"http://127.0.0.1:{port}/x", "/api/v2/alerts")
    status = await post(endpoint, b'[{"a":1}]', [("X-Linnix-Timestamp", "17")], timeout=10)
    assert status == 202
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /x/api/v2/alerts HTTP/1.1"
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers["host"] == f"127.0.0.1:{port}"
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert headers["x-linnix-timestamp"] == "17"
    assert headers["user-agent"].startswith("linnix/")
    assert body == b'[{"a":1}]'


@pytest.mark.parametrize("status", [200, 204, 400, 404, 429, 500, 503])
async def test_any_status_is_returned(nursery: trio.Nursery, status: int) -> None:
    port = await serve(nursery, answering(f"HTTP/1.1 {status} X\r\n\r\n".encode()))
    assert await post(Endpoint.parse(f"http://127.0.0.1:{port}"), b"{}") == status


async def test_a_refused_connection_is_a_transport_error(nursery: trio.Nursery) -> None:
    async def nothing(stream: trio.SocketStream) -> None:
        return

    port = await serve(nursery, nothing)
    nursery.cancel_scope.cancel()  # nobody listens on it any more
    await trio.sleep(0)
    with pytest.raises(TransportError, match=r"connection refused|closed before an answer"):
        await post(Endpoint.parse(f"http://127.0.0.1:{port}"), b"{}")


async def test_a_receiver_that_never_answers_times_out(nursery: trio.Nursery,
                                                       autojump_clock: MockClock) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await read_request(stream)
        await trio.sleep_forever()

    port = await serve(nursery, silent)
    start = trio.current_time()
    with pytest.raises(TransportError, match=r"no answer within 2.5s"):
        await post(Endpoint.parse(f"http://127.0.0.1:{port}"), b"{}", timeout=2.5)
    assert trio.current_time() - start == pytest.approx(2.5)


@pytest.mark.parametrize(("raw", "why"), [
    (b"SMTP ready\r\n\r\n", "the answer is not HTTP/1.1"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 4 * HEADERS_MAX_BYTES + b"\r\n\r\n",
     "the answer is not HTTP/1.1"),
    (b"HTTP/1.1 2", "the connection was closed before an answer came|not HTTP/1.1"),
    (b"", "the connection was closed before an answer came|not HTTP/1.1"),
])
async def test_an_answer_that_is_not_http_is_a_transport_error(nursery: trio.Nursery,
                                                               raw: bytes, why: str) -> None:
    port = await serve(nursery, answering(raw))
    with pytest.raises(TransportError, match=why):
        await post(Endpoint.parse(f"http://127.0.0.1:{port}"), b"{}", timeout=10)


async def test_a_host_name_that_cannot_be_encoded_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match=r"'a\.\.b' is not a host name"):
        await post(Endpoint.parse("http://a..b:9093"), b"{}", timeout=10)


async def test_a_tls_failure_is_a_transport_error(nursery: trio.Nursery) -> None:
    async def plain(stream: trio.SocketStream) -> None:  # answers the TLS hello in clear
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    port = await serve(nursery, plain)
    with pytest.raises(TransportError, match=r"SSL|record"):
        await post(Endpoint.parse(f"https://127.0.0.1:{port}"), b"{}", timeout=10)


class Canned(trio.abc.Stream):
    """A connection whose peer answers ``chunks``, then closes."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        return self.chunks.pop(0) if self.chunks else b""

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


@given(st.lists(st.one_of(st.binary(max_size=64), st.sampled_from([
    b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 503 Busy\r\n", b"HTTP/1.1 100 Continue\r\n\r\n",
    b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"\r\n", b"\r\n\r\n",
    b"X: " + b"y" * 5000 + b"\r\n"])), max_size=12))
async def test_any_answer_gives_a_status_or_a_transport_error(chunks: list[bytes]) -> None:
    from linnix.runtime.notify import http

    async def connect(endpoint: Endpoint) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        return Canned([c for c in chunks if c])  # b"" would be the end of the answer

    original, http._connect = http._connect, connect  # type: ignore[assignment]
    try:
        status = await post(Endpoint.parse("http://receiver"), b"{}", timeout=5)
    except TransportError as err:
        assert str(err)
    else:
        assert 100 <= status <= 999
    finally:
        http._connect = original  # type: ignore[assignment]
