"""Where events come from when linnix runs live.

A source has ``name``, ``async run(send)`` forwarding batches of events until
cancelled, ``lost_event()`` and ``close()``.  :func:`open_source` picks the
best one this host allows — eBPF, else the kernel's process-events connector,
else /proc polling — and says once, plainly, why it fell back.
:class:`Telemetry` adds the periodic samples (processes, host, lost events).
The eBPF source can keep its events until the engine needs them (:func:`held_ring`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import trio

from ...engine import trace as t
from ...procfs import Clock
from .telemetry import Telemetry

if TYPE_CHECKING:
    from .ringpump import RingPump

__all__ = ["Source", "Telemetry", "held_ring", "open_source"]


class Source(Protocol):
    name: str

    async def run(self, send: trio.MemorySendChannel[list[t.Event]]) -> None: ...

    def lost_event(self) -> t.Lost | None: ...

    def close(self) -> None: ...


def open_source(clock: Clock, *, prefer: str = "auto", ring_pages: int = 4096,
                warn: Callable[[str], None] = print, network: bool = False) -> Source:
    """The best available source.  ``prefer``: auto | ebpf | netlink | poll.

    ``network``: connect, accept and listen events too, which only eBPF gives.
    """
    reasons: list[str] = []
    if prefer in ("auto", "ebpf"):
        from .bcc import BpfSource, BpfUnavailableError

        try:
            return BpfSource(clock, ring_pages, network=network)
        except BpfUnavailableError as err:
            if prefer == "ebpf":
                raise
            reasons.append(f"eBPF unavailable: {err}")
    from .fallback import NetlinkSource, NetlinkUnavailableError, PollSource

    if network:
        warn("no connect, accept or listen events without eBPF")

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


def held_ring(source: Source) -> RingPump | None:
    """The pump of ``source`` when its events can wait until a tick asks for them (the eBPF
    ring: records wait there whole), else None: the others read names from /proc, which a
    process that exits meanwhile takes along."""
    from .bcc import BpfSource

    return source.pump if isinstance(source, BpfSource) else None
