"""Every registry metric, read through compiled rules, with exact values.

One scenario (a small process tree with samples, a short job and host
telemetry) is applied to a process table; for each metric of
``linnix.names.METRICS`` a compiled rule condition must hold on it and the
rule's ``values`` getter must report the exact value.  Rates, the 60 s lost
window and windowed functions are then checked over time through the engine.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import (
    alerts,
    execve,
    exit_,
    fork,
    lost,
    only_rule,
    proc,
    run,
    sample,
    system,
    table_of,
    transitions,
)

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.language.pipeline import compile_text
from linnix.names import EXIT_NAMES, METRICS, NET_NAMES, Scope

NOW = 2.5
SESSION = "/user.slice/user-1000.slice/session-3.scope"
CONTAINER = "/system.slice/docker-" + "3f4e5a6b7c8d" * 5 + "3f4e.scope"
SCENARIO: list[t.Event] = [
    proc(0.0, 1, 0, "init", exe="/sbin/init", uid=0, start=0.0),
    proc(0.0, 50, 1, "sshd", exe="/usr/sbin/sshd", uid=0, start=0.0),
    fork(1.0, 100, 50, "sshd", uid=1000, user="alice"),
    execve(1.001, 100, "bash", exe="/usr/bin/bash", argv=["bash", "-l"], cgroup=SESSION),
    fork(2.0, 200, 100, "bash"),
    execve(2.1, 200, "make", exe="/usr/bin/make", argv=["make", "-j2"], cgroup=CONTAINER),
    fork(2.25, 201, 100, "bash"),
    exit_(2.5, 201, code=0),  # lived 0.25 s: a short job
    sample(2.5, 100, cpu_pct=12.5, rss_kb=5120, fds=30, fd_limit=120, threads=3),
    sample(2.5, 200, cpu_pct=40.0, rss_kb=1024, fds=10, fd_limit=1024, threads=1),
    system(2.5, cpu_pct=45.0, ncpu=2, mem_total_kb=8 * 1024 * 1024,
           mem_available_kb=2 * 1024 * 1024, psi_cpu_some=3.25, psi_mem_some=1.5,
           psi_mem_full=0.5, psi_io_some=2.5, psi_io_full=0.25),
    lost(2.5, 12),
    # network events: bash listens, then accepts; make (its child) connects out
    t.Listen(ts=1.5, pid=100, family="inet", local_port=22),
    t.Listen(ts=1.6, pid=100, family="inet6", local_port=2222),
    t.Listen(ts=1.7, pid=100, family="inet", local_port=22),  # once in the list
    t.Connect(ts=1.4, pid=200, family="inet", remote_addr="10.0.0.1", remote_port=80),
    t.Connect(ts=2.2, pid=200, family="inet", remote_addr="10.0.0.1", remote_port=80),
    t.Connect(ts=2.3, pid=200, family="inet", remote_addr="10.0.0.2", remote_port=443),
    t.Accept(ts=2.4, pid=100, family="inet", remote_addr="192.0.2.7", remote_port=50000,
             local_port=22),
    sample(2.5, 100, sockets=4),
]

# metric -> (condition, pid of the instance or None for the host, exact value at NOW).
# Rates count the trailing second (1.5, 2.5]: forks at 2.0 and 2.25, the exec at
# 2.1 (the one at 1.001 has left), the exit at 2.5.
EXPECTED: dict[str, tuple[str, int | None, Any]] = {
    "host_cpu_pct": ("host_cpu_pct == 45", None, 45.0),
    "host_mem_used_pct": ("host_mem_used_pct == 75%", None, 75.0),
    "mem_available_mb": ("mem_available_mb == 2GiB", None, 2048.0),
    "mem_total_mb": ("mem_total_mb == 8GiB", None, 8192.0),
    "procs": ("procs == 4", None, 4),
    "forks_per_sec": ("forks_per_sec == 2", None, 2),
    "execs_per_sec": ("execs_per_sec == 1", None, 1),
    "exits_per_sec": ("exits_per_sec == 1", None, 1),
    "short_jobs_per_sec": ("short_jobs_per_sec == 1", None, 1),
    "psi_cpu_some": ("psi_cpu_some == 3.25", None, 3.25),
    "psi_mem_some": ("psi_mem_some == 1.5", None, 1.5),
    "psi_mem_full": ("psi_mem_full == 0.5", None, 0.5),
    "psi_io_some": ("psi_io_some == 2.5", None, 2.5),
    "psi_io_full": ("psi_io_full == 0.25", None, 0.25),
    "lost_events": ("lost_events == 12", None, 12),
    "ncpu": ("ncpu == 2", None, 2),
    "pid": ("pid == 100", 100, 100),
    "ppid": ("ppid == 50", 100, 50),
    "comm": ('comm == "bash"', 100, "bash"),
    "exe": ('exe == "/usr/bin/bash"', 100, "/usr/bin/bash"),
    "cmdline": ('cmdline == "bash -l"', 100, "bash -l"),
    "uid": ("uid == 1000", 100, 1000),
    "user": ('user == "alice"', 100, "alice"),
    "cgroup": (f'cgroup == "{SESSION}"', 100, SESSION),
    "unit": ('unit == "session-3.scope"', 100, "session-3.scope"),
    "container": ('container == "3f4e5a6b7c8d"', 200, "3f4e5a6b7c8d"),
    "age_s": ("age_s == 1.5s", 100, 1.5),
    "cpu_pct": ("cpu_pct == 12.5", 100, 12.5),
    "rss_mb": ("rss_mb == 5MiB", 100, 5.0),
    "fds": ("fds == 30", 100, 30),
    "fd_limit": ("fd_limit == 120", 100, 120),
    "fd_pct": ("fd_pct == 25%", 100, 25.0),
    "threads": ("threads == 3", 100, 3),
    "children": ("children == 1", 100, 1),
    "child_forks_per_sec": ("child_forks_per_sec == 2", 100, 2),
    "child_short_jobs_per_sec": ("child_short_jobs_per_sec == 1", 100, 1),
    "ancestors": ('"sshd" in ancestors', 100, ("sshd", "init")),
    "subtree_cpu_pct": ("subtree_cpu_pct == 52.5", 100, 52.5),
    "subtree_rss_mb": ("subtree_rss_mb == 6MiB", 100, 6.0),
    "subtree_procs": ("subtree_procs == 2", 100, 2),
    "subtree_fds": ("subtree_fds == 40", 100, 40),
    "subtree_forks_per_sec": ("subtree_forks_per_sec == 2", 50, 2),
    # the connect at 1.4 has left the trailing second (1.5, 2.5]
    "connects_per_sec": ("connects_per_sec == 2", 200, 2),
    "accepts_per_sec": ("accepts_per_sec == 1", 100, 1),
    "listen_ports": ("2222 in listen_ports", 100, (22, 2222)),
    "sockets": ("sockets == 4", 100, 4),
    "subtree_connects_per_sec": ("subtree_connects_per_sec == 2", 50, 2),
}


def test_every_metric_is_covered() -> None:
    # the names of an exit, or of a network event, are read at that event only:
    # tests/engine/test_events.py and tests/engine/test_net.py have their exact values
    assert set(EXPECTED) | set(CG_EXPECTED) == set(METRICS) - EXIT_NAMES - set(NET_NAMES)


# cgroup metric -> (condition, exact value) for the cgroup of CG_SAMPLE
CG_SAMPLE = t.Cgroup(ts=2.5, cgroup=CONTAINER, id=4242, procs=3, cpu_pct=150.0, mem_mb=900.0,
                     mem_max_mb=1200.0, swap_mb=8.0, psi_cpu_some=1.25, psi_mem_some=20.5,
                     psi_mem_full=10.25, psi_io_some=0.75, oom_kills=2)
CG_EXPECTED: dict[str, tuple[str, Any]] = {
    "cg_procs": ("cg_procs == 3", 3),
    "cg_cpu_pct": ("cg_cpu_pct == 150%", 150.0),
    "cg_mem_mb": ("cg_mem_mb == 900MiB", 900.0),
    "cg_mem_max_mb": ("cg_mem_max_mb == 1200MiB", 1200.0),
    "cg_mem_pct": ("cg_mem_pct == 75%", 75.0),
    "cg_swap_mb": ("cg_swap_mb == 8MiB", 8.0),
    "cg_psi_cpu_some": ("cg_psi_cpu_some == 1.25", 1.25),
    "cg_psi_mem_some": ("cg_psi_mem_some == 20.5", 20.5),
    "cg_psi_mem_full": ("cg_psi_mem_full == 10.25", 10.25),
    "cg_psi_io_some": ("cg_psi_io_some == 0.75", 0.75),
    "cg_oom_kills": ("cg_oom_kills == 2", 2),
}


@pytest.mark.parametrize("name", sorted(CG_EXPECTED))
def test_cgroup_metric_value(name: str) -> None:
    condition, expected = CG_EXPECTED[name]
    rule = only_rule(compile_text(f"rule r: {condition} and container == \"3f4e5a6b7c8d\"\n"))
    assert rule.scope is Scope.CGROUP
    table = table_of([*SCENARIO, CG_SAMPLE])
    cg = table.cgroups.by_id[4242]
    assert rule.cond(cg, table.host, NOW) is True
    value = rule.values(cg, table.host, NOW)[name]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metric_value(name: str) -> None:
    condition, pid, expected = EXPECTED[name]
    plan = compile_text(f"rule r: {condition}\n")
    rule = only_rule(plan)
    assert rule.scope is METRICS[name].scope
    table = table_of(SCENARIO, subtree=plan.needs_subtree,
                     subtree_forks="subtree_forks_per_sec" in plan.metrics,
                     subtree_connects="subtree_connects_per_sec" in plan.metrics)
    p = table.procs[pid] if pid is not None else None
    assert rule.cond(p, table.host, NOW) is True
    value = rule.values(p, table.host, NOW)[name]
    assert value == expected and type(value) is type(expected)


def test_parent_fields_read_the_parent() -> None:
    rule = only_rule(compile_text('rule r: parent.comm == "sshd" and parent.pid == 50\n'))
    table = table_of(SCENARIO)
    p = table.procs[100]
    assert rule.cond(p, table.host, NOW) is True
    assert rule.values(p, table.host, NOW) == {
        "parent.comm": "sshd", "parent.pid": 50, "comm": "bash", "pid": 100}
    assert rule.cond(table.procs[1], table.host, NOW) is False  # no parent: no value


def test_a_metric_with_no_sample_yet_has_no_value() -> None:
    plan = compile_text("rule r: cpu_pct < 1 or cpu_pct >= 1\nrule n: not (cpu_pct >= 1)\n")
    table = table_of(SCENARIO)
    p = table.procs[50]  # never sampled
    r, n = plan.rules
    assert r.cond(p, table.host, NOW) is False  # every comparison with no value is false
    assert n.cond(p, table.host, NOW) is True  # ... and `not` inverts that
    assert r.values(p, table.host, NOW)["cpu_pct"] is None


def test_ncpu_and_memory_total_from_the_header() -> None:
    plan = compile_text("rule r: ncpu == 4 and host_mem_used_pct == 25\n")
    out = run(plan, [system(0.0, mem_available_kb=3 * 1024 * 1024)],
              header=t.Header(version=1, ncpu=4, mem_total_kb=4 * 1024 * 1024))
    assert [(a.ts, a.state, a.values) for a in alerts(out)] == [
        (0.0, "firing", {"ncpu": 4, "host_mem_used_pct": 25.0})]


def test_mem_total_mb_from_the_header_then_from_a_system_sample() -> None:
    plan = compile_text("rule r: mem_total_mb == 4GiB\n")
    header = t.Header(version=1, mem_total_kb=4 * 1024 * 1024)
    out = run(plan, [system(0.0, cpu_pct=1.0), system(1.0, mem_total_kb=2 * 1024 * 1024)],
              header=header, until=1.0)
    assert [(a.ts, a.state, a.values) for a in alerts(out)] == [
        (0.0, "firing", {"mem_total_mb": 4096.0}),
        (1.0, "resolved", {"mem_total_mb": 2048.0})]
    # no header and no sample: the host's total is not known, so there is no value
    out = run(plan, [system(0.0, cpu_pct=1.0)])
    assert alerts(out) == []
    assert compile_text("rule r: mem_total_mb > 0\n").rules[0].values(
        None, table_of([]).host, 0.0) == {"mem_total_mb": None}


# ---- rates over time ----------------------------------------------------------------

def test_rates_count_the_half_open_trailing_second() -> None:
    rule = "rule r: forks_per_sec >= 1\n"
    # a fork exactly at a tick counts at that tick and leaves exactly one second later
    assert transitions(run(rule, [proc(0.0, 1, 0), fork(1.0, 100, 1)], until=3.0)) == [
        (1.0, "r", "firing", None), (2.0, "r", "resolved", None, "cleared")]
    # between ticks: seen at the next tick, still counted at 2.0 (1.25 > 1.0)
    assert transitions(run(rule, [proc(0.0, 1, 0), fork(1.25, 100, 1)], until=3.0)) == [
        (1.5, "r", "firing", None), (2.5, "r", "resolved", None, "cleared")]


def test_child_rates_drop_when_their_events_leave_the_window() -> None:
    rule = "rule r: child_forks_per_sec >= 2\n"
    out = run(rule, [proc(0.0, 1, 0), fork(0.0, 100, 1), fork(1.0, 101, 100),
                     fork(1.5, 102, 100)], until=4.0)
    assert transitions(out) == [(1.5, "r", "firing", 100),
                                (2.0, "r", "resolved", 100, "cleared")]


def test_lost_events_count_the_last_60_seconds() -> None:
    rule = "rule r: lost_events >= 8\n"
    out = run(rule, [lost(0.0, 5), lost(30.0, 3)], until=70.0)
    assert transitions(out) == [(30.0, "r", "firing", None),
                                (60.0, "r", "resolved", None, "cleared")]
    assert alerts(out)[1].values == {"lost_events": 3}


# ---- windows ---------------------------------------------------------------------------

WINDOWS = """
rule w_avg: avg(cpu_pct, 2s) >= 0
rule w_min: min(cpu_pct, 2s) >= 0
rule w_max: max(cpu_pct, 2s) >= 0
rule w_delta: delta(cpu_pct, 2s) >= -1000
rule w_rate: rate(cpu_pct, 2s) >= -1000
"""


def window_values(times: list[float]) -> dict[float, dict[str, object]]:
    """Windowed values of pid 100 after the ticks up to each time.

    Windows record the value each tick sees: 10 at 0.0, 30 at 1.0, 20 at 2.5.
    """
    plan = compile_text(WINDOWS)
    core = Core(plan, 0.5)
    core.feed([proc(0.0, 1, 0), fork(0.0, 100, 1), sample(0.0, 100, cpu_pct=10.0),
               sample(1.0, 100, cpu_pct=30.0), sample(2.2, 100, cpu_pct=20.0)])
    out = {}
    for now in times:
        core.run_until(now)
        p = core.table.procs[100]
        out[now] = {r.name: next(iter(r.values(p, core.table.host, now).values()))
                    for r in plan.rules}
    return out


def test_windowed_functions() -> None:
    got = window_values([1.5, 2.0, 3.0, 4.5])
    names = ("w_avg", "w_min", "w_max", "w_delta", "w_rate")
    # not observed for the whole window yet: no value
    assert got[1.5] == dict.fromkeys(names)
    assert got[2.0] == {"w_avg": 20.0, "w_min": 10.0, "w_max": 30.0, "w_delta": 20.0,
                        "w_rate": 10.0}
    # [1, 3]: 30 from 1.0 to 2.5, then 20 (the sample at 2.2 is seen at the tick at 2.5)
    assert got[3.0] == {"w_avg": 27.5, "w_min": 20.0, "w_max": 30.0, "w_delta": -10.0,
                        "w_rate": -5.0}
    assert got[4.5] == {"w_avg": 20.0, "w_min": 20.0, "w_max": 20.0, "w_delta": 0.0,
                        "w_rate": 0.0}


def test_a_window_moves_with_no_event_when_an_old_value_leaves_it() -> None:
    rule = "rule r: max(cpu_pct, 2s) > 25\n"
    out = run(rule, [proc(0.0, 1, 0), fork(0.0, 100, 1), sample(0.0, 100, cpu_pct=10.0),
                     sample(1.0, 100, cpu_pct=30.0), sample(2.5, 100, cpu_pct=20.0)],
              until=6.0)
    assert transitions(out) == [(2.0, "r", "firing", 100),
                                (4.5, "r", "resolved", 100, "cleared")]
    assert [a.values for a in alerts(out)] == [{"max(cpu_pct, 2s)": 30.0},
                                               {"max(cpu_pct, 2s)": 20.0}]


def test_average_of_a_system_metric() -> None:
    rule = "rule r: avg(host_cpu_pct, 1s) > 50\n"
    out = run(rule, [system(0.0, cpu_pct=0.0), system(1.0, cpu_pct=100.0),
                     system(3.0, cpu_pct=0.0)], until=5.0)
    # avg over [0.5, 1.5] is 50 (not > 50); over [1, 2] it is 100; over [2.5, 3.5] 50 again
    assert transitions(out) == [(2.0, "r", "firing", None),
                                (3.5, "r", "resolved", None, "cleared")]


def test_window_over_a_rate_follows_the_rate_down() -> None:
    rule = "rule r: max(child_forks_per_sec, 2s) >= 2\n"
    out = run(rule, [proc(0.0, 1, 0), fork(0.0, 100, 1), fork(1.0, 101, 100),
                     fork(1.0, 102, 100)], until=6.0)
    # the rate is 2 during [1, 2) and 0 from 2.0: the window forgets it at 4.0
    assert transitions(out) == [(2.0, "r", "firing", 100),
                                (4.0, "r", "resolved", 100, "cleared")]


def test_window_over_age_sees_it_grow() -> None:
    rule = "rule r: delta(age_s, 2s) == 2s and pid == 100\n"
    out = run(rule, [proc(0.0, 1, 0), fork(0.0, 100, 1)], until=3.0)
    assert transitions(out) == [(2.0, "r", "firing", 100)]


def test_windows_of_subtree_metrics() -> None:
    rule = "rule r: delta(subtree_procs, 1s) >= 2\n"
    out = run(rule, [proc(0.0, 1, 0), fork(0.0, 100, 1), fork(1.0, 101, 100),
                     fork(1.0, 102, 101)], until=3.0)
    # pid 1 and pid 100 both grew by 2 at 1.0; only the deeper one reports
    assert transitions(out) == [(1.0, "r", "firing", 100),
                                (2.0, "r", "resolved", 100, "cleared")]


def test_window_scope_follows_the_metric() -> None:
    assert only_rule(compile_text("rule r: avg(host_cpu_pct, 5s) > 1\n")).scope is Scope.SYSTEM
    assert only_rule(compile_text("rule r: avg(rss_mb, 5s) > 1\n")).scope is Scope.PROCESS


def test_the_registry_says_what_each_subtree_metric_adds_up() -> None:
    from linnix.names import METRICS, Scope

    added = {m.name: m.adds_up for m in METRICS.values() if m.scope is Scope.SUBTREE}
    assert added == {"subtree_cpu_pct": "cpu", "subtree_rss_mb": "rss", "subtree_fds": "fds",
                     "subtree_forks_per_sec": "forks", "subtree_procs": None,
                     "subtree_connects_per_sec": "connects"}
    assert all(m.adds_up is None for m in METRICS.values() if m.scope is not Scope.SUBTREE)
