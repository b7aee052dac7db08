#!/usr/bin/env python3
"""Replay time against the time a trace spans: a gap of 10^7 s between two events.

    python bench/gap.py                  # 5 rounds
    python bench/gap.py --rounds 3

1. Writes traces of 100 processes (five of them busy, some forking): 20 s of
   samples, a gap of G seconds with no event, 20 s of samples again, for G =
   0, 10^4 and 10^7 (the same events, only the gap differs).
2. Times ``linnix replay --format jsonl`` with the shipped rules for each, as
   a fresh process (interpreter start and rule compilation included), median
   of the rounds.
3. In process, the engine alone over the same events with the shipped rules
   plus a rule on ``age_s`` (whose crossing deep in the gap must be found at
   its exact tick): skipping quiet ticks (the default) and walking every tick
   (``skip_idle=False``; for 10^7 s its time is projected from the 10^4 s
   trace's cost per tick, since walking it would take minutes).

Results are printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time

import orjson
from common import OUT, machine  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from linnix.engine import trace as tr  # noqa: E402 - after the path is set
from linnix.engine.core import Core  # noqa: E402
from linnix.language.pipeline import build  # noqa: E402

GAPS = (0, 10**4, 10**7)
AGE_RULE = "rule old_and_busy { when age_s > 24h and cpu_pct > 50 for 10s }\n"


def events(gap: float, seed: int = 3) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    out: list[dict[str, object]] = [
        {"ts": 0.0, "kind": "proc", "pid": 1, "ppid": 0, "comm": "init", "start": 0.0}]
    out += [{"ts": 0.0, "kind": "proc", "pid": 100 + i, "ppid": 1, "comm": f"w{i}",
             "start": -rnd.randint(0, 50000)} for i in range(100)]
    for second in [*range(1, 21), *(gap + s for s in range(21, 41))]:
        out.append({"ts": float(second), "kind": "system", "cpu_pct": 40.0 + rnd.random(),
                    "psi_cpu_some": 1.0})
        for i in range(100):
            busy = i < 5
            out.append({"ts": float(second) + 0.01, "kind": "sample", "pid": 100 + i,
                        "cpu_pct": 80.0 + rnd.random() if busy else rnd.random(),
                        "rss_kb": 4096 + (64 * second if busy else 0), "fds": 8})
        if second % 5 == 0:
            for j in range(3):
                out.append({"ts": float(second) + 0.02, "kind": "fork",
                            "pid": 1000 + int(second) * 10 + j, "ppid": 100, "comm": "job"})
    return out


def write(path: str, evs: list[dict[str, object]]) -> None:
    with open(path, "wb") as f:
        f.write(orjson.dumps({"kind": "header", "version": 1, "ncpu": 2}) + b"\n")
        f.writelines(orjson.dumps(ev) + b"\n" for ev in evs)


def cli_time(path: str, rounds: int) -> list[float]:
    argv = [sys.executable, "-m", "linnix", "replay", path, "--rules",
            os.path.join(ROOT, "rules"), "--format", "jsonl"]
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=ROOT)
        out.append(time.perf_counter() - started)
    return out


def engine_time(path: str, skip: bool, rounds: int) -> tuple[float, int, int, int]:
    """Median seconds, ticks counted, ticks run, outputs."""
    extra = os.path.join(OUT, "age.lnx")
    with open(extra, "w", encoding="utf-8") as f:
        f.write(AGE_RULE)
    plan = build([os.path.join(ROOT, "rules"), extra]).require_plan()
    _, evs = tr.read_trace(path)
    times, ticks, ran, outputs = [], 0, 0, 0
    for _ in range(rounds):
        core = Core(plan, skip_idle=skip)
        calls = [0]
        step = core.evaluator.step

        def counted(table, now, step=step, calls=calls):  # type: ignore[no-untyped-def]
            calls[0] += 1
            return step(table, now)

        core.evaluator.step = counted  # type: ignore[method-assign]
        started = time.perf_counter()
        core.feed(evs)
        core.finish()
        times.append(time.perf_counter() - started)
        ticks, ran, outputs = core.ticks, calls[0], len(core.drain())
    return statistics.median(times), ticks, ran, outputs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    rows = []
    for gap in GAPS:
        path = os.path.join(OUT, f"gap-{gap}.jsonl")
        evs = events(gap)
        write(path, evs)
        print(f"gap {gap:,} s", file=sys.stderr)
        cli = cli_time(path, args.rounds)
        skipped = engine_time(path, True, args.rounds)
        walked = engine_time(path, False, 1) if gap <= 10**4 else None
        rows.append((gap, len(evs), cli, skipped, walked))
    per_tick = (rows[1][4][0] - rows[0][4][0]) / (rows[1][4][1] - rows[0][4][1])  # type: ignore[index]
    print(f"\n## Long gaps (bench/gap.py) — {time.strftime('%Y-%m-%d')}\n")
    print(f"Machine: {machine()}\n")
    print(f"Command: `python bench/gap.py --rounds {args.rounds}`\n")
    print("Trace: 100 processes, 20 s of samples, a gap of G s, 20 s of samples.\n")
    print("| gap | events | `linnix replay` (median, process start included) | all rounds |")
    print("|---|---|---|---|")
    for gap, n, cli, _, _ in rows:
        print(f"| {gap:,} s | {n:,} | {statistics.median(cli):.2f} s | "
              f"{', '.join(f'{x:.2f}' for x in cli)} |")
    print("\nEngine alone, shipped rules plus a rule on `age_s` (`age_s > 24h`):\n")
    print("| gap | ticks of the schedule | ticks evaluated | skipping (median) | "
          "every tick | outputs |")
    print("|---|---|---|---|---|---|")
    for gap, _, _, (secs, ticks, ran, outputs), walked in rows:
        every = f"{walked[0]:.3f} s" if walked is not None else (
            f"~{(ticks - rows[0][3][1]) * per_tick + rows[0][4][0]:,.0f} s (projected)")  # type: ignore[index]
        print(f"| {gap:,} s | {ticks:,} | {ran:,} | {secs:.3f} s | {every} | {outputs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
