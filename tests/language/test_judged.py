"""``boundary EXPR``: what the checker accepts, what it reports, what the compiler makes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from support import codes, only, plan, rule

from linnix.names import Need


def subtree_rule(*clauses: str, when: str = "subtree_cpu_pct > 90") -> str:
    return "rule r {\n when " + when + "\n" + "".join(f" {c}\n" for c in clauses) + "}\n"


def test_a_boundary_compiles_to_one_set_of_totals_per_distinct_condition() -> None:
    text = ('let shells = ["bash", "sh"]\n'
            + subtree_rule("boundary comm in shells", "boundary uid == 0").replace(
                "rule r", "rule a")
            + subtree_rule("boundary uid == 0", "boundary comm in shells").replace(
                "rule r", "rule b")
            + subtree_rule('boundary comm == "sh"').replace("rule r", "rule c")
            + "rule plain: subtree_cpu_pct > 90\n")
    p = plan(text)
    assert [b.text for b in p.boundaries] == [
        '(comm in ["bash", "sh"]) or (uid == 0)', 'comm == "sh"']
    a, b, c, plain = p.rules
    assert a.boundary == b.boundary == p.boundaries[0] and c.boundary == p.boundaries[1]
    assert [p.boundary_index(r) for r in p.rules] == [0, 0, 1, None]
    assert plain.boundary is None
    # the rule reads its totals within its walls; the plain rule, the plain totals
    source = p.generated["t.lnx"]
    assert "cond_a = lambda p, h, now: ((p.bounded[0].sub_cpu_pct) > 90.0)" in source
    assert "cond_c = lambda p, h, now: ((p.bounded[1].sub_cpu_pct) > 90.0)" in source
    assert "cond_plain = lambda p, h, now: (p.sub_cpu_pct > 90.0)" in source
    wall = p.boundaries[0].wall

    class Proc:
        comm, uid = "sh", 1000

    assert wall(Proc(), None, 0.0)
    Proc.comm = "make"
    assert not wall(Proc(), None, 0.0)


def test_a_message_reads_the_totals_the_rule_reads() -> None:
    r = rule(subtree_rule('boundary comm == "sh"', 'message "{subtree_procs} {comm}"'))
    assert r.boundary is not None and r.boundary.text == 'comm == "sh"'

    totals = SimpleNamespace(sub_cpu_pct=95.0, sub_procs=2)
    proc = SimpleNamespace(comm="x", pid=5, sub_cpu_pct=10.0, sub_procs=9, bounded=[totals])
    assert r.values(proc, None, 0.0) == {"subtree_cpu_pct": 95.0, "subtree_procs": 2,
                                           "comm": "x"}


def test_what_a_boundary_reads_is_collected() -> None:
    r = rule(subtree_rule('boundary cmdline startswith "tmux"'))
    assert Need.CMDLINE in r.needs and Need.SUBTREE in r.needs


@pytest.mark.parametrize("field", ["comm", "exe", "cmdline", "uid", "pid"])
def test_a_boundary_may_read_what_a_process_is(field: str) -> None:
    value = "0" if field in ("uid", "pid") else '"x"'
    assert codes(subtree_rule(f"boundary {field} == {value}")) == []


@pytest.mark.parametrize(("clause", "code", "message"), [
    ("boundary comm", "E302", "a 'boundary' must be true or false, got string"),
    ("boundary cpu_pct > 5", "E608",
     "a 'boundary' may read only comm, exe, cmdline, uid and pid, not 'cpu_pct'"),
    ("boundary subtree_procs > 5", "E608",
     "a 'boundary' may read only comm, exe, cmdline, uid and pid, not 'subtree_procs'"),
    ('boundary comm == "sh" or parent.comm == "tmux: server"', "E608",
     "a 'boundary' may read only comm, exe, cmdline, uid and pid, not 'parent.comm'"),
    ("boundary host_cpu_pct > 5", "E608",
     "a 'boundary' may read only comm, exe, cmdline, uid and pid, not 'host_cpu_pct'"),
    ("boundary max(cpu_pct, 5s) > 5", "E608",
     "a 'boundary' may read only comm, exe, cmdline, uid and pid, not 'max(cpu_pct, 5s)'"),
    ("boundary nosuch", "E201", "unknown name 'nosuch'"),
])
def test_bad_boundaries(clause: str, code: str, message: str) -> None:
    d = only(subtree_rule(clause), code)
    assert d.message == message


@pytest.mark.parametrize(("when", "message"), [
    ("cpu_pct > 90", "'boundary' in rule 'r', which is not a subtree rule "
                     "(its scope is process)"),
    ("host_cpu_pct > 90", "'boundary' in rule 'r', which is not a subtree rule "
                          "(its scope is system)"),
])
def test_e607_a_boundary_outside_a_subtree_rule(when: str, message: str) -> None:
    d = only(subtree_rule('boundary comm == "sh"', when=when), "E607")
    assert d.message == message
    assert d.span.text == 'boundary comm == "sh"'


@pytest.mark.parametrize(("when", "bounded", "plain"), [
    ("subtree_forks_per_sec > 5", "p.bounded[0].sub_forks.count(now)",
     "p.sub_forks.count(now)"),
    ("avg(subtree_cpu_pct, 10s) > 5", "p.win_avg('subtree_cpu_pct@0', 10.0, now)",
     "p.win_avg('subtree_cpu_pct', 10.0, now)"),
    ("max(subtree_forks_per_sec, 15s) < 1", "p.win_max('subtree_forks_per_sec@0', 15.0, now)",
     "p.win_max('subtree_forks_per_sec', 15.0, now)"),
])
def test_every_subtree_metric_and_window_is_read_within_the_walls(
        when: str, bounded: str, plain: str) -> None:
    text = subtree_rule('boundary comm == "sh"', when=when) + subtree_rule(
        when=when).replace("rule r", "rule plain")
    p = plan(text)
    source = p.generated["t.lnx"]
    cond, plain_cond = (line for line in source.splitlines() if line.startswith("cond_"))
    assert bounded in cond and plain not in cond
    assert plain in plain_cond and "bounded" not in plain_cond


def test_a_window_within_walls_is_kept_apart_from_the_plain_one() -> None:
    text = (subtree_rule('boundary comm == "sh"', when="max(subtree_forks_per_sec, 15s) < 1")
            + subtree_rule("boundary uid == 0", when="max(subtree_forks_per_sec, 5s) < 1"
                           ).replace("rule r", "rule u")
            + "rule plain: max(subtree_forks_per_sec, 15s) > 9 and avg(cpu_pct, 5s) > 1\n")
    p = plan(text)
    assert [(w.name, w.span_s) for w in p.window_metrics] == [
        ("cpu_pct", 5.0), ("subtree_forks_per_sec", 15.0),
        ("subtree_forks_per_sec@0", 15.0), ("subtree_forks_per_sec@1", 5.0)]
    read = {w.name: w.read for w in p.window_metrics}
    walls = [SimpleNamespace(sub_forks=SimpleNamespace(count=lambda now, n=n: n))
             for n in (3, 4)]
    record = SimpleNamespace(sub_forks=SimpleNamespace(count=lambda now: 9), bounded=walls)
    assert [read[k](record, None, 0.0) for k in (
        "subtree_forks_per_sec", "subtree_forks_per_sec@0", "subtree_forks_per_sec@1")] == [
        9, 3, 4]


def test_a_message_shows_the_fork_rate_within_the_walls() -> None:
    p = plan(subtree_rule('boundary comm == "sh"', 'message "{subtree_forks_per_sec} forks"'))
    assert codes(subtree_rule('boundary comm == "sh"',
                              'message "{subtree_forks_per_sec} forks"')) == []
    assert "'subtree_forks_per_sec': p.bounded[0].sub_forks.count(now)" in p.generated["t.lnx"]
