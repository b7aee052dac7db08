#!/usr/bin/env python3
"""What a batch of events costs the engine when it comes after a sleep, against back to back.

    .venv/bin/python bench/wakecost.py [--sizes 1,5,100,1000] [--batches 400] [--sleep 0.025]

In this process: the engine (``Core``) with the shipped rules and the reference load's
1,011 processes (a tree 3 levels under its root, as bench/proctree.c makes), their
samples for 70 s so that every window is of age, then batches of forks and exits of
short-lived children of a process 3 levels down (half forks, half their exits, 5 ms
apart).  Each batch size is fed ``--batches`` times back to back, then as many times
with ``--sleep`` seconds of sleep before each batch, as the daemon's event source does
between two drains of the kernel's ring; the thread's CPU time of each ``Core.feed``
(``time.thread_time``) is taken, and the medians per batch and per event are printed as
Markdown for bench/RESULTS.md.

No root, no kernel: only the engine.  The ratio of the two columns is what a wake-up
costs the first microseconds of Python after it on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from common import machine  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from linnix.engine import trace as tr  # noqa: E402
from linnix.engine.core import Core  # noqa: E402
from linnix.language.pipeline import build  # noqa: E402

PARENT = 1001  # a process 3 levels down the tree: the fork loop's place


def reference_core() -> Core:
    """The shipped rules over the reference load's tree, 70 s of samples in."""
    core = Core(build([os.path.join(ROOT, "rules")]).require_plan())
    events: list[tr.Event] = [tr.Proc(ts=0.0, pid=1, ppid=0, comm="init", start=0.0)]
    pid = 100
    for _ in range(10):
        top = pid
        events.append(tr.Proc(ts=0.0, pid=top, ppid=1, comm="a", start=0.0))
        pid += 1
        for _ in range(10):
            mid = pid
            events.append(tr.Proc(ts=0.0, pid=mid, ppid=top, comm="b", start=0.0))
            pid += 1
            for _ in range(9):
                events.append(tr.Proc(ts=0.0, pid=pid, ppid=mid, comm="c", start=0.0))
                pid += 1
    core.feed(events)
    for second in range(70):
        ts = float(second)
        core.feed([tr.System(ts=ts, cpu_pct=5.0, ncpu=2, mem_total_kb=24e6,
                             mem_available_kb=20e6)]
                  + [tr.Sample(ts=ts, pid=ev.pid, cpu_pct=0.0, rss_kb=1000.0, fds=5,
                               fd_limit=1024, threads=1)
                     for ev in events if isinstance(ev, tr.Proc)])
        core.run_until(ts + 0.99)
        core.drain()
    return core


class Feeder:
    """Batches of forks and exits after the last event fed, one engine for all."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.ts = 70.0
        self.child = 60_000

    def batch(self, size: int) -> list[tr.Event]:
        out: list[tr.Event] = []
        for i in range(size):
            self.ts = round(self.ts + 0.005, 6)
            if i % 2 == 0:
                self.child += 1
                out.append(tr.Fork(ts=self.ts, pid=self.child, ppid=PARENT, comm="loop",
                                   uid=0))
            else:
                out.append(tr.Exit(ts=self.ts, pid=self.child, code=0))
        return out

    def feed(self, size: int, count: int, sleep: float) -> list[float]:
        """CPU seconds of each of ``count`` feeds of ``size`` events."""
        spent: list[float] = []
        for k in range(count):
            batch = self.batch(size)
            if sleep:
                time.sleep(sleep)
            started = time.thread_time()
            self.core.feed(batch)
            spent.append(time.thread_time() - started)
            if k % 20 == 19:  # the ticks come as they would
                self.core.run_until(self.ts)
                self.core.drain()
        return spent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,5,100,1000", help="events a batch, comma-separated")
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--sleep", type=float, default=0.025)
    args = ap.parse_args()
    try:
        sizes = [int(x) for x in args.sizes.split(",")]
    except ValueError:
        print(f"--sizes: whole numbers separated by commas, not {args.sizes!r}", file=sys.stderr)
        return 2
    if not sizes or min(sizes) < 1 or args.batches < 1 or args.sleep < 0:
        print("--sizes and --batches must be at least 1, --sleep not negative",
              file=sys.stderr)
        return 2
    print("building the engine with the reference load ...", file=sys.stderr)
    feeder = Feeder(reference_core())
    rows = []
    for size in sizes:
        print(f"  {size} event(s) a batch", file=sys.stderr)
        warm = statistics.median(feeder.feed(size, args.batches, 0.0))
        cold = statistics.median(feeder.feed(size, args.batches, args.sleep))
        rows.append((size, warm, cold))
    print(f"\n## A batch of events after a sleep and back to back (bench/wakecost.py) — "
          f"{time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end.\n")
    print(f"Command: `.venv/bin/python bench/wakecost.py --sizes {args.sizes} "
          f"--batches {args.batches} --sleep {args.sleep:g}`\n")
    print(f"| events a batch | back to back, µs a batch | after {args.sleep * 1000:g} ms of "
          "sleep, µs a batch | µs an event, back to back | after the sleep | ratio |")
    print("|---|---|---|---|---|---|")
    for size, warm, cold in rows:
        print(f"| {size:,} | {warm * 1e6:.1f} | {cold * 1e6:.1f} | {warm * 1e6 / size:.2f} | "
              f"{cold * 1e6 / size:.2f} | {cold / warm:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
