#!/usr/bin/env python3
"""Replay time against the depth of the process tree, with and without subtree rules.

    python bench/subtree.py                          # depths 1,000 / 5,000 / 20,000
    python bench/subtree.py --depths 1000,2000 --rounds 1

For each depth D, a trace of a chain D processes deep (pid 1 forks pid 2,
which forks pid 3, ...) built at t = 0, then 3 s of samples: every process
once a second, with cpu, rss and fds that change.  It is replayed in process
(``linnix.runtime.replay.replay``: reading and engine, no interpreter start)
with each rule set below; the median of the rounds is reported, and the time
per process of the chain, which stays flat when the cost is linear in depth.

* flat: a rule on ``cpu_pct`` (no subtree totals kept);
* subtree sums: ``subtree_cpu_pct``, ``subtree_rss_mb``, ``subtree_fds`` and
  ``subtree_procs`` (every total kept, the chain re-totalled every second);
* subtree forks: ``subtree_forks_per_sec`` (each fork counted at each ancestor);
* one boundary: the subtree sums in rules with ``boundary comm == "init"``.  Only
  the root is a wall, so no change stops before it: the worst case, in which
  the totals within the walls cost as much to keep as the plain ones (which
  are kept as well);
* boundary forks: ``subtree_forks_per_sec`` in a rule with ``boundary comm ==
  "init"`` (each fork counted within the walls as well as plainly: the worst
  case again).

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
from common import OUT, machine  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from linnix.language.pipeline import compile_text  # noqa: E402 - after the path is set
from linnix.runtime.replay import replay  # noqa: E402

SECONDS = 3
RULES = {
    "flat": "rule flat { when cpu_pct > 50 for 2s }\n",
    "subtree sums": ("rule tree { when subtree_cpu_pct > 50 and subtree_procs >= 2 for 2s }\n"
                     "rule mem: subtree_rss_mb > 1000000 or subtree_fds > 10000000\n"),
    "subtree forks": "rule storm: subtree_forks_per_sec > 1000000\n",
    "one boundary": ("rule tree { when subtree_cpu_pct > 50 and subtree_procs >= 2 for 2s\n"
                     " boundary comm == \"init\" }\n"
                     "rule mem { when subtree_rss_mb > 1000000 or subtree_fds > 10000000\n"
                     " boundary comm == \"init\" }\n"),
    "boundary forks": ("rule storm { when subtree_forks_per_sec > 1000000\n"
                       " boundary comm == \"init\" }\n"),
}


def write_chain(path: str, depth: int) -> int:
    """The chain and its samples; the number of events."""
    rnd = random.Random(depth)
    n = 0
    with open(path, "wb") as f:
        def emit(ev: dict[str, object]) -> None:
            nonlocal n
            f.write(orjson.dumps(ev) + b"\n")
            n += 1

        emit({"ts": 0.0, "kind": "proc", "pid": 1, "ppid": 0, "comm": "init", "start": 0.0})
        for pid in range(2, depth + 2):
            emit({"ts": 0.0, "kind": "fork", "pid": pid, "ppid": pid - 1, "comm": "sh"})
        for second in range(1, SECONDS + 1):
            for pid in range(1, depth + 2):
                emit({"ts": float(second), "kind": "sample", "pid": pid,
                      "cpu_pct": round(rnd.random(), 1), "rss_kb": 1024 * rnd.randint(1, 9),
                      "fds": rnd.randint(3, 9)})
    return n


def timed(path: str, rules: str, rounds: int) -> list[float]:
    plan = compile_text(rules)
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        replay(path, plan, lambda batch: None)
        out.append(time.perf_counter() - started)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depths", default="1000,5000,20000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sets", default=",".join(RULES), help="rule sets to run, by name")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    depths = [int(d) for d in args.depths.split(",")]
    sets = args.sets.split(",")
    rows = []
    for depth in depths:
        path = os.path.join(OUT, f"chain-{depth}.jsonl")
        events = write_chain(path, depth)
        for name in sets:
            print(f"depth {depth:,}: {name}", file=sys.stderr)
            times = timed(path, RULES[name], args.rounds)
            rows.append((depth, events, name, times))
    print(f"\n## Subtree rules and tree depth (bench/subtree.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}\n")
    print(f"Command: `python bench/subtree.py --depths {args.depths} --rounds {args.rounds}`\n")
    print(f"Trace: a chain D processes deep, then {SECONDS} s of samples of every process.\n")
    print("| depth | events | rules | replay (median) | per process of the chain | all rounds |")
    print("|---|---|---|---|---|---|")
    for depth, events, name, times in rows:
        med = statistics.median(times)
        print(f"| {depth:,} | {events:,} | {name} | {med:.2f} s | {med * 1e6 / depth:.1f} µs | "
              f"{', '.join(f'{x:.2f}' for x in times)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
