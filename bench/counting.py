#!/usr/bin/env python3
"""Tick cost of ``count(EXPR)`` and the event counters with 1,000 live processes.

    python bench/counting.py                # 1,000 processes, 60 s of trace
    python bench/counting.py --live 5000 --seconds 30

Every process is sampled once a second (half before each 500 ms tick, as in
bench/replay.py), a few exec and exit each second; one rule set at a time:

baseline     a system rule reading a host value (what any plan costs)
count        ``count(comm == "sshd") == 0 for 30s``: judged again only on the
             processes that changed (the execs), not on the samples
count-scan   ``count(parent.comm == "sshd") == 0``: a condition on another
             process is judged on every live process at every tick, the cost
             a count would have if it scanned
execs        ``execs(exe, 1m) > 20``: a process rule, judged on every live process
             at every tick while the counter holds events

Then a quiet hour (no event at all) with the count rule: the ticks the engine
really ran (the rest were skipped as idle) and the time it took.  Results are
printed as Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

from common import machine  # bench/common.py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from linnix.engine import trace as tr  # noqa: E402
from linnix.engine.core import Core  # noqa: E402
from linnix.language.pipeline import compile_text  # noqa: E402

RULE_SETS = {
    "baseline": "rule busy_host: host_cpu_pct > 99\n",
    "count": 'rule sshd_missing: count(comm == "sshd") == 0 for 30s\n',
    "count-scan": 'rule no_sshd_child: count(parent.comm == "sshd") == 0\n',
    "execs": "rule restarts: execs(exe, 1m) > 20\n",
}


def start(core: Core, live: int) -> None:
    core.feed([tr.Proc(ts=0.0, pid=1, ppid=0, comm="systemd", start=0.0),
               tr.Proc(ts=0.0, pid=2, ppid=1, comm="sshd", exe="/usr/sbin/sshd", start=0.0)]
              + [tr.Proc(ts=0.0, pid=1000 + i, ppid=1, comm="app", exe=f"/usr/bin/app{i % 50}",
                         start=0.0) for i in range(live)])


def tick_cost(rules: str, live: int, seconds: int) -> dict[str, float]:
    """Median engine time per tick, and evaluations per tick, in the steady state."""
    rnd = random.Random(live)
    core = Core(compile_text(rules))
    start(core, live)
    per_tick: list[float] = []
    evaluations: list[int] = []
    judged: list[int] = []
    for second in range(1, seconds + 1):
        for half in (0, 1):
            ts = second + half * 0.5 - 0.25
            batch: list[tr.Event] = [
                tr.Sample(ts=ts, pid=1000 + i, cpu_pct=round(10 * rnd.random(), 1),
                          rss_kb=4096.0, fds=10) for i in range(half, live, 2)]
            victim = 1000 + rnd.randrange(live)  # a process execs: what counts must see
            batch.append(tr.Exec(ts=ts, pid=victim, comm="app", exe=f"/usr/bin/app{victim % 50}"))
            core.feed(batch)
            before = sum(s.evaluations for s in core.evaluator.rules)
            judged_before = core.evaluator.tally.judged
            started = time.perf_counter()
            core.run_until(ts + 0.25)
            per_tick.append(time.perf_counter() - started)
            evaluations.append(sum(s.evaluations for s in core.evaluator.rules) - before)
            judged.append(core.evaluator.tally.judged - judged_before)
            core.drain()
    steady = per_tick[len(per_tick) // 3:]
    med = statistics.median(steady)
    return {"tick_us": med * 1e6, "evaluations": statistics.median(evaluations),
            "judged": statistics.median(judged)}


def quiet_hour(live: int) -> dict[str, float]:
    """An hour with no event after the processes appear: ticks run and time taken."""
    core = Core(compile_text(RULE_SETS["count"]))
    start(core, live)
    core.run_until(0.0)
    ran = 0
    real_tick = core._tick

    def counted() -> None:
        nonlocal ran
        ran += 1
        real_tick()

    core._tick = counted  # type: ignore[method-assign]
    started = time.perf_counter()
    core.run_until(3600.0)
    return {"ticks": core.ticks, "ran": ran, "ms": (time.perf_counter() - started) * 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--live", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=60)
    args = ap.parse_args()
    print(f"### count() and the event counters ({args.live:,} live processes)\n")
    print(f"{machine()}; load average {os.getloadavg()[0]:.2f} at the start.\n")
    print("| rules | median tick | rule evaluations per tick | count() judgements per tick |")
    print("|---|---|---|---|")
    for name, rules in RULE_SETS.items():
        got = tick_cost(rules, args.live, args.seconds)
        print(f"| {name} | {got['tick_us']:,.0f} µs | {got['evaluations']:,.0f} | "
              f"{got['judged']:,.0f} |")
    quiet = quiet_hour(args.live)
    print(f"\nA quiet hour with the count rule: {quiet['ran']:,} of {quiet['ticks']:,} ticks "
          f"run, {quiet['ms']:,.1f} ms in all.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
