"""Network events in the engine: ``on connect|accept|listen`` rules, the address operators,
and the process's network names (linnix/engine/net.py, linnix/engine/events.py)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from engine_support import alerts, core_for, exit_, fork, proc, run, transitions

from linnix.engine import trace as t
from linnix.engine.core import Core
from linnix.engine.net import ADDR_MAX, PORTS_MAX, RECENT_MAX, recent_events
from linnix.language.pipeline import compile_text
from linnix.plan import needs_network

BASE: list[t.Event] = [
    proc(0.0, 1, 0, "init", exe="/sbin/init", uid=0, start=0.0),
    proc(0.0, 100, 1, "nginx", exe="/usr/sbin/nginx", uid=33, start=0.0),
    fork(1.0, 200, 100, "sh"),
]


def connect(ts: float, pid: int, addr: str | None = "203.0.113.9", port: int | None = 443,
            family: Any = "inet") -> t.Connect:
    return t.Connect(ts=ts, pid=pid, family=family, remote_addr=addr, remote_port=port)


def accept(ts: float, pid: int, addr: str = "198.51.100.1", port: int = 50000,
           local: int = 80) -> t.Accept:
    return t.Accept(ts=ts, pid=pid, family="inet", remote_addr=addr, remote_port=port,
                    local_port=local)


def listen(ts: float, pid: int, port: int | None, family: Any = "inet") -> t.Listen:
    return t.Listen(ts=ts, pid=pid, family=family, local_port=port, local_addr="0.0.0.0")


# ---- event rules ----------------------------------------------------------------------

def test_a_connect_rule_fires_at_the_connect_with_the_events_fields() -> None:
    out = run('rule c on connect: comm == "sh" and remote_port == 4444',
              [*BASE, connect(1.5, 200, "203.0.113.9", 4444), connect(1.6, 100, port=4444),
               connect(1.7, 200, port=80)], tick=10.0)
    (a,) = alerts(out)
    assert (a.ts, a.pid, a.trigger, a.state) == (1.5, 200, "connect", "firing")
    assert a.values == {"comm": "sh", "remote_port": 4444}


@pytest.mark.parametrize(("rule", "events", "fired"), [
    ('rule r on accept: local_port == 80 and remote_addr == "198.51.100.1"',
     [accept(1.5, 100)], [(1.5, 100, "accept")]),
    ("rule r on listen: local_port == 8080", [listen(1.5, 100, 8080), listen(1.6, 100, 80)],
     [(1.5, 100, "listen")]),
    ('rule r on listen: family == "inet6"', [listen(1.5, 100, 1, "inet6"),
                                             listen(1.6, 100, 2)], [(1.5, 100, "listen")]),
    ("rule r on connect: remote_port == 1", [connect(1.5, 999, port=1)], []),  # never seen
])
def test_accept_and_listen_rules(rule: str, events: list[t.Event],
                                 fired: list[tuple[float, int, str]]) -> None:
    out = run(rule, [*BASE, *events], tick=10.0)
    assert [(a.ts, a.pid, a.trigger) for a in alerts(out)] == fired


def test_a_field_the_event_does_not_carry_has_no_value() -> None:
    out = run("rule r on connect: not (remote_port > 0)",
              [*BASE, connect(1.5, 200, None, None)], tick=10.0)
    assert [a.values for a in alerts(out)] == [{"remote_port": None}]


def test_the_rates_count_the_event_being_judged() -> None:
    out = run("rule r on connect: connects_per_sec >= 3",
              [*BASE, *[connect(ts, 200) for ts in (1.1, 1.2, 1.3, 1.4)]], tick=10.0)
    assert [a.ts for a in alerts(out)] == [1.3, 1.4]


def test_flood_control_as_for_other_event_rules() -> None:
    rules = "rule r {\n on connect\n when remote_port == 443\n cooldown 10s by comm\n}"
    core = core_for(rules)
    core.feed([*BASE, *[connect(1.1 + i / 10, 200) for i in range(5)]])
    assert [a.ts for a in alerts(core.drain())] == [1.1]
    assert core.events.states[0].suppressed["cooldown"] == 4
    out = run("rule r {\n on connect\n when remote_port == 443\n max_rate 2/s\n}",
              [*BASE, *[connect(1.1 + i / 10, 200) for i in range(5)]])
    assert len(alerts(out)) == 2


def test_a_cooldown_keyed_by_the_peer_alerts_once_per_peer() -> None:
    rules = "rule r {\n on connect\n when comm == \"sh\"\n cooldown 1m by exe, remote_addr\n}"
    core = core_for(rules)
    peers = ["203.0.113.9", "203.0.113.9", "198.51.100.7", "203.0.113.9", "198.51.100.7"]
    core.feed([*BASE, *[connect(1.1 + i / 10, 200, addr) for i, addr in enumerate(peers)]])
    assert [a.ts for a in alerts(core.drain())] == [1.1, 1.3]
    assert core.events.states[0].suppressed["cooldown"] == 3


def test_a_connect_rule_is_judged_only_at_the_ports_its_prefilter_names() -> None:
    core = core_for("rule r on connect: remote_port == 4444")
    state = core.events.states[0]
    judged: list[int] = []
    cond = state.rule.cond

    def recording(p: Any, h: object, now: float) -> bool:
        judged.append(p.remote_port)
        return bool(cond(p, h, now))

    state.rule = attrs.evolve(state.rule, cond=recording)
    core.feed([*BASE, connect(1.1, 200, port=80), connect(1.2, 200, port=4444),
               connect(1.3, 200, port=22)])
    assert [a.ts for a in alerts(core.drain())] == [1.2]
    assert (judged, state.judged, state.evaluations) == ([4444], 1, 3)


def test_an_address_reaches_the_alert_only_when_the_rule_reads_it() -> None:
    out = run("rule r on connect: remote_port == 4444",
              [*BASE, connect(1.5, 200, "203.0.113.9", 4444)], tick=10.0)
    (a,) = alerts(out)
    assert "203.0.113.9" not in str(a.to_json())
    named = run('rule r {\n on connect\n when remote_port == 4444\n'
                ' message "{comm} to {remote_addr}"\n}',
                [*BASE, connect(1.5, 200, "203.0.113.9", 4444)], tick=10.0)
    assert alerts(named)[0].message == "sh to 203.0.113.9"


# ---- in_cidr and is_private -------------------------------------------------------------

@pytest.mark.parametrize(("cidr", "addr", "inside"), [
    ("10.0.0.0/8", "10.255.0.1", True),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("10.0.0.0/8", "::ffff:10.1.2.3", True),  # a dual-stack socket's IPv4 peer
    ("10.0.0.0/8", "::a00:1", False),  # an IPv6 address is in no IPv4 network
    ("2001:db8::/32", "2001:db8:1::5", True),
    ("2001:db8::/32", "2001:db9::5", False),
    ("192.0.2.7", "192.0.2.7", True),  # a bare address: a network of one
    ("10.0.0.0/8", "/run/app.sock", False),  # a unix socket's path
    ("10.0.0.0/8", "10.0.0.1" + "0" * 5000, False),
    ("10.0.0.0/8", "", False),
])
def test_in_cidr(cidr: str, addr: str, inside: bool) -> None:
    out = run(f'rule r on connect: remote_addr in_cidr "{cidr}"',
              [*BASE, connect(1.5, 200, addr)], tick=10.0)
    assert bool(alerts(out)) is inside


@pytest.mark.parametrize(("addr", "private"), [
    ("127.0.0.1", True), ("10.1.1.1", True), ("172.16.0.1", True), ("172.31.255.255", True),
    ("172.32.0.1", False), ("192.168.1.1", True), ("100.64.0.1", True), ("169.254.1.1", True),
    ("::1", True), ("fd12::1", True), ("fe80::1", True), ("::ffff:192.168.0.1", True),
    ("8.8.8.8", False), ("2001:4860::8888", False), ("0.0.0.0", False),
    ("not an address", False), ("/tmp/x.sock", False),
])
def test_is_private(addr: str, private: bool) -> None:
    out = run("rule r on connect: remote_addr is_private",
              [*BASE, connect(1.5, 200, addr)], tick=10.0)
    assert bool(alerts(out)) is private


def test_a_missing_address_is_neither_in_a_network_nor_private() -> None:
    out = run('rule r on connect: remote_addr in_cidr "0.0.0.0/0" or remote_addr is_private '
              'or not (remote_addr is_private)', [*BASE, connect(1.5, 200, None)], tick=10.0)
    assert [a.values for a in alerts(out)] == [{"remote_addr": None}]


# ---- the process's network names --------------------------------------------------------

def test_connects_per_sec_rises_and_falls_with_ticks_skipped_or_not() -> None:
    events = [*BASE, *[connect(1.1 + i / 100, 200) for i in range(5)], proc(9.0, 300, 1, "x")]
    outs = []
    for skip in (True, False):
        core = Core(compile_text("rule r: connects_per_sec >= 5"), 0.5, skip_idle=skip)
        core.feed(events)
        core.finish()
        outs.append(transitions(core.drain()))
    assert outs[0] == outs[1]
    assert [row[:3] for row in outs[0]] == [(1.5, "r", "firing"), (2.5, "r", "resolved")]


def test_subtree_connects_count_a_child_that_exited_in_the_same_batch() -> None:
    core = core_for("rule r { when subtree_connects_per_sec >= 3\n scope subtree }")
    core.feed([*BASE, *[connect(1.1 + i / 100, 200) for i in range(3)], exit_(1.2, 200)])
    assert core.table.procs[100].sub_connects_per_sec(1.3) == 3
    assert core.table.procs[1].sub_connects_per_sec(1.3) == 3
    assert core.table.procs[100].sub_connects_per_sec(3.0) == 0


def test_subtree_connects_are_kept_only_for_a_plan_that_reads_them() -> None:
    core = core_for("rule r: connects_per_sec > 1")
    core.feed([*BASE, connect(1.1, 200)])
    assert core.table.procs[100].net is None and not core.table.net.pending


def test_listen_ports_are_bounded_and_kept_once_each() -> None:
    core = core_for("rule r: 1 in listen_ports")
    core.feed([*BASE, listen(1.0, 200, 7), listen(1.0, 200, 7), listen(1.0, 200, None),
               *[listen(1.1, 200, port) for port in range(1, PORTS_MAX + 11)]])
    ports = core.table.procs[200].listen_ports()
    assert ports == tuple(range(11, PORTS_MAX + 11))  # the oldest went, 7 with them


def test_sockets_come_from_samples() -> None:
    out = run("rule r: sockets > 3", [*BASE, t.Sample(ts=1.5, pid=200, sockets=4)])
    assert [row[1:4] for row in transitions(out)] == [("r", "firing", 200)]


def test_the_recent_events_are_kept_only_when_asked_and_bounded() -> None:
    core = core_for("rule r: connects_per_sec > 1000")
    core.feed([*BASE, connect(1.1, 200)])
    assert recent_events(core.table.procs[200]) == []
    core.table.net.recent = True
    core.feed([*[connect(1.2 + i / 1000, 200, "192.0.2.1", i) for i in range(RECENT_MAX + 5)],
               listen(1.5, 200, 8080)])
    got = recent_events(core.table.procs[200])
    assert len(got) == RECENT_MAX
    assert got[-1] == {"ts": 1.5, "kind": "listen", "family": "inet", "addr": "0.0.0.0",
                       "port": 8080}
    assert got[0]["port"] == 6 and got[0]["kind"] == "connect"
    core.feed([connect(1.6, 200, "/" + "x" * 4000, None, "unix")])  # a trace may say so
    assert recent_events(core.table.procs[200])[-1]["addr"] == "/" + "x" * (ADDR_MAX - 1)


@pytest.mark.parametrize(("rules", "needed"), [
    ("rule r: cpu_pct > 1", False),
    ('rule r on connect: comm == "sh"', True),
    ('rule r on exec: comm == "sh"', False),
    ("rule r: connects_per_sec > 1", True),
    ("rule r: 22 in listen_ports", True),
    ("rule r { when subtree_connects_per_sec > 1\n scope subtree }", True),
    ("rule r: sockets > 1", False),  # sampled from /proc, not captured
    ("rule r { on listen\n when local_port == 1\n enabled false }", False),
])
def test_needs_network(rules: str, needed: bool) -> None:
    assert needs_network(compile_text(rules)) is needed
