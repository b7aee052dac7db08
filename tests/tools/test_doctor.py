"""``linnix doctor``: privileges as the eBPF source judges them, the service's capabilities,
the pid namespace; never a suggestion to give the system's Python capabilities."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cgroups_support import FakeHost

import linnix.runtime.sources.bcc as bcc_module
from linnix.actions import guards as guards_module
from linnix.cgroups.hierarchy import Hierarchy
from linnix.procfs import Clock
from linnix.runtime.sources import caps
from linnix.runtime.sources.bcc import BpfSource, BpfUnavailableError
from linnix.tools import doctor

BPF, PERFMON = 1 << caps.CAP_BPF, 1 << caps.CAP_PERFMON
DAC, ADMIN = 1 << caps.CAP_DAC_READ_SEARCH, 1 << caps.CAP_SYS_ADMIN
ALL_SERVICE = sum(1 << c for c in caps.SERVICE)
REACHED = "past the privilege check"


def _as(monkeypatch: pytest.MonkeyPatch, mask: int | None, uid: int) -> None:
    monkeypatch.setattr(caps, "effective", lambda status="/proc/self/status": mask)
    monkeypatch.setattr(bcc_module, "effective", lambda: mask)
    monkeypatch.setattr(doctor.os, "geteuid", lambda: uid)


def _source_refuses(monkeypatch: pytest.MonkeyPatch) -> str | None:
    """What the eBPF source says about these privileges (None: it went on to look for BCC)."""
    def stop() -> None:
        raise BpfUnavailableError(REACHED)

    monkeypatch.setattr(bcc_module, "find_bcc", stop)
    try:
        BpfSource(Clock(), ring_pages=64)
    except BpfUnavailableError as err:
        return None if str(err) == REACHED else str(err)
    raise AssertionError("the source went on without BCC")


@pytest.mark.parametrize(("mask", "uid", "ok"), [
    (BPF | PERFMON, 0, True),
    (BPF | PERFMON, 1000, False),  # tracefs is root's, mode 0700
    (BPF | PERFMON | DAC, 65534, True),
    (ADMIN, 0, True),
    (ADMIN | DAC, 1000, True),
    (BPF, 0, False),
    (PERFMON | DAC, 1000, False),
    (0, 0, False),
    (None, 0, False),
])
def test_doctor_and_the_ebpf_source_agree(monkeypatch: pytest.MonkeyPatch, mask: int | None,
                                          uid: int, ok: bool) -> None:
    _as(monkeypatch, mask, uid)
    check = doctor._caps()
    refusal = _source_refuses(monkeypatch)
    assert (check.status == "ok") is ok
    assert (refusal is None) is ok
    if not ok:
        assert check.detail == refusal
        assert check.fix is not None and "setcap" not in check.fix
        assert "linnix.service" in check.fix


def test_no_check_ever_suggests_setcap(monkeypatch: pytest.MonkeyPatch) -> None:
    _as(monkeypatch, 0, 1000)
    out = io.StringIO()
    doctor.run_checks(out)
    assert "setcap" not in out.getvalue()
    assert "[FAIL] privileges" in out.getvalue()


def test_the_service_capabilities_are_listed_when_held(monkeypatch: pytest.MonkeyPatch) -> None:
    _as(monkeypatch, ALL_SERVICE, 0)
    check = doctor._service_caps()
    assert (check.status, check.detail) == ("ok", "CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH "
                                            "CAP_SYS_PTRACE CAP_KILL CAP_SYS_NICE")


def test_each_missing_capability_says_what_it_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    _as(monkeypatch, ALL_SERVICE & ~(1 << caps.CAP_KILL) & ~(1 << caps.CAP_SYS_NICE), 0)
    check = doctor._service_caps()
    assert check.status == "warn"
    assert check.detail == ("without CAP_KILL: cannot signal every user's processes (kill, "
                            "stop); CAP_SYS_NICE: cannot renice every user's processes")
    _as(monkeypatch, None, 0)
    assert doctor._service_caps().status == "warn"


def test_the_pid_namespace_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    assert doctor._pid_namespace().status == (
        "ok" if guards_module.pid_namespace_refusal() is None else "warn")
    monkeypatch.setattr(guards_module, "pid_namespace_refusal", lambda: "not the host's")
    check = doctor._pid_namespace()
    assert (check.status, check.detail) == ("warn", "not the host's")
    out = io.StringIO()
    doctor.run_checks(out)
    assert "[warn] pid namespace   not the host's\n" in out.getvalue()


def test_effective_reads_capeff(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001c0000800a4\n")
    assert caps.effective(str(status)) == 0x1C0000800A4
    status.write_text("Name:\tx\n")
    assert caps.effective(str(status)) is None
    assert caps.effective(str(status) + ".gone") is None


def _tracefs(root: Path, events: dict[str, str]) -> str:
    for event, fields in events.items():
        (root / "events" / event).mkdir(parents=True)
        (root / "events" / event / "format").write_text(
            "".join(f"\tfield:int {f};\toffset:8;\tsize:4;\tsigned:1;\n" for f in fields.split()))
    return str(root)


ALL_TRACEPOINTS = {
    "syscalls/sys_enter_execve": "filename argv envp",
    "syscalls/sys_enter_execveat": "fd filename argv",
    "syscalls/sys_enter_exit_group": "error_code", "syscalls/sys_enter_exit": "error_code",
    "signal/signal_generate": "sig pid result", "signal/signal_deliver": "sig sa_handler",
    "syscalls/sys_enter_prctl": "option arg2",
}


def test_the_tracepoints_used_and_what_is_never_seen(tmp_path: Path) -> None:
    check = doctor.field_sources(_tracefs(tmp_path, ALL_TRACEPOINTS))
    assert check.status == "ok"
    assert check.detail.startswith(
        "tracepoints: task_newtask, sched_process_exec, sched_process_exit, sys_enter_execve, "
        "sys_enter_exit_group, sys_enter_exit, sys_enter_execveat, signal_generate, "
        "signal_deliver, sys_enter_prctl; never seen: the argv and exit code of 32-bit programs")
    assert "/dev/fd" in check.detail and "seccomp" in check.detail


def test_missing_tracepoints_say_what_they_cost(tmp_path: Path) -> None:
    only_signals = {k: v for k, v in ALL_TRACEPOINTS.items() if k.startswith("signal/")}
    check = doctor.field_sources(_tracefs(tmp_path, only_signals))
    assert check.status == "warn"
    assert check.detail.startswith("without argv and exit codes, argv of execveat, renames "
                                   "(prctl) (their tracepoints are missing); tracepoints: "
                                   "task_newtask, sched_process_exec, sched_process_exit, "
                                   "signal_generate, signal_deliver; never seen:")


def test_the_cgroup_names_a_hybrid_host_serves_and_from_where(tmp_path: Path) -> None:
    host = FakeHost(tmp_path, "hybrid")
    check = doctor.cgroup_sources(host.hierarchy)
    assert (check.status, check.detail) == ("ok", (
        f"v2 at {tmp_path}/unified (hybrid: v1 memory at {tmp_path}/memory); from v2: "
        "cg_procs, cg_cpu_pct, cg_psi_cpu_some, cg_psi_mem_some, cg_psi_mem_full, "
        "cg_psi_io_some; from v1: cg_mem_mb, cg_mem_max_mb, cg_mem_pct, cg_swap_mb, "
        "cg_oom_kills"))


def test_cgroup_names_without_a_source_are_a_warning(tmp_path: Path) -> None:
    v1 = doctor.cgroup_sources(FakeHost(tmp_path / "a", "v1").hierarchy)
    assert v1.status == "warn" and v1.fix is not None
    assert v1.detail.startswith(f"v1 only (primary {tmp_path}/a/systemd) (v1 memory "
                                f"at {tmp_path}/a/memory, v1 cpuacct at {tmp_path}/a/cpuacct)")
    assert v1.detail.endswith("; no value here: cg_psi_cpu_some, cg_psi_mem_some, "
                              "cg_psi_mem_full, cg_psi_io_some")
    v2 = doctor.cgroup_sources(FakeHost(tmp_path / "b", "v2").hierarchy)
    assert v2.status == "ok" and "from v1" not in v2.detail and "hybrid" not in v2.detail
    none = doctor.cgroup_sources(Hierarchy())
    assert none.status == "warn" and none.detail.startswith("no cgroup hierarchy is mounted")


def test_doctor_prints_the_cgroup_check() -> None:
    out = io.StringIO()
    doctor.run_checks(out)
    assert "] cgroups " in out.getvalue()


def _net_tracefs(root: Path, without: tuple[str, ...] = ()) -> str:
    from linnix.runtime.sources.netcap import NET_TRACEPOINTS

    for tp, _fn in NET_TRACEPOINTS:
        if tp not in without:
            (root / "events" / tp.replace(":", "/")).mkdir(parents=True)
    return str(root)


def test_network_capture_and_what_it_never_sees(tmp_path: Path) -> None:
    check = doctor.network_sources(_net_tracefs(tmp_path))
    assert check.status == "ok"
    assert check.detail.startswith("connect, accept, listen from 10 syscall tracepoints; "
                                   "never seen: sockets driven through io_uring; UDP")
    assert "TCP Fast Open" in check.detail and "port 0" in check.detail


def test_network_tracepoints_missing_are_named(tmp_path: Path) -> None:
    check = doctor.network_sources(_net_tracefs(tmp_path, ("syscalls:sys_enter_accept",)))
    assert check.status == "warn" and check.fix is not None
    assert check.detail.startswith("without syscalls:sys_enter_accept; connect, accept, "
                                   "listen from 9 syscall tracepoints")


def test_doctor_prints_the_network_check() -> None:
    out = io.StringIO()
    doctor.run_checks(out)
    assert "] network " in out.getvalue()
