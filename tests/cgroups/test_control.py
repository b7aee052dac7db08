"""The primitives over fake trees: what is refused (the root, a bad path, no v2 hierarchy, a
cgroup re-created at its path), what is gone, a kernel without the control file, and the
answers when cgroup.events says done or never does.  Real freezing and killing:
test_control_live.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cgroups_support import FakeHost

from linnix.cgroups import control
from linnix.cgroups.control import Outcome, freeze, kill, same_cgroup, thaw
from linnix.cgroups.hierarchy import Cgroup


def v2_host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path, "v2")


def test_the_root_cgroup_is_refused(tmp_path: Path) -> None:
    host = v2_host(tmp_path)
    root = Cgroup(os.stat(tmp_path / "v2").st_ino, "/")
    for act in (freeze, thaw, kill):
        assert act(host.hierarchy, root) == Outcome("refused", "never the root cgroup")


@pytest.mark.parametrize("path", ["svc", "/svc/../..", "/svc/", "//svc"])
def test_a_path_that_is_not_plain_is_refused(tmp_path: Path, path: str) -> None:
    host = v2_host(tmp_path)
    outcome = kill(host.hierarchy, Cgroup(1, path))
    assert outcome.status == "refused" and "cgroup path" in outcome.detail


def test_without_v2_nothing_is_done(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "v1")
    cg = host.add("/svc")
    assert freeze(host.hierarchy, cg) == Outcome("refused", "no cgroup v2 hierarchy on this host")


def test_a_cgroup_recreated_at_its_path_is_refused(tmp_path: Path) -> None:
    host = v2_host(tmp_path)
    old = host.add("/svc")
    (tmp_path / "v2" / "svc").rename(tmp_path / "kept")  # holds the old inode
    new = host.add("/svc")
    assert not same_cgroup(host.hierarchy, old) and same_cgroup(host.hierarchy, new)
    for act in (freeze, thaw, kill):
        outcome = act(host.hierarchy, old)
        assert outcome.status == "refused"
        assert outcome.detail == (f"/svc is another cgroup now (id {new.id}, not {old.id}): "
                                  "removed and created again since it was chosen")
    assert (tmp_path / "v2" / "svc" / "cgroup.freeze").exists() is False


def test_a_cgroup_that_is_gone(tmp_path: Path) -> None:
    host = v2_host(tmp_path)
    assert kill(host.hierarchy, Cgroup(12345, "/absent")) == Outcome("gone",
                                                                      "no cgroup at /absent")
    assert not same_cgroup(host.hierarchy, Cgroup(12345, "/absent"))


def test_freeze_waits_for_the_kernel_to_say_frozen(tmp_path: Path) -> None:
    host = v2_host(tmp_path)
    cg = host.add("/svc", cgroup_events="populated 1\nfrozen 0\n")
    (tmp_path / "v2" / "svc" / "cgroup.freeze").write_text("0")
    assert freeze(host.hierarchy, cg, timeout=0.01) == Outcome(
        "timeout", "/svc: cgroup.freeze written, but not frozen after 0.01s")
    assert (tmp_path / "v2" / "svc" / "cgroup.freeze").read_text() == "1"
    host.write("/svc", "cgroup.events", "populated 1\nfrozen 1\n")
    assert freeze(host.hierarchy, cg) == Outcome("done", "/svc frozen")
    assert thaw(host.hierarchy, cg, timeout=0.01).status == "timeout"
    assert (tmp_path / "v2" / "svc" / "cgroup.freeze").read_text() == "0"


def test_a_kernel_without_the_freezer(tmp_path: Path) -> None:
    host = v2_host(tmp_path)
    cg = host.add("/svc")
    assert freeze(host.hierarchy, cg) == Outcome("failed", "this kernel has no cgroup.freeze")


def test_kill_uses_cgroup_kill_when_there_is_one(tmp_path: Path) -> None:
    host = v2_host(tmp_path)
    cg = host.add("/svc", cgroup_events="populated 0\nfrozen 0\n")
    kill_file = tmp_path / "v2" / "svc" / "cgroup.kill"
    kill_file.write_text("")
    assert kill(host.hierarchy, cg) == Outcome("done", "/svc killed (cgroup.kill)")
    assert kill_file.read_text() == "1"
    host.write("/svc", "cgroup.events", "populated 1\nfrozen 0\n")
    assert kill(host.hierarchy, cg, timeout=0.01).status == "timeout"


def test_kill_without_cgroup_kill_signals_what_is_listed(tmp_path: Path) -> None:
    host = v2_host(tmp_path)
    cg = host.add("/svc", cgroup_events="populated 0\nfrozen 0\n")
    assert kill(host.hierarchy, cg) == Outcome("done", "/svc killed (processes signalled: 0)", 0)


def test_a_listed_pid_outside_the_cgroup_is_never_signalled(tmp_path: Path) -> None:
    host = v2_host(tmp_path)
    me = os.getpid()  # listed, but /proc says it is elsewhere: a stale or reused pid
    cg = host.add("/svc", cgroup_procs=f"{me}\n", cgroup_events="populated 1\nfrozen 0\n")
    outcome = kill(host.hierarchy, cg, timeout=0.05, use_cgroup_kill=False)
    assert outcome == Outcome("timeout", "/svc: processes left after signalling every one "
                              "listed: 1", 0)


def test_membership_is_read_from_proc(tmp_path: Path) -> None:
    with open("/proc/self/cgroup") as f:
        mine = next(line[3:].strip() for line in f if line.startswith("0::"))
    assert control._member(os.getpid(), mine)
    assert not control._member(os.getpid(), "/linnix-nowhere")
    assert not control._member(2**22 + 1, mine)  # above pid_max: no such process


def test_an_os_error_is_an_outcome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = v2_host(tmp_path)
    cg = host.add("/svc")
    (tmp_path / "v2" / "svc" / "cgroup.freeze").write_text("0")

    def refuse(*_args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(control.os, "write", refuse)
    assert freeze(host.hierarchy, cg) == Outcome("failed", "/svc: Permission denied")
