"""A cgroup's files, kept open from one sample round to the next.

Opening a cgroup file costs several times what reading it again does (kernfs
sets up a seq_file at each open), so a sampled cgroup's files stay open and
each round is one ``pread`` at offset 0 per file.  An open file also pins its
cgroup: once the directory is removed, every read of it fails with ENODEV,
so a sample can never mix a cgroup with a successor created at the same path.

The primary directory (where the cgroup's id is its inode) must be there; the
others (a v1 controller's) may be missing and are looked for again every
:data:`RETRY_ROUNDS` rounds, as are files missing from a directory (a
controller enabled later).
"""

from __future__ import annotations

import contextlib
import errno
import os

from . import files
from .files import GoneError
from .hierarchy import Cgroup, directory

__all__ = ["RETRY_ROUNDS", "Handles", "Want"]

RETRY_ROUNDS = 10
# What to read: (mount, file names) of each directory; the first is the primary one.
Want = tuple[tuple[str, tuple[str, ...]], ...]
# Files every cgroup of the primary hierarchy has: their absence means it is gone.
CORE = frozenset({"cgroup.procs", "cpu.stat"})
_FLAGS = os.O_RDONLY | os.O_CLOEXEC


class Handles:
    """The open directories and files of one cgroup.  Files are numbered in the order of
    ``want`` (directory by directory); :meth:`read_all` answers in that order."""

    def __init__(self, cg: Cgroup, want: Want) -> None:
        self.cg = cg
        self.rounds = 0
        self.paths = [directory(mount, cg.path) for mount, _ in want]
        self.names = [(d, name) for d, (_, names) in enumerate(want) for name in names]
        self.dirs: list[int | None] = [None] * len(want)
        self.fds: list[int | None] = [None] * len(self.names)
        self.held = 0
        try:
            self._open_primary()
            self._open_missing()
        except BaseException:
            self.close()
            raise

    def _open_primary(self) -> None:
        fd = self.dirs[0] = files.open_dir(self.paths[0])
        self.held += fd is not None
        if fd is None or os.fstat(fd).st_ino != self.cg.id:
            raise GoneError  # not there, or another cgroup at that path now
        self._open_missing()
        if any(n in CORE and self.fds[i] is None for i, (d, n) in enumerate(self.names)
               if d == 0):
            raise GoneError  # removed between the directory's open and its files'

    def _open_missing(self) -> None:
        for d, path in enumerate(self.paths):
            if self.dirs[d] is None and d > 0:
                self.dirs[d] = files.open_dir(path)
                self.held += self.dirs[d] is not None
        for i, (d, name) in enumerate(self.names):
            dir_fd = self.dirs[d]
            if self.fds[i] is None and dir_fd is not None:
                # absent here (a controller not enabled) or unreadable: no value
                with contextlib.suppress(OSError):
                    self.fds[i] = os.open(name, _FLAGS, dir_fd=dir_fd)
                    self.held += 1

    def refresh(self) -> None:
        """Once in RETRY_ROUNDS rounds, look again for what was missing."""
        self.rounds += 1
        if self.rounds % RETRY_ROUNDS == 0 and None in self.fds:
            self._open_missing()

    def read_all(self, last: int) -> list[bytes | None]:
        """Every file's content (None where there is none), file ``last`` read last and
        whole (cgroup.procs: bounded only by pid_max, read on in bounded chunks).  GoneError
        when the primary directory was removed; a removed secondary one is closed."""
        pread, size = os.pread, files.READ_MAX
        try:  # the usual round: one comprehension, no per-file bookkeeping
            found = [None if fd is None else pread(fd, size, 0) for fd in self.fds]
        except OSError:
            found = self._read_each(last)
        tail = found[last]
        if tail is not None and len(tail) == size:  # a long list: the rest of it too
            found[last] = self._read_rest(last, tail)
        return found

    def _read_each(self, last: int) -> list[bytes | None]:
        """File by file, after a read failed: which one, and what that means."""
        found: list[bytes | None] = []
        for i, fd in enumerate(self.fds):
            if fd is None:
                found.append(None)
                continue
            try:
                found.append(os.pread(fd, files.READ_MAX, 0) if i != last else None)
            except OSError as err:
                self._failed(i, err)
                found.append(None)
        fd = self.fds[last]
        if fd is not None:
            try:  # last: a cgroup removed meanwhile is noticed here
                found[last] = os.pread(fd, files.READ_MAX, 0)
            except OSError as err:
                self._failed(last, err)
        return found

    def _read_rest(self, i: int, first: bytes) -> bytes | None:
        """A long list, kept short: its newlines only (what the sampler counts)."""
        fd = self.fds[i]
        assert fd is not None
        lines, offset = first.count(b"\n"), len(first)
        try:
            while chunk := os.pread(fd, files.CHUNK, offset):
                lines += chunk.count(b"\n")
                offset += len(chunk)
        except OSError as err:
            self._failed(i, err)
            return None
        return b"\n" * lines

    def _failed(self, i: int, err: OSError) -> None:
        """After a failed read: GoneError if the cgroup was removed."""
        if err.errno != errno.ENODEV:
            return  # unreadable now: no value this round
        d = self.names[i][0]
        if d == 0:
            raise GoneError from None
        self._close_dir(d)  # a v1 twin removed: looked for again later

    def _close_dir(self, d: int) -> None:
        for i, (owner, _) in enumerate(self.names):
            fd = self.fds[i]
            if owner == d and fd is not None:
                os.close(fd)
                self.fds[i] = None
                self.held -= 1
        fd = self.dirs[d]
        if fd is not None:
            os.close(fd)
            self.dirs[d] = None
            self.held -= 1

    def close(self) -> None:
        for d in range(len(self.dirs)):
            self._close_dir(d)
