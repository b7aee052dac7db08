"""When the network programs are attached, and how: the plan decides, reloads switch them.

No kernel here: the loaded program is a fake that records what is attached and detached
(the live tests, tests/runtime/sources/test_netcap_live.py, attach the real ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from linnix.language.pipeline import compile_text
from linnix.plan import Plan
from linnix.runtime.sources.netcap import (
    NET_TRACEPOINTS,
    NetCapture,
    follow_plan,
    missing_tracepoints,
    net_cflags,
    wants_network,
)


class FakeBpf:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def attach_tracepoint(self, tp: bytes, fn_name: bytes) -> None:
        if tp.decode() == self.fail_on:
            raise RuntimeError(f"cannot attach {tp.decode()}")
        self.calls.append(("attach", tp.decode()))

    def detach_tracepoint(self, tp: bytes) -> None:
        self.calls.append(("detach", tp.decode()))

    def __getitem__(self, table: bytes) -> Any:
        calls = self.calls

        class Table:
            def clear(self) -> None:
                calls.append(("clear", table.decode()))

        return Table()


def _tracefs(root: Path, without: tuple[str, ...] = ()) -> str:
    for tp, _fn in NET_TRACEPOINTS:
        if tp not in without:
            (root / "events" / tp.replace(":", "/")).mkdir(parents=True)
    return str(root)


def _plan(**changes: Any) -> Plan:
    """A plan of one rule, changed as a plan reading network names would be."""
    plan = compile_text("rule hot: cpu_pct > 50")
    return attrs.evolve(plan, rules=(attrs.evolve(plan.rules[0], **changes),))


def test_no_network_name_no_capture() -> None:
    assert not wants_network(compile_text("rule hot: cpu_pct > 50 and comm == \"nc\""))
    assert not wants_network(compile_text(""))


@pytest.mark.parametrize("changes", [
    {"trigger": "connect"}, {"trigger": "accept"}, {"trigger": "listen"},
    {"inputs": ("remote_port",)}, {"inputs": ("comm", "parent.family")},
    {"inputs": ("avg(connects_per_sec, 1m)",)}, {"inputs": ("subtree_connects_per_sec",)},
    {"windows": (("accepts_per_sec", 60.0),)}, {"inputs": ("listen_ports",)},
])
def test_a_rule_reading_the_network_wants_it(changes: dict[str, Any]) -> None:
    assert wants_network(_plan(**changes))
    # ... unless it is disabled
    assert not wants_network(_plan(enabled=False, **changes))


def test_names_that_only_contain_a_network_name_do_not_count() -> None:
    assert not wants_network(_plan(trigger="exec", inputs=("remote_port_x", "my_family")))
    assert not wants_network(_plan(inputs=("sockets",)))  # read from /proc, no capture


def test_attached_exits_first_and_detached_entries_first(tmp_path: Path) -> None:
    bpf = FakeBpf()
    net = NetCapture(bpf, _tracefs(tmp_path))
    net.attach()
    net.attach()  # already attached: nothing more
    assert net.on
    # the calls left under way by an earlier detach are forgotten first
    assert bpf.calls.pop(0) == ("clear", "netpending")
    tps = [tp for _how, tp in bpf.calls]
    assert tps == [tp for tp, _fn in NET_TRACEPOINTS]
    first_entry = min(i for i, tp in enumerate(tps) if "enter" in tp)
    assert all("exit" in tp for tp in tps[:first_entry])
    bpf.calls.clear()
    net.detach()
    assert not net.on and bpf.calls == [("detach", tp) for tp in reversed(tps)]


def test_a_missing_tracepoint_is_skipped_and_said(tmp_path: Path) -> None:
    without = ("syscalls:sys_enter_accept", "syscalls:sys_exit_accept")
    tracefs = _tracefs(tmp_path, without)
    assert missing_tracepoints(tracefs) == ["syscalls:sys_exit_accept",
                                            "syscalls:sys_enter_accept"]
    assert net_cflags(tracefs) == []
    bpf = FakeBpf()
    NetCapture(bpf, tracefs).attach()
    assert {tp for how, tp in bpf.calls if how == "attach"} == {
        tp for tp, _ in NET_TRACEPOINTS} - set(without)


def test_accept_is_compiled_in_when_the_kernel_has_it(tmp_path: Path) -> None:
    assert net_cflags(_tracefs(tmp_path)) == ["-DHAVE_ACCEPT"]


def test_an_attach_that_fails_leaves_nothing_attached(tmp_path: Path) -> None:
    bpf = FakeBpf(fail_on="syscalls:sys_enter_connect")
    net = NetCapture(bpf, _tracefs(tmp_path))
    with pytest.raises(RuntimeError):
        net.attach()
    attached = [tp for how, tp in bpf.calls if how == "attach"]
    assert attached and [tp for how, tp in bpf.calls if how == "detach"] == attached[::-1]
    assert not net.on


class Source:
    def __init__(self, net: NetCapture) -> None:
        self.net = net


def test_a_reload_switches_the_capture_to_what_the_rules_read(tmp_path: Path) -> None:
    bpf = FakeBpf()
    source = Source(NetCapture(bpf, _tracefs(tmp_path)))
    assert follow_plan(source, _plan(trigger="connect")) is None
    assert source.net.on
    assert follow_plan(source, _plan(trigger="connect")) is None  # no change: no calls
    assert len(bpf.calls) == 1 + len(NET_TRACEPOINTS)
    assert follow_plan(source, compile_text("rule hot: cpu_pct > 50")) is None
    assert not source.net.on
    # a source without a capture (netlink, /proc polling) has nothing to switch
    assert follow_plan(object(), _plan(trigger="connect")) is None


def test_a_reload_that_cannot_attach_says_so(tmp_path: Path) -> None:
    source = Source(NetCapture(FakeBpf(fail_on="syscalls:sys_exit_listen"), _tracefs(tmp_path)))
    problem = follow_plan(source, _plan(trigger="listen"))
    assert problem == "network capture did not attach: cannot attach syscalls:sys_exit_listen"
    assert not source.net.on


def test_open_source_asks_the_ebpf_source_for_the_network(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from linnix.procfs import Clock
    from linnix.runtime import sources
    from linnix.runtime.sources import bcc

    asked: list[bool] = []

    class Fake:
        name = "ebpf"

        def __init__(self, clock: Clock, ring_pages: int, network: bool = False) -> None:
            asked.append(network)

    monkeypatch.setattr(bcc, "BpfSource", Fake)
    sources.open_source(Clock(), prefer="ebpf", network=True)
    sources.open_source(Clock(), prefer="ebpf")
    assert asked == [True, False]


def test_without_ebpf_the_network_is_said_to_be_unseen() -> None:
    from linnix.procfs import Clock
    from linnix.runtime import sources

    said: list[str] = []
    sources.open_source(Clock(), prefer="poll", warn=said.append, network=True).close()
    assert said == ["no connect, accept or listen events without eBPF"]
    said.clear()
    sources.open_source(Clock(), prefer="poll", warn=said.append).close()
    assert said == []
