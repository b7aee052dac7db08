"""When the network programs are attached, and how: the plan decides, reloads switch them.

No kernel here: the loaded program is a fake that records what is attached and detached
(the live tests, tests/runtime/sources/test_netcap_live.py, attach the real ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from linnix.language.pipeline import compile_text
from linnix.plan import needs_network
from linnix.runtime.sources.netcap import (
    NET_TRACEPOINTS,
    NetCapture,
    follow_plan,
    missing_tracepoints,
    net_cflags,
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


CONNECTS = "rule r on connect: remote_port == 22"


def test_no_network_name_no_capture() -> None:
    assert not needs_network(compile_text("rule hot: cpu_pct > 50 and comm == \"nc\""))
    assert not needs_network(compile_text(""))
    assert not needs_network(compile_text("rule s: sockets > 100"))  # from /proc, no capture


@pytest.mark.parametrize("rule", [
    "rule r on connect: remote_port == 22",
    "rule r on accept: local_port == 8080",
    "rule r on listen: local_port == 8080",
    "rule r on exec: comm == \"nc\" and connects_per_sec > 5",
    "rule r: avg(connects_per_sec, 1m) > 5",
    "rule r: accepts_per_sec > 100",
    "rule r: subtree_connects_per_sec > 500",
    "rule r: parent.connects_per_sec > 5",
])
def test_a_rule_reading_the_network_needs_it(rule: str) -> None:
    assert needs_network(compile_text(rule))
    # ... unless it is disabled
    head, cond = rule.split(": ", 1)
    name, _, trigger = head.partition(" on ")
    on = f"\n    on {trigger}" if trigger else ""
    disabled = f"{name} {{{on}\n    when {cond}\n    enabled false\n}}"
    assert not needs_network(compile_text(disabled)), disabled


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
    assert follow_plan(source, compile_text(CONNECTS)) is None
    assert source.net.on
    assert follow_plan(source, compile_text(CONNECTS)) is None  # no change: no calls
    assert len(bpf.calls) == 1 + len(NET_TRACEPOINTS)
    assert follow_plan(source, compile_text("rule hot: cpu_pct > 50")) is None
    assert not source.net.on
    # a source without a capture (netlink, /proc polling) has nothing to switch
    assert follow_plan(object(), compile_text(CONNECTS)) is None


def test_a_reload_that_cannot_attach_says_so(tmp_path: Path) -> None:
    source = Source(NetCapture(FakeBpf(fail_on="syscalls:sys_exit_listen"), _tracefs(tmp_path)))
    problem = follow_plan(source, compile_text("rule r on listen: local_port == 8080"))
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
