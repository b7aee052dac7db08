"""Plan requirements are exact: only what enabled rules read is computed or sampled."""

from __future__ import annotations

import pytest
from support import plan, process

from linnix.names import Need, Scope

FD_NAMES = ("fds", "fd_pct", "fd_limit")


def test_no_subtree_metric_means_no_subtree_pass() -> None:
    p = plan('rule a: cpu_pct > 90 and rss_mb > 1GiB\nrule b: host_cpu_pct > 90\n'
             'rule c: parent.comm == "sh" and avg(cpu_pct, 10s) > 1\n'
             'rule d { when cpu_pct > 1\n scope subtree }')  # declared subtree, reads none
    assert p.needs_subtree is False
    assert Need.SUBTREE not in p.needs


@pytest.mark.parametrize("text", [
    "rule r: subtree_cpu_pct > 50",
    "rule r: subtree_procs > 2",
    "rule r: subtree_forks_per_sec > 2",
    "rule r: avg(subtree_rss_mb, 10s) > 1",
    'rule r { when cpu_pct > 1\n scope subtree\n message "{subtree_procs}" }',
    "rule r { when host_cpu_pct > 1\n action kill(target = top(subtree_cpu_pct)) }",
])
def test_any_subtree_metric_needs_the_subtree_pass(text: str) -> None:
    assert plan(text).needs_subtree is True


def test_no_fd_metric_means_no_fd_sampling() -> None:
    p = plan("rule a: cpu_pct > 90\nrule b: subtree_cpu_pct > 1\nrule c: threads > 1\n"
             'rule d { when rss_mb > 1\n message "{comm} {pid} {threads}" }\n'
             "rule e { when host_cpu_pct > 1\n action kill(target = top(rss_mb)) }")
    assert p.needs_fds is False
    assert Need.FDS not in p.needs


@pytest.mark.parametrize("text", [
    *(f"rule r: {name} > 1" for name in FD_NAMES),
    "rule r: subtree_fds > 1",
    "rule r: parent.fds > 1",
    "rule r: max(fd_pct, 1m) > 1",
    'rule r { when cpu_pct > 1\n message "{fds} open" }',
    "rule r { when host_cpu_pct > 1\n action kill(target = top(fds)) }",
])
def test_any_fd_metric_needs_fd_sampling(text: str) -> None:
    assert plan(text).needs_fds is True


def test_windows_are_listed_exactly() -> None:
    p = plan("rule a: avg(cpu_pct, 10s) > 1 and max(cpu_pct, 1m) > 2\n"
             "rule b: delta(rss_mb, 10s) > 1 and rate(forks_per_sec, 5s) > 1\n"
             "rule c: avg(cpu_pct, 10000ms) > 5\n"  # the same window as rule a's
             "rule d: cpu_pct > 1")
    assert p.windows == frozenset({("cpu_pct", 10.0), ("cpu_pct", 60.0), ("rss_mb", 10.0),
                                   ("forks_per_sec", 5.0)})
    spans = {w.name: (w.scope, w.span_s) for w in p.window_metrics}
    assert spans == {"cpu_pct": (Scope.PROCESS, 60.0), "forks_per_sec": (Scope.SYSTEM, 5.0),
                     "rss_mb": (Scope.PROCESS, 10.0)}
    assert [w.name for w in p.window_metrics] == sorted(spans)
    assert p.rule("a").windows == (("cpu_pct", 10.0), ("cpu_pct", 60.0))  # type: ignore[union-attr]
    assert p.rule("d").windows == ()  # type: ignore[union-attr]


def test_window_metric_readers_read_the_current_value() -> None:
    p = plan("rule a: avg(rss_mb, 10s) > 1")
    (w,) = p.window_metrics
    assert w.read(process(rss_mb=12.5), None, 0.0) == 12.5


def test_no_windows_without_windowed_functions() -> None:
    p = plan("rule r: cpu_pct > 1 and forks_per_sec > 2")
    assert p.windows == frozenset() and p.window_metrics == ()


def test_metrics_are_exactly_what_enabled_rules_read() -> None:
    p = plan('rule a {\n when cpu_pct > 90 and parent.rss_mb > 1\n message "{comm} {threads}" }\n'
             "rule b { when host_cpu_pct > 1\n action kill(target = top(fds)) }\n"
             "rule c: avg(psi_io_some, 10s) > 1")
    assert p.metrics == frozenset({"cpu_pct", "rss_mb", "comm", "threads", "host_cpu_pct",
                                   "fds", "psi_io_some"})
    assert p.needs == frozenset({Need.CPU, Need.RSS, Need.THREADS, Need.HOST, Need.FDS,
                                 Need.PSI})


def test_disabled_rules_contribute_nothing() -> None:
    enabled = "rule on: cpu_pct > 1\n"
    disabled = ('rule off {\n when subtree_fds > 1 and avg(rss_mb, 1m) > 1 and psi_io_full > 1'
                ' and cmdline contains "x"\n'
                ' message "{threads}"\n action kill(target = top(fd_pct))\n enabled false\n}\n')
    alone = plan(enabled)
    both = plan(enabled + disabled)
    assert (both.metrics, both.windows, both.window_metrics, both.needs) == (
        alone.metrics, alone.windows, alone.window_metrics, alone.needs)
    assert both.needs_subtree is False and both.needs_fds is False
    # the disabled rule is still in the plan, checked and compiled, but not active
    assert [r.name for r in both.rules] == ["on", "off"]
    assert [r.name for r in both.active] == ["on"]
    off = both.rule("off")
    assert off is not None and not off.enabled
    assert both.by_scope(Scope.SUBTREE) == ()
    assert [r.name for r in both.by_scope(Scope.PROCESS)] == ["on"]


def test_a_plan_of_only_disabled_rules_requires_nothing() -> None:
    p = plan("rule off {\n when subtree_fds > 1 and avg(cpu_pct, 5s) > 1\n enabled false\n}")
    assert (p.metrics, p.windows, p.needs, p.active) == (frozenset(), frozenset(),
                                                        frozenset(), ())


def test_rule_requirements() -> None:
    p = plan('rule r {\n when avg(cpu_pct, 5s) > 1 and age_s > 1\n message "{fds}" }\n'
             "rule s: cmdline contains \"x\"\nrule t: pid > 1")
    r, s, t = p.rules
    assert r.needs == frozenset({Need.CPU, Need.FDS})
    assert r.time_varying is True     # windows and ages change with no event
    assert s.needs == frozenset({Need.CMDLINE}) and s.time_varying is False
    assert t.needs == frozenset() and t.time_varying is False
    assert r.inputs == ("avg(cpu_pct, 5s)", "age_s")


def test_by_scope_and_lookup() -> None:
    p = plan("rule a: host_cpu_pct > 1\nrule b: cpu_pct > 1\nrule c: subtree_procs > 1\n"
             "rule d: cg_procs > 1")
    assert [[r.name for r in p.by_scope(s)] for s in Scope] == [["a"], ["b"], ["c"], ["d"]]
    assert p.rule("b") is p.rules[1]
    assert p.rule("nope") is None
    assert p.rules[1].where == "t.lnx:2"
