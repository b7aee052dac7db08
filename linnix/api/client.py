"""A client of the daemon's HTTP API: requests, server-sent events, reconnection.

Only the standard library is used (``urllib``), so the commands that talk to
a running daemon start quickly and need nothing the daemon does not.  Every
failure is an :class:`~linnix.errors.ApiError` carrying a sentence for the
user: the daemon cannot be reached, or what the API said was wrong (its
``detail``), never a traceback.  How the answers are shown to people is the
CLI's business (:mod:`linnix.cli.views`).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from ..errors import ApiError

__all__ = [
    "ApiClient",
    "SseEvent",
    "api_url",
    "follow",
    "parse_sse",
    "read_token",
]

STREAM_TIMEOUT_S = 45.0  # three keep-alive periods without a byte: the connection is dead


# ---- where the API is and how to authenticate -------------------------------------

def api_url(bind: str) -> str:
    """The URL to reach a daemon listening on ``bind`` (``host:port``) from this host."""
    from ..config import parse_bind

    host, port = parse_bind(bind)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host in ("::", "::0"):
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def read_token(path: str) -> str:
    """The token in the daemon's token file (a regular file: opening a FIFO for
    reading would wait for a writer, so it is opened without blocking and checked)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ApiError(f"the API token file {path} is not a regular file")
            token = os.read(fd, 4096).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise ApiError(f"no API token file at {path}: has 'linnix run' started with this "
                       "state directory? (or pass --token-file)") from None
    except PermissionError:
        raise ApiError(f"cannot read the API token file {path}: permission denied "
                       "(run this as the daemon's user, e.g. with sudo)") from None
    except OSError as err:
        raise ApiError(f"cannot read the API token file {path}: "
                       f"{err.strerror or err}") from None
    if not token:
        raise ApiError(f"the API token file {path} is empty")
    return token


# ---- talking to the API -----------------------------------------------------------

def _check_url(text: str) -> str:
    """``text`` as a base URL (``http://`` is assumed when no scheme is given)."""
    url = text.strip()
    if "://" not in url:
        url = f"http://{url}"
    url = url.rstrip("/")
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        raise ApiError(f"invalid API URL {text!r}: the port is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(f"invalid API URL {text!r}: expected http://HOST:PORT")
    return url


class ApiClient:
    """Requests to one daemon, with ``token`` (or what ``token_source`` reads).

    Every request but a few public ones needs the token.  A read is still sent
    when the token cannot be had (the daemon may allow reads without one,
    ``api.public_reads``); if the daemon then wants one, the error says why
    there was none.
    """

    def __init__(self, base_url: str, token: str | None = None, *,
                 token_source: Callable[[], str] | None = None, timeout: float = 10.0) -> None:
        self.base_url = _check_url(base_url)
        self._token = token
        self._token_source = token_source
        self.timeout = timeout
        # Talk to the daemon directly even when a proxy is configured for the web.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._token_problem: str | None = None  # why a read went without the token

    def token(self) -> str:
        if self._token is None:
            if self._token_source is None:
                raise ApiError("the API needs a token: pass --token-file")
            self._token = self._token_source()
        return self._token

    def _authorization(self, *, required: bool) -> dict[str, str]:
        try:
            return {"Authorization": f"Bearer {self.token()}"}
        except ApiError as err:
            if required:
                raise
            self._token_problem = str(err)
            return {}

    def url(self, path: str, query: Mapping[str, object] | None = None) -> str:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        suffix = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"{self.base_url}{path}{suffix}"

    def _open(self, method: str, path: str, *, query: Mapping[str, object] | None = None,
              body: object = None, headers: Mapping[str, str] | None = None,
              timeout: float | None = None) -> http.client.HTTPResponse:
        url = self.url(path, query)
        data = None
        sent = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        sent.update(self._authorization(required=method not in ("GET", "HEAD")))
        req = urllib.request.Request(url, data=data, headers=sent, method=method)
        try:
            response = self._opener.open(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as err:
            raise self._refused(err) from None
        except (OSError, http.client.HTTPException) as err:
            raise self.unreachable(err) from None
        assert isinstance(response, http.client.HTTPResponse)
        return response

    def unreachable(self, err: BaseException | None = None) -> ApiError:
        reason = getattr(err, "reason", err)
        if isinstance(reason, TimeoutError | socket.timeout):
            return ApiError(f"the linnix API at {self.base_url} did not answer within "
                            f"{self.timeout:g}s")
        return ApiError(f"cannot reach the linnix API at {self.base_url}: "
                        "is 'linnix run' running?")

    def _refused(self, err: urllib.error.HTTPError) -> ApiError:
        status = err.code
        try:
            raw = err.read()
            payload = json.loads(raw) if raw else {}
        except (OSError, ValueError, http.client.HTTPException):
            payload = {}
        finally:
            err.close()
        detail = payload.get("detail") if isinstance(payload, dict) else None
        if not isinstance(detail, str) or not detail:
            return ApiError(f"unexpected answer from {self.base_url}: HTTP {status} "
                            f"{err.reason}; is this the linnix API?", status)
        if status == 401 and self._token_problem is not None:
            detail = f"the API needs a token: {self._token_problem}"
        elif status == 401:
            detail = f"the API refused the token: {detail}"
        return ApiError(detail, status)

    def request(self, method: str, path: str, *, query: Mapping[str, object] | None = None,
                body: object = None) -> Any:
        """The decoded JSON answer of one request."""
        response = self._open(method, path, query=query, body=body)
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as err:
            raise self.unreachable(err) from None
        finally:
            response.close()
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(f"unexpected answer from {self.base_url}{path}: not JSON; "
                           "is this the linnix API?") from None

    # -- the routes the commands use

    def actions(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.request(
            "GET", "/actions", query={"status": status, "limit": limit})["actions"]
        return rows

    def action(self, action_id: int) -> dict[str, Any]:
        row: dict[str, Any] = self.request("GET", f"/actions/{action_id}")
        return row

    def decide(self, action_id: int, verb: str, note: str | None,
               reason: str | None) -> dict[str, Any]:
        """Approve, reject or thaw; the daemon records the token's name as who decided."""
        body: dict[str, Any] = {}
        if note is not None:
            body["note"] = note
        if reason is not None:
            body["reason"] = reason
        row: dict[str, Any] = self.request("POST", f"/actions/{action_id}/{verb}", body=body)
        return row

    def pause(self, reason: str | None, for_s: float | None,
              note: str | None) -> dict[str, Any]:
        """Pause every action (for ``for_s`` seconds, or until resumed)."""
        body = {k: v for k, v in (("reason", reason), ("for", for_s), ("note", note))
                if v is not None}
        state: dict[str, Any] = self.request("POST", "/actions/pause", body=body)
        return state

    def resume(self, reason: str | None, note: str | None) -> dict[str, Any]:
        body = {k: v for k, v in (("reason", reason), ("note", note)) if v is not None}
        state: dict[str, Any] = self.request("POST", "/actions/resume", body=body)
        return state

    def health(self) -> dict[str, Any]:
        """``/health``: whether actions are paused (it needs no token)."""
        state: dict[str, Any] = self.request("GET", "/health")
        return state

    def sign_in_code(self) -> dict[str, Any]:
        """A one-time code that opens a dashboard session (``POST /ui/codes``): code,
        path (the sign-in link's), expires_in (seconds), name (whose token)."""
        found: dict[str, Any] = self.request("POST", "/ui/codes")
        return found

    def incidents(self, open_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.request(
            "GET", "/incidents", query={"open": 1 if open_only else None,
                                        "limit": limit})["incidents"]
        return rows

    def incident(self, incident_id: int) -> dict[str, Any]:
        row: dict[str, Any] = self.request("GET", f"/incidents/{incident_id}")
        return row

    def analyze(self, incident_id: int) -> dict[str, Any]:
        """Analyse an incident now (the built-in analyst): its stored analysis."""
        row: dict[str, Any] = self.request("POST", f"/incidents/{incident_id}/analyze")
        return row

    def open_stream(self, last_event_id: str | None = None) -> http.client.HTTPResponse:
        """An open ``/stream`` response, resuming after ``last_event_id`` when given."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        return self._open("GET", "/stream", headers=headers, timeout=STREAM_TIMEOUT_S)


# ---- server-sent events -------------------------------------------------------------

@attrs.frozen
class SseEvent:
    """One server-sent event: its id (None if it had none), name and data."""

    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        try:
            return json.loads(self.data)
        except ValueError:
            return None


def parse_sse(lines: Iterable[bytes]) -> Iterator[SseEvent]:
    """The events in a server-sent-events body, given line by line."""
    event_id: str | None = None
    name = ""
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event_id, name or "message", "\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment: the keep-alive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id" and "\0" not in value:
            event_id = value


Notice = Callable[[str], None]


def follow(client: ApiClient, on_event: Callable[[SseEvent], None], *,
           notice: Notice = lambda text: None, sleep: Callable[[float], None] = time.sleep,
           max_delay: float = 30.0, reconnects: int | None = None) -> None:
    """Call ``on_event`` for every event of ``/stream``, forever.

    A dropped connection is re-opened with the id of the last event seen, after
    a delay that doubles up to ``max_delay``.  The first connection must
    succeed (else the ApiError is raised); errors of the API itself (4xx) are
    raised at once.  ``reconnects`` bounds the reconnections (for tests).
    """
    last_id: str | None = None
    delay = 1.0
    connected = False
    attempts = 0
    while True:
        try:
            response = client.open_stream(last_id)
        except ApiError as err:
            if not connected or err.status is not None:
                raise
            reason = str(err)
        else:
            connected = True
            try:
                for event in parse_sse(_lines(response)):
                    delay = 1.0
                    if event.id is not None:
                        last_id = event.id
                    on_event(event)
                reason = "the daemon closed the stream"
            except (OSError, http.client.HTTPException) as err:
                reason = ("no data for too long" if isinstance(err, TimeoutError)
                          else "the connection was lost")
            finally:
                response.close()
        attempts += 1
        if reconnects is not None and attempts > reconnects:
            return
        notice(f"{reason}; reconnecting in {delay:g}s")
        sleep(delay)
        delay = min(delay * 2, max_delay)


def _lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        line = response.readline()
        if not line:
            return
        yield line
