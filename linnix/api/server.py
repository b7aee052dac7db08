"""Serving the API inside the daemon's trio run.

:func:`serve` opens the listening socket itself (so that port 0 works and a
bind error names the address), then serves it with hypercorn's trio
connection handler until cancelled.  Without a token the API may only listen
on a loopback address.

Shutdown never waits for a client.  Hypercorn writes each answer inside a
shielded cancel scope, so a client that stops reading (a ``/stream``
subscriber whose socket buffer is full) would hold a cancelled server open for
as long as it likes.  The listener here keeps every accepted connection; once
the server is cancelled, connections still open after ``GRACE_S`` are cut,
which wakes any write blocked on them.

Every answer ends whole.  quart-trio cancels a request's tasks as soon as
hypercorn reports the client gone, and hypercorn reports that from inside the
call that sends an answer's last bytes: the cancellation then lands in the
middle of hypercorn's own bookkeeping, which never gets to close a
``Connection: close`` connection nor to start the keep-alive timer of the next
one, and the connection is held until the client leaves.  :func:`_whole_answers`
shields that last call, so both happen; idle connections close after
``KEEP_ALIVE_S``.

At most ``max_connections`` connections are served at once (``[api]
max_connections``).  One more is answered at once with a 503 that says so and
closed: a client learns why instead of hanging, and keeping an answer short
and bounded in time costs less than the backlog of a listener that stops
accepting.  Past ``REFUSING_MAX`` refusals in flight, a connection is closed
without an answer.

"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from functools import partial
from typing import Any

import trio

from ..config import parse_bind
from ..errors import ApiError
from .stream import encode_json

__all__ = ["format_address", "serve", "split_bind"]

log = logging.getLogger("linnix.api")

BACKLOG = 128
GRACE_S = 1.0  # how long a cancelled server lets answers in flight finish
KEEP_ALIVE_S = 5.0  # how long a connection may stay idle between requests
MAX_CONNECTIONS = 64  # served at once, by default
REFUSING_MAX = 16  # 503 answers in flight to connections over the limit
REFUSE_S = 1.0  # how long one of those may take, reading what the client sent


def split_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``) as a pair; port 0 asks for any free port."""
    text = bind.strip()
    zero = text.endswith(":0") and not text.endswith("::0")
    try:
        host, port = parse_bind(text[:-1] + "1" if zero else text)
    except ValueError as err:
        raise ApiError(f"invalid API address {bind!r}: {err}") from None
    return host, 0 if zero else port


def format_address(sockaddr: tuple[Any, ...]) -> str:
    """``host:port`` of a socket address, with brackets around an IPv6 host."""
    host, port = str(sockaddr[0]), int(sockaddr[1])
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


async def _listening_socket(bind: str, token: str | None) -> socket.socket:
    host, port = split_bind(bind)
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                              flags=socket.AI_PASSIVE)
    except OSError as err:
        raise ApiError(f"cannot listen on {bind}: cannot resolve {host!r}: "
                       f"{err.strerror or err}") from None
    if not infos:
        raise ApiError(f"cannot listen on {bind}: {host!r} has no address")
    family, kind, proto, _, sockaddr = infos[0]
    if not token and not _loopback(str(sockaddr[0])):
        raise ApiError(f"refusing to listen on {bind} without an API token: without one the "
                       "API may only listen on a loopback address such as 127.0.0.1:9333")
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(sockaddr)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as err:
        sock.close()
        hint = ""
        if err.errno == errno.EADDRINUSE:
            hint = (" (another linnix, or another program, listens there: stop it, or "
                    "choose another address with api.bind in linnix.toml)")
        raise ApiError(f"cannot listen on {bind}: {err.strerror or err}{hint}") from None
    return sock


async def serve(app: Any, bind: str, *, token: str | None,
                max_connections: int = MAX_CONNECTIONS,
                task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``bind`` until cancelled.

    Once listening, ``task_status.started`` receives the bound ``host:port``
    (the real port when ``bind`` asked for port 0).  At most ``max_connections``
    are served at once; the next ones get a 503.  Raises
    :class:`~linnix.errors.ApiError` when the address is invalid, cannot be
    bound, or is not a loopback address while ``token`` is empty.
    """
    from hypercorn.config import Config

    sock = await _listening_socket(bind, token)
    listener = Connections(trio.SocketListener(trio.socket.from_stdlib_socket(sock)),
                           limit=max_connections)
    try:
        address = format_address(sock.getsockname())
        config = Config()
        config.bind = [address]
        config.accesslog = None
        config.errorlog = log
        config.include_server_header = False
        config.graceful_timeout = GRACE_S
        config.keep_alive_timeout = KEEP_ALIVE_S
        async with trio.open_nursery() as nursery:
            await nursery.start(_serve_http, app, config, listener)
            log.info("API listening on http://%s", address)
            task_status.started(address)
    finally:
        sock.close()


async def _serve_http(app: Any, config: Any, listener: Connections,
                      task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Hypercorn's trio worker, on our listener (checked against hypercorn 0.17 and 0.18).

    It runs the ASGI lifespan around the connection handlers, as hypercorn's
    ``worker_serve`` does, which builds its own listeners and so could not
    cut connections at shutdown.
    """
    from hypercorn.trio.lifespan import Lifespan
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import WorkerContext
    from hypercorn.typing import ConnectionState
    from hypercorn.utils import wrap_app

    asgi = wrap_app(_whole_answers(app), config.wsgi_max_body_size, "asgi")
    state: dict[str, Any] = {}
    lifespan = Lifespan(asgi, config, state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as handlers:
            handlers.start_soon(_cut_when_cancelled, listener, context, config.graceful_timeout)

            async def handler(conn: _Connection) -> None:
                if conn.refused:
                    await _refuse(conn, listener.limit)
                else:
                    # annotated as taking an SSL stream; it takes any (it probes for TLS)
                    await TCPServer(asgi, config, context, ConnectionState(state.copy()),
                                    conn)  # type: ignore[arg-type]

            await handlers.start(partial(trio.serve_listeners, handler, [listener],
                                         handler_nursery=handlers))
            task_status.started()
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()


def _whole_answers(app: Any) -> Any:
    """``app`` (ASGI), whose last message of each HTTP answer is sent shielded.

    Hypercorn closes or recycles the connection inside that call (see the module
    docstring); the socket write in it is shielded by hypercorn already, so this
    adds no new way to block: a client that stops reading is still cut at shutdown.
    """
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return

        async def send_last_shielded(message: Any) -> None:
            if message.get("type") == "http.response.body" and not message.get("more_body"):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await app(scope, receive, send_last_shielded)

    return asgi


async def _cut_when_cancelled(listener: Connections, context: Any, grace: float) -> None:
    """Once the server is cancelled: let answers finish for ``grace``, then cut the rest."""
    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            await context.terminated.set()  # idle keep-alive connections close now
            with trio.move_on_after(grace):
                await listener.wait_all_closed()
            listener.cut_all()


async def _refuse(conn: _Connection, limit: int) -> None:
    """Answer a connection over the limit with a 503, then close it.

    What the client sent is read (a bounded amount, for at most ``REFUSE_S``)
    before closing: closing a socket with unread data resets it, and the reset
    can destroy the answer before the client reads it.
    """
    body = encode_json({"error": "too many connections",
                        "detail": f"the API serves at most {limit} connections at once "
                                  "(api.max_connections in linnix.toml); retry later"})
    head = (f"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n")
    try:
        with trio.move_on_after(REFUSE_S):
            await conn.send_all(head.encode("ascii") + body)
            await conn.send_eof()
            received = 0
            while received < 65536 and (chunk := await conn.receive_some(4096)):
                received += len(chunk)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass  # the client is gone: nothing more to say
    finally:
        await conn.aclose()


class Connections(trio.abc.Listener[trio.abc.HalfCloseableStream]):
    """A socket listener that knows every connection it accepted and can cut them all.

    Connections beyond ``limit`` served at once are marked ``refused`` (their
    handler answers 503); beyond ``REFUSING_MAX`` of those, closed at once.
    """

    def __init__(self, inner: trio.SocketListener, limit: int = MAX_CONNECTIONS) -> None:
        self._inner = inner
        self.limit = limit
        self.open: set[_Connection] = set()
        self.served = 0  # open connections that are not refused
        self.refused = 0  # connections refused so far
        self._said_full = False
        self._all_closed = trio.Event()
        self._all_closed.set()

    async def accept(self) -> _Connection:
        while True:
            stream = await self._inner.accept()
            refused = self.served >= self.limit
            if refused and len(self.open) - self.served >= REFUSING_MAX:
                self.refused += 1
                await stream.aclose()  # a flood: no answer, no descriptor kept
                continue
            conn = _Connection(stream, self, refused=refused)
            self.open.add(conn)
            if refused:
                self.refused += 1
                if not self._said_full:  # once while full, not once per connection
                    self._said_full = True
                    log.warning("refusing API connections: %d are served already "
                                "(api.max_connections)", self.limit)
            else:
                self.served += 1
            self._all_closed = trio.Event()
            return conn

    async def aclose(self) -> None:
        await self._inner.aclose()

    def forget(self, conn: _Connection) -> None:
        if conn not in self.open:
            return
        self.open.discard(conn)
        if not conn.refused:
            self.served -= 1
            self._said_full = False
        if not self.open:
            self._all_closed.set()

    async def wait_all_closed(self) -> None:
        await self._all_closed.wait()

    def cut_all(self) -> None:
        """Close every open connection's socket: a task blocked on it wakes with an error."""
        for conn in list(self.open):
            conn.cut()


class _Connection(trio.abc.HalfCloseableStream):
    """One accepted connection; tells its listener when it is closed."""

    def __init__(self, stream: trio.SocketStream, owner: Connections, *,
                 refused: bool = False) -> None:
        self._stream = stream
        self._owner = owner
        self.refused = refused
        self.socket = stream.socket  # hypercorn reads the addresses from it

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._stream.receive_some(max_bytes)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        self._owner.forget(self)
        await self._stream.aclose()

    def cut(self) -> None:
        self._owner.forget(self)
        self._stream.socket.close()  # wakes tasks waiting on the socket (notify_closing)
