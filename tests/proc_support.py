"""Processes for tests: a fake /proc directory, and real child processes to act on."""

from __future__ import annotations

import os
import select
from pathlib import Path

PF_KTHREAD = 0x00200000


HOST_PID_NS = f"pid:[{0xEFFFFFFC}]"  # the host's pid namespace, as /proc/self/ns/pid shows it


class FakeProc:
    """A directory laid out like /proc: ``<pid>/stat`` and, optionally, ``<pid>/exe`` and
    ``<pid>/cmdline``; ``self`` in the host's pid namespace unless :meth:`namespace` says
    otherwise."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.namespace(HOST_PID_NS, "4242")

    def namespace(self, link: str | None, nspid: str | None) -> FakeProc:
        """``self/ns/pid`` pointing at ``link`` and ``self/status`` with ``NSpid: nspid``
        (None: without it)."""
        ns = self.root / "self" / "ns"
        ns.mkdir(parents=True, exist_ok=True)
        if (ns / "pid").is_symlink():
            (ns / "pid").unlink()
        if link is not None:
            os.symlink(link, ns / "pid")
        lines = "Name:\tpython3\n" + (f"NSpid:\t{nspid}\n" if nspid is not None else "")
        (self.root / "self" / "status").write_text(lines)
        return self

    def add(self, pid: int, comm: str, ppid: int = 1, *, start: int = 1000, flags: int = 0,
            exe: str | None = None, session: int | None = None, tty: int = 0,
            argv: list[str] | None = None, cgroup: str | None = None,
            utime: int = 7, rss: int = 250, cutime: int = 0) -> FakeProc:
        """Write the process (replacing whatever had this pid before).  By default it
        leads its own session (``session`` None: its pid) without a terminal (``tty`` 0);
        ``argv`` writes its command line (as the kernel shows it: each argument ends
        with a NUL); ``cgroup`` its cgroup v2 path (as a hybrid host shows it: after a
        v1 line); ``utime`` its user CPU time in clock ticks (its system time is 3), ``rss``
        its resident memory in pages, ``cutime`` the user CPU time of the children it
        waited for."""
        d = self.root / str(pid)
        d.mkdir(exist_ok=True)
        sid = pid if session is None else session
        # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        # utime stime cutime cstime priority nice threads itreal starttime vsize rss
        (d / "stat").write_text(
            f"{pid} ({comm}) S {ppid} {pid} {sid} {tty} -1 {flags} 0 0 0 0 "
            f"{utime} 3 {cutime} 0 20 0 1 0 {start} 1000000 {rss}\n")
        cmdline = d / "cmdline"
        if argv is not None:
            cmdline.write_bytes(b"".join(a.encode() + b"\0" for a in argv))
        elif cmdline.exists():
            cmdline.unlink()
        link = d / "exe"
        if link.is_symlink():
            link.unlink()
        if exe is not None:
            os.symlink(exe, link)
        groups = d / "cgroup"
        if cgroup is not None:
            groups.write_text(f"4:memory:/v1/{pid}\n0::{cgroup}\n")
        elif groups.exists():
            groups.unlink()
        return self

    def remove(self, pid: int) -> None:
        d = self.root / str(pid)
        for entry in d.iterdir():
            entry.unlink()
        d.rmdir()

    @property
    def path(self) -> str:
        return str(self.root)


# argv: name, then "honour" (default SIGTERM) or "ignore" (SIGTERM ignored) or "witness"
CHILD = r"""
import ctypes, os, signal, sys, time
name, mode = sys.argv[1], sys.argv[2]
ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
if mode == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
elif mode == "witness":
    def note(signum, frame):
        os.write(1, b"%d\n" % signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
              signal.SIGCONT, signal.SIGWINCH, signal.SIGRTMIN + 6):
        signal.signal(s, note)
print(os.getpid(), flush=True)
while True:
    time.sleep(60)
"""


def read_line(stream: object, timeout: float = 10.0) -> str:
    fd = stream.fileno()  # type: ignore[attr-defined]
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, f"no output within {timeout}s"
    return stream.readline().strip()  # type: ignore[attr-defined,no-any-return]
