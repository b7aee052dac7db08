"""API tokens: the admin's token file, and named tokens with roles.

Two files, both of mode 0600 and owned by the daemon's user:

* ``api.token`` (or ``api.token_file``): the admin's token in clear, made at
  the first start, so that the CLI on the same host can read it.  Whoever
  presents it is named "admin".
* ``api.tokens`` in the state directory: the named tokens ``linnix token add``
  made, as JSON (name, role, when it was made, and the SHA-256 of the token,
  never the token itself).  It is replaced whole (a temporary file renamed into
  place), under a lock, so a reader never sees half a file and two commands
  never lose each other's change.

Roles, each allowed what the one before it is: ``reader`` reads,
``approver`` also approves and rejects actions and pauses and resumes them all,
``admin`` also reloads rules.

:class:`TokenBook` says whose a presented token is, comparing digests in
constant time; :meth:`TokenBook.watch` re-reads ``api.tokens`` on a worker
thread whenever it changes, so tokens added or revoked count without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import string
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import attrs

from ..errors import ApiError, UsageError

__all__ = [
    "ADMIN",
    "ROLES",
    "NamedToken",
    "Principal",
    "TokenBook",
    "add_token",
    "load_or_create_token",
    "read_tokens",
    "revoke_token",
]

log = logging.getLogger("linnix.api")

ADMIN = "admin"  # the name of whoever holds the token of api.token
ROLES = ("reader", "approver", "admin")  # each may do what the ones before it may
_RANK = {role: rank for rank, role in enumerate(ROLES)}
NAME_MAX = 64
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "._-@")
TOKEN_PREFIX = "lnx_"
TOKENS_MAX_BYTES = 1 << 20  # far more than any real list of tokens
WATCH_S = 1.0  # how often the daemon looks for a changed api.tokens
_TOKEN = re.compile(r"[\x21-\x7e]{16,512}")  # printable ASCII, no spaces: a header value
_HEX64 = re.compile(r"[0-9a-f]{64}")


@attrs.frozen
class Principal:
    """Who made a request: a token's name and role."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this role includes ``role``."""
        return _RANK[self.role] >= _RANK[role]


@attrs.frozen
class NamedToken:
    """One entry of ``api.tokens``."""

    name: str
    role: str
    sha256: str  # hex digest of the token
    created: float  # Unix time

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "sha256": self.sha256,
                "created": self.created}


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a token, or None.  Names are identities: plain ASCII."""
    if not name:
        return "a token name must not be empty"
    if len(name) > NAME_MAX:
        return f"a token name has at most {NAME_MAX} characters"
    bad = next((c for c in name if c not in _NAME_CHARS), None)
    if bad is not None:
        return (f"a token name may hold only letters, digits and . _ - @ "
                f"(not {bad!r}); got {name!r}")
    return None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "replace")).digest()


# ---- reading a private file -------------------------------------------------------------

def _read_private(path: str, what: str, limit: int) -> bytes | None:
    """The bytes of ``path`` (None when it does not exist), if it is a regular file
    only its owner, the user running this, may read or change.

    Opened without blocking: opening a FIFO (or a device) for reading can wait
    for ever, and a daemon stuck there would not even stop on SIGTERM.  What is
    not a regular file is refused before anything is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
                     | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ApiError(f"cannot read {what} {path}: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ApiError(f"{what} {path} is not a regular file ({_kind(info.st_mode)}); "
                           "it must be a file written by linnix")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise ApiError(
                f"{what} {path} has mode {mode:04o}: other users could read or "
                f"change it; fix it with: chmod 600 {path}")
        if info.st_uid != os.geteuid():
            raise ApiError(
                f"{what} {path} belongs to uid {info.st_uid}, not to the user "
                f"the daemon runs as (uid {os.geteuid()}); fix it with: "
                f"chown {os.geteuid()} {path}")
        raw = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(raw) > limit:
        raise ApiError(f"{what} {path} is larger than {limit} bytes")
    return raw


def _kind(mode: int) -> str:
    """What a file that is not a regular one is, in a word or two."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    return next((word for test, word in kinds if test(mode)), "not a file")


def _write_private(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once: a temporary file of mode 0600, synced,
    renamed into place."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_directory(directory)


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


# ---- the admin's token (api.token) -----------------------------------------------------

def load_or_create_token(path: str) -> str:
    """The API token in ``path``; created (mode 0600) when the file does not exist.

    Written to a temporary file and linked into place, so no reader ever sees a
    partial file and two daemons starting at once agree on one token.
    """
    token = _read_token(path)
    if token is not None:
        return token
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
            found = _read_token(path)
            if found is None:
                raise ApiError(f"the API token file {path} vanished while it was "
                               "being created; start again") from None
            return found
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _sync_directory(directory)
    except OSError as err:
        raise ApiError(f"cannot create the API token file {path}: "
                       f"{err.strerror or err}") from None
    log.info("created the API token file %s", path)
    return token


def _read_token(path: str) -> str | None:
    """The token in ``path``; None when there is no such file."""
    raw = _read_private(path, "the API token file", 4096)
    if raw is None:
        return None
    token = raw.decode("ascii", "replace").strip()
    if not _TOKEN.fullmatch(token):
        raise ApiError(f"the API token file {path} does not hold a token (16 to 512 printable "
                       f"characters, no spaces); delete it to have a new one made")
    return token


# ---- named tokens (api.tokens) ----------------------------------------------------------

def read_tokens(path: str) -> list[NamedToken]:
    """The named tokens in ``path`` (none when it does not exist)."""
    raw = _read_private(path, "the API tokens file", TOKENS_MAX_BYTES)
    if raw is None:
        return []
    try:
        doc = json.loads(raw)
        entries = doc["tokens"]
        if not isinstance(entries, list):
            raise TypeError
        tokens = [_entry(item) for item in entries]
    except (ValueError, KeyError, TypeError):
        raise ApiError(f"the API tokens file {path} is damaged: it is not what "
                       "'linnix token' writes; fix or delete it") from None
    if len({t.name for t in tokens}) != len(tokens):
        raise ApiError(f"the API tokens file {path} names a token twice; fix or delete it")
    return tokens


def _entry(item: Any) -> NamedToken:
    name, role, digest, created = (item["name"], item["role"], item["sha256"],
                                   item["created"])
    if not isinstance(name, str) or name_problem(name) or name == ADMIN:
        raise ValueError(name)
    if role not in _RANK or not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise ValueError(role)
    if not isinstance(created, int | float) or isinstance(created, bool):
        raise ValueError(created)
    return NamedToken(name, role, digest, float(created))


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """Hold ``path``.lock: one change of ``path`` at a time."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _save(path: str, tokens: list[NamedToken]) -> None:
    doc = {"tokens": [t.to_json() for t in tokens]}
    _write_private(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))


def add_token(path: str, name: str, role: str, *,
              clock: Callable[[], float] = time.time) -> str:
    """Add a token named ``name`` with ``role`` to ``path``; the new token (shown once)."""
    problem = name_problem(name)
    if problem is not None:
        raise UsageError(problem)
    if name == ADMIN:
        raise UsageError(f"{ADMIN!r} is the name of the token in api.token; choose another")
    if role not in _RANK:
        raise UsageError(f"a role is one of {', '.join(ROLES)}, not {role!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 32 random bytes
    try:
        with _locked(path):
            tokens = read_tokens(path)
            if any(t.name == name for t in tokens):
                raise ApiError(f"a token named {name!r} exists already; revoke it first "
                               "to replace it")
            digest = hashlib.sha256(token.encode("ascii")).hexdigest()
            _save(path, [*tokens, NamedToken(name, role, digest, clock())])
    except OSError as err:
        raise ApiError(f"cannot change the API tokens file {path}: "
                       f"{err.strerror or err}") from None
    return token


def revoke_token(path: str, name: str) -> None:
    """Remove the token named ``name`` from ``path``."""
    if name == ADMIN:
        raise UsageError(f"{ADMIN!r} is the token in api.token: to replace it, stop the "
                         "daemon, delete that file and start the daemon again")
    try:
        with _locked(path):
            tokens = read_tokens(path)
            kept = [t for t in tokens if t.name != name]
            if len(kept) == len(tokens):
                raise ApiError(f"no token is named {name!r} ('linnix token list' lists them)")
            _save(path, kept)
    except OSError as err:
        raise ApiError(f"cannot change the API tokens file {path}: "
                       f"{err.strerror or err}") from None


# ---- whose token is it -----------------------------------------------------------------

Runner = Callable[[Callable[[], Any]], Awaitable[Any]]
_Read = tuple[tuple[int, ...] | None, list[NamedToken], str | None]  # stamp, tokens, problem


async def _on_a_thread(fn: Callable[[], Any]) -> Any:
    import trio  # here: 'linnix token' and the CLI's parser need no trio

    return await trio.to_thread.run_sync(fn)


class TokenBook:
    """Who holds a presented token: the admin (``admin``, the token of api.token),
    or a named token of ``path`` (api.tokens)."""

    def __init__(self, admin: str = "", path: str | None = None) -> None:
        self._admin = _digest(admin) if admin else None
        self.path = path
        self._named: tuple[tuple[bytes, Principal], ...] = ()
        self._stamp: tuple[int, ...] | None = None  # of the file as last read
        self.problem: str | None = None  # why api.tokens is not used, when it is not

    @property
    def empty(self) -> bool:
        """Whether no token at all is accepted."""
        return self._admin is None and not self._named

    def identify(self, secret: str) -> Principal | None:
        """Whose token ``secret`` is, or None.

        Every digest is compared, whatever matched first, each in constant time:
        how long this takes says nothing about which token came close.
        """
        given = _digest(secret)
        found = None
        if self._admin is not None and hmac.compare_digest(given, self._admin):
            found = Principal(ADMIN, "admin")
        for digest, who in self._named:
            if hmac.compare_digest(given, digest) and found is None:
                found = who
        return found

    def holds(self, who: Principal) -> bool:
        """Whether a token of ``who`` (its name and role) is still accepted: a session
        opened with a token ends when the token is revoked or its role changes."""
        if who == Principal(ADMIN, "admin") and self._admin is not None:
            return True
        return any(p == who for _, p in self._named)

    def _read_if_changed(self) -> _Read | None:
        """(stamp, tokens, problem) when the file changed since the last read; else None.
        Blocking: run it on a worker thread."""
        assert self.path is not None
        try:
            info = os.stat(self.path)
            stamp: tuple[int, ...] | None = (info.st_ino, info.st_size, info.st_mtime_ns,
                                             info.st_ctime_ns)
        except FileNotFoundError:
            stamp = None
        except OSError as err:
            stamp = (-1, err.errno or 0)
        if stamp == self._stamp:
            return None
        try:
            return stamp, read_tokens(self.path), None
        except ApiError as err:
            return stamp, [], str(err)

    async def refresh(self, run: Runner = _on_a_thread) -> bool:
        """Re-read api.tokens if it changed; whether it did.  A file that cannot be
        trusted grants nothing (the admin's token still works) until it is fixed."""
        if self.path is None:
            return False
        changed = await run(self._read_if_changed)
        if changed is None:
            return False
        self._stamp, tokens, self.problem = changed
        self._named = tuple((bytes.fromhex(t.sha256), Principal(t.name, t.role))
                            for t in tokens)
        if self.problem is not None:
            log.error("%s; no named API token is accepted until it is fixed", self.problem)
        else:
            log.info("API tokens: %d named token(s) from %s", len(tokens), self.path)
        return True

    async def watch(self, interval: float = WATCH_S, run: Runner = _on_a_thread) -> None:
        """Re-read api.tokens whenever it changes, until cancelled."""
        import trio

        while True:
            await trio.sleep(interval)
            await self.refresh(run)
