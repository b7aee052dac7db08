"""A cgroup's kept files: opened only for the cgroup its id names, every descriptor
counted and closed, missing files looked for again, a long list read whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cgroups_support import FakeHost

from linnix.cgroups.files import GoneError
from linnix.cgroups.handles import RETRY_ROUNDS, Handles
from linnix.cgroups.hierarchy import Cgroup


def want(host: FakeHost) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return ((str(host.primary()), ("cpu.stat", "memory.current", "cgroup.procs")),
            (str(host.v1.get("memory", host.root / "none")), ("memory.usage_in_bytes",)))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_only_the_cgroup_the_id_names_is_opened(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid")
    cg = host.add("/svc")
    before = open_fds()
    with pytest.raises(GoneError):
        Handles(Cgroup(cg.id + 1, "/svc"), want(host))
    with pytest.raises(GoneError):
        Handles(Cgroup(cg.id, "/absent"), want(host))
    (tmp_path / "unified" / "svc" / "cgroup.procs").unlink()  # a core file missing
    with pytest.raises(GoneError):
        Handles(cg, want(host))
    assert open_fds() == before  # nothing left open by the refusals


def test_descriptors_are_counted_and_closed(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid")
    cg = host.add("/svc", cgroup_procs="4\n5\n", memory_usage_in_bytes="7\n")
    before = open_fds()
    handles = Handles(cg, want(host))
    # two directories, cpu.stat, cgroup.procs and the v1 usage (no memory.current in v2 here)
    assert handles.held == 5 == open_fds() - before
    assert handles.read_all(2) == [b"usage_usec 0\nuser_usec 0\nsystem_usec 0\n", None,
                                   b"4\n5\n", b"7\n"]
    handles.close()
    assert open_fds() == before and handles.held == 0


def test_missing_files_are_looked_for_every_few_rounds(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid")
    cg = host.add("/svc")
    handles = Handles(cg, want(host))
    host.write("/svc", "memory.current", "3\n")
    for _ in range(RETRY_ROUNDS - 1):
        handles.refresh()
        assert handles.read_all(2)[1] is None
    handles.refresh()
    assert handles.read_all(2)[1] == b"3\n"
    handles.close()


def test_a_long_list_is_read_whole(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid")
    cg = host.add("/svc", cgroup_procs="".join(f"{p}\n" for p in range(10_000, 40_000)))
    handles = Handles(cg, want(host))
    assert (handles.read_all(2)[2] or b"").count(b"\n") == 30_000
    handles.close()
