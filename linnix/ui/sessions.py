"""The dashboard's sign-in state: sessions, one-time sign-in codes, failed sign-ins.

All three are small in-memory tables, bounded in size, with a clock passed in
(``time.monotonic`` by default) so that tests can move time.  Nothing here
survives a restart: a restarted daemon asks everyone to sign in again.

* :class:`Sessions`: a session is created when a token (or a one-time code)
  is accepted.  The browser holds its id in a cookie; the table keeps only the
  id's SHA-256, so a table seen in a core dump opens no session.  Each session
  has its own CSRF token, which every state-changing form sends back.  A
  session ends at sign-out, after ``IDLE_S`` without a request, ``MAX_AGE_S``
  after it began, or when the table is full and it is the least recently used.
* :class:`Codes`: ``linnix ui`` asks the daemon for a code that opens one
  session: it is good for ``CODE_TTL_S`` and only once.
* :class:`Failures`: wrong tokens, counted per client address; past
  ``FAILURES_MAX`` within ``FAILURE_WINDOW_S`` the client must wait.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

import attrs

from ..api.tokens import Principal

__all__ = ["CODE_TTL_S", "Codes", "Failures", "Session", "Sessions"]

IDLE_S = 30 * 60.0  # a session nobody used for this long ends (the overview polls: in use)
MAX_AGE_S = 12 * 3600.0  # and every session ends this long after sign-in
SESSIONS_MAX = 256  # sessions at once; the least recently used goes first
CODE_TTL_S = 60.0  # a one-time sign-in code is good for this long
CODES_MAX = 32  # codes waiting to be used at once; the oldest goes first
FAILURES_MAX = 5  # wrong tokens a client may send within the window
FAILURE_WINDOW_S = 60.0
CLIENTS_MAX = 4096  # client addresses remembered for their failures

Clock = Callable[[], float]


def _key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "replace")).digest()


@attrs.define
class Session:
    """One signed-in browser: who, its CSRF token, when it began and was last used."""

    who: Principal
    csrf: str
    began: float
    used: float

    def csrf_ok(self, given: str | None) -> bool:
        """Whether ``given`` is this session's CSRF token (compared in constant time)."""
        return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"),
                                                         self.csrf.encode())


class Sessions:
    """Sessions by the SHA-256 of their id, least recently used first."""

    def __init__(self, clock: Clock = time.monotonic, *, limit: int = SESSIONS_MAX,
                 idle_s: float = IDLE_S, max_age_s: float = MAX_AGE_S) -> None:
        self.clock = clock
        self.limit = limit
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self._table: OrderedDict[bytes, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def open(self, who: Principal) -> tuple[str, Session]:
        """A new session for ``who``: (its id for the cookie, the session)."""
        now = self.clock()
        self._expire(now)
        while len(self._table) >= self.limit:
            self._table.popitem(last=False)
        sid = secrets.token_urlsafe(32)
        session = Session(who, secrets.token_urlsafe(32), now, now)
        self._table[_key(sid)] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        """The live session of the cookie ``sid`` (marked as used now), or None."""
        if not sid:
            return None
        now = self.clock()
        self._expire(now)
        key = _key(sid)
        session = self._table.get(key)
        if session is None:
            return None
        session.used = now
        self._table.move_to_end(key)
        return session

    def peek(self, sid: str | None) -> Session | None:
        """The live session of ``sid`` without marking it used: an open stream checks
        that its session still holds, which is no request of its owner's."""
        if not sid:
            return None
        self._expire(self.clock())
        return self._table.get(_key(sid))

    def close(self, sid: str | None) -> bool:
        """End the session of ``sid``; whether there was one."""
        return bool(sid) and self._table.pop(_key(sid or ""), None) is not None

    def _expire(self, now: float) -> None:
        stale = [key for key, s in self._table.items()
                 if now - s.used >= self.idle_s or now - s.began >= self.max_age_s]
        for key in stale:
            del self._table[key]


class Codes:
    """One-time sign-in codes: each opens one session, within ``ttl_s`` of being made."""

    def __init__(self, clock: Clock = time.monotonic, *, ttl_s: float = CODE_TTL_S,
                 limit: int = CODES_MAX) -> None:
        self.clock = clock
        self.ttl_s = ttl_s
        self.limit = limit
        self._codes: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    def make(self, who: Principal) -> str:
        """A new code that signs in as ``who``."""
        now = self.clock()
        self._expire(now)
        while len(self._codes) >= self.limit:
            self._codes.popitem(last=False)
        code = secrets.token_urlsafe(24)
        self._codes[_key(code)] = (who, now + self.ttl_s)
        return code

    def take(self, code: str | None) -> Principal | None:
        """Whose ``code`` is, using it up; None when unknown, used or expired."""
        if not code:
            return None
        self._expire(self.clock())
        found = self._codes.pop(_key(code), None)
        return found[0] if found is not None else None

    def _expire(self, now: float) -> None:
        for key in [k for k, (_, until) in self._codes.items() if now >= until]:
            del self._codes[key]


class Failures:
    """Wrong tokens by client address, in a sliding window."""

    def __init__(self, clock: Clock = time.monotonic, *, limit: int = FAILURES_MAX,
                 window_s: float = FAILURE_WINDOW_S, clients: int = CLIENTS_MAX) -> None:
        self.clock = clock
        self.limit = limit
        self.window_s = window_s
        self.clients = clients
        self._seen: OrderedDict[str, list[float]] = OrderedDict()

    def wait(self, client: str) -> float:
        """Seconds ``client`` must wait before it may try again (0: it may now)."""
        now = self.clock()
        times = [t for t in self._seen.get(client, ()) if now - t < self.window_s]
        if len(times) < self.limit:
            return 0.0
        return max(0.0, times[-self.limit] + self.window_s - now)

    def failed(self, client: str) -> None:
        """Count one wrong token from ``client``."""
        now = self.clock()
        times = [t for t in self._seen.pop(client, []) if now - t < self.window_s]
        times.append(now)
        self._seen[client] = times[-self.limit:]  # no more are needed to decide
        while len(self._seen) > self.clients:
            self._seen.popitem(last=False)
