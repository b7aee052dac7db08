"""Where events come from when linnix runs live.

A source has ``name``, ``async run(send)`` forwarding batches of events until
cancelled, ``lost_event()`` and ``close()``.  :func:`open_source` picks the
best one this host allows — eBPF, else the kernel's process-events connector,
else /proc polling — and says once, plainly, why it fell back.
:class:`Telemetry` adds the periodic samples (processes, host, lost events).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import trio

from ...engine import trace as t
from ...names import Need
from ...plan import Plan
from .procfs import Clock, HostSampler, ProcSampler, snapshot

__all__ = ["Clock", "Source", "Telemetry", "open_source"]


class Source(Protocol):
    name: str

    async def run(self, send: trio.MemorySendChannel[list[t.Event]]) -> None: ...

    def lost_event(self) -> t.Lost | None: ...

    def close(self) -> None: ...


def open_source(clock: Clock, *, prefer: str = "auto", ring_pages: int = 4096,
                warn: Callable[[str], None] = print) -> Source:
    """The best available source.  ``prefer``: auto | ebpf | netlink | poll."""
    reasons: list[str] = []
    if prefer in ("auto", "ebpf"):
        from .bcc import BpfSource, BpfUnavailableError

        try:
            return BpfSource(clock, ring_pages)
        except BpfUnavailableError as err:
            if prefer == "ebpf":
                raise
            reasons.append(f"eBPF unavailable: {err}")
    from .fallback import NetlinkSource, NetlinkUnavailableError, PollSource

    if prefer in ("auto", "netlink"):
        try:
            source: Source = NetlinkSource(clock)
        except NetlinkUnavailableError as err:
            if prefer == "netlink":
                raise
            reasons.append(str(err))
        else:
            if reasons:
                warn(f"{reasons[0]}; using the kernel's process-events connector instead "
                     "(same events; names read from /proc)")
            return source
    if reasons:
        warn("; ".join(reasons) + "; falling back to polling /proc: processes that live "
             "less than half a second are missed, so fork and short-job rates are "
             "undercounted")
    return PollSource(clock)


class Telemetry:
    """Per-process and host samples every ``interval`` seconds, only what the plan reads."""

    def __init__(self, clock: Clock, plan: Plan, source: Source, interval: float = 1.0,
                 fds: str = "auto") -> None:
        self.clock = clock
        self.source = source
        self.interval = interval
        self.fds_mode = fds
        self.host = HostSampler(clock)
        self.procs = ProcSampler(clock)
        self.configure(plan)
        self.samples = 0

    def configure(self, plan: Plan) -> None:
        """Adapt to a (re)loaded plan: sample only what its rules read."""
        self.configure_needs(plan.needs)

    def configure_needs(self, needs: frozenset[Need]) -> None:
        self.per_process = bool(needs & {Need.CPU, Need.RSS, Need.FDS, Need.THREADS})
        wants_fds = Need.FDS in needs
        self.procs.fds = {"auto": wants_fds, "always": True, "never": False}[self.fds_mode]

    def snapshot(self) -> list[t.Proc]:
        return snapshot(self.clock)

    def collect(self) -> list[t.Event]:
        """One round of samples (blocking /proc reads: run it in a thread)."""
        batch: list[t.Event] = [self.host.sample()]
        if self.per_process:
            batch.extend(self.procs.sample())
        lost = self.source.lost_event()
        if lost is not None:
            batch.append(lost)
        self.samples += 1
        return batch

    async def run(self, send: trio.MemorySendChannel[list[t.Event]]) -> None:
        async with send:
            deadline = trio.current_time()
            while True:
                batch = await trio.to_thread.run_sync(self.collect)
                await send.send(batch)
                deadline += self.interval
                await trio.sleep_until(max(deadline, trio.current_time()))
