"""Reading /proc: a command line only from the process a record is about."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from proc_support import FakeProc

from linnix import procfs
from linnix.names import TEXT_MAX
from linnix.procfs import HZ, Clock, read_cmdline_of, read_stat

# pid 100 started at 600 clock ticks; on this clock that is 1.0 s
ORIGIN = 600 / HZ - 1.0


@pytest.fixture
def fake(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc").add(100, "x", start=600, argv=["/tmp/x", "120"])


def test_the_command_line_of_the_same_process(fake: FakeProc) -> None:
    assert read_cmdline_of(100, 1.0, Clock(ORIGIN), fake.path) == "/tmp/x 120"
    assert read_cmdline_of(100, 1.4, Clock(ORIGIN), fake.path) == "/tmp/x 120"  # clamped


@pytest.mark.parametrize("start", [2.0, -1.0])
def test_a_pid_that_belongs_to_another_process_gives_none(fake: FakeProc, start: float) -> None:
    assert read_cmdline_of(100, start, Clock(ORIGIN), fake.path) is None


def test_a_process_gone_or_without_arguments_gives_none(fake: FakeProc) -> None:
    assert read_cmdline_of(101, 1.0, Clock(ORIGIN), fake.path) is None
    fake.add(102, "kworker", start=600, argv=[])  # a kernel thread: no arguments
    assert read_cmdline_of(102, 1.0, Clock(ORIGIN), fake.path) is None


def test_a_pid_reused_while_its_arguments_are_read_gives_none(
        fake: FakeProc, monkeypatch: pytest.MonkeyPatch) -> None:
    real = procfs.read_argv

    def reused_meanwhile(pid: int, root: str = procfs.PROC) -> list[str] | None:
        argv = real(pid, root)
        fake.add(pid, "other", start=601, argv=["other"])
        return argv

    monkeypatch.setattr(procfs, "read_argv", reused_meanwhile)
    assert read_cmdline_of(100, 1.0, Clock(ORIGIN), fake.path) is None


def test_the_command_line_is_cut_to_text_max(fake: FakeProc) -> None:
    fake.add(100, "x", start=600, argv=["a" * TEXT_MAX, "b"])
    assert read_cmdline_of(100, 1.0, Clock(ORIGIN), fake.path) == "a" * TEXT_MAX


def test_the_cgroup_v2_path_of_a_process(fake: FakeProc) -> None:
    fake.add(100, "x", cgroup="/system.slice/nginx.service")
    assert procfs.read_cgroup(100, fake.path) == "/system.slice/nginx.service"
    fake.add(100, "x")  # no file: gone, or no cgroups at all
    assert procfs.read_cgroup(100, fake.path) is None
    assert procfs.read_cgroup(999, fake.path) is None


def test_a_cgroup_file_without_a_v2_line_gives_none(fake: FakeProc, tmp_path: Path) -> None:
    (tmp_path / "proc" / "100" / "cgroup").write_text("4:memory:/x\n1:cpu:/\n")
    assert procfs.read_cgroup(100, fake.path) is None


def test_a_cgroup_path_is_cut_to_text_max_and_a_line_past_the_bound_is_not_read(
        fake: FakeProc, tmp_path: Path) -> None:
    fake.add(100, "x", cgroup="/" + "a" * (TEXT_MAX * 2))
    assert procfs.read_cgroup(100, fake.path) == "/" + "a" * (TEXT_MAX - 1)
    # a v2 line that only begins within the bound would be a cut path: none rather
    filler = "9:name=x:/" + "b" * (procfs.CGROUP_READ_MAX - 20) + "\n"
    (tmp_path / "proc" / "100" / "cgroup").write_text(filler + "0::/system.slice/a.service\n")
    assert procfs.read_cgroup(100, fake.path) is None


def test_the_cgroup_of_this_process() -> None:
    own = Path("/proc/self/cgroup").read_text()
    expected = next((line[3:] for line in own.splitlines() if line.startswith("0::")), None)
    assert procfs.read_cgroup(os.getpid()) == expected


def test_a_real_process() -> None:
    code = "import sys; print(flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code, "arg 1"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        # Popen may return while the exec is still setting up the arguments: wait for
        # the child to say it runs
        assert child.stdout is not None
        child.stdout.readline()
        clock = Clock()
        st = read_stat(child.pid)
        assert st is not None
        start = clock.from_ticks(st.start_ticks)
        assert read_cmdline_of(child.pid, start, clock) == (
            f"{sys.executable} -c {code} arg 1")
        assert read_cmdline_of(child.pid, start + 60.0, clock) is None
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert read_cmdline_of(child.pid, start, clock) is None  # it has exited


def _fds_of_a_child_holding(extra: int) -> tuple[int | None, int | None]:
    """Both counts of a child's descriptors (stdin, stdout, stderr and ``extra`` pipes)."""
    code = (f"import os, sys\nfds = [os.pipe() for _ in range({extra})]\n"
            "print('ready', flush=True)\nsys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        return procfs.fd_count(child.pid), procfs.fd_count_by_size(child.pid)
    finally:
        child.communicate("")


@pytest.mark.skipif(not procfs.counts_fds_by_size(), reason="a kernel before 6.2: /proc/PID/fd "
                    "has no size, descriptors are listed")
def test_the_size_of_the_fd_directory_is_the_count_of_its_listing() -> None:
    listed, sized = _fds_of_a_child_holding(7)
    assert listed is not None and listed >= 3 + 14
    assert sized == listed


def test_no_size_is_trusted_under_a_directory_laid_out_like_proc(fake: FakeProc) -> None:
    assert procfs.counts_fds_by_size(fake.path) is False
    assert procfs.fd_count_by_size(99999, fake.path) is None


def test_a_stat_reads_the_cpu_time_of_the_children_waited_for(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path / "proc").add(100, "make", utime=40, cutime=250)
    st = read_stat(100, proc.path)
    assert st is not None
    assert (st.cpu_ticks, st.child_ticks) == (43, 250)  # utime + stime (3); cutime + cstime (0)


def test_the_cpu_time_of_a_real_child_lands_in_its_parents_once_waited_for() -> None:
    before = read_stat(os.getpid())
    assert before is not None
    subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)
    after = read_stat(os.getpid())
    assert after is not None and after.child_ticks > before.child_ticks
