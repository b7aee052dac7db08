#!/usr/bin/env python3
"""The per-process ring of the dashboard's charts: its CPU each round and its memory.

    python bench/procring.py                 # 1,000 and 5,000 processes
    python bench/procring.py --counts 1000 --rounds 120 --cpu-rounds 50 --workloads idle

CPU: for each count N of live processes and each workload, an engine with the
shipped rules (``Core``, as the daemon makes it) is fed ``--cpu-rounds`` rounds of
samples one simulated second apart: a host sample and one sample of every
process, then its ticks; after each round, :meth:`ProcRing.record` reads the
table as the daemon's view does.  Each round times both, in CPU time of this
thread, side by side:

* the engine: applying the round's samples and running its ticks;
* the ring: one ``record`` over the N processes.

The workloads: ``idle`` (no value moves after the first round: the table skips
every sample, the usual case on a quiet host), ``5% busy`` (one process in twenty
changes CPU and RSS at every round: more than the 0.3-0.5 % seen on the
development hosts) and ``all busy`` (every process changes at every round: the
worst case, which the ring's budget bounds).

Memory: ``--rounds`` rounds (900: a full 15 minutes at one sample a second) of the
ring alone, over the same processes, their values set as the table sets them,
with ``tracemalloc`` on: the bytes allocated by ``linnix/runtime/procring.py`` and
still held after the last round, and the most seen at the checkpoints of the
last 200 rounds (every 25).  Printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import tracemalloc

from common import machine  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from linnix.engine import trace as tr  # noqa: E402 - after the path is set
from linnix.engine.core import Core  # noqa: E402
from linnix.language.pipeline import build  # noqa: E402
from linnix.plan import Plan  # noqa: E402
from linnix.runtime.procring import BUDGET_POINTS, ProcRing  # noqa: E402

WORKLOADS = {"idle": 0, "5% busy": 20, "all busy": 1}  # one process in N busy (0: none)
WARMUP = 10  # rounds left out of the CPU medians (the first one records every process)
WALL0 = 1_800_000_000.0
MB = 1_000_000


def shipped() -> Plan:
    return build([os.path.join(ROOT, "rules")]).require_plan()


def engine(plan: Plan, count: int) -> Core:
    """``count`` live processes: init, 10 services, the rest spread under them."""
    core = Core(plan, 0.5, history=True, recent_network=True)  # as the daemon makes it
    core.header(tr.Header(version=1, ncpu=2, mem_total_kb=24_000_000))
    events: list[tr.Event] = [tr.Proc(ts=0.0, pid=1, ppid=0, comm="init", start=-1000.0)]
    events += [tr.Proc(ts=0.0, pid=2 + i, ppid=1, comm=f"svc{i}", start=-900.0)
               for i in range(10)]
    events += [tr.Proc(ts=0.0, pid=100 + i, ppid=2 + i % 10, comm="worker", start=-500.0)
               for i in range(count - 11)]
    core.feed(events)
    return core


def round_of(pids: list[int], second: int, every: int, rnd: random.Random) -> list[tr.Event]:
    ts = float(second)
    batch: list[tr.Event] = [tr.System(ts=ts, cpu_pct=30.0, mem_total_kb=24_000_000,
                                       mem_available_kb=12_000_000)]
    for i, pid in enumerate(pids):
        busy = every and i % every == 0
        batch.append(tr.Sample(
            ts=ts, pid=pid, cpu_pct=round(rnd.random() * 50, 1) if busy else 0.0,
            rss_kb=4096.0 + 4 * rnd.randrange(1000) if busy else 8192.0, fds=12,
            fd_limit=1024, threads=1))
    return batch


def side_by_side(plan: Plan, count: int, every: int, rounds: int) -> dict[str, list[float]]:
    """Rounds of samples through the engine, the ring after each: CPU times of both."""
    core = engine(plan, count)
    pids = sorted(core.table.procs)
    rnd = random.Random(count)
    batches = [round_of(pids, s, every, rnd) for s in range(1, rounds + 1)]
    out: dict[str, list[float]] = {"engine": [], "ring": []}
    ring = ProcRing(1.0)
    clock = time.thread_time
    for second, batch in enumerate(batches, start=1):
        started = clock()
        core.feed(batch)
        core.run_until(second + 0.05)
        core.drain()
        fed = clock()
        ring.record(WALL0 + second, core.table.procs)
        done = clock()
        out["engine"].append(fed - started)
        out["ring"].append(done - fed)
    return out


def held(plan: Plan, count: int, every: int, rounds: int) -> dict[str, list[float]]:
    """The ring's memory after ``rounds`` rounds, its processes' values set as the table
    sets them (a value and ``last_sample`` replaced when a sample changes something)."""
    procs = engine(plan, count).table.procs
    rnd = random.Random(count)
    busy = [p for i, p in enumerate(procs.values()) if every and i % every == 0]
    for p in procs.values():
        p.cpu_pct, p.rss_mb, p.fds, p.last_sample = 0.0, 8.0, 12, (0.0, 8192.0, 12)
    out: dict[str, list[float]] = {"bytes": [], "points": []}
    tracemalloc.start()
    ring = ProcRing(1.0)
    for second in range(1, rounds + 1):
        for p in busy:
            cpu, rss_kb = round(rnd.random() * 50, 1), 4096.0 + 4 * rnd.randrange(1000)
            p.cpu_pct, p.rss_mb, p.last_sample = cpu, rss_kb / 1024, (cpu, rss_kb, 12)
        ring.record(WALL0 + second, procs)
        if (rounds - second) % 25 == 0 and rounds - second < 200:
            out["bytes"].append(ring_bytes())
            out["points"].append(ring.points)
    tracemalloc.stop()
    return out


def ring_bytes() -> float:
    """What procring.py allocated and still holds."""
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, os.path.join("*", "linnix", "runtime", "procring.py"))])
    return float(sum(stat.size for stat in snap.statistics("filename")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="1000,5000")
    ap.add_argument("--rounds", type=int, default=900, help="rounds of the memory runs")
    ap.add_argument("--cpu-rounds", type=int, default=150, help="rounds of the CPU runs")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    args = ap.parse_args()
    plan = shipped()
    rows = []
    for count in (int(c) for c in args.counts.split(",")):
        for name in args.workloads.split(","):
            print(f"{count:,} processes, {name}", file=sys.stderr)
            cpu = side_by_side(plan, count, WORKLOADS[name], args.cpu_rounds)
            mem = held(plan, count, WORKLOADS[name], args.rounds)
            rows.append((count, name, cpu, mem))
    print(f"\n## The per-process ring (bench/procring.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end.\n")
    print(f"Command: `python bench/procring.py --counts {args.counts} --rounds {args.rounds} "
          f"--cpu-rounds {args.cpu_rounds}`; the shipped rules; budget {BUDGET_POINTS:,} "
          "points.\n")
    print("| processes | workload | ring per round (median) | per process | ring, slowest "
          "round | engine per round (median) | ring / engine | ring's memory after the last "
          "round | most at a checkpoint | points kept |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for count, name, cpu, mem in rows:
        ring = statistics.median(cpu["ring"][WARMUP:])
        eng = statistics.median(cpu["engine"][WARMUP:])
        print(f"| {count:,} | {name} | {ring * 1e3:.2f} ms | {ring * 1e6 / count:.2f} µs | "
              f"{max(cpu['ring'][WARMUP:]) * 1e3:.1f} ms | {eng * 1e3:.1f} ms | "
              f"{100 * ring / eng:.1f} % | {mem['bytes'][-1] / MB:.2f} MB | "
              f"{max(mem['bytes']) / MB:.2f} MB | {mem['points'][-1]:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
