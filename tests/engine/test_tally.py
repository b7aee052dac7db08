"""Counting processes and events (linnix/engine/tally.py).

* The event counters count the trailing window exactly, tell a crash (a
  core-dump signal) from a failure, see an event as soon as it is applied
  (what an event rule evaluated at that event reads), and stay bounded under
  10,000 distinct names, every eviction counted.
* ``count(EXPR)`` judges again only the processes that changed: a tick after
  samples alone judges none, and an idle stretch is skipped.
* Random streams through random counting rules never raise, give the same
  output with idle ticks skipped or run, and the same however they are split.
"""

from __future__ import annotations

import functools
from typing import Any

import attrs
import orjson
from engine_support import core_for, execve, exit_, fork, no_hang, proc, sample, transitions
from hypothesis import given, settings
from hypothesis import strategies as st

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.engine.tally import MAX_ENTRIES, MAX_KEYS, KeyedCounter
from linnix.language.pipeline import compile_text
from linnix.plan import Plan

# ---- the event counters ----------------------------------------------------------------------


def test_a_counter_counts_the_trailing_window_end_included() -> None:
    c = KeyedCounter(60.0)
    for ts in (0.0, 10.0, 10.0, 30.0):
        c.add("/bin/x", ts)
    assert c.count("/bin/x", 60.0, 30.0) == 4
    assert c.count("/bin/x", 20.0, 30.0) == 1  # (10, 30]: 10 itself has left
    assert c.count("/bin/x", 20.0, 29.0) == 2  # (9, 29]: not 30, not yet happened
    assert c.count("/bin/y", 60.0, 30.0) == 0
    c.expire(70.0)  # 10 and 30 are within 60 s of 70: kept
    assert c.count("/bin/x", 60.0, 70.0) == 1 and len(c) == 1
    c.expire(90.0)
    assert len(c) == 0 and c.entries == 0 and c.evictions == 0  # expiry is no eviction


def test_one_value_holding_every_event_forgets_its_oldest() -> None:
    c = KeyedCounter(60.0, max_keys=4, max_entries=10)
    for i in range(15):
        c.add("/bin/x", float(i))
    assert c.entries == 10 and c.evictions == 5
    assert c.count("/bin/x", 60.0, 14.0) == 10  # the 10 newest


def test_ten_thousand_distinct_exes_keep_the_counter_bounded() -> None:
    core = core_for("rule restarts: execs(exe, 1m) > 20\n")
    events: list[t.Event] = [proc(0.0, 1, 0, "init")]
    for i in range(10_000):
        ts = i * 0.001
        events += [fork(ts, 1000 + i, 1), execve(ts, 1000 + i, "x", exe=f"/tmp/{i:05d}"),
                   exit_(ts, 1000 + i, code=0)]
    core.feed(events)
    core.finish()
    tally = core.evaluator.tally
    (counter,) = tally.counters.values()
    assert len(counter) == MAX_KEYS  # memory: bounded by the table, not by the names
    assert counter.entries == MAX_KEYS <= MAX_ENTRIES
    assert tally.evictions == 10_000 - MAX_KEYS  # every eviction counted, oldest first
    assert next(iter(counter.keys)) == f"/tmp/{10_000 - MAX_KEYS:05d}"
    host = core.table.host
    assert host.tally.events("execs", "exe", "/tmp/09999", 60.0, 10.0) == 1
    assert host.tally.events("execs", "exe", "/tmp/00000", 60.0, 10.0) == 0  # evicted


def test_a_crash_is_an_exit_by_a_core_dump_signal() -> None:
    core = core_for("rule c: crashes(exe, 5m) > 0 or exits(exe, 5m) > 0\n")
    exe = {"exe": "/bin/x"}
    events: list[t.Event] = [proc(0.0, 1, 0, "init")]
    endings: list[dict[str, int]] = [{"signal": 11}, {"signal": 6}, {"signal": 13},
                                     {"signal": 15}, {"code": 1}, {"code": 0}, {}]
    for i, ending in enumerate(endings):
        events += [fork(1.0 + i, 10 + i, 1), execve(1.0 + i, 10 + i, "x", **exe),
                   exit_(1.5 + i, 10 + i, **ending)]
    core.feed(events)
    tally = core.table.host.tally
    assert tally.events("crashes", "exe", "/bin/x", 300.0, 10.0) == 2  # SEGV, ABRT
    assert tally.events("exits", "exe", "/bin/x", 300.0, 10.0) == 7
    assert tally.events("crashes", "exe", None, 300.0, 10.0) is None  # no exe: no count


def test_an_event_is_counted_as_it_is_applied() -> None:
    """What an event rule evaluated at the third crash reads: 3, before any tick."""
    core = core_for("rule c: crashes(comm, 1m) >= 3\n", tick=60.0)
    core.feed([proc(0.0, 1, 0, "init")])
    tally = core.table.host.tally
    for i in range(3):
        ts = 1.0 + i
        core.feed([fork(ts, 10 + i, 1), execve(ts, 10 + i, "app"), exit_(ts, 10 + i, signal=11)])
        assert tally.events("crashes", "comm", "app", 60.0, ts) == i + 1
    assert core.ticks == 1  # only the tick at 0 s has run


# ---- count(EXPR) ---------------------------------------------------------------------------------


def counted_calls(core: Core) -> list[int]:
    """Wrap the count's condition: the pids it is judged on, in order."""
    calls: list[int] = []
    tally = core.evaluator.tally
    (term,) = tally.terms

    def judged(p: Any, h: Any, now: float) -> bool:
        calls.append(p.pid)
        return term.cond(p, h, now)

    tally.terms = (attrs.evolve(term, cond=judged),)
    return calls


def test_count_judges_only_the_processes_that_changed() -> None:
    core = core_for('rule sshd_missing: count(comm == "sshd") == 0 for 30s\n', tick=1.0)
    calls = counted_calls(core)
    events: list[t.Event] = [proc(0.0, 1, 0, "init")]
    events += [proc(0.0, 100 + i, 1, "sshd" if i == 7 else "worker") for i in range(1000)]
    core.feed(events)
    core.run_until(0.0)
    assert len(calls) == 1001  # every process once, when it appears
    assert core.table.host.tally.count('count(comm == "sshd")') == 1
    calls.clear()
    core.feed([sample(float(s), 100 + i, cpu_pct=5.0) for s in (1, 2, 3) for i in range(1000)])
    core.run_until(3.0)
    assert calls == []  # cpu samples do not change a comm: nobody is judged again
    core.feed([execve(4.0, 107, "sleep")])  # sshd's pid becomes something else
    core.run_until(60.0)
    assert calls == [107]
    assert transitions(core.drain()) == [(4.0, "sshd_missing", "pending", None),
                                         (34.0, "sshd_missing", "firing", None)]
    assert core.ticks == 61


def test_count_over_a_parent_field_follows_the_parent() -> None:
    core = core_for('rule r: count(parent.comm == "nginx") >= 2\n')
    core.feed([proc(0.0, 1, 0, "init"), proc(0.0, 10, 1, "nginx"), proc(0.0, 11, 10, "w"),
               proc(0.0, 12, 10, "w")])
    core.finish()
    core.feed([execve(1.0, 10, "apache2")])  # the children are unchanged; their parent is not
    core.finish()
    out = transitions(core.drain())
    assert out == [(0.0, "r", "firing", None), (1.0, "r", "resolved", None, "cleared")]


def test_a_new_plan_counts_every_live_process() -> None:
    core = core_for("rule a: procs > 0\n")
    core.feed([proc(0.0, 1, 0, "init"), proc(0.0, 10, 1, "sshd")])
    core.finish()
    resolved = core.replace_plan(compile_text('rule b: count(comm == "sshd") == 1\n'))
    assert transitions(resolved) == [(0.0, "a", "resolved", None, "reloaded")]
    core.feed([sample(1.0, 10, cpu_pct=1.0)])  # sshd was there before the plan: counted
    core.finish()
    assert transitions(core.drain()) == [(0.0, "a", "firing", None), (0.5, "b", "firing", None)]


# ---- random streams ----------------------------------------------------------------------------

ATOMS = ['count(comm == "a") == 0', 'count(comm == "b") >= 2', "count(age_s > 20) > 1",
         'count(parent.comm == "a") > 0', "execs(exe, {w}) > 2", "exits(comm, {w}) >= 2",
         "crashes(exe, {w}) >= 1", "crashes(uid, {w}) > 1 and cpu_pct > 10"]
WINDOWS = ["1s", "10s", "1m"]


@st.composite
def rule_sets(draw: st.DrawFn) -> str:
    rules = []
    for i in range(draw(st.integers(1, 3))):
        atoms = draw(st.lists(st.sampled_from(ATOMS), min_size=1, max_size=2))
        when = " or ".join(f"({a.format(w=draw(st.sampled_from(WINDOWS)))})" for a in atoms)
        hold = draw(st.sampled_from(["", " for 3s"]))
        message = ' message "{count(comm == \\"b\\")} {crashes(exe, 1m)}"' if (
            "exe" in when and draw(st.booleans())) else ""
        rules.append(f"rule r{i} {{ when {when}{hold}{message} }}")
    return "\n".join(rules)


@st.composite
def streams(draw: st.DrawFn) -> list[t.Event]:
    ts = 0.0
    events: list[t.Event] = [t.Proc(ts=0.0, pid=1, ppid=0, comm="init", start=0.0)]
    for _ in range(draw(st.integers(1, 40))):
        ts = round(ts + draw(st.sampled_from([0.0, 0.001, 0.4, 1.0, 7.0, 45.0])), 6)
        pid = draw(st.integers(2, 8))
        kind = draw(st.sampled_from(["fork", "exec", "exec", "exit", "sample", "proc"]))
        comm = draw(st.sampled_from(["a", "b", "c"]))
        if kind == "fork":
            events.append(t.Fork(ts=ts, pid=pid, ppid=draw(st.integers(1, 8)), comm=comm,
                                 uid=draw(st.sampled_from([None, 0, 1000]))))
        elif kind == "exec":
            events.append(t.Exec(ts=ts, pid=pid, comm=comm,
                                 exe=draw(st.sampled_from([None, "/bin/a", "/bin/b"]))))
        elif kind == "exit":
            events.append(t.Exit(ts=ts, pid=pid, code=draw(st.sampled_from([None, 0, 1])),
                                 signal=draw(st.sampled_from([None, 11, 13, 6]))))
        elif kind == "sample":
            events.append(t.Sample(ts=ts, pid=pid, cpu_pct=draw(st.sampled_from([1.0, 50.0]))))
        else:
            events.append(t.Proc(ts=ts, pid=pid, ppid=1, comm=comm, start=ts - 30.0))
    return events


@functools.cache
def compiled(text: str) -> Plan:
    return compile_text(text)


def outcome(plan: Plan, batches: list[list[t.Event]], skip: bool) -> tuple[Any, ...]:
    core = Core(plan, 0.5, skip_idle=skip)
    with no_hang(60):
        for batch in batches:
            core.feed(batch)
        core.finish()
    rows = [orjson.dumps(o.to_json()) for o in core.drain()]
    errors = {s.rule.name: s.errors for s in core.evaluator.rules}
    return rows, core.ticks, errors, core.evaluator.tally.errors


@settings(max_examples=150)
@given(streams(), rule_sets(), st.integers(0, 40))
def test_random_streams_never_raise_and_skipping_or_splitting_changes_nothing(
        events: list[t.Event], rules: str, cut: int) -> None:
    plan = compiled(rules)
    every = outcome(plan, [events], skip=False)
    assert set(every[2].values()) <= {0} and every[3] == 0  # no condition ever raised
    assert outcome(plan, [events], skip=True) == every
    assert outcome(plan, [events[:cut], events[cut:]], skip=True) == every


def test_an_exit_observed_before_the_table_applies_it_is_counted_once() -> None:
    """The hook for code evaluating at an exit while the process is still in the table."""
    core = core_for("rule c: exits(exe, 1m) > 0\n")
    core.feed([proc(0.0, 1, 0, "init"), proc(0.0, 10, 1, "x", exe="/bin/x")])
    tally = core.table.host.tally
    ev = exit_(1.0, 10, signal=11)
    tally.observe(ev, core.table.procs[10])
    assert tally.events("exits", "exe", "/bin/x", 60.0, 1.0) == 1
    core.feed([ev])
    assert tally.events("exits", "exe", "/bin/x", 60.0, 1.0) == 1  # not twice


def test_the_table_handlers_count_only_while_a_counter_needs_them() -> None:
    """A plan that reads no event counter pays nothing per exec or exit; a reload that
    adds one counts from then on, and one that drops it unwraps the handlers again."""
    core = core_for('rule r: comm == "x"\n')
    table = core.table
    plain = (table.handlers[t.Exec], table.handlers[t.Exit])
    assert plain == (table._exec, table._exit)
    counting = "rule c: execs(exe, 1m) > 1\n"
    core.replace_plan(compile_text(counting))
    assert (table.handlers[t.Exec], table.handlers[t.Exit]) != plain
    core.feed([proc(0.0, 1, 0, "init"), execve(1.0, 1, "x", exe="/bin/x")])
    assert table.host.tally.events("execs", "exe", "/bin/x", 60.0, 1.0) == 1
    core.replace_plan(compile_text('rule r: comm == "x"\n'))
    assert (table.handlers[t.Exec], table.handlers[t.Exit]) == plain
    core.replace_plan(compile_text(counting))  # a new counter: it counts from now, once
    core.feed([execve(2.0, 1, "x", exe="/bin/x")])
    assert table.host.tally.events("execs", "exe", "/bin/x", 60.0, 2.0) == 1
