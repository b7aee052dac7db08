"""One HTTP/1.1 request on trio: what the notifier and the model client need of HTTP.

Each request opens its own connection (``Connection: close``), sends the body,
reads the status line and headers, and closes: a few requests a minute per
receiver do not need connection reuse.  h11 (already there under the API's
server) parses the answer, so a receiver that answers garbage, or too much,
is an error and not a hang: headers are bounded, the body is never read,
and the whole request, connecting and TLS included, runs under one deadline.
:func:`post` reads only the status; :func:`fetch` (the model client's) also
reads the body, up to a bound: an answer longer than that is an error.
"""

from __future__ import annotations

import ssl
import urllib.parse
from collections.abc import Sequence

import attrs
import h11
import trio

from ... import __version__

__all__ = ["Endpoint", "TimedOutError", "TransportError", "fetch", "post"]

HEADERS_MAX_BYTES = 16 * 1024  # an answer's status line and headers; more is refused
_READ_BYTES = 16 * 1024


class TransportError(Exception):
    """A request that got no HTTP answer; the message says why, for the operator."""


class TimedOutError(TransportError):
    """A request that got no (whole) answer within its time."""


@attrs.frozen
class Endpoint:
    """Where to POST: parsed once from a URL the configuration checked."""

    tls: bool
    host: str  # without brackets
    port: int
    target: str  # path and query
    authority: str  # the Host header

    @classmethod
    def parse(cls, url: str, suffix: str = "") -> Endpoint:
        """The endpoint of ``url`` with ``suffix`` appended to its path."""
        parts = urllib.parse.urlsplit(url)
        tls = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if tls else 80)
        path = parts.path.rstrip("/") + suffix if suffix else parts.path
        target = (path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(tls, host, port, target, parts.netloc)


def _request(conn: h11.Connection, endpoint: Endpoint, body: bytes,
             headers: Sequence[tuple[str, str]], method: str = "POST") -> bytes:
    head = [("Host", endpoint.authority), ("User-Agent", f"linnix/{__version__}"),
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            ("Connection", "close"), *headers]
    return (conn.send(h11.Request(method=method, target=endpoint.target, headers=head)) or b"") \
        + (conn.send(h11.Data(data=body)) or b"") + (conn.send(h11.EndOfMessage()) or b"")


async def _connect(endpoint: Endpoint) -> trio.abc.Stream:
    stream: trio.abc.Stream = await trio.open_tcp_stream(endpoint.host, endpoint.port)
    if endpoint.tls:
        stream = trio.SSLStream(stream, ssl.create_default_context(),
                                server_hostname=endpoint.host, https_compatible=True)
    return stream


async def _status(conn: h11.Connection, stream: trio.abc.Stream) -> int:
    """The status of the first final answer on ``stream``."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(_READ_BYTES)))
        elif isinstance(event, h11.Response):
            return int(event.status_code)
        elif isinstance(event, h11.ConnectionClosed):
            raise TransportError("the connection was closed before an answer came")
        # an InformationalResponse (100 Continue) is followed by the real answer


async def _body(conn: h11.Connection, stream: trio.abc.Stream, limit: int) -> bytes:
    """The body of the answer whose status was read, refused past ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(_READ_BYTES)))
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                raise TransportError(f"the answer is longer than {limit} bytes")
            parts.append(bytes(event.data))
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return b"".join(parts)


async def fetch(endpoint: Endpoint, body: bytes | None, headers: Sequence[tuple[str, str]] = (),
                timeout: float = 10.0, limit: int = 1024 * 1024) -> tuple[int, bytes]:
    """POST ``body`` (JSON) to ``endpoint``, or GET it when ``body`` is None; the answer's
    status and body (at most ``limit`` bytes).  Fails as :func:`post` does, and when the
    answer is longer than ``limit``."""
    method = "GET" if body is None else "POST"
    return await _exchange(endpoint, body or b"", headers, timeout, method, limit)


async def post(endpoint: Endpoint, body: bytes, headers: Sequence[tuple[str, str]] = (),
               timeout: float = 10.0) -> int:
    """POST ``body`` (JSON) to ``endpoint``; the answer's status code.

    Raises :class:`TransportError` when no answer came within ``timeout``
    seconds, the connection failed, or the answer was not HTTP.
    """
    return (await _exchange(endpoint, body, headers, timeout, "POST", None))[0]


async def _exchange(endpoint: Endpoint, body: bytes, headers: Sequence[tuple[str, str]],
                    timeout: float, method: str, limit: int | None) -> tuple[int, bytes]:
    """One request; its status, and its body when ``limit`` is not None."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEADERS_MAX_BYTES)
    stream: trio.abc.Stream | None = None
    try:
        with trio.fail_after(timeout):
            stream = await _connect(endpoint)
            await stream.send_all(_request(conn, endpoint, body, headers, method))
            status = await _status(conn, stream)
            return status, b"" if limit is None else await _body(conn, stream, limit)
    except trio.TooSlowError:
        raise TimedOutError(f"no answer within {timeout:g}s") from None
    except (OSError, trio.BrokenResourceError) as err:
        raise TransportError(_why(err)) from None
    except UnicodeError:  # a host name the resolver cannot encode
        raise TransportError(f"'{endpoint.host}' is not a host name") from None
    except h11.ProtocolError as err:
        raise TransportError(f"the answer is not HTTP/1.1: {err}") from None
    finally:
        if stream is not None:
            await trio.aclose_forcefully(stream)


def _why(err: BaseException) -> str:
    """A failed connection in words (a broken TLS stream says why through its cause)."""
    shown = err.__cause__ if isinstance(err, trio.BrokenResourceError) and err.__cause__ \
        else err
    if isinstance(shown, OSError) and shown.strerror and not isinstance(shown, ssl.SSLError):
        return shown.strerror.lower()
    return str(shown) or type(shown).__name__
