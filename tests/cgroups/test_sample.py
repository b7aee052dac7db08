"""Sampling fake cgroup trees: every cg_* name from its file on v2-only, hybrid and v1-only
hosts; None (never 0) where a file is missing; cgroups that vanish or are re-created; the
files kept open between rounds and their bound."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cgroups_support import FakeHost, kernfs_reads, pressure

from linnix.cgroups import files
from linnix.cgroups.handles import RETRY_ROUNDS
from linnix.cgroups.hierarchy import Cgroup
from linnix.cgroups.sample import CgroupSample, Sampler

MIB = 1024 * 1024


def only(sampler: Sampler, cg: Cgroup, now: float) -> CgroupSample:
    found = sampler.sample([cg], now)
    assert len(found) == 1, found
    return found[0]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_every_name_on_a_v2_host(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    cg = host.add("/svc", cgroup_procs="10\n11\n12\n", cpu_stat="usage_usec 1000000\n",
                  memory_current=str(300 * MIB), memory_max=str(400 * MIB),
                  memory_swap_current=str(2 * MIB), cpu_pressure=pressure(1.5),
                  memory_pressure=pressure(12.25, 3.5), io_pressure=pressure(0.75, 9),
                  memory_events="low 0\nhigh 4\nmax 9\noom 2\noom_kill 3\n")
    sampler = Sampler(host.hierarchy)
    first = only(sampler, cg, 100.0)
    assert first.values() == {
        "cg_procs": 3, "cg_cpu_pct": None, "cg_mem_mb": 300.0, "cg_mem_max_mb": 400.0,
        "cg_mem_pct": 75.0, "cg_swap_mb": 2.0, "cg_psi_cpu_some": 1.5,
        "cg_psi_mem_some": 12.25, "cg_psi_mem_full": 3.5, "cg_psi_io_some": 0.75,
        "cg_oom_kills": 3}
    assert (first.id, first.path) == (cg.id, "/svc")
    host.write("/svc", "cpu.stat", "usage_usec 2500000\nuser_usec 1\n")
    assert only(sampler, cg, 102.0).cg_cpu_pct == 75.0  # 1.5 s of CPU in 2 s


def test_no_memory_limit_is_no_value(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    cg = host.add("/svc", memory_current=str(MIB), memory_max="max\n")
    sample = only(Sampler(host.hierarchy), cg, 0.0)
    assert (sample.cg_mem_mb, sample.cg_mem_max_mb, sample.cg_mem_pct) == (1.0, None, None)


def test_a_hybrid_host_reads_the_v1_twin(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid")
    cg = host.add("/svc", memory_usage_in_bytes=str(50 * MIB),
                  memory_limit_in_bytes=str(200 * MIB),
                  memory_memsw_usage_in_bytes=str(58 * MIB),
                  memory_oom_control="oom_kill_disable 0\nunder_oom 0\noom_kill 7\n",
                  memory_pressure=pressure(4.0, 1.0))
    host.write("/svc", "memory.current", str(999 * MIB))  # no memory controller in v2 here
    sample = only(Sampler(host.hierarchy), cg, 0.0)
    assert (sample.cg_mem_mb, sample.cg_mem_max_mb, sample.cg_mem_pct, sample.cg_swap_mb,
            sample.cg_oom_kills) == (50.0, 200.0, 25.0, 8.0, 7)
    assert (sample.cg_psi_mem_some, sample.cg_psi_mem_full) == (4.0, 1.0)


def test_v1_unlimited_is_no_value(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid")
    cg = host.add("/svc", memory_usage_in_bytes=str(MIB))  # the limit as the kernel shows none
    sample = only(Sampler(host.hierarchy), cg, 0.0)
    assert (sample.cg_mem_mb, sample.cg_mem_max_mb, sample.cg_mem_pct) == (1.0, None, None)
    host.write("/svc", "memory.limit_in_bytes", "9223372036854710272\n", v1="memory")  # 64K pages
    assert only(Sampler(host.hierarchy), cg, 0.0).cg_mem_max_mb is None


def test_a_hybrid_cgroup_without_a_v1_twin_has_no_memory_values(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid")
    cg = host.add("/svc", v1_memory=False, cgroup_procs="5\n", cpu_pressure=pressure(2.0))
    sample = only(Sampler(host.hierarchy), cg, 0.0)
    assert (sample.cg_procs, sample.cg_psi_cpu_some) == (1, 2.0)
    assert [sample.values()[n] for n in ("cg_mem_mb", "cg_mem_max_mb", "cg_mem_pct",
                                         "cg_swap_mb", "cg_oom_kills")] == [None] * 5


def test_v1_without_swap_accounting(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid", swap=False)
    cg = host.add("/svc", memory_usage_in_bytes=str(MIB))
    sample = only(Sampler(host.hierarchy), cg, 0.0)
    assert (sample.cg_mem_mb, sample.cg_swap_mb) == (1.0, None)


def test_a_v1_only_host(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v1")
    cg = host.add("/svc", cgroup_procs="1\n2\n", cpuacct_usage="1000000000\n",
                  memory_usage_in_bytes=str(3 * MIB))
    sampler = Sampler(host.hierarchy)
    first = only(sampler, cg, 0.0)
    assert (first.cg_procs, first.cg_mem_mb, first.cg_cpu_pct) == (2, 3.0, None)
    assert [first.values()[n] for n in ("cg_psi_cpu_some", "cg_psi_mem_some",
                                        "cg_psi_mem_full", "cg_psi_io_some")] == [None] * 4
    host.write("/svc", "cpuacct.usage", "1500000000\n", v1="cpuacct")
    assert only(sampler, cg, 1.0).cg_cpu_pct == 50.0


def test_a_missing_file_is_no_value_never_zero(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    cg = host.add("/svc")
    for name in ("io.pressure", "memory.current", "memory.swap.current", "memory.events"):
        (tmp_path / "v2" / "svc" / name).unlink()
    host.write("/svc", "cpu.pressure", "garbage\n")
    sample = only(Sampler(host.hierarchy), cg, 0.0)
    assert (sample.cg_psi_io_some, sample.cg_mem_mb, sample.cg_mem_pct, sample.cg_swap_mb,
            sample.cg_oom_kills, sample.cg_psi_cpu_some) == (None,) * 6
    assert sample.cg_psi_mem_some == 0.0 and sample.cg_procs == 0  # measured: zero


def test_a_missing_file_that_appears_is_read_again(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    cg = host.add("/svc")
    (tmp_path / "v2" / "svc" / "memory.current").unlink()
    sampler = Sampler(host.hierarchy)
    assert only(sampler, cg, 0.0).cg_mem_mb is None
    host.write("/svc", "memory.current", str(MIB))  # a controller enabled later
    found = [only(sampler, cg, float(t)).cg_mem_mb for t in range(1, RETRY_ROUNDS + 1)]
    assert found == [None] * (RETRY_ROUNDS - 1) + [1.0]


def test_cpu_is_none_when_the_counter_goes_back_or_no_time_passed(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    cg = host.add("/svc", cpu_stat="usage_usec 500\n")
    sampler = Sampler(host.hierarchy)
    only(sampler, cg, 1.0)
    assert only(sampler, cg, 1.0).cg_cpu_pct is None
    host.write("/svc", "cpu.stat", "usage_usec 100\n")
    assert only(sampler, cg, 2.0).cg_cpu_pct is None
    host.write("/svc", "cpu.stat", "usage_usec 10100\n")
    assert only(sampler, cg, 3.0).cg_cpu_pct == 1.0


def test_a_long_procs_list_is_counted_whole(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    pids = "".join(f"{p}\n" for p in range(100_000, 130_000))  # > files.CHUNK bytes
    assert len(pids) > files.CHUNK
    cg = host.add("/svc", cgroup_procs=pids)
    assert only(Sampler(host.hierarchy), cg, 0.0).cg_procs == 30_000


def test_cgroups_gone_before_or_during_a_round_are_left_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernfs_reads(monkeypatch)
    host = FakeHost(tmp_path, "v2")
    a, b, c = host.add("/a"), host.add("/b"), host.add("/c")
    sampler = Sampler(host.hierarchy)
    assert [s.path for s in sampler.sample([a, b, c], 0.0)] == ["/a", "/b", "/c"]
    shutil.rmtree(tmp_path / "v2" / "a")  # removed while its files are open: ENODEV
    shutil.rmtree(tmp_path / "v2" / "c")
    assert [s.path for s in sampler.sample([a, b, c], 1.0)] == ["/b"]
    assert [s.path for s in Sampler(host.hierarchy).sample([a, b, c], 2.0)] == ["/b"]


def test_a_cgroup_recreated_at_the_same_path_is_not_the_one_asked_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernfs_reads(monkeypatch)
    host = FakeHost(tmp_path, "v2")
    old = host.add("/svc")
    keep = tmp_path / "keep"  # another directory holds the old inode: none is reused
    (tmp_path / "v2" / "svc").rename(keep)
    new = host.add("/svc", cgroup_procs="1\n")
    assert new.id != old.id
    assert Sampler(host.hierarchy).sample([old], 0.0) == []
    sampler = Sampler(host.hierarchy)
    assert [s.id for s in sampler.sample([new], 0.0)] == [new.id]
    shutil.rmtree(tmp_path / "v2" / "svc")
    host.add("/svc")
    assert sampler.sample([new], 1.0) == []  # kept files of the removed one: gone


def test_a_removed_v1_twin_is_no_value_then_found_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernfs_reads(monkeypatch)
    host = FakeHost(tmp_path, "hybrid")
    cg = host.add("/svc", memory_usage_in_bytes=str(MIB))
    sampler = Sampler(host.hierarchy)
    assert only(sampler, cg, 0.0).cg_mem_mb == 1.0
    shutil.rmtree(tmp_path / "memory" / "svc")
    assert only(sampler, cg, 1.0).cg_mem_mb is None  # the v2 cgroup is still sampled
    host.add("/svc", memory_usage_in_bytes=str(2 * MIB))
    found = [only(sampler, cg, 1.0 + t).cg_mem_mb for t in range(1, RETRY_ROUNDS + 1)]
    assert found[-1] == 2.0 and None in found


def test_files_are_kept_open_within_the_budget_and_closed_after(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v2")
    cgs = [host.add(f"/s{i}", cpu_stat=f"usage_usec {i}\n") for i in range(4)]
    before = open_fds()
    sampler = Sampler(host.hierarchy, max_open=2 * 10)  # 10 descriptors per cgroup here
    sampler.sample(cgs, 0.0)
    assert open_fds() == before + 20
    host.write("/s3", "cpu.stat", "usage_usec 1000003\n")
    over_budget = sampler.sample(cgs, 1.0)[3]
    assert over_budget.cg_cpu_pct == 100.0  # reopened each round, still measured
    assert open_fds() == before + 20
    sampler.sample(cgs[:1], 2.0)  # those not sampled are forgotten
    assert open_fds() == before + 10
    sampler.close()
    assert open_fds() == before


def test_no_budget_keeps_nothing_open(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid")
    cgs = [host.add(f"/s{i}") for i in range(3)]
    before = open_fds()
    sampler = Sampler(host.hierarchy, max_open=0)
    assert len(sampler.sample(cgs, 0.0)) == 3
    assert open_fds() == before


def test_a_file_that_fails_to_read_is_no_value_and_the_rest_are_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from linnix.cgroups import handles

    host = FakeHost(tmp_path, "v2")
    cg = host.add("/svc", cgroup_procs="1\n", memory_current=str(MIB),
                  io_pressure=pressure(3.0))
    real = os.pread

    def pread(fd: int, size: int, offset: int) -> bytes:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/memory.current"):
            raise OSError(5, "Input/output error")
        return real(fd, size, offset)

    monkeypatch.setattr(handles.os, "pread", pread)
    sample = only(Sampler(host.hierarchy), cg, 0.0)
    assert (sample.cg_mem_mb, sample.cg_mem_pct) == (None, None)
    assert (sample.cg_procs, sample.cg_psi_io_some, sample.cg_mem_max_mb) == (1, 3.0, None)


def test_v1_only_without_swap_accounting_has_no_swap(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v1", swap=False)
    cg = host.add("/svc", cpuacct_usage="900000000000\n", memory_usage_in_bytes=str(MIB))
    sample = only(Sampler(host.hierarchy), cg, 0.0)
    assert (sample.cg_mem_mb, sample.cg_swap_mb, sample.cg_oom_kills) == (1.0, None, 0)
