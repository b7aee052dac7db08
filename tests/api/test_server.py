"""The API served by hypercorn on a real socket."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import trio
from api_support import AUTH, PID_A, TOKEN, Env, light_view, start_env
from support import run_linnix

from linnix.api.app import create_app
from linnix.api.server import GRACE_S, KEEP_ALIVE_S, format_address, serve, split_bind
from linnix.api.stream import StreamHub
from linnix.errors import ApiError

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, *, method: str = "GET", body: object = None,
          headers: dict[str, str] | None = None) -> tuple[int, Message, Any]:
    """A plain blocking HTTP request (run it on a thread)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _direct.open(req, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, json.loads(err.read())


async def get(url: str, **kwargs: Any) -> tuple[int, Message, Any]:
    return await trio.to_thread.run_sync(lambda: fetch(url, **kwargs))


async def serving(nursery: trio.Nursery, env_or_app: Any, bind: str = "127.0.0.1:0",
                  token: str | None = TOKEN, max_connections: int = 64) -> str:
    app = env_or_app.app if isinstance(env_or_app, Env) else env_or_app
    address: str = await nursery.start(lambda task_status: serve(
        app, bind, token=token, max_connections=max_connections, task_status=task_status))
    return f"http://{address}"


# ---- serving ---------------------------------------------------------------------------

async def test_serves_on_an_ephemeral_loopback_port(tmp_path: Path,
                                                   nursery: trio.Nursery) -> None:
    env = await start_env(tmp_path, nursery)
    url = await serving(nursery, env)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    status, _, body = await get(f"{url}/health")
    assert (status, body) == (200, {"status": "ok", "actions": "active"})
    status, _, body = await get(f"{url}/processes/{PID_A}", headers=AUTH)
    assert (status, body["pid"]) == (200, PID_A)


async def test_approve_over_http(tmp_path: Path, nursery: trio.Nursery) -> None:
    env = await start_env(tmp_path, nursery)
    url = await serving(nursery, env)
    action = await env.propose()
    status, headers, body = await get(f"{url}/actions/{action}/approve", method="POST",
                                      body={"approver": "alice"})
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert body["error"] == "unauthorized"
    status, _, body = await get(f"{url}/actions/{action}/approve", method="POST",
                                body={"approver": "on call"},
                                headers={**env.auth("alice"), "Content-Type": "application/json"})
    assert status == 200
    await env.wait_status(action, "succeeded")
    status, _, body = await get(f"{url}/actions/{action}/approve", method="POST",
                                body={"approver": "bob"}, headers=AUTH)
    assert status == 409
    assert "already approved by alice" in body["detail"]
    assert env.manager.executed == [action]


async def test_a_body_over_the_limit_is_413_over_http(tmp_path: Path,
                                                     nursery: trio.Nursery) -> None:
    env = await start_env(tmp_path, nursery, max_body=1024)
    url = await serving(nursery, env)
    status, _, body = await get(f"{url}/rules/reload", method="POST",
                                body={"actor": "x" * 5000}, headers=AUTH)
    assert status == 413
    assert body["error"] == "payload too large"


async def test_server_errors_are_json(tmp_path: Path, nursery: trio.Nursery) -> None:
    env = await start_env(tmp_path, nursery)
    env.view.fail_with = RuntimeError("boom")
    url = await serving(nursery, env)
    status, _, body = await get(f"{url}/processes", headers=AUTH)
    assert status == 500
    assert body["error"] == "internal error" and "boom" not in json.dumps(body)
    status, _, body = await get(f"{url}/missing")
    assert (status, body["error"]) == (404, "not found")


async def _read_until(stream: trio.SocketStream, needle: bytes, have: bytes = b"") -> bytes:
    data = have
    with trio.fail_after(10):
        while needle not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    return data


async def open_sse(url: str, last_event_id: int | None = None,
                   rcvbuf: int | None = None) -> trio.SocketStream:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await sock.connect((host, int(port)))
    stream = trio.SocketStream(sock)
    resume = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
    await stream.send_all(f"GET /stream HTTP/1.1\r\nHost: {host}\r\n{resume}"
                          f"Authorization: Bearer {TOKEN}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
    return stream


async def test_stream_over_http(nursery: trio.Nursery) -> None:
    hub = StreamHub()
    app = create_app(light_view(hub), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    url = await serving(nursery, app)
    hub.publish("alert", {"rule": "before"})
    stream = await open_sse(url, last_event_id=0)
    data = await _read_until(stream, b"\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200")
    assert b"content-type: text/event-stream" in data.lower()
    data = await _read_until(stream, b'"before"', data)
    hub.publish("action", {"id": 7, "status": "pending"})
    data = await _read_until(stream, b'"pending"', data)
    assert b"id: 1\nevent: alert\n" in data and b"id: 2\nevent: action\n" in data
    await stream.aclose()


async def test_a_client_that_stops_reading_cannot_hold_up_shutdown(
        autojump_clock: trio.testing.MockClock) -> None:
    hub = StreamHub(backlog=10, queue=100_000)  # never dropped: the server keeps writing
    app = create_app(light_view(hub), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        url = await serving(nursery, app)
        stuck = await open_sse(url, rcvbuf=4096)  # connected, never read
        while hub.clients < 1:
            await trio.sleep(0.01)
        for n in range(300):  # far more than both socket buffers hold
            hub.publish("alert", {"n": n, "pad": "x" * 65536})
            await trio.sleep(0.001)
        stopping = trio.current_time()
        nursery.cancel_scope.cancel()
    # the server is cancelled: the answer stuck in its write is cut after the grace period
    assert trio.current_time() - stopping <= GRACE_S + 0.1
    with trio.fail_after(10), contextlib.suppress(trio.BrokenResourceError):
        while await stuck.receive_some(65536):  # the connection ends (EOF or reset)
            pass
    await stuck.aclose()


async def test_a_slow_http_client_is_dropped_and_the_fast_one_gets_everything(
        nursery: trio.Nursery) -> None:
    hub = StreamHub(backlog=10, queue=16)
    app = create_app(light_view(hub), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    url = await serving(nursery, app)
    slow = await open_sse(url, rcvbuf=4096)  # connected, never read
    fast = await open_sse(url)
    await _read_until(fast, b"retry:")
    with trio.fail_after(10):
        while hub.clients < 2:
            await trio.sleep(0)
    pad = "x" * 8192
    received = 0
    buffer = b""
    published = 0
    with trio.fail_after(60):
        while hub.dropped == 0:
            published += 1
            hub.publish("alert", {"n": published, "pad": pad})
            # the publisher never waits; the fast client keeps up as it reads
            buffer = await _read_until(fast, f'"n":{published},'.encode(), buffer)
            received = published
            buffer = buffer[-16384:]
    assert published < 100_000
    assert received == published
    assert hub.clients == 1 and hub.dropped == 1
    hub.publish("alert", {"n": "after"})
    await _read_until(fast, b'"n":"after"', buffer)
    await slow.aclose()
    await fast.aclose()


# ---- connections end --------------------------------------------------------------------

async def connect(url: str) -> trio.SocketStream:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return await trio.open_tcp_stream(host, int(port))


async def read_to_end(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    with trio.fail_after(60):
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


async def test_connection_close_is_honoured(nursery: trio.Nursery) -> None:
    app = create_app(light_view(), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    url = await serving(nursery, app)
    for _ in range(3):  # each closed by the server after its answer
        stream = await connect(url)
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              b"Connection: close\r\n\r\n")
        data = await read_to_end(stream)
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b'{"status":"ok"}')
        await stream.aclose()


async def test_an_idle_keep_alive_connection_is_closed(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    app = create_app(light_view(), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    url = await serving(nursery, app)
    stream = await connect(url)
    for _ in range(2):  # the connection is reused while the client keeps asking
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await _read_until(stream, b'{"status":"ok"}')).startswith(b"HTTP/1.1 200")
    answered = trio.current_time()
    assert await read_to_end(stream) == b""  # then the server closes it
    assert KEEP_ALIVE_S <= trio.current_time() - answered <= KEEP_ALIVE_S + 1
    await stream.aclose()


HEALTH_AND_CLOSE = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


async def test_connections_past_the_limit_are_answered_503_and_closed(
        nursery: trio.Nursery) -> None:
    hub = StreamHub(backlog=10, queue=100)
    app = create_app(light_view(hub), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    url = await serving(nursery, app, max_connections=2)
    followers = [await open_sse(url) for _ in range(2)]  # they keep their connections
    for follower in followers:
        await _read_until(follower, b"retry:")
    for _ in range(3):
        stream = await connect(url)
        await stream.send_all(HEALTH_AND_CLOSE)
        head, _, body = (await read_to_end(stream)).partition(b"\r\n\r\n")
        await stream.aclose()
        assert head.startswith(b"HTTP/1.1 503")
        assert b"retry-after: 1" in head.lower().split(b"\r\n")
        assert json.loads(body) == {
            "error": "too many connections",
            "detail": "the API serves at most 2 connections at once (api.max_connections in "
                      "linnix.toml); retry later"}
    await followers[0].aclose()
    with trio.fail_after(10):  # served again once the server sees a follower gone
        while True:
            stream = await connect(url)
            await stream.send_all(HEALTH_AND_CLOSE)
            data = await read_to_end(stream)
            await stream.aclose()
            if not data.startswith(b"HTTP/1.1 503"):
                break
            await trio.sleep(0.01)
    assert data.startswith(b"HTTP/1.1 200")
    await followers[1].aclose()


# ---- refusing to listen ----------------------------------------------------------------

@pytest.mark.parametrize("bind", ["0.0.0.0:0", "[::]:0"])
@pytest.mark.parametrize("token", [None, ""])
async def test_no_token_no_public_address(bind: str, token: str | None) -> None:
    app = create_app(light_view(), token="", max_body=1024)  # type: ignore[arg-type]
    with pytest.raises(ApiError, match="without an API token"):
        await serve(app, bind, token=token)


def occupied_port() -> socket.socket:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


async def test_an_address_in_use_is_a_clear_error() -> None:
    app = create_app(light_view(), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    with occupied_port() as holder:
        port = holder.getsockname()[1]
        with pytest.raises(ApiError) as err:
            await serve(app, f"127.0.0.1:{port}", token=TOKEN)
    assert str(err.value) == (
        f"cannot listen on 127.0.0.1:{port}: Address already in use (another linnix, or "
        "another program, listens there: stop it, or choose another address with api.bind "
        "in linnix.toml)")


def test_the_daemon_reports_an_address_in_use_without_a_traceback(tmp_path: Path) -> None:
    """The error is raised inside the daemon's nursery; the command still prints it plainly."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.lnx").write_text("rule busy: cpu_pct > 5000 for 5s\n")
    with occupied_port() as holder:
        port = holder.getsockname()[1]
        (tmp_path / "linnix.toml").write_text(f'[api]\nbind = "127.0.0.1:{port}"\n')
        out = run_linnix("run", "--config", str(tmp_path / "linnix.toml"), "--rules",
                         str(tmp_path / "rules"), "--state-dir", str(tmp_path / "state"),
                         "--source", "poll", "--duration", "5s")
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines()[-1].startswith(
        f"linnix: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert "internal error" not in out.stderr and "Traceback" not in out.stderr


def test_a_fifo_as_the_token_file_stops_the_daemon_at_once(tmp_path: Path) -> None:
    """Opening a FIFO for reading waits for a writer: the daemon hung there, deaf to
    SIGTERM.  It is refused at once instead."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.lnx").write_text("rule busy: cpu_pct > 5000 for 5s\n")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.mkfifo(state / "api.token", 0o600)
    (tmp_path / "linnix.toml").write_text('[api]\nbind = "127.0.0.1:1"\n')
    out = run_linnix("run", "--config", str(tmp_path / "linnix.toml"), "--rules",
                     str(tmp_path / "rules"), "--state-dir", str(state), "--source", "poll",
                     "--duration", "5s", timeout=60)
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines()[-1] == (
        f"linnix: the API token file {state / 'api.token'} is not a regular file (a named "
        "pipe); it must be a file written by linnix")


def test_a_damaged_tokens_file_stops_the_daemon(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.lnx").write_text("rule busy: cpu_pct > 5000 for 5s\n")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "api.tokens").write_text("{")
    (state / "api.tokens").chmod(0o600)
    (tmp_path / "linnix.toml").write_text('[api]\nbind = "127.0.0.1:1"\n')
    out = run_linnix("run", "--config", str(tmp_path / "linnix.toml"), "--rules",
                     str(tmp_path / "rules"), "--state-dir", str(state), "--source", "poll",
                     "--duration", "5s", timeout=60)
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines()[-1] == (
        f"linnix: the API tokens file {state / 'api.tokens'} is damaged: it is not what "
        "'linnix token' writes; fix or delete it")


async def test_loopback_without_a_token_is_allowed(nursery: trio.Nursery) -> None:
    app = create_app(light_view(), token="", max_body=1024)  # type: ignore[arg-type]
    url = await serving(nursery, app, token=None)
    status, _, _ = await get(f"{url}/health")
    assert status == 200


async def test_a_real_request_with_a_foreign_host_name_is_refused(nursery: trio.Nursery) -> None:
    app = create_app(light_view(), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    url = await serving(nursery, app)
    status, _, body = await get(f"{url}/processes", headers={"Host": "rebound.example", **AUTH})
    assert status == 421 and body["error"] == "misdirected_request"
    # urllib sends the address it connected to
    status, _, _ = await get(f"{url}/processes", headers=AUTH)
    assert status == 200


@pytest.mark.parametrize(("head", "answer"), [
    (b"GET /health HTTP/1.0\r\n\r\n", b"HTTP/1.1 200"),  # no Host: not from a browser
    (b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", b"HTTP/1.1 200"),
    (b"GET /health HTTP/1.0\r\nHost: rebound.example\r\n\r\n", b"HTTP/1.1 421"),
    (b"GET /health HTTP/1.0\r\nHost: \r\n\r\n", b"HTTP/1.1 421"),  # an empty name is none
    (b"GET /health HTTP/1.1\r\n\r\n", b"HTTP/1.1 400"),  # HTTP/1.1 must send one
])
async def test_http_10_without_a_host_header_is_served(nursery: trio.Nursery, head: bytes,
                                                       answer: bytes) -> None:
    app = create_app(light_view(), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    url = await serving(nursery, app)
    stream = await connect(url)
    await stream.send_all(head)
    assert (await read_to_end(stream)).startswith(answer)
    await stream.aclose()


async def test_a_public_address_with_a_token_is_served(nursery: trio.Nursery) -> None:
    app = create_app(light_view(), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    url = await serving(nursery, app, bind="0.0.0.0:0")
    port = url.rsplit(":", 1)[1]
    status, _, _ = await get(f"http://127.0.0.1:{port}/health")
    assert status == 200


async def test_a_busy_port_is_a_clear_error(nursery: trio.Nursery) -> None:
    app = create_app(light_view(), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    url = await serving(nursery, app)
    taken = url.removeprefix("http://")
    with pytest.raises(ApiError, match=f"cannot listen on {taken}"):
        await serve(app, taken, token=TOKEN)


@pytest.mark.parametrize("bind", ["nonsense", "127.0.0.1:99999", "[::1:9"])
async def test_an_invalid_address_is_a_clear_error(bind: str) -> None:
    app = create_app(light_view(), token=TOKEN, max_body=1024)  # type: ignore[arg-type]
    with pytest.raises(ApiError, match="invalid API address"):
        await serve(app, bind, token=TOKEN)


def test_bind_helpers() -> None:
    assert split_bind("127.0.0.1:0") == ("127.0.0.1", 0)
    assert split_bind("[::1]:0") == ("::1", 0)
    assert split_bind("localhost:9333") == ("localhost", 9333)
    assert format_address(("::1", 80, 0, 0)) == "[::1]:80"
    assert format_address(("127.0.0.1", 80)) == "127.0.0.1:80"
