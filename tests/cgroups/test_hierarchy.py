"""Discovery on fake v2-only, hybrid and v1-only hosts; which name comes from where; paths;
listing cgroups with its bounds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cgroups_support import LAYOUTS, FakeHost
from hypothesis import given
from hypothesis import strategies as st

from linnix.cgroups.hierarchy import (
    CG_NAMES,
    Cgroup,
    Hierarchy,
    check_path,
    discover,
    from_mounts,
    locate,
    sources,
    walk,
)
from linnix.cgroups.mounts import Mount

PSI = ("cg_psi_cpu_some", "cg_psi_mem_some", "cg_psi_mem_full", "cg_psi_io_some")
MEMORY = ("cg_mem_mb", "cg_mem_max_mb", "cg_mem_pct", "cg_swap_mb", "cg_oom_kills")


def origins(h: Hierarchy) -> dict[str, str | None]:
    return {s.name: s.origin for s in sources(h)}


def test_a_v2_only_host_serves_everything_from_v2(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    h = host.hierarchy
    assert (h.v2, h.primary, h.cpu, h.memory) == (str(host.v2), str(host.v2), "v2", "v2")
    assert origins(h) == dict.fromkeys(CG_NAMES, "v2")
    assert {s.name: s.files for s in sources(h)}["cg_mem_max_mb"] == "memory.max"


def test_a_hybrid_host_reads_memory_from_v1(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid")
    h = host.hierarchy
    assert h.v2 == str(tmp_path / "unified") and h.swap
    found = origins(h)
    assert {n: found[n] for n in MEMORY} == dict.fromkeys(MEMORY, "v1")
    assert {n: found[n] for n in ("cg_procs", "cg_cpu_pct", *PSI)} == \
        dict.fromkeys(("cg_procs", "cg_cpu_pct", *PSI), "v2")
    assert {s.name: s.files for s in sources(h)}["cg_swap_mb"] == \
        "memory.memsw.usage_in_bytes - memory.usage_in_bytes"


def test_v1_without_swap_accounting_has_no_swap(tmp_path: Path) -> None:
    h = FakeHost(tmp_path, "hybrid", swap=False).hierarchy
    assert not h.swap
    assert origins(h)["cg_swap_mb"] is None
    assert origins(h)["cg_mem_mb"] == "v1"


def test_a_v1_only_host_has_no_pressure(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v1")
    h = host.hierarchy
    assert h.v2 is None and h.primary == str(tmp_path / "systemd")
    found = origins(h)
    assert found["cg_cpu_pct"] == "v1" and found["cg_procs"] == "v1"
    assert {n: found[n] for n in PSI} == dict.fromkeys(PSI, None)
    assert {n: found[n] for n in MEMORY} == dict.fromkeys(MEMORY, "v1")


def test_no_cgroups_at_all(tmp_path: Path) -> None:
    (tmp_path / "mountinfo").write_text("")
    h = discover(str(tmp_path / "mountinfo"))
    assert h.primary is None
    assert origins(h) == dict.fromkeys(CG_NAMES, None)
    assert walk(h).cgroups == [] and locate(h, "/") is None


def test_pressure_files_missing_at_the_root_mean_no_pressure(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    assert host.v2 is not None
    (host.v2 / "io.pressure").unlink()
    h = discover(str(tmp_path / "mountinfo"))
    assert h.pressure == frozenset({"cpu", "memory"})
    assert origins(h)["cg_psi_io_some"] is None and origins(h)["cg_psi_cpu_some"] == "v2"


def test_the_v2_mount_systemd_uses_is_preferred() -> None:
    mounts = [Mount("/elsewhere", "/", 2), Mount("/sys/fs/cgroup/unified", "/", 2)]
    assert from_mounts(mounts).v2 == "/sys/fs/cgroup/unified"
    assert from_mounts([Mount("/elsewhere", "/", 2)]).v2 == "/elsewhere"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_walk_lists_breadth_first_with_ids(tmp_path: Path, layout: str) -> None:
    host = FakeHost(tmp_path, layout)
    a = host.add("/a")
    ab = host.add("/a/b")
    c = host.add("/c")
    found = walk(host.hierarchy)
    root = Cgroup(os.stat(host.primary()).st_ino, "/")
    assert found.cgroups == [root, a, c, ab] and not found.truncated
    assert walk(host.hierarchy, "/a").cgroups == [a, ab]
    assert walk(host.hierarchy, "/absent").cgroups == []


def test_walk_is_bounded_in_count_and_depth(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    for path in ("/a", "/a/b", "/a/b/c", "/d", "/e"):
        host.add(path)
    by_count = walk(host.hierarchy, max_count=3)
    assert [c.path for c in by_count.cgroups] == ["/", "/a", "/d"] and by_count.truncated
    by_depth = walk(host.hierarchy, max_depth=1)
    assert [c.path for c in by_depth.cgroups] == ["/", "/a", "/d", "/e"] and by_depth.truncated


def test_walk_skips_a_cgroup_that_vanishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = FakeHost(tmp_path, "v2")
    host.add("/a/b")
    real = os.scandir

    def vanishing(path: str) -> object:
        if str(path).endswith("/a"):
            raise FileNotFoundError(path)
        return real(path)

    monkeypatch.setattr(os, "scandir", vanishing)
    assert [c.path for c in walk(host.hierarchy).cgroups] == ["/", "/a"]


@pytest.mark.parametrize("path", ["a", "/a/", "//a", "/a/../b", "/./a", "/a\0b", "",
                                  "/" + "x" * 4096])
def test_paths_that_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="cgroup path"):
        check_path(path)


@given(st.text(alphabet="ab./\0", max_size=12))
def test_an_accepted_path_names_a_place_below_the_mount(path: str) -> None:
    try:
        checked = check_path(path)
    except ValueError:
        return
    parts = checked.split("/")[1:]
    assert checked == "/" or all(p not in ("", ".", "..") for p in parts)
    assert "\0" not in checked
