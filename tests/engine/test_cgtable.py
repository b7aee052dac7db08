"""The cgroup table: samples by id, values whole, paths and their parents, bounds."""

from __future__ import annotations

import pytest

from linnix.engine import cgtable
from linnix.engine import trace as t
from linnix.engine.cgtable import CgTable, ancestors_of
from linnix.engine.proctable import ProcTable


def sample(cg_id: int, path: str, ts: float = 1.0, **values: float) -> t.Cgroup:
    return t.Cgroup(ts=ts, cgroup=path, id=cg_id, **values)  # type: ignore[arg-type]


def test_a_sample_sets_every_value_and_an_absent_one_is_no_value() -> None:
    table = CgTable()
    table.sample(sample(7, "/system.slice/nginx.service", procs=3, cpu_pct=150.0,
                        mem_mb=900.0, mem_max_mb=1000.0, oom_kills=1))
    cg = table.by_id[7]
    assert (cg.cg_procs, cg.cg_cpu_pct, cg.cg_mem_mb, cg.cg_oom_kills) == (3, 150.0, 900.0, 1)
    assert cg.cg_mem_pct == pytest.approx(90.0)
    assert (cg.unit, cg.container) == ("nginx.service", None)
    table.sample(sample(7, "/system.slice/nginx.service", ts=2.0, procs=3))
    assert (cg.cg_cpu_pct, cg.cg_mem_mb, cg.cg_mem_pct) == (None, None, None)


def test_no_limit_or_a_zero_limit_gives_no_percentage() -> None:
    table = CgTable()
    table.sample(sample(1, "/a", mem_mb=5.0))
    table.sample(sample(2, "/b", mem_mb=5.0, mem_max_mb=0.0))
    assert table.by_id[1].cg_mem_pct is None and table.by_id[2].cg_mem_pct is None


def test_cgroups_are_keyed_by_id_so_a_new_one_at_the_same_path_is_another() -> None:
    table = CgTable()
    table.sample(sample(10, "/system.slice/x.service", procs=1))
    old = table.by_id[10]
    table.remove(t.CgroupGone(ts=2.0, id=10))
    table.sample(sample(11, "/system.slice/x.service", ts=3.0, procs=1))
    assert not old.alive and table.gone == [old]
    assert list(table.live()) == [table.by_id[11]] and table.by_id[11] is not old


def test_changes_are_marked_until_settled() -> None:
    table = CgTable()
    assert table.quiet()
    table.sample(sample(1, "/a"))
    assert not table.quiet()
    table.settle()
    assert table.quiet()
    table.remove(t.CgroupGone(ts=2.0, id=99))  # unknown: nothing happens
    assert table.quiet()


def test_the_parents_of_a_path_come_from_the_path() -> None:
    assert list(ancestors_of("/system.slice/a.service/sub")) == [
        "/system.slice/a.service", "/system.slice", "/"]
    assert list(ancestors_of("/")) == []


def test_the_table_holds_a_bounded_number_of_cgroups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgtable, "CGROUPS_MAX", 2)
    table = CgTable()
    for i in range(4):
        table.sample(sample(i, f"/c{i}"))
    table.sample(sample(0, "/c0", ts=2.0, procs=4))  # one it holds is still sampled
    assert len(table) == 2 and table.dropped == 2 and table.by_id[0].cg_procs == 4


def test_the_process_table_applies_cgroup_events() -> None:
    table = ProcTable()
    table.apply(sample(5, "/user.slice", procs=2))
    assert table.cgroups.by_id[5].cg_procs == 2 and not table.quiet()
    table.settle(1.0)
    table.apply(t.CgroupGone(ts=2.0, id=5))
    assert len(table.cgroups) == 0 and not table.quiet()
