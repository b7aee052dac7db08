"""Cgroup trees for tests: fake ones in a temporary directory, and real ones as root.

A fake host is a mountinfo file naming directories under ``tmp_path`` as the
v2 mount and the v1 controllers' mounts, in one of three layouts: ``v2`` (every
controller in the v2 hierarchy), ``hybrid`` (v2 mounted at ``unified`` without
the memory controller, which is v1, as on the machine the tests run on) and
``v1`` (no v2 hierarchy: systemd's tracking hierarchy and v1 controllers).

A real tree (:class:`LiveTree`) is made under a test-only parent in this
machine's v2 hierarchy; :func:`live_tree` removes everything it made (after
killing what is still in it) even when the test fails.  :func:`fresh_cgroup` is the bare
form: one v2 directory for a test that moves its processes in itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_support import _unavailable, require_root

from linnix.cgroups.hierarchy import Cgroup, Hierarchy, discover, locate

# What LiveTree.start runs in a cgroup: a busy loop, and a forker for the kill tests.
BUSY = "while True: pass"
# Forks a sleeping child every few milliseconds (2,000 at most), until killed.
FORKER = """
import os, time
for _ in range(2000):
    if os.fork() == 0:
        time.sleep(600)
        os._exit(0)
    time.sleep(0.002)
time.sleep(600)
"""

V2_FILES = {
    "cgroup.procs": "", "cgroup.events": "populated 0\nfrozen 0\n",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
    "cpu.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    "memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                       "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    "io.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                   "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
}
V2_MEMORY = {"memory.current": "0\n", "memory.max": "max\n", "memory.swap.current": "0\n",
             "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"}
V1_MEMORY = {"memory.usage_in_bytes": "0\n", "memory.limit_in_bytes": "9223372036854771712\n",
             "memory.memsw.usage_in_bytes": "0\n",
             "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"}
LAYOUTS = ("v2", "hybrid", "v1")


def _line(n: int, point: Path, fstype: str, options: str) -> str:
    escaped = str(point).replace(" ", "\\040")
    return (f"{30 + n} 23 0:{30 + n} / {escaped} rw,relatime shared:{n} - {fstype} cgroup "
            f"{options}\n")


class FakeHost:
    """A fake cgroup host under ``root``; ``hierarchy`` as discover() finds it."""

    def __init__(self, root: Path, layout: str, swap: bool = True) -> None:
        self.root, self.layout, self.swap = root, layout, swap
        self.v2 = root / ("unified" if layout == "hybrid" else "v2") if layout != "v1" else None
        self.v1 = {} if layout == "v2" else {
            c: root / c for c in ("memory", "cpuacct", "systemd")}
        lines = []
        if self.v2 is not None:
            lines.append(_line(0, self.v2, "cgroup2", "rw,nsdelegate"))
        for n, (c, point) in enumerate(self.v1.items(), start=1):
            option = "name=systemd" if c == "systemd" else c
            lines.append(_line(n, point, "cgroup", f"rw,{option}"))
        for point in [self.v2, *self.v1.values()]:
            if point is not None:
                point.mkdir(parents=True)
        if self.v2 is not None:
            controllers = "cpu io memory pids" if layout == "v2" else "hugetlb"
            self._fill(self.v2, {**V2_FILES, "cgroup.controllers": controllers + "\n"})
        if "memory" in self.v1:
            self._fill(self.v1["memory"], self._v1_memory())
        mountinfo = root / "mountinfo"
        mountinfo.write_text("".join(lines))
        self.hierarchy: Hierarchy = discover(str(mountinfo))

    def _v1_memory(self) -> dict[str, str]:
        return V1_MEMORY if self.swap else {
            k: v for k, v in V1_MEMORY.items() if "memsw" not in k}

    @staticmethod
    def _fill(directory: Path, files: dict[str, str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text)

    def primary(self) -> Path:
        return self.v2 if self.v2 is not None else self.v1["systemd"]

    def add(self, path: str, v1_memory: bool = True, **files: str) -> Cgroup:
        """A cgroup at ``path`` with the layout's files (its memory twin in the v1
        controller unless told not to); ``files`` (dots as underscores) override them."""
        given = {_dotted(k): v for k, v in files.items()}
        if self.v2 is None:
            own = {"cgroup.procs": ""}
        else:
            own = {**V2_FILES, **(V2_MEMORY if self.layout == "v2" else {})}
        v1_names = {*V1_MEMORY, "cpuacct.usage"}
        self._fill(self.primary() / path.lstrip("/"),
                   {**own, **{k: v for k, v in given.items() if k not in v1_names}})
        if v1_memory and "memory" in self.v1:
            v1 = {k: v for k, v in given.items() if k in V1_MEMORY}
            self._fill(self.v1["memory"] / path.lstrip("/"), {**self._v1_memory(), **v1})
        if "cpuacct" in self.v1 and self.v2 is None:
            self._fill(self.v1["cpuacct"] / path.lstrip("/"),
                       {"cpuacct.usage": given.get("cpuacct.usage", "0\n")})
        cg = locate(self.hierarchy, path)
        assert cg is not None
        return cg

    def write(self, path: str, name: str, text: str, v1: str | None = None) -> None:
        """Rewrite one file of a cgroup (in v1 controller ``v1``'s twin if given)."""
        base = self.v1[v1] if v1 else self.primary()
        (base / path.lstrip("/") / name).write_text(text)


def _dotted(key: str) -> str:
    """cpu_stat -> cpu.stat, memory_swap_current -> memory.swap.current, as files are named."""
    known = [*V2_FILES, *V2_MEMORY, *V1_MEMORY, "cpuacct.usage"]
    return next((k for k in known if k.replace(".", "_") == key), key)


def pressure(some: float, full: float = 0.0) -> str:
    return (f"some avg10={some:.2f} avg60=0.00 avg300=0.00 total=1\n"
            f"full avg10={full:.2f} avg60=0.00 avg300=0.00 total=1\n")


class LiveTree:
    """Cgroups made under a test-only parent in this machine's v2 hierarchy."""

    def __init__(self) -> None:
        self.hierarchy = discover()
        assert self.hierarchy.v2 is not None
        self.parent = f"/linnix-test-{os.getpid()}-{time.monotonic_ns()}"
        self.made: list[str] = []
        self.v1_made: list[str] = []
        self.children: list[subprocess.Popen[bytes]] = []
        self.mkdir(self.parent)

    def mkdir(self, path: str) -> Cgroup:
        assert self.hierarchy.v2 is not None
        os.mkdir(self.hierarchy.v2 + path)
        self.made.append(path)
        cg = locate(self.hierarchy, path)
        assert cg is not None
        return cg

    def cgroup(self, name: str) -> Cgroup:
        return self.mkdir(f"{self.parent}/{name}")

    def twin(self, cg: Cgroup) -> str | None:
        """The cgroup's twin in the v1 memory controller (on a hybrid host), made like
        systemd makes one for each unit; None where memory is not v1."""
        mount = self.hierarchy.v1_mount("memory") if self.hierarchy.memory == "v1" else None
        if mount is None:
            return None
        parts = cg.path.split("/")[1:]
        for depth in range(1, len(parts) + 1):  # the parent too: it is ours to remove
            directory = mount + "/" + "/".join(parts[:depth])
            if not os.path.isdir(directory):
                os.mkdir(directory)
                self.v1_made.append(directory)
        return mount + cg.path

    def rmdir(self, cg: Cgroup) -> None:
        assert self.hierarchy.v2 is not None
        os.rmdir(self.hierarchy.v2 + cg.path)
        self.made.remove(cg.path)

    def start(self, cg: Cgroup, code: str) -> subprocess.Popen[bytes]:
        """A Python child running ``code``, moved into ``cg`` before it runs it (it waits
        for a line on stdin first)."""
        p = subprocess.Popen([sys.executable, "-c", f"import sys; sys.stdin.readline()\n{code}"],
                             stdin=subprocess.PIPE)
        self.children.append(p)
        self.move(p.pid, cg)
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.flush()
        return p

    def move(self, pid: int, cg: Cgroup) -> None:
        """Into the cgroup, and into its v1 memory twin if it has one."""
        assert self.hierarchy.v2 is not None
        for base in (self.hierarchy.v2 + cg.path,
                     *(d for d in self.v1_made if d.endswith(cg.path))):
            with open(f"{base}/cgroup.procs", "w") as f:
                f.write(str(pid))

    def pids(self, cg: Cgroup) -> list[int]:
        assert self.hierarchy.v2 is not None
        with open(f"{self.hierarchy.v2}{cg.path}/cgroup.procs") as f:
            return [int(x) for x in f.read().split()]

    def cleanup(self) -> None:
        """Thaw, kill what is left, reap the children, remove the cgroups deepest first."""
        v2 = self.hierarchy.v2
        assert v2 is not None
        for path in sorted(self.made, key=len, reverse=True):
            with contextlib.suppress(OSError):
                Path(v2 + path, "cgroup.freeze").write_text("0")
            self._empty(v2 + path)
        for directory in self.v1_made:
            self._empty(directory)
        for p in self.children:
            with contextlib.suppress(OSError):
                p.kill()
            p.wait()
        for directory in sorted([v2 + p for p in self.made] + self.v1_made,
                                key=lambda p: p.count("/"), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(directory)

    @staticmethod
    def _empty(directory: str) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                pids = [int(x) for x in Path(directory, "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)


@contextlib.contextmanager
def live_tree() -> Iterator[LiveTree]:
    """A LiveTree, removed afterwards whatever happens; skips off-root or without v2."""
    require_root()
    if discover().v2 is None:
        _unavailable("no cgroup v2 hierarchy on this host")
    tree = LiveTree()
    try:
        yield tree
    finally:
        tree.cleanup()


def kernfs_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads of a removed file fail with ENODEV, as on kernfs (a regular file removed while
    open stays readable): for the sampler's kept files in a fake tree."""
    import errno

    from linnix.cgroups import handles

    real = os.pread

    def pread(fd: int, size: int, offset: int) -> bytes:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(" (deleted)"):
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        return real(fd, size, offset)

    monkeypatch.setattr(handles.os, "pread", pread)


def cpu_ticks(pid: int) -> int:
    """User and system clock ticks a process has used so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


# ---- a bare cgroup v2 directory, for tests that move processes in themselves ----------
# where a v2 hierarchy is mounted: a hybrid host (like the test machine) has it at
# /sys/fs/cgroup/unified, a host with v2 only at /sys/fs/cgroup
_MOUNT_POINTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def v2_hierarchy() -> Path | None:
    """The mount point of the cgroup v2 hierarchy, or None."""
    with open("/proc/mounts", encoding="utf-8") as mounts:
        v2 = {fields[1] for fields in (line.split() for line in mounts)
              if len(fields) > 2 and fields[2] == "cgroup2"}
    return next((Path(p) for p in _MOUNT_POINTS if p in v2), None)


def _pids(group: Path) -> list[int]:
    try:
        return [int(line) for line in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []


def _remove(group: Path) -> None:
    """Kill what is left in ``group`` and its children, then remove them, deepest first."""
    for sub in sorted((p for p in group.rglob("*") if p.is_dir()), reverse=True):
        _remove(sub)
    deadline = time.monotonic() + 10.0
    while True:
        for pid in _pids(group):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # still busy: the killed are not reaped yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def fresh_cgroup(name: str) -> Iterator[Path]:
    """A fresh cgroup v2 directory, ``linnix-test-PID-NAME`` below the hierarchy's root;
    skips (fails in CI) off-root or without a v2 hierarchy."""
    require_root()
    root = v2_hierarchy()
    if root is None:
        _unavailable("no cgroup v2 hierarchy is mounted")
    assert root is not None
    group = root / f"linnix-test-{os.getpid()}-{name}"
    group.mkdir()
    try:
        yield group
    finally:
        _remove(group)
