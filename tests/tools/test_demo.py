"""``linnix demo``: the workloads really run, detached and bounded, and never linger.

Each check starts the real command in a subprocess with short durations
(``--duration-scale``) and measures the effect from /proc: the shape of the
process tree, forks, CPU time, resident memory and descriptors.  The other
checks stop the command with SIGINT, SIGTERM and SIGKILL and look for any
process of the workload's group that is still running (zombies waiting for
init to reap them do not count).  Nothing here needs eBPF or root.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from support import ROOT

from linnix import cli
from linnix.language.pipeline import build
from linnix.tools.demo import FD_LIMIT, SCENARIOS, stall_spinners

Capture = pytest.CaptureFixture[str]
T = TypeVar("T")
Start = Callable[..., "Demo"]
# the workloads' CPU use is measured: a test on another worker would take it
pytestmark = pytest.mark.serial

RULES = ROOT / "rules"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


# ---- reading /proc ----------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    pid: int
    comm: str
    state: str
    ppid: int
    pgrp: int
    ticks: int  # user + system
    rss_mb: float


def stat(pid: int) -> Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    head, _, tail = raw.rpartition(b")")
    f = tail.split()
    return Stat(pid, head.partition(b"(")[2].decode(), f[0].decode(), int(f[1]), int(f[2]),
                int(f[11]) + int(f[12]), int(f[21]) * PAGE / MB)


def members(pgid: int) -> dict[int, Stat]:
    """Running (not zombie) processes of a process group."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := stat(int(name))) and st.pgrp == pgid and st.state not in "ZX":
            out[st.pid] = st
    return out


def lineage(pid: int) -> list[int]:
    """The ancestors of ``pid``, nearest first."""
    out = []
    while (st := stat(pid)) is not None and st.ppid > 0:
        out.append(st.ppid)
        pid = st.ppid
    return out


def forks_so_far() -> int:
    """Processes created on the host since boot (the 'processes' line of /proc/stat)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("processes "):
            return int(line.split()[1])
    raise AssertionError("no 'processes' line in /proc/stat")


def fd_usage(pid: int) -> tuple[int, int]:
    """Open descriptors and the soft open-files limit of ``pid``."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return fds, int(line.split()[3])
    raise AssertionError("no open-files limit")


def running(pid: int) -> bool:
    return (st := stat(pid)) is not None and st.state not in "ZX"


def cpu_seconds(pids: list[int]) -> float:
    return sum(st.ticks for p in pids if (st := stat(p)) is not None) / CLK_TCK


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 5.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# ---- running the command ------------------------------------------------------------------


class Demo:
    """``linnix demo ARGS`` in a subprocess whose output is read as it comes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "linnix", "demo", *args], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self.out = ""
        self._eof = False

    def pump(self, timeout: float = 0.05) -> None:
        if self._eof:
            time.sleep(timeout)
            return
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if ready:
            with contextlib.suppress(BlockingIOError):
                data = os.read(self._fd, 65536)
                self._eof = not data
                self.out += data.decode()

    def pgids(self) -> list[int]:
        return [int(g) for g in re.findall(r"process group (\d+)", self.out)]

    def pgid(self, timeout: float = 5.0) -> int:
        """The group of the (first) workload, once the command has announced it."""
        deadline = time.monotonic() + timeout
        while not self.pgids():
            ended = self._eof and self.proc.poll() is not None
            assert not ended and time.monotonic() < deadline, f"no group announced:\n{self.out}"
            self.pump()
        return self.pgids()[0]

    def finish(self, timeout: float = 10.0) -> tuple[int, str, str]:
        """Wait for the command to exit: its status, stdout and stderr."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None or not self._eof:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"linnix demo still running after {timeout}s:\n{self.out}")
            self.pump()
        assert self.proc.stderr is not None
        return self.proc.wait(), self.out, self.proc.stderr.read().decode()


@pytest.fixture
def demo() -> Iterator[Start]:
    """Start demos; afterwards make sure none of them left anything running."""
    started: list[Demo] = []

    def start(*args: str) -> Demo:
        d = Demo(*args)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
        d.proc.wait()
        d.pump(0)
        for pgid in d.pgids():  # a failed test must not leave its workload behind
            for pid in members(pgid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for stream in (d.proc.stdout, d.proc.stderr):
            if stream is not None:
                stream.close()


def assert_gone(pgid: int, timeout: float = 2.0) -> None:
    wait_for(f"the processes of group {pgid} to end", lambda: not members(pgid), timeout)


def assert_detached(pid: int, demo: Demo) -> None:
    """``pid`` is neither below the test process nor below ``linnix demo``."""
    above = lineage(pid)
    assert os.getpid() not in above and demo.proc.pid not in above, above
    # it hangs off init or off a subreaper among the test's own ancestors
    assert above[0] == 1 or above[0] in lineage(os.getpid()), above


# ---- the command line and the catalogue -------------------------------------------------------


def test_list_shows_every_scenario_with_its_rule(capsys: Capture) -> None:
    assert cli.main(["demo", "--list"]) == 0
    out = capsys.readouterr().out
    for s in SCENARIOS.values():
        assert re.search(rf"^{s.name} +{s.rule} +{s.severity} +{s.comm} ", out, re.M), out
    assert re.search(r"^cgroup-hog +cgroup_hog +critical +python3 ", out, re.M), out
    assert re.search(r"^all +every scenario in turn but cgroup-hog$", out, re.M)


def test_every_shipped_rule_has_a_scenario_that_matches_it() -> None:
    plan = build([str(RULES)]).require_plan()
    # every rule enabled by default; the opt-in network rules are shown by replay tests
    assert {s.rule for s in SCENARIOS.values()} == {r.name for r in plan.active}
    assert {r.name for r in plan.rules if r not in plan.active} == {
        "reverse_shell", "late_listener", "connect_flood"}
    for s in SCENARIOS.values():
        rule = plan.rule(s.rule)
        assert rule is not None and rule.severity == s.severity, s.name
    assert list(SCENARIOS) == ["fork-storm", "cpu-spike", "runaway-tree", "memory-leak",
                               "short-jobs", "fd-exhaustion", "circuit-breaker"]


def test_workload_names_fit_comm_and_are_not_protected() -> None:
    common = (RULES / "common.lnx").read_text()
    listed = re.search(r"let protected = \[(.*?)\]", common, re.S)
    assert listed is not None
    protected = set(re.findall(r'"([^"]+)"', listed.group(1)))
    names = [s.comm for s in SCENARIOS.values()]
    assert len(set(names)) == len(names)
    for name in names:
        assert len(name.encode()) <= 15 and name not in protected, name


@pytest.mark.parametrize("argv", [
    ["demo"],
    ["demo", "no-such-scenario"],
    ["demo", "cpu-spike", "--duration-scale", "0"],
    ["demo", "cpu-spike", "--duration-scale", "-1"],
    ["demo", "cpu-spike", "--duration-scale", "nan"],
    ["demo", "cpu-spike", "--duration-scale", "fast"],
    ["demo", "memory-leak", "--leak-cap", "0"],
    ["demo", "cgroup-hog", "--duration-scale", "2"],  # its shape is fixed: never ignored
    ["demo", "cgroup-hog", "--leak-cap", "10"],
])
def test_bad_arguments_are_usage_errors(capsys: Capture, argv: list[str]) -> None:
    assert cli.main(argv) == 2
    assert "linnix:" in capsys.readouterr().err


def test_the_module_needs_no_trio_quart_or_bcc() -> None:
    code = ("import argparse, sys, linnix.tools.demo, linnix.cli.demo; "
            "linnix.cli.demo.demo_arguments(argparse.ArgumentParser()); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'trio', 'quart', 'bcc'}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


# ---- what each workload does --------------------------------------------------------------------


def test_runaway_tree_is_a_detached_idle_parent_with_a_busy_child_per_cpu(demo: Start) -> None:
    d = demo("runaway-tree", "--duration-scale", "0.1")
    pgid = d.pgid()
    ncpu = os.cpu_count() or 1

    def tree() -> tuple[Stat, list[Stat]] | None:
        procs = members(pgid)
        for p in procs.values():
            kids = [k for k in procs.values() if k.ppid == p.pid]
            if len(kids) == ncpu:
                return p, kids
        return None

    parent, kids = wait_for("a parent with one child per CPU", tree)
    assert {parent.comm, *(k.comm for k in kids)} == {"lnx-runaway"}
    assert_detached(parent.pid, d)
    assert parent.ppid not in members(pgid)  # the launcher is gone: the parent is the root
    # over a second, the children burn CPU while the parent idles
    pids = [k.pid for k in kids]
    before, parent_before, t0 = cpu_seconds(pids), cpu_seconds([parent.pid]), time.monotonic()
    time.sleep(1.0)
    elapsed = time.monotonic() - t0
    burnt = (cpu_seconds(pids) - before) / elapsed
    idle = (cpu_seconds([parent.pid]) - parent_before) / elapsed
    # (generous bounds: the host may be busy with other work)
    assert burnt >= 0.25, f"the children used only {burnt:.0%} of a CPU"
    assert burnt <= 0.95 * ncpu  # duty-cycled: never every CPU in full
    assert idle <= 0.1 and idle * 5 < burnt
    status, out, _ = d.finish()
    assert status == 0, out
    assert "trips runaway_tree (critical)" in out and "done: every workload process" in out
    assert_gone(pgid, 0.5)


def test_fork_storm_forks_fast_and_sigterm_stops_the_whole_group(demo: Start) -> None:
    before = forks_so_far()
    d = demo("fork-storm")
    pgid = d.pgid()
    wait_for("20 workload processes", lambda: len(members(pgid)) >= 20, 3.0)
    procs = members(pgid)
    assert forks_so_far() - before >= 20
    assert {p.comm for p in procs.values()} == {"lnx-forker"}
    # the children hang off the forker, the forker off init: not off the test
    forkers = {p.ppid for p in procs.values() if p.ppid in procs}
    assert len(forkers) == 1
    assert_detached(forkers.pop(), d)
    d.proc.send_signal(signal.SIGTERM)
    status, out, _ = d.finish(5.0)
    assert status == 143, out
    assert "got SIGTERM: stopping the workload" in out
    assert_gone(pgid, 0.5)


def test_cpu_spike_spins_and_sigint_stops_it(demo: Start) -> None:
    d = demo("cpu-spike")
    pgid = d.pgid()
    spinner = wait_for("the spinner", lambda: next(
        (p for p in members(pgid).values() if p.ppid not in (d.proc.pid, pgid)), None))
    assert spinner.comm == "lnx-spin"
    assert_detached(spinner.pid, d)
    before, t0 = cpu_seconds([spinner.pid]), time.monotonic()
    time.sleep(0.6)
    share = (cpu_seconds([spinner.pid]) - before) / (time.monotonic() - t0)
    assert share >= 0.3, f"the spinner used only {share:.0%} of a CPU"
    d.proc.send_signal(signal.SIGINT)
    status, out, _ = d.finish(5.0)
    assert status == 130, out
    assert "got SIGINT" in out and "stopped 1 process;" in out
    assert_gone(pgid, 0.5)


def test_memory_leak_grows_resident_memory_up_to_its_cap(demo: Start) -> None:
    cap = 24
    d = demo("memory-leak", "--duration-scale", "0.06", "--leak-cap", str(cap))
    pgid = d.pgid()
    leaker = wait_for("the leaker", lambda: next(
        (p for p in members(pgid).values() if p.ppid not in (d.proc.pid, pgid)), None))
    assert leaker.comm == "lnx-leak"
    start, peak = leaker.rss_mb, leaker.rss_mb
    while (st := stat(leaker.pid)) is not None and running(leaker.pid):
        peak = max(peak, st.rss_mb)
        d.pump(0.05)
    # (the first chunks may be in place before the leaker is first seen)
    assert cap - 9 <= peak - start <= cap + 6, (start, peak)
    status, out, _ = d.finish()
    assert status == 0, out
    assert "reached the cap" in out
    assert_gone(pgid, 0.5)


def test_short_jobs_start_children_that_exit_at_once(demo: Start) -> None:
    before = forks_so_far()
    d = demo("short-jobs", "--duration-scale", "0.2")
    pgid = d.pgid()
    leader = wait_for("the job starter", lambda: next(
        (p for p in members(pgid).values() if p.ppid not in (d.proc.pid, pgid)), None))
    assert leader.comm == "lnx-jobs"
    assert_detached(leader.pid, d)
    most = 0  # children never pile up: each exits at once and is reaped at the next tick
    while running(leader.pid):
        most = max(most, sum(1 for p in members(pgid).values() if p.ppid == leader.pid))
        d.pump(0.02)
    status, out, _ = d.finish()
    assert status == 0, out
    m = re.search(r"started (\d+) short-lived children in ([\d.]+)s", out)
    assert m is not None, out
    started, seconds = int(m.group(1)), float(m.group(2))
    assert started >= 12 and started <= 30 * seconds + 1, (started, seconds)
    assert forks_so_far() - before >= started
    assert most <= 2
    assert_gone(pgid, 0.5)


def test_fd_exhaustion_holds_over_90_percent_of_its_limit(demo: Start) -> None:
    d = demo("fd-exhaustion", "--duration-scale", "0.1")
    pgid = d.pgid()

    def full() -> tuple[int, int, int] | None:
        for p in members(pgid).values():
            if p.comm == "lnx-fdhog" and p.ppid not in (d.proc.pid, pgid):
                with contextlib.suppress(OSError):
                    fds, limit = fd_usage(p.pid)
                    if fds > 0.9 * limit:
                        return p.pid, fds, limit
        return None

    pid, fds, limit = wait_for("the descriptor hog to fill up", full, 3.0)
    assert limit <= FD_LIMIT and fds < limit
    assert_detached(pid, d)
    status, out, _ = d.finish()
    assert status == 0, out
    assert f"holds {fds} descriptors" in out
    assert_gone(pgid, 0.5)


def test_circuit_breaker_spinners_are_detached_siblings(demo: Start) -> None:
    d = demo("circuit-breaker", "--duration-scale", "0.06")
    pgid = d.pgid()
    n = stall_spinners()

    def siblings() -> list[Stat] | None:
        procs = list(members(pgid).values())
        if len(procs) == n and all(p.ppid not in (d.proc.pid, pgid) for p in procs):
            return procs
        return None

    spinners = wait_for(f"{n} spinners re-parented away from the launcher", siblings, 4.0)
    assert {p.comm for p in spinners} == {"lnx-stall"}
    assert len({p.ppid for p in spinners}) == 1  # one parent: init (or a subreaper)
    assert not {p.ppid for p in spinners} & {p.pid for p in spinners}
    assert_detached(spinners[0].pid, d)
    pids = [p.pid for p in spinners]
    before, t0 = cpu_seconds(pids), time.monotonic()
    time.sleep(0.4)
    busy = (cpu_seconds(pids) - before) / (time.monotonic() - t0)
    assert busy >= 0.5, f"the spinners used only {busy:.0%} of a CPU"  # generous: shared host
    status, out, _ = d.finish()
    assert status == 0, out
    assert f"started {n} spinners" in out
    assert_gone(pgid, 0.5)


# ---- bounds: nothing outlives its deadline ------------------------------------------------------


def test_a_killed_command_leaves_nothing_after_the_deadline(demo: Start) -> None:
    scale = 0.3
    d = demo("fork-storm", "--duration-scale", str(scale))
    pgid = d.pgid()
    t0 = time.monotonic()
    wait_for("children", lambda: len(members(pgid)) >= 5, 3.0)
    d.proc.kill()
    d.proc.wait()
    time.sleep(0.1)
    assert members(pgid), "the workload should outlive the command that started it"
    # it ends on its own at its deadline (the planned length), not at the backstop timer
    planned = SCENARIOS["fork-storm"].planned(scale)
    assert_gone(pgid, max(0.0, planned - (time.monotonic() - t0)) + 1.0)


def test_all_runs_every_scenario_in_turn(demo: Start) -> None:
    d = demo("all", "--duration-scale", "0.03", "--leak-cap", "8")
    status, out, err = d.finish(30.0)
    assert status == 0, out + err
    headers = re.findall(r"^== (\S+) \((\d)/7\): trips (\w+) ", out, re.M)
    assert [h[0] for h in headers] == list(SCENARIOS)
    assert [h[2] for h in headers] == [s.rule for s in SCENARIOS.values()]
    assert out.count("done: every workload process has exited") == 7
    assert out.count("pausing") == 6 and "all 7 scenarios done" in out
    pgids = d.pgids()
    assert len(set(pgids)) == 7
    for pgid in pgids:
        assert not members(pgid)
