"""The /proc sampler, over a directory laid out like /proc (no kernel needed)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection
from pathlib import Path

import pytest
from proc_support import FakeProc

from linnix.engine import trace as t
from linnix.procfs import HZ, PAGE_KB, Clock
from linnix.runtime.sources.identity import Users
from linnix.runtime.sources.telemetry import ProcSampler, Telemetry, snapshot

LIMITS = ("Limit                     Soft Limit           Hard Limit           Units     \n"
          "Max open files            {soft:<20} 4096                 files     \n")



class Lossless:
    """A source that never loses an event: all the telemetry asks of one."""

    def lost_event(self) -> None:
        return None


async def batches_sent(telemetry: Telemetry, n: int) -> list[list[t.Event]]:
    """The first ``n`` batches ``telemetry.run`` sends (on the test's clock)."""
    import trio

    send, receive = trio.open_memory_channel[list[t.Event]](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(telemetry.run, send)
        batches = [await receive.receive() for _ in range(n)]
        nursery.cancel_scope.cancel()
    return batches

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
    assert {pid: seen.limit for pid, seen in sampler.pacing.seen.items()} == {1: 1024, 300: 256}
    shutil.rmtree(proc.root / "300")  # it exited
    sampler.sample()
    assert set(sampler.pacing.seen) == {1}  # a round forgets the processes gone since
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

    from linnix.engine import trace as t
    from linnix.language.pipeline import compile_text
    from linnix.runtime.sources.telemetry import Telemetry

    telemetry = Telemetry(Clock(), compile_text("rule hot: host_cpu_pct > 1000"),
                          Lossless(), 1.0)  # type: ignore[arg-type]
    handed: list[t.System] = []
    telemetry.on_host = handed.append
    batches = await batches_sent(telemetry, 2)
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

    telemetry = Telemetry(Clock(origin=0.0), compile_text("rule r: sockets > 100"), Lossless())
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


# ---- idle processes are sampled less often (pacing) ----------------------------------------


class StepClock(Clock):
    """The daemon's clock, moved by the test: a round each second."""

    def __init__(self) -> None:
        super().__init__(origin=0.0)
        self.t = 100.0

    def now(self) -> float:
        return self.t


def rounds(sampler: ProcSampler, clock: StepClock, n: int,
           between: dict[int, Callable[[], None]] | None = None,
           wakes: dict[int, set[int]] | None = None) -> dict[int, list[t.Sample]]:
    """``n`` rounds a second apart: each pid's samples with their round in ``ts``'s place
    (round 1 at 101 s); ``between[r]`` runs before round r."""
    got: dict[int, list[t.Sample]] = {}
    for r in range(1, n + 1):
        clock.t = 100.0 + r
        if between and r in between:
            between[r]()
        for s in sampler.sample((wakes or {}).get(r, set())):
            got.setdefault(s.pid, []).append(s)
    return got


def when(samples: list[t.Sample]) -> list[int]:
    return [round(s.ts - 100.0) for s in samples]


def test_a_busy_process_is_sampled_every_round_and_an_idle_one_backs_off_to_the_bound(
        tmp_path: Path) -> None:
    proc, clock = fake(tmp_path), StepClock()
    sampler = ProcSampler(clock, root=proc.path, max_gap=4)
    busy = {r: (lambda r=r: proc.add(300, "worker", 1, start=500, utime=10 * r))
            for r in range(1, 21)}
    got = rounds(sampler, clock, 20, busy)
    assert when(got[300]) == list(range(1, 21))
    assert {s.cpu_pct for s in got[300][1:]} == {1000.0 / HZ}  # 10 ticks a second
    assert when(got[1]) == [1, 2, 3, 4, 6, 10, 14, 18]  # then 2, 4, 4, ... rounds apart
    assert {s.cpu_pct for s in got[1][1:]} == {0.0}  # what every skipped round would say
    assert sampler.pacing.skipped == 20 - 8


def test_a_process_that_turns_busy_is_seen_within_the_bound_with_its_average(
        tmp_path: Path) -> None:
    proc, clock = fake(tmp_path), StepClock()
    sampler = ProcSampler(clock, root=proc.path, max_gap=4)
    # idle until round 12, then 2 s of CPU time a second: seen at 14 (the pace reached 4
    # at 10), its share averaged over the 4 s since round 10, then every round
    hot = {r: (lambda r=r: proc.add(300, "worker", 1, start=500, utime=7 + 2 * HZ * (r - 12)))
           for r in range(13, 21)}
    got = rounds(sampler, clock, 20, hot)[300]
    assert when(got) == [1, 2, 3, 4, 6, 10, 14, 15, 16, 17, 18, 19, 20]
    assert got[6].cpu_pct == 100.0  # 4 s of CPU time over the 4 s since round 10
    assert {s.cpu_pct for s in got[7:]} == {200.0}


def test_an_event_wakes_an_idle_process_and_its_pace_starts_again(tmp_path: Path) -> None:
    proc, clock = fake(tmp_path), StepClock()
    sampler = ProcSampler(clock, root=proc.path, max_gap=8)
    got = rounds(sampler, clock, 30, wakes={12: {300}})
    assert when(got[300]) == [1, 2, 3, 4, 6, 10, 12, 13, 14, 16, 20, 28]
    assert when(got[1]) == [1, 2, 3, 4, 6, 10, 18, 26]


def test_a_new_process_is_sampled_when_an_event_names_it_else_when_proc_is_listed(
        tmp_path: Path) -> None:
    proc, clock = fake(tmp_path), StepClock()
    sampler = ProcSampler(clock, root=proc.path, max_gap=4)  # /proc listed at 1, 5, 9, ...
    born = {3: lambda: proc.add(400, "told", 1, start=900),
            6: lambda: proc.add(500, "untold", 1, start=950),
            7: lambda: shutil.rmtree(proc.root / "300")}  # exited, its exit event lost
    got = rounds(sampler, clock, 12, born, wakes={3: {400}})
    assert when(got[400])[:2] == [3, 4]
    assert when(got[500])[:2] == [9, 10]
    assert when(got[300]) == [1, 2, 3, 4, 6]
    assert 300 not in sampler.pacing.seen  # not there when /proc was listed at 9


def test_new_descriptors_are_a_change_and_a_zombie_backs_off_too(tmp_path: Path) -> None:
    proc, clock = fake(tmp_path), StepClock()
    (proc.root / "1" / "stat").write_text(  # exited, not yet reaped: never sampled
        (proc.root / "1" / "stat").read_text().replace(" S ", " Z ", 1))
    sampler = ProcSampler(clock, root=proc.path, max_gap=4)
    opened = {8: lambda: (proc.root / "300" / "fd" / "9").write_text("")}
    got = rounds(sampler, clock, 12, opened)
    assert when(got[300]) == [1, 2, 3, 4, 6, 10, 11, 12]
    assert [s.fds for s in got[300]] == [5] * 5 + [6] * 3
    assert 1 not in got
    assert sampler.pacing.pace(1) == 4


def test_a_reloaded_plan_samples_every_process_again() -> None:
    from linnix.language.pipeline import compile_text
    from linnix.runtime.sources.telemetry import Telemetry

    telemetry = Telemetry(Clock(origin=0.0), compile_text("rule r: cpu_pct > 100"), Lossless(),
                          1.0, idle_max=8.0)
    pacing = telemetry.procs.pacing
    assert pacing.max_gap == 8
    for _ in range(4):  # new, then three reads finding the same: two rounds to the next
        assert pacing.due([1] if pacing.lists(()) else None, ()) == [1]
        pacing.found(1, pacing.record(1, 5), "same")
    assert not pacing.lists(()) and pacing.due(None, ()) == []
    telemetry.configure(compile_text("rule r: fds > 100"))  # fds are read now
    assert pacing.lists(()) and pacing.due([1], ()) == [1]
    assert Telemetry(Clock(origin=0.0), compile_text("rule r: cpu_pct > 100"), Lossless(),
                     1.0).procs.pacing.max_gap == 1  # by default: every process every round


async def test_each_round_asks_which_processes_to_wake(autojump_clock: object) -> None:

    from linnix.language.pipeline import compile_text
    from linnix.runtime.sources.telemetry import Telemetry

    telemetry = Telemetry(Clock(), compile_text("rule r: cpu_pct > 1000"), Lossless(), 1.0,
                          idle_max=4.0)  # type: ignore[arg-type]
    asked = iter([{1, 2}, None, set()])
    telemetry.wake = lambda: next(asked)
    exits = iter([{5}, set(), {6, 7}])
    telemetry.ended = lambda: next(exits)
    handed: list[tuple[Collection[int] | None, Collection[int]]] = []
    telemetry.procs.sample = lambda wake=(), host=None, ended=(): handed.append((wake, ended)) or []  # type: ignore[method-assign]
    await batches_sent(telemetry, 3)
    assert handed == [({1, 2}, {5}), (None, set()), (set(), {6, 7})]


async def test_what_is_noted_is_taken_each_round_even_with_no_process_sampled(
        autojump_clock: object) -> None:

    from linnix.language.pipeline import compile_text
    from linnix.runtime.sources.telemetry import Telemetry

    telemetry = Telemetry(Clock(), compile_text("rule r: host_cpu_pct > 1000"), Lossless(), 1.0,
                          idle_max=4.0)  # type: ignore[arg-type]
    assert not telemetry.per_process
    taken: list[int] = []
    telemetry.wake = lambda: taken.append(1) or {7}  # type: ignore[func-returns-value]
    telemetry.procs.sample = (  # type: ignore[method-assign]
        lambda wake=(), host=None, ended=(): pytest.fail("no process is sampled"))
    await batches_sent(telemetry, 3)
    assert len(taken) >= 3


# ---- a paced process that wakes with no event: the host's usage says so ---------------------


class FakeHost:
    """The host's /proc/stat and /proc/meminfo in a fake /proc, written before each round:
    two CPUs' busy time is what its processes used (``extra`` ticks more: a process
    that started and ended unseen), its used memory what they hold (``extra_kb`` more)."""

    def __init__(self, proc: FakeProc) -> None:
        self.proc = proc
        self.rounds = 0
        self.extra = 0
        self.extra_kb = 0

    def write(self) -> None:
        busy = self.extra
        used_kb = self.extra_kb + 100_000
        for stat in self.proc.root.glob("[0-9]*/stat"):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            busy += int(fields[11]) + int(fields[12])
            used_kb += int(fields[21]) * PAGE_KB
        self.rounds += 1
        idle = 2 * HZ * self.rounds * 10 - busy  # the clock moves by two CPUs' ticks a round
        (self.proc.root / "stat").write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\n")
        total = 8_000_000
        (self.proc.root / "meminfo").write_text(
            f"MemTotal:       {total} kB\nMemFree:        1 kB\n"
            f"MemAvailable:   {total - used_kb} kB\n")


def paced(tmp_path: Path, max_gap: int = 8) -> tuple[FakeProc, FakeHost, StepClock, Telemetry]:
    """The daemon's telemetry over a fake /proc and host, pacing idle processes."""
    from linnix.language.pipeline import compile_text

    proc, clock = fake(tmp_path), StepClock()
    telemetry = Telemetry(clock, compile_text("rule r: cpu_pct > 90 or rss_mb > 1000"),
                          Lossless(), 1.0, idle_max=float(max_gap))  # type: ignore[arg-type]
    telemetry.host.root = telemetry.procs.root = proc.path
    return proc, FakeHost(proc), clock, telemetry


def collect(telemetry: Telemetry, host: FakeHost, clock: StepClock, n: int,
            between: dict[int, Callable[[], None]],
            wakes: dict[int, set[int]] | None = None,
            ended: dict[int, set[int]] | None = None) -> dict[int, list[int]]:
    """``n`` rounds of the daemon's telemetry a second apart; the rounds at which each pid
    was read (``between[r]`` runs before round r, before the host is written; ``wakes[r]``
    are the pids events named before it, ``ended[r]`` those whose exits they reported)."""
    read: dict[int, list[int]] = {}
    for r in range(1, n + 1):
        clock.t = 100.0 + r
        if r in between:
            between[r]()
        host.write()
        for ev in telemetry.collect(wake=(wakes or {}).get(r, set()),
                                    ended=(ended or {}).get(r, set())):
            if isinstance(ev, t.Sample):
                read.setdefault(ev.pid, []).append(r)
    return read


def test_a_paced_process_that_burns_cpu_is_read_at_the_round_the_host_shows_it(
        tmp_path: Path) -> None:
    proc, host, clock, telemetry = paced(tmp_path)
    # idle (paced: read at 1, 2, 3, 4, 6, 10, 18, 26), then half a CPU from round 12 on
    burn = {r: (lambda r=r: proc.add(300, "worker", 1, start=500, utime=7 + HZ // 2 * (r - 11)))
            for r in range(12, 31)}
    read = collect(telemetry, host, clock, 30, burn)
    assert read[300] == [1, 2, 3, 4, 6, 10, *range(12, 31)]  # at once, not at 18
    assert read[1] == [1, 2, 3, 4, 6, 10, 12, 20, 28]  # read along at 12, keeping its pace
    assert telemetry.procs.woke == 1


def test_a_paced_process_whose_memory_grows_is_read_at_the_round_the_host_shows_it(
        tmp_path: Path) -> None:
    proc, host, clock, telemetry = paced(tmp_path)
    pages = 64 * 1024 // PAGE_KB  # 64 MiB a round, a CPU tick each
    grow = {r: (lambda r=r: proc.add(300, "worker", 1, start=500, utime=7 + (r - 11),
                                     rss=250 + pages * (r - 11)))
            for r in range(12, 16)}
    read = collect(telemetry, host, clock, 20, grow)
    # at once, not at 18; then every round while it grows
    assert read[300][:10] == [1, 2, 3, 4, 6, 10, 12, 13, 14, 15]
    assert telemetry.procs.woke == 1


def test_what_the_reads_account_for_wakes_nothing(tmp_path: Path) -> None:
    proc, host, clock, telemetry = paced(tmp_path)
    # a busy process read every round, a new process its fork event names, and a little
    # the reads do not account for (under the thresholds): nothing more is read
    busy = {r: (lambda r=r: proc.add(400, "busy", 1, start=500, utime=HZ * r))
            for r in range(1, 31)}
    busy[15] = lambda: (proc.add(400, "busy", 1, start=500, utime=HZ * 15),
                        proc.add(500, "new", 1, start=int(114.5 * HZ), utime=HZ // 2))
    busy[20] = lambda: (proc.add(400, "busy", 1, start=500, utime=HZ * 20),
                        setattr(host, "extra", int(0.04 * HZ)),
                        setattr(host, "extra_kb", 8 * 1024))
    read = collect(telemetry, host, clock, 30, busy, wakes={15: {500}})
    assert read[1] == [1, 2, 3, 4, 6, 10, 18, 26]
    assert read[500][:2] == [15, 16]
    assert telemetry.procs.woke == 0
    # a process no event named, or one that ended unseen, using a tenth of a CPU: every
    # process is read (this one found too), and reads on at its pace
    proc.add(600, "unnamed", 1, start=int(130.5 * HZ), utime=HZ // 10)
    clock.t += 1.0
    host.write()
    assert {ev.pid for ev in telemetry.collect() if isinstance(ev, t.Sample)} == \
        {1, 300, 400, 500, 600}
    assert telemetry.procs.woke == 1


def test_children_that_lived_less_than_a_round_count_in_their_parents_reads(
        tmp_path: Path) -> None:
    proc, host, clock, telemetry = paced(tmp_path)
    # a fork loop (its fork events wake it each round) whose children, never read, use a
    # fifth of a CPU a round: the host's busy time the loop's reads account for, as its
    # children's CPU time
    loop = {r: (lambda r=r: (proc.add(400, "loop", 1, start=500, utime=r,
                                      cutime=HZ // 5 * r),
                             setattr(host, "extra", HZ // 5 * r)))
            for r in range(1, 21)}
    read = collect(telemetry, host, clock, 20, loop, wakes={r: {400} for r in range(1, 21)})
    assert read[1] == [1, 2, 3, 4, 6, 10, 18]  # paced all along: nothing woke
    assert telemetry.procs.woke == 0
    # the same children, with the parent not waiting for them (its children's CPU time
    # stays 0): the host used more than the reads account for, every process is read
    proc.add(400, "loop", 1, start=500, utime=21)
    host.extra += HZ // 5
    clock.t += 1.0
    host.write()
    assert {ev.pid for ev in telemetry.collect(wake={400}) if isinstance(ev, t.Sample)} == \
        {1, 300, 400}
    assert telemetry.procs.woke == 1


def test_a_child_read_before_it_ended_counts_once(tmp_path: Path) -> None:
    proc, host, clock, telemetry = paced(tmp_path)
    # a job (500) of a parent (400) reads busy for rounds 1-10, a CPU each, and ends at
    # round 11; its parent waited for it, so the parent's children's CPU time jumps by
    # all it used, of which the job's own reads counted all but the last round's.  At the
    # same round the idle worker (300, read next at 18) starts to use half a CPU.
    def job(r: int) -> None:
        proc.add(400, "make", 1, start=500)
        proc.add(500, "job", 400, start=500, utime=HZ * r)

    def ended() -> None:
        shutil.rmtree(proc.root / "500")
        proc.add(400, "make", 1, start=500, cutime=HZ * 11)
        host.extra = HZ * 11 + 3  # what the job used stays in the host's busy time
        proc.add(300, "worker", 1, start=500, utime=7 + HZ // 2)

    steps: dict[int, Callable[[], None]] = {r: (lambda r=r: job(r)) for r in range(1, 11)}
    steps[11] = ended
    read = collect(telemetry, host, clock, 12, steps, wakes={11: {400}}, ended={11: {500}})
    assert read[500] == list(range(1, 11))
    # counted twice, the job would hide the worker's half CPU until its read at 18
    assert read[300] == [1, 2, 3, 4, 6, 10, 11, 12]
    assert telemetry.procs.woke == 1
    assert 500 not in telemetry.procs.pacing.seen  # forgotten at once
