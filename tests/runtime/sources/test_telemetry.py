"""The /proc sampler, over a directory laid out like /proc (no kernel needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

from proc_support import FakeProc

from linnix.procfs import PAGE_KB, Clock
from linnix.runtime.sources.identity import Users
from linnix.runtime.sources.telemetry import ProcSampler, snapshot

LIMITS = ("Limit                     Soft Limit           Hard Limit           Units     \n"
          "Max open files            {soft:<20} 4096                 files     \n")


def with_fds(proc: FakeProc, pid: int, fds: int, soft: int) -> None:
    d = proc.root / str(pid)
    (d / "fd").mkdir(exist_ok=True)
    for n in range(fds):
        (d / "fd" / str(n)).write_text("")
    (d / "limits").write_text(LIMITS.format(soft=soft))


def fake(tmp_path: Path) -> FakeProc:
    proc = FakeProc(tmp_path / "proc")
    proc.add(1, "init", 0, start=1)
    proc.add(300, "worker", 1, start=500)
    with_fds(proc, 1, 3, 1024)
    with_fds(proc, 300, 5, 256)
    return proc


def test_a_round_samples_every_process(tmp_path: Path) -> None:
    proc = fake(tmp_path)
    sampler = ProcSampler(Clock(origin=0.0), root=proc.path)
    samples = {s.pid: s for s in sampler.sample()}
    assert sorted(samples) == [1, 300]
    worker = samples[300]
    assert (worker.comm, worker.threads, worker.fds, worker.fd_limit) == ("worker", 1, 5, 256)
    assert worker.rss_kb == 250 * PAGE_KB


def test_fd_limits_are_cached_and_forgotten_with_their_process(tmp_path: Path) -> None:
    proc = fake(tmp_path)
    sampler = ProcSampler(Clock(origin=0.0), root=proc.path)
    sampler.sample()
    (proc.root / "300" / "limits").write_text(LIMITS.format(soft=512))
    again = {s.pid: s.fd_limit for s in sampler.sample()}
    assert again[300] == 256  # read again only after FD_LIMIT_TTL_S
    assert set(sampler._limits) == {(1, 1), (300, 500)}
    shutil.rmtree(proc.root / "300")  # it exited
    sampler.sample()
    assert set(sampler._limits) == {(1, 1)}  # a round forgets the processes gone since
    proc.add(300, "worker", 1, start=900)  # the pid reused: a new process, a fresh read
    with_fds(proc, 300, 2, 512)
    assert {s.pid: s.fd_limit for s in sampler.sample()}[300] == 512


def test_the_start_up_scan_reads_each_cgroup_and_names_each_uid(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path / "proc")
    proc.add(1, "init", 0, start=1, cgroup="/init.scope")
    proc.add(300, "worker", 1, start=500)  # no cgroup file: none, never "/"
    (tmp_path / "passwd").write_text("x\n")
    uid = (tmp_path / "proc" / "1").stat().st_uid  # what /proc's owner says
    users = Users(str(tmp_path / "passwd"), {uid: "owner"}.get)
    procs = snapshot(Clock(origin=0.0), root=proc.path, cmdline=False, users=users)
    assert [(p.pid, p.cgroup, p.uid, p.user) for p in procs] == [
        (1, "/init.scope", uid, "owner"), (300, None, uid, "owner")]


async def test_each_host_sample_is_handed_on_as_it_is_sent(autojump_clock: object) -> None:
    import trio

    from linnix.engine import trace as t
    from linnix.language.pipeline import compile_text
    from linnix.runtime.sources.telemetry import Telemetry

    class Quiet:
        def lost_event(self) -> None:
            return None

    telemetry = Telemetry(Clock(), compile_text("rule hot: host_cpu_pct > 1000"),
                          Quiet(), 1.0)  # type: ignore[arg-type]
    handed: list[t.System] = []
    telemetry.on_host = handed.append
    send, receive = trio.open_memory_channel[list[t.Event]](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(telemetry.run, send)
        batches = [await receive.receive() for _ in range(2)]
        nursery.cancel_scope.cancel()
    assert handed == [batch[0] for batch in batches]
    assert all(isinstance(ev, t.System) for ev in handed)


def test_sockets_are_counted_only_when_a_rule_reads_them(tmp_path: Path) -> None:
    proc = fake(tmp_path)
    fd = proc.root / "300" / "fd"
    for n in range(5):
        (fd / str(n)).unlink()
    for n, target in enumerate(["socket:[1234]", "/dev/null", "socket:[99]", "pipe:[7]",
                                "anon_inode:[eventfd]"]):
        (fd / str(n)).symlink_to(target)
    (fd / "9").symlink_to("socket:[5]")
    (fd / "9").unlink()  # closed before it was read: not counted
    sampler = ProcSampler(Clock(origin=0.0), root=proc.path)
    assert {s.pid: s.sockets for s in sampler.sample()} == {1: None, 300: None}
    sampler.sockets = True
    assert {s.pid: s.sockets for s in sampler.sample()} == {1: 0, 300: 2}
    shutil.rmtree(fd)  # unreadable: no value, not zero
    assert {s.pid: s.sockets for s in sampler.sample()}[300] is None


def test_the_telemetry_counts_sockets_for_a_plan_that_reads_them() -> None:
    from linnix.language.pipeline import compile_text
    from linnix.runtime.sources.telemetry import Telemetry

    class _Source:
        def lost_event(self) -> None:
            return None

    telemetry = Telemetry(Clock(origin=0.0), compile_text("rule r: sockets > 100"), _Source())
    assert telemetry.per_process and telemetry.procs.sockets
    telemetry.configure(compile_text("rule r: fds > 100"))
    assert telemetry.per_process and not telemetry.procs.sockets


def test_descriptors_are_counted_by_size_only_where_every_listing_is_allowed(
        tmp_path: Path) -> None:
    from linnix.procfs import counts_fds_by_size
    from linnix.runtime.sources import caps
    from linnix.runtime.sources.telemetry import lists_every_fd_dir

    read_search, override = 1 << caps.CAP_DAC_READ_SEARCH, 1 << caps.CAP_DAC_OVERRIDE
    kernel = counts_fds_by_size()
    assert lists_every_fd_dir(read_search) is kernel
    assert lists_every_fd_dir(override) is kernel
    # without either, another user's /proc/PID/fd cannot be listed, but its size can be read
    assert lists_every_fd_dir((1 << caps.CAP_BPF) | (1 << caps.CAP_PERFMON)) is False
    assert lists_every_fd_dir(None) is False
    assert lists_every_fd_dir(read_search, str(fake(tmp_path).path)) is False
