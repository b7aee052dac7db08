#!/usr/bin/env python3
"""Pure Python against a build with some modules compiled (mypyc), side by side.

    python bench/compiled.py --compiled DIR [--events 1000000] [--rounds 3]

DIR is a copy of the tree in which some modules have been compiled in place (an
extension module beside its ``.py`` is imported instead of it); this checkout is the
pure-Python side.  Every measurement runs in fresh interpreters, the two sides taking
turns (``PYTHONPATH`` naming one tree or the other), and reports medians:

1. replay: bench/replay.py's two traces (flat and tree, generated and seeded as
   there), ``linnix replay --format jsonl > /dev/null`` with the shipped rules, wall
   and CPU time (user + system of the child), beside the orjson line loop (the floor);
2. compile: bench/compile.py's 10,000 generated rules through the whole front end,
   CPU time of the compile after a warm-up, and the time of each stage;
3. the engine in process: the shipped rules over 1,010 sleeping processes under pid 1
   (the reference load's tree: 10 x 10 x 9), a fork loop at 1,000 forks a second (a fork and an
   exit each), every process sampled once a second and ticks every 500 ms, fed in
   batches of 25 ms as the live source delivers them; CPU time per fork or exit event,
   per sample, and per tick, over the 30 s after the rules' minute-long windows filled.

Results are printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import OUT, machine  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RULES = os.path.join(ROOT, "rules")
FLOOR = "import sys, orjson\nfor line in open(sys.argv[1], 'rb'): orjson.loads(line)\n"

ENGINE = """
import json, statistics, time
from linnix.engine import trace as tr
from linnix.engine.core import Core
from linnix.language.pipeline import build

core = Core(build([{rules!r}]).require_plan())
tree = [tr.Proc(ts=0.0, pid=1, ppid=0, comm="systemd", start=0.0),
        tr.Proc(ts=0.0, pid=50, ppid=1, comm="forkloop", start=0.0)]
pid = 100
for a in range(10):
    tree.append(tr.Proc(ts=0.0, pid=pid, ppid=1, comm="sleeper", start=0.0))
    top, pid = pid, pid + 1
    for b in range(10):
        tree.append(tr.Proc(ts=0.0, pid=pid, ppid=top, comm="sleeper", start=0.0))
        mid, pid = pid, pid + 1
        for c in range(9):
            tree.append(tr.Proc(ts=0.0, pid=pid, ppid=mid, comm="sleeper", start=0.0))
            pid += 1
core.feed(tree)
live = [ev.pid for ev in tree]
child = 100_000
times = {{"fork_exit": [], "sample": [], "tick": []}}
counts = {{"fork_exit": 0, "sample": 0, "tick": 0}}
for second in range({seconds}):
    measured = second >= {warmup}
    for slot in range(40):  # 25 ms each
        ts = second + slot * 0.025
        batch = []
        for k in range(25):  # 1,000 forks a second, each child exiting 0.5 ms later
            at = ts + k * 0.001
            batch.append(tr.Fork(ts=at, pid=child, ppid=50, comm="forkloop"))
            batch.append(tr.Exit(ts=at + 0.0005, pid=child, code=0))
            child += 1
        c0 = time.process_time()
        core.feed(batch)
        c1 = time.process_time()
        if slot == 20:  # the sampler's round, once a second
            samples = [tr.Sample(ts=ts + 0.02, pid=p, cpu_pct=0.0, rss_kb=1024.0, fds=4,
                                 fd_limit=1024, threads=1) for p in live]
            core.feed(samples)
        c2 = time.process_time()
        if slot % 20 == 19:  # a tick every 500 ms
            core.run_until(second + (slot + 1) * 0.025)
        c3 = time.process_time()
        core.drain()
        if measured:
            times["fork_exit"].append(c1 - c0)
            counts["fork_exit"] += len(batch)
            if slot == 20:
                times["sample"].append(c2 - c1)
                counts["sample"] += len(samples)
            if slot % 20 == 19:
                times["tick"].append(c3 - c2)
                counts["tick"] += 1
print(json.dumps({{k: sum(v) / counts[k] * 1e6 for k, v in times.items()}}))
"""


def _env(tree: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": tree}


def _timed(argv: list[str], tree: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one child run with ``tree`` first on its path."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env(tree), cwd=tree)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{argv[:4]} in {tree} failed with status {status}")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def _json_child(code: str, tree: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(tree), cwd=tree, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child in {tree} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def replay(traces: dict[str, str], sides: dict[str, str], rounds: int) -> dict[str, Any]:
    """Wall and CPU seconds of the floor and of each side's replay, per trace, all rounds."""
    out: dict[str, Any] = {}
    for name, path in traces.items():
        seen: dict[str, list[tuple[float, float]]] = {"floor": [], **{s: [] for s in sides}}
        for i in range(rounds):
            print(f"  replay {name}: round {i + 1}/{rounds}", file=sys.stderr)
            seen["floor"].append(_timed([sys.executable, "-c", FLOOR, path], ROOT))
            for side, tree in sides.items():
                argv = [sys.executable, "-m", "linnix", "replay", path, "--rules", RULES,
                        "--format", "jsonl"]
                seen[side].append(_timed(argv, tree))
        out[name] = seen
    return out


def compile_rules(path: str, sides: dict[str, str], rounds: int) -> dict[str, Any]:
    """CPU seconds of each side's compile of the generated rules, and its stages."""
    # linnix first: importing bench/compile.py puts this checkout first on the path
    code = ("import json, sys, time\nfrom pathlib import Path\n"
            "from linnix.language import builder, grammar\n"
            "from linnix.language.pipeline import build\n"
            f"sys.path.insert(0, {HERE!r}); sys.argv = ['x']\n"
            "from compile import measure_stages\n"
            f"grammar.parser(); build([{path!r}])\n"
            "c0 = time.process_time()\n"
            f"build([{path!r}])\n"
            "cpu = time.process_time() - c0\n"
            f"stages = measure_stages(Path({path!r}))\n"
            "print(json.dumps({'cpu': cpu, 'stages': stages, 'builder': builder.__file__}))\n")
    seen: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    for i in range(rounds):
        print(f"  compile: round {i + 1}/{rounds}", file=sys.stderr)
        for side, tree in sides.items():
            seen[side].append(_json_child(code, tree))
    return seen


def engine(sides: dict[str, str], rounds: int, seconds: int, warmup: int) -> dict[str, Any]:
    """Microseconds of CPU per fork or exit, per sample and per tick, for each side."""
    code = ENGINE.format(rules=RULES, seconds=seconds, warmup=warmup)
    seen: dict[str, list[dict[str, float]]] = {s: [] for s in sides}
    for i in range(rounds):
        print(f"  engine: round {i + 1}/{rounds}", file=sys.stderr)
        for side, tree in sides.items():
            seen[side].append(_json_child(code, tree))
    return seen


def _med(values: list[float]) -> float:
    return statistics.median(values)


def report(args: argparse.Namespace, rep: dict[str, Any], comp: dict[str, Any],
           eng: dict[str, Any], loads: list[float]) -> None:
    """The results as Markdown."""
    print(f"\n## Pure Python against mypyc (bench/compiled.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}; load average (1 min) {', '.join(f'{x:.1f}' for x in loads)}"
          " at the start of each part.\n")
    print(f"Command: `python bench/compiled.py --compiled DIR --events {args.events} "
          f"--rounds {args.rounds}`\n")
    if rep:
        print("| trace | floor wall / CPU | pure wall / CPU | compiled wall / CPU | "
              "compiled ÷ pure, wall / CPU | CPU rounds, pure; compiled |\n"
              "|---|---|---|---|---|---|")
        for name, seen in rep.items():
            med = {k: (_med([w for w, _ in v]), _med([c for _, c in v])) for k, v in seen.items()}
            pure, comp_ = med["pure"], med["compiled"]
            rounds = "; ".join(", ".join(f"{c:.2f}" for _, c in seen[s])
                               for s in ("pure", "compiled"))
            print(f"| {name} | {med['floor'][0]:.2f} s / {med['floor'][1]:.2f} s | "
                  f"{pure[0]:.2f} s / {pure[1]:.2f} s | {comp_[0]:.2f} s / {comp_[1]:.2f} s | "
                  f"{comp_[0] / pure[0]:.2f} / **{comp_[1] / pure[1]:.2f}** | {rounds} |")
    if comp:
        print("\n| compile, 10,000 rules, CPU | pure | compiled | compiled ÷ pure |\n"
              "|---|---|---|---|")
        cpu = {s: _med([r["cpu"] for r in v]) for s, v in comp.items()}
        runs = "; ".join(", ".join(f"{r['cpu']:.2f}" for r in comp[s])
                         for s in ("pure", "compiled"))
        print(f"| whole front end (rounds: {runs}) | "
              f"{cpu['pure']:.2f} s ({args.rules / cpu['pure']:,.0f} rules/s) | "
              f"{cpu['compiled']:.2f} s ({args.rules / cpu['compiled']:,.0f} rules/s) | "
              f"**{cpu['compiled'] / cpu['pure']:.2f}** |")
        for stage in comp["pure"][0]["stages"]:
            p = _med([r["stages"][stage] for r in comp["pure"]])
            c = _med([r["stages"][stage] for r in comp["compiled"]])
            ratio = f"{c / p:.2f}" if p else "—"
            print(f"| {stage} (wall) | {p:.2f} s | {c:.2f} s | {ratio} |")
    if eng:
        print("\n| engine, CPU per | pure | compiled | compiled ÷ pure |\n|---|---|---|---|")
        for key, label in (("fork_exit", "fork or exit event"), ("sample", "sample"),
                           ("tick", "tick")):
            p = _med([r[key] for r in eng["pure"]])
            c = _med([r[key] for r in eng["compiled"]])
            print(f"| {label} | {p:.2f} µs | {c:.2f} µs | **{c / p:.2f}** |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compiled", required=True, type=Path,
                    help="a copy of the tree with modules compiled in place")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rules", type=int, default=10_000, help="generated rules to compile")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="replay,compile,engine",
                    help="which parts to run (comma-separated)")
    ap.add_argument("--engine-seconds", type=int, default=90)
    args = ap.parse_args()
    sides = {"pure": ROOT, "compiled": str(args.compiled.resolve())}
    parts = set(args.only.split(","))
    os.makedirs(OUT, exist_ok=True)
    sys.path.insert(0, HERE)
    loads: list[float] = []
    rep: dict[str, Any] = {}
    comp: dict[str, Any] = {}
    eng: dict[str, Any] = {}
    if "replay" in parts:
        from replay import generate, generate_tree  # bench/replay.py

        traces = {"flat": os.path.join(OUT, f"replay-{args.events}.jsonl"),
                  "tree": os.path.join(OUT, f"replay-tree-{args.events}.jsonl")}
        generate(traces["flat"], args.events, 250)
        generate_tree(traces["tree"], args.events)
        loads.append(os.getloadavg()[0])
        rep = replay(traces, sides, args.rounds)
    if "compile" in parts:
        from compile import generate as generate_rules  # bench/compile.py

        path = os.path.join(OUT, f"compiled-{args.rules}.lnx")
        Path(path).write_text(generate_rules(args.rules), encoding="utf-8")
        loads.append(os.getloadavg()[0])
        comp = compile_rules(path, sides, args.rounds)
    if "engine" in parts:
        loads.append(os.getloadavg()[0])
        eng = engine(sides, args.rounds, args.engine_seconds, args.engine_seconds - 30)
    loads.append(os.getloadavg()[0])
    report(args, rep, comp, eng, loads)
    print("\n<!-- " + json.dumps({"replay": rep, "compile": comp, "engine": eng}) + " -->")
    return 0


if __name__ == "__main__":
    sys.exit(main())
