"""Who a process is beyond its pid: its cgroup, and the name of its uid.

Both are read off the event loop (:meth:`Identity.enrich` hands the reads to a
worker thread, as :mod:`.bcc` does with relative exec paths):

* the cgroup (``/proc/PID/cgroup``) of a process after each exec: a service
  manager or container runtime moves a new process into its cgroup between its
  fork and its exec.  A fork is left without one, and so is in its parent's, as
  the kernel starts it there; nothing is read at a sample.  At most
  :data:`CGROUP_READS_MAX` reads a batch: past that an exec keeps the cgroup it
  had, so an exec storm costs a bounded amount of reading.
* the name of a fork's uid, from :class:`Users`: the password database,
  cached, and read again when ``/etc/passwd`` changes (its mtime, size or inode).
  A uid it does not know has no name (never a number dressed as one).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Sequence

import trio

from ...engine import trace as t
from ...names import TEXT_MAX
from ...procfs import PROC, read_cgroup

__all__ = ["CGROUP_READS_MAX", "CHECK_EVERY_S", "PASSWD", "USERS_MAX", "Identity", "Users"]

PASSWD = "/etc/passwd"
USERS_MAX = 1 << 16  # uids whose name is remembered; past that the cache starts afresh
CHECK_EVERY_S = 1.0  # how often /etc/passwd is looked at for a change
CGROUP_READS_MAX = 1024  # cgroup reads in one batch of events
_UNKNOWN = object()


def _lookup(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name[:TEXT_MAX]
    except (KeyError, OverflowError):
        return None


class Users:
    """The names of uids from the password database, cached (blocking: a worker thread)."""

    def __init__(self, path: str = PASSWD, lookup: Callable[[int], str | None] = _lookup,
                 limit: int = USERS_MAX) -> None:
        self.path = path
        self.lookup = lookup
        self.limit = limit
        self.names: dict[int, str | None] = {}
        self._version: tuple[int, int, int] | None = None

    def check(self) -> None:
        """Forget every name when the database file changed since the last check."""
        try:
            st = os.stat(self.path)
            version: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            version = None
        if version != self._version:
            self._version = version
            self.names.clear()

    def cached(self, uid: int) -> object:
        """The name known for ``uid`` (None: it has none), without reading anything;
        ``_UNKNOWN`` when it was never looked up."""
        return self.names.get(uid, _UNKNOWN)

    def name(self, uid: int | None) -> str | None:
        """The name of ``uid``, looked up once (None for no uid, or one the database lacks)."""
        if uid is None:
            return None
        known = self.names.get(uid, _UNKNOWN)
        if known is _UNKNOWN:
            if len(self.names) >= self.limit:
                self.names.clear()
            known = self.names[uid] = self.lookup(uid)
        return known  # type: ignore[return-value]


class Identity:
    """Fills in the cgroup of execs and the user of forks in a source's batches."""

    def __init__(self, users: Users | None = None, root: str = PROC,
                 reads: int = CGROUP_READS_MAX) -> None:
        self.users = users if users is not None else Users()
        self.root = root
        self.reads = reads
        self._checked: float | None = None  # trio time of the last look at /etc/passwd

    def missing(self, batch: Sequence[t.Event]) -> tuple[list[t.Exec], list[t.Fork]]:
        """Name the forks whose user is cached (no reading); return what is left to read:
        the execs (at most :attr:`reads`), and the forks with a uid never looked up."""
        execs: list[t.Exec] = []
        forks: list[t.Fork] = []
        cached = self.users.cached
        for ev in batch:
            # by exact class (events are never subclassed): two isinstance() calls cost a
            # network event, which is neither, four times as much
            if type(ev) is t.Exec:
                if len(execs) < self.reads:
                    execs.append(ev)
            elif type(ev) is t.Fork and ev.uid is not None:
                name = cached(ev.uid)
                if name is _UNKNOWN:
                    forks.append(ev)
                else:
                    ev.user = name  # type: ignore[assignment]
        return execs, forks

    def complete(self, execs: Sequence[t.Exec], forks: Sequence[t.Fork],
                 check: bool = False) -> None:
        """The reads (blocking): each exec's cgroup, each fork's user name."""
        if check:
            self.users.check()
        for ev in execs:
            ev.cgroup = read_cgroup(ev.pid, self.root)
        for fork in forks:
            fork.user = self.users.name(fork.uid)

    def fill(self, batch: Sequence[t.Event]) -> None:
        """Everything at once, on this thread (a source that already runs on one)."""
        execs, forks = self.missing(batch)
        self.complete(execs, forks, check=True)

    async def enrich(self, batch: Sequence[t.Event]) -> None:
        """:meth:`fill` with the reads on a worker thread, and only when there are any."""
        execs, forks = self.missing(batch)
        now = trio.current_time()
        check = self._checked is None or now - self._checked >= CHECK_EVERY_S
        if execs or forks or check:
            if check:
                self._checked = now
            await trio.to_thread.run_sync(self.complete, execs, forks, check)
