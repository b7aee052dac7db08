"""Subtree totals within walls (``boundary EXPR``): exact at every tick, and what they
change in reporting.

The reference is the definition applied to the tree as it is at the tick: the
totals of a process within a boundary are its own values plus those of each
child that is not a wall, recursively; a wall is a process for which the
boundary holds now (its ``comm`` as last exec'd or renamed).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from engine_support import alerts, execve, exit_, fork, no_hang, proc, proposals, run, sample
from hypothesis import given
from hypothesis import strategies as st

from linnix.engine import trace as t
from linnix.engine.core import Core, Output
from linnix.engine.proctable import Proc, ProcTable
from linnix.language.pipeline import compile_text
from linnix.runtime.replay import replay

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("w", "v", "x", "y")
WALLS = {'comm == "w"': ("w",), 'comm in ["v", "w"]': ("v", "w")}  # the boundaries below
PLAN = compile_text("""
rule a {
    when subtree_cpu_pct > 1000 and subtree_rss_mb > 0 and subtree_fds > 0 and subtree_procs > 0
    boundary comm == "w"
}
rule b {
    when subtree_cpu_pct > 1000 and subtree_procs > 0
    boundary comm in ["v", "w"]
}
rule plain: subtree_cpu_pct > 1000 and subtree_rss_mb > 0 and subtree_fds > 0
""")


# ---- the totals, against the definition --------------------------------------------------

@st.composite
def histories(draw: st.DrawFn) -> list[t.Event]:
    """Forks, execs (which move a process in or out of the walls), renames, samples
    and exits over a small pool of pids: re-parenting, pid reuse, deep chains."""
    ts = 0.0
    events: list[t.Event] = [proc(0.0, 1, 0, "init", start=0.0)]
    for _ in range(draw(st.integers(1, 80))):
        ts = round(ts + draw(st.sampled_from((0.0, 0.0, 0.1, 0.3, 0.5, 0.7, 1.0))), 6)
        pid = draw(st.integers(2, 12))
        kind = draw(st.sampled_from(["fork", "fork", "exec", "sample", "sample", "exit",
                                     "proc"]))
        comm = draw(st.sampled_from(NAMES))
        if kind == "fork":
            events.append(fork(ts, pid, draw(st.integers(1, 12)), comm))
        elif kind == "exec":
            events.append(execve(ts, pid, comm))
        elif kind == "sample":
            events.append(sample(
                ts, pid, cpu_pct=draw(st.sampled_from((None, 0.0, 12.5, 99.9, 250.0))),
                rss_kb=draw(st.sampled_from((None, 0, 1000, 4096))),
                fds=draw(st.sampled_from((None, 0, 3, 70))),
                comm=draw(st.sampled_from((None, *NAMES)))))
        elif kind == "exit":
            events.append(exit_(ts, pid))
        else:
            events.append(proc(ts, pid, draw(st.integers(0, 12)), comm, start=ts))
    return events


def own(p: Proc) -> list[int]:
    return [round((p.cpu_pct or 0.0) * 1000), round((p.rss_mb or 0.0) * 1024), p.fds or 0, 1]


def definition(p: Proc, walls: tuple[str, ...] | None) -> list[int]:
    """[milli-percent, KiB, fds, processes] of ``p``'s subtree, not past a wall."""
    out = own(p)
    for kid in p.kids.values():
        if walls is None or kid.comm not in walls:
            out = [a + b for a, b in zip(out, definition(kid, walls), strict=True)]
    return out


def totals(record: Any) -> list[int]:
    return [record._sub_cm, record._sub_rk, record._sub_fd, record.sub_procs]


def check(table: ProcTable) -> None:
    assert table.walls is not None
    for p in table.live():
        assert totals(p) == definition(p, None), p  # the plain totals are unchanged
        assert (p.sub_cpu_pct, p.sub_rss_mb) == (p._sub_cm / 1000.0, p._sub_rk / 1024.0)
        for k, text in enumerate(table.walls.texts):
            walls = WALLS[text]
            record = p.bounded[k]
            assert record.wall is (p.comm in walls), (p, text)
            assert totals(record) == definition(p, walls), (p, text)
            assert record.sub_cpu_pct == record._sub_cm / 1000.0
            assert record.sub_rss_mb == record._sub_rk / 1024.0
            assert record.sub_fds == record._sub_fd


@given(histories(), st.sampled_from([0.5, 0.3, 1.0]))
def test_bounded_totals_are_the_definition_at_every_tick(events: list[t.Event],
                                                         tick: float) -> None:
    core = Core(PLAN, tick)
    assert core.table.walls is not None
    assert core.table.walls.texts == ('comm == "w"', 'comm in ["v", "w"]')
    step = core.evaluator.step
    ticks: list[float] = []

    def checked(table: ProcTable, now: float) -> Any:
        check(table)
        ticks.append(now)
        return step(table, now)

    core.evaluator.step = checked  # type: ignore[method-assign]
    with no_hang(30):
        core.feed(events)
        core.finish()
    assert ticks  # there was at least the first tick


def test_a_new_plan_computes_the_walls_afresh_and_none_drops_them() -> None:
    events = [proc(0.0, 1, 0, "init"), fork(0.0, 2, 1, "w"), fork(0.0, 3, 2, "x"),
              sample(0.0, 3, cpu_pct=50.0)]
    core = Core(compile_text("rule plain: subtree_cpu_pct > 1000\n"), 0.5)
    core.feed(events)
    assert core.table.walls is None and core.table.procs[1].bounded == []
    core.replace_plan(PLAN)
    check(core.table)
    assert core.table.procs[1].bounded[0].sub_procs == 1  # 2 is a wall: 1 has itself only
    core.feed([execve(1.0, 2, "y"), sample(1.0, 3, cpu_pct=70.0)])
    core.table.fold()
    check(core.table)
    assert core.table.procs[1].bounded[0].sub_cpu_pct == 70.0
    core.replace_plan(compile_text("rule plain: subtree_cpu_pct > 1000\n"))
    assert core.table.walls is None and core.table.procs[1].bounded == []


# ---- forks and windows, against the definition -------------------------------------------

FORKS = compile_text("""
rule a {
    when subtree_forks_per_sec > 1000 and max(subtree_forks_per_sec, 2s) > 1000
    boundary comm == "w"
}
rule b {
    when max(subtree_forks_per_sec, 2s) > 1000 and max(subtree_cpu_pct, 1s) > 1000
    boundary comm in ["v", "w"]
}
rule plain: subtree_forks_per_sec > 1000 and max(subtree_forks_per_sec, 2s) > 1000
""")
# window key -> (its boundary's walls (None: plain), the window, the value's definition)
Ident = tuple[int, float | None]
WINDOWS = {"subtree_forks_per_sec": (None, 2.0, "forks"),
           "subtree_forks_per_sec@0": (WALLS['comm == "w"'], 2.0, "forks"),
           "subtree_forks_per_sec@1": (WALLS['comm in ["v", "w"]'], 2.0, "forks"),
           "subtree_cpu_pct@1": (WALLS['comm in ["v", "w"]'], 1.0, "cpu")}


class Reference:
    """The definitions, applied event by event to a table of the same tree.

    A fork counts for the forking parent and each ancestor it had then, up to and
    including the first that was a wall then; its count at T is the number of such
    forks with ``not ts <= T - 1``.  A window holds the value at each tick, from the
    first tick at which the process was alive.
    """

    def __init__(self) -> None:
        self.table = ProcTable(subtree=True, subtree_forks=True)
        self.times: dict[tuple[Proc, tuple[str, ...] | None], list[float]] = {}
        self.seen: dict[tuple[Proc, str], list[tuple[float, float]]] = {}  # by record:
        # an identity may come back (orphans have no start)

    def apply(self, ev: t.Event) -> None:
        self.table.apply(ev)
        if type(ev) is not t.Fork or self.table.procs[ev.pid].parent is None:
            return
        parent = self.table.procs[ev.pid].parent
        assert parent is not None
        for walls in (None, *WALLS.values()):
            for node in parent.lineage(inclusive=True):
                self.times.setdefault((node, walls), []).append(ev.ts)
                if walls is not None and node.comm in walls:
                    break

    def forks(self, p: Proc, walls: tuple[str, ...] | None, now: float) -> int:
        return sum(1 for ts in self.times.get((p, walls), ()) if not ts <= now - 1.0)

    def value(self, p: Proc, key: str, now: float) -> float:
        walls, _, what = WINDOWS[key]
        if what == "forks":
            return self.forks(p, walls, now)
        return definition(p, walls)[0] / 1000.0

    def tick(self, now: float) -> dict[tuple[Ident, str], float | None]:
        """Record the values at this tick; the windows' maxima."""
        out: dict[tuple[Ident, str], float | None] = {}
        for p in self.table.live():
            for key, (_, span, _) in WINDOWS.items():
                steps = self.seen.setdefault((p, key), [])
                steps.append((now, self.value(p, key, now)))
                edge = now - span
                if steps[0][0] > edge:
                    out[p.identity(), key] = None  # not observed for the whole window yet
                    continue
                start = max(i for i, (ts, _) in enumerate(steps) if ts <= edge)
                out[p.identity(), key] = max(v for _, v in steps[start:])
        return out


@given(histories(), st.sampled_from([0.5, 0.3, 1.0]))
def test_bounded_forks_and_windows_are_the_definition_at_every_tick(
        events: list[t.Event], tick: float) -> None:
    core = Core(FORKS, tick)
    assert core.table.walls is not None and core.table.subtree_forks
    assert [w.name for w in FORKS.window_metrics] == sorted(WINDOWS)
    ref = Reference()
    pending = list(events)
    step = core.evaluator.step
    ticks: list[float] = []

    def checked(table: ProcTable, now: float) -> Any:
        while pending and pending[0].ts <= now:
            ref.apply(pending.pop(0))
        assert table.walls is not None
        out = step(table, now)
        maxima = ref.tick(now)
        live = {p.identity(): p for p in ref.table.live()}
        for p in table.live():
            assert p.sub_forks.count(now) == ref.forks(live[p.identity()], None, now)
            for k, text in enumerate(table.walls.texts):
                expected = ref.forks(live[p.identity()], WALLS[text], now)
                assert p.bounded[k].sub_forks.count(now) == expected, (now, p, text)
            for key, (_, span, _) in WINDOWS.items():
                assert p.win_max(key, span, now) == maxima[p.identity(), key], (now, p, key)
        ticks.append(now)
        return out

    core.evaluator.step = checked  # type: ignore[method-assign]
    with no_hang(30):
        core.feed(events)
        core.finish()
    assert ticks


def batch(events: list[t.Event]) -> ProcTable:
    """A table keeping fork counts within the walls of ``comm == "w"``, fed ``events`` as
    one batch (folded once, at the end)."""
    table = ProcTable(subtree=True, subtree_forks=True, sums=frozenset())
    table.set_boundaries(("w",), (lambda p, h, now: p.comm == "w",))
    for ev in events:
        table.handlers[type(ev)](ev)
    table.fold()
    return table


def test_a_fork_counts_up_to_the_first_wall_and_a_wall_counts_its_own() -> None:
    # init(1) -> w(2) -> x(3) -> y(4); 4 forks 5 and 6, 2 forks 7, 1 forks 8
    procs = batch([proc(0.0, 1, 0, "init"), proc(0.0, 2, 1, "w"), proc(0.0, 3, 2, "x"),
                   proc(0.0, 4, 3, "y"), fork(0.1, 5, 4), fork(0.1, 6, 4), fork(0.2, 7, 2),
                   fork(0.3, 8, 1)]).procs
    assert {pid: procs[pid].bounded[0].sub_forks.count(0.5) for pid in (1, 2, 3, 4)} == {
        1: 1, 2: 3, 3: 2, 4: 2}
    assert {pid: procs[pid].sub_forks.count(0.5) for pid in (1, 2, 3, 4)} == {
        1: 4, 2: 3, 3: 2, 4: 2}
    assert procs[2].bounded[0].sub_forks.count(1.1) == 1  # the fork at 0.1 has left


def test_a_wall_that_forked_and_left_in_the_same_batch_hands_up_no_fork() -> None:
    # 9 (a wall) forks 10; both exit before the fold: 9's fork stays below the wall
    table = batch([proc(0.0, 1, 0, "init"), fork(0.1, 9, 1, "w"), fork(0.1, 10, 9),
                   exit_(0.2, 10), exit_(0.2, 9)])
    init = table.procs[1]
    assert (init.sub_forks.count(0.5), init.bounded[0].sub_forks.count(0.5)) == (2, 1)


def test_a_process_becoming_a_wall_stops_the_forks_noted_below_it() -> None:
    # 3 forks 4 at 0.1, then 2 (above 3) becomes a wall before the fold: the fork
    # climbs to the walls as they were, up to 1; 2 forks 5 once it is a wall
    events = [proc(0.0, 1, 0, "init"), proc(0.0, 2, 1, "x"), proc(0.0, 3, 2, "y"),
              fork(0.1, 4, 3), execve(0.2, 2, "w"), fork(0.3, 5, 2)]
    procs = batch(events).procs
    assert [procs[pid].bounded[0].sub_forks.count(0.5) for pid in (1, 2, 3)] == [1, 2, 1]
    # and one that stops being a wall keeps what it counted; what it forks next climbs
    table = batch([*events, execve(0.4, 2, "x"), fork(0.4, 6, 2)])
    assert [table.procs[pid].bounded[0].sub_forks.count(0.5) for pid in (1, 2, 3)] == [
        2, 3, 1]


def test_a_plan_that_adds_up_more_keeps_the_fork_counts_within_walls() -> None:
    forks = 'rule r { when subtree_forks_per_sec > 100\n boundary comm == "w" }\n'
    core = Core(compile_text(forks), 0.5)
    core.feed([proc(0.0, 1, 0, "init"), proc(0.0, 2, 1, "x"), fork(0.1, 3, 2),
               fork(0.2, 4, 1)])
    core.table.handlers[t.Fork](fork(0.3, 5, 2))  # noted, not yet folded
    assert not core.table.sum_rss
    core.replace_plan(compile_text(forks + "rule m: subtree_rss_mb > 100\n"))
    assert core.table.sum_rss  # every total was computed afresh
    core.table.fold()
    init = core.table.procs[1]
    assert (init.sub_forks.count(0.5), init.bounded[0].sub_forks.count(0.5)) == (3, 3)


def test_a_window_within_walls_is_apart_from_the_plain_window() -> None:
    core = Core(FORKS, 0.5)
    core.feed([proc(0.0, 1, 0, "init"), proc(0.0, 2, 1, "w"), fork(0.1, 3, 2),
               fork(0.2, 4, 2), fork(0.3, 5, 1)])
    core.run_until(2.5)
    init = core.table.procs[1]  # plain: 3 forks under it at 0.5; within walls only its own
    assert init.win_max("subtree_forks_per_sec", 2.0, 2.5) == 3
    assert init.win_max("subtree_forks_per_sec@0", 2.0, 2.5) == 1
    assert init.win_max("subtree_forks_per_sec@1", 2.0, 2.5) == 1


# ---- reporting: the tmux case ------------------------------------------------------------

def scene_module() -> Any:
    spec = importlib.util.spec_from_file_location("fixture_generate",
                                                  ROOT / "fixtures" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fixture_generate", module)
    spec.loader.exec_module(module)
    return module


TMUX, SHELL1, PYTHON, SHELL2, MAKE = 600, 610, 611, 620, 621
RUNAWAY = """
let shells = ["bash", "sh", "zsh", "dash"]
rule runaway_tree {
    when subtree_cpu_pct > 90 and subtree_procs >= 2 for 5s
    unless comm in shells
%s    action kill_tree
}
"""
BOUNDARY = '    boundary comm in ["bash", "tmux: server"]\n'


def tmux_trace(path: Path) -> None:
    """A tmux server with two shells: python3 at 99% CPU under the first from 2s, and
    under the second a make whose two compilers are busy (a real runaway tree) from 12s."""
    g = scene_module()
    s = g.Scene(30.0)
    s.proc(TMUX, g.INIT, "tmux: server", "/usr/bin/tmux")
    s.proc(SHELL1, TMUX, "bash", "/usr/bin/bash")
    s.proc(SHELL2, TMUX, "bash", "/usr/bin/bash")
    s.spawn(1.0, PYTHON, SHELL1, "python3", "/usr/bin/python3", ["python3", "busy.py"])
    s.samples(PYTHON, 2.0, 30.0, g.steady(99.0))
    s.spawn(10.0, MAKE, SHELL2, "make", "/usr/bin/make")
    s.samples(MAKE, 11.0, 30.0, g.steady(1.0))
    for pid in (MAKE + 1, MAKE + 2):
        s.spawn(11.0, pid, MAKE, "cc1", "/usr/lib/gcc/cc1")
        s.samples(pid, 12.0, 30.0, g.steady(60.0))
    path.write_text("\n".join(s.lines()) + "\n")


def replayed(path: Path, rules: str) -> list[Output]:
    out: list[Output] = []
    replay(str(path), compile_text(rules), out.extend)
    return out


def test_a_boundary_keeps_the_tmux_server_and_its_shells_out_of_reporting(
        tmp_path: Path) -> None:
    trace = tmp_path / "tmux.jsonl"
    tmux_trace(trace)
    out = replayed(trace, RUNAWAY % BOUNDARY)
    assert [(a.ts, a.state, a.pid, a.comm) for a in alerts(out)] == [
        (12.0, "pending", MAKE, "make"), (17.0, "firing", MAKE, "make")]
    firing = alerts(out)[1]
    assert firing.values == {"subtree_cpu_pct": 121.0, "subtree_procs": 3, "comm": "make"}
    assert [(p.ts, p.action.name, p.pid, p.comm, p.status) for p in proposals(out)] == [
        (17.0, "kill_tree", MAKE, "make", "proposed")]


def test_without_the_boundary_the_same_trace_proposes_the_tmux_server(tmp_path: Path) -> None:
    trace = tmp_path / "tmux.jsonl"
    tmux_trace(trace)
    out = replayed(trace, RUNAWAY % "")
    assert [(a.ts, a.state, a.pid) for a in alerts(out)][:3] == [
        (2.0, "pending", TMUX), (7.0, "firing", TMUX), (12.0, "resolved", TMUX)]
    assert [(p.ts, p.pid, p.comm) for p in proposals(out)] == [
        (7.0, TMUX, "tmux: server"), (17.0, MAKE, "make")]


def test_a_wall_is_still_an_instance_and_reporting_stops_at_it() -> None:
    rule = ("rule r {\n when subtree_procs >= 2\n boundary comm == \"wall\"\n"
            " action kill_tree\n}\n")
    events = [proc(0.0, 1, 0, "init"), proc(0.0, 2, 1, "wall"), proc(0.0, 3, 2, "x"),
              proc(0.0, 4, 3, "y"), proc(0.0, 5, 1, "z")]
    # 3 is the deepest root below the wall; 1 holds on its own (itself and 5), so it is
    # reported too: what holds below a wall does not suppress what is above it
    assert sorted(a.pid for a in alerts(run(rule, events))) == [1, 3]
    # 2 renamed itself: no wall any more, and 1's only deepest root is 3 again
    out = run(rule, [*events, sample(1.0, 2, comm="open")], until=1.0)
    assert [(a.ts, a.state, a.pid) for a in alerts(out)] == [
        (0.0, "firing", 1), (0.0, "firing", 3), (1.0, "resolved", 1)]
    # a wall with a subtree of its own is an instance
    out = run(rule.replace('"wall"', '"x"'), events)
    assert sorted(a.pid for a in alerts(out)) == [1, 3]


def test_a_boundary_that_cannot_be_judged_makes_no_wall() -> None:
    def broken(p: Proc, h: object, now: float) -> bool:
        if p.comm == "odd":
            raise ZeroDivisionError  # a bug in generated code
        return p.comm == "w"

    table = ProcTable(sums=frozenset({"cpu"}))
    table.set_boundaries(("broken",), (broken,))
    for ev in [proc(0.0, 1, 0, "init"), fork(0.0, 2, 1, "w"), fork(0.0, 3, 1, "odd"),
               fork(0.0, 4, 3, "x"), sample(0.0, 4, cpu_pct=10.0)]:
        table.apply(ev)
    walls = [p.pid for p in table.live() if p.bounded[0].wall]
    assert walls == [2]  # 3 could not be judged: its subtree still counts for 1
    assert table.procs[1].bounded[0].sub_procs == 3 and table.procs[1].bounded[0].sub_cpu_pct == 10
    # the same boundaries again (a reload): the totals are kept, not computed afresh
    kept = table.walls
    table.set_boundaries(("broken",), (broken,))
    assert table.walls is kept


# ---- the fork rate within walls: a build that keeps forking, a tree that stopped ---------

BUILD, CC1, PYTHON3, WORKER, LOOP = 700, 710, 800, 801, 802
QUIET_TREE = """
let shells = ["bash", "sh"]
rule runaway_tree {
    when subtree_procs >= 2 and subtree_cpu_pct > 80 and max(subtree_forks_per_sec, 15s) < 1
        for 10s
%s    unless comm in shells
    action kill_tree
}
"""


def forking_trace(path: Path) -> None:
    """Under the login shell: a make whose compilers are busy and which starts a short
    compiler every half second until the end; and a python3 that started a busy worker and
    a ``sh`` at 1s, and forks no more, while its ``sh`` starts a ``sleep`` every second."""
    g = scene_module()
    s = g.Scene(40.0)
    s.spawn(1.0, BUILD, g.BASH, "make", "/usr/bin/make")
    for i, pid in enumerate((CC1, CC1 + 1)):
        s.spawn(1.0 + i / 10, pid, BUILD, "cc1", "/usr/lib/gcc/cc1")
        s.samples(pid, 2.0, 40.0, g.steady(60.0))
    for i in range(74):  # 2.0, 2.5, ... 38.5
        ts = 2.0 + i / 2
        s.spawn(ts, 720 + i, BUILD, "cc", "/usr/bin/cc")
        s.exit(ts + 0.2, 720 + i)
    s.spawn(1.0, PYTHON3, g.BASH, "python3", "/usr/bin/python3")
    s.spawn(1.0, WORKER, PYTHON3, "python3", "/usr/bin/python3")
    s.spawn(1.0, LOOP, PYTHON3, "sh", "/usr/bin/sh")
    for pid in (PYTHON3, WORKER):
        s.samples(pid, 2.0, 40.0, g.steady(50.0))
    for i in range(36):  # 3.0, 4.0, ... 38.0
        s.spawn(3.0 + i, 900 + i, LOOP, "sleep", "/usr/bin/sleep")
        s.exit(3.5 + i, 900 + i)
    path.write_text("\n".join(s.lines()) + "\n")


def test_a_tree_that_stopped_forking_fires_and_one_that_keeps_forking_does_not(
        tmp_path: Path) -> None:
    trace = tmp_path / "forking.jsonl"
    forking_trace(trace)
    out = replayed(trace, QUIET_TREE % "    boundary comm in shells\n")
    # the make tree forks every half second: its max over 15 s never drops below 1; the
    # python3 tree's last forks (at 1s) left the trailing second at 2s, the 15 s window by
    # 17s; its sh is a wall, so the sleeps it starts do not count for python3
    assert [(a.ts, a.state, a.pid, a.comm) for a in alerts(out)] == [
        (17.0, "pending", PYTHON3, "python3"), (27.0, "firing", PYTHON3, "python3")]
    assert alerts(out)[1].values == {
        "subtree_procs": 2, "subtree_cpu_pct": 100.0, "max(subtree_forks_per_sec, 15s)": 0,
        "comm": "python3"}
    assert [(p.ts, p.pid) for p in proposals(out)] == [(27.0, PYTHON3)]


def test_without_the_boundary_the_sleeps_of_the_sh_keep_the_python3_tree_quiet(
        tmp_path: Path) -> None:
    trace = tmp_path / "forking.jsonl"
    forking_trace(trace)
    assert alerts(replayed(trace, QUIET_TREE % "")) == []
