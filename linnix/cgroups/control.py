"""Acting on a cgroup: freeze, thaw, kill, and the identity check made before each.

Each primitive is synchronous (the runtime runs it in a thread), bounded in
time, and answers with an :class:`Outcome`, never a raw OSError.  The cgroup
is named by its id, the inode of its directory: every primitive opens the
directory, checks that inode and then works only relative to that descriptor,
so a cgroup removed and created again at the same path (systemd restarting a
unit) is refused, and one removed meanwhile cannot be confused with its
successor.  The root cgroup is always refused.  Policy (which cgroups may be
touched at all) is the actions' guards' business, not this module's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import time
from collections.abc import Callable, Iterator

import attrs

from . import files
from .files import GoneError
from .hierarchy import DEPTH_MAX, Cgroup, Hierarchy, check_path, directory

__all__ = ["FREEZE_TIMEOUT_S", "KILL_TIMEOUT_S", "Outcome", "freeze", "kill", "same_cgroup",
           "thaw"]

FREEZE_TIMEOUT_S = 5.0  # until cgroup.events says frozen (or thawed)
KILL_TIMEOUT_S = 5.0  # until the cgroup and its descendants hold no process
PIDS_PER_ROUND = 65536  # pids read from one cgroup.procs per round of the signal fallback
_POLL_MS = 50  # re-read cgroup.events at least this often, notification or not
_EVENTS_FLAGS = select.POLLPRI | select.POLLERR


@attrs.frozen
class Outcome:
    """What a primitive did: status done, refused, gone, timeout or failed; ``detail`` says
    it for people; ``signalled`` is how many processes the signal fallback killed."""

    status: str
    detail: str
    signalled: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"


class _StopError(Exception):
    """Ends a primitive early with its outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome


def _describe(err: OSError) -> str:
    return os.strerror(err.errno) if err.errno else str(err)


@contextlib.contextmanager
def _opened(h: Hierarchy, cg: Cgroup) -> Iterator[int]:
    """The cgroup's directory, open, once it is known to be the cgroup ``cg`` names."""
    if h.v2 is None:
        raise _StopError(Outcome("refused", "no cgroup v2 hierarchy on this host"))
    try:
        path = check_path(cg.path)
    except ValueError as err:
        raise _StopError(Outcome("refused", str(err))) from None
    if path == "/":
        raise _StopError(Outcome("refused", "never the root cgroup"))
    dir_fd = files.open_dir(directory(h.v2, path))
    if dir_fd is None:
        raise _StopError(Outcome("gone", f"no cgroup at {path}"))
    try:
        now = os.fstat(dir_fd).st_ino
        if now != cg.id:
            raise _StopError(Outcome("refused", f"{path} is another cgroup now (id {now}, not "
                                f"{cg.id}): removed and created again since it was chosen"))
        yield dir_fd
    finally:
        os.close(dir_fd)


def _run(h: Hierarchy, cg: Cgroup, act: Callable[[int], Outcome]) -> Outcome:
    """``act(dir_fd)`` on the opened cgroup; its refusal, disappearance or error as an
    Outcome."""
    try:
        with _opened(h, cg) as dir_fd:
            return act(dir_fd)
    except _StopError as stop:
        return stop.outcome
    except GoneError:
        return Outcome("gone", f"{cg.path} was removed meanwhile")
    except OSError as err:
        return Outcome("failed", f"{cg.path}: {_describe(err)}")


def same_cgroup(h: Hierarchy, cg: Cgroup) -> bool:
    """Whether the directory at ``cg.path`` is still the cgroup ``cg`` names."""
    return _run(h, cg, lambda _fd: Outcome("done", "")).ok


def _write(name: str, dir_fd: int, value: bytes) -> None:
    """Write a control file; GoneError when the cgroup is, _StopError when the kernel lacks it."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _StopError(Outcome("failed", f"this kernel has no {name}")) from None
    except OSError as err:
        if err.errno == errno.ENODEV:
            raise GoneError from None
        raise
    try:
        os.write(fd, value)
    except OSError as err:
        if err.errno == errno.ENODEV:
            raise GoneError from None
        raise
    finally:
        os.close(fd)


def _wait_events(dir_fd: int, key: bytes, want: int, timeout: float) -> bool:
    """Until ``key`` in cgroup.events is ``want`` (woken by the kernel's notification, and
    every 50 ms in case one was missed); False when ``timeout`` passed first."""
    deadline = time.monotonic() + timeout
    fd = os.open("cgroup.events", os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        poller = select.poll()
        poller.register(fd, _EVENTS_FLAGS)
        while True:
            try:
                data = os.pread(fd, files.READ_MAX, 0)
            except OSError as err:
                if err.errno == errno.ENODEV:
                    raise GoneError from None
                raise
            if files.keyed(data, key) == want:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(min(_POLL_MS, max(1, int(left * 1000))))
    finally:
        os.close(fd)


def _set_frozen(h: Hierarchy, cg: Cgroup, frozen: bool, timeout: float) -> Outcome:
    word = "frozen" if frozen else "thawed"

    def act(dir_fd: int) -> Outcome:
        _write("cgroup.freeze", dir_fd, b"1" if frozen else b"0")
        if _wait_events(dir_fd, b"frozen", int(frozen), timeout):
            return Outcome("done", f"{cg.path} {word}")
        return Outcome("timeout", f"{cg.path}: cgroup.freeze written, but not {word} after "
                       f"{timeout:g}s")

    return _run(h, cg, act)


def freeze(h: Hierarchy, cg: Cgroup, timeout: float = FREEZE_TIMEOUT_S) -> Outcome:
    """Freeze every process in the cgroup and below; done once the kernel says frozen."""
    return _set_frozen(h, cg, True, timeout)


def thaw(h: Hierarchy, cg: Cgroup, timeout: float = FREEZE_TIMEOUT_S) -> Outcome:
    """Undo :func:`freeze`; done once the kernel says the cgroup is no longer frozen."""
    return _set_frozen(h, cg, False, timeout)


def kill(h: Hierarchy, cg: Cgroup, timeout: float = KILL_TIMEOUT_S,
         use_cgroup_kill: bool = True) -> Outcome:
    """SIGKILL every process in the cgroup and below: through cgroup.kill when the kernel
    has it (5.14+), else by signalling every pid listed until none is left, catching the
    processes forked meanwhile; done once the cgroup holds no process."""
    def act(dir_fd: int) -> Outcome:
        deadline = time.monotonic() + timeout
        if use_cgroup_kill and _has("cgroup.kill", dir_fd):
            _write("cgroup.kill", dir_fd, b"1")
            if _wait_events(dir_fd, b"populated", 0, timeout):
                return Outcome("done", f"{cg.path} killed (cgroup.kill)")
            return Outcome("timeout", f"{cg.path}: cgroup.kill written, processes left after "
                           f"{timeout:g}s")
        return _kill_by_signals(h, cg, dir_fd, deadline)

    return _run(h, cg, act)


def _has(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd)
    except OSError:
        return False
    return True


def _kill_by_signals(h: Hierarchy, cg: Cgroup, dir_fd: int, deadline: float) -> Outcome:
    signalled: set[int] = set()
    while True:
        pids = _pids_below(dir_fd)
        if not pids and _wait_events(dir_fd, b"populated", 0, 0):
            return Outcome("done", f"{cg.path} killed (processes signalled: {len(signalled)})",
                           len(signalled))
        for pid in pids:
            if _kill_member(pid, cg.path):
                signalled.add(pid)
        if time.monotonic() >= deadline:
            return Outcome("timeout", f"{cg.path}: processes left after signalling every one "
                           f"listed: {len(pids)}", len(signalled))
        time.sleep(0.005)  # let the killed ones exit before the lists are read again


def _pids_below(dir_fd: int, depth: int = 0) -> list[int]:
    """The pids of the cgroup and its descendants (a bounded number per cgroup, a bounded
    depth: the kernel's own cgroup.max.depth is unbounded by default)."""
    found = files.read_ints("cgroup.procs", dir_fd, PIDS_PER_ROUND) or []
    if depth >= DEPTH_MAX:
        return found
    try:
        children = [e.name for e in os.scandir(dir_fd) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return found
    for name in children:
        child = files.open_dir(name, dir_fd)
        if child is None:
            continue
        try:
            found += _pids_below(child, depth + 1)
        except GoneError:
            pass  # that child went away: nothing left in it to kill
        finally:
            os.close(child)
    return found


def _kill_member(pid: int, path: str) -> bool:
    """SIGKILL ``pid`` if it is still in the cgroup at ``path`` or below: the pid is pinned
    by a pidfd first, so a pid reused by a process elsewhere is never signalled."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False  # exited already
    try:
        if not _member(pid, path):
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return True
    except OSError:
        return False
    finally:
        os.close(pidfd)


def _member(pid: int, path: str) -> bool:
    """Whether /proc says the process is in the v2 cgroup at ``path`` or below it."""
    try:
        with open(f"/proc/{pid}/cgroup", "rb") as f:
            data = f.read(files.READ_MAX)
    except OSError:
        return False
    for line in data.split(b"\n"):
        if line.startswith(b"0::"):
            now = line[3:].decode("utf-8", "surrogateescape")
            return now == path or now.startswith(path + "/")
    return False
