"""The process table: tree, identity, pid reuse, orphans, re-parenting, sums and change sets."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

import pytest
from engine_support import (
    alerts,
    execve,
    exit_,
    fork,
    lost,
    no_hang,
    proc,
    run,
    sample,
    system,
    table_of,
)

from linnix.engine import proctable
from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.engine.proctable import Proc, ProcTable
from linnix.language.pipeline import compile_text
from linnix.names import TEXT_MAX


def tree(table: ProcTable) -> dict[int, int | None]:
    """pid -> parent pid (None for roots), for every live process."""
    return {pid: (p.parent.pid if p.parent is not None else None)
            for pid, p in sorted(table.procs.items())}


def check_sums(table: ProcTable) -> None:
    """Every incremental subtree total equals a recount from scratch."""
    for p in table.procs.values():
        members = [p, *p.descendants()]
        assert p.sub_procs == len(members), p
        assert p.sub_cpu_pct == sum(round((m.cpu_pct or 0) * 1000) for m in members) / 1000
        assert p.sub_rss_mb == sum(round((m.rss_mb or 0) * 1024) for m in members) / 1024
        assert p.sub_fds == sum(m.fds or 0 for m in members)
        for kid in p.kids.values():
            assert kid.parent is p and kid.ppid == p.pid


BASE = [proc(0.0, 1, 0, "init", exe="/sbin/init", uid=0, cmdline="init splash", start=0.0)]


# ---- fork / exec / exit ----------------------------------------------------------------

def test_fork_links_the_child_and_inherits_exe_cmdline_and_uid() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1, "init")])
    child = table.procs[100]
    assert child.parent is table.procs[1]
    assert (child.ppid, child.comm, child.start) == (1, "init", 1.0)
    assert (child.exe, child.cmdline, child.uid) == ("/sbin/init", "init splash", 0)
    assert table.procs[1].children == 1
    assert table.host.procs == 2
    assert table.host.forks.count(1.0) == 1


def test_fork_keeps_its_own_uid() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1, uid=1000)])
    assert table.procs[100].uid == 1000


def test_exec_replaces_the_image() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1, "bash"),
                      execve(1.5, 100, "sleep", exe="/usr/bin/sleep", argv=["sleep", "10"])])
    p = table.procs[100]
    assert (p.comm, p.exe, p.cmdline) == ("sleep", "/usr/bin/sleep", "sleep 10")
    assert p.start == 1.0  # same process, same identity
    assert table.host.execs.count(1.5) == 1
    table.apply(execve(2.0, 100, "true"))  # exe and argv absent: unknown, not the old ones
    assert (p.comm, p.exe, p.cmdline) == ("true", None, None)


def test_a_cut_argv_ends_its_command_line_with_a_mark() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1, "bash"),
                      t.Exec(ts=1.5, pid=100, comm="x", argv=["x", "aaa"], argv_truncated=True)])
    assert table.procs[100].cmdline == "x aaa ..."


def test_an_exec_without_argv_does_not_keep_the_parents_command_line() -> None:
    """A shell forks, the child execs a script: the child is not "bash /dev/fd/3"."""
    shell = proc(0.0, 50, 1, "bash", exe="/usr/bin/bash", cmdline="bash /dev/fd/3")
    table = table_of([*BASE, shell, fork(1.0, 100, 50, "bash"),
                      execve(1.5, 100, "x", exe="/tmp/x")])
    p = table.procs[100]
    assert (p.comm, p.exe, p.cmdline) == ("x", "/tmp/x", None)
    table.apply(execve(2.0, 100, "y", argv=["/tmp/y", "120"]))
    assert (p.comm, p.exe, p.cmdline) == ("y", None, "/tmp/y 120")


def test_a_rule_reads_the_command_line_of_the_new_image_not_the_parents() -> None:
    rules = 'rule script: cmdline matches "/dev/fd/"\nrule tool: exe == "/usr/bin/bash"'
    shell = proc(0.0, 50, 1, "bash", exe="/usr/bin/bash", cmdline="bash /dev/fd/3")
    # fork and exec between two ticks: at no tick is the child still the shell
    out = run(rules, [*BASE, shell, fork(1.1, 100, 50, "bash"),
                      execve(1.2, 100, "x", exe="/tmp/x"), sample(2.0, 100, cpu_pct=1.0)])
    assert {(a.rule, a.pid) for a in alerts(out)} == {("script", 50), ("tool", 50)}


def test_exit_removes_the_process() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1)])
    p = table.procs[100]
    table.apply(exit_(3.0, 100, code=0))
    assert 100 not in table.procs
    assert not p.alive
    assert table.exited == [p]
    assert table.procs[1].children == 0
    assert table.host.procs == 1
    assert table.host.exits.count(3.0) == 1
    assert table.orphans == 0


def test_children_count_and_ancestors() -> None:
    table = table_of([*BASE, proc(0.0, 50, 1, "sshd"), fork(1.0, 100, 50, "sshd"),
                      execve(1.1, 100, "bash"), fork(2.0, 200, 100, "bash"),
                      fork(2.1, 201, 100, "bash")])
    assert [table.procs[pid].children for pid in (1, 50, 100, 200)] == [1, 1, 2, 0]
    assert table.procs[200].ancestors() == ("bash", "sshd", "init")
    assert table.procs[1].ancestors() == ()
    assert [p.pid for p in table.procs[1].descendants()] == [50, 100, 200, 201]  # depth first


# ---- snapshots -------------------------------------------------------------------------

def test_proc_snapshot_in_any_order_builds_the_same_tree() -> None:
    children_first = [proc(0.0, 301, 300, "vim"), proc(0.0, 300, 250, "bash"),
                      proc(0.0, 250, 1, "sshd"), proc(0.0, 1, 0, "init")]
    parents_first = children_first[::-1]
    samples = [sample(0.0, pid, cpu_pct=float(pid) / 10, rss_kb=pid * 10, fds=pid)
               for pid in (1, 250, 300, 301)]
    for snapshot in (children_first, parents_first):
        table = table_of([*snapshot, *samples])
        assert tree(table) == {1: None, 250: 1, 300: 250, 301: 300}
        check_sums(table)
        init = table.procs[1]
        assert (init.sub_procs, init.sub_cpu_pct, init.sub_rss_mb, init.sub_fds) == (
            4, 85.2, 8520 / 1024, 852)  # 0.1 + 25 + 30 + 30.1
        assert table.procs[301].ancestors() == ("bash", "sshd", "init")
        assert table.orphans == 0


def test_a_snapshot_after_an_orphan_sample_of_the_same_pid() -> None:
    table = table_of([sample(0.0, 250, cpu_pct=5.0), proc(0.0, 250, 1, "sshd"),
                      proc(0.0, 1, 0, "init")])
    assert tree(table) == {1: None, 250: 1}
    assert (table.procs[250].comm, table.orphans) == ("sshd", 1)
    check_sums(table)


def test_proc_snapshot_start_time_and_fields() -> None:
    table = table_of([proc(0.0, 7, 0, "cron", exe="/usr/sbin/cron", cmdline="cron -f",
                           uid=0, start=-120.0)])
    p = table.procs[7]
    assert (p.start, p.exe, p.cmdline, p.uid, p.parent, p.ppid) == (
        -120.0, "/usr/sbin/cron", "cron -f", 0, None, 0)
    assert p.age(10.0) == 130.0


def test_text_a_process_controls_is_cut_where_it_enters() -> None:
    long = "a" * (TEXT_MAX * 3)
    table = table_of([*BASE, fork(1.0, 100, 1, long), proc(1.1, 101, 1, long, exe=long,
                                                           cmdline=long),
                      execve(1.5, 100, long, exe=long, argv=[long, long]),
                      sample(2.0, 101, comm=long + "b")])
    for pid in (100, 101):
        p = table.procs[pid]
        assert (len(p.comm), len(p.exe), len(p.cmdline)) == (TEXT_MAX,) * 3
    assert table.procs[101].comm == long[:TEXT_MAX]


# ---- pid reuse -------------------------------------------------------------------------

def test_fork_of_a_live_pid_ends_the_old_process() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1, "a"), sample(1.5, 100, cpu_pct=40.0)])
    old = table.procs[100]
    table.apply(fork(2.0, 100, 1, "b"))
    new = table.procs[100]
    assert new is not old
    assert not old.alive and old in table.exited
    assert old.identity() == (100, 1.0) and new.identity() == (100, 2.0)
    assert new.cpu_pct is None  # no history carried over
    assert table.procs[1].children == 1
    assert table.host.procs == 2
    # the lost exit is not a short job even though the old process lived under 1 s
    assert table.host.short_jobs.count(2.0) == 0
    check_sums(table)


def test_fork_after_exit_is_a_new_process() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1, "a"), exit_(2.0, 100), fork(2.5, 100, 1, "b")])
    p = table.procs[100]
    assert p.identity() == (100, 2.5)
    assert p.comm == "b"


def test_proc_event_for_a_live_pid_replaces_it() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1, "a")])
    old = table.procs[100]
    table.apply(proc(2.0, 100, 1, "b", start=1.9))
    assert table.procs[100] is not old and table.procs[100].start == 1.9
    assert not old.alive


# ---- orphans ---------------------------------------------------------------------------

def test_sample_for_an_unknown_pid_creates_a_child_of_pid_1() -> None:
    table = table_of([*BASE, sample(1.0, 500, cpu_pct=5.0)])
    p = table.procs[500]
    assert (p.parent, p.ppid, p.start, p.comm, p.cpu_pct) == (table.procs[1], 1, None, None, 5.0)
    assert table.orphans == 1


def test_exec_for_an_unknown_pid_creates_a_child_of_pid_1_with_its_name() -> None:
    table = table_of([*BASE, execve(1.0, 500, "curl", exe="/usr/bin/curl")])
    p = table.procs[500]
    assert (p.ppid, p.comm, p.exe) == (1, "curl", "/usr/bin/curl")
    assert table.orphans == 1
    assert table.procs[1].children == 1


def test_exit_for_an_unknown_pid_is_counted_and_ignored() -> None:
    table = table_of([*BASE, exit_(1.0, 500)])
    assert 500 not in table.procs
    assert table.orphans == 1
    assert table.exited == []


def test_orphans_wait_for_pid_1_to_appear() -> None:
    table = table_of([sample(0.0, 500, cpu_pct=5.0), *BASE])
    assert tree(table) == {1: None, 500: 1}
    assert table.orphans == 1
    check_sums(table)


def test_an_orphan_pid_1_is_a_root() -> None:
    table = table_of([sample(0.0, 1, cpu_pct=1.0)])
    assert table.procs[1].ppid == 0 and table.procs[1].parent is None


# ---- re-parenting ------------------------------------------------------------------------

def test_children_of_an_exited_parent_move_to_pid_1_with_their_sums() -> None:
    table = table_of([*BASE, sample(0.0, 1, cpu_pct=1.0, rss_kb=1024, fds=10),
                      fork(1.0, 100, 1), fork(1.1, 200, 100), fork(1.2, 300, 200),
                      sample(2.0, 100, cpu_pct=5.0, rss_kb=2048, fds=3),
                      sample(2.0, 200, cpu_pct=20.0, rss_kb=4096, fds=4),
                      sample(2.0, 300, cpu_pct=30.0, rss_kb=8192, fds=5)])
    init = table.procs[1]
    assert (init.sub_cpu_pct, init.sub_rss_mb, init.sub_fds, init.sub_procs) == (56.0, 15.0, 22, 4)
    table.apply(exit_(3.0, 100))
    assert tree(table) == {1: None, 200: 1, 300: 200}
    assert table.procs[200].ppid == 1
    assert (init.sub_cpu_pct, init.sub_rss_mb, init.sub_fds, init.sub_procs) == (51.0, 13.0, 19, 3)
    assert init.children == 1
    assert table.procs[300].ancestors() == ("p", "init")
    check_sums(table)
    assert table.procs[200] in table.meta_changed  # its ppid changed


def test_children_become_roots_when_there_is_no_pid_1() -> None:
    table = table_of([proc(0.0, 10, 0), fork(1.0, 11, 10), fork(1.0, 12, 11)])
    table.apply(exit_(2.0, 11))
    assert tree(table) == {10: None, 12: None}
    assert table.procs[12].ppid == 0
    check_sums(table)


def test_a_trace_claiming_a_parent_for_pid_1_cannot_make_a_cycle() -> None:
    # pid 1 is a child of 5; when 5 exits, pid 1 cannot adopt itself
    table = table_of([proc(0.0, 5, 0, "a"), proc(0.0, 1, 5, "init"), proc(0.0, 6, 5, "b"),
                      sample(0.5, 1, cpu_pct=2.0), sample(0.5, 6, cpu_pct=3.0)])
    with no_hang(5):
        table.apply(exit_(1.0, 5))
    assert tree(table) == {1: None, 6: 1}
    assert table.procs[1].ppid == 0
    check_sums(table)


def test_two_processes_naming_each_other_as_parent_do_not_make_a_cycle() -> None:
    with no_hang(5):
        table = table_of([proc(0.0, 2, 3, "a"), proc(0.0, 3, 2, "b"),
                          sample(0.5, 2, cpu_pct=1.0)])
    assert tree(table) == {2: None, 3: 2}
    assert table.procs[3].ancestors() == ("a",)
    check_sums(table)


# ---- short jobs ----------------------------------------------------------------------------

def test_short_jobs_count_for_the_host_and_the_parent() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1), fork(2.0, 200, 100), exit_(2.9, 200),
                      fork(3.0, 201, 100), exit_(4.0, 201),  # exactly 1 s: not short
                      fork(4.0, 202, 100), exit_(4.5, 202)])
    parent = table.procs[100]
    assert table.host.short_jobs.count(4.5) == 1  # 2.9 left the window at 3.9
    assert parent.child_short_jobs.count(4.5) == 1
    table2 = table_of([*BASE, fork(1.0, 100, 1), fork(2.0, 200, 100), exit_(2.9, 200)])
    assert table2.host.short_jobs.count(2.9) == 1
    assert table2.procs[100].child_short_jobs.count(2.9) == 1
    assert table2.procs[100] in table2.rate_hot


def test_a_snapshot_process_without_start_is_never_a_short_job() -> None:
    table = table_of([*BASE, proc(0.0, 100, 1), exit_(0.5, 100)])
    assert table.host.short_jobs.count(0.5) == 0


def test_a_short_job_counts_for_its_parent_at_exit_time() -> None:
    # 200's parent exits first: 200 is pid 1's child when it exits
    table = table_of([*BASE, fork(1.0, 100, 1), fork(1.1, 200, 100), fork(1.1, 300, 1),
                      exit_(1.2, 100), exit_(1.5, 200)])
    assert table.host.short_jobs.count(1.5) == 2
    assert table.procs[1].child_short_jobs.count(1.5) == 2
    assert table.procs[300].child_short_jobs.count(1.5) == 0


# ---- samples ----------------------------------------------------------------------------

def test_sample_converts_rss_and_computes_fd_pct() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1),
                      sample(2.0, 100, cpu_pct=150.0, rss_kb=3072, fds=950, fd_limit=1000,
                             threads=4)])
    p = table.procs[100]
    assert (p.cpu_pct, p.rss_mb, p.fds, p.fd_limit, p.fd_pct, p.threads) == (
        150.0, 3.0, 950, 1000, 95.0, 4)


def test_fd_pct_needs_both_fds_and_a_nonzero_limit() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1), sample(2.0, 100, fds=10)])
    p = table.procs[100]
    assert p.fd_pct is None
    table.apply(sample(3.0, 100, fd_limit=40))
    assert p.fd_pct == 25.0
    table.apply(sample(4.0, 100, fd_limit=0))
    assert p.fd_pct is None


def test_absent_sample_fields_leave_values_unchanged() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1),
                      sample(2.0, 100, cpu_pct=10.0, rss_kb=1024, fds=5, fd_limit=10,
                             threads=2)])
    p = table.procs[100]
    table.settle(2.0)
    table.apply(sample(3.0, 100, fds=6))
    assert (p.cpu_pct, p.rss_mb, p.fds, p.fd_limit, p.fd_pct, p.threads) == (
        10.0, 1.0, 6, 10, 60.0, 2)
    assert p in table.fds_changed
    assert p not in table.cpu_changed and p not in table.rss_changed


def test_a_sample_with_another_comm_renames_the_process() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1, "python3")])
    p = table.procs[100]
    table.settle(1.0)
    table.apply(sample(2.0, 100, comm="worker-3"))
    assert p.comm == "worker-3"
    assert p in table.meta_changed
    table.settle(2.0)
    table.apply(sample(3.0, 100, cpu_pct=1.0, comm="worker-3"))  # same name: no meta change
    assert p not in table.meta_changed


def test_change_sets_by_group_and_settle() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1)])
    p = table.procs[100]
    assert p in table.meta_changed and table.procs[1] in table.meta_changed
    table.settle(1.0)
    assert table.changed(frozenset({"meta"})) == set()
    table.apply(sample(2.0, 100, cpu_pct=1.0))
    assert table.changed(frozenset({"cpu"})) == {p}
    assert table.changed(frozenset({"rss", "fds", "threads"})) == set()
    assert p in table.sub_changed and table.procs[1] in table.sub_changed
    table.apply(sample(2.1, 100, threads=3))
    table.apply(sample(2.2, 100, rss_kb=10))
    assert p in table.threads_changed and p in table.rss_changed
    table.settle(2.2)
    table.apply(sample(3.0, 100, cpu_pct=1.0, threads=3, rss_kb=10))  # nothing moved
    assert table.changed(frozenset({"cpu", "rss", "threads", "sub"})) == set()


def test_subtree_sums_are_exact() -> None:
    events: list[t.Event] = [*BASE]
    for pid in range(100, 110):
        events += [fork(1.0, pid, 1), sample(2.0, pid, cpu_pct=0.1, rss_kb=1)]
    table = table_of(events)
    init = table.procs[1]
    assert init.sub_cpu_pct == 1.0  # ten float additions of 0.1 would give 0.9999999999999999
    assert init.sub_rss_mb == 10 / 1024
    for pid in range(100, 110):
        table.apply(sample(3.0, pid, cpu_pct=0.0))
    assert init.sub_cpu_pct == 0.0


DEPTH = 3000  # deep enough that walking each change up the chain would be millions of steps


def deep_chain(depth: int) -> list[t.Event]:
    """pid 1 and ``depth`` processes below it, each the parent of the next (pid i + 1 of i)."""
    return [proc(0.0, 1, 0, "init", start=0.0),
            *(fork(0.0, pid, pid - 1, "sh") for pid in range(2, depth + 2))]


def check_chain(table: ProcTable, top: int, bottom: int) -> None:
    """Totals of the chain top .. bottom (each pid the parent of the next), by suffix sums."""
    cm = rk = fds = 0
    for procs, pid in enumerate(range(bottom, top - 1, -1), 1):
        p = table.procs[pid]
        cm += round((p.cpu_pct or 0) * 1000)
        rk += round((p.rss_mb or 0) * 1024)
        fds += p.fds or 0
        assert (p.sub_cpu_pct, p.sub_rss_mb, p.sub_fds, p.sub_procs) == (
            cm / 1000, rk / 1024, fds, procs), p


SLOTS = vars(Proc)  # the slot descriptors CountingProc reads and writes through


class CountingProc(Proc):
    """A process record that counts the writes of two of its subtree totals."""

    __slots__ = ()
    writes: ClassVar[Counter[str]] = Counter()

    @property
    def sub_procs(self) -> int:
        return int(SLOTS["sub_procs"].__get__(self))

    @sub_procs.setter
    def sub_procs(self, value: int) -> None:
        CountingProc.writes["sub_procs"] += 1
        SLOTS["sub_procs"].__set__(self, value)

    @property
    def sub_cpu_pct(self) -> float:
        return float(SLOTS["sub_cpu_pct"].__get__(self))

    @sub_cpu_pct.setter
    def sub_cpu_pct(self, value: float) -> None:
        CountingProc.writes["sub_cpu_pct"] += 1
        SLOTS["sub_cpu_pct"].__set__(self, value)


def test_a_deep_chain_updates_each_total_once_per_batch_and_keeps_them_exact(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Walking each change up the chain would write pid 1's totals 3000 times, and the
    # chain's ~4.5 million times: the work must be linear in the number of processes.
    monkeypatch.setattr(proctable, "Proc", CountingProc)
    writes = CountingProc.writes
    writes.clear()
    core = Core(compile_text("rule r: subtree_cpu_pct > 50 or subtree_rss_mb > 1000 "
                             "or subtree_fds > 100000\n"))
    core.feed(deep_chain(DEPTH))  # 3000 forks, one batch
    assert writes["sub_procs"] <= 2 * (DEPTH + 1)  # its start value, then one update
    check_chain(core.table, 1, DEPTH + 1)
    core.feed([sample(1.0, pid, cpu_pct=0.1, rss_kb=3, fds=pid % 7)
               for pid in range(1, DEPTH + 2)])  # 3001 samples
    assert writes["sub_cpu_pct"] <= 2 * (DEPTH + 1)
    check_chain(core.table, 1, DEPTH + 1)
    assert core.table.procs[1].sub_cpu_pct == 300.1  # 3001 times 0.1, exactly

    writes.clear()
    middle = DEPTH // 2
    core.feed([sample(2.0, DEPTH + 1, cpu_pct=7.0), exit_(2.0, middle),
               sample(2.0, middle + 1, cpu_pct=1.5)])
    table = core.table
    assert table.procs[middle + 1].parent is table.procs[1]  # the lower half moved up
    check_chain(table, 2, middle - 1)
    check_chain(table, middle + 1, DEPTH + 1)
    init = table.procs[1]
    assert init.sub_procs == DEPTH
    assert init.sub_cpu_pct == (round(0.1 * 1000) * (DEPTH - 2) + 1500 + 7000) / 1000
    assert writes["sub_cpu_pct"] <= DEPTH + 2


def test_no_subtree_pass_when_not_asked_for() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1), sample(2.0, 100, cpu_pct=10.0)],
                     subtree=False)
    assert table.procs[1].sub_cpu_pct == 0.0
    assert table.procs[1].sub_procs == 1
    table.enable_subtree()
    assert (table.procs[1].sub_cpu_pct, table.procs[1].sub_procs) == (10.0, 2)
    check_sums(table)


def test_subtree_forks_count_along_the_lineage() -> None:
    table = table_of([*BASE, fork(1.0, 100, 1), fork(2.0, 200, 100), fork(2.5, 300, 200)],
                     subtree_forks=True)
    counts = {pid: table.procs[pid].sub_forks.count(2.5) for pid in (1, 100, 200, 300)}
    assert counts == {1: 2, 100: 2, 200: 1, 300: 0}
    assert {pid: table.procs[pid].child_forks.count(2.5) for pid in (1, 100, 200)} == {
        1: 0, 100: 1, 200: 1}


# ---- host ------------------------------------------------------------------------------

def test_header_and_system_samples_fill_the_host_record() -> None:
    table = ProcTable()
    table.header(t.Header(version=1, ncpu=4, mem_total_kb=4 * 1024 * 1024))
    assert (table.host.ncpu, table.host.mem_total_mb) == (4, 4096.0)
    table.apply(system(1.0, cpu_pct=50.0, mem_available_kb=1024 * 1024, psi_cpu_some=1.5))
    h = table.host
    assert (h.cpu_pct, h.mem_available_mb, h.mem_used_pct, h.psi_cpu_some) == (
        50.0, 1024.0, 75.0, 1.5)
    table.apply(system(2.0, ncpu=8, mem_total_kb=2 * 1024 * 1024))  # the rest is unchanged
    assert (h.ncpu, h.mem_total_mb, h.mem_used_pct, h.cpu_pct, h.psi_cpu_some) == (
        8, 2048.0, 50.0, 50.0, 1.5)
    table.apply(system(3.0, mem_available_kb=3 * 1024 * 1024))  # more than the total
    assert h.mem_used_pct == 0.0


def test_lost_events_sum_over_60_seconds() -> None:
    table = table_of([lost(10.0, 5), lost(30.0, 3)])
    assert table.host.lost.total(30.0) == 8
    assert table.host.lost.total(69.99) == 8
    assert table.host.lost.total(70.0) == 3
    assert table.host.lost.total(90.0) == 0


def test_top_is_the_largest_value_ties_to_the_lowest_pid() -> None:
    table = table_of([*BASE, fork(1.0, 300, 1), fork(1.0, 200, 1), fork(1.0, 100, 1),
                      sample(2.0, 300, cpu_pct=50.0), sample(2.0, 200, cpu_pct=50.0),
                      sample(2.0, 100, cpu_pct=10.0)])

    def read(p: Proc, h: object, now: float) -> float | None:
        return p.cpu_pct

    best = table.top(read, 2.0)
    assert best is not None and best.pid == 200
    assert table_of(BASE).top(read, 0.0) is None

    def even(p: Proc, h: object, now: float) -> bool:
        return p.pid % 200 == 0

    best = table.top(read, 2.0, even)  # 200 is left out: 300 has the same value
    assert best is not None and best.pid == 300
    assert table.top(read, 2.0, lambda p, h, now: True) is None

    def broken(p: Proc, h: object, now: float) -> bool:
        if p.pid == 300:
            raise ZeroDivisionError
        return p.pid == 200

    best = table.top(read, 2.0, broken)  # not judged is not allowed: left out too
    assert best is not None and best.pid == 100


def test_top_is_none_when_no_process_has_a_positive_value() -> None:
    # the forker has stopped: a process that forked nothing is not the top forker
    table = table_of([*BASE, fork(1.0, 300, 1), fork(1.0, 200, 1),
                      sample(2.0, 300, cpu_pct=0.0), sample(2.0, 200, cpu_pct=0.0)])

    def read(p: Proc, h: object, now: float) -> float | None:
        return p.cpu_pct

    assert table.top(read, 2.0) is None
    assert table.top(lambda p, h, now: p.child_forks.count(now), 30.0) is None
