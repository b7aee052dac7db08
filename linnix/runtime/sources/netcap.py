"""Network capture: which tracepoints it takes, attaching them, and when it is wanted.

The programs of ``bpf/net.c`` are compiled with the process programs (they share
their ring buffer and lost-event count) but BCC attaches none of them by itself:
:class:`NetCapture` attaches them when asked and detaches them again, so a
daemon whose rules read no network name pays nothing for them (docs/network.md).
This module never imports BCC; it is handed the loaded program.
"""

from __future__ import annotations

import contextlib
import os
from importlib import resources
from typing import Any

from ...plan import Plan, needs_network

__all__ = ["NET_TRACEPOINTS", "NetCapture", "follow_plan", "missing_tracepoints", "net_cflags",
           "net_program_source"]

# (tracepoint, program), the exits before their entries: attached in this order, an
# entry never leaves a call waiting for an exit that is not there yet (and detached
# the other way round); first of all the end of a thread, which removes its entry in
# the table of calls under way (the kernel always has that tracepoint: the process
# programs use it)
NET_TRACEPOINTS: tuple[tuple[str, str], ...] = (
    ("sched:sched_process_exit", "net_thread_exit"),
    ("syscalls:sys_exit_connect", "net_exit_connect"),
    ("syscalls:sys_exit_bind", "net_exit_bind"),
    ("syscalls:sys_exit_listen", "net_exit_listen"),
    ("syscalls:sys_exit_accept4", "net_exit_accept4"),
    ("syscalls:sys_exit_accept", "net_exit_accept_"),
    ("syscalls:sys_enter_connect", "net_enter_connect"),
    ("syscalls:sys_enter_bind", "net_enter_bind"),
    ("syscalls:sys_enter_listen", "net_enter_listen"),
    ("syscalls:sys_enter_accept4", "net_enter_accept4"),
    ("syscalls:sys_enter_accept", "net_enter_accept_"),
)


def net_program_source() -> str:
    return resources.files("linnix.runtime.sources").joinpath("net.bpf.c").read_text("utf-8")


def _exists(tracefs: str, tracepoint: str) -> bool:
    return os.path.isdir(os.path.join(tracefs, "events", *tracepoint.split(":")))


def missing_tracepoints(tracefs: str) -> list[str]:
    """The tracepoints of :data:`NET_TRACEPOINTS` this kernel lacks."""
    return [tp for tp, _fn in NET_TRACEPOINTS if not _exists(tracefs, tp)]


def net_cflags(tracefs: str) -> list[str]:
    """The defines the network programs need on this kernel."""
    return ["-DHAVE_ACCEPT"] if _exists(tracefs, "syscalls:sys_enter_accept") else []


def follow_plan(source: object, plan: Plan) -> str | None:
    """Network capture of ``source`` on when ``plan`` needs network events
    (:func:`linnix.plan.needs_network`), off when it does not (a reload); the problem
    when it could not attach, else None.  Only the eBPF source has a capture to switch
    (``net``): the others never see the network."""
    net = getattr(source, "net", None)
    if not isinstance(net, NetCapture) or net.on == needs_network(plan):
        return None
    try:
        net.switch(not net.on)
    except Exception as err:  # the new rules stand, without network events
        return f"network capture did not attach: {err}"
    return None


class NetCapture:
    """Attaches and detaches the network programs of a loaded BCC program."""

    def __init__(self, bpf: Any, tracefs: str) -> None:
        self.bpf = bpf
        self.tracefs = tracefs
        self.attached: list[str] = []
        self.missing = missing_tracepoints(tracefs)  # attached without them

    @property
    def on(self) -> bool:
        return bool(self.attached)

    def attach(self) -> None:
        """Attach every program whose tracepoint exists (nothing if already attached)."""
        if self.attached:
            return
        # calls under way when it was last detached: their exits are gone, and an old
        # entry must not be taken for a thread's next call
        self.bpf[b"netpending"].clear()
        try:
            for tp, fn in NET_TRACEPOINTS:
                if tp in self.missing:
                    continue
                self.bpf.attach_tracepoint(tp=tp.encode(), fn_name=fn.encode())
                self.attached.append(tp)
        except Exception:
            self.detach()  # all or nothing
            raise

    def detach(self) -> None:
        """Detach what is attached, entries first."""
        for tp in reversed(self.attached):
            with contextlib.suppress(Exception):  # gone with the program anyway
                self.bpf.detach_tracepoint(tp=tp.encode())
        self.attached = []

    def switch(self, on: bool) -> None:
        """Attached when ``on``, detached otherwise."""
        if on:
            self.attach()
        else:
            self.detach()
