"""LiveEngine: live batches fed to the core with replay's semantics (no kernel needed)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
import trio
import trio.testing

from linnix.engine import trace as t
from linnix.engine.core import Core, Output
from linnix.engine.evaluator import Alert
from linnix.language.pipeline import compile_text
from linnix.procfs import Clock
from linnix.runtime import live
from linnix.runtime.live import LiveEngine
from linnix.timefmt import rfc3339


class FixedClock(Clock):
    def __init__(self, now: float = 0.0) -> None:
        super().__init__(origin=0.0)
        self.at = now

    def now(self) -> float:
        return self.at


def engine(snapshot: Sequence[t.Proc] = ()) -> tuple[LiveEngine, list[Output]]:
    out: list[Output] = []
    core = Core(compile_text("rule busy: forks_per_sec > 100\n"), 0.5)
    eng = LiveEngine(core, FixedClock(), out.extend)
    eng.snapshot = {p.pid: p.start or 0.0 for p in snapshot}
    if snapshot:
        eng.feed(list(snapshot))
    return eng, out


def test_outputs_leave_with_the_wall_clock_time_of_their_ts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    out: list[Output] = []
    core = Core(compile_text("rule busy: forks_per_sec > 100\n"), 0.5)
    eng = LiveEngine(core, FixedClock(now=20.0), out.extend)
    monkeypatch.setattr(live.time, "time", lambda: 1_800_000_000.5)  # at engine time 20.0
    alert = Alert(ts=17.25, rule="busy", state="firing", severity="warning", scope="process",
                  pid=1, comm="a", start=0.0, message="m", labels={}, values={})
    eng.emit([alert])
    assert out == [alert]
    # 2.75 s before the engine's present
    assert alert.to_json()["time"] == rfc3339(1_800_000_000.5 - 2.75) == \
        "2027-01-15T07:59:57.750Z"


def test_replay_outputs_have_no_wall_clock_time() -> None:
    alert = Alert(ts=1.0, rule="r", state="firing", severity="warning", scope="host",
                  pid=None, comm=None, start=None, message="m", labels={}, values={})
    assert "time" not in alert.to_json()


SCAN = [t.Proc(ts=10.0, pid=1, ppid=0, comm="init", start=0.0),
        t.Proc(ts=10.0, pid=50, ppid=1, comm="sh", start=9.98)]


def test_a_fork_the_scan_already_reported_is_dropped() -> None:
    eng, _ = engine(SCAN)
    eng.feed([t.Fork(ts=10.01, pid=50, ppid=1, comm="sh"),   # sh seen twice
              t.Fork(ts=10.02, pid=60, ppid=50, comm="ls")])
    table = eng.core.table
    assert sorted(table.procs) == [1, 50, 60]
    assert table.procs[50].start == 9.98  # the scanned record, not a second process
    assert table.procs[50].child_forks.count(10.02) == 1  # only ls counted as a fork
    assert eng.kinds == {"proc": 2, "fork": 2}  # counted as received, duplicates included


def test_a_later_fork_of_a_scanned_pid_is_a_new_process() -> None:
    eng, _ = engine(SCAN)
    eng.feed([t.Exit(ts=10.5, pid=50), t.Fork(ts=10.6, pid=50, ppid=1, comm="sh")])
    assert eng.core.table.procs[50].start == 10.6


def test_events_older_than_the_last_tick_are_moved_up_to_it() -> None:
    eng, _ = engine(SCAN)
    eng.clock.at = 12.0  # type: ignore[attr-defined]
    eng.tick()  # ticks at 10.0 .. 11.5 (the delay keeps 12.0 for later)
    assert eng.core.ticks == 4
    eng.feed([t.Fork(ts=11.0, pid=70, ppid=1, comm="late"),
              t.Fork(ts=11.9, pid=71, ppid=1, comm="fine")])
    table = eng.core.table
    assert eng.clamped == 1
    assert table.procs[70].start == 11.500001  # just after the last tick, never before it
    assert table.procs[71].start == 11.9


def test_each_round_of_samples_is_told_once_the_table_has_it() -> None:
    eng, _ = engine(SCAN)
    told: list[tuple[float, float | None]] = []
    eng.on_round = lambda ts: told.append((ts, eng.core.table.procs[50].cpu_pct))
    eng.feed([t.System(ts=11.0), t.Sample(ts=11.0, pid=50, cpu_pct=7.0)])
    eng.feed([t.Fork(ts=11.2, pid=60, ppid=50, comm="ls")])  # events: no round
    eng.clock.at = 12.0  # type: ignore[attr-defined]
    eng.tick()
    eng.feed([t.System(ts=11.0), t.Sample(ts=11.0, pid=50, cpu_pct=9.0)])  # late: clamped
    assert told == [(11.0, 7.0), (11.500001, 9.0)]


def test_the_stdout_log_stops_quietly_when_its_reader_goes_away() -> None:
    import io

    from linnix.engine.evaluator import Alert
    from linnix.runtime.live import AlertLog

    out = io.StringIO()
    log = AlertLog(out)
    eng, outputs = engine(SCAN)
    eng.feed([t.Fork(ts=10.1 + i / 200, pid=100 + i, ppid=50, comm="x") for i in range(150)])
    eng.clock.at = 13.0  # type: ignore[attr-defined]
    eng.tick()
    alerts = [o for o in outputs if isinstance(o, Alert)]
    log(alerts)
    assert "FIRING   busy warning host: forks_per_sec=150\n" in out.getvalue()
    out.close()  # like a closed pipe: writing raises
    log(alerts)  # no exception: the alerts file and the API still carry everything
    assert log.out is None


# ---- arguments of new programs, read off the event loop ---------------------------------

def exec_engine() -> LiveEngine:
    core = Core(compile_text('rule r: cmdline matches "secret"\n'), 0.5)
    eng = LiveEngine(core, FixedClock(20.0), lambda out: None, cmdline=True)
    eng.feed([t.Proc(ts=10.0, pid=1, ppid=0, comm="init", start=0.0)])
    return eng


async def consume(eng: LiveEngine, *batches: list[t.Event]) -> None:
    send, receive = trio.open_memory_channel[list[t.Event]](len(batches))
    async with send:
        for batch in batches:
            await send.send(batch)
    await eng.consume(receive)


def execs(ts: float, *pids: int) -> list[t.Event]:
    return [e for pid in pids for e in (t.Fork(ts=ts, pid=pid, ppid=1, comm="sh"),
                                        t.Exec(ts=ts, pid=pid, comm="tool"))]


async def test_arguments_are_read_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []

    def read_argv(pid: int) -> list[str]:
        threads.append(threading.current_thread())
        return ["tool", f"--n={pid}"]

    monkeypatch.setattr(live, "read_argv", read_argv)
    eng = exec_engine()
    await consume(eng, execs(10.1, 100, 101))
    assert len(threads) == 2 and threading.main_thread() not in threads
    procs = eng.core.table.procs
    assert (procs[100].cmdline, procs[101].cmdline) == ("tool --n=100", "tool --n=101")


async def test_a_read_that_never_ends_costs_its_batch_a_second_and_the_rest_nothing(
        monkeypatch: pytest.MonkeyPatch, mock_clock: trio.testing.MockClock) -> None:
    entered = {pid: threading.Event() for pid in (200, 100, 201)}
    done = threading.Event()  # the stuck reads (200, 201) end only when the test is over
    go = threading.Event()  # lets the read of 100 return

    def read_argv(pid: int) -> list[str] | None:
        entered[pid].set()
        (done if pid >= 200 else go).wait(60)
        return ["tool"]

    monkeypatch.setattr(live, "read_argv", read_argv)
    eng = exec_engine()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume, eng, execs(10.1, 200), execs(10.2, 100),
                               execs(10.3, 201), execs(10.4, 101))
            await trio.to_thread.run_sync(entered[200].wait)
            mock_clock.jump(live.ARGV_WAIT_S)  # the first batch gives up on its read
            await trio.to_thread.run_sync(entered[100].wait)
            go.set()  # the second batch's read returns in time
            await trio.to_thread.run_sync(entered[201].wait)
            mock_clock.jump(live.ARGV_WAIT_S)  # the third gives up; the fourth never waits
    finally:
        done.set()
    procs = eng.core.table.procs
    assert [procs[pid].cmdline for pid in (200, 100, 201, 101)] == [None, "tool", None, None]
    assert trio.current_time() == 2 * live.ARGV_WAIT_S
