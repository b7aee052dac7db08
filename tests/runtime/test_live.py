"""LiveEngine: live batches fed to the core with replay's semantics (no kernel needed)."""

from __future__ import annotations

from collections.abc import Sequence

from linnix.engine import trace as t
from linnix.engine.core import Core, Output
from linnix.language.pipeline import compile_text
from linnix.procfs import Clock
from linnix.runtime.live import LiveEngine


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
