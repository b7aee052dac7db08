#!/usr/bin/env python3
"""The per-process sampler's CPU a round on the reference load, paced and not.

    sudo .venv/bin/python bench/sampler.py [--rounds 40] [--gaps 1,4,8] [--plain 8]
                                           [--interval 1]

Starts the reference load's tree (1,011 sleeping processes, bench/proctree.c)
and, in this process, one sampler (``ProcSampler``, descriptors counted as the
shipped rules need) per ``--gaps`` entry: 1 reads every process at every round
(as before idle processes were paced), N reads an idle one at least every N
rounds and every process at once when the host used more than its reads account
for (each sampler has its host sampler, read just before it, as the daemon
does); ``--plain`` adds paced samplers without that check.  The samplers take
turns within each round, ``--interval`` seconds apart, so that the host's load
falls on all of them alike; after the rounds it takes every sampler to reach its
longest gap, each one's CPU a round (``time.process_time``, the host read left
out: it is taken every round anyway) is reported as the median and the mean (a
paced sampler's rounds differ: a round where a whole tree comes due costs more),
with the reads a round and the rounds at which the host's usage woke every
process.  Then the engine applying
a full round of samples with the shipped rules (CPU a sample), and ways of
reading /proc/PID/stat (CPU a process): opened, read and closed each time as the
sampler does, and ``pread`` on a descriptor kept open.

No event source runs here: nothing wakes a process, so a paced sampler reads
the busy ones, the idle ones due, and lists /proc once in its longest gap.
Results are printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable

from common import ROOT, ProcTree, machine  # bench/common.py

sys.path.insert(0, ROOT)

from linnix.engine.core import Core
from linnix.language.pipeline import build
from linnix.procfs import STAT_READ_MAX, Clock, list_pids, read_stat
from linnix.runtime.sources.telemetry import HostSampler, ProcSampler, snapshot

_FLAGS = os.O_RDONLY | os.O_CLOEXEC


Kind = tuple[int, bool]  # (longest gap, whether the host's usage wakes every process)


def sampler_rounds(kinds: list[Kind], rounds: int,
                   interval: float) -> dict[Kind, tuple[list[float], list[int], int]]:
    """CPU seconds and reads of each steady round, and the rounds the host woke every
    process, by kind (the samplers taking turns within each round)."""
    clock = Clock()
    samplers = {kind: (HostSampler(clock), ProcSampler(clock, fds=True, max_gap=kind[0]))
                for kind in kinds}
    warm = 2 * max(gap for gap, _ in kinds) + 6  # new, three quiet reads, then 2, 4, ...
    out: dict[Kind, tuple[list[float], list[int], int]] = {k: ([], [], 0) for k in kinds}
    due = time.monotonic()
    for r in range(warm + rounds):
        for kind, (host, sampler) in samplers.items():
            host.sample()
            woke = sampler.woke
            c0 = time.process_time()
            reads = len(sampler.sample((), host.usage if kind[1] else None))
            used = time.process_time() - c0
            if r >= warm:
                cpu, n, wakes = out[kind]
                cpu.append(used)
                n.append(reads)
                out[kind] = (cpu, n, wakes + sampler.woke - woke)
        due += interval
        time.sleep(max(0.0, due - time.monotonic()))
    return out


def engine_apply(repeats: int) -> tuple[float, int]:
    """CPU seconds a sample of the engine's table applying a full round (the rules' ticks
    left out), and the round's size."""
    clock = Clock()
    core = Core(build([os.path.join(ROOT, "rules")]).require_plan(), 0.5, history=True)
    core.feed(list(snapshot(clock)))
    table, sampler = core.table, ProcSampler(clock, fds=True)
    costs, size = [], 0
    for _ in range(repeats):
        batch = sampler.sample()
        size = len(batch)
        handlers = table.handlers
        c0 = time.process_time()
        for ev in batch:
            handlers[type(ev)](ev)
        table.fold()
        costs.append((time.process_time() - c0) / max(1, size))
        time.sleep(0.2)
    return statistics.median(costs), size


def stat_reads(repeats: int) -> dict[str, float]:
    """CPU seconds a process of reading /proc/PID/stat: the sampler's way, its system calls
    alone, and pread on kept descriptors."""
    pids = list_pids()
    kept: dict[int, int] = {}
    for pid in pids:
        try:
            kept[pid] = os.open(f"/proc/{pid}/stat", _FLAGS)
        except OSError:
            continue

    def each(read: Callable[[], object]) -> float:
        c0 = time.process_time()
        for _ in range(repeats):
            read()
        return (time.process_time() - c0) / repeats / len(pids)

    def syscalls() -> None:
        for pid in pids:
            try:
                fd = os.open(f"/proc/{pid}/stat", _FLAGS)
            except OSError:
                continue
            with contextlib.suppress(OSError):
                os.read(fd, STAT_READ_MAX)
            os.close(fd)

    def pread() -> None:
        for fd in kept.values():
            try:
                os.pread(fd, STAT_READ_MAX, 0)
            except OSError:
                continue

    try:
        return {"read_stat (open, read, close, parse)": each(lambda: [read_stat(p) for p in pids]),
                "open, read, close": each(syscalls),
                "pread on a kept descriptor": each(pread)}
    finally:
        for fd in kept.values():
            os.close(fd)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=40, help="steady rounds measured a sampler")
    ap.add_argument("--gaps", default="1,4,8", help="longest gaps (rounds) to compare")
    ap.add_argument("--plain", default="8",
                    help="longest gaps (rounds) paced without the host's check (empty: none)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    args = ap.parse_args()
    kinds = [(int(g), True) for g in args.gaps.split(",")]
    kinds += [(int(g), False) for g in args.plain.split(",") if g]
    tree = ProcTree()
    try:
        procs = len(list_pids())
        rounds = sampler_rounds(kinds, args.rounds, args.interval)
        apply_s, size = engine_apply(5)
        reads = stat_reads(5)
        procs_end = len(list_pids())
    finally:
        tree.stop()
    print("\n## The sampler on the reference load (bench/sampler.py) — "
          f"{time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end; "
          f"{procs:,} processes on the host at the start, {procs_end:,} at the end "
          f"({tree.size:,} of them the tree).\n")
    print(f"Command: `sudo .venv/bin/python bench/sampler.py --rounds {args.rounds} "
          f"--gaps {args.gaps} --plain {args.plain} --interval {args.interval:g}`\n")
    print("| longest gap (rounds) | host check | CPU a round, median | mean | reads a round, "
          "mean | rounds the host woke every process |")
    print("|---|---|---|---|---|---|")
    for (gap, check), (cpu, n, wakes) in rounds.items():
        woke = f"{wakes} of {len(cpu)}" if check and gap > 1 else "-"
        print(f"| {gap} | {'yes' if check and gap > 1 else 'no'} | "
              f"{1e3 * statistics.median(cpu):.2f} ms | {1e3 * statistics.mean(cpu):.2f} ms | "
              f"{statistics.mean(n):,.0f} | {woke} |")
    print(f"\nThe engine's table applying a round of {size:,} samples (the shipped rules' "
          f"table, median of 5 rounds): {1e6 * apply_s:.2f} µs of CPU a sample.\n")
    print("| reading /proc/PID/stat | CPU a process |\n|---|---|")
    for label, seconds in reads.items():
        print(f"| {label} | {1e6 * seconds:.2f} µs |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
