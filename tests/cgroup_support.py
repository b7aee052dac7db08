"""cgroup v2 directories for tests that run as root: made under a test-only parent, and
always removed, with every process left in them killed, even when the test fails."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from live_support import _unavailable, require_root

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
