#!/usr/bin/env python3
"""Replay throughput, memory, and tick cost against process count.

    python bench/replay.py                 # 1,000,000 events, 5 rounds
    python bench/replay.py --events 200000 --rounds 3 --sizes ""

1. Generates two deterministic traces (seeded), one sample per live process
   per second, 80 % of processes idle (constant values), 15 % lightly busy,
   5 % busy with growing memory:
   - flat: about 5,000 processes over its life, ~250 alive at a time, each a
     child of pid 1 or of one of 40 daemons, with forks, execs and exits;
   - tree: 1,000 live processes in ten trees 4 deep (a root, 3 children, 9
     grandchildren, 90 leaves), 0.5 % of the leaves exiting each second and
     as many forked and exec'd in their place (the flat trace's turnover: a
     process lives about 200 s).
2. Measures, alternating in one run, for each trace: the floor (a bare loop
   parsing the file line by line with orjson) and ``linnix replay --format
   jsonl > /dev/null`` with the shipped rules, both as fresh processes;
   reports medians of wall and CPU time, the ratios of the rates, and the
   replay's peak RSS.  CPU time is what the machine's other load disturbs least.
3. Measures the engine's cost per tick at 1k / 5k / 20k live processes
   (every process sampled each second; tick 500 ms), in process.

Results are printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

import orjson
from common import OUT, machine, run_child  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FLOOR = """
import sys, orjson
n = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        orjson.loads(line)
        n += 1
"""


def generate(path: str, events: int, live: int, seed: int = 7) -> dict[str, float]:
    """Write the benchmark trace; return its shape."""
    rnd = random.Random(seed)
    mean_life = live * 4000 / 5000  # so that ~5,000 processes come and go over 1M events
    procs: dict[int, list[object]] = {}
    parents = [1] + [100 + i for i in range(40)]
    next_pid, n, t = 1000, 0, 0.0
    with open(path, "wb") as f:
        def emit(ev: dict[str, object]) -> None:
            nonlocal n
            f.write(orjson.dumps(ev) + b"\n")
            n += 1

        f.write(orjson.dumps({"kind": "header", "version": 1, "host": "bench", "ncpu": 2,
                              "mem_total_kb": 24 * 1024 * 1024}) + b"\n")
        emit({"ts": 0.0, "kind": "proc", "pid": 1, "ppid": 0, "comm": "systemd", "start": 0.0})
        for pid in parents[1:]:
            emit({"ts": 0.0, "kind": "proc", "pid": pid, "ppid": 1, "comm": f"daemon{pid}",
                  "start": 0.0})
        while n < events:
            t += 1.0
            born = []
            while len(procs) < live:
                pid, next_pid = next_pid, next_pid + 1
                r = rnd.random()
                kind = "idle" if r < 0.80 else "light" if r < 0.95 else "busy"
                procs[pid] = [kind, rnd.randint(1000, 200000), t + rnd.expovariate(1 / mean_life)]
                emit({"ts": t, "kind": "fork", "pid": pid, "ppid": rnd.choice(parents),
                      "comm": "worker"})
                born.append(pid)
            for pid in born:
                emit({"ts": t + 0.001, "kind": "exec", "pid": pid, "comm": "app",
                      "exe": "/usr/bin/app", "argv": ["app", "--serve"]})
            emit({"ts": t + 0.002, "kind": "system", "cpu_pct": round(20 + 10 * rnd.random(), 1),
                  "mem_available_kb": 20000000, "psi_cpu_some": round(3 * rnd.random(), 2)})
            for pid, st in sorted(procs.items()):
                emit(_sample(rnd, t + 0.01, pid, st))  # type: ignore[arg-type]
            for pid in [p for p, st in procs.items() if float(st[2]) <= t]:  # type: ignore[arg-type]
                emit({"ts": t + 0.5, "kind": "exit", "pid": pid, "code": 0})
                del procs[pid]
    return {"events": n, "processes": next_pid - 1000 + len(parents), "seconds": t}


TREE_LEVELS = (10, 3, 3, 10)  # roots under pid 1, then children of each: 10+30+90+900 = 1,030


def generate_tree(path: str, events: int, seed: int = 11) -> dict[str, float]:
    """Write the trace of 1,000 live processes in trees 4 deep; return its shape."""
    rnd = random.Random(seed)
    procs: dict[int, list[int | str]] = {}  # pid -> [kind, rss_kb, depth]
    parent_of: dict[int, int] = {}
    next_pid, n, t = 1000, 0, 0.0
    with open(path, "wb") as f:
        def emit(ev: dict[str, object]) -> None:
            nonlocal n
            f.write(orjson.dumps(ev) + b"\n")
            n += 1

        def new(ppid: int, depth: int) -> int:
            nonlocal next_pid
            pid, next_pid = next_pid, next_pid + 1
            r = rnd.random()
            kind = "idle" if r < 0.80 else "light" if r < 0.95 else "busy"
            procs[pid] = [kind, rnd.randint(1000, 200000), depth]
            parent_of[pid] = ppid
            return pid

        f.write(orjson.dumps({"kind": "header", "version": 1, "host": "bench-tree", "ncpu": 2,
                              "mem_total_kb": 24 * 1024 * 1024}) + b"\n")
        emit({"ts": 0.0, "kind": "proc", "pid": 1, "ppid": 0, "comm": "systemd", "start": 0.0})
        level = [1]
        for depth, fan in enumerate(TREE_LEVELS, start=1):
            below = []
            for ppid in level:
                for _ in range(fan):
                    pid = new(ppid, depth)
                    below.append(pid)
                    emit({"ts": 0.0, "kind": "proc", "pid": pid, "ppid": ppid,
                          "comm": f"level{depth}", "start": 0.0})
            level = below
        live = len(procs)
        mids = [pid for pid, st in procs.items() if st[2] == len(TREE_LEVELS) - 1]
        while n < events:
            t += 1.0
            leaves = [pid for pid, st in procs.items() if st[2] == len(TREE_LEVELS)]
            for pid in rnd.sample(leaves, len(leaves) // 200):  # 0.5 % of the leaves a second
                emit({"ts": t, "kind": "exit", "pid": pid, "code": 0})
                del procs[pid]
            born = []
            while len(procs) < live:
                ppid = rnd.choice(mids)
                born.append(new(ppid, len(TREE_LEVELS)))
                emit({"ts": t + 0.001, "kind": "fork", "pid": born[-1], "ppid": ppid,
                      "comm": "level3"})
            for pid in born:
                emit({"ts": t + 0.002, "kind": "exec", "pid": pid, "comm": "job",
                      "exe": "/usr/bin/job", "argv": ["job", "--run"]})
            emit({"ts": t + 0.003, "kind": "system", "cpu_pct": round(20 + 10 * rnd.random(), 1),
                  "mem_available_kb": 20000000, "psi_cpu_some": round(3 * rnd.random(), 2)})
            for pid, st in sorted(procs.items()):
                emit(_sample(rnd, t + 0.01, pid, st))
    return {"events": n, "processes": next_pid - 1000 + 1, "seconds": t, "live": live}


def _sample(rnd: random.Random, ts: float, pid: int, st: list[int | str]) -> dict[str, object]:
    """One process's sample: idle ones constant, busy ones growing (``st`` is updated)."""
    kind = st[0]
    if kind == "idle":
        cpu = 0.0
    elif kind == "light":
        cpu = round(5 * rnd.random(), 1)
    else:
        cpu = round(20 + 40 * rnd.random(), 1)
        st[1] = int(st[1]) + rnd.randint(0, 64)
    return {"ts": ts, "kind": "sample", "pid": pid, "cpu_pct": cpu, "rss_kb": st[1],
            "fds": 12, "fd_limit": 1024, "threads": 1}


def run_timed(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (KiB) of one child process."""
    wall, usage = run_child(argv)
    return wall, usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss)


def throughput(trace: str, events: int, rounds: int) -> dict[str, object]:
    """The floor and the replay, alternating, ``rounds`` times: medians and ratios."""
    python = sys.executable
    linnix = [python, "-m", "linnix", "replay", trace, "--rules",
              os.path.join(ROOT, "rules"), "--format", "jsonl"]
    floor_s, floor_cpu, replay_s, replay_cpu, rss = [], [], [], [], []
    for i in range(rounds):
        print(f"  round {i + 1}/{rounds}", file=sys.stderr)
        wall, cpu, _ = run_timed([python, "-c", FLOOR, trace])
        floor_s.append(wall)
        floor_cpu.append(cpu)
        wall, cpu, peak = run_timed(linnix)
        replay_s.append(wall)
        replay_cpu.append(cpu)
        rss.append(peak)
    med = statistics.median
    return {
        "floor_s": med(floor_s), "replay_s": med(replay_s),
        "floor_rate": events / med(floor_s), "replay_rate": events / med(replay_s),
        "ratio": med(floor_s) / med(replay_s),
        "floor_cpu": med(floor_cpu), "replay_cpu": med(replay_cpu),
        "cpu_ratio": med(floor_cpu) / med(replay_cpu),
        "peak_rss_mb": max(rss) / 1024,
        "floor_all": floor_s, "replay_all": replay_s,
    }


def tick_cost(live: int, seconds: int = 30) -> dict[str, float]:
    """Median engine time per tick with ``live`` processes, each sampled every second."""
    sys.path.insert(0, ROOT)
    from linnix.engine import trace as tr
    from linnix.engine.core import Core
    from linnix.language.pipeline import build

    plan = build([os.path.join(ROOT, "rules")]).require_plan()
    rnd = random.Random(live)
    core = Core(plan)
    core.feed([tr.Proc(ts=0.0, pid=1, ppid=0, comm="systemd", start=0.0)]
              + [tr.Proc(ts=0.0, pid=100 + i, ppid=1, comm=f"d{i}", start=0.0)
                 for i in range(40)]
              + [tr.Fork(ts=0.0, pid=1000 + i, ppid=100 + i % 40, comm="app")
                 for i in range(live)])
    kinds = ["idle" if rnd.random() < 0.8 else "busy" for _ in range(live)]
    per_tick: list[float] = []
    for second in range(1, seconds + 1):
        for half in (0, 1):  # half of the processes are sampled before each tick
            ts = second + half * 0.5 - 0.25
            batch = [tr.Sample(ts=ts, pid=1000 + i, cpu_pct=0.0 if kinds[i] == "idle"
                               else round(60 * rnd.random(), 1), rss_kb=4096.0, fds=10,
                               fd_limit=1024, threads=1)
                     for i in range(half, live, 2)]
            core.feed(batch)  # applies the events; ticks before them ran in feed
            started = time.perf_counter()
            core.run_until(ts + 0.25)
            per_tick.append(time.perf_counter() - started)
            core.drain()
    steady = per_tick[len(per_tick) // 3:]  # after every window has filled
    med = statistics.median(steady)
    return {"live": live, "tick_ms": med * 1000, "us_per_process": med * 1e6 / live}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--live", type=int, default=250, help="live processes of the flat trace")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", default="1000,5000,20000",
                    help="live processes for tick cost (empty: skip it)")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    load = os.getloadavg()[0]
    flat = os.path.join(OUT, f"replay-{args.events}.jsonl")
    tree = os.path.join(OUT, f"replay-tree-{args.events}.jsonl")
    print(f"generating {flat} and {tree}", file=sys.stderr)
    shapes = {"flat": generate(flat, args.events, args.live),
              "tree": generate_tree(tree, args.events)}
    results = {}
    for name, path in (("flat", flat), ("tree", tree)):
        print(f"measuring throughput: {name}", file=sys.stderr)
        results[name] = throughput(path, int(shapes[name]["events"]), args.rounds)
    print("measuring tick cost", file=sys.stderr)
    ticks = [tick_cost(int(n)) for n in args.sizes.split(",") if n]
    report(args, shapes, results, ticks, load)
    return 0


def report(args: argparse.Namespace, shapes: dict[str, dict[str, float]],
           results: dict[str, dict[str, object]], ticks: list[dict[str, float]],
           load: float) -> None:
    """The results as Markdown for bench/RESULTS.md."""
    print(f"\n## Replay (bench/replay.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}; load average {load:.2f} before the run, "
          f"{os.getloadavg()[0]:.2f} after.\n")
    print(f"Command: `python bench/replay.py --events {args.events} --rounds {args.rounds}`\n")
    flat, tree = shapes["flat"], shapes["tree"]
    print(f"Traces: flat, {flat['events']:,} events, {flat['processes']:,} processes over "
          f"{flat['seconds']:,.0f} s, ~{args.live} alive at a time; tree, "
          f"{tree['events']:,} events, {tree['processes']:,} processes over "
          f"{tree['seconds']:,.0f} s, {tree['live']:,.0f} alive in trees 4 deep.\n")
    print("| trace | floor: orjson line loop (wall, CPU) | `linnix replay --format jsonl` "
          "(wall, CPU) | rate ÷ floor rate (wall) | (CPU) | replay wall, all rounds | "
          "peak RSS |\n|---|---|---|---|---|---|---|")
    for name, tp in results.items():
        rounds = ", ".join(f"{x:.2f}" for x in tp["replay_all"])  # type: ignore[attr-defined]
        print(f"| {name} | {tp['floor_s']:.2f} s, {tp['floor_cpu']:.2f} s "
              f"({tp['floor_rate']:,.0f} lines/s) | {tp['replay_s']:.2f} s, "
              f"{tp['replay_cpu']:.2f} s ({tp['replay_rate']:,.0f} events/s) | "
              f"**{tp['ratio']:.2f}x** | {tp['cpu_ratio']:.2f}x | {rounds} | "
              f"{tp['peak_rss_mb']:.0f} MB |")
    print("\nTarget: rate ÷ floor rate >= 0.8x on both traces (issue 16).\n")
    if ticks:
        print("| live processes | engine time per tick (median) | per live process |\n"
              "|---|---|---|")
        for row in ticks:
            print(f"| {row['live']:,} | {row['tick_ms']:.2f} ms | "
                  f"{row['us_per_process']:.2f} µs |")


if __name__ == "__main__":
    sys.exit(main())
