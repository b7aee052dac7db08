"""Serving the API inside the daemon's trio run, and the API token file.

:func:`serve` opens the listening socket itself (so that port 0 works and a
bind error names the address), then runs hypercorn's trio worker on it until
cancelled.  Without a token the API may only listen on a loopback address.

:func:`load_or_create_token` reads the token file, or creates it on the first
start: a random token, written to a temporary file of mode 0600 and linked
into place, so no reader ever sees a partial file and two daemons starting at
once agree on one token.  A token file that other users could read is refused.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import re
import secrets
import socket
import stat
from functools import partial
from typing import Any

import trio

from ..config import parse_bind
from ..errors import ApiError

__all__ = ["format_address", "load_or_create_token", "serve", "split_bind"]

log = logging.getLogger("linnix.api")

BACKLOG = 128
_TOKEN = re.compile(r"[\x21-\x7e]{16,512}")  # printable ASCII, no spaces: a header value


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
                task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``bind`` until cancelled.

    Once listening, ``task_status.started`` receives the bound ``host:port``
    (the real port when ``bind`` asked for port 0).  Raises
    :class:`~linnix.errors.ApiError` when the address is invalid, cannot be
    bound, or is not a loopback address while ``token`` is empty.
    """
    from hypercorn.config import Config, Sockets
    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import wrap_app

    sock = await _listening_socket(bind, token)
    try:
        address = format_address(sock.getsockname())
        config = Config()
        config.bind = [address]
        config.accesslog = None
        config.errorlog = log
        config.include_server_header = False
        config.graceful_timeout = 1.0
        sockets = Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[])
        async with trio.open_nursery() as nursery:
            # The socket is ours (worker_serve does not close it); the public serve()
            # would bind a socket of its own, which nothing would close.
            await nursery.start(partial(
                worker_serve, wrap_app(app, config.wsgi_max_body_size, "asgi"), config,
                sockets=sockets))
            log.info("API listening on http://%s", address)
            task_status.started(address)
    finally:
        sock.close()


# ---- the token file -----------------------------------------------------------------

def load_or_create_token(path: str) -> str:
    """The API token in ``path``; created (mode 0600) when the file does not exist."""
    try:
        return _read_token(path)
    except FileNotFoundError:
        pass
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        token = secrets.token_urlsafe(32)
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (token + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if the file appeared meanwhile: keep that one
        except FileExistsError:
            return _read_token(path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _sync_directory(directory)
    except OSError as err:
        raise ApiError(f"cannot create the API token file {path}: "
                       f"{err.strerror or err}") from None
    log.info("created the API token file %s", path)
    return token


def _read_token(path: str) -> str:
    """The token in ``path``; FileNotFoundError when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ApiError(f"cannot read the API token file {path}: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ApiError(f"the API token file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise ApiError(
                f"the API token file {path} has mode {mode:04o}: other users could read or "
                f"change it; fix it with: chmod 600 {path}")
        if info.st_uid != os.geteuid():
            raise ApiError(
                f"the API token file {path} belongs to uid {info.st_uid}, not to the user "
                f"the daemon runs as (uid {os.geteuid()}); fix it with: "
                f"chown {os.geteuid()} {path}")
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    token = raw.decode("ascii", "replace").strip()
    if not _TOKEN.fullmatch(token):
        raise ApiError(f"the API token file {path} does not hold a token (16 to 512 printable "
                       f"characters, no spaces); delete it to have a new one made")
    return token


def _sync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
