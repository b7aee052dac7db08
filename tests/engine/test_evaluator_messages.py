"""What alerts say: ancestors and targets in messages, labels rendered per instance."""

from __future__ import annotations

from engine_support import alerts, execve, proc, proposals, run, sample, system

from linnix.plan import LABEL_MAX

# init(1) -> sshd(10) -> bash(20) -> yes(30)
TREE = [proc(0.0, 1, 0, "init", start=0.0), proc(0.0, 10, 1, "sshd", start=0.0),
        proc(0.0, 20, 10, "bash", start=0.0), proc(0.0, 30, 20, "yes", start=0.0)]


def test_ancestors_in_the_condition_and_the_message() -> None:
    rules = ('rule r { when cpu_pct > 50 and parent.parent.comm == "sshd"\n'
             ' message "{comm}[{pid}] under {parent.comm}[{parent.pid}] under '
             '{parent.parent.comm}[{parent.parent.pid}], {parent.parent.parent.parent.comm}; '
             '{ancestors}; at {cpu_pct:.1%}" }')
    out = alerts(run(rules, [*TREE, sample(1.0, 30, cpu_pct=80.0),
                             sample(1.0, 20, cpu_pct=80.0)]))
    assert [(a.pid, a.message) for a in out] == [
        (30, "yes[30] under bash[20] under sshd[10], n/a; bash, sshd, init; at 80.0%")]
    assert out[0].values == {"cpu_pct": 80.0, "parent.parent.comm": "sshd"}


def test_a_generated_message_shows_the_ancestors_read() -> None:
    out = alerts(run('rule r: cpu_pct > 50 and parent.parent.comm == "sshd"',
                     [*TREE, sample(1.0, 30, cpu_pct=80.0)]))
    assert out[0].message == "yes[30]: cpu_pct=80, parent.parent.comm=sshd"


def test_the_target_is_named_in_the_firing_alert() -> None:
    rules = ('rule r { when host_cpu_pct > 90\n clear when host_cpu_pct < 50\n'
             ' action kill(target = top(cpu_pct))\n'
             ' message "{state}: {target.comm}[{target.pid}]" }')
    events = [*TREE, sample(1.0, 30, cpu_pct=99.0), sample(1.0, 20, cpu_pct=5.0),
              system(1.0, cpu_pct=95.0), system(3.0, cpu_pct=10.0)]
    out = run(rules, events)
    assert [(a.state, a.message) for a in alerts(out)] == [
        ("firing", "firing: yes[30]"), ("resolved", "resolved: n/a[n/a]")]
    assert [(p.pid, p.comm) for p in proposals(out)] == [(30, "yes")]


def test_the_target_of_a_process_rule_is_its_instance() -> None:
    rules = 'rule r { when cpu_pct > 50\n action kill\n message "{target.comm} {target.pid}" }'
    out = alerts(run(rules, [*TREE, sample(1.0, 20, cpu_pct=99.0)]))
    assert [a.message for a in out] == ["bash 20"]


def test_no_process_to_target_leaves_the_target_without_a_value() -> None:
    rules = ('rule r { when host_cpu_pct > 90\n action kill(target = top(cpu_pct))\n'
             ' message "{target.comm}" }')
    out = run(rules, [*TREE, system(1.0, cpu_pct=95.0)])  # no cpu_pct sampled: no top
    assert [a.message for a in alerts(out)] == ["n/a"]
    assert [p.status for p in proposals(out)] == ["no_target"]


def test_labels_are_rendered_per_instance_and_kept_for_the_episode() -> None:
    rules = ('rule r { when cpu_pct > 50 for 1s\n'
             ' labels { team = "ops", program = "{comm}", shell = "{parent.comm}" } }')
    events = [*TREE, sample(1.0, 30, cpu_pct=80.0), sample(1.0, 20, cpu_pct=80.0),
              execve(2.5, 30, "python"),              # while firing: the labels stay
              sample(4.0, 30, cpu_pct=1.0), sample(4.0, 20, cpu_pct=1.0),
              sample(6.0, 30, cpu_pct=90.0)]          # a new episode: rendered again
    got = [(a.ts, a.state, a.pid, a.labels) for a in alerts(run(rules, events))]
    yes = {"team": "ops", "program": "yes", "shell": "bash"}
    bash = {"team": "ops", "program": "bash", "shell": "sshd"}
    python = {"team": "ops", "program": "python", "shell": "bash"}
    assert got == [
        (1.0, "pending", 20, bash), (1.0, "pending", 30, yes),
        (2.0, "firing", 20, bash), (2.0, "firing", 30, yes),
        (4.0, "resolved", 20, bash), (4.0, "resolved", 30, yes),
        (6.0, "pending", 30, python)]


def test_a_rendered_label_is_bounded() -> None:
    rules = 'rule r { when cpu_pct > 50\n labels { command = "{cmdline}" } }'
    events = [*TREE, execve(0.5, 30, "yes", argv=["yes", "y" * 3000]),
              sample(1.0, 30, cpu_pct=80.0)]
    (alert,) = alerts(run(rules, events))
    assert alert.labels["command"] == ("yes " + "y" * 3000)[:LABEL_MAX]


def test_labels_without_placeholders_are_the_rules_own() -> None:
    out = alerts(run('rule r { when cpu_pct > 50\n labels { team = "ops" } }',
                     [*TREE, sample(1.0, 30, cpu_pct=80.0)]))
    assert out[0].labels == {"team": "ops"}
