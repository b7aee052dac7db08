"""An exec's path made absolute, where the kernel gives it as the caller wrote it.

``sched_process_exec`` reports the path that exec was given: ``/usr/bin/x``, or
``./x`` relative to a working directory that a tracepoint cannot see (only
``task_struct`` holds it, and the program never reads that).  An absolute path
is kept as given (``/bin/true`` stays ``/bin/true``, symlinks unresolved, a
script is the script).  A relative one is joined, in this order, with:

1. the process's own working directory (``/proc/PID/cwd``), while it lives:
   the directory the kernel resolved the path in, unless the new program has
   changed directory since;
2. the parent's (``/proc/PPID/cwd``): the directory the child had at its fork,
   unless it changed directory between its fork and its exec
   (``subprocess.run(["./x"], cwd=...)``, ``(cd dir && ./x)``);

and the first join that names an existing file is the ``exe``.  An exec of an
open file (``fexecve``, ``execveat`` with ``AT_EMPTY_PATH``) is reported by
the kernel as ``/dev/fd/N``; its program is ``/proc/PID/exe`` while the process
lives.  Otherwise the ``exe`` is unknown (``None``): never a relative path,
which a rule would compare with absolute ones.

The readings are of /proc links and a ``stat``: the caller runs them off the
event loop when the file system may be slow.
"""

from __future__ import annotations

import os

__all__ = ["FD_PATH", "PARENTS_MAX", "Parents", "absolute_exe", "needs_resolving"]

PARENTS_MAX = 1 << 16  # processes whose parent is remembered (oldest forgotten first)
FD_PATH = "/dev/fd/"  # what the kernel names an exec of an open file


def needs_resolving(filename: str) -> bool:
    """Whether the kernel's path for an exec is not the program's absolute path."""
    return not filename.startswith("/") or filename.startswith(FD_PATH)


def absolute_exe(filename: str, pid: int, ppid: int | None, proc: str = "/proc") -> str | None:
    """The absolute path of the program ``pid`` exec'd as ``filename``, or None."""
    if not needs_resolving(filename):
        return filename
    if filename.startswith(FD_PATH):
        return _readlink(f"{proc}/{pid}/exe")
    for owner in (pid, ppid):
        cwd = None if owner is None else _readlink(f"{proc}/{owner}/cwd")
        if cwd is not None and cwd.startswith("/"):
            path = os.path.normpath(os.path.join(cwd, filename))
            if os.path.isfile(path):
                return path
    return None


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:  # gone already, as a process that lives a millisecond is
        return None


class Parents:
    """Each process's parent, from the fork events, for :func:`absolute_exe`.

    Bounded: past :data:`PARENTS_MAX` processes the oldest is forgotten (its
    relative exec then falls back to unknown), so a fork storm cannot grow it.
    """

    def __init__(self, limit: int = PARENTS_MAX) -> None:
        self.limit = limit
        self.parents: dict[int, int] = {}

    def fork(self, pid: int, ppid: int) -> None:
        parents = self.parents
        parents.pop(pid, None)  # a reused pid: the newest fork is last in order
        parents[pid] = ppid
        if len(parents) > self.limit:
            del parents[next(iter(parents))]

    def trim(self) -> None:
        """Forget the oldest past the limit (the reader adds without checking)."""
        parents = self.parents
        while len(parents) > self.limit:
            del parents[next(iter(parents))]

    def exit(self, pid: int) -> None:
        self.parents.pop(pid, None)

    def get(self, pid: int) -> int | None:
        return self.parents.get(pid)
