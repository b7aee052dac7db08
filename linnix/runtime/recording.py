"""``linnix record``: the live stream written to a trace file, for replay and tests.

The same source, telemetry and engine as the daemon, with no rule to evaluate: every
event and sample is written (of the process trees asked for only, and without secrets
with ``redact``: :mod:`linnix.runtime.tracefilter`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

import trio

from ..engine import trace as t
from ..engine.core import Core
from ..names import Need
from ..procfs import Clock
from .live import LiveEngine, Recorder, header_event, live_cgroups, watch_signals
from .sources import Telemetry, open_source
from .tracefilter import open_recorder

__all__ = ["record"]


def record(path: str, duration: float, sample_interval: float = 1.0, source: str = "auto",
           ring_pages: int = 4096, err: IO[str] | None = None, *,
           only_tree: Sequence[int] = (), redact: bool = False) -> int:
    """Write the live stream to ``path`` for ``duration`` seconds: of the process trees
    under ``only_tree`` only, when given, and without secrets with ``redact``
    (:mod:`linnix.runtime.tracefilter`)."""
    from ..language.pipeline import compile_text

    err = err or sys.stderr
    plan = compile_text("")  # nothing to evaluate: record everything there is

    async def main() -> int:
        clock = Clock()
        stop = trio.CancelScope()

        def failed(message: str) -> None:
            err.write(f"\nlinnix: {message}\n")
            stop.cancel()

        recorder = open_recorder(path, header_event(clock), only_tree=only_tree,
                                 redact=redact, on_failure=failed)  # before the source
        try:
            src = open_source(clock, prefer=source, ring_pages=ring_pages,
                              warn=lambda m: print(f"linnix: {m}", file=err), network=True)
        except BaseException:
            recorder.close()
            raise
        telemetry = Telemetry(clock, plan, src, sample_interval, "always")
        telemetry.configure_needs(frozenset(Need))
        core = Core(plan)
        telemetry.cgroup_paths = live_cgroups(core)  # recorded: their samples too
        # redacted: no command line is written, so none is read
        engine = LiveEngine(core, clock, lambda out: None, recorder, cmdline=not redact)
        try:
            snap = telemetry.snapshot()
            engine.snapshot = {p.pid: p.start or 0.0 for p in snap}
            engine.feed(list(snap))
            err.write(f"linnix: recording for {duration:g}s via {src.name} to {path}\n")
            send, receive = trio.open_memory_channel[list[t.Event]](256)
            with stop, trio.move_on_after(duration):
                async with trio.open_nursery() as nursery:
                    scope = nursery.cancel_scope
                    nursery.start_soon(watch_signals, lambda _: scope.cancel(), lambda: None)
                    nursery.start_soon(src.run, send.clone())
                    nursery.start_soon(telemetry.run, send.clone())
                    send.close()
                    nursery.start_soon(engine.consume, receive)
                    nursery.start_soon(_progress, recorder, err)
        finally:
            src.close()
            engine.close()
        if recorder.failed is not None:
            return 1
        err.write(f"linnix: recorded {recorder.events} events to {path}\n")
        return 0

    return trio.run(main)


async def _progress(recorder: Recorder, err: IO[str]) -> None:
    if not err.isatty():
        return
    while True:
        await trio.sleep(1.0)
        err.write(f"\rrecorded {recorder.events:,} events")
        err.flush()
