"""Safety guards and process identity, against a fake /proc directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from proc_support import PF_KTHREAD, FakeProc

from linnix.actions.guards import (
    BUILTIN_PROTECTED,
    Guards,
    Identity,
    descendants,
    executable,
    identify,
    lineage_of,
    protected_names,
)
from linnix.errors import ConfigError


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    p = FakeProc(tmp_path / "proc")
    p.add(1, "init", 0, start=1)
    p.add(2, "kthreadd", 0, start=1, flags=PF_KTHREAD)
    return p


def guards(proc: FakeProc, protected: tuple[str, ...] = (), exe: tuple[str, ...] = (),
           own: set[int] | None = None) -> Guards:
    return Guards(frozenset(protected), frozenset(exe), own=own or set(), root=proc.path)


def ident(proc: FakeProc, pid: int) -> Identity:
    found = identify(pid, proc.path)
    assert found is not None
    return found


# ---- identity ---------------------------------------------------------------------------------

def test_identify_reads_pid_start_name_exe_parent_and_kernel_flag(proc: FakeProc) -> None:
    proc.add(500, "a (weird) name", 400, start=123456, exe="/usr/bin/weird")
    assert identify(500, proc.path) == Identity(500, 123456, "a (weird) name",
                                                "/usr/bin/weird", 400, False)
    assert identify(2, proc.path) == Identity(2, 1, "kthreadd", None, 0, True)
    assert identify(999, proc.path) is None


def test_identify_the_real_current_process() -> None:
    me = identify(os.getpid())
    assert me is not None
    assert me.pid == os.getpid() and me.ppid == os.getppid() and not me.kernel_thread
    assert me.exe is not None and os.path.realpath(me.exe) == os.path.realpath(
        f"/proc/{os.getpid()}/exe")
    assert me.start_ticks > 0


# ---- refusals ---------------------------------------------------------------------------------

def test_nothing_is_refused_for_an_ordinary_process(proc: FakeProc) -> None:
    proc.add(500, "worker", 1, exe="/usr/bin/worker")
    g = guards(proc, protected=("sshd",), exe=("/usr/sbin/sshd",), own={42})
    assert g.check(ident(proc, 500)) is None
    assert g.still(ident(proc, 500)) is None


@pytest.mark.parametrize("pid", [1, 2])
def test_pid_1_and_2_are_never_touched(proc: FakeProc, pid: int) -> None:
    reason = guards(proc).check(ident(proc, pid))
    assert reason == f"pid {pid} is never touched (init or the kernel's thread parent)"


def test_pid_0_is_never_touched(proc: FakeProc) -> None:
    swapper = Identity(0, 0, "swapper/0", None, 0, True)
    assert guards(proc).check(swapper) == (
        "pid 0 is never touched (init or the kernel's thread parent)")


def test_the_kernel_thread_flag_is_refused_whatever_the_parent(proc: FakeProc) -> None:
    proc.add(77, "kworker/0:1", 1, flags=PF_KTHREAD | 0x40)  # other flags set too
    assert guards(proc).check(ident(proc, 77)) == "kworker/0:1[77] is a kernel thread"


def test_a_child_of_kthreadd_is_refused_as_a_kernel_thread(proc: FakeProc) -> None:
    proc.add(78, "ksoftirqd/0", 2)  # no flag: the parent alone says so
    assert guards(proc).check(ident(proc, 78)) == "ksoftirqd/0[78] is a kernel thread"


def test_linnix_itself_and_its_ancestors_are_refused(proc: FakeProc) -> None:
    proc.add(300, "sshd", 1).add(400, "bash", 300).add(500, "linnix", 400)
    proc.add(600, "worker", 400)  # a sibling of linnix: fair game
    own = lineage_of(500, proc.path)
    assert own == {500, 400, 300, 1}
    g = guards(proc, own=own)
    assert g.check(ident(proc, 500)) == "linnix[500] is linnix itself or one of its ancestors"
    assert g.check(ident(proc, 400)) == "bash[400] is linnix itself or one of its ancestors"
    assert g.check(ident(proc, 600)) is None


def test_lineage_of_stops_at_a_cycle_or_a_gap(proc: FakeProc) -> None:
    proc.add(700, "a", 701).add(701, "b", 700)  # an inconsistent read of /proc
    assert lineage_of(700, proc.path) == {700, 701}
    proc.add(800, "orphan", 888)  # the parent is gone
    assert lineage_of(800, proc.path) == {800, 888}


def test_by_default_the_guards_protect_this_process_and_its_parent() -> None:
    g = Guards(frozenset(), frozenset())
    assert {os.getpid(), os.getppid()} <= g.own
    me = identify(os.getpid())
    assert me is not None
    assert g.check(me) == f"{me.comm}[{me.pid}] is linnix itself or one of its ancestors"


def test_protected_names_match_exactly(proc: FakeProc) -> None:
    proc.add(300, "sshd", 1).add(301, "sshd-helper", 1).add(302, "xsshd", 1)
    proc.add(303, "SSHD", 1).add(304, "sshd ", 1)
    g = guards(proc, protected=("sshd", "systemd"))
    assert g.check(ident(proc, 300)) == "'sshd' is on the protected list"
    for pid in (301, 302, 303, 304):
        assert g.check(ident(proc, pid)) is None, pid


def test_protected_executables_match_exactly(proc: FakeProc) -> None:
    proc.add(300, "renamed", 1, exe="/usr/sbin/sshd")
    proc.add(301, "sshd-helper", 1, exe="/usr/sbin/sshd-helper")
    proc.add(302, "noexe", 1)  # no exe link (a kernel thread, or unreadable)
    g = guards(proc, exe=("/usr/sbin/sshd",))
    assert g.check(ident(proc, 300)) == "/usr/sbin/sshd is on the protected list"
    assert g.check(ident(proc, 301)) is None
    assert g.check(ident(proc, 302)) is None


def test_a_protected_executable_replaced_since_the_start_is_still_protected(
        proc: FakeProc) -> None:
    """An upgrade replaces the binary: the kernel shows '/usr/sbin/sshd (deleted)'."""
    proc.add(300, "daemon", 1, exe="/usr/sbin/sshd (deleted)")  # a name not built in
    proc.add(301, "helper", 1, exe="/usr/sbin/sshd-helper (deleted)")
    proc.add(302, "odd", 1, exe="/usr/sbin/sshd (deleted) (deleted)")  # only one mark is ours
    g = guards(proc, exe=("/usr/sbin/sshd",))
    assert g.check(ident(proc, 300)) == (
        "/usr/sbin/sshd is on the protected list (the process runs it; the file was replaced "
        "or removed since it started)")
    assert g.check(ident(proc, 301)) is None
    assert g.check(ident(proc, 302)) is None
    proc.add(500, "runaway", 1).add(501, "daemon", 500, exe="/usr/sbin/sshd (deleted)")
    assert g.check(ident(proc, 500), tree=descendants(500, proc.path)) == (
        "its subtree contains daemon[501]: /usr/sbin/sshd is on the protected list (the process "
        "runs it; the file was replaced or removed since it started)")


def test_the_executable_recorded_at_exec_is_protected_too(proc: FakeProc) -> None:
    """The binary was renamed aside (not deleted): /proc names the new path, the
    engine's record still names the one the process was started from."""
    proc.add(300, "server", 1, exe="/usr/sbin/sshd.old")
    proc.add(301, "worker", 1, exe="/usr/bin/worker")
    g = guards(proc, exe=("/usr/sbin/sshd",))
    assert g.check(ident(proc, 300)) is None  # /proc alone cannot tell
    assert g.check(ident(proc, 300), started_as="/usr/sbin/sshd") == (
        "/usr/sbin/sshd is on the protected list (the process was started from it; it now "
        "shows /usr/sbin/sshd.old)")
    assert g.check(ident(proc, 300), started_as="/usr/sbin/sshd (deleted)") is not None
    assert g.check(ident(proc, 301), started_as="/usr/bin/worker") is None
    assert g.check(ident(proc, 301), started_as=None) is None
    # the record is the target's: it says nothing about the processes of its subtree
    proc.add(302, "child", 301, exe="/usr/bin/child")
    assert g.check(ident(proc, 301), tree=descendants(301, proc.path),
                   started_as="/usr/bin/worker") is None


def test_executable_removes_only_the_kernels_mark() -> None:
    assert executable("/usr/sbin/sshd (deleted)") == "/usr/sbin/sshd"
    assert executable("/usr/sbin/sshd") == "/usr/sbin/sshd"
    assert executable("/x (deleted) (deleted)") == "/x (deleted)"
    assert executable("(deleted)") == "(deleted)"  # no leading space: not the kernel's mark
    assert executable(None) is None


def test_a_refusal_anywhere_in_the_subtree_refuses_the_whole_action(proc: FakeProc) -> None:
    proc.add(500, "runaway", 1).add(501, "worker", 500).add(502, "sshd", 501)
    g = guards(proc, protected=("sshd",))
    tree = descendants(500, proc.path)
    assert g.check(ident(proc, 500), tree=tree) == (
        "its subtree contains sshd[502]: 'sshd' is on the protected list")
    assert g.check(ident(proc, 500)) is None  # the root alone is fine
    # the root's own refusal is reported as such, before its subtree's
    g2 = guards(proc, protected=("sshd", "runaway"))
    assert g2.check(ident(proc, 500), tree=tree) == "'runaway' is on the protected list"


def test_identity_changed_is_refused(proc: FakeProc) -> None:
    proc.add(500, "worker", 1, start=1000)
    before = ident(proc, 500)
    proc.add(500, "worker", 1, start=2000)  # the pid was reused, even by the same name
    assert guards(proc).still(before) == (
        "pid 500 now belongs to another process (worker, started later): the original is gone")
    assert guards(proc).still(ident(proc, 500)) is None


def test_a_gone_process_is_refused(proc: FakeProc) -> None:
    proc.add(500, "worker", 1)
    before = ident(proc, 500)
    proc.remove(500)
    assert guards(proc).still(before) == "process 500 is gone"
    assert identify(500, proc.path) is None


# ---- descendants ------------------------------------------------------------------------------

def test_descendants_deepest_first(proc: FakeProc) -> None:
    r"""
    100 ─┬─ 101 ─── 102                 depth 1, 2
         ├─ 110 ─── 111 ─── 112 ─── 113 depth 1 .. 4
         └─ 120                         depth 1
    (and an unrelated 200 ─── 201)
    """
    tree = {100: 1, 101: 100, 102: 101, 110: 100, 111: 110, 112: 111, 113: 112, 120: 100,
            200: 1, 201: 200}
    for pid, ppid in tree.items():
        proc.add(pid, f"p{pid}", ppid)
    depth = {100: 0}
    for pid in sorted(tree):
        if tree[pid] in depth:
            depth[pid] = depth[tree[pid]] + 1
    got = [i.pid for i in descendants(100, proc.path)]
    assert sorted(got) == [101, 102, 110, 111, 112, 113, 120]  # not itself, not 200/201
    depths = [depth[p] for p in got]
    assert depths == sorted(depths, reverse=True), got  # deepest first
    for i, pid in enumerate(got):  # so every process comes before its ancestors
        assert tree[pid] not in got[:i]
    assert got[0] == 113
    assert [i.comm for i in descendants(100, proc.path)][:2] == ["p113", "p112"]


def test_descendants_of_a_leaf_and_of_a_gone_process(proc: FakeProc) -> None:
    proc.add(100, "leaf", 1)
    assert descendants(100, proc.path) == []
    assert descendants(999, proc.path) == []


def test_descendants_survive_a_cycle_in_an_inconsistent_read(proc: FakeProc) -> None:
    proc.add(100, "a", 101).add(101, "b", 100).add(102, "c", 101)
    got = [i.pid for i in descendants(100, proc.path)]
    assert sorted(got) == [101, 102] and got.index(102) < got.index(101)


# ---- what no rule can touch -------------------------------------------------------------------

@pytest.mark.parametrize("comm", [
    "systemd", "init", "supervisord", "runit", "runsvdir", "runsv", "s6-svscan", "s6-supervise",
    "tmux: server", "screen", "sshd", "sshd-session", "sshd-auth", "containerd",
    "containerd-shim", "dockerd", "runc", "crun", "conmon", "crio", "kubelet", "linnix",
])
def test_supervisors_multiplexers_sshd_and_runtimes_are_built_in(proc: FakeProc,
                                                                 comm: str) -> None:
    proc.add(300, comm, 1)
    assert guards(proc).check(ident(proc, 300)) == f"'{comm}' is on the protected list"


def test_built_in_names_match_exactly_and_fit_comm(proc: FakeProc) -> None:
    """Matched as the kernel shows them: 15 bytes at most, or a name could never match."""
    assert all(len(name.encode()) <= 15 for name in BUILTIN_PROTECTED)
    proc.add(300, "tmux: client", 1).add(301, "tmux", 1).add(302, "sshd-keygen", 1)
    proc.add(303, "containerd-shi", 1).add(304, "bash", 1)
    g = guards(proc)
    for pid in (300, 301, 302, 303, 304):
        assert g.check(ident(proc, pid)) is None, pid


def test_what_users_run_under_sshd_is_not_protected(proc: FakeProc) -> None:
    proc.add(300, "sshd", 1).add(301, "sshd-session", 300)
    proc.add(302, "make", 301)  # neither a session leader with a terminal nor a login shell
    assert guards(proc).check(ident(proc, 302)) is None


def test_configured_names_add_to_the_built_in_ones(proc: FakeProc) -> None:
    proc.add(300, "postgres", 1).add(301, "sshd", 1)
    g = guards(proc, protected=("postgres",))
    assert g.check(ident(proc, 300)) == "'postgres' is on the protected list"
    assert g.check(ident(proc, 301)) == "'sshd' is on the protected list"


def test_only_unprotect_removes_a_built_in_name(proc: FakeProc) -> None:
    proc.add(300, "screen", 1).add(301, "sshd", 1)
    g = Guards(frozenset(), frozenset(), own=set(), root=proc.path,
               unprotect=frozenset({"screen"}))
    assert g.check(ident(proc, 300)) is None
    assert g.check(ident(proc, 301)) == "'sshd' is on the protected list"
    assert protected_names(("postgres",), ("screen",)) == (
        frozenset(BUILTIN_PROTECTED) - {"screen"} | {"postgres"})


def test_unprotecting_a_name_that_is_not_built_in_is_an_error() -> None:
    with pytest.raises(ConfigError) as err:
        protected_names((), ("screen", "sshdd", "bash"))
    assert str(err.value).startswith(
        "actions.unprotect: 'bash', 'sshdd' are not on the built-in protected list (systemd, "
        "init, ")


def test_a_session_leader_with_a_terminal_is_refused(proc: FakeProc) -> None:
    proc.add(300, "bash", 1, tty=34816)  # leads its session (sid = pid), on /dev/pts/0
    proc.add(301, "vim", 300, session=300, tty=34816)  # in that session, not its leader
    proc.add(302, "daemonized", 1)  # leads a session without a terminal
    g = guards(proc)
    assert g.check(ident(proc, 300)) == (
        "bash[300] leads a session with a terminal (an interactive shell or login)")
    assert g.check(ident(proc, 301)) is None
    assert g.check(ident(proc, 302)) is None


def test_a_login_shell_is_refused(proc: FakeProc) -> None:
    proc.add(300, "bash", 1, session=1, argv=["-bash"])
    proc.add(301, "bash", 1, session=1, argv=["bash", "-l"])  # argv[0] decides, as login does
    proc.add(302, "zsh", 1, session=1, argv=["-" + "z" * 100])
    g = guards(proc)
    assert g.check(ident(proc, 300)) == "bash[300] is a login shell (argv[0] is '-bash')"
    assert g.check(ident(proc, 301)) is None
    assert g.check(ident(proc, 302)) == (
        f"zsh[302] is a login shell (argv[0] is '-{'z' * 31}')")  # cut: the process wrote it


def test_a_session_read_for_a_reused_pid_is_not_taken_for_the_target(proc: FakeProc) -> None:
    proc.add(300, "worker", 1, start=1000)
    before = ident(proc, 300)
    proc.add(300, "bash", 1, start=2000, tty=34816)  # another process holds the pid now
    assert guards(proc).check(before) is None  # its identity check (still) refuses it
    assert guards(proc).still(before) is not None


def test_a_subtree_holding_an_interactive_shell_is_refused(proc: FakeProc) -> None:
    proc.add(500, "runaway", 1).add(501, "bash", 500, tty=34816)
    assert guards(proc).check(ident(proc, 500), tree=descendants(500, proc.path)) == (
        "its subtree contains bash[501]: bash[501] leads a session with a terminal (an "
        "interactive shell or login)")
